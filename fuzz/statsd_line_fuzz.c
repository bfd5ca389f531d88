/* Fuzz target: one statsd datagram, as any local process may send it. The
 * parser's contract is checked on each line; the whole packet then goes
 * through aggregation, a flush and both output writers, whose texts must
 * stay printable ASCII lines (a label value with a raw newline or byte
 * would corrupt the exposition). */
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
	NULL,
};

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
	for (size_t i = 0; i < s.tags_len; i++)
		if ((unsigned char)s.tags[i] < 0x20 || (unsigned char)s.tags[i] >= 0x7f)
			__builtin_trap();
	if (s.kind == STATSD_SET && (s.member < p || s.member + s.member_len > p + n))
		__builtin_trap();
}

static void check_text(const struct statsd_buf *b)
{
	for (size_t i = 0; i < b->len; i++) {
		unsigned char c = (unsigned char)b->p[i];
		if (c != '\n' && (c < 0x20 || c >= 0x7f))
			__builtin_trap();
	}
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
	statsd_table_configure(t, &c);
	statsd_table_add_packet(t, (const char *)data, size);
	statsd_table_flush(t, 1000);
	struct statsd_buf b = {0};
	statsd_prometheus_render(t, &b);
	check_text(&b);
	statsd_buf_free(&b);
	statsd_graphite_render(t, "stats", 0, &b);
	check_text(&b);
	statsd_buf_free(&b);
	statsd_table_free(t);
	return 0;
}
