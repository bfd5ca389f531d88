/* kite statsd: one message per flush, the flush's Graphite lines, on one
 * channel: a channel per series would cost a ring per series. Any process
 * of the machine can listen with `kite sub 'stats.>'`; the publisher never
 * waits for it. */
#include <errno.h>
#include <string.h>

#include "channel.h"
#include "net.h"

void statsd_channel_open(struct statsd_channel *ch, const char *name)
{
	if (!strcmp(name, "off") || ch->kh)
		return;
	int rc = kite_open(&ch->kh, NULL);
	if (rc) {
		statsd_log("channel: cannot open kite: %s; flushes are not published",
			   kite_strerror(rc));
		ch->kh = NULL;
	}
}

void statsd_channel_publish(struct statsd_channel *ch, struct statsd_table *t,
			    const char *name, const struct statsd_graphite_opts *o,
			    int64_t ts)
{
	if (!ch->kh || !strcmp(name, "off"))
		return;
	struct statsd_health *h = statsd_table_health(t);
	ch->out.len = 0;
	ch->out.oom = false;
	statsd_graphite_render(t, o, ts, &ch->out);
	int64_t rc = ch->out.oom ? -ENOMEM : kite_publish(ch->kh, name, ch->out.p, ch->out.len);
	if (rc < 0) {
		h->channel_failures++;
		statsd_log("channel: publish on %s: %s", name, kite_strerror((int)rc));
	} else {
		h->channel_messages++;
	}
}

void statsd_channel_close(struct statsd_channel *ch)
{
	kite_close(ch->kh);
	ch->kh = NULL;
	statsd_buf_free(&ch->out);
}
