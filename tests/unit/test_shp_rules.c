/*
 * test_shp_rules: the shaping rules loader and its queries: merge order
 * across levels and files, provider and site matching, automation,
 * pools, warm-up, health, every error with its file:line, and that the
 * shipped rules load without an error.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/shaping/shp_holder.h"
#include "core/shaping/shp_rules.h"
#include "core/shaping/shp_rules_admin.h"
#include "tests/unit/tap.h"

static char errbuf[8192];

/* Load up to three files ("a.yaml", "b.yaml", "c.yaml") without the
 * built-in rules; NULL on error (errbuf says why). */
static struct shp_rules *load3(const char *a, const char *b, const char *c)
{
	struct shp_rules_src s[3] = {
		{ "a.yaml", a, a ? strlen(a) : 0 },
		{ "b.yaml", b, b ? strlen(b) : 0 },
		{ "c.yaml", c, c ? strlen(c) : 0 },
	};
	struct shp_rules *r = NULL;
	unsigned n = c ? 3 : b ? 2 : 1;

	errbuf[0] = '\0';
	if (shp_rules_load_mem(&r, false, s, n, errbuf, sizeof(errbuf)) < 0)
		return NULL;
	return r;
}

static struct shp_rules *load(const char *a)
{
	return load3(a, NULL, NULL);
}

/* text fails to load and the errors include want (a whole line). */
static void refuse(const char *text, const char *want, const char *what)
{
	struct shp_rules *r = load(text);
	const char *p = errbuf;
	size_t wl = strlen(want);
	bool found = false;

	for (; r == NULL && p != NULL && *p != '\0'; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, want, wl) == 0)
			found = true;
	tap_ok(r == NULL && found, "%s: %s", what, r == NULL ? errbuf : "(loaded)");
	shp_rules_unref(&r);
}

static const char merge_a[] =
	"default:\n"
	"  max_connections: 7\n"
	"  message_rate: 10/s\n"
	"  idle_timeout: 5s\n"
	"providers:\n"
	"  big:\n"
	"    match: ['.big.example']\n"
	"    max_connections: 5\n"
	"    connection_rate: 2/s\n"
	"    max_recipients: 50\n"
	"    provider_max_connections: 40\n"
	"    provider_message_rate: 1000/m\n"
	"sites:\n"
	"  'mx2.big.example,MX1.big.example.': {max_recipients: 20}\n"
	"  .big.example: {max_messages_per_connection: 30}\n"
	"  .eu.big.example: {max_messages_per_connection: 31}\n"
	"domains:\n"
	"  Alone.Example: {connect_timeout: 20s}\n"
	"sources:\n"
	"  s1: {address: 192.0.2.1, tls: required}\n";

static const char merge_b[] =
	"providers:\n"
	"  big:\n"
	"    max_connections: 6\n"
	"domains:\n"
	"  alone.example: {max_recipients: 9}\n"
	"default:\n"
	"  message_rate: 20/s\n";

static void test_merge(void)
{
	struct shp_rules *r = load3(merge_a, merge_b, NULL);
	const char *mx[] = { "mx1.big.example", "MX2.big.example." };
	const char *mx_eu[] = { "a.eu.big.example" };
	const struct shp_provider *p;
	struct shp_field_origin o[SHP_F_COUNT];
	struct shp_limits l;
	char site[256];

	tap_ok(r != NULL, "merge files load (%s)", errbuf);
	if (r == NULL)
		return;
	p = shp_rules_provider(r, mx, 2);
	tap_ok(p != NULL && strcmp(shp_provider_name(p), "big") == 0, "provider by suffix");
	shp_site_name(mx, 2, site, sizeof(site));
	tap_ok(strcmp(site, "mx1.big.example,mx2.big.example") == 0, "site name: %s", site);

	shp_rules_limits(r, NULL, NULL, NULL, NULL, 20, 0, &l);
	tap_ok(l.sl_max_connections == 7 && l.sl_message_rate.sr_count == 20 &&
		       l.sl_idle_timeout_ms == 5000 && l.sl_max_recipients == 0,
	       "default over ringmta.conf; b's default rate overrides a's field by field");
	shp_rules_limits(r, NULL, NULL, NULL, NULL, 20, 3, &l);
	tap_ok(l.sl_message_rate.sr_count == 20, "rules default wins over destination_rate_limit");
	{
		struct shp_rules *e = load("{}\n");

		shp_rules_limits(e, NULL, NULL, NULL, NULL, 20, 3, &l);
		tap_ok(l.sl_max_connections == 20 && l.sl_message_rate.sr_count == 3 &&
			       l.sl_message_rate.sr_period_us == 1000000 && l.sl_tls == SHP_TLS_UNSET,
		       "empty rules: ringmta.conf's limits");
		shp_rules_unref(&e);
	}
	shp_rules_explain(r, p, site, NULL, NULL, 20, 0, &l, o);
	tap_ok(l.sl_max_connections == 6 && strcmp(o[SHP_F_MAX_CONNECTIONS].fo_level, "provider") == 0 &&
		       strcmp(o[SHP_F_MAX_CONNECTIONS].fo_file, "b.yaml") == 0 &&
		       o[SHP_F_MAX_CONNECTIONS].fo_line == 3,
	       "provider: b.yaml:3 overrides a's max_connections");
	tap_ok(l.sl_connection_rate.sr_count == 2 && strcmp(o[SHP_F_CONNECTION_RATE].fo_file, "a.yaml") == 0,
	       "provider keeps a's connection_rate");
	tap_ok(l.sl_max_recipients == 20 && strcmp(o[SHP_F_MAX_RECIPIENTS].fo_level, "site") == 0,
	       "exact site (order, case, trailing dot) overrides provider");
	tap_ok(l.sl_max_messages_per_connection == 0 && o[SHP_F_MAX_MESSAGES].fo_level == NULL,
	       "an exact site entry wins over every pattern (one site entry applies)");
	tap_ok(strcmp(shp_rules_site_entry(r, site), "mx1.big.example,mx2.big.example") == 0,
	       "the site entry shown is the exact one");
	shp_rules_explain(r, p, "mx3.big.example", NULL, NULL, 20, 0, &l, o);
	tap_ok(l.sl_max_messages_per_connection == 30 && strcmp(o[SHP_F_MAX_MESSAGES].fo_name, "big.example") == 0,
	       "a suffix pattern applies to another site of the provider (%s)",
	       o[SHP_F_MAX_MESSAGES].fo_name);
	tap_ok(o[SHP_F_TLS].fo_level == NULL, "an unset field has no origin");
	shp_site_name(mx_eu, 1, site, sizeof(site));
	shp_rules_limits(r, p, site, NULL, NULL, 20, 0, &l);
	tap_ok(l.sl_max_messages_per_connection == 31, "the longest site pattern wins");

	shp_rules_explain(r, p, "mx1.big.example", "ALONE.example.", "s1", 20, 0, &l, o);
	tap_ok(l.sl_connect_timeout_ms == 20000 && l.sl_max_recipients == 9 &&
		       strcmp(o[SHP_F_MAX_RECIPIENTS].fo_level, "domain") == 0,
	       "domain over site and provider, merged across files");
	tap_ok(l.sl_tls == SHP_TLS_REQUIRED && strcmp(o[SHP_F_TLS].fo_level, "source") == 0,
	       "source last");
	tap_ok(shp_rules_domain_alone(r, "alone.example") && shp_rules_domain_alone(r, "Alone.Example.") &&
		       !shp_rules_domain_alone(r, "other.example"),
	       "a domains: entry is a site of its own");
	shp_rules_provider_limits(r, p, "s1", &l);
	tap_ok(l.sl_max_connections == 40 && l.sl_message_rate.sr_count == 1000 &&
		       l.sl_message_rate.sr_period_us == 60000000,
	       "provider-wide limits");
	shp_rules_provider_limits(r, NULL, "s1", &l);
	tap_ok(l.sl_max_connections == 0 && l.sl_message_rate.sr_count == 0, "no provider: none");
	shp_rules_unref(&r);

	r = load("group_by: domain\n");
	tap_ok(r != NULL && shp_rules_domain_alone(r, "any.example"), "group_by: domain");
	shp_rules_unref(&r);
}

static void test_providers(void)
{
	struct shp_rules *r = load("providers:\n"
				   "  g: {match: ['.google.com', googlemail.com]}\n"
				   "  m: {match: .Mail.Protection.Outlook.com.}\n"
				   "  g2: {match: ['.l.google.com']}\n");
	const char *h1[] = { "ASPMX.L.GOOGLE.COM." }, *h2[] = { "evilgoogle.com" },
		   *h3[] = { "google.com" }, *h4[] = { "x.example", "gmail-smtp-in.l.googlemail.com" },
		   *h5[] = { "example-com.mail.protection.outlook.com" }, *h6[] = { "com" },
		   *h7[] = { "google.com.evil.example" };

	tap_ok(r != NULL, "providers load (%s)", errbuf);
	if (r == NULL)
		return;
	tap_ok(strcmp(shp_provider_name(shp_rules_provider(r, h1, 1)), "g") == 0,
	       "case and trailing dot do not matter; the first provider in order wins");
	tap_ok(shp_rules_provider(r, h2, 1) == NULL, "evilgoogle.com is not .google.com");
	tap_ok(shp_rules_provider(r, h3, 1) != NULL, "google.com itself matches .google.com");
	tap_ok(strcmp(shp_provider_name(shp_rules_provider(r, h4, 2)), "g") == 0,
	       "any one MX host matching is enough");
	tap_ok(strcmp(shp_provider_name(shp_rules_provider(r, h5, 1)), "m") == 0,
	       "a suffix written with dots and capitals");
	tap_ok(shp_rules_provider(r, h6, 1) == NULL && shp_rules_provider(r, h7, 1) == NULL,
	       "no partial or inner matches");
	tap_ok(shp_rules_provider(r, NULL, 0) == NULL, "no hosts, no provider");
	shp_rules_unref(&r);
}

static void test_site_name(void)
{
	const char *a[] = { "b.example.", "A.example", "b.example" };
	char out[64];

	tap_ok(shp_site_name(a, 3, out, sizeof(out)) == 19 && strcmp(out, "a.example,b.example") == 0,
	       "sorted, lowercased, trailing dots and duplicates gone: %s", out);
	tap_ok(shp_site_name(a, 3, out, 10) == 0, "too small: 0");
	tap_ok(shp_site_name(a, 1, out, sizeof(out)) == 9 && strcmp(out, "b.example") == 0,
	       "one host");
}

static const char auto_rules[] =
	"providers:\n"
	"  g:\n"
	"    match: ['.google.com']\n"
	"    automation:\n"
	"      - name: g-728\n"
	"        match: '^4\\.7\\.28 '\n"
	"        code: '421'\n"
	"        actions: [{ramp: {pause: 10m, step: 1}}]\n"
	"      - name: g-any4\n"
	"        match: 'unusual'\n"
	"        code: 4xx\n"
	"        trigger: 3 in 10m\n"
	"        actions:\n"
	"          - suspend: 10m\n"
	"          - max_connections: {value: 2, for: 30m}\n"
	"          - message_rate: {rate: 100/h, for: 1h}\n"
	"automation:\n"
	"  - name: global-unusual\n"
	"    match: '(?i)UNUSUAL rate'\n"
	"    actions: [{suspend_site: 1h}, {bounce: 2h}]\n"
	"  - name: global-5xx\n"
	"    match: 'x'\n"
	"    code: 5xx\n"
	"    actions: [{suspend: 1m}]\n"
	"health:\n"
	"  backoff: [10s, 1m, 5m]\n";

static void test_automation(void)
{
	struct shp_rules *r = load(auto_rules);
	const char *mx[] = { "aspmx.l.google.com" };
	const struct shp_provider *p;
	const struct shp_auto_rule *out[8];
	unsigned n;

	tap_ok(r != NULL, "automation loads (%s)", errbuf);
	if (r == NULL)
		return;
	p = shp_rules_provider(r, mx, 1);
	n = shp_rules_match(r, p, "4.7.28", "421 4.7.28 Our system has detected an unusual rate",
			    out, 8);
	tap_ok(n == 3 && strcmp(out[0]->ar_name, "g-728") == 0 &&
		       strcmp(out[1]->ar_name, "g-any4") == 0 &&
		       strcmp(out[2]->ar_name, "global-unusual") == 0,
	       "provider rules first, then global; several match (%u)", n);
	tap_ok(out[0]->ar_threshold == 1 && out[0]->ar_nactions == 1 &&
		       out[0]->ar_actions[0].sa_kind == SHP_ACT_RAMP &&
		       out[0]->ar_actions[0].sa_duration_us == 600000000ull &&
		       out[0]->ar_actions[0].sa_value == 1,
	       "ramp pause 10m step 1");
	tap_ok(out[1]->ar_threshold == 3 && out[1]->ar_window_us == 600000000ull &&
		       out[1]->ar_nactions == 3 && out[1]->ar_actions[1].sa_kind == SHP_ACT_MAX_CONNECTIONS &&
		       out[1]->ar_actions[1].sa_value == 2 &&
		       out[1]->ar_actions[1].sa_duration_us == 1800000000ull &&
		       out[1]->ar_actions[2].sa_kind == SHP_ACT_MESSAGE_RATE &&
		       out[1]->ar_actions[2].sa_rate.sr_count == 100 &&
		       out[1]->ar_actions[2].sa_rate.sr_period_us == 3600000000ull,
	       "threshold 3 in 10m and its actions");
	tap_ok(strcmp(out[0]->ar_file, "a.yaml") == 0 && out[0]->ar_line == 5, "rule file:line");
	tap_ok(out[2]->ar_actions[0].sa_kind == SHP_ACT_SUSPEND_SITE &&
		       out[2]->ar_actions[1].sa_kind == SHP_ACT_BOUNCE &&
		       out[2]->ar_actions[1].sa_duration_us == 7200000000ull,
	       "suspend_site and bounce");
	n = shp_rules_match(r, p, "4.7.28", "421-4.7.28 Our system has detected an unusual rate",
			    out, 1);
	tap_ok(n == 1 && strcmp(out[0]->ar_name, "g-728") == 0, "max caps what is filled");
	n = shp_rules_match(r, p, "4.7.28", "451 4.7.28 slow down", out, 8);
	tap_ok(n == 0, "code 421 does not match a 451 4.7.28 (%u)", n);
	n = shp_rules_match(r, NULL, "4.7.28", "421 4.7.28 an unusual rate", out, 8);
	tap_ok(n == 1 && strcmp(out[0]->ar_name, "global-unusual") == 0,
	       "without a provider only the global rules");
	n = shp_rules_match(r, p, "", "421 unusual rate", out, 8);
	tap_ok(n == 2 && strcmp(out[0]->ar_name, "g-any4") == 0, "no enhanced code: bare text");
	n = shp_rules_match(r, p, "5.7.1", "550 5.7.1 xyz", out, 8);
	tap_ok(n == 1 && strcmp(out[0]->ar_name, "global-5xx") == 0, "5xx matches 550");
	n = shp_rules_match(r, p, "", "unusual rate without a code", out, 8);
	tap_ok(n == 1 && strcmp(out[0]->ar_name, "global-unusual") == 0,
	       "a code filter needs a code in the reply");
	n = shp_rules_match(r, NULL, "4.7.28", "421 4.7.28 [192.0.2.1 15] Our system has detected an"
			    " UNUSUAL 4.7.28 rate of 4.7.28 unsolicited mail", out, 8);
	tap_ok(n == 1 && strcmp(out[0]->ar_name, "global-unusual") == 0,
	       "the enhanced code repeated on continuation lines is not in the way");
	n = shp_rules_match(r, p, "4.7.28", "421 4.7.28 \xff\xfe invalid UTF-8 unusual", out, 8);
	tap_ok(n == 2, "invalid UTF-8 in a reply still matches (%u)", n);

	tap_ok(shp_rules_health_backoff_us(r, 1) == 10000000 &&
		       shp_rules_health_backoff_us(r, 2) == 60000000 &&
		       shp_rules_health_backoff_us(r, 3) == 300000000 &&
		       shp_rules_health_backoff_us(r, 50) == 300000000,
	       "health backoff, the last repeats");
	shp_rules_unref(&r);
	r = load("{}");
	tap_ok(shp_rules_health_backoff_us(r, 1) == 60000000 &&
		       shp_rules_health_backoff_us(r, 6) == 1800000000ull &&
		       shp_rules_health_backoff_us(r, 7) == 1800000000ull,
	       "default backoff 1m .. 30m");
	shp_rules_unref(&r);

	/* A later file replaces a rule by name, or switches it off. */
	r = load3(auto_rules,
		  "automation:\n"
		  "  - name: global-unusual\n"
		  "    match: 'never'\n"
		  "    actions: [{suspend: 1m}]\n"
		  "providers:\n"
		  "  g:\n"
		  "    automation:\n"
		  "      - {name: g-728, disabled: yes}\n",
		  NULL);
	tap_ok(r != NULL, "override file loads (%s)", errbuf);
	if (r != NULL) {
		p = shp_rules_provider(r, mx, 1);
		n = shp_rules_match(r, p, "4.7.28", "421 4.7.28 unusual rate", out, 8);
		tap_ok(n == 1 && strcmp(out[0]->ar_name, "g-any4") == 0,
		       "g-728 disabled and global-unusual replaced (%u)", n);
	}
	shp_rules_unref(&r);
}

/* A pattern that backtracks exponentially is cut off (no match) rather
 * than running for ages on a delivery worker. */
static void test_match_limit(void)
{
	struct shp_rules *r = load("automation:\n"
				   "  - {name: slow, match: '^(a|aa)+$', actions: [{suspend: 1m}]}\n"
				   "  - {name: fine, match: 'aaaa', actions: [{suspend: 1m}]}\n");
	const struct shp_auto_rule *out[4];
	char text[200];
	unsigned n;

	memset(text, 'a', 120);
	strcpy(text + 120, "b");
	n = shp_rules_match(r, NULL, "", text, out, 4);
	tap_ok(n == 1 && strcmp(out[0]->ar_name, "fine") == 0,
	       "a catastrophic pattern hits the match limit and does not match; the next rule does");
	shp_rules_unref(&r);
}

struct match_arg {
	struct shp_rules *r;
	const struct shp_provider *p;
	int ok;
};

static void *match_thread(void *a)
{
	struct match_arg *m = a;
	const struct shp_auto_rule *out[8];

	for (unsigned i = 0; i < 20000; i++) {
		if (shp_rules_match(m->r, m->p, "4.7.28", "421 4.7.28 unusual rate", out, 8) != 3)
			m->ok = 0;
		if (shp_rules_match(m->r, m->p, "4.7.0", "421 4.7.0 fine", out, 8) != 0)
			m->ok = 0;
	}
	return NULL;
}

static void test_match_threads(void)
{
	struct shp_rules *r = load(auto_rules);
	const char *mx[] = { "aspmx.l.google.com" };
	struct match_arg args[4];
	pthread_t t[4];
	int ok = 1;

	for (unsigned i = 0; i < 4; i++) {
		args[i] = (struct match_arg){ r, shp_rules_provider(r, mx, 1), 1 };
		pthread_create(&t[i], NULL, match_thread, &args[i]);
	}
	for (unsigned i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		ok = ok && args[i].ok;
	}
	tap_ok(ok, "four threads match at once with the same answers");
	shp_rules_unref(&r);
}

static const char pools_yaml[] =
	"sources:\n"
	"  s1: {address: 127.0.0.2, ehlo: s1.example}\n"
	"  s2:\n"
	"    address: '::1'\n"
	"    max_connections: 3\n"
	"    warmup:\n"
	"      start: 2026-12-01\n"
	"      schedule:\n"
	"        big: [10, 20, 40]\n"
	"        default: [5]\n"
	"  s3:\n"
	"    address: 127.0.0.3\n"
	"    warmup: {start: 2026-12-01, period: hour, schedule: {default: [1, 2]}}\n"
	"  s4: {address: 127.0.0.4, ehlo: '[IPv6:2001:db8::4]'}\n"
	"providers:\n"
	"  big: {match: [.big.example]}\n"
	"pools:\n"
	"  bulk:\n"
	"    sources: [s1, {name: s2, weight: 3}]\n"
	"    when_capped: spill\n"
	"  trans: {sources: [s3]}\n"
	"pool_selection:\n"
	"  - {user: alice, pool: trans}\n"
	"  - {listener: '127.0.0.1:2525', pool: trans}\n"
	"  - {listener: '[0:0::1]:587', pool: trans}\n"
	"  - {sender_domain: News.Example, pool: bulk}\n"
	"default_pool: bulk\n"
	"pool_header: X-Ringmta-Pool\n";

static void test_pools(void)
{
	struct shp_rules *r = load(pools_yaml);
	const struct shp_pool *bulk, *trans, *def;
	const struct shp_source *s1, *s2, *s3;
	uint64_t day0 = 1796083200ull;	/* 2026-12-01T00:00:00Z */
	uint64_t start = 0, len = 0;

	tap_ok(r != NULL, "pools load (%s)", errbuf);
	if (r == NULL)
		return;
	tap_ok(shp_rules_nsources(r) == 4, "four sources");
	s1 = shp_rules_source_by_name(r, "s1");
	s2 = shp_rules_source(r, 1);
	s3 = shp_rules_source_by_name(r, "s3");
	tap_ok(s1 != NULL && s1->ss_addr.ss_family == AF_INET && s1->ss_addrlen == sizeof(struct sockaddr_in) &&
		       ((const struct sockaddr_in *)&s1->ss_addr)->sin_addr.s_addr == htonl(0x7f000002) &&
		       strcmp(s1->ss_ehlo, "s1.example") == 0 && s1->ss_warmup == NULL,
	       "s1: 127.0.0.2 with its EHLO name");
	tap_ok(s2 != NULL && strcmp(s2->ss_name, "s2") == 0 && s2->ss_addr.ss_family == AF_INET6 &&
		       s2->ss_ehlo == NULL,
	       "s2: IPv6, no EHLO name");
	bulk = shp_rules_pool(r, "bulk");
	trans = shp_rules_pool(r, "trans");
	def = shp_rules_pool(r, "default");
	tap_ok(bulk != NULL && bulk->sp_n == 2 && bulk->sp_sources[0] == s1 && bulk->sp_sources[1] == s2 &&
		       bulk->sp_weights[0] == 1 && bulk->sp_weights[1] == 3 && bulk->sp_spill,
	       "bulk: s1 weight 1, s2 weight 3, spills");
	tap_ok(trans != NULL && trans->sp_n == 1 && trans->sp_sources[0] == s3 && !trans->sp_spill,
	       "trans: s3, waits");
	tap_ok(def != NULL && def->sp_n == 4, "an implicit default pool holds every source");
	tap_ok(shp_rules_pool_select(r, "alice", NULL, "news.example") == trans, "user first");
	tap_ok(shp_rules_pool_select(r, "bob", "127.0.0.1:2525", NULL) == trans, "listener");
	tap_ok(shp_rules_pool_select(r, NULL, "[::1]:587", NULL) == trans &&
		       shp_rules_pool_select(r, NULL, "[::1]:25", NULL) == bulk,
	       "an IPv6 listener written another way, and another port");
	tap_ok(shp_rules_pool_select(r, NULL, NULL, "news.EXAMPLE") == bulk, "sender domain, any case");
	tap_ok(shp_rules_pool_select(r, NULL, NULL, "other.example") == bulk, "default_pool: bulk");
	tap_ok(strcmp(shp_rules_pool_header(r), "X-Ringmta-Pool") == 0, "pool header");
	{
		struct shp_limits l;

		shp_rules_limits(r, NULL, NULL, NULL, "s2", 20, 0, &l);
		tap_ok(l.sl_max_connections == 3, "per-source limits");
	}

	tap_ok(shp_warmup_cap(s1, "big", day0, &start, &len) == UINT64_MAX, "no schedule: uncapped");
	tap_ok(shp_warmup_cap(s2, "big", day0 + 5, &start, &len) == 10 && start == day0 && len == 86400,
	       "day 0: the first cap");
	tap_ok(shp_warmup_cap(s2, "big", day0 + 86400 + 3600, &start, &len) == 20 && start == day0 + 86400,
	       "day 1");
	tap_ok(shp_warmup_cap(s2, "big", day0 + 2 * 86400 + 86399, &start, &len) == 40 &&
		       start == day0 + 2 * 86400,
	       "day 2, its last second");
	tap_ok(shp_warmup_cap(s2, "big", day0 + 3 * 86400, &start, &len) == UINT64_MAX,
	       "past the end: uncapped");
	tap_ok(shp_warmup_cap(s2, "other", day0 + 10, &start, &len) == 5 &&
		       shp_warmup_cap(s2, NULL, day0 + 86400, &start, &len) == UINT64_MAX,
	       "another provider and no provider use default:");
	tap_ok(shp_warmup_cap(s2, "big", day0 - 10, &start, &len) == 10 && start == day0 - 86400,
	       "before the start: the first cap");
	tap_ok(shp_warmup_cap(s3, "big", day0 + 3599, &start, &len) == 1 && len == 3600 &&
		       shp_warmup_cap(s3, "big", day0 + 3600, &start, &len) == 2 && start == day0 + 3600 &&
		       shp_warmup_cap(s3, "big", day0 + 7200, &start, &len) == UINT64_MAX,
	       "hourly periods");
	shp_rules_unref(&r);

	r = load("{}\n");
	tap_ok(r != NULL && shp_rules_nsources(r) == 1 &&
		       strcmp(shp_rules_source(r, 0)->ss_name, "default") == 0 &&
		       shp_rules_source(r, 0)->ss_addrlen == 0 &&
		       shp_rules_pool_select(r, "u", "l", "d") == shp_rules_pool(r, "default") &&
		       shp_rules_pool(r, "default")->sp_n == 1 && shp_rules_pool_header(r) == NULL,
	       "no sources: one \"default\" source, bound to no address, in the default pool");
	shp_rules_unref(&r);
}

static void test_errors(void)
{
	refuse("defualt: {}\n", "a.yaml:1: unknown section \"defualt\"", "unknown section");
	refuse("default:\n  max_conections: 3\n", "a.yaml:2: unknown key \"max_conections\"",
	       "unknown key in a limits block");
	refuse("providers:\n  g:\n    match: [.g.com]\n    colour: red\n",
	       "a.yaml:4: unknown key \"colour\" in provider g", "unknown key in a provider");
	refuse("default:\n  message_rate: 100/fortnight\n", "a.yaml:2: message_rate: not a rate",
	       "bad rate");
	refuse("default:\n  connect_timeout: 30\n", "a.yaml:2: connect_timeout: not a duration",
	       "a duration without a unit");
	refuse("default:\n  tls: maybe\n", "a.yaml:2: tls: expected", "bad tls");
	refuse("default:\n  max_connections: lots\n", "a.yaml:2: max_connections: expected a whole",
	       "bad count");
	refuse("automation:\n  - name: x\n    match: '(unclosed'\n    actions: [{suspend: 1m}]\n",
	       "a.yaml:3: match: bad pattern at offset 9: missing closing parenthesis", "bad regex");
	refuse("automation:\n  - name: x\n    match: y\n    actions: [{explode: 1m}]\n",
	       "a.yaml:4: unknown action \"explode\"", "unknown action");
	refuse("automation:\n  - name: x\n    match: y\n    actions:\n      - suspend: soon\n",
	       "a.yaml:5: not a duration", "bad action duration");
	refuse("automation:\n  - name: x\n    match: y\n    trigger: often\n    actions: [{suspend: 1m}]\n",
	       "a.yaml:4: trigger: expected", "bad trigger");
	/* The store keeps at most SHP_STORE_WINDOW_MAX events per counter:
	 * a larger threshold would load and never fire. */
	refuse("automation:\n  - name: x\n    match: y\n    trigger: 300 in 10m\n"
	       "    actions: [{suspend: 1m}]\n",
	       "a.yaml:4: trigger: at most 256 events", "a threshold the store cannot count");
	{
		struct shp_rules *r = load("automation:\n  - name: x\n    match: y\n"
					   "    trigger: 256 in 10m\n    actions: [{suspend: 1m}]\n");

		tap_ok(r != NULL, "a threshold of 256 loads: %s", r == NULL ? errbuf : "ok");
		shp_rules_unref(&r);
	}
	refuse("automation:\n  - name: x\n    match: y\n    code: 42\n    actions: [{suspend: 1m}]\n",
	       "a.yaml:4: code: expected", "bad code");
	refuse("automation:\n  - {name: 'two words', match: y, actions: [{suspend: 1m}]}\n",
	       "a.yaml:2: automation rule name \"two words\": use 1 to 64 letters", "a rule name");
	refuse("pools:\n  \"p\\n1\": {sources: [default]}\n", "a.yaml:2: pool name \"p 1\"",
	       "a pool name with a line break");
	refuse("sources:\n  's 1': {address: 10.0.0.1}\n", "a.yaml:2: source name \"s 1\"",
	       "a source name");
	refuse("providers:\n  'g{x}': {match: .g.com}\n", "a.yaml:2: provider name \"g{x}\"",
	       "a provider name");
	refuse("automation:\n  - match: y\n    actions: [{suspend: 1m}]\n",
	       "a.yaml:2: an automation rule needs a name", "rule without a name");
	refuse("automation:\n  - {name: x, match: y, actions: [{suspend: 1m}]}\n"
	       "  - {name: x, match: z, actions: [{suspend: 1m}]}\n",
	       "a.yaml:3: automation rule name x is already used (a.yaml:2, global)",
	       "duplicate rule name in one file");
	refuse("automation:\n  - {name: x, match: y, actions: [{max_connections: {value: 2}}]}\n",
	       "a.yaml:2: max_connections: \"for\" is missing", "action argument missing");
	refuse("sources:\n  s1: {address: 10.0.0.300}\n",
	       "a.yaml:2: address: \"10.0.0.300\" is not an IPv4 or IPv6 address", "bad address");
	refuse("sources:\n  s1: {address: 10.0.0.1}\n  s2: {address: 10.0.0.1}\n",
	       "a.yaml:3: source s2: address 10.0.0.1 is already source s1's", "duplicate address");
	refuse("sources:\n  s1: {address: 10.0.0.1}\npools:\n  p: {sources: [s1, s9]}\n",
	       "a.yaml:4: pool p: unknown source \"s9\"", "unknown source in a pool");
	refuse("sources:\n  s1: {address: 10.0.0.1}\npools:\n  p: {sources: [{name: s1, weight: 0}]}\n",
	       "a.yaml:4: pool p: weight", "zero weight");
	refuse("pool_selection:\n  - {user: a, pool: nope}\n",
	       "a.yaml:2: pool_selection: unknown pool \"nope\"", "unknown pool in the selection");
	refuse("pool_selection:\n  - {listener: 'localhost:25', pool: default}\n",
	       "a.yaml:2: listener: \"localhost:25\" is not ip:port", "a listener by name");
	refuse("pool_header: 'X Pool:'\n", "a.yaml:1: pool_header: \"X Pool:\" is not a header",
	       "a bad pool header");
	refuse("default_pool: nope\n", "a.yaml:1: default_pool: unknown pool \"nope\"",
	       "unknown default pool");
	refuse("default_pool: \"two\\nlines\"\n", "a.yaml:1: default_pool: unknown pool \"two lines\"",
	       "a line break in a quoted value stays on the error's line");
	refuse("sources:\n  s1:\n    address: 10.0.0.1\n    warmup: {start: 2026-02-30, schedule: {default: [1]}}\n",
	       "a.yaml:4: start: expected a date", "bad warm-up date");
	refuse("sources:\n  s1: {address: 10.0.0.1, ehlo: \"a.example\\r\\nMAIL FROM:<x>\"}\n",
	       "a.yaml:2: ehlo: \"a.example  MAIL FROM:<x>\" is not a host name",
	       "an EHLO name with CRLF in it");
	refuse("sources:\n  s1: {ehlo: s1.example}\n", "a.yaml:2: source s1: address is missing",
	       "a source without an address");
	refuse("sources:\n  s1:\n    address: 10.0.0.1\n    warmup:\n      start: 2026-02-03\n      schedule: {nosuch: [1]}\n",
	       "a.yaml:6: source s1: warm-up schedule for unknown provider \"nosuch\"",
	       "warm-up for an unknown provider");
	refuse("providers:\n  p: {max_connections: 3}\n", "a.yaml:2: provider p has no match",
	       "provider without match");
	refuse("providers:\n  p: {match: ['bad host!']}\n", "a.yaml:2: match: \"bad host!\"",
	       "bad suffix");
	refuse("sites:\n  'a.example,,b!': {}\n", "a.yaml:2: site \"a.example,,b!\"", "bad site key");
	refuse("domains:\n  'not a domain': {}\n", "a.yaml:2: \"not a domain\" is not a domain",
	       "bad domain key");
	refuse("health:\n  backoff: [1m, never]\n", "a.yaml:2: not a duration", "bad backoff");
	refuse("group_by: mx\n", "a.yaml:1: group_by: expected site or domain", "bad group_by");
	refuse("- a\n- b\n", "a.yaml:1: a rules file is a map", "a list at the top");
	refuse("a: [\n", "a.yaml:", "YAML syntax error");
	refuse("default: &x {max_connections: 1}\n", "a.yaml:1: anchors", "anchors refused");

	/* Every error, not only the first; and in the second file. */
	{
		struct shp_rules *r = load3("default:\n  max_connections: x\n  tls: y\n",
					    "default:\n  bogus: 1\n", NULL);

		tap_ok(r == NULL && strstr(errbuf, "a.yaml:2: ") != NULL &&
			       strstr(errbuf, "\na.yaml:3: ") != NULL && strstr(errbuf, "\nb.yaml:2: ") != NULL,
		       "every error of every file, one per line");
	}
	/* A long list of errors ends with a count of what did not fit. */
	{
		char *big = malloc(200000), small[600];
		size_t n = 0;
		struct shp_rules_src s;
		struct shp_rules *r = NULL;

		n += (size_t)sprintf(big + n, "default:\n");
		for (unsigned i = 0; i < 2000; i++)
			n += (size_t)sprintf(big + n, "  bad%u: 1\n", i);
		s = (struct shp_rules_src){ "big.yaml", big, n };
		tap_ok(shp_rules_load_mem(&r, false, &s, 1, small, sizeof(small)) < 0 &&
			       strstr(small, "more errors") != NULL && strlen(small) < sizeof(small),
		       "errors beyond the buffer are counted");
		free(big);
	}
	{
		/* A file name longer than one error line (a deep path): the
		 * message is cut, never written past its buffer. */
		char name[1200];
		static const char text[] = "default:\n  bad: 1\n";
		struct shp_rules_src s;
		struct shp_rules *r = NULL;

		memset(name, 'd', sizeof(name) - 1);
		name[sizeof(name) - 1] = '\0';
		s = (struct shp_rules_src){ name, text, sizeof(text) - 1 };
		errbuf[0] = '\0';
		tap_ok(shp_rules_load_mem(&r, false, &s, 1, errbuf, sizeof(errbuf)) < 0 &&
			       strncmp(errbuf, "ddd", 3) == 0 && strlen(errbuf) < sizeof(errbuf),
		       "an error in a file with a very long name is cut, not overrun (%zu bytes)",
		       strlen(errbuf));
	}
}

static void test_files(void)
{
	const char *dir = getenv("TMPDIR");
	char good[512], bad[512], *files[3];
	struct shp_rules *r = NULL;
	FILE *f;

	snprintf(good, sizeof(good), "%s/test_shp_rules_good.yaml", dir ? dir : "/tmp");
	snprintf(bad, sizeof(bad), "%s/test_shp_rules_bad.yaml", dir ? dir : "/tmp");
	f = fopen(good, "w");
	fputs("domains:\n  x.example: {max_connections: 2}\n", f);
	fclose(f);
	f = fopen(bad, "w");
	fputs("domains:\n  x.example: {max_connections: two}\n", f);
	fclose(f);
	files[0] = good;
	tap_ok(shp_rules_load(&r, true, (const char *const *)files, 1, errbuf, sizeof(errbuf)) == 0 &&
		       shp_rules_domain_alone(r, "x.example"),
	       "built-in rules and a file (%s)", errbuf);
	shp_rules_unref(&r);
	files[1] = bad;
	files[2] = "/nonexistent/rules.yaml";
	tap_ok(shp_rules_load(&r, true, (const char *const *)files, 3, errbuf, sizeof(errbuf)) < 0 &&
		       strstr(errbuf, "test_shp_rules_bad.yaml:2: max_connections") != NULL &&
		       strstr(errbuf, "/nonexistent/rules.yaml:0: No such file") != NULL,
	       "errors name the files, a missing file at line 0");
	unlink(good);
	unlink(bad);
}

static void test_builtin(void)
{
	struct shp_rules *r = NULL;
	const char *gmail[] = { "aspmx.l.google.com", "alt1.aspmx.l.google.com" },
		   *ms[] = { "example-com.mail.protection.outlook.com" },
		   *hotmail[] = { "hotmail-com.olc.protection.outlook.com" },
		   *yahoo[] = { "mta5.am0.yahoodns.net" };
	const struct shp_auto_rule *out[8];
	const struct shp_provider *p;
	struct shp_limits l;
	char sum[256];
	unsigned n;

	tap_ok(shp_rules_load(&r, true, NULL, 0, errbuf, sizeof(errbuf)) == 0,
	       "the built-in rules load with no error (%s)", errbuf);
	if (r == NULL)
		return;
	shp_rules_summary(r, sum, sizeof(sum));
	tap_ok(strstr(sum, "providers") != NULL, "summary: %s", sum);
	p = shp_rules_provider(r, gmail, 2);
	tap_ok(p != NULL && strcmp(shp_provider_name(p), "gmail") == 0, "gmail by its MX");
	/* As the delivery engine hands a multi-line reply: "CODE " and the
	 * lines (each still starting with the enhanced code) joined. */
	n = shp_rules_match(r, p, "4.7.28", "421 4.7.28 [192.0.2.1 15] Gmail has detected an unusual"
			    " rate of 4.7.28 unsolicited mail originating from your IP address. To"
			    " 4.7.28 protect our users from spam ... - gsmtp", out, 8);
	tap_ok(n >= 1 && out[0]->ar_actions[0].sa_kind == SHP_ACT_RAMP &&
		       out[0]->ar_actions[0].sa_duration_us >= 600000000ull,
	       "gmail 4.7.28: ramp after at least 10 minutes");
	p = shp_rules_provider(r, ms, 1);
	tap_ok(p != NULL && strcmp(shp_provider_name(p), "microsoft-365") == 0, "Microsoft 365");
	shp_rules_limits(r, p, NULL, NULL, NULL, 20, 0, &l);
	tap_ok(l.sl_max_connections > 0 && l.sl_max_connections <= 500, "Microsoft under 500");
	n = shp_rules_match(r, p, "4.7.650", "451 4.7.650 The mail server [192.0.2.1] has been"
			    " temporarily rate limited due to IP reputation.", out, 8);
	tap_ok(n >= 1 && out[0]->ar_actions[0].sa_kind == SHP_ACT_SUSPEND, "4.7.650 suspends");
	p = shp_rules_provider(r, hotmail, 1);
	tap_ok(p != NULL && strcmp(shp_provider_name(p), "microsoft-consumer") == 0, "outlook.com");
	p = shp_rules_provider(r, yahoo, 1);
	n = shp_rules_match(r, p, "4.7.0", "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily"
			    " deferred due to unexpected volume or user complaints", out, 8);
	tap_ok(p != NULL && n >= 1 && out[0]->ar_actions[0].sa_kind == SHP_ACT_SUSPEND &&
		       out[0]->ar_actions[0].sa_duration_us == 1800000000ull,
	       "yahoo TSS04 suspends for 30 minutes");
	n = shp_rules_match(r, p, "4.7.0", "421 4.7.0 [TSS09] All messages from 192.0.2.1 will be"
			    " permanently deferred; Retrying will NOT succeed.", out, 8);
	tap_ok(n == 1 && out[0]->ar_actions[0].sa_duration_us == 4 * 3600000000ull,
	       "yahoo TSS09 rests the path four hours");
	p = shp_rules_provider(r, gmail, 2);
	n = shp_rules_match(r, p, "4.7.0", "421 4.7.0 [192.0.2.1 15] Our system has detected an"
			    " unusual rate of 4.7.0 unsolicited mail originating from your IP address.",
			    out, 8);
	tap_ok(n >= 1 && out[0]->ar_actions[0].sa_kind == SHP_ACT_RAMP,
	       "gmail's older 4.7.0 unusual-rate text ramps too");
	n = shp_rules_match(r, p, "4.2.1", "450 4.2.1 The user you are trying to contact is receiving"
			    " mail at a rate that prevents additional messages from being delivered.",
			    out, 8);
	tap_ok(n == 0, "gmail 4.2.1 (one mailbox's rate) fires no rule");
	{
		static const char *const many[][2] = {
			{ "4.7.0", "421 4.7.0 Too many connections from your IP" },
			{ "4.3.2", "421 4.3.2 Too many concurrent SMTP connections; please try again later." },
			{ "", "421 Too many simultaneous connections" },
			{ "4.7.0", "421 4.7.0 mx.example: too many open sessions" },
			{ "4.3.2", "421 4.3.2 The maximum number of concurrent server connections has"
				   " exceeded a limit, closing transmission channel" },
		};

		for (unsigned i = 0; i < sizeof(many) / sizeof(many[0]); i++) {
			n = shp_rules_match(r, NULL, many[i][0], many[i][1], out, 8);
			tap_ok(n == 1 && out[0]->ar_actions[0].sa_kind == SHP_ACT_MAX_CONNECTIONS,
			       "\"%s\" lowers max_connections", many[i][1]);
		}
		n = shp_rules_match(r, NULL, "5.7.1", "550 5.7.1 too many connections, blocked", out, 8);
		tap_ok(n == 0, "a 5xx \"too many connections\" is a refusal, not a throttle");
	}
	shp_rules_limits(r, NULL, NULL, NULL, NULL, 20, 0, &l);
	tap_ok(l.sl_max_connections == 20, "the built-in rules leave ringmta.conf's default alone");
	{
		static const char *const known[][2] = {
			{ "gmail-smtp-in.l.google.com", "gmail" },
			{ "mx1.googlemail.com", "gmail" },
			{ "outlook-com.olc.protection.outlook.com", "microsoft-consumer" },
			{ "contoso-com.mail.protection.outlook.com", "microsoft-365" },
			{ "mx-aol.mail.gm0.yahoodns.net", "yahoo" },
			{ "mx01.mail.icloud.com", "icloud" },
			{ "mx1a1.comcast.net", "comcast" },
			{ "mx00.gmx.net", "gmx-webde" },
			{ "mx-ha03.web.de", "gmx-webde" },
			{ "smtp-in.orange.fr", "orange" },
			{ "mxs.mail.ru", "mailru" },
			{ "mx.yandex.ru", "yandex" },
			{ "mx.example.com", NULL },
		};

		for (unsigned i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
			const char *h[1] = { known[i][0] };
			const char *name = shp_provider_name(shp_rules_provider(r, h, 1));

			tap_ok(known[i][1] == NULL ? name == NULL : name != NULL && strcmp(name, known[i][1]) == 0,
			       "built-in: %s is %s", known[i][0], known[i][1] ? known[i][1] : "no provider");
		}
	}
	shp_rules_unref(&r);
}

static void test_holder(void)
{
	struct shp_rules *a = load("{}"), *b = load("group_by: domain\n"), *got;
	struct shp_holder *h = NULL;

	tap_ok(shp_holder_new(&h, a) == 0, "holder");
	got = shp_holder_get(h);
	tap_ok(got == a, "get returns the rules");
	shp_holder_set(h, b);
	tap_ok(!shp_rules_domain_alone(got, "x.example"), "an old reference stays usable");
	shp_rules_unref(&got);
	got = shp_holder_get(h);
	tap_ok(got == b && shp_rules_domain_alone(got, "x.example"), "set swaps");
	shp_rules_unref(&got);
	{
		struct shp_holder_cache c = { NULL, 0 };
		struct shp_rules *x = shp_holder_get_cached(h, &c), *y;

		tap_ok(x == b && c.hc_rules == b, "a cache's first look takes the current rules");
		y = shp_holder_get_cached(h, &c);
		tap_ok(y == b, "the cached rules while nothing was swapped");
		shp_rules_unref(&y);
		shp_holder_set(h, load("group_by: site\n"));
		y = shp_holder_get_cached(h, &c);
		tap_ok(y != b && c.hc_rules == y && !shp_rules_domain_alone(y, "x.example"),
		       "after a swap the cache takes the new rules");
		tap_ok(shp_rules_domain_alone(x, "x.example"),
		       "a reference taken before the swap stays usable");
		shp_rules_unref(&x);
		shp_rules_unref(&y);
		shp_holder_cache_drop(&c);
		tap_ok(c.hc_rules == NULL, "drop gives the cached reference back");
	}
	shp_holder_free(&h);
	tap_ok(h == NULL, "free");
}

int main(void)
{
	test_merge();
	test_providers();
	test_site_name();
	test_automation();
	test_match_threads();
	test_match_limit();
	test_pools();
	test_errors();
	test_files();
	test_builtin();
	test_holder();
	return tap_done();
}
