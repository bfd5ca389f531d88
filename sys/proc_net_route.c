/* /proc/net/route: "Iface Destination Gateway Flags RefCnt Use Metric Mask
 * MTU Window IRTT", tab-separated; addresses are the __be32 printed in host
 * order as %08X (so reading them back into a host word restores the bytes). */
#include <string.h>

#include "proc_lines.h"
#include "proc_net_route.h"

static int is_space(char c)
{
	return c == ' ' || c == '\t';
}

static int token(const char **p, const char *end, const char **tok, size_t *len)
{
	while (*p < end && is_space(**p))
		(*p)++;
	*tok = *p;
	while (*p < end && !is_space(**p))
		(*p)++;
	*len = (size_t)(*p - *tok);
	return *len ? 0 : -1;
}

static int hex(const char *s, size_t len, size_t maxdigits, unsigned long *out)
{
	unsigned long v = 0;
	if (len == 0 || len > maxdigits)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		int d = c >= '0' && c <= '9' ? c - '0'
			: c >= 'a' && c <= 'f' ? c - 'a' + 10
			: c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d < 0)
			return -1;
		v = v * 16 + (unsigned long)d;
	}
	*out = v;
	return 0;
}

static int dec(const char *s, size_t len, unsigned long *out)
{
	unsigned long v = 0;
	if (len == 0 || len > 10)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	*out = v;
	return 0;
}

static int word(const char *s, size_t len, uint32_t *out)
{
	unsigned long v;
	if (len != 8 || hex(s, len, 8, &v))
		return -1;
	uint32_t w = (uint32_t)v;
	memcpy(out, &w, 4); /* host order, as printed: the bytes come back */
	return 0;
}

int proc_net_route_parse_line(const char *line, size_t len, struct route_entry *out)
{
	const char *p = line, *end = line + len, *t;
	size_t n;
	unsigned long v;
	if (token(&p, end, &t, &n) || n > ROUTE_IFACE_MAX)
		return -1;
	for (size_t i = 0; i < n; i++) /* what the kernel allows in a name */
		if ((unsigned char)t[i] <= ' ' || t[i] == 0x7f || t[i] == '/' ||
		    t[i] == ':')
			return -1;
	memcpy(out->iface, t, n);
	out->iface[n] = 0;
	if (token(&p, end, &t, &n) || word(t, n, &out->dest) ||
	    token(&p, end, &t, &n) || word(t, n, &out->gateway) ||
	    token(&p, end, &t, &n) || hex(t, n, 4, &v))
		return -1;
	out->flags = (unsigned)v;
	if (token(&p, end, &t, &n) || dec(t, n, &v) ||   /* RefCnt */
	    token(&p, end, &t, &n) || dec(t, n, &v) ||   /* Use */
	    token(&p, end, &t, &n) || dec(t, n, &out->metric) ||
	    token(&p, end, &t, &n) || word(t, n, &out->mask))
		return -1;
	return 0;
}

struct lookup {
	uint32_t addr;
	int found;
	struct route_entry best;
	unsigned bad;
	int first;
};

static int prefix_len(uint32_t mask_be)
{
	const uint8_t *b = (const uint8_t *)&mask_be;
	int n = 0;
	for (int i = 0; i < 4; i++)
		n += __builtin_popcount(b[i]);
	return n;
}

static int lookup_line(const char *line, size_t len, void *arg)
{
	struct lookup *l = arg;
	struct route_entry e;
	if (l->first) {
		l->first = 0;
		return 0;
	}
	if (proc_net_route_parse_line(line, len, &e)) {
		l->bad++;
		return 0;
	}
	if (!(e.flags & 0x1u) || (l->addr & e.mask) != e.dest)
		return 0;
	if (!l->found || prefix_len(e.mask) > prefix_len(l->best.mask) ||
	    (prefix_len(e.mask) == prefix_len(l->best.mask) &&
	     e.metric < l->best.metric)) {
		l->best = e;
		l->found = 1;
	}
	return 0;
}

int proc_net_route_lookup(uint32_t addr, struct route_entry *out, unsigned *skipped)
{
	struct lookup l = {.addr = addr, .first = 1};
	int rc = ki_proc_lines_each("/proc/net/route", lookup_line, &l, NULL);
	if (skipped)
		*skipped = l.bad;
	if (rc < 0)
		return rc;
	if (l.found)
		*out = l.best;
	return l.found;
}
