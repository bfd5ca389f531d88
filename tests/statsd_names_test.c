/* kite statsd: names sanitised as Prometheus requires, label escaping, the
 * exposition and Graphite texts, and the `key = value` configuration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "statsd/statsd.h"

static void metric(const char *in, const char *want)
{
	char out[600];
	size_t n = statsd_prom_metric_name(in, strlen(in), out);
	out[n] = 0;
	if (strcmp(out, want))
		fail_msg("metric name '%s' -> '%s', want '%s'", in, out, want);
}

static void label(const char *in, const char *want)
{
	char out[600];
	size_t n = statsd_prom_label_name(in, strlen(in), out);
	out[n] = 0;
	if (strcmp(out, want))
		fail_msg("label name '%s' -> '%s', want '%s'", in, out, want);
}

static void test_sanitise(void **state)
{
	(void)state;
	metric("api.requests", "api_requests");
	metric("ok_name:sub", "ok_name:sub");
	metric("9lives", "_9lives");
	metric("a-b c/d\xc3\xa9", "a_b_c_d__");
	metric("", "_");
	label("env", "env");
	label("a:b", "a_b"); /* ':' is allowed in metric names only */
	label("__name__", "tag__name__");
	label("1st", "_1st");
	label("x.y-z", "x_y_z");
}

static void feed(struct statsd_table *t, const char *s)
{
	statsd_table_add_packet(t, s, strlen(s));
}

static void test_exposition(void **state)
{
	(void)state;
	struct statsd_table *t = statsd_table_new(1);
	assert_non_null(t);
	feed(t, "web.hits:3|c|#route:/a\"b\\c,code:200\n"
		"web.hits:1|c\n"
		"queue.depth:7|g\n"
		"rt:250|ms|#quantile:x\n"
		"rt2:1|ms|#tag_quantile:y,quantile:x\n"
		"city:1|g|#name:caf\xc3\xa9\n"
		"city:2|g|#name:caf\xc3\xa8\n"
		"users:a|s\nusers:b|s\n");
	statsd_table_flush(t, 10000);
	struct statsd_buf b = {0};
	statsd_prometheus_render(t, &b);
	assert_false(b.oom);
	const char *want[] = {
		"# HELP web_hits_total statsd counter web.hits: total since start\n"
		"# TYPE web_hits_total counter\n"
		"web_hits_total{code=\"200\",route=\"/a\\\"b\\\\c\"} 3\n"
		"web_hits_total 1\n",
		"# TYPE queue_depth gauge\nqueue_depth 7\n",
		"# TYPE rt summary\n"
		"rt{tag_quantile=\"x\",quantile=\"0.5\"} 0.25\n"
		"rt{tag_quantile=\"x\",quantile=\"0.9\"} 0.25\n"
		"rt{tag_quantile=\"x\",quantile=\"0.99\"} 0.25\n"
		"rt_sum{tag_quantile=\"x\"} 0.25\n"
		"rt_count{tag_quantile=\"x\"} 1\n",
		/* two tags never get one label name */
		"rt2{tag_quantile=\"x\",tag_tag_quantile=\"y\",quantile=\"0.5\"} 0.001\n",
		/* UTF-8 label values stay as they are: two series */
		"city{name=\"caf\xc3\xa9\"} 1\ncity{name=\"caf\xc3\xa8\"} 2\n",
		"# TYPE users gauge\nusers 2\n",
		"kite_statsd_lines_received_total 9\n",
		"kite_statsd_bad_lines_total{reason=\"syntax\"} 0\n",
		NULL,
	};
	for (int i = 0; want[i]; i++)
		if (!strstr(b.p, want[i]))
			fail_msg("missing:\n%s\nin:\n%s", want[i], b.p);
	statsd_buf_free(&b);

	struct statsd_graphite_opts go = {.prefix = "stats"};
	statsd_graphite_render(t, &go, 1700000000, &b);
	const char *gwant[] = {
		"stats.counters.web.hits.count;code=200;route=/a\"b\\c 3 1700000000\n",
		"stats.counters.web.hits.count 1 1700000000\n",
		"stats.counters.web.hits.rate 0.1 1700000000\n",
		"stats.gauges.queue.depth 7 1700000000\n",
		"stats.timers.rt.count;quantile=x 1 1700000000\n",
		"stats.timers.rt.count_ps;quantile=x 0.1 1700000000\n",
		"stats.timers.rt.upper_99;quantile=x 250 1700000000\n",
		"stats.timers.rt.mean_99;quantile=x 250 1700000000\n",
		"stats.timers.rt.sum_90;quantile=x 250 1700000000\n",
		"stats.timers.rt.count_50;quantile=x 1 1700000000\n",
		"stats.timers.rt.sum_squares_50;quantile=x 62500 1700000000\n",
		"stats.timers.rt.mean;quantile=x 250 1700000000\n",
		"stats.timers.rt.median;quantile=x 250 1700000000\n",
		"stats.timers.rt.std;quantile=x 0 1700000000\n",
		"stats.timers.rt.sum_squares;quantile=x 62500 1700000000\n",
		"stats.gauges.city;name=caf\xc3\xa9 1 1700000000\n",
		"stats.sets.users.count 2 1700000000\n",
		"stats.kite_statsd.lines_received 9 1700000000\n",
		NULL,
	};
	for (int i = 0; gwant[i]; i++)
		if (!strstr(b.p, gwant[i]))
			fail_msg("missing:\n%s\nin:\n%s", gwant[i], b.p);
	if (strstr(b.p, ".p99"))
		fail_msg("a kite-only pNN leaf in:\n%s", b.p);
	statsd_buf_free(&b);

	/* statsd's legacy namespace: counters as stats_counts.NAME (count)
	 * and PREFIX.NAME (per second); the rest as before. */
	go.legacy = true;
	statsd_graphite_render(t, &go, 1700000000, &b);
	const char *lwant[] = {
		"\nstats_counts.web.hits 1 1700000000\n",
		"\nstats.web.hits 0.1 1700000000\n",
		"\nstats.gauges.queue.depth 7 1700000000\n",
		"\nstats.timers.rt.upper_99;quantile=x 250 1700000000\n",
		NULL,
	};
	for (int i = 0; lwant[i]; i++)
		if (!strstr(b.p, lwant[i]))
			fail_msg("missing:\n%s\nin:\n%s", lwant[i], b.p);
	if (strstr(b.p, "counters."))
		fail_msg("a non-legacy counter path in:\n%s", b.p);
	statsd_buf_free(&b);
	statsd_table_free(t);
}

static void test_numbers_out(void **state)
{
	(void)state;
	struct statsd_buf b = {0};
	double v[] = {0, 1, -3, 0.1, 1.0 / 3, 1e300, 123456789012345678.0, 0.0 / 0.0,
		      1.0 / 0.0};
	const char *want = "0 1 -3 0.1 0.33333333333333331 1e+300 1.2345678901234568e+17 NaN +Inf ";
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		statsd_buf_double(&b, v[i]);
		statsd_buf_put(&b, " ", 1);
	}
	assert_string_equal(b.p, want);
	statsd_buf_free(&b);
}

static void test_config(void **state)
{
	(void)state;
	struct statsd_config c;
	char err[256];
	statsd_config_defaults(&c);
	assert_int_equal(c.flush_ms, 10000);
	assert_string_equal(c.udp, "127.0.0.1:8125");
	char path[] = "/tmp/kite-statsd-config-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char text[] = "# a comment\n\n"
			    "flush_interval = 2.5   # seconds\n"
			    "  percentiles=50,99.9\n"
			    "graphite = 127.0.0.1:2003\n"
			    "max-metrics = 10\n";
	assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
	close(fd);
	assert_int_equal(statsd_config_load(&c, path, err, sizeof err), 0);
	assert_int_equal(c.flush_ms, 2500);
	assert_int_equal(c.n_percentiles, 2);
	assert_true(c.percentiles[1] == 99.9);
	assert_string_equal(c.graphite, "127.0.0.1:2003");
	assert_int_equal(c.max_metrics, 10);

	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("flush_interval = 1\nnonsense\n", f);
	fclose(f);
	assert_int_equal(statsd_config_load(&c, path, err, sizeof err), -1);
	assert_non_null(strstr(err, ":2: want 'key = value'"));
	unlink(path);

	/* blanks around list items, as people write them */
	assert_int_equal(statsd_config_set(&c, "percentiles", " 50, 99.9 ,75 ", err, sizeof err), 0);
	assert_int_equal(c.n_percentiles, 3);
	assert_true(c.percentiles[0] == 50 && c.percentiles[1] == 99.9 && c.percentiles[2] == 75);
	assert_int_equal(statsd_config_set(&c, "percentiles", "50,,90", err, sizeof err), -1);
	assert_int_equal(statsd_config_set(&c, "percentiles", "50, ", err, sizeof err), -1);
	assert_int_equal(statsd_config_set(&c, "graphite-legacy-namespace", "on", err, sizeof err), 0);
	assert_true(c.graphite_legacy);
	assert_int_equal(statsd_config_set(&c, "graphite-legacy-namespace", "yes", err, sizeof err), -1);
	assert_int_equal(statsd_config_set(&c, "percentiles", "0", err, sizeof err), -1);
	assert_int_equal(statsd_config_set(&c, "percentiles", "101", err, sizeof err), -1);
	assert_int_equal(statsd_config_set(&c, "flush-interval", "0", err, sizeof err), -1);
	assert_int_equal(statsd_config_set(&c, "bogus", "1", err, sizeof err), -1);
	assert_int_equal(statsd_config_set(&c, "graphite-prefix", "a b", err, sizeof err), -1);

	struct sockaddr_storage ss;
	socklen_t len;
	assert_int_equal(statsd_parse_hostport("127.0.0.1:8125", &ss, &len), 0);
	assert_int_equal(statsd_parse_hostport("[::1]:8125", &ss, &len), 0);
	assert_int_equal(statsd_parse_hostport("127.0.0.1", &ss, &len), -1);
	assert_int_equal(statsd_parse_hostport("127.0.0.1:99999", &ss, &len), -1);
}

/* --timer-histogram: exact cumulative bucket counts for a known corpus
 * (sample rates weigh as in _count), monotonic across flushes, le="+Inf"
 * equal to _count, a tag named le renamed; statsd histograms stay
 * summaries. */
static void test_timer_histogram(void **state)
{
	(void)state;
	struct statsd_table *t = statsd_table_new(2);
	assert_non_null(t);
	struct statsd_config c;
	char err[256];
	statsd_config_defaults(&c);
	assert_int_equal(statsd_config_set(&c, "timer-histogram", "0.01, 0.1,1", err, sizeof err), 0);
	statsd_table_configure(t, &c);
	/* 10 ms is at the 0.01 s bound: "le" is at or below. */
	feed(t, "lat:5|ms\nlat:10|ms\nlat:1|ms|@0.5\nlat:50|ms\nlat:100|ms\nlat:2000|ms\n"
		"tl:20|ms|#le:x\nhh:3|h\n");
	statsd_table_flush(t, 1000);
	struct statsd_buf b = {0};
	statsd_prometheus_render(t, &b);
	const char *want[] = {
		"# TYPE lat histogram\n"
		"lat_bucket{le=\"0.01\"} 4\n"
		"lat_bucket{le=\"0.1\"} 6\n"
		"lat_bucket{le=\"1\"} 6\n"
		"lat_bucket{le=\"+Inf\"} 7\n"
		"lat_sum 2.166\n"
		"lat_count 7\n",
		"tl_bucket{tag_le=\"x\",le=\"0.01\"} 0\n"
		"tl_bucket{tag_le=\"x\",le=\"0.1\"} 1\n",
		"# TYPE hh summary\n",
	};
	for (size_t i = 0; i < sizeof want / sizeof *want; i++)
		if (!strstr(b.p, want[i]))
			fail_msg("missing:\n%s\nin:\n%.*s", want[i], (int)b.len, b.p);
	statsd_buf_free(&b);
	/* The next intervals add on; an idle one changes nothing. */
	feed(t, "lat:0.5|ms\nlat:99999|ms\n");
	statsd_table_flush(t, 1000);
	statsd_table_flush(t, 1000);
	statsd_prometheus_render(t, &b);
	if (!strstr(b.p, "lat_bucket{le=\"0.01\"} 5\nlat_bucket{le=\"0.1\"} 7\n"
			 "lat_bucket{le=\"1\"} 7\nlat_bucket{le=\"+Inf\"} 9\n"))
		fail_msg("after two more samples:\n%.*s", (int)b.len, b.p);
	statsd_buf_free(&b);
	statsd_table_free(t);

	statsd_config_defaults(&c);
	assert_int_equal(c.n_buckets, 0); /* summaries by default */
	assert_int_equal(statsd_config_set(&c, "timer-histogram", "on", err, sizeof err), 0);
	assert_int_equal(c.n_buckets, 11);
	assert_true(c.buckets[0] == 0.005 && c.buckets[10] == 10);
	assert_int_equal(statsd_config_set(&c, "timer-histogram", "off", err, sizeof err), 0);
	assert_int_equal(c.n_buckets, 0);
	const char *bad[] = {"0.1,0.05", "0.1,0.1", "0", "-1", "", "1,,2", "x", "yes",
			     "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,"
			     "24,25,26,27,28,29,30,31,32,33"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		if (statsd_config_set(&c, "timer-histogram", bad[i], err, sizeof err) != -1)
			fail_msg("timer-histogram '%s' accepted", bad[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sanitise),
		cmocka_unit_test(test_exposition),
		cmocka_unit_test(test_numbers_out),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_timer_histogram),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
