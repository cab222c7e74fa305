/*
 * smtp_server_txn.c: a mail transaction's body and its hand-off to the
 * queue: body slices kept in their receive buffers or copied into heap
 * chunks (bounded per message), the trace header, DKIM signing (a job
 * in the signing pool between the end of the body and the submit: the
 * signature is stored with the message, in the same commit, before the
 * 250), and the submit.
 */
#include "core/inbound/smtp_server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "core/base/log.h"
#include "core/config/config.h"
#include "core/dkim/dkim_job.h"
#include "core/dkim/dkim_table.h"
#include "core/events/events.h"
#include "core/shaping/shp_rules.h"
#include "io/listen.h"
#include "tls/tls.h"

/*
 * Bodies: a slice shorter than SMTP_BODY_COPY_MAX is copied, so slices
 * (16 octets each) stay few per octet even for dot-stuffed lines; a
 * receive buffer is kept only for a slice of a quarter of it or more, and
 * at most SMTP_BODY_KEEP_MAX of them per message. Copies go to heap
 * chunks that grow from SMTP_ARENA_MIN to SMTP_ARENA_MAX.
 */
#define SMTP_BODY_COPY_MAX 256u
#define SMTP_BODY_KEEP_MAX 32u
#define SMTP_ARENA_MIN (4u * 1024u)
#define SMTP_ARENA_MAX (1024u * 1024u)

/* ---- transactions ---- */

void smtp_server_txn_free(struct smtp_env *env, struct smtp_txn *t)
{
	for (unsigned i = 0; i < t->t_nbufs; i++)
		bufpool_unref(env->e_bufs, t->t_bufs[i]);
	for (uint32_t i = 0; i < t->t_nrcpt; i++)
	{
		free((char *)t->t_rcpts[i].addr);
		free((char *)t->t_rcpts[i].orcpt);
	}
	free(t->t_rcpts);
	free(t->t_envid);
	free(t->t_iov);
	free(t->t_bufs);
	free(t->t_prefix);
	free(t->t_sender);
	free(t->t_auth_results);
	queue_events_free(&t->t_msg.qm_events);
	dkim_job_free(&t->t_sign);
	shp_rules_unref(&t->t_rules);
	free(t);
}

void smtp_server_txn_end(struct smtp_session *s)
{
	if (s->s_txn != NULL)
		smtp_server_txn_free(s->s_env, s->s_txn);
	s->s_txn = NULL;
}

/* Hold b (one reference, the caller's) until the transaction ends. */
static int smtp_txn_hold(struct smtp_txn *t, struct io_buf *b)
{
	if (t->t_nbufs == t->t_buf_cap) {
		unsigned cap = t->t_buf_cap ? t->t_buf_cap * 2 : 4;
		struct io_buf **n = realloc(t->t_bufs, cap * sizeof(*n));

		if (n == NULL)
			return -ENOMEM;
		t->t_bufs = n;
		t->t_buf_cap = cap;
	}
	t->t_bufs[t->t_nbufs++] = b;
	return 0;
}

/* Whether the slice may stay in its receive buffer b (see the limits). */
static bool smtp_body_may_keep(struct smtp_session *s, struct smtp_txn *t,
			       struct io_buf *b, size_t len)
{
	if (len < SMTP_BODY_COPY_MAX)
		return false;
	if (b == t->t_keep_last)
		return true;
	if (len < b->ib_size / 4 || t->t_nkept >= SMTP_BODY_KEEP_MAX)
		return false;
	return (b->ib_flags & IO_BUF_F_HEAP) ||
	       !bufpool_low(s->s_env->e_bufs);
}

static void smtp_body_slice(struct smtp_txn *t, const char *p, size_t len);

/* Copy a slice into the transaction's heap chunks. */
static void smtp_body_copy(struct smtp_txn *t, const char *p, size_t len)
{
	while (len > 0 && !t->t_oom) {
		struct io_buf *a = t->t_arena;
		size_t n;

		if (a == NULL || t->t_arena_len == a->ib_size) {
			size_t size = a == NULL ? SMTP_ARENA_MIN : (size_t)a->ib_size * 2;

			if (size > SMTP_ARENA_MAX)
				size = SMTP_ARENA_MAX;
			a = bufpool_alloc_heap(size);
			if (a == NULL || smtp_txn_hold(t, a) < 0) {
				if (a != NULL)
					free(a);	/* never shared */
				t->t_oom = true;
				return;
			}
			t->t_arena = a;
			t->t_arena_len = 0;
		}
		n = a->ib_size - t->t_arena_len;
		if (n > len)
			n = len;
		memcpy(a->ib_data + t->t_arena_len, p, n);
		smtp_body_slice(t, a->ib_data + t->t_arena_len, n);
		t->t_arena_len += (uint32_t)n;
		p += n;
		len -= n;
	}
}

/* Body slices from the decoder: keep them in their buffer or copy them. */
void smtp_server_emit(void *ctx, const char *p, size_t len)
{
	struct smtp_session *s = ctx;
	struct smtp_txn *t = s->s_txn;
	struct io_buf *b = s->s_cur_buf;

	if (t->t_oom || len == 0)
		return;
	if (!smtp_body_may_keep(s, t, b, len)) {
		smtp_body_copy(t, p, len);
		return;
	}
	if (b != t->t_keep_last) {
		if (smtp_txn_hold(t, b) < 0) {
			t->t_oom = true;
			return;
		}
		io_buf_ref(b);
		t->t_keep_last = b;
		t->t_nkept++;
	}
	smtp_body_slice(t, p, len);
}

/* Record a slice that stays where it is until the transaction ends. */
static void smtp_body_slice(struct smtp_txn *t, const char *p, size_t len)
{
	struct iovec *last;

	if (t->t_oom)
		return;
	/* Contiguous with the previous slice: extend it. */
	last = &t->t_iov[t->t_niov - 1];
	if (t->t_niov > 1 && (const char *)last->iov_base + last->iov_len == p) {
		last->iov_len += len;
		return;
	}
	if (t->t_niov == t->t_iov_cap) {
		unsigned cap = t->t_iov_cap * 2;
		struct iovec *n = realloc(t->t_iov, cap * sizeof(*n));

		if (n == NULL) {
			t->t_oom = true;
			return;
		}
		t->t_iov = n;
		t->t_iov_cap = cap;
	}
	t->t_iov[t->t_niov].iov_base = (void *)p;
	t->t_iov[t->t_niov].iov_len = len;
	t->t_niov++;
}

void smtp_server_data_start(struct smtp_session *s, enum smtp_data_mode mode)
{
	struct smtp_txn *t = s->s_txn;

	if (t->t_iov == NULL) {
		t->t_iov_cap = 8;
		t->t_iov = malloc(t->t_iov_cap * sizeof(*t->t_iov));
		if (t->t_iov == NULL) {
			t->t_oom = true;
			t->t_iov_cap = 0;
		} else {
			t->t_iov[0].iov_base = NULL;	/* the trace header */
			t->t_iov[0].iov_len = 0;
			t->t_niov = 1;
		}
		smtp_data_init(&s->s_data, mode, smtp_server_cfg(s)->max_message_size);
		smtp_server_pool_begin(s);
	}
}

/* Received:, and Date:/Message-ID: when the message lacks them. */
static int smtp_build_prefix(struct smtp_session *s, struct smtp_txn *t,
			     uint64_t id, uint32_t flags)
{
	const struct config *cfg = smtp_server_cfg(s);
	const char *date = s->s_env->e_ops->date(s->s_env);
	const char *base = t->t_smtputf8 ? "UTF8SMTP" : s->s_esmtp ? "ESMTP" : "SMTP";
	bool tls = s->s_tls != NULL && s->s_tls->tc_done;
	size_t cap = 768 + strlen(cfg->hostname) * 2 + strlen(s->s_helo ? s->s_helo : "") +
		     (s->s_auth_user ? strlen(s->s_auth_user) : 0) +
		     (t->t_nrcpt == 1 ? t->t_rcpts[0].addr_len : 0) +
		     (t->t_auth_results != NULL ? strlen(t->t_auth_results) : 0);
	char ids[17], tlsinfo[128] = "", authinfo[300] = "";
	int n;

	t->t_prefix = malloc(cap);
	if (t->t_prefix == NULL)
		return -ENOMEM;
	queue_id_str(id, ids);
	/* RFC 3848 protocol names; TLS and the identity as comments. */
	if (tls)
		snprintf(tlsinfo, sizeof(tlsinfo), "\r\n\t(using %s with cipher %s)",
			 tls_conn_version(s->s_tls), tls_conn_cipher(s->s_tls));
	if (s->s_auth_user != NULL)
		snprintf(authinfo, sizeof(authinfo), "\r\n\t(Authenticated sender: %.250s)",
			 s->s_auth_user);
	n = snprintf(t->t_prefix, cap,
		     "Received: from %s ([%s])%s%s\r\n\tby %s (ringmta) with %s%s%s id %s",
		     s->s_helo ? s->s_helo : "unknown", s->s_addr, tlsinfo, authinfo,
		     cfg->hostname, base, tls ? "S" : "", s->s_auth_user ? "A" : "", ids);
	if (t->t_nrcpt == 1)
		n += snprintf(t->t_prefix + n, cap - (size_t)n, "\r\n\tfor <%.*s>",
			      (int)t->t_rcpts[0].addr_len, t->t_rcpts[0].addr);
	n += snprintf(t->t_prefix + n, cap - (size_t)n, "; %s\r\n", date);
	if (t->t_auth_results != NULL)	/* spf_inbound: after Received */
		n += snprintf(t->t_prefix + n, cap - (size_t)n, "%s", t->t_auth_results);
	if (!(flags & SMTP_DATA_F_HAS_DATE))
		n += snprintf(t->t_prefix + n, cap - (size_t)n, "Date: %s\r\n", date);
	if (!(flags & SMTP_DATA_F_HAS_MSGID))
		n += snprintf(t->t_prefix + n, cap - (size_t)n,
			      "Message-ID: <%s@%s>\r\n", ids, cfg->hostname);
	t->t_iov[0].iov_base = t->t_prefix;
	t->t_iov[0].iov_len = (size_t)n;
	return 0;
}

uint64_t smtp_server_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t smtp_now_us(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

static int smtp_sign_start(struct smtp_session *s, struct smtp_txn *t, uint64_t id);

/* The reception event, stored with the message (core/events). */
static void smtp_txn_event(struct smtp_session *s, struct smtp_txn *t)
{
	const struct config_listen *cl = &smtp_server_cfg(s)->listen[s->s_listener];
	struct event_origin o;
	char listener[80];

	if (!events_on(s->s_env->e_events))
		return;
	io_sockaddr_str((const struct sockaddr *)&cl->cl_addr, listener, sizeof(listener));
	o = (struct event_origin){
		.eo_client = s->s_addr,
		.eo_identity = s->s_auth_user,
		.eo_listener = listener,
	};
	(void)events_reception(s->s_env->e_events, &t->t_msg, &o);
}

/* The body is complete: refuse it, or hand it to the queue (through the
 * signer when a key table is loaded). */
void smtp_server_message_done(struct smtp_session *s)
{
	struct smtp_txn *t = s->s_txn;
	struct queue_msg *m = &t->t_msg;
	uint32_t flags = s->s_data.mode == SMTP_DATA_RAW ?
			 smtp_data_finish(&s->s_data) : s->s_data.flags;
	const char *refusal = smtp_data_refusal(flags);
	uint64_t id;

	s->s_state = SMTP_S_CMD;
	if (refusal != NULL || t->t_oom) {
		stat_inc(&s->s_env->e_stats.es_rejected);
		log_msg(LOG_INFO, "reject client=%s from=<%s> reason=\"%s\"", s->s_addr,
			t->t_sender, refusal ? refusal : "out of memory");
		smtp_server_txn_end(s);
		smtp_server_reply(s, "%s", refusal ? refusal :
				  "452 4.3.1 Insufficient system storage");
		return;
	}
	if (t->t_nrcpt == 0) {
		/* Every recipient was suppressed (suppression = drop): a
		 * deliberate policy, logged per recipient at RCPT and here. */
		log_msg(LOG_INFO, "dropped client=%s from=<%s> recipients=%u reason=\"every"
			" recipient suppressed\"", s->s_addr, t->t_sender, t->t_ndropped);
		smtp_server_txn_end(s);
		smtp_server_reply(s, "250 2.0.0 Ok: not queued, every recipient is suppressed");
		return;
	}
	if (smtp_server_pool_choose(s) < 0)
		return;
	id = s->s_env->e_ops->next_id(s->s_env);
	if (smtp_build_prefix(s, t, id, flags) < 0) {
		smtp_server_txn_end(s);
		smtp_server_reply(s, "452 4.3.1 Insufficient system storage");
		return;
	}
	memset(m, 0, sizeof(*m));
	m->qm_id = id;
	m->qm_rec.arrival = smtp_now_us();
	m->qm_rec.next_attempt = m->qm_rec.arrival;
	m->qm_rec.flags = ((flags & SMTP_DATA_F_8BIT) ? QRECORD_F_8BIT : 0) |
			  (t->t_smtputf8 ? QRECORD_F_SMTPUTF8 : 0) |
			  /* the client's Received: fields and ours */
			  (s->s_data.hops + 1u >= QRECORD_HOPCOUNT_LIMIT ? QRECORD_F_LOOPING : 0);
	m->qm_rec.sender = t->t_sender;
	m->qm_rec.sender_len = t->t_sender_len;
	m->qm_rec.dsn_ret = t->t_dsn_ret;
	m->qm_rec.envid = t->t_envid;
	m->qm_rec.envid_len = t->t_envid ? (uint16_t)strlen(t->t_envid) : 0;
	m->qm_rec.client = s->s_addr;
	m->qm_rec.client_len = (uint16_t)strlen(s->s_addr);
	m->qm_rec.helo = s->s_helo ? s->s_helo : "";
	m->qm_rec.helo_len = (uint16_t)strlen(m->qm_rec.helo);
	for (uint32_t i = 0; i < t->t_nrcpt; i++)
		t->t_rcpts[i].next_attempt = m->qm_rec.arrival;
	m->qm_rec.nrcpt = t->t_nrcpt;
	m->qm_rec.rcpts = t->t_rcpts;
	m->qm_iov = t->t_iov;
	m->qm_iovcnt = t->t_niov;
	t->t_end_ns = smtp_server_now_ns();	/* the 250's latency includes signing */
	s->s_state = SMTP_S_COMMIT;
	if (smtp_sign_start(s, t, id) != 0)
		return;		/* signing, or refused */
	smtp_server_pool_place(t);
	smtp_txn_event(s, t);
	s->s_env->e_ops->submit(s->s_env, m);
}

/* Hand the message to the signing pool when a key table is loaded.
 * Returns 0 when there is nothing to sign (submit now), 1 when the job is
 * out (state stays SMTP_S_COMMIT: no input), -1 when it was answered. */
static int smtp_sign_start(struct smtp_session *s, struct smtp_txn *t, uint64_t id)
{
	struct smtp_env *env = s->s_env;
	const struct config *cfg = smtp_server_cfg(s);
	struct dkim_job_params p;
	struct dkim_table *tab;
	char listener[80];

	if (env->e_ops->sign_table == NULL || env->e_ops->sign_submit == NULL ||
	    (tab = env->e_ops->sign_table(env)) == NULL)
		return 0;
	dkim_table_listener_name((const struct sockaddr *)&cfg->listen[s->s_listener].cl_addr,
				 listener, sizeof(listener));
	p = (struct dkim_job_params){
		.table = tab,
		.sender = t->t_sender,
		.user = s->s_auth_user,
		.listener = listener,
		.rcpt = t->t_nrcpt == 1 ? t->t_rcpts[0].addr : NULL,
		.nrcpt = t->t_nrcpt,
		.queue_id = id,
		.skip_header = t->t_rules != NULL ? shp_rules_pool_header(t->t_rules) : NULL,
	};
	dkim_job_params_config(&p, cfg);
	t->t_sign = dkim_job_new(&p, t->t_iov, t->t_niov, s, smtp_server_sign_done);
	dkim_table_unref(&tab);
	if (t->t_sign == NULL || env->e_ops->sign_submit(env, &t->t_sign->dj_work) < 0) {
		s->s_state = SMTP_S_CMD;
		log_msg(LOG_WARNING, "reject client=%s from=<%s> reason=\"signing unavailable\"",
			s->s_addr, t->t_sender);
		smtp_server_txn_end(s);
		smtp_server_reply(s, "451 4.3.0 Error: signing unavailable, try again later");
		return -1;
	}
	return 1;
}

/* The signature (or the refusal) is back: prepend it and submit, or
 * answer. The session waited in SMTP_S_COMMIT; a session whose client
 * left meanwhile (s_gone) ends here without queuing: no 250 was given. */
void smtp_server_sign_done(struct work_job *w)
{
	struct dkim_job *j = (struct dkim_job *)w;
	struct smtp_session *s = w->wj_owner;
	struct smtp_env *env;
	struct smtp_txn *t;
	char ids[17];

	if (s == NULL)
		return;	/* the server is going away; the transaction owns the job */
	env = s->s_env;
	t = s->s_txn;
	queue_id_str(t->t_msg.qm_id, ids);
	if (s->s_gone) {
		log_msg(LOG_INFO, "not queued id=%s client=%s from=<%s>: client gone while signing",
			ids, s->s_addr, t->t_sender);
		smtp_server_txn_end(s);
		smtp_server_session_free(s);
		return;
	}
	if (j->dj_unaligned) {
		stat_inc(&env->e_stats.es_dmarc_unaligned);
		log_msg(LOG_WARNING, "dmarc: unaligned id=%s client=%s from=<%s> header_from=%s"
			" dkim=%s action=%s", ids, s->s_addr, t->t_sender,
			j->dj_from[0] ? j->dj_from : "(none or several)",
			j->dj_sig[0] ? j->dj_sig : "none",
			j->dj_status == DKIM_JOB_REFUSED ? "reject" : "accept");
	}
	if (j->dj_note[0] != '\0')
		log_msg(LOG_INFO, "dkim: id=%s %s", ids, j->dj_note);
	if (j->dj_status == DKIM_JOB_REFUSED) {
		const char *r = j->dj_reason;

		stat_inc(strcmp(r, "no_key") == 0 ? &env->e_stats.es_dkim_refused_no_key :
			 strcmp(r, "unaligned") == 0 ? &env->e_stats.es_dkim_refused_unaligned :
			 &env->e_stats.es_dkim_refused_error);
		stat_inc(&env->e_stats.es_rejected);
		log_msg(LOG_INFO, "reject id=%s client=%s from=<%s> reason=\"%s\"", ids, s->s_addr,
			t->t_sender, j->dj_reply);
		s->s_state = SMTP_S_CMD;
		smtp_server_reply(s, "%s", j->dj_reply);
		smtp_server_txn_end(s);
		smtp_server_resume(s);
		return;
	}
	if (j->dj_status == DKIM_JOB_UNSIGNED) {
		stat_inc(&env->e_stats.es_dkim_unsigned_no_key);
	} else {
		/* Signatures (and added fields) above the trace header. */
		size_t plen = t->t_iov[0].iov_len;
		char *np = realloc(j->dj_prefix, j->dj_prefix_len + plen + 1);

		if (np == NULL) {
			s->s_state = SMTP_S_CMD;
			smtp_server_reply(s, "452 4.3.1 Insufficient system storage");
			smtp_server_txn_end(s);
			smtp_server_resume(s);
			return;
		}
		memcpy(np + j->dj_prefix_len, t->t_iov[0].iov_base, plen);
		free(t->t_prefix);
		t->t_prefix = np;
		j->dj_prefix = NULL;
		t->t_iov[0].iov_base = np;
		t->t_iov[0].iov_len = j->dj_prefix_len + plen;
		stat_inc(&env->e_stats.es_dkim_signed);
	}
	smtp_server_pool_place(t);
	smtp_txn_event(s, t);
	env->e_ops->submit(env, &t->t_msg);
}
