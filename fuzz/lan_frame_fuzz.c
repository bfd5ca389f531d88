/* Fuzz target: a datagram from any host on the LAN through the frame
 * decoders (src/lan_frame.c, version 1; src/lan_batch.c, version-2 batch
 * frames), frame after frame as a receiver walks a packed datagram. Every
 * accepted frame must lie within the datagram, carry a valid channel name,
 * a sequence >= 1 and fragment fields that tile its message (a batch:
 * records that tile its body exactly, sequences that stay below 2^63); a
 * re-encoded accepted frame must decode to the same fields.
 *
 * So that mutations get past the CRC and reach the fields behind it:
 *   'P' then (offset, byte) pairs: a valid datagram of two frames with
 *       those bytes overwritten, each frame's CRC then re-computed (a liar,
 *       not line noise);
 *   'F' channel '|' payload: that frame encoded (or refused) and decoded;
 *   'N' flags then bytes: a NAK (repair) frame whose flags byte and range
 *       list are those bytes, with a valid CRC: accepted only if its
 *       ranges are well-formed, and then read back exactly;
 *   'K' mode then (offset, byte) pairs: as 'P' with two authenticated
 *       frames (key=FILE), read by a receiver with the key. Mode bit 0:
 *       re-sign after the overwrite (a liar holding the key: the fields
 *       behind the tag get fuzzed); else only the CRC is fixed (a liar
 *       without it), and nothing changed may be accepted;
 *   'B' mode then (offset, byte) pairs: a valid datagram of a version-1
 *       frame then a batch of three messages, bytes overwritten, CRCs then
 *       re-computed (mode bit 0: and tags re-made, with the key; else no
 *       key);
 *   'A' mode then (offset, byte) pairs: as 'B' with both frames carrying
 *       the stream's age (a header 4 bytes longer), so that mutations of
 *       the age and of header lengths too short for it are tried;
 *   anything else: the datagram itself, by receivers without and with a
 *   key. */
#include <stdint.h>
#include <string.h>

#include "lan_batch.h"
#include "lan_crc32c.h"
#include "lan_frame.h"
#include "lan_key.h"

/* The fuzzer's key file: one key. */
static const struct lan_keys key = {.n = 1, .key = {{1, 2, 3, 4, 5, 6, 7, 8, 9}}};

const char *const fuzz_seeds[] = {
	"P", "P\x04\x02", "P\x05\x10", "P\x05\x01", "P\x05\x02", "P\x05\x06", "P\x07\x50", "P\x0f\x0b",
	"P\x35\x01", "P\x39\x02", "P\x3b\x02", "P\x40\xc9", "P\x40\x00",
	"P\x41*", "P\x42.", "P\x21\x00\x22\x00\x23\x00\x24\x00\x25\x00\x26\x00\x27\x00\x28\x00",
	"P\x31\xff\x32\xff\x33\xff\x34\xff", "P\x5a\x40", "P\x5b\x44",
	"Fa|", "Forders.eu.created|hello", "Fa.*|x", "F|x", "Fa..b|",
	"KITE\x01", "KITE\x01\x00\x00\x41", "garbage", "",
	"N\x08\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\x05",
	"N\x08\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\x05\0\0\0\0\0\0\0\x07\0\0\0\0\0\0\0\x09",
	"N\x08\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\x05\0\0\0\0\0\0\0\x06\0\0\0\0\0\0\0\x09",
	"N\x08\0\0\0\0\0\0\0\x09\0\0\0\0\0\0\0\x05", "N\x08\x80\0\0\0\0\0\0\0\xff\xff\xff\xff\xff\xff\xff\xff",
	"N\x08\0\0\0\0\0\0\0\x01\x7f\xff\xff\xff\xff\xff\xff\xff", "N\x0a\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\x01",
	"N\x18\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\x01", "N\x08", "N\x08\0\0\0",
	"K\x00", "K\x01", "K\x00\x05\x00", "K\x01\x05\x00", "K\x01\x05\x03", "K\x00\x60\x41",
	"K\x01\x60\x41", "K\x00\x70\x00", "K\x01\x0f\x0b", "K\x01\x35\x01", "K\x01\x07\x50",
	/* Batches (the version-1 frame before it is 75 bytes: the batch's
	 * flags at 80, header length at 81, records length at 87, first
	 * sequence at 107, count at 119, channel length at 122, records from
	 * 130). */
	"B\x00", "B\x01", "B\x00\x77\x00", "B\x00\x78\x09", "B\x00\x78\x02", "B\x00\x77\xff",
	"B\x00\x82\x40", "B\x00\x83\x00", "B\x00\x8c\x00\x8d\x00", "B\x00\x7b\x00",
	"B\x00\x50\x10", "B\x00\x50\x08", "B\x00\x50\x02", "B\x00\x50\x01", "B\x01\x50\x00",
	"B\x00\x51\x00\x52\x00", "B\x00\x6b\x7f\x6c\xff\x6d\xff\x6e\xff\x6f\xff\x70\xff\x71\xff\x72\xfe",
	"B\x00\x7a\x00", "B\x00\x7a\x05", "B\x01\x85\x2a", "B\x00\x4f\x00\x50\x10",
	"B\x00\x4f\x03", "B\x00\x57\x03", "B\x00\x7c\x2a",
	/* With the stream's age (the version-1 frame is 79 bytes, its age at
	 * 72; the batch's header length at 85, its age at 134). */
	"A\x00", "A\x01", "A\x00\x48\xff\x49\xff\x4a\xff\x4b\xff", "A\x00\x07\x4b",
	"A\x00\x07\x49", "A\x00\x07\x48", "A\x00\x07\x47", "A\x00\x56\x3a", "A\x00\x56\x37",
	"A\x00\x86\xff\x87\xff\x88\xff\x89\xff", "A\x01\x48\x00", "A\x01\x56\x3c",
	NULL,
};

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Re-compute the CRC of the frame at b[0..len), as its header says it
 * extends (clipped to len); with keys, its tag too, if there is room.
 * (Both versions keep header length, CRC and payload or records length
 * at the same offsets.) */
static void fix_crc_tag(uint8_t *b, size_t len, const struct lan_keys *keys)
{
	if (len < LAN_FIXED_LEN)
		return;
	size_t hdr = (size_t)b[6] << 8 | b[7];
	size_t pl = (size_t)b[12] << 24 | (size_t)b[13] << 16 | (size_t)b[14] << 8 | b[15];
	size_t span = hdr <= len && pl <= len - hdr ? hdr + pl : len;
	put32(b + LAN_CRC_OFFSET, 0);
	put32(b + LAN_CRC_OFFSET, ki_crc32c(0, b, span));
	if (keys && len - span >= LAN_TAG_LEN)
		ki_lan_tag(keys, 0, b, span, b + span);
}

static void fix_crc(uint8_t *b, size_t len)
{
	fix_crc_tag(b, len, NULL);
}

/* An accepted NAK's ranges: 1 to 64, each 1 <= first <= last < 2^63,
 * ascending with a gap between them, the first at the frame's sequence. */
static void check_nak(const struct lan_frame *f)
{
	struct lan_seq_range r[LAN_NAK_RANGES_MAX];
	size_t n = ki_lan_nak_ranges(f, r);
	if (n == 0 || n * 16 != f->payload_len || r[0].first != f->seq ||
	    (f->flags & (LAN_FLAG_STATE | LAN_FLAG_REPAIR)))
		__builtin_trap();
	for (size_t i = 0; i < n; i++)
		if (r[i].first == 0 || r[i].first > r[i].last || r[i].last > LAN_SEQ_MAX ||
		    (i && r[i].first <= r[i - 1].last + 1))
			__builtin_trap();
}

static void check_accepted(const uint8_t *buf, size_t len, const struct lan_frame *f, int n,
			   const struct lan_keys *keys)
{
	size_t tag = keys ? LAN_TAG_LEN : 0;
	/* With a key every accepted frame is tagged; without, none is. */
	if (!(f->flags & LAN_FLAG_MAC) != !keys)
		__builtin_trap();
	if (f->flags & LAN_FLAG_NAK)
		check_nak(f);
	if ((size_t)n > len || f->payload < buf || f->payload + f->payload_len + tag != buf + n)
		__builtin_trap();
	if (kite_channel_valid(f->channel) != 0 || strlen(f->channel) != f->channel_len ||
	    (f->seq == 0 && !(f->flags & LAN_FLAG_STATE)) || f->frag_count == 0 || f->frag_index >= f->frag_count ||
	    (f->flags & LAN_FLAGS_CRITICAL & ~(LAN_FLAGS_KNOWN | LAN_FLAG_MAC)))
		__builtin_trap();
	uint64_t at = ki_lan_fragment_offset(f->total_len, f->frag_count, f->frag_index);
	if (at + f->payload_len > f->total_len)
		__builtin_trap();
	/* Re-encoded, it is the same frame (later optional fields dropped). */
	static uint8_t again[LAN_FRAME_MAX];
	struct lan_frame g, plain = *f;
	plain.flags &= (uint8_t)~LAN_FLAG_MAC; /* the keys set it again */
	int m = ki_lan_frame_encode_keyed(again, sizeof again, &plain, f->payload, keys);
	if (m <= 0 || ki_lan_frame_decode_keyed(again, (size_t)m, &g, keys) != m ||
	    (keys && memcmp(again, buf, (size_t)n - tag) == 0 &&
	     memcmp(again + m - tag, buf + n - tag, tag) != 0) ||
	    g.seq != f->seq || g.publisher != f->publisher || g.host != f->host ||
	    g.total_len != f->total_len || g.frag_index != f->frag_index ||
	    g.has_age != f->has_age || g.age_ms != f->age_ms ||
	    strcmp(g.channel, f->channel) != 0 ||
	    memcmp(g.payload, f->payload, f->payload_len) != 0)
		__builtin_trap();
}

/* An accepted batch: within the buffer, records that tile its body, every
 * sequence valid, each record read back as a whole message; re-encoded
 * (later header fields dropped), it decodes to the same fields. */
static void check_batch(const uint8_t *buf, size_t len, const struct lan_batch *b, int n,
			const struct lan_keys *keys)
{
	size_t tag = keys ? LAN_TAG_LEN : 0;
	if (!(b->f.flags & LAN_FLAG_MAC) != !keys)
		__builtin_trap();
	if ((size_t)n > len || b->f.payload < buf || b->f.payload + b->f.payload_len + tag != buf + n ||
	    b->count == 0 || b->f.seq == 0 || b->f.seq + b->count - 1 > LAN_SEQ_MAX ||
	    kite_channel_valid(b->f.channel) != 0 || strlen(b->f.channel) != b->f.channel_len ||
	    (b->f.flags & (LAN_FLAG_STATE | LAN_FLAG_GONE | LAN_FLAG_NAK)))
		__builtin_trap();
	static uint8_t again[LAN_FRAME_MAX];
	struct lan_frame base = b->f, r = b->f;
	base.flags &= LAN_FLAG_REPAIR;
	size_t w = ki_lan_batch_open(again, sizeof again, &base), at = 0;
	if (!w)
		__builtin_trap();
	for (uint32_t i = 0; i < b->count; i++) {
		ki_lan_batch_record(b, i, &at, &r);
		if (at > b->f.payload_len || r.seq != b->f.seq + i || r.frag_count != 1 ||
		    r.payload + r.payload_len != b->f.payload + at ||
		    w + LAN_BATCH_RECORD_LEN + r.payload_len > sizeof again)
			__builtin_trap();
		w += lan_batch_put(again + w, r.timestamp_ns, r.payload, (uint16_t)r.payload_len);
	}
	if (at != b->f.payload_len || w + tag > sizeof again)
		__builtin_trap();
	size_t m = ki_lan_batch_close(again, w, b->count, keys);
	struct lan_batch g;
	if (ki_lan_batch_decode_keyed(again, m, &g, keys) != (int)m || g.count != b->count ||
	    g.f.seq != b->f.seq || g.f.host != b->f.host || g.f.publisher != b->f.publisher ||
	    g.f.pid != b->f.pid || g.f.payload_len != b->f.payload_len ||
	    g.f.has_age != b->f.has_age || g.f.age_ms != b->f.age_ms ||
	    strcmp(g.f.channel, b->f.channel) != 0 ||
	    memcmp(g.f.payload, b->f.payload, b->f.payload_len) != 0)
		__builtin_trap();
}

/* Decode frame after frame (keys: the receiver's, or NULL); the bytes
 * accepted. */
static size_t walk_keyed(const uint8_t *buf, size_t len, const struct lan_keys *keys)
{
	size_t at = 0;
	while (at < len) {
		/* As a receiver: the version byte says which decoder. */
		int batch = len - at > 4 && buf[at + 4] == LAN_BATCH_VERSION;
		struct lan_batch b;
		struct lan_frame f;
		int n = batch ? ki_lan_batch_decode_keyed(buf + at, len - at, &b, keys)
			      : ki_lan_frame_decode_keyed(buf + at, len - at, &f, keys);
		if (n < 0) {
			if (-n >= LAN_REJECT_KINDS)
				__builtin_trap();
			return at;
		}
		if (n == 0)
			__builtin_trap(); /* would loop forever */
		if (batch)
			check_batch(buf + at, len - at, &b, n, keys);
		else
			check_accepted(buf + at, len - at, &f, n, keys);
		at += (size_t)n;
	}
	return at;
}

static size_t walk(const uint8_t *buf, size_t len)
{
	return walk_keyed(buf, len, NULL);
}

/* The valid datagrams' sender: host 7, publisher 0x1234, pid 100,
 * channel fuzz.ch, sequence 9. */
static struct lan_frame fuzz_sender(void)
{
	struct lan_frame f = {0};
	f.host = 7;
	f.publisher = 0x1234;
	f.seq = 9;
	f.pid = 100;
	strcpy(f.channel, "fuzz.ch");
	f.channel_len = 7;
	return f;
}

/* Two frames (a fragment, then a whole message), signed with keys if
 * given; *first: the first one's length. */
static size_t two_frames_keyed(uint8_t *out, size_t cap, const struct lan_keys *keys,
			       size_t *first)
{
	struct lan_frame f = fuzz_sender();
	f.total_len = 40;
	f.frag_count = 2;
	f.frag_index = 1;
	f.payload_len = 20;
	int a = ki_lan_frame_encode_keyed(out, cap, &f, "abcdefghijklmnopqrst", keys);
	f.frag_count = 1;
	f.frag_index = 0;
	f.total_len = f.payload_len = 3;
	f.seq = 10;
	int b = ki_lan_frame_encode_keyed(out + a, cap - (size_t)a, &f, "xyz", keys);
	if (a <= 0 || b <= 0)
		__builtin_trap();
	*first = (size_t)a;
	return (size_t)a + (size_t)b;
}

/* 'K': see the top. */
static void keyed_liar(const uint8_t *data, size_t size, uint8_t *buf, size_t cap)
{
	static uint8_t orig[512];
	size_t first;
	size_t len = two_frames_keyed(buf, cap, &key, &first);
	memcpy(orig, buf, len);
	int resign = size >= 2 && (data[1] & 1);
	for (size_t i = 2; i + 1 < size; i += 2)
		buf[data[i] % len] = data[i + 1];
	fix_crc_tag(buf, len, resign ? &key : NULL);
	if (len > first)
		fix_crc_tag(buf + first, len - first, resign ? &key : NULL);
	size_t took = walk_keyed(buf, len, &key);
	if (!resign && memcmp(buf, orig, took) != 0)
		__builtin_trap(); /* a forgery got past the tag */
	/* Untouched, it is valid, and a receiver without the key takes none
	 * of it. (Touched, a cleared tag flag is a plain frame it may take.) */
	if (size <= 2 && (took != len || walk(buf, len) != 0))
		__builtin_trap();
}

/* 'B' and 'A' (aged: with the stream's age): see the top. */
static void batch_liar(const uint8_t *data, size_t size, uint8_t *buf, size_t cap, int aged)
{
	const struct lan_keys *keys = size >= 2 && (data[1] & 1) ? &key : NULL;
	struct lan_frame f = fuzz_sender();
	f.has_age = (uint8_t)aged;
	f.age_ms = 0x00012345;
	f.frag_count = 1;
	f.total_len = f.payload_len = 3;
	int first = ki_lan_frame_encode_keyed(buf, cap, &f, "xyz", keys);
	f.seq = 10;
	size_t w = first > 0 ? ki_lan_batch_open(buf + first, cap - (size_t)first, &f) : 0;
	if (!w)
		__builtin_trap();
	uint8_t *b = buf + first;
	w += lan_batch_put(b + w, 1, "ab", 2);
	w += lan_batch_put(b + w, 2, "", 0);
	w += lan_batch_put(b + w, 3, "cdef", 4);
	size_t blen = ki_lan_batch_close(b, w, 3, keys);
	size_t len = (size_t)first + blen;
	for (size_t i = 2; i + 1 < size; i += 2)
		buf[data[i] % len] = data[i + 1];
	fix_crc_tag(buf, (size_t)first, keys);
	fix_crc_tag(b, blen, keys);
	size_t took = walk_keyed(buf, len, keys);
	if (size <= 2 && took != len)
		__builtin_trap(); /* untouched, the datagram is valid */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[LAN_FRAME_MAX];
	if (size >= 1 && (data[0] == 'B' || data[0] == 'A')) {
		batch_liar(data, size, buf, sizeof buf, data[0] == 'A');
		return 0;
	}
	if (size >= 1 && data[0] == 'K') {
		keyed_liar(data, size, buf, sizeof buf);
		return 0;
	}
	if (size >= 1 && data[0] == 'P') {
		size_t first;
		size_t len = two_frames_keyed(buf, sizeof buf, NULL, &first);
		for (size_t i = 1; i + 1 < size; i += 2)
			buf[data[i] % len] = data[i + 1];
		fix_crc(buf, len);
		if (len > first)
			fix_crc(buf + first, len - first);
		if (walk(buf, len) != len && size == 1)
			__builtin_trap(); /* the untouched datagram is valid */
		return 0;
	}
	if (size >= 2 && data[0] == 'N') {
		/* A NAK frame around the given ranges, its seq the first
		 * range's first (so the ranges are what decides). */
		struct lan_frame f = {0};
		f.host = 3;
		f.publisher = 4;
		f.frag_count = 1;
		strcpy(f.channel, "nak.ch");
		f.channel_len = 6;
		size_t body = size - 2 > 4096 ? 4096 : size - 2;
		size_t hdr = LAN_FIXED_LEN + f.channel_len; /* (no age) */
		struct lan_seq_range one = {1, 1};
		if (ki_lan_nak_encode(buf, sizeof buf, &f, &one, 1, NULL) <= 0)
			__builtin_trap();
		buf[5] = data[1];
		memcpy(buf + hdr, data + 2, body);
		put32(buf + 12, (uint32_t)body);
		put32(buf + 48, (uint32_t)body);
		memset(buf + 32, 0, 8); /* seq: the first range's first */
		if (body >= 8)
			memcpy(buf + 32, data + 2, 8);
		fix_crc(buf, hdr + body);
		walk(buf, hdr + body);
		return 0;
	}
	if (size >= 1 && data[0] == 'F') {
		const uint8_t *bar = memchr(data, '|', size);
		size_t clen = bar ? (size_t)(bar - data) - 1 : size - 1;
		struct lan_frame f = {0};
		if (clen > KITE_CHANNEL_MAX)
			return 0;
		memcpy(f.channel, data + 1, clen);
		f.channel[clen] = 0;
		f.channel_len = (uint8_t)clen;
		f.seq = 1;
		f.frag_count = 1;
		f.total_len = f.payload_len = bar ? (uint32_t)(size - clen - 2) : 0;
		int n = ki_lan_frame_encode(buf, sizeof buf, &f, bar ? bar + 1 : NULL);
		int valid = strlen(f.channel) == clen && kite_channel_valid(f.channel) == 0;
		if ((n > 0) != valid)
			__builtin_trap();
		if (n > 0 && walk(buf, (size_t)n) != (size_t)n)
			__builtin_trap();
		return 0;
	}
	walk(data, size);
	walk_keyed(data, size, &key);
	return 0;
}
