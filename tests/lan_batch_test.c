/* LAN batch frames (frame version 2, src/lan_batch.c): the layout of
 * docs/PROTOCOL.md, round trips plain and keyed, a datagram mixing version
 * 1 and 2 frames, a table of hostile batches each rejected for its stated
 * reason (CRC re-computed, so the field checks are what rejects them), and
 * every single-bit flip rejected. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lan_batch.h"
#include "lan_bytes.h"
#include "lan_crc32c.h"
#include "lan_frame.h"

static const struct lan_keys keys_ab = {.n = 1, .key = {{0xa1, 0xb2, 0xc3}}};
static const struct lan_keys keys_other = {.n = 1, .key = {{0xa1, 0xb2, 0xc4}}};

static struct lan_frame base(const char *channel, uint64_t seq)
{
	struct lan_frame f = {0};
	f.host = 0x1122334455667788ull;
	f.publisher = 0x99aabbccddeeff00ull;
	f.seq = seq;
	f.pid = 4242;
	f.channel_len = (uint8_t)strlen(channel);
	memcpy(f.channel, channel, f.channel_len + 1);
	return f;
}

/* A batch of n records at out (record i: i * 3 bytes of 'a' + i, stamp
 * 1000 + i); its length. */
static size_t make_batch(uint8_t *out, size_t cap, const char *channel, uint64_t seq,
			 uint32_t n, const struct lan_keys *keys)
{
	struct lan_frame f = base(channel, seq);
	size_t len = ki_lan_batch_open(out, cap, &f);
	assert_true(len > 0);
	uint8_t payload[600];
	for (uint32_t i = 0; i < n; i++) {
		memset(payload, 'a' + (int)i, i * 3);
		assert_true(len + LAN_BATCH_RECORD_LEN + i * 3 + LAN_TAG_LEN <= cap);
		len += lan_batch_put(out + len, 1000 + i, payload, (uint16_t)(i * 3));
	}
	return ki_lan_batch_close(out, len, n, keys);
}

static void check_records(const struct lan_batch *b, uint64_t seq, uint32_t n)
{
	assert_int_equal(b->count, n);
	struct lan_frame f = b->f;
	size_t at = 0;
	for (uint32_t i = 0; i < n; i++) {
		ki_lan_batch_record(b, i, &at, &f);
		assert_int_equal(f.seq, seq + i);
		assert_int_equal(f.timestamp_ns, 1000 + i);
		assert_int_equal(f.payload_len, i * 3);
		assert_int_equal(f.total_len, i * 3);
		assert_int_equal(f.frag_count, 1);
		for (uint32_t j = 0; j < i * 3; j++)
			assert_int_equal(f.payload[j], 'a' + (int)i);
	}
	assert_int_equal(at, b->f.payload_len);
}

static void test_layout_and_round_trip(void **state)
{
	(void)state;
	uint8_t b[2048];
	size_t len = make_batch(b, sizeof b, "orders.eu", 41, 4, NULL);
	/* Header 48 + 9, records 4 x 10 + 0 + 3 + 6 + 9 bytes. */
	assert_int_equal(len, 57 + 40 + 18);
	assert_memory_equal(b, "KITE\x02\x00\x00\x39", 8);
	assert_memory_equal(b + 12, "\x00\x00\x00\x3a", 4);   /* records length */
	assert_memory_equal(b + 16, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
	assert_memory_equal(b + 32, "\x00\x00\x00\x00\x00\x00\x00\x29", 8);
	assert_memory_equal(b + 40, "\x00\x00\x10\x92", 4);   /* pid */
	assert_memory_equal(b + 44, "\x00\x04\x00\x09", 4);   /* count, 0, len */
	assert_memory_equal(b + 48, "orders.eu", 9);
	/* Record 1: length 3, stamp 1001, "bbb". */
	assert_memory_equal(b + 67, "\x00\x03\x00\x00\x00\x00\x00\x00\x03\xe9" "bbb", 13);
	struct lan_batch got;
	assert_int_equal(ki_lan_batch_decode_keyed(b, len, &got, NULL), (int)len);
	assert_string_equal(got.f.channel, "orders.eu");
	assert_true(got.f.host == 0x1122334455667788ull && got.f.publisher == 0x99aabbccddeeff00ull &&
		    got.f.pid == 4242 && got.f.seq == 41 && got.f.flags == 0);
	check_records(&got, 41, 4);
	/* A version-1 receiver does not read it: an unknown version. */
	struct lan_frame f;
	assert_int_equal(ki_lan_frame_decode(b, len, &f), -LAN_REJECT_VERSION);
}

static void test_keyed(void **state)
{
	(void)state;
	uint8_t b[2048];
	size_t len = make_batch(b, sizeof b, "k.v", 7, 3, &keys_ab);
	assert_int_equal(len, 48 + 3 + 30 + 9 + LAN_TAG_LEN);
	assert_int_equal(b[5], LAN_FLAG_MAC);
	struct lan_batch got;
	assert_int_equal(ki_lan_batch_decode_keyed(b, len, &got, &keys_ab), (int)len);
	check_records(&got, 7, 3);
	assert_int_equal(ki_lan_batch_decode_keyed(b, len, &got, &keys_other), -LAN_REJECT_AUTH);
	/* Without a key, the tag bit is an unknown critical flag. */
	assert_int_equal(ki_lan_batch_decode_keyed(b, len, &got, NULL), -LAN_REJECT_FLAGS);
	/* With a key, an untagged batch is refused. */
	len = make_batch(b, sizeof b, "k.v", 7, 3, NULL);
	assert_int_equal(ki_lan_batch_decode_keyed(b, len, &got, &keys_ab), -LAN_REJECT_AUTH);
	/* The tag covers the records: a changed payload byte, CRC fixed by
	 * someone without the key, is refused. */
	len = make_batch(b, sizeof b, "k.v", 7, 3, &keys_ab);
	b[len - LAN_TAG_LEN - 1] ^= 1;
	lan_put32(b + LAN_CRC_OFFSET, 0);
	lan_put32(b + LAN_CRC_OFFSET, ki_crc32c(0, b, len - LAN_TAG_LEN));
	assert_int_equal(ki_lan_batch_decode_keyed(b, len, &got, &keys_ab), -LAN_REJECT_AUTH);
}

/* A datagram: a version-1 frame, a batch, a version-1 frame. */
static void test_mixed_datagram(void **state)
{
	(void)state;
	uint8_t d[4096];
	struct lan_frame f = base("a.b", 5);
	f.frag_count = 1;
	f.total_len = f.payload_len = 2;
	int n1 = ki_lan_frame_encode(d, sizeof d, &f, "hi");
	assert_true(n1 > 0);
	size_t n2 = make_batch(d + n1, sizeof d - (size_t)n1, "a.b", 6, 5, NULL);
	f.seq = 11;
	int n3 = ki_lan_frame_encode(d + (size_t)n1 + n2, sizeof d - (size_t)n1 - n2, &f, "yo");
	assert_true(n3 > 0);
	size_t len = (size_t)n1 + n2 + (size_t)n3;
	struct lan_frame g;
	struct lan_batch b;
	assert_int_equal(ki_lan_frame_decode(d, len, &g), n1);
	assert_int_equal(d[n1 + 4], LAN_BATCH_VERSION);
	assert_int_equal(ki_lan_batch_decode_keyed(d + n1, len - (size_t)n1, &b, NULL), (int)n2);
	check_records(&b, 6, 5);
	assert_int_equal(ki_lan_frame_decode(d + (size_t)n1 + n2, (size_t)n3, &g), n3);
	assert_int_equal(g.seq, 11);
}

static void test_open_refuses(void **state)
{
	(void)state;
	uint8_t b[512];
	struct lan_frame f = base("a.b", 1);
	assert_int_equal(ki_lan_batch_open(b, 50, &f), 0); /* needs 51 */
	assert_int_equal(ki_lan_batch_open(b, 51, &f), 51);
	f.seq = 0;
	assert_int_equal(ki_lan_batch_open(b, sizeof b, &f), 0);
	f = base("a.b", 1);
	f.flags = LAN_FLAG_STATE;
	assert_int_equal(ki_lan_batch_open(b, sizeof b, &f), 0);
	f = base("a.b", 1);
	f.channel_len = 0;
	assert_int_equal(ki_lan_batch_open(b, sizeof b, &f), 0);
}

static void fix_crc(uint8_t *b, size_t span)
{
	lan_put32(b + LAN_CRC_OFFSET, 0);
	lan_put32(b + LAN_CRC_OFFSET, ki_crc32c(0, b, span));
}

/* Hostile batches: built from a valid one of 3 records ("h.x", seq 9),
 * changed, the CRC then made right over what the header says it spans
 * (unless said otherwise), and the length given to the decoder. */
struct hostile {
	const char *what;
	void (*change)(uint8_t *b, size_t *len);
	int crc_ok;   /* re-compute the CRC after the change */
	int want;     /* the reject */
};

/* The frame's span as its header says (header + records), clipped. */
static size_t span_of(const uint8_t *b, size_t len)
{
	size_t hdr = lan_get16(b + 6), body = lan_get32(b + 12);
	return hdr <= len && body <= len - hdr ? hdr + body : len;
}

static void cut_header(uint8_t *b, size_t *len) { (void)b; *len = 30; }
static void cut_channel(uint8_t *b, size_t *len) { (void)b; *len = 49; }
static void cut_records(uint8_t *b, size_t *len) { (void)b; *len -= 4; }
static void header_short(uint8_t *b, size_t *len) { (void)len; lan_put16(b + 6, 50); }
static void header_long(uint8_t *b, size_t *len) { (void)len; lan_put16(b + 6, 1025); }
static void body_huge(uint8_t *b, size_t *len) { (void)len; lan_put32(b + 12, 70000); }
static void count_zero(uint8_t *b, size_t *len) { (void)len; lan_put16(b + 44, 0); }
static void count_more(uint8_t *b, size_t *len) { (void)len; lan_put16(b + 44, 4); }
static void count_fewer(uint8_t *b, size_t *len) { (void)len; lan_put16(b + 44, 2); }
static void count_max(uint8_t *b, size_t *len) { (void)len; lan_put16(b + 44, 65535); }
/* Record 2 (at 51 + 10 + 13) says 200 bytes: past the end. */
static void record_crosses_end(uint8_t *b, size_t *len) { (void)len; lan_put16(b + 74, 200); }
/* Record 0 says 1 byte: the records no longer line up. */
static void record_misaligned(uint8_t *b, size_t *len) { (void)len; lan_put16(b + 51, 1); }
/* Records length 1 more than the records (a stray byte after them). */
static void stray_byte(uint8_t *b, size_t *len)
{
	lan_put32(b + 12, lan_get32(b + 12) + 1);
	b[*len] = 0;
	*len += 1;
}
static void seq_zero(uint8_t *b, size_t *len) { (void)len; lan_put64(b + 32, 0); }
static void seq_past_max(uint8_t *b, size_t *len) { (void)len; lan_put64(b + 32, LAN_SEQ_MAX - 1); }
static void seq_too_big(uint8_t *b, size_t *len) { (void)len; lan_put64(b + 32, LAN_SEQ_MAX + 1); }
static void flag_state(uint8_t *b, size_t *len) { (void)len; b[5] = LAN_FLAG_STATE; }
static void flag_gone(uint8_t *b, size_t *len) { (void)len; b[5] = LAN_FLAG_STATE | LAN_FLAG_GONE; }
static void flag_nak(uint8_t *b, size_t *len) { (void)len; b[5] = LAN_FLAG_NAK; }
static void flag_mac_no_tag(uint8_t *b, size_t *len) { (void)len; b[5] = LAN_FLAG_MAC; }
static void channel_wild(uint8_t *b, size_t *len) { (void)len; b[50] = '*'; }
static void channel_nul(uint8_t *b, size_t *len) { (void)len; b[49] = 0; }
static void channel_empty(uint8_t *b, size_t *len) { (void)len; b[47] = 0; }
static void channel_long(uint8_t *b, size_t *len) { (void)len; b[47] = 201; lan_put16(b + 6, 48 + 201); }
static void version_3(uint8_t *b, size_t *len) { (void)len; b[4] = 3; }
static void magic_bad(uint8_t *b, size_t *len) { (void)len; b[0] = 'k'; }
static void payload_byte(uint8_t *b, size_t *len) { b[*len - 1] ^= 0x40; }

static const struct hostile table[] = {
	{"shared header cut short", cut_header, 0, LAN_REJECT_SHORT},
	{"cut inside the channel name", cut_channel, 0, LAN_REJECT_SHORT},
	{"cut inside the records", cut_records, 0, LAN_REJECT_SHORT},
	{"header length below its channel", header_short, 1, LAN_REJECT_HEADER},
	{"header length above 1024", header_long, 1, LAN_REJECT_HEADER},
	{"records longer than a datagram", body_huge, 0, LAN_REJECT_LENGTH},
	{"count 0", count_zero, 1, LAN_REJECT_RECORDS},
	{"count above the records", count_more, 1, LAN_REJECT_RECORDS},
	{"count below the records", count_fewer, 1, LAN_REJECT_RECORDS},
	{"count 65535 in a small datagram", count_max, 1, LAN_REJECT_RECORDS},
	{"a record crossing the end", record_crosses_end, 1, LAN_REJECT_RECORDS},
	{"a record length that misaligns the rest", record_misaligned, 1, LAN_REJECT_RECORDS},
	{"a stray byte after the records", stray_byte, 1, LAN_REJECT_RECORDS},
	{"first sequence 0", seq_zero, 1, LAN_REJECT_SEQ},
	{"sequences running past 2^63 - 1", seq_past_max, 1, LAN_REJECT_SEQ},
	{"first sequence past 2^63 - 1", seq_too_big, 1, LAN_REJECT_SEQ},
	{"state flag", flag_state, 1, LAN_REJECT_FLAGS},
	{"gone flag", flag_gone, 1, LAN_REJECT_FLAGS},
	{"NAK flag", flag_nak, 1, LAN_REJECT_FLAGS},
	{"tag flag, no tag, no key", flag_mac_no_tag, 1, LAN_REJECT_SHORT},
	{"wildcard channel", channel_wild, 1, LAN_REJECT_CHANNEL},
	{"NUL inside the channel", channel_nul, 1, LAN_REJECT_CHANNEL},
	{"empty channel", channel_empty, 1, LAN_REJECT_CHANNEL},
	{"channel of 201 bytes", channel_long, 1, LAN_REJECT_SHORT},
	{"version 3", version_3, 1, LAN_REJECT_VERSION},
	{"bad magic", magic_bad, 1, LAN_REJECT_MAGIC},
	{"payload byte changed, CRC not", payload_byte, 0, LAN_REJECT_CRC},
};

static void test_hostile_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
		uint8_t b[4096] = {0};
		size_t len = make_batch(b, sizeof b, "h.x", 9, 3, NULL);
		assert_int_equal(len, 51 + 30 + 9);
		table[i].change(b, &len);
		if (table[i].crc_ok)
			fix_crc(b, span_of(b, len));
		struct lan_batch got;
		int r = ki_lan_batch_decode_keyed(b, len, &got, NULL);
		if (r != -table[i].want)
			fail_msg("%s: got %d (%s), want %s", table[i].what, r,
				 r < 0 ? ki_lan_reject_name((enum lan_reject)-r) : "accepted",
				 ki_lan_reject_name((enum lan_reject)table[i].want));
	}
	/* The last sequence a batch may reach is 2^63 - 1, exactly. */
	uint8_t b[512];
	size_t len = make_batch(b, sizeof b, "h.x", LAN_SEQ_MAX - 2, 3, NULL);
	struct lan_batch got;
	assert_int_equal(ki_lan_batch_decode_keyed(b, len, &got, NULL), (int)len);
	assert_true(ki_lan_reject_name(LAN_REJECT_RECORDS)[0] != 'u');
}

static void test_every_bit_flip_rejected(void **state)
{
	(void)state;
	uint8_t b[1024];
	size_t len = make_batch(b, sizeof b, "flip.me", 100, 6, NULL);
	for (size_t bit = 0; bit < len * 8; bit++) {
		b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		struct lan_batch got;
		if (ki_lan_batch_decode_keyed(b, len, &got, NULL) > 0)
			fail_msg("bit %zu flipped was accepted", bit);
		b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
}

/* A keyed batch forged by a host without the key: any one bit of the
 * header or the records flipped (count, sequence, each record's length and
 * timestamp, reserved bytes, optional flags...) and the CRC made right
 * again: the tag still refuses it. */
static void test_every_bit_flip_with_crc_fixed_refused_by_tag(void **state)
{
	(void)state;
	uint8_t b[1024];
	size_t len = make_batch(b, sizeof b, "flip.me", 100, 6, &keys_ab);
	size_t body = len - LAN_TAG_LEN;
	for (size_t bit = 0; bit < body * 8; bit++) {
		if (bit / 8 >= LAN_CRC_OFFSET && bit / 8 < LAN_CRC_OFFSET + 4)
			continue;
		uint8_t forged[1024];
		memcpy(forged, b, len);
		forged[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		lan_put32(forged + LAN_CRC_OFFSET, 0);
		lan_put32(forged + LAN_CRC_OFFSET, ki_crc32c(0, forged, body));
		struct lan_batch got;
		if (ki_lan_batch_decode_keyed(forged, len, &got, &keys_ab) > 0)
			fail_msg("bit %zu flipped, CRC fixed, was accepted", bit);
	}
}

/* A batch of 2 records ("ab", "c") with the stream's age at out. */
static size_t aged_batch(uint8_t *out, size_t cap, uint32_t age_ms, const struct lan_keys *keys)
{
	struct lan_frame f = base("h.x", 9);
	f.has_age = 1;
	f.age_ms = age_ms;
	size_t len = ki_lan_batch_open(out, cap, &f);
	assert_int_equal(len, lan_batch_header_len(3));
	len += lan_batch_put(out + len, 1, "ab", 2);
	len += lan_batch_put(out + len, 2, "c", 1);
	return ki_lan_batch_close(out, len, 2, keys);
}

/* The stream's age in a batch: after the channel name, within the header
 * (CRC and tag cover it); absent from a header too short for it. */
static void test_stream_age(void **state)
{
	(void)state;
	uint8_t b[1024];
	size_t len = aged_batch(b, sizeof b, 0x0a0b0c0d, NULL);
	assert_int_equal(len, 48 + 3 + LAN_AGE_LEN + 12 + 11);
	assert_int_equal(lan_get16(b + 6), 48 + 3 + LAN_AGE_LEN);
	assert_memory_equal(b + 51, "\x0a\x0b\x0c\x0d", 4);
	struct lan_batch got;
	assert_int_equal(ki_lan_batch_decode_keyed(b, len, &got, NULL), (int)len);
	assert_true(got.f.has_age);
	assert_int_equal(got.f.age_ms, 0x0a0b0c0d);
	/* Each record's frame carries it too (it is the stream's). */
	struct lan_frame f = got.f;
	size_t at = 0;
	ki_lan_batch_record(&got, 1, &at, &f);
	assert_true(f.has_age && f.age_ms == 0x0a0b0c0d);
	for (size_t bit = 0; bit < len * 8; bit++) {
		b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		if (ki_lan_batch_decode_keyed(b, len, &got, NULL) > 0)
			fail_msg("bit %zu flipped was accepted", bit);
		b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	/* Cut anywhere: truncated, nothing read past the end. */
	for (size_t cut = LAN_BATCH_FIXED_LEN; cut < len; cut++) {
		uint8_t *exact = malloc(cut);
		memcpy(exact, b, cut);
		assert_int_equal(ki_lan_batch_decode_keyed(exact, cut, &got, NULL), -LAN_REJECT_SHORT);
		free(exact);
	}
	/* An older publisher's batch: no age. */
	len = make_batch(b, sizeof b, "h.x", 9, 3, NULL);
	assert_int_equal(ki_lan_batch_decode_keyed(b, len, &got, NULL), (int)len);
	assert_false(got.f.has_age);
	/* A header 1 to 3 bytes past the channel (another revision's bytes):
	 * no age; 4 or more: the age is the first 4. The records intact. */
	for (size_t extra = 1; extra <= 7; extra++) {
		len = make_batch(b, sizeof b, "h.x", 9, 3, NULL);
		size_t hdr = 51;
		memmove(b + hdr + extra, b + hdr, len - hdr);
		memset(b + hdr, 0x5a, extra);
		len += extra;
		lan_put16(b + 6, (uint16_t)(hdr + extra));
		fix_crc(b, len);
		uint8_t *exact = malloc(len);
		memcpy(exact, b, len);
		assert_int_equal(ki_lan_batch_decode_keyed(exact, len, &got, NULL), (int)len);
		assert_int_equal(got.f.has_age, extra >= LAN_AGE_LEN);
		if (extra >= LAN_AGE_LEN)
			assert_int_equal(got.f.age_ms, 0x5a5a5a5au);
		check_records(&got, 9, 3);
		free(exact);
	}
	/* Keyed: the tag covers the age. */
	len = aged_batch(b, sizeof b, 77, &keys_ab);
	assert_int_equal(ki_lan_batch_decode_keyed(b, len, &got, &keys_ab), (int)len);
	assert_int_equal(got.f.age_ms, 77);
	b[51 + 3] ^= 1;
	fix_crc(b, len - LAN_TAG_LEN);
	assert_int_equal(ki_lan_batch_decode_keyed(b, len, &got, &keys_ab), -LAN_REJECT_AUTH);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_and_round_trip),
		cmocka_unit_test(test_keyed),
		cmocka_unit_test(test_mixed_datagram),
		cmocka_unit_test(test_open_refuses),
		cmocka_unit_test(test_hostile_table),
		cmocka_unit_test(test_every_bit_flip_rejected),
		cmocka_unit_test(test_every_bit_flip_with_crc_fixed_refused_by_tag),
		cmocka_unit_test(test_stream_age),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
