/* The end of a link, and making it again. A link ends when its stream is
 * read to the end (everything the peer sent before is acted on first), or
 * when it broke the protocol. Then the peer is either gone — it said W_BYE
 * (closed its handle), its process exited, or its name is no longer bound
 * by the process we knew — and its rings drain and report GONE; or it lives
 * and the link merely broke (a stopped peer whose queue overflowed, say):
 * its rings stay mapped and read, and we connect to it again with backoff.
 * Once it is back it re-offers its rings; the ring itself says exactly what
 * was overrun meanwhile. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

int ki_process_alive(int pidfd, pid_t pid)
{
	if (pidfd >= 0) {
		struct pollfd p = {.fd = pidfd, .events = POLLIN};
		return poll(&p, 1, 0) == 0; /* readable: it exited */
	}
	return kill(pid, 0) == 0 || errno == EPERM;
}

static struct relink *find_relink(kite *k, uint64_t id)
{
	for (struct relink *r = k->relinks; r; r = r->next)
		if (r->id == id)
			return r;
	return NULL;
}

static void relink_remove(kite *k, struct relink *gone)
{
	for (struct relink **pp = &k->relinks; *pp; pp = &(*pp)->next)
		if (*pp == gone) {
			*pp = gone->next;
			if (gone->pidfd >= 0)
				close(gone->pidfd);
			ki_ho_unmap(&gone->ho);
			ki_ho_out_free(&gone->ho_out);
			ki_strlist_free(&gone->patterns, &gone->npatterns);
			free(gone);
			return;
		}
}

static void schedule(kite *k, struct peer *p)
{
	struct relink *r = find_relink(k, p->id);
	if (!r) {
		if (!(r = calloc(1, sizeof *r))) {
			ki_ho_report(k, &p->ho_in, p);
			ki_sub_gone_by_id(k, p->id); /* cannot follow it: say so */
			return;
		}
		r->id = p->id;
		r->pid = p->pid;
		r->pidfd = p->pidfd;
		p->pidfd = -1;
		r->backoff_ms = RELINK_FIRST_MS;
		r->break_gen = k->sub_gen;
		r->next = k->relinks;
		k->relinks = r;
	}
	/* The latest link's hand-overs are the ones that count. */
	if (p->ho_in.page) {
		ki_ho_unmap(&r->ho);
		r->ho = p->ho_in;
		p->ho_in = (struct ho_view){0};
	}
	if (p->ho_out) {
		ki_ho_out_free(&r->ho_out);
		r->ho_out = p->ho_out;
		p->ho_out = NULL;
	}
	r->uid = p->uid;
	r->gid = p->gid;
	r->ngroups = p->ngroups;
	memcpy(r->groups, p->groups, sizeof r->groups);
	if (p->npatterns || p->nghost) {
		ki_strlist_free(&r->patterns, &r->npatterns);
		if (p->npatterns) {
			r->patterns = p->patterns, r->npatterns = p->npatterns;
			p->patterns = NULL, p->npatterns = 0;
		} else {
			r->patterns = p->ghost_patterns, r->npatterns = p->nghost;
			p->ghost_patterns = NULL, p->nghost = 0;
		}
	}
	/* (Only the control thread gets here: its next epoll_wait times out
	 * by the earliest due attempt.) */
	r->due_ns = ki_monotonic_ns() + (uint64_t)r->backoff_ms * 1000000u;
}

/* 1: a link to id has said hello; -1: one is waiting for its hello. */
static int linked(const kite *k, uint64_t id)
{
	int pending = 0;
	for (const struct peer *p = k->peers; p; p = p->next)
		if (p->id == id && !p->eof && !p->closing) {
			if (p->hello)
				return 1;
			pending = 1;
		}
	return pending ? -1 : 0;
}

void ki_link_lost(kite *k, struct peer *p)
{
	int relink = p->hello && p->verified && !p->bye && !p->closing &&
		     !k->closing && ki_policy_may_share(k, p, ">") &&
		     ki_process_alive(p->pidfd, p->pid);
	if (p->duplicate && p->hello) {
		/* The link we keep to it re-offers these rings. */
		ki_sub_detach_peer(k, p, 0);
	} else if (relink) {
		ki_sub_detach_peer(k, p, 0);
		schedule(k, p);
	} else {
		ki_sub_detach_peer(k, p, 1);
		/* Gone: what it had queued for us is reported, not lost unseen
		 * (its socket is read to the end by now). */
		if (p->hello && linked(k, p->id) != 1) {
			ki_ho_report(k, &p->ho_in, p);
			ki_pub_forget_marks(k, p->id);
		}
	}
	ki_peer_drop(k, p);
}

void ki_relink_who(const struct relink *l, struct peer *who)
{
	*who = (struct peer){.id = l->id, .pid = l->pid, .uid = l->uid, .gid = l->gid,
			     .ngroups = l->ngroups};
	memcpy(who->groups, l->groups, sizeof who->groups);
}

/* The peer of a broken link turned out gone: its rings drain and end, and
 * the hand-overs it still had queued for the broken link are reported. */
static void relink_gone(kite *k, struct relink *r)
{
	struct peer who;
	ki_relink_who(r, &who);
	ki_ho_report(k, &r->ho, &who);
	ki_sub_gone_by_id(k, r->id);
	ki_pub_forget_marks(k, r->id);
}

/* One attempt: 1 done (linked again, or gone), 0 try again later. */
static int attempt(kite *k, struct relink *r)
{
	int state = linked(k, r->id);
	if (state == 1)
		return 1; /* back: by our dial or by its own */
	if (state == -1)
		return 0; /* a dial waits for its hello (or its time-out) */
	if (!ki_process_alive(r->pidfd, r->pid)) {
		relink_gone(k, r);
		return 1;
	}
	pid_t owner;
	int sock = ki_peer_dial(k, r->id, &owner);
	if (sock == -EAGAIN || sock == -ENOBUFS || sock == -ENOMEM || sock == -EMFILE)
		return 0;
	if (sock < 0 || owner != r->pid) {
		/* Its name is unbound (handle closed) or now someone else's. */
		if (sock >= 0)
			close(sock);
		relink_gone(k, r);
		return 1;
	}
	/* The entry stays until the hello comes: a peer too stopped to answer
	 * in time is dialled again. */
	ki_peer_new(k, sock, 1, r->id);
	return 0;
}

int ki_relink_run(kite *k)
{
	uint64_t now = ki_monotonic_ns(), next = UINT64_MAX;
	if (k->listen_paused_ns) {
		if (k->listen_paused_ns <= now) {
			struct epoll_event ev = {.events = EPOLLIN, .data.fd = k->listen_fd};
			epoll_ctl(k->epoll_fd, EPOLL_CTL_ADD, k->listen_fd, &ev);
			k->listen_paused_ns = 0;
		} else {
			next = k->listen_paused_ns;
		}
	}
	for (struct peer *p = k->peers, *n; p; p = n) {
		n = p->next;
		if (p->q_stalled) {
			ki_outq_flush(k, p);
			if (p->q_stalled && now + STALLED_RETRY_MS * 1000000ull < next)
				next = now + STALLED_RETRY_MS * 1000000ull;
		}
		if (p->hello)
			continue;
		if (p->hello_due_ns <= now) {
			p->closing = 1;
			ki_peer_cut(k, p);
			ki_link_lost(k, p);
		} else if (p->hello_due_ns < next) {
			next = p->hello_due_ns;
		}
	}
	for (struct relink *r = k->relinks, *n; r; r = n) {
		n = r->next;
		if (r->due_ns <= now) {
			if (attempt(k, r)) {
				relink_remove(k, r);
				continue;
			}
			r->backoff_ms = r->backoff_ms * 2 > RELINK_MAX_MS ? RELINK_MAX_MS
									 : r->backoff_ms * 2;
			r->due_ns = now + (uint64_t)r->backoff_ms * 1000000u;
		}
		if (r->due_ns < next)
			next = r->due_ns;
	}
	if (next == UINT64_MAX)
		return -1;
	return (int)((next - now + 999999) / 1000000);
}

void ki_relink_offers_done(kite *k, struct peer *p)
{
	/* Rings of this publisher still waiting for it were not offered
	 * again (it dropped the channel or our pattern no longer matches). */
	for (size_t i = 0; i < k->nsubs; i++) {
		struct sub_ring *s = k->subs[i];
		if (s->relinking && !s->peer && s->publisher == p->id) {
			s->relinking = 0;
			s->gone = 1;
			ki_wake_self(k);
		}
	}
}

void ki_relink_back(kite *k, struct peer *p)
{
	struct relink *r = find_relink(k, p->id);
	if (!r)
		return;
	p->relinked = 1;
	p->relink_gen = r->break_gen;
	/* It is back and offers its rings again on this link, whose own page
	 * covers them: the broken link's entries are moot. */
	ki_ho_unmap(&r->ho);
	ki_ho_out_free(&r->ho_out);
	if (!r->npatterns)
		return;
	ki_strlist_free(&p->ghost_patterns, &p->nghost);
	p->ghost_patterns = r->patterns, p->nghost = r->npatterns;
	r->patterns = NULL, r->npatterns = 0;
}
