/* Internal (not API): one sock_diag netlink dump (NETLINK_SOCK_DIAG), for
 * the Unix listeners kite ls finds handles by (unix_diag.c) and the TCP and
 * UDP sockets of the ops tools (sys/inet_diag.c). */
#ifndef KITE_SOCK_DIAG_H
#define KITE_SOCK_DIAG_H

#include <stddef.h>

/* What a message handler of ki_sock_diag_frame returns for a message it
 * cannot read (counted in *skipped). */
#define SOCK_DIAG_SKIP (-0x7fff)

/* Frame one buffer of replies (len bytes, as recv returned it): each
 * SOCK_DIAG_BY_FAMILY message's body goes to msg (0 taken, SOCK_DIAG_SKIP
 * malformed, anything else stops the walk and is returned); other types
 * are counted in *skipped (if not NULL). *done is set at NLMSG_DONE. 0, a
 * negative errno (an NLMSG_ERROR reply; -EBADMSG when the buffer cannot be
 * framed), or msg's stopping return. Never reads past len. */
int ki_sock_diag_frame(const void *buf, size_t len,
		       int (*msg)(const unsigned char *body, size_t blen, void *ctx),
		       void *ctx, unsigned *skipped, int *done);

/* The payload of the first attribute of type in the attributes after a
 * message (attrs, len bytes), its length in *plen; NULL if there is none
 * (a malformed tail ends the search). Every length is checked. */
const unsigned char *ki_sock_diag_attr(const unsigned char *attrs, size_t len,
				       unsigned type, size_t *plen);

/* Send the request (a netlink header and its body, req_len bytes) and hand
 * each buffer of replies, as recv returned it, to parse, until it sets
 * *done or returns non-zero. Only the kernel's replies are taken; a
 * truncated or empty one ends the dump with -EBADMSG. 0, parse's return,
 * or -errno. */
int ki_sock_diag_dump(const void *req, size_t req_len,
		      int (*parse)(const void *buf, size_t len, void *ctx, int *done),
		      void *ctx);

#endif
