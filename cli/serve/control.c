/* kite serve: the control socket "@kite-serve/UID/NAME/control" (abstract,
 * so no PID file and nothing stale after a crash; binding it also makes NAME
 * single-instance for its user). SOCK_SEQPACKET: one request, one or two
 * answers. Only the supervisor's own uid and root may talk to it
 * (SO_PEERCRED); abstract names have no permissions, so a client believes
 * only a holder of its own uid or root's, and a name bound first by another
 * uid is reported as squatted.
 *
 * Answers start with a word: "ok", "error" or "refused". */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "sockets/socklist.h" /* user_name */
#include "serve.h"

static socklen_t control_addr(const char *name, uid_t owner, struct sockaddr_un *a)
{
	memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	int n = snprintf(a->sun_path + 1, sizeof a->sun_path - 1,
			 "kite-serve/%u/%s/control", (unsigned)owner, name);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

void serve_control_name(const char *name, uid_t owner, char *buf, size_t size)
{
	struct sockaddr_un a;
	socklen_t len = control_addr(name, owner, &a);
	snprintf(buf, size, "@%.*s", (int)(len - offsetof(struct sockaddr_un, sun_path) - 1),
		 a.sun_path + 1);
}

int serve_control_squatter(const struct ucred *cr, uid_t owner)
{
	return cr->uid != owner && cr->uid != 0;
}

int serve_control_squatted(const char *name, uid_t owner, const struct ucred *cr)
{
	char user[32], where[SERVE_NAME_MAX + 40];
	serve_control_name(name, owner, where, sizeof where);
	return fail(EXIT_NO, "serve", "the control socket of '%s' (%s) is held by "
		    "uid %u (user %s), pid %d, neither its owner nor root: squatted, "
		    "not trusting it; `kite who --kill %s` frees it", name, where,
		    (unsigned)cr->uid, user_name(cr->uid, user, sizeof user),
		    (int)cr->pid, where);
}

int serve_control_holder(const char *name, uid_t owner, struct ucred *cr)
{
	struct sockaddr_un a;
	socklen_t len = control_addr(name, owner, &a);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	int rc = 1;
	socklen_t cl = sizeof *cr;
	if (connect(fd, (struct sockaddr *)&a, len) < 0)
		rc = errno == ECONNREFUSED || errno == ENOENT ? 0 : -errno;
	else if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cr, &cl) < 0)
		rc = -errno;
	close(fd);
	/* Held, but too busy to say by whom (a full backlog): ours, so far. */
	if (rc == -EAGAIN) {
		*cr = (struct ucred){0, geteuid(), getegid()};
		rc = 1;
	}
	return rc;
}

int serve_control_open(struct serve *s)
{
	struct sockaddr_un a;
	socklen_t len = control_addr(s->cfg.name, geteuid(), &a);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&a, len) < 0 || listen(fd, 16) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	s->control_fd = fd;
	return serve_watch(s, fd, EPOLLIN, EP_DATA(TAG_CONTROL, 0));
}

void serve_control_reply(struct serve *s, int idx, const char *text, int close_it)
{
	struct control_client *c = &s->clients[idx];
	if (c->fd < 0)
		return;
	if (*text && send(c->fd, text, strlen(text), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		close_it = 1; /* the client is gone */
	if (close_it) {
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
		c->waiting = 0;
	}
}

void serve_control_accept(struct serve *s)
{
	for (;;) {
		int fd = accept4(s->control_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		struct ucred cr;
		socklen_t cl = sizeof cr;
		char msg[200];
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0) {
			close(fd);
			continue;
		}
		int refuse = cr.uid != 0 && cr.uid != geteuid();
		int idx = -1;
		if (refuse) {
			/* A refused client is held (apart from the owner's slots)
			 * until its request arrives: closing with the request
			 * unread would reset the connection, and the client would
			 * never read why. */
			int lo = SERVE_MAX_CLIENTS, hi = lo + SERVE_MAX_REFUSED;
			for (int i = lo; i < hi && idx < 0; i++)
				if (s->clients[i].fd < 0)
					idx = i;
			if (idx < 0) { /* all taken: drop the oldest */
				idx = lo;
				for (int i = lo; i < hi; i++)
					if (s->clients[i].close_at < s->clients[idx].close_at)
						idx = i;
				serve_control_reply(s, idx, "", 1);
			}
			char owner[32];
			user_name(geteuid(), owner, sizeof owner);
			if (geteuid() == 0)
				snprintf(msg, sizeof msg, "refused uid %u may not control '%s' "
					 "(only root)", (unsigned)cr.uid, s->cfg.name);
			else
				snprintf(msg, sizeof msg, "refused uid %u may not control '%s' "
					 "(only uid %u (%s) and root)", (unsigned)cr.uid,
					 s->cfg.name, (unsigned)geteuid(), owner);
			send(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT);
			if (++s->control_refused <= 10)
				serve_log(s, "control: refused pid %d uid %u%s", (int)cr.pid,
					  (unsigned)cr.uid, s->control_refused == 10 ?
					  "; further refusals not logged" : "");
		} else {
			for (int i = 0; i < SERVE_MAX_CLIENTS && idx < 0; i++)
				if (s->clients[i].fd < 0)
					idx = i;
			if (idx < 0) {
				const char *busy = "error busy: too many control connections";
				send(fd, busy, strlen(busy), MSG_NOSIGNAL | MSG_DONTWAIT);
				close(fd);
				continue;
			}
		}
		s->clients[idx].fd = fd;
		s->clients[idx].waiting = refuse ? 3 : 0;
		/* A request is one small message: wait for it a few seconds. */
		s->clients[idx].close_at = now_ms() + (refuse ? 1000 : 10000);
		if (serve_watch(s, fd, EPOLLIN, EP_DATA(TAG_CLIENT, idx)) < 0) {
			close(fd);
			s->clients[idx].fd = -1;
		}
	}
}

int64_t serve_control_deadline(struct serve *s)
{
	int64_t t = 0;
	for (int i = 0; i < SERVE_MAX_CLIENTS + SERVE_MAX_REFUSED; i++)
		if (s->clients[i].fd >= 0)
			t = serve_earliest(t, s->clients[i].close_at);
	return t;
}

void serve_control_timers(struct serve *s, int64_t now)
{
	for (int i = 0; i < SERVE_MAX_CLIENTS + SERVE_MAX_REFUSED; i++)
		if (s->clients[i].fd >= 0 && s->clients[i].close_at &&
		    now >= s->clients[i].close_at)
			serve_control_reply(s, i, "", 1);
}

static const char *state_name(const struct generation *g)
{
	switch (g->state) {
	case GEN_STARTING: return "starting";
	case GEN_UP: return "up";
	case GEN_STOPPING: return "stopping";
	default: return "free";
	}
}

/* A bounded text buffer: writes past the end are dropped, and counted. */
struct buf {
	char *p;
	size_t n, cap;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct buf *b, const char *fmt, ...)
{
	if (b->n >= b->cap)
		return;
	va_list ap;
	va_start(ap, fmt);
	int r = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
	va_end(ap);
	b->n = r < 0 ? b->cap : b->n + (size_t)r;
}

/* A JSON string literal (bytes from 0x80 up pass through as they are). */
static void put_json(struct buf *b, const char *text)
{
	put(b, "\"");
	for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
		if (*c == '"' || *c == '\\')
			put(b, "\\%c", *c);
		else if (*c < 0x20 || *c == 0x7f)
			put(b, "\\u%04x", *c);
		else
			put(b, "%c", *c);
	}
	put(b, "\"");
}

static const char *proc_state(const struct proc *p)
{
	return p->pid <= 0 ? "restarting" : p->ready ? "ready" : p->stopping ? "stopping"
									 : "starting";
}

/* Status as "key value" lines (stable for scripts: one "generation" line per
 * generation, one "process" line per process), or as one JSON object. */
static void status_text(struct serve *s, char *out, size_t cap, int json)
{
	static const char *const modes[] = {"activate", "inetd", "handoff"};
	struct buf b = {out, 0, cap - 1};
	const char *state = s->exiting ? "stopping" : s->reloading >= 0 ? "reloading" : "running";
	char user[32], control[SERVE_NAME_MAX + 40];
	user_name(geteuid(), user, sizeof user);
	serve_control_name(s->cfg.name, geteuid(), control, sizeof control);
	if (json) {
		put(&b, "ok {\"name\":");
		put_json(&b, s->cfg.name);
		put(&b, ",\"pid\":%d,\"uid\":%u,\"user\":", (int)getpid(), (unsigned)geteuid());
		put_json(&b, user);
		put(&b, ",\"control\":");
		put_json(&b, control);
		put(&b, ",\"mode\":\"%s\",\"state\":\"%s\",\"restarts\":%llu,\"listen\":[",
		    modes[s->cfg.mode], state, (unsigned long long)s->restarts);
		for (int i = 0; i < s->cfg.nlisten; i++) {
			put(&b, "%s{\"spec\":", i ? "," : "");
			put_json(&b, s->cfg.listen[i].text);
			put(&b, ",\"bound\":");
			put_json(&b, s->cfg.listen[i].bound);
			put(&b, ",\"fd\":%d}", 3 + i);
		}
		put(&b, "]");
	} else {
		put(&b, "ok name %s\npid %d\nuser %s %u\ncontrol %s\nmode %s\nstate %s\n",
		    s->cfg.name, (int)getpid(), user, (unsigned)geteuid(), control,
		    modes[s->cfg.mode], state);
		for (int i = 0; i < s->cfg.nlisten; i++)
			put(&b, "listen %s fd %d\n", s->cfg.listen[i].bound, 3 + i);
		put(&b, "restarts %llu\n", (unsigned long long)s->restarts);
	}
	if (s->cfg.mode == MODE_INETD)
		put(&b, json ? ",\"connections\":%d,\"max_conns\":%d,\"accepted\":%llu,\"limit_reached\":%llu"
			     : "connections %d\nmax-conns %d\naccepted %llu\nlimit-reached %llu\n",
		    s->inetd_count, s->cfg.max_conns, (unsigned long long)s->inetd_total,
		    (unsigned long long)s->inetd_deferred);
	if (s->cfg.mode == MODE_HANDOFF)
		put(&b, json ? ",\"handed\":%llu" : "handed %llu\n",
		    (unsigned long long)s->handed_total);
	if (json)
		put(&b, ",\"generations\":[");
	int first = 1;
	for (int i = 0; i < SERVE_MAX_GENS; i++) {
		struct generation *g = &s->gens[i];
		if (g->state == GEN_FREE)
			continue;
		if (json)
			put(&b, "%s{\"id\":%u,\"state\":\"%s\",\"current\":%s,\"processes\":[",
			    first ? "" : ",", g->id, state_name(g), i == s->current ? "true" : "false");
		else
			put(&b, "generation %u %s%s\n", g->id, state_name(g),
			    i == s->current ? " current" : "");
		first = 0;
		for (int w = 0; w < s->cfg.workers; w++) {
			struct proc *p = &g->procs[w];
			if (!json) {
				put(&b, "process %u %d %s handed %llu status %s\n", g->id,
				    (int)p->pid, proc_state(p), (unsigned long long)p->handed,
				    p->status[0] ? p->status : "-");
				continue;
			}
			put(&b, "%s{\"pid\":%d,\"state\":\"%s\",\"handed\":%llu,\"status\":",
			    w ? "," : "", (int)p->pid, proc_state(p), (unsigned long long)p->handed);
			put_json(&b, p->status);
			put(&b, "}");
		}
		if (json)
			put(&b, "]}");
	}
	if (json)
		put(&b, "]}\n");
	if (b.n >= b.cap) /* cut: say so rather than send half a line as whole */
		snprintf(out, cap, "error status larger than %zu bytes", cap);
}

void serve_control_read(struct serve *s, int idx)
{
	struct control_client *c = &s->clients[idx];
	char buf[64];
	ssize_t n = recv(c->fd, buf, sizeof buf - 1, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0 || c->waiting) { /* closed, or talking out of turn */
		serve_control_reply(s, idx, "", 1);
		return;
	}
	buf[n] = 0;
	c->close_at = 0; /* it asked: answers may take a while (reload) */
	if (!strcmp(buf, "status") || !strcmp(buf, "status json")) {
		static char text[SERVE_STATUS_MAX];
		status_text(s, text, sizeof text, buf[6] != 0);
		serve_control_reply(s, idx, text, 1);
	} else if (!strcmp(buf, "reload")) {
		serve_reload(s, idx);
	} else if (!strcmp(buf, "stop")) {
		c->waiting = 2; /* held open: it closes when we exit */
		serve_control_reply(s, idx, "ok stopping", 0);
		serve_stop(s, "asked to by kite serve stop");
	} else {
		serve_control_reply(s, idx, "error unknown request", 1);
	}
}

/* ---- the client side ---- */

int serve_control_call(const char *name, uid_t owner, const char *verb,
		       int64_t timeout_ms)
{
	struct sockaddr_un a;
	socklen_t len = control_addr(name, owner, &a);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(EXIT_SYSTEM, "serve", "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&a, len) < 0) {
		int e = errno;
		close(fd);
		if (e == ECONNREFUSED || e == ENOENT)
			return fail(EXIT_NO, "serve", "no supervisor named '%s' is running", name);
		return fail(EXIT_SYSTEM, "serve", "connect: %s", strerror(e));
	}
	/* Abstract names can be bound by anyone: believe only a supervisor of
	 * the name's owner or root, as the kernel reports it. */
	struct ucred cred;
	socklen_t cl = sizeof cred;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) {
		int e = errno;
		close(fd);
		return fail(EXIT_SYSTEM, "serve", "SO_PEERCRED: %s", strerror(e));
	}
	if (serve_control_squatter(&cred, owner)) {
		close(fd);
		return serve_control_squatted(name, owner, &cred);
	}
	if (send(fd, verb, strlen(verb), MSG_NOSIGNAL) < 0) {
		close(fd);
		return fail(EXIT_SYSTEM, "serve", "send: %s", strerror(errno));
	}
	int64_t deadline = now_ms() + timeout_ms;
	static char buf[SERVE_STATUS_MAX];
	int rc = -1, got = 0;
	while (rc < 0) {
		int64_t left = deadline - now_ms();
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, (int)(left > 1000 ? 1000 : left)) < 0) {
			if (left > 0 && errno == EINTR)
				continue;
			rc = left <= 0 ? fail(EXIT_TIMEOUT, "serve", "%s '%s': no answer after %lld ms",
					      verb, name, (long long)timeout_ms)
				       : fail(EXIT_SYSTEM, "serve", "poll: %s", strerror(errno));
			break;
		}
		if (!p.revents)
			continue;
		ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
		if (n <= 0) {
			/* Closed: after "ok stopping" that means it has exited. */
			if (got && !strcmp(verb, "stop")) {
				printf("%s: stopped\n", name);
				rc = EXIT_DONE;
			} else {
				rc = fail(EXIT_NO, "serve", "%s '%s': the supervisor closed "
					  "the connection", verb, name);
			}
			break;
		}
		buf[n] = 0;
		got = 1;
		if (!strncmp(buf, "ok", 2)) {
			const char *text = buf[2] == ' ' ? buf + 3 : buf + 2;
			if (strcmp(verb, "stop"))
				rc = EXIT_DONE;
			if (*text && strcmp(verb, "stop"))
				printf("%s%s", text, text[strlen(text) - 1] == '\n' ? "" : "\n");
		} else {
			int refused = !strncmp(buf, "refused ", 8);
			rc = fail(EXIT_NO, "serve", "%s '%s' %s: %s", verb, name,
				  refused ? "refused" : "failed", strchr(buf, ' ') ? strchr(buf, ' ') + 1 : buf);
		}
	}
	close(fd);
	return rc;
}
