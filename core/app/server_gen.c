/*
 * server_gen.c: the generations of the settings (a reload publishes one;
 * workers adopt it at their next wake). See server.h, struct server_gen,
 * and README "Reload".
 */
#include "core/app/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/sasl/auth.h"

/* Password checks run off the workers' rings (auth_pool.h); started when
 * some generation has accounts. */
int server_auth_pool_start(struct server *srv, char *err, size_t errlen)
{
	struct work_pool *pool = NULL;

	if (work_pool_start(&pool, "auth", srv->s_nworkers < 2 ? 2 : srv->s_nworkers > 8 ? 8 :
			    srv->s_nworkers, 256, err, errlen) < 0)
		return -1;
	__atomic_store_n(&srv->s_auth_pool, pool, __ATOMIC_RELEASE);
	return 0;
}

int server_gen_publish(struct server *srv, struct config *cfg, struct auth_db *adb,
		       bool keep_auth, unsigned *seq_r, char *err, size_t errlen)
{
	struct server_gen *g, *cur = atomic_load(&srv->s_gen);

	if (srv->s_ngens >= SERVER_GENS_MAX) {
		snprintf(err, errlen, "%u changes of the settings since start, the most kept:"
			 " restart ringmta to change them again", SERVER_GENS_MAX);
		return -1;
	}
	if (keep_auth)
		adb = NULL;
	if ((keep_auth ? cur->g_auth != NULL : adb != NULL) && srv->s_auth_pool == NULL &&
	    server_auth_pool_start(srv, err, errlen) < 0)
		return -1;
	g = calloc(1, sizeof(*g));
	if (g == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	g->g_cfg = g->g_own_cfg = cfg;
	g->g_auth = g->g_own_auth = adb;
	if (keep_auth)
		g->g_auth = cur->g_auth;
	g->g_seq = cur->g_seq + 1;
	g->g_prev = cur;
	srv->s_ngens++;
	atomic_store_explicit(&srv->s_gen, g, memory_order_release);
	for (unsigned i = 0; i < srv->s_nworkers; i++)
		io_loop_wake(&srv->s_workers[i].w_loop);
	*seq_r = g->g_seq;
	return 0;
}

const struct config *server_config(struct server *srv)
{
	return atomic_load_explicit(&srv->s_gen, memory_order_acquire)->g_cfg;
}

const struct auth_db *server_auth(struct server *srv)
{
	return atomic_load_explicit(&srv->s_gen, memory_order_acquire)->g_auth;
}

bool server_gen_wait(struct server *srv, unsigned seq, unsigned timeout_ms)
{
	for (unsigned t = 0; t <= timeout_ms; t++) {
		unsigned i;

		for (i = 0; i < srv->s_nworkers; i++)
			if (srv->s_workers[i].w_thread_started &&
			    atomic_load_explicit(&srv->s_workers[i].w_gen_seen,
						 memory_order_acquire) < seq)
				break;
		if (i == srv->s_nworkers)
			return true;
		usleep(1000);
	}
	return false;
}
