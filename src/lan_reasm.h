/* Reassembly of messages that came in fragments, under hard caps: at most
 * max_msg bytes per message, cap_bytes for all partial messages together
 * (buffers and fragment maps), LAN_REASM_PARTIALS partial messages, each
 * given timeout_ns from its first fragment. A flood of bogus or
 * never-completed fragments evicts the oldest partials and cannot grow a
 * receiver past its cap; every partial discarded is counted, and an
 * evicted or expired one is handed to the discarded callback, so that its
 * stream learns the sequence exists and reports it lost (else, with
 * nothing after it, nothing would). */
#ifndef KITE_LAN_REASM_H
#define KITE_LAN_REASM_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include "lan_frame.h"
#include "lan_stream.h"

#define LAN_REASM_PARTIALS 64
#define LAN_REASM_MAX_MSG (16u << 20)     /* default, and the least allowed */
#define LAN_REASM_CAP (64u << 20)         /* default memory cap */
#define LAN_REASM_TIMEOUT_NS 2000000000ull /* default: 2 s */

struct lan_partial;

/* Which message a partial was: its stream and sequence. */
struct lan_reasm_key {
	uint64_t host, publisher, seq;
	char channel[KITE_CHANNEL_MAX + 1];
};

struct lan_reasm {
	uint32_t max_msg;
	size_t cap_bytes;
	uint64_t timeout_ns;
	struct lan_partial *partials[LAN_REASM_PARTIALS];
	size_t npartials;
	size_t bytes; /* held by partials now: never above cap_bytes */
	/* What was refused or thrown away. */
	uint64_t completed;
	uint64_t too_big;      /* messages above max_msg, never started */
	uint64_t evicted;      /* partials dropped to make room */
	uint64_t expired;      /* partials older than timeout_ns */
	uint64_t inconsistent; /* fragments that disagree with their partial */
	uint64_t duplicates;   /* fragments already held */
	/* Called (NULL: not) for each partial evicted or expired, after it
	 * is gone: it must not call back into the reassembler. */
	void (*discarded)(void *ctx, const struct lan_reasm_key *key, uint64_t now_ns);
	void *discarded_ctx;
};

/* Zero-initialised r with defaults filled in for zero fields. */
void ki_lan_reasm_init(struct lan_reasm *r, uint32_t max_msg, size_t cap_bytes,
		    uint64_t timeout_ns);
void ki_lan_reasm_free(struct lan_reasm *r);

/* Take one fragment (f->frag_count > 1) of host's message heard at now.
 * 1: the message is complete, *out holds it (its data is the caller's);
 * 0: held, waiting for more; -1: refused or dropped (counted). */
int ki_lan_reasm_add(struct lan_reasm *r, uint64_t host, const struct lan_frame *f,
		  const struct sockaddr_in *from, uint64_t now_ns, struct lan_msg *out);

/* Discard partials older than timeout_ns; ns until the next expires, or
 * UINT64_MAX. */
uint64_t ki_lan_reasm_expire(struct lan_reasm *r, uint64_t now_ns);

#endif
