/*
 * test_auth: tests of core/auth: the credentials file (good and malformed,
 * with the line named), the keys file, mechanism availability and the
 * EHLO list, each SASL mechanism end to end (PLAIN, LOGIN, CRAM-MD5,
 * OAUTHBEARER, XOAUTH2) including cancellation, oversized and malformed
 * responses and the OAuth failure exchange, the JWT checks one by one,
 * and the JSON reader and base64 helpers alone.
 *
 * Everything is made here: password hashes with crypt_gensalt_rn() and
 * crypt_r() (yescrypt and SHA-512), RSA-2048 and P-256 key pairs with
 * BoringSSL, and JWTs signed with them. Files go to a fresh directory
 * under $TMPDIR. The clock is a fixed "now" passed in.
 */
#include "core/auth.h"
#include "core/auth_internal.h"
#include "tests/unit/tap.h"

#include <openssl/base64.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/digest.h>
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
	"CONTINUE", "OK", "FAIL", "MALFORMED", "CANCELLED", "TEMP",
};

static const char *test_rname(int r)
{
	return r >= 0 && r <= 5 ? test_result_names[r] : "?";
}

static int test_expect(int got, int want, const char *what)
{
	return tap_ok(got == want, "%s: %s (want %s)", what, test_rname(got), test_rname(want));
}

/* ---- fixtures ---- */

static struct auth_db *test_db;
static char *test_passwd, *test_keys;

static void test_setup(void)
{
	const char *tmp = getenv("TMPDIR");
	char *alice, *bob, *carol, *dave, *erin, *text;
	char pem[8192] = "";

	snprintf(test_dir, sizeof(test_dir), "%s/test_auth.XXXXXX",
		 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
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

/* ---- loading ---- */

static void test_load_good(void)
{
	char err[512], list[128];
	struct auth_db *db;

	test_db = test_load(test_passwd, test_keys, err, sizeof(err));
	if (!tap_ok(test_db != NULL, "full config loads (%s)", err))
		exit(tap_done());
	tap_ok(test_db->ad_naccounts == 5 && test_db->ad_ncram == 1 && test_db->ad_nkeys == 2,
	       "5 accounts, 1 CRAM-MD5, 2 keys");
	auth_mech_list(test_db, list, sizeof(list));
	tap_ok(strcmp(list, "PLAIN LOGIN CRAM-MD5 OAUTHBEARER XOAUTH2") == 0, "mech list: %s", list);
	for (int m = 0; m < AUTH_MECH_COUNT; m++)
		tap_ok(auth_mech_available(test_db, (enum auth_mech)m), "mechanism %d available", m);
	auth_mech_list(test_db, list, 12);
	tap_ok(strcmp(list, "PLAIN LOGIN") == 0, "short buffer gets whole names: \"%s\"", list);
	auth_mech_list(test_db, list, 5);
	tap_ok(strcmp(list, "") == 0, "too short for one name: \"%s\"", list);
	auth_mech_list(NULL, list, sizeof(list));
	tap_ok(strcmp(list, "") == 0 && !auth_mech_available(NULL, AUTH_MECH_PLAIN), "NULL db: none");

	/* The CRAM-MD5 secret runs to the end of the line, colons and all. */
	{
		const struct auth_account *b = NULL;

		for (size_t i = 0; i < test_db->ad_naccounts; i++)
			if (strcmp(test_db->ad_accounts[i].aa_user, "bob") == 0)
				b = &test_db->ad_accounts[i];
		tap_ok(b != NULL && b->aa_cram != NULL &&
			       strcmp(b->aa_cram, "bob-secret:with:colons") == 0 &&
			       b->aa_cram_len == strlen("bob-secret:with:colons"),
		       "cram secret taken to end of line, CR dropped");
	}

	db = test_load(test_passwd, NULL, err, sizeof(err));
	auth_mech_list(db, list, sizeof(list));
	tap_ok(db != NULL && strcmp(list, "PLAIN LOGIN CRAM-MD5") == 0, "passwd only: %s", list);
	tap_ok(db != NULL && !auth_mech_available(db, AUTH_MECH_OAUTHBEARER) &&
		       !auth_mech_available(db, AUTH_MECH_XOAUTH2),
	       "no keys: no OAuth");
	auth_db_free(&db);
	tap_ok(db == NULL, "auth_db_free clears the pointer");
	auth_db_free(&db);

	{
		char *h = test_hash("$y$", "x"), *text;

		if (asprintf(&text, "u1:%s\n", h) < 0)
			exit(1);
		db = test_load(test_write_str("nocram", text), NULL, err, sizeof(err));
		auth_mech_list(db, list, sizeof(list));
		tap_ok(db != NULL && strcmp(list, "PLAIN LOGIN") == 0 &&
			       !auth_mech_available(db, AUTH_MECH_CRAM_MD5),
		       "no opted-in account: no CRAM-MD5 (%s)", list);
		auth_db_free(&db);
		free(h);
		free(text);
	}

	/* Unknown users are hashed with the most common method and cost. */
	tap_ok(strncmp(test_db->ad_dummy_hash, "$y$", 3) == 0, "dummy hash: yescrypt");
	{
		char *h[4], *text;

		h[0] = test_hash("$y$", "a");
		for (int i = 1; i < 4; i++)
			h[i] = test_hash("$6$", "b");
		if (asprintf(&text, "a:%s\nb:%s\nc:%s\nd:%s\n", h[0], h[1], h[2], h[3]) < 0)
			exit(1);
		db = test_load(test_write_str("mostly6", text), NULL, err, sizeof(err));
		tap_ok(db != NULL && strncmp(db->ad_dummy_hash, "$6$", 3) == 0,
		       "dummy hash follows the majority: SHA-512");
		auth_db_free(&db);
		free(text);
		for (int i = 0; i < 4; i++)
			free(h[i]);
	}

	db = test_load(NULL, test_keys, err, sizeof(err));
	auth_mech_list(db, list, sizeof(list));
	tap_ok(db != NULL && strcmp(list, "OAUTHBEARER XOAUTH2") == 0, "keys only: %s", list);
	auth_db_free(&db);

	db = test_load("", "", err, sizeof(err));
	auth_mech_list(db, list, sizeof(list));
	tap_ok(db != NULL && strcmp(list, "") == 0, "nothing configured: empty list");
	auth_db_free(&db);

	db = test_load(test_write_str("empty", "# nobody\n\n"), NULL, err, sizeof(err));
	tap_ok(db != NULL && !auth_mech_available(db, AUTH_MECH_PLAIN), "no accounts: no PLAIN");
	auth_db_free(&db);
}

static void test_mech_parse(void)
{
	static const struct {
		const char *name;
		int want;
	} cases[] = {
		{ "PLAIN", AUTH_MECH_PLAIN }, { "plain", AUTH_MECH_PLAIN },
		{ "Login", AUTH_MECH_LOGIN }, { "cram-md5", AUTH_MECH_CRAM_MD5 },
		{ "OAUTHBEARER", AUTH_MECH_OAUTHBEARER }, { "xoauth2", AUTH_MECH_XOAUTH2 },
		{ "PLAINX", -1 }, { "PLAI", -1 }, { "", -1 }, { "GSSAPI", -1 },
		{ "SCRAM-SHA-256", -1 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		tap_ok(auth_mech_parse(cases[i].name, strlen(cases[i].name)) == cases[i].want,
		       "auth_mech_parse(\"%s\")", cases[i].name);
	tap_ok(auth_mech_parse("LOGIN PLAIN", 5) == AUTH_MECH_LOGIN, "length, not NUL, ends the name");
	tap_ok(auth_mech_parse(NULL, 0) == -1, "NULL name");
}

static void test_load_bad_passwd(void)
{
	char *good = test_hash("$6$", "pw"), *yes = test_hash("$y$", "pw");
	char trunc[200], nul_line[512], longuser[400];
	const struct {
		const char *text;
		const char *where, *why;
	} cases[] = {
		{ "# c\nalice\n", ":2:", "expected user:hash" },
		{ "a:$1$abcdefgh$0123456789012345678901\n", ":1:", "not a supported crypt(3) hash" },
		{ "\n\na:secret\n", ":3:", "not a supported crypt(3) hash" },
		{ "a:$6$salt\n", ":1:", "malformed or truncated" },
		{ trunc, ":1:", "malformed or truncated" },
		{ "a:$2b$10$tooshort\n", ":1:", "malformed bcrypt" },
		{ ":$6$x\n", ":1:", "empty user name" },
		{ NULL, ":2:", "unknown option" },
		{ NULL, ":2:", "empty cram-md5 secret" },
		{ NULL, ":3:", "duplicate user \"a\" (first on line 1)" },
		{ NULL, ":1:", "whitespace" },
		{ NULL, ":2:", "whitespace or control" },
		{ nul_line, ":2:", "NUL byte" },
		{ longuser, ":1:", "longer than 255" },
	};
	char *texts[4];

	snprintf(trunc, sizeof(trunc), "a:%.*s\n", (int)strlen(good) - 1, good);
	if (asprintf(&texts[0], "a:%s\nb:%s:md5=x\n", good, yes) < 0 ||
	    asprintf(&texts[1], "a:%s\nb:%s:cram-md5=\n", good, yes) < 0 ||
	    asprintf(&texts[2], "a:%s\nb:%s\na:%s\n", good, yes, yes) < 0 ||
	    asprintf(&texts[3], "a b:%s\n", good) < 0)
		exit(1);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[512], name[32];
		const char *text = cases[i].text, *path;
		size_t len = text != NULL && text != nul_line && text != longuser ? strlen(text) : 0;
		struct auth_db *db;

		if (text == NULL && i >= 7 && i <= 10) {
			text = texts[i - 7];
			len = strlen(text);
		}
		if (i == 11) {	/* a hash followed by a blank */
			static char buf[256];

			snprintf(buf, sizeof(buf), "a:%s\nb:%s \n", good, yes);
			text = buf;
			len = strlen(text);
		}
		if (text == nul_line) {
			len = (size_t)snprintf(nul_line, sizeof(nul_line), "a:%s\nb:", good);
			nul_line[len++] = '\0';
			len += (size_t)snprintf(nul_line + len, sizeof(nul_line) - len, "%s\n", yes);
		}
		if (text == longuser) {
			memset(longuser, 'u', 256);
			snprintf(longuser + 256, sizeof(longuser) - 256, ":%s\n", good);
			len = strlen(longuser);
		}
		snprintf(name, sizeof(name), "bad%zu", i);
		path = test_write(name, text, len);
		db = test_load(path, NULL, err, sizeof(err));
		tap_ok(db == NULL && strncmp(err, path, strlen(path)) == 0 &&
			       strncmp(err + strlen(path), cases[i].where, strlen(cases[i].where)) == 0 &&
			       strstr(err, cases[i].why) != NULL,
		       "bad credentials %zu refused: %s", i, err);
		auth_db_free(&db);
	}
	{
		char err[512];
		struct auth_db *db = test_load(test_path("no-such-file"), NULL, err, sizeof(err));

		tap_ok(db == NULL && strstr(err, "no-such-file") != NULL, "missing file: %s", err);
		db = test_load(test_dir, NULL, err, sizeof(err));
		tap_ok(db == NULL && strstr(err, "not a regular file") != NULL, "a directory: %s", err);
	}
	for (int i = 0; i < 4; i++)
		free(texts[i]);
	free(good);
	free(yes);
}

static void test_load_bad_keys(void)
{
	char pem[8192], err[512];
	struct auth_db *db;
	EVP_PKEY *small = test_gen_rsa(1024), *p384 = test_gen_ec(NID_secp384r1);
	struct auth_config cfg = { .jwt_keys_file = test_keys, .jwt_audience = AUD };
	BIO *b;
	const uint8_t *data;
	size_t n;

	pem[0] = '\0';
	test_pem_append(pem, sizeof(pem), test_ec);
	test_pem_append(pem, sizeof(pem), small);
	db = test_load(NULL, test_write_str("k1", pem), err, sizeof(err));
	tap_ok(db == NULL && strstr(err, "k1:5: RSA key not of 2048") != NULL, "1024-bit RSA: %s", err);

	pem[0] = '\0';
	test_pem_append(pem, sizeof(pem), p384);
	db = test_load(NULL, test_write_str("k2", pem), err, sizeof(err));
	tap_ok(db == NULL && strstr(err, "k2:1: EC key not on P-256") != NULL, "P-384: %s", err);

	b = BIO_new(BIO_s_mem());
	PEM_write_bio_PrivateKey(b, test_ec, NULL, NULL, 0, NULL, NULL);
	BIO_mem_contents(b, &data, &n);
	snprintf(pem, sizeof(pem), "%.*s", (int)n, (const char *)data);
	BIO_free(b);
	db = test_load(NULL, test_write_str("k3", pem), err, sizeof(err));
	tap_ok(db == NULL && strstr(err, "k3:1: PEM block is not a PUBLIC KEY") != NULL,
	       "private key refused: %s", err);

	db = test_load(NULL, test_write_str("k4", "hello\n-----BEGIN PUBLIC KEY-----\nAAAA!!!\n"
						   "-----END PUBLIC KEY-----\n"), err, sizeof(err));
	tap_ok(db == NULL && strstr(err, "k4:2: unreadable PUBLIC KEY") != NULL, "garbage: %s", err);

	db = test_load(NULL, test_write_str("k5", "no keys here\n"), err, sizeof(err));
	tap_ok(db == NULL && strstr(err, "k5: no PUBLIC KEY block") != NULL, "no block: %s", err);

	pem[0] = '\0';
	test_pem_append(pem, sizeof(pem), test_ec);
	pem[strlen(pem) - 25] = '\0';	/* cut the END line */
	db = test_load(NULL, test_write_str("k6", pem), err, sizeof(err));
	tap_ok(db == NULL && strstr(err, "k6:1: PUBLIC KEY block without its END line") != NULL,
	       "no END: %s", err);

	/* CRLF line ends are fine. */
	{
		char crlf[8192];
		size_t o = 0;

		pem[0] = '\0';
		test_pem_append(pem, sizeof(pem), test_rsa);
		for (const char *p = pem; *p != '\0' && o + 2 < sizeof(crlf); p++) {
			if (*p == '\n')
				crlf[o++] = '\r';
			crlf[o++] = *p;
		}
		crlf[o] = '\0';
		db = test_load(NULL, test_write_str("k7", crlf), err, sizeof(err));
		tap_ok(db != NULL && db->ad_nkeys == 1, "CRLF PEM loads (%s)", err);
		auth_db_free(&db);
	}

	err[0] = '\0';
	tap_ok(auth_db_load(&db, &cfg, err, sizeof(err)) != 0 && db == NULL &&
		       strstr(err, "issuer and audience") != NULL,
	       "keys without an issuer: %s", err);
	cfg.hostname = "bad host";
	tap_ok(auth_db_load(&db, &cfg, err, sizeof(err)) != 0 && strstr(err, "hostname") != NULL,
	       "bad hostname: %s", err);
	tap_ok(auth_db_load(&db, NULL, err, sizeof(err)) != 0, "NULL config");
	EVP_PKEY_free(small);
	EVP_PKEY_free(p384);
}

/* ---- PLAIN ---- */

static int test_plain_initial(const void *msg, size_t len, struct auth_exchange *x)
{
	char out[512], *b = test_b64n(msg, len);
	int r = auth_start(x, test_db, AUTH_MECH_PLAIN, b, strlen(b), NOW, 1, out, sizeof(out));

	free(b);
	return r;
}

static void test_plain(void)
{
	struct auth_exchange x;
	char out[512], *b;
	int r;

	r = test_plain_initial("\0alice\0alice-pw", 15, &x);
	test_expect(r, AUTH_R_OK, "PLAIN good");
	tap_ok(strcmp(x.ax_user, "alice") == 0, "PLAIN identity: %s", x.ax_user);
	test_expect(test_plain_initial("alice\0alice\0alice-pw", 20, &x), AUTH_R_OK,
		    "PLAIN authzid = authcid");
	test_expect(test_plain_initial("\0bob\0bob-pw", 11, &x), AUTH_R_OK, "PLAIN SHA-512 account");
	test_expect(test_plain_initial("\0dave@example.org\0dave-pw", 25, &x), AUTH_R_OK,
		    "PLAIN address-like user");
	test_expect(test_plain_initial("\0erin\0erin-pw", 13, &x), AUTH_R_OK,
		    "PLAIN bcrypt account, last line without a newline");
	test_expect(test_plain_initial("\0carol\0carol pw", 15, &x), AUTH_R_OK,
		    "PLAIN password with a space");
	r = test_plain_initial("\0alice\0alice-PW", 15, &x);
	test_expect(r, AUTH_R_FAIL, "PLAIN wrong password");
	tap_ok(x.ax_user[0] == '\0', "no identity after failure");
	test_expect(test_plain_initial("\0alice\0bob-pw", 13, &x), AUTH_R_FAIL,
		    "PLAIN another account's password");
	test_expect(test_plain_initial("\0mallory\0alice-pw", 17, &x), AUTH_R_FAIL,
		    "PLAIN unknown user");
	test_expect(test_plain_initial("\0Alice\0alice-pw", 15, &x), AUTH_R_FAIL,
		    "PLAIN user names are case-sensitive");
	test_expect(test_plain_initial("bob\0alice\0alice-pw", 18, &x), AUTH_R_FAIL,
		    "PLAIN authzid mismatch");
	test_expect(test_plain_initial("alice alice-pw", 14, &x), AUTH_R_MALFORMED,
		    "PLAIN without NULs");
	test_expect(test_plain_initial("alice\0alice-pw", 14, &x), AUTH_R_MALFORMED,
		    "PLAIN with one NUL");
	test_expect(test_plain_initial("\0alice\0alice-pw\0", 16, &x), AUTH_R_MALFORMED,
		    "PLAIN with three NULs");
	test_expect(test_plain_initial("\0\0alice-pw", 10, &x), AUTH_R_MALFORMED,
		    "PLAIN empty authcid");
	test_expect(test_plain_initial("\0alice\0", 7, &x), AUTH_R_MALFORMED,
		    "PLAIN empty password");

	/* Strict base64. */
	{
		static const char *const bad[] = {
			"AGFsaWNlAGFsaWNlLXB3!", "AGFsaWNl AGFsaWNlLXB3", "AGFsaWNlAGFsaWNlLXB3\n",
			"AGFsaWNlAGFsaWNlLXB", "AGFsaWNlAGFsaWNlLXB3=", "AGFsaWNlAGFsaWNlLXB3==",
			"AA=A", "QR==", "=",
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			r = auth_start(&x, test_db, AUTH_MECH_PLAIN, "", 0, NOW, 1, out, sizeof(out));
			test_expect(r, AUTH_R_CONTINUE, "PLAIN without initial response");
			r = auth_step(&x, test_db, bad[i], strlen(bad[i]), NOW, out, sizeof(out));
			test_expect(r, AUTH_R_MALFORMED, "PLAIN strict base64");
		}
	}
	test_expect(auth_start(&x, test_db, AUTH_MECH_PLAIN, "QR==", 4, NOW, 1, out, sizeof(out)),
		    AUTH_R_MALFORMED, "PLAIN initial with stray bits");
	test_expect(auth_start(&x, test_db, AUTH_MECH_PLAIN, "=", 1, NOW, 1, out, sizeof(out)),
		    AUTH_R_MALFORMED, "PLAIN initial \"=\" (empty message)");

	/* Challenge, then the response. */
	r = auth_start(&x, test_db, AUTH_MECH_PLAIN, NULL, 0, NOW, 1, out, sizeof(out));
	tap_ok(r == AUTH_R_CONTINUE && out[0] == '\0', "PLAIN: empty 334 challenge");
	b = test_b64n("\0alice\0alice-pw", 15);
	test_expect(auth_step(&x, test_db, b, strlen(b), NOW, out, sizeof(out)), AUTH_R_OK,
		    "PLAIN response after challenge");
	test_expect(auth_step(&x, test_db, b, strlen(b), NOW, out, sizeof(out)), AUTH_R_MALFORMED,
		    "a step after the end");
	free(b);

	/* Cancel, as the initial response and later. */
	test_expect(auth_start(&x, test_db, AUTH_MECH_PLAIN, "*", 1, NOW, 1, out, sizeof(out)),
		    AUTH_R_CANCELLED, "PLAIN initial \"*\"");
	auth_start(&x, test_db, AUTH_MECH_PLAIN, NULL, 0, NOW, 1, out, sizeof(out));
	test_expect(auth_step(&x, test_db, "*", 1, NOW, out, sizeof(out)), AUTH_R_CANCELLED,
		    "PLAIN \"*\" cancels");

	/* Size limit. */
	{
		char *big = malloc(AUTH_RESPONSE_MAX + 5), *pw = malloc(9216);

		memset(big, 'A', AUTH_RESPONSE_MAX + 4);
		auth_start(&x, test_db, AUTH_MECH_PLAIN, NULL, 0, NOW, 1, out, sizeof(out));
		test_expect(auth_step(&x, test_db, big, AUTH_RESPONSE_MAX + 4, NOW, out, sizeof(out)),
			    AUTH_R_MALFORMED, "response over 12288 octets");
		test_expect(auth_start(&x, test_db, AUTH_MECH_PLAIN, big, AUTH_RESPONSE_MAX + 4, NOW,
				       1, out, sizeof(out)),
			    AUTH_R_MALFORMED, "initial response over 12288 octets");
		/* The longest allowed response decodes; its password is too
		 * long for crypt(3) and simply fails. */
		memcpy(pw, "\0alice\0", 7);
		memset(pw + 7, 'p', 9216 - 7);
		b = test_b64n(pw, 9216);
		tap_ok(strlen(b) == AUTH_RESPONSE_MAX, "12288-octet response built");
		auth_start(&x, test_db, AUTH_MECH_PLAIN, NULL, 0, NOW, 1, out, sizeof(out));
		test_expect(auth_step(&x, test_db, b, strlen(b), NOW, out, sizeof(out)), AUTH_R_FAIL,
			    "12288-octet response is read, long password fails");
		free(b);
		free(big);
		free(pw);
	}
	test_expect(auth_start(&x, NULL, AUTH_MECH_PLAIN, NULL, 0, NOW, 1, out, sizeof(out)),
		    AUTH_R_TEMP, "no db: temporary failure");
	test_expect(auth_start(&x, test_db, AUTH_MECH_COUNT, NULL, 0, NOW, 1, out, sizeof(out)),
		    AUTH_R_MALFORMED, "bad mechanism number");
}

/* ---- LOGIN ---- */

static void test_login(void)
{
	struct auth_exchange x;
	char out[512], *u, *p;
	int r;

	r = auth_start(&x, test_db, AUTH_MECH_LOGIN, NULL, 0, NOW, 1, out, sizeof(out));
	tap_ok(r == AUTH_R_CONTINUE && strcmp(out, "VXNlcm5hbWU6") == 0, "LOGIN asks Username: (%s)", out);
	u = test_b64("alice");
	r = auth_step(&x, test_db, u, strlen(u), NOW, out, sizeof(out));
	tap_ok(r == AUTH_R_CONTINUE && strcmp(out, "UGFzc3dvcmQ6") == 0, "LOGIN asks Password: (%s)", out);
	p = test_b64("alice-pw");
	test_expect(auth_step(&x, test_db, p, strlen(p), NOW, out, sizeof(out)), AUTH_R_OK, "LOGIN good");
	tap_ok(strcmp(x.ax_user, "alice") == 0, "LOGIN identity: %s", x.ax_user);
	free(p);

	/* The initial response is the user name. */
	r = auth_start(&x, test_db, AUTH_MECH_LOGIN, u, strlen(u), NOW, 1, out, sizeof(out));
	tap_ok(r == AUTH_R_CONTINUE && strcmp(out, "UGFzc3dvcmQ6") == 0,
	       "LOGIN with initial response asks Password:");
	p = test_b64("alice-pw");
	test_expect(auth_step(&x, test_db, p, strlen(p), NOW, out, sizeof(out)), AUTH_R_OK,
		    "LOGIN with initial response good");
	free(p);
	free(u);

	u = test_b64("carol");
	p = test_b64("carol pw");
	auth_start(&x, test_db, AUTH_MECH_LOGIN, u, strlen(u), NOW, 1, out, sizeof(out));
	test_expect(auth_step(&x, test_db, p, strlen(p), NOW, out, sizeof(out)), AUTH_R_OK,
		    "LOGIN carol");
	free(p);
	p = test_b64("alice-pw");
	auth_start(&x, test_db, AUTH_MECH_LOGIN, u, strlen(u), NOW, 1, out, sizeof(out));
	test_expect(auth_step(&x, test_db, p, strlen(p), NOW, out, sizeof(out)), AUTH_R_FAIL,
		    "LOGIN wrong password");
	tap_ok(x.ax_user[0] == '\0', "LOGIN: no identity after failure");
	free(u);

	u = test_b64("nobody");
	r = auth_start(&x, test_db, AUTH_MECH_LOGIN, NULL, 0, NOW, 1, out, sizeof(out));
	r = auth_step(&x, test_db, u, strlen(u), NOW, out, sizeof(out));
	tap_ok(r == AUTH_R_CONTINUE && strcmp(out, "UGFzc3dvcmQ6") == 0,
	       "LOGIN unknown user still asks for the password");
	test_expect(auth_step(&x, test_db, p, strlen(p), NOW, out, sizeof(out)), AUTH_R_FAIL,
		    "LOGIN unknown user fails");
	free(u);

	{
		char name[301];

		memset(name, 'n', 300);
		name[300] = '\0';
		u = test_b64(name);
		r = auth_start(&x, test_db, AUTH_MECH_LOGIN, u, strlen(u), NOW, 1, out, sizeof(out));
		test_expect(r, AUTH_R_CONTINUE, "LOGIN 300-octet name still asks for password");
		test_expect(auth_step(&x, test_db, p, strlen(p), NOW, out, sizeof(out)), AUTH_R_FAIL,
			    "LOGIN 300-octet name fails");
		free(u);
	}
	r = auth_start(&x, test_db, AUTH_MECH_LOGIN, "=", 1, NOW, 1, out, sizeof(out));
	test_expect(r, AUTH_R_CONTINUE, "LOGIN empty initial name");
	test_expect(auth_step(&x, test_db, p, strlen(p), NOW, out, sizeof(out)), AUTH_R_FAIL,
		    "LOGIN empty name fails");

	u = test_b64("alice");
	auth_start(&x, test_db, AUTH_MECH_LOGIN, u, strlen(u), NOW, 1, out, sizeof(out));
	test_expect(auth_step(&x, test_db, "*", 1, NOW, out, sizeof(out)), AUTH_R_CANCELLED,
		    "LOGIN \"*\" at the password");
	auth_start(&x, test_db, AUTH_MECH_LOGIN, NULL, 0, NOW, 1, out, sizeof(out));
	test_expect(auth_step(&x, test_db, "*", 1, NOW, out, sizeof(out)), AUTH_R_CANCELLED,
		    "LOGIN \"*\" at the user name");
	auth_start(&x, test_db, AUTH_MECH_LOGIN, NULL, 0, NOW, 1, out, sizeof(out));
	test_expect(auth_step(&x, test_db, "YWxp Y2U=", 9, NOW, out, sizeof(out)), AUTH_R_MALFORMED,
		    "LOGIN bad base64");
	test_expect(auth_start(&x, test_db, AUTH_MECH_LOGIN, NULL, 0, NOW, 1, out, 5),
		    AUTH_R_TEMP, "LOGIN: out too small");
	free(u);
	free(p);
}

/* ---- CRAM-MD5 ---- */

static char *test_cram_response(const char *user, const char *secret, const char *challenge,
				bool upper)
{
	uint8_t mac[16];
	unsigned n = 0;
	char line[400], *b;

	HMAC(EVP_md5(), secret, strlen(secret), (const uint8_t *)challenge, strlen(challenge), mac,
	     &n);
	snprintf(line, sizeof(line), "%s ", user);
	for (unsigned i = 0; i < n; i++)
		snprintf(line + strlen(line), 3, upper ? "%02X" : "%02x", mac[i]);
	b = test_b64(line);
	return b;
}

static void test_cram(void)
{
	struct auth_exchange x;
	char out[512], *chal, *resp;
	int r;

	r = auth_start(&x, test_db, AUTH_MECH_CRAM_MD5, NULL, 0, NOW, 12345, out, sizeof(out));
	chal = test_unb64(out);
	tap_ok(r == AUTH_R_CONTINUE && strcmp(chal, "<12345.1700000000@" HOST ">") == 0,
	       "CRAM-MD5 challenge %s", chal);
	resp = test_cram_response("bob", "bob-secret:with:colons", chal, false);
	test_expect(auth_step(&x, test_db, resp, strlen(resp), NOW, out, sizeof(out)), AUTH_R_OK,
		    "CRAM-MD5 good");
	tap_ok(strcmp(x.ax_user, "bob") == 0, "CRAM-MD5 identity %s", x.ax_user);
	free(resp);

	auth_start(&x, test_db, AUTH_MECH_CRAM_MD5, NULL, 0, NOW, 12345, out, sizeof(out));
	resp = test_cram_response("bob", "bob-secret:with:colons", chal, true);
	test_expect(auth_step(&x, test_db, resp, strlen(resp), NOW, out, sizeof(out)), AUTH_R_OK,
		    "CRAM-MD5 upper-case hex");
	free(resp);

	auth_start(&x, test_db, AUTH_MECH_CRAM_MD5, NULL, 0, NOW, 12345, out, sizeof(out));
	resp = test_cram_response("bob", "bob-secret", chal, false);
	test_expect(auth_step(&x, test_db, resp, strlen(resp), NOW, out, sizeof(out)), AUTH_R_FAIL,
		    "CRAM-MD5 wrong secret");
	tap_ok(x.ax_user[0] == '\0', "CRAM-MD5: no identity after failure");
	free(resp);

	/* A digest for another challenge (replay). */
	auth_start(&x, test_db, AUTH_MECH_CRAM_MD5, NULL, 0, NOW, 99999, out, sizeof(out));
	resp = test_cram_response("bob", "bob-secret:with:colons", chal, false);
	test_expect(auth_step(&x, test_db, resp, strlen(resp), NOW, out, sizeof(out)), AUTH_R_FAIL,
		    "CRAM-MD5 replayed digest");
	free(resp);
	free(chal);

	auth_start(&x, test_db, AUTH_MECH_CRAM_MD5, NULL, 0, NOW, 7, out, sizeof(out));
	chal = test_unb64(out);
	resp = test_cram_response("alice", "alice-pw", chal, false);
	test_expect(auth_step(&x, test_db, resp, strlen(resp), NOW, out, sizeof(out)), AUTH_R_FAIL,
		    "CRAM-MD5 account not opted in");
	free(resp);
	auth_start(&x, test_db, AUTH_MECH_CRAM_MD5, NULL, 0, NOW, 7, out, sizeof(out));
	resp = test_cram_response("mallory", "x", chal, false);
	test_expect(auth_step(&x, test_db, resp, strlen(resp), NOW, out, sizeof(out)), AUTH_R_FAIL,
		    "CRAM-MD5 unknown user");
	free(resp);
	free(chal);

	{
		static const char *const bad[] = {
			"bob", "bob 0123", "bob 0123456789abcdef0123456789abcdeg",
			" 0123456789abcdef0123456789abcdef", "bob 0123456789abcdef0123456789abcdef0",
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			char *b = test_b64(bad[i]);

			auth_start(&x, test_db, AUTH_MECH_CRAM_MD5, NULL, 0, NOW, 7, out, sizeof(out));
			test_expect(auth_step(&x, test_db, b, strlen(b), NOW, out, sizeof(out)),
				    AUTH_R_MALFORMED, bad[i]);
			free(b);
		}
	}
	test_expect(auth_start(&x, test_db, AUTH_MECH_CRAM_MD5, "Ym9i", 4, NOW, 7, out, sizeof(out)),
		    AUTH_R_MALFORMED, "CRAM-MD5 refuses an initial response");
	auth_start(&x, test_db, AUTH_MECH_CRAM_MD5, NULL, 0, NOW, 7, out, sizeof(out));
	test_expect(auth_step(&x, test_db, "*", 1, NOW, out, sizeof(out)), AUTH_R_CANCELLED,
		    "CRAM-MD5 cancel");
	test_expect(auth_start(&x, test_db, AUTH_MECH_CRAM_MD5, "*", 1, NOW, 7, out, sizeof(out)),
		    AUTH_R_CANCELLED, "CRAM-MD5 \"*\" on the AUTH line");
	test_expect(auth_start(&x, test_db, AUTH_MECH_CRAM_MD5, NULL, 0, NOW, 7, out, 20),
		    AUTH_R_TEMP, "CRAM-MD5: out too small");
	tap_ok(out[0] == '\0', "out left empty");
	r = auth_start(&x, test_db, AUTH_MECH_CRAM_MD5, NULL, 0, UINT64_MAX, UINT64_MAX, out,
		       sizeof(out));
	chal = test_unb64(out);
	tap_ok(r == AUTH_R_CONTINUE && strlen(chal) < sizeof(x.ax_challenge),
	       "largest challenge fits: %s", chal);
	free(chal);
}

/* ---- JWT ---- */

static int test_verify(const char *tok, char *sub)
{
	return auth_jwt_verify(test_db, tok, strlen(tok), NOW, sub, AUTH_USER_MAX + 1);
}

static void test_jwt_checks(void)
{
	char sub[AUTH_USER_MAX + 1], *t, *c;
	int r;
	const struct {
		const char *header;
		const char *iss, *aud;
		long exp;
		const char *sub, *extra;
		enum test_signer how;
		int want;
		const char *what;
	} cases[] = {
		{ HDR_RS, ISS, "\"" AUD "\"", 3600, "alice", "", SIGN_RS, 0, "RS256 good" },
		{ HDR_ES, ISS, "\"" AUD "\"", 3600, "alice", "", SIGN_ES, 0, "ES256 good" },
		{ HDR_ES, ISS, "[\"other\",\"" AUD "\"]", 60, "bob", ",\"nbf\":1700000000", SIGN_ES,
		  0, "aud array, nbf = now" },
		{ HDR_RS, "https:\\/\\/issuer.example", "\"smtp.ex\\u0061mple.net\"", 3600, "alice",
		  ",\"realm\":{\"roles\":[\"a\",{\"b\":[1,2.5e3,null,true]}]}", SIGN_RS, 0,
		  "escapes and nested claims" },
		{ HDR_RS, ISS, "\"" AUD "\"", 0, "alice", "", SIGN_RS, AUTH_JWT_E_EXP,
		  "exp = now is expired" },
		{ HDR_RS, ISS, "\"" AUD "\"", -1, "alice", "", SIGN_RS, AUTH_JWT_E_EXP, "expired" },
		{ HDR_ES, "https://evil.example", "\"" AUD "\"", 3600, "alice", "", SIGN_ES,
		  AUTH_JWT_E_ISS, "wrong issuer" },
		{ HDR_ES, ISS "/", "\"" AUD "\"", 3600, "alice", "", SIGN_ES, AUTH_JWT_E_ISS,
		  "issuer with a trailing slash" },
		{ HDR_ES, ISS, "\"other\"", 3600, "alice", "", SIGN_ES, AUTH_JWT_E_AUD,
		  "wrong audience" },
		{ HDR_ES, ISS, "[\"other\",\"x\"]", 3600, "alice", "", SIGN_ES, AUTH_JWT_E_AUD,
		  "audience not in the array" },
		{ HDR_ES, ISS, "[1,\"" AUD "\"]", 3600, "alice", "", SIGN_ES, AUTH_JWT_E_AUD,
		  "audience array with a non-string" },
		{ HDR_ES, ISS, "\"" AUD "\"", 3600, "alice", ",\"nbf\":1700000001", SIGN_ES,
		  AUTH_JWT_E_NBF, "not yet valid" },
		{ HDR_ES, ISS, "\"" AUD "\"", 3600, "", "", SIGN_ES, AUTH_JWT_E_SUB, "empty sub" },
		{ HDR_ES, ISS, "\"" AUD "\"", 3600, "a\\u0001b", "", SIGN_ES, AUTH_JWT_E_SUB,
		  "control character in sub" },
		{ HDR_ES, ISS, "\"" AUD "\"", 3600, "alice", ",\"sub\":\"bob\"", SIGN_ES,
		  AUTH_JWT_E_FORMAT, "duplicate claim" },
		{ HDR_RS, ISS, "\"" AUD "\"", 3600, "alice", "", SIGN_RS_TAMPERED, AUTH_JWT_E_SIG,
		  "RS256 bad signature" },
		{ HDR_ES, ISS, "\"" AUD "\"", 3600, "alice", "", SIGN_ES_OTHER, AUTH_JWT_E_SIG,
		  "ES256 signed by an unknown key" },
		{ HDR_RS, ISS, "\"" AUD "\"", 3600, "alice", "", SIGN_ES, AUTH_JWT_E_SIG,
		  "RS256 header with an ECDSA signature" },
		{ HDR_ES, ISS, "\"" AUD "\"", 3600, "alice", "", SIGN_RS, AUTH_JWT_E_SIG,
		  "ES256 header with an RSA signature" },
		{ "{\"alg\":\"none\"}", ISS, "\"" AUD "\"", 3600, "alice", "", SIGN_NONE,
		  AUTH_JWT_E_ALG, "alg none" },
		{ "{\"alg\":\"HS256\"}", ISS, "\"" AUD "\"", 3600, "alice", "", SIGN_RS,
		  AUTH_JWT_E_ALG, "alg HS256" },
		{ "{\"alg\":\"rs256\"}", ISS, "\"" AUD "\"", 3600, "alice", "", SIGN_RS,
		  AUTH_JWT_E_ALG, "alg names are case-sensitive" },
		{ "{\"typ\":\"JWT\"}", ISS, "\"" AUD "\"", 3600, "alice", "", SIGN_RS,
		  AUTH_JWT_E_FORMAT, "no alg" },
		{ "{\"alg\":\"RS256\",\"crit\":[\"exp\"]}", ISS, "\"" AUD "\"", 3600, "alice", "",
		  SIGN_RS, AUTH_JWT_E_ALG, "crit header" },
		{ "{\"alg\":\"RS256\",\"alg\":\"none\"}", ISS, "\"" AUD "\"", 3600, "alice", "",
		  SIGN_RS, AUTH_JWT_E_FORMAT, "duplicate alg" },
		{ "[\"RS256\"]", ISS, "\"" AUD "\"", 3600, "alice", "", SIGN_RS, AUTH_JWT_E_FORMAT,
		  "header not an object" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		c = test_claims(cases[i].iss, cases[i].aud, cases[i].exp, cases[i].sub, cases[i].extra);
		t = test_jwt(cases[i].header, c, cases[i].how);
		r = test_verify(t, sub);
		tap_ok(r == cases[i].want && (r != 0 || sub[0] != '\0') && (r == 0 || sub[0] == '\0'),
		       "JWT %s: %d (want %d)", cases[i].what, r, cases[i].want);
		free(t);
		free(c);
	}

	/* Claims that are not what they should be. */
	{
		static const struct {
			const char *payload;
			int want;
		} bad[] = {
			{ "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\"}", AUTH_JWT_E_EXP },
			{ "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":\"1800000000\",\"sub\":\"a\"}",
			  AUTH_JWT_E_EXP },
			{ "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1.8e9,\"sub\":\"a\"}",
			  AUTH_JWT_E_EXP },
			{ "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":-1,\"sub\":\"a\"}",
			  AUTH_JWT_E_EXP },
			{ "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1800000000.75,\"sub\":\"a\"}",
			  0 },
			{ "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":99999999999999999999999,"
			  "\"sub\":\"a\"}", 0 },
			{ "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1800000000,\"nbf\":null,"
			  "\"sub\":\"a\"}", AUTH_JWT_E_NBF },
			{ "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1800000000}", AUTH_JWT_E_SUB },
			{ "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1800000000,\"sub\":7}",
			  AUTH_JWT_E_SUB },
			{ "{\"aud\":\"" AUD "\",\"exp\":1800000000,\"sub\":\"a\"}", AUTH_JWT_E_ISS },
			{ "{\"iss\":[\"" ISS "\"],\"aud\":\"" AUD "\",\"exp\":1800000000,\"sub\":\"a\"}",
			  AUTH_JWT_E_ISS },
			{ "{\"iss\":\"" ISS "\",\"exp\":1800000000,\"sub\":\"a\"}", AUTH_JWT_E_AUD },
			{ "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1800000000,\"sub\":\"a\"", 
			  AUTH_JWT_E_FORMAT },
			{ "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1800000000,\"sub\":\"a\"} x",
			  AUTH_JWT_E_FORMAT },
			{ "not json", AUTH_JWT_E_FORMAT },
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			t = test_jwt(HDR_ES, bad[i].payload, SIGN_ES);
			r = test_verify(t, sub);
			tap_ok(r == bad[i].want, "claims %zu: %d (want %d)", i, r, bad[i].want);
			free(t);
		}
	}
	{
		char longsub[300];

		memset(longsub, 's', 256);
		longsub[256] = '\0';
		c = test_claims(ISS, "\"" AUD "\"", 60, longsub, "");
		t = test_jwt(HDR_ES, c, SIGN_ES);
		tap_ok(test_verify(t, sub) == AUTH_JWT_E_SUB, "sub of 256 octets refused");
		free(t);
		free(c);
		longsub[255] = '\0';
		c = test_claims(ISS, "\"" AUD "\"", 60, longsub, "");
		t = test_jwt(HDR_ES, c, SIGN_ES);
		tap_ok(test_verify(t, sub) == 0 && strlen(sub) == 255, "sub of 255 octets accepted");
		free(t);
		free(c);
	}

	/* Malformed compact serializations. */
	t = test_good_jwt(SIGN_RS, "alice");
	{
		char *dot1 = strchr(t, '.'), *dot2 = strrchr(t, '.'), buf[4096];
		size_t hl = (size_t)(dot1 - t);
		const struct {
			const char *fmt;
			const char *what;
		} mal[] = {
			{ "%.*s", "header only" },
			{ "%s.", "trailing dot" },
			{ "%s.x", "four parts" },
			{ "=%s", "padding" },
		};

		tap_ok(test_verify(t, sub) == 0 && strcmp(sub, "alice") == 0, "the base token is good");
		for (size_t i = 0; i < sizeof(mal) / sizeof(mal[0]); i++) {
			if (i == 0)
				snprintf(buf, sizeof(buf), mal[i].fmt, (int)hl, t);
			else
				snprintf(buf, sizeof(buf), mal[i].fmt, t);
			tap_ok(test_verify(buf, sub) == AUTH_JWT_E_FORMAT, "malformed JWT: %s",
			       mal[i].what);
		}
		snprintf(buf, sizeof(buf), "%.*s", (int)(dot2 - t + 1), t);
		tap_ok(test_verify(buf, sub) == AUTH_JWT_E_SIG, "empty signature");
		snprintf(buf, sizeof(buf), "%.*s.%s", (int)hl, t, dot1);
		tap_ok(test_verify(buf, sub) == AUTH_JWT_E_FORMAT, "doubled dot");
		snprintf(buf, sizeof(buf), "%s", t);
		buf[hl - 1] = '+';
		tap_ok(test_verify(buf, sub) == AUTH_JWT_E_FORMAT, "standard alphabet in base64url");
		snprintf(buf, sizeof(buf), "%s", t);
		buf[(size_t)(dot2 - t) + 3] = '*';
		tap_ok(test_verify(buf, sub) == AUTH_JWT_E_FORMAT, "junk in the signature");
		snprintf(buf, sizeof(buf), "%.*sQ%s", (int)hl, t, dot1);
		tap_ok(test_verify(buf, sub) == AUTH_JWT_E_FORMAT, "header of impossible length");
		snprintf(buf, sizeof(buf), "%.*s.e30.%s", (int)hl, t, dot2 + 1);
		tap_ok(test_verify(buf, sub) == AUTH_JWT_E_SIG, "swapped payload: signature fails");
		tap_ok(test_verify("", sub) == AUTH_JWT_E_FORMAT, "empty token");
		tap_ok(test_verify("a.b.c", sub) == AUTH_JWT_E_FORMAT, "a.b.c");
	}
	free(t);
	{
		char err[512];
		struct auth_db *db = test_load(test_passwd, NULL, err, sizeof(err));

		t = test_good_jwt(SIGN_ES, "alice");
		tap_ok(auth_jwt_verify(db, t, strlen(t), NOW, sub, sizeof(sub)) == AUTH_JWT_E_NOKEYS,
		       "no keys configured");
		free(t);
		auth_db_free(&db);
	}
}

/* ---- OAUTHBEARER and XOAUTH2 ---- */

static int test_oauth(enum auth_mech m, const char *msg, bool initial, char *out, size_t outlen,
		      struct auth_exchange *x)
{
	char *b = test_b64n(msg, strlen(msg));
	int r;

	if (initial) {
		r = auth_start(x, test_db, m, b, strlen(b), NOW, 1, out, outlen);
	} else {
		r = auth_start(x, test_db, m, NULL, 0, NOW, 1, out, outlen);
		if (r == AUTH_R_CONTINUE && out[0] == '\0')
			r = auth_step(x, test_db, b, strlen(b), NOW, out, outlen);
		else
			r = -1;
	}
	free(b);
	return r;
}

static char *test_bearer_msg(const char *gs2, const char *tok, const char *extra)
{
	char *s;

	if (asprintf(&s, "%s\x01%sauth=Bearer %s\x01\x01", gs2, extra, tok) < 0)
		exit(1);
	return s;
}

static char *test_xoauth2_msg(const char *user, const char *tok)
{
	char *s;

	if (asprintf(&s, "user=%s\x01" "auth=Bearer %s\x01\x01", user, tok) < 0)
		exit(1);
	return s;
}

/* Expect the failure dance: an error JSON, then FAIL on the ack line. */
static void test_oauth_dance(enum auth_mech m, const char *msg, const char *what)
{
	struct auth_exchange x;
	char out[512], *j;
	int r = test_oauth(m, msg, true, out, sizeof(out), &x);
	const char *ack = m == AUTH_MECH_OAUTHBEARER ? "AQ==" : "";

	j = test_unb64(out);
	tap_ok(r == AUTH_R_CONTINUE && x.ax_failing && strstr(j, "\"status\":\"invalid_token\"") &&
		       j[0] == '{' && j[strlen(j) - 1] == '}',
	       "%s: %s error %s", m == AUTH_MECH_OAUTHBEARER ? "OAUTHBEARER" : "XOAUTH2", what, j);
	r = auth_step(&x, test_db, ack, strlen(ack), NOW, out, sizeof(out));
	tap_ok(r == AUTH_R_FAIL && !x.ax_failing && x.ax_user[0] == '\0' && out[0] == '\0',
	       "  then the ack fails: %s", test_rname(r));
	free(j);
}

static void test_oauthbearer(void)
{
	struct auth_exchange x;
	char out[512], *t, *m, *c;
	int r;

	t = test_good_jwt(SIGN_RS, "alice");
	m = test_bearer_msg("n,a=alice,", t, "");
	r = test_oauth(AUTH_MECH_OAUTHBEARER, m, true, out, sizeof(out), &x);
	tap_ok(r == AUTH_R_OK && strcmp(x.ax_user, "alice") == 0, "OAUTHBEARER RS256 with authzid");
	free(m);
	m = test_bearer_msg("n,,", t, "host=mx.example.net\x01port=587\x01");
	r = test_oauth(AUTH_MECH_OAUTHBEARER, m, false, out, sizeof(out), &x);
	tap_ok(r == AUTH_R_OK && strcmp(x.ax_user, "alice") == 0,
	       "OAUTHBEARER after an empty challenge, host and port, no authzid");
	free(m);
	m = test_bearer_msg("y,,", t, "");
	m[3 + 1 + 5] = 'b';	/* "bearer": the scheme is case-insensitive */
	r = test_oauth(AUTH_MECH_OAUTHBEARER, m, true, out, sizeof(out), &x);
	test_expect(r, AUTH_R_OK, "OAUTHBEARER y flag, lower-case scheme");
	free(m);
	free(t);

	t = test_good_jwt(SIGN_ES, "a,b=c");
	m = test_bearer_msg("n,a=a=2Cb=3Dc,", t, "");
	r = test_oauth(AUTH_MECH_OAUTHBEARER, m, true, out, sizeof(out), &x);
	tap_ok(r == AUTH_R_OK && strcmp(x.ax_user, "a,b=c") == 0, "OAUTHBEARER saslname escapes");
	free(m);
	free(t);

	t = test_good_jwt(SIGN_ES, "alice");
	m = test_bearer_msg("n,a=bob,", t, "");
	test_oauth_dance(AUTH_MECH_OAUTHBEARER, m, "authzid is not sub");
	free(m);
	free(t);

	c = test_claims(ISS, "\"" AUD "\"", -5, "alice", "");
	t = test_jwt(HDR_ES, c, SIGN_ES);
	m = test_bearer_msg("n,,", t, "");
	test_oauth_dance(AUTH_MECH_OAUTHBEARER, m, "expired");
	free(m);
	free(t);
	free(c);
	c = test_claims("https://evil.example", "\"" AUD "\"", 60, "alice", "");
	t = test_jwt(HDR_RS, c, SIGN_RS);
	m = test_bearer_msg("n,,", t, "");
	test_oauth_dance(AUTH_MECH_OAUTHBEARER, m, "wrong issuer");
	free(m);
	free(t);
	free(c);
	c = test_claims(ISS, "\"nope\"", 60, "alice", "");
	t = test_jwt(HDR_RS, c, SIGN_RS);
	m = test_bearer_msg("n,,", t, "");
	test_oauth_dance(AUTH_MECH_OAUTHBEARER, m, "wrong audience");
	free(m);
	free(t);
	free(c);
	t = test_good_jwt(SIGN_RS_TAMPERED, "alice");
	m = test_bearer_msg("n,,", t, "");
	test_oauth_dance(AUTH_MECH_OAUTHBEARER, m, "bad signature");
	free(m);
	free(t);
	c = test_claims(ISS, "\"" AUD "\"", 60, "alice", "");
	t = test_jwt("{\"alg\":\"none\",\"typ\":\"JWT\"}", c, SIGN_NONE);
	m = test_bearer_msg("n,,", t, "");
	test_oauth_dance(AUTH_MECH_OAUTHBEARER, m, "alg none");
	free(m);
	free(t);
	free(c);
	m = test_bearer_msg("n,,", "not-a-jwt", "");
	test_oauth_dance(AUTH_MECH_OAUTHBEARER, m, "malformed JWT");
	free(m);
	test_oauth_dance(AUTH_MECH_OAUTHBEARER, "n,,\x01" "auth=Basic YWxpY2U6cHc=\x01\x01",
			 "not a Bearer scheme");
	test_oauth_dance(AUTH_MECH_OAUTHBEARER, "n,,\x01" "auth=Bearer \x01\x01", "empty token");

	/* The dance, acked by something else or cancelled. */
	t = test_good_jwt(SIGN_ES_OTHER, "alice");
	m = test_bearer_msg("n,,", t, "");
	r = test_oauth(AUTH_MECH_OAUTHBEARER, m, true, out, sizeof(out), &x);
	test_expect(r, AUTH_R_CONTINUE, "OAUTHBEARER other key: error");
	test_expect(auth_step(&x, test_db, "*", 1, NOW, out, sizeof(out)), AUTH_R_CANCELLED,
		    "OAUTHBEARER error then \"*\"");
	r = test_oauth(AUTH_MECH_OAUTHBEARER, m, true, out, sizeof(out), &x);
	test_expect(auth_step(&x, test_db, "YWJj", 4, NOW, out, sizeof(out)), AUTH_R_FAIL,
		    "OAUTHBEARER error then another line");
	r = test_oauth(AUTH_MECH_OAUTHBEARER, m, true, out, 20, &x);
	test_expect(r, AUTH_R_FAIL, "OAUTHBEARER error without room for it fails at once");
	free(m);
	free(t);

	/* SASL syntax errors are MALFORMED, not a token failure. */
	{
		static const char *const bad[] = {
			"", "n,,", "n,,\x01", "n,,\x01\x01", "auth=Bearer x\x01\x01",
			"p=tls-unique,,\x01" "auth=Bearer x\x01\x01", "n,a=,\x01" "auth=Bearer x\x01\x01",
			"n,a=a=2D,\x01" "auth=Bearer x\x01\x01", "n,,auth=Bearer x\x01\x01",
			"n,,\x01" "auth=Bearer x\x01", "n,,\x01" "auth=Bearer x\x01\x01x",
			"n,,\x01" "auth=Bearer x\x01" "auth=Bearer y\x01\x01",
			"n,,\x01" "=x\x01" "auth=Bearer x\x01\x01", "n,,\x01" "ho-st=x\x01\x01",
			"n,,\x01" "host=x\x01\x01", "n,,\x01" "auth=Bearer x\x02\x01\x01",
			"x,,\x01" "auth=Bearer x\x01\x01",
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			char *b = test_b64n(bad[i], strlen(bad[i]));

			auth_start(&x, test_db, AUTH_MECH_OAUTHBEARER, NULL, 0, NOW, 1, out,
				   sizeof(out));
			r = auth_step(&x, test_db, b, strlen(b), NOW, out, sizeof(out));
			tap_ok(r == AUTH_R_MALFORMED, "OAUTHBEARER syntax error %zu: %s", i,
			       test_rname(r));
			free(b);
		}
	}
	auth_start(&x, test_db, AUTH_MECH_OAUTHBEARER, NULL, 0, NOW, 1, out, sizeof(out));
	test_expect(auth_step(&x, test_db, "*", 1, NOW, out, sizeof(out)), AUTH_R_CANCELLED,
		    "OAUTHBEARER cancel");
	{
		char err[512];
		struct auth_db *db = test_load(test_passwd, NULL, err, sizeof(err));

		t = test_good_jwt(SIGN_ES, "alice");
		m = test_bearer_msg("n,,", t, "");
		c = test_b64(m);
		r = auth_start(&x, db, AUTH_MECH_OAUTHBEARER, c, strlen(c), NOW, 1, out, sizeof(out));
		test_expect(r, AUTH_R_CONTINUE, "OAUTHBEARER without keys: error");
		test_expect(auth_step(&x, db, "AQ==", 4, NOW, out, sizeof(out)), AUTH_R_FAIL,
			    "  then fail");
		free(c);
		free(m);
		free(t);
		auth_db_free(&db);
	}
}

static void test_xoauth2(void)
{
	struct auth_exchange x;
	char out[512], *t, *m, *c;
	int r;

	t = test_good_jwt(SIGN_RS, "alice");
	m = test_xoauth2_msg("alice", t);
	r = test_oauth(AUTH_MECH_XOAUTH2, m, true, out, sizeof(out), &x);
	tap_ok(r == AUTH_R_OK && strcmp(x.ax_user, "alice") == 0, "XOAUTH2 RS256");
	free(m);
	free(t);
	t = test_good_jwt(SIGN_ES, "dave@example.org");
	m = test_xoauth2_msg("dave@example.org", t);
	r = test_oauth(AUTH_MECH_XOAUTH2, m, false, out, sizeof(out), &x);
	tap_ok(r == AUTH_R_OK && strcmp(x.ax_user, "dave@example.org") == 0,
	       "XOAUTH2 ES256 after an empty challenge");
	free(m);

	m = test_xoauth2_msg("alice", t);
	test_oauth_dance(AUTH_MECH_XOAUTH2, m, "user is not sub");
	free(m);
	free(t);
	c = test_claims(ISS, "\"" AUD "\"", -1, "alice", "");
	t = test_jwt(HDR_RS, c, SIGN_RS);
	m = test_xoauth2_msg("alice", t);
	test_oauth_dance(AUTH_MECH_XOAUTH2, m, "expired");
	free(m);
	free(t);
	free(c);
	c = test_claims("https://evil.example", "\"" AUD "\"", 60, "alice", "");
	t = test_jwt(HDR_ES, c, SIGN_ES);
	m = test_xoauth2_msg("alice", t);
	test_oauth_dance(AUTH_MECH_XOAUTH2, m, "wrong issuer");
	free(m);
	free(t);
	free(c);
	c = test_claims(ISS, "[]", 60, "alice", "");
	t = test_jwt(HDR_ES, c, SIGN_ES);
	m = test_xoauth2_msg("alice", t);
	test_oauth_dance(AUTH_MECH_XOAUTH2, m, "wrong audience");
	free(m);
	free(t);
	free(c);
	t = test_good_jwt(SIGN_ES_OTHER, "alice");
	m = test_xoauth2_msg("alice", t);
	test_oauth_dance(AUTH_MECH_XOAUTH2, m, "bad signature");
	free(m);
	free(t);
	c = test_claims(ISS, "\"" AUD "\"", 60, "alice", "");
	t = test_jwt("{\"alg\":\"none\"}", c, SIGN_NONE);
	m = test_xoauth2_msg("alice", t);
	test_oauth_dance(AUTH_MECH_XOAUTH2, m, "alg none");
	free(m);
	free(t);
	free(c);
	m = test_xoauth2_msg("alice", "a.b");
	test_oauth_dance(AUTH_MECH_XOAUTH2, m, "malformed JWT");
	free(m);

	{
		static const char *const bad[] = {
			"auth=Bearer x\x01\x01", "user=alice\x01\x01", "user=\x01" "auth=Bearer x\x01\x01",
			"user=alice\x01" "auth=Bearer x\x01", "user=a\x01user=b\x01" "auth=Bearer x\x01\x01",
			"n,,\x01" "auth=Bearer x\x01\x01",
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			char *b = test_b64n(bad[i], strlen(bad[i]));

			r = auth_start(&x, test_db, AUTH_MECH_XOAUTH2, b, strlen(b), NOW, 1, out,
				       sizeof(out));
			tap_ok(r == AUTH_R_MALFORMED, "XOAUTH2 syntax error %zu: %s", i, test_rname(r));
			free(b);
		}
	}
	auth_start(&x, test_db, AUTH_MECH_XOAUTH2, NULL, 0, NOW, 1, out, sizeof(out));
	test_expect(auth_step(&x, test_db, "*", 1, NOW, out, sizeof(out)), AUTH_R_CANCELLED,
		    "XOAUTH2 cancel");
}

/* ---- JSON reader and base64 alone ---- */

#define TEST_DECODED "x\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80"

static void test_json(void)
{
	static const struct auth_json_limits lim = {
		.jl_max_len = 4096, .jl_max_members = 8, .jl_max_depth = 4,
	};
	static const char *const good[] = {
		"{}", " {\"a\":1}\n", "{\"a\":[1,\"x\"],\"b\":{\"c\":[{}]}}",
		"{\"a\":\"\\u00e9\\ud83d\\ude00\",\"b\":-0.5e+10,\"c\":true,\"d\":null,\"e\":false}",
		"{\"\":\"\",\"a\":\"\xc3\xa9\xf0\x9f\x98\x80\"}", "{\"a\":[]}", "{\"a\":0}",
	};
	static const char *const bad[] = {
		"", " ", "[]", "\"a\"", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{,}",
		"{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":1e}", "{\"a\":+1}", "{\"a\":-}",
		"{\"a\":\"\x01\"}", "{\"a\":\"\\u0000\"}", "{\"a\":\"\\ud800\"}",
		"{\"a\":\"\\udc00\"}", "{\"a\":\"\\ud800\\u0041\"}", "{\"a\":\"\\x\"}",
		"{\"a\":\"\\u12\"}", "{} x", "{}{}", "{\"a\":tru}", "{\"a\":nul}", "{\"a\":\"\xc0\xaf\"}",
		"{\"a\":\"\xed\xa0\x80\"}", "{\"a\":\"\xf4\x90\x80\x80\"}", "{\"a\":\"\xe2\x82\"}",
		"{\"a\":[[[[1]]]]}", "{\"a\":{\"b\":{\"c\":{\"d\":{}}}}}", "{'a':1}", "{\"a\" 1}",
		"{\"a\":1 \"b\":2}", "{\"a\":\"x}", "{\"a\":[1,]}", "{\"a\":[,1]}",
		"{\"1\":1,\"2\":2,\"3\":3,\"4\":4,\"5\":5,\"6\":6,\"7\":7,\"8\":8,\"9\":9}",
	};
	struct auth_json_member m[8];
	struct auth_json_val v, e;
	char buf[64];
	size_t n, pos = 0, len;
	uint64_t u = 0;
	const char *doc;
	int r;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		tap_ok(auth_json_parse(good[i], strlen(good[i]), &lim, m, &n) == 0, "JSON good %zu", i);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		tap_ok(auth_json_parse(bad[i], strlen(bad[i]), &lim, m, &n) != 0 && n == 0,
		       "JSON bad %zu refused", i);
	doc = "{\"a\":\"\\u00e9\\ud83d\\ude00\"}";
	tap_ok(auth_json_parse(doc, 3, &lim, m, &n) != 0, "JSON cut short");
	tap_ok(auth_json_parse("{\"a\":1}", 7, &(struct auth_json_limits){ 6, 8, 4 }, m, &n) != 0,
	       "JSON over the size limit");

	doc = "{\"k\\u0065y\":\"x\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\",\"arr\":[\"p\", \"q\\u0021\"],"
	      "\"num\":1700000000.9,\"big\":123456789012345678901234567890,\"neg\":-5,\"exp\":1e3,"
	      "\"dup\":1,\"dup\":2}";
	r = auth_json_parse(doc, strlen(doc), &lim, m, &n);
	tap_ok(r == 0 && n == 8, "JSON doc: %zu members", n);
	tap_ok(auth_json_find(m, n, "key", &v) == 1 && v.jv_type == AUTH_JSON_STRING,
	       "escaped key found");
	r = auth_json_str_copy(&v, buf, sizeof(buf), &len);
	tap_ok(r == 0 && len == 15 && memcmp(buf, TEST_DECODED, 16) == 0,
	       "str_copy decodes escapes (%zu octets)", len);
	tap_ok(auth_json_str_eq(&v, TEST_DECODED, 15), "str_eq across escapes");
	tap_ok(!auth_json_str_eq(&v, "x", 1) && !auth_json_str_eq(&v, TEST_DECODED "!", 16) &&
		       !auth_json_str_eq(&v, TEST_DECODED, 14),
	       "str_eq: prefix and longer differ");
	tap_ok(auth_json_str_copy(&v, buf, 15, &len) != 0 && auth_json_str_copy(&v, buf, 16, &len) == 0,
	       "str_copy needs room for the NUL");
	tap_ok(auth_json_find(m, n, "arr", &v) == 1 && v.jv_type == AUTH_JSON_ARRAY && v.jv_strings,
	       "array of strings");
	tap_ok(auth_json_array_next(&v, &pos, &e) == 1 && auth_json_str_eq(&e, "p", 1) &&
		       auth_json_array_next(&v, &pos, &e) == 1 && auth_json_str_eq(&e, "q!", 2) &&
		       auth_json_array_next(&v, &pos, &e) == 0,
	       "array_next walks it");
	r = auth_json_find(m, n, "num", &v) == 1 ? auth_json_num_u64(&v, &u) : -1;
	tap_ok(r == 0 && u == 1700000000u,
	       "fraction dropped: %llu", (unsigned long long)u);
	tap_ok(auth_json_find(m, n, "big", &v) == 1 && auth_json_num_u64(&v, &u) == 0 &&
		       u == UINT64_MAX,
	       "huge number saturates");
	tap_ok(auth_json_find(m, n, "neg", &v) == 1 && auth_json_num_u64(&v, &u) != 0, "negative refused");
	tap_ok(auth_json_find(m, n, "exp", &v) == 1 && auth_json_num_u64(&v, &u) != 0, "exponent refused");
	tap_ok(auth_json_find(m, n, "dup", &v) == -1, "duplicate key reported");
	tap_ok(auth_json_find(m, n, "none", &v) == 0, "absent key");
	tap_ok(auth_json_find(m, n, "ke", &v) == 0 && auth_json_find(m, n, "keyy", &v) == 0,
	       "no prefix matches");
	tap_ok(auth_json_find(m, n, "arr", &v) == 1 && !auth_json_str_eq(&v, "p", 1) &&
		       auth_json_str_copy(&v, buf, sizeof(buf), &len) != 0,
	       "string functions refuse an array");
	doc = "{\"a\":[\"x\",1]}";
	pos = 0;
	tap_ok(auth_json_parse(doc, strlen(doc), &lim, m, &n) == 0 && !m[0].jm_val.jv_strings &&
		       auth_json_array_next(&m[0].jm_val, &pos, &e) == 0,
	       "mixed array is not walked");
}

static void test_base64(void)
{
	uint8_t o[64];
	size_t n;
	static const struct {
		const char *in;
		int want;
		size_t len;
	} std[] = {
		{ "", 0, 0 }, { "QQ==", 0, 1 }, { "QUI=", 0, 2 }, { "QUJD", 0, 3 }, { "QR==", -1, 0 },
		{ "QUJ=", -1, 0 }, { "QQ=", -1, 0 }, { "Q===", -1, 0 }, { "QQ==QUJD", -1, 0 },
		{ "QU JD", -1, 0 }, { "QUJD\r\n", -1, 0 }, { "QUJ-", -1, 0 }, { "====", -1, 0 },
	}, url[] = {
		{ "", 0, 0 }, { "QQ", 0, 1 }, { "QUI", 0, 2 }, { "QUJD", 0, 3 }, { "QR", -1, 0 },
		{ "Q", -1, 0 }, { "QQ==", -1, 0 }, { "-_-_", 0, 3 }, { "+/+/", -1, 0 },
		{ "QUJDQ", -1, 0 }, { "QU.D", -1, 0 },
	};

	for (size_t i = 0; i < sizeof(std) / sizeof(std[0]); i++)
		tap_ok(auth_b64_decode(std[i].in, strlen(std[i].in), o, sizeof(o), &n) == std[i].want &&
			       (std[i].want != 0 || n == std[i].len),
		       "base64 case %zu", i);
	for (size_t i = 0; i < sizeof(url) / sizeof(url[0]); i++)
		tap_ok(auth_b64url_decode(url[i].in, strlen(url[i].in), o, sizeof(o), &n) == url[i].want &&
			       (url[i].want != 0 || n == url[i].len),
		       "base64url case %zu", i);
	tap_ok(auth_b64_decode("QUJD", 4, o, 2, &n) != 0, "base64 output bound");
	tap_ok(auth_b64url_decode("QUJDRA", 6, o, 3, &n) != 0, "base64url output bound");
	{
		char e[8];

		tap_ok(auth_b64_encode(e, 5, (const uint8_t *)"ABC", 3) == 0 && strcmp(e, "QUJD") == 0,
		       "encode fits exactly");
		tap_ok(auth_b64_encode(e, 4, (const uint8_t *)"ABC", 3) != 0, "encode refuses to cut");
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

int main(void)
{
	test_setup();
	test_load_good();
	test_mech_parse();
	test_load_bad_passwd();
	test_load_bad_keys();
	test_plain();
	test_login();
	test_cram();
	test_jwt_checks();
	test_oauthbearer();
	test_xoauth2();
	test_json();
	test_base64();
	auth_db_free(&test_db);
	EVP_PKEY_free(test_rsa);
	EVP_PKEY_free(test_ec);
	EVP_PKEY_free(test_ec_other);
	test_cleanup();
	free(test_passwd);
	free(test_keys);
	return tap_done();
}
