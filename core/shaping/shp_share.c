/*
 * shp_share.c: the workers' shares of a path's connection limit
 * (shp_share.h). A share is a bitmap of waiting workers, one atomic word
 * per 64 workers; the table is a small chained hash behind one mutex,
 * used only when a destination learns (or changes) its site.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/shaping/shp_share.h"

#define SHP_SHARE_BUCKETS 256u
#define SHP_SHARE_WORDS (SHP_SHARE_WORKERS / 64u)

struct shp_share {
	struct shp_share *sh_next;	/* hash chain, under the table's lock */
	unsigned sh_refs;		/* under the table's lock */
	_Atomic uint64_t sh_wait[SHP_SHARE_WORDS];	/* bit per waiting worker */
	char sh_key[];
};

struct shp_share_tab {
	pthread_mutex_t st_lock;
	struct shp_share *st_b[SHP_SHARE_BUCKETS];
};

static unsigned shp_share_hash(const char *k)
{
	uint32_t h = 2166136261u;

	for (; *k; k++)
		h = (h ^ (unsigned char)*k) * 16777619u;
	return h % SHP_SHARE_BUCKETS;
}

int shp_share_tab_new(struct shp_share_tab **t_r)
{
	struct shp_share_tab *t = calloc(1, sizeof(*t));

	*t_r = NULL;
	if (t == NULL)
		return -ENOMEM;
	pthread_mutex_init(&t->st_lock, NULL);
	*t_r = t;
	return 0;
}

void shp_share_tab_free(struct shp_share_tab **tp)
{
	struct shp_share_tab *t = *tp;

	if (t == NULL)
		return;
	for (unsigned b = 0; b < SHP_SHARE_BUCKETS; b++) {
		struct shp_share *s = t->st_b[b], *next;

		for (; s != NULL; s = next) {	/* only if a reference leaked */
			next = s->sh_next;
			free(s);
		}
	}
	pthread_mutex_destroy(&t->st_lock);
	free(t);
	*tp = NULL;
}

struct shp_share *shp_share_get(struct shp_share_tab *t, const char *key)
{
	struct shp_share **b = &t->st_b[shp_share_hash(key)], *s;
	size_t n = strlen(key) + 1;

	pthread_mutex_lock(&t->st_lock);
	for (s = *b; s != NULL; s = s->sh_next)
		if (strcmp(s->sh_key, key) == 0)
			break;
	if (s == NULL && (s = calloc(1, sizeof(*s) + n)) != NULL) {
		memcpy(s->sh_key, key, n);
		s->sh_next = *b;
		*b = s;
	}
	if (s != NULL)
		s->sh_refs++;
	pthread_mutex_unlock(&t->st_lock);
	return s;
}

void shp_share_put(struct shp_share_tab *t, struct shp_share **shp)
{
	struct shp_share *s = *shp, **pp;

	if (s == NULL)
		return;
	*shp = NULL;
	pthread_mutex_lock(&t->st_lock);
	if (--s->sh_refs == 0) {
		for (pp = &t->st_b[shp_share_hash(s->sh_key)]; *pp != s; pp = &(*pp)->sh_next)
			;
		*pp = s->sh_next;
		free(s);
	}
	pthread_mutex_unlock(&t->st_lock);
}

const char *shp_share_key(const struct shp_share *sh)
{
	return sh->sh_key;
}

bool shp_share_wait(struct shp_share *sh, unsigned worker, bool waiting)
{
	uint64_t bit = 1ull << (worker % 64u), old;
	_Atomic uint64_t *w = &sh->sh_wait[(worker / 64u) % SHP_SHARE_WORDS];

	if (waiting)
		old = atomic_fetch_or_explicit(w, bit, memory_order_acq_rel);
	else
		old = atomic_fetch_and_explicit(w, ~bit, memory_order_acq_rel);
	return ((old & bit) != 0) != waiting;
}

unsigned shp_share_waiters(const struct shp_share *sh, unsigned worker, unsigned *out,
			   unsigned max)
{
	unsigned n = 0;

	for (unsigned i = 0; i < SHP_SHARE_WORDS; i++) {
		uint64_t v = atomic_load_explicit(&sh->sh_wait[i], memory_order_acquire);

		if (worker / 64u == i)
			v &= ~(1ull << (worker % 64u));
		while (v != 0) {
			unsigned b = (unsigned)__builtin_ctzll(v);

			if (out != NULL && n < max)
				out[n] = i * 64u + b;
			n++;
			v &= v - 1;
		}
	}
	return n;
}

unsigned shp_share_fair(unsigned limit, unsigned others)
{
	return (limit + others) / (others + 1);	/* ceil(limit / (others + 1)) */
}

bool shp_share_yield(unsigned limit, unsigned held, unsigned others)
{
	if (limit == 0 || others == 0)
		return false;
	return held > shp_share_fair(limit, others);
}
