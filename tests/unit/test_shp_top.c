/*
 * test_shp_top.c: the live per-site view (shp_top.h): the workers' shares
 * add up and a new view replaces only its own worker's, deliveries and
 * deferrals count over the last minute only, the busiest sites come
 * first and the snapshot is bounded, idle sites are forgotten.
 */
#include <stdio.h>
#include <string.h>

#include "core/shaping/shp_top.h"
#include "tap.h"

#define S 1000000ull

int main(void)
{
	struct shp_top *t;
	struct shp_top_site out[4];
	uint64_t t0 = 1700000000ull * S;
	unsigned n, total;
	struct shp_top_row w0[] = {
		{ "gmail", "google", 5, 2, 1 },
		{ "gmail", "google", 1, 1, 1 },
		{ "yahoo", "", 0, 1, 0 },
	};
	struct shp_top_row w1[] = { { "gmail", "google", 10, 3, 2 } };

	shp_top_new(&t, 2);
	shp_top_publish(t, 0, w0, 3, t0);
	shp_top_publish(t, 1, w1, 1, t0);
	n = shp_top_snapshot(t, t0, out, 4, &total);
	tap_ok(n == 2 && total == 2, "two sites");
	tap_ok(strcmp(out[0].ts_site, "gmail") == 0 && out[0].ts_ready == 16 &&
	       out[0].ts_conns == 6 && out[0].ts_busy == 4 &&
	       strcmp(out[0].ts_provider, "google") == 0,
	       "the workers' shares add up (ready %u, conns %u, busy %u)", out[0].ts_ready,
	       out[0].ts_conns, out[0].ts_busy);
	shp_top_publish(t, 1, NULL, 0, t0 + S);
	n = shp_top_snapshot(t, t0 + S, out, 4, NULL);
	tap_ok(out[0].ts_ready == 6 && out[0].ts_conns == 3,
	       "a worker's new view replaces only its own share");
	shp_top_publish(t, 7, w1, 1, t0 + S);
	n = shp_top_snapshot(t, t0 + S, out, 4, NULL);
	tap_ok(out[0].ts_ready == 6, "a worker number out of range is ignored");

	shp_top_delivered(t, "yahoo", 3, t0);
	shp_top_deferred(t, "yahoo", 2, t0 + 15 * S);
	shp_top_delivered(t, "hotmail", 1, t0 + 20 * S);
	n = shp_top_snapshot(t, t0 + 30 * S, out, 4, &total);
	tap_ok(total == 3 && strcmp(out[1].ts_site, "yahoo") == 0 && out[1].ts_delivered == 3 &&
	       out[1].ts_deferred == 2, "deliveries and deferrals counted (%s %u %u)",
	       out[1].ts_site, out[1].ts_delivered, out[1].ts_deferred);
	n = shp_top_snapshot(t, t0 + 65 * S, out, 4, NULL);
	for (unsigned i = 0; i < n; i++)
		if (strcmp(out[i].ts_site, "yahoo") == 0)
			tap_ok(out[i].ts_delivered == 0 && out[i].ts_deferred == 2,
			       "a minute later the first counts are out of the window");
	n = shp_top_snapshot(t, t0 + 30 * S, out, 1, &total);
	tap_ok(n == 1 && total == 3 && strcmp(out[0].ts_site, "gmail") == 0,
	       "bounded: the busiest first");

	shp_top_expire(t, t0 + 30 * S + 600 * S);
	n = shp_top_snapshot(t, t0 + 700 * S, out, 4, &total);
	tap_ok(total == 2 && n == 2, "idle sites are forgotten, busy ones stay (%u)", total);
	shp_top_free(&t);
	tap_ok(t == NULL, "free clears the pointer");
	return tap_done();
}
