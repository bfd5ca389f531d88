/* kite.h — the one public header of libkite.
 *
 * kite: brokerless publish/subscribe between the processes of one machine,
 * through shared-memory rings handed over abstract-namespace Unix sockets,
 * with kernel-verified identity on every message.
 *
 * Only what is declared here (and in kite/handoff.h, the `kite serve`
 * worker's side) is API; libkite.so exports nothing else. Every function
 * returns 0 (or a non-negative count) on success and a negative error code
 * on failure: a negated errno value or one of the KITE_E* codes below;
 * kite_strerror() explains either. The library never prints, never exits, never raises a
 * signal (it uses MSG_NOSIGNAL).
 *
 * Threading: a handle may be used by one thread at a time (publish and
 * receive from different threads need the caller's own lock). Each handle
 * runs one internal control thread that answers peers, so a publisher that
 * never calls kite_recv() still serves subscribers. No call ever waits for
 * a peer, however slow, stopped or hostile (kite_open and kite_subscribe
 * wait a bounded time for answers, below; kite_publish waits for a
 * reliable subscriber only as long as the publisher's options allow, see
 * KITE_SUB_RELIABLE). NULL handles and strings are -EINVAL.
 *
 * fork(): a handle belongs to the process that opened it. In a child, every
 * call on an inherited handle returns -ECHILD, and kite_close() releases
 * only the child's copy, leaving the parent's links and rings untouched.
 *
 * Compatibility: the soname is libkite.so.0 for all of 0.x. Within 0.x the
 * API may still change (the CHANGELOG says how); from 1.0 the soname changes
 * only with an incompatible ABI. Public structs grow only at their end, and
 * only where the library learns the caller's size: kite_options carries
 * reserved fields (zero them: `kite_options o = {0};`) that later versions
 * turn into options, so a program built against 0.x keeps working. Output
 * structs (kite_event, kite_msg, kite_stats) are filled by the library for
 * the version the program was built against: new fields are added only
 * through new calls or a size-carrying variant, never by growing them
 * (from 1.0 on: 0.x grew kite_msg once, for kite_msg.origin; see CHANGELOG).
 */
#ifndef KITE_H
#define KITE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KITE_VERSION_MAJOR 0
#define KITE_VERSION_MINOR 1
#define KITE_VERSION_PATCH 0
#define KITE_VERSION "0.1.0"

/* Marks the library's exported functions (everything else is hidden). */
#if defined(__GNUC__)
#define KITE_API __attribute__((visibility("default")))
#else
#define KITE_API
#endif

/* Longest channel name or pattern, in bytes, without the terminating NUL.
 * A name is 1 to 32 dot-separated tokens of [A-Za-z0-9_-]; a pattern may
 * also use `*` (exactly one token) and, as its last token only, `>` (one or
 * more tokens). */
#define KITE_CHANNEL_MAX 200

/* Most patterns one handle may subscribe to at once; kite_subscribe()
 * returns -ENOSPC beyond. */
#define KITE_PATTERNS_MAX 4096

/* Largest message payload, in bytes (4 GiB - 1). With C = ring_slots *
 * slot_size: messages up to max(C / 8, slot_size) - 32 bytes go inline in
 * the ring; larger ones up to a quarter of the ring's pool (4 * C, at most
 * 128 MiB; 2 MiB by default; rings of 256 MiB or more have no pool) go in
 * the pool; beyond that, each travels in a
 * sealed memfd of its own (a subscriber keeps at most 64 of those per ring
 * not yet read, and reports older ones lost). See docs/channels.md. */
#define KITE_MSG_MAX 0xffffffffull

/* Error codes beyond errno. Always negative. Where errno has a fitting
 * code the library returns that instead: -EAGAIN (kite_recv with timeout 0:
 * nothing ready), -ETIMEDOUT (kite_recv: nothing arrived in time). */
enum kite_error {
	KITE_EBADNAME = -1000,  /* channel name or pattern is malformed */
	KITE_ETOOBIG = -1001,   /* payload larger than KITE_MSG_MAX */
	KITE_ENOTSUB = -1005,   /* unsubscribe of a pattern never subscribed */
	KITE_ENOCLAIM = -1006,  /* kite_commit/kite_abort with no open claim */
	KITE_ENOSODIUM = -1007  /* a LAN key file given, libsodium not installed */
};

/* A handle: one participant on the machine's kite bus. */
typedef struct kite kite;

/* Options for kite_open(); zero fields take the defaults. */
typedef struct kite_options {
	/* A publisher ring holds ring_slots * slot_size bytes of records
	 * (ring_slots a power of two, default 1024), and a pool of 4 times
	 * that (at most 128 MiB) for messages too large to go inline. A
	 * subscriber more than about that many bytes of records (or of pooled
	 * messages) behind is overrun; records are 24 bytes + payload
	 * rounded up to 8. -EINVAL if the ring's memfd (4 KiB header,
	 * records, pool) would exceed 1 GiB, the most a subscriber maps. */
	uint32_t ring_slots;
	/* Multiple of 64, default 2048: payloads of up to slot_size - 32
	 * bytes always go inline, however few the slots (see KITE_MSG_MAX). */
	uint32_t slot_size;
	/* Microseconds kite_recv() spins before it sleeps, yielding the CPU
	 * now and then (default 50; UINT32_MAX: never spin, 0 = default). */
	uint32_t spin_us;
	/* Milliseconds kite_open() waits for existing peers to answer their
	 * handshake (default 1000). */
	uint32_t handshake_ms;
	/* Bus name (1-64 of [A-Za-z0-9_.-]): handles only see peers on the
	 * same bus. NULL or "" means $KITE_BUS, else "default"; tests use
	 * private buses so they never meet. */
	const char *bus;
	/* Milliseconds a channel this handle publishes on may stay silent
	 * before its ring is released (its memory and a descriptor here and in
	 * each subscriber) until its next message, which continues the same
	 * stream: same sequence numbers, no event for subscribers. 0 = default
	 * (10000); UINT32_MAX = never release. */
	uint32_t idle_ms;
	/* Reliable subscribers (kite_subscribe_opts, KITE_SUB_RELIABLE) of a
	 * ring: milliseconds kite_publish() waits for room before it returns
	 * -EAGAIN, when publishing would overrun one. 0: -EAGAIN at once
	 * (the default); UINT32_MAX: wait as long as it takes (as long as the
	 * slowest keeps reading; one that stops is dropped after the deadline
	 * below). The wait spins for 50 us, then naps (1 ms at most between
	 * looks). */
	uint32_t reliable_wait_ms;
	/* Join the LAN (docs/channels.md, "LAN channels"): an interface name
	 * or "auto", then optionally ",group=A.B.C.D/N" (within 239.0.0.0/8,
	 * N 24..32; default 239.255.75.0/28), ",port=P" (7475), ",ttl=T" (1),
	 * ",reorder_ms=R" (20), ",max_msg=BYTES" (16 MiB, the largest message
	 * reassembled), ",pack_us=U" (100: in a burst, small messages share
	 * datagrams for at most U microseconds; a message after an idle
	 * spell goes at once; 0: never pack). NULL or "" means $KITE_LAN, else
	 * no LAN. Messages this
	 * handle publishes then also go out by UDP multicast, and messages
	 * from other hosts' LAN handles on its subscriptions arrive through
	 * kite_recv() like local ones (see kite_msg_lan_origin). */
	const char *lan;
	/* Milliseconds a reliable subscriber may hold this publisher up
	 * without reading (stopped, hung, or gone without a word) before it
	 * is dropped to radio on that ring: overrun, and told its loss
	 * exactly (KITE_LOSS). The time starts afresh whenever it moves. 0 =
	 * default (2000), at most 60000 (-EINVAL beyond). */
	uint32_t reliable_deadline_ms;
	/* Reserved for options of later versions: leave zero. kite_open()
	 * returns -EINVAL if any is set, so a program that asks for an option
	 * this library does not have is told instead of ignored. */
	uint32_t reserved32;
	uint64_t reserved[3];
} kite_options;

/* What kite_recv() delivered. */
enum kite_event_type {
	KITE_MESSAGE = 1,    /* a message: see kite_event.msg */
	KITE_LOSS,           /* msg.channel/publisher lost `lost` messages */
	KITE_PUBLISHER_GONE, /* a publisher closed its handle or its process
	                        exited; its ring for msg.channel is drained
	                        (a link that merely broke is made again and
	                        reports no GONE) */
	KITE_REFUSED,        /* a peer was refused, by us or by it: see text */
	KITE_PUBLISHER_NEW   /* a publisher's stream on a channel attached
	                        (once: a ring re-made after an idle release,
	                        see idle_ms, carries the same stream on). A
	                        publisher that died before its ring reached
	                        us says NEW, LOSS of what it held, GONE */
};

/* Where a message imported from another messaging system claims to come
 * from (see kite_msg.origin). Every field is what the importing local
 * process (e.g. `kite bridge`) was told by the remote system and relayed:
 * a CLAIM, never an identity the kernel vouched for. The kernel vouches
 * only for the local sender in kite_msg.pid/uid/gid, i.e. the importer.
 * Strings are NUL-terminated; unknown numbers are -1 (pid, uid) or 0. */
struct kite_origin {
	const char *system;    /* the remote system, e.g. "nats" */
	const char *subject;   /* the remote name it arrived on */
	const char *host;      /* the claimed remote sender's host, or "" */
	int64_t pid;           /* its claimed pid, -1 if not told */
	int64_t uid;           /* its claimed uid, -1 if not told */
	uint64_t publisher;    /* its claimed kite publisher id, 0 if not told */
	uint64_t seq;          /* its claimed sequence, 0 if not told */
	const char *headers;   /* the remote message's header block as the
	                          importer received it (NATS: "NATS/1.0\r\n"
	                          then "Key: Value\r\n" lines), "" if none */
	size_t headers_len;    /* bytes in headers, without the NUL */
};

/* Longest encoded origin (its strings included) kite_publish_origin()
 * accepts; KITE_ETOOBIG beyond. */
#define KITE_ORIGIN_MAX 65536

/* One delivered message, or the context of an event. Pointers are valid
 * until the next kite_recv() or kite_close() on the same handle: inline and
 * pooled payloads are copied into the handle's buffer (the pool is reused
 * by its publisher), a memfd message is mapped. */
typedef struct kite_msg {
	const char *channel;   /* NUL-terminated */
	const void *data;      /* payload (NULL for events) */
	size_t len;
	uint64_t publisher;    /* publisher id: random per handle; claimed by
	                          the peer, not vouched for (pid/uid/gid are) */
	uint64_t seq;          /* sequence within (publisher, channel), from 1 */
	uint64_t timestamp_ns; /* CLOCK_REALTIME at publish, nanoseconds:
	                          within 10 us of it, but that a step of the
	                          system clock shows up to 1 ms late; never
	                          below the publisher's previous stamp unless
	                          the clock was set back (docs/channels.md,
	                          "Timestamps") */
	pid_t pid;             /* publisher's pid, uid and gid as the kernel */
	uid_t uid;             /* reported them by SO_PEERCRED on its */
	gid_t gid;             /* control connection. From the LAN: pid as
	                          the sender claims it, uid and gid
	                          (uid_t)-1 and (gid_t)-1: not verified */
	/* NULL for a message published with kite_publish(). Non-NULL when
	 * the local sender above published it with kite_publish_origin():
	 * it relays a remote claim (kite bridge: a NATS message), which the
	 * kernel did not verify. Trust it only as far as you trust the local
	 * sender (pid/uid) that relayed it. */
	const struct kite_origin *origin;
} kite_msg;

typedef struct kite_event {
	enum kite_event_type type;
	kite_msg msg;          /* KITE_MESSAGE, and the context of events */
	uint64_t lost;         /* KITE_LOSS: messages lost from this publisher
	                          on this channel */
	int refused_by_peer;   /* KITE_REFUSED: 1 the peer refused us, 0 we
	                          refused the peer */
	const char *text;      /* KITE_REFUSED / GONE: a human-readable reason */
} kite_event;

/* Counters of one handle since it was opened. */
typedef struct kite_stats {
	uint64_t published;      /* messages this handle published */
	uint64_t received;       /* messages delivered by kite_recv */
	uint64_t lost;           /* messages reported lost (KITE_LOSS sums) */
	uint64_t refused;        /* refusals, either direction */
	uint64_t peers;          /* peers linked now (hello exchanged) */
	uint64_t wakeups_sent;   /* wake-ups sent to sleeping subscribers */
	uint64_t events_dropped; /* events discarded: the event queue was full */
} kite_stats;

/* Open a handle on the machine's bus: listen on an abstract socket
 * @kite/<bus>/..., connect to every peer already there (never waiting for
 * one to accept) and wait, up to opts->handshake_ms in all, for those the
 * channel policy could share a channel with to answer. opts may be NULL. -EINVAL: an
 * option out of range, a bad bus name or a reserved field set. */
KITE_API int kite_open(kite **out, const kite_options *opts);

/* Close a handle: peers are told (their rings from us drain and report
 * KITE_PUBLISHER_GONE) and what is queued for them gets up to 500 ms to
 * leave. NULL is allowed. */
KITE_API void kite_close(kite *k);

/* Publish len bytes on a channel name (no wildcards). Never waits for a
 * radio subscriber; returns the message's sequence number (>= 1) or an error
 * (-EMFILE: no descriptor left for a new channel's ring; -EAGAIN: the
 * channel has a reliable subscriber the message would overrun, and
 * kite_options.reliable_wait_ms passed: nothing was published, try again).
 * On a LAN handle it may wait for room in its own UDP send queue (the local
 * interface, never a peer: multicast has no flow control), 200 ms at most in all per
 * call whatever the message's size, holding the handle meanwhile; what
 * still has no room then is not sent, counted in messages_unsent, and LAN
 * subscribers count it lost. kite_close() waits as long at most.
 * A handle does not receive its own messages; open a second handle to. */
KITE_API int64_t kite_publish(kite *k, const char *channel, const void *data,
		     size_t len);

/* Publish as kite_publish(), relaying where the message came from
 * (for importers such as `kite bridge`): subscribers get origin in
 * kite_msg.origin, a claim vouched for by nobody but this handle's process.
 * origin->system and ->subject must be non-empty, other strings may be
 * NULL (read as ""); -EINVAL otherwise. KITE_ETOOBIG: the encoded origin
 * exceeds KITE_ORIGIN_MAX, or it and the payload exceed KITE_MSG_MAX. */
KITE_API int64_t kite_publish_origin(kite *k, const char *channel, const void *data,
			    size_t len, const struct kite_origin *origin);

/* Zero-copy publish: build a message in place in the channel's ring.
 *
 *     void *p;
 *     int rc = kite_claim(k, "prices.eur", 64, &p);
 *     if (rc == 0) {
 *             n = fill(p, 64);                          // 0..64 bytes
 *             int64_t seq = kite_commit(k, "prices.eur", n);
 *     }
 *
 * kite_claim() reserves the channel's next record (or room in its pool,
 * see Sizes) for up to len bytes and sets *data to where its payload goes (8-aligned, len writable bytes; len
 * 0 is allowed). Nothing is visible to subscribers until kite_commit(),
 * which publishes the first len bytes written there (len at most the
 * claimed length; fewer is fine) as kite_publish() would: the sequence
 * number (returned), the timestamp (taken at commit), the replay index and
 * wake-ups are all settled at commit. kite_abort() gives the claim up:
 * nothing is published and no sequence number is spent. *data is valid
 * until kite_commit, kite_abort or kite_close on the handle; do not read
 * it for anything but what you wrote, nor write it afterwards.
 *
 * Sizes: what goes inline, at most max(capacity / 8, slot_size) - 32
 * bytes (262,112 with default rings), is a record of the ring itself;
 * above that, up to a quarter of the ring's pool (min(4 x capacity,
 * 128 MiB) / 4: 2 MiB by default; none for rings of 256 MiB or more),
 * *data points into the pool and the commit writes the record naming it. The room is taken at claim time:
 * a radio subscriber that far behind loses (and is told) what the claim
 * writes over then, not at commit. -EMSGSIZE above the pool's quarter:
 * such a message needs a memfd of its own, made from a finished copy, so
 * only kite_publish sends it.
 * One open claim per channel per handle: while it is open, kite_claim and
 * kite_publish/kite_publish_origin on that channel return -EBUSY (at once,
 * nothing is published); other channels are unaffected. Threading is as
 * for kite_publish: one thread at a time per handle, and the caller's lock
 * around each call (not around the time a claim stays open): the claim
 * belongs to the handle, not the thread, and may be committed by another.
 * Reliable subscribers (KITE_SUB_RELIABLE) are honoured at claim time:
 * kite_claim waits for room up to reliable_wait_ms and returns -EAGAIN
 * (no claim made) as kite_publish would; a commit never waits.
 * A publisher that dies (or closes its handle) with a claim open publishes
 * nothing of it: subscribers receive every record committed before, whole,
 * then KITE_PUBLISHER_GONE, with no loss reported for the claim.
 * Errors: -EINVAL (NULL k, channel or data; a commit longer than the
 * claim, which stays open), KITE_EBADNAME, -EMSGSIZE, -EBUSY, -EAGAIN,
 * -EMFILE (as kite_publish), -ECHILD (a handle inherited through fork),
 * KITE_ENOCLAIM (commit or abort with no claim open on that channel:
 * never claimed, or already committed or aborted). On a LAN handle the
 * committed message goes out by multicast too, as kite_publish's. */
KITE_API int kite_claim(kite *k, const char *channel, size_t len, void **data);
KITE_API int64_t kite_commit(kite *k, const char *channel, size_t len);
KITE_API int kite_abort(kite *k, const char *channel);

/* Subscribe to a pattern; returns 0, KITE_EBADNAME, -ENOSPC (already
 * KITE_PATTERNS_MAX patterns) or -ENOMEM. It returns once every linked peer
 * the policy could share the pattern with has acknowledged (its matching
 * rings are then attached), or after opts.handshake_ms if one has not.
 * Subscribing twice to the same pattern is a no-op. */
KITE_API int kite_subscribe(kite *k, const char *pattern);

/* Options of one subscription (kite_subscribe_opts). Zero it first
 * (`struct kite_sub_options o = {0};`): reserved fields set make it
 * -EINVAL, so later versions can give them meaning. */
struct kite_sub_options {
	uint32_t flags;      /* KITE_SUB_* bits */
	/* Replay for a late joiner: each ring this subscription attaches
	 * first delivers, before its live messages, the last last_n messages
	 * it still holds (0: no count limit if last_ms is set), keeping
	 * their original sequence numbers; then live ones, with no gap or
	 * duplicate between. last_ms: only those stamped (CLOCK_REALTIME,
	 * kite_msg.timestamp_ns) in the last last_ms milliseconds before the
	 * ring attached (0: no time limit if last_n is set). Both 0: no
	 * replay, live messages only, as kite_subscribe(). What was asked
	 * for but is no longer held (overwritten, released after the
	 * publisher's idle_ms, published before the publisher's current ring
	 * was made, or sent in a memfd of its own beyond the pool: replay
	 * starts after the last such) is simply not delivered, and not
	 * reported lost; from the
	 * first replayed message on, the stream is exact: a record written
	 * over before it is read is KITE_LOSS, as for live ones. A ring holds
	 * about 7/8 of its bytes of records at least; docs/channels.md,
	 * "Replay", has the exact rule. */
	uint32_t last_n;
	uint32_t last_ms;
	uint32_t reserved32;   /* zero */
	uint64_t reserved[4];  /* zero */
};

/* Reliable delivery from local publishers (the default is radio: a
 * publisher never waits, an overrun subscriber is told exactly what it
 * lost). A reliable subscriber's read position in each ring it reads is
 * shared with the publisher (a page it writes and the publisher maps
 * read-only), and kite_publish() on that ring waits for room or returns
 * -EAGAIN (kite_options.reliable_wait_ms) instead of overrunning it: what
 * is published after kite_subscribe_opts() returns is all delivered, as
 * long as the subscriber keeps reading.
 *
 * What a reliable subscriber CAN do to a publisher: slow it down to its
 * own reading pace, and hold it up (kite_publish waiting or -EAGAIN) for
 * at most the publisher's reliable_deadline_ms (default 2 s) at a time
 * when it stops reading (stopped, hung, busy elsewhere, or lying about its
 * position), after which it is dropped to radio on that ring.
 * What it CANNOT do: hold a publisher longer than that deadline; make it
 * read or write outside its own memory, crash or spin (every position it
 * writes is checked against the publisher's own ring, and a value beyond
 * what was written or going backwards counts as no progress); slow down
 * other rings of the same publisher, or radio subscribers (they are
 * overrun as ever). A subscriber that exits or whose link breaks stops
 * holding the publisher at once. A dropped subscriber stays radio on that
 * ring until it subscribes again or its link is made again.
 * Reliable applies to local rings only; LAN messages stay radio. */
#define KITE_SUB_RELIABLE 1u

/* kite_subscribe() with options (NULL o: the same as kite_subscribe).
 * -EINVAL: unknown flags or reserved fields set; -EEXIST: the pattern is
 * already subscribed with other flags (unsubscribe it first). Replay
 * applies to rings the pattern newly attaches: re-subscribing a pattern
 * already held is a no-op, and a channel already read through another
 * pattern is not replayed again. Where several of the handle's patterns
 * with replay match one channel, the largest last_n and the largest
 * last_ms are used, a 0 among them counting as no limit (so one pattern
 * with only last_n and another with only last_ms replay all that is
 * held). */
KITE_API int kite_subscribe_opts(kite *k, const char *pattern,
				 const struct kite_sub_options *o);

/* Remove a subscription; rings that no remaining pattern matches are
 * released. */
KITE_API int kite_unsubscribe(kite *k, const char *pattern);

/* Ring size for channels this handle publishes that match pattern: bytes
 * of records per (channel) ring, instead of ring_slots * slot_size from
 * kite_options. bytes must be a power-of-two multiple of the handle's
 * slot_size, at least 2 slots, at most 2^20 slots and 512 MiB (the most a
 * subscriber maps); 0 removes the pattern's setting. -EINVAL otherwise,
 * KITE_EBADNAME for a bad pattern, -ENOSPC past KITE_RING_RULES_MAX
 * patterns. When several patterns match a channel, the one set last
 * wins. It applies to rings made from now on: a channel's first message,
 * or its next one after an idle release (see idle_ms); a ring in use
 * keeps its size. */
#define KITE_RING_RULES_MAX 256
KITE_API int kite_set_channel_ring(kite *k, const char *pattern, size_t bytes);

/* Allow a uid (or gid) beyond the default (same uid, plus root) to take
 * part in channels that match pattern, in either direction. */
KITE_API int kite_allow_uid(kite *k, const char *pattern, uid_t uid);
KITE_API int kite_allow_gid(kite *k, const char *pattern, gid_t gid);

/* Receive the next message or event. timeout_ms: 0 polls without any
 * system call (-EAGAIN if nothing), -1 waits forever, else waits at most
 * that long (-ETIMEDOUT). Waiting spins briefly (options.spin_us), then
 * sleeps until a publisher wakes it. A signal handler that interrupts the
 * sleep makes it return -EINTR. */
KITE_API int kite_recv(kite *k, kite_event *ev, int timeout_ms);

/* A file descriptor for poll/epoll, readable when kite_recv() may have
 * something. Do not read from, change or close it. An event loop does:
 *     while (kite_recv(k, &ev, 0) == 0) handle(&ev);
 *     if (kite_arm(k) == 0) wait for kite_fd(k) to be readable;
 * kite_arm() asks publishers to wake this handle; it returns 1 (and arms
 * nothing) when something is already there, 0 when armed. */
KITE_API int kite_fd(const kite *k);
KITE_API int kite_arm(kite *k);

/* This handle's publisher id. */
KITE_API uint64_t kite_id(const kite *k);

/* Copy the handle's counters. */
KITE_API void kite_get_stats(const kite *k, kite_stats *out);

/* Where a message or event from the LAN came from, as its frame claims
 * (nothing on the LAN is verified by the kernel). */
typedef struct kite_lan_origin {
	uint64_t host;     /* the sending host's id (machine and network
	                      namespace), stable while it runs */
	char address[48];  /* the sender's IP address, as text */
	uint16_t port;     /* and UDP port */
	pid_t pid;         /* the publisher's pid, as it claims */
} kite_lan_origin;

/* 1 and *out filled if m (from the last kite_recv() on k) came from the
 * LAN; 0 if it came from this machine (pid/uid/gid kernel-verified). */
KITE_API int kite_msg_lan_origin(const kite *k, const kite_msg *m, kite_lan_origin *out);

/* Counters of a handle's LAN side since it was opened. */
typedef struct kite_lan_stats {
	uint64_t datagrams_sent;
	uint64_t messages_unsent;   /* published but not (wholly) sent: the
	                               socket stayed full, or above max_msg */
	uint64_t datagrams_received;
	uint64_t frames_received;   /* frames that passed every check */
	uint64_t frames_rejected;   /* malformed frames, all reasons */
	uint64_t frames_bad_crc;    /* ... of which the CRC32C failed */
	uint64_t kernel_drops;      /* datagrams the kernel dropped, its
	                               receive buffer full (SO_RXQ_OVFL) */
	uint64_t duplicates;        /* messages or fragments heard twice */
	uint64_t late;              /* arrived after being reported lost */
	uint64_t partials_dropped;  /* fragmented messages never completed:
	                               evicted (memory cap), expired, refused
	                               (above max_msg) */
	uint64_t queue_dropped;     /* messages dropped: kite_recv() fell
	                               behind (reported as KITE_LOSS) */
	uint64_t rcvbuf_bytes;      /* receive buffer the kernel granted */
	uint64_t streams;           /* (host, publisher, channel) heard now */
	/* Repair (the `repair` LAN option; appended: older callers pass a
	 * smaller size and do not get them). */
	uint64_t repaired;          /* messages delivered thanks to a resend */
	uint64_t naks_sent;         /* NAKs this handle sent its publishers */
	uint64_t naks_received;     /* valid NAKs for this handle's streams */
	uint64_t resent;            /* messages this handle sent again */
	uint64_t resend_refused;    /* asked for but not resent: no longer
	                               kept, or over the resend rate limit */
	uint64_t frames_unauthenticated; /* with key=FILE: frames rejected
	                               (in frames_rejected too) for a missing
	                               or wrong tag */
	/* Segmentation offload (appended, as above). */
	uint64_t gso_sends;         /* sends of several datagrams that the
	                               kernel cut (UDP_SEGMENT): a large
	                               message's fragments, up to 64 a send */
	uint64_t gso_refused;       /* 1 once the kernel refused such a send:
	                               fragments then go by sendmmsg */
	uint64_t gro_buffers;       /* reads of several datagrams that the
	                               kernel coalesced (UDP_GRO) */
	/* Batch frames (appended, as above). */
	uint64_t batches_received;  /* batch frames (small messages sharing
	                               one header) that passed every check;
	                               counted in frames_received too */
	uint64_t rx_pauses;         /* times the socket was left unread for a
	                               while, kite_recv() behind: the kernel's
	                               receive buffer held the burst */
} kite_lan_stats;

/* Copy the LAN counters (size: sizeof(kite_lan_stats), so the struct may
 * grow). -ENOTCONN if the handle is not on the LAN; -ECHILD on a handle
 * inherited through fork(). */
KITE_API int kite_lan_stats_get(const kite *k, kite_lan_stats *out, size_t size);

/* Validate a channel name (0 or KITE_EBADNAME). */
KITE_API int kite_channel_valid(const char *name);

/* Validate a pattern (0 or KITE_EBADNAME). */
KITE_API int kite_pattern_valid(const char *pattern);

/* 1 if channel name matches pattern, else 0 (both assumed valid). */
KITE_API int kite_pattern_match(const char *pattern, const char *name);

/* A static English description of any code this library returns. */
KITE_API const char *kite_strerror(int code);


#ifdef __cplusplus
}
#endif

#endif /* KITE_H */
