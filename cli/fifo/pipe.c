/* kite fifo: the private named pipe. It lives alone in a fresh mkdtemp
 * directory (mode 0700), so no other user can swap it, open it, or even
 * see its name unless --mode or --owner say so. Its write end is opened
 * without blocking, again and again, while COMMAND lives: a COMMAND that
 * exits without opening the pipe can never leave kite hanging. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "fifo.h"

int fifo_pipe_make(struct fifo_pipe *p, const struct fifo_access *acc)
{
	memset(p, 0, sizeof *p);
	const char *tmp = getenv("TMPDIR");
	if (!tmp || !*tmp)
		tmp = "/tmp";
	int n = snprintf(p->dir, sizeof p->dir, "%s/kite-fifo.XXXXXX", tmp);
	if (n < 0 || (size_t)n >= sizeof p->dir)
		return fail(-1, "fifo", "TMPDIR is too long");
	if (!mkdtemp(p->dir)) /* mode 0700 */
		return fail(-1, "fifo", "mkdtemp %s: %s", p->dir, strerror(errno));
	p->have_dir = true;
	snprintf(p->path, sizeof p->path, "%s/fifo", p->dir);
	if (mkfifo(p->path, 0600) < 0) {
		fail(-1, "fifo", "mkfifo %s: %s", p->path, strerror(errno));
		goto bad;
	}
	p->have_fifo = true;
	/* Owner and mode are set while the directory is still closed to all
	 * but us; only then is the directory opened as far as asked. */
	if (acc->chown && chown(p->path, acc->uid, acc->gid) < 0) {
		fail(-1, "fifo", "--owner: chown %s: %s", p->path, strerror(errno));
		goto bad;
	}
	if (chmod(p->path, acc->mode) < 0) { /* exact, whatever the umask */
		fail(-1, "fifo", "chmod %s: %s", p->path, strerror(errno));
		goto bad;
	}
	/* Others reach a FIFO they may open through a search-only (x)
	 * directory: they can open the path they are given, never list. */
	mode_t dmode = 0700;
	if (acc->mode & 0070)
		dmode |= 0010;
	if (acc->mode & 0007)
		dmode |= 0001;
	if (acc->chown && chown(p->dir, acc->uid, acc->gid) < 0) {
		fail(-1, "fifo", "--owner: chown %s: %s", p->dir, strerror(errno));
		goto bad;
	}
	if (chmod(p->dir, dmode) < 0) {
		fail(-1, "fifo", "chmod %s: %s", p->dir, strerror(errno));
		goto bad;
	}
	return 0;
bad:
	fifo_pipe_remove(p);
	return -1;
}

int fifo_pipe_open_writer(struct fifo_pipe *p, pid_t pid,
			  volatile int *stop, int *status, bool *reaped)
{
	/* A pidfd turns "has COMMAND exited?" into a poll() that also serves
	 * as the back-off sleep; without one (old kernels), WNOHANG polling. */
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	int delay = 1, rc;
	for (;;) {
		if (*stop) {
			rc = -2;
			break;
		}
		int fd = open(p->path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0) {
			int fl = fcntl(fd, F_GETFL);
			if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
				fail(-1, "fifo", "fcntl: %s", strerror(errno));
				close(fd);
				rc = -3;
				break;
			}
			rc = fd;
			break;
		}
		if (errno != ENXIO && errno != EINTR) { /* ENXIO: no reader yet */
			fail(-1, "fifo", "open %s: %s", p->path, strerror(errno));
			rc = -3;
			break;
		}
		bool exited = false;
		if (pidfd >= 0) {
			struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
			exited = poll(&pfd, 1, delay) > 0;
		} else {
			pid_t r = waitpid(pid, status, WNOHANG);
			if (r == pid) {
				*reaped = true;
				rc = -1;
				break;
			}
			struct timespec ts = {0, delay * 1000000L};
			nanosleep(&ts, NULL);
		}
		if (exited && fifo_wait(pid, status) == 0) {
			*reaped = true;
			rc = -1;
			break;
		}
		if (delay < 50)
			delay *= 2;
	}
	if (pidfd >= 0)
		close(pidfd);
	return rc;
}

void fifo_pipe_remove(struct fifo_pipe *p)
{
	if (p->have_fifo)
		unlink(p->path);
	if (p->have_dir)
		rmdir(p->dir);
	p->have_fifo = p->have_dir = false;
}

int fifo_pipe_drain(int wfd, volatile int *stop, size_t *unread)
{
	/* The last bytes written may still sit in the pipe's buffer (up to a
	 * MiB): a reader that quits now loses them without any EPIPE. So the
	 * write end stays open until the buffer is empty; poll() flags
	 * POLLERR on a write end whose readers are all gone. */
	int delay = 1;
	for (;;) {
		int n = 0;
		if (ioctl(wfd, FIONREAD, &n) < 0 || n <= 0)
			return 0;
		if (*stop)
			return -EINTR;
		struct pollfd pfd = {.fd = wfd, .events = 0};
		if (poll(&pfd, 1, delay) > 0 && (pfd.revents & POLLERR)) {
			if (ioctl(wfd, FIONREAD, &n) < 0 || n <= 0)
				return 0;
			*unread = (size_t)n;
			return 1;
		}
		if (delay < 50)
			delay *= 2;
	}
}
