/* kite statsd: the line parser, its numbers and tags, and a table of hostile
 * packets that must be counted and survived. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "statsd/statsd.h"

static enum statsd_bad parse(const char *line, struct statsd_sample *s, char *tagbuf)
{
	return statsd_parse_line(line, strlen(line), s, tagbuf);
}

static void test_kinds(void **state)
{
	(void)state;
	char tb[STATSD_MAX_TAG_BYTES + 1];
	struct statsd_sample s;
	assert_int_equal(parse("api.hits:3|c", &s, tb), STATSD_OK);
	assert_int_equal(s.kind, STATSD_COUNTER);
	assert_int_equal(s.name_len, 8);
	assert_memory_equal(s.name, "api.hits", 8);
	assert_true(s.value == 3 && s.rate == 1 && s.tags_len == 0);

	assert_int_equal(parse("t:12.5|ms", &s, tb), STATSD_OK);
	assert_int_equal(s.kind, STATSD_TIMER);
	assert_true(s.value == 12.5);
	assert_int_equal(parse("h:-2|h", &s, tb), STATSD_OK);
	assert_int_equal(s.kind, STATSD_HISTOGRAM);
	assert_int_equal(parse("d:7|d", &s, tb), STATSD_OK);
	assert_int_equal(s.kind, STATSD_HISTOGRAM);

	assert_int_equal(parse("g:42|g", &s, tb), STATSD_OK);
	assert_true(s.kind == STATSD_GAUGE && !s.delta && s.value == 42);
	assert_int_equal(parse("g:+4|g", &s, tb), STATSD_OK);
	assert_true(s.delta && s.value == 4);
	assert_int_equal(parse("g:-4.5|g", &s, tb), STATSD_OK);
	assert_true(s.delta && s.value == -4.5);

	assert_int_equal(parse("u:alice|s", &s, tb), STATSD_OK);
	assert_int_equal(s.kind, STATSD_SET);
	assert_int_equal(s.member_len, 5);
	assert_memory_equal(s.member, "alice", 5);
}

static void test_rate_and_tags(void **state)
{
	(void)state;
	char tb[STATSD_MAX_TAG_BYTES + 1];
	struct statsd_sample s;
	assert_int_equal(parse("c:1|c|@0.1", &s, tb), STATSD_OK);
	assert_true(s.rate == 0.1);
	assert_int_equal(parse("c:1|c|@0.25|#env:prod,a.b:x y", &s, tb), STATSD_OK);
	assert_true(s.rate == 0.25);
	/* sorted, key sanitised, value kept (space included) */
	assert_string_equal(s.tags, "a_b=x y,env=prod");
	assert_int_equal(parse("c:1|c|#z:1,a:2,m:3", &s, tb), STATSD_OK);
	assert_string_equal(s.tags, "a=2,m=3,z=1");
	/* valueless and duplicate keys are left out and counted */
	assert_int_equal(parse("c:1|c|#solo,k:1,k:2,e:", &s, tb), STATSD_OK);
	assert_string_equal(s.tags, "k=1");
	assert_int_equal(s.tags_dropped, 3);
	/* tags before the rate, unknown DogStatsD fields skipped */
	assert_int_equal(parse("c:1|c|#k:v|@0.5|c:abc|T1700000000", &s, tb), STATSD_OK);
	assert_true(s.rate == 0.5);
	assert_string_equal(s.tags, "k=v");
	/* a value with ':' keeps it; control bytes become '_' */
	assert_int_equal(parse("c:1|c|#url:http://x\x01y", &s, tb), STATSD_OK);
	assert_string_equal(s.tags, "url=http://x_y");
	/* reserved label prefix and leading digits */
	assert_int_equal(parse("c:1|c|#__name__:x,9lives:y", &s, tb), STATSD_OK);
	assert_string_equal(s.tags, "_9lives=y,tag__name__=x");
}

/* A NUL inside the name is refused, not a name cut short; a line
 * holding one is given with its length. */
static void test_nul_in_name(void **state)
{
	(void)state;
	char tb[STATSD_MAX_TAG_BYTES + 1];
	struct statsd_sample s;
	static const char line[] = "ab\0cd:1|c";
	assert_int_equal(statsd_parse_line(line, sizeof line - 1, &s, tb), STATSD_BAD_SYNTAX);
	/* negative histograms and gauge deltas stay allowed */
	assert_int_equal(parse("h:-2.5|h", &s, tb), STATSD_OK);
	assert_int_equal(parse("g:-1|g", &s, tb), STATSD_OK);
	assert_int_equal(parse("c:0|c", &s, tb), STATSD_OK);
}

/* Tag values keep valid UTF-8 (Prometheus label values are UTF-8), so
 * "café" and "cafè" are two series; what is not UTF-8 becomes '_' byte
 * for byte: stray continuation bytes, overlong forms, surrogates, code
 * points above U+10FFFF, truncated sequences, control bytes and DEL. */
static void test_utf8_tag_values(void **state)
{
	(void)state;
	char tb[STATSD_MAX_TAG_BYTES + 1];
	struct statsd_sample s;
	static const struct {
		const char *line, *tags;
	} cases[] = {
		{"c:1|c|#city:caf\xc3\xa9", "city=caf\xc3\xa9"},
		{"c:1|c|#city:caf\xc3\xa8", "city=caf\xc3\xa8"},
		{"c:1|c|#k:\xe2\x82\xac\xf0\x9f\x98\x80", "k=\xe2\x82\xac\xf0\x9f\x98\x80"},
		{"c:1|c|#k:a\xff" "b", "k=a_b"},
		{"c:1|c|#k:\x80", "k=_"},
		{"c:1|c|#k:\xc0\xaf", "k=__"},             /* overlong '/' */
		{"c:1|c|#k:\xe0\x80\xaf", "k=___"},       /* overlong, 3 bytes */
		{"c:1|c|#k:\xed\xa0\x80", "k=___"},       /* surrogate U+D800 */
		{"c:1|c|#k:\xf4\x90\x80\x80", "k=____"}, /* above U+10FFFF */
		{"c:1|c|#k:\xe2\x82", "k=__"},             /* cut short */
		{"c:1|c|#k:a\x7f" "b\x1b", "k=a_b_"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		assert_int_equal(parse(cases[i].line, &s, tb), STATSD_OK);
		assert_string_equal(s.tags, cases[i].tags);
	}
}

/* statsd's (Etsy's) key cleaning for Graphite paths. */
static void test_graphite_name(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"api.requests", "api.requests"},
		{"a  b\tc", "a_b_c"},        /* a run of whitespace is one '_' */
		{"path/to/x", "path-to-x"},
		{"caf\xc3\xa9!@#$%^&*()", "caf"},
		{"ab-x", "ab-x"},
		{"ab_x", "ab_x"},
		{"ab.x", "ab.x"},
		{"a\xae" "b", "ab"},       /* a dropped byte: not clean */
	};
	char out[64];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t n = statsd_graphite_name(cases[i].in, strlen(cases[i].in), out);
		assert_int_equal(n, strlen(cases[i].out));
		assert_memory_equal(out, cases[i].out, n);
		assert_int_equal(statsd_graphite_name(cases[i].in, strlen(cases[i].in), NULL), n);
		/* a name is its own Graphite name exactly when nothing changes */
		bool same = n == strlen(cases[i].in) && !memcmp(out, cases[i].in, n);
		assert_int_equal(statsd_name_scan(cases[i].in, strlen(cases[i].in)) ==
					 STATSD_NAME_KEEP, same);
	}
}

static void test_numbers(void **state)
{
	(void)state;
	double v;
	assert_int_equal(statsd_parse_number("0.1", 3, &v), 0);
	assert_true(v == 0.1);
	assert_int_equal(statsd_parse_number("1e3", 3, &v), 0);
	assert_true(v == 1000);
	assert_int_equal(statsd_parse_number("-.5", 3, &v), 0);
	assert_true(v == -0.5);
	assert_int_equal(statsd_parse_number("12345678901234567890", 20, &v), 0);
	assert_true(v == 12345678901234567890.0);
	assert_int_equal(statsd_parse_number("0.00000000000000000001", 22, &v), 0);
	assert_true(v == 1e-20);
	assert_int_equal(statsd_parse_number("1.5", 2, &v), 0); /* only "1." */
	assert_true(v == 1);
	const char *bad[] = {"", "-", ".", "abc", "1x", "0x10", "inf", "nan", "1e999",
			     "1..2", "--1", "1 ", " 1", "1e", NULL};
	for (int i = 0; bad[i]; i++)
		assert_int_equal(statsd_parse_number(bad[i], strlen(bad[i]), &v), -1);
}

static void test_bad_lines(void **state)
{
	(void)state;
	char tb[STATSD_MAX_TAG_BYTES + 1];
	struct statsd_sample s;
	static const struct {
		const char *line;
		enum statsd_bad why;
	} cases[] = {
		{"nocolon", STATSD_BAD_SYNTAX},
		{":1|c", STATSD_BAD_SYNTAX},
		{"a:1", STATSD_BAD_SYNTAX},
		{"a:1|", STATSD_BAD_SYNTAX},
		{"a:1|x", STATSD_BAD_SYNTAX},
		{"a:1|cc", STATSD_BAD_SYNTAX},
		{"a:1|c|", STATSD_BAD_SYNTAX},
		{"a:1|c||@0.5", STATSD_BAD_SYNTAX},
		{"a|b:1|c", STATSD_BAD_SYNTAX},
		{"a:x|c", STATSD_BAD_VALUE},
		{"a:|c", STATSD_BAD_VALUE},
		{"a:|s", STATSD_BAD_VALUE},
		{"a:1e400|ms", STATSD_BAD_VALUE},
		{"a:1|c|@0", STATSD_BAD_RATE},
		{"a:1|c|@1.5", STATSD_BAD_RATE},
		{"a:1|c|@-1", STATSD_BAD_RATE},
		{"a:1|c|@", STATSD_BAD_RATE},
		{"a:1|c|@0.5|@0.5", STATSD_BAD_RATE},
		{"a:1|c|#:v", STATSD_BAD_TAGS},
		/* counters only go up, durations are never negative */
		{"a:-1|c", STATSD_BAD_NEGATIVE},
		{"a:-0.5|c|@0.5", STATSD_BAD_NEGATIVE},
		{"a:-3|ms", STATSD_BAD_NEGATIVE},
		/* nothing left once statsd's Graphite cleaning is done */
		{"!!!:1|c", STATSD_BAD_SYNTAX},
		{"\xc3\xbc:1|c", STATSD_BAD_SYNTAX},
		{"a:1|c|#k:v|#k2:v", STATSD_BAD_TAGS},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		enum statsd_bad got = parse(cases[i].line, &s, tb);
		if (got != cases[i].why)
			fail_msg("'%s': got %d, want %d", cases[i].line, got, cases[i].why);
	}
	/* over-long name, too many tags, too many tag bytes */
	char big[2048];
	memset(big, 'n', 300);
	strcpy(big + 300, ":1|c");
	assert_int_equal(parse(big, &s, tb), STATSD_BAD_TOO_LONG);
	int o = sprintf(big, "a:1|c|#");
	for (int i = 0; i < STATSD_MAX_TAGS + 1; i++)
		o += sprintf(big + o, "k%d:v,", i);
	assert_int_equal(parse(big, &s, tb), STATSD_BAD_TAGS);
	o = sprintf(big, "a:1|c|#k:");
	memset(big + o, 'v', 1500);
	big[o + 1500] = 0;
	assert_int_equal(parse(big, &s, tb), STATSD_BAD_TOO_LONG);
}

/* Hostile packets: the good lines in them still count, each bad one is
 * counted once, and nothing crashes (ASan/UBSan build runs this too). */
static void test_hostile_packets(void **state)
{
	(void)state;
	struct statsd_table *t = statsd_table_new(42);
	assert_non_null(t);
	struct statsd_config c;
	statsd_config_defaults(&c);
	c.max_metrics = 1000;
	statsd_table_configure(t, &c);

	static const char mixed[] = "ok:1|c\ngarbage\n\n\r\nok:2|c\r\n:::\n|||\nok:x|c\nok:4|c";
	statsd_table_add_packet(t, mixed, sizeof mixed - 1);
	struct statsd_health *h = statsd_table_health(t);
	assert_int_equal(h->lines, 7);
	assert_int_equal(h->bad_lines[STATSD_BAD_SYNTAX] + h->bad_lines[STATSD_BAD_VALUE], 4);

	/* binary noise with NUL bytes and no newline */
	unsigned char noise[4096];
	uint64_t x = 88172645463325252ull;
	for (size_t i = 0; i < sizeof noise; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		noise[i] = (unsigned char)x;
	}
	statsd_table_add_packet(t, (const char *)noise, sizeof noise);

	/* a huge tag list on one line, and 64 KiB of one line */
	size_t n = 65000;
	char *p = malloc(n + 1);
	assert_non_null(p);
	int o = sprintf(p, "tags:1|c|#");
	size_t i = (size_t)o;
	for (; i + 4 <= n; i += 4)
		memcpy(p + i, "k:v,", 4);
	memset(p + i, 'k', n - i);
	statsd_table_add_packet(t, p, n);
	memset(p, 'a', n);
	statsd_table_add_packet(t, p, n);
	free(p);

	statsd_table_flush(t, 1000);
	struct statsd_buf b = {0};
	statsd_prometheus_render(t, &b);
	assert_non_null(strstr(b.p, "\nok_total 7\n"));
	statsd_buf_free(&b);
	statsd_table_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kinds),
		cmocka_unit_test(test_rate_and_tags),
		cmocka_unit_test(test_nul_in_name),
		cmocka_unit_test(test_utf8_tag_values),
		cmocka_unit_test(test_graphite_name),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_bad_lines),
		cmocka_unit_test(test_hostile_packets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
