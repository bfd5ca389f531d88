/* /proc/net/{tcp,tcp6,udp,udp6}: "sl local_address rem_address st tx_queue
 * rx_queue tr tm->when retrnsmt uid timeout inode ...". Addresses are the
 * kernel's 32-bit words printed in host byte order (%08X each), a colon, and
 * the port in hex. Everything after the inode is ignored. */
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "proc_lines.h"
#include "proc_net_inet.h"
#include "hex_digit.h"

struct cursor {
	const char *p, *end;
};

/* The next space-delimited token; 0 if there is one. */
static int token(struct cursor *c, const char **tok, size_t *len)
{
	while (c->p < c->end && *c->p == ' ')
		c->p++;
	const char *s = c->p;
	while (c->p < c->end && *c->p != ' ')
		c->p++;
	*tok = s;
	*len = (size_t)(c->p - s);
	return *len ? 0 : -1;
}

/* A whole number of len digits in base 10 or 16 that fits in max. */
static int number(const char *s, size_t len, int base, unsigned long max,
		  unsigned long *out)
{
	unsigned long v = 0;
	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int d = ki_hex_digit(s[i]);
		if (d < 0 || d >= base)
			return -1;
		if (v > (max - (unsigned long)d) / (unsigned long)base)
			return -1;
		v = v * (unsigned long)base + (unsigned long)d;
	}
	*out = v;
	return 0;
}

/* "0100007F:1F90" (8 or 32 address digits); returns the family or -1. */
static int address(const char *s, size_t len, uint8_t addr[16], uint16_t *port)
{
	const char *colon = memchr(s, ':', len);
	if (!colon)
		return -1;
	size_t alen = (size_t)(colon - s), plen = len - alen - 1;
	unsigned long port_v;
	if ((alen != 8 && alen != 32) || plen != 4 ||
	    number(colon + 1, plen, 16, 0xffff, &port_v))
		return -1;
	memset(addr, 0, 16);
	for (size_t w = 0; w < alen / 8; w++) {
		unsigned long v;
		if (number(s + w * 8, 8, 16, 0xffffffffu, &v))
			return -1;
		uint32_t word = (uint32_t)v; /* host order, as the kernel printed */
		memcpy(addr + w * 4, &word, 4);
	}
	*port = (uint16_t)port_v;
	return alen == 8 ? AF_INET : AF_INET6;
}

/* "hex:hex" pairs such as tx_queue:rx_queue; only their shape is checked. */
static int pair(const char *s, size_t len)
{
	const char *colon = memchr(s, ':', len);
	unsigned long a, b;
	if (!colon)
		return -1;
	return number(s, (size_t)(colon - s), 16, ~0ul, &a) ||
	       number(colon + 1, len - (size_t)(colon - s) - 1, 16, ~0ul, &b);
}

int proc_net_inet_parse_line(const char *line, size_t len, struct inet_entry *out)
{
	struct cursor c = {line, line + len};
	out->ifindex = 0;
	out->v6only = -1;
	const char *t;
	size_t n;
	unsigned long v;
	/* "12:" the slot number */
	if (token(&c, &t, &n) || n < 2 || t[n - 1] != ':' ||
	    number(t, n - 1, 10, ~0ul, &v))
		return -1;
	if (token(&c, &t, &n))
		return -1;
	int fam = address(t, n, out->local, &out->local_port);
	if (fam < 0 || token(&c, &t, &n) ||
	    address(t, n, out->remote, &out->remote_port) != fam)
		return -1;
	out->family = fam;
	if (token(&c, &t, &n) || n != 2 || number(t, n, 16, 0xff, &v))
		return -1;
	out->state = (unsigned)v;
	if (token(&c, &t, &n) || pair(t, n) ||    /* tx_queue:rx_queue */
	    token(&c, &t, &n) || pair(t, n) ||    /* tr:tm->when */
	    token(&c, &t, &n) || number(t, n, 16, ~0ul, &v)) /* retrnsmt */
		return -1;
	if (token(&c, &t, &n) || number(t, n, 10, 0xffffffffu, &out->uid))
		return -1;
	if (token(&c, &t, &n) || number(t, n, 10, ~0ul, &v)) /* timeout */
		return -1;
	if (token(&c, &t, &n) || number(t, n, 10, ~0ul, &out->inode))
		return -1;
	return 0;
}

struct each_state {
	int (*cb)(const struct inet_entry *e, void *arg);
	void *arg;
	unsigned bad;
	int first;
};

static int each_line(const char *line, size_t len, void *arg)
{
	struct each_state *st = arg;
	struct inet_entry e;
	if (st->first) { /* the header */
		st->first = 0;
		return 0;
	}
	if (proc_net_inet_parse_line(line, len, &e)) {
		st->bad++;
		return 0;
	}
	return st->cb(&e, st->arg);
}

int proc_net_inet_each(const char *path,
		       int (*cb)(const struct inet_entry *e, void *arg),
		       void *arg, unsigned *skipped)
{
	struct each_state st = {cb, arg, 0, 1};
	unsigned toolong = 0;
	int rc = ki_proc_lines_each(path, each_line, &st, &toolong);
	if (skipped)
		*skipped = st.bad + toolong;
	return rc;
}
