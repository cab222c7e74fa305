/*
 * shp_rules_admin: what the operator's tools need of the rules beyond the
 * engine's contract (shp_rules.h): loading from memory (tests, fuzzing),
 * which level set each merged field (`ringmta shaping show`), and a one
 * line summary (the reload log line). Same ownership as shp_rules.h.
 */
#ifndef RINGMTA_SHP_RULES_ADMIN_H
#define RINGMTA_SHP_RULES_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#include "core/shaping/shp_rules.h"

/* The fields of struct shp_limits, in the order shown. */
enum shp_field {
	SHP_F_MAX_CONNECTIONS = 0,
	SHP_F_CONNECTION_RATE,
	SHP_F_MESSAGE_RATE,
	SHP_F_MAX_MESSAGES,
	SHP_F_MAX_RECIPIENTS,
	SHP_F_CONNECT_TIMEOUT,
	SHP_F_IDLE_TIMEOUT,
	SHP_F_TLS,
	SHP_F_COUNT
};

/* The YAML key of a field ("max_connections"). */
const char *shp_field_name(enum shp_field f);

/* One rules file in memory; rs_name is used in messages. */
struct shp_rules_src {
	const char *rs_name;
	const void *rs_buf;
	size_t rs_len;
};

/* As shp_rules_load(), from buffers (copied; the caller keeps them). */
int shp_rules_load_mem(struct shp_rules **r_r, bool builtin, const struct shp_rules_src *srcs,
		       unsigned n, char *err, size_t errlen);

/* The shipped rules (conf/shaping.yaml, embedded at build time). */
extern const char shp_builtin_yaml[];
extern const size_t shp_builtin_yaml_len;

/* Where a merged field came from. fo_level: "ringmta.conf", "default",
 * "provider", "site", "domain", "source", or NULL (no level set it: the
 * engine's own default applies). fo_name: the entry's name (NULL for the
 * first two); fo_file/fo_line: where the winning value was written. */
struct shp_field_origin {
	const char *fo_level;
	const char *fo_name;
	const char *fo_file;
	unsigned fo_line;
};

/* shp_rules_limits() that also says, per field, which level set it. */
void shp_rules_explain(const struct shp_rules *r, const struct shp_provider *p,
		       const char *site, const char *domain, const char *source,
		       uint32_t cfg_max_connections, uint32_t cfg_rate_per_s,
		       struct shp_limits *out, struct shp_field_origin origin[SHP_F_COUNT]);

/* The "sites:" entry that applies to a site name, or NULL: its name (the
 * normalized key) for display. */
const char *shp_rules_site_entry(const struct shp_rules *r, const char *site);

/* Every automation rule that applies to a site of provider p (NULL: none)
 * in the order shp_rules_match() tries them, disabled ones left out. Fills
 * up to max, returns how many it filled. */
unsigned shp_rules_list(const struct shp_rules *r, const struct shp_provider *p,
			const struct shp_auto_rule **out, unsigned max);

/* "3 providers, 2 sites, 1000 domains, 2 sources, 1 pool, 12 automation
 * rules" */
void shp_rules_summary(const struct shp_rules *r, char *out, size_t outlen);

#endif
