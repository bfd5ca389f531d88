/* LAN channels inside a handle: sending what the handle publishes,
 * receiving what its subscriptions match, and the queue between the
 * control thread (which reads the socket) and kite_recv(). The pieces
 * live beside: lan_frame (wire format), lan_group (channel -> group),
 * lan_stream (per-stream accounting), lan_reasm (fragments), lan_socket
 * (sockets), lan_spec (the option). */
#include "lan.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/udp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "internal.h"
#include "lan_batch.h"
#include "lan_crc32c.h"
#include "lan_frame.h"
#include "lan_group.h"
#include "lan_history.h"
#include "lan_listen.h"
#include "lan_pack.h"
#include "lan_reasm.h"
#include "lan_socket.h"
#include "lan_spec.h"
#include "lan_stream.h"

#define SEND_TIMEOUT_MS 200   /* a call that sends waits at most this, in all,
			       * for room in the socket's send queue */
#define SEND_BATCH 64         /* datagrams per sendmmsg */
#define RECV_BATCH 32         /* datagrams per recvmmsg */
#define RECV_ROUNDS 8         /* recvmmsg calls per wake-up, then yield */
/* A receive slot holds 64 KiB (a UDP_GRO read), but most datagrams fill
 * its first 1.5 KiB: slots 64 KiB apart would put those at the same cache
 * sets, evicting each other. 17 lines more apart, they spread. */
#define RX_SLOT 65536
#define RX_STRIDE (RX_SLOT + 17 * 64)
#define RCVBUF_WANT (8u << 20)
#define STATE_IDLE_MS 50      /* a channel silent this long sends its state */
#define HEARTBEAT_MS 1000     /* ... and again this often */
#define SILENCE_MS 3500       /* a stream unheard this long: publisher gone */
#define STALL_MS 500          /* the control thread back this late: it was stopped */
#define QUEUE_BYTES (64u << 20)
#define QUEUE_ITEMS 65536
/* A burst read at once (up to RECV_ROUNDS x RECV_BATCH buffers of 64 KiB
 * of packed messages: tens of thousands) would overflow the queue before
 * kite_recv() runs, above all when both threads share a CPU. So the
 * socket is not read while the queue holds QUEUE_PAUSE_ITEMS or more: its
 * receive buffer holds the rest (and counts what it drops, SO_RXQ_OVFL).
 * A short queue also keeps its items in the CPU's cache: 4,096 items
 * (1.4 MiB) carried 64-byte messages faster than 32,768 did.
 * kite_recv() resumes reading once the queue is down to
 * QUEUE_RESUME_ITEMS; a pause lasts RX_PAUSE_MAX_MS at most, and then the
 * socket is read for as long again whatever the queue (dropping what does
 * not fit, as before), so that a stalled application does not make its
 * streams fall silent (SILENCE_MS). */
#define QUEUE_PAUSE_ITEMS 4096
#define QUEUE_RESUME_ITEMS 1024
#define RX_PAUSE_MAX_MS 100
#define STREAMS_MAX 65536
/* What all streams may hold behind their gaps together (a stream holds
 * up to its window of messages, each up to max_msg, for reorder_ms or
 * repair_ms: with many streams, hostile or not, that has no bound of its
 * own). Past it, the stream that grew gives up its gaps (lost) and hands
 * on what it holds, and so do others until it is met again. */
#define HELD_BYTES (64u << 20)
#define HELD_MSGS 65536
#define HASH_SIZE 1024
/* Message items kept for reuse once kite_recv() is done with them, so a
 * stream of small messages does not malloc and free each: those made for
 * payloads up to SPARE_PAYLOAD bytes, as many as the queue may hold
 * (SPARE_MAX, 360 bytes each: 23 MiB at most, kept once a burst filled
 * the queue that far, as the allocator would mostly keep them too). One
 * read of a busy socket brings tens of thousands of small messages: a
 * pool of 4,096 made most of them a malloc and a free. */
#define SPARE_PAYLOAD 256
#define SPARE_MAX QUEUE_ITEMS
/* Repair, subscriber side: a gap is first asked for this long after it is
 * seen (reordering usually fills it sooner), then again every retry, one
 * NAK per stream and period, until repair_ms gives it up as lost. */
#define NAK_DELAY_MS 3
#define NAK_RETRY_MS 8
/* A closing publisher under repair answers NAKs until none came for this
 * long (two retries of any subscriber still missing something), and
 * repair_ms at most. */
#define LINGER_QUIET_MS (2 * NAK_RETRY_MS + 10)
/* Repair: the window slots all streams of a handle may grow to together
 * (56 bytes each: 56 MiB), so that many streams, or forged ones, cannot
 * each take LAN_REPAIR_WINDOW. */
#define WIDE_SLOTS (1u << 20)

enum item_type { ITEM_MESSAGE, ITEM_LOSS, ITEM_NEW, ITEM_GONE };

struct entry; /* a stream heard from the LAN */

/* A message's item is allocated with its payload, which follows it (one
 * allocation a message: m.block is the item itself). */
struct item {
	struct item *next;
	enum item_type type;
	struct entry *e;
	struct lan_msg m;
	uint64_t lost;
	uint32_t room; /* payload bytes its allocation holds (0: none) */
};

struct entry {
	struct lan_stream s;
	struct sockaddr_in from;
	uint32_t pid;
	size_t queued;          /* items that point to it */
	struct item *loss_item; /* its loss report still queued, to add to */
	int gone;
	uint64_t nak_due_ns;    /* repair: when to ask for its gap, 0: no gap */
	uint64_t nak_gap_ns;    /* ... the gap (its gap_since_ns) it is for */
	uint64_t first_heard_ns; /* (monotonic) */
	uint64_t closing_ns;    /* repair: said goodbye at, its gaps still
				 * waiting for resends (0: not closing) */
	uint64_t matched_gen;   /* its channel matched the patterns of this
				 * generation (ki_lan.patterns_gen) */
	uint64_t behind_seq;    /* the last sequence whose fragment came after
				 * it was delivered or given up (counted once) */
	struct entry *next;     /* hash chain */
};

/* A channel this handle publishes on the LAN. */
struct pub {
	char channel[KITE_CHANNEL_MAX + 1];
	uint32_t group;        /* its multicast group, host order */
	uint64_t seq;
	uint64_t state_due_ns; /* 0: nothing to announce */
	uint64_t start_ns;     /* its first frame went then (monotonic): every
				* frame carries the stream's age since */
	struct pub *next;
};

struct ki_lan {
	struct lan_spec spec;
	struct lan_keys keys; /* from spec.key_path; n == 0: none */
	struct lan_iface ifc;
	int tx, rx;
	uint64_t host;
	uint32_t pid;       /* ours, read once (getpid() is a system call) */
	uint64_t reorder_ns;
	struct lan_joins joins;
	struct lan_listen listen; /* since when each channel is heard */
	/* The header of the datagram being read (its kernel arrival stamp,
	 * read only for a stream's first frame); NULL outside lan_receive. */
	struct msghdr *rx_hdr;
	struct lan_reasm reasm;
	struct lan_held held; /* what the streams hold behind gaps */
	struct entry *streams[HASH_SIZE];
	size_t nstreams;
	/* The stream heard last, and the subscriptions' generation: a burst
	 * of one stream skips the pattern match and the lookup. */
	struct entry *last_entry;
	uint64_t patterns_gen;
	struct pub *pubs[HASH_SIZE];
	struct item *head, *tail, *current;
	size_t nitems, queue_bytes;
	struct item *spare; /* reusable message items (SPARE_MAX) */
	size_t nspare;
	uint8_t *txbuf, *rxbuf;
	size_t max_datagram;
	/* Datagrams of one length in a row (a fragmented message's, a burst
	 * of equal packed messages, resends) go by UDP_SEGMENT sends, one
	 * buffer through the stack for up to 64, unless gso=0, the kernel
	 * lacks GSO or refused a send once (then sendmmsg, for the handle's
	 * life). */
	int gso;
	/* Packing (lan_pack.h): a burst's small messages share datagrams,
	 * sent when the slots fill, or pack_ns after the first waited
	 * (pack_timer), or at once for a message after an idle spell. */
	struct lan_packer pack;
	/* The batch being filled (batch=1): at batch_at in the packer's
	 * open datagram, for batch_pub, whose next message must be
	 * batch_next to join it; batch_count 0: none open. */
	const struct pub *batch_pub;
	size_t batch_at;
	uint32_t batch_count;
	uint64_t batch_next;
	uint64_t pack_ns, last_publish_ns;
	int pack_timer;
	uint64_t pack_timer_due; /* when it fires, as armed (0: not armed) */
	uint32_t ovfl_seen; /* the kernel's drop counter when last read */
	/* Reading paused for the queue (QUEUE_PAUSE_ITEMS) since this time
	 * (0: reading); no pause before rx_nopause_until_ns. */
	uint64_t rx_paused_ns, rx_nopause_until_ns;
	/* ki_lan_timers' full scan (every stream and channel) is due at this
	 * time: 0 after anything that may need it sooner (a new stream, a gap,
	 * a fragment), so a busy receiver does not scan on every pass. */
	uint64_t timers_due_ns;
	/* ki_lan_timers asked to run again by this time (0: no deadline):
	 * much later, the handle itself was stopped or starved (SIGSTOP, a
	 * paused VM), not its publishers. */
	uint64_t timers_back_by_ns;
	uint64_t dups_gone, late_gone; /* counters of streams freed */
	/* Sends give up waiting for queue room at this time: one budget of
	 * SEND_TIMEOUT_MS per call into the LAN side (a 16 MiB message is
	 * ~12,000 datagrams; a per-datagram timeout would not bound it). */
	uint64_t send_until_ns;
	struct lan_history hist; /* repair: what we sent, to resend */
	size_t wide_slots;       /* repair: window slots streams may still take */
	kite_lan_stats st;
};

/* A frame rejected with r (< 0, or >= 0 for a valid frame that is not
 * what this socket takes): counted under every heading it falls in. */
static void count_reject(struct ki_lan *l, int r)
{
	l->st.frames_rejected++;
	if (r == -LAN_REJECT_CRC)
		l->st.frames_bad_crc++;
	if (r == -LAN_REJECT_AUTH)
		l->st.frames_unauthenticated++;
}

/* Start the send budget of one call into the LAN side: it runs from the
 * first wait for room (no clock read for the calls that never wait, which
 * is nearly all of them). */
#define SEND_BUDGET_UNSTARTED UINT64_MAX
static void send_budget_start(struct ki_lan *l)
{
	l->send_until_ns = SEND_BUDGET_UNSTARTED;
}

/* Sends made by the handle's own timers never wait: they hold the handle,
 * and a kite_publish() waiting for it would spend its budget twice. A
 * state frame not sent goes with the next heartbeat; packed messages not
 * sent are counted unsent, as after a publisher's own timeout. */
static void send_budget_none(struct ki_lan *l)
{
	l->send_until_ns = 0;
}

static uint32_t hash_str(const char *s) { return ki_crc32c(0, s, strlen(s)); }

/* This host: its machine id and its network namespace (test "hosts" are
 * namespaces of one machine). */
static uint64_t host_id(void)
{
	char mid[64] = "";
	int fd = open("/etc/machine-id", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, mid, sizeof mid - 1);
		mid[n > 0 ? n : 0] = 0;
		close(fd);
	}
	uint64_t ns = 0;
	struct stat st;
	if (stat("/proc/self/ns/net", &st) == 0)
		ns = (uint64_t)st.st_ino;
	uint64_t id = 0;
	if (!mid[0] && getrandom(&id, sizeof id, 0) == sizeof id)
		return id | 1;
	return (uint64_t)ki_crc32c(0, mid, strlen(mid)) << 32 | ki_crc32c(0, &ns, sizeof ns);
}

static void partial_discarded(void *ctx, const struct lan_reasm_key *key, uint64_t now);

int ki_lan_open(kite *k, const char *text)
{
	if (!text || !*text)
		text = getenv("KITE_LAN");
	if (!text || !*text)
		return 0;
	struct ki_lan *l = calloc(1, sizeof *l);
	if (!l)
		return -ENOMEM;
	l->tx = l->rx = l->pack_timer = -1;
	k->lan = l;
	char why[200];
	int rc = ki_lan_spec_parse(text, &l->spec, why, sizeof why);
	if (!rc && l->spec.key_path[0])
		rc = ki_lan_keys_load(l->spec.key_path, &l->keys, why, sizeof why);
	if (!rc)
		rc = ki_lan_iface_resolve(&l->spec, &l->ifc, why, sizeof why);
	if (rc)
		return rc;
	l->host = host_id();
	l->pid = (uint32_t)getpid();
	/* With repair a gap waits for its resend; without, for reordering. */
	l->reorder_ns = (uint64_t)(l->spec.repair ? l->spec.repair_ms : l->spec.reorder_ms) * 1000000u;
	l->wide_slots = WIDE_SLOTS;
	l->max_datagram = l->ifc.mtu - 28; /* IPv4 and UDP headers */
	if (l->max_datagram > LAN_FRAME_MAX)
		l->max_datagram = LAN_FRAME_MAX;
	ki_lan_reasm_init(&l->reasm, l->spec.max_msg, 0, 0);
	l->reasm.discarded = partial_discarded;
	l->reasm.discarded_ctx = k;
	if ((rc = ki_lan_joins_init(&l->joins, &l->spec.range)))
		return rc;
	l->pack_ns = (uint64_t)l->spec.pack_us * 1000u;
	if ((rc = ki_lan_pack_init(&l->pack, l->max_datagram)))
		return rc;
	l->txbuf = malloc((size_t)SEND_BATCH * l->max_datagram);
	l->rxbuf = malloc((size_t)RECV_BATCH * RX_STRIDE);
	if (!l->txbuf || !l->rxbuf)
		return -ENOMEM;
	if ((l->tx = ki_lan_socket_sender(&l->spec, &l->ifc, SEND_TIMEOUT_MS)) < 0)
		return l->tx;
	l->gso = l->spec.gso && ki_lan_gso_offered(l->tx);
	size_t granted = 0;
	if ((l->rx = ki_lan_socket_receiver(&l->spec, RCVBUF_WANT, &granted)) < 0)
		return l->rx;
	l->st.rcvbuf_bytes = granted;
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = l->rx};
	if (epoll_ctl(k->epoll_fd, EPOLL_CTL_ADD, l->rx, &ev) < 0)
		return -errno;
	/* NAKs come to the address our data comes from: the sender. */
	ev.data.fd = l->tx;
	if (l->spec.repair && epoll_ctl(k->epoll_fd, EPOLL_CTL_ADD, l->tx, &ev) < 0)
		return -errno;
	l->pack_timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	ev.data.fd = l->pack_timer;
	if (l->pack_timer < 0 || epoll_ctl(k->epoll_fd, EPOLL_CTL_ADD, l->pack_timer, &ev) < 0)
		return -errno;
	return 0;
}

/* A send error that means "not by UDP_SEGMENT" (no checksum offload on
 * the route, IPsec, a kernel without it, a segment past the MTU): the
 * handle sends one datagram at a time from then on. */
static int gso_refusal(int err)
{
	return err == EIO || err == EINVAL || err == EMSGSIZE || err == EOPNOTSUPP ||
	       err == ENOPROTOOPT;
}

/* The send queue is full: wait for room, within what is left of this
 * call's budget. 1: try again; 0: the budget is spent. */
static int wait_for_room(struct ki_lan *l)
{
	uint64_t now = ki_monotonic_ns();
	if (l->send_until_ns == SEND_BUDGET_UNSTARTED)
		l->send_until_ns = now + SEND_TIMEOUT_MS * 1000000ull;
	if (now >= l->send_until_ns)
		return 0;
	struct pollfd pfd = {.fd = l->tx, .events = POLLOUT};
	int ms = (int)((l->send_until_ns - now + 999999u) / 1000000u);
	return poll(&pfd, 1, ms) >= 0 || errno == EINTR;
}

/* sendmmsg count prepared messages (dgrams[i] datagrams in message i,
 * NULL: one each); how many messages went: all, unless the socket stayed
 * full past this call's budget or the kernel refused one (errno then says why). */
static unsigned send_mm(struct ki_lan *l, struct mmsghdr *mm, const unsigned *dgrams,
			unsigned count)
{
	unsigned done = 0;
	while (done < count) {
		int n = sendmmsg(l->tx, mm + done, count - done, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			for (int i = 0; i < n; i++) /* only what the call says it sent */
				l->st.datagrams_sent += dgrams ? dgrams[done + (unsigned)i] : 1;
			done += (unsigned)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || (errno != EAGAIN && errno != ENOBUFS))
			break;
		if (!wait_for_room(l)) {
			errno = EAGAIN;
			break;
		}
	}
	return done;
}

static struct sockaddr_in group_addr(const struct ki_lan *l, uint32_t group)
{
	return (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(l->spec.range.port),
				    .sin_addr.s_addr = htonl(group)};
}

/* Send count datagrams (bufs[i], lens[i]) to groups[i] with sendmmsg; how
 * many went (all, unless the socket stayed full SEND_TIMEOUT_MS). */
static unsigned send_batch(struct ki_lan *l, const uint8_t *const *bufs, const size_t *lens,
			   const uint32_t *groups, unsigned count)
{
	struct sockaddr_in to[SEND_BATCH];
	struct mmsghdr mm[SEND_BATCH];
	struct iovec iov[SEND_BATCH];
	for (unsigned i = 0; i < count; i++) {
		to[i] = group_addr(l, groups[i]);
		iov[i] = (struct iovec){(void *)(uintptr_t)bufs[i], lens[i]};
		mm[i].msg_hdr = (struct msghdr){.msg_name = &to[i], .msg_namelen = sizeof to[i],
						.msg_iov = &iov[i], .msg_iovlen = 1};
	}
	return send_mm(l, mm, NULL, count);
}

/* Send count datagrams of txbuf (lengths in lens) to one group; 0 if all
 * went. */
static int send_datagrams(struct ki_lan *l, uint32_t group, const size_t *lens, unsigned count)
{
	const uint8_t *bufs[SEND_BATCH];
	uint32_t groups[SEND_BATCH];
	for (unsigned i = 0; i < count; i++) {
		bufs[i] = l->txbuf + (size_t)i * l->max_datagram;
		groups[i] = group;
	}
	return send_batch(l, bufs, lens, groups, count) == count ? 0 : -1;
}

/* Send count datagrams laid back to back at buf (each seg bytes but the
 * last, which is last bytes) to one group: one UDP_SEGMENT send while the
 * kernel takes them, else sendmmsg. How many went. */
static unsigned send_segments(struct ki_lan *l, uint32_t group, const uint8_t *buf, size_t seg,
			 unsigned count, size_t last)
{
	size_t total = (count - 1) * seg + last;
	struct sockaddr_in to = group_addr(l, group);
	while (l->gso && count > 1) {
		ssize_t n = ki_lan_gso_send(l->tx, &to, buf, total, seg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == (ssize_t)total) {
			l->st.datagrams_sent += count;
			l->st.gso_sends++;
			return count;
		}
		if (n == -EINTR)
			continue;
		if ((n == -EAGAIN || n == -ENOBUFS) && wait_for_room(l))
			continue;
		if (!gso_refusal((int)-n))
			return 0; /* full past the budget, or the network is down */
		/* Refused (no checksum offload on the route, IPsec, a kernel
		 * limit): once is enough to know; the rest go one by one. */
		l->gso = 0;
		l->st.gso_refused++;
	}
	const uint8_t *bufs[SEND_BATCH];
	size_t lens[SEND_BATCH];
	uint32_t groups[SEND_BATCH];
	for (unsigned i = 0; i < count; i++) {
		bufs[i] = buf + (size_t)i * seg;
		lens[i] = i + 1 < count ? seg : last;
		groups[i] = group;
	}
	return send_batch(l, bufs, lens, groups, count);
}

/* Datagrams from i on (of n) that one UDP_SEGMENT send can carry: to one
 * group, all as long as the first but the last, which may be shorter, at
 * most LAN_GSO_SEGMENTS_MAX and LAN_UDP_PAYLOAD_MAX bytes together. */
static unsigned segment_run(const size_t *lens, const uint32_t *groups, unsigned i, unsigned n)
{
	unsigned j = i + 1;
	while (j < n && j - i < LAN_GSO_SEGMENTS_MAX && (j - i + 1) * lens[i] <= LAN_UDP_PAYLOAD_MAX &&
	       groups[j] == groups[i] && lens[j - 1] == lens[i] && lens[j] <= lens[i])
		j++;
	return j - i;
}

/* Send n datagrams (n <= SEND_BATCH), in order: runs that one UDP_SEGMENT
 * send can carry by one send each (copied back to back to the start of
 * txbuf, which bufs may point into: each moves down, never onto one not
 * yet moved), the others together by sendmmsg. With frames, what did not
 * go is counted unsent (frames[i] messages in datagram i). */
static void send_runs(struct ki_lan *l, const uint8_t *const *bufs, const size_t *lens,
		      const uint32_t *groups, unsigned n, const unsigned *frames)
{
	unsigned alone = 0; /* from here, datagrams waiting for a sendmmsg */
	for (unsigned i = 0; i <= n;) {
		unsigned run = i < n && l->gso ? segment_run(lens, groups, i, n) : 1;
		if (run == 1 && i < n) {
			i++;
			continue;
		}
		/* A run (or the end): first what waits before it. */
		unsigned sent = alone + send_batch(l, bufs + alone, lens + alone, groups + alone, i - alone);
		for (unsigned j = sent; j < i && frames; j++)
			l->st.messages_unsent += frames[j];
		if (i == n)
			break;
		size_t fill = 0;
		for (unsigned j = i; j < i + run; j++) {
			memmove(l->txbuf + fill, bufs[j], lens[j]);
			fill += lens[j];
		}
		sent = i + send_segments(l, groups[i], l->txbuf, lens[i], run, lens[i + run - 1]);
		for (unsigned j = sent; j < i + run && frames; j++)
			l->st.messages_unsent += frames[j];
		i += run;
		alone = i;
	}
}

/* The packer's datagrams from slot `first` on, in one sendmmsg. A burst
 * of one message size fills its datagrams to one length: a run of such
 * datagrams to one group goes as a single UDP_SEGMENT send, which the
 * kernel cuts into the same datagrams after one trip through its stack
 * instead of one a datagram (gso=0: never; a kernel that refuses it gets
 * plain datagrams from then on). On a virtual path (veth, bridge) the
 * send stays one packet up to the receiving socket, so a filter on the
 * way drops or keeps its datagrams together. */
static void pack_send_from(struct ki_lan *l, unsigned first)
{
	struct lan_packer *p = &l->pack;
	struct lan_pack_run run[LAN_PACK_SLOTS];
	struct sockaddr_in to[LAN_PACK_SLOTS];
	struct mmsghdr mm[LAN_PACK_SLOTS];
	struct iovec iov[LAN_PACK_SLOTS];
	union {
		char buf[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} ctl[LAN_PACK_SLOTS];
	unsigned dgrams[LAN_PACK_SLOTS] = {0};
	unsigned n = ki_lan_pack_runs(p, first, l->gso, run);
	for (unsigned j = 0; j < n; j++) {
		for (unsigned i = run[j].first; i < run[j].first + run[j].count; i++)
			iov[i] = (struct iovec){(void *)(uintptr_t)ki_lan_pack_datagram(p, i),
						p->len[i]};
		to[j] = group_addr(l, p->group[run[j].first]);
		mm[j].msg_hdr = (struct msghdr){.msg_name = &to[j], .msg_namelen = sizeof to[j],
						.msg_iov = &iov[run[j].first],
						.msg_iovlen = run[j].count};
		dgrams[j] = run[j].count;
		if (run[j].count < 2)
			continue;
		struct msghdr *h = &mm[j].msg_hdr;
		h->msg_control = ctl[j].buf;
		h->msg_controllen = sizeof ctl[j].buf;
		struct cmsghdr *c = CMSG_FIRSTHDR(h);
		c->cmsg_level = SOL_UDP;
		c->cmsg_type = UDP_SEGMENT;
		c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
		uint16_t seg = (uint16_t)p->len[run[j].first];
		memcpy(CMSG_DATA(c), &seg, sizeof seg);
	}
	unsigned sent = send_mm(l, mm, dgrams, n);
	for (unsigned j = 0; j < sent; j++)
		l->st.gso_sends += run[j].count > 1;
	if (sent < n && run[sent].count > 1 && gso_refusal(errno)) {
		l->gso = 0;
		l->st.gso_refused++;
		pack_send_from(l, run[sent].first);
		return;
	}
	for (unsigned j = sent; j < n; j++)
		l->st.messages_unsent += run[j].frames;
}

/* Finish the open batch, if any: its count, lengths, CRC and tag (room
 * for the tag was kept when it was opened and at each record). */
static void batch_close(struct ki_lan *l)
{
	if (!l->batch_count)
		return;
	struct lan_packer *p = &l->pack;
	unsigned slot = p->used - 1;
	uint8_t *frame = p->buf + (size_t)slot * p->max_datagram + l->batch_at;
	size_t written = p->len[slot] - l->batch_at;
	p->len[slot] += ki_lan_batch_close(frame, written, l->batch_count, &l->keys) - written;
	l->batch_count = 0;
}

/* Send what the packer holds. */
static void pack_flush(struct ki_lan *l)
{
	batch_close(l);
	pack_send_from(l, 0);
	ki_lan_pack_sent(&l->pack);
}

static void pack_timer_arm(struct ki_lan *l, uint64_t due)
{
	struct itimerspec it = {.it_value = {.tv_sec = (time_t)(due / 1000000000u),
					     .tv_nsec = (long)(due % 1000000000u)}};
	if (timerfd_settime(l->pack_timer, TFD_TIMER_ABSTIME, &it, NULL) == 0)
		l->pack_timer_due = due;
}

/* Repair keeps a batched message as the version-1 frame it would have
 * been: a resend names one message, and any receiver takes it. */
static void history_add_frame(struct ki_lan *l, const struct lan_frame *f, const void *data)
{
	uint8_t one[LAN_FRAME_MAX];
	int n = ki_lan_frame_encode_keyed(one, sizeof one, f, data, &l->keys);
	if (n > 0)
		ki_lan_history_add(&l->hist, f->channel, f->seq, one, (size_t)n);
}

/* Append a message to the open batch if it is the next of pub's stream
 * and fits the open datagram (its tag still to come): 0, else -1. The
 * common case of a burst, before any frame is made up. */
static int batch_append(struct ki_lan *l, const struct pub *pub, uint64_t seq,
			uint64_t timestamp_ns, const void *data, size_t len, uint64_t now)
{
	struct lan_packer *p = &l->pack;
	size_t rec = LAN_BATCH_RECORD_LEN + len;
	if (!l->batch_count || l->batch_pub != pub || seq != l->batch_next ||
	    l->batch_count >= LAN_BATCH_COUNT_MAX ||
	    p->len[p->used - 1] + rec + lan_tag_len(&l->keys) > p->max_datagram)
		return -1;
	uint8_t *at = ki_lan_pack_room(p, pub->group, rec, now);
	lan_batch_put(at, timestamp_ns, data, (uint16_t)len);
	ki_lan_pack_commit(p, rec);
	l->batch_count++;
	l->batch_next++;
	return 0;
}

/* Add a message to the open batch if it is the next of the same stream
 * and fits the open datagram (its tag still to come), else open a batch
 * for it; 0, or -1 if it fits no datagram. */
static int batch_message(struct ki_lan *l, const struct pub *pub, const struct lan_frame *f,
			 const void *data, uint64_t now)
{
	struct lan_packer *p = &l->pack;
	size_t tag = lan_tag_len(&l->keys);
	size_t rec = LAN_BATCH_RECORD_LEN + f->payload_len;
	if (batch_append(l, pub, f->seq, f->timestamp_ns, data, f->payload_len, now) == 0)
		return 0;
	batch_close(l);
	size_t hdr = lan_batch_header_len(f->channel_len);
	uint8_t *at = ki_lan_pack_room(p, pub->group, hdr + rec + tag, now);
	if (!at) {
		pack_flush(l);
		if (!(at = ki_lan_pack_room(p, pub->group, hdr + rec + tag, now)))
			return -1;
	}
	if (ki_lan_batch_open(at, hdr, f) != hdr)
		return -1;
	lan_batch_put(at + hdr, f->timestamp_ns, data, (uint16_t)f->payload_len);
	l->batch_at = p->len[p->used - 1];
	ki_lan_pack_commit(p, hdr + rec);
	l->batch_pub = pub;
	l->batch_count = 1;
	l->batch_next = f->seq + 1;
	return 0;
}

/* A message was packed: send what waits if the oldest has waited its
 * bound, else make sure the timer will. */
static void pack_bound(struct ki_lan *l, uint64_t now)
{
	if (now - l->pack.since_ns >= l->pack_ns)
		pack_flush(l);
	else if (l->pack.used == 1 && l->pack.frames[0] == 1 && !l->pack_timer_due)
		/* The first to wait: the timer sends the rest by its bound. (Still
		 * armed for an earlier batch, it fires sooner and is armed
		 * again then: one system call less for most batches.) */
		pack_timer_arm(l, l->pack.since_ns + l->pack_ns);
}

/* Pack one single-datagram message (pub's); 0, or -1 to send it on its
 * own. */
static int pack_message(struct ki_lan *l, const struct pub *pub, const struct lan_frame *f,
			const void *data, uint64_t now)
{
	uint32_t group = pub->group;
	if (l->spec.batch && f->payload_len <= UINT16_MAX) {
		if (batch_message(l, pub, f, data, now) != 0)
			return -1;
		if (l->spec.repair)
			history_add_frame(l, f, data);
	} else {
		batch_close(l);
		size_t n = lan_header_len(f->channel_len) + f->payload_len + lan_tag_len(&l->keys);
		uint8_t *at = ki_lan_pack_room(&l->pack, group, n, now);
		if (!at) {
			pack_flush(l);
			if (!(at = ki_lan_pack_room(&l->pack, group, n, now)))
				return -1;
		}
		if (ki_lan_frame_encode_keyed(at, n, f, data, &l->keys) != (int)n)
			return -1;
		if (l->spec.repair)
			ki_lan_history_add(&l->hist, f->channel, f->seq, at, n);
		ki_lan_pack_commit(&l->pack, n);
	}
	pack_bound(l, now);
	return 0;
}

/* The packing timer fired: send what waits if its bound has come, else
 * wait for that. */
static void pack_timer_fired(struct ki_lan *l)
{
	l->pack_timer_due = 0;
	if (!l->pack.used)
		return;
	uint64_t due = l->pack.since_ns + l->pack_ns;
	if (ki_monotonic_ns() < due) {
		pack_timer_arm(l, due);
		return;
	}
	send_budget_none(l);
	pack_flush(l);
}

static struct pub *find_pub(struct ki_lan *l, const char *channel, int create)
{
	uint32_t h = hash_str(channel) % HASH_SIZE;
	for (struct pub *p = l->pubs[h]; p; p = p->next)
		if (!strcmp(p->channel, channel))
			return p;
	if (!create)
		return NULL;
	struct pub *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	snprintf(p->channel, sizeof p->channel, "%s", channel);
	p->group = ki_lan_group_of(&l->spec.range, p->channel);
	p->next = l->pubs[h];
	l->pubs[h] = p;
	return p;
}

/* One frame in datagram slot i of txbuf; its length. */
static size_t put_frame(struct ki_lan *l, unsigned i, struct lan_frame *f, const void *data)
{
	int n = ki_lan_frame_encode_keyed(l->txbuf + (size_t)i * l->max_datagram, l->max_datagram,
					  f, data, &l->keys);
	return n > 0 ? (size_t)n : 0;
}

static void frame_base(const kite *k, struct lan_frame *f, const char *channel, uint64_t seq,
		       uint64_t timestamp_ns)
{
	/* Field by field: a memset of the whole frame (its channel buffer
	 * included) was a visible share of a 64-byte message's cost. */
	f->flags = 0;
	f->host = k->lan->host;
	f->publisher = k->id;
	f->seq = seq;
	f->timestamp_ns = timestamp_ns;
	f->pid = k->lan->pid;
	f->total_len = f->frag_index = f->frag_count = 0;
	f->channel_len = (uint8_t)strlen(channel);
	memcpy(f->channel, channel, f->channel_len + 1u);
	f->has_age = 1;
	f->age_ms = 0;
	f->payload = NULL;
	f->payload_len = 0;
}

/* Before the first message on a channel, say "nothing sent yet" (twice:
 * a lossy LAN), so that subscribers count a loss of that first message.
 * The stream's age counts from here. */
static void announce_start(kite *k, struct pub *p, const char *channel, uint64_t now)
{
	struct lan_frame f;
	p->start_ns = now;
	frame_base(k, &f, channel, 0, ki_realtime_ns());
	f.flags = LAN_FLAG_STATE;
	f.frag_count = 1;
	size_t len = put_frame(k->lan, 0, &f, NULL);
	uint32_t group = ki_lan_group_of(&k->lan->spec.range, channel);
	for (int i = 0; i < 2 && len; i++)
		send_datagrams(k->lan, group, &len, 1);
}

void ki_lan_publish(kite *k, const char *channel, void **lan_pub, uint64_t seq,
		    uint64_t timestamp_ns, const void *data, size_t len)
{
	struct ki_lan *l = k->lan;
	if (!l)
		return;
	send_budget_start(l);
	/* Repair: the history is taken when the handle first publishes (a
	 * handle that only subscribes never pays for it); without memory
	 * for it, what would have been resent is refused and reported. */
	if (l->spec.repair && !l->hist.bytes)
		ki_lan_history_init(&l->hist, LAN_HISTORY_BYTES);
	/* The stamp's own TSC reading gives the monotonic time too (a clock
	 * read is a quarter of a small LAN publish). */
	uint64_t now = ki_stamp_mono(&k->stamp, timestamp_ns);
	if (!now)
		now = ki_monotonic_ns();
	/* The ring keeps our record of its channel (freed only with the
	 * handle, after its last publish): a channel's name is compared
	 * once, not on every publish (a tenth of a 64-byte publish). */
	struct pub *p = *lan_pub;
	if (!p && !(p = find_pub(l, channel, 0)) && (p = find_pub(l, channel, 1)))
		announce_start(k, p, channel, now);
	*lan_pub = p;
	if (p) {
		p->seq = seq;
		p->state_due_ns = now + STATE_IDLE_MS * 1000000ull;
		if (p->state_due_ns < l->timers_due_ns)
			l->timers_due_ns = p->state_due_ns;
	}
	if (len > l->spec.max_msg || !p) {
		l->st.messages_unsent++;
		return;
	}
	/* (The stamp's monotonic time may step back a little at a re-anchor:
	 * a publish right after one is still part of the burst.) */
	int busy = now < l->last_publish_ns || now - l->last_publish_ns < l->pack_ns;
	l->last_publish_ns = now;
	/* The next message of a burst on the channel of the open batch: a
	 * record, nothing more. (Repair also keeps each message's frame.) */
	if ((busy || l->pack.used) && !l->spec.repair &&
	    batch_append(l, p, seq, timestamp_ns, data, len, now) == 0) {
		pack_bound(l, now);
		return;
	}
	struct lan_frame f;
	frame_base(k, &f, channel, seq, timestamp_ns);
	/* The age it will have when sent at the latest (packed, it may wait
	 * pack_ns): never younger than it is, so that a receiver never takes
	 * the stream for younger than it is either. */
	f.age_ms = lan_age_ms(now + l->pack_ns, p->start_ns);
	f.total_len = (uint32_t)len;
	size_t room = l->max_datagram - lan_header_len(f.channel_len) - lan_tag_len(&l->keys);
	f.frag_count = len <= room ? 1 : ki_lan_fragment_count(f.total_len, (uint32_t)room);
	uint32_t group = p->group;
	if (f.frag_count == 1 && (busy || l->pack.used)) {
		/* In a burst: share a datagram (a lone message, below, goes at
		 * once: no added latency). */
		f.payload_len = (uint32_t)len;
		if (pack_message(l, p, &f, data, now) == 0)
			return;
	}
	if (l->pack.used) /* keep the order: what waits goes first */
		pack_flush(l);
	/* Its frames (one, or fragments: all the same length but the last,
	 * which may be shorter) back to back in txbuf, sent a batch at a time:
	 * as many as one UDP_SEGMENT send carries, SEND_BATCH without GSO. */
	uint32_t chunk = ki_lan_fragment_chunk(f.total_len, f.frag_count);
	size_t seg = lan_header_len(f.channel_len) + chunk + lan_tag_len(&l->keys);
	unsigned per = SEND_BATCH;
	if (l->gso && LAN_UDP_PAYLOAD_MAX / seg < per)
		per = (unsigned)(LAN_UDP_PAYLOAD_MAX / seg);
	unsigned batch = 0;
	size_t fill = 0, last = 0;
	/* Repair keeps the whole message's frames, if they fit the history. */
	uint8_t *keep = NULL;
	size_t kept = 0;
	if (l->spec.repair && f.frag_count * seg <= LAN_HISTORY_BYTES)
		keep = malloc(f.frag_count * seg);
	for (uint32_t i = 0; i < f.frag_count; i++) {
		uint64_t at = ki_lan_fragment_offset(f.total_len, f.frag_count, i);
		f.frag_index = i;
		f.payload_len = i + 1 < f.frag_count ? chunk : (uint32_t)(len - at);
		int n = ki_lan_frame_encode_keyed(l->txbuf + fill, seg, &f, (const uint8_t *)data + at,
						  &l->keys);
		if (n <= 0) { /* (not a valid frame: cannot happen with a valid channel) */
			l->st.messages_unsent++;
			free(keep);
			return;
		}
		last = (size_t)n;
		fill += last;
		batch++;
		if (batch == per || i + 1 == f.frag_count) {
			if (send_segments(l, group, l->txbuf, seg, batch, last) != batch) {
				l->st.messages_unsent++;
				free(keep);
				return;
			}
			if (keep) {
				memcpy(keep + kept, l->txbuf, fill);
				kept += fill;
			}
			batch = 0;
			fill = 0;
		}
	}
	if (keep)
		ki_lan_history_add(&l->hist, channel, seq, keep, kept);
	free(keep);
}

/* Resent frames on their way out: packed back to back into datagrams of
 * txbuf (a lost resend then costs one datagram, not one per message, as
 * the originals were packed), sent a batch at a time to one group. */
struct resend_out {
	uint32_t group;
	size_t lens[SEND_BATCH];
	unsigned batch; /* datagrams filled */
	size_t fill;    /* bytes in datagram `batch` */
};

static void resend_flush(struct ki_lan *l, struct resend_out *o)
{
	if (o->fill)
		o->lens[o->batch++] = o->fill;
	/* (A fragmented message's resent frames are as its first sending
	 * was: equal but the last, one UDP_SEGMENT send.) */
	const uint8_t *bufs[SEND_BATCH];
	uint32_t groups[SEND_BATCH];
	for (unsigned i = 0; i < o->batch; i++) {
		bufs[i] = l->txbuf + (size_t)i * l->max_datagram;
		groups[i] = o->group;
	}
	send_runs(l, bufs, o->lens, groups, o->batch, NULL);
	o->batch = 0;
	o->fill = 0;
}

/* One kept message's frames (written by us: their lengths are trusted),
 * each marked as a resend. */
static void resend_frames(struct ki_lan *l, struct resend_out *o, const uint8_t *fr, size_t n)
{
	for (size_t at = 0; at < n;) {
		size_t len = (size_t)(fr[6] << 8 | fr[7]) +
			     ((size_t)fr[12] << 24 | (size_t)fr[13] << 16 | (size_t)fr[14] << 8 | fr[15]) +
			     (fr[5] & LAN_FLAG_MAC ? LAN_TAG_LEN : 0);
		if (o->fill && o->fill + len > l->max_datagram) {
			o->lens[o->batch++] = o->fill;
			o->fill = 0;
			if (o->batch == SEND_BATCH)
				resend_flush(l, o);
		}
		uint8_t *out = l->txbuf + (size_t)o->batch * l->max_datagram + o->fill;
		memcpy(out, fr, len);
		ki_lan_frame_mark_repair(out, len, &l->keys);
		o->fill += len;
		fr += len;
		at += len;
	}
}

/* Resend what a NAK asks for, as it first went (marked a repair), to the
 * channel's group: one multicast answers every subscriber that missed it.
 * The history's holdoff and rate budget bound what any NAK, forged or not,
 * can make us send. */
static void resend(kite *k, const struct lan_frame *nak, uint64_t now)
{
	struct ki_lan *l = k->lan;
	struct pub *p = find_pub(l, nak->channel, 0);
	if (!p) {
		l->st.resend_refused++;
		return;
	}
	/* What still waits in the packer was not sent yet: it goes first, or
	 * a resend (asked for by a forger who guessed ahead) would overtake
	 * it, and the original then arrive as a duplicate. */
	if (l->pack.used)
		pack_flush(l);
	struct lan_seq_range r[LAN_NAK_RANGES_MAX];
	size_t n = ki_lan_nak_ranges(nak, r);
	struct resend_out o = {.group = ki_lan_group_of(&l->spec.range, nak->channel)};
	/* A range may name up to 2^63 sequences: only what we ever sent and
	 * might still keep is looked up. */
	uint64_t oldest = p->seq > LAN_HISTORY_MSGS ? p->seq - LAN_HISTORY_MSGS + 1 : 1;
	unsigned lookups = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t first = r[i].first < oldest ? oldest : r[i].first;
		uint64_t last = r[i].last > p->seq ? p->seq : r[i].last;
		if (r[i].first < first || r[i].last > last)
			l->st.resend_refused++; /* (once a range: it may be huge) */
		for (uint64_t q = first; q <= last; q++) {
			if (++lookups > LAN_NAK_LOOKUPS)
				goto done; /* the rest with the asker's next NAK */
			struct lan_hist_rec *rec = ki_lan_history_find(&l->hist, nak->channel, q);
			int ok = rec ? ki_lan_history_resend_ok(&l->hist, rec, now) : -2;
			if (ok == 0)
				continue; /* just resent: that answers this NAK too */
			if (ok < 0) {
				l->st.resend_refused++;
				if (ok == -1)
					goto done; /* over the rate: the asker asks again */
				continue;
			}
			resend_frames(l, &o, lan_history_frames(&l->hist, rec), rec->len);
			l->st.resent++;
		}
	}
done:
	resend_flush(l, &o);
}

/* NAKs on our sending socket (only NAKs are taken there). */
static void nak_receive(kite *k)
{
	struct ki_lan *l = k->lan;
	struct mmsghdr mm[RECV_BATCH];
	struct iovec iov[RECV_BATCH];
	for (int round = 0; round < RECV_ROUNDS; round++) {
		for (int i = 0; i < RECV_BATCH; i++) {
			iov[i] = (struct iovec){l->rxbuf + (size_t)i * RX_STRIDE, RX_SLOT};
			mm[i].msg_hdr = (struct msghdr){.msg_iov = &iov[i], .msg_iovlen = 1};
		}
		int n = recvmmsg(l->tx, mm, RECV_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		uint64_t now = ki_monotonic_ns();
		send_budget_none(l); /* resends never make the control thread wait */
		for (int i = 0; i < n; i++) {
			struct lan_frame f;
			size_t len = mm[i].msg_hdr.msg_flags & MSG_TRUNC ? 0 : mm[i].msg_len;
			int r = ki_lan_frame_decode_keyed(iov[i].iov_base, len, &f, &l->keys);
			if (r < 0 || !(f.flags & LAN_FLAG_NAK) || f.publisher != k->id) {
				count_reject(l, r);
				continue;
			}
			l->st.naks_received++;
			if (ki_lan_history_nak_ok(&l->hist, now))
				resend(k, &f, now);
			else
				l->st.resend_refused++; /* over the NAK rate */
		}
		if (n < RECV_BATCH)
			return;
	}
}

/* A state frame for each channel due one (gone: for all, as we close). */
static void send_states(kite *k, uint64_t now, int gone)
{
	struct ki_lan *l = k->lan;
	if (l->pack.used)
		pack_flush(l); /* a state must not overtake the messages it counts */
	for (size_t h = 0; h < HASH_SIZE; h++)
		for (struct pub *p = l->pubs[h]; p; p = p->next) {
			if (!gone && (!p->state_due_ns || p->state_due_ns > now))
				continue;
			struct lan_frame f;
			frame_base(k, &f, p->channel, p->seq, ki_realtime_ns());
			f.age_ms = lan_age_ms(now, p->start_ns);
			f.flags = LAN_FLAG_STATE | (gone ? LAN_FLAG_GONE : 0);
			f.frag_count = 1;
			size_t len = put_frame(l, 0, &f, NULL);
			if (len)
				send_datagrams(l, ki_lan_group_of(&l->spec.range, p->channel), &len, 1);
			p->state_due_ns = now + HEARTBEAT_MS * 1000000ull;
		}
}

/* A message item, with room for len payload bytes after it; NULL without
 * memory. */
static struct item *item_take(struct ki_lan *l, size_t len)
{
	struct item *it;
	if (len <= SPARE_PAYLOAD && l->spare) {
		it = l->spare;
		l->spare = it->next;
		l->nspare--;
		return it;
	}
	size_t room = len <= SPARE_PAYLOAD ? SPARE_PAYLOAD : len;
	if ((it = malloc(sizeof *it + room)))
		it->room = (uint32_t)room;
	return it;
}

/* What m holds freed; a message block (m->block, an item) back to the
 * spares if it is one of theirs. */
static void block_release(struct ki_lan *l, struct lan_msg *m)
{
	struct item *it = m->block;
	if (!it) {
		ki_lan_msg_free(m);
		return;
	}
	/* m may lie in the block itself: not touched once it is given up. */
	m->block = NULL;
	m->data = NULL;
	if (it->room == SPARE_PAYLOAD && l->nspare < SPARE_MAX) {
		it->next = l->spare;
		l->spare = it;
		l->nspare++;
	} else {
		free(it);
	}
}

static void item_free(struct ki_lan *l, struct item *it)
{
	if (!it)
		return;
	if (it->e)
		it->e->queued--;
	if (it->m.block == it) {
		block_release(l, &it->m);
		return;
	}
	ki_lan_msg_free(&it->m);
	free(it);
}

/* Repair: after the goodbye, subscribers that miss our last messages ask
 * for them; answer until no NAK came for LINGER_QUIET_MS (repair_ms at
 * most). The control thread has stopped: the NAKs are read here. */
static void linger_for_naks(kite *k)
{
	struct ki_lan *l = k->lan;
	uint64_t now = ki_monotonic_ns();
	uint64_t until = now + l->spec.repair_ms * 1000000ull;
	uint64_t quiet = now + LINGER_QUIET_MS * 1000000ull;
	while (now < until && now < quiet) {
		uint64_t end = until < quiet ? until : quiet;
		struct pollfd pfd = {.fd = l->tx, .events = POLLIN};
		if (poll(&pfd, 1, (int)((end - now + 999999u) / 1000000u)) > 0) {
			uint64_t before = l->st.naks_received;
			nak_receive(k);
			if (l->st.naks_received != before)
				quiet = ki_monotonic_ns() + LINGER_QUIET_MS * 1000000ull;
		}
		now = ki_monotonic_ns();
	}
}

static int published_any(const struct ki_lan *l)
{
	for (size_t h = 0; h < HASH_SIZE; h++)
		if (l->pubs[h])
			return 1;
	return 0;
}

void ki_lan_close(kite *k, int say_gone)
{
	struct ki_lan *l = k->lan;
	if (!l)
		return;
	/* The goodbye says where each stream ended (so a lost last message
	 * is reported): three times, so a lossy LAN still hears it. */
	send_budget_start(l);
	for (int i = 0; i < 3 && say_gone && l->tx >= 0; i++)
		send_states(k, ki_monotonic_ns(), 1);
	if (say_gone && l->tx >= 0 && l->pack.used)
		pack_flush(l);
	if (say_gone && l->tx >= 0 && l->spec.repair && published_any(l))
		linger_for_naks(k);
	if (l->tx >= 0)
		close(l->tx);
	if (l->rx >= 0)
		close(l->rx);
	if (l->pack_timer >= 0)
		close(l->pack_timer);
	ki_lan_pack_free(&l->pack);
	item_free(l, l->current);
	while (l->head) {
		struct item *n = l->head->next;
		item_free(l, l->head);
		l->head = n;
	}
	while (l->spare) {
		struct item *n = l->spare->next;
		free(l->spare);
		l->spare = n;
	}
	for (size_t h = 0; h < HASH_SIZE; h++) {
		for (struct entry *e = l->streams[h], *n; e; e = n) {
			n = e->next;
			ki_lan_stream_clear(&e->s);
			free(e);
		}
		for (struct pub *p = l->pubs[h], *n; p; p = n) {
			n = p->next;
			free(p);
		}
	}
	ki_lan_reasm_free(&l->reasm);
	ki_lan_joins_free(&l->joins);
	ki_lan_listen_free(&l->listen);
	ki_lan_history_free(&l->hist);
	explicit_bzero(&l->keys, sizeof l->keys);
	free(l->txbuf);
	free(l->rxbuf);
	free(l);
	k->lan = NULL;
}

int ki_lan_subscribe(kite *k, const char *pattern)
{
	struct ki_lan *l = k->lan;
	if (!l)
		return 0;
	l->patterns_gen++;
	if (ki_lan_listen_add(&l->listen, pattern, LAN_LISTEN_NEVER) < 0)
		return -ENOMEM;
	uint32_t change[256];
	size_t n = ki_lan_joins_add(&l->joins, pattern, change);
	for (size_t i = 0; i < n; i++) {
		int rc = ki_lan_socket_membership(l->rx, change[i], &l->ifc, 1);
		if (rc < 0) {
			ki_lan_listen_remove(&l->listen, pattern);
			/* Undo, so the counts match the memberships. */
			uint32_t undo[256];
			size_t m = ki_lan_joins_remove(&l->joins, pattern, undo);
			for (size_t j = 0; j < m; j++)
				if (j < i || undo[j] != change[i])
					ki_lan_socket_membership(l->rx, undo[j], &l->ifc, 0);
			return rc;
		}
	}
	/* Heard from now on: its groups are joined (taken after the joins,
	 * so never earlier than they were). */
	ki_lan_listen_set(&l->listen, pattern, ki_monotonic_ns());
	return 0;
}

static void leave_streams(kite *k);

void ki_lan_unsubscribe(kite *k, const char *pattern)
{
	struct ki_lan *l = k->lan;
	if (!l)
		return;
	l->patterns_gen++;
	uint32_t change[256];
	size_t n = ki_lan_joins_remove(&l->joins, pattern, change);
	for (size_t i = 0; i < n; i++)
		ki_lan_socket_membership(l->rx, change[i], &l->ifc, 0);
	ki_lan_listen_remove(&l->listen, pattern);
	leave_streams(k);
}


/* The queue to kite_recv(). */
static void enqueue(kite *k, struct item *it)
{
	struct ki_lan *l = k->lan;
	int was_empty = !l->head;
	if (l->tail)
		l->tail->next = it;
	else
		l->head = it;
	l->tail = it;
	l->nitems++;
	l->queue_bytes += it->m.len;
	if (it->e)
		it->e->queued++;
	if (was_empty)
		ki_wake_self(k);
}

static void push_event(kite *k, struct entry *e, enum item_type type, uint64_t lost)
{
	struct item *it = calloc(1, sizeof *it);
	if (!it)
		return; /* (a loss then goes unreported: only without memory) */
	it->type = type;
	it->e = e;
	it->lost = lost;
	enqueue(k, it);
	if (type == ITEM_LOSS)
		e->loss_item = it;
}

static void report_loss(kite *k, struct entry *e, uint64_t n)
{
	if (e->loss_item) /* still queued: one report says it all */
		e->loss_item->lost += n;
	else
		push_event(k, e, ITEM_LOSS, n);
}

static void sink_message(void *ctx, struct lan_stream *s, struct lan_msg *m)
{
	kite *k = ctx;
	struct ki_lan *l = k->lan;
	struct entry *e = (struct entry *)s; /* s is the entry's first member */
	struct item *it = NULL;
	if (l->nitems < QUEUE_ITEMS && l->queue_bytes + m->len <= QUEUE_BYTES)
		it = m->block ? m->block : calloc(1, sizeof *it);
	if (!it) {
		/* kite_recv() is behind: radio semantics, counted and told. */
		block_release(l, m);
		l->st.queue_dropped++;
		report_loss(k, e, 1);
		return;
	}
	if (m != &it->m) { /* (a batch's message is written in place) */
		it->m = *m;
		m->data = NULL;
		m->block = NULL;
	}
	it->next = NULL;
	it->type = ITEM_MESSAGE;
	it->e = e;
	it->lost = 0;
	e->loss_item = NULL; /* later losses come after this message */
	enqueue(k, it);
}

static void sink_loss(void *ctx, struct lan_stream *s, uint64_t n)
{
	report_loss(ctx, (struct entry *)s, n);
}

/* After an unsubscribe: the streams of channels no pattern matches any
 * more are flushed (what they held delivered, their gaps reported lost)
 * and made not begun. Subscribed again, the handle hears each of them as
 * a late joiner does (by its age: it began before this subscription),
 * from its first frame heard, as a local subscriber does its ring; what
 * was published in between is not counted lost, nor asked for. */
static void leave_streams(kite *k)
{
	struct ki_lan *l = k->lan;
	struct lan_sink out = {sink_message, sink_loss, k};
	for (size_t h = 0; h < HASH_SIZE; h++)
		for (struct entry *e = l->streams[h]; e; e = e->next)
			if (e->s.started &&
			    !ki_strlist_any_match(k->patterns, k->npatterns, e->s.channel)) {
				ki_lan_stream_restart(&e->s, &out);
				e->nak_due_ns = e->nak_gap_ns = e->closing_ns = e->behind_seq = 0;
			}
}

static uint32_t stream_hash(uint64_t host, uint64_t publisher, const char *channel)
{
	return (hash_str(channel) ^ (uint32_t)publisher ^ (uint32_t)host) % HASH_SIZE;
}

/* The stream held for (host, publisher, channel), NULL: none. */
static struct entry *held_stream(const struct ki_lan *l, uint64_t host, uint64_t publisher,
				 const char *channel)
{
	for (struct entry *e = l->streams[stream_hash(host, publisher, channel)]; e; e = e->next)
		if (e->s.publisher == publisher && e->s.host == host &&
		    !strcmp(e->s.channel, channel))
			return e;
	return NULL;
}

static struct entry *find_stream(kite *k, uint64_t host, const struct lan_frame *f,
				 const struct sockaddr_in *from)
{
	struct ki_lan *l = k->lan;
	struct entry *e = held_stream(l, host, f->publisher, f->channel);
	if (e)
		return e;
	uint32_t h = stream_hash(host, f->publisher, f->channel);
	if (l->nstreams >= STREAMS_MAX)
		return NULL;
	e = calloc(1, sizeof *e);
	if (!e)
		return NULL;
	e->s.host = host;
	e->s.publisher = f->publisher;
	memcpy(e->s.channel, f->channel, sizeof e->s.channel);
	e->from = *from;
	e->pid = f->pid;
	e->s.held_total = &l->held;
	if (l->spec.repair)
		ki_lan_stream_widen(&e->s, LAN_REPAIR_WINDOW, &l->wide_slots);
	e->next = l->streams[h];
	l->streams[h] = e;
	l->nstreams++;
	l->st.streams = l->nstreams;
	l->timers_due_ns = 0; /* its silence has a deadline */
	push_event(k, e, ITEM_NEW, 0);
	return e;
}

/* A partial message was evicted or expired unfinished: its stream is told
 * the sequence exists, as a state frame would, so that the gap is asked
 * for (repair) or waited for and then reported lost, as any other. Else,
 * with nothing heard after it (a publisher gone mid-message, its later
 * frames all lost), the sequence would be neither received nor lost. Only
 * to a stream held and begun, not gone, and only a sequence not yet
 * delivered or given up: no stream is made here (the fragment's arrival
 * found or made it, as a whole message's would), a resend never begins
 * a stream, nothing is counted twice. Not heard
 * from its publisher: its silence keeps its deadline. */
static void partial_discarded(void *ctx, const struct lan_reasm_key *key, uint64_t now)
{
	kite *k = ctx;
	struct ki_lan *l = k->lan;
	struct entry *e = held_stream(l, key->host, key->publisher, key->channel);
	if (!e || e->gone || !e->s.started || key->seq < e->s.next)
		return;
	struct lan_sink out = {sink_message, sink_loss, k};
	uint64_t heard = e->s.last_heard_ns;
	ki_lan_stream_announce(&e->s, key->seq, now, l->reorder_ns, &out);
	e->s.last_heard_ns = heard;
	l->timers_due_ns = 0; /* the gap's deadline */
}

static int held_over(const struct ki_lan *l)
{
	return l->held.bytes > HELD_BYTES || l->held.msgs > HELD_MSGS;
}

/* The streams hold more than their cap since e took a message: e gives
 * up its gaps (reported lost) and hands on what it held, then others
 * until the cap is met. */
static void held_cap(kite *k, struct entry *e)
{
	struct ki_lan *l = k->lan;
	struct lan_sink out = {sink_message, sink_loss, k};
	ki_lan_stream_flush(&e->s, &out);
	for (size_t h = 0; h < HASH_SIZE && held_over(l); h++)
		for (struct entry *o = l->streams[h]; o && held_over(l); o = o->next)
			if (o->s.nheld)
				ki_lan_stream_flush(&o->s, &out);
}

/* A whole message's frame into m (an item holds its payload): 0, or -1
 * without memory (then reported lost). */
static int whole_message(kite *k, struct entry *e, const struct lan_frame *f, struct lan_msg *m)
{
	m->len = f->payload_len;
	struct item *it = item_take(k->lan, f->payload_len);
	if (!it) {
		report_loss(k, e, 1);
		return -1;
	}
	m->block = it;
	m->data = (uint8_t *)(it + 1);
	memcpy(m->data, f->payload, f->payload_len);
	return 0;
}

/* A batch record's message, written straight into the item that will
 * carry it to kite_recv() (built on the stack and copied, its fields were
 * read back wider than written: a stalled store forward a message); NULL
 * without memory (then reported lost). */
static struct lan_msg *record_message(kite *k, struct entry *e, const struct lan_frame *f,
				      const struct sockaddr_in *from)
{
	struct item *it = item_take(k->lan, f->payload_len);
	if (!it) {
		report_loss(k, e, 1);
		return NULL;
	}
	struct lan_msg *m = &it->m;
	m->seq = f->seq;
	m->timestamp_ns = f->timestamp_ns;
	m->arrived_ns = 0;
	m->pid = f->pid;
	m->len = f->payload_len;
	m->data = (uint8_t *)(it + 1);
	m->block = it;
	m->from = *from;
	memcpy(m->data, f->payload, f->payload_len);
	return m;
}

/* When the datagram being read arrived (monotonic): now, less the time
 * it waited in the socket by the kernel's stamp (a receiver kept from
 * reading, its queue full or its process stopped, must not take a stream
 * it joined late for one it heard begin). Read only for a stream's first
 * frame. */
static uint64_t arrived_ns(const struct ki_lan *l, uint64_t now)
{
	uint64_t stamp = l->rx_hdr ? ki_lan_rx_stamp(l->rx_hdr) : 0;
	if (!stamp)
		return now;
	uint64_t real = ki_realtime_ns();
	uint64_t waited = real > stamp ? real - stamp : 0;
	return now > waited ? now - waited : 0;
}

/* One frame heard: its stream (NULL: not ours). */
static struct entry *take_frame_in(kite *k, const struct lan_frame *f, const struct sockaddr_in *from,
		       uint64_t now)
{
	struct ki_lan *l = k->lan;
	if (f->host == l->host)
		return NULL; /* our own, looped back: local subscribers have the rings */
	struct entry *e = l->last_entry;
	if (!e || e->matched_gen != l->patterns_gen || e->s.publisher != f->publisher ||
	    e->s.host != f->host || strcmp(e->s.channel, f->channel)) {
		if (!ki_strlist_any_match(k->patterns, k->npatterns, f->channel))
			return NULL; /* a channel sharing a group with ours */
		if (!(e = find_stream(k, f->host, f, from)))
			return NULL;
		if (!e->s.last_heard_ns) /* new: heard now, even if only a fragment */
			e->s.last_heard_ns = e->first_heard_ns = now;
		e->matched_gen = l->patterns_gen;
		l->last_entry = e;
	}
	struct lan_sink out = {sink_message, sink_loss, k};
	if (e->gone && (f->flags & (LAN_FLAG_STATE | LAN_FLAG_REPAIR)))
		return e; /* (its goodbye is sent more than once; a resend after it
			 * is not the publisher speaking again) */
	if (e->gone) { /* it spoke again: a new stream of the same publisher */
		if (l->nitems >= QUEUE_ITEMS) {
			/* kite_recv() is behind: its NEW (and the GONE that a
			 * flapping publisher would send next) would grow the
			 * queue past its bound. Dropped like a message; heard
			 * again later, the gap is reported lost. */
			l->st.queue_dropped++;
			return e;
		}
		e->gone = 0;
		push_event(k, e, ITEM_NEW, 0);
	}
	/* Its first frame: does the stream begin here, or at 1 (we heard it
	 * begin), or not yet (a resend)? */
	if (!e->s.started &&
	    ki_lan_stream_first(&e->s, f, arrived_ns(l, now),
				ki_lan_listen_since(&l->listen, f->channel)) < 0)
		return e;
	e->from = *from;
	e->pid = f->pid;
	if (f->flags & LAN_FLAG_STATE) {
		ki_lan_stream_announce(&e->s, f->seq, now, l->reorder_ns, &out);
		if ((f->flags & LAN_FLAG_GONE) && l->spec.repair && e->s.gap_since_ns) {
			/* Its last messages may still be resent: the stream
			 * ends when its gaps are filled or lost (timers). */
			if (!e->closing_ns)
				e->closing_ns = now;
			return e;
		}
		if (f->flags & LAN_FLAG_GONE) {
			e->closing_ns = 0;
			ki_lan_stream_flush(&e->s, &out);
			e->gone = 1;
			push_event(k, e, ITEM_GONE, 0);
		}
		return e;
	}
	struct lan_msg m = {.seq = f->seq, .timestamp_ns = f->timestamp_ns, .pid = f->pid,
			    .from = *from};
	/* A resend we did not need (another host asked, or it came after we
	 * gave up) is neither a duplicate nor a late arrival of the sender's:
	 * it is uncounted. */
	uint64_t dups = e->s.duplicates, late = e->s.late;
	int repair = (f->flags & LAN_FLAG_REPAIR) != 0;
	if (f->frag_count > 1) {
		/* A fragment of a message already delivered (a duplicate) or
		 * given up (late: e.g. the rest of a partial evicted and
		 * reported lost), counted as a whole message would be, once
		 * for the run of its fragments. (A resend we did not need:
		 * uncounted, as below.) */
		if (e->s.started && f->seq < e->s.next) {
			if (!repair && f->seq != e->behind_seq) {
				ki_lan_stream_behind(&e->s, f->seq);
				e->behind_seq = f->seq;
			}
			return e;
		}
		/* The stream starts at its first fragment heard, not at its
		 * first message made whole: else, with "nothing sent yet"
		 * lost, a first message that never completes would be
		 * neither delivered nor reported lost. */
		ki_lan_stream_begin(&e->s, f->seq);
		uint64_t rdups = l->reasm.duplicates;
		int rc = ki_lan_reasm_add(&l->reasm, f->host, f, from, now, &m);
		if (repair)
			l->reasm.duplicates = rdups;
		if (rc <= 0)
			return e;
	} else if (whole_message(k, e, f, &m) != 0) {
		return e;
	}
	int took = ki_lan_stream_take(&e->s, &m, now, l->reorder_ns, &out);
	if (held_over(l))
		held_cap(k, e);
	if (repair && took)
		l->st.repaired++;
	else if (repair) {
		e->s.duplicates = dups;
		e->s.late = late;
	}
	return e;
}

static void take_frame(kite *k, const struct lan_frame *f, const struct sockaddr_in *from,
		       uint64_t now)
{
	struct ki_lan *l = k->lan;
	struct entry *e = take_frame_in(k, f, from, now);
	/* A gap or a closing stream has a deadline the timers must see at
	 * their next pass. */
	if (e && (e->s.gap_since_ns || e->closing_ns || e->gone))
		l->timers_due_ns = 0;
	/* A partial message expires reasm timeout after its first fragment,
	 * at the earliest: the timers' full scan (every stream and channel)
	 * need not run after each of a large message's fragments (it was a
	 * tenth of a 64 KiB subscriber's time). */
	if (f->frag_count > 1 && now + l->reasm.timeout_ns < l->timers_due_ns)
		l->timers_due_ns = now + l->reasm.timeout_ns;
}

/* The kernel's count of datagrams it dropped, from a recvmmsg header. */
static void note_overflow(struct ki_lan *l, struct msghdr *h, uint32_t *last)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL &&
		    c->cmsg_len >= CMSG_LEN(sizeof(uint32_t))) {
			uint32_t v;
			memcpy(&v, CMSG_DATA(c), sizeof v);
			if (v != *last) {
				l->st.kernel_drops += (uint32_t)(v - *last);
				*last = v;
			}
		}
}

/* Where a received buffer came from, for the datagrams cut from it. */
struct arrival {
	kite *k;
	const struct sockaddr_in *from;
	uint64_t now;
};

/* A batch frame at d (len bytes to the datagram's end): its messages,
 * each as the whole-message frame it stands for. Its length, or < 0 if
 * rejected (counted). */
static int take_batch(const struct arrival *a, const uint8_t *d, size_t len)
{
	struct ki_lan *l = a->k->lan;
	struct lan_batch b;
	int r = ki_lan_batch_decode_keyed(d, len, &b, &l->keys);
	if (r < 0) {
		count_reject(l, r);
		return r;
	}
	l->st.frames_received++;
	l->st.batches_received++;
	struct lan_frame f = b.f;
	size_t at = 0;
	ki_lan_batch_record(&b, 0, &at, &f);
	struct entry *e = take_frame_in(a->k, &f, a->from, a->now);
	/* The rest are the same stream's, in a row: once its first found the
	 * stream live and taking messages (not gone, not a resend), each is
	 * a message for it, without looking it up again. */
	int direct = e && e == l->last_entry && !e->gone && !(f.flags & LAN_FLAG_REPAIR);
	struct lan_sink out = {sink_message, sink_loss, a->k};
	for (uint32_t i = 1; i < b.count; i++) {
		ki_lan_batch_record(&b, i, &at, &f);
		if (!direct) {
			e = take_frame_in(a->k, &f, a->from, a->now);
			continue;
		}
		struct lan_msg *m = record_message(a->k, e, &f, a->from);
		if (!m)
			continue;
		ki_lan_stream_take(&e->s, m, a->now, l->reorder_ns, &out);
		if (held_over(l))
			held_cap(a->k, e);
	}
	/* A gap or a closing stream has a deadline for the timers. */
	if (e && (e->s.gap_since_ns || e->closing_ns || e->gone))
		l->timers_due_ns = 0;
	return r;
}

/* One datagram: its frames, back to back, until one is rejected. */
static void take_datagram(void *ctx, const uint8_t *d, size_t len)
{
	const struct arrival *a = ctx;
	struct ki_lan *l = a->k->lan;
	l->st.datagrams_received++;
	for (size_t at = 0; at < len;) {
		if (len - at > 4 && d[at + 4] == LAN_BATCH_VERSION) {
			int r = take_batch(a, d + at, len - at);
			if (r < 0)
				break;
			at += (size_t)r;
			continue;
		}
		struct lan_frame f;
		int r = ki_lan_frame_decode_keyed(d + at, len - at, &f, &l->keys);
		if (r < 0) {
			count_reject(l, r);
			break;
		}
		if (f.flags & LAN_FLAG_NAK) {
			/* NAKs go to a publisher's own address. */
			l->st.frames_rejected++;
			break;
		}
		l->st.frames_received++;
		take_frame(a->k, &f, a->from, a->now);
		at += (size_t)r;
	}
}

/* Stop or go on reading the socket (the control thread's epoll). */
static void rx_watch(kite *k, int on)
{
	struct epoll_event ev = {.events = on ? EPOLLIN : 0, .data.fd = k->lan->rx};
	epoll_ctl(k->epoll_fd, EPOLL_CTL_MOD, k->lan->rx, &ev);
}

static void rx_pause(kite *k, uint64_t now)
{
	k->lan->rx_paused_ns = now ? now : 1;
	k->lan->st.rx_pauses++;
	rx_watch(k, 0);
}

static void rx_resume(kite *k)
{
	k->lan->rx_paused_ns = 0;
	rx_watch(k, 1);
}

static void lan_receive(kite *k)
{
	struct ki_lan *l = k->lan;
	struct mmsghdr mm[RECV_BATCH];
	struct iovec iov[RECV_BATCH];
	struct sockaddr_in from[RECV_BATCH];
	union {
		char buf[LAN_RX_CONTROL_LEN];
		struct cmsghdr align;
	} ctl[RECV_BATCH];
	for (int round = 0; round < RECV_ROUNDS; round++) {
		if (l->nitems >= QUEUE_PAUSE_ITEMS) {
			uint64_t now = ki_monotonic_ns();
			if (now >= l->rx_nopause_until_ns) {
				rx_pause(k, now);
				return;
			}
		}
		for (int i = 0; i < RECV_BATCH; i++) {
			iov[i] = (struct iovec){l->rxbuf + (size_t)i * RX_STRIDE, RX_SLOT};
			mm[i].msg_hdr = (struct msghdr){
				.msg_name = &from[i], .msg_namelen = sizeof from[i],
				.msg_iov = &iov[i], .msg_iovlen = 1,
				.msg_control = ctl[i].buf, .msg_controllen = sizeof ctl[i].buf};
		}
		int n = recvmmsg(l->rx, mm, RECV_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		uint64_t now = ki_monotonic_ns();
		for (int i = 0; i < n; i++) { /* only the count the call returned */
			note_overflow(l, &mm[i].msg_hdr, &l->ovfl_seen);
			l->rx_hdr = &mm[i].msg_hdr;
			size_t len = mm[i].msg_len;
			if (mm[i].msg_hdr.msg_flags & MSG_TRUNC)
				len = 0; /* larger than any frame: not ours */
			/* One datagram, or (UDP_GRO) several the kernel coalesced. */
			struct arrival a = {k, &from[i], now};
			if (ki_lan_gro_split(iov[i].iov_base, len, ki_lan_gro_size(&mm[i].msg_hdr),
					     take_datagram, &a) > 1)
				l->st.gro_buffers++;
		}
		l->rx_hdr = NULL; /* (mm is ours only here) */
		if (n < RECV_BATCH)
			return;
	}
}

int ki_lan_event(kite *k, int fd)
{
	struct ki_lan *l = k->lan;
	if (!l || (fd != l->rx && fd != l->pack_timer && fd != l->tx))
		return 0;
	if (fd == l->rx) {
		lan_receive(k);
		return 1;
	}
	if (fd == l->tx) {
		nak_receive(k);
		return 1;
	}
	uint64_t expirations;
	if (read(fd, &expirations, sizeof expirations) == sizeof expirations)
		pack_timer_fired(l);
	return 1;
}

/* Repair: ask e's publisher for its gap when due; ns until the next ask
 * (UINT64_MAX: no gap). One NAK carries every gap of the stream, up to
 * LAN_NAK_RANGES_MAX ranges. */
static uint64_t nak_tick(kite *k, struct entry *e, uint64_t now)
{
	struct ki_lan *l = k->lan;
	if (!e->s.gap_since_ns || e->gone) {
		e->nak_due_ns = 0;
		return UINT64_MAX;
	}
	if (e->nak_gap_ns != e->s.gap_since_ns || !e->nak_due_ns) {
		/* A new gap: its first NAK after a short wait for reordering
		 * (the gap dates from its first sighting). */
		e->nak_gap_ns = e->s.gap_since_ns;
		e->nak_due_ns = e->s.gap_since_ns + NAK_DELAY_MS * 1000000ull;
	}
	if (now < e->nak_due_ns)
		return e->nak_due_ns - now;
	struct lan_seq_range r[LAN_NAK_RANGES_MAX];
	size_t n = ki_lan_stream_missing(&e->s, r, LAN_NAK_RANGES_MAX);
	e->nak_due_ns = now + NAK_RETRY_MS * 1000000ull;
	if (!n)
		return NAK_RETRY_MS * 1000000ull;
	struct lan_frame base;
	frame_base(k, &base, e->s.channel, 1, ki_realtime_ns());
	base.publisher = e->s.publisher; /* whom we ask */
	uint8_t buf[LAN_HEADER_MAX + LAN_NAK_RANGES_MAX * sizeof(struct lan_seq_range) + LAN_TAG_LEN];
	int len = ki_lan_nak_encode(buf, sizeof buf, &base, r, n, &l->keys);
	if (len > 0 && sendto(l->tx, buf, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL,
			      (const struct sockaddr *)&e->from, sizeof e->from) == len)
		l->st.naks_sent++;
	return NAK_RETRY_MS * 1000000ull;
}

static int timers(kite *k, uint64_t now);

/* The control thread came back stall_ns later than it asked to: for that
 * long this handle heard nothing, whatever its publishers did (its socket
 * holds, or dropped and counted, what they sent). Their silence is
 * measured from where it was before the stall, so that none is reported
 * gone for the handle's own absence. */
static void forgive_stall(struct ki_lan *l, uint64_t stall_ns, uint64_t now)
{
	for (size_t h = 0; h < HASH_SIZE; h++)
		for (struct entry *e = l->streams[h]; e; e = e->next)
			if (!e->gone && e->s.last_heard_ns) {
				uint64_t t = e->s.last_heard_ns + stall_ns;
				e->s.last_heard_ns = t < now ? t : now;
			}
}

int ki_lan_timers(kite *k)
{
	struct ki_lan *l = k->lan;
	if (!l)
		return -1;
	uint64_t now = ki_monotonic_ns();
	if (l->timers_back_by_ns && now > l->timers_back_by_ns + STALL_MS * 1000000ull)
		forgive_stall(l, now - l->timers_back_by_ns, now);
	int ms = timers(k, now);
	if (l->rx_paused_ns) {
		/* Paused long enough: read for as long, whatever the queue. */
		uint64_t end = l->rx_paused_ns + RX_PAUSE_MAX_MS * 1000000ull;
		if (now >= end) {
			l->rx_nopause_until_ns = now + RX_PAUSE_MAX_MS * 1000000ull;
			rx_resume(k);
		} else {
			int left = (int)((end - now) / 1000000u) + 1;
			if (ms < 0 || left < ms)
				ms = left;
		}
	}
	l->timers_back_by_ns = ms < 0 ? 0 : now + (uint64_t)ms * 1000000ull;
	return ms;
}

static int timers(kite *k, uint64_t now)
{
	struct ki_lan *l = k->lan;
	if (now < l->timers_due_ns) /* (UINT64_MAX: nothing pending at all) */
		return l->timers_due_ns == UINT64_MAX
			       ? -1 : (int)((l->timers_due_ns - now) / 1000000u) + 1;
	send_budget_none(l);
	send_states(k, now, 0);
	uint64_t next = ki_lan_reasm_expire(&l->reasm, now);
	int lingering = 0; /* gone streams kept until kite_recv() took theirs */
	struct lan_sink out = {sink_message, sink_loss, k};
	for (size_t h = 0; h < HASH_SIZE; h++) {
		for (struct pub *p = l->pubs[h]; p; p = p->next)
			if (p->state_due_ns && p->state_due_ns - now < next)
				next = p->state_due_ns > now ? p->state_due_ns - now : 0;
		for (struct entry **pe = &l->streams[h]; *pe;) {
			struct entry *e = *pe;
			if (e->closing_ns && !e->gone && !e->s.gap_since_ns) {
				/* Said goodbye, and repair has done what it could. */
				e->closing_ns = 0;
				ki_lan_stream_flush(&e->s, &out);
				e->gone = 1;
				push_event(k, e, ITEM_GONE, 0);
			}
			if (!e->gone && now - e->s.last_heard_ns >= SILENCE_MS * 1000000ull) {
				/* Its host went quiet: no heartbeat for 3 periods. */
				ki_lan_stream_flush(&e->s, &out);
				e->gone = 1;
				push_event(k, e, ITEM_GONE, 0);
			}
			if (e->gone && (e->queued || e->s.nheld))
				lingering = 1;
			if (e->gone && !e->queued && !e->s.nheld) {
				*pe = e->next;
				if (l->last_entry == e)
					l->last_entry = NULL;
				l->dups_gone += e->s.duplicates;
				l->late_gone += e->s.late;
				/* Heard again, it must not pass for a stream
				 * that began after we listened. */
				ki_lan_listen_forget(&l->listen, e->first_heard_ns);
				ki_lan_stream_clear(&e->s);
				free(e);
				l->nstreams--;
				l->st.streams = l->nstreams;
				continue;
			}
			uint64_t t = ki_lan_stream_tick(&e->s, now, l->reorder_ns, &out);
			if (t < next)
				next = t;
			if (l->spec.repair && (t = nak_tick(k, e, now)) < next)
				next = t;
			if (!e->gone) {
				uint64_t quiet = e->s.last_heard_ns + SILENCE_MS * 1000000ull - now;
				if (quiet < next)
					next = quiet;
			}
			pe = &e->next;
		}
	}
	if (lingering && next > STATE_IDLE_MS * 1000000ull)
		next = STATE_IDLE_MS * 1000000ull; /* look again for their freeing */
	l->timers_due_ns = next == UINT64_MAX ? UINT64_MAX : now + next;
	if (next == UINT64_MAX)
		return -1;
	return (int)(next / 1000000u) + 1;
}

/* The queue is often thousands of items deep (the receive thread reads a
 * burst while the application is behind): by the time an item is popped
 * its lines have left the cache. Fetch the next one's header and, for a
 * small message, its payload after it while the application handles this
 * one (the pops were 13 % of a 64-byte subscriber, mostly these misses). */
static void prefetch_item(const struct item *it)
{
	const char *p = (const char *)it;
	__builtin_prefetch(p);
	__builtin_prefetch(p + 64);
	__builtin_prefetch(p + 128);
}

static void fill(kite_event *ev, const struct item *it)
{
	memset(ev, 0, sizeof *ev);
	ev->msg.channel = it->e->s.channel;
	ev->msg.publisher = it->e->s.publisher;
	ev->msg.pid = (pid_t)it->e->pid;
	ev->msg.uid = (uid_t)-1;
	ev->msg.gid = (gid_t)-1;
	ev->text = "";
}

int ki_lan_pop(kite *k, kite_event *ev)
{
	struct ki_lan *l = k->lan;
	if (!l)
		return 0;
	item_free(l, l->current);
	l->current = NULL;
	struct item *it = l->head;
	if (!it)
		return 0;
	l->head = it->next;
	if (!l->head)
		l->tail = NULL;
	else
		prefetch_item(l->head);
	l->nitems--;
	l->queue_bytes -= it->m.len;
	if (l->rx_paused_ns && l->nitems <= QUEUE_RESUME_ITEMS)
		rx_resume(k);
	if (it->e->loss_item == it)
		it->e->loss_item = NULL;
	l->current = it;
	fill(ev, it);
	switch (it->type) {
	case ITEM_MESSAGE:
		ev->type = KITE_MESSAGE;
		ev->msg.data = it->m.data;
		ev->msg.len = it->m.len;
		ev->msg.seq = it->m.seq;
		ev->msg.timestamp_ns = it->m.timestamp_ns;
		ev->msg.pid = (pid_t)it->m.pid;
		k->stats.received++;
		break;
	case ITEM_LOSS:
		ev->type = KITE_LOSS;
		ev->lost = it->lost;
		k->stats.lost += it->lost;
		break;
	case ITEM_NEW:
		ev->type = KITE_PUBLISHER_NEW;
		ev->text = "publisher on the LAN";
		break;
	case ITEM_GONE:
		ev->type = KITE_PUBLISHER_GONE;
		ev->text = "LAN publisher closed, or its host went silent";
		break;
	}
	return 1;
}

int ki_lan_ready(const kite *k)
{
	return k->lan && k->lan->head;
}

int kite_msg_lan_origin(const kite *k, const kite_msg *m, kite_lan_origin *out)
{
	if (!k || !m || !out)
		return -EINVAL;
	if (ki_forked(k))
		return -ECHILD;
	const struct item *it = k->lan ? k->lan->current : NULL;
	if (!it || m->channel != it->e->s.channel)
		return 0;
	memset(out, 0, sizeof *out);
	out->host = it->e->s.host;
	const struct sockaddr_in *a = it->type == ITEM_MESSAGE ? &it->m.from : &it->e->from;
	inet_ntop(AF_INET, &a->sin_addr, out->address, sizeof out->address);
	out->port = ntohs(a->sin_port);
	out->pid = it->type == ITEM_MESSAGE ? (pid_t)it->m.pid : (pid_t)it->e->pid;
	return 1;
}

int kite_lan_stats_get(const kite *k, kite_lan_stats *out, size_t size)
{
	if (!k || !out)
		return -EINVAL;
	if (ki_forked(k))
		return -ECHILD; /* a child's copy: its lock stays held for good */
	if (!k->lan)
		return -ENOTCONN;
	kite *m = (kite *)(uintptr_t)k;
	kite_lock(m);
	struct ki_lan *l = k->lan;
	kite_lan_stats st = l->st;
	/* Streams count their own; those of streams gone are in the totals. */
	st.duplicates += l->reasm.duplicates;
	st.late = l->late_gone;
	st.duplicates += l->dups_gone;
	for (size_t h = 0; h < HASH_SIZE; h++)
		for (const struct entry *e = l->streams[h]; e; e = e->next) {
			st.duplicates += e->s.duplicates;
			st.late += e->s.late;
		}
	st.partials_dropped = l->reasm.evicted + l->reasm.expired + l->reasm.too_big;
	kite_unlock(m);
	memcpy(out, &st, size < sizeof st ? size : sizeof st);
	return 0;
}
