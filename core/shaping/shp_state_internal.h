/*
 * shp_state_internal.h: the entries of the shaping state, shared by
 * shp_state.c (the logic) and shp_state_blob.c (persistence). Everything
 * here is guarded by st_lock.
 */
#ifndef RINGMTA_SHP_STATE_INTERNAL_H
#define RINGMTA_SHP_STATE_INTERNAL_H

#include <pthread.h>

#include "core/shaping/shp_state.h"

#define SHP_RULE_MAX 64		/* rule names are copied, cut here */

/* The actions an entry can hold, one slot each (a later firing of the
 * same kind replaces the earlier one, keeping the later expiry). */
enum shp_slot {
	SHP_SLOT_SUSPEND = 0,	/* on (site, source), or the site for suspend_site */
	SHP_SLOT_MAXCONN,
	SHP_SLOT_RATE,
	SHP_SLOT_BOUNCE,
	SHP_SLOT_RAMP,		/* site entry: pause until pa_pause_until, then ramp */
	SHP_NSLOTS,
};

struct shp_active {
	uint64_t pa_until;		/* 0 = slot empty */
	uint64_t pa_pause_until;	/* ramp: no connection before */
	uint32_t pa_value;		/* maxconn: limit; ramp: step */
	uint32_t pa_allow;		/* ramp: connections allowed now */
	uint32_t pa_succ;		/* ramp: successes toward the next step */
	struct shp_rate pa_rate;
	char pa_rule[SHP_RULE_MAX];
};

struct shp_pstate {
	struct shp_pstate *ps_next;
	char *ps_site;
	char *ps_source;		/* "" = the site entry */
	struct shp_active ps_act[SHP_NSLOTS];
	/* health (site entry) */
	uint32_t ps_level;		/* 0 = healthy; else backoff step */
	uint64_t ps_health_until;
	bool ps_probe;
	uint64_t ps_probe_at;
	/* learned (path entry) */
	uint32_t ps_max_msgs;
};

struct shp_sitecache {
	struct shp_sitecache *sc_next;
	uint64_t sc_expires;
	char *sc_domain, *sc_site, *sc_provider;
};

#define SHP_STATE_BUCKETS 4096u

struct shp_state {
	pthread_mutex_t st_lock;
	struct shp_pstate *st_b[SHP_STATE_BUCKETS];
	struct shp_sitecache *st_sites[SHP_STATE_BUCKETS];
	bool st_dirty;
};

/* The entry of (site, source) ("" = the site); NULL when absent and not
 * create (or out of memory). */
struct shp_pstate *shp_pstate_get(struct shp_state *st, const char *site, const char *source,
				  bool create);
void shp_state_clear(struct shp_state *st);
extern const char *const shp_slot_names[SHP_NSLOTS];

#endif
