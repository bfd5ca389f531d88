/* Runs a libFuzzer target without libFuzzer, so `make test` exercises every
 * fuzz target under ASan/UBSan on any compiler: first each seed of the
 * target's fuzz_seeds[], then seeded random mutations of them (bit flips,
 * byte stores of boundary values, truncation, splicing, pure noise).
 * Prints TAP. KITE_FUZZ_ITERATIONS overrides the count (default 20000). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
extern const char *const fuzz_seeds[];

#define MAX_INPUT 8192

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static size_t mutate(uint8_t *buf, size_t len, size_t cap)
{
	static const uint8_t special[] = {0, 1, 0x7f, 0x80, 0xff, '\n', '|', ':',
					  '@', '#', ',', '.', '*', '>', ' ', '%'};
	int rounds = 1 + (int)(rng() % 8);
	while (rounds--) {
		switch (rng() % 7) {
		case 0: /* flip a bit */
			if (len)
				buf[rng() % len] ^= (uint8_t)(1u << (rng() % 8));
			break;
		case 1: /* store a boundary byte */
			if (len)
				buf[rng() % len] = special[rng() % sizeof special];
			break;
		case 2: /* truncate */
			if (len)
				len = (size_t)(rng() % len);
			break;
		case 3: /* insert a byte */
			if (len < cap) {
				size_t at = len ? (size_t)(rng() % (len + 1)) : 0;
				memmove(buf + at + 1, buf + at, len - at);
				buf[at] = (uint8_t)rng();
				len++;
			}
			break;
		case 4: /* duplicate a chunk at the end */
			if (len && len < cap) {
				size_t from = (size_t)(rng() % len);
				size_t n = (size_t)(rng() % (len - from)) + 1;
				if (n > cap - len)
					n = cap - len;
				memmove(buf + len, buf + from, n);
				len += n;
			}
			break;
		case 5: /* overwrite 8 bytes with an extreme integer */
			if (len >= 8) {
				uint64_t v = (rng() & 1) ? ~0ull : (1ull << (rng() % 64));
				memcpy(buf + (size_t)(rng() % (len - 7)), &v, 8);
			}
			break;
		default: /* noise */
			for (size_t i = 0; i < len; i++)
				if (rng() % 16 == 0)
					buf[i] = (uint8_t)rng();
		}
	}
	return len;
}

int main(void)
{
	const char *env = getenv("KITE_FUZZ_ITERATIONS");
	long iterations = env ? atol(env) : 20000;
	size_t nseeds = 0;
	while (fuzz_seeds[nseeds])
		nseeds++;
	static uint8_t buf[MAX_INPUT];
	for (size_t i = 0; i < nseeds; i++) {
		size_t n = strlen(fuzz_seeds[i]);
		if (n > MAX_INPUT)
			n = MAX_INPUT;
		memcpy(buf, fuzz_seeds[i], n);
		LLVMFuzzerTestOneInput(buf, n);
	}
	printf("ok - %zu seeds survived\n", nseeds);
	for (long it = 0; it < iterations; it++) {
		size_t len;
		if (nseeds && rng() % 8) {
			const char *s = fuzz_seeds[rng() % nseeds];
			len = strlen(s);
			if (len > MAX_INPUT)
				len = MAX_INPUT;
			memcpy(buf, s, len);
		} else {
			len = (size_t)(rng() % 512);
			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t)rng();
		}
		len = mutate(buf, len, MAX_INPUT);
		/* A copy of exactly len bytes, so ASan sees any over-read. */
		uint8_t *exact = malloc(len ? len : 1);
		if (!exact)
			return 1;
		memcpy(exact, buf, len);
		LLVMFuzzerTestOneInput(exact, len);
		free(exact);
	}
	printf("ok - %ld mutated inputs survived\n", iterations);
	return 0;
}
