/* kite serve: generations. A generation is one start of COMMAND
 * (--workers processes). A reload starts a new generation on the same
 * listening sockets, and only when all of its processes said READY=1 is the
 * old one stopped (TERM, grace, KILL). The listening sockets stay open in
 * kite the whole time, so connections that arrive meanwhile wait in the
 * kernel's backlog: none is refused. Any exit kite did not ask for is a
 * crash, restarted with exponential backoff up to a crash-loop limit. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "serve.h"

static int proc_running(const struct generation *g, int w)
{
	return g->procs[w].pid > 0;
}

static int gen_any_running(const struct serve *s, const struct generation *g)
{
	for (int w = 0; w < s->cfg.workers; w++)
		if (proc_running(g, w))
			return 1;
	return 0;
}

struct proc *serve_find_pid(struct serve *s, pid_t pid, struct generation **gout)
{
	for (int i = 0; i < SERVE_MAX_GENS; i++) {
		struct generation *g = &s->gens[i];
		if (g->state == GEN_FREE)
			continue;
		for (int w = 0; w < s->cfg.workers; w++)
			if (g->procs[w].pid == pid) {
				if (gout)
					*gout = g;
				return &g->procs[w];
			}
	}
	return NULL;
}

static void proc_close_handoff(struct proc *p)
{
	if (p->handoff_fd >= 0) {
		/* The worker reads what is queued, then sees end-of-file. */
		close(p->handoff_fd);
		p->handoff_fd = -1;
	}
}

static int proc_start(struct serve *s, struct generation *g, struct proc *p)
{
	int child_end = -1;
	p->restart_at = 0;
	if (s->cfg.mode == MODE_HANDOFF) {
		int r = serve_handoff_pair(p, &child_end);
		if (r < 0)
			return r;
	}
	pid_t pid = serve_spawn(s, g->id, child_end, -1, NULL);
	if (child_end >= 0)
		close(child_end);
	if (pid < 0) {
		proc_close_handoff(p);
		return (int)pid;
	}
	p->pid = pid;
	p->ready = 0;
	p->stopping = 0;
	p->status[0] = 0;
	p->started_ms = now_ms();
	serve_log(s, "generation %u: started pid %d", g->id, (int)pid);
	if (!s->cfg.notify)
		serve_proc_ready(s, g, p);
	return 0;
}

static void reply_waiters(struct serve *s, int waiting, const char *text)
{
	for (int i = 0; i < SERVE_MAX_CLIENTS; i++)
		if (s->clients[i].fd >= 0 && s->clients[i].waiting == waiting)
			serve_control_reply(s, i, text, 1);
}

static void gen_stop(struct serve *s, struct generation *g)
{
	if (g->state == GEN_STOPPING)
		return;
	g->state = GEN_STOPPING;
	g->kill_at = now_ms() + s->cfg.grace_ms;
	g->killed = 0;
	for (int w = 0; w < s->cfg.workers; w++) {
		struct proc *p = &g->procs[w];
		p->restart_at = 0;
		p->ready = 0;
		proc_close_handoff(p);
		if (p->pid > 0)
			serve_kill(p->pid, SIGTERM);
	}
	if (gen_any_running(s, g)) {
		serve_log(s, "generation %u: stopping (SIGTERM, SIGKILL after %lld ms)",
			  g->id, (long long)s->cfg.grace_ms);
	} else {
		serve_log(s, "generation %u: stopped", g->id);
		g->state = GEN_FREE;
	}
}

static void gen_up(struct serve *s, int gi)
{
	struct generation *g = &s->gens[gi];
	int old = s->current;
	g->state = GEN_UP;
	s->current = gi;
	serve_log(s, "generation %u: up", g->id);
	if (s->reloading == gi) {
		char msg[160];
		s->reloading = -1;
		snprintf(msg, sizeof msg, "ok generation %u up%s", g->id,
			 old >= 0 && old != gi ? ", previous generation stopping" : "");
		reply_waiters(s, 1, msg);
	}
	if (old >= 0 && old != gi)
		gen_stop(s, &s->gens[old]);
	if (s->cfg.mode == MODE_HANDOFF)
		serve_handoff_retry(s);
}

void serve_proc_ready(struct serve *s, struct generation *g, struct proc *p)
{
	if (p->ready || g->state == GEN_STOPPING)
		return;
	p->ready = 1;
	serve_log(s, "generation %u: pid %d ready", g->id, (int)p->pid);
	if (g->state == GEN_STARTING) {
		for (int w = 0; w < s->cfg.workers; w++)
			if (!g->procs[w].ready)
				return;
		gen_up(s, (int)(g - s->gens));
	} else if (s->cfg.mode == MODE_HANDOFF) {
		serve_handoff_retry(s); /* a restarted worker is back */
	}
}

static int gen_new(struct serve *s)
{
	for (int i = 0; i < SERVE_MAX_GENS; i++) {
		struct generation *g = &s->gens[i];
		if (g->state != GEN_FREE)
			continue;
		memset(g, 0, sizeof *g);
		for (int w = 0; w < SERVE_MAX_WORKERS; w++)
			g->procs[w].handoff_fd = -1;
		g->state = GEN_STARTING;
		g->id = ++s->next_gen;
		return i;
	}
	return -1;
}

/* Start every process of a new generation; -errno if one cannot start. */
static int gen_start(struct serve *s, int gi)
{
	struct generation *g = &s->gens[gi];
	for (int w = 0; w < s->cfg.workers && g->state == GEN_STARTING; w++) {
		int r = proc_start(s, g, &g->procs[w]);
		if (r < 0)
			return r;
	}
	return 0;
}

int serve_gen_first(struct serve *s)
{
	int gi = gen_new(s);
	s->current = gi;
	return gen_start(s, gi);
}

void serve_reload(struct serve *s, int client)
{
	char msg[200];
	const char *err = NULL;
	if (s->exiting)
		err = "error stopping";
	else if (s->cfg.mode == MODE_INETD)
		err = "ok nothing to reload: --inetd runs COMMAND afresh for each connection";
	else if (s->reloading >= 0)
		err = "error a reload is already in progress";
	if (err) {
		if (client >= 0)
			serve_control_reply(s, client, err, 1);
		else
			serve_log(s, "reload: %s", err + (err[0] == 'o' ? 3 : 6));
		return;
	}
	int gi = gen_new(s);
	if (gi < 0) {
		if (client >= 0)
			serve_control_reply(s, client, "error busy: earlier generations are still stopping", 1);
		serve_log(s, "reload refused: earlier generations are still stopping");
		return;
	}
	struct generation *g = &s->gens[gi];
	g->ready_deadline = now_ms() + s->cfg.ready_timeout_ms;
	s->reloading = gi;
	if (client >= 0)
		s->clients[client].waiting = 1;
	serve_log(s, "reload: starting generation %u", g->id);
	int r = gen_start(s, gi);
	if (r < 0 && s->reloading == gi) {
		snprintf(msg, sizeof msg, "error cannot start %s: %s; the running generation keeps serving",
			 s->cfg.argv[0], strerror(-r));
		serve_log(s, "%s", msg + 6);
		s->reloading = -1;
		reply_waiters(s, 1, msg);
		gen_stop(s, g);
	}
}

void serve_stop(struct serve *s, const char *why)
{
	if (s->exiting)
		return;
	s->exiting = 1;
	serve_log(s, "stopping (%s)", why);
	serve_listen_enable(s, 0);
	if (s->pending_conn >= 0) {
		close(s->pending_conn);
		s->pending_conn = -1;
	}
	if (s->reloading >= 0) {
		s->reloading = -1;
		reply_waiters(s, 1, "error the supervisor is stopping");
	}
	for (int i = 0; i < SERVE_MAX_GENS; i++)
		if (s->gens[i].state != GEN_FREE)
			gen_stop(s, &s->gens[i]);
	for (int i = 0; i < s->inetd_count; i++)
		serve_kill(s->inetd[i], SIGTERM);
	s->exit_kill_at = now_ms() + s->cfg.grace_ms;
}

/* ---- exits and restarts ---- */

static void describe_exit(int st, char *buf, size_t len)
{
	if (WIFEXITED(st))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(st),
			 strsignal(WTERMSIG(st)));
	else
		snprintf(buf, len, "ended (wait status %#x)", st);
}

/* Any exit kite did not ask for is a crash: restart with backoff, or give
 * up after --max-restarts quick crashes in a row. */
static void proc_crashed(struct serve *s, struct generation *g, struct proc *p,
			 const char *how, int64_t ran_ms)
{
	if (ran_ms >= s->cfg.restart_window_ms)
		s->crashes = 0;
	s->crashes++;
	if (s->crashes > s->cfg.max_restarts) {
		serve_log(s, "generation %u: %s; %d crashes in a row, giving up",
			  g->id, how, s->crashes);
		s->exit_code = EXIT_NO;
		serve_stop(s, "crash loop");
		return;
	}
	int64_t delay = s->cfg.backoff_ms;
	for (int i = 1; i < s->crashes && delay < s->cfg.backoff_max_ms; i++)
		delay *= 2;
	if (delay > s->cfg.backoff_max_ms)
		delay = s->cfg.backoff_max_ms;
	p->restart_at = now_ms() + delay;
	s->restarts++;
	serve_log(s, "generation %u: %s; restart in %lld ms (crash %d of %d allowed)",
		  g->id, how, (long long)delay, s->crashes, s->cfg.max_restarts);
}

static void reaped(struct serve *s, pid_t pid, int st)
{
	if (serve_inetd_reaped(s, pid))
		return;
	struct generation *g;
	struct proc *p = serve_find_pid(s, pid, &g);
	if (!p)
		return; /* an orphan that re-parented to us (subreaper): reaped */
	char how[160], what[200];
	describe_exit(st, how, sizeof how);
	snprintf(what, sizeof what, "pid %d %s", (int)pid, how);
	p->pid = 0;
	p->ready = 0;
	proc_close_handoff(p);
	int64_t ran = now_ms() - p->started_ms;
	if (g->state == GEN_STOPPING) {
		serve_log(s, "generation %u: %s", g->id, what);
		if (!gen_any_running(s, g)) {
			serve_log(s, "generation %u: stopped", g->id);
			g->state = GEN_FREE;
		}
	} else if (s->reloading == (int)(g - s->gens)) {
		char msg[300];
		snprintf(msg, sizeof msg, "error generation %u: %s before READY=1; "
			 "the running generation keeps serving", g->id, what);
		serve_log(s, "reload failed: %s", msg + 6);
		s->reloading = -1;
		reply_waiters(s, 1, msg);
		gen_stop(s, g);
	} else {
		proc_crashed(s, g, p, what, ran);
	}
}

void serve_reap_all(struct serve *s)
{
	int st;
	pid_t pid;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
		reaped(s, pid, st);
}

/* The earliest deadline of the generations (restarts, readiness, grace). */
int64_t serve_gen_deadline(struct serve *s)
{
	int64_t t = 0;
	for (int i = 0; i < SERVE_MAX_GENS; i++) {
		struct generation *g = &s->gens[i];
		if (g->state == GEN_STOPPING && !g->killed)
			t = serve_earliest(t, g->kill_at);
		if (i == s->reloading)
			t = serve_earliest(t, g->ready_deadline);
		if (g->state == GEN_FREE || g->state == GEN_STOPPING)
			continue;
		for (int w = 0; w < s->cfg.workers; w++)
			t = serve_earliest(t, g->procs[w].restart_at);
	}
	return t;
}

/* What is due: SIGKILL after the grace period, a reload that timed out,
 * a restart after its backoff. */
void serve_gen_timers(struct serve *s, int64_t now)
{
	for (int i = 0; i < SERVE_MAX_GENS; i++) {
		struct generation *g = &s->gens[i];
		if (g->state == GEN_STOPPING && !g->killed && now >= g->kill_at) {
			g->killed = 1;
			serve_log(s, "generation %u: grace period over, SIGKILL", g->id);
			for (int w = 0; w < s->cfg.workers; w++)
				if (g->procs[w].pid > 0)
					serve_kill(g->procs[w].pid, SIGKILL);
		}
		if (i == s->reloading && now >= g->ready_deadline) {
			char msg[200];
			snprintf(msg, sizeof msg, "error generation %u not ready after %lld ms; "
				 "the running generation keeps serving", g->id,
				 (long long)s->cfg.ready_timeout_ms);
			serve_log(s, "reload failed: %s", msg + 6);
			s->reloading = -1;
			reply_waiters(s, 1, msg);
			gen_stop(s, g);
		}
		if (g->state == GEN_FREE || g->state == GEN_STOPPING || s->exiting)
			continue;
		for (int w = 0; w < s->cfg.workers; w++) {
			struct proc *p = &g->procs[w];
			if (p->restart_at && now >= p->restart_at) {
				int r = proc_start(s, g, p);
				if (r < 0) {
					char how[160];
					snprintf(how, sizeof how, "cannot start %s: %s",
						 s->cfg.argv[0], strerror(-r));
					proc_crashed(s, g, p, how, 0);
				}
			}
		}
	}
}
