/* The supervisor's side of the `kite serve --handoff` hand-off: describe an
 * accepted connection and pass it to a worker. The record is libkite's
 * (src/handoff_wire.h); the worker reads it with kite_handoff_accept(). */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "handoff_send.h"
#include "handoff_wire.h"

void handoff_peer_fill(int conn_fd, const struct sockaddr *addr, socklen_t len,
		       struct kite_peer *peer)
{
	memset(peer, 0, sizeof *peer);
	peer->pid = -1;
	peer->uid = (uid_t)-1;
	peer->gid = (gid_t)-1;
	peer->family = len >= sizeof(sa_family_t) ? addr->sa_family : AF_UNSPEC;
	if (len > KITE_PEER_ADDR_MAX)
		len = KITE_PEER_ADDR_MAX;
	memcpy(peer->addr, addr, len);
	peer->addr_len = len;
	ki_handoff_peer_set_text(peer);
	if (peer->family == AF_UNIX) {
		struct ucred cred;
		socklen_t cl = sizeof cred;
		if (getsockopt(conn_fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0) {
			peer->pid = cred.pid;
			peer->uid = cred.uid;
			peer->gid = cred.gid;
		}
	}
}

int handoff_send(int sock, int conn_fd, const struct kite_peer *peer)
{
	struct handoff_wire w;
	memset(&w, 0, sizeof w);
	w.magic = HANDOFF_MAGIC;
	w.version = HANDOFF_VERSION;
	w.family = peer->family;
	w.pid = peer->pid;
	w.uid = peer->uid;
	w.gid = peer->gid;
	w.addr_len = peer->addr_len <= KITE_PEER_ADDR_MAX ? peer->addr_len : 0;
	memcpy(w.addr, peer->addr, w.addr_len);

	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	memset(&ctl, 0, sizeof ctl);
	struct iovec iov = {.iov_base = &w, .iov_len = sizeof w};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &conn_fd, sizeof(int));
	ssize_t n = sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return n == (ssize_t)sizeof w ? 0 : -EPROTO;
}

