/* footprint: a publisher or a subscriber that holds its rings still while
 * bench/footprint_bench.sh reads its memory from /proc.
 *
 *   footprint pub CHANNELS MSGS SIZE [RING_BYTES]   publish MSGS messages of
 *       SIZE bytes on each of fp.0 .. fp.CHANNELS-1 (rings of RING_BYTES via
 *       kite_set_channel_ring, else the default), print "ready"
 *   footprint sub CHANNELS MSGS   subscribe fp.>, read until every stream
 *       has attached and CHANNELS x MSGS messages were read or lost (or 3 s
 *       of quiet), print "ready"
 * Both then hold everything until standard input ends. The bus is
 * $KITE_BUS; rings are never released while idle. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kite.h"

static void hold(kite *k)
{
	printf("ready\n");
	fflush(stdout);
	char c;
	while (read(0, &c, 1) > 0)
		;
	kite_close(k);
}

int main(int argc, char **argv)
{
	if (argc < 4 || (strcmp(argv[1], "pub") && strcmp(argv[1], "sub"))) {
		fprintf(stderr, "usage: footprint pub CHANNELS MSGS SIZE [RING_BYTES] | "
				"sub CHANNELS MSGS\n");
		return 100;
	}
	long channels = atol(argv[2]), msgs = atol(argv[3]);
	kite_options o = {.idle_ms = UINT32_MAX, .handshake_ms = 5000};
	kite *k;
	int rc = kite_open(&k, &o);
	if (rc) {
		fprintf(stderr, "footprint: open: %s\n", kite_strerror(rc));
		return 111;
	}
	if (!strcmp(argv[1], "sub")) {
		if ((rc = kite_subscribe(k, "fp.>"))) {
			fprintf(stderr, "footprint: subscribe: %s\n", kite_strerror(rc));
			return 111;
		}
		printf("subscribed\n");
		fflush(stdout);
		long seen = 0, news = 0;
		kite_event ev;
		while ((news < channels || seen < channels * msgs) &&
		       kite_recv(k, &ev, 3000) == 0) {
			news += ev.type == KITE_PUBLISHER_NEW;
			seen += ev.type == KITE_MESSAGE;
			seen += ev.type == KITE_LOSS ? (long)ev.lost : 0;
		}
		hold(k);
		return 0;
	}
	if (argc < 5)
		return 100;
	size_t size = (size_t)atol(argv[4]);
	if (argc > 5 && (rc = kite_set_channel_ring(k, ">", (size_t)atol(argv[5])))) {
		fprintf(stderr, "footprint: ring size: %s\n", kite_strerror(rc));
		return 100;
	}
	char *payload = calloc(1, size + 1);
	char channel[32];
	for (long c = 0; c < channels; c++) {
		snprintf(channel, sizeof channel, "fp.%ld", c);
		for (long m = 0; m < msgs; m++)
			if ((rc = (int)kite_publish(k, channel, payload, size)) < 0) {
				fprintf(stderr, "footprint: publish: %s\n", kite_strerror(rc));
				return 111;
			}
	}
	free(payload);
	hold(k);
	return 0;
}
