/* many_handles N [PROCS]: hold N kite handles on $KITE_BUS, spread over
 * PROCS processes (default, or 0: as few as RLIMIT_NOFILE's hard limit
 * allows), each publishing once on its own channel
 * (many.<i>); prints "ready N" when all are
 * open, then waits until stdin closes or a signal. For ls_bench.sh: kite
 * ls over a crowded bus.
 *
 * Every pair of handles on a bus shares one link, so N handles hold about
 * 2*N*N descriptors in all (a link and a pidfd per peer): each process raises RLIMIT_NOFILE to what its
 * share needs (as root; else to its hard limit) and fails with a clear
 * message when that is not enough. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kite.h"

static int hold(int first, int count, int total)
{
	/* Each handle: its own 7 descriptors, and per other handle a link and
	 * a pidfd; more for a moment while links are verified: a quarter
	 * more to spare. (The soft limit goes up to the hard one; never down.) */
	rlim_t need = (rlim_t)count * (rlim_t)(2 * total + 8) * 5 / 4 + 64;
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur != RLIM_INFINITY && need > rl.rlim_cur) {
		fprintf(stderr, "many_handles: %d handles need about %llu descriptors, "
			"RLIMIT_NOFILE allows %llu (raise it, or use more processes)\n",
			count, (unsigned long long)need, (unsigned long long)rl.rlim_cur);
		return 1;
	}
	kite **k = calloc((size_t)count, sizeof *k);
	if (!k)
		return 1;
	kite_options o = {.handshake_ms = 20000};
	for (int i = 0; i < count; i++) {
		int rc = kite_open(&k[i], &o);
		if (rc) {
			fprintf(stderr, "many_handles: handle %d: %s\n", first + i, kite_strerror(rc));
			return 1;
		}
		char ch[32];
		snprintf(ch, sizeof ch, "many.%d", first + i);
		kite_publish(k[i], ch, "x", 1);
	}
	return 0;
}

static void on_term(int sig)
{
	(void)sig; /* (interrupts the read below: the children are stopped) */
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1000, procs = argc > 2 ? atoi(argv[2]) : 0;
	struct rlimit rl;
	if (procs == 0 && n > 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		/* Handles one process can hold (as hold() counts them). */
		unsigned long long per = rl.rlim_max == RLIM_INFINITY ? (unsigned long long)n
					 : (rl.rlim_max - 64) * 4 / 5 / (unsigned long long)(2 * n + 8);
		procs = per ? (int)(((unsigned long long)n + per - 1) / per) : n + 1;
	}
	if (n < 1 || procs < 1 || procs > n) {
		fprintf(stderr, "usage: many_handles N [PROCS]\n");
		return 2;
	}
	int ready[2];
	if (pipe(ready))
		return 1;
	pid_t *kids = calloc((size_t)procs, sizeof *kids);
	for (int p = 0; p < procs; p++) {
		int first = (int)((long)n * p / procs), count = (int)((long)n * (p + 1) / procs) - first;
		if ((kids[p] = fork()) == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			close(ready[0]);
			int rc = hold(first, count, n);
			if (write(ready[1], rc ? "f" : "r", 1) != 1 || rc)
				_exit(1);
			/* (Handles stay open until the parent says so.) */
			for (;;)
				pause();
		}
	}
	close(ready[1]);
	for (int p = 0; p < procs; p++) {
		char c = 0;
		if (read(ready[0], &c, 1) != 1 || c != 'r') {
			for (int q = 0; q < procs; q++)
				kill(kids[q], SIGKILL);
			return 1;
		}
	}
	struct sigaction sa = {.sa_handler = on_term}; /* no SA_RESTART */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	printf("ready %d\n", n);
	fflush(stdout);
	char buf[64];
	while (read(STDIN_FILENO, buf, sizeof buf) > 0)
		;
	for (int p = 0; p < procs; p++)
		kill(kids[p], SIGTERM);
	while (wait(NULL) > 0)
		;
	return 0;
}
