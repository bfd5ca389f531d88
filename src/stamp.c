/* The publish timestamp clock: the TSC scaled to CLOCK_REALTIME, anchored
 * and checked against the system clock. See stamp.h for the rules. */
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "stamp.h"

/* Anchor reads tried before the best one is taken as it is. */
#define ANCHOR_TRIES 4
/* A TSC whose measured rate moves more than 1 part in this between two
 * calibrations is not invariant after all (NTP slews at most 1 in 2000). */
#define RATE_CHANGE_MAX 100

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t mono_ns(const struct stamp_clock *c)
{
	return c->src ? c->src->mono_ns(c->src->ctx) : clock_ns(CLOCK_MONOTONIC);
}

static uint64_t real_ns(const struct stamp_clock *c)
{
	return c->src ? c->src->real_ns(c->src->ctx) : clock_ns(CLOCK_REALTIME);
}

/* Does the CPU say its TSC runs at one rate in every power state? */
static int tsc_invariant(void)
{
#if defined(__x86_64__) || defined(__i386__)
	unsigned a, b, c, d;
	if (!__get_cpuid(0x80000000u, &a, &b, &c, &d) || a < 0x80000007u)
		return 0;
	__get_cpuid(0x80000007u, &a, &b, &c, &d);
	return (d >> 8) & 1;
#else
	return 0;
#endif
}

/* Does the kernel keep time with the TSC? It does only after checking that
 * the TSC is in step on every CPU, and stops when it finds it is not. */
static int kernel_uses_tsc(void)
{
	int fd = open("/sys/devices/system/clocksource/clocksource0/current_clocksource",
		      O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	char buf[16];
	ssize_t n = read(fd, buf, sizeof buf);
	close(fd);
	return n == 4 && memcmp(buf, "tsc\n", 4) == 0;
}

void ki_stamp_init_with(struct stamp_clock *c, enum stamp_mode mode,
			const struct stamp_source *src)
{
	memset(c, 0, sizeof *c);
	c->mode = mode;
	c->src = src;
	c->reanchor_ns = STAMP_REANCHOR_NS;
	/* reanchor_ticks 0: every stamp takes the slow path until calibrated. */
}

void ki_stamp_init(struct stamp_clock *c)
{
	ki_stamp_init_with(c, tsc_invariant() && kernel_uses_tsc() ? STAMP_TSC : STAMP_SYSTEM,
			   NULL);
}

struct anchor {
	uint64_t tsc, real, mono, bracket;
};

/* CLOCK_REALTIME and the TSC read between two reads of CLOCK_MONOTONIC;
 * the tightest of a few tries (a preempted read is not trusted). */
static struct anchor read_anchor(const struct stamp_clock *c)
{
	struct anchor best = {.bracket = UINT64_MAX};
	for (int i = 0; i < ANCHOR_TRIES; i++) {
		uint64_t m1 = mono_ns(c);
		uint64_t t = ki_stamp_tsc(c);
		uint64_t r = real_ns(c);
		uint64_t m2 = mono_ns(c);
		if (m2 < m1)
			continue;
		if (m2 - m1 < best.bracket)
			best = (struct anchor){t, r, m1 + (m2 - m1) / 2, m2 - m1};
		if (best.bracket <= STAMP_BRACKET_NS)
			break;
	}
	return best;
}

/* Over the interval since the last anchor, how far did the scaled TSC
 * drift from CLOCK_MONOTONIC, per reanchor_ns? Shorten the interval when
 * it drifted too far, lengthen it back when it did not. 0, or -1 if even
 * the shortest interval drifts: the TSC is not to be trusted. */
static int check_drift(struct stamp_clock *c, const struct anchor *a)
{
	double elapsed = (double)(a->mono - c->mono_at);
	double scaled = (double)(a->tsc - c->tsc_at) * (double)c->mult / 4294967296.0;
	double drift = scaled > elapsed ? scaled - elapsed : elapsed - scaled;
	if (elapsed > c->reanchor_ns) /* an idle spell: what it drifts per interval */
		drift = drift * c->reanchor_ns / elapsed;
	if (drift > STAMP_DRIFT_NS) {
		c->drifts++;
		if (c->reanchor_ns / 2 < STAMP_MIN_REANCHOR_NS)
			return -1;
		c->reanchor_ns /= 2;
	} else if (drift < STAMP_DRIFT_NS / 4 && c->reanchor_ns < STAMP_REANCHOR_NS) {
		c->reanchor_ns *= 2;
	}
	return 0;
}

/* The TSC's rate (ns per tick, 32.32), measured between the calibration
 * base and a: once the two are STAMP_REANCHOR_NS apart, then the base
 * moves to a. 0 if the rate is not known yet; -1 if it changed. */
static int calibrate(struct stamp_clock *c, const struct anchor *a,
		     uint64_t *base_tsc, uint64_t *base_mono)
{
	if (a->mono - *base_mono < STAMP_REANCHOR_NS)
		return 0;
	uint64_t ticks = a->tsc - *base_tsc;
	if (ticks == 0)
		return -1;
	double mult = (double)(a->mono - *base_mono) * 4294967296.0 / (double)ticks;
	/* Slower than 1 MHz or faster than 1 THz: not a TSC we can scale. */
	if (mult < 4294967296.0 / 1000 || mult > 4294967296.0 * 1000)
		return -1;
	if (c->mult) {
		double old = (double)c->mult;
		if (mult > old * (1 + 1.0 / RATE_CHANGE_MAX) ||
		    mult < old * (1 - 1.0 / RATE_CHANGE_MAX))
			return -1;
	}
	c->mult = (uint64_t)mult;
	*base_tsc = a->tsc;
	*base_mono = a->mono;
	return 0;
}

/* A stamp of the system clock (read: real): below the last one given
 * only if it is more than hold_ns below, as after the clock was set back. */
static uint64_t system_stamp(struct stamp_clock *c, uint64_t real)
{
	if (real < c->last && c->last - real < c->hold_ns)
		return c->last;
	c->hold_ns = 0; /* the clock passed our last stamp: its own from now */
	c->last = real;
	return real;
}

/* The system clock from now on (a: the anchor just read). If the scaled
 * TSC ran ahead of the clock, and the clock was not set back, the last
 * stamp repeats until the clock passes it: stamps do not go back for our
 * own error. */
static uint64_t give_up(struct stamp_clock *c, const struct anchor *a, int set_back)
{
	c->mode = STAMP_SYSTEM;
	c->mult = c->reanchor_ticks = 0;
	if (a->real < c->last && !set_back)
		c->hold_ns = c->last - a->real + 1;
	return system_stamp(c, a->real);
}

/* Was the system clock set back since the last anchor (its lead over
 * CLOCK_MONOTONIC shrank by more than the bound: a slew moves it by
 * 0.5 us a ms at most)? Before any anchor: the reading is more than the
 * bound below the last stamp. A stamp below the last one is then the
 * clock's own; otherwise it is the scaled TSC's error, and the last stamp
 * repeats instead. */
static int set_back_since(const struct stamp_clock *c, const struct anchor *a)
{
	if (!c->mono_at)
		return a->real < c->last && c->last - a->real >= STAMP_BOUND_NS;
	int64_t shrank = (int64_t)((c->real_at - c->mono_at) - (a->real - a->mono));
	return shrank > (int64_t)STAMP_BOUND_NS;
}

uint64_t ki_stamp_anchor(struct stamp_clock *c)
{
	if (c->mode == STAMP_SYSTEM)
		return system_stamp(c, real_ns(c));
	struct anchor a = read_anchor(c);
	if (a.bracket == UINT64_MAX) { /* CLOCK_MONOTONIC went back */
		a.real = real_ns(c);
		return give_up(c, &a, 1);
	}
	c->anchors++;
	int set_back = set_back_since(c, &a);
	if (a.bracket > STAMP_BRACKET_NS) {
		/* No anchor to trust: this stamp is the system clock's, and the
		 * next one tries again. */
		c->reanchor_ticks = 0;
		goto stamp;
	}
	if (c->mono_at == 0) { /* the first: the calibration base */
		c->tsc_at = c->cal_tsc = a.tsc;
		c->mono_at = c->cal_mono = a.mono;
		c->real_at = a.real;
		goto stamp;
	}
	if (a.tsc < c->tsc_at || a.mono < c->mono_at)
		return give_up(c, &a, set_back); /* a TSC that went back */
	if (c->mult && check_drift(c, &a) < 0)
		return give_up(c, &a, set_back);
	if (calibrate(c, &a, &c->cal_tsc, &c->cal_mono) < 0)
		return give_up(c, &a, set_back);
	c->tsc_at = a.tsc;
	c->real_at = a.real;
	c->mono_at = a.mono;
	c->reanchor_ticks = c->mult ? ((uint64_t)c->reanchor_ns << 32) / c->mult : 0;
stamp:
	/* The scaled TSC ran ahead: repeat the last stamp rather than go
	 * back. A step back of the system clock is its own. */
	if (a.real < c->last && !set_back)
		return c->last;
	c->last = a.real;
	return a.real;
}
