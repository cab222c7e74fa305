/* Unit tests for core/retry: the backoff schedule and expiry. */
#include <stdint.h>

#include "core/delivery/retry.h"
#include "tests/unit/tap.h"

#define S 1000000ull

int main(void)
{
	/* Without jitter spread (rnd at the middle) the delay doubles. */
	uint32_t mid = 0x80000000u;

	tap_ok(retry_delay_us(1, 300, 14400, mid) == 300 * S, "first retry after retry_min");
	tap_ok(retry_delay_us(2, 300, 14400, mid) == 600 * S, "second doubles");
	tap_ok(retry_delay_us(3, 300, 14400, mid) == 1200 * S, "third doubles again");
	tap_ok(retry_delay_us(6, 300, 14400, mid) == 9600 * S, "sixth is 9600 s");
	tap_ok(retry_delay_us(7, 300, 14400, mid) == 14400 * S, "capped at retry_max");
	tap_ok(retry_delay_us(60, 300, 14400, mid) == 14400 * S, "stays capped, no overflow");
	tap_ok(retry_delay_us(0, 300, 14400, mid) == 300 * S, "attempt 0 treated as first");
	tap_ok(retry_delay_us(1, 300, 14400, 0) == 270 * S, "jitter low end is -10%%");
	tap_ok(retry_delay_us(1, 300, 14400, 0xffffffffu) < 330 * S &&
	       retry_delay_us(1, 300, 14400, 0xffffffffu) > 329 * S, "jitter high end is +10%%");
	{
		int spread = 1;
		uint64_t lo = UINT64_MAX, hi = 0;

		for (uint32_t r = 0; r < 1000; r++) {
			uint64_t d = retry_delay_us(3, 300, 14400, r * 4294967u);

			lo = d < lo ? d : lo;
			hi = d > hi ? d : hi;
		}
		spread = hi - lo > 200 * S;
		tap_ok(spread, "jitter spreads retries (%llu..%llu us)",
		       (unsigned long long)lo, (unsigned long long)hi);
	}
	tap_ok(retry_delay_us(1, 1, 1, mid) == 1 * S, "1 s schedule for tests");
	tap_ok(!retry_expired(0, 5 * 86400 * S - 1, 5 * 86400), "inside lifetime");
	tap_ok(retry_expired(0, 5 * 86400 * S, 5 * 86400), "at lifetime: expired");
	tap_ok(retry_expired(1000, 1000 + 3 * S, 2), "short lifetime expires");
	/* Waiting without an attempt: from not_before (or now), small jitter. */
	tap_ok(retry_wait_us(1000 * S, 1600 * S, 0) == 1600 * S, "wait: at not_before, low end");
	tap_ok(retry_wait_us(1000 * S, 1600 * S, 0xffffffffu) < 1660 * S &&
	       retry_wait_us(1000 * S, 1600 * S, 0xffffffffu) > 1659 * S,
	       "wait: jitter up to a tenth of the wait");
	tap_ok(retry_wait_us(1000 * S, 0, 0) == 1000 * S &&
	       retry_wait_us(1000 * S, 10 * S, 0xffffffffu) < 1001 * S &&
	       retry_wait_us(1000 * S, 10 * S, 0xffffffffu) > 1000 * S,
	       "wait: not_before in the past or none: now, jitter at least 1 s");
	tap_ok(retry_wait_us(0, 86400 * S, 0xffffffffu) < 86460 * S,
	       "wait: jitter at most 60 s");
	return tap_done();
}
