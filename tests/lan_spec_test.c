/* The `lan` option string (src/lan_spec.c): defaults, every key, and a
 * table of mistakes each refused with a reason. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "lan_spec.h"

static void test_defaults_and_keys(void **state)
{
	(void)state;
	struct lan_spec s;
	char why[200] = "";
	assert_int_equal(ki_lan_spec_parse("veth0", &s, why, sizeof why), 0);
	assert_string_equal(s.iface, "veth0");
	assert_false(s.is_auto);
	assert_int_equal(s.range.base, LAN_DEFAULT_BASE);
	assert_int_equal(s.range.port, 7475);
	assert_int_equal(s.ttl, 1);
	assert_int_equal(s.reorder_ms, 20);
	assert_int_equal(s.max_msg, 16u << 20);
	assert_int_equal(s.pack_us, 100);
	assert_int_equal(ki_lan_spec_parse("auto,group=239.1.2.0/30,port=9000,ttl=4,"
					"reorder_ms=100,max_msg=33554432,pack_us=0", &s, why, sizeof why), 0);
	assert_int_equal(s.pack_us, 0);
	assert_true(s.is_auto);
	assert_int_equal(s.range.base, 0xEF010200u);
	assert_int_equal(s.range.prefix, 30);
	assert_int_equal(s.range.port, 9000);
	assert_int_equal(s.ttl, 4);
	assert_int_equal(s.reorder_ms, 100);
	assert_int_equal(s.max_msg, 32u << 20);
	assert_false(s.repair); /* off by default */
	assert_int_equal(s.repair_ms, 250);
	assert_int_equal(ki_lan_spec_parse("eth0,repair=1", &s, why, sizeof why), 0);
	assert_true(s.repair);
	assert_int_equal(s.repair_ms, 250);
	assert_int_equal(ki_lan_spec_parse("eth0,repair_ms=40", &s, why, sizeof why), 0);
	assert_true(s.repair); /* a repair time asks for repair */
	assert_int_equal(s.repair_ms, 40);
	assert_int_equal(ki_lan_spec_parse("eth0,repair=0", &s, why, sizeof why), 0);
	assert_false(s.repair);
	assert_true(s.gso); /* segmented sends: on by default */
	assert_int_equal(ki_lan_spec_parse("eth0,gso=0", &s, why, sizeof why), 0);
	assert_false(s.gso);
	assert_int_equal(ki_lan_spec_parse("eth0,gso=1,key=/k", &s, why, sizeof why), 0);
	assert_true(s.gso);
	assert_string_equal(s.key_path, "/k");
	assert_true(s.batch); /* batch frames: on by default */
	assert_int_equal(ki_lan_spec_parse("eth0,batch=0", &s, why, sizeof why), 0);
	assert_false(s.batch);
}

static void test_mistakes(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", ",port=1", "a b", "eth0/1", "averyveryverylongname", "eth0,",
		"eth0,port", "eth0,port=", "eth0,port=0", "eth0,port=65536", "eth0,port=-1",
		"eth0,port=1x", "eth0,ttl=0", "eth0,ttl=256", "eth0,group=224.0.0.0/24",
		"eth0,group=239.1.1.0/16", "eth0,group=239.1.1.1/28", "eth0,group=",
		"eth0,reorder_ms=0", "eth0,reorder_ms=10001", "eth0,max_msg=1000",
		"eth0,max_msg=99999999999", "eth0,repair=2", "eth0,repair=yes", "eth0,repair=",
		"eth0,repair_ms=9", "eth0,repair_ms=10001", "eth0,repairs=1", "eth0,colour=red", "eth0,=1", "eth0,pack_us=1000001", "eth0,pack_us=x",
		"eth0,gso=2", "eth0,gso=", "eth0,gsox=1", "eth0,batch=2", "eth0,batch=",
		"eth0,group=239.255.75.0/28xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		struct lan_spec s;
		char why[200] = "";
		if (ki_lan_spec_parse(bad[i], &s, why, sizeof why) != -EINVAL)
			fail_msg("\"%s\" should be refused", bad[i]);
		if (!why[0])
			fail_msg("\"%s\" refused without a reason", bad[i]);
	}
	struct lan_spec s;
	char why[200];
	assert_int_equal(ki_lan_spec_parse(NULL, &s, why, sizeof why), -EINVAL);
	ki_lan_spec_parse("eth0,colour=red", &s, why, sizeof why);
	assert_non_null(strstr(why, "colour"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_and_keys),
		cmocka_unit_test(test_mistakes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
