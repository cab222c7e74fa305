/*
 * test_auth: tests of core/auth.c, auth_creds.c and auth_b64.c: the
 * credentials file (good and malformed, with the line named), loading as
 * a whole, mechanism availability and the EHLO list, PLAIN, LOGIN and
 * CRAM-MD5 end to end including cancellation, oversized and malformed
 * responses, and the base64 helpers alone. The JWT and JSON checks are in
 * test_auth_jwt.c, OAUTHBEARER and XOAUTH2 in test_auth_oauth.c; the
 * fixture they share is auth_fixture.h.
 */
#include "tests/unit/auth_fixture.h"

#include <openssl/digest.h>
#include <openssl/hmac.h>

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

/* ---- base64 alone ---- */

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

/* Deferred checks: AUTH_R_VERIFY, then auth_verify() gives the result;
 * a failure keeps the name tried for the log, never as the identity. */
static void test_deferred(void)
{
	struct auth_exchange x;
	char out[512], *b;
	int r;

	b = test_b64n("\0alice\0alice-pw", 15);
	r = auth_start_deferred(&x, test_db, AUTH_MECH_PLAIN, b, strlen(b), NOW, 1, out,
				sizeof(out));
	free(b);
	test_expect(r, AUTH_R_VERIFY, "deferred PLAIN: check pending");
	tap_ok(x.ax_user[0] == '\0', "deferred PLAIN: no identity while pending");
	test_expect(auth_verify(&x), AUTH_R_OK, "deferred PLAIN: verified");
	tap_ok(strcmp(x.ax_user, "alice") == 0, "deferred PLAIN identity: %s", x.ax_user);
	tap_ok(x.ax_verify == NULL, "deferred PLAIN: check freed");

	b = test_b64n("\0alice\0wrong", 12);
	r = auth_start_deferred(&x, test_db, AUTH_MECH_PLAIN, b, strlen(b), NOW, 1, out,
				sizeof(out));
	free(b);
	test_expect(r, AUTH_R_VERIFY, "deferred PLAIN wrong: check pending");
	test_expect(auth_verify(&x), AUTH_R_FAIL, "deferred PLAIN wrong: fails");
	tap_ok(x.ax_user[0] == '\0' && strcmp(x.ax_tried, "alice") == 0,
	       "failure: no identity, name tried kept (%s)", x.ax_tried);

	/* LOGIN: the name comes first, the check after the password. */
	r = auth_start_deferred(&x, test_db, AUTH_MECH_LOGIN, NULL, 0, NOW, 1, out, sizeof(out));
	test_expect(r, AUTH_R_CONTINUE, "deferred LOGIN: username prompt");
	b = test_b64("bob");
	r = auth_step_deferred(&x, test_db, b, strlen(b), NOW, out, sizeof(out));
	free(b);
	test_expect(r, AUTH_R_CONTINUE, "deferred LOGIN: password prompt");
	b = test_b64("nope");
	r = auth_step_deferred(&x, test_db, b, strlen(b), NOW, out, sizeof(out));
	free(b);
	test_expect(r, AUTH_R_VERIFY, "deferred LOGIN: check pending");
	test_expect(auth_verify(&x), AUTH_R_FAIL, "deferred LOGIN wrong: fails");
	tap_ok(strcmp(x.ax_tried, "bob") == 0, "LOGIN failure keeps the name tried");

	/* The synchronous calls keep the name tried as well. */
	r = test_plain_initial("\0mallory\0x", 10, &x);
	test_expect(r, AUTH_R_FAIL, "PLAIN unknown user (sync)");
	tap_ok(strcmp(x.ax_tried, "mallory") == 0 && x.ax_user[0] == '\0',
	       "unknown user: name tried kept");

	/* Cleared while pending: the check is dropped (LeakSanitizer). */
	b = test_b64n("\0alice\0alice-pw", 15);
	r = auth_start_deferred(&x, test_db, AUTH_MECH_PLAIN, b, strlen(b), NOW, 1, out,
				sizeof(out));
	free(b);
	test_expect(r, AUTH_R_VERIFY, "deferred PLAIN again");
	auth_exchange_clear(&x);
	tap_ok(x.ax_verify == NULL && x.ax_user[0] == '\0', "cleared while pending");
}

int main(void)
{
	test_setup("test_auth");
	test_load_good();
	test_mech_parse();
	test_load_bad_passwd();
	test_plain();
	test_login();
	test_cram();
	test_base64();
	test_deferred();
	test_teardown();
	return tap_done();
}
