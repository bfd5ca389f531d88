/* Repair's NAK (src/lan_frame.c, src/lan_stream.c): the NAK frame round
 * trip and a table of hostile NAKs each rejected; a stream's gaps
 * coalesced into one NAK's ranges (capped, ascending, never a held
 * sequence); a widened window that holds what follows a gap of a whole
 * packed datagram until the resend fills it, delivered in order. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lan_crc32c.h"
#include "lan_frame.h"
#include "lan_stream.h"

#define MS 1000000ull

static struct lan_frame base(void)
{
	struct lan_frame f = {0};
	f.host = 0x11;
	f.publisher = 0x22;
	f.pid = 33;
	f.frag_count = 1;
	strcpy(f.channel, "orders.eu");
	f.channel_len = 9;
	return f;
}

static void test_round_trip(void **state)
{
	(void)state;
	struct lan_frame b = base(), f;
	struct lan_seq_range r[3] = {{5, 5}, {7, 20}, {22, 1000000}}, got[LAN_NAK_RANGES_MAX];
	uint8_t buf[2048];
	int n = ki_lan_nak_encode(buf, sizeof buf, &b, r, 3, NULL);
	assert_int_equal(n, LAN_FIXED_LEN + 9 + 48);
	assert_int_equal(ki_lan_frame_decode(buf, (size_t)n, &f), n);
	assert_true(f.flags & LAN_FLAG_NAK);
	assert_int_equal(f.publisher, 0x22);
	assert_int_equal(f.seq, 5);
	assert_int_equal(ki_lan_nak_ranges(&f, got), 3);
	assert_memory_equal(got, r, sizeof r);
	/* The most ranges a NAK may carry, and one more. */
	struct lan_seq_range many[LAN_NAK_RANGES_MAX + 1];
	for (size_t i = 0; i <= LAN_NAK_RANGES_MAX; i++)
		many[i] = (struct lan_seq_range){10 * i + 1, 10 * i + 5};
	assert_true(ki_lan_nak_encode(buf, sizeof buf, &b, many, LAN_NAK_RANGES_MAX, NULL) > 0);
	assert_int_equal(ki_lan_nak_encode(buf, sizeof buf, &b, many, LAN_NAK_RANGES_MAX + 1, NULL), -EINVAL);
	assert_int_equal(ki_lan_nak_encode(buf, sizeof buf, &b, many, 0, NULL), -EINVAL);
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/* A NAK with these raw ranges (and flags, payload length as given) and a
 * valid CRC: a liar, not line noise. */
static int decode_raw(const uint64_t *pairs, size_t npairs, uint8_t flags, size_t extra)
{
	struct lan_seq_range one = {1, 1};
	struct lan_frame b = base(), f;
	static uint8_t buf[4096];
	int n = ki_lan_nak_encode(buf, sizeof buf, &b, &one, 1, NULL);
	assert_true(n > 0);
	size_t hdr = LAN_FIXED_LEN + 9, body = npairs * 8 + extra;
	memset(buf + hdr, 0, body);
	for (size_t i = 0; i < npairs; i++)
		put64(buf + hdr + i * 8, pairs[i]);
	buf[5] = flags;
	uint64_t first = npairs ? pairs[0] : 1;
	put64(buf + 32, first);
	for (int i = 0; i < 4; i++) { /* payload and total length */
		buf[12 + i] = (uint8_t)(body >> (24 - 8 * i));
		buf[48 + i] = (uint8_t)(body >> (24 - 8 * i));
	}
	memset(buf + LAN_CRC_OFFSET, 0, 4);
	uint32_t crc = ki_crc32c(0, buf, hdr + body);
	for (int i = 0; i < 4; i++)
		buf[LAN_CRC_OFFSET + i] = (uint8_t)(crc >> (24 - 8 * i));
	return ki_lan_frame_decode(buf, hdr + body, &f);
}

static void test_hostile_naks(void **state)
{
	(void)state;
	const uint64_t big = LAN_SEQ_MAX;
	static const struct {
		const char *what;
		uint64_t pairs[6];
		size_t npairs, extra;
		uint8_t flags;
		int want;
	} cases[] = {
		{"well-formed", {1, 4, 6, 9}, 4, 0, LAN_FLAG_NAK, 1},
		{"no ranges", {0}, 0, 0, LAN_FLAG_NAK, -LAN_REJECT_NAK},
		{"half a range", {1, 4, 6}, 3, 0, LAN_FLAG_NAK, -LAN_REJECT_NAK},
		{"a stray byte", {1, 4}, 2, 1, LAN_FLAG_NAK, -LAN_REJECT_NAK},
		{"first > last", {9, 4}, 2, 0, LAN_FLAG_NAK, -LAN_REJECT_NAK},
		{"sequence 0", {0, 4}, 2, 0, LAN_FLAG_NAK, -LAN_REJECT_SEQ},
		{"past 2^63", {1, big + 1}, 2, 0, LAN_FLAG_NAK, -LAN_REJECT_NAK},
		{"overlapping", {1, 5, 5, 9}, 4, 0, LAN_FLAG_NAK, -LAN_REJECT_NAK},
		{"touching", {1, 5, 6, 9}, 4, 0, LAN_FLAG_NAK, -LAN_REJECT_NAK},
		{"descending", {10, 12, 1, 2}, 4, 0, LAN_FLAG_NAK, -LAN_REJECT_NAK},
		{"the whole space", {1, big}, 2, 0, LAN_FLAG_NAK, 1},
		{"NAK and state", {1, 4}, 2, 0, LAN_FLAG_NAK | LAN_FLAG_STATE, -LAN_REJECT_FLAGS},
		{"NAK and repair", {1, 4}, 2, 0, LAN_FLAG_NAK | LAN_FLAG_REPAIR, -LAN_REJECT_FLAGS},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int r = decode_raw(cases[i].pairs, cases[i].npairs, cases[i].flags, cases[i].extra);
		if (cases[i].want > 0 ? r <= 0 : r != cases[i].want)
			fail_msg("%s: got %d, want %d", cases[i].what, r, cases[i].want);
	}
	/* 65 ranges: one more than a NAK may carry. */
	uint64_t pairs[2 * (LAN_NAK_RANGES_MAX + 1)];
	for (size_t i = 0; i <= LAN_NAK_RANGES_MAX; i++) {
		pairs[2 * i] = 3 * i + 1;
		pairs[2 * i + 1] = 3 * i + 1;
	}
	assert_int_equal(decode_raw(pairs, 2 * (LAN_NAK_RANGES_MAX + 1), LAN_FLAG_NAK, 0),
			 -LAN_REJECT_NAK);
	assert_true(decode_raw(pairs, 2 * LAN_NAK_RANGES_MAX, LAN_FLAG_NAK, 0) > 0);
}

static void test_repair_flag(void **state)
{
	(void)state;
	/* A resend is the original with the optional repair bit: it decodes,
	 * CRC and all, to the same message. */
	struct lan_frame b = base(), f;
	b.seq = 9;
	b.total_len = b.payload_len = 3;
	uint8_t buf[256];
	int n = ki_lan_frame_encode(buf, sizeof buf, &b, "abc");
	ki_lan_frame_mark_repair(buf, (size_t)n, NULL);
	assert_int_equal(ki_lan_frame_decode(buf, (size_t)n, &f), n);
	assert_int_equal(f.flags, LAN_FLAG_REPAIR);
	assert_int_equal(f.seq, 9);
	assert_memory_equal(f.payload, "abc", 3);
}

struct seen {
	uint64_t seqs[10000];
	size_t n;
	uint64_t lost;
};

static void on_message(void *ctx, struct lan_stream *s, struct lan_msg *m)
{
	struct seen *v = ctx;
	v->seqs[v->n++] = m->seq;
	free(m->data);
	(void)s;
}

static void on_loss(void *ctx, struct lan_stream *s, uint64_t n)
{
	((struct seen *)ctx)->lost += n;
	(void)s;
}

static int take(struct lan_stream *s, uint64_t seq, uint64_t now, struct lan_sink *out)
{
	struct lan_msg m = {.seq = seq, .len = 1, .data = malloc(1)};
	return ki_lan_stream_take(s, &m, now, 250 * MS, out);
}

static void test_missing_coalesced(void **state)
{
	(void)state;
	static struct seen v;
	memset(&v, 0, sizeof v);
	struct lan_sink out = {on_message, on_loss, &v};
	struct lan_stream s = {0};
	struct lan_seq_range r[LAN_NAK_RANGES_MAX];
	size_t budget = 1 << 20;
	ki_lan_stream_widen(&s, LAN_REPAIR_WINDOW, &budget);
	assert_int_equal(ki_lan_stream_missing(&s, r, LAN_NAK_RANGES_MAX), 0);
	take(&s, 1, MS, &out);
	assert_int_equal(ki_lan_stream_missing(&s, r, LAN_NAK_RANGES_MAX), 0);
	/* Gaps 2, 5-7, 9; held 3 4 8 10. */
	take(&s, 3, MS, &out);
	take(&s, 4, MS, &out);
	take(&s, 8, MS, &out);
	take(&s, 10, MS, &out);
	assert_int_equal(ki_lan_stream_missing(&s, r, LAN_NAK_RANGES_MAX), 3);
	assert_true(r[0].first == 2 && r[0].last == 2);
	assert_true(r[1].first == 5 && r[1].last == 7);
	assert_true(r[2].first == 9 && r[2].last == 9);
	/* The publisher says it sent up to 20: 11-20 missing too (one range
	 * with 9? no: 10 is held between them). */
	ki_lan_stream_announce(&s, 20, MS, 250 * MS, &out);
	assert_int_equal(ki_lan_stream_missing(&s, r, LAN_NAK_RANGES_MAX), 4);
	assert_true(r[3].first == 11 && r[3].last == 20);
	/* Capped: the first two only. */
	assert_int_equal(ki_lan_stream_missing(&s, r, 2), 2);
	assert_true(r[1].first == 5 && r[1].last == 7);
	/* Every other sequence missing: more gaps than one NAK carries. */
	for (uint64_t q = 22; q < 22 + 2 * 100; q += 2)
		take(&s, q, MS, &out);
	assert_int_equal(ki_lan_stream_missing(&s, r, LAN_NAK_RANGES_MAX), LAN_NAK_RANGES_MAX);
	for (size_t i = 1; i < LAN_NAK_RANGES_MAX; i++)
		assert_true(r[i].first > r[i - 1].last + 1);
	/* Nothing delivered past the first gap, nothing lost yet. */
	assert_int_equal(v.n, 1);
	assert_int_equal(v.lost, 0);
	ki_lan_stream_clear(&s);
}

static void test_wide_window_repaired_in_order(void **state)
{
	(void)state;
	static struct seen v;
	memset(&v, 0, sizeof v);
	struct lan_sink out = {on_message, on_loss, &v};
	struct lan_stream s = {0};
	size_t budget = 1 << 20;
	ki_lan_stream_widen(&s, LAN_REPAIR_WINDOW, &budget);
	/* A datagram of 2..40 lost, then 500 more messages: with the default
	 * window of 64 the gap would be given up at once; widened, it waits
	 * (the window grew to 1024, taken from the budget). */
	take(&s, 1, MS, &out);
	for (uint64_t q = 41; q <= 540; q++)
		take(&s, q, 2 * MS, &out);
	assert_int_equal(v.n, 1);
	assert_int_equal(v.lost, 0);
	assert_int_equal(s.window, 1024);
	assert_int_equal(budget, (1 << 20) - 1024);
	struct lan_seq_range r[LAN_NAK_RANGES_MAX];
	assert_int_equal(ki_lan_stream_missing(&s, r, LAN_NAK_RANGES_MAX), 1);
	assert_true(r[0].first == 2 && r[0].last == 40);
	/* The resend comes, out of order itself: all delivered, in order. */
	for (uint64_t q = 40; q >= 2; q--)
		take(&s, q, 20 * MS, &out);
	assert_int_equal(v.n, 540);
	for (size_t i = 0; i < v.n; i++)
		assert_int_equal(v.seqs[i], i + 1);
	assert_int_equal(v.lost, 0);
	/* A repeated resend is a duplicate, never a second delivery. */
	assert_int_equal(take(&s, 20, 30 * MS, &out), 0);
	assert_int_equal(v.n, 540);
	/* A gap not repaired in time is lost once, what follows delivered. */
	take(&s, 545, 40 * MS, &out);
	ki_lan_stream_tick(&s, 40 * MS + 250 * MS, 250 * MS, &out);
	assert_int_equal(v.lost, 4);
	assert_int_equal(v.n, 541);
	assert_int_equal(take(&s, 542, 400 * MS, &out), 0); /* late: not again */
	assert_int_equal(v.lost, 4);
	/* (20 was 520 behind: further back than the stream remembers what it
	 * delivered, so it was counted late rather than duplicate.) */
	assert_int_equal(s.late + s.duplicates, 2);
	ki_lan_stream_clear(&s);
	assert_int_equal(budget, 1 << 20); /* given back */
}

static void test_window_growth_bounded(void **state)
{
	(void)state;
	static struct seen v;
	memset(&v, 0, sizeof v);
	struct lan_sink out = {on_message, on_loss, &v};
	/* Up to LAN_REPAIR_WINDOW behind a gap, never beyond: a message that
	 * far ahead pushes the gap out as without repair. */
	struct lan_stream s = {0};
	size_t budget = 1 << 20;
	ki_lan_stream_widen(&s, LAN_REPAIR_WINDOW, &budget);
	take(&s, 1, MS, &out);
	for (uint64_t q = 3; q < 2 + LAN_REPAIR_WINDOW; q++)
		take(&s, q, MS, &out);
	assert_int_equal(s.window, LAN_REPAIR_WINDOW);
	assert_int_equal(v.lost, 0);
	take(&s, 2 + LAN_REPAIR_WINDOW, MS, &out);
	assert_int_equal(v.lost, 1);
	assert_int_equal(v.n, 1 + LAN_REPAIR_WINDOW);
	for (size_t i = 0; i < v.n; i++)
		assert_int_equal(v.seqs[i], i + 1 + (i >= 1));
	ki_lan_stream_clear(&s);
	/* The shared budget: with room for 128 slots, the window stops there. */
	memset(&v, 0, sizeof v);
	struct lan_stream t = {0};
	size_t small = 128;
	ki_lan_stream_widen(&t, LAN_REPAIR_WINDOW, &small);
	take(&t, 1, MS, &out);
	take(&t, 100, MS, &out); /* fits 128 */
	assert_int_equal(t.window, 128);
	assert_int_equal(small, 0);
	assert_int_equal(v.lost, 0);
	/* 300 would need 512 slots: the window moves on to hold it, so
	 * 2..99 and 101..172 are lost and 100 delivered. */
	take(&t, 300, MS, &out);
	assert_int_equal(v.lost, 98 + 72);
	assert_int_equal(v.n, 2);
	assert_int_equal(t.window, 128);
	ki_lan_stream_clear(&t);
	assert_int_equal(small, 128);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_hostile_naks),
		cmocka_unit_test(test_repair_flag),
		cmocka_unit_test(test_missing_coalesced),
		cmocka_unit_test(test_wide_window_repaired_in_order),
		cmocka_unit_test(test_window_growth_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
