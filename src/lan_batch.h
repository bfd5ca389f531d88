/* LAN batch frame (frame version 2, docs/PROTOCOL.md "Batch frame"): the
 * messages of one (publisher, channel) with consecutive sequences under
 * one shared header, each a small record (length, timestamp, payload).
 * Small messages in a burst go this way: the header, its channel name and
 * its CRC32C (and tag) are paid once a datagram instead of once a message.
 * A version-1 receiver rejects the frame as an unknown version (and
 * counts it); its messages are then seen missing and reported lost. */
#ifndef KITE_LAN_BATCH_H
#define KITE_LAN_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "lan_frame.h"

#define LAN_BATCH_VERSION 2
/* Offset of the channel name: the fixed part of a batch header. */
#define LAN_BATCH_FIXED_LEN 48
/* A record: payload length (16 bits), timestamp (64 bits), payload. */
#define LAN_BATCH_RECORD_LEN 10
/* Messages one batch holds at most (a 16-bit count; a datagram holds far
 * fewer). */
#define LAN_BATCH_COUNT_MAX 65535

/* A batch accepted by ki_lan_batch_decode_keyed: its shared fields in f
 * (seq: the first message's; payload, payload_len: the records), count
 * records that tile them exactly. */
struct lan_batch {
	struct lan_frame f;
	uint32_t count;
};

/* Header bytes of a batch on this channel, as this sender writes it
 * (with the stream's age, LAN_AGE_LEN bytes after the channel name). */
static inline size_t lan_batch_header_len(size_t channel_len)
{
	return LAN_BATCH_FIXED_LEN + channel_len + LAN_AGE_LEN;
}

/* Start a batch at out for base's flags (0 or LAN_FLAG_REPAIR), host,
 * publisher, pid, channel, age (if has_age) and seq (its first
 * message's): writes the
 * header (count and lengths filled in by ki_lan_batch_close); its length,
 * or 0 if cap is too small or base is not a valid batch start. */
size_t ki_lan_batch_open(uint8_t *out, size_t cap, const struct lan_frame *base);

/* Append a record (no checks: the caller made room for
 * LAN_BATCH_RECORD_LEN + len bytes, len <= UINT16_MAX); its length. */
static inline size_t lan_batch_put(uint8_t *out, uint64_t timestamp_ns, const void *data,
				   uint16_t len);

/* Finish the batch at frame (header_and_records bytes written, count
 * records): its count, records length, CRC32C and, with keys, its tag
 * (LAN_TAG_LEN more bytes, which the caller left room for). Its length. */
size_t ki_lan_batch_close(uint8_t *frame, size_t header_and_records, uint32_t count,
			  const struct lan_keys *keys);

/* Read the batch at the start of buf[0..len) (buf[4] is
 * LAN_BATCH_VERSION): fills b and returns the frame's length (> 0), or
 * -(enum lan_reject) as ki_lan_frame_decode_keyed: every record is
 * checked before anything is returned, so reading them cannot fail. */
int ki_lan_batch_decode_keyed(const uint8_t *buf, size_t len, struct lan_batch *b,
			      const struct lan_keys *keys);

/* Record at *at (0 for the first) of an accepted batch, as the frame of a
 * whole message: f gets b's shared fields, sequence first + i for record
 * i, timestamp, payload. *at moves to the next. (Inline: a call wrote f's
 * fields to memory for the receiver to read straight back, a stalled
 * store-to-load forward a message.) */
static inline void ki_lan_batch_record(const struct lan_batch *b, uint32_t i, size_t *at,
				       struct lan_frame *f);

#include "lan_bytes.h"
#include <string.h>

static inline size_t lan_batch_put(uint8_t *out, uint64_t timestamp_ns, const void *data,
				   uint16_t len)
{
	lan_put16(out, len);
	lan_put64(out + 2, timestamp_ns);
	if (len)
		memcpy(out + LAN_BATCH_RECORD_LEN, data, len);
	return LAN_BATCH_RECORD_LEN + (size_t)len;
}

static inline void ki_lan_batch_record(const struct lan_batch *b, uint32_t i, size_t *at,
				       struct lan_frame *f)
{
	const uint8_t *r = b->f.payload + *at;
	uint16_t len = lan_get16(r);
	f->seq = b->f.seq + i;
	f->timestamp_ns = lan_get64(r + 2);
	f->payload = r + LAN_BATCH_RECORD_LEN;
	f->payload_len = f->total_len = len;
	*at += LAN_BATCH_RECORD_LEN + (size_t)len;
}

#endif
