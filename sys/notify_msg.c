/* sd_notify datagram parser for `kite serve` (see notify_msg.h). */
#include <string.h>

#include "notify_msg.h"

static int key_valid(const char *k, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = k[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
			return 0;
	}
	return 1;
}

static int is(const char *key, size_t klen, const char *want)
{
	return klen == strlen(want) && memcmp(key, want, klen) == 0;
}

static void parse_line(const char *line, size_t len, struct notify_msg *out)
{
	const char *eq = memchr(line, '=', len);
	if (!eq || !key_valid(line, (size_t)(eq - line))) {
		out->malformed++;
		return;
	}
	size_t klen = (size_t)(eq - line);
	const char *val = eq + 1;
	size_t vlen = len - klen - 1;
	int one = vlen == 1 && val[0] == '1';
	if (is(line, klen, "READY")) {
		out->ready |= one;
	} else if (is(line, klen, "STOPPING")) {
		out->stopping |= one;
	} else if (is(line, klen, "RELOADING")) {
		out->reloading |= one;
	} else if (is(line, klen, "STATUS")) {
		size_t n = vlen < NOTIFY_STATUS_MAX ? vlen : NOTIFY_STATUS_MAX;
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)val[i];
			out->status[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
		}
		out->status[n] = 0;
		out->has_status = 1;
	} else {
		out->ignored++;
	}
}

int notify_msg_parse(const char *buf, size_t len, struct notify_msg *out)
{
	memset(out, 0, sizeof *out);
	if (!buf || len == 0 || len > NOTIFY_MSG_MAX || memchr(buf, 0, len))
		return -1;
	size_t pos = 0;
	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - buf) : len;
		if (end > pos)
			parse_line(buf + pos, end - pos, out);
		pos = end + 1;
	}
	return 0;
}
