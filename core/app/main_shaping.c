/*
 * main_shaping.c: "ringmta shaping show --mx HOST[,HOST...] [--domain D]
 * [--source S]", an operator's view of the shaping rules for one
 * destination: its site name, provider, the site and domain entries that
 * apply, the source's address, EHLO name and warm-up cap now, and every
 * merged limit with the level (and file:line) that set
 * it, then the provider-wide limits and the automation rules in the order
 * they are tried. It reads the rules files as --check does, not the
 * running daemon's copy.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/app/main.h"
#include "core/app/server.h"
#include "core/shaping/shp_rules_admin.h"
#include "core/shaping/shp_rules.h"

#define SHOW_MAX_MX 64

static void shaping_usage(FILE *f)
{
	fprintf(f,
		"usage: ringmta [-c FILE] [-o key=value]... shaping show --mx HOST[,HOST...]\n"
		"               [--domain DOMAIN] [--source SOURCE]\n"
		"Shows the site, provider and merged limits (with the level that set each)\n"
		"that the shaping rules give a destination: its MX hosts, and optionally the\n"
		"domain and the source (outbound address) sending to it.\n");
}

/* 30000 ms -> "30s", 1500 ms -> "1500ms". */
static void shaping_ms(uint32_t ms, char *out, size_t len)
{
	if (ms % 60000 == 0)
		snprintf(out, len, "%um", ms / 60000);
	else if (ms % 1000 == 0)
		snprintf(out, len, "%us", ms / 1000);
	else
		snprintf(out, len, "%ums", ms);
}

static const char *const shaping_tls_names[] = { "unset", "opportunistic", "required",
						 "disabled" };

/* The value of field f, or what ringmta.conf makes of it when unset. */
static void shaping_value(const struct config *cfg, const struct shp_limits *l, unsigned f,
			  char *out, size_t len)
{
	switch ((enum shp_field)f) {
	case SHP_F_MAX_CONNECTIONS:
		snprintf(out, len, l->sl_max_connections ? "%u" : "no limit", l->sl_max_connections);
		break;
	case SHP_F_CONNECTION_RATE:
		shp_rate_format(&l->sl_connection_rate, out, len);
		break;
	case SHP_F_MESSAGE_RATE:
		shp_rate_format(&l->sl_message_rate, out, len);
		break;
	case SHP_F_MAX_MESSAGES:
		if (l->sl_max_messages_per_connection)
			snprintf(out, len, "%u", l->sl_max_messages_per_connection);
		else
			snprintf(out, len, "%u (smtp_reuse_limit)", cfg->smtp_reuse_limit);
		break;
	case SHP_F_MAX_RECIPIENTS:
		snprintf(out, len, l->sl_max_recipients ? "%u" : "no limit", l->sl_max_recipients);
		break;
	case SHP_F_CONNECT_TIMEOUT:
		if (l->sl_connect_timeout_ms)
			shaping_ms(l->sl_connect_timeout_ms, out, len);
		else
			snprintf(out, len, "%us (smtp_connect_timeout)", cfg->smtp_connect_timeout);
		break;
	case SHP_F_IDLE_TIMEOUT:
		if (l->sl_idle_timeout_ms)
			shaping_ms(l->sl_idle_timeout_ms, out, len);
		else
			snprintf(out, len, "%us (smtp_idle_timeout)", cfg->smtp_idle_timeout);
		break;
	case SHP_F_TLS:
		if (l->sl_tls != SHP_TLS_UNSET && l->sl_tls < 4)
			snprintf(out, len, "%s", shaping_tls_names[l->sl_tls]);
		else
			snprintf(out, len, "%s (smtp_tls_policy)", cfg->smtp_tls_policy);
		break;
	case SHP_F_COUNT:
		out[0] = '\0';
		break;
	}
}

static void shaping_origin(const struct shp_field_origin *o, unsigned f, char *out, size_t len)
{
	if (o->fo_level == NULL && (f == SHP_F_CONNECTION_RATE || f == SHP_F_MAX_RECIPIENTS))
		snprintf(out, len, "(not set)");
	else if (o->fo_level == NULL)
		snprintf(out, len, "ringmta.conf");
	else if (o->fo_file == NULL)
		snprintf(out, len, "%s", o->fo_level);
	else if (o->fo_name == NULL)
		snprintf(out, len, "%s (%s:%u)", o->fo_level, o->fo_file, o->fo_line);
	else
		snprintf(out, len, "%s %s (%s:%u)", o->fo_level, o->fo_name, o->fo_file, o->fo_line);
}

static void shaping_rule_line(const struct shp_auto_rule *ar)
{
	printf("  %s (%s:%u)", ar->ar_name, ar->ar_file, ar->ar_line);
	if (ar->ar_threshold > 1)
		printf(", %u in %llus", ar->ar_threshold,
		       (unsigned long long)(ar->ar_window_us / 1000000));
	printf("\n");
}

/* The source's address and EHLO name, and its warm-up cap now for the
 * provider (or for sites without one). */
static void shaping_source(const struct shp_source *src, const struct shp_provider *p)
{
	const char *pname = p != NULL ? shp_provider_name(p) : NULL;
	uint64_t start = 0, len = 0, cap;
	char addr[INET6_ADDRSTRLEN] = "(none: smtp_bind_address)", when[32];
	time_t t;
	struct tm tm;

	if (src->ss_addrlen != 0)
		inet_ntop(src->ss_addr.ss_family, src->ss_addr.ss_family == AF_INET ?
			  (const void *)&((const struct sockaddr_in *)&src->ss_addr)->sin_addr :
			  (const void *)&((const struct sockaddr_in6 *)&src->ss_addr)->sin6_addr,
			  addr, sizeof(addr));
	printf("  address %s, ehlo %s\n", addr, src->ss_ehlo != NULL ? src->ss_ehlo : "(hostname)");
	cap = shp_warmup_cap(src, pname, (uint64_t)time(NULL), &start, &len);
	if (cap == UINT64_MAX) {
		printf("  warm-up: %s\n", src->ss_warmup != NULL ? "uncapped here (past the end of"
		       " its schedule, or none for this provider)" : "none");
		return;
	}
	t = (time_t)start;
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%MZ", &tm);
	printf("  warm-up: at most %llu messages to %s in the %s from %s\n",
	       (unsigned long long)cap, pname != NULL ? pname : "sites without a provider",
	       len == 3600 ? "hour" : "day", when);
}

static int shaping_show(const struct config *cfg, const char *mxarg, const char *domain,
			const char *source)
{
	const char *mx[SHOW_MAX_MX];
	struct shp_field_origin origin[SHP_F_COUNT];
	const struct shp_provider *p;
	struct shp_rules *r = NULL;
	struct shp_limits l;
	char *list, *save = NULL, site[2048], val[128], from[512];
	const char *entry, *path_site;
	unsigned nmx = 0;
	size_t errlen = 65536;
	char *err = malloc(errlen);
	bool alone;

	list = strdup(mxarg);
	if (err == NULL || list == NULL) {
		free(err);
		free(list);
		return 2;
	}
	for (char *t = strtok_r(list, ", ", &save); t != NULL && nmx < SHOW_MAX_MX;
	     t = strtok_r(NULL, ", ", &save))
		mx[nmx++] = t;
	if (server_rules_load(cfg, &r, err, errlen) < 0) {
		fprintf(stderr, "%s\n", err);
		free(err);
		free(list);
		return 2;
	}
	free(err);
	if (source != NULL && shp_rules_source_by_name(r, source) == NULL) {
		fprintf(stderr, "ringmta: shaping show: no source \"%s\" in the rules\n", source);
		shp_rules_unref(&r);
		free(list);
		return 2;
	}
	if (nmx == 0 || shp_site_name(mx, nmx, site, sizeof(site)) == 0) {
		fprintf(stderr, "ringmta: shaping show: --mx needs host names\n");
		shp_rules_unref(&r);
		free(list);
		return 2;
	}
	p = shp_rules_provider(r, mx, nmx);
	alone = domain != NULL && shp_rules_domain_alone(r, domain);
	/* A domain that is a site of its own is named after itself; its MX
	 * hosts still pick the provider. */
	path_site = alone ? domain : site;
	entry = shp_rules_site_entry(r, path_site);
	printf("site: %s%s\n", path_site, alone ? " (the domain is a site of its own)" : "");
	printf("provider: %s\n", p != NULL ? shp_provider_name(p) : "(none)");
	printf("site entry: %s\n", entry != NULL ? entry : "(none)");
	if (domain != NULL)
		printf("domain: %s\n", domain);
	printf("source: %s\n", source != NULL ? source : "(any)");
	if (source != NULL)
		shaping_source(shp_rules_source_by_name(r, source), p);
	shp_rules_explain(r, p, path_site, domain, source, cfg->destination_concurrency_limit,
			  cfg->destination_rate_limit, &l, origin);
	printf("limits:\n");
	for (unsigned f = 0; f < SHP_F_COUNT; f++) {
		shaping_value(cfg, &l, f, val, sizeof(val));
		shaping_origin(&origin[f], f, from, sizeof(from));
		printf("  %-28s %-32s %s\n", shp_field_name(f), val, from);
	}
	if (p != NULL) {
		shp_rules_provider_limits(r, p, source, &l);
		printf("provider-wide limits (%s, per source):\n", shp_provider_name(p));
		printf("  %-28s %s\n", "provider_max_connections",
		       l.sl_max_connections ? (snprintf(val, sizeof(val), "%u",
							l.sl_max_connections), val) : "no limit");
		shp_rate_format(&l.sl_message_rate, val, sizeof(val));
		printf("  %-28s %s\n", "provider_message_rate", val);
	}
	{
		const struct shp_auto_rule *rules[256];
		unsigned n = shp_rules_list(r, p, rules, 256);

		printf("automation rules, in the order they are tried:\n");
		for (unsigned i = 0; i < n; i++)
			shaping_rule_line(rules[i]);
		if (n == 0)
			printf("  (none)\n");
	}
	shp_rules_unref(&r);
	free(list);
	return 0;
}

int main_shaping(struct config *cfg, int argc, char **argv)
{
	const char *mx = NULL, *domain = NULL, *source = NULL;
	int rc;

	if (argc < 1 || strcmp(argv[0], "show") != 0) {
		shaping_usage(argc >= 1 && (strcmp(argv[0], "-h") == 0 ||
					    strcmp(argv[0], "--help") == 0) ? stdout : stderr);
		return argc >= 1 && argv[0][0] == '-' && argv[0][1] == 'h' ? 0 : 2;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--mx") == 0 && i + 1 < argc) {
			mx = argv[++i];
		} else if (strcmp(argv[i], "--domain") == 0 && i + 1 < argc) {
			domain = argv[++i];
		} else if (strcmp(argv[i], "--source") == 0 && i + 1 < argc) {
			source = argv[++i];
		} else if ((rc = main_verb_config_arg(cfg, argc, argv, &i)) != 0) {
			if (rc < 0)
				return 2;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			shaping_usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "ringmta: shaping show: unexpected argument '%s'\n", argv[i]);
			shaping_usage(stderr);
			return 2;
		}
	}
	if (mx == NULL) {
		shaping_usage(stderr);
		return 2;
	}
	return shaping_show(cfg, mx, domain, source);
}
