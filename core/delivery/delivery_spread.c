/*
 * delivery_spread.c: one next hop on every worker. The scheduler gives a
 * job to its next hop's home worker (a hash of the name, so a small
 * domain's mail meets its own sessions there) unless the home has
 * DLV_SPREAD_SLACK more jobs than another worker, taken in turn: then to
 * that one. A relayhost, or a site carrying most of the traffic, so ends
 * up with a destination and sessions on every worker.
 *
 * The limits stay where they were, shared by name: the connection limit
 * is the store's semaphore for (site, source), the rates its GCRA
 * throttles, backoff, suspensions and automation the shaping state; each
 * is one value whatever the number of workers holding destinations of
 * the site. What is added here is only fairness between workers: the
 * path's share (core/shaping/shp_share.h) says which workers wait for a
 * unit, so a worker opens no more than its fair part while others wait,
 * hands back a session that comes ready over that part or that has been
 * idle a second (the tick), and the waiters are woken when a unit comes
 * back. A ramp or another action below the path's limit closes nothing
 * for fairness.
 * Atomics only on a session's way; the share table's lock when a
 * destination learns its site.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/delivery/delivery_internal.h"

unsigned dlv_spread_pick(const unsigned *loads, unsigned home, unsigned cand, unsigned slack)
{
	return loads[home] > loads[cand] + slack ? cand : home;
}

struct dlv_worker *dlv_spread_worker(struct dlv_worker *const *ws, unsigned n,
				     const char *nexthop, uint64_t *rr)
{
	uint32_t h = 2166136261u;
	unsigned home, cand, loads[2];

	for (const char *p = nexthop; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	home = h % n;
	if (n == 1)
		return ws[0];
	/* Two choices: the home and the next worker in turn (never the home). */
	cand = (unsigned)((home + 1 + (*rr)++ % (n - 1)) % n);
	loads[0] = atomic_load_explicit(&ws[home]->w_jobs, memory_order_relaxed);
	loads[1] = atomic_load_explicit(&ws[cand]->w_jobs, memory_order_relaxed);
	return dlv_spread_pick(loads, 0, 1, DLV_SPREAD_SLACK) == 0 ? ws[home] : ws[cand];
}

void dlv_spread_attach(struct dlv_worker *w, struct dlv_dest *d)
{
	struct dlv_dest_shp *p = &d->dd_shp;
	char key[sizeof(p->dp_site) + 80];

	if (!p->dp_known)
		return;
	snprintf(key, sizeof(key), "%s|%s", p->dp_site,
		 p->dp_source != NULL ? p->dp_source : DLV_SOURCE_DEFAULT);
	if (p->dp_share != NULL && strcmp(shp_share_key(p->dp_share), key) == 0)
		return;
	dlv_spread_detach(w, d);
	/* No memory: no share, so no fairness; the limit stays exact. */
	p->dp_share = shp_share_get(w->w_shp->ds_shares, key);
}

void dlv_spread_detach(struct dlv_worker *w, struct dlv_dest *d)
{
	struct dlv_dest_shp *p = &d->dd_shp;

	if (p->dp_share == NULL)
		return;
	if (p->dp_waiting)
		shp_share_wait(p->dp_share, w->w_index, false);
	p->dp_waiting = false;
	shp_share_put(w->w_shp->ds_shares, &p->dp_share);
}

/* Ask worker p to look at its destinations (its next wake). */
static void dlv_spread_nudge(struct dlv_worker *p)
{
	if (!atomic_exchange_explicit(&p->w_sweep, true, memory_order_acq_rel))
		io_loop_wake(p->w_loop);
}

void dlv_spread_wait(struct dlv_worker *w, struct dlv_dest *d, bool waiting)
{
	struct dlv_dest_shp *p = &d->dd_shp;

	if (p->dp_share == NULL || p->dp_waiting == waiting)
		return;
	p->dp_waiting = waiting;
	/* No nudge: the others see the bit when a session of theirs comes
	 * ready (the part past the fair one goes), and at their tick (their
	 * sessions idle since the last one go). */
	shp_share_wait(p->dp_share, w->w_index, waiting);
}

bool dlv_spread_yield(const struct dlv_worker *w, const struct dlv_dest *d, bool idle)
{
	unsigned others;

	if (d->dd_shp.dp_share == NULL || !d->dd_shp.dp_known)
		return false;
	others = shp_share_waiters(d->dd_shp.dp_share, w->w_index, NULL, 0);
	if (others == 0)
		return false;
	/* While an action holds the path under its limit (a ramp, a lowered
	 * max_connections), no session closes for fairness: the receiver
	 * that pushed back sees no close and reopen, every new connection is
	 * one more step of the ramp. Units change hands as sessions end,
	 * and no worker opens past its part (dlv_spread_cap). */
	if (d->dd_shp.dp_eff.sl_max_connections != d->dd_shp.dp_limits.sl_max_connections)
		return false;
	/* An idle session serves nobody here and holds a waiter's unit. */
	if (idle)
		return true;
	return shp_share_yield(d->dd_shp.dp_eff.sl_max_connections, d->dd_nconns, others);
}

unsigned dlv_spread_cap(const struct dlv_worker *w, const struct dlv_dest *d, unsigned want)
{
	unsigned limit = d->dd_shp.dp_eff.sl_max_connections, others, fair;

	if (d->dd_shp.dp_share == NULL || !d->dd_shp.dp_known || limit == 0)
		return want;
	others = shp_share_waiters(d->dd_shp.dp_share, w->w_index, NULL, 0);
	if (others == 0)
		return want;
	/* A unit handed back for a waiter is not taken again here. */
	fair = shp_share_fair(limit, others);
	return d->dd_nconns >= fair ? 0 : want < fair - d->dd_nconns ? want : fair - d->dd_nconns;
}

void dlv_spread_released(struct dlv_worker *w, const struct dlv_dest *d)
{
	unsigned who[SHP_SHARE_WORKERS], n;

	if (d->dd_shp.dp_share == NULL)
		return;
	n = shp_share_waiters(d->dd_shp.dp_share, w->w_index, who, SHP_SHARE_WORKERS);
	for (unsigned i = 0; i < n && i < SHP_SHARE_WORKERS; i++)
		if (who[i] < w->w_npeers)
			dlv_spread_nudge(w->w_peers[who[i]]);
}
