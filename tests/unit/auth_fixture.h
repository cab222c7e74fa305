/*
 * auth_fixture.h: what the auth test programs (test_auth.c,
 * test_auth_jwt.c, test_auth_oauth.c) share, #included by each of them
 * as tap.h is; not a program of its own. A fresh directory under $TMPDIR
 * holds a credentials file and a keys file made here: password hashes
 * with crypt_gensalt_rn() and crypt_r() (yescrypt, SHA-512, bcrypt),
 * RSA-2048 and P-256 key pairs with BoringSSL, and JWTs signed with them.
 * The clock is a fixed "now" passed in.
 */
#ifndef RINGMTA_TEST_AUTH_FIXTURE
#define RINGMTA_TEST_AUTH_FIXTURE

#include "core/sasl/auth.h"
#include "core/sasl/auth_internal.h"
#include "tests/unit/tap.h"

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
#include <sys/stat.h>
#include <unistd.h>

#define NOW	1700000000u
#define ISS	"https://issuer.example"
#define AUD	"smtp.example.net"
#define HOST	"mx.example.net"

static char test_dir[512];
static EVP_PKEY *test_rsa, *test_ec, *test_ec_other;

/* Each program uses only some of the helpers below. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"

/* ---- helpers ---- */

static const char *test_path(const char *name)
{
	static char bufs[8][600];
	static unsigned i;
	char *b = bufs[i++ % 8];

	snprintf(b, sizeof(bufs[0]), "%s/%s", test_dir, name);
	return b;
}

static const char *test_write(const char *name, const void *data, size_t len)
{
	const char *p = test_path(name);
	FILE *f = fopen(p, "wb");

	if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
		perror(p);
		exit(1);
	}
	return p;
}

static const char *test_write_str(const char *name, const char *s)
{
	return test_write(name, s, strlen(s));
}

static char *test_hash(const char *prefix, const char *pw)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	char *h;

	if (cd == NULL || crypt_gensalt_rn(prefix, 0, NULL, 0, setting, sizeof(setting)) == NULL) {
		fprintf(stderr, "crypt_gensalt_rn(%s) failed\n", prefix);
		exit(1);
	}
	h = strdup(crypt_r(pw, setting, cd));
	free(cd);
	return h;
}

/* Standard base64 of len octets, in a fresh string. */
static char *test_b64n(const void *data, size_t len)
{
	size_t need;
	char *o;

	EVP_EncodedLength(&need, len);
	o = malloc(need);
	EVP_EncodeBlock((uint8_t *)o, data, len);
	return o;
}

static char *test_b64(const char *s)
{
	return test_b64n(s, strlen(s));
}

static char *test_b64url(const void *data, size_t len)
{
	char *o = test_b64n(data, len);
	size_t n = strlen(o);

	while (n > 0 && o[n - 1] == '=')
		o[--n] = '\0';
	for (size_t i = 0; i < n; i++)
		o[i] = o[i] == '+' ? '-' : o[i] == '/' ? '_' : o[i];
	return o;
}

static char *test_unb64(const char *s)
{
	size_t n, len = strlen(s);
	char *o = malloc(len + 1);

	if (auth_b64_decode(s, len, (uint8_t *)o, len, &n) != 0) {
		free(o);
		return strdup("(bad base64)");
	}
	o[n] = '\0';
	return o;
}

enum test_signer { SIGN_RS, SIGN_ES, SIGN_ES_OTHER, SIGN_NONE, SIGN_RS_TAMPERED };

/* A compact JWS of header and payload (JSON text). */
static char *test_jwt(const char *header, const char *payload, enum test_signer how)
{
	char *h = test_b64url(header, strlen(header)), *p = test_b64url(payload, strlen(payload));
	char *input, *sig64, *tok;
	uint8_t digest[SHA256_DIGEST_LENGTH], sig[512];
	size_t siglen = 0;

	if (asprintf(&input, "%s.%s", h, p) < 0)
		exit(1);
	SHA256((const uint8_t *)input, strlen(input), digest);
	if (how == SIGN_RS || how == SIGN_RS_TAMPERED) {
		unsigned n = 0;

		RSA_sign(NID_sha256, digest, sizeof(digest), sig, &n, EVP_PKEY_get0_RSA(test_rsa));
		siglen = n;
		if (how == SIGN_RS_TAMPERED)
			sig[siglen / 2] ^= 0x01;
	} else if (how == SIGN_ES || how == SIGN_ES_OTHER) {
		EVP_PKEY *k = how == SIGN_ES ? test_ec : test_ec_other;
		ECDSA_SIG *es = ECDSA_do_sign(digest, sizeof(digest), EVP_PKEY_get0_EC_KEY(k));
		const BIGNUM *r, *s;

		ECDSA_SIG_get0(es, &r, &s);
		BN_bn2bin_padded(sig, 32, r);
		BN_bn2bin_padded(sig + 32, 32, s);
		ECDSA_SIG_free(es);
		siglen = 64;
	}
	sig64 = test_b64url(sig, siglen);
	if (asprintf(&tok, "%s.%s", input, sig64) < 0)
		exit(1);
	free(h);
	free(p);
	free(input);
	free(sig64);
	return tok;
}

#define HDR_RS	"{\"alg\":\"RS256\",\"typ\":\"JWT\"}"
#define HDR_ES	"{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"k1\"}"

/* Claims with the usual values, one of which a test may override. */
static char *test_claims(const char *iss, const char *aud, long exp_delta, const char *sub,
			 const char *extra)
{
	char *s;

	if (asprintf(&s, "{\"iss\":\"%s\",\"aud\":%s,\"exp\":%lu,\"iat\":%u,\"sub\":\"%s\"%s}", iss,
		     aud, (unsigned long)((long)NOW + exp_delta), NOW - 10, sub, extra) < 0)
		exit(1);
	return s;
}

static char *test_good_jwt(enum test_signer how, const char *sub)
{
	char *c = test_claims(ISS, "\"" AUD "\"", 3600, sub, ",\"nbf\":1699999000");
	char *t = test_jwt(how == SIGN_RS ? HDR_RS : HDR_ES, c, how);

	free(c);
	return t;
}

static EVP_PKEY *test_gen_rsa(unsigned bits)
{
	RSA *rsa = RSA_new();
	BIGNUM *e = BN_new();
	EVP_PKEY *k = EVP_PKEY_new();

	BN_set_word(e, RSA_F4);
	if (!RSA_generate_key_ex(rsa, (int)bits, e, NULL) || !EVP_PKEY_assign_RSA(k, rsa)) {
		fprintf(stderr, "RSA key generation failed\n");
		exit(1);
	}
	BN_free(e);
	return k;
}

static EVP_PKEY *test_gen_ec(int nid)
{
	EC_KEY *ec = EC_KEY_new_by_curve_name(nid);
	EVP_PKEY *k = EVP_PKEY_new();

	if (ec == NULL || !EC_KEY_generate_key(ec) || !EVP_PKEY_assign_EC_KEY(k, ec)) {
		fprintf(stderr, "EC key generation failed\n");
		exit(1);
	}
	return k;
}

/* The public key of k as PEM text, appended to buf. */
static void test_pem_append(char *buf, size_t len, EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	const uint8_t *data;
	size_t n;

	PEM_write_bio_PUBKEY(b, k);
	BIO_mem_contents(b, &data, &n);
	strncat(buf, (const char *)data, len - strlen(buf) - 1 < n ? len - strlen(buf) - 1 : n);
	BIO_free(b);
}

static const char *const test_result_names[] = {
	"CONTINUE", "OK", "FAIL", "MALFORMED", "CANCELLED", "TEMP", "VERIFY",
};

static const char *test_rname(int r)
{
	return r >= 0 && r <= 6 ? test_result_names[r] : "?";
}

static int test_expect(int got, int want, const char *what)
{
	return tap_ok(got == want, "%s: %s (want %s)", what, test_rname(got), test_rname(want));
}

/* ---- fixtures ---- */

static struct auth_db *test_db;
static char *test_passwd, *test_keys;

/* Make the directory, the keys and the files; prog names the directory. */
static void test_setup(const char *prog)
{
	const char *tmp = getenv("TMPDIR");
	char *alice, *bob, *carol, *dave, *erin, *text;
	char pem[8192] = "";

	snprintf(test_dir, sizeof(test_dir), "%s/%s.XXXXXX",
		 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp", prog);
	if (mkdtemp(test_dir) == NULL) {
		perror(test_dir);
		exit(1);
	}
	alice = test_hash("$y$", "alice-pw");
	bob = test_hash("$6$", "bob-pw");
	carol = test_hash("$y$", "carol pw");
	dave = test_hash("$6$", "dave-pw");
	erin = test_hash("$2b$", "erin-pw");
	if (asprintf(&text,
		     "# ringmta test accounts\n"
		     "\n"
		     "alice:%s\n"
		     "   # indented comment\n"
		     "bob:%s:cram-md5=bob-secret:with:colons\r\n"
		     "carol:%s\n"
		     "dave@example.org:%s\n"
		     "erin:%s",
		     alice, bob, carol, dave, erin) < 0)
		exit(1);
	test_passwd = strdup(test_write_str("passwd", text));
	free(text);
	free(alice);
	free(bob);
	free(carol);
	free(dave);
	free(erin);

	test_rsa = test_gen_rsa(2048);
	test_ec = test_gen_ec(NID_X9_62_prime256v1);
	test_ec_other = test_gen_ec(NID_X9_62_prime256v1);
	strcat(pem, "Keys for the ringmta tests.\n");
	test_pem_append(pem, sizeof(pem), test_rsa);
	test_pem_append(pem, sizeof(pem), test_ec);
	test_keys = strdup(test_write_str("keys.pem", pem));
}

static struct auth_db *test_load(const char *passwd, const char *keys, char *err, size_t errlen)
{
	struct auth_config cfg = {
		.passwd_file = passwd, .jwt_keys_file = keys,
		.jwt_issuer = ISS, .jwt_audience = AUD, .hostname = HOST,
	};
	struct auth_db *db = NULL;

	err[0] = '\0';
	if (auth_db_load(&db, &cfg, err, errlen) != 0)
		return NULL;
	return db;
}

/* Load both files into test_db, for a program that does not test that
 * itself (test_auth.c does); stop at once when it fails. */
static void test_load_db(void)
{
	char err[512];

	test_db = test_load(test_passwd, test_keys, err, sizeof(err));
	if (test_db == NULL) {
		printf("Bail out! the test config does not load: %s\n", err);
		exit(1);
	}
}

static void test_cleanup(void)
{
	static const char *const names[] = {
		"passwd", "keys.pem", "nocram", "empty", "mostly6", "k1", "k2", "k3", "k4", "k5", "k6", "k7",
	};
	char name[32];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		unlink(test_path(names[i]));
	for (int i = 0; i < 32; i++) {
		snprintf(name, sizeof(name), "bad%d", i);
		unlink(test_path(name));
	}
	rmdir(test_dir);
}

/* Free what test_setup() and test_load_db() made and remove the files. */
static void test_teardown(void)
{
	auth_db_free(&test_db);
	EVP_PKEY_free(test_rsa);
	EVP_PKEY_free(test_ec);
	EVP_PKEY_free(test_ec_other);
	test_cleanup();
	free(test_passwd);
	free(test_keys);
}

#pragma GCC diagnostic pop

#endif
