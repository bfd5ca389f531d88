/* kite serve --listen SPEC: parse and bind.
 *   tcp:PORT            127.0.0.1:PORT (loopback unless an address is given)
 *   tcp:ADDR:PORT       an IPv4 address, 0.0.0.0 for all
 *   tcp:[ADDR]:PORT     an IPv6 address, [::] for all (IPV6_V6ONLY is set, so
 *                       [::] and 0.0.0.0 are separate sockets)
 *   udp:...             the same forms, datagram sockets
 *   unix:@NAME          abstract Unix stream socket
 *   unix:/PATH          Unix stream socket file (a stale one is replaced) */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "serve.h"

static int err_out(char *err, size_t errlen, const char *msg, const char *text)
{
	snprintf(err, errlen, "%s: '%s'", msg, text);
	return -1;
}

static int parse_port(const char *p, uint16_t *out)
{
	uint64_t v;
	if (parse_u64(p, 65535, &v) < 0)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

static int parse_inet(const char *rest, struct listen_spec *o)
{
	uint16_t port;
	char host[64];
	const char *colon;
	if (rest[0] == '[') {
		const char *close = strchr(rest, ']');
		if (!close || close[1] != ':' || (size_t)(close - rest - 1) >= sizeof host)
			return -1;
		memcpy(host, rest + 1, (size_t)(close - rest - 1));
		host[close - rest - 1] = 0;
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&o->addr;
		if (parse_port(close + 2, &port) < 0 ||
		    inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			return -1;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		o->family = AF_INET6;
		o->addr_len = sizeof *a;
		return 0;
	}
	struct sockaddr_in *a = (struct sockaddr_in *)&o->addr;
	colon = strrchr(rest, ':');
	if (colon) {
		if ((size_t)(colon - rest) >= sizeof host)
			return -1;
		memcpy(host, rest, (size_t)(colon - rest));
		host[colon - rest] = 0;
		if (inet_pton(AF_INET, host, &a->sin_addr) != 1 ||
		    parse_port(colon + 1, &port) < 0)
			return -1;
	} else {
		if (parse_port(rest, &port) < 0)
			return -1;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	}
	a->sin_family = AF_INET;
	a->sin_port = htons(port);
	o->family = AF_INET;
	o->addr_len = sizeof *a;
	return 0;
}

int serve_spec_parse(const char *text, struct listen_spec *o, char *err,
		     size_t errlen)
{
	memset(o, 0, sizeof *o);
	if (strlen(text) >= sizeof o->text)
		return err_out(err, errlen, "listen spec too long", text);
	strcpy(o->text, text);
	for (size_t i = 0; text[i] && i < sizeof o->fdname - 1; i++)
		o->fdname[i] = (text[i] == ':' || text[i] < 0x21 || text[i] > 0x7e)
				       ? '-' : text[i];
	if (!strncmp(text, "tcp:", 4) || !strncmp(text, "udp:", 4)) {
		o->type = text[0] == 't' ? SOCK_STREAM : SOCK_DGRAM;
		if (parse_inet(text + 4, o) < 0)
			return err_out(err, errlen,
				       "bad address (want PROTO:PORT, PROTO:ADDR:PORT "
				       "or PROTO:[V6ADDR]:PORT)", text);
		return 0;
	}
	if (!strncmp(text, "unix:", 5)) {
		const char *path = text + 5;
		struct sockaddr_un *a = (struct sockaddr_un *)&o->addr;
		size_t n = strlen(path);
		if (n < 2 || n > sizeof a->sun_path - 1 || (path[0] != '@' && path[0] != '/'))
			return err_out(err, errlen,
				       "bad unix socket (want unix:@NAME or unix:/PATH, "
				       "at most 107 bytes)", text);
		a->sun_family = AF_UNIX;
		memcpy(a->sun_path, path, n);
		if (path[0] == '@')
			a->sun_path[0] = 0; /* abstract: the name has no NUL end */
		o->family = AF_UNIX;
		o->type = SOCK_STREAM;
		o->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
					  (path[0] == '/'));
		return 0;
	}
	return err_out(err, errlen, "unknown protocol (want tcp:, udp: or unix:)", text);
}

/* A socket file nobody listens on any more may be replaced; anything else
 * at the path is left alone (bind then fails with EADDRINUSE). */
static void remove_stale(const struct listen_spec *sp)
{
	const struct sockaddr_un *a = (const struct sockaddr_un *)&sp->addr;
	struct stat st;
	if (a->sun_path[0] != '/' || lstat(a->sun_path, &st) < 0 || !S_ISSOCK(st.st_mode))
		return;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (connect(fd, (const struct sockaddr *)a, sp->addr_len) < 0 &&
	    errno == ECONNREFUSED)
		unlink(a->sun_path);
	close(fd);
}

static void describe_bound(int fd, struct listen_spec *sp)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	char host[INET6_ADDRSTRLEN];
	const char *proto = sp->type == SOCK_STREAM ? "tcp" : "udp";
	snprintf(sp->bound, sizeof sp->bound, "%s", sp->text);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
		snprintf(sp->bound, sizeof sp->bound, "%s:%s:%u", proto, host,
			 ntohs(a->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
		snprintf(sp->bound, sizeof sp->bound, "%s:[%s]:%u", proto, host,
			 ntohs(a->sin6_port));
	}
}

int serve_spec_bind(struct listen_spec *sp, int backlog, int nonblock)
{
	int fd = socket(sp->family, sp->type | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	if (sp->family != AF_UNIX)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (sp->family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (sp->family == AF_UNIX)
		remove_stale(sp);
	if (bind(fd, (const struct sockaddr *)&sp->addr, sp->addr_len) < 0 ||
	    (sp->type == SOCK_STREAM && listen(fd, backlog) < 0)) {
		int e = -errno;
		close(fd);
		return e;
	}
	describe_bound(fd, sp);
	return fd;
}

void serve_spec_unlink(const struct listen_spec *sp)
{
	const struct sockaddr_un *a = (const struct sockaddr_un *)&sp->addr;
	if (sp->family == AF_UNIX && a->sun_path[0] == '/')
		unlink(a->sun_path);
}
