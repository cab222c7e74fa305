/*
 * smtp_server_tls.c: the session's TLS and AUTH: STARTTLS (RFC 3207),
 * implicit TLS (RFC 8314), and AUTH (RFC 4954) driven through auth.c.
 *
 * TLS input: ciphertext from the receive buffer goes into the TLS
 * engine; plaintext comes out into a buffer of the worker's pool, which
 * then travels the cleartext path (and may be kept by a body until its
 * commit, like any receive buffer). Output goes through the engine and
 * out as one send per batch, as in cleartext.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "core/sasl/auth.h"
#include "core/sasl/auth_pool.h"
#include "core/config/config.h"
#include "core/base/log.h"
#include "core/inbound/smtp_server.h"
#include "tls/tls.h"

#include <openssl/rand.h>

/* CRAM-MD5 challenges must not be predictable. */
static uint64_t smtp_tls_nonce(void)
{
	uint64_t n = 0;

	RAND_bytes((uint8_t *)&n, sizeof(n));
	return n;
}

static uint64_t smtp_tls_now(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec;
}

/* Move the ciphertext the engine produced to the connection. */
static void smtp_tls_flush(struct smtp_session *s)
{
	char buf[16384];
	size_t n;

	while ((n = tls_conn_take(s->s_tls, buf, sizeof(buf))) > 0)
		io_conn_write(&s->s_conn, buf, n);
}

int smtp_tls_begin(struct smtp_session *s)
{
	struct tls_ctx *ctx = s->s_env->e_ops->tls_server(s->s_env);
	struct tls_conn *t;

	if (ctx == NULL)
		return -1;
	t = calloc(1, sizeof(*t));
	if (t == NULL || tls_conn_init(t, ctx, true, NULL, NULL) < 0) {
		free(t);
		tls_ctx_unref(&ctx);
		return -1;
	}
	tls_ctx_unref(&ctx);	/* the SSL holds its own reference */
	s->s_tls = t;
	/* Forget everything said in cleartext (RFC 3207 section 4.2). */
	smtp_server_txn_end(s);
	free(s->s_helo);
	s->s_helo = NULL;
	s->s_helo_done = false;
	s->s_esmtp = false;
	free(s->s_line);
	s->s_line = NULL;
	s->s_line_len = s->s_line_cap = 0;
	return 0;
}

void smtp_tls_free(struct smtp_session *s)
{
	if (s->s_tls != NULL) {
		tls_conn_free(s->s_tls);
		free(s->s_tls);
		s->s_tls = NULL;
	}
	if (s->s_auth_job != NULL) {
		/* A password check is running: the job keeps the exchange
		 * and frees it when it comes back (smtp_auth_done). */
		s->s_auth_job->aj_work.wj_owner = NULL;
		s->s_auth_job = NULL;
		s->s_auth = NULL;
	}
	smtp_auth_abort(s);
	free(s->s_auth_user);
	s->s_auth_user = NULL;
}

void smtp_tls_write(struct smtp_session *s, const char *p, size_t n)
{
	if (!s->s_tls->tc_done || tls_conn_write(s->s_tls, p, n) < 0)
		return;
	smtp_tls_flush(s);
}

void smtp_tls_input(struct smtp_session *s, struct io_buf *b, size_t len)
{
	struct bufpool *bp = s->s_env->e_bufs;
	struct tls_conn *t = s->s_tls;
	bool was_done = t->tc_done;

	if (s->s_closing)
		return;
	if (tls_conn_feed(t, b->ib_data, len) < 0) {
		smtp_server_close(s, "out of memory");
		return;
	}
	for (;;) {
		struct io_buf *pb = bufpool_alloc(bp);
		int n;

		if (pb == NULL) {
			smtp_server_close(s, "out of receive buffers");
			return;
		}
		n = tls_conn_read(t, pb->ib_data, bp->bp_size);
		if (t->tc_done && !was_done) {
			was_done = true;
			log_msg(LOG_INFO, "tls client=%s version=%s cipher=%s resumed=%s",
				s->s_addr, tls_conn_version(t), tls_conn_cipher(t),
				tls_conn_resumed(t) ? "yes" : "no");
			stat_inc(&s->s_env->e_stats.es_tls_handshakes);
			if (s->s_state == SMTP_S_TLS_HANDSHAKE)
				smtp_server_greet(s);
		}
		if (n > 0)
			smtp_server_input_plain(s, pb, 0, (size_t)n);
		bufpool_unref(bp, pb);
		if (n <= 0 || s->s_closing || s->s_tls != t)
			break;
	}
	smtp_tls_flush(s);
	if (t->tc_failed) {
		stat_inc(&s->s_env->e_stats.es_tls_failures);
		log_msg(LOG_INFO, "tls client=%s handshake or record error: %s", s->s_addr,
			t->tc_error);
		smtp_server_close(s, "TLS error");
	} else if (t->tc_closed) {
		/* A TLS close ends the session; cleartext after it is ignored. */
		tls_conn_shutdown(t);
		smtp_tls_flush(s);
		smtp_server_close(s, "TLS closed by client");
	}
}

void smtp_starttls_command(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	if (s->s_tls != NULL) {
		smtp_server_reply(s, "503 5.5.1 Error: TLS already active");
		return;
	}
	if (!s->s_env->e_ops->tls_offered(s->s_env)) {
		smtp_server_reply(s, "502 5.5.1 Error: command not implemented");
		return;
	}
	smtp_server_reply(s, "220 2.0.0 Ready to start TLS");
	s->s_tls_starting = true;	/* input after this line is dropped */
}

bool smtp_auth_offered(const struct smtp_session *s)
{
	if (s->s_env->e_auth == NULL || s->s_auth_user != NULL)
		return false;
	if (s->s_tls != NULL && s->s_tls->tc_done)
		return true;
	return smtp_server_cfg(s)->auth_plaintext_loopback &&
	       (strncmp(s->s_addr, "127.", 4) == 0 || strcmp(s->s_addr, "::1") == 0);
}

/* Client bytes for a log line: control characters, DEL and backslash as
 * \xNN, so one event stays one unambiguous line. */
static const char *smtp_auth_log_text(char *buf, size_t len, const char *p)
{
	size_t o = 0;

	for (; *p != '\0' && o + 5 < len; p++) {
		unsigned char c = (unsigned char)*p;

		if (c < 0x20 || c == 0x7f || c == '\\')
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", c);
		else
			buf[o++] = (char)c;
	}
	buf[o] = '\0';
	return buf;
}

/* An exchange ended: account for it and answer. */
static void smtp_auth_finish(struct smtp_session *s, int r)
{
	struct smtp_env *env = s->s_env;
	struct auth_exchange *x = s->s_auth;
	char esc[4 * sizeof(x->ax_tried) + 1];
	static const char *const mech_names[] = {
		"PLAIN", "LOGIN", "CRAM-MD5", "OAUTHBEARER", "XOAUTH2",
	};

	s->s_state = SMTP_S_CMD;
	switch (r) {
	case AUTH_R_OK:
		s->s_auth_user = strdup(x->ax_user);
		s->s_relay_ok = true;
		log_msg(LOG_INFO, "auth client=%s user=%s mechanism=%s", s->s_addr,
			smtp_auth_log_text(esc, sizeof(esc), x->ax_user),
			mech_names[x->ax_mech < 5 ? x->ax_mech : 0]);
		smtp_server_reply(s, "235 2.7.0 Authentication successful");
		break;
	case AUTH_R_CANCELLED:
		smtp_server_reply(s, "501 5.0.0 Authentication cancelled");
		break;
	case AUTH_R_MALFORMED:
		env->e_ops->auth_failed(env, (const struct sockaddr *)&s->s_peer, smtp_tls_now());
		smtp_server_reply(s, "501 5.5.2 Error: malformed authentication data");
		break;
	case AUTH_R_TEMP:
		smtp_server_reply(s, "454 4.7.0 Temporary authentication failure");
		break;
	default:
		env->e_ops->auth_failed(env, (const struct sockaddr *)&s->s_peer, smtp_tls_now());
		log_msg(LOG_INFO, "auth-failed client=%s user=%s", s->s_addr,
			x->ax_tried[0] ? smtp_auth_log_text(esc, sizeof(esc), x->ax_tried) : "-");
		smtp_server_reply(s, "535 5.7.8 Error: authentication failed");
		break;
	}
	smtp_auth_abort(s);
}

void smtp_auth_abort(struct smtp_session *s)
{
	if (s->s_auth != NULL) {
		auth_exchange_clear(s->s_auth);
		free(s->s_auth);
		s->s_auth = NULL;
	}
}

/* Hand the password check to the pool; the session waits for it. */
static void smtp_auth_wait(struct smtp_session *s)
{
	struct auth_job *j = calloc(1, sizeof(*j));

	if (j != NULL)
		auth_job_init(j, s->s_auth, s, smtp_auth_done);
	if (j == NULL || s->s_env->e_ops->auth_submit(s->s_env, &j->aj_work) < 0) {
		free(j);
		smtp_auth_finish(s, AUTH_R_TEMP);
		return;
	}
	s->s_auth_job = j;
	s->s_state = SMTP_S_AUTH_WAIT;
}

void smtp_auth_done(struct work_job *w)
{
	struct auth_job *j = (struct auth_job *)w;
	struct smtp_session *s = w->wj_owner;
	int r = auth_job_result(j);

	if (s == NULL) {
		/* The session left meanwhile. */
		auth_exchange_clear(j->aj_x);
		free(j->aj_x);
		free(j);
		return;
	}
	free(j);
	s->s_auth_job = NULL;
	if (s->s_closing) {
		s->s_state = SMTP_S_CMD;
		smtp_auth_abort(s);
		return;
	}
	smtp_auth_finish(s, r);
	smtp_server_resume(s);
}

static void smtp_auth_result(struct smtp_session *s, int r, const char *out)
{
	if (r == AUTH_R_CONTINUE) {
		s->s_state = SMTP_S_AUTH;
		smtp_server_reply(s, "334 %s", out);
		return;
	}
	if (r == AUTH_R_VERIFY) {
		smtp_auth_wait(s);
		return;
	}
	smtp_auth_finish(s, r);
}

void smtp_auth_command(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	struct smtp_env *env = s->s_env;
	const char *arg = cmd->arg.p, *sp;
	size_t alen = cmd->arg.len, mlen;
	char out[1024];
	int mech, r;

	if (!s->s_helo_done) {
		smtp_server_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
		return;
	}
	if (s->s_auth_user != NULL) {
		smtp_server_reply(s, "503 5.5.1 Error: already authenticated");
		return;
	}
	if (s->s_txn != NULL) {
		smtp_server_reply(s, "503 5.5.1 Error: MAIL transaction in progress");
		return;
	}
	if (!smtp_auth_offered(s)) {
		smtp_server_reply(s, env->e_auth == NULL ?
				  "502 5.5.1 Error: authentication not enabled" :
				  "538 5.7.11 Encryption required for requested authentication mechanism");
		return;
	}
	if (env->e_ops->auth_blocked(env, (const struct sockaddr *)&s->s_peer, smtp_tls_now())) {
		smtp_server_reply(s, "454 4.7.0 Too many failed authentication attempts, "
				  "try again later");
		return;
	}
	sp = memchr(arg, ' ', alen);
	mlen = sp ? (size_t)(sp - arg) : alen;
	mech = auth_mech_parse(arg, mlen);
	if (mech < 0 || !auth_mech_available(env->e_auth, (enum auth_mech)mech)) {
		smtp_server_reply(s, "504 5.5.4 Error: unsupported authentication mechanism");
		return;
	}
	smtp_auth_abort(s);
	s->s_auth = calloc(1, sizeof(*s->s_auth));
	if (s->s_auth == NULL) {
		smtp_server_reply(s, "454 4.7.0 Temporary authentication failure");
		return;
	}
	out[0] = '\0';
	r = auth_start_deferred(s->s_auth, env->e_auth, (enum auth_mech)mech,
		       sp ? sp + 1 : NULL, sp ? alen - mlen - 1 : 0, smtp_tls_now(),
		       smtp_tls_nonce(), out, sizeof(out));
	smtp_auth_result(s, r, out);
}

void smtp_auth_line(struct smtp_session *s, const char *line, size_t len)
{
	char out[1024];
	int r;

	out[0] = '\0';
	r = auth_step_deferred(s->s_auth, s->s_env->e_auth, line, len, smtp_tls_now(),
			       out, sizeof(out));
	smtp_auth_result(s, r, out);
}
