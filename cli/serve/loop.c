/* kite serve: the supervisor's event loop. One thread, one epoll set: a
 * signalfd (no signal handlers, so no races), the notify and control
 * sockets, and in --inetd/--handoff modes the listening sockets. Timers
 * (restart backoff, readiness timeout, grace period) are deadlines that
 * bound epoll_wait. Generations and restarts: serve_gen.c; starting
 * processes: serve_spawn.c. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "event_loop.h"
#include "serve.h"

void serve_log(const struct serve *s, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	fprintf(stderr, "kite serve %s: %s\n", s->cfg.name, line);
}

int serve_watch(struct serve *s, int fd, uint32_t events, uint64_t data)
{
	return event_watch(s->epfd, fd, events, data);
}

/* ---- timers ---- */

int64_t serve_earliest(int64_t a, int64_t b)
{
	return (a == 0 || (b != 0 && b < a)) ? b : a;
}

static int64_t next_deadline(struct serve *s)
{
	int64_t t = serve_earliest(s->retry_at, serve_gen_deadline(s));
	t = serve_earliest(t, serve_control_deadline(s));
	if (s->exiting)
		t = serve_earliest(serve_earliest(t, s->exit_kill_at), s->exit_giveup_at);
	return t;
}

static void run_timers(struct serve *s)
{
	int64_t now = now_ms();
	if (s->retry_at && now >= s->retry_at) {
		s->retry_at = 0;
		serve_handoff_retry(s);
	}
	serve_gen_timers(s, now);
	serve_control_timers(s, now);
	if (s->exiting && s->exit_kill_at && now >= s->exit_kill_at) {
		s->exit_kill_at = 0;
		s->exit_giveup_at = now + 5000;
		for (int i = 0; i < s->inetd_count; i++)
			serve_kill(s->inetd[i], SIGKILL);
		if (serve_signal_leftovers(SIGKILL))
			serve_log(s, "grace period over: SIGKILL to what is left");
	}
}

/* True once nothing of ours runs any more (every child reaped). */
static int all_gone(struct serve *s)
{
	for (int i = 0; i < SERVE_MAX_GENS; i++)
		if (s->gens[i].state != GEN_FREE)
			return 0;
	if (s->inetd_count)
		return 0;
	siginfo_t si;
	return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) == -1 &&
	       errno == ECHILD;
}

/* ---- signals ---- */

static void on_signal(struct serve *s)
{
	struct signalfd_siginfo si;
	while (read(s->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
		int sig = (int)si.ssi_signo;
		if (sig == SIGCHLD) {
			s->child_exited = 1; /* reaped at the end of this round */
			continue;
		}
		if (sig == SIGHUP) {
			serve_log(s, "SIGHUP: reload");
			serve_reload(s, -1);
		} else if (sig == SIGTERM || sig == SIGINT || sig == SIGQUIT) {
			serve_stop(s, strsignal(sig));
		} else {
			/* SIGUSR1, SIGUSR2, SIGWINCH: for the server. */
			for (int i = 0; i < SERVE_MAX_GENS; i++) {
				struct generation *g = &s->gens[i];
				if (g->state == GEN_FREE || g->state == GEN_STOPPING)
					continue;
				for (int w = 0; w < s->cfg.workers; w++)
					if (g->procs[w].pid > 0)
						kill(g->procs[w].pid, sig);
			}
			for (int i = 0; i < s->inetd_count; i++)
				kill(s->inetd[i], sig);
		}
	}
}

static const int handled_signals[] = {SIGCHLD, SIGHUP, SIGTERM, SIGINT, SIGQUIT,
				      SIGUSR1, SIGUSR2, SIGWINCH};

static int setup(struct serve *s)
{
	/* Signals arrive on a signalfd in the epoll set (sys/event_loop.h:
	 * dispositions back to default first, SIGPIPE ignored). */
	int r = event_loop_open(handled_signals,
				sizeof handled_signals / sizeof *handled_signals,
				EP_DATA(TAG_SIGNAL, 0), &s->epfd, &s->sigfd);
	if (r < 0)
		return fail(EXIT_SYSTEM, "serve", "epoll/signalfd: %s", strerror(-r));
	/* Workers' orphans re-parent to us, so we can reap and stop them. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		serve_log(s, "PR_SET_CHILD_SUBREAPER: %s (orphans go to init)",
			  strerror(errno));

	r = serve_control_open(s);
	if (r == -EADDRINUSE)
		return fail(EXIT_NO, "serve", "a supervisor named '%s' is already running",
			    s->cfg.name);
	if (r < 0)
		return fail(EXIT_SYSTEM, "serve", "control socket: %s", strerror(-r));

	size_t off = 0;
	for (int i = 0; i < s->cfg.nlisten; i++) {
		struct listen_spec *sp = &s->cfg.listen[i];
		int fd = serve_spec_bind(sp, s->cfg.backlog, s->cfg.mode != MODE_ACTIVATE);
		if (fd < 0)
			return fail(EXIT_SYSTEM, "serve", "cannot listen on %s: %s",
				    sp->text, strerror(-fd));
		s->listen_fds[i] = fd;
		off += (size_t)snprintf(s->fdnames + off, sizeof s->fdnames - off, "%s%s",
					i ? ":" : "", sp->fdname);
		serve_log(s, "listening on %s (fd %d for the server)", sp->bound, 3 + i);
	}
	if (s->cfg.mode != MODE_INETD && (r = serve_notify_open(s)) < 0)
		return fail(EXIT_SYSTEM, "serve", "notify socket: %s", strerror(-r));
	return 0;
}

int serve_run(struct serve_config *cfg)
{
	static struct serve st; /* large: keep it off the stack */
	struct serve *s = &st;
	memset(s, 0, sizeof *s);
	s->cfg = *cfg;
	s->epfd = s->sigfd = s->notify_fd = s->control_fd = -1;
	s->current = s->reloading = -1;
	s->pending_conn = -1;
	for (int i = 0; i < SERVE_MAX_LISTEN; i++)
		s->listen_fds[i] = -1;
	for (int i = 0; i < SERVE_MAX_CLIENTS + SERVE_MAX_REFUSED; i++)
		s->clients[i].fd = -1;

	int rc = setup(s);
	if (rc == 0) {
		if (s->cfg.mode == MODE_INETD) {
			serve_listen_enable(s, 1);
			serve_log(s, "accepting (--inetd, at most %d at once)", s->cfg.max_conns);
		} else {
			int r = serve_gen_first(s);
			if (r < 0) {
				rc = fail(EXIT_SYSTEM, "serve", "cannot start %s: %s",
					  s->cfg.argv[0], strerror(-r));
				serve_stop(s, "start failed");
				s->exit_code = rc;
			}
		}
	} else {
		s->exiting = 1;
		s->exit_code = rc;
	}
	int left_signalled = 0;
	while (!(s->exiting && all_gone(s))) {
		if (s->exit_giveup_at && now_ms() >= s->exit_giveup_at) {
			serve_log(s, "processes survive SIGKILL (uninterruptible?): "
				  "exiting without reaping them");
			break;
		}
		if (s->exiting && !left_signalled) {
			int busy = 0;
			for (int i = 0; i < SERVE_MAX_GENS; i++)
				busy |= s->gens[i].state != GEN_FREE;
			if (!busy && !s->inetd_count) {
				left_signalled = 1;
				if (serve_signal_leftovers(SIGTERM)) {
					/* Orphans get a grace period of their own. */
					serve_log(s, "SIGTERM to leftover processes");
					s->exit_kill_at = now_ms() + s->cfg.grace_ms;
				}
			}
		}
		int64_t deadline = next_deadline(s), wait = -1;
		if (deadline) {
			wait = deadline - now_ms();
			if (wait < 0)
				wait = 0;
		}
		struct epoll_event ev[32];
		int n = epoll_wait(s->epfd, ev, 32, (int)(wait > 60000 ? 60000 : wait));
		if (n < 0 && errno != EINTR) {
			serve_log(s, "epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			uint32_t tag = (uint32_t)(ev[i].data.u64 >> 32);
			int idx = (int)(uint32_t)ev[i].data.u64;
			switch (tag) {
			case TAG_SIGNAL: on_signal(s); break;
			case TAG_NOTIFY: serve_notify_read(s); break;
			case TAG_CONTROL: serve_control_accept(s); break;
			case TAG_CLIENT: serve_control_read(s, idx); break;
			case TAG_LISTEN:
				if (s->cfg.mode == MODE_INETD)
					serve_inetd_accept(s, idx);
				else
					serve_handoff_accept(s, idx);
				break;
			}
		}
		if (s->child_exited) {
			s->child_exited = 0;
			serve_reap_all(s);
		}
		run_timers(s);
	}
	if (rc == 0)
		serve_log(s, "stopped");
	for (int i = 0; i < SERVE_MAX_CLIENTS + SERVE_MAX_REFUSED; i++)
		if (s->clients[i].fd >= 0)
			close(s->clients[i].fd);
	for (int i = 0; i < s->cfg.nlisten; i++)
		if (s->listen_fds[i] >= 0) {
			close(s->listen_fds[i]);
			serve_spec_unlink(&s->cfg.listen[i]);
		}
	int fds[] = {s->notify_fd, s->control_fd, s->sigfd, s->epfd};
	for (size_t i = 0; i < sizeof fds / sizeof *fds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return s->exit_code;
}
