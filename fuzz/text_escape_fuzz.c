/* Fuzz target: text_escape (cli/escape.c), the one-line text form of a
 * payload that `kite sub` prints. For any bytes, the output must hold no
 * control byte (C0, DEL, or a C1 control in UTF-8), must be well-formed
 * UTF-8, and must decode back (\\ \n \r \t \xHH) to exactly the input.
 * The checks here decode code points on their own rather than reuse
 * escape.c's test, so a mistake there is not repeated here. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

const char *const fuzz_seeds[] = {
	"plain ASCII",
	"two\nlines\r\n\ttab \\ backslash \x1b[31m red \x7f",
	"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",      /* é € 😀 */
	"\xc2\x85\xc2\x9f\xc2\xa0",                       /* NEL, APC, NBSP */
	"\xc0\xaf\xe0\x80\xaf\xf0\x80\x80\xaf",           /* overlong '/' */
	"\xed\xa0\x80\xed\xbf\xbf",                       /* surrogates */
	"\xf4\x8f\xbf\xbf\xf4\x90\x80\x80\xf5\x80\x80\x80", /* U+10FFFF, above */
	"\xe2\x82 cut \xf0\x9f\x98",                      /* truncated */
	"\x80\xbf\xfe\xff",                               /* stray bytes */
	"\\x41 is not A",
	NULL,
};

/* Code point of the well-formed UTF-8 sequence at s, its length in *len;
 * -1 if s does not start one. */
static long decode(const unsigned char *s, size_t n, size_t *len)
{
	static const long min[] = {0, 0, 0x80, 0x800, 0x10000};
	size_t want = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc0 ? 2 : 0;
	if (!want || want > n)
		return -1;
	long cp = s[0] & (0x7f >> want);
	for (size_t i = 1; i < want; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return -1;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min[want] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*len = want;
	return cp;
}

static int hex(unsigned char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *out = NULL;
	size_t outlen = 0;
	FILE *f = open_memstream(&out, &outlen);
	if (!f)
		return 0;
	text_escape(f, data, size);
	if (fclose(f))
		return 0;
	const unsigned char *o = (const unsigned char *)out;
	uint8_t *back = malloc(outlen + 1);
	if (!back)
		__builtin_trap();
	size_t nback = 0;
	for (size_t i = 0; i < outlen;) {
		size_t len;
		long cp;
		if (o[i] == '\\') { /* an escape: decode it */
			if (i + 1 >= outlen)
				__builtin_trap(); /* a lone backslash at the end */
			switch (o[i + 1]) {
			case '\\': back[nback++] = '\\'; i += 2; break;
			case 'n': back[nback++] = '\n'; i += 2; break;
			case 'r': back[nback++] = '\r'; i += 2; break;
			case 't': back[nback++] = '\t'; i += 2; break;
			case 'x':
				if (i + 3 >= outlen || hex(o[i + 2]) < 0 || hex(o[i + 3]) < 0)
					__builtin_trap();
				back[nback++] = (uint8_t)(hex(o[i + 2]) << 4 | hex(o[i + 3]));
				i += 4;
				break;
			default:
				__builtin_trap(); /* an escape printf '%b' reads otherwise */
			}
		} else if (o[i] >= 0x20 && o[i] < 0x7f) {
			back[nback++] = o[i++];
		} else if ((cp = decode(o + i, outlen - i, &len)) >= 0xa0) {
			memcpy(back + nback, o + i, len); /* not C0, DEL or C1 */
			nback += len;
			i += len;
		} else {
			__builtin_trap(); /* a control or malformed byte got through */
		}
	}
	if (nback != size || (size && memcmp(back, data, size)))
		__builtin_trap();
	free(back);
	free(out);
	return 0;
}
