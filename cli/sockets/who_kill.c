/* kite who --kill: signal the holders of a target through pidfds, escalate
 * to KILL after a time-out, and confirm the target is free.
 *
 * Why pidfds: between reading /proc and kill(2) a holder may exit and its
 * PID be reused by an unrelated process. We open a pidfd first, then check
 * that the process behind it still holds one of the target's sockets; from
 * then on every signal goes through that pidfd, which can only ever name
 * that one process. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "who.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

struct holder {
	pid_t pid;
	uid_t uid;
	char comm[32];
	int pidfd;   /* -1 once it exited or was never signalled */
};

static int pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int pidfd_signal(int pidfd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* 1 if nothing holds the target any more; -errno on a /proc failure. */
static int target_free(const struct who_target *t)
{
	struct sock_list l = {0}; /* the sockets only: no owners needed */
	int rc = sock_list_collect(&l, (unsigned)t->proto, who_matches, (void *)t);
	int n = (int)l.n;
	sock_list_free(&l);
	return rc < 0 ? rc : n == 0;
}

/* Open a pidfd on h and check the process behind it still holds one of the
 * inodes; 1 ready to signal, 0 no longer a holder, -1 cannot (reported). */
static int take_aim(struct holder *h, const unsigned long *inodes, size_t n)
{
	char user[32];
	h->pidfd = pidfd_open(h->pid);
	if (h->pidfd < 0) {
		if (errno == ESRCH)
			return 0;
		fprintf(stderr, "kite who: pidfd_open(%d): %s\n", (int)h->pid,
			strerror(errno));
		return -1;
	}
	int held = proc_holds_socket(h->pid, inodes, n);
	if (held == 1)
		return 1;
	if (held < 0)
		fprintf(stderr, "kite who: no permission to see the fds of pid %d "
			"(%s, user %s): not signalled\n", (int)h->pid, h->comm,
			user_name(h->uid, user, sizeof user));
	close(h->pidfd);
	h->pidfd = -1;
	return held < 0 ? -1 : 0;
}

static int signal_holder(struct holder *h, int sig, const char *why)
{
	char user[32], buf[16];
	if (pidfd_signal(h->pidfd, sig) == 0) {
		printf("sent %s to pid %d (%s, user %s)%s\n", signal_name(sig, buf, sizeof buf),
		       (int)h->pid, h->comm, user_name(h->uid, user, sizeof user), why);
		return 0;
	}
	if (errno == ESRCH) { /* it exited meanwhile: fine */
		close(h->pidfd);
		h->pidfd = -1;
		return 0;
	}
	fprintf(stderr, "kite who: %s to signal pid %d (%s, user %s): %s\n",
		errno == EPERM ? "no permission" : "failed", (int)h->pid, h->comm,
		user_name(h->uid, user, sizeof user), strerror(errno));
	close(h->pidfd);
	h->pidfd = -1;
	return -1;
}

/* Wait until the target is free or deadline; report exits. 1 free, 0 not,
 * -errno. */
static int wait_free(const struct who_target *t, struct holder *hs, size_t n,
		     int64_t deadline)
{
	struct pollfd *pf = calloc(n ? n : 1, sizeof *pf);
	if (!pf)
		return -ENOMEM;
	int rc;
	for (;;) {
		if ((rc = target_free(t)) != 0 || now_ms() >= deadline)
			break;
		size_t k = 0;
		for (size_t i = 0; i < n; i++)
			if (hs[i].pidfd >= 0)
				pf[k++] = (struct pollfd){.fd = hs[i].pidfd, .events = POLLIN};
		int64_t left = deadline - now_ms();
		/* Exits wake us at once; sockets closed by live processes are
		 * noticed within 50 ms. */
		poll(pf, k, (int)(left < 50 ? (left > 0 ? left : 0) : 50));
		for (size_t i = 0; i < n; i++) {
			if (hs[i].pidfd < 0)
				continue;
			struct pollfd one = {.fd = hs[i].pidfd, .events = POLLIN};
			if (poll(&one, 1, 0) == 1) {
				printf("pid %d exited\n", (int)hs[i].pid);
				close(hs[i].pidfd);
				hs[i].pidfd = -1;
			}
		}
	}
	free(pf);
	return rc;
}

/* Who listens on a Unix target, as the kernel says (SO_PEERCRED of a
 * connection to it); -1 if it cannot say (nothing listens, a datagram
 * socket). /proc/net/unix prints names byte for byte, newlines included, so
 * anyone can forge a line that ties a name to someone else's socket: the
 * name-to-holder mapping must be confirmed before a signal is sent. */
static pid_t unix_listener_pid(const struct who_target *t)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	size_t n = strlen(t->path);
	if (n + 1 > sizeof a.sun_path)
		return -1;
	memcpy(a.sun_path + (t->abstract ? 1 : 0), t->path, n);
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
				    (t->abstract ? 1 : 0));
	static const int types[] = {SOCK_STREAM, SOCK_SEQPACKET};
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
		int fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			return -1;
		struct ucred cred;
		socklen_t cl = sizeof cred;
		pid_t pid = -1;
		if (connect(fd, (struct sockaddr *)&a, len) == 0 &&
		    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0 && cred.pid > 0)
			pid = cred.pid;
		close(fd);
		if (pid > 0)
			return pid;
	}
	return -1;
}

int who_kill(const struct who_target *t, struct sock_list *l, int sig,
	     int64_t timeout_ms)
{
	size_t unseen = 0, nh = 0, nin = 0;
	struct holder *hs = calloc(l->nprocs ? l->nprocs : 1, sizeof *hs);
	unsigned long *inodes = calloc(l->n, sizeof *inodes);
	int code = EXIT_NO, blocked = 0;
	if (!hs || !inodes) {
		code = fail(EXIT_SYSTEM, "who", "out of memory");
		goto out;
	}
	for (size_t i = 0; i < l->n; i++) {
		inodes[nin++] = l->rows[i].inode;
		if (l->rows[i].owner < 0)
			unseen++;
	}
	if (unseen && l->hidden)
		fprintf(stderr, "kite who: could not see who holds %zu socket(s) of %s: "
			"%u processes could not be inspected (%s)\n",
			unseen, t->label, l->hidden, sock_hidden_why());
	else if (unseen)
		fprintf(stderr, "kite who: could not see who holds %zu socket(s) of %s: "
			"no process visible here holds them (their holder is in another "
			"PID namespace, e.g. a container)\n", unseen, t->label);
	if (t->proto == SL_UNIX) {
		pid_t listener = unix_listener_pid(t);
		int confirmed = 0;
		for (size_t p = 0; p < l->nprocs && listener > 0; p++)
			confirmed |= l->procs[p].pid == listener;
		if (!confirmed) {
			code = fail(EXIT_NO, "who", "the kernel does not confirm that the "
				    "processes listed hold %s (it is not a listening stream "
				    "or seqpacket socket, or /proc/net/unix was forged): "
				    "nothing signalled", t->label);
			goto out;
		}
	}
	/* Each holding process once (procs are unique per pid). */
	for (size_t p = 0; p < l->nprocs; p++) {
		struct holder *h = &hs[nh];
		h->pid = l->procs[p].pid;
		h->uid = l->procs[p].uid;
		snprintf(h->comm, sizeof h->comm, "%s", l->procs[p].comm);
		h->pidfd = -1;
		if (h->pid == getpid())
			continue;
		int aim = take_aim(h, inodes, nin);
		if (aim < 0)
			blocked = 1;
		if (aim <= 0)
			continue;
		if (signal_holder(h, sig, "") < 0)
			blocked = 1;
		if (h->pidfd >= 0) /* signalled and not yet gone: wait for it */
			nh++;
	}
	/* Nothing signalled (holders unseen or refused): no point waiting. */
	int rc = wait_free(t, hs, nh, nh ? now_ms() + timeout_ms : 0);
	if (rc == 0 && nh && sig != SIGKILL) {
		char why[64];
		int killed = 0;
		snprintf(why, sizeof why, " after %.1f s", (double)timeout_ms / 1000.0);
		for (size_t i = 0; i < nh; i++) {
			if (hs[i].pidfd < 0)
				continue;
			if (signal_holder(&hs[i], SIGKILL, why) < 0)
				blocked = 1;
			else
				killed++;
		}
		/* KILL cannot be caught: exits come within a moment, but a loaded
		 * machine may need some seconds. */
		if (killed)
			rc = wait_free(t, hs, nh, now_ms() +
				       (timeout_ms > 5000 ? timeout_ms : 5000));
	}
	if (rc < 0) {
		code = fail(EXIT_SYSTEM, "who", "reading /proc: %s", strerror(-rc));
	} else if (rc == 1) {
		printf("%s is free\n", t->label);
		code = EXIT_DONE;
	} else {
		fprintf(stderr, "kite who: %s is still held%s; holders now:\n", t->label,
			blocked ? " (some holders could not be seen or signalled)" : "");
		struct sock_list now = {0};
		if (who_collect(t, &now) == 0)
			sock_print_table(&now, "who");
		sock_list_free(&now);
	}
	for (size_t i = 0; i < nh; i++)
		if (hs[i].pidfd >= 0)
			close(hs[i].pidfd);
out:
	free(hs);
	free(inodes);
	return code;
}
