/* kite ls: every handle on the bus, like `ss -p` for sockets. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "view.h"

static const char usage[] =
	"Usage: kite ls [--bus NAME] [--json] [--timeout SECS] [PATTERN]\n"
	"List every handle on the bus: pid, uid, whether it answered, the\n"
	"channels it publishes, the patterns it subscribes, and its command.\n"
	"With PATTERN, only channels matching it and patterns overlapping it\n"
	"(handles left with neither are not listed).\n\n"
	"  -b, --bus NAME       the bus (default: $KITE_BUS, else 'default')\n"
	"  -j, --json           one JSON object: every handle with its rings,\n"
	"                       subscriptions, positions, lags, losses, counters\n"
	"  -t, --timeout SECS   wait at most SECS for each handle (default 1);\n"
	"                       all are asked at once, so this is the whole wait\n"
	"  -h, --help           this help\n\n"
	"A handle of another user shows only the channels its policy lets us\n"
	"on (same uid and root see everything). STATE is answered, silent (no\n"
	"answer in time: stopped or overloaded), cut (its answer broke off) or\n"
	"unreachable (its backlog is full). Exit: 0 every handle answered,\n"
	"1 some did not, 100 usage, 111 system error.\n";

static void line(const struct obs_handle *h)
{
	printf("%7ld %6u %016" PRIx64 " %-11s ", (long)h->pid, (unsigned)h->uid,
	       h->id, view_state_name(h->state));
	if (!h->npubs)
		fputc('-', stdout);
	for (size_t i = 0; i < h->npubs; i++)
		printf("%s%s", i ? "," : "", h->pubs[i].channel);
	fputc(' ', stdout);
	if (!h->npatterns)
		fputc('-', stdout);
	for (size_t i = 0; i < h->npatterns; i++)
		printf("%s%s", i ? "," : "", h->patterns[i]);
	fputc(' ', stdout);
	view_command(stdout, h->command);
	fputc('\n', stdout);
}

int cmd_ls(int argc, char **argv)
{
	static const struct option opts[] = {
		{"bus", required_argument, 0, 'b'}, {"json", no_argument, 0, 'j'},
		{"timeout", required_argument, 0, 't'}, {"help", no_argument, 0, 'h'},
		{0, 0, 0, 0}};
	const char *bus = NULL, *pattern = NULL;
	int json = 0;
	int64_t timeout_ms = 1000;
	int c;
	while ((c = next_option("ls", argc, argv, "b:jt:h", opts)) != -1) {
		switch (c) {
		case 'b': bus = optarg; break;
		case 'j': json = 1; break;
		case 't':
			if (parse_seconds_ms(optarg, &timeout_ms) || timeout_ms < 1 || timeout_ms > 3600000)
				return usage_error("ls", "bad --timeout '%s'", optarg);
			break;
		case 'h': fputs(usage, stdout); return EXIT_DONE;
		case 1:
			if (pattern)
				return usage_error("ls", "one PATTERN at most");
			pattern = optarg;
			break;
		default: return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		if (pattern || optind + 1 < argc)
			return usage_error("ls", "one PATTERN at most");
		pattern = argv[optind];
	}
	if (pattern && kite_pattern_valid(pattern))
		return usage_error("ls", "bad pattern '%s'", pattern);
	struct obs_bus b;
	int rc = view_snapshot("ls", bus, pattern, (int)timeout_ms, &b);
	if (rc)
		return rc;
	int all = 1;
	for (size_t i = 0; i < b.n; i++)
		all &= b.h[i].state == OBS_ANSWERED;
	if (json) {
		view_json_bus(view_bus_name(bus), &b);
	} else {
		printf("%7s %6s %-16s %-11s %s %s %s\n", "PID", "UID", "HANDLE", "STATE",
		       "PUBLISHES", "SUBSCRIBES", "COMMAND");
		for (size_t i = 0; i < b.n; i++)
			line(&b.h[i]);
	}
	ki_observe_free(&b);
	fflush(stdout);
	return all ? EXIT_DONE : EXIT_NO;
}
