/*
 * auth_jwt.c: OAUTHBEARER (RFC 7628) and XOAUTH2, the JWT check behind
 * them (RFC 7519 with RS256 or ES256 signatures, RFC 7518), the public
 * keys file, and the small JSON reader the token's parts need.
 *
 * The JSON reader takes one buffer, copies nothing and hands back slices
 * of it; it enforces an input size, a member count and a nesting depth
 * from a limits struct. Everything here runs on input from the network
 * before the client has authenticated, so each step is bounded.
 */
#include "core/auth_internal.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define AUTH_JWT_HEADER_MAX	1024	/* decoded JOSE header */
#define AUTH_JWT_PAYLOAD_MAX	8192	/* decoded claims */
#define AUTH_JWT_SIG_MAX	1024	/* RSA up to 8192 bits */
#define AUTH_JWT_MEMBERS_MAX	64

/* ---- JSON ---- */

struct auth_json_parser {
	const char *jp_p;
	const char *jp_end;
	unsigned jp_depth;
	unsigned jp_max_depth;
};

static void auth_json_ws(struct auth_json_parser *jp)
{
	while (jp->jp_p < jp->jp_end &&
	       (*jp->jp_p == ' ' || *jp->jp_p == '\t' || *jp->jp_p == '\n' || *jp->jp_p == '\r'))
		jp->jp_p++;
}

/* Length of the well-formed UTF-8 sequence at p, or 0. */
static size_t auth_json_utf8(const unsigned char *p, const unsigned char *end)
{
	unsigned c = p[0];
	uint32_t cp, min;
	size_t n;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2, cp = c & 0x1f, min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3, cp = c & 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4, cp = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if ((size_t)(end - p) < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static int auth_json_hex4(const char *p, uint32_t *v)
{
	uint32_t u = 0;

	for (int i = 0; i < 4; i++) {
		char c = p[i];
		uint32_t d;

		if (c >= '0' && c <= '9')
			d = (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (uint32_t)(c - 'A' + 10);
		else
			return -1;
		u = u << 4 | d;
	}
	*v = u;
	return 0;
}

/* A \u escape at p (6 octets, or 12 for a surrogate pair) as a code point;
 * returns the octets consumed, or 0. Refuses lone surrogates and NUL. */
static size_t auth_json_uescape(const char *p, const char *end, uint32_t *cp_r)
{
	uint32_t hi, lo;

	if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || auth_json_hex4(p + 2, &hi) != 0 ||
	    hi == 0 || (hi >= 0xdc00 && hi <= 0xdfff))
		return 0;
	if (hi < 0xd800 || hi > 0xdbff) {
		*cp_r = hi;
		return 6;
	}
	if (end - p < 12 || p[6] != '\\' || p[7] != 'u' || auth_json_hex4(p + 8, &lo) != 0 ||
	    lo < 0xdc00 || lo > 0xdfff)
		return 0;
	*cp_r = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
	return 12;
}

static int auth_json_string(struct auth_json_parser *jp, struct auth_json_val *v)
{
	const char *p = jp->jp_p + 1, *end = jp->jp_end, *start = p;

	while (p < end) {
		unsigned char c = (unsigned char)*p;
		uint32_t cp;
		size_t n;

		if (c == '"') {
			v->jv_type = AUTH_JSON_STRING;
			v->jv_p = start;
			v->jv_len = (size_t)(p - start);
			v->jv_strings = false;
			jp->jp_p = p + 1;
			return 0;
		}
		if (c < 0x20)
			return -1;
		if (c == '\\') {
			if (end - p < 2)
				return -1;
			if (strchr("\"\\/bfnrt", p[1]) != NULL && p[1] != '\0') {
				p += 2;
				continue;
			}
			n = auth_json_uescape(p, end, &cp);
		} else {
			n = auth_json_utf8((const unsigned char *)p, (const unsigned char *)end);
		}
		if (n == 0)
			return -1;
		p += n;
	}
	return -1;
}

static bool auth_json_digit(const char *p, const char *end)
{
	return p < end && *p >= '0' && *p <= '9';
}

static int auth_json_number(struct auth_json_parser *jp, struct auth_json_val *v)
{
	const char *p = jp->jp_p, *end = jp->jp_end, *start = p;

	if (p < end && *p == '-')
		p++;
	if (!auth_json_digit(p, end))
		return -1;
	if (*p == '0')
		p++;
	else
		while (auth_json_digit(p, end))
			p++;
	if (p < end && *p == '.') {
		p++;
		if (!auth_json_digit(p, end))
			return -1;
		while (auth_json_digit(p, end))
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (!auth_json_digit(p, end))
			return -1;
		while (auth_json_digit(p, end))
			p++;
	}
	v->jv_type = AUTH_JSON_NUMBER;
	v->jv_p = start;
	v->jv_len = (size_t)(p - start);
	v->jv_strings = false;
	jp->jp_p = p;
	return 0;
}

static int auth_json_value(struct auth_json_parser *jp, struct auth_json_val *v);

/* An object at jp_p ('{'); top-level members go to m when m != NULL. */
static int auth_json_object(struct auth_json_parser *jp, struct auth_json_val *v,
			    struct auth_json_member *m, size_t max, size_t *n_r)
{
	const char *start = jp->jp_p;
	size_t n = 0;

	if (++jp->jp_depth > jp->jp_max_depth)
		return -1;
	jp->jp_p++;
	auth_json_ws(jp);
	if (jp->jp_p < jp->jp_end && *jp->jp_p == '}') {
		jp->jp_p++;
	} else {
		for (;;) {
			struct auth_json_val k, val;

			auth_json_ws(jp);
			if (jp->jp_p >= jp->jp_end || *jp->jp_p != '"' || auth_json_string(jp, &k) != 0)
				return -1;
			auth_json_ws(jp);
			if (jp->jp_p >= jp->jp_end || *jp->jp_p != ':')
				return -1;
			jp->jp_p++;
			auth_json_ws(jp);
			if (auth_json_value(jp, &val) != 0)
				return -1;
			if (m != NULL) {
				if (n == max)
					return -1;
				m[n].jm_key = k;
				m[n].jm_val = val;
				n++;
			}
			auth_json_ws(jp);
			if (jp->jp_p >= jp->jp_end)
				return -1;
			if (*jp->jp_p == ',') {
				jp->jp_p++;
				continue;
			}
			if (*jp->jp_p != '}')
				return -1;
			jp->jp_p++;
			break;
		}
	}
	jp->jp_depth--;
	v->jv_type = AUTH_JSON_OBJECT;
	v->jv_p = start;
	v->jv_len = (size_t)(jp->jp_p - start);
	v->jv_strings = false;
	if (n_r != NULL)
		*n_r = n;
	return 0;
}

static int auth_json_array(struct auth_json_parser *jp, struct auth_json_val *v)
{
	const char *start = jp->jp_p;
	bool strings = true;

	if (++jp->jp_depth > jp->jp_max_depth)
		return -1;
	jp->jp_p++;
	auth_json_ws(jp);
	if (jp->jp_p < jp->jp_end && *jp->jp_p == ']') {
		jp->jp_p++;
	} else {
		for (;;) {
			struct auth_json_val e;

			auth_json_ws(jp);
			if (auth_json_value(jp, &e) != 0)
				return -1;
			strings &= e.jv_type == AUTH_JSON_STRING;
			auth_json_ws(jp);
			if (jp->jp_p >= jp->jp_end)
				return -1;
			if (*jp->jp_p == ',') {
				jp->jp_p++;
				continue;
			}
			if (*jp->jp_p != ']')
				return -1;
			jp->jp_p++;
			break;
		}
	}
	jp->jp_depth--;
	v->jv_type = AUTH_JSON_ARRAY;
	v->jv_p = start;
	v->jv_len = (size_t)(jp->jp_p - start);
	v->jv_strings = strings;
	return 0;
}

static int auth_json_literal(struct auth_json_parser *jp, struct auth_json_val *v)
{
	static const char *const lits[] = { "true", "false", "null" };

	for (size_t i = 0; i < sizeof(lits) / sizeof(lits[0]); i++) {
		size_t n = strlen(lits[i]);

		if ((size_t)(jp->jp_end - jp->jp_p) >= n && memcmp(jp->jp_p, lits[i], n) == 0) {
			v->jv_type = AUTH_JSON_LITERAL;
			v->jv_p = jp->jp_p;
			v->jv_len = n;
			v->jv_strings = false;
			jp->jp_p += n;
			return 0;
		}
	}
	return -1;
}

static int auth_json_value(struct auth_json_parser *jp, struct auth_json_val *v)
{
	if (jp->jp_p >= jp->jp_end)
		return -1;
	switch (*jp->jp_p) {
	case '"':
		return auth_json_string(jp, v);
	case '{':
		return auth_json_object(jp, v, NULL, 0, NULL);
	case '[':
		return auth_json_array(jp, v);
	case 't':
	case 'f':
	case 'n':
		return auth_json_literal(jp, v);
	default:
		return auth_json_number(jp, v);
	}
}

int auth_json_parse(const char *s, size_t len, const struct auth_json_limits *lim,
		    struct auth_json_member *m, size_t *n_r)
{
	struct auth_json_parser jp = {
		.jp_p = s, .jp_end = s + len, .jp_depth = 0, .jp_max_depth = lim->jl_max_depth,
	};
	struct auth_json_val v;

	*n_r = 0;
	if (len > lim->jl_max_len || lim->jl_max_depth == 0)
		return -1;
	auth_json_ws(&jp);
	if (jp.jp_p >= jp.jp_end || *jp.jp_p != '{' ||
	    auth_json_object(&jp, &v, m, lim->jl_max_members, n_r) != 0) {
		*n_r = 0;
		return -1;
	}
	auth_json_ws(&jp);
	if (jp.jp_p != jp.jp_end) {
		*n_r = 0;
		return -1;
	}
	return 0;
}

/* The next character of a validated string slice as UTF-8 octets in out;
 * returns how many (1 to 4), or 0 at a malformed escape. */
static size_t auth_json_unescape(const char **pp, const char *end, char out[4])
{
	const char *p = *pp;
	uint32_t cp;
	size_t n;

	if (*p != '\\') {
		out[0] = *p;
		*pp = p + 1;
		return 1;
	}
	if (end - p < 2)
		return 0;
	switch (p[1]) {
	case '"': case '\\': case '/':
		out[0] = p[1];
		break;
	case 'b':
		out[0] = '\b';
		break;
	case 'f':
		out[0] = '\f';
		break;
	case 'n':
		out[0] = '\n';
		break;
	case 'r':
		out[0] = '\r';
		break;
	case 't':
		out[0] = '\t';
		break;
	case 'u':
		n = auth_json_uescape(p, end, &cp);
		if (n == 0)
			return 0;
		*pp = p + n;
		if (cp < 0x80) {
			out[0] = (char)cp;
			return 1;
		}
		if (cp < 0x800) {
			out[0] = (char)(0xc0 | cp >> 6);
			out[1] = (char)(0x80 | (cp & 0x3f));
			return 2;
		}
		if (cp < 0x10000) {
			out[0] = (char)(0xe0 | cp >> 12);
			out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
			out[2] = (char)(0x80 | (cp & 0x3f));
			return 3;
		}
		out[0] = (char)(0xf0 | cp >> 18);
		out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[3] = (char)(0x80 | (cp & 0x3f));
		return 4;
	default:
		return 0;
	}
	*pp = p + 2;
	return 1;
}

bool auth_json_str_eq(const struct auth_json_val *v, const char *lit, size_t len)
{
	const char *p = v->jv_p, *end = v->jv_p + v->jv_len;
	size_t o = 0;

	if (v->jv_type != AUTH_JSON_STRING)
		return false;
	while (p < end) {
		char buf[4];
		size_t n = auth_json_unescape(&p, end, buf);

		if (n == 0 || n > len - o || memcmp(buf, lit + o, n) != 0)
			return false;
		o += n;
	}
	return o == len;
}

int auth_json_str_copy(const struct auth_json_val *v, char *out, size_t outlen, size_t *len_r)
{
	const char *p = v->jv_p, *end = v->jv_p + v->jv_len;
	size_t o = 0;

	*len_r = 0;
	if (v->jv_type != AUTH_JSON_STRING || outlen == 0)
		return -1;
	while (p < end) {
		char buf[4];
		size_t n = auth_json_unescape(&p, end, buf);

		if (n == 0 || n >= outlen - o)
			return -1;
		memcpy(out + o, buf, n);
		o += n;
	}
	out[o] = '\0';
	*len_r = o;
	return 0;
}

int auth_json_find(const struct auth_json_member *m, size_t n, const char *key,
		   struct auth_json_val *v_r)
{
	size_t klen = strlen(key);
	int found = 0;

	for (size_t i = 0; i < n; i++) {
		if (!auth_json_str_eq(&m[i].jm_key, key, klen))
			continue;
		if (found)
			return -1;
		*v_r = m[i].jm_val;
		found = 1;
	}
	return found;
}

int auth_json_array_next(const struct auth_json_val *arr, size_t *pos,
			 struct auth_json_val *elem_r)
{
	struct auth_json_parser jp;

	if (arr->jv_type != AUTH_JSON_ARRAY || !arr->jv_strings || *pos >= arr->jv_len)
		return 0;
	jp.jp_p = arr->jv_p + *pos + (*pos == 0);	/* past the '[' */
	jp.jp_end = arr->jv_p + arr->jv_len;
	jp.jp_depth = 0;
	jp.jp_max_depth = 1;
	auth_json_ws(&jp);
	if (jp.jp_p < jp.jp_end && *jp.jp_p == ',') {
		jp.jp_p++;
		auth_json_ws(&jp);
	}
	if (jp.jp_p >= jp.jp_end || *jp.jp_p != '"' || auth_json_string(&jp, elem_r) != 0) {
		*pos = arr->jv_len;
		return 0;
	}
	*pos = (size_t)(jp.jp_p - arr->jv_p);
	return 1;
}

int auth_json_num_u64(const struct auth_json_val *v, uint64_t *u_r)
{
	const char *p = v->jv_p, *end = v->jv_p + v->jv_len;
	uint64_t u = 0;

	*u_r = 0;
	if (v->jv_type != AUTH_JSON_NUMBER || p >= end || *p == '-')
		return -1;
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		u = u > (UINT64_MAX - d) / 10 ? UINT64_MAX : u * 10 + d;
	}
	if (p < end && *p == '.')
		for (p++; p < end && *p >= '0' && *p <= '9'; p++)
			;
	if (p != end)
		return -1;	/* an exponent */
	*u_r = u;
	return 0;
}

/* ---- JWT ---- */

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

/* ---- the keys file ---- */

/* Check and keep one key; NULL, or why it was refused. */
static const char *auth_keys_add(struct auth_db *db, EVP_PKEY *k)
{
	EVP_PKEY **nk;

	if (EVP_PKEY_id(k) == EVP_PKEY_RSA) {
		unsigned bits = RSA_bits(EVP_PKEY_get0_RSA(k));

		if (bits < 2048 || bits > 8 * AUTH_JWT_SIG_MAX)
			return "RSA key not of 2048 to 8192 bits";
	} else if (EVP_PKEY_id(k) == EVP_PKEY_EC) {
		const EC_GROUP *g = EC_KEY_get0_group(EVP_PKEY_get0_EC_KEY(k));

		if (g == NULL || EC_GROUP_get_curve_name(g) != NID_X9_62_prime256v1)
			return "EC key not on P-256 (ES256)";
	} else {
		return "unsupported key type (want RSA or EC P-256)";
	}
	if (db->ad_nkeys == AUTH_KEYS_MAX)
		return "too many keys";
	nk = reallocarray(db->ad_keys, db->ad_nkeys + 1, sizeof(*nk));
	if (nk == NULL)
		return "out of memory";
	db->ad_keys = nk;
	db->ad_keys[db->ad_nkeys++] = k;
	return NULL;
}

/* Compare the text of a line (without its end) with s. */
static bool auth_line_is(const char *p, const char *eol, const char *s)
{
	return (size_t)(eol - p) == strlen(s) && memcmp(p, s, (size_t)(eol - p)) == 0;
}

int auth_keys_load(struct auth_db *db, const char *path, char *err, size_t errlen)
{
	static const char begin[] = "-----BEGIN ", dashes[] = "-----";
	char *text, *p, *end, *block = NULL;
	const char *why = NULL;
	unsigned line = 0, block_line = 0;
	size_t len;

	if (auth_read_file(path, &text, &len, err, errlen) != 0)
		return -1;
	p = text;
	end = text + len;
	/* Text outside the blocks is allowed (RFC 7468 section 2). */
	while (p < end && why == NULL) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *next = nl != NULL ? nl + 1 : end, *eol = nl != NULL ? nl : end;

		line++;
		if (eol > p && eol[-1] == '\r')
			eol--;
		if (block == NULL && (size_t)(eol - p) >= sizeof(begin) - 1 &&
		    memcmp(p, begin, sizeof(begin) - 1) == 0) {
			block = p;
			block_line = line;
			if (!auth_line_is(p, eol, "-----BEGIN PUBLIC KEY-----"))
				why = "PEM block is not a PUBLIC KEY";
		} else if (block != NULL && (size_t)(eol - p) >= sizeof(dashes) - 1 &&
			   memcmp(p, dashes, sizeof(dashes) - 1) == 0) {
			BIO *bio;
			EVP_PKEY *k;

			if (!auth_line_is(p, eol, "-----END PUBLIC KEY-----")) {
				why = "unexpected PEM line inside a PUBLIC KEY block";
				block_line = line;
				break;
			}
			bio = BIO_new_mem_buf(block, (int)(next - block));
			k = bio != NULL ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
			BIO_free(bio);
			ERR_clear_error();
			if (k == NULL)
				why = "unreadable PUBLIC KEY block";
			else if ((why = auth_keys_add(db, k)) != NULL)
				EVP_PKEY_free(k);
			if (why == NULL)
				block = NULL;
		}
		p = next;
	}
	free(text);
	if (why == NULL && block != NULL)
		why = "PUBLIC KEY block without its END line";
	if (why != NULL) {
		snprintf(err, errlen, "%s:%u: %s", path, block_line, why);
		auth_keys_free(db);
		return -1;
	}
	if (db->ad_nkeys == 0) {
		snprintf(err, errlen, "%s: no PUBLIC KEY block", path);
		return -1;
	}
	return 0;
}

void auth_keys_free(struct auth_db *db)
{
	for (size_t i = 0; i < db->ad_nkeys; i++)
		EVP_PKEY_free(db->ad_keys[i]);
	free(db->ad_keys);
	db->ad_keys = NULL;
	db->ad_nkeys = 0;
}

/* ---- OAUTHBEARER and XOAUTH2 ---- */

struct auth_oauth_msg {
	const uint8_t *om_auth;		/* the "auth" value */
	size_t om_auth_len;
	char om_user[AUTH_USER_MAX + 1];	/* named user, "" if none */
};

/* RFC 7628 kvpairs: *(key "=" value %x01) %x01, ending the message.
 * XOAUTH2 uses the same framing with its "user" key. */
static int auth_oauth_kvpairs(const uint8_t *p, const uint8_t *end, bool xoauth2,
			      struct auth_oauth_msg *om)
{
	bool have_user = false;

	for (;;) {
		const uint8_t *k = p, *v;
		size_t klen, vlen;

		if (p >= end)
			return -1;
		if (*p == 0x01)
			break;
		while (p < end && ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')))
			p++;
		if (p == k || p >= end || *p != '=')
			return -1;
		klen = (size_t)(p - k);
		v = ++p;
		for (; p < end && *p != 0x01; p++)
			if ((*p < 0x20 && *p != '\t' && *p != '\r' && *p != '\n') || *p == 0x7f)
				return -1;
		if (p >= end)
			return -1;
		vlen = (size_t)(p - v);
		p++;
		if (klen == 4 && memcmp(k, "auth", 4) == 0) {
			if (om->om_auth != NULL)
				return -1;
			om->om_auth = v;
			om->om_auth_len = vlen;
		} else if (xoauth2 && klen == 4 && memcmp(k, "user", 4) == 0) {
			if (have_user || vlen == 0 || vlen > AUTH_USER_MAX)
				return -1;
			memcpy(om->om_user, v, vlen);
			om->om_user[vlen] = '\0';
			have_user = true;
		}
	}
	if (p + 1 != end || om->om_auth == NULL || (xoauth2 && !have_user))
		return -1;
	return 0;
}

/* gs2-header (RFC 5801): ("n" / "y") "," ["a=" saslname] "," then %x01. */
static int auth_oauthbearer_parse(const uint8_t *p, const uint8_t *end, struct auth_oauth_msg *om)
{
	size_t n = 0;

	if (p >= end || (*p != 'n' && *p != 'y'))
		return -1;	/* "p=": no channel binding here */
	p++;
	if (p >= end || *p++ != ',')
		return -1;
	if (end - p >= 2 && p[0] == 'a' && p[1] == '=') {
		for (p += 2; p < end && *p != ','; p++) {
			uint8_t c = *p;

			if (c == '=') {
				if (end - p >= 3 && p[1] == '2' && p[2] == 'C')
					c = ',';
				else if (end - p >= 3 && p[1] == '3' && p[2] == 'D')
					c = '=';
				else
					return -1;
				p += 2;
			} else if (c < 0x20 || c == 0x7f) {
				return -1;
			}
			if (n == AUTH_USER_MAX)
				return -1;
			om->om_user[n++] = (char)c;
		}
		if (n == 0)
			return -1;
		om->om_user[n] = '\0';
	}
	if (p >= end || *p++ != ',')
		return -1;
	if (p >= end || *p++ != 0x01)
		return -1;
	return auth_oauth_kvpairs(p, end, false, om);
}

/* RFC 6750: "Bearer" 1*SP b64token; the scheme is case-insensitive. */
static bool auth_bearer_token(const struct auth_oauth_msg *om, const char **tok_r, size_t *len_r)
{
	const char *v = (const char *)om->om_auth, *end = v + om->om_auth_len, *p;

	if (om->om_auth_len < 8 || strncasecmp(v, "Bearer ", 7) != 0)
		return false;
	for (p = v + 7; p < end && *p == ' '; p++)
		;
	*tok_r = p;
	*len_r = (size_t)(end - p);
	return p < end;
}

/* Answer with the RFC 7628 error and wait for the client's dummy line. */
static int auth_oauth_error(struct auth_exchange *x, char *out, size_t outlen)
{
	static const char bearer[] = "{\"status\":\"invalid_token\"}";
	static const char xoauth2[] = "{\"status\":\"invalid_token\",\"schemes\":\"bearer\"}";
	const char *j = x->ax_mech == AUTH_MECH_OAUTHBEARER ? bearer : xoauth2;

	if (auth_b64_encode(out, outlen, (const uint8_t *)j, strlen(j)) != 0)
		return AUTH_R_FAIL;
	x->ax_step = AUTH_ST_OAUTH_ACK;
	x->ax_failing = true;
	return AUTH_R_CONTINUE;
}

int auth_oauth_respond(struct auth_exchange *x, const struct auth_db *db, const uint8_t *msg,
		       size_t len, uint64_t now, char *out, size_t outlen)
{
	struct auth_oauth_msg om = { .om_auth = NULL };
	char sub[AUTH_USER_MAX + 1];
	const char *tok;
	size_t toklen;
	int r;

	if (x->ax_mech == AUTH_MECH_OAUTHBEARER)
		r = auth_oauthbearer_parse(msg, msg + len, &om);
	else
		r = auth_oauth_kvpairs(msg, msg + len, true, &om);
	if (r != 0)
		return AUTH_R_MALFORMED;
	if (!auth_bearer_token(&om, &tok, &toklen) ||
	    auth_jwt_verify(db, tok, toklen, now, sub, sizeof(sub)) != AUTH_JWT_OK ||
	    (om.om_user[0] != '\0' && strcmp(om.om_user, sub) != 0))
		return auth_oauth_error(x, out, outlen);
	memcpy(x->ax_user, sub, strlen(sub) + 1);
	return AUTH_R_OK;
}
