/*
 * delivery_admin.c: what the operator's tools (the admin API) ask of
 * delivery, from any thread: the operator's suspensions (set, lifted,
 * listed), the shaping state in force and the live per-site view. The table lives in the shaping engine shared by the workers
 * (dlv_shaping.ds_susp), which check it for every job and destination;
 * every change is saved in the queue database before the call returns,
 * one change and its save at a time (ds_susp_lock), so the saved blob
 * never misses a change that was answered.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/base/log.h"
#include "core/delivery/delivery_internal.h"
#include "core/shaping/shp_holder.h"

/* A resumed suspension's mail comes back at its end plus up to this much
 * jitter (retry_wait_us spreads it by a tenth, at most a minute). */
#define DLV_SUSP_JITTER_US (61ull * 1000000u)

/* Save the table (ds_susp_lock held). */
static int dlv_susp_save(struct delivery *d, uint64_t now)
{
	struct shp_susp *s = dlv_shaping_of(d)->ds_susp;
	size_t n = shp_susp_save(s, now, NULL, 0);
	char *buf = malloc(n);
	int rc;

	if (buf == NULL)
		return -ENOMEM;
	/* Only this thread changes the table now: the size holds. */
	n = shp_susp_save(s, now, buf, n);
	rc = queue_blob_put(dlv_queue_of(d), DLV_SUSP_BLOB, buf, n);
	free(buf);
	return rc;
}

static void dlv_susp_restore_cb(void *arg, const void *data, size_t len)
{
	struct delivery *d = arg;

	if (shp_susp_restore(dlv_shaping_of(d)->ds_susp, data, len, dlv_unix_us()) < 0)
		log_msg(LOG_WARNING, "delivery: the saved suspensions are damaged or of another"
			" version (%zu bytes): ignored, starting without them", len);
}

void dlv_susp_restore(struct delivery *d)
{
	(void)queue_blob_get(dlv_queue_of(d), DLV_SUSP_BLOB, dlv_susp_restore_cb, d);
}

/* What waited for a suspension that ended (or changed) at until: due
 * now, to be sent or held again by what is in force. */
static unsigned dlv_susp_flush(struct delivery *d, enum shp_susp_kind kind, const char *name,
			       uint64_t until, uint64_t now)
{
	unsigned n = 0;

	/* Other mail that happens to be due then only comes a little early. */
	if (queue_admin_flush_window(dlv_queue_of(d), until, until + DLV_SUSP_JITTER_US, now,
				     &n) < 0)
		log_msg(LOG_WARNING, "delivery: %s %s: the mail waiting for it could not be made"
			" due now: it comes at the suspension's old end",
			shp_susp_kind_name(kind), name);
	return n;
}

/* A suspension as it was before a change, put back when the change
 * cannot be saved: the saved table still has it, so memory must too. */
struct dlv_susp_prev {
	enum shp_susp_kind sp_kind;
	const char *sp_name;
	bool sp_found;
	char sp_who[SHP_SUSP_WHO_MAX + 1];
	char sp_reason[SHP_SUSP_REASON_MAX + 1];
	uint64_t sp_until;
};

static void dlv_susp_prev_cb(void *arg, const struct shp_susp_item *it)
{
	struct dlv_susp_prev *p = arg;

	if (it->si_kind != p->sp_kind || strcasecmp(it->si_name, p->sp_name) != 0)
		return;
	p->sp_found = true;
	snprintf(p->sp_who, sizeof(p->sp_who), "%s", it->si_who);
	snprintf(p->sp_reason, sizeof(p->sp_reason), "%s", it->si_reason);
	p->sp_until = it->si_until_us;
}

/* Under ds_susp_lock: the change is not saved; the selector goes back to
 * what it was (in force or not). */
static void dlv_susp_put_back(struct shp_susp *s, const struct dlv_susp_prev *p, uint64_t now)
{
	if (!p->sp_found || shp_susp_set(s, p->sp_kind, p->sp_name, p->sp_who, p->sp_reason,
					 now, p->sp_until) < 0)
		(void)shp_susp_clear(s, p->sp_kind, p->sp_name, now, NULL);
}

int delivery_suspend(struct delivery *d, enum shp_susp_kind kind, const char *name,
		     uint64_t duration_us, const char *who, const char *reason)
{
	struct dlv_shaping *shp = dlv_shaping_of(d);
	uint64_t now = dlv_unix_us(), old_until, until;
	struct shp_susp_mail m = { NULL, NULL, NULL, NULL };
	const char **sel[SHP_SUSP_NKINDS] = {
		&m.sm_site, &m.sm_domain, &m.sm_source, &m.sm_sender_domain,
	};
	struct dlv_susp_prev prev = { .sp_kind = kind, .sp_name = name };
	char why[400];
	int rc;

	if (duration_us == 0 || duration_us > SHP_SUSP_DURATION_MAX)
		return -EINVAL;
	pthread_mutex_lock(&shp->ds_susp_lock);
	old_until = shp_susp_until(shp->ds_susp, kind, name, now);
	(void)shp_susp_foreach(shp->ds_susp, now, dlv_susp_prev_cb, &prev);
	rc = shp_susp_set(shp->ds_susp, kind, name, who, reason, now, now + duration_us);
	if (rc == 0 && (rc = dlv_susp_save(d, now)) < 0) {
		/* Not saved, not in force: the caller is told it failed, and
		 * a suspension it would have replaced stays as it was. */
		dlv_susp_put_back(shp->ds_susp, &prev, now);
	}
	pthread_mutex_unlock(&shp->ds_susp_lock);
	if (rc < 0)
		return rc;
	*sel[kind] = name;
	/* In the table's own words: its name and reason are cleaned. */
	if (!shp_susp_check(shp->ds_susp, &m, now, &until, why, sizeof(why)))
		snprintf(why, sizeof(why), "%s suspended", shp_susp_kind_name(kind));
	log_msg(LOG_WARNING, "delivery: %s for %llus", why,
		(unsigned long long)(duration_us / 1000000u));
	/* A new end for a suspension in force: what waited for the old end
	 * waits for the new one (it is held again at once, no attempt). */
	if (old_until != 0 && old_until != now + duration_us)
		(void)dlv_susp_flush(d, kind, name, old_until, now);
	return 0;
}

int delivery_resume(struct delivery *d, enum shp_susp_kind kind, const char *name,
		    unsigned *flushed_r)
{
	struct dlv_shaping *shp = dlv_shaping_of(d);
	uint64_t now = dlv_unix_us(), until;
	struct dlv_susp_prev prev = { .sp_kind = kind, .sp_name = name };
	unsigned n = 0;
	int rc;

	if (flushed_r != NULL)
		*flushed_r = 0;
	pthread_mutex_lock(&shp->ds_susp_lock);
	(void)shp_susp_foreach(shp->ds_susp, now, dlv_susp_prev_cb, &prev);
	rc = shp_susp_clear(shp->ds_susp, kind, name, now, &until);
	if (rc == 0 && (rc = dlv_susp_save(d, now)) < 0)
		dlv_susp_put_back(shp->ds_susp, &prev, now);	/* still in force */
	pthread_mutex_unlock(&shp->ds_susp_lock);
	if (rc < 0)
		return rc;
	n = dlv_susp_flush(d, kind, name, until, now);
	log_msg(LOG_WARNING, "delivery: %s %s resumed: %u messages due now",
		shp_susp_kind_name(kind), name, n);
	if (flushed_r != NULL)
		*flushed_r = n;
	return 0;
}

unsigned delivery_suspensions_foreach(struct delivery *d,
				      void (*fn)(void *arg, const struct shp_susp_item *it),
				      void *arg)
{
	return shp_susp_foreach(dlv_shaping_of(d)->ds_susp, dlv_unix_us(), fn, arg);
}

struct dlv_state_arg {
	void (*sa_fn)(void *arg, const struct delivery_shp_item *it);
	void *sa_arg;
};

static void dlv_state_item(void *arg, const struct shp_state_item *it)
{
	const struct dlv_state_arg *sa = arg;
	struct delivery_shp_item di = {
		"site", it->sti_site, it->sti_source, it->sti_kind, it->sti_rule, "",
		it->sti_text, 0, it->sti_until_us, it->sti_value,
	};

	sa->sa_fn(sa->sa_arg, &di);
}

static void dlv_susp_item(void *arg, const struct shp_susp_item *it)
{
	const struct dlv_state_arg *sa = arg;
	struct delivery_shp_item di = {
		shp_susp_kind_name(it->si_kind), it->si_name, "", "admin_suspend", it->si_who,
		it->si_reason, "", it->si_set_us, it->si_until_us, 0,
	};

	sa->sa_fn(sa->sa_arg, &di);
}

void delivery_shaping_state(struct delivery *d,
			    void (*fn)(void *arg, const struct delivery_shp_item *it), void *arg)
{
	struct dlv_state_arg sa = { fn, arg };
	uint64_t now = dlv_unix_us();

	shp_state_foreach(dlv_shaping_of(d)->ds_state, now, dlv_state_item, &sa);
	shp_susp_foreach(dlv_shaping_of(d)->ds_susp, now, dlv_susp_item, &sa);
}

unsigned delivery_top(struct delivery *d, struct delivery_top_site *out, unsigned max,
		      unsigned *total_r)
{
	struct dlv_shaping *shp = dlv_shaping_of(d);
	struct shp_top_site *sites = calloc(max ? max : 1, sizeof(*sites));
	uint64_t now = dlv_unix_us();
	unsigned n;

	if (total_r != NULL)
		*total_r = 0;
	if (sites == NULL)
		return 0;
	n = shp_top_snapshot(shp->ds_top, now, sites, max, total_r);
	for (unsigned i = 0; i < n; i++) {
		struct delivery_top_site *t = &out[i];
		struct shp_susp_mail m = { sites[i].ts_site, NULL, NULL, NULL };
		struct shp_verdict v;

		memset(t, 0, sizeof(*t));
		t->dt_site = sites[i];
		if (shp_susp_check(shp->ds_susp, &m, now, &t->dt_until_us, t->dt_why,
				   sizeof(t->dt_why))) {
			t->dt_suspended = true;
			continue;
		}
		/* The site as a whole (no source): automation or health. */
		shp_state_check(shp->ds_state, sites[i].ts_site, NULL, now, false, &v);
		if (v.sv_gate == SHP_GATE_SUSPENDED || v.sv_gate == SHP_GATE_BOUNCE) {
			t->dt_suspended = true;
			t->dt_until_us = v.sv_until_us;
			snprintf(t->dt_why, sizeof(t->dt_why), "%s", v.sv_reason);
		}
	}
	free(sites);
	return n;
}

int delivery_site_limits(struct delivery *d, const char *site, const char *provider,
			 struct shp_limits *out)
{
	const struct config *cfg = dlv_cfg_of(d);
	struct shp_holder *h = dlv_rules_holder_of(d);
	struct shp_rules *r = h != NULL ? shp_holder_get(h) : NULL;
	const struct shp_provider *p;

	memset(out, 0, sizeof(*out));
	if (r == NULL)
		return -ENOENT;
	p = provider != NULL && provider[0] ? shp_rules_provider_by_name(r, provider) : NULL;
	shp_rules_limits(r, p, site, NULL, NULL, cfg->destination_concurrency_limit,
			 cfg->destination_rate_limit, out);
	shp_rules_unref(&r);
	return 0;
}
