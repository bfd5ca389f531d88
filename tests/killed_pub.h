/* A publisher killed while its subscriber lags: the scenario shared by
 * tests/handovers_test.c and the cut-link variant (tests/variants). A
 * subscriber child takes every event on "<prefix>N"; a publisher child
 * publishes on brand-new channels while the subscriber is stopped (or
 * running), and is SIGKILLed; the subscriber is resumed and drains. The
 * tallies say whether every message was delivered or reported lost. */
#ifndef KITE_TEST_KILLED_PUB_H
#define KITE_TEST_KILLED_PUB_H

#include <stdint.h>

#define KP_CHANNELS_MAX 1400

struct kp_plan {
	const char *bus;
	const char *prefix;  /* channels are prefix0, prefix1, ... */
	int channels;        /* up to KP_CHANNELS_MAX */
	int per_channel;     /* messages on each */
	int name_pad;        /* bytes of padding in channel names (fills sockets) */
	int stop_subscriber; /* SIGSTOP it while the publisher works */
	/* 0: the publisher kills itself after its last message; else the
	 * parent kills it this many microseconds after it starts. */
	unsigned kill_after_us;
	/* Before channel churn_at (if > 0), the publisher subscribes and
	 * unsubscribes 400 patterns: records a stopped subscriber does not
	 * read (with the variant's tiny queues, its link is cut). */
	int churn_at;
	/* The publisher is stopped once done, the subscriber resumed (it
	 * finds its link broken, the publisher alive: it tries to link again),
	 * and only then is the publisher killed. */
	int kill_while_relinking;
	/* The publisher's kite_options.idle_ms (0: the default), and how many
	 * times it publishes per_channel on every channel (0: once), waiting
	 * three idle spells between times: its rings are released and made
	 * again while their first hand-overs still wait. */
	uint32_t idle_ms;
	int passes;
};

struct kp_stream {
	uint64_t attempted, published; /* by the publisher: last seq tried, returned */
	uint64_t next, messages, lost, news, gones, disorder, after_gone;
};

struct kp_result {
	struct kp_stream s[KP_CHANNELS_MAX];
	uint64_t stray;     /* events on no channel of ours, or unexpected */
	uint64_t total_lost;
	int sub_status;     /* the subscriber child's exit status */
};

/* Run the plan; 0, or -1 if the children could not be set up (then why
 * is filled). r must be shared memory (shared_alloc). */
int kp_run(const struct kp_plan *plan, struct kp_result *r, char *why, size_t why_len);

/* Check every channel: received + lost = published (or one more, for a
 * publish the kill cut short), one NEW and one GONE for a channel that
 * said anything, nothing after GONE, in order. 0, or -1 with why filled. */
int kp_check(const struct kp_plan *plan, const struct kp_result *r, char *why, size_t why_len);

#endif
