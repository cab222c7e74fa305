/*
 * auth_jwt.c: the JWT check behind OAUTHBEARER and XOAUTH2: a compact JWS
 * (RFC 7515) signed with RS256 or ES256 (RFC 7518) by one of the keys
 * auth_keys.c loaded, then its claims (RFC 7519): issuer, audience,
 * expiry, not-before and subject.
 *
 * The header is read first (it names the algorithm), then the signature
 * is checked, and only a signed payload is parsed. The JSON of both is
 * read by jansson (Debian libjansson4). Work buffers are bounded and taken
 * from the heap, never a worker's stack.
 */
#include "core/sasl/auth_internal.h"

#include <openssl/bn.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

#include <jansson.h>

#include <stdlib.h>
#include <string.h>

#define AUTH_JWT_HEADER_MAX	1024	/* decoded JOSE header */
#define AUTH_JWT_PAYLOAD_MAX	8192	/* decoded claims */
#define AUTH_JWT_MEMBERS_MAX	64

struct auth_jwt_work {
	uint8_t jw_header[AUTH_JWT_HEADER_MAX];
	uint8_t jw_payload[AUTH_JWT_PAYLOAD_MAX];
	uint8_t jw_sig[AUTH_JWT_SIG_MAX];
};

enum auth_jwt_alg { AUTH_JWT_RS256, AUTH_JWT_ES256 };

/*
 * One JSON object of at most max_members members, or NULL. jansson
 * refuses duplicate names, invalid UTF-8, lone surrogates and \u0000;
 * integers are read as reals so that a huge one is not a parse error (a
 * NumericDate saturates). The input is bounded by the work buffers, which
 * bounds the nesting too.
 */
static json_t *auth_jwt_json(const uint8_t *p, size_t len, size_t max_members)
{
	json_t *o = json_loadb((const char *)p, len,
			       JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, NULL);

	if (o != NULL && (!json_is_object(o) || json_object_size(o) > max_members)) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

/* Whether v is a string equal to lit. */
static bool auth_jwt_str_eq(const json_t *v, const char *lit)
{
	size_t n = strlen(lit);

	return json_is_string(v) && json_string_length(v) == n &&
	       memcmp(json_string_value(v), lit, n) == 0;
}

/* A NumericDate as whole seconds (a fraction is dropped); -1 when it is
 * not a number or negative. Saturates at UINT64_MAX. */
static int auth_jwt_date(const json_t *v, uint64_t *u_r)
{
	double d;

	if (!json_is_real(v))
		return -1;
	d = json_real_value(v);
	if (!(d >= 0))
		return -1;
	*u_r = d >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)d;
	return 0;
}

static int auth_jwt_header(struct auth_jwt_work *w, size_t len, enum auth_jwt_alg *alg_r)
{
	json_t *h = auth_jwt_json(w->jw_header, len, 16), *v;
	int r = AUTH_JWT_OK;

	if (h == NULL)
		return AUTH_JWT_E_FORMAT;
	v = json_object_get(h, "alg");
	if (v == NULL)
		r = AUTH_JWT_E_FORMAT;
	else if (auth_jwt_str_eq(v, "RS256"))
		*alg_r = AUTH_JWT_RS256;
	else if (auth_jwt_str_eq(v, "ES256"))
		*alg_r = AUTH_JWT_ES256;
	else
		r = AUTH_JWT_E_ALG;	/* "none", HMAC, anything else */
	/* No extension is understood, so none may be critical (RFC 7515
	 * section 4.1.11). */
	if (r == AUTH_JWT_OK && json_object_get(h, "crit") != NULL)
		r = AUTH_JWT_E_ALG;
	json_decref(h);
	return r;
}

/* JOSE's ES256 signature is r || s, 32 octets each. */
static bool auth_jwt_es256(const EC_KEY *ec, const uint8_t *digest, const uint8_t *sig)
{
	ECDSA_SIG *s = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, 32, NULL), *ss = BN_bin2bn(sig + 32, 32, NULL);
	bool ok;

	if (s == NULL || r == NULL || ss == NULL || !ECDSA_SIG_set0(s, r, ss)) {
		ECDSA_SIG_free(s);
		BN_free(r);
		BN_free(ss);
		return false;
	}
	ok = ECDSA_do_verify(digest, SHA256_DIGEST_LENGTH, s, ec) == 1;
	ECDSA_SIG_free(s);
	return ok;
}

static bool auth_jwt_sig_ok(const struct auth_db *db, enum auth_jwt_alg alg,
			    const uint8_t *digest, const uint8_t *sig, size_t siglen)
{
	bool ok = false;

	for (size_t i = 0; i < db->ad_nkeys && !ok; i++) {
		EVP_PKEY *k = db->ad_keys[i];

		if (alg == AUTH_JWT_RS256 && EVP_PKEY_id(k) == EVP_PKEY_RSA)
			ok = RSA_verify(NID_sha256, digest, SHA256_DIGEST_LENGTH, sig, siglen,
					EVP_PKEY_get0_RSA(k)) == 1;
		else if (alg == AUTH_JWT_ES256 && EVP_PKEY_id(k) == EVP_PKEY_EC && siglen == 64)
			ok = auth_jwt_es256(EVP_PKEY_get0_EC_KEY(k), digest, sig);
	}
	ERR_clear_error();
	return ok;
}

static bool auth_jwt_aud_ok(const json_t *v, const char *aud)
{
	size_t i;
	json_t *e;

	if (json_is_string(v))
		return auth_jwt_str_eq(v, aud);
	/* An array of strings only, as JWT libraries generate. */
	json_array_foreach(v, i, e)
		if (!json_is_string(e))
			return false;
	json_array_foreach(v, i, e)
		if (auth_jwt_str_eq(e, aud))
			return true;
	return false;
}

static int auth_jwt_claims_check(const struct auth_db *db, const json_t *c, uint64_t now,
				 char *sub, size_t sublen)
{
	const json_t *v;
	const char *s;
	uint64_t t;
	size_t slen;

	if (!auth_jwt_str_eq(json_object_get(c, "iss"), db->ad_issuer))
		return AUTH_JWT_E_ISS;
	v = json_object_get(c, "aud");
	if (v == NULL || !auth_jwt_aud_ok(v, db->ad_audience))
		return AUTH_JWT_E_AUD;
	v = json_object_get(c, "exp");
	if (v == NULL || auth_jwt_date(v, &t) != 0 || t <= now)
		return AUTH_JWT_E_EXP;
	v = json_object_get(c, "nbf");
	if (v != NULL && (auth_jwt_date(v, &t) != 0 || t > now))
		return AUTH_JWT_E_NBF;
	v = json_object_get(c, "sub");
	if (!json_is_string(v))
		return AUTH_JWT_E_SUB;
	s = json_string_value(v);
	slen = json_string_length(v);
	if (slen == 0 || slen > AUTH_USER_MAX || slen >= sublen)
		return AUTH_JWT_E_SUB;
	for (size_t i = 0; i < slen; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return AUTH_JWT_E_SUB;
	memcpy(sub, s, slen + 1);
	return AUTH_JWT_OK;
}

static int auth_jwt_claims(const struct auth_db *db, struct auth_jwt_work *w, size_t len,
			   uint64_t now, char *sub, size_t sublen)
{
	json_t *c = auth_jwt_json(w->jw_payload, len, AUTH_JWT_MEMBERS_MAX);
	int r;

	if (c == NULL)
		return AUTH_JWT_E_FORMAT;
	r = auth_jwt_claims_check(db, c, now, sub, sublen);
	json_decref(c);
	return r;
}

int auth_jwt_verify(const struct auth_db *db, const char *tok, size_t len, uint64_t now,
		    char *sub, size_t sublen)
{
	const char *d1, *d2, *end = tok + len;
	struct auth_jwt_work *w;
	uint8_t digest[SHA256_DIGEST_LENGTH];
	enum auth_jwt_alg alg = AUTH_JWT_RS256;
	size_t hn, pn, sn;
	int r;

	if (sub != NULL && sublen > 0)
		sub[0] = '\0';
	if (db->ad_nkeys == 0)
		return AUTH_JWT_E_NOKEYS;
	if (len == 0 || len > AUTH_RESPONSE_MAX || sub == NULL || sublen == 0)
		return AUTH_JWT_E_FORMAT;
	d1 = memchr(tok, '.', len);
	d2 = d1 != NULL ? memchr(d1 + 1, '.', (size_t)(end - d1 - 1)) : NULL;
	if (d2 == NULL || memchr(d2 + 1, '.', (size_t)(end - d2 - 1)) != NULL || d1 == tok ||
	    d2 == d1 + 1)
		return AUTH_JWT_E_FORMAT;
	w = malloc(sizeof(*w));
	if (w == NULL)
		return AUTH_JWT_E_FORMAT;
	/* Header first (it names the algorithm), then the signature, and
	 * only a signed payload is parsed. */
	if (auth_b64url_decode(tok, (size_t)(d1 - tok), w->jw_header, sizeof(w->jw_header), &hn) != 0) {
		r = AUTH_JWT_E_FORMAT;
		goto out;
	}
	r = auth_jwt_header(w, hn, &alg);
	if (r != AUTH_JWT_OK)
		goto out;
	if (auth_b64url_decode(d2 + 1, (size_t)(end - d2 - 1), w->jw_sig, sizeof(w->jw_sig), &sn) != 0) {
		r = AUTH_JWT_E_FORMAT;
		goto out;
	}
	SHA256((const uint8_t *)tok, (size_t)(d2 - tok), digest);
	if (sn == 0 || !auth_jwt_sig_ok(db, alg, digest, w->jw_sig, sn)) {
		r = AUTH_JWT_E_SIG;
		goto out;
	}
	if (auth_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), w->jw_payload, sizeof(w->jw_payload),
			       &pn) != 0) {
		r = AUTH_JWT_E_FORMAT;
		goto out;
	}
	r = auth_jwt_claims(db, w, pn, now, sub, sublen);
out:
	if (r != AUTH_JWT_OK)
		sub[0] = '\0';
	free(w);
	return r;
}
