/* Collect the sockets of this network namespace: TCP and UDP through
 * sock_diag netlink (the /proc/net tables if that is missing), Unix ones
 * from /proc/net/unix. */
#include <arpa/inet.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cli.h"
#include "inet_diag.h"
#include "proc_net_inet.h"
#include "proc_net_unix.h"
#include "socklist.h"

static struct sock_row *push(struct sock_list *l)
{
	if (grow_array(&l->rows, &l->cap, l->n, sizeof *l->rows, 64))
		return NULL;
	struct sock_row *r = &l->rows[l->n];
	memset(r, 0, sizeof *r);
	r->owner = -1;
	r->uid = -1;
	return r;
}

struct collect {
	struct sock_list *l;
	int proto;
	sock_filter keep;
	void *arg;
};

static int inet_cb(const struct inet_entry *e, void *arg)
{
	struct collect *c = arg;
	struct sock_row *r = push(c->l);
	if (!r)
		return -ENOMEM;
	r->proto = c->proto;
	r->family = e->family;
	r->type = c->proto == SL_TCP ? SOCK_STREAM : SOCK_DGRAM;
	r->state = e->state;
	/* ss -l: TCP in LISTEN; UDP bound and unconnected (TCP_CLOSE). */
	r->listening = c->proto == SL_TCP ? e->state == INET_STATE_LISTEN
					  : e->state == INET_STATE_CLOSE;
	memcpy(r->addr, e->local, 16);
	r->port = e->local_port;
	r->uid = (long)e->uid;
	r->inode = e->inode;
	r->ifindex = e->ifindex;
	r->v6only = e->v6only;
	if (c->keep && !c->keep(r, c->arg))
		return 0; /* not pushed: n unchanged */
	c->l->n++;
	return 0;
}

static int unix_cb(const struct unix_entry *e, void *arg)
{
	struct collect *c = arg;
	struct sock_row *r = push(c->l);
	if (!r)
		return -ENOMEM;
	r->proto = SL_UNIX;
	r->family = AF_UNIX;
	r->type = e->type;
	r->state = e->state;
	/* A listener, or a named datagram socket nobody connected (a server
	 * such as /dev/log): what ss -lx shows, minus the unnamed ones. */
	r->listening = (e->flags & UNIX_FLAG_LISTENING) ||
		       (e->type == SOCK_DGRAM && e->state == 1 &&
			(e->path_len || e->abstract));
	r->inode = e->inode;
	r->abstract = e->abstract;
	r->path_len = e->path_len;
	memcpy(r->path, e->path, e->path_len + 1);
	if (c->keep && !c->keep(r, c->arg))
		return 0;
	c->l->n++;
	return 0;
}

int sock_list_collect(struct sock_list *l, unsigned protos, sock_filter keep,
		      void *arg)
{
	/* TCP: listeners only (what every user of this list wants), so a
	 * busy host's established and TIME_WAIT sockets cost nothing. */
	static const struct {
		int proto, family, ipproto;
		uint32_t states;
		const char *path;
	} inet[] = {
		{SL_TCP, AF_INET, IPPROTO_TCP, 1u << INET_STATE_LISTEN, "/proc/net/tcp"},
		{SL_TCP, AF_INET6, IPPROTO_TCP, 1u << INET_STATE_LISTEN, "/proc/net/tcp6"},
		{SL_UDP, AF_INET, IPPROTO_UDP, ~0u, "/proc/net/udp"},
		{SL_UDP, AF_INET6, IPPROTO_UDP, ~0u, "/proc/net/udp6"},
	};
	for (size_t i = 0; i < sizeof inet / sizeof inet[0]; i++) {
		if (!(protos & (unsigned)inet[i].proto))
			continue;
		struct collect c = {l, inet[i].proto, keep, arg};
		unsigned bad = 0;
		size_t before = l->n;
		int rc = inet_diag_each(inet[i].family, inet[i].ipproto, inet[i].states,
					inet_cb, &c, &bad);
		if (rc == 0 || rc == -ENOMEM) {
			l->skipped += bad;
			if (rc < 0)
				return rc;
			continue;
		}
		/* No sock_diag here (or it failed midway): the /proc table. */
		l->n = before;
		bad = 0;
		rc = proc_net_inet_each(inet[i].path, inet_cb, &c, &bad);
		l->skipped += bad;
		/* No IPv6 in this kernel: nothing to list there. */
		if (rc == -ENOENT && strchr(inet[i].path, '6'))
			continue;
		if (rc < 0)
			return rc;
	}
	if (protos & SL_UNIX) {
		struct collect c = {l, SL_UNIX, keep, arg};
		unsigned bad = 0;
		int rc = ki_proc_net_unix_each(unix_cb, &c, &bad);
		l->skipped += bad;
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int row_cmp(const void *a, const void *b)
{
	const struct sock_row *x = a, *y = b;
	if (x->proto != y->proto)
		return x->proto - y->proto;
	if (x->proto != SL_UNIX) {
		if (x->port != y->port)
			return x->port < y->port ? -1 : 1;
		if (x->family != y->family)
			return x->family == AF_INET ? -1 : 1;
		return memcmp(x->addr, y->addr, 16);
	}
	if (x->abstract != y->abstract)
		return x->abstract - y->abstract;
	int c = strcmp(x->path, y->path);
	if (c)
		return c;
	return x->inode < y->inode ? -1 : x->inode > y->inode;
}

void sock_list_sort(struct sock_list *l)
{
	/* Before owners are linked: links point at procs, not rows. */
	if (l->n > 1)
		qsort(l->rows, l->n, sizeof *l->rows, row_cmp);
}

void sock_list_free(struct sock_list *l)
{
	free(l->rows);
	free(l->procs);
	free(l->links);
	memset(l, 0, sizeof *l);
}

const char *sock_netid(const struct sock_row *r)
{
	if (r->proto == SL_TCP)
		return "tcp";
	if (r->proto == SL_UDP)
		return "udp";
	switch (r->type) {
	case SOCK_STREAM: return "u_str";
	case SOCK_DGRAM: return "u_dgr";
	case SOCK_SEQPACKET: return "u_seq";
	default: return "unix";
	}
}

const char *sock_device(const struct sock_row *r, char *buf, size_t size)
{
	char name[IF_NAMESIZE];
	if (r->family == AF_UNIX || !r->ifindex)
		return NULL;
	if (if_indextoname(r->ifindex, name))
		snprintf(buf, size, "%s", name);
	else
		snprintf(buf, size, "%u", r->ifindex);
	return buf;
}

void sock_format_local(const struct sock_row *r, char *buf, size_t size)
{
	char a[INET6_ADDRSTRLEN + 2], dev[IF_NAMESIZE + 12], *d;
	if (r->family == AF_INET || r->family == AF_INET6) {
		if (r->family == AF_INET) {
			inet_ntop(AF_INET, r->addr, a, sizeof a);
		} else if (r->v6only == 0 && !memcmp(r->addr, &in6addr_any, 16)) {
			snprintf(a, sizeof a, "*"); /* takes IPv4 too, as ss shows */
		} else {
			a[0] = '[';
			inet_ntop(AF_INET6, r->addr, a + 1, sizeof a - 2);
			strcat(a, "]");
		}
		d = (char *)sock_device(r, dev, sizeof dev);
		snprintf(buf, size, "%s%s%s:%u", a, d ? "%" : "", d ? d : "", r->port);
		return;
	}
	if (!r->path_len && !r->abstract) {
		snprintf(buf, size, "*");
		return;
	}
	snprintf(buf, size, "%s%s", r->abstract ? "@" : "", r->path);
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

const char *user_name(uid_t uid, char *buf, size_t size)
{
	/* A tiny cache: a listing names few distinct users many times. */
	static struct {
		uid_t uid;
		char name[32];
	} cache[16];
	static size_t used;
	for (size_t i = 0; i < used; i++)
		if (cache[i].uid == uid) {
			snprintf(buf, size, "%s", cache[i].name);
			return buf;
		}
	struct passwd *pw = getpwuid(uid);
	if (pw && strlen(pw->pw_name) < sizeof cache[0].name)
		snprintf(buf, size, "%s", pw->pw_name);
	else
		snprintf(buf, size, "%u", (unsigned)uid);
	if (used < sizeof cache / sizeof cache[0]) {
		cache[used].uid = uid;
		snprintf(cache[used].name, sizeof cache[used].name, "%s", buf);
		used++;
	}
	return buf;
}
