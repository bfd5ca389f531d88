/* Channel names and patterns: validation and matching tables, and a
 * message for every error code. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "kite.h"

/* n tokens "a.a.a…" (2n-1 bytes) into buf. */
static const char *tokens(char *buf, size_t cap, int n, const char *last)
{
	size_t at = 0;
	for (int i = 0; i < n - 1 && at + 3 < cap; i++) {
		buf[at++] = 'a';
		buf[at++] = '.';
	}
	snprintf(buf + at, cap - at, "%s", last);
	return buf;
}

/* A string of exactly n bytes of valid tokens: "aaaa…" split by dots. */
static const char *of_length(char *buf, size_t n)
{
	memset(buf, 'x', n);
	for (size_t i = 10; i + 1 < n; i += 11)
		buf[i] = '.'; /* 18 or 19 tokens for ~200 bytes: under the cap */
	buf[n] = 0;
	return buf;
}

static void test_channel_valid_table(void **state)
{
	(void)state;
	static const char *const good[] = {
		"a", "a.b", "A-Z_09", "orders.eu-west.new", "-", "_", "a.b.c.d.e", "x1.y2",
	};
	static const char *const bad[] = {
		"", ".", "a.", ".a", "a..b", "a b", "a/b", "a.*", "*", ">", "a.>",
		"a*", "a>b", "é", "a\tb", "a.b.", "..", "a.*.b", "a:b", "a,b",
	};
	for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
		if (kite_channel_valid(good[i]) != 0)
			fail_msg("channel \"%s\" should be valid", good[i]);
		if (kite_pattern_valid(good[i]) != 0)
			fail_msg("\"%s\" should be a valid pattern too", good[i]);
	}
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		if (kite_channel_valid(bad[i]) != KITE_EBADNAME)
			fail_msg("channel \"%s\" should be invalid", bad[i]);
	assert_int_equal(kite_channel_valid(NULL), KITE_EBADNAME);
	assert_int_equal(kite_pattern_valid(NULL), KITE_EBADNAME);
}

static void test_pattern_valid_table(void **state)
{
	(void)state;
	static const char *const good[] = {
		"*", ">", "a.*", "a.>", "*.b", "*.*", "a.*.c.>", "*.>", "a.b",
	};
	static const char *const bad[] = {
		"", ".", ">.a", "a.>.b", "a.>.>", "a*", "a.b*", "*a", "a>", "a.>b",
		"a..*", ".>", "*.", "a.**", ">>", "a. b",
	};
	for (size_t i = 0; i < sizeof good / sizeof *good; i++)
		if (kite_pattern_valid(good[i]) != 0)
			fail_msg("pattern \"%s\" should be valid", good[i]);
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		if (kite_pattern_valid(bad[i]) != KITE_EBADNAME)
			fail_msg("pattern \"%s\" should be invalid", bad[i]);
}

static void test_length_limits(void **state)
{
	(void)state;
	char buf[512];
	assert_int_equal(strlen(of_length(buf, KITE_CHANNEL_MAX)), 200);
	assert_int_equal(kite_channel_valid(buf), 0);
	assert_int_equal(kite_pattern_valid(buf), 0);
	of_length(buf, KITE_CHANNEL_MAX + 1);
	assert_int_equal(kite_channel_valid(buf), KITE_EBADNAME);
	assert_int_equal(kite_pattern_valid(buf), KITE_EBADNAME);
	/* 200 bytes ending in a wildcard. */
	of_length(buf, KITE_CHANNEL_MAX);
	memcpy(buf + KITE_CHANNEL_MAX - 3, "x.>", 3);
	assert_int_equal(kite_pattern_valid(buf), 0);
	assert_int_equal(kite_channel_valid(buf), KITE_EBADNAME);

	assert_int_equal(kite_channel_valid(tokens(buf, sizeof buf, 32, "a")), 0);
	assert_int_equal(kite_channel_valid(tokens(buf, sizeof buf, 33, "a")), KITE_EBADNAME);
	assert_int_equal(kite_pattern_valid(tokens(buf, sizeof buf, 32, ">")), 0);
	assert_int_equal(kite_pattern_valid(tokens(buf, sizeof buf, 33, ">")), KITE_EBADNAME);
	assert_int_equal(kite_pattern_valid(tokens(buf, sizeof buf, 32, "*")), 0);
	assert_int_equal(kite_pattern_valid(tokens(buf, sizeof buf, 33, "*")), KITE_EBADNAME);
}

static void test_match_table(void **state)
{
	(void)state;
	static const struct {
		const char *pattern, *name;
		int match;
	} t[] = {
		{"a", "a", 1},
		{"a", "b", 0},
		{"a", "ab", 0},
		{"ab", "a", 0},
		{"a.b", "a.b", 1},
		{"a.b", "a.c", 0},
		{"a.b", "a.b.c", 0},
		{"a.b.c", "a.b", 0},
		{"*", "a", 1},
		{"*", "a.b", 0},
		{"a.*", "a.b", 1},
		{"a.*", "a", 0},
		{"a.*", "a.b.c", 0},
		{"*.b", "a.b", 1},
		{"*.b", "a.c", 0},
		{"*.*", "x.y", 1},
		{"*.*", "x", 0},
		{">", "a", 1},
		{">", "a.b.c", 1},
		{"a.>", "a", 0},
		{"a.>", "a.b", 1},
		{"a.>", "a.b.c.d", 1},
		{"a.>", "b.c", 0},
		{"a.*.c.>", "a.x.c.d", 1},
		{"a.*.c.>", "a.x.c", 0},
		{"a.*.c.>", "a.x.d.e", 0},
		{"abc.>", "ab.c", 0},
		{"ab", "abc", 0},
	};
	for (size_t i = 0; i < sizeof t / sizeof *t; i++)
		if (kite_pattern_match(t[i].pattern, t[i].name) != t[i].match)
			fail_msg("match(\"%s\", \"%s\") should be %d", t[i].pattern,
				 t[i].name, t[i].match);
}

static void test_strerror_every_code(void **state)
{
	(void)state;
	static const int codes[] = {
		KITE_EBADNAME, KITE_ETOOBIG, -ETIMEDOUT, -EAGAIN,
		KITE_ENOTSUB,
	};
	const char *unknown = kite_strerror(-999999);
	assert_non_null(unknown);
	for (size_t i = 0; i < sizeof codes / sizeof *codes; i++) {
		const char *s = kite_strerror(codes[i]);
		assert_non_null(s);
		assert_true(strlen(s) > 5);
		if (!strcmp(s, unknown))
			fail_msg("code %d has no message of its own", codes[i]);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(s, kite_strerror(codes[j])))
				fail_msg("codes %d and %d share a message", codes[i], codes[j]);
	}
	assert_string_equal(kite_strerror(-2), "No such file or directory");
	assert_non_null(kite_strerror(0));
	assert_non_null(kite_strerror(12345));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_channel_valid_table),
		cmocka_unit_test(test_pattern_valid_table),
		cmocka_unit_test(test_length_limits),
		cmocka_unit_test(test_match_table),
		cmocka_unit_test(test_strerror_every_code),
	};
	return cmocka_run_group_tests_name("names", tests, NULL, NULL);
}
