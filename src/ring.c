/* The (publisher, channel) ring: a single writer, any number of read-only
 * readers, each slot guarded by its own sequence lock. */
#include <errno.h>
#include <string.h>

#include "ring.h"

/* Readers that were overrun restart this far behind the head's oldest
 * readable slot, so they are not overrun again at once. */
#define RESTART_MARGIN_DIVISOR 16
/* A slot that keeps changing under a reader is given up after this many
 * attempts and counted as lost: a hostile writer cannot stall a reader. */
#define READ_ATTEMPTS 4
#define RING_SEQ_END (1ull << 63)

int ki_ring_geometry_valid(uint32_t slot_count, uint32_t slot_size, size_t *bytes)
{
	if (slot_count < RING_MIN_SLOTS || slot_count > RING_MAX_SLOTS ||
	    (slot_count & (slot_count - 1)))
		return -EBADMSG;
	if (slot_size < RING_MIN_SLOT_SIZE || slot_size > RING_MAX_SLOT_SIZE ||
	    slot_size % 64)
		return -EBADMSG;
	if (bytes)
		*bytes = RING_HEADER_SIZE + (size_t)slot_count * slot_size;
	return 0;
}

static struct slot_header *slot_at(const uint8_t *base, uint32_t slot_size,
				   uint32_t slot_count, uint64_t seq)
{
	size_t index = (size_t)(seq & (slot_count - 1));
	return (struct slot_header *)(uintptr_t)(base + RING_HEADER_SIZE +
						 index * slot_size);
}

void ki_ring_writer_init(struct ring_writer *w, void *base, uint32_t slot_count,
		      uint32_t slot_size, uint64_t publisher, const char *channel,
		      uint64_t last_seq)
{
	struct ring_header *h = base;
	memset(h, 0, RING_HEADER_SIZE);
	h->magic = RING_MAGIC;
	h->version = RING_VERSION;
	h->header_size = RING_HEADER_SIZE;
	h->slot_count = slot_count;
	h->slot_size = slot_size;
	h->publisher = publisher;
	strncpy(h->channel, channel, KITE_CHANNEL_MAX);
	atomic_store_explicit(&h->head, last_seq, memory_order_release);
	w->base = base;
	w->slot_count = slot_count;
	w->slot_size = slot_size;
	w->head = last_seq;
}

uint64_t ki_ring_write(struct ring_writer *w, const void *payload, uint32_t len,
		    uint32_t flags, uint64_t large_id, uint64_t timestamp_ns)
{
	uint64_t seq = ++w->head;
	struct slot_header *s = slot_at(w->base, w->slot_size, w->slot_count, seq);
	atomic_store_explicit(&s->seq2, seq * 2 + 1, memory_order_relaxed);
	/* Readers must see the odd lock word before any byte of the new payload. */
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit(&s->len, len, memory_order_relaxed);
	atomic_store_explicit(&s->flags, flags, memory_order_relaxed);
	atomic_store_explicit(&s->timestamp_ns, timestamp_ns, memory_order_relaxed);
	atomic_store_explicit(&s->large_id, large_id, memory_order_relaxed);
	if (payload && len)
		memcpy((uint8_t *)s + RING_SLOT_HEADER, payload, len);
	atomic_store_explicit(&s->seq2, seq * 2, memory_order_release);
	struct ring_header *h = (struct ring_header *)w->base;
	atomic_store_explicit(&h->head, seq, memory_order_release);
	return seq;
}

int ki_ring_header_check(const void *base, uint32_t slot_count, uint32_t slot_size,
		      const char *channel)
{
	const struct ring_header *h = base;
	if (h->magic != RING_MAGIC || h->version != RING_VERSION ||
	    h->header_size != RING_HEADER_SIZE || h->slot_count != slot_count ||
	    h->slot_size != slot_size ||
	    strncmp(h->channel, channel, KITE_CHANNEL_MAX + 1) != 0)
		return -EBADMSG;
	return 0;
}

static uint64_t load_head(const struct ring_reader *r)
{
	const struct ring_header *h = (const struct ring_header *)r->base;
	return atomic_load_explicit(&((struct ring_header *)(uintptr_t)h)->head,
				    memory_order_acquire);
}

int ki_ring_pending(const struct ring_reader *r)
{
	if (r->next >= RING_SEQ_END)
		return 0; /* an ended stream, as ki_ring_read sees it */
	const struct slot_header *s = slot_at(r->base, r->slot_size, r->slot_count, r->next);
	uint64_t v = atomic_load_explicit(&((struct slot_header *)(uintptr_t)s)->seq2,
					  memory_order_acquire);
	return v >= r->next * 2 && v != r->next * 2 + 1;
}

/* If `next` has been overwritten (or will be by the write in progress),
 * jump forward and say how many were skipped. */
static uint64_t skip_overrun(struct ring_reader *r, uint64_t head)
{
	/* Readable now: head - slot_count + 2 .. head (the slot of head + 1 may
	 * be mid-write, destroying head + 1 - slot_count). */
	uint64_t n = r->slot_count;
	if (head < n - 1)
		return 0;
	/* Written without head + 2, which wraps for a head near 2^64. */
	uint64_t oldest = head - (n - 2);
	if (r->next >= oldest)
		return 0;
	uint64_t restart = oldest + n / RESTART_MARGIN_DIVISOR; /* <= head */
	uint64_t lost = restart - r->next;
	r->next = restart;
	return lost;
}

enum ring_result ki_ring_read(struct ring_reader *r, void *buf,
			   struct ring_record *rec)
{
	uint32_t cap = r->slot_size - RING_SLOT_HEADER;
	for (int attempt = 0;; attempt++) {
		/* Lock words hold 2 * seq, so sequence numbers end below 2^63;
		 * only a lying head sends a reader there, and its stream ends
		 * (next * 2 would wrap and match anything; next++ would too). */
		if (r->next >= RING_SEQ_END)
			return RING_EMPTY;
		if (attempt == READ_ATTEMPTS) {
			rec->lost = 1; /* give this slot up: never stall on it */
			r->next++;
			return RING_LOST;
		}
		/* The slot's own lock word says whether `next` is there, so a
		 * reader that keeps up never touches the head's cache line. */
		const struct slot_header *s =
			slot_at(r->base, r->slot_size, r->slot_count, r->next);
		struct slot_header *ms = (struct slot_header *)(uintptr_t)s;
		uint64_t want = r->next * 2;
		uint64_t v1 = atomic_load_explicit(&ms->seq2, memory_order_acquire);
		if (v1 < want || v1 == want + 1)
			return RING_EMPTY; /* not written yet, or being written */
		if (v1 != want) {
			/* A later message took the slot: we were overrun. */
			uint64_t lost = skip_overrun(r, load_head(r));
			if (lost) {
				rec->lost = lost;
				return RING_LOST;
			}
			continue;
		}
		uint32_t len = atomic_load_explicit(&ms->len, memory_order_relaxed);
		uint32_t flags = atomic_load_explicit(&ms->flags, memory_order_relaxed);
		rec->timestamp_ns = atomic_load_explicit(&ms->timestamp_ns, memory_order_relaxed);
		rec->large_id = atomic_load_explicit(&ms->large_id, memory_order_relaxed);
		if (SLOT_KIND(flags) == SLOT_INLINE) {
			if (len > cap)
				continue; /* a lie, or a torn read: re-check, then give up */
			memcpy(buf, (const uint8_t *)s + RING_SLOT_HEADER, len);
		} else if (SLOT_KIND(flags) != SLOT_LARGE) {
			continue;
		}
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&ms->seq2, memory_order_relaxed) != v1)
			continue;
		rec->seq = r->next++;
		rec->len = len;
		rec->flags = flags;
		rec->lost = 0;
		return RING_MESSAGE;
	}
}

uint64_t ki_ring_writer_head(const struct ring_writer *w)
{
	return w->head;
}

uint64_t ki_ring_reader_head(const struct ring_reader *r)
{
	if (!r->base) /* released while idle: all of it was read */
		return ki_ring_reader_position(r);
	const struct ring_header *h = (const struct ring_header *)r->base;
	return atomic_load_explicit(&((struct ring_header *)(uintptr_t)h)->head,
				    memory_order_relaxed);
}

uint64_t ki_ring_reader_position(const struct ring_reader *r)
{
	return r->next ? r->next - 1 : 0;
}
