/*
 * dkim_table: the signing key table, loaded from the file named by
 * dkim_key_table (ini syntax, read with inih):
 *
 *   [example.com]                  ; a signing domain (d=)
 *   keys = rsa2026:/etc/ringmta/dkim/example.com.rsa.pem ed2026:/etc/ringmta/dkim/example.com.ed.pem
 *   ; optional, per domain:
 *   canonicalization = relaxed/relaxed   ; header/body: relaxed or simple
 *   headers = from:to:subject ...        ; default: RFC 6376 5.4.1's list
 *   single_signature = no                ; yes: only the first key signs
 *   expire = 0                           ; x= after this many seconds; 0 none
 *   unsubscribe_url = https://u.example.com/u?r={rcpt}&q={queue_id}
 *   unsubscribe_mailto = unsubscribe@example.com
 *
 *   [user alice]                   ; an authenticated user's override
 *   domain = example.com
 *   [listener 0.0.0.0:587]         ; a listener's override (as in listen)
 *   domain = example.net
 *
 * keys: "selector:path" items, separated by blanks or commas; the
 * algorithm comes from the key file. Every key is loaded (dkim_key_load:
 * permissions checked) when the table loads, so a table that loads can
 * sign.
 *
 * A relative key path is taken from the table file's folder. Listener
 * names may carry "/kind" as in listen; it is ignored. Values may not
 * contain " ;" (inih's inline comment).
 *
 * Lookup (dkim_table_match): the user's override, else the listener's,
 * else the From domain, then its parent domains (a.b.example.com ->
 * b.example.com -> example.com), then default_domain. NULL: no key.
 *
 * Ownership: immutable after load, shared between threads by reference
 * count; the last dkim_table_unref() frees it and its keys.
 */
#ifndef RINGMTA_DKIM_TABLE_H
#define RINGMTA_DKIM_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/dkim/dkim.h"

struct dkim_table;

#define DKIM_TABLE_KEYS_MAX 16u		/* selectors per domain */
#define DKIM_TABLE_HEADERS_MAX 48u	/* names in headers = */

struct dkim_selector {
	char *ds_name;			/* s= */
	char *ds_path;			/* key file */
	struct dkim_key *ds_key;
};

struct dkim_domain {
	char *dd_name;			/* d=, lower case */
	struct dkim_selector *dd_sel;	/* in configured order */
	unsigned dd_nsel;
	enum dkim_canon dd_hcanon, dd_bcanon;
	const char *const *dd_headers;	/* NULL-terminated */
	bool dd_single;			/* single_signature */
	uint32_t dd_expire;		/* seconds; 0: no x= */
	char *dd_unsub_url;		/* NULL: none */
	char *dd_unsub_mailto;		/* NULL: none */
};

/* Load path. Returns 0, or -1 with err "path:line: ..." (or naming the
 * key file that failed). */
int dkim_table_load(struct dkim_table **t_r, const char *path, char *err, size_t errlen);
struct dkim_table *dkim_table_ref(struct dkim_table *t);
void dkim_table_unref(struct dkim_table **t);

/* The domain entry for exactly this name (lower case), or NULL. */
const struct dkim_domain *dkim_table_find(const struct dkim_table *t, const char *domain);
/* Every domain entry, in file order. */
unsigned dkim_table_count(const struct dkim_table *t);
const struct dkim_domain *dkim_table_at(const struct dkim_table *t, unsigned i);
/* Lookup as described above; user, listener (the "addr:port" text of
 * the listener, as written in listen, without "/kind"), from_domain and
 * default_domain may each be NULL. */
const struct dkim_domain *dkim_table_match(const struct dkim_table *t, const char *user,
					   const char *listener, const char *from_domain,
					   const char *default_domain);
/* The listener text dkim_table_match() compares: a [listener ...] name
 * after parsing, "1.2.3.4:25" or "[::1]:587", from an address. Returns
 * what snprintf returns. (Added for the daemon.) */
int dkim_table_listener_name(const struct sockaddr *sa, char *buf, size_t cap);

#endif
