/* kite statsd: each flush published on a local kite channel. */
#ifndef KITE_CLI_STATSD_CHANNEL_H
#define KITE_CLI_STATSD_CHANNEL_H

#include "kite.h"
#include "statsd.h"

struct statsd_channel {
	kite *kh;              /* NULL: not open (off, or kite_open failed) */
	struct statsd_buf out; /* the message being built */
};

/* Open the kite handle when name is not "off" and it is not open yet;
 * a failure is logged and leaves the channel closed. */
void statsd_channel_open(struct statsd_channel *ch, const char *name);

/* Publish the last flush's Graphite lines (layout o, unix time ts) as one
 * message on name; counted in t's health. */
void statsd_channel_publish(struct statsd_channel *ch, struct statsd_table *t,
			    const char *name, const struct statsd_graphite_opts *o,
			    int64_t ts);

void statsd_channel_close(struct statsd_channel *ch);

#endif
