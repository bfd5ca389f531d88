/* kite statsd: the Prometheus endpoint, GET /metrics over HTTP/1.1.
 * Nothing a client does can block the loop: sockets are non-blocking,
 * requests are capped in size, connections in number and idle time; at the
 * cap a new connection takes the slot of the oldest one still silent. */
#ifndef KITE_CLI_STATSD_HTTP_H
#define KITE_CLI_STATSD_HTTP_H

#include <stdint.h>

#include "statsd.h"

#define HTTP_MAX_CONNS 64
#define HTTP_REQ_MAX 8192
#define HTTP_IDLE_MS 10000
/* A /metrics page is rendered again after a flush or after this long. */
#define HTTP_PAGE_MAX_AGE_MS 1000

struct http_page;
struct http_conn;

struct statsd_http {
	int listen_fd;             /* -1: --http off */
	int epfd;                  /* the loop's epoll set */
	uint32_t conn_tag;         /* epoll tag of connections (index in the low half) */
	struct http_conn *conns[HTTP_MAX_CONNS];
	struct http_page *page;    /* the newest page, if any */
};

/* Listen on addr ("off": nothing) and watch the listener in epfd under
 * EVENT_DATA(listen_tag, 0), connections under conn_tag; 0 or -1 (logged). */
int statsd_http_open(struct statsd_http *h, const char *addr, int epfd,
		     uint32_t listen_tag, uint32_t conn_tag);

/* The listener is readable: accept what waits. */
void statsd_http_accept(struct statsd_http *h, struct statsd_table *t);

/* Connection i is ready (events from epoll): read the request, answer. */
void statsd_http_io(struct statsd_http *h, struct statsd_table *t, int i,
		    uint32_t events);

/* Close connections older than HTTP_IDLE_MS. */
void statsd_http_reap(struct statsd_http *h, int64_t now);

void statsd_http_close(struct statsd_http *h);

#endif
