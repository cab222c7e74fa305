/*
 * smtp_client_txn.c: starting a transaction on a session (see
 * smtp_client.h): the admission checks (SIZE, SMTPUTF8, 8BITMIME, the
 * next hop's LIMITS), MAIL with its DSN parameters, RCPT and DATA, in one
 * write with PIPELINING; and the next transaction sent right behind a
 * final dot or an RSET (RFC 2920 3.1). The replies are smtp_client.c's.
 */
#include "core/outbound/smtp_client_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* " NOTIFY=..." for the bits (QRCPT_NOTIFY_*), "" for none. */
static void cl_notify(uint8_t bits, char *buf, size_t len)
{
	static const struct { uint8_t bit; char name[8]; } words[] = {
		{ QRCPT_NOTIFY_NEVER, "NEVER" }, { QRCPT_NOTIFY_SUCCESS, "SUCCESS" },
		{ QRCPT_NOTIFY_FAILURE, "FAILURE" }, { QRCPT_NOTIFY_DELAY, "DELAY" },
	};
	const char *sep = " NOTIFY=";
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]) && n < len; i++) {
		if (!(bits & words[i].bit))
			continue;
		n += (size_t)snprintf(buf + n, len - n, "%s%s", sep, words[i].name);
		sep = ",";
	}
}

/* RCPT, with NOTIFY= and ORCPT= as received when the next hop offers
 * DSN (RFC 3461 6.2.6.1: passed on unchanged). */
void cl_send_rcpt(struct smtp_client *c, const struct smtp_client_txn *j, unsigned k)
{
	const struct smtp_client_dsn *dsn = j->ct_dsn_sent && j->ct_dsn ? &j->ct_dsn[k] : NULL;
	char notify[40] = "";

	if (dsn != NULL)
		cl_notify(dsn->cd_notify, notify, sizeof(notify));
	cl_write(c, "RCPT TO:<%s>%s%s%s\r\n", j->ct_rcpts[k], notify,
		 dsn != NULL && dsn->cd_orcpt != NULL ? " ORCPT=" : "",
		 dsn != NULL && dsn->cd_orcpt != NULL ? dsn->cd_orcpt : "");
}

/* What settles j before any command (SMTPUTF8 or 8BITMIME not offered,
 * over the next hop's SIZE, the body unreadable): false when it did
 * (txn_done came), else *len_r is the stored body size. */
static bool cl_txn_admit(struct smtp_client *c, struct smtp_client_txn *j, uint64_t *len_r)
{
	struct queue_body b;

	j->ct_dsn_sent = (c->c_ext & SMTP_EXT_DSN) != 0;
	if ((j->ct_flags & QRECORD_F_SMTPUTF8) && !(c->c_ext & SMTP_EXT_SMTPUTF8)) {
		cl_txn_end(c, j, SMTP_CLIENT_R_FAILED, "5.6.7",
			   "SMTPUTF8 is required, but was not offered by the remote server");
		return false;
	}
	/* ringmta never downgrades an 8-bit body to 7 bits (RFC 6152 leaves
	 * conversion to the sender): converting would break the DKIM
	 * signatures made at acceptance. A hop without 8BITMIME gets none. */
	if ((j->ct_flags & QRECORD_F_8BIT) && !(c->c_ext & SMTP_EXT_8BITMIME)) {
		cl_txn_end(c, j, SMTP_CLIENT_R_FAILED, "5.6.3",
			   "next hop does not support 8BITMIME; ringmta does not convert"
			   " 8-bit mail, which would break its DKIM signature");
		return false;
	}
	if (c->c_maxsize != 0 && j->ct_size > c->c_maxsize) {
		cl_txn_end(c, j, SMTP_CLIENT_R_FAILED, "5.3.4",
			   "message size exceeds the remote server's fixed limit");
		return false;
	}
	/* Only the size now; the bytes are read window by window. */
	if (queue_body_get(c->c_env->ce_queue, j->ct_id, &b) < 0) {
		cl_txn_end(c, j, SMTP_CLIENT_R_DEFERRED, "4.3.0", "queue file read error");
		return false;
	}
	*len_r = b.qb_len;
	queue_body_release(&b);
	return true;
}

/* MAIL FROM for j (body size len), and with PIPELINING every RCPT and
 * DATA behind it, in one write. */
static void cl_txn_send(struct smtp_client *c, const struct smtp_client_txn *j, uint64_t len)
{
	char size[32] = "";

	/* SIZE= the stored size (RFC 1870), when offered. */
	if (c->c_ext & SMTP_EXT_SIZE)
		snprintf(size, sizeof(size), " SIZE=%llu", (unsigned long long)len);
	cl_write(c, "MAIL FROM:<%s>%s%s%s%s%s%s\r\n", j->ct_sender, size,
		 (j->ct_flags & QRECORD_F_8BIT) ? " BODY=8BITMIME" : "",
		 (j->ct_flags & QRECORD_F_SMTPUTF8) ? " SMTPUTF8" : "",
		 !j->ct_dsn_sent ? "" : j->ct_dsn_ret == QRECORD_RET_FULL ? " RET=FULL" :
		 j->ct_dsn_ret == QRECORD_RET_HDRS ? " RET=HDRS" : "",
		 j->ct_dsn_sent && j->ct_envid != NULL ? " ENVID=" : "",
		 j->ct_dsn_sent && j->ct_envid != NULL ? j->ct_envid : "");
	c->c_mails++;
	stat_inc(&c->c_env->ce_txns);
	if (c->c_ext & SMTP_EXT_PIPELINING) {
		for (unsigned k = 0; k < j->ct_nrcpt; k++)
			cl_send_rcpt(c, j, k);
		cl_write(c, "DATA\r\n");
	}
}

/* j becomes the job whose replies come next (its MAIL is out). */
static void cl_job_begin(struct smtp_client *c, struct smtp_client_txn *j, bool *rcpt_ok,
			 uint64_t len)
{
	c->c_job = j;
	c->c_rcpt_ok = rcpt_ok;
	c->c_state = CL_TXN;
	c->c_phase = 0;
	c->c_accepted = 0;
	c->c_mail_ok = false;
	c->c_body_len = len;
	c->c_body_off = 0;
	c->c_body_bol = true;
	c->c_body_end = false;
	cl_deadline(c, cl_cfg(c)->smtp_command_timeout);
}

/* smtp_client_start_job() from ready_early: j goes out behind the end
 * of data (or the RSET) just written, and waits in c_next for its reply. */
static void cl_pipeline_take(struct smtp_client *c, struct smtp_client_txn *j)
{
	uint64_t len;

	c->c_offering = false;		/* one transaction per offer */
	if (!cl_txn_admit(c, j, &len))
		return;			/* settled; ready() comes after the reply */
	c->c_next_rcpt_ok = calloc(j->ct_nrcpt ? j->ct_nrcpt : 1, sizeof(bool));
	if (c->c_next_rcpt_ok == NULL) {
		cl_txn_end(c, j, SMTP_CLIENT_R_DEFERRED, "4.3.0", "out of memory");
		return;
	}
	c->c_next = j;
	c->c_next_body_len = len;
	cl_txn_send(c, j, len);
}

/* The end of data of c_job is written (cl_body_more), or the RSET that
 * follows a refused transaction (cl_rset), on a next hop that offers
 * PIPELINING: the owner may hand over the next transaction now, to go
 * out in the same write (RFC 2920 3.1: the end of data may be followed
 * by the next MAIL, and RSET is not among the commands that must end a
 * group), so a message costs one round trip. Not beyond the path's
 * messages per connection or the next hop's MAILMAX: behind_dot, the
 * transaction of that end of data counts as done (behind an RSET it was
 * counted already). */
void cl_pipeline_offer(struct smtp_client *c, bool behind_dot)
{
	const struct smtp_client_ops *ops = cl_ops_of(c);

	if (!(c->c_ext & SMTP_EXT_PIPELINING) || ops->ready_early == NULL ||
	    c->c_next != NULL || io_conn_closing(&c->c_conn) ||
	    c->c_msgs + (behind_dot ? 1u : 0u) >= c->c_path.cp_max_msgs ||
	    (c->c_limits.lm_mailmax != 0 && c->c_mails >= c->c_limits.lm_mailmax))
		return;
	c->c_offering = true;
	ops->ready_early(c->c_env->ce_ctx, c->c_dest, c);
	c->c_offering = false;
}

/* The reply to the end of data (or to the RSET) came, with c_next
 * pipelined behind it: its replies follow. After a 421 (the server
 * closes) none will: it goes back untried. */
void cl_next_begin(struct smtp_client *c, unsigned code)
{
	bool *ok = c->c_next_rcpt_ok;
	struct smtp_client_txn *j;

	if (code == 421) {
		cl_next_return(c);
		c->c_state = CL_QUIT;
		io_conn_close(&c->c_conn);
		return;
	}
	c->c_next_rcpt_ok = NULL;
	j = cl_next_take(c);
	cl_job_begin(c, j, ok, c->c_next_body_len);
	c->c_job_pipelined = true;
}

void smtp_client_start_job(struct smtp_client *c, struct smtp_client_txn *j)
{
	uint64_t len;
	bool *ok;

	if (c->c_offering) {
		cl_pipeline_take(c, j);
		return;
	}
	if (!cl_txn_admit(c, j, &len)) {
		cl_ready(c);
		return;
	}
	ok = calloc(j->ct_nrcpt ? j->ct_nrcpt : 1, sizeof(bool));
	cl_job_begin(c, j, ok, len);
	c->c_job_pipelined = false;
	if (ok == NULL) {
		cl_fail(c, "out of memory");
		return;
	}
	cl_txn_send(c, j, len);
}
