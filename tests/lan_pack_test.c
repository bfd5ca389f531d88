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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fill_and_switch),
		cmocka_unit_test(test_slots_run_out),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
