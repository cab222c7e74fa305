/*
 * shp_rules_pool.c: sources (outbound addresses with an EHLO name, per
 * source limits and a warm-up schedule), pools of weighted sources, the
 * choice of a pool per message, and warm-up caps.
 *
 * Names are resolved once every file is read (a pool may name a source a
 * later file defines). Without "sources:" there is one source "default"
 * bound to no address (the delivery code then binds smtp_bind_address, or
 * nothing); without a pool named "default" there is one holding every
 * source with weight 1 that waits when capped.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/shaping/shp_rules_internal.h"

static struct shp_src_def *shp_src_find(const struct shp_rules *r, const char *name)
{
	for (unsigned i = 0; i < r->r_nsrc; i++)
		if (strcmp(r->r_src[i]->sd_pub.ss_name, name) == 0)
			return r->r_src[i];
	return NULL;
}

static struct shp_pool_def *shp_pool_find(const struct shp_rules *r, const char *name)
{
	for (unsigned i = 0; i < r->r_npools; i++)
		if (strcmp(r->r_pools[i]->pd_pub.sp_name, name) == 0)
			return r->r_pools[i];
	return NULL;
}

static void shp_ld_address(struct shp_ld *ld, const struct yaml_node *v, struct shp_src_def *sd)
{
	struct shp_source *s = &sd->sd_pub;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&s->ss_addr;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&s->ss_addr;

	sd->sd_addr_node = v;	/* given, even if wrong: not "missing" */
	if (!shp_ld_want(ld, v, YAML_SCALAR, "address"))
		return;
	memset(&s->ss_addr, 0, sizeof(s->ss_addr));
	if (inet_pton(AF_INET, v->yn_str, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		s->ss_addrlen = sizeof(*a4);
	} else if (inet_pton(AF_INET6, v->yn_str, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		s->ss_addrlen = sizeof(*a6);
	} else {
		shp_ld_err(ld, v, "address: \"%s\" is not an IPv4 or IPv6 address", v->yn_str);
		s->ss_addrlen = 0;
	}
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static int64_t shp_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static bool shp_ld_date(struct shp_ld *ld, const struct yaml_node *v, uint64_t *s_r)
{
	static const unsigned mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	unsigned y, m, d;
	char tail;

	if (!shp_ld_want(ld, v, YAML_SCALAR, "start"))
		return false;
	if (sscanf(v->yn_str, "%4u-%2u-%2u%c", &y, &m, &d, &tail) != 3 || v->yn_len != 10 ||
	    y < 1970 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1] ||
	    (m == 2 && d == 29 && (y % 4 != 0 || (y % 100 == 0 && y % 400 != 0)))) {
		shp_ld_err(ld, v, "start: expected a date YYYY-MM-DD, found \"%s\"", v->yn_str);
		return false;
	}
	*s_r = (uint64_t)shp_days_from_civil(y, m, d) * 86400;
	return true;
}

static void shp_warmup_free(struct shp_warmup *w)
{
	if (w == NULL)
		return;
	for (unsigned i = 0; i < w->wu_n; i++)
		free(w->wu_v[i].ws_caps);
	free(w->wu_v);
	free(w);
}

static struct shp_warmup *shp_ld_warmup(struct shp_ld *ld, const struct yaml_node *m)
{
	const struct yaml_node *sched = NULL;
	struct shp_warmup *w;
	bool have_start = false;

	if (!shp_ld_want(ld, m, YAML_MAP, "warmup"))
		return NULL;
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return NULL;
	w->wu_period_s = 86400;
	for (unsigned i = 0; i < m->yn_n; i++) {
		const struct yaml_node *k = m->yn_keys[i], *v = m->yn_items[i];

		if (strcmp(k->yn_str, "start") == 0) {
			have_start = shp_ld_date(ld, v, &w->wu_start_s);
		} else if (strcmp(k->yn_str, "period") == 0) {
			if (v->yn_kind == YAML_SCALAR && strcmp(v->yn_str, "day") == 0)
				w->wu_period_s = 86400;
			else if (v->yn_kind == YAML_SCALAR && strcmp(v->yn_str, "hour") == 0)
				w->wu_period_s = 3600;
			else
				shp_ld_err(ld, v, "period: expected day or hour");
		} else if (strcmp(k->yn_str, "schedule") == 0) {
			if (shp_ld_want(ld, v, YAML_MAP, "schedule"))
				sched = v;
		} else {
			shp_ld_err(ld, k, "unknown key \"%s\" in warmup (expected start, period,"
				   " schedule)", k->yn_str);
		}
	}
	if (!have_start && yaml_map_get(m, "start") == NULL)
		shp_ld_err(ld, m, "warmup: start (YYYY-MM-DD) is missing");
	if (sched == NULL) {
		if (yaml_map_get(m, "schedule") == NULL)
			shp_ld_err(ld, m, "warmup: schedule is missing");
		return w;
	}
	w->wu_v = calloc(sched->yn_n, sizeof(*w->wu_v));
	if (w->wu_v == NULL)
		return w;
	for (unsigned i = 0; i < sched->yn_n; i++) {
		const struct yaml_node *k = sched->yn_keys[i], *v = sched->yn_items[i];
		struct shp_wsched *ws = &w->wu_v[w->wu_n];
		char err[256];

		if (!shp_ld_want(ld, v, YAML_SEQ, k->yn_str) || v->yn_n == 0) {
			if (v->yn_kind == YAML_SEQ || (v->yn_kind == YAML_SCALAR && v->yn_len == 0))
				shp_ld_err(ld, v, "schedule %s: a list of caps ([50, 100, 500])",
					   k->yn_str);
			continue;
		}
		ws->ws_provider = shp_ld_str(ld, k->yn_str);
		if (ws->ws_provider == NULL)
			continue;
		ws->ws_node = k;
		ws->ws_caps = calloc(v->yn_n, sizeof(*ws->ws_caps));
		if (ws->ws_caps == NULL)
			continue;
		for (unsigned j = 0; j < v->yn_n; j++)
			if (yaml_scalar_u64(v->yn_items[j], &ws->ws_caps[j], err, sizeof(err)) < 0)
				shp_ld_err(ld, v->yn_items[j], "schedule %s: a cap is a whole number",
					   k->yn_str);
		ws->ws_n = v->yn_n;
		w->wu_n++;
	}
	return w;
}

/* An EHLO argument (RFC 5321 4.1.1.1): a domain, or an address literal
 * "[192.0.2.1]" / "[IPv6:2001:db8::1]". It goes on the wire as it is, so
 * nothing else (no space, no CR or LF) gets through. */
static bool shp_ehlo_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 255)
		return false;
	if (s[0] == '[')
		return n > 2 && s[n - 1] == ']' &&
		       strspn(s + 1, "0123456789abcdefABCDEF:.IPv6") == n - 2;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._") == n &&
	       s[0] != '.' && s[0] != '-';
}

static struct shp_src_def *shp_src_new(struct shp_ld *ld, const char *name,
				       const struct yaml_node *node)
{
	struct shp_rules *r = ld->ld_r;
	struct shp_src_def *sd;

	if (name == NULL)
		return NULL;
	sd = shp_ld_append(ld, &r->r_src, &r->r_nsrc, &r->r_capsrc, sizeof(*sd));
	if (sd == NULL)
		return NULL;
	sd->sd_pub.ss_name = name;
	sd->sd_node = node;
	return sd;
}

void shp_ld_sources(struct shp_ld *ld, const struct yaml_node *map)
{
	for (unsigned i = 0; i < map->yn_n; i++) {
		const struct yaml_node *key = map->yn_keys[i], *m = map->yn_items[i];
		struct shp_src_def *sd = shp_src_find(ld->ld_r, key->yn_str);
		struct shp_block b = { 0 };

		if (!shp_ld_name(ld, key, "source") || !shp_ld_want(ld, m, YAML_MAP, key->yn_str))
			continue;
		if (sd == NULL && (sd = shp_src_new(ld, shp_ld_str(ld, key->yn_str), key)) == NULL)
			return;
		for (unsigned j = 0; j < m->yn_n; j++) {
			const struct yaml_node *k = m->yn_keys[j], *v = m->yn_items[j];

			if (shp_block_field(ld, k, v, &b))
				continue;
			if (strcmp(k->yn_str, "address") == 0) {
				shp_ld_address(ld, v, sd);
			} else if (strcmp(k->yn_str, "ehlo") == 0) {
				if (!shp_ld_want(ld, v, YAML_SCALAR, "ehlo"))
					continue;
				if (!shp_ehlo_ok(v->yn_str))
					shp_ld_err(ld, v, "ehlo: \"%s\" is not a host name or an"
						   " address literal", v->yn_str);
				else
					sd->sd_pub.ss_ehlo = shp_ld_str(ld, v->yn_str);
			} else if (strcmp(k->yn_str, "warmup") == 0) {
				/* A later file's schedule replaces the earlier one. */
				shp_warmup_free(sd->sd_warmup);
				sd->sd_warmup = shp_ld_warmup(ld, v);
				sd->sd_pub.ss_warmup = sd->sd_warmup;
			} else {
				shp_ld_err(ld, k, "unknown key \"%s\" in source %s (expected address,"
					   " ehlo, warmup or a limits field)", k->yn_str,
					   key->yn_str);
			}
		}
		shp_block_merge(&sd->sd_limits, &b);
	}
}

static struct shp_pool_def *shp_pool_new(struct shp_ld *ld, const char *name,
					 const struct yaml_node *node)
{
	struct shp_rules *r = ld->ld_r;
	struct shp_pool_def *pd;

	if (name == NULL)
		return NULL;
	pd = shp_ld_append(ld, &r->r_pools, &r->r_npools, &r->r_cappools, sizeof(*pd));
	if (pd == NULL)
		return NULL;
	pd->pd_pub.sp_name = name;
	pd->pd_node = node;
	return pd;
}

void shp_ld_pools(struct shp_ld *ld, const struct yaml_node *map)
{
	for (unsigned i = 0; i < map->yn_n; i++) {
		const struct yaml_node *key = map->yn_keys[i], *m = map->yn_items[i];
		struct shp_pool_def *pd = shp_pool_find(ld->ld_r, key->yn_str);

		if (!shp_ld_name(ld, key, "pool") || !shp_ld_want(ld, m, YAML_MAP, key->yn_str))
			continue;
		if (pd == NULL && (pd = shp_pool_new(ld, shp_ld_str(ld, key->yn_str), key)) == NULL)
			return;
		for (unsigned j = 0; j < m->yn_n; j++) {
			const struct yaml_node *k = m->yn_keys[j], *v = m->yn_items[j];

			if (strcmp(k->yn_str, "sources") == 0) {
				if (shp_ld_want(ld, v, YAML_SEQ, "sources"))
					pd->pd_sources = v;
			} else if (strcmp(k->yn_str, "when_capped") == 0) {
				if (v->yn_kind == YAML_SCALAR && strcmp(v->yn_str, "wait") == 0)
					pd->pd_pub.sp_spill = false;
				else if (v->yn_kind == YAML_SCALAR && strcmp(v->yn_str, "spill") == 0)
					pd->pd_pub.sp_spill = true;
				else
					shp_ld_err(ld, v, "when_capped: expected wait or spill");
			} else {
				shp_ld_err(ld, k, "unknown key \"%s\" in pool %s (expected sources,"
					   " when_capped)", k->yn_str, key->yn_str);
			}
		}
	}
}

/* "ip:port" or "[ipv6]:port" in the form the inbound side names its
 * listeners (inet_ntop, as dkim_table_listener_name), so that "[::0:1]:25"
 * in a rules file finds the listener "[::1]:25". -1 when it is not one. */
static int shp_listener_canon(const char *in, char *out, size_t len)
{
	char host[INET6_ADDRSTRLEN + 2], a[INET6_ADDRSTRLEN];
	const char *colon = strrchr(in, ':'), *h = host;
	unsigned char bin[16];
	unsigned long port;
	char *end;
	size_t hl;
	int v6;

	if (colon == NULL || (hl = (size_t)(colon - in)) == 0 || hl >= sizeof(host))
		return -1;
	memcpy(host, in, hl);
	host[hl] = '\0';
	v6 = host[0] == '[';
	if (v6) {
		if (hl < 3 || host[hl - 1] != ']')
			return -1;
		host[hl - 1] = '\0';
		h = host + 1;
	}
	port = strtoul(colon + 1, &end, 10);
	if (colon[1] < '0' || colon[1] > '9' || *end != '\0' || port == 0 || port > 65535 ||
	    inet_pton(v6 ? AF_INET6 : AF_INET, h, bin) != 1 ||
	    inet_ntop(v6 ? AF_INET6 : AF_INET, bin, a, sizeof(a)) == NULL)
		return -1;
	snprintf(out, len, v6 ? "[%s]:%lu" : "%s:%lu", a, port);
	return 0;
}

void shp_ld_selection(struct shp_ld *ld, const struct yaml_node *list)
{
	static const char *const kinds[] = { NULL, "user", "listener", "sender_domain" };
	struct shp_rules *r = ld->ld_r;
	struct shp_select *sel;
	unsigned n = 0;

	/* A later file's list replaces the earlier one. */
	free(r->r_sel);
	r->r_sel = NULL;
	r->r_nsel = 0;
	if (list->yn_kind != YAML_SEQ || list->yn_n == 0)
		return;
	sel = calloc(list->yn_n, sizeof(*sel));
	if (sel == NULL)
		return;
	for (unsigned i = 0; i < list->yn_n; i++) {
		const struct yaml_node *m = list->yn_items[i];
		struct shp_select *s = &sel[n];
		unsigned nerr = ld->ld_nerr;

		if (!shp_ld_want(ld, m, YAML_MAP, "pool_selection entry"))
			continue;
		s->se_node = m;
		for (unsigned j = 0; j < m->yn_n; j++) {
			const struct yaml_node *k = m->yn_keys[j], *v = m->yn_items[j];
			unsigned kind;

			for (kind = 1; kind < 4; kind++)
				if (strcmp(k->yn_str, kinds[kind]) == 0)
					break;
			if (strcmp(k->yn_str, "pool") == 0) {
				if (shp_ld_want(ld, v, YAML_SCALAR, "pool"))
					s->se_pool_name = v->yn_str;
			} else if (kind == 4) {
				shp_ld_err(ld, k, "unknown key \"%s\" in pool_selection (expected user,"
					   " listener or sender_domain, and pool)", k->yn_str);
			} else if (s->se_kind != 0) {
				shp_ld_err(ld, k, "pool_selection: one of user, listener,"
					   " sender_domain per entry");
			} else if (shp_ld_want(ld, v, YAML_SCALAR, k->yn_str)) {
				char canon[INET6_ADDRSTRLEN + 16];
				const char *val = v->yn_str;

				if (kind == SHP_SEL_LISTENER) {
					if (shp_listener_canon(val, canon, sizeof(canon)) < 0) {
						shp_ld_err(ld, v, "listener: \"%s\" is not ip:port or"
							   " [ipv6]:port", val);
						continue;
					}
					val = canon;
				}
				s->se_kind = (uint8_t)kind;
				s->se_value = shp_ld_str(ld, val);
			}
		}
		if (s->se_kind == 0 || s->se_value == NULL || s->se_pool_name == NULL) {
			if (ld->ld_nerr == nerr)	/* else said already */
				shp_ld_err(ld, m, "pool_selection: an entry needs user, listener"
					   " or sender_domain, and pool");
			memset(s, 0, sizeof(*s));
			continue;
		}
		n++;
	}
	r->r_sel = sel;
	r->r_nsel = n;
}

static void shp_pool_set(struct shp_pool_def *pd, unsigned n)
{
	pd->pd_pub.sp_n = n;
	pd->pd_pub.sp_sources = pd->pd_srcs;
	pd->pd_pub.sp_weights = pd->pd_weights;
}

static void shp_ld_pool_members(struct shp_ld *ld, struct shp_pool_def *pd)
{
	const struct yaml_node *list = pd->pd_sources;
	struct shp_rules *r = ld->ld_r;
	unsigned n = 0;

	pd->pd_srcs = calloc(list->yn_n ? list->yn_n : 1, sizeof(*pd->pd_srcs));
	pd->pd_weights = calloc(list->yn_n ? list->yn_n : 1, sizeof(*pd->pd_weights));
	if (pd->pd_srcs == NULL || pd->pd_weights == NULL) {
		shp_ld_err(ld, list, "out of memory");
		return;
	}
	for (unsigned i = 0; i < list->yn_n; i++) {
		const struct yaml_node *it = list->yn_items[i], *name = it, *w = NULL;
		const struct shp_src_def *sd;
		uint32_t weight = 1;

		if (it->yn_kind == YAML_MAP) {
			name = yaml_map_get(it, "name");
			w = yaml_map_get(it, "weight");
			for (unsigned j = 0; j < it->yn_n; j++)
				if (strcmp(it->yn_keys[j]->yn_str, "name") != 0 &&
				    strcmp(it->yn_keys[j]->yn_str, "weight") != 0)
					shp_ld_err(ld, it->yn_keys[j], "unknown key \"%s\" in pool %s"
						   " (expected name, weight)", it->yn_keys[j]->yn_str,
						   pd->pd_pub.sp_name);
			if (name == NULL) {
				shp_ld_err(ld, it, "pool %s: a member needs a name", pd->pd_pub.sp_name);
				continue;
			}
		}
		if (!shp_ld_want(ld, name, YAML_SCALAR, "pool member"))
			continue;
		if (w != NULL) {
			char err[256];
			uint64_t x;

			if (yaml_scalar_u64(w, &x, err, sizeof(err)) < 0 || x == 0 || x > 1000000) {
				shp_ld_err(ld, w, "pool %s: weight: a whole number from 1 to 1000000",
					   pd->pd_pub.sp_name);
				continue;
			}
			weight = (uint32_t)x;
		}
		sd = shp_src_find(r, name->yn_str);
		if (sd == NULL) {
			shp_ld_err(ld, name, "pool %s: unknown source \"%s\"", pd->pd_pub.sp_name,
				   name->yn_str);
			continue;
		}
		for (unsigned j = 0; j < n; j++)
			if (pd->pd_srcs[j] == &sd->sd_pub) {
				shp_ld_err(ld, name, "pool %s: source %s is listed twice",
					   pd->pd_pub.sp_name, name->yn_str);
				sd = NULL;
				break;
			}
		if (sd == NULL)
			continue;
		pd->pd_srcs[n] = &sd->sd_pub;
		pd->pd_weights[n] = weight;
		n++;
	}
	if (list->yn_n == 0)
		shp_ld_err(ld, list, "pool %s: no sources", pd->pd_pub.sp_name);
	shp_pool_set(pd, n);
}

static void shp_ld_default_pool(struct shp_ld *ld)
{
	struct shp_rules *r = ld->ld_r;
	struct shp_pool_def *pd = shp_pool_new(ld, "default", NULL);

	if (pd == NULL)
		return;
	pd->pd_srcs = calloc(r->r_nsrc, sizeof(*pd->pd_srcs));
	pd->pd_weights = calloc(r->r_nsrc, sizeof(*pd->pd_weights));
	if (pd->pd_srcs == NULL || pd->pd_weights == NULL)
		return;
	for (unsigned i = 0; i < r->r_nsrc; i++) {
		pd->pd_srcs[i] = &r->r_src[i]->sd_pub;
		pd->pd_weights[i] = 1;
	}
	shp_pool_set(pd, r->r_nsrc);
}

static bool shp_addr_eq(const struct shp_source *a, const struct shp_source *b)
{
	if (a->ss_addrlen == 0 || a->ss_addrlen != b->ss_addrlen ||
	    a->ss_addr.ss_family != b->ss_addr.ss_family)
		return false;
	if (a->ss_addr.ss_family == AF_INET)
		return memcmp(&((const struct sockaddr_in *)&a->ss_addr)->sin_addr,
			      &((const struct sockaddr_in *)&b->ss_addr)->sin_addr, 4) == 0;
	return memcmp(&((const struct sockaddr_in6 *)&a->ss_addr)->sin6_addr,
		      &((const struct sockaddr_in6 *)&b->ss_addr)->sin6_addr, 16) == 0;
}

void shp_ld_pool_finish(struct shp_ld *ld)
{
	struct shp_rules *r = ld->ld_r;

	if (r->r_nsrc == 0)
		shp_src_new(ld, "default", NULL);
	for (unsigned i = 0; i < r->r_nsrc; i++) {
		const struct shp_src_def *sd = r->r_src[i];
		const struct shp_warmup *w = sd->sd_warmup;

		/* Only "default" may go without an address (it binds what
		 * ringmta.conf says); any other source exists to be one. */
		if (sd->sd_node != NULL && sd->sd_addr_node == NULL &&
		    strcmp(sd->sd_pub.ss_name, "default") != 0)
			shp_ld_err(ld, sd->sd_node, "source %s: address is missing",
				   sd->sd_pub.ss_name);
		for (unsigned j = 0; j < i; j++)
			if (shp_addr_eq(&r->r_src[j]->sd_pub, &sd->sd_pub))
				shp_ld_err(ld, sd->sd_addr_node, "source %s: address %s is already"
					   " source %s's", sd->sd_pub.ss_name, sd->sd_addr_node->yn_str,
					   r->r_src[j]->sd_pub.ss_name);
		for (unsigned j = 0; w != NULL && j < w->wu_n; j++)
			if (strcmp(w->wu_v[j].ws_provider, "default") != 0 &&
			    shp_rules_provider_by_name(r, w->wu_v[j].ws_provider) == NULL)
				shp_ld_err(ld, w->wu_v[j].ws_node, "source %s: warm-up schedule for"
					   " unknown provider \"%s\"", sd->sd_pub.ss_name,
					   w->wu_v[j].ws_provider);
	}
	for (unsigned i = 0; i < r->r_npools; i++) {
		struct shp_pool_def *pd = r->r_pools[i];

		if (pd->pd_sources == NULL) {
			shp_ld_err(ld, pd->pd_node, "pool %s: sources is missing", pd->pd_pub.sp_name);
			continue;
		}
		shp_ld_pool_members(ld, pd);
	}
	if (shp_pool_find(r, "default") == NULL)
		shp_ld_default_pool(ld);
	if (r->r_default_pool_name != NULL) {
		const struct shp_pool_def *pd = shp_pool_find(r, r->r_default_pool_name);

		if (pd == NULL)
			shp_ld_err(ld, r->r_default_pool_node, "default_pool: unknown pool \"%s\"",
				   r->r_default_pool_name);
		else
			r->r_default_pool = &pd->pd_pub;
	}
	if (r->r_default_pool == NULL && shp_pool_find(r, "default") != NULL)
		r->r_default_pool = &shp_pool_find(r, "default")->pd_pub;
	for (unsigned i = 0; i < r->r_nsel; i++) {
		struct shp_select *s = &r->r_sel[i];
		struct shp_pool_def *pd = shp_pool_find(r, s->se_pool_name);

		if (pd == NULL)
			shp_ld_err(ld, s->se_node, "pool_selection: unknown pool \"%s\"",
				   s->se_pool_name);
		else
			s->se_pool = &pd->pd_pub;
	}
}

void shp_pool_free_all(struct shp_rules *r)
{
	for (unsigned i = 0; i < r->r_nsrc; i++) {
		shp_warmup_free(r->r_src[i]->sd_warmup);
		free(r->r_src[i]);
	}
	free(r->r_src);
	for (unsigned i = 0; i < r->r_npools; i++) {
		free(r->r_pools[i]->pd_srcs);
		free(r->r_pools[i]->pd_weights);
		free(r->r_pools[i]);
	}
	free(r->r_pools);
	free(r->r_sel);
}

unsigned shp_rules_nsources(const struct shp_rules *r)
{
	return r->r_nsrc;
}

const struct shp_source *shp_rules_source(const struct shp_rules *r, unsigned i)
{
	return i < r->r_nsrc ? &r->r_src[i]->sd_pub : NULL;
}

const struct shp_source *shp_rules_source_by_name(const struct shp_rules *r, const char *name)
{
	const struct shp_src_def *sd = shp_src_find(r, name);

	return sd != NULL ? &sd->sd_pub : NULL;
}

const struct shp_pool *shp_rules_pool(const struct shp_rules *r, const char *name)
{
	const struct shp_pool_def *pd = shp_pool_find(r, name);

	return pd != NULL ? &pd->pd_pub : NULL;
}

const struct shp_pool *shp_rules_pool_select(const struct shp_rules *r, const char *user,
					     const char *listener, const char *sender_domain)
{
	for (unsigned i = 0; i < r->r_nsel; i++) {
		const struct shp_select *s = &r->r_sel[i];
		const char *v = s->se_kind == SHP_SEL_USER ? user :
				s->se_kind == SHP_SEL_LISTENER ? listener : sender_domain;

		if (v == NULL || s->se_pool == NULL)
			continue;
		if (s->se_kind == SHP_SEL_SENDER_DOMAIN ? strcasecmp(v, s->se_value) == 0 :
							  strcmp(v, s->se_value) == 0)
			return s->se_pool;
	}
	return r->r_default_pool;
}

const char *shp_rules_pool_header(const struct shp_rules *r)
{
	return r->r_pool_header;
}

uint64_t shp_warmup_cap(const struct shp_source *s, const char *provider, uint64_t now_unix_s,
			uint64_t *period_start_r, uint64_t *period_len_r)
{
	const struct shp_warmup *w = s->ss_warmup;
	const struct shp_wsched *ws = NULL;
	uint64_t len, idx, start;

	if (w == NULL)
		return UINT64_MAX;
	for (unsigned i = 0; i < w->wu_n; i++) {
		if (provider != NULL && strcmp(w->wu_v[i].ws_provider, provider) == 0) {
			ws = &w->wu_v[i];
			break;
		}
		if (strcmp(w->wu_v[i].ws_provider, "default") == 0)
			ws = &w->wu_v[i];
	}
	if (ws == NULL || ws->ws_n == 0)
		return UINT64_MAX;
	len = w->wu_period_s;
	if (now_unix_s >= w->wu_start_s) {
		idx = (now_unix_s - w->wu_start_s) / len;
		start = w->wu_start_s + idx * len;
	} else {
		/* Before the start: the first period's cap, on the same grid. */
		idx = 0;
		start = w->wu_start_s - ((w->wu_start_s - now_unix_s + len - 1) / len) * len;
	}
	if (period_start_r != NULL)
		*period_start_r = start;
	if (period_len_r != NULL)
		*period_len_r = len;
	return idx < ws->ws_n ? ws->ws_caps[idx] : UINT64_MAX;
}
