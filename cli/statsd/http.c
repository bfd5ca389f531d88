/* kite statsd: GET /metrics. Each scrape walks the table with a cursor of
 * its own (statsd_prometheus_next): a slice of HTTP_SLICE bytes is
 * rendered when the socket has taken the last one, and one connection
 * renders at most HTTP_TURN_BYTES before the loop looks at its other
 * sockets, so a page of a million series neither sits in memory whole nor
 * stalls ingest. HTTP/1.1 clients get the page chunked, so a cut page is
 * seen as cut; HTTP/1.0 clients get it delimited by the close. A scrape
 * that spans a flush shows each series once, those sent before the flush
 * with its figures before it, the rest with the new ones; series that
 * expire before the walk reaches them are not on it, and families made
 * after it began neither (see struct statsd_cursor). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/sockios.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "cli.h"
#include "event_loop.h"
#include "http.h"
#include "net.h"

/* A chunk's size line, written before its data is known: a fixed width
 * of hex digits (leading zeros are allowed) filled in afterwards. */
#define CHUNK_HEAD "00000000\r\n"
#define CHUNK_HEAD_LEN (sizeof CHUNK_HEAD - 1)

struct http_conn {
	int fd;
	int64_t since;           /* connected */
	int64_t moved_at;        /* the answer began, or was last seen to
				    have moved HTTP_PROGRESS_BYTES */
	uint64_t moved_bytes;    /* bytes the reader had taken by moved_at */
	uint64_t sent_total;     /* bytes handed to the kernel */
	char req[HTTP_REQ_MAX];
	size_t req_len;
	struct statsd_buf out;   /* what to send: head, then the current slice */
	size_t sent;             /* bytes of out already sent */
	struct statsd_cursor cur;/* the page being streamed */
	bool responding;
	bool streaming;          /* cur is walking: more slices to come */
	bool chunked;
};

int statsd_http_open(struct statsd_http *h, const char *addr, int epfd,
		     uint32_t listen_tag, uint32_t conn_tag, struct statsd_table *t)
{
	h->listen_fd = -1;
	h->epfd = epfd;
	h->conn_tag = conn_tag;
	h->t = t;
	if (!strcmp(addr, "off"))
		return 0;
	if ((h->listen_fd = statsd_bind_inet("http", addr, SOCK_STREAM, 0)) < 0)
		return -1;
	event_watch(epfd, h->listen_fd, EPOLLIN, EVENT_DATA(listen_tag, 0));
	return 0;
}

static void conn_close(struct statsd_http *h, int i)
{
	struct http_conn *c = h->conns[i];
	close(c->fd); /* also leaves the epoll set */
	statsd_cursor_close(h->t, &c->cur);
	statsd_buf_free(&c->out);
	free(c);
	h->conns[i] = NULL;
}

/* A free connection slot. When all are taken, the oldest connection that
 * has not sent a whole request gives its slot up (counted as refused):
 * idle connections, however many, cannot lock a scraper out. Failing
 * that, the oldest answer that has lasted past HTTP_IDLE_MS (slow readers
 * may take their time only while there is room). -1 when every
 * connection is an answer younger than that. */
static int free_slot(struct statsd_http *h, struct statsd_health *health, int64_t now)
{
	int silent = -1, slow = -1;
	for (int i = 0; i < HTTP_MAX_CONNS; i++) {
		struct http_conn *c = h->conns[i];
		if (!c)
			return i;
		if (!c->responding && (silent < 0 || c->since < h->conns[silent]->since))
			silent = i;
		if (c->responding && now - c->since > HTTP_IDLE_MS &&
		    (slow < 0 || c->since < h->conns[slow]->since))
			slow = i;
	}
	int i = silent >= 0 ? silent : slow;
	if (i >= 0) {
		health->http_refused++;
		conn_close(h, i);
	}
	return i;
}

void statsd_http_accept(struct statsd_http *h)
{
	struct statsd_health *health = statsd_table_health(h->t);
	for (;;) {
		int fd = accept4(h->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		int i = free_slot(h, health, now_ms());
		struct http_conn *c = i >= 0 ? calloc(1, sizeof *c) : NULL;
		if (!c) {
			health->http_refused++;
			close(fd);
			continue;
		}
		c->fd = fd;
		c->since = now_ms();
		h->conns[i] = c;
		event_watch(h->epfd, fd, EPOLLIN | EPOLLRDHUP, EVENT_DATA(h->conn_tag, i));
	}
}

static void respond(struct statsd_http *h, int i, int code, const char *reason)
{
	struct http_conn *c = h->conns[i];
	const char *line_end = strpbrk(c->req, "\r\n");
	size_t line_len = line_end ? (size_t)(line_end - c->req) : strlen(c->req);
	/* HTTP/1.0 knows no chunks: its page ends with the connection. */
	c->chunked = code == 200 && !(line_len >= 8 && !memcmp(c->req + line_len - 8,
							       "HTTP/1.0", 8));
	statsd_buf_printf(&c->out,
			  "HTTP/1.1 %d %s\r\n"
			  "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
			  "%sConnection: close\r\n\r\n",
			  code, reason, c->chunked ? "Transfer-Encoding: chunked\r\n" : "");
	if (code == 200) {
		statsd_prometheus_start(h->t, &c->cur);
		c->streaming = true;
	} else {
		statsd_buf_printf(&c->out, "%d %s\n", code, reason);
	}
	c->responding = true;
	c->moved_at = now_ms();
	event_rewatch(h->epfd, c->fd, EPOLLOUT, EVENT_DATA(h->conn_tag, i));
}

/* The next slice of the page into c->out (sent in full before): a chunk,
 * or the last chunk and the empty one that ends the page. */
static void next_slice(struct statsd_http *h, struct http_conn *c)
{
	c->out.len = 0;
	c->sent = 0;
	if (c->chunked)
		statsd_buf_put(&c->out, CHUNK_HEAD, CHUNK_HEAD_LEN);
	bool done = statsd_prometheus_next(h->t, &c->cur, &c->out, HTTP_SLICE);
	if (c->chunked) {
		size_t data = c->out.len - CHUNK_HEAD_LEN;
		if (data) {
			char size[32];
			snprintf(size, sizeof size, "%08zx\r\n", data);
			memcpy(c->out.p, size, CHUNK_HEAD_LEN);
			statsd_buf_put(&c->out, "\r\n", 2);
		} else {
			c->out.len = 0;
		}
		if (done)
			statsd_buf_put(&c->out, "0\r\n\r\n", 5);
	}
	c->streaming = !done;
}

void statsd_http_io(struct statsd_http *h, int i, uint32_t events)
{
	struct http_conn *c = h->conns[i];
	if (!c)
		return;
	struct statsd_health *health = statsd_table_health(h->t);
	if (!c->responding) {
		ssize_t r = recv(c->fd, c->req + c->req_len, sizeof c->req - 1 - c->req_len, 0);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
			conn_close(h, i);
			return;
		}
		if (r < 0)
			return;
		c->req_len += (size_t)r;
		c->req[c->req_len] = 0;
		if (!strstr(c->req, "\r\n\r\n") && !strstr(c->req, "\n\n")) {
			if (c->req_len == sizeof c->req - 1) {
				health->http_refused++;
				conn_close(h, i);
			}
			return;
		}
		health->http_requests++;
		if (!strncmp(c->req, "GET /metrics ", 13) || !strncmp(c->req, "GET /metrics?", 13))
			respond(h, i, 200, "OK");
		else if (strncmp(c->req, "GET ", 4))
			respond(h, i, 405, "Method Not Allowed");
		else
			respond(h, i, 404, "Not Found");
		return;
	}
	if (events & (EPOLLERR | EPOLLHUP)) {
		conn_close(h, i);
		return;
	}
	for (size_t rendered = 0;;) {
		if (c->sent == c->out.len) {
			/* This turn's share rendered: the loop's other sockets
			 * come first; epoll calls again while we can write. */
			if (!c->streaming || rendered >= HTTP_TURN_BYTES) {
				if (!c->streaming)
					conn_close(h, i);
				return;
			}
			next_slice(h, c);
			if (c->out.oom) {
				/* A page with a hole is no page: cut it, unended. */
				conn_close(h, i);
				return;
			}
			rendered += c->out.len;
			continue;
		}
		ssize_t w = send(c->fd, c->out.p + c->sent, c->out.len - c->sent,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno != EAGAIN && errno != EINTR)
				conn_close(h, i);
			return;
		}
		c->sent += (size_t)w;
		c->sent_total += (uint64_t)w;
	}
}

/* Bytes of the answer the reader has taken: those handed to the kernel
 * less those still in the send queue (SIOCOUTQ: not sent or not acked).
 * What sits in the kernel is no progress: a reader that stopped leaves
 * megabytes there, and room there comes back only in large steps. */
static uint64_t taken(const struct http_conn *c)
{
	int outq = 0;
	if (ioctl(c->fd, SIOCOUTQ, &outq) < 0 || outq < 0)
		return c->moved_bytes; /* unknown: no progress seen */
	return c->sent_total - ((uint64_t)outq < c->sent_total ? (uint64_t)outq : c->sent_total);
}

/* Has c's answer stalled: less than HTTP_PROGRESS_BYTES taken in the
 * HTTP_IDLE_MS since the last mark? Otherwise a new mark is set now. */
static bool stalled(struct http_conn *c, int64_t now)
{
	if (now - c->moved_at <= HTTP_IDLE_MS)
		return false;
	uint64_t got = taken(c);
	if (got - c->moved_bytes < HTTP_PROGRESS_BYTES)
		return true;
	c->moved_bytes = got;
	c->moved_at = now;
	return false;
}

void statsd_http_reap(struct statsd_http *h, int64_t now)
{
	for (int i = 0; i < HTTP_MAX_CONNS; i++) {
		struct http_conn *c = h->conns[i];
		if (c && (c->responding ? stalled(c, now) : now - c->since > HTTP_IDLE_MS))
			conn_close(h, i);
	}
}

void statsd_http_close(struct statsd_http *h)
{
	for (int i = 0; i < HTTP_MAX_CONNS; i++)
		if (h->conns[i])
			conn_close(h, i);
	if (h->listen_fd >= 0)
		close(h->listen_fd);
	h->listen_fd = -1;
}
