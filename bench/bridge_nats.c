/* bench: plain NATS publisher → subscriber through the same server, the
 * baseline of bridge_kite.c: COUNT messages of SIZE bytes on SUBJECT, at
 * most WINDOW in flight, publisher and subscriber on two connections:
 *   bridge_nats URL SUBJECT COUNT SIZE WINDOW
 * prints "rate=MSGS_PER_S received=N lost=0 seconds=S". */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

static _Atomic uint64_t received;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void on_msg(natsConnection *nc, natsSubscription *s, natsMsg *m, void *c)
{
	(void)nc;
	(void)s;
	(void)c;
	atomic_fetch_add(&received, 1);
	natsMsg_Destroy(m);
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: bridge_nats URL SUBJECT COUNT SIZE WINDOW\n");
		return 100;
	}
	uint64_t count = strtoull(argv[3], NULL, 10);
	int size = atoi(argv[4]);
	uint64_t window = strtoull(argv[5], NULL, 10);
	natsConnection *pub = NULL, *subc = NULL;
	natsSubscription *sub = NULL;
	if (natsConnection_ConnectTo(&pub, argv[1]) != NATS_OK ||
	    natsConnection_ConnectTo(&subc, argv[1]) != NATS_OK ||
	    natsConnection_Subscribe(&sub, subc, argv[2], on_msg, NULL) != NATS_OK ||
	    natsSubscription_SetPendingLimits(sub, -1, -1) != NATS_OK ||
	    natsConnection_FlushTimeout(subc, 5000) != NATS_OK) {
		fprintf(stderr, "bridge_nats: cannot connect to %s\n", argv[1]);
		return 111;
	}
	char *payload = calloc(1, size ? (size_t)size : 1);
	double start = now_s();
	struct timespec nap = {0, 20000};
	for (uint64_t i = 0; i < count; i++) {
		double stall = now_s();
		while (i - atomic_load(&received) >= window) {
			if (now_s() - stall > 10)
				goto out;
			nanosleep(&nap, NULL);
		}
		memcpy(payload, &i, (size_t)size < sizeof i ? (size_t)size : sizeof i);
		natsConnection_Publish(pub, argv[2], payload, size);
	}
	while (atomic_load(&received) < count && now_s() - start < 60)
		nanosleep(&nap, NULL);
out:;
	double secs = now_s() - start;
	uint64_t got = atomic_load(&received);
	printf("rate=%.0f received=%llu lost=%llu seconds=%.3f\n", got / secs,
	       (unsigned long long)got, (unsigned long long)(count - got), secs);
	natsSubscription_Destroy(sub);
	natsConnection_Destroy(pub);
	natsConnection_Destroy(subc);
	nats_Close();
	free(payload);
	return got == count ? 0 : 1;
}
