/* kite lock NAME -- COMMAND: a single-instance lock with no lock file. The
 * lock is the abstract Unix socket @kite-lock/NAME, bound and listening:
 * bind() succeeds for exactly one process, and the kernel frees the name the
 * moment the holder dies, however it dies. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "lock.h"

#define LOCK_PREFIX "kite-lock/"

static const char usage[] =
	"Usage: kite lock NAME [--wait | --timeout S] [-E CODE] -- COMMAND [ARG]...\n"
	"       kite lock --status NAME\n"
	"Run COMMAND only if no other holder of NAME is alive. The lock is the\n"
	"abstract Unix socket @kite-lock/NAME: no lock file, and a holder that\n"
	"dies releases it at once. kite stays as COMMAND's parent, forwards\n"
	"TERM, INT and HUP to it, and exits with its status.\n\n"
	"  -w, --wait           wait for the lock as long as it takes\n"
	"  -t, --timeout S      wait at most S seconds (then exit 2)\n"
	"  -E, --conflict-exit CODE  exit code when NAME is held (default 1)\n"
	"  -s, --status         print the holder's pid and command\n"
	"  -h, --help           this text\n\n"
	"Exit: COMMAND's status (128+N if killed by signal N; 126/127 if it\n"
	"cannot be run), 1 (or CODE) held by another, 2 timed out, 100 usage,\n"
	"111 error. --status: 0 held, 1 free.\n";

static socklen_t lock_addr(const char *name, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	/* sun_path[0] = 0: the abstract namespace; no trailing NUL. */
	size_t n = strlen(LOCK_PREFIX) + strlen(name);
	memcpy(sa->sun_path + 1, LOCK_PREFIX, strlen(LOCK_PREFIX));
	memcpy(sa->sun_path + 1 + strlen(LOCK_PREFIX), name, strlen(name));
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

static int valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > sizeof(((struct sockaddr_un *)0)->sun_path) - 1 -
				  strlen(LOCK_PREFIX))
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			return 0;
	return 1;
}

/* A socket on the lock's address: bound and listening (taking the lock;
 * -EADDRINUSE if held) or connected to the holder (-ECONNREFUSED if none).
 * -errno otherwise. */
static int lock_socket(const char *name, int take)
{
	struct sockaddr_un sa;
	socklen_t len = lock_addr(name, &sa);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	int rc = take ? bind(fd, (struct sockaddr *)&sa, len) || listen(fd, 64)
		      : connect(fd, (struct sockaddr *)&sa, len);
	if (rc) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

/* /proc/PID/cmdline with spaces between arguments. */
static void cmdline(pid_t pid, char *buf, size_t size)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, size - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0) {
		snprintf(buf, size, "?");
		return;
	}
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] == 0 || (unsigned char)buf[i] < ' ')
			buf[i] = ' ';
	while (n > 0 && buf[n - 1] == ' ')
		n--;
	buf[n] = 0;
}

/* The holder's pid through SO_PEERCRED (the kernel's word, not a file's);
 * 0 free, -errno if it cannot be asked. */
static pid_t holder_pid(const char *name)
{
	int fd = lock_socket(name, 0);
	if (fd == -ECONNREFUSED || fd == -ENOENT)
		return 0;
	if (fd < 0)
		return fd;
	struct ucred cr;
	socklen_t len = sizeof cr;
	int rc = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len);
	close(fd);
	return rc < 0 ? -errno : cr.pid;
}

static void describe_holder(FILE *to, const char *name, pid_t pid)
{
	char cmd[512];
	cmdline(pid, cmd, sizeof cmd);
	fprintf(to, "%s is held by pid %d: %s\n", name, (int)pid, cmd);
}

static int status(const char *name)
{
	pid_t pid = holder_pid(name);
	if (pid < 0)
		return fail(EXIT_SYSTEM, "lock", "asking @" LOCK_PREFIX "%s: %s", name,
			    strerror((int)-pid));
	if (pid == 0) {
		printf("%s is free\n", name);
		return EXIT_NO;
	}
	describe_holder(stdout, name, pid);
	/* The command kite runs for it: the holder's children. */
	char path[64], kids[256];
	snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, kids, sizeof kids - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n > 0) {
		kids[n] = 0;
		int child;
		if (sscanf(kids, "%d", &child) == 1) {
			char cmd[512];
			cmdline(child, cmd, sizeof cmd);
			printf("running pid %d: %s\n", child, cmd);
		}
	}
	return EXIT_DONE;
}

/* Wait until the holder goes (its end of our connection closes) or up to
 * ms; then the caller retries the name. */
static void wait_holder(const char *name, int64_t ms)
{
	int fd = lock_socket(name, 0);
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

int cmd_lock(int argc, char **argv)
{
	static const struct option opts[] = {
		{"wait", no_argument, NULL, 'w'},
		{"timeout", required_argument, NULL, 't'},
		{"conflict-exit", required_argument, NULL, 'E'},
		{"status", no_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
	};
	int c, wait = 0, show = 0, conflict = EXIT_NO;
	int64_t timeout_ms = -1;
	uint64_t v;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+wt:E:sh", opts, NULL)) != -1) {
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
			break;
		case 's': show = 1; break;
		case 'h': fputs(usage, stdout); return EXIT_DONE;
		default:
			return usage_error("lock", "unknown or incomplete option '%s'",
					   argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return usage_error("lock", "NAME expected");
	const char *name = argv[optind++];
	if (!valid_name(name))
		return usage_error("lock", "bad lock name '%s' (1-%zu printable bytes, "
				   "no spaces)", name, sizeof(((struct sockaddr_un *)0)->sun_path)
				   - 1 - strlen(LOCK_PREFIX));
	if (show) {
		if (optind != argc)
			return usage_error("lock", "--status takes only NAME");
		return status(name);
	}
	if (wait && timeout_ms >= 0)
		return usage_error("lock", "--wait and --timeout exclude each other");
	/* The command follows "--" (getopt stopped at NAME, so skip it here). */
	if (optind < argc && !strcmp(argv[optind], "--"))
		optind++;
	if (optind >= argc)
		return usage_error("lock", "COMMAND expected after NAME --");
	int64_t deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : -1;
	for (;;) {
		int fd = lock_socket(name, 1);
		if (fd >= 0)
			return lock_run(fd, argv + optind);
		if (fd != -EADDRINUSE)
			return fail(EXIT_SYSTEM, "lock", "binding @" LOCK_PREFIX "%s: %s",
				    name, strerror(-fd));
		if (!wait && timeout_ms < 0) {
			pid_t pid = holder_pid(name);
			fputs("kite lock: ", stderr);
			if (pid > 0)
				describe_holder(stderr, name, pid);
			else
				fprintf(stderr, "%s is held\n", name);
			return conflict;
		}
		int64_t left = deadline < 0 ? 1000 : deadline - now_ms();
		if (left <= 0)
			return fail(EXIT_TIMEOUT, "lock", "timed out waiting for %s", name);
		wait_holder(name, left);
	}
}
