/* Peers let in by a gid rule (kite_allow_gid) are admitted as strangers:
 * only STRANGER_LINKS_MAX (4) links per uid. A fifth process of that uid
 * and group never links with the publisher and receives nothing.
 *   cc -D_GNU_SOURCE -O1 -g -Iinclude -o /tmp/r2/gid_admission /tmp/r2/gid_admission.c build/libkite.a -lpthread
 * Run as root. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "kite.h"

#define KIDS 6
#define GID 4242
static char bus[64];
static _Atomic int *got, *ready, *stop;

static void kid(int i)
{
	if (setgroups(0, NULL) || setresgid(GID, GID, GID) || setresuid(65534, 65534, 65534))
		_exit(99);
	kite_options o = {.bus = bus};
	kite *k;
	if (kite_open(&k, &o) || kite_subscribe(k, "g.>"))
		_exit(2);
	atomic_fetch_add(ready, 1);
	kite_event ev;
	while (!atomic_load(stop))
		if (kite_recv(k, &ev, 50) == 0 && ev.type == KITE_MESSAGE)
			atomic_fetch_add(&got[i], 1);
	kite_close(k);
	_exit(0);
}

int main(void)
{
	snprintf(bus, sizeof bus, "gidadm-%d", getpid());
	_Atomic int *sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	got = sh, ready = sh + KIDS, stop = sh + KIDS + 1;
	kite_options o = {.bus = bus};
	kite *v;
	if (kite_open(&v, &o) || kite_allow_gid(v, "g.>", GID))
		return 2;
	pid_t pids[KIDS];
	for (int i = 0; i < KIDS; i++) {
		if (!(pids[i] = fork()))
			kid(i);
		struct timespec t = {0, 100000000};
		nanosleep(&t, NULL); /* one after the other: no burst */
	}
	while (atomic_load(ready) < KIDS)
		usleep(10000);
	for (int n = 0; n < 20; n++) {
		kite_publish(v, "g.x", "hello", 5);
		usleep(50000);
	}
	usleep(300000);
	kite_stats st;
	kite_get_stats(v, &st);
	int bad = 0;
	for (int i = 0; i < KIDS; i++) {
		printf("subscriber %d (uid 65534 gid %d): received %d of 20\n", i, GID, atomic_load(&got[i]));
		bad += atomic_load(&got[i]) != 20;
	}
	printf("publisher (root, kite_allow_gid(\"g.>\", %d)): peers %llu\n", GID, (unsigned long long)st.peers);
	atomic_store(stop, 1);
	for (int i = 0; i < KIDS; i++)
		waitpid(pids[i], NULL, 0);
	kite_close(v);
	return bad ? 1 : 0;
}
