/* Connection hand-off between `kite serve --handoff` and its workers: one
 * SOCK_SEQPACKET message per connection, carrying the accepted socket as
 * SCM_RIGHTS and a fixed-size record of who the peer is (handoff_wire.h).
 * This is the worker's side; the worker checks every field before it trusts
 * the record. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "handoff_wire.h"

/* Numeric host and port of an IP peer, from its sockaddr bytes. */
void ki_handoff_peer_set_text(struct kite_peer *peer)
{
	if (peer->family == AF_INET && peer->addr_len >= sizeof(struct sockaddr_in)) {
		struct sockaddr_in in;
		memcpy(&in, peer->addr, sizeof in);
		inet_ntop(AF_INET, &in.sin_addr, peer->host, sizeof peer->host);
		peer->port = ntohs(in.sin_port);
	} else if (peer->family == AF_INET6 &&
		   peer->addr_len >= sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 in6;
		memcpy(&in6, peer->addr, sizeof in6);
		inet_ntop(AF_INET6, &in6.sin6_addr, peer->host, sizeof peer->host);
		peer->port = ntohs(in6.sin6_port);
	}
}

int kite_handoff_fd(void)
{
	const char *s = getenv(KITE_HANDOFF_ENV);
	if (!s || !*s)
		return -ENOENT;
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v < 0 || v > INT32_MAX)
		return -EBADF;
	int type;
	socklen_t tl = sizeof type;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	if (getsockopt((int)v, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 ||
	    getsockname((int)v, (struct sockaddr *)&ss, &sl) < 0 ||
	    ss.ss_family != AF_UNIX)
		return -EBADF;
	return (int)v;
}

/* Close every descriptor carried by a message we refuse. */
static void close_passed(struct msghdr *msg)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0))
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
			close(fd);
		}
	}
}

/* The one descriptor of a well-formed message, or -1. */
static int single_fd(struct msghdr *msg)
{
	int fd = -1, count = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			return -1;
		if (c->cmsg_len != CMSG_LEN(sizeof(int)))
			return -1;
		memcpy(&fd, CMSG_DATA(c), sizeof fd);
		count++;
	}
	return count == 1 ? fd : -1;
}

int kite_handoff_accept(int handoff_fd, struct kite_peer *peer, int timeout_ms)
{
	struct handoff_wire w;
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = &w, .iov_len = sizeof w};
	struct msghdr msg;
	ssize_t n;
	/* Try first, wait only if nothing is queued: a busy worker pays one
	 * system call per connection. */
	for (;;) {
		memset(&msg, 0, sizeof msg);
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = ctl.buf;
		msg.msg_controllen = sizeof ctl.buf;
		n = recvmsg(handoff_fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n >= 0)
			break;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		if (timeout_ms == 0)
			return -EAGAIN;
		struct pollfd p = {.fd = handoff_fd, .events = POLLIN};
		int r = poll(&p, 1, timeout_ms < 0 ? -1 : timeout_ms);
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		timeout_ms = 0; /* readable now: one more try, no second wait */
	}
	if (n == 0 && msg.msg_controllen == 0)
		return -EPIPE;
	int fd = single_fd(&msg);
	if (fd < 0 || n != (ssize_t)sizeof w || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
	    w.magic != HANDOFF_MAGIC || w.version != HANDOFF_VERSION ||
	    w.addr_len > KITE_PEER_ADDR_MAX) {
		close_passed(&msg);
		return -EPROTO;
	}
	if (peer) {
		memset(peer, 0, sizeof *peer);
		peer->family = w.family;
		peer->pid = w.pid;
		peer->uid = w.uid;
		peer->gid = w.gid;
		peer->addr_len = w.addr_len;
		memcpy(peer->addr, w.addr, w.addr_len);
		/* Recompute the text from the bytes instead of trusting any. */
		ki_handoff_peer_set_text(peer);
	}
	return fd;
}
