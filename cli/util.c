/* Helpers every subcommand shares: errors, numbers, time, JSON. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cli.h"
#include "lan_key.h"
#include "lan_spec.h"

static void vreport(const char *cmd, const char *fmt, va_list ap)
{
	fprintf(stderr, "kite %s: ", cmd);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(cmd, fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try 'kite %s --help'.\n", cmd);
	return EXIT_USAGE;
}

int fail(int code, const char *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(cmd, fmt, ap);
	va_end(ap);
	return code;
}

int next_option(const char *cmd, int argc, char **argv, const char *shortopts,
		const struct option *longopts)
{
	/* '-': operands come back in order as option 1, so no environment can
	 * turn permutation off; ':': a missing value is ':', not '?'. */
	char spec[64];
	if (snprintf(spec, sizeof spec, "-:%s", shortopts) >= (int)sizeof spec)
		return usage_error(cmd, "internal error: option string too long"), '?';
	opterr = 0;
	int c = getopt_long(argc, argv, spec, longopts, NULL);
	if (c != '?' && c != ':')
		return c;
	/* The token getopt stopped at: the last one it consumed. */
	const char *tok = optind > 0 && optind <= argc ? argv[optind - 1] : "";
	int is_long = !strncmp(tok, "--", 2);
	if (c == ':') {
		if (is_long)
			usage_error(cmd, "option '%s' needs a value", tok);
		else
			usage_error(cmd, "option '-%c' needs a value", optopt);
	} else if (is_long && optopt) {
		usage_error(cmd, "option '%.*s' takes no value", (int)strcspn(tok, "="), tok);
	} else if (is_long) {
		usage_error(cmd, "unknown option '%s' (an operand that starts with "
			    "'-' goes after '--')", tok);
	} else {
		usage_error(cmd, "unknown option '-%c' (an operand that starts with "
			    "'-' goes after '--')", optopt);
	}
	return '?';
}

int open_bus(const char *cmd, kite **k, const kite_options *ko)
{
	int rc = kite_open(k, ko);
	if (!rc)
		return EXIT_DONE;
	/* The CLI sets no option but the bus and the LAN: -EINVAL is one of
	 * those, and ki_lan_spec_parse says what is wrong with the LAN's. */
	const char *lan = ko && ko->lan && *ko->lan ? ko->lan : getenv("KITE_LAN");
	char why[200];
	struct lan_spec spec;
	if (rc == -EINVAL && lan && *lan && ki_lan_spec_parse(lan, &spec, why, sizeof why))
		return usage_error(cmd, "bad --lan '%s'%s: %s", lan,
				   ko && ko->lan && *ko->lan ? "" : " (from $KITE_LAN)", why);
	/* A key file refused says why itself (its mode, its contents). */
	struct lan_keys keys;
	if (rc < 0 && lan && *lan && !ki_lan_spec_parse(lan, &spec, why, sizeof why) &&
	    spec.key_path[0] && ki_lan_keys_load(spec.key_path, &keys, why, sizeof why))
		return fail(rc == -EINVAL ? EXIT_USAGE : EXIT_SYSTEM, cmd,
			    "cannot join the LAN: %s", why);
	explicit_bzero(&keys, sizeof keys);
	if (rc < 0 && rc != -EINVAL && lan && *lan)
		return fail(EXIT_SYSTEM, cmd, "cannot join the LAN on '%s': %s", lan,
			    kite_strerror(rc));
	if (rc == -EINVAL) {
		const char *env = getenv("KITE_BUS");
		int from_env = !(ko && ko->bus && *ko->bus);
		return usage_error(cmd, "bad bus name '%s'%s: 1 to 64 letters, digits, "
				   "'_', '.' or '-'", from_env ? (env ? env : "") : ko->bus,
				   from_env ? " (from $KITE_BUS)" : "");
	}
	return fail(EXIT_SYSTEM, cmd, "cannot open: %s", kite_strerror(rc));
}

int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

int parse_seconds_ms(const char *s, int64_t *ms_out)
{
	if (!s || !*s)
		return -1;
	errno = 0;
	char *end;
	double v = strtod(s, &end);
	if (errno || *end || !isfinite(v) || v < 0 || v > 1e9)
		return -1;
	*ms_out = (int64_t)(v * 1000.0 + 0.5);
	return 0;
}

int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const struct {
	const char *name;
	int sig;
} signals[] = {
	{"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
	{"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"PIPE", SIGPIPE},
	{"ALRM", SIGALRM}, {"TERM", SIGTERM}, {"CONT", SIGCONT},
	{"STOP", SIGSTOP}, {"TSTP", SIGTSTP}, {"WINCH", SIGWINCH},
};

int parse_signal(const char *s)
{
	uint64_t n;
	if (!parse_u64(s, 64, &n))
		return n >= 1 ? (int)n : -1;
	if (!strncasecmp(s, "SIG", 3))
		s += 3;
	for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
		if (!strcasecmp(s, signals[i].name))
			return signals[i].sig;
	return -1;
}

const char *signal_name(int sig, char *buf, size_t size)
{
	for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
		if (signals[i].sig == sig)
			return signals[i].name;
	snprintf(buf, size, "SIG%d", sig);
	return buf;
}

int grow_array(void *arrp, size_t *cap, size_t n, size_t size, size_t first)
{
	if (n < *cap)
		return 0;
	size_t want = *cap ? *cap * 2 : first;
	void *p = realloc(*(void **)arrp, want * size);
	if (!p)
		return -ENOMEM;
	*(void **)arrp = p;
	*cap = want;
	return 0;
}
