/*
 * admin_shaping.c: suspend, resume, the suspensions, the shaping state
 * in force and the live per-site view (admin_shaping.h). Handlers run on
 * the admin listener's threads; delivery's functions lock inside.
 */
#include "core/admin/admin_shaping.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/delivery/delivery.h"
#include "core/shaping/shp_rate.h"

#define ADMIN_TOP_MAX 1000u
#define ADMIN_TOP_DEFAULT 50u
#define ADMIN_SHAPING_SITES_MAX 1000u

json_t *admin_json_time(uint64_t us)
{
	time_t t = (time_t)(us / 1000000u);
	struct tm tm;
	char buf[40];

	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}

static uint64_t admin_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* The one selector of a suspend or resume body: its kind and name, or a
 * 400 in rep. */
static bool admin_selector(const struct admin_req *req, struct admin_reply *rep,
			   enum shp_susp_kind *kind_r, const char **name_r)
{
	const char *key;
	json_t *v;
	int found = 0;

	if (req->ar_json == NULL) {
		admin_reply_error(rep, MHD_HTTP_BAD_REQUEST, "bad request",
				  "a JSON object with one of site, domain, source, sender_domain");
		return false;
	}
	json_object_foreach(req->ar_json, key, v) {
		int k = shp_susp_kind_parse(key);

		if (k < 0) {
			if (strcmp(key, "duration") == 0 || strcmp(key, "reason") == 0)
				continue;
			admin_reply_error(rep, MHD_HTTP_BAD_REQUEST, "bad request",
					  "unknown field \"%s\"", key);
			return false;
		}
		if (!json_is_string(v) || json_string_length(v) == 0) {
			admin_reply_error(rep, MHD_HTTP_BAD_REQUEST, "bad request",
					  "%s: a non-empty string", key);
			return false;
		}
		found++;
		*kind_r = (enum shp_susp_kind)k;
		*name_r = json_string_value(v);
	}
	if (found != 1) {
		admin_reply_error(rep, MHD_HTTP_BAD_REQUEST, "bad request",
				  "exactly one of site, domain, source, sender_domain");
		return false;
	}
	return true;
}

static json_t *admin_susp_json(const struct shp_susp_item *it, uint64_t now)
{
	return json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:I}",
			 "selector", shp_susp_kind_name(it->si_kind),
			 "name", admin_json_text(it->si_name),
			 "who", admin_json_text(it->si_who),
			 "reason", admin_json_text(it->si_reason),
			 "set", admin_json_time(it->si_set_us),
			 "until", admin_json_time(it->si_until_us),
			 "remaining_s", (json_int_t)(it->si_until_us > now ?
						     (it->si_until_us - now) / 1000000u : 0));
}

struct admin_susp_find {
	enum shp_susp_kind sf_kind;
	const char *sf_name;
	uint64_t sf_now;
	json_t *sf_list;		/* every one, or */
	json_t *sf_one;			/* the one of (kind, name) */
};

static void admin_susp_collect(void *arg, const struct shp_susp_item *it)
{
	struct admin_susp_find *f = arg;

	if (f->sf_list != NULL)
		json_array_append_new(f->sf_list, admin_susp_json(it, f->sf_now));
	else if (it->si_kind == f->sf_kind && strcasecmp(it->si_name, f->sf_name) == 0)
		f->sf_one = admin_susp_json(it, f->sf_now);
}

/* The path is the route's own, and delivery runs; else the error. */
static bool admin_dlv(void *ctx, const struct admin_req *req, struct admin_reply *rep)
{
	if (req->ar_rest[0] != '\0' && req->ar_rest[1] != '\0') {
		admin_reply_error(rep, MHD_HTTP_NOT_FOUND, "not found", "%s", req->ar_path);
		return false;
	}
	if (ctx != NULL)
		return true;
	admin_reply_error(rep, MHD_HTTP_SERVICE_UNAVAILABLE, "delivery is off",
			  "delivery = no in ringmta.conf");
	return false;
}

static void admin_suspend(void *ctx, const struct admin_req *req, struct admin_reply *rep)
{
	struct delivery *dlv = ctx;
	struct admin_susp_find f = { 0, NULL, admin_now_us(), NULL, NULL };
	const char *dur, *reason = NULL;
	json_t *r;
	uint64_t us;
	int rc;

	if (!admin_dlv(ctx, req, rep) || !admin_selector(req, rep, &f.sf_kind, &f.sf_name))
		return;
	dur = json_string_value(json_object_get(req->ar_json, "duration"));
	if (dur == NULL || shp_susp_duration_parse(dur, &us) < 0) {
		admin_reply_error(rep, MHD_HTTP_BAD_REQUEST, "bad request",
				  "duration: a count and a unit, e.g. \"90s\", \"30m\", \"2h\","
				  " \"7d\" (at most 366d)");
		return;
	}
	r = json_object_get(req->ar_json, "reason");
	if (r != NULL && !json_is_string(r)) {
		admin_reply_error(rep, MHD_HTTP_BAD_REQUEST, "bad request", "reason: a string");
		return;
	}
	reason = r != NULL ? json_string_value(r) : NULL;
	rc = delivery_suspend(dlv, f.sf_kind, f.sf_name, us, "admin", reason);
	if (rc == -EINVAL) {
		admin_reply_error(rep, MHD_HTTP_BAD_REQUEST, "bad request",
				  "%s: not a name (1 to %u characters, no blanks)",
				  shp_susp_kind_name(f.sf_kind), SHP_SUSP_NAME_MAX);
		return;
	}
	if (rc < 0) {
		admin_reply_error(rep, rc == -ENOSPC ? MHD_HTTP_CONFLICT :
				  MHD_HTTP_INTERNAL_SERVER_ERROR, "not suspended", "%s",
				  rc == -ENOSPC ? "too many suspensions" : strerror(-rc));
		return;
	}
	f.sf_now = admin_now_us();
	delivery_suspensions_foreach(dlv, admin_susp_collect, &f);
	rep->json = json_pack("{s:o}", "suspended", f.sf_one != NULL ? f.sf_one : json_null());
}

static void admin_resume(void *ctx, const struct admin_req *req, struct admin_reply *rep)
{
	struct delivery *dlv = ctx;
	enum shp_susp_kind kind;
	const char *name;
	unsigned n = 0;
	int rc;

	if (!admin_dlv(ctx, req, rep) || !admin_selector(req, rep, &kind, &name))
		return;
	if (json_object_get(req->ar_json, "duration") != NULL) {
		admin_reply_error(rep, MHD_HTTP_BAD_REQUEST, "bad request",
				  "resume takes no duration");
		return;
	}
	rc = delivery_resume(dlv, kind, name, &n);
	if (rc == -ENOENT) {
		admin_reply_error(rep, MHD_HTTP_NOT_FOUND, "not suspended", "%s %s",
				  shp_susp_kind_name(kind), name);
		return;
	}
	if (rc < 0) {
		admin_reply_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "not resumed", "%s",
				  strerror(-rc));
		return;
	}
	rep->json = json_pack("{s:{s:s, s:o}, s:I}", "resumed", "selector",
			      shp_susp_kind_name(kind), "name", admin_json_text(name),
			      "messages_due_now", (json_int_t)n);
}

static void admin_suspensions(void *ctx, const struct admin_req *req, struct admin_reply *rep)
{
	struct admin_susp_find f = { 0, NULL, admin_now_us(), json_array(), NULL };

	if (!admin_dlv(ctx, req, rep)) {
		json_decref(f.sf_list);
		return;
	}
	delivery_suspensions_foreach(ctx, admin_susp_collect, &f);
	rep->json = json_pack("{s:o}", "suspensions", f.sf_list);
}

/* A path's limits as JSON (0 = no limit). */
static json_t *admin_limits_json(const struct shp_limits *l)
{
	char crate[64], mrate[64];

	shp_rate_format(&l->sl_connection_rate, crate, sizeof(crate));
	shp_rate_format(&l->sl_message_rate, mrate, sizeof(mrate));
	return json_pack("{s:I, s:s, s:s, s:I, s:I, s:I, s:I}",
			 "max_connections", (json_int_t)l->sl_max_connections,
			 "connection_rate", l->sl_connection_rate.sr_count ? crate : "",
			 "message_rate", l->sl_message_rate.sr_count ? mrate : "",
			 "max_messages_per_connection",
			 (json_int_t)l->sl_max_messages_per_connection,
			 "max_recipients", (json_int_t)l->sl_max_recipients,
			 "connect_timeout_ms", (json_int_t)l->sl_connect_timeout_ms,
			 "idle_timeout_ms", (json_int_t)l->sl_idle_timeout_ms);
}

struct admin_state {
	json_t *as_sites;		/* site -> {actions, health, learned} */
	json_t *as_susp;		/* the operator's, any selector */
	unsigned as_nsites;
	bool as_truncated;
	uint64_t as_now;
};

/* The site's object in the answer, made on first sight (NULL past the
 * bound). */
static json_t *admin_state_site(struct admin_state *as, const char *site)
{
	json_t *s = json_object_get(as->as_sites, site);

	if (s != NULL)
		return s;
	if (as->as_nsites >= ADMIN_SHAPING_SITES_MAX) {
		as->as_truncated = true;
		return NULL;
	}
	s = json_pack("{s:o, s:[], s:n, s:[]}", "site", admin_json_text(site), "actions",
		      "health", "learned_max_messages");
	json_object_set_new(as->as_sites, site, s);
	as->as_nsites++;
	return s;
}

static void admin_state_item(void *arg, const struct delivery_shp_item *it)
{
	struct admin_state *as = arg;
	json_t *s;

	if (strcmp(it->di_kind, "admin_suspend") == 0) {
		json_array_append_new(as->as_susp, json_pack(
			"{s:s, s:o, s:o, s:o, s:o, s:o}", "selector", it->di_selector,
			"name", admin_json_text(it->di_name), "who", admin_json_text(it->di_who),
			"reason", admin_json_text(it->di_reason),
			"set", admin_json_time(it->di_set_us),
			"until", admin_json_time(it->di_until_us)));
		return;
	}
	if ((s = admin_state_site(as, it->di_name)) == NULL)
		return;
	if (strcmp(it->di_kind, "health") == 0) {
		json_object_set_new(s, "health", json_pack(
			"{s:I, s:o, s:s}", "level", (json_int_t)it->di_value,
			"until", admin_json_time(it->di_until_us), "state", it->di_text));
	} else if (strcmp(it->di_kind, "learned_max_messages") == 0) {
		json_array_append_new(json_object_get(s, "learned_max_messages"), json_pack(
			"{s:o, s:I}", "source", admin_json_text(it->di_source),
			"max_messages_per_connection", (json_int_t)it->di_value));
	} else {
		json_array_append_new(json_object_get(s, "actions"), json_pack(
			"{s:s, s:o, s:I, s:o, s:o, s:o}", "kind", it->di_kind,
			"source", admin_json_text(it->di_source), "value", (json_int_t)it->di_value,
			"text", admin_json_text(it->di_text), "who", admin_json_text(it->di_who),
			"until", admin_json_time(it->di_until_us)));
	}
}

static void admin_shaping(void *ctx, const struct admin_req *req, struct admin_reply *rep)
{
	struct delivery *dlv = ctx;
	struct admin_state as = { json_object(), json_array(), 0, false, admin_now_us() };
	struct delivery_top_site *top;
	json_t *sites = json_array(), *s;
	const char *name;
	unsigned n;

	if (!admin_dlv(ctx, req, rep) ||
	    (top = calloc(ADMIN_TOP_MAX, sizeof(*top))) == NULL) {
		if (rep->status == 0)
			admin_reply_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", NULL);
		json_decref(as.as_sites);
		json_decref(as.as_susp);
		json_decref(sites);
		return;
	}
	delivery_shaping_state(dlv, admin_state_item, &as);
	/* The sites mail goes to now, with nothing in force, show too. */
	n = delivery_top(dlv, top, ADMIN_TOP_MAX, NULL);
	for (unsigned i = 0; i < n; i++)
		if ((s = admin_state_site(&as, top[i].dt_site.ts_site)) != NULL &&
		    top[i].dt_site.ts_provider[0])
			json_object_set_new(s, "provider", admin_json_text(top[i].dt_site.ts_provider));
	json_object_foreach(as.as_sites, name, s) {
		struct shp_limits l;
		const char *prov = json_string_value(json_object_get(s, "provider"));

		if (delivery_site_limits(dlv, name, prov, &l) == 0)
			json_object_set_new(s, "limits", admin_limits_json(&l));
		json_array_append(sites, s);
	}
	free(top);
	json_decref(as.as_sites);
	rep->json = json_pack("{s:o, s:o, s:b}", "sites", sites, "suspensions", as.as_susp,
			      "truncated", as.as_truncated);
}

static void admin_top(void *ctx, const struct admin_req *req, struct admin_reply *rep)
{
	struct delivery *dlv = ctx;
	const char *lim = admin_req_arg(req, "limit");
	unsigned long max = ADMIN_TOP_DEFAULT;
	struct delivery_top_site *top;
	unsigned n, total = 0;
	json_t *sites;
	char *end;

	if (!admin_dlv(ctx, req, rep))
		return;
	if (lim != NULL) {
		max = strtoul(lim, &end, 10);
		if (lim[0] < '1' || lim[0] > '9' || *end != '\0' || max > ADMIN_TOP_MAX) {
			admin_reply_error(rep, MHD_HTTP_BAD_REQUEST, "bad request",
					  "limit: 1 to %u", ADMIN_TOP_MAX);
			return;
		}
	}
	if ((top = calloc(max, sizeof(*top))) == NULL) {
		admin_reply_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", NULL);
		return;
	}
	n = delivery_top(dlv, top, (unsigned)max, &total);
	sites = json_array();
	for (unsigned i = 0; i < n; i++) {
		const struct shp_top_site *t = &top[i].dt_site;
		json_t *o = json_pack("{s:o, s:o, s:I, s:I, s:I, s:I, s:f, s:I, s:b}",
				      "site", admin_json_text(t->ts_site),
				      "provider", admin_json_text(t->ts_provider),
				      "ready", (json_int_t)t->ts_ready,
				      "connections", (json_int_t)t->ts_conns,
				      "in_flight", (json_int_t)t->ts_busy,
				      "delivered", (json_int_t)t->ts_delivered,
				      "rate_per_s", (double)t->ts_delivered / SHP_TOP_WINDOW_S,
				      "deferred", (json_int_t)t->ts_deferred,
				      "suspended", top[i].dt_suspended);

		if (top[i].dt_suspended) {
			json_object_set_new(o, "suspended_until", admin_json_time(top[i].dt_until_us));
			json_object_set_new(o, "why", admin_json_text(top[i].dt_why));
		}
		json_array_append_new(sites, o);
	}
	free(top);
	rep->json = json_pack("{s:o, s:I, s:I}", "sites", sites, "total_sites", (json_int_t)total,
			      "window_s", (json_int_t)SHP_TOP_WINDOW_S);
}

int admin_shaping_register(struct admin *a, struct delivery *dlv)
{
	if (admin_route_add(a, "POST", "/api/v1/suspend", ADMIN_ROUTE_JSON, 64 * 1024,
			    admin_suspend, dlv) < 0 ||
	    admin_route_add(a, "POST", "/api/v1/resume", ADMIN_ROUTE_JSON, 64 * 1024,
			    admin_resume, dlv) < 0 ||
	    admin_route_add(a, "GET", "/api/v1/suspensions", 0, 0, admin_suspensions, dlv) < 0 ||
	    admin_route_add(a, "GET", "/api/v1/shaping", 0, 0, admin_shaping, dlv) < 0 ||
	    admin_route_add(a, "GET", "/api/v1/top", 0, 0, admin_top, dlv) < 0)
		return -1;
	return 0;
}
