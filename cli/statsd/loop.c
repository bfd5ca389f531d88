/* kite statsd: the collector's event loop. One thread, one epoll set
 * holding
 *   the datagram sockets (ingest.c),
 *   a timerfd for the flush interval: a flush marks the interval's end
 *     at once and sweeps the table FLUSH_TURN_SERIES series a turn, then
 *     goes to Graphite (push.c) and the kite channel (channel.c),
 *   a signalfd (sys/event_loop.c): SIGTERM/SIGINT drain, flush and push,
 *     then exit; SIGHUP reloads the --config file,
 *   the HTTP listener and its connections (http.c),
 *   the Graphite connection (push.c).
 * Nothing a client sends can block the loop: every socket is non-blocking. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

#include "channel.h"
#include "cli.h"
#include "event_loop.h"
#include "http.h"
#include "ingest.h"
#include "loop.h"
#include "net.h"
#include "push.h"

/* At SIGTERM, read at most this many batches still queued: a sender that
 * never stops must not hold off the exit. */
#define SHUTDOWN_BATCHES 4096
/* Batches read from one socket before the loop looks at the others. */
#define TURN_BATCHES 16
/* Series a flush sweeps per event-loop turn: a few milliseconds (a
 * series costs 100-400 ns, mostly cache misses), so a million series
 * never hold datagrams back for long. */
#define FLUSH_TURN_SERIES 16384

enum { EV_SIGNAL = 1, EV_TIMER, EV_DGRAM, EV_HTTP_LISTEN, EV_HTTP, EV_GRAPHITE };

struct daemon {
	struct statsd_config cfg;
	const char *config_path;
	char **overrides;
	int n_overrides;
	struct statsd_table *t;
	int ep, sfd, tfd;
	struct statsd_ingest in;
	struct statsd_http http;
	struct statsd_push push;
	struct statsd_channel chan;
	int64_t last_flush;   /* now_ms() at the last flush, or at start */
	int64_t flush_ts;     /* unix time of the flush being swept */
	double flush_work;    /* seconds spent on it so far */
	bool stopping;
};

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Sweep up to max_series of the flush under way; once the table is swept,
 * its lines go to Graphite and the channel. */
static void flush_pump(struct daemon *d, size_t max_series)
{
	if (!statsd_table_flushing(d->t))
		return;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	bool done = statsd_table_flush_step(d->t, max_series);
	if (done) {
		struct statsd_graphite_opts o = {.prefix = d->cfg.graphite_prefix,
						 .legacy = d->cfg.graphite_legacy};
		statsd_push_flush(&d->push, d->t, &o, d->flush_ts);
		statsd_channel_publish(&d->chan, d->t, d->cfg.channel, &o, d->flush_ts);
	}
	d->flush_work += seconds_since(&t0);
	if (done) {
		struct statsd_health *h = statsd_table_health(d->t);
		h->flush_seconds_last = d->flush_work;
		h->flush_seconds_total += d->flush_work;
	}
}

/* Close the interval of interval_ms (rates are per second of it): its end
 * is now; the sweep follows a slice a turn (flush_pump). */
static void flush(struct daemon *d, int64_t interval_ms)
{
	/* A sweep still under way (a flush interval shorter than a sweep)
	 * ends first, and the last flush's lines not out yet are made of
	 * figures this flush replaces: they are rendered (push) or published
	 * (channel) before. */
	flush_pump(d, SIZE_MAX);
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	d->last_flush = now_ms();
	statsd_push_settle(&d->push);
	statsd_channel_settle(&d->chan);
	statsd_table_flush_begin(d->t, interval_ms);
	d->flush_ts = (int64_t)time(NULL);
	d->flush_work = seconds_since(&t0);
}

static void arm_timer(struct daemon *d)
{
	struct itimerspec its = {
		.it_interval = {d->cfg.flush_ms / 1000, (d->cfg.flush_ms % 1000) * 1000000},
	};
	its.it_value = its.it_interval;
	timerfd_settime(d->tfd, 0, &its, NULL);
}

/* SIGHUP: read the configuration again. Listening addresses stay:
 * rebinding would lose datagrams in flight. */
static void reload(struct daemon *d)
{
	struct statsd_config nc;
	char err[512];
	if (statsd_config_build(&nc, d->config_path, d->overrides, d->n_overrides, err,
				sizeof err) < 0) {
		statsd_log("%s", err);
		statsd_log("reload failed; keeping the running configuration");
		return;
	}
	if (statsd_config_keep_listeners(&nc, &d->cfg))
		statsd_log("reload: listening addresses, rcvbuf and timer-histogram change only at restart");
	bool new_graphite = strcmp(nc.graphite, d->cfg.graphite) != 0;
	bool new_flush = nc.flush_ms != d->cfg.flush_ms;
	d->cfg = nc;
	statsd_table_configure(d->t, &d->cfg);
	if (new_flush)
		arm_timer(d);
	d->push.timeout_ms = d->cfg.graphite_timeout_ms;
	if (new_graphite) {
		statsd_push_close(&d->push, false, false);
		statsd_push_configure(&d->push, &d->cfg, d->ep, EVENT_DATA(EV_GRAPHITE, 0),
				      statsd_table_health(d->t));
		statsd_channel_open(&d->chan, d->cfg.channel);
	}
	statsd_table_health(d->t)->reloads++;
	statsd_log("reloaded %s", d->config_path ? d->config_path : "(no file)");
}

static const int handled_signals[] = {SIGTERM, SIGINT, SIGHUP};

static int setup(struct daemon *d)
{
	int r = event_loop_open(handled_signals,
				sizeof handled_signals / sizeof *handled_signals,
				EVENT_DATA(EV_SIGNAL, 0), &d->ep, &d->sfd);
	d->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (r < 0 || d->tfd < 0) {
		statsd_log("setup: %s", strerror(r < 0 ? -r : errno));
		return -1;
	}
	event_watch(d->ep, d->tfd, EPOLLIN, EVENT_DATA(EV_TIMER, 0));
	if (statsd_ingest_open(&d->in, &d->cfg) < 0)
		return -1;
	for (int i = 0; i < d->in.n; i++)
		event_watch(d->ep, d->in.fd[i], EPOLLIN, EVENT_DATA(EV_DGRAM, i));
	if (statsd_http_open(&d->http, d->cfg.http, d->ep, EV_HTTP_LISTEN, EV_HTTP, d->t) < 0)
		return -1;
	if (statsd_push_configure(&d->push, &d->cfg, d->ep, EVENT_DATA(EV_GRAPHITE, 0),
				  statsd_table_health(d->t)) < 0)
		return -1;
	statsd_channel_open(&d->chan, d->cfg.channel);
	arm_timer(d);
	d->last_flush = now_ms();
	return 0;
}

static void teardown(struct daemon *d)
{
	statsd_channel_close(&d->chan);
	statsd_http_close(&d->http);
	statsd_ingest_close(&d->in);
	statsd_push_close(&d->push, false, true);
	int fds[] = {d->ep, d->sfd, d->tfd};
	for (size_t i = 0; i < sizeof fds / sizeof *fds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	statsd_table_free(d->t);
}

/* SIGTERM: read what the kernel still holds, flush it, and give the
 * Graphite push up to graphite-timeout to finish. */
static void shutdown_flush(struct daemon *d)
{
	for (int i = 0; i < d->in.n; i++)
		statsd_ingest_read(&d->in, i, d->t, SHUTDOWN_BATCHES);
	/* The interval cut short: rates are per second of what it lasted. */
	int64_t lasted = now_ms() - d->last_flush;
	flush(d, lasted > 0 ? lasted : 1);
	flush_pump(d, SIZE_MAX);
	statsd_push_finish(&d->push);
}

static void on_event(struct daemon *d, const struct epoll_event *ev)
{
	uint32_t idx = EVENT_IDX(ev->data.u64);
	switch (EVENT_TAG(ev->data.u64)) {
	case EV_DGRAM:
		statsd_ingest_read(&d->in, (int)idx, d->t, TURN_BATCHES);
		break;
	case EV_TIMER: {
		uint64_t ticks;
		if (read(d->tfd, &ticks, sizeof ticks) == sizeof ticks)
			flush(d, d->cfg.flush_ms);
		break;
	}
	case EV_SIGNAL: {
		struct signalfd_siginfo si;
		while (read(d->sfd, &si, sizeof si) == sizeof si) {
			if (si.ssi_signo == SIGHUP)
				reload(d);
			else
				d->stopping = true;
		}
		break;
	}
	case EV_HTTP_LISTEN:
		statsd_http_accept(&d->http);
		break;
	case EV_HTTP:
		statsd_http_io(&d->http, (int)idx, ev->events);
		break;
	case EV_GRAPHITE:
		statsd_push_io(&d->push, ev->events);
		break;
	}
}

int statsd_run(const struct statsd_config *cfg, const char *config_path,
	       char **overrides, int n_overrides)
{
	struct daemon d = {.cfg = *cfg, .config_path = config_path,
			   .overrides = overrides, .n_overrides = n_overrides,
			   .ep = -1, .sfd = -1, .tfd = -1,
			   .http = {.listen_fd = -1}, .push = {.fd = -1}};
	uint64_t seed = 0;
	if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != sizeof seed)
		seed = (uint64_t)now_ms() * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	d.t = statsd_table_new(seed);
	if (!d.t) {
		statsd_log("out of memory");
		return EXIT_SYSTEM;
	}
	statsd_table_configure(d.t, &d.cfg);
	if (setup(&d) < 0) {
		teardown(&d);
		return EXIT_SYSTEM;
	}
	statsd_log("ready, flushing every %lld ms", (long long)d.cfg.flush_ms);
	while (!d.stopping) {
		struct epoll_event ev[32];
		/* A flush still being swept, or published on the channel: one
		 * slice per turn, so the loop looks at its sockets in between. */
		bool busy = statsd_table_flushing(d.t) || statsd_channel_busy(&d.chan);
		int n = epoll_wait(d.ep, ev, 32, busy ? 0 : 1000);
		if (n < 0 && errno != EINTR) {
			statsd_log("epoll_wait: %s", strerror(errno));
			break;
		}
		struct timespec t0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (int k = 0; k < n; k++)
			on_event(&d, &ev[k]);
		flush_pump(&d, FLUSH_TURN_SERIES);
		statsd_channel_pump(&d.chan);
		statsd_http_reap(&d.http, now_ms());
		struct statsd_health *h = statsd_table_health(d.t);
		double turn = seconds_since(&t0);
		if (turn > h->turn_seconds_max)
			h->turn_seconds_max = turn;
	}
	statsd_log("stopping: final flush");
	shutdown_flush(&d);
	teardown(&d);
	return EXIT_DONE;
}
