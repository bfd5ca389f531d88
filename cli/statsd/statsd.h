/* kite statsd: a statsd / DogStatsD collector with Prometheus and Graphite
 * output. The files of cli/statsd/, one concern each:
 *   statsd.c     cmd_statsd: the command line, --help
 *   loop.c       the event loop: flush timer, signals, reload, exit (loop.h)
 *   ingest.c     UDP and Unix datagram sockets read with recvmmsg (ingest.h)
 *   http.c       GET /metrics for Prometheus (http.h)
 *   push.c       the Graphite push over TCP (push.h)
 *   channel.c    each flush published on a kite channel (channel.h)
 *   net.c        binding sockets by address; the log line (net.h)
 *   config.c     options: command line, `key = value` files, reload rules
 *   parse.c      one line of the statsd / DogStatsD protocol
 *   aggregate.c  the metric table, per-interval aggregation, flush
 *   prometheus.c text exposition for /metrics, name sanitising
 *   graphite.c   Graphite plaintext lines
 *   buf.c        the growable output buffer
 * This header declares the collector's core (parse, config, table, output),
 * which the daemon's files, the unit tests and the fuzz target use; each
 * daemon file has its own small header. The epoll/signalfd set-up is
 * sys/event_loop.h, shared with kite serve. Nothing here is libkite API. */
#ifndef KITE_CLI_STATSD_H
#define KITE_CLI_STATSD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* ---- parse ---------------------------------------------------------- */

enum statsd_kind {
	STATSD_COUNTER,   /* c */
	STATSD_GAUGE,     /* g */
	STATSD_SET,       /* s */
	STATSD_TIMER,     /* ms (milliseconds; exported to Prometheus as seconds) */
	STATSD_HISTOGRAM, /* h and d (unitless) */
	STATSD_KINDS
};

/* Why a line was refused; each has its own counter. */
enum statsd_bad {
	STATSD_OK = 0,
	STATSD_BAD_SYNTAX,   /* no ':' or '|', empty name, unknown type */
	STATSD_BAD_VALUE,    /* not a finite number */
	STATSD_BAD_RATE,     /* sample rate not in (0, 1] */
	STATSD_BAD_TAGS,     /* malformed tag, or more than STATSD_MAX_TAGS */
	STATSD_BAD_TOO_LONG, /* name or tags longer than their limits */
	STATSD_BAD_NEGATIVE, /* a counter increment or a timer below zero */
	STATSD_BAD_REASONS
};

#define STATSD_MAX_NAME 255   /* bytes of a metric name */
#define STATSD_MAX_TAGS 64    /* tags on one line */
#define STATSD_MAX_TAG_BYTES 1024 /* canonical tag text of one line */

/* One parsed line. Pointers point into the line, except tags, which is the
 * canonical form written by the parser into the caller's buffer:
 * "key=value,key2=value2", keys sanitised as Prometheus label names and
 * sorted, values kept as UTF-8 with control bytes and bytes that are not
 * UTF-8 replaced by '_'. */
struct statsd_sample {
	const char *name;
	size_t name_len;
	bool name_clean;   /* name is its own Graphite name (statsd_graphite_name) */
	enum statsd_kind kind;
	double value;      /* the number; for sets unused */
	bool delta;        /* gauge value began with '+' or '-' */
	double rate;       /* sample rate, 1 when absent */
	const char *member;/* sets: the member text */
	size_t member_len;
	char *tags;        /* canonical tags (points to caller's buffer) */
	size_t tags_len;
	unsigned tags_dropped; /* valueless tags left out (counted by caller) */
};

/* Parse one line (no '\n'); tagbuf holds at least STATSD_MAX_TAG_BYTES + 1
 * bytes. Returns STATSD_OK or the reason the line is refused. Never reads
 * outside line[0..len). */
enum statsd_bad statsd_parse_line(const char *line, size_t len,
				  struct statsd_sample *out, char *tagbuf);

/* Parse a decimal number (as strtod, no hex, no inf/nan) of exactly len
 * bytes; 0 or -1. */
int statsd_parse_number(const char *s, size_t len, double *out);

/* ---- configuration --------------------------------------------------- */

#define STATSD_MAX_PERCENTILES 16
#define STATSD_MAX_BUCKETS 32

struct statsd_config {
	char udp[128];           /* "127.0.0.1:8125" or "off" */
	char unix_name[108];     /* abstract name (no '@'), or "off" */
	bool unix_name_set;      /* given by the user (else a taken default is skipped) */
	char unix_path[108];     /* filesystem path, or "" */
	char http[128];          /* "127.0.0.1:9102" or "off" */
	char graphite[256];      /* "host:port" or "off" */
	char graphite_prefix[64];
	bool graphite_legacy;     /* statsd's legacyNamespace layout */
	int64_t flush_ms;
	double percentiles[STATSD_MAX_PERCENTILES];
	unsigned n_percentiles;
	/* --timer-histogram: upper bounds in seconds, ascending, of the
	 * Prometheus histogram buckets of timers (+Inf implied); 0 buckets:
	 * timers are summaries. Fixed at start, as the listeners. */
	double buckets[STATSD_MAX_BUCKETS];
	unsigned n_buckets;
	uint64_t max_metrics;     /* distinct series */
	uint64_t max_samples;     /* kept timer samples per series per interval */
	uint64_t max_set_members; /* members per set per interval */
	uint64_t rcvbuf;          /* SO_RCVBUF(FORCE) bytes for datagram sockets */
	int64_t expire_ms;        /* counters, timers, histograms, sets idle this
				     long go (0: never) */
	int64_t expire_gauges_ms; /* gauges idle this long go (0: never) */
	int64_t graphite_timeout_ms; /* connect, and the final push at exit */
	char channel[201];        /* kite channel each flush is published on, or "off" */
};

/* Defaults, documented in kite-statsd(1). */
void statsd_config_defaults(struct statsd_config *c);

/* Set one option by its key (as in the file; "--" stripped on the command
 * line). Returns 0, or -1 with a message in err. */
int statsd_config_set(struct statsd_config *c, const char *key, const char *value,
		      char *err, size_t errlen);

/* Read a `key = value` file ('#' starts a comment); 0 or -1 with err
 * ("FILE:LINE: why"). */
int statsd_config_load(struct statsd_config *c, const char *path, char *err,
		       size_t errlen);

/* Defaults, then the file at path (NULL: none), then the key, value pairs
 * ov[0..n_ov) of the command line; 0, or -1 with a message in err. */
int statsd_config_build(struct statsd_config *c, const char *path, char **ov, int n_ov,
			char *err, size_t errlen);

/* A reload keeps the listening addresses, rcvbuf and the timer histogram
 * buckets: copy them from running into next; true if next asked for
 * different ones. */
bool statsd_config_keep_listeners(struct statsd_config *next,
				  const struct statsd_config *running);

/* Parse "1.2.3.4:80", "[::1]:80" or "host:80" (resolved once); 0 or -1. */
int statsd_parse_hostport(const char *s, struct sockaddr_storage *ss,
			  socklen_t *len);

/* ---- aggregation ----------------------------------------------------- */

/* Self-observation counters, exported as kite_statsd_* metrics. */
struct statsd_health {
	uint64_t packets;
	uint64_t packets_truncated;
	uint64_t lines;
	uint64_t bad_lines[STATSD_BAD_REASONS];
	uint64_t kernel_drops;      /* from SO_RXQ_OVFL */
	uint64_t metrics_refused;   /* lines refused by max_metrics */
	uint64_t series_expired;    /* series dropped for being idle */
	uint64_t samples_not_kept;  /* timer samples left out of percentiles */
	uint64_t set_members_refused;
	uint64_t tags_dropped;      /* valueless tags */
	uint64_t prometheus_conflicts; /* series whose Prometheus name is taken */
	uint64_t flushes;
	double flush_seconds_last;
	double flush_seconds_total;
	double turn_seconds_max;    /* longest event-loop turn */
	double dgram_wait_max;      /* longest time datagrams waited to be read
				       while the loop did other work (ingest.h) */
	uint64_t graphite_bytes_sent;
	uint64_t graphite_bytes_dropped;
	uint64_t graphite_failures;
	uint64_t channel_messages;  /* flushes published on the kite channel */
	uint64_t channel_failures;
	uint64_t http_requests;
	uint64_t http_refused;
	uint64_t reloads;
};

struct statsd_series;
struct statsd_family;
struct statsd_table;

/* A new empty table; NULL on out of memory. seed salts the hash (random in
 * the daemon so clients cannot aim collisions). */
struct statsd_table *statsd_table_new(uint64_t seed);
void statsd_table_free(struct statsd_table *t);

/* Settings the table reads at each add and flush. */
void statsd_table_configure(struct statsd_table *t, const struct statsd_config *c);

/* Add one parsed sample; counts refusals in t's health. */
void statsd_table_add(struct statsd_table *t, const struct statsd_sample *s);

/* Parse and add every '\n'-separated line of a packet. */
void statsd_table_add_packet(struct statsd_table *t, const char *p, size_t n);

/* Close the interval: counters, timers and sets compute their figures for
 * the interval (kept until the next flush for output), gauges keep their
 * value, idle series expire. interval_ms scales rates.
 *
 * The daemon does it a slice at a time between event-loop turns:
 * statsd_table_flush_begin marks the boundary (the interval ends there,
 * exactly), then statsd_table_flush_step sweeps at most max_series series
 * per call and returns true once the table is swept. A series the sweep
 * has not reached yet is closed the moment a sample or a walk touches it,
 * so a sample that arrives during the sweep counts in the next interval
 * and a walk never shows figures of the interval before. A begin while a
 * sweep is under way finishes that sweep first. statsd_table_flush is
 * begin and the whole sweep. */
void statsd_table_flush(struct statsd_table *t, int64_t interval_ms);
void statsd_table_flush_begin(struct statsd_table *t, int64_t interval_ms);
bool statsd_table_flush_step(struct statsd_table *t, size_t max_series);
bool statsd_table_flushing(const struct statsd_table *t);

struct statsd_health *statsd_table_health(struct statsd_table *t);
size_t statsd_table_series(const struct statsd_table *t);
/* Memory of the table itself: families, series and their hash tables
 * (not timer samples or set members). */
size_t statsd_table_bytes(const struct statsd_table *t);

/* A timer's figures for one percentile p at the last flush: the
 * nearest-rank value, and the count, sum and sum of squares of the samples
 * up to that rank (statsd's count_p, sum_p, sum_squares_p; mean_p is
 * sum / count). */
struct statsd_pct {
	double value, count, sum, sum_squares;
};

/* Longest Prometheus name a family exports: a leading '_', the name, and
 * "_total" or "_count", NUL. */
#define STATSD_PROM_NAME_MAX (STATSD_MAX_NAME + 16)

/* Figures of one series at the last flush, for the output writers. */
struct statsd_view {
	enum statsd_kind kind;
	const char *name;         /* the family's Graphite name (statsd_graphite_name) */
	const char *prom_name;    /* NULL if one of its Prometheus names is taken;
				     valid during the callback only */
	bool family_first;        /* the first series of its family */
	const char *tags;         /* canonical "k=v,k2=v2" or "" */
	bool updated;             /* had samples in the last interval */
	double value;             /* counter: interval total; gauge: value;
				     set: unique members in the interval */
	double total;             /* counter: total since start */
	double rate;              /* counter: interval total per second;
				     timer/histogram: count per second */
	/* timers and histograms, last interval (count weighted by 1/rate) */
	double count, sum, sum_squares, min, max, mean, median, std;
	const struct statsd_pct *pct; /* n_pct: one per percentile of the last flush */
	unsigned n_pct;
	double cum_count, cum_sum;/* since start, for Prometheus summaries */
	const double *buckets;    /* timers under --timer-histogram: samples at or
				     below each bound since start (n_buckets) */
	unsigned n_buckets;
};

/* Call fn for every series in first-seen order of families; returns the
 * first non-zero fn result or 0. */
int statsd_table_each(struct statsd_table *t,
		      int (*fn)(void *arg, const struct statsd_view *v), void *arg);

/* A place in the table, for output written a slice at a time between
 * event-loop turns (a /metrics page, a Graphite push). Open cursors do not
 * hold expiry off: the table knows them, and a series or family that
 * expires under one moves it back to what it has passed. Series added
 * meanwhile are appended to their family, and met, unless a series of
 * that family expired while the walk was in it (it ends there at the
 * family's end of that moment: a series that expired and came back would
 * show twice); families made after the walk began are not on its page
 * (one that expired and came back would show its name twice). So a walk meets every series at most once, each family
 * in one run, and a series shows the figures of the last flush whose
 * boundary came before the walk reached it. An open cursor must not move
 * in memory. */
struct statsd_cursor {
	struct statsd_family *fam;  /* family of the last series met; NULL: none yet */
	struct statsd_series *last; /* last series met in fam; NULL: none yet */
	bool fam_started;           /* a series of fam was passed to fn */
	bool capped;                /* a series of fam expired under the walk: */
	struct statsd_series *cap;  /* ... it ends in fam after cap (NULL: at
				       fam's start), as one that comes back
				       may have been met */
	bool open, done;
	uint32_t born_max;          /* families made before the walk began */
	struct statsd_cursor *next_open, *prev_open; /* the table's open cursors */
};
void statsd_cursor_open(struct statsd_table *t, struct statsd_cursor *c);
/* Idempotent. */
void statsd_cursor_close(struct statsd_table *t, struct statsd_cursor *c);

/* Call fn for the series after the cursor (only series that were in a
 * flush), family_first telling the first of its family in this walk,
 * until fn returns non-zero (the series counts as met; the walk resumes
 * after it) or the end: then c->done is set. Returns fn's result or 0. */
int statsd_table_walk(struct statsd_table *t, struct statsd_cursor *c,
		      int (*fn)(void *arg, const struct statsd_view *v), void *arg);

/* Percentiles used at the last flush. */
const double *statsd_table_percentiles(const struct statsd_table *t, unsigned *n);

/* Upper bounds (seconds) of the timer histogram buckets; *n = 0 when
 * timers are summaries. */
const double *statsd_table_buckets(const struct statsd_table *t, unsigned *n);

/* Nearest-rank percentile of sorted v[0..n): v[ceil(p/100*n) - 1], v[0] for
 * p = 0; NaN when n = 0. statsd_percentile_rank gives that rank (1-based;
 * 0 when n = 0). */
double statsd_percentile(const double *sorted, size_t n, double p);
size_t statsd_percentile_rank(size_t n, double p);

/* ---- output --------------------------------------------------------- */

/* A growable byte buffer. */
struct statsd_buf {
	char *p;
	size_t len, cap;
	bool oom; /* an append failed: the content is incomplete */
};
void statsd_buf_put(struct statsd_buf *b, const char *s, size_t n);
void statsd_buf_printf(struct statsd_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void statsd_buf_free(struct statsd_buf *b);
/* Shortest text that reads back as v; NaN, +Inf, -Inf as Prometheus spells them. */
void statsd_buf_double(struct statsd_buf *b, double v);

/* Sanitise into out (at least n + 4 bytes): a Prometheus metric name
 * [a-zA-Z_:][a-zA-Z0-9_:]* or label name [a-zA-Z_][a-zA-Z0-9_]*: every other
 * byte becomes '_', a leading digit gets a '_' before it, and a label name
 * starting with the reserved "__" gets "tag" before it. Returns the length
 * (not NUL-terminated). */
size_t statsd_prom_metric_name(const char *s, size_t n, char *out);
size_t statsd_prom_label_name(const char *s, size_t n, char *out);

/* Render the whole exposition (user metrics, then kite_statsd_* health). */
void statsd_prometheus_render(struct statsd_table *t, struct statsd_buf *b);

/* The same page a slice at a time: open a cursor, append whole series
 * until at least `want` bytes were added (then the health metrics, last),
 * close. statsd_prometheus_next returns true once the page is complete
 * (the cursor is then closed). */
void statsd_prometheus_start(struct statsd_table *t, struct statsd_cursor *c);
bool statsd_prometheus_next(struct statsd_table *t, struct statsd_cursor *c,
			    struct statsd_buf *b, size_t want);

/* A statsd name as statsd (Etsy) cleans it for Graphite: each run of
 * whitespace becomes '_', '/' becomes '-', and every other byte outside
 * [A-Za-z0-9_.-] is left out. Writes at most n bytes to out (not
 * NUL-terminated; out may be NULL to measure) and returns the length. */
size_t statsd_graphite_name(const char *s, size_t n, char *out);

/* The kinds of bytes in s[0..n), or-ed: a name that is only
 * STATSD_NAME_KEEP is its own Graphite name. */
enum {
	STATSD_NAME_KEEP = 1,  /* [A-Za-z0-9_.-] */
	STATSD_NAME_SPACE = 2, /* becomes '_' (a run of them, one) */
	STATSD_NAME_SLASH = 4, /* becomes '-' */
	STATSD_NAME_NUL = 8,   /* refused */
	STATSD_NAME_DROP = 16, /* left out */
};
unsigned statsd_name_scan(const char *s, size_t n);

/* Graphite path layout. */
struct statsd_graphite_opts {
	const char *prefix;  /* "stats" */
	bool legacy;         /* statsd's legacyNamespace: counters as PREFIX.NAME
				(per second) and stats_counts.NAME */
};

/* Render Graphite plaintext lines for the last flush at unix time ts. */
void statsd_graphite_render(struct statsd_table *t, const struct statsd_graphite_opts *o,
			    int64_t ts, struct statsd_buf *b);

/* The same lines a slice at a time, as statsd_prometheus_next: whole
 * series until at least `want` bytes were added, the collector's own
 * figures last; true once complete (the cursor is then closed). The
 * caller finishes (want SIZE_MAX) before the next flush: a flush changes
 * the figures the lines are made of. */
bool statsd_graphite_next(struct statsd_table *t, struct statsd_cursor *c,
			  const struct statsd_graphite_opts *o, int64_t ts,
			  struct statsd_buf *b, size_t want);

#endif
