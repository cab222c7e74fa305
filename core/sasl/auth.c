/*
 * auth.c: the auth database as a whole (auth_db_load() reads the files
 * and hands them to auth_creds.c and auth_keys.c), the mechanism list,
 * and the SASL exchange: its states, the base64 framing of each line, and
 * the PLAIN, LOGIN and CRAM-MD5 checks. OAUTHBEARER and XOAUTH2 are in
 * auth_oauth.c.
 *
 * Owns struct auth_db: the credentials file read into one buffer and split
 * in place, an array of accounts pointing into it (sorted, for bsearch),
 * and what auth_keys.c loads (public keys) with the issuer and audience.
 * Secrets are wiped before they are freed. No I/O happens after
 * auth_db_load().
 */
#include "core/sasl/auth_internal.h"

#include <openssl/digest.h>
#include <openssl/hmac.h>
#include <openssl/mem.h>

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const auth_mech_names[AUTH_MECH_COUNT] = {
	[AUTH_MECH_PLAIN] = "PLAIN",
	[AUTH_MECH_LOGIN] = "LOGIN",
	[AUTH_MECH_CRAM_MD5] = "CRAM-MD5",
	[AUTH_MECH_OAUTHBEARER] = "OAUTHBEARER",
	[AUTH_MECH_XOAUTH2] = "XOAUTH2",
};

/* "Username:" and "Password:" in base64 (the LOGIN prompts). */
#define AUTH_LOGIN_USER_PROMPT	"VXNlcm5hbWU6"
#define AUTH_LOGIN_PASS_PROMPT	"UGFzc3dvcmQ6"

/* ---- files ---- */

int auth_read_file(const char *path, char **buf_r, size_t *len_r, char *err, size_t errlen)
{
	struct stat st;
	size_t len = 0;
	char *buf;
	int fd;

	*buf_r = NULL;
	*len_r = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > AUTH_FILE_MAX) {
		snprintf(err, errlen, "%s: not a regular file of at most %u octets", path,
			 AUTH_FILE_MAX);
		close(fd);
		return -1;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		close(fd);
		return -1;
	}
	/* Read what is there now; a file that grows meanwhile is cut at the
	 * size fstat saw. */
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			free(buf);
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	*buf_r = buf;
	*len_r = len;
	return 0;
}

/* ---- the database ---- */

static bool auth_hostname_ok(const char *h)
{
	size_t len = strlen(h);

	if (len == 0 || len > AUTH_HOSTNAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)h[i];

		if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>' || c == '@')
			return false;
	}
	return true;
}

int auth_db_load(struct auth_db **db_r, const struct auth_config *cfg, char *err, size_t errlen)
{
	struct auth_db *db;
	const char *host;

	*db_r = NULL;
	if (cfg == NULL) {
		snprintf(err, errlen, "auth: no configuration");
		return -1;
	}
	host = cfg->hostname != NULL && cfg->hostname[0] != '\0' ? cfg->hostname : "localhost";
	if (!auth_hostname_ok(host)) {
		snprintf(err, errlen, "auth: hostname for CRAM-MD5 is empty, too long or not printable");
		return -1;
	}
	db = calloc(1, sizeof(*db));
	if (db == NULL) {
		snprintf(err, errlen, "auth: out of memory");
		return -1;
	}
	memcpy(db->ad_hostname, host, strlen(host) + 1);

	if (cfg->passwd_file != NULL && cfg->passwd_file[0] != '\0') {
		if (auth_read_file(cfg->passwd_file, &db->ad_text, &db->ad_text_len, err,
				   errlen) != 0 ||
		    auth_creds_parse(db, cfg->passwd_file, err, errlen) != 0)
			goto fail;
	}
	if (cfg->jwt_keys_file != NULL && cfg->jwt_keys_file[0] != '\0') {
		if (cfg->jwt_issuer == NULL || cfg->jwt_issuer[0] == '\0' ||
		    cfg->jwt_audience == NULL || cfg->jwt_audience[0] == '\0' ||
		    strlen(cfg->jwt_issuer) > AUTH_CLAIM_MAX ||
		    strlen(cfg->jwt_audience) > AUTH_CLAIM_MAX) {
			snprintf(err, errlen, "%s: a JWT issuer and audience (each 1 to %d octets)"
				 " are required with the keys", cfg->jwt_keys_file, AUTH_CLAIM_MAX);
			goto fail;
		}
		db->ad_issuer = strdup(cfg->jwt_issuer);
		db->ad_audience = strdup(cfg->jwt_audience);
		if (db->ad_issuer == NULL || db->ad_audience == NULL) {
			snprintf(err, errlen, "auth: out of memory");
			goto fail;
		}
		if (auth_keys_load(db, cfg->jwt_keys_file, err, errlen) != 0)
			goto fail;
	}
	*db_r = db;
	return 0;
fail:
	auth_db_free(&db);
	return -1;
}

void auth_db_free(struct auth_db **dbp)
{
	struct auth_db *db = *dbp;

	if (db == NULL)
		return;
	*dbp = NULL;
	if (db->ad_text != NULL) {
		OPENSSL_cleanse(db->ad_text, db->ad_text_len);
		free(db->ad_text);
	}
	free(db->ad_accounts);
	auth_keys_free(db);
	free(db->ad_issuer);
	free(db->ad_audience);
	free(db);
}

/* ---- mechanisms ---- */

bool auth_mech_available(const struct auth_db *db, enum auth_mech m)
{
	if (db == NULL)
		return false;
	switch (m) {
	case AUTH_MECH_PLAIN:
	case AUTH_MECH_LOGIN:
		return db->ad_naccounts > 0;
	case AUTH_MECH_CRAM_MD5:
		return db->ad_ncram > 0;
	case AUTH_MECH_OAUTHBEARER:
	case AUTH_MECH_XOAUTH2:
		return db->ad_nkeys > 0;
	case AUTH_MECH_COUNT:
		break;
	}
	return false;
}

void auth_mech_list(const struct auth_db *db, char *buf, size_t len)
{
	size_t o = 0;

	if (buf == NULL || len == 0)
		return;
	buf[0] = '\0';
	for (int m = 0; m < AUTH_MECH_COUNT; m++) {
		size_t n = strlen(auth_mech_names[m]);

		if (!auth_mech_available(db, (enum auth_mech)m))
			continue;
		if (o + (o > 0) + n + 1 > len)
			break;	/* only whole names */
		if (o > 0)
			buf[o++] = ' ';
		memcpy(buf + o, auth_mech_names[m], n + 1);
		o += n;
	}
}

int auth_mech_parse(const char *name, size_t len)
{
	if (name == NULL)
		return -1;
	for (int m = 0; m < AUTH_MECH_COUNT; m++)
		if (strlen(auth_mech_names[m]) == len &&
		    strncasecmp(name, auth_mech_names[m], len) == 0)
			return m;
	return -1;
}

/* ---- password checks ---- */

/* A password check waiting to run; wiped before it is freed. */
struct auth_verify {
	struct crypt_data av_data;	/* 32 KiB: never on a worker's stack */
	char av_phrase[CRYPT_MAX_PASSPHRASE_SIZE];
	const char *av_hash;		/* the account's, or the dummy; in the db */
	bool av_known;			/* an account: success is possible */
};

static void auth_verify_free(struct auth_exchange *x)
{
	if (x->ax_verify != NULL) {
		OPENSSL_cleanse(x->ax_verify, sizeof(*x->ax_verify));
		free(x->ax_verify);
		x->ax_verify = NULL;
	}
}

static int auth_set_user(struct auth_exchange *x, const void *user, size_t len)
{
	if (len > AUTH_USER_MAX)
		return AUTH_R_FAIL;
	memmove(x->ax_user, user, len);
	x->ax_user[len] = '\0';
	return AUTH_R_OK;
}

/* The name a client tried, kept for the failure log (cut to fit). */
static void auth_set_tried(struct auth_exchange *x, const void *user, size_t len)
{
	if (len > AUTH_USER_MAX)
		len = AUTH_USER_MAX;
	memmove(x->ax_tried, user, len);
	x->ax_tried[len] = '\0';
}

/*
 * Prepare the check of pw against the account named in x->ax_tried (or
 * none: a dummy hash is computed all the same and the answer is false).
 * Returns AUTH_R_VERIFY, or AUTH_R_FAIL/AUTH_R_TEMP at once.
 */
static int auth_check_password(struct auth_exchange *x, const struct auth_db *db,
			       const void *user, size_t ulen, const uint8_t *pw, size_t pwlen)
{
	const struct auth_account *a = user != NULL ? auth_creds_find(db, user, ulen) : NULL;
	struct auth_verify *v;

	if (user != NULL)
		auth_set_tried(x, user, ulen);
	if (db->ad_dummy_hash == NULL || pwlen >= CRYPT_MAX_PASSPHRASE_SIZE ||
	    memchr(pw, '\0', pwlen) != NULL || (a != NULL && ulen > AUTH_USER_MAX))
		return AUTH_R_FAIL;
	v = calloc(1, sizeof(*v));
	if (v == NULL)
		return AUTH_R_TEMP;
	memcpy(v->av_phrase, pw, pwlen);
	v->av_hash = a != NULL ? a->aa_hash : db->ad_dummy_hash;
	v->av_known = a != NULL;
	auth_verify_free(x);
	x->ax_verify = v;
	return AUTH_R_VERIFY;
}

/* Whether the pending phrase matches; the slow part (crypt_r). */
static bool auth_verify_run(struct auth_verify *v)
{
	const char *h = crypt_r(v->av_phrase, v->av_hash, &v->av_data);

	return v->av_known && h != NULL && h[0] != '*' && strlen(h) == strlen(v->av_hash) &&
	       CRYPTO_memcmp(h, v->av_hash, strlen(h)) == 0;
}

/* RFC 4616: [authzid] NUL authcid NUL passwd. */
static int auth_plain(struct auth_exchange *x, const struct auth_db *db, const uint8_t *msg,
		      size_t len)
{
	const uint8_t *end = msg + len, *n1, *n2, *authc, *pw;
	size_t zlen, clen, pwlen;

	n1 = memchr(msg, '\0', len);
	if (n1 == NULL)
		return AUTH_R_MALFORMED;
	n2 = memchr(n1 + 1, '\0', (size_t)(end - n1 - 1));
	if (n2 == NULL || memchr(n2 + 1, '\0', (size_t)(end - n2 - 1)) != NULL)
		return AUTH_R_MALFORMED;
	zlen = (size_t)(n1 - msg);
	authc = n1 + 1;
	clen = (size_t)(n2 - authc);
	pw = n2 + 1;
	pwlen = (size_t)(end - pw);
	if (clen == 0 || pwlen == 0)
		return AUTH_R_MALFORMED;
	/* No proxy authorization: an authzid must name the authcid. */
	if (zlen != 0 && (zlen != clen || memcmp(msg, authc, clen) != 0))
		return AUTH_R_FAIL;
	return auth_check_password(x, db, authc, clen, pw, pwlen);
}

static int auth_login(struct auth_exchange *x, const struct auth_db *db, const uint8_t *msg,
		      size_t len, char *out, size_t outlen)
{
	if (x->ax_step == AUTH_ST_LOGIN_USER) {
		/* Whatever the name, ask for the password: a name that cannot
		 * be an account is only refused after it. */
		if (len == 0 || len > AUTH_USER_MAX || memchr(msg, '\0', len) != NULL) {
			x->ax_step = AUTH_ST_LOGIN_BADUSER;
		} else {
			auth_set_tried(x, msg, len);
			x->ax_step = AUTH_ST_LOGIN_PASS;
		}
		if (out == NULL || outlen < sizeof(AUTH_LOGIN_PASS_PROMPT))
			return AUTH_R_TEMP;
		memcpy(out, AUTH_LOGIN_PASS_PROMPT, sizeof(AUTH_LOGIN_PASS_PROMPT));
		return AUTH_R_CONTINUE;
	}
	if (x->ax_step == AUTH_ST_LOGIN_BADUSER)
		return auth_check_password(x, db, NULL, 0, msg, len);
	return auth_check_password(x, db, x->ax_tried, strlen(x->ax_tried), msg, len);
}

static int auth_hex_nibble(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* RFC 2195: "user SP hexdigest", the digest being HMAC-MD5(secret,
 * challenge); the user name runs to the last space. */
static int auth_cram(struct auth_exchange *x, const struct auth_db *db, const uint8_t *msg,
		     size_t len)
{
	static const char dummy_secret[] = "ringmta-cram-md5-no-such-account";
	const struct auth_account *a;
	const uint8_t *sp = memrchr(msg, ' ', len), *hex;
	uint8_t want[16], mac[EVP_MAX_MD_SIZE];
	unsigned maclen = 0;
	const void *secret;
	size_t slen;
	bool ok;

	if (sp == NULL || sp == msg || (size_t)(msg + len - sp - 1) != 2 * sizeof(want))
		return AUTH_R_MALFORMED;
	hex = sp + 1;
	for (size_t i = 0; i < sizeof(want); i++) {
		int hi = auth_hex_nibble(hex[2 * i]), lo = auth_hex_nibble(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return AUTH_R_MALFORMED;
		want[i] = (uint8_t)(hi << 4 | lo);
	}
	a = auth_creds_find(db, msg, (size_t)(sp - msg));
	auth_set_tried(x, msg, (size_t)(sp - msg));
	if (a != NULL && a->aa_cram != NULL) {
		secret = a->aa_cram;
		slen = a->aa_cram_len;
	} else {
		secret = dummy_secret;
		slen = sizeof(dummy_secret) - 1;
	}
	if (HMAC(EVP_md5(), secret, slen, (const uint8_t *)x->ax_challenge,
		 strlen(x->ax_challenge), mac, &maclen) == NULL || maclen != sizeof(want))
		return AUTH_R_TEMP;
	ok = CRYPTO_memcmp(mac, want, sizeof(want)) == 0;
	OPENSSL_cleanse(mac, sizeof(mac));
	if (!ok || a == NULL || a->aa_cram == NULL)
		return AUTH_R_FAIL;
	return auth_set_user(x, msg, (size_t)(sp - msg));
}

/* ---- the exchange ---- */

static int auth_end(struct auth_exchange *x, int r)
{
	if (r == AUTH_R_VERIFY && !x->ax_defer)
		r = auth_verify(x);	/* ends the exchange */
	if (r != AUTH_R_CONTINUE && r != AUTH_R_VERIFY) {
		auth_verify_free(x);
		x->ax_step = AUTH_ST_IDLE;
		x->ax_failing = false;
		if (r != AUTH_R_OK)
			memset(x->ax_user, 0, sizeof(x->ax_user));
		if (r != AUTH_R_FAIL)
			memset(x->ax_tried, 0, sizeof(x->ax_tried));
	}
	return r;
}

int auth_verify(struct auth_exchange *x)
{
	int r;

	if (x->ax_verify == NULL)
		return auth_end(x, AUTH_R_TEMP);
	r = auth_verify_run(x->ax_verify) ?
	    auth_set_user(x, x->ax_tried, strlen(x->ax_tried)) : AUTH_R_FAIL;
	auth_verify_free(x);
	x->ax_defer = false;
	return auth_end(x, r);
}

void auth_exchange_clear(struct auth_exchange *x)
{
	auth_verify_free(x);
	OPENSSL_cleanse(x, sizeof(*x));
}

static int auth_respond(struct auth_exchange *x, const struct auth_db *db, const uint8_t *msg,
			size_t len, uint64_t now, char *out, size_t outlen)
{
	switch (x->ax_mech) {
	case AUTH_MECH_PLAIN:
		return auth_plain(x, db, msg, len);
	case AUTH_MECH_LOGIN:
		return auth_login(x, db, msg, len, out, outlen);
	case AUTH_MECH_CRAM_MD5:
		return auth_cram(x, db, msg, len);
	case AUTH_MECH_OAUTHBEARER:
	case AUTH_MECH_XOAUTH2:
		return auth_oauth_respond(x, db, msg, len, now, out, outlen);
	default:
		return AUTH_R_MALFORMED;
	}
}

/* One response from the client, initial (where "=" means empty) or not. */
static int auth_input(struct auth_exchange *x, const struct auth_db *db, const char *line,
		      size_t len, bool initial, uint64_t now, char *out, size_t outlen)
{
	uint8_t *msg;
	size_t n;
	int r;

	if (len == 1 && line[0] == '*')
		return auth_end(x, AUTH_R_CANCELLED);
	if (len > AUTH_RESPONSE_MAX)
		return auth_end(x, AUTH_R_MALFORMED);
	if (x->ax_step == AUTH_ST_OAUTH_ACK)
		return auth_end(x, AUTH_R_FAIL);
	if (initial && len == 1 && line[0] == '=')
		len = 0;
	msg = malloc(len / 4 * 3 + 1);
	if (msg == NULL)
		return auth_end(x, AUTH_R_TEMP);
	if (auth_b64_decode(line, len, msg, len / 4 * 3, &n) != 0) {
		free(msg);
		return auth_end(x, AUTH_R_MALFORMED);
	}
	r = auth_respond(x, db, msg, n, now, out, outlen);
	OPENSSL_cleanse(msg, len / 4 * 3 + 1);
	free(msg);
	return auth_end(x, r);
}

static int auth_start_common(struct auth_exchange *x, const struct auth_db *db,
			     enum auth_mech m, const char *initial, size_t initial_len,
			     uint64_t now, uint64_t nonce, char *out, size_t outlen, bool defer)
{
	memset(x, 0, sizeof(*x));
	x->ax_mech = (uint8_t)m;
	x->ax_defer = defer;
	if (out != NULL && outlen > 0)
		out[0] = '\0';
	if (db == NULL)
		return AUTH_R_TEMP;
	if ((unsigned)m >= AUTH_MECH_COUNT)
		return AUTH_R_MALFORMED;
	/* An empty initial response is sent as "="; treat a bare space the
	 * same as none. */
	if (initial != NULL && initial_len == 0)
		initial = NULL;
	if (out == NULL || outlen == 0)
		return AUTH_R_TEMP;

	switch (m) {
	case AUTH_MECH_CRAM_MD5: {
		int n;

		/* The server speaks first (RFC 4954 section 4). */
		if (initial != NULL)
			return initial_len == 1 && initial[0] == '*' ? AUTH_R_CANCELLED
								     : AUTH_R_MALFORMED;
		n = snprintf(x->ax_challenge, sizeof(x->ax_challenge), "<%" PRIu64 ".%" PRIu64 "@%s>",
			     nonce, now, db->ad_hostname);
		if (n < 0 || (size_t)n >= sizeof(x->ax_challenge) ||
		    auth_b64_encode(out, outlen, (const uint8_t *)x->ax_challenge, (size_t)n) != 0) {
			memset(x->ax_challenge, 0, sizeof(x->ax_challenge));
			out[0] = '\0';
			return AUTH_R_TEMP;
		}
		x->ax_step = AUTH_ST_RESPONSE;
		return AUTH_R_CONTINUE;
	}
	case AUTH_MECH_LOGIN:
		x->ax_step = AUTH_ST_LOGIN_USER;
		if (initial == NULL) {
			if (outlen < sizeof(AUTH_LOGIN_USER_PROMPT))
				return auth_end(x, AUTH_R_TEMP);
			memcpy(out, AUTH_LOGIN_USER_PROMPT, sizeof(AUTH_LOGIN_USER_PROMPT));
			return AUTH_R_CONTINUE;
		}
		break;
	default:
		x->ax_step = AUTH_ST_RESPONSE;
		if (initial == NULL)
			return AUTH_R_CONTINUE;	/* "334 " and an empty challenge */
		break;
	}
	return auth_input(x, db, initial, initial_len, true, now, out, outlen);
}

int auth_start(struct auth_exchange *x, const struct auth_db *db, enum auth_mech m,
	       const char *initial, size_t initial_len, uint64_t now, uint64_t nonce,
	       char *out, size_t outlen)
{
	return auth_start_common(x, db, m, initial, initial_len, now, nonce, out, outlen, false);
}

int auth_start_deferred(struct auth_exchange *x, const struct auth_db *db, enum auth_mech m,
			const char *initial, size_t initial_len, uint64_t now,
			uint64_t nonce, char *out, size_t outlen)
{
	return auth_start_common(x, db, m, initial, initial_len, now, nonce, out, outlen, true);
}

static int auth_step_common(struct auth_exchange *x, const struct auth_db *db,
			    const char *line, size_t len, uint64_t now, char *out,
			    size_t outlen, bool defer)
{
	if (out != NULL && outlen > 0)
		out[0] = '\0';
	x->ax_defer = defer;
	if (x->ax_step == AUTH_ST_IDLE || db == NULL || (line == NULL && len != 0))
		return auth_end(x, AUTH_R_MALFORMED);
	return auth_input(x, db, line != NULL ? line : "", len, false, now, out, outlen);
}

int auth_step(struct auth_exchange *x, const struct auth_db *db, const char *line, size_t len,
	      uint64_t now, char *out, size_t outlen)
{
	return auth_step_common(x, db, line, len, now, out, outlen, false);
}

int auth_step_deferred(struct auth_exchange *x, const struct auth_db *db, const char *line,
		       size_t len, uint64_t now, char *out, size_t outlen)
{
	return auth_step_common(x, db, line, len, now, out, outlen, true);
}
