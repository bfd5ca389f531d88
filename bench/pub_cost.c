/* pub_cost.c — what kite_publish costs per 64-byte message on its own (the
 * channels benchmark shows only the slower of publisher and subscriber):
 * one handle on a private bus, pinned to CPU 0, publishing on one channel
 * in a loop.
 *
 *   alone   nobody subscribed: the publisher's own work
 *   sub     a second handle (in this process, on CPU 1) subscribed and
 *           reading with kite_recv spinning: the publisher also looks at
 *           its subscriber's waiter page and shares lines with it
 *
 * Prints one line per figure: ns per publish, best and median of 5 runs
 * of 2,000,000.
 *
 *   build/bench/pub_cost [alone|sub]...   (default: both)
 */
#include <errno.h>
#include <kite.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/cost_util.h"

#define MSG 64
#define COUNT 2000000u
#define RUNS 5

static char bus[64];
static _Alignas(64) char msg[MSG];
static _Atomic int stop_reader;

static kite *open_handle(uint32_t spin_us)
{
	return open_handle_on(bus, spin_us);
}

static void *reader(void *arg)
{
	kite *sub = arg;
	pin(1);
	kite_event ev;
	while (!atomic_load_explicit(&stop_reader, memory_order_relaxed))
		kite_recv(sub, &ev, 10);
	return NULL;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void run(int with_sub)
{
	pin(0);
	kite *pub = open_handle(0), *sub = NULL;
	pthread_t t;
	if (with_sub) {
		sub = open_handle(UINT32_MAX - 1);
		int rc = kite_subscribe(sub, "cost");
		if (rc)
			die("kite_subscribe", rc);
		/* Publish until the subscriber holds the ring. */
		kite_event ev;
		while (!(kite_recv(sub, &ev, 1) == 0 && ev.type == KITE_MESSAGE))
			kite_publish(pub, "cost", msg, MSG);
		atomic_store(&stop_reader, 0);
		if (pthread_create(&t, NULL, reader, sub))
			die("pthread_create", -EAGAIN);
	}
	double per[RUNS];
	for (int r = 0; r < RUNS; r++) {
		uint64_t t0 = now_ns();
		for (unsigned i = 0; i < COUNT; i++) {
			int64_t rc = kite_publish(pub, "cost", msg, MSG);
			if (rc < 0)
				die("kite_publish", (int)rc);
		}
		per[r] = (double)(now_ns() - t0) / COUNT;
	}
	if (with_sub) {
		atomic_store(&stop_reader, 1);
		pthread_join(t, NULL);
		kite_close(sub);
	}
	kite_close(pub);
	qsort(per, RUNS, sizeof *per, by_value);
	printf("%s: %.1f ns per publish (best of %d runs of %u; median %.1f)\n",
	       with_sub ? "sub" : "alone", per[0], RUNS, COUNT, per[RUNS / 2]);
}

int main(int argc, char **argv)
{
	static const char *const all[] = {"alone", "sub"};
	const char *const *which = argc > 1 ? (const char *const *)argv + 1 : all;
	int n = argc > 1 ? argc - 1 : 2;
	memset(msg, 7, sizeof msg);
	for (int i = 0; i < n; i++) {
		snprintf(bus, sizeof bus, "pcost%d%d", (int)getpid(), i);
		if (!strcmp(which[i], "alone")) {
			run(0);
		} else if (!strcmp(which[i], "sub")) {
			run(1);
		} else {
			fprintf(stderr, "usage: pub_cost [alone|sub]...\n");
			return 2;
		}
	}
	return 0;
}
