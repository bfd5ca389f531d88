/* kite serve: starting a server process. The child gets its descriptors
 * where its mode wants them (socket activation: the listening sockets from
 * fd 3; --handoff: its hand-off socket at 3; --inetd: the connection on 0
 * and 1), an environment of kite's variables, its own process group and a
 * clean signal mask; exec failures come back through a close-on-exec
 * pipe, so a COMMAND that cannot run is reported, not mistaken for a crash. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "kite/handoff.h"
#include "serve.h"

extern char **environ;

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

void serve_kill(pid_t pid, int sig)
{
	/* Its process group first (it leads one), so helpers it started go
	 * too; the pid itself if it moved to a group of its own. */
	if (kill(-pid, sig) < 0)
		kill(pid, sig);
}

/* Children still ours once every generation is gone: orphans of our
 * workers, re-parented to us by PR_SET_CHILD_SUBREAPER. */
int serve_signal_leftovers(int sig)
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
