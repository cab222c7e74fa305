/*
 * shp_rules_stub.c: TEMPORARY stand-in for the rules loader (branch
 * shaping-rules) so the delivery engine builds and runs before it lands:
 * it answers shp_rules.h for "no rules loaded" (r == NULL) only: sites
 * by MX rollup, no providers, ringmta.conf's limits, no automation rules,
 * the health backoff 1m doubling to 1h. Removed in the merge of
 * shaping-rules, whose shp_rules.c implements every call for real.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/shaping/shp_rules.h"

static int shp_stub_cmp(const void *a, const void *b)
{
	return strcasecmp(*(const char *const *)a, *(const char *const *)b);
}

size_t shp_site_name(const char *const *mx, unsigned nmx, char *out, size_t outlen)
{
	const char *v[64];
	size_t n = 0;

	if (nmx > 64)
		nmx = 64;
	memcpy(v, mx, nmx * sizeof(*v));
	qsort(v, nmx, sizeof(*v), shp_stub_cmp);
	for (unsigned i = 0; i < nmx; i++) {
		if (i > 0 && strcasecmp(v[i], v[i - 1]) == 0)
			continue;
		for (const char *p = v[i]; *p; p++) {
			if (n + 2 > outlen)
				return 0;
			out[n++] = (char)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p);
		}
		if (i + 1 < nmx) {
			if (n + 2 > outlen)
				return 0;
			out[n++] = ',';
		}
	}
	if (n > 0 && out[n - 1] == ',')
		n--;
	if (outlen == 0)
		return 0;
	out[n] = '\0';
	return n;
}

bool shp_rules_domain_alone(const struct shp_rules *r, const char *domain)
{
	return false;
}

const struct shp_provider *shp_rules_provider(const struct shp_rules *r, const char *const *mx,
					      unsigned nmx)
{
	return NULL;
}

const char *shp_provider_name(const struct shp_provider *p)
{
	return NULL;
}

void shp_rules_limits(const struct shp_rules *r, const struct shp_provider *p,
		      const char *site, const char *domain, const char *source,
		      uint32_t cfg_max_connections, uint32_t cfg_rate_per_s,
		      struct shp_limits *out)
{
	memset(out, 0, sizeof(*out));
	out->sl_max_connections = cfg_max_connections;
	out->sl_message_rate.sr_count = cfg_rate_per_s;
	out->sl_message_rate.sr_period_us = 1000000u;
	out->sl_tls = SHP_TLS_OPPORTUNISTIC;
}

void shp_rules_provider_limits(const struct shp_rules *r, const struct shp_provider *p,
			       const char *source, struct shp_limits *out)
{
	memset(out, 0, sizeof(*out));
}

unsigned shp_rules_match(const struct shp_rules *r, const struct shp_provider *p,
			 const char *ecode, const char *text,
			 const struct shp_auto_rule **out, unsigned max)
{
	return 0;
}

uint64_t shp_rules_health_backoff_us(const struct shp_rules *r, unsigned n)
{
	uint64_t s = 60;

	while (n-- > 1 && s < 3600)
		s *= 2;
	return (s < 3600 ? s : 3600) * 1000000u;
}

struct shp_rules *shp_rules_ref(struct shp_rules *r)
{
	return r;
}

void shp_rules_unref(struct shp_rules **r)
{
	*r = NULL;
}
