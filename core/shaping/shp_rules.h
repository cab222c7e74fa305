/*
 * shp_rules: the operator's traffic-shaping rules, read from YAML files
 * (core/base/yaml_tree.h): limits per egress path, providers, automation
 * rules that react to replies, sources, pools and warm-up schedules.
 *
 * This header is the contract between the rules loader (shp_rules*.c)
 * and the delivery engine that applies them (core/delivery, the shaping
 * state in core/shaping/shp_state*). It does no I/O after loading.
 *
 * Paths. Deliveries are grouped by site: the set of MX hosts a domain
 * resolves to, written as their lowercased names sorted and joined by
 * "," (shp_site_name), so every Google-hosted domain shares one site. A
 * domain that has its own "domains:" entry, or every domain when
 * "group_by: domain" is set, is a site of its own named after the domain.
 * Limits apply per (site, source); provider-wide limits per (provider,
 * source).
 *
 * Merge order of limits, later wins field by field: built-in defaults
 * (ringmta.conf's destination_concurrency_limit / destination_rate_limit),
 * the rules' "default:", the provider, the site, the domain, the source.
 * Files are read in the order given, the built-in file first (when on);
 * a later file's entry for the same name overrides field by field, and a
 * provider defined again keeps its place but takes the new fields.
 *
 * Ownership: a loaded struct shp_rules is immutable and reference
 * counted; every pointer it hands out (providers, rules, sources, pools,
 * strings) lives as long as the reference the caller holds. SIGHUP loads
 * a new one and swaps it in; holders of the old one keep it until they
 * drop their reference. Any thread.
 */
#ifndef RINGMTA_SHP_RULES_H
#define RINGMTA_SHP_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/shaping/shp_rate.h"

enum shp_tls {
	SHP_TLS_UNSET = 0,		/* not given at this level */
	SHP_TLS_OPPORTUNISTIC,		/* STARTTLS when offered (the default) */
	SHP_TLS_REQUIRED,		/* no STARTTLS or a failed one: defer 4.7.5 */
	SHP_TLS_DISABLED,		/* never STARTTLS */
};

/* The limits of one path. After shp_rules_limits() every field is set;
 * 0 means "no limit" for the counts and rates. Where no level of the
 * rules sets them, the timeouts are 0 and sl_tls is SHP_TLS_UNSET: then
 * ringmta.conf decides (smtp_connect_timeout, smtp_idle_timeout,
 * smtp_tls_policy), as it does for sl_max_messages_per_connection 0
 * (smtp_reuse_limit). */
struct shp_limits {
	uint32_t sl_max_connections;		/* open at once */
	struct shp_rate sl_connection_rate;	/* new connections */
	struct shp_rate sl_message_rate;	/* transactions started */
	uint32_t sl_max_messages_per_connection;
	uint32_t sl_max_recipients;		/* per transaction */
	uint32_t sl_connect_timeout_ms;
	uint32_t sl_idle_timeout_ms;		/* an idle session is closed after */
	uint8_t sl_tls;				/* enum shp_tls */
};

/* What a rule does, for sa_duration_us from when it fires. */
enum shp_act_kind {
	SHP_ACT_SUSPEND = 1,		/* the (site, source): no new attempts */
	SHP_ACT_SUSPEND_SITE,		/* the site, for every source */
	SHP_ACT_MAX_CONNECTIONS,	/* lower (site, source) connections to sa_value */
	SHP_ACT_MESSAGE_RATE,		/* lower (site, source) rate to sa_rate */
	SHP_ACT_BOUNCE,			/* fail what is queued for the (site, source) */
	SHP_ACT_RAMP,			/* suspend, then reopen with one connection and
					 * add one per sa_value successful deliveries
					 * (Gmail's published 4.7.28 guidance) */
};

struct shp_action {
	uint8_t sa_kind;		/* enum shp_act_kind */
	uint32_t sa_value;
	struct shp_rate sa_rate;
	uint64_t sa_duration_us;
};

struct shp_auto_rule {
	const char *ar_name;		/* unique over all files */
	const char *ar_file;		/* where it is defined, for logs */
	unsigned ar_line;
	unsigned ar_threshold;		/* fires at the ar_threshold-th match ... */
	uint64_t ar_window_us;		/* ... within this window; 1 / 0 = at once */
	unsigned ar_nactions;
	const struct shp_action *ar_actions;
};

struct shp_provider;			/* opaque */

struct shp_warmup;			/* opaque; see shp_warmup_cap() */

struct shp_source {
	const char *ss_name;
	struct sockaddr_storage ss_addr;	/* AF_INET or AF_INET6, port 0 */
	socklen_t ss_addrlen;
	const char *ss_ehlo;			/* EHLO name; NULL = hostname */
	const struct shp_warmup *ss_warmup;	/* NULL = none */
};

struct shp_pool {
	const char *sp_name;
	unsigned sp_n;
	const struct shp_source *const *sp_sources;
	const uint32_t *sp_weights;		/* > 0 each */
	bool sp_spill;		/* warm-up cap reached: use another source of
				 * the pool (true) or wait (false) */
};

struct shp_rules;

/* Load the built-in rules (when builtin) and then files in order. On
 * error returns -1 with every problem found, one per line, each
 * "file:line: message" (the built-in file is named "<built-in>"). */
int shp_rules_load(struct shp_rules **r_r, bool builtin, const char *const *files,
		   unsigned nfiles, char *err, size_t errlen);
struct shp_rules *shp_rules_ref(struct shp_rules *r);
void shp_rules_unref(struct shp_rules **r);

/* The site name of an MX set (hosts in any order and case) into out.
 * Returns the length, or 0 when it does not fit. */
size_t shp_site_name(const char *const *mx, unsigned nmx, char *out, size_t outlen);
/* Whether domain is a site of its own (a "domains:" entry, or group_by). */
bool shp_rules_domain_alone(const struct shp_rules *r, const char *domain);

/* The provider of an MX set: the first provider, in rules order, one of
 * whose suffixes (".google.com") ends one of the hosts; NULL when none. */
const struct shp_provider *shp_rules_provider(const struct shp_rules *r, const char *const *mx,
					      unsigned nmx);
const char *shp_provider_name(const struct shp_provider *p);
/* The provider of that name; NULL when none (lives as long as r). */
const struct shp_provider *shp_rules_provider_by_name(const struct shp_rules *r,
						      const char *name);

/* The merged limits of a path. p, site, domain and source may be NULL
 * (level absent); cfg_* are ringmta.conf's built-in defaults. */
void shp_rules_limits(const struct shp_rules *r, const struct shp_provider *p,
		      const char *site, const char *domain, const char *source,
		      uint32_t cfg_max_connections, uint32_t cfg_rate_per_s,
		      struct shp_limits *out);
/* The provider-wide limits for a source: sl_max_connections and
 * sl_message_rate across all the provider's sites (0 = none). */
void shp_rules_provider_limits(const struct shp_rules *r, const struct shp_provider *p,
			       const char *source, struct shp_limits *out);

/* The automation rules matching a reply (ecode "4.7.28" or "", text the
 * whole reply on one line, starting with its basic code: "421 4.7.28
 * ..."): the provider's rules, then the global ones, in file order.
 * Patterns see "ECODE TEXT": the enhanced code, a space, and the text
 * without its leading "421 " / "421-" and without the enhanced code
 * repeated at its start or at the start of each continuation line (no
 * ecode: the text alone); a rule's "code:"
 * filter tests the leading basic code. Fills up to max and returns how
 * many it filled. */
unsigned shp_rules_match(const struct shp_rules *r, const struct shp_provider *p,
			 const char *ecode, const char *text,
			 const struct shp_auto_rule **out, unsigned max);

/* Health: the backoff of a site that fails every attempt, after the n-th
 * consecutive failed probe (n >= 1); from the rules' "health:" section. */
uint64_t shp_rules_health_backoff_us(const struct shp_rules *r, unsigned n);

/* Sources and pools. Without any "sources:" the rules have one source,
 * "default", bound to nothing (or smtp_bind_address), and one pool,
 * "default", holding it. */
unsigned shp_rules_nsources(const struct shp_rules *r);
const struct shp_source *shp_rules_source(const struct shp_rules *r, unsigned i);
const struct shp_source *shp_rules_source_by_name(const struct shp_rules *r, const char *name);
const struct shp_pool *shp_rules_pool(const struct shp_rules *r, const char *name);
/* The pool for a message by the rules' "pool_selection:" (first match
 * of user, listener "addr:port", sender domain), else the default pool.
 * user and listener may be NULL. Never NULL. */
const struct shp_pool *shp_rules_pool_select(const struct shp_rules *r, const char *user,
					     const char *listener, const char *sender_domain);
/* The header an injector may set to choose the pool (removed before
 * sending), e.g. "X-Ringmta-Pool"; NULL when the rules allow none. */
const char *shp_rules_pool_header(const struct shp_rules *r);

/* Warm-up: the cap on messages from source s to provider (its name, or
 * NULL for a site with no provider) in the period (day or hour) holding
 * now, with that period's start and length; UINT64_MAX when uncapped
 * (no schedule, or past its end). */
uint64_t shp_warmup_cap(const struct shp_source *s, const char *provider, uint64_t now_unix_s,
			uint64_t *period_start_r, uint64_t *period_len_r);

#endif
