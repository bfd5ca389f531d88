/* Fuzz target: one sd_notify datagram as `kite serve` receives it on its
 * NOTIFY_SOCKET (bytes from the supervised server: untrusted). */
#include <stdint.h>
#include <string.h>

#include "notify_msg.h"

const char *const fuzz_seeds[] = {
	"READY=1",
	"READY=1\nSTATUS=serving 42 requests",
	"STOPPING=1\n",
	"RELOADING=1\nMONOTONIC_USEC=123456\nSTATUS=reloading",
	"MAINPID=4242\nWATCHDOG=1\nERRNO=2\nFDSTORE=1\nFDNAME=x",
	"STATUS=\x01\x7f\xff tabs\tand bytes",
	"=1\nREADY\nready=1\nREADY=11\n\n\n",
	"STATUS=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	NULL,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct notify_msg m;
	memset(&m, 0xa5, sizeof m);
	if (notify_msg_parse((const char *)data, size, &m) == 0) {
		/* The contract: status is NUL-terminated within its buffer and
		 * holds printable ASCII only; flags are 0 or 1. */
		size_t n = strnlen(m.status, sizeof m.status);
		if (n >= sizeof m.status)
			__builtin_trap();
		for (size_t i = 0; i < n; i++)
			if (m.status[i] < 0x20 || m.status[i] > 0x7e)
				__builtin_trap();
		if ((m.ready | m.stopping | m.reloading | m.has_status) & ~1)
			__builtin_trap();
		if (!m.has_status && n)
			__builtin_trap();
	}
	return 0;
}
