/* Receiving: queued events first, then the rings, round-robin. A reader
 * that finds nothing spins for a moment (a wake-up across CPUs costs tens
 * of microseconds), then raises its `sleeping` flag, looks once more, and
 * sleeps on its eventfd until a publisher or the control thread writes it. */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "origin.h"
#include "shm.h"


/* Free what the previous event pointed into: a large message's mapping,
 * rings that were unsubscribed or whose publisher has gone and was
 * reported. */
static void release_previous(kite *k)
{
	if (k->large_map) {
		munmap(k->large_map, k->large_len);
		k->large_map = NULL;
	}
	if (!k->retired)
		return;
	for (size_t i = 0; i < k->nsubs;)
		if (k->subs[i]->unsubscribed) {
			ki_pos_release(k, k->subs[i]);
			ki_sub_ring_free(k->subs[i]);
			k->subs[i] = k->subs[--k->nsubs];
		} else {
			/* Still read, but its reliable pattern went: radio now
			 * (its slot is let go here, by the thread that writes it). */
			if (!ki_pos_is_reliable(k, k->subs[i]->channel))
				ki_pos_release(k, k->subs[i]);
			i++;
		}
	k->retired = 0;
}

static void fill(kite_event *ev, enum kite_event_type type,
		 const struct sub_ring *s)
{
	/* The ring outlives this event: kite_unsubscribe() only marks it, and
	 * the next kite_recv() frees it. */
	ev->type = type;
	ev->msg.channel = s->channel;
	ev->msg.data = NULL;
	ev->msg.len = 0;
	ev->msg.seq = 0;
	ev->msg.timestamp_ns = 0;
	ev->lost = 0;
	ev->refused_by_peer = 0;
	ev->msg.publisher = s->publisher;
	ev->msg.pid = s->pid;
	ev->msg.uid = s->uid;
	ev->msg.gid = s->gid;
	ev->msg.origin = NULL;
	ev->text = "";
}

/* Find, map and release the memfd a large slot names; NULL if it never
 * arrived (its sender could not queue it) or fails validation. */
static const void *map_large(kite *k, struct sub_ring *s, uint64_t large_id,
			     size_t len)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		for (int i = 0; i < s->nlarge; i++) {
			if (s->large[i].large_id != large_id)
				continue;
			int fd = s->large[i].fd;
			s->large[i] = s->large[--s->nlarge];
			void *p = NULL;
			if (!ki_shm_check(fd, SEALS_FROZEN, len, 0))
				p = ki_shm_map(fd, len, 0);
			close(fd);
			if (p) {
				k->large_map = p;
				k->large_len = len;
			}
			return p;
		}
		/* Its notice is queued on the link before the slot was
		 * committed: read the link now rather than wait for the thread.
		 * A drain that ends in the publisher's hang-up has still stored
		 * what was queued before it: look again either way. */
		if (!s->peer || attempt)
			break;
		ki_control_drain(k, s->peer, 1024);
	}
	return NULL;
}

/* Drop large fds older than the slot just read: their slots were overrun. */
static void forget_older_large(struct sub_ring *s, uint64_t large_id)
{
	for (int i = 0; i < s->nlarge;)
		if (s->large[i].large_id < large_id) {
			close(s->large[i].fd);
			s->large[i] = s->large[--s->nlarge];
		} else {
			i++;
		}
}

/* A ring its publisher released after an idle spell, read to its end:
 * unmap it, and let the next ring of the stream (if one came) be read.
 * 1 if ev was filled (a gap the publisher's account of the end shows). */
static int end_released(kite *k, struct sub_ring *s, kite_event *ev)
{
	uint64_t lost = s->r.next <= s->end_seq ? s->end_seq + 1 - s->r.next : 0;
	if (lost) /* never backwards: an end below what we read is a lie */
		s->r.next = s->end_seq + 1;
	s->retiring = 0;
	s->dormant = 1;
	ki_sub_ring_unmap(s);
	ki_pos_release(k, s);
	struct sub_ring *next = ki_sub_successor(k, s);
	/* The stream's loss count (kite ls/top) goes on with its next ring. */
	struct sub_ring *stream = next ? next : s;
	if (next) {
		next->blocked = 0;
		next->lost += s->lost;
		s->lost = 0;
		ki_sub_join(next, s->r.next);
		s->unsubscribed = 1; /* freed by the next kite_recv() */
		k->retired = 1;
	}
	if (!lost)
		return 0;
	/* Its publisher said the stream went on beyond this ring's end: a later
	 * ring we never got (released while our link was being made again, see
	 * ki_sub_ring_end), or a liar, whose messages are all it can spoil. */
	fill(ev, KITE_LOSS, s);
	ev->lost = lost;
	k->stats.lost += lost;
	stream->lost += lost;
	return 1;
}

static void choose_barrier(kite *k);
#define BUSY_STREAK 256 /* messages between two arms: busy */

/* One pass over events and rings; 1 if ev was filled. Lock held. Only
 * kite_recv calls it, after the previous event's pointers were released. */
static int poll_once(kite *k, kite_event *ev)
{
	if (k->msg_buf_want > k->msg_buf_size) {
		uint8_t *b = realloc(k->msg_buf, k->msg_buf_want);
		if (b) {
			k->msg_buf = b;
			k->msg_buf_size = k->msg_buf_want;
		}
	}
	/* (Looked at here first: a call each per message adds up.) */
	if (k->ev_count && ki_event_pop(k, ev))
		return 1;
	if (k->lan && ki_lan_pop(k, ev))
		return 1;
	size_t n = k->nsubs;
	/* Where the last call stopped, the ring after the one it read (no
	 * division but after an unsubscribe). */
	size_t idx = k->rr < n ? k->rr : k->rr == n || !n ? 0 : k->rr % n;
	for (size_t i = 0; i < n; i++, idx = idx + 1 < n ? idx + 1 : 0) {
		struct sub_ring *s = k->subs[idx];
		struct ring_record rec;
		if (s->unsubscribed || s->blocked ||
		    (s->r.base && s->r.read_max > k->msg_buf_size))
			continue; /* (the last: no memory to grow the buffer yet) */
		if (s->announce) {
			s->announce = 0;
			fill(ev, KITE_PUBLISHER_NEW, s);
			snprintf(k->current.text, sizeof k->current.text,
				 "publisher pid %ld uid %u attached from seq %llu",
				 (long)s->pid, (unsigned)s->uid,
				 (unsigned long long)(s->r.next - s->pending_lost));
			ev->text = k->current.text;
			return 1;
		}
		if (s->pending_lost) {
			fill(ev, KITE_LOSS, s);
			ev->lost = s->pending_lost;
			k->stats.lost += s->pending_lost;
			s->lost += s->pending_lost;
			s->pending_lost = 0;
			k->rr = idx + 1;
			return 1;
		}
		enum ring_result r = s->r.base ? ki_ring_read(&s->r, k->msg_buf, &rec)
					       : RING_EMPTY;
		if (r != RING_EMPTY) /* (reliable: the publisher may go on) */
			ki_pos_store(k, s);
		if (r == RING_EMPTY && s->retiring) {
			if (end_released(k, s, ev)) {
				k->rr = idx + 1;
				return 1;
			}
			/* Its successor carries the stream on, and reports its
			 * end (GONE) once it is drained in turn. */
			if (s->unsubscribed)
				continue;
		}
		if (r == RING_LOST) {
			fill(ev, KITE_LOSS, s);
			ev->lost = rec.lost;
			k->stats.lost += rec.lost;
			s->lost += rec.lost;
			k->rr = idx + 1; /* a ring that only loses must not starve the rest */
			return 1;
		}
		if (r == RING_MESSAGE) {
			/* An origin block starts the message: inline, it is the
			 * record's metadata, in front of the payload in msg_buf. */
			int origin = rec.flags & REC_ORIGIN;
			const void *data = k->msg_buf + (origin ? 0 : rec.meta_len);
			size_t len = rec.len + (origin ? rec.meta_len : 0);
			if (rec.flags & REC_LARGE) {
				/* The whole message, any origin block included, is
				 * in the memfd: the record's metadata is not part
				 * of it. */
				len = rec.len;
				forget_older_large(s, rec.large_id);
				data = rec.len ? map_large(k, s, rec.large_id, rec.len) : data;
				if (!data) {
					fill(ev, KITE_LOSS, s);
					ev->lost = 1;
					k->stats.lost++;
					s->lost++;
					k->rr = idx + 1;
					return 1;
				}
			}
			int64_t block = 0;
			if (origin &&
			    (block = ki_origin_decode(data, len, &k->origin)) < 0) {
				/* A lying origin block spoils its own message only. */
				fill(ev, KITE_LOSS, s);
				ev->lost = 1;
				ev->text = "malformed origin block";
				k->stats.lost++;
				s->lost++;
				k->rr = idx + 1;
				return 1;
			}
			fill(ev, KITE_MESSAGE, s);
			ev->msg.data = (const uint8_t *)data + block;
			ev->msg.len = len - (size_t)block;
			ev->msg.origin = block ? &k->origin : NULL;
			ev->msg.seq = rec.seq;
			ev->msg.timestamp_ns = rec.timestamp_ns;
			k->stats.received++;
			if (++k->since_arm == BUSY_STREAK && !k->strict)
				choose_barrier(k); /* busy: spare the publishers their fence */
			k->rr = idx + 1;
			return 1;
		}
		if (s->gone && ki_sub_stream_head(s) >= s->r.next) {
			/* Its publisher went before the stream's next ring
			 * (or its end) reached us: what that held is lost. */
			uint64_t head = ki_sub_stream_head(s);
			fill(ev, KITE_LOSS, s);
			ev->lost = head + 1 - s->r.next;
			k->stats.lost += ev->lost;
			s->lost += ev->lost;
			s->r.next = head + 1;
			k->rr = idx + 1;
			return 1;
		}
		if (s->gone) {
			/* Drained: say so, and free it on the next call. */
			fill(ev, KITE_PUBLISHER_GONE, s);
			snprintf(k->current.text, sizeof k->current.text,
				 "publisher pid %ld closed its handle or exited; "
				 "its %s ring is drained", (long)s->pid, s->channel);
			ev->text = k->current.text;
			s->unsubscribed = 1;
			k->retired = 1;
			return 1;
		}
	}
	return 0;
}

static int attempt(kite *k, kite_event *ev)
{
	int locked = ki_app_enter(k);
	int got = poll_once(k, ev);
	ki_app_exit(k, locked);
	return got;
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

/* A subscriber that was taking messages back to back (SLIP_STREAK calls of
 * kite_recv in a row found one at once) and now finds none has caught up
 * with a publisher that is most likely still writing. Looking again at
 * once reads the very cache lines the publisher is writing: each look
 * pulls them to this CPU and each store of the publisher's pulls them
 * back, and the pair falls into a lock-step at about half the pace either
 * side keeps alone. So it first waits SLIP_NS without looking (within its
 * spin, never past it): the publisher moves a few hundred records ahead,
 * and the reader then takes lines the publisher is done with. Only a
 * spinning reader that was behind its publisher pays it: a round trip,
 * or any message that finds its reader waiting, never does. (64 B 1->1,
 * 16 interleaved runs: medians 11.7 -> 16.0 M/s, the slowest run 10.1 ->
 * 14.8; 2 us gave 14.8, 10 us 16.3.) */
#define SLIP_STREAK 64
#define SLIP_NS 5000u
static void slip(uint64_t until)
{
	while (ki_monotonic_ns() < until)
		cpu_relax();
}

static void disarm(kite *k)
{
	/* Only write our flag's line when it is set: publishers read it. */
	if (atomic_load_explicit(&k->waiter->sleeping, memory_order_relaxed))
		atomic_store_explicit(&k->waiter->sleeping, 0, memory_order_relaxed);
}

/* Who pays for the barrier between a publisher's message and its read of
 * our `sleeping` flag: the publisher, a fence per message (cheap while we
 * sleep often, as few messages come), or we, a membarrier() per sleep (cheap
 * while we are busy and seldom sleep). We switch with our traffic. */
#define QUIET_ARMS 8    /* arms in a row after few messages: quiet */

static void choose_barrier(kite *k)
{
	if (!k->can_membarrier)
		return;
	if (!k->strict) {
		if (k->since_arm >= BUSY_STREAK) {
			/* Publishers may drop the fence from now on; a stale read of
			 * the old value only costs them a fence. */
			atomic_store(&k->waiter->needs_fence, 0);
			k->strict = 1;
			k->quiet_arms = 0;
		}
		return;
	}
	k->quiet_arms = k->since_arm < BUSY_STREAK / 16 ? k->quiet_arms + 1 : 0;
	if (k->quiet_arms >= QUIET_ARMS) {
		/* Back to publisher fences: this arm's membarrier() still runs,
		 * and after it every publisher reads needs_fence = 1. */
		atomic_store(&k->waiter->needs_fence, 1);
		k->strict = 0;
		ki_barrier_heavy();
	}
}

/* Empty the wake-up socket: each datagram is one wake-up already seen. */
static void drain_wakeups(kite *k)
{
	char buf[64];
	struct mmsghdr mm[16];
	struct iovec iov[16];
	for (int i = 0; i < 16; i++) {
		iov[i] = (struct iovec){buf, sizeof buf};
		mm[i].msg_hdr = (struct msghdr){.msg_iov = &iov[i], .msg_iovlen = 1};
	}
	while (recvmmsg(k->wake_fd, mm, 16, MSG_DONTWAIT, NULL) == 16)
		;
}

/* kite_arm(); *relinking says whether some publisher's link is being made
 * again (it cannot wake us until it is back). */
static int arm(kite *k, int *relinking)
{
	drain_wakeups(k);
	choose_barrier(k);
	k->since_arm = 0;
	atomic_store(&k->waiter->sleeping, 1);
	/* Pairs with wake_sleepers(): see barrier.c. */
	if (k->strict)
		ki_barrier_heavy();
	atomic_thread_fence(memory_order_seq_cst);
	int locked = ki_app_enter(k);
	int ready = k->ev_count > 0 || ki_lan_ready(k);
	*relinking = 0;
	for (size_t i = 0; i < k->nsubs; i++) {
		const struct sub_ring *s = k->subs[i];
		ready |= !s->unsubscribed && !s->blocked &&
			 ((s->r.base && ki_ring_pending(&s->r)) || s->retiring ||
			  s->gone || s->announce || s->pending_lost);
		*relinking |= s->relinking;
	}
	ki_app_exit(k, locked);
	if (ready)
		disarm(k);
	return ready;
}

int kite_arm(kite *k)
{
	if (!k)
		return -EINVAL;
	if (ki_forked(k))
		return -ECHILD;
	int relinking;
	return arm(k, &relinking);
}

int kite_recv(kite *k, kite_event *ev, int timeout_ms)
{
	if (!k || !ev)
		return -EINVAL;
	if (ki_forked(k))
		return -ECHILD;
	int locked = ki_app_enter(k);
	release_previous(k);
	int got = poll_once(k, ev);
	ki_app_exit(k, locked);
	if (got) {
		k->streak += k->streak < SLIP_STREAK;
		return 0;
	}
	/* Any look that finds nothing ends a streak, a pure poll's too: a
	 * reader that polls until empty and then waits with a timeout has not
	 * just caught up with a publisher still writing. */
	int caught_up = k->streak >= SLIP_STREAK;
	k->streak = 0;
	if (timeout_ms == 0)
		return -EAGAIN; /* a pure poll: no system call, nothing armed */
	/* The clock is read once nothing came for a few looks: a spinner that
	 * keeps finding messages soon never reads it (the timeout starts that
	 * much later: a microsecond or two). */
	uint64_t start = 0, deadline = UINT64_MAX;
	if (k->opt.spin_us != UINT32_MAX) {
		uint64_t spin_end = UINT64_MAX;
		for (unsigned i = 1;; i++) {
			if (caught_up) {
				i = 16; /* the clock is read now */
			} else {
				cpu_relax();
				if (attempt(k, ev))
					return 0;
				if (i & 15)
					continue;
			}
			uint64_t now = ki_monotonic_ns();
			if (!start) {
				start = now;
				if (timeout_ms > 0)
					deadline = start + (uint64_t)timeout_ms * 1000000u;
				spin_end = start + (uint64_t)k->opt.spin_us * 1000u;
				if (spin_end > deadline)
					spin_end = deadline;
			}
			if (caught_up) {
				caught_up = 0;
				slip(start + SLIP_NS < spin_end ? start + SLIP_NS : spin_end);
				continue;
			}
			if (now >= spin_end)
				break;
			/* Spinners sharing a CPU: let the others run now and then
			 * (a no-op system call when nobody else wants the CPU). */
			if (!(i & 255))
				sched_yield();
		}
	}
	if (!start && timeout_ms > 0)
		deadline = ki_monotonic_ns() + (uint64_t)timeout_ms * 1000000u;
	for (int unarmed = 0;;) {
		int relinking;
		int armed = arm(k, &relinking) == 0;
		if (!armed) {
			/* Something looked ready: take it. A ring that keeps saying
			 * so without delivering (a liar) gets short naps, never an
			 * unarmed long sleep. */
			if (attempt(k, ev))
				return 0;
			if (++unarmed < 3)
				continue;
		}
		unarmed = 0;
		uint64_t now = ki_monotonic_ns();
		if (now >= deadline) {
			disarm(k);
			return -ETIMEDOUT;
		}
		uint64_t left_ms = (deadline - now + 999999) / 1000000;
		struct pollfd pfd = {.fd = k->wake_fd, .events = POLLIN};
		/* A publisher whose link is being made again cannot wake us
		 * yet: look at its rings every few milliseconds meanwhile. */
		int cap = !armed ? 1 : relinking ? 5 : 60000;
		int rc = poll(&pfd, 1, left_ms > (uint64_t)cap ? cap : (int)left_ms);
		disarm(k);
		if (rc < 0)
			return -errno; /* -EINTR lets a signal handler's flag be seen */
		if (attempt(k, ev))
			return 0;
	}
}
