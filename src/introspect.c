/* Answering an observer (kite ls, kite top): who we are, the rings we
 * publish, the patterns we subscribe and where we stand in each ring we
 * read. The control thread answers from counters the data path keeps
 * anyway (a ring's head, a reader's position, its loss sum), under the
 * state it already owns: publishing takes no lock and pays nothing for it.
 * The answer is a run of W_INFO records through the asker's bounded
 * outbound queue, so a stopped or slow observer never holds us up; one
 * that lets its queue overflow gets its link cut, like any other peer. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

void ki_read_cmdline(pid_t pid, char *out, size_t size)
{
	char path[64];
	if (pid)
		snprintf(path, sizeof path, "/proc/%ld/cmdline", (long)pid);
	else
		snprintf(path, sizeof path, "/proc/self/cmdline");
	out[0] = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, out, size - 1);
	close(fd);
	if (n <= 0)
		return;
	while (n > 0 && out[n - 1] == 0)
		n--;
	for (ssize_t i = 0; i < n; i++)
		if (out[i] == 0)
			out[i] = ' ';
	out[n] = 0;
}

struct answer {
	kite *k;
	struct peer *p;
	uint64_t items;
	int dead; /* the link cannot take more */
};

static void send_item(struct answer *a, struct wire_msg *m)
{
	if (a->dead)
		return;
	if (ki_peer_send(a->k, a->p, m) < 0)
		a->dead = 1;
	else
		a->items++;
}

static void item(struct wire_msg *m, enum info_kind kind, const char *text)
{
	ki_wire_init(m, W_INFO);
	m->slot_count = kind;
	snprintf(m->text, sizeof m->text, "%s", text ? text : "");
}

static void send_counters(struct answer *a)
{
	const kite_stats *st = &a->k->stats;
	const struct {
		const char *name;
		uint64_t value;
	} counters[] = {
		{"published", st->published}, {"received", st->received},
		{"lost", st->lost}, {"refused", st->refused}, {"peers", st->peers},
		{"wakeups_sent", st->wakeups_sent}, {"events_dropped", st->events_dropped},
	};
	struct wire_msg m;
	for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
		item(&m, INFO_COUNTER, counters[i].name);
		m.b = counters[i].value;
		send_item(a, &m);
	}
}

static void send_pub_rings(struct answer *a, int everything)
{
	kite *k = a->k;
	struct wire_msg m;
	for (size_t i = 0; i < k->pub_hash_size; i++)
		for (struct pub_ring *r = k->pub_hash[i]; r; r = r->hash_next) {
			if (!everything && !ki_policy_allows(k, a->p, r->channel, NULL, 0))
				continue;
			item(&m, INFO_PUB, r->channel);
			m.id = r->ring_id;
			m.a = ki_ring_writer_head(&r->w);
			m.b = r->bytes_published;
			m.slot_size = r->w.slot_count;
			send_item(a, &m);
		}
}

static void send_subscriptions(struct answer *a, int everything)
{
	kite *k = a->k;
	struct wire_msg m;
	for (size_t i = 0; i < k->npatterns; i++) {
		if (!everything && !ki_policy_may_share(k, a->p, k->patterns[i]))
			continue;
		item(&m, INFO_PATTERN, k->patterns[i]);
		send_item(a, &m);
	}
	for (size_t i = 0; i < k->nsubs; i++) {
		const struct sub_ring *s = k->subs[i];
		if (s->unsubscribed ||
		    (!everything && !ki_policy_allows(k, a->p, s->channel, NULL, 0)))
			continue;
		uint64_t head = ki_ring_reader_head(&s->r);
		uint64_t pos = ki_ring_reader_position(&s->r);
		uint64_t lag = head > pos ? head - pos : 0;
		item(&m, INFO_SUB, s->channel);
		m.id = s->publisher;
		m.a = pos;
		m.b = s->lost;
		m.slot_size = lag > UINT32_MAX ? UINT32_MAX : (uint32_t)lag;
		/* A ring read reliably: its publisher may have dropped us to
		 * radio since (it does not say so). */
		snprintf(m.reason, sizeof m.reason, "%s", s->pos_slot1 ? "reliable" : "radio");
		send_item(a, &m);
	}
}

int ki_info_may_answer(kite *k, const struct peer *p)
{
	if (p->uid == k->euid || p->uid == 0)
		return 1;
	uint64_t now = ki_monotonic_ns();
	uint64_t earned = (now - k->info_refill_ns) / (1000000000u / INFO_OTHERS_PER_S);
	if (earned) {
		uint64_t tokens = k->info_tokens + earned;
		k->info_tokens = tokens > INFO_OTHERS_PER_S ? INFO_OTHERS_PER_S : (uint32_t)tokens;
		k->info_refill_ns = now;
	}
	if (!k->info_tokens)
		return 0;
	k->info_tokens--;
	return 1;
}

void ki_info_answer(kite *k, struct peer *p, uint64_t token)
{
	struct answer a = {.k = k, .p = p};
	/* Our uid and root see everything, as they would by subscribing;
	 * anyone else only the channels the policy lets it on. Our command
	 * line too: it may name channels (kite sub secret.x) or carry a
	 * message (kite pub x SECRET). Others read it from /proc themselves,
	 * which shows it only if the system lets them (hidepid). */
	int everything = p->uid == k->euid || p->uid == 0;
	struct wire_msg m;
	item(&m, INFO_HANDLE, NULL);
	m.id = k->id;
	m.slot_size = (uint32_t)everything;
	if (everything)
		ki_read_cmdline(0, m.reason, sizeof m.reason);
	send_item(&a, &m);
	if (everything)
		send_counters(&a);
	send_pub_rings(&a, everything);
	send_subscriptions(&a, everything);
	item(&m, INFO_END, NULL);
	m.id = token;
	m.a = a.items;
	send_item(&a, &m);
}
