/* A subscriber that unsubscribes and subscribes again while its link to a
 * publisher is down gets, once the link is back, the publisher's stream from
 * where its FIRST subscription began: messages it already had come again
 * (seq goes backwards), and messages from before its new subscription are
 * delivered or, past the ring, reported lost (a false KITE_LOSS).
 * Build against the tiny-queue variant (OUTQ_MAX 32) so the link gets cut:
 *   cc -D_GNU_SOURCE -O1 -g -Iinclude -o /tmp/r2/resub_while_down \
 *      /tmp/r2/resub_while_down.c build/variant/src/*.o -lpthread
 * Usage: resub_while_down N   (N messages published while S is stopped) */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "kite.h"

struct rec { int type; uint64_t seq, lost; int after_resub; };
struct shared {
	_Atomic int pub_cmd, pub_done, sub_cmd, sub_done, ready;
	_Atomic int n;
	struct rec r[100000];
};
static struct shared *sh;
static char bus[64];

static void msleep(int ms) { struct timespec t = {ms / 1000, (ms % 1000) * 1000000L}; nanosleep(&t, NULL); }

static void publisher(int n)
{
	kite_options o = {.bus = bus, .handshake_ms = 20};
	kite *k;
	if (kite_open(&k, &o)) _exit(2);
	atomic_store(&sh->ready, 1);
	for (;;) {
		int c = atomic_load(&sh->pub_cmd);
		if (c == 1) { /* 10 messages */
			for (int i = 0; i < 10; i++) kite_publish(k, "rs.a", "x", 1);
		} else if (c == 2) { /* churn until the stopped subscriber's link is cut, then publish n */
			char p[32];
			for (int i = 0; i < 150; i++) {
				snprintf(p, sizeof p, "churn.%d", i);
				kite_subscribe(k, p);
				kite_unsubscribe(k, p);
			}
			for (int i = 0; i < n; i++) kite_publish(k, "rs.a", "y", 1);
		} else if (c == 3) {
			for (int i = 0; i < 5; i++) kite_publish(k, "rs.a", "z", 1);
		} else if (c == 9) {
			kite_close(k);
			_exit(0);
		} else { msleep(5); continue; }
		atomic_store(&sh->pub_cmd, 0);
		atomic_fetch_add(&sh->pub_done, 1);
	}
}

static void subscriber(void)
{
	kite_options o = {.bus = bus, .handshake_ms = 2000};
	kite *k;
	if (kite_open(&k, &o) || kite_subscribe(k, "rs.a")) _exit(2);
	atomic_store(&sh->ready, 2);
	int after = 0;
	for (;;) {
		kite_event ev;
		int c = atomic_load(&sh->sub_cmd);
		if (c == 1) {
			int a = kite_unsubscribe(k, "rs.a");
			int b = kite_subscribe(k, "rs.a");
			printf("S: unsubscribe %d, subscribe %d (link down)\n", a, b);
			fflush(stdout);
			after = 1;
			atomic_store(&sh->sub_cmd, 0);
		} else if (c == 9) {
			kite_close(k);
			_exit(0);
		}
		if (kite_recv(k, &ev, 20) == 0) {
			int i = atomic_fetch_add(&sh->n, 1);
			sh->r[i] = (struct rec){ev.type, ev.msg.seq, ev.lost, after};
		}
	}
}

static const char *tname(int t)
{
	return t == KITE_MESSAGE ? "MESSAGE" : t == KITE_LOSS ? "LOSS" : t == KITE_PUBLISHER_GONE ? "GONE"
	       : t == KITE_PUBLISHER_NEW ? "NEW" : "REFUSED";
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 20;
	setvbuf(stdout, NULL, _IONBF, 0);
	snprintf(bus, sizeof bus, "resub-%d", getpid());
	sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t P = fork();
	if (!P) publisher(n);
	while (atomic_load(&sh->ready) != 1) msleep(1);
	pid_t S = fork();
	if (!S) subscriber();
	while (atomic_load(&sh->ready) != 2) msleep(1);
	atomic_store(&sh->pub_cmd, 1);
	while (atomic_load(&sh->n) < 11) msleep(1); /* NEW + 10 */
	printf("S got seq 1..10; stopping S, cutting its link (churn), publishing %d more\n", n);
	kill(S, SIGSTOP);
	atomic_store(&sh->pub_cmd, 2);
	while (atomic_load(&sh->pub_done) < 2) msleep(5);
	printf("stopping P, resuming S (its link is lost, the re-dial waits for P's hello)\n");
	kill(P, SIGSTOP);
	kill(S, SIGCONT);
	msleep(800);
	atomic_store(&sh->sub_cmd, 1);
	while (atomic_load(&sh->sub_cmd)) msleep(1);
	msleep(100);
	printf("resuming P\n");
	kill(P, SIGCONT);
	msleep(1500);
	atomic_store(&sh->pub_cmd, 3); /* seq n+11 .. n+15 */
	msleep(800);
	int m = atomic_load(&sh->n), backwards = 0, lostafter = 0, msgsafter = 0;
	uint64_t last = 0;
	int shown = 0;
	for (int i = 0; i < m; i++) {
		struct rec *r = &sh->r[i];
		if (r->after_resub) {
			if (shown++ < 6 || r->type != KITE_MESSAGE)
				printf("  after resubscribe: %s seq %llu lost %llu\n", tname(r->type),
				       (unsigned long long)r->seq, (unsigned long long)r->lost);
			if (r->type == KITE_LOSS) lostafter += r->lost;
			if (r->type == KITE_MESSAGE) msgsafter++;
		}
		if (r->type == KITE_MESSAGE) {
			if (r->seq <= last) backwards++;
			last = r->seq;
		}
	}
	printf("events %d; messages whose seq went backwards: %d; LOSS after resubscribe: %d; "
	       "messages after resubscribe: %d (expected 5: seq %d..%d)\n",
	       m, backwards, lostafter, msgsafter, n + 11, n + 15);
	atomic_store(&sh->sub_cmd, 9);
	atomic_store(&sh->pub_cmd, 9);
	waitpid(S, NULL, 0);
	waitpid(P, NULL, 0);
	return backwards || lostafter || msgsafter != 5;
}
