/* The event queue: losses, departures and refusals, delivered in order by
 * kite_recv() before ring data. A full queue drops the oldest and counts it. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

void ki_wake_self(kite *k)
{
	ki_wake_send(k->wake_tx);
}

void ki_event_push(kite *k, enum kite_event_type type, const char *channel,
		uint64_t publisher, pid_t pid, uid_t uid, gid_t gid,
		uint64_t lost, int refused_by_peer, const char *fmt, ...)
{
	if (k->ev_count == EVENT_QUEUE) {
		k->ev_head = (k->ev_head + 1) % EVENT_QUEUE;
		k->ev_count--;
		k->stats.events_dropped++;
	}
	struct queued_event *q = &k->events[(k->ev_head + k->ev_count) % EVENT_QUEUE];
	k->ev_count++;
	memset(&q->ev, 0, sizeof q->ev);
	snprintf(q->channel, sizeof q->channel, "%s", channel ? channel : "");
	q->text[0] = 0;
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(q->text, sizeof q->text, fmt, ap);
		va_end(ap);
	}
	/* Reasons can come from peers: no control bytes reach a terminal. */
	for (char *c = q->text; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	q->ev.type = type;
	q->ev.msg.publisher = publisher;
	q->ev.msg.pid = pid;
	q->ev.msg.uid = uid;
	q->ev.msg.gid = gid;
	q->ev.lost = lost;
	q->ev.refused_by_peer = refused_by_peer;
	if (type == KITE_LOSS)
		k->stats.lost += lost;
	if (type == KITE_REFUSED)
		k->stats.refused++;
	ki_wake_self(k);
}

int ki_event_pop(kite *k, kite_event *ev)
{
	if (!k->ev_count)
		return 0;
	k->current = k->events[k->ev_head];
	k->ev_head = (k->ev_head + 1) % EVENT_QUEUE;
	k->ev_count--;
	*ev = k->current.ev;
	ev->msg.channel = k->current.channel;
	ev->text = k->current.text;
	return 1;
}
