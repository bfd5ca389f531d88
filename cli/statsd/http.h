/* kite statsd: the Prometheus endpoint, GET /metrics over HTTP/1.1.
 * Nothing a client does can block the loop: sockets are non-blocking,
 * requests are capped in size and time, connections in number, answers
 * must keep moving; at the cap a new connection takes the slot of the
 * oldest one still silent, or else of the oldest answer older than
 * HTTP_IDLE_MS. The page is streamed from the table (chunked), a slice at
 * a time as the socket drains, so neither its size nor a slow reader holds
 * the loop. */
#ifndef KITE_CLI_STATSD_HTTP_H
#define KITE_CLI_STATSD_HTTP_H

#include <stdint.h>

#include "statsd.h"

#define HTTP_MAX_CONNS 64
#define HTTP_REQ_MAX 8192
/* A request must be whole this long after the connection (Prometheus's
 * default scrape timeout), and an answer must make progress: at least
 * HTTP_PROGRESS_BYTES taken by the reader in each HTTP_IDLE_MS from the
 * start of the answer (about 6.5 KB/s; checked at the end of each such
 * period, so a reader that stops is cut 10 to 20 s later). The page a
 * reader cut off was sent ends without its last chunk, so it is seen as
 * cut; a slow but steady reader gets the whole page, however long it
 * takes. */
#define HTTP_IDLE_MS 10000
#define HTTP_PROGRESS_BYTES 65536
/* Bytes of the page rendered at a time, and at most per event-loop turn
 * for one connection. */
#define HTTP_SLICE 65536
#define HTTP_TURN_BYTES (2 * HTTP_SLICE)

struct http_conn;

struct statsd_http {
	int listen_fd;             /* -1: --http off */
	int epfd;                  /* the loop's epoll set */
	uint32_t conn_tag;         /* epoll tag of connections (index in the low half) */
	struct http_conn *conns[HTTP_MAX_CONNS];
	struct statsd_table *t;    /* the table pages are rendered from */
};

/* Listen on addr ("off": nothing) and watch the listener in epfd under
 * EVENT_DATA(listen_tag, 0), connections under conn_tag; pages come from
 * t. 0 or -1 (logged). */
int statsd_http_open(struct statsd_http *h, const char *addr, int epfd,
		     uint32_t listen_tag, uint32_t conn_tag, struct statsd_table *t);

/* The listener is readable: accept what waits. */
void statsd_http_accept(struct statsd_http *h);

/* Connection i is ready (events from epoll): read the request, answer. */
void statsd_http_io(struct statsd_http *h, int i, uint32_t events);

/* Close connections whose request or answer is stuck (HTTP_IDLE_MS). */
void statsd_http_reap(struct statsd_http *h, int64_t now);

void statsd_http_close(struct statsd_http *h);

#endif
