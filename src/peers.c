/* Links between handles: discovery through /proc/net/unix, connect and
 * accept, the hello exchange, and tearing a link down. Every pair of handles
 * on a bus has exactly one link; when two start at once and connect to each
 * other, both keep the link initiated by the smaller id. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"
#include "proc_net_unix.h"
#include "shm.h"

socklen_t ki_bus_address(const char *bus, uint64_t id, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	int n = snprintf(sa->sun_path + 1, sizeof sa->sun_path - 1,
			 "kite/%s/%016llx", bus, (unsigned long long)id);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

static int set_send_timeout(int sock)
{
	struct timeval tv = {SEND_TIMEOUT_MS / 1000, (SEND_TIMEOUT_MS % 1000) * 1000};
	return setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static struct peer *peer_new(kite *k, int sock, int outgoing, uint64_t id)
{
	struct ucred cred;
	socklen_t len = sizeof cred;
	struct peer *p = calloc(1, sizeof *p);
	if (!p || getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
	    set_send_timeout(sock) < 0) {
		free(p);
		close(sock);
		return NULL;
	}
	p->sock = sock;
	p->outgoing = outgoing;
	p->id = id;
	p->pid = cred.pid;
	p->uid = cred.uid;
	p->gid = cred.gid;
	p->eventfd = -1;
	gid_t groups[MAX_PEER_GROUPS];
	len = sizeof groups;
	if (getsockopt(sock, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0) {
		p->ngroups = (int)(len / sizeof(gid_t));
		memcpy(p->groups, groups, len);
	}
	struct wire_msg m;
	ki_wire_init(&m, W_HELLO);
	m.id = k->id;
	m.a = WIRE_VERSION;
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = sock};
	if (ki_wire_send(sock, &m, 0) < 0 ||
	    epoll_ctl(k->epoll_fd, EPOLL_CTL_ADD, sock, &ev) < 0) {
		free(p);
		close(sock);
		return NULL;
	}
	p->next = k->peers;
	k->peers = p;
	k->stats.peers++;
	return p;
}

struct scan {
	kite *k;
	size_t prefix_len;
	char prefix[BUS_MAX + 8];
};

static int connect_one(const struct unix_entry *e, void *arg)
{
	struct scan *s = arg;
	kite *k = s->k;
	if (!e->abstract || !(e->flags & UNIX_FLAG_LISTENING) ||
	    e->type != SOCK_SEQPACKET || e->path_len != s->prefix_len + 16 ||
	    memcmp(e->path, s->prefix, s->prefix_len))
		return 0;
	char *end;
	uint64_t id = strtoull(e->path + s->prefix_len, &end, 16);
	if (*end || id == 0 || id == k->id)
		return 0;
	for (struct peer *p = k->peers; p; p = p->next)
		if (p->id == id)
			return 0; /* already linked */
	int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return 0;
	struct sockaddr_un sa;
	socklen_t sl = ki_bus_address(k->bus, id, &sa);
	if (set_send_timeout(sock) < 0 ||
	    connect(sock, (struct sockaddr *)&sa, sl) < 0) {
		close(sock); /* gone since the scan, or not answering: skip it */
		return 0;
	}
	struct peer *p = peer_new(k, sock, 1, id);
	if (p)
		p->awaited = 1;
	return 0;
}

int ki_peer_connect_existing(kite *k)
{
	struct scan s = {.k = k};
	snprintf(s.prefix, sizeof s.prefix, "kite/%s/", k->bus);
	s.prefix_len = strlen(s.prefix);
	return ki_proc_net_unix_each(connect_one, &s, NULL);
}

int ki_peer_accept(kite *k)
{
	for (;;) {
		int sock = accept4(k->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (sock < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
		peer_new(k, sock, 0, 0);
	}
}

static int is_eventfd(int fd)
{
	char path[64], target[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, target, sizeof target - 1);
	if (n < 0)
		return 0;
	target[n] = 0;
	return !strcmp(target, "anon_inode:[eventfd]");
}

/* Our wake-up handles go only to publishers whose ring we accepted (the
 * policy allowed them): anyone else holding them could silence or spam our
 * wake-ups. */
void ki_peer_send_wake(kite *k, struct peer *p)
{
	if (p->wake_sent)
		return;
	struct wire_msg m;
	ki_wire_init(&m, W_WAKE);
	m.fds[0] = k->wake_fd;
	m.fds[1] = k->waiter_fd;
	m.nfds = 2;
	if (ki_peer_send(k, p, &m) == 0)
		p->wake_sent = 1;
}

/* A subscriber's wake-up handles. Checked, mapped, and used once at once:
 * messages published before they arrived found no way to wake it. */
int ki_peer_handle_wake(kite *k, struct peer *p, const struct wire_msg *m)
{
	int efd = m->fds[0], waiter_fd = m->fds[1];
	if (p->waiter || !is_eventfd(efd) || ki_shm_check(waiter_fd, SEALS_WAITER, 4096, 0) ||
	    fcntl(efd, F_SETFL, O_NONBLOCK) < 0 ||
	    !(p->waiter = ki_shm_map(waiter_fd, 4096, 1))) {
		close(efd);
		close(waiter_fd);
		return -1;
	}
	close(waiter_fd);
	p->eventfd = efd;
	uint64_t one = 1;
	ssize_t w = write(efd, &one, sizeof one);
	(void)w;
	(void)k;
	return 0;
}

int ki_peer_send(kite *k, struct peer *p, const struct wire_msg *m)
{
	/* Only a peer the policy could ever let in may make us wait for room
	 * in its socket; anyone else that stops reading loses its link at once
	 * rather than stall the handle. */
	int rc = ki_wire_send(p->sock, m, !ki_policy_trusted(k, p));
	if (rc < 0 && !p->closing) {
		/* A peer that does not take a control message in time is broken;
		 * the control thread reaps it when it sees the hang-up. */
		p->closing = 1;
		shutdown(p->sock, SHUT_RDWR);
	}
	return rc;
}

void ki_peer_send_advisory(kite *k, struct peer *p, const struct wire_msg *m)
{
	(void)k;
	if (!p->closing)
		ki_wire_send(p->sock, m, 1);
}

void ki_refusal_event(kite *k, struct peer *p, const char *channel, int by_peer,
		   const char *fmt, ...)
{
	if (++p->refusals > PEER_REFUSALS_REPORTED + 1) {
		k->stats.refused++; /* counted, not queued: ki_event_push counts the rest */
		return; /* a peer that keeps asking must not flood the queue */
	}
	char text[TEXT_MAX];
	if (p->refusals == PEER_REFUSALS_REPORTED + 1) {
		snprintf(text, sizeof text, "further refusals involving pid %ld are "
			 "counted in kite_stats.refused, not reported", (long)p->pid);
	} else {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(text, sizeof text, fmt, ap);
		va_end(ap);
	}
	ki_event_push(k, KITE_REFUSED, channel, by_peer ? p->id : 0, p->pid, p->uid,
		   p->gid, 0, by_peer, "%s", text);
}

void ki_peer_send_subscriptions(kite *k, struct peer *p)
{
	struct wire_msg m;
	for (size_t i = 0; i < k->npatterns; i++) {
		ki_wire_init(&m, W_SUB);
		snprintf(m.text, sizeof m.text, "%s", k->patterns[i]);
		ki_peer_send(k, p, &m);
	}
	ki_wire_init(&m, W_SYNC);
	ki_peer_send(k, p, &m);
}

static uint64_t initiator(const kite *k, const struct peer *p)
{
	return p->outgoing ? k->id : p->id;
}

void ki_peer_handle_hello(kite *k, struct peer *p, const struct wire_msg *m)
{
	uint64_t id = m->id;
	if (id == 0 || id == k->id || (p->outgoing && p->id != id) ||
	    m->a != WIRE_VERSION) {
		p->closing = 1;
		shutdown(p->sock, SHUT_RDWR);
		return;
	}
	p->id = id;
	for (struct peer *q = k->peers; q; q = q->next) {
		if (q == p || q->closing || q->id != id)
			continue;
		if (q->pid != p->pid) {
			/* Ids are only claimed; the kernel's pid is not. Of two
			 * processes claiming one id, the one we reached through its
			 * listening name (which the kernel binds) is genuine; failing
			 * that, the first. */
			struct peer *fake = q->outgoing && !p->outgoing ? p
					    : !q->outgoing && p->outgoing ? q
									 : p;
			fake->closing = 1;
			shutdown(fake->sock, SHUT_RDWR);
			if (fake == p)
				return;
			continue;
		}
		/* Two links to one peer: both sides keep the same one. */
		struct peer *drop = initiator(k, p) < initiator(k, q) ? q : p;
		struct peer *keep = drop == p ? q : p;
		if (drop->awaited && !drop->synced)
			keep->awaited = 1;
		drop->awaited = 0;
		drop->closing = 1;
		shutdown(drop->sock, SHUT_RDWR);
		pthread_cond_broadcast(&k->cond);
		if (drop == p)
			return;
	}
	p->hello = 1;
	ki_peer_send_subscriptions(k, p);
}

void ki_peer_drop(kite *k, struct peer *p)
{
	struct peer **pp = &k->peers;
	while (*pp && *pp != p)
		pp = &(*pp)->next;
	if (!*pp)
		return;
	*pp = p->next;
	epoll_ctl(k->epoll_fd, EPOLL_CTL_DEL, p->sock, NULL);
	ki_sub_detach_peer(k, p);
	ki_pub_forget_peer(k, p, 0);
	ki_strlist_free(&p->patterns, &p->npatterns);
	if (p->waiter)
		munmap(p->waiter, 4096);
	if (p->eventfd >= 0)
		close(p->eventfd);
	close(p->sock);
	k->pending_acks -= p->acks_pending;
	k->stats.peers--;
	free(p);
	pthread_cond_broadcast(&k->cond);
}
