/*
 * smtp_client_auth.c: the outbound session's AUTH (RFC 4954) with the
 * next hop's credentials (smtp_creds.h), after EHLO (after STARTTLS's
 * EHLO, or in wrapper mode): PLAIN (RFC 4616) with an initial response,
 * or LOGIN when that is all the server offers. Credentials go out only
 * inside TLS, unless the hop's policy is "none" and smtp_auth_plaintext
 * allows it. A refusal fails the session before it is ready, so what
 * waits for the next hop is deferred, never bounced. Nothing here logs a
 * user name, a password or what was sent for them; the buffers that held
 * them are wiped.
 */
#include <openssl/base64.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/log.h"
#include "core/outbound/smtp_client_internal.h"

/* Send prefix, base64(a 0 b 0 c) (the parts given, NULs between: PLAIN's
 * "\0user\0pass", or one of LOGIN's) and CRLF, wiping what held them. */
static int cl_auth_send_b64(struct smtp_client *c, const char *prefix, const char *a,
			    const char *b)
{
	size_t la = strlen(a), lb = b != NULL ? strlen(b) : 0;
	size_t raw = b != NULL ? 1 + la + 1 + lb : la, out;
	size_t lp = strlen(prefix);
	uint8_t *in = malloc(raw + 1);
	char *line = NULL;

	if (in == NULL || !EVP_EncodedLength(&out, raw) ||
	    (line = malloc(lp + out + 2)) == NULL) {
		free(in);
		return -1;
	}
	if (b != NULL) {
		in[0] = '\0';
		memcpy(in + 1, a, la);
		in[1 + la] = '\0';
		memcpy(in + 2 + la, b, lb);
	} else {
		memcpy(in, a, la);
	}
	memcpy(line, prefix, lp);
	/* EVP_EncodeBlock writes out - 1 characters and a NUL. */
	out = EVP_EncodeBlock((uint8_t *)line + lp, in, raw);
	memcpy(line + lp + out, "\r\n", 2);
	cl_out(c, line, lp + out + 2);
	explicit_bzero(in, raw + 1);
	explicit_bzero(line, lp + out + 2);
	free(in);
	free(line);
	return 0;
}

void cl_auth_start(struct smtp_client *c)
{
	const struct smtp_cred *cr = c->c_path.cp_cred;
	bool plain_ok = c->c_policy == CONFIG_TLS_NONE && cl_cfg(c)->smtp_auth_plaintext;
	int rc;

	if (c->c_tls == NULL && !plain_ok) {
		/* Another address of the hop may offer STARTTLS. */
		cl_fail_auth(c, "4.7.0", true, "SMTP AUTH with %s not attempted: the session is"
			     " not encrypted (credentials go only inside TLS; smtp_auth_plaintext"
			     " applies to a TLS policy of none only)", c->c_remote);
		return;
	}
	if (!(c->c_ext & (SMTP_EXT_AUTH_PLAIN | SMTP_EXT_AUTH_LOGIN))) {
		cl_fail_auth(c, "4.7.0", true, "SMTP AUTH with %s not possible: %s", c->c_remote,
			     c->c_ext & SMTP_EXT_AUTH ? "it offers neither PLAIN nor LOGIN" :
			     "it offers no AUTH");
		return;
	}
	c->c_state = CL_AUTH;
	c->c_auth_step = 0;
	if (c->c_ext & SMTP_EXT_AUTH_PLAIN) {
		rc = cl_auth_send_b64(c, "AUTH PLAIN ", cr->sc_user, cr->sc_pass);
	} else {
		cl_write(c, "AUTH LOGIN\r\n");
		rc = 0;
	}
	if (rc < 0) {
		cl_fail(c, "out of memory");
		return;
	}
	cl_deadline(c, cl_cfg(c)->smtp_command_timeout);
}

void cl_auth_reply(struct smtp_client *c, const struct smtp_reply *r)
{
	const struct smtp_cred *cr = c->c_path.cp_cred;
	bool login = !(c->c_ext & SMTP_EXT_AUTH_PLAIN);

	if (r->code == 235) {
		log_msg(LOG_INFO, "delivery: authenticated to %s with %s%s", c->c_remote,
			login ? "LOGIN" : "PLAIN", c->c_tls != NULL ? "" : " (no TLS)");
		cl_ready(c);
		return;
	}
	if (r->code == 334 && login && c->c_auth_step < 2) {
		/* The server's prompts ("Username:", "Password:") say nothing
		 * we need: the order is fixed. */
		c->c_auth_step++;
		if (cl_auth_send_b64(c, "", c->c_auth_step == 1 ? cr->sc_user : cr->sc_pass,
				     NULL) < 0)
			cl_fail(c, "out of memory");
		else
			cl_deadline(c, cl_cfg(c)->smtp_command_timeout);
		return;
	}
	if (r->code < 400 || r->code > 599) {
		cl_fail_auth(c, "4.5.0", true, "host %s answered AUTH with %03u %s", c->c_remote,
			     r->code, r->text);
		return;
	}
	/* 535 (bad credentials), 454, 534 ...: the same credentials would
	 * fail at the next address too; the mail waits, the operator fixes
	 * the file. */
	log_msg(LOG_WARNING, "delivery: SMTP AUTH with %s failed: %03u %s", c->c_remote, r->code,
		r->text);
	cl_fail_auth(c, r->code == 535 ? "4.7.8" : "4.7.0", false,
		     "SMTP AUTH with %s failed: %03u %s", c->c_remote, r->code, r->text);
}
