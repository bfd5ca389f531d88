/* epoll + signalfd set-up shared by the daemons of the kite command. */
#include <errno.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "event_loop.h"

int event_loop_open(const int *signals, size_t n, uint64_t sig_data, int *epfd,
		    int *sigfd)
{
	sigset_t set;
	sigemptyset(&set);
	for (size_t i = 0; i < n; i++) {
		signal(signals[i], SIG_DFL);
		sigaddset(&set, signals[i]);
	}
	signal(SIGPIPE, SIG_IGN);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return -errno;
	int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	int rc = sfd < 0 ? -errno : event_watch(ep, sfd, EPOLLIN, sig_data);
	if (rc < 0) {
		if (sfd >= 0)
			close(sfd);
		close(ep);
		return rc;
	}
	*epfd = ep;
	*sigfd = sfd;
	return 0;
}

static int event_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = {.events = events, .data.u64 = data};
	return epoll_ctl(epfd, op, fd, &ev) < 0 ? -errno : 0;
}

int event_watch(int epfd, int fd, uint32_t events, uint64_t data)
{
	return event_ctl(epfd, EPOLL_CTL_ADD, fd, events, data);
}

int event_rewatch(int epfd, int fd, uint32_t events, uint64_t data)
{
	return event_ctl(epfd, EPOLL_CTL_MOD, fd, events, data);
}
