/* Fuzz target: one line of /proc/net/unix text. */
#include <stdint.h>
#include <string.h>

#include "proc_net_unix.h"

const char *const fuzz_seeds[] = {
	"Num       RefCount Protocol Flags    Type St Inode Path",
	"00000000a2d6892d: 00000003 00000000 00000000 0001 03  1074",
	"0000000012345678: 00000002 00000000 00010000 0005 01 31337 @kite/default/1/2",
	"0000000012345678: 00000002 00000000 00010000 0001 01 31338 /run/x.sock",
	"ffffffffffffffff: ffffffff ffffffff ffffffff ffff ff 18446744073709551615 @",
	"0: 0 0 0 0 0 0 ",
	NULL,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct unix_entry e;
	if (ki_proc_net_unix_parse_line((const char *)data, size, &e) == 0) {
		/* The contract: path is NUL-terminated and path_len is its length. */
		if (e.path_len > UNIX_ENTRY_PATH_MAX || e.path[e.path_len] != 0)
			__builtin_trap();
	}
	return 0;
}
