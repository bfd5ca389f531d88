/* kite fifo: the inputs. Each FILE is opened before COMMAND starts (so a
 * typo fails fast), its compression told by its magic bytes, and while it
 * streams a compressed one runs through the system's own decompressor as a
 * child process: kite links no compression library, and `gzip -dc`,
 * `xz -dc`, `zstd -dc` are what every operator already trusts. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "fifo.h"

extern char **environ;

enum fifo_codec fifo_sniff(const unsigned char *head, size_t len)
{
	static const unsigned char gz[] = {0x1f, 0x8b};
	static const unsigned char xz[] = {0xfd, '7', 'z', 'X', 'Z', 0x00};
	static const unsigned char zst[] = {0x28, 0xb5, 0x2f, 0xfd};
	if (len >= sizeof gz && !memcmp(head, gz, sizeof gz))
		return CODEC_GZIP;
	if (len >= sizeof xz && !memcmp(head, xz, sizeof xz))
		return CODEC_XZ;
	if (len >= sizeof zst && !memcmp(head, zst, sizeof zst))
		return CODEC_ZSTD;
	return CODEC_NONE;
}

const char *fifo_codec_program(enum fifo_codec codec)
{
	switch (codec) {
	case CODEC_GZIP: return "gzip";
	case CODEC_XZ: return "xz";
	case CODEC_ZSTD: return "zstd";
	default: return NULL;
	}
}

static const char *codec_package(enum fifo_codec codec)
{
	return codec == CODEC_XZ ? "xz-utils" : fifo_codec_program(codec);
}

/* Is prog an executable file in $PATH? Checked up front so a missing
 * decompressor is one clear sentence before anything starts. */
static bool in_path(const char *prog)
{
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	char buf[4096];
	for (const char *p = path;; ) {
		const char *colon = strchr(p, ':');
		size_t n = colon ? (size_t)(colon - p) : strlen(p);
		int len = snprintf(buf, sizeof buf, "%.*s%s%s", (int)n, p,
				   n ? "/" : "", prog);
		if (len > 0 && (size_t)len < sizeof buf && access(buf, X_OK) == 0)
			return true;
		if (!colon)
			return false;
		p = colon + 1;
	}
}

int fifo_spawn(char *const argv[], int in_fd, int out_fd, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, def;
	sigemptyset(&none);
	/* kite ignores SIGPIPE and catches INT/TERM/HUP; children start with
	 * the defaults, as if run from the shell. */
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	sigaddset(&def, SIGINT);
	sigaddset(&def, SIGTERM);
	sigaddset(&def, SIGHUP);
	posix_spawn_file_actions_init(&fa);
	if (in_fd >= 0 && in_fd != 0)
		posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
	if (out_fd >= 0 && out_fd != 1)
		posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &def);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	int rc = posix_spawnp(pid, argv[0], &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	return -rc;
}

int fifo_wait(pid_t pid, int *status)
{
	for (;;) {
		pid_t r = waitpid(pid, status, 0);
		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

int fifo_input_open(struct fifo_input *in, const char *name)
{
	memset(in, 0, sizeof *in);
	in->name = name;
	in->out = -1;
	if (!strcmp(name, "-")) {
		in->fd = 0;
	} else {
		in->fd = open(name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (in->fd < 0)
			return fail(-1, "fifo", "%s: %s", name, strerror(errno));
	}
	struct stat st;
	if (fstat(in->fd, &st) < 0) {
		fail(-1, "fifo", "%s: %s", name, strerror(errno));
		goto bad;
	}
	if (S_ISDIR(st.st_mode)) {
		fail(-1, "fifo", "%s: is a directory", name);
		goto bad;
	}
	if (S_ISREG(st.st_mode)) {
		in->start = lseek(in->fd, 0, SEEK_CUR);
		if (in->start >= 0) {
			in->seekable = in->sized = true;
			in->size = st.st_size > in->start ? st.st_size - in->start : 0;
		} else {
			in->start = 0;
		}
	}
	/* Sniff: read until FIFO_PEEK bytes or end of input. */
	while (in->peek_len < FIFO_PEEK) {
		ssize_t n = read(in->fd, in->peek + in->peek_len, FIFO_PEEK - in->peek_len);
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) { /* handed to us non-blocking */
				struct pollfd pfd = {.fd = in->fd, .events = POLLIN};
				poll(&pfd, 1, -1);
				continue;
			}
			fail(-1, "fifo", "%s: %s", name, strerror(errno));
			goto bad;
		}
		in->peek_len += (size_t)n;
	}
	in->codec = fifo_sniff(in->peek, in->peek_len);
	if (in->seekable) {
		if (lseek(in->fd, in->start, SEEK_SET) < 0) {
			fail(-1, "fifo", "%s: %s", name, strerror(errno));
			goto bad;
		}
		in->peek_len = 0;
	}
	const char *prog = fifo_codec_program(in->codec);
	if (prog && !in_path(prog)) {
		fail(-1, "fifo", "%s is %s-compressed, but the '%s' program is not "
		     "installed (Debian: apt-get install %s)", name, prog, prog,
		     codec_package(in->codec));
		goto bad;
	}
	return 0;
bad:
	fifo_input_close(in);
	return -1;
}

/* A child that pushes an unseekable input (sniffed bytes first) into a pipe,
 * so the decompressor sees the whole stream. */
static pid_t start_feeder(struct fifo_input *in, int pipe_w)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	/* SIGPIPE stays ignored: a decompressor that dies early shows here as
	 * EPIPE, and the decompressor's own status tells the story. */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	if ((in->fd != 0 && dup2(in->fd, 0) < 0) || dup2(pipe_w, 1) < 0)
		_exit(1);
	/* Nothing else of kite's may stay open here: above all not the write
	 * end of the FIFO, or COMMAND would never see end of input. */
	close_range(3, ~0u, 0);
	if (fifo_write_all(1, in->peek, in->peek_len) < 0)
		_exit(0); /* the decompressor went away; it reports why */
	uint64_t n = 0;
	bool read_side = false;
	int rc = fifo_copy(0, 1, &n, NULL, NULL, NULL, &read_side);
	if (rc < 0 && read_side) {
		fprintf(stderr, "kite fifo: %s: %s\n", in->name, strerror(-rc));
		_exit(1);
	}
	_exit(0);
}

int fifo_input_start(struct fifo_input *in)
{
	const char *prog = fifo_codec_program(in->codec);
	if (!prog) {
		in->out = in->fd;
		return 0;
	}
	int p[2], q[2] = {-1, -1};
	if (pipe2(p, O_CLOEXEC) < 0)
		return fail(-1, "fifo", "pipe: %s", strerror(errno));
	fcntl(p[0], F_SETPIPE_SZ, 1 << 20); /* fewer, larger transfers; best effort */
	int src = in->fd;
	if (!in->seekable) {
		if (pipe2(q, O_CLOEXEC) < 0) {
			fail(-1, "fifo", "pipe: %s", strerror(errno));
			goto bad;
		}
		in->feeder = start_feeder(in, q[1]);
		close(q[1]);
		if (in->feeder < 0) {
			in->feeder = 0;
			fail(-1, "fifo", "fork: %s", strerror(errno));
			goto bad;
		}
		src = q[0];
	}
	char *argv[] = {(char *)prog, "-dc", NULL};
	int rc = fifo_spawn(argv, src, p[1], &in->decompressor);
	if (rc < 0) {
		in->decompressor = 0;
		fail(-1, "fifo", "%s: cannot run '%s -dc': %s", in->name, prog, strerror(-rc));
		goto bad;
	}
	if (q[0] >= 0)
		close(q[0]);
	close(p[1]);
	in->out = p[0];
	return 0;
bad:
	if (q[0] >= 0)
		close(q[0]);
	close(p[0]);
	close(p[1]);
	fifo_input_finish(in, true);
	return -1;
}

off_t fifo_input_position(const struct fifo_input *in)
{
	if (!in->seekable)
		return 0;
	/* A decompressor reads through the same open file description, so its
	 * progress shows in our offset too. */
	off_t pos = lseek(in->fd, 0, SEEK_CUR);
	if (pos < in->start)
		return 0;
	pos -= in->start;
	return pos > in->size ? in->size : pos;
}

void fifo_describe_status(char *buf, size_t cap, int status)
{
	if (WIFEXITED(status))
		snprintf(buf, cap, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, cap, "killed by signal %d (SIG%s)", WTERMSIG(status),
			 sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(WTERMSIG(status)) : "?");
	else
		snprintf(buf, cap, "wait status %#x", status);
}

int fifo_input_finish(struct fifo_input *in, bool abandon)
{
	int rc = 0, status;
	if (in->out >= 0 && in->out != in->fd)
		close(in->out);
	in->out = -1;
	if (in->feeder > 0) {
		if (abandon)
			kill(in->feeder, SIGTERM);
		if (fifo_wait(in->feeder, &status) == 0 && !abandon &&
		    !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
			rc = -1; /* it said why */
		in->feeder = 0;
	}
	if (in->decompressor > 0) {
		if (abandon)
			kill(in->decompressor, SIGTERM);
		if (fifo_wait(in->decompressor, &status) == 0 && !abandon &&
		    !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
			char why[96];
			fifo_describe_status(why, sizeof why, status);
			fail(-1, "fifo", "%s: '%s -dc' failed (%s): the input is "
			     "corrupt or truncated", in->name,
			     fifo_codec_program(in->codec), why);
			rc = -1;
		}
		in->decompressor = 0;
	}
	return rc;
}

void fifo_input_close(struct fifo_input *in)
{
	if (in->fd > 0 || (in->fd == 0 && strcmp(in->name, "-")))
		close(in->fd);
	in->fd = -1;
}
