/* kite who TARGET: which processes hold a port, an abstract name or a socket
 * path; with --kill, make them let go (who_kill.c). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "who.h"

static const char usage[] =
	"Usage: kite who TARGET [--kill[=SIGNAL]] [--timeout S] [--json]\n"
	"Show the processes holding TARGET (pid, user, command):\n"
	"  8080, tcp:8080   a TCP port (its listening sockets)\n"
	"  udp:53           a UDP port (its bound sockets)\n"
	"  @name            an abstract Unix socket name\n"
	"  /path, ./path    a Unix socket path\n\n"
	"  -k, --kill[=SIG] signal the holders (TERM by default) through pidfds,\n"
	"                   so a reused PID is never hit; after --timeout send\n"
	"                   KILL; then confirm TARGET is free\n"
	"  -t, --timeout S  seconds before KILL (default 5)\n"
	"  -j, --json       JSON output (without --kill)\n"
	"  -h, --help       this text\n\n"
	"Exit: 0 held (or freed with --kill), 1 nothing holds it or it could not\n"
	"be freed, 100 usage, 111 error.\n";

static int parse_target(const char *s, struct who_target *t)
{
	uint64_t port;
	memset(t, 0, sizeof *t);
	const char *num = s;
	t->proto = SL_TCP;
	if (!strncmp(s, "tcp:", 4)) {
		num = s + 4;
	} else if (!strncmp(s, "udp:", 4)) {
		num = s + 4;
		t->proto = SL_UDP;
	} else if (s[0] == '@' || strchr(s, '/') || !strncmp(s, "unix:", 5)) {
		if (!strncmp(s, "unix:", 5))
			s += 5;
		t->proto = SL_UNIX;
		t->abstract = s[0] == '@';
		if (t->abstract)
			s++;
		if (strlen(s) > 107 || (!*s && !t->abstract))
			return -1;
		snprintf(t->path, sizeof t->path, "%s", s);
		if (!t->abstract && !realpath(s, t->real))
			t->real[0] = 0;
		snprintf(t->label, sizeof t->label, "%s%s", t->abstract ? "@" : "", s);
		return 0;
	}
	if (parse_u64(num, 65535, &port) || port == 0)
		return -1;
	t->port = (uint16_t)port;
	snprintf(t->label, sizeof t->label, "%s port %u",
		 t->proto == SL_TCP ? "tcp" : "udp", t->port);
	return 0;
}

int who_matches(const struct sock_row *r, void *arg)
{
	const struct who_target *t = arg;
	if (r->proto != t->proto)
		return 0;
	if (r->proto == SL_TCP)
		return r->listening && r->port == t->port;
	if (r->proto == SL_UDP) /* connected UDP sockets hold the port too */
		return r->port == t->port;
	/* Accepted connections carry the listener's name: not holders. */
	if (!r->listening || r->abstract != t->abstract)
		return 0;
	return !strcmp(r->path, t->path) || (t->real[0] && !strcmp(r->path, t->real));
}

int who_collect(const struct who_target *t, struct sock_list *l)
{
	return sock_list_load(l, (unsigned)t->proto, who_matches, (void *)t);
}

int cmd_who(int argc, char **argv)
{
	static const struct option opts[] = {
		{"kill", optional_argument, NULL, 'k'},
		{"timeout", required_argument, NULL, 't'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
	};
	int sig = 0, json = 0, c;
	int64_t timeout_ms = 5000;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "kt:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			sig = optarg ? parse_signal(optarg) : 15;
			if (sig < 0)
				return usage_error("who", "unknown signal '%s'", optarg);
			break;
		case 't':
			if (parse_seconds_ms(optarg, &timeout_ms))
				return usage_error("who", "bad --timeout '%s'", optarg);
			break;
		case 'j': json = 1; break;
		case 'h': fputs(usage, stdout); return EXIT_DONE;
		default:
			return usage_error("who", "unknown or incomplete option '%s'",
					   argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return usage_error("who", "one TARGET expected");
	struct who_target t;
	if (parse_target(argv[optind], &t))
		return usage_error("who", "'%s' is not a port, udp:PORT, @name or "
				   "socket path", argv[optind]);
	if (sig && json)
		return usage_error("who", "--json lists holders; it does not go with --kill");
	struct sock_list l = {0};
	int rc = who_collect(&t, &l);
	if (rc < 0) {
		sock_list_free(&l);
		return fail(EXIT_SYSTEM, "who", "reading /proc: %s", strerror(-rc));
	}
	if (json) {
		sock_print_json(&l);
	} else if (l.n == 0) {
		fprintf(stderr, "kite who: nothing holds %s\n", t.label);
	} else {
		sock_print_table(&l, "who");
	}
	if (l.n == 0 || !sig) {
		rc = l.n ? EXIT_DONE : EXIT_NO;
		sock_list_free(&l);
		return rc;
	}
	rc = who_kill(&t, &l, sig, timeout_ms);
	sock_list_free(&l);
	return rc;
}
