/* Exact accounting of one (host, publisher, channel) stream heard on the
 * LAN: messages are delivered in sequence order, each sequence exactly
 * once or counted lost; duplicates are dropped and counted; a message that
 * arrives out of order waits up to LAN_REORDER_WINDOW sequences or
 * reorder_ns for the gap before it to fill, after which the gap is lost
 * (and a message of it that still comes is dropped as late). So, per
 * stream: delivered + lost = every sequence from the first heard to the
 * last the publisher announced. */
#ifndef KITE_LAN_STREAM_H
#define KITE_LAN_STREAM_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include "kite.h"
#include "lan_frame.h"

#define LAN_REORDER_WINDOW 64
/* The window a stream under repair may grow to (ki_lan_stream_widen):
 * what follows a gap must wait a repair round trip, and a subscriber that
 * was not scheduled for a while takes thousands of messages in one go;
 * they must not push the gap out of the window before its NAK is even
 * sent. The window doubles from 64 as needed: 8192 slots of 56 bytes
 * (448 KiB) per stream at most, within the handle's shared budget. */
#define LAN_REPAIR_WINDOW 8192
/* Sequences below the next one whose delivery is remembered, to tell a
 * duplicate from a late arrival of a lost message. */
#define LAN_HISTORY 64

/* A whole message (reassembled if it came in fragments). */
struct lan_msg {
	uint64_t seq;
	uint64_t timestamp_ns;
	uint64_t arrived_ns; /* set by ki_lan_stream_take */
	uint32_t pid;
	uint32_t len;
	uint8_t *data; /* malloc'd, owned by whoever holds the lan_msg */
	void *block;   /* the allocation holding data, when data is not one
			* of its own (NULL: free data itself) */
	struct sockaddr_in from;
};

/* Free what m holds (ki_lan_msg_free), and mark it empty. */
void ki_lan_msg_free(struct lan_msg *m);

struct lan_stream {
	uint64_t host, publisher;
	char channel[KITE_CHANNEL_MAX + 1];
	int started;
	uint64_t next;          /* the next sequence to deliver */
	uint64_t announced;     /* the last sequence the publisher said it sent */
	uint64_t delivered_mask; /* bit i: next - 1 - i was delivered */
	struct lan_msg held[LAN_REORDER_WINDOW]; /* by seq % window; data NULL: empty */
	struct lan_msg *wide;   /* instead of held, once grown */
	size_t window;          /* slots in wide (0: held, LAN_REORDER_WINDOW) */
	size_t window_max;      /* what it may grow to (0: never) */
	size_t *slots_budget;   /* slots all streams may still grow by */
	uint64_t held_max;      /* the highest sequence ever held */
	size_t nheld, held_bytes;
	struct lan_held *held_total; /* the handle's, NULL: none */
	uint64_t gap_since_ns;  /* when the current gap was first seen, 0: none */
	uint64_t last_heard_ns;
	/* Counters: delivered + lost covers every sequence; duplicates and
	 * late arrivals were dropped on top. */
	uint64_t delivered, lost, duplicates, late;
};

/* What all streams of a handle hold behind their gaps together, so that
 * the handle can cap it (streams many hostile publishers make each hold
 * a window of messages). */
struct lan_held {
	size_t msgs, bytes;
};

/* What the stream hands on, in order: a message (ownership of m->data
 * passes to the callee) or a loss of n messages. */
struct lan_sink {
	void (*message)(void *ctx, struct lan_stream *s, struct lan_msg *m);
	void (*loss)(void *ctx, struct lan_stream *s, uint64_t n);
	void *ctx;
};

/* The first frame heard of the stream carries seq (a message, or only a
 * fragment of one): the stream starts there, so that message is delivered
 * or reported lost like any after it. No effect once started. */
void ki_lan_stream_begin(struct lan_stream *s, uint64_t seq);

/* How much later than the moment a receiver started listening a stream
 * must have begun, by its age, for the receiver to hold that it heard the
 * beginning: room for a group join still on its way through the LAN's
 * switches and for the time a frame spent on the wire; plus 1 ms a second
 * of age for two clocks' rates (see ki_lan_stream_heard_start). */
#define LAN_START_MARGIN_NS (100 * 1000000ull)

/* Did a receiver that has listened to the stream's channel since since_ns
 * (monotonic; LAN_LISTEN_NEVER, UINT64_MAX: not) hear it begin? Its
 * first frame arrived at arrived_ns, of age age_ms: the stream began at
 * about arrived_ns - age, which must be later than since_ns by the
 * margin and age / 1000. A saturated age is never later. */
int ki_lan_stream_heard_start(uint64_t arrived_ns, uint32_t age_ms, uint64_t since_ns);

/* Before f, of a stream not started yet, is taken: a resend (repair flag)
 * cannot begin a stream (it may be of any old message): -1, drop it.
 * Else 0, take it; and if f carries the stream's age and it shows the
 * receiver listening since before the stream began, the stream begins at
 * sequence 1, so that what came before f and was not heard is a gap, as
 * any other (a frame without the age, of an older publisher: the stream
 * begins at f, as a late joiner's). */
int ki_lan_stream_first(struct lan_stream *s, const struct lan_frame *f, uint64_t arrived_ns,
			uint64_t since_ns);

/* Take a message heard at now_ns (its data is then owned by the stream,
 * and freed if dropped). Returns 1 delivered or held, 0 dropped as a
 * duplicate or late. */
int ki_lan_stream_take(struct lan_stream *s, struct lan_msg *m, uint64_t now_ns,
		    uint64_t reorder_ns, const struct lan_sink *out);

/* A frame of a sequence below the next one to deliver came again (seq <
 * next; its data is not taken): counted a duplicate if that sequence was
 * delivered, else late (it was reported lost, or is from before the
 * stream began here). */
void ki_lan_stream_behind(struct lan_stream *s, uint64_t seq);

/* The publisher says it has sent up to seq (its idle heartbeat, or its
 * goodbye): a gap up to there is waited for like any other. */
void ki_lan_stream_announce(struct lan_stream *s, uint64_t seq, uint64_t now_ns,
			 uint64_t reorder_ns, const struct lan_sink *out);

/* Time passes: gaps older than reorder_ns are declared lost and what was
 * held behind them delivered. Returns ns until the stream next needs a
 * look (UINT64_MAX: nothing pending). */
uint64_t ki_lan_stream_tick(struct lan_stream *s, uint64_t now_ns, uint64_t reorder_ns,
			 const struct lan_sink *out);

/* Give up waiting: every gap up to the last announced or held sequence is
 * lost now, and what is held delivered (a vanished publisher, a memory
 * cap). */
void ki_lan_stream_flush(struct lan_stream *s, const struct lan_sink *out);

/* The receiver stopped listening to the stream's channel (unsubscribed):
 * flush it (its account up to now is complete) and make it not begun, so
 * that heard again it begins anew (ki_lan_stream_first), as a late
 * joiner's: what was sent while nobody listened is not a loss. */
void ki_lan_stream_restart(struct lan_stream *s, const struct lan_sink *out);

/* Let the stream's window grow, by doubling when a message would fall
 * beyond it, up to `window` slots, as long as *budget (shared by the
 * streams of a handle, in slots; taken as it grows, given back by
 * ki_lan_stream_clear) allows and memory is there; else the window
 * overflows as without. */
void ki_lan_stream_widen(struct lan_stream *s, size_t window, size_t *budget);

/* The sequences a NAK should ask for: the gaps between the next one to
 * deliver and the last one held or announced, coalesced into at most max
 * ranges (ascending, not touching; the last range ends at that last gap,
 * later gaps wait for the next NAK). Returns how many. */
size_t ki_lan_stream_missing(const struct lan_stream *s, struct lan_seq_range *out,
			     size_t max);

/* Free what is held (without delivering it), and a widened window. */
void ki_lan_stream_clear(struct lan_stream *s);

#endif
