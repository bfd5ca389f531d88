/* Fuzz target: one line of /proc/net/tcp, tcp6, udp or udp6 text. */
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "proc_net_inet.h"

const char *const fuzz_seeds[] = {
	"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
	"   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31337 1 0000000000000000 100 0 0 10 0",
	"  12: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 4242 2 0000000000000000 0",
	"   1: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 77 1 0000000000000000 100 0 0 10 0",
	"4294967295: FFFFFFFF:FFFF FFFFFFFF:FFFF FF FFFFFFFF:FFFFFFFF FF:FFFFFFFF FFFFFFFF 4294967295 0 18446744073709551615",
	"0: 0:0 0:0 0 0:0 0:0 0 0 0 0",
	NULL,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct inet_entry e;
	if (proc_net_inet_parse_line((const char *)data, size, &e) == 0) {
		/* The contract: a known family, and a uid that fits uid_t. */
		if ((e.family != AF_INET && e.family != AF_INET6) ||
		    e.uid > 0xffffffffu || e.state > 0xff)
			__builtin_trap();
	}
	return 0;
}
