/* Reliable subscriptions, the subscriber's side: one positions page per
 * handle (a memfd sealed against shrinking and growth), one slot in it per
 * reliable ring we read, where kite_recv() stores its read position after
 * each record. Each publisher of such a ring gets the page once and maps it
 * read-only; we only ever write it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "shm.h"

int ki_pos_is_reliable(const kite *k, const char *channel)
{
	return k->nreliable && ki_strlist_any_match(k->reliable, k->nreliable, channel);
}

static int make_page(kite *k)
{
	if (k->positions)
		return 0;
	uint8_t *used = calloc(POS_SLOTS, 1);
	int fd = used ? ki_shm_create("kite-positions", POS_BYTES) : -ENOMEM;
	void *base = fd >= 0 ? ki_shm_map(fd, POS_BYTES, 1) : NULL;
	if (!base || ki_shm_seal(fd, SEALS_WAITER) < 0) {
		if (base)
			munmap(base, POS_BYTES);
		if (fd >= 0)
			close(fd);
		free(used);
		return -ENOMEM;
	}
	k->positions_fd = fd;
	k->positions = base;
	k->pos_used = used;
	return 0;
}

static uint32_t take_slot(kite *k)
{
	for (uint32_t n = 0; n < POS_SLOTS; n++) {
		uint32_t i = (k->pos_next + n) % POS_SLOTS;
		if (!k->pos_used[i]) {
			k->pos_used[i] = 1;
			k->pos_next = i + 1;
			return i + 1;
		}
	}
	return 0;
}

void ki_pos_attach(kite *k, struct peer *p, struct sub_ring *s)
{
	if (!ki_pos_is_reliable(k, s->channel) || make_page(k) < 0)
		return; /* (no memory for the page: radio) */
	if (!s->pos_slot1)
		s->pos_slot1 = take_slot(k);
	/* POS_SLOTS reliable rings already: this one is radio, and its
	 * publisher is told so (slot POS_SLOTS) rather than left waiting. */
	ki_pos_store(k, s);
	struct wire_msg m;
	ki_wire_init(&m, W_RELIABLE);
	m.id = s->ring_id;
	m.a = s->pos_slot1 ? s->pos_slot1 - 1 : POS_SLOTS;
	memcpy(m.text, s->channel, sizeof m.text);
	m.fds[0] = k->positions_fd;
	m.nfds = 1;
	ki_peer_send(k, p, &m);
}

void ki_pos_attach_matching(kite *k, const char *pattern)
{
	/* Rings a radio pattern brought already: their publishers will not
	 * hand them over again, so they hear of our slot now. */
	for (size_t i = 0; i < k->nsubs; i++) {
		struct sub_ring *s = k->subs[i];
		if (s->peer && !s->dormant && !s->unsubscribed && !s->pos_slot1 &&
		    kite_pattern_match(pattern, s->channel))
			ki_pos_attach(k, s->peer, s);
	}
}

void ki_pos_release(kite *k, struct sub_ring *s)
{
	if (!s->pos_slot1)
		return;
	/* A publisher that has not yet heard we left may read the next ring's
	 * positions here: it checks them against its own ring, so at worst it
	 * stops honouring a subscription we no longer hold. */
	k->pos_used[s->pos_slot1 - 1] = 0;
	s->pos_slot1 = 0;
}

void ki_pos_free(kite *k)
{
	if (k->positions)
		munmap(k->positions, POS_BYTES);
	if (k->positions_fd >= 0)
		close(k->positions_fd);
	free(k->pos_used);
	ki_strlist_free(&k->reliable, &k->nreliable);
	k->positions = NULL;
	k->positions_fd = -1;
	k->pos_used = NULL;
}
