/*
 * tls_ticket: the server's session ticket keys, one ring for the process.
 *
 * BoringSSL's own keys live in each SSL_CTX, and a reload (SIGHUP) makes
 * new server contexts: every ticket issued before it stopped decrypting,
 * so after each reload every client paid a full handshake again. Here all
 * server contexts, old and new, encrypt with the ring's current key and
 * decrypt with its current or previous one. The ring rotates as BoringSSL's
 * own keys do (SSL_DEFAULT_TICKET_KEY_ROTATION_INTERVAL, 48 hours): a key
 * encrypts for one interval, then only decrypts, until two intervals after
 * its birth, and a ticket under it is renewed under the current key. Keys are random (RAND_bytes),
 * in memory only: a restart still starts afresh, as with nginx without
 * ssl_session_ticket_key files.
 *
 * Tickets: AES-128-CBC and HMAC-SHA256, as BoringSSL's default. The ring
 * is locked per use (a ticket is one per handshake); any thread.
 */
#ifndef RINGMTA_TLS_TICKET_H
#define RINGMTA_TLS_TICKET_H

#include <stddef.h>
#include <stdint.h>

#define TLS_TICKET_NAME_LEN 16

struct tls_ticket_key {
	uint8_t tk_name[TLS_TICKET_NAME_LEN];	/* sent in the clear in each ticket */
	uint8_t tk_hmac[16];
	uint8_t tk_aes[16];
	uint64_t tk_born;			/* when it began to encrypt (s) */
	uint8_t tk_set;				/* 0: none yet */
};

/* The keys at one moment: cur encrypts, prev (if set) still decrypts. */
struct tls_ticket_ring {
	struct tls_ticket_key tr_cur, tr_prev;
	uint64_t tr_interval;			/* seconds a key encrypts */
};

/*
 * Bring the ring to now (seconds on a clock that does not jump back): a
 * first key, or the next one once cur is an interval old, the old cur
 * becoming prev; a key older than two intervals decrypts nothing (prev is
 * dropped). fill makes a key's random bytes (0 or -1). Returns 0, or -1
 * when fill failed (then only an expired prev was dropped).
 */
int tls_ticket_ring_at(struct tls_ticket_ring *r, uint64_t now,
		       int (*fill)(uint8_t *p, size_t n));

/* The key a ticket named name was made with: 1 cur, 2 prev (renew the
 * ticket), 0 none (a full handshake). *k_r is a copy. */
int tls_ticket_ring_find(const struct tls_ticket_ring *r, const uint8_t *name,
			 struct tls_ticket_key *k_r);

/* Use the process's ring for ctx's tickets (an SSL_CTX *). 0 or -1. */
int tls_ticket_install(void *ssl_ctx);

#endif
