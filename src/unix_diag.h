/* Internal (not API): listening Unix sockets through sock_diag netlink
 * (NETLINK_SOCK_DIAG, unix_diag). The kernel filters by state, so finding
 * the handles of a bus costs the same whatever else the machine holds:
 * /proc/net/unix lists every Unix socket, and a bus of 1,000 handles alone
 * has about a million (each link is a socket at each end). */
#ifndef KITE_UNIX_DIAG_H
#define KITE_UNIX_DIAG_H

#include <stddef.h>

#include "proc_net_unix.h" /* struct unix_entry */

/* Parse one buffer of netlink replies (len bytes, as recv returned it):
 * call cb for each well-formed unix_diag message, as a struct unix_entry
 * (its name from UNIX_DIAG_NAME: abstract names start with a NUL, shown
 * as abstract without it; NULs inside it become '@' as /proc shows them).
 * Malformed messages are counted in *skipped if not NULL. *done is set at
 * NLMSG_DONE. 0, a negative errno (an NLMSG_ERROR reply; -EBADMSG when
 * the buffer cannot be framed), or cb's non-zero return. Never reads past
 * len. */
int ki_unix_diag_parse(const void *buf, size_t len,
		       int (*cb)(const struct unix_entry *e, void *arg), void *arg,
		       unsigned *skipped, int *done);

/* Every listening Unix socket of this network namespace through cb: 0,
 * cb's non-zero return, or -errno (no unix_diag in this kernel: the caller
 * may read /proc/net/unix instead). */
int ki_unix_listeners_each(int (*cb)(const struct unix_entry *e, void *arg), void *arg);

#endif
