/* tls_sesscache.c: see tls_sesscache.h. A chained hash over the keys, a
 * list of the keys in order of storing (newest first) for eviction, and
 * per key a small stack of sessions (the newest is offered first). */
#include "tls/tls_sesscache.h"

#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>

struct tls_sess_entry {
	struct tls_sess_entry *se_hnext;		/* hash chain */
	struct tls_sess_entry *se_newer, *se_older;	/* storing order */
	SSL_SESSION *se_sess[TLS_SESSCACHE_PER_KEY];	/* oldest first; one
							 * reference each */
	unsigned se_n;
	uint32_t se_hash;
	char se_key[];
};

struct tls_sesscache {
	struct tls_sess_entry **sc_buckets;
	unsigned sc_mask;			/* buckets - 1 (a power of 2) */
	struct tls_sess_entry *sc_newest, *sc_oldest;
	unsigned sc_n, sc_max;			/* sessions */
	uint64_t sc_ctx_id;			/* 0: not bound yet */
};

static uint32_t tls_sesscache_hash(const char *key)
{
	uint32_t h = 2166136261u;		/* FNV-1a */

	for (; *key != '\0'; key++)
		h = (h ^ (uint8_t)*key) * 16777619u;
	return h;
}

int tls_sesscache_new(struct tls_sesscache **sc_r, unsigned max)
{
	struct tls_sesscache *sc = calloc(1, sizeof(*sc));
	unsigned nb = 16;

	*sc_r = NULL;
	if (sc == NULL)
		return -1;
	while (nb < max && nb < (1u << 20))
		nb <<= 1;
	sc->sc_buckets = calloc(nb, sizeof(*sc->sc_buckets));
	if (sc->sc_buckets == NULL) {
		free(sc);
		return -1;
	}
	sc->sc_mask = nb - 1;
	sc->sc_max = max > 0 ? max : 1;
	*sc_r = sc;
	return 0;
}

static struct tls_sess_entry **tls_sesscache_slot(struct tls_sesscache *sc, const char *key,
						  uint32_t h)
{
	struct tls_sess_entry **pp = &sc->sc_buckets[h & sc->sc_mask];

	while (*pp != NULL && ((*pp)->se_hash != h || strcmp((*pp)->se_key, key) != 0))
		pp = &(*pp)->se_hnext;
	return pp;
}

/* e out of the storing order. */
static void tls_sesscache_list_out(struct tls_sesscache *sc, struct tls_sess_entry *e)
{
	if (e->se_newer != NULL)
		e->se_newer->se_older = e->se_older;
	else
		sc->sc_newest = e->se_older;
	if (e->se_older != NULL)
		e->se_older->se_newer = e->se_newer;
	else
		sc->sc_oldest = e->se_newer;
}

/* e in as the newest key. */
static void tls_sesscache_list_in(struct tls_sesscache *sc, struct tls_sess_entry *e)
{
	e->se_newer = NULL;
	e->se_older = sc->sc_newest;
	if (sc->sc_newest != NULL)
		sc->sc_newest->se_newer = e;
	else
		sc->sc_oldest = e;
	sc->sc_newest = e;
}

/* Take *pp (an entry) out of its chain and the order, and free it. */
static void tls_sesscache_unlink(struct tls_sesscache *sc, struct tls_sess_entry **pp)
{
	struct tls_sess_entry *e = *pp;

	*pp = e->se_hnext;
	tls_sesscache_list_out(sc, e);
	for (unsigned i = 0; i < e->se_n; i++)
		SSL_SESSION_free(e->se_sess[i]);
	sc->sc_n -= e->se_n;
	free(e);
}

/* Take e's oldest session out (e keeps at least one more). */
static void tls_sesscache_shift(struct tls_sesscache *sc, struct tls_sess_entry *e)
{
	SSL_SESSION_free(e->se_sess[0]);
	memmove(&e->se_sess[0], &e->se_sess[1], (e->se_n - 1) * sizeof(e->se_sess[0]));
	e->se_n--;
	sc->sc_n--;
}

void tls_sesscache_drop(struct tls_sesscache *sc, const char *key)
{
	struct tls_sess_entry **pp = tls_sesscache_slot(sc, key, tls_sesscache_hash(key));

	if (*pp != NULL)
		tls_sesscache_unlink(sc, pp);
}

void tls_sesscache_put(struct tls_sesscache *sc, const char *key, SSL_SESSION *sess)
{
	uint32_t h = tls_sesscache_hash(key);
	size_t klen = strlen(key);
	struct tls_sess_entry **pp, *e;

	if (!SSL_SESSION_is_resumable(sess)) {
		SSL_SESSION_free(sess);
		return;
	}
	pp = tls_sesscache_slot(sc, key, h);
	e = *pp;
	if (e == NULL) {
		e = calloc(1, sizeof(*e) + klen + 1);
		if (e == NULL) {
			SSL_SESSION_free(sess);
			return;
		}
		memcpy(e->se_key, key, klen + 1);
		e->se_hash = h;
		e->se_hnext = sc->sc_buckets[h & sc->sc_mask];
		sc->sc_buckets[h & sc->sc_mask] = e;
		tls_sesscache_list_in(sc, e);
	} else {
		tls_sesscache_list_out(sc, e);
		tls_sesscache_list_in(sc, e);
		if (e->se_n == TLS_SESSCACHE_PER_KEY)
			tls_sesscache_shift(sc, e);
	}
	e->se_sess[e->se_n++] = sess;
	sc->sc_n++;
	/* Over the bound: the least recently stored keys go; when only this
	 * key is left, its oldest sessions. */
	while (sc->sc_n > sc->sc_max) {
		struct tls_sess_entry *old = sc->sc_oldest;

		if (old == e)
			tls_sesscache_shift(sc, e);
		else
			tls_sesscache_unlink(sc, tls_sesscache_slot(sc, old->se_key,
								    old->se_hash));
	}
}

SSL_SESSION *tls_sesscache_get(struct tls_sesscache *sc, const char *key, uint64_t now)
{
	struct tls_sess_entry **pp = tls_sesscache_slot(sc, key, tls_sesscache_hash(key));
	struct tls_sess_entry *e = *pp;
	SSL_SESSION *s;

	if (e == NULL)
		return NULL;
	s = e->se_sess[e->se_n - 1];
	/* The newest has expired: the older ones too. */
	if (SSL_SESSION_get_time(s) + SSL_SESSION_get_timeout(s) <= now) {
		tls_sesscache_unlink(sc, pp);
		return NULL;
	}
	if (!SSL_SESSION_should_be_single_use(s)) {
		SSL_SESSION_up_ref(s);
		return s;
	}
	/* The cache's reference goes to the caller. */
	e->se_n--;
	sc->sc_n--;
	if (e->se_n == 0)
		tls_sesscache_unlink(sc, pp);
	return s;
}

unsigned tls_sesscache_count(const struct tls_sesscache *sc)
{
	return sc->sc_n;
}

unsigned tls_sesscache_max(const struct tls_sesscache *sc)
{
	return sc->sc_max;
}

void tls_sesscache_clear(struct tls_sesscache *sc)
{
	while (sc->sc_oldest != NULL) {
		struct tls_sess_entry *old = sc->sc_oldest;

		tls_sesscache_unlink(sc, tls_sesscache_slot(sc, old->se_key, old->se_hash));
	}
}

void tls_sesscache_bind_ctx(struct tls_sesscache *sc, uint64_t ctx_id)
{
	if (sc->sc_ctx_id == ctx_id)
		return;
	tls_sesscache_clear(sc);
	sc->sc_ctx_id = ctx_id;
}

void tls_sesscache_free(struct tls_sesscache **scp)
{
	struct tls_sesscache *sc = *scp;

	if (sc == NULL)
		return;
	tls_sesscache_clear(sc);
	free(sc->sc_buckets);
	free(sc);
	*scp = NULL;
}
