/*
 * shp_state.c: the shaping state of the egress paths (shp_state.h):
 * actions with expiry, the ramp, site health with a single probe, learned
 * per-connection limits and the domain -> site cache. One mutex guards it
 * all; every call is a hash lookup and a few comparisons.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/shaping/shp_state_internal.h"

const char *const shp_slot_names[SHP_NSLOTS] = {
	"suspend", "max_connections", "message_rate", "bounce", "ramp",
};

static uint32_t shp_hash2(const char *a, const char *b)
{
	uint32_t h = 2166136261u;

	for (; *a; a++)
		h = (h ^ (unsigned char)*a) * 16777619u;
	h = (h ^ 0x1f) * 16777619u;
	for (; b != NULL && *b; b++)
		h = (h ^ (unsigned char)*b) * 16777619u;
	return h;
}

int shp_state_new(struct shp_state **st_r)
{
	struct shp_state *st = calloc(1, sizeof(*st));

	*st_r = NULL;
	if (st == NULL)
		return -ENOMEM;
	pthread_mutex_init(&st->st_lock, NULL);
	*st_r = st;
	return 0;
}

static void shp_pstate_free(struct shp_pstate *p)
{
	free(p->ps_site);
	free(p->ps_source);
	free(p);
}

static void shp_sitecache_free(struct shp_sitecache *c)
{
	free(c->sc_domain);
	free(c->sc_site);
	free(c->sc_provider);
	free(c);
}

void shp_state_clear(struct shp_state *st)
{
	for (unsigned b = 0; b < SHP_STATE_BUCKETS; b++) {
		struct shp_pstate *p, *pn;
		struct shp_sitecache *c, *cn;

		for (p = st->st_b[b]; p != NULL; p = pn) {
			pn = p->ps_next;
			shp_pstate_free(p);
		}
		for (c = st->st_sites[b]; c != NULL; c = cn) {
			cn = c->sc_next;
			shp_sitecache_free(c);
		}
		st->st_b[b] = NULL;
		st->st_sites[b] = NULL;
	}
}

void shp_state_free(struct shp_state **stp)
{
	struct shp_state *st = *stp;

	if (st == NULL)
		return;
	shp_state_clear(st);
	pthread_mutex_destroy(&st->st_lock);
	free(st);
	*stp = NULL;
}

struct shp_pstate *shp_pstate_get(struct shp_state *st, const char *site, const char *source,
				  bool create)
{
	const char *src = source != NULL ? source : "";
	struct shp_pstate **b = &st->st_b[shp_hash2(site, src) % SHP_STATE_BUCKETS], *p;

	for (p = *b; p != NULL; p = p->ps_next)
		if (strcmp(p->ps_site, site) == 0 && strcmp(p->ps_source, src) == 0)
			return p;
	if (!create)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->ps_site = strdup(site);
	p->ps_source = strdup(src);
	if (p->ps_site == NULL || p->ps_source == NULL) {
		shp_pstate_free(p);
		return NULL;
	}
	p->ps_next = *b;
	*b = p;
	return p;
}

static bool shp_active_on(const struct shp_active *a, uint64_t now)
{
	return a->pa_until != 0 && now < a->pa_until;
}

static void shp_suspended(struct shp_verdict *v, uint64_t until, const char *fmt,
			  const char *site, const char *rule)
{
	if (v->sv_gate == SHP_GATE_SUSPENDED && v->sv_until_us >= until)
		return;
	v->sv_gate = SHP_GATE_SUSPENDED;
	v->sv_until_us = until;
	snprintf(v->sv_reason, sizeof(v->sv_reason), fmt, site, rule);
}

void shp_state_check(struct shp_state *st, const char *site, const char *source,
		     uint64_t now, bool claim, struct shp_verdict *v)
{
	struct shp_pstate *s, *p;

	memset(v, 0, sizeof(*v));
	pthread_mutex_lock(&st->st_lock);
	s = shp_pstate_get(st, site, NULL, false);
	p = source != NULL && source[0] ? shp_pstate_get(st, site, source, false) : NULL;
	/* The path's bounce first, then the site's. */
	for (struct shp_pstate *e = p != NULL ? p : s; e != NULL; e = e == p ? s : NULL) {
		if (!shp_active_on(&e->ps_act[SHP_SLOT_BOUNCE], now))
			continue;
		v->sv_gate = SHP_GATE_BOUNCE;
		snprintf(v->sv_reason, sizeof(v->sv_reason),
			 "mail for site %s bounced by shaping rule %s", site,
			 e->ps_act[SHP_SLOT_BOUNCE].pa_rule);
		goto out;
	}
	if (p != NULL && shp_active_on(&p->ps_act[SHP_SLOT_SUSPEND], now))
		shp_suspended(v, p->ps_act[SHP_SLOT_SUSPEND].pa_until,
			      "site %s suspended for this source by shaping rule %s", site,
			      p->ps_act[SHP_SLOT_SUSPEND].pa_rule);
	if (s != NULL && shp_active_on(&s->ps_act[SHP_SLOT_SUSPEND], now))
		shp_suspended(v, s->ps_act[SHP_SLOT_SUSPEND].pa_until,
			      "site %s suspended by shaping rule %s", site,
			      s->ps_act[SHP_SLOT_SUSPEND].pa_rule);
	if (s != NULL && shp_active_on(&s->ps_act[SHP_SLOT_RAMP], now)) {
		struct shp_active *r = &s->ps_act[SHP_SLOT_RAMP];

		if (now < r->pa_pause_until)
			shp_suspended(v, r->pa_pause_until,
				      "site %s paused by shaping rule %s", site, r->pa_rule);
		else
			v->sv_max_conns = r->pa_allow;
	}
	if (s != NULL && s->ps_level > 0 && v->sv_gate == SHP_GATE_OPEN) {
		if (now < s->ps_health_until) {
			shp_suspended(v, s->ps_health_until,
				      "site %s suspended: every connection attempt failed%s",
				      site, "");
		} else if (s->ps_probe && now < s->ps_probe_at + SHP_PROBE_STALE_US) {
			shp_suspended(v, now + SHP_PROBE_WAIT_US,
				      "site %s suspended: a probe connection is under way%s",
				      site, "");
			v->sv_probe_wait = true;
		} else {
			if (claim) {
				s->ps_probe = true;
				s->ps_probe_at = now;
			}
			v->sv_gate = SHP_GATE_PROBE;
		}
	}
	if (p != NULL) {
		struct shp_active *m = &p->ps_act[SHP_SLOT_MAXCONN], *r = &p->ps_act[SHP_SLOT_RATE];

		if (shp_active_on(m, now) && (v->sv_max_conns == 0 || m->pa_value < v->sv_max_conns))
			v->sv_max_conns = m->pa_value;
		if (shp_active_on(r, now))
			v->sv_rate = r->pa_rate;
		v->sv_max_msgs = p->ps_max_msgs;
	}
out:
	pthread_mutex_unlock(&st->st_lock);
}

/* Whether rate a lets through fewer messages over time than b. */
static bool shp_rate_slower(const struct shp_rate *a, const struct shp_rate *b)
{
	if (a->sr_count == 0)
		return false;
	if (b->sr_count == 0)
		return true;
	/* a.count / a.period < b.count / b.period */
	return (unsigned __int128)a->sr_count * b->sr_period_us <
	       (unsigned __int128)b->sr_count * a->sr_period_us;
}

void shp_verdict_apply(const struct shp_verdict *v, struct shp_limits *l)
{
	if (v->sv_max_conns != 0 &&
	    (l->sl_max_connections == 0 || v->sv_max_conns < l->sl_max_connections))
		l->sl_max_connections = v->sv_max_conns;
	if (shp_rate_slower(&v->sv_rate, &l->sl_message_rate))
		l->sl_message_rate = v->sv_rate;
	if (v->sv_max_msgs != 0 && (l->sl_max_messages_per_connection == 0 ||
				    v->sv_max_msgs < l->sl_max_messages_per_connection))
		l->sl_max_messages_per_connection = v->sv_max_msgs;
}

uint64_t shp_state_fire(struct shp_state *st, const char *site, const char *source,
			const char *rule, const struct shp_action *a, uint64_t now)
{
	bool site_wide = a->sa_kind == SHP_ACT_SUSPEND_SITE || a->sa_kind == SHP_ACT_RAMP ||
			 source == NULL || source[0] == '\0';
	uint64_t until = now + a->sa_duration_us;
	struct shp_pstate *p;
	struct shp_active *s;
	int slot;

	switch (a->sa_kind) {
	case SHP_ACT_SUSPEND:
	case SHP_ACT_SUSPEND_SITE:
		slot = SHP_SLOT_SUSPEND;
		break;
	case SHP_ACT_MAX_CONNECTIONS:
		slot = SHP_SLOT_MAXCONN;
		break;
	case SHP_ACT_MESSAGE_RATE:
		slot = SHP_SLOT_RATE;
		break;
	case SHP_ACT_BOUNCE:
		slot = SHP_SLOT_BOUNCE;
		break;
	case SHP_ACT_RAMP:
		slot = SHP_SLOT_RAMP;
		/* The pause, then the ramp itself until the limit is reached
		 * (shp_state_delivered ends it); a day bounds a stalled one. */
		until = now + a->sa_duration_us + 86400ull * 1000000u;
		break;
	default:
		return now;
	}
	pthread_mutex_lock(&st->st_lock);
	p = shp_pstate_get(st, site, site_wide ? NULL : source, true);
	if (p == NULL) {
		pthread_mutex_unlock(&st->st_lock);
		return now;
	}
	s = &p->ps_act[slot];
	if (slot == SHP_SLOT_RAMP) {
		/* A new 4.7.28 during the ramp starts it over. */
		s->pa_pause_until = now + a->sa_duration_us;
		s->pa_allow = 1;
		s->pa_succ = 0;
		s->pa_value = a->sa_value ? a->sa_value : 1;
	} else if (slot == SHP_SLOT_MAXCONN) {
		s->pa_value = shp_active_on(s, now) && s->pa_value < a->sa_value ? s->pa_value :
			      a->sa_value ? a->sa_value : 1;
	} else if (slot == SHP_SLOT_RATE) {
		if (!shp_active_on(s, now) || shp_rate_slower(&a->sa_rate, &s->pa_rate))
			s->pa_rate = a->sa_rate;
	}
	if (until > s->pa_until || slot == SHP_SLOT_RAMP)
		s->pa_until = until;
	snprintf(s->pa_rule, sizeof(s->pa_rule), "%s", rule ? rule : "built-in");
	st->st_dirty = true;
	until = s->pa_until;
	pthread_mutex_unlock(&st->st_lock);
	return slot == SHP_SLOT_RAMP ? now + a->sa_duration_us : until;
}

void shp_state_delivered(struct shp_state *st, const char *site, uint32_t limit, uint64_t now)
{
	struct shp_pstate *s;
	struct shp_active *r;

	pthread_mutex_lock(&st->st_lock);
	s = shp_pstate_get(st, site, NULL, false);
	if (s != NULL && shp_active_on(r = &s->ps_act[SHP_SLOT_RAMP], now) &&
	    now >= r->pa_pause_until) {
		if (++r->pa_succ >= r->pa_value) {
			r->pa_succ = 0;
			r->pa_allow++;
			st->st_dirty = true;
		}
		if (limit == 0 || r->pa_allow >= limit) {
			memset(r, 0, sizeof(*r));	/* back to the configured limit */
			st->st_dirty = true;
		}
	}
	pthread_mutex_unlock(&st->st_lock);
}

void shp_state_conn_ok(struct shp_state *st, const char *site, uint64_t now)
{
	struct shp_pstate *s;

	(void)now;
	pthread_mutex_lock(&st->st_lock);
	s = shp_pstate_get(st, site, NULL, false);
	if (s != NULL && (s->ps_level != 0 || s->ps_probe)) {
		s->ps_level = 0;
		s->ps_health_until = 0;
		s->ps_probe = false;
		st->st_dirty = true;
	}
	pthread_mutex_unlock(&st->st_lock);
}

uint64_t shp_state_conn_failed(struct shp_state *st, const char *site, uint64_t now,
			       uint64_t (*backoff_us)(void *arg, unsigned level), void *arg)
{
	struct shp_pstate *s;
	uint64_t until = now;

	pthread_mutex_lock(&st->st_lock);
	s = shp_pstate_get(st, site, NULL, true);
	if (s != NULL) {
		/* A failed probe (or a round after the backoff ran out) is the
		 * next step; rounds that were already under way when the site
		 * was suspended do not count again. */
		if (s->ps_level == 0 || s->ps_probe || now >= s->ps_health_until) {
			s->ps_level++;
			s->ps_health_until = now + backoff_us(arg, s->ps_level);
		}
		s->ps_probe = false;
		until = s->ps_health_until;
		st->st_dirty = true;
	}
	pthread_mutex_unlock(&st->st_lock);
	return until;
}

bool shp_state_learn_max_msgs(struct shp_state *st, const char *site, const char *source,
			      uint32_t n, uint64_t now)
{
	struct shp_pstate *p;
	bool changed = false;

	(void)now;
	if (n == 0)
		return false;
	pthread_mutex_lock(&st->st_lock);
	p = shp_pstate_get(st, site, source != NULL ? source : "", true);
	if (p != NULL && (p->ps_max_msgs == 0 || n < p->ps_max_msgs)) {
		p->ps_max_msgs = n;
		changed = true;
		st->st_dirty = true;
	}
	pthread_mutex_unlock(&st->st_lock);
	return changed;
}

void shp_state_site_put(struct shp_state *st, const char *domain, const char *site,
			const char *provider, uint64_t expires)
{
	struct shp_sitecache **b = &st->st_sites[shp_hash2(domain, NULL) % SHP_STATE_BUCKETS], *c;
	char *s = strdup(site), *pv = strdup(provider ? provider : "");

	if (s == NULL || pv == NULL) {
		free(s);
		free(pv);
		return;
	}
	pthread_mutex_lock(&st->st_lock);
	for (c = *b; c != NULL; c = c->sc_next)
		if (strcmp(c->sc_domain, domain) == 0)
			break;
	if (c == NULL && (c = calloc(1, sizeof(*c))) != NULL &&
	    (c->sc_domain = strdup(domain)) == NULL) {
		free(c);
		c = NULL;
	} else if (c != NULL && c->sc_site == NULL) {
		c->sc_next = *b;
		*b = c;
	}
	if (c != NULL) {
		free(c->sc_site);
		free(c->sc_provider);
		c->sc_site = s;
		c->sc_provider = pv;
		c->sc_expires = expires;
		s = pv = NULL;
	}
	pthread_mutex_unlock(&st->st_lock);
	free(s);
	free(pv);
}

bool shp_state_site_get(struct shp_state *st, const char *domain, uint64_t now,
			char *site, size_t sitelen, char *provider, size_t provlen)
{
	struct shp_sitecache *c;
	bool ok = false;

	pthread_mutex_lock(&st->st_lock);
	for (c = st->st_sites[shp_hash2(domain, NULL) % SHP_STATE_BUCKETS]; c != NULL;
	     c = c->sc_next)
		if (strcmp(c->sc_domain, domain) == 0)
			break;
	if (c != NULL && now < c->sc_expires) {
		snprintf(site, sitelen, "%s", c->sc_site);
		snprintf(provider, provlen, "%s", c->sc_provider);
		ok = true;
	}
	pthread_mutex_unlock(&st->st_lock);
	return ok;
}

static bool shp_pstate_empty(struct shp_pstate *p, uint64_t now)
{
	bool empty;

	/* Health nobody probed for a long while: no mail waits for the
	 * site (it would have come back when the suspension ended). */
	if (p->ps_level > 0 && now >= p->ps_health_until + SHP_HEALTH_FORGET_US &&
	    !(p->ps_probe && now < p->ps_probe_at + SHP_PROBE_STALE_US)) {
		p->ps_level = 0;
		p->ps_health_until = 0;
		p->ps_probe = false;
	}
	empty = p->ps_level == 0 && !p->ps_probe && p->ps_max_msgs == 0;

	for (unsigned k = 0; k < SHP_NSLOTS; k++) {
		if (p->ps_act[k].pa_until != 0 && now >= p->ps_act[k].pa_until)
			memset(&p->ps_act[k], 0, sizeof(p->ps_act[k]));
		if (p->ps_act[k].pa_until != 0)
			empty = false;
	}
	return empty;
}

void shp_state_expire(struct shp_state *st, uint64_t now)
{
	pthread_mutex_lock(&st->st_lock);
	for (unsigned b = 0; b < SHP_STATE_BUCKETS; b++) {
		struct shp_pstate **pp = &st->st_b[b], *p;
		struct shp_sitecache **cp = &st->st_sites[b], *c;

		while ((p = *pp) != NULL) {
			if (shp_pstate_empty(p, now)) {
				*pp = p->ps_next;
				shp_pstate_free(p);
				st->st_dirty = true;
				continue;
			}
			pp = &p->ps_next;
		}
		while ((c = *cp) != NULL) {
			if (now >= c->sc_expires) {
				*cp = c->sc_next;
				shp_sitecache_free(c);
				continue;
			}
			cp = &c->sc_next;
		}
	}
	pthread_mutex_unlock(&st->st_lock);
}

void shp_state_foreach(struct shp_state *st, uint64_t now,
		       void (*fn)(void *arg, const struct shp_state_item *it), void *arg)
{
	pthread_mutex_lock(&st->st_lock);
	for (unsigned b = 0; b < SHP_STATE_BUCKETS; b++) {
		for (struct shp_pstate *p = st->st_b[b]; p != NULL; p = p->ps_next) {
			struct shp_state_item it = { p->ps_site, p->ps_source, "", "", 0, 0, "" };
			char rate[64];

			for (unsigned k = 0; k < SHP_NSLOTS; k++) {
				const struct shp_active *a = &p->ps_act[k];

				if (!shp_active_on(a, now))
					continue;
				it.sti_kind = k == SHP_SLOT_SUSPEND && p->ps_source[0] == '\0' ?
					     "suspend_site" : shp_slot_names[k];
				it.sti_rule = a->pa_rule;
				it.sti_until_us = k == SHP_SLOT_RAMP && now < a->pa_pause_until ?
						 a->pa_pause_until : a->pa_until;
				it.sti_value = k == SHP_SLOT_RAMP ? a->pa_allow : a->pa_value;
				it.sti_text = "";
				if (k == SHP_SLOT_RATE) {
					shp_rate_format(&a->pa_rate, rate, sizeof(rate));
					it.sti_text = rate;
				} else if (k == SHP_SLOT_RAMP) {
					it.sti_text = now < a->pa_pause_until ? "paused" : "ramping";
				}
				fn(arg, &it);
			}
			if (p->ps_level > 0) {
				it.sti_kind = "health";
				it.sti_rule = "";
				it.sti_until_us = p->ps_health_until;
				it.sti_value = p->ps_level;
				it.sti_text = p->ps_probe ? "probing" :
					     now < p->ps_health_until ? "suspended" : "probe due";
				fn(arg, &it);
			}
			if (p->ps_max_msgs > 0) {
				it.sti_kind = "learned_max_messages";
				it.sti_rule = "";
				it.sti_until_us = 0;
				it.sti_value = p->ps_max_msgs;
				it.sti_text = "";
				fn(arg, &it);
			}
		}
	}
	pthread_mutex_unlock(&st->st_lock);
}

bool shp_state_take_dirty(struct shp_state *st)
{
	bool d;

	pthread_mutex_lock(&st->st_lock);
	d = st->st_dirty;
	st->st_dirty = false;
	pthread_mutex_unlock(&st->st_lock);
	return d;
}
