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
	size_t off = 0;
	while (len - off >= sizeof(struct nlattr)) {
		struct nlattr a;
		memcpy(&a, attrs + off, sizeof a);
		if (a.nla_len < sizeof a || a.nla_len > len - off)
			return;
		if (a.nla_type == INET_DIAG_SKV6ONLY && a.nla_len >= sizeof a + 1 &&
		    e->family == AF_INET6)
			e->v6only = attrs[off + sizeof a] != 0;
		size_t step = NLA_ALIGN(a.nla_len);
		if (step > len - off)
			return;
		off += step;
	}
}

int inet_diag_parse(const void *buf, size_t len,
		    int (*cb)(const struct inet_entry *e, void *arg), void *arg,
		    unsigned *skipped, int *done)
{
	*done = 0;
	const unsigned char *p = buf;
	size_t off = 0;
	while (len - off >= sizeof(struct nlmsghdr)) {
		struct nlmsghdr h;
		memcpy(&h, p + off, sizeof h); /* buf need not be aligned */
		if (h.nlmsg_len < sizeof h || h.nlmsg_len > len - off)
			return -EBADMSG; /* the rest cannot be framed */
		const unsigned char *body = p + off + sizeof h;
		size_t blen = h.nlmsg_len - sizeof h;
		if (h.nlmsg_type == NLMSG_DONE) {
			*done = 1;
			return 0;
		}
		if (h.nlmsg_type == NLMSG_ERROR) {
			struct nlmsgerr err;
			if (blen < sizeof err.error)
				return -EBADMSG;
			memcpy(&err.error, body, sizeof err.error);
			return err.error < 0 ? err.error : -EBADMSG;
		}
		struct inet_diag_msg m;
		if (h.nlmsg_type != SOCK_DIAG_BY_FAMILY || blen < sizeof m) {
			if (skipped)
				(*skipped)++;
		} else {
			memcpy(&m, body, sizeof m);
			if (m.idiag_family != AF_INET && m.idiag_family != AF_INET6) {
				if (skipped)
					(*skipped)++;
			} else {
				struct inet_entry e;
				entry_from(&m, &e);
				size_t at = NLMSG_ALIGN(sizeof m);
				if (at < blen)
					read_attrs(body + at, blen - at, &e);
				int rc = cb(&e, arg);
				if (rc)
					return rc;
			}
		}
		/* Next message at the aligned length, never past len. */
		size_t step = NLMSG_ALIGN(h.nlmsg_len);
		if (step > len - off)
			break;
		off += step;
	}
	return 0;
}

int inet_diag_each(int family, int protocol, uint32_t states,
		   int (*cb)(const struct inet_entry *e, void *arg), void *arg,
		   unsigned *skipped)
{
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return -errno;
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
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	int rc = 0;
	if (sendto(fd, &req, sizeof req, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	size_t cap = 1 << 16;
	void *buf = malloc(cap);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		struct sockaddr_nl from;
		socklen_t flen = sizeof from;
		ssize_t n = recvfrom(fd, buf, cap, MSG_TRUNC, (struct sockaddr *)&from, &flen);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		if (flen < sizeof from || from.nl_pid != 0)
			continue; /* only the kernel answers a dump */
		if ((size_t)n > cap) {
			rc = -EMSGSIZE; /* truncated: the dump cannot be trusted */
			break;
		}
		if (n == 0) {
			rc = -EBADMSG; /* the kernel always ends with NLMSG_DONE */
			break;
		}
		int done = 0;
		rc = inet_diag_parse(buf, (size_t)n, cb, arg, skipped, &done);
		if (rc != 0 || done)
			break;
	}
	free(buf);
	close(fd);
	return rc;
}
