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

struct config;
struct queue;
struct server;
struct delivery;
struct metrics;

/*
 * Start serving on cfg->metrics_listen ("ip:port" or "[ip6]:port"). It
 * reads the workers through server_get_stats(), the queue through
 * queue_get_stats()/queue_depth() and delivery through delivery_get_stats()
 * and delivery_inflight() (dlv may be NULL);
 * every argument must outlive metrics_stop(). err names the problem.
 */
int metrics_start(struct metrics **m_r, const struct config *cfg, struct queue *q,
		  struct server *srv, struct delivery *dlv, char *err, size_t errlen);
void metrics_stop(struct metrics **m);

#endif
