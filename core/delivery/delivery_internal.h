/*
 * delivery_internal.h: what delivery_worker.c and smtp_client.c share on
 * a worker thread: destinations (one per next hop), their routes, and
 * the outbound SMTP sessions. Everything here belongs to one worker.
 */
#ifndef RINGMTA_DELIVERY_INTERNAL_H
#define RINGMTA_DELIVERY_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/delivery/delivery.h"
#include "core/dns/dns.h"
#include "core/wire/smtp_reply.h"
#include "io/loop.h"
#include "io/stat.h"
#include "queue/queue.h"

/* A resolved route, shared by the sessions that use it. */
struct dlv_route {
	unsigned rt_refs;
	uint16_t rt_port;
	struct dns_route rt_dns;
};

struct smtp_client;

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
	unsigned w_nclients;
	struct smtp_client *w_clients;	/* every session, for shutdown */
	bool w_quiesce;
	uint64_t w_rnd;
	/* Counters for delivery_get_stats() (single writer: this worker). */
	stat_t w_rcpt_result[4];		/* enum dlv_result: sent, deferred, failed */
	stat_t w_reply_class[6];		/* recipients by reply class 2..5 */
	stat_t w_bounces;
	stat_t w_dns_lookups, w_dns_failures;	/* copied from dns each tick */
	stat_t w_tls_handshakes, w_tls_failures;	/* outbound */
	struct stat_hist w_delivery_lat;	/* arrival -> delivered */
};

/* smtp_client.c */
struct smtp_client *smtp_client_open(struct dlv_worker *w, struct dlv_dest *d,
				     struct dlv_route *rt, unsigned candidate);
void smtp_client_start_job(struct smtp_client *c, struct dlv_job *j);
void smtp_client_quit(struct smtp_client *c);
/* Shutdown deadline: close every session now; jobs keep their state. */
void smtp_client_abort_all(struct dlv_worker *w);
struct smtp_client *smtp_client_next_idle(struct smtp_client *c);
void smtp_client_set_next_idle(struct smtp_client *c, struct smtp_client *n);

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

/* delivery_worker.c, called by sessions */
void dlv_dest_client_ready(struct dlv_worker *w, struct dlv_dest *d, struct smtp_client *c);
void dlv_dest_client_failed(struct dlv_worker *w, struct dlv_dest *d,
			    const char *ecode, const char *reason);
/* A session ended; opening: it never became ready. */
void dlv_dest_client_gone(struct dlv_worker *w, struct dlv_dest *d, struct smtp_client *c,
			  bool opening);
/* A session opened by dlv_dest_on_route is ready for the first time. */
void dlv_dest_client_opened(struct dlv_dest *d);
void dlv_route_unref(struct dlv_route *rt);
/* Record one recipient's outcome in its message. */
void dlv_rcpt_result(struct dlv_job *j, unsigned k, enum dlv_result res,
		     const char *reply, const char *ecode, const char *remote);
/* The TLS protocol and cipher the recipient's delivery used ("" = none). */
void dlv_rcpt_tls(struct dlv_job *j, unsigned k, const char *tls);

#endif
