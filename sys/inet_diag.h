/* Internal (not API): TCP and UDP sockets through sock_diag netlink
 * (NETLINK_SOCK_DIAG, inet_diag), for the ops tools. Unlike /proc/net/tcp
 * the kernel filters by state, so a host with 70,000 TIME_WAIT sockets costs
 * nothing when only listeners are wanted. */
#ifndef KITE_INET_DIAG_H
#define KITE_INET_DIAG_H

#include <stddef.h>
#include <stdint.h>

#include "proc_net_inet.h" /* struct inet_entry */

/* Parse one buffer of netlink replies (as recv returned it, len bytes):
 * call cb for each well-formed inet_diag message; malformed ones are
 * counted in *skipped if not NULL. *done is set once NLMSG_DONE is seen.
 * Returns 0, a negative errno (from an NLMSG_ERROR reply, or -EBADMSG when
 * the buffer cannot be framed), or cb's non-zero return. Never reads past
 * len. */
int inet_diag_parse(const void *buf, size_t len,
		    int (*cb)(const struct inet_entry *e, void *arg), void *arg,
		    unsigned *skipped, int *done);

/* Dump the sockets of family (AF_INET, AF_INET6) and protocol
 * (IPPROTO_TCP, IPPROTO_UDP) whose state bit is in states (1 << TCP_LISTEN,
 * ...) through cb. 0, cb's non-zero return, or -errno (e.g. the kernel has
 * no inet_diag: the caller may fall back to /proc/net). */
int inet_diag_each(int family, int protocol, uint32_t states,
		   int (*cb)(const struct inet_entry *e, void *arg), void *arg,
		   unsigned *skipped);

#endif
