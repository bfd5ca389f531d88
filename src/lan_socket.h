/* The LAN's sockets: the interface (by name or "auto"), a sender bound to
 * it with the spec's TTL and no loop-back (local subscribers have the
 * rings), and a receiver on the range's port that hears only the groups it
 * joins, with kernel drop counts and a large receive buffer. */
#ifndef KITE_LAN_SOCKET_H
#define KITE_LAN_SOCKET_H

#include <netinet/in.h>
#include <stddef.h>

#include "lan_spec.h"

struct lan_iface {
	char name[IF_NAMESIZE];
	int index;
	struct in_addr addr;
	unsigned mtu;
};

/* Resolve spec's interface (up, multicast, IPv4 address); 0 or -errno
 * with a reason. */
int ki_lan_iface_resolve(const struct lan_spec *spec, struct lan_iface *out,
		      char *why, size_t why_len);

/* The sending socket: blocking, but never for longer than send_timeout_ms
 * (a UDP socket only waits for its own queue to drain). fd or -errno. */
int ki_lan_socket_sender(const struct lan_spec *spec, const struct lan_iface *ifc,
		      unsigned send_timeout_ms);

/* The receiving socket (non-blocking); *rcvbuf gets the bytes the kernel
 * granted (it caps SO_RCVBUF at net.core.rmem_max unless SO_RCVBUFFORCE is
 * allowed). fd or -errno. */
int ki_lan_socket_receiver(const struct lan_spec *spec, size_t want_rcvbuf, size_t *rcvbuf);

/* Join (join = 1) or leave a group (host byte order) on the interface.
 * -ENOBUFS: more groups than net.ipv4.igmp_max_memberships allows. */
int ki_lan_socket_membership(int fd, uint32_t group, const struct lan_iface *ifc, int join);

#endif
