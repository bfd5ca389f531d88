/* kite ping: the unprivileged ICMP datagram socket. No raw socket, no
 * setuid bit, no capability: since Linux 3.0 socket(AF_INET, SOCK_DGRAM,
 * IPPROTO_ICMP) is open to the groups in net.ipv4.ping_group_range (which
 * governs ICMPv6 sockets too). Where that range leaves the caller out,
 * kite says so and prints the sysctl that would let it in. */
#include <errno.h>
#include <time.h> /* before linux/errqueue.h, which needs struct timespec */
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "icmp_echo.h"
#include "ping.h"

/* The current range, as the kernel prints it ("1\t0"), for the message. */
static void read_range(char *buf, size_t cap)
{
	snprintf(buf, cap, "unknown");
	FILE *f = fopen("/proc/sys/net/ipv4/ping_group_range", "re");
	if (!f)
		return;
	char line[64];
	if (fgets(line, sizeof line, f)) {
		size_t o = 0;
		for (size_t i = 0; line[i] && line[i] != '\n' && o + 1 < cap; i++)
			buf[o++] = line[i] == '\t' ? ' ' : line[i];
		buf[o] = 0;
	}
	fclose(f);
}

static void explain_denied(int err)
{
	char range[64];
	read_range(range, sizeof range);
	unsigned gid = (unsigned)getgid();
	fprintf(stderr,
		"kite ping: cannot open an ICMP datagram socket: %s\n"
		"  Unprivileged ping sockets are open only to the groups in\n"
		"  net.ipv4.ping_group_range (here \"%s\"; your group is %u).\n"
		"  To allow all groups, run as root:\n"
		"    sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"\n"
		"  or only yours:\n"
		"    sysctl -w net.ipv4.ping_group_range=\"%u %u\"\n"
		"  (a file in /etc/sysctl.d/ keeps it after a reboot; the same range\n"
		"  governs IPv6 ping sockets; each network namespace has its own)\n",
		strerror(err), range, gid, gid, gid);
}

int ping_socket_open(int family, uint16_t *id)
{
	int proto = family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6;
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, proto);
	if (fd < 0) {
		int err = errno;
		if (err == EACCES || err == EPERM)
			explain_denied(err);
		else if (err == EPROTONOSUPPORT || err == EAFNOSUPPORT || err == ESOCKTNOSUPPORT)
			fail(-1, "ping", "this kernel has no %s ping sockets (%s)",
			     family == AF_INET ? "IPv4" : "IPv6", strerror(err));
		else
			fail(-1, "ping", "socket: %s", strerror(err));
		return -1;
	}
	/* Bind to port 0: the kernel picks the identifier now, so replies can
	 * be checked against it from the first one on. */
	struct sockaddr_storage ss;
	socklen_t sl;
	memset(&ss, 0, sizeof ss);
	ss.ss_family = (sa_family_t)family;
	sl = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	int on = 1;
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		fail(-1, "ping", "bind: %s", strerror(errno));
		close(fd);
		return -1;
	}
	*id = family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
				: ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	if (family == AF_INET) {
		setsockopt(fd, IPPROTO_IP, IP_RECVTTL, &on, sizeof on);
		setsockopt(fd, IPPROTO_IP, IP_RECVERR, &on, sizeof on);
	} else {
		setsockopt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &on, sizeof on);
		setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &on, sizeof on);
	}
	return fd;
}

ssize_t ping_recv(int fd, uint8_t *buf, size_t cap, struct sockaddr_storage *from, int *ttl)
{
	union {
		char buf[CMSG_SPACE(sizeof(int)) * 4];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = buf, .iov_len = cap};
	struct msghdr msg = {.msg_name = from, .msg_namelen = sizeof *from,
			     .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
	ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
	if (n < 0)
		return -errno;
	if (msg.msg_flags & MSG_TRUNC)
		return -EMSGSIZE; /* longer than anything we sent: not ours */
	*ttl = -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_len < CMSG_LEN(sizeof(int)))
			continue;
		if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) ||
		    (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT))
			memcpy(ttl, CMSG_DATA(c), sizeof(int));
	}
	return n;
}

int ping_recv_error(int fd, int family, int *seq, struct sockaddr_storage *offender,
		    char *what, size_t cap)
{
	uint8_t buf[512];
	union {
		char buf[512];
		struct cmsghdr align;
	} ctl;
	struct sockaddr_storage to;
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
	struct msghdr msg = {.msg_name = &to, .msg_namelen = sizeof to,
			     .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
	ssize_t n = recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT);
	if (n < 0)
		return -errno;
	*seq = icmp_echo_request_seq(family, buf, (size_t)n);
	memset(offender, 0, sizeof *offender);
	snprintf(what, cap, "error");
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (!((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR) ||
		      (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR)))
			continue;
		if (c->cmsg_len < CMSG_LEN(sizeof(struct sock_extended_err)))
			continue;
		struct sock_extended_err ee;
		memcpy(&ee, CMSG_DATA(c), sizeof ee);
		/* The offender address follows the struct, when it fits. */
		size_t room = c->cmsg_len - CMSG_LEN(sizeof ee);
		const struct sockaddr *off = SO_EE_OFFENDER((struct sock_extended_err *)CMSG_DATA(c));
		size_t want = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
		if (room >= want)
			memcpy(offender, off, want);
		const char *s = NULL;
		if (ee.ee_origin == SO_EE_ORIGIN_ICMP || ee.ee_origin == SO_EE_ORIGIN_ICMP6)
			s = icmp_error_str(family, ee.ee_type, ee.ee_code);
		if (s)
			snprintf(what, cap, "%s", s);
		else if (ee.ee_origin == SO_EE_ORIGIN_ICMP || ee.ee_origin == SO_EE_ORIGIN_ICMP6)
			snprintf(what, cap, "ICMP type %u code %u", ee.ee_type, ee.ee_code);
		else
			snprintf(what, cap, "%s", strerror((int)ee.ee_errno));
	}
	return 0;
}
