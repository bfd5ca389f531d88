/* kite/handoff.h — the worker's side of `kite serve --handoff`, part of
 * libkite (see kite_handoff_accept(3) and kite-serve(1)). A header of its
 * own because it serves a different program from kite.h's: a server that
 * `kite serve` supervises, which needs no bus.
 *
 * With `kite serve --handoff`, kite accepts each connection itself and
 * passes the accepted socket to one of its workers over a Unix socket
 * (SCM_RIGHTS). A worker finds that socket with kite_handoff_fd() and takes
 * connections with kite_handoff_accept(). When kite stops a worker it first
 * closes its end of the hand-off socket, then sends SIGTERM: a worker that
 * keeps calling kite_handoff_accept() until -EPIPE serves every connection
 * it was given. */

#ifndef KITE_HANDOFF_H
#define KITE_HANDOFF_H

#include <stdint.h>
#include <sys/types.h>

#include "../kite.h" /* KITE_API, kite_strerror() */

#ifdef __cplusplus
extern "C" {
#endif

/* The environment variable that names the worker's hand-off descriptor. */
#define KITE_HANDOFF_ENV "KITE_HANDOFF_FD"

/* Longest peer address kept (enough for any sockaddr_in6 or sockaddr_un). */
#define KITE_PEER_ADDR_MAX 128

/* Who is on the other end of a handed-off connection. */
struct kite_peer {
	int family;         /* AF_INET, AF_INET6 or AF_UNIX */
	pid_t pid;          /* AF_UNIX: the peer's pid, uid and gid as the */
	uid_t uid;          /* kernel reported them (SO_PEERCRED) when kite */
	gid_t gid;          /* accepted; otherwise -1 */
	uint16_t port;      /* AF_INET/AF_INET6: the peer's port, else 0 */
	char host[64];      /* AF_INET/AF_INET6: numeric address, else "" */
	uint32_t addr_len;  /* the peer's sockaddr as accept() gave it */
	unsigned char addr[KITE_PEER_ADDR_MAX];
};

/* The hand-off socket of this worker, from $KITE_HANDOFF_FD: a descriptor
 * (>= 0), -ENOENT if the variable is absent, -EBADF if it does not name an
 * open Unix socket. */
KITE_API int kite_handoff_fd(void);

/* Wait up to timeout_ms (0: do not wait; -1: forever) for the next
 * connection and return its descriptor (blocking, close-on-exec; the caller
 * closes it). peer (may be NULL) receives who connected. Errors: -EAGAIN
 * (timeout 0, nothing queued), -ETIMEDOUT, -EINTR, -EPIPE (kite closed the
 * hand-off socket: no more connections will come), -EPROTO (a malformed
 * hand-off, discarded), other -errno. */
KITE_API int kite_handoff_accept(int handoff_fd, struct kite_peer *peer, int timeout_ms);

#ifdef __cplusplus
}
#endif

#endif /* KITE_HANDOFF_H */
