/* kite ping: ICMP echo without privileges. It speaks through an unprivileged
 * ICMP datagram socket (cli/ping_socket.c), checks every reply byte by byte
 * (src/icmp_echo.c), and prints what iputils ping(8) prints, so scripts and
 * eyes that know ping need nothing new. */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "icmp_echo.h"
#include "ping.h"

static const char usage_text[] =
	"Usage: kite ping [OPTIONS] HOST\n"
	"Send ICMP echo requests to HOST through an unprivileged ICMP socket\n"
	"(no setuid, no raw socket) and report replies as ping(8) does.\n"
	"\n"
	"Options:\n"
	"  -c, --count N        stop after N requests (default: until interrupted)\n"
	"  -i, --interval SECS  time between requests (default 1; at least 0.002)\n"
	"  -W, --timeout SECS   how long to wait for replies after the last\n"
	"                       request (default 10)\n"
	"  -4, -6               use IPv4 or IPv6 only\n"
	"  -n, --numeric        no reverse lookup of a HOST given by name\n"
	"  -q, --quiet          print only the header and the summary\n"
	"  -h, --help           this help\n"
	"\n"
	"Exit status: 0 if any reply came, 1 if none, 100 usage, 111 if no\n"
	"request could be sent (unknown HOST, ICMP sockets not allowed).\n";

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct ping_opts {
	uint64_t count;         /* 0: until interrupted */
	int64_t interval_ms, timeout_ms;
	int family;             /* AF_UNSPEC, AF_INET, AF_INET6 */
	bool quiet;
	bool numeric;           /* addresses only: -n, or HOST given as one */
	const char *host;
};

struct ping_stats {
	uint64_t sent, received, dups, errors, ignored;
	int64_t last_ns;        /* the last send, reply or error: ping(8)'s
	                           "time" ends there, not after the final wait */
	double min_us, max_us, sum_us, sum2_us;
};

/* All a run keeps per sequence number: 65536 possible in flight. */
struct ping_state {
	uint8_t sent[ICMP_SEQ_MAP_BYTES];     /* sent in this run (ever) */
	uint8_t answered[ICMP_SEQ_MAP_BYTES]; /* a reply came for the last send */
	int64_t sent_ns[65536];
	uint64_t outstanding;
};

static int parse_opts(int argc, char **argv, struct ping_opts *o)
{
	static const struct option longopts[] = {
		{"count", required_argument, NULL, 'c'},
		{"interval", required_argument, NULL, 'i'},
		{"timeout", required_argument, NULL, 'W'},
		{"quiet", no_argument, NULL, 'q'},
		{"numeric", no_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	o->interval_ms = 1000;
	o->timeout_ms = 10000;
	o->family = AF_UNSPEC;
	optind = 1;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, ":c:i:W:46qnh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (parse_u64(optarg, UINT32_MAX, &o->count) < 0 || o->count == 0)
				return usage_error("ping", "bad count '%s' (1 or more)", optarg);
			break;
		case 'i':
			if (parse_seconds_ms(optarg, &o->interval_ms) < 0 || o->interval_ms < 2)
				return usage_error("ping", "bad interval '%s' (seconds, "
						   "at least 0.002)", optarg);
			break;
		case 'W':
			if (parse_seconds_ms(optarg, &o->timeout_ms) < 0)
				return usage_error("ping", "bad timeout '%s' (seconds)", optarg);
			break;
		case '4':
		case '6':
			if (o->family != AF_UNSPEC)
				return usage_error("ping", "-4 and -6 exclude each other");
			o->family = c == '4' ? AF_INET : AF_INET6;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'n':
			o->numeric = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return -1;
		case ':':
			return usage_error("ping", "option '%s' needs a value", argv[optind - 1]);
		default:
			return usage_error("ping", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return usage_error("ping", "no HOST given");
	if (optind + 1 < argc)
		return usage_error("ping", "one HOST only ('%s' is extra)", argv[optind + 1]);
	o->host = argv[optind];
	return 0;
}

static int resolve(const struct ping_opts *o, struct sockaddr_storage *to, socklen_t *len)
{
	struct addrinfo hints, *res;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = o->family;
	hints.ai_socktype = SOCK_DGRAM;
	int rc = getaddrinfo(o->host, NULL, &hints, &res);
	if (rc)
		return fail(-1, "ping", "%s: %s", o->host, gai_strerror(rc));
	rc = -1;
	for (struct addrinfo *a = res; a; a = a->ai_next)
		if ((a->ai_family == AF_INET || a->ai_family == AF_INET6) &&
		    a->ai_addrlen <= sizeof *to) {
			memcpy(to, a->ai_addr, a->ai_addrlen);
			*len = a->ai_addrlen;
			rc = 0;
			break;
		}
	freeaddrinfo(res);
	if (rc)
		fail(-1, "ping", "%s: no IPv4 or IPv6 address", o->host);
	return rc;
}

static const char *addr_str(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
	const void *a = ss->ss_family == AF_INET
		? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
		: (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
	if (!inet_ntop(ss->ss_family, a, buf, (socklen_t)cap))
		snprintf(buf, cap, "?");
	return buf;
}

/* Who a reply or error came from, as ping(8) names it: the address alone
 * for a HOST given as an address (or -n), else "name (address)" with the
 * name the address resolves back to (the address again if none). The last
 * answer is kept: replies come from one address, and lookups may be slow. */
static const char *peer_str(const struct ping_opts *o, const struct sockaddr_storage *ss,
			    char *buf, size_t cap)
{
	static struct sockaddr_storage last;
	static char last_text[NI_MAXHOST + INET6_ADDRSTRLEN + 4];
	char a[INET6_ADDRSTRLEN], name[NI_MAXHOST];
	addr_str(ss, a, sizeof a);
	if (o->numeric) {
		snprintf(buf, cap, "%s", a);
		return buf;
	}
	socklen_t len = ss->ss_family == AF_INET ? sizeof(struct sockaddr_in)
						 : sizeof(struct sockaddr_in6);
	if (last.ss_family != ss->ss_family || memcmp(&last, ss, len)) {
		if (getnameinfo((const struct sockaddr *)ss, len, name, sizeof name,
				NULL, 0, 0))
			snprintf(name, sizeof name, "%s", a);
		memcpy(&last, ss, len);
		snprintf(last_text, sizeof last_text, "%s (%s)", name, a);
	}
	snprintf(buf, cap, "%s", last_text);
	return buf;
}

/* A round trip in ms the way ping(8) prints it: 3 significant digits. */
static void print_ms(int64_t us)
{
	if (us >= 100000 - 50)
		printf("%lld", (long long)((us + 500) / 1000));
	else if (us >= 10000 - 5)
		printf("%lld.%01lld", (long long)((us + 50) / 1000), (long long)((us + 50) % 1000 / 100));
	else if (us >= 1000)
		printf("%lld.%02lld", (long long)((us + 5) / 1000), (long long)((us + 5) % 1000 / 10));
	else
		printf("%lld.%03lld", (long long)(us / 1000), (long long)(us % 1000));
}

static void take_replies(int fd, const struct ping_opts *o, const struct icmp_echo_expect *e,
			 struct ping_state *s, struct ping_stats *st)
{
	uint8_t buf[ICMP_ECHO_HEADER + ICMP_ECHO_PAYLOAD + 64];
	for (;;) {
		struct sockaddr_storage from;
		int ttl;
		ssize_t n = ping_recv(fd, buf, sizeof buf, &from, &ttl);
		int64_t t = now_ns();
		if (n == -EMSGSIZE) {
			st->ignored++;
			continue;
		}
		if (n < 0)
			return; /* -EAGAIN: drained; errors arrive via the error queue */
		st->last_ns = t;
		uint16_t seq;
		if (icmp_echo_check(e, buf, (size_t)n, &seq) != ICMP_ECHO_OK) {
			st->ignored++;
			continue;
		}
		bool dup = icmp_seq_get(s->answered, seq);
		int64_t us = (t - s->sent_ns[seq]) / 1000;
		if (dup) {
			st->dups++;
		} else {
			icmp_seq_set(s->answered, seq, 1);
			s->outstanding--;
			st->received++;
			double d = (double)us;
			if (st->received == 1 || d < st->min_us)
				st->min_us = d;
			if (d > st->max_us)
				st->max_us = d;
			st->sum_us += d;
			st->sum2_us += d * d;
		}
		if (o->quiet)
			continue;
		char a[NI_MAXHOST + INET6_ADDRSTRLEN + 4];
		printf("%zd bytes from %s: icmp_seq=%u", n, peer_str(o, &from, a, sizeof a), seq);
		if (ttl >= 0)
			printf(" ttl=%d", ttl);
		printf(" time=");
		print_ms(us);
		printf(" ms%s\n", dup ? " (DUP!)" : "");
	}
}

static void take_errors(int fd, const struct ping_opts *o, struct ping_state *s,
			struct ping_stats *st)
{
	int seq;
	struct sockaddr_storage off;
	char what[96], a[NI_MAXHOST + INET6_ADDRSTRLEN + 4];
	while (ping_recv_error(fd, o->family, &seq, &off, what, sizeof what) == 0) {
		st->errors++;
		st->last_ns = now_ns();
		/* That request will get no reply: stop waiting for it. */
		if (seq >= 0 && icmp_seq_get(s->sent, (uint16_t)seq) &&
		    !icmp_seq_get(s->answered, (uint16_t)seq)) {
			icmp_seq_set(s->answered, (uint16_t)seq, 1);
			s->outstanding--;
		}
		if (o->quiet)
			continue;
		if (off.ss_family == AF_INET || off.ss_family == AF_INET6)
			printf("From %s ", peer_str(o, &off, a, sizeof a));
		if (seq >= 0)
			printf("icmp_seq=%d ", seq);
		printf("%s\n", what);
	}
}

/* Square root by Newton's method from above (kite links no libm). */
static double root(double v)
{
	if (!(v > 0))
		return 0;
	double x = v > 1 ? v : 1;
	for (int i = 0; i < 200; i++) {
		double y = 0.5 * (x + v / x);
		if (y >= x)
			break;
		x = y;
	}
	return x;
}

static void summary(const struct ping_opts *o, const struct ping_stats *st, int64_t elapsed_ms)
{
	printf("\n--- %s ping statistics ---\n", o->host);
	printf("%llu packets transmitted, %llu received", (unsigned long long)st->sent,
	       (unsigned long long)st->received);
	if (st->dups)
		printf(", +%llu duplicates", (unsigned long long)st->dups);
	if (st->errors)
		printf(", +%llu errors", (unsigned long long)st->errors);
	double loss = st->sent ? (double)(st->sent - st->received) * 100.0 / (double)st->sent : 0;
	printf(", %g%% packet loss, time %lldms\n", loss, (long long)elapsed_ms);
	if (st->received) {
		double n = (double)st->received, avg = st->sum_us / n;
		double var = st->sum2_us / n - avg * avg;
		printf("rtt min/avg/max/mdev = %.3f/%.3f/%.3f/%.3f ms\n", st->min_us / 1000,
		       avg / 1000, st->max_us / 1000, root(var) / 1000);
	} else {
		putchar('\n'); /* ping(8) ends the summary with an empty line then */
	}
	if (st->ignored)
		fprintf(stderr, "kite ping: ignored %llu datagrams that were no valid reply "
			"to this run\n", (unsigned long long)st->ignored);
}

int cmd_ping(int argc, char **argv)
{
	struct ping_opts o = {0};
	int rc = parse_opts(argc, argv, &o);
	if (rc)
		return rc < 0 ? EXIT_DONE : rc;
	struct sockaddr_storage to;
	socklen_t tolen = 0;
	if (resolve(&o, &to, &tolen) < 0)
		return EXIT_SYSTEM;
	o.family = to.ss_family;
	/* ping(8) names peers only for a HOST given by name. */
	unsigned char bin[sizeof(struct in6_addr)];
	if (inet_pton(AF_INET, o.host, bin) == 1 || inet_pton(AF_INET6, o.host, bin) == 1)
		o.numeric = true;
	uint16_t id;
	int fd = ping_socket_open(o.family, &id);
	if (fd < 0)
		return EXIT_SYSTEM;

	/* The payload: 8 random bytes, so a reply to another run (or a forged
	 * one) cannot pass, then ping(8)'s counting pattern. */
	uint8_t payload[ICMP_ECHO_PAYLOAD];
	for (size_t i = 0; i < sizeof payload; i++)
		payload[i] = (uint8_t)i;
	if (getrandom(payload, 8, 0) != 8) {
		uint64_t x = (uint64_t)now_ns() ^ ((uint64_t)getpid() << 32);
		memcpy(payload, &x, 8);
	}
	struct ping_state *s = calloc(1, sizeof *s);
	if (!s) {
		close(fd);
		return fail(EXIT_SYSTEM, "ping", "out of memory");
	}
	struct icmp_echo_expect e = {.family = o.family, .id = id, .payload = payload,
				     .payload_len = sizeof payload, .sent = s->sent};
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_interrupt;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* ping(8)'s two headers: IPv4 with the address and the IP packet
	 * size, IPv6 with the peer as replies name it and the data size. */
	char a[NI_MAXHOST + INET6_ADDRSTRLEN + 4];
	if (o.family == AF_INET)
		printf("PING %s (%s) %d(%d) bytes of data.\n", o.host,
		       addr_str(&to, a, sizeof a), ICMP_ECHO_PAYLOAD,
		       ICMP_ECHO_PAYLOAD + ICMP_ECHO_HEADER + 20);
	else
		printf("PING %s(%s) %d data bytes\n", o.host, peer_str(&o, &to, a, sizeof a),
		       ICMP_ECHO_PAYLOAD);

	struct ping_stats st = {0};
	const int64_t interval = o.interval_ms * 1000000, timeout = o.timeout_ms * 1000000;
	int64_t start = now_ns(), next = start, last_send = start;
	while (!interrupted) {
		int64_t now = now_ns();
		bool more = o.count == 0 || st.sent < o.count;
		if (more && now >= next) {
			uint16_t seq = (uint16_t)(st.sent + 1);
			uint8_t pkt[ICMP_ECHO_HEADER + ICMP_ECHO_PAYLOAD];
			size_t len = icmp_echo_build(o.family, seq, payload, sizeof payload,
						     pkt, sizeof pkt);
			if (!icmp_seq_get(s->answered, seq) && icmp_seq_get(s->sent, seq))
				s->outstanding--; /* its slot is reused: it is lost */
			icmp_seq_set(s->sent, seq, 1);
			icmp_seq_set(s->answered, seq, 0);
			s->sent_ns[seq] = now;
			st.sent++;
			last_send = st.last_ns = now;
			if (sendto(fd, pkt, len, 0, (struct sockaddr *)&to, tolen) < 0) {
				st.errors++;
				icmp_seq_set(s->answered, seq, 1); /* nothing to wait for */
				fprintf(stderr, "kite ping: sendto: %s\n", strerror(errno));
			} else {
				s->outstanding++;
			}
			next += interval;
			if (next < now)
				next = now + interval;
			continue;
		}
		if (!more && (s->outstanding == 0 || now >= last_send + timeout))
			break;
		int64_t wait = more ? next - now : last_send + timeout - now;
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int pr = poll(&pfd, 1, (int)((wait + 999999) / 1000000));
		if (pr < 0 && errno != EINTR) {
			fail(0, "ping", "poll: %s", strerror(errno));
			break;
		}
		if (pr > 0 && (pfd.revents & POLLERR))
			take_errors(fd, &o, s, &st);
		if (pr > 0 && (pfd.revents & POLLIN))
			take_replies(fd, &o, &e, s, &st);
	}
	summary(&o, &st, (st.last_ns - start) / 1000000);
	free(s);
	close(fd);
	return st.received ? EXIT_DONE : EXIT_NO;
}
