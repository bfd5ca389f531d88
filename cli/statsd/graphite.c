/* Graphite plaintext ("path value timestamp\n") for one flush, named as
 * statsd (Etsy statsd 0.9, graphite backend) names them:
 *   PREFIX.counters.NAME.count / .rate      every flush (0 when idle)
 *     legacy namespace: stats_counts.NAME (count), PREFIX.NAME (rate)
 *   PREFIX.gauges.NAME                      every flush
 *   PREFIX.sets.NAME.count                  every flush
 *   PREFIX.timers.NAME.count / .count_ps    every flush
 *   PREFIX.timers.NAME.sum, .sum_squares, .lower, .upper, .mean, .median,
 *     .std, and per percentile NN: .count_NN, .sum_NN, .sum_squares_NN,
 *     .mean_NN, .upper_NN                   when it had samples
 *   PREFIX.histograms.NAME...               as timers
 *   PREFIX.kite_statsd.*                    the collector's own figures
 * NAME is the statsd name as statsd cleans it (statsd_graphite_name). Tags
 * follow Graphite 1.1's tagged series syntax: path;key=value;key2=value2.
 * NN is the percentile with '.' written '_' (upper_99_9). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "statsd.h"

/* What statsd's cleaning does with each byte (a table: names are cleaned
 * for every line, on the collector's hot path). */
static const unsigned char name_class[256] = {
	[0] = STATSD_NAME_NUL,
	['\t'] = STATSD_NAME_SPACE, ['\n'] = STATSD_NAME_SPACE, ['\v'] = STATSD_NAME_SPACE,
	['\f'] = STATSD_NAME_SPACE, ['\r'] = STATSD_NAME_SPACE, [' '] = STATSD_NAME_SPACE,
	['/'] = STATSD_NAME_SLASH,
	['a' ... 'z'] = STATSD_NAME_KEEP, ['A' ... 'Z'] = STATSD_NAME_KEEP,
	['0' ... '9'] = STATSD_NAME_KEEP,
	['_'] = STATSD_NAME_KEEP, ['.'] = STATSD_NAME_KEEP, ['-'] = STATSD_NAME_KEEP,
};

unsigned statsd_name_scan(const char *s, size_t n)
{
	unsigned seen = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned k = name_class[(unsigned char)s[i]];
		seen |= k ? k : STATSD_NAME_DROP;
	}
	return seen;
}

size_t statsd_graphite_name(const char *s, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		unsigned k = name_class[c];
		if (k == STATSD_NAME_SPACE) {
			while (i + 1 < n && name_class[(unsigned char)s[i + 1]] == STATSD_NAME_SPACE)
				i++;
			c = '_';
		} else if (k == STATSD_NAME_SLASH) {
			c = '-';
		} else if (k != STATSD_NAME_KEEP) {
			continue;
		}
		if (out)
			out[o] = (char)c;
		o++;
	}
	return o;
}

struct gctx {
	struct statsd_buf *b;
	const struct statsd_graphite_opts *o;
	int64_t ts;
	const double *pct;
	unsigned n_pct;
	size_t start, want; /* stop once b grew by want bytes past start */
};

/* One line: [root.]NAME[.leaf][;tags] value ts. */
static void put_line(struct gctx *g, const char *root, const struct statsd_view *v,
		     const char *leaf, double value)
{
	if (isnan(value))
		return;
	struct statsd_buf *b = g->b;
	if (*root) {
		statsd_buf_put(b, root, strlen(root));
		statsd_buf_put(b, ".", 1);
	}
	statsd_buf_put(b, v->name, strlen(v->name));
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

/* PREFIX.section, or section alone when the prefix is empty. */
static void section_root(char *out, size_t cap, const char *prefix, const char *section)
{
	snprintf(out, cap, "%s%s%s", prefix, *prefix && *section ? "." : "", section);
}

static void put_timer(struct gctx *g, const char *root, const struct statsd_view *v)
{
	put_line(g, root, v, "count", v->count);
	put_line(g, root, v, "count_ps", v->rate);
	if (!v->updated)
		return;
	put_line(g, root, v, "sum", v->sum);
	put_line(g, root, v, "sum_squares", v->sum_squares);
	put_line(g, root, v, "lower", v->min);
	put_line(g, root, v, "upper", v->max);
	put_line(g, root, v, "mean", v->mean);
	put_line(g, root, v, "median", v->median);
	put_line(g, root, v, "std", v->std);
	for (unsigned i = 0; i < g->n_pct && i < v->n_pct; i++) {
		char nn[32], leaf[48];
		snprintf(nn, sizeof nn, "%g", g->pct[i]);
		for (char *c = nn; *c; c++)
			if (*c == '.')
				*c = '_';
		const struct statsd_pct *p = &v->pct[i];
		snprintf(leaf, sizeof leaf, "count_%s", nn);
		put_line(g, root, v, leaf, p->count);
		snprintf(leaf, sizeof leaf, "mean_%s", nn);
		put_line(g, root, v, leaf, p->count > 0 ? p->sum / p->count : NAN);
		snprintf(leaf, sizeof leaf, "upper_%s", nn);
		put_line(g, root, v, leaf, p->value);
		snprintf(leaf, sizeof leaf, "sum_%s", nn);
		put_line(g, root, v, leaf, p->sum);
		snprintf(leaf, sizeof leaf, "sum_squares_%s", nn);
		put_line(g, root, v, leaf, p->sum_squares);
	}
}

static int graphite_one(void *arg, const struct statsd_view *v)
{
	struct gctx *g = arg;
	const char *prefix = g->o->prefix;
	char root[128];
	switch (v->kind) {
	case STATSD_COUNTER:
		if (g->o->legacy) {
			put_line(g, "stats_counts", v, NULL, v->value);
			put_line(g, prefix, v, NULL, v->rate);
		} else {
			section_root(root, sizeof root, prefix, "counters");
			put_line(g, root, v, "count", v->value);
			put_line(g, root, v, "rate", v->rate);
		}
		break;
	case STATSD_GAUGE:
		section_root(root, sizeof root, prefix, "gauges");
		put_line(g, root, v, NULL, v->value);
		break;
	case STATSD_SET:
		section_root(root, sizeof root, prefix, "sets");
		put_line(g, root, v, "count", v->value);
		break;
	default:
		section_root(root, sizeof root, prefix,
			     v->kind == STATSD_TIMER ? "timers" : "histograms");
		put_timer(g, root, v);
	}
	return g->b->len - g->start >= g->want;
}

static void own(struct gctx *g, const char *leaf, double value)
{
	struct statsd_buf *b = g->b;
	if (*g->o->prefix) {
		statsd_buf_put(b, g->o->prefix, strlen(g->o->prefix));
		statsd_buf_put(b, ".", 1);
	}
	statsd_buf_printf(b, "kite_statsd.%s ", leaf);
	statsd_buf_double(b, value);
	statsd_buf_printf(b, " %lld\n", (long long)g->ts);
}

bool statsd_graphite_next(struct statsd_table *t, struct statsd_cursor *c,
			  const struct statsd_graphite_opts *o, int64_t ts,
			  struct statsd_buf *b, size_t want)
{
	if (!c->open)
		return true;
	struct gctx g = {.b = b, .o = o, .ts = ts, .start = b->len, .want = want};
	g.pct = statsd_table_percentiles(t, &g.n_pct);
	statsd_table_walk(t, c, graphite_one, &g);
	if (!c->done)
		return false;
	statsd_cursor_close(t, c);
	const struct statsd_health *h = statsd_table_health(t);
	uint64_t bad = 0;
	for (int r = 0; r < STATSD_BAD_REASONS; r++)
		bad += h->bad_lines[r];
	own(&g, "packets_received", (double)h->packets);
	own(&g, "lines_received", (double)h->lines);
	own(&g, "bad_lines", (double)bad);
	own(&g, "kernel_drops", (double)h->kernel_drops);
	own(&g, "metrics_refused", (double)h->metrics_refused);
	own(&g, "series_expired", (double)h->series_expired);
	own(&g, "series", (double)statsd_table_series(t));
	own(&g, "last_flush_duration_seconds", h->flush_seconds_last);
	return true;
}

void statsd_graphite_render(struct statsd_table *t, const struct statsd_graphite_opts *o,
			    int64_t ts, struct statsd_buf *b)
{
	struct statsd_cursor c;
	statsd_cursor_open(t, &c);
	statsd_graphite_next(t, &c, o, ts, b, SIZE_MAX);
}
