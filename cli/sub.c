/* kite sub PATTERN...: print messages from matching channels. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kite.h"

static const char usage[] =
	"Usage: kite sub [OPTIONS] PATTERN...\n"
	"Print every message on channels matching a PATTERN ('*' one token,\n"
	"a final '>' one or more), with its channel, sender and sequence:\n"
	"  CHANNEL pid=PID uid=UID seq=SEQ PAYLOAD\n"
	"or, for a message from another host on the LAN (identity claimed):\n"
	"  CHANNEL lan=ADDRESS pid=PID seq=SEQ PAYLOAD\n"
	"with the payload on one line: backslash, control bytes and bytes that\n"
	"are not UTF-8 escaped as \\\\, \\n, \\r, \\t, \\xHH (printf '%b' undoes it).\n"
	"A message relayed from another system (kite bridge) also shows what\n"
	"its importer CLAIMS about the remote sender, after seq=SEQ:\n"
	"  origin=SYSTEM:SUBJECT [origin-host=H] [origin-pid=N] [origin-uid=N]\n"
	"  [origin-seq=N]  (escaped as the payload, spaces as \\x20); pid and uid\n"
	"are then the importer's, the only ones the kernel vouches for.\n"
	"Options may follow the patterns; '--' ends them.\n\n"
	"  -j, --json           one JSON object per line instead\n"
	"  -n, --count N        exit after N messages\n"
	"  -t, --timeout SECS   exit after SECS seconds\n"
	"      --last N         first the last N messages each matching ring still\n"
	"                       holds (original seqs), then live ones ('--last 1':\n"
	"                       the latest value at once)\n"
	"      --last-ms MS     ... only those published in the last MS ms\n"
	"  -b, --bus NAME       the bus to use (default: $KITE_BUS, else 'default')\n"
	"  -l, --lan IFACE      also receive from the LAN through IFACE ('auto',\n"
	"                       options as in kite pub; default: $KITE_LAN)\n"
	"  -g, --exit-when-gone exit once every publisher heard from has gone\n"
	"  -r, --reliable       local publishers wait for this subscriber rather\n"
	"                       than overrun it (for up to their deadline, 2 s by\n"
	"                       default, if it stops reading; then it is told its\n"
	"                       loss like any other)\n"
	"  -s, --stats          print received/lost counts on stderr at the end\n"
	"  -v, --verbose        also report on stderr when the subscriptions are in\n"
	"                       force and each publisher's ring attaches\n"
	"  -h, --help           this help\n\n"
	"Losses (which publisher, how many), departed publishers and refusals\n"
	"are reported on stderr. Exit: 0 done, 2 --timeout before --count was\n"
	"reached, 100 usage, 111 system error.\n";

/* One word of a text line: escaped as payloads are, spaces too. */
static void text_word(const char *s)
{
	for (const char *sp; (sp = strchr(s, ' ')); s = sp + 1) {
		text_escape(stdout, s, (size_t)(sp - s));
		fputs("\\x20", stdout);
	}
	text_escape(stdout, s, strlen(s));
}

static void print_origin_text(const struct kite_origin *o)
{
	fputs("origin=", stdout);
	text_word(o->system);
	putchar(':');
	text_word(o->subject);
	if (*o->host) {
		fputs(" origin-host=", stdout);
		text_word(o->host);
	}
	if (o->pid >= 0)
		printf(" origin-pid=%" PRId64, o->pid);
	if (o->uid >= 0)
		printf(" origin-uid=%" PRId64, o->uid);
	if (o->seq)
		printf(" origin-seq=%" PRIu64, o->seq);
	putchar(' ');
}

static void print_origin_json(const struct kite_origin *o)
{
	printf(",\"origin\":{\"system\":");
	json_string(o->system, strlen(o->system));
	printf(",\"subject\":");
	json_string(o->subject, strlen(o->subject));
	printf(",\"host\":");
	json_string(o->host, strlen(o->host));
	printf(",\"pid\":%" PRId64 ",\"uid\":%" PRId64 ",\"publisher\":\"%016" PRIx64
	       "\",\"seq\":%" PRIu64 ",\"headers\":", o->pid, o->uid, o->publisher, o->seq);
	json_string(o->headers, o->headers_len);
	putchar('}');
}

static void print_message(kite *k, const kite_msg *m, int json)
{
	kite_lan_origin o;
	int lan = kite_msg_lan_origin(k, m, &o) == 1;
	if (!json) {
		if (lan)
			printf("%s lan=%s pid=%ld seq=%" PRIu64 " ", m->channel, o.address,
			       (long)o.pid, m->seq);
		else
			printf("%s pid=%ld uid=%u seq=%" PRIu64 " ", m->channel, (long)m->pid,
			       (unsigned)m->uid, m->seq);
		if (m->origin)
			print_origin_text(m->origin);
		text_escape(stdout, m->data, m->len);
		putchar('\n');
		return;
	}
	printf("{\"channel\":");
	json_string(m->channel, strlen(m->channel));
	if (lan) {
		printf(",\"publisher\":\"%016" PRIx64 "\",\"seq\":%" PRIu64
		       ",\"timestamp_ns\":%" PRIu64 ",\"lan\":{\"host\":\"%016" PRIx64
		       "\",\"address\":\"%s\",\"port\":%u,\"claimed_pid\":%ld},",
		       m->publisher, m->seq, m->timestamp_ns, o.host, o.address,
		       (unsigned)o.port, (long)o.pid);
		json_payload(m->data, m->len);
		printf("}\n");
		return;
	}
	printf(",\"publisher\":\"%016" PRIx64 "\",\"seq\":%" PRIu64
	       ",\"timestamp_ns\":%" PRIu64 ",\"pid\":%ld,\"uid\":%u,\"gid\":%u,",
	       m->publisher, m->seq, m->timestamp_ns, (long)m->pid, (unsigned)m->uid,
	       (unsigned)m->gid);
	json_payload(m->data, m->len);
	if (m->origin)
		print_origin_json(m->origin);
	printf("}\n");
}

/* Publishers leave one ring at a time; say so once per publisher. */
static int first_goodbye(uint64_t publisher)
{
	static uint64_t seen[64];
	static unsigned n;
	for (unsigned i = 0; i < n && i < 64; i++)
		if (seen[i] == publisher)
			return 0;
	seen[n++ % 64] = publisher;
	return 1;
}

static void report(const kite_event *ev, int verbose)
{
	switch (ev->type) {
	case KITE_PUBLISHER_NEW:
		if (verbose)
			fprintf(stderr, "kite sub: %s: %s\n", ev->msg.channel, ev->text);
		break;
	case KITE_LOSS:
		fprintf(stderr, "kite sub: lost %" PRIu64 " messages on %s from "
			"publisher %016" PRIx64 " (pid %ld)\n", ev->lost,
			ev->msg.channel, ev->msg.publisher, (long)ev->msg.pid);
		break;
	case KITE_PUBLISHER_GONE:
		if (first_goodbye(ev->msg.publisher))
			fprintf(stderr, "kite sub: publisher %016" PRIx64 " (pid %ld) "
				"has gone; everything it published was delivered or reported lost\n",
				ev->msg.publisher, (long)ev->msg.pid);
		break;
	case KITE_REFUSED:
		fprintf(stderr, "kite sub: %s\n", ev->text);
		break;
	default:
		break;
	}
}

int cmd_sub(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"count", required_argument, NULL, 'n'},
		{"timeout", required_argument, NULL, 't'},
		{"last", required_argument, NULL, 'L'},
		{"last-ms", required_argument, NULL, 'M'},
		{"bus", required_argument, NULL, 'b'},
		{"lan", required_argument, NULL, 'l'},
		{"stats", no_argument, NULL, 's'},
		{"exit-when-gone", no_argument, NULL, 'g'},
		{"reliable", no_argument, NULL, 'r'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	kite_options ko = {0};
	int json = 0, stats = 0, until_gone = 0, verbose = 0, c;
	uint64_t count = 0, last = 0;
	struct kite_sub_options so = {0};
	int64_t timeout_ms = -1;
	char **patterns = argv; /* operands move to the front as they come */
	int npatterns = 0;
	while ((c = next_option("sub", argc, argv, "jn:t:b:l:sgrvh", opts)) != -1) {
		switch (c) {
		case 1: patterns[npatterns++] = optarg; break;
		case 'j': json = 1; break;
		case 'n':
			if (parse_u64(optarg, UINT64_MAX, &count) || !count)
				return usage_error("sub", "--count wants a positive number, not '%s'", optarg);
			break;
		case 't':
			if (parse_seconds_ms(optarg, &timeout_ms))
				return usage_error("sub", "--timeout wants seconds, not '%s'", optarg);
			break;
		case 'L':
			if (parse_u64(optarg, UINT32_MAX, &last) || !last)
				return usage_error("sub", "--last wants a number of messages "
						   "from 1 to %u, not '%s'", UINT32_MAX, optarg);
			so.last_n = (uint32_t)last;
			break;
		case 'M':
			if (parse_u64(optarg, UINT32_MAX, &last) || !last)
				return usage_error("sub", "--last-ms wants milliseconds from 1 "
						   "to %u, not '%s'", UINT32_MAX, optarg);
			so.last_ms = (uint32_t)last;
			break;
		case 'b': ko.bus = optarg; break;
		case 'l': ko.lan = optarg; break;
		case 's': stats = 1; break;
		case 'g': until_gone = 1; break;
		case 'r': so.flags |= KITE_SUB_RELIABLE; break;
		case 'v': verbose = 1; break;
		case 'h': fputs(usage, stdout); return EXIT_DONE;
		default: return EXIT_USAGE;
		}
	}
	while (optind < argc) /* those after "--" */
		patterns[npatterns++] = argv[optind++];
	if (!npatterns)
		return usage_error("sub", "expected at least one PATTERN");
	for (int i = 0; i < npatterns; i++)
		if (kite_pattern_valid(patterns[i]))
			return usage_error("sub", "bad pattern '%s': %s", patterns[i],
					   kite_strerror(KITE_EBADNAME));
	kite *k;
	int rc = open_bus("sub", &k, &ko);
	if (rc)
		return rc;
	for (int i = 0; i < npatterns; i++)
		if ((rc = kite_subscribe_opts(k, patterns[i], &so)) < 0) {
			kite_close(k);
			return fail(EXIT_SYSTEM, "sub", "subscribe %s: %s", patterns[i],
				    kite_strerror(rc));
		}
	if (verbose)
		fprintf(stderr, "kite sub: subscribed; publishers present have answered\n");
	lan_rcvbuf_warn("sub", k);
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	uint64_t got = 0;
	int64_t rings = 0, ever = 0; /* rings attached now, and ever */
	int status = EXIT_DONE;
	setvbuf(stdout, NULL, _IOLBF, 0); /* a live feed: each line as it comes */
	while (!count || got < count) {
		int wait = -1;
		if (deadline >= 0) {
			int64_t left = deadline - now_ms();
			wait = left < 0 ? 0 : (int)(left > 1000000 ? 1000000 : left);
		}
		kite_event ev;
		rc = kite_recv(k, &ev, wait);
		if (rc == -ETIMEDOUT || rc == -EAGAIN) {
			status = count ? EXIT_TIMEOUT : EXIT_DONE;
			break;
		}
		if (rc < 0) {
			status = fail(EXIT_SYSTEM, "sub", "receive: %s", kite_strerror(rc));
			break;
		}
		if (ev.type == KITE_MESSAGE) {
			print_message(k, &ev.msg, json);
			got++;
		} else {
			report(&ev, verbose);
			rings += ev.type == KITE_PUBLISHER_NEW;
			ever += ev.type == KITE_PUBLISHER_NEW;
			rings -= ev.type == KITE_PUBLISHER_GONE;
			if (until_gone && ever && rings <= 0)
				break;
		}
	}
	fflush(stdout);
	kite_stats st;
	kite_get_stats(k, &st);
	if (stats || st.lost)
		fprintf(stderr, "kite sub: received %" PRIu64 ", lost %" PRIu64 "\n",
			st.received, st.lost);
	if (stats)
		lan_stats_print("sub", k);
	kite_close(k);
	return status;
}
