/*
 * delivery_internal.h: what delivery's files share: the worker's part
 * (destinations, one per next hop, with their outbound sessions) and the
 * route checks. Everything in a dlv_worker belongs to one worker.
 */
#ifndef RINGMTA_DELIVERY_INTERNAL_H
#define RINGMTA_DELIVERY_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/delivery/delivery.h"
#include "core/shaping/shp_holder.h"
#include "core/shaping/shp_rules.h"
#include "core/shaping/shp_share.h"
#include "core/shaping/shp_source.h"
#include "core/shaping/shp_state.h"
#include "core/shaping/shp_store.h"
#include "core/shaping/shp_susp.h"
#include "core/shaping/shp_top.h"
#include "core/dns/dns.h"
#include "io/loop.h"
#include "io/stat.h"
#include "queue/queue.h"

struct shp_rules;
struct shp_provider;

#define DLV_SOURCE_DEFAULT "default"	/* until sources are chosen per pool */

/*
 * The shaping engine shared by every worker (delivery_shaping.c): the
 * store of limits and the state of the paths. Both lock inside.
 */
struct dlv_shaping {
	struct shp_store *ds_store;
	struct shp_state *ds_state;
	struct shp_src_state *ds_src;	/* sources: warm-up, out of service */
	struct shp_susp *ds_susp;	/* the operator's suspensions */
	pthread_mutex_t ds_susp_lock;	/* a change and its save, one at a time */
	struct shp_top *ds_top;		/* the live per-site view (`ringmta top`) */
	struct shp_met *ds_met;		/* per site, provider and source metrics */
	struct shp_share_tab *ds_shares;	/* the workers' shares of each path */
	/* Counters for metrics (any worker). */
	atomic_uint_fast64_t ds_no_attempt;	/* recipients deferred without an attempt */
	atomic_uint_fast64_t ds_firings;	/* rule actions applied */
	atomic_uint_fast64_t ds_learned;	/* per-connection limits learned */
	atomic_uint_fast64_t ds_health;		/* sites suspended by health */
	/* Labelled counts for metrics: firings per rule, connections open
	 * per provider ("-" for sites without one). */
	pthread_mutex_t ds_lock;
	struct dlv_shp_label {
		char dl_name[64];
		int64_t dl_n;
	} ds_rules[64], ds_provs[64];
	unsigned ds_nrules, ds_nprovs;
};

/* A destination's shaping: its site, provider and the path's limits,
 * known after its route is (or from the shared site cache). */
struct dlv_dest_shp {
	bool dp_known;			/* dp_site is set */
	char dp_site[256];		/* shp_site_name, the domain, or the relayhost */
	char dp_provider[64];		/* "" = none */
	char *dp_source;		/* owned: the source's name ("default") */
	struct shp_rules *dp_rules;	/* a reference: dp_prov lives in it */
	const struct shp_provider *dp_prov;
	struct shp_rules *dp_lrules;	/* a reference: the rules dp_limits
					 * and dp_plimits come from (a reload
					 * applies to them at once, dp_rules
					 * waits for the sessions to end) */
	struct shp_limits dp_limits;	/* configured, before actions */
	struct shp_limits dp_plimits;	/* provider-wide */
	struct shp_limits dp_eff;	/* dp_limits lowered by the verdict */
	uint64_t dp_expires;		/* monotonic s: look the site up again */
	unsigned dp_probe;		/* sessions that are the site's probe */
	bool dp_proven;			/* a session of ours got ready since the
					 * last failure: open more than one */
	bool dp_proven_kicked;		/* ... and the others were opened */
	uint64_t dp_rate_until;		/* unix us: the message rate says wait */
	struct shp_rate dp_rate_for;	/* ... the path's rate it said so under
					 * (another rate since: look again) */
	struct shp_share *dp_share;	/* a reference: the path's share among
					 * the workers (delivery_spread.c) */
	bool dp_waiting;		/* our bit in dp_share is set */
};

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
	uint64_t dd_last_active;	/* monotonic seconds */
	struct dlv_dest_shp dd_shp;
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
	struct dlv_shaping *w_shp;	/* shared by the workers */
	struct shp_holder_cache w_rules;	/* dlv_rules_get(): this worker's look */
	bool w_quiesce;
	uint64_t w_rnd;
	struct dlv_worker *const *w_peers;	/* every worker, w_npeers, this one too */
	unsigned w_npeers;
	atomic_bool w_sweep;		/* another worker asks for dlv_worker_sweep() */
	stat_t w_sessions;		/* outbound sessions that got ready (opened) */
	/* Jobs given to this worker and not done yet: the scheduler's measure
	 * of its load (delivery_spread.c). Its own line: both sides write it. */
	_Alignas(64) atomic_uint w_jobs;
	/* Counters for delivery_get_stats() (single writer: this worker). */
	stat_t w_rcpt_result[4];		/* enum dlv_result: sent, deferred, failed */
	stat_t w_reply_class[6];		/* recipients by reply class 2..5 */
	stat_t w_bounces;
	stat_t w_dns_lookups, w_dns_failures;	/* copied from dns each tick */
	struct stat_hist w_delivery_lat;	/* arrival -> delivered */
};

/* delivery.c: what delivery_admin.c reads of the scheduler's part. */
struct dlv_shaping *dlv_shaping_of(struct delivery *d);
struct queue *dlv_queue_of(struct delivery *d);
struct shp_holder *dlv_rules_holder_of(struct delivery *d);	/* NULL = no rules */
const struct config *dlv_cfg_of(struct delivery *d);
#define DLV_SUSP_BLOB "suspensions"
/* delivery_admin.c: the suspensions' blob, read at start. */
void dlv_susp_restore(struct delivery *d);

/* delivery_worker.c */
/* End every waiting job of d with one outcome; no_attempt: deferred
 * without an SMTP attempt (shaping), to come back at not_before (unix
 * us; 0 = the retry schedule). */
void dlv_dest_fail_queued(struct dlv_worker *w, struct dlv_dest *d, enum dlv_result res,
			  const char *ecode, const char *reason, bool no_attempt,
			  uint64_t not_before);
void dlv_dest_enqueue_front(struct dlv_dest *d, struct dlv_job *j);
/* delivery_dest_route.c: the DNS answer for d (ctx) checked and used;
 * delivery_worker.c: open sessions to d on route rt. */
void dlv_dest_on_route(void *ctx, const struct dns_route *r);
void dlv_dest_open(struct dlv_worker *w, struct dlv_dest *d, struct smtp_route *rt);
/* delivery_job.c: a job for nexthop with room for cap recipients and
 * nothing else set (NULL: no memory). */
struct dlv_job *dlv_job_new(const char *nexthop, unsigned cap);
/* delivery_job.c: split j after its first max recipients into a new job
 * of the same message, first in d's line (false: no memory, j goes
 * whole); how many of j's first recipients name at most dmax domains
 * (at least 1). */
bool dlv_job_split(struct dlv_dest *d, struct dlv_job *j, unsigned max);
unsigned dlv_job_domain_prefix(const struct dlv_job *j, unsigned dmax);
/* The destination of (nexthop, source) on w, or NULL. */
struct dlv_dest *dlv_dest_find(struct dlv_worker *w, const char *nexthop, const char *source);

/* delivery_spread.c: one next hop on every worker. */
#define DLV_SPREAD_SLACK 16u	/* jobs the home may have above another worker */
/* Of workers home and cand, by their loads: cand when home has more than
 * slack jobs above it, else home (pure). */
unsigned dlv_spread_pick(const unsigned *loads, unsigned home, unsigned cand, unsigned slack);
/* Scheduler thread: the worker for a job to nexthop, of the n workers ws;
 * *rr turns the candidate. */
struct dlv_worker *dlv_spread_worker(struct dlv_worker *const *ws, unsigned n,
				     const char *nexthop, uint64_t *rr);
/* d's reference to its path's share follows its site and source (after
 * they are set); detach gives it back, our bit cleared. */
void dlv_spread_attach(struct dlv_worker *w, struct dlv_dest *d);
void dlv_spread_detach(struct dlv_worker *w, struct dlv_dest *d);
/* w waits for a unit of d's path (mail waits, none was free, or its
 * part is full), or no longer does. */
void dlv_spread_wait(struct dlv_worker *w, struct dlv_dest *d, bool waiting);
/* A session of d came ready: true when it should go, so its unit goes to
 * a waiter: the worker holds more than its part (idle: the session has
 * been idle since the last tick, so it goes whenever another waits). */
bool dlv_spread_yield(const struct dlv_worker *w, const struct dlv_dest *d, bool idle);
/* How many of want new sessions d may open while other workers wait for
 * units of its path: up to its fair part (shp_share_fair). */
unsigned dlv_spread_cap(const struct dlv_worker *w, const struct dlv_dest *d, unsigned want);
/* A unit of d's path came back (or a ramp raised its limit): nudge the
 * workers that wait for one. */
void dlv_spread_released(struct dlv_worker *w, const struct dlv_dest *d);
/* delivery_worker.c: a unit came back on another worker: kick the
 * destinations that wait for one (a nudge, on this worker's wake). */
void dlv_worker_sweep(struct dlv_worker *w);

/* delivery_shaping.c: traffic shaping on the worker's side. */
int dlv_shaping_new(struct dlv_shaping **s_r);
void dlv_shaping_free(struct dlv_shaping **s);
/* Unix microseconds now. */
uint64_t dlv_unix_us(void);

/* The scheduler thread's shaping chores, each on its own clock (unix us
 * of its last run): the check whether the state changed and needs saving
 * once a second, the save of the sources' counters and the expiry of
 * idle entries every 10 s. */
struct dlv_shp_clock {
	uint64_t sc_save, sc_src_save, sc_expire;
};
enum {
	DLV_SHP_DO_SAVE = 1,
	DLV_SHP_DO_SRC_SAVE = 2,
	DLV_SHP_DO_EXPIRE = 4,
};
/* The chores due at now (DLV_SHP_DO_* bits); their clocks are set to now. */
unsigned dlv_shp_chores(struct dlv_shp_clock *c, uint64_t now);
/* The rules in force now: a new reference (NULL = none loaded). On w's
 * thread: w's cached look at the holder (shp_holder_get_cached). */
struct shp_rules *dlv_rules_get(struct dlv_worker *w);
/* The site of next hop nexthop resolved to route (pure): the MX set's
 * name, or nexthop itself for a relayhost, an implicit MX, a domain the
 * rules r set apart (r may be NULL). Returns its provider (or NULL). */
const struct shp_provider *dlv_site_of(const struct shp_rules *r, const char *nexthop,
					bool relay, const struct dns_route *route, char *site,
					size_t sitelen);
/* Before DNS: the site from the shared cache, if fresh. */
void dlv_shp_from_cache(struct dlv_worker *w, struct dlv_dest *d);
/* The rules were reloaded since d's limits were set: set them again
 * from the rules in force (sessions open or not). */
void dlv_shp_follow_rules(struct dlv_worker *w, struct dlv_dest *d);
/* The route is known: site, provider, limits; shared cache updated. */
void dlv_shp_from_route(struct dlv_worker *w, struct dlv_dest *d, const struct dns_route *r);
/* What the path's state allows now. SUSPENDED and BOUNCE end the queued
 * jobs here; returns the gate (enum shp_gate). dp_eff is set. claim: the
 * caller is about to connect, a due probe is its own (else PROBE only
 * says one is due). */
int dlv_shp_gate(struct dlv_worker *w, struct dlv_dest *d, bool claim);
/* Take what one new connection needs (site and provider connection
 * units, connection rate): DLV_CONN_OK, or why not now (force: past the
 * limits, for the probe). dlv_shp_conn_put() gives the units back when
 * the session is gone. */
enum {
	DLV_CONN_OK = 0,
	DLV_CONN_FULL,		/* the site's or provider's units are all held */
	DLV_CONN_RATE,		/* the connection rate says later */
};
int dlv_shp_conn_take(struct dlv_worker *w, struct dlv_dest *d, bool force);
void dlv_shp_conn_put(struct dlv_worker *w, struct dlv_dest *d);
/* More sessions to the site than its (lowered) limit allows now: the
 * caller closes one as it comes ready. */
bool dlv_shp_over_limit(struct dlv_worker *w, struct dlv_dest *d);
/* One message may start: 0, or the microseconds to wait. */
uint64_t dlv_shp_msg_take(struct dlv_worker *w, struct dlv_dest *d);
/* The session's path for smtp_client_open(). */
void dlv_shp_client_path(struct dlv_dest *d, struct smtp_client_path *p);
/* Events from the sessions. */
void dlv_shp_reply(struct dlv_worker *w, struct dlv_dest *d, unsigned code, const char *ecode,
		   const char *text);
void dlv_shp_route_failed(struct dlv_worker *w, struct dlv_dest *d, const char *ecode,
			  const char *reason);
void dlv_shp_opened(struct dlv_worker *w, struct dlv_dest *d);
void dlv_shp_closed_after(struct dlv_worker *w, struct dlv_dest *d, unsigned n);
void dlv_shp_delivered(struct dlv_worker *w, struct dlv_dest *d);
/* For the live view: n recipients of d were deferred. */
void dlv_shp_deferred(struct dlv_worker *w, struct dlv_dest *d, unsigned n);
/* The worker's share of the live view and of the metrics' gauges (its
 * tick, once a second). */
void dlv_shp_top_publish(struct dlv_worker *w);
/* d's sessions sending a message now (neither opening nor idle). */
unsigned dlv_dest_busy(const struct dlv_dest *d);
/* The destination goes away. */
void dlv_shp_dest_free(struct dlv_dest *d);
/* Sources: pick j's source from its message's pool (j->dj_source set).
 * SHP_SRC_OK, or WAIT (then *retry_at_r, unix us) / NONE (reason in
 * why): the job is not sent now. */
int dlv_shp_pick(struct dlv_worker *w, struct dlv_job *j, uint64_t *retry_at_r, char *why,
		 size_t whylen);
/* j ends: its pick counts as sent, or gives its place back. */
/* j is about to start on one of d's sessions, d's provider known: a
 * pick made for another provider (none, when the domain's site was not
 * known yet) moves to d's provider's warm-up cap. True: j may go. False:
 * the source is capped for that provider; j no longer holds a place and
 * waits until *not_before_r (unix us; 0 = pick again now), why says it. */
bool dlv_shp_job_provider(struct dlv_worker *w, struct dlv_dest *d, struct dlv_job *j,
			  uint64_t *not_before_r, char *why, size_t whylen);
/* A reload removed d's source from the rules: its sessions go and what
 * waits picks its source again (never the removed address). */
bool dlv_shp_source_gone(struct dlv_worker *w, const struct dlv_dest *d);
void dlv_shp_job_release(struct dlv_worker *w, struct dlv_job *j, bool sent);
/* The session could not bind d's source: out of service. */
void dlv_shp_source_failed(struct dlv_worker *w, struct dlv_dest *d, int err,
			   const char *reason);

/* delivery_met.c: the per site, provider and source metrics. */
/* j ends: leave on each of its recipients where the outcome came from;
 * rc alone, when it leaves j with its outcome before j ends. */
void dlv_met_job_where(struct dlv_worker *w, const struct dlv_job *j);
void dlv_met_rcpt_where(struct dlv_worker *w, const struct dlv_job *j, struct dlv_rcpt *rc);
/* r's outcome of the round is final (class set): count it. */
void dlv_met_rcpt(struct dlv_worker *w, const struct dlv_rcpt *r);
/* A session of d got ready (opened), or none of its addresses answered. */
void dlv_met_conn(struct dlv_worker *w, const struct dlv_dest *d, bool opened);
/* The names d's traffic counts under: its site (the next hop itself
 * until the site is known), its provider ("-": none or not known yet),
 * its source. The strings live as long as d. */
void dlv_met_dest_keys(const struct dlv_dest *d, struct shp_met_keys *k);

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
