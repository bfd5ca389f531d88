/* Each link's outbound queue. Nothing on the application's thread or the
 * control thread ever waits for a peer: a record goes straight into the
 * socket when it has room, else it waits here (with duplicates of its fds)
 * until the control thread sees room (EPOLLOUT). A peer whose queue grows
 * past OUTQ_MAX stops reading for far too long: its link is cut, and made
 * again later with exact losses. Large-message notices are the one kind we
 * shed early: past OUTQ_LARGE_MAX the oldest goes (the subscriber reports
 * it lost), so a stopped subscriber cannot make us pin its backlog. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

/* Hand-overs of one ring queued for many peers share one copy of its
 * descriptor: a peer that does not read costs us records, never
 * descriptors (else a user allowed on one channel could open many links,
 * read none, and leave us no descriptor for any other channel). */
struct fd_share {
	struct fd_share *next;
	uint64_t ring_id; /* unique per ring made, never reused */
	int fd;
	unsigned refs;
};

#define FD_SHARE_BUCKETS 256

static struct fd_share *share_take(kite *k, uint64_t ring_id, int src)
{
	if (!k->fd_shares && !(k->fd_shares = calloc(FD_SHARE_BUCKETS, sizeof *k->fd_shares)))
		return NULL;
	struct fd_share **b = &k->fd_shares[ring_id % FD_SHARE_BUCKETS];
	for (struct fd_share *s = *b; s; s = s->next)
		if (s->ring_id == ring_id) {
			s->refs++;
			return s;
		}
	struct fd_share *s = malloc(sizeof *s);
	if (!s)
		return NULL;
	if ((s->fd = fcntl(src, F_DUPFD_CLOEXEC, 0)) < 0) {
		free(s);
		return NULL;
	}
	s->ring_id = ring_id;
	s->refs = 1;
	s->next = *b;
	*b = s;
	return s;
}

static void share_put(kite *k, struct fd_share *gone)
{
	if (--gone->refs)
		return;
	for (struct fd_share **pp = &k->fd_shares[gone->ring_id % FD_SHARE_BUCKETS]; *pp;
	     pp = &(*pp)->next)
		if (*pp == gone) {
			*pp = gone->next;
			break;
		}
	close(gone->fd);
	free(gone);
}

static void rec_free(kite *k, struct outrec *r)
{
	for (int i = 0; r->owns_fds && i < r->m.nfds; i++)
		if (r->m.fds[i] >= 0)
			close(r->m.fds[i]);
	if (r->share)
		share_put(k, r->share);
	free(r);
}

static void set_out_interest(kite *k, struct peer *p, int want)
{
	if (p->q_armed == want)
		return;
	struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0),
				 .data.fd = p->sock};
	if (epoll_ctl(k->epoll_fd, EPOLL_CTL_MOD, p->sock, &ev) == 0)
		p->q_armed = want;
}

void ki_outq_clear(kite *k, struct peer *p)
{
	k->q_large_total -= p->q_large;
	for (struct outrec *r = p->q_head, *n; r; r = n) {
		n = r->next;
		rec_free(k, r);
	}
	p->q_head = p->q_tail = NULL;
	p->q_len = p->q_large = 0;
}

void ki_peer_cut(kite *k, struct peer *p)
{
	if (p->send_dead)
		return;
	p->send_dead = 1;
	ki_outq_clear(k, p);
	set_out_interest(k, p, 0);
	shutdown(p->sock, SHUT_WR);
	/* Rings and wake-ups stop here; what it sent us is still read. */
	ki_pub_forget_peer(k, p, NULL);
}

/* Drop the oldest queued large-message notice. */
static void shed_oldest_large(kite *k, struct peer *p)
{
	if (!p)
		return;
	for (struct outrec **pp = &p->q_head, *prev = NULL; *pp;
	     prev = *pp, pp = &(*pp)->next) {
		struct outrec *r = *pp;
		if (r->m.type != W_LARGE)
			continue;
		*pp = r->next;
		if (p->q_tail == r)
			p->q_tail = prev;
		p->q_len--;
		p->q_large--;
		k->q_large_total--;
		rec_free(k, r);
		return;
	}
}

/* The peer holding the most queued large-message notices. */
static struct peer *most_large(kite *k)
{
	struct peer *most = NULL;
	for (struct peer *q = k->peers; q; q = q->next)
		if (q->q_large && (!most || q->q_large > most->q_large))
			most = q;
	return most;
}

static int enqueue(kite *k, struct peer *p, const struct wire_msg *m)
{
	/* Each queued notice holds a descriptor of ours: per peer and in all,
	 * the oldest give way (their subscribers report them lost). */
	if (m->type == W_LARGE && p->q_large >= OUTQ_LARGE_MAX)
		shed_oldest_large(k, p);
	if (m->type == W_LARGE && k->q_large_total >= LARGE_QUEUED_TOTAL)
		shed_oldest_large(k, most_large(k));
	/* A peer the policy lets into nothing gets no room to hoard. */
	/* Anyone else may fall behind by one hand-over of each of our rings
	 * (a re-link offers them all at once) plus OUTQ_MAX other records. */
	size_t max = ki_policy_may_share(k, p, ">") ? OUTQ_MAX + OUTQ_PER_RING * k->npub
						  : OUTQ_STRANGER_MAX;
	if (p->q_len >= max) {
		ki_peer_cut(k, p);
		return -EPIPE;
	}
	struct outrec *r = malloc(sizeof *r);
	if (!r) {
		ki_peer_cut(k, p);
		return -EPIPE;
	}
	r->m = *m;
	r->next = NULL;
	r->share = NULL;
	r->ho_slot = -1;
	/* Our wake-up handles live as long as the handle; a large message's
	 * memfd is closed by its publisher at once, and a ring's when it is
	 * released after an idle spell (its number then names the next file
	 * we open): a queued record keeps a copy of those. Without a
	 * descriptor for one, a large message is lost to this subscriber (and
	 * reported so), not the link; a ring's hand-over cannot be, so the
	 * link is cut and made again. A ring's copy is shared by all its
	 * queued hand-overs; its second fd, the stream heads page, lives as
	 * long as the handle. A handovers page is closed by its maker once
	 * sent: copies too (without them that link cannot cover its queue,
	 * so it is cut and made again). */
	r->owns_fds = m->type == W_LARGE || m->type == W_HANDOVERS;
	for (int i = 0; r->owns_fds && i < m->nfds; i++) {
		r->m.fds[i] = fcntl(m->fds[i], F_DUPFD_CLOEXEC, 0);
		if (r->m.fds[i] < 0) {
			r->m.nfds = i;
			rec_free(k, r);
			if (m->type == W_LARGE)
				return 0;
			ki_peer_cut(k, p);
			return -EPIPE;
		}
	}
	if (m->type == W_RING) {
		if (!(r->share = share_take(k, m->id, m->fds[0]))) {
			free(r);
			ki_peer_cut(k, p);
			return -EPIPE;
		}
		r->m.fds[0] = r->share->fd;
		/* Should we die before it leaves, the subscriber reads it here. */
		ki_ho_note(k, p, r);
	}
	if (p->q_tail)
		p->q_tail->next = r;
	else
		p->q_head = r;
	p->q_tail = r;
	p->q_len++;
	p->q_large += m->type == W_LARGE;
	k->q_large_total += m->type == W_LARGE;
	set_out_interest(k, p, 1);
	return 0;
}

/* Errors that say "not now" rather than "this link is dead". ETOOMANYREFS:
 * the kernel caps the descriptors one user has unread in Unix sockets (at
 * its RLIMIT_NOFILE), so other subscribers that stopped reading can make a
 * healthy link refuse descriptors for a while. */
static int transient(int rc)
{
	return rc == -EAGAIN || rc == -ENOBUFS || rc == -ETOOMANYREFS;
}

int ki_peer_send(kite *k, struct peer *p, const struct wire_msg *m)
{
	if (p->send_dead)
		return -EPIPE;
	if (!p->q_head) {
		int rc = ki_wire_send(p->sock, m, 1);
		if (rc == 0) {
			if (m->type == W_RING) /* in the socket: it outlives us */
				ki_ho_left(k, p, m);
			return 0;
		}
		if (rc == -ETOOMANYREFS && m->type == W_LARGE)
			return 0; /* that one message is lost to it (it says so) */
		if (!transient(rc)) {
			ki_peer_cut(k, p);
			return -EPIPE;
		}
		if (rc == -ETOOMANYREFS)
			p->q_stalled = 1;
	}
	return enqueue(k, p, m);
}

static void pop(kite *k, struct peer *p)
{
	struct outrec *r = p->q_head;
	p->q_head = r->next;
	if (!p->q_head)
		p->q_tail = NULL;
	p->q_len--;
	p->q_large -= r->m.type == W_LARGE;
	k->q_large_total -= r->m.type == W_LARGE;
	ki_ho_sent(p, r); /* in the socket now: it outlives us */
	rec_free(k, r);
}

void ki_outq_flush(kite *k, struct peer *p)
{
	p->q_stalled = 0;
	while (p->q_head && !p->send_dead) {
		struct outrec *r = p->q_head;
		int rc = ki_wire_send(p->sock, &r->m, 1);
		if (rc == -ETOOMANYREFS && r->m.type == W_LARGE) {
			pop(k, p); /* lost to it, and reported so */
			continue;
		}
		if (rc == -ETOOMANYREFS) {
			/* No EPOLLOUT will say when: the control thread's timer
			 * tries again (ki_relink_run). */
			p->q_stalled = 1;
			return;
		}
		if (transient(rc))
			return; /* EPOLLOUT stays armed */
		if (rc < 0) {
			ki_peer_cut(k, p);
			return;
		}
		pop(k, p);
	}
	set_out_interest(k, p, 0);
	if (k->closing)
		pthread_cond_broadcast(&k->cond);
}
