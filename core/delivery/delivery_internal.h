/*
 * delivery_internal.h: what delivery's files share: the worker's part
 * (destinations, one per next hop, with their outbound sessions) and the
 * route checks. Everything in a dlv_worker belongs to one worker.
 */
#ifndef RINGMTA_DELIVERY_INTERNAL_H
#define RINGMTA_DELIVERY_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/delivery/delivery.h"
#include "core/dns/dns.h"
#include "io/loop.h"
#include "io/stat.h"
#include "queue/queue.h"

struct dlv_dest {
	struct dlv_dest *dd_hnext;	/* hash chain */
	struct dlv_worker *dd_w;	/* owner */
	char *dd_name;			/* next hop as given: domain or relayhost */
	char *dd_host;			/* what to resolve: domain, host or [ip] */
	uint16_t dd_port;
	struct dlv_job *dd_head, *dd_tail;	/* waiting jobs */
	unsigned dd_queued;
	unsigned dd_nconns;		/* sessions open or opening */
	unsigned dd_nopening;		/* of those, not ready yet: each will
					 * take a waiting job when it is */
	struct smtp_client *dd_idle;	/* sessions waiting for a job */
	bool dd_resolving;
	uint32_t dd_tokens;		/* rate limit: sends left this second */
	uint64_t dd_last_active;	/* monotonic seconds */
};

struct dlv_worker {
	const struct delivery_env *w_env;	/* the program's; see delivery.h */
	unsigned w_index;			/* the worker's number */
	struct io_loop *w_loop;
	const struct config *w_cfg;
	struct queue *w_queue;
	pthread_mutex_t w_lock;		/* guards the inbox */
	struct dlv_job *w_in_head, *w_in_tail;
	struct dns *w_dns;
	struct dlv_dest **w_dests;	/* hash buckets */
	unsigned w_nbuckets;
	struct smtp_client_env w_cl;	/* the outbound sessions */
	bool w_quiesce;
	uint64_t w_rnd;
	/* Counters for delivery_get_stats() (single writer: this worker). */
	stat_t w_rcpt_result[4];		/* enum dlv_result: sent, deferred, failed */
	stat_t w_reply_class[6];		/* recipients by reply class 2..5 */
	stat_t w_bounces;
	stat_t w_dns_lookups, w_dns_failures;	/* copied from dns each tick */
	struct stat_hist w_delivery_lat;	/* arrival -> delivered */
};

/* delivery_route.c: the addresses of a route delivery may use. */
enum {
	DLV_ROUTE_OK = 0,
	DLV_ROUTE_LOOP,		/* only ourselves (or worse MX hosts) left: 5.4.6 */
	DLV_ROUTE_PRIVATE,	/* only private addresses, not allowed: 5.4.4 */
	DLV_ROUTE_EMPTY,	/* nothing to try at all */
};
/* Loopback, RFC 1918, CGNAT, link-local, ULA, unspecified, multicast. */
bool dlv_addr_private(const struct sockaddr_storage *a);
/* Whether a:port reaches one of cfg's listeners; ifs are the machine's
 * interface addresses (for wildcard listeners). */
bool dlv_addr_self(const struct config *cfg, const struct sockaddr_storage *a, uint16_t port,
		   const struct sockaddr_storage *ifs, unsigned nifs);
/* Drop from r (in place) what must not be used: ourselves and MX hosts
 * not better than us, and private addresses unless trusted (relayhost)
 * or allowed by smtp_allow_private_destinations. Returns DLV_ROUTE_OK
 * with at least one address left, else why nothing is left. */
int dlv_route_filter(const struct config *cfg, bool trusted, uint16_t port,
		     struct dns_route *r, const struct sockaddr_storage *ifs, unsigned nifs);

#endif
