/*
 * test_delivery_site.c: how delivery names the site of a next hop
 * (dlv_site_of): MX rollup (the same MX set in any order and case is one
 * site, so two domains on Google's hosts share it), the domain itself
 * for an implicit MX, a relayhost, a domain the rules set apart and
 * "group_by: domain", and the provider by MX suffix.
 */
#include <stdio.h>
#include <string.h>

#include "core/delivery/delivery_internal.h"
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
