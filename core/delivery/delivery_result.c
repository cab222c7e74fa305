/*
 * delivery_result.c: the end of a message's delivery round. The worker
 * that finishes the last job turns every recipient's outcome into the
 * stored state (delivered, failed, or deferred to its next attempt by the
 * backoff schedule, failing once past max_queue_lifetime), logs one line
 * per recipient, builds a bounce (RFC 3464) for new failures unless the
 * sender is null, and submits it all as one queue update.
 *
 * The DSN parameters (RFC 3461) say which outcomes get a notice
 * (dres_notice): NOTIFY=NEVER none, no NOTIFY the failures and delays,
 * NOTIFY=SUCCESS a "relayed" notice when the next hop did not offer DSN
 * (one that did was handed the request and reports itself, RFC 3461
 * 6.2.6); RET=FULL returns the whole message with a failure, ENVID and
 * ORCPT are named in the report.
 *
 * Every failed or deferred recipient gets a bounce class (core/bounce)
 * unless the engine set one: it is stored with the recipient, logged
 * (class=), counted and named in the DSN. A recipient that failed with a
 * hard class (invalid-recipient, bad-domain) joins the suppression list
 * in the same queue update as its failure, so the two are durable
 * together and no second transaction (or sync) is spent on it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "core/delivery/delivery_internal.h"
#include "core/bounce/bclass_rules.h"
#include "core/bounce/bclass_stats.h"
#include "core/message/dsn.h"
#include "core/base/log.h"
#include "core/delivery/retry.h"
#include "core/events/events.h"

static uint64_t dres_now_us(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

static void dres_date(uint64_t us, char *buf, size_t len)
{
	time_t t = (time_t)(us / 1000000u);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

static uint32_t dres_rand(struct dlv_worker *w)
{
	w->w_rnd ^= w->w_rnd << 13;
	w->w_rnd ^= w->w_rnd >> 7;
	w->w_rnd ^= w->w_rnd << 17;
	return (uint32_t)(w->w_rnd >> 32);
}

/* A failure that passes: no memory, no room, a checkpoint that waits, an
 * I/O error (one for good stops the daemon: MDB_PANIC). The others (the
 * record is gone, damaged, or the update's bounce exists) would fail the
 * same way again. */
static bool dres_update_retryable(int status)
{
	return status == -ENOMEM || status == -ENOSPC || status == -EAGAIN || status == -EIO;
}

/* Committer thread: the update is durable (or failed). */
static void dres_update_done(struct queue_update *u)
{
	struct dlv_msg *m = (struct dlv_msg *)((char *)u - offsetof(struct dlv_msg, dm_update));

	if (dres_update_retryable(u->qu_status)) {
		if (m->dm_update_tries++ % 60 == 0)
			log_msg(LOG_WARNING, "delivery: queue update of %016" PRIx64 " failed: %s;"
				" kept, and submitted again (tries: %u)", m->dm_id,
				queue_strerror(u->qu_status), m->dm_update_tries);
		delivery_update_later(m);
		return;
	}
	if (u->qu_status != 0 && u->qu_status != -ENOENT)
		log_msg(LOG_WARNING, "delivery: queue update of %016" PRIx64 " failed: %s;"
			" it will be tried again", m->dm_id, queue_strerror(u->qu_status));
	else if (u->qu_status == 0 && m->dm_update_tries > 0)
		log_msg(LOG_INFO, "delivery: queue update of %016" PRIx64 " stored after %u"
			" failed tries", m->dm_id, m->dm_update_tries);
	/* Logged once durable, with the failure that caused it. */
	for (unsigned i = 0; u->qu_status == 0 && i < u->qu_nsuppress; i++) {
		const struct queue_suppress *e = &u->qu_suppress[i];

		log_msg(LOG_INFO, "suppress add to=<%.*s> scope=%s class=%s expire=%" PRIu64 "s",
			(int)e->qs_addr_len, e->qs_addr, e->qs_scope_len ? e->qs_scope : "global",
			bclass_name(e->qs_class),
			e->qs_expires ? e->qs_expires - e->qs_added : (uint64_t)0);
	}
	queue_events_free(&u->qu_events);
	free((void *)u->qu_suppress);
	u->qu_suppress = NULL;
	u->qu_nsuppress = 0;
	delivery_dsn_msg_free(&m->dm_bounce);
	delivery_msg_done_batched(m);	/* delivery_on_commit retires it */
}

void dres_update_abandon(struct dlv_msg *m)
{
	struct queue_update *u = &m->dm_update;

	log_msg(LOG_WARNING, "delivery: queue update of %016" PRIx64 " not stored at stop"
		" (%s): its recipients are tried again after the restart, those it"
		" reached too", m->dm_id, queue_strerror(u->qu_status));
	queue_events_free(&u->qu_events);
	free((void *)u->qu_suppress);
	delivery_dsn_msg_free(&m->dm_bounce);
}

/* The MTA's name for Remote-MTA (RFC 3464 2.3.5, type dns) from
 * "host[ip]:port": the host, or the address of a literal "[ip]:port". */
static void dres_mta_name(const char *remote, char *out, size_t len)
{
	const char *b = strchr(remote, '[');

	if (remote[0] == '[') {
		const char *e = strchr(remote, ']');

		snprintf(out, len, "%.*s", e != NULL ? (int)(e - remote - 1) : 0, remote + 1);
	} else {
		snprintf(out, len, "%.*s", b != NULL ? (int)(b - remote) : (int)strlen(remote),
			 remote);
	}
}

struct queue_msg *delivery_dsn_msg(const struct config *cfg, struct queue *q, uint64_t orig_id,
				   struct dsn_msg *dm, uint64_t new_id, uint64_t now,
				   bool ret_full)
{
	struct queue_msg *b = calloc(1, sizeof(*b));
	struct iovec *iov = calloc(1, sizeof(*iov));
	struct qrcpt *rc = calloc(1, sizeof(*rc));
	struct queue_body body;
	char msgid[80], *text = NULL;
	long len;

	if (b == NULL || iov == NULL || rc == NULL)
		goto fail;
	b->qm_id = new_id;
	snprintf(msgid, sizeof(msgid), "%016" PRIx64 ".bounce@%.40s", b->qm_id, cfg->hostname);
	dm->dm_message_id = msgid;
	if (queue_body_get(q, orig_id, &body) == 0) {
		dm->dm_orig_headers = body.qb_data;
		dm->dm_orig_headers_len = dsn_header_len(body.qb_data, body.qb_len);
		if (ret_full) {
			dm->dm_orig = body.qb_data;
			dm->dm_orig_len = body.qb_len;
		}
		len = dsn_build(dm, &text);
		queue_body_release(&body);
	} else {
		len = dsn_build(dm, &text);
	}
	dm->dm_message_id = NULL;
	dm->dm_orig_headers = NULL;
	dm->dm_orig = NULL;
	if (len < 0)
		goto fail;
	rc->state = QRCPT_PENDING;
	rc->addr = dm->dm_to;	/* copied into the record at commit */
	rc->addr_len = (uint16_t)strlen(dm->dm_to);
	rc->next_attempt = now;
	iov[0].iov_base = text;
	iov[0].iov_len = (size_t)len;
	b->qm_sink = NULL;
	b->qm_rec.arrival = now;
	b->qm_rec.next_attempt = now;
	b->qm_rec.sender = "";
	b->qm_rec.client = "localhost";
	b->qm_rec.client_len = 9;
	b->qm_rec.helo = cfg->hostname;
	b->qm_rec.helo_len = (uint16_t)strlen(cfg->hostname);
	b->qm_rec.nrcpt = 1;
	b->qm_rec.rcpts = rc;
	/* A bounce about UTF-8 addresses is 8-bit (message/global-*). */
	for (long i = 0; i < len; i++)
		if ((unsigned char)text[i] >= 0x80) {
			b->qm_rec.flags |= QRECORD_F_8BIT;
			break;
		}
	for (const char *p = dm->dm_to; *p; p++)
		if ((unsigned char)*p >= 0x80) {
			b->qm_rec.flags |= QRECORD_F_SMTPUTF8;
			break;
		}
	b->qm_iov = iov;
	b->qm_iovcnt = 1;
	return b;
fail:
	free(text);
	free(b);
	free(iov);
	free(rc);
	return NULL;
}

void delivery_dsn_msg_free(struct queue_msg **mp)
{
	struct queue_msg *m = *mp;

	if (m == NULL)
		return;
	free((void *)m->qm_iov[0].iov_base);
	free((void *)m->qm_iov);
	free((void *)m->qm_rec.rcpts);
	free(m);
	*mp = NULL;
}

/*
 * The notice (enum dsn_action) r's outcome this round asks for, or -1:
 * a failure unless NOTIFY leaves FAILURE out, a deferral when warn and
 * NOTIFY allows DELAY (no NOTIFY means FAILURE,DELAY), a success only on
 * NOTIFY=SUCCESS and only when the next hop was not handed it.
 */
static int dres_notice(const struct dlv_rcpt *r, bool warn)
{
	uint8_t n = r->dr_dsn.cd_notify;

	switch (r->dr_result) {
	case DLV_R_FAILED:
		return n == 0 || (n & QRCPT_NOTIFY_FAILURE) ? DSN_FAILED : -1;
	case DLV_R_DEFERRED:
		return warn && (n == 0 || (n & QRCPT_NOTIFY_DELAY)) ? DSN_DELAYED : -1;
	case DLV_R_SENT:
		return (n & QRCPT_NOTIFY_SUCCESS) && !r->dr_dsn_passed ? DSN_RELAYED : -1;
	}
	return -1;
}

/* A DSN for the recipients whose outcome this round asks for one
 * (dres_notice), failures, delays (when warn is set) and successes. */
static struct queue_msg *dres_bounce(struct dlv_worker *w, struct dlv_msg *m, uint64_t now,
				     bool warn)
{
	const struct config *cfg = w->w_cfg;
	struct dsn_rcpt *dr;
	char (*mta)[sizeof(m->dm_rcpts[0].dr_remote)];
	struct dsn_msg dm;
	struct queue_msg *b;
	char arrival[40], date[40], ids[17];
	unsigned n = 0, nfailed = 0;

	dr = calloc(m->dm_nrcpt, sizeof(*dr));
	mta = calloc(m->dm_nrcpt, sizeof(*mta));
	if (dr == NULL || mta == NULL) {
		free(dr);
		free(mta);
		return NULL;
	}
	for (uint32_t i = 0; i < m->dm_nrcpt; i++) {
		struct dlv_rcpt *r = &m->dm_rcpts[i];
		int action = dres_notice(r, warn);

		if (action < 0)
			continue;
		nfailed += action == DSN_FAILED;
		dr[n].dr_addr = r->dr_addr;
		dr[n].dr_action = (enum dsn_action)action;
		dr[n].dr_status = r->dr_ecode[0] ? r->dr_ecode :
				  action == DSN_FAILED ? "5.0.0" :
				  action == DSN_DELAYED ? "4.0.0" : "2.0.0";
		dr[n].dr_orcpt = r->dr_dsn.cd_orcpt;
		dres_mta_name(r->dr_remote, mta[n], sizeof(mta[n]));
		dr[n].dr_remote_mta = mta[n][0] ? mta[n] : NULL;
		dr[n].dr_remote_addr = r->dr_remote[0] ? r->dr_remote : NULL;
		dr[n].dr_diag = r->dr_reply ? r->dr_reply : "";
		dr[n].dr_last_attempt = NULL;
		dr[n].dr_class = r->dr_class ? bclass_name(r->dr_class) : NULL;
		n++;
	}
	queue_id_str(m->dm_id, ids);
	dres_date(m->dm_arrival, arrival, sizeof(arrival));
	dres_date(now, date, sizeof(date));
	memset(&dm, 0, sizeof(dm));
	dm.dm_reporting_mta = cfg->hostname;
	dm.dm_to = m->dm_sender;
	dm.dm_queue_id = ids;
	dm.dm_arrival = arrival;
	dm.dm_date = date;
	dm.dm_rcpts = dr;
	dm.dm_nrcpt = n;
	dm.dm_envid = m->dm_envid;
	b = delivery_dsn_msg(cfg, w->w_queue, m->dm_id, &dm,
			     w->w_env->de_next_id(w->w_env->de_arg, w->w_index), now,
			     m->dm_dsn_ret == QRECORD_RET_FULL);
	free(dr);
	free(mta);
	if (b == NULL)
		return NULL;
	log_msg(LOG_INFO, "%s id=%016" PRIx64 " for=%s to=<%s> recipients=%u",
		nfailed > 0 ? "bounce" : "dsn", b->qm_id, ids, m->dm_sender, n);
	return b;
}

static const char *dres_name(uint8_t res)
{
	switch (res) {
	case DLV_R_SENT: return "sent";
	case DLV_R_DEFERRED: return "deferred";
	case DLV_R_FAILED: return "bounced";
	}
	return "none";
}

/* A deferred recipient: when to try it again; past max_queue_lifetime it
 * fails instead (class expired), with 0 returned. */
static uint64_t dres_defer(struct dlv_worker *w, struct dlv_msg *m, struct dlv_rcpt *r,
			   uint64_t now)
{
	const struct config *cfg = w->w_cfg;
	uint64_t next;
	char *why = NULL;

	if (r->dr_no_attempt) {
		next = retry_wait_us(now, r->dr_not_before, dres_rand(w));
	} else {
		next = now + retry_delay_us(r->dr_attempts + 1u, cfg->retry_min, cfg->retry_max,
					    dres_rand(w));
		if (next < r->dr_not_before)
			next = r->dr_not_before;
	}
	if (!retry_expired(m->dm_arrival, next, cfg->max_queue_lifetime))
		return next;
	if (asprintf(&why, "%s (gave up: message expired after %us in the queue)",
		     r->dr_reply ? r->dr_reply : "", cfg->max_queue_lifetime) > 0) {
		free(r->dr_reply);
		r->dr_reply = why;
	}
	/* Keep the last status, as Postfix does; 4.4.7 (delivery time
	 * expired) when there was none. */
	if (r->dr_ecode[0] == '\0')
		snprintf(r->dr_ecode, sizeof(r->dr_ecode), "4.4.7");
	r->dr_result = DLV_R_FAILED;
	r->dr_class = BCLASS_EXPIRED;	/* whatever the last reply said */
	return 0;
}

/*
 * The bounce class of a failed or deferred recipient, unless the engine
 * set one; counted when an attempt was made. A wait without an attempt
 * and without a reply keeps the stored class (class 0 in the update).
 */
static void dres_classify(struct dlv_rcpt *r)
{
	bool failed = r->dr_result == DLV_R_FAILED;

	if (r->dr_result != DLV_R_FAILED && r->dr_result != DLV_R_DEFERRED) {
		r->dr_class = BCLASS_NONE;
		return;
	}
	if (r->dr_class == BCLASS_NONE && !(r->dr_no_attempt && r->dr_reply == NULL))
		r->dr_class = (uint8_t)bclass_classify(r->dr_reply, r->dr_ecode, failed);
	/* A refused MAIL FROM says nothing about the recipients, whatever
	 * its words ("550 5.1.1 Sender unknown"): not theirs to be marked
	 * invalid, nor suppressed (dres_suppress takes hard classes). */
	if (r->dr_mail_refused && bclass_is_hard(r->dr_class))
		r->dr_class = BCLASS_POLICY;
	if (!r->dr_no_attempt || failed)
		bclass_stats_count(r->dr_class, failed);
}

/*
 * Suppression entries for the recipients that failed with a hard class,
 * under the sender's domain or global (suppression_scope); NULL when none
 * or when suppression is off. Mail from the null sender has no domain:
 * with per-domain scope its failures add nobody. The strings point into
 * m, which outlives the update.
 */
static struct queue_suppress *dres_suppress(const struct config *cfg, struct dlv_msg *m,
					    uint64_t now, unsigned *n_r)
{
	const char *at = strrchr(m->dm_sender, '@');
	bool global = config_suppression_scope_parse(cfg->suppression_scope) ==
		      CONFIG_SUPPRESSION_GLOBAL;
	struct queue_suppress *e = NULL;
	unsigned n = 0;

	*n_r = 0;
	if (config_suppression_parse(cfg->suppression) <= CONFIG_SUPPRESSION_OFF ||
	    (!global && at == NULL))
		return NULL;
	for (uint32_t i = 0; i < m->dm_nrcpt; i++) {
		const struct dlv_rcpt *r = &m->dm_rcpts[i];

		if (r->dr_result != DLV_R_FAILED || !bclass_is_hard(r->dr_class))
			continue;
		if (e == NULL && (e = calloc(m->dm_nrcpt, sizeof(*e))) == NULL)
			return NULL;	/* the failure still counts; no entry */
		e[n].qs_scope = global ? "" : at + 1;
		e[n].qs_scope_len = strlen(e[n].qs_scope);
		e[n].qs_addr = r->dr_addr;
		e[n].qs_addr_len = strlen(r->dr_addr);
		e[n].qs_class = r->dr_class;
		e[n].qs_added = now / 1000000u;
		e[n].qs_expires = cfg->suppression_expire ?
				  e[n].qs_added + cfg->suppression_expire : 0;
		e[n].qs_reason = r->dr_reply ? r->dr_reply : "";
		e[n].qs_reason_len = strlen(e[n].qs_reason);
		n++;
	}
	*n_r = n;
	return e;
}

static void dres_log(const char *ids, const struct dlv_msg *m, const struct dlv_rcpt *r,
		     const struct queue_rcpt_update *u, uint64_t now)
{
	char nexts[40] = "";

	if (u->qru_next_attempt != 0) {	/* RFC 3339, as the log's own times */
		time_t t = (time_t)(u->qru_next_attempt / 1000000u);
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(nexts, sizeof(nexts), " next=%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	log_msg(LOG_INFO, "delivery id=%s to=<%s> relay=%s tls=%s attempt=%u "
		"delay=%.3fs status=%s ecode=%s reply=\"%s\"%s%s%s",
		ids, r->dr_addr, r->dr_remote[0] ? r->dr_remote : "none",
		r->dr_tls[0] ? r->dr_tls : "none",
		r->dr_attempts + (u->qru_no_attempt ? 0u : 1u),
		(double)(now - m->dm_arrival) / 1e6,
		dres_name(r->dr_result), r->dr_ecode[0] ? r->dr_ecode : "-",
		r->dr_reply ? r->dr_reply : "", nexts, r->dr_class ? " class=" : "",
		r->dr_class ? bclass_name(r->dr_class) : "");
}

/* The recipient's attempt and outcome as events (core/events). */
static void dres_event(struct dlv_worker *w, struct dlv_msg *m, const struct dlv_rcpt *r,
		       const struct queue_rcpt_update *u, uint64_t now)
{
	struct event_rcpt e;

	if (!events_on(w->w_env->de_events))
		return;
	e = (struct event_rcpt){
		.er_queue_id = m->dm_id,
		.er_sender = m->dm_sender,
		.er_rcpt = r->dr_addr,
		.er_site = r->dr_site,
		.er_remote = r->dr_remote,
		.er_source = r->dr_source,
		.er_tls = r->dr_tls,
		.er_reply = r->dr_reply,
		.er_ecode = r->dr_ecode,
		.er_bclass = r->dr_class ? bclass_name(r->dr_class) : NULL,
		.er_duration_us = now > m->dm_start_us ? now - m->dm_start_us : 0,
		.er_attempt = r->dr_attempts + (u->qru_no_attempt ? 0u : 1u),
		.er_no_attempt = u->qru_no_attempt,
		.er_outcome = r->dr_result == DLV_R_SENT ? EVENT_DELIVERED :
			      r->dr_result == DLV_R_DEFERRED ? EVENT_DEFERRED :
			      r->dr_class == BCLASS_EXPIRED ? EVENT_EXPIRED : EVENT_BOUNCED,
		.er_next_us = u->qru_next_attempt,
	};
	events_rcpt(w->w_env->de_events, &m->dm_events, &e);
}

static void dres_finalize(struct dlv_worker *w, struct dlv_msg *m)
{
	const struct config *cfg = w->w_cfg;
	uint64_t now = dres_now_us();
	unsigned n = 0, failed = 0, deferred = 0, nsup = 0, notices = 0, delays = 0, fails = 0;
	struct queue_suppress *sup;
	bool warn;
	char ids[17];

	queue_id_str(m->dm_id, ids);
	for (uint32_t i = 0; i < m->dm_nrcpt; i++) {	/* dm_updates: dlv_build_cb */
		struct dlv_rcpt *r = &m->dm_rcpts[i];
		struct queue_rcpt_update *u = &m->dm_updates[n];
		uint64_t next = 0;

		if (r->dr_result == DLV_R_NONE)
			continue;
		if (r->dr_result == DLV_R_DEFERRED)
			next = dres_defer(w, m, r, now);
		dres_classify(r);
		dlv_met_rcpt(w, r);
		u->qru_index = i;
		u->qru_state = r->dr_result == DLV_R_SENT ? QRCPT_DELIVERED :
			       r->dr_result == DLV_R_FAILED ? QRCPT_FAILED : QRCPT_PENDING;
		u->qru_next_attempt = next;
		u->qru_reply = r->dr_reply;
		u->qru_reply_len = r->dr_reply ? (uint16_t)strnlen(r->dr_reply, 65535) : 0;
		u->qru_bclass = r->dr_class;
		/* A wait without an attempt is not counted; one that expired
		 * is the recipient's end and counts as its last round. */
		u->qru_no_attempt = r->dr_no_attempt && r->dr_result == DLV_R_DEFERRED;
		if (r->dr_result == DLV_R_FAILED)
			failed++;
		else if (r->dr_result == DLV_R_DEFERRED)
			deferred++;
		n++;
		stat_inc(&w->w_rcpt_result[r->dr_result]);
		if (r->dr_reply != NULL && r->dr_reply[0] >= '2' && r->dr_reply[0] <= '5')
			stat_inc(&w->w_reply_class[r->dr_reply[0] - '0']);
		if (r->dr_result == DLV_R_SENT)
			stat_hist_observe(&w->w_delivery_lat, (now - m->dm_arrival) * 1000u);
		dres_log(ids, m, r, u, now);
		dres_event(w, m, r, u, now);
	}
	if (n == 0) {
		delivery_msg_done(m);	/* nothing was tried (shutdown) */
		return;
	}
	/* One delay warning per message, when configured (off by default). */
	warn = deferred > 0 && cfg->delay_warning_time > 0 &&
	       !(m->dm_flags & QRECORD_F_DELAY_WARNED) &&
	       now >= m->dm_arrival + (uint64_t)cfg->delay_warning_time * 1000000u;
	for (uint32_t i = 0; i < m->dm_nrcpt; i++) {
		int action = dres_notice(&m->dm_rcpts[i], warn);

		notices += action >= 0;
		delays += action == DSN_DELAYED;
		fails += action == DSN_FAILED;
	}
	if (notices > 0 && m->dm_sender[0] != '\0') {
		m->dm_bounce = dres_bounce(w, m, now, warn);
		if (m->dm_bounce != NULL)
			stat_inc(&w->w_bounces);
		else	/* not silent: the notice is owed and lost */
			log_msg(LOG_ERROR, "delivery: %s: no memory to build the notice to <%s>"
				" (%u failed, %u delayed): it is not sent", ids, m->dm_sender,
				fails, delays);
	}
	sup = failed > 0 ? dres_suppress(cfg, m, now, &nsup) : NULL;
	for (unsigned i = 0; i < nsup; i++)
		events_suppressed(w->w_env->de_events, &m->dm_events, m->dm_sender,
				  sup[i].qs_addr, sup[i].qs_addr_len, "add",
				  bclass_name(sup[i].qs_class),
				  sup[i].qs_scope_len ? sup[i].qs_scope : "global");
	if (m->dm_bounce != NULL)
		events_dsn(w->w_env->de_events, &m->dm_events, m->dm_id, m->dm_bounce->qm_id,
			   fails > 0 ? "bounce" : delays > 0 ? "delay" : "success", m->dm_sender);
	memset(&m->dm_update, 0, sizeof(m->dm_update));
	m->dm_update.qu_id = m->dm_id;
	m->dm_update.qu_rcpts = m->dm_updates;
	m->dm_update.qu_nrcpt = n;
	m->dm_update.qu_new = m->dm_bounce;
	m->dm_update.qu_suppress = sup;
	m->dm_update.qu_nsuppress = nsup;
	if (delays > 0 && m->dm_bounce != NULL)
		m->dm_update.qu_set_flags = QRECORD_F_DELAY_WARNED;
	m->dm_update.qu_done = dres_update_done;
	m->dm_update.qu_events = m->dm_events;
	m->dm_events = NULL;
	queue_submit_update(w->w_queue, &m->dm_update);
}

void delivery_job_done(struct dlv_worker *w, struct dlv_job *j)
{
	struct dlv_msg *m = j->dj_msg;

	/* Where each outcome came from, for its events. */
	for (unsigned k = 0; events_on(w->w_env->de_events) && k < j->dj_nrcpt; k++) {
		struct dlv_rcpt *r = &m->dm_rcpts[j->dj_rcpts[k]];

		if (r->dr_site != NULL)
			continue;
		r->dr_site = strdup(j->dj_nexthop);
		r->dr_source = j->dj_source != NULL ? strdup(j->dj_source) : NULL;
	}
	dlv_met_job_where(w, j);
	dlv_job_free(j);
	atomic_fetch_sub_explicit(&w->w_jobs, 1, memory_order_relaxed);	/* its load */
	if (atomic_fetch_sub(&m->dm_parts_left, 1) == 1)
		dres_finalize(w, m);
}
