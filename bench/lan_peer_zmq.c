/* lan_peer_zmq.c — one side of the LAN benchmark, run by lan_bench.sh
 * inside the namespace hosts it creates (never on the host's network):
 *
 *   kite-pub IFACE SIZE COUNT [RATE]  kite_publish COUNT messages on
 *                                  bench.lan (RATE: paced to RATE a second)
 *   kite-sub IFACE COUNT           count them (messages and KITE_LOSS), and
 *                                  print "repaired R" (LAN repair) after
 *   udp-pub IFACE SIZE COUNT GSO   the bare floor: sendmmsg, one message a
 *                                  datagram (GSO 1: UDP_SEGMENT, 64 a send;
 *                                  above 1472 bytes, 1472-byte datagrams,
 *                                  44 a send: 64 KiB the most a send takes)
 *   udp-sub IFACE COUNT SIZE       recvmmsg, with UDP_GRO (coalesced reads
 *                                  of a GSO sender's datagrams)
 *   zmq-pub ENDPOINT SIZE COUNT    ZeroMQ PUB (tcp://), no drops (HWM 0)
 *   zmq-sub ENDPOINT COUNT         SUB
 *
 * Publishers print "sent N cpu_ns C"; subscribers
 * "received N lost L elapsed_ns E", E from the first message to the last
 * (a subscriber stops at COUNT, or 2 s after the last message). */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "kite.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#define GROUP "239.255.75.9"
#define PORT 7490

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static uint64_t cpu_ns(void)
{
	struct rusage r;
	getrusage(RUSAGE_SELF, &r);
	return ((uint64_t)r.ru_utime.tv_sec + (uint64_t)r.ru_stime.tv_sec) * 1000000000u +
	       ((uint64_t)r.ru_utime.tv_usec + (uint64_t)r.ru_stime.tv_usec) * 1000u;
}

/* When the first and (nearly) the last message arrived. A clock read
 * costs about as much as a 64-byte kite_recv on this VM, so a subscriber
 * reads it for every 16th arrival only, and once more as soon as its last
 * expected message is in: a run ending early (a loss at the end, a
 * timeout) leaves out at most 15 arrivals' worth of time in a million. */
struct arrivals {
	uint64_t n, first, last;
};

static void arrived(struct arrivals *a, uint64_t n)
{
	if (a->n % 16 == 0 || a->n / 16 != (a->n + n - 1) / 16) {
		a->last = now_ns();
		if (!a->n)
			a->first = a->last;
	}
	a->n += n;
}

static void all_arrived(struct arrivals *a)
{
	if (a->n)
		a->last = now_ns();
}

static void sub_report(uint64_t got, uint64_t lost, const struct arrivals *a)
{
	printf("received %" PRIu64 " lost %" PRIu64 " elapsed_ns %" PRIu64 "\n", got, lost,
	       got > 1 ? a->last - a->first : 0);
}

static int kite_pub(const char *iface, size_t size, uint64_t count, uint64_t rate)
{
	kite_options o = {0};
	o.lan = iface;
	o.bus = "lanbench";
	kite *k;
	int rc = kite_open(&k, &o);
	if (rc) {
		fprintf(stderr, "kite_open: %s\n", kite_strerror(rc));
		return 1;
	}
	char *buf = calloc(1, size);
	sleep(1); /* the subscriber has joined */
	uint64_t c0 = cpu_ns(), t0 = now_ns();
	for (uint64_t i = 0; i < count; i++) {
		if (rate) { /* paced: message i not before t0 + i / rate */
			uint64_t due = t0 + i * 1000000000u / rate;
			struct timespec ts = {(time_t)(due / 1000000000u), (long)(due % 1000000000u)};
			while (now_ns() < due &&
			       clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
				;
		}
		kite_publish(k, "bench.lan", buf, size);
	}
	uint64_t c1 = cpu_ns();
	kite_lan_stats st;
	if (kite_lan_stats_get(k, &st, sizeof st) == 0 && st.naks_received)
		fprintf(stderr, "naks_received %" PRIu64 " resent %" PRIu64 " resend_refused %" PRIu64 "\n",
			st.naks_received, st.resent, st.resend_refused);
	kite_close(k);
	printf("sent %" PRIu64 " cpu_ns %" PRIu64 "\n", count, c1 - c0);
	free(buf);
	return 0;
}

static int kite_sub(const char *iface, uint64_t count)
{
	kite_options o = {0};
	o.lan = iface;
	o.bus = "lanbench";
	kite *k;
	if (kite_open(&k, &o) || kite_subscribe(k, "bench.>"))
		return 1;
	printf("ready\n");
	fflush(stdout);
	uint64_t got = 0, lost = 0;
	struct arrivals at = {0};
	while (got + lost < count) {
		kite_event ev;
		int rc = kite_recv(k, &ev, got ? 2000 : 20000);
		if (rc)
			break;
		if (ev.type == KITE_MESSAGE) {
			arrived(&at, 1);
			if (++got + lost == count)
				all_arrived(&at);
		} else if (ev.type == KITE_LOSS) {
			lost += ev.lost;
		} else if (ev.type == KITE_PUBLISHER_GONE) {
			break;
		}
	}
	sub_report(got, lost, &at);
	kite_lan_stats st;
	if (kite_lan_stats_get(k, &st, sizeof st) == 0)
		printf("repaired %" PRIu64 " naks_sent %" PRIu64 " late %" PRIu64
		       " kernel_drops %" PRIu64 " queue_dropped %" PRIu64 "\n", st.repaired,
		       st.naks_sent, st.late, st.kernel_drops, st.queue_dropped);
	kite_close(k);
	return 0;
}

static int udp_socket(const char *iface, int rx)
{
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	struct ip_mreqn m = {.imr_ifindex = (int)if_nametoindex(iface)};
	inet_pton(AF_INET, GROUP, &m.imr_multiaddr);
	int one = 1, buf = 8 << 20;
	if (rx) {
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(PORT)};
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf);
		setsockopt(s, IPPROTO_UDP, UDP_GRO, &one, sizeof one);
		if (bind(s, (struct sockaddr *)&a, sizeof a) ||
		    setsockopt(s, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m))
			return -1;
	} else {
		setsockopt(s, IPPROTO_IP, IP_MULTICAST_IF, &m, sizeof m);
		setsockopt(s, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof buf);
	}
	return s;
}

static int udp_pub(const char *iface, size_t size, uint64_t count, int gso)
{
	int s = udp_socket(iface, 0);
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(PORT)};
	inet_pton(AF_INET, GROUP, &to.sin_addr);
	enum { B = 64 };
	size_t per = size > 1472 ? 1472 : size; /* one message a datagram, as kite's fragments */
	char *buf = calloc(B, size < per * B ? per * B : size);
	struct mmsghdr mm[B];
	struct iovec iov[B];
	sleep(1);
	uint64_t c0 = cpu_ns(), sent = 0;
	if (gso && size <= 1472) {
		/* 64 messages in one send, cut by the kernel (UDP_SEGMENT); as
		 * many as one UDP payload holds (65,507 bytes: 63 of 1 KiB). */
		int seg = (int)size;
		size_t per_send = 65507 / size < B ? 65507 / size : B;
		setsockopt(s, IPPROTO_UDP, UDP_SEGMENT, &seg, sizeof seg);
		for (; sent < count; sent += per_send) {
			struct iovec v = {buf, size * per_send};
			struct msghdr h = {.msg_name = &to, .msg_namelen = sizeof to, .msg_iov = &v, .msg_iovlen = 1};
			if (sendmsg(s, &h, 0) < 0)
				break;
		}
	} else if (gso) {
		/* Each message as 1472-byte datagrams, 44 a send (a send carries
		 * 65,507 bytes at most), cut by the kernel. */
		size_t frags = (size + per - 1) / per, total = count * frags, done = 0;
		int seg = (int)per;
		setsockopt(s, IPPROTO_UDP, UDP_SEGMENT, &seg, sizeof seg);
		while (done < total) {
			size_t n = total - done < 44 ? total - done : 44;
			struct iovec v = {buf, per * n};
			struct msghdr h = {.msg_name = &to, .msg_namelen = sizeof to, .msg_iov = &v, .msg_iovlen = 1};
			if (sendmsg(s, &h, 0) < 0)
				break;
			done += n;
		}
		sent = done / frags;
		seg = 0; /* the end marker below goes as it is */
		setsockopt(s, IPPROTO_UDP, UDP_SEGMENT, &seg, sizeof seg);
	} else {
		size_t frags = (size + per - 1) / per;
		for (; sent < count; sent += B / frags) {
			unsigned n = 0;
			for (uint64_t m = 0; m < B / frags; m++)
				for (size_t f = 0; f < frags; f++, n++) {
					iov[n] = (struct iovec){buf, per};
					mm[n].msg_hdr = (struct msghdr){.msg_name = &to, .msg_namelen = sizeof to,
									.msg_iov = &iov[n], .msg_iovlen = 1};
				}
			for (unsigned done = 0; done < n;) {
				int r = sendmmsg(s, mm + done, n - done, 0);
				if (r <= 0)
					break;
				done += (unsigned)r;
			}
		}
	}
	uint64_t c1 = cpu_ns();
	/* The end: a datagram of one byte, three times. */
	for (int i = 0; i < 3; i++)
		sendto(s, "E", 1, 0, (struct sockaddr *)&to, sizeof to);
	printf("sent %" PRIu64 " cpu_ns %" PRIu64 "\n", sent, c1 - c0);
	return 0;
}

static int udp_sub(const char *iface, uint64_t count, size_t size)
{
	int s = udp_socket(iface, 1);
	if (s < 0)
		return 1;
	printf("ready\n");
	fflush(stdout);
	enum { B = 64 };
	static char bufs[B][65536];
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl[B];
	struct mmsghdr mm[B];
	struct iovec iov[B];
	uint64_t bytes = 0, datagrams = 0;
	struct arrivals at = {0};
	size_t per = size > 1472 ? 1472 : size;
	uint64_t need = count * ((size + per - 1) / per);
	for (;;) {
		struct pollfd p = {.fd = s, .events = POLLIN};
		if (poll(&p, 1, datagrams ? 2000 : 20000) <= 0)
			break;
		for (int i = 0; i < B; i++) {
			iov[i] = (struct iovec){bufs[i], sizeof bufs[i]};
			mm[i].msg_hdr = (struct msghdr){.msg_iov = &iov[i], .msg_iovlen = 1,
							.msg_control = ctl[i].buf,
							.msg_controllen = sizeof ctl[i].buf};
		}
		int n = recvmmsg(s, mm, B, MSG_DONTWAIT, NULL);
		int end = 0;
		for (int i = 0; i < n; i++) {
			if (mm[i].msg_len == 1) {
				end = 1;
				continue;
			}
			/* A coalesced read (UDP_GRO) holds len / segment datagrams. */
			uint64_t in = 1;
			struct cmsghdr *c = CMSG_FIRSTHDR(&mm[i].msg_hdr);
			if (c && c->cmsg_level == IPPROTO_UDP && c->cmsg_type == UDP_GRO) {
				int seg;
				memcpy(&seg, CMSG_DATA(c), sizeof seg);
				if (seg > 0)
					in = (mm[i].msg_len + (unsigned)seg - 1) / (unsigned)seg;
			}
			arrived(&at, in);
			datagrams += in;
			bytes += mm[i].msg_len;
		}
		if (datagrams >= need)
			all_arrived(&at);
		if (end || datagrams >= need)
			break;
	}
	uint64_t msgs = datagrams / ((size + per - 1) / per);
	sub_report(msgs, count > msgs ? count - msgs : 0, &at);
	return 0;
}

static int zmq_pub(const char *ep, size_t size, uint64_t count)
{
	void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_PUB);
	int zero = 0;
	zmq_setsockopt(s, ZMQ_SNDHWM, &zero, sizeof zero);
	if (zmq_bind(s, ep))
		return 1;
	sleep(1);
	char *buf = calloc(1, size);
	uint64_t c0 = cpu_ns();
	for (uint64_t i = 0; i < count; i++)
		zmq_send(s, buf, size, 0);
	zmq_send(s, "E", 1, 0);
	/* The CPU time once everything queued has gone: the I/O thread's
	 * sending (one copy a subscriber) counts too. */
	int linger = 10000;
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
	zmq_close(s);
	zmq_ctx_term(ctx);
	uint64_t c1 = cpu_ns();
	printf("sent %" PRIu64 " cpu_ns %" PRIu64 "\n", count, c1 - c0);
	return 0;
}

static int zmq_sub(const char *ep, uint64_t count)
{
	void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_SUB);
	int zero = 0, timeout = 20000;
	zmq_setsockopt(s, ZMQ_RCVHWM, &zero, sizeof zero);
	zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0);
	zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
	if (zmq_connect(s, ep))
		return 1;
	printf("ready\n");
	fflush(stdout);
	static char buf[1 << 17];
	uint64_t got = 0;
	struct arrivals at = {0};
	while (got < count) {
		int n = zmq_recv(s, buf, sizeof buf, 0);
		if (n < 0 || n == 1)
			break;
		arrived(&at, 1);
		if (++got == count)
			all_arrived(&at);
	}
	sub_report(got, count - got, &at);
	zmq_close(s);
	zmq_ctx_term(ctx);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && !strcmp(argv[1], "kite-pub"))
		return kite_pub(argv[2], strtoul(argv[3], NULL, 10), strtoull(argv[4], NULL, 10),
				argc >= 6 ? strtoull(argv[5], NULL, 10) : 0);
	if (argc >= 4 && !strcmp(argv[1], "kite-sub"))
		return kite_sub(argv[2], strtoull(argv[3], NULL, 10));
	if (argc >= 6 && !strcmp(argv[1], "udp-pub"))
		return udp_pub(argv[2], strtoul(argv[3], NULL, 10), strtoull(argv[4], NULL, 10), atoi(argv[5]));
	if (argc >= 5 && !strcmp(argv[1], "udp-sub"))
		return udp_sub(argv[2], strtoull(argv[3], NULL, 10), strtoul(argv[4], NULL, 10));
	if (argc >= 5 && !strcmp(argv[1], "zmq-pub"))
		return zmq_pub(argv[2], strtoul(argv[3], NULL, 10), strtoull(argv[4], NULL, 10));
	if (argc >= 4 && !strcmp(argv[1], "zmq-sub"))
		return zmq_sub(argv[2], strtoull(argv[3], NULL, 10));
	fprintf(stderr, "usage: see the comment at the top of lan_peer_zmq.c\n");
	return 100;
}
