/* kite statsd: aggregation over a flush interval, nearest-rank
 * percentiles, the reservoir beyond max-samples, and every cap's counter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "statsd/statsd.h"

struct found {
	const char *name, *tags;
	enum statsd_kind kind;
	struct statsd_view v;
	double q[STATSD_MAX_PERCENTILES];
	char prom[STATSD_PROM_NAME_MAX];
	int hits;
};

static int find_one(void *arg, const struct statsd_view *v)
{
	struct found *f = arg;
	if (v->kind == f->kind && !strcmp(v->name, f->name) && !strcmp(v->tags, f->tags)) {
		f->v = *v;
		for (unsigned i = 0; i < v->n_pct; i++)
			f->q[i] = v->pct[i].value;
		if (v->prom_name)
			snprintf(f->prom, sizeof f->prom, "%s", v->prom_name);
		f->v.prom_name = v->prom_name ? f->prom : NULL;
		f->hits++;
	}
	return 0;
}

static struct found get(struct statsd_table *t, enum statsd_kind k, const char *name,
			const char *tags)
{
	struct found f = {.name = name, .tags = tags, .kind = k};
	statsd_table_each(t, find_one, &f);
	if (f.hits != 1)
		fail_msg("%s{%s}: %d series, want 1", name, tags, f.hits);
	return f;
}

static struct statsd_table *table(uint64_t max_metrics, uint64_t max_samples,
				  uint64_t max_members)
{
	struct statsd_table *t = statsd_table_new(7);
	assert_non_null(t);
	struct statsd_config c;
	statsd_config_defaults(&c);
	c.max_metrics = max_metrics;
	c.max_samples = max_samples;
	c.max_set_members = max_members;
	statsd_table_configure(t, &c);
	return t;
}

/* A table flushed every second whose idle series go after expire_ms
 * (gauges after gauges_ms). */
static struct statsd_table *expiring(uint64_t seed, int64_t expire_ms, int64_t gauges_ms)
{
	struct statsd_table *t = statsd_table_new(seed);
	assert_non_null(t);
	struct statsd_config c;
	statsd_config_defaults(&c);
	c.flush_ms = 1000;
	c.expire_ms = expire_ms;
	c.expire_gauges_ms = gauges_ms;
	statsd_table_configure(t, &c);
	return t;
}

static void feed(struct statsd_table *t, const char *s)
{
	statsd_table_add_packet(t, s, strlen(s));
}

static void test_counters(void **state)
{
	(void)state;
	struct statsd_table *t = table(100, 100, 100);
	feed(t, "hits:1|c\nhits:2|c\nhits:1|c|@0.1\nhits:5|c|#env:a");
	statsd_table_flush(t, 2000);
	struct found f = get(t, STATSD_COUNTER, "hits", "");
	assert_true(f.v.value == 13);  /* 1 + 2 + 1/0.1 */
	assert_true(f.v.total == 13);
	assert_true(f.v.rate == 6.5);  /* per second over 2 s */
	assert_true(get(t, STATSD_COUNTER, "hits", "env=a").v.value == 5);
	/* The next interval starts at zero; the total goes on. */
	feed(t, "hits:4|c");
	statsd_table_flush(t, 2000);
	f = get(t, STATSD_COUNTER, "hits", "");
	assert_true(f.v.value == 4 && f.v.total == 17);
	statsd_table_flush(t, 2000);
	f = get(t, STATSD_COUNTER, "hits", "");
	assert_true(f.v.value == 0 && f.v.total == 17 && !f.v.updated);
	statsd_table_free(t);
}

static void test_gauges_persist(void **state)
{
	(void)state;
	struct statsd_table *t = table(100, 100, 100);
	feed(t, "temp:10|g\ntemp:+5|g\ntemp:-2.5|g");
	statsd_table_flush(t, 1000);
	assert_true(get(t, STATSD_GAUGE, "temp", "").v.value == 12.5);
	statsd_table_flush(t, 1000); /* kept across flushes, as statsd does */
	assert_true(get(t, STATSD_GAUGE, "temp", "").v.value == 12.5);
	feed(t, "temp:3|g");
	statsd_table_flush(t, 1000);
	assert_true(get(t, STATSD_GAUGE, "temp", "").v.value == 3);
	statsd_table_free(t);
}

static void test_sets(void **state)
{
	(void)state;
	struct statsd_table *t = table(100, 100, 3);
	feed(t, "u:a|s\nu:b|s\nu:a|s\nu:c|s\nu:d|s\nu:e|s\nu:a|s");
	statsd_table_flush(t, 1000);
	/* three members fit; d and e were refused and counted */
	assert_true(get(t, STATSD_SET, "u", "").v.value == 3);
	assert_int_equal(statsd_table_health(t)->set_members_refused, 2);
	feed(t, "u:z|s");
	statsd_table_flush(t, 1000);
	assert_true(get(t, STATSD_SET, "u", "").v.value == 1);
	statsd_table_free(t);
}

static void test_timers(void **state)
{
	(void)state;
	struct statsd_table *t = table(100, 1000, 100);
	char line[64];
	for (int i = 100; i >= 1; i--) { /* out of order on purpose */
		snprintf(line, sizeof line, "rt:%d|ms", i);
		feed(t, line);
	}
	feed(t, "rt:50|ms|@0.5");
	statsd_table_flush(t, 10000);
	struct found f = get(t, STATSD_TIMER, "rt", "");
	assert_true(f.v.count == 102); /* 100 + 1/0.5 */
	assert_true(f.v.sum == 5100);
	assert_true(f.v.min == 1 && f.v.max == 100);
	assert_true(f.v.mean == 5100.0 / 101);
	/* default percentiles 50, 90, 99 over 101 samples (50 twice):
	 * rank ceil(0.5 * 101) = 51 -> 50; ceil(90.9) = 91 -> 90; ceil(99.99) = 100 -> 99 */
	assert_true(f.q[0] == 50);
	assert_true(f.q[1] == 90);
	assert_true(f.q[2] == 99);
	assert_true(f.v.cum_count == 102);
	/* statsd's (Etsy's) other figures: median, std (population, two
	 * passes), sum_squares; and per percentile the count, sum and sum of
	 * squares of the samples up to its rank (90: rank 91, the samples
	 * 1..50, 50, 51..90). */
	assert_true(f.v.median == 50);
	assert_true(f.v.sum_squares == 338350 + 2500);
	double mean = 5100.0 / 101, diffs = (50 - mean) * (50 - mean);
	for (int i = 1; i <= 100; i++)
		diffs += (i - mean) * (i - mean);
	double var = diffs / 101;
	assert_true(f.v.std * f.v.std > var * (1 - 1e-12) && f.v.std * f.v.std < var * (1 + 1e-12));
	assert_true(f.v.pct[1].count == 91);
	assert_true(f.v.pct[1].sum == 4095 + 50);
	assert_true(f.v.pct[1].sum_squares == 247065 + 2500);
	/* An idle interval keeps the quantiles, counts zero. */
	statsd_table_flush(t, 10000);
	f = get(t, STATSD_TIMER, "rt", "");
	assert_true(f.v.count == 0 && f.q[1] == 90 && f.v.cum_count == 102);
	statsd_table_free(t);
}

static void test_percentile_definition(void **state)
{
	(void)state;
	double v[1000];
	for (int i = 0; i < 1000; i++)
		v[i] = i + 1;
	assert_true(statsd_percentile(v, 100, 99) == 99);
	assert_true(statsd_percentile(v, 100, 100) == 100);
	assert_true(statsd_percentile(v, 100, 1) == 1);
	assert_true(statsd_percentile(v, 100, 0.5) == 1);
	assert_true(statsd_percentile(v, 1000, 99.9) == 999); /* not 1000 */
	assert_true(statsd_percentile(v, 1, 50) == 1);
	assert_true(statsd_percentile(v, 2, 50) == 1);
	assert_true(statsd_percentile(v, 3, 50) == 2);
	assert_true(statsd_percentile(v, 10, 95) == 10);
	double nan = statsd_percentile(v, 0, 50);
	assert_true(nan != nan);
}

/* Beyond max-samples a uniform reservoir is kept: the median stays close
 * to the true one, and every sample left out is counted. */
static void test_reservoir(void **state)
{
	(void)state;
	struct statsd_table *t = table(100, 1000, 100);
	char line[64];
	for (int i = 1; i <= 100000; i++) {
		snprintf(line, sizeof line, "big:%d|h", i);
		feed(t, line);
	}
	statsd_table_flush(t, 1000);
	struct found f = get(t, STATSD_HISTOGRAM, "big", "");
	assert_true(f.v.count == 100000 && f.v.min == 1 && f.v.max == 100000);
	assert_int_equal(statsd_table_health(t)->samples_not_kept, 99000);
	/* 1000 uniform samples: the median's rank error is within a few
	 * standard deviations (sqrt(n)/2 ~ 16 ranks of 1000 = 1.6%). */
	assert_true(f.q[0] > 44000 && f.q[0] < 56000);
	statsd_table_free(t);
}

static void test_max_metrics(void **state)
{
	(void)state;
	struct statsd_table *t = table(3, 100, 100);
	feed(t, "a:1|c\nb:1|c\nc:1|c|#k:v\nd:1|c\ne:1|g\na:1|c\nc:1|c|#k:w\nc:1|c|#k:v");
	statsd_table_flush(t, 1000);
	assert_int_equal(statsd_table_series(t), 3);
	assert_int_equal(statsd_table_health(t)->metrics_refused, 3);
	/* series that exist still take samples at the cap */
	assert_true(get(t, STATSD_COUNTER, "a", "").v.value == 2);
	assert_true(get(t, STATSD_COUNTER, "c", "k=v").v.value == 2);
	statsd_table_free(t);
}

/* Kinds keep their own namespaces, as in statsd; names are statsd's
 * Graphite names, so "a.b", "a_b" and "a-b" are three series (as in
 * statsd) and "a b" joins "a_b"; a Prometheus name taken by another family
 * is counted, not duplicated, and the collector's own kite_statsd_* stay
 * clear. */
static void test_namespaces(void **state)
{
	(void)state;
	struct statsd_table *t = table(100, 100, 100);
	feed(t, "x:1|c\nx:2|g\na.b:1|c\na_b:2|c\na-b:4|c\na b:8|c\nx:q|s\n"
		"kite_statsd_lines_received:1|g");
	statsd_table_flush(t, 1000);
	assert_true(get(t, STATSD_COUNTER, "x", "").v.value == 1);
	struct found g = get(t, STATSD_GAUGE, "x", "");
	assert_true(g.v.value == 2 && g.v.prom_name && !strcmp(g.v.prom_name, "x"));
	struct found ab = get(t, STATSD_COUNTER, "a.b", "");
	assert_true(ab.v.value == 1 && !strcmp(ab.v.prom_name, "a_b_total"));
	struct found a_b = get(t, STATSD_COUNTER, "a_b", "");
	assert_true(a_b.v.value == 2 + 8 && !a_b.v.prom_name);
	assert_true(get(t, STATSD_COUNTER, "a-b", "").v.value == 4);
	struct found s = get(t, STATSD_SET, "x", "");
	assert_null(s.v.prom_name); /* "x" belongs to the gauge */
	assert_null(get(t, STATSD_GAUGE, "kite_statsd_lines_received", "").v.prom_name);
	/* a_b, a-b (a_b_total), the set x, kite_statsd_* */
	assert_int_equal(statsd_table_health(t)->prometheus_conflicts, 4);
	statsd_table_free(t);
}

/* A summary exports NAME, NAME_sum and NAME_count: a gauge db.query.count
 * beside a timer db.query would be a second family named db_query_count.
 * Whichever comes first keeps the name, in either order. */
static void test_summary_names(void **state)
{
	(void)state;
	struct statsd_table *t = table(100, 100, 100);
	feed(t, "db.query:5|ms\ndb.query.count:3|g\ndb.query.sum:1|c\n"
		"web.count:1|g\nweb:2|ms\nn.total:1|c\nn:1|c\nm:1|c\nm_total:1|g");
	statsd_table_flush(t, 1000);
	assert_non_null(get(t, STATSD_TIMER, "db.query", "").v.prom_name);
	assert_null(get(t, STATSD_GAUGE, "db.query.count", "").v.prom_name);
	/* a counter db.query.sum exports db_query_sum_total: no clash */
	assert_non_null(get(t, STATSD_COUNTER, "db.query.sum", "").v.prom_name);
	assert_non_null(get(t, STATSD_GAUGE, "web.count", "").v.prom_name);
	assert_null(get(t, STATSD_TIMER, "web", "").v.prom_name);
	/* counters n.total and n both export n_total; m_total the gauge and
	 * m the counter too */
	assert_non_null(get(t, STATSD_COUNTER, "n.total", "").v.prom_name);
	assert_null(get(t, STATSD_COUNTER, "n", "").v.prom_name);
	assert_non_null(get(t, STATSD_COUNTER, "m", "").v.prom_name);
	assert_null(get(t, STATSD_GAUGE, "m_total", "").v.prom_name);
	assert_int_equal(statsd_table_health(t)->prometheus_conflicts, 4);
	statsd_table_free(t);
}

/* Idle series expire: counters, timers and sets after --expire, gauges
 * after --expire-gauges, counted; a full table heals (new names are taken
 * again) and the memory of expired series is used again. */
static void test_expiry(void **state)
{
	(void)state;
	struct statsd_table *t = table(4, 100, 100);
	struct statsd_config c;
	statsd_config_defaults(&c);
	c.max_metrics = 4;
	c.flush_ms = 1000;
	c.expire_ms = 2000;        /* two idle intervals */
	c.expire_gauges_ms = 4000; /* four */
	statsd_table_configure(t, &c);
	feed(t, "c:1|c\ng:5|g\nt:3|ms|#k:v\ns:m|s");
	feed(t, "full:1|c"); /* a fifth: refused */
	assert_int_equal(statsd_table_health(t)->metrics_refused, 1);
	statsd_table_flush(t, 1000); /* the interval they came in */
	feed(t, "c:1|c"); /* c stays busy */
	statsd_table_flush(t, 1000); /* idle 1 */
	assert_int_equal(statsd_table_series(t), 4);
	statsd_table_flush(t, 1000); /* idle 2: t and s go, c was busy */
	assert_int_equal(statsd_table_series(t), 2);
	assert_int_equal(statsd_table_health(t)->series_expired, 2);
	get(t, STATSD_COUNTER, "c", "");
	get(t, STATSD_GAUGE, "g", "");
	/* room again: new names are taken */
	feed(t, "new:1|c|#a:b");
	assert_int_equal(statsd_table_health(t)->metrics_refused, 1);
	statsd_table_flush(t, 1000);
	statsd_table_flush(t, 1000); /* g idle 4 intervals: gone (c went at 2) */
	struct found none = {.name = "g", .tags = "", .kind = STATSD_GAUGE};
	statsd_table_each(t, find_one, &none);
	assert_int_equal(none.hits, 0);
	assert_int_equal(statsd_table_health(t)->series_expired, 4);
	/* a returning name starts again from nothing */
	feed(t, "g:1|g");
	statsd_table_flush(t, 1000);
	assert_true(get(t, STATSD_GAUGE, "g", "").v.value == 1);
	statsd_table_free(t);

	/* An untagged series that expires while its family lives on (a
	 * tagged series stays busy) comes back in its place, from nothing;
	 * so does one of a family first seen tagged. */
	t = statsd_table_new(8);
	c.max_metrics = 100;
	c.expire_ms = 1000;
	statsd_table_configure(t, &c);
	feed(t, "r:1|c\nr:1|c|#k:v\nq:1|c|#k:v\nq:2|c");
	statsd_table_flush(t, 1000);
	assert_int_equal(statsd_table_series(t), 4);
	feed(t, "r:1|c|#k:v\nq:1|c|#k:v");
	statsd_table_flush(t, 1000); /* the untagged ones were idle: gone */
	assert_int_equal(statsd_table_series(t), 2);
	feed(t, "r:5|c\nq:7|c\nr:1|c|#k:v\nq:1|c|#k:v");
	statsd_table_flush(t, 1000);
	assert_int_equal(statsd_table_series(t), 4);
	assert_true(get(t, STATSD_COUNTER, "r", "").v.total == 5);
	assert_true(get(t, STATSD_COUNTER, "q", "").v.total == 7);
	assert_true(get(t, STATSD_COUNTER, "r", "k=v").v.total == 3);
	feed(t, "r:1|c\nq:1|c\nr:1|c|#k:v\nq:1|c|#k:v");
	statsd_table_flush(t, 1000);
	assert_true(get(t, STATSD_COUNTER, "r", "").v.total == 6);
	assert_true(get(t, STATSD_COUNTER, "q", "").v.total == 8);
	assert_int_equal(statsd_table_series(t), 4);
	statsd_table_free(t);
}

/* Memory is used again: rounds of new names that expire do not grow the
 * table past what the first rounds took. */
static void test_expiry_reuses_memory(void **state)
{
	(void)state;
	struct statsd_table *t = expiring(9, 1000, 1000);
	size_t after[12];
	char line[80];
	for (int round = 0; round < 12; round++) {
		for (int i = 0; i < 5000; i++) {
			int n = snprintf(line, sizeof line, "round%02d.name%05d:%d|%s%s", round, i, i,
					 i % 3 ? "c" : "g", i % 5 ? "" : "|#tag:value");
			statsd_table_add_packet(t, line, (size_t)n);
		}
		statsd_table_flush(t, 1000);
		statsd_table_flush(t, 1000); /* idle one interval: all go */
		assert_int_equal(statsd_table_series(t), 0);
		after[round] = statsd_table_bytes(t);
	}
	assert_int_equal(statsd_table_health(t)->series_expired, 12 * 5000);
	if (after[11] != after[2])
		fail_msg("table grew from %zu to %zu bytes", after[2], after[11]);
	statsd_table_free(t);
}

/* A walk that spans changes to the table, as a streamed page does: series
 * and families added meanwhile, a flush whose expiry drops most of what
 * the walk has passed and has yet to reach, the very series the cursor
 * stands on included. Expiry does not wait for the walk; the walk goes on
 * from where it was, meets every series at most once and each family in
 * one run, and leaves out the families made after it began. */
struct walked {
	int met[100], late, starts, stop_after, seen;
};

static int walk_one(void *arg, const struct statsd_view *v)
{
	struct walked *w = arg;
	int i;
	if (sscanf(v->name, "w%d", &i) == 1 && i >= 0 && i < 100)
		w->met[i]++;
	else if (!strcmp(v->name, "late"))
		w->late++;
	w->starts += v->family_first;
	return ++w->seen == w->stop_after;
}

static void test_cursor_spans_flush(void **state)
{
	(void)state;
	struct statsd_table *t = expiring(11, 1000, 3600000); /* idle one interval: gone */
	char line[64];
	for (int i = 0; i < 100; i++) {
		int n = snprintf(line, sizeof line, "w%d:1|c", i);
		statsd_table_add_packet(t, line, (size_t)n);
	}
	statsd_table_flush(t, 1000);
	struct statsd_cursor cur;
	struct walked w = {.stop_after = 10};
	statsd_cursor_open(t, &cur);
	assert_int_equal(statsd_table_walk(t, &cur, walk_one, &w), 1);
	assert_false(cur.done);
	/* Meanwhile: a new family, a new series of a family already passed,
	 * and a flush in which w0..w98 were idle. */
	feed(t, "late:1|c\nw0:1|c|#k:v\nw99:1|c");
	statsd_table_flush(t, 1000);
	/* No waiting for the cursor: w0 (untagged) .. w98 are gone now,
	 * w9 (where the cursor stands) and the families after it too. */
	assert_int_equal(statsd_table_health(t)->series_expired, 99);
	assert_int_equal(statsd_table_series(t), 3);
	w.stop_after = 0;
	assert_int_equal(statsd_table_walk(t, &cur, walk_one, &w), 0);
	assert_true(cur.done);
	for (int i = 0; i < 100; i++)
		if (w.met[i] != (i < 10 || i == 99))
			fail_msg("w%d met %d times", i, w.met[i]);
	assert_int_equal(w.late, 0); /* made after the walk began */
	assert_int_equal(w.starts, 11);
	statsd_cursor_close(t, &cur);
	statsd_cursor_close(t, &cur); /* twice is harmless */
	/* A walk that begins now meets them all. */
	struct walked w2 = {0};
	statsd_table_each(t, walk_one, &w2);
	assert_int_equal(w2.late, 1);
	assert_int_equal(w2.met[0], 1);
	assert_int_equal(w2.met[99], 1);
	statsd_table_free(t);
}

/* A family that expires under an open walk and comes back under the same
 * name is not met a second time: its name would be on the page twice. */
static void test_family_back_under_walk(void **state)
{
	(void)state;
	struct statsd_table *t = expiring(12, 1000, 3600000); /* idle one interval: gone */
	feed(t, "a:1|c\nz:1|c");
	statsd_table_flush(t, 1000);
	struct statsd_cursor cur;
	struct walked w = {.stop_after = 1};
	statsd_cursor_open(t, &cur);
	assert_int_equal(statsd_table_walk(t, &cur, walk_one, &w), 1); /* met a */
	feed(t, "z:1|c");
	statsd_table_flush(t, 1000); /* a goes */
	feed(t, "a:5|c");            /* and comes back, at the tail */
	statsd_table_flush(t, 1000);
	struct found f = {.name = "a", .tags = "", .kind = STATSD_COUNTER};
	w.stop_after = 0;
	assert_int_equal(statsd_table_walk(t, &cur, find_one, &f), 0);
	assert_int_equal(f.hits, 0);
	statsd_cursor_close(t, &cur);
	assert_true(get(t, STATSD_COUNTER, "a", "").v.value == 5);
	statsd_table_free(t);
}

/* A flush swept a slice at a time closes every series at its boundary:
 * samples that come while the sweep has not reached their series count
 * in the next interval, and a walk during the sweep never shows the
 * figures of the interval before. */
static void test_sliced_flush_boundary(void **state)
{
	(void)state;
	struct statsd_table *t = table(100000, 100, 100);
	char line[96];
	for (int i = 0; i < 2000; i++) {
		int n = snprintf(line, sizeof line, "n%d:%d|c\nn%d:%d|g\nn%d:%d|ms\nn%d:m%d|s",
				 i, 2, i, 10, i, 100, i, 1);
		statsd_table_add_packet(t, line, (size_t)n);
	}
	statsd_table_flush_begin(t, 1000);
	assert_true(statsd_table_flushing(t));
	assert_false(statsd_table_flush_step(t, 10)); /* only the first few */
	/* After the boundary: a late sample of every kind on the last names
	 * (not reached yet) and the first ones (already swept). */
	feed(t, "n1999:7|c\nn1999:+1|g\nn1999:900|ms\nn1999:other|s\n"
		"n0:7|c\nn0:+1|g\nn0:900|ms\nn0:other|s");
	/* A walk during the sweep: the interval before, throughout. */
	struct found mid = get(t, STATSD_COUNTER, "n1500", "");
	assert_true(mid.v.value == 2 && mid.v.updated);
	assert_true(statsd_table_flushing(t));
	int steps = 0;
	while (!statsd_table_flush_step(t, 100))
		steps++;
	assert_true(steps >= 10);
	assert_false(statsd_table_flushing(t));
	for (int k = 0; k < 2; k++) {
		const char *name = k ? "n1999" : "n0";
		assert_true(get(t, STATSD_COUNTER, name, "").v.value == 2);
		assert_true(get(t, STATSD_GAUGE, name, "").v.value == 10);
		struct found tm = get(t, STATSD_TIMER, name, "");
		assert_true(tm.v.count == 1 && tm.v.max == 100);
		assert_true(get(t, STATSD_SET, name, "").v.value == 1);
	}
	statsd_table_flush(t, 1000);
	for (int k = 0; k < 2; k++) {
		const char *name = k ? "n1999" : "n0";
		struct found ct = get(t, STATSD_COUNTER, name, "");
		assert_true(ct.v.value == 7 && ct.v.total == 9);
		assert_true(get(t, STATSD_GAUGE, name, "").v.value == 11);
		struct found tm = get(t, STATSD_TIMER, name, "");
		assert_true(tm.v.count == 1 && tm.v.max == 900);
		assert_true(get(t, STATSD_SET, name, "").v.value == 1);
	}
	/* A series no late sample touched: an empty interval. */
	struct found quiet = get(t, STATSD_COUNTER, "n1000", "");
	assert_true(quiet.v.value == 0 && quiet.v.total == 2 && !quiet.v.updated);
	/* A begin during a sweep finishes it first (else n5 would never
	 * close the interval of its sample). */
	feed(t, "n5:1|c");
	statsd_table_flush_begin(t, 1000);
	statsd_table_flush_step(t, 3);
	statsd_table_flush_begin(t, 1000);
	statsd_table_flush_step(t, SIZE_MAX);
	struct found again = get(t, STATSD_COUNTER, "n5", "");
	assert_true(again.v.value == 0 && again.v.total == 3);
	statsd_table_free(t);
}

/* Scrapers that always keep a page open (each slow page begins before the
 * last one ends) while names churn: expiry still happens at each flush,
 * memory stays bounded, and every page holds each family in one run. */
struct page_check {
	char seen[4096][24];
	int n, split;
	char cur[24];
};

static int page_one(void *arg, const struct statsd_view *v)
{
	struct page_check *p = arg;
	if (strcmp(v->name, p->cur)) {
		for (int i = 0; i < p->n; i++)
			if (!strcmp(p->seen[i], v->name))
				p->split++;
		if (p->n < 4096)
			snprintf(p->seen[p->n++], sizeof p->seen[0], "%s", v->name);
		snprintf(p->cur, sizeof p->cur, "%s", v->name);
	}
	return 1; /* one series per call: a slow reader */
}

static void test_churn_under_open_walks(void **state)
{
	(void)state;
	struct statsd_table *t = expiring(13, 1000, 1000);
	/* Two scrapers, each with the page it reads and the next one. */
	struct statsd_cursor cur[2][2];
	int which[2] = {0, 0};
	struct page_check *pc = calloc(2, sizeof *pc);
	assert_non_null(pc);
	statsd_cursor_open(t, &cur[0][0]);
	statsd_cursor_open(t, &cur[1][0]);
	char line[80];
	size_t bytes_at[40];
	uint64_t pages = 0;
	for (int round = 0; round < 40; round++) {
		/* 1000 names a round, a third of them again the next round,
		 * a few names over and over (they come back after expiring) */
		for (int i = 0; i < 1000; i++) {
			int n = snprintf(line, sizeof line, "r%d.n%d:1|%s%s",
					 i % 3 ? round : round - 1 + (round == 0), i,
					 i % 2 ? "c" : "g", i % 7 ? "" : "|#k:v");
			statsd_table_add_packet(t, line, (size_t)n);
		}
		feed(t, round % 2 ? "back:1|c" : "other:1|c");
		statsd_table_flush_begin(t, 1000);
		/* The sweep and both walks take turns. */
		for (bool sweeping = true; sweeping;) {
			sweeping = !statsd_table_flush_step(t, 97);
			for (int k = 0; k < 2; k++) {
				struct statsd_cursor *now = &cur[k][which[k]];
				for (int s = 0; s < 50; s++)
					statsd_table_walk(t, now, page_one, &pc[k]);
				if (now->done) {
					/* The next page begins before this one is closed. */
					statsd_cursor_open(t, &cur[k][!which[k]]);
					assert_int_equal(pc[k].split, 0);
					statsd_cursor_close(t, now);
					which[k] = !which[k];
					memset(&pc[k], 0, sizeof pc[k]);
					pages++;
				}
			}
		}
		bytes_at[round] = statsd_table_bytes(t);
		/* Only the names of this round and the last are left. */
		if (statsd_table_series(t) > 2000 + 2)
			fail_msg("round %d: %zu series", round, statsd_table_series(t));
	}
	assert_true(pages > 10);
	assert_true(statsd_table_health(t)->series_expired > 30 * 1000);
	if (bytes_at[39] > bytes_at[9])
		fail_msg("table grew from %zu to %zu bytes", bytes_at[9], bytes_at[39]);
	statsd_cursor_close(t, &cur[0][which[0]]);
	statsd_cursor_close(t, &cur[1][which[1]]);
	free(pc);
	statsd_table_free(t);
}

/* A page rendered in slices of any size is the page rendered whole. */
static void test_slices_make_the_page(void **state)
{
	(void)state;
	struct statsd_table *t = table(100000, 100, 100);
	char line[96];
	for (int i = 0; i < 3000; i++) {
		int n = snprintf(line, sizeof line, "s%d.x:%d|%s%s", i % 700, i,
				 (const char *[]){"c", "g", "ms", "s"}[i % 4],
				 i % 3 ? "" : "|#env:prod");
		statsd_table_add_packet(t, line, (size_t)n);
	}
	statsd_table_flush(t, 1000);
	struct statsd_buf whole = {0};
	statsd_prometheus_render(t, &whole);
	const size_t wants[] = {1, 100, 4096, 65536};
	for (size_t k = 0; k < sizeof wants / sizeof *wants; k++) {
		struct statsd_buf sliced = {0};
		struct statsd_cursor cur;
		statsd_prometheus_start(t, &cur);
		int slices = 1;
		while (!statsd_prometheus_next(t, &cur, &sliced, wants[k]))
			slices++;
		assert_true(statsd_prometheus_next(t, &cur, &sliced, wants[k])); /* stays done */
		assert_int_equal(sliced.len, whole.len);
		assert_memory_equal(sliced.p, whole.p, whole.len);
		if (wants[k] < whole.len / 4 && slices < 4)
			fail_msg("want %zu: %d slices", wants[k], slices);
		statsd_buf_free(&sliced);
	}
	statsd_buf_free(&whole);
	statsd_table_free(t);
}

/* Attack: one hot name of each kind fed between every slice of many sliced
 * flushes (and read by walks in the middle of sweeps), placed first, in
 * the middle and last of the table. Each flush must show exactly the
 * samples sent between its boundary and the one before: none lost, none
 * counted twice, none in the wrong interval. */
static void test_samples_during_sweeps_counted_once(void **state)
{
	(void)state;
	struct statsd_table *t = table(100000, 100000, 100000);
	static const char *const hot[] = {"hot.a", "hot.m", "hot.z"};
	char line[96];
	feed(t, "hot.a:0|c\nhot.a:0|ms\nhot.a:x|s");
	for (int i = 0; i < 3000; i++) {
		int n = snprintf(line, sizeof line, "fill%d:1|c%s", i,
				 i == 1500 ? "\nhot.m:0|c\nhot.m:0|ms\nhot.m:x|s" : "");
		statsd_table_add_packet(t, line, (size_t)n);
	}
	feed(t, "hot.z:0|c\nhot.z:0|ms\nhot.z:x|s");
	statsd_table_flush(t, 1000); /* every hot series is in a flush before the attack */
	int sent = 0, in_interval = 0, member = 0;
	double counted = 0, timed = 0, members = 0;
	for (int flush = 0; flush < 12; flush++) {
		int boundary = in_interval;
		in_interval = 0;
		statsd_table_flush_begin(t, 1000);
		int slice = 0;
		do {
			for (int k = 0; k < 3 && sent < 1000; k++, sent++, in_interval++) {
				const char *h = hot[(sent + slice) % 3];
				int n = snprintf(line, sizeof line, "%s:1|c\n%s:5|ms\n%s:m%d|s",
						 h, h, h, member++);
				statsd_table_add_packet(t, line, (size_t)n);
			}
			if (slice++ % 5 == 0) /* a walk settles series the sweep has not reached */
				(void)get(t, STATSD_COUNTER, hot[slice % 3], "");
		} while (!statsd_table_flush_step(t, 97));
		double c = 0, tm = 0, s = 0;
		for (int k = 0; k < 3; k++) {
			c += get(t, STATSD_COUNTER, hot[k], "").v.value;
			tm += get(t, STATSD_TIMER, hot[k], "").v.count;
			s += get(t, STATSD_SET, hot[k], "").v.value;
		}
		if (c != boundary || tm != boundary || s != boundary)
			fail_msg("flush %d: counters %g, timer samples %g, set members %g; want %d",
				 flush, c, tm, s, boundary);
		counted += c;
		timed += tm;
		members += s;
	}
	statsd_table_flush(t, 1000);
	double total = 0;
	for (int k = 0; k < 3; k++) {
		struct found f = get(t, STATSD_COUNTER, hot[k], "");
		counted += f.v.value;
		total += f.v.total;
		timed += get(t, STATSD_TIMER, hot[k], "").v.count;
		members += get(t, STATSD_SET, hot[k], "").v.value;
	}
	assert_int_equal(sent, 1000);
	assert_true(counted == 1000 && total == 1000);
	assert_true(timed == 1000 && members == 1000);
	statsd_table_free(t);
}

/* Attack: one long /metrics page, read a series at a time (want 1) during
 * thirty sliced flushes, where at each flush the series the page stands on
 * goes idle and expires, a whole family goes, and "back" expires and comes
 * back every other flush. The page must stay one page: each TYPE and HELP
 * once, no sample line twice, each metric's lines in one run. */
static char *page_standing(const struct statsd_buf *b, int *fam, int *k, char *kind)
{
	/* the last sample line of the page so far */
	if (!b->len)
		return NULL;
	size_t e = b->len - 1, s = e;
	while (s > 0 && b->p[s - 1] != '\n')
		s--;
	*k = -1;
	char c;
	if (sscanf(b->p + s, "%cf%d", &c, fam) != 2)
		return NULL;
	*kind = c;
	const char *brace = memchr(b->p + s, '{', e - s);
	if (brace)
		sscanf(brace, "{k=\"%d\"}", k);
	return b->p + s;
}

static void feed_round(struct statsd_table *t, int round, int skip_fam, int skip_k,
		       char skip_kind, int gone_fam)
{
	char line[64];
	for (int f = 0; f < 200; f++) {
		if (f == gone_fam)
			continue;
		char kind = f % 3 ? 'c' : 'g';
		for (int k = -1; k < 5; k++) {
			if (f == skip_fam && k == skip_k && kind == skip_kind)
				continue;
			int n = k < 0 ? snprintf(line, sizeof line, "%cf%d:1|%c", kind, f, kind)
				      : snprintf(line, sizeof line, "%cf%d:1|%c|#k:%d", kind, f,
						 kind, k);
			statsd_table_add_packet(t, line, (size_t)n);
		}
	}
	if (round % 2)
		feed(t, "back:1|c");
}

static void check_page(const char *page, size_t len)
{
	char *text = strndup(page, len);
	assert_non_null(text);
	size_t n_lines = 0, cap = 4096;
	char **lines = malloc(cap * sizeof *lines);
	assert_non_null(lines);
	for (char *save, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (n_lines == cap)
			lines = realloc(lines, (cap *= 2) * sizeof *lines);
		lines[n_lines++] = l;
	}
	/* metric name of each line (TYPE/HELP: the one they name) */
	char (*name)[64] = calloc(n_lines, sizeof *name);
	assert_non_null(name);
	for (size_t i = 0; i < n_lines; i++) {
		const char *l = lines[i];
		if (!strncmp(l, "# TYPE ", 7) || !strncmp(l, "# HELP ", 7))
			l += 7;
		size_t m = strcspn(l, "{ ");
		snprintf(name[i], sizeof name[i], "%.*s", (int)m, l);
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(lines[i], lines[j]))
				fail_msg("line %zu twice: %s", i, lines[i]);
			if (lines[i][0] != '#' && lines[j][0] != '#') {
				size_t a = strcspn(lines[i], " "), b = strcspn(lines[j], " ");
				if (a == b && !memcmp(lines[i], lines[j], a))
					fail_msg("series twice: %s / %s", lines[j], lines[i]);
			}
			/* a name left before comes back: not in one run */
			if (!strcmp(name[i], name[j]) && strcmp(name[i - 1], name[i]))
				fail_msg("%s split: line %zu", name[i], i);
		}
	}
	free(name);
	free(lines);
	free(text);
}

/* Is the series cf/gf FAM (k, or untagged for k -1) on the page? */
static bool on_page(const struct statsd_buf *b, int fam, int k)
{
	char key[64];
	char kind = fam % 3 ? 'c' : 'g';
	const char *suffix = kind == 'c' ? "_total" : "";
	if (k < 0)
		snprintf(key, sizeof key, "\n%cf%d%s ", kind, fam, suffix);
	else
		snprintf(key, sizeof key, "\n%cf%d%s{k=\"%d\"} ", kind, fam, suffix, k);
	return memmem(b->p, b->len, key, strlen(key)) != NULL;
}

static void test_page_whole_while_its_place_expires(void **state)
{
	(void)state;
	/* series idle at some flush of the page: they may be missing */
	static bool gap[200][6];
	memset(gap, 0, sizeof gap);
	struct statsd_table *t = expiring(21, 1000, 1000); /* idle one interval: gone */
	feed_round(t, 0, -1, -1, 0, -1);
	statsd_table_flush(t, 1000);
	struct statsd_cursor cur;
	struct statsd_buf page = {0};
	statsd_prometheus_start(t, &cur);
	bool done = false;
	int stood_expired = 0;
	for (int round = 1; round <= 30 && !done; round++) {
		for (int i = 0; i < 7 && !done; i++)
			done = statsd_prometheus_next(t, &cur, &page, 1);
		int fam = -1, k = -1;
		char kind = 0;
		if (!done && !page_standing(&page, &fam, &k, &kind))
			fail_msg("round %d: page stands on no series", round);
		feed_round(t, round, fam, k, kind, (round * 37) % 200);
		if (fam >= 0 && fam < 200)
			gap[fam][k + 1] = true;
		for (int j = 0; j < 6; j++)
			gap[(round * 37) % 200][j] = true;
		statsd_table_flush_begin(t, 1000);
		/* Odd rounds: the page moves on during the sweep; even ones: it
		 * stands on the series while the sweep expires it. */
		while (!statsd_table_flush_step(t, 50))
			if (!done && round % 2)
				done = statsd_prometheus_next(t, &cur, &page, 1);
		if (!done && !(round % 2)) { /* the series it stood on went */
			char name[16], tags[8];
			snprintf(name, sizeof name, "%cf%d", kind, fam);
			snprintf(tags, sizeof tags, k < 0 ? "" : "k=%d", k);
			struct found gone = {.name = name, .tags = tags,
					     .kind = kind == 'c' ? STATSD_COUNTER : STATSD_GAUGE};
			statsd_table_each(t, find_one, &gone);
			stood_expired += gone.hits == 0;
			/* and comes back at once, before the page moves on */
			char line[64];
			int n = snprintf(line, sizeof line, "%s:1|%c%s%s", name, kind,
					 k < 0 ? "" : "|#k:", k < 0 ? "" : tags + 2);
			statsd_table_add_packet(t, line, (size_t)n);
		}
	}
	assert_true(stood_expired >= 10);
	while (!done)
		done = statsd_prometheus_next(t, &cur, &page, 1);
	check_page(page.p, page.len);
	/* every series alive throughout is on the page */
	for (int f = 0; f < 200; f++)
		for (int k = -1; k < 5; k++)
			if (!gap[f][k + 1] && !on_page(&page, f, k))
				fail_msg("f%d k %d (never idle) missing from the page", f, k);
	statsd_buf_free(&page);
	statsd_table_free(t);
}

/* Attack: the series an open walk stands on expires and comes back (at
 * its family's tail) and is flushed again before the walk resumes: the
 * walk must not meet it a second time, nor lose the series after it. */
struct tag_walk {
	int met[11], x, stop_at, seen;
};

static int tag_one(void *arg, const struct statsd_view *v)
{
	struct tag_walk *w = arg;
	int k;
	if (!strcmp(v->name, "t") && sscanf(v->tags, "k=%d", &k) == 1 && k >= 0 && k < 11)
		w->met[k]++;
	w->x += !strcmp(v->name, "x");
	return ++w->seen == w->stop_at;
}

static void feed_tags(struct statsd_table *t, int skip)
{
	char line[32];
	for (int k = 0; k < 10; k++)
		if (k != skip) {
			int n = snprintf(line, sizeof line, "t:1|c|#k:%d", k);
			statsd_table_add_packet(t, line, (size_t)n);
		}
}

static void test_walk_place_expires_and_returns(void **state)
{
	(void)state;
	struct statsd_table *t = expiring(22, 1000, 1000); /* idle one interval: gone */
	feed_tags(t, -1);
	statsd_table_flush(t, 1000);
	struct statsd_cursor cur;
	struct tag_walk w = {.stop_at = 4};
	statsd_cursor_open(t, &cur);
	assert_int_equal(statsd_table_walk(t, &cur, tag_one, &w), 1); /* stands on k=3 */
	feed_tags(t, 3);
	statsd_table_flush(t, 1000); /* k=3 goes */
	assert_int_equal(statsd_table_health(t)->series_expired, 1);
	feed_tags(t, -1);            /* and comes back */
	statsd_table_flush(t, 1000);
	w.stop_at = 0;
	assert_int_equal(statsd_table_walk(t, &cur, tag_one, &w), 0);
	statsd_cursor_close(t, &cur);
	for (int k = 0; k < 10; k++)
		if (w.met[k] != 1)
			fail_msg("k=%d met %d times", k, w.met[k]);
	/* The family after t, where a walk stands, goes: the walk moves back
	 * to t's end. A new series of t is not met (t's run on the page has
	 * ended: v came after it), nor t's first series, gone and back. */
	feed(t, "v:1|c\nx:1|c");
	feed_tags(t, -1);
	statsd_table_flush(t, 1000);
	struct tag_walk w2 = {.stop_at = 11}; /* t's ten, then v */
	statsd_cursor_open(t, &cur);
	assert_int_equal(statsd_table_walk(t, &cur, tag_one, &w2), 1);
	feed(t, "x:1|c");
	feed_tags(t, -1);
	statsd_table_flush(t, 1000); /* v goes */
	feed(t, "x:1|c\nt:1|c|#k:10");
	feed_tags(t, 0);
	statsd_table_flush(t, 1000); /* t's k=0 goes */
	feed(t, "x:1|c\nt:1|c|#k:10");
	feed_tags(t, -1);
	statsd_table_flush(t, 1000); /* and is back */
	w2.stop_at = 0;
	assert_int_equal(statsd_table_walk(t, &cur, tag_one, &w2), 0);
	statsd_cursor_close(t, &cur);
	assert_int_equal(w2.x, 1);
	for (int k = 0; k < 11; k++)
		if (w2.met[k] != (k < 10))
			fail_msg("after v went: k=%d met %d times", k, w2.met[k]);
	statsd_table_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_gauges_persist),
		cmocka_unit_test(test_sets),
		cmocka_unit_test(test_timers),
		cmocka_unit_test(test_percentile_definition),
		cmocka_unit_test(test_reservoir),
		cmocka_unit_test(test_max_metrics),
		cmocka_unit_test(test_namespaces),
		cmocka_unit_test(test_summary_names),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_expiry_reuses_memory),
		cmocka_unit_test(test_cursor_spans_flush),
		cmocka_unit_test(test_family_back_under_walk),
		cmocka_unit_test(test_sliced_flush_boundary),
		cmocka_unit_test(test_churn_under_open_walks),
		cmocka_unit_test(test_slices_make_the_page),
		cmocka_unit_test(test_samples_during_sweeps_counted_once),
		cmocka_unit_test(test_page_whole_while_its_place_expires),
		cmocka_unit_test(test_walk_place_expires_and_returns),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
