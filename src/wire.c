/* Encoding and bounds-checked decoding of control records. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wire.h"


#define WIRE_RECORD_MAX (sizeof(struct wire_fixed) + KITE_CHANNEL_MAX + WIRE_REASON_MAX)

/* W_WAKE's first fd, W_RING's, W_LARGE's and W_RELIABLE's are checked by
 * their users. */
static const uint8_t fds_for_type[W_TYPE_MAX] = {
	[W_WAKE] = 2, [W_RING] = 1, [W_LARGE] = 1, [W_RELIABLE] = 1, [W_HANDOVERS] = 2,
};

void ki_wire_init(struct wire_msg *m, uint16_t type)
{
	memset(m, 0, sizeof *m);
	m->type = type;
	for (int i = 0; i < WIRE_MAX_FDS; i++)
		m->fds[i] = -1;
}

int ki_wire_send(int sock, const struct wire_msg *m, int dontwait)
{
	uint8_t buf[WIRE_RECORD_MAX];
	size_t tl = strnlen(m->text, KITE_CHANNEL_MAX);
	size_t rl = strnlen(m->reason, WIRE_REASON_MAX);
	struct wire_fixed f = {
		.type = m->type, .text_len = (uint16_t)tl, .reason_len = (uint16_t)rl,
		.nfds = (uint16_t)m->nfds, .slot_count = m->slot_count,
		.slot_size = m->slot_size, .id = m->id, .a = m->a, .b = m->b,
	};
	memcpy(buf, &f, sizeof f);
	memcpy(buf + sizeof f, m->text, tl);
	memcpy(buf + sizeof f + tl, m->reason, rl);
	struct iovec iov = {buf, sizeof f + tl + rl};
	union {
		struct cmsghdr align;
		char space[CMSG_SPACE(sizeof(int) * WIRE_MAX_FDS)];
	} ctl;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (m->nfds > 0) {
		memset(&ctl, 0, sizeof ctl);
		mh.msg_control = ctl.space;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)m->nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)m->nfds);
		memcpy(CMSG_DATA(c), m->fds, sizeof(int) * (size_t)m->nfds);
	}
	int flags = MSG_NOSIGNAL | (dontwait ? MSG_DONTWAIT : 0);
	for (;;) {
		ssize_t r = sendmsg(sock, &mh, flags);
		if (r >= 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

static void close_fds(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

int ki_wire_recv(int sock, struct wire_msg *m)
{
	uint8_t buf[WIRE_RECORD_MAX + 1];
	union {
		struct cmsghdr align;
		char space[CMSG_SPACE(sizeof(int) * 8)];
	} ctl;
	struct iovec iov = {buf, sizeof buf};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = ctl.space, .msg_controllen = sizeof ctl.space};
	ssize_t r;
	do
		r = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
	if (r == 0 && !(mh.msg_flags & MSG_CTRUNC) && mh.msg_controllen == 0)
		return -EPIPE; /* (an empty record reads the same: its sender's loss) */

	ki_wire_init(m, 0);
	int fds[8], nfds = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n && nfds < 8; i++)
			memcpy(&fds[nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
	}
	struct wire_fixed f;
	if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || (size_t)r < sizeof f)
		goto bad;
	memcpy(&f, buf, sizeof f);
	if (f.type == 0 || f.type >= W_TYPE_MAX || f.text_len > KITE_CHANNEL_MAX ||
	    f.reason_len > WIRE_REASON_MAX ||
	    (size_t)r != sizeof f + f.text_len + f.reason_len ||
	    (nfds != fds_for_type[f.type] && !(f.type == W_RING_END && nfds == 1) &&
	     !(f.type == W_RING && nfds == 2)) ||
	    f.nfds != nfds)
		goto bad;
	m->type = f.type;
	m->slot_count = f.slot_count;
	m->slot_size = f.slot_size;
	m->id = f.id;
	m->a = f.a;
	m->b = f.b;
	memcpy(m->text, buf + sizeof f, f.text_len);
	m->text[f.text_len] = 0;
	memcpy(m->reason, buf + sizeof f + f.text_len, f.reason_len);
	m->reason[f.reason_len] = 0;
	/* Embedded NULs would make the text mean something else than its length. */
	if (strlen(m->text) != f.text_len || strlen(m->reason) != f.reason_len)
		goto bad;
	m->nfds = nfds;
	for (int i = 0; i < nfds; i++)
		m->fds[i] = fds[i];
	return 1;
bad:
	close_fds(fds, nfds);
	ki_wire_init(m, 0);
	return -EPROTO;
}
