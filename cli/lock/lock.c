/* kite lock NAME -- COMMAND: a single-instance lock with no lock file. The
 * lock is the abstract Unix socket @kite-lock/<uid>/NAME, bound and
 * listening: bind() succeeds for exactly one process, and the kernel frees
 * the name the moment the last process holding the socket is gone, however
 * it goes. COMMAND inherits the socket (run.c), so the lock lasts as long as
 * the job, as flock(1)'s does. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "lock.h"

static const char usage[] =
	"Usage: kite lock NAME [--wait | --timeout S] [-E CODE] -- COMMAND [ARG]...\n"
	"       kite lock --status NAME\n"
	"Run COMMAND only if no other holder of NAME is alive. The lock is the\n"
	"abstract Unix socket @kite-lock/UID/NAME: no lock file, and it is\n"
	"released once every process of the job has exited (COMMAND and its\n"
	"children inherit it, as with flock). kite stays as COMMAND's parent,\n"
	"forwards TERM, INT and HUP to it, and exits with its status. Options go\n"
	"before or after NAME, up to \"--\".\n\n"
	"  -w, --wait           wait for the lock as long as it takes\n"
	"  -t, --timeout S      wait at most S seconds (then exit 2, or CODE)\n"
	"  -E, --conflict-exit CODE  exit code when the lock cannot be had: held,\n"
	"                       squatted, or timed out (default 1; 2 on timeout)\n"
	"  -s, --status         print the holder's pid and command, and its job\n"
	"  -h, --help           this text\n\n"
	"Exit: COMMAND's status (128+N if killed by signal N; 126/127 if it\n"
	"cannot be run), 1 (or CODE) held by another, 2 (or CODE) timed out,\n"
	"100 usage, 111 error. --status: 0 held, 1 free.\n";

/* Wait until the holder goes (its end of our connection closes) or up to
 * ms; then the caller retries the name. */
static void wait_holder(const struct lock_name *ln, int64_t ms)
{
	int fd = lock_socket(ln, 0);
	if (fd == -ECONNREFUSED || fd == -ENOENT)
		return; /* just freed: retry now */
	if (ms > 1000)
		ms = 1000; /* retry the name now and then whatever happens */
	if (fd < 0) { /* e.g. its backlog is full: back off */
		struct timespec ts = {0, (ms < 50 ? ms : 50) * 1000000L};
		nanosleep(&ts, NULL);
		return;
	}
	struct pollfd pf = {.fd = fd, .events = POLLIN};
	int64_t start = now_ms();
	poll(&pf, 1, (int)ms);
	close(fd);
	/* A hang-up at once is the holder's backlog turning us away (it was
	 * already full), not the holder leaving: never retry in a tight loop. */
	int64_t took = now_ms() - start, left = ms - took;
	if (took < 5 && left > 0) {
		struct timespec ts = {0, (left < 50 ? left : 50) * 1000000L};
		nanosleep(&ts, NULL);
	}
}

/* Take the lock and run argv; the exit code. */
static int acquire(const struct lock_name *ln, char **argv, int wait,
		   int64_t timeout_ms, int conflict, int timeout_code)
{
	int64_t deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : -1;
	for (;;) {
		int fd = lock_socket(ln, 1);
		if (fd >= 0)
			return lock_run(fd, argv);
		if (fd != -EADDRINUSE)
			return fail(EXIT_SYSTEM, "lock", "binding @%s: %s", ln->abstract,
				    strerror(-fd));
		struct ucred cr;
		int held = lock_holder(ln, &cr);
		if (held == 0)
			continue; /* freed in between: try again */
		/* Another uid bound our name first: waiting would let it hold
		 * us off for ever, so refuse at once, waiting or not. */
		if (held > 0 && (lock_squatter(&cr) || (!wait && timeout_ms < 0))) {
			fputs("kite lock: ", stderr);
			lock_describe(stderr, ln, &cr);
			return conflict;
		}
		if (held < 0 && !wait && timeout_ms < 0) {
			fprintf(stderr, "kite lock: %s is held\n", ln->name);
			return conflict;
		}
		int64_t left = deadline < 0 ? 1000 : deadline - now_ms();
		if (left <= 0)
			return fail(timeout_code, "lock", "timed out waiting for %s",
				    ln->name);
		wait_holder(ln, left);
	}
}

int cmd_lock(int argc, char **argv)
{
	static const struct option opts[] = {
		{"wait", no_argument, NULL, 'w'},
		{"timeout", required_argument, NULL, 't'},
		{"conflict-exit", required_argument, NULL, 'E'},
		{"status", no_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
	};
	int c, wait = 0, show = 0, conflict = EXIT_NO, conflict_set = 0;
	int64_t timeout_ms = -1;
	uint64_t v;
	const char *name = NULL;
	int cmd = -1; /* index of COMMAND in argv */
	opterr = 0;
	optind = 1;
	/* Options may come before and after NAME; COMMAND starts at "--" or
	 * at the first word after NAME that is not an option. "+" stops
	 * getopt at each word that is not an option, so NAME is taken and
	 * parsing resumes behind it. */
	while (cmd < 0) {
		int at = optind;
		c = getopt_long(argc, argv, "+wt:E:sh", opts, NULL);
		if (c == -1) {
			int dashes = optind == at + 1 && !strcmp(argv[at], "--");
			if (optind >= argc)
				break;
			if (!name)
				name = argv[optind++];
			else
				cmd = optind;
			if (dashes && cmd < 0) /* "-- NAME COMMAND" */
				cmd = optind;
			continue;
		}
		switch (c) {
		case 'w': wait = 1; break;
		case 't':
			if (parse_seconds_ms(optarg, &timeout_ms))
				return usage_error("lock", "bad --timeout '%s'", optarg);
			break;
		case 'E':
			if (parse_u64(optarg, 255, &v))
				return usage_error("lock", "bad exit code '%s' (0-255)", optarg);
			conflict = (int)v;
			conflict_set = 1;
			break;
		case 's': show = 1; break;
		case 'h': fputs(usage, stdout); return EXIT_DONE;
		default:
			return usage_error("lock", "unknown or incomplete option '%s'",
					   argv[optind - 1]);
		}
	}
	if (!name)
		return usage_error("lock", "NAME expected");
	struct lock_name ln;
	if (lock_name_init(&ln, name))
		return usage_error("lock", "bad lock name '%s' (1-%zu printable bytes, "
				   "no spaces)", name, lock_name_max());
	if (show) {
		if (cmd >= 0)
			return usage_error("lock", "--status takes only NAME");
		return lock_status(&ln);
	}
	if (wait && timeout_ms >= 0)
		return usage_error("lock", "--wait and --timeout exclude each other");
	if (cmd < 0 || cmd >= argc)
		return usage_error("lock", "COMMAND expected after NAME --");
	/* -E covers every way of not getting the lock, timing out included,
	 * as flock -E does; without it a time-out keeps its own code. */
	return acquire(&ln, argv + cmd, wait, timeout_ms, conflict,
		       conflict_set ? conflict : EXIT_TIMEOUT);
}
