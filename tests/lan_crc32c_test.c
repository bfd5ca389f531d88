/* CRC32C (src/lan_crc32c.c): every implementation this CPU runs — the
 * portable tables, one crc32 chain, three chains joined by carry-less
 * multiplies — gives the portable CRC for every length 0..4096, at every
 * alignment, from any starting CRC, for long random buffers cut anywhere,
 * and the known check values; and the first use, raced by threads, gives
 * each of them the right CRC (the three chains' constants are made then). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lan_crc32c.h"

static uint8_t buf[(1u << 20) + 64];

static void fill_random(unsigned seed)
{
	srand(seed);
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)rand();
}

/* Run first, before anything in this process made the tables or the
 * three chains' shift constants: threads released at once each take a
 * CRC of a long buffer, every implementation, each its own buffer and
 * start; any one that read a constant or table entry not yet made gets
 * a wrong CRC (checked against the portable CRC taken afterwards). */
#define RACERS 8
#define RACE_LEN (3 * 8192 + 3 * 64 + 5) /* the largest block, the smallest, a tail */
static pthread_barrier_t race_start;
struct racer {
	const uint8_t *data;
	uint32_t got[3];
};

static void *race_first_use(void *arg)
{
	struct racer *r = arg;
	pthread_barrier_wait(&race_start);
	int paths = ki_crc32c_paths();
	for (int p = paths - 1; p >= 0; p--)
		r->got[p] = ki_crc32c_path(p, 0, r->data, RACE_LEN);
	return NULL;
}

static void test_first_use_raced_by_threads(void **state)
{
	(void)state;
	fill_random(5);
	struct racer racers[RACERS] = {0};
	pthread_t t[RACERS];
	assert_int_equal(pthread_barrier_init(&race_start, NULL, RACERS), 0);
	for (int i = 0; i < RACERS; i++) {
		racers[i].data = buf + 1 + (size_t)i * 4099; /* misaligned, apart */
		assert_int_equal(pthread_create(&t[i], NULL, race_first_use, &racers[i]), 0);
	}
	for (int i = 0; i < RACERS; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&race_start);
	int paths = ki_crc32c_paths();
	for (int i = 0; i < RACERS; i++) {
		uint32_t want = ki_crc32c_portable(0, racers[i].data, RACE_LEN);
		for (int p = 0; p < paths; p++)
			if (racers[i].got[p] != want)
				fail_msg("thread %d, path %d: %08x, portable %08x", i, p,
					 racers[i].got[p], want);
	}
}

static void test_paths_known_values(void **state)
{
	(void)state;
	int paths = ki_crc32c_paths();
	assert_in_range(paths, 1, 3);
	print_message("crc32c: %d implementation(s) on this CPU\n", paths);
	static uint8_t zeros[4096], ones[4096];
	memset(ones, 0xff, sizeof ones);
	uint32_t zeros_4096 = ki_crc32c_portable(0, zeros, sizeof zeros);
	uint32_t ones_4096 = ki_crc32c_portable(0, ones, sizeof ones);
	for (int p = 0; p < paths; p++) {
		assert_int_equal(ki_crc32c_path(p, 0, "123456789", 9), 0xE3069283u);
		assert_int_equal(ki_crc32c_path(p, 0, "", 0), 0);
		assert_int_equal(ki_crc32c_path(p, 0, zeros, 32), 0x8A9136AAu);
		assert_int_equal(ki_crc32c_path(p, 0, ones, 32), 0x62A8AB43u);
		assert_int_equal(ki_crc32c_path(p, 0, zeros, sizeof zeros), zeros_4096);
		assert_int_equal(ki_crc32c_path(p, 0, ones, sizeof ones), ones_4096);
	}
}

/* Every length up to 4096 crosses each block size of the three chains
 * (64 B .. 1 KiB a block) and each way a tail can be left over. */
static void test_every_length_to_4096(void **state)
{
	(void)state;
	fill_random(6);
	int paths = ki_crc32c_paths();
	for (size_t len = 0; len <= 4096; len++) {
		size_t at = len % 13; /* unaligned starts too */
		uint32_t seed = (uint32_t)len * 2654435761u;
		uint32_t want = ki_crc32c_portable(seed, buf + at, len);
		for (int p = 1; p < paths; p++)
			if (ki_crc32c_path(p, seed, buf + at, len) != want)
				fail_msg("path %d, length %zu: %08x, portable %08x", p, len,
					 ki_crc32c_path(p, seed, buf + at, len), want);
		assert_int_equal(ki_crc32c(seed, buf + at, len), want);
	}
}

/* Lengths just around where the three chains change block size (three
 * blocks of 64 << j bytes, j up to 8 KiB) and around whole rounds of the
 * largest, at odd starts: the steps down from one block size to the next
 * and the tail after the last round. */
static void test_block_size_boundaries(void **state)
{
	(void)state;
	fill_random(9);
	int paths = ki_crc32c_paths();
	for (size_t rounds = 1; rounds <= 3; rounds++)
		for (size_t block = 64; block <= 8192; block <<= 1)
			for (size_t d = 0; d <= 18; d++) {
				size_t len = rounds * 3 * block + d - 9, at = 1 + d % 7;
				uint32_t want = ki_crc32c_portable(~0u, buf + at, len);
				for (int p = 1; p < paths; p++)
					if (ki_crc32c_path(p, ~0u, buf + at, len) != want)
						fail_msg("path %d, length %zu at +%zu: %08x, portable %08x",
							 p, len, at,
							 ki_crc32c_path(p, ~0u, buf + at, len), want);
				assert_int_equal(ki_crc32c(~0u, buf + at, len), want);
			}
}

/* Long random buffers (up to 1 MiB: every block size, many rounds), cut
 * in two anywhere: the pieces chain to the whole. */
static void test_long_random_buffers(void **state)
{
	(void)state;
	fill_random(7);
	int paths = ki_crc32c_paths();
	for (int round = 0; round < 200; round++) {
		size_t len = round < 8 ? (size_t)(65536 << (round & 3)) + (size_t)round
				       : (size_t)rand() % (sizeof buf - 64);
		size_t at = (size_t)rand() % 64;
		size_t cut = len ? (size_t)rand() % len : 0;
		uint32_t want = ki_crc32c_portable(0, buf + at, len);
		for (int p = 1; p < paths; p++) {
			assert_int_equal(ki_crc32c_path(p, 0, buf + at, len), want);
			uint32_t head = ki_crc32c_path(p, 0, buf + at, cut);
			assert_int_equal(ki_crc32c_path(p, head, buf + at + cut, len - cut), want);
		}
		assert_int_equal(ki_crc32c(0, buf + at, len), want);
	}
}

/* A single flipped bit anywhere in a long buffer changes the CRC, in
 * every block of the three chains. */
static void test_bit_flip_changes_crc(void **state)
{
	(void)state;
	fill_random(8);
	size_t len = 3 * 8192 + 3 * 1024 + 100;
	uint32_t good = ki_crc32c(0, buf, len);
	for (size_t bit = 0; bit < len * 8; bit += 97) {
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		uint32_t bad = ki_crc32c(0, buf, len);
		uint32_t bad_portable = ki_crc32c_portable(0, buf, len);
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		if (bad == good)
			fail_msg("bit %zu flipped: CRC unchanged", bit);
		assert_int_equal(bad, bad_portable);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_use_raced_by_threads), /* first: see it */
		cmocka_unit_test(test_paths_known_values),
		cmocka_unit_test(test_every_length_to_4096),
		cmocka_unit_test(test_block_size_boundaries),
		cmocka_unit_test(test_long_random_buffers),
		cmocka_unit_test(test_bit_flip_changes_crc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
