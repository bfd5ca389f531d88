/* Internal: the shared-memory ring of one (publisher, channel) stream.
 *
 * Layout of the sealed memfd: a 4 KiB header page, then slot_count slots of
 * slot_size bytes. The publisher writes message `seq` into slot
 * seq % slot_count under a per-slot sequence lock (slot.seq2 = 2*seq+1 while
 * it writes, 2*seq when done) and then stores head = seq. Subscribers map it
 * read-only; they trust nothing they read: every length is checked against
 * their own copy of the geometry, and a slot whose lock word moves while it
 * is copied is treated as overwritten. A ring that lies can cost its own
 * messages (counted as lost), never memory safety or progress.
 *
 * Slots must start zero-filled (a fresh memfd is): a reader takes a lock
 * word below 2*next as "not written yet". */
#ifndef KITE_RING_H
#define KITE_RING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "kite.h"

#define RING_MAGIC 0x31474e5245544b4bull /* "KKTERNG1" */
#define RING_VERSION 1
#define RING_HEADER_SIZE 4096
#define RING_SLOT_HEADER 32
#define RING_MIN_SLOTS 2
#define RING_MAX_SLOTS (1u << 20)
#define RING_MIN_SLOT_SIZE 64
#define RING_MAX_SLOT_SIZE (1u << 20)
/* Largest ring a subscriber maps (a publisher could offer up to 1 TiB). */
#define RING_ACCEPT_MAX (1ull << 30)
/* Start sequences at or above this are lies (streams end at 2^63). */
#define RING_START_MAX (1ull << 62)

enum { SLOT_INLINE = 0, SLOT_LARGE = 1 };
/* A flag beside either kind: the payload starts with an origin block
 * (origin.h), a relayed message's remote claim. */
#define SLOT_ORIGIN 2u
#define SLOT_KIND(flags) ((flags) & ~SLOT_ORIGIN)

struct ring_header {
	uint64_t magic;
	uint32_t version;
	uint32_t header_size;
	uint32_t slot_count;
	uint32_t slot_size;
	uint64_t publisher;
	char channel[KITE_CHANNEL_MAX + 1];
	_Alignas(64) _Atomic uint64_t head; /* last committed seq; 0 = none */
};

struct slot_header {
	_Atomic uint64_t seq2;
	_Atomic uint32_t len;
	_Atomic uint32_t flags;
	_Atomic uint64_t timestamp_ns;
	_Atomic uint64_t large_id;
};

_Static_assert(sizeof(struct slot_header) == RING_SLOT_HEADER, "slot header");
_Static_assert(sizeof(struct ring_header) <= RING_HEADER_SIZE, "ring header");

/* 0 if the geometry is acceptable; *bytes gets the memfd size. */
int ki_ring_geometry_valid(uint32_t slot_count, uint32_t slot_size, size_t *bytes);

/* Publisher side. */
struct ring_writer {
	uint8_t *base;
	uint32_t slot_count, slot_size;
	uint64_t head;
};

/* last_seq: the stream's last sequence so far (0 for a new stream; a ring
 * re-made for a channel after an idle spell continues its numbering). */
void ki_ring_writer_init(struct ring_writer *w, void *base, uint32_t slot_count,
		      uint32_t slot_size, uint64_t publisher, const char *channel,
		      uint64_t last_seq);

/* Write one message (inline payload, or a large reference with payload
 * NULL); returns its seq. Caller guarantees inline len fits. */
uint64_t ki_ring_write(struct ring_writer *w, const void *payload, uint32_t len,
		    uint32_t flags, uint64_t large_id, uint64_t timestamp_ns);

/* Subscriber side. */
struct ring_reader {
	const uint8_t *base;
	uint32_t slot_count, slot_size; /* our own validated copies */
	uint64_t next;                  /* next seq we expect */
};

enum ring_result { RING_EMPTY, RING_MESSAGE, RING_LOST };

struct ring_record {
	uint64_t seq;
	uint32_t len;
	uint32_t flags;
	uint64_t timestamp_ns;
	uint64_t large_id;
	uint64_t lost; /* RING_LOST: how many */
};

/* Check a mapped ring header against the geometry and channel we were told;
 * 0 or -EBADMSG. */
int ki_ring_header_check(const void *base, uint32_t slot_count, uint32_t slot_size,
		      const char *channel);

/* Read the next record. RING_MESSAGE copies an inline payload into buf
 * (buf_len >= slot_size - RING_SLOT_HEADER). RING_LOST reports a gap
 * (overrun, or a slot that failed validation) and skips past it. */
enum ring_result ki_ring_read(struct ring_reader *r, void *buf,
			   struct ring_record *rec);

/* 1 if ki_ring_read would return something other than RING_EMPTY now. */
int ki_ring_pending(const struct ring_reader *r);

/* Counts for introspection (kite ls/top), the one place that knows where
 * they live: the last sequence a writer committed; the head a reader's
 * mapped ring claims (untrusted: only ever shown); the last sequence a
 * reader consumed (0: none yet). */
uint64_t ki_ring_writer_head(const struct ring_writer *w);
uint64_t ki_ring_reader_head(const struct ring_reader *r);
uint64_t ki_ring_reader_position(const struct ring_reader *r);

#endif
