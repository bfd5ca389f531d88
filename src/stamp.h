/* Internal: the publish timestamp clock, CLOCK_REALTIME read cheaply.
 *
 * kite_msg.timestamp_ns is CLOCK_REALTIME at publish. Reading it through
 * the vDSO costs ~28 ns on a VM (a third of a 64-byte publish), the TSC
 * ~13. Where the kernel itself keeps time with the TSC (clocksource "tsc":
 * it checked that the TSC is invariant and in step on every CPU) and the
 * CPU says the TSC is invariant, a stamp is the TSC scaled from an anchor:
 *
 *   stamp = real_at + (tsc - tsc_at) * ns_per_tick
 *
 * The anchor is CLOCK_REALTIME read with the TSC between two reads of
 * CLOCK_MONOTONIC (a read that took longer than STAMP_BRACKET_NS is taken
 * again), re-read every STAMP_REANCHOR_NS of TSC time at most; ns_per_tick
 * is measured between two anchors against CLOCK_MONOTONIC (never stepped,
 * slewed like CLOCK_REALTIME). At every anchor the clock checks how far
 * its scaled TSC drifted from CLOCK_MONOTONIC over the interval: beyond
 * STAMP_DRIFT_NS it re-anchors twice as often, and a TSC that still
 * drifts (or jumps back, or runs at a rate that changed) is given up: the
 * handle reads clock_gettime from then on. So a stamp is within
 * STAMP_BOUND_NS of CLOCK_REALTIME read at the same instant, but that a
 * step of the system clock (settimeofday, an NTP step) shows in stamps up
 * to STAMP_REANCHOR_NS late. Stamps of one clock never go backwards,
 * unless the system clock is set back (as clock_gettime's would): a
 * re-anchor that lands below the last stamp while the clock's lead over
 * CLOCK_MONOTONIC did not shrink by more than STAMP_BOUND_NS (the scaled
 * TSC ran ahead) repeats the last stamp instead, and so does the system
 * clock after the TSC is given up, until it passes that stamp.
 *
 * One clock per handle, used with the handle's state held: not
 * thread-safe, no atomics. A fork child's copy is as good as the parent's
 * (the TSC is the machine's). */
#ifndef KITE_STAMP_H
#define KITE_STAMP_H

#include <stdint.h>

#define STAMP_REANCHOR_NS 1000000u /* re-read CLOCK_REALTIME this often */
#define STAMP_MIN_REANCHOR_NS 62500u /* ... down to this, if the TSC drifts */
#define STAMP_BRACKET_NS 2000u     /* an anchor read slower than this is retaken */
#define STAMP_DRIFT_NS 2000u       /* scaled TSC vs CLOCK_MONOTONIC per interval */
#define STAMP_BOUND_NS 10000u      /* the stated bound (docs, kite.h) */

/* What the clock reads; tests give fakes (NULL: the real ones). */
struct stamp_source {
	uint64_t (*tsc)(void *ctx);
	uint64_t (*mono_ns)(void *ctx);
	uint64_t (*real_ns)(void *ctx);
	void *ctx;
};

enum stamp_mode {
	STAMP_SYSTEM, /* clock_gettime(CLOCK_REALTIME) on every stamp */
	STAMP_TSC,    /* the scaled TSC (calibrating until mult != 0) */
};

struct stamp_clock {
	enum stamp_mode mode;
	uint64_t mult;           /* ns per tick, 32.32 fixed point; 0: not yet */
	uint64_t tsc_at;         /* the anchor: TSC ... */
	uint64_t real_at;        /* ... CLOCK_REALTIME ... */
	uint64_t mono_at;        /* ... and CLOCK_MONOTONIC at it (0: none yet) */
	uint64_t reanchor_ticks; /* TSC ticks after which it is read again */
	uint64_t reanchor_ns;    /* that interval in ns */
	uint64_t cal_tsc, cal_mono; /* where the rate's measurement started */
	uint64_t last;           /* the last stamp given */
	uint64_t hold_ns;        /* system mode: a reading this close below
				    last repeats it (our TSC's lead, after
				    giving it up); 0: none */
	uint64_t anchors, drifts; /* counts, for tests */
	const struct stamp_source *src;
};

/* Set up c: the TSC if this machine's kernel and CPU vouch for it (see
 * above), else the system clock. */
void ki_stamp_init(struct stamp_clock *c);

/* Set up c on given sources (tests): mode STAMP_TSC or STAMP_SYSTEM. */
void ki_stamp_init_with(struct stamp_clock *c, enum stamp_mode mode,
			const struct stamp_source *src);

/* The slow path of ki_stamp_now: read the anchor again (with its own
 * TSC read, taken between the system clock's reads). */
uint64_t ki_stamp_anchor(struct stamp_clock *c);

/* The TSC, or the test's fake. */
static inline uint64_t ki_stamp_tsc(const struct stamp_clock *c)
{
	if (__builtin_expect(c->src != NULL, 0))
		return c->src->tsc(c->src->ctx);
#if defined(__x86_64__) || defined(__i386__)
	return __builtin_ia32_rdtsc();
#else
	return 0; /* never used: ki_stamp_init chooses STAMP_SYSTEM */
#endif
}

/* CLOCK_REALTIME in ns, within STAMP_BOUND_NS (see above). */
static inline uint64_t ki_stamp_now(struct stamp_clock *c)
{
	uint64_t tsc = ki_stamp_tsc(c);
	/* Also catches a TSC behind the anchor (the subtraction wraps). */
	uint64_t d = tsc - c->tsc_at;
	if (__builtin_expect(d < c->reanchor_ticks, 1)) {
		uint64_t ns = c->real_at + ((d * c->mult) >> 32);
		if (ns > c->last)
			c->last = ns;
		return c->last;
	}
	return ki_stamp_anchor(c);
}

/* CLOCK_MONOTONIC at the instant stamp s was given, from the same TSC
 * reading (within STAMP_BOUND_NS, as s is of CLOCK_REALTIME), so a caller
 * that needs both pays one clock read; 0 when the clock cannot tell (the
 * system clock mode, not calibrated yet, or s not of the current anchor):
 * read CLOCK_MONOTONIC then. Not monotonic across anchors by more than the
 * bound: a caller comparing two must allow for a small step back. */
static inline uint64_t ki_stamp_mono(const struct stamp_clock *c, uint64_t s)
{
	if (c->mode != STAMP_TSC || !c->mult || !c->mono_at || s < c->real_at ||
	    s - c->real_at > 2 * (uint64_t)c->reanchor_ns)
		return 0;
	return c->mono_at + (s - c->real_at);
}

#endif /* KITE_STAMP_H */
