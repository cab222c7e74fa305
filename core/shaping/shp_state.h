/*
 * shp_state: what the shaping engine knows about each egress path right
 * now, shared by every delivery worker (one mutex inside; calls are
 * short). A path is a (site, source); the site alone holds what concerns
 * all its sources.
 *
 *  - Active actions, each with an expiry and the rule that set it:
 *    suspend (site+source, or the whole site), a lowered connection limit,
 *    a lowered message rate, bounce, and the ramp (Gmail's 4.7.28
 *    guidance: paused until a time, then one connection, one more per
 *    step successful deliveries, until the configured limit is reached).
 *  - Health of a site without any rule: consecutive failed connection
 *    rounds (every address failed), the backoff level, the end of the
 *    current suspension and whether the single probe is in flight.
 *  - The learned max messages per connection of a path (a receiver that
 *    closes without an error after N messages).
 *  - A domain -> (site, provider) cache, so a job for a domain whose site
 *    is suspended is deferred without DNS and without an attempt.
 *
 * Times are unix microseconds (wall clock), so the state means the same
 * after a restart: shp_state_save() / shp_state_restore() turn it into a
 * versioned text blob stored in the queue database (queue_shaping.c).
 * Strings passed in are copied; nothing returned points inside the state.
 */
#ifndef RINGMTA_SHP_STATE_H
#define RINGMTA_SHP_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/shaping/shp_rate.h"
#include "core/shaping/shp_rules.h"

struct shp_state;

int shp_state_new(struct shp_state **st_r);
void shp_state_free(struct shp_state **st);

enum shp_gate {
	SHP_GATE_OPEN = 0,	/* go on, within sv_* limits */
	SHP_GATE_SUSPENDED,	/* no attempt before sv_until_us */
	SHP_GATE_PROBE,		/* health: this caller makes the one probe
				 * connection, then reports shp_state_conn_ok()
				 * or shp_state_conn_failed() */
	SHP_GATE_BOUNCE,	/* a bounce action: fail the mail (sv_reason) */
};

struct shp_verdict {
	uint8_t sv_gate;		/* enum shp_gate */
	uint64_t sv_until_us;		/* SUSPENDED: when to try again */
	char sv_reason[240];		/* SUSPENDED / BOUNCE: why, for the record */
	uint32_t sv_max_conns;		/* lowered connection limit, 0 = none */
	struct shp_rate sv_rate;	/* lowered message rate, sr_count 0 = none */
	uint32_t sv_max_msgs;		/* learned per connection, 0 = none */
	bool sv_probe_wait;		/* SUSPENDED only because the probe is
					 * under way: its outcome comes soon, so
					 * what waits may wait in memory */
};

/* Probe in flight longer than this is taken as lost (a worker gone). */
#define SHP_PROBE_STALE_US (300ull * 1000000u)
/* While the probe is in flight, others look again this much later. */
#define SHP_PROBE_WAIT_US (5ull * 1000000u)

/* A site's health is forgotten this long after its suspension ended
 * without a probe (no mail came for it): its waiting mail comes back
 * when the suspension ends (capped by retry_max), so only a site nobody
 * sends to any more is dropped; the next mail finds it as new. */
#define SHP_HEALTH_FORGET_US (86400ull * 1000000u)

/* What may happen on path (site, source) at now. source may be NULL.
 * A due probe is claimed (given to this caller only) when claim; else
 * SHP_GATE_PROBE only says one is due. */
void shp_state_check(struct shp_state *st, const char *site, const char *source,
		     uint64_t now_us, bool claim, struct shp_verdict *v_r);
/* Lower l by what v says (never raise it). */
void shp_verdict_apply(const struct shp_verdict *v, struct shp_limits *l);

/* A rule fired on path (site, source): apply action a from now. Returns
 * its expiry (unix us). rule may be NULL (built-in). */
uint64_t shp_state_fire(struct shp_state *st, const char *site, const char *source,
			const char *rule, const struct shp_action *a, uint64_t now_us);
/* A message was delivered on the path: one success for the ramp. limit
 * is the path's configured connection limit (the ramp ends there). */
void shp_state_delivered(struct shp_state *st, const char *site, uint32_t limit,
			 uint64_t now_us);

/* Health. A session to site became ready: it is healthy again. */
void shp_state_conn_ok(struct shp_state *st, const char *site, uint64_t now_us);
/* Every address of site failed (a round of attempts, or the probe):
 * suspend it for backoff_us(level) and return the end of it. */
uint64_t shp_state_conn_failed(struct shp_state *st, const char *site, uint64_t now_us,
			       uint64_t (*backoff_us)(void *arg, unsigned level), void *arg);

/* A receiver closed the connection without an error after n messages:
 * lower the path's per-connection limit to n. True when it changed. */
bool shp_state_learn_max_msgs(struct shp_state *st, const char *site, const char *source,
			      uint32_t n, uint64_t now_us);

/* The domain -> site cache (lowercase domain). */
void shp_state_site_put(struct shp_state *st, const char *domain, const char *site,
			const char *provider, uint64_t expires_us);
/* True with the site (and provider, "" when none) while fresh. */
bool shp_state_site_get(struct shp_state *st, const char *domain, uint64_t now_us,
			char *site, size_t sitelen, char *provider, size_t provlen);

/* Drop what expired and entries with nothing left in them. */
void shp_state_expire(struct shp_state *st, uint64_t now_us);

/* For `ringmta queue` and metrics: every active action and suspension.
 * kind is "suspend", "suspend_site", "max_connections", "message_rate",
 * "bounce", "ramp", "health" or "learned_max_messages"; value is the
 * number that goes with it (connections, messages, backoff level). */
struct shp_state_item {
	const char *sti_site;
	const char *sti_source;		/* "" for the site */
	const char *sti_kind;
	const char *sti_rule;		/* "" when none */
	uint64_t sti_until_us;		/* 0 = no expiry */
	uint64_t sti_value;
	const char *sti_text;		/* rate as text, or "" */
};
void shp_state_foreach(struct shp_state *st, uint64_t now_us,
		       void (*fn)(void *arg, const struct shp_state_item *it), void *arg);
/* Something changed since the last call (for the persister). */
bool shp_state_take_dirty(struct shp_state *st);

/* Persistence (shp_state_blob.c). save: bytes needed (writes up to len);
 * restore: 0, or -1 when the blob is damaged or of another version (the
 * state is then left empty and the caller logs it). */
size_t shp_state_save(struct shp_state *st, uint64_t now_us, char *buf, size_t len);
int shp_state_restore(struct shp_state *st, const char *buf, size_t len);

#endif
