/* Reliable subscriptions, the publisher's side. A reliable subscriber
 * writes its read position in each of our rings into its positions page,
 * which we map read-only; before a write that would overrun it, we read
 * that page again, and wait (or say -EAGAIN) until it has moved on. A value
 * read there is only ever compared, never used to index anything: one
 * beyond what we wrote, or behind what it said before, is ignored (it
 * counts as no progress). A subscriber that holds us up without moving for
 * opt.reliable_deadline_ms is dropped to radio for that ring: we overrun
 * it, and its reader reports exactly what it lost. */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "shm.h"

/* Waiting for room: spin (yielding) this long, as a subscriber that keeps
 * up frees a segment within microseconds, then nap, doubling from
 * NAP_FIRST_US to NAP_MAX_US: a stopped subscriber costs about 1,000
 * wake-ups a second until its deadline, and room is noticed at most a
 * millisecond late. */
#define SPIN_NS 50000u
#define NAP_FIRST_US 20u
#define NAP_MAX_US 1000u

static void recompute_floor(struct pub_ring *r)
{
	uint64_t floor = UINT64_MAX;
	for (size_t i = 0; i < r->nrel; i++)
		if (r->rel[i].pos < floor)
			floor = r->rel[i].pos;
	r->rel_floor = floor;
}

void ki_rel_add(struct pub_ring *r, struct peer *p)
{
	/* Until it tells us its slot, it stands where the stream starts for
	 * it: here (a re-offered older stream starts earlier; what it has not
	 * read of that may be overrun, and is reported lost). */
	struct reliable_sub fresh = {p, 0, r->w.pos, 0};
	for (size_t i = 0; i < r->nrel; i++)
		if (r->rel[i].peer == p) {
			r->rel[i] = fresh;
			recompute_floor(r);
			return;
		}
	if (r->nrel == r->rel_cap) {
		size_t cap = r->rel_cap ? r->rel_cap * 2 : 4;
		struct reliable_sub *t = realloc(r->rel, cap * sizeof *t);
		if (!t)
			return; /* no memory: it reads as radio */
		r->rel = t;
		r->rel_cap = cap;
	}
	r->rel[r->nrel++] = fresh;
	recompute_floor(r);
}

int ki_rel_holds(const struct pub_ring *r, const struct peer *p)
{
	for (size_t i = 0; i < r->nrel; i++)
		if (r->rel[i].peer == p)
			return 1;
	return 0;
}

static void remove_at(struct pub_ring *r, size_t i)
{
	r->rel[i] = r->rel[--r->nrel];
	recompute_floor(r);
}

void ki_rel_remove(struct pub_ring *r, const struct peer *p)
{
	for (size_t i = 0; i < r->nrel; i++)
		if (r->rel[i].peer == p) {
			remove_at(r, i);
			return;
		}
}

void ki_rel_clear(struct pub_ring *r)
{
	r->nrel = 0;
	r->rel_floor = UINT64_MAX;
	r->nlarge_written = 0;
}

/* Take the subscriber's word on its position, if it can be true. */
static void observe(const struct pub_ring *r, struct reliable_sub *e)
{
	if (!e->slot1 || !e->peer->positions)
		return;
	uint64_t v = atomic_load_explicit(
		(_Atomic uint64_t *)(uintptr_t)&e->peer->positions[e->slot1 - 1],
		memory_order_acquire);
	if (v > r->w.pos || v <= e->pos)
		return; /* beyond what we wrote, or not forward: not progress */
	e->pos = v;
	e->stuck_since_ns = 0;
}

int ki_rel_handle(kite *k, struct peer *p, const struct wire_msg *m)
{
	int fd = m->fds[0];
	if (!p->positions && !ki_shm_check(fd, SEALS_WAITER, POS_BYTES, 1))
		p->positions = ki_shm_map(fd, POS_BYTES, 0);
	close(fd);
	/* A stale or wrong notice is ignored: the subscriber then stands
	 * still for us, and its deadline drops it to radio. */
	if (kite_channel_valid(m->text))
		return 0;
	struct pub_ring *r = ki_pub_find(k, m->text);
	if (!r || r->ring_id != m->id)
		return 0;
	if (m->a >= POS_SLOTS) { /* it has no slot for this ring: radio */
		ki_rel_remove(r, p);
		return 0;
	}
	if (!p->positions)
		return 0;
	for (size_t i = 0; i < r->nrel; i++) {
		struct reliable_sub *e = &r->rel[i];
		if (e->peer != p || e->slot1)
			continue; /* (told once per hand-over) */
		e->slot1 = (uint32_t)m->a + 1;
		/* Its first word may be behind where we thought it started (a
		 * re-made link, reading on in the same ring): within a lap of
		 * what we wrote, it is taken. */
		uint64_t v = atomic_load_explicit(
			(_Atomic uint64_t *)(uintptr_t)&p->positions[m->a], memory_order_acquire);
		if (v <= r->w.pos && r->w.pos - v <= r->w.capacity) {
			e->pos = v;
			e->stuck_since_ns = 0; /* (it could not move before it told us) */
		}
		recompute_floor(r);
	}
	return 0;
}

/* Let the subscribers move: spin first, then nap. */
static void pause_for_room(uint64_t waited_ns, unsigned *nap_us)
{
	if (waited_ns < SPIN_NS) {
		sched_yield();
		return;
	}
	*nap_us = *nap_us ? (*nap_us * 2 > NAP_MAX_US ? NAP_MAX_US : *nap_us * 2)
			  : NAP_FIRST_US;
	struct timespec ts = {0, (long)*nap_us * 1000};
	nanosleep(&ts, NULL);
}

int ki_rel_wait(kite *k, struct pub_ring *r, uint64_t body, int large, uint64_t also,
		int *locked)
{
	uint64_t need = ki_ring_reader_floor(&r->w, body);
	if (also > need)
		need = also;
	/* Each large message is a memfd in flight or held by the subscriber:
	 * it may have at most RELIABLE_LARGE_MAX of them unread. */
	if (large && r->nlarge_written >= RELIABLE_LARGE_MAX) {
		uint64_t end = r->large_end[r->nlarge_written % RELIABLE_LARGE_MAX];
		if (end > need)
			need = end;
	}
	if (need <= r->rel_floor)
		return 0;
	uint64_t deadline_ns = (uint64_t)k->opt.reliable_deadline_ms * 1000000u;
	uint64_t start = ki_monotonic_ns();
	unsigned nap_us = 0;
	for (;;) {
		uint64_t now = ki_monotonic_ns();
		for (size_t i = 0; i < r->nrel;) {
			struct reliable_sub *e = &r->rel[i];
			observe(r, e);
			/* Its deadline runs while it holds us up without moving,
			 * from the first look that found it so. */
			if (e->pos >= need) {
				e->stuck_since_ns = 0;
			} else if (!e->stuck_since_ns) {
				e->stuck_since_ns = now;
			} else if (now - e->stuck_since_ns >= deadline_ns) {
				remove_at(r, i); /* dropped to radio for this ring */
				continue;
			}
			i++;
		}
		recompute_floor(r);
		if (need <= r->rel_floor)
			return 0;
		uint64_t waited = now - start;
		if (k->opt.reliable_wait_ms != UINT32_MAX &&
		    waited >= (uint64_t)k->opt.reliable_wait_ms * 1000000u)
			return -EAGAIN;
		/* Let the control thread act meanwhile (a subscriber's link
		 * that ends takes it out of r->rel); r is not released while
		 * publishing is set, and rings are freed only by kite_close. */
		r->publishing = 1;
		ki_app_exit(k, *locked);
		pause_for_room(waited, &nap_us);
		*locked = ki_app_enter(k);
		r->publishing = 0;
	}
}
