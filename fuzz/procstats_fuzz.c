/* Fuzz target: the /proc parsers of kite hoststats, on the same bytes. */
#include <stdint.h>
#include <string.h>

#include "procstats.h"

const char *const fuzz_seeds[] = {
	"cpu  4966 0 2538 106610 475 0 54 10 0 0\ncpu0 1369 0 897 55033 30 0 19 2 0 0\n",
	"MemTotal:       24684084 kB\nMemFree:        24001364 kB\nMemAvailable:   24259740 kB\n",
	"Inter-|   Receive |  Transmit\n face |bytes    packets|bytes packets\n"
	"    lo:    3267      29    0    0    0     0          0         0     3267      29    0    0    0     0       0          0\n",
	"0.06 0.08 0.02 1/119 16312\n",
	"cpu 18446744073709551615 18446744073709551616\n",
	"x:",
	NULL,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct cpu_times cpu;
	struct mem_info mem;
	struct netdev net[4];
	struct load_avg load;
	parse_proc_stat(s, size, &cpu);
	parse_meminfo(s, size, &mem);
	int n = parse_net_dev(s, size, net, 4);
	if (n > 4)
		__builtin_trap();
	for (int i = 0; i < n; i++)
		if (strnlen(net[i].name, sizeof net[i].name) > NETDEV_NAME_MAX)
			__builtin_trap();
	parse_loadavg(s, size, &load);
	return 0;
}
