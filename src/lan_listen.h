/* Since when a LAN handle has been listening to a channel: the moment of
 * each pattern subscription (taken once its group joins returned), so
 * that a receiver can tell a stream that began while it listened (it must
 * account for the stream from sequence 1) from one it joined late (from
 * its first frame heard). A channel is heard from the earliest of its
 * matching patterns still subscribed: each kept the channel's group
 * joined from its own subscription on. Streams the handle heard and then
 * forgot (freed after their publisher went) raise a floor: one of them
 * heard again is not taken for a stream that began after the floor. */
#ifndef KITE_LAN_LISTEN_H
#define KITE_LAN_LISTEN_H

#include <stddef.h>
#include <stdint.h>

/* Not listening (no matching pattern). */
#define LAN_LISTEN_NEVER UINT64_MAX

struct lan_listen {
	char **patterns;  /* each subscribed once (the handle refuses repeats) */
	uint64_t *since;  /* monotonic ns, per pattern */
	size_t n, cap;
	uint64_t forgot_ns; /* the latest first sighting of a forgotten stream */
};

/* Count pattern in, listening since since_ns: 0 or -ENOMEM. */
int ki_lan_listen_add(struct lan_listen *l, const char *pattern, uint64_t since_ns);
/* Set the moment of a pattern already counted in (its joins are done). */
void ki_lan_listen_set(struct lan_listen *l, const char *pattern, uint64_t since_ns);
/* Count pattern out (no effect if it is not in). */
void ki_lan_listen_remove(struct lan_listen *l, const char *pattern);
/* A stream first heard at first_heard_ns was forgotten. */
void ki_lan_listen_forget(struct lan_listen *l, uint64_t first_heard_ns);
/* Since when channel has been heard without a break, as far as this
 * handle can vouch for (LAN_LISTEN_NEVER: it is not). */
uint64_t ki_lan_listen_since(const struct lan_listen *l, const char *channel);
void ki_lan_listen_free(struct lan_listen *l);

#endif
