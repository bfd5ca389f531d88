/* kite fifo: the progress line. Bytes delivered into the pipe and their
 * rate; with a known total (every FILE a regular file) also how much of the
 * input is read and an ETA. Input position counts file bytes, compressed or
 * not, so the estimate holds for compressed files too. On a terminal one
 * line is redrawn in place; forced onto a pipe or file (--progress), one
 * line a second. */
#include <stdio.h>
#include <unistd.h>

#include "cli.h"
#include "fifo.h"

static void human(char *buf, size_t cap, double v)
{
	static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	int u = 0;
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, cap, "%.0f %s", v, unit[u]);
	else
		snprintf(buf, cap, "%.1f %s", v, unit[u]);
}

void fifo_progress_draw(struct fifo_progress *pr, bool force)
{
	if (!pr->on)
		return;
	bool tty = isatty(2);
	int64_t now = now_ms();
	if (!force && now - pr->last_ms < (tty ? 250 : 1000))
		return;
	pr->last_ms = now;
	double secs = (double)(now - pr->start_ms) / 1000.0;
	double written = (double)*pr->written;
	char done[32], rate[32];
	human(done, sizeof done, written);
	human(rate, sizeof rate, secs > 0 ? written / secs : 0);
	fprintf(stderr, "%skite fifo: %s  %s/s", tty ? "\r" : "", done, rate);
	if (pr->total) {
		double pos = (double)pr->done_before;
		if (pr->current)
			pos += (double)fifo_input_position(pr->current);
		double frac = pos / (double)pr->total;
		if (frac > 1)
			frac = 1;
		fprintf(stderr, "  %3.0f%%", frac * 100);
		if (frac > 0 && frac < 1) {
			long eta = (long)(secs * (1 - frac) / frac + 0.5);
			fprintf(stderr, "  ETA %ld:%02ld:%02ld", eta / 3600, eta / 60 % 60, eta % 60);
		}
	}
	fputs(tty ? "\033[K" : "\n", stderr);
	pr->drawn = true;
}

void fifo_progress_end(struct fifo_progress *pr)
{
	if (!pr->on)
		return;
	pr->current = NULL;
	fifo_progress_draw(pr, true);
	if (isatty(2))
		fputc('\n', stderr);
}

void fifo_progress_tick(void *arg)
{
	fifo_progress_draw(arg, false);
}
