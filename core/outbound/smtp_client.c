/*
 * smtp_client.c: one outbound SMTP session (RFC 5321 client side) on a
 * worker: connect, greeting, EHLO (HELO when refused), then transactions
 * handed over by its destination, with PIPELINING when offered (RFC 2920:
 * MAIL, every RCPT and DATA in one send, and on a reused session that
 * group right behind the previous transaction's end of data, so a
 * message costs one round trip; replies are matched strictly in order).
 * The body goes out in windows of
 * CL_BODY_WINDOW bytes: for each, a read transaction is opened, the window
 * is copied (dot-stuffed) into the connection's output and the
 * transaction is closed again, and the next window follows when the
 * output has drained. Why a copy and not iovecs over the map: a read
 * transaction held while a slow receiver takes minutes to read a large
 * body stops LMDB from reusing freed pages (the file grows), and anything
 * the loop still sends from the map after the snapshot is released goes
 * out as whatever was written into those pages since, i.e. other mail.
 * With the copy, no map page is referenced outside one callback, and the
 * memory per sending session is bounded by the window.
 *
 * A reply before the whole body has been sent is a protocol error (the
 * server answered before it read the end of data, or lies): the attempt
 * is deferred and the connection is dropped, never counted as delivered.
 *
 * A session that fails before it is ready (connect, greeting, EHLO)
 * hands over to a new session on the next address of the route; after
 * the last one, the destination is told. A failure during a transaction
 * defers the recipients not yet settled.
 *
 * Everything the session learns goes to its owner through the callbacks
 * of its environment (smtp_client.h); it includes nothing of delivery.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/outbound/smtp_client_internal.h"
#include "core/base/log.h"
#include "core/shaping/shp_rules.h"
#include "core/wire/smtp_reply.h"
#include "tls/tls.h"



void smtp_route_unref(struct smtp_route *rt)
{
	if (rt != NULL && --rt->rt_refs == 0)
		free(rt);
}

struct smtp_client *smtp_client_next_idle(struct smtp_client *c)
{
	return c->c_next_idle;
}

void smtp_client_set_next_idle(struct smtp_client *c, struct smtp_client *n)
{
	c->c_next_idle = n;
}

/* Bytes for the server, encrypted when TLS is on. */
void cl_out(struct smtp_client *c, const char *p, size_t n)
{
	c->c_sent = true;
	if (c->c_tls != NULL) {
		if (tls_conn_write(c->c_tls, p, n) == 0)
			cl_tls_flush(c);
		return;
	}
	io_conn_write(&c->c_conn, p, n);
}

void cl_write(struct smtp_client *c, const char *fmt, ...)
{
	char buf[1200];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		cl_out(c, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

void cl_deadline(struct smtp_client *c, unsigned s)
{
	io_conn_set_deadline(&c->c_conn, s);
}

/* "code text" of the current reply, lines joined with "\n". */
static char *cl_reply_text(const struct smtp_reply *r)
{
	size_t n = (size_t)r->text_len + 8;
	char *s = malloc(n);

	if (s != NULL)
		snprintf(s, n, "%03u %s", r->code, r->text);
	return s;
}

static void cl_default_ecode(char out[12], unsigned code, const char *ecode)
{
	if (ecode != NULL && ecode[0] != '\0')
		snprintf(out, 12, "%s", ecode);
	else
		snprintf(out, 12, "%u.0.0", code / 100);
}

/* Settle job recipient k from a server reply. */
static void cl_settle_reply(struct smtp_client *c, unsigned k, const struct smtp_reply *r)
{
	char ecode[12];
	char *text = cl_reply_text(r);
	/* Only 2xx delivers; callers turn 1xx and 3xx into protocol errors. */
	enum smtp_client_result res = r->code >= 200 && r->code < 300 ? SMTP_CLIENT_R_SENT :
				      r->code >= 500 ? SMTP_CLIENT_R_FAILED :
				      SMTP_CLIENT_R_DEFERRED;

	cl_default_ecode(ecode, r->code, r->ecode);
	cl_ops_of(c)->rcpt_result(c->c_env->ce_ctx, c->c_job, k, res, text ? text : "reply",
				  ecode, c->c_remote, c->c_tlsinfo);
	free(text);
}

/* Done with t: its unsettled recipients get res with reason. */
void cl_txn_end(struct smtp_client *c, struct smtp_client_txn *t,
		enum smtp_client_result res, const char *ecode, const char *reason)
{
	for (unsigned k = 0; k < t->ct_nrcpt; k++)
		cl_ops_of(c)->rcpt_result(c->c_env->ce_ctx, t, k, res, reason, ecode, c->c_remote,
					  NULL);
	cl_ops_of(c)->txn_done(c->c_env->ce_ctx, t);
}

/* Finish the current job: unsettled recipients get res with reason. */
static void cl_job_end(struct smtp_client *c, enum smtp_client_result res, const char *ecode,
		       const char *reason)
{
	struct smtp_client_txn *j = c->c_job;

	if (j == NULL)
		return;
	free(c->c_rcpt_ok);
	c->c_rcpt_ok = NULL;
	c->c_job = NULL;
	c->c_job_pipelined = false;
	cl_txn_end(c, j, res, ecode, reason);
}

/* Take the pipelined transaction off the session (NULL: none). */
struct smtp_client_txn *cl_next_take(struct smtp_client *c)
{
	struct smtp_client_txn *t = c->c_next;

	free(c->c_next_rcpt_ok);
	c->c_next_rcpt_ok = NULL;
	c->c_next = NULL;
	return t;
}

/* Give the pipelined transaction back untried: its commands went out,
 * none was answered. Through closed_after (nmsgs 0: the close tells no
 * limit), so the owner tries it again at once on another session. */
void cl_next_return(struct smtp_client *c)
{
	struct smtp_client_txn *t = cl_next_take(c);

	if (t == NULL)
		return;
	if (cl_ops_of(c)->closed_after != NULL)
		cl_ops_of(c)->closed_after(c->c_env->ce_ctx, c->c_dest, 0, t);
	else
		cl_txn_end(c, t, SMTP_CLIENT_R_NONE, "", "");
}

/* The session is unusable: report, and close. Recipients not settled
 * yet are deferred with ecode. Mid-body the output is dropped: the rest
 * of a message the server will not take is useless to it, and the
 * receiver may have stopped reading. */
static void cl_vfail(struct smtp_client *c, const char *ecode, const char *fmt, va_list ap)
{
	bool in_body = c->c_state == CL_BODY;

	if (io_conn_closing(&c->c_conn))
		return;
	vsnprintf(c->c_error, sizeof(c->c_error), fmt, ap);
	if (c->c_job != NULL)
		cl_job_end(c, SMTP_CLIENT_R_DEFERRED, ecode, c->c_error);
	cl_next_return(c);
	if (!c->c_ready_once) {
		/* Not ready yet: try the next address of the route. */
		const struct dns_host *h;
		const struct sockaddr_storage *a;

		if (!c->c_no_handover && cl_candidate(c->c_route, c->c_candidate + 1, &h, &a)) {
			log_msg(LOG_DEBUG, "delivery: %s: %s; trying next host", c->c_remote,
				c->c_error);
			if (cl_open(c->c_env, c->c_dest, c->c_route, c->c_candidate + 1,
				    c->c_policy, &c->c_path) != NULL)
				c->c_gone_reported = true;	/* the new one counts */
		} else {
			/* 4.7.x (TLS, AUTH) says more than "no answer". */
			cl_ops_of(c)->failed(c->c_env->ce_ctx, c->c_dest,
					     strncmp(ecode, "4.7.", 4) == 0 ? ecode : "4.4.1",
					     c->c_error);
		}
	}
	/* Closing, the loop drops a peer that does not take the rest of
	 * the output within IO_CONN_LINGER_S. */
	if (in_body)
		io_conn_abort(&c->c_conn);
	else
		io_conn_close(&c->c_conn);
}

void cl_fail(struct smtp_client *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cl_vfail(c, "4.4.2", fmt, ap);
	va_end(ap);
}

void cl_fail_tls(struct smtp_client *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cl_vfail(c, c->c_path.cp_tls_required ? "4.7.5" : "4.4.2", fmt, ap);
	va_end(ap);
}

void cl_fail_auth(struct smtp_client *c, const char *ecode, bool handover, const char *fmt, ...)
{
	va_list ap;

	c->c_no_handover = !handover;
	va_start(ap, fmt);
	cl_vfail(c, ecode, fmt, ap);
	va_end(ap);
}

/* The server broke the protocol (a reply out of turn, or of a class that
 * cannot answer that command): defer what is open and close. */
static void cl_protocol_error(struct smtp_client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void cl_protocol_error(struct smtp_client *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cl_vfail(c, "4.5.0", fmt, ap);
	va_end(ap);
}

void cl_ready(struct smtp_client *c)
{
	if (c->c_opening) {
		c->c_opening = false;
		cl_ops_of(c)->opened(c->c_env->ce_ctx, c->c_dest);
	}
	c->c_state = CL_READY;
	c->c_ready_once = true;
	cl_deadline(c, c->c_path.cp_idle_s);
	cl_ops_of(c)->ready(c->c_env->ce_ctx, c->c_dest, c);
}

void cl_ehlo_done(struct smtp_client *c)
{
	if (c->c_path.cp_cred != NULL)
		cl_auth_start(c);
	else
		cl_ready(c);
}

void smtp_client_quit(struct smtp_client *c)
{
	if (io_conn_closing(&c->c_conn))
		return;
	c->c_state = CL_QUIT;
	cl_write(c, "QUIT\r\n");
	cl_deadline(c, 5);
}

/* A transaction is over: QUIT at the path's messages per connection or
 * at the next hop's LIMITS MAILMAX (RFC 9422: every MAIL counts, the
 * refused ones too), else ready for the next. Our own limit, so nothing
 * is learned from it, unlike a receiver that closes (closed_after). */
static void cl_txn_next(struct smtp_client *c)
{
	if (c->c_last_code == 421) {
		/* The server closes (RFC 5321 3.8): no next transaction
		 * here; the owner's waiting jobs go on a new session. */
		c->c_state = CL_QUIT;
		io_conn_close(&c->c_conn);
		return;
	}
	if (c->c_msgs >= c->c_path.cp_max_msgs ||
	    (c->c_limits.lm_mailmax != 0 && c->c_mails >= c->c_limits.lm_mailmax))
		smtp_client_quit(c);
	else
		cl_ready(c);
}

const struct smtp_limits *smtp_client_limits(const struct smtp_client *c)
{
	return &c->c_limits;
}



/* A transaction ended without a message (refused, or nobody to send
 * to): RSET, and with PIPELINING the next transaction right behind it. */
static void cl_rset(struct smtp_client *c)
{
	c->c_txn_refused = true;
	c->c_state = CL_RSET;
	cl_write(c, "RSET\r\n");
	cl_deadline(c, cl_cfg(c)->smtp_command_timeout);
	cl_pipeline_offer(c, false);
}

/* The reply that answers DATA (phase n+1). */
static void cl_on_data_reply(struct smtp_client *c, const struct smtp_reply *r)
{
	struct smtp_client_txn *j = c->c_job;

	if (r->code == 354) {
		if (!c->c_mail_ok || c->c_accepted == 0) {
			/* Nobody to send to: end the (empty) message. */
			cl_write(c, ".\r\n");
			c->c_state = CL_DOT_DISCARD;
			cl_deadline(c, cl_cfg(c)->smtp_data_done_timeout);
			return;
		}
		c->c_state = CL_BODY;
		cl_deadline(c, cl_cfg(c)->smtp_data_block_timeout);
		if (cl_body_more(c) < 0)
			cl_fail(c, "cannot send the message body");
		return;
	}
	if (r->code < 400) {
		/* 2xx to DATA: the server claims a message it never got. */
		cl_protocol_error(c, "host %s answered DATA with %03u %s", c->c_remote,
				  r->code, r->text);
		return;
	}
	/* DATA refused: accepted recipients take this reply. */
	if (c->c_mail_ok)
		for (unsigned k = 0; k < j->ct_nrcpt; k++)
			if (c->c_rcpt_ok[k])
				cl_settle_reply(c, k, r);
	cl_job_end(c, SMTP_CLIENT_R_DEFERRED, "4.0.0", "no reply to DATA");
	c->c_msgs++;
	cl_rset(c);
}

static void cl_on_txn_reply(struct smtp_client *c, const struct smtp_reply *r)
{
	struct smtp_client_txn *j = c->c_job;
	bool pipelined = (c->c_ext & SMTP_EXT_PIPELINING) != 0;
	unsigned phase = c->c_phase++;

	if (phase <= j->ct_nrcpt && (r->code < 200 || (r->code >= 300 && r->code < 400))) {
		/* MAIL and RCPT take 2xx, 4xx or 5xx; 354 here is out of turn. */
		cl_protocol_error(c, "host %s answered %s with %03u %s", c->c_remote,
				  phase == 0 ? "MAIL FROM" : "RCPT TO", r->code, r->text);
		return;
	}
	if (phase == 0) {
		c->c_txn_refused = false;	/* a transaction answered since */
		c->c_mail_ok = r->code >= 200 && r->code < 300;
		if (!c->c_mail_ok) {
			j->ct_mail_refused = true;
			for (unsigned k = 0; k < j->ct_nrcpt; k++)
				cl_settle_reply(c, k, r);
			if (!pipelined) {
				cl_job_end(c, SMTP_CLIENT_R_DEFERRED, "4.0.0", "MAIL refused");
				cl_rset(c);
			}
			return;		/* pipelined: RCPT and DATA replies follow */
		}
		if (!pipelined)
			cl_send_rcpt(c, j, 0);
		return;
	}
	if (phase <= j->ct_nrcpt) {
		unsigned k = phase - 1;

		if (c->c_mail_ok) {
			if (r->code >= 200 && r->code < 300) {
				c->c_rcpt_ok[k] = true;
				c->c_accepted++;
			} else {
				cl_settle_reply(c, k, r);
			}
		}
		if (!pipelined) {
			if (k + 1 < j->ct_nrcpt) {
				cl_send_rcpt(c, j, k + 1);
			} else if (c->c_accepted > 0) {
				cl_write(c, "DATA\r\n");
				cl_deadline(c, cl_cfg(c)->smtp_data_init_timeout);
			} else {
				cl_job_end(c, SMTP_CLIENT_R_DEFERRED, "4.0.0", "no recipient accepted");
				cl_rset(c);
			}
		}
		return;
	}
	cl_on_data_reply(c, r);
}

/* A 4xx or 5xx from the receiver goes to the owner (shaping rules). */
static void cl_report_error_reply(struct smtp_client *c, const struct smtp_reply *r)
{
	char text[600];
	size_t i;

	if (r->code < 400 || r->code > 599 || c->c_state == CL_QUIT ||
	    cl_ops_of(c)->reply == NULL)
		return;
	snprintf(text, sizeof(text), "%03u %.590s", r->code, r->text);
	for (i = 0; text[i]; i++)
		if (text[i] == '\n' || text[i] == '\r')
			text[i] = ' ';
	cl_ops_of(c)->reply(c->c_env->ce_ctx, c->c_dest, r->code, r->ecode,
			    text);
}

static void cl_on_reply(struct smtp_client *c, const struct smtp_reply *r)
{
	const struct config *cfg = cl_cfg(c);

	c->c_last_reply = io_loop_now();
	c->c_last_code = (uint16_t)r->code;
	/* The first reply after output: a round trip (replies to a group
	 * of pipelined commands count once). */
	if (c->c_sent) {
		c->c_sent = false;
		c->c_round_trips++;
		stat_inc(&c->c_env->ce_round_trips);
	}
	cl_report_error_reply(c, r);

	switch ((enum cl_state)c->c_state) {
	case CL_CONNECT:
		cl_fail(c, "%s: reply before connect completed", c->c_remote);
		return;
	case CL_GREETING:
		if (r->code != 220) {
			cl_fail(c, "host %s refused to talk to me: %03u %s", c->c_remote,
				r->code, r->text);
			return;
		}
		c->c_state = CL_EHLO;
		cl_write(c, "EHLO %s\r\n", c->c_path.cp_ehlo);
		cl_deadline(c, cfg->smtp_command_timeout);
		return;
	case CL_EHLO:
		/* LIMITS (RFC 9422) from every EHLO reply: those after
		 * STARTTLS replace those before; a refused EHLO (then HELO)
		 * leaves none. */
		if (smtp_limits_ehlo(r, &c->c_limits))
			log_msg(LOG_DEBUG, "delivery: %s: LIMITS RCPTMAX=%u MAILMAX=%u"
				" RCPTDOMAINMAX=%u", c->c_remote, c->c_limits.lm_rcptmax,
				c->c_limits.lm_mailmax, c->c_limits.lm_rcptdomainmax);
		if (r->code == 250) {
			c->c_ext = smtp_reply_ehlo(r, &c->c_maxsize);
			if (c->c_tls == NULL && c->c_policy >= CONFIG_TLS_MAY && !c->c_no_tls &&
			    (c->c_ext & SMTP_EXT_STARTTLS)) {
				c->c_state = CL_STARTTLS;
				cl_write(c, "STARTTLS\r\n");
				cl_deadline(c, cfg->smtp_command_timeout);
				return;
			}
			if (c->c_tls == NULL && c->c_policy >= CONFIG_TLS_ENCRYPT) {
				cl_fail_tls(c, "TLS is required, but was not offered by host %s",
					    c->c_remote);
				return;
			}
			cl_ehlo_done(c);
		} else if (r->code >= 500) {
			c->c_state = CL_HELO;
			cl_write(c, "HELO %s\r\n", c->c_path.cp_ehlo);
			cl_deadline(c, cfg->smtp_command_timeout);
		} else {
			cl_fail(c, "host %s refused EHLO: %03u %s", c->c_remote, r->code, r->text);
		}
		return;
	case CL_STARTTLS:
		if (r->code != 220) {
			if (c->c_policy >= CONFIG_TLS_ENCRYPT) {
				cl_fail_tls(c, "host %s refused STARTTLS: %03u %s", c->c_remote,
					    r->code, r->text);
				return;
			}
			cl_ehlo_done(c);	/* "may": go on in cleartext */
			return;
		}
		cl_tls_start(c);
		return;
	case CL_TLS_HANDSHAKE:
		cl_fail(c, "host %s sent cleartext during the TLS handshake", c->c_remote);
		return;
	case CL_HELO:
		if (r->code != 250) {
			cl_fail(c, "host %s refused HELO: %03u %s", c->c_remote, r->code, r->text);
			return;
		}
		c->c_ext = 0;
		c->c_maxsize = 0;
		cl_ehlo_done(c);
		return;
	case CL_READY:
		/* Unsolicited: a 421 before closing, typically. */
		cl_fail(c, "host %s said: %03u %s", c->c_remote, r->code, r->text);
		return;
	case CL_TXN:
		cl_on_txn_reply(c, r);
		return;
	case CL_BODY:
		/* Before the end of data has been sent: the server did not
		 * read the message it answers for (or lies). */
		cl_protocol_error(c, "host %s replied before the end of the message: %03u %s",
				  c->c_remote, r->code, r->text);
		return;
	case CL_DATA_DONE: {
		struct smtp_client_txn *j = c->c_job;

		if (r->code < 200 || (r->code >= 300 && r->code < 400)) {
			cl_protocol_error(c, "host %s answered the end of the message with %03u %s",
					  c->c_remote, r->code, r->text);
			return;
		}
		for (unsigned k = 0; k < j->ct_nrcpt; k++)
			if (c->c_rcpt_ok[k])
				cl_settle_reply(c, k, r);
		cl_job_end(c, SMTP_CLIENT_R_DEFERRED, "4.0.0", "no final reply");
		c->c_msgs++;
		if (c->c_next != NULL)
			cl_next_begin(c, r->code);
		else
			cl_txn_next(c);
		return;
	}
	case CL_DOT_DISCARD:
		cl_job_end(c, SMTP_CLIENT_R_DEFERRED, "4.0.0", "no recipient accepted");
		c->c_msgs++;
		cl_rset(c);
		return;
	case CL_RSET:
		/* Whatever RSET got, the pipelined MAIL behind it has its own
		 * reply coming (a 421 closes: it goes back untried). */
		if (c->c_next != NULL)
			cl_next_begin(c, r->code);
		else
			cl_txn_next(c);
		return;
	case CL_QUIT:
		io_conn_close(&c->c_conn);
		return;
	case CL_AUTH:
		cl_auth_reply(c, r);
		return;
	}
}




static void cl_on_recv(struct io_conn *conn, struct io_buf *b, size_t len)
{
	struct smtp_client *c = (struct smtp_client *)conn;

	if (c->c_tls != NULL)
		cl_tls_input(c, b, len);
	else
		cl_on_replies(c, b->ib_data, len);
}

void cl_on_replies(struct smtp_client *c, const char *p, size_t len)
{
	struct io_conn *conn = &c->c_conn;

	while (len > 0 && !io_conn_closing(conn)) {
		size_t used = 0;
		int rc = smtp_reply_feed(&c->c_rp, p, len, &used, &c->c_reply);

		if (rc < 0) {
			cl_fail(c, "host %s sent a malformed reply", c->c_remote);
			return;
		}
		p += used;
		len -= used;
		if (rc == SMTP_REPLY_MORE)
			return;
		cl_on_reply(c, &c->c_reply);
		/* After 220 to STARTTLS, cleartext that followed is dropped. */
		if (c->c_state == CL_TLS_HANDSHAKE && c->c_tls != NULL && !c->c_tls->tc_done)
			return;
	}
}

static const char *cl_state_name(uint8_t st)
{
	static const char *const names[] = {
		"connecting", "waiting for the greeting", "after EHLO", "after HELO",
		"idle", "in the transaction", "sending the message", "after DATA",
		"after RSET", "after QUIT", "after STARTTLS", "in the TLS handshake",
		"waiting for the reply to the end of the message", "in AUTH",
	};
	return st < sizeof(names) / sizeof(names[0]) ? names[st] : "?";
}


/* Closes that tell a per-connection message limit: right after a reply
 * (not an idle timeout of the receiver's), or at the next MAIL without
 * answering it; and only when that last reply was not an error: a 421
 * (or any 4xx/5xx) and a close is the receiver saying why it closes
 * (RFC 5321 4.2.2), a deferral, not a limit of N messages. Nor after a
 * refused transaction, even with the RSET that followed answered 250:
 * receivers close on refused recipients (a guard against address
 * harvesting), which says nothing of how many messages they take. */
#define CL_CLOSE_AFTER_REPLY_S 2u

static void cl_on_eof(struct io_conn *conn, int err)
{
	struct smtp_client *c = (struct smtp_client *)conn;
	/* A close that tells the receiver's messages per connection. */
	bool limit = c->c_msgs > 0 && c->c_last_code < 400 && !c->c_txn_refused;

	if (c->c_state == CL_TXN && c->c_phase == 0 && c->c_job != NULL &&
	    (limit || c->c_job_pipelined || c->c_txn_refused) &&
	    cl_ops_of(c)->closed_after != NULL) {
		/* Nothing of this transaction was answered: the receiver's
		 * limit, not a failure (after an error reply, a refused
		 * transaction, or a job that followed the previous end of
		 * data unasked, no limit is told: nmsgs 0). The owner takes
		 * the job back. */
		struct smtp_client_txn *t = c->c_job;
		unsigned n = limit ? c->c_msgs : 0;

		free(c->c_rcpt_ok);
		c->c_rcpt_ok = NULL;
		c->c_job = NULL;
		c->c_state = CL_QUIT;
		c->c_job_pipelined = false;
		cl_ops_of(c)->closed_after(c->c_env->ce_ctx, c->c_dest, n, t);
		io_conn_close(conn);
		return;
	}
	if (c->c_state == CL_READY && c->c_job == NULL && limit &&
	    io_loop_now() <= c->c_last_reply + CL_CLOSE_AFTER_REPLY_S &&
	    cl_ops_of(c)->closed_after != NULL)
		cl_ops_of(c)->closed_after(c->c_env->ce_ctx, c->c_dest, c->c_msgs, NULL);
	if (c->c_state == CL_QUIT || (c->c_state == CL_READY && c->c_job == NULL)) {
		io_conn_close(conn);
		return;
	}
	/* A server that gives up on the handshake often just closes: that is
	 * a failed handshake (cleartext fallback applies), not a lost line. */
	if (c->c_state == CL_TLS_HANDSHAKE && c->c_tls != NULL && !c->c_tls->tc_done) {
		snprintf(c->c_tls->tc_error, sizeof(c->c_tls->tc_error),
			 "connection closed during the handshake");
		cl_tls_failed(c);
		return;
	}
	cl_fail(c, "lost connection with %s %s%s%s", c->c_remote, cl_state_name(c->c_state),
		err ? ": " : "", err ? strerror(-err) : "");
}

static void cl_on_drained(struct io_conn *conn)
{
	struct smtp_client *c = (struct smtp_client *)conn;

	if (c->c_state != CL_BODY)
		return;
	if (!c->c_body_end) {
		/* The window went out: the next one, with a fresh deadline
		 * (the receiver is making progress). */
		cl_deadline(c, cl_cfg(c)->smtp_data_block_timeout);
		if (cl_body_more(c) < 0)
			cl_fail(c, "cannot send the message body");
		return;
	}
	/* The whole body and the "." are out: now wait for the final reply. */
	c->c_state = CL_DATA_DONE;
	cl_deadline(c, cl_cfg(c)->smtp_data_done_timeout);
}

static void cl_on_timeout(struct io_conn *conn)
{
	struct smtp_client *c = (struct smtp_client *)conn;

	if (c->c_state == CL_QUIT) {
		/* No 221: the peer does not answer; give up on it. */
		io_conn_abort(conn);
		return;
	}
	if (c->c_state == CL_READY) {
		smtp_client_quit(c);	/* idle too long */
		return;
	}
	cl_fail(c, "conversation with %s timed out %s", c->c_remote, cl_state_name(c->c_state));
}

static void cl_on_connected(struct io_conn *conn, int res)
{
	struct smtp_client *c = (struct smtp_client *)conn;

	if (res < 0) {
		cl_fail(c, "connect to %s: %s", c->c_remote, strerror(-res));
		return;
	}
	if (c->c_path.cp_implicit_tls) {
		/* Port 465 and the like: the handshake first, then the 220. */
		cl_tls_start(c);
		return;
	}
	c->c_state = CL_GREETING;
	cl_deadline(c, cl_cfg(c)->smtp_command_timeout);
}

static void cl_on_delay(struct io_conn *conn)
{
	struct smtp_client *c = (struct smtp_client *)conn;

	if (!c->c_waiting)
		return;
	c->c_waiting = false;
	if (c->c_state == CL_READY && c->c_job == NULL && !io_conn_closing(conn))
		cl_ready(c);
}

void smtp_client_wait(struct smtp_client *c, unsigned ms)
{
	/* A delay already in flight (cannot happen on an idle session)
	 * leaves it idle: the owner's tick looks again. */
	if (io_conn_delay(&c->c_conn, ms ? ms : 1) == 0)
		c->c_waiting = true;
}

static void cl_on_free(struct io_conn *conn)
{
	struct smtp_client *c = (struct smtp_client *)conn;
	struct smtp_client_txn *t = cl_next_take(c);

	if (t != NULL)		/* every way out returns it first; never lost */
		cl_txn_end(c, t, SMTP_CLIENT_R_NONE, "", "");
	/* The same for the current one (on_eof settles it; a session freed
	 * without it must not keep the message from ever being tried). */
	if (c->c_job != NULL) {
		log_msg(LOG_WARNING, "delivery: %s: session freed (%s) holding a transaction;"
			" deferred", c->c_remote, cl_state_name(c->c_state));
		cl_job_end(c, SMTP_CLIENT_R_DEFERRED, "4.4.2", "connection closed");
	}
	log_msg(LOG_DEBUG, "delivery: %s: %u transactions, %u round trips", c->c_remote,
		c->c_mails, c->c_round_trips);
	free(c->c_rcpt_ok);
	if (c->c_tls != NULL) {
		tls_conn_free(c->c_tls);
		free(c->c_tls);
	}
	if (!c->c_gone_reported)
		cl_ops_of(c)->gone(c->c_env->ce_ctx, c->c_dest, c, c->c_opening);
	smtp_route_unref(c->c_route);
	smtp_creds_unref(&c->c_path.cp_creds);
	if (c->c_all_prev != NULL)
		c->c_all_prev->c_all_next = c->c_all_next;
	else
		c->c_env->ce_clients = c->c_all_next;
	if (c->c_all_next != NULL)
		c->c_all_next->c_all_prev = c->c_all_prev;
	c->c_env->ce_nclients--;
	free(c);
}

void smtp_client_abort_all(struct smtp_client_env *env)
{
	for (struct smtp_client *c = env->ce_clients; c != NULL; c = c->c_all_next) {
		if (io_conn_closing(&c->c_conn))
			continue;
		struct smtp_client_txn *t = cl_next_take(c);

		cl_job_end(c, SMTP_CLIENT_R_NONE, "", "");
		if (t != NULL)
			cl_txn_end(c, t, SMTP_CLIENT_R_NONE, "", "");
		c->c_gone_reported = false;
		c->c_ready_once = true;		/* no hand-over to another host */
		io_conn_abort(&c->c_conn);	/* the shutdown deadline passed */
	}
}

const struct io_conn_ops cl_conn_ops = {
	.on_recv = cl_on_recv,
	.on_eof = cl_on_eof,
	.on_drained = cl_on_drained,
	.on_timeout = cl_on_timeout,
	.on_delay = cl_on_delay,
	.on_free = cl_on_free,
	.on_connected = cl_on_connected,
};
