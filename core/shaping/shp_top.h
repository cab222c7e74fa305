/*
 * shp_top: the live per-site view behind `ringmta top` and the admin
 * API's /top: per site, the mail waiting on the workers for it (ready),
 * the connections open and those busy with a message (in flight), the
 * messages delivered and the recipients deferred over the last minute.
 *
 * The workers own their destinations, so each publishes its own share
 * once a second (shp_top_publish replaces what that worker said last);
 * deliveries and deferrals are counted as they happen in ten-second
 * buckets. One mutex inside; any thread. At most SHP_TOP_MAX sites are
 * followed (a new one past that is not shown); a site with nothing to
 * show for SHP_TOP_IDLE_US goes (shp_top_expire).
 */
#ifndef RINGMTA_SHP_TOP_H
#define RINGMTA_SHP_TOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHP_TOP_MAX 4096u
#define SHP_TOP_WINDOW_S 60u		/* what "recent" means */
#define SHP_TOP_IDLE_US (600ull * 1000000u)

struct shp_top;

int shp_top_new(struct shp_top **t_r, unsigned nworkers);
void shp_top_free(struct shp_top **t);

/* One destination of a worker (several of one site add up). */
struct shp_top_row {
	const char *tr_site;
	const char *tr_provider;	/* "" = none */
	uint32_t tr_ready;		/* jobs waiting for a session */
	uint32_t tr_conns;		/* sessions open or opening */
	uint32_t tr_busy;		/* of those, sending a message now */
};
/* Worker worker's whole view now: replaces the one it gave last. */
void shp_top_publish(struct shp_top *t, unsigned worker, const struct shp_top_row *rows,
		     unsigned n, uint64_t now_us);
/* Messages delivered, recipients deferred (after an attempt or not). */
void shp_top_delivered(struct shp_top *t, const char *site, unsigned n, uint64_t now_us);
void shp_top_deferred(struct shp_top *t, const char *site, unsigned n, uint64_t now_us);

/* One site in a snapshot: copies, the caller's to keep. */
struct shp_top_site {
	char ts_site[256];
	char ts_provider[64];
	uint32_t ts_ready, ts_conns, ts_busy;
	uint32_t ts_delivered, ts_deferred;	/* over the last SHP_TOP_WINDOW_S */
};
/* Up to max sites, the busiest first (ready, then in flight, then recent
 * deliveries and deferrals); returns how many were filled. *total_r (may
 * be NULL): how many sites there are. */
unsigned shp_top_snapshot(struct shp_top *t, uint64_t now_us, struct shp_top_site *out,
			  unsigned max, unsigned *total_r);
/* Forget the sites with nothing to show for SHP_TOP_IDLE_US. */
void shp_top_expire(struct shp_top *t, uint64_t now_us);

#endif
