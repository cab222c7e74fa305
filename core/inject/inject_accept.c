/*
 * inject_accept.c: one injection request from JSON to the queue. The
 * addresses are checked with the SMTP command parser, the recipients
 * against the suppression list, each message (one per recipient when
 * there are per-recipient substitutions, else one for all) is built,
 * checked by the SMTP body decoder (size, line length, hop count, the
 * pool header), given its pool, trace header and DKIM signatures, and
 * then every message of the request goes to the group committer at once.
 * The answer is 202 only once all of them are on stable storage; a
 * failure before the submit queues nothing.
 *
 * Everything runs on the request's connection thread; it waits for the
 * signing pool and the committer through an inject_wait.
 */
#include "core/inject/inject_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "core/base/log.h"
#include "core/bounce/bclass.h"
#include "core/dkim/dkim_job.h"
#include "core/dkim/dkim_table.h"
#include "core/events/events.h"
#include "core/shaping/shp_holder.h"
#include "core/shaping/shp_rules.h"
#include "core/wire/smtp_cmd.h"
#include "core/wire/smtp_data.h"

/* A pool header value longer than this names no pool (as in SMTP). */
#define INJECT_POOL_VALUE_MAX 128u

/* One message of the request, from build to commit. */
struct inject_msg {
	struct queue_msg im_q;
	struct qrcpt *im_rcpts;		/* borrowed addresses */
	uint32_t im_nrcpt;
	struct inject_buf im_body;
	char *im_prefix;		/* signatures + trace fields */
	size_t im_prefix_len;
	struct iovec im_iov[2];
	struct dkim_job *im_sign;
	const char *im_pool;		/* into the request's rules */
	uint64_t im_strip_off;
	uint32_t im_strip_len;
	char im_ids[17];
};

struct inject_ctx {
	struct inject *c_inj;
	const struct inject_who *c_who;
	const struct config *c_cfg;
	struct inject_req c_req;
	struct shp_rules *c_rules;	/* a reference; NULL: no rules */
	struct qrcpt *c_ok;		/* recipients taken */
	uint32_t c_nok, c_ndropped;
	json_t *c_rejected;		/* [{"email", "reason"}] */
	struct inject_msg *c_msgs;
	unsigned c_nmsg;
	bool c_utf8;			/* an address needs SMTPUTF8 */
	struct inject_wait c_wait;
};

void inject_answer_error(struct inject_answer *a, unsigned status, const char *msg)
{
	json_t *o = json_pack("{s:s}", "error", msg);

	a->a_status = status;
	a->a_json = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
}

static void inject_nothing(struct work_job *j)
{
	(void)j;	/* jobs are taken from the sink by the waiting thread */
}

static uint64_t inject_now_us(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

/* Queue ids as the workers make them (server_next_id), in a lane of
 * their own: the low octet 0xff, which a worker has only with 256 of
 * them. */
static uint64_t inject_next_id(struct inject *inj)
{
	uint64_t us = inject_now_us();

	pthread_mutex_lock(&inj->i_id_lock);
	if (us <= inj->i_last_us)
		us = inj->i_last_us + 1;
	inj->i_last_us = us;
	pthread_mutex_unlock(&inj->i_id_lock);
	return us << 8 | 0xffu;
}

/* Whether addr (len octets) is a mailbox as MAIL FROM / RCPT TO take it;
 * *utf8_r: it needs SMTPUTF8. Returns NULL or why not. */
static const char *inject_addr_check(const struct config *cfg, const char *addr, size_t len,
				     bool rcpt, bool *utf8_r)
{
	static const struct smtp_limits lim = SMTP_LIMITS_RFC5321;
	char line[600];
	struct smtp_cmd cmd;
	bool eight = false;
	int n, rc;

	if (len > lim.path)
		return "address too long";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)addr[i];

		if (c <= ' ' || c == '<' || c == '>' || c == 0x7f)
			return "bad address syntax";
		eight |= c >= 0x80;
	}
	if (eight && !cfg->smtputf8)
		return "address needs SMTPUTF8, which is off";
	n = snprintf(line, sizeof(line), "%s:<%.*s>%s", rcpt ? "RCPT TO" : "MAIL FROM", (int)len,
		     addr, eight && !rcpt ? " SMTPUTF8" : "");
	rc = smtp_cmd_parse(line, (size_t)n, &lim, &cmd);
	if (rc != SMTP_CMD_OK)
		return smtp_cmd_strerror(rc) + 10;	/* past "501 5.1.3 " */
	if (cmd.path.len != len || (rcpt && len == 0))
		return "bad address syntax";
	*utf8_r |= eight;
	return NULL;
}

static void inject_reject(struct inject_ctx *c, const struct inject_rcpt *r, const char *why)
{
	json_array_append_new(c->c_rejected, json_pack("{s:s%,s:s}", "email", r->r_email,
						       r->r_len, "reason", why));
	atomic_fetch_add_explicit(&c->c_inj->i_rejected_rcpts, 1, memory_order_relaxed);
}

/* The suppression list, as the SMTP server consults it at RCPT: true
 * when the recipient is not to be queued (refused: in c_rejected;
 * dropped: counted). */
static bool inject_suppressed(struct inject_ctx *c, const struct inject_rcpt *r)
{
	int mode = config_suppression_parse(c->c_cfg->suppression);
	const char *at = strrchr(c->c_req.q_sender, '@');
	struct queue_suppress hit;
	const char *cls;
	char why[160];

	if (mode <= CONFIG_SUPPRESSION_OFF ||
	    queue_suppress_lookup(c->c_inj->i_env.ie_queue, at != NULL ? at + 1 : "", r->r_email,
				  r->r_len, (uint64_t)time(NULL), &hit) != 1)
		return false;
	cls = bclass_name(hit.qs_class);
	log_msg(LOG_INFO, "suppressed client=%s from=<%s> to=<%s> class=%s scope=%s action=%s"
		" via=http", c->c_who->w_addr, c->c_req.q_sender, r->r_email, cls ? cls : "other",
		hit.qs_scope_len ? "sender_domain" : "global",
		mode == CONFIG_SUPPRESSION_DROP ? "drop" : "refuse");
	if (events_on(c->c_inj->i_env.ie_events)) {
		struct queue_event *ev = NULL;

		if (events_suppressed(c->c_inj->i_env.ie_events, &ev, c->c_req.q_sender,
				      r->r_email, r->r_len,
				      mode == CONFIG_SUPPRESSION_DROP ? "drop" : "refuse",
				      cls ? cls : "other",
				      hit.qs_scope_len ? "sender_domain" : "global") == 0)
			events_submit(c->c_inj->i_env.ie_events, ev);
		else
			queue_events_free(&ev);
	}
	if (mode == CONFIG_SUPPRESSION_DROP) {
		c->c_ndropped++;
		return true;
	}
	snprintf(why, sizeof(why), "recipient suppressed (%s)", cls ? cls : "other");
	inject_reject(c, r, why);
	return true;
}

/* Sender and recipients: 0, or -1 with the answer set. */
static int inject_check_addrs(struct inject_ctx *c, struct inject_answer *a)
{
	const struct inject_req *q = &c->c_req;
	const char *why;
	char msg[400];

	why = inject_addr_check(c->c_cfg, q->q_sender, q->q_sender_len, false, &c->c_utf8);
	if (why != NULL) {
		snprintf(msg, sizeof(msg), "envelope_sender: %s: \"%.256s\"", why, q->q_sender);
		inject_answer_error(a, 400, msg);
		return -1;
	}
	c->c_ok = calloc(q->q_nrcpt, sizeof(*c->c_ok));
	if (c->c_ok == NULL) {
		inject_answer_error(a, 503, "out of memory");
		a->a_retry = true;
		return -1;
	}
	for (unsigned i = 0; i < q->q_nrcpt; i++) {
		const struct inject_rcpt *r = &q->q_rcpts[i];

		why = inject_addr_check(c->c_cfg, r->r_email, r->r_len, true, &c->c_utf8);
		if (why != NULL) {
			snprintf(msg, sizeof(msg), "recipients[%u].email: %s: \"%.256s\"", i, why,
				 r->r_email);
			inject_answer_error(a, 400, msg);
			return -1;
		}
	}
	for (unsigned i = 0; i < q->q_nrcpt; i++) {
		const struct inject_rcpt *r = &q->q_rcpts[i];
		struct qrcpt *rc = &c->c_ok[c->c_nok];

		if (inject_suppressed(c, r))
			continue;
		rc->addr = r->r_email;
		rc->addr_len = (uint16_t)r->r_len;
		rc->state = QRCPT_PENDING;
		c->c_nok++;
	}
	return 0;
}

static void inject_emit_none(void *ctx, const char *p, size_t len)
{
	(void)ctx;
	(void)p;
	(void)len;
}

/* The decoder's checks and the pool: 0, or -1 with the answer set. */
static int inject_check_body(struct inject_ctx *c, struct inject_msg *im, uint32_t *flags_r,
			     uint16_t *hops_r, struct inject_answer *a)
{
	struct smtp_data d;
	const char *hdr = c->c_rules != NULL ? shp_rules_pool_header(c->c_rules) : NULL;
	const char *refusal, *at;
	const struct shp_pool *p;
	uint64_t off;
	uint32_t len;
	bool done = false;
	char value[INJECT_POOL_VALUE_MAX], msg[300];

	smtp_data_init(&d, SMTP_DATA_RAW, c->c_cfg->max_message_size);
	if (hdr != NULL)
		smtp_data_want_field(&d, hdr);
	smtp_data_feed(&d, im->im_body.b_p, im->im_body.b_len, inject_emit_none, NULL, &done);
	*flags_r = smtp_data_finish(&d);
	*hops_r = d.hops;
	refusal = smtp_data_refusal(*flags_r);
	if (refusal != NULL) {
		snprintf(msg, sizeof(msg), "message refused: %s", refusal + 10);
		inject_answer_error(a, (*flags_r & SMTP_DATA_F_TOO_BIG) ? 413 : 400, msg);
		return -1;
	}
	if (c->c_rules == NULL)
		return 0;
	if (smtp_data_field(&d, &off, &len)) {
		int vl = smtp_data_field_value(im->im_body.b_p + off, len, value, sizeof(value));

		p = vl > 0 ? shp_rules_pool(c->c_rules, value) : NULL;
		if (p == NULL) {
			snprintf(msg, sizeof(msg), "unknown pool \"%.64s\"", vl > 0 ? value : "");
			inject_answer_error(a, 400, msg);
			return -1;
		}
		im->im_pool = p->sp_name;
		im->im_strip_off = off;
		im->im_strip_len = len;
		return 0;
	}
	at = strrchr(c->c_req.q_sender, '@');
	p = shp_rules_pool_select(c->c_rules, c->c_who->w_user, c->c_inj->i_listener,
				  at ? at + 1 : "");
	im->im_pool = p->sp_name;
	return 0;
}

/* Received: ("with HTTP", "HTTPA" when authenticated), and Date: and
 * Message-ID: when a raw message lacks them. */
static int inject_prefix(struct inject_ctx *c, struct inject_msg *im, uint32_t flags,
			 const char *date)
{
	const char *user = c->c_who->w_user;
	size_t cap = 600 + strlen(c->c_cfg->hostname) * 2 + (user ? strlen(user) : 0) +
		     (im->im_nrcpt == 1 ? im->im_rcpts[0].addr_len : 0);
	int n;

	im->im_prefix = malloc(cap);
	if (im->im_prefix == NULL)
		return -1;
	n = snprintf(im->im_prefix, cap, "Received: from [%s] ([%s])%s%.250s%s\r\n\tby %s"
		     " (ringmta) with %s id %s", c->c_who->w_addr, c->c_who->w_addr,
		     user ? "\r\n\t(Authenticated sender: " : "", user ? user : "",
		     user ? ")" : "", c->c_cfg->hostname, user ? "HTTPA" : "HTTP", im->im_ids);
	if (im->im_nrcpt == 1)
		n += snprintf(im->im_prefix + n, cap - (size_t)n, "\r\n\tfor <%.*s>",
			      (int)im->im_rcpts[0].addr_len, im->im_rcpts[0].addr);
	n += snprintf(im->im_prefix + n, cap - (size_t)n, "; %s\r\n", date);
	if (!(flags & SMTP_DATA_F_HAS_DATE))
		n += snprintf(im->im_prefix + n, cap - (size_t)n, "Date: %s\r\n", date);
	if (!(flags & SMTP_DATA_F_HAS_MSGID))
		n += snprintf(im->im_prefix + n, cap - (size_t)n, "Message-ID: <%s@%s>\r\n",
			      im->im_ids, c->c_cfg->hostname);
	im->im_prefix_len = (size_t)n;
	return 0;
}

/* Build and check message im for rcpt (NULL: every recipient). */
static int inject_build_one(struct inject_ctx *c, struct inject_msg *im,
			    const struct inject_rcpt *rcpt, struct inject_answer *a)
{
	const struct config *cfg = c->c_cfg;
	struct queue_msg *m = &im->im_q;
	char date[40], msgid[300];
	struct inject_mime_params p = { .date = date, .msgid = msgid, .boundary_seed = im->im_ids };
	time_t now = time(NULL);
	uint32_t flags;
	uint16_t hops;
	struct tm tm;

	m->qm_id = inject_next_id(c->c_inj);
	queue_id_str(m->qm_id, im->im_ids);
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	snprintf(msgid, sizeof(msgid), "<%s@%s>", im->im_ids, cfg->hostname);
	im->im_body.b_max = cfg->max_message_size;
	if (inject_mime_build(&c->c_req, rcpt, &p, &im->im_body) < 0) {
		inject_answer_error(a, im->im_body.b_over ? 413 : 503, im->im_body.b_over ?
				    "message refused: message size exceeds max_message_size" :
				    "out of memory");
		a->a_retry = !im->im_body.b_over;
		return -1;
	}
	if (inject_check_body(c, im, &flags, &hops, a) < 0)
		return -1;
	if (inject_prefix(c, im, flags, date) < 0) {
		inject_answer_error(a, 503, "out of memory");
		a->a_retry = true;
		return -1;
	}
	m->qm_rec.arrival = inject_now_us();
	m->qm_rec.next_attempt = m->qm_rec.arrival;
	m->qm_rec.flags = ((flags & SMTP_DATA_F_8BIT) ? QRECORD_F_8BIT : 0) |
			  (c->c_utf8 ? QRECORD_F_SMTPUTF8 : 0) |
			  (hops + 1u >= QRECORD_HOPCOUNT_LIMIT ? QRECORD_F_LOOPING : 0);
	m->qm_rec.sender = c->c_req.q_sender;
	m->qm_rec.sender_len = (uint16_t)c->c_req.q_sender_len;
	m->qm_rec.client = c->c_who->w_addr;
	m->qm_rec.client_len = (uint16_t)strlen(c->c_who->w_addr);
	m->qm_rec.helo = "";
	for (uint32_t i = 0; i < im->im_nrcpt; i++)
		im->im_rcpts[i].next_attempt = m->qm_rec.arrival;
	m->qm_rec.nrcpt = im->im_nrcpt;
	m->qm_rec.rcpts = im->im_rcpts;
	return 0;
}

/* The signing job of im, or NULL when nothing is signed. */
static struct dkim_job *inject_sign_job(struct inject_ctx *c, struct inject_msg *im,
					struct dkim_table *tab)
{
	struct dkim_job_params p = {
		.table = tab,
		.sender = c->c_req.q_sender,
		.user = c->c_who->w_user,
		.listener = c->c_inj->i_listener,
		.rcpt = im->im_nrcpt == 1 ? im->im_rcpts[0].addr : NULL,
		.nrcpt = im->im_nrcpt,
		.queue_id = im->im_q.qm_id,
		.skip_header = c->c_rules != NULL ? shp_rules_pool_header(c->c_rules) : NULL,
	};

	dkim_job_params_config(&p, c->c_cfg);
	return dkim_job_new(&p, im->im_iov, 2, im, inject_nothing);
}

/* Sign every message in the signing pool, as many at once as it takes;
 * 0, or -1 with the answer set (nothing is queued then). */
static int inject_sign_all(struct inject_ctx *c, struct inject_answer *a)
{
	struct inject *inj = c->c_inj;
	struct dkim_table *tab;
	unsigned next = 0, out = 0;

	if (inj->i_env.ie_sign_pool == NULL || inj->i_env.ie_sign_table == NULL ||
	    (tab = inj->i_env.ie_sign_table(inj->i_env.ie_ctx)) == NULL)
		return 0;
	for (unsigned i = 0; i < c->c_nmsg; i++) {
		c->c_msgs[i].im_sign = inject_sign_job(c, &c->c_msgs[i], tab);
		if (c->c_msgs[i].im_sign == NULL) {
			dkim_table_unref(&tab);
			inject_answer_error(a, 503, "out of memory");
			a->a_retry = true;
			return -1;
		}
		c->c_msgs[i].im_sign->dj_work.wj_sink = &c->c_wait.w_jobs;
	}
	dkim_table_unref(&tab);
	while (next < c->c_nmsg || out > 0) {
		while (next < c->c_nmsg &&
		       work_pool_submit(inj->i_env.ie_sign_pool, &c->c_msgs[next].im_sign->dj_work) == 0) {
			next++;
			out++;
		}
		if (out == 0)
			break;	/* the pool takes none: not one of ours to wait for */
		inject_wait_sleep(&c->c_wait);
		for (struct work_job *j = work_sink_take(&c->c_wait.w_jobs); j != NULL; j = j->wj_next)
			out--;
	}
	if (next < c->c_nmsg) {
		inject_answer_error(a, 503, "signing unavailable, try again later");
		a->a_retry = true;
		return -1;
	}
	for (unsigned i = 0; i < c->c_nmsg; i++) {
		struct inject_msg *im = &c->c_msgs[i];
		struct dkim_job *j = im->im_sign;
		char *np;

		if (j->dj_work.wj_cancelled || j->dj_status == DKIM_JOB_REFUSED) {
			bool temp = j->dj_work.wj_cancelled || j->dj_reply[0] == '4';

			log_msg(LOG_INFO, "reject id=%s client=%s from=<%s> reason=\"%s\" via=http",
				im->im_ids, c->c_who->w_addr, c->c_req.q_sender,
				j->dj_work.wj_cancelled ? "signing cancelled" : j->dj_reply);
			inject_answer_error(a, temp ? 503 : 403, j->dj_work.wj_cancelled ?
					    "signing unavailable" : j->dj_reply + 4);
			a->a_retry = temp;
			return -1;
		}
		if (j->dj_note[0] != '\0')
			log_msg(LOG_INFO, "dkim: id=%s %s", im->im_ids, j->dj_note);
		if (j->dj_prefix == NULL)
			continue;
		np = realloc(j->dj_prefix, j->dj_prefix_len + im->im_prefix_len);
		if (np == NULL) {
			inject_answer_error(a, 503, "out of memory");
			a->a_retry = true;
			return -1;
		}
		memcpy(np + j->dj_prefix_len, im->im_prefix, im->im_prefix_len);
		free(im->im_prefix);
		im->im_prefix = np;
		im->im_prefix_len += j->dj_prefix_len;
		j->dj_prefix = NULL;
	}
	return 0;
}

/* The reception event, stored with the message in its commit
 * (core/events), as SMTP's. */
static void inject_event(struct inject_ctx *c, struct inject_msg *im)
{
	struct event_origin o = {
		.eo_client = c->c_who->w_addr,
		.eo_identity = c->c_who->w_user,
		.eo_listener = "http",
	};

	if (events_on(c->c_inj->i_env.ie_events))
		(void)events_reception(c->c_inj->i_env.ie_events, &im->im_q, &o);
}

/* Where a committed message is accepted: the one place to report it in
 * the log (its reception event was stored with it). */
static void inject_committed(struct inject_ctx *c, const struct inject_msg *im)
{
	const struct inject_who *who = c->c_who;

	log_msg(LOG_INFO, "queued id=%s client=%s%s%s from=<%s> nrcpt=%u size=%" PRIu64
		" via=http%s%s", im->im_ids, who->w_addr, who->w_user ? " user=" : "",
		who->w_user ? who->w_user : "", c->c_req.q_sender, im->im_nrcpt,
		im->im_q.qm_rec.size, im->im_sign ? " dkim=" : "", im->im_sign ? im->im_sign->dj_sig : "");
}

/* Submit every message and wait for all of them: the answer. */
static void inject_commit_all(struct inject_ctx *c, struct inject_answer *a)
{
	struct inject *inj = c->c_inj;
	json_t *ids = json_array(), *o;
	unsigned back = 0, ok = 0;
	int status = 0;

	for (unsigned i = 0; i < c->c_nmsg; i++) {
		struct inject_msg *im = &c->c_msgs[i];
		struct queue_msg *m = &im->im_q;

		im->im_iov[0].iov_base = im->im_prefix;
		im->im_iov[0].iov_len = im->im_prefix_len;
		if (im->im_pool != NULL && strcmp(im->im_pool, "default") != 0) {
			m->qm_rec.pool = im->im_pool;
			m->qm_rec.pool_len = (uint16_t)strnlen(im->im_pool, UINT16_MAX);
		}
		if (im->im_strip_len != 0) {
			m->qm_rec.strip_off = im->im_prefix_len + im->im_strip_off;
			m->qm_rec.strip_len = im->im_strip_len;
		}
		m->qm_iov = im->im_iov;
		m->qm_iovcnt = 2;
		m->qm_sink = &c->c_wait.w_msgs;
		inject_event(c, im);
	}
	for (unsigned i = 0; i < c->c_nmsg; i++)
		queue_submit(inj->i_env.ie_queue, &c->c_msgs[i].im_q);
	while (back < c->c_nmsg) {
		inject_wait_sleep(&c->c_wait);
		for (struct queue_msg *m = queue_sink_take(&c->c_wait.w_msgs); m != NULL; m = m->qm_next)
			back++;
	}
	for (unsigned i = 0; i < c->c_nmsg; i++) {
		struct inject_msg *im = &c->c_msgs[i];

		if (im->im_q.qm_status != 0) {
			status = im->im_q.qm_status;
			log_msg(LOG_WARNING, "queue-failed id=%s client=%s from=<%s> via=http: %s",
				im->im_ids, c->c_who->w_addr, c->c_req.q_sender,
				queue_strerror(status));
			continue;
		}
		json_array_append_new(ids, json_string(im->im_ids));
		ok++;
		atomic_fetch_add_explicit(&inj->i_messages, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&inj->i_recipients, im->im_nrcpt, memory_order_relaxed);
		inject_committed(c, im);
	}
	if (status != 0) {
		/* what was committed stays queued: say which */
		o = json_pack("{s:s,s:o}", "error", status == -ENOSPC ?
			      "insufficient system storage, try again later" :
			      "queue write failed, try again later", "queue_ids", ids);
		a->a_status = status == -ENOSPC ? 507 : 503;
		a->a_retry = true;
	} else {
		o = json_pack("{s:o,s:I,s:O,s:I,s:I,s:I}", "queue_ids", ids, "accepted",
			      (json_int_t)c->c_nok, "rejected", c->c_rejected, "dropped",
			      (json_int_t)c->c_ndropped, "success_count", (json_int_t)c->c_nok,
			      "fail_count", (json_int_t)json_array_size(c->c_rejected));
		a->a_status = 202;
	}
	a->a_json = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	(void)ok;
}

static int inject_build_all(struct inject_ctx *c, struct inject_answer *a)
{
	c->c_nmsg = c->c_req.q_per_rcpt ? c->c_nok : 1;
	c->c_msgs = calloc(c->c_nmsg, sizeof(*c->c_msgs));
	if (c->c_msgs == NULL) {
		inject_answer_error(a, 503, "out of memory");
		a->a_retry = true;
		return -1;
	}
	for (unsigned i = 0; i < c->c_nmsg; i++) {
		struct inject_msg *im = &c->c_msgs[i];
		const struct inject_rcpt *rcpt = NULL;

		if (c->c_req.q_per_rcpt) {
			im->im_rcpts = &c->c_ok[i];
			im->im_nrcpt = 1;
			/* the request's recipient of this address (same order) */
			for (unsigned k = 0; k < c->c_req.q_nrcpt; k++)
				if (c->c_req.q_rcpts[k].r_email == c->c_ok[i].addr)
					rcpt = &c->c_req.q_rcpts[k];
		} else {
			im->im_rcpts = c->c_ok;
			im->im_nrcpt = c->c_nok;
		}
		im->im_iov[1].iov_base = NULL;
		if (inject_build_one(c, im, rcpt, a) < 0)
			return -1;
		im->im_iov[0].iov_base = im->im_prefix;
		im->im_iov[0].iov_len = im->im_prefix_len;
		im->im_iov[1].iov_base = im->im_body.b_p;
		im->im_iov[1].iov_len = im->im_body.b_len;
	}
	return 0;
}

static void inject_ctx_free(struct inject_ctx *c)
{
	for (unsigned i = 0; i < c->c_nmsg; i++) {
		inject_buf_free(&c->c_msgs[i].im_body);
		queue_events_free(&c->c_msgs[i].im_q.qm_events);
		free(c->c_msgs[i].im_prefix);
		dkim_job_free(&c->c_msgs[i].im_sign);
	}
	free(c->c_msgs);
	free(c->c_ok);
	json_decref(c->c_rejected);
	shp_rules_unref(&c->c_rules);
	inject_req_free(&c->c_req);
	inject_wait_destroy(&c->c_wait);
}

void inject_accept(struct inject *inj, const struct inject_who *who, const char *body,
		   size_t len, struct inject_answer *a)
{
	struct inject_ctx c = { .c_inj = inj, .c_who = who };
	char err[300];

	inject_settings(inj, &c.c_cfg, NULL, NULL);	/* this request's settings */
	inject_wait_init(&c.c_wait);
	c.c_rejected = json_array();
	memset(a, 0, sizeof(*a));
	if (inject_req_parse(&c.c_req, body, len, c.c_cfg->max_recipients, err, sizeof(err)) < 0) {
		inject_answer_error(a, 400, err);
		goto out;
	}
	if (inject_check_addrs(&c, a) < 0)
		goto out;
	if (c.c_nok == 0) {
		json_t *o;

		/* every recipient refused, or dropped (a deliberate policy) */
		o = json_pack("{s:[],s:i,s:O,s:I}", "queue_ids", "accepted", 0, "rejected",
			      c.c_rejected, "dropped", (json_int_t)c.c_ndropped);
		a->a_status = json_array_size(c.c_rejected) > 0 ? 422 : 202;
		a->a_json = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
		json_decref(o);
		goto out;
	}
	if (inj->i_env.ie_rules != NULL)
		c.c_rules = shp_holder_get(inj->i_env.ie_rules);
	if (inject_build_all(&c, a) < 0 || inject_sign_all(&c, a) < 0)
		goto out;
	inject_commit_all(&c, a);
out:
	if (a->a_json == NULL && a->a_status == 0)
		inject_answer_error(a, 503, "out of memory");
	inject_ctx_free(&c);
}
