/* A small HTTP/1.1 server and client for the kite serve tests and bench.
 *
 * Server (how kite runs it):
 *   serve_worker [--ready-delay-file F] [--inetd]
 *   - with LISTEN_FDS: checks LISTEN_PID == getpid() (exit 3 if not), serves
 *     every stream fd from 3, echoes on datagram fds;
 *   - with KITE_HANDOFF_FD: takes connections with kite_handoff_accept();
 *   - with --inetd: one request on stdin/stdout.
 *   Sends READY=1 to NOTIFY_SOCKET after the delay read from F (milliseconds,
 *   "never", or "hold": until F says something else). A hand-off worker that is given a connection before it said
 *   READY=1 marks its answers "early=1". GET /crash exits 42 at once.
 *   SIGTERM: stop accepting (hand-off: take what is queued until -EPIPE),
 *   finish the requests already accepted, exit 0.
 *   Answer body: "pid=P gen=G early=E fds=N names=... peer=..." on one line.
 *
 * Client (the tests' load):
 *   serve_worker client TARGET COUNT SECONDS [PATH]
 *   TARGET: HOST:PORT (IPv4 numeric), [V6]:PORT, unix:@NAME, unix:/PATH,
 *   udp:HOST:PORT. Sequential requests, one connection each, until COUNT,
 *   SECONDS or SIGTERM; prints "requests=N failed=F early=E max_ms=M
 *   pids=K last=BODY" and exits 1 if any failed. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "kite/handoff.h"

#define MAX_CONN 1024
#define BUF 4096

struct conn {
	int fd;
	size_t len;
	int served;      /* answers given on it */
	int early;
	char peer[96];
	char buf[BUF];
};

static int ready_sent;
static char names_env[256];
static int nfds_env;

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void notify(const char *text)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || !*path)
		return;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	size_t n = strlen(path);
	if (n >= sizeof a.sun_path)
		return;
	memcpy(a.sun_path, path, n);
	if (a.sun_path[0] == '@')
		a.sun_path[0] = 0;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	sendto(fd, text, strlen(text), 0, (struct sockaddr *)&a,
	       (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n));
	close(fd);
}

/* -1: never; -2: "hold" (ask again later); else milliseconds. */
static long ready_delay(const char *file)
{
	if (!file)
		return 0;
	FILE *f = fopen(file, "r");
	if (!f)
		return 0;
	char line[64] = "";
	if (!fgets(line, sizeof line, f))
		line[0] = 0;
	fclose(f);
	if (!strncmp(line, "never", 5))
		return -1;
	if (!strncmp(line, "hold", 4))
		return -2;
	return strtol(line, NULL, 10);
}

static void answer(struct conn *c, int out_fd)
{
	char body[512], resp[768];
	const char *gen = getenv("KITE_SERVE_GENERATION");
	const char *ra = getenv("REMOTE_ADDR"), *ru = getenv("REMOTE_UID");
	int blen = snprintf(body, sizeof body,
			    "pid=%d gen=%s early=%d fds=%d names=%s peer=%s remote=%s\n",
			    (int)getpid(), gen ? gen : "-", c->early, nfds_env,
			    names_env[0] ? names_env : "-", c->peer[0] ? c->peer : "-",
			    ra ? ra : ru ? ru : "-");
	int close_after = strcasestr(c->buf, "connection: close") != NULL;
	int n = snprintf(resp, sizeof resp,
			 "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
			 "Content-Length: %d\r\n%s\r\n%s",
			 blen, close_after ? "Connection: close\r\n" : "", body);
	if (write(out_fd, resp, (size_t)n) != n)
		close_after = 1;
	c->served++;
	c->len = 0;
	if (close_after)
		c->fd = -c->fd - 2; /* mark for close */
}

/* Read what is there; answer a complete request. Returns 0 while the
 * connection stays open, -1 when it is to be closed. */
static int conn_input(struct conn *c)
{
	for (;;) {
		if (c->len >= BUF - 1)
			return -1;
		ssize_t n = recv(c->fd, c->buf + c->len, BUF - 1 - c->len, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n <= 0)
			return -1;
		c->len += (size_t)n;
		c->buf[c->len] = 0;
		if (strstr(c->buf, "\r\n\r\n")) {
			if (!strncmp(c->buf, "GET /crash", 10))
				_exit(42);
			answer(c, c->fd);
			if (c->fd < 0) {
				c->fd = -c->fd - 2;
				return -1;
			}
		}
	}
}

static int inetd_main(void)
{
	struct conn c = {.fd = 0};
	const char *dir = getenv("KITE_TEST_ACTIVE_DIR");
	char mine[512] = "";
	if (dir) {
		/* Count processes alive at once; the test checks --max-conns. */
		snprintf(mine, sizeof mine, "%s/%d", dir, (int)getpid());
		close(open(mine, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
		char cmd[600];
		snprintf(cmd, sizeof cmd, "n=$(ls %s | wc -l); m=$(cat %s.max 2>/dev/null || echo 0);"
			 " [ $n -gt $m ] && echo $n > %s.max; sleep 0.05", dir, dir, dir);
		if (system(cmd) < 0) {}
	}
	for (;;) {
		ssize_t n = read(0, c.buf + c.len, BUF - 1 - c.len);
		if (n <= 0)
			break;
		c.len += (size_t)n;
		c.buf[c.len] = 0;
		if (strstr(c.buf, "\r\n\r\n")) {
			answer(&c, 1);
			break;
		}
		if (c.len >= BUF - 1)
			break;
	}
	if (mine[0])
		unlink(mine);
	return 0;
}

static struct conn conns[MAX_CONN];

static void add_conn(int ep, int fd, int early, const char *peer)
{
	for (int i = 0; i < MAX_CONN; i++) {
		if (conns[i].fd > 0)
			continue;
		memset(&conns[i], 0, sizeof conns[i]);
		conns[i].fd = fd;
		conns[i].early = early;
		snprintf(conns[i].peer, sizeof conns[i].peer, "%s", peer);
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 1000u + (unsigned)i};
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
		return;
	}
	close(fd);
}

static void drop_conn(int ep, struct conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = 0;
}

static int server_main(const char *delay_file)
{
	int nfds = 0, handoff = kite_handoff_fd();
	const char *lp = getenv("LISTEN_PID"), *lf = getenv("LISTEN_FDS");
	if (handoff < 0 && lp && lf) {
		if (atol(lp) != (long)getpid()) {
			fprintf(stderr, "serve_worker: LISTEN_PID=%s is not my pid %d\n", lp,
				(int)getpid());
			return 3;
		}
		nfds = atoi(lf);
		const char *nm = getenv("LISTEN_FDNAMES");
		snprintf(names_env, sizeof names_env, "%s", nm ? nm : "");
		nfds_env = nfds;
	} else if (handoff < 0) {
		fprintf(stderr, "serve_worker: neither LISTEN_FDS nor %s\n", KITE_HANDOFF_ENV);
		return 4;
	}
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 1};
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
	long delay = ready_delay(delay_file);
	int64_t ready_at = delay == -1 ? -1 : mono_ms() + (delay < 0 ? 50 : delay);
	int hold = delay == -2;
	int stopping = 0, sources = 0;

	/* The sources are watched only once we are ready, except a hand-off
	 * socket: watching it early is how we catch kite handing us work
	 * before READY=1. */
	if (handoff >= 0) {
		ev.data.u32 = 2;
		epoll_ctl(ep, EPOLL_CTL_ADD, handoff, &ev);
		sources = 1;
	}
	for (;;) {
		if (hold && !ready_sent && mono_ms() >= ready_at) {
			/* "hold": READY=1 only once the test rewrites the file. */
			hold = ready_delay(delay_file) == -2;
			if (hold)
				ready_at = mono_ms() + 50;
		}
		if (!ready_sent && !hold && ready_at >= 0 && mono_ms() >= ready_at) {
			for (int i = 0; i < nfds; i++) {
				/* kite passes blocking sockets, as systemd does. */
				fcntl(3 + i, F_SETFL, fcntl(3 + i, F_GETFL) | O_NONBLOCK);
				ev.data.u32 = 100u + (unsigned)i;
				epoll_ctl(ep, EPOLL_CTL_ADD, 3 + i, &ev);
			}
			sources += nfds;
			notify("READY=1\nSTATUS=serving");
			ready_sent = 1;
		}
		int open_conns = 0;
		for (int i = 0; i < MAX_CONN; i++)
			open_conns += conns[i].fd > 0;
		if (stopping && sources == 0 && open_conns == 0)
			return 0;
		int timeout = 1000;
		if (!ready_sent && ready_at >= 0) {
			int64_t left = ready_at - mono_ms();
			timeout = left < 0 ? 0 : (int)left;
		}
		struct epoll_event evs[64];
		int n = epoll_wait(ep, evs, 64, timeout);
		for (int k = 0; k < n; k++) {
			uint32_t id = evs[k].data.u32;
			if (id == 1) {
				struct signalfd_siginfo si;
				if (read(sfd, &si, sizeof si) > 0 && !stopping) {
					stopping = 1;
					notify("STOPPING=1");
					for (int i = 0; i < nfds && ready_sent; i++)
						epoll_ctl(ep, EPOLL_CTL_DEL, 3 + i, NULL);
					if (ready_sent)
						sources -= nfds;
					/* Idle keep-alive connections: close. */
					for (int i = 0; i < MAX_CONN; i++)
						if (conns[i].fd > 0 && conns[i].served && !conns[i].len)
							drop_conn(ep, &conns[i]);
				}
			} else if (id == 2) {
				/* Take everything queued. */
				struct kite_peer peer;
				int fd;
				while ((fd = kite_handoff_accept(handoff, &peer, 0)) >= 0) {
					char desc[96];
					if (peer.family == AF_UNIX)
						snprintf(desc, sizeof desc, "uid:%u", (unsigned)peer.uid);
					else
						snprintf(desc, sizeof desc, "%s", peer.host);
					add_conn(ep, fd, !ready_sent, desc);
				}
				if (fd == -EPIPE) {
					epoll_ctl(ep, EPOLL_CTL_DEL, handoff, NULL);
					sources--;
				}
			} else if (id >= 100 && id < 1000) {
				int lfd = 3 + (int)(id - 100), type = 0;
				socklen_t tl = sizeof type;
				getsockopt(lfd, SOL_SOCKET, SO_TYPE, &type, &tl);
				if (type == SOCK_DGRAM) {
					char b[512], r[600];
					struct sockaddr_storage ss;
					socklen_t sl = sizeof ss;
					ssize_t got = recvfrom(lfd, b, sizeof b, MSG_DONTWAIT,
							       (struct sockaddr *)&ss, &sl);
					if (got >= 0) {
						int rl = snprintf(r, sizeof r, "pid=%d udp=%zd\n",
								  (int)getpid(), got);
						sendto(lfd, r, (size_t)rl, 0, (struct sockaddr *)&ss, sl);
					}
					continue;
				}
				int fd;
				while ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
					add_conn(ep, fd, 0, "direct");
			} else if (id >= 1000) {
				struct conn *c = &conns[id - 1000];
				if (c->fd > 0 && conn_input(c) < 0)
					drop_conn(ep, c);
				else if (stopping && c->served && !c->len)
					drop_conn(ep, c);
			}
		}
	}
}

/* ---- client ---- */

static volatile sig_atomic_t stop_client;
static void on_term(int sig) { (void)sig; stop_client = 1; }

static int connect_target(const char *t, int *udp)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	socklen_t len;
	int family;
	*udp = 0;
	if (!strncmp(t, "udp:", 4)) {
		*udp = 1;
		t += 4;
	}
	if (!strncmp(t, "unix:", 5)) {
		struct sockaddr_un *a = (struct sockaddr_un *)&ss;
		size_t n = strlen(t + 5);
		if (n >= sizeof a->sun_path)
			return -1;
		a->sun_family = AF_UNIX;
		memcpy(a->sun_path, t + 5, n);
		if (a->sun_path[0] == '@')
			a->sun_path[0] = 0;
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
		family = AF_UNIX;
	} else {
		char host[64];
		const char *colon = strrchr(t, ':');
		if (!colon || (size_t)(colon - t) >= sizeof host)
			return -1;
		memcpy(host, t, (size_t)(colon - t));
		host[colon - t] = 0;
		int port = atoi(colon + 1);
		if (host[0] == '[') {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
			host[strlen(host) - 1] = 0;
			if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1)
				return -1;
			a->sin6_family = AF_INET6;
			a->sin6_port = htons((uint16_t)port);
			len = sizeof *a;
			family = AF_INET6;
		} else {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;
			if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
				return -1;
			a->sin_family = AF_INET;
			a->sin_port = htons((uint16_t)port);
			len = sizeof *a;
			family = AF_INET;
		}
	}
	int fd = socket(family, (*udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct timeval tv = {.tv_sec = 10};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void copy_text(char *out, size_t cap, const char *in)
{
	size_t n = strlen(in);
	if (n >= cap)
		n = cap - 1;
	memcpy(out, in, n);
	out[n] = 0;
}

/* One request; 0 and the body in out, or -1. */
static int one_request(const char *target, const char *path, char *out, size_t cap)
{
	int udp;
	int fd = connect_target(target, &udp);
	if (fd < 0)
		return -1;
	char req[256], buf[2048];
	int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: test\r\n"
			 "Connection: close\r\n\r\n", path);
	if (write(fd, req, (size_t)n) != n) {
		close(fd);
		return -1;
	}
	size_t len = 0;
	for (;;) {
		ssize_t r = read(fd, buf + len, sizeof buf - 1 - len);
		if (r < 0) {
			close(fd);
			return -1;
		}
		len += (size_t)r;
		if (r == 0 || len == sizeof buf - 1 || udp)
			break;
	}
	close(fd);
	buf[len] = 0;
	if (udp) {
		copy_text(out, cap, buf);
		return len ? 0 : -1;
	}
	char *body = strstr(buf, "\r\n\r\n");
	if (strncmp(buf, "HTTP/1.1 200 ", 13) || !body)
		return -1;
	copy_text(out, cap, body + 4);
	size_t bl = strlen(out);
	if (bl && out[bl - 1] == '\n')
		out[bl - 1] = 0;
	return 0;
}

static int client_main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: serve_worker client TARGET COUNT SECONDS [PATH]\n");
		return 100;
	}
	const char *target = argv[2], *path = argc > 5 ? argv[5] : "/";
	long count = atol(argv[3]);
	int64_t end = mono_ms() + atol(argv[4]) * 1000;
	struct sigaction sa = {.sa_handler = on_term};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	long done = 0, failed = 0, early = 0, max_ms = 0;
	int pids[64], npids = 0;
	char body[600] = "";
	while (done < count && mono_ms() < end && !stop_client) {
		int64_t t0 = mono_ms();
		char b[600];
		int r = one_request(target, path, b, sizeof b);
		long dt = (long)(mono_ms() - t0);
		if (r < 0 && stop_client)
			break; /* interrupted by our own stop signal: not a failure */
		done++;
		if (dt > max_ms)
			max_ms = dt;
		if (r < 0) {
			failed++;
			continue;
		}
		copy_text(body, sizeof body, b);
		if (strstr(b, "early=1"))
			early++;
		int pid = atoi(b + 4 * !strncmp(b, "pid=", 4)), seen = 0;
		for (int i = 0; i < npids; i++)
			seen |= pids[i] == pid;
		if (!seen && npids < 64)
			pids[npids++] = pid;
	}
	printf("requests=%ld failed=%ld early=%ld max_ms=%ld pids=%d last=%s\n", done,
	       failed, early, max_ms, npids, body);
	return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "client"))
		return client_main(argc, argv);
	const char *delay_file = NULL;
	int inetd = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--ready-delay-file") && i + 1 < argc)
			delay_file = argv[++i];
		else if (!strcmp(argv[i], "--inetd"))
			inetd = 1;
	}
	return inetd ? inetd_main() : server_main(delay_file);
}
