/* Small /proc texts: each parser reads only within len and refuses anything
 * that is not exactly the kernel's format. */
#include <limits.h>
#include <string.h>

#include "proc_text.h"

int proc_fd_socket_inode(const char *link, size_t len, unsigned long *inode)
{
	static const char pre[] = "socket:[";
	size_t np = sizeof pre - 1;
	if (len < np + 2 || memcmp(link, pre, np) || link[len - 1] != ']')
		return -1;
	unsigned long v = 0;
	for (size_t i = np; i < len - 1; i++) {
		unsigned d = (unsigned)(link[i] - '0');
		if (d > 9 || v > (ULONG_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*inode = v;
	return 0;
}

int proc_net_dev_name(const char *line, size_t len, char name[PROC_IFNAME_MAX + 1])
{
	const char *colon = memchr(line, ':', len);
	if (!colon)
		return -1; /* the two header lines */
	const char *s = line;
	while (s < colon && *s == ' ')
		s++;
	size_t n = (size_t)(colon - s);
	if (n == 0 || n > PROC_IFNAME_MAX)
		return -1;
	for (size_t i = 0; i < n; i++) /* what the kernel allows in a name */
		if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f || s[i] == '/' ||
		    s[i] == '|')
			return -1;
	memcpy(name, s, n);
	name[n] = 0;
	return 0;
}

static int blank(char c)
{
	return c == ' ' || c == '\t';
}

static int number(const char **p, const char *end, long *out)
{
	const char *s = *p;
	int neg = 0;
	if (s < end && *s == '-') {
		neg = 1;
		s++;
	}
	if (s >= end || *s < '0' || *s > '9')
		return -1;
	long v = 0;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		int d = *s - '0';
		if (v > (LONG_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = neg ? -v : v;
	*p = s;
	return 0;
}

int proc_two_numbers(const char *text, size_t len, long *a, long *b)
{
	const char *p = text, *end = text + len;
	if (end > p && end[-1] == '\n')
		end--;
	if (number(&p, end, a) || p >= end || !blank(*p))
		return -1;
	while (p < end && blank(*p))
		p++;
	if (number(&p, end, b))
		return -1;
	return p == end ? 0 : -1;
}
