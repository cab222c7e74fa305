/*
 * auth_creds.c: the credentials file: one "user:crypt-hash" line per
 * account, optionally ":cram-md5=SECRET", '#' comments and blank lines.
 * Each hash is checked at load (a strong crypt(3) method, the right
 * length), the accounts are sorted for auth_creds_find(), duplicates are
 * refused with both lines named, and the hash that unknown users are
 * checked against is picked. The accounts point into auth_db.ad_text.
 */
#include "core/sasl/auth_internal.h"

#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct auth_creds_method {
	const char *hm_prefix;
	size_t hm_last;		/* length of the field after the last '$' */
	size_t hm_total;	/* or of the whole hash (bcrypt) */
};

/* Strong methods only; each with the length of what it outputs, so that a
 * bare setting ("$6$salt") or a truncated hash is caught at load time. */
static const struct auth_creds_method auth_creds_methods[] = {
	{ "$y$", 43, 0 },	/* yescrypt */
	{ "$gy$", 43, 0 },	/* gost-yescrypt */
	{ "$7$", 43, 0 },	/* scrypt */
	{ "$6$", 86, 0 },	/* sha512crypt */
	{ "$5$", 43, 0 },	/* sha256crypt */
	{ "$2b$", 0, 60 },	/* bcrypt */
	{ "$2a$", 0, 60 },
	{ "$2y$", 0, 60 },
};

/* NULL when h (len octets, NUL-terminated) is a usable crypt(3) hash,
 * else why not. */
static const char *auth_creds_hash_check(const char *h, size_t len)
{
	const struct auth_creds_method *hm = NULL;
	const char *last;
	int cs;

	for (size_t i = 0; i < len; i++)
		if ((unsigned char)h[i] <= 0x20 || (unsigned char)h[i] >= 0x7f)
			return "password hash contains whitespace or control characters";
	for (size_t i = 0; i < sizeof(auth_creds_methods) / sizeof(auth_creds_methods[0]); i++)
		if (strncmp(h, auth_creds_methods[i].hm_prefix,
			    strlen(auth_creds_methods[i].hm_prefix)) == 0)
			hm = &auth_creds_methods[i];
	if (hm == NULL)
		return "not a supported crypt(3) hash (want $y$, $gy$, $7$, $6$, $5$ or $2b$)";
	last = strrchr(h, '$');
	if (hm->hm_total != 0) {
		if (len != hm->hm_total || last != h + 6)
			return "malformed bcrypt hash";
	} else if ((size_t)(last - h) < strlen(hm->hm_prefix) ||
		   strlen(last + 1) != hm->hm_last) {
		return "malformed or truncated crypt(3) hash";
	}
	cs = crypt_checksalt(h);
	if (cs != CRYPT_SALT_OK && cs != CRYPT_SALT_METHOD_LEGACY)
		return "crypt(3) hash refused by libcrypt";
	return NULL;
}

static const char *auth_creds_user_check(const char *u, size_t len)
{
	if (len == 0)
		return "empty user name";
	if (len > AUTH_USER_MAX)
		return "user name longer than 255 octets";
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)u[i] <= 0x20 || (unsigned char)u[i] == 0x7f)
			return "user name contains whitespace or control characters";
	return NULL;
}

static int auth_creds_cmp(const void *a, const void *b)
{
	const struct auth_account *x = a, *y = b;
	size_t n = x->aa_user_len < y->aa_user_len ? x->aa_user_len : y->aa_user_len;
	int c = memcmp(x->aa_user, y->aa_user, n);

	if (c != 0)
		return c;
	return x->aa_user_len < y->aa_user_len ? -1 : x->aa_user_len > y->aa_user_len;
}

const struct auth_account *auth_creds_find(const struct auth_db *db, const void *user, size_t len)
{
	struct auth_account key = { .aa_user = user, .aa_user_len = len };

	if (len == 0 || len > AUTH_USER_MAX || memchr(user, '\0', len) != NULL ||
	    db->ad_naccounts == 0)
		return NULL;
	return bsearch(&key, db->ad_accounts, db->ad_naccounts, sizeof(key), auth_creds_cmp);
}

/* Parse one non-blank, non-comment line (NUL-terminated at eol) into *a. */
static const char *auth_creds_line(char *p, char *eol, struct auth_account *a)
{
	char *colon, *colon2, *hash;
	const char *why;

	colon = strchr(p, ':');
	if (colon == NULL)
		return "expected user:hash[:cram-md5=SECRET]";
	why = auth_creds_user_check(p, (size_t)(colon - p));
	if (why != NULL)
		return why;
	hash = colon + 1;
	colon2 = strchr(hash, ':');
	if (colon2 != NULL)
		*colon2 = '\0';
	why = auth_creds_hash_check(hash, strlen(hash));
	if (why != NULL)
		return why;
	*colon = '\0';
	a->aa_user = p;
	a->aa_user_len = (size_t)(colon - p);
	a->aa_hash = hash;
	a->aa_cram = NULL;
	a->aa_cram_len = 0;
	if (colon2 != NULL) {
		const char *opt = colon2 + 1;

		if (strncmp(opt, "cram-md5=", 9) != 0)
			return "unknown option after the hash (want cram-md5=SECRET)";
		if (opt[9] == '\0')
			return "empty cram-md5 secret";
		a->aa_cram = opt + 9;
		a->aa_cram_len = (size_t)(eol - a->aa_cram);
	}
	return NULL;
}

/* The method and cost part of a checked hash: what sets its running time. */
static size_t auth_creds_cost_len(const char *h)
{
	const char *last = strrchr(h, '$'), *p;

	if (h[1] == '2')
		return (size_t)(last - h);	/* bcrypt: "$2b$NN" */
	for (p = last - 1; p > h && *p != '$'; p--)
		;
	return (size_t)(p - h);			/* up to the salt */
}

/* Unknown users are hashed against a real hash so that they take about as
 * long as known ones: one of the most common method and cost. */
static void auth_creds_pick_dummy(struct auth_db *db)
{
	struct {
		const char *h;
		size_t len, count;
	} seen[16];
	size_t nseen = 0, best = 0;

	for (size_t i = 0; i < db->ad_naccounts; i++) {
		const char *h = db->ad_accounts[i].aa_hash;
		size_t len = auth_creds_cost_len(h), j;

		for (j = 0; j < nseen; j++)
			if (seen[j].len == len && memcmp(seen[j].h, h, len) == 0)
				break;
		if (j == nseen) {
			if (nseen == sizeof(seen) / sizeof(seen[0]))
				continue;
			seen[nseen].h = h;
			seen[nseen].len = len;
			seen[nseen++].count = 0;
		}
		if (++seen[j].count > seen[best].count)
			best = j;
	}
	db->ad_dummy_hash = seen[best].h;
}

int auth_creds_parse(struct auth_db *db, const char *path, char *err, size_t errlen)
{
	char *p = db->ad_text, *end = db->ad_text + db->ad_text_len;
	size_t cap = 0;
	unsigned line = 0;

	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *eol = nl != NULL ? nl : end, *next = nl != NULL ? nl + 1 : end, *s;
		struct auth_account a;
		const char *why;

		line++;
		if (eol > p && eol[-1] == '\r')
			eol--;
		if (memchr(p, '\0', (size_t)(eol - p)) != NULL) {
			snprintf(err, errlen, "%s:%u: NUL byte in line", path, line);
			return -1;
		}
		*eol = '\0';
		for (s = p; *s == ' ' || *s == '\t'; s++)
			;
		if (*s == '\0' || *s == '#') {
			p = next;
			continue;
		}
		why = auth_creds_line(p, eol, &a);
		if (why != NULL) {
			snprintf(err, errlen, "%s:%u: %s", path, line, why);
			return -1;
		}
		a.aa_line = line;
		if (db->ad_naccounts == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct auth_account *na = reallocarray(db->ad_accounts, ncap, sizeof(*na));

			if (na == NULL) {
				snprintf(err, errlen, "%s: out of memory", path);
				return -1;
			}
			db->ad_accounts = na;
			cap = ncap;
		}
		db->ad_accounts[db->ad_naccounts++] = a;
		if (a.aa_cram != NULL)
			db->ad_ncram++;
		p = next;
	}
	if (db->ad_naccounts == 0)
		return 0;
	qsort(db->ad_accounts, db->ad_naccounts, sizeof(db->ad_accounts[0]), auth_creds_cmp);
	for (size_t i = 1; i < db->ad_naccounts; i++) {
		const struct auth_account *a = &db->ad_accounts[i - 1], *b = &db->ad_accounts[i];

		if (auth_creds_cmp(a, b) == 0) {
			unsigned first = a->aa_line < b->aa_line ? a->aa_line : b->aa_line;
			unsigned again = a->aa_line < b->aa_line ? b->aa_line : a->aa_line;

			snprintf(err, errlen, "%s:%u: duplicate user \"%s\" (first on line %u)",
				 path, again, a->aa_user, first);
			return -1;
		}
	}
	auth_creds_pick_dummy(db);
	return 0;
}
