/* kite hoststats: publish this host's CPU, memory, load and network figures
 * from /proc, once per interval, on host.<name>.{cpu,mem,load,net.<iface>}. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "kite.h"
#include "procstats.h"

#define MAX_IFACES 64

static const char usage[] =
	"Usage: kite hoststats [OPTIONS]\n"
	"Publish this host's live figures, read from /proc, every interval:\n"
	"  PREFIX.cpu          user, system, iowait, idle (% of the interval)\n"
	"  PREFIX.mem          total and available memory (KiB), used %\n"
	"  PREFIX.load         1, 5 and 15 minute load averages\n"
	"  PREFIX.net.IFACE    receive and transmit bytes/s and packets/s\n"
	"PREFIX is host.HOSTNAME (characters outside [A-Za-z0-9_-] become '_').\n\n"
	"  -i, --interval SECS  time between rounds (default 1)\n"
	"  -n, --count N        stop after N rounds (default: until signalled)\n"
	"  -p, --prefix NAME    channel prefix instead of host.HOSTNAME\n"
	"  -b, --bus NAME       the bus (default: $KITE_BUS, else 'default')\n"
	"  -s, --stats          print the published count on stderr at the end\n"
	"  -h, --help           this help\n\n"
	"Exit: 0 done (also after SIGINT/SIGTERM), 100 usage, 111 system error.\n";

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

/* Read a whole small /proc file; its length, or -1. */
static ssize_t slurp(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t have = 0;
	ssize_t r;
	while (have < cap && (r = read(fd, buf + have, cap - have)) > 0)
		have += (size_t)r;
	close(fd);
	return (ssize_t)have;
}

static void token_copy(char *dst, size_t cap, const char *src)
{
	size_t i = 0;
	for (; src[i] && i + 1 < cap; i++) {
		char c = src[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			 (c >= '0' && c <= '9') || c == '-' || c == '_';
		dst[i] = ok ? c : '_';
	}
	dst[i] = 0;
}

struct sample {
	struct cpu_times cpu;
	struct netdev net[MAX_IFACES];
	int nnet;
	double when;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int take_sample(struct sample *s, char *buf, size_t cap)
{
	ssize_t n = slurp("/proc/stat", buf, cap);
	if (n < 0 || parse_proc_stat(buf, (size_t)n, &s->cpu))
		return -1;
	n = slurp("/proc/net/dev", buf, cap);
	s->nnet = n < 0 ? 0 : parse_net_dev(buf, (size_t)n, s->net, MAX_IFACES);
	if (s->nnet < 0)
		s->nnet = 0;
	s->when = now_s();
	return 0;
}

static uint64_t cpu_total(const struct cpu_times *c)
{
	return c->user + c->nice + c->system + c->idle + c->iowait + c->irq +
	       c->softirq + c->steal;
}

struct publisher {
	kite *k;
	const char *prefix;
	uint64_t published;
	int64_t error;
};

static void publish(struct publisher *p, const char *suffix, const char *text)
{
	char channel[KITE_CHANNEL_MAX + 1];
	snprintf(channel, sizeof channel, "%s.%s", p->prefix, suffix);
	int64_t r = kite_publish(p->k, channel, text, strlen(text));
	if (r < 0)
		p->error = r;
	else
		p->published++;
}

static double pct(uint64_t part, uint64_t whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

static void publish_round(struct publisher *p, const struct sample *a,
			  const struct sample *b, char *buf, size_t cap)
{
	char text[256];
	uint64_t total = cpu_total(&b->cpu) - cpu_total(&a->cpu);
	snprintf(text, sizeof text, "user=%.1f system=%.1f iowait=%.1f idle=%.1f",
		 pct(b->cpu.user + b->cpu.nice - a->cpu.user - a->cpu.nice, total),
		 pct(b->cpu.system + b->cpu.irq + b->cpu.softirq - a->cpu.system -
			     a->cpu.irq - a->cpu.softirq, total),
		 pct(b->cpu.iowait - a->cpu.iowait, total),
		 pct(b->cpu.idle - a->cpu.idle, total));
	publish(p, "cpu", text);

	struct mem_info mem;
	ssize_t n = slurp("/proc/meminfo", buf, cap);
	if (n > 0 && !parse_meminfo(buf, (size_t)n, &mem)) {
		uint64_t avail = mem.available_kib ? mem.available_kib : mem.free_kib;
		snprintf(text, sizeof text, "total_kib=%" PRIu64 " available_kib=%" PRIu64
			 " used=%.1f%%", mem.total_kib, avail,
			 pct(mem.total_kib - (avail < mem.total_kib ? avail : mem.total_kib),
			     mem.total_kib));
		publish(p, "mem", text);
	}
	struct load_avg load;
	n = slurp("/proc/loadavg", buf, cap);
	if (n > 0 && !parse_loadavg(buf, (size_t)n, &load)) {
		snprintf(text, sizeof text, "1m=%.2f 5m=%.2f 15m=%.2f", load.one,
			 load.five, load.fifteen);
		publish(p, "load", text);
	}
	double dt = b->when - a->when;
	for (int i = 0; i < b->nnet && dt > 0; i++) {
		const struct netdev *now = &b->net[i], *then = NULL;
		for (int j = 0; j < a->nnet; j++)
			if (!strcmp(a->net[j].name, now->name))
				then = &a->net[j];
		if (!then)
			continue;
		char name[NETDEV_NAME_MAX + 1], suffix[NETDEV_NAME_MAX + 8];
		token_copy(name, sizeof name, now->name);
		snprintf(suffix, sizeof suffix, "net.%s", name);
		snprintf(text, sizeof text,
			 "rx_bytes_per_s=%.0f tx_bytes_per_s=%.0f rx_packets_per_s=%.0f "
			 "tx_packets_per_s=%.0f",
			 (double)(now->rx_bytes - then->rx_bytes) / dt,
			 (double)(now->tx_bytes - then->tx_bytes) / dt,
			 (double)(now->rx_packets - then->rx_packets) / dt,
			 (double)(now->tx_packets - then->tx_packets) / dt);
		publish(p, suffix, text);
	}
}

int cmd_hoststats(int argc, char **argv)
{
	static const struct option opts[] = {
		{"interval", required_argument, NULL, 'i'},
		{"count", required_argument, NULL, 'n'},
		{"prefix", required_argument, NULL, 'p'},
		{"bus", required_argument, NULL, 'b'},
		{"stats", no_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	kite_options ko = {0};
	int64_t interval_ms = 1000;
	uint64_t rounds = 0;
	int stats = 0, c;
	char prefix[KITE_CHANNEL_MAX + 1] = "";
	while ((c = getopt_long(argc, argv, "+i:n:p:b:sh", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			if (parse_seconds_ms(optarg, &interval_ms) || interval_ms < 10)
				return usage_error("hoststats", "--interval wants seconds >= 0.01, not '%s'", optarg);
			break;
		case 'n':
			if (parse_u64(optarg, UINT64_MAX, &rounds) || !rounds)
				return usage_error("hoststats", "--count wants a positive number, not '%s'", optarg);
			break;
		case 'p':
			snprintf(prefix, sizeof prefix, "%s", optarg);
			break;
		case 'b': ko.bus = optarg; break;
		case 's': stats = 1; break;
		case 'h': fputs(usage, stdout); return EXIT_DONE;
		default: return usage_error("hoststats", "unknown option");
		}
	}
	if (optind != argc)
		return usage_error("hoststats", "unexpected argument '%s'", argv[optind]);
	if (!*prefix) {
		char host[256] = "localhost", tok[64];
		gethostname(host, sizeof host - 1);
		token_copy(tok, sizeof tok, host);
		snprintf(prefix, sizeof prefix, "host.%s", tok);
	}
	/* The longest suffix is net.<iface>: leave it room. */
	if (strlen(prefix) > KITE_CHANNEL_MAX - 40 || kite_channel_valid(prefix))
		return usage_error("hoststats", "bad --prefix '%s': %s", prefix,
				   kite_strerror(KITE_EBADNAME));
	static char buf[1 << 16];
	struct sample a, b;
	if (take_sample(&a, buf, sizeof buf))
		return fail(EXIT_SYSTEM, "hoststats", "cannot read /proc/stat: %s", strerror(errno));
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	struct publisher p = {.prefix = prefix};
	int rc = kite_open(&p.k, &ko);
	if (rc)
		return fail(EXIT_SYSTEM, "hoststats", "cannot open: %s", kite_strerror(rc));
	for (uint64_t round = 0; !stop && (!rounds || round < rounds) && !p.error; round++) {
		struct timespec ts = {interval_ms / 1000, (interval_ms % 1000) * 1000000};
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !stop)
			;
		if (stop || take_sample(&b, buf, sizeof buf))
			break;
		publish_round(&p, &a, &b, buf, sizeof buf);
		a = b;
	}
	if (stats)
		fprintf(stderr, "kite hoststats: published %" PRIu64 " messages on %s.>\n",
			p.published, prefix);
	kite_close(p.k);
	if (p.error)
		return fail(EXIT_SYSTEM, "hoststats", "publish: %s", kite_strerror((int)p.error));
	return EXIT_DONE;
}
