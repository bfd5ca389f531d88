/* /proc text parsers with an explicit end pointer: a short, long or
 * garbled file yields -1 or fewer fields, never a read past the buffer. */
#include <string.h>

#include "procstats.h"

struct cursor {
	const char *p, *end;
};

static void skip_spaces(struct cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
		c->p++;
}

static int read_u64(struct cursor *c, uint64_t *out)
{
	skip_spaces(c);
	uint64_t v = 0;
	const char *start = c->p;
	while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
		unsigned d = (unsigned)(*c->p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
		c->p++;
	}
	if (c->p == start)
		return -1;
	*out = v;
	return 0;
}

/* "12.34": loadavg figures; at most 2 decimals matter. */
static int read_decimal(struct cursor *c, double *out)
{
	uint64_t whole, frac = 0;
	if (read_u64(c, &whole) || whole > 1000000000)
		return -1;
	double scale = 1;
	if (c->p < c->end && *c->p == '.') {
		c->p++;
		while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
			if (scale < 1e9) {
				frac = frac * 10 + (uint64_t)(*c->p - '0');
				scale *= 10;
			}
			c->p++;
		}
	}
	*out = (double)whole + (double)frac / scale;
	return 0;
}

/* Advance to the start of the next line; 0 if there is none. */
static int next_line(struct cursor *c)
{
	const char *nl = memchr(c->p, '\n', (size_t)(c->end - c->p));
	if (!nl)
		return 0;
	c->p = nl + 1;
	return c->p < c->end;
}

static int starts_with(const struct cursor *c, const char *word)
{
	size_t n = strlen(word);
	return (size_t)(c->end - c->p) >= n && !memcmp(c->p, word, n);
}

int parse_proc_stat(const char *buf, size_t len, struct cpu_times *out)
{
	struct cursor c = {buf, buf + len};
	if (!len)
		return -1;
	do {
		if (!starts_with(&c, "cpu "))
			continue;
		c.p += 4;
		uint64_t *f[] = {&out->user, &out->nice, &out->system, &out->idle,
				 &out->iowait, &out->irq, &out->softirq, &out->steal};
		memset(out, 0, sizeof *out);
		for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
			if (read_u64(&c, f[i]))
				return i >= 4 ? 0 : -1; /* old kernels: 4 fields */
		return 0;
	} while (next_line(&c));
	return -1;
}

int parse_meminfo(const char *buf, size_t len, struct mem_info *out)
{
	struct cursor c = {buf, buf + len};
	int seen = 0;
	memset(out, 0, sizeof *out);
	if (!len)
		return -1;
	do {
		uint64_t *field = NULL;
		size_t skip = 0;
		if (starts_with(&c, "MemTotal:"))
			field = &out->total_kib, skip = 9;
		else if (starts_with(&c, "MemAvailable:"))
			field = &out->available_kib, skip = 13;
		else if (starts_with(&c, "MemFree:"))
			field = &out->free_kib, skip = 8;
		if (!field)
			continue;
		c.p += skip;
		if (read_u64(&c, field))
			return -1;
		seen |= field == &out->total_kib;
	} while (next_line(&c));
	return seen ? 0 : -1;
}

int parse_net_dev(const char *buf, size_t len, struct netdev *out, int max)
{
	struct cursor c = {buf, buf + len};
	int n = 0;
	if (!len)
		return -1;
	do {
		struct cursor line = c;
		const char *eol = memchr(c.p, '\n', (size_t)(c.end - c.p));
		line.end = eol ? eol : c.end;
		const char *colon = memchr(line.p, ':', (size_t)(line.end - line.p));
		if (!colon || n >= max)
			continue; /* the two header lines have no colon */
		skip_spaces(&line);
		size_t name_len = (size_t)(colon - line.p);
		if (name_len == 0 || name_len > NETDEV_NAME_MAX)
			continue;
		struct netdev *d = &out[n];
		memcpy(d->name, line.p, name_len);
		d->name[name_len] = 0;
		line.p = colon + 1;
		uint64_t v[10];
		int ok = 1;
		for (int i = 0; i < 10 && ok; i++)
			ok = !read_u64(&line, &v[i]);
		if (!ok)
			return -1;
		d->rx_bytes = v[0];
		d->rx_packets = v[1];
		d->tx_bytes = v[8];
		d->tx_packets = v[9];
		n++;
	} while (next_line(&c));
	return n;
}

int parse_loadavg(const char *buf, size_t len, struct load_avg *out)
{
	struct cursor c = {buf, buf + len};
	if (read_decimal(&c, &out->one) || read_decimal(&c, &out->five) ||
	    read_decimal(&c, &out->fifteen))
		return -1;
	return 0;
}
