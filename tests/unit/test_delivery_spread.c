/*
 * test_delivery_spread.c: how the scheduler spreads one next hop over the
 * workers (dlv_spread_pick, dlv_spread_worker): a next hop stays on its
 * home worker while the loads are close, goes to a less loaded worker
 * once its home is DLV_SPREAD_SLACK jobs ahead, and the candidates turn
 * over every other worker, never the home.
 */
#include <stdlib.h>
#include <string.h>

#include "core/delivery/delivery_internal.h"
#include "tap.h"

#define NW 4

int main(void)
{
	struct dlv_worker *ws[NW];
	unsigned loads[2], home, seen[NW] = { 0 };
	uint64_t rr = 0;
	bool ok;

	loads[0] = 10;
	loads[1] = 10;
	tap_ok(dlv_spread_pick(loads, 0, 1, 16) == 0, "equal loads: the home");
	loads[0] = 26;
	tap_ok(dlv_spread_pick(loads, 0, 1, 16) == 0, "16 ahead: still the home");
	loads[0] = 27;
	tap_ok(dlv_spread_pick(loads, 0, 1, 16) == 1, "17 ahead: the other");
	loads[0] = 0;
	loads[1] = 100;
	tap_ok(dlv_spread_pick(loads, 0, 1, 0) == 0, "a loaded candidate is not taken");

	for (unsigned i = 0; i < NW; i++) {
		ws[i] = aligned_alloc(_Alignof(struct dlv_worker), sizeof(*ws[i]));
		memset(ws[i], 0, sizeof(*ws[i]));
		ws[i]->w_index = i;
	}
	tap_ok(dlv_spread_worker(ws, 1, "relay.example", &rr) == ws[0], "one worker: it");
	home = dlv_spread_worker(ws, NW, "relay.example", &rr)->w_index;
	ok = true;
	for (int i = 0; i < 100; i++)
		ok = ok && dlv_spread_worker(ws, NW, "relay.example", &rr)->w_index == home;
	tap_ok(ok, "idle workers: every job of a next hop goes home (%u)", home);

	atomic_store(&ws[home]->w_jobs, 1000);
	for (int i = 0; i < 300; i++) {
		struct dlv_worker *w = dlv_spread_worker(ws, NW, "relay.example", &rr);

		seen[w->w_index]++;
		atomic_fetch_add(&w->w_jobs, 1);
	}
	tap_ok(seen[home] == 0, "a loaded home gets nothing more while others are free");
	ok = true;
	for (unsigned i = 0; i < NW; i++)
		ok = ok && (i == home || seen[i] == 100);
	tap_ok(ok, "the others take turns: %u %u %u %u", seen[0], seen[1], seen[2], seen[3]);

	/* Loads even again: the spill stops within the slack. */
	for (unsigned i = 0; i < NW; i++)
		atomic_store(&ws[i]->w_jobs, 50);
	ok = true;
	for (int i = 0; i < 20; i++)
		ok = ok && dlv_spread_worker(ws, NW, "relay.example", &rr)->w_index == home;
	tap_ok(ok, "even loads: back home");
	for (unsigned i = 0; i < NW; i++)
		free(ws[i]);
	return tap_done();
}
