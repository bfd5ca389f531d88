/* kite serve: start, supervise and restart servers without dropping a
 * connection. This file: the command line. The supervisor is serve_loop.c;
 * serve.h lists the other pieces. */
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "sockets/socklist.h" /* user_name */
#include "serve.h"

static const char usage_text[] =
	"Usage: kite serve --name NAME --listen SPEC... [OPTIONS] -- COMMAND [ARG]...\n"
	"       kite serve status NAME [--json] [--user USER] [--timeout SECONDS]\n"
	"       kite serve reload|stop NAME [--user USER] [--timeout SECONDS]\n"
	"Run COMMAND on sockets kite holds, restart it when it crashes, and reload\n"
	"it without refusing a connection.\n"
	"\n"
	"  --name NAME           the service's name (control socket\n"
	"                        @kite-serve/UID/NAME/control)\n"
	"  --listen SPEC         tcp:PORT (127.0.0.1), tcp:ADDR:PORT, tcp:[V6ADDR]:PORT,\n"
	"                        udp:... the same, unix:@NAME, unix:/PATH; repeatable\n"
	"  --inetd               accept each connection, run COMMAND on it (stdin+stdout)\n"
	"  --max-conns N         --inetd: at most N at once, the rest wait (default 64)\n"
	"  --handoff             accept connections, pass them to --workers over SCM_RIGHTS\n"
	"  --workers N           processes per generation (default 1)\n"
	"  --no-notify           COMMAND is up once started (no READY=1 expected)\n"
	"  --ready-timeout SECS  reload: give up on a new generation after this (30)\n"
	"  --grace SECS          between SIGTERM and SIGKILL when stopping (10)\n"
	"  --backoff SECS        first restart delay after a crash, doubled each time (0.1)\n"
	"  --backoff-max SECS    longest restart delay (30)\n"
	"  --max-restarts N      quick crashes in a row before giving up (5)\n"
	"  --restart-window SECS a run at least this long is not a quick crash (10)\n"
	"  --backlog N           listen(2) backlog (1024)\n"
	"  --timeout SECS        status/reload/stop: wait this long for an answer (120)\n"
	"  --user USER           status/reload/stop: the supervisor USER runs (names\n"
	"                        are per user; only USER and root may control it)\n"
	"  -h, --help            this text\n"
	"\n"
	"Without --inetd or --handoff, COMMAND gets the sockets by the systemd\n"
	"socket-activation protocol (fds from 3, LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES).\n"
	"SIGHUP reloads, SIGTERM/SIGINT stop, SIGUSR1/SIGUSR2/SIGWINCH are forwarded.\n"
	"Exit: 0 stopped on request, 1 refused/not running/crash loop, 2 timeout,\n"
	"100 usage, 111 system error.\n";

static int name_ok(const char *n)
{
	size_t len = strlen(n);
	if (len == 0 || len > SERVE_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = n[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
			return 0;
	}
	return 1;
}

/* A user name or uid; 0 or -1. */
static int parse_user(const char *s, uid_t *out)
{
	uint64_t v;
	struct passwd *pw = getpwnam(s);
	if (pw) {
		*out = pw->pw_uid;
		return 0;
	}
	if (parse_u64(s, 0xfffffffeu, &v) < 0)
		return -1;
	*out = (uid_t)v;
	return 0;
}

static int client_verb(int argc, char **argv)
{
	const char *verb = argv[1], *name = NULL;
	int64_t timeout = 120000;
	int json = 0;
	uid_t owner = geteuid();
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--json") && !strcmp(verb, "status")) {
			json = 1;
		} else if (!strcmp(argv[i], "--user") && i + 1 < argc) {
			if (parse_user(argv[++i], &owner) < 0)
				return usage_error("serve", "no such user '%s'", argv[i]);
		} else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
			if (parse_seconds_ms(argv[++i], &timeout) < 0 || timeout == 0)
				return usage_error("serve", "bad --timeout '%s'", argv[i]);
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage_text, stdout);
			return EXIT_DONE;
		} else if (argv[i][0] == '-' || name) {
			return usage_error("serve", "unexpected argument '%s'", argv[i]);
		} else {
			name = argv[i];
		}
	}
	if (!name)
		return usage_error("serve", "%s needs a NAME", verb);
	if (!name_ok(name))
		return usage_error("serve", "bad name '%s' (1-64 of [A-Za-z0-9._-])", name);
	return serve_control_call(name, owner, json ? "status json" : verb, timeout);
}

static int seconds_opt(const char *opt, const char *arg, int64_t *out)
{
	if (parse_seconds_ms(arg, out) < 0)
		return usage_error("serve", "bad %s '%s' (seconds)", opt, arg);
	return 0;
}

static int count_opt(const char *opt, const char *arg, uint64_t lo, uint64_t hi, int *out)
{
	uint64_t v;
	if (parse_u64(arg, hi, &v) < 0 || v < lo)
		return usage_error("serve", "bad %s '%s' (%llu to %llu)", opt, arg,
				   (unsigned long long)lo, (unsigned long long)hi);
	*out = (int)v;
	return 0;
}

/* Before binding: a control name held already is a running supervisor of
 * ours (or root's), or a squatter of another uid; say which. */
static int name_taken(const char *name)
{
	struct ucred cr;
	if (serve_control_holder(name, geteuid(), &cr) <= 0)
		return 0; /* free (or unknown: binding will tell) */
	if (serve_control_squatter(&cr, geteuid()))
		return serve_control_squatted(name, geteuid(), &cr);
	char user[32];
	if (!cr.pid)
		return fail(EXIT_NO, "serve", "a supervisor named '%s' is already running",
			    name);
	return fail(EXIT_NO, "serve", "a supervisor named '%s' is already running "
		    "(pid %d, user %s)", name, (int)cr.pid,
		    user_name(cr.uid, user, sizeof user));
}

int cmd_serve(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "status") || !strcmp(argv[1], "reload") ||
			  !strcmp(argv[1], "stop")))
		return client_verb(argc, argv);
	if (argc >= 2 && argv[1][0] != '-')
		return usage_error("serve", "unknown verb '%s' (status, reload, stop; "
				   "or --name NAME --listen SPEC -- COMMAND to start)",
				   argv[1]);

	static struct serve_config cfg;
	memset(&cfg, 0, sizeof cfg);
	cfg.workers = 1;
	cfg.max_conns = 64;
	cfg.notify = 1;
	cfg.ready_timeout_ms = 30000;
	cfg.grace_ms = 10000;
	cfg.backoff_ms = 100;
	cfg.backoff_max_ms = 30000;
	cfg.max_restarts = 5;
	cfg.restart_window_ms = 10000;
	cfg.backlog = 1024;
	int inetd = 0, handoff = 0, max_conns_set = 0;
	enum { O_NAME = 256, O_LISTEN, O_INETD, O_MAXC, O_HANDOFF, O_WORKERS, O_NONOTIFY,
	       O_READYT, O_GRACE, O_BACKOFF, O_BACKOFFMAX, O_MAXR, O_WINDOW, O_BACKLOG };
	static const struct option opts[] = {
		{"name", required_argument, NULL, O_NAME},
		{"listen", required_argument, NULL, O_LISTEN},
		{"inetd", no_argument, NULL, O_INETD},
		{"max-conns", required_argument, NULL, O_MAXC},
		{"handoff", no_argument, NULL, O_HANDOFF},
		{"workers", required_argument, NULL, O_WORKERS},
		{"no-notify", no_argument, NULL, O_NONOTIFY},
		{"ready-timeout", required_argument, NULL, O_READYT},
		{"grace", required_argument, NULL, O_GRACE},
		{"backoff", required_argument, NULL, O_BACKOFF},
		{"backoff-max", required_argument, NULL, O_BACKOFFMAX},
		{"max-restarts", required_argument, NULL, O_MAXR},
		{"restart-window", required_argument, NULL, O_WINDOW},
		{"backlog", required_argument, NULL, O_BACKLOG},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	optind = 1;
	opterr = 0;
	int c, r = 0;
	while (r == 0 && (c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		char err[200];
		switch (c) {
		case 'h': fputs(usage_text, stdout); return EXIT_DONE;
		case O_NAME: cfg.name = optarg; break;
		case O_LISTEN:
			if (cfg.nlisten == SERVE_MAX_LISTEN)
				return usage_error("serve", "at most %d --listen", SERVE_MAX_LISTEN);
			if (serve_spec_parse(optarg, &cfg.listen[cfg.nlisten], err, sizeof err) < 0)
				return usage_error("serve", "%s", err);
			cfg.nlisten++;
			break;
		case O_INETD: inetd = 1; break;
		case O_HANDOFF: handoff = 1; break;
		case O_NONOTIFY: cfg.notify = 0; break;
		case O_MAXC:
			r = count_opt("--max-conns", optarg, 1, SERVE_MAX_INETD, &cfg.max_conns);
			max_conns_set = 1;
			break;
		case O_WORKERS: r = count_opt("--workers", optarg, 1, SERVE_MAX_WORKERS, &cfg.workers); break;
		case O_MAXR: r = count_opt("--max-restarts", optarg, 0, 1000000, &cfg.max_restarts); break;
		case O_BACKLOG: r = count_opt("--backlog", optarg, 1, 65535, &cfg.backlog); break;
		case O_READYT: r = seconds_opt("--ready-timeout", optarg, &cfg.ready_timeout_ms); break;
		case O_GRACE: r = seconds_opt("--grace", optarg, &cfg.grace_ms); break;
		case O_BACKOFF: r = seconds_opt("--backoff", optarg, &cfg.backoff_ms); break;
		case O_BACKOFFMAX: r = seconds_opt("--backoff-max", optarg, &cfg.backoff_max_ms); break;
		case O_WINDOW: r = seconds_opt("--restart-window", optarg, &cfg.restart_window_ms); break;
		default:
			return usage_error("serve", "unknown or incomplete option '%s'",
					   argv[optind - 1]);
		}
	}
	if (r)
		return r;
	if (!cfg.name)
		return usage_error("serve", "--name NAME is required");
	if (!name_ok(cfg.name))
		return usage_error("serve", "bad name '%s' (1-64 of [A-Za-z0-9._-])", cfg.name);
	if (cfg.nlisten == 0)
		return usage_error("serve", "at least one --listen SPEC is required");
	if (inetd && handoff)
		return usage_error("serve", "--inetd and --handoff exclude each other");
	if (max_conns_set && !inetd)
		return usage_error("serve", "--max-conns applies only to --inetd");
	if (inetd && cfg.workers != 1)
		return usage_error("serve", "--workers does not apply to --inetd (see --max-conns)");
	if (optind >= argc)
		return usage_error("serve", "no COMMAND given (after --)");
	if (cfg.backoff_ms == 0)
		cfg.backoff_ms = 1;
	if (cfg.backoff_max_ms < cfg.backoff_ms)
		cfg.backoff_max_ms = cfg.backoff_ms;
	cfg.mode = inetd ? MODE_INETD : handoff ? MODE_HANDOFF : MODE_ACTIVATE;
	if (cfg.mode != MODE_ACTIVATE)
		for (int i = 0; i < cfg.nlisten; i++)
			if (cfg.listen[i].type != SOCK_STREAM)
				return usage_error("serve", "%s: --inetd and --handoff need "
						   "stream sockets (tcp:, unix:)", cfg.listen[i].text);
	cfg.argv = argv + optind;
	if ((r = name_taken(cfg.name)) != 0)
		return r;
	return serve_run(&cfg);
}
