/* chan_harness.h — the roles of the local-channel benchmark, written once.
 *
 * The throughput publisher and subscriber and the ping/pong pair of the
 * round-trip test are the same loops for every transport under test (kite,
 * ZeroMQ, a bare shared-memory ring): only the few operations below differ.
 * So a figure in the table never differs because one transport's loop was
 * written more carefully than another's.
 *
 * Every process is one role. It prints exactly one result line on stdout,
 * of space-separated key=value pairs (integers; times in nanoseconds of
 * CLOCK_MONOTONIC, which all processes of the machine share), and exits 0;
 * anything else means the run failed and the reason is on stderr.
 */
#ifndef CHAN_HARNESS_H
#define CHAN_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum chan_role {
	ROLE_PUB,  /* throughput: publish `count` messages as fast as it can */
	ROLE_SUB,  /* throughput: read every byte of each delivered message */
	ROLE_PING, /* round trip: publish on ping, wait for every pong */
	ROLE_PONG  /* round trip: echo each ping on pong */
};

enum chan_mode {
	MODE_BUSY, /* never sleep: spin inside the transport's receive call if
		    * it can (ops->spins), else poll it in a loop */
	MODE_IDLE, /* block in the transport (sleep until woken) */
	MODE_SPIN, /* kite only: its default, spin ~50 us then sleep */
	MODE_POLL  /* poll the receive call with a zero timeout in a loop */
};

struct chan_args {
	enum chan_role role;
	enum chan_mode mode;
	size_t size;       /* payload bytes of every message, >= 16 */
	uint64_t count;    /* measured messages, or measured round trips */
	uint64_t warmup;   /* round trips before measuring */
	unsigned subs;     /* subscribers (throughput) or echoers (round trip) */
	unsigned id;       /* this subscriber's or echoer's index < subs */
	unsigned timeout;  /* seconds before the process gives up */
	unsigned budget_ms; /* ping: stop measuring after this long (0: never);
			     * warm-up gets a quarter of it on top */
	const char *where; /* rendezvous: a private kite bus, or a directory */
};

/* A received message; valid until the next recv on the same transport. */
struct chan_msg {
	const void *data;
	size_t len;
	uint64_t seq; /* the transport's own sequence number, 0 if it has none */
};

/* Wait passed to recv: 0 polls once; CHAN_BLOCK_MS blocks up to that long. */
#define CHAN_BLOCK_MS 200

/* Most subscribers or echoers a run may have. */
#define CHAN_MAX_SUBS 8

struct chan_ops {
	const char *name;
	/* 1 if recv(.., CHAN_BLOCK_MS) can spin without sleeping, in
	 * MODE_BUSY (kite: spin_us longer than the wait). */
	int spins;
	/* Set up this process's endpoints for a->role: one output stream (the
	 * data, ping or pong stream, or a subscriber's acknowledgements) and
	 * one input stream. NULL on failure, reason on stderr. */
	void *(*open)(const struct chan_args *a);
	/* Send one message on the output stream: 0, or -1. */
	int (*send)(void *t, const void *buf, size_t len);
	/* Next message on the input stream: 1 (and *m set), 0 if nothing came
	 * within timeout_ms (0 or CHAN_BLOCK_MS), -1 on error. Losses the
	 * transport reports are added to *lost. */
	int (*recv)(void *t, struct chan_msg *m, int timeout_ms,
		    uint64_t *lost);
	/* Publisher: return 0 once `subs` subscribers will see the next
	 * message (-1 after timeout_ms). NULL: the harness finds out itself by
	 * sending hellos and counting the subscribers' acknowledgements, and
	 * waits for their "done" before it exits. */
	int (*wait_subscribers)(void *t, unsigned subs, int timeout_ms);
	/* Extra key=value pairs for the result line; may be NULL. */
	void (*report)(void *t, FILE *out);
	void (*close)(void *t);
};

/* Parse argv (ROLE then --options, see usage in chan_harness.c), run the
 * role against ops and print the result line. Returns the exit status. */
int chan_main(const struct chan_ops *ops, int argc, char **argv);

/* Monotonic clock in nanoseconds. */
uint64_t chan_now_ns(void);

/* One step of a busy wait: a CPU pause, and every 64th step a
 * sched_yield() so that busy processes sharing one CPU (the 1->4 cases)
 * still take turns quickly. */
void chan_pause(unsigned *step);
/* After a look that found nothing: 1 (having paused) to look again, 0 once
 * timeout_ms have passed since the first empty look, or at once for 0.
 * The clock is read only then: never while messages keep coming. *until
 * starts at 0. */
int chan_keep_waiting(uint64_t *until, unsigned *step, int timeout_ms);

#endif /* CHAN_HARNESS_H */
