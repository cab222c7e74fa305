/* retry.c: see retry.h. */
#include "core/delivery/retry.h"

uint64_t retry_delay_us(unsigned attempts, unsigned min_s, unsigned max_s,
			uint32_t rnd)
{
	uint64_t d = (uint64_t)min_s * 1000000u, max = (uint64_t)max_s * 1000000u;
	uint64_t jitter;

	for (unsigned i = 1; i < attempts && d < max; i++)
		d *= 2;
	if (d > max)
		d = max;
	/* +-10%: d * (0.9 + 0.2 * rnd / 2^32) */
	jitter = d / 5;
	return d - d / 10 + (jitter * rnd >> 32);
}

bool retry_expired(uint64_t arrival_us, uint64_t next_us, unsigned lifetime_s)
{
	return next_us >= arrival_us + (uint64_t)lifetime_s * 1000000u;
}

uint64_t retry_wait_us(uint64_t now_us, uint64_t not_before_us, uint32_t rnd)
{
	uint64_t at = not_before_us > now_us ? not_before_us : now_us;
	uint64_t spread = (at - now_us) / 10;

	if (spread < 1000000u)
		spread = 1000000u;
	if (spread > 60000000u)
		spread = 60000000u;
	return at + (spread * rnd >> 32);
}
