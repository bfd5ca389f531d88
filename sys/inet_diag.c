/* sock_diag for TCP and UDP: one dump request, replies parsed with every
 * length checked against what recv returned (a netlink reply is input like
 * any other). */
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "inet_diag.h"
#include "sock_diag.h"

static void entry_from(const struct inet_diag_msg *m, struct inet_entry *e)
{
	memset(e, 0, sizeof *e);
	e->family = m->idiag_family;
	size_t n = m->idiag_family == AF_INET ? 4 : 16;
	memcpy(e->local, m->id.idiag_src, n);
	memcpy(e->remote, m->id.idiag_dst, n);
	e->local_port = ntohs(m->id.idiag_sport);
	e->remote_port = ntohs(m->id.idiag_dport);
	e->state = m->idiag_state;
	e->uid = m->idiag_uid;
	e->inode = m->idiag_inode;
	e->ifindex = m->id.idiag_if;
	e->v6only = -1;
}

/* The attributes after the message (attrs, len bytes): INET_DIAG_SKV6ONLY,
 * which the kernel adds to every IPv6 socket. Each length is checked; a
 * malformed tail is ignored (the entry itself is whole). */
static void read_attrs(const unsigned char *attrs, size_t len, struct inet_entry *e)
{
	size_t n;
	const unsigned char *v = ki_sock_diag_attr(attrs, len, INET_DIAG_SKV6ONLY, &n);
	if (v && n >= 1 && e->family == AF_INET6)
		e->v6only = v[0] != 0;
}

struct walk {
	int (*cb)(const struct inet_entry *e, void *arg);
	void *arg;
};

static int one_message(const unsigned char *body, size_t blen, void *ctx)
{
	const struct walk *w = ctx;
	struct inet_diag_msg m;
	if (blen < sizeof m)
		return SOCK_DIAG_SKIP;
	memcpy(&m, body, sizeof m);
	if (m.idiag_family != AF_INET && m.idiag_family != AF_INET6)
		return SOCK_DIAG_SKIP;
	struct inet_entry e;
	entry_from(&m, &e);
	size_t at = NLMSG_ALIGN(sizeof m);
	if (at < blen)
		read_attrs(body + at, blen - at, &e);
	int rc = w->cb(&e, w->arg);
	return rc == SOCK_DIAG_SKIP ? 1 : rc; /* (a callback's stop is a stop) */
}

int inet_diag_parse(const void *buf, size_t len,
		    int (*cb)(const struct inet_entry *e, void *arg), void *arg,
		    unsigned *skipped, int *done)
{
	struct walk w = {cb, arg};
	return ki_sock_diag_frame(buf, len, one_message, &w, skipped, done);
}

struct dump {
	int (*cb)(const struct inet_entry *e, void *arg);
	void *arg;
	unsigned *skipped;
};

static int parse_dump(const void *buf, size_t len, void *ctx, int *done)
{
	struct dump *d = ctx;
	return inet_diag_parse(buf, len, d->cb, d->arg, d->skipped, done);
}

int inet_diag_each(int family, int protocol, uint32_t states,
		   int (*cb)(const struct inet_entry *e, void *arg), void *arg,
		   unsigned *skipped)
{
	struct {
		struct nlmsghdr h;
		struct inet_diag_req_v2 r;
	} req;
	memset(&req, 0, sizeof req);
	req.h.nlmsg_len = sizeof req;
	req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.h.nlmsg_seq = 1;
	req.r.sdiag_family = (uint8_t)family;
	req.r.sdiag_protocol = (uint8_t)protocol;
	req.r.idiag_states = states;
	struct dump d = {cb, arg, skipped};
	return ki_sock_diag_dump(&req, sizeof req, parse_dump, &d);
}
