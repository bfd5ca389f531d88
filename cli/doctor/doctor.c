/* kite doctor: what would make kite slow or fail on this machine, each
 * problem with the exact command that fixes it. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "doctor.h"

static const char usage[] =
	"Usage: kite doctor [--json]\n"
	"Check this machine for what would make kite slow or fail: socket buffer\n"
	"limits, multicast interface and route, ICMP datagram sockets\n"
	"(ping_group_range), memfd sealing, /proc/net/unix, the Unix datagram\n"
	"queue length. Read-only: sends nothing, changes nothing. Each problem\n"
	"comes with the command that fixes it.\n\n"
	"  -j, --json  JSON output\n"
	"  -h, --help  this text\n\n"
	"Exit: 0 all good, 1 problems found, 100 usage.\n";

/* Every fix doctor prints (sysctl -w, ip link, ip route, mount) changes the
 * machine: only root may run it. A fix in parentheses is advice, not a
 * command. Said to a user who is not root, so the command is not tried in
 * vain. */
static int needs_root(const struct finding *f)
{
	return f->fix[0] && f->fix[0] != '(' && geteuid() != 0;
}

static void print_json(const struct finding *f, int n, int problems)
{
	printf("{\"checks\":[");
	for (int i = 0; i < n; i++) {
		printf("%s\n{\"check\":", i ? "," : "");
		json_string(f[i].check, strlen(f[i].check));
		printf(",\"ok\":%s,\"value\":", f[i].ok ? "true" : "false");
		json_string(f[i].value, strlen(f[i].value));
		printf(",\"detail\":");
		json_string(f[i].detail, strlen(f[i].detail));
		printf(",\"fix\":");
		if (f[i].fix[0])
			json_string(f[i].fix, strlen(f[i].fix));
		else
			printf("null");
		printf(",\"fix_as_root\":%s", needs_root(&f[i]) ? "true" : "false");
		putchar('}');
	}
	printf("\n],\"problems\":%d}\n", problems);
}

int cmd_doctor(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
	};
	int json = 0, c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = 1; break;
		case 'h': fputs(usage, stdout); return EXIT_DONE;
		default:
			return usage_error("doctor", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("doctor", "unexpected argument '%s'", argv[optind]);
	struct finding f[16];
	int n = doctor_run_checks(f, 16), problems = 0;
	for (int i = 0; i < n; i++)
		problems += !f[i].ok;
	if (json) {
		print_json(f, n, problems);
	} else {
		for (int i = 0; i < n; i++) {
			printf("%-8s %-26s %s\n", f[i].ok ? "ok" : "PROBLEM", f[i].check,
			       f[i].value);
			if (!f[i].ok && f[i].detail[0])
				printf("%-8s %s\n", "", f[i].detail);
			if (!f[i].ok && f[i].fix[0])
				printf("%-8s fix%s: %s\n", "", needs_root(&f[i]) ? " (as root)" : "",
				       f[i].fix);
		}
		if (problems)
			printf("%d problem%s found\n", problems, problems == 1 ? "" : "s");
		else
			printf("all good\n");
	}
	return problems ? EXIT_NO : EXIT_DONE;
}
