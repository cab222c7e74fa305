/*
 * timerwheel.c: see timerwheel.h. The wheel owns no memory: entries live
 * in their owners, slots are list heads.
 */
#include "io/timerwheel.h"

#include <stddef.h>

static void tw_link(struct timerwheel *tw, struct timer_entry *te)
{
	uint64_t when = te->te_deadline <= tw->tw_now ? tw->tw_now + 1 : te->te_deadline;
	struct timer_entry *head = &tw->tw_slots[when & (TIMERWHEEL_SLOTS - 1)];

	te->te_next = head->te_next;
	te->te_prev = head;
	head->te_next->te_prev = te;
	head->te_next = te;
	te->te_linked = true;
}

void timerwheel_del(struct timer_entry *te)
{
	if (!te->te_linked)
		return;
	te->te_prev->te_next = te->te_next;
	te->te_next->te_prev = te->te_prev;
	te->te_next = te->te_prev = NULL;
	te->te_linked = false;
}

void timerwheel_init(struct timerwheel *tw, uint64_t now)
{
	for (unsigned i = 0; i < TIMERWHEEL_SLOTS; i++)
		tw->tw_slots[i].te_next = tw->tw_slots[i].te_prev = &tw->tw_slots[i];
	tw->tw_now = now;
}

void timerwheel_set(struct timerwheel *tw, struct timer_entry *te, uint64_t deadline)
{
	uint64_t old = te->te_deadline;

	te->te_deadline = deadline;
	if (deadline == 0) {
		timerwheel_del(te);
		return;
	}
	/* Later than before and already filed: leave it, re-filed lazily. */
	if (te->te_linked && old != 0 && deadline >= old)
		return;
	timerwheel_del(te);
	tw_link(tw, te);
}

unsigned timerwheel_advance(struct timerwheel *tw, uint64_t now,
			    timerwheel_fire_fn *fire, void *ctx)
{
	unsigned fired = 0;

	/* After a long stall, one revolution visits every slot once. */
	if (now > tw->tw_now + TIMERWHEEL_SLOTS)
		tw->tw_now = now - TIMERWHEEL_SLOTS;
	while (tw->tw_now < now) {
		struct timer_entry *head, *te, pending;

		tw->tw_now++;
		head = &tw->tw_slots[tw->tw_now & (TIMERWHEEL_SLOTS - 1)];
		/* Move the slot to a private list so re-filing cannot loop. */
		if (head->te_next == head)
			continue;
		pending.te_next = head->te_next;
		pending.te_prev = head->te_prev;
		pending.te_next->te_prev = &pending;
		pending.te_prev->te_next = &pending;
		head->te_next = head->te_prev = head;
		/* Pop one at a time: fire() may unlink or free any entry. */
		while ((te = pending.te_next) != &pending) {
			timerwheel_del(te);
			if (te->te_deadline > now) {
				tw_link(tw, te);
				continue;
			}
			te->te_deadline = 0;
			fired++;
			fire(te, ctx);
		}
	}
	return fired;
}
