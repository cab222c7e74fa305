/*
 * auth_internal: what the files of the auth module share: the loaded
 * database (auth.c), the credentials file (auth_creds.c), strict base64
 * (auth_b64.c), the JWT check (auth_jwt.c), the public keys file (auth_keys.c) and the OAuth
 * exchanges (auth_oauth.c). Not part of the API; outside core/auth*.c
 * only the unit tests and the fuzz target include it, to reach the
 * parsers directly.
 */
#ifndef RINGMTA_AUTH_INTERNAL_H
#define RINGMTA_AUTH_INTERNAL_H

#include "core/sasl/auth.h"

#include <openssl/base.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_RESPONSE_MAX	12288	/* octets of base64 in one response */
#define AUTH_USER_MAX		255	/* fits auth_exchange.ax_user */
#define AUTH_HOSTNAME_MAX	100	/* keeps the CRAM-MD5 challenge < 160 */
#define AUTH_FILE_MAX		(64u << 20)	/* credentials or keys file */
#define AUTH_KEYS_MAX		64
#define AUTH_CLAIM_MAX		1024	/* configured issuer / audience */
#define AUTH_JWT_SIG_MAX	1024	/* octets: RSA keys up to 8192 bits */

/* Private exchange states (auth_exchange.ax_step). */
enum auth_state {
	AUTH_ST_IDLE = 0,	/* no exchange running */
	AUTH_ST_RESPONSE,	/* waiting for the one response */
	AUTH_ST_LOGIN_USER,	/* LOGIN: "Username:" sent */
	AUTH_ST_LOGIN_PASS,	/* LOGIN: "Password:" sent, ax_user holds the name */
	AUTH_ST_LOGIN_BADUSER,	/* LOGIN: the name cannot be an account */
	AUTH_ST_OAUTH_ACK,	/* OAuth error sent; the next line fails */
};

/* One account; the strings point into auth_db.ad_text. */
struct auth_account {
	const char *aa_user;
	const char *aa_hash;
	const char *aa_cram;		/* NULL unless opted in to CRAM-MD5 */
	size_t aa_user_len;
	size_t aa_cram_len;
	unsigned aa_line;		/* for duplicate reports at load */
};

struct auth_db {
	char *ad_text;			/* the credentials file, split in place */
	size_t ad_text_len;
	struct auth_account *ad_accounts;	/* sorted by user name */
	size_t ad_naccounts;
	size_t ad_ncram;		/* accounts opted in to CRAM-MD5 */
	const char *ad_dummy_hash;	/* unknown users are hashed against it */
	EVP_PKEY **ad_keys;		/* RSA >= 2048 bits or EC P-256 */
	size_t ad_nkeys;
	char *ad_issuer;
	char *ad_audience;
	char ad_hostname[AUTH_HOSTNAME_MAX + 1];
};

/* Read a whole regular file (at most AUTH_FILE_MAX octets) into a fresh
 * NUL-terminated buffer the caller frees. Returns 0, or -1 with err. */
int auth_read_file(const char *path, char **buf_r, size_t *len_r, char *err, size_t errlen);

/* Parse db->ad_text (ad_text_len octets and a NUL; split in place) into
 * db's accounts. path names the file in errors. Returns 0, or -1 with err. */
int auth_creds_parse(struct auth_db *db, const char *path, char *err, size_t errlen);
/* The account named by the len octets at user, or NULL. */
const struct auth_account *auth_creds_find(const struct auth_db *db, const void *user, size_t len);

/*
 * Strict base64 (RFC 4648 section 4): length a multiple of 4, padding only
 * at the end, no whitespace, unused bits zero. Writes at most outmax
 * octets; returns 0 or -1.
 */
int auth_b64_decode(const char *in, size_t len, uint8_t *out, size_t outmax, size_t *len_r);
/* The same for unpadded base64url (RFC 7515 section 2). */
int auth_b64url_decode(const char *in, size_t len, uint8_t *out, size_t outmax, size_t *len_r);
/* Encode with padding and a NUL; returns 0, or -1 when out is too small. */
int auth_b64_encode(char *out, size_t outlen, const uint8_t *in, size_t len);

/* Why a token was refused (for tests; the client only learns "invalid"). */
enum auth_jwt_error {
	AUTH_JWT_OK = 0,
	AUTH_JWT_E_FORMAT = -1,		/* not three base64url parts of JSON */
	AUTH_JWT_E_ALG = -2,		/* alg other than RS256/ES256, or crit */
	AUTH_JWT_E_SIG = -3,		/* no configured key verifies it */
	AUTH_JWT_E_ISS = -4,
	AUTH_JWT_E_AUD = -5,
	AUTH_JWT_E_EXP = -6,		/* missing, malformed or expired */
	AUTH_JWT_E_NBF = -7,
	AUTH_JWT_E_SUB = -8,		/* missing, empty, too long, control chars */
	AUTH_JWT_E_NOKEYS = -9,
};

/* Check a compact JWS; on success copy "sub" into sub (with a NUL). */
int auth_jwt_verify(const struct auth_db *db, const char *tok, size_t len, uint64_t now,
		    char *sub, size_t sublen);

/* Load the PEM public keys into db. Returns 0, or -1 with err. */
int auth_keys_load(struct auth_db *db, const char *path, char *err, size_t errlen);
void auth_keys_free(struct auth_db *db);

/* OAUTHBEARER / XOAUTH2: a decoded client message in AUTH_ST_RESPONSE. */
int auth_oauth_respond(struct auth_exchange *x, const struct auth_db *db, const uint8_t *msg,
		       size_t len, uint64_t now, char *out, size_t outlen);

#endif
