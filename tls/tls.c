/* tls.c: see tls.h. */
#include "tls/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tls/tls_sesscache.h"
#include "tls/tls_ticket.h"

#define TLS_SYSTEM_CA "/etc/ssl/certs/ca-certificates.crt"
#define TLS12_CIPHERS "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

struct tls_ctx {
	SSL_CTX *c_ctx;
	atomic_uint c_refs;
	unsigned long long c_id;	/* unique in the process: sessions of
					 * another context are not offered */
};

static atomic_ullong tls_ctx_ids;

static void tls_err(char *err, size_t errlen, const char *what, const char *file)
{
	unsigned long e = ERR_get_error();
	char buf[160];

	ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s%s%s: %s", what, file ? " " : "", file ? file : "",
		 e ? buf : "failed");
	ERR_clear_error();
}

static SSL_CTX *tls_ctx_base(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_strict_cipher_list(ctx, TLS12_CIPHERS);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
	return ctx;
}

static struct tls_ctx *tls_ctx_wrap(SSL_CTX *ctx)
{
	struct tls_ctx *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	c->c_ctx = ctx;
	atomic_store(&c->c_refs, 1);
	c->c_id = atomic_fetch_add(&tls_ctx_ids, 1) + 1;
	return c;
}

int tls_ctx_server_new(struct tls_ctx **c_r, const char *cert_file, const char *key_file,
		       char *err, size_t errlen)
{
	static const unsigned char sid_ctx[] = "ringmta";
	SSL_CTX *ctx = tls_ctx_base();

	*c_r = NULL;
	if (ctx == NULL) {
		tls_err(err, errlen, "TLS context", NULL);
		return -1;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		tls_err(err, errlen, "tls_cert_file", cert_file);
		SSL_CTX_free(ctx);
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		tls_err(err, errlen, "tls_key_file", key_file);
		SSL_CTX_free(ctx);
		return -1;
	}
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	/* Tickets outlive the context: a reload's contexts share the keys. */
	if (tls_ticket_install(ctx) != 0) {
		tls_err(err, errlen, "TLS session tickets", NULL);
		SSL_CTX_free(ctx);
		return -1;
	}
	*c_r = tls_ctx_wrap(ctx);
	return *c_r ? 0 : -1;
}

/* A client connection got a session to resume with (BoringSSL calls
 * this from SSL_do_handshake or SSL_read): 1 = the cache took it. */
static int tls_conn_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct tls_conn *t = SSL_get_app_data(ssl);

	if (t == NULL || t->tc_cache == NULL)
		return 0;
	tls_sesscache_put(t->tc_cache, t->tc_cache_key, sess);
	t->tc_got_session = true;
	return 1;
}

int tls_ctx_client_new(struct tls_ctx **c_r, const char *ca_file, char *err, size_t errlen)
{
	SSL_CTX *ctx = tls_ctx_base();
	const char *ca = (ca_file != NULL && ca_file[0] != '\0') ? ca_file : TLS_SYSTEM_CA;

	*c_r = NULL;
	if (ctx == NULL) {
		tls_err(err, errlen, "TLS context", NULL);
		return -1;
	}
	/* A missing system store only matters for the "verify" policy. */
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1 && ca_file != NULL &&
	    ca_file[0] != '\0') {
		tls_err(err, errlen, "tls_ca_file", ca);
		SSL_CTX_free(ctx);
		return -1;
	}
	ERR_clear_error();
	/* Sessions go to the connection's cache (tls_conn_use_cache). */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
	SSL_CTX_sess_set_new_cb(ctx, tls_conn_new_session);
	*c_r = tls_ctx_wrap(ctx);
	return *c_r ? 0 : -1;
}

struct tls_ctx *tls_ctx_ref(struct tls_ctx *c)
{
	atomic_fetch_add(&c->c_refs, 1);
	return c;
}

void tls_ctx_unref(struct tls_ctx **cp)
{
	struct tls_ctx *c = *cp;

	if (c == NULL)
		return;
	if (atomic_fetch_sub(&c->c_refs, 1) == 1) {
		SSL_CTX_free(c->c_ctx);
		free(c);
	}
	*cp = NULL;
}

int tls_conn_init(struct tls_conn *t, struct tls_ctx *c, bool server, const char *sni,
		  const char *verify_host)
{
	SSL *ssl;
	BIO *rbio, *wbio;

	memset(t, 0, sizeof(*t));
	ssl = SSL_new(c->c_ctx);
	rbio = BIO_new(BIO_s_mem());
	wbio = BIO_new(BIO_s_mem());
	if (ssl == NULL || rbio == NULL || wbio == NULL) {
		SSL_free(ssl);
		BIO_free(rbio);
		BIO_free(wbio);
		return -1;
	}
	SSL_set_bio(ssl, rbio, wbio);
	t->tc_server = server;
	t->tc_ctx_id = c->c_id;
	if (server) {
		SSL_set_accept_state(ssl);
	} else {
		SSL_set_connect_state(ssl);
		if (sni != NULL && sni[0] != '\0' && sni[0] != '[')
			SSL_set_tlsext_host_name(ssl, sni);
		if (verify_host != NULL) {
			SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
			t->tc_verify_host = strdup(verify_host);
			if (t->tc_verify_host == NULL ||
			    X509_VERIFY_PARAM_set1_host(SSL_get0_param(ssl), verify_host,
							strlen(verify_host)) != 1) {
				free(t->tc_verify_host);
				t->tc_verify_host = NULL;
				SSL_free(ssl);
				return -1;
			}
		} else {
			SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
		}
	}
	t->tc_ssl = ssl;
	return 0;
}

void tls_conn_free(struct tls_conn *t)
{
	SSL_free(t->tc_ssl);
	t->tc_ssl = NULL;
	free(t->tc_cache_key);
	t->tc_cache_key = NULL;
	free(t->tc_verify_host);
	t->tc_verify_host = NULL;
	SSL_SESSION_free(t->tc_offered_sess);
	t->tc_offered_sess = NULL;
	t->tc_cache = NULL;
}

int tls_conn_use_cache(struct tls_conn *t, struct tls_sesscache *sc, const char *key)
{
	SSL_SESSION *sess;
	int ok;

	t->tc_cache_key = strdup(key);
	if (t->tc_cache_key == NULL)
		return -1;
	t->tc_cache = sc;
	SSL_set_app_data(t->tc_ssl, t);
	tls_sesscache_bind_ctx(sc, t->tc_ctx_id);
	sess = tls_sesscache_get(sc, key, (uint64_t)time(NULL));
	if (sess == NULL)
		return 0;
	ok = SSL_set_session(t->tc_ssl, sess);
	t->tc_offered = ok == 1;
	if (t->tc_offered && SSL_SESSION_should_be_single_use(sess))
		t->tc_offered_sess = sess;	/* settled at the first plaintext */
	else
		SSL_SESSION_free(sess);
	return t->tc_offered ? 1 : 0;
}

/* The first plaintext came: the server's tickets (sent right after the
 * handshake) have come before it. A single-use session that was resumed
 * and not replaced goes back for the next connection. */
static void tls_conn_settle_offered(struct tls_conn *t)
{
	SSL_SESSION *sess = t->tc_offered_sess;

	t->tc_offered_sess = NULL;
	if (!t->tc_got_session && SSL_session_reused(t->tc_ssl))
		tls_sesscache_put(t->tc_cache, t->tc_cache_key, sess);
	else
		SSL_SESSION_free(sess);
}

int tls_conn_feed(struct tls_conn *t, const void *p, size_t len)
{
	BIO *rbio = SSL_get_rbio(t->tc_ssl);

	return BIO_write(rbio, p, (int)len) == (int)len ? 0 : -1;
}

/* Record a failure; -1. */
static int tls_fail(struct tls_conn *t, int ret)
{
	int e = SSL_get_error(t->tc_ssl, ret);
	unsigned long ee = ERR_peek_error();
	char buf[120];

	/* A session that the handshake offered and that failed is not
	 * offered again (a TLS 1.2 one stayed in the cache). */
	if (!t->tc_done && t->tc_offered)
		tls_sesscache_drop(t->tc_cache, t->tc_cache_key);
	t->tc_failed = true;
	if (ee != 0) {
		ERR_error_string_n(ee, buf, sizeof(buf));
		snprintf(t->tc_error, sizeof(t->tc_error), "%s", buf);
	} else if (SSL_get_verify_result(t->tc_ssl) != X509_V_OK) {
		snprintf(t->tc_error, sizeof(t->tc_error), "certificate verification failed: %s",
			 X509_verify_cert_error_string(SSL_get_verify_result(t->tc_ssl)));
	} else {
		snprintf(t->tc_error, sizeof(t->tc_error), "TLS error %d", e);
	}
	ERR_clear_error();
	return -1;
}

/*
 * A client that must verify resumed a session: the session's own
 * verification must have passed and its leaf must name verify_host, as a
 * full handshake would have checked. The cache's keys keep sessions of
 * unverified handshakes away from such connections; this is the second
 * line. true (and the connection failed) when it does not hold.
 */
static bool tls_conn_resumed_unverified(struct tls_conn *t)
{
	X509 *leaf;
	bool ok;

	if (t->tc_server || t->tc_verify_host == NULL || !SSL_session_reused(t->tc_ssl))
		return false;
	leaf = SSL_get_peer_certificate(t->tc_ssl);
	ok = leaf != NULL && SSL_get_verify_result(t->tc_ssl) == X509_V_OK &&
	     X509_check_host(leaf, t->tc_verify_host, strlen(t->tc_verify_host), 0, NULL) == 1;
	X509_free(leaf);
	if (ok)
		return false;
	if (t->tc_offered)
		tls_sesscache_drop(t->tc_cache, t->tc_cache_key);
	t->tc_failed = true;
	snprintf(t->tc_error, sizeof(t->tc_error),
		 "resumed session not verified for %s", t->tc_verify_host);
	return true;
}

int tls_conn_read(struct tls_conn *t, void *buf, size_t len)
{
	int ret;

	if (t->tc_failed)
		return -1;
	if (!t->tc_done) {
		ret = SSL_do_handshake(t->tc_ssl);
		if (ret != 1) {
			int e = SSL_get_error(t->tc_ssl, ret);

			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
				return 0;
			return tls_fail(t, ret);
		}
		if (tls_conn_resumed_unverified(t))
			return -1;
		t->tc_done = true;
	}
	ret = SSL_read(t->tc_ssl, buf, (int)len);
	if (ret > 0) {
		if (t->tc_offered_sess != NULL)
			tls_conn_settle_offered(t);
		return ret;
	}
	switch (SSL_get_error(t->tc_ssl, ret)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		t->tc_closed = true;
		return 0;
	default:
		return tls_fail(t, ret);
	}
}

int tls_conn_write(struct tls_conn *t, const void *p, size_t len)
{
	const char *s = p;

	if (t->tc_failed)
		return -1;
	while (len > 0) {
		int ret = SSL_write(t->tc_ssl, s, (int)len);

		if (ret <= 0)
			return tls_fail(t, ret);
		s += ret;
		len -= (size_t)ret;
	}
	return 0;
}

size_t tls_conn_pending(const struct tls_conn *t)
{
	return BIO_ctrl_pending(SSL_get_wbio(t->tc_ssl));
}

size_t tls_conn_take(struct tls_conn *t, void *buf, size_t len)
{
	int n = BIO_read(SSL_get_wbio(t->tc_ssl), buf, (int)len);

	return n > 0 ? (size_t)n : 0;
}

void tls_conn_shutdown(struct tls_conn *t)
{
	if (t->tc_done && !t->tc_failed)
		SSL_shutdown(t->tc_ssl);
	ERR_clear_error();
}

const char *tls_conn_version(const struct tls_conn *t)
{
	return SSL_get_version(t->tc_ssl);
}

const char *tls_conn_cipher(const struct tls_conn *t)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(t->tc_ssl);

	return c ? SSL_CIPHER_get_name(c) : "none";
}

bool tls_conn_resumed(const struct tls_conn *t)
{
	return SSL_session_reused(t->tc_ssl) != 0;
}
