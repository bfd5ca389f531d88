/* The table and the JSON that kite ports and kite who print. */
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "socklist.h"

#define ADDR_MAX 160
#define CAP_SYS_PTRACE_BIT 19 /* linux/capability.h */

/* 1 if this process has CAP_SYS_PTRACE in its effective set. */
static int have_ptrace_cap(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[128];
	unsigned long long eff = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "CapEff: %llx", &eff) == 1)
			break;
	fclose(f);
	return (eff >> CAP_SYS_PTRACE_BIT) & 1;
}

const char *sock_hidden_why(void)
{
	if (geteuid() == 0 && !have_ptrace_cap())
		return "kite runs as root without CAP_SYS_PTRACE (a container's "
		       "default), which reading other users' /proc/PID/fd needs";
	if (geteuid() == 0) /* e.g. processes of another user namespace */
		return "even root may not read their /proc/PID/fd here";
	return "they belong to other users; run as root to see every owner";
}

static const char *unowned(const struct sock_list *l)
{
	return l->hidden ? "(not visible: no permission)" : "(no process)";
}

void sock_print_table(const struct sock_list *l, const char *cmd)
{
	char addr[ADDR_MAX], user[32];
	int width = 13;
	for (size_t i = 0; i < l->n; i++) {
		sock_format_local(&l->rows[i], addr, sizeof addr);
		int w = (int)strlen(addr);
		if (w > width)
			width = w;
	}
	printf("%-6s %-*s %7s %-10s %s\n", "PROTO", width, "LOCAL ADDRESS",
	       "PID", "USER", "COMMAND");
	for (size_t i = 0; i < l->n; i++) {
		const struct sock_row *r = &l->rows[i];
		sock_format_local(r, addr, sizeof addr);
		if (r->owner < 0) {
			/* The socket's uid (inet) is known even without a pid. */
			printf("%-6s %-*s %7s %-10s %s\n", sock_netid(r), width, addr,
			       l->hidden ? "?" : "-",
			       r->uid >= 0 ? user_name((uid_t)r->uid, user, sizeof user) : "?",
			       unowned(l));
			continue;
		}
		/* One line per process: greppable, like lsof. */
		for (int k = r->owner; k >= 0; k = l->links[k].next) {
			const struct sock_proc *p = &l->procs[l->links[k].proc];
			printf("%-6s %-*s %7d %-10s %s\n", sock_netid(r), width, addr,
			       (int)p->pid, user_name(p->uid, user, sizeof user),
			       p->comm);
		}
	}
	if (l->hidden)
		fprintf(stderr, "kite %s: %u processes could not be inspected (no "
			"permission: %s); sockets they may hold show PID '?'.\n",
			cmd, l->hidden, sock_hidden_why());
	if (l->skipped)
		fprintf(stderr, "kite %s: %u malformed lines in /proc/net skipped\n",
			cmd, l->skipped);
}

static const char *family_name(int family)
{
	return family == AF_INET ? "ipv4" : family == AF_INET6 ? "ipv6" : "unix";
}

static void json_cstr(const char *s)
{
	json_string(s, strlen(s));
}

static void json_row(const struct sock_list *l, const struct sock_row *r)
{
	char addr[ADDR_MAX], user[32];
	sock_format_local(r, addr, sizeof addr);
	printf("{\"proto\":\"%s\",\"netid\":\"%s\",\"family\":\"%s\",\"local\":",
	       r->proto == SL_TCP ? "tcp" : r->proto == SL_UDP ? "udp" : "unix",
	       sock_netid(r), family_name(r->family));
	json_cstr(addr);
	if (r->proto != SL_UNIX) {
		char dev[IF_NAMESIZE + 12];
		const char *d = sock_device(r, dev, sizeof dev);
		printf(",\"port\":%u,\"uid\":%ld,\"device\":", r->port, r->uid);
		if (d)
			json_cstr(d);
		else
			printf("null");
		if (r->family == AF_INET6)
			printf(",\"v6only\":%s", r->v6only < 0 ? "null" : r->v6only ? "true"
												  : "false");
	} else {
		printf(",\"abstract\":%s,\"path\":", r->abstract ? "true" : "false");
		json_string(r->path, r->path_len);
	}
	printf(",\"listening\":%s,\"inode\":%lu,\"owner\":\"%s\",\"processes\":[",
	       r->listening ? "true" : "false", r->inode,
	       r->owner >= 0 ? "visible" : l->hidden ? "hidden" : "none");
	for (int k = r->owner; k >= 0; k = l->links[k].next) {
		const struct sock_proc *p = &l->procs[l->links[k].proc];
		printf("%s{\"pid\":%d,\"uid\":%u,\"user\":", k == r->owner ? "" : ",",
		       (int)p->pid, (unsigned)p->uid);
		json_cstr(user_name(p->uid, user, sizeof user));
		printf(",\"command\":");
		json_cstr(p->comm);
		putchar('}');
	}
	printf("]}");
}

void sock_print_json(const struct sock_list *l)
{
	printf("{\"sockets\":[");
	for (size_t i = 0; i < l->n; i++) {
		if (i)
			putchar(',');
		putchar('\n');
		json_row(l, &l->rows[i]);
	}
	printf("\n],\"hidden_processes\":%u,\"skipped_lines\":%u}\n", l->hidden,
	       l->skipped);
}
