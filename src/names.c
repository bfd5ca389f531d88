/* Channel names and patterns: validation and matching (NATS conventions). */
#include <string.h>

#include "internal.h"

#define MAX_TOKENS 32

static int token_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* Shared by names and patterns: wildcards only when allowed. */
static int validate(const char *s, int wildcards)
{
	if (!s)
		return KITE_EBADNAME;
	size_t n = strnlen(s, KITE_CHANNEL_MAX + 1);
	if (n == 0 || n > KITE_CHANNEL_MAX)
		return KITE_EBADNAME;
	int tokens = 0;
	const char *p = s;
	for (;;) {
		const char *start = p;
		while (*p && *p != '.')
			p++;
		size_t len = (size_t)(p - start);
		if (len == 0 || ++tokens > MAX_TOKENS)
			return KITE_EBADNAME;
		if (len == 1 && (*start == '*' || *start == '>')) {
			if (!wildcards || (*start == '>' && *p))
				return KITE_EBADNAME;
		} else {
			for (const char *c = start; c < p; c++)
				if (!token_char((unsigned char)*c))
					return KITE_EBADNAME;
		}
		if (!*p)
			return 0;
		p++;
	}
}

int kite_channel_valid(const char *name) { return validate(name, 0); }

int kite_pattern_valid(const char *pattern) { return validate(pattern, 1); }

int kite_pattern_match(const char *pattern, const char *name)
{
	const char *p = pattern, *n = name;
	for (;;) {
		const char *pe = strchr(p, '.'), *ne = strchr(n, '.');
		size_t plen = pe ? (size_t)(pe - p) : strlen(p);
		size_t nlen = ne ? (size_t)(ne - n) : strlen(n);
		if (plen == 1 && *p == '>')
			return 1; /* valid patterns only have '>' last; name has >= 1 token left */
		if (!(plen == 1 && *p == '*') &&
		    (plen != nlen || memcmp(p, n, plen) != 0))
			return 0;
		if (!pe || !ne)
			return !pe && !ne;
		p = pe + 1;
		n = ne + 1;
	}
}

/* Token at *s: its length, and *s moved past it (and its dot). */
static size_t next_token(const char **s, const char **tok)
{
	*tok = *s;
	const char *e = strchr(*s, '.');
	size_t len = e ? (size_t)(e - *s) : strlen(*s);
	*s = e ? e + 1 : *s + len;
	return len;
}

int ki_patterns_overlap(const char *a, const char *b)
{
	for (;;) {
		if (!*a || !*b)
			return !*a && !*b;
		const char *ta, *tb;
		size_t la = next_token(&a, &ta), lb = next_token(&b, &tb);
		/* '>' takes one or more tokens: whatever the other has left. */
		if ((la == 1 && *ta == '>') || (lb == 1 && *tb == '>'))
			return 1;
		if ((la == 1 && *ta == '*') || (lb == 1 && *tb == '*'))
			continue;
		if (la != lb || memcmp(ta, tb, la))
			return 0;
	}
}
