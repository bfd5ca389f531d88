/* kite pub CHANNEL [MESSAGE]: publish one message, or one per stdin line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kite.h"

static const char usage[] =
	"Usage: kite pub [OPTIONS] CHANNEL [MESSAGE]\n"
	"Publish MESSAGE on CHANNEL, or, without MESSAGE, one message per line\n"
	"of standard input (the newline is not part of the message). Options may\n"
	"follow CHANNEL and MESSAGE; '--' ends them (kite pub temp.out -- -5).\n\n"
	"  -b, --bus NAME   the bus to use (default: $KITE_BUS, else 'default')\n"
	"  -l, --lan IFACE  also publish on the LAN through IFACE ('auto': the\n"
	"                   first multicast interface; ',group=A.B.C.D/N,port=P,\n"
	"                   ttl=T' may follow; default: $KITE_LAN, else none)\n"
	"  -s, --stats      print what was published on stderr at the end\n"
	"  -r, --ring-bytes B  the channel's ring holds B bytes of records (a\n"
	"                   power of two from 4K to 512M; K, M suffixes: KiB,\n"
	"                   MiB; default 2M): more lets slow or late subscribers\n"
	"                   (kite sub --last N) find more messages still held\n"
	"  -k, --keep-ring  never release the ring while kite pub runs (by\n"
	"                   default it goes after 10 s of silence, and with it\n"
	"                   what late joiners could replay): a last-value channel\n"
	"  -h, --help       this help\n\n"
	"Subscribers already running receive everything published; refusals by\n"
	"the channel policy are reported on stderr. A reliable subscriber\n"
	"(kite sub --reliable) that falls behind makes kite pub wait, as a full\n"
	"pipe would, except one that stops reading for 2 s: it is overrun and\n"
	"told its loss. Exit: 0 published, 1 a\n"
	"subscriber was refused, 100 usage, 111 system error.\n";

/* Refusals surface as events on the publisher's handle too. */
static int report_events(kite *k)
{
	kite_event ev;
	int refused = 0;
	while (kite_recv(k, &ev, 0) == 0)
		if (ev.type == KITE_REFUSED) {
			fprintf(stderr, "kite pub: %s\n", ev.text);
			refused = 1;
		}
	return refused;
}

/* "65536", "64K", "2M": bytes (K and M are 1024-based); 0 or -1. */
static int parse_ring_bytes(const char *s, uint64_t *out)
{
	char digits[32];
	size_t n = strlen(s);
	uint64_t unit = 1;
	if (n && (s[n - 1] == 'K' || s[n - 1] == 'k'))
		unit = 1024;
	else if (n && (s[n - 1] == 'M' || s[n - 1] == 'm'))
		unit = 1024 * 1024;
	if (unit > 1)
		n--;
	if (!n || n >= sizeof digits)
		return -1;
	memcpy(digits, s, n);
	digits[n] = 0;
	uint64_t v;
	if (parse_u64(digits, UINT64_MAX / unit, &v) || !v)
		return -1;
	*out = v * unit;
	return 0;
}

int cmd_pub(int argc, char **argv)
{
	static const struct option opts[] = {
		{"bus", required_argument, NULL, 'b'},
		{"lan", required_argument, NULL, 'l'},
		{"stats", no_argument, NULL, 's'},
		{"ring-bytes", required_argument, NULL, 'r'},
		{"keep-ring", no_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	kite_options ko = {0};
	int stats = 0, c;
	uint64_t ring_bytes = 0;
	char **operand = argv; /* CHANNEL [MESSAGE], moved to the front as they come */
	int noperands = 0;
	while ((c = next_option("pub", argc, argv, "b:l:r:ksh", opts)) != -1) {
		switch (c) {
		case 1:
			if (noperands == 2)
				return usage_error("pub", "expected CHANNEL [MESSAGE], "
						   "then '%s' (quote a MESSAGE with spaces)", optarg);
			operand[noperands++] = optarg;
			break;
		case 'b': ko.bus = optarg; break;
		case 'l': ko.lan = optarg; break;
		case 's': stats = 1; break;
		case 'k': ko.idle_ms = UINT32_MAX; break;
		case 'r':
			if (parse_ring_bytes(optarg, &ring_bytes))
				return usage_error("pub", "--ring-bytes wants a size such as "
						   "65536, 64K or 2M, not '%s'", optarg);
			break;
		case 'h': fputs(usage, stdout); return EXIT_DONE;
		default: return EXIT_USAGE;
		}
	}
	while (optind < argc && noperands < 2) /* those after "--" */
		operand[noperands++] = argv[optind++];
	if (!noperands || optind < argc)
		return usage_error("pub", "expected CHANNEL [MESSAGE]");
	const char *channel = operand[0];
	if (kite_channel_valid(channel))
		return usage_error("pub", "bad channel name '%s': %s", channel,
				   kite_strerror(KITE_EBADNAME));
	/* Reading a pipe, back-pressure is what users expect: wait as long
	 * as reliable subscribers keep reading (their deadline bounds it). */
	ko.reliable_wait_ms = UINT32_MAX;
	kite *k;
	int rc = open_bus("pub", &k, &ko);
	if (rc)
		return rc;
	if (ring_bytes && (rc = kite_set_channel_ring(k, channel, ring_bytes)) < 0) {
		kite_close(k);
		return usage_error("pub", "--ring-bytes %llu: %s (a power of two from "
				   "4K to 512M)", (unsigned long long)ring_bytes,
				   kite_strerror(rc));
	}
	uint64_t count = 0;
	int64_t r = 0;
	if (noperands == 2) {
		const char *msg = operand[1];
		r = kite_publish(k, channel, msg, strlen(msg));
		count += r > 0;
	} else {
		char *line = NULL;
		size_t cap = 0;
		ssize_t n;
		while ((n = getline(&line, &cap, stdin)) >= 0) {
			if (n > 0 && line[n - 1] == '\n')
				n--;
			if ((r = kite_publish(k, channel, line, (size_t)n)) < 0)
				break;
			count++;
		}
		free(line);
	}
	int refused = report_events(k);
	if (stats) {
		fprintf(stderr, "kite pub: published %llu messages on %s\n",
			(unsigned long long)count, channel);
		lan_stats_print("pub", k);
	}
	kite_close(k);
	if (r < 0)
		return fail(EXIT_SYSTEM, "pub", "publish failed: %s", kite_strerror((int)r));
	return refused ? EXIT_NO : EXIT_DONE;
}
