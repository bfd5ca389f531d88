/* kite serve --handoff: kite accepts every connection and passes the
 * socket to a worker over its own SOCK_SEQPACKET socket (SCM_RIGHTS, see
 * src/handoff.c). Balancing: least outstanding first, where outstanding is
 * what the worker has not yet taken from its hand-off socket (SIOCOUTQ on
 * our end: bytes of queued, unread hand-offs); ties go round-robin. Only
 * workers that said READY=1 (and not STOPPING=1) of the current generation
 * get connections. While none can take one, kite stops accepting, so new
 * connections wait in the kernel's backlog. */
#include <errno.h>
#include <linux/sockios.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "handoff_send.h"
#include "serve.h"

int serve_handoff_pair(struct proc *p, int *child_end)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	/* Our end needs no O_NONBLOCK: handoff_send() uses MSG_DONTWAIT. */
	p->handoff_fd = sv[0];
	*child_end = sv[1];
	return 0;
}

/* Hand conn to the least loaded ready worker. 0 if one took it; -EAGAIN if
 * every ready worker's queue is full; -ENOENT if no worker is ready. */
static int dispatch(struct serve *s, int conn, const struct kite_peer *peer)
{
	if (s->current < 0)
		return -ENOENT;
	struct generation *g = &s->gens[s->current];
	int nw = s->cfg.workers, tried[SERVE_MAX_WORKERS] = {0}, any = 0;
	for (;;) {
		/* One worker: nothing to compare, no SIOCOUTQ to ask. */
		int measure = nw > 1;
		int best = -1, best_q = 0;
		for (int k = 0; k < nw; k++) {
			int w = (int)((s->rr + (unsigned)k) % (unsigned)nw);
			struct proc *p = &g->procs[w];
			if (tried[w] || p->pid <= 0 || !p->ready || p->stopping ||
			    p->handoff_fd < 0)
				continue;
			int q = 0;
			if (measure && ioctl(p->handoff_fd, SIOCOUTQ, &q) < 0)
				q = 0;
			if (best < 0 || q < best_q) {
				best = w;
				best_q = q;
			}
		}
		if (best < 0)
			return any ? -EAGAIN : -ENOENT;
		any = 1;
		tried[best] = 1;
		struct proc *p = &g->procs[best];
		int r = handoff_send(p->handoff_fd, conn, peer);
		if (r == 0) {
			p->handed++;
			s->handed_total++;
			s->rr = (unsigned)best + 1;
			return 0;
		}
		if (r != -EAGAIN)
			serve_log(s, "generation %u: hand-off to pid %d failed: %s",
				  g->id, (int)p->pid, strerror(-r));
	}
}

/* Try the connection we hold; 1 if it is gone (handed on), else 0. */
static int pending_flush(struct serve *s)
{
	if (s->pending_conn < 0)
		return 1;
	struct kite_peer peer;
	handoff_peer_fill(s->pending_conn, (struct sockaddr *)&s->pending_addr,
			  s->pending_len, &peer);
	int r = dispatch(s, s->pending_conn, &peer);
	if (r < 0) {
		/* Queues full: look again soon. No worker: wait for READY=1. */
		s->retry_at = r == -EAGAIN ? now_ms() + 5 : 0;
		serve_listen_enable(s, 0);
		return 0;
	}
	close(s->pending_conn);
	s->pending_conn = -1;
	return 1;
}

void serve_handoff_retry(struct serve *s)
{
	if (pending_flush(s))
		serve_listen_enable(s, 1);
}

void serve_handoff_accept(struct serve *s, int li)
{
	/* At most 64 at a time, so control requests and signals wait no
	 * longer than that under a flood; epoll reports the rest again. */
	for (int batch = 0; batch < 64 && !s->exiting && pending_flush(s); batch++) {
		s->pending_len = sizeof s->pending_addr;
		int conn = serve_accept(s, li, &s->pending_addr, &s->pending_len);
		if (conn < 0)
			return;
		s->pending_conn = conn;
	}
}
