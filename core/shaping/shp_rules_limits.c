/*
 * shp_rules_limits.c: sites, providers and the merge of limits.
 *
 * A site is named by its MX hosts, lowercased, without trailing dots,
 * sorted, duplicates dropped, joined by ",". A "sites:" key matches a
 * site in one of two ways: a key that starts with "." is a suffix pattern
 * and applies to every site one of whose MX hosts ends with it (at a
 * label boundary; the longest pattern wins); any other key is a site name
 * (one host, or several joined by ",", in any order and case) and applies
 * to that exact MX set. An exact entry wins over every pattern.
 *
 * "sites:" and "domains:" are kept sorted (by kind, then name) so that a
 * lookup is a binary search, and a thousand domain overrides cost nothing
 * per delivery.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/shaping/shp_rules_internal.h"

/* Host length without trailing dots. */
static size_t shp_host_len(const char *h)
{
	size_t n = strlen(h);

	while (n > 0 && h[n - 1] == '.')
		n--;
	return n;
}

static int shp_host_cmp(const char *a, const char *b)
{
	size_t la = shp_host_len(a), lb = shp_host_len(b);
	int c = strncasecmp(a, b, la < lb ? la : lb);

	if (c != 0)
		return c;
	return la == lb ? 0 : la < lb ? -1 : 1;
}

size_t shp_site_name(const char *const *mx, unsigned nmx, char *out, size_t outlen)
{
	unsigned stackidx[32], *idx = stackidx;
	size_t used = 0;

	if (outlen == 0)
		return 0;
	if (nmx > 32 && (idx = malloc(nmx * sizeof(*idx))) == NULL)
		return 0;
	/* Insertion sort: MX sets are small. */
	for (unsigned i = 0; i < nmx; i++) {
		unsigned j = i;

		while (j > 0 && shp_host_cmp(mx[idx[j - 1]], mx[i]) > 0) {
			idx[j] = idx[j - 1];
			j--;
		}
		idx[j] = i;
	}
	for (unsigned i = 0; i < nmx; i++) {
		const char *h = mx[idx[i]];
		size_t hl = shp_host_len(h);

		if (i > 0 && shp_host_cmp(mx[idx[i - 1]], h) == 0)
			continue;
		if (used + (used > 0) + hl + 1 > outlen) {
			used = 0;
			break;
		}
		if (used > 0)
			out[used++] = ',';
		for (size_t k = 0; k < hl; k++)
			out[used++] = (h[k] >= 'A' && h[k] <= 'Z') ? (char)(h[k] - 'A' + 'a') : h[k];
	}
	out[used] = '\0';
	if (idx != stackidx)
		free(idx);
	return used;
}

/* host ends with suffix at a label boundary (or is it); suffix is
 * normalized (lowercase, no dots at either end). */
static bool shp_host_suffix(const char *host, size_t hl, const char *suffix)
{
	size_t sl = strlen(suffix);

	if (hl == sl)
		return strncasecmp(host, suffix, sl) == 0;
	return hl > sl && host[hl - sl - 1] == '.' && strncasecmp(host + hl - sl, suffix, sl) == 0;
}

/* A host name or suffix: letters, digits, '-', '_', '.'. */
static bool shp_name_ok(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' ||
		      *s == '_' || *s == '.'))
			return false;
	return true;
}

const struct shp_provider *shp_rules_provider_by_name(const struct shp_rules *r,
						      const char *name)
{
	for (unsigned i = 0; i < r->r_nprov; i++)
		if (strcmp(r->r_prov[i]->pv_name, name) == 0)
			return r->r_prov[i];
	return NULL;
}

const struct shp_provider *shp_rules_provider(const struct shp_rules *r, const char *const *mx,
					      unsigned nmx)
{
	for (unsigned i = 0; i < r->r_nprov; i++) {
		const struct shp_provider *p = r->r_prov[i];

		for (unsigned s = 0; s < p->pv_nmatch; s++)
			for (unsigned h = 0; h < nmx; h++)
				if (shp_host_suffix(mx[h], shp_host_len(mx[h]), p->pv_match[s]))
					return p;
	}
	return NULL;
}

const char *shp_provider_name(const struct shp_provider *p)
{
	return p != NULL ? p->pv_name : NULL;
}

static void shp_ld_match(struct shp_ld *ld, struct shp_provider *p, const struct yaml_node *v)
{
	const struct yaml_node *const *items = &v;
	unsigned n = 1;
	char **m;

	if (v->yn_kind == YAML_SEQ) {
		items = (const struct yaml_node *const *)v->yn_items;
		n = v->yn_n;
	}
	if (n == 0) {
		shp_ld_err(ld, v, "match: an empty list (MX host suffixes like \".google.com\")");
		return;
	}
	m = calloc(n, sizeof(*m));
	if (m == NULL) {
		shp_ld_err(ld, v, "out of memory");
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		if (!shp_ld_want(ld, items[i], YAML_SCALAR, "match"))
			continue;
		m[i] = shp_name_norm(items[i]->yn_str, items[i]->yn_len);
		if (m[i] != NULL && !shp_name_ok(m[i]))
			shp_ld_err(ld, items[i], "match: \"%s\" is not an MX host suffix"
				   " (like \".google.com\")", items[i]->yn_str);
	}
	/* A later file's match list replaces the earlier one. */
	for (unsigned i = 0; i < p->pv_nmatch; i++)
		free(p->pv_match[i]);
	free(p->pv_match);
	p->pv_match = m;
	p->pv_nmatch = 0;
	for (unsigned i = 0; i < n; i++)	/* drop the refused ones */
		if (m[i] != NULL)
			m[p->pv_nmatch++] = m[i];
}

void shp_ld_provider(struct shp_ld *ld, const struct yaml_node *key, const struct yaml_node *val)
{
	struct shp_rules *r = ld->ld_r;
	struct shp_provider *p = (struct shp_provider *)shp_rules_provider_by_name(r, key->yn_str);
	struct shp_block b = { 0 }, wide = { 0 };

	if (!shp_ld_name(ld, key, "provider"))
		return;
	if (strcmp(key->yn_str, "default") == 0) {
		shp_ld_err(ld, key, "\"default\" is not a provider name (it names the fallback"
			   " in warm-up schedules)");
		return;
	}
	if (!shp_ld_want(ld, val, YAML_MAP, key->yn_str) &&
	    !(val->yn_kind == YAML_SCALAR && val->yn_len == 0))
		return;
	if (p == NULL) {
		p = shp_ld_append(ld, &r->r_prov, &r->r_nprov, &r->r_capprov, sizeof(*p));
		if (p == NULL)
			return;
		p->pv_name = shp_ld_str(ld, key->yn_str);
		p->pv_node = key;
		if (p->pv_name == NULL) {
			ld->ld_r->r_nprov--;
			free(p);
			return;
		}
	}
	for (unsigned i = 0; val->yn_kind == YAML_MAP && i < val->yn_n; i++) {
		const struct yaml_node *k = val->yn_keys[i], *v = val->yn_items[i];

		if (shp_block_field(ld, k, v, &b))
			continue;
		if (strcmp(k->yn_str, "match") == 0) {
			shp_ld_match(ld, p, v);
		} else if (strcmp(k->yn_str, "provider_max_connections") == 0) {
			uint64_t n;
			char err[256];

			if (yaml_scalar_u64(v, &n, err, sizeof(err)) < 0 || n > UINT32_MAX) {
				shp_ld_err(ld, v, "provider_max_connections: expected a whole number");
			} else {
				wide.sb_v.sl_max_connections = (uint32_t)n;
				wide.sb_set |= 1u << SHP_F_MAX_CONNECTIONS;
				wide.sb_from[SHP_F_MAX_CONNECTIONS] = shp_ld_where(ld, v);
			}
		} else if (strcmp(k->yn_str, "provider_message_rate") == 0) {
			if (shp_rate_node(ld, k, v, &wide.sb_v.sl_message_rate)) {
				wide.sb_set |= 1u << SHP_F_MESSAGE_RATE;
				wide.sb_from[SHP_F_MESSAGE_RATE] = shp_ld_where(ld, v);
			}
		} else if (strcmp(k->yn_str, "automation") == 0) {
			if (shp_ld_want(ld, v, YAML_SEQ, "automation"))
				shp_ld_rules(ld, v, &p->pv_rules, p->pv_name);
		} else {
			shp_ld_err(ld, k, "unknown key \"%s\" in provider %s (expected match,"
				   " provider_max_connections, provider_message_rate, automation"
				   " or a limits field)", k->yn_str, p->pv_name);
		}
	}
	shp_block_merge(&p->pv_limits, &b);
	shp_block_merge(&p->pv_wide, &wide);
}

void shp_ld_providers_finish(struct shp_ld *ld)
{
	for (unsigned i = 0; i < ld->ld_r->r_nprov; i++) {
		const struct shp_provider *p = ld->ld_r->r_prov[i];

		if (p->pv_nmatch == 0)
			shp_ld_err(ld, p->pv_node, "provider %s has no match: list (MX host"
				   " suffixes)", p->pv_name);
	}
}

void shp_provider_free(struct shp_provider *p)
{
	for (unsigned i = 0; i < p->pv_nmatch; i++)
		free(p->pv_match[i]);
	free(p->pv_match);
	shp_rulelist_free(&p->pv_rules);
	free(p);
}

/* A "sites:" key into its normalized name; NULL after an error. */
static char *shp_site_key(struct shp_ld *ld, const struct yaml_node *k, bool *suffix_r)
{
	const char *hosts[64];
	char *copy, *save = NULL, *tok, *out = NULL;
	unsigned n = 0;
	bool ok = true;

	*suffix_r = k->yn_str[0] == '.';
	if (*suffix_r) {
		out = shp_name_norm(k->yn_str, k->yn_len);
		if (out != NULL && !shp_name_ok(out)) {
			shp_ld_err(ld, k, "site pattern \"%s\" is not a host suffix", k->yn_str);
			free(out);
			return NULL;
		}
		return out;
	}
	copy = strdup(k->yn_str);
	if (copy == NULL)
		return NULL;
	for (tok = strtok_r(copy, ", ", &save); tok != NULL && ok;
	     tok = strtok_r(NULL, ", ", &save)) {
		char *h = shp_name_norm(tok, strlen(tok));

		ok = n < 64 && h != NULL && shp_name_ok(h);
		free(h);
		if (ok)
			hosts[n++] = tok;
	}
	if (ok && n > 0 && (out = malloc(k->yn_len + 1)) != NULL &&
	    shp_site_name(hosts, n, out, k->yn_len + 1) == 0)
		ok = false;
	free(copy);
	if (!ok || n == 0) {
		shp_ld_err(ld, k, "site \"%s\" is neither a site name (MX hosts joined by \",\")"
			   " nor a suffix pattern (\".example.net\")", k->yn_str);
		free(out);
		return NULL;
	}
	return out;
}

void shp_ld_named(struct shp_ld *ld, const struct yaml_node *map, struct shp_named_set *set,
		  bool sites)
{
	for (unsigned i = 0; i < map->yn_n; i++) {
		const struct yaml_node *k = map->yn_keys[i], *v = map->yn_items[i];
		struct shp_named *nm;
		bool suffix = false;
		char *name;

		if (sites) {
			name = shp_site_key(ld, k, &suffix);
		} else {
			name = shp_name_norm(k->yn_str, k->yn_len);
			if (name != NULL && !shp_name_ok(name)) {
				shp_ld_err(ld, k, "\"%s\" is not a domain name", k->yn_str);
				free(name);
				name = NULL;
			}
		}
		if (name == NULL)
			continue;
		if (!shp_ld_grow(ld, &set->ns_v, set->ns_n, &set->ns_cap, sizeof(*set->ns_v))) {
			free(name);
			return;
		}
		nm = &set->ns_v[set->ns_n];
		*nm = (struct shp_named){ .nm_name = shp_ld_str(ld, name), .nm_suffix = suffix,
					  .nm_order = set->ns_n, .nm_node = k };
		free(name);
		if (nm->nm_name == NULL)
			return;
		set->ns_n++;
		if (!shp_ld_want(ld, v, YAML_MAP, k->yn_str))
			continue;
		for (unsigned j = 0; j < v->yn_n; j++)
			if (!shp_block_field(ld, v->yn_keys[j], v->yn_items[j], &nm->nm_b))
				shp_ld_err(ld, v->yn_keys[j], "unknown key \"%s\" in %s %s (a limits"
					   " block)", v->yn_keys[j]->yn_str, sites ? "site" : "domain",
					   k->yn_str);
	}
}

static int shp_named_cmp(const void *a, const void *b)
{
	const struct shp_named *x = a, *y = b;
	int c;

	if (x->nm_suffix != y->nm_suffix)
		return x->nm_suffix ? 1 : -1;
	c = strcmp(x->nm_name, y->nm_name);
	if (c != 0)
		return c;
	return x->nm_order < y->nm_order ? -1 : x->nm_order > y->nm_order;
}

void shp_ld_named_finish(struct shp_ld *ld, struct shp_named_set *set)
{
	unsigned out = 0;

	if (set->ns_n == 0)
		return;
	qsort(set->ns_v, set->ns_n, sizeof(*set->ns_v), shp_named_cmp);
	/* The same name again (a later file): merge, later fields win. */
	for (unsigned i = 0; i < set->ns_n; i++) {
		struct shp_named *cur = &set->ns_v[i];

		if (out > 0 && set->ns_v[out - 1].nm_suffix == cur->nm_suffix &&
		    strcmp(set->ns_v[out - 1].nm_name, cur->nm_name) == 0) {
			shp_block_merge(&set->ns_v[out - 1].nm_b, &cur->nm_b);
			continue;
		}
		set->ns_v[out++] = *cur;
	}
	set->ns_n = out;
	/* Give back what the doubling left unused (a large domains: map). */
	if (out < set->ns_cap) {
		struct shp_named *v = realloc(set->ns_v, out * sizeof(*v));

		if (v != NULL) {
			set->ns_v = v;
			set->ns_cap = out;
		}
	}
	(void)ld;
}

void shp_named_free(struct shp_named_set *set)
{
	free(set->ns_v);
	memset(set, 0, sizeof(*set));
}

/* The exact entry named name (normalized: lowercase, no trailing dot). */
static const struct shp_named *shp_named_find(const struct shp_named_set *set, const char *name)
{
	unsigned lo = 0, hi = set->ns_n;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		const struct shp_named *m = &set->ns_v[mid];
		int c = m->nm_suffix ? 1 : strcmp(m->nm_name, name);

		if (c == 0)
			return m;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Lowercase copy of s into buf without trailing dots; NULL if too long. */
static const char *shp_lower(const char *s, char *buf, size_t len)
{
	size_t n = shp_host_len(s);

	if (n >= len)
		return NULL;
	for (size_t i = 0; i < n; i++)
		buf[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
	buf[n] = '\0';
	return buf;
}

static const struct shp_named *shp_site_find(const struct shp_rules *r, const char *site)
{
	const struct shp_named *best = NULL;
	size_t bestlen = 0;
	char buf[1024];
	const char *s = shp_lower(site, buf, sizeof(buf)), *p;

	if (s == NULL)
		return NULL;
	best = shp_named_find(&r->r_sites, s);
	if (best != NULL)
		return best;
	/* Patterns sort last; try each against each host of the site. */
	for (unsigned i = r->r_sites.ns_n; i-- > 0 && r->r_sites.ns_v[i].nm_suffix;) {
		const struct shp_named *nm = &r->r_sites.ns_v[i];
		size_t sl = strlen(nm->nm_name);

		if (sl <= bestlen)
			continue;
		for (p = s; *p != '\0';) {
			size_t hl = strcspn(p, ",");

			if (shp_host_suffix(p, hl, nm->nm_name)) {
				best = nm;
				bestlen = sl;
				break;
			}
			p += hl + (p[hl] == ',');
		}
	}
	return best;
}

const char *shp_rules_site_entry(const struct shp_rules *r, const char *site)
{
	const struct shp_named *nm = site != NULL ? shp_site_find(r, site) : NULL;

	return nm != NULL ? nm->nm_name : NULL;
}

static const struct shp_named *shp_domain_find(const struct shp_rules *r, const char *domain)
{
	char buf[256];
	const char *d = shp_lower(domain, buf, sizeof(buf));

	return d != NULL ? shp_named_find(&r->r_domains, d) : NULL;
}

bool shp_rules_domain_alone(const struct shp_rules *r, const char *domain)
{
	return r->r_group_by_domain || shp_domain_find(r, domain) != NULL;
}

static void shp_apply(const struct shp_rules *r, const struct shp_block *b, const char *level,
		      const char *name, struct shp_block *acc, struct shp_field_origin *origin)
{
	shp_block_merge(acc, b);
	if (origin == NULL)
		return;
	for (unsigned f = 0; f < SHP_F_COUNT; f++) {
		if (!(b->sb_set & (1u << f)))
			continue;
		origin[f] = (struct shp_field_origin){
			.fo_level = level, .fo_name = name,
			.fo_file = r->r_files[b->sb_from[f].sw_file], .fo_line = b->sb_from[f].sw_line,
		};
	}
}

void shp_rules_explain(const struct shp_rules *r, const struct shp_provider *p,
		       const char *site, const char *domain, const char *source,
		       uint32_t cfg_max_connections, uint32_t cfg_rate_per_s,
		       struct shp_limits *out, struct shp_field_origin origin[SHP_F_COUNT])
{
	struct shp_block acc = { 0 };
	const struct shp_named *nm;
	const struct shp_source *src;

	acc.sb_v.sl_max_connections = cfg_max_connections;
	if (cfg_rate_per_s != 0)
		acc.sb_v.sl_message_rate = (struct shp_rate){ cfg_rate_per_s, 1000000, 0 };
	if (origin != NULL) {
		memset(origin, 0, SHP_F_COUNT * sizeof(*origin));
		origin[SHP_F_MAX_CONNECTIONS].fo_level = "ringmta.conf";
		origin[SHP_F_MESSAGE_RATE].fo_level = "ringmta.conf";
	}
	shp_apply(r, &r->r_default, "default", NULL, &acc, origin);
	if (p != NULL)
		shp_apply(r, &p->pv_limits, "provider", p->pv_name, &acc, origin);
	if (site != NULL && (nm = shp_site_find(r, site)) != NULL)
		shp_apply(r, &nm->nm_b, "site", nm->nm_name, &acc, origin);
	if (domain != NULL && (nm = shp_domain_find(r, domain)) != NULL)
		shp_apply(r, &nm->nm_b, "domain", nm->nm_name, &acc, origin);
	if (source != NULL && (src = shp_rules_source_by_name(r, source)) != NULL) {
		const struct shp_src_def *sd = (const struct shp_src_def *)src;

		shp_apply(r, &sd->sd_limits, "source", sd->sd_pub.ss_name, &acc, origin);
	}
	*out = acc.sb_v;
}

void shp_rules_limits(const struct shp_rules *r, const struct shp_provider *p,
		      const char *site, const char *domain, const char *source,
		      uint32_t cfg_max_connections, uint32_t cfg_rate_per_s,
		      struct shp_limits *out)
{
	shp_rules_explain(r, p, site, domain, source, cfg_max_connections, cfg_rate_per_s, out,
			  NULL);
}

void shp_rules_provider_limits(const struct shp_rules *r, const struct shp_provider *p,
			       const char *source, struct shp_limits *out)
{
	memset(out, 0, sizeof(*out));
	if (p == NULL)
		return;
	out->sl_max_connections = p->pv_wide.sb_v.sl_max_connections;
	out->sl_message_rate = p->pv_wide.sb_v.sl_message_rate;
	(void)r;
	(void)source;
}
