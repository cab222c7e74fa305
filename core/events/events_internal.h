/*
 * events_internal.h: what the pieces of core/events share: the renderer's
 * helpers (event_render.c, no I/O, any thread) and the sinks' interface
 * (events.c runs them; event_sink_log.c, event_sink_webhook.c).
 */
#ifndef RINGMTA_EVENTS_INTERNAL_H
#define RINGMTA_EVENTS_INTERNAL_H

#include <jansson.h>
#include <stdatomic.h>
#include <sys/uio.h>

#include "core/events/events.h"

/* RFC 3339 UTC with milliseconds: "2026-12-05T13:04:05.123Z". */
#define EVENT_TIME_LEN 25
void event_time(uint64_t unix_us, char out[EVENT_TIME_LEN]);
/* A record's object: {"type": ..., "time": now}; NULL when out of memory. */
json_t *event_new(enum event_type t);
/* Dump obj compactly onto the end of *list and release obj. 0 or -1. */
int event_append(struct queue_event **list, json_t *obj);
/* The Message-ID field's value in a message's header (unfolded, without
 * controls, at most len - 1 bytes), read across the pieces; "" when
 * there is none in the first 64 KiB of the header. */
void event_msgid(const struct iovec *iov, unsigned n, char *out, size_t len);
/* The type of a stored record ({"type":"..." first), or -1. */
int event_record_type(const char *data, size_t len);
/* The record as sent: {"id":"<seq>", then the stored members. Returns a
 * heap string (*len_r bytes, NUL-terminated) or NULL. */
char *event_with_id(uint64_t seq, const char *data, size_t len, size_t *len_r);

/* One batch of records for a sink, in order, each with its id. */
struct event_batch {
	char **eb_recs;
	size_t *eb_lens;
	unsigned eb_n;
};

/* A sink's work: send a batch; 0 when done, -1 to try it again later
 * (why in err). Runs on the sink's own thread. */
struct event_sink_ops {
	int (*so_send)(void *impl, const struct event_batch *b, char *err, size_t errlen);
	void (*so_reopen)(void *impl);		/* may be NULL */
	void (*so_free)(void *impl);
};

/* The sinks' constructors: 0, or -1 with err. */
int event_sink_log_new(const struct config *cfg, void **impl_r, char *err, size_t errlen);
extern const struct event_sink_ops event_sink_log_ops;
int event_sink_webhook_new(const struct config *cfg, const char *url, void **impl_r,
			   char *err, size_t errlen);
extern const struct event_sink_ops event_sink_webhook_ops;

#endif
