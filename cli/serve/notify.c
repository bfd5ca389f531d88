/* kite serve: the readiness socket. Each generation's processes get
 * NOTIFY_SOCKET=@kite-serve/NAME/notify-<random> (the sd_notify protocol).
 * SO_PASSCRED makes the kernel attach the sender's pid to every datagram;
 * only datagrams from a process kite started are believed, so another
 * local process cannot declare a generation ready. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "notify_msg.h"
#include "serve.h"

/* Notifications refused so far; only the first few are logged. */
static unsigned refused;

int serve_notify_open(struct serve *s)
{
	unsigned char rnd[8];
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
		return -errno;
	int n = snprintf(s->notify_name, sizeof s->notify_name,
			 "@kite-serve/%s/notify-", s->cfg.name);
	for (size_t i = 0; i < sizeof rnd; i++)
		n += snprintf(s->notify_name + n, sizeof s->notify_name - (size_t)n,
			      "%02x", rnd[i]);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	size_t len = strlen(s->notify_name);
	if (len >= sizeof a.sun_path)
		return -ENAMETOOLONG;
	memcpy(a.sun_path, s->notify_name, len);
	a.sun_path[0] = 0; /* abstract */
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0 ||
	    bind(fd, (struct sockaddr *)&a,
		 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	s->notify_fd = fd;
	return serve_watch(s, fd, EPOLLIN, EP_DATA(TAG_NOTIFY, 0));
}

/* Close descriptors a sender attached (FDSTORE=1 and the like): kite keeps
 * none, and must not leak them. Returns the sender's pid or -1. */
static pid_t take_cmsgs(struct msghdr *msg)
{
	pid_t pid = -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		if (c->cmsg_level != SOL_SOCKET)
			continue;
		if (c->cmsg_type == SCM_CREDENTIALS &&
		    c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
			struct ucred cr;
			memcpy(&cr, CMSG_DATA(c), sizeof cr);
			pid = cr.pid;
		} else if (c->cmsg_type == SCM_RIGHTS && c->cmsg_len >= CMSG_LEN(0)) {
			size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < n; i++) {
				int fd;
				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
				close(fd);
			}
		}
	}
	return pid;
}

static void refuse(struct serve *s, const char *why, pid_t pid)
{
	if (++refused <= 10)
		serve_log(s, "notification refused (%s, pid %d)%s", why, (int)pid,
			  refused == 10 ? "; further refusals not logged" : "");
}

void serve_notify_read(struct serve *s)
{
	for (;;) {
		char buf[NOTIFY_MSG_MAX + 1];
		union {
			char b[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * 16)];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = ctl.b, .msg_controllen = sizeof ctl.b};
		ssize_t n = recvmsg(s->notify_fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0)
			return;
		pid_t pid = take_cmsgs(&msg);
		struct generation *g;
		struct proc *p = pid > 0 ? serve_find_pid(s, pid, &g) : NULL;
		if (!p) {
			refuse(s, "not a process of this service", pid);
			continue;
		}
		struct notify_msg m;
		if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
		    notify_msg_parse(buf, (size_t)n, &m) < 0) {
			refuse(s, "malformed datagram", pid);
			continue;
		}
		if (m.has_status && strcmp(p->status, m.status)) {
			snprintf(p->status, sizeof p->status, "%s", m.status);
			serve_log(s, "generation %u: pid %d status: %s", g->id, (int)pid,
				  p->status);
		}
		if (m.stopping && !p->stopping) {
			p->stopping = 1;
			p->ready = 0; /* no more hand-offs to it */
			serve_log(s, "generation %u: pid %d is stopping", g->id, (int)pid);
		}
		if (m.ready && !m.stopping && !p->stopping)
			serve_proc_ready(s, g, p);
	}
}
