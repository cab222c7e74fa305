/*
 * admin_queue: the running queue through the admin API:
 *   GET  /api/v1/queue/summary?by=domain|site|source|sender_domain&top=N
 *   GET  /api/v1/queue/messages?<filter>&limit=&cursor=
 *   GET  /api/v1/queue/messages/<id>[?body=1]
 *   POST /api/v1/queue/hold|release|delete|bounce|flush
 * Reads are LMDB read transactions; changes go through the committer (one
 * group-committed write transaction) while delivery dispatches nothing
 * (delivery_admin_lock), so they never race a delivery round: a message
 * in flight is held at once but is not deleted or bounced (it is named
 * under "in_flight" and the request answers 409 when nothing else was
 * done).
 */
#ifndef RINGMTA_ADMIN_QUEUE_H
#define RINGMTA_ADMIN_QUEUE_H

#include <pthread.h>
#include <stdint.h>

#include "core/admin/admin.h"
#include "core/admin/admin_filter.h"

struct queue;
struct delivery;

#define ADMIN_QUEUE_OPS 5	/* hold, release, delete, bounce, flush */

struct admin_queue_route {
	struct admin_queue *aqr_aq;
	unsigned aqr_op;
};

struct events;

struct admin_queue {
	struct queue *aq_queue;
	struct delivery *aq_dlv;	/* NULL: delivery = no */
	struct events *aq_events;	/* NULL: no event sinks */
	const struct config *aq_cfg;
	pthread_mutex_t aq_id_lock;	/* guards aq_last_us */
	uint64_t aq_last_us;		/* for the ids of bounces */
	struct admin_queue_route aq_routes[ADMIN_QUEUE_OPS];	/* (admin_queue_ops.c) */
};

/* Register the routes; aq (filled by the caller, aq_id_lock initialised
 * here) must outlive the admin listener. */
int admin_queue_register(struct admin *a, struct admin_queue *aq);

/* (admin_queue.c, for admin_queue_ops.c) */
uint64_t admin_queue_now_us(void);
bool admin_queue_inflight(struct admin_queue *aq, uint64_t id);
/* "2026-12-05T13:04:05Z" (with ".123456" when us has a fraction). */
void admin_queue_time(uint64_t us, char *buf, size_t len);
/* Fill f from a request's query arguments (every argument must be a
 * filter name or one of extra[], a NULL-terminated list); 0, or -1 with
 * rep set to a 400. */
int admin_queue_filter_args(const struct admin_req *req, struct admin_filter *f,
			    const char *const *extra, struct admin_reply *rep);
int admin_queue_ops_register(struct admin *a, struct admin_queue *aq);

#endif
