/* tls_ticket.c: see tls_ticket.h. */
#include "tls/tls_ticket.h"

#include <openssl/cipher.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

static struct tls_ticket_ring tls_ring = {
	.tr_interval = SSL_DEFAULT_TICKET_KEY_ROTATION_INTERVAL,
};
static pthread_mutex_t tls_ring_lock = PTHREAD_MUTEX_INITIALIZER;

static int tls_ticket_new_key(struct tls_ticket_key *k, uint64_t now,
			      int (*fill)(uint8_t *p, size_t n))
{
	struct tls_ticket_key n = { .tk_born = now, .tk_set = 1 };

	if (fill(n.tk_name, sizeof(n.tk_name)) != 0 || fill(n.tk_hmac, sizeof(n.tk_hmac)) != 0 ||
	    fill(n.tk_aes, sizeof(n.tk_aes)) != 0)
		return -1;
	*k = n;
	return 0;
}

int tls_ticket_ring_at(struct tls_ticket_ring *r, uint64_t now,
		       int (*fill)(uint8_t *p, size_t n))
{
	struct tls_ticket_key k;

	/* A key decrypts until two intervals after its birth: it made its
	 * last ticket within the first (a later one would have rotated it). */
	if (r->tr_prev.tk_set && now - r->tr_prev.tk_born >= 2 * r->tr_interval)
		r->tr_prev.tk_set = 0;
	if (r->tr_cur.tk_set && now - r->tr_cur.tk_born < r->tr_interval)
		return 0;
	if (tls_ticket_new_key(&k, now, fill) != 0)
		return -1;
	if (r->tr_cur.tk_set && now - r->tr_cur.tk_born < 2 * r->tr_interval)
		r->tr_prev = r->tr_cur;
	else
		r->tr_prev.tk_set = 0;
	r->tr_cur = k;
	return 0;
}

int tls_ticket_ring_find(const struct tls_ticket_ring *r, const uint8_t *name,
			 struct tls_ticket_key *k_r)
{
	if (r->tr_cur.tk_set && memcmp(name, r->tr_cur.tk_name, TLS_TICKET_NAME_LEN) == 0) {
		*k_r = r->tr_cur;
		return 1;
	}
	if (r->tr_prev.tk_set && memcmp(name, r->tr_prev.tk_name, TLS_TICKET_NAME_LEN) == 0) {
		*k_r = r->tr_prev;
		return 2;
	}
	return 0;
}

static int tls_ticket_rand(uint8_t *p, size_t n)
{
	return RAND_bytes(p, n) == 1 ? 0 : -1;
}

static uint64_t tls_ticket_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec;
}

/* BoringSSL's ticket callback: see SSL_CTX_set_tlsext_ticket_key_cb. */
static int tls_ticket_cb(SSL *ssl, uint8_t *key_name, uint8_t *iv, EVP_CIPHER_CTX *ctx,
			 HMAC_CTX *hmac_ctx, int encrypt)
{
	struct tls_ticket_key k;
	int found;

	(void)ssl;
	pthread_mutex_lock(&tls_ring_lock);
	if (tls_ticket_ring_at(&tls_ring, tls_ticket_now(), tls_ticket_rand) != 0 &&
	    !tls_ring.tr_cur.tk_set) {
		pthread_mutex_unlock(&tls_ring_lock);
		return encrypt ? -1 : 0;
	}
	if (encrypt) {
		k = tls_ring.tr_cur;
		found = 1;
	} else {
		found = tls_ticket_ring_find(&tls_ring, key_name, &k);
	}
	pthread_mutex_unlock(&tls_ring_lock);
	if (encrypt) {
		memcpy(key_name, k.tk_name, TLS_TICKET_NAME_LEN);
		if (RAND_bytes(iv, EVP_CIPHER_iv_length(EVP_aes_128_cbc())) != 1 ||
		    !EVP_EncryptInit_ex(ctx, EVP_aes_128_cbc(), NULL, k.tk_aes, iv) ||
		    !HMAC_Init_ex(hmac_ctx, k.tk_hmac, sizeof(k.tk_hmac), EVP_sha256(), NULL))
			found = -1;
	} else if (found != 0 &&
		   (!EVP_DecryptInit_ex(ctx, EVP_aes_128_cbc(), NULL, k.tk_aes, iv) ||
		    !HMAC_Init_ex(hmac_ctx, k.tk_hmac, sizeof(k.tk_hmac), EVP_sha256(), NULL))) {
		found = -1;
	}
	OPENSSL_cleanse(&k, sizeof(k));
	return found;
}

int tls_ticket_install(void *ssl_ctx)
{
	return SSL_CTX_set_tlsext_ticket_key_cb(ssl_ctx, tls_ticket_cb) == 1 ? 0 : -1;
}
