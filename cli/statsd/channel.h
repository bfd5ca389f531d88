/* kite statsd: each flush published on a local kite channel. */
#ifndef KITE_CLI_STATSD_CHANNEL_H
#define KITE_CLI_STATSD_CHANNEL_H

#include "kite.h"
#include "statsd.h"

/* A flush's lines go out in messages of about CHANNEL_PART bytes, whole
 * lines each, rendered CHANNEL_TURN bytes per event-loop turn: a flush
 * smaller than a part is one message, a flush of a million series is a
 * hundred or so, neither its text nor its rendering is ever held whole,
 * and no turn renders more than a few milliseconds' worth. */
#define CHANNEL_PART (1u << 20)
#define CHANNEL_TURN (128u << 10)

struct statsd_channel {
	kite *kh;              /* NULL: not open (off, or kite_open failed) */
	struct statsd_buf out; /* the message being built */
	/* the flush being published */
	struct statsd_table *t;
	struct statsd_cursor cur;
	struct statsd_graphite_opts opts;
	char prefix[64];
	char name[201];
	int64_t ts;
};

/* Open the kite handle when name is not "off" and it is not open yet;
 * a failure is logged and leaves the channel closed. */
void statsd_channel_open(struct statsd_channel *ch, const char *name);

/* Start publishing the last flush's Graphite lines (layout o, unix time
 * ts) on name, and publish the first message; counted in t's health. */
void statsd_channel_publish(struct statsd_channel *ch, struct statsd_table *t,
			    const char *name, const struct statsd_graphite_opts *o,
			    int64_t ts);

/* True while a flush has messages left to publish. */
bool statsd_channel_busy(const struct statsd_channel *ch);

/* Render one event-loop turn's share of the flush's lines; publish the
 * message once it holds CHANNEL_PART bytes or the flush's last line. */
void statsd_channel_pump(struct statsd_channel *ch);

/* Before a flush: publish what is left of the last one. */
void statsd_channel_settle(struct statsd_channel *ch);

void statsd_channel_close(struct statsd_channel *ch);

#endif
