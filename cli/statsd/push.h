/* kite statsd: the Graphite push. After each flush the Graphite lines go
 * out over one non-blocking TCP connection, made again when it breaks.
 * They are rendered from the table a slice (PUSH_SLICE bytes) at a time as
 * the connection drains, so a million series are never held as text while
 * Graphite keeps up; what is not sent when the next flush comes is
 * rendered into the queue then (the figures are about to change), which
 * holds up to PUSH_BUF_MAX bytes (beyond, the flush's remaining lines are
 * dropped and counted). A new connection starts at the start of a line: a
 * line cut by a broken connection is sent again whole. */
#ifndef KITE_CLI_STATSD_PUSH_H
#define KITE_CLI_STATSD_PUSH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "statsd.h"

#define PUSH_BUF_MAX (256u << 20)
#define PUSH_SLICE 65536
/* At most this much rendered per event-loop turn (a few milliseconds). */
#define PUSH_TURN_BYTES (2 * PUSH_SLICE)

struct statsd_push {
	char target[256];        /* "host:port" as configured, for the log */
	struct sockaddr_storage addr;
	socklen_t addr_len;      /* 0: --graphite off */
	int64_t timeout_ms;      /* connect, and the final push at exit */
	int epfd;                /* the loop's epoll set */
	uint64_t ev_data;        /* the connection's epoll data */
	int fd;                  /* -1: not connected */
	bool connecting;
	bool failing;            /* logged a failure; quiet until connected */
	int64_t since;           /* connect started */
	struct statsd_buf out;   /* lines not yet sent */
	size_t sent;             /* bytes of out already sent */
	struct statsd_health *health;
	/* the last flush's lines still to render */
	struct statsd_table *t;
	struct statsd_cursor cur;
	struct statsd_graphite_opts opts;
	char prefix[64];
	int64_t ts;
};

/* Set up from c (--graphite, --graphite-timeout); no connection yet.
 * 0, or -1 for a bad address (logged; the push is then off). */
int statsd_push_configure(struct statsd_push *p, const struct statsd_config *c,
			  int epfd, uint64_t ev_data, struct statsd_health *health);

/* Before a flush: render what is left of the last flush's lines into the
 * queue (up to PUSH_BUF_MAX). */
void statsd_push_settle(struct statsd_push *p);

/* After a flush: start on its lines (layout o, unix time ts) and send. */
void statsd_push_flush(struct statsd_push *p, struct statsd_table *t,
		       const struct statsd_graphite_opts *o, int64_t ts);

/* The connection is ready (events from epoll). */
void statsd_push_io(struct statsd_push *p, uint32_t events);

/* At exit: keep sending (reconnecting ten times a second) until nothing is
 * left or timeout_ms passed; what is left is dropped, counted and logged. */
void statsd_push_finish(struct statsd_push *p);

/* Drop the connection (failed: count it) and, with free_buf, the queue
 * and the lines not rendered yet. */
void statsd_push_close(struct statsd_push *p, bool failed, bool free_buf);

#endif
