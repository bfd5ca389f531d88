/* Publishing: one ring per channel we publish on, handed to each
 * authorised subscriber once; a message is written once into the ring (or,
 * too big for a record, into the ring's pool, or too big for that, into a
 * sealed memfd of its own) and only sleeping subscribers cost a system
 * call. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "origin.h"
#include "shm.h"

static uint64_t hash_name(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	while (*s)
		h = (h ^ (uint8_t)*s++) * 1099511628211ull;
	return h;
}

static struct pub_ring *find_ring(kite *k, const char *channel)
{
	if (!k->pub_hash_size)
		return NULL;
	struct pub_ring *r = k->pub_hash[hash_name(channel) & (k->pub_hash_size - 1)];
	while (r && strcmp(r->channel, channel))
		r = r->hash_next;
	return r;
}

struct pub_ring *ki_pub_find(kite *k, const char *channel)
{
	return find_ring(k, channel);
}

static int insert_ring(kite *k, struct pub_ring *ring)
{
	if (k->npub + 1 > k->pub_hash_size / 2) {
		size_t size = k->pub_hash_size ? k->pub_hash_size * 2 : 64;
		struct pub_ring **t = calloc(size, sizeof *t);
		if (!t)
			return -ENOMEM;
		for (size_t i = 0; i < k->pub_hash_size; i++)
			for (struct pub_ring *r = k->pub_hash[i], *n; r; r = n) {
				n = r->hash_next;
				size_t b = hash_name(r->channel) & (size - 1);
				r->hash_next = t[b];
				t[b] = r;
			}
		free(k->pub_hash);
		k->pub_hash = t;
		k->pub_hash_size = size;
	}
	size_t b = hash_name(ring->channel) & (k->pub_hash_size - 1);
	ring->hash_next = k->pub_hash[b];
	k->pub_hash[b] = ring;
	k->npub++;
	return 0;
}

static int ring_has_sub(const struct pub_ring *r, const struct peer *p)
{
	for (size_t i = 0; i < r->nsubs; i++)
		if (r->subs[i] == p)
			return 1;
	return 0;
}

static struct offer_mark *find_mark(struct pub_ring *r, uint64_t peer_id)
{
	for (size_t i = 0; i < r->nmarks; i++)
		if (r->marks[i].peer_id == peer_id)
			return &r->marks[i];
	return NULL;
}

static void drop_mark(struct pub_ring *r, uint64_t peer_id)
{
	struct offer_mark *m = find_mark(r, peer_id);
	if (m)
		*m = r->marks[--r->nmarks];
}

/* p's stream of r has ended (unsubscribed, or it refused the ring): so has what
 * its handovers page says of it. */
static void drop_stream(struct pub_ring *r, struct peer *p)
{
	drop_mark(r, p->id);
	ki_ho_forget(p, r);
}

/* The first sequence number this subscriber's stream of r has, or gets. */
static uint64_t stream_start(struct pub_ring *r, uint64_t peer_id)
{
	struct offer_mark *m = find_mark(r, peer_id);
	if (m)
		return m->first_seq;
	if (r->nmarks == r->marks_cap) {
		size_t cap = r->marks_cap ? r->marks_cap * 2 : 4;
		struct offer_mark *t = realloc(r->marks, cap * sizeof *t);
		if (!t)
			return r->w.head + 1; /* unmarked: a later re-offer starts anew */
		r->marks = t;
		r->marks_cap = cap;
	}
	r->marks[r->nmarks++] = (struct offer_mark){peer_id, r->w.head + 1};
	return r->w.head + 1;
}

void ki_pub_forget_marks(kite *k, uint64_t peer_id)
{
	for (size_t i = 0; i < k->pub_hash_size; i++)
		for (struct pub_ring *r = k->pub_hash[i]; r; r = r->hash_next)
			drop_mark(r, peer_id);
}

void ki_pub_prune_marks(kite *k, struct peer *p)
{
	for (size_t i = 0; i < k->pub_hash_size; i++)
		for (struct pub_ring *r = k->pub_hash[i]; r; r = r->hash_next)
			if (!ki_strlist_any_match(p->patterns, p->npatterns, r->channel))
				drop_stream(r, p);
}

static int hand_over(kite *k, struct pub_ring *r, struct peer *p)
{
	struct wire_msg m;
	ki_wire_init(&m, W_RING);
	m.id = r->ring_id;
	m.a = stream_start(r, p->id);
	m.b = r->first_seq;
	m.slot_count = r->w.slot_count;
	m.slot_size = r->w.slot_size;
	snprintf(m.text, sizeof m.text, "%s", r->channel);
	m.fds[0] = r->fd;
	m.nfds = 1;
	if (r->head_slot >= 0) { /* see tell_idle() */
		m.fds[1] = k->heads_fd;
		m.nfds = 2;
	}
	int rc = ki_peer_send(k, p, &m);
	if (rc == 0 && ki_strlist_any_match(p->reliable, p->nreliable, r->channel))
		ki_rel_add(r, p);
	if (rc) /* the link is cut: a re-made one gets it, a gone one reads it */
		ki_ho_note_unsent(k, p, r, m.a);
	return rc;
}

/* The ring was released after an idle spell; the stream goes on. The
 * stream heads page goes with it: should we die before the next ring's
 * hand-over reaches the subscriber, it still learns what that ring held. */
static void tell_idle(kite *k, struct pub_ring *r, struct peer *p)
{
	struct wire_msg m;
	ki_wire_init(&m, W_RING_END);
	m.id = r->ring_id;
	/* Its stream's first seq for p (never 0: that says "ended"): a
	 * subscriber that never saw any ring of the stream starts it here. */
	const struct offer_mark *mark = find_mark(r, p->id);
	m.a = mark && mark->first_seq ? mark->first_seq : 1;
	m.b = r->w.head;
	m.slot_count = (uint32_t)r->head_slot + 1;
	/* The channel: a re-made link may know only an earlier ring of the
	 * stream, or none (this one's hand-over went with a link dropped
	 * unread). */
	snprintf(m.text, sizeof m.text, "%s", r->channel);
	m.fds[0] = k->heads_fd;
	m.nfds = 1;
	ki_peer_send(k, p, &m);
}

/* The stream heads page: made with the handle's first ring or link; 0 or
 * -errno. */
int ki_pub_make_heads(kite *k)
{
	if (k->heads)
		return 0;
	int fd = ki_shm_create("kite-heads", HEADS_BYTES);
	if (fd < 0)
		return fd;
	void *base = ki_shm_map(fd, HEADS_BYTES, 1);
	if (!base || ki_shm_seal(fd, SEALS_RING) < 0) {
		if (base)
			munmap(base, HEADS_BYTES);
		close(fd);
		return -ENOMEM;
	}
	k->heads_fd = fd;
	k->heads = base;
	return 0;
}

/* Hand one ring to one peer, if it asked (pattern: the one it just added;
 * NULL: any of its patterns) and the policy lets it have it. */
static void offer(kite *k, struct pub_ring *r, struct peer *p, const char *pattern)
{
	if (p->closing || !p->hello || ring_has_sub(r, p))
		return;
	int asked = pattern ? kite_pattern_match(pattern, r->channel)
			    : ki_strlist_any_match(p->patterns, p->npatterns, r->channel);
	struct wire_msg m;
	char why[WIRE_REASON_MAX + 1];
	if (!asked || p->send_dead) {
		/* Not now, but it asked before its link broke (or is being cut):
		 * its stream starts here, and a re-offer will say so. */
		if ((p->send_dead ? asked
				  : ki_strlist_any_match(p->ghost_patterns, p->nghost,
							 r->channel)) &&
		    ki_policy_allows(k, p, r->channel, why, sizeof why))
			ki_ho_note_unsent(k, p, r, stream_start(r, p->id));
		return;
	}
	if (!ki_policy_allows(k, p, r->channel, why, sizeof why)) {
		/* The peer may not know this channel exists: tell it only which
		 * of its own patterns led to a refusal. */
		const char *mine = ki_peer_pattern_for(p, r->channel);
		ki_wire_init(&m, W_REFUSE);
		snprintf(m.text, sizeof m.text, "%s", mine);
		snprintf(m.reason, sizeof m.reason, "pid %ld uid %u is not allowed on "
			 "some channels matching %s by pid %ld uid %u (default: same "
			 "uid or root; widen with kite_allow_uid/gid)", (long)p->pid,
			 (unsigned)p->uid, mine, (long)getpid(), (unsigned)k->euid);
		ki_peer_send(k, p, &m);
		ki_refusal_event(k, p, r->channel, 0, "refused subscriber: %s", why);
		return;
	}
	if (r->nsubs == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 4;
		struct peer **s = realloc(r->subs, cap * sizeof *s);
		if (!s)
			return;
		r->subs = s;
		r->cap = cap;
	}
	if (r->fd < 0) {
		/* Released while idle: it gets the ring when it is made again.
		 * A re-made link whose stream already had it learns that the
		 * stream goes on (rather than that it ended). */
		if (find_mark(r, p->id))
			tell_idle(k, r, p);
		stream_start(r, p->id);
		r->subs[r->nsubs++] = p;
		return;
	}
	if (hand_over(k, r, p) == 0)
		r->subs[r->nsubs++] = p;
}

void ki_pub_offer_rings(kite *k, struct peer *p, const char *pattern)
{
	for (size_t i = 0; i < k->pub_hash_size; i++)
		for (struct pub_ring *r = k->pub_hash[i]; r; r = r->hash_next)
			offer(k, r, p, pattern);
}

void ki_pub_reliable_pattern(kite *k, struct peer *p, const char *pattern)
{
	/* Rings it already holds (through a radio pattern) were not offered
	 * again: they turn reliable here, and its W_RELIABLE follows. */
	for (size_t i = 0; i < k->pub_hash_size; i++)
		for (struct pub_ring *r = k->pub_hash[i]; r; r = r->hash_next)
			if (kite_pattern_match(pattern, r->channel) && ring_has_sub(r, p) &&
			    !ki_rel_holds(r, p))
				ki_rel_add(r, p);
}

void ki_pub_fresh_pattern(kite *k, struct peer *p, const char *pattern)
{
	for (size_t i = 0; i < k->pub_hash_size; i++)
		for (struct pub_ring *r = k->pub_hash[i]; r; r = r->hash_next)
			if (kite_pattern_match(pattern, r->channel) &&
			    !ki_strlist_any_match(p->continuous, p->ncontinuous, r->channel))
				drop_mark(r, p->id);
}

void ki_pub_forget_peer(kite *k, struct peer *p, const char *removed)
{
	/* Unsubscribed: streams no remaining pattern asks for end, whether
	 * or not the ring is still handed to it (a link being cut is not). */
	for (size_t i = 0; removed && i < k->pub_hash_size; i++)
		for (struct pub_ring *r = k->pub_hash[i]; r; r = r->hash_next)
			if (kite_pattern_match(removed, r->channel) &&
			    !ki_strlist_any_match(p->patterns, p->npatterns, r->channel))
				drop_stream(r, p);
	for (size_t i = 0; i < k->pub_hash_size; i++)
		for (struct pub_ring *r = k->pub_hash[i]; r; r = r->hash_next)
			for (size_t j = 0; j < r->nsubs; j++) {
				if (r->subs[j] != p)
					continue;
				/* Only rings the removed pattern matched can have
				 * lost their last matching pattern. */
				if (removed && (!kite_pattern_match(removed, r->channel) ||
						ki_strlist_any_match(p->patterns, p->npatterns,
								     r->channel))) {
					/* Still held, perhaps no longer reliably. */
					if (!ki_strlist_any_match(p->reliable, p->nreliable,
								  r->channel))
						ki_rel_remove(r, p);
					break;
				}

				r->subs[j] = r->subs[--r->nsubs];
				ki_rel_remove(r, p);
				break;
			}
}

void ki_pub_drop_sub(kite *k, struct peer *p, const char *channel)
{
	struct pub_ring *r = find_ring(k, channel);
	if (r)
		drop_stream(r, p);
	for (size_t j = 0; r && j < r->nsubs; j++)
		if (r->subs[j] == p) {
			r->subs[j] = r->subs[--r->nsubs];
			ki_rel_remove(r, p);
			break;
		}
}

/* The ring's memory: a sealed memfd mapped writable here, its stream
 * going on from last_seq. 0 or -errno (-EMFILE: out of descriptors). */
static int make_ring_memory(kite *k, struct pub_ring *r, uint64_t last_seq)
{
	char name[KITE_CHANNEL_MAX + 16];
	snprintf(name, sizeof name, "kite-ring:%s", r->channel);
	/* Sized when made: a ring re-made after an idle release takes the
	 * channel's current setting. */
	uint32_t slots = ki_pub_ring_slots(k, r->channel);
	ki_ring_geometry_valid(slots, k->opt.slot_size, &r->bytes);
	int fd = ki_shm_create(name, r->bytes);
	if (fd < 0)
		return fd;
	void *base = ki_shm_map(fd, r->bytes, 1);
	/* Our writable mapping stays; nobody can make another or shrink it. */
	if (!base || ki_shm_seal(fd, SEALS_RING) < 0) {
		if (base)
			munmap(base, r->bytes);
		close(fd);
		return -ENOMEM;
	}
	ki_ring_writer_init(&r->w, base, slots, k->opt.slot_size, k->id,
			    r->channel, last_seq);
	((struct ring_header *)base)->heads_slot = (uint32_t)(r->head_slot + 1);
	((struct ring_header *)base)->stream_born_ns = r->born_ns;
	((struct ring_header *)base)->stream_clock = r->born_clock;
	r->inline_max = ki_ring_inline_max(slots, k->opt.slot_size);
	r->pool_msg_max = ki_ring_pool_msg_max(slots, k->opt.slot_size);
	/* The first ring to watch: the control thread may sleep untimed. */
	if (k->opt.idle_ms != UINT32_MAX && k->npub == k->ndormant)
		ki_control_kick(k);
	r->fd = fd;
	r->ring_id = ++k->next_ring_id;
	r->first_seq = last_seq + 1;
	r->idle_head = last_seq;
	r->idle_since_ns = ki_monotonic_ns();
	return 0;
}

static void release_ring_memory(struct pub_ring *r)
{
	if (r->fd < 0)
		return;
	munmap(r->w.base, r->bytes);
	close(r->fd);
	r->fd = -1;
	r->w.base = NULL;
}

static struct pub_ring *create_ring(kite *k, const char *channel, int *err)
{
	struct pub_ring *r = calloc(1, sizeof *r);
	*err = -ENOMEM;
	if (!r)
		return NULL;
	snprintf(r->channel, sizeof r->channel, "%s", channel);
	r->channel_len = strlen(r->channel);
	r->fd = -1;
	/* Every stream gets an entry in the heads page, up to HEADS_MAX: only
	 * those are ever released, and only their hand-overs are covered by
	 * the handovers page should we die with them queued. */
	r->head_slot = k->nheads < HEADS_MAX && ki_pub_make_heads(k) == 0 ? (int32_t)k->nheads++ : -1;
	/* A subscriber that subscribed before this and gets the ring late
	 * (it was stopped while we linked) takes the stream from its start. */
	r->born_ns = ki_monotonic_ns();
	r->born_clock = k->clock_id;
	int rc = make_ring_memory(k, r, 0);
	if (rc < 0 || insert_ring(k, r) < 0) {
		*err = rc < 0 ? rc : -ENOMEM;
		release_ring_memory(r);
		free(r);
		return NULL;
	}
	for (struct peer *p = k->peers; p; p = p->next)
		offer(k, r, p, NULL);
	for (struct relink *l = k->relinks; l; l = l->next)
		if (ki_strlist_any_match(l->patterns, l->npatterns, r->channel))
			ki_ho_note_relink(k, l, r, stream_start(r, l->id));
	return r;
}

/* A released ring's channel is published on again: a new ring carries the
 * stream on, handed to everyone who held the old one or asked meanwhile. */
static int revive_ring(kite *k, struct pub_ring *r)
{
	int rc = make_ring_memory(k, r, r->w.head);
	if (rc < 0)
		return rc;
	k->ndormant--;
	for (size_t i = 0; i < r->nsubs;) {
		struct peer *p = r->subs[i];
		/* A failed send cuts the link, which takes p out of subs. */
		if (hand_over(k, r, p) == 0 || (i < r->nsubs && r->subs[i] == p))
			i++;
	}
	return 0;
}

/* Every holder is linked and settled, and holds exactly the streams marked:
 * nobody's re-offer or catch-up needs the ring's contents. And every holder
 * has its hand-over in its socket, not in our queue: a cut link would take
 * a queued one with it, and the re-made link would learn only that a ring
 * it never saw was released, its messages lost. */
static int releasable(const struct pub_ring *r)
{
	if (r->fd < 0 || r->publishing || r->claimed || r->nmarks != r->nsubs ||
	    r->head_slot < 0)
		return 0;
	for (size_t i = 0; i < r->nsubs; i++) {
		const struct peer *p = r->subs[i];
		if (!p->synced || p->send_dead || p->closing || p->nghost || p->q_head ||
		    !find_mark((struct pub_ring *)r, p->id))
			return 0;
	}
	return 1;
}

static void release_idle(kite *k, struct pub_ring *r)
{
	for (size_t i = 0; i < r->nsubs; i++)
		tell_idle(k, r, r->subs[i]);
	ki_rel_clear(r); /* positions in the next ring start again */
	release_ring_memory(r);
	k->ndormant++;
	if (k->last_pub == r)
		k->last_pub = NULL;
}

int ki_pub_sweep_idle(kite *k)
{
	if (k->opt.idle_ms == UINT32_MAX || k->npub == k->ndormant)
		return -1;
	uint64_t now = ki_monotonic_ns();
	uint64_t idle = (uint64_t)k->opt.idle_ms * 1000000u;
	uint64_t period = idle / 4 > 1000000u ? idle / 4 : 1000000u;
	if (now < k->idle_sweep_ns)
		return (int)((k->idle_sweep_ns - now + 999999) / 1000000);
	k->idle_sweep_ns = now + period;
	for (size_t i = 0; i < k->pub_hash_size; i++)
		for (struct pub_ring *r = k->pub_hash[i]; r; r = r->hash_next) {
			if (r->fd < 0)
				continue;
			if (r->w.head != r->idle_head) {
				r->idle_head = r->w.head;
				r->idle_since_ns = now;
			} else if (now - r->idle_since_ns >= idle &&
				   k->ndormant < DORMANT_MAX && releasable(r)) {
				release_idle(k, r);
			}
		}
	return (int)(period / 1000000u);
}

void ki_pub_ring_free(struct pub_ring *r)
{
	release_ring_memory(r);
	free(r->subs);
	free(r->marks);
	free(r->rel);
	free(r);
}

/* A message too big for a slot: its own memfd, frozen, sent to each holder
 * of the ring before the slot that names it becomes visible. */
static int make_large(const void *data, size_t len)
{
	int fd = ki_shm_create("kite-large", len);
	if (fd < 0)
		return fd;
	int rc = ki_shm_write_all(fd, data, len);
	if (!rc)
		rc = ki_shm_seal(fd, SEALS_FROZEN);
	if (rc) {
		close(fd);
		return rc;
	}
	return fd;
}

static void send_large(kite *k, struct pub_ring *r, int fd, uint64_t large_id,
		       size_t len)
{
	struct wire_msg m;
	ki_wire_init(&m, W_LARGE);
	m.id = r->ring_id;
	m.a = large_id;
	m.b = len;
	m.fds[0] = fd;
	m.nfds = 1;
	for (size_t i = 0; i < r->nsubs;) {
		struct peer *p = r->subs[i];
		/* Never waits; a cut link also leaves r->subs. */
		if (ki_peer_send(k, p, &m) == 0 || (i < r->nsubs && r->subs[i] == p))
			i++;
	}
}

static void wake_sleepers(kite *k, struct pub_ring *r)
{
	/* Each subscriber's `sleeping` must be read after our record store is
	 * visible to it, or we and a subscriber falling asleep could miss each
	 * other (it stores `sleeping`, fences, looks at our ring; we store the
	 * record, read `sleeping`): Dekker's pattern, which needs a full
	 * barrier on both sides. Ours is a fence, or nothing (the compiler
	 * must still keep the loads below the record's stores: the signal
	 * fence) where the subscriber forces one on us instead with
	 * membarrier() before it sleeps: every publisher registered for it
	 * that the kernel can reach (light_publish) and every subscriber that
	 * said so (needs_fence 0, see kite_arm() and barrier.c).
	 *
	 * One pass: the fence a subscriber needs comes before the read of its
	 * own `sleeping` (its needs_fence is read first, and a fence taken
	 * for one serves every later one). A subscriber that does not need it
	 * is covered by its membarrier() wherever our read falls: the barrier
	 * it forces on this CPU lands either before our record store (then
	 * our read, later still, sees its `sleeping`) or after that store
	 * (then its look at the ring, after membarrier() returns, sees the
	 * record). A stale needs_fence of 0 is covered the
	 * same way: the subscriber that turns it back to 1 runs membarrier()
	 * once more after the store, before it next sleeps without one.
	 * The common case, nobody asleep and nobody asking for a fence, is
	 * one load per subscriber of a line that only changes when it arms:
	 * no line moves between the CPUs per message. */
	atomic_signal_fence(memory_order_seq_cst);
	int fenced = !k->light_publish;
	if (fenced)
		atomic_thread_fence(memory_order_seq_cst);
	for (size_t i = 0; i < r->nsubs; i++) {
		struct peer *p = r->subs[i];
		struct waiter_page *w = p->waiter;
		if (!w) /* its W_WAKE is on its way */
			continue;
		if (!fenced && atomic_load_explicit(&w->needs_fence, memory_order_relaxed)) {
			atomic_thread_fence(memory_order_seq_cst);
			fenced = 1;
		}
		if (__builtin_expect(!atomic_load_explicit(&w->sleeping, memory_order_relaxed), 1) ||
		    !atomic_exchange(&w->sleeping, 0))
			continue;
		ki_wake_send(p->wake_tx);
		k->stats.wakeups_sent++;
	}
}

struct pub_ring *ki_pub_ring_for(kite *k, const char *channel, int *err)
{
	struct pub_ring *r = k->last_pub;
	*err = 0;
	if (r && ki_pub_same_channel(r, channel))
		return r;
	if ((*err = kite_channel_valid(channel)))
		return NULL;
	if (!(r = find_ring(k, channel)) && !(r = create_ring(k, channel, err)))
		return NULL;
	if (r->fd < 0 && (*err = revive_ring(k, r)))
		return NULL;
	*err = 0; /* (create_ring leaves its "no memory" there) */
	k->last_pub = r;
	return r;
}

void ki_pub_committed(kite *k, struct pub_ring *r, uint64_t seq, uint64_t timestamp_ns,
		      const void *data, size_t len)
{
	if (r->head_slot >= 0) /* read only once we are gone: no line bounces */
		atomic_store_explicit(&k->heads[r->head_slot], seq, memory_order_relaxed);
	k->stats.published++;
	if (k->lan) /* (a call not made: 2.5 % of a 64-byte publish) */
		ki_lan_publish(k, r->channel, &r->lan_pub, seq, timestamp_ns, data, len);
	r->bytes_published += len;
	wake_sleepers(k, r);
}

enum pub_place ki_pub_place(const struct pub_ring *r, size_t len, size_t meta_len)
{
	if (len <= r->inline_max && meta_len <= UINT16_MAX)
		return PUB_INLINE;
	if (len <= r->pool_msg_max)
		return PUB_POOL;
	return PUB_MEMFD;
}

int ki_pub_make_room(kite *k, struct pub_ring *r, enum pub_place place, size_t len,
		     int *locked)
{
	if (!r->nrel)
		return 0;
	/* The record (the message itself, or the reference to it), and for
	 * the pool every reader past the records of payloads it writes over. */
	return ki_rel_wait(k, r, place == PUB_INLINE ? len : sizeof(struct ring_large),
			   place == PUB_MEMFD,
			   place == PUB_POOL ? ki_ring_pool_floor(&r->w, len) : 0, locked);
}

/* kite_publish(), with extra record flags (REC_ORIGIN: data starts with
 * an origin block of meta_len bytes, which an inline record carries as its
 * metadata; one too long for its 16-bit length goes large). */
static int64_t publish(kite *k, const char *channel, const void *data, size_t len,
		       size_t meta_len, uint16_t extra_flags)
{
	if (ki_forked(k))
		return -ECHILD;
	int locked = ki_app_enter(k), rc;
	struct pub_ring *r = ki_pub_ring_for(k, channel, &rc);
	if (!r || (rc = r->claimed ? -EBUSY : 0)) {
		ki_app_exit(k, locked);
		return rc;
	}
	uint64_t seq;
	enum pub_place place = ki_pub_place(r, len, meta_len);
	if ((rc = ki_pub_make_room(k, r, place, len, &locked))) {
		ki_app_exit(k, locked);
		return rc;
	}
	/* The LAN copy carries the ring record's stamp. */
	uint64_t timestamp_ns = ki_stamp_now(&k->stamp);
	if (place == PUB_INLINE) {
		seq = ki_ring_write(&r->w, data, (uint16_t)meta_len, (const uint8_t *)data + meta_len,
				    (uint32_t)(len - meta_len), extra_flags, timestamp_ns);
	} else if (place == PUB_POOL) {
		/* Copied even with nobody subscribed: a late joiner's replay
		 * may read it. The copy runs unlocked, as below. */
		uint64_t pool_pos;
		void *dst = ki_ring_pool_claim(&r->w, len, &pool_pos);
		r->publishing = 1;
		ki_app_exit(k, locked);
		memcpy(dst, data, len);
		locked = ki_app_enter(k);
		r->publishing = 0;
		seq = ki_ring_pool_commit(&r->w, pool_pos, len, extra_flags, timestamp_ns);
	} else {
		uint64_t large_id = ++r->next_large_id;
		if (r->nsubs) { /* nobody to read it: spend the seq, not the copy */
			/* A long copy must not hold the control thread off. Rings are
			 * only freed by kite_close(), so r stays valid, and one being
			 * published on is not released. */
			r->publishing = 1;
			ki_app_exit(k, locked);
			int fd = make_large(data, len);
			locked = ki_app_enter(k);
			r->publishing = 0;
			if (fd < 0) {
				ki_app_exit(k, locked);
				return fd;
			}
			send_large(k, r, fd, large_id, len);
			close(fd);
		}
		struct ring_large ref = {large_id, len};
		seq = ki_ring_write(&r->w, NULL, 0, &ref, sizeof ref, REC_LARGE | extra_flags,
				    timestamp_ns);
		ki_rel_large_written(r);
	}
	ki_pub_committed(k, r, seq, timestamp_ns, data, len);
	ki_app_exit(k, locked);
	return (int64_t)seq;
}

int64_t kite_publish(kite *k, const char *channel, const void *data, size_t len)
{
	if (len > KITE_MSG_MAX)
		return KITE_ETOOBIG;
	if (!k || !channel || (len && !data))
		return -EINVAL;
	return publish(k, channel, data, len, 0, 0);
}

int64_t kite_publish_origin(kite *k, const char *channel, const void *data,
			    size_t len, const struct kite_origin *origin)
{
	if (!k || !channel || (len && !data) || !origin)
		return -EINVAL;
	int64_t block = ki_origin_size(origin);
	if (block < 0)
		return block;
	if (len > KITE_MSG_MAX - (size_t)block)
		return KITE_ETOOBIG;
	/* One copy: the ring wants the block and the payload in one piece. */
	uint8_t *buf = malloc((size_t)block + len);
	if (!buf)
		return -ENOMEM;
	ki_origin_encode(origin, buf);
	if (len)
		memcpy(buf + block, data, len);
	int64_t rc = publish(k, channel, buf, (size_t)block + len, (size_t)block, REC_ORIGIN);
	free(buf);
	return rc;
}
