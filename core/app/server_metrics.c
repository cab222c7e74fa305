/*
 * server_metrics.c: the workers' counters summed for the metrics endpoint
 * (core/http/metrics.h's inbound source). See server.h.
 */
#include "core/app/server.h"

#include <string.h>

#include "core/http/metrics.h"

static void server_hist_add(struct metrics_hist *to, const struct stat_hist *h)
{
	for (unsigned k = 0; k < STAT_HIST_NBUCKETS; k++)
		to->sh_buckets[k] += stat_get(&h->sh_buckets[k]);
	to->sh_count += stat_get(&h->sh_count);
	to->sh_sum_ns += stat_get(&h->sh_sum_ns);
}

static void server_get_stats(void *ctx, struct metrics_inbound_stats *st_r)
{
	struct server *srv = ctx;

	memset(st_r, 0, sizeof(*st_r));
	for (unsigned i = 0; i < srv->s_nworkers; i++) {
		const struct smtp_worker *w = &srv->s_workers[i];
		const struct smtp_env_stats *es = &w->w_env.e_stats;

		for (unsigned l = 0; l < CONFIG_LISTEN_MAX; l++) {
			st_r->accepted[l] += stat_get(&w->w_accepted[l]);
			st_r->open[l] += stat_get(&es->es_open[l]);
		}
		st_r->refused += stat_get(&w->w_refused);
		st_r->messages += stat_get(&es->es_messages);
		st_r->rejected += stat_get(&es->es_rejected);
		st_r->tls_handshakes += stat_get(&es->es_tls_handshakes);
		st_r->tls_failures += stat_get(&es->es_tls_failures);
		st_r->recv_bytes += stat_get(&w->w_loop.lp_stats.recv_bytes);
		st_r->send_bytes += stat_get(&w->w_loop.lp_stats.send_bytes);
		server_hist_add(&st_r->accept_lat, &es->es_accept_lat);
		st_r->dkim_signed += stat_get(&es->es_dkim_signed);
		st_r->dkim_unsigned_no_key += stat_get(&es->es_dkim_unsigned_no_key);
		st_r->dkim_refused_no_key += stat_get(&es->es_dkim_refused_no_key);
		st_r->dkim_refused_unaligned += stat_get(&es->es_dkim_refused_unaligned);
		st_r->dkim_refused_error += stat_get(&es->es_dkim_refused_error);
		st_r->dmarc_unaligned += stat_get(&es->es_dmarc_unaligned);
	}
	if (srv->s_sign_pool != NULL) {
		struct work_pool_stats ps;

		work_pool_get_stats(srv->s_sign_pool, &ps);
		st_r->dkim_sign_queue = ps.queued + atomic_load(&srv->s_sign_waiting);
		st_r->dkim_sign_threads = ps.nthreads;
		st_r->dkim_sign_busy_ns = ps.busy_ns;
		st_r->dkim_sign_full = ps.full;
	}
}

unsigned server_nworkers(const struct server *srv)
{
	return srv->s_nworkers;
}

static unsigned server_metrics_nworkers(void *ctx)
{
	return server_nworkers(ctx);
}

static void server_get_worker_stats(void *ctx, unsigned i, struct metrics_worker_stats *st_r)
{
	struct server *srv = ctx;

	const struct io_loop_stats *ls = &srv->s_workers[i].w_loop.lp_stats;

	st_r->loops = stat_get(&ls->loops);
	st_r->cqes = stat_get(&ls->cqes);
	st_r->enobufs = stat_get(&ls->enobufs);
}

void server_metrics_source(struct server *srv, struct metrics_inbound *src_r)
{
	src_r->mi_ctx = srv;
	src_r->mi_stats = server_get_stats;
	src_r->mi_nworkers = server_metrics_nworkers;
	src_r->mi_worker = server_get_worker_stats;
}
