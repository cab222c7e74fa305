/*
 * metrics: the operator's HTTP endpoint. GET /metrics answers in the
 * Prometheus text exposition format (version 0.0.4); GET /healthz answers
 * "ok" while the process runs. Served by libmicrohttpd (Debian
 * libmicrohttpd12) on its own thread, off the mail path: it reads
 * counters that workers publish with relaxed atomics (io/stat.h) and the
 * queue's depth with an LMDB read transaction per scrape.
 */
#ifndef RINGMTA_METRICS_H
#define RINGMTA_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/config/config.h"
#include "io/stat.h"

struct queue;
struct delivery;
struct metrics;
struct inject;

/*
 * The inbound side's counters as the endpoint reads them: a plain copy,
 * summed over the workers (per worker for the loop counters). Each value
 * was true at some recent moment (io/stat.h).
 */
struct metrics_hist {
	uint64_t sh_buckets[STAT_HIST_NBUCKETS];	/* not cumulative */
	uint64_t sh_count, sh_sum_ns;
};

struct metrics_worker_stats {
	uint64_t loops, cqes, enobufs;
};

struct metrics_inbound_stats {
	uint64_t accepted[CONFIG_LISTEN_MAX];	/* per listener */
	uint64_t open[CONFIG_LISTEN_MAX];
	uint64_t refused, messages, rejected;
	uint64_t tls_handshakes, tls_failures;
	uint64_t recv_bytes, send_bytes;		/* in and out bound */
	struct metrics_hist accept_lat;
	/* DKIM signing at acceptance and DMARC alignment */
	uint64_t dkim_signed, dkim_unsigned_no_key;
	uint64_t dkim_refused_no_key, dkim_refused_unaligned, dkim_refused_error;
	uint64_t dmarc_unaligned;
	unsigned dkim_sign_queue;	/* jobs waiting: the pool's and the workers' */
	unsigned dkim_sign_threads;	/* 0: signing off */
	uint64_t dkim_sign_busy_ns;	/* the signing threads' time in jobs */
	uint64_t dkim_sign_full;	/* submits the full queue refused (jobs then wait) */
};

/* Where those come from (the workers: server_metrics_source()); called
 * on the endpoint's thread, so each must be safe from any thread. */
struct metrics_inbound {
	void *mi_ctx;
	void (*mi_stats)(void *ctx, struct metrics_inbound_stats *st_r);
	unsigned (*mi_nworkers)(void *ctx);
	void (*mi_worker)(void *ctx, unsigned i, struct metrics_worker_stats *st_r);
	const struct inject *mi_inject;	/* HTTP injection (inject_get_stats); NULL: off */
	/* For ringmta_build_info (static storage; NULL: "unknown"): the
	 * program's version and BoringSSL's API version, as text. */
	const char *mi_version;
	const char *mi_boringssl;
};

/*
 * Start serving on cfg->metrics_listen ("ip:port" or "[ip6]:port"). It
 * reads the workers through src (copied), the queue through
 * queue_get_stats()/queue_depth() and delivery through delivery_get_stats()
 * and delivery_inflight() (dlv may be NULL);
 * every argument must outlive metrics_stop(). err names the problem.
 */
int metrics_start(struct metrics **m_r, const struct config *cfg, struct queue *q,
		  const struct metrics_inbound *src, struct delivery *dlv, char *err,
		  size_t errlen);
void metrics_stop(struct metrics **m);
/* Show the event store and sinks (NULL: none); ev outlives metrics_stop(). */
struct events;
void metrics_set_events(struct metrics *m, struct events *ev);

#endif
