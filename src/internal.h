/* Internal: the handle and what hangs off it. One mutex (k->lock) guards
 * everything below that both the caller's thread and the control thread
 * touch; the hot paths take it once per call, uncontended. */
#ifndef KITE_INTERNAL_H
#define KITE_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "kite.h"
#include "lan.h"
#include "ring.h"
#include "stamp.h"
#include "wire.h"

#define BUS_MAX 64
#define MAX_PEER_GROUPS 64
#define LARGE_KEEP 64 /* large-message fds a subscriber keeps per ring */
#define EVENT_QUEUE 256
#define TEXT_MAX 320
#define PEER_PATTERNS_MAX KITE_PATTERNS_MAX /* subscriptions a peer may hold */
/* A peer's outbound queue: records the socket had no room for. Past
 * OUTQ_MAX (plus one per ring we publish) the link is cut (and later
 * re-made, with exact losses). */
#ifndef OUTQ_MAX /* (tests build a variant with tiny queues to force cuts) */
#define OUTQ_MAX 16384
#endif
#ifndef OUTQ_PER_RING
#define OUTQ_PER_RING 1
#endif
#define OUTQ_STRANGER_MAX 64
/* Links one uid may hold with us: a uid the policy lets into nothing gets
 * STRANGER_LINKS_MAX in all; any uid SILENT_LINKS_MAX still owing a hello.
 * Beyond, new links are closed at once. */
#define STRANGER_LINKS_MAX 4
#define SILENT_LINKS_MAX 64
/* ... and a uid the policy lets in on something, other than ours and
 * root's, PEER_LINKS_MAX: each link costs us a socket and a pidfd. */
#define PEER_LINKS_MAX 256
#define ACCEPT_BATCH 16
/* Refused patterns kept per link, for kite_allow_uid/gid called later. */
#define REFUSED_PATTERNS_KEPT 64
/* Out of descriptors, the listener is left alone this long. */
#define LISTEN_PAUSE_MS 100
/* Large-message notices queued for one peer; the oldest go first (the
 * subscriber counts them lost), so a stopped subscriber pins few memfds. */
#define OUTQ_LARGE_MAX 32
/* ... and for all peers together (each holds one of our descriptors). */
#define LARGE_QUEUED_TOTAL 128
/* Send buffer of each link: what may be in flight in the kernel, large
 * memfds included (the kernel doubles it). */
#define LINK_SNDBUF 16384
/* Re-linking a broken link: first try after RELINK_FIRST_MS, doubling up
 * to RELINK_MAX_MS while the peer's process lives and its name is bound. */
#define RELINK_FIRST_MS 2
#define RELINK_MAX_MS 1000
/* A link whose hello has not come by then is dropped (not re-made). */
#define HELLO_TIMEOUT_MS 3000
/* Records the control thread handles from one peer before it lets the
 * application's thread have the state again. */
#define DRAIN_BATCH 32
/* kite_close() waits at most this long for queued records to leave. */
#define CLOSE_FLUSH_MS 500
/* A queue the kernel refused descriptors for (ETOOMANYREFS) is tried again
 * this often. */
#define STALLED_RETRY_MS 10
#define PEER_REFUSALS_REPORTED 8 /* refusal events per peer, then one summary */
/* Rings released after an idle spell (opt.idle_ms) that a handle keeps as
 * a channel name and a sequence number each; beyond, rings stay. */
#define DORMANT_MAX 65536
/* The stream heads page: each stream's last seq, one u64 per stream, for
 * the first HEADS_MAX streams a handle publishes (only those are released
 * when idle). A subscriber maps the page of a released stream's entry, so
 * that if the publisher dies before the stream's next ring reaches it, it
 * still learns how many messages that ring held: lost, not hidden. */
#define HEADS_MAX DORMANT_MAX
#define HEADS_BYTES ((size_t)HEADS_MAX * sizeof(uint64_t))
/* The handovers page (handovers.c): one per link, made by the sender,
 * one 256-byte entry per stream heads slot, for the ring hand-overs that
 * wait in our outbound queue; a header page flags the entry pages ever
 * written. Sparse: only pages written cost memory. */
#define HO_ENTRY_BYTES 256
#define HO_HEADER_BYTES 4096
#define HO_BYTES (HO_HEADER_BYTES + (size_t)HEADS_MAX * HO_ENTRY_BYTES)
/* Reliable subscriptions (reliable.c, positions.c): a subscriber's
 * positions page holds one u64 per reliable ring it reads, its read
 * position there; publishers map it read-only. Rings beyond POS_SLOTS are
 * read as radio. */
#define POS_SLOTS 8192
#define POS_BYTES ((size_t)POS_SLOTS * sizeof(uint64_t))
/* Large messages a reliable subscriber may have unread per ring (each is
 * a memfd in flight or held): a publisher waits before the next. */
#define RELIABLE_LARGE_MAX 16
#define DEFAULT_RELIABLE_DEADLINE_MS 2000
#define RELIABLE_DEADLINE_MAX_MS 60000

/* The page a subscriber shares with every publisher it hears from: set
 * `sleeping` before it sleeps, and a publisher that sees it writes the
 * subscriber's eventfd. Publishers that find it clear make no system call. */
struct waiter_page {
	_Atomic uint32_t sleeping;
	/* 1: publishers must fence every message before reading `sleeping`;
	 * 0: this subscriber issues membarrier() before it sleeps instead.
	 * The subscriber switches with its traffic (see kite_arm()). */
	_Atomic uint32_t needs_fence;
};

/* One record waiting for room in a peer's socket. */
struct fd_share; /* outq.c */

struct outrec {
	struct outrec *next;
	int32_t ho_slot; /* a queued hand-over's handovers entry, -1: none */
	int owns_fds; /* its fds are copies to close (else the handle's own) */
	struct fd_share *share; /* a ring hand-over's copy of the ring's fd */
	struct wire_msg m;
};

/* A peer's handovers page and stream heads page, mapped read-only, read
 * only once it has gone (handovers.c); NULLs if it sent none. */
struct ho_view {
	const uint8_t *page;
	const _Atomic uint64_t *heads;
};

struct peer {
	int sock;
	int pidfd;        /* the peer process (pidfd_open), -1 if unavailable */
	struct outrec *q_head, *q_tail; /* records waiting for socket room */
	size_t q_len, q_large;
	int q_armed;      /* EPOLLOUT is registered */
	int q_stalled;    /* the kernel refused descriptors: retry on a timer */
	int send_dead;    /* a send failed for good: nothing more goes out */
	int eof;          /* its end of the stream was read */
	int bye;          /* it closed its handle (W_BYE) */
	int verified;     /* its claimed id is the owner of @kite/<bus>/<id> */
	uint64_t sync_token; /* our W_SYNC's token: its answer ends re-offers */
	uint64_t hello_due_ns; /* its hello must have come by then */
	int outgoing;     /* we connected (1) or accepted (0) */
	int hello;        /* its W_HELLO arrived */
	int info_asked;   /* it asked W_INFO_REQ (once per link at most) */
	int synced;       /* its W_SYNC arrived */
	int awaited;      /* kite_open waits for this link's W_SYNC */
	uint64_t acks_pending; /* our W_SUBs it has not acknowledged */
	unsigned refusals;     /* refusal events about this peer so far */
	unsigned refused_patterns; /* its W_SUBs the policy gave nothing */
	char **refused;   /* a few of those, should a rule let them in later */
	size_t nrefused;
	/* It refused one of our subscriptions: a stream of its that reaches
	 * us later (a rule let us in) began for us then, not when we
	 * subscribed (ki_sub_attach). */
	int refused_us;
	int wake_sent;         /* we sent it our W_WAKE */
	int closing;      /* it broke the protocol or lied: read no more */
	int duplicate;    /* a second link to a peer we keep another link to */
	uint64_t id;      /* its publisher id (from its name, then W_HELLO) */
	pid_t pid;
	uid_t uid;
	gid_t gid;
	gid_t groups[MAX_PEER_GROUPS];
	int ngroups;
	char **patterns;  /* its subscriptions */
	size_t npatterns;
	/* A re-made link: its subscriptions from before the break, until its
	 * W_SYNC says the new ones are all in. */
	char **ghost_patterns;
	size_t nghost;
	/* Its patterns this link said it held without a break (W_SUB b = 0),
	 * until its W_SYNC. */
	char **continuous;
	size_t ncontinuous;
	/* We re-made this link: our patterns subscribed after relink_gen are
	 * sent as fresh (W_SUB b = 1). */
	int relinked;
	uint64_t relink_gen;
	int wake_tx;      /* to wake it: its datagram socket (from its W_WAKE;
	                     -1 until then); sent with MSG_DONTWAIT only */
	struct waiter_page *waiter; /* NULL until its W_WAKE */
	char **reliable;  /* those of its patterns it asked to be reliable */
	size_t nreliable;
	/* Its positions page (W_RELIABLE), mapped read-only; NULL until then.
	 * Every value read from it is checked before use (reliable.c). */
	const _Atomic uint64_t *positions;
	uint8_t *ho_out;      /* the handovers page we made for it (writable) */
	struct ho_view ho_in; /* the one it made for us */
	int ho_received;      /* its W_HANDOVERS came (once per link) */
	int ho_noted;         /* an entry was ever written in ho_out */
	struct peer *next;
};

/* Where a subscriber's stream of a ring began: kept across a broken link,
 * so that a hand-over lost with the link is made again from the same
 * sequence and the subscriber learns exactly what it missed. */
struct offer_mark {
	uint64_t peer_id;
	uint64_t first_seq;
};

/* A reliable subscriber of one of our rings, as the publisher sees it. */
struct reliable_sub {
	struct peer *peer;
	uint32_t slot1;          /* 1 + its slot in peer->positions; 0: not told yet */
	uint64_t pos;            /* its last position that passed the checks */
	uint64_t stuck_since_ns; /* it has held us up since, not moving (0: no) */
};

/* A ring we publish into. */
struct pub_ring {
	char channel[KITE_CHANNEL_MAX + 1];
	size_t channel_len; /* strlen(channel), for ki_pub_same_channel */
	uint64_t ring_id;
	int fd;
	size_t bytes;
	struct ring_writer w;
	uint32_t inline_max;   /* of w's geometry: ki_ring_inline_max ... */
	uint64_t pool_msg_max; /* ... and ki_ring_pool_msg_max, once per ring */
	void *lan_pub;         /* the LAN's record of the channel (lan.c), once found */
	struct peer **subs; /* peers that hold this ring */
	size_t nsubs, cap;
	struct offer_mark *marks; /* every live subscriber it was offered to */
	size_t nmarks, marks_cap;
	uint64_t next_large_id;
	uint64_t bytes_published; /* payload bytes, for introspection */
	/* Released after an idle spell: fd -1 and w.base NULL, w.head kept;
	 * its subscribers stay listed and get the next ring it is made into. */
	uint64_t first_seq;     /* the first seq this ring (not the stream) holds */
	uint64_t born_ns;       /* CLOCK_MONOTONIC when the stream began */
	uint64_t born_clock;    /* which one (ki_monotonic_clock_id) */
	int32_t head_slot;      /* its entry in k->heads, -1: none (never released) */
	uint64_t idle_head;     /* w.head when the idle sweep last saw it move */
	uint64_t idle_since_ns;
	int publishing;         /* kite_publish let go of the lock mid-message */
	/* An open kite_claim: the body bytes it may fill, plus one (0: none).
	 * Its ring is not released, nor written by anything else, until
	 * kite_commit or kite_abort (claim.c). */
	uint64_t claimed;
	/* An open claim in the ring's pool (a message longer than a record
	 * takes inline): where its payload starts; UINT64_MAX: a record's. */
	uint64_t claim_pool_pos;
	/* Reliable subscribers (a subset of subs) and the least of their
	 * positions as last read: a publish that needs no more is not
	 * checked further (reliable.c). */
	struct reliable_sub *rel;
	size_t nrel, rel_cap;
	uint64_t rel_floor;
	uint64_t large_end[RELIABLE_LARGE_MAX]; /* where recent large records end */
	uint64_t nlarge_written;
	struct pub_ring *hash_next;
};

/* Is channel (a caller's string, of any length) r's channel? Byte by
 * byte against the length we know: r's name has channel_len bytes that are
 * not NUL, so the first difference, if any, is found at or before the
 * caller's NUL, and nothing past it is read. (Inlined in the hot path:
 * a 64-byte publish took some 4 ns longer, of 33, with libc's strcmp.) */
static inline int ki_pub_same_channel(const struct pub_ring *r, const char *channel)
{
	for (size_t i = 0; i < r->channel_len; i++)
		if (channel[i] != r->channel[i])
			return 0;
	return channel[r->channel_len] == '\0';
}

struct large_fd {
	uint64_t large_id;
	int fd;
};

/* A ring we read, from one publisher peer. */
struct sub_ring {
	char channel[KITE_CHANNEL_MAX + 1];
	uint64_t ring_id;
	uint64_t publisher;
	struct peer *peer; /* NULL once the publisher is gone */
	pid_t pid;
	uid_t uid;
	gid_t gid;
	size_t bytes;
	uint64_t ino;      /* the ring memfd's inode: a re-offer must match */
	struct ring_reader r;
	uint64_t lost; /* what its KITE_LOSS events said, summed (kite ls/top) */
	int gone;
	int relinking;    /* its link broke, the publisher lives: still read */
	int announce;     /* KITE_PUBLISHER_NEW not yet delivered */
	int unsubscribed; /* freed by the next kite_recv() */
	/* Its publisher released the ring after an idle spell: read it up to
	 * end_seq, then unmap it (dormant) until the next ring of the same
	 * stream comes, which is read only after this one (blocked). */
	int retiring;
	uint64_t end_seq;
	int dormant;      /* unmapped: r.base is NULL */
	int blocked;      /* an earlier ring of this stream is still read */
	/* A released stream: its publisher's stream heads page (one page of
	 * it, read-only) and our entry there; NULL if not given. */
	const void *heads_page;
	uint32_t head_index;
	uint64_t pending_lost; /* a gap between two rings of the stream */
	uint32_t pos_slot1; /* reliable: 1 + our slot in k->positions, else 0 */
	/* Last: the fields above that every read looks at share cache lines
	 * with the reader (r) instead of lying a kilobyte away. */
	struct large_fd large[LARGE_KEEP];
	int nlarge;
};

/* A broken link to a live peer, to be made again. */
struct relink {
	uint64_t id;
	pid_t pid;
	int pidfd;
	/* Its subscriptions when the link broke: rings we create meanwhile
	 * are its streams from their first message. */
	char **patterns;
	size_t npatterns;
	uint64_t break_gen; /* our subscription counter when the link broke */
	/* The handovers pages of the broken link: its own, read if it turns
	 * out gone before a new link says hello; ours, where rings made
	 * meanwhile for its patterns are written down. And who it was (for
	 * the policy). */
	struct ho_view ho;
	uint8_t *ho_out;
	uid_t uid;
	gid_t gid;
	gid_t groups[MAX_PEER_GROUPS];
	int ngroups;
	uint64_t due_ns;
	uint32_t backoff_ms;
	struct relink *next;
};

struct allow_rule {
	char pattern[KITE_CHANNEL_MAX + 1];
	int is_gid;
	unsigned id;
};

/* A subscription's replay (kite_sub_options.last_n / last_ms). */
struct sub_replay {
	uint32_t last_n, last_ms;
	/* CLOCK_MONOTONIC when kite_subscribe() added the pattern: a stream
	 * that began later is one we were there for (ki_sub_attach). */
	uint64_t made_ns;
};

/* A kite_set_channel_ring() setting. */
struct ring_rule {
	char pattern[KITE_CHANNEL_MAX + 1];
	uint32_t slots;
};

struct queued_event {
	kite_event ev;
	char channel[KITE_CHANNEL_MAX + 1];
	char text[TEXT_MAX];
};

struct kite {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* handshake and subscription acknowledgements */
	pthread_t thread;
	int thread_started;
	int stop_fd;   /* eventfd: tells the control thread to stop */
	int epoll_fd;  /* control thread's */
	int listen_fd;
	int wake_fd;   /* datagram socket publishers write to; kite_fd() */
	int wake_tx;   /* its other end, which W_WAKE hands to publishers */
	int waiter_fd;
	struct waiter_page *waiter;
	uint64_t id;
	char bus[BUS_MAX + 1];
	kite_options opt;
	uid_t euid;
	int light_publish; /* ki_barrier_setup() worked: no per-message fence */
	int biased;        /* ki_barrier_private_setup() worked: see ki_app_enter() */
	int can_membarrier; /* ki_barrier_setup() worked */
	int strict;         /* we membarrier() before sleeping (needs_fence 0) */
	unsigned quiet_arms; /* arms in a row after few messages */
	uint64_t since_arm;  /* messages delivered since the last arm */
	uint32_t streak;     /* kite_recv calls in a row that found one at once */
	_Atomic int app_active, ctl_wants;
	_Atomic int app_waiting; /* application threads blocked in kite_lock() */

	unsigned fork_gen; /* ki_fork_gen when opened: a child's copy differs */
	/* ki_monotonic_clock_id() once: a process with our control thread
	 * cannot move to another time namespace (setns wants one thread). */
	uint64_t clock_id;
	int registered;    /* in fork.c's list of live handles */
	int closing;       /* kite_close() is flushing its goodbyes */
	uint64_t listen_paused_ns; /* the listener is watched again then */
	size_t q_large_total; /* large-message notices queued, all peers */
	struct fd_share **fd_shares; /* per ring queued for any peer: one copy */
	struct peer *peers;
	struct relink *relinks;
	uint64_t next_ring_id;
	uint64_t next_token;
	uint64_t pending_acks; /* W_SUB_ACKs kite_subscribe still waits for */

	char **patterns;
	size_t npatterns;
	uint64_t *pattern_gen; /* when each of patterns was subscribed */
	struct sub_replay *pattern_replay; /* what each asked to replay */
	uint64_t sub_gen;      /* counts kite_subscribe() calls */
	struct allow_rule *rules;
	size_t nrules;

	struct pub_ring **pub_hash; /* channel -> ring */
	size_t pub_hash_size;
	size_t npub;
	struct pub_ring *last_pub; /* the hot path's one-entry cache */
	struct stamp_clock stamp;  /* publish timestamps (stamp.h) */
	struct ring_rule *ring_rules; /* kite_set_channel_ring(), oldest first */
	size_t nring_rules;
	size_t ndormant;           /* rings released after an idle spell */
	int heads_fd;              /* stream heads page (-1 until needed) */
	_Atomic uint64_t *heads;
	uint32_t nheads;
	uint64_t idle_sweep_ns;    /* the next look for idle rings */

	struct sub_ring **subs;
	size_t nsubs, subs_cap;
	size_t rr; /* round-robin start for fairness among rings */
	int retired; /* some subs are marked unsubscribed */
	char **reliable; /* those of patterns subscribed reliable */
	size_t nreliable;
	int positions_fd;   /* our positions page (-1 until a reliable ring) */
	_Atomic uint64_t *positions;
	uint8_t *pos_used;  /* POS_SLOTS flags: slot taken */
	uint32_t pos_next;  /* where the search for a free slot starts */

	struct queued_event events[EVENT_QUEUE];
	size_t ev_head, ev_count;
	struct queued_event current; /* the event kite_recv last returned */

	uint8_t *msg_buf; /* inline or pool payload copy (ki_ring_read_max) */
	size_t msg_buf_size;
	size_t msg_buf_want; /* set by the control thread, grown by kite_recv */
	void *large_map;  /* large message kite_recv last returned */
	struct kite_origin origin; /* the origin kite_recv last returned */
	size_t large_len;

	kite_stats stats;
	struct ki_lan *lan; /* NULL: not on the LAN (lan.c) */
	/* Answers to observers of other users we may still give now
	 * (introspect.c), and when that was last topped up. */
	uint32_t info_tokens;
	uint64_t info_refill_ns;
};

/* handle.c: kite_lock() is the plain mutex. ki_app_enter() gives the
 * application's thread (kite_publish, kite_recv) exclusive use of the state
 * without a locked instruction unless the control thread is asking for it;
 * it returns what ki_app_exit() needs. ki_control_enter() takes the state from
 * the control thread's side. */
void kite_lock(kite *k);
void kite_unlock(kite *k);
int ki_app_enter(kite *k);
void ki_app_exit(kite *k, int locked);
void ki_control_enter(kite *k);
void ki_control_exit(kite *k);
/* Between two pieces of work: if an application thread waits for the
 * state, let it have it first. */
void ki_control_yield(kite *k);

/* fork.c: bumped in every child; a handle opened under another value is a
 * copy inherited through fork() and may only be closed. */
extern _Atomic unsigned ki_fork_gen;
void ki_fork_watch(void);
/* Live handles, whose locks are held around every fork(). */
int ki_fork_register(kite *k);
void ki_fork_unregister(kite *k);
static inline int ki_forked(const kite *k)
{
	return k->fork_gen != atomic_load_explicit(&ki_fork_gen, memory_order_relaxed);
}

/* What every call taking a pattern checks first: the arguments, a handle
 * used in a fork child, the pattern's syntax. 0 or the error to return. */
static inline int ki_pattern_call_check(const kite *k, const char *pattern)
{
	if (!k || !pattern)
		return -EINVAL;
	if (ki_forked(k))
		return -ECHILD;
	return kite_pattern_valid(pattern);
}

/* events.c: queue an event (caller holds the lock); text may be NULL. */
void ki_event_push(kite *k, enum kite_event_type type, const char *channel,
		uint64_t publisher, pid_t pid, uid_t uid, gid_t gid,
		uint64_t lost, int refused_by_peer, const char *fmt, ...)
	__attribute__((format(printf, 10, 11)));
int ki_event_pop(kite *k, kite_event *ev);
void ki_wake_self(kite *k);
/* Wake whoever reads the other end of a wake-up socket; never waits. */
void ki_wake_send(int fd);

/* policy.c: 1 if the peer may take part in channel; else 0 and a reason
 * (why NULL: no reason wanted, none formatted). */
int ki_policy_allows(const kite *k, const struct peer *p, const char *channel,
		  char *why, size_t why_len);
/* 1 if some rule (or the default) could let the peer take part in a
 * channel that pattern matches (">": any channel). */
int ki_policy_may_share(const kite *k, const struct peer *p, const char *pattern);
/* The first of the peer's patterns that matches channel (a name it knows). */
const char *ki_peer_pattern_for(const struct peer *p, const char *channel);

/* handle.c: 1 if bus is a valid bus name. */
int ki_bus_valid(const char *bus);

/* peers.c */
struct sockaddr_un;
socklen_t ki_bus_address(const char *bus, uint64_t id, struct sockaddr_un *sa);
int ki_peer_connect_existing(kite *k);
int ki_peer_accept(kite *k);
void ki_peer_handle_hello(kite *k, struct peer *p, const struct wire_msg *m);
void ki_peer_drop(kite *k, struct peer *p);
/* Release a peer's own memory and descriptors, and nothing it shares. */
void ki_peer_free(kite *k, struct peer *p);
struct peer *ki_peer_new(kite *k, int sock, int outgoing, uint64_t id);
/* Connect to @kite/<bus>/<id> without waiting; the socket, or -errno
 * (-EAGAIN: its backlog is full). *owner gets the listener's pid. */
int ki_peer_dial(const kite *k, uint64_t id, pid_t *owner);
/* 1 if the /proc/net/unix entry is a handle's listener @<prefix><id> (prefix
 * "kite/<bus>/"); *id gets its id. */
struct unix_entry;
int ki_bus_listener(const struct unix_entry *e, const char *prefix, size_t prefix_len,
		    uint64_t *id);

/* outq.c: send a record, or queue it (fds duplicated) when the socket has
 * no room: never waits. 0, or -EPIPE once the link cannot send. */
int ki_peer_send(kite *k, struct peer *p, const struct wire_msg *m);
/* The control thread: send what is queued while the socket takes it. */
void ki_outq_flush(kite *k, struct peer *p);
void ki_outq_clear(kite *k, struct peer *p);
/* Stop sending on a link (overflow or error): the peer sees the end of
 * the stream once it has read what was sent; we go on reading. */
void ki_peer_cut(kite *k, struct peer *p);

/* handovers.c: ring hand-overs waiting in an outbound queue, written down
 * where the subscriber can read them should we die before they leave. */
/* Make a handovers page for a link whose hello we believe, and send it
 * (with the stream heads page) before anything but our own hello. */
void ki_ho_offer(kite *k, struct peer *p);
/* A W_RING goes into p's queue: note it (r->ho_slot); it left: clear it. */
void ki_ho_note(kite *k, struct peer *p, struct outrec *r);
void ki_ho_sent(struct peer *p, const struct outrec *r);
/* A W_RING went straight into p's socket: an entry an earlier note left
 * for that ring is moot. */
void ki_ho_left(kite *k, struct peer *p, const struct wire_msg *m);
/* p's stream of r has ended (unsubscribed, or it refused the ring): its entry,
 * if any, goes. */
void ki_ho_forget(struct peer *p, const struct pub_ring *r);
/* A ring p (or the broken link l) asked for but is not sent now (its link
 * is being cut, or its patterns are not in yet): noted all the same, its
 * stream starting at first, should we die before a link hands it over. */
void ki_ho_note_unsent(kite *k, struct peer *p, const struct pub_ring *r, uint64_t first);
void ki_ho_note_relink(kite *k, struct relink *l, const struct pub_ring *r, uint64_t first);
/* Who the peer of a broken link was, for the policy. */
void ki_relink_who(const struct relink *l, struct peer *who);
/* A peer's W_HANDOVERS: checked and mapped; -1 if it breaks the protocol. */
int ki_ho_receive(struct peer *p, const struct wire_msg *m);
/* The publisher who (pid, uid, groups: the kernel's word) is gone: every
 * hand-over it still had queued for us, of a stream we have no record of,
 * on a channel we asked for and the policy lets it send, is reported:
 * KITE_PUBLISHER_NEW, KITE_LOSS of what it held, KITE_PUBLISHER_GONE.
 * The view is unmapped. */
void ki_ho_report(kite *k, struct ho_view *v, const struct peer *who);
void ki_ho_unmap(struct ho_view *v);
/* Unmap a handovers page we made (*page NULL after). */
void ki_ho_out_free(uint8_t **page);

/* links.c: a link has ended (EOF read, protocol error or cut): drop it, and
 * decide whether its peer is gone (closed, exited) or will be re-linked. */
void ki_link_lost(kite *k, struct peer *p);
/* Run due re-link attempts and drop links whose hello is overdue; ms until
 * the next thing is due, or -1. */
int ki_relink_run(kite *k);
/* Is the peer's process still there? */
int ki_process_alive(int pidfd, pid_t pid);
/* A re-made link said hello: it inherits the subscriptions from before the
 * break until its W_SYNC. */
void ki_relink_back(kite *k, struct peer *p);
/* Its offers after a re-link are all in: rings not re-offered are over. */
void ki_relink_offers_done(kite *k, struct peer *p);
/* A KITE_REFUSED event, at most PEER_REFUSALS_REPORTED per peer. */
void ki_refusal_event(kite *k, struct peer *p, const char *channel, int by_peer,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void ki_peer_send_subscriptions(kite *k, struct peer *p);
void ki_peer_send_wake(kite *k, struct peer *p);
int ki_peer_handle_wake(kite *k, struct peer *p, const struct wire_msg *m);

/* control.c */
void *ki_control_thread(void *arg);
/* Make the control thread look at its timers again (the idle sweep has a
 * ring to watch); kite_close() writes CONTROL_STOP to the same eventfd. */
void ki_control_kick(kite *k);
#define CONTROL_STOP (1ull << 40)
/* Act on up to budget records the peer sent; -ECONNRESET once its stream
 * has ended (or it broke the protocol), else 0. */
int ki_control_drain(kite *k, struct peer *p, unsigned budget);

/* introspect.c: answer a W_INFO_REQ with what this peer may see (all to
 * our uid and root; else only channels the policy lets it on). */
void ki_info_answer(kite *k, struct peer *p, uint64_t token);
/* Observers of other users get INFO_OTHERS_PER_S answers a second in all
 * (a burst of as many): each costs us the state's lock, which publishing
 * shares, and nothing may make us spend it in a loop. Our uid and root
 * are not counted. 1 if this peer may have its answer now. */
#define INFO_OTHERS_PER_S 50
int ki_info_may_answer(kite *k, const struct peer *p);
/* A process's command line as the kernel shows it (/proc/PID/cmdline; pid
 * 0: our own), arguments joined by spaces, cut to size ("" if unreadable). */
void ki_read_cmdline(pid_t pid, char *out, size_t size);

/* publish.c: offer our rings to a peer that added pattern (NULL: for any of
 * its patterns); stop feeding it rings (removed: only those that pattern,
 * now unsubscribed, matched and no other does; NULL: all). */
void ki_pub_offer_rings(kite *k, struct peer *p, const char *pattern);
void ki_pub_reliable_pattern(kite *k, struct peer *p, const char *pattern);
void ki_pub_forget_peer(kite *k, struct peer *p, const char *removed);
/* It subscribed pattern afresh: matching streams not also asked for by a
 * pattern it held throughout start anew. */
void ki_pub_fresh_pattern(kite *k, struct peer *p, const char *pattern);
void ki_pub_ring_free(struct pub_ring *r);
/* The stream heads page, made once per handle; 0 or -errno. */
int ki_pub_make_heads(kite *k);
/* The ring we publish channel into, or NULL. */
struct pub_ring *ki_pub_find(kite *k, const char *channel);
/* The ring to publish on a channel (made, or made again after an idle
 * release, as needed); NULL and *err (KITE_EBADNAME, -errno) if there is
 * none. With the state held. */
struct pub_ring *ki_pub_ring_for(kite *k, const char *channel, int *err);
/* Where a message of len bytes (meta_len of them an origin block) goes in
 * r: a record of its own, the ring's pool, or a memfd of its own. */
enum pub_place { PUB_INLINE, PUB_POOL, PUB_MEMFD };
enum pub_place ki_pub_place(const struct pub_ring *r, size_t len, size_t meta_len);
/* With reliable subscribers on r, wait for room for a message of len bytes
 * placed so (ki_rel_wait: the record, and the pool floor for PUB_POOL);
 * 0 at once without them. */
int ki_pub_make_room(kite *k, struct pub_ring *r, enum pub_place place, size_t len,
		     int *locked);
/* A record of r was committed as seq, stamped timestamp_ns: the stream
 * head, counters, the LAN copy (same stamp), sleeping subscribers. With
 * the state held. */
void ki_pub_committed(kite *k, struct pub_ring *r, uint64_t seq, uint64_t timestamp_ns,
		      const void *data, size_t len);
/* The subscriber id is gone: its streams start afresh if it ever returns. */
void ki_pub_forget_marks(kite *k, uint64_t peer_id);
/* Its patterns are all in (its W_SYNC): streams it no longer asks for end. */
void ki_pub_prune_marks(kite *k, struct peer *p);
void ki_pub_drop_sub(kite *k, struct peer *p, const char *channel);
/* Release the rings of channels idle for opt.idle_ms; ms until the next
 * look, or -1. */
int ki_pub_sweep_idle(kite *k);
/* channel_ring.c: slots of a new ring for channel (kite_set_channel_ring,
 * else opt.ring_slots). */
uint32_t ki_pub_ring_slots(const kite *k, const char *channel);

/* reliable.c (publisher side): a ring handed to a peer that asked for it
 * reliably gets an entry; entries leave with the peer's subscription. */
void ki_rel_add(struct pub_ring *r, struct peer *p);
int ki_rel_holds(const struct pub_ring *r, const struct peer *p);
void ki_rel_remove(struct pub_ring *r, const struct peer *p);
void ki_rel_clear(struct pub_ring *r);
/* A subscriber's W_RELIABLE: its positions page and its slot for a ring. */
int ki_rel_handle(kite *k, struct peer *p, const struct wire_msg *m);
/* Room for a record of body bytes (large: a memfd message's) without
 * overrunning a reliable subscriber, which must also have reached ring
 * position `also` (a pool payload's floor, or 0): 0, or -EAGAIN once
 * opt.reliable_wait_ms has passed. May let go of the state while it waits
 * (r stays valid). */
int ki_rel_wait(kite *k, struct pub_ring *r, uint64_t body, int large, uint64_t also,
		int *locked);
/* The record just written was large and ended at w.pos. */
static inline void ki_rel_large_written(struct pub_ring *r)
{
	r->large_end[r->nlarge_written++ % RELIABLE_LARGE_MAX] = r->w.pos;
}

/* positions.c (subscriber side): our read position in reliable rings. */
int ki_pos_is_reliable(const kite *k, const char *channel);
/* Give s a slot (if it is reliable) and tell its publisher. */
void ki_pos_attach(kite *k, struct peer *p, struct sub_ring *s);
void ki_pos_attach_matching(kite *k, const char *pattern);
void ki_pos_release(kite *k, struct sub_ring *s);
void ki_pos_free(kite *k);
static inline void ki_pos_store(kite *k, const struct sub_ring *s)
{
	if (s->pos_slot1)
		atomic_store_explicit(&k->positions[s->pos_slot1 - 1], s->r.pos,
				      memory_order_release);
}

/* subscribe.c */
int ki_sub_attach(kite *k, struct peer *p, const struct wire_msg *m);
/* A stream of the gone publisher who whose hand-over never reached us:
 * unless we know it, a record that says NEW, first..head lost, GONE. */
void ki_sub_adopt_lost(kite *k, const struct peer *who, const char *channel,
		       uint64_t ring_id, uint64_t first, uint64_t head);
void ki_sub_store_large(kite *k, struct peer *p, const struct wire_msg *m);
/* gone: the publisher closed or exited (rings drain, then GONE); else its
 * link broke and its rings are still read until it is back. */
void ki_sub_detach_peer(kite *k, struct peer *p, int gone);
void ki_sub_gone_by_id(kite *k, uint64_t publisher);
void ki_sub_ring_end(kite *k, struct peer *p, const struct wire_msg *m);
void ki_sub_ring_free(struct sub_ring *s);
/* Unmap its ring and close its large-message fds; the record stays. */
void ki_sub_ring_unmap(struct sub_ring *s);
/* The next ring of a stream takes over from seq `from`, the first its
 * predecessor did not hold: a later start is a gap (KITE_LOSS), an earlier
 * one (a liar's) is skipped, never delivered twice. */
void ki_sub_join(struct sub_ring *s, uint64_t from);
/* A released stream's heads page: unmap it; the stream's last seq as its
 * publisher last wrote it there (0: no page). */
void ki_sub_heads_unmap(struct sub_ring *s);
uint64_t ki_sub_stream_head(const struct sub_ring *s);
/* The next ring of s's stream (its publisher released s's), or NULL. */
struct sub_ring *ki_sub_successor(kite *k, const struct sub_ring *s);
int ki_sub_matches(const kite *k, const char *channel);

/* barrier.c: register this process for expedited global membarrier (1 if
 * it worked: publishers may then skip their per-message fence), and issue
 * the heavy side (1 if it was done). */
int ki_barrier_setup(void);
int ki_barrier_heavy(void);
int ki_barrier_private_setup(void);
void ki_barrier_private(void);

/* Time. */
uint64_t ki_realtime_ns(void);
uint64_t ki_monotonic_ns(void);
/* Which CLOCK_MONOTONIC ki_monotonic_ns() reads (its time namespace), 0:
 * unknown (no /proc, or a kernel without time namespaces). */
uint64_t ki_monotonic_clock_id(void);
/* A CLOCK_MONOTONIC deadline ms from now, for pthread_cond_timedwait. */
struct timespec;
void ki_deadline_after_ms(struct timespec *ts, uint32_t ms);

/* 1 if some channel name matches both patterns. */
int ki_patterns_overlap(const char *a, const char *b);

/* String lists (patterns). */
int ki_strlist_find(char *const *list, size_t n, const char *s);
int ki_strlist_add(char ***list, size_t *n, const char *s);
int ki_strlist_remove(char ***list, size_t *n, const char *s);
void ki_strlist_free(char ***list, size_t *n);
int ki_strlist_any_match(char *const *list, size_t n, const char *channel);


#endif
