/* Fuzz target: one statsd datagram, as any local process may send it. The
 * parser's contract is checked on each line; the whole packet then goes
 * through aggregation, a flush and both output writers, whose texts must
 * stay lines of printable UTF-8 (a label value with a raw newline, a
 * control byte or a byte that is not UTF-8 would corrupt the exposition). */
#include <stdint.h>
#include <string.h>

#include "statsd/statsd.h"

const char *const fuzz_seeds[] = {
	"api.requests:1|c",
	"a:1|c|@0.1|#env:prod,region:eu-1\nb:2.5|ms\nc:-3|g\nd:+1|g\ne:x|s",
	"h:3|h|#k:v,solo,k:dup\nd:4|d|@0.5",
	"weird name!:1e3|c|#__name__:x,9:y,q:a\"b\\c",
	"m:1|c|T1700000000|c:container|#a:b",
	"x:1|c\r\n\n\n:::|||@@@###\n",
	"t:0.000000000000000000001|ms\nt:12345678901234567890|ms",
	"c:1|c|#city:caf\xc3\xa9,bad:\xff\xc0\xaf\xed\xa0\x80,e:\xf0\x9f\x98\x80\xe2\x82",
	"db.query:5|ms\ndb.query.count:1|g\nab.x:1|c\nab_x:1|c\nab-x:1|c",
	"rt:1|ms|#quantile:a,tag_quantile:b,tag_tag_quantile:c",
	NULL,
};

/* Printable UTF-8 (newlines only where allowed), checked by decoding each
 * code point: no control characters, DEL, overlong forms, surrogates, or
 * code points above U+10FFFF. */
static void check_utf8(const char *text, size_t n, bool newlines)
{
	const unsigned char *s = (const unsigned char *)text;
	for (size_t i = 0; i < n;) {
		unsigned c = s[i];
		if (c < 0x80) {
			if ((c < 0x20 && !(newlines && c == '\n')) || c == 0x7f)
				__builtin_trap();
			i++;
			continue;
		}
		size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
		if (!len || i + len > n)
			__builtin_trap();
		unsigned cp = c & (0x7f >> len);
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				__builtin_trap();
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		static const unsigned min[5] = {0, 0, 0x80, 0x800, 0x10000};
		if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			__builtin_trap();
		i += len;
	}
}

static void check_line(const char *p, size_t n)
{
	char tagbuf[STATSD_MAX_TAG_BYTES + 1];
	struct statsd_sample s;
	if (statsd_parse_line(p, n, &s, tagbuf) != STATSD_OK)
		return;
	if (!s.name_len || s.name_len > STATSD_MAX_NAME || s.name != p)
		__builtin_trap();
	if (!(s.rate > 0 && s.rate <= 1) || s.value != s.value)
		__builtin_trap();
	if (s.tags_len > STATSD_MAX_TAG_BYTES || strlen(s.tags) != s.tags_len)
		__builtin_trap();
	check_utf8(s.tags, s.tags_len, false);
	if (s.kind == STATSD_SET && (s.member < p || s.member + s.member_len > p + n))
		__builtin_trap();
}

static void check_text(const struct statsd_buf *b)
{
	check_utf8(b->p, b->len, true);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		check_line(p, (size_t)((nl ? nl : end) - p));
		p = nl ? nl + 1 : end;
	}
	struct statsd_table *t = statsd_table_new(size);
	if (!t)
		return 0;
	struct statsd_config c;
	statsd_config_defaults(&c);
	c.max_metrics = 64;
	c.max_samples = 8;
	c.max_set_members = 8;
	c.flush_ms = 1000;
	c.expire_ms = c.expire_gauges_ms = 1000; /* idle one interval: gone */
	if (size % 3 == 0) { /* timers as histograms on every third input */
		c.buckets[0] = 0.001;
		c.buckets[1] = 0.1;
		c.n_buckets = 2;
	}
	statsd_table_configure(t, &c);
	statsd_table_add_packet(t, (const char *)data, size);
	statsd_table_flush(t, 1000);
	struct statsd_buf b = {0};
	statsd_prometheus_render(t, &b);
	check_text(&b);
	/* The same page in slices of 1 to 64 bytes' worth of series. */
	struct statsd_buf sliced = {0};
	struct statsd_cursor cur;
	statsd_prometheus_start(t, &cur);
	while (!statsd_prometheus_next(t, &cur, &sliced, 1 + size % 64))
		;
	if (sliced.len != b.len || (b.len && memcmp(sliced.p, b.p, b.len)))
		__builtin_trap();
	statsd_buf_free(&sliced);
	statsd_buf_free(&b);
	struct statsd_graphite_opts o = {.prefix = "stats", .legacy = size % 2};
	statsd_graphite_render(t, &o, 0, &b);
	check_text(&b);
	statsd_buf_free(&b);
	/* A page walked a series at a time across a flush swept in slices
	 * (the packet fed again mid-sweep) and two flushes whose expiry drops
	 * everything, the series under the cursor included: the walk ends and
	 * its text stays valid. */
	statsd_prometheus_start(t, &cur);
	statsd_prometheus_next(t, &cur, &b, 1);
	statsd_table_flush_begin(t, 1000);
	statsd_table_flush_step(t, 1 + size % 5);
	statsd_table_add_packet(t, (const char *)data, size);
	while (!statsd_table_flush_step(t, 2))
		statsd_prometheus_next(t, &cur, &b, 1);
	statsd_table_flush(t, 1000);
	statsd_table_flush(t, 1000);
	if (statsd_table_series(t) != 0)
		__builtin_trap();
	while (!statsd_prometheus_next(t, &cur, &b, 64))
		;
	check_text(&b);
	statsd_buf_free(&b);
	statsd_table_free(t);
	return 0;
}
