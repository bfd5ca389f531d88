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

int cmd_pub(int argc, char **argv)
{
	static const struct option opts[] = {
		{"bus", required_argument, NULL, 'b'},
		{"lan", required_argument, NULL, 'l'},
		{"stats", no_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	kite_options ko = {0};
	int stats = 0, c;
	char **operand = argv; /* CHANNEL [MESSAGE], moved to the front as they come */
	int noperands = 0;
	while ((c = next_option("pub", argc, argv, "b:l:sh", opts)) != -1) {
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
