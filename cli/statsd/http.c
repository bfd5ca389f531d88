/* kite statsd: GET /metrics. A rendered page is shared by every scrape
 * that wants it while it is fresh (the same flush, at most
 * HTTP_PAGE_MAX_AGE_MS old, since health counters move between flushes):
 * a crowd of scrapers costs one render and one copy of the text, not one
 * each. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "cli.h"
#include "event_loop.h"
#include "http.h"
#include "net.h"

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

int statsd_http_open(struct statsd_http *h, const char *addr, int epfd,
		     uint32_t listen_tag, uint32_t conn_tag)
{
	h->listen_fd = -1;
	h->epfd = epfd;
	h->conn_tag = conn_tag;
	if (!strcmp(addr, "off"))
		return 0;
	if ((h->listen_fd = statsd_bind_inet("http", addr, SOCK_STREAM, 0)) < 0)
		return -1;
	event_watch(epfd, h->listen_fd, EPOLLIN, EVENT_DATA(listen_tag, 0));
	return 0;
}

static void page_release(struct http_page *p)
{
	if (p && --p->refs == 0) {
		statsd_buf_free(&p->buf);
		free(p);
	}
}

/* The page to answer with: the newest, unless a flush came since or it is
 * older than HTTP_PAGE_MAX_AGE_MS. */
static struct http_page *page_get(struct statsd_http *h, struct statsd_table *t)
{
	struct statsd_health *health = statsd_table_health(t);
	int64_t now = now_ms();
	struct http_page *p = h->page;
	if (!p || p->flushes != health->flushes || now - p->rendered > HTTP_PAGE_MAX_AGE_MS) {
		p = calloc(1, sizeof *p);
		if (!p)
			return NULL;
		p->refs = 1; /* our own hold */
		p->flushes = health->flushes;
		p->rendered = now;
		statsd_prometheus_render(t, &p->buf);
		if (p->buf.oom) {
			page_release(p);
			return NULL;
		}
		page_release(h->page);
		h->page = p;
	}
	p->refs++;
	return p;
}

static void conn_close(struct statsd_http *h, int i)
{
	struct http_conn *c = h->conns[i];
	close(c->fd); /* also leaves the epoll set */
	page_release(c->page);
	statsd_buf_free(&c->body);
	free(c);
	h->conns[i] = NULL;
}

/* A free connection slot. When all are taken, the oldest connection that
 * has not sent a whole request gives its slot up (counted as refused):
 * idle connections, however many, cannot lock a scraper out. -1 when
 * every connection is being answered. */
static int free_slot(struct statsd_http *h, struct statsd_health *health)
{
	int oldest = -1;
	for (int i = 0; i < HTTP_MAX_CONNS; i++) {
		struct http_conn *c = h->conns[i];
		if (!c)
			return i;
		if (!c->responding && (oldest < 0 || c->since < h->conns[oldest]->since))
			oldest = i;
	}
	if (oldest >= 0) {
		health->http_refused++;
		conn_close(h, oldest);
	}
	return oldest;
}

void statsd_http_accept(struct statsd_http *h, struct statsd_table *t)
{
	struct statsd_health *health = statsd_table_health(t);
	for (;;) {
		int fd = accept4(h->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		int i = free_slot(h, health);
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

static void respond(struct statsd_http *h, struct statsd_table *t, int i, int code,
		    const char *reason)
{
	struct http_conn *c = h->conns[i];
	if (code == 200)
		c->page = page_get(h, t);
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
	event_rewatch(h->epfd, c->fd, EPOLLOUT, EVENT_DATA(h->conn_tag, i));
}

void statsd_http_io(struct statsd_http *h, struct statsd_table *t, int i,
		    uint32_t events)
{
	struct http_conn *c = h->conns[i];
	if (!c)
		return;
	struct statsd_health *health = statsd_table_health(t);
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
			respond(h, t, i, 200, "OK");
		else if (strncmp(c->req, "GET ", 4))
			respond(h, t, i, 405, "Method Not Allowed");
		else
			respond(h, t, i, 404, "Not Found");
		return;
	}
	if (events & (EPOLLERR | EPOLLHUP)) {
		conn_close(h, i);
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
			conn_close(h, i);
			return;
		}
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno != EAGAIN && errno != EINTR)
				conn_close(h, i);
			return;
		}
		c->sent += (size_t)w;
	}
}

void statsd_http_reap(struct statsd_http *h, int64_t now)
{
	for (int i = 0; i < HTTP_MAX_CONNS; i++)
		if (h->conns[i] && now - h->conns[i]->since > HTTP_IDLE_MS)
			conn_close(h, i);
}

void statsd_http_close(struct statsd_http *h)
{
	for (int i = 0; i < HTTP_MAX_CONNS; i++)
		if (h->conns[i])
			conn_close(h, i);
	page_release(h->page);
	h->page = NULL;
	if (h->listen_fd >= 0)
		close(h->listen_fd);
	h->listen_fd = -1;
}
