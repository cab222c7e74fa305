/*
 * delivery_met.c: delivery's side of the per site, provider and source
 * metrics (core/shaping/shp_met.h). A job that ends leaves on each of its
 * recipients where its outcome came from (site, provider, source); the
 * recipient is counted there once its round's outcome and bounce class
 * are final (delivery_result.c). Sessions count connections opened and
 * failed; each worker publishes its jobs ready and in flight on its tick
 * (dlv_shp_top_publish, with the live view).
 * The metrics endpoint reads the series with delivery_met_series().
 */
#include <stdlib.h>
#include <string.h>

#include "core/delivery/delivery_internal.h"
#include "core/shaping/shp_met.h"

#define DLV_MET_NO_PROVIDER "-"

void dlv_met_dest_keys(const struct dlv_dest *d, struct shp_met_keys *k)
{
	const struct dlv_dest_shp *p = &d->dd_shp;

	k->mk_name[SHP_MET_SITE] = p->dp_known ? p->dp_site : d->dd_name;
	k->mk_name[SHP_MET_PROVIDER] = p->dp_known && p->dp_provider[0] ? p->dp_provider :
				       DLV_MET_NO_PROVIDER;
	k->mk_name[SHP_MET_SOURCE] = p->dp_source != NULL ? p->dp_source : DLV_SOURCE_DEFAULT;
}

void dlv_met_rcpt_where(struct dlv_worker *w, const struct dlv_job *j, struct dlv_rcpt *rc)
{
	const char *source = j->dj_source != NULL ? j->dj_source : DLV_SOURCE_DEFAULT;
	struct shp_met_keys k = { { j->dj_nexthop,
				    j->dj_provider != NULL && j->dj_provider[0] ? j->dj_provider :
				    DLV_MET_NO_PROVIDER, source } };
	const struct dlv_dest *d;
	size_t len[SHP_MET_NDIMS], total = 0;
	char *where;

	if (w->w_shp->ds_met == NULL || rc->dr_met_where != NULL)
		return;
	/* The job's destination knows the site once its route did. */
	if ((d = dlv_dest_find(w, j->dj_nexthop, source)) != NULL)
		dlv_met_dest_keys(d, &k);
	for (unsigned i = 0; i < SHP_MET_NDIMS; i++)
		total += (len[i] = strlen(k.mk_name[i])) + 1;
	/* "site\0provider\0source\0" */
	if ((where = malloc(total)) == NULL)
		return;
	total = 0;
	for (unsigned i = 0; i < SHP_MET_NDIMS; i++) {
		memcpy(where + total, k.mk_name[i], len[i] + 1);
		total += len[i] + 1;
	}
	rc->dr_met_where = where;
}

void dlv_met_job_where(struct dlv_worker *w, const struct dlv_job *j)
{
	for (unsigned r = 0; r < j->dj_nrcpt; r++)
		dlv_met_rcpt_where(w, j, &j->dj_msg->dm_rcpts[j->dj_rcpts[r]]);
}

void dlv_met_rcpt(struct dlv_worker *w, const struct dlv_rcpt *r)
{
	struct shp_met_keys k;
	const char *p = r->dr_met_where;
	enum shp_met_ctr c;

	if (w->w_shp->ds_met == NULL || p == NULL)
		return;
	switch (r->dr_result) {
	case DLV_R_SENT:
		c = SHP_MET_DELIVERED;
		break;
	case DLV_R_DEFERRED:
		c = SHP_MET_DEFERRED;
		break;
	case DLV_R_FAILED:
		c = SHP_MET_BOUNCED;
		break;
	default:
		return;
	}
	for (unsigned i = 0; i < SHP_MET_NDIMS; i++) {
		k.mk_name[i] = p;
		p += strlen(p) + 1;
	}
	shp_met_count(w->w_shp->ds_met, &k, c, r->dr_class, 1, dlv_unix_us());
}

void dlv_met_conn(struct dlv_worker *w, const struct dlv_dest *d, bool opened)
{
	struct shp_met_keys k;

	if (w->w_shp->ds_met == NULL)
		return;
	dlv_met_dest_keys(d, &k);
	shp_met_count(w->w_shp->ds_met, &k, opened ? SHP_MET_CONN_OPENED : SHP_MET_CONN_FAILED, 0,
		      1, dlv_unix_us());
}

unsigned delivery_met_max_series(struct delivery *d)
{
	struct shp_met *m = d != NULL ? dlv_shaping_of(d)->ds_met : NULL;

	return m != NULL ? shp_met_max_series(m) : 0;
}

unsigned delivery_met_series(struct delivery *d, enum shp_met_dim dim,
			     struct delivery_met_series *out, unsigned max)
{
	struct dlv_shaping *shp = d != NULL ? dlv_shaping_of(d) : NULL;
	struct shp_met_series *s;
	uint64_t now = dlv_unix_us();
	unsigned n;

	if (shp == NULL || shp->ds_met == NULL || (s = calloc(max ? max : 1, sizeof(*s))) == NULL)
		return 0;
	n = shp_met_snapshot(shp->ds_met, dim, now, s, max);
	for (unsigned i = 0; i < n; i++) {
		struct delivery_met_series *o = &out[i];
		struct shp_susp_mail m = { NULL, NULL, NULL, NULL };
		uint64_t until;

		o->dm_s = s[i];
		o->dm_suspended = -1;
		if (s[i].ms_other || dim == SHP_MET_PROVIDER)
			continue;	/* no such state: see delivery.h */
		if (dim == SHP_MET_SITE) {
			struct shp_verdict v;

			m.sm_site = s[i].ms_name;
			shp_state_check(shp->ds_state, s[i].ms_name, NULL, now, false, &v);
			o->dm_suspended = v.sv_gate == SHP_GATE_SUSPENDED ||
					  v.sv_gate == SHP_GATE_BOUNCE;
		} else {
			m.sm_source = s[i].ms_name;
			o->dm_suspended = 0;
		}
		if (shp_susp_check(shp->ds_susp, &m, now, &until, NULL, 0))
			o->dm_suspended = 1;
	}
	free(s);
	return n;
}
