/* kite statsd: datagrams in. Every socket is read with recvmmsg in
 * batches, and only the count the call returned is used (the rest of the
 * batch holds stale bytes); SO_RXQ_OVFL brings the kernel's drop count
 * with each datagram, SO_TIMESTAMPNS its arrival time. */
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
	/* Arrival times, for the wait figure only: without them a wait is
	 * measured only while a socket is known to hold datagrams. */
	int one = 1;
	for (int i = 0; i < in->n; i++)
		setsockopt(in->fd[i], SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
	return 0;
}

static int64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The kernel's arrival time of datagram m (CLOCK_REALTIME ns), or -1. */
static int64_t arrival_ns(struct msghdr *m)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS &&
		    c->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
			struct timespec ts;
			memcpy(&ts, CMSG_DATA(c), sizeof ts);
			return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
		}
	return -1;
}

/* A batch was read from socket i at start (CLOCK_MONOTONIC ns), its first
 * datagram being m: how long datagrams waited for it is the time since the
 * later of the last batch's end and m's arrival (a datagram queued behind
 * others waited for them, not for the loop); the longest is kept. */
static void note_wait(struct statsd_ingest *in, int i, struct msghdr *m, int64_t start,
		      struct statsd_health *h)
{
	int64_t since = in->pending[i] ? in->batch_end_ns[i] : -1;
	int64_t arrived = arrival_ns(m);
	if (arrived >= 0) {
		/* Realtime to monotonic, both read now: a clock step between
		 * the arrival and now is the only error. */
		int64_t mono = start - (clock_ns(CLOCK_REALTIME) - arrived);
		since = mono > in->batch_end_ns[i] ? mono : in->batch_end_ns[i];
	}
	if (since < 0 || start < since)
		return;
	double wait = (double)(start - since) / 1e9;
	if (wait > h->dgram_wait_max)
		h->dgram_wait_max = wait;
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
		int64_t start = clock_ns(CLOCK_MONOTONIC);
		int n = recvmmsg(fd, in->msgs, INGEST_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0) {
			in->pending[i] = false;
			return;
		}
		note_wait(in, i, &in->msgs[0].msg_hdr, start, h);
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
		in->batch_end_ns[i] = clock_ns(CLOCK_MONOTONIC);
		/* A short batch emptied the socket; a full one may have left
		 * more, which waits from now on. */
		in->pending[i] = n == INGEST_BATCH;
		if (!in->pending[i])
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
