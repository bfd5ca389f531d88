/* kite serve --inetd: kite accepts each connection and runs COMMAND with
 * it as stdin and stdout. At most --max-conns run at once: at the limit
 * kite stops accepting, so further connections wait in the kernel's
 * backlog (they are not refused) until a process exits. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "handoff_send.h"
#include "serve.h"

void serve_listen_enable(struct serve *s, int on)
{
	if (s->cfg.mode == MODE_ACTIVATE || on == s->accepting)
		return;
	if (on && s->exiting)
		return;
	s->accepting = on;
	for (int i = 0; i < s->cfg.nlisten; i++) {
		if (on)
			serve_watch(s, s->listen_fds[i], EPOLLIN, EP_DATA(TAG_LISTEN, i));
		else
			epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->listen_fds[i], NULL);
	}
}

/* The per-connection environment: REMOTE_ADDR/REMOTE_PORT for IP peers,
 * the kernel-verified REMOTE_PID/REMOTE_UID/REMOTE_GID for Unix peers. */
static void remote_env(const struct kite_peer *peer, char vars[3][96],
		       const char *env[4])
{
	int k = 0;
	if (peer->family == AF_UNIX) {
		snprintf(vars[0], sizeof vars[0], "REMOTE_PID=%d", (int)peer->pid);
		snprintf(vars[1], sizeof vars[1], "REMOTE_UID=%u", (unsigned)peer->uid);
		snprintf(vars[2], sizeof vars[2], "REMOTE_GID=%u", (unsigned)peer->gid);
		k = peer->pid > 0 ? 3 : 0;
	} else if (peer->host[0]) {
		snprintf(vars[0], sizeof vars[0], "REMOTE_ADDR=%s", peer->host);
		snprintf(vars[1], sizeof vars[1], "REMOTE_PORT=%u", peer->port);
		k = 2;
	}
	for (int i = 0; i < k; i++)
		env[i] = vars[i];
	env[k] = NULL;
}

int serve_accept(struct serve *s, int li, struct sockaddr_storage *ss,
		 socklen_t *len)
{
	for (;;) {
		int conn = accept4(s->listen_fds[li], (struct sockaddr *)ss, len,
				   SOCK_CLOEXEC); /* blocking, as the receiver expects */
		if (conn >= 0)
			return conn;
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno != EAGAIN)
			serve_log(s, "accept on %s: %s", s->cfg.listen[li].bound,
				  strerror(errno));
		return -1;
	}
}

void serve_inetd_accept(struct serve *s, int li)
{
	for (int batch = 0; batch < 64 && s->inetd_count < s->cfg.max_conns &&
			    !s->exiting; batch++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof ss;
		int conn = serve_accept(s, li, &ss, &len);
		if (conn < 0)
			return;
		struct kite_peer peer;
		char vars[3][96];
		const char *env[4];
		handoff_peer_fill(conn, (struct sockaddr *)&ss, len, &peer);
		remote_env(&peer, vars, env);
		pid_t pid = serve_spawn(s, 0, -1, conn, env);
		close(conn);
		if (pid < 0) {
			serve_log(s, "cannot start %s: %s", s->cfg.argv[0], strerror((int)-pid));
			continue;
		}
		s->inetd[s->inetd_count++] = pid;
		s->inetd_total++;
	}
	if (s->inetd_count >= s->cfg.max_conns && s->accepting) {
		s->inetd_deferred++;
		serve_listen_enable(s, 0);
	}
}

int serve_inetd_reaped(struct serve *s, pid_t pid)
{
	for (int i = 0; i < s->inetd_count; i++) {
		if (s->inetd[i] != pid)
			continue;
		s->inetd[i] = s->inetd[--s->inetd_count];
		if (s->cfg.mode == MODE_INETD && !s->exiting)
			serve_listen_enable(s, 1);
		return 1;
	}
	return 0;
}
