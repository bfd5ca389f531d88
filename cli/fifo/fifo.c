/* kite fifo: feed files into a program that wants a file name, through a
 * private named pipe, decompressing on the way. The program (COMMAND) runs
 * with `{}` replaced by the pipe's path; kite streams every FILE into the
 * pipe, watches each decompressor's verdict, and makes sure that neither a
 * short load nor a leftover pipe ever passes silently. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cli.h"
#include "fifo.h"

static const char usage_text[] =
	"Usage: kite fifo [OPTIONS] FILE... -- COMMAND [ARGS]...\n"
	"Run COMMAND with every {} in its arguments replaced by the path of a\n"
	"private named pipe, and stream the FILEs into that pipe, one after the\n"
	"other ('-' is standard input). gzip, xz and zstd input (told by its magic\n"
	"bytes) is decompressed by the system's gzip, xz or zstd program.\n"
	"The path is also in $KITE_FIFO; it is removed once COMMAND opens it,\n"
	"and on any error or signal (SIGINT, SIGTERM, SIGHUP go to COMMAND).\n"
	"\n"
	"Options:\n"
	"  -q, --quiet         no progress line, even on a terminal\n"
	"  -p, --progress      a progress line on stderr even when not a terminal\n"
	"  -m, --mode MODE     permissions of the pipe (octal; default 0600)\n"
	"  -o, --owner USER[:GROUP]  give the pipe to USER (root only), for a\n"
	"                      reader running as another user, such as a database\n"
	"                      server\n"
	"  -h, --help          this help\n"
	"\n"
	"Exit status: COMMAND's (128+N if signal N killed it); 125 if the load was\n"
	"incomplete (a decompressor or read failed, or COMMAND stopped reading yet\n"
	"exited 0); 126/127 if COMMAND cannot be run or is not found; 100 usage;\n"
	"111 if nothing ran (a FILE cannot be opened, a decompressor is missing).\n";

static volatile sig_atomic_t got_signal;
static volatile pid_t command_pid;
/* Signals go through a pidfd when the kernel has them: it names COMMAND
 * itself, so a signal arriving just after COMMAND was reaped can never reach
 * a process that reused its pid. */
static volatile int command_pidfd = -1;

/* Forward at once: COMMAND decides how to stop; kite then cleans up. */
static void on_signal(int sig)
{
	got_signal = sig;
	if (command_pidfd >= 0)
		syscall(SYS_pidfd_send_signal, command_pidfd, sig, NULL, 0);
	else if (command_pid > 0)
		kill(command_pid, sig);
}

static int install_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal; /* no SA_RESTART: blocking calls return */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL) ||
	    sigaction(SIGHUP, &sa, NULL))
		return -1;
	signal(SIGPIPE, SIG_IGN); /* a reader that leaves shows as EPIPE */
	return 0;
}

static int parse_owner(const char *s, struct fifo_access *acc)
{
	char user[256];
	const char *colon = strchr(s, ':');
	size_t n = colon ? (size_t)(colon - s) : strlen(s);
	if (n == 0 || n >= sizeof user)
		return -1;
	memcpy(user, s, n);
	user[n] = 0;
	uint64_t id;
	struct passwd *pw = getpwnam(user);
	if (pw) {
		acc->uid = pw->pw_uid;
		acc->gid = pw->pw_gid;
	} else if (parse_u64(user, 0xfffffffe, &id) == 0) {
		acc->uid = (uid_t)id;
		acc->gid = (gid_t)-1; /* keep ours */
	} else {
		return -1;
	}
	if (colon) {
		struct group *gr = getgrnam(colon + 1);
		if (gr)
			acc->gid = gr->gr_gid;
		else if (parse_u64(colon + 1, 0xfffffffe, &id) == 0)
			acc->gid = (gid_t)id;
		else
			return -1;
	}
	acc->chown = true;
	return 0;
}

/* Replace every "{}" inside arg by path. */
static char *substitute(const char *arg, const char *path)
{
	size_t count = 0, plen = strlen(path);
	for (const char *p = arg; (p = strstr(p, "{}")); p += 2)
		count++;
	char *out = malloc(strlen(arg) + count * plen + 1);
	if (!out)
		return NULL;
	char *o = out;
	for (const char *p = arg;;) {
		const char *hit = strstr(p, "{}");
		size_t n = hit ? (size_t)(hit - p) : strlen(p);
		memcpy(o, p, n);
		o += n;
		if (!hit)
			break;
		memcpy(o, path, plen);
		o += plen;
		p = hit + 2;
	}
	*o = 0;
	return out;
}

struct options {
	bool quiet, progress;
	struct fifo_access acc;
	const char **files;
	int nfiles;
	char **command;
	int ncommand;
};

/* Options and FILEs come before "--"; everything after it is COMMAND. */
static int parse_args(int argc, char **argv, struct options *o)
{
	o->acc.mode = 0600;
	o->files = calloc((size_t)argc, sizeof *o->files);
	if (!o->files)
		return fail(EXIT_SYSTEM, "fifo", "out of memory");
	int i, stdin_uses = 0;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--"))
			break;
		if (a[0] != '-' || !a[1]) {
			stdin_uses += !strcmp(a, "-");
			o->files[o->nfiles++] = a;
			continue;
		}
		const char *val = NULL, *eq = strchr(a, '=');
		size_t nlen = eq && a[1] == '-' ? (size_t)(eq - a) : strlen(a);
#define IS(longname, shortname) \
	((nlen == strlen(longname) && !strncmp(a, longname, nlen)) || !strcmp(a, shortname))
		if (IS("--help", "-h")) {
			fputs(usage_text, stdout);
			return -1;
		} else if (IS("--quiet", "-q")) {
			o->quiet = true;
		} else if (IS("--progress", "-p")) {
			o->progress = true;
		} else if (IS("--mode", "-m") || IS("--owner", "-o")) {
			bool mode = IS("--mode", "-m");
			if (eq && a[1] == '-')
				val = eq + 1;
			else if (i + 1 < argc)
				val = argv[++i];
			else
				return usage_error("fifo", "%s needs a value", a);
			if (mode) {
				char *end;
				errno = 0;
				unsigned long m = strtoul(val, &end, 8);
				if (errno || end == val || *end || m > 0777)
					return usage_error("fifo", "bad --mode '%s' (octal, "
							   "such as 0640)", val);
				o->acc.mode = (mode_t)m;
			} else if (parse_owner(val, &o->acc) < 0) {
				return usage_error("fifo", "unknown user or group in "
						   "--owner '%s'", val);
			}
		} else {
			return usage_error("fifo", "unknown option '%s'", a);
		}
#undef IS
	}
	if (i >= argc)
		return usage_error("fifo", "missing '--' before COMMAND");
	if (o->nfiles == 0)
		return usage_error("fifo", "no FILE given");
	if (stdin_uses > 1)
		return usage_error("fifo", "'-' (standard input) given more than once");
	if (o->quiet && o->progress)
		return usage_error("fifo", "--quiet and --progress exclude each other");
	o->command = argv + i + 1;
	o->ncommand = argc - i - 1;
	if (o->ncommand == 0)
		return usage_error("fifo", "missing COMMAND after '--'");
	return 0;
}

static int status_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return EXIT_SYSTEM;
}

/* Why the load stopped early, when it did. */
enum cut { CUT_NONE, CUT_INPUT, CUT_READER, CUT_NEVER_OPENED, CUT_SIGNAL, CUT_SYSTEM };

struct load {
	struct fifo_input *in;
	int n;
	int wfd;
	uint64_t written;
	struct fifo_progress pr;
	int stopped_at;         /* index of the FILE being loaded when cut */
};

/* Stream every input into wfd, in order. */
static enum cut stream_all(struct load *l)
{
	for (int i = 0; i < l->n; i++) {
		struct fifo_input *in = &l->in[i];
		l->stopped_at = i;
		l->pr.current = in;
		if (fifo_input_start(in) < 0)
			return CUT_INPUT;
		int rc = 0;
		bool read_side = false;
		if (in->codec == CODEC_NONE && in->peek_len) {
			rc = fifo_write_all(l->wfd, in->peek, in->peek_len);
			if (rc == 0)
				l->written += in->peek_len;
		}
		if (rc == 0)
			rc = fifo_copy(in->out, l->wfd, &l->written, &got_signal,
				       fifo_progress_tick, &l->pr, &read_side);
		if (rc < 0 && read_side)
			fail(-1, "fifo", "%s: %s", in->name, strerror(-rc));
		if (rc < 0 && !read_side && rc != -EPIPE && rc != -EINTR)
			fail(-1, "fifo", "writing to the pipe: %s", strerror(-rc));
		bool input_ok = fifo_input_finish(in, rc < 0) == 0;
		l->pr.done_before += (uint64_t)in->size;
		l->pr.current = NULL;
		if (rc == -EPIPE)
			return CUT_READER;
		if (rc == -EINTR || got_signal)
			return CUT_SIGNAL;
		if (rc < 0 || !input_ok)
			return CUT_INPUT;
	}
	return CUT_NONE;
}

int cmd_fifo(int argc, char **argv)
{
	struct options o = {0};
	int rc = parse_args(argc, argv, &o);
	if (rc) {
		free(o.files);
		return rc < 0 ? EXIT_DONE : rc;
	}

	struct load l = {.n = o.nfiles, .wfd = -1, .stopped_at = 0};
	l.in = calloc((size_t)o.nfiles, sizeof *l.in);
	char **cargv = calloc((size_t)o.ncommand + 1, sizeof *cargv);
	if (!l.in || !cargv)
		return fail(EXIT_SYSTEM, "fifo", "out of memory");
	int opened = 0, code = EXIT_SYSTEM, devnull = -1;
	uint64_t total = 0;
	bool sized = true;
	for (; opened < o.nfiles; opened++) {
		if (fifo_input_open(&l.in[opened], o.files[opened]) < 0)
			goto close_inputs;
		sized = sized && l.in[opened].sized;
		total += (uint64_t)l.in[opened].size;
	}

	/* Handlers only now: until here (sniffing standard input may block)
	 * a signal has nothing to clean up and may simply end kite. */
	if (install_signals() < 0) {
		fail(EXIT_SYSTEM, "fifo", "sigaction: %s", strerror(errno));
		goto close_inputs;
	}
	struct fifo_pipe pipe;
	if (fifo_pipe_make(&pipe, &o.acc) < 0)
		goto close_inputs;
	for (int i = 0; i < o.ncommand; i++)
		if (!(cargv[i] = substitute(o.command[i], pipe.path))) {
			fail(EXIT_SYSTEM, "fifo", "out of memory");
			goto remove_pipe;
		}
	setenv("KITE_FIFO", pipe.path, 1);

	/* If a FILE is standard input, COMMAND must not read from it too. */
	for (int i = 0; i < o.nfiles; i++)
		if (!strcmp(o.files[i], "-") && devnull < 0)
			devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	pid_t pid;
	rc = fifo_spawn(cargv, devnull, -1, &pid);
	if (rc < 0) {
		code = rc == -ENOENT ? FIFO_EXIT_NOT_FOUND : FIFO_EXIT_CANNOT_EXEC;
		fail(code, "fifo", "%s: %s", cargv[0],
		     rc == -ENOENT ? "command not found" : strerror(-rc));
		goto remove_pipe;
	}
	command_pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	command_pid = pid;
	if (got_signal) /* arrived before there was anyone to forward it to */
		kill(pid, got_signal);

	int status = 0;
	bool reaped = false;
	enum cut cut = CUT_NONE;
	l.wfd = fifo_pipe_open_writer(&pipe, pid, &got_signal, &status, &reaped);
	if (reaped)
		command_pid = 0; /* its pid may be reused: forward nothing more */
	if (l.wfd == -1)
		cut = CUT_NEVER_OPENED;
	else if (l.wfd == -2)
		cut = CUT_SIGNAL;
	else if (l.wfd < 0)
		cut = CUT_SYSTEM;
	/* Both ends are open now (or never will be): the name has done its
	 * job. Removing it here leaves nothing behind even if kite is killed
	 * with SIGKILL during the load. */
	fifo_pipe_remove(&pipe);

	if (l.wfd >= 0) {
		fcntl(l.wfd, F_SETPIPE_SZ, 1 << 20); /* best effort */
		l.pr.on = o.progress || (!o.quiet && isatty(2));
		l.pr.start_ms = l.pr.last_ms = now_ms();
		l.pr.total = sized ? total : 0;
		l.pr.written = &l.written;
		cut = stream_all(&l);
		size_t unread = 0;
		if (cut == CUT_NONE) {
			rc = fifo_pipe_drain(l.wfd, &got_signal, &unread);
			if (rc == 1) {
				cut = CUT_READER;
				l.written -= unread;
				l.stopped_at = l.n - 1;
			} else if (rc < 0) {
				cut = CUT_SIGNAL;
			}
		}
		if (cut == CUT_NONE)
			fifo_progress_end(&l.pr);
		else if (l.pr.drawn && isatty(2))
			fputc('\n', stderr);
		/* A failed input must never look like a clean end of input:
		 * COMMAND is stopped before it can see the pipe close. */
		if (cut == CUT_INPUT)
			kill(pid, SIGTERM);
		close(l.wfd);
	} else if (cut == CUT_SYSTEM) {
		kill(pid, SIGTERM); /* it would wait for a writer forever */
	}
	if (!reaped && fifo_wait(pid, &status) < 0)
		status = 0;
	command_pid = 0;
	if (command_pidfd >= 0) {
		int fd = command_pidfd;
		command_pidfd = -1;
		close(fd);
	}
	int cmd_code = status_code(status);
	char why[96];
	fifo_describe_status(why, sizeof why, status);

	switch (cut) {
	case CUT_NONE:
		code = cmd_code;
		break;
	case CUT_SIGNAL:
		code = 128 + got_signal;
		break;
	case CUT_SYSTEM:
		code = EXIT_SYSTEM;
		break;
	case CUT_INPUT:
		code = fail(FIFO_EXIT_INCOMPLETE, "fifo", "load incomplete after %llu "
			    "bytes (failed at %s); COMMAND was sent SIGTERM (it ended: "
			    "%s)", (unsigned long long)l.written,
			    l.in[l.stopped_at].name, why);
		break;
	case CUT_READER:
		code = fail(cmd_code ? cmd_code : FIFO_EXIT_INCOMPLETE, "fifo",
			    "COMMAND stopped reading after %llu bytes, before the end "
			    "of %s (it ended: %s); the load is incomplete",
			    (unsigned long long)l.written, l.in[l.stopped_at].name, why);
		break;
	case CUT_NEVER_OPENED:
		code = fail(cmd_code ? cmd_code : FIFO_EXIT_INCOMPLETE, "fifo",
			    "COMMAND ended (%s) without opening the pipe; nothing "
			    "was loaded", why);
		break;
	}
remove_pipe:
	fifo_pipe_remove(&pipe);
close_inputs:
	for (int i = 0; i < opened; i++) {
		fifo_input_finish(&l.in[i], true);
		fifo_input_close(&l.in[i]);
	}
	if (devnull >= 0)
		close(devnull);
	for (int i = 0; i < o.ncommand; i++)
		free(cargv[i]);
	free(cargv);
	free(l.in);
	free(o.files);
	return code;
}
