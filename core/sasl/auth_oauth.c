/*
 * auth_oauth.c: the SASL exchanges OAUTHBEARER (RFC 7628) and XOAUTH2:
 * the client message (gs2 header and kvpairs, or XOAUTH2's user and
 * auth), the Bearer token in it (RFC 6750), handed to auth_jwt_verify(),
 * and the error answer that makes the client send one more line before
 * it is told that it failed.
 */
#include "core/sasl/auth_internal.h"

#include <string.h>
#include <strings.h>

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
static int auth_oauth_bearer_parse(const uint8_t *p, const uint8_t *end, struct auth_oauth_msg *om)
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
static bool auth_oauth_token(const struct auth_oauth_msg *om, const char **tok_r, size_t *len_r)
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
		r = auth_oauth_bearer_parse(msg, msg + len, &om);
	else
		r = auth_oauth_kvpairs(msg, msg + len, true, &om);
	if (r != 0)
		return AUTH_R_MALFORMED;
	if (!auth_oauth_token(&om, &tok, &toklen) ||
	    auth_jwt_verify(db, tok, toklen, now, sub, sizeof(sub)) != AUTH_JWT_OK ||
	    (om.om_user[0] != '\0' && strcmp(om.om_user, sub) != 0))
		return auth_oauth_error(x, out, outlen);
	memcpy(x->ax_user, sub, strlen(sub) + 1);
	return AUTH_R_OK;
}
