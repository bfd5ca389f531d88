/* Socket set-up for LAN channels. */
#include "lan_socket.h"

#include <errno.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IP_MULTICAST_ALL
#define IP_MULTICAST_ALL 49
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

/* Fill out from the interface's name; 0 or -errno. */
static int describe(int s, const char *name, struct lan_iface *out, char *why, size_t why_len)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
		int e = errno;
		snprintf(why, why_len, "interface %s: %s", name, strerror(e));
		return -e;
	}
	short flags = ifr.ifr_flags;
	if (!(flags & IFF_UP) || !(flags & IFF_MULTICAST)) {
		snprintf(why, why_len, "interface %s is %s", name,
			 !(flags & IFF_UP) ? "down" : "not multicast-capable");
		return -ENETDOWN;
	}
	if (ioctl(s, SIOCGIFINDEX, &ifr) < 0)
		return -errno;
	out->index = ifr.ifr_ifindex;
	if (ioctl(s, SIOCGIFADDR, &ifr) < 0) {
		int e = errno;
		snprintf(why, why_len, "interface %s has no IPv4 address", name);
		return -e;
	}
	out->addr = ((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr;
	if (ioctl(s, SIOCGIFMTU, &ifr) < 0)
		return -errno;
	out->mtu = (unsigned)ifr.ifr_mtu;
	if (out->mtu < 576)
		out->mtu = 576;
	snprintf(out->name, sizeof out->name, "%s", name);
	return 0;
}

int ki_lan_iface_resolve(const struct lan_spec *spec, struct lan_iface *out,
		      char *why, size_t why_len)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	int rc = -ENODEV;
	if (!spec->is_auto) {
		rc = describe(s, spec->iface, out, why, why_len);
	} else {
		struct if_nameindex *all = if_nameindex();
		for (struct if_nameindex *i = all; i && i->if_index; i++) {
			struct ifreq ifr;
			memset(&ifr, 0, sizeof ifr);
			snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", i->if_name);
			if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0 || (ifr.ifr_flags & IFF_LOOPBACK))
				continue;
			char ignored[160];
			if ((rc = describe(s, i->if_name, out, ignored, sizeof ignored)) == 0)
				break;
		}
		if (all)
			if_freenameindex(all);
		if (rc)
			snprintf(why, why_len, "auto: no interface is up, multicast-capable "
				 "and has an IPv4 address");
	}
	close(s);
	return rc;
}

/* Ask for a socket buffer of `bytes`: the privileged FORCE option first
 * (past net.core.*mem_max), the capped one if that is refused. */
static void buffer_wish(int s, int force_opt, int opt, int bytes)
{
	if (setsockopt(s, SOL_SOCKET, force_opt, &bytes, sizeof bytes) < 0)
		setsockopt(s, SOL_SOCKET, opt, &bytes, sizeof bytes);
}

/* Close a socket whose setup failed, keeping the failing call's errno. */
static int close_failed(int s)
{
	int e = errno;
	close(s);
	return -e;
}

int ki_lan_socket_sender(const struct lan_spec *spec, const struct lan_iface *ifc,
		      unsigned send_timeout_ms)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	struct ip_mreqn m = {.imr_address = ifc->addr, .imr_ifindex = ifc->index};
	int ttl = (int)spec->ttl, loop = 0, sndbuf = 4 << 20;
	struct timeval tv = {.tv_sec = send_timeout_ms / 1000,
			     .tv_usec = (send_timeout_ms % 1000) * 1000};
	struct sockaddr_in local = {.sin_family = AF_INET, .sin_addr = ifc->addr};
	if (setsockopt(s, IPPROTO_IP, IP_MULTICAST_IF, &m, sizeof m) < 0 ||
	    setsockopt(s, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl) < 0 ||
	    setsockopt(s, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop) < 0 ||
	    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0 ||
	    bind(s, (struct sockaddr *)&local, sizeof local) < 0) {
		return close_failed(s);
	}
	/* A larger send queue is a wish, not a need. */
	buffer_wish(s, SO_SNDBUFFORCE, SO_SNDBUF, sndbuf);
	return s;
}

int ki_lan_socket_receiver(const struct lan_spec *spec, size_t want_rcvbuf, size_t *rcvbuf)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	int one = 1, zero = 0, want = (int)want_rcvbuf;
	struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons(spec->range.port),
				  .sin_addr.s_addr = htonl(INADDR_ANY)};
	/* Several handles of one host share the port; each hears only the
	 * groups it joined itself (IP_MULTICAST_ALL off). */
	if (setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    setsockopt(s, IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof zero) < 0 ||
	    setsockopt(s, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one) < 0 ||
	    bind(s, (struct sockaddr *)&any, sizeof any) < 0) {
		return close_failed(s);
	}
	buffer_wish(s, SO_RCVBUFFORCE, SO_RCVBUF, want);
	/* Coalesced reads where the kernel offers them (Linux 5.0): a large
	 * message's fragments then come up as one buffer (ki_lan_gro_split
	 * cuts it); where it does not, datagrams come one by one as before. */
	setsockopt(s, IPPROTO_UDP, UDP_GRO, &one, sizeof one);
	/* Each datagram's arrival time (ki_lan_rx_stamp): without it, the
	 * read time stands in for it. */
	setsockopt(s, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
	int got = 0;
	socklen_t gl = sizeof got;
	getsockopt(s, SOL_SOCKET, SO_RCVBUF, &got, &gl);
	*rcvbuf = (size_t)got / 2; /* the kernel reports twice what it grants data */
	return s;
}

int ki_lan_socket_membership(int fd, uint32_t group, const struct lan_iface *ifc, int join)
{
	struct ip_mreqn m = {.imr_multiaddr.s_addr = htonl(group),
			     .imr_address = ifc->addr, .imr_ifindex = ifc->index};
	if (setsockopt(fd, IPPROTO_IP, join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP,
		       &m, sizeof m) < 0)
		return -errno;
	return 0;
}

int ki_lan_gso_offered(int fd)
{
	int zero = 0; /* no segmentation unless a send asks: only a probe */
	return setsockopt(fd, IPPROTO_UDP, UDP_SEGMENT, &zero, sizeof zero) == 0;
}

ssize_t ki_lan_gso_send(int fd, const struct sockaddr_in *to, const uint8_t *buf, size_t len,
			size_t seg, int flags)
{
	union {
		char buf[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} ctl;
	memset(&ctl, 0, sizeof ctl);
	struct iovec iov = {(void *)(uintptr_t)buf, len};
	struct msghdr h = {.msg_name = (void *)(uintptr_t)to, .msg_namelen = sizeof *to,
			   .msg_iov = &iov, .msg_iovlen = 1,
			   .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
	struct cmsghdr *c = CMSG_FIRSTHDR(&h);
	c->cmsg_level = IPPROTO_UDP; /* (SOL_UDP) */
	c->cmsg_type = UDP_SEGMENT;
	c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
	uint16_t size = (uint16_t)seg;
	memcpy(CMSG_DATA(c), &size, sizeof size);
	ssize_t n = sendmsg(fd, &h, flags);
	return n < 0 ? -errno : n;
}

size_t ki_lan_gro_size(struct msghdr *h)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c))
		if (c->cmsg_level == IPPROTO_UDP && c->cmsg_type == UDP_GRO &&
		    c->cmsg_len >= CMSG_LEN(sizeof(int))) {
			int v;
			memcpy(&v, CMSG_DATA(c), sizeof v);
			return v > 0 ? (size_t)v : 0;
		}
	return 0;
}

uint64_t ki_lan_rx_stamp(struct msghdr *h)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS &&
		    c->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
			struct timespec ts;
			memcpy(&ts, CMSG_DATA(c), sizeof ts);
			if (ts.tv_sec < 0 || ts.tv_nsec < 0)
				return 0;
			return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
		}
	return 0;
}

size_t ki_lan_gro_split(const uint8_t *buf, size_t len, size_t seg,
			void (*each)(void *ctx, const uint8_t *datagram, size_t bytes), void *ctx)
{
	if (seg == 0 || seg >= len) {
		each(ctx, buf, len);
		return 1;
	}
	size_t n = 0;
	for (size_t at = 0; at < len; at += seg, n++)
		each(ctx, buf + at, len - at < seg ? len - at : seg);
	return n;
}
