/* src/icmp_echo.c: building requests and a table of hostile replies. */
#include <string.h>
#include <sys/socket.h>

#include "check.h"
#include "icmp_echo.h"

static uint8_t payload[ICMP_ECHO_PAYLOAD];
static uint8_t sent[ICMP_SEQ_MAP_BYTES];

static struct icmp_echo_expect expect(int family)
{
	for (size_t i = 0; i < sizeof payload; i++)
		payload[i] = (uint8_t)(i * 7 + 3);
	memset(sent, 0, sizeof sent);
	icmp_seq_set(sent, 1, 1);
	icmp_seq_set(sent, 2, 1);
	icmp_seq_set(sent, 65535, 1);
	struct icmp_echo_expect e = {.family = family, .id = 0x1234, .payload = payload,
				     .payload_len = sizeof payload, .sent = sent};
	return e;
}

/* A reply as the kernel would hand it over: ICMP header + payload. */
static size_t reply(int family, uint8_t type, uint8_t code, uint16_t id, uint16_t seq,
		    uint8_t *out)
{
	size_t n = icmp_echo_build(family, seq, payload, sizeof payload, out, 128);
	out[0] = type;
	out[1] = code;
	out[4] = (uint8_t)(id >> 8);
	out[5] = (uint8_t)id;
	return n;
}

static void test_build(void **state)
{
	(void)state;
	uint8_t buf[128];
	expect(AF_INET);
	size_t n = icmp_echo_build(AF_INET, 0x0102, payload, sizeof payload, buf, sizeof buf);
	assert_int_equal(n, 64);
	assert_int_equal(buf[0], 8);      /* echo request */
	assert_int_equal(buf[1], 0);
	assert_int_equal(buf[6], 1);      /* sequence, big-endian */
	assert_int_equal(buf[7], 2);
	assert_memory_equal(buf + 8, payload, sizeof payload);
	n = icmp_echo_build(AF_INET6, 7, payload, sizeof payload, buf, sizeof buf);
	assert_int_equal(n, 64);
	assert_int_equal(buf[0], 128);
	assert_int_equal(icmp_echo_request_seq(AF_INET6, buf, n), 7);
	assert_int_equal(icmp_echo_request_seq(AF_INET, buf, n), -1);
	assert_int_equal(icmp_echo_request_seq(AF_INET6, buf, 7), -1);
	/* too small, unknown family */
	assert_int_equal(icmp_echo_build(AF_INET, 1, payload, sizeof payload, buf, 63), 0);
	assert_int_equal(icmp_echo_build(AF_INET, 1, NULL, 0, buf, 7), 0);
	assert_int_equal(icmp_echo_build(AF_UNIX, 1, payload, sizeof payload, buf, sizeof buf), 0);
}

static void test_valid_replies(void **state)
{
	(void)state;
	uint8_t buf[128];
	uint16_t seq = 0;
	struct icmp_echo_expect e = expect(AF_INET);
	size_t n = reply(AF_INET, 0, 0, 0x1234, 2, buf);
	assert_int_equal(icmp_echo_check(&e, buf, n, &seq), ICMP_ECHO_OK);
	assert_int_equal(seq, 2);
	n = reply(AF_INET, 0, 0, 0x1234, 65535, buf);
	assert_int_equal(icmp_echo_check(&e, buf, n, &seq), ICMP_ECHO_OK);
	assert_int_equal(seq, 65535);
	e = expect(AF_INET6);
	n = reply(AF_INET6, 129, 0, 0x1234, 1, buf);
	assert_int_equal(icmp_echo_check(&e, buf, n, &seq), ICMP_ECHO_OK);
	assert_int_equal(seq, 1);
}

/* Each row: a mutation of a valid IPv4 or IPv6 reply and the verdict due. */
struct hostile {
	const char *what;
	int family;
	uint8_t type, code;
	uint16_t id, seq;
	long len_delta;        /* bytes added (+) or cut (-) from the end */
	int flip;              /* payload byte to flip, or -1 */
	size_t exact_len;      /* when non-zero: use this length instead */
	int verdict;
};

static const struct hostile table[] = {
	{"empty", AF_INET, 0, 0, 0x1234, 1, 0, -1, 0, ICMP_ECHO_SHORT},
	{"7-byte header", AF_INET, 0, 0, 0x1234, 1, 0, -1, 7, ICMP_ECHO_SHORT},
	{"1 byte", AF_INET6, 129, 0, 0x1234, 1, 0, -1, 1, ICMP_ECHO_SHORT},
	{"echo request looped back", AF_INET, 8, 0, 0x1234, 1, 0, -1, 0, ICMP_ECHO_NOT_REPLY},
	{"destination unreachable", AF_INET, 3, 1, 0x1234, 1, 0, -1, 0, ICMP_ECHO_NOT_REPLY},
	{"ICMPv6 reply type on IPv4", AF_INET, 129, 0, 0x1234, 1, 0, -1, 0, ICMP_ECHO_NOT_REPLY},
	{"IPv4 reply type on IPv6", AF_INET6, 0, 0, 0x1234, 1, 0, -1, 0, ICMP_ECHO_NOT_REPLY},
	{"ICMPv6 echo request", AF_INET6, 128, 0, 0x1234, 1, 0, -1, 0, ICMP_ECHO_NOT_REPLY},
	{"code 1", AF_INET, 0, 1, 0x1234, 1, 0, -1, 0, ICMP_ECHO_BAD_CODE},
	{"code 255", AF_INET6, 129, 255, 0x1234, 1, 0, -1, 0, ICMP_ECHO_BAD_CODE},
	{"another identifier", AF_INET, 0, 0, 0x1235, 1, 0, -1, 0, ICMP_ECHO_OTHER_ID},
	{"byte-swapped identifier", AF_INET6, 129, 0, 0x3412, 1, 0, -1, 0, ICMP_ECHO_OTHER_ID},
	{"sequence 0 never sent", AF_INET, 0, 0, 0x1234, 0, 0, -1, 0, ICMP_ECHO_UNSENT_SEQ},
	{"sequence 3 not yet sent", AF_INET, 0, 0, 0x1234, 3, 0, -1, 0, ICMP_ECHO_UNSENT_SEQ},
	{"sequence 65534 never sent", AF_INET6, 129, 0, 0x1234, 65534, 0, -1, 0, ICMP_ECHO_UNSENT_SEQ},
	{"header only", AF_INET, 0, 0, 0x1234, 1, 0, -1, 8, ICMP_ECHO_BAD_LENGTH},
	{"payload cut by 1", AF_INET, 0, 0, 0x1234, 1, -1, -1, 0, ICMP_ECHO_BAD_LENGTH},
	{"payload 1 longer", AF_INET6, 129, 0, 0x1234, 2, 1, -1, 0, ICMP_ECHO_BAD_LENGTH},
	{"payload 64 longer", AF_INET, 0, 0, 0x1234, 2, 64, -1, 0, ICMP_ECHO_BAD_LENGTH},
	{"first payload byte flipped", AF_INET, 0, 0, 0x1234, 1, 0, 0, 0, ICMP_ECHO_BAD_PAYLOAD},
	{"last payload byte flipped", AF_INET6, 129, 0, 0x1234, 1, 0, ICMP_ECHO_PAYLOAD - 1, 0,
	 ICMP_ECHO_BAD_PAYLOAD},
};

static void test_hostile_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
		const struct hostile *h = &table[i];
		struct icmp_echo_expect e = expect(h->family);
		uint8_t buf[256];
		memset(buf, 0xa5, sizeof buf);
		size_t n = reply(h->family, h->type, h->code, h->id, h->seq, buf);
		if (h->exact_len || !strcmp(h->what, "empty"))
			n = h->exact_len;
		n = (size_t)((long)n + h->len_delta);
		if (h->flip >= 0)
			buf[ICMP_ECHO_HEADER + h->flip] ^= 0x80;
		/* An exact-size heap copy: reading past n would be caught by ASan. */
		uint8_t *exact = test_malloc(n ? n : 1);
		memcpy(exact, buf, n);
		uint16_t seq = 0xbeef;
		int v = icmp_echo_check(&e, exact, n, &seq);
		test_free(exact);
		if (v != h->verdict)
			fail_msg("%s: verdict %d (%s), want %d (%s)", h->what, v,
				 icmp_echo_verdict_str(v), h->verdict, icmp_echo_verdict_str(h->verdict));
		assert_int_equal(seq, 0xbeef); /* untouched unless valid */
	}
}

static void test_bad_expectations(void **state)
{
	(void)state;
	uint8_t buf[128];
	uint16_t seq;
	struct icmp_echo_expect e = expect(AF_INET);
	size_t n = reply(AF_INET, 0, 0, 0x1234, 1, buf);
	assert_int_equal(icmp_echo_check(NULL, buf, n, &seq), ICMP_ECHO_BAD_EXPECT);
	assert_int_equal(icmp_echo_check(&e, NULL, n, &seq), ICMP_ECHO_BAD_EXPECT);
	e.family = AF_UNIX;
	assert_int_equal(icmp_echo_check(&e, buf, n, &seq), ICMP_ECHO_BAD_EXPECT);
	e = expect(AF_INET);
	e.sent = NULL;
	assert_int_equal(icmp_echo_check(&e, buf, n, &seq), ICMP_ECHO_BAD_EXPECT);
}

static void test_error_words(void **state)
{
	(void)state;
	assert_string_equal(icmp_error_str(AF_INET, 3, 1), "Destination Host Unreachable");
	assert_string_equal(icmp_error_str(AF_INET, 3, 99), "Destination Unreachable");
	assert_string_equal(icmp_error_str(AF_INET, 3, -1), "Destination Unreachable");
	assert_string_equal(icmp_error_str(AF_INET, 11, 0), "Time to live exceeded");
	assert_string_equal(icmp_error_str(AF_INET6, 1, 3), "Address unreachable");
	assert_string_equal(icmp_error_str(AF_INET6, 1, 200), "Destination unreachable");
	assert_null(icmp_error_str(AF_INET, 42, 0));
	assert_null(icmp_error_str(AF_INET6, 200, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build),
		cmocka_unit_test(test_valid_replies),
		cmocka_unit_test(test_hostile_table),
		cmocka_unit_test(test_bad_expectations),
		cmocka_unit_test(test_error_words),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
