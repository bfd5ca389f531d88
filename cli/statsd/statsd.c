/* kite statsd: a statsd-compatible collector with Prometheus and Graphite
 * output. This file is the command line; statsd.h maps the others. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "loop.h"

static const char usage[] =
	"Usage: kite statsd [OPTIONS]\n"
	"Collect statsd / DogStatsD metrics over UDP and Unix datagrams; serve them\n"
	"to Prometheus at /metrics and push them to Graphite. Runs in the\n"
	"foreground, logs on stderr; SIGTERM flushes and exits, SIGHUP reloads --config.\n"
	"\n"
	"Options (also `key = value` lines in the --config file, without the --):\n"
	"  --config FILE          read options from FILE (again on SIGHUP)\n"
	"  --udp HOST:PORT|off    UDP address (default 127.0.0.1:8125; port 0 picks one)\n"
	"  --unix NAME|off        abstract Unix datagram socket @NAME (default kite/statsd)\n"
	"  --unix-path PATH       also a Unix datagram socket at PATH\n"
	"  --http HOST:PORT|off   Prometheus endpoint GET /metrics (default 127.0.0.1:9102)\n"
	"  --graphite HOST:PORT|off  push Graphite plaintext after each flush (default off)\n"
	"  --graphite-prefix P    Graphite path prefix (default stats)\n"
	"  --graphite-legacy-namespace on|off  Etsy statsd's legacy counter paths\n"
	"                         stats_counts.NAME and PREFIX.NAME (default off)\n"
	"  --graphite-timeout S   connect and final-push time limit (default 5)\n"
	"  --channel NAME|off     publish each flush's Graphite lines on this kite\n"
	"                         channel (default stats.flush)\n"
	"  --flush-interval S     seconds between flushes (default 10)\n"
	"  --percentiles LIST     timer/histogram percentiles, nearest-rank (default 50,90,99)\n"
	"  --timer-histogram on|off|BOUNDS  timers as Prometheus histograms, buckets\n"
	"                         up to BOUNDS seconds (on: 0.005,...,10; default off)\n"
	"  --max-metrics N        distinct series held (default 1000000)\n"
	"  --expire S             drop counters, timers, sets idle S seconds (default 300)\n"
	"  --expire-gauges S      drop gauges idle S seconds (default 3600); 0: never\n"
	"  --max-samples N        timer samples kept per series and interval (default 100000)\n"
	"  --max-set-members N    members per set and interval (default 1000000)\n"
	"  --rcvbuf BYTES         datagram socket receive buffer (default 8388608)\n"
	"  -h, --help             show this help\n"
	"\n"
	"Every refused line, sample, member or metric is counted in kite_statsd_*.\n"
	"See kite-statsd(1).\n";

static void free_all(char **v, int n, char *config_path)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
	free(config_path);
}

int cmd_statsd(int argc, char **argv)
{
	char *config_path = NULL;
	/* key, value pairs from the command line; re-applied after a reload */
	char **ov = calloc((size_t)argc * 2 + 2, sizeof *ov);
	int n_ov = 0, rc;
	if (!ov)
		return fail(EXIT_SYSTEM, "statsd", "out of memory");
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(usage, stdout);
			free_all(ov, n_ov, config_path);
			return EXIT_DONE;
		}
		if (strncmp(a, "--", 2) || !a[2]) {
			free_all(ov, n_ov, config_path);
			return usage_error("statsd", "unexpected argument '%s'", a);
		}
		const char *eq = strchr(a, '=');
		char *key = eq ? strndup(a + 2, (size_t)(eq - a - 2)) : strdup(a + 2);
		const char *val = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
		if (!val) {
			free(key);
			free_all(ov, n_ov, config_path);
			return usage_error("statsd", "option '%s' needs a value", a);
		}
		char *v = strdup(val);
		if (!key || !v) {
			free(key);
			free(v);
			free_all(ov, n_ov, config_path);
			return fail(EXIT_SYSTEM, "statsd", "out of memory");
		}
		if (!strcmp(key, "config")) {
			free(key);
			free(config_path);
			config_path = v;
			continue;
		}
		ov[n_ov++] = key;
		ov[n_ov++] = v;
	}
	struct statsd_config cfg;
	char err[512];
	statsd_config_defaults(&cfg);
	rc = -1;
	if (config_path && statsd_config_load(&cfg, config_path, err, sizeof err) < 0)
		rc = fail(EXIT_USAGE, "statsd", "%s", err);
	for (int i = 0; rc < 0 && i < n_ov; i += 2)
		if (statsd_config_set(&cfg, ov[i], ov[i + 1], err, sizeof err) < 0)
			rc = usage_error("statsd", "%s", err);
	/* The daemon keeps ov and config_path: reloads read them again. */
	if (rc < 0)
		rc = statsd_run(&cfg, config_path, ov, n_ov);
	free_all(ov, n_ov, config_path);
	return rc;
}
