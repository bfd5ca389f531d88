/* Where a LAN stream begins (src/lan_stream.c ki_lan_stream_first, and
 * src/lan_listen.c): a receiver that heard a stream begin, by the age its
 * frames carry and the moment it started listening, accounts for it from
 * sequence 1 (what it missed of the beginning is a gap); a late joiner, or
 * a frame of an older publisher without the age, begins at the frame
 * heard; a resend never begins a stream. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lan_listen.h"
#include "lan_stream.h"

#define MS 1000000ull
#define SEC (1000 * MS)
#define REORDER (20 * MS)

static uint64_t delivered_seq[16], lost;
static size_t ndelivered;

static void on_message(void *ctx, struct lan_stream *s, struct lan_msg *m)
{
	if (ndelivered < 16)
		delivered_seq[ndelivered] = m->seq;
	ndelivered++;
	free(m->data);
	(void)ctx;
	(void)s;
}

static void on_loss(void *ctx, struct lan_stream *s, uint64_t n)
{
	lost += n;
	(void)ctx;
	(void)s;
}

static const struct lan_sink sink = {on_message, on_loss, NULL};

static int reset(void **state)
{
	ndelivered = 0;
	lost = 0;
	(void)state;
	return 0;
}

static int take(struct lan_stream *s, uint64_t seq, uint64_t now)
{
	struct lan_msg m = {.seq = seq, .len = 1};
	m.data = malloc(1);
	return ki_lan_stream_take(s, &m, now, REORDER, &sink);
}

static struct lan_frame frame(uint64_t seq, uint8_t flags, int has_age, uint32_t age_ms)
{
	return (struct lan_frame){.seq = seq, .flags = flags, .has_age = (uint8_t)has_age,
				  .age_ms = age_ms, .frag_count = 1};
}

static void test_heard_start_margin(void **state)
{
	(void)state;
	uint64_t since = 10 * SEC;
	/* Began 150 ms after we listened (first frame at since + 200 ms, age
	 * 50 ms): heard. */
	assert_true(ki_lan_stream_heard_start(since + 200 * MS, 50, since));
	/* Began 50 ms after: within the margin, not vouched for. */
	assert_false(ki_lan_stream_heard_start(since + 100 * MS, 50, since));
	/* Right at the margin: not heard (strictly later only). */
	assert_false(ki_lan_stream_heard_start(since + LAN_START_MARGIN_NS, 0, since));
	assert_true(ki_lan_stream_heard_start(since + LAN_START_MARGIN_NS + 1, 0, since));
	/* Began before we listened. */
	assert_false(ki_lan_stream_heard_start(since + 5 * SEC, 6000, since));
	/* The rate allowance: age / 1000 more. An hour-old stream must have
	 * begun 100 ms + 3.6 s after we listened. */
	uint64_t hour = 3600 * SEC;
	assert_false(ki_lan_stream_heard_start(since + hour + 3 * SEC, 3600000, since));
	assert_true(ki_lan_stream_heard_start(since + hour + 3700 * MS + 1, 3600000, since));
	/* A saturated age: the stream is older than anything can tell. */
	assert_false(ki_lan_stream_heard_start(UINT64_MAX - 1, LAN_AGE_MAX, 0));
	/* An age longer than the receiver's clock has run. */
	assert_false(ki_lan_stream_heard_start(5 * SEC, 3000000, 1 * SEC));
	/* Not listening, or listening only since after the frame came. */
	assert_false(ki_lan_stream_heard_start(since, 0, LAN_LISTEN_NEVER));
	assert_false(ki_lan_stream_heard_start(since, 0, since + 1));
}

/* Heard from its beginning, the first frame heard is message 4: 1..3 are
 * a gap, reported lost after the reorder time (or asked for). */
static void test_listening_begins_at_one(void **state)
{
	(void)state;
	struct lan_stream s = {0};
	struct lan_frame f = frame(4, 0, 1, 30);
	assert_int_equal(ki_lan_stream_first(&s, &f, 5 * SEC, 1 * SEC), 0);
	assert_true(s.started);
	assert_int_equal(s.next, 1);
	assert_int_equal(take(&s, 4, 5 * SEC), 1);
	assert_int_equal(ndelivered, 0);
	struct lan_seq_range r[4];
	assert_int_equal(ki_lan_stream_missing(&s, r, 4), 1);
	assert_int_equal(r[0].first, 1);
	assert_int_equal(r[0].last, 3);
	ki_lan_stream_tick(&s, 5 * SEC + REORDER, REORDER, &sink);
	assert_int_equal(lost, 3);
	assert_int_equal(ndelivered, 1);
	assert_int_equal(delivered_seq[0], 4);
	/* Once begun, later frames change nothing. */
	f = frame(9, 0, 1, 0);
	assert_int_equal(ki_lan_stream_first(&s, &f, 9 * SEC, 1 * SEC), 0);
	assert_int_equal(s.next, 5);
	ki_lan_stream_clear(&s);
}

/* A state frame heard first from a stream we heard begin: what it
 * announces is a gap from 1 (a "nothing sent yet", 0, is none). */
static void test_listening_state_first(void **state)
{
	(void)state;
	struct lan_stream s = {0};
	struct lan_frame f = frame(3, LAN_FLAG_STATE, 1, 60);
	assert_int_equal(ki_lan_stream_first(&s, &f, 5 * SEC, 1 * SEC), 0);
	ki_lan_stream_announce(&s, 3, 5 * SEC, REORDER, &sink);
	ki_lan_stream_tick(&s, 5 * SEC + REORDER, REORDER, &sink);
	assert_int_equal(lost, 3);
	struct lan_stream t = {0};
	f = frame(0, LAN_FLAG_STATE, 1, 0);
	assert_int_equal(ki_lan_stream_first(&t, &f, 5 * SEC, 1 * SEC), 0);
	ki_lan_stream_announce(&t, 0, 5 * SEC, REORDER, &sink);
	assert_int_equal(take(&t, 1, 5 * SEC), 1);
	assert_int_equal(lost, 3);
	assert_int_equal(ndelivered, 1);
	ki_lan_stream_clear(&s);
	ki_lan_stream_clear(&t);
}

/* A late joiner (the stream began before it listened), a frame without
 * the age (an older publisher), a saturated age: the stream begins at the
 * frame heard, nothing before it is counted. */
static void test_late_joiner_and_no_age(void **state)
{
	(void)state;
	struct lan_frame cases[] = {
		frame(40, 0, 1, 5000),       /* began 1 s before we listened */
		frame(40, 0, 0, 0),          /* no age: old behaviour */
		frame(40, 0, 1, LAN_AGE_MAX) /* saturated */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct lan_stream s = {0};
		assert_int_equal(ki_lan_stream_first(&s, &cases[i], 5 * SEC, 1 * SEC), 0);
		assert_false(s.started);
		assert_int_equal(take(&s, 40, 5 * SEC), 1);
		assert_int_equal(take(&s, 41, 5 * SEC), 1);
		ki_lan_stream_tick(&s, 9 * SEC, REORDER, &sink);
		assert_int_equal(s.lost, 0);
		assert_int_equal(s.delivered, 2);
		ki_lan_stream_clear(&s);
	}
	assert_int_equal(lost, 0);
}

/* A resend heard before any live frame (another host asked for an old
 * message): dropped, the stream not begun by it; the first live frame
 * then begins it (a late joiner: there, nothing lost). Counted nowhere:
 * neither delivered nor lost, duplicate nor late. */
static void test_resend_never_begins(void **state)
{
	(void)state;
	struct lan_stream s = {0};
	struct lan_frame r = frame(5, LAN_FLAG_REPAIR, 1, 10);
	/* Even with an age that would say "heard from the beginning". */
	assert_int_equal(ki_lan_stream_first(&s, &r, 9 * SEC, 1 * SEC), -1);
	assert_false(s.started);
	assert_int_equal(s.duplicates + s.late + s.delivered + s.lost, 0);
	struct lan_frame live = frame(90, 0, 1, 8500);
	assert_int_equal(ki_lan_stream_first(&s, &live, 9 * SEC, 1 * SEC), 0);
	assert_int_equal(take(&s, 90, 9 * SEC), 1);
	ki_lan_stream_tick(&s, 10 * SEC, REORDER, &sink);
	assert_int_equal(s.lost, 0);
	assert_int_equal(s.delivered, 1);
	assert_int_equal(delivered_seq[0], 90);
	/* Once begun, a resend is taken as usual (not refused here). */
	r = frame(91, LAN_FLAG_REPAIR, 1, 10);
	assert_int_equal(ki_lan_stream_first(&s, &r, 9 * SEC, 1 * SEC), 0);
	ki_lan_stream_clear(&s);
}

/* Its channel unsubscribed: what the stream held is delivered and its gap
 * reported lost at once; it is then not begun, so that heard again after
 * a new subscription it begins as a late joiner's (what was published
 * while no pattern matched is not counted lost). */
static void test_restart_after_leaving(void **state)
{
	(void)state;
	struct lan_stream s = {0};
	ki_lan_stream_begin(&s, 1);
	for (uint64_t q = 1; q <= 10; q++)
		assert_int_equal(take(&s, q, 2 * SEC), 1);
	assert_int_equal(take(&s, 12, 2 * SEC), 1); /* 11 missing */
	ki_lan_stream_announce(&s, 13, 2 * SEC, REORDER, &sink);
	ki_lan_stream_restart(&s, &sink);
	assert_int_equal(lost, 2); /* 11 and 13 */
	assert_int_equal(ndelivered, 11);
	assert_int_equal(delivered_seq[10], 12);
	assert_false(s.started);
	assert_int_equal(s.nheld, 0);
	assert_int_equal(s.gap_since_ns, 0);
	/* Subscribed again at 6 s: its first frame, message 30 of a stream
	 * that began at 1 s, begins it there. */
	struct lan_frame f = frame(30, 0, 1, 7000);
	assert_int_equal(ki_lan_stream_first(&s, &f, 8 * SEC, 6 * SEC), 0);
	assert_int_equal(take(&s, 30, 8 * SEC), 1);
	assert_int_equal(take(&s, 31, 8 * SEC), 1);
	ki_lan_stream_announce(&s, 31, 8 * SEC, REORDER, &sink);
	ki_lan_stream_tick(&s, 9 * SEC, REORDER, &sink);
	assert_int_equal(lost, 2);
	assert_int_equal(ndelivered, 13);
	assert_int_equal(delivered_seq[11], 30);
	/* A stream never begun: nothing to deliver or report. */
	struct lan_stream t = {0};
	ki_lan_stream_restart(&t, &sink);
	assert_false(t.started);
	assert_int_equal(lost, 2);
	ki_lan_stream_clear(&s);
}

static void test_listen_since(void **state)
{
	(void)state;
	struct lan_listen l = {0};
	assert_int_equal(ki_lan_listen_since(&l, "orders.eu"), LAN_LISTEN_NEVER);
	assert_int_equal(ki_lan_listen_add(&l, "orders.us", 5 * SEC), 0);
	/* A pattern of the same group that does not match: frames of
	 * orders.eu were filtered out until a pattern for it came. */
	assert_int_equal(ki_lan_listen_since(&l, "orders.eu"), LAN_LISTEN_NEVER);
	assert_int_equal(ki_lan_listen_add(&l, "orders.>", LAN_LISTEN_NEVER), 0);
	assert_int_equal(ki_lan_listen_since(&l, "orders.eu"), LAN_LISTEN_NEVER);
	ki_lan_listen_set(&l, "orders.>", 7 * SEC);
	assert_int_equal(ki_lan_listen_since(&l, "orders.eu"), 7 * SEC);
	/* The earliest matching pattern still subscribed counts. */
	assert_int_equal(ki_lan_listen_since(&l, "orders.us"), 5 * SEC);
	assert_int_equal(ki_lan_listen_add(&l, ">", 9 * SEC), 0);
	assert_int_equal(ki_lan_listen_since(&l, "orders.us"), 5 * SEC);
	ki_lan_listen_remove(&l, "orders.us");
	assert_int_equal(ki_lan_listen_since(&l, "orders.us"), 7 * SEC);
	ki_lan_listen_remove(&l, "orders.>");
	assert_int_equal(ki_lan_listen_since(&l, "orders.us"), 9 * SEC);
	ki_lan_listen_remove(&l, "no.such"); /* no effect */
	/* A stream first heard at 12 s was forgotten: nothing earlier is
	 * vouched for any more. */
	ki_lan_listen_forget(&l, 12 * SEC);
	ki_lan_listen_forget(&l, 11 * SEC);
	assert_int_equal(ki_lan_listen_since(&l, "metrics.cpu"), 12 * SEC);
	ki_lan_listen_remove(&l, ">");
	assert_int_equal(ki_lan_listen_since(&l, "metrics.cpu"), LAN_LISTEN_NEVER);
	/* Many patterns: the list grows. */
	char name[32];
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof name, "p%d.>", i);
		assert_int_equal(ki_lan_listen_add(&l, name, (uint64_t)(100 - i) * SEC), 0);
	}
	assert_int_equal(ki_lan_listen_since(&l, "p99.x"), 12 * SEC); /* the floor */
	assert_int_equal(ki_lan_listen_since(&l, "p3.x"), 97 * SEC);
	ki_lan_listen_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_heard_start_margin, reset),
		cmocka_unit_test_setup(test_listening_begins_at_one, reset),
		cmocka_unit_test_setup(test_listening_state_first, reset),
		cmocka_unit_test_setup(test_late_joiner_and_no_age, reset),
		cmocka_unit_test_setup(test_resend_never_begins, reset),
		cmocka_unit_test_setup(test_restart_after_leaving, reset),
		cmocka_unit_test_setup(test_listen_since, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
