/* Prometheus text exposition (format 0.0.4) of the last flush, and the
 * collector's own kite_statsd_* metrics, live.
 *   counter   NAME_total counter, the total since start
 *   gauge     NAME gauge, the value at the last flush
 *   set       NAME gauge, unique members in the last interval
 *   timer     NAME summary in seconds (statsd sends milliseconds):
 *             quantiles of the last interval, _sum and _count since start
 *   histogram NAME summary, unitless, as timers otherwise
 * Under --timer-histogram timers are histograms instead: NAME_bucket{le}
 * (seconds; samples at or below each bound since start), NAME_sum and
 * NAME_count since start; a tag named "le" is renamed as "quantile" is on
 * a summary.
 * DogStatsD tags become labels; on a summary a tag named "quantile" is
 * renamed "tag_quantile" so it cannot clash with the summary's own, and so
 * that two tags never get one label name, "tag_quantile" becomes
 * "tag_tag_quantile" and so on (every name of the form (tag_)*quantile gets
 * one more "tag_"). Label values are UTF-8 (the parser keeps valid UTF-8
 * and replaces the rest), with '\\' and '"' escaped. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "statsd.h"

static inline bool alpha_(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static inline bool digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

size_t statsd_prom_metric_name(const char *s, size_t n, char *out)
{
	size_t o = 0;
	if (n == 0 || digit((unsigned char)s[0]))
		out[o++] = '_';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		out[o++] = (alpha_(c) || digit(c) || c == ':') ? (char)c : '_';
	}
	return o;
}

size_t statsd_prom_label_name(const char *s, size_t n, char *out)
{
	size_t o = 0;
	if (n >= 2 && s[0] == '_' && s[1] == '_') {
		memcpy(out, "tag", 3);
		o = 3;
	} else if (n == 0 || digit((unsigned char)s[0])) {
		out[o++] = '_';
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		out[o++] = (alpha_(c) || digit(c)) ? (char)c : '_';
	}
	return o;
}

/* Is label name k[0..n) of the form (tag_)*WORD? */
static bool reserved_label(const char *k, size_t n, const char *word)
{
	size_t wl = strlen(word);
	while (n > wl && !memcmp(k, "tag_", 4)) {
		k += 4;
		n -= 4;
	}
	return n == wl && !memcmp(k, word, wl);
}

/* {k="v",...[,extra]} from canonical tags "k=v,k2=v2"; a tag whose name
 * is (tag_)*reserved gets one more "tag_". */
static void put_labels(struct statsd_buf *b, const char *tags, const char *reserved,
		       const char *extra)
{
	if (!*tags && !extra)
		return;
	statsd_buf_put(b, "{", 1);
	const char *p = tags;
	bool first = true;
	while (*p) {
		const char *comma = strchr(p, ',');
		const char *e = comma ? comma : p + strlen(p);
		const char *eq = memchr(p, '=', (size_t)(e - p));
		if (!eq)
			break; /* cannot happen: the parser wrote these */
		if (!first)
			statsd_buf_put(b, ",", 1);
		first = false;
		if (reserved && reserved_label(p, (size_t)(eq - p), reserved))
			statsd_buf_put(b, "tag_", 4);
		statsd_buf_put(b, p, (size_t)(eq - p));
		statsd_buf_put(b, "=\"", 2);
		for (const char *v = eq + 1; v < e; v++) {
			if (*v == '\\' || *v == '"')
				statsd_buf_put(b, "\\", 1);
			statsd_buf_put(b, v, 1);
		}
		statsd_buf_put(b, "\"", 1);
		p = comma ? comma + 1 : e;
	}
	if (extra) {
		if (!first)
			statsd_buf_put(b, ",", 1);
		statsd_buf_put(b, extra, strlen(extra));
	}
	statsd_buf_put(b, "}", 1);
}

struct prom_ctx {
	struct statsd_buf *b;
	const double *pct;
	unsigned n_pct;
	unsigned n_bkt;            /* timer histogram buckets; 0: summaries */
	char le[STATSD_MAX_BUCKETS][48]; /* their le="..." labels */
	size_t start, want;        /* stop once b grew by want bytes past start */
};

static const char *const kind_help[STATSD_KINDS] = {
	[STATSD_COUNTER] = "counter",
	[STATSD_GAUGE] = "gauge",
	[STATSD_SET] = "gauge",
	[STATSD_TIMER] = "summary",
	[STATSD_HISTOGRAM] = "summary",
};

static void put_sample(struct statsd_buf *b, const char *name, const char *suffix,
		       const char *tags, const char *reserved, const char *extra, double v)
{
	statsd_buf_put(b, name, strlen(name));
	if (suffix)
		statsd_buf_put(b, suffix, strlen(suffix));
	put_labels(b, tags, reserved, extra);
	statsd_buf_put(b, " ", 1);
	statsd_buf_double(b, v);
	statsd_buf_put(b, "\n", 1);
}

static int prom_one(void *arg, const struct statsd_view *v)
{
	struct prom_ctx *c = arg;
	struct statsd_buf *b = c->b;
	if (!v->prom_name)
		return 0;
	bool hist = v->kind == STATSD_TIMER && c->n_bkt;
	if (v->family_first) {
		static const char *const what[STATSD_KINDS] = {
			[STATSD_COUNTER] = "statsd counter %s: total since start",
			[STATSD_GAUGE] = "statsd gauge %s",
			[STATSD_SET] = "statsd set %s: unique members in the last interval",
			[STATSD_TIMER] = "statsd timer %s in seconds: quantiles of the last interval",
			[STATSD_HISTOGRAM] = "statsd histogram %s: quantiles of the last interval",
		};
		statsd_buf_printf(b, "# HELP %s ", v->prom_name);
		/* The Graphite name holds only [A-Za-z0-9_.-]; HELP escaping
		 * (backslash, and '?' for control or non-ASCII bytes) stays as a
		 * guard should that ever change. */
		char help[STATSD_MAX_NAME * 2 + 1];
		size_t h = 0;
		for (const char *r = v->name; *r && h + 2 < sizeof help; r++) {
			unsigned char ch = (unsigned char)*r;
			if (ch == '\\')
				help[h++] = '\\';
			help[h++] = (ch < 0x20 || ch >= 0x7f) ? '?' : (char)ch;
		}
		help[h] = 0;
		statsd_buf_printf(b, hist ? "statsd timer %s in seconds: samples since start"
					  : what[v->kind], help);
		statsd_buf_printf(b, "\n# TYPE %s %s\n", v->prom_name,
				  hist ? "histogram" : kind_help[v->kind]);
	}
	switch (v->kind) {
	case STATSD_COUNTER:
		put_sample(b, v->prom_name, NULL, v->tags, NULL, NULL, v->total);
		break;
	case STATSD_GAUGE:
	case STATSD_SET:
		put_sample(b, v->prom_name, NULL, v->tags, NULL, NULL, v->value);
		break;
	default: {
		double scale = v->kind == STATSD_TIMER ? 0.001 : 1;
		const char *reserved = hist ? "le" : "quantile";
		if (hist) {
			for (unsigned i = 0; i < c->n_bkt; i++)
				put_sample(b, v->prom_name, "_bucket", v->tags, reserved,
					   c->le[i], i < v->n_buckets ? v->buckets[i] : 0);
			put_sample(b, v->prom_name, "_bucket", v->tags, reserved,
				   "le=\"+Inf\"", v->cum_count);
		}
		for (unsigned i = 0; !hist && i < c->n_pct && i < v->n_pct; i++) {
			char q[48];
			snprintf(q, sizeof q, "quantile=\"%.15g\"", c->pct[i] / 100.0);
			put_sample(b, v->prom_name, NULL, v->tags, reserved, q,
				   v->pct[i].value * scale);
		}
		put_sample(b, v->prom_name, "_sum", v->tags, reserved, NULL, v->cum_sum * scale);
		put_sample(b, v->prom_name, "_count", v->tags, reserved, NULL, v->cum_count);
	}
	}
	return b->len - c->start >= c->want;
}

static const char *const bad_reason[STATSD_BAD_REASONS] = {
	[STATSD_BAD_SYNTAX] = "syntax",
	[STATSD_BAD_VALUE] = "value",
	[STATSD_BAD_RATE] = "rate",
	[STATSD_BAD_TAGS] = "tags",
	[STATSD_BAD_TOO_LONG] = "too_long",
	[STATSD_BAD_NEGATIVE] = "negative",
};

/* The collector's own metrics, live. */
static void put_health(struct statsd_table *t, struct statsd_buf *b)
{
	const struct statsd_health *h = statsd_table_health(t);
	const struct {
		const char *name, *type, *help;
		double v;
	} own[] = {
		{"packets_received_total", "counter", "Datagrams received.", (double)h->packets},
		{"packets_truncated_total", "counter",
		 "Datagrams longer than the receive buffer, skipped whole.",
		 (double)h->packets_truncated},
		{"lines_received_total", "counter", "Non-empty lines received.", (double)h->lines},
		{"kernel_drops_total", "counter",
		 "Datagrams the kernel dropped for a full receive buffer (SO_RXQ_OVFL).",
		 (double)h->kernel_drops},
		{"metrics_refused_total", "counter",
		 "Samples refused because max-metrics series exist.", (double)h->metrics_refused},
		{"series_expired_total", "counter",
		 "Series dropped after being idle for --expire (--expire-gauges).",
		 (double)h->series_expired},
		{"table_bytes", "gauge",
		 "Memory of the metric table: series, families, their hash tables.",
		 (double)statsd_table_bytes(t)},
		{"timer_samples_not_kept_total", "counter",
		 "Timer samples beyond max-samples left out of percentiles.",
		 (double)h->samples_not_kept},
		{"set_members_refused_total", "counter",
		 "Set members refused beyond max-set-members.", (double)h->set_members_refused},
		{"tags_dropped_total", "counter", "Valueless or duplicate tags left out.",
		 (double)h->tags_dropped},
		{"prometheus_name_conflicts_total", "counter",
		 "Metrics not exported here because their Prometheus name is taken.",
		 (double)h->prometheus_conflicts},
		{"flushes_total", "counter", "Flushes done.", (double)h->flushes},
		{"flush_duration_seconds_total", "counter", "Time spent flushing.",
		 h->flush_seconds_total},
		{"last_flush_duration_seconds", "gauge", "Duration of the last flush.",
		 h->flush_seconds_last},
		{"series", "gauge", "Distinct series held.", (double)statsd_table_series(t)},
		{"loop_turn_max_seconds", "gauge",
		 "Longest event-loop turn since start (flush slices, page slices, "
		 "datagram batches).",
		 h->turn_seconds_max},
		{"datagram_wait_max_seconds", "gauge",
		 "Longest time since start that datagrams waited to be read while the loop "
		 "did other work: from the later of the last batch read on the socket and "
		 "the arrival of the next batch's first datagram, to its read.",
		 h->dgram_wait_max},
		{"graphite_bytes_sent_total", "counter", "Bytes written to Graphite.",
		 (double)h->graphite_bytes_sent},
		{"graphite_bytes_dropped_total", "counter",
		 "Graphite bytes dropped because the push buffer was full.",
		 (double)h->graphite_bytes_dropped},
		{"graphite_failures_total", "counter", "Graphite connections that failed.",
		 (double)h->graphite_failures},
		{"channel_messages_total", "counter",
		 "Messages published on the kite channel (a flush is one or more).", (double)h->channel_messages},
		{"channel_failures_total", "counter",
		 "Flushes that could not be published on the kite channel.",
		 (double)h->channel_failures},
		{"http_requests_total", "counter", "HTTP requests served.",
		 (double)h->http_requests},
		{"http_refused_total", "counter",
		 "HTTP connections refused: too many open, or request too large.",
		 (double)h->http_refused},
		{"reloads_total", "counter", "Configuration reloads (SIGHUP).", (double)h->reloads},
	};
	for (size_t i = 0; i < sizeof own / sizeof own[0]; i++) {
		statsd_buf_printf(b, "# HELP kite_statsd_%s %s\n# TYPE kite_statsd_%s %s\n"
				     "kite_statsd_%s ",
				  own[i].name, own[i].help, own[i].name, own[i].type, own[i].name);
		statsd_buf_double(b, own[i].v);
		statsd_buf_put(b, "\n", 1);
	}
	statsd_buf_printf(b, "%s", "# HELP kite_statsd_bad_lines_total Lines refused, by reason.\n"
				   "# TYPE kite_statsd_bad_lines_total counter\n");
	for (int r = 1; r < STATSD_BAD_REASONS; r++)
		statsd_buf_printf(b, "kite_statsd_bad_lines_total{reason=\"%s\"} %llu\n",
				  bad_reason[r], (unsigned long long)h->bad_lines[r]);
}

void statsd_prometheus_start(struct statsd_table *t, struct statsd_cursor *c)
{
	statsd_cursor_open(t, c);
}

bool statsd_prometheus_next(struct statsd_table *t, struct statsd_cursor *c,
			    struct statsd_buf *b, size_t want)
{
	if (!c->open)
		return true;
	struct prom_ctx x = {.b = b, .start = b->len, .want = want};
	x.pct = statsd_table_percentiles(t, &x.n_pct);
	const double *bounds = statsd_table_buckets(t, &x.n_bkt);
	for (unsigned i = 0; i < x.n_bkt; i++) {
		struct statsd_buf v = {0};
		statsd_buf_double(&v, bounds[i]);
		snprintf(x.le[i], sizeof x.le[i], "le=\"%.*s\"", v.p ? (int)v.len : 0,
			 v.p ? v.p : "");
		statsd_buf_free(&v);
	}
	statsd_table_walk(t, c, prom_one, &x);
	if (!c->done)
		return false;
	statsd_cursor_close(t, c);
	put_health(t, b);
	return true;
}

void statsd_prometheus_render(struct statsd_table *t, struct statsd_buf *b)
{
	struct statsd_cursor c;
	statsd_prometheus_start(t, &c);
	statsd_prometheus_next(t, &c, b, SIZE_MAX);
}
