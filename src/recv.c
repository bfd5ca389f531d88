/* Receiving: queued events first, then the rings, round-robin. A reader
 * that finds nothing spins for a moment (a wake-up across CPUs costs tens
 * of microseconds), then raises its `sleeping` flag, looks once more, and
 * sleeps on its eventfd until a publisher or the control thread writes it. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "shm.h"

static void release_current(kite *k)
{
	if (k->large_map) {
		munmap(k->large_map, k->large_len);
		k->large_map = NULL;
	}
}

static void fill(kite *k, kite_event *ev, enum kite_event_type type,
		 const struct sub_ring *s)
{
	memset(ev, 0, sizeof *ev);
	ev->type = type;
	snprintf(k->current.channel, sizeof k->current.channel, "%s", s->channel);
	ev->msg.channel = k->current.channel;
	ev->msg.publisher = s->publisher;
	ev->msg.pid = s->pid;
	ev->msg.uid = s->uid;
	ev->msg.gid = s->gid;
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
			if (!shm_check(fd, SEALS_FROZEN, len, 0))
				p = shm_map(fd, len, 0);
			close(fd);
			if (p) {
				k->large_map = p;
				k->large_len = len;
			}
			return p;
		}
		/* Its notice is queued on the link before the slot was
		 * committed: read the link now rather than wait for the thread. */
		if (!s->peer || attempt || control_drain(k, s->peer) < 0)
			break;
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

/* One pass over events and rings; 1 if ev was filled. Lock held. */
static int poll_once(kite *k, kite_event *ev)
{
	if (event_pop(k, ev))
		return 1;
	size_t n = k->nsubs;
	for (size_t i = 0; i < n; i++) {
		size_t idx = (k->rr + i) % n;
		struct sub_ring *s = k->subs[idx];
		struct ring_record rec;
		enum ring_result r = ring_read(&s->r, k->msg_buf, &rec);
		if (r == RING_LOST) {
			fill(k, ev, KITE_LOSS, s);
			ev->lost = rec.lost;
			k->stats.lost += rec.lost;
			return 1;
		}
		if (r == RING_MESSAGE) {
			const void *data = k->msg_buf;
			if (rec.flags == SLOT_LARGE) {
				forget_older_large(s, rec.large_id);
				data = rec.len ? map_large(k, s, rec.large_id, rec.len) : k->msg_buf;
				if (!data) {
					fill(k, ev, KITE_LOSS, s);
					ev->lost = 1;
					k->stats.lost++;
					return 1;
				}
			}
			fill(k, ev, KITE_MESSAGE, s);
			ev->msg.data = data;
			ev->msg.len = rec.len;
			ev->msg.seq = rec.seq;
			ev->msg.timestamp_ns = rec.timestamp_ns;
			k->stats.received++;
			k->rr = idx + 1;
			return 1;
		}
		if (s->gone) {
			fill(k, ev, KITE_PUBLISHER_GONE, s);
			snprintf(k->current.text, sizeof k->current.text,
				 "publisher pid %ld closed its link (exited or was killed); "
				 "its %s ring is drained", (long)s->pid, s->channel);
			ev->text = k->current.text;
			sub_ring_free(s);
			k->subs[idx] = k->subs[--k->nsubs];
			return 1;
		}
	}
	return 0;
}

static int attempt(kite *k, kite_event *ev)
{
	kite_lock(k);
	int got = poll_once(k, ev);
	kite_unlock(k);
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

int kite_recv(kite *k, kite_event *ev, int timeout_ms)
{
	kite_lock(k);
	release_current(k);
	kite_unlock(k);
	if (attempt(k, ev))
		return 0;
	uint64_t start = monotonic_ns();
	uint64_t deadline = timeout_ms < 0 ? UINT64_MAX
					   : start + (uint64_t)timeout_ms * 1000000u;
	if (timeout_ms != 0 && k->opt.spin_us != UINT32_MAX) {
		uint64_t spin_end = start + (uint64_t)k->opt.spin_us * 1000u;
		if (spin_end > deadline)
			spin_end = deadline;
		for (unsigned i = 1;; i++) {
			cpu_relax();
			if (attempt(k, ev))
				return 0;
			if (!(i & 15) && monotonic_ns() >= spin_end)
				break;
		}
	}
	for (;;) {
		uint64_t drain;
		ssize_t r = read(k->wake_fd, &drain, sizeof drain);
		(void)r; /* reset the counter; EAGAIN when it was zero */
		atomic_store(&k->waiter->sleeping, 1);
		atomic_thread_fence(memory_order_seq_cst);
		if (attempt(k, ev)) {
			atomic_store_explicit(&k->waiter->sleeping, 0, memory_order_relaxed);
			return 0;
		}
		if (timeout_ms == 0)
			return KITE_EAGAIN; /* left armed: kite_fd() will fire */
		uint64_t now = monotonic_ns();
		if (now >= deadline) {
			atomic_store_explicit(&k->waiter->sleeping, 0, memory_order_relaxed);
			return KITE_ETIMEOUT;
		}
		uint64_t left_ms = (deadline - now + 999999) / 1000000;
		struct pollfd pfd = {.fd = k->wake_fd, .events = POLLIN};
		int rc = poll(&pfd, 1, deadline == UINT64_MAX || left_ms > 60000 ? 60000
										 : (int)left_ms);
		atomic_store_explicit(&k->waiter->sleeping, 0, memory_order_relaxed);
		if (rc < 0)
			return -errno; /* -EINTR lets a signal handler's flag be seen */
		if (attempt(k, ev))
			return 0;
	}
}
