/* The bridge's one thread, serving the local bus and the NATS socket.
 *
 * Given an external event loop (natsOptions_SetEventLoop), libnats starts
 * no reader thread: it asks, through the four callbacks below, for its
 * socket to be watched for reading or writing, and we call
 * natsConnection_ProcessReadEvent/ProcessWriteEvent when it is ready. With
 * "send asap" as well it starts no flusher thread either: a publish only
 * appends to its buffer and asks for a write event. Messages then cross no
 * thread on their way through the bridge, which measured as most of its
 * cost (cli/bridge/README.md). libnats's own threads (reconnection, pings,
 * a closing connection) may call the callbacks too: they change the state
 * under a lock and wake the loop through an eventfd. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bridge.h"
#include "cli.h"

/* Another thread changed what the loop watches: wake its poll. */
static void wake(struct bridge_loop *l)
{
	if (!pthread_equal(pthread_self(), l->owner)) {
		uint64_t one = 1;
		if (write(l->wake, &one, sizeof one) < 0) {
			/* Only EAGAIN (the counter is full) is possible: the loop
			 * has a wake-up pending already. */
		}
	}
}

static natsStatus on_attach(void **user, void *loop, natsConnection *nc, natsSock fd)
{
	struct bridge_loop *l = loop;
	pthread_mutex_lock(&l->mu);
	l->nc = nc;
	l->fd = (int)fd;
	l->want_read = true;
	l->want_write = false;
	l->progress_ms = now_ms();
	pthread_mutex_unlock(&l->mu);
	*user = l;
	wake(l);
	return NATS_OK;
}

static natsStatus on_read(void *user, bool add)
{
	struct bridge_loop *l = user;
	pthread_mutex_lock(&l->mu);
	l->want_read = add;
	pthread_mutex_unlock(&l->mu);
	wake(l);
	return NATS_OK;
}

static natsStatus on_write(void *user, bool add)
{
	struct bridge_loop *l = user;
	pthread_mutex_lock(&l->mu);
	if (add && !l->want_write)
		l->progress_ms = now_ms(); /* the write deadline starts now */
	l->want_write = add;
	pthread_mutex_unlock(&l->mu);
	wake(l);
	return NATS_OK;
}

static natsStatus on_detach(void *user)
{
	struct bridge_loop *l = user;
	pthread_mutex_lock(&l->mu);
	l->fd = -1;
	l->want_read = l->want_write = false;
	pthread_mutex_unlock(&l->mu);
	wake(l);
	return NATS_OK;
}

int bridge_loop_init(struct bridge_loop *l)
{
	pthread_mutex_init(&l->mu, NULL);
	l->fd = -1;
	l->owner = pthread_self();
	l->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->wake < 0) {
		fprintf(stderr, "kite bridge: eventfd: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

void bridge_loop_close(struct bridge_loop *l)
{
	if (l->wake >= 0)
		close(l->wake);
	l->wake = -1;
}

natsStatus bridge_loop_options(struct bridge_loop *l, natsOptions *o)
{
	natsStatus s = natsOptions_SetEventLoop(o, l, on_attach, on_read, on_write, on_detach);
	if (s == NATS_OK)
		s = natsOptions_SetSendAsap(o, true);
	return s;
}

/* Write what libnats holds; a server that has taken nothing for the write
 * deadline while we had something to send (stopped, or its link dead) is
 * cut off: libnats reads the shut socket's end, reports the disconnect
 * and reconnects, as it does itself without an event loop. */
static void write_out(struct bridge *b)
{
	struct bridge_loop *l = &b->loop;
	int before = natsConnection_Buffered(l->nc);
	natsConnection_ProcessWriteEvent(l->nc);
	int after = natsConnection_Buffered(l->nc);
	int64_t now = now_ms();
	pthread_mutex_lock(&l->mu);
	if (after < before || after <= 0)
		l->progress_ms = now;
	/* Under the lock: libnats stops the read watch (on_read) before it
	 * closes a socket, so while want_read holds, fd is still its own. */
	int stuck = l->want_write && l->want_read && l->fd >= 0 &&
		    now - l->progress_ms >= b->cfg.write_deadline_ms;
	if (stuck) {
		l->progress_ms = now; /* once per deadline */
		shutdown(l->fd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&l->mu);
	if (stuck)
		fprintf(stderr, "kite bridge: %s took no data for %lld ms; reconnecting\n",
			b->cfg.url, (long long)b->cfg.write_deadline_ms);
}

void bridge_loop_flush_out(struct bridge *b)
{
	struct bridge_loop *l = &b->loop;
	pthread_mutex_lock(&l->mu);
	int want = l->want_write && l->fd >= 0;
	pthread_mutex_unlock(&l->mu);
	if (want)
		write_out(b);
}

int bridge_loop_wait(struct bridge *b, int kite_fd, int signal_fd, int timeout_ms)
{
	struct bridge_loop *l = &b->loop;
	pthread_mutex_lock(&l->mu);
	int fd = l->fd;
	short nats_events = (short)((l->want_read ? POLLIN : 0) | (l->want_write ? POLLOUT : 0));
	if (l->want_write && timeout_ms > (int)b->cfg.write_deadline_ms)
		timeout_ms = (int)b->cfg.write_deadline_ms;
	pthread_mutex_unlock(&l->mu);
	struct pollfd p[4] = {
		{.fd = l->wake, .events = POLLIN},
		{.fd = nats_events ? fd : -1, .events = nats_events},
		{.fd = signal_fd, .events = POLLIN},
		{.fd = kite_fd, .events = POLLIN},
	};
	int rc = poll(p, 4, timeout_ms);
	if (rc < 0)
		return errno == EINTR ? 0 : -errno;
	if (p[0].revents) {
		uint64_t n;
		if (read(l->wake, &n, sizeof n) < 0) {
			/* EAGAIN: another wake-up took it first; nothing lost. */
		}
	}
	/* Read first: a closed socket is seen by the read, which makes
	 * libnats reconnect; writing to it first would only fail. */
	if (p[1].revents & (POLLIN | POLLHUP | POLLERR))
		natsConnection_ProcessReadEvent(l->nc);
	if (p[1].revents & POLLOUT || (nats_events & POLLOUT && !rc))
		write_out(b);
	return p[2].revents ? 1 : 0;
}

struct flush_job {
	struct bridge *b;
	int64_t timeout_ms;
	natsStatus status;
	atomic_int done;
};

static void *flush_thread(void *arg)
{
	struct flush_job *j = arg;
	j->status = natsConnection_FlushTimeout(j->b->nc, j->timeout_ms);
	atomic_store(&j->done, 1);
	wake(&j->b->loop);
	return NULL;
}

/* natsConnection_FlushTimeout waits for the server's PONG, which only
 * this loop can read: it runs on a helper thread while this one serves
 * the socket (and nothing else: the local bus waits). */
natsStatus bridge_loop_flush(struct bridge *b, int64_t timeout_ms)
{
	struct flush_job j = {.b = b, .timeout_ms = timeout_ms, .status = NATS_ERR};
	pthread_t t;
	if (pthread_create(&t, NULL, flush_thread, &j))
		return NATS_SYS_ERROR;
	while (!atomic_load(&j.done))
		if (bridge_loop_wait(b, -1, -1, 100) < 0)
			break;
	pthread_join(t, NULL);
	return j.status;
}

void bridge_retire(struct bridge *b, natsMsg *m)
{
	if (!b->nretired)
		b->retired_since_ms = now_ms();
	b->retired[b->nretired++] = m;
	b->retired_bytes += (size_t)natsMsg_GetDataLength(m);
	if (b->nretired == BRIDGE_BATCH || b->retired_bytes >= BRIDGE_RETIRE_BYTES)
		bridge_retire_all(b);
}

int64_t bridge_retire_due(struct bridge *b, int64_t now)
{
	if (!b->nretired)
		return INT64_MAX;
	int64_t left = b->retired_since_ms + BRIDGE_RETIRE_MS - now;
	if (left > 0)
		return left;
	bridge_retire_all(b);
	return INT64_MAX;
}

void bridge_retire_all(struct bridge *b)
{
	for (int i = 0; i < b->nretired; i++)
		natsMsg_Destroy(b->retired[i]);
	b->nretired = 0;
	b->retired_bytes = 0;
}
