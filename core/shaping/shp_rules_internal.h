/*
 * shp_rules_internal.h: the loaded rules' private layout, shared by the
 * files of the rules loader only (shp_rules_load.c: files, sections and
 * the limits blocks; shp_rules_limits.c: sites, providers, the merge;
 * shp_rules_auto.c: automation and health; shp_rules_pool.c: sources,
 * pools, selection, warm-up). Nothing outside core/shaping/shp_rules*.c
 * includes it.
 *
 * Ownership: everything hangs off struct shp_rules and is freed by the
 * last shp_rules_unref(). The YAML trees live only while loading: names
 * that outlive it are copied into the rules' string arena (r_strs), file
 * names into r_files, and "where was this set" is a (file index, line)
 * pair, so a rules object costs what it holds, not what its YAML took.
 * Fields named *_node point into the trees and are valid while loading
 * only (errors found at the end of the load use them). Normalized names
 * (lowercased domains, suffixes, site names) are owned copies. Entries
 * that other entries or callers point to (providers, sources, pools,
 * rules) are allocated one by one so that growing their arrays never
 * moves them.
 */
#ifndef RINGMTA_SHP_RULES_INTERNAL_H
#define RINGMTA_SHP_RULES_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/base/yaml_tree.h"
#include "core/shaping/shp_rules.h"
#include "core/shaping/shp_rules_admin.h"

/* Where a value was written: r_files[sw_file], line sw_line. */
struct shp_where {
	uint32_t sw_line;
	uint16_t sw_file;
};

/* One limits block as written at one level: the fields it sets. */
struct shp_block {
	uint32_t sb_set;				/* 1u << enum shp_field */
	struct shp_limits sb_v;
	struct shp_where sb_from[SHP_F_COUNT];		/* where each was set */
};

struct shp_rule {
	struct shp_auto_rule ru_pub;
	struct shp_action *ru_actions;		/* owned; ru_pub.ar_actions */
	pcre2_code *ru_re;
	char ru_code[4];			/* "" = any; else e.g. "421", "4xx" */
	bool ru_disabled;			/* "disabled: yes" in a later file */
	uint16_t ru_file;			/* index in r_files */
	const struct yaml_node *ru_node;
	const char *ru_scope;			/* provider name, or NULL = global */
};

struct shp_rulelist {
	struct shp_rule **rl_v;
	unsigned rl_n, rl_cap;
};

struct shp_provider {
	const char *pv_name;
	const struct yaml_node *pv_node;	/* first definition */
	char **pv_match;			/* owned; lowercased, no leading or
						 * trailing dot */
	unsigned pv_nmatch;
	struct shp_block pv_limits;
	struct shp_block pv_wide;		/* provider_max_connections,
						 * provider_message_rate */
	struct shp_rulelist pv_rules;
};

/* A "sites:" or "domains:" entry. */
struct shp_named {
	const char *nm_name;			/* normalized, in the arena */
	bool nm_suffix;				/* sites: ".example.net" pattern */
	unsigned nm_order;			/* load order, for a stable merge */
	const struct yaml_node *nm_node;
	struct shp_block nm_b;
};

struct shp_named_set {
	struct shp_named *ns_v;
	unsigned ns_n, ns_cap;
};

struct shp_wsched {
	const char *ws_provider;		/* provider name or "default" */
	const struct yaml_node *ws_node;
	unsigned ws_n;
	uint64_t *ws_caps;			/* owned */
};

struct shp_warmup {
	uint64_t wu_start_s;			/* unix seconds, UTC midnight */
	uint64_t wu_period_s;			/* 86400 or 3600 */
	unsigned wu_n;
	struct shp_wsched *wu_v;		/* owned */
};

struct shp_src_def {
	struct shp_source sd_pub;
	const struct yaml_node *sd_node;
	const struct yaml_node *sd_addr_node;	/* NULL: no address given */
	struct shp_block sd_limits;
	struct shp_warmup *sd_warmup;		/* owned; sd_pub.ss_warmup */
};

struct shp_pool_def {
	struct shp_pool pd_pub;
	const struct yaml_node *pd_node;
	const struct yaml_node *pd_sources;	/* the list, resolved at the end */
	bool pd_spill_set;
	const struct shp_source **pd_srcs;	/* owned; pd_pub.sp_sources */
	uint32_t *pd_weights;			/* owned; pd_pub.sp_weights */
};

enum shp_sel_kind { SHP_SEL_USER = 1, SHP_SEL_LISTENER, SHP_SEL_SENDER_DOMAIN };

struct shp_select {
	uint8_t se_kind;
	const char *se_value;
	const char *se_pool_name;
	const struct yaml_node *se_node;
	const struct shp_pool *se_pool;		/* resolved at the end */
};

/* Strings that outlive the load, copied into chunks freed together. */
struct shp_strchunk {
	struct shp_strchunk *sc_next;
	size_t sc_used, sc_size;
	char sc_buf[];
};

struct shp_rules {
	int r_refs;				/* atomic */
	char **r_files;				/* owned: the file names, load order */
	unsigned r_nfiles;
	struct shp_strchunk *r_strs;		/* owned: the arena of names */
	bool r_group_by_domain;
	struct shp_block r_default;
	struct shp_provider **r_prov;
	unsigned r_nprov, r_capprov;
	struct shp_named_set r_sites;		/* sorted by name after loading */
	struct shp_named_set r_domains;		/* sorted by name after loading */
	struct shp_rulelist r_rules;		/* global automation */
	uint64_t *r_backoff;			/* owned */
	unsigned r_nbackoff;
	struct shp_src_def **r_src;
	unsigned r_nsrc, r_capsrc;
	struct shp_pool_def **r_pools;
	unsigned r_npools, r_cappools;
	struct shp_select *r_sel;		/* owned */
	unsigned r_nsel;
	const char *r_default_pool_name;
	const struct yaml_node *r_default_pool_node;
	const struct shp_pool *r_default_pool;
	const char *r_pool_header;
};

/* The loader's state: the rules being built, the trees of the files
 * read (freed at the end of the load), the errors so far. */
struct shp_ld {
	struct shp_rules *ld_r;
	struct yaml_tree **ld_trees;
	unsigned ld_ntrees;
	uint16_t ld_file;			/* index of the file being read */
	char *ld_err;
	size_t ld_errlen, ld_used;
	unsigned ld_nerr;
};

/* Append one "file:line: message" line (shp_rules_load.c). */
void shp_ld_err(struct shp_ld *ld, const struct yaml_node *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A yaml_tree helper failed with its own message in buf: record it. */
void shp_ld_err_msg(struct shp_ld *ld, const char *msg);
/* n must be a map / list / non-empty scalar, else an error naming what. */
bool shp_ld_want(struct shp_ld *ld, const struct yaml_node *n, enum yaml_kind kind,
		 const char *what);
/* Grow an array of pointers by one (NULL on out of memory, error set). */
bool shp_ld_grow(struct shp_ld *ld, void *arrp, unsigned n, unsigned *cap, size_t elem);
/* A zeroed entry of size bytes appended to an array of pointers to such
 * entries (providers, sources, pools); NULL on out of memory. */
void *shp_ld_append(struct shp_ld *ld, void *arrp, unsigned *n, unsigned *cap, size_t size);
/* A copy of s in the rules' arena (lives as long as the rules); NULL for
 * NULL or when memory runs out (an error is recorded). */
const char *shp_ld_str(struct shp_ld *ld, const char *s);
/* Where node n (of the file being read) was written. */
struct shp_where shp_ld_where(const struct shp_ld *ld, const struct yaml_node *n);
/* A provider, source, pool or rule name: letters, digits, '.', '_', '-'
 * (they go into log lines, metric labels and queue records); false after
 * an error naming what. */
bool shp_ld_name(struct shp_ld *ld, const struct yaml_node *n, const char *what);
/* Lowercase copy without leading/trailing dots (NULL: out of memory). */
char *shp_name_norm(const char *s, size_t len);

/* Limits blocks (shp_rules_load.c). Returns true when key is a limits
 * field (parsed into b, errors reported), false when it is not one. */
bool shp_block_field(struct shp_ld *ld, const struct yaml_node *key,
		     const struct yaml_node *val, struct shp_block *b);
void shp_block_merge(struct shp_block *to, const struct shp_block *from);
/* A rate value ("100/s burst 5") under key; false after an error. */
bool shp_rate_node(struct shp_ld *ld, const struct yaml_node *key, const struct yaml_node *val,
		   struct shp_rate *r_r);
/* A "sites:"/"domains:" section into set (shp_rules_limits.c). */
void shp_ld_named(struct shp_ld *ld, const struct yaml_node *map, struct shp_named_set *set,
		  bool sites);
void shp_ld_provider(struct shp_ld *ld, const struct yaml_node *key, const struct yaml_node *val);
/* After every file: sort and merge sites and domains. */
void shp_ld_named_finish(struct shp_ld *ld, struct shp_named_set *set);
/* After every file: each provider has a match list. */
void shp_ld_providers_finish(struct shp_ld *ld);
void shp_named_free(struct shp_named_set *set);
void shp_provider_free(struct shp_provider *p);

/* Automation (shp_rules_auto.c): rules of a list into rl (scope = the
 * provider's name or NULL), health, the end-of-load checks. */
void shp_ld_rules(struct shp_ld *ld, const struct yaml_node *list, struct shp_rulelist *rl,
		  const char *scope);
void shp_ld_health(struct shp_ld *ld, const struct yaml_node *map);
void shp_rulelist_free(struct shp_rulelist *rl);

/* Sources and pools (shp_rules_pool.c). */
void shp_ld_sources(struct shp_ld *ld, const struct yaml_node *map);
void shp_ld_pools(struct shp_ld *ld, const struct yaml_node *map);
void shp_ld_selection(struct shp_ld *ld, const struct yaml_node *list);
/* After every file: the implicit default source and pool, pool members,
 * the selection's pools, warm-up providers. */
void shp_ld_pool_finish(struct shp_ld *ld);
void shp_pool_free_all(struct shp_rules *r);


#endif
