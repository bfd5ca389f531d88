/* A program that defines functions with the names libkite's internals had
 * before they were prefixed (realtime_ns, ring_write, peer_send, ...). It
 * must link against libkite.a and libkite.so alike and get libkite's own
 * behaviour: a message stamped with the real clock, not with this file's 42.
 * Built and run by tests/sh/symbols_test.sh; the bus comes from $KITE_BUS. */
#include <kite.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

uint64_t realtime_ns(void) { return 42; }
uint64_t monotonic_ns(void) { return 42; }
int ring_write(void) { return -1; }
int peer_send(void) { return -1; }
int wire_send(void) { return -1; }
int shm_create(void) { return -1; }
int event_push(void) { return -1; }
int policy_allows(void) { return 0; }
int deadline_after_ms(void) { return -1; }

int main(void)
{
	kite *sub, *pub;
	int rc = kite_open(&sub, NULL);
	if (rc || (rc = kite_open(&pub, NULL))) {
		fprintf(stderr, "kite_open: %s\n", kite_strerror(rc));
		return 1;
	}
	if ((rc = kite_subscribe(sub, "shadow.>")) ||
	    (rc = (int)kite_publish(pub, "shadow.test", "x", 1)) < 1) {
		fprintf(stderr, "subscribe/publish: %s\n", kite_strerror(rc));
		return 1;
	}
	kite_event ev;
	while ((rc = kite_recv(sub, &ev, 2000)) == 0 && ev.type != KITE_MESSAGE)
		;
	if (rc) {
		fprintf(stderr, "kite_recv: %s\n", kite_strerror(rc));
		return 1;
	}
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	uint64_t now_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
	uint64_t age = now_ns - ev.msg.timestamp_ns;
	printf("timestamp_ns=%llu age_ns=%llu\n",
	       (unsigned long long)ev.msg.timestamp_ns, (unsigned long long)age);
	kite_close(pub);
	kite_close(sub);
	return age < 60000000000ull ? 0 : 1;
}
