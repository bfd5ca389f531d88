/* Internal to `kite fifo`: the pieces cli/fifo.c puts together.
 *   fifo_input.c    open each FILE, sniff its compression, decompress it
 *   fifo_pipe.c     the private named pipe: make, open the write end, remove
 *   fifo_copy.c     move bytes into the pipe (splice, or a large buffer)
 *   fifo_progress.c the progress line on stderr */
#ifndef KITE_CLI_FIFO_H
#define KITE_CLI_FIFO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Exit code of `kite fifo` when the load was incomplete although COMMAND
 * exited 0 (the convention of env(1) and nohup(1) for "the wrapper itself
 * failed"; 126 and 127 mean COMMAND could not be run). */
#define FIFO_EXIT_INCOMPLETE 125
#define FIFO_EXIT_CANNOT_EXEC 126
#define FIFO_EXIT_NOT_FOUND 127

enum fifo_codec { CODEC_NONE, CODEC_GZIP, CODEC_XZ, CODEC_ZSTD };

/* Which codec the first bytes of a stream announce (magic numbers only, never
 * the file name). Reads at most len bytes of head. */
enum fifo_codec fifo_sniff(const unsigned char *head, size_t len);

/* "gzip", "xz", "zstd": the program that decompresses codec (NULL for none). */
const char *fifo_codec_program(enum fifo_codec codec);

/* Start argv[0] (searched in $PATH) with default signal handling; in_fd and
 * out_fd (if >= 0) become its stdin and stdout. 0 or -errno (ENOENT when
 * the program is missing). */
int fifo_spawn(char *const argv[], int in_fd, int out_fd, pid_t *pid);

/* waitpid(pid) through EINTR; 0 or -errno. */
int fifo_wait(pid_t pid, int *status);

/* "exit status 3", "killed by signal 9 (Killed)". */
void fifo_describe_status(char *buf, size_t cap, int status);

#define FIFO_PEEK 6 /* the longest magic number (xz) */

struct fifo_input {
	const char *name;       /* as given; "-" is standard input */
	int fd;                 /* the file itself */
	enum fifo_codec codec;
	bool seekable;          /* regular file: sniffed bytes were seeked back */
	bool sized;             /* size is known (a regular file) */
	off_t start;            /* offset where the data begins */
	off_t size;             /* bytes from start to the end (if sized) */
	unsigned char peek[FIFO_PEEK]; /* sniffed bytes still to deliver when */
	size_t peek_len;        /*   the input cannot seek back */
	/* while streaming: */
	int out;                /* fd to copy from (fd or decompressor stdout) */
	pid_t decompressor;     /* 0 when none runs */
	pid_t feeder;           /* 0 unless a child pushes a pipe into it */
};

/* Open name (read-only, close-on-exec), sniff it, and check that its
 * decompressor is installed. 0, or -1 after printing why. */
int fifo_input_open(struct fifo_input *in, const char *name);

/* Start streaming in: in->out is then the fd to read plain bytes from (and
 * in->peek_len bytes of in->peek come first for a plain unseekable input).
 * 0, or -1 after printing why. */
int fifo_input_start(struct fifo_input *in);

/* How far the reading of in has come, in bytes of the file (for progress). */
off_t fifo_input_position(const struct fifo_input *in);

/* Stop streaming in and reap its children. abandon: the load is cut short,
 * so stop the decompressor first and do not judge its status. 0 when the
 * decompressor (if any) succeeded, -1 after printing why not. */
int fifo_input_finish(struct fifo_input *in, bool abandon);

/* Close the file. */
void fifo_input_close(struct fifo_input *in);

/* The private pipe: a fresh mkdtemp directory holding one FIFO. */
struct fifo_pipe {
	char dir[4096];
	char path[4096 + 8];
	bool have_dir, have_fifo;
};

/* Who may open the pipe besides its creator. */
struct fifo_access {
	mode_t mode;            /* of the FIFO; default 0600 */
	bool chown;             /* give FIFO and directory to uid:gid */
	uid_t uid;
	gid_t gid;
};

/* Make the directory (0700, or search-only for the classes mode opens the
 * FIFO to) and the FIFO in it. 0, or -1 after printing why. */
int fifo_pipe_make(struct fifo_pipe *p, const struct fifo_access *acc);

/* Open the write end once COMMAND (pid) opens the read end; never waits
 * after COMMAND's exit. Returns the fd (blocking, close-on-exec); -1 if
 * COMMAND exited first (then *status holds its wait status and *reaped is
 * set); -2 if *stop became non-zero; -3 on a system error (printed). */
int fifo_pipe_open_writer(struct fifo_pipe *p, pid_t pid,
			  volatile int *stop, int *status, bool *reaped);

/* Wait until the reader has taken every byte still buffered in the pipe.
 * 0 when it did, 1 when every reader closed with *unread bytes left, -EINTR
 * when *stop became non-zero. */
int fifo_pipe_drain(int wfd, volatile int *stop, size_t *unread);

/* Remove the FIFO and its directory; safe to call more than once and from
 * any state. */
void fifo_pipe_remove(struct fifo_pipe *p);

/* Copy everything from in to out. Returns 0 at end of input, -EPIPE when the
 * reader went away, -EINTR when *stop became non-zero, other -errno for a
 * read or write error (*read_side tells which side failed). Adds what was
 * written to *written and calls tick(arg) now and then. */
int fifo_copy(int in, int out, uint64_t *written, volatile int *stop,
	      void (*tick)(void *arg), void *arg, bool *read_side);

/* Write len bytes of buf to out (for sniffed bytes); 0 or -errno. */
int fifo_write_all(int out, const void *buf, size_t len);

/* The progress line. */
struct fifo_progress {
	bool on;
	int64_t start_ms, last_ms;
	uint64_t total;         /* bytes of input files, 0 when unknown */
	uint64_t done_before;   /* input bytes of the files already finished */
	const struct fifo_input *current;
	const uint64_t *written; /* bytes delivered into the pipe */
	bool drawn;
};

/* Redraw the line if it is on and 250 ms have passed (force: now). */
void fifo_progress_draw(struct fifo_progress *pr, bool force);
/* Draw the final state and end the line. */
void fifo_progress_end(struct fifo_progress *pr);
/* tick callback for fifo_copy. */
void fifo_progress_tick(void *pr);

#endif
