/* The small /proc text parsers: kernel-shaped inputs and hostile tables. */
#include <limits.h>
#include <string.h>

#include "check.h"
#include "proc_text.h"

static void socket_links(void **state)
{
	unsigned long ino = 0;
	const char *ok = "socket:[31337]";
	assert_int_equal(proc_fd_socket_inode(ok, strlen(ok), &ino), 0);
	assert_int_equal(ino, 31337);
	ok = "socket:[18446744073709551615]";
	assert_int_equal(proc_fd_socket_inode(ok, strlen(ok), &ino), 0);
	assert_true(ino == ULONG_MAX);
	static const char *const bad[] = {
		"", "socket:[", "socket:[]", "socket:[12", "socket:12]",
		"socket:[-1]", "socket:[+1]", "socket:[1 2]", "socket:[0x10]",
		"socket:[18446744073709551616]", "pipe:[1234]", "anon_inode:[eventfd]",
		"/dev/null", "Socket:[1]", "socket:[1]]", "socket:[[1]",
		NULL,
	};
	for (size_t i = 0; bad[i]; i++)
		if (proc_fd_socket_inode(bad[i], strlen(bad[i]), &ino) == 0)
			fail_msg("accepted \"%s\"", bad[i]);
	/* len bounds the read: "socket:[12]" cut before ']' is refused. */
	assert_int_equal(proc_fd_socket_inode("socket:[12]", 10, &ino), -1);
	static const char nul[] = "socket:[1\0" "2]";
	assert_int_equal(proc_fd_socket_inode(nul, sizeof nul - 1, &ino), -1);
}

static void dev_names(void **state)
{
	char name[PROC_IFNAME_MAX + 1];
	const char *l = "  wan7: 3573009169 36293715    0    0    0     0          0         0";
	assert_int_equal(proc_net_dev_name(l, strlen(l), name), 0);
	assert_string_equal(name, "wan7");
	l = "veth-kite-0123:0 0";
	assert_int_equal(proc_net_dev_name(l, strlen(l), name), 0);
	assert_string_equal(name, "veth-kite-0123");
	static const char *const bad[] = {
		"Inter-|   Receive                                                |  Transmit",
		" face |bytes    packets errs drop fifo frame compressed multicast|bytes",
		"", ":", "   : 1 2", "a-name-of-sixteen: 1", "et h0: 1", "eth/0: 1",
		"et\th0: 1", "no colon here",
		NULL,
	};
	for (size_t i = 0; bad[i]; i++)
		if (proc_net_dev_name(bad[i], strlen(bad[i]), name) == 0)
			fail_msg("accepted \"%s\"", bad[i]);
	static const char nul[] = "e\0h0: 1";
	assert_int_equal(proc_net_dev_name(nul, sizeof nul - 1, name), -1);
	/* The colon beyond len does not count. */
	assert_int_equal(proc_net_dev_name("wan7: 1", 4, name), -1);
}

static void two_numbers(void **state)
{
	long a = 0, b = 0;
	assert_int_equal(proc_two_numbers("1\t0\n", 4, &a, &b), 0);
	assert_int_equal(a, 1);
	assert_int_equal(b, 0);
	assert_int_equal(proc_two_numbers("0 2147483647", 12, &a, &b), 0);
	assert_int_equal(b, 2147483647L);
	assert_int_equal(proc_two_numbers("-5  7", 5, &a, &b), 0);
	assert_int_equal(a, -5);
	static const char *const bad[] = {
		"", "1", "1 ", " 1 2", "1 2 3", "1,2", "1 2x", "a b", "1 -", "--1 2",
		"1 99999999999999999999", "1\n2", "1 2\n\n",
		NULL,
	};
	for (size_t i = 0; bad[i]; i++)
		if (proc_two_numbers(bad[i], strlen(bad[i]), &a, &b) == 0)
			fail_msg("accepted \"%s\"", bad[i]);
	/* Cut inside the second number: what is left must still be whole. */
	assert_int_equal(proc_two_numbers("1 23", 3, &a, &b), 0);
	assert_int_equal(b, 2);
	assert_int_equal(proc_two_numbers("1 23", 2, &a, &b), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(socket_links),
		cmocka_unit_test(dev_names),
		cmocka_unit_test(two_numbers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
