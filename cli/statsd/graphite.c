/* Graphite plaintext ("path value timestamp\n") for one flush, named as
 * statsd names them:
 *   PREFIX.counters.NAME.count / .rate        every flush (0 when idle)
 *   PREFIX.gauges.NAME                        every flush
 *   PREFIX.sets.NAME.count                    every flush
 *   PREFIX.timers.NAME.count / .count_ps      every flush
 *   PREFIX.timers.NAME.sum/.lower/.upper/.mean/.pNN  when it had samples
 *   PREFIX.histograms.NAME...                 as timers
 *   PREFIX.kite_statsd.*                      the collector's own figures
 * Names are cleaned as statsd cleans them (space -> '_', '/' -> '-', other
 * bytes outside [A-Za-z0-9_.-] removed). Tags follow Graphite 1.1's tagged
 * series syntax: path;key=value;key2=value2. pNN is the percentile with
 * '.' written '_' (p99_9). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "statsd.h"

struct gctx {
	struct statsd_buf *b;
	const char *prefix;
	int64_t ts;
	const double *pct;
	unsigned n_pct;
};

static void put_clean(struct statsd_buf *b, const char *s)
{
	for (; *s; s++) {
		char c = *s;
		if (c == ' ')
			c = '_';
		else if (c == '/')
			c = '-';
		else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			   (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			continue;
		statsd_buf_put(b, &c, 1);
	}
}

static void put_line(struct gctx *g, const char *section, const struct statsd_view *v,
		     const char *leaf, double value)
{
	if (isnan(value))
		return;
	struct statsd_buf *b = g->b;
	if (*g->prefix) {
		statsd_buf_put(b, g->prefix, strlen(g->prefix));
		statsd_buf_put(b, ".", 1);
	}
	statsd_buf_put(b, section, strlen(section));
	statsd_buf_put(b, ".", 1);
	put_clean(b, v->raw_name);
	if (leaf) {
		statsd_buf_put(b, ".", 1);
		statsd_buf_put(b, leaf, strlen(leaf));
	}
	/* Tags: canonical "k=v,k2=v2" -> ";k=v;k2=v2"; ';', '~' and spaces
	 * cannot appear in a Graphite tag value. */
	for (const char *t = v->tags; *t; t++) {
		if (t == v->tags)
			statsd_buf_put(b, ";", 1);
		char c = *t;
		if (c == ',')
			c = ';';
		else if (c == ';' || c == '~' || c == ' ')
			c = '_';
		statsd_buf_put(b, &c, 1);
	}
	statsd_buf_put(b, " ", 1);
	statsd_buf_double(b, value);
	statsd_buf_printf(b, " %lld\n", (long long)g->ts);
}

static int graphite_one(void *arg, const struct statsd_view *v)
{
	struct gctx *g = arg;
	switch (v->kind) {
	case STATSD_COUNTER:
		put_line(g, "counters", v, "count", v->value);
		put_line(g, "counters", v, "rate", v->rate);
		break;
	case STATSD_GAUGE:
		put_line(g, "gauges", v, NULL, v->value);
		break;
	case STATSD_SET:
		put_line(g, "sets", v, "count", v->value);
		break;
	default: {
		const char *sec = v->kind == STATSD_TIMER ? "timers" : "histograms";
		put_line(g, sec, v, "count", v->count);
		put_line(g, sec, v, "count_ps", v->rate);
		if (!v->updated)
			break;
		put_line(g, sec, v, "sum", v->sum);
		put_line(g, sec, v, "lower", v->min);
		put_line(g, sec, v, "upper", v->max);
		put_line(g, sec, v, "mean", v->mean);
		for (unsigned i = 0; i < g->n_pct; i++) {
			char leaf[40];
			snprintf(leaf, sizeof leaf, "p%g", g->pct[i]);
			for (char *c = leaf; *c; c++)
				if (*c == '.')
					*c = '_';
			put_line(g, sec, v, leaf, v->quantiles[i]);
		}
	}
	}
	return 0;
}

static void own(struct gctx *g, const char *leaf, double value)
{
	struct statsd_buf *b = g->b;
	if (*g->prefix) {
		statsd_buf_put(b, g->prefix, strlen(g->prefix));
		statsd_buf_put(b, ".", 1);
	}
	statsd_buf_printf(b, "kite_statsd.%s ", leaf);
	statsd_buf_double(b, value);
	statsd_buf_printf(b, " %lld\n", (long long)g->ts);
}

void statsd_graphite_render(struct statsd_table *t, const char *prefix, int64_t ts,
			    struct statsd_buf *b)
{
	struct gctx g = {.b = b, .prefix = prefix, .ts = ts};
	g.pct = statsd_table_percentiles(t, &g.n_pct);
	statsd_table_each(t, graphite_one, &g);
	const struct statsd_health *h = statsd_table_health(t);
	uint64_t bad = 0;
	for (int r = 0; r < STATSD_BAD_REASONS; r++)
		bad += h->bad_lines[r];
	own(&g, "packets_received", (double)h->packets);
	own(&g, "lines_received", (double)h->lines);
	own(&g, "bad_lines", (double)bad);
	own(&g, "kernel_drops", (double)h->kernel_drops);
	own(&g, "metrics_refused", (double)h->metrics_refused);
	own(&g, "series", (double)statsd_table_series(t));
	own(&g, "last_flush_duration_seconds", h->flush_seconds_last);
}
