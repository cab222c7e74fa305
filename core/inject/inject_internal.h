/*
 * inject_internal.h: what the HTTP side (inject_http.c) and the
 * acceptance (inject_accept.c) share. A request lives on its
 * connection's thread from the first call of the handler to the
 * completion callback.
 */
#ifndef RINGMTA_INJECT_INTERNAL_H
#define RINGMTA_INJECT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "core/base/workpool.h"
#include "core/inject/inject.h"
#include "core/inject/inject_req.h"
#include "queue/queue.h"

struct MHD_Daemon;

struct inject {
	struct inject_env i_env;	/* ie_cfg, ie_auth, ie_auth_pool: through
					 * inject_settings() */
	struct MHD_Daemon *i_daemon;
	char i_listener[80];		/* "addr:port", for DKIM and pools */
	uint64_t i_max_body;		/* request bodies */
	pthread_mutex_t i_id_lock;	/* queue ids */
	uint64_t i_last_us;
	_Atomic uint64_t i_requests, i_messages, i_recipients, i_rejected_rcpts;
	_Atomic uint64_t i_r_auth, i_r_bad, i_r_big, i_r_policy, i_r_unavail;
};

/* One thread waiting for jobs and messages to come back: the sinks'
 * notify wakes it (no polling). */
struct inject_wait {
	pthread_mutex_t w_lock;
	pthread_cond_t w_cond;
	bool w_ready;
	struct work_sink w_jobs;
	struct queue_sink w_msgs;
};

void inject_wait_init(struct inject_wait *w);
void inject_wait_destroy(struct inject_wait *w);
/* Sleep until a sink was notified since the last call. */
void inject_wait_sleep(struct inject_wait *w);

/* An answer: HTTP status, JSON body (owned, malloc'ed), Retry-After. */
struct inject_answer {
	unsigned a_status;
	char *a_json;
	bool a_retry;
};

/* The authenticated identity of a request: user (NULL for a relay
 * client), its client address text. */
struct inject_who {
	const char *w_user;
	const char *w_addr;
};

/* Accept the request body (len bytes of JSON) from who: queue its mail
 * and answer (inject_accept.c). Blocks this thread until the commit. */
void inject_accept(struct inject *inj, const struct inject_who *who, const char *body,
		   size_t len, struct inject_answer *ans_r);

/* An error answer {"error": msg}. */
void inject_answer_error(struct inject_answer *a, unsigned status, const char *msg);

/* The settings, accounts and password-check pool in force now
 * (inject_http.c): a request reads them once, at its start. */
void inject_settings(const struct inject *inj, const struct config **cfg_r,
		     const struct auth_db **auth_r, struct work_pool **pool_r);

#endif
