/* kite statsd: datagrams in. Every socket is read with recvmmsg in
 * batches, and only the count the call returned is used (the rest of the
 * batch holds stale bytes); SO_RXQ_OVFL brings the kernel's drop count
 * with each datagram. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "ingest.h"
#include "net.h"

int statsd_ingest_open(struct statsd_ingest *in, const struct statsd_config *c)
{
	in->bufs = malloc((size_t)INGEST_BATCH * INGEST_DGRAM_MAX);
	if (!in->bufs) {
		statsd_log("out of memory");
		return -1;
	}
	int fd;
	if (strcmp(c->udp, "off")) {
		if ((fd = statsd_bind_inet("udp", c->udp, SOCK_DGRAM, c->rcvbuf)) < 0)
			return -1;
		in->fd[in->n++] = fd;
	}
	ino_t none;
	if (strcmp(c->unix_name, "off") && c->unix_name[0]) {
		/* The default name is one per machine (network namespace): a
		 * second collector started with only --udp and --http of its
		 * own goes on without it. A name asked for must be had. */
		fd = statsd_bind_unix(c->unix_name, true, c->rcvbuf, &none, !c->unix_name_set);
		if (fd == -EADDRINUSE && !c->unix_name_set)
			statsd_log("unix @%s is taken (another kite statsd?): going on without "
				   "it; --unix NAME gives this one its own", c->unix_name);
		else if (fd < 0)
			return -1;
		else
			in->fd[in->n++] = fd;
	}
	if (c->unix_path[0]) {
		if ((fd = statsd_bind_unix(c->unix_path, false, c->rcvbuf,
					   &in->unix_path_ino, false)) < 0)
			return -1;
		memcpy(in->unix_path, c->unix_path, sizeof in->unix_path);
		in->fd[in->n++] = fd;
	}
	return 0;
}

void statsd_ingest_read(struct statsd_ingest *in, int i, struct statsd_table *t,
			int max_batches)
{
	int fd = in->fd[i];
	struct statsd_health *h = statsd_table_health(t);
	for (int b = 0; b < max_batches; b++) {
		for (int k = 0; k < INGEST_BATCH; k++) {
			in->iov[k] = (struct iovec){in->bufs[k], INGEST_DGRAM_MAX};
			in->msgs[k].msg_hdr = (struct msghdr){
				.msg_iov = &in->iov[k],
				.msg_iovlen = 1,
				.msg_control = in->ctl[k],
				.msg_controllen = sizeof in->ctl[k],
			};
		}
		int n = recvmmsg(fd, in->msgs, INGEST_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		/* Only the n messages the call filled: the rest hold stale bytes. */
		for (int k = 0; k < n; k++) {
			struct msghdr *m = &in->msgs[k].msg_hdr;
			for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
				if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL &&
				    c->cmsg_len >= CMSG_LEN(sizeof(uint32_t))) {
					uint32_t drops;
					memcpy(&drops, CMSG_DATA(c), sizeof drops);
					/* A running total per socket; it wraps at 2^32. */
					h->kernel_drops += (uint32_t)(drops - in->kernel_drops[i]);
					in->kernel_drops[i] = drops;
				}
			}
			if (m->msg_flags & MSG_TRUNC) {
				h->packets++;
				h->packets_truncated++;
				continue;
			}
			statsd_table_add_packet(t, in->bufs[k], in->msgs[k].msg_len);
		}
		if (n < INGEST_BATCH)
			return;
	}
}

void statsd_ingest_close(struct statsd_ingest *in)
{
	for (int i = 0; i < in->n; i++)
		close(in->fd[i]);
	in->n = 0;
	if (in->unix_path[0] && in->unix_path_ino) {
		/* Ours only if it is still the socket we bound. */
		struct stat st;
		if (lstat(in->unix_path, &st) == 0 && st.st_ino == in->unix_path_ino)
			unlink(in->unix_path);
	}
	free(in->bufs);
	in->bufs = NULL;
}
