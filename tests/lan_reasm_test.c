/* LAN reassembly (src/lan_reasm.c): fragments in any order make the
 * message; duplicates, disagreeing fragments and oversize messages are
 * refused and counted; a flood of never-completed partials stays under the
 * memory and count caps, evicting (and counting) the oldest; partials
 * expire; each partial evicted or expired (and no other) is named to the
 * discarded callback, so its stream can report it lost. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lan_reasm.h"

#define MS 1000000ull

/* Fragment idx of a message of total bytes in count pieces, payload taken
 * from msg. */
static struct lan_frame frag(uint64_t seq, uint32_t total, uint32_t count, uint32_t idx,
			     const uint8_t *msg)
{
	struct lan_frame f = {0};
	f.publisher = 5;
	f.seq = seq;
	f.total_len = total;
	f.frag_count = count;
	f.frag_index = idx;
	strcpy(f.channel, "big.one");
	f.channel_len = 7;
	uint64_t at = ki_lan_fragment_offset(total, count, idx);
	uint32_t chunk = ki_lan_fragment_chunk(total, count);
	f.payload_len = idx + 1 < count ? chunk : (uint32_t)(total - at);
	f.payload = msg ? msg + at : NULL;
	return f;
}

static void test_any_order(void **state)
{
	(void)state;
	enum { TOTAL = 100000, COUNT = 70 };
	uint8_t *msg = malloc(TOTAL);
	for (int i = 0; i < TOTAL; i++)
		msg[i] = (uint8_t)(i * 31 + 7);
	struct lan_reasm r;
	ki_lan_reasm_init(&r, 0, 0, 0);
	struct lan_msg out = {0};
	/* Odd fragments first, then even ones backwards, one twice. */
	for (uint32_t i = 1; i < COUNT; i += 2) {
		struct lan_frame f = frag(9, TOTAL, COUNT, i, msg);
		assert_int_equal(ki_lan_reasm_add(&r, 1, &f, NULL, MS, &out), 0);
	}
	struct lan_frame again = frag(9, TOTAL, COUNT, 3, msg);
	assert_int_equal(ki_lan_reasm_add(&r, 1, &again, NULL, MS, &out), -1);
	assert_int_equal(r.duplicates, 1);
	struct lan_frame odd = frag(9, TOTAL, COUNT + 1, 4, msg);
	assert_int_equal(ki_lan_reasm_add(&r, 1, &odd, NULL, MS, &out), -1);
	assert_int_equal(r.inconsistent, 1);
	/* The same sequence from another host is another message. */
	struct lan_frame other = frag(9, TOTAL, COUNT, 0, msg);
	assert_int_equal(ki_lan_reasm_add(&r, 2, &other, NULL, MS, &out), 0);
	assert_int_equal(r.npartials, 2);
	int done = 0;
	for (int i = COUNT - 2; i >= 0; i -= 2) {
		struct lan_frame f = frag(9, TOTAL, COUNT, (uint32_t)i, msg);
		done = ki_lan_reasm_add(&r, 1, &f, NULL, MS, &out);
		assert_int_equal(done, i == 0 ? 1 : 0);
	}
	assert_int_equal(out.len, TOTAL);
	assert_int_equal(out.seq, 9);
	assert_memory_equal(out.data, msg, TOTAL);
	free(out.data);
	assert_int_equal(r.completed, 1);
	assert_int_equal(r.npartials, 1);
	ki_lan_reasm_free(&r);
	assert_int_equal(r.bytes, 0);
	free(msg);
}

static void test_sixteen_mib(void **state)
{
	(void)state;
	const uint32_t total = 16u << 20;
	uint8_t *msg = malloc(total);
	for (uint32_t i = 0; i < total; i += 4096)
		msg[i] = (uint8_t)(i >> 12);
	uint32_t count = ki_lan_fragment_count(total, 65000);
	struct lan_reasm r;
	ki_lan_reasm_init(&r, 0, 0, 0);
	struct lan_msg out = {0};
	int rc = 0;
	for (uint32_t i = 0; i < count; i++) {
		struct lan_frame f = frag(1, total, count, i, msg);
		rc = ki_lan_reasm_add(&r, 1, &f, NULL, MS, &out);
	}
	assert_int_equal(rc, 1);
	assert_int_equal(out.len, total);
	assert_memory_equal(out.data, msg, total);
	free(out.data);
	/* One byte more than the cap: refused before anything is held. */
	struct lan_frame f = frag(2, total + 1, count + 1, 0, NULL);
	assert_int_equal(ki_lan_reasm_add(&r, 1, &f, NULL, MS, &out), -1);
	assert_int_equal(r.too_big, 1);
	assert_int_equal(r.npartials, 0);
	ki_lan_reasm_free(&r);
	free(msg);
}

static void test_flood_held_under_cap(void **state)
{
	(void)state;
	/* 20000 bogus partials, each claiming 16 MiB (or tiny, many
	 * fragments), none ever completed. */
	static uint8_t junk[65536];
	struct lan_reasm r;
	ki_lan_reasm_init(&r, 0, 40u << 20, 0);
	struct lan_msg out;
	size_t peak = 0;
	for (uint64_t s = 1; s <= 20000; s++) {
		uint32_t total = s % 2 ? 16u << 20 : 100000;
		uint32_t count = s % 2 ? ki_lan_fragment_count(total, 65000) : total / 2;
		struct lan_frame f = frag(s, total, count, 0, junk);
		assert_int_equal(ki_lan_reasm_add(&r, s % 7, &f, NULL, MS, &out), 0);
		if (r.bytes > peak)
			peak = r.bytes;
		assert_true(r.bytes <= r.cap_bytes);
		assert_true(r.npartials <= LAN_REASM_PARTIALS);
	}
	assert_true(peak > (32u << 20)); /* the cap was reached, not avoided */
	assert_int_equal(r.evicted + r.npartials, 20000);
	assert_int_equal(r.completed, 0);
	/* A legitimate message still gets through after the flood. */
	uint8_t msg[3000];
	memset(msg, 'k', sizeof msg);
	struct lan_frame a = frag(77, 3000, 2, 1, msg), b = frag(77, 3000, 2, 0, msg);
	assert_int_equal(ki_lan_reasm_add(&r, 9, &a, NULL, MS, &out), 0);
	assert_int_equal(ki_lan_reasm_add(&r, 9, &b, NULL, MS, &out), 1);
	assert_memory_equal(out.data, msg, 3000);
	free(out.data);
	ki_lan_reasm_free(&r);
}

static void test_expiry(void **state)
{
	(void)state;
	uint8_t msg[3000] = {0};
	struct lan_reasm r;
	ki_lan_reasm_init(&r, 0, 0, 100 * MS);
	struct lan_msg out;
	struct lan_frame a = frag(1, 3000, 3, 0, msg), b = frag(2, 3000, 3, 0, msg);
	ki_lan_reasm_add(&r, 1, &a, NULL, 10 * MS, &out);
	ki_lan_reasm_add(&r, 1, &b, NULL, 60 * MS, &out);
	assert_int_equal(ki_lan_reasm_expire(&r, 50 * MS), 60 * MS);
	assert_int_equal(ki_lan_reasm_expire(&r, 110 * MS), 50 * MS);
	assert_int_equal(r.expired, 1);
	assert_int_equal(ki_lan_reasm_expire(&r, 160 * MS), UINT64_MAX);
	assert_int_equal(r.expired, 2);
	assert_int_equal(r.bytes, 0);
	/* A fragment of an expired message starts it anew (and is counted
	 * again if it never completes). */
	struct lan_frame c = frag(1, 3000, 3, 1, msg);
	assert_int_equal(ki_lan_reasm_add(&r, 1, &c, NULL, 200 * MS, &out), 0);
	ki_lan_reasm_free(&r);
}

/* What the discarded callback was told, in order. */
struct told {
	struct lan_reasm_key keys[8];
	uint64_t at[8];
	size_t n;
};

static void note_discarded(void *ctx, const struct lan_reasm_key *key, uint64_t now_ns)
{
	struct told *t = ctx;
	assert_true(t->n < 8);
	t->keys[t->n] = *key;
	t->at[t->n++] = now_ns;
}

static void test_discarded_named(void **state)
{
	(void)state;
	uint8_t msg[3000] = {0};
	struct told t = {0};
	struct lan_reasm r;
	/* Room for two 3000-byte partials, not three. */
	size_t one = 3000 + 1 + 512; /* message, map, and (over) the partial */
	ki_lan_reasm_init(&r, 0, 2 * one + 100, 100 * MS);
	r.discarded = note_discarded;
	r.discarded_ctx = &t;
	struct lan_msg out;
	/* First fragments are held, not given up: nothing told. */
	struct lan_frame a = frag(4, 3000, 3, 0, msg), b = frag(5, 3000, 3, 0, msg);
	assert_int_equal(ki_lan_reasm_add(&r, 7, &a, NULL, 10 * MS, &out), 0);
	assert_int_equal(ki_lan_reasm_add(&r, 8, &b, NULL, 20 * MS, &out), 0);
	assert_int_equal(t.n, 0);
	/* A third evicts the oldest: host 7's sequence 4 of big.one. */
	struct lan_frame c = frag(6, 3000, 3, 0, msg);
	assert_int_equal(ki_lan_reasm_add(&r, 9, &c, NULL, 30 * MS, &out), 0);
	assert_int_equal(r.evicted, 1);
	assert_int_equal(t.n, 1);
	assert_int_equal(t.keys[0].host, 7);
	assert_int_equal(t.keys[0].publisher, 5);
	assert_int_equal(t.keys[0].seq, 4);
	assert_string_equal(t.keys[0].channel, "big.one");
	assert_int_equal(t.at[0], 30 * MS);
	/* Completed: not told. */
	struct lan_frame c1 = frag(6, 3000, 3, 1, msg), c2 = frag(6, 3000, 3, 2, msg);
	assert_int_equal(ki_lan_reasm_add(&r, 9, &c1, NULL, 40 * MS, &out), 0);
	assert_int_equal(ki_lan_reasm_add(&r, 9, &c2, NULL, 40 * MS, &out), 1);
	free(out.data);
	assert_int_equal(t.n, 1);
	/* Refused as too big: never held, so not a partial given up. */
	struct lan_frame huge = frag(7, (16u << 20) + 1, 300, 0, NULL);
	assert_int_equal(ki_lan_reasm_add(&r, 9, &huge, NULL, 40 * MS, &out), -1);
	assert_int_equal(t.n, 1);
	/* Expired: host 8's sequence 5, told at the time of expiry. */
	ki_lan_reasm_expire(&r, 120 * MS);
	assert_int_equal(r.expired, 1);
	assert_int_equal(t.n, 2);
	assert_int_equal(t.keys[1].host, 8);
	assert_int_equal(t.keys[1].seq, 5);
	assert_int_equal(t.at[1], 120 * MS);
	/* Freeing the reassembler (the handle closing) tells nothing. */
	struct lan_frame d = frag(8, 3000, 3, 0, msg);
	assert_int_equal(ki_lan_reasm_add(&r, 9, &d, NULL, 130 * MS, &out), 0);
	ki_lan_reasm_free(&r);
	assert_int_equal(t.n, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_any_order),
		cmocka_unit_test(test_sixteen_mib),
		cmocka_unit_test(test_flood_held_under_cap),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_discarded_named),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
