/* The publisher's repair history (src/lan_history.c): a message is found
 * by (channel, sequence) with exactly the frames kept; the oldest go when
 * the bytes or the message count run out, and are then not found (never a
 * wrong message); a message larger than the history is not kept; resends
 * of one message are held off, and all resends together stay within the
 * rate budget whatever the asking. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lan_frame.h"
#include "lan_history.h"

#define MS 1000000ull

/* One encoded frame of seq on channel, payload_len bytes of (seq & 0xff). */
static size_t frame(uint8_t *out, const char *channel, uint64_t seq, uint32_t payload_len)
{
	static uint8_t data[2000];
	memset(data, (int)(seq & 0xff), payload_len);
	struct lan_frame f = {0};
	f.host = 1;
	f.publisher = 2;
	f.seq = seq;
	f.frag_count = 1;
	f.total_len = f.payload_len = payload_len;
	f.channel_len = (uint8_t)strlen(channel);
	strcpy(f.channel, channel);
	int n = ki_lan_frame_encode(out, 4000, &f, data);
	assert_true(n > 0);
	return (size_t)n;
}

static void add(struct lan_history *h, const char *channel, uint64_t seq, uint32_t payload_len)
{
	uint8_t buf[4000];
	size_t n = frame(buf, channel, seq, payload_len);
	ki_lan_history_add(h, channel, seq, buf, n);
}

/* The record found for (channel, seq) holds that very frame. */
static int holds(struct lan_history *h, const char *channel, uint64_t seq)
{
	struct lan_hist_rec *r = ki_lan_history_find(h, channel, seq);
	if (!r)
		return 0;
	struct lan_frame f;
	int n = ki_lan_frame_decode(lan_history_frames(h, r), r->len, &f);
	assert_int_equal((size_t)n, r->len);
	assert_int_equal(f.seq, seq);
	assert_string_equal(f.channel, channel);
	for (uint32_t i = 0; i < f.payload_len; i++)
		assert_int_equal(f.payload[i], seq & 0xff);
	return 1;
}

static void test_find_exact(void **state)
{
	(void)state;
	struct lan_history h;
	assert_int_equal(ki_lan_history_init(&h, 1 << 20), 0);
	for (uint64_t q = 1; q <= 100; q++) {
		add(&h, "a.b", q, 10);
		add(&h, "a.c", q, 20);
	}
	for (uint64_t q = 1; q <= 100; q++) {
		assert_true(holds(&h, "a.b", q));
		assert_true(holds(&h, "a.c", q));
	}
	assert_null(ki_lan_history_find(&h, "a.b", 101)); /* never sent */
	assert_null(ki_lan_history_find(&h, "a.d", 5));   /* another channel */
	assert_null(ki_lan_history_find(&h, "a.b", 0));
	ki_lan_history_free(&h);
}

static void test_byte_cap_evicts_oldest(void **state)
{
	(void)state;
	struct lan_history h;
	/* Frames of 65 + 3 + 500 = 568 bytes: 10 KiB keeps 18 of them. */
	assert_int_equal(ki_lan_history_init(&h, 10240), 0);
	for (uint64_t q = 1; q <= 1000; q++) {
		add(&h, "x.y", q, 500);
		assert_true(holds(&h, "x.y", q)); /* the newest is always kept */
		assert_true(h.count <= 10240 / 568);
	}
	size_t kept = 0;
	for (uint64_t q = 1; q <= 1000; q++)
		kept += (size_t)holds(&h, "x.y", q);
	assert_int_equal(kept, h.count);
	assert_true(kept >= 16);
	/* ... and they are the newest. */
	for (uint64_t q = 1000 - kept + 1; q <= 1000; q++)
		assert_true(holds(&h, "x.y", q));
	/* Mixed sizes wrap around the byte ring without ever overlapping:
	 * every record found holds its own frame. */
	for (uint64_t q = 1001; q <= 3000; q++)
		add(&h, "x.y", q, (uint32_t)(q * 37 % 1400));
	for (uint64_t q = 2900; q <= 3000; q++)
		if (ki_lan_history_find(&h, "x.y", q))
			assert_true(holds(&h, "x.y", q));
	assert_true(holds(&h, "x.y", 3000));
	ki_lan_history_free(&h);
}

static void test_message_cap(void **state)
{
	(void)state;
	struct lan_history h;
	assert_int_equal(ki_lan_history_init(&h, LAN_HISTORY_BYTES), 0);
	uint64_t total = LAN_HISTORY_MSGS + 500;
	for (uint64_t q = 1; q <= total; q++)
		add(&h, "m", q, 1);
	assert_int_equal(h.count, LAN_HISTORY_MSGS);
	assert_null(ki_lan_history_find(&h, "m", 500));
	/* The index is lossy by design (a bounded probe), but at this load
	 * nearly every kept message is found. */
	size_t found = 0;
	for (uint64_t q = total - LAN_HISTORY_MSGS + 1; q <= total; q++)
		found += (size_t)holds(&h, "m", q);
	assert_true(found >= LAN_HISTORY_MSGS * 99 / 100);
	ki_lan_history_free(&h);
}

static void test_too_big_not_kept(void **state)
{
	(void)state;
	struct lan_history h;
	assert_int_equal(ki_lan_history_init(&h, 1000), 0);
	add(&h, "s", 1, 100);
	add(&h, "s", 2, 1000); /* 1067 bytes: more than the whole history */
	assert_null(ki_lan_history_find(&h, "s", 2));
	assert_true(holds(&h, "s", 1)); /* and it evicted nothing */
	ki_lan_history_free(&h);
}

static void test_holdoff_and_rate(void **state)
{
	(void)state;
	struct lan_history h;
	assert_int_equal(ki_lan_history_init(&h, LAN_HISTORY_BYTES), 0);
	add(&h, "r", 1, 1000);
	struct lan_hist_rec *r = ki_lan_history_find(&h, "r", 1);
	assert_non_null(r);
	uint64_t t = 5000 * MS;
	assert_int_equal(ki_lan_history_resend_ok(&h, r, t), 1);
	/* Many subscribers ask within the holdoff: one resend answers all. */
	assert_int_equal(ki_lan_history_resend_ok(&h, r, t + 1 * MS), 0);
	assert_int_equal(ki_lan_history_resend_ok(&h, r, t + LAN_RESEND_HOLDOFF_NS - 1), 0);
	assert_int_equal(ki_lan_history_resend_ok(&h, r, t + LAN_RESEND_HOLDOFF_NS), 1);
	ki_lan_history_free(&h);

	/* A flood of asks (forged NAKs) for every message, over and over, for
	 * one second: what is granted stays within burst + rate. */
	assert_int_equal(ki_lan_history_init(&h, LAN_HISTORY_BYTES), 0);
	for (uint64_t q = 1; q <= 3000; q++)
		add(&h, "r", q, 1300);
	uint64_t granted = 0, refused = 0, start = 7000 * MS;
	for (uint64_t now = start; now <= start + 1000 * MS; now += MS / 2)
		for (uint64_t q = 1; q <= 3000; q++) {
			struct lan_hist_rec *x = ki_lan_history_find(&h, "r", q);
			if (!x)
				continue;
			int ok = ki_lan_history_resend_ok(&h, x, now);
			if (ok == 1)
				granted += x->len;
			if (ok < 0) {
				refused++;
				break; /* as the publisher: stop until the budget refills */
			}
		}
	assert_true(refused > 0);
	assert_true(granted <= LAN_RESEND_BURST + LAN_RESEND_RATE + 2000);
	assert_true(granted >= LAN_RESEND_RATE / 2); /* but it does resend */
	ki_lan_history_free(&h);
}

/* A message whose frames exceed the whole burst (1 MiB; the history keeps
 * up to 4 MiB) could never be resent: under repair every NAK for it was
 * refused and it was reported lost. It goes when the budget is full, and
 * the excess is paid at the rate before anything else is resent. */
static void test_larger_than_burst(void **state)
{
	(void)state;
	struct lan_history h;
	assert_int_equal(ki_lan_history_init(&h, LAN_HISTORY_BYTES), 0);
	enum { PAYLOAD = 1300 };
	size_t one = frame((uint8_t[4000]){0}, "b", 2, PAYLOAD), n = (2u << 20) / one;
	uint8_t *frames = malloc(n * one);
	assert_non_null(frames);
	for (size_t i = 0; i < n; i++)
		frame(frames + i * one, "b", 2, PAYLOAD);
	add(&h, "b", 1, 100);
	ki_lan_history_add(&h, "b", 2, frames, n * one);
	add(&h, "b", 3, 100);
	struct lan_hist_rec *small = ki_lan_history_find(&h, "b", 1),
			    *big = ki_lan_history_find(&h, "b", 2),
			    *last = ki_lan_history_find(&h, "b", 3);
	assert_non_null(big);
	assert_true(big->len > LAN_RESEND_BURST);
	uint64_t t = 9000 * MS;
	assert_int_equal(ki_lan_history_resend_ok(&h, small, t), 1);
	/* Not while the budget is short of full... */
	assert_int_equal(ki_lan_history_resend_ok(&h, big, t), -1);
	/* ...but once it is. */
	assert_int_equal(ki_lan_history_resend_ok(&h, big, t + 1000 * MS), 1);
	/* Then nothing until the excess (about 1 MiB at 8 MiB/s: 125 ms)
	 * is paid. */
	uint64_t paid = (big->len - LAN_RESEND_BURST) * 1000000000ull / LAN_RESEND_RATE;
	assert_int_equal(ki_lan_history_resend_ok(&h, last, t + 1000 * MS + paid - MS), -1);
	assert_int_equal(ki_lan_history_resend_ok(&h, last, t + 1000 * MS + paid + 2 * MS), 1);
	free(frames);
	ki_lan_history_free(&h);
}

static void test_nak_rate(void **state)
{
	(void)state;
	struct lan_history h;
	assert_int_equal(ki_lan_history_init(&h, 4096), 0);
	/* A flood of NAKs, one every 10 us for 2 s: the burst, then the rate. */
	uint64_t taken = 0, start = 3000 * MS;
	for (uint64_t now = start; now < start + 2000 * MS; now += MS / 100)
		taken += (uint64_t)ki_lan_history_nak_ok(&h, now);
	assert_true(taken <= LAN_NAK_BURST + 2 * LAN_NAK_RATE + 1);
	assert_true(taken >= 2 * LAN_NAK_RATE * 9 / 10);
	/* An honest pace (one each 25 ms) is never refused. */
	for (uint64_t now = start + 3000 * MS; now < start + 5000 * MS; now += 25 * MS)
		assert_int_equal(ki_lan_history_nak_ok(&h, now), 1);
	ki_lan_history_free(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_find_exact),
		cmocka_unit_test(test_byte_cap_evicts_oldest),
		cmocka_unit_test(test_larger_than_burst),
		cmocka_unit_test(test_message_cap),
		cmocka_unit_test(test_too_big_not_kept),
		cmocka_unit_test(test_holdoff_and_rate),
		cmocka_unit_test(test_nak_rate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
