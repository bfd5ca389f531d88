/* LAN batch frames (version 2): bounds-checked, like version 1. The
 * decoder trusts no length before comparing it with what is there, checks
 * the CRC (and tag) before any other field, and walks every record before
 * it accepts the batch: a record that crosses the end, a count the records
 * do not make up exactly, bytes left over, are all a rejected frame. */
#include "lan_batch.h"

#include "lan_bytes.h"
#include "lan_crc32c.h"

/* Flags a batch may carry: the tag (with a key), and the optional repair
 * bit (unused by this sender, accepted as for version 1). State, gone and
 * NAK describe no message: not in a batch. */
#define BATCH_FLAGS_KNOWN (LAN_FLAG_MAC | LAN_FLAG_REPAIR)

size_t ki_lan_batch_open(uint8_t *out, size_t cap, const struct lan_frame *base)
{
	size_t hdr = LAN_BATCH_FIXED_LEN + base->channel_len + (base->has_age ? LAN_AGE_LEN : 0);
	if (cap < hdr || base->channel_len == 0 || base->channel_len > KITE_CHANNEL_MAX ||
	    (base->flags & ~LAN_FLAG_REPAIR) || base->seq == 0 || base->seq > LAN_SEQ_MAX)
		return 0;
	lan_put32(out, LAN_MAGIC);
	out[4] = LAN_BATCH_VERSION;
	out[5] = base->flags;
	lan_put16(out + 6, (uint16_t)hdr);
	lan_put32(out + LAN_CRC_OFFSET, 0);
	lan_put32(out + 12, 0);
	lan_put64(out + 16, base->host);
	lan_put64(out + 24, base->publisher);
	lan_put64(out + 32, base->seq);
	lan_put32(out + 40, base->pid);
	lan_put16(out + 44, 0);
	out[46] = 0;
	out[47] = base->channel_len;
	memcpy(out + LAN_BATCH_FIXED_LEN, base->channel, base->channel_len);
	if (base->has_age)
		lan_put32(out + LAN_BATCH_FIXED_LEN + base->channel_len, base->age_ms);
	return hdr;
}

size_t ki_lan_batch_close(uint8_t *frame, size_t header_and_records, uint32_t count,
			  const struct lan_keys *keys)
{
	size_t hdr = lan_get16(frame + 6);
	size_t tag = lan_tag_len(keys);
	if (tag)
		frame[5] |= LAN_FLAG_MAC;
	lan_put32(frame + 12, (uint32_t)(header_and_records - hdr));
	lan_put16(frame + 44, (uint16_t)count);
	lan_put32(frame + LAN_CRC_OFFSET, 0);
	lan_put32(frame + LAN_CRC_OFFSET, ki_crc32c(0, frame, header_and_records));
	if (tag)
		ki_lan_tag(keys, 0, frame, header_and_records, frame + header_and_records);
	return header_and_records + tag;
}

/* The records (n bytes at r) make up exactly count whole records. */
static int records_tile(const uint8_t *r, size_t n, uint32_t count)
{
	if (count == 0 || (uint64_t)count * LAN_BATCH_RECORD_LEN > n)
		return 0;
	size_t at = 0;
	for (uint32_t i = 0; i < count; i++) {
		if (n - at < LAN_BATCH_RECORD_LEN)
			return 0;
		size_t len = lan_get16(r + at);
		at += LAN_BATCH_RECORD_LEN;
		if (n - at < len)
			return 0;
		at += len;
	}
	return at == n;
}

int ki_lan_batch_decode_keyed(const uint8_t *buf, size_t len, struct lan_batch *b,
			      const struct lan_keys *keys)
{
	int keyed = keys && keys->n;
	if (len < LAN_BATCH_FIXED_LEN)
		return len >= 4 && lan_get32(buf) != LAN_MAGIC ? -LAN_REJECT_MAGIC
							      : -LAN_REJECT_SHORT;
	if (lan_get32(buf) != LAN_MAGIC)
		return -LAN_REJECT_MAGIC;
	if (buf[4] != LAN_BATCH_VERSION)
		return -LAN_REJECT_VERSION;
	size_t hdr = lan_get16(buf + 6);
	uint32_t body = lan_get32(buf + 12);
	uint8_t channel_len = buf[47];
	if (hdr < LAN_BATCH_FIXED_LEN + (size_t)channel_len || hdr > LAN_HEADER_MAX)
		return -LAN_REJECT_HEADER;
	size_t tag = buf[5] & LAN_FLAG_MAC ? LAN_TAG_LEN : 0;
	if (body > LAN_FRAME_MAX - hdr - tag)
		return -LAN_REJECT_LENGTH;
	if (len < hdr + tag || len - hdr - tag < body)
		return -LAN_REJECT_SHORT;
	uint32_t want = lan_get32(buf + LAN_CRC_OFFSET);
	static const uint8_t zero[4];
	uint32_t crc = ki_crc32c(0, buf, LAN_CRC_OFFSET);
	crc = ki_crc32c(crc, zero, sizeof zero);
	crc = ki_crc32c(crc, buf + LAN_CRC_OFFSET + 4, hdr + body - LAN_CRC_OFFSET - 4);
	if (crc != want)
		return -LAN_REJECT_CRC;
	if (keyed && (!tag || !ki_lan_tag_ok(keys, buf, hdr + body, buf + hdr + body)))
		return -LAN_REJECT_AUTH;

	struct lan_frame *f = &b->f;
	f->flags = buf[5];
	uint8_t known = LAN_FLAG_REPAIR | (keyed ? LAN_FLAG_MAC : 0);
	if (f->flags & (LAN_FLAGS_CRITICAL | LAN_FLAG_REPAIR) & ~known)
		return -LAN_REJECT_FLAGS;
	f->host = lan_get64(buf + 16);
	f->publisher = lan_get64(buf + 24);
	f->seq = lan_get64(buf + 32);
	f->pid = lan_get32(buf + 40);
	b->count = lan_get16(buf + 44);
	f->channel_len = channel_len;
	if (channel_len == 0 || channel_len > KITE_CHANNEL_MAX)
		return -LAN_REJECT_CHANNEL;
	memcpy(f->channel, buf + LAN_BATCH_FIXED_LEN, channel_len);
	f->channel[channel_len] = 0;
	if (memchr(f->channel, 0, channel_len) || kite_channel_valid(f->channel) != 0)
		return -LAN_REJECT_CHANNEL;
	/* The age, as in version 1: only if the header holds all of it. */
	f->has_age = hdr >= LAN_BATCH_FIXED_LEN + (size_t)channel_len + LAN_AGE_LEN;
	f->age_ms = f->has_age ? lan_get32(buf + LAN_BATCH_FIXED_LEN + channel_len) : 0;
	if (f->seq == 0 || f->seq > LAN_SEQ_MAX || b->count > LAN_SEQ_MAX - f->seq + 1)
		return -LAN_REJECT_SEQ;
	f->payload = buf + hdr;
	f->payload_len = body;
	if (!records_tile(f->payload, body, b->count))
		return -LAN_REJECT_RECORDS;
	f->timestamp_ns = 0;
	f->frag_index = 0;
	f->frag_count = 1;
	f->total_len = 0;
	return (int)(hdr + body + tag);
}
