/*
 * test_shp_share.c: the workers' shares of a path's connection limit
 * (shp_share.h): one share per key while referenced, the waiting bits of
 * up to 256 workers set and cleared from many threads at once, the fair
 * part (never two workers trading one unit back and forth), and, with
 * the store's semaphore, threads that take and hand back units never
 * hold more than the limit together while each gets its part.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/shaping/shp_share.h"
#include "core/shaping/shp_store.h"
#include "tap.h"

#define NTHREADS 8
#define LIMIT 3u
#define ROUNDS 20000

static struct shp_share *g_share;
static struct shp_store *g_store;
static atomic_uint g_held, g_max, g_taken[NTHREADS];

static void *toggler(void *arg)
{
	unsigned me = (unsigned)(uintptr_t)arg * 37u;	/* spread over the words */

	for (int i = 0; i < ROUNDS; i++)
		shp_share_wait(g_share, me, (i & 1) == 0);
	shp_share_wait(g_share, me, true);
	return NULL;
}

/* A worker: takes a unit when it can and may (no more than its fair part
 * while others wait; else it waits in the share), holds it a moment, and
 * hands it back when over its fair part. It goes on past ROUNDS until it
 * had a unit: the others end, so it gets one. */
static void *worker(void *arg)
{
	unsigned me = (unsigned)(uintptr_t)arg, mine = 0;

	for (long i = 0; i < ROUNDS || atomic_load(&g_taken[me]) == 0; i++) {
		unsigned others = shp_share_waiters(g_share, me, NULL, 0);

		if (others > 0 && mine >= shp_share_fair(LIMIT, others)) {
			;	/* at its part while others wait: takes no more */
		} else if (g_store->ss_ops->ss_sem_acquire(g_store, "c|site|default", LIMIT, 0)) {
			unsigned now = atomic_fetch_add(&g_held, 1) + 1, m = atomic_load(&g_max);

			while (now > m && !atomic_compare_exchange_weak(&g_max, &m, now))
				;
			mine++;
			atomic_fetch_add(&g_taken[me], 1);
			shp_share_wait(g_share, me, false);
		} else {
			shp_share_wait(g_share, me, true);
		}
		/* A session comes ready: give a unit back past the fair part
		 * (or now and then, as a session ending). */
		if (mine > 0 && (shp_share_yield(LIMIT, mine,
						 shp_share_waiters(g_share, me, NULL, 0)) ||
				 i % 7 == 0)) {
			atomic_fetch_sub(&g_held, 1);
			g_store->ss_ops->ss_sem_release(g_store, "c|site|default", 0);
			mine--;
		}
	}
	while (mine-- > 0) {
		atomic_fetch_sub(&g_held, 1);
		g_store->ss_ops->ss_sem_release(g_store, "c|site|default", 0);
	}
	shp_share_wait(g_share, me, false);
	return NULL;
}

int main(void)
{
	struct shp_share_tab *t;
	struct shp_share *a, *b, *c;
	pthread_t th[NTHREADS];
	unsigned who[8], n;
	bool ok;

	tap_ok(shp_share_tab_new(&t) == 0, "a table");
	a = shp_share_get(t, "gmail|default");
	b = shp_share_get(t, "gmail|default");
	c = shp_share_get(t, "gmail|src2");
	tap_ok(a != NULL && a == b && c != a, "one share per key, another key another share");
	tap_ok(strcmp(shp_share_key(c), "gmail|src2") == 0, "the key");

	tap_ok(shp_share_wait(a, 0, true) && !shp_share_wait(a, 0, true),
	       "setting a bit changes it once");
	shp_share_wait(a, 65, true);
	shp_share_wait(a, 253, true);
	n = shp_share_waiters(a, 0, who, 8);
	tap_ok(n == 2 && who[0] == 65 && who[1] == 253, "others waiting, seen from worker 0: %u", n);
	tap_ok(shp_share_waiters(a, 7, NULL, 0) == 3, "seen from worker 7: three");
	n = shp_share_waiters(a, 65, who, 1);
	tap_ok(n == 2 && who[0] == 0, "the count is whole even when out is short");
	tap_ok(shp_share_wait(a, 65, false) && !shp_share_wait(a, 65, false),
	       "clearing a bit changes it once");
	tap_ok(shp_share_waiters(c, 1, NULL, 0) == 0, "another key's share has no waiters");

	shp_share_put(t, &b);
	tap_ok(b == NULL, "put clears the caller's pointer");
	b = shp_share_get(t, "gmail|default");
	tap_ok(b == a && shp_share_waiters(b, 1, NULL, 0) == 2,
	       "a share lives while referenced");
	shp_share_put(t, &a);
	shp_share_put(t, &b);
	a = shp_share_get(t, "gmail|default");
	tap_ok(a != NULL && shp_share_waiters(a, 1, NULL, 0) == 0,
	       "the last put freed it: a new one has no waiters");

	/* The fair part. */
	tap_ok(!shp_share_yield(0, 50, 3), "no limit: never");
	tap_ok(!shp_share_yield(4, 4, 0), "nobody waits: never");
	tap_ok(shp_share_yield(4, 4, 1) && shp_share_yield(4, 3, 1) && !shp_share_yield(4, 2, 1),
	       "limit 4, one other waits: down to 2");
	tap_ok(shp_share_yield(3, 3, 1) && !shp_share_yield(3, 2, 1),
	       "limit 3, one other: down to 2 (rounded up)");
	tap_ok(!shp_share_yield(1, 1, 5), "limit 1: the holder keeps its one unit");
	ok = true;
	for (unsigned lim = 1; lim <= 64; lim++)
		for (unsigned k = 1; k <= 16; k++) {
			unsigned fair = 0;

			while (!shp_share_yield(lim, fair + 1, k))
				fair++;
			/* Parts cover the limit (no unit traded back and forth)
			 * and none exceeds it. */
			if (fair * (k + 1) < lim || fair > lim || fair == 0)
				ok = false;
		}
	tap_ok(ok, "the parts add up to at least the limit, each at most the limit");

	/* Many threads on the bits of one share. */
	g_share = a;
	for (uintptr_t i = 0; i < NTHREADS; i++)
		pthread_create(&th[i], NULL, toggler, (void *)i);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	tap_ok(shp_share_waiters(a, 255, NULL, 0) == NTHREADS,
	       "concurrent set and clear: every thread's last word stands (%u)",
	       shp_share_waiters(a, 255, NULL, 0));
	for (unsigned i = 0; i < NTHREADS; i++)
		shp_share_wait(a, i * 37u, false);

	/* Threads sharing a limit of LIMIT through the store's semaphore. */
	tap_ok(shp_store_local_new(&g_store) == 0, "a store");
	for (uintptr_t i = 0; i < NTHREADS; i++)
		pthread_create(&th[i], NULL, worker, (void *)i);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	tap_ok(atomic_load(&g_max) <= LIMIT && atomic_load(&g_max) >= 1,
	       "never more than the limit held at once (max %u of %u)", atomic_load(&g_max),
	       LIMIT);
	ok = true;
	for (int i = 0; i < NTHREADS; i++)
		ok = ok && atomic_load(&g_taken[i]) > 0;
	tap_ok(ok, "every thread got units");
	tap_ok(g_store->ss_ops->ss_sem_count(g_store, "c|site|default") == 0 &&
	       shp_share_waiters(a, 255, NULL, 0) == 0, "all handed back, nobody waits");
	shp_store_free(&g_store);

	g_share = NULL;
	shp_share_put(t, &a);
	shp_share_put(t, &c);
	shp_share_tab_free(&t);
	tap_ok(t == NULL, "the table is freed");
	return tap_done();
}
