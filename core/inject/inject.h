/*
 * inject: HTTP injection, POST /api/v1/inject (README "HTTP injection").
 * Its own listener (http_listen), served by libmicrohttpd with a thread
 * per connection (at most http_max_connections): a request's thread
 * waits, on a condition variable, for its password check (the auth
 * pool), its signatures (the signing pool) and its group commit (the
 * queue), as an SMTP session waits on its worker; many connections give
 * the committer the same batches many SMTP sessions give it.
 *
 * A message is accepted as SMTP accepts one: the same address syntax
 * (core/wire/smtp_cmd), size and line checks (core/wire/smtp_data), relay
 * rule (relay_networks or an authenticated user), suppression list,
 * source pool and pool header, hop count, DKIM signing, and a 202 only
 * once the queue's commit is on stable storage.
 *
 * Ownership: the caller keeps everything in struct inject_env alive
 * until inject_stop() returns (stop it before the server and the queue).
 */
#ifndef RINGMTA_INJECT_H
#define RINGMTA_INJECT_H

#include <stdint.h>

#include "core/config/config.h"

struct auth_db;
struct dkim_table;
struct events;
struct queue;
struct shp_holder;
struct work_pool;
struct inject;

struct inject_env {
	const struct config *ie_cfg;
	struct queue *ie_queue;
	const struct auth_db *ie_auth;		/* NULL: no accounts */
	struct work_pool *ie_auth_pool;		/* password checks; NULL without */
	struct work_pool *ie_sign_pool;		/* NULL: no signing */
	/* A new reference to the key table current now, or NULL; any thread. */
	struct dkim_table *(*ie_sign_table)(void *ctx);
	void *ie_ctx;
	struct shp_holder *ie_rules;		/* pools; may be NULL */
	struct events *ie_events;		/* reception and suppression
						 * events; NULL: none */
	/* Optional (a reload): the settings, accounts and password-check
	 * pool in force now, from any thread; what it gives stays valid as
	 * long as inject runs. NULL: ie_cfg, ie_auth and ie_auth_pool. */
	void (*ie_settings)(void *ctx, const struct config **cfg_r,
			    const struct auth_db **auth_r, struct work_pool **pool_r);
};

/* Requests by outcome, messages and recipients queued: any thread. */
struct inject_stats {
	uint64_t requests;		/* answered, every outcome */
	uint64_t messages, recipients;	/* queued */
	uint64_t rejected_rcpts;	/* recipients refused (suppressed) */
	/* requests refused, by reason */
	uint64_t r_auth, r_bad_request, r_too_big, r_policy, r_unavailable;
};

/* Start serving cfg->http_listen. 0, or -1 with err. */
int inject_start(struct inject **inj_r, const struct inject_env *env, char *err, size_t errlen);
/* Close the listener; requests in flight finish first. */
void inject_stop(struct inject **inj);
void inject_get_stats(const struct inject *inj, struct inject_stats *st_r);

#endif
