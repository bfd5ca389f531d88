/* kite statsd: each flush's Graphite lines on one channel: a channel per
 * series would cost a ring per series. Any process of the machine can
 * listen with `kite sub 'stats.>'`; the publisher never waits for it. A
 * large flush is published in parts of whole lines (CHANNEL_PART), in
 * order, rendered CHANNEL_TURN bytes per event-loop turn; a reader that wants a flush whole gathers
 * messages until the timestamp on the lines changes. */
#include <errno.h>
#include <stdio.h>
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

bool statsd_channel_busy(const struct statsd_channel *ch)
{
	return ch->cur.open;
}

void statsd_channel_pump(struct statsd_channel *ch)
{
	if (!ch->cur.open)
		return;
	struct statsd_health *h = statsd_table_health(ch->t);
	size_t room = CHANNEL_PART > ch->out.len ? CHANNEL_PART - ch->out.len : 1;
	statsd_graphite_next(ch->t, &ch->cur, &ch->opts, ch->ts, &ch->out,
			     room < CHANNEL_TURN ? room : CHANNEL_TURN);
	if (ch->cur.open && ch->out.len < CHANNEL_PART && !ch->out.oom)
		return; /* the part is not full yet */
	if (!ch->out.len)
		return;
	int64_t rc = ch->out.oom ? -ENOMEM
				 : kite_publish(ch->kh, ch->name, ch->out.p, ch->out.len);
	if (rc < 0) {
		h->channel_failures++;
		statsd_log("channel: publish on %s: %s", ch->name, kite_strerror((int)rc));
	} else {
		h->channel_messages++;
	}
	ch->out.len = 0;
	ch->out.oom = false;
	/* A burst should not pin its memory until the next one. */
	if (ch->out.cap > 2 * CHANNEL_PART)
		statsd_buf_free(&ch->out);
}

void statsd_channel_settle(struct statsd_channel *ch)
{
	while (ch->cur.open)
		statsd_channel_pump(ch);
}

void statsd_channel_publish(struct statsd_channel *ch, struct statsd_table *t,
			    const char *name, const struct statsd_graphite_opts *o,
			    int64_t ts)
{
	statsd_channel_settle(ch); /* an earlier flush's lines come first */
	if (!ch->kh || !strcmp(name, "off"))
		return;
	ch->t = t;
	snprintf(ch->prefix, sizeof ch->prefix, "%s", o->prefix);
	snprintf(ch->name, sizeof ch->name, "%s", name);
	ch->opts = (struct statsd_graphite_opts){.prefix = ch->prefix, .legacy = o->legacy};
	ch->ts = ts;
	statsd_cursor_open(t, &ch->cur);
	statsd_channel_pump(ch);
}

void statsd_channel_close(struct statsd_channel *ch)
{
	if (ch->t)
		statsd_cursor_close(ch->t, &ch->cur);
	kite_close(ch->kh);
	ch->kh = NULL;
	statsd_buf_free(&ch->out);
}
