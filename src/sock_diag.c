/* One sock_diag netlink dump: send, then read replies until done. */
#include <errno.h>
#include <linux/netlink.h>
#include <stdlib.h>
#include <linux/sock_diag.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sock_diag.h"

int ki_sock_diag_frame(const void *buf, size_t len,
		       int (*msg)(const unsigned char *body, size_t blen, void *ctx),
		       void *ctx, unsigned *skipped, int *done)
{
	*done = 0;
	const unsigned char *p = buf;
	size_t off = 0;
	while (len - off >= sizeof(struct nlmsghdr)) {
		struct nlmsghdr h;
		memcpy(&h, p + off, sizeof h); /* buf need not be aligned */
		if (h.nlmsg_len < sizeof h || h.nlmsg_len > len - off)
			return -EBADMSG; /* the rest cannot be framed */
		const unsigned char *body = p + off + sizeof h;
		size_t blen = h.nlmsg_len - sizeof h;
		if (h.nlmsg_type == NLMSG_DONE) {
			*done = 1;
			return 0;
		}
		if (h.nlmsg_type == NLMSG_ERROR) {
			int32_t err;
			if (blen < sizeof err)
				return -EBADMSG;
			memcpy(&err, body, sizeof err);
			return err < 0 ? err : -EBADMSG;
		}
		int rc = h.nlmsg_type == SOCK_DIAG_BY_FAMILY ? msg(body, blen, ctx) : SOCK_DIAG_SKIP;
		if (rc == SOCK_DIAG_SKIP) {
			if (skipped)
				(*skipped)++;
		} else if (rc) {
			return rc;
		}
		/* Next message at the aligned length, never past len. */
		size_t step = NLMSG_ALIGN(h.nlmsg_len);
		if (step > len - off)
			break;
		off += step;
	}
	return 0;
}

const unsigned char *ki_sock_diag_attr(const unsigned char *attrs, size_t len,
				       unsigned type, size_t *plen)
{
	size_t off = 0;
	while (len - off >= sizeof(struct nlattr)) {
		struct nlattr a;
		memcpy(&a, attrs + off, sizeof a);
		if (a.nla_len < sizeof a || a.nla_len > len - off)
			return NULL;
		if (a.nla_type == type) {
			*plen = a.nla_len - sizeof a;
			return attrs + off + sizeof a;
		}
		size_t step = NLA_ALIGN(a.nla_len);
		if (step > len - off)
			return NULL;
		off += step;
	}
	return NULL;
}

int ki_sock_diag_dump(const void *req, size_t req_len,
		      int (*parse)(const void *buf, size_t len, void *ctx, int *done),
		      void *ctx)
{
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return -errno;
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	int rc = 0;
	if (sendto(fd, req, req_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	size_t cap = 1 << 16;
	void *buf = malloc(cap);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		struct sockaddr_nl from;
		socklen_t flen = sizeof from;
		ssize_t n = recvfrom(fd, buf, cap, MSG_TRUNC, (struct sockaddr *)&from, &flen);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		if (flen < sizeof from || from.nl_pid != 0)
			continue; /* only the kernel answers a dump */
		if ((size_t)n > cap || n == 0) {
			rc = -EBADMSG; /* truncated, or no NLMSG_DONE: not to be trusted */
			break;
		}
		int done = 0;
		rc = parse(buf, (size_t)n, ctx, &done);
		if (rc != 0 || done)
			break;
	}
	free(buf);
	close(fd);
	return rc;
}
