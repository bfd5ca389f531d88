/* The checks of kite doctor. Read-only: they read /proc and /sys values,
 * ask interface flags with an ioctl, create (and close) a memfd and an
 * unbound ICMP socket; nothing is sent anywhere and nothing is changed. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "doctor.h"
#include "proc_lines.h"
#include "proc_net_route.h"
#include "proc_net_unix.h"
#include "proc_text.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

/* Socket buffers kite's LAN receivers ask for: a 4 MiB SO_RCVBUF absorbs a
 * burst of ~2,800 full-size datagrams while the reader is descheduled. */
#define WANT_SOCKBUF 4194304L
/* A Unix datagram queue long enough for statsd-style bursts (Debian's
 * default elsewhere; the kernel's per-namespace default is 10). */
#define WANT_DGRAM_QLEN 512L
/* A representative group in kite's administratively scoped range. */
#define PROBE_GROUP "239.255.0.1"

static int read_text(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, size - 1);
	int e = errno;
	close(fd);
	if (n < 0)
		return -e;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	buf[n] = 0;
	return 0;
}

static void at_least(struct finding *f, const char *name, const char *path,
		     long want, const char *why)
{
	char buf[64], *end;
	f->check = name;
	if (read_text(path, buf, sizeof buf) < 0) {
		f->ok = 1; /* not this kernel's knob: nothing to fix */
		snprintf(f->value, sizeof f->value, "absent");
		snprintf(f->detail, sizeof f->detail, "%s is not readable here", path);
		return;
	}
	long v = strtol(buf, &end, 10);
	snprintf(f->value, sizeof f->value, "%s", buf);
	f->ok = *end == 0 && v >= want;
	if (!f->ok) {
		snprintf(f->detail, sizeof f->detail, "%s (below %ld)", why, want);
		snprintf(f->fix, sizeof f->fix, "sysctl -w %s=%ld", name, want);
	}
}

static int in_range(gid_t g, long lo, long hi)
{
	return (long)g >= lo && (long)g <= hi;
}

static void ping_range(struct finding *f)
{
	char buf[64];
	long lo = 1, hi = 0;
	f->check = "net.ipv4.ping_group_range";
	if (read_text("/proc/sys/net/ipv4/ping_group_range", buf, sizeof buf) == 0 &&
	    proc_two_numbers(buf, strlen(buf), &lo, &hi))
		lo = 1, hi = 0; /* unreadable: as if nobody may */
	snprintf(f->value, sizeof f->value, "%ld %ld", lo, hi);
	gid_t groups[256];
	int n = getgroups(256, groups);
	int ok = in_range(getegid(), lo, hi);
	for (int i = 0; i < n && !ok; i++)
		ok = in_range(groups[i], lo, hi);
	/* The kernel's word: can we open an ICMP datagram socket? (Opening
	 * sends nothing.) */
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_ICMP);
	if (s >= 0)
		close(s);
	f->ok = ok && s >= 0;
	if (!f->ok) {
		snprintf(f->detail, sizeof f->detail, "group %u may not open ICMP "
			 "datagram sockets: kite ping needs them", (unsigned)getegid());
		snprintf(f->fix, sizeof f->fix,
			 "sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"");
	}
}

/* Interfaces of this network namespace from /proc/net/dev. */
struct ifaces {
	char names[64][IFNAMSIZ];
	int n;
};

static int dev_line(const char *line, size_t len, void *arg)
{
	struct ifaces *ifs = arg;
	if (ifs->n < 64 && proc_net_dev_name(line, len, ifs->names[ifs->n]) == 0)
		ifs->n++;
	return 0;
}

static int if_flags(int s, const char *name)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
	return ioctl(s, SIOCGIFFLAGS, &ifr) < 0 ? -1 : ifr.ifr_flags;
}

static void multicast(struct finding *iff, struct finding *rf)
{
	struct ifaces ifs = {.n = 0};
	char good[IFNAMSIZ] = "", down[IFNAMSIZ] = "", nomc[IFNAMSIZ] = "";
	iff->check = "multicast-interface";
	rf->check = "multicast-route";
	ki_proc_lines_each("/proc/net/dev", dev_line, &ifs, NULL);
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	size_t used = 0;
	for (int i = 0; i < ifs.n; i++) {
		int fl = s >= 0 ? if_flags(s, ifs.names[i]) : -1;
		/* lo counts only once someone turned MULTICAST on for it (a
		 * one-host set-up); otherwise it is not worth suggesting. */
		if (fl < 0 || ((fl & IFF_LOOPBACK) && !(fl & IFF_MULTICAST)))
			continue;
		if ((fl & IFF_UP) && (fl & IFF_MULTICAST)) {
			if (!good[0])
				snprintf(good, sizeof good, "%s", ifs.names[i]);
			used += (size_t)snprintf(iff->value + used, sizeof iff->value - used,
						 "%s%s", used ? " " : "", ifs.names[i]);
			if (used >= sizeof iff->value)
				used = sizeof iff->value - 1;
		} else if (!(fl & IFF_UP) && !down[0]) {
			snprintf(down, sizeof down, "%s", ifs.names[i]);
		} else if (!(fl & IFF_MULTICAST) && !nomc[0]) {
			snprintf(nomc, sizeof nomc, "%s", ifs.names[i]);
		}
	}
	iff->ok = good[0] != 0;
	if (!iff->ok) {
		snprintf(iff->value, sizeof iff->value, "none");
		snprintf(iff->detail, sizeof iff->detail, "no interface is up with "
			 "MULTICAST: LAN channels cannot reach other hosts "
			 "(local channels are unaffected)");
		if (nomc[0])
			snprintf(iff->fix, sizeof iff->fix, "ip link set dev %s multicast on", nomc);
		else if (down[0])
			snprintf(iff->fix, sizeof iff->fix, "ip link set dev %s up", down);
		else /* this host alone: multicast over loopback */
			snprintf(iff->fix, sizeof iff->fix, "ip link set dev lo up multicast on");
	}
	struct route_entry r;
	unsigned skipped = 0;
	int found = proc_net_route_lookup(inet_addr(PROBE_GROUP), &r, &skipped);
	const char *dev = good[0] ? good : "lo";
	if (found < 0) {
		rf->ok = 0;
		snprintf(rf->value, sizeof rf->value, "unreadable");
		snprintf(rf->detail, sizeof rf->detail, "/proc/net/route: %s", strerror(-found));
		return;
	}
	if (found == 0) {
		rf->ok = 0;
		snprintf(rf->value, sizeof rf->value, "none");
		snprintf(rf->detail, sizeof rf->detail, "no route for %s (no multicast "
			 "route, no default route): LAN channels fail to send", PROBE_GROUP);
		snprintf(rf->fix, sizeof rf->fix, "ip route add 224.0.0.0/4 dev %s", dev);
		return;
	}
	char dst[INET_ADDRSTRLEN];
	struct in_addr d = {.s_addr = r.dest};
	inet_ntop(AF_INET, &d, dst, sizeof dst);
	snprintf(rf->value, sizeof rf->value, "%s/%d dev %s", dst,
		 __builtin_popcount(r.mask), r.iface);
	int fl = s >= 0 ? if_flags(s, r.iface) : -1;
	rf->ok = fl >= 0 && (fl & IFF_MULTICAST) && (fl & IFF_UP);
	if (!rf->ok) {
		snprintf(rf->detail, sizeof rf->detail, "%s goes out through %s, which "
			 "is down or lacks MULTICAST", PROBE_GROUP, r.iface);
		snprintf(rf->fix, sizeof rf->fix, "ip route add 224.0.0.0/4 dev %s", dev);
	}
	if (s >= 0)
		close(s);
}

static void memfd_seals(struct finding *f)
{
	f->check = "memfd-sealing";
	int fd = memfd_create("kite-doctor", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0) {
		int e = errno;
		char nx[16] = "";
		f->ok = 0;
		snprintf(f->value, sizeof f->value, "memfd_create: %s", strerror(e));
		if (e == EACCES && read_text("/proc/sys/vm/memfd_noexec", nx, sizeof nx) == 0 &&
		    strcmp(nx, "0")) {
			snprintf(f->detail, sizeof f->detail, "vm.memfd_noexec=%s refuses "
				 "memfds: local channels cannot make their rings", nx);
			snprintf(f->fix, sizeof f->fix, "sysctl -w vm.memfd_noexec=0");
		} else {
			snprintf(f->detail, sizeof f->detail, "local channels need memfd_create "
				 "(Linux 3.17 or later)");
			snprintf(f->fix, sizeof f->fix, "(upgrade the kernel to 5.1 or later)");
		}
		return;
	}
	int rc = fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE);
	int e = errno;
	close(fd);
	f->ok = rc == 0;
	snprintf(f->value, sizeof f->value, "%s", f->ok ? "F_SEAL_FUTURE_WRITE works"
							: strerror(e));
	if (!f->ok) {
		snprintf(f->detail, sizeof f->detail, "sealing a ring against writes "
			 "needs F_SEAL_FUTURE_WRITE (Linux 5.1 or later)");
		snprintf(f->fix, sizeof f->fix, "(upgrade the kernel to 5.1 or later)");
	}
}

static int count_unix(const struct unix_entry *e, void *arg)
{
	(void)e;
	(*(unsigned *)arg)++;
	return 0;
}

static void proc_net_unix(struct finding *f)
{
	unsigned n = 0, skipped = 0;
	f->check = "/proc/net/unix";
	int rc = ki_proc_net_unix_each(count_unix, &n, &skipped);
	f->ok = rc == 0 && skipped == 0;
	if (rc < 0) {
		snprintf(f->value, sizeof f->value, "%s", strerror(-rc));
		snprintf(f->detail, sizeof f->detail, "local channel discovery and kite "
			 "ports read it");
		snprintf(f->fix, sizeof f->fix, "mount -t proc proc /proc");
		return;
	}
	snprintf(f->value, sizeof f->value, "%u sockets, %u unreadable lines", n, skipped);
	if (skipped)
		snprintf(f->detail, sizeof f->detail, "lines kite cannot parse: please "
			 "report this kernel's format");
}

int doctor_run_checks(struct finding *out, int max)
{
	if (max < 8)
		return 0;
	memset(out, 0, (size_t)max * sizeof *out);
	at_least(&out[0], "net.core.rmem_max", "/proc/sys/net/core/rmem_max",
		 WANT_SOCKBUF, "LAN receivers cannot get a socket buffer big enough "
		 "to ride out bursts");
	at_least(&out[1], "net.core.wmem_max", "/proc/sys/net/core/wmem_max",
		 WANT_SOCKBUF, "LAN publishers cannot queue bursts without blocking");
	at_least(&out[2], "net.unix.max_dgram_qlen", "/proc/sys/net/unix/max_dgram_qlen",
		 WANT_DGRAM_QLEN, "Unix datagram sockets (kite statsd on a path) queue "
		 "so few datagrams that senders block or drop");
	ping_range(&out[3]);
	multicast(&out[4], &out[5]);
	memfd_seals(&out[6]);
	proc_net_unix(&out[7]);
	return 8;
}
