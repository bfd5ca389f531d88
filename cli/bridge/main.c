/* kite-bridge (run as `kite bridge`): carry local channels to NATS and
 * back. One thread does it all (loop.c): it exports (kite_recv on the
 * export handle, one NATS publish each), imports (what libnats's
 * synchronous subscriptions hold, kite_publish_origin on the import
 * handle) and serves the NATS socket for libnats. Messages that carry an
 * origin (what any bridge imported) are never exported, so nothing can
 * loop. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "bridge.h"
#include "bridge_claims.h"
#include "cli.h"

static const char usage[] =
	"Usage: kite bridge nats://HOST:PORT [--export PATTERN]... [--import PATTERN]...\n"
	"                   [--prefix P] [OPTIONS]\n"
	"Carry local kite channels to NATS subjects of the same name and back.\n"
	"Local messages on channels matching an --export PATTERN are published on\n"
	"NATS (subject PREFIX.CHANNEL with --prefix), with the sender's host, pid,\n"
	"uid, gid, publisher id and seq in its Kite-Id header; NATS messages on\n"
	"subjects matching an --import PATTERN are published locally by the\n"
	"bridge, the NATS subject and headers in the message's origin (a claim,\n"
	"not a kernel-verified sender). Imported messages are never exported.\n\n"
	"  -e, --export PATTERN      local channels to send to NATS (repeatable)\n"
	"  -i, --import PATTERN      NATS subjects to publish locally (repeatable)\n"
	"  -p, --prefix P            NATS subjects are P.CHANNEL (P: channel tokens)\n"
	"  -b, --bus NAME            the local bus (default: $KITE_BUS, else 'default')\n"
	"      --buffer BYTES        exports held while the server is away, then\n"
	"                            dropped and counted (default 8388608)\n"
	"      --import-pending N    imports libnats may hold before it drops and\n"
	"                            reports a slow consumer (default 65536)\n"
	"      --write-deadline SECS a server that takes no data for this long is\n"
	"                            disconnected and reconnected (default 2)\n"
	"      --ping-interval SECS  a server that answers no ping for twice this is\n"
	"                            taken as gone, and reconnected (default 10)\n"
	"      --stats-interval SECS counters on stderr every SECS when they changed\n"
	"                            (default 10; 0: only at exit)\n"
	"      --statsd HOST:PORT    also send the counters as statsd counts\n"
	"      --user USER           NATS user; --password-file FILE its password\n"
	"      --password-file FILE  \n"
	"      --token-file FILE     NATS token, read from FILE\n"
	"      --creds FILE          NATS credentials file (user JWT and NKey seed)\n"
	"      --nkey PUBKEY         NATS NKey user; --seed FILE its seed\n"
	"      --seed FILE           \n"
	"      --tls                 TLS (also implied by tls:// and the --tls-* options)\n"
	"      --tls-ca FILE         CA certificates to trust\n"
	"      --tls-cert FILE       client certificate chain; --tls-key FILE its key\n"
	"      --tls-key FILE        \n"
	"      --tls-hostname NAME   the name the server's certificate must carry\n"
	"  -v, --verbose             report each export and import pattern at start\n"
	"  -h, --help                this help\n\n"
	"Runs until SIGINT or SIGTERM. Exit: 0 stopped by a signal, 100 usage,\n"
	"111 system error (no bus, credentials or certificate refused at start).\n";

enum {
	OPT_BUFFER = 256, OPT_PENDING, OPT_DEADLINE, OPT_STATS, OPT_STATSD, OPT_USER,
	OPT_PASSWORD, OPT_TOKEN, OPT_CREDS, OPT_NKEY, OPT_SEED, OPT_TLS, OPT_TLS_CA,
	OPT_TLS_CERT, OPT_TLS_KEY, OPT_TLS_HOST, OPT_PING,
};

static int add_pattern(const char ***list, int *n, const char *p, const char *what)
{
	if (kite_pattern_valid(p))
		return usage_error("bridge", "bad %s pattern '%s': %s", what, p,
				   kite_strerror(KITE_EBADNAME));
	const char **t = realloc(*list, (size_t)(*n + 1) * sizeof *t);
	if (!t)
		return fail(EXIT_SYSTEM, "bridge", "out of memory");
	t[(*n)++] = p;
	*list = t;
	return 0;
}

static int parse_bytes(const char *s, int64_t *out)
{
	uint64_t v;
	/* libnats takes an int. */
	if (parse_u64(s, 0x7fffffff, &v) || v < 1024)
		return -1;
	*out = (int64_t)v;
	return 0;
}

static int parse_args(int argc, char **argv, struct bridge_config *c)
{
	static const struct option opts[] = {
		{"export", required_argument, NULL, 'e'},
		{"import", required_argument, NULL, 'i'},
		{"prefix", required_argument, NULL, 'p'},
		{"bus", required_argument, NULL, 'b'},
		{"buffer", required_argument, NULL, OPT_BUFFER},
		{"import-pending", required_argument, NULL, OPT_PENDING},
		{"write-deadline", required_argument, NULL, OPT_DEADLINE},
		{"ping-interval", required_argument, NULL, OPT_PING},
		{"stats-interval", required_argument, NULL, OPT_STATS},
		{"statsd", required_argument, NULL, OPT_STATSD},
		{"user", required_argument, NULL, OPT_USER},
		{"password-file", required_argument, NULL, OPT_PASSWORD},
		{"token-file", required_argument, NULL, OPT_TOKEN},
		{"creds", required_argument, NULL, OPT_CREDS},
		{"nkey", required_argument, NULL, OPT_NKEY},
		{"seed", required_argument, NULL, OPT_SEED},
		{"tls", no_argument, NULL, OPT_TLS},
		{"tls-ca", required_argument, NULL, OPT_TLS_CA},
		{"tls-cert", required_argument, NULL, OPT_TLS_CERT},
		{"tls-key", required_argument, NULL, OPT_TLS_KEY},
		{"tls-hostname", required_argument, NULL, OPT_TLS_HOST},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c_, rc;
	uint64_t v;
	while ((c_ = next_option("bridge", argc, argv, "e:i:p:b:vh", opts)) != -1) {
		switch (c_) {
		case 1:
			if (c->url)
				return usage_error("bridge", "one server URL only ('%s', then '%s')",
						   c->url, optarg);
			c->url = optarg;
			break;
		case 'e':
			if ((rc = add_pattern(&c->exports, &c->nexports, optarg, "export")))
				return rc;
			break;
		case 'i':
			if ((rc = add_pattern(&c->imports, &c->nimports, optarg, "import")))
				return rc;
			break;
		case 'p':
			if (kite_channel_valid(optarg))
				return usage_error("bridge", "bad --prefix '%s': dot-separated "
						   "tokens of [A-Za-z0-9_-], no wildcards", optarg);
			c->prefix = optarg;
			break;
		case 'b': c->bus = optarg; break;
		case OPT_BUFFER:
			if (parse_bytes(optarg, &c->buffer_bytes))
				return usage_error("bridge", "--buffer wants bytes from 1024 to "
						   "2147483647, not '%s'", optarg);
			break;
		case OPT_PENDING:
			if (parse_u64(optarg, 0x7fffffff, &v) || !v)
				return usage_error("bridge", "--import-pending wants a positive "
						   "number, not '%s'", optarg);
			c->import_pending = (int64_t)v;
			break;
		case OPT_DEADLINE:
			if (parse_seconds_ms(optarg, &c->write_deadline_ms) || !c->write_deadline_ms)
				return usage_error("bridge", "--write-deadline wants positive "
						   "seconds, not '%s'", optarg);
			break;
		case OPT_PING:
			if (parse_seconds_ms(optarg, &c->ping_ms) || !c->ping_ms)
				return usage_error("bridge", "--ping-interval wants positive "
						   "seconds, not '%s'", optarg);
			break;
		case OPT_STATS:
			if (parse_seconds_ms(optarg, &c->stats_ms))
				return usage_error("bridge", "--stats-interval wants seconds, "
						   "not '%s'", optarg);
			break;
		case OPT_STATSD: c->statsd = optarg; break;
		case OPT_USER: c->user = optarg; break;
		case OPT_PASSWORD: c->password_file = optarg; break;
		case OPT_TOKEN: c->token_file = optarg; break;
		case OPT_CREDS: c->creds = optarg; break;
		case OPT_NKEY: c->nkey = optarg; break;
		case OPT_SEED: c->seed = optarg; break;
		case OPT_TLS: c->tls = 1; break;
		case OPT_TLS_CA: c->tls_ca = optarg; break;
		case OPT_TLS_CERT: c->tls_cert = optarg; break;
		case OPT_TLS_KEY: c->tls_key = optarg; break;
		case OPT_TLS_HOST: c->tls_hostname = optarg; break;
		case 'v': c->verbose = 1; break;
		case 'h': fputs(usage, stdout); return -1;
		default: return EXIT_USAGE;
		}
	}
	if (optind < argc && !c->url)
		c->url = argv[optind++];
	if (optind < argc)
		return usage_error("bridge", "unexpected operand '%s'", argv[optind]);
	if (!c->url)
		return usage_error("bridge", "expected the NATS server's URL (nats://HOST:PORT)");
	if (strncmp(c->url, "nats://", 7) && strncmp(c->url, "tls://", 6))
		return usage_error("bridge", "the server URL must start with nats:// or "
				   "tls://, not '%s'", c->url);
	if (!c->nexports && !c->nimports)
		return usage_error("bridge", "nothing to carry: give --export and/or --import");
	if (!!c->nkey != !!c->seed)
		return usage_error("bridge", "--nkey and --seed go together");
	if (c->password_file && !c->user)
		return usage_error("bridge", "--password-file needs --user");
	if (!!c->tls_cert != !!c->tls_key)
		return usage_error("bridge", "--tls-cert and --tls-key go together");
	return 0;
}

static void announce(const struct bridge *b)
{
	for (int i = 0; i < b->cfg.nexports; i++)
		fprintf(stderr, "kite bridge: export %s%s%s\n", b->cfg.exports[i],
			b->cfg.prefix ? " -> " : "", b->cfg.prefix ? b->cfg.prefix : "");
	for (int i = 0; i < b->cfg.nimports; i++)
		fprintf(stderr, "kite bridge: import %s%s%s\n",
			b->cfg.prefix ? b->cfg.prefix : "", b->cfg.prefix ? "." : "",
			b->cfg.imports[i]);
}

/* Until the server has been reached once, libnats cannot send headers
 * (it does not know yet whether the server takes them): leave the
 * messages in the rings meanwhile, where they wait up to the ring's size
 * and losses beyond are counted exactly, as for any slow subscriber. */
static int waiting_for_first_server(struct bridge *b)
{
	if (!b->connected_once && natsConnection_Status(b->nc) == NATS_CONN_STATUS_CONNECTED)
		b->connected_once = 1;
	return !b->connected_once;
}

/* One received event: a message is exported (unless it was imported by
 * a bridge), the rest counted or reported. */
static void handle(struct bridge *b, const kite_event *ev)
{
	if (ev->type == KITE_MESSAGE) {
		if (ev->msg.origin)
			atomic_fetch_add_explicit(&b->n.relayed_skipped, 1, memory_order_relaxed);
		else
			bridge_export(b, &ev->msg);
	} else if (ev->type == KITE_LOSS) {
		/* The bridge fell behind its local publishers: their rings
		 * overran it. Counted, and reported by the caller. */
		atomic_fetch_add(&b->n.local_lost, ev->lost);
	} else if (ev->type == KITE_REFUSED) {
		fprintf(stderr, "kite bridge: %s\n", ev->text);
	}
}

/* Export what the rings hold, up to BRIDGE_BATCH; 1 if there may be
 * more, 0 if they are empty, or kite_recv's error. */
static int export_batch(struct bridge *b)
{
	kite_event ev;
	int rc = 0;
	for (int n = 0; n < BRIDGE_BATCH; n++) {
		if ((rc = kite_recv(b->exp, &ev, 0)))
			return rc == -EAGAIN ? 0 : rc;
		handle(b, &ev);
	}
	return 1;
}

static void report_if_changed(struct bridge *b, uint64_t *last_total)
{
	uint64_t total = atomic_load(&b->n.exported) + atomic_load(&b->n.imported) +
			 atomic_load(&b->n.export_dropped) + atomic_load(&b->n.local_lost) +
			 atomic_load(&b->n.import_dropped) + atomic_load(&b->n.disconnects) +
			 atomic_load(&b->n.unmappable) + atomic_load(&b->n.slow_consumer);
	if (total != *last_total)
		bridge_report(b, "stats");
	*last_total = total;
}

/* Idle, the loop looks at the rings at least this often: a publisher
 * whose link is being made again cannot wake it until it is back. */
#define IDLE_MS 50

/* The loop, until SIGINT or SIGTERM (readable on signal_fd): exports,
 * imports, the NATS socket and the stats clock, all on this thread. */
static int run(struct bridge *b, int signal_fd)
{
	int64_t next_report = b->cfg.stats_ms ? now_ms() + b->cfg.stats_ms : INT64_MAX;
	uint64_t last_total = 0;
	for (;;) {
		int busy = bridge_import_drain(b, BRIDGE_BATCH) == BRIDGE_BATCH;
		int kfd = -1;
		if (!waiting_for_first_server(b)) {
			int rc = export_batch(b);
			if (rc < 0)
				return fail(EXIT_SYSTEM, "bridge", "receive: %s", kite_strerror(rc));
			busy |= rc;
			/* Sleep on the rings only once they are armed (and empty). */
			if (!busy && (rc = kite_arm(b->exp)) != 0) {
				if (rc < 0)
					return fail(EXIT_SYSTEM, "bridge", "receive: %s",
						    kite_strerror(rc));
				busy = 1;
			}
			kfd = kite_fd(b->exp);
		}
		bridge_loop_flush_out(b);
		int64_t now = now_ms();
		if (now >= next_report) {
			report_if_changed(b, &last_total);
			next_report = now + b->cfg.stats_ms;
		}
		int64_t left = next_report - now, retire = bridge_retire_due(b, now);
		if (retire < left)
			left = retire;
		int timeout = busy ? 0 : left < IDLE_MS ? (int)left : IDLE_MS;
		int rc = bridge_loop_wait(b, kfd, signal_fd, timeout);
		if (rc > 0)
			return EXIT_DONE;
		if (rc < 0)
			return fail(EXIT_SYSTEM, "bridge", "poll: %s", strerror(-rc));
	}
}

int main(int argc, char **argv)
{
	static struct bridge b = {
		.cfg = {.buffer_bytes = 8 << 20, .import_pending = 65536,
			.write_deadline_ms = 2000, .ping_ms = 10000, .stats_ms = 10000},
	};
	int rc = parse_args(argc, argv, &b.cfg);
	if (rc)
		return rc < 0 ? EXIT_DONE : rc;
	/* Signals are taken by the main loop (sigtimedwait), never by a
	 * libnats thread: block them before any thread starts. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	int signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (signal_fd < 0 || bridge_loop_init(&b.loop))
		return fail(EXIT_SYSTEM, "bridge", "signalfd: %s", strerror(errno));
	if (gethostname(b.host, sizeof b.host - 1))
		snprintf(b.host, sizeof b.host, "unknown");
	if (!claims_host_valid(b.host)) {
		/* A name Kite-Id cannot carry (a space, a control byte, too
		 * long): say so once rather than send a claim that lies. */
		fprintf(stderr, "kite bridge: the host name is no printable ASCII "
			"name of 1 to 255 bytes; exports claim host 'unknown'\n");
		snprintf(b.host, sizeof b.host, "unknown");
	}
	if (b.cfg.statsd && bridge_statsd_open(&b))
		return EXIT_USAGE;
	kite_options ko = {.bus = b.cfg.bus};
	if ((rc = open_bus("bridge", &b.exp, &ko)))
		return rc;
	if ((rc = open_bus("bridge", &b.imp, &ko))) {
		kite_close(b.exp);
		return rc;
	}
	b.id_num = kite_id(b.exp);
	snprintf(b.id, sizeof b.id, "%016" PRIx64, b.id_num);
	int status = EXIT_SYSTEM;
	if (nats_Open(-1) != NATS_OK) {
		fprintf(stderr, "kite bridge: cannot start libnats\n");
		goto out;
	}
	if (bridge_connect(&b) || bridge_import_start(&b))
		goto out;
	for (int i = 0; i < b.cfg.nexports; i++)
		if ((rc = kite_subscribe(b.exp, b.cfg.exports[i])) < 0) {
			fail(EXIT_SYSTEM, "bridge", "subscribe %s: %s", b.cfg.exports[i],
			     kite_strerror(rc));
			goto out;
		}
	/* The server has our import subscriptions once it answers a ping. */
	if (natsConnection_Status(b.nc) == NATS_CONN_STATUS_CONNECTED)
		bridge_loop_flush(&b, 2000);
	if (b.cfg.verbose)
		announce(&b);
	fprintf(stderr, "kite bridge: ready: bus %s <-> %s (bridge id %s)\n",
		b.cfg.bus ? b.cfg.bus : getenv("KITE_BUS") ? getenv("KITE_BUS") : "default",
		b.cfg.url, b.id);
	status = run(&b, signal_fd);
	/* What the rings held is exported, and the server has it. */
	if (natsConnection_Status(b.nc) == NATS_CONN_STATUS_CONNECTED)
		bridge_loop_flush(&b, 1000);
	bridge_report(&b, "final");
	b.stop = 1;
out:
	bridge_retire_all(&b);
	/* Subscriptions first, so no import runs on a closed handle. */
	for (int i = 0; b.subs && i < b.cfg.nimports; i++)
		natsSubscription_Destroy(b.subs[i]);
	natsConnection_Destroy(b.nc);
	nats_CloseAndWait(2000);
	kite_close(b.exp);
	kite_close(b.imp);
	free(b.subs);
	free(b.cfg.exports);
	free(b.cfg.imports);
	bridge_loop_close(&b.loop);
	close(signal_fd);
	return status;
}
