/*
 * smtp_client_tls.c: the outbound session's STARTTLS (RFC 3207): the
 * handshake after 220 (or, in wrapper mode, right after connect: implicit
 * TLS, RFC 8314), ciphertext in and out, and what a failed handshake
 * means under the hop's policy (a cleartext retry under "may"), and
 * session resumption: the worker's sessions (tls/tls_sesscache.h), kept
 * per next hop, policy and source, offered to the next connection alike.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/base/log.h"
#include "core/outbound/smtp_client_internal.h"
#include "core/shaping/shp_rules.h"
#include "tls/tls.h"
#include "tls/tls_sesscache.h"

/*
 * The worker's cache as smtp_tls_session_cache_size says now (made at
 * first use, made again when a reload changed the size), or NULL: off.
 */
static struct tls_sesscache *cl_tls_cache(struct smtp_client_env *env)
{
	unsigned size = env->ce_cfg->smtp_tls_session_cache_size;

	if (env->ce_tls_sessions != NULL && tls_sesscache_max(env->ce_tls_sessions) != size) {
		tls_sesscache_free(&env->ce_tls_sessions);
		atomic_store_explicit(&env->ce_tls_cached, 0, memory_order_relaxed);
	}
	if (size > 0 && env->ce_tls_sessions == NULL &&
	    tls_sesscache_new(&env->ce_tls_sessions, size) < 0)
		return NULL;
	return env->ce_tls_sessions;
}

static void cl_tls_cache_gauge(struct smtp_client_env *env)
{
	uint64_t n = env->ce_tls_sessions ? tls_sesscache_count(env->ce_tls_sessions) : 0;

	atomic_store_explicit(&env->ce_tls_cached, n, memory_order_relaxed);
}

/*
 * Offer the session of an earlier connection under the same conditions.
 * The key names all of them: a session is resumed without verifying the
 * certificate again, so one from a "may" handshake must never serve a
 * "verify" one, nor one made for another name (SNI and the name checked),
 * address, port, wrapper mode or source address. 0, or -1 out of memory.
 */
static int cl_tls_resume(struct smtp_client *c)
{
	struct tls_sesscache *sc = cl_tls_cache(c->c_env);
	const struct shp_source *src = c->c_path.cp_source;
	char key[sizeof(c->c_remote) + 320];
	int rc;

	if (sc == NULL)
		return 0;
	snprintf(key, sizeof(key), "%u %c %s %s", c->c_policy,
		 c->c_path.cp_implicit_tls ? 'i' : 's', c->c_remote,
		 src != NULL && src->ss_name != NULL ? src->ss_name : "-");
	rc = tls_conn_use_cache(c->c_tls, sc, key);
	if (rc > 0)
		log_msg(LOG_DEBUG, "delivery: tls to %s: offering a cached session", c->c_remote);
	cl_tls_cache_gauge(c->c_env);
	return rc < 0 ? -1 : 0;
}

void smtp_client_tls_env_close(struct smtp_client_env *env)
{
	tls_sesscache_free(&env->ce_tls_sessions);
	atomic_store_explicit(&env->ce_tls_cached, 0, memory_order_relaxed);
}

/* Move what the TLS engine produced to the socket. */
void cl_tls_flush(struct smtp_client *c)
{
	char buf[16384];
	size_t n;

	while ((n = tls_conn_take(c->c_tls, buf, sizeof(buf))) > 0)
		io_conn_write(&c->c_conn, buf, n);
}

/* 220 to STARTTLS: begin the handshake (ClientHello goes out now). */
void cl_tls_start(struct smtp_client *c)
{
	struct tls_ctx *ctx = c->c_env->ce_tls_client(c->c_env->ce_tls_arg);
	char tmp[16];

	c->c_tls = calloc(1, sizeof(*c->c_tls));
	if (ctx == NULL || c->c_tls == NULL ||
	    tls_conn_init(c->c_tls, ctx, false, c->c_host,
			  c->c_policy == CONFIG_TLS_VERIFY ? c->c_host : NULL) < 0 ||
	    cl_tls_resume(c) < 0) {
		tls_ctx_unref(&ctx);
		if (c->c_tls != NULL && c->c_tls->tc_ssl != NULL)
			tls_conn_free(c->c_tls);
		free(c->c_tls);
		c->c_tls = NULL;
		cl_fail(c, "TLS setup failed");
		return;
	}
	tls_ctx_unref(&ctx);
	c->c_state = CL_TLS_HANDSHAKE;
	smtp_reply_parser_init(&c->c_rp);	/* nothing said before counts */
	(void)tls_conn_read(c->c_tls, tmp, sizeof(tmp));
	cl_tls_flush(c);
	cl_deadline(c, cl_cfg(c)->smtp_command_timeout);
}

/* Ciphertext in: handshake, then plaintext replies. */
void cl_tls_input(struct smtp_client *c, struct io_buf *b, size_t len)
{
	char buf[16384];
	int n;

	if (tls_conn_feed(c->c_tls, b->ib_data, len) < 0) {
		cl_fail(c, "out of memory");
		return;
	}
	for (;;) {
		bool was_done = c->c_tls->tc_done;

		n = tls_conn_read(c->c_tls, buf, sizeof(buf));
		cl_tls_flush(c);
		if (c->c_tls->tc_cache != NULL)	/* a ticket may have come */
			cl_tls_cache_gauge(c->c_env);
		if (!was_done && c->c_tls->tc_done) {
			bool resumed = tls_conn_resumed(c->c_tls);

			snprintf(c->c_tlsinfo, sizeof(c->c_tlsinfo), "%s %s%s",
				 tls_conn_version(c->c_tls), tls_conn_cipher(c->c_tls),
				 resumed ? " resumed" : "");
			stat_inc(&c->c_env->ce_tls_handshakes);
			if (resumed)
				stat_inc(&c->c_env->ce_tls_resumed);
			log_msg(LOG_INFO, "delivery: tls to %s: %s%s", c->c_remote, c->c_tlsinfo,
				c->c_policy == CONFIG_TLS_VERIFY ? " (verified)" : "");
			if (c->c_path.cp_implicit_tls) {
				/* Wrapper mode: the greeting comes now. */
				c->c_state = CL_GREETING;
			} else {
				c->c_state = CL_EHLO;
				cl_write(c, "EHLO %s\r\n", cl_cfg(c)->hostname);
			}
			cl_deadline(c, cl_cfg(c)->smtp_command_timeout);
		}
		if (n <= 0)
			break;
		cl_on_replies(c, buf, (size_t)n);
		if (io_conn_closing(&c->c_conn))
			return;
	}
	if (c->c_tls->tc_failed)
		cl_tls_failed(c);
	else if (c->c_tls->tc_closed)
		cl_fail(c, "host %s closed the TLS session", c->c_remote);
}

/* The handshake (or a record) failed. "may" with fallback: the same
 * host again in cleartext; otherwise this host has failed. */
void cl_tls_failed(struct smtp_client *c)
{
	stat_inc(&c->c_env->ce_tls_failures);
	if (c->c_state == CL_TLS_HANDSHAKE && c->c_policy == CONFIG_TLS_MAY &&
	    cl_cfg(c)->smtp_tls_fallback && !c->c_no_tls) {
		struct smtp_client *n;

		log_msg(LOG_INFO, "delivery: TLS handshake with %s failed (%s); trying again"
			" in cleartext", c->c_remote, c->c_tls->tc_error);
		n = cl_open(c->c_env, c->c_dest, c->c_route, c->c_candidate, c->c_policy,
			    &c->c_path);
		if (n != NULL) {
			n->c_no_tls = true;
			c->c_gone_reported = true;	/* the new one takes the slot */
			io_conn_close(&c->c_conn);
			return;
		}
	}
	cl_fail_tls(c, "TLS handshake with %s failed: %s", c->c_remote, c->c_tls->tc_error);
}
