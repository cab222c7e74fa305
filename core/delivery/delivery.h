/*
 * delivery: getting queued mail to the recipients' servers.
 *
 * The scheduler (delivery.c) decides what to try: messages the committer
 * just stored (split into jobs on the committer's thread at the end of
 * its batch, delivery_on_commit; a large batch on the scheduler thread),
 * and every second those whose next attempt has come (queue_scan_due, on
 * the scheduler thread). It keeps the set of messages in flight so none
 * is tried twice at once, and no more than delivery_inflight_max of them
 * (the rest of a backlog stays in the queue's schedule, so memory does not
 * grow with the queue), reads each message's record, and splits its
 * pending recipients by next hop (the relayhost, or the recipient's
 * domain). Each share (a dlv_job) goes to the worker that owns that next
 * hop (a hash of its name), so per-destination limits and connection
 * reuse live on one thread without locks.
 *
 * On the worker (delivery_worker.c) jobs queue per destination; outbound
 * SMTP sessions (core/outbound/smtp_client.h) take them one transaction at
 * a time and report back through the callbacks delivery gives them.
 * When the last share of a message is done, that worker turns the
 * results into one queue_update (delivered / failed / deferred with the
 * next attempt; a bounce for new failures) which the committer applies
 * durably; then the message leaves the in-flight set.
 *
 * At-least-once: state changes only after the remote server's reply, so
 * a crash mid-delivery means the message is tried again after restart.
 *
 * Delivery knows nothing of the program around it: what it takes (the
 * workers' loops, queue ids, the client TLS context) comes in a struct
 * delivery_env, and the program runs each worker's part from that
 * worker's loop (dlv_worker_on_wake/on_tick/quiesce/abort/close).
 */
#ifndef RINGMTA_DELIVERY_H
#define RINGMTA_DELIVERY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/config/config.h"
#include "core/outbound/smtp_client.h"
#include "core/shaping/shp_rules.h"
#include "core/shaping/shp_susp.h"
#include "core/shaping/shp_met.h"
#include "core/shaping/shp_top.h"
#include "io/stat.h"
#include "queue/queue.h"

struct events;
struct io_loop;
struct tls_ctx;
struct dlv_worker;

enum dlv_result {
	DLV_R_NONE = 0,		/* not tried this round */
	DLV_R_SENT,
	DLV_R_DEFERRED,
	DLV_R_FAILED,
};

struct dlv_rcpt {
	char *dr_addr;			/* owned */
	uint16_t dr_attempts;		/* before this round */
	uint8_t dr_result;		/* enum dlv_result */
	char *dr_reply;			/* owned: reply or reason */
	char dr_ecode[12];
	char dr_remote[300];		/* "host[ip]:port" that answered */
	char dr_tls[80];		/* "TLSv1.3 cipher" or "" */
	/* Set by the engine where it knows better than the reply text: */
	uint8_t dr_class;		/* enum bclass; 0: classify dr_reply */
	uint64_t dr_not_before;		/* unix us: no retry before; 0 = none */
	/* Deferred without an SMTP attempt (its site is suspended): the
	 * attempt count stays, the next try is max(dr_not_before, now)
	 * plus jitter, and only max_queue_lifetime ends it. */
	bool dr_no_attempt;
	/* The outcome was a refusal of MAIL FROM: about the sender, so never
	 * a hard (recipient) class, never a suppression entry. */
	bool dr_mail_refused;
	/* For delivery events (owned; NULL when events are off): the next
	 * hop and the source of the job that gave the outcome. */
	char *dr_site;
	char *dr_source;
	/* For the per site, provider and source metrics (owned; NULL until
	 * its job ends): "site\0provider\0source\0" (delivery_met.c). */
	char *dr_met_where;
	/* DSN (RFC 3461): NOTIFY= and ORCPT= as stored (dr_dsn.cd_orcpt
	 * owned), and whether the next hop that took the recipient was
	 * handed them (it offered DSN): then it, not we, reports success. */
	struct smtp_client_dsn dr_dsn;
	bool dr_dsn_passed;
};

/* One message in this round; shared by its jobs' workers. */
struct dlv_msg {
	uint64_t dm_id;
	struct delivery *dm_dlv;
	char *dm_sender;		/* owned; "" = null sender */
	uint64_t dm_arrival;		/* unix us */
	uint64_t dm_size;
	uint32_t dm_flags;		/* QRECORD_F_* */
	char *dm_pool;			/* owned: source pool; "" = default */
	uint64_t dm_strip_off;		/* header left out when sending */
	uint32_t dm_strip_len;
	uint8_t dm_dsn_ret;		/* RET= (QRECORD_RET_*), 0 = none */
	char *dm_envid;			/* owned: ENVID= xtext, or NULL */
	uint32_t dm_nrcpt;
	struct dlv_rcpt *dm_rcpts;	/* all, in record order */
	atomic_uint dm_parts_left;
	uint64_t dm_start_us;
	/* Result of this round, built by the last worker. */
	struct queue_update dm_update;
	struct queue_rcpt_update *dm_updates;
	struct queue_msg *dm_bounce;
	struct queue_event *dm_events;	/* this round's, until submitted */
	/* The scheduler's lists, linked here (no allocation, so nothing is
	 * lost for want of memory): ended rounds (delivery_msg_done*: the
	 * rest is freed, the struct waits until the id leaves the set in
	 * flight), and results whose update could not be stored yet
	 * (delivery_update_later: all kept, the update submitted again). */
	struct dlv_msg *dm_done_next;
	unsigned dm_update_tries;	/* failed submissions of dm_update */
};

/* One next hop's share of a message. */
struct dlv_job {
	struct dlv_job *dj_next;
	struct dlv_msg *dj_msg;
	char *dj_nexthop;		/* owned: domain or relayhost */
	uint32_t *dj_rcpts;		/* indexes into dm_rcpts */
	const char **dj_addrs;		/* owned array: their addresses */
	struct smtp_client_dsn *dj_dsn;	/* owned array: their DSN parameters */
	unsigned dj_nrcpt;
	struct smtp_client_txn dj_txn;	/* what a session sends (dj_addrs) */
	/* Shaping: the source picked from the message's pool (owned; NULL
	 * before the pick) and the provider it was picked for (owned). */
	char *dj_source;
	char *dj_provider;
	bool dj_picked;			/* holds a place under the warm-up cap */
};

struct delivery;

/*
 * A plain copy of delivery's counters, summed over the workers: what the
 * metrics endpoint reads. Any thread; each value was true at some recent
 * moment (io/stat.h).
 */
struct delivery_hist {
	uint64_t dh_buckets[STAT_HIST_NBUCKETS];	/* not cumulative */
	uint64_t dh_count, dh_sum_ns;
};

struct delivery_stats {
	uint64_t rcpt_result[4];		/* enum dlv_result */
	uint64_t reply_class[6];		/* recipients by reply class 2..5 */
	uint64_t bounces;
	uint64_t dns_lookups, dns_failures;
	uint64_t tls_handshakes, tls_failures;	/* outbound */
	uint64_t tls_resumed;			/* of tls_handshakes */
	uint64_t tls_sessions_cached;		/* a gauge, all workers */
	uint64_t round_trips, transactions;	/* outbound SMTP (smtp_client_env) */
	struct delivery_hist delivery_lat;	/* arrival -> delivered */
};

/* What delivery takes from the program; copied by delivery_init(). */
struct shp_holder;

struct delivery_env {
	const struct config *de_cfg;
	struct queue *de_queue;
	unsigned de_nworkers;
	/* Worker i's loop; delivery_init() sets up a dlv_worker on each. */
	struct io_loop *(*de_loop)(void *arg, unsigned i);
	/* On worker i's thread: a new queue id (for bounces). */
	uint64_t (*de_next_id)(void *arg, unsigned i);
	/* Any worker: a new reference to the client TLS context, or NULL. */
	struct tls_ctx *(*de_tls_client)(void *arg);
	void *de_arg;
	struct shp_holder *de_rules;	/* the shaping rules (shp_holder.h); outlives delivery */
	struct events *de_events;	/* delivery events; NULL: off */
	/* Outbound AUTH credentials (core/outbound/smtp_creds.h); NULL: none.
	 * Outlives delivery. */
	struct smtp_creds_holder *de_creds;
};

/* Set up the per-worker parts (before the workers' threads run). */
int delivery_init(struct delivery **d_r, const struct delivery_env *env, char *err,
		  size_t errlen);
/* Worker i's part, for the program to run from that worker's loop. */
struct dlv_worker *delivery_worker(struct delivery *d, unsigned i);
/* Any thread (a reload): the scheduler routes with cfg from its next
 * message on; cfg must stay valid as long as d (a reload keeps every
 * generation). The workers get theirs with dlv_worker_set_config(). */
void delivery_set_config(struct delivery *d, const struct config *cfg);
/* Any thread: the settings delivery routes with now. */
const struct config *delivery_config(struct delivery *d);
/* Start the scheduler thread; ties itself to the queue's listener. */
int delivery_start(struct delivery *d, char *err, size_t errlen);
/* Stop dispatching and join the scheduler (workers finish what they hold). */
void delivery_stop(struct delivery **d);
/* Free it, once the committer has drained (after queue_close) and the
 * workers' loops are gone (each dlv_worker_close()d). */
void delivery_free(struct delivery **d);
/* Count of messages in flight (for shutdown and tests). */
unsigned delivery_inflight(struct delivery *d);
/*
 * For the admin API's changes to queued messages (any thread): between
 * lock and unlock nothing is dispatched or retired, so a message that
 * delivery_admin_inflight() says is not in flight stays out of delivery
 * until unlock; a change committed before unlock (the caller waits for
 * the committer) is what the next dispatch reads. Hold it briefly.
 */
void delivery_admin_lock(struct delivery *d);
bool delivery_admin_inflight(struct delivery *d, uint64_t id);
void delivery_admin_unlock(struct delivery *d);
/* The counters now; all zero when d is NULL (delivery = no). */
void delivery_get_stats(struct delivery *d, struct delivery_stats *st_r);

/* Traffic shaping's counters (delivery_shaping.c), for the metrics
 * endpoint; any thread. */
struct delivery_shp_stats {
	uint64_t no_attempt;		/* recipients deferred without an attempt */
	uint64_t firings;		/* rule actions applied */
	uint64_t learned;		/* per-connection limits learned */
	uint64_t health;		/* health suspensions of sites */
};
void delivery_shaping_stats(struct delivery *d, struct delivery_shp_stats *st_r);
/* fn once per labelled sample: metric "rule_firings" (label: rule),
 * "provider_connections" (label: provider), "worker_sessions" (label:
 * the worker's number; outbound sessions it opened) or "active" (label: action,
 * "suspend", "health", "learned_max_messages" ...); and once "suspended"
 * (label "": paths that take no attempt now). */
void delivery_shaping_foreach(struct delivery *d,
			      void (*fn)(void *arg, const char *metric, const char *label,
					 uint64_t v),
			      void *arg);

/* The sources' state (shp_src_foreach, core/shaping/shp_source.h): fn
 * per source and provider, under the sources' lock (fn must not call
 * back). */
void delivery_sources_foreach(struct delivery *d,
			      void (*fn)(void *arg, const char *source, const char *provider,
					 uint64_t sent_this_period, int out_of_service),
			      void *arg);

/* The operator's suspensions (delivery_admin.c, core/shaping/shp_susp.h);
 * any thread but the committer's. Each change is saved in the queue
 * database before it returns (it holds across a restart).
 * suspend: mail of selector (kind, name) waits without an attempt for
 * duration_us; who NULL = "admin", reason may be NULL. 0, -EINVAL (a bad
 * name or duration), -ENOSPC (too many), or the save's -errno (then
 * the selector is not suspended). */
int delivery_suspend(struct delivery *d, enum shp_susp_kind kind, const char *name,
		     uint64_t duration_us, const char *who, const char *reason);
/* Lift it; what waited for it is due now (*flushed_r messages, may be
 * NULL). 0, -ENOENT when not suspended, or the save's -errno. */
int delivery_resume(struct delivery *d, enum shp_susp_kind kind, const char *name,
		    unsigned *flushed_r);
/* fn per suspension in force (shp_susp_foreach); returns how many. */
unsigned delivery_suspensions_foreach(struct delivery *d,
				      void (*fn)(void *arg, const struct shp_susp_item *it),
				      void *arg);

/* The shaping state in force, for the admin API (delivery_admin.c): fn
 * once per fact, under the state's lock (fn must not call back into
 * delivery). The automation's actions, health and learned limits per
 * path (di_selector "site", di_kind as shp_state_foreach says, di_who the
 * rule), then the operator's suspensions (di_kind "admin_suspend",
 * di_selector its kind, di_who who set it, di_reason, di_set_us). */
struct delivery_shp_item {
	const char *di_selector;
	const char *di_name;		/* the site, or the suspended name */
	const char *di_source;		/* "" = the whole site */
	const char *di_kind;
	const char *di_who;		/* "" = none (health, learned) */
	const char *di_reason;		/* "" = none */
	const char *di_text;		/* a rate as text, the ramp's phase... */
	uint64_t di_set_us;		/* 0 = not known */
	uint64_t di_until_us;		/* 0 = no end */
	uint64_t di_value;
};
void delivery_shaping_state(struct delivery *d,
			    void (*fn)(void *arg, const struct delivery_shp_item *it), void *arg);

/* The live per-site view (`ringmta top`): up to max sites, the busiest
 * first (core/shaping/shp_top.h), each with whether it takes no attempt
 * now (the operator's suspension, an automation's or health's) and why.
 * Returns how many were filled; *total_r how many sites are followed. */
struct delivery_top_site {
	struct shp_top_site dt_site;
	bool dt_suspended;
	uint64_t dt_until_us;
	char dt_why[240];
};
unsigned delivery_top(struct delivery *d, struct delivery_top_site *out, unsigned max,
		      unsigned *total_r);
/* The per site, provider and source series (delivery_met.c;
 * core/shaping/shp_met.h says which names are shown): dim's series into
 * out (room for max; delivery_met_max_series() is enough), "other" last.
 * dm_suspended: 1 while the site (the operator's suspension, an
 * automation's or health's) or the source (the operator's) takes no
 * attempt, else 0; -1 where there is no such state: providers and
 * "other". Any thread; 0 series when d is NULL. */
struct delivery_met_series {
	struct shp_met_series dm_s;
	int dm_suspended;
};
unsigned delivery_met_max_series(struct delivery *d);
unsigned delivery_met_series(struct delivery *d, enum shp_met_dim dim,
			     struct delivery_met_series *out, unsigned max);

/* The configured limits of site (provider by name, may be NULL or "")
 * from the rules in force and ringmta.conf's defaults: 0, or -ENOENT
 * without rules. */
int delivery_site_limits(struct delivery *d, const char *site, const char *provider,
			 struct shp_limits *out);

/*
 * A DSN as a message to queue (delivery_result.c; the admin API's bounce
 * uses it too): dm filled but for the message id and the original header
 * (read here from message orig_id; the whole message too when ret_full:
 * RET=FULL, RFC 3461); the DSN goes from the null sender to
 * dm->dm_to (which must live until the commit) under queue id new_id.
 * NULL when memory runs out. Free with delivery_dsn_msg_free().
 */
struct dsn_msg;
struct queue_msg *delivery_dsn_msg(const struct config *cfg, struct queue *q, uint64_t orig_id,
				   struct dsn_msg *dm, uint64_t new_id, uint64_t now,
				   bool ret_full);
void delivery_dsn_msg_free(struct queue_msg **m);

/* Committer thread, from dm_update's qu_done: the update was not stored
 * for a passing reason (no memory, no room, a checkpoint that waits):
 * the message stays in flight, so no scan hands it out again (recipients
 * it reached would get it twice), and the scheduler submits the same
 * update again within a second, and once more when delivery stops. */
void delivery_update_later(struct dlv_msg *m);
/* After the last try at stop: logs an update never stored and frees
 * what it holds (its events, suppressions and bounce), not m. */
void dres_update_abandon(struct dlv_msg *m);

/* Scheduler side, called by workers: a message's round is over. Its
 * contents are freed now; m itself by the scheduler once it retired the
 * id (the caller must not touch m again). */
void delivery_msg_done(struct dlv_msg *m);
/* The same on the committer thread from a qu_done: no wake; the commit
 * listener that runs after it retires the batch's results. */
void delivery_msg_done_batched(struct dlv_msg *m);
/* Worker side: a job is finished (results filled in). */
void delivery_job_done(struct dlv_worker *w, struct dlv_job *j);

/* Per-worker part (delivery_worker.c). */
int dlv_worker_init(struct dlv_worker **w_r, const struct delivery_env *env, unsigned index,
		    char *err, size_t errlen);
/* Frees what dlv_worker_close() left (the counters), or everything. */
void dlv_worker_destroy(struct dlv_worker **w);
/* Any thread: hand a job to this worker. */
void dlv_worker_push(struct dlv_worker *w, struct dlv_job *j);
/* On the worker thread: from the loop's wake and tick. */
void dlv_worker_on_wake(struct dlv_worker *w);
void dlv_worker_on_tick(struct dlv_worker *w, uint64_t now);
/* On the worker thread, between its callbacks: read the settings from
 * cfg from now on (a reload). Sessions in flight read them too; cfg must
 * stay valid as long as the worker (a reload keeps every generation). */
void dlv_worker_set_config(struct dlv_worker *w, const struct config *cfg);
/* Shutdown: close idle connections, take no new jobs. True when idle. */
bool dlv_worker_quiesce(struct dlv_worker *w);
/* Shutdown deadline passed: drop every session now; jobs keep their state. */
void dlv_worker_abort(struct dlv_worker *w);
/* After the worker's loop stopped for good, before it is destroyed: free
 * the destinations and the resolver. Its counters stay readable. */
void dlv_worker_close(struct dlv_worker *w);

/* Free a job and its strings. */
void dlv_job_free(struct dlv_job *j);

#endif
