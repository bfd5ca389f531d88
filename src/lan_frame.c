/* LAN frame version 1: bounds-checked encoding and decoding. The decoder
 * sees bytes from any host on the LAN: it reads nothing past len, trusts
 * no length before comparing it with what is there, and checks the CRC
 * before it believes any other field. */
#include "lan_frame.h"

#include <errno.h>
#include <string.h>

#include "lan_bytes.h"
#include "lan_crc32c.h"

static const char *const reject_names[LAN_REJECT_KINDS] = {
	[LAN_REJECT_SHORT] = "truncated",
	[LAN_REJECT_MAGIC] = "bad magic",
	[LAN_REJECT_VERSION] = "unknown version",
	[LAN_REJECT_FLAGS] = "unknown critical flag",
	[LAN_REJECT_HEADER] = "bad header length",
	[LAN_REJECT_CRC] = "bad CRC32C",
	[LAN_REJECT_CHANNEL] = "bad channel name",
	[LAN_REJECT_FRAGMENT] = "bad fragment fields",
	[LAN_REJECT_SEQ] = "sequence 0 or past 2^63",
	[LAN_REJECT_LENGTH] = "longer than a datagram",
	[LAN_REJECT_NAK] = "bad NAK ranges",
	[LAN_REJECT_AUTH] = "unauthenticated",
	[LAN_REJECT_RECORDS] = "bad batch records",
};

const char *ki_lan_reject_name(enum lan_reject why)
{
	if ((int)why <= 0 || why >= LAN_REJECT_KINDS)
		return "unknown";
	return reject_names[why];
}

uint32_t ki_lan_fragment_chunk(uint32_t total, uint32_t count)
{
	if (count <= 1)
		return total;
	return (uint32_t)(((uint64_t)total + count - 1) / count);
}

uint64_t ki_lan_fragment_offset(uint32_t total, uint32_t count, uint32_t index)
{
	return (uint64_t)index * ki_lan_fragment_chunk(total, count);
}

uint32_t ki_lan_fragment_count(uint32_t total, uint32_t max_payload)
{
	if (total == 0)
		return 1;
	return (uint32_t)(((uint64_t)total + max_payload - 1) / max_payload);
}

/* The payload length fragment index must have, or UINT32_MAX if the
 * fragment fields cannot describe a message (an empty fragment, an index
 * past the end). */
static uint32_t expected_payload(uint32_t total, uint32_t count, uint32_t index)
{
	if (count == 0 || index >= count)
		return UINT32_MAX;
	if (count == 1)
		return total;
	uint64_t chunk = ki_lan_fragment_chunk(total, count);
	uint64_t last_at = chunk * (count - 1);
	if (last_at >= total) /* the last fragment would be empty */
		return UINT32_MAX;
	return index + 1 < count ? (uint32_t)chunk : (uint32_t)(total - last_at);
}

#define NAK_RANGE_LEN 16

/* A NAK's payload: 1 to LAN_NAK_RANGES_MAX ranges of valid sequences,
 * each first <= last, ascending with a gap between them (so a range list
 * never names a sequence twice), the first one's first = the frame's seq. */
static int nak_check(const struct lan_frame *f, const uint8_t *payload)
{
	size_t n = f->payload_len / NAK_RANGE_LEN;
	if (f->payload_len % NAK_RANGE_LEN || n == 0 || n > LAN_NAK_RANGES_MAX ||
	    f->frag_count != 1)
		return -LAN_REJECT_NAK;
	uint64_t after = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t first = lan_get64(payload + i * NAK_RANGE_LEN);
		uint64_t last = lan_get64(payload + i * NAK_RANGE_LEN + 8);
		if (first == 0 || first > last || last > LAN_SEQ_MAX ||
		    (i > 0 && first <= after + 1) || (i == 0 && first != f->seq))
			return -LAN_REJECT_NAK;
		after = last;
	}
	return 0;
}

/* Checks shared by both directions, on fields already in f (payload: its
 * bytes); the tag flag is known only to a host with a key (keyed). */
static int fields_check(const struct lan_frame *f, const uint8_t *payload, int keyed)
{
	uint8_t known = LAN_FLAGS_KNOWN | (keyed ? LAN_FLAG_MAC : 0);
	if (f->flags & LAN_FLAGS_CRITICAL & ~known)
		return -LAN_REJECT_FLAGS;
	if ((f->flags & LAN_FLAG_GONE) && !(f->flags & LAN_FLAG_STATE))
		return -LAN_REJECT_FLAGS;
	if ((f->flags & LAN_FLAG_NAK) && (f->flags & (LAN_FLAG_STATE | LAN_FLAG_REPAIR)))
		return -LAN_REJECT_FLAGS;
	if ((f->flags & LAN_FLAG_STATE) && f->total_len != 0)
		return -LAN_REJECT_FRAGMENT;
	if (f->channel_len == 0 || f->channel_len > KITE_CHANNEL_MAX ||
	    memchr(f->channel, 0, f->channel_len) ||
	    kite_channel_valid(f->channel) != 0)
		return -LAN_REJECT_CHANNEL;
	if ((f->seq == 0 && !(f->flags & LAN_FLAG_STATE)) || f->seq > LAN_SEQ_MAX)
		return -LAN_REJECT_SEQ;
	if (expected_payload(f->total_len, f->frag_count, f->frag_index) != f->payload_len)
		return -LAN_REJECT_FRAGMENT;
	if ((f->flags & LAN_FLAG_NAK) && nak_check(f, payload))
		return -LAN_REJECT_NAK;
	return 0;
}

/* Sign the frame at out (body bytes, the MAC flag set, CRC in place):
 * append its tag under the first key. */
static void put_tag(uint8_t *out, size_t body, const struct lan_keys *keys)
{
	ki_lan_tag(keys, 0, out, body, out + body);
}

int ki_lan_frame_encode(uint8_t *out, size_t cap, const struct lan_frame *f,
		     const void *data)
{
	return ki_lan_frame_encode_keyed(out, cap, f, data, NULL);
}

int ki_lan_frame_encode_keyed(uint8_t *out, size_t cap, const struct lan_frame *f,
			      const void *data, const struct lan_keys *keys)
{
	size_t tag = lan_tag_len(keys);
	/* The caller does not set the tag flag: the keys decide it. */
	if (strnlen(f->channel, sizeof f->channel) != f->channel_len ||
	    (f->flags & LAN_FLAG_MAC) || fields_check(f, data, 0) != 0)
		return -EINVAL;
	size_t hdr = LAN_FIXED_LEN + f->channel_len + (f->has_age ? LAN_AGE_LEN : 0);
	if (f->payload_len > LAN_FRAME_MAX - hdr - tag)
		return -EINVAL;
	if (cap < hdr + tag || cap - hdr - tag < f->payload_len)
		return -ENOSPC;
	lan_put32(out, LAN_MAGIC);
	out[4] = LAN_VERSION;
	out[5] = (uint8_t)(f->flags | (tag ? LAN_FLAG_MAC : 0));
	lan_put16(out + 6, (uint16_t)hdr);
	lan_put32(out + LAN_CRC_OFFSET, 0);
	lan_put32(out + 12, f->payload_len);
	lan_put64(out + 16, f->host);
	lan_put64(out + 24, f->publisher);
	lan_put64(out + 32, f->seq);
	lan_put64(out + 40, f->timestamp_ns);
	lan_put32(out + 48, f->total_len);
	lan_put32(out + 52, f->frag_index);
	lan_put32(out + 56, f->frag_count);
	lan_put32(out + 60, f->pid);
	out[64] = f->channel_len;
	memcpy(out + LAN_FIXED_LEN, f->channel, f->channel_len);
	if (f->has_age)
		lan_put32(out + LAN_FIXED_LEN + f->channel_len, f->age_ms);
	if (f->payload_len)
		memcpy(out + hdr, data, f->payload_len);
	lan_put32(out + LAN_CRC_OFFSET, ki_crc32c(0, out, hdr + f->payload_len));
	if (tag)
		put_tag(out, hdr + f->payload_len, keys);
	return (int)(hdr + f->payload_len + tag);
}

int ki_lan_frame_decode(const uint8_t *buf, size_t len, struct lan_frame *f)
{
	return ki_lan_frame_decode_keyed(buf, len, f, NULL);
}

int ki_lan_frame_decode_keyed(const uint8_t *buf, size_t len, struct lan_frame *f,
			      const struct lan_keys *keys)
{
	int keyed = keys && keys->n;
	if (len < LAN_FIXED_LEN)
		return len >= 4 && lan_get32(buf) != LAN_MAGIC ? -LAN_REJECT_MAGIC
							     : -LAN_REJECT_SHORT;
	if (lan_get32(buf) != LAN_MAGIC)
		return -LAN_REJECT_MAGIC;
	if (buf[4] != LAN_VERSION)
		return -LAN_REJECT_VERSION;
	size_t hdr = lan_get16(buf + 6);
	uint32_t payload_len = lan_get32(buf + 12);
	uint8_t channel_len = buf[64];
	if (hdr < LAN_FIXED_LEN + (size_t)channel_len || hdr > LAN_HEADER_MAX)
		return -LAN_REJECT_HEADER;
	/* The flag says whether a tag follows: a frame's length needs it. */
	size_t tag = buf[5] & LAN_FLAG_MAC ? LAN_TAG_LEN : 0;
	if (payload_len > LAN_FRAME_MAX - hdr - tag)
		return -LAN_REJECT_LENGTH;
	if (len < hdr + tag || len - hdr - tag < payload_len)
		return -LAN_REJECT_SHORT;
	/* The CRC first: the other fields mean nothing until it matches. */
	uint32_t want = lan_get32(buf + LAN_CRC_OFFSET);
	static const uint8_t zero[4];
	uint32_t crc = ki_crc32c(0, buf, LAN_CRC_OFFSET);
	crc = ki_crc32c(crc, zero, sizeof zero);
	crc = ki_crc32c(crc, buf + LAN_CRC_OFFSET + 4,
			hdr + payload_len - LAN_CRC_OFFSET - 4);
	if (crc != want)
		return -LAN_REJECT_CRC;
	/* With a key, nothing is believed before the tag is; without, a
	 * tagged frame is an unknown critical flag (fields_check). */
	if (keyed && (!tag || !ki_lan_tag_ok(keys, buf, hdr + payload_len,
					     buf + hdr + payload_len)))
		return -LAN_REJECT_AUTH;

	f->flags = buf[5];
	f->payload_len = payload_len;
	f->host = lan_get64(buf + 16);
	f->publisher = lan_get64(buf + 24);
	f->seq = lan_get64(buf + 32);
	f->timestamp_ns = lan_get64(buf + 40);
	f->total_len = lan_get32(buf + 48);
	f->frag_index = lan_get32(buf + 52);
	f->frag_count = lan_get32(buf + 56);
	f->pid = lan_get32(buf + 60);
	f->channel_len = channel_len;
	if (channel_len > KITE_CHANNEL_MAX)
		return -LAN_REJECT_CHANNEL;
	memcpy(f->channel, buf + LAN_FIXED_LEN, channel_len);
	f->channel[channel_len] = 0;
	/* The age, if the header has room for all of it (a header 1 to 3
	 * bytes longer holds something else of a later revision). */
	f->has_age = hdr >= LAN_FIXED_LEN + (size_t)channel_len + LAN_AGE_LEN;
	f->age_ms = f->has_age ? lan_get32(buf + LAN_FIXED_LEN + channel_len) : 0;
	f->payload = buf + hdr;
	int bad = fields_check(f, f->payload, keyed);
	if (bad)
		return bad;
	return (int)(hdr + payload_len + tag);
}

size_t ki_lan_nak_ranges(const struct lan_frame *f, struct lan_seq_range *out)
{
	size_t n = f->payload_len / NAK_RANGE_LEN;
	if (n > LAN_NAK_RANGES_MAX)
		n = LAN_NAK_RANGES_MAX;
	for (size_t i = 0; i < n; i++) {
		out[i].first = lan_get64(f->payload + i * NAK_RANGE_LEN);
		out[i].last = lan_get64(f->payload + i * NAK_RANGE_LEN + 8);
	}
	return n;
}

int ki_lan_nak_encode(uint8_t *out, size_t cap, const struct lan_frame *base,
		      const struct lan_seq_range *r, size_t n, const struct lan_keys *keys)
{
	if (n == 0 || n > LAN_NAK_RANGES_MAX)
		return -EINVAL;
	uint8_t body[LAN_NAK_RANGES_MAX * NAK_RANGE_LEN];
	for (size_t i = 0; i < n; i++) {
		lan_put64(body + i * NAK_RANGE_LEN, r[i].first);
		lan_put64(body + i * NAK_RANGE_LEN + 8, r[i].last);
	}
	struct lan_frame f = *base;
	f.flags = LAN_FLAG_NAK;
	f.seq = r[0].first;
	f.total_len = f.payload_len = (uint32_t)(n * NAK_RANGE_LEN);
	f.frag_index = 0;
	f.frag_count = 1;
	return ki_lan_frame_encode_keyed(out, cap, &f, body, keys);
}

void ki_lan_frame_mark_repair(uint8_t *frame, size_t len, const struct lan_keys *keys)
{
	size_t body = frame[5] & LAN_FLAG_MAC ? len - LAN_TAG_LEN : len;
	frame[5] |= LAN_FLAG_REPAIR;
	lan_put32(frame + LAN_CRC_OFFSET, 0);
	lan_put32(frame + LAN_CRC_OFFSET, ki_crc32c(0, frame, body));
	if (body != len)
		put_tag(frame, body, keys);
}
