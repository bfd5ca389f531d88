#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "child.h"
#include "internal.h"
#include "proc_net_unix.h"
#include "rawpeer.h"
#include "shm.h"

struct find {
	char prefix[BUS_MAX + 8];
	size_t prefix_len;
	uint64_t *ids;
	int n, max;
};

static int find_one(const struct unix_entry *e, void *arg)
{
	struct find *f = arg;
	if (!e->abstract || !(e->flags & UNIX_FLAG_LISTENING) ||
	    e->type != SOCK_SEQPACKET || e->path_len != f->prefix_len + 16 ||
	    memcmp(e->path, f->prefix, f->prefix_len) || f->n == f->max)
		return 0;
	f->ids[f->n++] = strtoull(e->path + f->prefix_len, NULL, 16);
	return 0;
}

int raw_find_peers(const char *bus, uint64_t *ids, int max)
{
	struct find f = {.ids = ids, .max = max};
	snprintf(f.prefix, sizeof f.prefix, "kite/%s/", bus);
	f.prefix_len = strlen(f.prefix);
	int rc = ki_proc_net_unix_each(find_one, &f, NULL);
	return rc < 0 ? rc : f.n;
}

static char last_bus[BUS_MAX + 1];

/* The name @kite/<bus>/<id>, bound and listening in this process: a handle
 * believes a hello's id only from the process that owns that name. Kept
 * open for the process's life (a raw peer is a short-lived child). */
int raw_own_id(const char *bus, uint64_t id)
{
	int l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (l < 0)
		return -errno;
	struct sockaddr_un sa;
	socklen_t sl = ki_bus_address(bus, id, &sa);
	if (bind(l, (struct sockaddr *)&sa, sl) < 0 || listen(l, 256) < 0) {
		int e = errno;
		close(l);
		return e == EADDRINUSE ? 0 : -e;
	}
	return 0;
}

int raw_connect(const char *bus, uint64_t id)
{
	snprintf(last_bus, sizeof last_bus, "%s", bus);
	int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return -errno;
	struct sockaddr_un sa;
	socklen_t sl = ki_bus_address(bus, id, &sa);
	if (connect(sock, (struct sockaddr *)&sa, sl) < 0) {
		int e = errno;
		close(sock);
		return -e;
	}
	struct timeval tv = {2, 0};
	setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	return sock;
}

int raw_send(int sock, const void *buf, size_t len, const int *fds, int nfds)
{
	struct iovec iov = {(void *)(uintptr_t)buf, len};
	union {
		struct cmsghdr align;
		char space[CMSG_SPACE(sizeof(int) * 8)];
	} ctl;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (nfds > 0) {
		memset(&ctl, 0, sizeof ctl);
		mh.msg_control = ctl.space;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	return sendmsg(sock, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

int raw_hello(int sock, uint64_t my_id)
{
	if (last_bus[0])
		raw_own_id(last_bus, my_id);
	struct wire_msg m;
	ki_wire_init(&m, W_HELLO);
	m.id = my_id;
	m.a = WIRE_VERSION;
	return ki_wire_send(sock, &m, 0);
}

int raw_wake_keep(int sock, int *handle, struct waiter_page **page)
{
	/* The handle is the sending end of a datagram socket pair; the
	 * receiving end stays open (never read) for the process's life, so
	 * that sends to the handle queue up rather than fail. */
	int pair[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) < 0)
		return -EIO;
	int wfd = ki_shm_create("raw-waiter", 4096);
	if (wfd < 0 || ki_shm_seal(wfd, SEALS_WAITER) < 0) {
		close(pair[0]);
		close(pair[1]);
		if (wfd >= 0)
			close(wfd);
		return -EIO;
	}
	struct wire_msg m;
	ki_wire_init(&m, W_WAKE);
	m.fds[0] = pair[1];
	m.fds[1] = wfd;
	m.nfds = 2;
	int rc = ki_wire_send(sock, &m, 0);
	struct waiter_page *w = NULL;
	if (!rc && page && !(w = ki_shm_map(wfd, 4096, 1)))
		rc = -ENOMEM;
	close(wfd);
	if (rc || !handle) {
		close(pair[0]);
		close(pair[1]);
		if (w)
			munmap(w, 4096);
		return rc;
	}
	*handle = pair[1];
	if (page)
		*page = w;
	return 0;
}

int raw_wake(int sock)
{
	return raw_wake_keep(sock, NULL, NULL);
}

int raw_recv(int sock, struct wire_msg *m, int timeout_ms)
{
	uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
	for (;;) {
		int r = ki_wire_recv(sock, m);
		if (r != 0)
			return r;
		uint64_t now = mono_ms();
		if (now >= deadline)
			return 0;
		struct pollfd p = {.fd = sock, .events = POLLIN};
		poll(&p, 1, (int)(deadline - now));
	}
}

int raw_expect(int sock, struct wire_msg *m, uint16_t type, int timeout_ms)
{
	uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
	for (;;) {
		uint64_t now = mono_ms();
		int r = raw_recv(sock, m, now < deadline ? (int)(deadline - now) : 0);
		if (r != 1 || m->type == type)
			return r;
		for (int i = 0; i < m->nfds; i++)
			close(m->fds[i]);
	}
}

int raw_ring(const char *channel, uint32_t slots, uint32_t slot_size,
	     uint64_t publisher, struct ring_writer *w, size_t *bytes)
{
	if (ki_ring_geometry_valid(slots, slot_size, bytes))
		return -EINVAL;
	int fd = ki_shm_create("raw-ring", *bytes);
	if (fd < 0)
		return fd;
	void *base = ki_shm_map(fd, *bytes, 1);
	if (!base) {
		close(fd);
		return -ENOMEM;
	}
	ki_ring_writer_init(w, base, slots, slot_size, publisher, channel, 0);
	int rc = ki_shm_seal(fd, SEALS_RING);
	if (rc) {
		close(fd);
		return rc;
	}
	return fd;
}
