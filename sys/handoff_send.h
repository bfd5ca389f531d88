/* Internal (not API): the supervisor side of the `kite serve --handoff`
 * wire format. The worker side is public: kite_handoff_accept() in kite/handoff.h. */
#ifndef KITE_HANDOFF_SEND_H
#define KITE_HANDOFF_SEND_H

#include <sys/socket.h>

#include "kite/handoff.h"

/* Fill *peer for a connection just accepted on conn_fd, whose address
 * accept() returned in addr/len. Unix peers also get SO_PEERCRED. */
void handoff_peer_fill(int conn_fd, const struct sockaddr *addr, socklen_t len,
		       struct kite_peer *peer);

/* Send conn_fd and *peer as one message on the hand-off socket sock
 * (SOCK_SEQPACKET). Never blocks: 0, -EAGAIN (the worker's queue is full),
 * or another -errno (-EPIPE: the worker is gone). */
int handoff_send(int sock, int conn_fd, const struct kite_peer *peer);

#endif
