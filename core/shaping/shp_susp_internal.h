/*
 * shp_susp_internal.h: the table of operator suspensions, shared by
 * shp_susp.c (the logic) and shp_susp_blob.c (persistence). Everything
 * here is guarded by ss_lock.
 */
#ifndef RINGMTA_SHP_SUSP_INTERNAL_H
#define RINGMTA_SHP_SUSP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "core/shaping/shp_susp.h"

struct shp_susp_ent {
	uint8_t se_kind;			/* enum shp_susp_kind */
	char se_name[SHP_SUSP_NAME_MAX + 1];	/* lowercase */
	char se_who[SHP_SUSP_WHO_MAX + 1];
	char se_reason[SHP_SUSP_REASON_MAX + 1];
	uint64_t se_set, se_until;
};

struct shp_susp {
	pthread_mutex_t ss_lock;
	struct shp_susp_ent *ss_ents;		/* in the order they were set */
	unsigned ss_n, ss_cap;
	atomic_uint ss_count;			/* ss_n, read without the lock */
};

/* Add or replace an entry (the lock held); 0, -EINVAL or -ENOSPC. The
 * strings are checked and copied as shp_susp_set() says. */
int shp_susp_put_locked(struct shp_susp *s, enum shp_susp_kind k, const char *name,
			const char *who, const char *reason, uint64_t set, uint64_t until);

#endif
