/*
 * admin_queue.c: the admin API's read side of the queue: the summary
 * (qshape-like), the filtered, paged list and one message in full. Each
 * request is one LMDB read transaction (queue_admin_foreach_from,
 * queue_record_get, queue_body_get); JSON is built with jansson. See
 * admin_queue.h.
 */
#include "core/admin/admin_queue.h"
#include "core/admin/admin_msg.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "core/bounce/bclass.h"
#include "core/delivery/delivery.h"
#include "core/message/dsn.h"
#include "queue/queue.h"

uint64_t admin_queue_now_us(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

void admin_queue_time(uint64_t us, char *buf, size_t len)
{
	time_t t = (time_t)(us / 1000000u);
	struct tm tm;
	char s[32];

	gmtime_r(&t, &tm);
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
	if (us % 1000000u != 0)
		snprintf(buf, len, "%s.%06" PRIu64 "Z", s, us % 1000000u);
	else
		snprintf(buf, len, "%sZ", s);
}

static json_t *admin_queue_time_json(uint64_t us)
{
	char buf[48];

	if (us == QRECORD_HELD_NEXT || us == 0)
		return json_null();
	admin_queue_time(us, buf, sizeof(buf));
	return json_string(buf);
}

bool admin_queue_inflight(struct admin_queue *aq, uint64_t id)
{
	bool r;

	if (aq->aq_dlv == NULL)
		return false;
	delivery_admin_lock(aq->aq_dlv);
	r = delivery_admin_inflight(aq->aq_dlv, id);
	delivery_admin_unlock(aq->aq_dlv);
	return r;
}

struct admin_queue_args {
	struct admin_filter *f;
	const char *const *extra;
	char err[256];
	int rc;
};

static int admin_queue_arg(void *ctx, const char *name, const char *value)
{
	struct admin_queue_args *a = ctx;
	int r;

	for (const char *const *e = a->extra; e != NULL && *e != NULL; e++)
		if (strcmp(*e, name) == 0)
			return 0;
	r = admin_filter_set(a->f, name, value, a->err, sizeof(a->err));
	if (r == 1)
		snprintf(a->err, sizeof(a->err), "unknown argument '%.40s'", name);
	return r != 0 ? -1 : 0;
}

int admin_queue_filter_args(const struct admin_req *req, struct admin_filter *f,
			    const char *const *extra, struct admin_reply *rep)
{
	struct admin_queue_args a = { .f = f, .extra = extra };

	admin_filter_init(f);
	if (admin_req_args(req, admin_queue_arg, &a) != 0) {
		admin_reply_error(rep, MHD_HTTP_BAD_REQUEST, "bad filter", "%s", a.err);
		return -1;
	}
	return 0;
}

static const char *admin_queue_state_name(unsigned st)
{
	if (st & ADMIN_ST_HELD)
		return "held";
	if (st & ADMIN_ST_INFLIGHT)
		return "inflight";
	return st & ADMIN_ST_READY ? "ready" : "scheduled";
}

static json_t *admin_queue_class_json(uint8_t c)
{
	return c != 0 && bclass_name(c) != NULL ? json_string(bclass_name(c)) : json_null();
}

/* ---- the list ---- */

struct admin_queue_list {
	struct admin_queue *aq;
	const struct admin_filter *f;
	uint64_t now;
	json_t *msgs;
	unsigned n;
	uint64_t last;
	bool more;
};

/* One message as the list shows it. */
static json_t *admin_queue_msg_json(uint64_t id, const struct qrecord *r, uint64_t now,
				    bool inflight)
{
	unsigned pending = 0;
	const struct qrcpt *last = NULL;
	struct qrcpt rc, lastc;
	size_t off = 0;
	char ids[17];
	json_t *j;

	while (qrecord_rcpt_next(r, &off, &rc)) {
		if (rc.state != QRCPT_PENDING)
			continue;
		pending++;
		/* The reply of the pending recipient tried most. */
		if (rc.reply_len > 0 && (last == NULL || rc.attempts > lastc.attempts)) {
			lastc = rc;
			last = &lastc;
		}
	}
	queue_id_str(id, ids);
	j = json_object();
	json_object_set_new(j, "id", json_string(ids));
	json_object_set_new(j, "arrival", admin_queue_time_json(r->arrival));
	json_object_set_new(j, "age_s", json_integer((json_int_t)(now > r->arrival ?
				(now - r->arrival) / 1000000u : 0)));
	json_object_set_new(j, "sender", admin_msg_text(r->sender, r->sender_len));
	json_object_set_new(j, "size", json_integer((json_int_t)r->size));
	json_object_set_new(j, "recipients", json_integer(r->nrcpt));
	json_object_set_new(j, "pending", json_integer(pending));
	json_object_set_new(j, "next_attempt", admin_queue_time_json(r->next_attempt));
	json_object_set_new(j, "state", json_string(admin_queue_state_name(
				admin_filter_state(r, now, inflight))));
	json_object_set_new(j, "held", json_boolean(r->flags & QRECORD_F_HELD));
	json_object_set_new(j, "last_reply", last != NULL ?
			    admin_msg_text(last->reply, last->reply_len) : json_null());
	json_object_set_new(j, "class", admin_queue_class_json(last != NULL ? last->bclass : 0));
	if (r->pool_len > 0)
		json_object_set_new(j, "pool", admin_msg_text(r->pool, r->pool_len));
	return j;
}

/* ---- one message ---- */

struct admin_queue_show {
	json_t *j;
	uint64_t now;
	bool inflight;
};

static void admin_queue_show_rec(void *ctx, uint64_t id, const struct qrecord *r)
{
	struct admin_queue_show *s = ctx;
	json_t *rcpts = json_array();
	struct qrcpt rc;
	size_t off = 0;
	unsigned attempts = 0;

	s->j = admin_queue_msg_json(id, r, s->now, s->inflight);
	json_object_set_new(s->j, "client", admin_msg_text(r->client, r->client_len));
	json_object_set_new(s->j, "helo", admin_msg_text(r->helo, r->helo_len));
	json_object_set_new(s->j, "smtputf8", json_boolean(r->flags & QRECORD_F_SMTPUTF8));
	json_object_set_new(s->j, "eight_bit", json_boolean(r->flags & QRECORD_F_8BIT));
	if (r->strip_len > 0)
		json_object_set_new(s->j, "strip", json_pack("{s:I, s:i}", "offset",
				    (json_int_t)r->strip_off, "length", (int)r->strip_len));
	while (qrecord_rcpt_next(r, &off, &rc)) {
		static const char *const states[] = { "pending", "delivered", "failed" };

		attempts += rc.attempts;
		json_array_append_new(rcpts, json_pack("{s:o, s:s, s:i, s:o, s:o, s:o}",
				      "address", admin_msg_text(rc.addr, rc.addr_len),
				      "state", rc.state <= QRCPT_FAILED ? states[rc.state] : "?",
				      "attempts", (int)rc.attempts,
				      "next_attempt", rc.state == QRCPT_PENDING ?
				      admin_queue_time_json(rc.next_attempt) : json_null(),
				      "last_reply", rc.reply_len > 0 ?
				      admin_msg_text(rc.reply, rc.reply_len) : json_null(),
				      "class", admin_queue_class_json(rc.bclass)));
	}
	json_object_set_new(s->j, "attempts", json_integer(attempts));
	json_object_set_new(s->j, "recipients", rcpts);
}

static void admin_queue_show(struct admin_queue *aq, const struct admin_req *req,
			     struct admin_reply *rep)
{
	struct admin_queue_show s = { .now = admin_queue_now_us() };
	const char *arg = admin_req_arg(req, "body");
	struct queue_body b;
	uint64_t id;
	int rc;

	if (queue_id_parse(req->ar_rest + 1, &id) < 0 || id == 0) {
		admin_reply_error(rep, MHD_HTTP_BAD_REQUEST, "bad id",
				  "'%.40s' is not a queue id (16 hex digits)", req->ar_rest + 1);
		return;
	}
	if (arg != NULL && strcmp(arg, "0") != 0 && strcmp(arg, "1") != 0 &&
	    strcmp(arg, "raw") != 0) {
		admin_reply_error(rep, MHD_HTTP_BAD_REQUEST, "bad argument", "body: 0, 1 or raw");
		return;
	}
	s.inflight = admin_queue_inflight(aq, id);
	rc = queue_record_get(aq->aq_queue, id, admin_queue_show_rec, &s);
	if (rc == -ENOENT || (rc == 0 && s.j == NULL)) {
		json_decref(s.j);
		admin_reply_error(rep, MHD_HTTP_NOT_FOUND, "no such message", "%s",
				  req->ar_rest + 1);
		return;
	}
	if (rc < 0) {
		json_decref(s.j);
		admin_reply_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "queue error", "%s",
				  queue_strerror(rc));
		return;
	}
	if (arg != NULL && strcmp(arg, "raw") == 0) {
		/* The stored message itself, byte for byte. */
		json_decref(s.j);
		rc = queue_body_get(aq->aq_queue, id, &b);
		if (rc < 0) {
			admin_reply_error(rep, rc == -ENOENT ? MHD_HTTP_NOT_FOUND :
					  MHD_HTTP_INTERNAL_SERVER_ERROR, "no body", "%s",
					  queue_strerror(rc));
			return;
		}
		rep->raw = malloc(b.qb_len ? b.qb_len : 1);
		if (rep->raw == NULL) {
			queue_body_release(&b);
			admin_reply_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", NULL);
			return;
		}
		memcpy(rep->raw, b.qb_data, b.qb_len);
		rep->raw_len = b.qb_len;
		rep->raw_type = "message/rfc822";
		queue_body_release(&b);
		return;
	}
	if (queue_body_get(aq->aq_queue, id, &b) == 0) {
		json_object_set_new(s.j, "headers", admin_msg_headers(b.qb_data, b.qb_len));
		if (arg != NULL && strcmp(arg, "1") == 0)
			json_object_set_new(s.j, "body", admin_msg_text(b.qb_data, b.qb_len));
		queue_body_release(&b);
	}
	rep->json = s.j;
}

static int admin_queue_list_one(void *ctx, uint64_t id, const struct qrecord *r,
				const void *body, size_t body_len)
{
	struct admin_queue_list *l = ctx;
	bool inflight;

	(void)body;
	(void)body_len;
	if (id <= l->f->af_cursor)
		return 0;
	inflight = admin_queue_inflight(l->aq, id);
	if (!admin_filter_match(l->f, id, r, l->now, inflight))
		return 0;
	if (l->n == l->f->af_limit) {
		l->more = true;
		return 1;
	}
	json_array_append_new(l->msgs, admin_queue_msg_json(id, r, l->now, inflight));
	l->n++;
	l->last = id;
	return 0;
}

static void admin_queue_list(void *ctx, const struct admin_req *req, struct admin_reply *rep)
{
	struct admin_queue *aq = ctx;
	struct admin_filter f;
	struct admin_queue_list l = { .aq = aq, .f = &f, .now = admin_queue_now_us() };
	char ids[17];
	int rc;

	if (req->ar_rest[0] == '/' && req->ar_rest[1] != '\0') {
		admin_queue_show(aq, req, rep);
		return;
	}
	if (admin_queue_filter_args(req, &f, NULL, rep) < 0)
		return;
	l.msgs = json_array();
	rc = queue_admin_foreach_from(aq->aq_queue, f.af_cursor + (f.af_cursor != UINT64_MAX),
				      admin_queue_list_one, &l);
	if (rc < 0) {
		json_decref(l.msgs);
		admin_reply_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "queue error", "%s",
				  queue_strerror(rc));
		return;
	}
	queue_id_str(l.last, ids);
	rep->json = json_pack("{s:o, s:I, s:o}", "messages", l.msgs, "count", (json_int_t)l.n,
			      "next_cursor", l.more ? json_string(ids) : json_null());
}

/* ---- the summary ---- */

#define ADMIN_SUM_BUCKETS 7
#define ADMIN_SUM_TOP_DEFAULT 20u
#define ADMIN_SUM_TOP_MAX 1000u

/* Upper bounds of the age buckets in minutes, qshape's; the last is open. */
static const unsigned admin_sum_bounds[ADMIN_SUM_BUCKETS - 1] = { 5, 10, 20, 40, 80, 160 };
static const char *const admin_sum_names[ADMIN_SUM_BUCKETS] = {
	"0-5m", "5-10m", "10-20m", "20-40m", "40-80m", "80-160m", "160m+",
};

enum admin_sum_by { ADMIN_SUM_DOMAIN, ADMIN_SUM_SITE, ADMIN_SUM_SOURCE, ADMIN_SUM_SENDER_DOMAIN };

struct admin_sum_row {
	char *sr_key;
	uint64_t sr_count[ADMIN_SUM_BUCKETS];
	uint64_t sr_total;
	uint64_t sr_last_id;		/* counts a message once per row */
};

struct admin_sum {
	struct admin_queue *aq;
	const struct admin_filter *f;
	enum admin_sum_by by;
	uint64_t now;
	struct admin_sum_row *rows;	/* open addressing; sr_key NULL = free */
	size_t cap, n;
	uint64_t totals[ADMIN_SUM_BUCKETS], total;
	bool oom;
};

static uint32_t admin_sum_hash(const char *k, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)tolower((unsigned char)k[i])) * 16777619u;
	return h;
}

static struct admin_sum_row *admin_sum_find(struct admin_sum *s, const char *k, size_t len)
{
	size_t i;

	if (s->n * 2 >= s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		struct admin_sum_row *rows = calloc(cap, sizeof(*rows));

		if (rows == NULL) {
			s->oom = true;
			return NULL;
		}
		for (size_t j = 0; j < s->cap; j++) {
			struct admin_sum_row *r = &s->rows[j];

			if (r->sr_key == NULL)
				continue;
			i = admin_sum_hash(r->sr_key, strlen(r->sr_key)) & (cap - 1);
			while (rows[i].sr_key != NULL)
				i = (i + 1) & (cap - 1);
			rows[i] = *r;
		}
		free(s->rows);
		s->rows = rows;
		s->cap = cap;
	}
	i = admin_sum_hash(k, len) & (s->cap - 1);
	while (s->rows[i].sr_key != NULL) {
		if (strlen(s->rows[i].sr_key) == len && strncasecmp(s->rows[i].sr_key, k, len) == 0)
			return &s->rows[i];
		i = (i + 1) & (s->cap - 1);
	}
	s->rows[i].sr_key = strndup(k, len);
	if (s->rows[i].sr_key == NULL) {
		s->oom = true;
		return NULL;
	}
	for (char *p = s->rows[i].sr_key; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	s->n++;
	return &s->rows[i];
}

static void admin_sum_add(struct admin_sum *s, uint64_t id, const char *k, size_t len,
			  unsigned bucket)
{
	struct admin_sum_row *r = admin_sum_find(s, k, len);

	if (r == NULL || r->sr_last_id == id)
		return;
	r->sr_last_id = id;
	r->sr_count[bucket]++;
	r->sr_total++;
}

static const char *admin_sum_domain(const char *addr, size_t len, size_t *dlen_r)
{
	const char *at = memrchr(addr, '@', len);

	if (at == NULL) {
		*dlen_r = len;	/* a local name, as postmaster */
		return addr;
	}
	*dlen_r = (size_t)(addr + len - at - 1);
	return at + 1;
}

static int admin_sum_one(void *ctx, uint64_t id, const struct qrecord *r, const void *body,
			 size_t body_len)
{
	struct admin_sum *s = ctx;
	uint64_t age_m = s->now > r->arrival ? (s->now - r->arrival) / 60000000u : 0;
	unsigned b = 0;
	struct qrcpt rc;
	size_t off = 0, dlen;
	const struct config *cfg;
	const char *d;

	(void)body;
	(void)body_len;
	if (s->f->af_selects &&
	    !admin_filter_match(s->f, id, r, s->now, admin_queue_inflight(s->aq, id)))
		return 0;
	while (b < ADMIN_SUM_BUCKETS - 1 && age_m >= admin_sum_bounds[b])
		b++;
	s->totals[b]++;
	s->total++;
	switch (s->by) {
	case ADMIN_SUM_SOURCE:
		if (r->pool_len > 0)
			admin_sum_add(s, id, r->pool, r->pool_len, b);
		else
			admin_sum_add(s, id, "default", 7, b);
		break;
	case ADMIN_SUM_SENDER_DOMAIN:
		if (r->sender_len == 0) {
			admin_sum_add(s, id, "<>", 2, b);
		} else {
			d = admin_sum_domain(r->sender, r->sender_len, &dlen);
			admin_sum_add(s, id, d, dlen, b);
		}
		break;
	case ADMIN_SUM_SITE:
		/* The next hop without DNS: the relay host when there is one
		 * (delivery's, which a reload may have changed). */
		cfg = s->aq->aq_dlv != NULL ? delivery_config(s->aq->aq_dlv) : s->aq->aq_cfg;
		if (cfg->relayhost != NULL && cfg->relayhost[0] != '\0') {
			admin_sum_add(s, id, cfg->relayhost, strlen(cfg->relayhost), b);
			break;
		}
		/* fall through */
	case ADMIN_SUM_DOMAIN:
		while (qrecord_rcpt_next(r, &off, &rc)) {
			if (rc.state != QRCPT_PENDING)
				continue;
			d = admin_sum_domain(rc.addr, rc.addr_len, &dlen);
			admin_sum_add(s, id, d, dlen, b);
		}
		break;
	}
	return s->oom ? 1 : 0;
}

static int admin_sum_cmp(const void *a, const void *b)
{
	const struct admin_sum_row *x = *(const struct admin_sum_row *const *)a;
	const struct admin_sum_row *y = *(const struct admin_sum_row *const *)b;

	if (x->sr_total != y->sr_total)
		return x->sr_total > y->sr_total ? -1 : 1;
	return strcmp(x->sr_key, y->sr_key);
}

static json_t *admin_sum_counts(const uint64_t *c, uint64_t total)
{
	json_t *o = json_object();

	json_object_set_new(o, "total", json_integer((json_int_t)total));
	for (unsigned i = 0; i < ADMIN_SUM_BUCKETS; i++)
		json_object_set_new(o, admin_sum_names[i], json_integer((json_int_t)c[i]));
	return o;
}

static json_t *admin_sum_json(struct admin_sum *s, unsigned top, const char *by)
{
	struct admin_sum_row **sorted = calloc(s->n ? s->n : 1, sizeof(*sorted));
	uint64_t other[ADMIN_SUM_BUCKETS] = { 0 }, other_total = 0;
	json_t *rows = json_array(), *buckets = json_array(), *o;
	size_t n = 0;

	if (sorted == NULL)
		return NULL;
	for (size_t i = 0; i < s->cap; i++)
		if (s->rows[i].sr_key != NULL)
			sorted[n++] = &s->rows[i];
	qsort(sorted, n, sizeof(*sorted), admin_sum_cmp);
	for (size_t i = 0; i < n; i++) {
		if (i < top) {
			o = admin_sum_counts(sorted[i]->sr_count, sorted[i]->sr_total);
			json_object_set_new(o, "key", admin_msg_text(sorted[i]->sr_key,
								     strlen(sorted[i]->sr_key)));
			json_array_append_new(rows, o);
			continue;
		}
		for (unsigned b = 0; b < ADMIN_SUM_BUCKETS; b++)
			other[b] += sorted[i]->sr_count[b];
		other_total += sorted[i]->sr_total;
	}
	if (n > top) {
		o = admin_sum_counts(other, other_total);
		json_object_set_new(o, "key", json_string("other"));
		json_object_set_new(o, "other_keys", json_integer((json_int_t)(n - top)));
		json_array_append_new(rows, o);
	}
	free(sorted);
	for (unsigned b = 0; b < ADMIN_SUM_BUCKETS; b++)
		json_array_append_new(buckets, json_string(admin_sum_names[b]));
	return json_pack("{s:s, s:o, s:o, s:o}", "by", by, "buckets", buckets, "rows", rows,
			 "totals", admin_sum_counts(s->totals, s->total));
}

static void admin_queue_summary(void *ctx, const struct admin_req *req, struct admin_reply *rep)
{
	static const char *const extra[] = { "by", "top", NULL };
	static const char *const bys[] = { "domain", "site", "source", "sender_domain" };
	struct admin_queue *aq = ctx;
	struct admin_filter f;
	struct admin_sum s = { .aq = aq, .f = &f, .now = admin_queue_now_us() };
	const char *by = admin_req_arg(req, "by"), *top = admin_req_arg(req, "top");
	unsigned ntop = ADMIN_SUM_TOP_DEFAULT;
	size_t i;
	int rc;

	if (req->ar_rest[0] != '\0' && strcmp(req->ar_rest, "/") != 0) {
		admin_reply_error(rep, MHD_HTTP_NOT_FOUND, "not found", "%s", req->ar_path);
		return;
	}
	if (by == NULL)
		by = "domain";
	for (i = 0; i < sizeof(bys) / sizeof(bys[0]) && strcmp(bys[i], by) != 0; i++)
		;
	if (i == sizeof(bys) / sizeof(bys[0])) {
		admin_reply_error(rep, MHD_HTTP_BAD_REQUEST, "bad filter",
				  "by: domain, site, source or sender_domain");
		return;
	}
	s.by = (enum admin_sum_by)i;
	if (top != NULL) {
		char *end;
		unsigned long v = strtoul(top, &end, 10);

		if (top[0] < '0' || top[0] > '9' || *end != '\0' || v == 0 ||
		    v > ADMIN_SUM_TOP_MAX) {
			admin_reply_error(rep, MHD_HTTP_BAD_REQUEST, "bad filter",
					  "top: a number from 1 to %u", ADMIN_SUM_TOP_MAX);
			return;
		}
		ntop = (unsigned)v;
	}
	if (admin_queue_filter_args(req, &f, extra, rep) < 0)
		return;
	rc = queue_admin_foreach(aq->aq_queue, admin_sum_one, &s);
	if (rc == 0 && !s.oom)
		rep->json = admin_sum_json(&s, ntop, by);
	for (i = 0; i < s.cap; i++)
		free(s.rows[i].sr_key);
	free(s.rows);
	if (rc < 0 || rep->json == NULL)
		admin_reply_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "queue error", "%s",
				  rc < 0 ? queue_strerror(rc) : "out of memory");
}

int admin_queue_register(struct admin *a, struct admin_queue *aq)
{
	pthread_mutex_init(&aq->aq_id_lock, NULL);
	if (admin_route_add(a, "GET", "/api/v1/queue/summary", 0, 0, admin_queue_summary, aq) < 0 ||
	    admin_route_add(a, "GET", "/api/v1/queue/messages", 0, 0, admin_queue_list, aq) < 0)
		return -1;
	return admin_queue_ops_register(a, aq);
}
