/*
 * smtp_creds: the credentials the outbound client authenticates with
 * (smtp_auth_credentials_file), one account per next hop, as Postfix's
 * sasl_passwd:
 *
 *     [192.0.2.10]:587     user password
 *     smtp.example.com     user:password
 *
 * A table is immutable once parsed and reference-counted (any thread):
 * a session holds a reference while it may still send the password, so
 * a reload can swap tables under running sessions. The holder is the
 * current table behind a lock. Passwords are wiped before the memory
 * that held them is freed; nothing here logs a user name or a password.
 */
#ifndef RINGMTA_SMTP_CREDS_H
#define RINGMTA_SMTP_CREDS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct smtp_creds;

/* One account; the strings point into its table and live as long as it. */
struct smtp_cred {
	const char *sc_host;	/* next hop, lower case, brackets stripped */
	uint16_t sc_port;	/* 0 = any */
	const char *sc_user;
	const char *sc_pass;
};

/* Parse text[0, len) (no I/O). 0 with a new table (one reference) in
 * *t_r, or -1 with err naming name and the line (never its secret).
 * Empty lines and lines starting with '#' are skipped; a key given twice
 * is an error. */
int smtp_creds_parse(struct smtp_creds **t_r, const char *text, size_t len, const char *name,
		     char *err, size_t errlen);
/* Read and parse path: refused (-1, err) when it is not a regular file or
 * when group or others have any access to it (chmod 600). */
int smtp_creds_load(struct smtp_creds **t_r, const char *path, char *err, size_t errlen);
/* The account for next hop host ("[ip]" or a name, as relayhost writes
 * it, any case) on port: an exact port before a line without one. NULL
 * when none (or t is NULL). Valid while the caller holds t. */
const struct smtp_cred *smtp_creds_find(const struct smtp_creds *t, const char *host,
					unsigned port);
unsigned smtp_creds_count(const struct smtp_creds *t);
/* The i-th account in file order, NULL past the end. */
const struct smtp_cred *smtp_creds_at(const struct smtp_creds *t, unsigned i);
/* A new reference to t (NULL stays NULL). */
struct smtp_creds *smtp_creds_ref(struct smtp_creds *t);
/* Drop a reference; the last one wipes and frees. Sets *t to NULL. */
void smtp_creds_unref(struct smtp_creds **t);

/* The current table (NULL: no AUTH), swapped by a reload. */
struct smtp_creds_holder {
	pthread_mutex_t sh_lock;
	struct smtp_creds *sh_cur;
};

void smtp_creds_holder_init(struct smtp_creds_holder *h, struct smtp_creds *t);
/* A new reference to the current table, or NULL. */
struct smtp_creds *smtp_creds_holder_get(struct smtp_creds_holder *h);
/* Install t (the holder takes the caller's reference); the old table
 * goes when its last session lets go of it. */
void smtp_creds_holder_swap(struct smtp_creds_holder *h, struct smtp_creds *t);
void smtp_creds_holder_destroy(struct smtp_creds_holder *h);

#endif
