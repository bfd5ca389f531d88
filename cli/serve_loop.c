/* kite serve: the supervisor. One thread, one epoll set: a signalfd (no
 * signal handlers, so no races), the notify and control sockets, and in
 * --inetd/--handoff modes the listening sockets. Timers (restart backoff,
 * readiness timeout, grace period) are deadlines that bound epoll_wait.
 *
 * A generation is one start of COMMAND (--workers processes). A reload
 * starts a new generation on the same listening sockets, and only when all
 * of its processes said READY=1 is the old one stopped (TERM, grace, KILL).
 * The listening sockets stay open in kite the whole time, so connections
 * that arrive meanwhile wait in the kernel's backlog: none is refused. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "kite.h"
#include "serve.h"

extern char **environ;

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
	struct epoll_event ev = {.events = events, .data.u64 = data};
	return epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

/* ---- starting processes ---- */

/* Variables kite sets for its children; inherited copies are dropped. */
static int owned_var(const char *e)
{
	static const char *const names[] = {
		"LISTEN_FDS=", "LISTEN_PID=", "LISTEN_FDNAMES=", "NOTIFY_SOCKET=",
		KITE_HANDOFF_ENV "=", "KITE_SERVE_NAME=", "KITE_SERVE_GENERATION=",
		"REMOTE_ADDR=", "REMOTE_PORT=", "REMOTE_PID=", "REMOTE_UID=",
		"REMOTE_GID=", NULL};
	for (size_t i = 0; names[i]; i++)
		if (!strncmp(e, names[i], strlen(names[i])))
			return 1;
	return 0;
}

/* Move fd to target in the child, clearing close-on-exec. */
static int move_fd(int fd, int target)
{
	if (fd == target)
		return fcntl(fd, F_SETFD, 0);
	return dup2(fd, target) < 0 ? -1 : 0;
}

/* Write v in decimal into buf (async-signal-safe, for the child). */
static void put_pid(char *buf, long v)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v && n < (int)sizeof tmp);
	while (n)
		*buf++ = tmp[--n];
	*buf = 0;
}

/* In the child: only async-signal-safe calls until exec. */
static void child_setup(struct serve *s, int handoff_fd, int conn_fd,
			char *listen_pid, int errpipe, pid_t supervisor)
{
	/* If kite itself is killed, its servers are told to stop too. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != supervisor)
		_exit(127); /* it died before the line above */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	setpgid(0, 0);
	int ok = 0;
	if (s->cfg.mode == MODE_ACTIVATE) {
		int n = s->cfg.nlisten, tmp[SERVE_MAX_LISTEN];
		for (int i = 0; i < n; i++)
			if ((tmp[i] = fcntl(s->listen_fds[i], F_DUPFD_CLOEXEC, 3 + n)) < 0)
				ok = -1;
		for (int i = 0; i < n && !ok; i++)
			ok = move_fd(tmp[i], 3 + i);
		if (listen_pid)
			put_pid(listen_pid, (long)getpid());
	} else if (s->cfg.mode == MODE_HANDOFF) {
		ok = move_fd(handoff_fd, 3);
	} else {
		ok = (move_fd(conn_fd, 0) < 0 || move_fd(conn_fd, 1) < 0) ? -1 : 0;
	}
	if (ok < 0) {
		int e = errno;
		if (write(errpipe, &e, sizeof e) < 0) {}
		_exit(127);
	}
}

pid_t serve_spawn(struct serve *s, unsigned gen_id, int handoff_fd, int conn_fd,
		  const char *const *extra_env)
{
	size_t n = 0, extra = 0;
	while (environ[n])
		n++;
	while (extra_env && extra_env[extra])
		extra++;
	char **envp = calloc(n + extra + 12, sizeof *envp);
	if (!envp)
		return -ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (!owned_var(environ[i]))
			envp[k++] = environ[i];
	for (size_t i = 0; i < extra; i++)
		envp[k++] = (char *)extra_env[i];
	char fds[32], pidv[48], names[sizeof s->fdnames + 16], notify[160],
		name[96], gen[48], handoff[32];
	char *listen_pid = NULL;
	snprintf(name, sizeof name, "KITE_SERVE_NAME=%s", s->cfg.name);
	envp[k++] = name;
	if (s->cfg.mode != MODE_INETD) {
		snprintf(gen, sizeof gen, "KITE_SERVE_GENERATION=%u", gen_id);
		snprintf(notify, sizeof notify, "NOTIFY_SOCKET=%s", s->notify_name);
		envp[k++] = gen;
		envp[k++] = notify;
	}
	if (s->cfg.mode == MODE_ACTIVATE) {
		snprintf(fds, sizeof fds, "LISTEN_FDS=%d", s->cfg.nlisten);
		snprintf(names, sizeof names, "LISTEN_FDNAMES=%s", s->fdnames);
		strcpy(pidv, "LISTEN_PID=");
		listen_pid = pidv + strlen(pidv); /* the child writes its pid here */
		envp[k++] = fds;
		envp[k++] = names;
		envp[k++] = pidv;
	} else if (s->cfg.mode == MODE_HANDOFF) {
		snprintf(handoff, sizeof handoff, "%s=3", KITE_HANDOFF_ENV);
		envp[k++] = handoff;
	}
	envp[k] = NULL;

	/* A close-on-exec pipe tells the parent whether exec worked. */
	int ep[2];
	if (pipe2(ep, O_CLOEXEC) < 0) {
		free(envp);
		return -errno;
	}
	pid_t self = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		close(ep[0]);
		child_setup(s, handoff_fd, conn_fd, listen_pid, ep[1], self);
		execvpe(s->cfg.argv[0], s->cfg.argv, envp);
		int e = errno;
		if (write(ep[1], &e, sizeof e) < 0) {}
		_exit(127);
	}
	int err = pid < 0 ? errno : 0;
	free(envp);
	close(ep[1]);
	if (pid > 0) {
		int e;
		ssize_t r;
		while ((r = read(ep[0], &e, sizeof e)) < 0 && errno == EINTR) {}
		if (r == (ssize_t)sizeof e) {
			/* exec failed: the child exits 127; reap it here. */
			waitpid(pid, NULL, 0);
			err = e;
		}
	}
	close(ep[0]);
	return err ? -err : pid;
}

/* ---- generations ---- */

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

void serve_kill(pid_t pid, int sig)
{
	/* Its process group first (it leads one), so helpers it started go
	 * too; the pid itself if it moved to a group of its own. */
	if (kill(-pid, sig) < 0)
		kill(pid, sig);
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

static void reap_all(struct serve *s)
{
	int st;
	pid_t pid;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
		reaped(s, pid, st);
}

/* Children still ours once every generation is gone: orphans of our
 * workers, re-parented to us by PR_SET_CHILD_SUBREAPER. */
static int signal_leftovers(int sig)
{
	static char buf[65536]; /* room for thousands of pids */
	char path[64];
	snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	size_t n = 0;
	ssize_t r;
	while (n < sizeof buf - 1 && (r = read(fd, buf + n, sizeof buf - 1 - n)) > 0)
		n += (size_t)r;
	close(fd);
	buf[n] = 0;
	int count = 0;
	for (char *tok = strtok(buf, " \n"); tok; tok = strtok(NULL, " \n")) {
		uint64_t v;
		if (parse_u64(tok, INT32_MAX, &v) == 0 && v > 1) {
			kill((pid_t)v, sig);
			count++;
		}
	}
	return count;
}

/* ---- timers ---- */

static int64_t earliest(int64_t a, int64_t b)
{
	return (a == 0 || (b != 0 && b < a)) ? b : a;
}

static int64_t next_deadline(struct serve *s)
{
	int64_t t = s->retry_at;
	if (s->exiting)
		t = earliest(earliest(t, s->exit_kill_at), s->exit_giveup_at);
	for (int i = 0; i < SERVE_MAX_GENS; i++) {
		struct generation *g = &s->gens[i];
		if (g->state == GEN_STOPPING && !g->killed)
			t = earliest(t, g->kill_at);
		if (i == s->reloading)
			t = earliest(t, g->ready_deadline);
		if (g->state == GEN_FREE || g->state == GEN_STOPPING)
			continue;
		for (int w = 0; w < s->cfg.workers; w++)
			t = earliest(t, g->procs[w].restart_at);
	}
	return t;
}

static void run_timers(struct serve *s)
{
	int64_t now = now_ms();
	if (s->retry_at && now >= s->retry_at) {
		s->retry_at = 0;
		serve_handoff_retry(s);
	}
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
	if (s->exiting && s->exit_kill_at && now >= s->exit_kill_at) {
		s->exit_kill_at = 0;
		s->exit_giveup_at = now + 5000;
		for (int i = 0; i < s->inetd_count; i++)
			serve_kill(s->inetd[i], SIGKILL);
		if (signal_leftovers(SIGKILL))
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
	/* Dispositions first: a signal that arrived ignored (nohup ignores
	 * SIGHUP, a shell's background job SIGINT) would never reach the
	 * signalfd. SIGPIPE is ignored: a closed stderr must not kill the
	 * supervisor (children get it back at its default). */
	sigset_t set;
	sigemptyset(&set);
	for (size_t i = 0; i < sizeof handled_signals / sizeof *handled_signals; i++) {
		signal(handled_signals[i], SIG_DFL);
		sigaddset(&set, handled_signals[i]);
	}
	signal(SIGPIPE, SIG_IGN);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return fail(EXIT_SYSTEM, "serve", "sigprocmask: %s", strerror(errno));
	/* Workers' orphans re-parent to us, so we can reap and stop them. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		serve_log(s, "PR_SET_CHILD_SUBREAPER: %s (orphans go to init)",
			  strerror(errno));
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	s->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (s->epfd < 0 || s->sigfd < 0 ||
	    serve_watch(s, s->sigfd, EPOLLIN, EP_DATA(TAG_SIGNAL, 0)) < 0)
		return fail(EXIT_SYSTEM, "serve", "epoll/signalfd: %s", strerror(errno));

	int r = serve_control_open(s);
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
	for (int i = 0; i < SERVE_MAX_CLIENTS; i++)
		s->clients[i].fd = -1;

	int rc = setup(s);
	if (rc == 0) {
		if (s->cfg.mode == MODE_INETD) {
			serve_listen_enable(s, 1);
			serve_log(s, "accepting (--inetd, at most %d at once)", s->cfg.max_conns);
		} else {
			int gi = gen_new(s);
			s->current = gi;
			int r = gen_start(s, gi);
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
				if (signal_leftovers(SIGTERM)) {
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
			reap_all(s);
		}
		run_timers(s);
	}
	if (rc == 0)
		serve_log(s, "stopped");
	for (int i = 0; i < SERVE_MAX_CLIENTS; i++)
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
