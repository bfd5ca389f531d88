/* kite ls and kite top: what they share. A snapshot of the bus (from
 * libkite's observer, src/observe.c), narrowed to a PATTERN, and the
 * per-channel and per-subscriber figures derived from two snapshots.
 *
 * Files: view.c (snapshot, filter, names), ls.c (kite ls), top.c (kite
 * top's loop, screen and plain lines), rates.c (figures between two
 * snapshots), json.c (JSON of both), metrics.c (the Prometheus page),
 * http.c (serving it). */
#ifndef KITE_CLI_TOP_VIEW_H
#define KITE_CLI_TOP_VIEW_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "observe.h"

/* Take a snapshot of bus, keeping only what matches pattern (NULL: all):
 * channels matching it, patterns that overlap it; a handle left with
 * nothing is dropped, unless it did not answer (then it is kept: it may
 * hold anything). 0 or an exit code already reported as cmd. */
int view_snapshot(const char *cmd, const char *bus, const char *pattern,
		  int timeout_ms, struct obs_bus *out);

/* The bus a name means: bus, else $KITE_BUS, else "default". */
const char *view_bus_name(const char *bus);

/* 0 if that bus name is valid, else the usage error's exit code (reported
 * as cmd). */
int view_bus_check(const char *cmd, const char *bus);

/* "answered", "silent", "cut", "unreachable". */
const char *view_state_name(enum obs_state s);

/* The handle with this id in b, or NULL (hidden from us, or gone). */
const struct obs_handle *view_find(const struct obs_bus *b, uint64_t id);

/* A command line fit for one line of a terminal (escaped as kite sub does). */
void view_command(FILE *out, const char *command);

/* Figures of one channel, all publishers together. */
struct view_channel {
	char channel[KITE_CHANNEL_MAX + 1];
	unsigned publishers, subscribers;
	uint64_t published;  /* messages, summed over its publishers */
	uint64_t bytes;
	double rate;         /* messages per second since the last snapshot */
	uint64_t max_lag;    /* the slowest subscriber's lag */
	pid_t slowest_pid;
	uint64_t lost;       /* reported lost by its subscribers, in all */
	uint64_t lost_new;   /* ... since the last snapshot */
};

/* One subscriber's reading of one publisher's ring. */
struct view_reader {
	const struct obs_handle *h;
	const struct obs_sub *s;
	pid_t publisher_pid;  /* 0: publisher not visible */
	uint32_t slots;       /* of the ring it reads (0: unknown) */
	uint64_t lost_new;    /* reported lost since the last snapshot */
	int lagging;          /* more than half its ring behind */
};

struct view_figures {
	struct view_channel *ch;
	size_t nch;
	struct view_reader *rd;
	size_t nrd;
	double interval_s; /* between the two snapshots (0: first) */
};

/* Figures of cur against prev (NULL: the first snapshot). 0 or -ENOMEM. */
int view_figures(const struct obs_bus *prev, const struct obs_bus *cur,
		 double interval_s, struct view_figures *out);
void view_figures_free(struct view_figures *f);

enum view_sort { SORT_RATE, SORT_LAG, SORT_LOST, SORT_NAME };
void view_sort(struct view_figures *f, enum view_sort key);

/* JSON on stdout: a snapshot (kite ls --json), and one interval (kite top --json). */
void view_json_bus(const char *bus, const struct obs_bus *b);
void view_json_interval(const char *bus, const struct obs_bus *b,
			const struct view_figures *f);

/* The Prometheus text exposition of a snapshot. */
void view_metrics(FILE *out, const struct obs_bus *b);

/* Set by SIGINT, SIGTERM, SIGHUP: kite top finishes. */
extern volatile sig_atomic_t top_stop;

/* kite top --metrics HOST:PORT: serve /metrics until a signal; exit code. */
int top_serve_metrics(const char *addr, const char *bus, const char *pattern,
		      int timeout_ms);

#endif
