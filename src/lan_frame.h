/* LAN frame, version 1: the codec of docs/PROTOCOL.md. A datagram carries
 * one or more frames back to back; each frame is a header (fixed part,
 * channel name, and any fields a later compatible revision appends, which
 * this version skips), then its payload: a whole message or one fragment
 * of it. Everything is big-endian; CRC32C covers header and payload. */
#ifndef KITE_LAN_FRAME_H
#define KITE_LAN_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "kite.h"
#include "lan_key.h"

#define LAN_MAGIC 0x4B495445u /* "KITE" */
#define LAN_VERSION 1
/* Offset of the channel name: the fixed part of a version-1 header. */
#define LAN_FIXED_LEN 65
#define LAN_CRC_OFFSET 8
/* The longest header a version-1 receiver accepts (fixed part, channel,
 * room for later fields). */
#define LAN_HEADER_MAX 1024
/* A frame lies within one UDP datagram. */
#define LAN_FRAME_MAX 65507
/* Flags: bits 0-3 are critical (a receiver that does not know a set one
 * rejects the frame), bits 4-7 optional (ignored when unknown). Bit 0: a
 * LAN_TAG_LEN-byte keyed BLAKE2b tag follows the payload, over the frame
 * before it (CRC included); only a receiver with a key knows the bit. */
#define LAN_FLAGS_CRITICAL 0x0fu
#define LAN_FLAG_MAC 0x01u
/* A state frame carries no message: its sequence is the last one the
 * publisher sent on the channel (its idle heartbeat; 0 just before its
 * first message, so that a loss of that one is seen too); with GONE too,
 * the publisher is closing. Payload empty, fragment 0 of 1, total 0. */
#define LAN_FLAG_STATE 0x02u
#define LAN_FLAG_GONE 0x04u
/* A NAK asks a publisher, by unicast, to resend: its payload is a list of
 * sequence ranges (struct lan_seq_range, 16 bytes each, ascending, not
 * touching); its sequence is the first range's first. Critical: a receiver
 * that does not know repair rejects it rather than take it for a message. */
#define LAN_FLAG_NAK 0x08u
/* A resent frame (the original, this bit set and the CRC re-computed).
 * Optional: a receiver that does not know it takes the frame as it would
 * the original (and drops it as a duplicate if it had that). */
#define LAN_FLAG_REPAIR 0x10u
#define LAN_FLAGS_KNOWN (LAN_FLAG_STATE | LAN_FLAG_GONE | LAN_FLAG_NAK)
/* A NAK names at most this many ranges. */
#define LAN_NAK_RANGES_MAX 64
/* Sequences run from 1 to 2^63 - 1: arithmetic on them never wraps. */
#define LAN_SEQ_MAX ((1ull << 63) - 1)
/* The stream's age (a compatible revision of versions 1 and 2): the first
 * 4 bytes after the channel name, milliseconds since the publisher sent
 * the stream's first frame, saturating at LAN_AGE_MAX. Present when the
 * header length leaves room for it; older receivers skip it, frames of
 * older publishers have none. A receiver tells by it whether it was
 * listening when the stream began (docs/PROTOCOL.md, "Stream age"). */
#define LAN_AGE_LEN 4
#define LAN_AGE_MAX UINT32_MAX

struct lan_frame {
	uint8_t flags;
	uint64_t host;         /* sender's host id, stable while it runs */
	uint64_t publisher;    /* the publishing handle's id (kite_id) */
	uint64_t seq;          /* per (publisher, channel), from 1 */
	uint64_t timestamp_ns; /* CLOCK_REALTIME at publish */
	uint32_t pid;          /* as the sender states it */
	uint32_t total_len;    /* the whole message's payload */
	uint32_t frag_index;   /* 0 .. frag_count - 1 */
	uint32_t frag_count;   /* 1: not fragmented */
	uint8_t channel_len;
	char channel[KITE_CHANNEL_MAX + 1];
	uint8_t has_age;       /* the header carries age_ms (encode: write it) */
	uint32_t age_ms;       /* the stream's age when this was first sent */
	const uint8_t *payload; /* decode: points into the datagram */
	uint32_t payload_len;
};

/* Why a frame was rejected; receivers count each (ki_lan_reject_name). */
enum lan_reject {
	LAN_REJECT_SHORT = 1,   /* fewer bytes than the header says */
	LAN_REJECT_MAGIC,       /* not a kite frame */
	LAN_REJECT_VERSION,     /* a version this receiver does not speak */
	LAN_REJECT_FLAGS,       /* an unknown critical flag */
	LAN_REJECT_HEADER,      /* header length out of range */
	LAN_REJECT_CRC,         /* checksum mismatch */
	LAN_REJECT_CHANNEL,     /* channel name empty, too long or malformed */
	LAN_REJECT_FRAGMENT,    /* fragment fields inconsistent */
	LAN_REJECT_SEQ,         /* sequence 0 or above LAN_SEQ_MAX */
	LAN_REJECT_LENGTH,      /* longer than a UDP datagram can be */
	LAN_REJECT_NAK,         /* a NAK's ranges malformed */
	LAN_REJECT_AUTH,        /* with a key: no tag, or a wrong one */
	LAN_REJECT_RECORDS,     /* a batch's records do not make up its count */
	LAN_REJECT_KINDS
};
const char *ki_lan_reject_name(enum lan_reject why);

/* A run of sequences first..last (inclusive) a NAK asks for. */
struct lan_seq_range {
	uint64_t first, last;
};

/* A NAK's ranges (f accepted by ki_lan_frame_decode with LAN_FLAG_NAK, so
 * they are well-formed): how many went to out (at most LAN_NAK_RANGES_MAX). */
size_t ki_lan_nak_ranges(const struct lan_frame *f, struct lan_seq_range *out);

/* Write a NAK from base's host, pid and channel, to base's publisher, for
 * n ranges (1..LAN_NAK_RANGES_MAX, ascending, not touching): its length, or
 * -EINVAL / -ENOSPC as ki_lan_frame_encode. */
int ki_lan_nak_encode(uint8_t *out, size_t cap, const struct lan_frame *base,
		      const struct lan_seq_range *r, size_t n, const struct lan_keys *keys);

/* Mark an encoded frame (which this host wrote with keys: trusted) as a
 * resend: set LAN_FLAG_REPAIR, re-compute its CRC and, if it has one, its
 * tag (len includes the tag). */
void ki_lan_frame_mark_repair(uint8_t *frame, size_t len, const struct lan_keys *keys);

/* Bytes of fragment `index` of a message of total bytes cut in count:
 * every fragment but the last carries chunk = ceil(total / count) bytes. */
uint32_t ki_lan_fragment_chunk(uint32_t total, uint32_t count);
uint64_t ki_lan_fragment_offset(uint32_t total, uint32_t count, uint32_t index);

/* The fewest fragments that carry total bytes with at most max_payload
 * per frame (max_payload >= 1). */
uint32_t ki_lan_fragment_count(uint32_t total, uint32_t max_payload);

/* Header bytes of a frame on this channel, as this sender writes it
 * (with the stream's age). */
static inline size_t lan_header_len(size_t channel_len)
{
	return LAN_FIXED_LEN + channel_len + LAN_AGE_LEN;
}

/* Milliseconds from start_ns to now_ns (monotonic), saturating at
 * LAN_AGE_MAX (0 if now_ns is before start_ns: a clock's small step
 * back). */
static inline uint32_t lan_age_ms(uint64_t now_ns, uint64_t start_ns)
{
	if (now_ns <= start_ns)
		return 0;
	uint64_t ms = (now_ns - start_ns) / 1000000u;
	return ms > LAN_AGE_MAX ? LAN_AGE_MAX : (uint32_t)ms;
}

/* Bytes a frame takes beyond header and payload: its tag, if keyed. */
static inline size_t lan_tag_len(const struct lan_keys *keys)
{
	return keys && keys->n ? LAN_TAG_LEN : 0;
}

/* Write one frame (f's fields, channel and payload_len; data is its
 * payload) at out: returns its length, or -ENOSPC if cap is too small,
 * -EINVAL if f is not a valid frame (the same checks as decoding). */
int ki_lan_frame_encode(uint8_t *out, size_t cap, const struct lan_frame *f,
		     const void *data);
/* The same; with keys (n > 0) the frame gets LAN_FLAG_MAC and a tag under
 * keys' first key. */
int ki_lan_frame_encode_keyed(uint8_t *out, size_t cap, const struct lan_frame *f,
			      const void *data, const struct lan_keys *keys);

/* Read the frame at the start of buf[0..len): fills f (payload points into
 * buf) and returns its length (> 0), or -(enum lan_reject). After a reject
 * the rest of the datagram cannot be delimited: drop it. */
int ki_lan_frame_decode(const uint8_t *buf, size_t len, struct lan_frame *f);
/* The same for a receiver with keys (NULL or n == 0: none): with keys, a
 * frame without LAN_FLAG_MAC or whose tag no key makes is -LAN_REJECT_AUTH;
 * without, LAN_FLAG_MAC is an unknown critical flag (-LAN_REJECT_FLAGS). */
int ki_lan_frame_decode_keyed(const uint8_t *buf, size_t len, struct lan_frame *f,
			      const struct lan_keys *keys);

#endif
