/* See killed_pub.h. */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "child.h"
#include "kite.h"
#include "killed_pub.h"

#define KP_CHILD_MS 60000
#define KP_QUIET_MS 500
#define KP_SETTLE_MS 2500

/* The children's view of the run: the plan and the flags between them. */
static const struct kp_plan *kp_plan;
static struct kp_result *kp_res;
/* [0] sub ready, [1] pub open, [2] go, [3] finish, [4] pub done */
static _Atomic int *kp_flags;

static void channel_name(char *out, size_t size, int c)
{
	/* (a name of at most 200 bytes: the pad is cut to fit) */
	int len = snprintf(out, size, "%s%d", kp_plan->prefix, c);
	int n = kp_plan->name_pad;
	if (n > KITE_CHANNEL_MAX - len - 1)
		n = KITE_CHANNEL_MAX - len - 1;
	if (n > 0 && (size_t)(len + 1 + n) < size) {
		out[len] = '.';
		memset(out + len + 1, 'p', (size_t)n);
		out[len + 1 + n] = 0;
	}
}

static int channel_index(const char *channel)
{
	size_t n = strlen(kp_plan->prefix);
	if (!channel || strncmp(channel, kp_plan->prefix, n))
		return -1;
	char *end;
	long c = strtol(channel + n, &end, 10);
	if (c < 0 || c >= kp_plan->channels || (*end && *end != '.'))
		return -1;
	return (int)c;
}

static void tally(const kite_event *ev)
{
	int c = channel_index(ev->msg.channel);
	if (c < 0) {
		kp_res->stray++;
		return;
	}
	struct kp_stream *s = &kp_res->s[c];
	if (s->gones)
		s->after_gone++;
	switch (ev->type) {
	case KITE_MESSAGE:
		if (s->next && ev->msg.seq != s->next)
			s->disorder++;
		s->next = ev->msg.seq + 1;
		s->messages++;
		break;
	case KITE_LOSS:
		s->lost += ev->lost;
		kp_res->total_lost += ev->lost;
		s->next = (s->next ? s->next : 1) + ev->lost;
		break;
	case KITE_PUBLISHER_NEW:
		s->news++;
		break;
	case KITE_PUBLISHER_GONE:
		s->gones++;
		break;
	default:
		kp_res->stray++;
	}
}

static int subscriber(void *arg)
{
	(void)arg;
	kite_options o = {.bus = kp_plan->bus, .handshake_ms = 2000};
	kite *k = NULL;
	int rc = kite_open(&k, &o);
	CHILD_CHECK(rc == 0, "kite_open: %s", kite_strerror(rc));
	char pattern[128];
	snprintf(pattern, sizeof pattern, "%s>", kp_plan->prefix);
	CHILD_CHECK(kite_subscribe(k, pattern) == 0, "subscribe %s", pattern);
	atomic_store(&kp_flags[0], 1);
	uint64_t deadline = mono_ms() + KP_CHILD_MS, quiet_since = 0, finish_seen = 0;
	kite_event ev;
	while (mono_ms() < deadline) {
		rc = kite_recv(k, &ev, 50);
		if (rc == -ETIMEDOUT) {
			if (!atomic_load(&kp_flags[3]))
				continue;
			/* Resumed: give the control thread time to read the link
			 * to its end and find the publisher gone (slow under ASan
			 * on a busy machine), then stop once nothing comes. */
			if (!finish_seen)
				finish_seen = mono_ms();
			if (!quiet_since)
				quiet_since = mono_ms();
			else if (mono_ms() - quiet_since > KP_QUIET_MS &&
				 mono_ms() - finish_seen > KP_SETTLE_MS)
				break;
			continue;
		}
		CHILD_CHECK(rc == 0, "recv: %s", kite_strerror(rc));
		quiet_since = 0;
		tally(&ev);
	}
	kite_close(k);
	return 0;
}

static int publisher(void *arg)
{
	(void)arg;
	/* (Churning, its subscribe calls must not wait for the stopped
	 * subscriber's acknowledgements.) */
	kite_options o = {.bus = kp_plan->bus, .handshake_ms = kp_plan->churn_at ? 1 : 2000,
			  .idle_ms = kp_plan->idle_ms};
	kite *k = NULL;
	int rc = kite_open(&k, &o);
	CHILD_CHECK(rc == 0, "kite_open: %s", kite_strerror(rc));
	/* With a short handshake, kite_open may return before the
	 * subscriber's pattern is in: wait for it (its stop comes next). */
	kite_stats st = {0};
	for (uint64_t until = mono_ms() + 10000; !st.peers && mono_ms() < until; nap_us(2000))
		kite_get_stats(k, &st);
	nap_us(300000);
	atomic_store(&kp_flags[1], 1);
	uint64_t end = mono_ms() + KP_CHILD_MS;
	while (!atomic_load(&kp_flags[2]))
		CHILD_CHECK(mono_ms() < end, "never told to go");
	char ch[KITE_CHANNEL_MAX + 1];
	for (int pass = 0; pass < (kp_plan->passes ? kp_plan->passes : 1); pass++) {
		if (pass)
			nap_us(3000ull * kp_plan->idle_ms);
		for (int c = 0; c < kp_plan->channels; c++) {
			for (int n = 0; !pass && c && c == kp_plan->churn_at && n < 400; n++) {
				char p[32];
				snprintf(p, sizeof p, "churn.p%d", n);
				kite_subscribe(k, p);
				kite_unsubscribe(k, p);
			}
			channel_name(ch, sizeof ch, c);
			struct kp_stream *s = &kp_res->s[c];
			for (int i = 0; i < kp_plan->per_channel; i++) {
				int64_t want = (int64_t)pass * kp_plan->per_channel + i + 1;
				s->attempted = (uint64_t)want;
				int64_t seq = kite_publish(k, ch, &i, sizeof i);
				CHILD_CHECK(seq == want, "publish %s: %lld", ch, (long long)seq);
				s->published = (uint64_t)seq;
			}
		}
	}
	atomic_store(&kp_flags[4], 1);
	if (!kp_plan->kill_after_us && !kp_plan->kill_while_relinking)
		kill(getpid(), SIGKILL);
	while (mono_ms() < end) /* the parent kills us */
		nap_us(10000);
	return 0;
}

int kp_run(const struct kp_plan *plan, struct kp_result *r, char *why, size_t why_len)
{
	static _Atomic int flags[5];
	_Atomic int *shared_flags = shared_alloc(sizeof flags);
	if (!shared_flags || plan->channels > KP_CHANNELS_MAX) {
		snprintf(why, why_len, "no shared memory, or too many channels");
		return -1;
	}
	kp_plan = plan;
	kp_res = r;
	kp_flags = shared_flags;
	memset(r, 0, sizeof *r);
	int rc = -1;
	pid_t pub = -1, sub = child_start_ready(subscriber, NULL, &kp_flags[0], 10000);
	if (sub < 0) {
		snprintf(why, why_len, "the subscriber did not subscribe");
		goto out;
	}
	if ((pub = child_start_ready(publisher, NULL, &kp_flags[1], 10000)) < 0) {
		snprintf(why, why_len, "the publisher did not open");
		goto out;
	}
	if (plan->stop_subscriber && (kill(sub, SIGSTOP) || !wait_stopped(sub, 5000))) {
		snprintf(why, why_len, "could not stop the subscriber");
		goto out;
	}
	atomic_store(&kp_flags[2], 1);
	if (plan->kill_after_us) {
		nap_us(plan->kill_after_us);
		kill(pub, SIGKILL);
	}
	if (plan->kill_while_relinking) {
		flag_wait(&kp_flags[4], 40000); /* (if not, the kill comes all the same) */
		nap_us(300000); /* (its control thread has done its part) */
		if (kill(pub, SIGSTOP) || !wait_stopped(pub, 5000)) {
			snprintf(why, why_len, "could not stop the publisher");
			goto out;
		}
		kill(sub, SIGCONT);
		nap_us(1000000); /* it drains, finds the link broken, dials again */
		kill(pub, SIGKILL);
	}
	int st = child_wait(pub, 30000);
	pub = -1;
	if (st != 128 + SIGKILL) {
		snprintf(why, why_len, "the publisher ended with %d, not SIGKILL", st);
		goto out;
	}
	kill(sub, SIGCONT);
	atomic_store(&kp_flags[3], 1);
	r->sub_status = child_wait(sub, 30000);
	sub = -1;
	rc = 0;
out:
	if (pub > 0)
		child_kill(pub);
	if (sub > 0) {
		kill(sub, SIGCONT);
		child_kill(sub);
	}
	shared_free(shared_flags, sizeof flags);
	return rc;
}

int kp_check(const struct kp_plan *plan, const struct kp_result *r, char *why, size_t why_len)
{
	if (r->sub_status != 0) {
		snprintf(why, why_len, "the subscriber failed (%d)", r->sub_status);
		return -1;
	}
	if (r->stray) {
		snprintf(why, why_len, "%llu stray events", (unsigned long long)r->stray);
		return -1;
	}
	for (int c = 0; c < plan->channels; c++) {
		const struct kp_stream *s = &r->s[c];
		uint64_t seen = s->messages + s->lost;
		/* A publish cut short by the kill may or may not have made it. */
		int exact = seen == s->published ||
			    (s->attempted > s->published && seen == s->attempted);
		int heard = seen > 0;
		/* Killed inside the channel's first publish, after its ring was
		 * handed over but before seq 1 was written: the subscriber was
		 * told of the stream (NEW on attach) and of its end, nothing
		 * else, which is the truth. */
		uint64_t told = heard || (!s->published && s->attempted == 1 && s->news == 1 &&
					  s->gones == 1);
		if (!exact || s->news != told || s->gones != told ||
		    s->after_gone || s->disorder || (heard && s->next != seen + 1)) {
			snprintf(why, why_len, "%s%d: published %llu (tried %llu), received %llu, "
				 "lost %llu, %llu NEW, %llu GONE, %llu after GONE, %llu out of order",
				 plan->prefix, c, (unsigned long long)s->published,
				 (unsigned long long)s->attempted, (unsigned long long)s->messages,
				 (unsigned long long)s->lost, (unsigned long long)s->news,
				 (unsigned long long)s->gones, (unsigned long long)s->after_gone,
				 (unsigned long long)s->disorder);
			return -1;
		}
	}
	return 0;
}
