/*
 * delivery_ids.h: the scheduler's sets and lists of queue ids: the
 * messages in flight (an open-addressing hash set) and the ids handed
 * between threads or gathered by a scan (a growing array). No locks: the
 * owner of each (struct delivery in delivery.c) says which lock guards it.
 * Both start zeroed ({0}) and own their memory (dlv_idset_free, free(ids)).
 */
#ifndef RINGMTA_DELIVERY_IDS_H
#define RINGMTA_DELIVERY_IDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Queue ids, never 0 (the empty slot): ids carry a time. */
struct idset {
	uint64_t *is_slots;
	size_t is_cap, is_n;	/* is_cap: 0 or a power of two */
};

bool dlv_idset_has(const struct idset *s, uint64_t id);
/* 0, or -ENOMEM (s unchanged); adding a member again changes nothing. */
int dlv_idset_add(struct idset *s, uint64_t id);
void dlv_idset_del(struct idset *s, uint64_t id);
void dlv_idset_free(struct idset *s);

struct id_list {
	uint64_t *ids;
	unsigned n, cap;
};

/* Append; without memory the id is dropped (a scan finds it again). */
void dlv_id_list_add(struct id_list *l, uint64_t id);

#endif
