/*
 * dkim_table.c: the signing key table (see dkim_table.h): the file read
 * with inih through our own line reader (line numbers, overlong lines,
 * continuation lines), every key loaded at once, and the lookups. The
 * table owns its domains, their selectors and keys, and the overrides;
 * it is immutable once dkim_table_load() returns.
 */
#include "core/dkim/dkim_table.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config/config.h"

#define DKIM_TABLE_MSG_MAX 512

/* A [user NAME] or [listener ADDR:PORT] section: which domain signs. */
struct dkim_override {
	char *do_name;			/* user name, or canonical listener text */
	char *do_domain;		/* lower case; resolved at the end */
	const struct dkim_domain *do_dd;
	int do_line;
};

struct dkim_table {
	atomic_uint dt_refs;
	struct dkim_domain *dt_domains;	/* file order */
	unsigned dt_ndomains, dt_cap;
	unsigned *dt_hash;		/* open addressing: index + 1; 0 empty */
	unsigned dt_hash_size;		/* power of two */
	struct dkim_override *dt_users, *dt_listeners;
	unsigned dt_nusers, dt_nlisteners;
};

/* Per-section state while loading. */
enum dkim_sect { DKIM_SECT_NONE, DKIM_SECT_DOMAIN, DKIM_SECT_USER, DKIM_SECT_LISTENER };

struct dkim_load {
	struct dkim_table *dl_t;
	FILE *dl_fp;
	const char *dl_path;
	char *dl_dir;			/* the table's folder, for relative key paths */
	int dl_lineno;
	bool dl_indented;
	char dl_section[256];		/* the section being read, as written */
	enum dkim_sect dl_kind;
	int dl_sect_line;
	char dl_prev_key[32];		/* last key in this section */
	int dl_err_line;
	char *dl_err;
	size_t dl_errlen;
	/* the section's text lists, collected over continuation lines */
	char *dl_keys, *dl_headers;
	int dl_keys_line, dl_headers_line;
	bool dl_seen_canon, dl_seen_single, dl_seen_expire, dl_seen_url, dl_seen_mailto;
};

static void dkim_load_error(struct dkim_load *dl, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void dkim_load_error(struct dkim_load *dl, int line, const char *fmt, ...)
{
	char msg[DKIM_TABLE_MSG_MAX];
	va_list ap;

	if (dl->dl_err_line != 0)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	dl->dl_err_line = line;
	snprintf(dl->dl_err, dl->dl_errlen, "%s:%d: %s", dl->dl_path, line, msg);
}

static void dkim_domain_clear(struct dkim_domain *dd)
{
	free(dd->dd_name);
	for (unsigned i = 0; i < dd->dd_nsel; i++) {
		free(dd->dd_sel[i].ds_name);
		free(dd->dd_sel[i].ds_path);
		if (dd->dd_sel[i].ds_key != NULL)
			dkim_key_free(dd->dd_sel[i].ds_key);
	}
	free(dd->dd_sel);
	if (dd->dd_headers != NULL) {
		for (unsigned i = 0; dd->dd_headers[i] != NULL; i++)
			free((char *)dd->dd_headers[i]);
		free((void *)dd->dd_headers);
	}
	free(dd->dd_unsub_url);
	free(dd->dd_unsub_mailto);
}

static void dkim_table_free(struct dkim_table *t)
{
	for (unsigned i = 0; i < t->dt_ndomains; i++)
		dkim_domain_clear(&t->dt_domains[i]);
	free(t->dt_domains);
	free(t->dt_hash);
	for (unsigned i = 0; i < t->dt_nusers; i++) {
		free(t->dt_users[i].do_name);
		free(t->dt_users[i].do_domain);
	}
	for (unsigned i = 0; i < t->dt_nlisteners; i++) {
		free(t->dt_listeners[i].do_name);
		free(t->dt_listeners[i].do_domain);
	}
	free(t->dt_users);
	free(t->dt_listeners);
	free(t);
}

static uint32_t dkim_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)tolower((unsigned char)*s)) * 16777619u;
	return h;
}

static int dkim_table_index(struct dkim_table *t)
{
	unsigned size = 16;

	while (size < t->dt_ndomains * 2)
		size *= 2;
	t->dt_hash = calloc(size, sizeof(*t->dt_hash));
	if (t->dt_hash == NULL)
		return -1;
	t->dt_hash_size = size;
	for (unsigned i = 0; i < t->dt_ndomains; i++) {
		unsigned h = dkim_hash(t->dt_domains[i].dd_name) & (size - 1);

		while (t->dt_hash[h] != 0)
			h = (h + 1) & (size - 1);
		t->dt_hash[h] = i + 1;
	}
	return 0;
}

/* The domain entry for name (any case), during load (linear) or after. */
static const struct dkim_domain *dkim_table_lookup(const struct dkim_table *t, const char *name)
{
	if (t->dt_hash == NULL) {
		for (unsigned i = 0; i < t->dt_ndomains; i++)
			if (strcasecmp(t->dt_domains[i].dd_name, name) == 0)
				return &t->dt_domains[i];
		return NULL;
	}
	for (unsigned h = dkim_hash(name) & (t->dt_hash_size - 1); t->dt_hash[h] != 0;
	     h = (h + 1) & (t->dt_hash_size - 1)) {
		const struct dkim_domain *dd = &t->dt_domains[t->dt_hash[h] - 1];

		if (strcasecmp(dd->dd_name, name) == 0)
			return dd;
	}
	return NULL;
}

static void dkim_lower(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
}

/* A domain name as d= may carry it: letters, digits, '-', '.', '_'. */
static bool dkim_domain_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 253 || s[0] == '.' || s[n - 1] == '.' || strstr(s, "..") != NULL)
		return false;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '.' && *s != '_')
			return false;
	return true;
}

static char *dkim_append(char *list, const char *value)
{
	size_t old = list ? strlen(list) : 0;
	char *n = realloc(list, old + strlen(value) + 2);

	if (n == NULL) {
		free(list);
		return NULL;
	}
	if (old > 0)
		n[old++] = ' ';
	strcpy(n + old, value);
	return n;
}

/* "s1:path s2:path" (blanks or commas) into dd's selectors, keys loaded. */
static int dkim_load_keys(struct dkim_load *dl, struct dkim_domain *dd, const char *list,
			  int line)
{
	const char *p = list;

	while (*p != '\0') {
		char item[1024], path[2048], kerr[512];
		size_t n;
		const char *colon;
		struct dkim_selector *sel;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		n = strcspn(p, " \t,");
		if (n >= sizeof(item)) {
			dkim_load_error(dl, line, "keys: item too long");
			return -1;
		}
		memcpy(item, p, n);
		item[n] = '\0';
		p += n;
		colon = strchr(item, ':');
		if (colon == NULL || colon == item || colon[1] == '\0') {
			dkim_load_error(dl, line, "keys: '%s': expected selector:path", item);
			return -1;
		}
		for (const char *c = item; c < colon; c++)
			if (!isalnum((unsigned char)*c) && *c != '-' && *c != '.' && *c != '_') {
				dkim_load_error(dl, line, "keys: '%.*s': not a selector name",
						(int)(colon - item), item);
				return -1;
			}
		for (unsigned i = 0; i < dd->dd_nsel; i++)
			if (strncasecmp(dd->dd_sel[i].ds_name, item, (size_t)(colon - item)) == 0 &&
			    dd->dd_sel[i].ds_name[colon - item] == '\0') {
				dkim_load_error(dl, line, "keys: selector '%.*s' given twice",
						(int)(colon - item), item);
				return -1;
			}
		if (colon[1] == '/' || dl->dl_dir == NULL)
			snprintf(path, sizeof(path), "%s", colon + 1);
		else
			snprintf(path, sizeof(path), "%s/%s", dl->dl_dir, colon + 1);
		if (dd->dd_nsel == DKIM_TABLE_KEYS_MAX) {
			dkim_load_error(dl, line, "keys: at most %u per domain",
					DKIM_TABLE_KEYS_MAX);
			return -1;
		}
		sel = realloc(dd->dd_sel, (dd->dd_nsel + 1) * sizeof(*sel));
		if (sel == NULL) {
			dkim_load_error(dl, line, "out of memory");
			return -1;
		}
		dd->dd_sel = sel;
		sel = &dd->dd_sel[dd->dd_nsel];
		memset(sel, 0, sizeof(*sel));
		sel->ds_name = strndup(item, (size_t)(colon - item));
		sel->ds_path = strdup(path);
		dd->dd_nsel++;
		if (sel->ds_name == NULL || sel->ds_path == NULL) {
			dkim_load_error(dl, line, "out of memory");
			return -1;
		}
		dkim_lower(sel->ds_name);
		if (dkim_key_load(&sel->ds_key, path, kerr, sizeof(kerr)) < 0) {
			sel->ds_key = NULL;
			dkim_load_error(dl, line, "[%s] key %s: %s", dd->dd_name, sel->ds_name,
					kerr);
			return -1;
		}
	}
	if (dd->dd_nsel == 0) {
		dkim_load_error(dl, line, "keys: empty");
		return -1;
	}
	return 0;
}

/* "from:to:subject" (or blanks, commas) into a NULL-terminated list. */
static int dkim_load_headers(struct dkim_load *dl, struct dkim_domain *dd, const char *list,
			     int line)
{
	const char **h = NULL;
	unsigned n = 0;
	bool from = false;
	const char *p = list;

	while (*p != '\0') {
		size_t len;
		const char **nh;

		while (*p == ' ' || *p == '\t' || *p == ',' || *p == ':')
			p++;
		if (*p == '\0')
			break;
		len = strcspn(p, " \t,:");
		for (size_t i = 0; i < len; i++)
			if (p[i] <= 32 || p[i] >= 127) {
				dkim_load_error(dl, line, "headers: '%.*s': not a header name",
						(int)len, p);
				goto fail;
			}
		if (n == DKIM_TABLE_HEADERS_MAX) {
			dkim_load_error(dl, line, "headers: at most %u names",
					DKIM_TABLE_HEADERS_MAX);
			goto fail;
		}
		nh = realloc(h, (n + 2) * sizeof(*h));
		if (nh == NULL)
			goto oom;
		h = nh;
		h[n] = strndup(p, len);
		if (h[n] == NULL)
			goto oom;
		dkim_lower((char *)h[n]);
		if (strcmp(h[n], "from") == 0)
			from = true;
		h[++n] = NULL;
		p += len;
	}
	if (!from) {
		dkim_load_error(dl, line, "headers: must include from (RFC 6376 5.4)");
		goto fail;
	}
	dd->dd_headers = h;
	return 0;
oom:
	dkim_load_error(dl, line, "out of memory");
fail:
	for (unsigned i = 0; i < n; i++)
		free((char *)h[i]);
	free(h);
	return -1;
}

/* The section that ends: check it and turn its lists into selectors. */
static void dkim_load_end_section(struct dkim_load *dl)
{
	struct dkim_table *t = dl->dl_t;

	if (dl->dl_kind == DKIM_SECT_DOMAIN && dl->dl_err_line == 0) {
		struct dkim_domain *dd = &t->dt_domains[t->dt_ndomains - 1];

		if (dl->dl_keys == NULL)
			dkim_load_error(dl, dl->dl_sect_line, "[%s] has no keys", dd->dd_name);
		else if (dkim_load_keys(dl, dd, dl->dl_keys, dl->dl_keys_line) == 0 &&
			 dl->dl_headers != NULL)
			dkim_load_headers(dl, dd, dl->dl_headers, dl->dl_headers_line);
	} else if (dl->dl_kind != DKIM_SECT_NONE && dl->dl_kind != DKIM_SECT_DOMAIN &&
		   dl->dl_err_line == 0) {
		struct dkim_override *o = dl->dl_kind == DKIM_SECT_USER ?
					  &t->dt_users[t->dt_nusers - 1] :
					  &t->dt_listeners[t->dt_nlisteners - 1];

		if (o->do_domain == NULL)
			dkim_load_error(dl, dl->dl_sect_line, "[%s] needs domain =",
					dl->dl_section);
	}
	free(dl->dl_keys);
	free(dl->dl_headers);
	dl->dl_keys = dl->dl_headers = NULL;
	dl->dl_seen_canon = dl->dl_seen_single = dl->dl_seen_expire = false;
	dl->dl_seen_url = dl->dl_seen_mailto = false;
	dl->dl_prev_key[0] = '\0';
	dl->dl_kind = DKIM_SECT_NONE;
}

static int dkim_override_add(struct dkim_override **list, unsigned *n, const char *name,
			     int line)
{
	struct dkim_override *o = realloc(*list, (*n + 1) * sizeof(*o));

	if (o == NULL)
		return -1;
	*list = o;
	o = &o[*n];
	memset(o, 0, sizeof(*o));
	o->do_name = strdup(name);
	o->do_line = line;
	(*n)++;
	return o->do_name == NULL ? -1 : 0;
}

/* Canonical text of a listener address: "1.2.3.4:25", "[::1]:587". */
int dkim_table_listener_name(const struct sockaddr *sa, char *buf, size_t cap)
{
	char a[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &in->sin_addr, a, sizeof(a));
		return snprintf(buf, cap, "%s:%u", a, ntohs(in->sin_port));
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof(a));
		return snprintf(buf, cap, "[%s]:%u", a, ntohs(in6->sin6_port));
	}
	return snprintf(buf, cap, "?");
}

/* A new [section]: a domain, "user NAME" or "listener ADDR:PORT". */
static void dkim_load_section(struct dkim_load *dl, const char *section)
{
	struct dkim_table *t = dl->dl_t;
	char name[256], err[256];

	dkim_load_end_section(dl);
	snprintf(dl->dl_section, sizeof(dl->dl_section), "%s", section);
	dl->dl_sect_line = dl->dl_lineno;
	if (strncasecmp(section, "user ", 5) == 0 || strncasecmp(section, "listener ", 9) == 0) {
		bool user = tolower((unsigned char)section[0]) == 'u';
		const char *arg = section + (user ? 5 : 9);

		while (*arg == ' ')
			arg++;
		if (*arg == '\0') {
			dkim_load_error(dl, dl->dl_lineno, "[%s]: a name is missing", section);
			return;
		}
		if (!user) {
			struct sockaddr_storage ss;
			socklen_t len;
			char ltext[300];
			const char *slash = strchr(arg, '/');

			/* "addr:port/kind" as in listen: the kind is not part of it */
			snprintf(ltext, sizeof(ltext), "%.*s",
				 (int)(slash ? (size_t)(slash - arg) : strlen(arg)), arg);
			if (config_addrport_parse(ltext, &ss, &len, err, sizeof(err)) < 0) {
				dkim_load_error(dl, dl->dl_lineno, "[%s]: %s", section, err);
				return;
			}
			dkim_table_listener_name((struct sockaddr *)&ss, name, sizeof(name));
		} else {
			snprintf(name, sizeof(name), "%s", arg);
		}
		for (unsigned i = 0; i < (user ? t->dt_nusers : t->dt_nlisteners); i++)
			if (strcmp((user ? t->dt_users : t->dt_listeners)[i].do_name, name) == 0) {
				dkim_load_error(dl, dl->dl_lineno, "[%s] given twice", section);
				return;
			}
		if (dkim_override_add(user ? &t->dt_users : &t->dt_listeners,
				      user ? &t->dt_nusers : &t->dt_nlisteners, name,
				      dl->dl_lineno) < 0) {
			dkim_load_error(dl, dl->dl_lineno, "out of memory");
			return;
		}
		dl->dl_kind = user ? DKIM_SECT_USER : DKIM_SECT_LISTENER;
		return;
	}
	snprintf(name, sizeof(name), "%s", section);
	dkim_lower(name);
	if (!dkim_domain_ok(name)) {
		dkim_load_error(dl, dl->dl_lineno, "[%s]: not a domain name (or \"user NAME\","
				" \"listener ADDR:PORT\")", section);
		return;
	}
	if (dkim_table_lookup(t, name) != NULL) {
		dkim_load_error(dl, dl->dl_lineno, "[%s] given twice", section);
		return;
	}
	if (t->dt_ndomains == t->dt_cap) {
		unsigned cap = t->dt_cap ? t->dt_cap * 2 : 8;
		struct dkim_domain *d = realloc(t->dt_domains, cap * sizeof(*d));

		if (d == NULL) {
			dkim_load_error(dl, dl->dl_lineno, "out of memory");
			return;
		}
		t->dt_domains = d;
		t->dt_cap = cap;
	}
	struct dkim_domain *dd = &t->dt_domains[t->dt_ndomains++];

	memset(dd, 0, sizeof(*dd));
	dd->dd_name = strdup(name);
	dd->dd_hcanon = DKIM_CANON_RELAXED;
	dd->dd_bcanon = DKIM_CANON_RELAXED;
	dd->dd_headers = NULL;
	if (dd->dd_name == NULL) {
		dkim_load_error(dl, dl->dl_lineno, "out of memory");
		return;
	}
	dl->dl_kind = DKIM_SECT_DOMAIN;
}

static int dkim_canon_parse(const char *s, enum dkim_canon *c_r)
{
	if (strcasecmp(s, "relaxed") == 0)
		*c_r = DKIM_CANON_RELAXED;
	else if (strcasecmp(s, "simple") == 0)
		*c_r = DKIM_CANON_SIMPLE;
	else
		return -1;
	return 0;
}

static int dkim_bool_parse(const char *s, bool *b_r)
{
	if (strcasecmp(s, "yes") == 0 || strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0)
		*b_r = true;
	else if (strcasecmp(s, "no") == 0 || strcasecmp(s, "false") == 0 || strcmp(s, "0") == 0)
		*b_r = false;
	else
		return -1;
	return 0;
}

/* Seconds, with an optional s, m, h or d; at most a year. */
static int dkim_duration_parse(const char *s, uint32_t *r)
{
	char *end;
	unsigned long long v, unit;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	switch (*end) {
	case '\0': case 's': unit = 1; break;
	case 'm': unit = 60; break;
	case 'h': unit = 3600; break;
	case 'd': unit = 86400; break;
	default: return -1;
	}
	if (*end != '\0' && end[1] != '\0')
		return -1;
	/* Compared before multiplying: a product could wrap into range. */
	if (v > 366ull * 86400 / unit)
		return -1;
	v *= unit;
	*r = (uint32_t)v;
	return 0;
}

/* One "key = value" of a [domain] section. */
static void dkim_load_domain_key(struct dkim_load *dl, struct dkim_domain *dd, const char *name,
				 const char *value, bool continued)
{
	int line = dl->dl_lineno;

	if (strcmp(name, "keys") == 0 || strcmp(name, "headers") == 0) {
		bool keys = name[0] == 'k';
		char **list = keys ? &dl->dl_keys : &dl->dl_headers;

		if (*list != NULL && !continued) {
			dkim_load_error(dl, line, "%s given twice in [%s]", name, dd->dd_name);
			return;
		}
		if (*list == NULL)
			*(keys ? &dl->dl_keys_line : &dl->dl_headers_line) = line;
		*list = dkim_append(*list, value);
		if (*list == NULL)
			dkim_load_error(dl, line, "out of memory");
		return;
	}
	if (continued) {
		dkim_load_error(dl, line, "%s: only keys and headers continue on the next line",
				name);
		return;
	}
	if (strcmp(name, "canonicalization") == 0) {
		char h[16], b[16];
		const char *slash = strchr(value, '/');

		if (dl->dl_seen_canon)
			goto twice;
		dl->dl_seen_canon = true;
		snprintf(h, sizeof(h), "%.*s",
			 (int)(slash ? (size_t)(slash - value) : strlen(value)), value);
		snprintf(b, sizeof(b), "%s", slash ? slash + 1 : "simple");
		if (dkim_canon_parse(h, &dd->dd_hcanon) < 0 ||
		    dkim_canon_parse(b, &dd->dd_bcanon) < 0)
			dkim_load_error(dl, line, "canonicalization: '%s': expected header/body,"
					" each relaxed or simple", value);
	} else if (strcmp(name, "single_signature") == 0) {
		if (dl->dl_seen_single)
			goto twice;
		dl->dl_seen_single = true;
		if (dkim_bool_parse(value, &dd->dd_single) < 0)
			dkim_load_error(dl, line, "single_signature: '%s': expected yes or no",
					value);
	} else if (strcmp(name, "expire") == 0) {
		if (dl->dl_seen_expire)
			goto twice;
		dl->dl_seen_expire = true;
		if (dkim_duration_parse(value, &dd->dd_expire) < 0)
			dkim_load_error(dl, line, "expire: '%s': expected seconds (or m, h, d),"
					" at most 366d", value);
	} else if (strcmp(name, "unsubscribe_url") == 0) {
		if (dl->dl_seen_url)
			goto twice;
		dl->dl_seen_url = true;
		if (strncasecmp(value, "https://", 8) != 0 || strpbrk(value, " \t<>\"") != NULL) {
			dkim_load_error(dl, line, "unsubscribe_url: '%s': expected an https:// URL"
					" (RFC 8058)", value);
			return;
		}
		dd->dd_unsub_url = strdup(value);
		if (dd->dd_unsub_url == NULL)
			dkim_load_error(dl, line, "out of memory");
	} else if (strcmp(name, "unsubscribe_mailto") == 0) {
		if (dl->dl_seen_mailto)
			goto twice;
		dl->dl_seen_mailto = true;
		if (strchr(value, '@') == NULL || strpbrk(value, " \t<>\"") != NULL) {
			dkim_load_error(dl, line, "unsubscribe_mailto: '%s': expected an address",
					value);
			return;
		}
		dd->dd_unsub_mailto = strdup(value);
		if (dd->dd_unsub_mailto == NULL)
			dkim_load_error(dl, line, "out of memory");
	} else {
		dkim_load_error(dl, line, "unknown key '%s' in [%s]", name, dd->dd_name);
	}
	return;
twice:
	dkim_load_error(dl, line, "%s given twice in [%s]", name, dd->dd_name);
}

static int dkim_load_handler(void *user, const char *section, const char *name,
			     const char *value)
{
	struct dkim_load *dl = user;
	struct dkim_table *t = dl->dl_t;
	bool continued;

	if (dl->dl_err_line != 0)
		return 1;
	if (value == NULL)
		value = "";
	if (section[0] == '\0' || dl->dl_kind == DKIM_SECT_NONE) {
		dkim_load_error(dl, dl->dl_lineno, "'%s' outside a [section]", name);
		return 1;
	}
	continued = dl->dl_indented && strcmp(dl->dl_prev_key, name) == 0;
	snprintf(dl->dl_prev_key, sizeof(dl->dl_prev_key), "%s", name);
	if (dl->dl_kind == DKIM_SECT_DOMAIN) {
		dkim_load_domain_key(dl, &t->dt_domains[t->dt_ndomains - 1], name, value,
				     continued);
		return 1;
	}
	/* [user ...] and [listener ...]: only domain = */
	struct dkim_override *o = dl->dl_kind == DKIM_SECT_USER ? &t->dt_users[t->dt_nusers - 1] :
				  &t->dt_listeners[t->dt_nlisteners - 1];

	if (strcmp(name, "domain") != 0) {
		dkim_load_error(dl, dl->dl_lineno, "unknown key '%s' in [%s] (only domain)", name,
				dl->dl_section);
		return 1;
	}
	if (o->do_domain != NULL) {
		dkim_load_error(dl, dl->dl_lineno, "domain given twice in [%s]", dl->dl_section);
		return 1;
	}
	o->do_domain = strdup(value);
	o->do_line = dl->dl_lineno;
	if (o->do_domain == NULL)
		dkim_load_error(dl, dl->dl_lineno, "out of memory");
	else
		dkim_lower(o->do_domain);
	return 1;
}

/* inih's line reader: counts lines, refuses overlong ones, sees sections
 * (inih tells the handler nothing when a section opens) and indentation. */
static char *dkim_load_read(char *str, int num, void *stream)
{
	struct dkim_load *dl = stream;
	size_t len;
	char *p;
	int c;

	if (fgets(str, num, dl->dl_fp) == NULL) {
		dkim_load_end_section(dl);
		return NULL;
	}
	dl->dl_lineno++;
	len = strlen(str);
	if (len == (size_t)num - 1 && str[len - 1] != '\n') {
		c = getc(dl->dl_fp);
		if (c != '\n' && c != EOF) {
			while (c != '\n' && c != EOF)
				c = getc(dl->dl_fp);
			for (p = str; isspace((unsigned char)*p); p++)
				;
			if (*p != '#' && *p != ';')
				dkim_load_error(dl, dl->dl_lineno, "line too long (at most %d"
						" characters); continue keys on lines that"
						" start with a blank", num - 1);
			str[0] = '\0';
			return str;
		}
	}
	for (p = str; *p != '\0' && isspace((unsigned char)*p); p++)
		;
	dl->dl_indented = p > str;
	if (*p == '[') {
		char *end = strchr(p, ']');

		if (end == NULL) {
			dkim_load_error(dl, dl->dl_lineno, "'[' without ']'");
		} else {
			char sect[256];
			char *s = p + 1, *e = end;

			while (s < e && isspace((unsigned char)*s))
				s++;
			while (e > s && isspace((unsigned char)e[-1]))
				e--;
			snprintf(sect, sizeof(sect), "%.*s", (int)(e - s), s);
			if (dl->dl_err_line == 0)
				dkim_load_section(dl, sect);
		}
	}
	return str;
}

int dkim_table_load(struct dkim_table **t_r, const char *path, char *err, size_t errlen)
{
	struct dkim_load dl;
	struct dkim_table *t = calloc(1, sizeof(*t));
	const char *slash;
	int rc;

	*t_r = NULL;
	if (t == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	atomic_init(&t->dt_refs, 1);
	memset(&dl, 0, sizeof(dl));
	dl.dl_t = t;
	dl.dl_path = path;
	dl.dl_err = err;
	dl.dl_errlen = errlen;
	slash = strrchr(path, '/');
	if (slash != NULL)
		dl.dl_dir = strndup(path, slash == path ? 1 : (size_t)(slash - path));
	dl.dl_fp = fopen(path, "re");
	if (dl.dl_fp == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		free(dl.dl_dir);
		dkim_table_free(t);
		return -1;
	}
	rc = ini_parse_stream(dkim_load_read, &dl, dkim_load_handler, &dl);
	dkim_load_end_section(&dl);
	if (dl.dl_err_line != 0 && (rc <= 0 || dl.dl_err_line <= rc)) {
		rc = -1;
	} else if (rc > 0) {
		snprintf(err, errlen, "%s:%d: syntax error: expected 'key = value' or [section]",
			 path, rc);
		rc = -1;
	} else if (rc < 0) {
		snprintf(err, errlen, "%s: out of memory", path);
		rc = -1;
	}
	fclose(dl.dl_fp);
	free(dl.dl_dir);
	if (rc == 0 && t->dt_ndomains == 0) {
		snprintf(err, errlen, "%s: no [domain] section", path);
		rc = -1;
	}
	for (unsigned k = 0; rc == 0 && k < t->dt_nusers + t->dt_nlisteners; k++) {
		struct dkim_override *o = k < t->dt_nusers ? &t->dt_users[k] :
					  &t->dt_listeners[k - t->dt_nusers];

		o->do_dd = dkim_table_lookup(t, o->do_domain);
		if (o->do_dd == NULL) {
			snprintf(err, errlen, "%s:%d: domain %s has no [%s] section", path,
				 o->do_line, o->do_domain, o->do_domain);
			rc = -1;
		}
	}
	if (rc == 0 && dkim_table_index(t) < 0) {
		snprintf(err, errlen, "%s: out of memory", path);
		rc = -1;
	}
	if (rc < 0) {
		dkim_table_free(t);
		return -1;
	}
	*t_r = t;
	return 0;
}

struct dkim_table *dkim_table_ref(struct dkim_table *t)
{
	atomic_fetch_add(&t->dt_refs, 1);
	return t;
}

void dkim_table_unref(struct dkim_table **t)
{
	if (*t != NULL && atomic_fetch_sub(&(*t)->dt_refs, 1) == 1)
		dkim_table_free(*t);
	*t = NULL;
}

const struct dkim_domain *dkim_table_find(const struct dkim_table *t, const char *domain)
{
	return dkim_table_lookup(t, domain);
}

unsigned dkim_table_count(const struct dkim_table *t)
{
	return t->dt_ndomains;
}

const struct dkim_domain *dkim_table_at(const struct dkim_table *t, unsigned i)
{
	return i < t->dt_ndomains ? &t->dt_domains[i] : NULL;
}

static const struct dkim_domain *dkim_override_find(const struct dkim_override *o, unsigned n,
						    const char *name)
{
	for (unsigned i = 0; i < n; i++)
		if (strcmp(o[i].do_name, name) == 0)
			return o[i].do_dd;
	return NULL;
}

const struct dkim_domain *dkim_table_match(const struct dkim_table *t, const char *user,
					   const char *listener, const char *from_domain,
					   const char *default_domain)
{
	const struct dkim_domain *dd;

	if (user != NULL && (dd = dkim_override_find(t->dt_users, t->dt_nusers, user)) != NULL)
		return dd;
	if (listener != NULL &&
	    (dd = dkim_override_find(t->dt_listeners, t->dt_nlisteners, listener)) != NULL)
		return dd;
	for (const char *d = from_domain; d != NULL && *d != '\0';) {
		const char *dot;

		if ((dd = dkim_table_lookup(t, d)) != NULL)
			return dd;
		dot = strchr(d, '.');
		if (dot == NULL || strchr(dot + 1, '.') == NULL)
			break;	/* never a bare TLD */
		d = dot + 1;
	}
	if (default_domain != NULL && *default_domain != '\0')
		return dkim_table_lookup(t, default_domain);
	return NULL;
}
