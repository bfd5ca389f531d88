/* LAN stream accounting (src/lan_stream.c): in-order delivery through the
 * reorder window, duplicates and late arrivals, gaps lost after the
 * reorder time, tail losses learnt from state frames, hostile sequence
 * jumps, and - under seeded random loss, duplication and reordering -
 * delivered + lost = published, each message once and in order. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lan_stream.h"

#define MS 1000000ull
#define REORDER (20 * MS)

struct seen {
	uint64_t seqs[100000];
	size_t n;
	uint64_t lost;
	int out_of_order;
};

static void on_message(void *ctx, struct lan_stream *s, struct lan_msg *m)
{
	struct seen *v = ctx;
	if (v->n && m->seq <= v->seqs[v->n - 1])
		v->out_of_order = 1;
	if (m->len != 4 || memcmp(m->data, &m->seq, 4) != 0)
		v->out_of_order = 1; /* payload mixed up */
	v->seqs[v->n++] = m->seq;
	free(m->data);
	(void)s;
}

static void on_loss(void *ctx, struct lan_stream *s, uint64_t n)
{
	struct seen *v = ctx;
	v->lost += n;
	(void)s;
}

static struct seen *seen;
static struct lan_sink sink;

static int setup(void **state)
{
	seen = calloc(1, sizeof *seen);
	sink = (struct lan_sink){on_message, on_loss, seen};
	(void)state;
	return seen ? 0 : -1;
}

static int teardown(void **state)
{
	free(seen);
	(void)state;
	return 0;
}

static int take(struct lan_stream *s, uint64_t seq, uint64_t now)
{
	struct lan_msg m = {.seq = seq, .len = 4};
	m.data = malloc(4);
	memcpy(m.data, &seq, 4);
	return ki_lan_stream_take(s, &m, now, REORDER, &sink);
}

/* A batch's message is written into the queue item that will carry it:
 * its lan_msg lies in its own block. Dropped as a duplicate or a late
 * arrival, it is freed with nothing written to it after (ASan: the old
 * ki_lan_msg_free emptied it after freeing its block). */
struct msg_block {
	struct lan_msg m;
	uint8_t payload[4];
};

static int take_in_block(struct lan_stream *s, uint64_t seq, uint64_t now)
{
	struct msg_block *b = malloc(sizeof *b);
	assert_non_null(b);
	b->m = (struct lan_msg){.seq = seq, .len = 4, .data = b->payload, .block = b};
	memcpy(b->payload, &seq, 4);
	return ki_lan_stream_take(s, &b->m, now, REORDER, &sink);
}

static void test_message_in_its_own_block_dropped(void **state)
{
	(void)state;
	struct lan_stream s = {0};
	for (uint64_t q = 1; q <= 3; q++)
		assert_int_equal(take(&s, q, MS), 1);
	assert_int_equal(take_in_block(&s, 3, MS), 0); /* a duplicate */
	assert_int_equal(s.duplicates, 1);
	s.delivered_mask = 0; /* so that 2 is taken for a late arrival */
	assert_int_equal(take_in_block(&s, 2, MS), 0);
	assert_int_equal(s.late, 1);
	assert_int_equal(seen->n, 3);
	ki_lan_stream_clear(&s);
}

static void test_in_order_and_late_join(void **state)
{
	(void)state;
	struct lan_stream s = {0};
	for (uint64_t q = 100; q < 110; q++)
		assert_int_equal(take(&s, q, MS), 1);
	assert_int_equal(seen->n, 10);
	assert_int_equal(seen->seqs[0], 100); /* joined late: nothing before is lost */
	assert_int_equal(s.lost, 0);
	assert_int_equal(s.delivered, 10);
}

/* The first frame heard was a fragment of message 5 that never completes:
 * the stream starts at 5 all the same, so 5 is a gap once 6 arrives and
 * is reported lost, not skipped as if sent before the join. */
static void test_begin_at_an_incomplete_first_message(void **state)
{
	(void)state;
	struct lan_stream s = {0};
	ki_lan_stream_begin(&s, 5);
	ki_lan_stream_begin(&s, 9); /* no effect once started */
	assert_int_equal(take(&s, 6, MS), 1);
	assert_int_equal(seen->n, 0); /* 6 waits for 5 */
	size_t missing;
	struct lan_seq_range r[4];
	missing = ki_lan_stream_missing(&s, r, 4);
	assert_int_equal(missing, 1);
	assert_int_equal(r[0].first, 5);
	assert_int_equal(r[0].last, 5);
	ki_lan_stream_tick(&s, MS + REORDER, REORDER, &sink);
	assert_int_equal(seen->n, 1);
	assert_int_equal(seen->seqs[0], 6);
	assert_int_equal(seen->lost, 1);
	assert_int_equal(s.delivered + s.lost, 2);
}

static void test_reorder_within_window(void **state)
{
	(void)state;
	struct lan_stream s = {0};
	take(&s, 1, MS);
	take(&s, 3, MS);
	take(&s, 4, MS);
	assert_int_equal(seen->n, 1); /* 3 and 4 wait for 2 */
	assert_true(ki_lan_stream_tick(&s, 2 * MS, REORDER, &sink) <= REORDER);
	take(&s, 2, 5 * MS);
	assert_int_equal(seen->n, 4);
	assert_false(seen->out_of_order);
	assert_int_equal(s.lost, 0);
	assert_int_equal(ki_lan_stream_tick(&s, 100 * MS, REORDER, &sink), UINT64_MAX);
}

static void test_gap_lost_after_reorder_time_then_late(void **state)
{
	(void)state;
	struct lan_stream s = {0};
	take(&s, 1, MS);
	take(&s, 4, MS);
	ki_lan_stream_tick(&s, MS + REORDER - 1, REORDER, &sink);
	assert_int_equal(seen->n, 1);
	ki_lan_stream_tick(&s, MS + REORDER, REORDER, &sink);
	assert_int_equal(seen->n, 2);
	assert_int_equal(seen->lost, 2);
	assert_int_equal(take(&s, 2, 50 * MS), 0); /* late: already counted lost */
	assert_int_equal(take(&s, 4, 50 * MS), 0); /* duplicate */
	assert_int_equal(s.late, 1);
	assert_int_equal(s.duplicates, 1);
	assert_int_equal(s.delivered + s.lost, 4);
}

/* A fragment of a message the stream has passed (src/lan.c drops it
 * before reassembly): a duplicate if that message was delivered, late if
 * it was reported lost (the rest of a partial evicted by a flood, whose
 * sequence was announced and given up) or came before the stream began.
 * Such fragments were all counted duplicates: on a path that duplicates
 * nothing, a 16 MiB message evicted early showed 8,000 duplicates. */
static void test_behind_duplicate_or_late(void **state)
{
	(void)state;
	struct lan_stream s = {0};
	take(&s, 10, MS);
	ki_lan_stream_announce(&s, 11, MS, REORDER, &sink); /* 11: a partial given up */
	ki_lan_stream_tick(&s, MS + REORDER, REORDER, &sink);
	take(&s, 12, 30 * MS);
	assert_int_equal(seen->lost, 1);
	ki_lan_stream_behind(&s, 11); /* the rest of 11's fragments */
	assert_int_equal(s.late, 1);
	assert_int_equal(s.duplicates, 0);
	ki_lan_stream_behind(&s, 12);
	ki_lan_stream_behind(&s, 10);
	assert_int_equal(s.duplicates, 2);
	ki_lan_stream_behind(&s, 9); /* before the stream began here */
	assert_int_equal(s.late, 2);
	assert_int_equal(s.delivered + s.lost, 3);
	ki_lan_stream_clear(&s);
}

static void test_duplicates(void **state)
{
	(void)state;
	struct lan_stream s = {0};
	take(&s, 1, MS);
	take(&s, 1, MS);
	take(&s, 3, MS);
	take(&s, 3, MS); /* held, not yet delivered: still a duplicate */
	take(&s, 2, MS);
	take(&s, 2, MS);
	assert_int_equal(seen->n, 3);
	assert_int_equal(s.duplicates, 3);
	assert_int_equal(s.lost, 0);
}

static void test_window_overflow(void **state)
{
	(void)state;
	struct lan_stream s = {0};
	take(&s, 1, MS);
	take(&s, 3, MS);
	/* 2 missing; 3 + 64 forces the window on: 2 lost, 3 delivered. */
	take(&s, 3 + LAN_REORDER_WINDOW, MS);
	assert_int_equal(seen->lost, 1);
	assert_int_equal(seen->n, 2);
	assert_int_equal(seen->seqs[1], 3);
	/* 4 .. 66 still within the window of 67: they may come. */
	for (uint64_t q = 4; q < 3 + LAN_REORDER_WINDOW; q++)
		take(&s, q, MS);
	assert_int_equal(seen->n, 2 + LAN_REORDER_WINDOW);
	assert_int_equal(seen->lost, 1);
	assert_false(seen->out_of_order);
}

static void test_hostile_jump(void **state)
{
	(void)state;
	struct lan_stream s = {0};
	take(&s, 1, MS);
	take(&s, (1ull << 63) - 1, MS); /* at once, not in 2^63 steps */
	assert_int_equal(seen->n, 1);
	assert_int_equal(seen->lost, (1ull << 63) - 1 - LAN_REORDER_WINDOW - 1);
	ki_lan_stream_announce(&s, (1ull << 63) - 1, 2 * MS, REORDER, &sink);
	ki_lan_stream_tick(&s, 3 * MS + REORDER, REORDER, &sink);
	assert_int_equal(s.delivered + s.lost, (1ull << 63) - 1);
}

static void test_tail_loss_from_state(void **state)
{
	(void)state;
	struct lan_stream s = {0};
	take(&s, 1, MS);
	take(&s, 2, MS);
	/* 3 and 4 were lost; the idle heartbeat says 4 was the last. */
	ki_lan_stream_announce(&s, 4, 10 * MS, REORDER, &sink);
	assert_int_equal(seen->lost, 0);
	ki_lan_stream_tick(&s, 10 * MS + REORDER, REORDER, &sink);
	assert_int_equal(seen->lost, 2);
	/* A heartbeat heard first starts the stream after it. */
	struct lan_stream t = {0};
	ki_lan_stream_announce(&t, 50, MS, REORDER, &sink);
	take(&t, 51, MS);
	assert_int_equal(t.lost, 0);
	assert_int_equal(t.delivered, 1);
	/* "Nothing sent yet" (0) heard first: a lost first message counts. */
	struct lan_stream u = {0};
	ki_lan_stream_announce(&u, 0, MS, REORDER, &sink);
	take(&u, 2, MS);
	ki_lan_stream_tick(&u, MS + REORDER, REORDER, &sink);
	assert_int_equal(u.lost, 1);
	assert_int_equal(u.delivered, 1);
}

static void test_flush(void **state)
{
	(void)state;
	struct lan_stream s = {0};
	take(&s, 1, MS);
	take(&s, 5, MS);
	take(&s, 7, MS);
	ki_lan_stream_announce(&s, 9, MS, REORDER, &sink);
	ki_lan_stream_flush(&s, &sink);
	assert_int_equal(seen->n, 3);
	assert_int_equal(seen->lost, 6);
	assert_int_equal(s.nheld, 0);
	ki_lan_stream_clear(&s);
}

/* A stream made by a fragment whose message never completed (a publisher
 * gone mid-message): nothing was heard whole, so its end loses nothing
 * (it lost "sequence 0", which no publisher sends). */
static void test_flush_never_started(void **state)
{
	(void)state;
	struct lan_stream s = {0};
	ki_lan_stream_flush(&s, &sink);
	assert_int_equal(seen->n, 0);
	assert_int_equal(seen->lost, 0);
	take(&s, 1, MS); /* its first message, if it comes after all */
	assert_int_equal(seen->n, 1);
	assert_int_equal(seen->lost, 0);
	ki_lan_stream_clear(&s);
}

/* What streams hold behind gaps is summed in the handle's total, and
 * given back as it is delivered or cleared. */
static void test_held_total(void **state)
{
	(void)state;
	struct lan_held total = {0};
	struct lan_stream a = {.held_total = &total}, b = {.held_total = &total};
	take(&a, 1, MS);
	take(&a, 3, MS);
	take(&a, 4, MS);
	take(&b, 10, MS);
	take(&b, 12, MS);
	assert_int_equal(total.msgs, 3);
	assert_int_equal(total.bytes, 12);
	take(&a, 2, MS); /* fills a's gap: 2, 3, 4 delivered */
	assert_int_equal(total.msgs, 1);
	assert_int_equal(total.bytes, 4);
	ki_lan_stream_clear(&b);
	assert_int_equal(total.msgs, 0);
	assert_int_equal(total.bytes, 0);
	ki_lan_stream_clear(&a);
}

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void test_random_faults_exact_accounting(void **state)
{
	(void)state;
	/* 50000 messages; 5 % lost, 1 % duplicated, 3 % delayed by up to 40
	 * positions; time advances 10 us a message. */
	enum { N = 50000 };
	struct lan_stream s = {0};
	uint64_t *late_seq = calloc(N, sizeof *late_seq), *late_at = calloc(N, sizeof *late_at);
	size_t nlate = 0;
	uint64_t now = MS;
	for (uint64_t q = 1; q <= N; q++, now += 10000) {
		for (size_t i = 0; i < nlate;)
			if (late_at[i] <= q) {
				take(&s, late_seq[i], now);
				late_seq[i] = late_seq[--nlate];
				late_at[i] = late_at[nlate];
			} else {
				i++;
			}
		uint64_t r = rng() % 100;
		if (r < 5)
			continue;
		if (r < 8) {
			late_seq[nlate] = q;
			late_at[nlate++] = q + 1 + rng() % 40;
			continue;
		}
		take(&s, q, now);
		if (r < 9)
			take(&s, q, now);
		ki_lan_stream_tick(&s, now, REORDER, &sink);
	}
	for (size_t i = 0; i < nlate; i++)
		take(&s, late_seq[i], now);
	ki_lan_stream_announce(&s, N, now, REORDER, &sink);
	assert_true(ki_lan_stream_tick(&s, now + REORDER, REORDER, &sink) == UINT64_MAX);
	assert_false(seen->out_of_order);
	assert_int_equal(seen->n + seen->lost, N);
	assert_int_equal(s.delivered, seen->n);
	assert_int_equal(s.lost, seen->lost);
	/* Reordering by up to 40 messages of 10 us is within 20 ms: only
	 * the dropped 5 % are lost. */
	assert_true(seen->lost > N * 4 / 100 && seen->lost < N * 6 / 100);
	assert_true(s.duplicates > N / 200);
	assert_int_equal(s.late, 0);
	free(late_seq);
	free(late_at);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_in_order_and_late_join, setup, teardown),
		cmocka_unit_test_setup_teardown(test_begin_at_an_incomplete_first_message, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reorder_within_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gap_lost_after_reorder_time_then_late, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_behind_duplicate_or_late, setup, teardown),
		cmocka_unit_test_setup_teardown(test_window_overflow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_jump, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tail_loss_from_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush_never_started, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_total, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_faults_exact_accounting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_message_in_its_own_block_dropped, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
