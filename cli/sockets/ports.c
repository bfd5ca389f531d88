/* kite ports: every listening TCP, UDP and Unix socket with its processes. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "cli.h"
#include "socklist.h"

static const char usage[] =
	"Usage: kite ports [--tcp] [--udp] [--unix] [-4|-6] [--json] [PORT]\n"
	"List every listening socket (TCP listeners, bound UDP sockets, Unix\n"
	"listeners and named datagram sockets, abstract names included) with\n"
	"the processes holding it.\n\n"
	"  -t, --tcp     TCP sockets          -4        IPv4 only\n"
	"  -u, --udp     UDP sockets          -6        IPv6 only\n"
	"  -x, --unix    Unix sockets         -j, --json  JSON output\n"
	"  PORT          only TCP/UDP sockets on this local port\n"
	"  -h, --help    this text\n\n"
	"Processes whose fds cannot be read (not root) show as PID '?'.\n"
	"Exit: 0 something listed, 1 nothing matched, 100 usage, 111 error.\n";

struct ports_filter {
	int family; /* 0 any */
	long port;  /* -1 any */
};

static int keep(const struct sock_row *r, void *arg)
{
	const struct ports_filter *f = arg;
	if (!r->listening)
		return 0;
	if (r->proto == SL_UNIX)
		return f->port < 0 && !f->family;
	if (f->family && r->family != f->family)
		return 0;
	return f->port < 0 || r->port == f->port;
}

int cmd_ports(int argc, char **argv)
{
	static const struct option opts[] = {
		{"tcp", no_argument, NULL, 't'}, {"udp", no_argument, NULL, 'u'},
		{"unix", no_argument, NULL, 'x'}, {"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
	};
	unsigned protos = 0;
	int json = 0, c;
	struct ports_filter f = {0, -1};
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "tuxj46h", opts, NULL)) != -1) {
		switch (c) {
		case 't': protos |= SL_TCP; break;
		case 'u': protos |= SL_UDP; break;
		case 'x': protos |= SL_UNIX; break;
		case 'j': json = 1; break;
		case '4': f.family = AF_INET; break;
		case '6': f.family = AF_INET6; break;
		case 'h': fputs(usage, stdout); return EXIT_DONE;
		default:
			return usage_error("ports", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc) {
		uint64_t port;
		if (optind + 1 < argc)
			return usage_error("ports", "one PORT at most");
		if (parse_u64(argv[optind], 65535, &port))
			return usage_error("ports", "'%s' is not a port (0-65535)", argv[optind]);
		f.port = (long)port;
	}
	if (!protos)
		protos = (f.port >= 0 || f.family) ? SL_TCP | SL_UDP : SL_ALL;
	struct sock_list l = {0};
	int rc = sock_list_load(&l, protos, keep, &f);
	if (rc < 0) {
		sock_list_free(&l);
		return fail(EXIT_SYSTEM, "ports", "reading /proc: %s", strerror(-rc));
	}
	if (json)
		sock_print_json(&l);
	else
		sock_print_table(&l, "ports");
	int found = l.n > 0;
	sock_list_free(&l);
	return found ? EXIT_DONE : EXIT_NO;
}
