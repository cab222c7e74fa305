/*
 * test_shp_met.c: counters per site, provider and source with a bounded
 * set of names (shp_met.h): the busiest are shown, the rest add up under
 * "other"; a name once shown stays and its series only grows, so does
 * "other"; at most 2 * top names ever; gauges replace a worker's share;
 * names never shown and idle are forgotten; 10,000 names stay bounded.
 */
#include <stdio.h>
#include <string.h>

#include "core/shaping/shp_met.h"
#include "tap.h"

#define S 1000000ull

static void count_site(struct shp_met *m, const char *site, enum shp_met_ctr c, unsigned n,
		       uint64_t now)
{
	struct shp_met_keys k = { { site, "prov", "src" } };

	shp_met_count(m, &k, c, 0, n, now);
}

static const struct shp_met_series *find(const struct shp_met_series *s, unsigned n,
					 const char *name)
{
	for (unsigned i = 0; i < n; i++)
		if (strcmp(s[i].ms_name, name) == 0)
			return &s[i];
	return NULL;
}

static uint64_t sum(const struct shp_met_series *s, unsigned n, enum shp_met_ctr c)
{
	uint64_t t = 0;

	for (unsigned i = 0; i < n; i++)
		t += s[i].ms_ctr[c];
	return t;
}

int main(void)
{
	struct shp_met *m;
	struct shp_met_series out[64];
	const struct shp_met_series *a, *o;
	uint64_t t0 = 1700000000ull * S, other_before;
	unsigned n, busy;
	char name[32];

	shp_met_new(&m, 2, 3);
	tap_ok(shp_met_max_series(m) == 7, "at most 2 * top + 1 series");
	n = shp_met_snapshot(m, SHP_MET_SITE, t0, out, 64);
	tap_ok(n == 1 && out[0].ms_other && strcmp(out[0].ms_name, "other") == 0 &&
	       out[0].ms_ctr[SHP_MET_DELIVERED] == 0, "empty: only other");

	/* Five sites; the three busiest get shown. */
	count_site(m, "a", SHP_MET_DELIVERED, 50, t0);
	count_site(m, "b", SHP_MET_DELIVERED, 40, t0);
	count_site(m, "c", SHP_MET_DEFERRED, 30, t0);
	count_site(m, "d", SHP_MET_DELIVERED, 2, t0);
	count_site(m, "e", SHP_MET_DELIVERED, 1, t0);
	n = shp_met_snapshot(m, SHP_MET_SITE, t0 + S, out, 64);
	tap_ok(n == 4 && find(out, n, "a") && find(out, n, "b") && find(out, n, "c") &&
	       out[3].ms_other, "the three busiest and other (%u series)", n);
	o = &out[n - 1];
	a = find(out, n, "a");
	tap_ok(a->ms_ctr[SHP_MET_DELIVERED] == 50 && find(out, n, "c")->ms_ctr[SHP_MET_DEFERRED] == 30 &&
	       o->ms_ctr[SHP_MET_DELIVERED] == 3 && o->ms_ctr[SHP_MET_DEFERRED] == 0,
	       "first shown, a name carries what it did since the last snapshot (%llu)",
	       (unsigned long long)o->ms_ctr[SHP_MET_DELIVERED]);
	tap_ok(o->ms_names == 2, "other holds two names");

	/* From now on the shown names count for themselves. */
	count_site(m, "a", SHP_MET_DELIVERED, 5, t0 + 2 * S);
	count_site(m, "d", SHP_MET_DELIVERED, 1, t0 + 2 * S);
	{
		struct shp_met_keys k = { { "a", NULL, "" } };

		shp_met_count(m, &k, SHP_MET_BOUNCED, 1, 2, t0 + 2 * S);
		shp_met_count(m, &k, SHP_MET_BOUNCED, 99, 1, t0 + 2 * S);
	}
	n = shp_met_snapshot(m, SHP_MET_SITE, t0 + 3 * S, out, 64);
	a = find(out, n, "a");
	tap_ok(a != NULL && a->ms_ctr[SHP_MET_DELIVERED] == 55 &&
	       a->ms_ctr[SHP_MET_BOUNCED] == 3 && a->ms_bounced[1] == 2 &&
	       a->ms_bounced[0] == 0, "a shown name counts its own, bounces per class");
	tap_ok(sum(out, n, SHP_MET_DELIVERED) == 93 + 5 + 1 &&
	       out[n - 1].ms_ctr[SHP_MET_DELIVERED] == 4 &&
	       sum(out, n, SHP_MET_DEFERRED) == 30, "the series add up to the totals");
	n = shp_met_snapshot(m, SHP_MET_PROVIDER, t0 + 3 * S, out, 64);
	tap_ok(n == 2 && strcmp(out[0].ms_name, "prov") == 0 &&
	       out[0].ms_ctr[SHP_MET_DELIVERED] == 99 && out[1].ms_ctr[SHP_MET_DELIVERED] == 0 &&
	       sum(out, n, SHP_MET_BOUNCED) == 0,
	       "dimensions choose apart; a dimension left out is not counted (%u)", n);

	/* New busier sites: shown while under 2 * top, the old stay. */
	n = shp_met_snapshot(m, SHP_MET_SITE, t0 + 3 * S, out, 64);
	other_before = out[n - 1].ms_ctr[SHP_MET_DELIVERED];
	for (unsigned i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "new%u", i);
		count_site(m, name, SHP_MET_DELIVERED, 1000 + i, t0 + 4 * S);
	}
	n = shp_met_snapshot(m, SHP_MET_SITE, t0 + 5 * S, out, 64);
	tap_ok(n == 7 && find(out, n, "a") && find(out, n, "new5") && find(out, n, "new4") &&
	       find(out, n, "new3") && !find(out, n, "new2"),
	       "the busiest new names join up to the cap, the old stay (%u)", n);
	tap_ok(out[n - 1].ms_ctr[SHP_MET_DELIVERED] >= other_before,
	       "other never goes down");
	n = shp_met_snapshot(m, SHP_MET_SITE, t0 + 6 * S, out, 64);
	tap_ok(n == 7, "at the cap nothing more is shown");
	n = shp_met_snapshot(m, SHP_MET_SITE, t0 + 6 * S, out, 3);
	tap_ok(n == 3 && out[2].ms_other, "a short out still ends with other");

	/* Gauges: a worker's publish replaces its own share only. */
	{
		struct shp_met_row w0[] = {
			{ { { "a", "prov", "src" } }, 4, 1 },
			{ { { "zz", "prov", "src" } }, 7, 2 },
		};
		struct shp_met_row w1[] = { { { { "a", "prov", "src" } }, 1, 1 } };

		shp_met_publish(m, 0, w0, 2, t0 + 7 * S);
		shp_met_publish(m, 1, w1, 1, t0 + 7 * S);
		shp_met_publish(m, 9, w1, 1, t0 + 7 * S);
		n = shp_met_snapshot(m, SHP_MET_SITE, t0 + 7 * S, out, 64);
		a = find(out, n, "a");
		tap_ok(a->ms_ready == 5 && a->ms_in_flight == 2 && out[n - 1].ms_ready == 7 &&
		       out[n - 1].ms_in_flight == 2, "gauges add up over workers; other's too");
		shp_met_publish(m, 0, NULL, 0, t0 + 8 * S);
		n = shp_met_snapshot(m, SHP_MET_SITE, t0 + 8 * S, out, 64);
		a = find(out, n, "a");
		tap_ok(a->ms_ready == 1 && out[n - 1].ms_ready == 0,
		       "a new publish replaces the worker's share");
	}

	/* Idle names never shown are forgotten; shown ones stay. */
	shp_met_expire(m, t0 + 30 * 60 * S);
	n = shp_met_snapshot(m, SHP_MET_SITE, t0 + 30 * 60 * S, out, 64);
	tap_ok(n == 7 && out[n - 1].ms_names == 0 &&
	       out[n - 1].ms_ctr[SHP_MET_DELIVERED] >= other_before,
	       "idle names not shown go; their counts stay in other");
	shp_met_free(&m);
	tap_ok(m == NULL, "free clears the pointer");

	/* 10,000 names: bounded, the busiest named, the sums hold. */
	shp_met_new(&m, 1, 20);
	for (unsigned i = 0; i < 10000; i++) {
		snprintf(name, sizeof(name), "d%05u.test", i);
		count_site(m, name, SHP_MET_DELIVERED, i < 25 ? 100 - i : 1, t0);
	}
	n = shp_met_snapshot(m, SHP_MET_SITE, t0 + S, out, 64);
	busy = 0;
	for (unsigned i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "d%05u.test", i);
		busy += find(out, n, name) != NULL;
	}
	tap_ok(n == 21 && busy == 20, "10,000 names: 21 series, the 20 busiest named (%u, %u)",
	       n, busy);
	tap_ok(sum(out, n, SHP_MET_DELIVERED) == 9975 + (100 + 76) * 25 / 2,
	       "and they add up (%llu)", (unsigned long long)sum(out, n, SHP_MET_DELIVERED));
	{
		/* What a name did before a snapshot that left it out stays in
		 * other: other never goes down when the name is shown later. */
		struct shp_met *m2;
		uint64_t before;

		shp_met_new(&m2, 1, 1);
		count_site(m2, "big", SHP_MET_DELIVERED, 10, t0);
		count_site(m2, "late", SHP_MET_DELIVERED, 4, t0);
		n = shp_met_snapshot(m2, SHP_MET_SITE, t0, out, 64);
		before = out[n - 1].ms_ctr[SHP_MET_DELIVERED];
		tap_ok(n == 2 && before == 4, "late is in other (%llu)", (unsigned long long)before);
		count_site(m2, "late", SHP_MET_DELIVERED, 100, t0 + S);
		n = shp_met_snapshot(m2, SHP_MET_SITE, t0 + 2 * S, out, 64);
		a = find(out, n, "late");
		tap_ok(n == 3 && a != NULL && a->ms_ctr[SHP_MET_DELIVERED] == 100 &&
		       out[n - 1].ms_ctr[SHP_MET_DELIVERED] == before && sum(out, n, SHP_MET_DELIVERED) == 114,
		       "shown later, it starts from the last snapshot; other keeps the rest");
		shp_met_free(&m2);
	}
	{
		/* A long name is cut on a character's start. */
		struct shp_met *m2;
		char lng[400];

		memset(lng, 'a', 254);
		strcpy(lng + 254, "\xc3\xa9tail");	/* U+00E9 across the cut */
		shp_met_new(&m2, 1, 2);
		count_site(m2, lng, SHP_MET_DELIVERED, 1, t0);
		n = shp_met_snapshot(m2, SHP_MET_SITE, t0, out, 64);
		tap_ok(n == 2 && strlen(out[0].ms_name) == 254, "a long name is cut before a"
		       " character it would split (%zu)", strlen(out[0].ms_name));
		shp_met_free(&m2);
	}
	{
		/* A name that is "other" is never shown on its own. */
		struct shp_met *m2;

		shp_met_new(&m2, 1, 2);
		count_site(m2, "other", SHP_MET_DELIVERED, 9, t0);
		n = shp_met_snapshot(m2, SHP_MET_SITE, t0, out, 64);
		tap_ok(n == 1 && out[0].ms_ctr[SHP_MET_DELIVERED] == 9,
		       "a name \"other\" folds into other");
		shp_met_free(&m2);
	}
	shp_met_free(&m);
	return tap_done();
}
