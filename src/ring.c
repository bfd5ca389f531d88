/* The (publisher, channel) ring: a single writer, any number of read-only
 * readers, records packed end to end, each committed by its own seq word.
 * See ring.h for the layout and the protocol. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "ring.h"

/* Pads and restarts one read may go through before it says "nothing yet":
 * a ring that lies cannot keep a reader inside ki_ring_read. */
#define READ_ATTEMPTS 4
#define PREFAULT_CHUNK (64u << 10)
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif
/* Tries at a hint that keeps changing under us before we come back later. */
#define HINT_ATTEMPTS 4
/* Looks at the replay index (in all, however often it is overtaken) of a
 * reader walking to its first record while the publisher moves the index:
 * it is steady as long as the limit is (a publisher holding back for a
 * reliable reader), and until then the hint would cost records still
 * held. A bound, so that a ring that lies costs no more than a lap. */
#define INDEX_ATTEMPTS_WALK 256
/* A pool payload is copied this much at a time, the pool limit checked
 * after each piece. */
#define POOL_COPY_PIECE (64u << 10)

int ki_ring_geometry_valid(uint32_t slot_count, uint32_t slot_size, size_t *bytes)
{
	if (slot_count < RING_MIN_SLOTS || slot_count > RING_MAX_SLOTS ||
	    (slot_count & (slot_count - 1)))
		return -EBADMSG;
	if (slot_size < RING_MIN_SLOT_SIZE || slot_size > RING_MAX_SLOT_SIZE ||
	    slot_size % 64)
		return -EBADMSG;
	if (bytes)
		*bytes = RING_HEADER_SIZE + (size_t)slot_count * slot_size +
			 (size_t)ki_ring_pool_bytes(slot_count, slot_size);
	return 0;
}

static struct ring_header *header_of(const uint8_t *base)
{
	return (struct ring_header *)(uintptr_t)base;
}

static struct record_header *record_at(const uint8_t *base, uint64_t off)
{
	return (struct record_header *)(uintptr_t)(base + RING_HEADER_SIZE + off);
}

static uint64_t record_size(uint64_t body)
{
	return (RING_RECORD_HEADER + body + RING_ALIGN - 1) & ~(uint64_t)(RING_ALIGN - 1);
}

/* An offset with no room for a record header is skipped, by both sides. */
static void skip_short_tail(uint64_t capacity, uint64_t *pos, uint64_t *off)
{
	if (capacity - *off < RING_RECORD_HEADER) {
		*pos += capacity - *off;
		*off = 0;
	}
}

/* Small bodies are copied into and out of the ring a word at a time: a
 * 64-byte round trip took some 30 ns longer on each side with memcpy's
 * 64-byte vector accesses, which straddle the line the other CPU is
 * polling or has just released. */
#define WORD_COPY_MAX 256

/* Write n bytes of src at dst, inside a record: the last word's padding
 * is zeroes (records are padded to RING_ALIGN), src is read no further
 * than its n bytes. */
static void copy_in(uint8_t *dst, const void *src, size_t n)
{
	if (n > WORD_COPY_MAX) {
		memcpy(dst, src, n);
		return;
	}
	size_t i = 0;
	/* Each word goes from a register straight to the ring: a version
	 * that spilled it to the stack between the two stores made the
	 * round trip 0.2 us slower. */
	for (; i + RING_ALIGN <= n; i += RING_ALIGN) {
		uint64_t w;
		memcpy(&w, (const uint8_t *)src + i, RING_ALIGN);
		/* Atomic stores: the compiler must not turn this back into memcpy. */
		atomic_store_explicit((_Atomic uint64_t *)(void *)(dst + i), w,
				      memory_order_relaxed);
	}
	if (i < n) {
		uint64_t tail = 0;
		memcpy(&tail, (const uint8_t *)src + i, n - i);
		atomic_store_explicit((_Atomic uint64_t *)(void *)(dst + i), tail,
				      memory_order_relaxed);
	}
}

/* Copy a checked record's body of n bytes out of the ring into buf. The
 * words stay inside the record (padded to RING_ALIGN) and inside buf (a
 * caller's buffer holds ki_ring_inline_max bytes, a multiple of
 * RING_ALIGN). */
static void copy_out(void *buf, const uint8_t *src, size_t n)
{
	if (n > WORD_COPY_MAX) {
		memcpy(buf, src, n);
		return;
	}
	uint8_t *dst = buf;
	for (size_t i = 0; i < n; i += RING_ALIGN) {
		uint64_t w = atomic_load_explicit(
			(_Atomic uint64_t *)(uintptr_t)(src + i), memory_order_relaxed);
		memcpy(dst + i, &w, sizeof w);
	}
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
	atomic_store_explicit(&h->hint_seq, last_seq + 1, memory_order_relaxed);
	atomic_store_explicit(&h->limit, 0, memory_order_release);
	w->base = base;
	w->slot_count = slot_count;
	w->slot_size = slot_size;
	w->capacity = (uint64_t)slot_count * slot_size;
	w->segment = w->capacity / RING_SEGMENTS;
	w->first_seq = last_seq + 1;
	w->head = last_seq;
	w->pos = w->off = w->limit = w->index_next = 0;
	w->pool = (uint8_t *)base + RING_HEADER_SIZE + w->capacity;
	w->pool_bytes = ki_ring_pool_bytes(slot_count, slot_size);
	w->pool_pos = 0;
	w->pool_first = w->pool_count = 0;
	w->prefault_at = PREFAULT_CHUNK;
}

/* A new ring's pages come into being as the publisher first writes them: a
 * fault every 4 KiB on its side, and on each reader's too (a read fault
 * maps the pages around it only if they exist, and the ones after the
 * publisher's do not yet). Each costs 1.5 us or more on a VM: in a ring's
 * first lap a 64-byte round trip met one in about 4 % of hops (p99 8 us,
 * against 0.8 us once the ring had been round once). So once a ring is
 * written past its first PREFAULT_CHUNK (a quiet channel keeps only the
 * pages it wrote), a write that enters a chunk first makes all of that
 * chunk's pages exist, in one call (about 1.1 us a page, no fault each),
 * and a reader's fault then maps 16 pages at once. Resident: what was
 * written, rounded up to its chunk's end (at most a chunk more). After the
 * first lap every page exists, and this costs a compare per write. */
static void prefault(struct ring_writer *w, uint64_t end)
{
	uint64_t to = (end / PREFAULT_CHUNK + 1) * PREFAULT_CHUNK;
	/* A record that did not fit the first lap's end padded it and went
	 * on to the next lap: the pages under the pad were neither written
	 * nor all made yet, and the second lap writes them; make them now. */
	if (to > w->capacity || w->pos >= w->capacity)
		to = w->capacity;
	if (to <= w->prefault_at ||
	    madvise(w->base + RING_HEADER_SIZE + w->prefault_at, to - w->prefault_at,
		    MADV_POPULATE_WRITE) != 0) {
		/* Every page made, or a kernel without it (Linux < 5.14):
		 * the writes fault the pages in, as they always did. */
		w->prefault_at = UINT64_MAX;
		return;
	}
	w->prefault_at = to;
}

/* Before writing below `end`: if that passes the limit, raise it to the end
 * of end's segment, leaving (seq, rec_pos) as the place readers restart at.
 * Readers must see the new limit before any byte of the new lap. */
static void announce(struct ring_writer *w, uint64_t end, uint64_t seq, uint64_t rec_pos)
{
	if (end <= w->limit)
		return;
	struct ring_header *h = header_of(w->base);
	uint64_t gen = atomic_load_explicit(&h->hint_gen, memory_order_relaxed);
	atomic_store_explicit(&h->hint_gen, gen + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit(&h->hint_seq, seq, memory_order_relaxed);
	atomic_store_explicit(&h->hint_pos, rec_pos, memory_order_relaxed);
	atomic_store_explicit(&h->hint_gen, gen + 2, memory_order_release);
	w->limit = (end + w->segment - 1) / w->segment * w->segment;
	atomic_store_explicit(&h->limit, w->limit, memory_order_release);
	atomic_thread_fence(memory_order_release);
}

static void put_header(struct record_header *r, uint32_t len, uint16_t flags,
		       uint16_t meta_len, uint64_t timestamp_ns)
{
	atomic_store_explicit(&r->len, len, memory_order_relaxed);
	atomic_store_explicit(&r->flags, flags, memory_order_relaxed);
	atomic_store_explicit(&r->meta_len, meta_len, memory_order_relaxed);
	atomic_store_explicit(&r->timestamp_ns, timestamp_ns, memory_order_relaxed);
}

/* Fill the rest of the lap with a pad record, so the next record starts
 * whole at the lap's beginning. */
static void pad_lap(struct ring_writer *w, uint64_t seq)
{
	uint64_t room = w->capacity - w->off;
	announce(w, w->pos + room + RING_ALIGN, seq, w->pos);
	struct record_header *r = record_at(w->base, w->off);
	put_header(r, 0, REC_PAD, 0, 0);
	atomic_store_explicit(&record_at(w->base, 0)->seq, 0, memory_order_relaxed);
	atomic_store_explicit(&r->seq, seq, memory_order_release);
	w->pos += room;
	w->off = 0;
}

/* The committed record (seq, pos) is the first to start at or after every
 * segment boundary from index_next up to pos: say so in the replay index
 * (only the last RING_SEGMENTS boundaries have an entry). */
static void index_record(struct ring_writer *w, uint64_t seq, uint64_t pos)
{
	struct ring_header *h = header_of(w->base);
	uint64_t first = w->index_next / w->segment, last = pos / w->segment;
	if (last - first >= RING_SEGMENTS)
		first = last - (RING_SEGMENTS - 1);
	uint64_t gen = atomic_load_explicit(&h->index_gen, memory_order_relaxed);
	atomic_store_explicit(&h->index_gen, gen + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	for (uint64_t b = first; b <= last; b++) {
		atomic_store_explicit(&h->index[b % RING_SEGMENTS].seq, seq,
				      memory_order_relaxed);
		atomic_store_explicit(&h->index[b % RING_SEGMENTS].pos, pos,
				      memory_order_relaxed);
	}
	atomic_store_explicit(&h->index_gen, gen + 2, memory_order_release);
	w->index_next = (last + 1) * w->segment;
}

/* The two halves of a write, inlined into ki_ring_write (the hot path)
 * and exported as ki_ring_claim/ki_ring_commit for kite_claim. */
static inline __attribute__((always_inline)) void *claim_room(struct ring_writer *w,
							     uint32_t body)
{
	uint64_t seq = w->head + 1;
	uint64_t size = record_size(body);
	if (w->capacity - w->off < size)
		pad_lap(w, seq);
	uint64_t next_pos = w->pos + size, next_off = w->off + size;
	skip_short_tail(w->capacity, &next_pos, &next_off);
	if (__builtin_expect(next_pos + RING_ALIGN > w->prefault_at, 0))
		prefault(w, next_pos + RING_ALIGN);
	/* The whole record and the next one's seq word, before any byte of
	 * it is written: a reader a lap behind must see the limit first. */
	announce(w, next_pos + RING_ALIGN, seq, w->pos);
	return (uint8_t *)record_at(w->base, w->off) + RING_RECORD_HEADER;
}

void *ki_ring_claimed_body(const struct ring_writer *w)
{
	return (uint8_t *)record_at(w->base, w->off) + RING_RECORD_HEADER;
}

static inline __attribute__((always_inline)) uint64_t
commit_record(struct ring_writer *w, uint16_t meta_len, uint32_t len, uint16_t flags,
	      uint64_t timestamp_ns)
{
	uint64_t seq = w->head + 1;
	uint64_t size = record_size((uint64_t)meta_len + len);
	uint64_t next_pos = w->pos + size, next_off = w->off + size;
	skip_short_tail(w->capacity, &next_pos, &next_off);
	struct record_header *r = record_at(w->base, w->off);
	/* A reader done with this record finds "not yet" where the next goes,
	 * never a stale word of an older lap. */
	atomic_store_explicit(&record_at(w->base, next_off)->seq, 0, memory_order_relaxed);
	/* The header's fields go last, right before its seq: a reader polls
	 * this line, and every separate burst of stores to it costs a round
	 * trip of the line between the two CPUs (the 64-byte round trip went
	 * from 0.69 to 0.49 us in the packed floor with a 24-byte header). */
	if (timestamp_ns == RING_STAMP_NOW) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		timestamp_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	}
	put_header(r, len, flags, meta_len, timestamp_ns);
	atomic_store_explicit(&r->seq, seq, memory_order_release);
	if (w->pos >= w->index_next) /* once per segment */
		index_record(w, seq, w->pos);
	w->head = seq;
	w->pos = next_pos;
	w->off = next_off;
	return seq;
}

void *ki_ring_claim(struct ring_writer *w, uint32_t body)
{
	return claim_room(w, body);
}

uint64_t ki_ring_commit(struct ring_writer *w, uint16_t meta_len, uint32_t len,
			uint16_t flags, uint64_t timestamp_ns)
{
	return commit_record(w, meta_len, len, flags, timestamp_ns);
}

uint64_t ki_ring_write(struct ring_writer *w, const void *meta, uint16_t meta_len,
		       const void *payload, uint32_t len, uint16_t flags,
		       uint64_t timestamp_ns)
{
	uint8_t *body = claim_room(w, (uint32_t)meta_len + len);
	if (meta_len) /* (an origin block: relayed messages only) */
		memcpy(body, meta, meta_len);
	if (len && !meta_len)
		copy_in(body, payload, len);
	else if (len)
		memcpy(body + meta_len, payload, len);
	return commit_record(w, meta_len, len, flags, timestamp_ns);
}

uint64_t ki_ring_reader_floor(const struct ring_writer *w, uint64_t body)
{
	/* As ki_ring_write goes: a pad to the lap's end if the record does
	 * not fit, the record, the next record's seq word. */
	uint64_t size = record_size(body), pos = w->pos, off = w->off;
	if (w->capacity - off < size) {
		pos += w->capacity - off;
		off = 0;
	}
	uint64_t next_pos = pos + size, next_off = off + size;
	skip_short_tail(w->capacity, &next_pos, &next_off);
	uint64_t end = next_pos + RING_ALIGN;
	if (end <= w->limit)
		return 0;
	uint64_t limit = (end + w->segment - 1) / w->segment * w->segment;
	uint64_t floor = limit > w->capacity ? limit - w->capacity : 0;
	return floor < w->pos ? floor : w->pos;
}

/* Where a pool payload of len bytes goes: pool_pos, or the next lap's
 * start if it would cross the pool's end. */
static uint64_t pool_place(const struct ring_writer *w, uint64_t len)
{
	uint64_t off = w->pool_pos % w->pool_bytes;
	return off + len > w->pool_bytes ? w->pool_pos + (w->pool_bytes - off) : w->pool_pos;
}

uint64_t ki_ring_pool_floor(const struct ring_writer *w, uint64_t len)
{
	/* The claim writes [at, at + len): a payload starting below
	 * at + len - pool_bytes lies (partly) under it, or was written over
	 * before (then its reader floor is lower still); ring ends only grow. */
	uint64_t end = pool_place(w, len) + len, floor = 0;
	for (uint32_t i = 0; i < w->pool_count; i++) {
		uint32_t e = (w->pool_first + i) % RING_POOL_TRACK;
		if (w->pool_track[e].start + w->pool_bytes >= end)
			break;
		floor = w->pool_track[e].ring_end;
	}
	return floor < w->pos ? floor : w->pos;
}

void *ki_ring_pool_claim(struct ring_writer *w, uint64_t len, uint64_t *pool_pos)
{
	uint64_t at = pool_place(w, len);
	struct ring_header *h = header_of(w->base);
	/* Readers must see the limit before any byte we write below it. */
	atomic_store_explicit(&h->pool_limit, at + len, memory_order_release);
	atomic_thread_fence(memory_order_release);
	w->pool_pos = (at + len + RING_ALIGN - 1) & ~(uint64_t)(RING_ALIGN - 1);
	*pool_pos = at;
	return ki_ring_pool_payload(w, at);
}

void *ki_ring_pool_payload(const struct ring_writer *w, uint64_t pool_pos)
{
	return w->pool + pool_pos % w->pool_bytes;
}

uint64_t ki_ring_pool_commit(struct ring_writer *w, uint64_t pool_pos, uint64_t len,
			     uint16_t flags, uint64_t timestamp_ns)
{
	struct ring_pool_ref ref = {pool_pos, len};
	uint64_t seq = ki_ring_write(w, NULL, 0, &ref, sizeof ref, REC_POOL | flags,
				     timestamp_ns);
	/* Forget payloads nothing can write over any more (a later claim
	 * starts at or past pool_pos), then remember this one. */
	while (w->pool_count && (w->pool_track[w->pool_first].end + w->pool_bytes <= pool_pos ||
				 w->pool_count == RING_POOL_TRACK)) {
		w->pool_first = (w->pool_first + 1) % RING_POOL_TRACK;
		w->pool_count--;
	}
	uint32_t e = (w->pool_first + w->pool_count++) % RING_POOL_TRACK;
	w->pool_track[e].start = pool_pos;
	w->pool_track[e].end = pool_pos + len;
	w->pool_track[e].ring_end = w->pos;
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

void ki_ring_reader_init(struct ring_reader *r, const void *base, uint32_t slot_count,
			 uint32_t slot_size, uint64_t seq, uint64_t pos)
{
	r->base = base;
	r->slot_count = slot_count;
	r->slot_size = slot_size;
	r->capacity = (uint64_t)slot_count * slot_size;
	r->pool = (const uint8_t *)base + RING_HEADER_SIZE + r->capacity;
	r->pool_bytes = ki_ring_pool_bytes(slot_count, slot_size);
	r->next = seq;
	r->pos = pos;
	r->off = pos % r->capacity;
	r->inline_max = ki_ring_inline_max(slot_count, slot_size);
	r->read_max = ki_ring_read_max(slot_count, slot_size);
	r->live_from = 0;
	if (seq == 0 || seq >= RING_START_MAX || pos % RING_ALIGN) {
		r->next = RING_SEQ_END; /* a liar: its stream is over at once */
		r->pos = r->off = 0;
	}
	skip_short_tail(r->capacity, &r->pos, &r->off);
}

/* Has the publisher announced writing over the record at our position? */
static int overrun(const struct ring_reader *r, memory_order order)
{
	uint64_t limit = atomic_load_explicit(&header_of(r->base)->limit, order);
	return limit > r->pos + r->capacity;
}

/* Overrun, or told a lie: go to the publisher's hint and count what we
 * skipped. A hint that does not lead forward ends the stream. */
static enum ring_result restart(struct ring_reader *r, struct ring_record *rec)
{
	struct ring_header *h = header_of(r->base);
	for (int attempt = 0; attempt < HINT_ATTEMPTS; attempt++) {
		uint64_t gen = atomic_load_explicit(&h->hint_gen, memory_order_acquire);
		uint64_t seq = atomic_load_explicit(&h->hint_seq, memory_order_relaxed);
		uint64_t pos = atomic_load_explicit(&h->hint_pos, memory_order_relaxed);
		atomic_thread_fence(memory_order_acquire);
		if ((gen & 1) || atomic_load_explicit(&h->hint_gen, memory_order_relaxed) != gen)
			continue;
		if (seq <= r->next || seq >= RING_SEQ_END || pos <= r->pos ||
		    pos % RING_ALIGN) {
			r->next = RING_SEQ_END;
			return RING_EMPTY;
		}
		rec->lost = seq - r->next;
		r->next = seq;
		r->pos = pos;
		r->off = pos % r->capacity;
		skip_short_tail(r->capacity, &r->pos, &r->off);
		return RING_LOST;
	}
	return RING_EMPTY; /* the publisher is moving it: next time */
}

/* Position 0 was written over: start r at the replay index's entry for the
 * oldest boundary no reader counts as overrun (limit - capacity). 0 if the
 * index gives nothing usable before target (past_target: nothing usable;
 * an entry at or after target then says everything before it is gone), r
 * untouched. An attempt that finds the publisher moving it (a new segment
 * since we read the limit) looks again, while *attempts (counted down)
 * lasts. */
static int index_start(struct ring_reader *r, uint64_t target, int past_target,
		       unsigned *attempts)
{
	struct ring_header *h = header_of(r->base);
	uint64_t segment = r->capacity / RING_SEGMENTS;
	while (*attempts) {
		--*attempts;
		uint64_t limit = atomic_load_explicit(&h->limit, memory_order_acquire);
		if (limit <= r->capacity || limit % segment)
			return 0; /* position 0 is held (or a liar's limit) */
		uint64_t oldest = limit - r->capacity;
		unsigned slot = (unsigned)(oldest / segment % RING_SEGMENTS);
		uint64_t gen = atomic_load_explicit(&h->index_gen, memory_order_acquire);
		uint64_t seq = atomic_load_explicit(&h->index[slot].seq, memory_order_relaxed);
		uint64_t pos = atomic_load_explicit(&h->index[slot].pos, memory_order_relaxed);
		atomic_thread_fence(memory_order_acquire);
		if ((gen & 1) ||
		    atomic_load_explicit(&h->index_gen, memory_order_relaxed) != gen)
			continue;
		/* An entry of a later boundary (the publisher moved on since
		 * we read the limit): look again. */
		if (pos >= limit)
			continue;
		if (pos < oldest || pos <= r->pos || pos % RING_ALIGN || seq < r->next ||
		    (seq >= target && !past_target) || seq >= RING_SEQ_END)
			return 0;
		r->next = seq;
		r->pos = pos;
		r->off = pos % r->capacity;
		return 1;
	}
	return 0;
}

/* On the way to target, a later lap overtook us: go on from the oldest
 * record the ring still holds (the replay index), not from the hint, its
 * newest segment: what lies between is still there (for a reliable
 * subscriber, held for it). The hint if the index has nothing usable. */
static enum ring_result overtaken(struct ring_reader *r, uint64_t target,
				  unsigned *index_tries, struct ring_record *rec)
{
	uint64_t from = r->next;
	if (!index_start(r, target, 1, index_tries))
		return restart(r, rec);
	rec->lost = r->next - from;
	return RING_LOST;
}

/* Overrun while reading: to the hint, but for records replayed before our
 * live start (live_from), which the publisher may write over before it
 * knows where a reliable reader is: from those, to the oldest record held,
 * so that no live one is skipped that is still there. */
static enum ring_result overrun_restart(struct ring_reader *r, struct ring_record *rec)
{
	unsigned tries = INDEX_ATTEMPTS_WALK;
	if (r->next >= r->live_from)
		return restart(r, rec);
	enum ring_result res = overtaken(r, r->live_from, &tries, rec);
	/* (An index that names our own seq further on lies: nothing lost,
	 * we read on from there.) */
	return res == RING_LOST && !rec->lost ? RING_EMPTY : res;
}

/* The body size of the record at our position, checked against our own
 * geometry, its header fields (flags already read) in rec; -1 if it cannot
 * be an honest record. */
static inline int64_t checked_body(const struct ring_reader *r,
				   const struct record_header *h, uint16_t flags,
				   struct ring_record *rec)
{
	struct record_header *m = (struct record_header *)(uintptr_t)h;
	uint32_t len = atomic_load_explicit(&m->len, memory_order_relaxed);
	uint16_t meta_len = atomic_load_explicit(&m->meta_len, memory_order_relaxed);
	rec->timestamp_ns = atomic_load_explicit(&m->timestamp_ns, memory_order_relaxed);
	uint64_t body = (uint64_t)meta_len + len;
	if ((flags & ~REC_KNOWN_FLAGS) || (flags & REC_PAD) || body > r->inline_max ||
	    RING_RECORD_HEADER + body > r->capacity - r->off)
		return -1;
	if ((flags & (REC_LARGE | REC_POOL)) &&
	    ((flags & (REC_LARGE | REC_POOL)) == (REC_LARGE | REC_POOL) ||
	     len != sizeof(struct ring_large) || ((flags & REC_POOL) && meta_len)))
		return -1;
	rec->flags = flags;
	rec->meta_len = meta_len;
	rec->len = len;
	rec->large_id = 0;
	return (int64_t)body;
}

/* The pool payload a REC_POOL record (its ring_pool_ref in buf) names,
 * checked against our own geometry and copied over the reference into buf;
 * 0 if it cannot be an honest one or was written over while we copied it
 * (a later lap's payload, or a liar's): that message is lost, no other. */
static int take_pool(const struct ring_reader *r, void *buf, struct ring_record *rec)
{
	struct ring_pool_ref ref;
	memcpy(&ref, (uint8_t *)buf + rec->meta_len, sizeof ref);
	if (!r->pool_bytes || ref.len > r->pool_bytes / RING_POOL_SHARE ||
	    ref.pos % RING_ALIGN || ref.pos % r->pool_bytes + ref.len > r->pool_bytes)
		return 0;
	struct ring_header *h = header_of(r->base);
	/* Announced before the payload's first byte was written. */
	uint64_t limit = atomic_load_explicit(&h->pool_limit, memory_order_acquire);
	if (limit < ref.pos + ref.len || limit > ref.pos + r->pool_bytes)
		return 0;
	/* In pieces, each checked: everything we copied must predate any
	 * write over it (pool bytes are only written below a limit announced
	 * first), and a reader being overrun gives up early, not after a
	 * whole copy it must throw away. */
	const uint8_t *from = r->pool + ref.pos % r->pool_bytes;
	for (uint64_t done = 0; done < ref.len;) {
		uint64_t n = ref.len - done < POOL_COPY_PIECE ? ref.len - done : POOL_COPY_PIECE;
		memcpy((uint8_t *)buf + done, from + done, n);
		done += n;
		atomic_thread_fence(memory_order_acquire);
		limit = atomic_load_explicit(&h->pool_limit, memory_order_relaxed);
		if (limit > ref.pos + r->pool_bytes)
			return 0;
	}
	rec->len = (uint32_t)ref.len;
	return 1;
}

enum ring_result ki_ring_read(struct ring_reader *r, void *buf,
			      struct ring_record *rec)
{
	for (int attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
		/* Only a lying hint sends a reader this far: its stream ends. */
		if (r->next >= RING_SEQ_END)
			return RING_EMPTY;
		struct record_header *h = record_at(r->base, r->off);
		/* A record's body mostly lies on the line after its seq word's:
		 * ask for both lines (the publisher's CPU holds them) at once.
		 * (A round trip took 0.47 us instead of 0.53.) */
		if (r->off + 64 < r->capacity)
			__builtin_prefetch((const uint8_t *)h + 64);
		uint64_t seq = atomic_load_explicit(&h->seq, memory_order_acquire);
		if (seq != r->next) {
			/* Not written yet, or a later lap took its place. */
			if (!overrun(r, memory_order_acquire))
				return RING_EMPTY;
			return overrun_restart(r, rec);
		}
		uint16_t flags = atomic_load_explicit(&h->flags, memory_order_relaxed);
		int64_t body = flags == REC_PAD ? 0 : checked_body(r, h, flags, rec);
		if (body > 0)
			copy_out(buf, (const uint8_t *)h + RING_RECORD_HEADER, (size_t)body);
		/* Everything we read must predate any write over it. */
		atomic_thread_fence(memory_order_acquire);
		if (overrun(r, memory_order_relaxed))
			return overrun_restart(r, rec);
		if (body < 0)
			return restart(r, rec);
		if (flags == REC_PAD) {
			r->pos += r->capacity - r->off;
			r->off = 0;
			continue;
		}
		int whole = 1;
		if (flags & REC_LARGE) {
			struct ring_large large;
			memcpy(&large, (uint8_t *)buf + rec->meta_len, sizeof large);
			if (large.len > KITE_MSG_MAX)
				return restart(r, rec);
			rec->large_id = large.large_id;
			rec->len = (uint32_t)large.len;
		} else if (flags & REC_POOL) {
			whole = take_pool(r, buf, rec);
		}
		uint64_t size = record_size((uint64_t)body);
		r->pos += size;
		r->off += size;
		skip_short_tail(r->capacity, &r->pos, &r->off);
		/* The next record's seq word starts on its way to us while our
		 * caller handles this one: a reader behind its publisher reads
		 * faster (its line too, not: that slowed the round trip). */
		__builtin_prefetch(record_at(r->base, r->off));
		rec->seq = r->next++;
		rec->lost = !whole;
		return whole ? RING_MESSAGE : RING_LOST;
	}
	return RING_EMPTY; /* pads after pads: a liar, asked again later */
}

int ki_ring_pending(const struct ring_reader *r)
{
	if (r->next >= RING_SEQ_END)
		return 0; /* an ended stream, as ki_ring_read sees it */
	const struct record_header *h = record_at(r->base, r->off);
	uint64_t seq = atomic_load_explicit(&((struct record_header *)(uintptr_t)h)->seq,
					    memory_order_acquire);
	if (!overrun(r, memory_order_acquire))
		return seq == r->next;
	/* Overrun: ki_ring_read goes to the publisher's hint, unless it is
	 * being changed (odd). Nothing is ready then: the publisher finishes
	 * the hint before the record it is writing, whose commit wakes us. A
	 * publisher that leaves it odd keeps its own stream stuck, and does
	 * not keep its reader awake (a sleeper woken every millisecond). */
	return !(atomic_load_explicit(&header_of(r->base)->hint_gen, memory_order_acquire) & 1);
}

/* Is the checked REC_POOL record h's payload already written over (or a
 * reference no pool holds)? pool_limit only grows: it stays so. */
static int pool_reused(const struct ring_reader *r, const struct record_header *h)
{
	struct ring_pool_ref ref;
	memcpy(&ref, (const uint8_t *)h + RING_RECORD_HEADER, sizeof ref);
	uint64_t limit = atomic_load_explicit(&header_of(r->base)->pool_limit,
					      memory_order_acquire);
	return !r->pool_bytes || limit > ref.pos + r->pool_bytes;
}

/* Move forward without reading toward target, as far as the ring leads
 * within about a lap; ki_ring_seek and ki_ring_reader_head judge where it
 * stopped. With since_ns (not 0) it also stops at the first record stamped
 * at or after it, and returns 1 then. With past_reused, each record it
 * passes whose message a replaying reader cannot have (a pool payload
 * written over, a memfd message) leaves *past_reused where r is right
 * after it. */
static int walk(struct ring_reader *r, uint64_t target, uint64_t since_ns,
		struct ring_reader *past_reused)
{
	/* Each step passes a record (at least a header's bytes) or takes a
	 * hint: an honest ring has target within a lap of where we are, or
	 * a hint past it; a ring that keeps us longer is lying. */
	uint64_t steps = r->capacity / RING_RECORD_HEADER + 2 * HINT_ATTEMPTS;
	unsigned index_tries = INDEX_ATTEMPTS_WALK;
	while (r->next < target && r->next < RING_SEQ_END) {
		if (steps-- == 0)
			break;
		const struct record_header *h = record_at(r->base, r->off);
		struct record_header *m = (struct record_header *)(uintptr_t)h;
		uint64_t seq = atomic_load_explicit(&m->seq, memory_order_acquire);
		struct ring_record rec;
		if (seq != r->next) {
			/* Before target, so written before we were told of it:
			 * a later lap took it, or a lie. */
			if (!overrun(r, memory_order_acquire))
				break;
			(void)overtaken(r, target, &index_tries, &rec);
			continue;
		}
		uint16_t flags = atomic_load_explicit(&m->flags, memory_order_relaxed);
		int64_t body = flags == REC_PAD ? 0 : checked_body(r, h, flags, &rec);
		/* A memfd message's descriptor went only to the holders
		 * of its time: to a reader replaying it, it is never held. */
		int unheld = past_reused && body >= 0 && flags != REC_PAD &&
			     ((rec.flags & REC_LARGE) ||
			      ((rec.flags & REC_POOL) && pool_reused(r, h)));
		atomic_thread_fence(memory_order_acquire);
		if (overrun(r, memory_order_relaxed)) {
			(void)overtaken(r, target, &index_tries, &rec);
			continue;
		}
		if (body < 0) {
			restart(r, &rec);
			continue;
		}
		if (flags == REC_PAD) {
			r->pos += r->capacity - r->off;
			r->off = 0;
			continue;
		}
		if (since_ns && rec.timestamp_ns >= since_ns)
			return 1;
		uint64_t size = record_size((uint64_t)body);
		r->pos += size;
		r->off += size;
		skip_short_tail(r->capacity, &r->pos, &r->off);
		r->next++;
		if (unheld)
			*past_reused = *r;
	}
	return 0;
}

uint64_t ki_ring_seek(struct ring_reader *r, uint64_t target)
{
	walk(r, target, 0, NULL);
	if (r->next < target) {
		r->next = RING_SEQ_END; /* it does not hold what it offered */
		return 0;
	}
	return r->next < RING_SEQ_END ? r->next - target : 0;
}

uint64_t ki_ring_replay(struct ring_reader *r, uint64_t target, uint64_t last_n,
			uint64_t since_ns)
{
	if (r->next >= RING_SEQ_END || r->next >= target)
		return ki_ring_seek(r, target);
	struct ring_reader start = *r;
	unsigned tries = HINT_ATTEMPTS;
	if (overrun(&start, memory_order_acquire) && !index_start(&start, target, 0, &tries))
		return ki_ring_seek(r, target);
	uint64_t wanted = start.next;
	if (last_n != UINT64_MAX && target - start.next > last_n)
		wanted = target - last_n;
	/* Records before target were written before the offer named it: an
	 * honest ring leads there (or a hint past it, when a later lap took
	 * them); a walk that stops short met a liar. */
	walk(&start, wanted, 0, NULL);
	int stamped = since_ns && start.next < target &&
		      walk(&start, target, since_ns, NULL);
	if (start.next >= RING_SEQ_END || (start.next < wanted) ||
	    (start.next < target && !stamped && since_ns))
		return ki_ring_seek(r, target);
	/* A pool record whose payload was since written over is not held
	 * either (pool payloads follow the seqs: every earlier one is gone
	 * too), nor a memfd message (its descriptor went to the holders of
	 * its time): start after the last such before target, not with a
	 * loss for each. */
	struct ring_reader scan = start;
	walk(&scan, target, 0, &start);
	*r = start;
	r->live_from = target;
	return r->next > target ? r->next - target : 0;
}

uint64_t ki_ring_writer_head(const struct ring_writer *w)
{
	return w->head;
}

uint64_t ki_ring_reader_head(const struct ring_reader *r)
{
	if (!r->base) /* released while idle: all of it was read */
		return ki_ring_reader_position(r);
	/* No shared head per message: count the committed records ahead of
	 * us, on a copy of the reader (at most about a lap of headers). */
	struct ring_reader ahead = *r;
	walk(&ahead, RING_START_MAX, 0, NULL);
	return ahead.next < RING_SEQ_END ? ki_ring_reader_position(&ahead)
					 : ki_ring_reader_position(r);
}

uint64_t ki_ring_reader_position(const struct ring_reader *r)
{
	return r->next ? r->next - 1 : 0;
}
