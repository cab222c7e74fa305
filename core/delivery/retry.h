/*
 * retry: when to try a deferred recipient again. Exponential backoff from
 * retry_min doubling per attempt up to retry_max, with +-10% jitter so
 * a burst of deferrals does not come back as a burst; and the expiry
 * rule (max_queue_lifetime). Pure functions; the caller passes the clock
 * and the random value.
 */
#ifndef RINGMTA_RETRY_H
#define RINGMTA_RETRY_H

#include <stdbool.h>
#include <stdint.h>

/* Delay in microseconds before attempt number attempts+1. rnd: any
 * 32-bit random value (jitter). */
uint64_t retry_delay_us(unsigned attempts, unsigned min_s, unsigned max_s,
			uint32_t rnd);
/*
 * When a recipient that waited without an attempt (its site suspended)
 * comes back: max(not_before_us, now_us) plus a jitter of up to a tenth
 * of the wait, at least 1 s and at most 60 s, so that every recipient
 * held back by one suspension does not wake in the same instant.
 */
uint64_t retry_wait_us(uint64_t now_us, uint64_t not_before_us, uint32_t rnd);
/* True when a recipient that arrived at arrival_us may not be tried at
 * next_us any more (it would be past its lifetime). */
bool retry_expired(uint64_t arrival_us, uint64_t next_us, unsigned lifetime_s);

#endif
