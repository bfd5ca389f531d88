/* kite bridge's reading of what a NATS message claims (sys/bridge_claims.c):
 * subject-to-channel mapping and the Kite-Id header value, against a table
 * of hostile values any NATS publisher can send. */
#include <stdint.h>
#include <stdio.h>
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

static const char honest[] = "1 00000000000000ab 00000000000000ff 9 4242 1000 100 1700000000123456789 host-a";

static void test_honest_claims(void **state)
{
	(void)state;
	struct claims_id id;
	assert_int_equal(claims_id_parse(honest, &id), 0);
	assert_int_equal(id.bridge, 0xab);
	assert_int_equal(id.publisher, 0xff);
	assert_int_equal(id.seq, 9);
	assert_int_equal(id.pid, 4242);
	assert_int_equal(id.uid, 1000);
	assert_int_equal(id.gid, 100);
	assert_int_equal(id.time_ns, 1700000000123456789ull);
	assert_string_equal(id.host, "host-a");
	struct kite_origin o = {0};
	claims_to_origin(&id, &o);
	assert_string_equal(o.host, "host-a");
	assert_int_equal(o.pid, 4242);
	assert_int_equal(o.uid, 1000);
	assert_int_equal(o.publisher, 0xff);
	assert_int_equal(o.seq, 9);
	claims_to_origin(NULL, &o);
	assert_string_equal(o.host, "");
	assert_int_equal(o.pid, -1);
	assert_int_equal(o.uid, -1);
	assert_int_equal(o.publisher, 0);
	assert_int_equal(o.seq, 0);
	/* Every field at its bounds. */
	char host255[256];
	memset(host255, 'h', 255);
	host255[255] = 0;
	char edge[600];
	snprintf(edge, sizeof edge, "1 ffffffffffffffff 0000000000000000 9223372036854775807 "
		 "2147483647 4294967294 0 18446744073709551615 %s", host255);
	assert_int_equal(claims_id_parse(edge, &id), 0);
	assert_int_equal(id.bridge, UINT64_MAX);
	assert_int_equal(id.publisher, 0);
	assert_int_equal(id.seq, INT64_MAX);
	assert_int_equal(id.pid, INT32_MAX);
	assert_int_equal(id.uid, 4294967294ll);
	assert_int_equal(id.gid, 0);
	assert_int_equal(id.time_ns, UINT64_MAX);
	assert_int_equal(strlen(id.host), 255);
}

/* What the exporter writes, the importer reads back exactly. */
static void test_round_trip(void **state)
{
	(void)state;
	kite_msg m = {.publisher = 0x0123456789abcdefull, .seq = 77, .pid = 31337,
		      .uid = 4294967294u, .gid = 5, .timestamp_ns = 1};
	char value[CLAIMS_ID_MAX];
	int n = claims_id_format(value, 0xfedcba9876543210ull, &m, "box.example");
	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(value));
	assert_string_equal(value, "1 fedcba9876543210 0123456789abcdef 77 31337 4294967294 5 1 box.example");
	struct claims_id id;
	assert_int_equal(claims_id_parse(value, &id), 0);
	assert_int_equal(id.bridge, 0xfedcba9876543210ull);
	assert_int_equal(id.publisher, m.publisher);
	assert_int_equal(id.seq, 77);
	assert_int_equal(id.pid, 31337);
	assert_int_equal(id.uid, 4294967294ll);
	assert_int_equal(id.gid, 5);
	assert_int_equal(id.time_ns, 1);
	assert_string_equal(id.host, "box.example");
	/* Every field at its widest and narrowest, and the whole buffer. */
	kite_msg wide = {.publisher = 0, .seq = INT64_MAX, .pid = 0, .uid = 0,
			 .gid = 4294967294u, .timestamp_ns = UINT64_MAX};
	char host255[256];
	memset(host255, 'h', 255);
	host255[255] = 0;
	n = claims_id_format(value, UINT64_MAX, &wide, host255);
	char want[CLAIMS_ID_MAX];
	snprintf(want, sizeof want, "1 ffffffffffffffff 0000000000000000 9223372036854775807 0 0 "
		 "4294967294 18446744073709551615 %s", host255);
	assert_string_equal(value, want);
	assert_int_equal((size_t)n, strlen(want));
	assert_int_equal(claims_id_parse(value, &id), 0);
	assert_int_equal(id.time_ns, UINT64_MAX);
	assert_int_equal(id.gid, 4294967294ll);
	/* A host Kite-Id cannot carry is refused, not sent. */
	char host256[257];
	memset(host256, 'h', 256);
	host256[256] = 0;
	const char *bad_hosts[] = {"", "a b", "a\tb", "a\x7f", "caf\xc3\xa9", host256};
	for (size_t i = 0; i < sizeof bad_hosts / sizeof bad_hosts[0]; i++) {
		if (claims_id_format(value, 1, &m, bad_hosts[i]) != -1)
			fail_msg("host %zu formatted", i);
		assert_false(claims_host_valid(bad_hosts[i]));
	}
	assert_true(claims_host_valid("h"));
}

/* Each value must be refused as a whole, leaving *id untouched. */
static void test_hostile_values(void **state)
{
	(void)state;
	static const char *const values[] = {
		"",
		"1",
		"1 ",
		"2 00000000000000ab 00000000000000ff 9 4242 1000 100 5 h", /* a version we do not know */
		"01 00000000000000ab 00000000000000ff 9 4242 1000 100 5 h",
		" 1 00000000000000ab 00000000000000ff 9 4242 1000 100 5 h",
		"1  00000000000000ab 00000000000000ff 9 4242 1000 100 5 h", /* two spaces */
		"1 00000000000000ab 00000000000000ff 9 4242 1000 100 5",    /* no host */
		"1 00000000000000ab 00000000000000ff 9 4242 1000 100 5 ",   /* empty host */
		"1 00000000000000ab 00000000000000ff 9 4242 1000 100 5 h x",/* a space in it */
		"1 00000000000000ab 00000000000000ff 9 4242 1000 100 5 h\n",
		"1 00000000000000ab 00000000000000ff 9 4242 1000 100 5 h\x1b[2J",
		"1 00000000000000ab 00000000000000ff 9 4242 1000 100 5 caf\xc3\xa9",
		"1 00000000000000ab 00000000000000ff 9 4242 1000 100 h",     /* a field short */
		"1 00000000000000ab 00000000000000ff 9 4242 1000 100 5 6 h", /* host "6 h" */
		/* bridge, publisher: exactly 16 lowercase hex digits */
		"1 00000000000000aB 00000000000000ff 9 4242 1000 100 5 h",
		"1 0000000000000ab 00000000000000ff 9 4242 1000 100 5 h",
		"1 000000000000000ab 00000000000000ff 9 4242 1000 100 5 h",
		"1 00000000000000ab xyz 9 4242 1000 100 5 h",
		"1 00000000000000ab 0x000000000000ff 9 4242 1000 100 5 h",
		"1 00000000000000ab 000000000000000g 9 4242 1000 100 5 h",
		/* seq: 1..2^63-1 */
		"1 00000000000000ab 00000000000000ff 0 4242 1000 100 5 h",
		"1 00000000000000ab 00000000000000ff 9223372036854775808 4242 1000 100 5 h",
		"1 00000000000000ab 00000000000000ff -1 4242 1000 100 5 h",
		"1 00000000000000ab 00000000000000ff +9 4242 1000 100 5 h",
		"1 00000000000000ab 00000000000000ff 09 4242 1000 100 5 h",
		"1 00000000000000ab 00000000000000ff 1e3 4242 1000 100 5 h",
		/* pid: 0..2^31-1 */
		"1 00000000000000ab 00000000000000ff 9 -5 1000 100 5 h",
		"1 00000000000000ab 00000000000000ff 9 2147483648 1000 100 5 h",
		"1 00000000000000ab 00000000000000ff 9 0x10 1000 100 5 h",
		"1 00000000000000ab 00000000000000ff 9 12a 1000 100 5 h",
		/* uid, gid: 0..2^32-2 (2^32-1 is "no id") */
		"1 00000000000000ab 00000000000000ff 9 4242 4294967295 100 5 h",
		"1 00000000000000ab 00000000000000ff 9 4242 1000 4294967295 5 h",
		"1 00000000000000ab 00000000000000ff 9 4242 1000 -1 5 h",
		/* time: 0..2^64-1 */
		"1 00000000000000ab 00000000000000ff 9 4242 1000 100 18446744073709551616 h",
		"1 00000000000000ab 00000000000000ff 9 4242 1000 100 184467440737095516150 h",
		"1 00000000000000ab 00000000000000ff 9 4242 1000 100 99999999999999999999 h",
		"1 00000000000000ab 00000000000000ff 9 4242 1000 100 \xff h",
	};
	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
		struct claims_id id = {.pid = 77};
		if (claims_id_parse(values[i], &id) != -1 || id.pid != 77)
			fail_msg("'%s' parsed", values[i]);
	}
	struct claims_id id = {.pid = 77};
	assert_int_equal(claims_id_parse(NULL, &id), -1);
	/* A 256-byte host. */
	char long_host[600];
	int n = snprintf(long_host, sizeof long_host, "%s", "1 00000000000000ab 00000000000000ff 9 4242 1000 100 5 ");
	memset(long_host + n, 'h', 256);
	long_host[n + 256] = 0;
	assert_int_equal(claims_id_parse(long_host, &id), -1);
	long_host[n + 255] = 0;
	assert_int_equal(claims_id_parse(long_host, &id), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_channel_mapping),
		cmocka_unit_test(test_honest_claims),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_hostile_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
