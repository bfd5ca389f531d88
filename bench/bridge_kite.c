/* bench: messages per second local → kite bridge → nats-server → kite
 * bridge → local. Publishes COUNT messages of SIZE bytes on CHANNEL of bus
 * PUB_BUS and receives them on bus SUB_BUS (the bridges between them are
 * the script's), at most WINDOW in flight so that no ring overruns and the
 * figure is what the path sustains without loss:
 *   bridge_kite PUB_BUS SUB_BUS CHANNEL COUNT SIZE WINDOW
 * prints "rate=MSGS_PER_S received=N lost=N seconds=S pub_wakeups=N" (the
 * last: how often the publisher had to wake the exporting bridge). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kite.h"

static _Atomic uint64_t received, lost;
static uint64_t count;
static kite *sub;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *receiver(void *arg)
{
	(void)arg;
	while (atomic_load(&received) + atomic_load(&lost) < count) {
		kite_event ev;
		int rc = kite_recv(sub, &ev, 10000);
		if (rc == -ETIMEDOUT)
			break;
		if (rc)
			continue;
		if (ev.type == KITE_MESSAGE)
			atomic_fetch_add(&received, 1);
		else if (ev.type == KITE_LOSS)
			atomic_fetch_add(&lost, ev.lost);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 7) {
		fprintf(stderr, "usage: bridge_kite PUB_BUS SUB_BUS CHANNEL COUNT SIZE WINDOW\n");
		return 100;
	}
	count = strtoull(argv[4], NULL, 10);
	size_t size = strtoull(argv[5], NULL, 10);
	uint64_t window = strtoull(argv[6], NULL, 10);
	kite *pub;
	kite_options po = {.bus = argv[1]}, so = {.bus = argv[2]};
	if (kite_open(&sub, &so) || kite_subscribe(sub, argv[3]) || kite_open(&pub, &po)) {
		fprintf(stderr, "bridge_kite: cannot open the buses\n");
		return 111;
	}
	char *payload = calloc(1, size ? size : 1);
	pthread_t t;
	pthread_create(&t, NULL, receiver, NULL);
	/* Let the bridges attach the new publisher's ring before timing. */
	struct timespec settle = {0, 300 * 1000000};
	nanosleep(&settle, NULL);
	double start = now_s();
	struct timespec nap = {0, 20000};
	for (uint64_t i = 0; i < count; i++) {
		double stall = now_s();
		while (i - (atomic_load(&received) + atomic_load(&lost)) >= window) {
			if (now_s() - stall > 10)
				goto out; /* the path stopped delivering */
			nanosleep(&nap, NULL);
		}
		memcpy(payload, &i, size < sizeof i ? size : sizeof i);
		kite_publish(pub, argv[3], payload, size);
	}
out:
	pthread_join(t, NULL);
	double secs = now_s() - start;
	uint64_t got = atomic_load(&received);
	kite_stats ps;
	kite_get_stats(pub, &ps);
	printf("rate=%.0f received=%llu lost=%llu seconds=%.3f pub_wakeups=%llu\n", got / secs,
	       (unsigned long long)got, (unsigned long long)atomic_load(&lost), secs,
	       (unsigned long long)ps.wakeups_sent);
	kite_close(pub);
	kite_close(sub);
	free(payload);
	return got == count ? 0 : 1;
}
