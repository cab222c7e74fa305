/* test_tls_sesscache: the client session cache (tls/tls_sesscache.c) with
 * BoringSSL sessions made by hand: a few sessions per key, newest first,
 * the bound, eviction of the oldest key, lifetime, single use of TLS 1.3
 * sessions, and emptying for another context. */
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

#include "tap.h"
#include "tls/tls_sesscache.h"

static SSL_CTX *ctx;

/* A resumable session of version v, made at t, living life seconds. */
static SSL_SESSION *sess(uint16_t v, uint64_t t, uint32_t life)
{
	SSL_SESSION *s = SSL_SESSION_new(ctx);
	static uint8_t id[32];

	id[0]++;
	SSL_SESSION_set1_id(s, id, sizeof(id));
	SSL_SESSION_set_protocol_version(s, v);
	SSL_SESSION_set_time(s, t);
	SSL_SESSION_set_timeout(s, life);
	return s;
}

int main(void)
{
	struct tls_sesscache *sc;
	SSL_SESSION *a, *got;
	const uint64_t now = 1800000000u;
	char key[32];

	ctx = SSL_CTX_new(TLS_method());
	tap_ok(tls_sesscache_new(&sc, 3) == 0 && tls_sesscache_max(sc) == 3, "made, max 3");

	/* TLS 1.2: stays for the next connection too. */
	a = sess(TLS1_2_VERSION, now, 300);
	tls_sesscache_put(sc, "3 s mx[192.0.2.1]:25 -", a);
	got = tls_sesscache_get(sc, "3 s mx[192.0.2.1]:25 -", now);
	tap_ok(got == a && tls_sesscache_count(sc) == 1, "TLS 1.2 session offered, kept");
	SSL_SESSION_free(got);
	tap_ok(tls_sesscache_get(sc, "1 s mx[192.0.2.1]:25 -", now) == NULL,
	       "another key (policy) gets nothing");
	got = tls_sesscache_get(sc, "3 s mx[192.0.2.1]:25 -", now);
	tap_ok(got == a, "offered again");
	SSL_SESSION_free(got);

	/* TLS 1.3: single use. */
	a = sess(TLS1_3_VERSION, now, 300);
	tls_sesscache_put(sc, "k13", a);
	got = tls_sesscache_get(sc, "k13", now);
	tap_ok(got == a && tls_sesscache_count(sc) == 1, "TLS 1.3 session offered and taken out");
	SSL_SESSION_free(got);
	tap_ok(tls_sesscache_get(sc, "k13", now) == NULL, "not offered twice");

	/* A few per key, the newest offered first, each once. */
	a = sess(TLS1_3_VERSION, now, 300);
	got = sess(TLS1_3_VERSION, now, 300);
	tls_sesscache_put(sc, "k", got);
	tls_sesscache_put(sc, "k", a);
	tap_ok(tls_sesscache_count(sc) == 3, "two sessions for one key");
	tap_ok(tls_sesscache_get(sc, "k", now) == a, "the newest is offered");
	SSL_SESSION_free(a);
	a = tls_sesscache_get(sc, "k", now);
	tap_ok(a == got && tls_sesscache_get(sc, "k", now) == NULL, "then the older, then none");
	SSL_SESSION_free(a);
	tls_sesscache_free(&sc);
	tls_sesscache_new(&sc, 100);
	for (unsigned i = 0; i < TLS_SESSCACHE_PER_KEY + 10; i++)
		tls_sesscache_put(sc, "k", sess(TLS1_3_VERSION, now, 300));
	tap_ok(tls_sesscache_count(sc) == TLS_SESSCACHE_PER_KEY, "at most %u per key",
	       TLS_SESSCACHE_PER_KEY);
	tls_sesscache_free(&sc);
	tls_sesscache_new(&sc, 3);
	tls_sesscache_put(sc, "3 s mx[192.0.2.1]:25 -", sess(TLS1_2_VERSION, now, 300));

	/* Lifetime. */
	tls_sesscache_put(sc, "old", sess(TLS1_2_VERSION, now - 400, 300));
	tap_ok(tls_sesscache_get(sc, "old", now) == NULL, "expired: not offered");
	tap_ok(tls_sesscache_count(sc) == 1, "and dropped");
	for (unsigned i = 0; i < 5; i++)
		tls_sesscache_put(sc, "one", sess(TLS1_3_VERSION, now, 300));
	tap_ok(tls_sesscache_count(sc) == 3, "one key over the bound: its oldest go");

	/* Bounded: many keys, the oldest stored goes first. */
	for (unsigned i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "hop%u", i);
		tls_sesscache_put(sc, key, sess(TLS1_2_VERSION, now, 300));
	}
	tap_ok(tls_sesscache_count(sc) == 3, "1000 keys: 3 sessions held");
	got = tls_sesscache_get(sc, "hop999", now);
	tap_ok(got != NULL, "the newest is there");
	SSL_SESSION_free(got);
	tap_ok(tls_sesscache_get(sc, "hop996", now) == NULL &&
	       tls_sesscache_get(sc, "3 s mx[192.0.2.1]:25 -", now) == NULL, "older ones went");

	/* A session that cannot resume is not kept. */
	tls_sesscache_put(sc, "none", SSL_SESSION_new(ctx));
	tap_ok(tls_sesscache_get(sc, "none", now) == NULL, "no id, no ticket: not kept");

	/* Another context: empty first. */
	tls_sesscache_bind_ctx(sc, 1);
	tls_sesscache_put(sc, "c1", sess(TLS1_2_VERSION, now, 300));
	tls_sesscache_bind_ctx(sc, 1);
	tap_ok(tls_sesscache_count(sc) == 1, "same context: kept");
	tls_sesscache_bind_ctx(sc, 2);
	tap_ok(tls_sesscache_count(sc) == 0, "another context: emptied");

	tls_sesscache_drop(sc, "nothing");
	tls_sesscache_put(sc, "d", sess(TLS1_2_VERSION, now, 300));
	tls_sesscache_drop(sc, "d");
	tap_ok(tls_sesscache_count(sc) == 0, "drop");
	tls_sesscache_put(sc, "f", sess(TLS1_2_VERSION, now, 300));
	tls_sesscache_free(&sc);
	tap_ok(sc == NULL, "freed with a session in it");
	SSL_CTX_free(ctx);
	return tap_done();
}
