/*
 * auth_jwt.c: the JWT check behind OAUTHBEARER and XOAUTH2: a compact JWS
 * (RFC 7515) signed with RS256 or ES256 (RFC 7518) by one of the keys
 * auth_keys.c loaded, then its claims (RFC 7519): issuer, audience,
 * expiry, not-before and subject.
 *
 * The header is read first (it names the algorithm), then the signature
 * is checked, and only a signed payload is parsed. Work buffers are
 * bounded and taken from the heap, never a worker's stack.
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

#include <stdlib.h>
#include <string.h>

#define AUTH_JWT_HEADER_MAX	1024	/* decoded JOSE header */
#define AUTH_JWT_PAYLOAD_MAX	8192	/* decoded claims */
#define AUTH_JWT_MEMBERS_MAX	64

struct auth_jwt_work {
	uint8_t jw_header[AUTH_JWT_HEADER_MAX];
	uint8_t jw_payload[AUTH_JWT_PAYLOAD_MAX];
	uint8_t jw_sig[AUTH_JWT_SIG_MAX];
	struct auth_json_member jw_members[AUTH_JWT_MEMBERS_MAX];
};

enum auth_jwt_alg { AUTH_JWT_RS256, AUTH_JWT_ES256 };

static int auth_jwt_header(struct auth_jwt_work *w, size_t len, enum auth_jwt_alg *alg_r)
{
	static const struct auth_json_limits lim = {
		.jl_max_len = AUTH_JWT_HEADER_MAX, .jl_max_members = 16, .jl_max_depth = 4,
	};
	struct auth_json_val v;
	size_t n;

	if (auth_json_parse((const char *)w->jw_header, len, &lim, w->jw_members, &n) != 0 ||
	    auth_json_find(w->jw_members, n, "alg", &v) != 1)
		return AUTH_JWT_E_FORMAT;
	if (auth_json_str_eq(&v, "RS256", 5))
		*alg_r = AUTH_JWT_RS256;
	else if (auth_json_str_eq(&v, "ES256", 5))
		*alg_r = AUTH_JWT_ES256;
	else
		return AUTH_JWT_E_ALG;	/* "none", HMAC, anything else */
	/* No extension is understood, so none may be critical (RFC 7515
	 * section 4.1.11). */
	if (auth_json_find(w->jw_members, n, "crit", &v) != 0)
		return AUTH_JWT_E_ALG;
	return AUTH_JWT_OK;
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

static int auth_jwt_claims(const struct auth_db *db, struct auth_jwt_work *w, size_t len,
			   uint64_t now, char *sub, size_t sublen)
{
	static const struct auth_json_limits lim = {
		.jl_max_len = AUTH_JWT_PAYLOAD_MAX, .jl_max_members = AUTH_JWT_MEMBERS_MAX,
		.jl_max_depth = 8,
	};
	struct auth_json_val v, e;
	uint64_t t;
	size_t n, pos = 0, slen;
	bool aud = false;
	int f;

	if (auth_json_parse((const char *)w->jw_payload, len, &lim, w->jw_members, &n) != 0)
		return AUTH_JWT_E_FORMAT;
	f = auth_json_find(w->jw_members, n, "iss", &v);
	if (f < 0)
		return AUTH_JWT_E_FORMAT;
	if (f == 0 || !auth_json_str_eq(&v, db->ad_issuer, strlen(db->ad_issuer)))
		return AUTH_JWT_E_ISS;
	f = auth_json_find(w->jw_members, n, "aud", &v);
	if (f < 0)
		return AUTH_JWT_E_FORMAT;
	if (f == 1 && v.jv_type == AUTH_JSON_STRING)
		aud = auth_json_str_eq(&v, db->ad_audience, strlen(db->ad_audience));
	else if (f == 1)
		while (!aud && auth_json_array_next(&v, &pos, &e) == 1)
			aud = auth_json_str_eq(&e, db->ad_audience, strlen(db->ad_audience));
	if (!aud)
		return AUTH_JWT_E_AUD;
	f = auth_json_find(w->jw_members, n, "exp", &v);
	if (f < 0)
		return AUTH_JWT_E_FORMAT;
	if (f == 0 || auth_json_num_u64(&v, &t) != 0 || t <= now)
		return AUTH_JWT_E_EXP;
	f = auth_json_find(w->jw_members, n, "nbf", &v);
	if (f < 0)
		return AUTH_JWT_E_FORMAT;
	if (f == 1 && (auth_json_num_u64(&v, &t) != 0 || t > now))
		return AUTH_JWT_E_NBF;
	f = auth_json_find(w->jw_members, n, "sub", &v);
	if (f < 0)
		return AUTH_JWT_E_FORMAT;
	if (f == 0 || auth_json_str_copy(&v, sub, sublen, &slen) != 0 || slen == 0 ||
	    slen > AUTH_USER_MAX)
		return AUTH_JWT_E_SUB;
	for (size_t i = 0; i < slen; i++)
		if ((unsigned char)sub[i] < 0x20 || sub[i] == 0x7f)
			return AUTH_JWT_E_SUB;
	return AUTH_JWT_OK;
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
