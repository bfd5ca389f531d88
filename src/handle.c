/* Opening and closing a handle: the bus name, the listening socket, the
 * links to peers already there, and the control thread. */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "shm.h"

#define DEFAULT_RING_SLOTS 1024
#define DEFAULT_SLOT_SIZE 2048
#define DEFAULT_SPIN_US 50
#define DEFAULT_HANDSHAKE_MS 1000
#define DEFAULT_IDLE_MS 10000

/* The application's threads count themselves while they wait for the
 * state, so that the control thread hands it over between two pieces of
 * work instead of taking it straight back (a mutex is not fair). */
void kite_lock(kite *k)
{
	if (pthread_mutex_trylock(&k->lock) == 0)
		return;
	atomic_fetch_add(&k->app_waiting, 1);
	pthread_mutex_lock(&k->lock);
	atomic_fetch_sub(&k->app_waiting, 1);
}
void kite_unlock(kite *k) { pthread_mutex_unlock(&k->lock); }

/* A biased lock. Unlocking a mutex is a locked instruction, which waits
 * for the publisher's slot stores to leave the store buffer: that alone
 * cost more than the rest of a publish. The application's thread instead
 * raises app_active and checks ctl_wants with plain loads and stores; the
 * control thread (rare) raises ctl_wants, forces a barrier on our threads
 * with membarrier(PRIVATE_EXPEDITED), and waits for app_active to drop.
 * One of the two always sees the other (Dekker, with the fence paid by the
 * rare side only). Without membarrier, everything takes the mutex. */
int ki_app_enter(kite *k)
{
	if (k->biased) {
		atomic_store_explicit(&k->app_active, 1, memory_order_relaxed);
		atomic_signal_fence(memory_order_seq_cst);
		if (!atomic_load_explicit(&k->ctl_wants, memory_order_acquire))
			return 0;
		atomic_store_explicit(&k->app_active, 0, memory_order_release);
	}
	kite_lock(k);
	return 1;
}

void ki_app_exit(kite *k, int locked)
{
	if (locked)
		kite_unlock(k);
	else
		atomic_store_explicit(&k->app_active, 0, memory_order_release);
}

void ki_control_enter(kite *k)
{
	pthread_mutex_lock(&k->lock);
	if (!k->biased)
		return;
	atomic_store_explicit(&k->ctl_wants, 1, memory_order_relaxed);
	ki_barrier_private();
	while (atomic_load_explicit(&k->app_active, memory_order_acquire))
		sched_yield();
}

void ki_control_exit(kite *k)
{
	if (k->biased)
		atomic_store_explicit(&k->ctl_wants, 0, memory_order_release);
	kite_unlock(k);
}

void ki_control_yield(kite *k)
{
	if (!atomic_load(&k->app_waiting))
		return;
	ki_control_exit(k);
	/* Let the waiting thread take the lock first (bounded: a thread that
	 * never gets scheduled must not stop us for long). */
	for (int i = 0; i < 1000 && atomic_load(&k->app_waiting); i++)
		sched_yield();
	ki_control_enter(k);
}

int ki_bus_valid(const char *bus)
{
	size_t n = strlen(bus);
	if (n == 0 || n > BUS_MAX)
		return 0;
	for (const char *c = bus; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '_' || *c == '-' || *c == '.'))
			return 0;
	return 1;
}

/* The layout programs were built against (python/kite/_lib.py mirrors it). */
_Static_assert(sizeof(kite_options) == 72, "kite_options changed size");

static int take_options(kite *k, const kite_options *o)
{
	kite_options d = {0};
	if (o)
		d = *o;
	if (!d.ring_slots)
		d.ring_slots = DEFAULT_RING_SLOTS;
	if (!d.slot_size)
		d.slot_size = DEFAULT_SLOT_SIZE;
	if (!d.spin_us)
		d.spin_us = DEFAULT_SPIN_US;
	if (!d.handshake_ms)
		d.handshake_ms = DEFAULT_HANDSHAKE_MS;
	if (!d.idle_ms)
		d.idle_ms = DEFAULT_IDLE_MS;
	if (!d.reliable_deadline_ms)
		d.reliable_deadline_ms = DEFAULT_RELIABLE_DEADLINE_MS;
	if (d.reliable_deadline_ms > RELIABLE_DEADLINE_MAX_MS)
		return -EINVAL; /* no subscriber may hold a publisher longer */
	/* A reserved field set is an option this version does not know: say so
	 * rather than ignore what the caller asked for. */
	for (size_t i = 0; i < sizeof d.reserved / sizeof d.reserved[0]; i++)
		if (d.reserved[i])
			return -EINVAL;
	if (d.reserved32)
		return -EINVAL;
	/* A ring no subscriber would map (they refuse it, each at the first
	 * message) is an option out of range, told here. */
	size_t ring_bytes;
	if (ki_ring_geometry_valid(d.ring_slots, d.slot_size, &ring_bytes) ||
	    ring_bytes > RING_ACCEPT_MAX)
		return -EINVAL;
	const char *bus = d.bus && *d.bus ? d.bus : getenv("KITE_BUS");
	if (!bus || !*bus)
		bus = "default";
	if (!ki_bus_valid(bus))
		return -EINVAL;
	snprintf(k->bus, sizeof k->bus, "%s", bus);
	d.bus = k->bus;
	k->opt = d;
	return 0;
}

static int open_endpoints(kite *k)
{
	if (getrandom(&k->id, sizeof k->id, 0) != sizeof k->id)
		return -errno;
	if (!k->id)
		k->id = 1;
	/* Wake-ups travel as datagrams: publishers send with MSG_DONTWAIT, so
	 * nothing we or they set on the shared socket makes them wait. */
	int pair[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) < 0)
		return -errno;
	k->wake_fd = pair[0];
	k->wake_tx = pair[1];
	k->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	k->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (k->stop_fd < 0 || k->epoll_fd < 0)
		return -errno;
	k->waiter_fd = ki_shm_create("kite-waiter", 4096);
	if (k->waiter_fd < 0)
		return k->waiter_fd;
	int rc = ki_shm_seal(k->waiter_fd, SEALS_WAITER);
	if (rc)
		return rc;
	if (!(k->waiter = ki_shm_map(k->waiter_fd, 4096, 1)))
		return -errno;
	atomic_store(&k->waiter->needs_fence, 1);
	k->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (k->listen_fd < 0)
		return -errno;
	struct sockaddr_un sa;
	socklen_t sl = ki_bus_address(k->bus, k->id, &sa);
	if (bind(k->listen_fd, (struct sockaddr *)&sa, sl) < 0 ||
	    listen(k->listen_fd, 256) < 0)
		return -errno;
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = k->listen_fd};
	if (epoll_ctl(k->epoll_fd, EPOLL_CTL_ADD, k->listen_fd, &ev) < 0)
		return -errno;
	ev.data.fd = k->stop_fd;
	if (epoll_ctl(k->epoll_fd, EPOLL_CTL_ADD, k->stop_fd, &ev) < 0)
		return -errno;
	k->msg_buf_size = k->opt.slot_size;
	if (!(k->msg_buf = malloc(k->msg_buf_size)))
		return -ENOMEM;
	return 0;
}

static int start_thread(kite *k)
{
	/* Signals belong to the application's threads, never to ours. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&k->thread, NULL, ki_control_thread, k);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		return -rc;
	k->thread_started = 1;
	return 0;
}

static int handshakes_pending(const kite *k)
{
	for (const struct peer *p = k->peers; p; p = p->next)
		if (p->awaited && !p->synced && !p->closing && !p->eof)
			return 1;
	return 0;
}

static void wait_handshakes(kite *k)
{
	struct timespec deadline;
	ki_deadline_after_ms(&deadline, k->opt.handshake_ms);
	kite_lock(k);
	while (handshakes_pending(k) &&
	       pthread_cond_timedwait(&k->cond, &k->lock, &deadline) != ETIMEDOUT)
		;
	kite_unlock(k);
}

int kite_open(kite **out, const kite_options *opts)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	kite *k = calloc(1, sizeof *k);
	if (!k)
		return -ENOMEM;
	ki_fork_watch();
	k->fork_gen = atomic_load(&ki_fork_gen);
	k->wake_fd = k->wake_tx = k->stop_fd = k->epoll_fd = k->listen_fd =
		k->waiter_fd = k->heads_fd = k->positions_fd = -1;
	k->euid = geteuid();
	k->clock_id = ki_monotonic_clock_id();
	k->light_publish = k->can_membarrier = ki_barrier_setup();
	ki_stamp_init(&k->stamp);
	k->biased = ki_barrier_private_setup();
	pthread_mutex_init(&k->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&k->cond, &ca);
	pthread_condattr_destroy(&ca);
	int rc = take_options(k, opts);
	if (!rc)
		rc = open_endpoints(k);
	if (!rc)
		rc = ki_lan_open(k, k->opt.lan);
	k->opt.lan = NULL; /* the caller's string: not kept */
	if (!rc) {
		kite_lock(k);
		rc = ki_peer_connect_existing(k);
		kite_unlock(k);
	}
	if (!rc)
		rc = start_thread(k);
	if (!rc && (rc = ki_fork_register(k)) == 0)
		k->registered = 1;
	if (rc) {
		kite_close(k);
		return rc;
	}
	wait_handshakes(k);
	*out = k;
	return 0;
}

/* Tell every peer we are closing (not a broken link: our rings end), and
 * give what is queued for them a bounded time to leave. */
static void say_goodbye(kite *k)
{
	kite_lock(k);
	k->closing = 1;
	struct wire_msg bye;
	ki_wire_init(&bye, W_BYE);
	for (struct peer *p = k->peers; p; p = p->next)
		if (p->hello && !p->closing)
			ki_peer_send(k, p, &bye);
	struct timespec deadline;
	ki_deadline_after_ms(&deadline, CLOSE_FLUSH_MS);
	for (;;) {
		int queued = 0;
		for (struct peer *p = k->peers; p && !queued; p = p->next)
			queued = p->q_head && !p->send_dead;
		if (!queued || pthread_cond_timedwait(&k->cond, &k->lock, &deadline) == ETIMEDOUT)
			break;
	}
	kite_unlock(k);
}

static void free_state(kite *k)
{
	for (size_t i = 0; i < k->pub_hash_size; i++)
		for (struct pub_ring *r = k->pub_hash[i], *n; r; r = n) {
			n = r->hash_next;
			ki_pub_ring_free(r);
		}
	free(k->pub_hash);
	for (size_t i = 0; i < k->nsubs; i++)
		ki_sub_ring_free(k->subs[i]);
	free(k->subs);
	while (k->relinks) {
		struct relink *r = k->relinks;
		k->relinks = r->next;
		if (r->pidfd >= 0)
			close(r->pidfd);
		ki_ho_unmap(&r->ho);
		ki_ho_out_free(&r->ho_out);
		ki_strlist_free(&r->patterns, &r->npatterns);
		free(r);
	}
	ki_strlist_free(&k->patterns, &k->npatterns);
	ki_pos_free(k);
	free(k->pattern_gen);
	free(k->pattern_replay);
	free(k->ring_rules);
	free(k->rules);
	free(k->fd_shares); /* (empty: every queue is cleared by now) */
	if (k->large_map)
		munmap(k->large_map, k->large_len);
	free(k->msg_buf);
	if (k->waiter)
		munmap(k->waiter, 4096);
	if (k->heads)
		munmap((void *)k->heads, HEADS_BYTES);
	int fds[] = {k->wake_fd, k->wake_tx, k->stop_fd, k->epoll_fd, k->listen_fd,
		     k->waiter_fd, k->heads_fd};
	for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* A child's copy: its sockets and epoll set are the parent's too, so
 * nothing may be sent, shut down or unregistered; only our descriptors
 * and memory go. (The lock may be held by the parent's thread: not taken.) */
static void release_forked_copy(kite *k)
{
	for (struct peer *p = k->peers, *n; p; p = n) {
		n = p->next;
		ki_peer_free(k, p);
	}
	ki_lan_close(k, 0);
	free_state(k);
	free(k);
}

void kite_close(kite *k)
{
	if (!k)
		return;
	if (ki_forked(k)) {
		release_forked_copy(k);
		return;
	}
	if (k->registered)
		ki_fork_unregister(k);
	if (k->thread_started) {
		say_goodbye(k);
		uint64_t stop = CONTROL_STOP;
		ssize_t w = write(k->stop_fd, &stop, sizeof stop);
		(void)w;
		pthread_join(k->thread, NULL);
	}
	ki_lan_close(k, 1);
	while (k->peers)
		ki_peer_drop(k, k->peers);
	free_state(k);
	pthread_cond_destroy(&k->cond);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

int kite_fd(const kite *k) { return k ? k->wake_fd : -EINVAL; }

uint64_t kite_id(const kite *k) { return k ? k->id : 0; }

void kite_get_stats(const kite *k, kite_stats *out)
{
	if (!out)
		return;
	if (!k || ki_forked(k)) { /* a child's copy: its lock may be held */
		memset(out, 0, sizeof *out);
		if (k)
			*out = k->stats;
		return;
	}
	kite *m = (kite *)(uintptr_t)k;
	kite_lock(m);
	*out = k->stats;
	kite_unlock(m);
}
