/*
 * shp_rules_load.c: reading the rules files: the built-in file and the
 * operator's in order, each top-level section handed to its loader, every
 * error collected as "file:line: message" (loading goes on after an error
 * so that --check reports them all), the limits blocks, the string arena
 * and the reference count. See shp_rules.h for the format's merge rules and
 * shp_rules_internal.h for the layout.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/shaping/shp_rules_internal.h"

static const char *const shp_field_names[SHP_F_COUNT] = {
	[SHP_F_MAX_CONNECTIONS] = "max_connections",
	[SHP_F_CONNECTION_RATE] = "connection_rate",
	[SHP_F_MESSAGE_RATE] = "message_rate",
	[SHP_F_MAX_MESSAGES] = "max_messages_per_connection",
	[SHP_F_MAX_RECIPIENTS] = "max_recipients",
	[SHP_F_CONNECT_TIMEOUT] = "connect_timeout",
	[SHP_F_IDLE_TIMEOUT] = "idle_timeout",
	[SHP_F_TLS] = "tls",
};

const char *shp_field_name(enum shp_field f)
{
	return f < SHP_F_COUNT ? shp_field_names[f] : "?";
}

void shp_ld_err(struct shp_ld *ld, const struct yaml_node *n, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int k;

	k = snprintf(line, sizeof(line), "%s:%u: ", n != NULL ? n->yn_file : "?",
		     n != NULL ? n->yn_line : 0);
	/* A file name longer than the line (a deep path) fills it: the
	 * message is cut there, not written past it. */
	if (k >= 0 && (size_t)k < sizeof(line)) {
		va_start(ap, fmt);
		vsnprintf(line + k, sizeof(line) - (size_t)k, fmt, ap);
		va_end(ap);
	}
	shp_ld_err_msg(ld, line);
}

void shp_ld_err_msg(struct shp_ld *ld, const char *msg)
{
	size_t len = strlen(msg);

	ld->ld_nerr++;
	if (ld->ld_err == NULL || ld->ld_errlen == 0)
		return;
	/* Keep room for the "and N more" line that the end adds. */
	if (ld->ld_used + len + 2 + 48 > ld->ld_errlen)
		return;
	if (ld->ld_used > 0)
		ld->ld_err[ld->ld_used++] = '\n';
	/* One error, one line: a value quoted in the message may hold line
	 * breaks (a YAML scalar can) or other controls. */
	for (size_t i = 0; i < len; i++)
		ld->ld_err[ld->ld_used + i] = (unsigned char)msg[i] < 0x20 ? ' ' : msg[i];
	ld->ld_used += len;
	ld->ld_err[ld->ld_used] = '\0';
}

bool shp_ld_want(struct shp_ld *ld, const struct yaml_node *n, enum yaml_kind kind,
		 const char *what)
{
	static const char *const kinds[] = { "a value", "a map", "a list" };

	if (n->yn_kind == kind && (kind != YAML_SCALAR || n->yn_len > 0))
		return true;
	/* An empty map or list written as nothing ("providers:") is fine. */
	if (kind != YAML_SCALAR && n->yn_kind == YAML_SCALAR && n->yn_len == 0 && !n->yn_quoted)
		return false;
	shp_ld_err(ld, n, "%s: expected %s, found %s", what, kinds[kind],
		   n->yn_kind == YAML_SCALAR ? (n->yn_len ? "a value" : "an empty value") :
		   kinds[n->yn_kind]);
	return false;
}

bool shp_ld_grow(struct shp_ld *ld, void *arrp, unsigned n, unsigned *cap, size_t elem)
{
	void **arr = arrp;
	unsigned ncap;
	void *p;

	if (n < *cap)
		return true;
	ncap = *cap ? *cap * 2 : 8;
	p = realloc(*arr, (size_t)ncap * elem);
	if (p == NULL) {
		shp_ld_err(ld, NULL, "out of memory");
		return false;
	}
	memset((char *)p + (size_t)*cap * elem, 0, (size_t)(ncap - *cap) * elem);
	*arr = p;
	*cap = ncap;
	return true;
}

#define SHP_STRCHUNK 16384u

const char *shp_ld_str(struct shp_ld *ld, const char *s)
{
	struct shp_rules *r = ld->ld_r;
	struct shp_strchunk *c = r->r_strs;
	size_t n;
	char *d;

	if (s == NULL)
		return NULL;
	n = strlen(s) + 1;
	if (c == NULL || c->sc_size - c->sc_used < n) {
		size_t size = n > SHP_STRCHUNK ? n : SHP_STRCHUNK;

		c = malloc(sizeof(*c) + size);
		if (c == NULL) {
			shp_ld_err(ld, NULL, "out of memory");
			return NULL;
		}
		c->sc_used = 0;
		c->sc_size = size;
		c->sc_next = r->r_strs;
		r->r_strs = c;
	}
	d = c->sc_buf + c->sc_used;
	memcpy(d, s, n);
	c->sc_used += n;
	return d;
}

struct shp_where shp_ld_where(const struct shp_ld *ld, const struct yaml_node *n)
{
	return (struct shp_where){ .sw_line = n->yn_line, .sw_file = ld->ld_file };
}

void *shp_ld_append(struct shp_ld *ld, void *arrp, unsigned *n, unsigned *cap, size_t size)
{
	void ***arr = arrp;
	void *e;

	if (!shp_ld_grow(ld, arrp, *n, cap, sizeof(void *)))
		return NULL;
	e = calloc(1, size);
	if (e == NULL) {
		shp_ld_err(ld, NULL, "out of memory");
		return NULL;
	}
	(*arr)[(*n)++] = e;
	return e;
}

bool shp_ld_name(struct shp_ld *ld, const struct yaml_node *n, const char *what)
{
	if (n->yn_kind == YAML_SCALAR && n->yn_len > 0 && n->yn_len <= 64 &&
	    strspn(n->yn_str, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
		    n->yn_len)
		return true;
	shp_ld_err(ld, n, "%s name \"%s\": use 1 to 64 letters, digits, '.', '_' and '-'", what,
		   n->yn_kind == YAML_SCALAR ? n->yn_str : "");
	return false;
}

char *shp_name_norm(const char *s, size_t len)
{
	char *o;
	size_t k = 0;

	while (len > 0 && *s == '.') {
		s++;
		len--;
	}
	while (len > 0 && s[len - 1] == '.')
		len--;
	o = malloc(len + 1);
	if (o == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++)
		o[k++] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
	o[k] = '\0';
	return o;
}

static bool shp_block_u32(struct shp_ld *ld, const struct yaml_node *key,
			  const struct yaml_node *val, uint32_t *v_r)
{
	char err[256];
	uint64_t v;

	if (yaml_scalar_u64(val, &v, err, sizeof(err)) < 0) {
		shp_ld_err(ld, val, "%s: expected a whole number", key->yn_str);
		return false;
	}
	if (v > UINT32_MAX) {
		shp_ld_err(ld, val, "%s: %llu is too large", key->yn_str, (unsigned long long)v);
		return false;
	}
	*v_r = (uint32_t)v;
	return true;
}

static bool shp_block_ms(struct shp_ld *ld, const struct yaml_node *key,
			 const struct yaml_node *val, uint32_t *ms_r)
{
	char err[256];
	uint64_t us;

	if (yaml_scalar_duration(val, &us, err, sizeof(err)) < 0) {
		shp_ld_err(ld, val, "%s: not a duration: \"%s\" (e.g. \"30s\", \"5m\")", key->yn_str,
			   val->yn_kind == YAML_SCALAR ? val->yn_str : "");
		return false;
	}
	if (us < 1000 || us / 1000 > UINT32_MAX) {
		shp_ld_err(ld, val, "%s: %s is out of range (1ms to 49 days)", key->yn_str,
			   val->yn_str);
		return false;
	}
	*ms_r = (uint32_t)(us / 1000);
	return true;
}

bool shp_rate_node(struct shp_ld *ld, const struct yaml_node *key, const struct yaml_node *val,
		   struct shp_rate *r_r)
{
	char err[256];

	if (!shp_ld_want(ld, val, YAML_SCALAR, key->yn_str))
		return false;
	if (shp_rate_parse(val->yn_str, r_r, err, sizeof(err)) < 0) {
		shp_ld_err(ld, val, "%s: %s", key->yn_str, err);
		return false;
	}
	return true;
}

bool shp_block_field(struct shp_ld *ld, const struct yaml_node *key,
		     const struct yaml_node *val, struct shp_block *b)
{
	struct shp_limits *v = &b->sb_v;
	unsigned f;
	bool ok = false;

	for (f = 0; f < SHP_F_COUNT; f++)
		if (strcmp(key->yn_str, shp_field_names[f]) == 0)
			break;
	if (f == SHP_F_COUNT)
		return false;
	switch ((enum shp_field)f) {
	case SHP_F_MAX_CONNECTIONS:
		ok = shp_block_u32(ld, key, val, &v->sl_max_connections);
		break;
	case SHP_F_CONNECTION_RATE:
		ok = shp_rate_node(ld, key, val, &v->sl_connection_rate);
		break;
	case SHP_F_MESSAGE_RATE:
		ok = shp_rate_node(ld, key, val, &v->sl_message_rate);
		break;
	case SHP_F_MAX_MESSAGES:
		ok = shp_block_u32(ld, key, val, &v->sl_max_messages_per_connection);
		break;
	case SHP_F_MAX_RECIPIENTS:
		ok = shp_block_u32(ld, key, val, &v->sl_max_recipients);
		break;
	case SHP_F_CONNECT_TIMEOUT:
		ok = shp_block_ms(ld, key, val, &v->sl_connect_timeout_ms);
		break;
	case SHP_F_IDLE_TIMEOUT:
		ok = shp_block_ms(ld, key, val, &v->sl_idle_timeout_ms);
		break;
	case SHP_F_TLS:
		if (val->yn_kind == YAML_SCALAR && strcmp(val->yn_str, "opportunistic") == 0)
			v->sl_tls = SHP_TLS_OPPORTUNISTIC;
		else if (val->yn_kind == YAML_SCALAR && strcmp(val->yn_str, "required") == 0)
			v->sl_tls = SHP_TLS_REQUIRED;
		else if (val->yn_kind == YAML_SCALAR && strcmp(val->yn_str, "disabled") == 0)
			v->sl_tls = SHP_TLS_DISABLED;
		else
			shp_ld_err(ld, val, "tls: expected opportunistic, required or disabled");
		ok = v->sl_tls != SHP_TLS_UNSET;
		break;
	case SHP_F_COUNT:
		break;
	}
	if (ok) {
		b->sb_set |= 1u << f;
		b->sb_from[f] = shp_ld_where(ld, val);
	}
	return true;
}

void shp_block_merge(struct shp_block *to, const struct shp_block *from)
{
	const struct shp_limits *s = &from->sb_v;
	struct shp_limits *d = &to->sb_v;

	for (unsigned f = 0; f < SHP_F_COUNT; f++) {
		if (!(from->sb_set & (1u << f)))
			continue;
		to->sb_set |= 1u << f;
		to->sb_from[f] = from->sb_from[f];
		switch ((enum shp_field)f) {
		case SHP_F_MAX_CONNECTIONS: d->sl_max_connections = s->sl_max_connections; break;
		case SHP_F_CONNECTION_RATE: d->sl_connection_rate = s->sl_connection_rate; break;
		case SHP_F_MESSAGE_RATE: d->sl_message_rate = s->sl_message_rate; break;
		case SHP_F_MAX_MESSAGES:
			d->sl_max_messages_per_connection = s->sl_max_messages_per_connection;
			break;
		case SHP_F_MAX_RECIPIENTS: d->sl_max_recipients = s->sl_max_recipients; break;
		case SHP_F_CONNECT_TIMEOUT: d->sl_connect_timeout_ms = s->sl_connect_timeout_ms; break;
		case SHP_F_IDLE_TIMEOUT: d->sl_idle_timeout_ms = s->sl_idle_timeout_ms; break;
		case SHP_F_TLS: d->sl_tls = s->sl_tls; break;
		case SHP_F_COUNT: break;
		}
	}
}

static void shp_ld_default(struct shp_ld *ld, const struct yaml_node *map)
{
	struct shp_block b = { 0 };

	if (!shp_ld_want(ld, map, YAML_MAP, "default"))
		return;
	for (unsigned i = 0; i < map->yn_n; i++)
		if (!shp_block_field(ld, map->yn_keys[i], map->yn_items[i], &b))
			shp_ld_err(ld, map->yn_keys[i], "unknown key \"%s\" in default: (a limits"
				   " block: max_connections, connection_rate, message_rate,"
				   " max_messages_per_connection, max_recipients, connect_timeout,"
				   " idle_timeout, tls)", map->yn_keys[i]->yn_str);
	shp_block_merge(&ld->ld_r->r_default, &b);
}

static void shp_ld_scalar_opt(struct shp_ld *ld, const struct yaml_node *v, const char *what,
			      const char **to_r)
{
	if (shp_ld_want(ld, v, YAML_SCALAR, what))
		*to_r = v->yn_str;
}

/* One file's top level. */
static void shp_ld_file(struct shp_ld *ld, const struct yaml_node *root)
{
	struct shp_rules *r = ld->ld_r;

	if (root == NULL)
		return;
	if (root->yn_kind != YAML_MAP) {
		shp_ld_err(ld, root, "a rules file is a map of sections (default:, providers:, ...)");
		return;
	}
	for (unsigned i = 0; i < root->yn_n; i++) {
		const struct yaml_node *k = root->yn_keys[i], *v = root->yn_items[i];
		const char *key = k->yn_str;

		if (strcmp(key, "default") == 0) {
			shp_ld_default(ld, v);
		} else if (strcmp(key, "group_by") == 0) {
			if (v->yn_kind == YAML_SCALAR && strcmp(v->yn_str, "site") == 0)
				r->r_group_by_domain = false;
			else if (v->yn_kind == YAML_SCALAR && strcmp(v->yn_str, "domain") == 0)
				r->r_group_by_domain = true;
			else
				shp_ld_err(ld, v, "group_by: expected site or domain");
		} else if (strcmp(key, "providers") == 0) {
			if (shp_ld_want(ld, v, YAML_MAP, key))
				for (unsigned j = 0; j < v->yn_n; j++)
					shp_ld_provider(ld, v->yn_keys[j], v->yn_items[j]);
		} else if (strcmp(key, "sites") == 0) {
			if (shp_ld_want(ld, v, YAML_MAP, key))
				shp_ld_named(ld, v, &r->r_sites, true);
		} else if (strcmp(key, "domains") == 0) {
			if (shp_ld_want(ld, v, YAML_MAP, key))
				shp_ld_named(ld, v, &r->r_domains, false);
		} else if (strcmp(key, "sources") == 0) {
			if (shp_ld_want(ld, v, YAML_MAP, key))
				shp_ld_sources(ld, v);
		} else if (strcmp(key, "pools") == 0) {
			if (shp_ld_want(ld, v, YAML_MAP, key))
				shp_ld_pools(ld, v);
		} else if (strcmp(key, "pool_selection") == 0) {
			if (shp_ld_want(ld, v, YAML_SEQ, key) ||
			    (v->yn_kind == YAML_SCALAR && v->yn_len == 0))
				shp_ld_selection(ld, v);
		} else if (strcmp(key, "default_pool") == 0) {
			shp_ld_scalar_opt(ld, v, key, &r->r_default_pool_name);
			r->r_default_pool_node = v;
		} else if (strcmp(key, "pool_header") == 0) {
			const char *h = NULL;

			shp_ld_scalar_opt(ld, v, key, &h);
			if (h != NULL && h[strspn(h, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
						    "0123456789-_")] != '\0')
				shp_ld_err(ld, v, "pool_header: \"%s\" is not a header field name", h);
			else if (h != NULL)
				r->r_pool_header = strcmp(h, "none") == 0 ? NULL : shp_ld_str(ld, h);
		} else if (strcmp(key, "automation") == 0) {
			if (shp_ld_want(ld, v, YAML_SEQ, key))
				shp_ld_rules(ld, v, &r->r_rules, NULL);
		} else if (strcmp(key, "health") == 0) {
			if (shp_ld_want(ld, v, YAML_MAP, key))
				shp_ld_health(ld, v);
		} else {
			shp_ld_err(ld, k, "unknown section \"%s\" (expected default, group_by,"
				   " providers, sites, domains, sources, pools, pool_selection,"
				   " default_pool, pool_header, automation or health)", key);
		}
	}
}

/* Keep t until the end of the load and its name for good; ld_file
 * becomes its index. */
static bool shp_ld_keep(struct shp_ld *ld, struct yaml_tree *t)
{
	struct shp_rules *r = ld->ld_r;
	struct yaml_tree **v = realloc(ld->ld_trees, (ld->ld_ntrees + 1) * sizeof(*v));
	char **f = NULL, *name = NULL;

	if (v != NULL)
		ld->ld_trees = v;
	if (v != NULL && r->r_nfiles < UINT16_MAX)
		f = realloc(r->r_files, (r->r_nfiles + 1) * sizeof(*f));
	if (f != NULL)
		r->r_files = f;
	if (f != NULL)
		name = strdup(t->yt_file);
	if (name == NULL) {
		yaml_tree_free(&t);
		shp_ld_err(ld, NULL, "out of memory (or too many files)");
		return false;
	}
	ld->ld_trees[ld->ld_ntrees++] = t;
	ld->ld_file = (uint16_t)r->r_nfiles;
	r->r_files[r->r_nfiles++] = name;
	return true;
}

/* Load one buffer (path NULL) or file into the rules. */
static void shp_ld_one(struct shp_ld *ld, const char *name, const char *path, const void *buf,
		       size_t len)
{
	struct yaml_tree *t = NULL;
	char err[512];
	int rc;

	if (path != NULL)
		rc = yaml_tree_load(&t, path, err, sizeof(err));
	else
		rc = yaml_tree_parse(&t, name, buf, len, err, sizeof(err));
	if (rc < 0) {
		shp_ld_err_msg(ld, err);
		return;
	}
	if (shp_ld_keep(ld, t))
		shp_ld_file(ld, t->yt_root);
}

static int shp_ld_end(struct shp_ld *ld, struct shp_rules **r_r)
{
	struct shp_rules *r = ld->ld_r;

	shp_ld_named_finish(ld, &r->r_sites);
	shp_ld_named_finish(ld, &r->r_domains);
	shp_ld_providers_finish(ld);
	shp_ld_pool_finish(ld);
	/* Nothing points into the trees any more (the *_node fields are
	 * load-only). */
	for (unsigned i = 0; i < ld->ld_ntrees; i++)
		yaml_tree_free(&ld->ld_trees[i]);
	free(ld->ld_trees);
	ld->ld_trees = NULL;
	if (ld->ld_nerr > 0) {
		unsigned shown = 0;

		for (size_t i = 0; ld->ld_err != NULL && i < ld->ld_used; i++)
			shown += ld->ld_err[i] == '\n';
		if (ld->ld_used > 0)
			shown++;
		if (shown < ld->ld_nerr && ld->ld_err != NULL)
			snprintf(ld->ld_err + ld->ld_used, ld->ld_errlen - ld->ld_used,
				 "%s... and %u more errors", ld->ld_used ? "\n" : "",
				 ld->ld_nerr - shown);
		shp_rules_unref(&r);
		return -1;
	}
	*r_r = r;
	return 0;
}

static int shp_ld_begin(struct shp_ld *ld, struct shp_rules **r_r, bool builtin, char *err,
			size_t errlen)
{
	*r_r = NULL;
	memset(ld, 0, sizeof(*ld));
	ld->ld_err = err;
	ld->ld_errlen = errlen;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	ld->ld_r = calloc(1, sizeof(*ld->ld_r));
	if (ld->ld_r == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	ld->ld_r->r_refs = 1;
	if (builtin)
		shp_ld_one(ld, "<built-in>", NULL, shp_builtin_yaml, shp_builtin_yaml_len);
	return 0;
}

int shp_rules_load(struct shp_rules **r_r, bool builtin, const char *const *files,
		   unsigned nfiles, char *err, size_t errlen)
{
	struct shp_ld ld;

	if (shp_ld_begin(&ld, r_r, builtin, err, errlen) < 0)
		return -1;
	for (unsigned i = 0; i < nfiles; i++)
		shp_ld_one(&ld, files[i], files[i], NULL, 0);
	return shp_ld_end(&ld, r_r);
}

int shp_rules_load_mem(struct shp_rules **r_r, bool builtin, const struct shp_rules_src *srcs,
		       unsigned n, char *err, size_t errlen)
{
	struct shp_ld ld;

	if (shp_ld_begin(&ld, r_r, builtin, err, errlen) < 0)
		return -1;
	for (unsigned i = 0; i < n; i++)
		shp_ld_one(&ld, srcs[i].rs_name, NULL, srcs[i].rs_buf, srcs[i].rs_len);
	return shp_ld_end(&ld, r_r);
}

struct shp_rules *shp_rules_ref(struct shp_rules *r)
{
	if (r != NULL)
		__atomic_add_fetch(&r->r_refs, 1, __ATOMIC_RELAXED);
	return r;
}

void shp_rules_unref(struct shp_rules **rp)
{
	struct shp_rules *r = *rp;

	*rp = NULL;
	if (r == NULL || __atomic_sub_fetch(&r->r_refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	for (unsigned i = 0; i < r->r_nprov; i++)
		shp_provider_free(r->r_prov[i]);
	free(r->r_prov);
	shp_named_free(&r->r_sites);
	shp_named_free(&r->r_domains);
	shp_rulelist_free(&r->r_rules);
	free(r->r_backoff);
	shp_pool_free_all(r);
	for (unsigned i = 0; i < r->r_nfiles; i++)
		free(r->r_files[i]);
	free(r->r_files);
	while (r->r_strs != NULL) {
		struct shp_strchunk *c = r->r_strs;

		r->r_strs = c->sc_next;
		free(c);
	}
	free(r);
}

void shp_rules_summary(const struct shp_rules *r, char *out, size_t outlen)
{
	unsigned nrules = r->r_rules.rl_n;

	for (unsigned i = 0; i < r->r_nprov; i++)
		nrules += r->r_prov[i]->pv_rules.rl_n;
	snprintf(out, outlen, "%u providers, %u sites, %u domains, %u sources, %u pools,"
		 " %u automation rules", r->r_nprov, r->r_sites.ns_n, r->r_domains.ns_n, r->r_nsrc,
		 r->r_npools, nrules);
}
