/* Line reader for /proc tables. Big reads matter: seq_file tables such as
 * /proc/net/tcp restart their walk per read call, so with thousands of
 * sockets fewer calls are measurably faster. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc_lines.h"

#define PROC_LINES_BUF (1u << 18)

int ki_proc_lines_each(const char *path,
		    int (*line)(const char *text, size_t len, void *arg),
		    void *arg, unsigned *toolong)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t cap = PROC_LINES_BUF, have = 0;
	char *buf = malloc(cap);
	int rc = 0, skipping = 0;
	unsigned dropped = 0;
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		ssize_t r = read(fd, buf + have, cap - have);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		have += (size_t)r;
		size_t start = 0;
		for (size_t i = 0; i < have; i++) {
			if (buf[i] != '\n')
				continue;
			if (skipping) /* the tail of an over-long line */
				skipping = 0;
			else if ((rc = line(buf + start, i - start, arg)) != 0)
				goto out;
			start = i + 1;
		}
		memmove(buf, buf + start, have - start);
		have -= start;
		if (r == 0)
			break;
		if (have == cap) { /* drop it, and its tail up to the newline */
			if (!skipping)
				dropped++;
			skipping = 1;
			have = 0;
		}
	}
out:
	if (toolong)
		*toolong = dropped;
	free(buf);
	close(fd);
	return rc;
}
