/*
 * load_tls.c: STARTTLS for smtp-load, with BoringSSL over memory BIOs. The
 * ring does all socket I/O: the ciphertext a receive brought is written into
 * the SSL's read BIO and plaintext comes out of SSL_read into ls_rx;
 * plaintext iovecs go in with SSL_write (small pieces gathered into one
 * record first) and what the write BIO holds is copied into lt_tx and sent.
 * No certificate is verified and no session is resumed: every handshake is
 * a full one, the server's worst case.
 *
 * Ownership: one struct load_tls per session, allocated before the run; its
 * SSL (which owns both BIOs) lives for one connection. lt_tx grows on demand
 * up to LOAD_TLS_TX_MAX and never moves while a send is in flight.
 */
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>

#include "load.h"

#define LOAD_TLS_RX		4096u	/* ciphertext per receive */
#define LOAD_TLS_REC		16384u	/* plaintext per SSL_write: one record */
#define LOAD_TLS_REC_MAX	(LOAD_TLS_REC + 256u)	/* its ciphertext, with room */
#define LOAD_TLS_TX_MAX		(2u * LOAD_TLS_REC_MAX)	/* ciphertext per send */
#define LOAD_TLS_TX_MIN		4096u

struct load_tls {
	SSL *lt_ssl;			/* NULL between TLS connections */
	char *lt_tx;			/* ciphertext the kernel is sending */
	uint32_t lt_txlen, lt_txoff, lt_txcap;
	uint64_t lt_t_start;		/* ns: the 220 to STARTTLS arrived */
	char lt_rx[LOAD_TLS_RX];	/* ciphertext the kernel receives into */
};

void load_tls_init(struct load *L)
{
	const struct load_opts *o = L->l_opts;
	SSL_CTX *ctx;

	if (!o->lo_tls)
		return;
	ctx = SSL_CTX_new(TLS_method());
	if (ctx == NULL)
		load_die("SSL_CTX_new failed");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
		load_die("SSL_CTX_set_min_proto_version failed");
	L->l_ssl_ctx = ctx;
	L->l_tls = calloc(o->lo_sessions, sizeof(*L->l_tls));
	L->l_tls_stage = malloc(LOAD_TLS_REC);
	if (L->l_tls == NULL || L->l_tls_stage == NULL)
		load_die("out of memory");
	for (unsigned i = 0; i < o->lo_sessions; i++)
		L->l_sess[i].ls_tls = &L->l_tls[i];
}

char *load_tls_rxbuf(struct load_sess *s, size_t *len_r)
{
	*len_r = LOAD_TLS_RX;
	return s->ls_tls->lt_rx;
}

/* Count a TLS error with BoringSSL's reason, and drop the connection. */
static void load_tls_fail(struct load *L, struct load_sess *s)
{
	uint32_t e = ERR_get_error();
	const char *why = e != 0 ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	L->l_tls_errors++;
	load_fail_what(L, s, why != NULL ? why : "TLS_ERROR");
}

/* SSL_write the plaintext left in ls_msg while the ciphertext stays under
 * LOAD_TLS_TX_MAX; false after an error (the session is closed). */
static bool load_tls_encrypt(struct load *L, struct load_sess *s)
{
	SSL *ssl = s->ls_tls->lt_ssl;
	struct msghdr *m = &s->ls_msg;

	while (m->msg_iovlen > 0 &&
	       BIO_ctrl_pending(SSL_get_wbio(ssl)) + LOAD_TLS_REC_MAX <= LOAD_TLS_TX_MAX) {
		const char *p = m->msg_iov->iov_base;
		size_t fill = m->msg_iov->iov_len;

		if (fill >= LOAD_TLS_REC) {
			fill = LOAD_TLS_REC;	/* a whole record straight from the iovec */
		} else {
			/* Gather small pieces (Message-ID, message, ".") into one record. */
			fill = 0;
			while (m->msg_iovlen > 0 && fill < LOAD_TLS_REC) {
				size_t k = m->msg_iov->iov_len;

				if (k > LOAD_TLS_REC - fill)
					k = LOAD_TLS_REC - fill;
				memcpy(L->l_tls_stage + fill, m->msg_iov->iov_base, k);
				fill += k;
				load_iov_advance(m, k);
			}
			p = L->l_tls_stage;
		}
		if (fill > 0 && SSL_write(ssl, p, (int)fill) != (int)fill) {
			load_tls_fail(L, s);
			return false;
		}
		if (p != L->l_tls_stage)
			load_iov_advance(m, fill);
	}
	return true;
}

bool load_tls_push(struct load *L, struct load_sess *s)
{
	struct load_tls *t = s->ls_tls;
	size_t pend;

	if ((s->ls_inflight & LOAD_IF_SEND) || t->lt_ssl == NULL)
		return false;
	if (!load_tls_encrypt(L, s))
		return false;
	pend = BIO_ctrl_pending(SSL_get_wbio(t->lt_ssl));
	if (pend == 0)
		return false;
	if (pend > t->lt_txcap) {
		size_t cap = t->lt_txcap ? t->lt_txcap : LOAD_TLS_TX_MIN;
		char *n;

		while (cap < pend)
			cap *= 2;
		n = realloc(t->lt_tx, cap);	/* no send in flight: it may move */
		if (n == NULL)
			load_die("out of memory");
		t->lt_tx = n;
		t->lt_txcap = (uint32_t)cap;
	}
	if (BIO_read(SSL_get_wbio(t->lt_ssl), t->lt_tx, (int)pend) != (int)pend)
		load_die("BIO_read: short read from a memory BIO");
	t->lt_txlen = (uint32_t)pend;
	t->lt_txoff = 0;
	load_post_send_buf(L, s, t->lt_tx, pend);
	return true;
}

bool load_tls_sent(struct load *L, struct load_sess *s, size_t n)
{
	struct load_tls *t = s->ls_tls;

	if (t->lt_txlen != 0) {
		t->lt_txoff += (uint32_t)n;
		if (t->lt_txoff < t->lt_txlen) {
			load_post_send_buf(L, s, t->lt_tx + t->lt_txoff, t->lt_txlen - t->lt_txoff);
			return true;
		}
		t->lt_txlen = t->lt_txoff = 0;
	} else if (load_iov_advance(&s->ls_msg, n)) {
		load_post_send(L, s);	/* STARTTLS itself, in plaintext, sent short */
		return true;
	}
	return load_tls_push(L, s);
}

void load_tls_start(struct load *L, struct load_sess *s)
{
	struct load_tls *t = s->ls_tls;
	SSL *ssl = SSL_new(L->l_ssl_ctx);
	BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
	unsigned char addr[16];
	int rc;

	if (ssl == NULL || rbio == NULL || wbio == NULL) {
		SSL_free(ssl);
		BIO_free(rbio);
		BIO_free(wbio);
		load_tls_fail(L, s);
		return;
	}
	SSL_set_bio(ssl, rbio, wbio);
	SSL_set_connect_state(ssl);
	if (inet_pton(AF_INET, L->l_host, addr) != 1 && inet_pton(AF_INET6, L->l_host, addr) != 1)
		SSL_set_tlsext_host_name(ssl, L->l_host);
	t->lt_ssl = ssl;
	t->lt_t_start = L->l_now;
	/* RFC 3207: forget what the server said before TLS. */
	s->ls_flags = (uint8_t)((s->ls_flags | LOAD_F_TLS) & ~(LOAD_F_PIPELINING | LOAD_F_STARTTLS));
	s->ls_state = LOAD_S_HANDSHAKE;
	rc = SSL_do_handshake(ssl);
	if (rc <= 0 && SSL_get_error(ssl, rc) != SSL_ERROR_WANT_READ) {
		load_tls_fail(L, s);
		return;
	}
	load_tls_push(L, s);	/* the ClientHello */
}

/* The handshake went on with what arrived; false when the session closed
 * or the handshake needs more. */
static bool load_tls_handshake(struct load *L, struct load_sess *s)
{
	struct load_tls *t = s->ls_tls;
	int rc = SSL_do_handshake(t->lt_ssl);

	if (rc != 1) {
		if (SSL_get_error(t->lt_ssl, rc) == SSL_ERROR_WANT_READ)
			load_tls_push(L, s);
		else
			load_tls_fail(L, s);
		return false;
	}
	L->l_handshakes++;
	load_hist_add(&L->l_hs_hist, (L->l_now - t->lt_t_start) / 1000);
	if (L->l_tls_version == NULL) {
		L->l_tls_version = SSL_get_version(t->lt_ssl);
		L->l_tls_cipher = SSL_CIPHER_get_name(SSL_get_current_cipher(t->lt_ssl));
	}
	load_tls_push(L, s);	/* our Finished, ahead of anything else */
	if (!load_live(s))
		return false;
	load_on_handshake(L, s);
	return load_live(s);
}

void load_tls_recv(struct load *L, struct load_sess *s, size_t n)
{
	struct load_tls *t = s->ls_tls;
	SSL *ssl = t->lt_ssl;

	if (BIO_write(SSL_get_rbio(ssl), t->lt_rx, (int)n) != (int)n) {
		load_tls_fail(L, s);
		return;
	}
	if (s->ls_state == LOAD_S_HANDSHAKE && !load_tls_handshake(L, s))
		return;
	for (;;) {
		int k = SSL_read(ssl, s->ls_rx + s->ls_rxlen, (int)(LOAD_RX_SIZE - s->ls_rxlen));

		if (k > 0) {
			s->ls_rxlen = (uint16_t)(s->ls_rxlen + (unsigned)k);
			if (!load_rx_lines(L, s))
				return;
			continue;
		}
		switch (SSL_get_error(ssl, k)) {
		case SSL_ERROR_WANT_READ:
			load_tls_push(L, s);	/* what reading wrote, if anything */
			return;
		case SSL_ERROR_ZERO_RETURN:	/* close_notify */
			if (s->ls_state == LOAD_S_QUIT)
				load_close(L, s);
			else
				load_fail(L, s, 0, 0);
			return;
		default:
			load_tls_fail(L, s);
			return;
		}
	}
}

void load_tls_end(struct load *L, struct load_sess *s)
{
	struct load_tls *t = s->ls_tls;

	(void)L;
	SSL_free(t->lt_ssl);
	t->lt_ssl = NULL;
	t->lt_txlen = t->lt_txoff = 0;
}
