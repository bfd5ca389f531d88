/* kite statsd: the datagram sockets (UDP, Unix abstract name, Unix path)
 * and reading them into the metric table. Each batch read also measures
 * how long datagrams were left waiting while the loop did other work
 * (statsd_health.dgram_gap_max): from the later of the previous batch's
 * end on that socket and the kernel's arrival time of the batch's first
 * datagram (SO_TIMESTAMPNS) to the read. */
#ifndef KITE_CLI_STATSD_INGEST_H
#define KITE_CLI_STATSD_INGEST_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "statsd.h"

#define INGEST_BATCH 64      /* datagrams per recvmmsg call */
#define INGEST_DGRAM_MAX 65536
#define INGEST_MAX_SOCKS 3

struct statsd_ingest {
	int fd[INGEST_MAX_SOCKS];
	int n;
	uint32_t kernel_drops[INGEST_MAX_SOCKS]; /* SO_RXQ_OVFL running totals */
	int64_t batch_end_ns[INGEST_MAX_SOCKS];  /* CLOCK_MONOTONIC, 0: none yet */
	bool pending[INGEST_MAX_SOCKS];          /* the last read left datagrams */
	char unix_path[108];  /* the path socket, "" if none */
	ino_t unix_path_ino;  /* the file we bound, 0 if none */
	struct mmsghdr msgs[INGEST_BATCH];
	struct iovec iov[INGEST_BATCH];
	char (*bufs)[INGEST_DGRAM_MAX];
	char ctl[INGEST_BATCH][CMSG_SPACE(sizeof(uint32_t)) +
			       CMSG_SPACE(sizeof(struct timespec))];
};

/* Bind the sockets c asks for (--udp, --unix, --unix-path); 0, or -1
 * (logged; what was opened is closed by statsd_ingest_close). */
int statsd_ingest_open(struct statsd_ingest *in, const struct statsd_config *c);

/* Read socket i into t: up to max_batches recvmmsg calls, stopping when
 * the socket is empty. Truncated datagrams and kernel drops are counted in
 * t's health. */
void statsd_ingest_read(struct statsd_ingest *in, int i, struct statsd_table *t,
			int max_batches);

/* Close every socket; the path socket's file goes if it is still ours. */
void statsd_ingest_close(struct statsd_ingest *in);

#endif
