/* Internal: the handle and what hangs off it. One mutex (k->lock) guards
 * everything below that both the caller's thread and the control thread
 * touch; the hot paths take it once per call, uncontended. */
#ifndef KITE_INTERNAL_H
#define KITE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "kite.h"
#include "ring.h"
#include "wire.h"

#define BUS_MAX 64
#define MAX_PEER_GROUPS 64
#define LARGE_KEEP 64 /* large-message fds a subscriber keeps per ring */
#define EVENT_QUEUE 256
#define TEXT_MAX 320
#define SEND_TIMEOUT_MS 500
#define PEER_PATTERNS_MAX 1024 /* subscriptions one peer may hold with us */
#define PEER_REFUSALS_REPORTED 8 /* refusal events per peer, then one summary */

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

struct peer {
	int sock;
	int outgoing;     /* we connected (1) or accepted (0) */
	int hello;        /* its W_HELLO arrived */
	int synced;       /* its W_SYNC arrived */
	int awaited;      /* kite_open waits for this link's W_SYNC */
	uint64_t acks_pending; /* our W_SUBs it has not acknowledged */
	unsigned refusals;     /* refusal events about this peer so far */
	int wake_sent;         /* we sent it our W_WAKE */
	int closing;
	uint64_t id;      /* its publisher id (from its name, then W_HELLO) */
	pid_t pid;
	uid_t uid;
	gid_t gid;
	gid_t groups[MAX_PEER_GROUPS];
	int ngroups;
	char **patterns;  /* its subscriptions */
	size_t npatterns;
	int eventfd;      /* to wake it (from its W_WAKE; -1 until then) */
	struct waiter_page *waiter; /* NULL until its W_WAKE */
	struct peer *next;
};

/* A ring we publish into. */
struct pub_ring {
	char channel[KITE_CHANNEL_MAX + 1];
	uint64_t ring_id;
	int fd;
	size_t bytes;
	struct ring_writer w;
	struct peer **subs; /* peers that hold this ring */
	size_t nsubs, cap;
	uint64_t next_large_id;
	struct pub_ring *hash_next;
};

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
	struct ring_reader r;
	struct large_fd large[LARGE_KEEP];
	int nlarge;
	int gone;
	int unsubscribed; /* freed by the next kite_recv() */
};

struct allow_rule {
	char pattern[KITE_CHANNEL_MAX + 1];
	int is_gid;
	unsigned id;
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
	int wake_fd;   /* eventfd publishers write; kite_fd() */
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
	_Atomic int app_active, ctl_wants;

	struct peer *peers;
	uint64_t next_ring_id;
	uint64_t next_token;
	uint64_t pending_acks; /* W_SUB_ACKs kite_subscribe still waits for */

	char **patterns;
	size_t npatterns;
	struct allow_rule *rules;
	size_t nrules;

	struct pub_ring **pub_hash; /* channel -> ring */
	size_t pub_hash_size;
	size_t npub;
	struct pub_ring *last_pub; /* the hot path's one-entry cache */

	struct sub_ring **subs;
	size_t nsubs, subs_cap;
	size_t rr; /* round-robin start for fairness among rings */
	int retired; /* some subs are marked unsubscribed */

	struct queued_event events[EVENT_QUEUE];
	size_t ev_head, ev_count;
	struct queued_event current; /* the event kite_recv last returned */

	uint8_t *msg_buf; /* inline payload copy; the largest slot we read */
	size_t msg_buf_size;
	size_t msg_buf_want; /* set by the control thread, grown by kite_recv */
	void *large_map;  /* large message kite_recv last returned */
	size_t large_len;

	kite_stats stats;
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

/* events.c: queue an event (caller holds the lock); text may be NULL. */
void ki_event_push(kite *k, enum kite_event_type type, const char *channel,
		uint64_t publisher, pid_t pid, uid_t uid, gid_t gid,
		uint64_t lost, int refused_by_peer, const char *fmt, ...)
	__attribute__((format(printf, 10, 11)));
int ki_event_pop(kite *k, kite_event *ev);
void ki_wake_self(kite *k);

/* policy.c: 1 if the peer may take part in channel; else 0 and a reason. */
int ki_policy_allows(const kite *k, const struct peer *p, const char *channel,
		  char *why, size_t why_len);
/* 1 if some rule (or the default) lets the peer take part in any channel. */
int ki_policy_trusted(const kite *k, const struct peer *p);

/* peers.c */
struct sockaddr_un;
socklen_t ki_bus_address(const char *bus, uint64_t id, struct sockaddr_un *sa);
int ki_peer_connect_existing(kite *k);
int ki_peer_accept(kite *k);
void ki_peer_handle_hello(kite *k, struct peer *p, const struct wire_msg *m);
void ki_peer_drop(kite *k, struct peer *p);
int ki_peer_send(kite *k, struct peer *p, const struct wire_msg *m);
/* For messages a peer may do without (refusals): never waits. */
void ki_peer_send_advisory(kite *k, struct peer *p, const struct wire_msg *m);
/* A KITE_REFUSED event, at most PEER_REFUSALS_REPORTED per peer. */
void ki_refusal_event(kite *k, struct peer *p, const char *channel, int by_peer,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void ki_peer_send_subscriptions(kite *k, struct peer *p);
void ki_peer_send_wake(kite *k, struct peer *p);
int ki_peer_handle_wake(kite *k, struct peer *p, const struct wire_msg *m);

/* control.c */
void *ki_control_thread(void *arg);
int ki_control_drain(kite *k, struct peer *p);

/* publish.c: offer our rings to a peer whose subscriptions changed. */
void ki_pub_offer_rings(kite *k, struct peer *p);
void ki_pub_forget_peer(kite *k, struct peer *p, int only_unmatched);
void ki_pub_ring_free(struct pub_ring *r);
void ki_pub_drop_sub(kite *k, struct peer *p, const char *channel);

/* subscribe.c */
int ki_sub_attach(kite *k, struct peer *p, const struct wire_msg *m);
void ki_sub_store_large(kite *k, struct peer *p, const struct wire_msg *m);
void ki_sub_detach_peer(kite *k, struct peer *p);
void ki_sub_ring_end(kite *k, struct peer *p, uint64_t ring_id);
void ki_sub_ring_free(struct sub_ring *s);
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
/* A CLOCK_MONOTONIC deadline ms from now, for pthread_cond_timedwait. */
struct timespec;
void ki_deadline_after_ms(struct timespec *ts, uint32_t ms);

/* String lists (patterns). */
int ki_strlist_add(char ***list, size_t *n, const char *s);
int ki_strlist_remove(char ***list, size_t *n, const char *s);
void ki_strlist_free(char ***list, size_t *n);
int ki_strlist_any_match(char *const *list, size_t n, const char *channel);


#endif
