/*
 * test_auth_jwt: tests of core/auth_jwt.c and auth_keys.c: the keys file
 * (refused keys and blocks, with the line named), the JWT checks one by
 * one (algorithm, signature, issuer, audience, expiry, not-before,
 * subject, malformed compact serializations and JSON). The fixture is
 * auth_fixture.h.
 */
#include "tests/unit/auth_fixture.h"

/* ---- the keys file ---- */

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
			/* A NumericDate is any JSON number (RFC 7519 section 2). */
			{ "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1.8e9,\"sub\":\"a\"}",
			  0 },
			{ "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":-1.8e9,\"sub\":\"a\"}",
			  AUTH_JWT_E_EXP },
			{ "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1800000000,\"sub\":\"a\","
			  "\"sub\":\"b\"}", AUTH_JWT_E_FORMAT },
			{ "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1800000000,"
			  "\"sub\":\"\\u00e9\\ud83d\\ude00\"}", 0 },
			{ "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1800000000,"
			  "\"sub\":\"a\\u0000b\"}", AUTH_JWT_E_FORMAT },
			{ "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1800000000,"
			  "\"sub\":\"\\ud800\"}", AUTH_JWT_E_FORMAT },
			{ "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1800000000,"
			  "\"sub\":\"\xc0\xaf\"}", AUTH_JWT_E_FORMAT },
			{ "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1800000000,"
			  "\"sub\":\"a\\nb\"}", AUTH_JWT_E_SUB },
			{ "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1800000000,\"sub\":\"a\",}",
			  AUTH_JWT_E_FORMAT },
			{ "[\"" ISS "\"]", AUTH_JWT_E_FORMAT },
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

int main(void)
{
	test_setup("test_auth_jwt");
	test_load_db();
	test_load_bad_keys();
	test_jwt_checks();
	test_teardown();
	return tap_done();
}
