/* The control thread: accepts links and answers every control message, so
 * a handle serves its peers even while its owner only publishes. The data
 * path never goes through here. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

static struct peer *find_peer(kite *k, int sock)
{
	for (struct peer *p = k->peers; p; p = p->next)
		if (p->sock == sock)
			return p;
	return NULL;
}

static void close_msg_fds(struct wire_msg *m)
{
	for (int i = 0; i < m->nfds; i++)
		close(m->fds[i]);
	m->nfds = 0;
}

/* A pattern the policy lets it have nothing of: say so (naming only its
 * own pattern) and keep nothing. */
static void refuse_pattern(kite *k, struct peer *p, const char *pattern)
{
	struct wire_msg r;
	ki_wire_init(&r, W_REFUSE);
	snprintf(r.text, sizeof r.text, "%s", pattern);
	snprintf(r.reason, sizeof r.reason, "uid %u is not allowed on any channel "
		 "matching %.150s by pid %ld uid %u", (unsigned)p->uid, pattern,
		 (long)getpid(), (unsigned)k->euid);
	ki_peer_send(k, p, &r);
	ki_refusal_event(k, p, pattern, 0, "refused subscriber: %s", r.reason);
}

/* 0 to go on, -1 if the peer broke the protocol. */
static int dispatch(kite *k, struct peer *p, struct wire_msg *m)
{
	if (m->type == W_HELLO) {
		if (p->hello) {
			close_msg_fds(m);
			return -1;
		}
		ki_peer_handle_hello(k, p, m);
		return 0;
	}
	if (m->type == W_INFO_REQ) {
		/* Observers have no name to say hello from: the kernel's word
		 * on who asks (SO_PEERCRED) is what the answer depends on. One
		 * question per link: answering costs us the state's lock, which
		 * publishing shares, so a peer may not ask in a loop. */
		if (p->info_asked++ || !ki_info_may_answer(k, p))
			return -1;
		ki_info_answer(k, p, m->id);
		return 0;
	}
	if (!p->hello) {
		close_msg_fds(m);
		return -1;
	}
	struct wire_msg ack;
	int rc;
	switch (m->type) {
	case W_SUB:
		if (kite_pattern_valid(m->text))
			return -1;
		/* (Also on a link we are cutting: offer() then only notes where
		 * its streams begin, for the link that replaces this one.) */
		if (!ki_policy_may_share(k, p, m->text)) {
			/* Nothing it may have matches: keep only a few, for a
			 * rule kite_allow_uid/gid may add later. */
			if (++p->refused_patterns > PEER_PATTERNS_MAX)
				return -1;
			if (p->nrefused < REFUSED_PATTERNS_KEPT &&
			    ki_strlist_add(&p->refused, &p->nrefused, m->text) < 0)
				return -1;
			refuse_pattern(k, p, m->text);
		} else {
			if (p->npatterns >= PEER_PATTERNS_MAX) /* its own limit too */
				return -1;
			/* b = 0: held without a break since this subscriber's
			 * last link to us went down, so its streams carry on;
			 * b = 1: subscribed afresh, its streams start now. */
			if (m->b)
				ki_pub_fresh_pattern(k, p, m->text);
			else if (ki_strlist_add(&p->continuous, &p->ncontinuous, m->text) < 0)
				return -1;
			rc = ki_strlist_add(&p->patterns, &p->npatterns, m->text);
			if (rc < 0)
				return -1;
			if (rc > 0 && (m->a & 1)) {
				if (ki_strlist_add(&p->reliable, &p->nreliable, m->text) < 0)
					return -1;
				ki_pub_reliable_pattern(k, p, m->text);
			}
			if (rc > 0) /* a repeated pattern changes nothing */
				ki_pub_offer_rings(k, p, m->text);
		}
		if (m->id) {
			ki_wire_init(&ack, W_SUB_ACK);
			ack.id = m->id;
			ki_peer_send(k, p, &ack);
		}
		return 0;
	case W_UNSUB:
		if (kite_pattern_valid(m->text))
			return -1;
		ki_strlist_remove(&p->refused, &p->nrefused, m->text);
		ki_strlist_remove(&p->reliable, &p->nreliable, m->text);
		if (ki_strlist_remove(&p->patterns, &p->npatterns, m->text))
			ki_pub_forget_peer(k, p, m->text);
		return 0;
	case W_SYNC:
		p->synced = 1;
		ki_pub_prune_marks(k, p);
		ki_strlist_free(&p->ghost_patterns, &p->nghost);
		ki_strlist_free(&p->continuous, &p->ncontinuous);
		pthread_cond_broadcast(&k->cond);
		if (m->id) { /* after the rings its patterns asked for */
			ki_wire_init(&ack, W_SUB_ACK);
			ack.id = m->id;
			ki_peer_send(k, p, &ack);
		}
		return 0;
	case W_SUB_ACK:
		if (m->id && m->id == p->sync_token) {
			p->sync_token = 0;
			ki_relink_offers_done(k, p);
		} else if (p->acks_pending) {
			p->acks_pending--;
			k->pending_acks--;
			pthread_cond_broadcast(&k->cond);
		}
		return 0;
	case W_RING: {
		int attached = ki_sub_attach(k, p, m);
		if (m->nfds == 2) /* the heads page: mapped, if at all, by now */
			close(m->fds[1]);
		return attached == -EPROTO ? -1 : 0;
	}
	case W_LARGE:
		ki_sub_store_large(k, p, m);
		return 0;
	case W_REFUSE:
		/* A subscriber that refuses our ring gets no more of it; a
		 * publisher that refuses a pattern of ours owes us nothing of
		 * what it publishes until a rule lets us in. */
		ki_pub_drop_sub(k, p, m->text);
		if (ki_strlist_find(k->patterns, k->npatterns, m->text))
			p->refused_us = 1;
		ki_refusal_event(k, p, m->text, 1, "refused by pid %ld: %s",
			      (long)p->pid, m->reason);
		return 0;
	case W_WAKE:
		return ki_peer_handle_wake(k, p, m);
	case W_RELIABLE:
		return ki_rel_handle(k, p, m);
	case W_RING_END:
		ki_sub_ring_end(k, p, m);
		return 0;
	case W_BYE:
		p->bye = 1;
		return 0;
	case W_HANDOVERS:
		return ki_ho_receive(p, m);
	}
	close_msg_fds(m);
	return -1;
}

/* Read and act on everything the peer has sent so far. The end of its
 * stream is read like any record, after all that came before it: a peer
 * that exits right after publishing has its last ring hand-overs and
 * large-message notices taken first. Errors other than the end (a reset)
 * are reported once by the kernel and do not hide what is still queued. */
int ki_control_drain(kite *k, struct peer *p, unsigned budget)
{
	struct wire_msg m;
	int errors = 0;
	while (!p->closing && !p->eof && budget--) {
		int r = ki_wire_recv(p->sock, &m);
		if (r == 1) {
			if (dispatch(k, p, &m) < 0) {
				p->closing = 1;
				ki_peer_cut(k, p);
			}
		} else if (r == 0) {
			return 0;
		} else if (r == -EPROTO) {
			p->closing = 1;
			ki_peer_cut(k, p);
		} else if (r == -EPIPE || ++errors > 8) {
			p->eof = 1;
		}
	}
	return -ECONNRESET;
}

void ki_control_kick(kite *k)
{
	uint64_t one = 1;
	ssize_t w = write(k->stop_fd, &one, sizeof one);
	(void)w;
}

void *ki_control_thread(void *arg)
{
	kite *k = arg;
	struct epoll_event evs[32];
	for (;;) {
		ki_control_enter(k);
		int timeout = ki_relink_run(k);
		int sweep = ki_pub_sweep_idle(k);
		if (sweep >= 0 && (timeout < 0 || sweep < timeout))
			timeout = sweep;
		int lan = ki_lan_timers(k);
		if (lan >= 0 && (timeout < 0 || lan < timeout))
			timeout = lan;
		ki_control_exit(k);
		int n = epoll_wait(k->epoll_fd, evs, 32, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return NULL; /* only a bad epoll fd gets here */
		}
		ki_control_enter(k);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == k->stop_fd) {
				uint64_t v = 0;
				if (read(fd, &v, sizeof v) == sizeof v && v >= CONTROL_STOP) {
					ki_control_exit(k);
					return NULL;
				}
				continue; /* a kick: timers changed */
			}
			if (ki_lan_event(k, fd))
				continue;
			if (fd == k->listen_fd) {
				ki_peer_accept(k);
				continue;
			}
			struct peer *p = find_peer(k, fd);
			if (!p)
				continue;
			if (evs[i].events & EPOLLOUT)
				ki_outq_flush(k, p);
			/* A bounded batch: the application's thread waits
			 * for the state while we hold it. Level-triggered
			 * epoll brings us back for the rest. */
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				ki_control_drain(k, p, DRAIN_BATCH);
			if (p->eof || p->closing)
				ki_link_lost(k, p);
			ki_control_yield(k);
		}
		ki_control_exit(k);
	}
}
