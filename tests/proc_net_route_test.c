/* The /proc/net/route parser: real lines, a table of hostile ones, and a
 * live lookup of loopback-free multicast against this namespace's table. */
#include <arpa/inet.h>
#include <string.h>

#include "check.h"
#include "proc_net_route.h"

static int parse(const char *line, struct route_entry *e)
{
	return proc_net_route_parse_line(line, strlen(line), e);
}

static void default_route(void **state)
{
	struct route_entry e;
	assert_int_equal(parse("wan7\t00000000\t016433C6\t0003\t0\t0\t0\t00000000\t0\t0\t0", &e), 0);
	assert_string_equal(e.iface, "wan7");
	assert_int_equal(e.dest, 0);
	assert_int_equal(e.gateway, inet_addr("198.51.100.1"));
	assert_int_equal(e.flags, 3);
	assert_int_equal(e.mask, 0);
}

static void multicast_route(void **state)
{
	struct route_entry e;
	assert_int_equal(parse("veth-kite0\t000000E0\t00000000\t0001\t0\t0\t20\t000000F0\t0\t0\t0", &e), 0);
	assert_int_equal(e.dest, inet_addr("224.0.0.0"));
	assert_int_equal(e.mask, inet_addr("240.0.0.0"));
	assert_int_equal(e.metric, 20);
	/* The lookup rule: 239.1.2.3 is inside 224.0.0.0/4. */
	assert_int_equal(inet_addr("239.1.2.3") & e.mask, e.dest);
}

static void hostile_lines(void **state)
{
	static const char *const bad[] = {
		"",
		"Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT",
		"wan7",
		"wan7\t00000000",
		"wan7\t00000000\t016433C6\t0003\t0\t0\t0",          /* no mask */
		"wan7\t0000000\t016433C6\t0003\t0\t0\t0\t00000000",  /* 7 digits */
		"wan7\t000000000\t016433C6\t0003\t0\t0\t0\t00000000", /* 9 digits */
		"wan7\t0000000G\t016433C6\t0003\t0\t0\t0\t00000000",
		"wan7\t00000000\t016433C6\t00003\t0\t0\t0\t00000000", /* flags 5 digits */
		"wan7\t00000000\t016433C6\t0003\t-1\t0\t0\t00000000",
		"wan7\t00000000\t016433C6\t0003\t0\t0\t99999999999\t00000000",
		"an-interface-name-too-long\t00000000\t016433C6\t0003\t0\t0\t0\t00000000",
		"eth/0\t00000000\t016433C6\t0003\t0\t0\t0\t00000000",
		NULL,
	};
	struct route_entry e;
	/* A NUL inside the name would make it look shorter than it is. */
	static const char nul[] = "e\0h0\t00000000\t016433C6\t0003\t0\t0\t0\t00000000";
	assert_int_equal(proc_net_route_parse_line(nul, sizeof nul - 1, &e), -1);
	for (size_t i = 0; bad[i]; i++)
		if (parse(bad[i], &e) == 0)
			fail_msg("accepted hostile line %zu: \"%s\"", i, bad[i]);
	/* len bounds the read: cut inside the mask, the line is refused. */
	const char *line = "wan7\t00000000\t016433C6\t0003\t0\t0\t0\t00000000";
	assert_int_equal(proc_net_route_parse_line(line, strlen(line) - 1, &e), -1);
	assert_int_equal(proc_net_route_parse_line(line, strlen(line), &e), 0);
}

static void live_lookup(void **state)
{
	struct route_entry e;
	unsigned skipped = 99;
	int rc = proc_net_route_lookup(inet_addr("239.255.0.1"), &e, &skipped);
	assert_true(rc == 0 || rc == 1);
	assert_int_equal(skipped, 0);
	if (rc == 1)
		assert_int_equal(inet_addr("239.255.0.1") & e.mask, e.dest);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(default_route),
		cmocka_unit_test(multicast_route),
		cmocka_unit_test(hostile_lines),
		cmocka_unit_test(live_lookup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
