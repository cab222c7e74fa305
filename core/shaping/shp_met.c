/*
 * shp_met.c: counters per site, provider and source with a bounded set
 * of names shown (shp_met.h). Per dimension a hash of the names followed,
 * each with a ring of one-minute slices of recent traffic (for ranking)
 * and the workers' gauges side by side. A name's counts block holds, for
 * a name shown, its counters; for one not shown, what it did since the
 * last snapshot (folded into "other" by the next one, then freed).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/shaping/shp_met.h"

#define SHP_MET_BUCKETS 4096u
#define SHP_MET_SLICE_US (60ull * 1000000u)
#define SHP_MET_NSLICES (SHP_MET_WINDOW_S / 60u)

struct shp_met_gauge {
	uint32_t g_ready, g_in_flight;
};

struct shp_met_counts {
	uint64_t mc_ctr[SHP_MET_NCTRS];
	uint64_t mc_bounced[SHP_MET_NCLASSES];
};

struct shp_met_ent {
	struct shp_met_ent *me_next;
	struct shp_met_counts *me_counts;	/* owned; NULL: nothing (yet) */
	bool me_shown;
	uint64_t me_slice;			/* the newest slice counted */
	uint32_t me_recent[SHP_MET_NSLICES];	/* per slice, a ring */
	uint64_t me_score;			/* ranking's scratch */
	const char *me_name;			/* in the same block, after me_w */
	struct shp_met_gauge me_w[];		/* one per worker */
};

struct shp_met_tab {
	struct shp_met_ent *t_b[SHP_MET_BUCKETS];
	unsigned t_n;				/* names followed */
	struct shp_met_ent **t_shown;		/* in the order first shown */
	unsigned t_nshown;
	struct shp_met_counts t_other;
	struct shp_met_gauge *t_other_w;	/* per worker: names not followed */
};

struct shp_met {
	pthread_mutex_t m_lock;
	unsigned m_nworkers;
	unsigned m_top, m_cap;			/* cap = 2 * top names shown */
	struct shp_met_tab m_tab[SHP_MET_NDIMS];
};

void shp_met_free(struct shp_met **mp)
{
	struct shp_met *m = *mp;

	if (m == NULL)
		return;
	for (unsigned d = 0; d < SHP_MET_NDIMS; d++) {
		struct shp_met_tab *t = &m->m_tab[d];

		for (unsigned b = 0; b < SHP_MET_BUCKETS; b++) {
			struct shp_met_ent *e, *n;

			for (e = t->t_b[b]; e != NULL; e = n) {
				n = e->me_next;
				free(e->me_counts);
				free(e);
			}
		}
		free(t->t_shown);
		free(t->t_other_w);
	}
	pthread_mutex_destroy(&m->m_lock);
	free(m);
	*mp = NULL;
}

int shp_met_new(struct shp_met **m_r, unsigned nworkers, unsigned top)
{
	struct shp_met *m = calloc(1, sizeof(*m));

	*m_r = NULL;
	if (m == NULL)
		return -ENOMEM;
	pthread_mutex_init(&m->m_lock, NULL);
	m->m_nworkers = nworkers;
	m->m_top = top;
	m->m_cap = 2 * top;
	for (unsigned d = 0; d < SHP_MET_NDIMS; d++) {
		struct shp_met_tab *t = &m->m_tab[d];

		t->t_other_w = calloc(nworkers ? nworkers : 1, sizeof(*t->t_other_w));
		t->t_shown = calloc(m->m_cap ? m->m_cap : 1, sizeof(*t->t_shown));
		if (t->t_other_w == NULL || t->t_shown == NULL) {
			shp_met_free(&m);
			return -ENOMEM;
		}
	}
	*m_r = m;
	return 0;
}

unsigned shp_met_max_series(const struct shp_met *m)
{
	return m->m_cap + 1;
}

static unsigned shp_met_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % SHP_MET_BUCKETS;
}

/* name's entry in t, made when absent and there is room; NULL: counted
 * in "other" only (lock held). */
static struct shp_met_ent *shp_met_get(struct shp_met *m, struct shp_met_tab *t,
				       const char *name, uint64_t now)
{
	size_t len = strnlen(name, SHP_MET_NAME_MAX);
	struct shp_met_ent **b, *e;
	size_t wsz = m->m_nworkers * sizeof(e->me_w[0]);
	char cut[SHP_MET_NAME_MAX + 1];

	/* Cut on a character's start: a label value must stay UTF-8. */
	while (len == SHP_MET_NAME_MAX && len > 0 && ((unsigned char)name[len] & 0xC0) == 0x80)
		len--;
	memcpy(cut, name, len);
	cut[len] = '\0';
	b = &t->t_b[shp_met_hash(cut)];
	for (e = *b; e != NULL; e = e->me_next)
		if (strcmp(e->me_name, cut) == 0)
			return e;
	if (t->t_n >= SHP_MET_TRACK_MAX || (e = calloc(1, sizeof(*e) + wsz + len + 1)) == NULL)
		return NULL;
	memcpy((char *)e->me_w + wsz, cut, len + 1);
	e->me_name = (const char *)e->me_w + wsz;
	e->me_slice = now / SHP_MET_SLICE_US;
	e->me_next = *b;
	*b = e;
	t->t_n++;
	return e;
}

/* Traffic of e over the window ending at now (lock held). */
static uint64_t shp_met_recent(const struct shp_met_ent *e, uint64_t now)
{
	uint64_t slice = now / SHP_MET_SLICE_US, sum = 0;

	for (unsigned i = 0; i < SHP_MET_NSLICES && i <= e->me_slice; i++) {
		uint64_t s = e->me_slice - i;

		if (s + SHP_MET_NSLICES > slice)
			sum += e->me_recent[s % SHP_MET_NSLICES];
	}
	return sum;
}

static void shp_met_touch(struct shp_met_ent *e, unsigned n, uint64_t now)
{
	uint64_t slice = now / SHP_MET_SLICE_US;

	if (slice > e->me_slice) {
		/* The slots between belong to slices a window ago. */
		for (uint64_t s = e->me_slice + 1; s <= slice && s <= e->me_slice + SHP_MET_NSLICES;
		     s++)
			e->me_recent[s % SHP_MET_NSLICES] = 0;
		e->me_slice = slice;
	}
	e->me_recent[e->me_slice % SHP_MET_NSLICES] += n;	/* a clock gone back: the newest */
}

void shp_met_count(struct shp_met *m, const struct shp_met_keys *k, enum shp_met_ctr c,
		   unsigned cls, unsigned n, uint64_t now)
{
	if ((unsigned)c >= SHP_MET_NCTRS || n == 0)
		return;
	if (cls >= SHP_MET_NCLASSES)
		cls = 0;
	pthread_mutex_lock(&m->m_lock);
	for (unsigned d = 0; d < SHP_MET_NDIMS; d++) {
		const char *name = k->mk_name[d];
		struct shp_met_tab *t = &m->m_tab[d];
		struct shp_met_ent *e;
		struct shp_met_counts *to = &t->t_other;

		if (name == NULL || name[0] == '\0')
			continue;
		e = shp_met_get(m, t, name, now);
		if (e != NULL) {
			/* Traffic for the ranking is recipients; connections
			 * follow from them. */
			shp_met_touch(e, c <= SHP_MET_BOUNCED ? n : 0, now);
			if (e->me_counts == NULL)
				e->me_counts = calloc(1, sizeof(*e->me_counts));
			if (e->me_counts != NULL)
				to = e->me_counts;
			/* else straight into "other": counted all the same */
		}
		to->mc_ctr[c] += n;
		if (c == SHP_MET_BOUNCED && cls != 0)
			to->mc_bounced[cls] += n;
	}
	pthread_mutex_unlock(&m->m_lock);
}

void shp_met_publish(struct shp_met *m, unsigned worker, const struct shp_met_row *rows,
		     unsigned n, uint64_t now)
{
	if (worker >= m->m_nworkers)
		return;
	pthread_mutex_lock(&m->m_lock);
	for (unsigned d = 0; d < SHP_MET_NDIMS; d++) {
		struct shp_met_tab *t = &m->m_tab[d];

		for (unsigned b = 0; b < SHP_MET_BUCKETS; b++)
			for (struct shp_met_ent *e = t->t_b[b]; e != NULL; e = e->me_next)
				memset(&e->me_w[worker], 0, sizeof(e->me_w[worker]));
		memset(&t->t_other_w[worker], 0, sizeof(t->t_other_w[worker]));
		for (unsigned i = 0; i < n; i++) {
			const char *name = rows[i].mr_keys.mk_name[d];
			struct shp_met_ent *e;
			struct shp_met_gauge *g;

			if (name == NULL || name[0] == '\0')
				continue;
			e = shp_met_get(m, t, name, now);
			g = e != NULL ? &e->me_w[worker] : &t->t_other_w[worker];
			g->g_ready += rows[i].mr_ready;
			g->g_in_flight += rows[i].mr_in_flight;
		}
	}
	pthread_mutex_unlock(&m->m_lock);
}

static void shp_met_gauges(const struct shp_met *m, const struct shp_met_gauge *w,
			   uint64_t *ready, uint64_t *in_flight)
{
	for (unsigned i = 0; i < m->m_nworkers; i++) {
		*ready += w[i].g_ready;
		*in_flight += w[i].g_in_flight;
	}
}

/* Busiest first; ties by name, so the choice does not depend on the hash. */
static int shp_met_rank(const void *a, const void *b)
{
	const struct shp_met_ent *x = *(struct shp_met_ent *const *)a;
	const struct shp_met_ent *y = *(struct shp_met_ent *const *)b;

	if (x->me_score != y->me_score)
		return x->me_score > y->me_score ? -1 : 1;
	return strcmp(x->me_name, y->me_name);
}

/* What e did since the last snapshot into "other" (e not shown; lock held). */
static void shp_met_fold(struct shp_met_tab *t, struct shp_met_ent *e)
{
	if (e->me_counts == NULL)
		return;
	for (unsigned c = 0; c < SHP_MET_NCTRS; c++)
		t->t_other.mc_ctr[c] += e->me_counts->mc_ctr[c];
	for (unsigned c = 0; c < SHP_MET_NCLASSES; c++)
		t->t_other.mc_bounced[c] += e->me_counts->mc_bounced[c];
	free(e->me_counts);
	e->me_counts = NULL;
}

/* Show the busiest names not shown yet, while there is room (lock held). */
static void shp_met_choose(struct shp_met *m, struct shp_met_tab *t, uint64_t now)
{
	struct shp_met_ent **all;
	unsigned n = 0;

	if (m->m_top == 0 || t->t_nshown >= m->m_cap || t->t_n == 0 ||
	    (all = malloc(t->t_n * sizeof(*all))) == NULL)
		return;
	for (unsigned b = 0; b < SHP_MET_BUCKETS; b++) {
		for (struct shp_met_ent *e = t->t_b[b]; e != NULL; e = e->me_next) {
			uint64_t ready = 0, in_flight = 0;

			shp_met_gauges(m, e->me_w, &ready, &in_flight);
			e->me_score = shp_met_recent(e, now) + ready + in_flight;
			all[n++] = e;
		}
	}
	qsort(all, n, sizeof(*all), shp_met_rank);
	for (unsigned i = 0; i < n && i < m->m_top && t->t_nshown < m->m_cap; i++) {
		struct shp_met_ent *e = all[i];

		if (e->me_shown || e->me_score == 0 || strcmp(e->me_name, SHP_MET_OTHER) == 0)
			continue;
		if (e->me_counts == NULL &&
		    (e->me_counts = calloc(1, sizeof(*e->me_counts))) == NULL)
			break;
		e->me_shown = true;	/* what it did since the last snapshot is its start */
		t->t_shown[t->t_nshown++] = e;
	}
	free(all);
}

unsigned shp_met_snapshot(struct shp_met *m, enum shp_met_dim dim, uint64_t now,
			  struct shp_met_series *out, unsigned max)
{
	struct shp_met_tab *t;
	struct shp_met_series *o;
	unsigned n = 0;

	if ((unsigned)dim >= SHP_MET_NDIMS || max == 0)
		return 0;
	t = &m->m_tab[dim];
	pthread_mutex_lock(&m->m_lock);
	shp_met_choose(m, t, now);
	for (unsigned i = 0; i < t->t_nshown && n + 1 < max; i++) {
		const struct shp_met_ent *e = t->t_shown[i];

		o = &out[n++];
		memset(o, 0, sizeof(*o));
		snprintf(o->ms_name, sizeof(o->ms_name), "%s", e->me_name);
		memcpy(o->ms_ctr, e->me_counts->mc_ctr, sizeof(o->ms_ctr));
		memcpy(o->ms_bounced, e->me_counts->mc_bounced, sizeof(o->ms_bounced));
		shp_met_gauges(m, e->me_w, &o->ms_ready, &o->ms_in_flight);
	}
	o = &out[n++];
	memset(o, 0, sizeof(*o));
	snprintf(o->ms_name, sizeof(o->ms_name), "%s", SHP_MET_OTHER);
	o->ms_other = true;
	shp_met_gauges(m, t->t_other_w, &o->ms_ready, &o->ms_in_flight);
	for (unsigned b = 0; b < SHP_MET_BUCKETS; b++) {
		for (struct shp_met_ent *e = t->t_b[b]; e != NULL; e = e->me_next) {
			if (e->me_shown)
				continue;
			shp_met_fold(t, e);
			shp_met_gauges(m, e->me_w, &o->ms_ready, &o->ms_in_flight);
		}
	}
	memcpy(o->ms_ctr, t->t_other.mc_ctr, sizeof(o->ms_ctr));
	memcpy(o->ms_bounced, t->t_other.mc_bounced, sizeof(o->ms_bounced));
	o->ms_names = t->t_n - t->t_nshown;
	pthread_mutex_unlock(&m->m_lock);
	return n;
}

void shp_met_expire(struct shp_met *m, uint64_t now)
{
	pthread_mutex_lock(&m->m_lock);
	for (unsigned d = 0; d < SHP_MET_NDIMS; d++) {
		struct shp_met_tab *t = &m->m_tab[d];

		for (unsigned b = 0; b < SHP_MET_BUCKETS; b++) {
			struct shp_met_ent **pp = &t->t_b[b], *e;

			while ((e = *pp) != NULL) {
				uint64_t ready = 0, in_flight = 0;

				shp_met_gauges(m, e->me_w, &ready, &in_flight);
				if (!e->me_shown && ready == 0 && in_flight == 0 &&
				    shp_met_recent(e, now) == 0 &&
				    now / SHP_MET_SLICE_US >= e->me_slice + SHP_MET_NSLICES) {
					*pp = e->me_next;
					shp_met_fold(t, e);
					free(e);
					t->t_n--;
					continue;
				}
				pp = &e->me_next;
			}
		}
	}
	pthread_mutex_unlock(&m->m_lock);
}
