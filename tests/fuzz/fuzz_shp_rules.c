/*
 * fuzz_shp_rules: libFuzzer target for the YAML tree (yaml_tree_parse) and
 * the shaping rules loader (shp_rules_load_mem) with every query on what
 * loads.
 *
 * Input layout: byte 0 is flags (bit 0: load the built-in rules first);
 * the rest is one or two rules files, split at the first "\n#--\n". The
 * whole rest is also parsed alone as a YAML tree and walked.
 *
 * Whatever the input: no crash, no leak, an error text that is one or
 * more "name:line: " lines, and queries that never fail on what loaded.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/yaml_tree.h"
#include "core/shaping/shp_rules.h"
#include "core/shaping/shp_rules_admin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(bool cond)
{
	if (!cond)
		abort();
}

static unsigned fuzz_walk(const struct yaml_node *n, unsigned depth)
{
	unsigned count = 1;

	fuzz_check(depth <= YAML_TREE_MAX_DEPTH && n->yn_line >= 1);
	if (n->yn_kind == YAML_SCALAR) {
		fuzz_check(strlen(n->yn_str) == n->yn_len);
		return 1;
	}
	for (unsigned i = 0; i < n->yn_n; i++) {
		if (n->yn_kind == YAML_MAP) {
			fuzz_check(n->yn_keys[i]->yn_kind == YAML_SCALAR);
			fuzz_check(yaml_map_get(n, n->yn_keys[i]->yn_str) != NULL);
		}
		count += fuzz_walk(n->yn_items[i], depth + 1);
	}
	return count;
}

/* Each line of err starts with "name:digits: ". */
static void fuzz_check_err(const char *err)
{
	for (const char *l = err; *l != '\0';) {
		const char *c = strchr(l, ':'), *nl = strchr(l, '\n');

		if (strncmp(l, "... and ", 8) != 0 && strcmp(l, "out of memory") != 0) {
			fuzz_check(c != NULL && (nl == NULL || c < nl));
			c++;
			fuzz_check(*c >= '0' && *c <= '9');
			while (*c >= '0' && *c <= '9')
				c++;
			fuzz_check(c[0] == ':' && c[1] == ' ');
		}
		if (nl == NULL)
			break;
		l = nl + 1;
	}
}

static void fuzz_query(struct shp_rules *r)
{
	static const char *const mx[] = { "aspmx.l.google.com", "mx.big.example.",
					  "a.mail.protection.outlook.com", "MX1.EXAMPLE.NET" };
	static const char *const replies[][2] = {
		{ "4.7.28", "421 4.7.28 unusual rate" }, { "", "421 too many connections" },
		{ "5.7.1", "550-5.7.1 blocked" }, { "4.7.0", "421 4.7.0 [TSS04] deferred" },
	};
	const struct shp_auto_rule *out[16];
	struct shp_field_origin o[SHP_F_COUNT];
	struct shp_limits l;
	char site[512], sum[256];
	const struct shp_provider *p;

	for (unsigned k = 1; k <= 4; k++) {
		p = shp_rules_provider(r, mx, k);
		shp_site_name(mx, k, site, sizeof(site));
		shp_rules_explain(r, p, site, "x.example", "s1", 20, 5, &l, o);
		shp_rules_limits(r, p, site, NULL, NULL, 20, 0, &l);
		shp_rules_provider_limits(r, p, NULL, &l);
		(void)shp_rules_site_entry(r, site);
		for (unsigned i = 0; i < 4; i++) {
			unsigned n = shp_rules_match(r, p, replies[i][0], replies[i][1], out, 16);

			fuzz_check(n <= 16);
			for (unsigned j = 0; j < n; j++)
				fuzz_check(out[j]->ar_name != NULL && out[j]->ar_threshold >= 1);
		}
		fuzz_check(shp_rules_list(r, p, out, 16) <= 16);
	}
	(void)shp_rules_domain_alone(r, "x.example");
	for (unsigned i = 1; i < 10; i++)
		(void)shp_rules_health_backoff_us(r, i);
	fuzz_check(shp_rules_nsources(r) >= 1);
	for (unsigned i = 0; i < shp_rules_nsources(r); i++) {
		const struct shp_source *s = shp_rules_source(r, i);
		uint64_t start, len;

		fuzz_check(shp_rules_source_by_name(r, s->ss_name) == s);
		for (uint64_t t = 0; t < 4; t++)
			(void)shp_warmup_cap(s, t & 1 ? "gmail" : NULL, 1796083200ull + t * 90000,
					     &start, &len);
	}
	fuzz_check(shp_rules_pool_select(r, "u", "127.0.0.1:25", "x.example") != NULL);
	(void)shp_rules_pool_header(r);
	shp_rules_summary(r, sum, sizeof(sum));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char sep[] = "\n#--\n";
	struct shp_rules_src src[2];
	struct shp_rules *r = NULL;
	struct yaml_tree *t = NULL;
	const char *text, *cut;
	char err[4096];
	unsigned n = 1;
	bool builtin;

	if (size < 1)
		return 0;
	builtin = data[0] & 1;
	text = (const char *)data + 1;
	size--;
	if (yaml_tree_parse(&t, "t.yaml", text, size, err, sizeof(err)) == 0) {
		if (t->yt_root != NULL)
			fuzz_walk(t->yt_root, 0);
		yaml_tree_free(&t);
	} else {
		fuzz_check(strncmp(err, "t.yaml:", 7) == 0);
	}
	src[0] = (struct shp_rules_src){ "a.yaml", text, size };
	cut = memmem(text, size, sep, sizeof(sep) - 1);
	if (cut != NULL) {
		src[0].rs_len = (size_t)(cut - text);
		src[1] = (struct shp_rules_src){ "b.yaml", cut + sizeof(sep) - 1,
						 size - src[0].rs_len - (sizeof(sep) - 1) };
		n = 2;
	}
	if (shp_rules_load_mem(&r, builtin, src, n, err, sizeof(err)) < 0) {
		fuzz_check(r == NULL && err[0] != '\0');
		fuzz_check_err(err);
		return 0;
	}
	fuzz_query(r);
	shp_rules_unref(&r);
	return 0;
}
