/* The LAN packer (src/lan_pack.c): frames share a datagram until it is
 * full or the group changes, then take the next slot; when every slot is
 * taken it says so; frames never straddle datagrams. */
#include <string.h>

#include "check.h"
#include "lan_pack.h"

static void test_fill_and_switch(void **state)
{
	(void)state;
	struct lan_packer p;
	assert_int_equal(ki_lan_pack_init(&p, 1000), 0);
	/* 7 frames of 140 bytes fit a 1000-byte datagram; the 8th opens the
	 * next one. */
	for (int i = 0; i < 8; i++) {
		uint8_t *at = ki_lan_pack_room(&p, 5, 140, 100 + (uint64_t)i);
		assert_non_null(at);
		memset(at, 'a' + i, 140);
		ki_lan_pack_commit(&p, 140);
	}
	assert_int_equal(p.used, 2);
	assert_int_equal(p.len[0], 980);
	assert_int_equal(p.frames[0], 7);
	assert_int_equal(p.len[1], 140);
	assert_int_equal(p.since_ns, 100); /* the oldest frame's time */
	assert_int_equal(ki_lan_pack_datagram(&p, 1)[0], 'h');
	/* Another group: another datagram, even with room left. */
	assert_non_null(ki_lan_pack_room(&p, 6, 10, 200));
	ki_lan_pack_commit(&p, 10);
	assert_int_equal(p.used, 3);
	assert_int_equal(p.group[2], 6);
	/* Larger than a datagram: never. */
	assert_null(ki_lan_pack_room(&p, 6, 1001, 200));
	ki_lan_pack_sent(&p);
	assert_int_equal(p.used, 0);
	assert_non_null(ki_lan_pack_room(&p, 6, 1000, 300));
	ki_lan_pack_commit(&p, 1000);
	assert_int_equal(p.since_ns, 300);
	ki_lan_pack_free(&p);
}

static void test_slots_run_out(void **state)
{
	(void)state;
	struct lan_packer p;
	assert_int_equal(ki_lan_pack_init(&p, 1000), 0);
	for (unsigned i = 0; i < LAN_PACK_SLOTS; i++) {
		assert_non_null(ki_lan_pack_room(&p, i, 600, 1));
		ki_lan_pack_commit(&p, 600);
	}
	/* Every slot taken and the last cannot take 600 more. */
	assert_null(ki_lan_pack_room(&p, LAN_PACK_SLOTS - 1, 600, 1));
	/* ... but a small frame for the open datagram's group still fits. */
	assert_non_null(ki_lan_pack_room(&p, LAN_PACK_SLOTS - 1, 400, 1));
	ki_lan_pack_commit(&p, 400);
	assert_int_equal(p.len[LAN_PACK_SLOTS - 1], 1000);
	ki_lan_pack_free(&p);
}

/* One frame of n bytes for group. */
static void put(struct lan_packer *p, uint32_t group, size_t n)
{
	assert_non_null(ki_lan_pack_room(p, group, n, 1));
	ki_lan_pack_commit(p, n);
}

/* Equal datagrams of one group make one segmented run; a shorter one
 * ends it (it may be the run's last); another group, or a longer one
 * after a shorter, starts the next run; plain sending is a run a slot. */
static void test_runs(void **state)
{
	(void)state;
	struct lan_packer p;
	struct lan_pack_run r[LAN_PACK_SLOTS];
	assert_int_equal(ki_lan_pack_init(&p, 1000), 0);
	/* 20 frames of 200: datagrams 1000, 1000, 1000, 1000 (group 1) */
	for (int i = 0; i < 20; i++)
		put(&p, 1, 200);
	put(&p, 1, 300);   /* datagram 4: 300 ... */
	put(&p, 1, 300);   /* ... 600: shorter, ends the run */
	put(&p, 1, 500);   /* 1100 > 1000: datagram 5, 500: a new run */
	put(&p, 2, 100);   /* another group: datagram 6 */
	put(&p, 2, 1000);  /* datagram 7, 1000: longer than 100, a new run */
	put(&p, 2, 1000);  /* datagram 8: joins it */
	assert_int_equal(p.used, 9);
	unsigned n = ki_lan_pack_runs(&p, 0, 1, r);
	assert_int_equal(n, 4);
	assert_int_equal(r[0].first, 0);
	assert_int_equal(r[0].count, 5);
	assert_int_equal(r[0].frames, 22);
	assert_int_equal(r[0].bytes, 4600);
	assert_int_equal(r[1].first, 5);
	assert_int_equal(r[1].count, 1);
	assert_int_equal(r[2].first, 6);
	assert_int_equal(r[2].count, 1);
	assert_int_equal(r[3].first, 7);
	assert_int_equal(r[3].count, 2);
	assert_int_equal(r[3].frames, 2);
	/* From a later slot (what is left after a refused send). */
	n = ki_lan_pack_runs(&p, 2, 1, r);
	assert_int_equal(n, 4);
	assert_int_equal(r[0].first, 2);
	assert_int_equal(r[0].count, 3);
	/* Not segmented: a run a datagram, every frame counted once. */
	n = ki_lan_pack_runs(&p, 0, 0, r);
	assert_int_equal(n, 9);
	unsigned frames = 0;
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(r[i].first, i);
		assert_int_equal(r[i].count, 1);
		frames += r[i].frames;
	}
	assert_int_equal(frames, 26);
	ki_lan_pack_free(&p);
}

/* A slot opened but never written is skipped, and splits the run; a run
 * never exceeds one UDP payload. */
static void test_runs_gaps_and_cap(void **state)
{
	(void)state;
	struct lan_packer p;
	struct lan_pack_run r[LAN_PACK_SLOTS];
	assert_int_equal(ki_lan_pack_init(&p, 20000), 0);
	for (int i = 0; i < 5; i++)
		put(&p, 1, 20000); /* 5 x 20,000: 65,507 holds 3 */
	unsigned n = ki_lan_pack_runs(&p, 0, 1, r);
	assert_int_equal(n, 2);
	assert_int_equal(r[0].count, 3);
	assert_int_equal(r[0].bytes, 60000);
	assert_int_equal(r[1].first, 3);
	assert_int_equal(r[1].count, 2);
	/* An empty slot in the middle (room taken, the frame not written). */
	assert_non_null(ki_lan_pack_room(&p, 2, 100, 1));
	put(&p, 3, 20000);
	assert_int_equal(p.used, 7);
	assert_int_equal(p.len[5], 0);
	n = ki_lan_pack_runs(&p, 3, 1, r);
	assert_int_equal(n, 2);
	assert_int_equal(r[0].first, 3);
	assert_int_equal(r[0].count, 2);
	assert_int_equal(r[1].first, 6);
	assert_int_equal(r[1].count, 1);
	ki_lan_pack_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fill_and_switch),
		cmocka_unit_test(test_slots_run_out),
		cmocka_unit_test(test_runs),
		cmocka_unit_test(test_runs_gaps_and_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
