/* Fuzz target: the small /proc text parsers (src/proc_text.c). The first
 * byte picks the parser ('s' socket link, 'd' /proc/net/dev line, any other
 * two numbers), the rest is its input. */
#include <stdint.h>
#include <string.h>

#include "proc_text.h"

const char *const fuzz_seeds[] = {
	"ssocket:[31337]",
	"ssocket:[18446744073709551615]",
	"d  eth0: 3573009169 36293715    0    0    0     0          0         0",
	"dInter-|   Receive                                                |  Transmit",
	"n1\t0\n",
	"n-2147483648 2147483647",
	NULL,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	const char *s = (const char *)data + 1;
	size_t n = size - 1;
	unsigned long ino;
	char name[PROC_IFNAME_MAX + 1];
	long a, b;
	switch (data[0]) {
	case 's':
		proc_fd_socket_inode(s, n, &ino);
		break;
	case 'd':
		if (proc_net_dev_name(s, n, name) == 0) {
			size_t len = strnlen(name, sizeof name);
			if (len == 0 || len > PROC_IFNAME_MAX)
				__builtin_trap();
		}
		break;
	default:
		proc_two_numbers(s, n, &a, &b);
	}
	return 0;
}
