/* One line of the statsd protocol, with the DogStatsD extensions:
 *   name:value|type[|@rate][|#tag:value,tag2:value2][|other DogStatsD fields]
 * type is c, g, s, ms, h or d. Gauge values with a leading sign are deltas.
 * Unknown '|' fields (DogStatsD's |T timestamps, |c: container ids) are
 * skipped: they carry no value the collector uses. Everything is
 * bounds-checked against len: the bytes come from any process that can
 * send a datagram. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "statsd.h"

static const double pow10_table[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7,
				     1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14,
				     1e15};

int statsd_parse_number(const char *s, size_t len, double *out)
{
	/* Fast path: [+-]digits[.digits] with at most 15 significant digits is
	 * exact as an integer divided by a power of ten (both exact doubles,
	 * so the division rounds once: the same result as strtod). */
	size_t i = 0;
	bool neg = false;
	if (i < len && (s[i] == '+' || s[i] == '-'))
		neg = s[i++] == '-';
	uint64_t mant = 0;
	int digits = 0, frac = 0;
	bool dot = false, any = false;
	for (; i < len; i++) {
		char c = s[i];
		if (c >= '0' && c <= '9') {
			any = true;
			if (mant || c != '0')
				digits++;
			mant = mant * 10 + (uint64_t)(c - '0');
			if (dot)
				frac++;
			if (digits > 15 || frac > 15)
				break;
		} else if (c == '.' && !dot) {
			dot = true;
		} else {
			break;
		}
	}
	if (i == len) {
		if (!any)
			return -1;
		double v = (double)mant / pow10_table[frac];
		*out = neg ? -v : v;
		return 0;
	}
	/* Slow path: exponents and long mantissas go through strtod on a
	 * NUL-terminated copy; hex, inf and nan are refused first. */
	char tmp[64];
	if (len == 0 || len >= sizeof tmp)
		return -1;
	for (size_t k = 0; k < len; k++) {
		char c = s[k];
		if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' ||
		      c == '+' || c == '-'))
			return -1;
	}
	memcpy(tmp, s, len);
	tmp[len] = 0;
	char *end;
	double v = strtod(tmp, &end);
	if (end != tmp + len || !isfinite(v))
		return -1;
	*out = v;
	return 0;
}

/* Length of the valid UTF-8 sequence at s[0..n) (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0; /* overlong */
		else if (c == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90; /* overlong */
		else if (c == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
	} else
		return 0;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

/* A tag value as Prometheus label values and Graphite tags may hold it:
 * valid UTF-8 is kept (so "café" and "cafè" stay two series), control
 * bytes, DEL and bytes that are not UTF-8 become '_', one for one (the
 * output is never longer than the input). */
static size_t copy_utf8(char *out, const char *v, size_t n)
{
	const unsigned char *s = (const unsigned char *)v;
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		size_t l = s[i] >= 0x80 ? utf8_len(s + i, n - i) : 1;
		if (l > 1) {
			memcpy(out + o, s + i, l);
			o += l;
			i += l;
			continue;
		}
		out[o++] = (s[i] < 0x20 || s[i] >= 0x7f) ? '_' : (char)s[i];
		i++;
	}
	return o;
}

struct tag {
	const char *key, *val; /* key sanitised in scratch; val raw in line */
	size_t key_len, val_len;
};

/* Canonical tags: sanitised keys, sorted (stable), first of duplicate keys
 * kept, valueless tags dropped and counted. */
static enum statsd_bad parse_tags(const char *p, size_t n, struct statsd_sample *out,
				  char *tagbuf)
{
	struct tag tags[STATSD_MAX_TAGS];
	char scratch[STATSD_MAX_TAG_BYTES + 4 * STATSD_MAX_TAGS];
	size_t ntags = 0, used = 0;
	if (n > STATSD_MAX_TAG_BYTES)
		return STATSD_BAD_TOO_LONG;
	size_t i = 0;
	while (i <= n) {
		size_t start = i;
		while (i < n && p[i] != ',')
			i++;
		size_t tlen = i - start;
		i++; /* past ',' (or past the end) */
		if (tlen == 0)
			continue; /* "a:1,,b:2" or a trailing comma */
		const char *t = p + start;
		const char *colon = memchr(t, ':', tlen);
		if (!colon || colon == t + tlen - 1) {
			if (colon == t)
				return STATSD_BAD_TAGS;
			out->tags_dropped++;
			continue;
		}
		if (colon == t)
			return STATSD_BAD_TAGS; /* empty key */
		if (ntags == STATSD_MAX_TAGS)
			return STATSD_BAD_TAGS;
		size_t klen = (size_t)(colon - t);
		char *k = scratch + used;
		size_t kl = statsd_prom_label_name(t, klen, k);
		used += kl;
		/* Stable insertion by key. */
		size_t at = ntags;
		while (at > 0) {
			const struct tag *prev = &tags[at - 1];
			size_t m = prev->key_len < kl ? prev->key_len : kl;
			int c = memcmp(prev->key, k, m);
			if (c < 0 || (c == 0 && prev->key_len <= kl))
				break;
			at--;
		}
		if (at > 0 && tags[at - 1].key_len == kl && !memcmp(tags[at - 1].key, k, kl)) {
			out->tags_dropped++; /* duplicate key: the first one wins */
			used -= kl;
			continue;
		}
		memmove(&tags[at + 1], &tags[at], (ntags - at) * sizeof tags[0]);
		tags[at] = (struct tag){k, colon + 1, kl, (size_t)(t + tlen - colon - 1)};
		ntags++;
	}
	size_t o = 0;
	for (size_t k = 0; k < ntags; k++) {
		size_t need = tags[k].key_len + 1 + tags[k].val_len + (k ? 1 : 0);
		if (o + need > STATSD_MAX_TAG_BYTES)
			return STATSD_BAD_TOO_LONG;
		if (k)
			tagbuf[o++] = ',';
		memcpy(tagbuf + o, tags[k].key, tags[k].key_len);
		o += tags[k].key_len;
		tagbuf[o++] = '=';
		o += copy_utf8(tagbuf + o, tags[k].val, tags[k].val_len);
	}
	tagbuf[o] = 0;
	out->tags = tagbuf;
	out->tags_len = o;
	return STATSD_OK;
}

enum statsd_bad statsd_parse_line(const char *line, size_t len,
				  struct statsd_sample *out, char *tagbuf)
{
	memset(out, 0, sizeof *out);
	out->rate = 1;
	tagbuf[0] = 0;
	out->tags = tagbuf;
	const char *end = line + len;
	const char *colon = memchr(line, ':', len);
	if (!colon || colon == line)
		return STATSD_BAD_SYNTAX;
	size_t name_len = (size_t)(colon - line);
	if (memchr(line, '|', name_len))
		return STATSD_BAD_SYNTAX;
	/* A NUL would cut the name short wherever it is used as a string;
	 * with nothing left after statsd's cleaning there is no Graphite path
	 * to give. */
	unsigned seen = statsd_name_scan(line, name_len);
	if ((seen & STATSD_NAME_NUL) ||
	    !(seen & (STATSD_NAME_KEEP | STATSD_NAME_SPACE | STATSD_NAME_SLASH)))
		return STATSD_BAD_SYNTAX;
	out->name_clean = seen == STATSD_NAME_KEEP;
	if (name_len > STATSD_MAX_NAME)
		return STATSD_BAD_TOO_LONG;
	out->name = line;
	out->name_len = name_len;

	const char *val = colon + 1;
	const char *bar = memchr(val, '|', (size_t)(end - val));
	if (!bar)
		return STATSD_BAD_SYNTAX;
	size_t val_len = (size_t)(bar - val);
	const char *type = bar + 1;
	const char *type_end = memchr(type, '|', (size_t)(end - type));
	if (!type_end)
		type_end = end;
	size_t tl = (size_t)(type_end - type);
	if (tl == 1 && type[0] == 'c')
		out->kind = STATSD_COUNTER;
	else if (tl == 1 && type[0] == 'g')
		out->kind = STATSD_GAUGE;
	else if (tl == 1 && type[0] == 's')
		out->kind = STATSD_SET;
	else if (tl == 2 && type[0] == 'm' && type[1] == 's')
		out->kind = STATSD_TIMER;
	else if (tl == 1 && (type[0] == 'h' || type[0] == 'd'))
		out->kind = STATSD_HISTOGRAM;
	else
		return STATSD_BAD_SYNTAX;

	if (out->kind == STATSD_SET) {
		if (val_len == 0)
			return STATSD_BAD_VALUE;
		out->member = val;
		out->member_len = val_len;
	} else {
		if (statsd_parse_number(val, val_len, &out->value) < 0)
			return STATSD_BAD_VALUE;
		out->delta = out->kind == STATSD_GAUGE && val_len > 0 &&
			     (val[0] == '+' || val[0] == '-');
		/* A counter only goes up (a Prometheus _total that went down
		 * would read as a restart) and a duration is never negative;
		 * statsd_exporter refuses these too. Histograms ('h', 'd')
		 * may observe negative values. */
		if (out->value < 0 &&
		    (out->kind == STATSD_COUNTER || out->kind == STATSD_TIMER))
			return STATSD_BAD_NEGATIVE;
	}

	bool seen_rate = false, seen_tags = false;
	const char *f = type_end;
	while (f < end) {
		f++; /* past '|' */
		const char *fe = memchr(f, '|', (size_t)(end - f));
		if (!fe)
			fe = end;
		size_t fl = (size_t)(fe - f);
		if (fl >= 1 && f[0] == '@') {
			if (seen_rate)
				return STATSD_BAD_RATE;
			seen_rate = true;
			double r;
			if (statsd_parse_number(f + 1, fl - 1, &r) < 0 || !(r > 0) || r > 1)
				return STATSD_BAD_RATE;
			out->rate = r;
		} else if (fl >= 1 && f[0] == '#') {
			if (seen_tags)
				return STATSD_BAD_TAGS;
			seen_tags = true;
			enum statsd_bad b = parse_tags(f + 1, fl - 1, out, tagbuf);
			if (b != STATSD_OK)
				return b;
		} else if (fl == 0) {
			return STATSD_BAD_SYNTAX; /* "||" or a trailing '|' */
		}
		f = fe;
	}
	return STATSD_OK;
}
