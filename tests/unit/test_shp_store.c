/*
 * test_shp_store.c: the local shaping store (shp_store.h): GCRA through
 * the store, the connection semaphore, the sliding-window counter, expiry
 * of idle entries, and that concurrent acquirers never exceed a limit.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/shaping/shp_store.h"
#include "tap.h"

#define S 1000000ull

static struct shp_store *g_store;
static atomic_uint g_inside, g_max_inside;

static void *sem_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < 20000; i++) {
		if (!g_store->ss_ops->ss_sem_acquire(g_store, "c|site|src", 3, 1)) 
			continue;
		unsigned in = atomic_fetch_add(&g_inside, 1) + 1;
		unsigned m = atomic_load(&g_max_inside);

		while (in > m && !atomic_compare_exchange_weak(&g_max_inside, &m, in))
			;
		atomic_fetch_sub(&g_inside, 1);
		g_store->ss_ops->ss_sem_release(g_store, "c|site|src", 1);
	}
	return NULL;
}

int main(void)
{
	struct shp_store *s;
	const struct shp_store_ops *o;
	struct shp_rate r = { 10, S, 1 };	/* 10/s, no burst */
	uint64_t w;
	unsigned granted = 0;
	pthread_t th[4];

	tap_ok(shp_store_local_new(&s) == 0, "local store created");
	o = s->ss_ops;

	/* GCRA: 10/s without burst is one per 100 ms. */
	tap_ok(o->ss_gcra_take(s, "m|a", &r, 10 * S, 1) == 0, "first take allowed");
	w = o->ss_gcra_take(s, "m|a", &r, 10 * S, 1);
	tap_ok(w > 0 && w <= S / 10, "second take at the same instant waits (%llu us)",
	       (unsigned long long)w);
	tap_ok(o->ss_gcra_take(s, "m|a", &r, 10 * S + w, 1) == 0, "allowed after the wait");
	tap_ok(o->ss_gcra_take(s, "m|b", &r, 10 * S, 1) == 0, "keys are independent");
	for (uint64_t t = 20 * S; t < 21 * S; t += 1000)
		if (o->ss_gcra_take(s, "m|c", &r, t, 1) == 0)
			granted++;
	tap_ok(granted == 10, "10/s grants 10 in a second of 1000 tries (%u)", granted);
	{
		struct shp_rate none = { 0, 0, 0 };

		tap_ok(o->ss_gcra_take(s, "m|d", &none, 1, 1) == 0 &&
		       o->ss_gcra_take(s, "m|d", &none, 1, 1) == 0, "no limit always allows");
	}

	/* Semaphore. */
	tap_ok(o->ss_sem_acquire(s, "c|x", 2, 1) && o->ss_sem_acquire(s, "c|x", 2, 1),
	       "two of two granted");
	tap_ok(!o->ss_sem_acquire(s, "c|x", 2, 1), "third refused at limit 2");
	tap_ok(o->ss_sem_count(s, "c|x") == 2, "count is 2");
	o->ss_sem_release(s, "c|x", 2);
	tap_ok(o->ss_sem_acquire(s, "c|x", 2, 2), "granted again after a release");
	tap_ok(o->ss_sem_acquire(s, "c|y", 0, 1), "limit 0 is no limit");
	o->ss_sem_release(s, "c|nothing", 1);
	tap_ok(o->ss_sem_count(s, "c|nothing") == 0, "release of an unknown key is harmless");

	/* Window counter: 3 in 10 s. */
	tap_ok(o->ss_window_add(s, "w|r", 10 * S, 100 * S) == 1, "window: 1st event");
	tap_ok(o->ss_window_add(s, "w|r", 10 * S, 105 * S) == 2, "window: 2nd event");
	tap_ok(o->ss_window_add(s, "w|r", 10 * S, 111 * S) == 2,
	       "window: the 1st left the window (10 s)");
	tap_ok(o->ss_window_add(s, "w|r", 10 * S, 112 * S) == 3, "window: 3 in 10 s");
	o->ss_window_reset(s, "w|r");
	tap_ok(o->ss_window_add(s, "w|r", 10 * S, 113 * S) == 1, "window: reset starts over");
	for (unsigned i = 0; i < 1000; i++)
		o->ss_window_add(s, "w|big", 1000 * S, 200 * S + i);
	tap_ok(o->ss_window_add(s, "w|big", 1000 * S, 300 * S) == 256,
	       "window keeps at most 256 events");

	/* Expiry: idle entries go, held semaphores and future TATs stay. */
	o->ss_expire(s, 1000 * S, 60 * S);
	tap_ok(o->ss_sem_count(s, "c|x") == 2, "held semaphore survives expiry");
	tap_ok(o->ss_window_add(s, "w|r", 10 * S, 1000 * S) == 1, "idle window expired");
	{
		struct shp_rate slow = { 1, 86400 * S, 1 };	/* 1/d */

		tap_ok(o->ss_gcra_take(s, "m|slow", &slow, 2000 * S, 1) == 0, "1/d: first");
		o->ss_expire(s, 5000 * S, 60 * S);
		tap_ok(o->ss_gcra_take(s, "m|slow", &slow, 5000 * S, 1) > 0,
		       "a TAT still in the future is kept by expiry");
	}
	{
		/* The rate of a key changes (a reload, an action that ends):
		 * the debt of the old rate is not carried into the new one. */
		struct shp_rate slow = { 1, 86400 * S, 1 }, fast = { 100, S, 0 };

		tap_ok(o->ss_gcra_take(s, "m|chg", &slow, 3000 * S, 1) == 0, "1/d: first");
		tap_ok(o->ss_gcra_take(s, "m|chg", &slow, 3001 * S, 1) > 0, "1/d: second waits");
		tap_ok(o->ss_gcra_take(s, "m|chg", &fast, 3001 * S, 1) == 0,
		       "100/s after 1/d: no wait for the old rate's day");
		for (unsigned i = 0; i < 99; i++)
			o->ss_gcra_take(s, "m|chg", &fast, 3001 * S, 1);
		tap_ok(o->ss_gcra_take(s, "m|chg", &fast, 3001 * S, 1) > 0,
		       "100/s: its own burst still holds");
		tap_ok(o->ss_gcra_take(s, "m|chg", &slow, 3002 * S, 1) == 0 &&
		       o->ss_gcra_take(s, "m|chg", &slow, 3003 * S, 1) > 0,
		       "back to 1/d: one, then the day");
	}

	/* Threads: never more than the limit inside. */
	g_store = s;
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, sem_thread, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	tap_ok(atomic_load(&g_max_inside) <= 3 && atomic_load(&g_max_inside) >= 1,
	       "4 threads: at most 3 holders at once (saw %u)", atomic_load(&g_max_inside));
	tap_ok(o->ss_sem_count(s, "c|site|src") == 0, "every unit released");

	shp_store_free(&s);
	tap_ok(s == NULL, "freed");
	return tap_done();
}
