/* Unit tests for io/timerwheel: firing order, lazy re-filing, far deadlines. */
#include <stdlib.h>

#include "io/timerwheel.h"
#include "tests/unit/tap.h"

struct owner {
	struct timer_entry te;
	int fired;
	uint64_t fired_at;
};

static uint64_t tw_clock;

static void fire(struct timer_entry *te, void *ctx)
{
	struct owner *o = (struct owner *)te;

	(void)ctx;
	o->fired++;
	o->fired_at = tw_clock;
}

int main(void)
{
	struct timerwheel *tw = calloc(1, sizeof(*tw));
	struct owner a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 };
	unsigned n;

	timerwheel_init(tw, 1000);
	timerwheel_set(tw, &a.te, 1005);
	timerwheel_set(tw, &b.te, 1010);
	tw_clock = 1004;
	n = timerwheel_advance(tw, 1004, fire, NULL);
	tap_ok(n == 0 && a.fired == 0, "nothing fires before its deadline");
	tw_clock = 1005;
	n = timerwheel_advance(tw, 1005, fire, NULL);
	tap_ok(n == 1 && a.fired == 1 && a.fired_at == 1005, "fires at its second");
	tap_ok(!a.te.te_linked && a.te.te_deadline == 0, "fired entry is disarmed");

	/* Pushing a deadline later is lazy; it must still fire only then. */
	timerwheel_set(tw, &b.te, 1020);
	tw_clock = 1010;
	n = timerwheel_advance(tw, 1010, fire, NULL);
	tap_ok(n == 0 && b.fired == 0, "moved-later deadline does not fire early");
	tw_clock = 1020;
	n = timerwheel_advance(tw, 1020, fire, NULL);
	tap_ok(n == 1 && b.fired == 1 && b.fired_at == 1020, "moved-later deadline fires then");

	/* Moving earlier re-files at once. */
	timerwheel_set(tw, &c.te, 1100);
	timerwheel_set(tw, &c.te, 1025);
	tw_clock = 1025;
	n = timerwheel_advance(tw, 1025, fire, NULL);
	tap_ok(n == 1 && c.fired == 1, "moved-earlier deadline fires early");

	/* Beyond one revolution. */
	timerwheel_set(tw, &d.te, 1025 + 3 * TIMERWHEEL_SLOTS + 7);
	tw_clock = 1025 + 2 * TIMERWHEEL_SLOTS;
	n = timerwheel_advance(tw, tw_clock, fire, NULL);
	tap_ok(n == 0 && d.fired == 0, "deadline three revolutions away waits");
	tw_clock = 1025 + 3 * TIMERWHEEL_SLOTS + 7;
	n = timerwheel_advance(tw, tw_clock, fire, NULL);
	tap_ok(n == 1 && d.fired == 1, "deadline three revolutions away fires");

	/* Disarm. */
	timerwheel_set(tw, &a.te, tw_clock + 3);
	timerwheel_set(tw, &a.te, 0);
	n = timerwheel_advance(tw, tw_clock + 10, fire, NULL);
	tap_ok(n == 0 && a.fired == 1, "disarmed entry never fires");

	/* A long stall: overdue entries all fire. */
	{
		struct owner many[100];

		for (int i = 0; i < 100; i++) {
			many[i].fired = 0;
			many[i].te.te_linked = false;
			many[i].te.te_deadline = 0;
			timerwheel_set(tw, &many[i].te, tw->tw_now + 1 + (uint64_t)i * 13);
		}
		tw_clock = tw->tw_now + 100000;
		n = timerwheel_advance(tw, tw_clock, fire, NULL);
		int all = 1;
		for (int i = 0; i < 100; i++)
			all &= many[i].fired == 1;
		tap_ok(n == 100 && all, "after a stall every overdue entry fires once");
	}
	free(tw);
	return tap_done();
}
