/*
 * shp_store_local.c: the in-process shaping store (shp_store.h). A hash
 * table split into SHP_SHARDS shards, each with its own mutex, so workers
 * limiting different paths rarely meet. An entry holds whichever of the
 * three counters its key is used for: a GCRA TAT, a semaphore count, or
 * the times of recent window events (a small ring; thresholds are small,
 * so at most SHP_WIN_MAX events are kept).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/shaping/shp_store.h"

#define SHP_SHARDS 64u
#define SHP_SHARD_BUCKETS 256u
#define SHP_WIN_MAX SHP_STORE_WINDOW_MAX

struct shp_entry {
	struct shp_entry *se_next;
	uint64_t se_used;		/* last operation, us */
	uint64_t se_tat;		/* GCRA */
	struct shp_rate se_rate;	/* ... the rate se_tat was set under */
	uint32_t se_held;		/* semaphore */
	uint32_t se_nwin, se_wincap;	/* window ring: events, capacity */
	uint32_t se_winhead;		/* oldest event */
	uint64_t *se_win;
	char se_key[];
};

struct shp_shard {
	pthread_mutex_t sh_lock;
	struct shp_entry *sh_b[SHP_SHARD_BUCKETS];
};

struct shp_store_local {
	struct shp_store sl_base;
	struct shp_shard sl_shards[SHP_SHARDS];
};

static uint32_t shp_key_hash(const char *k)
{
	uint32_t h = 2166136261u;

	for (; *k; k++)
		h = (h ^ (unsigned char)*k) * 16777619u;
	return h;
}

static struct shp_shard *shp_shard_of(struct shp_store *s, const char *key, uint32_t *h_r)
{
	struct shp_store_local *l = (struct shp_store_local *)s;

	*h_r = shp_key_hash(key);
	return &l->sl_shards[*h_r % SHP_SHARDS];
}

/* The entry for key in a locked shard; created when create. */
static struct shp_entry *shp_entry_get(struct shp_shard *sh, uint32_t h, const char *key,
				       bool create)
{
	struct shp_entry **b = &sh->sh_b[(h / SHP_SHARDS) % SHP_SHARD_BUCKETS], *e;
	size_t n;

	for (e = *b; e != NULL; e = e->se_next)
		if (strcmp(e->se_key, key) == 0)
			return e;
	if (!create)
		return NULL;
	n = strlen(key) + 1;
	e = calloc(1, sizeof(*e) + n);
	if (e == NULL)
		return NULL;
	memcpy(e->se_key, key, n);
	e->se_next = *b;
	*b = e;
	return e;
}

static uint64_t shp_local_gcra(struct shp_store *s, const char *key, const struct shp_rate *r,
			       uint64_t now_us, uint64_t n)
{
	uint32_t h;
	struct shp_shard *sh;
	struct shp_entry *e;
	uint64_t wait;

	if (r->sr_count == 0)
		return 0;
	sh = shp_shard_of(s, key, &h);
	pthread_mutex_lock(&sh->sh_lock);
	e = shp_entry_get(sh, h, key, true);
	if (e == NULL) {
		pthread_mutex_unlock(&sh->sh_lock);
		return 0;	/* no memory: do not stall mail on a counter */
	}
	e->se_used = now_us;
	/* Another rate than the TAT was set under (a reload, a lowered rate
	 * that ended): the old rate's debt is not the new rate's; start it
	 * from now (never later than the TAT says). */
	if (memcmp(&e->se_rate, r, sizeof(*r)) != 0) {
		if (e->se_tat > now_us)
			e->se_tat = now_us;
		e->se_rate = *r;
	}
	wait = shp_gcra_take(r, &e->se_tat, now_us, n);
	pthread_mutex_unlock(&sh->sh_lock);
	return wait;
}

static bool shp_local_sem_acquire(struct shp_store *s, const char *key, uint32_t limit,
				  uint64_t now_us)
{
	uint32_t h;
	struct shp_shard *sh = shp_shard_of(s, key, &h);
	struct shp_entry *e;
	bool ok = false;

	pthread_mutex_lock(&sh->sh_lock);
	e = shp_entry_get(sh, h, key, true);
	if (e != NULL && (limit == 0 || e->se_held < limit)) {
		e->se_held++;
		e->se_used = now_us;
		ok = true;
	}
	pthread_mutex_unlock(&sh->sh_lock);
	return ok;
}

static void shp_local_sem_release(struct shp_store *s, const char *key, uint64_t now_us)
{
	uint32_t h;
	struct shp_shard *sh = shp_shard_of(s, key, &h);
	struct shp_entry *e;

	pthread_mutex_lock(&sh->sh_lock);
	e = shp_entry_get(sh, h, key, false);
	if (e != NULL && e->se_held > 0) {
		e->se_held--;
		e->se_used = now_us;
	}
	pthread_mutex_unlock(&sh->sh_lock);
}

static uint32_t shp_local_sem_count(struct shp_store *s, const char *key)
{
	uint32_t h, n = 0;
	struct shp_shard *sh = shp_shard_of(s, key, &h);
	struct shp_entry *e;

	pthread_mutex_lock(&sh->sh_lock);
	e = shp_entry_get(sh, h, key, false);
	if (e != NULL)
		n = e->se_held;
	pthread_mutex_unlock(&sh->sh_lock);
	return n;
}

static uint32_t shp_local_window_add(struct shp_store *s, const char *key, uint64_t window_us,
				     uint64_t now_us)
{
	uint32_t h, n;
	struct shp_shard *sh = shp_shard_of(s, key, &h);
	struct shp_entry *e;

	pthread_mutex_lock(&sh->sh_lock);
	e = shp_entry_get(sh, h, key, true);
	if (e == NULL) {
		pthread_mutex_unlock(&sh->sh_lock);
		return 1;
	}
	e->se_used = now_us;
	/* Drop what left the window, oldest first. */
	while (e->se_nwin > 0 && e->se_win[e->se_winhead] + window_us <= now_us) {
		e->se_winhead = (e->se_winhead + 1) % e->se_wincap;
		e->se_nwin--;
	}
	if (e->se_nwin == e->se_wincap && e->se_wincap < SHP_WIN_MAX) {
		uint32_t cap = e->se_wincap ? e->se_wincap * 2 : 4;
		uint64_t *w = malloc(cap * sizeof(*w));

		if (w != NULL) {
			for (uint32_t i = 0; i < e->se_nwin; i++)
				w[i] = e->se_win[(e->se_winhead + i) % e->se_wincap];
			free(e->se_win);
			e->se_win = w;
			e->se_wincap = cap;
			e->se_winhead = 0;
		}
	}
	if (e->se_wincap == 0) {
		pthread_mutex_unlock(&sh->sh_lock);
		return 1;
	}
	if (e->se_nwin == e->se_wincap) {	/* full at SHP_WIN_MAX: forget the oldest */
		e->se_winhead = (e->se_winhead + 1) % e->se_wincap;
		e->se_nwin--;
	}
	e->se_win[(e->se_winhead + e->se_nwin) % e->se_wincap] = now_us;
	n = ++e->se_nwin;
	pthread_mutex_unlock(&sh->sh_lock);
	return n;
}

static void shp_local_window_reset(struct shp_store *s, const char *key)
{
	uint32_t h;
	struct shp_shard *sh = shp_shard_of(s, key, &h);
	struct shp_entry *e;

	pthread_mutex_lock(&sh->sh_lock);
	e = shp_entry_get(sh, h, key, false);
	if (e != NULL)
		e->se_nwin = 0;
	pthread_mutex_unlock(&sh->sh_lock);
}

static void shp_entry_free(struct shp_entry *e)
{
	free(e->se_win);
	free(e);
}

static void shp_local_expire(struct shp_store *s, uint64_t now_us, uint64_t idle_us)
{
	struct shp_store_local *l = (struct shp_store_local *)s;

	for (unsigned i = 0; i < SHP_SHARDS; i++) {
		struct shp_shard *sh = &l->sl_shards[i];

		pthread_mutex_lock(&sh->sh_lock);
		for (unsigned b = 0; b < SHP_SHARD_BUCKETS; b++) {
			struct shp_entry **pp = &sh->sh_b[b], *e;

			while ((e = *pp) != NULL) {
				/* A TAT in the future still limits: keep it. */
				if (e->se_held == 0 && e->se_used + idle_us <= now_us &&
				    e->se_tat <= now_us) {
					*pp = e->se_next;
					shp_entry_free(e);
					continue;
				}
				pp = &e->se_next;
			}
		}
		pthread_mutex_unlock(&sh->sh_lock);
	}
}

static void shp_local_free(struct shp_store *s)
{
	struct shp_store_local *l = (struct shp_store_local *)s;

	for (unsigned i = 0; i < SHP_SHARDS; i++) {
		for (unsigned b = 0; b < SHP_SHARD_BUCKETS; b++) {
			struct shp_entry *e = l->sl_shards[i].sh_b[b], *next;

			for (; e != NULL; e = next) {
				next = e->se_next;
				shp_entry_free(e);
			}
		}
		pthread_mutex_destroy(&l->sl_shards[i].sh_lock);
	}
	free(l);
}

static const struct shp_store_ops shp_local_ops = {
	.ss_gcra_take = shp_local_gcra,
	.ss_sem_acquire = shp_local_sem_acquire,
	.ss_sem_release = shp_local_sem_release,
	.ss_sem_count = shp_local_sem_count,
	.ss_window_add = shp_local_window_add,
	.ss_window_reset = shp_local_window_reset,
	.ss_expire = shp_local_expire,
	.ss_free = shp_local_free,
};

int shp_store_local_new(struct shp_store **s_r)
{
	struct shp_store_local *l = calloc(1, sizeof(*l));

	*s_r = NULL;
	if (l == NULL)
		return -ENOMEM;
	l->sl_base.ss_ops = &shp_local_ops;
	for (unsigned i = 0; i < SHP_SHARDS; i++)
		pthread_mutex_init(&l->sl_shards[i].sh_lock, NULL);
	*s_r = &l->sl_base;
	return 0;
}
