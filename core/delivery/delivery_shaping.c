/*
 * delivery_shaping.c: traffic shaping on the workers' side of delivery.
 * A destination (one domain, or the relayhost) learns its site from its
 * MX hosts (or the shared domain -> site cache, before any DNS), its
 * provider and the limits of its path (site, source) from the rules.
 * Limits across the destinations of one site, and of one provider, live
 * in the shared store (shp_store.h) under keys built from the path, so
 * two domains on the same MX hosts share one connection limit even when
 * they sit on different workers; sessions themselves stay per domain.
 * What receivers say (every 4xx/5xx) goes through the automation rules;
 * what the state says (shp_state.h) gates every new connection and every
 * transaction: suspended paths defer their mail without an attempt.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "core/base/log.h"
#include "core/delivery/delivery_internal.h"
#include "core/shaping/shp_holder.h"

#define DLV_SITE_TTL_S 300u		/* domain -> site cache */
#define DLV_KEY_MAX 600

uint64_t dlv_unix_us(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

unsigned dlv_shp_chores(struct dlv_shp_clock *c, uint64_t now)
{
	unsigned todo = 0;

	if (now >= c->sc_save + 1000000u) {
		c->sc_save = now;
		todo |= DLV_SHP_DO_SAVE;
	}
	if (now >= c->sc_src_save + 10000000u) {
		c->sc_src_save = now;
		todo |= DLV_SHP_DO_SRC_SAVE;
	}
	/* Its own clock: a state saved every second must not hold it off. */
	if (now >= c->sc_expire + 10000000u) {
		c->sc_expire = now;
		todo |= DLV_SHP_DO_EXPIRE;
	}
	return todo;
}

int dlv_shaping_new(struct dlv_shaping **s_r)
{
	struct dlv_shaping *s = calloc(1, sizeof(*s));

	*s_r = NULL;
	if (s == NULL || shp_store_local_new(&s->ds_store) < 0 || shp_state_new(&s->ds_state) < 0 ||
	    shp_src_state_new(&s->ds_src) < 0 || shp_susp_new(&s->ds_susp) < 0 ||
	    shp_share_tab_new(&s->ds_shares) < 0) {
		if (s != NULL) {
			shp_store_free(&s->ds_store);
			shp_state_free(&s->ds_state);
			shp_src_state_free(&s->ds_src);
			shp_susp_free(&s->ds_susp);
		}
		free(s);
		return -1;
	}
	pthread_mutex_init(&s->ds_lock, NULL);
	pthread_mutex_init(&s->ds_susp_lock, NULL);
	*s_r = s;
	return 0;
}

/* Add delta to the count labelled name (a new label while there is room). */
static void dlv_shp_label_add(struct dlv_shaping *s, struct dlv_shp_label *t, unsigned *n,
			      const char *name, int64_t delta)
{
	unsigned i;

	pthread_mutex_lock(&s->ds_lock);
	for (i = 0; i < *n; i++)
		if (strcmp(t[i].dl_name, name) == 0)
			break;
	if (i == *n && *n < 64) {
		snprintf(t[i].dl_name, sizeof(t[i].dl_name), "%s", name);
		t[i].dl_n = 0;
		(*n)++;
	}
	if (i < *n)
		t[i].dl_n += delta;
	pthread_mutex_unlock(&s->ds_lock);
}

void dlv_shaping_free(struct dlv_shaping **sp)
{
	struct dlv_shaping *s = *sp;

	if (s == NULL)
		return;
	shp_store_free(&s->ds_store);
	shp_state_free(&s->ds_state);
	shp_src_state_free(&s->ds_src);
	shp_susp_free(&s->ds_susp);
	shp_top_free(&s->ds_top);
	shp_met_free(&s->ds_met);
	shp_share_tab_free(&s->ds_shares);
	pthread_mutex_destroy(&s->ds_lock);
	pthread_mutex_destroy(&s->ds_susp_lock);
	free(s);
	*sp = NULL;
}

struct shp_rules *dlv_rules_get(struct dlv_worker *w)
{
	/* The worker's cached reference: no lock unless a reload swapped. */
	return w->w_env->de_rules != NULL ?
	       shp_holder_get_cached(w->w_env->de_rules, &w->w_rules) : NULL;
}

static const char *dlv_shp_source(const struct dlv_dest *d)
{
	return d->dd_shp.dp_source != NULL ? d->dd_shp.dp_source : DLV_SOURCE_DEFAULT;
}

/* Limits of the path, with ringmta.conf's as the base, from the rules
 * in force: sessions open keep d's rules, but a reload's limits apply at
 * once (the provider by the name d's units are held under). */
static void dlv_shp_limits(struct dlv_worker *w, struct dlv_dest *d)
{
	struct dlv_dest_shp *p = &d->dd_shp;
	struct shp_rules *cur = dlv_rules_get(w);
	const struct shp_rules *r = p->dp_rules;
	const struct shp_provider *prov = p->dp_prov;

	if (cur != NULL && cur != p->dp_rules) {
		r = cur;
		prov = p->dp_provider[0] ? shp_rules_provider_by_name(cur, p->dp_provider) : NULL;
	}
	shp_rules_limits(r, prov, p->dp_site, d->dd_name, dlv_shp_source(d),
			 w->w_cfg->destination_concurrency_limit,
			 w->w_cfg->destination_rate_limit, &p->dp_limits);
	if (prov != NULL)
		shp_rules_provider_limits(r, prov, dlv_shp_source(d), &p->dp_plimits);
	else
		memset(&p->dp_plimits, 0, sizeof(p->dp_plimits));
	p->dp_eff = p->dp_limits;
	if (p->dp_lrules != NULL)
		shp_rules_unref(&p->dp_lrules);
	p->dp_lrules = cur;	/* the reference moves */
}

/* The rules for d's next look at its limits. Sessions open keep the
 * rules they were opened with (their source lives in them). */
static void dlv_shp_set_rules(struct dlv_worker *w, struct dlv_dest *d)
{
	struct dlv_dest_shp *p = &d->dd_shp;

	if (p->dp_rules != NULL && d->dd_nconns > 0)
		return;
	if (p->dp_rules != NULL)
		shp_rules_unref(&p->dp_rules);
	p->dp_rules = dlv_rules_get(w);
	p->dp_prov = NULL;
}

void dlv_shp_follow_rules(struct dlv_worker *w, struct dlv_dest *d)
{
	struct shp_rules *cur;

	if (!d->dd_shp.dp_known)
		return;
	cur = dlv_rules_get(w);
	if (cur != d->dd_shp.dp_lrules) {
		struct dlv_dest_shp *p = &d->dd_shp;

		if (p->dp_rules != cur && d->dd_nconns == 0) {
			dlv_shp_set_rules(w, d);
			p->dp_prov = p->dp_provider[0] && p->dp_rules != NULL ?
				     shp_rules_provider_by_name(p->dp_rules, p->dp_provider) : NULL;
		}
		dlv_shp_limits(w, d);
		p->dp_rate_until = 0;	/* the new rates say how long */
	}
	if (cur != NULL)
		shp_rules_unref(&cur);
}

void dlv_shp_from_cache(struct dlv_worker *w, struct dlv_dest *d)
{
	struct dlv_dest_shp *p = &d->dd_shp;
	char site[sizeof(p->dp_site)], prov[sizeof(p->dp_provider)];

	if (p->dp_known && io_loop_now() < p->dp_expires)
		return;
	if (!shp_state_site_get(w->w_shp->ds_state, d->dd_name, dlv_unix_us(), site, sizeof(site),
				prov, sizeof(prov)))
		return;
	if (d->dd_nconns > 0 && p->dp_known && strcmp(site, p->dp_site) != 0)
		return;		/* units are held under the old site's keys */
	snprintf(p->dp_site, sizeof(p->dp_site), "%s", site);
	/* With sessions open the provider's units are held under its name
	 * (dlv_shp_conn_put gives them back there): it stays until they
	 * are gone, as in dlv_shp_from_route. */
	if (d->dd_nconns == 0 || !p->dp_known)
		snprintf(p->dp_provider, sizeof(p->dp_provider), "%s", prov);
	dlv_shp_set_rules(w, d);
	/* The provider object comes with the route; limits by site now. */
	dlv_shp_limits(w, d);
	p->dp_known = true;
	dlv_spread_attach(w, d);	/* the share follows the site */
	p->dp_expires = io_loop_now() + DLV_SITE_TTL_S;
}

const struct shp_provider *dlv_site_of(const struct shp_rules *r, const char *nexthop,
					bool relay, const struct dns_route *route, char *site,
					size_t sitelen)
{
	const char *hosts[DNS_MAX_HOSTS];

	for (unsigned i = 0; i < route->dr_nhosts; i++)
		hosts[i] = route->dr_hosts[i].dh_name;
	/* A relayhost is a site of its own; so is a domain without MX
	 * hosts (implicit MX), one the rules set apart, or one whose MX set
	 * does not fit a name. */
	if (relay || route->dr_implicit || route->dr_nhosts == 0 ||
	    (r != NULL && shp_rules_domain_alone(r, nexthop)) ||
	    shp_site_name(hosts, route->dr_nhosts, site, sitelen) == 0)
		snprintf(site, sitelen, "%s", nexthop);
	return r != NULL && !relay ? shp_rules_provider(r, hosts, route->dr_nhosts) : NULL;
}

void dlv_shp_from_route(struct dlv_worker *w, struct dlv_dest *d, const struct dns_route *r)
{
	struct dlv_dest_shp *p = &d->dd_shp;
	const struct config *cfg = w->w_cfg;
	char site[sizeof(p->dp_site)];
	bool relay = cfg->relayhost != NULL && cfg->relayhost[0] != '\0' &&
		     strcasecmp(d->dd_name, cfg->relayhost) == 0;
	const struct shp_provider *prov;
	const char *pname;

	dlv_shp_set_rules(w, d);
	prov = dlv_site_of(p->dp_rules, d->dd_name, relay, r, site, sizeof(site));
	if (d->dd_nconns > 0 && p->dp_known && strcmp(site, p->dp_site) != 0)
		snprintf(site, sizeof(site), "%s", p->dp_site);	/* units held there */
	snprintf(p->dp_site, sizeof(p->dp_site), "%s", site);
	p->dp_prov = prov;
	/* With sessions open, the provider's units are held under its
	 * name: it stays until they are gone. */
	if (d->dd_nconns == 0 || !p->dp_known) {
		pname = p->dp_prov != NULL ? shp_provider_name(p->dp_prov) : NULL;
		snprintf(p->dp_provider, sizeof(p->dp_provider), "%s", pname ? pname : "");
	}
	dlv_shp_limits(w, d);
	p->dp_known = true;
	dlv_spread_attach(w, d);	/* the share follows the site */
	p->dp_expires = io_loop_now() + DLV_SITE_TTL_S;
	shp_state_site_put(w->w_shp->ds_state, d->dd_name, p->dp_site, p->dp_provider,
			   dlv_unix_us() + DLV_SITE_TTL_S * 1000000ull);
}

/* Whether an operator's suspension holds d's mail (its site, domain or
 * source): v is then a SUSPENDED verdict until its end. */
static bool dlv_shp_held(struct dlv_worker *w, struct dlv_dest *d, struct shp_verdict *v)
{
	struct shp_susp_mail m = { d->dd_shp.dp_site, d->dd_name, dlv_shp_source(d), NULL };

	memset(v, 0, sizeof(*v));
	if (!shp_susp_check(w->w_shp->ds_susp, &m, dlv_unix_us(), &v->sv_until_us, v->sv_reason,
			    sizeof(v->sv_reason)))
		return false;
	v->sv_gate = SHP_GATE_SUSPENDED;
	return true;
}

int dlv_shp_gate(struct dlv_worker *w, struct dlv_dest *d, bool claim)
{
	struct dlv_dest_shp *p = &d->dd_shp;
	struct shp_verdict v;

	if (!p->dp_known)
		return SHP_GATE_OPEN;
	if (dlv_shp_held(w, d, &v)) {
		/* The operator's word first: no probe is claimed for it. */
		p->dp_eff = p->dp_limits;
	} else {
		shp_state_check(w->w_shp->ds_state, p->dp_site, dlv_shp_source(d), dlv_unix_us(),
				claim, &v);
		p->dp_eff = p->dp_limits;
		shp_verdict_apply(&v, &p->dp_eff);
	}
	switch (v.sv_gate) {
	case SHP_GATE_SUSPENDED:
		/* The probe's outcome comes within a connection's timeouts:
		 * what waits stays here (the tick looks again), rather than
		 * going back to the queue every few seconds, each time a
		 * write and a log line per recipient. */
		if (v.sv_probe_wait)
			break;
		if (d->dd_head != NULL)
			log_msg(LOG_DEBUG, "delivery: %s: %s", d->dd_name, v.sv_reason);
		dlv_dest_fail_queued(w, d, DLV_R_DEFERRED, "4.4.5", v.sv_reason, true,
				     v.sv_until_us);
		break;
	case SHP_GATE_BOUNCE:
		dlv_dest_fail_queued(w, d, DLV_R_FAILED, "5.7.0", v.sv_reason, false, 0);
		break;
	default:
		break;
	}
	return v.sv_gate;
}

static void dlv_shp_key(char *out, const char *kind, const char *a, const char *b)
{
	snprintf(out, DLV_KEY_MAX, "%.8s|%.300s|%.280s", kind, a, b);
}

int dlv_shp_conn_take(struct dlv_worker *w, struct dlv_dest *d, bool force)
{
	struct dlv_dest_shp *p = &d->dd_shp;
	struct shp_store *s = w->w_shp->ds_store;
	const char *src = dlv_shp_source(d);
	uint64_t now = dlv_unix_us();
	char key[DLV_KEY_MAX], pkey[DLV_KEY_MAX], rkey[DLV_KEY_MAX];

	if (!p->dp_known)
		return DLV_CONN_OK;	/* cannot happen: the route made it known */
	dlv_shp_key(key, "c", p->dp_site, src);
	if (!s->ss_ops->ss_sem_acquire(s, key, force ? 0 : p->dp_eff.sl_max_connections, now))
		return DLV_CONN_FULL;
	if (p->dp_provider[0] != '\0') {
		dlv_shp_key(pkey, "pc", p->dp_provider, src);
		if (!s->ss_ops->ss_sem_acquire(s, pkey, force ? 0 : p->dp_plimits.sl_max_connections,
					       now)) {
			s->ss_ops->ss_sem_release(s, key, now);
			return DLV_CONN_FULL;
		}
	}
	dlv_shp_key(rkey, "r", p->dp_site, src);
	if (!force && p->dp_eff.sl_connection_rate.sr_count != 0 &&
	    s->ss_ops->ss_gcra_take(s, rkey, &p->dp_eff.sl_connection_rate, now, 1) != 0) {
		s->ss_ops->ss_sem_release(s, key, now);
		if (p->dp_provider[0] != '\0')
			s->ss_ops->ss_sem_release(s, pkey, now);
		return DLV_CONN_RATE;	/* the tick tries again */
	}
	dlv_shp_label_add(w->w_shp, w->w_shp->ds_provs, &w->w_shp->ds_nprovs,
			  p->dp_provider[0] ? p->dp_provider : "-", 1);
	return DLV_CONN_OK;
}

bool dlv_shp_over_limit(struct dlv_worker *w, struct dlv_dest *d)
{
	struct dlv_dest_shp *p = &d->dd_shp;
	struct shp_store *s = w->w_shp->ds_store;
	char key[DLV_KEY_MAX];

	if (!p->dp_known || p->dp_eff.sl_max_connections == 0)
		return false;
	dlv_shp_key(key, "c", p->dp_site, dlv_shp_source(d));
	return s->ss_ops->ss_sem_count(s, key) > p->dp_eff.sl_max_connections;
}

void dlv_shp_conn_put(struct dlv_worker *w, struct dlv_dest *d)
{
	struct dlv_dest_shp *p = &d->dd_shp;
	struct shp_store *s = w->w_shp->ds_store;
	uint64_t now = dlv_unix_us();
	char key[DLV_KEY_MAX];

	if (!p->dp_known)
		return;
	dlv_shp_key(key, "c", p->dp_site, dlv_shp_source(d));
	s->ss_ops->ss_sem_release(s, key, now);
	dlv_shp_label_add(w->w_shp, w->w_shp->ds_provs, &w->w_shp->ds_nprovs,
			  p->dp_provider[0] ? p->dp_provider : "-", -1);
	if (p->dp_provider[0] != '\0') {
		dlv_shp_key(key, "pc", p->dp_provider, dlv_shp_source(d));
		s->ss_ops->ss_sem_release(s, key, now);
	}
	dlv_spread_released(w, d);
}

uint64_t dlv_shp_msg_take(struct dlv_worker *w, struct dlv_dest *d)
{
	struct dlv_dest_shp *p = &d->dd_shp;
	struct shp_store *s = w->w_shp->ds_store;
	uint64_t now = dlv_unix_us(), wait;
	char key[DLV_KEY_MAX];

	if (!p->dp_known)
		return 0;
	if (p->dp_provider[0] != '\0' && p->dp_plimits.sl_message_rate.sr_count != 0) {
		dlv_shp_key(key, "pm", p->dp_provider, dlv_shp_source(d));
		wait = s->ss_ops->ss_gcra_take(s, key, &p->dp_plimits.sl_message_rate, now, 1);
		if (wait != 0)
			return wait;
	}
	if (p->dp_eff.sl_message_rate.sr_count == 0)
		return 0;
	dlv_shp_key(key, "m", p->dp_site, dlv_shp_source(d));
	return s->ss_ops->ss_gcra_take(s, key, &p->dp_eff.sl_message_rate, now, 1);
}

void dlv_shp_client_path(struct dlv_dest *d, struct smtp_client_path *cp)
{
	const struct shp_limits *l = &d->dd_shp.dp_eff;

	memset(cp, 0, sizeof(*cp));
	/* The source by name in the rules the destination holds (its
	 * sessions keep those rules, so the pointer outlives them). */
	if (d->dd_shp.dp_rules != NULL && d->dd_shp.dp_source != NULL) {
		cp->cp_source = shp_rules_source_by_name(d->dd_shp.dp_rules, d->dd_shp.dp_source);
		if (cp->cp_source != NULL)
			cp->cp_ehlo = cp->cp_source->ss_ehlo;
	}
	if (!d->dd_shp.dp_known)
		return;
	cp->cp_tls = l->sl_tls;
	cp->cp_connect_timeout_ms = l->sl_connect_timeout_ms;
	cp->cp_idle_timeout_ms = l->sl_idle_timeout_ms;
	cp->cp_max_msgs = l->sl_max_messages_per_connection;
}

static const char *dlv_act_name(uint8_t kind)
{
	static const char *const names[] = {
		"?", "suspend", "suspend_site", "max_connections", "message_rate", "bounce", "ramp",
	};
	return kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "?";
}

static void dlv_time_str(uint64_t us, char *out, size_t len)
{
	time_t t = (time_t)(us / 1000000u);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void dlv_shp_reply(struct dlv_worker *w, struct dlv_dest *d, unsigned code, const char *ecode,
		   const char *text)
{
	struct dlv_dest_shp *p = &d->dd_shp;
	const struct shp_auto_rule *rules[8];
	uint64_t now = dlv_unix_us();
	unsigned n;

	(void)code;
	if (!p->dp_known || p->dp_rules == NULL)
		return;
	n = shp_rules_match(p->dp_rules, p->dp_prov, ecode, text, rules, 8);
	for (unsigned i = 0; i < n; i++) {
		const struct shp_auto_rule *ar = rules[i];

		if (ar->ar_threshold > 1 && ar->ar_window_us > 0) {
			struct shp_store *s = w->w_shp->ds_store;
			char key[DLV_KEY_MAX], path[DLV_KEY_MAX];

			snprintf(path, sizeof(path), "%s|%s", p->dp_site, dlv_shp_source(d));
			dlv_shp_key(key, "t", ar->ar_name, path);
			if (s->ss_ops->ss_window_add(s, key, ar->ar_window_us, now) < ar->ar_threshold)
				continue;
			s->ss_ops->ss_window_reset(s, key);
		}
		for (unsigned k = 0; k < ar->ar_nactions; k++) {
			const struct shp_action *a = &ar->ar_actions[k];
			uint64_t until = shp_state_fire(w->w_shp->ds_state, p->dp_site,
							dlv_shp_source(d), ar->ar_name, a, now);
			char when[40];

			dlv_time_str(until, when, sizeof(when));
			atomic_fetch_add(&w->w_shp->ds_firings, 1);
			dlv_shp_label_add(w->w_shp, w->w_shp->ds_rules, &w->w_shp->ds_nrules,
					  ar->ar_name, 1);
			log_msg(LOG_WARNING, "shaping: rule %s (%s:%u) fired: site=%s source=%s"
				" action=%s%s until=%s reply=\"%s\"", ar->ar_name,
				ar->ar_file ? ar->ar_file : "?", ar->ar_line, p->dp_site,
				dlv_shp_source(d), dlv_act_name(a->sa_kind),
				a->sa_kind == SHP_ACT_RAMP ? " (paused)" : "", when, text);
		}
	}
}

struct dlv_shp_backoff_arg {
	const struct shp_rules *ba_rules;
	uint64_t ba_max_us;
};

/* The rules' health backoff, never past retry_max: an operator who wants
 * every message tried at least that often gets it, probe included. */
static uint64_t dlv_shp_backoff(void *arg, unsigned level)
{
	const struct dlv_shp_backoff_arg *ba = arg;
	uint64_t us = ba->ba_rules != NULL ? shp_rules_health_backoff_us(ba->ba_rules, level) :
		      60000000u * level;

	return us < ba->ba_max_us ? us : ba->ba_max_us;
}

void dlv_shp_route_failed(struct dlv_worker *w, struct dlv_dest *d, const char *ecode,
			  const char *reason)
{
	struct dlv_dest_shp *p = &d->dd_shp;
	char why[512], when[40];
	uint64_t until;

	if (p->dp_probe > 0)
		p->dp_probe--;
	p->dp_proven = p->dp_proven_kicked = false;
	if (!p->dp_known) {
		dlv_dest_fail_queued(w, d, DLV_R_DEFERRED, ecode, reason, false, 0);
		return;
	}
	{
		struct dlv_shp_backoff_arg ba = {
			p->dp_rules, (uint64_t)w->w_cfg->retry_max * 1000000u
		};

		until = shp_state_conn_failed(w->w_shp->ds_state, p->dp_site, dlv_unix_us(),
					      dlv_shp_backoff, &ba);
	}
	dlv_time_str(until, when, sizeof(when));
	atomic_fetch_add(&w->w_shp->ds_health, 1);
	log_msg(LOG_WARNING, "shaping: site %s suspended until %s: every connection attempt"
		" failed (%s)", p->dp_site, when, reason);
	snprintf(why, sizeof(why), "%s (site %s suspended until %s)", reason, p->dp_site, when);
	dlv_dest_fail_queued(w, d, DLV_R_DEFERRED, ecode, why, true, until);
}

void dlv_shp_opened(struct dlv_worker *w, struct dlv_dest *d)
{
	struct dlv_dest_shp *p = &d->dd_shp;

	p->dp_proven = true;
	if (p->dp_probe > 0) {
		p->dp_probe--;
		log_msg(LOG_INFO, "shaping: site %s answered the probe: open again", p->dp_site);
	}
	if (p->dp_known)
		shp_state_conn_ok(w->w_shp->ds_state, p->dp_site, dlv_unix_us());
}

void dlv_shp_closed_after(struct dlv_worker *w, struct dlv_dest *d, unsigned n)
{
	struct dlv_dest_shp *p = &d->dd_shp;

	if (!p->dp_known)
		return;
	if (shp_state_learn_max_msgs(w->w_shp->ds_state, p->dp_site, dlv_shp_source(d), n,
				     dlv_unix_us())) {
		atomic_fetch_add(&w->w_shp->ds_learned, 1);
		log_msg(LOG_WARNING, "shaping: site %s source %s closes connections after %u"
			" messages: max messages per connection lowered to %u", p->dp_site,
			dlv_shp_source(d), n, n);
	}
	if (p->dp_eff.sl_max_messages_per_connection == 0 ||
	    n < p->dp_eff.sl_max_messages_per_connection)
		p->dp_eff.sl_max_messages_per_connection = n;
}

void dlv_shp_delivered(struct dlv_worker *w, struct dlv_dest *d)
{
	struct dlv_dest_shp *p = &d->dd_shp;

	if (p->dp_known) {
		shp_state_delivered(w->w_shp->ds_state, p->dp_site, p->dp_limits.sl_max_connections,
				    dlv_unix_us());
		if (w->w_shp->ds_top != NULL)
			shp_top_delivered(w->w_shp->ds_top, p->dp_site, 1, dlv_unix_us());
	}
}

void dlv_shp_deferred(struct dlv_worker *w, struct dlv_dest *d, unsigned n)
{
	if (d->dd_shp.dp_known && n > 0 && w->w_shp->ds_top != NULL)
		shp_top_deferred(w->w_shp->ds_top, d->dd_shp.dp_site, n, dlv_unix_us());
}

unsigned dlv_dest_busy(const struct dlv_dest *d)
{
	unsigned idle = 0;

	for (struct smtp_client *c = d->dd_idle; c != NULL; c = smtp_client_next_idle(c))
		idle++;
	return d->dd_nconns > d->dd_nopening + idle ? d->dd_nconns - d->dd_nopening - idle : 0;
}

void dlv_shp_top_publish(struct dlv_worker *w)
{
	struct shp_top_row *rows;
	struct shp_met_row *mrows;
	unsigned n = 0, nm = 0, max = 0;

	if (w->w_shp->ds_top == NULL || w->w_shp->ds_met == NULL)
		return;
	for (unsigned b = 0; b < w->w_nbuckets; b++)
		for (struct dlv_dest *d = w->w_dests[b]; d != NULL; d = d->dd_hnext)
			max++;
	rows = calloc(max ? max : 1, sizeof(*rows));
	mrows = calloc(max ? max : 1, sizeof(*mrows));
	if (rows == NULL || mrows == NULL) {
		free(rows);
		free(mrows);
		return;		/* the last views stay */
	}
	for (unsigned b = 0; b < w->w_nbuckets; b++) {
		for (struct dlv_dest *d = w->w_dests[b]; d != NULL; d = d->dd_hnext) {
			if (d->dd_queued == 0 && d->dd_nconns == 0)
				continue;
			/* The metrics' view: the next hop until the site is known. */
			dlv_met_dest_keys(d, &mrows[nm].mr_keys);
			mrows[nm].mr_ready = d->dd_queued;
			mrows[nm++].mr_in_flight = dlv_dest_busy(d);
			if (!d->dd_shp.dp_known)
				continue;
			rows[n].tr_site = d->dd_shp.dp_site;
			rows[n].tr_provider = d->dd_shp.dp_provider;
			rows[n].tr_ready = d->dd_queued;
			rows[n].tr_conns = d->dd_nconns;
			rows[n].tr_busy = dlv_dest_busy(d);
			n++;
		}
	}
	shp_top_publish(w->w_shp->ds_top, w->w_index, rows, n, dlv_unix_us());
	shp_met_publish(w->w_shp->ds_met, w->w_index, mrows, nm, dlv_unix_us());
	free(rows);
	free(mrows);
}

void dlv_shp_dest_free(struct dlv_dest *d)
{
	dlv_spread_detach(d->dd_w, d);
	if (d->dd_shp.dp_rules != NULL)
		shp_rules_unref(&d->dd_shp.dp_rules);
	if (d->dd_shp.dp_lrules != NULL)
		shp_rules_unref(&d->dd_shp.dp_lrules);
	free(d->dd_shp.dp_source);
	d->dd_shp.dp_source = NULL;
}

int dlv_shp_pick(struct dlv_worker *w, struct dlv_job *j, uint64_t *retry_at_r, char *why,
		 size_t whylen)
{
	struct shp_rules *r = dlv_rules_get(w);
	const struct shp_pool *pool;
	const struct shp_source *src = NULL;
	char site[256], prov[64] = "";
	const char *pname = j->dj_msg->dm_pool != NULL && j->dj_msg->dm_pool[0] ?
			    j->dj_msg->dm_pool : "default";
	uint64_t retry = 0;
	int rc;

	*retry_at_r = 0;
	if (r == NULL) {
		j->dj_source = strdup(DLV_SOURCE_DEFAULT);
		if (j->dj_source != NULL)
			return SHP_SRC_OK;
		snprintf(why, whylen, "out of memory choosing a source");
		return SHP_SRC_NONE;
	}
	/* A pool gone in a reload: the default one. */
	pool = shp_rules_pool(r, pname);
	if (pool == NULL)
		pool = shp_rules_pool(r, "default");
	/* The provider, when the domain's site is known (the warm-up caps
	 * are per provider); the first message of a domain counts as none. */
	shp_state_site_get(w->w_shp->ds_state, j->dj_nexthop, dlv_unix_us(), site, sizeof(site),
			   prov, sizeof(prov));
	rc = pool == NULL ? SHP_SRC_NONE :
	     shp_src_pick(w->w_shp->ds_src, pool, prov[0] ? prov : NULL,
			  dlv_unix_us() / 1000000u, &src, &retry);
	if (rc == SHP_SRC_OK) {
		j->dj_source = strdup(src->ss_name);
		j->dj_provider = strdup(prov);
		j->dj_picked = j->dj_source != NULL && j->dj_provider != NULL;
		if (!j->dj_picked) {
			shp_src_unpicked(w->w_shp->ds_src, src, prov[0] ? prov : NULL,
					 dlv_unix_us() / 1000000u);
			rc = SHP_SRC_NONE;
			snprintf(why, whylen, "out of memory");
		}
	} else if (rc == SHP_SRC_WAIT) {
		*retry_at_r = retry * 1000000u;
		snprintf(why, whylen, "every source of pool %s reached its warm-up cap%s%s;"
			 " waiting for the next period", pool->sp_name, prov[0] ? " for " : "", prov);
	} else {
		snprintf(why, whylen, "no source of pool %s can be used (out of service)",
			 pool != NULL ? pool->sp_name : pname);
	}
	shp_rules_unref(&r);
	return rc;
}

void dlv_shp_job_release(struct dlv_worker *w, struct dlv_job *j, bool sent)
{
	struct shp_rules *r;
	const struct shp_source *src;
	uint64_t now = dlv_unix_us() / 1000000u;

	if (!j->dj_picked)
		return;
	j->dj_picked = false;
	r = dlv_rules_get(w);
	src = r != NULL ? shp_rules_source_by_name(r, j->dj_source) : NULL;
	if (src != NULL) {
		if (sent)
			shp_src_sent(w->w_shp->ds_src, src, j->dj_provider[0] ? j->dj_provider : NULL,
				     now);
		else
			shp_src_unpicked(w->w_shp->ds_src, src,
					 j->dj_provider[0] ? j->dj_provider : NULL, now);
	}
	if (r != NULL)
		shp_rules_unref(&r);
}

bool dlv_shp_job_provider(struct dlv_worker *w, struct dlv_dest *d, struct dlv_job *j,
			  uint64_t *not_before_r, char *why, size_t whylen)
{
	const char *prov = d->dd_shp.dp_provider;
	struct shp_rules *r;
	const struct shp_source *src;
	const struct shp_pool *pool;
	uint64_t now = dlv_unix_us() / 1000000u, retry;
	char *np;
	bool go = true;

	*not_before_r = 0;
	if (!j->dj_picked || !d->dd_shp.dp_known || strcmp(j->dj_provider, prov) == 0)
		return true;
	r = dlv_rules_get(w);
	src = r != NULL ? shp_rules_source_by_name(r, j->dj_source) : NULL;
	np = strdup(prov);
	if (src == NULL || np == NULL) {
		free(np);
		if (r != NULL)
			shp_rules_unref(&r);
		return true;	/* a source gone in a reload: as picked */
	}
	if (shp_src_repick(w->w_shp->ds_src, src, j->dj_provider, prov, now, &retry) == 0) {
		free(j->dj_provider);
		j->dj_provider = np;
	} else {
		const char *pname = j->dj_msg->dm_pool != NULL && j->dj_msg->dm_pool[0] ?
				    j->dj_msg->dm_pool : "default";

		free(np);
		j->dj_picked = false;	/* the place was given back */
		pool = shp_rules_pool(r, pname);
		/* A pool that spills picks again (the provider is known now);
		 * one that waits, waits for the source's next period. */
		if (pool == NULL || !pool->sp_spill)
			*not_before_r = retry * 1000000u;
		snprintf(why, whylen, "source %s reached its warm-up cap for %s; %s", src->ss_name,
			 prov, *not_before_r ? "waiting for the next period" : "picking again");
		go = false;
	}
	shp_rules_unref(&r);
	return go;
}

bool dlv_shp_source_gone(struct dlv_worker *w, const struct dlv_dest *d)
{
	struct shp_rules *r = dlv_rules_get(w);
	bool gone = r != NULL && d->dd_shp.dp_source != NULL &&
		    shp_rules_source_by_name(r, d->dd_shp.dp_source) == NULL;

	if (r != NULL)
		shp_rules_unref(&r);
	return gone;
}

void dlv_shp_source_failed(struct dlv_worker *w, struct dlv_dest *d, int err,
			   const char *reason)
{
	struct dlv_dest_shp *p = &d->dd_shp;
	const struct shp_source *src = p->dp_rules != NULL && p->dp_source != NULL ?
				       shp_rules_source_by_name(p->dp_rules, p->dp_source) : NULL;

	if (src != NULL && err != -EAFNOSUPPORT)
		shp_src_bind_failed(w->w_shp->ds_src, src, -err);
	/* Not the site's fault: no health step. What waits picks again
	 * (another source of its pool, or none) at its next try. */
	dlv_dest_fail_queued(w, d, DLV_R_DEFERRED, "4.4.0", reason, false, 0);
}
