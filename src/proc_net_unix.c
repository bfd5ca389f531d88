/* /proc/net/unix: "Num RefCount Protocol Flags Type St Inode Path". */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc_net_unix.h"

/* Read one whitespace-delimited hex or decimal field; advance *p. */
static int field(const char **p, const char *end, int base, unsigned long *out)
{
	const char *s = *p;
	while (s < end && *s == ' ')
		s++;
	unsigned long v = 0;
	const char *start = s;
	for (; s < end && *s != ' ' && *s != ':'; s++) {
		int d;
		char c = *s;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (base == 16 && c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		if (v > (~0ul - (unsigned long)d) / (unsigned long)base)
			return -1;
		v = v * (unsigned long)base + (unsigned long)d;
	}
	if (s == start)
		return -1;
	if (s < end && *s == ':')
		s++;
	*p = s;
	*out = v;
	return 0;
}

int proc_net_unix_parse_line(const char *line, size_t len, struct unix_entry *out)
{
	const char *p = line, *end = line + len;
	unsigned long num, refs, proto, flags, type, st, inode;
	if (field(&p, end, 16, &num) || field(&p, end, 16, &refs) ||
	    field(&p, end, 16, &proto) || field(&p, end, 16, &flags) ||
	    field(&p, end, 16, &type) || field(&p, end, 16, &st) ||
	    field(&p, end, 10, &inode))
		return -1;
	if (flags > 0xffffffffu || type > 0xffff || st > 0xff)
		return -1;
	out->flags = (unsigned)flags;
	out->type = (unsigned)type;
	out->state = (unsigned)st;
	out->inode = inode;
	out->abstract = 0;
	out->path_len = 0;
	out->path[0] = 0;
	if (p < end && *p != ' ')
		return -1;
	if (p < end)
		p++; /* the one space before the path */
	if (p >= end)
		return 0;
	if (*p == '@') {
		out->abstract = 1;
		p++;
	}
	size_t n = (size_t)(end - p);
	if (n > UNIX_ENTRY_PATH_MAX)
		return -1;
	memcpy(out->path, p, n);
	out->path[n] = 0;
	out->path_len = n;
	return 0;
}

int proc_net_unix_each(int (*cb)(const struct unix_entry *e, void *arg),
		       void *arg, unsigned *skipped)
{
	int fd = open("/proc/net/unix", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t cap = 1 << 16, have = 0;
	char *buf = malloc(cap);
	int rc = 0, first = 1;
	unsigned bad = 0;
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
			struct unix_entry e;
			if (first)
				first = 0; /* the header */
			else if (proc_net_unix_parse_line(buf + start, i - start, &e))
				bad++;
			else if ((rc = cb(&e, arg)) != 0)
				goto out;
			start = i + 1;
		}
		memmove(buf, buf + start, have - start);
		have -= start;
		if (r == 0)
			break;
		if (have == cap) { /* a line longer than any the kernel writes */
			bad++;
			have = 0;
		}
	}
out:
	if (skipped)
		*skipped = bad;
	free(buf);
	close(fd);
	return rc;
}
