/*
 * shp_holder.c: see shp_holder.h. The old rules are released outside the
 * lock: the last reference may free a large tree.
 */
#include "core/shaping/shp_holder.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct shp_holder {
	pthread_mutex_t sh_lock;
	struct shp_rules *sh_rules;
	_Atomic uint64_t sh_gen;	/* +1 per swap, under the lock; starts at 1 */
};

int shp_holder_new(struct shp_holder **h_r, struct shp_rules *r)
{
	struct shp_holder *h = calloc(1, sizeof(*h));

	*h_r = NULL;
	if (h == NULL) {
		shp_rules_unref(&r);
		return -1;
	}
	pthread_mutex_init(&h->sh_lock, NULL);
	h->sh_rules = r;
	atomic_init(&h->sh_gen, 1);
	*h_r = h;
	return 0;
}

void shp_holder_free(struct shp_holder **hp)
{
	struct shp_holder *h = *hp;

	if (h == NULL)
		return;
	*hp = NULL;
	shp_rules_unref(&h->sh_rules);
	pthread_mutex_destroy(&h->sh_lock);
	free(h);
}

struct shp_rules *shp_holder_get(struct shp_holder *h)
{
	struct shp_rules *r;

	pthread_mutex_lock(&h->sh_lock);
	r = shp_rules_ref(h->sh_rules);
	pthread_mutex_unlock(&h->sh_lock);
	return r;
}

void shp_holder_set(struct shp_holder *h, struct shp_rules *r)
{
	struct shp_rules *old;

	pthread_mutex_lock(&h->sh_lock);
	old = h->sh_rules;
	h->sh_rules = r;
	atomic_fetch_add_explicit(&h->sh_gen, 1, memory_order_release);
	pthread_mutex_unlock(&h->sh_lock);
	shp_rules_unref(&old);
}

struct shp_rules *shp_holder_get_cached(struct shp_holder *h, struct shp_holder_cache *c)
{
	struct shp_rules *old;

	/* No swap completed since c's look: c's rules are current. */
	if (atomic_load_explicit(&h->sh_gen, memory_order_acquire) == c->hc_gen)
		return shp_rules_ref(c->hc_rules);
	old = c->hc_rules;
	pthread_mutex_lock(&h->sh_lock);
	c->hc_rules = shp_rules_ref(h->sh_rules);
	c->hc_gen = atomic_load_explicit(&h->sh_gen, memory_order_relaxed);
	pthread_mutex_unlock(&h->sh_lock);
	if (old != NULL)
		shp_rules_unref(&old);
	return shp_rules_ref(c->hc_rules);
}

void shp_holder_cache_drop(struct shp_holder_cache *c)
{
	if (c->hc_rules != NULL)
		shp_rules_unref(&c->hc_rules);
	c->hc_gen = 0;
}
