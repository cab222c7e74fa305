/*
 * shp_holder.c: see shp_holder.h. The old rules are released outside the
 * lock: the last reference may free a large tree.
 */
#include "core/shaping/shp_holder.h"

#include <pthread.h>
#include <stdlib.h>

struct shp_holder {
	pthread_mutex_t sh_lock;
	struct shp_rules *sh_rules;
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
	pthread_mutex_unlock(&h->sh_lock);
	shp_rules_unref(&old);
}
