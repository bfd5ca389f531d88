/* The publish timestamp clock (src/stamp.h): on this machine's clocks,
 * every stamp within STAMP_BOUND_NS of CLOCK_REALTIME read around it, in
 * a tight loop, across sleeps and in a fork child, never going back; on a
 * fake TSC and fake system clocks, the hostile cases: a system clock set
 * back (followed within STAMP_REANCHOR_NS) or a little back (stamps do not
 * go back), a TSC whose rate wobbles (the bound still holds), changes or
 * runs backwards (given up for the system clock), anchor reads that keep
 * being preempted (the system clock's stamps). And end to end: what a
 * subscriber receives as kite_msg.timestamp_ns is within the bound of
 * CLOCK_REALTIME read around kite_publish and kite_commit. */
#include <fcntl.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "child.h"
#include "kite.h"
#include "stamp.h"

static uint64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Does the kernel keep time with the TSC (then the clock must use it)? */
static int machine_has_tsc_clock(void)
{
	char buf[16] = "";
	int fd = open("/sys/devices/system/clocksource/clocksource0/current_clocksource",
		      O_RDONLY);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	return n == 4 && memcmp(buf, "tsc\n", 4) == 0;
}

/* n stamps, each between two CLOCK_REALTIME reads widened by the bound,
 * none below the one before. 0 or the index of the first bad one + 1. */
static uint64_t check_real_stamps(struct stamp_clock *c, uint64_t n, uint64_t *worst)
{
	uint64_t prev = 0;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t before = realtime_ns();
		uint64_t s = ki_stamp_now(c);
		uint64_t after = realtime_ns();
		if (s + STAMP_BOUND_NS < before || s > after + STAMP_BOUND_NS || s < prev)
			return i + 1;
		uint64_t off = s < before ? before - s : s > after ? s - after : 0;
		if (worst && off > *worst)
			*worst = off;
		prev = s;
	}
	return 0;
}

static void test_real_clock_tight_loop(void **state)
{
	(void)state;
	struct stamp_clock c;
	ki_stamp_init(&c);
	if (machine_has_tsc_clock())
		assert_int_equal(c.mode, STAMP_TSC);
	uint64_t worst = 0, n = 2000000;
	uint64_t t0 = realtime_ns();
	assert_int_equal(check_real_stamps(&c, n, &worst), 0);
	uint64_t ms = (realtime_ns() - t0) / 1000000 + 1;
	print_message("# %s clock, %llu stamps in %llu ms, %llu anchors, worst %llu ns "
		      "outside the CLOCK_REALTIME reads around a stamp\n",
		      c.mode == STAMP_TSC ? "TSC" : "system", (unsigned long long)n,
		      (unsigned long long)ms, (unsigned long long)c.anchors,
		      (unsigned long long)worst);
	if (c.mode == STAMP_TSC) {
		/* The fast path does the work: an anchor per ~STAMP_REANCHOR_NS
		 * (more while calibrating, or if preempted mid-anchor). */
		assert_true(c.anchors < n / 100);
		assert_true(c.mult != 0);
	}
}

static void test_real_clock_across_sleeps(void **state)
{
	(void)state;
	struct stamp_clock c;
	ki_stamp_init(&c);
	static const unsigned sleeps_us[] = {0, 1, 50, 400, 999, 1000, 1001, 3000, 20000, 100000};
	for (int round = 0; round < 3; round++)
		for (size_t i = 0; i < sizeof sleeps_us / sizeof *sleeps_us; i++) {
			usleep(sleeps_us[i]);
			assert_int_equal(check_real_stamps(&c, 1000, NULL), 0);
		}
}

static int stamps_in_child(void *arg)
{
	struct stamp_clock *c = arg;
	uint64_t bad = check_real_stamps(c, 200000, NULL);
	CHILD_CHECK(bad == 0, "stamp %llu out of bounds", (unsigned long long)bad);
	usleep(5000);
	bad = check_real_stamps(c, 1000, NULL);
	CHILD_CHECK(bad == 0, "after a sleep: stamp %llu out of bounds", (unsigned long long)bad);
	return 0;
}

static void test_real_clock_after_fork(void **state)
{
	(void)state;
	struct stamp_clock c;
	ki_stamp_init(&c);
	assert_int_equal(check_real_stamps(&c, 100000, NULL), 0); /* calibrated */
	pid_t pid = child_start(stamps_in_child, &c);
	assert_true(pid > 0);
	assert_int_equal(child_wait(pid, 20000), 0);
	assert_int_equal(check_real_stamps(&c, 100000, NULL), 0);
}

/* A fake machine: time advances read_cost ns with every clock read (and
 * by hand); the TSC counts rate ticks a ns from (now0, tsc0); CLOCK_REALTIME
 * is now + real_off; a TSC set back goes back by tsc_back ticks. */
struct fake {
	uint64_t now, now0, tsc0, tsc_back;
	double rate;
	int64_t real_off;
	uint64_t read_cost;
	uint64_t slow_reads; /* this many more clock reads take 5 us each */
};

static void fake_tick(struct fake *f)
{
	f->now += f->read_cost;
	if (f->slow_reads) {
		f->slow_reads--;
		f->now += 5000;
	}
}

static uint64_t fake_tsc_value(const struct fake *f)
{
	return f->tsc0 + (uint64_t)((double)(f->now - f->now0) * f->rate) - f->tsc_back;
}

static uint64_t fake_tsc(void *p)
{
	struct fake *f = p;
	fake_tick(f);
	return fake_tsc_value(f);
}

static uint64_t fake_mono(void *p)
{
	struct fake *f = p;
	fake_tick(f);
	return f->now;
}

static uint64_t fake_real(void *p)
{
	struct fake *f = p;
	fake_tick(f);
	return (uint64_t)((int64_t)f->now + f->real_off);
}

static void fake_set_rate(struct fake *f, double rate)
{
	f->tsc0 = fake_tsc_value(f);
	f->now0 = f->now;
	f->rate = rate;
	f->tsc_back = 0;
}

struct fake_fixture {
	struct fake f;
	struct stamp_source src;
	struct stamp_clock c;
	uint64_t prev; /* the last stamp */
};

static int fake_setup(void **state)
{
	static struct fake_fixture fx;
	memset(&fx, 0, sizeof fx);
	fx.f = (struct fake){.now = 5000000000ull, .now0 = 5000000000ull, .tsc0 = 123456789,
			     .rate = 3.0, .real_off = 1700000000000000000ll, .read_cost = 20};
	fx.src = (struct stamp_source){fake_tsc, fake_mono, fake_real, &fx.f};
	ki_stamp_init_with(&fx.c, STAMP_TSC, &fx.src);
	*state = &fx;
	return 0;
}

/* One stamp, step_ns after the last: within the bound of the fake
 * CLOCK_REALTIME around it; never below the last unless allow_back. */
static uint64_t fake_stamp(struct fake_fixture *fx, uint64_t step_ns, int allow_back)
{
	fx->f.now += step_ns;
	uint64_t before = (uint64_t)((int64_t)fx->f.now + fx->f.real_off);
	uint64_t s = ki_stamp_now(&fx->c);
	uint64_t after = (uint64_t)((int64_t)fx->f.now + fx->f.real_off);
	if (s + STAMP_BOUND_NS < before || s > after + STAMP_BOUND_NS)
		fail_msg("stamp %llu not within %u ns of [%llu, %llu]", (unsigned long long)s,
			 STAMP_BOUND_NS, (unsigned long long)before, (unsigned long long)after);
	if (!allow_back && s < fx->prev)
		fail_msg("stamp went back: %llu after %llu", (unsigned long long)s,
			 (unsigned long long)fx->prev);
	fx->prev = s;
	return s;
}

/* Stamps every step_ns for span_ns of fake time. */
static void fake_run(struct fake_fixture *fx, uint64_t span_ns, uint64_t step_ns)
{
	for (uint64_t t = 0; t < span_ns; t += step_ns)
		fake_stamp(fx, step_ns, 0);
}

static void test_fake_calibrates_then_scales(void **state)
{
	struct fake_fixture *fx = *state;
	fake_run(fx, 3000000, 100); /* 3 ms, a stamp each 100 ns */
	assert_int_equal(fx->c.mode, STAMP_TSC);
	/* 3 GHz: a third of a ns a tick, 32.32 fixed point, to 1 ppm. */
	double want = 4294967296.0 / 3.0;
	assert_true(fx->c.mult > want * (1 - 1e-6) && fx->c.mult < want * (1 + 1e-6));
	uint64_t anchors = fx->c.anchors, t0 = fx->f.now;
	fake_run(fx, 10000000, 100); /* 100,000 stamps, 10 ms and the reads' cost */
	/* One anchor each ms, no more. */
	uint64_t ms = (fx->f.now - t0) / 1000000;
	assert_true(fx->c.anchors - anchors >= ms - 1 && fx->c.anchors - anchors <= ms + 1);
	/* Exact here but for a read's cost: the fake rate is constant. */
	uint64_t real = (uint64_t)((int64_t)fx->f.now + fx->f.real_off);
	uint64_t s = ki_stamp_now(&fx->c);
	assert_true(s + 200 > real && s < real + 200);
}

static void test_fake_system_clock_set_back(void **state)
{
	struct fake_fixture *fx = *state;
	fake_run(fx, 3000000, 100);
	/* Set back by 10 s: followed within STAMP_REANCHOR_NS, as clock_gettime
	 * would be (the stamp goes back with it). */
	uint64_t before = fx->prev;
	fx->f.real_off -= 10000000000ll;
	uint64_t t = 0, s;
	do {
		fx->f.now += 1000;
		t += 1000;
		s = ki_stamp_now(&fx->c);
	} while (s > before && t <= STAMP_REANCHOR_NS + 1000);
	assert_true(s < before);
	assert_true(t <= STAMP_REANCHOR_NS + 1000);
	fx->prev = s;
	fake_run(fx, 3000000, 100); /* and the bound holds from there on */
	/* Set back a little (less than the bound): stamps do not go back. */
	fx->f.real_off -= STAMP_BOUND_NS / 2;
	fake_run(fx, 3000000, 100);
	assert_int_equal(fx->c.mode, STAMP_TSC);
	/* Set forward: followed too. */
	fx->f.real_off += 3600000000000ll;
	for (uint64_t u = 0; u <= STAMP_REANCHOR_NS; u += 1000)
		fx->f.now += 1000, ki_stamp_now(&fx->c);
	fx->prev = 0;
	fake_run(fx, 3000000, 100);
}

static void test_fake_rate_wobble_keeps_bound(void **state)
{
	struct fake_fixture *fx = *state;
	fake_run(fx, 3000000, 100);
	/* 0.5 % faster (a slewed clock never does this, a TSC might): 5 us
	 * over an interval of 1 ms, beyond STAMP_DRIFT_NS; the clock anchors
	 * more often, re-measures, and every stamp stays within the bound. */
	fake_set_rate(&fx->f, 3.0 * 1.005);
	fake_run(fx, 20000000, 100);
	assert_int_equal(fx->c.mode, STAMP_TSC);
	assert_true(fx->c.drifts >= 1);
	fake_set_rate(&fx->f, 3.0);
	fake_run(fx, 20000000, 100);
	assert_int_equal(fx->c.mode, STAMP_TSC);
	/* And the interval grows back once the rate is steady. */
	assert_int_equal(fx->c.reanchor_ns, STAMP_REANCHOR_NS);
}

static void test_fake_rate_change_gives_up(void **state)
{
	struct fake_fixture *fx = *state;
	fake_run(fx, 3000000, 100);
	/* Not invariant after all. No clock can see that between two
	 * anchors (the bound assumes a steady rate): it is seen at the next. */
	fake_set_rate(&fx->f, 2.0);
	uint64_t t0 = fx->f.now;
	while (fx->c.mode == STAMP_TSC && fx->f.now - t0 < 10 * STAMP_REANCHOR_NS)
		fx->f.now += 100, ki_stamp_now(&fx->c);
	assert_int_equal(fx->c.mode, STAMP_SYSTEM);
	/* (the slower TSC takes 1.5 ms to count 1 ms of ticks) */
	assert_true(fx->f.now - t0 <= 2 * STAMP_REANCHOR_NS);
	fx->prev = 0;
	fake_run(fx, 5000000, 100);
	/* From then on every stamp is the system clock's own. */
	for (int i = 0; i < 100; i++) {
		fx->f.now += 777;
		uint64_t s = ki_stamp_now(&fx->c);
		assert_true(s >= (uint64_t)((int64_t)fx->f.now + fx->f.real_off) - fx->f.read_cost);
		assert_true(s <= (uint64_t)((int64_t)fx->f.now + fx->f.real_off));
	}
}

/* A TSC that speeds up by 2 %: the scaled stamps run ahead of the system
 * clock until the next anchor sees the rate changed and gives up. The
 * stamp given then, and the system clock's after it, must not go below
 * the stamps the TSC gave (the system clock was not set back): the last
 * one repeats until the clock passes it. */
static void test_fake_faster_tsc_gives_up_without_going_back(void **state)
{
	struct fake_fixture *fx = *state;
	fake_run(fx, 3000000, 100);
	fake_set_rate(&fx->f, 3.06);
	uint64_t prev = fx->prev, t0 = fx->f.now, ahead = 0;
	while (fx->f.now - t0 < 5 * STAMP_REANCHOR_NS) {
		fx->f.now += 100;
		uint64_t s = ki_stamp_now(&fx->c);
		uint64_t real = (uint64_t)((int64_t)fx->f.now + fx->f.real_off);
		if (s > real && s - real > ahead)
			ahead = s - real;
		if (s < prev)
			fail_msg("stamp went back by %llu ns (mode %s)",
				 (unsigned long long)(prev - s),
				 fx->c.mode == STAMP_TSC ? "tsc" : "system");
		prev = s;
	}
	assert_int_equal(fx->c.mode, STAMP_SYSTEM);
	assert_true(ahead > STAMP_BOUND_NS); /* (the case this test is about) */
	/* Once the clock has passed it, stamps are the system clock's own,
	 * and a clock set back is followed at once. */
	fx->prev = 0;
	fake_run(fx, 1000000, 100);
	fx->f.real_off -= 1000000000;
	uint64_t real = (uint64_t)((int64_t)fx->f.now + fx->f.real_off);
	uint64_t s = ki_stamp_now(&fx->c);
	if (s < real || s > real + 2 * fx->f.read_cost) /* (the TSC, the clock read) */
		fail_msg("after the clock was set back 1 s: stamp %lld ns from it",
			 (long long)(s - real));
}

static void test_fake_tsc_going_back_gives_up(void **state)
{
	struct fake_fixture *fx = *state;
	fake_run(fx, 3000000, 100);
	fx->f.tsc_back = 3000; /* a CPU whose TSC is 1 us behind */
	fake_run(fx, 2000, 100);
	assert_int_equal(fx->c.mode, STAMP_SYSTEM);
	fake_run(fx, 2000000, 100);
}

static void test_fake_preempted_anchor_reads(void **state)
{
	struct fake_fixture *fx = *state;
	fake_run(fx, 3000000, 100);
	double mult = (double)fx->c.mult;
	/* Every clock read of the next four anchors (16 reads each) takes
	 * 5 us (the thread was preempted): none is trusted, their stamps are
	 * the system clock's, the next stamps anchor again; the rate stays
	 * as measured. */
	fx->f.slow_reads = 64;
	uint64_t anchors = fx->c.anchors;
	fake_stamp(fx, 2 * STAMP_REANCHOR_NS, 0);
	for (int i = 0; i < 4; i++)
		fake_stamp(fx, 100, 0);
	assert_int_equal(fx->f.slow_reads, 0);
	/* (each stamp also reads the TSC once: the fifth anchor may be fast) */
	assert_true(fx->c.anchors - anchors >= 4 && fx->c.anchors - anchors <= 5);
	assert_true(fx->c.mult > mult * (1 - 1e-6) && fx->c.mult < mult * (1 + 1e-6));
	fake_run(fx, 5000000, 100);
	assert_int_equal(fx->c.mode, STAMP_TSC);
}

static void test_fake_system_mode(void **state)
{
	struct fake_fixture *fx = *state;
	ki_stamp_init_with(&fx->c, STAMP_SYSTEM, &fx->src);
	fake_run(fx, 3000000, 1000);
	assert_int_equal(fx->c.anchors, 0);
	assert_int_equal(fx->c.mult, 0);
}

/* The monotonic time a stamp gives (for the LAN's burst timing) is the
 * fake CLOCK_MONOTONIC at that stamp, within the bound; none in system
 * mode or before calibration. */
static void test_fake_mono_from_stamp(void **state)
{
	struct fake_fixture *fx = *state;
	uint64_t s = ki_stamp_now(&fx->c);
	assert_int_equal(ki_stamp_mono(&fx->c, s), 0); /* not calibrated yet */
	fake_run(fx, 3000000, 100);
	uint64_t given = 0;
	for (int i = 0; i < 200000; i++) {
		fx->f.now += 37;
		uint64_t before = fx->f.now;
		s = ki_stamp_now(&fx->c);
		uint64_t m = ki_stamp_mono(&fx->c, s), after = fx->f.now;
		if (!m)
			continue; /* (a stamp of an older anchor: the caller reads) */
		given++;
		if (m + STAMP_BOUND_NS < before || m > after + STAMP_BOUND_NS)
			fail_msg("mono %llu not within %u ns of [%llu, %llu]", (unsigned long long)m,
				 STAMP_BOUND_NS, (unsigned long long)before,
				 (unsigned long long)after);
	}
	assert_true(given > 190000);
	ki_stamp_init_with(&fx->c, STAMP_SYSTEM, &fx->src);
	fake_run(fx, 3000000, 1000);
	assert_int_equal(ki_stamp_mono(&fx->c, ki_stamp_now(&fx->c)), 0);
}

static kite *open_handle(const char *bus, const char *pattern)
{
	kite_options o = {.bus = bus, .handshake_ms = 3000};
	kite *k = NULL;
	assert_int_equal(kite_open(&k, &o), 0);
	if (pattern)
		assert_int_equal(kite_subscribe(k, pattern), 0);
	return k;
}

/* The message with this seq, its stamp within the bound of [before, after]
 * and not below the one before. */
static void expect_stamp(kite *sub, uint64_t seq, uint64_t before, uint64_t after,
			 uint64_t *prev)
{
	kite_event ev;
	do
		assert_int_equal(kite_recv(sub, &ev, 3000), 0);
	while (ev.type == KITE_PUBLISHER_NEW);
	assert_int_equal(ev.type, KITE_MESSAGE);
	assert_int_equal(ev.msg.seq, seq);
	uint64_t s = ev.msg.timestamp_ns;
	if (s + STAMP_BOUND_NS < before || s > after + STAMP_BOUND_NS || s < *prev)
		fail_msg("seq %llu stamped %llu: not within %u ns of [%llu, %llu] "
			 "or below %llu", (unsigned long long)seq, (unsigned long long)s,
			 STAMP_BOUND_NS, (unsigned long long)before,
			 (unsigned long long)after, (unsigned long long)*prev);
	*prev = s;
}

enum { BATCH = 200, BATCHES = 50 };

static void test_published_stamps_within_bound(void **state)
{
	(void)state;
	const char *bus = test_bus("stamp_published");
	kite *sub = open_handle(bus, "stamp.>");
	kite *pub = open_handle(bus, NULL);
	static uint64_t before[BATCH], after[BATCH];
	uint64_t seq = 0, prev = 0;
	for (int b = 0; b < BATCHES; b++) {
		for (int i = 0; i < BATCH; i++) {
			before[i] = realtime_ns();
			if (i % 2) {
				void *p;
				assert_int_equal(kite_claim(pub, "stamp.data", 8, &p), 0);
				memcpy(p, "claimed!", 8);
				assert_int_equal(kite_commit(pub, "stamp.data", 8), (int64_t)seq + 1);
			} else {
				assert_int_equal(kite_publish(pub, "stamp.data", "message", 7),
						 (int64_t)seq + 1);
			}
			after[i] = realtime_ns();
			seq++;
			if (i % 50 == 49)
				usleep(b % 4 == 0 ? 1500 : 100); /* across re-anchors */
		}
		for (int i = 0; i < BATCH; i++)
			expect_stamp(sub, seq - BATCH + 1 + (uint64_t)i, before[i], after[i], &prev);
	}
	kite_close(pub);
	kite_close(sub);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_clock_tight_loop),
		cmocka_unit_test(test_real_clock_across_sleeps),
		cmocka_unit_test(test_real_clock_after_fork),
		cmocka_unit_test(test_published_stamps_within_bound),
		cmocka_unit_test_setup(test_fake_calibrates_then_scales, fake_setup),
		cmocka_unit_test_setup(test_fake_system_clock_set_back, fake_setup),
		cmocka_unit_test_setup(test_fake_rate_wobble_keeps_bound, fake_setup),
		cmocka_unit_test_setup(test_fake_rate_change_gives_up, fake_setup),
		cmocka_unit_test_setup(test_fake_faster_tsc_gives_up_without_going_back,
				       fake_setup),
		cmocka_unit_test_setup(test_fake_tsc_going_back_gives_up, fake_setup),
		cmocka_unit_test_setup(test_fake_preempted_anchor_reads, fake_setup),
		cmocka_unit_test_setup(test_fake_system_mode, fake_setup),
		cmocka_unit_test_setup(test_fake_mono_from_stamp, fake_setup),
	};
	return cmocka_run_group_tests_name("stamp", tests, NULL, NULL);
}
