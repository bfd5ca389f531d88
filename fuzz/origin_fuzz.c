/* Fuzz target: an origin block (src/origin.c) as a subscriber reads it
 * from a ring, untrusted. Input byte 0 picks the mode: even, the rest is
 * decoded as it is; odd, the rest is split into an origin's fields, which
 * is encoded, then one byte of the block (position and value from the
 * input's last two bytes) is overwritten before decoding. Whatever decodes
 * must lie inside the input and encode back to exactly the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "origin.h"

const char *const fuzz_seeds[] = {
	"\x01nats|orders.eu|host-a|NATS/1.0\r\nKite-Pid: 42\r\n\r\n",
	"\x01x|y||",
	"\x01nats|a.b|h|",
	"\x00\x40\x00\x00\x00\x01\x00",
	"\x02",
	NULL,
};

static void check_decoded(const uint8_t *data, size_t size)
{
	struct kite_origin o;
	int64_t n = ki_origin_decode(data, size, &o);
	if (n < 0)
		return;
	if ((size_t)n > size || n < ORIGIN_FIXED)
		__builtin_trap();
	const char *strings[] = {o.system, o.subject, o.host, o.headers};
	for (int i = 0; i < 4; i++) {
		const uint8_t *s = (const uint8_t *)strings[i];
		if (s < data || s + strlen(strings[i]) >= data + n)
			__builtin_trap();
	}
	if (strlen(o.headers) != o.headers_len || !*o.system || !*o.subject)
		__builtin_trap();
	/* A block that decodes is canonical: encoding gives it back. */
	int64_t again = ki_origin_size(&o);
	if (again != n)
		__builtin_trap();
	uint8_t *copy = malloc((size_t)n);
	if (!copy)
		return;
	ki_origin_encode(&o, copy);
	if (memcmp(copy, data, (size_t)n))
		__builtin_trap();
	free(copy);
}

/* Split s[0..len) at '|' into at most four NUL-terminated fields. */
static void build_and_break(const uint8_t *in, size_t len)
{
	char *text = malloc(len + 1);
	if (!text)
		return;
	memcpy(text, in, len);
	text[len] = 0;
	char *field[4] = {"", "", "", ""};
	char *p = text;
	for (int i = 0; i < 4 && p; i++) {
		field[i] = p;
		if ((p = strchr(p, '|')))
			*p++ = 0;
	}
	struct kite_origin o = {.system = field[0], .subject = field[1], .host = field[2],
				.headers = field[3], .headers_len = strlen(field[3]),
				.pid = len > 2 ? (int8_t)in[len - 3] : -1, .uid = 1000,
				.publisher = 7, .seq = len};
	int64_t n = ki_origin_size(&o);
	if (n > 0) {
		uint8_t *block = malloc((size_t)n);
		if (block) {
			ki_origin_encode(&o, block);
			struct kite_origin back;
			/* Unbroken, it must decode to what went in. */
			if (ki_origin_decode(block, (size_t)n, &back) != n ||
			    strcmp(back.subject, o.subject) || strcmp(back.host, o.host) ||
			    back.pid != o.pid || back.seq != o.seq)
				__builtin_trap();
			if (len >= 2)
				block[in[len - 2] % n] = in[len - 1];
			check_decoded(block, (size_t)n);
			/* And cut short, never read past the end. */
			check_decoded(block, (size_t)n - 1 - (len % (size_t)n));
			free(block);
		}
	}
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		build_and_break(data + 1, size - 1);
	else
		check_decoded(data + 1, size - 1);
	return 0;
}
