/* kite top --metrics HOST:PORT: /metrics over HTTP/1.0, one connection at
 * a time, each scrape answered from a fresh look at the bus. A client
 * gets HTTP_IO_MS to send its request and take the page: a stalled one
 * delays the next scrape by that much at most. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli.h"
#include "view.h"

#define HTTP_IO_MS 2000
#define HTTP_REQ_MAX 8192

/* "HOST:PORT" ("[::1]:9100" for IPv6): a listening socket, or minus the
 * exit code (already reported). */
static int listen_on(const char *addr)
{
	char host[256];
	const char *colon = strrchr(addr, ':');
	if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof host || !colon[1]) {
		return -usage_error("top", "bad --metrics '%s' (HOST:PORT)", addr);
	}
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = 0;
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host) - 2);
		host[strlen(host) - 2] = 0;
	}
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai;
	int rc = getaddrinfo(host, colon + 1, &hints, &ai);
	if (rc) {
		return -usage_error("top", "bad --metrics '%s': %s", addr, gai_strerror(rc));
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 16)) {
		fail(EXIT_SYSTEM, "top", "cannot listen on %s: %s", addr, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd < 0)
		return -EXIT_SYSTEM;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char h[NI_MAXHOST], p[NI_MAXSERV];
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 &&
	    getnameinfo((struct sockaddr *)&ss, sl, h, sizeof h, p, sizeof p,
			NI_NUMERICHOST | NI_NUMERICSERV) == 0)
		fprintf(stderr, "kite top: serving http://%s%s%s:%s/metrics\n",
			strchr(h, ':') ? "[" : "", h, strchr(h, ':') ? "]" : "", p);
	return fd;
}

static void send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n <= 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* the client left or stalled past HTTP_IO_MS */
		buf += n;
		len -= (size_t)n;
	}
}

static void answer(int fd, const char *bus, const char *pattern, int timeout_ms)
{
	struct timeval tv = {HTTP_IO_MS / 1000, (HTTP_IO_MS % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	char req[HTTP_REQ_MAX + 1];
	size_t got = 0;
	while (got < HTTP_REQ_MAX) {
		ssize_t n = recv(fd, req + got, HTTP_REQ_MAX - got, 0);
		if (n <= 0)
			return;
		got += (size_t)n;
		req[got] = 0;
		if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
			break;
	}
	req[got] = 0;
	const char *status = "200 OK", *type = "text/plain; version=0.0.4; charset=utf-8";
	char *page = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&page, &len);
	if (!m)
		return;
	struct obs_bus b;
	if (strncmp(req, "GET /metrics ", 13) && strncmp(req, "GET /metrics?", 13)) {
		status = "404 Not Found";
		type = "text/plain";
		fputs("kite top serves /metrics only\n", m);
	} else if (view_snapshot("top", bus, pattern, timeout_ms, &b) == 0) {
		view_metrics(m, &b);
		ki_observe_free(&b);
	} else {
		status = "503 Service Unavailable";
		fputs("kite top: cannot observe the bus\n", m);
	}
	fclose(m);
	char head[256];
	int hl = snprintf(head, sizeof head, "HTTP/1.0 %s\r\nContent-Type: %s\r\n"
			  "Content-Length: %zu\r\nConnection: close\r\n\r\n", status, type, len);
	send_all(fd, head, (size_t)hl);
	send_all(fd, page, len);
	free(page);
}

int top_serve_metrics(const char *addr, const char *bus, const char *pattern,
		      int timeout_ms)
{
	int lfd = listen_on(addr);
	if (lfd < 0)
		return -lfd;
	while (!top_stop) {
		struct pollfd p = {.fd = lfd, .events = POLLIN};
		if (poll(&p, 1, 1000) <= 0)
			continue;
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		answer(fd, bus, pattern, timeout_ms);
		close(fd);
	}
	close(lfd);
	return EXIT_DONE;
}
