/* Fuzz target: one line of /proc/net/route text. */
#include <stdint.h>
#include <string.h>

#include "proc_net_route.h"

const char *const fuzz_seeds[] = {
	"Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT",
	"eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0",
	"eth0\t000200C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0",
	"veth-kite0\t000000E0\t00000000\t0001\t0\t0\t0\t000000F0\t0\t0\t0",
	"x\tFFFFFFFF\tFFFFFFFF\tFFFF\t4294967295\t4294967295\t4294967295\tFFFFFFFF",
	NULL,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct route_entry e;
	if (proc_net_route_parse_line((const char *)data, size, &e) == 0) {
		size_t n = strnlen(e.iface, sizeof e.iface);
		if (n == 0 || n > ROUTE_IFACE_MAX)
			__builtin_trap();
	}
	return 0;
}
