/*
 * tls: TLS over memory BIOs, so the worker's io_uring loop does all the
 * socket I/O and BoringSSL only transforms bytes. It knows neither SMTP
 * nor the queue: the owner feeds ciphertext that arrived, reads plaintext
 * out, writes plaintext in, and sends the ciphertext that comes out.
 *
 * Contexts (certificate, key, CA store, protocol floor TLS 1.2, AEAD
 * ciphers only) are reference-counted so a reload (SIGHUP) can swap in a
 * new one while connections finish on the old. Server contexts keep a
 * session cache and issue tickets under the process's keys (tls_ticket.h),
 * so a reload's contexts resume the old ones' tickets; client connections
 * resume from the caller's tls_sesscache (tls_conn_use_cache).
 */
#ifndef RINGMTA_TLS_H
#define RINGMTA_TLS_H

#include <stdbool.h>
#include <stddef.h>

struct tls_ctx;
struct tls_sesscache;

struct tls_conn {
	void *tc_ssl;			/* SSL *, owned */
	bool tc_server;
	bool tc_done;			/* handshake finished */
	bool tc_closed;			/* peer sent close_notify */
	bool tc_failed;
	bool tc_offered;		/* a cached session went into the hello */
	bool tc_got_session;		/* the server sent a session (ticket) */
	char tc_error[160];		/* why it failed */
	unsigned long long tc_ctx_id;	/* the context's identity (tls_conn_init) */
	char *tc_verify_host;		/* owned; what the chain must name */
	struct tls_sesscache *tc_cache;	/* the caller's; NULL = none */
	char *tc_cache_key;		/* owned */
	void *tc_offered_sess;		/* SSL_SESSION * offered (one reference)
					 * until the first plaintext */
};

/* Server context from PEM files (chain and key). */
int tls_ctx_server_new(struct tls_ctx **c_r, const char *cert_file, const char *key_file,
		       char *err, size_t errlen);
/* Client context; ca_file NULL or "" = the system store. */
int tls_ctx_client_new(struct tls_ctx **c_r, const char *ca_file, char *err, size_t errlen);
struct tls_ctx *tls_ctx_ref(struct tls_ctx *c);
void tls_ctx_unref(struct tls_ctx **c);

/*
 * Start a connection. For clients: sni is the server name sent; when
 * verify_host is non-NULL the chain must verify against the CA store and
 * the certificate must match verify_host, else the handshake fails. A
 * resumed session must carry a verified chain that matches it too
 * (BoringSSL does not verify again on resumption).
 */
int tls_conn_init(struct tls_conn *t, struct tls_ctx *c, bool server, const char *sni,
		  const char *verify_host);
void tls_conn_free(struct tls_conn *t);
/*
 * A client connection before its first read: offer the session sc holds
 * for key (tls_sesscache.h says what a key must name), and store under
 * key the sessions the server sends (TLS 1.3 tickets come after the
 * handshake: keep reading). A TLS 1.3 session leaves the cache when
 * offered; resumed, it goes back at the first plaintext unless the
 * server sent a new one by then (Postfix does not). sc must outlive the
 * connection and belong to this thread; sessions of another context are
 * dropped first. Returns 1
 * when a session was offered, 0 when none, -1 out of memory.
 */
int tls_conn_use_cache(struct tls_conn *t, struct tls_sesscache *sc, const char *key);

/* Ciphertext from the network. Returns 0 or -1 (out of memory). */
int tls_conn_feed(struct tls_conn *t, const void *p, size_t len);
/*
 * Drive the handshake and decrypt: returns > 0 plaintext bytes in buf,
 * 0 when more input is needed (or the peer closed: see tc_closed),
 * -1 on a TLS error (tc_error says why).
 */
int tls_conn_read(struct tls_conn *t, void *buf, size_t len);
/* Encrypt plaintext; only once the handshake is done. 0 or -1. */
int tls_conn_write(struct tls_conn *t, const void *p, size_t len);
/* Ciphertext waiting to be sent; copy up to len into buf, returns bytes. */
size_t tls_conn_pending(const struct tls_conn *t);
size_t tls_conn_take(struct tls_conn *t, void *buf, size_t len);
/* Send close_notify (then take() what it produced). */
void tls_conn_shutdown(struct tls_conn *t);
/* After the handshake: "TLSv1.3", the cipher name, whether resumed. */
const char *tls_conn_version(const struct tls_conn *t);
const char *tls_conn_cipher(const struct tls_conn *t);
bool tls_conn_resumed(const struct tls_conn *t);

#endif
