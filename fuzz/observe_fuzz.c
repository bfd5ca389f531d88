/* Fuzz target: an introspection answer as a hostile handle could send it,
 * record by record into ki_observe_item (what kite ls and kite top build
 * their view from), then through kite top's figures, JSON-free tables and
 * Prometheus page. Whatever the records say: no crash, counts within the
 * item cap, only valid names kept, delivery one of the words we know; an
 * answer taken whole has its rings, patterns and rows in order, once each.
 *
 * Input: a run of records, each [type][kind][text_len][reason_len]
 * [slot_size: 1 byte, scaled][id, a, b: 1 byte each, spread over 64 bits]
 * then text_len and reason_len bytes; each head byte counts from '0' (so
 * text seeds can say 0). Two handles take turns. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "observe.h"
#include "top/view.h"

const char *const fuzz_seeds[] = {
	"=1040100" "kite",                             /* INFO_HANDLE, id 1 */
	"=35001573" "lag.x",                           /* a ring */
	"=55550273" "lag.x" "radio" "=4500000" "lag.>", /* a subscription, a pattern */
	"=6000}00" ,                                   /* an end (token 77) */
	"=24000009" "lost",                            /* a counter */
	"=556\xcf\xcf\xcf\xcf" "lag.x" "\x1b[2Jhi",   /* near 2^64, escapes */
	"=33\xcf\xcf" "1\xcf\xcf" "a.*",               /* a pattern for a channel */
	"10000100",                                    /* a hello */
	NULL,
};

static uint64_t spread(uint8_t b)
{
	return b < 0xf0 ? b : ~0ull - (uint64_t)(0xff - b); /* the top: near 2^64 */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct obs_handle h[2];
	memset(h, 0, sizeof h);
	h[0].id = 1, h[0].pid = 10, h[0].state = OBS_ANSWERED;
	h[1].id = 2, h[1].pid = 11, h[1].state = OBS_ANSWERED;
	int done[2] = {0, 0};
	size_t pos = 0;
	for (unsigned turn = 0; pos + 8 <= size; turn ^= 1) {
		uint8_t r[8];
		for (int i = 0; i < 8; i++)
			r[i] = (uint8_t)(data[pos + i] - '0');
		size_t tl = r[2] % (KITE_CHANNEL_MAX + 1), rl = r[3] % (WIRE_REASON_MAX + 1);
		pos += 8;
		if (pos + tl + rl > size)
			break;
		struct wire_msg m;
		ki_wire_init(&m, r[0]);
		m.slot_count = r[1];
		m.slot_size = r[4] < 0xf0 ? r[4] : UINT32_MAX - (0xffu - r[4]);
		m.id = spread(r[5]) % 3; /* hits the handles' ids now and then */
		m.a = spread(r[6]);
		m.b = spread(r[7]);
		memcpy(m.text, data + pos, tl);
		m.text[tl] = 0;
		memcpy(m.reason, data + pos + tl, rl);
		m.reason[rl] = 0;
		pos += tl + rl;
		if (done[turn])
			continue;
		int got = ki_observe_item(&h[turn], &m, 77);
		if (got < -1 || got > 1)
			__builtin_trap();
		if (got == 1 && ki_observe_finish(&h[turn]) < 0)
			got = -1; /* (as the observer does at the end) */
		if (got)
			done[turn] = 1;
		if (got < 0)
			h[turn].state = OBS_CUT;
	}
	for (int i = 0; i < 2; i++) {
		if (h[i].items > OBS_ITEMS_MAX || h[i].npubs > h[i].items ||
		    h[i].nsubs > h[i].items || h[i].npatterns > h[i].items)
			__builtin_trap();
		for (size_t j = 0; j < h[i].npubs; j++)
			if (kite_channel_valid(h[i].pubs[j].channel))
				__builtin_trap();
		for (size_t j = 0; j < h[i].nsubs; j++)
			if (kite_channel_valid(h[i].subs[j].channel) ||
			    (strcmp(h[i].subs[j].delivery, "radio") &&
			     strcmp(h[i].subs[j].delivery, "reliable") &&
			     strcmp(h[i].subs[j].delivery, "?")))
				__builtin_trap();
	}
	for (int i = 0; i < 2; i++) {
		if (h[i].state != OBS_ANSWERED || !done[i])
			continue;
		for (size_t j = 1; j < h[i].npubs; j++)
			if (strcmp(h[i].pubs[j - 1].channel, h[i].pubs[j].channel) >= 0)
				__builtin_trap();
		for (size_t j = 1; j < h[i].npatterns; j++)
			if (strcmp(h[i].patterns[j - 1], h[i].patterns[j]) >= 0)
				__builtin_trap();
		for (size_t j = 1; j < h[i].nsubs; j++) {
			int c = strcmp(h[i].subs[j - 1].channel, h[i].subs[j].channel);
			if (c > 0 || (!c && h[i].subs[j - 1].publisher >= h[i].subs[j].publisher))
				__builtin_trap();
		}
	}
	/* What kite top makes of it: figures against itself, the metrics page. */
	struct obs_bus bus = {.h = h, .n = 2, .cap = 2};
	struct view_figures f;
	if (view_figures(&bus, &bus, 1.0, &f) == 0) {
		view_sort(&f, SORT_LAG);
		view_figures_free(&f);
	}
	static char page[1 << 16];
	FILE *out = fmemopen(page, sizeof page, "w");
	if (out) {
		view_metrics(out, &bus);
		fclose(out);
	}
	for (int i = 0; i < 2; i++) {
		free(h[i].pubs);
		free(h[i].subs);
		ki_strlist_free(&h[i].patterns, &h[i].npatterns);
	}
	return 0;
}
