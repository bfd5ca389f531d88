/* Internal (not API; the kite command links it from libkite.a): the
 * observer's side of introspection, what `kite ls` and `kite top` ask
 * every handle on a bus. It needs no handle of its own: it dials each
 * listener @kite/<bus>/<id>, sends W_INFO_REQ and reads the W_INFO items
 * back, all handles at once, each within one time limit. */
#ifndef KITE_OBSERVE_H
#define KITE_OBSERVE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "kite.h"

/* Items one handle may send before it is taken for a liar and cut off:
 * far more than an honest one has (patterns, rings, counters). */
#define OBS_ITEMS_MAX 200000
/* Items all handles of one observation may send together: beyond, the
 * handle that goes over is cut off. Each costs the observer about 250
 * bytes, so a crowd of liars cannot make it take gigabytes. */
#define OBS_BUS_ITEMS_MAX 1000000
/* Records taken from one handle before the others get their turn (and the
 * time limit is looked at again). */
#define OBS_DRAIN_BATCH 256

enum obs_state {
	OBS_ANSWERED = 0, /* its answer came whole */
	OBS_SILENT,       /* no full answer within the time limit (stopped?) */
	OBS_CUT,          /* its stream ended, or it lied, before the end */
	OBS_UNREACHABLE   /* its backlog was full or it refused the link */
};

struct obs_pub {
	char channel[KITE_CHANNEL_MAX + 1];
	uint64_t ring_id;
	uint64_t head;    /* messages published (its last sequence) */
	uint64_t bytes;   /* payload bytes published */
	uint32_t slots;
};

struct obs_sub {
	char channel[KITE_CHANNEL_MAX + 1];
	uint64_t publisher; /* the publisher's handle id */
	uint64_t position;  /* last sequence read */
	uint64_t lost;      /* messages reported lost (KITE_LOSS sums) */
	uint64_t lag;       /* messages published but not yet read */
	char delivery[16];  /* "radio" */
};

struct obs_handle {
	uint64_t id;        /* from its name, which the kernel binds */
	pid_t pid;          /* SO_PEERCRED of the listener: kernel's word */
	uid_t uid;
	enum obs_state state;
	int everything;     /* it showed us everything (same uid or root) */
	char command[256];  /* what it says (to its uid and root), else what
	                       /proc/PID/cmdline shows us */
	int have_stats;
	kite_stats stats;
	struct obs_pub *pubs;
	size_t npubs, pubs_cap;
	char **patterns;
	size_t npatterns, patterns_cap;
	struct obs_sub *subs;
	size_t nsubs, subs_cap;
	uint64_t items;     /* W_INFO items received */
	int greeted;        /* its hello came (one at most) */
	uint64_t answer_us; /* time from request to its last item */
	/* the link while it is being read */
	int sock;
};

struct obs_bus {
	struct obs_handle *h; /* sorted by pid, then id */
	size_t n, cap;
	uint64_t took_us;     /* the whole observation */
};

/* Ask every handle on bus (NULL or "": $KITE_BUS, else "default"), waiting
 * at most timeout_ms for each. 0, or -EINVAL (bad bus name), -ENOMEM, or
 * -errno when /proc/net/unix cannot be read. */
int ki_observe(const char *bus, int timeout_ms, struct obs_bus *out);
void ki_observe_free(struct obs_bus *b);

/* Take one W_INFO item (already decoded) into h; 1 it was the end of the
 * answer to token, 0 taken, -1 a lie (h is then cut off). Exposed for the
 * table of hostile answers in tests. Each item costs O(1): what needs
 * comparing is compared once, at the end (ki_observe_finish). */
struct wire_msg;
int ki_observe_item(struct obs_handle *h, const struct wire_msg *m, uint64_t token);

/* After INFO_END: rings and patterns in order (by channel, publisher),
 * the two rings of one stream (released while idle and made anew) as one
 * row with the losses of both. 0, or -1 when the answer names a ring or a
 * pattern twice (a lie: an honest handle has one of each). */
int ki_observe_finish(struct obs_handle *h);

#endif
