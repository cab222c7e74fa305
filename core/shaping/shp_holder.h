/*
 * shp_holder: the current shaping rules of a running ringmta, swapped on
 * SIGHUP. A mutex guards one pointer; readers take their own reference
 * and use it for as long as they like (a job keeps the rules it started
 * with), so a swap never waits for them.
 *
 * Ownership: the holder owns one reference to the current rules.
 * shp_holder_get() returns a new reference the caller drops with
 * shp_rules_unref(); shp_holder_set() takes over the caller's reference
 * and drops the holder's old one. Any thread.
 *
 * A thread that asks for the rules per message keeps a struct
 * shp_holder_cache: its reference is checked against the holder's
 * generation (one atomic load) and renewed under the lock only after a
 * swap, so the message path takes no lock.
 */
#ifndef RINGMTA_SHP_HOLDER_H
#define RINGMTA_SHP_HOLDER_H

#include <stdint.h>

#include "core/shaping/shp_rules.h"

struct shp_holder;

/* A holder of r (taken over; may be NULL). -1 when memory runs out (r is
 * then released). */
int shp_holder_new(struct shp_holder **h_r, struct shp_rules *r);
void shp_holder_free(struct shp_holder **h);
/* A new reference to the current rules (NULL when none). */
struct shp_rules *shp_holder_get(struct shp_holder *h);
/* Make r current (the holder takes the caller's reference). */
void shp_holder_set(struct shp_holder *h, struct shp_rules *r);

/* One thread's cached reference (zeroed to start: nothing cached). */
struct shp_holder_cache {
	struct shp_rules *hc_rules;	/* a reference, or NULL */
	uint64_t hc_gen;		/* the holder's generation it is of; 0 = none */
};
/* A new reference to the current rules, as shp_holder_get(), through c:
 * the lock only when a swap happened since c's last look. c is used by
 * one thread at a time. */
struct shp_rules *shp_holder_get_cached(struct shp_holder *h, struct shp_holder_cache *c);
/* Drop c's reference (before the holder, or when the thread ends). */
void shp_holder_cache_drop(struct shp_holder_cache *c);

#endif
