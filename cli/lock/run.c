/* The holder side of kite lock: kite stays the parent and runs COMMAND as
 * its child, which inherits the lock socket: like the locked file of
 * flock(1), the lock then lasts until every process of the job has exited
 * (or closed it), even when kite is killed or a script's children outlive
 * it. One poll loop serves a signalfd (TERM/INT/HUP to forward, CHLD) and
 * the lock socket: waiters connect to it and kite accepts and keeps their
 * connections, so that its exit wakes them at once instead of them polling
 * the name (while a job that outlives kite holds the lock, waiters retry it
 * every second). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "lock.h"

#define MAX_WAITERS 128 /* beyond: waiters fall back to retrying the name */

static void close_waiter(int *w, int *n, int i)
{
	close(w[i]);
	w[i] = w[--*n];
}

int lock_run(int lockfd, char **argv)
{
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, &old);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		return fail(EXIT_SYSTEM, "lock", "signalfd: %s", strerror(errno));
	pid_t parent = getpid();
	pid_t child = fork();
	if (child < 0)
		return fail(EXIT_SYSTEM, "lock", "fork: %s", strerror(errno));
	if (child == 0) {
		/* The job holds the lock too: it stays taken until the last
		 * process that inherited this fd is gone. */
		int fl = fcntl(lockfd, F_GETFD);
		if (fl < 0 || fcntl(lockfd, F_SETFD, fl & ~FD_CLOEXEC) < 0)
			_exit(EXIT_SYSTEM);
		/* If kite dies (even by SIGKILL) COMMAND gets TERM, as it would
		 * from kite; whatever outlives kite still holds the lock. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(128 + SIGTERM);
		sigprocmask(SIG_SETMASK, &old, NULL);
		execvp(argv[0], argv);
		int e = errno;
		fprintf(stderr, "kite lock: cannot run %s: %s\n", argv[0], strerror(e));
		_exit(e == ENOENT ? 127 : 126);
	}
	int waiters[MAX_WAITERS], nw = 0, status = 0, reaped = 0;
	for (;;) {
		struct pollfd pf[2 + MAX_WAITERS];
		pf[0] = (struct pollfd){.fd = sfd, .events = POLLIN};
		pf[1] = (struct pollfd){.fd = lockfd, .events = POLLIN};
		for (int i = 0; i < nw; i++) /* only to notice a waiter leaving */
			pf[2 + i] = (struct pollfd){.fd = waiters[i], .events = POLLIN};
		if (poll(pf, (nfds_t)(2 + nw), -1) < 0) {
			if (errno == EINTR)
				continue;
			kill(child, SIGTERM);
			break;
		}
		for (int i = nw - 1; i >= 0; i--)
			if (pf[2 + i].revents)
				close_waiter(waiters, &nw, i);
		if (pf[1].revents & POLLIN) {
			int c = accept4(lockfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
			if (c >= 0 && nw < MAX_WAITERS)
				waiters[nw++] = c;
			else if (c >= 0)
				close(c);
		}
		struct signalfd_siginfo si;
		while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
			if (si.ssi_signo != SIGCHLD) {
				/* A terminal's ^C or hang-up (SI_KERNEL) already went
				 * to the whole foreground group, COMMAND included:
				 * forward only what a process sent to kite. Our own
				 * unreaped child: its PID cannot be reused. */
				if (si.ssi_code != SI_KERNEL)
					kill(child, (int)si.ssi_signo);
				continue;
			}
			if (waitpid(child, &status, WNOHANG) == child)
				reaped = 1;
		}
		if (reaped)
			break;
	}
	/* Only if the loop broke on a poll error: wait for the child anyway. */
	if (!reaped)
		while (waitpid(child, &status, 0) < 0 && errno == EINTR)
			;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
