/*
 * shp_top.c: the live per-site view (shp_top.h). A hash of sites, each
 * with the workers' published shares side by side (one column each, so a
 * worker's new view replaces only its own) and a ring of ten-second
 * buckets for deliveries and deferrals.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/shaping/shp_top.h"

#define SHP_TOP_BUCKETS 1024u
#define SHP_TOP_SLICE_US (10ull * 1000000u)
#define SHP_TOP_NSLICES (SHP_TOP_WINDOW_S / 10u)

struct shp_top_share {
	uint32_t sh_ready, sh_conns, sh_busy;
};

struct shp_top_ent {
	struct shp_top_ent *te_next;
	char te_site[256];
	char te_provider[64];
	uint64_t te_seen;			/* last time it had something */
	uint64_t te_slice[SHP_TOP_NSLICES];	/* which slice each bucket counts */
	uint32_t te_delivered[SHP_TOP_NSLICES], te_deferred[SHP_TOP_NSLICES];
	struct shp_top_share te_w[];		/* one per worker */
};

struct shp_top {
	pthread_mutex_t tp_lock;
	unsigned tp_nworkers;
	unsigned tp_n;
	struct shp_top_ent *tp_b[SHP_TOP_BUCKETS];
};

int shp_top_new(struct shp_top **t_r, unsigned nworkers)
{
	struct shp_top *t = calloc(1, sizeof(*t));

	*t_r = NULL;
	if (t == NULL)
		return -ENOMEM;
	pthread_mutex_init(&t->tp_lock, NULL);
	t->tp_nworkers = nworkers;
	*t_r = t;
	return 0;
}

void shp_top_free(struct shp_top **tp)
{
	struct shp_top *t = *tp;

	if (t == NULL)
		return;
	for (unsigned b = 0; b < SHP_TOP_BUCKETS; b++) {
		struct shp_top_ent *e, *n;

		for (e = t->tp_b[b]; e != NULL; e = n) {
			n = e->te_next;
			free(e);
		}
	}
	pthread_mutex_destroy(&t->tp_lock);
	free(t);
	*tp = NULL;
}

static unsigned shp_top_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % SHP_TOP_BUCKETS;
}

/* The site's entry, made when absent and there is room (lock held). */
static struct shp_top_ent *shp_top_get(struct shp_top *t, const char *site, uint64_t now)
{
	struct shp_top_ent **b = &t->tp_b[shp_top_hash(site)], *e;

	for (e = *b; e != NULL; e = e->te_next)
		if (strcmp(e->te_site, site) == 0)
			return e;
	if (t->tp_n >= SHP_TOP_MAX || site[0] == '\0' ||
	    (e = calloc(1, sizeof(*e) + t->tp_nworkers * sizeof(e->te_w[0]))) == NULL)
		return NULL;
	snprintf(e->te_site, sizeof(e->te_site), "%s", site);
	e->te_seen = now;
	e->te_next = *b;
	*b = e;
	t->tp_n++;
	return e;
}

void shp_top_publish(struct shp_top *t, unsigned worker, const struct shp_top_row *rows,
		     unsigned n, uint64_t now)
{
	if (worker >= t->tp_nworkers)
		return;
	pthread_mutex_lock(&t->tp_lock);
	for (unsigned b = 0; b < SHP_TOP_BUCKETS; b++)
		for (struct shp_top_ent *e = t->tp_b[b]; e != NULL; e = e->te_next)
			memset(&e->te_w[worker], 0, sizeof(e->te_w[worker]));
	for (unsigned i = 0; i < n; i++) {
		struct shp_top_ent *e = shp_top_get(t, rows[i].tr_site, now);

		if (e == NULL)
			continue;
		e->te_w[worker].sh_ready += rows[i].tr_ready;
		e->te_w[worker].sh_conns += rows[i].tr_conns;
		e->te_w[worker].sh_busy += rows[i].tr_busy;
		if (rows[i].tr_provider != NULL && rows[i].tr_provider[0])
			snprintf(e->te_provider, sizeof(e->te_provider), "%s", rows[i].tr_provider);
		if (rows[i].tr_ready || rows[i].tr_conns)
			e->te_seen = now;
	}
	pthread_mutex_unlock(&t->tp_lock);
}

/* Add n to the bucket of now in counts (lock held). */
static void shp_top_count(struct shp_top_ent *e, uint32_t *counts, unsigned n, uint64_t now)
{
	uint64_t slice = now / SHP_TOP_SLICE_US;
	unsigned k = (unsigned)(slice % SHP_TOP_NSLICES);

	if (e->te_slice[k] != slice) {
		e->te_slice[k] = slice;
		e->te_delivered[k] = e->te_deferred[k] = 0;
	}
	counts[k] += n;
	e->te_seen = now;
}

void shp_top_delivered(struct shp_top *t, const char *site, unsigned n, uint64_t now)
{
	struct shp_top_ent *e;

	pthread_mutex_lock(&t->tp_lock);
	if ((e = shp_top_get(t, site, now)) != NULL)
		shp_top_count(e, e->te_delivered, n, now);
	pthread_mutex_unlock(&t->tp_lock);
}

void shp_top_deferred(struct shp_top *t, const char *site, unsigned n, uint64_t now)
{
	struct shp_top_ent *e;

	pthread_mutex_lock(&t->tp_lock);
	if ((e = shp_top_get(t, site, now)) != NULL)
		shp_top_count(e, e->te_deferred, n, now);
	pthread_mutex_unlock(&t->tp_lock);
}

/* e as a snapshot row (lock held). */
static void shp_top_fill(const struct shp_top *t, const struct shp_top_ent *e, uint64_t now,
			 struct shp_top_site *s)
{
	uint64_t slice = now / SHP_TOP_SLICE_US;

	memset(s, 0, sizeof(*s));
	snprintf(s->ts_site, sizeof(s->ts_site), "%s", e->te_site);
	snprintf(s->ts_provider, sizeof(s->ts_provider), "%s", e->te_provider);
	for (unsigned w = 0; w < t->tp_nworkers; w++) {
		s->ts_ready += e->te_w[w].sh_ready;
		s->ts_conns += e->te_w[w].sh_conns;
		s->ts_busy += e->te_w[w].sh_busy;
	}
	for (unsigned k = 0; k < SHP_TOP_NSLICES; k++) {
		if (e->te_slice[k] + SHP_TOP_NSLICES <= slice)
			continue;	/* older than the window */
		s->ts_delivered += e->te_delivered[k];
		s->ts_deferred += e->te_deferred[k];
	}
}

/* Whether a ranks before b. */
static bool shp_top_before(const struct shp_top_site *a, const struct shp_top_site *b)
{
	if (a->ts_ready != b->ts_ready)
		return a->ts_ready > b->ts_ready;
	if (a->ts_busy != b->ts_busy)
		return a->ts_busy > b->ts_busy;
	if (a->ts_delivered + a->ts_deferred != b->ts_delivered + b->ts_deferred)
		return a->ts_delivered + a->ts_deferred > b->ts_delivered + b->ts_deferred;
	return strcmp(a->ts_site, b->ts_site) < 0;
}

unsigned shp_top_snapshot(struct shp_top *t, uint64_t now, struct shp_top_site *out,
			  unsigned max, unsigned *total_r)
{
	struct shp_top_site s;
	unsigned n = 0;

	pthread_mutex_lock(&t->tp_lock);
	if (total_r != NULL)
		*total_r = t->tp_n;
	for (unsigned b = 0; b < SHP_TOP_BUCKETS; b++) {
		for (struct shp_top_ent *e = t->tp_b[b]; e != NULL; e = e->te_next) {
			unsigned i;

			shp_top_fill(t, e, now, &s);
			/* Insertion into the best max so far. */
			for (i = n; i > 0 && shp_top_before(&s, &out[i - 1]); i--)
				if (i < max)
					out[i] = out[i - 1];
			if (i < max) {
				out[i] = s;
				if (n < max)
					n++;
			}
		}
	}
	pthread_mutex_unlock(&t->tp_lock);
	return n;
}

void shp_top_expire(struct shp_top *t, uint64_t now)
{
	pthread_mutex_lock(&t->tp_lock);
	for (unsigned b = 0; b < SHP_TOP_BUCKETS; b++) {
		struct shp_top_ent **pp = &t->tp_b[b], *e;

		while ((e = *pp) != NULL) {
			bool busy = false;

			for (unsigned w = 0; w < t->tp_nworkers && !busy; w++)
				busy = e->te_w[w].sh_ready || e->te_w[w].sh_conns;
			if (!busy && now >= e->te_seen + SHP_TOP_IDLE_US) {
				*pp = e->te_next;
				free(e);
				t->tp_n--;
				continue;
			}
			pp = &e->te_next;
		}
	}
	pthread_mutex_unlock(&t->tp_lock);
}
