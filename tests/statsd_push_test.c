/* kite statsd: the Graphite push over a connection that breaks with data
 * unsent. The next connection must begin at the start of a line: carbon
 * stores the tail of a line as a metric of its own. Real TCP on 127.0.0.1. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "statsd/push.h"
#include "statsd/statsd.h"

static int listener(char *addr, size_t cap)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	int small = 4096; /* inherited by accepted sockets: fills quickly */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof sa;
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, len), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	snprintf(addr, cap, "127.0.0.1:%u", ntohs(sa.sin_port));
	return fd;
}

/* Drive the push until it stops for a full socket (or sends everything). */
static void drive(struct statsd_push *p)
{
	for (int i = 0; i < 200 && p->fd >= 0 && (p->sent < p->out.len || p->cur.open); i++) {
		struct pollfd pfd = {.fd = p->fd, .events = POLLOUT};
		if (poll(&pfd, 1, 20) <= 0)
			break;
		statsd_push_io(p, EPOLLOUT);
	}
}

/* A table of n counters PREFIX%06d (value i % 7, or 1), flushed, with
 * its Graphite push to addr configured in *c. */
static struct statsd_table *flushed_table(struct statsd_config *c, const char *addr,
					  const char *prefix, int n, bool vary)
{
	struct statsd_table *t = statsd_table_new(3);
	assert_non_null(t);
	statsd_config_defaults(c);
	snprintf(c->graphite, sizeof c->graphite, "%s", addr);
	statsd_table_configure(t, c);
	char line[64];
	for (int i = 0; i < n; i++) {
		int len = snprintf(line, sizeof line, "%s%06d:%d|c", prefix, i, vary ? i % 7 : 1);
		statsd_table_add_packet(t, line, (size_t)len);
	}
	statsd_table_flush(t, 1000);
	return t;
}

static void test_reconnect_whole_lines(void **state)
{
	(void)state;
	char addr[64];
	int lfd = listener(addr, sizeof addr);
	struct statsd_config c;
	/* Enough lines (some MB) that the kernel's buffers hold only part. */
	struct statsd_table *t = flushed_table(&c, addr, "push.series", 100000, true);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	assert_true(ep >= 0);
	struct statsd_push p = {.fd = -1};
	assert_int_equal(statsd_push_configure(&p, &c, ep, 1, statsd_table_health(t)), 0);
	struct statsd_graphite_opts o = {.prefix = "stats"};
	statsd_push_flush(&p, t, &o, 1700000000);
	int conn = accept(lfd, NULL, NULL);
	assert_true(conn >= 0);
	drive(&p);
	/* Stalled mid-line: read a few odd-sized bites until that is so. */
	char junk[1000];
	for (int i = 0; i < 20000 && (!p.sent || p.out.p[p.sent - 1] == '\n'); i++) {
		assert_true(recv(conn, junk, 999, 0) > 0);
		statsd_push_io(&p, EPOLLOUT);
	}
	assert_true(p.sent > 0 && p.sent < p.out.len);
	assert_true(p.out.p[p.sent - 1] != '\n');
	/* The peer resets the connection with the line half sent. */
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	setsockopt(conn, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(conn);
	for (int i = 0; i < 100 && p.fd >= 0; i++) {
		poll(&(struct pollfd){.fd = p.fd, .events = POLLIN}, 1, 20);
		statsd_push_io(&p, EPOLLIN | EPOLLOUT);
	}
	assert_int_equal(p.fd, -1);
	assert_true(statsd_table_health(t)->graphite_failures >= 1);

	/* The next flush connects again: its first bytes start a line. */
	statsd_push_settle(&p); /* as the loop does before each flush */
	statsd_table_flush(t, 1000);
	statsd_push_flush(&p, t, &o, 1700000001);
	conn = accept(lfd, NULL, NULL);
	assert_true(conn >= 0);
	drive(&p);
	char first[64] = {0};
	size_t got = 0;
	while (got < 10) {
		poll(&(struct pollfd){.fd = conn, .events = POLLIN}, 1, 1000);
		ssize_t r = recv(conn, first + got, sizeof first - 1 - got, MSG_DONTWAIT);
		if (r > 0)
			got += (size_t)r;
		drive(&p);
	}
	if (strncmp(first, "stats.", 6))
		fail_msg("the new connection starts mid-line: '%.40s'", first);
	close(conn);
	statsd_push_close(&p, false, true);
	close(ep);
	close(lfd);
	statsd_table_free(t);
}

/* A flush of 100,000 series (some MB of lines) to a peer that reads
 * everything: the push renders it a slice at a time as the socket drains,
 * so its queue never holds more than a few slices, and every line
 * arrives, each whole, once. */
static void test_streamed_not_held(void **state)
{
	(void)state;
	char addr[64];
	int lfd = listener(addr, sizeof addr);
	struct statsd_config c;
	enum { SERIES = 100000 };
	struct statsd_table *t = flushed_table(&c, addr, "stream.series", SERIES, false);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct statsd_push p = {.fd = -1};
	assert_int_equal(statsd_push_configure(&p, &c, ep, 1, statsd_table_health(t)), 0);
	struct statsd_graphite_opts o = {.prefix = "stats"};
	statsd_push_flush(&p, t, &o, 1700000000);
	int conn = accept(lfd, NULL, NULL);
	assert_true(conn >= 0);
	size_t total = 0, most = 0, counts = 0, cut = 0;
	char buf[1 << 16], carry[256];
	size_t carried = 0;
	for (int idle = 0; idle < 50;) {
		statsd_push_io(&p, EPOLLOUT);
		if (p.out.cap > most)
			most = p.out.cap;
		ssize_t r = recv(conn, buf, sizeof buf, MSG_DONTWAIT);
		if (r <= 0) {
			idle += !p.cur.open && p.sent == p.out.len;
			poll(&(struct pollfd){.fd = conn, .events = POLLIN}, 1, 10);
			continue;
		}
		total += (size_t)r;
		/* Count the .count lines; every line must be whole. */
		for (ssize_t k = 0; k < r; k++) {
			if (carried < sizeof carry - 1)
				carry[carried++] = buf[k];
			if (buf[k] != '\n')
				continue;
			carry[carried] = 0;
			if (strstr(carry, ".count 1 1700000000\n"))
				counts++;
			else if (strncmp(carry, "stats.", 6))
				cut++;
			carried = 0;
		}
	}
	assert_int_equal(counts, SERIES);
	assert_int_equal(cut, 0);
	assert_true(total > 4u << 20);
	if (most > 4 * PUSH_SLICE)
		fail_msg("the push held %zu bytes for a %zu-byte flush", most, total);
	close(conn);
	statsd_push_close(&p, false, true);
	close(ep);
	close(lfd);
	statsd_table_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reconnect_whole_lines),
		cmocka_unit_test(test_streamed_not_held),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
