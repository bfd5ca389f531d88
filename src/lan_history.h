/* A publisher's repair history: the frames of the messages it sent last,
 * as they went out, so that it can send them again when a subscriber asks
 * (a NAK). Bounded in bytes and in messages: the oldest go first. A message
 * is found by (channel, sequence); what was evicted, or never fitted, is
 * not found, and the asker reports it lost when its repair time runs out.
 *
 * Resends are rate-limited twice: each message at most once per
 * LAN_RESEND_HOLDOFF_NS (many subscribers missing the same datagram ask
 * within a few ms of each other; one multicast resend answers them all),
 * and all resends together by a token bucket of LAN_RESEND_RATE bytes per
 * second (burst LAN_RESEND_BURST): a NAK is a claim from any host, and the
 * most a forged one can get is resends within that budget. The work NAKs
 * cost is bounded too: LAN_NAK_RATE a second are looked at (burst
 * LAN_NAK_BURST), the rest dropped unread, and each makes at most
 * LAN_NAK_LOOKUPS look-ups in the history. */
#ifndef KITE_LAN_HISTORY_H
#define KITE_LAN_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#define LAN_HISTORY_BYTES (4u << 20)
#define LAN_HISTORY_MSGS 8192
#define LAN_RESEND_HOLDOFF_NS (4 * 1000000ull)
#define LAN_RESEND_RATE (8u << 20)
#define LAN_RESEND_BURST (1u << 20)
#define LAN_NAK_RATE 2000
#define LAN_NAK_BURST 256
#define LAN_NAK_LOOKUPS 1024

struct lan_hist_rec {
	uint32_t channel_hash; /* CRC32C of the channel name */
	uint64_t seq;          /* 0: not a live record */
	size_t off, len;       /* its frames, back to back, in bytes[] */
	uint64_t resent_ns;    /* when last resent, 0: never */
};

struct lan_history {
	uint8_t *bytes;
	size_t cap, wpos;         /* bytes; where the next record goes */
	struct lan_hist_rec *rec; /* a ring of LAN_HISTORY_MSGS */
	size_t oldest, count;
	uint32_t *index;          /* (channel, seq) hash -> record + 1 */
	uint64_t tokens, tokens_ns; /* the resend budget, in bytes */
	uint64_t nak_tokens, nak_tokens_ns; /* NAKs that may be looked at */
};

/* 0 or -ENOMEM. cap: bytes of frames kept (the memory is cap, plus
 * 40 bytes a message for the records and 8 for the index). */
int ki_lan_history_init(struct lan_history *h, size_t cap);
void ki_lan_history_free(struct lan_history *h);

/* Keep a message's frames (len bytes, encoded, back to back), evicting the
 * oldest as needed. A message larger than the whole history is not kept. */
void ki_lan_history_add(struct lan_history *h, const char *channel, uint64_t seq,
			const uint8_t *frames, size_t len);

/* The record of (channel, seq), or NULL if it is no longer (or never was)
 * kept. */
struct lan_hist_rec *ki_lan_history_find(struct lan_history *h, const char *channel,
					 uint64_t seq);

/* May rec be resent now? Yes (1) unless it was resent less than the holdoff
 * ago (0) or the rate budget lacks its bytes (-1: stop for now). On yes,
 * its bytes are taken from the budget and its resend time is now. A
 * record larger than the whole burst goes when the budget is full, which
 * then refills only once the rate has paid for the excess. */
int ki_lan_history_resend_ok(struct lan_history *h, struct lan_hist_rec *rec,
			     uint64_t now_ns);

/* May one more NAK be looked at now (1), or is it over LAN_NAK_RATE (0)? */
int ki_lan_history_nak_ok(struct lan_history *h, uint64_t now_ns);

static inline const uint8_t *lan_history_frames(const struct lan_history *h,
						const struct lan_hist_rec *r)
{
	return h->bytes + r->off;
}

#endif
