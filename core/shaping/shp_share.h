/*
 * shp_share: how the workers that deliver to one path (site, source) share
 * its connection limit. The limit itself stays the store's semaphore
 * (shp_store.h), which is exact whatever the number of workers: a unit is
 * taken before a connection and given back when it is gone. What a share
 * adds is fairness, with atomics only: a worker that has mail waiting for
 * the path and found no free unit sets its bit in the path's share; while
 * others wait a worker opens no more than its fair part (shp_share_fair)
 * and closes a session that comes ready when it holds more
 * (shp_share_yield), or that has idled a while, so the unit goes to a
 * waiter.
 *
 * The table maps keys ("site|source") to shares, each counted by its
 * references: shp_share_get()/shp_share_put() take the table's mutex, once
 * per destination and site (never per message); the other calls are lock
 * free and may run on any thread while a reference is held.
 */
#ifndef RINGMTA_SHP_SHARE_H
#define RINGMTA_SHP_SHARE_H

#include <stdbool.h>
#include <stddef.h>

#define SHP_SHARE_WORKERS 256u	/* a worker's index is below this (workers <= 254) */

struct shp_share;
struct shp_share_tab;

int shp_share_tab_new(struct shp_share_tab **t_r);
/* Every share must have been put back. */
void shp_share_tab_free(struct shp_share_tab **t);

/* A new reference to key's share (created with no worker waiting), or
 * NULL without memory. */
struct shp_share *shp_share_get(struct shp_share_tab *t, const char *key);
/* Give the reference back (*sh set to NULL); the last one frees it. A
 * worker clears its bit before (shp_share_wait(.., false)). */
void shp_share_put(struct shp_share_tab *t, struct shp_share **sh);
/* The key, as long as the reference is held. */
const char *shp_share_key(const struct shp_share *sh);

/* Worker worker waits for a unit of the path (or no longer does). True
 * when this call changed the bit. */
bool shp_share_wait(struct shp_share *sh, unsigned worker, bool waiting);
/* The workers other than worker that wait now: their count, and up to max
 * of their indexes in out (out may be NULL). */
unsigned shp_share_waiters(const struct shp_share *sh, unsigned worker, unsigned *out,
			   unsigned max);

/* A worker's fair part of limit units (limit > 0) while others other
 * workers wait: ceil(limit / (others + 1)). Rounding up keeps two workers
 * from handing a unit back and forth: the parts add up to at least the
 * limit. While others wait a worker opens no more than its part. */
unsigned shp_share_fair(unsigned limit, unsigned others);
/* Whether a worker holding held of limit units (0 = no limit) gives one
 * back while others other workers wait: when it holds more than its fair
 * part. */
bool shp_share_yield(unsigned limit, unsigned held, unsigned others);

#endif
