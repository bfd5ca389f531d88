/* The collector's event loop: one thread, one epoll set holding
 *   the datagram sockets (UDP with SO_REUSEPORT, Unix abstract and path),
 *     read with recvmmsg in batches; only the count it returned is used;
 *     SO_RXQ_OVFL reports the kernel's drop count with each datagram;
 *   a timerfd for the flush interval;
 *   a signalfd: SIGTERM/SIGINT drain, flush and push, then exit; SIGHUP
 *     reloads the --config file;
 *   the HTTP listener and its connections (GET /metrics);
 *   the Graphite connection (non-blocking; a full push buffer drops and
 *     counts).
 * Nothing a client sends can block the loop: every socket is non-blocking,
 * HTTP requests are capped in size, count and idle time. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/un.h>

#include "cli.h"
#include "kite.h"
#include "statsd.h"

#define BATCH 64
#define DGRAM_MAX 65536
#define MAX_DGRAM_SOCKS 3
#define MAX_HTTP 64
#define HTTP_REQ_MAX 8192
#define HTTP_IDLE_MS 10000
#define GRAPHITE_BUF_MAX (256u << 20)

enum { EV_SIGNAL = 1, EV_TIMER, EV_DGRAM, EV_HTTP_LISTEN, EV_HTTP, EV_GRAPHITE };

/* A rendered /metrics page, shared by every scrape that wants it while it
 * is fresh: a crowd of scrapers costs one render and one copy of the text,
 * not one each. */
struct http_page {
	int refs;
	uint64_t flushes; /* the flush it shows */
	int64_t rendered; /* now_ms() at rendering */
	struct statsd_buf buf;
};

struct http_conn {
	int fd;
	struct http_page *page; /* the 200 answer's body, or NULL */
	int64_t since;
	char req[HTTP_REQ_MAX];
	size_t req_len;
	char hdr[256];
	size_t hdr_len;
	struct statsd_buf body;
	size_t sent; /* over hdr then body */
	bool responding;
};

struct daemon {
	struct statsd_config cfg;
	const char *config_path;
	char **overrides;
	int n_overrides;
	struct statsd_table *t;
	int ep, sfd, tfd, http_fd;
	int dgram[MAX_DGRAM_SOCKS];
	uint32_t dgram_drops[MAX_DGRAM_SOCKS];
	int n_dgram;
	struct http_conn *http[MAX_HTTP];
	struct http_page *page; /* the newest page, if any */
	/* Graphite */
	int gfd;
	bool gconnecting;
	bool gfailing; /* logged a failure; quiet until a push succeeds */
	int64_t gsince;
	struct statsd_buf gout;
	size_t gsent;
	struct sockaddr_storage gaddr;
	socklen_t gaddr_len;
	/* kite channel */
	kite *kh;
	struct statsd_buf cout;
	ino_t unix_path_ino; /* the socket file we bound, 0 if none */
	/* recvmmsg */
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	char (*bufs)[DGRAM_MAX];
	char ctl[BATCH][CMSG_SPACE(sizeof(uint32_t))];
	int64_t last_flush;
	bool stopping;
};

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("kite statsd: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void ep_add(struct daemon *d, int fd, uint32_t events, uint32_t kind, uint32_t idx)
{
	struct epoll_event ev = {.events = events,
				 .data.u64 = ((uint64_t)kind << 32) | idx};
	epoll_ctl(d->ep, EPOLL_CTL_ADD, fd, &ev);
}

static void ep_mod(struct daemon *d, int fd, uint32_t events, uint32_t kind, uint32_t idx)
{
	struct epoll_event ev = {.events = events,
				 .data.u64 = ((uint64_t)kind << 32) | idx};
	epoll_ctl(d->ep, EPOLL_CTL_MOD, fd, &ev);
}

static void print_addr(const char *what, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	char host[INET6_ADDRSTRLEN] = "?";
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
		logmsg("%s %s:%u", what, host, ntohs(a->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
		logmsg("%s [%s]:%u", what, host, ntohs(a->sin6_port));
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

/* A UDP (datagrams) or TCP (HTTP, listening) socket bound to "HOST:PORT". */
static int open_inet(struct daemon *d, const char *what, const char *addr, int type)
{
	struct sockaddr_storage ss;
	socklen_t len;
	if (statsd_parse_hostport(addr, &ss, &len) < 0) {
		logmsg("%s: bad address '%s' (want HOST:PORT)", what, addr);
		return -1;
	}
	int fd = socket(ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		logmsg("%s: socket: %s", what, strerror(errno));
		return -1;
	}
	int one = 1;
	if (type == SOCK_DGRAM) {
		/* Several collectors may share the port; the kernel spreads
		 * packets among them. */
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
		set_rcvbuf(fd, d->cfg.rcvbuf);
	} else {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	}
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 64) < 0)) {
		logmsg("%s: bind %s: %s", what, addr, strerror(errno));
		close(fd);
		return -1;
	}
	print_addr(what, fd);
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

static int open_unix(struct daemon *d, const char *name, bool abstract)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(name);
	if (n + 2 > sizeof sa.sun_path) {
		logmsg("unix: name too long: %s", name);
		return -1;
	}
	memcpy(sa.sun_path + (abstract ? 1 : 0), name, n);
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
				    (abstract ? 1 : 0));
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		logmsg("unix: socket: %s", strerror(errno));
		return -1;
	}
	set_rcvbuf(fd, d->cfg.rcvbuf);
	if (!abstract)
		remove_stale_socket(&sa, len); /* from an earlier run; nothing else */
	if (bind(fd, (struct sockaddr *)&sa, len) < 0) {
		logmsg("unix: bind %s%s: %s", abstract ? "@" : "", name, strerror(errno));
		close(fd);
		return -1;
	}
	struct stat st;
	if (!abstract && lstat(name, &st) == 0)
		d->unix_path_ino = st.st_ino; /* what teardown may remove */
	logmsg("unix %s%s", abstract ? "@" : "", name);
	return fd;
}

/* ---- datagrams ---- */

static void read_dgrams(struct daemon *d, int i, int max_batches)
{
	int fd = d->dgram[i];
	struct statsd_health *h = statsd_table_health(d->t);
	for (int b = 0; b < max_batches; b++) {
		for (int k = 0; k < BATCH; k++) {
			d->iov[k] = (struct iovec){d->bufs[k], DGRAM_MAX};
			d->msgs[k].msg_hdr = (struct msghdr){
				.msg_iov = &d->iov[k],
				.msg_iovlen = 1,
				.msg_control = d->ctl[k],
				.msg_controllen = sizeof d->ctl[k],
			};
		}
		int n = recvmmsg(fd, d->msgs, BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		/* Only the n messages the call filled: the rest hold stale bytes. */
		for (int k = 0; k < n; k++) {
			struct msghdr *m = &d->msgs[k].msg_hdr;
			for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
				if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL &&
				    c->cmsg_len >= CMSG_LEN(sizeof(uint32_t))) {
					uint32_t drops;
					memcpy(&drops, CMSG_DATA(c), sizeof drops);
					/* A running total per socket; it wraps at 2^32. */
					h->kernel_drops += (uint32_t)(drops - d->dgram_drops[i]);
					d->dgram_drops[i] = drops;
				}
			}
			if (m->msg_flags & MSG_TRUNC) {
				h->packets++;
				h->packets_truncated++;
				continue;
			}
			statsd_table_add_packet(d->t, d->bufs[k], d->msgs[k].msg_len);
		}
		if (n < BATCH)
			return;
	}
}

/* ---- Graphite ---- */

static void graphite_failed(struct daemon *d, const char *why)
{
	if (!d->gfailing)
		logmsg("graphite %s: %s (retrying after each flush; logged once)",
		       d->cfg.graphite, why);
	d->gfailing = true;
}

static void graphite_close(struct daemon *d, bool failed)
{
	if (d->gfd >= 0) {
		epoll_ctl(d->ep, EPOLL_CTL_DEL, d->gfd, NULL);
		close(d->gfd);
	}
	d->gfd = -1;
	d->gconnecting = false;
	if (failed)
		statsd_table_health(d->t)->graphite_failures++;
}

static void graphite_want_write(struct daemon *d)
{
	if (d->gfd >= 0)
		ep_mod(d, d->gfd,
		       EPOLLIN | EPOLLRDHUP | (d->gsent < d->gout.len ? EPOLLOUT : 0),
		       EV_GRAPHITE, 0);
}

static void graphite_connect(struct daemon *d)
{
	if (d->gfd >= 0 || !d->gaddr_len)
		return;
	int fd = socket(d->gaddr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		statsd_table_health(d->t)->graphite_failures++;
		return;
	}
	int r = connect(fd, (struct sockaddr *)&d->gaddr, d->gaddr_len);
	if (r < 0 && errno != EINPROGRESS) {
		graphite_failed(d, strerror(errno));
		close(fd);
		statsd_table_health(d->t)->graphite_failures++;
		return;
	}
	d->gfd = fd;
	d->gconnecting = r < 0;
	d->gsince = now_ms();
	ep_add(d, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP, EV_GRAPHITE, 0);
}

static void graphite_io(struct daemon *d, uint32_t events)
{
	struct statsd_health *h = statsd_table_health(d->t);
	if (d->gconnecting) {
		int err = 0;
		socklen_t el = sizeof err;
		getsockopt(d->gfd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err) {
			graphite_failed(d, strerror(err));
			graphite_close(d, true);
			return;
		}
		d->gconnecting = false;
		if (d->gfailing)
			logmsg("graphite %s: connected", d->cfg.graphite);
		d->gfailing = false;
	}
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
		char junk[512];
		ssize_t r = recv(d->gfd, junk, sizeof junk, MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
			graphite_close(d, d->gsent < d->gout.len);
			return;
		}
	}
	while (d->gsent < d->gout.len) {
		ssize_t w = send(d->gfd, d->gout.p + d->gsent, d->gout.len - d->gsent,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			graphite_failed(d, strerror(errno));
			graphite_close(d, true);
			return;
		}
		d->gsent += (size_t)w;
		h->graphite_bytes_sent += (uint64_t)w;
	}
	if (d->gsent == d->gout.len) {
		d->gout.len = 0;
		d->gsent = 0;
	}
	graphite_want_write(d);
}

static void graphite_push(struct daemon *d, int64_t ts)
{
	if (!d->gaddr_len)
		return;
	struct statsd_health *h = statsd_table_health(d->t);
	/* Drop what was sent; keep what was not. */
	if (d->gsent) {
		memmove(d->gout.p, d->gout.p + d->gsent, d->gout.len - d->gsent);
		d->gout.len -= d->gsent;
		d->gsent = 0;
	}
	size_t before = d->gout.len;
	statsd_graphite_render(d->t, d->cfg.graphite_prefix, ts, &d->gout);
	if (d->gout.oom || d->gout.len > GRAPHITE_BUF_MAX) {
		h->graphite_bytes_dropped += d->gout.len - before;
		d->gout.len = before;
		d->gout.oom = false;
	}
	if (d->gfd >= 0 && d->gconnecting && now_ms() - d->gsince > d->cfg.graphite_timeout_ms) {
		graphite_failed(d, "connect timed out");
		graphite_close(d, true);
	}
	if (d->gfd < 0)
		graphite_connect(d);
	else if (!d->gconnecting)
		graphite_io(d, 0);
	graphite_want_write(d);
}

static int graphite_configure(struct daemon *d)
{
	if (!strcmp(d->cfg.graphite, "off")) {
		d->gaddr_len = 0;
		return 0;
	}
	if (statsd_parse_hostport(d->cfg.graphite, &d->gaddr, &d->gaddr_len) < 0) {
		logmsg("graphite: bad address '%s' (want HOST:PORT)", d->cfg.graphite);
		d->gaddr_len = 0;
		return -1;
	}
	return 0;
}

/* At SIGTERM, read at most this many batches still queued: a sender that
 * never stops must not hold off the exit. */
#define SHUTDOWN_BATCHES 4096
/* A /metrics page is rendered again after a flush or after this long. */
#define PAGE_MAX_AGE_MS 1000

/* ---- kite channel ---- */

/* One message per flush, the flush's Graphite lines, on one channel: a
 * channel per series would cost a ring per series. Any machine process can
 * listen with `kite sub 'stats.>'`; the publisher never waits for it. */
static void channel_open(struct daemon *d)
{
	if (!strcmp(d->cfg.channel, "off") || d->kh)
		return;
	int rc = kite_open(&d->kh, NULL);
	if (rc) {
		logmsg("channel: cannot open kite: %s; flushes are not published",
		       kite_strerror(rc));
		d->kh = NULL;
	}
}

static void channel_publish(struct daemon *d, int64_t ts)
{
	if (!d->kh || !strcmp(d->cfg.channel, "off"))
		return;
	struct statsd_health *h = statsd_table_health(d->t);
	d->cout.len = 0;
	d->cout.oom = false;
	statsd_graphite_render(d->t, d->cfg.graphite_prefix, ts, &d->cout);
	int64_t rc = d->cout.oom ? -ENOMEM
				 : kite_publish(d->kh, d->cfg.channel, d->cout.p, d->cout.len);
	if (rc < 0) {
		h->channel_failures++;
		logmsg("channel: publish on %s: %s", d->cfg.channel, kite_strerror((int)rc));
	} else {
		h->channel_messages++;
	}
}

/* ---- flush ---- */

static void flush(struct daemon *d)
{
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	statsd_table_flush(d->t, d->cfg.flush_ms);
	int64_t ts = (int64_t)time(NULL);
	graphite_push(d, ts);
	channel_publish(d, ts);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	struct statsd_health *h = statsd_table_health(d->t);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	h->flush_seconds_last = s;
	h->flush_seconds_total += s;
}

static void arm_timer(struct daemon *d)
{
	struct itimerspec its = {
		.it_interval = {d->cfg.flush_ms / 1000, (d->cfg.flush_ms % 1000) * 1000000},
	};
	its.it_value = its.it_interval;
	timerfd_settime(d->tfd, 0, &its, NULL);
}

/* ---- HTTP ---- */

static void page_release(struct http_page *p)
{
	if (p && --p->refs == 0) {
		statsd_buf_free(&p->buf);
		free(p);
	}
}

/* The page to answer with: the newest, unless a flush came since or it is
 * older than PAGE_MAX_AGE_MS (health counters move between flushes). */
static struct http_page *page_get(struct daemon *d)
{
	struct statsd_health *h = statsd_table_health(d->t);
	int64_t now = now_ms();
	struct http_page *p = d->page;
	if (!p || p->flushes != h->flushes || now - p->rendered > PAGE_MAX_AGE_MS) {
		p = calloc(1, sizeof *p);
		if (!p)
			return NULL;
		p->refs = 1; /* the daemon's own hold */
		p->flushes = h->flushes;
		p->rendered = now;
		statsd_prometheus_render(d->t, &p->buf);
		if (p->buf.oom) {
			page_release(p);
			return NULL;
		}
		page_release(d->page);
		d->page = p;
	}
	p->refs++;
	return p;
}

static void http_close(struct daemon *d, int i)
{
	struct http_conn *c = d->http[i];
	close(c->fd); /* also leaves the epoll set */
	page_release(c->page);
	statsd_buf_free(&c->body);
	free(c);
	d->http[i] = NULL;
}

static void http_accept(struct daemon *d)
{
	struct statsd_health *h = statsd_table_health(d->t);
	for (;;) {
		int fd = accept4(d->http_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		int i = 0;
		while (i < MAX_HTTP && d->http[i])
			i++;
		struct http_conn *c = i < MAX_HTTP ? calloc(1, sizeof *c) : NULL;
		if (!c) {
			h->http_refused++;
			close(fd);
			continue;
		}
		c->fd = fd;
		c->since = now_ms();
		d->http[i] = c;
		ep_add(d, fd, EPOLLIN | EPOLLRDHUP, EV_HTTP, (uint32_t)i);
	}
}

static void http_respond(struct daemon *d, int i, int code, const char *reason)
{
	struct http_conn *c = d->http[i];
	if (code == 200)
		c->page = page_get(d);
	else
		statsd_buf_printf(&c->body, "%d %s\n", code, reason);
	if (code == 200 ? !c->page : c->body.oom) {
		statsd_buf_free(&c->body);
		code = 500;
		reason = "Out of memory";
		statsd_buf_printf(&c->body, "500 out of memory\n");
	}
	c->hdr_len = (size_t)snprintf(c->hdr, sizeof c->hdr,
				      "HTTP/1.1 %d %s\r\n"
				      "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
				      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
				      code, reason, c->page ? c->page->buf.len : c->body.len);
	c->responding = true;
	ep_mod(d, c->fd, EPOLLOUT, EV_HTTP, (uint32_t)i);
}

static void http_io(struct daemon *d, int i, uint32_t events)
{
	struct http_conn *c = d->http[i];
	if (!c)
		return;
	struct statsd_health *h = statsd_table_health(d->t);
	if (!c->responding) {
		ssize_t r = recv(c->fd, c->req + c->req_len, sizeof c->req - 1 - c->req_len, 0);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
			http_close(d, i);
			return;
		}
		if (r < 0)
			return;
		c->req_len += (size_t)r;
		c->req[c->req_len] = 0;
		if (!strstr(c->req, "\r\n\r\n") && !strstr(c->req, "\n\n")) {
			if (c->req_len == sizeof c->req - 1) {
				h->http_refused++;
				http_close(d, i);
			}
			return;
		}
		h->http_requests++;
		if (!strncmp(c->req, "GET /metrics ", 13) || !strncmp(c->req, "GET /metrics?", 13))
			http_respond(d, i, 200, "OK");
		else if (strncmp(c->req, "GET ", 4))
			http_respond(d, i, 405, "Method Not Allowed");
		else
			http_respond(d, i, 404, "Not Found");
		return;
	}
	if (events & (EPOLLERR | EPOLLHUP)) {
		http_close(d, i);
		return;
	}
	for (;;) {
		struct iovec iov[2];
		int n = 0;
		if (c->sent < c->hdr_len)
			iov[n++] = (struct iovec){c->hdr + c->sent, c->hdr_len - c->sent};
		size_t boff = c->sent > c->hdr_len ? c->sent - c->hdr_len : 0;
		const struct statsd_buf *body = c->page ? &c->page->buf : &c->body;
		if (boff < body->len)
			iov[n++] = (struct iovec){body->p + boff, body->len - boff};
		if (!n) {
			http_close(d, i);
			return;
		}
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno != EAGAIN && errno != EINTR)
				http_close(d, i);
			return;
		}
		c->sent += (size_t)w;
	}
}

static void http_reap(struct daemon *d, int64_t now)
{
	for (int i = 0; i < MAX_HTTP; i++)
		if (d->http[i] && now - d->http[i]->since > HTTP_IDLE_MS)
			http_close(d, i);
}

/* ---- configuration reload ---- */

static int build_config(struct statsd_config *c, const char *path, char **ov, int n_ov)
{
	char err[512];
	statsd_config_defaults(c);
	if (path && statsd_config_load(c, path, err, sizeof err) < 0) {
		logmsg("%s", err);
		return -1;
	}
	for (int i = 0; i + 1 < n_ov; i += 2)
		if (statsd_config_set(c, ov[i], ov[i + 1], err, sizeof err) < 0) {
			logmsg("%s", err);
			return -1;
		}
	return 0;
}

static void reload(struct daemon *d)
{
	struct statsd_config nc;
	if (build_config(&nc, d->config_path, d->overrides, d->n_overrides) < 0) {
		logmsg("reload failed; keeping the running configuration");
		return;
	}
	/* Listening addresses stay: rebinding would lose datagrams in flight. */
	if (strcmp(nc.udp, d->cfg.udp) || strcmp(nc.unix_name, d->cfg.unix_name) ||
	    strcmp(nc.unix_path, d->cfg.unix_path) || strcmp(nc.http, d->cfg.http) ||
	    nc.rcvbuf != d->cfg.rcvbuf)
		logmsg("reload: listening addresses and rcvbuf change only at restart");
	memcpy(nc.udp, d->cfg.udp, sizeof nc.udp);
	memcpy(nc.unix_name, d->cfg.unix_name, sizeof nc.unix_name);
	memcpy(nc.unix_path, d->cfg.unix_path, sizeof nc.unix_path);
	memcpy(nc.http, d->cfg.http, sizeof nc.http);
	nc.rcvbuf = d->cfg.rcvbuf;
	bool new_graphite = strcmp(nc.graphite, d->cfg.graphite) != 0;
	bool new_flush = nc.flush_ms != d->cfg.flush_ms;
	d->cfg = nc;
	statsd_table_configure(d->t, &d->cfg);
	if (new_flush)
		arm_timer(d);
	if (new_graphite) {
		graphite_close(d, false);
		graphite_configure(d);
		channel_open(d);
	}
	statsd_table_health(d->t)->reloads++;
	logmsg("reloaded %s", d->config_path ? d->config_path : "(no file)");
}

/* ---- the loop ---- */

static int setup(struct daemon *d)
{
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	d->sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	d->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	d->ep = epoll_create1(EPOLL_CLOEXEC);
	d->bufs = malloc((size_t)BATCH * DGRAM_MAX);
	if (d->sfd < 0 || d->tfd < 0 || d->ep < 0 || !d->bufs) {
		logmsg("setup: %s", strerror(errno));
		return -1;
	}
	ep_add(d, d->sfd, EPOLLIN, EV_SIGNAL, 0);
	ep_add(d, d->tfd, EPOLLIN, EV_TIMER, 0);
	int fd;
	if (strcmp(d->cfg.udp, "off")) {
		if ((fd = open_inet(d, "udp", d->cfg.udp, SOCK_DGRAM)) < 0)
			return -1;
		d->dgram[d->n_dgram++] = fd;
	}
	if (strcmp(d->cfg.unix_name, "off") && d->cfg.unix_name[0]) {
		if ((fd = open_unix(d, d->cfg.unix_name, true)) < 0)
			return -1;
		d->dgram[d->n_dgram++] = fd;
	}
	if (d->cfg.unix_path[0]) {
		if ((fd = open_unix(d, d->cfg.unix_path, false)) < 0)
			return -1;
		d->dgram[d->n_dgram++] = fd;
	}
	for (int i = 0; i < d->n_dgram; i++)
		ep_add(d, d->dgram[i], EPOLLIN, EV_DGRAM, (uint32_t)i);
	if (strcmp(d->cfg.http, "off")) {
		if ((d->http_fd = open_inet(d, "http", d->cfg.http, SOCK_STREAM)) < 0)
			return -1;
		ep_add(d, d->http_fd, EPOLLIN, EV_HTTP_LISTEN, 0);
	}
	if (graphite_configure(d) < 0)
		return -1;
	channel_open(d);
	arm_timer(d);
	return 0;
}

static void teardown(struct daemon *d)
{
	kite_close(d->kh);
	statsd_buf_free(&d->cout);
	for (int i = 0; i < MAX_HTTP; i++)
		if (d->http[i])
			http_close(d, i);
	page_release(d->page);
	d->page = NULL;
	for (int i = 0; i < d->n_dgram; i++)
		close(d->dgram[i]);
	if (d->cfg.unix_path[0] && d->unix_path_ino) {
		/* Ours only if it is still the socket we bound. */
		struct stat st;
		if (lstat(d->cfg.unix_path, &st) == 0 && st.st_ino == d->unix_path_ino)
			unlink(d->cfg.unix_path);
	}
	graphite_close(d, false);
	statsd_buf_free(&d->gout);
	if (d->http_fd >= 0)
		close(d->http_fd);
	if (d->ep >= 0)
		close(d->ep);
	if (d->sfd >= 0)
		close(d->sfd);
	if (d->tfd >= 0)
		close(d->tfd);
	free(d->bufs);
	statsd_table_free(d->t);
}

/* SIGTERM: read what the kernel still holds, flush it, and give the
 * Graphite push up to graphite-timeout to finish. */
static void shutdown_flush(struct daemon *d)
{
	for (int i = 0; i < d->n_dgram; i++)
		read_dgrams(d, i, SHUTDOWN_BATCHES);
	flush(d);
	int64_t deadline = now_ms() + d->cfg.graphite_timeout_ms;
	while (d->gaddr_len && d->gout.len > d->gsent && now_ms() < deadline) {
		if (d->gfd < 0) {
			/* Retry a refused connection ten times a second. */
			if (d->gfailing)
				nanosleep(&(struct timespec){0, 100000000}, NULL);
			graphite_connect(d);
			if (d->gfd < 0)
				continue;
		}
		struct epoll_event ev[8];
		int n = epoll_wait(d->ep, ev, 8, 100);
		for (int k = 0; k < n; k++)
			if ((ev[k].data.u64 >> 32) == EV_GRAPHITE && d->gfd >= 0)
				graphite_io(d, ev[k].events);
	}
	if (d->gout.len > d->gsent) {
		statsd_table_health(d->t)->graphite_bytes_dropped += d->gout.len - d->gsent;
		logmsg("graphite: %zu bytes not delivered before exit", d->gout.len - d->gsent);
	}
}

int statsd_run(const struct statsd_config *cfg, const char *config_path,
	       char **overrides, int n_overrides)
{
	struct daemon d = {.cfg = *cfg, .config_path = config_path,
			   .overrides = overrides, .n_overrides = n_overrides,
			   .ep = -1, .sfd = -1, .tfd = -1, .http_fd = -1, .gfd = -1};
	uint64_t seed = 0;
	if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != sizeof seed)
		seed = (uint64_t)now_ms() * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	d.t = statsd_table_new(seed);
	if (!d.t) {
		logmsg("out of memory");
		return EXIT_SYSTEM;
	}
	statsd_table_configure(d.t, &d.cfg);
	if (setup(&d) < 0) {
		teardown(&d);
		return EXIT_SYSTEM;
	}
	logmsg("ready, flushing every %lld ms", (long long)d.cfg.flush_ms);
	while (!d.stopping) {
		struct epoll_event ev[32];
		int n = epoll_wait(d.ep, ev, 32, 1000);
		if (n < 0 && errno != EINTR) {
			logmsg("epoll_wait: %s", strerror(errno));
			break;
		}
		for (int k = 0; k < n; k++) {
			uint32_t kind = (uint32_t)(ev[k].data.u64 >> 32);
			uint32_t idx = (uint32_t)ev[k].data.u64;
			switch (kind) {
			case EV_DGRAM:
				read_dgrams(&d, (int)idx, 16);
				break;
			case EV_TIMER: {
				uint64_t ticks;
				if (read(d.tfd, &ticks, sizeof ticks) == sizeof ticks)
					flush(&d);
				break;
			}
			case EV_SIGNAL: {
				struct signalfd_siginfo si;
				while (read(d.sfd, &si, sizeof si) == sizeof si) {
					if (si.ssi_signo == SIGHUP)
						reload(&d);
					else
						d.stopping = true;
				}
				break;
			}
			case EV_HTTP_LISTEN:
				http_accept(&d);
				break;
			case EV_HTTP:
				http_io(&d, (int)idx, ev[k].events);
				break;
			case EV_GRAPHITE:
				if (d.gfd >= 0)
					graphite_io(&d, ev[k].events);
				break;
			}
		}
		http_reap(&d, now_ms());
	}
	logmsg("stopping: final flush");
	shutdown_flush(&d);
	teardown(&d);
	return EXIT_DONE;
}
