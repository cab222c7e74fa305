/*
 * bclass_stats.c: how many failed and deferred recipients each bounce
 * class had, for the metrics endpoint. Process-wide relaxed atomic
 * counters: delivery workers add, the metrics thread reads; a reader sees
 * each count as it was at some recent moment.
 */
#include "core/bounce/bclass_stats.h"

#include <stdatomic.h>

static atomic_uint_fast64_t bclass_stat[BCLASS_COUNT][2];

void bclass_stats_count(unsigned c, bool failed)
{
	if (c < BCLASS_COUNT)
		atomic_fetch_add_explicit(&bclass_stat[c][failed ? 1 : 0], 1,
					  memory_order_relaxed);
}

void bclass_stats_get(uint64_t out[BCLASS_COUNT][2])
{
	for (unsigned c = 0; c < BCLASS_COUNT; c++)
		for (unsigned f = 0; f < 2; f++)
			out[c][f] = atomic_load_explicit(&bclass_stat[c][f],
							 memory_order_relaxed);
}
