/* kite top --metrics HOST:PORT: /metrics over HTTP/1.0, each scrape
 * answered from a fresh look at the bus. Clients are served side by side
 * (up to HTTP_CLIENTS_MAX; later ones wait in the backlog), none ever
 * blocks us: each gets HTTP_IO_MS in all, from its connection to its last
 * byte, to send its request and take the page, and is dropped after. A
 * client that sends a byte a second, or reads one, or nothing, costs
 * others nothing. Requests that are whole at once share one look. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "view.h"

#define HTTP_IO_MS 2000
#define HTTP_REQ_MAX 8192
#define HTTP_CLIENTS_MAX 64

/* "HOST:PORT" ("[::1]:9100" for IPv6): a listening socket, or minus the
 * exit code (already reported). */
static int listen_on(const char *addr)
{
	char host[256];
	const char *colon = strrchr(addr, ':');
	uint64_t port;
	if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof host || !colon[1])
		return -usage_error("top", "bad --metrics '%s' (HOST:PORT)", addr);
	/* (getaddrinfo takes 99999 as 34463, and names from /etc/services.) */
	if (parse_u64(colon + 1, 65535, &port))
		return -usage_error("top", "bad --metrics '%s' (PORT: 0 to 65535)", addr);
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = 0;
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host) - 2);
		host[strlen(host) - 2] = 0;
	}
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV}, *ai;
	int rc = getaddrinfo(host, colon + 1, &hints, &ai);
	if (rc) {
		return -usage_error("top", "bad --metrics '%s': %s", addr, gai_strerror(rc));
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1;
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

struct client {
	int fd;          /* -1: a free place */
	int64_t due;     /* monotonic ms: done by then, or dropped */
	size_t got;      /* request bytes so far */
	int whole;       /* the request is whole: it waits for its page */
	char *out;       /* the response, once made */
	size_t out_len, sent;
	char req[HTTP_REQ_MAX + 1];
};

static void drop(struct client *c)
{
	close(c->fd);
	free(c->out);
	c->fd = -1;
	c->out = NULL;
}

/* Take what the client sent; its request is whole at an empty line, or
 * when HTTP_REQ_MAX bytes came. 0 to go on, -1 to drop it. */
static int take_request(struct client *c)
{
	ssize_t n = recv(c->fd, c->req + c->got, HTTP_REQ_MAX - c->got, 0);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	if (n == 0)
		return -1; /* it left before asking */
	c->got += (size_t)n;
	c->req[c->got] = 0;
	c->whole = c->got == HTTP_REQ_MAX || strstr(c->req, "\r\n\r\n") ||
		   strstr(c->req, "\n\n");
	return 0;
}

/* Send what the socket takes; 1 all sent, 0 to go on, -1 to drop. */
static int give_page(struct client *c)
{
	ssize_t n = send(c->fd, c->out + c->sent, c->out_len - c->sent, MSG_NOSIGNAL);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	c->sent += (size_t)n;
	return c->sent == c->out_len;
}

static int asks_metrics(const char *req)
{
	return !strncmp(req, "GET /metrics ", 13) || !strncmp(req, "GET /metrics?", 13);
}

/* The response to req (the metrics page is made once for all whose
 * requests are whole now: *page holds it, NULL until made). */
static void respond(struct client *c, char **page, size_t *page_len, int *page_ok,
		    const char *bus, const char *pattern, int timeout_ms)
{
	const char *status = "200 OK", *type = "text/plain; version=0.0.4; charset=utf-8";
	const char *body = "kite top serves /metrics only\n";
	size_t body_len = strlen(body);
	if (!asks_metrics(c->req)) {
		status = "404 Not Found";
		type = "text/plain";
	} else {
		if (!*page) {
			FILE *m = open_memstream(page, page_len);
			struct obs_bus b;
			if (!m)
				return; /* (out of memory: no answer, the client is dropped) */
			*page_ok = view_snapshot("top", bus, pattern, timeout_ms, &b) == 0;
			if (*page_ok) {
				view_metrics(m, &b);
				ki_observe_free(&b);
			} else {
				fputs("kite top: cannot observe the bus\n", m);
			}
			fclose(m);
		}
		status = *page_ok ? status : "503 Service Unavailable";
		body = *page;
		body_len = *page_len;
	}
	FILE *out = open_memstream(&c->out, &c->out_len);
	if (!out)
		return;
	fprintf(out, "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		"Connection: close\r\n\r\n", status, type, body_len);
	fwrite(body, 1, body_len, out);
	fclose(out);
}

static void accept_clients(int lfd, struct client *cl)
{
	for (size_t i = 0; i < HTTP_CLIENTS_MAX; i++) {
		if (cl[i].fd >= 0)
			continue;
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		memset(&cl[i], 0, offsetof(struct client, req));
		cl[i].fd = fd;
		cl[i].due = now_ms() + HTTP_IO_MS;
		cl[i].req[0] = 0;
	}
}

int top_serve_metrics(const char *addr, const char *bus, const char *pattern,
		      int timeout_ms)
{
	int lfd = listen_on(addr);
	if (lfd < 0)
		return -lfd;
	struct client *cl = calloc(HTTP_CLIENTS_MAX, sizeof *cl);
	if (!cl) {
		close(lfd);
		return fail(EXIT_SYSTEM, "top", "out of memory");
	}
	for (size_t i = 0; i < HTTP_CLIENTS_MAX; i++)
		cl[i].fd = -1;
	struct pollfd p[HTTP_CLIENTS_MAX + 1];
	size_t who[HTTP_CLIENTS_MAX + 1];
	while (!top_stop) {
		/* The listener only while there is room: later clients wait
		 * in the backlog rather than being taken and starved. */
		size_t n = 0, open = 0;
		int64_t now = now_ms(), wait = 1000;
		for (size_t i = 0; i < HTTP_CLIENTS_MAX; i++) {
			if (cl[i].fd < 0)
				continue;
			open++;
			p[n] = (struct pollfd){.fd = cl[i].fd, .events = cl[i].out ? POLLOUT : POLLIN};
			who[n++] = i;
			if (cl[i].due - now < wait)
				wait = cl[i].due - now > 0 ? cl[i].due - now : 0;
		}
		if (open < HTTP_CLIENTS_MAX)
			p[n++] = (struct pollfd){.fd = lfd, .events = POLLIN};
		if (poll(p, n, (int)wait) < 0 && errno != EINTR)
			break;
		char *page = NULL;
		size_t page_len = 0;
		int page_ok = 0;
		for (size_t j = 0; j < n; j++) {
			if (p[j].fd == lfd) {
				if (p[j].revents)
					accept_clients(lfd, cl);
				continue;
			}
			struct client *c = &cl[who[j]];
			int rc = 0;
			if (p[j].revents && !c->out && take_request(c) < 0)
				rc = -1;
			if (!rc && c->whole && !c->out) {
				respond(c, &page, &page_len, &page_ok, bus, pattern, timeout_ms);
				rc = c->out ? 0 : -1;
			}
			if (!rc && c->out)
				rc = give_page(c); /* (without waiting for POLLOUT: often it fits) */
			if (rc || now_ms() >= c->due)
				drop(c);
		}
		free(page);
	}
	for (size_t i = 0; i < HTTP_CLIENTS_MAX; i++)
		if (cl[i].fd >= 0)
			drop(&cl[i]);
	free(cl);
	close(lfd);
	return EXIT_DONE;
}
