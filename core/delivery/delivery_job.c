/*
 * delivery_job.c: a job (one message's recipients for one next hop)
 * made, freed, or split where a path's max_recipients or a next hop's LIMITS
 * (RCPTMAX, RCPTDOMAINMAX) end a transaction. See delivery_internal.h.
 */
#include "core/delivery/delivery_internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

void dlv_job_free(struct dlv_job *j)
{
	free(j->dj_source);
	free(j->dj_provider);
	free(j->dj_nexthop);
	free(j->dj_rcpts);
	free(j->dj_addrs);
	free(j->dj_dsn);
	free(j);
}

/* The path's max_recipients or the session's LIMITS (RCPTMAX,
 * RCPTDOMAINMAX): split j, its recipients past max going to a new job of
 * the same message, first in line. False: no memory (j is then sent
 * whole, as before shaping). */
struct dlv_job *dlv_job_new(const char *nexthop, unsigned cap)
{
	struct dlv_job *t = calloc(1, sizeof(*t));

	if (t == NULL || (t->dj_nexthop = strdup(nexthop)) == NULL ||
	    (t->dj_rcpts = calloc(cap, sizeof(uint32_t))) == NULL ||
	    (t->dj_addrs = calloc(cap, sizeof(char *))) == NULL ||
	    (t->dj_dsn = calloc(cap, sizeof(*t->dj_dsn))) == NULL) {
		if (t != NULL)
			dlv_job_free(t);
		return NULL;
	}
	return t;
}

bool dlv_job_split(struct dlv_dest *d, struct dlv_job *j, unsigned max)
{
	unsigned n = j->dj_nrcpt - max;
	struct dlv_job *t = dlv_job_new(j->dj_nexthop, n);

	if (t == NULL)
		return false;
	/* The same source; the pick (one message) stays with j. */
	if (j->dj_source != NULL && (t->dj_source = strdup(j->dj_source)) == NULL) {
		dlv_job_free(t);
		return false;
	}
	memcpy(t->dj_rcpts, j->dj_rcpts + max, n * sizeof(uint32_t));
	memcpy(t->dj_addrs, j->dj_addrs + max, n * sizeof(char *));
	memcpy(t->dj_dsn, j->dj_dsn + max, n * sizeof(*t->dj_dsn));
	t->dj_msg = j->dj_msg;
	t->dj_nrcpt = n;
	t->dj_txn = j->dj_txn;
	t->dj_txn.ct_nrcpt = n;
	t->dj_txn.ct_rcpts = t->dj_addrs;
	t->dj_txn.ct_dsn = t->dj_dsn;
	j->dj_nrcpt = max;
	j->dj_txn.ct_nrcpt = max;
	/* One more part of the message to wait for before its update. */
	atomic_fetch_add(&j->dj_msg->dm_parts_left, 1);
	atomic_fetch_add_explicit(&d->dd_w->w_jobs, 1, memory_order_relaxed);
	dlv_dest_enqueue_front(d, t);
	return true;
}

/* How many of j's first recipients name at most dmax domains (a next
 * hop's LIMITS RCPTDOMAINMAX); at least 1. Quadratic in the recipients
 * of one job at worst, and only when a next hop sets the limit. */
unsigned dlv_job_domain_prefix(const struct dlv_job *j, unsigned dmax)
{
	unsigned ndom = 0;

	for (unsigned k = 0; k < j->dj_nrcpt; k++) {
		const char *at = strrchr(j->dj_addrs[k], '@');
		const char *dom = at != NULL ? at + 1 : "";
		bool seen = false;

		for (unsigned i = 0; i < k && !seen; i++) {
			const char *a = strrchr(j->dj_addrs[i], '@');

			seen = strcasecmp(a != NULL ? a + 1 : "", dom) == 0;
		}
		if (!seen && ++ndom > dmax)
			return k > 0 ? k : 1;
	}
	return j->dj_nrcpt;
}
