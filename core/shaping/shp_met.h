/*
 * shp_met: delivery's counters per site, per provider and per source for
 * the metrics endpoint, with a bounded number of names shown.
 *
 * Three dimensions, each on its own: a recipient's outcome counts once
 * under its site, once under its provider and once under its source.
 * Counters (recipients delivered, deferred, bounced, bounced per bounce
 * class; connections opened, connection failures) only grow; gauges
 * (jobs ready, messages in flight) are what each worker published last
 * (shp_met_publish replaces that worker's share, as shp_top does).
 *
 * The rule that keeps the series bounded and every counter monotonic:
 * - At each snapshot the names among the busiest `top` of the dimension
 *   (recent traffic: recipients' outcomes over the last SHP_MET_WINDOW_S,
 *   plus jobs ready and messages in flight now; ties by name)
 *   that are not shown yet are shown from then on, while fewer than
 *   2 * top are shown. A name once shown stays shown until restart,
 *   even when it is quiet: its series never goes back into "other".
 * - A name not shown counts toward SHP_MET_OTHER ("other"): what it did
 *   goes into "other" at the next snapshot of its dimension. A name shown
 *   for the first time takes what it did since the previous snapshot (not
 *   in any "other" yet) as its start; what it did before stays in "other".
 *   "other" holds every name never shown (and those past SHP_MET_TRACK_MAX
 *   followed names, and a name that is itself "other"). So each series
 *   only grows, and in every snapshot the shown names and "other" add up
 *   to the totals. (With a first scrape after the traffic, the busiest
 *   carry all they did.)
 * - Gauges of "other" sum the names not shown.
 * So a snapshot has at most 2 * top + 1 series per dimension, and at most
 * top + 1 until the busiest names have changed.
 *
 * One mutex inside; any thread.
 */
#ifndef RINGMTA_SHP_MET_H
#define RINGMTA_SHP_MET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHP_MET_OTHER "other"
#define SHP_MET_WINDOW_S 600u		/* "recent": ten one-minute slices */
#define SHP_MET_TRACK_MAX 16384u	/* names followed per dimension */
#define SHP_MET_NCLASSES 16u		/* bounce classes (enum bclass) */
#define SHP_MET_NAME_MAX 255u		/* longer names are cut (on a UTF-8
					 * character's start) */

enum shp_met_dim {
	SHP_MET_SITE = 0,
	SHP_MET_PROVIDER,
	SHP_MET_SOURCE,
	SHP_MET_NDIMS,
};

enum shp_met_ctr {
	SHP_MET_DELIVERED = 0,		/* recipients */
	SHP_MET_DEFERRED,
	SHP_MET_BOUNCED,
	SHP_MET_CONN_OPENED,		/* sessions that got ready */
	SHP_MET_CONN_FAILED,		/* sessions none of whose addresses answered */
	SHP_MET_NCTRS,
};

struct shp_met;

/* top: names shown per dimension before the busiest change (>= 0). */
int shp_met_new(struct shp_met **m_r, unsigned nworkers, unsigned top);
void shp_met_free(struct shp_met **m);

/* A name per dimension; NULL or "" leaves that dimension out. */
struct shp_met_keys {
	const char *mk_name[SHP_MET_NDIMS];
};
/* n more of counter c under each of k's names; cls is the bounce class
 * for SHP_MET_BOUNCED (0 or out of range: none). */
void shp_met_count(struct shp_met *m, const struct shp_met_keys *k, enum shp_met_ctr c,
		   unsigned cls, unsigned n, uint64_t now_us);

/* One destination of a worker (several under one name add up). */
struct shp_met_row {
	struct shp_met_keys mr_keys;
	uint32_t mr_ready;		/* jobs waiting for a session */
	uint32_t mr_in_flight;		/* sessions sending a message now */
};
/* Worker worker's gauges now: replace the ones it published last. */
void shp_met_publish(struct shp_met *m, unsigned worker, const struct shp_met_row *rows,
		     unsigned n, uint64_t now_us);

/* One series of a snapshot: copies, the caller's to keep. */
struct shp_met_series {
	char ms_name[SHP_MET_NAME_MAX + 1];	/* SHP_MET_OTHER for the rest */
	bool ms_other;
	uint64_t ms_ctr[SHP_MET_NCTRS];
	uint64_t ms_bounced[SHP_MET_NCLASSES];	/* per class; [0] unused */
	uint64_t ms_ready, ms_in_flight;
	unsigned ms_names;		/* other: names followed, not shown */
};
/* The most series a snapshot of one dimension has: 2 * top + 1. */
unsigned shp_met_max_series(const struct shp_met *m);
/* Apply the rule above to dim at now_us, then fill out (room for max
 * series): the shown names in the order they were first shown, "other"
 * last (always there). Returns how many were filled. */
unsigned shp_met_snapshot(struct shp_met *m, enum shp_met_dim dim, uint64_t now_us,
			  struct shp_met_series *out, unsigned max);
/* Forget the names not shown that have had nothing for SHP_MET_WINDOW_S
 * (their counts are in "other" already). */
void shp_met_expire(struct shp_met *m, uint64_t now_us);

#endif
