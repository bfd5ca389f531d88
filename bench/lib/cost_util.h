/* What the per-call cost programs (pub_cost.c, recv_cost.c) share: a
 * clock, pinning, and opening a handle on their private bus, dying with
 * the program's name on any error. Header-only: each is one file. */
#ifndef KITE_BENCH_COST_UTIL_H
#define KITE_BENCH_COST_UTIL_H

#include <kite.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

extern char *program_invocation_short_name;

static inline uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static inline void pin(int cpu)
{
	cpu_set_t s;
	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	pthread_setaffinity_np(pthread_self(), sizeof s, &s); /* best effort */
}

static inline void die(const char *what, int rc)
{
	fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what, kite_strerror(rc));
	exit(1);
}

static inline kite *open_handle_on(const char *bus, uint32_t spin_us)
{
	kite_options o = {.bus = bus, .spin_us = spin_us};
	kite *k;
	int rc = kite_open(&k, &o);
	if (rc)
		die("kite_open", rc);
	return k;
}

#endif
