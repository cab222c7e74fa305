/*
 * fuzz_auth: libFuzzer target for core/auth: the SASL exchanges, the JSON
 * of JWTs (jansson) and the JWT check.
 *
 * Byte 0 picks a mode (its value modulo 9):
 *   0-4  a SASL exchange with that mechanism. Byte 1: bit 0, the first
 *        line is the initial response; bit 1, each line is base64-encoded
 *        here first (so the SASL parsers see the raw bytes); bit 2, the
 *        exchange's output buffer is small; bit 3, the deferred calls
 *        (auth_start_deferred() ...) with auth_verify() after them. The
 *        rest is split at '\n' into lines fed to auth_start() / auth_step().
 *   5    as 6 with the JOSE header fuzzed (byte 1 bit 1 forced).
 *   6    the rest is a JWT payload, signed here with the configured ES256
 *        key, so that the claim checks are reached; checked directly and
 *        through an OAUTHBEARER (byte 1 bit 0 clear) or XOAUTH2 exchange.
 *        With byte 1 bit 1 set, the JOSE header is fuzzed too: it is the
 *        text up to the first '\n', the payload the rest.
 *   7    the rest is a token for auth_jwt_verify().
 *   8    the rest is a credentials file for the credentials parser.
 *
 * The db (one account with a cheap SHA-256 hash and a CRAM-MD5 secret, an
 * RSA and an EC key) is built once, in a temporary directory that is
 * removed again. Whatever the input: no crash, results from the
 * documented set, NUL-terminated base64 output on CONTINUE, and an
 * identity only on OK.
 */
#include "core/sasl/auth.h"
#include "core/sasl/auth_internal.h"

#include <openssl/base64.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

#include <crypt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOW 1700000000u

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct auth_db *fuzz_db;
static EVP_PKEY *fuzz_ec;

static void fuzz_check(bool cond)
{
	if (!cond)
		abort();
}

static void fuzz_die(const char *what)
{
	fprintf(stderr, "fuzz_auth: %s\n", what);
	exit(1);
}

static void fuzz_pem(FILE *f, EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	const uint8_t *p;
	size_t n;

	if (b == NULL || !PEM_write_bio_PUBKEY(b, k) || !BIO_mem_contents(b, &p, &n) ||
	    fwrite(p, 1, n, f) != n)
		fuzz_die("PEM");
	BIO_free(b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	char dir[512], passwd[600], keys[600], setting[CRYPT_GENSALT_OUTPUT_SIZE], err[512];
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	struct auth_config cfg = {
		.jwt_issuer = "https://issuer.example", .jwt_audience = "smtp",
		.hostname = "mx.example.net",
	};
	EVP_PKEY *rsa_pk = EVP_PKEY_new();
	RSA *rsa = RSA_new();
	BIGNUM *e = BN_new();
	EC_KEY *ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
	FILE *f;

	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "%s/fuzz_auth.XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL || cd == NULL)
		fuzz_die("mkdtemp");
	snprintf(passwd, sizeof(passwd), "%s/passwd", dir);
	snprintf(keys, sizeof(keys), "%s/keys.pem", dir);

	/* sha256crypt with the fewest rounds: cheap enough to run often. */
	if (crypt_gensalt_rn("$5$", 1000, NULL, 0, setting, sizeof(setting)) == NULL)
		fuzz_die("crypt_gensalt_rn");
	f = fopen(passwd, "w");
	if (f == NULL)
		fuzz_die("passwd");
	fprintf(f, "fuzz:%s:cram-md5=secret\n", crypt_r("pw", setting, cd));
	fprintf(f, "other:%s\n", crypt_r("pw2", setting, cd));
	fclose(f);
	free(cd);

	BN_set_word(e, RSA_F4);
	fuzz_ec = EVP_PKEY_new();
	if (!RSA_generate_key_ex(rsa, 2048, e, NULL) || !EVP_PKEY_assign_RSA(rsa_pk, rsa) ||
	    ec == NULL || !EC_KEY_generate_key(ec) || !EVP_PKEY_assign_EC_KEY(fuzz_ec, ec))
		fuzz_die("keys");
	BN_free(e);
	f = fopen(keys, "w");
	if (f == NULL)
		fuzz_die("keys.pem");
	fuzz_pem(f, rsa_pk);
	fuzz_pem(f, fuzz_ec);
	fclose(f);
	EVP_PKEY_free(rsa_pk);

	cfg.passwd_file = passwd;
	cfg.jwt_keys_file = keys;
	if (auth_db_load(&fuzz_db, &cfg, err, sizeof(err)) != 0)
		fuzz_die(err);
	unlink(passwd);
	unlink(keys);
	rmdir(dir);
	return 0;
}

static void fuzz_result(int r, const struct auth_exchange *x, const char *out, size_t outlen)
{
	fuzz_check(r >= AUTH_R_CONTINUE && r <= AUTH_R_TEMP);
	fuzz_check(memchr(x->ax_user, '\0', sizeof(x->ax_user)) != NULL);
	if (r == AUTH_R_OK) {
		fuzz_check(x->ax_user[0] != '\0');
	} else {
		fuzz_check(x->ax_user[0] == '\0' || r == AUTH_R_CONTINUE);
	}
	if (r == AUTH_R_CONTINUE) {
		size_t n = strnlen(out, outlen), dl;
		uint8_t *d = malloc(n + 1);

		fuzz_check(n < outlen);
		fuzz_check(auth_b64_decode(out, n, d, n, &dl) == 0);
		free(d);
	} else if (outlen > 0) {
		fuzz_check(out[0] == '\0');
	}
}

static char *fuzz_b64(const uint8_t *p, size_t n, size_t *len_r)
{
	size_t need;
	char *o;

	EVP_EncodedLength(&need, n);
	o = malloc(need);
	EVP_EncodeBlock((uint8_t *)o, p, n);
	*len_r = need - 1;
	return o;
}

/* The next line of [*p, end): its start and length; *p moves past it. */
static const char *fuzz_line(const char **p, const char *end, size_t *len_r)
{
	const char *line = *p, *nl = memchr(line, '\n', (size_t)(end - line));

	*len_r = (size_t)((nl != NULL ? nl : end) - line);
	*p = nl != NULL ? nl + 1 : end;
	return line;
}

/* A deferred password check runs now, as the pool would run it; only the
 * deferred calls ask for one, and no check is left behind after it. */
static int fuzz_verify(int r, struct auth_exchange *x)
{
	if (r == AUTH_R_VERIFY) {
		fuzz_check(x->ax_defer && x->ax_verify != NULL && x->ax_user[0] == '\0');
		r = auth_verify(x);
		fuzz_check(r == AUTH_R_OK || r == AUTH_R_FAIL || r == AUTH_R_TEMP);
	}
	if (r != AUTH_R_CONTINUE)
		fuzz_check(x->ax_verify == NULL);
	return r;
}

static void fuzz_exchange(enum auth_mech m, uint8_t flags, const char *p, const char *end)
{
	struct auth_exchange x;
	char out[512], *enc = NULL;
	size_t outlen = flags & 4 ? 24 : sizeof(out), len;
	const char *line;
	int r;

	if (flags & 1) {
		line = fuzz_line(&p, end, &len);
		if (flags & 2)
			line = enc = fuzz_b64((const uint8_t *)line, len, &len);
		r = flags & 8 ? auth_start_deferred(&x, fuzz_db, m, line, len, NOW, 42, out, outlen)
			      : auth_start(&x, fuzz_db, m, line, len, NOW, 42, out, outlen);
		free(enc);
	} else {
		r = flags & 8 ? auth_start_deferred(&x, fuzz_db, m, NULL, 0, NOW, 42, out, outlen)
			      : auth_start(&x, fuzz_db, m, NULL, 0, NOW, 42, out, outlen);
	}
	r = fuzz_verify(r, &x);
	fuzz_result(r, &x, out, outlen);
	while (r == AUTH_R_CONTINUE && p < end) {
		enc = NULL;
		line = fuzz_line(&p, end, &len);
		if (flags & 2)
			line = enc = fuzz_b64((const uint8_t *)line, len, &len);
		r = flags & 8 ? auth_step_deferred(&x, fuzz_db, line, len, NOW, out, outlen)
			      : auth_step(&x, fuzz_db, line, len, NOW, out, outlen);
		r = fuzz_verify(r, &x);
		fuzz_result(r, &x, out, outlen);
		free(enc);
	}
}

static char *fuzz_b64url(const uint8_t *p, size_t n)
{
	size_t len;
	char *o = fuzz_b64(p, n, &len);

	while (len > 0 && o[len - 1] == '=')
		o[--len] = '\0';
	for (size_t i = 0; i < len; i++)
		o[i] = o[i] == '+' ? '-' : o[i] == '/' ? '_' : o[i];
	return o;
}

static void fuzz_signed_payload(const uint8_t *p, size_t n, uint8_t flags)
{
	static const char es256[] = "{\"alg\":\"ES256\",\"typ\":\"JWT\"}";
	const uint8_t *hdr = (const uint8_t *)es256, *nl;
	size_t hn = sizeof(es256) - 1;
	bool xoauth2 = flags & 1, fixed_header = true;
	char *h, *pl, *input, *sig64, *tok, *msg, *enc, out[512], sub[AUTH_USER_MAX + 1];
	uint8_t digest[SHA256_DIGEST_LENGTH], sig[64];
	const BIGNUM *r, *s;
	ECDSA_SIG *es;
	struct auth_exchange x;
	size_t len;
	int v, res;

	if ((flags & 2) && (nl = memchr(p, '\n', n)) != NULL) {
		hdr = p;
		hn = (size_t)(nl - p);
		n -= hn + 1;
		p = nl + 1;
		fixed_header = false;
	}
	h = fuzz_b64url(hdr, hn);
	pl = fuzz_b64url(p, n);
	if (asprintf(&input, "%s.%s", h, pl) < 0)
		abort();
	SHA256((const uint8_t *)input, strlen(input), digest);
	es = ECDSA_do_sign(digest, sizeof(digest), EVP_PKEY_get0_EC_KEY(fuzz_ec));
	fuzz_check(es != NULL);
	ECDSA_SIG_get0(es, &r, &s);
	BN_bn2bin_padded(sig, 32, r);
	BN_bn2bin_padded(sig + 32, 32, s);
	ECDSA_SIG_free(es);
	sig64 = fuzz_b64url(sig, sizeof(sig));
	if (asprintf(&tok, "%s.%s", input, sig64) < 0)
		abort();

	v = auth_jwt_verify(fuzz_db, tok, strlen(tok), NOW, sub, sizeof(sub));
	fuzz_check(v <= 0 && v >= AUTH_JWT_E_NOKEYS);
	fuzz_check(!fixed_header || (v != AUTH_JWT_E_SIG && v != AUTH_JWT_E_ALG));
	fuzz_check(v != 0 || (sub[0] != '\0' && strlen(sub) <= AUTH_USER_MAX));
	fuzz_check(v == 0 || sub[0] == '\0');

	if (xoauth2)
		res = asprintf(&msg, "user=%s\x01" "auth=Bearer %s\x01\x01", v == 0 ? sub : "x", tok);
	else
		res = asprintf(&msg, "n,,\x01" "auth=Bearer %s\x01\x01", tok);
	if (res < 0)
		abort();
	enc = fuzz_b64((const uint8_t *)msg, strlen(msg), &len);
	res = auth_start(&x, fuzz_db, xoauth2 ? AUTH_MECH_XOAUTH2 : AUTH_MECH_OAUTHBEARER, enc, len,
			 NOW, 1, out, sizeof(out));
	fuzz_result(res, &x, out, sizeof(out));
	/* A good token is good through either mechanism ("sub" never holds
	 * the control characters that would break the XOAUTH2 framing). */
	if (v == 0)
		fuzz_check(res == AUTH_R_OK && strcmp(x.ax_user, sub) == 0);
	else if (len <= AUTH_RESPONSE_MAX)
		fuzz_check(res == AUTH_R_CONTINUE && x.ax_failing);
	free(enc);
	free(msg);
	free(tok);
	free(sig64);
	free(input);
	free(h);
	free(pl);
}

/* The credentials parser: accounts come out sorted, unique and sane. */
static void fuzz_creds(const char *p, size_t n)
{
	struct auth_db *db = calloc(1, sizeof(*db));
	char err[256];

	fuzz_check(db != NULL);
	db->ad_text = malloc(n + 1);
	memcpy(db->ad_text, p, n);
	db->ad_text[n] = '\0';
	db->ad_text_len = n;
	err[0] = '\0';
	if (auth_creds_parse(db, "fuzz", err, sizeof(err)) == 0) {
		for (size_t i = 0; i < db->ad_naccounts; i++) {
			const struct auth_account *a = &db->ad_accounts[i];

			fuzz_check(a->aa_user_len > 0 && a->aa_user_len <= AUTH_USER_MAX);
			fuzz_check(strlen(a->aa_user) == a->aa_user_len);
			fuzz_check(a->aa_hash[0] == '$');
			fuzz_check(a->aa_cram == NULL || strlen(a->aa_cram) == a->aa_cram_len);
			if (i > 0)
				fuzz_check(strcmp(db->ad_accounts[i - 1].aa_user, a->aa_user) < 0);
		}
		fuzz_check(db->ad_naccounts == 0 || db->ad_dummy_hash != NULL);
	} else {
		fuzz_check(strncmp(err, "fuzz:", 5) == 0);
	}
	auth_db_free(&db);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy;
	size_t n;
	uint8_t mode, flags;

	if (size < 2)
		return 0;
	mode = data[0] % 9;
	flags = data[1];
	/* A private copy so ASan sees any read past the end. */
	n = size - 2;
	copy = malloc(n ? n : 1);
	memcpy(copy, data + 2, n);
	switch (mode) {
	case 5:
	case 6:
		fuzz_signed_payload((const uint8_t *)copy, n, mode == 5 ? flags | 2 : flags);
		break;
	case 7: {
		char sub[AUTH_USER_MAX + 1];
		int v = auth_jwt_verify(fuzz_db, copy, n, NOW, sub, sizeof(sub));

		fuzz_check(v <= 0 && v >= AUTH_JWT_E_NOKEYS);
		fuzz_check(v == 0 || sub[0] == '\0');
		break;
	}
	case 8:
		fuzz_creds(copy, n);
		break;
	default:
		fuzz_exchange((enum auth_mech)mode, flags, copy, copy + n);
		break;
	}
	free(copy);
	return 0;
}
