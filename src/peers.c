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
#include <sys/syscall.h>
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

/* The kernel's word on a peer process, kept as a pidfd: it says when that
 * process (not a later one with its pid) exits. */
static int open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd >= 0)
		fcntl(fd, F_SETFD, FD_CLOEXEC);
	return fd;
#else
	(void)pid;
	return -1;
#endif
}

struct peer *ki_peer_new(kite *k, int sock, int outgoing, uint64_t id)
{
	struct ucred cred;
	socklen_t len = sizeof cred;
	int sndbuf = LINK_SNDBUF;
	struct peer *p = calloc(1, sizeof *p);
	if (!p || getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
	    setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf) < 0) {
		free(p);
		close(sock);
		return NULL;
	}
	p->sock = sock;
	p->outgoing = outgoing;
	/* We reached it through its name, which the kernel binds to one
	 * listener: the id is its own. An incoming link proves its id later. */
	p->verified = outgoing;
	p->id = id;
	p->pid = cred.pid;
	p->uid = cred.uid;
	p->gid = cred.gid;
	p->wake_tx = -1;
	/* (An incoming link gets its pidfd once its hello has proved it.) */
	p->pidfd = outgoing ? open_pidfd(cred.pid) : -1;
	p->hello_due_ns = ki_monotonic_ns() + HELLO_TIMEOUT_MS * 1000000ull;
	gid_t groups[MAX_PEER_GROUPS];
	len = sizeof groups;
	if (getsockopt(sock, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0) {
		p->ngroups = (int)(len / sizeof(gid_t));
		memcpy(p->groups, groups, len);
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = sock};
	if (epoll_ctl(k->epoll_fd, EPOLL_CTL_ADD, sock, &ev) < 0) {
		if (p->pidfd >= 0)
			close(p->pidfd);
		free(p);
		close(sock);
		return NULL;
	}
	p->next = k->peers;
	k->peers = p;
	struct wire_msg m;
	ki_wire_init(&m, W_HELLO);
	m.id = k->id;
	m.a = WIRE_VERSION;
	ki_peer_send(k, p, &m);
	return p;
}

int ki_peer_dial(const kite *k, uint64_t id, pid_t *owner)
{
	int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return -errno;
	struct sockaddr_un sa;
	socklen_t sl = ki_bus_address(k->bus, id, &sa);
	struct ucred cred;
	socklen_t cl = sizeof cred;
	/* Never waits: a full backlog (a listener that does not accept) is
	 * -EAGAIN at once, where a blocking connect would sleep. */
	if (connect(sock, (struct sockaddr *)&sa, sl) < 0 ||
	    getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) {
		int e = errno;
		close(sock);
		return e == EWOULDBLOCK ? -EAGAIN : -e;
	}
	*owner = cred.pid;
	return sock;
}

struct scan {
	kite *k;
	size_t prefix_len;
	char prefix[BUS_MAX + 8];
};

int ki_bus_listener(const struct unix_entry *e, const char *prefix, size_t prefix_len,
		    uint64_t *id)
{
	if (!e->abstract || !(e->flags & UNIX_FLAG_LISTENING) ||
	    e->type != SOCK_SEQPACKET || e->path_len != prefix_len + 16 ||
	    memcmp(e->path, prefix, prefix_len))
		return 0;
	char *end;
	*id = strtoull(e->path + prefix_len, &end, 16);
	return !*end && *id != 0;
}

static int admit(const kite *k, const struct peer *probe);
static int over_link_cap(const kite *k, const struct peer *probe);

/* The kernel's word on who is at the other end of sock (uid, gid,
 * groups); -1 if it has none. */
static int probe_of(int sock, struct peer *probe)
{
	struct ucred cred;
	socklen_t cl = sizeof cred, gl = sizeof probe->groups;
	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0)
		return -1;
	probe->uid = cred.uid;
	probe->gid = cred.gid;
	if (getsockopt(sock, SOL_SOCKET, SO_PEERGROUPS, probe->groups, &gl) == 0)
		probe->ngroups = (int)(gl / sizeof(gid_t));
	return 0;
}

static int connect_one(const struct unix_entry *e, void *arg)
{
	struct scan *s = arg;
	kite *k = s->k;
	uint64_t id;
	if (!ki_bus_listener(e, s->prefix, s->prefix_len, &id) || id == k->id)
		return 0;
	for (struct peer *p = k->peers; p; p = p->next)
		if (p->id == id)
			return 0; /* already linked */
	pid_t owner;
	int sock = ki_peer_dial(k, id, &owner);
	if (sock < 0)
		return 0; /* gone since the scan, or not accepting: it finds us */
	/* The same bound as for links a stranger makes to us: a user the
	 * policy lets into nothing could otherwise bind thousands of names on
	 * the bus and fill our descriptor table at every open. (A rule added
	 * later dials the rest: kite_allow_uid/gid scan the bus again.) Users
	 * the policy lets in are all dialled: each may share a channel. */
	struct peer probe = {0};
	if (probe_of(sock, &probe) < 0 ||
	    (!ki_policy_may_share(k, &probe, ">") ? !admit(k, &probe)
						  : over_link_cap(k, &probe))) {
		close(sock);
		return 0;
	}
	struct peer *p = ki_peer_new(k, sock, 1, id);
	/* kite_open waits only for peers that could share a channel with us:
	 * a stranger's listener costs it nothing. */
	if (p)
		p->awaited = ki_policy_may_share(k, p, ">");
	return 0;
}

int ki_peer_connect_existing(kite *k)
{
	struct scan s = {.k = k};
	snprintf(s.prefix, sizeof s.prefix, "kite/%s/", k->bus);
	s.prefix_len = strlen(s.prefix);
	return ki_proc_net_unix_each(connect_one, &s, NULL);
}

/* A uid the policy lets in on something, not ours nor root's, already
 * holding PEER_LINKS_MAX links, counting its broken links we are to make
 * again (each keeps a pidfd, and a dial of ours while it waits for its
 * hello; a process that drops links it made would otherwise pile them up
 * without end): one more could leave us no descriptor for our own rings.
 * (Our uid and root could do worse to us anyway.) */
static int over_link_cap(const kite *k, const struct peer *probe)
{
	if (probe->uid == k->euid || probe->uid == 0)
		return 0;
	unsigned links = 0;
	for (const struct peer *q = k->peers; q; q = q->next)
		links += q->uid == probe->uid && !q->eof && !q->closing;
	for (const struct relink *r = k->relinks; r; r = r->next)
		links += r->uid == probe->uid;
	return links >= PEER_LINKS_MAX;
}

/* Links a newcomer may hold: a process the policy lets into nothing gets a
 * few per uid; anyone gets a bounded number per uid still owing a hello,
 * and any other uid than ours or root's PEER_LINKS_MAX in all. (probe: the
 * newcomer's credentials, groups included.) */
static int admit(const kite *k, const struct peer *probe)
{
	int stranger = !ki_policy_may_share(k, probe, ">");
	unsigned strangers = 0, silent = 0;
	for (const struct peer *q = k->peers; q; q = q->next) {
		if (q->uid != probe->uid || q->eof || q->closing)
			continue;
		silent += !q->hello;
		strangers += !ki_policy_may_share(k, q, ">");
	}
	if (stranger)
		return strangers < STRANGER_LINKS_MAX;
	return silent < SILENT_LINKS_MAX && !over_link_cap(k, probe);
}

int ki_peer_accept(kite *k)
{
	for (int n = 0; n < ACCEPT_BATCH; n++) {
		int sock = accept4(k->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (sock < 0) {
			if (errno == EMFILE || errno == ENFILE) {
				/* Out of descriptors: the listener would stay readable
				 * and spin us; look again a little later. */
				epoll_ctl(k->epoll_fd, EPOLL_CTL_DEL, k->listen_fd, NULL);
				k->listen_paused_ns = ki_monotonic_ns() + LISTEN_PAUSE_MS * 1000000ull;
			}
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
		}
		struct peer probe = {0};
		if (probe_of(sock, &probe) < 0 || !admit(k, &probe)) {
			close(sock);
			continue;
		}
		ki_peer_new(k, sock, 0, 0);
	}
	return 0;
}

/* A wake-up handle must be a datagram socket: a publisher sends to it with
 * MSG_DONTWAIT, which no flag its owner sets (O_NONBLOCK lives on the file
 * it shares with us) can turn into a wait. An eventfd could. */
static int is_wake_socket(int fd, pid_t owner)
{
	int domain, type;
	struct ucred cred;
	socklen_t dl = sizeof domain, tl = sizeof type, cl = sizeof cred;
	/* Its other end must be the subscriber's own (a socket pair it made):
	 * never a socket connected to a third party we would be sending to. */
	return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dl) == 0 &&
	       getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 &&
	       getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0 &&
	       domain == AF_UNIX && type == SOCK_DGRAM && cred.pid == owner;
}

void ki_wake_send(int fd)
{
	char b = 1;
	ssize_t r = send(fd, &b, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	(void)r; /* full: it has wake-ups pending already; gone: nobody to wake */
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
	m.fds[0] = k->wake_tx;
	m.fds[1] = k->waiter_fd;
	m.nfds = 2;
	if (ki_peer_send(k, p, &m) == 0)
		p->wake_sent = 1;
}

/* A subscriber's wake-up handles. Checked, mapped, and used once at once:
 * messages published before they arrived found no way to wake it. */
int ki_peer_handle_wake(kite *k, struct peer *p, const struct wire_msg *m)
{
	int tx = m->fds[0], waiter_fd = m->fds[1];
	(void)k;
	if (p->waiter || !is_wake_socket(tx, p->pid) ||
	    ki_shm_check(waiter_fd, SEALS_WAITER, 4096, 0) ||
	    !(p->waiter = ki_shm_map(waiter_fd, 4096, 1))) {
		close(tx);
		close(waiter_fd);
		return -1;
	}
	close(waiter_fd);
	p->wake_tx = tx;
	ki_wake_send(tx);
	return 0;
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
	/* Re-made links: first the patterns held throughout (their streams
	 * carry on), then those subscribed since it broke (fresh). A new link
	 * has only fresh ones. */
	for (int fresh = 0; fresh < 2; fresh++)
		for (size_t i = 0; i < k->npatterns; i++) {
			int is_fresh = !p->relinked || k->pattern_gen[i] > p->relink_gen;
			if (is_fresh != fresh)
				continue;
			ki_wire_init(&m, W_SUB);
			m.b = (uint64_t)fresh;
			m.a = ki_strlist_find(k->reliable, k->nreliable, k->patterns[i]) ? 1 : 0;
			snprintf(m.text, sizeof m.text, "%s", k->patterns[i]);
			ki_peer_send(k, p, &m);
		}
	/* Its answer comes after the rings it offers for these patterns. */
	ki_wire_init(&m, W_SYNC);
	m.id = p->sync_token = ++k->next_token;
	ki_peer_send(k, p, &m);
}

/* Does the listener @kite/<bus>/<id> belong to process pid? */
static int owns_name(const kite *k, uint64_t id, pid_t pid)
{
	pid_t owner = 0;
	int sock = ki_peer_dial(k, id, &owner);
	if (sock < 0)
		return 0;
	close(sock);
	return owner == pid;
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
		ki_peer_cut(k, p);
		return;
	}
	/* An id is only claimed; the name @kite/<bus>/<id> is bound by the
	 * kernel to one listener, whose owner the kernel tells. A process can
	 * only ever claim its own handles' ids. */
	if (!p->outgoing && !owns_name(k, id, p->pid)) {
		p->closing = 1;
		ki_peer_cut(k, p);
		return;
	}
	p->verified = 1;
	p->id = id;
	if (p->pidfd < 0)
		p->pidfd = open_pidfd(p->pid);
	for (struct peer *q = k->peers; q; q = q->next) {
		if (q == p || q->closing || q->eof || q->id != id)
			continue;
		/* Two links to one peer: both sides keep the same one. */
		struct peer *drop = initiator(k, p) < initiator(k, q) ? q : p;
		struct peer *keep = drop == p ? q : p;
		if (drop->awaited && !drop->synced)
			keep->awaited = 1;
		drop->awaited = 0;
		if (drop->nghost && !keep->nghost) {
			/* The subscriptions from before a break go with the link
			 * that stays. */
			keep->ghost_patterns = drop->ghost_patterns;
			keep->nghost = drop->nghost;
			drop->ghost_patterns = NULL;
			drop->nghost = 0;
		}
		if (drop->relinked && !keep->relinked) {
			keep->relinked = 1;
			keep->relink_gen = drop->relink_gen;
		}
		drop->closing = 1;
		drop->duplicate = 1;
		ki_peer_cut(k, drop);
		pthread_cond_broadcast(&k->cond);
		if (drop == p)
			return;
	}
	p->hello = 1;
	k->stats.peers++; /* (a link that never says hello, e.g. another
			     handle checking our name, is no peer) */
	/* Before any ring, while the socket holds only our hello. (Not to
	 * links that never say hello: observers, name checks.) */
	ki_ho_offer(k, p);
	ki_relink_back(k, p);
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
	ki_sub_detach_peer(k, p, 1);
	ki_pub_forget_peer(k, p, NULL);
	k->pending_acks -= p->acks_pending;
	if (p->hello)
		k->stats.peers--;
	ki_peer_free(k, p);
	pthread_cond_broadcast(&k->cond);
}

void ki_peer_free(kite *k, struct peer *p)
{
	ki_strlist_free(&p->patterns, &p->npatterns);
	ki_strlist_free(&p->ghost_patterns, &p->nghost);
	ki_strlist_free(&p->continuous, &p->ncontinuous);
	ki_strlist_free(&p->refused, &p->nrefused);
	ki_strlist_free(&p->reliable, &p->nreliable);
	ki_outq_clear(k, p);
	if (p->waiter)
		munmap(p->waiter, 4096);
	if (p->positions)
		munmap((void *)(uintptr_t)p->positions, POS_BYTES);
	ki_ho_out_free(&p->ho_out);
	ki_ho_unmap(&p->ho_in);
	int fds[] = {p->wake_tx, p->pidfd, p->sock};
	for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(p);
}
