/* The observer's side of introspection (see observe.h): find every handle
 * of a bus in /proc/net/unix, dial them all without waiting, ask each once,
 * and read the answers as they come, each within the time limit. A handle
 * that is stopped costs the limit once, not once per handle: all wait
 * together. What an answer says is bounded and checked; who answered is
 * the kernel's word (SO_PEERCRED of the listener we dialled). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"
#include "observe.h"
#include "proc_net_unix.h"
#include "unix_diag.h"

/* Links open at once: what RLIMIT_NOFILE leaves, less a margin. */
#define OBS_FD_MARGIN 32

static int grow(void *arrp, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 16;
	void *p = realloc(*(void **)arrp, ncap * size);
	if (!p)
		return -ENOMEM;
	*(void **)arrp = p;
	*cap = ncap;
	return 0;
}

struct scan {
	struct obs_bus *bus;
	size_t prefix_len;
	char prefix[BUS_MAX + 8];
	int err;
};

static int found(const struct unix_entry *e, void *arg)
{
	struct scan *s = arg;
	uint64_t id;
	if (!ki_bus_listener(e, s->prefix, s->prefix_len, &id))
		return 0;
	struct obs_bus *b = s->bus;
	for (size_t i = 0; i < b->n; i++)
		if (b->h[i].id == id)
			return 0; /* (a name shows once per listener) */
	if (grow(&b->h, &b->cap, b->n, sizeof *b->h)) {
		s->err = -ENOMEM;
		return 1;
	}
	struct obs_handle *h = &b->h[b->n++];
	memset(h, 0, sizeof *h);
	h->id = id;
	h->sock = -1;
	h->state = OBS_SILENT;
	return 0;
}

/* Dial the handle and ask; on failure the handle is marked unreachable. */
static void ask(const char *bus, struct obs_handle *h, uint64_t token)
{
	h->state = OBS_UNREACHABLE;
	int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return;
	struct sockaddr_un sa;
	socklen_t sl = ki_bus_address(bus, h->id, &sa);
	struct ucred cred;
	socklen_t cl = sizeof cred;
	if (connect(sock, (struct sockaddr *)&sa, sl) < 0 ||
	    getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) {
		close(sock);
		return;
	}
	h->pid = cred.pid;
	h->uid = cred.uid;
	struct wire_msg m;
	ki_wire_init(&m, W_INFO_REQ);
	m.id = token;
	if (ki_wire_send(sock, &m, 1) < 0) {
		close(sock);
		return;
	}
	h->sock = sock;
	h->state = OBS_SILENT;
}

static void hangup(struct obs_handle *h, enum obs_state state)
{
	h->state = state;
	if (h->sock >= 0)
		close(h->sock);
	h->sock = -1;
}

static int take_counter(struct obs_handle *h, const struct wire_msg *m)
{
	static const char *const names[] = {"published", "received", "lost", "refused",
					    "peers", "wakeups_sent", "events_dropped"};
	uint64_t *fields[] = {&h->stats.published, &h->stats.received, &h->stats.lost,
			      &h->stats.refused, &h->stats.peers, &h->stats.wakeups_sent,
			      &h->stats.events_dropped};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (!strcmp(m->text, names[i])) {
			*fields[i] = m->b;
			h->have_stats = 1;
			return 0;
		}
	return 0; /* a counter of a later version: not ours to show */
}

int ki_observe_item(struct obs_handle *h, const struct wire_msg *m, uint64_t token)
{
	if (m->type == W_HELLO) /* every handle greets a new link, once */
		return h->greeted++ ? -1 : 0;
	if (m->type != W_INFO || ++h->items > OBS_ITEMS_MAX)
		goto lie;
	switch (m->slot_count) {
	case INFO_HANDLE:
		if (m->id != h->id)
			goto lie; /* its name says otherwise, and the kernel binds names */
		h->everything = m->slot_size == 1;
		snprintf(h->command, sizeof h->command, "%s", m->reason);
		return 0;
	case INFO_COUNTER:
		return take_counter(h, m);
	case INFO_PUB: {
		if (kite_channel_valid(m->text) || grow(&h->pubs, &h->pubs_cap, h->npubs, sizeof *h->pubs))
			goto lie;
		struct obs_pub *p = &h->pubs[h->npubs++];
		snprintf(p->channel, sizeof p->channel, "%s", m->text);
		p->ring_id = m->id;
		p->head = m->a;
		p->bytes = m->b;
		p->slots = m->slot_size;
		return 0;
	}
	case INFO_PATTERN: {
		/* (No handle may hold more: kite_subscribe refuses them.) */
		if (kite_pattern_valid(m->text) || h->npatterns >= KITE_PATTERNS_MAX ||
		    grow(&h->patterns, &h->patterns_cap, h->npatterns, sizeof *h->patterns))
			goto lie;
		char *copy = strdup(m->text);
		if (!copy)
			goto lie;
		h->patterns[h->npatterns++] = copy;
		return 0;
	}
	case INFO_SUB: {
		if (kite_channel_valid(m->text) ||
		    grow(&h->subs, &h->subs_cap, h->nsubs, sizeof *h->subs))
			goto lie;
		struct obs_sub *s = &h->subs[h->nsubs++];
		snprintf(s->channel, sizeof s->channel, "%s", m->text);
		s->publisher = m->id;
		s->position = m->a;
		s->lost = m->b;
		s->lag = m->slot_size;
		/* (Only words we know reach a screen.) */
		snprintf(s->delivery, sizeof s->delivery, "%s",
			 !strcmp(m->reason, "reliable") ? "reliable" :
			 !strcmp(m->reason, "radio") ? "radio" : "?");
		return 0;
	}
	case INFO_END:
		if (m->id != token || m->a != h->items - 1)
			goto lie; /* not our question's answer, or items went missing */
		return 1;
	}
lie:
	return -1;
}

static int pub_order(const void *a, const void *b)
{
	const struct obs_pub *x = a, *y = b;
	return strcmp(x->channel, y->channel);
}

static int sub_order(const void *a, const void *b)
{
	const struct obs_sub *x = a, *y = b;
	int c = strcmp(x->channel, y->channel);
	return c ? c : (x->publisher > y->publisher) - (x->publisher < y->publisher);
}

static int pattern_order(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int ki_observe_finish(struct obs_handle *h)
{
	/* (qsort of NULL is undefined, even for no element.) */
	if (h->npubs)
		qsort(h->pubs, h->npubs, sizeof *h->pubs, pub_order);
	for (size_t i = 1; i < h->npubs; i++)
		if (!pub_order(&h->pubs[i - 1], &h->pubs[i]))
			return -1;
	if (h->npatterns)
		qsort(h->patterns, h->npatterns, sizeof *h->patterns, pattern_order);
	for (size_t i = 1; i < h->npatterns; i++)
		if (!strcmp(h->patterns[i - 1], h->patterns[i]))
			return -1;
	if (h->nsubs)
		qsort(h->subs, h->nsubs, sizeof *h->subs, sub_order);
	/* A stream whose ring was released while idle and made anew has two
	 * rings for a moment: one row, the losses of both. */
	size_t n = 0;
	for (size_t i = 0; i < h->nsubs; i++) {
		const struct obs_sub *m = &h->subs[i];
		struct obs_sub *s = n ? &h->subs[n - 1] : NULL;
		if (!s || sub_order(s, m)) {
			h->subs[n++] = *m;
			continue;
		}
		s->position = m->position > s->position ? m->position : s->position;
		s->lost = m->lost > UINT64_MAX - s->lost ? UINT64_MAX : s->lost + m->lost;
		s->lag = m->lag > s->lag ? m->lag : s->lag;
	}
	h->nsubs = n;
	return 0;
}

/* What a handle said before it fell silent or was cut is not its answer:
 * only its identity stays. */
static void forget_answer(struct obs_handle *h)
{
	free(h->pubs);
	free(h->subs);
	ki_strlist_free(&h->patterns, &h->npatterns);
	h->pubs = NULL;
	h->subs = NULL;
	h->npubs = h->pubs_cap = h->nsubs = h->subs_cap = h->patterns_cap = 0;
	h->have_stats = 0;
	memset(&h->stats, 0, sizeof h->stats);
	h->everything = 0;
	h->command[0] = 0; /* (read from /proc instead) */
}

/* Read what the handle sent so far, a batch at most: one that never stops
 * talking must not keep us from the others or past the time limit.
 * total counts the items of every handle of this observation. */
static void drain(struct obs_handle *h, uint64_t token, uint64_t started_us,
		  uint64_t *total)
{
	struct wire_msg m;
	for (int n = 0; n < OBS_DRAIN_BATCH; n++) {
		int r = ki_wire_recv(h->sock, &m);
		if (r == 0)
			return;
		if (r < 0) {
			hangup(h, OBS_CUT);
			return;
		}
		for (int i = 0; i < m.nfds; i++)
			close(m.fds[i]); /* nothing an answer carries has one */
		int t = ++*total > OBS_BUS_ITEMS_MAX ? -1 : ki_observe_item(h, &m, token);
		if (t == 1 && ki_observe_finish(h) == 0) {
			h->answer_us = ki_monotonic_ns() / 1000 - started_us;
			hangup(h, OBS_ANSWERED);
			return;
		}
		if (t != 0) {
			hangup(h, OBS_CUT);
			return;
		}
	}
}

/* Ask handles [from, to) and wait for them, at most timeout_ms. */
static int wave(const char *bus, struct obs_handle *h, size_t n, int timeout_ms,
		uint64_t token, uint64_t *total)
{
	struct pollfd *pfd = calloc(n ? n : 1, sizeof *pfd);
	if (!pfd)
		return -ENOMEM;
	uint64_t start_us = ki_monotonic_ns() / 1000;
	for (size_t i = 0; i < n; i++)
		ask(bus, &h[i], token);
	uint64_t deadline = start_us + (uint64_t)timeout_ms * 1000;
	for (;;) {
		size_t open = 0;
		for (size_t i = 0; i < n; i++)
			if (h[i].sock >= 0) {
				pfd[open].fd = h[i].sock;
				pfd[open].events = POLLIN;
				pfd[open].revents = 0;
				open++;
			}
		uint64_t now = ki_monotonic_ns() / 1000;
		if (!open || now >= deadline)
			break;
		int wait_ms = (int)((deadline - now + 999) / 1000);
		if (poll(pfd, open, wait_ms) < 0 && errno != EINTR)
			break;
		for (size_t i = 0, j = 0; i < n; i++) {
			if (h[i].sock < 0)
				continue;
			if (pfd[j++].revents)
				drain(&h[i], token, start_us, total);
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (h[i].sock >= 0)
			hangup(&h[i], OBS_SILENT);
		if (h[i].state != OBS_ANSWERED)
			forget_answer(&h[i]);
	}
	free(pfd);
	return 0;
}

static int by_pid(const void *a, const void *b)
{
	const struct obs_handle *x = a, *y = b;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

int ki_observe(const char *bus, int timeout_ms, struct obs_bus *out)
{
	memset(out, 0, sizeof *out);
	if (!bus || !*bus)
		bus = getenv("KITE_BUS");
	if (!bus || !*bus)
		bus = "default";
	if (!ki_bus_valid(bus))
		return -EINVAL;
	uint64_t start = ki_monotonic_ns();
	struct scan s = {.bus = out};
	snprintf(s.prefix, sizeof s.prefix, "kite/%s/", bus);
	s.prefix_len = strlen(s.prefix);
	/* The kernel's list of listeners; /proc/net/unix (every Unix socket
	 * of the machine) only where sock_diag is missing. */
	int rc = ki_unix_listeners_each(found, &s);
	if (rc < 0 && !s.err) {
		ki_observe_free(out);
		rc = ki_proc_net_unix_each(found, &s, NULL);
	}
	if (rc < 0 || s.err) {
		ki_observe_free(out);
		return rc < 0 ? rc : s.err;
	}
	/* Each handle asked holds one descriptor until it has answered. */
	struct rlimit rl = {0};
	size_t batch = 1024;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		batch = rl.rlim_cur > 2 * OBS_FD_MARGIN ? rl.rlim_cur - OBS_FD_MARGIN : OBS_FD_MARGIN;
	uint64_t token = start ^ ((uint64_t)getpid() << 32) ^ 0x6b697465; /* any nonzero */
	uint64_t total = 0; /* items of all handles */
	for (size_t i = 0; i < out->n; i += batch) {
		size_t n = out->n - i < batch ? out->n - i : batch;
		if ((rc = wave(bus, out->h + i, n, timeout_ms, token, &total)) < 0) {
			ki_observe_free(out);
			return rc;
		}
	}
	for (size_t i = 0; i < out->n; i++)
		if (out->h[i].pid > 0 && !out->h[i].command[0]) /* (0: never asked) */
			ki_read_cmdline(out->h[i].pid, out->h[i].command, sizeof out->h[i].command);
	if (out->n) /* (qsort of NULL is undefined, even for no element) */
		qsort(out->h, out->n, sizeof *out->h, by_pid);
	out->took_us = (ki_monotonic_ns() - start) / 1000;
	return 0;
}

void ki_observe_free(struct obs_bus *b)
{
	for (size_t i = 0; i < b->n; i++) {
		struct obs_handle *h = &b->h[i];
		if (h->sock >= 0)
			close(h->sock);
		free(h->pubs);
		free(h->subs);
		ki_strlist_free(&h->patterns, &h->npatterns);
	}
	free(b->h);
	memset(b, 0, sizeof *b);
}
