/*
 * test_auth_oauth: tests of core/auth_oauth.c: OAUTHBEARER and XOAUTH2
 * end to end with tokens signed by the fixture's keys, as an initial
 * response and after an empty challenge, the failure exchange (an error
 * JSON, then FAIL on the client's next line) for each refused token, and
 * SASL syntax errors. The fixture is auth_fixture.h.
 */
#include "tests/unit/auth_fixture.h"

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

int main(void)
{
	test_setup("test_auth_oauth");
	test_load_db();
	test_oauthbearer();
	test_xoauth2();
	test_teardown();
	return tap_done();
}
