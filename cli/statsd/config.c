/* Options of kite statsd. The same keys work as --key VALUE on the command
 * line and as `key = value` lines in the --config file ('#' starts a
 * comment, '_' and '-' are the same in keys); the command line wins, also
 * after a SIGHUP reload. */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "cli.h"
#include "kite.h"
#include "statsd.h"

void statsd_config_defaults(struct statsd_config *c)
{
	memset(c, 0, sizeof *c);
	snprintf(c->udp, sizeof c->udp, "127.0.0.1:8125");
	snprintf(c->unix_name, sizeof c->unix_name, "kite/statsd");
	snprintf(c->http, sizeof c->http, "127.0.0.1:9102");
	snprintf(c->graphite, sizeof c->graphite, "off");
	snprintf(c->graphite_prefix, sizeof c->graphite_prefix, "stats");
	c->flush_ms = 10000;
	c->percentiles[0] = 50;
	c->percentiles[1] = 90;
	c->percentiles[2] = 99;
	c->n_percentiles = 3;
	c->max_metrics = 1000000;
	c->max_samples = 100000;
	c->max_set_members = 1000000;
	c->rcvbuf = 8u << 20;
	c->expire_ms = 300000;          /* 5 minutes: 30 flushes at the default */
	c->expire_gauges_ms = 3600000;  /* an hour */
	c->graphite_timeout_ms = 5000;
	snprintf(c->channel, sizeof c->channel, "stats.flush");
}

static int set_str(char *dst, size_t cap, const char *v, char *err, size_t errlen,
		   const char *key)
{
	size_t n = strlen(v);
	if (n >= cap) {
		snprintf(err, errlen, "%s: longer than %zu bytes", key, cap - 1);
		return -1;
	}
	memcpy(dst, v, n + 1);
	return 0;
}

/* Comma-separated numbers ("50, 99.9": blanks around an item are fine)
 * into out[0..max); their count, or -1 for a bad item or too many. */
static int parse_numbers(const char *v, double *out, unsigned max)
{
	unsigned n = 0;
	const char *s = v;
	while (*s) {
		const char *e = strchr(s, ',');
		size_t len = e ? (size_t)(e - s) : strlen(s);
		const char *next = e ? e + 1 : s + len;
		const char *item = s; /* "50, 99.9": blanks around an item are fine */
		while (len && (*item == ' ' || *item == '\t'))
			item++, len--;
		while (len && (item[len - 1] == ' ' || item[len - 1] == '\t'))
			len--;
		if (n == max || statsd_parse_number(item, len, &out[n]) < 0)
			return -1;
		n++;
		s = next;
	}
	return (int)n;
}

static int set_percentiles(struct statsd_config *c, const char *v, char *err, size_t errlen)
{
	double p[STATSD_MAX_PERCENTILES];
	int n = parse_numbers(v, p, STATSD_MAX_PERCENTILES);
	for (int i = 0; n > 0 && i < n; i++)
		if (!(p[i] > 0) || p[i] > 100)
			n = -1;
	if (n < 0) {
		snprintf(err, errlen,
			 "percentiles: want up to %d numbers in (0, 100], comma-separated",
			 STATSD_MAX_PERCENTILES);
		return -1;
	}
	memcpy(c->percentiles, p, (size_t)n * sizeof p[0]);
	c->n_percentiles = (unsigned)n;
	return 0;
}

/* Prometheus's own default buckets (client libraries' DefBuckets). */
static const double default_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
					 0.5,   1,    2.5,   5,    10};

/* --timer-histogram off | on (the default buckets) | ascending upper
 * bounds in seconds. */
static int set_buckets(struct statsd_config *c, const char *v, char *err, size_t errlen)
{
	double b[STATSD_MAX_BUCKETS];
	int n;
	if (!strcmp(v, "off")) {
		n = 0;
	} else if (!strcmp(v, "on")) {
		n = (int)(sizeof default_buckets / sizeof *default_buckets);
		memcpy(b, default_buckets, sizeof default_buckets);
	} else {
		n = parse_numbers(v, b, STATSD_MAX_BUCKETS);
		for (int i = 0; n > 0 && i < n; i++)
			if (!(b[i] > 0) || (i && !(b[i] > b[i - 1])))
				n = -1;
		if (n <= 0) {
			snprintf(err, errlen,
				 "timer-histogram: want on, off, or up to %d ascending "
				 "positive bounds in seconds, comma-separated",
				 STATSD_MAX_BUCKETS);
			return -1;
		}
	}
	memcpy(c->buckets, b, (size_t)n * sizeof b[0]);
	c->n_buckets = (unsigned)n;
	return 0;
}

static int set_u64(uint64_t *dst, const char *v, uint64_t min, uint64_t max, char *err,
		   size_t errlen, const char *key)
{
	uint64_t x;
	if (parse_u64(v, max, &x) < 0 || x < min) {
		snprintf(err, errlen, "%s: want a whole number from %llu to %llu", key,
			 (unsigned long long)min, (unsigned long long)max);
		return -1;
	}
	*dst = x;
	return 0;
}

int statsd_config_set(struct statsd_config *c, const char *key, const char *value,
		      char *err, size_t errlen)
{
	char k[32];
	size_t kl = strlen(key);
	if (kl >= sizeof k) {
		snprintf(err, errlen, "unknown option '%s'", key);
		return -1;
	}
	for (size_t i = 0; i <= kl; i++)
		k[i] = key[i] == '_' ? '-' : key[i];

	if (!strcmp(k, "udp"))
		return set_str(c->udp, sizeof c->udp, value, err, errlen, k);
	if (!strcmp(k, "unix")) {
		c->unix_name_set = true;
		return set_str(c->unix_name, sizeof c->unix_name, value, err, errlen, k);
	}
	if (!strcmp(k, "unix-path"))
		return set_str(c->unix_path, sizeof c->unix_path, value, err, errlen, k);
	if (!strcmp(k, "http"))
		return set_str(c->http, sizeof c->http, value, err, errlen, k);
	if (!strcmp(k, "channel")) {
		if (strcmp(value, "off") && kite_channel_valid(value)) {
			snprintf(err, errlen, "channel: '%s' is not a kite channel name", value);
			return -1;
		}
		return set_str(c->channel, sizeof c->channel, value, err, errlen, k);
	}
	if (!strcmp(k, "graphite"))
		return set_str(c->graphite, sizeof c->graphite, value, err, errlen, k);
	if (!strcmp(k, "graphite-prefix")) {
		for (const char *p = value; *p; p++)
			if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-') {
				snprintf(err, errlen, "graphite-prefix: only [A-Za-z0-9._-]");
				return -1;
			}
		return set_str(c->graphite_prefix, sizeof c->graphite_prefix, value, err,
			       errlen, k);
	}
	if (!strcmp(k, "graphite-legacy-namespace")) {
		if (strcmp(value, "on") && strcmp(value, "off")) {
			snprintf(err, errlen, "%s: want on or off", k);
			return -1;
		}
		c->graphite_legacy = !strcmp(value, "on");
		return 0;
	}
	if (!strcmp(k, "expire") || !strcmp(k, "expire-gauges")) {
		int64_t ms;
		if (parse_seconds_ms(value, &ms) < 0 || ms > 31536000000) {
			snprintf(err, errlen, "%s: want seconds (0: never)", k);
			return -1;
		}
		*(k[6] ? &c->expire_gauges_ms : &c->expire_ms) = ms;
		return 0;
	}
	if (!strcmp(k, "flush-interval") || !strcmp(k, "graphite-timeout")) {
		int64_t ms;
		if (parse_seconds_ms(value, &ms) < 0 || ms < 10 || ms > 86400000) {
			snprintf(err, errlen, "%s: want seconds from 0.01 to 86400", k);
			return -1;
		}
		*(k[0] == 'f' ? &c->flush_ms : &c->graphite_timeout_ms) = ms;
		return 0;
	}
	if (!strcmp(k, "percentiles"))
		return set_percentiles(c, value, err, errlen);
	if (!strcmp(k, "timer-histogram"))
		return set_buckets(c, value, err, errlen);
	if (!strcmp(k, "max-metrics"))
		return set_u64(&c->max_metrics, value, 1, 100000000, err, errlen, k);
	if (!strcmp(k, "max-samples"))
		return set_u64(&c->max_samples, value, 1, 100000000, err, errlen, k);
	if (!strcmp(k, "max-set-members"))
		return set_u64(&c->max_set_members, value, 1, 100000000, err, errlen, k);
	if (!strcmp(k, "rcvbuf"))
		return set_u64(&c->rcvbuf, value, 4096, 1u << 30, err, errlen, k);
	snprintf(err, errlen, "unknown option '%s'", key);
	return -1;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' ||
		     s[n - 1] == '\n'))
		s[--n] = 0;
	return s;
}

int statsd_config_load(struct statsd_config *c, const char *path, char *err,
		       size_t errlen)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	char line[1024];
	unsigned lineno = 0;
	int rc = 0;
	while (fgets(line, sizeof line, f)) {
		lineno++;
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		char *s = trim(line);
		if (!*s)
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			snprintf(err, errlen, "%s:%u: want 'key = value'", path, lineno);
			rc = -1;
			break;
		}
		*eq = 0;
		char why[200];
		if (statsd_config_set(c, trim(s), trim(eq + 1), why, sizeof why) < 0) {
			snprintf(err, errlen, "%s:%u: %s", path, lineno, why);
			rc = -1;
			break;
		}
	}
	fclose(f);
	return rc;
}

int statsd_parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[256];
	const char *port;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':' || (size_t)(close - s - 1) >= sizeof host)
			return -1;
		memcpy(host, s + 1, (size_t)(close - s - 1));
		host[close - s - 1] = 0;
		port = close + 2;
	} else {
		const char *colon = strrchr(s, ':');
		if (!colon || (size_t)(colon - s) >= sizeof host || colon == s)
			return -1;
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = 0;
		port = colon + 1;
	}
	uint64_t p;
	if (parse_u64(port, 65535, &p) < 0)
		return -1;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res;
	if (getaddrinfo(host, port, &hints, &res) != 0)
		return -1;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int statsd_config_build(struct statsd_config *c, const char *path, char **ov, int n_ov,
			char *err, size_t errlen)
{
	statsd_config_defaults(c);
	if (path && statsd_config_load(c, path, err, errlen) < 0)
		return -1;
	for (int i = 0; i + 1 < n_ov; i += 2)
		if (statsd_config_set(c, ov[i], ov[i + 1], err, errlen) < 0)
			return -1;
	return 0;
}

bool statsd_config_keep_listeners(struct statsd_config *next,
				  const struct statsd_config *running)
{
	bool changed = strcmp(next->udp, running->udp) ||
		       strcmp(next->unix_name, running->unix_name) ||
		       strcmp(next->unix_path, running->unix_path) ||
		       strcmp(next->http, running->http) || next->rcvbuf != running->rcvbuf ||
		       next->n_buckets != running->n_buckets ||
		       memcmp(next->buckets, running->buckets,
			      running->n_buckets * sizeof running->buckets[0]);
	memcpy(next->udp, running->udp, sizeof next->udp);
	memcpy(next->unix_name, running->unix_name, sizeof next->unix_name);
	next->unix_name_set = running->unix_name_set;
	memcpy(next->unix_path, running->unix_path, sizeof next->unix_path);
	memcpy(next->http, running->http, sizeof next->http);
	next->rcvbuf = running->rcvbuf;
	memcpy(next->buckets, running->buckets, sizeof next->buckets);
	next->n_buckets = running->n_buckets;
	return changed;
}
