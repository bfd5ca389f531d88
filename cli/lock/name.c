/* kite lock: the lock's abstract address and who holds it. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "lock.h"
#include "sockets/socklist.h" /* user_name */

static int prefix(char *buf, size_t size)
{
	return snprintf(buf, size, "kite-lock/%u/", (unsigned)geteuid());
}

size_t lock_name_max(void)
{
	char p[64];
	/* sun_path less the leading NUL of the abstract namespace. */
	return sizeof(((struct sockaddr_un *)0)->sun_path) - 1 - (size_t)prefix(p, sizeof p);
}

int lock_name_init(struct lock_name *ln, const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > lock_name_max())
		return -1;
	for (const char *s = name; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			return -1;
	memset(ln, 0, sizeof *ln);
	ln->name = name;
	int p = prefix(ln->abstract, sizeof ln->abstract);
	memcpy(ln->abstract + p, name, n + 1);
	ln->sa.sun_family = AF_UNIX;
	/* sun_path[0] = 0: the abstract namespace; no trailing NUL. */
	memcpy(ln->sa.sun_path + 1, ln->abstract, (size_t)p + n);
	ln->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)p + n);
	return 0;
}

int lock_socket(const struct lock_name *ln, int take)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	int rc = take ? bind(fd, (const struct sockaddr *)&ln->sa, ln->len) || listen(fd, 64)
		      : connect(fd, (const struct sockaddr *)&ln->sa, ln->len);
	if (rc) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

int lock_holder(const struct lock_name *ln, struct ucred *cr)
{
	int fd = lock_socket(ln, 0);
	if (fd == -ECONNREFUSED || fd == -ENOENT)
		return 0;
	/* A full backlog (many waiters) still means held; who is unknown. */
	if (fd == -EAGAIN) {
		*cr = (struct ucred){0, geteuid(), getegid()};
		return 1;
	}
	if (fd < 0)
		return fd;
	socklen_t len = sizeof *cr;
	int rc = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cr, &len);
	close(fd);
	return rc < 0 ? -errno : 1;
}

int lock_squatter(const struct ucred *cr)
{
	return cr->uid != geteuid() && cr->uid != 0;
}

void lock_cmdline(pid_t pid, char *buf, size_t size)
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
		if (buf[i] == 0 || (unsigned char)buf[i] < ' ' || buf[i] == 0x7f)
			buf[i] = ' ';
	while (n > 0 && buf[n - 1] == ' ')
		n--;
	buf[n] = 0;
}

void lock_describe(FILE *to, const struct lock_name *ln, const struct ucred *cr)
{
	char cmd[512], user[32];
	if (!cr->pid) {
		fprintf(to, "%s is held (its backlog is full of waiters)\n", ln->name);
		return;
	}
	lock_cmdline(cr->pid, cmd, sizeof cmd);
	user_name(cr->uid, user, sizeof user);
	if (!lock_squatter(cr) && kill(cr->pid, 0) < 0 && errno == ESRCH)
		fprintf(to, "%s is held by the job of pid %d (user %s), which has "
			"exited; kite lock --status %s lists the job\n", ln->name,
			(int)cr->pid, user, ln->name);
	else if (lock_squatter(cr))
		fprintf(to, "%s is squatted: @%s is held by pid %d (user %s): %s, "
			"neither you nor root, so it is not a lock of yours and kite "
			"will not wait for it; `kite who --kill @%s` frees it\n", ln->name,
			ln->abstract, (int)cr->pid, user, cmd, ln->abstract);
	else
		fprintf(to, "%s is held by pid %d (user %s): %s\n", ln->name,
			(int)cr->pid, user, cmd);
}
