/* kite fifo: moving bytes into the pipe. splice(2) moves pages from a file
 * or a pipe (a decompressor's stdout) into the FIFO without copying them
 * through user space; what cannot be spliced (a terminal, some special
 * files) goes through one 1 MiB buffer. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include "fifo.h"

#define CHUNK (1 << 20)

int fifo_write_all(int out, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = write(out, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* An input left in non-blocking mode by whoever handed it to us: wait. */
static void wait_readable(int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	poll(&pfd, 1, -1);
}

int fifo_copy(int in, int out, uint64_t *written, volatile int *stop,
	      void (*tick)(void *arg), void *arg, bool *read_side)
{
	static char *buf;
	bool use_splice = true;
	*read_side = false;
	for (;;) {
		if (stop && *stop)
			return -EINTR;
		ssize_t n;
		if (use_splice) {
			n = splice(in, NULL, out, NULL, CHUNK, SPLICE_F_MOVE | SPLICE_F_MORE);
			if (n < 0 && (errno == EINVAL || errno == ENOSYS)) {
				use_splice = false;
				continue;
			}
			if (n < 0 && errno == EPIPE)
				return -EPIPE; /* writes to a pipe fail only so */
		} else {
			if (!buf && !(buf = malloc(CHUNK)))
				return -ENOMEM;
			n = read(in, buf, CHUNK);
			if (n > 0) {
				int rc = fifo_write_all(out, buf, (size_t)n);
				if (rc < 0)
					return rc;
			}
		}
		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				wait_readable(in);
				continue;
			}
			*read_side = true;
			return -errno;
		}
		*written += (uint64_t)n;
		if (tick)
			tick(arg);
	}
}
