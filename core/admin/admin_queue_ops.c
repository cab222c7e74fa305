/*
 * admin_queue_ops.c: the admin API's changes to queued messages: POST
 * /api/v1/queue/hold, release, delete, bounce and flush. The body names
 * the messages: {"ids": [...]}, a filter (admin_filter.h's names as
 * members), or {"all": true} (not for bounce); a body naming none is
 * refused, never read as "everything".
 *
 * Each change is a queue update applied by the committer (durable and
 * group-committed with the mail), submitted while delivery dispatches
 * nothing (delivery_admin_lock), and waited for before the answer. A
 * message in flight is held (the flag outlives the round's result), but
 * not deleted, bounced or flushed: it is named under "in_flight".
 */
#include "core/admin/admin_queue.h"

#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/base/log.h"
#include "core/delivery/delivery.h"
#include "core/events/events.h"
#include "core/message/dsn.h"
#include "queue/queue.h"

#define ADMIN_OPS_CHUNK 256u		/* messages per locked round */
#define ADMIN_OPS_REASON_MAX 400u
#define ADMIN_OPS_IDS_MAX 100000u	/* ids named in one request */

enum admin_op { ADMIN_OP_HOLD, ADMIN_OP_RELEASE, ADMIN_OP_DELETE, ADMIN_OP_BOUNCE,
		ADMIN_OP_FLUSH };

static const char *const admin_op_names[] = { "hold", "release", "delete", "bounce", "flush" };

/* One request's work. */
struct admin_ops {
	struct admin_queue *aq;
	enum admin_op op;
	char reason[ADMIN_OPS_REASON_MAX + 1];
	uint64_t now;
	uint64_t *ids;
	size_t nids, cap;
	json_t *affected, *in_flight, *not_found, *dsns;
	/* The updates of one round, and the committer's progress on them. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned pending;
};

/* One message's update and what it points to, freed after the commit. */
struct admin_ops_upd {
	struct queue_update u;
	struct admin_ops *ops;
	struct queue_rcpt_update *ru;
	char *sender;
	struct queue_msg *dsn;
	bool found, skip;
	bool events_ok;			/* false: out of memory, no records */
};

static int admin_ops_add_id(struct admin_ops *o, uint64_t id)
{
	if (o->nids == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 64;
		uint64_t *n = realloc(o->ids, cap * sizeof(*n));

		if (n == NULL)
			return -1;
		o->ids = n;
		o->cap = cap;
	}
	o->ids[o->nids++] = id;
	return 0;
}

/* ---- which messages ---- */

struct admin_ops_scan {
	struct admin_ops *o;
	const struct admin_filter *f;
	bool all;
	bool oom;
};

static int admin_ops_scan_one(void *ctx, uint64_t id, const struct qrecord *r,
			      const void *body, size_t body_len)
{
	struct admin_ops_scan *s = ctx;

	(void)body;
	(void)body_len;
	if (!s->all && !admin_filter_match(s->f, id, r, s->o->now,
					   admin_queue_inflight(s->o->aq, id)))
		return 0;
	if (admin_ops_add_id(s->o, id) < 0) {
		s->oom = true;
		return 1;
	}
	return 0;
}

/* Read the body into o->ids (and o->reason); -1 with rep set. */
static int admin_ops_select(struct admin_ops *o, const struct admin_req *req,
			    struct admin_reply *rep)
{
	struct admin_filter f;
	struct admin_ops_scan s = { .o = o, .f = &f };
	const char *key;
	json_t *v;
	bool have_ids = false;
	char err[256];
	int rc;

	admin_filter_init(&f);
	if (req->ar_json == NULL) {
		admin_reply_error(rep, MHD_HTTP_BAD_REQUEST, "no selection",
				  "the body must name the messages: {\"ids\": [...]}, a filter"
				  "%s", o->op == ADMIN_OP_BOUNCE ? "" : " or {\"all\": true}");
		return -1;
	}
	json_object_foreach(req->ar_json, key, v) {
		char num[32];
		const char *text;

		if (strcmp(key, "ids") == 0) {
			size_t i;
			json_t *e;

			if (!json_is_array(v) || json_array_size(v) == 0 ||
			    json_array_size(v) > ADMIN_OPS_IDS_MAX) {
				admin_reply_error(rep, MHD_HTTP_BAD_REQUEST, "bad ids",
						  "ids: an array of 1 to %u queue ids",
						  ADMIN_OPS_IDS_MAX);
				return -1;
			}
			json_array_foreach(v, i, e) {
				uint64_t id;

				if (!json_is_string(e) ||
				    queue_id_parse(json_string_value(e), &id) < 0 || id == 0) {
					admin_reply_error(rep, MHD_HTTP_BAD_REQUEST, "bad id",
							  "ids[%zu]: not a queue id (16 hex"
							  " digits)", i);
					return -1;
				}
				if (admin_ops_add_id(o, id) < 0) {
					admin_reply_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR,
							  "out of memory", NULL);
					return -1;
				}
			}
			have_ids = true;
			continue;
		}
		if (strcmp(key, "all") == 0) {
			if (!json_is_boolean(v) || o->op == ADMIN_OP_BOUNCE) {
				admin_reply_error(rep, MHD_HTTP_BAD_REQUEST, "bad selection",
						  o->op == ADMIN_OP_BOUNCE ?
						  "bounce takes ids or a filter, never all" :
						  "all: true or false");
				return -1;
			}
			s.all = json_is_true(v);
			continue;
		}
		if (strcmp(key, "reason") == 0 && o->op == ADMIN_OP_BOUNCE) {
			if (!json_is_string(v) || json_string_length(v) == 0 ||
			    json_string_length(v) > ADMIN_OPS_REASON_MAX ||
			    strpbrk(json_string_value(v), "\r\n") != NULL) {
				admin_reply_error(rep, MHD_HTTP_BAD_REQUEST, "bad reason",
						  "reason: one line of 1 to %u octets",
						  ADMIN_OPS_REASON_MAX);
				return -1;
			}
			snprintf(o->reason, sizeof(o->reason), "%s", json_string_value(v));
			continue;
		}
		if (strcmp(key, "limit") == 0 || strcmp(key, "cursor") == 0) {
			admin_reply_error(rep, MHD_HTTP_BAD_REQUEST, "bad filter",
					  "%s: only for listing", key);
			return -1;
		}
		if (json_is_string(v)) {
			text = json_string_value(v);
		} else if (json_is_integer(v) && json_integer_value(v) >= 0 &&
			   strstr(key, "_age") != NULL) {
			snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
			text = num;
		} else {
			admin_reply_error(rep, MHD_HTTP_BAD_REQUEST, "bad filter",
					  "%.40s: a string%s", key,
					  strstr(key, "age") != NULL ? " or a number" : "");
			return -1;
		}
		rc = admin_filter_set(&f, key, text, err, sizeof(err));
		if (rc == 1)
			snprintf(err, sizeof(err), "unknown member '%.40s'", key);
		if (rc != 0) {
			admin_reply_error(rep, MHD_HTTP_BAD_REQUEST, "bad filter", "%s", err);
			return -1;
		}
	}
	if (have_ids + f.af_selects + s.all > 1) {
		admin_reply_error(rep, MHD_HTTP_BAD_REQUEST, "bad selection",
				  "ids, a filter or all: one of them");
		return -1;
	}
	if (!have_ids && !f.af_selects && !s.all) {
		admin_reply_error(rep, MHD_HTTP_BAD_REQUEST, "no selection",
				  "the body must name the messages: ids, a filter%s; never"
				  " everything by default", o->op == ADMIN_OP_BOUNCE ? "" :
				  " or \"all\": true");
		return -1;
	}
	if (have_ids)
		return 0;
	rc = queue_admin_foreach(o->aq->aq_queue, admin_ops_scan_one, &s);
	if (rc < 0 || s.oom) {
		admin_reply_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "queue error", "%s",
				  rc < 0 ? queue_strerror(rc) : "out of memory");
		return -1;
	}
	return 0;
}

/* ---- the updates ---- */

/* A queue id for a DSN: the admin's own low byte (0xfe; HTTP injection
 * has 0xff), so it never meets a worker's id (workers are fewer) nor an
 * injected message's. */
static uint64_t admin_ops_next_id(struct admin_queue *aq)
{
	uint64_t us = admin_queue_now_us();

	pthread_mutex_lock(&aq->aq_id_lock);
	if (us <= aq->aq_last_us)
		us = aq->aq_last_us + 1;
	aq->aq_last_us = us;
	pthread_mutex_unlock(&aq->aq_id_lock);
	return us << 8 | 0xfeu;
}

static void admin_ops_date(uint64_t us, char *buf, size_t len)
{
	time_t t = (time_t)(us / 1000000u);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

/* The DSN for a bounced message: every pending recipient failed with the
 * operator's reason (RFC 3464, through the delivery's builder), as
 * RFC 3461 asks: not for a recipient whose NOTIFY leaves FAILURE out,
 * with its ORCPT, the ENVID and, on RET=FULL, the whole message. NULL
 * on failure, or with *none_r set when no recipient wants a notice. */
static struct queue_msg *admin_ops_dsn(struct admin_ops *o, uint64_t id, const struct qrecord *r,
				       const char *sender, bool *none_r)
{
	unsigned cap = r->nrcpt ? r->nrcpt : 1;
	struct dsn_rcpt *dr = calloc(cap, sizeof(*dr));
	char **addrs = calloc(cap, sizeof(*addrs)), **orcpts = calloc(cap, sizeof(*orcpts));
	char arrival[40], date[40], ids[17], diag[ADMIN_OPS_REASON_MAX + 64];
	char *envid = NULL;
	struct queue_msg *b = NULL;
	struct dsn_msg dm;
	struct qrcpt c;
	size_t off = 0;
	unsigned n = 0;

	*none_r = false;
	if (dr == NULL || addrs == NULL || orcpts == NULL)
		goto out;
	snprintf(diag, sizeof(diag), "returned by the mail administrator: %s", o->reason);
	while (qrecord_rcpt_next(r, &off, &c)) {
		if (c.state != QRCPT_PENDING ||
		    (c.notify != 0 && !(c.notify & QRCPT_NOTIFY_FAILURE)))
			continue;
		addrs[n] = strndup(c.addr, c.addr_len);
		if (addrs[n] == NULL)
			goto out;
		if (c.orcpt_len > 0 && (orcpts[n] = strndup(c.orcpt, c.orcpt_len)) == NULL) {
			n++;
			goto out;
		}
		dr[n].dr_addr = addrs[n];
		dr[n].dr_action = DSN_FAILED;
		dr[n].dr_status = "5.0.0";
		dr[n].dr_diag = diag;
		dr[n].dr_orcpt = orcpts[n];
		n++;
	}
	if (n == 0) {
		*none_r = true;
		goto out;
	}
	if (r->envid_len > 0 && (envid = strndup(r->envid, r->envid_len)) == NULL)
		goto out;
	queue_id_str(id, ids);
	admin_ops_date(r->arrival, arrival, sizeof(arrival));
	admin_ops_date(o->now, date, sizeof(date));
	memset(&dm, 0, sizeof(dm));
	dm.dm_reporting_mta = o->aq->aq_cfg->hostname;
	dm.dm_to = sender;
	dm.dm_queue_id = ids;
	dm.dm_arrival = arrival;
	dm.dm_date = date;
	dm.dm_rcpts = dr;
	dm.dm_nrcpt = n;
	dm.dm_envid = envid;
	b = delivery_dsn_msg(o->aq->aq_cfg, o->aq->aq_queue, id, &dm, admin_ops_next_id(o->aq),
			     o->now, r->dsn_ret == QRECORD_RET_FULL);
out:
	for (unsigned i = 0; addrs != NULL && i < n; i++) {
		free(addrs[i]);
		free(orcpts[i]);
	}
	free(addrs);
	free(orcpts);
	free(envid);
	free(dr);
	return b;
}

/*
 * A bounced recipient as a "bounced" event, stored with the update (so
 * it exists exactly when the bounce does): no attempt, the operator's
 * reason as the reply, 5.0.0 as in the DSN, no class (an operator's
 * decision, not a receiver's answer). Out of memory leaves the records
 * out, never the bounce.
 */
static void admin_ops_event(struct admin_ops *o, struct admin_ops_upd *up, uint64_t id,
			    const struct qrecord *r, const struct qrcpt *c)
{
	char reply[ADMIN_OPS_REASON_MAX + 64], *sender, *rcpt;
	struct event_rcpt e;

	if (!events_on(o->aq->aq_events) || !up->events_ok)
		return;
	sender = strndup(r->sender ? r->sender : "", r->sender_len);
	rcpt = strndup(c->addr, c->addr_len);
	snprintf(reply, sizeof(reply), "returned by the mail administrator: %s", o->reason);
	e = (struct event_rcpt){
		.er_queue_id = id,
		.er_sender = sender,
		.er_rcpt = rcpt,
		.er_reply = reply,
		.er_ecode = "5.0.0",
		.er_attempt = c->attempts,
		.er_no_attempt = true,
		.er_outcome = EVENT_BOUNCED,
	};
	if (sender == NULL || rcpt == NULL || events_rcpt(o->aq->aq_events, &up->u.qu_events, &e) < 0)
		up->events_ok = false;
	free(sender);
	free(rcpt);
}

/* Build the update for message id from its record (inside queue_record_get). */
static void admin_ops_build(void *ctx, uint64_t id, const struct qrecord *r)
{
	struct admin_ops_upd *up = ctx;
	struct admin_ops *o = up->ops;
	bool held = (r->flags & QRECORD_F_HELD) != 0;
	struct qrcpt c;
	size_t off = 0;
	unsigned n = 0;

	up->found = true;
	up->u.qu_id = id;
	switch (o->op) {
	case ADMIN_OP_HOLD:
		up->skip = held;
		up->u.qu_set_flags = QRECORD_F_HELD;
		return;
	case ADMIN_OP_RELEASE:
		up->skip = !held;
		up->u.qu_clear_flags = QRECORD_F_HELD;
		break;
	case ADMIN_OP_FLUSH:
		up->skip = held;	/* held mail waits for release */
		break;
	case ADMIN_OP_DELETE:
	case ADMIN_OP_BOUNCE:
		break;
	}
	if (up->skip)
		return;
	up->ru = calloc(r->nrcpt ? r->nrcpt : 1, sizeof(*up->ru));
	if (up->ru == NULL) {
		up->skip = true;
		return;
	}
	for (uint32_t i = 0; qrecord_rcpt_next(r, &off, &c); i++) {
		struct queue_rcpt_update *ru = &up->ru[n];

		if (c.state != QRCPT_PENDING)
			continue;
		ru->qru_index = i;
		ru->qru_no_attempt = true;
		if (o->op == ADMIN_OP_DELETE || o->op == ADMIN_OP_BOUNCE) {
			ru->qru_state = QRCPT_FAILED;
			if (o->op == ADMIN_OP_BOUNCE)
				admin_ops_event(o, up, id, r, &c);
		} else {
			ru->qru_state = QRCPT_PENDING;
			ru->qru_next_attempt = o->now;
		}
		n++;
	}
	up->u.qu_rcpts = up->ru;
	up->u.qu_nrcpt = n;
	if (o->op == ADMIN_OP_BOUNCE && r->sender_len > 0) {
		/* Never a bounce to the null sender (RFC 5321 section 4.5.5). */
		bool none = false;

		up->sender = strndup(r->sender, r->sender_len);
		if (up->sender != NULL)
			up->dsn = admin_ops_dsn(o, id, r, up->sender, &none);
		if (up->dsn == NULL && !none) {
			up->skip = true;	/* no DSN, no bounce */
			return;
		}
		up->u.qu_new = up->dsn;	/* NULL: NOTIFY asked for none */
		if (up->dsn != NULL && up->events_ok &&
		    events_dsn(o->aq->aq_events, &up->u.qu_events, id, up->dsn->qm_id, "bounce",
			       up->sender) < 0)
			up->events_ok = false;
	}
}

/* Committer thread: one update is durable (or failed). */
static void admin_ops_done(struct queue_update *u)
{
	struct admin_ops_upd *up = (struct admin_ops_upd *)u;
	struct admin_ops *o = up->ops;

	pthread_mutex_lock(&o->lock);
	o->pending--;
	pthread_cond_broadcast(&o->cond);
	pthread_mutex_unlock(&o->lock);
}

static void admin_ops_log(struct admin_ops *o, uint64_t id, const struct admin_ops_upd *up)
{
	char dsn[40] = "";

	if (up->dsn != NULL)
		snprintf(dsn, sizeof(dsn), " dsn=%016" PRIx64, up->dsn->qm_id);
	log_msg(LOG_INFO, "admin: %s id=%016" PRIx64 "%s%s%s%s", admin_op_names[o->op], id, dsn,
		o->op == ADMIN_OP_BOUNCE ? " reason=\"" : "",
		o->op == ADMIN_OP_BOUNCE ? o->reason : "",
		o->op == ADMIN_OP_BOUNCE ? "\"" : "");
}

/* One round: up to ADMIN_OPS_CHUNK messages while delivery waits. */
static int admin_ops_round(struct admin_ops *o, const uint64_t *ids, size_t n)
{
	struct admin_ops_upd *ups = calloc(n, sizeof(*ups));
	struct delivery *dlv = o->aq->aq_dlv;
	char idt[17];
	int rc = 0;

	if (ups == NULL)
		return -ENOMEM;
	if (dlv != NULL)
		delivery_admin_lock(dlv);
	for (size_t i = 0; i < n; i++) {
		struct admin_ops_upd *up = &ups[i];

		up->ops = o;
		up->events_ok = true;
		queue_id_str(ids[i], idt);
		if (dlv != NULL && delivery_admin_inflight(dlv, ids[i]) && o->op != ADMIN_OP_HOLD &&
		    o->op != ADMIN_OP_RELEASE) {
			json_array_append_new(o->in_flight, json_string(idt));
			up->skip = true;
			continue;
		}
		if (queue_record_get(o->aq->aq_queue, ids[i], admin_ops_build, up) < 0 ||
		    !up->found) {
			json_array_append_new(o->not_found, json_string(idt));
			up->skip = true;
			continue;
		}
		if (up->skip)
			continue;
		up->u.qu_done = admin_ops_done;
		pthread_mutex_lock(&o->lock);
		o->pending++;
		pthread_mutex_unlock(&o->lock);
		queue_submit_update(o->aq->aq_queue, &up->u);
	}
	pthread_mutex_lock(&o->lock);
	while (o->pending > 0)
		pthread_cond_wait(&o->cond, &o->lock);
	pthread_mutex_unlock(&o->lock);
	if (dlv != NULL)
		delivery_admin_unlock(dlv);
	for (size_t i = 0; i < n; i++) {
		struct admin_ops_upd *up = &ups[i];

		if (!up->skip && up->u.qu_status == 0) {
			queue_id_str(ids[i], idt);
			json_array_append_new(o->affected, json_string(idt));
			if (up->dsn != NULL) {
				queue_id_str(up->dsn->qm_id, idt);
				json_array_append_new(o->dsns, json_string(idt));
			}
			admin_ops_log(o, ids[i], up);
		} else if (!up->skip && up->u.qu_status == -ENOENT) {
			queue_id_str(ids[i], idt);
			json_array_append_new(o->not_found, json_string(idt));
		} else if (!up->skip && rc == 0) {
			rc = up->u.qu_status;
		}
		free(up->ru);
		free(up->sender);
		delivery_dsn_msg_free(&up->dsn);
		queue_events_free(&up->u.qu_events);
	}
	free(ups);
	return rc;
}

static void admin_ops_handler(void *ctx, const struct admin_req *req, struct admin_reply *rep)
{
	const struct admin_queue_route *rt = ctx;
	struct admin_ops o = {
		.aq = rt->aqr_aq, .op = (enum admin_op)rt->aqr_op, .now = admin_queue_now_us(),
		.affected = json_array(), .in_flight = json_array(), .not_found = json_array(),
		.dsns = json_array(),
	};
	bool by_ids;
	int rc = 0;

	if (req->ar_rest[0] != '\0' && strcmp(req->ar_rest, "/") != 0) {
		admin_reply_error(rep, MHD_HTTP_NOT_FOUND, "not found", "%s", req->ar_path);
		goto out;
	}
	snprintf(o.reason, sizeof(o.reason), "no reason given");
	pthread_mutex_init(&o.lock, NULL);
	pthread_cond_init(&o.cond, NULL);
	if (admin_ops_select(&o, req, rep) < 0)
		goto out_sync;
	by_ids = json_object_get(req->ar_json, "ids") != NULL;
	for (size_t i = 0; i < o.nids && rc == 0; i += ADMIN_OPS_CHUNK)
		rc = admin_ops_round(&o, o.ids + i, o.nids - i < ADMIN_OPS_CHUNK ?
				     o.nids - i : ADMIN_OPS_CHUNK);
	if (rc < 0) {
		admin_reply_error(rep, MHD_HTTP_SERVICE_UNAVAILABLE, "queue error",
				  "%s (%zu done before it)", queue_strerror(rc),
				  json_array_size(o.affected));
		goto out_sync;
	}
	rep->json = json_pack("{s:s, s:I, s:I, s:O, s:O, s:O}", "action", admin_op_names[o.op],
			      "matched", (json_int_t)o.nids,
			      "affected", (json_int_t)json_array_size(o.affected),
			      "ids", o.affected, "in_flight", o.in_flight,
			      "not_found", o.not_found);
	if (o.op == ADMIN_OP_BOUNCE)
		json_object_set(rep->json, "dsn_ids", o.dsns);
	if (json_array_size(o.affected) == 0 && json_array_size(o.in_flight) > 0) {
		rep->status = MHD_HTTP_CONFLICT;
		json_object_set_new(rep->json, "error", json_string("in flight"));
		json_object_set_new(rep->json, "detail", json_string(
			"being delivered now; try again when the attempt is over"));
	} else if (by_ids && json_array_size(o.affected) == 0 && json_array_size(o.not_found) > 0) {
		rep->status = MHD_HTTP_NOT_FOUND;
		json_object_set_new(rep->json, "error", json_string("no such message"));
	}
out_sync:
	pthread_mutex_destroy(&o.lock);
	pthread_cond_destroy(&o.cond);
out:
	free(o.ids);
	json_decref(o.affected);
	json_decref(o.in_flight);
	json_decref(o.not_found);
	json_decref(o.dsns);
}

int admin_queue_ops_register(struct admin *a, struct admin_queue *aq)
{
	static const char *const paths[] = {
		"/api/v1/queue/hold", "/api/v1/queue/release", "/api/v1/queue/delete",
		"/api/v1/queue/bounce", "/api/v1/queue/flush",
	};

	for (unsigned i = 0; i < ADMIN_QUEUE_OPS; i++) {
		aq->aq_routes[i].aqr_aq = aq;
		aq->aq_routes[i].aqr_op = i;
		if (admin_route_add(a, "POST", paths[i], ADMIN_ROUTE_JSON, 0, admin_ops_handler,
				    &aq->aq_routes[i]) < 0)
			return -1;
	}
	return 0;
}
