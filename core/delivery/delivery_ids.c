/*
 * delivery_ids.c: the scheduler's id set and id list (delivery_ids.h).
 * The set is open addressing with linear probing, kept at most half
 * full, and deletes by backward shift, so probes need no tombstones.
 */
#include "core/delivery/delivery_ids.h"

#include <errno.h>
#include <stdlib.h>

#define IDSET_EMPTY 0u

static size_t idset_pos(const struct idset *s, uint64_t id)
{
	return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 20) & (s->is_cap - 1);
}

bool dlv_idset_has(const struct idset *s, uint64_t id)
{
	if (s->is_cap == 0)
		return false;
	for (size_t i = idset_pos(s, id);; i = (i + 1) & (s->is_cap - 1)) {
		if (s->is_slots[i] == id)
			return true;
		if (s->is_slots[i] == IDSET_EMPTY)
			return false;
	}
}

static int idset_grow(struct idset *s)
{
	struct idset n = { NULL, s->is_cap ? s->is_cap * 2 : 1024, 0 };

	n.is_slots = calloc(n.is_cap, sizeof(uint64_t));
	if (n.is_slots == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < s->is_cap; i++)
		if (s->is_slots[i] != IDSET_EMPTY)
			dlv_idset_add(&n, s->is_slots[i]);
	free(s->is_slots);
	*s = n;
	return 0;
}

int dlv_idset_add(struct idset *s, uint64_t id)
{
	size_t i;

	if ((s->is_n + 1) * 2 > s->is_cap && idset_grow(s) < 0)
		return -ENOMEM;
	for (i = idset_pos(s, id); s->is_slots[i] != IDSET_EMPTY; i = (i + 1) & (s->is_cap - 1))
		if (s->is_slots[i] == id)
			return 0;
	s->is_slots[i] = id;
	s->is_n++;
	return 0;
}

void dlv_idset_del(struct idset *s, uint64_t id)
{
	size_t i, j;

	if (s->is_cap == 0)
		return;
	for (i = idset_pos(s, id); s->is_slots[i] != id; i = (i + 1) & (s->is_cap - 1))
		if (s->is_slots[i] == IDSET_EMPTY)
			return;
	s->is_slots[i] = IDSET_EMPTY;
	s->is_n--;
	for (j = (i + 1) & (s->is_cap - 1); s->is_slots[j] != IDSET_EMPTY;
	     j = (j + 1) & (s->is_cap - 1)) {
		size_t home = idset_pos(s, s->is_slots[j]);

		/* Move j back to i unless its home lies cyclically in (i, j]. */
		if ((i < j) ? (home <= i || home > j) : (home <= i && home > j)) {
			s->is_slots[i] = s->is_slots[j];
			s->is_slots[j] = IDSET_EMPTY;
			i = j;
		}
	}
}

void dlv_idset_free(struct idset *s)
{
	free(s->is_slots);
	s->is_slots = NULL;
	s->is_cap = s->is_n = 0;
}

void dlv_id_list_add(struct id_list *l, uint64_t id)
{
	if (l->n == l->cap) {
		unsigned cap = l->cap ? l->cap * 2 : 256;
		uint64_t *n = realloc(l->ids, cap * sizeof(*n));

		if (n == NULL)
			return;
		l->ids = n;
		l->cap = cap;
	}
	l->ids[l->n++] = id;
}
