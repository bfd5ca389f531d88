/* The handovers page: the last window in which a publisher could take
 * messages with it unreported. A ring reaches a subscriber by its W_RING;
 * while that record waits in our outbound queue (the subscriber is stopped
 * or slow), our death would take it along, and the subscriber would never
 * learn the stream existed. So each link gets, from its sender, a sealed
 * memfd the receiver maps read-only: before a W_RING goes into the queue
 * we write down the ring there (its channel, the subscriber's first seq,
 * the ring id, stored last), in the entry of the stream's heads slot, and
 * clear it when the record leaves into the socket (what is in a socket
 * outlives us and is read first). A publisher that is gone with entries
 * left has its streams reported: NEW, first..head lost (the head from the
 * stream heads page), GONE. The fast path, a record that goes straight
 * into the socket, writes nothing here; it clears an entry an earlier note
 * left for its ring (a ring noted while the link was being made again),
 * as does the end of the subscriber's stream (unsubscribed): left valid,
 * such an entry would report messages it had, or never asked for, lost.
 *
 * Layout (handovers.h): a header page, one bit per 4 KiB page of entries
 * ever written (the reader visits only those: reading a hole of shared
 * memory would allocate it), then HEADS_MAX entries. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "handovers.h"
#include "shm.h"

void ki_ho_offer(kite *k, struct peer *p)
{
	/* Rings only ever go to a peer the policy lets in on something. */
	if (p->ho_out || !ki_policy_may_share(k, p, ">") || ki_pub_make_heads(k))
		return;
	int fd = ki_shm_create("kite-handovers", HO_BYTES);
	if (fd < 0)
		return; /* its hand-overs go uncovered, as before this page */
	uint8_t *page = ki_shm_map(fd, HO_BYTES, 1);
	if (!page || ki_shm_seal(fd, SEALS_RING) < 0) {
		if (page)
			munmap(page, HO_BYTES);
		close(fd);
		return;
	}
	struct wire_msg m;
	ki_wire_init(&m, W_HANDOVERS);
	m.fds[0] = fd;
	m.fds[1] = k->heads_fd;
	m.nfds = 2;
	if (ki_peer_send(k, p, &m) == 0)
		p->ho_out = page;
	else
		munmap(page, HO_BYTES);
	close(fd); /* (a queued record holds a copy) */
}

/* Write down ring r in page, its stream starting at first: 1 if done. The
 * ring id is stored last: a reader that sees it sees the rest. */
static int write_entry(uint8_t *page, const struct pub_ring *r, uint64_t first)
{
	if (!page || r->head_slot < 0)
		return 0; /* past HEADS_MAX streams: not covered (docs/channels.md) */
	uint32_t slot = (uint32_t)r->head_slot;
	struct ho_entry *e = ki_ho_entry(page, slot);
	size_t len = strlen(r->channel);
	atomic_store_explicit(&e->ring_id, 0, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	e->first_seq = first;
	e->channel_len = (uint32_t)len;
	memcpy(e->channel, r->channel, len);
	_Atomic uint64_t *used = (_Atomic uint64_t *)page;
	size_t pg = slot / 16;
	atomic_fetch_or_explicit(&used[pg / 64], 1ull << (pg % 64), memory_order_relaxed);
	atomic_store_explicit(&e->ring_id, r->ring_id, memory_order_release);
	return 1;
}

void ki_ho_note(kite *k, struct peer *p, struct outrec *r)
{
	const struct pub_ring *ring = ki_pub_find(k, r->m.text);
	r->ho_slot = -1;
	if (ring && ring->ring_id == r->m.id && write_entry(p->ho_out, ring, r->m.a)) {
		r->ho_slot = ring->head_slot;
		p->ho_noted = 1;
	}
}

void ki_ho_note_unsent(kite *k, struct peer *p, const struct pub_ring *r, uint64_t first)
{
	(void)k; /* (the caller asked the policy) */
	p->ho_noted |= write_entry(p->ho_out, r, first);
}

/* Clear slot's entry if it still names ring_id. */
static void clear_entry(uint8_t *page, int32_t slot, uint64_t ring_id)
{
	if (!page || slot < 0)
		return;
	struct ho_entry *e = ki_ho_entry(page, (uint32_t)slot);
	atomic_compare_exchange_strong_explicit(&e->ring_id, &ring_id, 0, memory_order_release,
						memory_order_relaxed);
}

void ki_ho_forget(struct peer *p, const struct pub_ring *r)
{
	/* (A page nothing was ever written in is not touched: reading it
	 * would make its pages resident.) */
	if (p->ho_noted)
		clear_entry(p->ho_out, r->head_slot, r->ring_id);
}

void ki_ho_left(kite *k, struct peer *p, const struct wire_msg *m)
{
	const struct pub_ring *ring;
	if (p->ho_noted && (ring = ki_pub_find(k, m->text)) && ring->ring_id == m->id)
		ki_ho_forget(p, ring);
}

void ki_ho_note_relink(kite *k, struct relink *l, const struct pub_ring *r, uint64_t first)
{
	struct peer who;
	ki_relink_who(l, &who);
	/* A channel it may not know of is not named to it. */
	if (ki_policy_allows(k, &who, r->channel, NULL, 0))
		write_entry(l->ho_out, r, first);
}

void ki_ho_sent(struct peer *p, const struct outrec *r)
{
	clear_entry(p->ho_out, r->ho_slot, r->m.id);
}

int ki_ho_receive(struct peer *p, const struct wire_msg *m)
{
	int page_fd = m->fds[0], heads_fd = m->fds[1];
	int ok = !p->ho_received++ && !ki_shm_check(page_fd, SEALS_RING, HO_BYTES, 1) &&
		 !ki_shm_check(heads_fd, SEALS_RING, HEADS_BYTES, 1);
	if (ok) {
		/* Out of address space or mappings (vm.max_map_count): the
		 * link goes on, its queued hand-overs uncovered, as before. */
		p->ho_in.page = ki_shm_map(page_fd, HO_BYTES, 0);
		p->ho_in.heads = ki_shm_map(heads_fd, HEADS_BYTES, 0);
		if (!p->ho_in.page || !p->ho_in.heads)
			ki_ho_unmap(&p->ho_in);
	}
	close(page_fd);
	close(heads_fd);
	return ok ? 0 : -1;
}

void ki_ho_out_free(uint8_t **page)
{
	if (*page)
		munmap(*page, HO_BYTES);
	*page = NULL;
}

void ki_ho_unmap(struct ho_view *v)
{
	if (v->page)
		munmap((void *)(uintptr_t)v->page, HO_BYTES);
	if (v->heads)
		munmap((void *)(uintptr_t)v->heads, HEADS_BYTES);
	v->page = NULL;
	v->heads = NULL;
}

/* One entry, copied and checked: 1 with channel, ring id and first seq
 * filled if it names a hand-over that never left (a liar's can only name
 * its own streams). */
static int read_entry(const struct ho_view *v, uint32_t slot, char *channel,
		      uint64_t *ring_id, uint64_t *first)
{
	const struct ho_entry *e = ki_ho_entry((uint8_t *)(uintptr_t)v->page, slot);
	_Atomic uint64_t *idp = (_Atomic uint64_t *)(uintptr_t)&e->ring_id;
	uint64_t id = atomic_load_explicit(idp, memory_order_acquire);
	if (!id)
		return 0;
	struct ho_entry copy;
	memcpy(&copy, e, sizeof copy);
	atomic_thread_fence(memory_order_acquire);
	if (atomic_load_explicit(idp, memory_order_relaxed) != id ||
	    copy.channel_len == 0 || copy.channel_len > KITE_CHANNEL_MAX)
		return 0; /* changed under us (only a live liar's does) */
	memcpy(channel, copy.channel, copy.channel_len);
	channel[copy.channel_len] = '\0';
	if (kite_channel_valid(channel) || strlen(channel) != copy.channel_len)
		return 0;
	*ring_id = id;
	*first = copy.first_seq;
	return *first && *first < RING_START_MAX;
}

/* Whether the page could name anything we would report: a channel one of
 * our patterns matches that the policy lets who send us. If not (a peer
 * the policy lets into nothing, or only on channels we do not ask for), it
 * is not read at all: reading a liar's page makes up to 16 MiB of it
 * resident while the handle's state is held (kite_publish waits). */
static int worth_reading(const kite *k, const struct peer *who)
{
	for (size_t i = 0; i < k->npatterns; i++)
		if (ki_policy_may_share(k, who, k->patterns[i]))
			return 1;
	return 0;
}

void ki_ho_report(kite *k, struct ho_view *v, const struct peer *who)
{
	if (!v->page)
		return;
	if (!worth_reading(k, who)) {
		ki_ho_unmap(v);
		return;
	}
	const _Atomic uint64_t *used = (const _Atomic uint64_t *)v->page;
	char channel[KITE_CHANNEL_MAX + 1];
	for (size_t pg = 0; pg < HO_ENTRY_PAGES; pg++) {
		uint64_t bits = atomic_load_explicit(
			(_Atomic uint64_t *)(uintptr_t)&used[pg / 64], memory_order_acquire);
		if (!(bits & (1ull << (pg % 64))))
			continue;
		for (uint32_t slot = (uint32_t)pg * 16; slot < (pg + 1) * 16; slot++) {
			uint64_t ring_id, first;
			if (!read_entry(v, slot, channel, &ring_id, &first) ||
			    !ki_sub_matches(k, channel) ||
			    !ki_policy_allows(k, who, channel, NULL, 0))
				continue;
			uint64_t head = atomic_load_explicit(
				(_Atomic uint64_t *)(uintptr_t)&v->heads[slot], memory_order_acquire);
			if (head >= RING_START_MAX)
				head = RING_START_MAX - 1; /* a liar's, bounded */
			if (head >= first) /* (nothing published yet: nothing to say) */
				ki_sub_adopt_lost(k, who, channel, ring_id, first, head);
		}
	}
	ki_ho_unmap(v);
}
