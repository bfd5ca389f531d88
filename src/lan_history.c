/* The repair history: frames in one byte ring, records in a FIFO ring, and
 * a small open-addressed index from (channel, seq) to records. The index
 * is never cleaned: an entry is believed only if the record it points to
 * still holds that key, so an evicted or overwritten record is simply not
 * found. */
#include "lan_history.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lan_crc32c.h"
#include "lan_frame.h"

#define INDEX_SIZE (2 * LAN_HISTORY_MSGS) /* a power of two */
#define PROBES 8

static uint32_t key_hash(uint32_t channel_hash, uint64_t seq)
{
	uint64_t k = (seq ^ ((uint64_t)channel_hash << 32)) * 0x9E3779B97F4A7C15ull;
	return (uint32_t)(k >> 40) & (INDEX_SIZE - 1);
}

/* Is r the live record of (channel, seq)? The channel name is compared in
 * the first frame itself: a hash match is not enough. */
static int rec_is(const struct lan_history *h, const struct lan_hist_rec *r,
		  uint32_t channel_hash, const char *channel, uint64_t seq)
{
	if (r->seq != seq || r->channel_hash != channel_hash || r->len < LAN_FIXED_LEN)
		return 0;
	const uint8_t *f = h->bytes + r->off;
	size_t n = strlen(channel);
	return f[64] == n && r->len >= LAN_FIXED_LEN + n &&
	       memcmp(f + LAN_FIXED_LEN, channel, n) == 0;
}

int ki_lan_history_init(struct lan_history *h, size_t cap)
{
	memset(h, 0, sizeof *h);
	h->bytes = malloc(cap);
	h->rec = calloc(LAN_HISTORY_MSGS, sizeof *h->rec);
	h->index = calloc(INDEX_SIZE, sizeof *h->index);
	if (!h->bytes || !h->rec || !h->index) {
		ki_lan_history_free(h);
		return -ENOMEM;
	}
	h->cap = cap;
	h->tokens = LAN_RESEND_BURST;
	h->nak_tokens = LAN_NAK_BURST;
	return 0;
}

/* A token bucket: refill *tokens at rate a second up to burst since *at. */
static void refill(uint64_t *tokens, uint64_t *at, uint64_t rate, uint64_t burst,
		   uint64_t now_ns)
{
	if (now_ns <= *at)
		return;
	/* (A second refills any burst: bursts here are below their rates.) */
	uint64_t add = now_ns - *at >= 1000000000ull ? burst : (now_ns - *at) / 1000 * rate / 1000000u;
	if (*at == 0 || add >= burst || *tokens + add >= burst)
		*tokens = burst;
	else if (add == 0)
		return; /* keep the fraction: *at stays */
	else
		*tokens += add;
	*at = now_ns;
}

int ki_lan_history_nak_ok(struct lan_history *h, uint64_t now_ns)
{
	refill(&h->nak_tokens, &h->nak_tokens_ns, LAN_NAK_RATE, LAN_NAK_BURST, now_ns);
	if (!h->nak_tokens)
		return 0;
	h->nak_tokens--;
	return 1;
}

void ki_lan_history_free(struct lan_history *h)
{
	free(h->bytes);
	free(h->rec);
	free(h->index);
	memset(h, 0, sizeof *h);
}

static void evict_oldest(struct lan_history *h)
{
	h->rec[h->oldest].seq = 0;
	h->oldest = (h->oldest + 1) % LAN_HISTORY_MSGS;
	h->count--;
}

/* Where len contiguous bytes go, evicting the oldest records until they
 * are free. Live bytes run, in ring order, from the oldest record to wpos. */
static size_t make_room(struct lan_history *h, size_t len)
{
	for (;;) {
		if (h->count == 0) {
			h->wpos = 0;
			return 0;
		}
		size_t o = h->rec[h->oldest].off;
		if (h->wpos > o) {
			if (h->cap - h->wpos >= len)
				return h->wpos;
			if (o >= len)
				return 0; /* wrap: the end's slack stays unused */
		} else if (o - h->wpos >= len) {
			return h->wpos;
		}
		evict_oldest(h);
	}
}

void ki_lan_history_add(struct lan_history *h, const char *channel, uint64_t seq,
			const uint8_t *frames, size_t len)
{
	if (!h->bytes || len == 0 || len > h->cap || seq == 0)
		return;
	if (h->count == LAN_HISTORY_MSGS)
		evict_oldest(h);
	size_t at = make_room(h, len);
	size_t i = (h->oldest + h->count) % LAN_HISTORY_MSGS;
	struct lan_hist_rec *r = &h->rec[i];
	memcpy(h->bytes + at, frames, len);
	r->channel_hash = ki_crc32c(0, channel, strlen(channel));
	r->seq = seq;
	r->off = at;
	r->len = len;
	r->resent_ns = 0;
	h->count++;
	h->wpos = at + len;
	/* An index slot that is free or stale, else the home slot. */
	uint32_t home = key_hash(r->channel_hash, seq), put = home;
	for (uint32_t p = 0; p < PROBES; p++) {
		uint32_t s = (home + p) & (INDEX_SIZE - 1);
		uint32_t v = h->index[s];
		const struct lan_hist_rec *o = v ? &h->rec[v - 1] : NULL;
		/* Stale: its record evicted, or reused by a key whose probes
		 * never reach this slot. */
		if (!o || o->seq == 0 ||
		    ((s - key_hash(o->channel_hash, o->seq)) & (INDEX_SIZE - 1)) >= PROBES) {
			put = s;
			break;
		}
	}
	h->index[put] = (uint32_t)i + 1;
}

struct lan_hist_rec *ki_lan_history_find(struct lan_history *h, const char *channel,
					 uint64_t seq)
{
	if (!h->bytes || seq == 0)
		return NULL;
	uint32_t ch = ki_crc32c(0, channel, strlen(channel));
	uint32_t home = key_hash(ch, seq);
	for (uint32_t p = 0; p < PROBES; p++) {
		uint32_t v = h->index[(home + p) & (INDEX_SIZE - 1)];
		if (v && rec_is(h, &h->rec[v - 1], ch, channel, seq))
			return &h->rec[v - 1];
	}
	return NULL;
}

int ki_lan_history_resend_ok(struct lan_history *h, struct lan_hist_rec *rec,
			     uint64_t now_ns)
{
	if (rec->resent_ns && now_ns - rec->resent_ns < LAN_RESEND_HOLDOFF_NS)
		return 0;
	refill(&h->tokens, &h->tokens_ns, LAN_RESEND_RATE, LAN_RESEND_BURST, now_ns);
	if (h->tokens < rec->len && h->tokens < LAN_RESEND_BURST)
		return -1;
	if (h->tokens < rec->len) {
		/* Frames larger than the whole burst (a message of over 1 MiB,
		 * which the history keeps) could never pass: they go when the
		 * budget is full, and it stays empty until the rate has paid
		 * for the excess (refill adds nothing before tokens_ns), so
		 * resends still keep to the rate. */
		uint64_t excess = rec->len - h->tokens;
		h->tokens = 0;
		h->tokens_ns = now_ns + excess * 1000000000ull / LAN_RESEND_RATE;
	} else {
		h->tokens -= rec->len;
	}
	rec->resent_ns = now_ns ? now_ns : 1;
	return 1;
}
