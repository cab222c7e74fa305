/*
 * smtp_client.c: one outbound SMTP session (RFC 5321 client side) on a
 * worker: connect, greeting, EHLO (HELO when refused), then transactions
 * handed over by its destination, with PIPELINING when offered (RFC 2920:
 * MAIL, every RCPT and DATA in one send). The body goes from the queue's
 * map to the socket without a user-space copy: the session holds a read
 * snapshot of the body and sends iovecs over it, with a one-byte "." piece
 * inserted before each line that starts with a dot (dot-stuffing).
 *
 * A session that fails before it is ready (connect, greeting, EHLO)
 * hands over to a new session on the next address of the route; after
 * the last one, the destination is told. A failure during a transaction
 * defers the recipients not yet settled.
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

#include "core/delivery/delivery_internal.h"
#include "core/base/log.h"
#include "core/app/server.h"
#include "tls/tls.h"

enum cl_state {
	CL_CONNECT = 0,
	CL_GREETING,
	CL_EHLO,
	CL_HELO,
	CL_READY,		/* idle between transactions */
	CL_TXN,			/* MAIL / RCPT / DATA replies expected */
	CL_BODY,		/* body sent or sending; final reply expected */
	CL_DOT_DISCARD,		/* 354 with no recipient: "." sent */
	CL_RSET,
	CL_QUIT,
	CL_STARTTLS,		/* STARTTLS sent, 220 expected */
	CL_TLS_HANDSHAKE,	/* handshake running; EHLO again after */
};

struct smtp_client {
	struct io_conn c_conn;		/* first: container_of from io */
	struct dlv_worker *c_w;
	struct dlv_dest *c_dest;
	struct dlv_route *c_route;	/* one reference */
	struct smtp_client *c_next_idle;
	struct smtp_client *c_all_next, *c_all_prev;	/* worker's list */
	unsigned c_candidate;		/* index over (host, address) pairs */
	struct sockaddr_storage c_sa;
	uint8_t c_state;
	bool c_ready_once;
	bool c_gone_reported;
	bool c_mail_ok;
	uint32_t c_ext;
	uint64_t c_maxsize;
	unsigned c_phase;		/* 0 MAIL, 1..n RCPT, n+1 DATA */
	unsigned c_accepted;
	unsigned c_msgs;
	struct dlv_job *c_job;
	bool *c_rcpt_ok;		/* per job recipient: RCPT accepted */
	struct queue_body c_body;
	struct iovec *c_iov;
	unsigned c_niov, c_iov_cap;
	char c_remote[300];		/* host[ip]:port */
	char c_host[256];		/* MX host name: SNI and verification */
	struct tls_conn *c_tls;		/* owned; NULL in cleartext */
	uint8_t c_policy;		/* enum config_tls_policy for this hop */
	bool c_no_tls;			/* a cleartext retry after a failed handshake */
	char c_tlsinfo[80];		/* "TLSv1.3 TLS_AES_128_GCM_SHA256" */
	size_t c_body_left;		/* TLS: plaintext body bytes not yet encrypted */
	char c_error[400];		/* why the session failed */
	struct smtp_reply_parser c_rp;
	struct smtp_reply c_reply;
};

static const struct io_conn_ops cl_ops;
static void cl_tls_start(struct smtp_client *c);
static void cl_tls_failed(struct smtp_client *c);

static const struct config *cl_cfg(const struct smtp_client *c)
{
	return c->c_w->w_cfg;
}

struct smtp_client *smtp_client_next_idle(struct smtp_client *c)
{
	return c->c_next_idle;
}

void smtp_client_set_next_idle(struct smtp_client *c, struct smtp_client *n)
{
	c->c_next_idle = n;
}

/* The n-th (host, address) pair of the route, or false past the end. */
static bool cl_candidate(const struct dlv_route *rt, unsigned n,
			 const struct dns_host **h_r, const struct sockaddr_storage **a_r)
{
	for (unsigned i = 0; i < rt->rt_dns.dr_nhosts; i++) {
		const struct dns_host *h = &rt->rt_dns.dr_hosts[i];

		if (n < h->dh_naddr) {
			*h_r = h;
			*a_r = &h->dh_addr[n];
			return true;
		}
		n -= h->dh_naddr;
	}
	return false;
}

/* Move what the TLS engine produced to the socket. */
static void cl_tls_flush(struct smtp_client *c)
{
	char buf[16384];
	size_t n;

	while ((n = tls_conn_take(c->c_tls, buf, sizeof(buf))) > 0)
		io_conn_write(&c->c_conn, buf, n);
}

/* Bytes for the server, encrypted when TLS is on. */
static void cl_out(struct smtp_client *c, const char *p, size_t n)
{
	if (c->c_tls != NULL) {
		if (tls_conn_write(c->c_tls, p, n) == 0)
			cl_tls_flush(c);
		return;
	}
	io_conn_write(&c->c_conn, p, n);
}

static void cl_write(struct smtp_client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void cl_write(struct smtp_client *c, const char *fmt, ...)
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

static void cl_deadline(struct smtp_client *c, unsigned s)
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
	enum dlv_result res = r->code < 400 ? DLV_R_SENT :
			      r->code < 500 ? DLV_R_DEFERRED : DLV_R_FAILED;

	cl_default_ecode(ecode, r->code, r->ecode);
	dlv_rcpt_result(c->c_job, k, res, text ? text : "reply", ecode, c->c_remote);
	dlv_rcpt_tls(c->c_job, k, c->c_tlsinfo);
	free(text);
}

/* Finish the current job: unsettled recipients get res with reason. */
static void cl_job_end(struct smtp_client *c, enum dlv_result res, const char *ecode,
		       const char *reason)
{
	struct dlv_job *j = c->c_job;

	if (j == NULL)
		return;
	for (unsigned k = 0; k < j->dj_nrcpt; k++)
		dlv_rcpt_result(j, k, res, reason, ecode, c->c_remote);
	queue_body_release(&c->c_body);
	free(c->c_rcpt_ok);
	c->c_rcpt_ok = NULL;
	c->c_job = NULL;
	delivery_job_done(c->c_w, j);
}

/* The session is unusable: report, and close. */
static void cl_fail(struct smtp_client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void cl_fail(struct smtp_client *c, const char *fmt, ...)
{
	va_list ap;

	if (io_conn_closing(&c->c_conn))
		return;
	va_start(ap, fmt);
	vsnprintf(c->c_error, sizeof(c->c_error), fmt, ap);
	va_end(ap);
	if (c->c_job != NULL)
		cl_job_end(c, DLV_R_DEFERRED, "4.4.2", c->c_error);
	if (!c->c_ready_once) {
		/* Not ready yet: try the next address of the route. */
		const struct dns_host *h;
		const struct sockaddr_storage *a;

		if (cl_candidate(c->c_route, c->c_candidate + 1, &h, &a)) {
			log_msg(LOG_DEBUG, "delivery: %s: %s; trying next host", c->c_remote,
				c->c_error);
			if (smtp_client_open(c->c_w, c->c_dest, c->c_route,
					     c->c_candidate + 1) != NULL)
				c->c_gone_reported = true;	/* the new one counts */
		} else {
			dlv_dest_client_failed(c->c_w, c->c_dest, "4.4.1", c->c_error);
		}
	}
	io_conn_close(&c->c_conn);
}

static void cl_ready(struct smtp_client *c)
{
	c->c_state = CL_READY;
	c->c_ready_once = true;
	cl_deadline(c, cl_cfg(c)->smtp_idle_timeout);
	dlv_dest_client_ready(c->c_w, c->c_dest, c);
}

void smtp_client_quit(struct smtp_client *c)
{
	if (io_conn_closing(&c->c_conn))
		return;
	c->c_state = CL_QUIT;
	cl_write(c, "QUIT\r\n");
	cl_deadline(c, 5);
}

/* Build the DATA iovecs: the body with dot-stuffing, then the end. */
static int cl_body_iov(struct smtp_client *c)
{
	static char dot[] = ".";
	static char end_crlf[] = ".\r\n", end_nocrlf[] = "\r\n.\r\n";
	const char *p = c->c_body.qb_data, *end = p + c->c_body.qb_len, *seg = p;

	c->c_niov = 0;
	for (;;) {
		const char *lf;

		if (c->c_niov + 3 > c->c_iov_cap) {
			unsigned cap = c->c_iov_cap ? c->c_iov_cap * 2 : 16;
			struct iovec *n = realloc(c->c_iov, cap * sizeof(*n));

			if (n == NULL)
				return -ENOMEM;
			c->c_iov = n;
			c->c_iov_cap = cap;
		}
		/* A line starting at p that starts with '.': stuff it. */
		if (p < end && *p == '.') {
			if (p > seg) {
				c->c_iov[c->c_niov].iov_base = (void *)seg;
				c->c_iov[c->c_niov++].iov_len = (size_t)(p - seg);
			}
			c->c_iov[c->c_niov].iov_base = dot;
			c->c_iov[c->c_niov++].iov_len = 1;
			seg = p;
		}
		lf = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
		if (lf == NULL)
			break;
		p = lf + 1;
	}
	if (end > seg) {
		c->c_iov[c->c_niov].iov_base = (void *)seg;
		c->c_iov[c->c_niov++].iov_len = (size_t)(end - seg);
	}
	if (c->c_body.qb_len >= 2 && end[-2] == '\r' && end[-1] == '\n') {
		c->c_iov[c->c_niov].iov_base = end_crlf;
		c->c_iov[c->c_niov++].iov_len = 3;
	} else {
		c->c_iov[c->c_niov].iov_base = end_nocrlf;
		c->c_iov[c->c_niov++].iov_len = 5;
	}
	return 0;
}

static void cl_send_rcpt(struct smtp_client *c, unsigned k)
{
	const struct dlv_msg *m = c->c_job->dj_msg;

	cl_write(c, "RCPT TO:<%s>\r\n", m->dm_rcpts[c->c_job->dj_rcpts[k]].dr_addr);
}

void smtp_client_start_job(struct smtp_client *c, struct dlv_job *j)
{
	const struct dlv_msg *m = j->dj_msg;
	bool utf8 = (m->dm_flags & QRECORD_F_SMTPUTF8) != 0;
	int rc;

	c->c_job = j;
	c->c_state = CL_TXN;
	c->c_phase = 0;
	c->c_accepted = 0;
	c->c_mail_ok = false;
	c->c_rcpt_ok = calloc(j->dj_nrcpt, sizeof(bool));
	if (c->c_rcpt_ok == NULL) {
		cl_fail(c, "out of memory");
		return;
	}
	if (utf8 && !(c->c_ext & SMTP_EXT_SMTPUTF8)) {
		cl_job_end(c, DLV_R_FAILED, "5.6.7",
			   "SMTPUTF8 is required, but was not offered by the remote server");
		cl_ready(c);
		return;
	}
	if (c->c_maxsize != 0 && m->dm_size > c->c_maxsize) {
		cl_job_end(c, DLV_R_FAILED, "5.3.4",
			   "message size exceeds the remote server's fixed limit");
		cl_ready(c);
		return;
	}
	rc = queue_body_get(c->c_w->w_queue, m->dm_id, &c->c_body);
	if (rc < 0) {
		cl_job_end(c, DLV_R_DEFERRED, "4.3.0", "queue file read error");
		cl_ready(c);
		return;
	}
	{
		char size[32] = "";

		/* SIZE= the stored size (RFC 1870), when offered. */
		if (c->c_ext & SMTP_EXT_SIZE)
			snprintf(size, sizeof(size), " SIZE=%llu",
				 (unsigned long long)c->c_body.qb_len);
		cl_write(c, "MAIL FROM:<%s>%s%s%s\r\n", m->dm_sender, size,
			 ((m->dm_flags & QRECORD_F_8BIT) && (c->c_ext & SMTP_EXT_8BITMIME)) ?
			 " BODY=8BITMIME" : "", utf8 ? " SMTPUTF8" : "");
	}
	if (c->c_ext & SMTP_EXT_PIPELINING) {
		for (unsigned k = 0; k < j->dj_nrcpt; k++)
			cl_send_rcpt(c, k);
		cl_write(c, "DATA\r\n");
	}
	cl_deadline(c, cl_cfg(c)->smtp_command_timeout);
}

/* TLS: encrypt the next portion of the body (iovecs from the map). The
 * cleartext path sends the iovecs themselves without copying; under TLS
 * the encryption is the one pass over the bytes. */
static void cl_tls_body_more(struct smtp_client *c)
{
	size_t budget = 256 * 1024;
	unsigned i = 0;

	while (i < c->c_niov && budget > 0) {
		struct iovec *v = &c->c_iov[i];
		size_t n = v->iov_len < budget ? v->iov_len : budget;

		if (n > 0 && tls_conn_write(c->c_tls, v->iov_base, n) < 0) {
			cl_fail(c, "TLS error while sending the message: %s", c->c_tls->tc_error);
			return;
		}
		v->iov_base = (char *)v->iov_base + n;
		v->iov_len -= n;
		budget -= n;
		if (v->iov_len == 0)
			i++;
	}
	memmove(c->c_iov, c->c_iov + i, (c->c_niov - i) * sizeof(*c->c_iov));
	c->c_niov -= i;
	c->c_body_left = c->c_niov > 0;
	cl_tls_flush(c);
}

/* The reply that answers DATA (phase n+1). */
static void cl_on_data_reply(struct smtp_client *c, const struct smtp_reply *r)
{
	struct dlv_job *j = c->c_job;

	if (r->code == 354) {
		if (!c->c_mail_ok || c->c_accepted == 0) {
			/* Nobody to send to: end the (empty) message. */
			cl_write(c, ".\r\n");
			c->c_state = CL_DOT_DISCARD;
			cl_deadline(c, cl_cfg(c)->smtp_data_done_timeout);
			return;
		}
		if (cl_body_iov(c) < 0) {
			cl_fail(c, "cannot send the message body");
			return;
		}
		c->c_state = CL_BODY;
		if (c->c_tls != NULL) {
			c->c_body_left = 1;	/* encrypted in portions as it drains */
			cl_tls_body_more(c);
		} else if (io_conn_sendv(&c->c_conn, c->c_iov, c->c_niov) < 0) {
			cl_fail(c, "cannot send the message body");
			return;
		}
		cl_deadline(c, cl_cfg(c)->smtp_data_block_timeout);
		return;
	}
	/* DATA refused: accepted recipients take this reply. */
	if (c->c_mail_ok)
		for (unsigned k = 0; k < j->dj_nrcpt; k++)
			if (c->c_rcpt_ok[k])
				cl_settle_reply(c, k, r);
	cl_job_end(c, DLV_R_DEFERRED, "4.0.0", "no reply to DATA");
	c->c_msgs++;
	c->c_state = CL_RSET;
	cl_write(c, "RSET\r\n");
	cl_deadline(c, cl_cfg(c)->smtp_command_timeout);
}

static void cl_on_txn_reply(struct smtp_client *c, const struct smtp_reply *r)
{
	struct dlv_job *j = c->c_job;
	bool pipelined = (c->c_ext & SMTP_EXT_PIPELINING) != 0;
	unsigned phase = c->c_phase++;

	if (phase == 0) {
		c->c_mail_ok = r->code >= 200 && r->code < 300;
		if (!c->c_mail_ok) {
			for (unsigned k = 0; k < j->dj_nrcpt; k++)
				cl_settle_reply(c, k, r);
			if (!pipelined) {
				cl_job_end(c, DLV_R_DEFERRED, "4.0.0", "MAIL refused");
				c->c_state = CL_RSET;
				cl_write(c, "RSET\r\n");
			}
			return;		/* pipelined: RCPT and DATA replies follow */
		}
		if (!pipelined)
			cl_send_rcpt(c, 0);
		return;
	}
	if (phase <= j->dj_nrcpt) {
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
			if (k + 1 < j->dj_nrcpt) {
				cl_send_rcpt(c, k + 1);
			} else if (c->c_accepted > 0) {
				cl_write(c, "DATA\r\n");
				cl_deadline(c, cl_cfg(c)->smtp_data_init_timeout);
			} else {
				cl_job_end(c, DLV_R_DEFERRED, "4.0.0", "no recipient accepted");
				c->c_state = CL_RSET;
				cl_write(c, "RSET\r\n");
			}
		}
		return;
	}
	cl_on_data_reply(c, r);
}

static void cl_on_reply(struct smtp_client *c, const struct smtp_reply *r)
{
	const struct config *cfg = cl_cfg(c);

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
		cl_write(c, "EHLO %s\r\n", cfg->hostname);
		cl_deadline(c, cfg->smtp_command_timeout);
		return;
	case CL_EHLO:
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
				cl_fail(c, "TLS is required, but was not offered by host %s",
					c->c_remote);
				return;
			}
			cl_ready(c);
		} else if (r->code >= 500) {
			c->c_state = CL_HELO;
			cl_write(c, "HELO %s\r\n", cfg->hostname);
			cl_deadline(c, cfg->smtp_command_timeout);
		} else {
			cl_fail(c, "host %s refused EHLO: %03u %s", c->c_remote, r->code, r->text);
		}
		return;
	case CL_STARTTLS:
		if (r->code != 220) {
			if (c->c_policy >= CONFIG_TLS_ENCRYPT) {
				cl_fail(c, "host %s refused STARTTLS: %03u %s", c->c_remote,
					r->code, r->text);
				return;
			}
			cl_ready(c);	/* "may": go on in cleartext */
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
		cl_ready(c);
		return;
	case CL_READY:
		/* Unsolicited: a 421 before closing, typically. */
		cl_fail(c, "host %s said: %03u %s", c->c_remote, r->code, r->text);
		return;
	case CL_TXN:
		cl_on_txn_reply(c, r);
		return;
	case CL_BODY: {
		struct dlv_job *j = c->c_job;

		for (unsigned k = 0; k < j->dj_nrcpt; k++)
			if (c->c_rcpt_ok[k])
				cl_settle_reply(c, k, r);
		cl_job_end(c, DLV_R_DEFERRED, "4.0.0", "no final reply");
		c->c_msgs++;
		if (c->c_msgs >= cfg->smtp_reuse_limit)
			smtp_client_quit(c);
		else
			cl_ready(c);
		return;
	}
	case CL_DOT_DISCARD:
		cl_job_end(c, DLV_R_DEFERRED, "4.0.0", "no recipient accepted");
		c->c_msgs++;
		c->c_state = CL_RSET;
		cl_write(c, "RSET\r\n");
		cl_deadline(c, cfg->smtp_command_timeout);
		return;
	case CL_RSET:
		if (c->c_msgs >= cfg->smtp_reuse_limit)
			smtp_client_quit(c);
		else
			cl_ready(c);
		return;
	case CL_QUIT:
		io_conn_close(&c->c_conn);
		return;
	}
}

/* 220 to STARTTLS: begin the handshake (ClientHello goes out now). */
static void cl_tls_start(struct smtp_client *c)
{
	struct tls_ctx *ctx = server_tls_client(c->c_w->w_sw->w_srv);
	char tmp[16];

	c->c_tls = calloc(1, sizeof(*c->c_tls));
	if (ctx == NULL || c->c_tls == NULL ||
	    tls_conn_init(c->c_tls, ctx, false, c->c_host,
			  c->c_policy == CONFIG_TLS_VERIFY ? c->c_host : NULL) < 0) {
		tls_ctx_unref(&ctx);
		free(c->c_tls);
		c->c_tls = NULL;
		cl_fail(c, "TLS setup failed");
		return;
	}
	tls_ctx_unref(&ctx);
	c->c_state = CL_TLS_HANDSHAKE;
	smtp_reply_parser_init(&c->c_rp);	/* nothing said before counts */
	(void)tls_conn_read(c->c_tls, tmp, sizeof(tmp));
	cl_tls_flush(c);
	cl_deadline(c, cl_cfg(c)->smtp_command_timeout);
}

static void cl_on_replies(struct smtp_client *c, const char *p, size_t len);

/* Ciphertext in: handshake, then plaintext replies. */
static void cl_tls_input(struct smtp_client *c, struct io_buf *b, size_t len)
{
	char buf[16384];
	int n;

	if (tls_conn_feed(c->c_tls, b->ib_data, len) < 0) {
		cl_fail(c, "out of memory");
		return;
	}
	for (;;) {
		bool was_done = c->c_tls->tc_done;

		n = tls_conn_read(c->c_tls, buf, sizeof(buf));
		cl_tls_flush(c);
		if (!was_done && c->c_tls->tc_done) {
			snprintf(c->c_tlsinfo, sizeof(c->c_tlsinfo), "%s %s",
				 tls_conn_version(c->c_tls), tls_conn_cipher(c->c_tls));
			stat_inc(&c->c_w->w_sw->w_tls_out_handshakes);
			log_msg(LOG_INFO, "delivery: tls to %s: %s%s", c->c_remote, c->c_tlsinfo,
				c->c_policy == CONFIG_TLS_VERIFY ? " (verified)" : "");
			c->c_state = CL_EHLO;
			cl_write(c, "EHLO %s\r\n", cl_cfg(c)->hostname);
			cl_deadline(c, cl_cfg(c)->smtp_command_timeout);
		}
		if (n <= 0)
			break;
		cl_on_replies(c, buf, (size_t)n);
		if (io_conn_closing(&c->c_conn))
			return;
	}
	if (c->c_tls->tc_failed)
		cl_tls_failed(c);
	else if (c->c_tls->tc_closed)
		cl_fail(c, "host %s closed the TLS session", c->c_remote);
}

static void cl_on_recv(struct io_conn *conn, struct io_buf *b, size_t len)
{
	struct smtp_client *c = (struct smtp_client *)conn;

	if (c->c_tls != NULL)
		cl_tls_input(c, b, len);
	else
		cl_on_replies(c, b->ib_data, len);
}

static void cl_on_replies(struct smtp_client *c, const char *p, size_t len)
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
	};
	return st < sizeof(names) / sizeof(names[0]) ? names[st] : "?";
}

/* The handshake (or a record) failed. "may" with fallback: the same
 * host again in cleartext; otherwise this host has failed. */
static void cl_tls_failed(struct smtp_client *c)
{
	stat_inc(&c->c_w->w_sw->w_tls_out_failures);
	if (c->c_state == CL_TLS_HANDSHAKE && c->c_policy == CONFIG_TLS_MAY &&
	    cl_cfg(c)->smtp_tls_fallback && !c->c_no_tls) {
		struct smtp_client *n;

		log_msg(LOG_INFO, "delivery: TLS handshake with %s failed (%s); trying again"
			" in cleartext", c->c_remote, c->c_tls->tc_error);
		n = smtp_client_open(c->c_w, c->c_dest, c->c_route, c->c_candidate);
		if (n != NULL) {
			n->c_no_tls = true;
			c->c_gone_reported = true;	/* the new one takes the slot */
			io_conn_close(&c->c_conn);
			return;
		}
	}
	cl_fail(c, "TLS handshake with %s failed: %s", c->c_remote, c->c_tls->tc_error);
}

static void cl_on_eof(struct io_conn *conn, int err)
{
	struct smtp_client *c = (struct smtp_client *)conn;

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

	if (c->c_state == CL_BODY && c->c_tls != NULL && c->c_body_left) {
		cl_tls_body_more(c);
		return;
	}
	/* The whole body is out: now wait for the final reply. */
	if (c->c_state == CL_BODY)
		cl_deadline(c, cl_cfg(c)->smtp_data_done_timeout);
}

static void cl_on_timeout(struct io_conn *conn)
{
	struct smtp_client *c = (struct smtp_client *)conn;

	if (c->c_state == CL_READY) {
		smtp_client_quit(c);	/* idle too long */
		return;
	}
	if (c->c_state == CL_QUIT) {
		io_conn_close(conn);
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
	c->c_state = CL_GREETING;
	cl_deadline(c, cl_cfg(c)->smtp_command_timeout);
}

static void cl_on_delay(struct io_conn *conn)
{
	(void)conn;
}

static void cl_on_free(struct io_conn *conn)
{
	struct smtp_client *c = (struct smtp_client *)conn;

	queue_body_release(&c->c_body);
	free(c->c_rcpt_ok);
	free(c->c_iov);
	if (c->c_tls != NULL) {
		tls_conn_free(c->c_tls);
		free(c->c_tls);
	}
	if (!c->c_gone_reported)
		dlv_dest_client_gone(c->c_w, c->c_dest, c);
	dlv_route_unref(c->c_route);
	if (c->c_all_prev != NULL)
		c->c_all_prev->c_all_next = c->c_all_next;
	else
		c->c_w->w_clients = c->c_all_next;
	if (c->c_all_next != NULL)
		c->c_all_next->c_all_prev = c->c_all_prev;
	c->c_w->w_nclients--;
	free(c);
}

void smtp_client_abort_all(struct dlv_worker *w)
{
	for (struct smtp_client *c = w->w_clients; c != NULL; c = c->c_all_next) {
		if (io_conn_closing(&c->c_conn))
			continue;
		cl_job_end(c, DLV_R_NONE, "", "");
		c->c_gone_reported = false;
		c->c_ready_once = true;		/* no hand-over to another host */
		io_conn_close(&c->c_conn);
	}
}

static const struct io_conn_ops cl_ops = {
	.on_recv = cl_on_recv,
	.on_eof = cl_on_eof,
	.on_drained = cl_on_drained,
	.on_timeout = cl_on_timeout,
	.on_delay = cl_on_delay,
	.on_free = cl_on_free,
	.on_connected = cl_on_connected,
};

struct smtp_client *smtp_client_open(struct dlv_worker *w, struct dlv_dest *d,
				     struct dlv_route *rt, unsigned candidate)
{
	const struct dns_host *h;
	const struct sockaddr_storage *a;
	struct smtp_client *c;
	char ip[INET6_ADDRSTRLEN] = "?";
	socklen_t len;
	int fd, one = 1;

	if (!cl_candidate(rt, candidate, &h, &a))
		return NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->c_w = w;
	c->c_dest = d;
	c->c_route = rt;
	rt->rt_refs++;
	c->c_candidate = candidate;
	c->c_sa = *a;
	if (a->ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&c->c_sa;

		in->sin_port = htons(rt->rt_port);
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&c->c_sa;

		in6->sin6_port = htons(rt->rt_port);
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		len = sizeof(*in6);
	}
	snprintf(c->c_remote, sizeof(c->c_remote), "%s[%s]:%u", h->dh_name, ip, rt->rt_port);
	snprintf(c->c_host, sizeof(c->c_host), "%s", h->dh_name);
	{
		char perr[8];
		int pol = config_tls_policy_lookup(w->w_cfg->smtp_tls_policy_map, d->dd_host,
						   perr, sizeof(perr));

		c->c_policy = (uint8_t)(pol >= 0 ? pol :
					config_tls_policy_parse(w->w_cfg->smtp_tls_policy));
	}
	smtp_reply_parser_init(&c->c_rp);
	w->w_nclients++;
	fd = socket(a->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		/* Without a socket we cannot even try: report as a failure
		 * of this destination now. */
		snprintf(c->c_error, sizeof(c->c_error), "socket: %s", strerror(errno));
		dlv_dest_client_failed(w, d, "4.3.0", c->c_error);
		dlv_route_unref(rt);
		w->w_nclients--;
		free(c);
		return NULL;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->c_all_next = w->w_clients;
	if (w->w_clients != NULL)
		w->w_clients->c_all_prev = c;
	w->w_clients = c;
	io_conn_connect(w->w_loop, &c->c_conn, fd, (struct sockaddr *)&c->c_sa, len, &cl_ops);
	io_conn_set_deadline(&c->c_conn, w->w_cfg->smtp_connect_timeout);
	return c;
}
