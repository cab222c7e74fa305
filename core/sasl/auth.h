/*
 * auth: SMTP AUTH (RFC 4954) credentials and SASL mechanisms, without I/O.
 *
 * Mechanisms: PLAIN (RFC 4616) and LOGIN against a credentials file of
 * crypt(3) hashes (yescrypt "$y$..." or SHA-512 "$6$..."; libxcrypt's
 * crypt_r); CRAM-MD5 (RFC 2195) for accounts that opt in by storing a
 * shared secret (legacy: the secret is kept in clear); OAUTHBEARER
 * (RFC 7628) and XOAUTH2 carrying a signed JWT (RS256 or ES256) checked
 * against configured public keys, with issuer, audience and expiry
 * checked. The session drives an exchange line by line; this module
 * decodes, verifies and says what to answer.
 *
 * Credentials file, one account per line ('#' comments, blank lines ok):
 *     user:crypt-hash
 *     user:crypt-hash:cram-md5=SECRET     (opts in to CRAM-MD5)
 *
 * Ownership: an auth_db is immutable once loaded and may be shared by
 * every worker thread; an auth_exchange belongs to one session.
 */
#ifndef RINGMTA_AUTH_H
#define RINGMTA_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct auth_db;

enum auth_mech {
	AUTH_MECH_PLAIN = 0,
	AUTH_MECH_LOGIN,
	AUTH_MECH_CRAM_MD5,
	AUTH_MECH_OAUTHBEARER,
	AUTH_MECH_XOAUTH2,
	AUTH_MECH_COUNT
};

struct auth_config {
	const char *passwd_file;	/* credentials file; NULL/"" = none */
	const char *jwt_keys_file;	/* PEM public keys; NULL/"" = no OAuth */
	const char *jwt_issuer;		/* required "iss" */
	const char *jwt_audience;	/* required in "aud" */
	const char *hostname;		/* for CRAM-MD5 challenges */
};

/* Load and validate. Returns 0, or -1 with err naming the file and line. */
int auth_db_load(struct auth_db **db_r, const struct auth_config *cfg,
		 char *err, size_t errlen);
void auth_db_free(struct auth_db **db);

/* Whether a mechanism can succeed with this db (CRAM-MD5 needs an
 * opted-in account, the OAuth ones need keys). */
bool auth_mech_available(const struct auth_db *db, enum auth_mech m);
/* Space-separated names of the available mechanisms, for EHLO. */
void auth_mech_list(const struct auth_db *db, char *buf, size_t len);
/* Case-insensitive name to mechanism; -1 if unknown. */
int auth_mech_parse(const char *name, size_t len);

enum auth_result {
	AUTH_R_CONTINUE = 0,	/* send "334 " + out (base64, may be empty) */
	AUTH_R_OK = 1,		/* 235 2.7.0; x->ax_user is the identity */
	AUTH_R_FAIL = 2,	/* 535 5.7.8 bad credentials */
	AUTH_R_MALFORMED = 3,	/* 501 5.5.2 bad base64 or SASL syntax */
	AUTH_R_CANCELLED = 4,	/* client sent "*": 501 5.0.0 */
	AUTH_R_TEMP = 5,	/* 454 4.7.0 temporary failure */
	AUTH_R_VERIFY = 6,	/* deferred only: a password check must run,
				 * auth_verify() (slow; any thread) */
};

struct auth_verify;

/* One SASL exchange; small, allocated by the session while it runs. */
struct auth_exchange {
	uint8_t ax_mech;		/* enum auth_mech */
	uint8_t ax_step;		/* private */
	bool ax_failing;		/* private: OAuth error sent, await ack */
	bool ax_defer;			/* private: return AUTH_R_VERIFY */
	char ax_user[256];		/* identity (NUL-terminated) */
	char ax_tried[256];		/* on AUTH_R_FAIL: the name tried, for
					 * logs ("" when none; raw client bytes) */
	char ax_challenge[160];		/* private: CRAM-MD5 challenge */
	struct auth_verify *ax_verify;	/* owned: the check AUTH_R_VERIFY wants */
};

/*
 * Start an exchange. initial: the optional initial response from the
 * AUTH command line (base64; "=" means empty), or NULL when absent.
 * now: unix seconds (JWT expiry); nonce: random value for CRAM-MD5.
 * out gets the base64 text to send after "334 " on AUTH_R_CONTINUE.
 */
int auth_start(struct auth_exchange *x, const struct auth_db *db, enum auth_mech m,
	       const char *initial, size_t initial_len, uint64_t now, uint64_t nonce,
	       char *out, size_t outlen);
/* The client's next line (without CRLF). */
int auth_step(struct auth_exchange *x, const struct auth_db *db, const char *line,
	      size_t len, uint64_t now, char *out, size_t outlen);

/*
 * The same, but a password check (crypt_r: tens of milliseconds for
 * yescrypt) is not run here: they return AUTH_R_VERIFY instead, and the
 * caller runs auth_verify() where it may block (auth_pool.h), which gives
 * the final result. The exchange must not be touched meanwhile.
 */
int auth_start_deferred(struct auth_exchange *x, const struct auth_db *db, enum auth_mech m,
			const char *initial, size_t initial_len, uint64_t now,
			uint64_t nonce, char *out, size_t outlen);
int auth_step_deferred(struct auth_exchange *x, const struct auth_db *db, const char *line,
		       size_t len, uint64_t now, char *out, size_t outlen);
/* Run the pending password check: AUTH_R_OK, AUTH_R_FAIL or AUTH_R_TEMP.
 * Thread-safe for distinct exchanges (the db is only read). */
int auth_verify(struct auth_exchange *x);
/* Forget an exchange (a pending check included, wiped) before freeing it
 * or starting over; it is idle after. */
void auth_exchange_clear(struct auth_exchange *x);

#endif
