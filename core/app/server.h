/*
 * server: the inbound SMTP service. It owns the worker threads (one
 * io_loop each), their listening sockets, the connection caps and the
 * orderly shutdown. Sessions (smtp_server.h) live on one worker for
 * their whole life and reach it only through the worker's session
 * environment (w_env, smtp_env.h), which server.c fills and implements.
 * Other work on the workers' loops (delivery) attaches as a service
 * (struct server_service_ops) between server_init() and server_run();
 * the server knows nothing else of it.
 */
#ifndef RINGMTA_SERVER_H
#define RINGMTA_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "core/config/config.h"
#include "core/inbound/smtp_env.h"
#include "core/sasl/auth_pool.h"
#include "io/loop.h"
#include "io/stat.h"
#include "queue/queue.h"

struct dkim_table;
struct shp_holder;
struct shp_rules;
struct metrics_inbound;
struct tls_ctx;
struct auth_db;

#define SERVER_IPTAB_SIZE 65536u	/* per-client-address counters */
#define SERVER_WORKERS_MAX 254u		/* queue ids' low octets 0xfe, 0xff are taken */

/*
 * A service on a worker's loop beside the sessions (delivery). Every
 * call comes on that worker's thread, with the ctx given to
 * server_attach(). on_wake runs after each io_loop_wake() (the sessions'
 * sinks first), on_tick once a second. Stopping: quiesce is called when
 * the worker begins to stop and again until it returns true (nothing
 * left open: the loop stops only then); abort once the shutdown deadline
 * has passed (drop what is still open, then quiesce is asked again).
 * destroy comes from server_destroy(), after the thread has ended and
 * before the loop goes; the ctx stays the caller's to free. on_config,
 * when set, comes on the worker's thread before any other call that
 * should see the new settings.
 */
struct server_service_ops {
	/* optional: the worker adopted new settings (a reload); cfg stays
	 * valid until server_destroy() */
	void (*on_config)(void *ctx, const struct config *cfg);
	void (*on_wake)(void *ctx);
	void (*on_tick)(void *ctx, uint64_t now);
	bool (*quiesce)(void *ctx);
	void (*abort)(void *ctx);
	void (*destroy)(void *ctx);
};

#define SERVER_SERVICES_MAX 2u

struct server_service {
	const struct server_service_ops *sv_ops;
	void *sv_ctx;
};

/*
 * A generation of the settings: a configuration and the AUTH accounts
 * that go with it. A reload publishes a new one (server_gen_publish());
 * each worker adopts the newest on its own thread at its next accept,
 * wake or tick (its sessions' env and its services then read it), so no
 * lock is taken on the per-message path and no setting is read torn.
 * A session in flight reads the worker's current generation from then
 * on. Retired generations are kept until server_destroy(), because a
 * session or job may still point into them; at most SERVER_GENS_MAX.
 */
#define SERVER_GENS_MAX 1024u
struct server_gen {
	const struct config *g_cfg;
	const struct auth_db *g_auth;	/* NULL: no AUTH */
	unsigned g_seq;			/* 0: the start-up one */
	struct server_gen *g_prev;	/* the one it replaced */
	struct config *g_own_cfg;	/* freed by server_destroy(); NULL at start */
	struct auth_db *g_own_auth;	/* likewise */
};

struct smtp_worker {
	struct io_loop w_loop;
	const struct server_gen *w_gen;	/* the settings this worker uses */
	atomic_uint w_gen_seen;		/* its g_seq, for server_gen_wait() */
	struct smtp_env w_env;		/* the sessions' view of this worker */
	struct queue_sink w_sink;
	struct work_sink w_jobs;	/* jobs back from the pools (workpool.h) */
	struct server *w_srv;
	unsigned w_id;
	pthread_t w_thread;
	bool w_thread_started;
	uint64_t w_last_us;		/* for queue ids */
	struct server_service w_services[SERVER_SERVICES_MAX];	/* delivery, when on */
	unsigned w_nservices;
	time_t w_date_sec;		/* cached RFC 5322 date */
	char w_date[40];
	/* Counters for the metrics endpoint (single writer: this worker);
	 * the sessions' own are in w_env.e_stats. */
	stat_t w_accepted[CONFIG_LISTEN_MAX];	/* per listener */
	stat_t w_refused;			/* connections over a cap */
	/* Signing jobs the pool refused (queue full), in order, linked by
	 * wj_next: submitted again when a signing job comes back. Each is
	 * one session's message, and that session reads no input meanwhile,
	 * so the list is bounded by the sessions. */
	struct work_job *w_sign_wait, *w_sign_wait_tail;
};

struct server {
	const struct config *s_cfg;	/* the start-up settings; workers read
					 * their generation's (w_gen) */
	_Atomic(struct server_gen *) s_gen;	/* the newest generation */
	unsigned s_ngens;		/* published after the first; reloads only */
	struct queue *s_queue;
	struct smtp_worker *s_workers;
	unsigned s_nworkers;
	atomic_bool s_stopping;
	atomic_uint s_conns;
	uint64_t s_stop_deadline;	/* monotonic seconds */
	/* Per-address counts, indexed by a hash of the address. A hash
	 * collision makes the cap stricter for both addresses, never looser. */
	atomic_ushort *s_iptab;
	/* TLS contexts; swapped under s_tls_lock on reload (SIGHUP). */
	pthread_mutex_t s_tls_lock;
	struct tls_ctx *s_tls_server;	/* NULL: no TLS offered */
	struct tls_ctx *s_tls_client;	/* outbound STARTTLS */
	struct auth_db *s_auth;		/* the start-up accounts; may be NULL;
					 * the caller's to free */
	struct work_pool *s_auth_pool;	/* password checks; NULL until some
					 * generation has accounts */
	/* SPF checks of inbound mail (spf_inbound); both NULL when off. */
	struct spf *s_spf;
	struct work_pool *s_spf_pool;
	/* DKIM: the key table (swapped under s_dkim_lock on reload; jobs
	 * hold their own references) and the signing pool. The caller sets
	 * s_dkim_table before server_init(), which then starts the pool. */
	pthread_mutex_t s_dkim_lock;
	struct dkim_table *s_dkim_table;	/* NULL: no signing */
	struct work_pool *s_sign_pool;
	atomic_uint s_sign_waiting;	/* jobs in the workers' w_sign_wait */
	/* The shaping rules (core/shaping/shp_holder.h): loaded by
	 * server_init() (a rules error refuses to start), swapped by
	 * server_rules_reload() on SIGHUP. Delivery and the sessions read
	 * them through the holder. */
	struct shp_holder *s_rules;
	/* Delivery events (core/events): set before server_init(); NULL: off. */
	struct events *s_events;
	/* Outbound AUTH credentials (core/outbound/smtp_creds.h), the
	 * program's; delivery reads them, a reload swaps them. */
	struct smtp_creds_holder *s_smtp_creds;
	/* Failed AUTH per client address: count and window start (seconds). */
	atomic_uint *s_authfail;
	atomic_uint *s_authfail_since;
};

/* A new reference to the current server/client TLS context, or NULL. */
struct tls_ctx *server_tls_server(struct server *srv);
struct tls_ctx *server_tls_client(struct server *srv);
/* Replace the TLS contexts (reload); takes ownership of the new ones. */
void server_tls_swap(struct server *srv, struct tls_ctx *server_ctx, struct tls_ctx *client_ctx);

/* Replace the DKIM key table (reload); takes the caller's reference.
 * Only when one was loaded at start (the pool runs). */
void server_dkim_swap(struct server *srv, struct dkim_table *t);
/* A new reference to the current key table, or NULL (no signing); any
 * thread (HTTP injection signs with it too). */
struct dkim_table *server_dkim_table(struct server *srv);

/* The shaping rules ringmta.conf names (shaping_builtin_rules, then the
 * files of shaping_rules in order). On error returns -1 with every
 * problem in err, one "file:line: message" per line. */
int server_rules_load(const struct config *cfg, struct shp_rules **r_r, char *err, size_t errlen);
/* SIGHUP: load the rules cfg names again; on success swap them in and log a
 * summary, else log every error and keep the old ones. Counters and
 * sessions are untouched (the engine keys its state by names). 0 with
 * the summary in msg, or -1 with every error in it. */
int server_rules_reload(struct server *srv, const struct config *cfg, char *msg, size_t msglen);

/* A reload (one at a time): make cfg and the accounts the settings every
 * worker adopts next, and wake them. The accounts are adb (NULL: no
 * AUTH) or, with keep_auth, the newest generation's (adb unused). The
 * server owns cfg and adb from then on. Starts the password-check pool
 * when the accounts are the first since start. 0 with the new
 * generation's sequence number in *seq_r, or -1 with err (too many
 * generations, out of memory): nothing changed, cfg and adb stay the
 * caller's. */
int server_gen_publish(struct server *srv, struct config *cfg, struct auth_db *adb,
		       bool keep_auth, unsigned *seq_r, char *err, size_t errlen);
/* (server_gen.c, for server_init) The password-check pool, started
 * when a generation first has accounts: 0, or -1 with err. */
int server_auth_pool_start(struct server *srv, char *err, size_t errlen);
/* The newest generation's settings (any thread: the admin API, the
 * reloader); valid until server_destroy(). */
const struct config *server_config(struct server *srv);
const struct auth_db *server_auth(struct server *srv);
/* Wait until every running worker has adopted generation seq or a later
 * one, at most timeout_ms. True when they all have. */
bool server_gen_wait(struct server *srv, unsigned seq, unsigned timeout_ms);

/* Set up the workers' loops, bind listeners, start the password-check
 * pool; no worker thread runs yet. err names what failed. */
int server_init(struct server *srv, const struct config *cfg, struct queue *q,
		char *err, size_t errlen);
/* Worker i's loop (i < server_nworkers()), for a service to attach to. */
struct io_loop *server_worker_loop(struct server *srv, unsigned i);
/* Between server_init() and server_run(): add a service to worker i.
 * ops and ctx must outlive server_destroy(). -1 when the worker has
 * SERVER_SERVICES_MAX already. */
int server_attach(struct server *srv, unsigned i, const struct server_service_ops *ops,
		  void *ctx);
/* Start the worker threads. err names what failed. */
int server_run(struct server *srv, char *err, size_t errlen);
/* Ask every worker to stop accepting and wind sessions down. */
void server_stop(struct server *srv);
/* Wait for every worker to finish. */
void server_join(struct server *srv);
void server_destroy(struct server *srv);

/* The next queue id of this worker (sessions get theirs through w_env). */
uint64_t server_next_id(struct smtp_worker *w);

/*
 * What the metrics endpoint reads of the workers: a source whose calls
 * sum the sessions' and loops' counters (struct metrics_inbound_stats, in
 * core/http/metrics.h). Delivery and the queue have their own snapshots.
 */
void server_metrics_source(struct server *srv, struct metrics_inbound *src_r);
unsigned server_nworkers(const struct server *srv);

#endif
