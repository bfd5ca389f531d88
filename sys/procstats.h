/* Bounds-checked parsers of the /proc text `kite hoststats` publishes:
 * /proc/stat (the aggregate cpu line), /proc/meminfo, /proc/net/dev and
 * /proc/loadavg. Each takes a buffer and its length (no NUL needed) and
 * returns 0, or -1 when the text is not what the kernel writes. */
#ifndef KITE_PROCSTATS_H
#define KITE_PROCSTATS_H

#include <stddef.h>
#include <stdint.h>

struct cpu_times {
	uint64_t user, nice, system, idle, iowait, irq, softirq, steal;
};

struct mem_info {
	uint64_t total_kib, available_kib, free_kib;
};

#define NETDEV_NAME_MAX 31
struct netdev {
	char name[NETDEV_NAME_MAX + 1];
	uint64_t rx_bytes, rx_packets, tx_bytes, tx_packets;
};

struct load_avg {
	double one, five, fifteen;
};

int parse_proc_stat(const char *buf, size_t len, struct cpu_times *out);
int parse_meminfo(const char *buf, size_t len, struct mem_info *out);
/* Fills up to max interfaces; returns how many, or -1. */
int parse_net_dev(const char *buf, size_t len, struct netdev *out, int max);
int parse_loadavg(const char *buf, size_t len, struct load_avg *out);

#endif
