/* A payload as one line of text: `kite sub` prints messages one per line,
 * so no byte of a payload may end the line, move the cursor or speak to the
 * terminal. Printable ASCII and well-formed UTF-8 pass; everything else is
 * a backslash escape that `printf '%b'` turns back into the exact bytes. */
#include <stdio.h>

#include "cli.h"

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: shortest form,
 * no surrogates, at most U+10FFFF), n bytes available; 0 if there is none.
 * C1 controls (U+0080..U+009F) count as none: terminals act on them. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		if (c == 0xc2)
			lo = 0xa0; /* not U+0080..U+009F */
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0; /* not overlong */
		else if (c == 0xed)
			hi = 0x9f; /* not a surrogate */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90; /* not overlong */
		else if (c == 0xf4)
			hi = 0x8f; /* not above U+10FFFF */
	} else {
		return 0; /* ASCII, a continuation byte, 0xc0, 0xc1, 0xf5..0xff */
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

void text_escape(FILE *out, const void *data, size_t len)
{
	const unsigned char *s = data;
	size_t run = 0; /* bytes before i that pass unchanged, not yet written */
	for (size_t i = 0; i < len;) {
		unsigned char c = s[i];
		size_t keep = c >= 0x20 && c < 0x7f && c != '\\' ? 1
			      : c >= 0x80 ? utf8_len(s + i, len - i) : 0;
		if (keep) {
			run += keep;
			i += keep;
			continue;
		}
		fwrite(s + i - run, 1, run, out);
		run = 0;
		switch (c) {
		case '\\': fputs("\\\\", out); break;
		case '\n': fputs("\\n", out); break;
		case '\r': fputs("\\r", out); break;
		case '\t': fputs("\\t", out); break;
		default: fprintf(out, "\\x%02x", c);
		}
		i++;
	}
	fwrite(s + len - run, 1, run, out);
}

void json_string(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	putchar('"');
	for (size_t i = 0; i < len;) {
		unsigned char c = u[i];
		size_t n = c < 0x80 ? 1 : utf8_len(u + i, len - i);
		if (c == 0xc2 && i + 1 < len && u[i + 1] >= 0x80 && u[i + 1] <= 0x9f) {
			printf("\\u%04x", u[i + 1]); /* a C1 control, spelt out */
			i += 2;
		} else if (n > 1) {
			fwrite(u + i, 1, n, stdout);
			i += n;
		} else if (!n) {
			fputs("\\ufffd", stdout);
			i++;
		} else {
			switch (c) {
			case '"': fputs("\\\"", stdout); break;
			case '\\': fputs("\\\\", stdout); break;
			case '\n': fputs("\\n", stdout); break;
			case '\r': fputs("\\r", stdout); break;
			case '\t': fputs("\\t", stdout); break;
			default:
				if (c < 0x20 || c == 0x7f)
					printf("\\u%04x", c);
				else
					putchar(c);
			}
			i++;
		}
	}
	putchar('"');
}

/* Whether len bytes at s are well-formed UTF-8 (C1 controls included:
 * json_string spells them out, losing nothing). */
static int utf8_valid(const unsigned char *s, size_t len)
{
	for (size_t i = 0; i < len;) {
		size_t n = s[i] < 0x80 ? 1
			   : s[i] == 0xc2 && i + 1 < len && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f
			       ? 2
			       : utf8_len(s + i, len - i);
		if (!n)
			return 0;
		i += n;
	}
	return 1;
}

void json_payload(const void *data, size_t len)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *u = data;
	if (utf8_valid(u, len)) {
		fputs("\"payload\":", stdout);
		json_string(data, len);
		return;
	}
	fputs("\"payload_base64\":\"", stdout);
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)u[i] << 16 | (i + 1 < len ? (unsigned)u[i + 1] << 8 : 0) |
			     (i + 2 < len ? u[i + 2] : 0);
		char q[4] = {b64[v >> 18 & 63], b64[v >> 12 & 63],
			     i + 1 < len ? b64[v >> 6 & 63] : '=', i + 2 < len ? b64[v & 63] : '='};
		fwrite(q, 1, 4, stdout);
	}
	putchar('"');
}
