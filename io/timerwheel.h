/*
 * timerwheel: a hashed timing wheel with one-second slots, one per worker.
 *
 * Entries are intrusive (embedded in the owner). Arming is O(1); each
 * tick visits only the slot whose second has come. A deadline moved later
 * is not re-filed at once: when its slot comes round the entry is seen to
 * be early and re-filed (lazy cancellation), so a busy session that
 * pushes its deadline on every command costs nothing per command.
 * Single-threaded: the owning worker alone touches it.
 */
#ifndef RINGMTA_TIMERWHEEL_H
#define RINGMTA_TIMERWHEEL_H

#include <stdint.h>
#include <stdbool.h>

#define TIMERWHEEL_SLOTS 512u	/* power of two; seconds per revolution */

struct timer_entry {
	struct timer_entry *te_next, *te_prev;
	uint64_t te_deadline;	/* seconds (monotonic); 0 = disarmed */
	bool te_linked;
};

struct timerwheel {
	struct timer_entry tw_slots[TIMERWHEEL_SLOTS];	/* list heads */
	uint64_t tw_now;	/* last second processed */
};

typedef void timerwheel_fire_fn(struct timer_entry *te, void *ctx);

void timerwheel_init(struct timerwheel *tw, uint64_t now);
/* Set or move the deadline (absolute seconds). deadline 0 disarms. */
void timerwheel_set(struct timerwheel *tw, struct timer_entry *te, uint64_t deadline);
/* Unlink (before the owner is freed). */
void timerwheel_del(struct timer_entry *te);
/*
 * Advance to 'now', calling fire() for each entry whose deadline has
 * passed; the entry is unlinked and disarmed before the call, so fire()
 * may re-arm or free it. Returns the number fired.
 */
unsigned timerwheel_advance(struct timerwheel *tw, uint64_t now,
			    timerwheel_fire_fn *fire, void *ctx);

#endif
