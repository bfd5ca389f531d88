/* Internal: the shared-memory ring of one (publisher, channel) stream.
 *
 * Layout of the sealed memfd: a 4 KiB header page, then `capacity` bytes
 * (slot_count * slot_size) of records laid end to end, each an 8-aligned
 *
 *   +--------+-----+-------+----------+--------------+--------------+-----+
 *   | seq 8  | len | flags | meta_len | timestamp 8  | meta (m)     | data|
 *   |        | 4   | 2     | 2        |              | payload (len)| pad |
 *   +--------+-----+-------+----------+--------------+--------------+-----+
 *
 * at absolute byte positions that only grow (position % capacity is the
 * offset). The publisher writes a record's payload, stores 0 in the seq
 * word where the next record goes, then the record's other fields and its
 * seq last (release; the fields right before it, so the line a reader
 * polls moves between CPUs as seldom as it can): a reader that expects
 * `seq` at `pos` knows the record is complete when that word says so, and
 * never mistakes an older lap's bytes for it. A record that would cross the end of the data is preceded by a
 * pad record (REC_PAD) to the end; an offset with no room for a header is
 * skipped by both sides.
 *
 * No shared head per message: before it writes bytes at or past `limit`,
 * the publisher raises `limit` a segment (capacity / 8) at a time and
 * leaves a hint (seq and position of the record it is writing). A reader
 * whose copy was made while limit > pos + capacity may hold bytes of a
 * later lap: it drops them and restarts at the hint, counting exactly the
 * sequence numbers it skipped (lost).
 *
 * Replay index: for each of the last RING_SEGMENTS segment boundaries B
 * (multiples of capacity / 8), the seq and position of the first record
 * starting at or after B, written once per segment under index_gen (a
 * seqlock) after that record is committed. A late joiner asking for the
 * last N messages starts at the boundary limit - capacity, the oldest
 * position no reader counts as overrun, and walks forward from there:
 * records have no back links, so this is how a reader finds the oldest
 * record the ring still holds once position 0 was written over.
 *
 * The large-message pool: after the records, pool_bytes (ki_ring_pool_bytes)
 * of payloads laid end to end in the same sealed memfd, each 8-aligned and
 * never across the pool's end (a payload that would cross it starts at the
 * next lap). A message too long to go inline (ki_ring_inline_max) but no
 * longer than ki_ring_pool_msg_max goes there, named by a REC_POOL record
 * (struct ring_pool_ref: absolute pool position and length). Before it
 * writes pool bytes below end, the publisher stores pool_limit = end; a
 * reader copies the payload out, then reads pool_limit: above pos +
 * pool_bytes, a later payload may have been written over the copy, which
 * is dropped and counted lost (that message only).
 *
 * Subscribers map it read-only and trust nothing they read: every length
 * and position is checked against their own copy of the geometry. A ring
 * that lies can cost its own messages (counted as lost, or its stream
 * ends), never memory safety or progress. Sequence numbers start at any
 * N >= 1 (a re-created ring continues an old stream); 0 means "nothing". */
#ifndef KITE_RING_H
#define KITE_RING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "kite.h"

#define RING_MAGIC 0x32474e5245544b4bull /* "KKTERNG2" */
#define RING_VERSION 3
#define RING_HEADER_SIZE 4096
#define RING_RECORD_HEADER 24
#define RING_ALIGN 8
/* Inline payloads (metadata included) are at most slot_size - this. */
#define RING_INLINE_RESERVE 32
#define RING_MIN_SLOTS 2
#define RING_MAX_SLOTS (1u << 20)
#define RING_MIN_SLOT_SIZE 64
#define RING_MAX_SLOT_SIZE (1u << 20)
#define RING_SEGMENTS 8
/* The pool holds RING_POOL_RINGS times the records' bytes, at most
 * RING_POOL_MAX; one message takes at most 1 / RING_POOL_SHARE of it. */
#define RING_POOL_RINGS 4
#define RING_POOL_MAX (128ull << 20)
#define RING_POOL_SHARE 4
/* Pool payloads the writer remembers (where each starts, where its record
 * ends) for reliable readers: a lap of the pool holds at most
 * RING_POOL_RINGS * RING_SEGMENTS + 1 of them (each is longer than a
 * segment). */
#define RING_POOL_TRACK 64
/* Largest ring a subscriber maps (a publisher could offer up to 1 TiB). */
#define RING_ACCEPT_MAX (1ull << 30)
/* Start sequences at or above this are lies (streams end at 2^63). */
#define RING_START_MAX (1ull << 62)
#define RING_SEQ_END (1ull << 63)

/* Record flags. */
enum {
	REC_LARGE = 1, /* payload: struct ring_large, the message is elsewhere */
	REC_PAD = 2,   /* no message: the rest of the lap is unused */
	/* The message (metadata then payload inline, or the large one)
	 * starts with an origin block (origin.h), a relayed message's
	 * remote claim; inline, the block is the record's metadata. */
	REC_ORIGIN = 4,
	REC_POOL = 8, /* payload: struct ring_pool_ref, the message is in the pool */
};
#define REC_KNOWN_FLAGS (REC_LARGE | REC_PAD | REC_ORIGIN | REC_POOL)

struct ring_header {
	uint64_t magic;
	uint32_t version;
	uint32_t header_size;
	uint32_t slot_count;
	uint32_t slot_size;
	uint64_t publisher;
	char channel[KITE_CHANNEL_MAX + 1];
	/* 1 + this stream's entry in its publisher's stream heads page (sent
	 * beside the ring), 0: none. Untrusted, like everything here. */
	uint32_t heads_slot;
	/* Written once per segment the publisher enters, read by readers
	 * only to check a copy and to restart after an overrun. */
	_Alignas(64) _Atomic uint64_t limit; /* nothing written at or past it */
	_Atomic uint64_t hint_gen;           /* odd while the hint changes */
	_Atomic uint64_t hint_seq;
	_Atomic uint64_t hint_pos;
	/* The replay index (above); 0s until a record starts there. */
	_Alignas(64) _Atomic uint64_t index_gen; /* odd while it changes */
	struct {
		_Atomic uint64_t seq, pos;
	} index[RING_SEGMENTS];
	/* Nothing written in the pool at or past it (absolute position). */
	_Alignas(64) _Atomic uint64_t pool_limit;
	/* CLOCK_MONOTONIC when the publisher began this ring's stream (its
	 * first ring; a ring re-made after an idle release keeps it), 0:
	 * unknown. Written before the ring is handed over, then never.
	 * Untrusted: a liar can only make its own stream's start wrong. */
	uint64_t stream_born_ns;
	/* Which CLOCK_MONOTONIC that is (ki_monotonic_clock_id: the writer's
	 * time namespace), 0: unknown. A reader on another clock cannot
	 * compare its own stamps with stream_born_ns. */
	uint64_t stream_clock;
};

struct record_header {
	_Atomic uint64_t seq; /* stored last; 0: nothing yet */
	_Atomic uint32_t len; /* payload bytes after the metadata */
	_Atomic uint16_t flags;
	_Atomic uint16_t meta_len; /* bytes of metadata before the payload */
	_Atomic uint64_t timestamp_ns;
};

/* The payload of a REC_LARGE record. */
struct ring_large {
	uint64_t large_id;
	uint64_t len;
};

_Static_assert(sizeof(struct record_header) == RING_RECORD_HEADER, "record header");
_Static_assert(sizeof(struct ring_header) <= RING_HEADER_SIZE, "ring header");

/* The payload of a REC_POOL record. */
struct ring_pool_ref {
	uint64_t pos; /* absolute pool position, 8-aligned */
	uint64_t len;
};

_Static_assert(sizeof(struct ring_pool_ref) == sizeof(struct ring_large), "same size");

/* 0 if the geometry is acceptable; *bytes gets the memfd size (header,
 * records and pool). */
int ki_ring_geometry_valid(uint32_t slot_count, uint32_t slot_size, size_t *bytes);

/* Most inline bytes (metadata + payload) a record of this geometry takes:
 * a segment (an eighth of the ring) less RING_INLINE_RESERVE, and never
 * less than slot_size less it. */
static inline uint32_t ki_ring_inline_max(uint32_t slot_count, uint32_t slot_size)
{
	uint64_t segment = (uint64_t)slot_count * slot_size / RING_SEGMENTS;
	uint64_t max = slot_size > RING_INLINE_RESERVE ? slot_size - RING_INLINE_RESERVE : 0;
	if (segment > RING_INLINE_RESERVE && segment - RING_INLINE_RESERVE > max)
		max = segment - RING_INLINE_RESERVE;
	return max > (1u << 30) ? (1u << 30) : (uint32_t)max;
}

/* Bytes of the large-message pool after the records: RING_POOL_RINGS times
 * theirs, at most RING_POOL_MAX; 0 (no pool) where its share would not hold
 * at least twice what a record does inline (rings of 256 MiB and more). */
static inline uint64_t ki_ring_pool_bytes(uint32_t slot_count, uint32_t slot_size)
{
	uint64_t pool = (uint64_t)slot_count * slot_size * RING_POOL_RINGS;
	if (pool > RING_POOL_MAX)
		pool = RING_POOL_MAX;
	return pool / RING_POOL_SHARE >= 2ull * ki_ring_inline_max(slot_count, slot_size) ? pool : 0;
}

/* Longest message the pool takes (0: none). */
static inline uint64_t ki_ring_pool_msg_max(uint32_t slot_count, uint32_t slot_size)
{
	return ki_ring_pool_bytes(slot_count, slot_size) / RING_POOL_SHARE;
}

/* The copy buffer ki_ring_read needs: an inline record or a pool payload. */
static inline uint64_t ki_ring_read_max(uint32_t slot_count, uint32_t slot_size)
{
	uint64_t pool = ki_ring_pool_msg_max(slot_count, slot_size);
	uint32_t inl = ki_ring_inline_max(slot_count, slot_size);
	return pool > inl ? pool : inl;
}

/* Publisher side. */
struct ring_writer {
	uint8_t *base;
	uint32_t slot_count, slot_size;
	uint64_t capacity, segment;
	uint64_t first_seq; /* the seq of the ring's first record, at 0 */
	uint64_t head;  /* last seq written (first_seq - 1 before it) */
	uint64_t pos;   /* where the next record goes (absolute) */
	uint64_t off;   /* pos % capacity */
	uint64_t limit; /* our copy of the shared limit */
	uint64_t index_next; /* the next segment boundary not yet indexed */
	uint8_t *pool;       /* the large-message pool, pool_bytes long */
	uint64_t pool_bytes, pool_pos; /* pool_pos: where the next payload goes */
	/* Recent pool payloads, oldest first (see ki_ring_pool_floor). */
	struct {
		uint64_t start, end; /* pool positions */
		uint64_t ring_end;   /* where its record ends in the ring */
	} pool_track[RING_POOL_TRACK];
	uint32_t pool_first, pool_count;
	/* First lap only: the records' pages exist up to here, and a write
	 * reaching past it makes more (ring.c, prefault). UINT64_MAX once
	 * every page does (or the kernel cannot). */
	uint64_t prefault_at;
};

/* Messages get sequence numbers last_seq + 1, last_seq + 2, ... (0 for a new
 * stream; a ring re-made for a channel after an idle spell continues its
 * numbering; last_seq + 1 < RING_START_MAX). */
void ki_ring_writer_init(struct ring_writer *w, void *base, uint32_t slot_count,
			 uint32_t slot_size, uint64_t publisher, const char *channel,
			 uint64_t last_seq);

/* Write one record: meta_len bytes of metadata then len of payload
 * (meta_len + len <= ki_ring_inline_max), or a large reference (flags
 * REC_LARGE, payload a struct ring_large). Returns its seq. timestamp_ns
 * RING_STAMP_NOW: CLOCK_REALTIME read once the payload's stores are on
 * their way to the ring (the clock read overlaps them). */
#define RING_STAMP_NOW UINT64_MAX
uint64_t ki_ring_write(struct ring_writer *w, const void *meta, uint16_t meta_len,
		       const void *payload, uint32_t len, uint16_t flags,
		       uint64_t timestamp_ns);

/* ki_ring_write in two steps, for a record built in place (kite_claim):
 * ki_ring_claim makes room for a record of body bytes (metadata included,
 * <= ki_ring_inline_max) at the writer's position and returns where its
 * body goes; nothing is visible to readers until ki_ring_commit, which
 * writes the header of a record of meta_len + len <= body bytes, commits
 * it and returns its seq. Between the two no other record may be written;
 * a claim never committed leaves the writer as it was, but for a pad
 * record (a record that did not fit the lap's end) and the raised limit,
 * both already valid for whatever comes next. */
void *ki_ring_claim(struct ring_writer *w, uint32_t body);
uint64_t ki_ring_commit(struct ring_writer *w, uint16_t meta_len, uint32_t len,
			uint16_t flags, uint64_t timestamp_ns);
/* Where the body of the record being claimed (the next one) starts. */
void *ki_ring_claimed_body(const struct ring_writer *w);

/* The least position a reader must have reached for a record of body
 * bytes (metadata included) to be written without overrunning it: the
 * limit the write would raise, less a lap, never past the writer's own
 * position (a reader that has read everything is never in the way); 0 if
 * the write raises no limit. */
uint64_t ki_ring_reader_floor(const struct ring_writer *w, uint64_t body);

/* The pool: where a payload of len bytes (<= ki_ring_pool_msg_max) goes
 * next, announced to readers (pool_limit) so that bytes can be written
 * there at once; *pool_pos says where it is for ki_ring_pool_commit. */
void *ki_ring_pool_claim(struct ring_writer *w, uint64_t len, uint64_t *pool_pos);

/* Where the payload claimed at pool_pos is. */
void *ki_ring_pool_payload(const struct ring_writer *w, uint64_t pool_pos);

/* The REC_POOL record naming the payload claimed at pool_pos, now written
 * (flags: REC_ORIGIN or 0). Returns its seq. */
uint64_t ki_ring_pool_commit(struct ring_writer *w, uint64_t pool_pos, uint64_t len,
			     uint16_t flags, uint64_t timestamp_ns);

/* The least ring position a reader must have reached (read every record
 * before it) for a pool payload of len bytes to be claimed without writing
 * over one it has not read: the end of the last record whose payload the
 * claim would overwrite; 0 if none. */
uint64_t ki_ring_pool_floor(const struct ring_writer *w, uint64_t len);

/* Subscriber side. */
struct ring_reader {
	const uint8_t *base;
	uint32_t slot_count, slot_size; /* our own validated copies */
	uint64_t capacity;
	const uint8_t *pool; /* our geometry's pool (pool_bytes, maybe 0) */
	uint64_t pool_bytes;
	uint64_t next; /* next seq we expect */
	uint64_t pos;  /* where we expect it (absolute) */
	uint64_t off;  /* pos % capacity */
	/* ki_ring_inline_max and ki_ring_read_max of our geometry, worked
	 * out once: every read checks against them. */
	uint32_t inline_max;
	uint64_t read_max;
	/* Replay: the first live seq. An overrun before it (replayed records
	 * written over) goes on at the oldest record held, not the hint. */
	uint64_t live_from;
};

enum ring_result { RING_EMPTY, RING_MESSAGE, RING_LOST };

struct ring_record {
	uint64_t seq;
	uint32_t len;      /* payload bytes (REC_LARGE: the message's) */
	uint16_t flags;
	uint16_t meta_len; /* metadata bytes in front of the payload in buf */
	uint64_t timestamp_ns;
	uint64_t large_id;
	uint64_t lost; /* RING_LOST: how many */
};

/* Start reading at (seq, pos), as a publisher's offer said; a start no
 * honest publisher sends ends the stream at once. Geometry must be valid. */
void ki_ring_reader_init(struct ring_reader *r, const void *base, uint32_t slot_count,
			 uint32_t slot_size, uint64_t seq, uint64_t pos);

/* Check a mapped ring header against the geometry and channel we were told;
 * 0 or -EBADMSG. */
int ki_ring_header_check(const void *base, uint32_t slot_count, uint32_t slot_size,
			 const char *channel);

/* Read the next record. RING_MESSAGE copies metadata and inline payload,
 * or a pool payload (REC_POOL, meta_len 0), into buf (buf_len >=
 * ki_ring_read_max). RING_LOST reports a gap (overrun, records that failed
 * validation, a pool payload written over while we copied it) and skips
 * past it. */
enum ring_result ki_ring_read(struct ring_reader *r, void *buf,
			      struct ring_record *rec);

/* Move forward, without reading, to seq target (the records before it were
 * written when the publisher named it): returns how many from target on
 * were overwritten first and skipped (a loss to report). A ring that does
 * not lead there within a lap ends the stream. */
uint64_t ki_ring_seek(struct ring_reader *r, uint64_t target);

/* Replay: instead of seeking to target (the first seq the publisher's offer
 * gives us), start at the oldest record the ring still holds among the
 * last last_n before target (UINT64_MAX: no count limit) and, if since_ns
 * is not 0, at the first of those stamped at or after since_ns
 * (CLOCK_REALTIME). The reader must be fresh from ki_ring_reader_init at
 * the ring's first record (position 0). Returns, like ki_ring_seek, how
 * many from target on were overwritten before we got there (a loss);
 * records before target that are no longer held are simply not there (a
 * pool record whose payload was reused, or a memfd message's record, is
 * not held: replay starts after the last such). */
uint64_t ki_ring_replay(struct ring_reader *r, uint64_t target, uint64_t last_n,
			uint64_t since_ns);

/* 1 if ki_ring_read would return something other than RING_EMPTY now. */
int ki_ring_pending(const struct ring_reader *r);

/* Counts for introspection (kite ls/top), the one place that knows where
 * they live: the last sequence a writer committed; the head a reader's
 * mapped ring claims (untrusted: only ever shown; packed records have no
 * shared head, so the reader counts the committed records ahead of it, at
 * most about a lap); the last sequence a
 * reader consumed (0: none yet). */
uint64_t ki_ring_writer_head(const struct ring_writer *w);
uint64_t ki_ring_reader_head(const struct ring_reader *r);
uint64_t ki_ring_reader_position(const struct ring_reader *r);

#endif
