/* Internal: the control protocol spoken over each SOCK_SEQPACKET link.
 * One record per message: a fixed 40-byte header, then text, then reason,
 * with file descriptors (SCM_RIGHTS) where the type calls for them. Decoding
 * checks every length and the exact number of descriptors. */
#ifndef KITE_WIRE_H
#define KITE_WIRE_H

#include <stdint.h>

#include "kite.h"

#define WIRE_VERSION 5
#define WIRE_REASON_MAX 255
#define WIRE_MAX_FDS 2

enum wire_type {
	W_HELLO = 1, /* id = sender's publisher id, a = version */
	W_SUB,       /* text = pattern, id = ack token (0: no ack wanted),
	                a = 1: reliable (the publisher honours the position
	                the subscriber sends with W_RELIABLE), b = 1: fresh */
	W_UNSUB,     /* text = pattern */
	W_SYNC,      /* the sender's initial subscriptions are all sent; id =
	                token (0: none) the receiver acknowledges with
	                W_SUB_ACK once it has offered its rings for them */
	W_SUB_ACK,   /* id = token of the W_SUB this answers */
	W_RING,      /* id = ring id, a = first seq for the receiver, b = the
	                ring's own first seq, its record at position 0 (the
	                receiver walks from there to its first seq; a later
	                ring carries on a stream whose earlier rings were
	                released), text = channel,
	                slot_count, slot_size; fds: the ring, and optionally
	                the sender's stream heads page (the ring header names
	                the stream's entry) */
	W_LARGE,     /* id = ring id, a = large id, b = length; fd: the memfd */
	W_REFUSE,    /* text = channel, reason = why */
	W_RING_END,  /* id = ring id: the receiver no longer gets this ring;
	                a >= 1: released after an idle spell, a = the
	                receiver's first seq of the stream, b = its last seq:
	                the stream goes on in the sender's next ring for the
	                channel, and then (optionally) fd: the sender's stream
	                heads page, slot_count = 1 + this stream's index in it,
	                text = the channel (a receiver that never got this
	                ring carries on its earlier ring of the stream, or,
	                with none, takes the stream on from a: NEW, a..b lost)
	                (a = 0: the stream ends) */
	W_WAKE,      /* a subscriber's wake-up handles, sent once to a publisher
	                whose ring it took; fds: a connected AF_UNIX datagram
	                socket to send wake-ups on, waiter page */
	W_BYE,       /* the sender closes its handle: not a broken link */
	W_INFO_REQ,  /* an observer (kite ls/top) asks what we are doing; id =
	                token. Valid before W_HELLO: an observer has no name */
	W_INFO,      /* one item of the answer: slot_count = enum info_kind,
	                the rest as that kind says; the last is INFO_END */
	W_RELIABLE,  /* a reliable subscriber took a ring: id = ring id, text =
	                channel, a = its slot in the positions page (POS_SLOTS
	                or more: it has none, read it as radio); fd: that
	                page (a sealed memfd of POS_BYTES the publisher maps
	                read-only, once per link) */
	W_HANDOVERS, /* sent once per link, once the receiver's W_HELLO is
	                believed (only the sender's W_HELLO before it), before any
	                W_RING: fds: the sender's handovers page (a memfd of
	                HO_BYTES sealed like a ring, mapped read-only) and its
	                stream heads page. While a W_RING waits in the
	                sender's outbound queue, the entry at the ring's heads
	                slot names it (ring id, the receiver's first seq,
	                channel); once the sender is gone, the receiver
	                reports such a stream it never got as lost from the
	                first seq to the head. A second one breaks the
	                protocol. */
	W_TYPE_MAX
};

/* The items of an introspection answer (W_INFO's slot_count). */
enum info_kind {
	INFO_HANDLE = 1, /* id = handle id, slot_size = 1 if the asker sees
	                    everything (same uid or root), reason = command
	                    line (arguments joined by spaces, truncated; only
	                    to one that sees everything, else empty) */
	INFO_COUNTER,    /* text = kite_stats field name, b = its value */
	INFO_PUB,        /* a ring we publish: text = channel, id = ring id,
	                    a = head sequence (messages), b = payload bytes,
	                    slot_size = slots */
	INFO_PATTERN,    /* text = a pattern we subscribe */
	INFO_SUB,        /* a ring we read: text = channel, id = publisher id,
	                    a = last sequence read, b = messages reported lost
	                    (KITE_LOSS sums), slot_size = lag in messages
	                    (saturated), reason = delivery ("radio") */
	INFO_END,        /* id = the request's token, a = items before it */
	INFO_KIND_MAX
};

/* A record's fixed 40-byte head, as it travels (tests build broken records
 * from it by hand). */
struct wire_fixed {
	uint16_t type;
	uint16_t text_len;
	uint16_t reason_len;
	uint16_t nfds;
	uint32_t slot_count;
	uint32_t slot_size;
	uint64_t id, a, b;
};

struct wire_msg {
	uint16_t type;
	uint32_t slot_count, slot_size;
	uint64_t id, a, b;
	char text[KITE_CHANNEL_MAX + 1];
	char reason[WIRE_REASON_MAX + 1];
	int fds[WIRE_MAX_FDS];
	int nfds;
};

/* Send one message; with dontwait set it never waits (-EAGAIN: no room).
 * 0 or -errno. */
int ki_wire_send(int sock, const struct wire_msg *m, int dontwait);

/* Receive one message without waiting: 1 got one, 0 nothing queued,
 * -EPIPE end of stream (nothing more will come), -ECONNRESET or another
 * -errno an error (records may still be queued: read again), -EPROTO
 * malformed (any fds are closed). */
int ki_wire_recv(int sock, struct wire_msg *m);

/* Fill a message with a type and zeroes (nfds 0, fds -1). */
void ki_wire_init(struct wire_msg *m, uint16_t type);

#endif
