/*
 * events: delivery events (README "Delivery events and webhooks").
 *
 * A module that changes a message's state renders one JSON record per
 * event on its own thread (event_render.c: no shared state) and attaches
 * the records to the queue_msg or queue_update that carries the change;
 * the committer stores them in the same transaction (queue.h, "events"),
 * numbering them. Sinks (an event log, webhooks), each on its own thread,
 * read the stored records in order from a durable cursor of their own and
 * send them; records every sink has passed are deleted; the store is
 * bounded by events_max_backlog (the oldest are dropped and counted).
 *
 * With no sink configured events_start() gives NULL and every emit
 * function returns at once: nothing is rendered or stored.
 *
 * Threads: emit functions from any thread; events_reopen() from any
 * thread (it only sets a flag); start/stop from the main thread.
 */
#ifndef RINGMTA_EVENTS_H
#define RINGMTA_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config/config.h"
#include "queue/queue.h"

struct events;

enum event_type {
	EVENT_RECEPTION,
	EVENT_ATTEMPT,
	EVENT_DELIVERED,
	EVENT_DEFERRED,
	EVENT_BOUNCED,
	EVENT_EXPIRED,
	EVENT_SUPPRESSED,
	EVENT_DSN_SENT,
	EVENT_ADMIN,
	EVENT_NTYPES
};

/* "reception", "attempt", ...; -1 for an unknown name. */
const char *event_type_name(enum event_type t);
int event_type_parse(const char *name, size_t len);
/* A comma- or space-separated list of type names as a bit mask (bit =
 * 1 << type); "" is every type. -1 with err naming the unknown one. */
int event_type_mask(const char *list, uint32_t *mask_r, char *err, size_t errlen);

/* Start the sinks the settings name; *ev_r NULL when none is. q must
 * outlive the events. 0, or -1 with err. */
int events_start(struct events **ev_r, const struct config *cfg, struct queue *q, char *err,
		 size_t errlen);
/* Stop the sinks (what is not sent stays stored for the next start). */
void events_stop(struct events **ev);
/*
 * A reload (core/app/main_reload.c): when the sinks' settings or the
 * webhook_header_file changed, the sinks are made again from cfg, and
 * only once all of them are made are the running ones stopped (each
 * saves its cursor; one inside a request waits for it, webhook_timeout
 * at most) and the new ones started from the cursors of the same names.
 * cfg must outlive ev (a settings generation does). -1 with err when a
 * sink cannot be made: the running ones go on. *changed_r: they were
 * replaced. events_nsinks(): how many run.
 */
int events_reload(struct events *ev, const struct config *cfg, bool *changed_r, char *err,
		  size_t errlen);
unsigned events_nsinks(struct events *ev);
/* Reopen the event log file (SIGUSR1, after logrotate moved it). */
void events_reopen(struct events *ev);
static inline bool events_on(const struct events *ev)
{
	return ev != NULL;
}

/*
 * Reception: queue id, sender, recipients, size, client address,
 * identity (AUTH user; NULL for none), Message-ID (read from the body's
 * header when msgid is NULL), listener. The record is attached to m
 * (m->qm_events), so it is stored with the message; the owner of m frees
 * it with queue_events_free() once m is back. -1 when out of memory
 * (the message goes on without it).
 */
struct event_origin {
	const char *eo_client;		/* "192.0.2.1" */
	const char *eo_identity;	/* NULL: none */
	const char *eo_listener;	/* "127.0.0.1:25", "http" */
	const char *eo_msgid;		/* NULL: from the header */
};
int events_reception(struct events *ev, struct queue_msg *m, const struct event_origin *o);

/*
 * One recipient's delivery round: an "attempt" record (unless no attempt
 * was made) and the outcome's record (delivered, deferred, bounced or
 * expired), appended to *list for the round's queue_update.
 */
struct event_rcpt {
	uint64_t er_queue_id;
	const char *er_sender;
	const char *er_rcpt;
	const char *er_site;		/* next hop: domain or relayhost */
	const char *er_remote;		/* "host[ip]:port" that answered, or "" */
	const char *er_source;		/* source (bind address name), or NULL */
	const char *er_tls;		/* "TLSv1.3 cipher" or "" */
	const char *er_reply;
	const char *er_ecode;
	const char *er_bclass;		/* NULL: none */
	uint64_t er_duration_us;
	unsigned er_attempt;		/* this attempt's number (1 = first) */
	bool er_no_attempt;		/* deferred without an attempt */
	enum event_type er_outcome;	/* DELIVERED, DEFERRED, BOUNCED, EXPIRED */
	uint64_t er_next_us;		/* deferred: the next try, unix us */
};
int events_rcpt(struct events *ev, struct queue_event **list, const struct event_rcpt *r);
/* A notice was queued: kind "bounce", "delay" or "success". */
int events_dsn(struct events *ev, struct queue_event **list, uint64_t queue_id,
	       uint64_t dsn_id, const char *kind, const char *to);
/* A recipient refused or dropped (action "refuse", "drop") by the
 * suppression list, or added to it (action "add"). */
int events_suppressed(struct events *ev, struct queue_event **list, const char *sender,
		      const char *rcpt, size_t rcpt_len, const char *action, const char *bclass,
		      const char *scope);
/*
 * Store records that go with no message change (suppressed recipients
 * at RCPT, admin actions): submitted to the committer on their own; the
 * list is taken over (freed once stored). Any thread.
 */
void events_submit(struct events *ev, struct queue_event *list);
/* An admin action: action ("POST /api/v1/queue/delete" ...), detail (the
 * request) and result (the answer: for the queue's operations the ids it
 * changed and the DSNs it queued), each a JSON text (stored as JSON),
 * plain text or NULL. */
void event_admin(struct events *ev, const char *action, const char *detail, const char *result);

/* What the metrics endpoint shows; any thread. */
struct events_sink_stats {
	char ss_name[96];
	uint64_t ss_pending;		/* stored events not yet passed */
	uint64_t ss_requests, ss_failures;
	uint64_t ss_last_success;	/* unix seconds; 0 = never */
};
struct events_stats {
	uint64_t es_stored, es_last, es_dropped;
	unsigned es_nsinks;
	struct events_sink_stats es_sinks[8];
};
void events_get_stats(struct events *ev, struct events_stats *st_r);

#endif
