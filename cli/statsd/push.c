/* kite statsd: Graphite plaintext over TCP, non-blocking. */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>

#include "cli.h"
#include "event_loop.h"
#include "net.h"
#include "push.h"

int statsd_push_configure(struct statsd_push *p, const struct statsd_config *c,
			  int epfd, uint64_t ev_data, struct statsd_health *health)
{
	p->epfd = epfd;
	p->ev_data = ev_data;
	p->health = health;
	p->timeout_ms = c->graphite_timeout_ms;
	snprintf(p->target, sizeof p->target, "%s", c->graphite);
	p->addr_len = 0;
	if (!strcmp(c->graphite, "off"))
		return 0;
	if (statsd_parse_hostport(c->graphite, &p->addr, &p->addr_len) < 0) {
		statsd_log("graphite: bad address '%s' (want HOST:PORT)", c->graphite);
		p->addr_len = 0;
		return -1;
	}
	return 0;
}

static void push_failed(struct statsd_push *p, const char *why)
{
	if (!p->failing)
		statsd_log("graphite %s: %s (retrying after each flush; logged once)",
			   p->target, why);
	p->failing = true;
}

void statsd_push_close(struct statsd_push *p, bool failed, bool free_buf)
{
	if (p->fd >= 0) {
		epoll_ctl(p->epfd, EPOLL_CTL_DEL, p->fd, NULL);
		close(p->fd);
	}
	p->fd = -1;
	p->connecting = false;
	/* The peer may hold the start of a line and never its end: the next
	 * connection begins with that line whole, never with its tail (which
	 * carbon would store as a metric of its own). */
	while (p->sent > 0 && p->out.p[p->sent - 1] != '\n')
		p->sent--;
	if (failed)
		p->health->graphite_failures++;
	if (free_buf) {
		statsd_buf_free(&p->out);
		p->sent = 0;
		if (p->t)
			statsd_cursor_close(p->t, &p->cur);
	}
}

static void want_write(struct statsd_push *p)
{
	if (p->fd >= 0)
		event_rewatch(p->epfd, p->fd,
			      EPOLLIN | EPOLLRDHUP |
				      (p->sent < p->out.len || p->cur.open ? EPOLLOUT : 0),
			      p->ev_data);
}

static void push_connect(struct statsd_push *p)
{
	if (p->fd >= 0 || !p->addr_len)
		return;
	int fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		p->health->graphite_failures++;
		return;
	}
	int r = connect(fd, (struct sockaddr *)&p->addr, p->addr_len);
	if (r < 0 && errno != EINPROGRESS) {
		push_failed(p, strerror(errno));
		close(fd);
		p->health->graphite_failures++;
		return;
	}
	p->fd = fd;
	p->connecting = r < 0;
	p->since = now_ms();
	event_watch(p->epfd, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP, p->ev_data);
}

void statsd_push_io(struct statsd_push *p, uint32_t events)
{
	if (p->fd < 0)
		return;
	if (p->connecting) {
		int err = 0;
		socklen_t el = sizeof err;
		getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err) {
			push_failed(p, strerror(err));
			statsd_push_close(p, true, false);
			return;
		}
		p->connecting = false;
		if (p->failing)
			statsd_log("graphite %s: connected", p->target);
		p->failing = false;
	}
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
		char junk[512];
		ssize_t r = recv(p->fd, junk, sizeof junk, MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
			statsd_push_close(p, p->sent < p->out.len, false);
			return;
		}
	}
	for (size_t rendered = 0;;) {
		if (p->sent == p->out.len) {
			p->out.len = 0;
			p->sent = 0;
			if (!p->cur.open || rendered >= PUSH_TURN_BYTES)
				break;
			statsd_graphite_next(p->t, &p->cur, &p->opts, p->ts, &p->out, PUSH_SLICE);
			if (p->out.oom) {
				p->health->graphite_bytes_dropped += p->out.len;
				p->out.len = 0;
				p->out.oom = false;
			}
			rendered += p->out.len;
			continue;
		}
		ssize_t w = send(p->fd, p->out.p + p->sent, p->out.len - p->sent,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			push_failed(p, strerror(errno));
			statsd_push_close(p, true, false);
			return;
		}
		p->sent += (size_t)w;
		p->health->graphite_bytes_sent += (uint64_t)w;
	}
	want_write(p);
}

void statsd_push_settle(struct statsd_push *p)
{
	if (!p->cur.open)
		return;
	/* Drop what was sent; keep what was not. */
	if (p->sent) {
		memmove(p->out.p, p->out.p + p->sent, p->out.len - p->sent);
		p->out.len -= p->sent;
		p->sent = 0;
	}
	size_t before = p->out.len;
	statsd_graphite_next(p->t, &p->cur, &p->opts, p->ts, &p->out, SIZE_MAX);
	if (p->out.oom || p->out.len > PUSH_BUF_MAX) {
		p->health->graphite_bytes_dropped += p->out.len - before;
		p->out.len = before;
		p->out.oom = false;
	}
}

void statsd_push_flush(struct statsd_push *p, struct statsd_table *t,
		       const struct statsd_graphite_opts *o, int64_t ts)
{
	statsd_push_settle(p); /* lines of an earlier flush come first */
	if (!p->addr_len)
		return;
	p->t = t;
	snprintf(p->prefix, sizeof p->prefix, "%s", o->prefix);
	p->opts = (struct statsd_graphite_opts){.prefix = p->prefix, .legacy = o->legacy};
	p->ts = ts;
	statsd_cursor_open(t, &p->cur);
	if (p->fd >= 0 && p->connecting && now_ms() - p->since > p->timeout_ms) {
		push_failed(p, "connect timed out");
		statsd_push_close(p, true, false);
	}
	if (p->fd < 0)
		push_connect(p);
	else if (!p->connecting)
		statsd_push_io(p, 0);
	want_write(p);
}

void statsd_push_finish(struct statsd_push *p)
{
	int64_t deadline = now_ms() + p->timeout_ms;
	while (p->addr_len && (p->out.len > p->sent || p->cur.open) && now_ms() < deadline) {
		if (p->fd < 0) {
			/* Retry a refused connection ten times a second. */
			if (p->failing)
				nanosleep(&(struct timespec){0, 100000000}, NULL);
			push_connect(p);
			if (p->fd < 0)
				continue;
		}
		struct pollfd pfd = {.fd = p->fd, .events = POLLIN | POLLOUT | POLLRDHUP};
		if (poll(&pfd, 1, 100) > 0)
			statsd_push_io(p, (uint32_t)pfd.revents);
	}
	/* Count what is left, rendering it a slice at a time, not whole. */
	size_t left = p->out.len - p->sent;
	while (p->cur.open) {
		size_t before = p->out.len;
		statsd_graphite_next(p->t, &p->cur, &p->opts, p->ts, &p->out, PUSH_SLICE);
		left += p->out.len - before;
		p->out.len = before;
		p->out.oom = false;
	}
	if (left) {
		p->health->graphite_bytes_dropped += left;
		statsd_log("graphite: %zu bytes not delivered before exit", left);
	}
}
