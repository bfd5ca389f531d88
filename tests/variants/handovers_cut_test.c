/* A publisher killed while its link to a stopped subscriber is cut (its
 * outbound queue overflowed: this variant's queues are tiny, see the
 * Makefile). Ring hand-overs queued when the link was cut went with it, and
 * channels made after the cut were never handed over; the subscriber must
 * still have every message delivered or reported lost, with NEW and GONE
 * per channel: when the publisher is dead by the time it reads the end of
 * the link, and when it is still there then (stopped: the subscriber tries
 * to link again) and is killed only later. */
#include <signal.h>
#include <stdio.h>

#include "../check.h"
#include "../child.h"
#include "../killed_pub.h"

static struct kp_result *res;
static char bus[96];

CHILD_SHARED_FIXTURES(res)

static void run(const char *name, int kill_while_relinking)
{
	snprintf(bus, sizeof bus, "%s", test_bus(name));
	struct kp_plan plan = {.bus = bus, .prefix = "cut.", .channels = 120,
			       .per_channel = 3, .name_pad = 60, .stop_subscriber = 1,
			       .churn_at = 40, .kill_while_relinking = kill_while_relinking};
	char why[512];
	if (kp_run(&plan, res, why, sizeof why))
		fail_msg("%s", why);
	uint64_t delivered = 0;
	for (int c = 0; c < plan.channels; c++)
		delivered += res->s[c].messages;
	print_message("# %d channels x %d, link cut at channel %d: %llu delivered, %llu "
		      "reported lost\n", plan.channels, plan.per_channel, plan.churn_at,
		      (unsigned long long)delivered, (unsigned long long)res->total_lost);
	if (kp_check(&plan, res, why, sizeof why))
		fail_msg("%s", why);
	assert_true(res->total_lost > 0);
}

static void test_killed_after_cut(void **state)
{
	(void)state;
	run("hocut-dead", 0);
}

static void test_killed_while_relinking(void **state)
{
	(void)state;
	run("hocut-relink", 1);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_killed_after_cut),
		T(test_killed_while_relinking),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
