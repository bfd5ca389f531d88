/* kite statsd: binding the datagram sockets and the HTTP listener, and the
 * daemon's log lines. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "net.h"
#include "statsd.h"

void statsd_log(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("kite statsd: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void log_bound(const char *what, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	char host[INET6_ADDRSTRLEN] = "?";
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
		statsd_log("%s %s:%u", what, host, ntohs(a->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
		statsd_log("%s [%s]:%u", what, host, ntohs(a->sin6_port));
	}
}

static void set_rcvbuf(int fd, uint64_t bytes)
{
	int v = (int)bytes;
	/* FORCE passes net.core.rmem_max when we may (CAP_NET_ADMIN). */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof v) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
}

int statsd_bind_inet(const char *what, const char *addr, int type, uint64_t rcvbuf)
{
	struct sockaddr_storage ss;
	socklen_t len;
	if (statsd_parse_hostport(addr, &ss, &len) < 0) {
		statsd_log("%s: bad address '%s' (want HOST:PORT)", what, addr);
		return -1;
	}
	int fd = socket(ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		statsd_log("%s: socket: %s", what, strerror(errno));
		return -1;
	}
	int one = 1;
	if (type == SOCK_DGRAM) {
		/* Several collectors may share the port; the kernel spreads
		 * packets among them. */
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
		set_rcvbuf(fd, rcvbuf);
	} else {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	}
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 64) < 0)) {
		statsd_log("%s: bind %s: %s", what, addr, strerror(errno));
		close(fd);
		return -1;
	}
	log_bound(what, fd);
	return fd;
}

/* A socket file left by an earlier run (nobody bound to it) may go;
 * anything else at the path stays, and bind then says why. */
static void remove_stale_socket(const struct sockaddr_un *sa, socklen_t len)
{
	struct stat st;
	if (lstat(sa->sun_path, &st) < 0 || !S_ISSOCK(st.st_mode))
		return;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (connect(fd, (const struct sockaddr *)sa, len) < 0 && errno == ECONNREFUSED)
		unlink(sa->sun_path);
	close(fd);
}

int statsd_bind_unix(const char *name, bool abstract, uint64_t rcvbuf, ino_t *ino,
		     bool taken_ok)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(name);
	*ino = 0;
	if (n + 2 > sizeof sa.sun_path) {
		statsd_log("unix: name too long: %s", name);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path + (abstract ? 1 : 0), name, n);
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
				    (abstract ? 1 : 0));
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int e = errno;
		statsd_log("unix: socket: %s", strerror(e));
		return -e;
	}
	set_rcvbuf(fd, rcvbuf);
	if (!abstract)
		remove_stale_socket(&sa, len); /* from an earlier run; nothing else */
	if (bind(fd, (struct sockaddr *)&sa, len) < 0) {
		int e = errno;
		if (!(e == EADDRINUSE && taken_ok))
			statsd_log("unix: bind %s%s: %s", abstract ? "@" : "", name, strerror(e));
		close(fd);
		return -e;
	}
	struct stat st;
	if (!abstract && lstat(name, &st) == 0)
		*ino = st.st_ino;
	statsd_log("unix %s%s", abstract ? "@" : "", name);
	return fd;
}
