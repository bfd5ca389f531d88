/* kite bridge's reading of what a NATS message claims (sys/bridge_claims.c):
 * subject-to-channel mapping and the Kite-* header values, against a table
 * of hostile values any NATS publisher can send. */
#include <stdint.h>
#include <string.h>

#include "bridge_claims.h"
#include "check.h"

static void test_channel_mapping(void **state)
{
	(void)state;
	assert_string_equal(claims_channel(NULL, "orders.eu"), "orders.eu");
	assert_string_equal(claims_channel("site1", "site1.orders.eu"), "orders.eu");
	assert_string_equal(claims_channel("a.b", "a.b.c"), "c");
	const struct {
		const char *prefix, *subject;
	} refused[] = {
		{NULL, NULL},
		{NULL, ""},
		{NULL, "a..b"},
		{NULL, "a.b%c"},           /* NATS allows it, kite does not */
		{NULL, "a.*"},             /* a wildcard is no channel */
		{NULL, "$SYS.x"},
		{"site1", "site1"},        /* the prefix alone */
		{"site1", "site1."},
		{"site1", "site10.x"},     /* a longer token, not the prefix */
		{"site1", "other.x"},
		{"site1", "site1x"},
	};
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
		if (claims_channel(refused[i].prefix, refused[i].subject))
			fail_msg("prefix %s subject %s mapped", refused[i].prefix ? refused[i].prefix : "-",
				 refused[i].subject ? refused[i].subject : "(null)");
	/* A channel longer than kite takes. */
	char long_subject[400];
	memset(long_subject, 'a', sizeof long_subject - 1);
	long_subject[sizeof long_subject - 1] = 0;
	assert_null(claims_channel(NULL, long_subject));
}

static void test_honest_claims(void **state)
{
	(void)state;
	struct kite_origin o = {0};
	claims_parse("host-a", "4242", "1000", "00000000000000fF", "9", &o);
	assert_string_equal(o.host, "host-a");
	assert_int_equal(o.pid, 4242);
	assert_int_equal(o.uid, 1000);
	assert_int_equal(o.publisher, 0xff);
	assert_int_equal(o.seq, 9);
	claims_parse(NULL, NULL, NULL, NULL, NULL, &o);
	assert_string_equal(o.host, "");
	assert_int_equal(o.pid, -1);
	assert_int_equal(o.uid, -1);
	assert_int_equal(o.publisher, 0);
	assert_int_equal(o.seq, 0);
	claims_parse("", "0", "0", "ffffffffffffffff", "9223372036854775807", &o);
	assert_int_equal(o.pid, 0);
	assert_int_equal(o.uid, 0);
	assert_int_equal(o.publisher, UINT64_MAX);
	assert_int_equal(o.seq, INT64_MAX);
	claims_parse("", "2147483647", "4294967294", NULL, "1", &o);
	assert_int_equal(o.pid, 2147483647);
	assert_int_equal(o.uid, 4294967294ll);
}

/* Each value must read as "not told". */
static void test_hostile_values(void **state)
{
	(void)state;
	static const char *const numbers[] = {
		"", "-1", "-5", "+1", " 1", "1 ", "01", "1e3", "0x10", "12a",
		"99999999999999999999", "18446744073709551616", "184467440737095516150",
		"\xff", "1\n",
	};
	for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
		struct kite_origin o = {0};
		claims_parse(NULL, numbers[i], numbers[i], numbers[i], numbers[i], &o);
		if (o.pid != -1 || o.uid != -1 || o.seq != 0 || o.publisher != 0)
			fail_msg("'%s' read as pid %lld uid %lld seq %llu publisher %llx", numbers[i],
				 (long long)o.pid, (long long)o.uid, (unsigned long long)o.seq,
				 (unsigned long long)o.publisher);
	}
	struct kite_origin o = {0};
	/* Out of range for their field only. */
	claims_parse(NULL, "2147483648", "4294967295", "0000000000000000g", "0", &o);
	assert_int_equal(o.pid, -1);
	assert_int_equal(o.uid, -1);
	assert_int_equal(o.publisher, 0);
	assert_int_equal(o.seq, 0); /* sequences start at 1 */
	claims_parse(NULL, NULL, NULL, "000000000000000", "9223372036854775808", &o);
	assert_int_equal(o.publisher, 0); /* 15 digits */
	assert_int_equal(o.seq, 0);       /* 2^63 */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_channel_mapping),
		cmocka_unit_test(test_honest_claims),
		cmocka_unit_test(test_hostile_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
