/*
 * delivery_worker.c: the worker side of delivery. Jobs arrive in an inbox
 * (any thread may push); on the worker they queue per destination (next
 * hop). A destination resolves its route (dns.c), opens sessions up to
 * destination_concurrency_limit, hands each ready session the next job,
 * keeps idle sessions for reuse and paces sends by
 * destination_rate_limit. Single-threaded apart from the inbox. The
 * sessions (core/outbound/smtp_client.h) report back through dlv_cl_ops.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/delivery/delivery_internal.h"
#include "core/base/log.h"

#define DLV_BUCKETS 1024u
#define DLV_DEST_IDLE_FREE 60	/* seconds before an unused destination goes */

static unsigned dlv_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)tolower((unsigned char)*s)) * 16777619u;
	return h;
}

/* Record one recipient's outcome in its message (the first one counts). */
static void dlv_rcpt_result(struct dlv_job *j, unsigned k, enum dlv_result res,
			    const char *reply, const char *ecode, const char *remote,
			    bool mail_refused)
{
	struct dlv_rcpt *r = &j->dj_msg->dm_rcpts[j->dj_rcpts[k]];

	if (r->dr_result != DLV_R_NONE || res == DLV_R_NONE)
		return;
	r->dr_result = (uint8_t)res;
	r->dr_mail_refused = mail_refused;
	free(r->dr_reply);
	r->dr_reply = strdup(reply ? reply : "");
	/* One line: it goes into logs and the record. */
	for (char *p = r->dr_reply; p != NULL && *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '"')
			*p = *p == '"' ? '\'' : ' ';
	snprintf(r->dr_ecode, sizeof(r->dr_ecode), "%s", ecode ? ecode : "");
	snprintf(r->dr_remote, sizeof(r->dr_remote), "%s", remote ? remote : "");
}

/* The TLS protocol and cipher the recipient's delivery used ("" = none). */
static void dlv_rcpt_tls(struct dlv_job *j, unsigned k, const char *tls)
{
	struct dlv_rcpt *r = &j->dj_msg->dm_rcpts[j->dj_rcpts[k]];

	snprintf(r->dr_tls, sizeof(r->dr_tls), "%s", tls);
}

/* End every recipient of a job with one outcome and release the job. */
static void dlv_job_end(struct dlv_worker *w, struct dlv_job *j, enum dlv_result res,
			const char *ecode, const char *reason)
{
	for (unsigned k = 0; k < j->dj_nrcpt; k++)
		dlv_rcpt_result(j, k, res, reason, ecode, "", false);
	dlv_shp_job_release(w, j, false);
	delivery_job_done(w, j);
}

/* The same for a deferral that made no SMTP attempt (shaping). */
static void dlv_job_end_no_attempt(struct dlv_worker *w, struct dlv_job *j, const char *ecode,
				   const char *reason, uint64_t not_before)
{
	atomic_fetch_add(&w->w_shp->ds_no_attempt, j->dj_nrcpt);
	for (unsigned k = 0; k < j->dj_nrcpt; k++) {
		struct dlv_rcpt *r = &j->dj_msg->dm_rcpts[j->dj_rcpts[k]];

		if (r->dr_result != DLV_R_NONE)
			continue;
		dlv_rcpt_result(j, k, DLV_R_DEFERRED, reason, ecode, "", false);
		/* No attempt counted; back when the suspension ends. */
		r->dr_no_attempt = true;
		r->dr_not_before = not_before;
	}
	dlv_shp_job_release(w, j, false);
	delivery_job_done(w, j);
}

/* The operator's suspensions that a job's own facts decide: its sender's
 * domain, its source, each recipient's domain (a relayhost's job holds
 * many). Held recipients are deferred without an attempt and leave the
 * job; true when none is left (the job has ended). */
static bool dlv_job_held(struct dlv_worker *w, struct dlv_job *j)
{
	struct shp_susp *s = w->w_shp->ds_susp;
	const char *at = strrchr(j->dj_msg->dm_sender, '@');
	struct shp_susp_mail m = { NULL, NULL, j->dj_source, at != NULL ? at + 1 : NULL };
	uint64_t now = dlv_unix_us(), until;
	char why[400];
	unsigned kept = 0;

	if (shp_susp_none(s))
		return false;
	if (shp_susp_check(s, &m, now, &until, why, sizeof(why))) {
		dlv_job_end_no_attempt(w, j, "4.4.5", why, until);
		return true;
	}
	m.sm_source = m.sm_sender_domain = NULL;
	for (unsigned k = 0; k < j->dj_nrcpt; k++) {
		struct dlv_rcpt *r = &j->dj_msg->dm_rcpts[j->dj_rcpts[k]];

		at = strrchr(j->dj_addrs[k], '@');
		m.sm_domain = at != NULL ? at + 1 : NULL;
		if (shp_susp_check(s, &m, now, &until, why, sizeof(why))) {
			dlv_rcpt_result(j, k, DLV_R_DEFERRED, why, "4.4.5", "", false);
			r->dr_no_attempt = true;
			r->dr_not_before = until;
			atomic_fetch_add(&w->w_shp->ds_no_attempt, 1);
			dlv_met_rcpt_where(w, j, r);
			continue;
		}
		j->dj_rcpts[kept] = j->dj_rcpts[k];
		j->dj_addrs[kept++] = j->dj_addrs[k];
	}
	j->dj_nrcpt = kept;
	j->dj_txn.ct_nrcpt = kept;
	if (kept > 0)
		return false;
	dlv_shp_job_release(w, j, false);
	delivery_job_done(w, j);
	return true;
}

/* Split "[ip]:port" / "host:port" / "host" into name and port. */
static void dlv_parse_nexthop(const char *s, unsigned defport, char *name, size_t len,
			      uint16_t *port_r)
{
	const char *colon = NULL;

	*port_r = (uint16_t)defport;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (close != NULL && close[1] == ':')
			colon = close + 1;
	} else if (strchr(s, ':') == strrchr(s, ':')) {
		colon = strchr(s, ':');	/* one colon: a port */
	}
	if (colon != NULL) {
		unsigned long p = strtoul(colon + 1, NULL, 10);

		if (p > 0 && p < 65536)
			*port_r = (uint16_t)p;
		snprintf(name, len, "%.*s", (int)(colon - s), s);
	} else {
		snprintf(name, len, "%s", s);
	}
}

/* A destination is a next hop and the source its sessions bind: jobs
 * of one domain from two sources are two destinations (two paths). */
struct dlv_dest *dlv_dest_find(struct dlv_worker *w, const char *nexthop, const char *source)
{
	struct dlv_dest *d;

	for (d = w->w_dests[dlv_hash(nexthop) & (w->w_nbuckets - 1)]; d != NULL; d = d->dd_hnext)
		if (strcasecmp(d->dd_name, nexthop) == 0 &&
		    strcmp(d->dd_shp.dp_source, source) == 0)
			return d;
	return NULL;
}

static struct dlv_dest *dlv_dest_get(struct dlv_worker *w, const char *nexthop,
				     const char *source)
{
	unsigned b = dlv_hash(nexthop) & (w->w_nbuckets - 1);
	struct dlv_dest *d = dlv_dest_find(w, nexthop, source);
	char name[300];
	uint16_t port;

	if (d != NULL)
		return d;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return NULL;
	d->dd_name = strdup(nexthop);
	d->dd_shp.dp_source = strdup(source);
	if (d->dd_name == NULL || d->dd_shp.dp_source == NULL) {
		free(d->dd_name);
		free(d->dd_shp.dp_source);
		free(d);
		return NULL;
	}
	dlv_parse_nexthop(nexthop, w->w_cfg->smtp_port, name, sizeof(name), &port);
	d->dd_host = strdup(name);
	if (d->dd_host == NULL) {
		free(d->dd_name);
		free(d->dd_shp.dp_source);
		free(d);
		return NULL;
	}
	d->dd_port = port;
	d->dd_w = w;
	d->dd_last_active = io_loop_now();
	d->dd_hnext = w->w_dests[b];
	w->w_dests[b] = d;
	return d;
}

static void dlv_dest_enqueue(struct dlv_dest *d, struct dlv_job *j)
{
	j->dj_next = NULL;
	if (d->dd_tail != NULL)
		d->dd_tail->dj_next = j;
	else
		d->dd_head = j;
	d->dd_tail = j;
	d->dd_queued++;
}

void dlv_dest_enqueue_front(struct dlv_dest *d, struct dlv_job *j)
{
	j->dj_next = d->dd_head;
	d->dd_head = j;
	if (d->dd_tail == NULL)
		d->dd_tail = j;
	d->dd_queued++;
}

static struct dlv_job *dlv_dest_pop(struct dlv_dest *d)
{
	struct dlv_job *j = d->dd_head;

	if (j == NULL)
		return NULL;
	d->dd_head = j->dj_next;
	if (d->dd_head == NULL)
		d->dd_tail = NULL;
	d->dd_queued--;
	return j;
}

/* Session c of d has no job: it waits idle for the next (nothing waits
 * here now). One still idle at the tick while another worker waits for a
 * unit of the path goes then (dlv_worker_on_tick): a queue empty for a
 * moment costs no session. */
static void dlv_dest_park(struct dlv_worker *w, struct dlv_dest *d, struct smtp_client *c)
{
	dlv_spread_wait(w, d, false);
	smtp_client_set_next_idle(c, d->dd_idle);
	d->dd_idle = c;
}

/* Start the next waiting job on session c, or say how long the message
 * rate makes it wait (then c waits, and is ready again after). early:
 * c is busy (ready_early), so neither wait nor idle: false. */
static bool dlv_dest_start_next(struct dlv_worker *w, struct dlv_dest *d, struct smtp_client *c,
				bool early)
{
	uint64_t wait = dlv_shp_msg_take(w, d);
	unsigned max = d->dd_shp.dp_known ? d->dd_shp.dp_eff.sl_max_recipients : 0;
	/* The next hop's LIMITS (RFC 9422) on this session: a job with more
	 * recipients (or recipient domains) goes in parts, as for the
	 * path's limit. */
	const struct smtp_limits *lim = smtp_client_limits(c);
	unsigned rcptmax = lim->lm_rcptmax;
	struct dlv_job *j;

	if (wait != 0 && early)
		return false;
	if (wait != 0) {
		/* A short wait on the session's own timer; a long one (a slow
		 * rate: 500/d is one per 173 s) idle, with the destination
		 * quiet until then: the tick looks again, no session churns. */
		if (wait < 1000000u) {
			smtp_client_wait(c, (unsigned)((wait + 999) / 1000));
		} else {
			d->dd_shp.dp_rate_until = dlv_unix_us() + wait;
			d->dd_shp.dp_rate_for = d->dd_shp.dp_eff.sl_message_rate;
			smtp_client_set_next_idle(c, d->dd_idle);
			d->dd_idle = c;
		}
		return false;
	}
	/* A job picked before the domain's provider was known is held to
	 * that provider's warm-up cap now, or waits. */
	while ((j = dlv_dest_pop(d)) != NULL) {
		char why[300];
		uint64_t not_before;

		if (dlv_shp_job_provider(w, d, j, &not_before, why, sizeof(why)))
			break;
		dlv_job_end_no_attempt(w, j, "4.4.5", why, not_before);
	}
	if (j == NULL && early)
		return false;
	if (j == NULL) {
		dlv_dest_park(w, d, c);
		return false;
	}
	if (lim->lm_rcptdomainmax != 0) {
		unsigned n = dlv_job_domain_prefix(j, lim->lm_rcptdomainmax);

		if (rcptmax == 0 || n < rcptmax)
			rcptmax = n;
	}
	if (rcptmax != 0 && (max == 0 || rcptmax < max))
		max = rcptmax;
	if (max != 0 && j->dj_nrcpt > max)
		dlv_job_split(d, j, max);
	smtp_client_start_job(c, &j->dj_txn);
	return true;
}

/* Sessions the destination may have open now (0 = no limit). */
static unsigned dlv_dest_max_conns(const struct dlv_worker *w, const struct dlv_dest *d)
{
	return d->dd_shp.dp_known ? d->dd_shp.dp_eff.sl_max_connections :
				    w->w_cfg->destination_concurrency_limit;
}

void dlv_dest_fail_queued(struct dlv_worker *w, struct dlv_dest *d, enum dlv_result res,
			  const char *ecode, const char *reason, bool no_attempt,
			  uint64_t not_before)
{
	struct dlv_job *j;

	while ((j = dlv_dest_pop(d)) != NULL) {
		if (res == DLV_R_DEFERRED)
			dlv_shp_deferred(w, d, j->dj_nrcpt);
		if (no_attempt && res == DLV_R_DEFERRED)
			dlv_job_end_no_attempt(w, j, ecode, reason, not_before);
		else
			dlv_job_end(w, j, res, ecode, reason);
	}
	dlv_spread_wait(w, d, false);	/* nothing waits here now */
}

static void dlv_dest_kick(struct dlv_worker *w, struct dlv_dest *d);

void dlv_dest_open(struct dlv_worker *w, struct dlv_dest *d, struct smtp_route *rt)
{
	struct smtp_client_path path;
	unsigned want, max, fair;
	int gate = dlv_shp_gate(w, d, true), taken = DLV_CONN_OK;

	if (gate == SHP_GATE_SUSPENDED || gate == SHP_GATE_BOUNCE || d->dd_head == NULL)
		return;
	/* Sessions still opening will each take a waiting job: open only
	 * for the rest (else every job that arrives during a connect opens
	 * a session per waiting job, and a dead host sees a storm). */
	want = d->dd_queued > d->dd_nopening ? d->dd_queued - d->dd_nopening : 0;
	max = dlv_dest_max_conns(w, d);
	if (max != 0)
		want = d->dd_nconns >= max ? 0 : want < max - d->dd_nconns ? want :
		       max - d->dd_nconns;
	/* Until one session got through, one at a time: a dead host sees
	 * one connection, not one per waiting job. */
	if (!d->dd_shp.dp_proven)
		want = d->dd_nopening > 0 ? 0 : want < 1 ? want : 1;
	/* Other workers wait for the path's units: no more than our part. */
	fair = dlv_spread_cap(w, d, want);
	if (gate == SHP_GATE_PROBE) {
		/* The site failed every attempt: exactly one probe. */
		want = fair = 1;
		d->dd_shp.dp_probe++;
	}
	dlv_shp_client_path(d, &path);
	for (unsigned i = 0; i < fair; i++) {
		/* At the site's (or provider's) limit the tick looks again;
		 * the probe is one connection whatever the count says. */
		taken = dlv_shp_conn_take(w, d, gate == SHP_GATE_PROBE);
		if (taken != DLV_CONN_OK)
			break;
		d->dd_nconns++;
		d->dd_nopening++;
		if (smtp_client_open(&w->w_cl, d, rt, 0, d->dd_host, &path) == NULL) {
			d->dd_nconns--;
			d->dd_nopening--;
			dlv_shp_conn_put(w, d);
			break;
		}
	}
	/* Mail waits and other workers hold every unit, or our part is
	 * less than we would open: ask for a share. */
	dlv_spread_wait(w, d, taken == DLV_CONN_FULL || fair < want);
}

/* Close the idle sessions (the path is suspended), or those over the
 * path's lowered connection limit. */
static void dlv_dest_close_idle(struct dlv_worker *w, struct dlv_dest *d, bool all)
{
	struct smtp_client *c;

	while ((c = d->dd_idle) != NULL && (all || dlv_shp_over_limit(w, d))) {
		d->dd_idle = smtp_client_next_idle(c);
		smtp_client_set_next_idle(c, NULL);
		smtp_client_quit(c);	/* its unit goes back when it is gone */
	}
}

static void dlv_dest_kick(struct dlv_worker *w, struct dlv_dest *d)
{
	unsigned max;
	int gate;

	if (d->dd_head == NULL || w->w_quiesce)
		return;
	if (dlv_shp_source_gone(w, d)) {
		char why[200];

		snprintf(why, sizeof(why), "source %s was removed from the shaping rules;"
			 " picking a source again", d->dd_shp.dp_source);
		dlv_dest_close_idle(w, d, true);
		dlv_dest_fail_queued(w, d, DLV_R_DEFERRED, "4.4.0", why, true, 0);
		return;
	}
	/* A site known (or cached) as suspended: no DNS, no attempt. */
	dlv_shp_from_cache(w, d);
	dlv_shp_follow_rules(w, d);
	gate = dlv_shp_gate(w, d, false);
	dlv_dest_close_idle(w, d, gate == SHP_GATE_SUSPENDED || gate == SHP_GATE_BOUNCE);
	if (gate == SHP_GATE_SUSPENDED || d->dd_head == NULL ||
	    (dlv_unix_us() < d->dd_shp.dp_rate_until &&
	     memcmp(&d->dd_shp.dp_rate_for, &d->dd_shp.dp_eff.sl_message_rate,
		    sizeof(d->dd_shp.dp_rate_for)) == 0))
		return;
	while (d->dd_head != NULL && d->dd_idle != NULL) {
		struct smtp_client *c = d->dd_idle;

		d->dd_idle = smtp_client_next_idle(c);
		smtp_client_set_next_idle(c, NULL);
		if (!dlv_dest_start_next(w, d, c, false))
			return;
	}
	max = dlv_dest_max_conns(w, d);
	if (d->dd_head != NULL && !d->dd_resolving &&
	    (max == 0 || d->dd_nconns < max) && d->dd_queued > d->dd_nopening) {
		d->dd_resolving = true;
		dns_resolve(w->w_dns, d->dd_host, dlv_dest_on_route, d);
	}
}

/* The sessions' callbacks (struct smtp_client_ops): ctx is the worker,
 * dest the destination that opened the session. */
static void dlv_cl_ready(void *ctx, void *dest, struct smtp_client *c)
{
	struct dlv_worker *w = ctx;
	struct dlv_dest *d = dest;

	d->dd_last_active = io_loop_now();
	if (w->w_quiesce) {
		smtp_client_quit(c);
		return;
	}
	{
		int gate;

		/* Limits of the rules in force: a throttle shared with the
		 * site's other destinations sees one rate. */
		dlv_shp_follow_rules(w, d);
		gate = dlv_shp_gate(w, d, true);
		if (gate == SHP_GATE_PROBE)	/* this session is the proof */
			dlv_shp_opened(w, d);
		/* The path closed for now, its limit was lowered under the
		 * sessions it has, or a reload removed its source: this one
		 * goes. */
		if (gate == SHP_GATE_SUSPENDED || gate == SHP_GATE_BOUNCE ||
		    dlv_shp_over_limit(w, d) || dlv_shp_source_gone(w, d) ||
		    dlv_spread_yield(w, d, false)) {
			smtp_client_quit(c);
			return;
		}
		if (d->dd_head != NULL) {
			bool first = !d->dd_shp.dp_proven_kicked;

			dlv_dest_start_next(w, d, c, false);
			/* The first session got through: the jobs still
			 * waiting may have sessions of their own now. */
			d->dd_shp.dp_proven_kicked = true;
			if (first)
				dlv_dest_kick(w, d);
			return;
		}
	}
	dlv_dest_park(w, d, c);
}

/* c just sent an end of data (PIPELINING): the next job goes right
 * behind it when one waits and may go now; else ready() decides later. */
static void dlv_cl_ready_early(void *ctx, void *dest, struct smtp_client *c)
{
	struct dlv_worker *w = ctx;
	struct dlv_dest *d = dest;

	if (w->w_quiesce || d->dd_head == NULL)
		return;
	dlv_shp_follow_rules(w, d);
	if (dlv_shp_gate(w, d, false) == SHP_GATE_OPEN && !dlv_shp_over_limit(w, d) &&
	    !dlv_shp_source_gone(w, d))
		dlv_dest_start_next(w, d, c, true);
}

static void dlv_cl_failed(void *ctx, void *dest, const char *ecode, const char *reason)
{
	struct dlv_worker *w = ctx;
	struct dlv_dest *d = dest;

	log_msg(LOG_INFO, "delivery: %s: %s", d->dd_name, reason);
	dlv_met_conn(w, d, false);
	/* Every address of the route failed: the site is down for now.
	 * Health suspends it; what waits is deferred without an attempt
	 * each, until one probe says it is back. */
	dlv_shp_route_failed(w, d, ecode, reason);
}

static void dlv_cl_opened(void *ctx, void *dest)
{
	struct dlv_dest *d = dest;

	d->dd_nopening--;
	stat_inc(&((struct dlv_worker *)ctx)->w_sessions);
	dlv_met_conn(ctx, d, true);
	dlv_shp_opened(ctx, d);
}

static void dlv_cl_source_failed(void *ctx, void *dest, int err, const char *reason)
{
	log_msg(LOG_WARNING, "delivery: %s: %s", ((struct dlv_dest *)dest)->dd_name, reason);
	dlv_shp_source_failed(ctx, dest, err, reason);
}

static void dlv_cl_reply(void *ctx, void *dest, unsigned code, const char *ecode,
			 const char *text)
{
	dlv_shp_reply(ctx, dest, code, ecode, text);
}

static void dlv_cl_closed_after(void *ctx, void *dest, unsigned n, struct smtp_client_txn *t)
{
	struct dlv_worker *w = ctx;
	struct dlv_dest *d = dest;

	if (n != 0)	/* 0: a pipelined job back, no limit told */
		dlv_shp_closed_after(w, d, n);
	/* Not a failure: the job goes first in line, on a new session
	 * (this one is going; gone() kicks the destination). */
	if (t != NULL)
		dlv_dest_enqueue_front(d, (struct dlv_job *)((char *)t -
							     offsetof(struct dlv_job, dj_txn)));
}

static void dlv_cl_gone(void *ctx, void *dest, struct smtp_client *c, bool opening)
{
	struct dlv_worker *w = ctx;
	struct dlv_dest *d = dest;

	if (opening)
		d->dd_nopening--;
	/* Unlink c from the idle list if it is there. */
	if (d->dd_idle == c) {
		d->dd_idle = smtp_client_next_idle(c);
	} else {
		for (struct smtp_client *p = d->dd_idle; p != NULL; p = smtp_client_next_idle(p))
			if (smtp_client_next_idle(p) == c) {
				smtp_client_set_next_idle(p, smtp_client_next_idle(c));
				break;
			}
	}
	d->dd_nconns--;
	dlv_shp_conn_put(w, d);
	d->dd_last_active = io_loop_now();
	dlv_dest_kick(w, d);
}

static_assert((int)SMTP_CLIENT_R_NONE == DLV_R_NONE && (int)SMTP_CLIENT_R_SENT == DLV_R_SENT &&
	      (int)SMTP_CLIENT_R_DEFERRED == DLV_R_DEFERRED &&
	      (int)SMTP_CLIENT_R_FAILED == DLV_R_FAILED, "the client reports dlv_result values");

static void dlv_cl_rcpt_result(void *ctx, struct smtp_client_txn *t, unsigned k,
			       enum smtp_client_result res, const char *reply, const char *ecode,
			       const char *remote, const char *tls)
{
	struct dlv_job *j = (struct dlv_job *)((char *)t - offsetof(struct dlv_job, dj_txn));

	(void)ctx;
	dlv_rcpt_result(j, k, (enum dlv_result)res, reply, ecode, remote, t->ct_mail_refused);
	if (res == SMTP_CLIENT_R_SENT)
		j->dj_msg->dm_rcpts[j->dj_rcpts[k]].dr_dsn_passed = t->ct_dsn_sent;
	if (tls != NULL)
		dlv_rcpt_tls(j, k, tls);
}

static void dlv_cl_txn_done(void *ctx, struct smtp_client_txn *t)
{
	struct dlv_worker *w = ctx;
	struct dlv_job *j = (struct dlv_job *)((char *)t - offsetof(struct dlv_job, dj_txn));

	struct dlv_dest *d = NULL;
	bool sent = false;
	unsigned deferred = 0;

	for (unsigned k = 0; k < j->dj_nrcpt; k++) {
		uint8_t res = j->dj_msg->dm_rcpts[j->dj_rcpts[k]].dr_result;

		deferred += res == DLV_R_DEFERRED;
		sent = sent || res == DLV_R_SENT;
	}
	if (sent || deferred > 0)
		d = dlv_dest_find(w, j->dj_nexthop, j->dj_source ? j->dj_source : "default");
	if (d != NULL) {
		if (sent)
			dlv_shp_delivered(w, d);	/* the ramp's step */
		dlv_shp_deferred(w, d, deferred);
		if (!sent)
			d = NULL;
	}
	dlv_shp_job_release(w, j, sent);
	delivery_job_done(w, j);
	/* A ramp may allow one more connection now: here, and on the
	 * workers waiting for one. */
	if (d != NULL && d->dd_head != NULL && d->dd_shp.dp_eff.sl_max_connections != 0)
		dlv_dest_kick(w, d);
	if (d != NULL && d->dd_shp.dp_eff.sl_max_connections < d->dd_shp.dp_limits.sl_max_connections)
		dlv_spread_released(w, d);
}

static const struct smtp_client_ops dlv_cl_ops = {
	.rcpt_result = dlv_cl_rcpt_result,
	.txn_done = dlv_cl_txn_done,
	.opened = dlv_cl_opened,
	.ready = dlv_cl_ready,
	.ready_early = dlv_cl_ready_early,
	.failed = dlv_cl_failed,
	.gone = dlv_cl_gone,
	.reply = dlv_cl_reply,
	.closed_after = dlv_cl_closed_after,
	.source_failed = dlv_cl_source_failed,
};

static struct tls_ctx *dlv_cl_tls_client(void *arg)
{
	const struct delivery_env *env = arg;

	return env->de_tls_client(env->de_arg);
}

int dlv_worker_init(struct dlv_worker **w_r, const struct delivery_env *env, unsigned index,
		    char *err, size_t errlen)
{
	/* Aligned as the struct says (w_jobs has a cache line of its own);
	 * calloc promises only max_align_t. sizeof is a multiple of it. */
	struct dlv_worker *w = aligned_alloc(_Alignof(struct dlv_worker), sizeof(*w));

	*w_r = NULL;
	if (w == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memset(w, 0, sizeof(*w));
	w->w_env = env;
	w->w_index = index;
	w->w_loop = env->de_loop(env->de_arg, index);
	w->w_cfg = env->de_cfg;
	w->w_queue = env->de_queue;
	w->w_nbuckets = DLV_BUCKETS;
	w->w_rnd = 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)w;
	w->w_cl.ce_loop = w->w_loop;
	w->w_cl.ce_cfg = w->w_cfg;
	w->w_cl.ce_queue = w->w_queue;
	w->w_cl.ce_tls_client = dlv_cl_tls_client;
	w->w_cl.ce_tls_arg = (void *)env;
	w->w_cl.ce_creds = env->de_creds;
	w->w_cl.ce_ops = &dlv_cl_ops;
	w->w_cl.ce_ctx = w;
	pthread_mutex_init(&w->w_lock, NULL);
	w->w_dests = calloc(w->w_nbuckets, sizeof(*w->w_dests));
	if (w->w_dests == NULL ||
	    dns_init(&w->w_dns, w->w_loop, w->w_cfg->dns_servers, err, errlen) < 0) {
		if (w->w_dests == NULL)
			snprintf(err, errlen, "out of memory");
		free(w->w_dests);
		pthread_mutex_destroy(&w->w_lock);
		free(w);
		return -1;
	}
	*w_r = w;
	return 0;
}

void dlv_worker_close(struct dlv_worker *w)
{
	for (unsigned b = 0; w->w_dests != NULL && b < w->w_nbuckets; b++) {
		struct dlv_dest *d = w->w_dests[b], *next;

		for (; d != NULL; d = next) {
			next = d->dd_hnext;
			dlv_shp_dest_free(d);
			free(d->dd_name);
			free(d->dd_host);
			free(d);
		}
	}
	free(w->w_dests);
	w->w_dests = NULL;
	smtp_client_tls_env_close(&w->w_cl);
	shp_holder_cache_drop(&w->w_rules);
	dns_destroy(&w->w_dns);
}

void dlv_worker_destroy(struct dlv_worker **wp)
{
	struct dlv_worker *w = *wp;

	if (w == NULL)
		return;
	dlv_worker_close(w);
	pthread_mutex_destroy(&w->w_lock);
	free(w);
	*wp = NULL;
}

void dlv_worker_push(struct dlv_worker *w, struct dlv_job *j)
{
	bool was_empty;

	j->dj_next = NULL;
	atomic_fetch_add_explicit(&w->w_jobs, 1, memory_order_relaxed);
	pthread_mutex_lock(&w->w_lock);
	was_empty = w->w_in_head == NULL;
	if (w->w_in_tail != NULL)
		w->w_in_tail->dj_next = j;
	else
		w->w_in_head = j;
	w->w_in_tail = j;
	pthread_mutex_unlock(&w->w_lock);
	/* One wake per batch: the worker takes the whole inbox at once. */
	if (was_empty)
		io_loop_wake(w->w_loop);
}

void dlv_worker_on_wake(struct dlv_worker *w)
{
	struct dlv_job *j, *next;

	if (atomic_exchange_explicit(&w->w_sweep, false, memory_order_acq_rel) && !w->w_quiesce)
		dlv_worker_sweep(w);	/* a unit came back on another worker */
	pthread_mutex_lock(&w->w_lock);
	j = w->w_in_head;
	w->w_in_head = w->w_in_tail = NULL;
	pthread_mutex_unlock(&w->w_lock);
	for (; j != NULL; j = next) {
		struct dlv_dest *d;

		next = j->dj_next;
		if (w->w_quiesce) {
			dlv_job_end(w, j, DLV_R_NONE, "", "");
			continue;
		}
		if (j->dj_msg->dm_flags & QRECORD_F_LOOPING) {
			/* Counted at acceptance, by the body decoder. */
			char why[120];

			snprintf(why, sizeof(why), "too many hops (%u or more Received: header"
				 " fields): the message is looping", QRECORD_HOPCOUNT_LIMIT);
			dlv_job_end(w, j, DLV_R_FAILED, "5.4.6", why);
			continue;
		}
		{
			/* The source, from the message's pool (shaping). */
			char why[300];
			uint64_t retry_at;
			int pick = dlv_shp_pick(w, j, &retry_at, why, sizeof(why));

			if (pick == SHP_SRC_WAIT) {
				dlv_job_end_no_attempt(w, j, "4.4.5", why, retry_at);
				continue;
			}
			if (pick != SHP_SRC_OK) {
				log_msg(LOG_WARNING, "delivery: %s: %s", j->dj_nexthop, why);
				dlv_job_end(w, j, DLV_R_DEFERRED, "4.4.0", why);
				continue;
			}
		}
		if (dlv_job_held(w, j))
			continue;
		d = dlv_dest_get(w, j->dj_nexthop, j->dj_source);
		if (d == NULL) {
			dlv_job_end(w, j, DLV_R_DEFERRED, "4.3.0", "out of memory");
			continue;
		}
		dlv_dest_enqueue(d, j);
		dlv_dest_kick(w, d);
	}
}

void dlv_worker_set_config(struct dlv_worker *w, const struct config *cfg)
{
	w->w_cfg = cfg;
	w->w_cl.ce_cfg = cfg;
}

void dlv_worker_sweep(struct dlv_worker *w)
{
	for (unsigned b = 0; b < w->w_nbuckets; b++)
		for (struct dlv_dest *d = w->w_dests[b]; d != NULL; d = d->dd_hnext)
			if (d->dd_head != NULL && d->dd_shp.dp_waiting)
				dlv_dest_kick(w, d);
}

void dlv_worker_on_tick(struct dlv_worker *w, uint64_t now)
{
	struct dns_stats ds;

	dns_tick(w->w_dns);
	/* Publish for the metrics endpoint (dns.c's counters are private). */
	dns_get_stats(w->w_dns, &ds);
	atomic_store_explicit(&w->w_dns_lookups, ds.lookups, memory_order_relaxed);
	atomic_store_explicit(&w->w_dns_failures, ds.failures, memory_order_relaxed);
	for (unsigned b = 0; b < w->w_nbuckets; b++) {
		struct dlv_dest **pp = &w->w_dests[b], *d;

		while ((d = *pp) != NULL) {
			if (d->dd_head != NULL)
				dlv_dest_kick(w, d);
			else if (d->dd_idle != NULL && now > d->dd_last_active &&
				 dlv_spread_yield(w, d, true))
				dlv_dest_close_idle(w, d, true);	/* idle a second */
			if (d->dd_head == NULL && d->dd_nconns == 0 && !d->dd_resolving &&
			    now > d->dd_last_active + DLV_DEST_IDLE_FREE) {
				*pp = d->dd_hnext;
				dlv_shp_dest_free(d);
				free(d->dd_name);
				free(d->dd_host);
				free(d);
				continue;
			}
			pp = &d->dd_hnext;
		}
	}
	dlv_shp_top_publish(w);	/* the tick is once a second */
}

void dlv_worker_abort(struct dlv_worker *w)
{
	smtp_client_abort_all(&w->w_cl);
}

bool dlv_worker_quiesce(struct dlv_worker *w)
{
	bool idle = true;

	w->w_quiesce = true;
	dlv_worker_on_wake(w);		/* ends whatever is in the inbox */
	for (unsigned b = 0; b < w->w_nbuckets; b++) {
		for (struct dlv_dest *d = w->w_dests[b]; d != NULL; d = d->dd_hnext) {
			struct smtp_client *c;

			/* Jobs not started yet: nothing changes for them. */
			while (d->dd_head != NULL)
				dlv_job_end(w, dlv_dest_pop(d), DLV_R_NONE, "", "");
			while ((c = d->dd_idle) != NULL) {
				d->dd_idle = smtp_client_next_idle(c);
				smtp_client_set_next_idle(c, NULL);
				smtp_client_quit(c);
			}
			if (d->dd_nconns > 0 || d->dd_resolving)
				idle = false;
		}
	}
	return idle && w->w_cl.ce_nclients == 0;
}
