/* Pieces of the ops subcommands: signal names, socket address formatting
 * (hostile Unix names included), the socket list sorted and filtered. */
#include <arpa/inet.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>

/* cli.h before check.h: cmocka's fail() macro would mangle cli.h's fail(). */
#include "cli.h"
#include "sockets/socklist.h"
#include "check.h"

static void signals(void **state)
{
	assert_int_equal(parse_signal("TERM"), SIGTERM);
	assert_int_equal(parse_signal("sigterm"), SIGTERM);
	assert_int_equal(parse_signal("SIGHUP"), SIGHUP);
	assert_int_equal(parse_signal("kill"), SIGKILL);
	assert_int_equal(parse_signal("9"), 9);
	assert_int_equal(parse_signal("64"), 64);
	static const char *const bad[] = {"", "0", "65", "-1", "SIG", "TERMX",
					  "SIGSIGTERM", " TERM", "9x", "1e1", NULL};
	for (size_t i = 0; bad[i]; i++)
		if (parse_signal(bad[i]) != -1)
			fail_msg("accepted signal \"%s\"", bad[i]);
	char buf[16];
	assert_string_equal(signal_name(SIGTERM, buf, sizeof buf), "TERM");
	assert_string_equal(signal_name(40, buf, sizeof buf), "SIG40");
}

static void formatting(void **state)
{
	struct sock_row r = {.proto = SL_TCP, .family = AF_INET, .port = 8080};
	char buf[160];
	inet_pton(AF_INET, "127.0.0.1", r.addr);
	sock_format_local(&r, buf, sizeof buf);
	assert_string_equal(buf, "127.0.0.1:8080");
	r.family = AF_INET6;
	inet_pton(AF_INET6, "::1", r.addr);
	sock_format_local(&r, buf, sizeof buf);
	assert_string_equal(buf, "[::1]:8080");
	assert_string_equal(sock_netid(&r), "tcp");

	/* A hostile abstract name: control bytes never reach the terminal. */
	struct sock_row u = {.proto = SL_UNIX, .family = AF_UNIX, .type = SOCK_DGRAM,
			     .abstract = 1};
	const char evil[] = "x\033[2J\ny\x7f";
	memcpy(u.path, evil, sizeof evil);
	u.path_len = sizeof evil - 1;
	sock_format_local(&u, buf, sizeof buf);
	assert_string_equal(buf, "@x?[2J?y?");
	assert_string_equal(sock_netid(&u), "u_dgr");
	/* The longest name fits the buffer kite prints from; a small one cuts. */
	memset(u.path, 'a', 108);
	u.path[108] = 0;
	u.path_len = 108;
	sock_format_local(&u, buf, sizeof buf);
	assert_int_equal(strlen(buf), 109);
	sock_format_local(&u, buf, 8);
	assert_string_equal(buf, "@aaaaaa");
	struct sock_row unnamed = {.proto = SL_UNIX, .family = AF_UNIX};
	sock_format_local(&unnamed, buf, sizeof buf);
	assert_string_equal(buf, "*");
}

static int only_listening(const struct sock_row *r, void *arg)
{
	(void)arg;
	return r->listening;
}

static void live_listing(void **state)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_true(s >= 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(s, 1), 0);
	socklen_t len = sizeof sa;
	getsockname(s, (struct sockaddr *)&sa, &len);
	struct sock_list l = {0};
	assert_int_equal(sock_list_load(&l, SL_TCP, only_listening, NULL), 0);
	int found = 0;
	for (size_t i = 0; i < l.n; i++) {
		assert_true(l.rows[i].listening);
		if (i) /* sorted by port */
			assert_true(l.rows[i - 1].port <= l.rows[i].port);
		if (l.rows[i].port != ntohs(sa.sin_port) || l.rows[i].family != AF_INET)
			continue;
		found = 1;
		/* We hold it: our pid is among its owners. */
		int me = 0;
		for (int k = l.rows[i].owner; k >= 0; k = l.links[k].next)
			me |= l.procs[l.links[k].proc].pid == getpid();
		assert_true(me);
	}
	assert_true(found);
	sock_list_free(&l);
	close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(signals),
		cmocka_unit_test(formatting),
		cmocka_unit_test(live_listing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
