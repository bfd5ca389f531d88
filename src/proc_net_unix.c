/* /proc/net/unix: "Num RefCount Protocol Flags Type St Inode Path". */
#include <string.h>

#include "proc_lines.h"
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

int ki_proc_net_unix_parse_line(const char *line, size_t len, struct unix_entry *out)
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

struct each_state {
	int (*cb)(const struct unix_entry *e, void *arg);
	void *arg;
	unsigned bad;
	int first;
};

static int each_line(const char *line, size_t len, void *arg)
{
	struct each_state *st = arg;
	struct unix_entry e;
	if (st->first) { /* the header */
		st->first = 0;
		return 0;
	}
	if (ki_proc_net_unix_parse_line(line, len, &e)) {
		st->bad++;
		return 0;
	}
	return st->cb(&e, st->arg);
}

int ki_proc_net_unix_each(int (*cb)(const struct unix_entry *e, void *arg),
		       void *arg, unsigned *skipped)
{
	struct each_state st = {cb, arg, 0, 1};
	unsigned toolong = 0;
	int rc = ki_proc_lines_each("/proc/net/unix", each_line, &st, &toolong);
	if (skipped)
		*skipped = st.bad + toolong;
	return rc;
}
