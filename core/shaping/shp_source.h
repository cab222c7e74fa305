/*
 * shp_source: choosing the outbound source (local address + EHLO name)
 * of a delivery from the message's pool, with weights, warm-up caps and
 * sources taken out after they failed to bind.
 *
 * Contract between the sources code (shp_source.c, the inbound pool
 * choice, the bind in core/outbound/smtp_client_bind.c) and the delivery
 * engine (core/delivery), which calls shp_src_pick() when it gives a job
 * a path (site, source) and shp_src_sent() per message sent.
 *
 * State: one struct shp_src_state per process, shared by the delivery
 * workers (a mutex inside; calls are short). It holds the warm-up
 * counters (messages per source per provider in the current period) and
 * the set of sources out of service. The counters survive a restart:
 * shp_src_save() / shp_src_restore() turn them into a versioned blob the
 * engine stores with the rest of the shaping state in the queue database.
 * Sources are named (struct shp_source.ss_name), so the state outlives a
 * rules reload; a source gone from the rules is forgotten.
 */
#ifndef RINGMTA_SHP_SOURCE_H
#define RINGMTA_SHP_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "core/shaping/shp_rules.h"

struct shp_src_state;

int shp_src_state_new(struct shp_src_state **s_r);
void shp_src_state_free(struct shp_src_state **s);

enum shp_src_pick_result {
	SHP_SRC_OK = 0,		/* *src_r is the source to use */
	SHP_SRC_WAIT,		/* every usable source is capped: try at *retry_at_r */
	SHP_SRC_NONE,		/* no source of the pool can be used (all out of
				 * service): defer 4.4.0 and say so */
};

/*
 * Pick a source of pool p for one message to provider (name or NULL) at
 * now (unix seconds): weighted by sp_weights among the sources that are
 * in service and under their warm-up cap for this provider; when the
 * weighted choice is capped and the pool spills, another uncapped one;
 * when it does not spill, SHP_SRC_WAIT with the start of the next
 * period. An OK pick holds a place under the source's cap until
 * shp_src_sent() (or shp_src_unpicked()) for it, so that picks made
 * before the first of their messages is sent cannot overshoot the cap.
 */
enum shp_src_pick_result shp_src_pick(struct shp_src_state *s, const struct shp_pool *p,
				      const char *provider, uint64_t now_s,
				      const struct shp_source **src_r, uint64_t *retry_at_r);
/* A message from src to provider was accepted by the receiver (counts
 * against the warm-up cap of the period holding now_s; takes the place
 * a pick held). */
void shp_src_sent(struct shp_src_state *s, const struct shp_source *src, const char *provider,
		  uint64_t now_s);
/* A message picked for src was not sent after all (deferred, failed,
 * no session): its place under the cap is free again. Optional: a place
 * not given back is held until the period ends (a warm-up errs on the
 * side of sending less). */
void shp_src_unpicked(struct shp_src_state *s, const struct shp_source *src,
		      const char *provider, uint64_t now_s);
/* A message picked for (src, from) goes to provider to after all: the
 * domain's site was not known when it was picked (a domain not seen
 * yet, or since the domain -> site cache lapsed). Its place moves to
 * to's counter when to's cap has room (0); else the place is given back
 * and -1 says so, with the start of to's next period in *retry_at_r. */
int shp_src_repick(struct shp_src_state *s, const struct shp_source *src, const char *from,
		   const char *to, uint64_t now_s, uint64_t *retry_at_r);
/* src could not be bound (errno err): it is out of service until the
 * next rules reload (logged once, at warning, naming the source and the
 * address); shp_src_pick() never returns it and never silently falls
 * back to the default address. */
void shp_src_bind_failed(struct shp_src_state *s, const struct shp_source *src, int err);
/* For metrics and `ringmta queue`: call fn for each source with its
 * state (in service or not, messages this period per provider). */
void shp_src_foreach(struct shp_src_state *s,
		     void (*fn)(void *arg, const char *source, const char *provider,
				uint64_t sent_this_period, int out_of_service),
		     void *arg);
/* The rules were reloaded: forget out-of-service marks (they are tried
 * again) and counters of sources no longer defined. */
void shp_src_reloaded(struct shp_src_state *s, const struct shp_rules *r);

/* Persistence of the warm-up counters (versioned; unknown versions and
 * damaged blobs are ignored with a log line, never trusted). */
size_t shp_src_save(struct shp_src_state *s, void *buf, size_t len);	/* needed size */
int shp_src_restore(struct shp_src_state *s, const void *buf, size_t len);

#endif
