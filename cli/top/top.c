/* kite top: the bus, live. Every interval a fresh snapshot (src/observe.c)
 * against the previous one gives rates and new losses. On a terminal: a
 * screen redrawn in place, lagging subscribers in yellow, losing ones in
 * red, keys to sort; otherwise the same tables as plain text per interval;
 * --json one object per interval; --metrics serves Prometheus instead. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "view.h"

static const char usage[] =
	"Usage: kite top [--bus NAME] [--json] [--interval SECS] [--count N]\n"
	"                [--sort rate|lag|lost|name] [--timeout SECS] [PATTERN]\n"
	"       kite top --metrics HOST:PORT [--bus NAME] [PATTERN]\n"
	"Watch the bus: per channel the publish rate, subscribers, the slowest\n"
	"subscriber's lag and the messages lost in the last interval; every\n"
	"subscriber's lag and losses; every handle. On a terminal the screen is\n"
	"redrawn each interval (keys: r rate, l lag, o lost, n name, q quit);\n"
	"lagging subscribers (over half their ring behind) show in yellow,\n"
	"those that lost messages in the interval in red. Elsewhere the same\n"
	"tables are printed as plain text each interval.\n\n"
	"  -b, --bus NAME        the bus (default: $KITE_BUS, else 'default')\n"
	"  -j, --json            one JSON object per interval\n"
	"  -i, --interval SECS   between refreshes (default 1)\n"
	"  -n, --count N         stop after N intervals\n"
	"  -s, --sort KEY        rate (default), lag, lost or name\n"
	"  -t, --timeout SECS    wait at most this for each handle (default:\n"
	"                        half the interval, at most 1)\n"
	"  -m, --metrics HOST:PORT  serve Prometheus metrics at /metrics\n"
	"                        instead (each scrape asks the bus afresh)\n"
	"  -h, --help            this help\n\n"
	"Exit: 0 done (--count reached, q, or a signal), 100 usage, 111 system\n"
	"error.\n";

volatile sig_atomic_t top_stop; /* a signal came: finish */

static void on_signal(int sig)
{
	(void)sig;
	top_stop = 1;
}

struct screen {
	int tty;            /* draw in place, with colours */
	int rows;           /* lines the terminal shows (0: unlimited) */
	int used;           /* lines drawn so far */
	struct termios saved;
	int raw;            /* saved holds the terminal's settings */
};

static const char *const sort_names[] = {"rate", "lag", "lost", "name"};

/* The alternate screen, without line wrap: a long command line is cut at
 * the edge rather than pushing the table down. */
static const char screen_enter[] = "\033[?1049h\033[?7l\033[H\033[2J";
static const char screen_leave[] = "\033[?7h\033[?1049l";

static struct screen *tty_screen;        /* what Ctrl-Z gives back */
static volatile sig_atomic_t top_resumed; /* back from Ctrl-Z: redraw */

/* Keys one at a time and unechoed, the terminal's settings otherwise. */
static int keys_raw(const struct termios *saved)
{
	struct termios t = *saved;
	t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
	t.c_cc[VMIN] = 0;
	t.c_cc[VTIME] = 0;
	return tcsetattr(STDIN_FILENO, TCSANOW, &t);
}

static void put(const char *s, size_t len)
{
	while (len) {
		ssize_t n = write(STDOUT_FILENO, s, len);
		if (n <= 0 && errno != EINTR)
			return;
		if (n > 0) {
			s += n;
			len -= (size_t)n;
		}
	}
}

/* Ctrl-Z: give the shell its terminal back as it was (main screen, line
 * wrap, echo), stop, and take it again on fg. (Only async-signal-safe
 * calls: write, tcsetattr, sigaction, sigprocmask, raise.) */
static void on_tstp(int sig)
{
	int saved_errno = errno;
	struct screen *sc = tty_screen;
	put(screen_leave, sizeof screen_leave - 1);
	if (sc->raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &sc->saved);
	struct sigaction dfl = {.sa_handler = SIG_DFL}, mine = {.sa_handler = on_tstp};
	sigaction(SIGTSTP, &dfl, NULL);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTSTP);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	raise(sig); /* stops here until SIGCONT */
	sigaction(SIGTSTP, &mine, NULL);
	if (sc->raw)
		keys_raw(&sc->saved);
	put(screen_enter, sizeof screen_enter - 1);
	top_resumed = 1;
	errno = saved_errno;
}

/* A line of the screen; on a terminal, lines past its height are left out. */
static int room(struct screen *sc)
{
	return !sc->tty || !sc->rows || sc->used < sc->rows - 1;
}

static void colour(struct screen *sc, const char *code)
{
	if (sc->tty)
		fputs(code, stdout);
}

static void endline(struct screen *sc)
{
	if (sc->tty)
		fputs("\033[0m\033[K", stdout);
	fputc('\n', stdout);
	sc->used++;
}

static void draw_channels(struct screen *sc, const struct view_figures *f)
{
	if (!room(sc))
		return;
	colour(sc, "\033[7m");
	printf("%-32s %4s %4s %10s %12s %9s %8s %10s %10s", "CHANNEL", "PUBS", "SUBS",
	       "RATE/s", "PUBLISHED", "MAX LAG", "BY PID", "LOST NOW", "LOST");
	endline(sc);
	for (size_t i = 0; i < f->nch && room(sc); i++) {
		const struct view_channel *c = &f->ch[i];
		if (c->lost_new)
			colour(sc, "\033[1;31m");
		printf("%-32s %4u %4u %10.1f %12" PRIu64 " %9" PRIu64 " %8ld %10" PRIu64
		       " %10" PRIu64, c->channel, c->publishers, c->subscribers, c->rate,
		       c->published, c->max_lag, (long)c->slowest_pid, c->lost_new, c->lost);
		endline(sc);
	}
}

static void draw_readers(struct screen *sc, const struct view_figures *f)
{
	if (!room(sc))
		return;
	endline(sc);
	colour(sc, "\033[7m");
	printf("%-32s %7s %7s %12s %9s %10s %10s %s", "SUBSCRIBER OF", "PID", "FROM",
	       "POSITION", "LAG", "LOST NOW", "LOST", "COMMAND");
	endline(sc);
	for (size_t i = 0; i < f->nrd && room(sc); i++) {
		const struct view_reader *r = &f->rd[i];
		if (r->lost_new)
			colour(sc, "\033[1;31m");
		else if (r->lagging)
			colour(sc, "\033[33m");
		printf("%-32s %7ld %7ld %12" PRIu64 " %9" PRIu64 " %10" PRIu64 " %10" PRIu64 " ",
		       r->s->channel, (long)r->h->pid, (long)r->publisher_pid, r->s->position,
		       r->s->lag, r->lost_new, r->s->lost);
		view_command(stdout, r->h->command);
		endline(sc);
	}
}

static void draw_handles(struct screen *sc, const struct obs_bus *b)
{
	if (!room(sc))
		return;
	endline(sc);
	colour(sc, "\033[7m");
	printf("%7s %6s %-11s %5s %5s %12s %12s %10s %s", "PID", "UID", "STATE", "PUBS",
	       "SUBS", "PUBLISHED", "RECEIVED", "LOST", "COMMAND");
	endline(sc);
	for (size_t i = 0; i < b->n && room(sc); i++) {
		const struct obs_handle *h = &b->h[i];
		if (h->state != OBS_ANSWERED)
			colour(sc, "\033[1;31m");
		printf("%7ld %6u %-11s %5zu %5zu ", (long)h->pid, (unsigned)h->uid,
		       view_state_name(h->state), h->npubs, h->npatterns);
		if (h->have_stats)
			printf("%12" PRIu64 " %12" PRIu64 " %10" PRIu64 " ", h->stats.published,
			       h->stats.received, h->stats.lost);
		else
			printf("%12s %12s %10s ", "-", "-", "-");
		view_command(stdout, h->command);
		endline(sc);
	}
}

static void draw(struct screen *sc, const char *bus, const struct obs_bus *b,
		 const struct view_figures *f, enum view_sort key)
{
	sc->used = 0;
	if (sc->tty) {
		struct winsize ws;
		sc->rows = ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 ? ws.ws_row : 0;
		fputs("\033[H", stdout);
	}
	time_t t = time(NULL);
	char when[16];
	strftime(when, sizeof when, "%H:%M:%S", localtime(&t));
	unsigned silent = 0;
	for (size_t i = 0; i < b->n; i++)
		silent += b->h[i].state != OBS_ANSWERED;
	printf("kite top %s  bus %s  %zu handles (%u not answering)  %zu channels  "
	       "sort: %s  asked in %.1f ms", when, bus, b->n, silent, f->nch,
	       sort_names[key], (double)b->took_us / 1000);
	endline(sc);
	draw_channels(sc, f);
	draw_readers(sc, f);
	draw_handles(sc, b);
	if (sc->tty)
		fputs("\033[J", stdout); /* what the last screen had below */
	else
		fputc('\n', stdout);
	fflush(stdout);
}

static void raw_keys(struct screen *sc)
{
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &sc->saved) == 0 &&
	    keys_raw(&sc->saved) == 0)
		sc->raw = 1;
}

/* Wait until due (monotonic ms), taking keys meanwhile; 1 to quit. */
static int wait_keys(struct screen *sc, int64_t due, enum view_sort *key, int *redraw)
{
	while (!top_stop) {
		if (top_resumed) { /* the screen was cleared: same figures again */
			top_resumed = 0;
			*redraw = 1;
			return 0;
		}
		int64_t left = due - now_ms();
		if (left <= 0)
			return 0;
		struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
		int n = poll(&p, sc->raw ? 1 : 0, (int)left);
		if (n <= 0 || !(p.revents & POLLIN)) {
			if (n < 0 && errno != EINTR)
				return 1;
			if (p.revents & (POLLHUP | POLLERR))
				sc->raw = 0; /* the terminal went away: stop reading it */
			continue;
		}
		char c;
		if (read(STDIN_FILENO, &c, 1) != 1) {
			sc->raw = 0;
			continue;
		}
		const char *keys = "rlon";
		const char *k = c ? strchr(keys, c) : NULL;
		if (c == 'q')
			return 1;
		if (k) {
			*key = (enum view_sort)(k - keys);
			*redraw = 1;
			return 0;
		}
	}
	return 1;
}

struct top_opts {
	const char *bus, *pattern, *metrics;
	int json;
	int64_t interval_ms, timeout_ms;
	uint64_t count;
	enum view_sort key;
};

static int parse(int argc, char **argv, struct top_opts *o)
{
	static const struct option opts[] = {
		{"bus", required_argument, 0, 'b'}, {"json", no_argument, 0, 'j'},
		{"interval", required_argument, 0, 'i'}, {"count", required_argument, 0, 'n'},
		{"sort", required_argument, 0, 's'}, {"timeout", required_argument, 0, 't'},
		{"metrics", required_argument, 0, 'm'}, {"help", no_argument, 0, 'h'},
		{0, 0, 0, 0}};
	int c;
	while ((c = next_option("top", argc, argv, "b:ji:n:s:t:m:h", opts)) != -1) {
		switch (c) {
		case 'b': o->bus = optarg; break;
		case 'j': o->json = 1; break;
		case 'm': o->metrics = optarg; break;
		case 'i':
			if (parse_seconds_ms(optarg, &o->interval_ms) || o->interval_ms < 100 ||
			    o->interval_ms > 3600000)
				return usage_error("top", "bad --interval '%s' (0.1 to 3600 s)", optarg);
			break;
		case 't':
			if (parse_seconds_ms(optarg, &o->timeout_ms) || o->timeout_ms < 1 ||
			    o->timeout_ms > 60000)
				return usage_error("top", "bad --timeout '%s' (up to 60 s)", optarg);
			break;
		case 'n':
			if (parse_u64(optarg, UINT32_MAX, &o->count) || !o->count)
				return usage_error("top", "bad --count '%s'", optarg);
			break;
		case 's': {
			size_t i = 0;
			while (i < 4 && strcmp(optarg, sort_names[i]))
				i++;
			if (i == 4)
				return usage_error("top", "bad --sort '%s' (rate, lag, lost, name)", optarg);
			o->key = (enum view_sort)i;
			break;
		}
		case 'h': fputs(usage, stdout); return -1; /* (done) */
		case 1:
			if (o->pattern)
				return usage_error("top", "one PATTERN at most");
			o->pattern = optarg;
			break;
		default: return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		if (o->pattern || optind + 1 < argc)
			return usage_error("top", "one PATTERN at most");
		o->pattern = argv[optind];
	}
	if (o->pattern && kite_pattern_valid(o->pattern))
		return usage_error("top", "bad pattern '%s'", o->pattern);
	if (o->metrics && (o->json || o->count))
		return usage_error("top", "--metrics serves until a signal: no --json or --count");
	int rc = view_bus_check("top", o->bus); /* (before serving or drawing) */
	if (rc)
		return rc;
	if (!o->timeout_ms)
		o->timeout_ms = o->interval_ms / 2 < 1000 ? o->interval_ms / 2 : 1000;
	return 0;
}

int cmd_top(int argc, char **argv)
{
	struct top_opts o = {.interval_ms = 1000, .key = SORT_RATE};
	int rc = parse(argc, argv, &o);
	if (rc)
		return rc < 0 ? EXIT_DONE : rc; /* (-1: --help) */
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (o.metrics)
		return top_serve_metrics(o.metrics, o.bus, o.pattern, (int)o.timeout_ms);
	const char *bus = view_bus_name(o.bus);
	struct screen sc = {.tty = !o.json && isatty(STDOUT_FILENO)};
	if (sc.tty) {
		raw_keys(&sc);
		fputs(screen_enter, stdout);
		fflush(stdout);
		tty_screen = &sc;
		struct sigaction tstp = {.sa_handler = on_tstp};
		sigaction(SIGTSTP, &tstp, NULL);
	}
	struct obs_bus prev = {0}, cur;
	int64_t prev_ms = 0, due = now_ms();
	rc = EXIT_DONE;
	for (uint64_t n = 0; !top_stop && (!o.count || n < o.count); n++) {
		int64_t t = now_ms();
		if ((rc = view_snapshot("top", o.bus, o.pattern, (int)o.timeout_ms, &cur)))
			break;
		struct view_figures f;
		if (view_figures(n ? &prev : NULL, &cur, n ? (double)(t - prev_ms) / 1000 : 0, &f)) {
			ki_observe_free(&cur);
			rc = fail(EXIT_SYSTEM, "top", "out of memory");
			break;
		}
		int redraw;
		do {
			redraw = 0;
			view_sort(&f, o.key);
			if (o.json) {
				view_json_interval(bus, &cur, &f);
				fflush(stdout);
			} else {
				draw(&sc, bus, &cur, &f, o.key);
			}
			if (ferror(stdout)) {
				top_stop = 1; /* nobody reads us any more */
				break;
			}
			if (o.count && n + 1 >= o.count)
				break;
			due += o.interval_ms;
			if (wait_keys(&sc, due, &o.key, &redraw))
				top_stop = 1;
			if (redraw)
				due -= o.interval_ms; /* same snapshot, new order: keep time */
		} while (redraw && !top_stop);
		view_figures_free(&f);
		ki_observe_free(&prev);
		prev = cur;
		prev_ms = t;
	}
	ki_observe_free(&prev);
	if (sc.tty) {
		signal(SIGTSTP, SIG_DFL);
		fputs(screen_leave, stdout);
	}
	if (sc.raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &sc.saved);
	fflush(stdout);
	return rc;
}
