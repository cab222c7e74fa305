/*
 * test_delivery_site.c: how delivery names the site of a next hop
 * (dlv_site_of): MX rollup (the same MX set in any order and case is one
 * site, so two domains on Google's hosts share it), the domain itself
 * for an implicit MX, a relayhost, a domain the rules set apart and
 * "group_by: domain", and the provider by MX suffix; and the
 * schedule of the scheduler's shaping chores (dlv_shp_chores), and that
 * a destination keeps the provider its connection units are held under.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/delivery/delivery_internal.h"
#include "core/shaping/shp_holder.h"
#include "core/shaping/shp_rules_admin.h"
#include "tap.h"

static void route(struct dns_route *r, const char *const *names, unsigned n, bool implicit)
{
	memset(r, 0, sizeof(*r));
	r->dr_status = DNS_OK;
	r->dr_implicit = implicit;
	r->dr_nhosts = n;
	for (unsigned i = 0; i < n; i++) {
		snprintf(r->dr_hosts[i].dh_name, sizeof(r->dr_hosts[i].dh_name), "%s", names[i]);
		r->dr_hosts[i].dh_pref = (uint16_t)(10 * (i + 1));
	}
}

static struct shp_rules *load(const char *yaml)
{
	struct shp_rules_src src = { "test.yaml", yaml, strlen(yaml) };
	struct shp_rules *r = NULL;
	char err[512];

	if (shp_rules_load_mem(&r, true, &src, 1, err, sizeof(err)) < 0)
		printf("# %s\n", err);
	return r;
}

/* The scheduler's shaping chores on a busy server: the state changes
 * (and is saved) every second, and idle entries must still be dropped
 * every 10 s (promise 3: a save used to hold off the expiry for ever). */
static void test_chores(void)
{
	struct dlv_shp_clock c = { 0, 0, 0 };
	uint64_t t0 = 1700000000ull * 1000000u;
	unsigned saves = 0, src = 0, expiries = 0;

	for (unsigned i = 0; i < 60; i++) {
		unsigned todo = dlv_shp_chores(&c, t0 + (uint64_t)i * 1000000u);

		saves += (todo & DLV_SHP_DO_SAVE) != 0;
		src += (todo & DLV_SHP_DO_SRC_SAVE) != 0;
		expiries += (todo & DLV_SHP_DO_EXPIRE) != 0;
	}
	tap_ok(saves == 60, "chores: a changed state may be saved every second (%u)", saves);
	tap_ok(src == 6, "chores: the sources' counters every 10 s (%u)", src);
	tap_ok(expiries == 6, "chores: expiry every 10 s whatever the saves do (%u)", expiries);
}

/* A destination with a session open holds connection units under its
 * site's and provider's keys; the shared domain -> site cache may name
 * another provider for the domain (written by a destination of another
 * source under newer rules): taking it would release the units under a
 * key they were never taken under, leaking the old provider's for ever. */
static void test_cache_keeps_held_provider(void)
{
	struct config cfg;
	struct delivery_env env;
	struct dlv_worker w;
	struct dlv_dest d;
	struct shp_store *st;
	uint64_t now = dlv_unix_us();

	config_defaults(&cfg);
	memset(&env, 0, sizeof(env));
	tap_ok(shp_holder_new(&env.de_rules, load("providers:\n  old: {match: [.big.example]}\n"
						   "  new: {match: [.big.example]}\n")) == 0,
	       "rules held");
	memset(&w, 0, sizeof(w));
	memset(&d, 0, sizeof(d));
	w.w_env = &env;
	w.w_cfg = &cfg;
	tap_ok(dlv_shaping_new(&w.w_shp) == 0, "shaping state");
	d.dd_w = &w;	/* the owner, whose shaping holds the path's share */
	st = w.w_shp->ds_store;
	d.dd_name = (char *)"a.example";
	d.dd_shp.dp_source = strdup("s1");
	d.dd_shp.dp_known = true;
	snprintf(d.dd_shp.dp_site, sizeof(d.dd_shp.dp_site), "mx.big.example");
	snprintf(d.dd_shp.dp_provider, sizeof(d.dd_shp.dp_provider), "old");
	d.dd_shp.dp_expires = 0;	/* the destination looks its site up again */
	tap_ok(dlv_shp_conn_take(&w, &d, false) == DLV_CONN_OK, "a connection unit taken");
	d.dd_nconns = 1;
	shp_state_site_put(w.w_shp->ds_state, "a.example", "mx.big.example", "new",
			   now + 300000000ull);
	dlv_shp_from_cache(&w, &d);
	tap_ok(strcmp(d.dd_shp.dp_provider, "old") == 0,
	       "cache: the provider units are held under stays (%s)", d.dd_shp.dp_provider);
	d.dd_nconns = 0;
	dlv_shp_conn_put(&w, &d);
	tap_ok(st->ss_ops->ss_sem_count(st, "pc|old|s1") == 0 &&
	       st->ss_ops->ss_sem_count(st, "c|mx.big.example|s1") == 0,
	       "cache: every unit given back under the key it was taken under");
	dlv_shp_dest_free(&d);
	dlv_shaping_free(&w.w_shp);
	shp_holder_cache_drop(&w.w_rules);
	shp_holder_free(&env.de_rules);
	config_free(&cfg);
}

int main(void)
{
	static const char *const g1[] = { "ALT1.aspmx.l.google.com", "aspmx.l.google.com" };
	static const char *const g2[] = { "aspmx.l.google.com.", "alt1.aspmx.l.google.com" };
	static const char *const other[] = { "mx.example.net" };
	struct shp_rules *r = load("domains:\n  alone.example: {max_connections: 1}\n");
	struct shp_rules *byd = load("group_by: domain\n");
	const struct shp_provider *p1, *p2;
	struct dns_route rt;
	char s1[256], s2[256];

	test_chores();
	test_cache_keeps_held_provider();
	tap_ok(r != NULL && byd != NULL, "rules loaded");
	route(&rt, g1, 2, false);
	p1 = dlv_site_of(r, "a.example", false, &rt, s1, sizeof(s1));
	route(&rt, g2, 2, false);
	p2 = dlv_site_of(r, "b.example", false, &rt, s2, sizeof(s2));
	tap_ok(strcmp(s1, s2) == 0, "one MX set in any order and case is one site: %s | %s", s1,
	       s2);
	tap_ok(strstr(s1, "alt1.aspmx.l.google.com") != NULL && strchr(s1, ',') != NULL,
	       "the site names its MX hosts: %s", s1);
	tap_ok(p1 != NULL && p1 == p2 && strcmp(shp_provider_name(p1), "gmail") == 0,
	       "their provider is gmail (shipped rules)");
	route(&rt, other, 1, false);
	p1 = dlv_site_of(r, "c.example", false, &rt, s1, sizeof(s1));
	tap_ok(strcmp(s1, "mx.example.net") == 0 && p1 == NULL,
	       "one MX host: its name; no provider: %s", s1);
	route(&rt, (const char *const[]){ "d.example" }, 1, true);
	dlv_site_of(r, "d.example", false, &rt, s1, sizeof(s1));
	tap_ok(strcmp(s1, "d.example") == 0, "implicit MX: the domain is the site");
	route(&rt, g1, 2, false);
	dlv_site_of(r, "alone.example", false, &rt, s1, sizeof(s1));
	tap_ok(strcmp(s1, "alone.example") == 0, "a domain of \"domains:\" is a site of its own");
	dlv_site_of(byd, "e.example", false, &rt, s1, sizeof(s1));
	tap_ok(strcmp(s1, "e.example") == 0, "group_by: domain: the domain");
	route(&rt, (const char *const[]){ "[192.0.2.1]" }, 1, false);
	p1 = dlv_site_of(r, "[192.0.2.1]:2525", true, &rt, s1, sizeof(s1));
	tap_ok(strcmp(s1, "[192.0.2.1]:2525") == 0 && p1 == NULL,
	       "the relayhost is a site of its own, of no provider");
	route(&rt, g1, 2, false);
	dlv_site_of(NULL, "f.example", false, &rt, s1, sizeof(s1));
	tap_ok(strcmp(s1, s2) == 0, "without rules: MX rollup still");
	shp_rules_unref(&r);
	shp_rules_unref(&byd);
	return tap_done();
}
