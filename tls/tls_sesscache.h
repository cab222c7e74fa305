/*
 * tls_sesscache: a client's TLS sessions, kept to resume the next
 * handshake with the same peer (TLS 1.3 tickets, TLS 1.2 session ids
 * and tickets). Up to TLS_SESSCACHE_PER_KEY sessions per key (a TLS 1.3
 * server sends one or two tickets per connection and each serves one
 * handshake: as many as a next hop has parallel connections, 20 by
 * default, let all of them resume), at most max in all: the least
 * recently stored key goes first. A session past its lifetime is never
 * offered.
 *
 * The key is the owner's: it must name everything under which a session
 * may be offered again (host name sent and verified, address, port,
 * verification level, source), because BoringSSL does not verify the
 * peer's certificate again on resumption: a resumed session carries the
 * verification result and chain of the handshake that made it.
 *
 * Single-threaded: a cache belongs to one thread (a delivery worker) and
 * takes no lock. Its sessions belong to one client context (sc_ctx_id,
 * tls.c): offered with another context (a reload changed the CA store),
 * the cache empties first.
 */
#ifndef RINGMTA_TLS_SESSCACHE_H
#define RINGMTA_TLS_SESSCACHE_H

#include <stdbool.h>
#include <stdint.h>

#define TLS_SESSCACHE_PER_KEY 32u

struct ssl_session_st;		/* BoringSSL's SSL_SESSION */
struct tls_sesscache;

/* A cache of at most max sessions (max >= 1): 0, or -1 out of memory. */
int tls_sesscache_new(struct tls_sesscache **sc_r, unsigned max);
/* Free it with every session it holds; *scp = NULL. */
void tls_sesscache_free(struct tls_sesscache **scp);
/* Sessions held now (expired ones included until looked up or evicted). */
unsigned tls_sesscache_count(const struct tls_sesscache *sc);
/* The max it was made with. */
unsigned tls_sesscache_max(const struct tls_sesscache *sc);
/* Forget every session. */
void tls_sesscache_clear(struct tls_sesscache *sc);

/*
 * Store sess under key, the newest of its sessions (with
 * TLS_SESSCACHE_PER_KEY already, the oldest goes); the cache takes the
 * caller's reference (freed at once when the session cannot be resumed).
 * Over max, the least recently stored keys go first.
 */
void tls_sesscache_put(struct tls_sesscache *sc, const char *key, struct ssl_session_st *sess);
/*
 * The newest session for key to offer, with a reference for the caller,
 * or NULL. A single-use session (TLS 1.3) leaves the cache; an expired
 * one is dropped with the key's older ones and not returned. now:
 * seconds since the epoch (the clock of SSL_SESSION_get_time).
 */
struct ssl_session_st *tls_sesscache_get(struct tls_sesscache *sc, const char *key,
					 uint64_t now);
/* Drop every session of key (a handshake that offered one failed). */
void tls_sesscache_drop(struct tls_sesscache *sc, const char *key);
/* Empty the cache unless its sessions are ctx_id's; then they are. */
void tls_sesscache_bind_ctx(struct tls_sesscache *sc, uint64_t ctx_id);

#endif
