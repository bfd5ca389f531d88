/* Channel -> multicast group (src/lan_group.c): frozen vectors (two hosts
 * of different versions must agree), range parsing, every channel a
 * pattern matches lies in a group the pattern joins, and join counts. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "kite.h"
#include "lan_group.h"

static const char *dotted(uint32_t a, char *buf)
{
	struct in_addr in = {htonl(a)};
	return inet_ntop(AF_INET, &in, buf, INET_ADDRSTRLEN);
}

static void test_frozen_vectors(void **state)
{
	(void)state;
	/* docs/PROTOCOL.md lists the same (computed independently, with a
	 * bit-at-a-time CRC32C in Python): changing them breaks interop. */
	static const struct {
		const char *channel, *group;
	} v[] = {
		{"orders", "239.255.75.10"},
		{"orders.eu.created", "239.255.75.10"},
		{"metrics.cpu", "239.255.75.2"},
		{"a", "239.255.75.0"},
		{"host-7.up", "239.255.75.1"},
	};
	struct lan_range r;
	ki_lan_range_default(&r);
	assert_int_equal(r.port, 7475);
	assert_int_equal(lan_range_size(&r), 16);
	for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
		char buf[INET_ADDRSTRLEN];
		const char *got = dotted(ki_lan_group_of(&r, v[i].channel), buf);
		if (strcmp(got, v[i].group) != 0)
			fail_msg("%s -> %s, want %s", v[i].channel, got, v[i].group);
	}
}

static void test_range_parse(void **state)
{
	(void)state;
	static const char *const good[] = {
		"239.255.75.0/28", "239.0.0.0/24", "239.1.2.3/32", "239.255.255.0/24",
		"239.10.20.128/25",
	};
	static const char *const bad[] = {
		"", "/", "239.255.75.0", "239.255.75.0/", "239.255.75.0/23", "239.255.75.0/33",
		"239.255.75.0/-1", "239.255.75.0/2a", "239.255.75.0/028", "239.255.75.1/28",
		"224.0.0.0/24", "238.255.255.0/24", "192.0.2.0/24", "240.0.0.0/24",
		"239.255.75/28", "239.255.75.0.0/28", "x/28", "239.255.75.0/ 28",
		"239.255.75.0/28 ", "1111111111111111111111/24",
	};
	struct lan_range r;
	for (size_t i = 0; i < sizeof good / sizeof *good; i++)
		if (ki_lan_range_parse(good[i], &r) != 0)
			fail_msg("range \"%s\" should parse", good[i]);
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		if (ki_lan_range_parse(bad[i], &r) != -EINVAL)
			fail_msg("range \"%s\" should be refused", bad[i]);
	assert_int_equal(ki_lan_range_parse(NULL, &r), -EINVAL);
	assert_int_equal(ki_lan_range_parse("239.1.2.0/26", &r), 0);
	assert_int_equal(r.base, 0xEF010200u);
	assert_int_equal(r.prefix, 26);
	assert_int_equal(lan_range_size(&r), 64);
	assert_int_equal(ki_lan_range_parse("239.1.2.3/32", &r), 0);
	assert_int_equal(ki_lan_group_of(&r, "anything.at.all"), 0xEF010203u);
}

static void test_patterns_join_every_group_they_match(void **state)
{
	(void)state;
	static const char *const channels[] = {
		"orders", "orders.eu", "orders.eu.created", "metrics.cpu.load", "a.b",
		"b.a", "x-1.y", "x_2.y.z", "host-7.up", "z",
	};
	static const char *const patterns[] = {
		"orders.>", "orders.*", "orders", "*.eu", "*.>", ">", "*", "a.*",
		"metrics.*.load", "x-1.>", "b.*", "q.>",
	};
	struct lan_range ranges[3];
	ki_lan_range_default(&ranges[0]);
	assert_int_equal(ki_lan_range_parse("239.9.0.0/24", &ranges[1]), 0);
	assert_int_equal(ki_lan_range_parse("239.9.1.7/32", &ranges[2]), 0);
	for (int ri = 0; ri < 3; ri++) {
		struct lan_range *r = &ranges[ri];
		for (size_t p = 0; p < sizeof patterns / sizeof *patterns; p++) {
			uint32_t g;
			int one = ki_lan_pattern_group(r, patterns[p], &g);
			assert_int_equal(one, patterns[p][0] != '*' && patterns[p][0] != '>');
			for (size_t c = 0; c < sizeof channels / sizeof *channels; c++) {
				uint32_t cg = ki_lan_group_of(r, channels[c]);
				assert_true(cg >= r->base && cg - r->base < lan_range_size(r));
				if (one && kite_pattern_match(patterns[p], channels[c]) && cg != g)
					fail_msg("%s matches %s but joins another group",
						 patterns[p], channels[c]);
			}
		}
	}
}

static void test_groups_spread(void **state)
{
	(void)state;
	/* 1000 first tokens over the 16 default groups: none empty, none
	 * with more than twice its share. */
	struct lan_range r;
	ki_lan_range_default(&r);
	unsigned hits[16] = {0};
	for (int i = 0; i < 1000; i++) {
		char name[32];
		snprintf(name, sizeof name, "svc%d.events", i);
		hits[ki_lan_group_of(&r, name) - r.base]++;
	}
	for (int g = 0; g < 16; g++)
		if (hits[g] == 0 || hits[g] > 125)
			fail_msg("group %d got %u of 1000", g, hits[g]);
}

static void test_join_counts(void **state)
{
	(void)state;
	struct lan_range r;
	ki_lan_range_default(&r);
	struct lan_joins j;
	assert_int_equal(ki_lan_joins_init(&j, &r), 0);
	uint32_t change[16];
	uint32_t orders = ki_lan_group_of(&r, "orders");
	assert_int_equal(ki_lan_joins_add(&j, "orders.>", change), 1);
	assert_int_equal(change[0], orders);
	assert_int_equal(ki_lan_joins_add(&j, "orders.*", change), 0);
	assert_int_equal(ki_lan_joins_add(&j, ">", change), 15); /* all but orders' */
	for (int i = 0; i < 15; i++)
		assert_int_not_equal(change[i], orders);
	assert_int_equal(ki_lan_joins_add(&j, "*.x", change), 0);
	assert_int_equal(ki_lan_joins_remove(&j, ">", change), 0); /* *.x holds them */
	assert_int_equal(ki_lan_joins_remove(&j, "*.x", change), 15);
	assert_int_equal(ki_lan_joins_remove(&j, "orders.>", change), 0);
	assert_int_equal(ki_lan_joins_remove(&j, "orders.*", change), 1);
	assert_int_equal(change[0], orders);
	/* Removing what was never counted changes nothing (no wrap-around). */
	assert_int_equal(ki_lan_joins_remove(&j, "orders.*", change), 0);
	assert_int_equal(ki_lan_joins_remove(&j, ">", change), 0);
	assert_int_equal(ki_lan_joins_add(&j, "orders", change), 1);
	ki_lan_joins_free(&j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frozen_vectors),
		cmocka_unit_test(test_range_parse),
		cmocka_unit_test(test_patterns_join_every_group_they_match),
		cmocka_unit_test(test_groups_spread),
		cmocka_unit_test(test_join_counts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
