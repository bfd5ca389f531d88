/* LAN frame v1 (src/lan_frame.c) and CRC32C: known vectors, round trips,
 * packed datagrams, fragment arithmetic, and a table of hostile frames each
 * rejected for its stated reason; every single-bit flip of a frame is
 * rejected. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lan_crc32c.h"
#include "lan_frame.h"

static void test_crc32c_vectors(void **state)
{
	(void)state;
	assert_int_equal(ki_crc32c(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(ki_crc32c_portable(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(ki_crc32c(0, "", 0), 0);
	uint8_t zeros[32] = {0}, ones[32];
	memset(ones, 0xff, sizeof ones);
	/* RFC 3720 (iSCSI) B.4 test patterns. */
	assert_int_equal(ki_crc32c(0, zeros, 32), 0x8A9136AAu);
	assert_int_equal(ki_crc32c(0, ones, 32), 0x62A8AB43u);
	uint8_t inc[32];
	for (int i = 0; i < 32; i++)
		inc[i] = (uint8_t)i;
	assert_int_equal(ki_crc32c_portable(0, inc, 32), 0x46DD794Eu);
}

static void test_crc32c_pieces_and_paths_agree(void **state)
{
	(void)state;
	static uint8_t buf[70000];
	srand(11);
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)rand();
	for (int round = 0; round < 300; round++) {
		size_t len = (size_t)rand() % sizeof buf;
		size_t cut = len ? (size_t)rand() % len : 0;
		size_t at = (size_t)rand() % (sizeof buf - len);
		uint32_t whole = ki_crc32c_portable(0, buf + at, len);
		assert_int_equal(ki_crc32c(0, buf + at, len), whole);
		uint32_t split = ki_crc32c(ki_crc32c(0, buf + at, cut), buf + at + cut, len - cut);
		assert_int_equal(split, whole);
	}
}

static struct lan_frame sample(const char *channel, uint32_t payload_len)
{
	struct lan_frame f = {0};
	f.host = 0x1122334455667788ull;
	f.publisher = 0x99aabbccddeeff00ull;
	f.seq = 42;
	f.timestamp_ns = 1764553200123456789ull;
	f.pid = 4242;
	f.total_len = payload_len;
	f.frag_count = 1;
	f.payload_len = payload_len;
	f.channel_len = (uint8_t)strlen(channel);
	memcpy(f.channel, channel, f.channel_len + 1);
	return f;
}

static void test_round_trip(void **state)
{
	(void)state;
	uint8_t out[2048], payload[1000];
	for (size_t i = 0; i < sizeof payload; i++)
		payload[i] = (uint8_t)(i * 7);
	struct lan_frame f = sample("orders.eu.created", sizeof payload);
	int n = ki_lan_frame_encode(out, sizeof out, &f, payload);
	assert_int_equal(n, LAN_FIXED_LEN + 17 + 1000);
	/* The fixed layout of docs/PROTOCOL.md. */
	assert_memory_equal(out, "KITE\x01\x00\x00\x52", 8);
	assert_memory_equal(out + 12, "\x00\x00\x03\xe8", 4);
	assert_memory_equal(out + 16, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
	assert_int_equal(out[64], 17);
	struct lan_frame g;
	assert_int_equal(ki_lan_frame_decode(out, (size_t)n, &g), n);
	assert_string_equal(g.channel, "orders.eu.created");
	assert_true(g.host == f.host && g.publisher == f.publisher && g.seq == 42 &&
		    g.timestamp_ns == f.timestamp_ns && g.pid == 4242 &&
		    g.total_len == 1000 && g.frag_index == 0 && g.frag_count == 1);
	assert_int_equal(g.payload_len, 1000);
	assert_ptr_equal(g.payload, out + n - 1000);
	assert_memory_equal(g.payload, payload, 1000);

	/* An empty message is a frame too. */
	f = sample("a", 0);
	n = ki_lan_frame_encode(out, sizeof out, &f, NULL);
	assert_int_equal(n, LAN_FIXED_LEN + 1);
	assert_int_equal(ki_lan_frame_decode(out, (size_t)n, &g), n);
	assert_int_equal(g.payload_len, 0);
}

static void test_encode_refuses(void **state)
{
	(void)state;
	uint8_t out[512], payload[400] = {0};
	struct lan_frame f = sample("a.b", 400);
	assert_int_equal(ki_lan_frame_encode(out, 400, &f, payload), -ENOSPC);
	assert_int_equal(ki_lan_frame_encode(out, LAN_FIXED_LEN + 3 + 399, &f, payload), -ENOSPC);
	struct lan_frame bad = sample("a.*", 0);
	assert_int_equal(ki_lan_frame_encode(out, sizeof out, &bad, NULL), -EINVAL);
	bad = sample("a.b", 10);
	bad.seq = 0;
	assert_int_equal(ki_lan_frame_encode(out, sizeof out, &bad, payload), -EINVAL);
	bad = sample("a.b", 10);
	bad.frag_count = 2; /* 10 in 2: each fragment carries 5 */
	assert_int_equal(ki_lan_frame_encode(out, sizeof out, &bad, payload), -EINVAL);
	bad = sample("a.b", 10);
	bad.flags = LAN_FLAG_MAC; /* not spoken by this version */
	assert_int_equal(ki_lan_frame_encode(out, sizeof out, &bad, payload), -EINVAL);
	bad = sample("a.b", 10);
	bad.channel_len = 2; /* disagrees with the string */
	assert_int_equal(ki_lan_frame_encode(out, sizeof out, &bad, payload), -EINVAL);
}

static void test_state_frames(void **state)
{
	(void)state;
	uint8_t out[512];
	struct lan_frame f = sample("a.b", 0), g;
	f.flags = LAN_FLAG_STATE;
	f.seq = 77;
	int n = ki_lan_frame_encode(out, sizeof out, &f, NULL);
	assert_true(n > 0);
	assert_int_equal(ki_lan_frame_decode(out, (size_t)n, &g), n);
	assert_int_equal(g.flags, LAN_FLAG_STATE);
	assert_int_equal(g.seq, 77);
	f.flags = LAN_FLAG_STATE | LAN_FLAG_GONE;
	n = ki_lan_frame_encode(out, sizeof out, &f, NULL);
	assert_int_equal(ki_lan_frame_decode(out, (size_t)n, &g), n);
	assert_int_equal(g.flags, LAN_FLAG_STATE | LAN_FLAG_GONE);
	/* Sequence 0: "nothing sent yet", said before the first message. */
	f.flags = LAN_FLAG_STATE;
	f.seq = 0;
	n = ki_lan_frame_encode(out, sizeof out, &f, NULL);
	assert_int_equal(ki_lan_frame_decode(out, (size_t)n, &g), n);
	assert_int_equal(g.seq, 0);
}

static void test_packed_datagram(void **state)
{
	(void)state;
	uint8_t dgram[1500];
	size_t len = 0;
	const char *channels[] = {"m.a", "m.bb", "m.ccc"};
	for (int i = 0; i < 3; i++) {
		struct lan_frame f = sample(channels[i], 64);
		f.seq = (uint64_t)i + 1;
		uint8_t payload[64];
		memset(payload, 'a' + i, sizeof payload);
		int n = ki_lan_frame_encode(dgram + len, sizeof dgram - len, &f, payload);
		assert_true(n > 0);
		len += (size_t)n;
	}
	size_t at = 0;
	for (int i = 0; i < 3; i++) {
		struct lan_frame g;
		int n = ki_lan_frame_decode(dgram + at, len - at, &g);
		assert_true(n > 0);
		assert_string_equal(g.channel, channels[i]);
		assert_int_equal(g.seq, (uint64_t)i + 1);
		assert_int_equal(g.payload[63], 'a' + i);
		at += (size_t)n;
	}
	assert_int_equal(at, len);
}

static void test_fragment_arithmetic(void **state)
{
	(void)state;
	/* Every message size with any datagram payload: the fragments tile
	 * the message exactly, none is empty, none exceeds the payload. */
	static const uint32_t totals[] = {0, 1, 2, 1399, 1400, 1401, 65536,
					  16u << 20, (16u << 20) + 1, 0xffffffffu};
	static const uint32_t maxes[] = {1, 7, 1400, 8952, 65000};
	for (size_t t = 0; t < sizeof totals / sizeof *totals; t++)
		for (size_t m = 0; m < sizeof maxes / sizeof *maxes; m++) {
			uint32_t total = totals[t], max = maxes[m];
			uint32_t count = ki_lan_fragment_count(total, max);
			if ((uint64_t)count * max < total || (count > 1 && (uint64_t)(count - 1) * max >= total))
				fail_msg("count %u for %u by %u is not the fewest", count, total, max);
			uint32_t chunk = ki_lan_fragment_chunk(total, count);
			assert_true(chunk <= max || total == 0);
			uint64_t last = ki_lan_fragment_offset(total, count, count - 1);
			assert_true(count == 1 || last < total);
			assert_true(last + chunk >= total);
		}
	assert_int_equal(ki_lan_fragment_count(0, 1400), 1);
	assert_int_equal(ki_lan_fragment_chunk(10, 4), 3);
	assert_int_equal(ki_lan_fragment_offset(10, 4, 3), 9);
}

/* Hostile frames: a valid frame changed at one place, CRC re-computed
 * where the case says so (a liar, not line noise), and the reason it must
 * be rejected for. */
struct hostile {
	const char *what;
	size_t at;         /* byte to overwrite ... */
	int width;         /* ... with value in width bytes (0: no change) */
	uint64_t value;
	size_t trim;       /* bytes removed from the end (all: more than it has) */
	int fix_crc;
	enum lan_reject want;
};

static const struct hostile hostile_cases[] = {
	{"empty datagram", 0, 0, 0, 1000000, 0, LAN_REJECT_SHORT},
	{"three bytes", 0, 0, 0, 76, 0, LAN_REJECT_SHORT},
	{"cut in the fixed header", 0, 0, 0, 40, 0, LAN_REJECT_SHORT},
	{"cut in the payload", 0, 0, 0, 1, 0, LAN_REJECT_SHORT},
	{"bad magic", 0, 1, 'J', 0, 1, LAN_REJECT_MAGIC},
	{"short and not kite", 0, 4, 0x47455420, 50, 0, LAN_REJECT_MAGIC},
	{"version 0", 4, 1, 0, 0, 1, LAN_REJECT_VERSION},
	{"version 2", 4, 1, 2, 0, 1, LAN_REJECT_VERSION},
	{"version 255", 4, 1, 255, 0, 1, LAN_REJECT_VERSION},
	{"tag flag, no tag after the payload", 5, 1, 0x01, 0, 1, LAN_REJECT_SHORT},
	{"NAK flag on a message (its payload no ranges)", 5, 1, 0x08, 0, 1, LAN_REJECT_NAK},
	{"NAK flag with state", 5, 1, 0x0a, 0, 1, LAN_REJECT_FLAGS},
	{"gone without state", 5, 1, 0x04, 0, 1, LAN_REJECT_FLAGS},
	{"state with a payload", 5, 1, 0x02, 0, 1, LAN_REJECT_FRAGMENT},
	{"header shorter than its channel", 6, 2, 60, 0, 1, LAN_REJECT_HEADER},
	{"header length 0", 6, 2, 0, 0, 1, LAN_REJECT_HEADER},
	{"header longer than allowed", 6, 2, 0xffff, 0, 1, LAN_REJECT_HEADER},
	{"header longer than the datagram", 6, 2, 900, 0, 1, LAN_REJECT_SHORT},
	{"payload length past the end", 12, 4, 11, 0, 1, LAN_REJECT_SHORT},
	{"payload length 4 GiB", 12, 4, 0xffffffff, 0, 1, LAN_REJECT_LENGTH},
	{"payload length past a datagram", 12, 4, 65500, 0, 1, LAN_REJECT_LENGTH},
	{"line noise in the payload", 75, 1, 0x55, 0, 0, LAN_REJECT_CRC},
	{"line noise in the sequence", 39, 1, 0x43, 0, 0, LAN_REJECT_CRC},
	{"checksum zeroed", 8, 4, 0, 0, 0, LAN_REJECT_CRC},
	{"sequence 0", 32, 8, 0, 0, 1, LAN_REJECT_SEQ},
	{"sequence 2^63", 32, 1, 0x80, 0, 1, LAN_REJECT_SEQ},
	{"channel length 0", 64, 1, 0, 0, 1, LAN_REJECT_CHANNEL},
	{"channel length 201", 64, 1, 201, 0, 1, LAN_REJECT_HEADER},
	{"channel length 255", 64, 1, 255, 0, 1, LAN_REJECT_HEADER},
	{"wildcard channel", 66, 1, '*', 0, 1, LAN_REJECT_CHANNEL},
	{"channel with NUL", 66, 1, 0, 0, 1, LAN_REJECT_CHANNEL},
	{"channel ends in a dot", 68, 1, '.', 0, 1, LAN_REJECT_CHANNEL},
	{"total disagrees with payload", 48, 4, 11, 0, 1, LAN_REJECT_FRAGMENT},
	{"fragment count 0", 56, 4, 0, 0, 1, LAN_REJECT_FRAGMENT},
	{"fragment index past count", 52, 4, 1, 0, 1, LAN_REJECT_FRAGMENT},
	{"fragment index huge", 52, 4, 0xffffffff, 0, 1, LAN_REJECT_FRAGMENT},
	{"fragment count huge", 56, 4, 0xffffffff, 0, 1, LAN_REJECT_FRAGMENT},
	{"total huge, one fragment", 48, 4, 0xffffffff, 0, 1, LAN_REJECT_FRAGMENT},
};

/* The valid frame the cases start from (79 bytes): channel "ab.c" at
 * 65..68, 10 bytes of payload at 69..78. */
static size_t base_frame(uint8_t *out, size_t cap)
{
	struct lan_frame f = sample("ab.c", 10);
	int n = ki_lan_frame_encode(out, cap, &f, "0123456789");
	assert_true(n > 0);
	return (size_t)n;
}

static void fix_crc(uint8_t *b, size_t len)
{
	if (len < LAN_FIXED_LEN)
		return;
	size_t hdr = (size_t)b[6] << 8 | b[7];
	uint32_t pl = (uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 | b[15];
	size_t span = hdr + pl <= len ? hdr + pl : len;
	memset(b + LAN_CRC_OFFSET, 0, 4);
	uint32_t c = ki_crc32c(0, b, span);
	b[8] = (uint8_t)(c >> 24);
	b[9] = (uint8_t)(c >> 16);
	b[10] = (uint8_t)(c >> 8);
	b[11] = (uint8_t)c;
}

static void test_hostile_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof hostile_cases / sizeof *hostile_cases; i++) {
		const struct hostile *h = &hostile_cases[i];
		uint8_t b[2048] = {0};
		size_t len = base_frame(b, sizeof b);
		for (int w = 0; w < h->width; w++)
			b[h->at + (size_t)w] = (uint8_t)(h->value >> (8 * (h->width - 1 - w)));
		len = h->trim >= len ? 0 : len - h->trim;
		if (h->fix_crc)
			fix_crc(b, len);
		/* An exact-size copy, so ASan sees any read past the end. */
		uint8_t *exact = malloc(len ? len : 1);
		assert_non_null(exact);
		memcpy(exact, b, len);
		struct lan_frame f;
		int r = ki_lan_frame_decode(exact, len, &f);
		free(exact);
		if (r != -(int)h->want)
			fail_msg("%s: got %d (%s), want %s", h->what, r,
				 r < 0 ? ki_lan_reject_name((enum lan_reject)-r) : "accepted",
				 ki_lan_reject_name(h->want));
	}
}

static void test_every_bit_flip_rejected(void **state)
{
	(void)state;
	uint8_t b[2048];
	size_t len = base_frame(b, sizeof b);
	for (size_t bit = 0; bit < len * 8; bit++) {
		b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		struct lan_frame f;
		int r = ki_lan_frame_decode(b, len, &f);
		if (r > 0)
			fail_msg("bit %zu flipped was accepted", bit);
		b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	struct lan_frame f;
	assert_int_equal(ki_lan_frame_decode(b, len, &f), (int)len);
}

/* Authentication (key=FILE): two hosts' key files. */
static const struct lan_keys keys_ab = {.n = 1, .key = {{0xa1, 0xb2, 0xc3}}};
static const struct lan_keys keys_other = {.n = 1, .key = {{0xa1, 0xb2, 0xc4}}};

static size_t keyed_frame(uint8_t *out, size_t cap, const struct lan_keys *keys)
{
	struct lan_frame f = sample("ab.c", 10);
	int n = ki_lan_frame_encode_keyed(out, cap, &f, "0123456789", keys);
	assert_int_equal(n, LAN_FIXED_LEN + 4 + 10 + LAN_TAG_LEN);
	return (size_t)n;
}

static void test_auth_valid_tag(void **state)
{
	(void)state;
	uint8_t b[2048], out[2048];
	size_t len = keyed_frame(b, sizeof b, &keys_ab);
	assert_int_equal(b[5], LAN_FLAG_MAC);
	/* The tag: keyed BLAKE2b-128 over all before it, CRC as sent. */
	uint8_t tag[LAN_TAG_LEN];
	ki_lan_tag(&keys_ab, 0, b, len - LAN_TAG_LEN, tag);
	assert_memory_equal(b + len - LAN_TAG_LEN, tag, LAN_TAG_LEN);
	uint32_t crc = ki_crc32c(0, b, LAN_CRC_OFFSET);
	crc = ki_crc32c(crc, "\0\0\0\0", 4);
	crc = ki_crc32c(crc, b + 12, len - LAN_TAG_LEN - 12);
	assert_int_equal(crc, (uint32_t)b[8] << 24 | b[9] << 16 | b[10] << 8 | b[11]);
	struct lan_frame f;
	assert_int_equal(ki_lan_frame_decode_keyed(b, len, &f, &keys_ab), (int)len);
	assert_memory_equal(f.payload, "0123456789", 10);
	assert_int_equal(f.payload_len, 10);
	/* Packed: the next frame starts after the tag. */
	memcpy(b + len, b, len);
	assert_int_equal(ki_lan_frame_decode_keyed(b + len, len, &f, &keys_ab), (int)len);
	/* Rotation: a receiver holding old and new takes either. */
	struct lan_keys both = {.n = 2};
	memcpy(both.key[0], keys_other.key[0], LAN_KEY_LEN);
	memcpy(both.key[1], keys_ab.key[0], LAN_KEY_LEN);
	assert_int_equal(ki_lan_frame_decode_keyed(b, len, &f, &both), (int)len);
	assert_int_equal(ki_lan_frame_decode_keyed(b, len, &f, &keys_other), -LAN_REJECT_AUTH);
	/* A resend is re-signed. */
	memcpy(out, b, len);
	ki_lan_frame_mark_repair(out, len, &keys_ab);
	assert_int_equal(ki_lan_frame_decode_keyed(out, len, &f, &keys_ab), (int)len);
	assert_int_equal(f.flags, LAN_FLAG_MAC | LAN_FLAG_REPAIR);
	/* So is a NAK. */
	struct lan_seq_range r = {5, 9};
	int n = ki_lan_nak_encode(out, sizeof out, &f, &r, 1, &keys_ab);
	assert_int_equal(n, LAN_FIXED_LEN + 4 + 16 + LAN_TAG_LEN);
	assert_int_equal(ki_lan_frame_decode_keyed(out, (size_t)n, &f, &keys_ab), n);
	assert_int_equal(f.flags, LAN_FLAG_NAK | LAN_FLAG_MAC);
	/* The keys, not the caller, set the flag. */
	f = sample("ab.c", 0);
	f.flags = LAN_FLAG_MAC;
	assert_int_equal(ki_lan_frame_encode_keyed(out, sizeof out, &f, NULL, &keys_ab), -EINVAL);
	f.flags = 0;
	assert_int_equal(ki_lan_frame_encode_keyed(out, LAN_FIXED_LEN + 4 + LAN_TAG_LEN - 1, &f,
						   NULL, &keys_ab), -ENOSPC);
}

/* Every single bit flipped, anywhere (header, payload, tag), is
 * rejected; and with the CRC fixed (a liar without the key), it is the
 * tag that rejects it. */
static void test_auth_every_bit_flip_rejected(void **state)
{
	(void)state;
	uint8_t b[2048];
	size_t len = keyed_frame(b, sizeof b, &keys_ab);
	for (size_t bit = 0; bit < len * 8; bit++) {
		uint8_t c[2048];
		memcpy(c, b, len);
		c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		struct lan_frame f;
		int r = ki_lan_frame_decode_keyed(c, len, &f, &keys_ab);
		if (r > 0)
			fail_msg("bit %zu flipped was accepted", bit);
		if (bit / 8 >= LAN_CRC_OFFSET + 4 && bit / 8 != 6 && bit / 8 != 7 &&
		    !(bit / 8 >= 12 && bit / 8 < 16) && bit / 8 != 64 && bit / 8 != 5) {
			fix_crc(c, len - LAN_TAG_LEN);
			r = ki_lan_frame_decode_keyed(c, len, &f, &keys_ab);
			if (r != -LAN_REJECT_AUTH)
				fail_msg("bit %zu flipped, CRC fixed: got %d, want unauthenticated", bit, r);
		}
	}
}

static void test_auth_missing_or_unknown(void **state)
{
	(void)state;
	uint8_t b[2048];
	struct lan_frame f;
	/* A key, a frame without the flag: rejected, even with a valid CRC. */
	size_t len = base_frame(b, sizeof b);
	assert_int_equal(ki_lan_frame_decode_keyed(b, len, &f, &keys_ab), -LAN_REJECT_AUTH);
	/* ... and with a tag appended but the flag not set: the same. */
	ki_lan_tag(&keys_ab, 0, b, len, b + len);
	assert_int_equal(ki_lan_frame_decode_keyed(b, len + LAN_TAG_LEN, &f, &keys_ab),
			 -LAN_REJECT_AUTH);
	/* No key, a tagged frame: its flag is an unknown critical one. */
	len = keyed_frame(b, sizeof b, &keys_ab);
	assert_int_equal(ki_lan_frame_decode_keyed(b, len, &f, NULL), -LAN_REJECT_FLAGS);
	assert_int_equal(ki_lan_frame_decode(b, len, &f), -LAN_REJECT_FLAGS);
	struct lan_keys none = {0};
	assert_int_equal(ki_lan_frame_decode_keyed(b, len, &f, &none), -LAN_REJECT_FLAGS);
	/* Cut short: the tag must all be there. */
	assert_int_equal(ki_lan_frame_decode_keyed(b, len - 1, &f, &keys_ab), -LAN_REJECT_SHORT);
}

static void test_later_fields_skipped(void **state)
{
	(void)state;
	/* A later compatible revision appends a field after the channel and
	 * sets an optional flag: version-1 receivers skip both. */
	uint8_t b[2048];
	size_t len = base_frame(b, sizeof b);
	size_t hdr = LAN_FIXED_LEN + 4;
	memmove(b + hdr + 6, b + hdr, len - hdr);
	memcpy(b + hdr, "XXXXXX", 6);
	len += 6;
	b[7] = (uint8_t)(hdr + 6);
	b[5] = 0x10;
	fix_crc(b, len);
	struct lan_frame f;
	assert_int_equal(ki_lan_frame_decode(b, len, &f), (int)len);
	assert_memory_equal(f.payload, "0123456789", 10);
	assert_int_equal(f.flags, 0x10);
}

/* The stream's age (docs/PROTOCOL.md, "Stream age"): 4 bytes after the
 * channel name, present when the header length holds all 4. */
static void test_stream_age(void **state)
{
	(void)state;
	uint8_t b[2048];
	struct lan_frame f = sample("ab.c", 10), g;
	f.has_age = 1;
	f.age_ms = 0x01020304;
	int n = ki_lan_frame_encode(b, sizeof b, &f, "0123456789");
	assert_int_equal(n, LAN_FIXED_LEN + 4 + LAN_AGE_LEN + 10);
	assert_int_equal(b[7], LAN_FIXED_LEN + 4 + LAN_AGE_LEN); /* header length */
	assert_memory_equal(b + LAN_FIXED_LEN + 4, "\x01\x02\x03\x04", 4);
	assert_int_equal(ki_lan_frame_decode(b, (size_t)n, &g), n);
	assert_true(g.has_age);
	assert_int_equal(g.age_ms, 0x01020304);
	assert_memory_equal(g.payload, "0123456789", 10);
	/* Every bit of it is covered by the CRC. */
	for (size_t bit = 0; bit < (size_t)n * 8; bit++) {
		b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		if (ki_lan_frame_decode(b, (size_t)n, &g) > 0)
			fail_msg("bit %zu flipped was accepted", bit);
		b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	/* Cut inside the age (or the payload): truncated, never read past. */
	for (size_t cut = LAN_FIXED_LEN + 4; cut < (size_t)n; cut++) {
		uint8_t *exact = malloc(cut);
		memcpy(exact, b, cut);
		assert_int_equal(ki_lan_frame_decode(exact, cut, &g), -LAN_REJECT_SHORT);
		free(exact);
	}
	/* Saturated. */
	f.age_ms = LAN_AGE_MAX;
	n = ki_lan_frame_encode(b, sizeof b, &f, "0123456789");
	assert_int_equal(ki_lan_frame_decode(b, (size_t)n, &g), n);
	assert_int_equal(g.age_ms, LAN_AGE_MAX);
	/* Without it (an older publisher): none read. */
	f.has_age = 0;
	n = ki_lan_frame_encode(b, sizeof b, &f, "0123456789");
	assert_int_equal(n, LAN_FIXED_LEN + 4 + 10);
	assert_int_equal(ki_lan_frame_decode(b, (size_t)n, &g), n);
	assert_false(g.has_age);
	/* A header 1 to 3 bytes longer than its channel holds something of
	 * another revision, too short for the age: no age, payload intact;
	 * 4 or more, the age is its first 4 (the rest skipped). */
	for (size_t extra = 1; extra <= 9; extra++) {
		uint8_t c[2048];
		size_t len = base_frame(c, sizeof c), hdr = LAN_FIXED_LEN + 4;
		memmove(c + hdr + extra, c + hdr, len - hdr);
		memset(c + hdr, 0xa5, extra);
		len += extra;
		c[7] = (uint8_t)(hdr + extra);
		fix_crc(c, len);
		uint8_t *exact = malloc(len);
		memcpy(exact, c, len);
		assert_int_equal(ki_lan_frame_decode(exact, len, &g), (int)len);
		assert_int_equal(g.has_age, extra >= LAN_AGE_LEN);
		if (extra >= LAN_AGE_LEN)
			assert_int_equal(g.age_ms, 0xa5a5a5a5u);
		assert_memory_equal(g.payload, "0123456789", 10);
		free(exact);
	}
}

/* The tag covers the age: a keyless host cannot change it. */
static void test_stream_age_authenticated(void **state)
{
	(void)state;
	uint8_t b[2048];
	struct lan_frame f = sample("ab.c", 10), g;
	f.has_age = 1;
	f.age_ms = 1234;
	int n = ki_lan_frame_encode_keyed(b, sizeof b, &f, "0123456789", &keys_ab);
	assert_true(n > 0);
	assert_int_equal(ki_lan_frame_decode_keyed(b, (size_t)n, &g, &keys_ab), n);
	assert_int_equal(g.age_ms, 1234);
	b[LAN_FIXED_LEN + 4 + 3] ^= 0x01; /* age 1235, CRC made right */
	fix_crc(b, (size_t)n - LAN_TAG_LEN);
	assert_int_equal(ki_lan_frame_decode_keyed(b, (size_t)n, &g, &keys_ab), -LAN_REJECT_AUTH);
}

static void test_reject_names(void **state)
{
	(void)state;
	for (int i = 1; i < LAN_REJECT_KINDS; i++)
		assert_string_not_equal(ki_lan_reject_name((enum lan_reject)i), "unknown");
	assert_string_equal(ki_lan_reject_name((enum lan_reject)0), "unknown");
	assert_string_equal(ki_lan_reject_name(LAN_REJECT_KINDS), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_vectors),
		cmocka_unit_test(test_crc32c_pieces_and_paths_agree),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_encode_refuses),
		cmocka_unit_test(test_state_frames),
		cmocka_unit_test(test_packed_datagram),
		cmocka_unit_test(test_fragment_arithmetic),
		cmocka_unit_test(test_hostile_table),
		cmocka_unit_test(test_every_bit_flip_rejected),
		cmocka_unit_test(test_later_fields_skipped),
		cmocka_unit_test(test_stream_age),
		cmocka_unit_test(test_stream_age_authenticated),
		cmocka_unit_test(test_reject_names),
		cmocka_unit_test(test_auth_valid_tag),
		cmocka_unit_test(test_auth_every_bit_flip_rejected),
		cmocka_unit_test(test_auth_missing_or_unknown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
