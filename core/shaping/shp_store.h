/*
 * shp_store: the counters behind traffic shaping, on string keys: GCRA
 * throttles (message and connection rates), counting semaphores
 * (connections open per path / per provider) and sliding-window event
 * counters (automation thresholds such as "3 in 10m").
 *
 * Every operation is atomic per key and takes the time from its caller,
 * so it is a pure function of (stored value, arguments, now): that is
 * what lets a shared store implement the same table later. With Redis,
 * each op is one round trip running one Lua script on one key (GCRA as
 * redis-cell's CL.THROTTLE does; the semaphore as INCR-if-below-limit with
 * a TTL refreshed by the holders; the window as a sorted set trimmed by
 * ZREMRANGEBYSCORE), so several nodes share one limit. Only the local
 * implementation (shp_store_local.c: sharded mutexes, in memory) exists
 * today.
 *
 * Keys are copied; callers build them as "<kind>|<site>|<source>" (see
 * shp_state.h). Entries nobody used for a while are dropped by
 * ss_expire() (a semaphore only when nothing is held). Any thread.
 */
#ifndef RINGMTA_SHP_STORE_H
#define RINGMTA_SHP_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/shaping/shp_rate.h"

struct shp_store;

/* Events a window counter keeps: ss_window_add() never returns more, so
 * a rule threshold above it could never fire (the rules loader refuses
 * one). */
#define SHP_STORE_WINDOW_MAX 256u

struct shp_store_ops {
	/* GCRA: take n at now_us; 0 = allowed (counted), else the wait in
	 * microseconds until it would be (nothing counted). */
	uint64_t (*ss_gcra_take)(struct shp_store *s, const char *key, const struct shp_rate *r,
				 uint64_t now_us, uint64_t n);
	/* Semaphore: take one unit if fewer than limit are held (limit 0 =
	 * no limit). True when taken; the caller then owes a release. */
	bool (*ss_sem_acquire)(struct shp_store *s, const char *key, uint32_t limit,
			       uint64_t now_us);
	void (*ss_sem_release)(struct shp_store *s, const char *key, uint64_t now_us);
	/* Units held now (for metrics and tests). */
	uint32_t (*ss_sem_count)(struct shp_store *s, const char *key);
	/* Window counter: record one event at now_us and return how many
	 * events fell in (now_us - window_us, now_us], this one included. */
	uint32_t (*ss_window_add)(struct shp_store *s, const char *key, uint64_t window_us,
				  uint64_t now_us);
	/* Forget window events on key (a rule fired and starts over). */
	void (*ss_window_reset)(struct shp_store *s, const char *key);
	/* Drop entries idle for idle_us (never a semaphore still held). */
	void (*ss_expire)(struct shp_store *s, uint64_t now_us, uint64_t idle_us);
	void (*ss_free)(struct shp_store *s);
};

/* Every implementation starts with this. */
struct shp_store {
	const struct shp_store_ops *ss_ops;
};

/* The in-process store. */
int shp_store_local_new(struct shp_store **s_r);

static inline void shp_store_free(struct shp_store **s)
{
	if (*s != NULL)
		(*s)->ss_ops->ss_free(*s);
	*s = NULL;
}

#endif
