/* The LAN's sockets: the interface (by name or "auto"), a sender bound to
 * it with the spec's TTL and no loop-back (local subscribers have the
 * rings), and a receiver on the range's port that hears only the groups it
 * joins, with kernel drop counts and a large receive buffer; and the
 * offloads that move a large message's fragments as one buffer through the
 * stack: UDP_SEGMENT (GSO) on send, UDP_GRO on receive, where the kernel
 * has them. */
#ifndef KITE_LAN_SOCKET_H
#define KITE_LAN_SOCKET_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

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

/* The most UDP payload one send may carry (an IPv4 packet's 65,535 bytes
 * less the IP and UDP headers): a GSO send's segments together, too. */
#define LAN_UDP_PAYLOAD_MAX 65507
/* Segments of one UDP_SEGMENT send (the kernel's UDP_MAX_SEGMENTS on every
 * kernel that has GSO; newer ones allow more). */
#define LAN_GSO_SEGMENTS_MAX 64

/* 1 if the kernel knows UDP_SEGMENT on this socket (Linux 4.18), else 0.
 * (An older kernel would ignore the option in a send and put the whole
 * buffer in one IP-fragmented datagram.) */
int ki_lan_gso_offered(int fd);

/* Send buf[0..len) to `to` as one UDP_SEGMENT send: the kernel cuts it
 * into datagrams of seg bytes (the last may be shorter). Blocking as the
 * socket is unless flags say MSG_DONTWAIT. len or -errno: -EIO or -EINVAL
 * when the kernel or the route refuses segmentation offload (then send the
 * datagrams one by one), -EAGAIN / -ENOBUFS when the queue is full. */
ssize_t ki_lan_gso_send(int fd, const struct sockaddr_in *to, const uint8_t *buf, size_t len,
			size_t seg, int flags);

/* The segment size of a buffer the kernel coalesced from several
 * datagrams (its UDP_GRO control message on a receiver), or 0: one
 * datagram. h: as recvmsg/recvmmsg filled it in. */
size_t ki_lan_gro_size(struct msghdr *h);

/* Cut a received buffer (len bytes, coalesced at seg bytes a datagram, 0:
 * not coalesced) into its datagrams, calling each(ctx, datagram, bytes)
 * for every one, in order: all of seg bytes but the last, which holds what
 * remains. Whatever the kernel (or a liar) says, no datagram lies outside
 * buf: seg 0 or seg >= len is one datagram of len bytes. Returns how many
 * datagrams (1 for an empty buffer: an empty datagram). */
size_t ki_lan_gro_split(const uint8_t *buf, size_t len, size_t seg,
			void (*each)(void *ctx, const uint8_t *datagram, size_t bytes), void *ctx);

/* The kernel's CLOCK_REALTIME stamp of a datagram's arrival (the
 * receiver asks for SO_TIMESTAMPNS), from a recvmmsg header; 0: none. */
uint64_t ki_lan_rx_stamp(struct msghdr *h);
/* Control bytes a received datagram may bring: the drop count, the GRO
 * segment size, the arrival stamp. */
#define LAN_RX_CONTROL_LEN \
	(CMSG_SPACE(sizeof(uint32_t)) + CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(struct timespec)))

/* Join (join = 1) or leave a group (host byte order) on the interface.
 * -ENOBUFS: more groups than net.ipv4.igmp_max_memberships allows. */
int ki_lan_socket_membership(int fd, uint32_t group, const struct lan_iface *ifc, int join);

#endif
