/* kite fifo's codec sniffing (cli/fifo_input.c): magic bytes only, never
 * reading past the bytes it is given. */
#include <string.h>

#include "check.h"
#include "fifo/fifo.h"

struct sniff_case {
	const char *what;
	const char *bytes;
	size_t len;
	enum fifo_codec want;
};

static const struct sniff_case cases[] = {
	{"gzip", "\x1f\x8b\x08\x00", 4, CODEC_GZIP},
	{"gzip, magic only", "\x1f\x8b", 2, CODEC_GZIP},
	{"xz", "\xfd" "7zXZ\x00\x00\x04", 8, CODEC_XZ},
	{"xz, magic only", "\xfd" "7zXZ\x00", 6, CODEC_XZ},
	{"zstd", "\x28\xb5\x2f\xfd\x24\x00", 6, CODEC_ZSTD},
	{"zstd, magic only", "\x28\xb5\x2f\xfd", 4, CODEC_ZSTD},
	{"empty", "", 0, CODEC_NONE},
	{"one gzip byte", "\x1f", 1, CODEC_NONE},
	{"xz cut at 5", "\xfd" "7zXZ", 5, CODEC_NONE},
	{"zstd cut at 3", "\x28\xb5\x2f", 3, CODEC_NONE},
	{"gzip bytes swapped", "\x8b\x1f", 2, CODEC_NONE},
	{"xz with 1 for NUL", "\xfd" "7zXZ\x01", 6, CODEC_NONE},
	{"zstd skippable frame", "\x50\x2a\x4d\x18", 4, CODEC_NONE},
	{"bzip2 (not handled)", "BZh91AY", 7, CODEC_NONE},
	{"CSV text", "1,row 1\n", 8, CODEC_NONE},
	{"lz4 frame (not handled)", "\x04\x22\x4d\x18", 4, CODEC_NONE},
};

static void test_sniff_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		const struct sniff_case *c = &cases[i];
		/* An exact-size heap copy: ASan catches a read past len. */
		unsigned char *head = test_malloc(c->len ? c->len : 1);
		memcpy(head, c->bytes, c->len);
		enum fifo_codec got = fifo_sniff(head, c->len);
		test_free(head);
		if (got != c->want)
			fail_msg("%s: codec %d, want %d", c->what, got, c->want);
	}
}

static void test_programs(void **state)
{
	(void)state;
	assert_string_equal(fifo_codec_program(CODEC_GZIP), "gzip");
	assert_string_equal(fifo_codec_program(CODEC_XZ), "xz");
	assert_string_equal(fifo_codec_program(CODEC_ZSTD), "zstd");
	assert_null(fifo_codec_program(CODEC_NONE));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sniff_table),
		cmocka_unit_test(test_programs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
