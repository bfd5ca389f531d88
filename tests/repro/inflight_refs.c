/* Stopped subscribers pin large-message memfds in flight on their links;
 * the kernel counts descriptors in flight per sending USER and, past its
 * RLIMIT_NOFILE, fails every SCM_RIGHTS send with ETOOMANYREFS. libkite
 * takes that error for a dead link (outq.c ki_peer_send/ki_outq_flush) and
 * cuts the link of a HEALTHY subscriber too: its large messages are lost.
 *   cc -D_GNU_SOURCE -O1 -g -Iinclude -o /tmp/r2/inflight_refs /tmp/r2/inflight_refs.c build/libkite.a -lpthread
 * Run as root (everything runs as nobody). Usage: inflight_refs STOPPED */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <grp.h>
#include <time.h>
#include <unistd.h>
#include "kite.h"

static char bus[64];
struct sh { _Atomic int ready, stop, go; _Atomic long got, lost, gone; };
static struct sh *sh;

static void nobody(void)
{
	if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
		_exit(99);
}

static void sub(int healthy)
{
	nobody();
	kite_options o = {.bus = bus, .handshake_ms = 3000};
	kite *k;
	if (kite_open(&k, &o) || kite_subscribe(k, "big.>"))
		_exit(2);
	atomic_fetch_add(&sh->ready, 1);
	kite_event ev;
	while (!atomic_load(&sh->stop)) {
		if (kite_recv(k, &ev, 50) || !healthy)
			continue;
		if (ev.type == KITE_MESSAGE) atomic_fetch_add(&sh->got, 1);
		if (ev.type == KITE_LOSS) atomic_fetch_add(&sh->lost, (long)ev.lost);
		if (ev.type == KITE_PUBLISHER_GONE) atomic_fetch_add(&sh->gone, 1);
	}
	_exit(0);
}

int main(int argc, char **argv)
{
	int nstopped = argc > 1 ? atoi(argv[1]) : 30;
	setvbuf(stdout, NULL, _IONBF, 0);
	snprintf(bus, sizeof bus, "inflight-%d", getpid());
	sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t pub = fork();
	if (!pub) {
		nobody();
		struct rlimit rl = {1024, 1024};
		setrlimit(RLIMIT_NOFILE, &rl);
		kite_options o = {.bus = bus};
		kite *k;
		if (kite_open(&k, &o))
			_exit(2);
		atomic_fetch_add(&sh->ready, 100);
		while (!atomic_load(&sh->go))
			usleep(1000);
		static char buf[3072];
		long err = 0;
		for (int i = 0; i < 3000; i++) {
			if (kite_publish(k, "big.x", buf, sizeof buf) < 0) err++;
			usleep(300);
		}
		kite_stats st;
		kite_get_stats(k, &st);
		printf("publisher: published %llu, errors %ld, peers %llu\n", (unsigned long long)st.published, err,
		       (unsigned long long)st.peers);
		sleep(1);
		kite_close(k);
		_exit(0);
	}
	while (atomic_load(&sh->ready) < 100) usleep(1000);
	pid_t *kids = calloc(nstopped + 1, sizeof *kids);
	for (int i = 0; i <= nstopped; i++)
		if (!(kids[i] = fork()))
			sub(i == 0);
	while (atomic_load(&sh->ready) < 100 + nstopped + 1) usleep(1000);
	for (int i = 1; i <= nstopped; i++)
		kill(kids[i], SIGSTOP);
	printf("%d subscribers stopped, 1 reading; publisher (nobody, RLIMIT_NOFILE 1024) sends 3 KiB messages\n", nstopped);
	usleep(500000);
	atomic_store(&sh->go, 1);
	pid_t p2 = pub;
	waitpid(p2, NULL, 0);
	sleep(1);
	printf("healthy subscriber: received %ld, reported lost %ld, GONE %ld (expected 3000 received, 0 lost)\n",
	       atomic_load(&sh->got), atomic_load(&sh->lost), atomic_load(&sh->gone));
	atomic_store(&sh->stop, 1);
	for (int i = 0; i <= nstopped; i++) { kill(kids[i], SIGCONT); kill(kids[i], SIGKILL); waitpid(kids[i], NULL, 0); }
	return atomic_load(&sh->lost) != 0;
}
