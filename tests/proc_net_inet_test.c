/* The /proc/net/{tcp,udp}[6] parser: well-formed lines from real kernels, a
 * table of hostile ones, and a live read that must find a socket we open. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "proc_net_inet.h"

static int parse(const char *line, struct inet_entry *e)
{
	return proc_net_inet_parse_line(line, strlen(line), e);
}

static void tcp4_listener(void **state)
{
	struct inet_entry e;
	assert_int_equal(parse("   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 "
			       "00:00000000 00000000     0        0 31337 1 "
			       "0000000000000000 100 0 0 10 0", &e), 0);
	assert_int_equal(e.family, AF_INET);
	uint32_t lo = htonl(INADDR_LOOPBACK);
	assert_memory_equal(e.local, &lo, 4);
	assert_int_equal(e.local_port, 8080);
	assert_int_equal(e.state, INET_STATE_LISTEN);
	assert_int_equal(e.uid, 0);
	assert_int_equal(e.inode, 31337);
}

static void tcp6_loopback(void **state)
{
	struct inet_entry e;
	assert_int_equal(parse("   1: 00000000000000000000000001000000:1F91 "
			       "00000000000000000000000000000000:0000 0A 00000000:00000000 "
			       "00:00000000 00000000  1000        0 77 1 0000000000000000 "
			       "100 0 0 10 0", &e), 0);
	assert_int_equal(e.family, AF_INET6);
	assert_memory_equal(e.local, &in6addr_loopback, 16);
	assert_int_equal(e.local_port, 8081);
	assert_int_equal(e.uid, 1000);
	assert_int_equal(e.inode, 77);
}

static void udp4_unconnected(void **state)
{
	struct inet_entry e;
	assert_int_equal(parse("  12: 00000000:0035 00000000:0000 07 00000000:00000000 "
			       "00:00000000 00000000   101        0 4242 2 "
			       "0000000000000000 0", &e), 0);
	assert_int_equal(e.state, INET_STATE_CLOSE);
	assert_int_equal(e.local_port, 53);
	assert_int_equal(e.uid, 101);
}

/* Each must be refused, never read past its end or overflow a field. */
static void hostile_lines(void **state)
{
	static const char *const bad[] = {
		"",
		"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when "
		"retrnsmt   uid  timeout inode",
		"   0:",
		"   0: 0100007F:1F90",
		"   0: 0100007F:1F90 00000000:0000",
		"   0: 0100007F:1F90 00000000:0000 0A",
		/* truncated right before the inode */
		"   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 "
		"00000000     0        0",
		/* address widths that are neither IPv4 nor IPv6 */
		"   0: 0100007:1F90 00000000:0000 0A 0:0 0:0 0 0 0 1",
		"   0: 0100007F00:1F90 00000000:0000 0A 0:0 0:0 0 0 0 1",
		/* mixed families */
		"   0: 0100007F:1F90 00000000000000000000000000000000:0000 0A 0:0 0:0 0 0 0 1",
		/* port too wide, too short, not hex */
		"   0: 0100007F:1F900 00000000:0000 0A 0:0 0:0 0 0 0 1",
		"   0: 0100007F:1F9 00000000:0000 0A 0:0 0:0 0 0 0 1",
		"   0: 0100007F:1G90 00000000:0000 0A 0:0 0:0 0 0 0 1",
		/* no colon in the address */
		"   0: 0100007F1F90 00000000:0000 0A 0:0 0:0 0 0 0 1",
		/* state of three digits */
		"   0: 0100007F:1F90 00000000:0000 0AA 0:0 0:0 0 0 0 1",
		/* uid beyond 32 bits, inode beyond 64 bits */
		"   0: 0100007F:1F90 00000000:0000 0A 0:0 0:0 0 4294967296 0 1",
		"   0: 0100007F:1F90 00000000:0000 0A 0:0 0:0 0 0 0 18446744073709551616",
		/* negative and signed numbers */
		"   0: 0100007F:1F90 00000000:0000 0A 0:0 0:0 0 -1 0 1",
		"   0: 0100007F:1F90 00000000:0000 0A 0:0 0:0 0 +1 0 1",
		/* slot without its colon, or only a colon */
		"   0 0100007F:1F90 00000000:0000 0A 0:0 0:0 0 0 0 1",
		"   : 0100007F:1F90 00000000:0000 0A 0:0 0:0 0 0 0 1",
		/* pairs missing a half */
		"   0: 0100007F:1F90 00000000:0000 0A 0: 0:0 0 0 0 1",
		"   0: 0100007F:1F90 00000000:0000 0A 0:0 :0 0 0 0 1",
		/* tabs are not the kernel's separator */
		"   0:\t0100007F:1F90 00000000:0000 0A 0:0 0:0 0 0 0 1",
		NULL,
	};
	struct inet_entry e;
	for (size_t i = 0; bad[i]; i++) {
		if (parse(bad[i], &e) == 0)
			fail_msg("accepted hostile line %zu: \"%s\"", i, bad[i]);
	}
	/* An embedded NUL ends nothing: within len it is just a bad digit. */
	static const char nul[] = "   0: 0100007F:1F90 00000000:0000 0A 0:0 0:0 0 0 0 1\0" "2";
	assert_int_equal(proc_net_inet_parse_line(nul, sizeof nul - 1, &e), -1);
	/* The length is the bound, not a NUL: a valid line cut one byte short
	 * of its inode's end must still parse (as inode 3, not 31). */
	const char *line = "   0: 0100007F:1F90 00000000:0000 0A 0:0 0:0 0 0 0 31";
	assert_int_equal(proc_net_inet_parse_line(line, strlen(line) - 1, &e), 0);
	assert_int_equal(e.inode, 3);
}

struct find {
	unsigned long inode;
	int found;
	struct inet_entry e;
};

static int find_cb(const struct inet_entry *e, void *arg)
{
	struct find *f = arg;
	if (e->inode != f->inode)
		return 0;
	f->found = 1;
	f->e = *e;
	return 1; /* stop: tests that a callback's value is returned */
}

static void live_listener(void **state)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s >= 0);
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(s, 4), 0);
	socklen_t sl = sizeof sa;
	assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &sl), 0);
	struct stat st;
	assert_int_equal(fstat(s, &st), 0);
	struct find f = {.inode = (unsigned long)st.st_ino};
	unsigned skipped = 99;
	assert_int_equal(proc_net_inet_each("/proc/net/tcp", find_cb, &f, &skipped), 1);
	assert_true(f.found);
	assert_int_equal(f.e.local_port, ntohs(sa.sin_port));
	assert_int_equal(f.e.state, INET_STATE_LISTEN);
	assert_int_equal(f.e.uid, getuid());
	assert_int_equal(skipped, 0);
	close(s);
	assert_int_equal(proc_net_inet_each("/proc/net/no-such", find_cb, &f, NULL), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tcp4_listener),
		cmocka_unit_test(tcp6_loopback),
		cmocka_unit_test(udp4_unconnected),
		cmocka_unit_test(hostile_lines),
		cmocka_unit_test(live_listener),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
