/* chan_harness.c — the four roles of the local-channel benchmark.
 *
 * Every message is `size` bytes: bytes 0-7 hold an index, bytes 8-15 the
 * sender's id (subscriber or echoer), the rest a fixed pattern. Index 0 is
 * a hello (or its acknowledgement), CHAN_END the last word; measured
 * messages and round trips count from 1.
 */
#include "chan_harness.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHAN_HELLO 0
#define CHAN_END UINT64_MAX
#define HELLO_EVERY_NS 1000000ull /* a hello each millisecond until answered */

static const char usage[] =
	"usage: PROG pub|sub|ping|pong [--size BYTES] [--count N] [--warmup N]\n"
	"            [--subs N] [--id I] [--mode busy|idle|spin|poll] [--where NAME]\n"
	"            [--timeout SECONDS] [--budget-ms MS]\n";

uint64_t chan_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void chan_pause(unsigned *step)
{
	if (++*step % 64 == 0) {
		sched_yield();
		return;
	}
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

int chan_keep_waiting(uint64_t *until, unsigned *step, int timeout_ms)
{
	if (timeout_ms == 0)
		return 0;
	uint64_t now = chan_now_ns();
	if (!*until)
		*until = now + (uint64_t)timeout_ms * 1000000;
	else if (now >= *until)
		return 0;
	chan_pause(step);
	return 1;
}

static void put_u64(void *p, uint64_t v) { memcpy(p, &v, 8); }

static uint64_t get_u64(const void *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* Read every byte: a message counts as delivered only once it was read. */
static uint64_t sum_bytes(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t s = 0, w;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		memcpy(&w, b + i, 8);
		s += w;
	}
	for (; i < n; i++)
		s += b[i];
	return s;
}

static int fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("chan: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return 1;
}

struct run {
	const struct chan_ops *ops;
	const struct chan_args *a;
	void *t;
	unsigned char *buf; /* outgoing message */
	uint64_t deadline;  /* chan_now_ns() after which the role gives up */
	uint64_t lost;      /* losses reported by the transport */
};

/* Next message before the deadline, in the run's mode: 1, 0 at the
 * deadline, -1 on a transport error. */
static int next_msg(struct run *r, struct chan_msg *m, uint64_t deadline)
{
	unsigned step = 0;
	enum chan_mode mode = r->a->mode;
	int poll = mode == MODE_POLL || (mode == MODE_BUSY && !r->ops->spins);
	int wait = poll ? 0 : CHAN_BLOCK_MS;
	for (;;) {
		int rc = r->ops->recv(r->t, m, wait, &r->lost);
		if (rc != 0)
			return rc;
		if (chan_now_ns() >= deadline)
			return 0;
		if (wait == 0)
			chan_pause(&step);
	}
}

/* Send a short message: index and id (acknowledgements). */
static int send_word(struct run *r, uint64_t index, size_t len)
{
	put_u64(r->buf, index);
	put_u64(r->buf + 8, r->a->id);
	return r->ops->send(r->t, r->buf, len);
}

/* Bit of the sender of m if it is a well-formed word with this index. */
static uint32_t sender_bit(const struct chan_msg *m, uint64_t index,
			   unsigned subs)
{
	if (m->len < 16 || get_u64(m->data) != index)
		return 0;
	uint64_t id = get_u64((const char *)m->data + 8);
	return id < subs ? 1u << id : 0;
}

/* Send hellos on the output, one a millisecond, until every one of `subs`
 * peers answered with an index-0 word. Used by the publisher (when the
 * transport cannot count subscribers itself) and by ping. */
static int hello_until_answered(struct run *r, size_t len)
{
	const uint32_t all = (1u << r->a->subs) - 1;
	uint32_t seen = 0;
	while (seen != all) {
		if (chan_now_ns() >= r->deadline)
			return fail("%s: only %d of %u peers answered hello",
				    r->ops->name, __builtin_popcount(seen),
				    r->a->subs);
		if (send_word(r, CHAN_HELLO, len) != 0)
			return 1;
		uint64_t until = chan_now_ns() + HELLO_EVERY_NS;
		unsigned step = 0;
		struct chan_msg m;
		while (chan_now_ns() < until) {
			int rc = r->ops->recv(r->t, &m, 0, &r->lost);
			if (rc < 0)
				return 1;
			if (rc == 0)
				chan_pause(&step);
			else
				seen |= sender_bit(&m, CHAN_HELLO, r->a->subs);
		}
	}
	return 0;
}

static void report(struct run *r)
{
	if (r->ops->report)
		r->ops->report(r->t, stdout);
	fputc('\n', stdout);
	fflush(stdout);
}

static int role_pub(struct run *r)
{
	const struct chan_args *a = r->a;
	int acks = r->ops->wait_subscribers == NULL;
	if (!acks) {
		int ms = (int)((r->deadline - chan_now_ns()) / 1000000);
		if (r->ops->wait_subscribers(r->t, a->subs, ms) != 0)
			return fail("%s: %u subscribers did not arrive",
				    r->ops->name, a->subs);
	} else if (hello_until_answered(r, a->size) != 0) {
		return 1;
	}
	uint64_t t_start = chan_now_ns();
	for (uint64_t i = 1; i <= a->count; i++) {
		put_u64(r->buf, i);
		if (r->ops->send(r->t, r->buf, a->size) != 0)
			return fail("%s: send %llu failed", r->ops->name,
				    (unsigned long long)i);
	}
	uint64_t t_end = chan_now_ns();
	if (acks) { /* stay until every subscriber has read the last one */
		const uint32_t all = (1u << a->subs) - 1;
		uint32_t done = 0;
		struct chan_msg m;
		while (done != all && next_msg(r, &m, r->deadline) == 1)
			done |= sender_bit(&m, CHAN_END, a->subs);
		if (done != all)
			fprintf(stderr, "chan: %s: not every subscriber said done\n",
				r->ops->name);
	}
	printf("role=pub sent=%llu t_start=%llu t_end=%llu",
	       (unsigned long long)a->count, (unsigned long long)t_start,
	       (unsigned long long)t_end);
	report(r);
	return 0;
}

static int role_sub(struct run *r)
{
	const struct chan_args *a = r->a;
	int acks = r->ops->wait_subscribers == NULL;
	uint64_t got = 0, sum = 0, t_first = 0, t_last = 0;
	/* To check the transport's loss reports: every message (hellos too)
	 * and every reported loss since the first message arrived. */
	uint64_t all = 0, seq_first = 0, seq_last = 0, lost_before = 0;
	struct chan_msg m;
	for (;;) {
		int rc = next_msg(r, &m, r->deadline);
		if (rc < 0)
			return 1;
		if (rc == 0)
			return fail("%s: sub %u: timed out after %llu messages",
				    r->ops->name, a->id, (unsigned long long)got);
		if (all++ == 0) {
			seq_first = m.seq;
			lost_before = r->lost;
		}
		seq_last = m.seq;
		if (m.len != a->size)
			return fail("%s: message of %zu bytes, expected %zu",
				    r->ops->name, m.len, a->size);
		uint64_t index = get_u64(m.data);
		if (index == CHAN_HELLO) {
			if (acks && send_word(r, CHAN_HELLO, 16) != 0)
				return 1;
			continue;
		}
		if (index > a->count)
			return fail("%s: bad index %llu", r->ops->name,
				    (unsigned long long)index);
		if (got++ == 0)
			t_first = chan_now_ns();
		sum += sum_bytes(m.data, m.len);
		if (index == a->count) {
			t_last = chan_now_ns();
			break;
		}
	}
	if (acks && send_word(r, CHAN_END, 16) != 0)
		return 1;
	/* With sequence numbers, the messages that never arrived between the
	 * first and the last one received must be exactly the reported loss. */
	uint64_t seq_missing = seq_last ? seq_last - seq_first + 1 - all : 0;
	printf("role=sub id=%u recv=%llu lost=%llu lost_reported=%llu "
	       "seq_missing=%llu t_first=%llu t_last=%llu checksum=%llu",
	       a->id, (unsigned long long)got,
	       (unsigned long long)(a->count - got),
	       (unsigned long long)(r->lost - lost_before),
	       (unsigned long long)seq_missing,
	       (unsigned long long)t_first, (unsigned long long)t_last,
	       (unsigned long long)sum);
	report(r);
	return 0;
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return a < b ? -1 : a > b;
}

/* Nearest-rank percentile of sorted v[0..n): the smallest sample that at
 * least p percent of all samples are less than or equal to. */
static uint64_t percentile(const uint64_t *v, uint64_t n, unsigned p)
{
	uint64_t rank = (n * p + 99) / 100;
	return v[rank ? rank - 1 : 0];
}

static int role_ping(struct run *r)
{
	const struct chan_args *a = r->a;
	const uint32_t all = (1u << a->subs) - 1;
	uint64_t *rtt = calloc(a->count, sizeof *rtt);
	if (!rtt)
		return fail("out of memory");
	if (hello_until_answered(r, a->size) != 0)
		return 1;
	/* A time budget keeps pathological cases (four spinning echoers on one
	 * CPU) from taking minutes; the result line says how many were measured. */
	uint64_t budget = a->budget_ms * 1000000ull, n = 0, warm = a->warmup;
	uint64_t until = budget ? chan_now_ns() + budget / 4 : UINT64_MAX;
	for (uint64_t i = 1; n < a->count; i++) {
		if (i <= warm && chan_now_ns() >= until)
			warm = i - 1; /* warm-up out of time: measure from here */
		if (i == warm + 1 && budget)
			until = chan_now_ns() + budget;
		if (i > warm && n > 0 && chan_now_ns() >= until)
			break;
		put_u64(r->buf, i);
		uint64_t t0 = chan_now_ns();
		if (r->ops->send(r->t, r->buf, a->size) != 0)
			return fail("%s: send failed", r->ops->name);
		uint32_t seen = 0;
		struct chan_msg m;
		while (seen != all) {
			int rc = next_msg(r, &m, r->deadline);
			if (rc <= 0)
				return rc < 0 ? 1 : fail("%s: round trip %llu timed out",
						    r->ops->name, (unsigned long long)i);
			seen |= sender_bit(&m, i, a->subs); /* skips stale hellos */
		}
		if (i > warm)
			rtt[n++] = chan_now_ns() - t0;
	}
	put_u64(r->buf, CHAN_END);
	r->ops->send(r->t, r->buf, a->size);
	qsort(rtt, n, sizeof *rtt, cmp_u64);
	uint64_t total = 0;
	for (uint64_t i = 0; i < n; i++)
		total += rtt[i];
	printf("role=ping n=%llu warmup=%llu p50=%llu p99=%llu min=%llu max=%llu "
	       "mean=%llu",
	       (unsigned long long)n, (unsigned long long)warm,
	       (unsigned long long)percentile(rtt, n, 50),
	       (unsigned long long)percentile(rtt, n, 99),
	       (unsigned long long)rtt[0], (unsigned long long)rtt[n - 1],
	       (unsigned long long)(total / n));
	free(rtt);
	report(r);
	return 0;
}

static int role_pong(struct run *r)
{
	const struct chan_args *a = r->a;
	uint64_t echoed = 0, sum = 0;
	struct chan_msg m;
	for (;;) {
		int rc = next_msg(r, &m, r->deadline);
		if (rc <= 0)
			return rc < 0 ? 1 : fail("%s: pong %u: timed out",
						r->ops->name, a->id);
		if (m.len != a->size)
			return fail("%s: ping of %zu bytes, expected %zu",
				    r->ops->name, m.len, a->size);
		uint64_t index = get_u64(m.data);
		if (index == CHAN_END)
			break;
		sum += sum_bytes(m.data, m.len);
		if (send_word(r, index, a->size) != 0)
			return fail("%s: send failed", r->ops->name);
		echoed++;
	}
	printf("role=pong id=%u echoed=%llu checksum=%llu", a->id,
	       (unsigned long long)echoed, (unsigned long long)sum);
	report(r);
	return 0;
}

static int parse_num(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v > max || s[0] == '-')
		return -1;
	*out = v;
	return 0;
}

static int parse_args(int argc, char **argv, struct chan_args *a)
{
	static const char *const roles[] = {"pub", "sub", "ping", "pong"};
	static const char *const modes[] = {"busy", "idle", "spin", "poll"};
	*a = (struct chan_args){.size = 64, .count = 100000, .warmup = 1000,
				.subs = 1, .timeout = 60, .where = NULL};
	if (argc < 2)
		return -1;
	int found = 0;
	for (int i = 0; i < 4; i++)
		if (strcmp(argv[1], roles[i]) == 0) {
			a->role = (enum chan_role)i;
			found = 1;
		}
	if (!found)
		return -1;
	for (int i = 2; i < argc; i += 2) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t v = 0;
		if (!val)
			return -1;
		if (strcmp(opt, "--where") == 0) {
			a->where = val;
			continue;
		}
		if (strcmp(opt, "--mode") == 0) {
			found = 0;
			for (int j = 0; j < 4; j++)
				if (strcmp(val, modes[j]) == 0) {
					a->mode = (enum chan_mode)j;
					found = 1;
				}
			if (!found)
				return -1;
			continue;
		}
		if (parse_num(val, UINT32_MAX, &v) != 0)
			return -1;
		if (strcmp(opt, "--size") == 0)
			a->size = v;
		else if (strcmp(opt, "--count") == 0)
			a->count = v;
		else if (strcmp(opt, "--warmup") == 0)
			a->warmup = v;
		else if (strcmp(opt, "--subs") == 0)
			a->subs = (unsigned)v;
		else if (strcmp(opt, "--id") == 0)
			a->id = (unsigned)v;
		else if (strcmp(opt, "--timeout") == 0)
			a->timeout = (unsigned)v;
		else if (strcmp(opt, "--budget-ms") == 0)
			a->budget_ms = (unsigned)v;
		else
			return -1;
	}
	if (a->size < 16 || a->count == 0 || a->subs == 0 ||
	    a->subs > CHAN_MAX_SUBS || a->id >= a->subs || !a->where ||
	    a->timeout == 0)
		return -1;
	return 0;
}

int chan_main(const struct chan_ops *ops, int argc, char **argv)
{
	struct chan_args a;
	if (parse_args(argc, argv, &a) != 0) {
		fputs(usage, stderr);
		return 100;
	}
	/* Last resort if a peer hangs: SIGALRM's default action ends us. */
	alarm(a.timeout + 10);
	struct run r = {.ops = ops, .a = &a};
	r.deadline = chan_now_ns() + a.timeout * 1000000000ull;
	r.buf = malloc(a.size);
	if (!r.buf)
		return fail("out of memory");
	for (size_t i = 0; i < a.size; i++)
		r.buf[i] = (unsigned char)(i * 31 + 7);
	r.t = ops->open(&a);
	if (!r.t)
		return 1;
	int rc;
	switch (a.role) {
	case ROLE_PUB: rc = role_pub(&r); break;
	case ROLE_SUB: rc = role_sub(&r); break;
	case ROLE_PING: rc = role_ping(&r); break;
	default: rc = role_pong(&r); break;
	}
	ops->close(r.t);
	free(r.buf);
	return rc;
}
