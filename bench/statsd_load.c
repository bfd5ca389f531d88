/* Load generator for bench/statsd_bench.sh: statsd lines to 127.0.0.1 with
 * sendmmsg, paced to a target rate.
 *   statsd_load PORT LINES RATE [NAMES [PER_PACKET [KIND]]]
 * sends LINES lines "PREFIX<i % NAMES>:1|KIND" (KIND c or g; g uses
 * distinct names rss.g<i>), PER_PACKET lines per datagram, at RATE lines/s
 * (0 = as fast as it can), and prints "sent LINES SECONDS". Loopback only. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define PKT 1400

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: statsd_load PORT LINES RATE [NAMES [PER_PACKET [KIND]]]\n");
		return 100;
	}
	int port = atoi(argv[1]);
	long long total = atoll(argv[2]);
	double rate = atof(argv[3]);
	long names = argc > 4 ? atol(argv[4]) : 1000;
	int per = argc > 5 ? atoi(argv[5]) : 20;
	char kind = argc > 6 ? argv[6][0] : 'c';
	if (port <= 0 || port > 65535 || total <= 0 || names <= 0 || per <= 0 || per > 40)
		return 100;

	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	int sndbuf = 4 << 20;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
	struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
	if (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0) {
		perror("connect");
		return 111;
	}
	static char buf[BATCH][PKT];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	long long sent = 0, next = 0;
	double t0 = now();
	while (sent < total) {
		int n = 0;
		long long in_batch = 0;
		while (n < BATCH && sent + in_batch < total) {
			int len = 0;
			for (int l = 0; l < per && sent + in_batch < total; l++, in_batch++) {
				long long i = next++;
				if (kind == 'g')
					len += snprintf(buf[n] + len, PKT - (size_t)len,
							"rss.g%lld:1|g\n", i % names);
				else
					len += snprintf(buf[n] + len, PKT - (size_t)len,
							"bench.c%lld:1|c\n", i % names);
			}
			iov[n] = (struct iovec){buf[n], (size_t)len};
			msgs[n].msg_hdr = (struct msghdr){.msg_iov = &iov[n], .msg_iovlen = 1};
			n++;
		}
		int off = 0;
		while (off < n) {
			int r = sendmmsg(fd, msgs + off, (unsigned)(n - off), 0);
			if (r < 0) {
				if (errno == EINTR || errno == ENOBUFS || errno == EAGAIN)
					continue;
				perror("sendmmsg");
				return 111;
			}
			off += r;
		}
		sent += in_batch;
		if (rate > 0) {
			double due = t0 + (double)sent / rate;
			double wait = due - now();
			if (wait > 0) {
				struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
				nanosleep(&ts, NULL);
			}
		}
	}
	printf("sent %lld %.3f\n", sent, now() - t0);
	return 0;
}
