/* Listening Unix sockets from the kernel's sock_diag (see unix_diag.h).
 * Every length in a reply is checked against what recv returned: a netlink
 * reply is input like any other. */
#include <errno.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "sock_diag.h"
#include "unix_diag.h"

#define TCP_LISTEN_STATE 10 /* a listening Unix socket's udiag_state */

/* The name attribute, if any, into e. */
static void read_name(const unsigned char *attrs, size_t len, struct unix_entry *e)
{
	size_t n;
	const unsigned char *name = ki_sock_diag_attr(attrs, len, UNIX_DIAG_NAME, &n);
	if (!name || !n)
		return;
	e->abstract = name[0] == 0;
	if (e->abstract)
		name++, n--;
	else
		n = strnlen((const char *)name, n); /* a path ends at its NUL */
	if (n > UNIX_ENTRY_PATH_MAX)
		n = UNIX_ENTRY_PATH_MAX;
	for (size_t i = 0; i < n; i++)
		e->path[i] = name[i] ? (char)name[i] : '@';
	e->path[n] = 0;
	e->path_len = n;
}

struct walk {
	int (*cb)(const struct unix_entry *e, void *arg);
	void *arg;
};

static int one_message(const unsigned char *body, size_t blen, void *ctx)
{
	const struct walk *w = ctx;
	struct unix_diag_msg m;
	if (blen < sizeof m)
		return SOCK_DIAG_SKIP;
	memcpy(&m, body, sizeof m);
	if (m.udiag_family != AF_UNIX)
		return SOCK_DIAG_SKIP;
	struct unix_entry e;
	memset(&e, 0, sizeof e);
	e.inode = m.udiag_ino;
	e.type = m.udiag_type;
	e.state = m.udiag_state;
	if (m.udiag_state == TCP_LISTEN_STATE)
		e.flags = UNIX_FLAG_LISTENING;
	size_t at = NLMSG_ALIGN(sizeof m);
	if (at < blen)
		read_name(body + at, blen - at, &e);
	int rc = w->cb(&e, w->arg);
	return rc == SOCK_DIAG_SKIP ? 1 : rc; /* (a callback's stop is a stop) */
}

int ki_unix_diag_parse(const void *buf, size_t len,
		       int (*cb)(const struct unix_entry *e, void *arg), void *arg,
		       unsigned *skipped, int *done)
{
	struct walk w = {cb, arg};
	return ki_sock_diag_frame(buf, len, one_message, &w, skipped, done);
}

static int parse_listeners(const void *buf, size_t len, void *ctx, int *done)
{
	const struct walk *w = ctx;
	return ki_unix_diag_parse(buf, len, w->cb, w->arg, NULL, done);
}

int ki_unix_listeners_each(int (*cb)(const struct unix_entry *e, void *arg), void *arg)
{
	struct {
		struct nlmsghdr h;
		struct unix_diag_req r;
	} req;
	memset(&req, 0, sizeof req);
	req.h.nlmsg_len = sizeof req;
	req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.h.nlmsg_seq = 1;
	req.r.sdiag_family = AF_UNIX;
	req.r.udiag_states = 1u << TCP_LISTEN_STATE;
	req.r.udiag_show = UDIAG_SHOW_NAME;
	struct walk w = {cb, arg};
	return ki_sock_diag_dump(&req, sizeof req, parse_listeners, &w);
}
