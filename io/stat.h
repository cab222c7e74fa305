/*
 * stat: counters written by one thread and read by another (the metrics
 * endpoint). A relaxed load and store, not a locked add: each counter
 * has a single writer, so no increment is lost, and readers see a value
 * that was true at some recent moment.
 */
#ifndef RINGMTA_STAT_H
#define RINGMTA_STAT_H

#include <stdatomic.h>
#include <stdint.h>

typedef _Atomic uint64_t stat_t;

static inline void stat_add(stat_t *s, uint64_t n)
{
	atomic_store_explicit(s, atomic_load_explicit(s, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static inline void stat_inc(stat_t *s)
{
	stat_add(s, 1);
}

static inline uint64_t stat_get(const stat_t *s)
{
	return atomic_load_explicit((stat_t *)s, memory_order_relaxed);
}

/* Latency histogram with fixed buckets (seconds), single writer. */
#define STAT_HIST_NBUCKETS 15
extern const double stat_hist_bounds[STAT_HIST_NBUCKETS];	/* last is +Inf */

struct stat_hist {
	stat_t sh_buckets[STAT_HIST_NBUCKETS];	/* not cumulative */
	stat_t sh_count;
	stat_t sh_sum_ns;
};

void stat_hist_observe(struct stat_hist *h, uint64_t ns);

#endif
