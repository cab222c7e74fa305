/*
 * smtp_client_internal.h: what the files of the outbound session share
 * (smtp_client.c: the session and its replies; smtp_client_body.c: the
 * body; smtp_client_tls.c: STARTTLS). Nothing outside core/outbound
 * includes it.
 */
#ifndef RINGMTA_SMTP_CLIENT_INTERNAL_H
#define RINGMTA_SMTP_CLIENT_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/config/config.h"
#include "core/outbound/smtp_client.h"
#include "core/outbound/smtp_creds.h"
#include "core/wire/smtp_reply.h"
#include "io/loop.h"

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
	CL_DATA_DONE,		/* whole body and "." sent; final reply expected */
	CL_AUTH,		/* AUTH sent (and LOGIN's answers); 235 or 334 expected */
};

/* Body bytes copied into the output per step; see the top of the file.
 * Stuffed (at worst 4/3 of it, all "." lines) it still fits the loop's
 * 256 KiB output buffer, and a window is enough to keep the socket's
 * send buffer fed between two on_drained calls. */
#define CL_BODY_WINDOW (128u * 1024u)

/* A session's path (struct smtp_client_path resolved against
 * ringmta.conf); a hand-over to the next address keeps it. */
struct cl_path {
	const struct shp_source *cp_source;	/* NULL = smtp_bind_address */
	char cp_ehlo[256];
	unsigned cp_max_msgs;			/* then QUIT */
	unsigned cp_idle_s, cp_connect_s;
	bool cp_tls_required;			/* 4.7.5 without TLS */
	bool cp_implicit_tls;			/* TLS from the first byte */
	struct smtp_creds *cp_creds;		/* the table cp_cred is in; each
						 * session holds a reference */
	const struct smtp_cred *cp_cred;	/* AUTH with it; NULL = none */
};

struct smtp_client {
	struct io_conn c_conn;		/* first: container_of from io */
	struct smtp_client_env *c_env;
	void *c_dest;			/* the owner's, given back in callbacks */
	struct smtp_route *c_route;	/* one reference */
	struct smtp_client *c_next_idle;
	struct smtp_client *c_all_next, *c_all_prev;	/* worker's list */
	unsigned c_candidate;		/* index over (host, address) pairs */
	struct sockaddr_storage c_sa;
	uint8_t c_state;
	bool c_ready_once;
	bool c_opening;			/* counted in dd_nopening (or its
					 * predecessor was, on a hand-over) */
	bool c_gone_reported;
	bool c_mail_ok;
	uint32_t c_ext;
	uint64_t c_maxsize;
	unsigned c_phase;		/* 0 MAIL, 1..n RCPT, n+1 DATA */
	unsigned c_accepted;
	unsigned c_msgs;
	unsigned c_mails;		/* MAIL commands sent (LIMITS MAILMAX) */
	struct smtp_limits c_limits;	/* from the last EHLO (RFC 9422) */
	struct smtp_client_txn *c_job;	/* the transaction under way */
	bool *c_rcpt_ok;		/* per job recipient: RCPT accepted */
	/* The next transaction, its MAIL, RCPT and DATA sent right behind
	 * c_job's end of data (RFC 2920 3.1); it becomes c_job when the
	 * reply to that end of data came. Owned like c_job (the owner's,
	 * until txn_done or closed_after gives it back). */
	struct smtp_client_txn *c_next;
	bool *c_next_rcpt_ok;		/* calloc'd for c_next; becomes c_rcpt_ok */
	uint64_t c_next_body_len;	/* c_next's stored body size */
	bool c_offering;		/* inside ops->ready_early: a job is c_next */
	bool c_job_pipelined;		/* c_job's commands followed the previous dot */
	/* The last transaction ended without a message (refused: RSET
	 * followed), and no later one has been answered: a close now is
	 * the receiver's answer to the refusal, not a limit of messages
	 * per connection; what it leaves unanswered goes back untried. */
	bool c_txn_refused;
	bool c_sent;			/* output since the last reply (round trips) */
	unsigned c_round_trips;		/* replies waited for on this session */
	uint64_t c_body_off;		/* stored body bytes already written */
	uint64_t c_body_len;		/* stored body size, from the first window */
	bool c_body_bol;		/* the last byte written ended a line */
	bool c_body_end;		/* the "." line is written too */
	char c_remote[300];		/* host[ip]:port */
	char c_host[256];		/* MX host name: SNI and verification */
	struct tls_conn *c_tls;		/* owned; NULL in cleartext */
	uint8_t c_policy;		/* enum config_tls_policy for this hop */
	bool c_no_tls;			/* a cleartext retry after a failed handshake */
	char c_tlsinfo[80];		/* "TLSv1.3 TLS_AES_128_GCM_SHA256" */
	char c_error[400];		/* why the session failed */
	struct cl_path c_path;
	bool c_waiting;			/* smtp_client_wait() under way */
	bool c_no_handover;		/* the next address would fail alike */
	uint8_t c_auth_step;		/* LOGIN: 0 AUTH sent, 1 user, 2 password */
	uint64_t c_last_reply;		/* monotonic s of the last reply */
	uint16_t c_last_code;		/* and its code */
	struct smtp_reply_parser c_rp;
	struct smtp_reply c_reply;
};

static inline const struct config *cl_cfg(const struct smtp_client *c)
{
	return c->c_env->ce_cfg;
}

/* smtp_client.c */
/* Bytes for the server, encrypted when TLS is on. */
void cl_out(struct smtp_client *c, const char *p, size_t n);
void cl_write(struct smtp_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cl_deadline(struct smtp_client *c, unsigned s);
/* The session is unusable: report, and close. */
void cl_fail(struct smtp_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same for a TLS failure: 4.7.5 when the path requires TLS. */
void cl_fail_tls(struct smtp_client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Plaintext from the server: parse and act on each complete reply. */
void cl_on_replies(struct smtp_client *c, const char *p, size_t len);
/* The session's connection callbacks (smtp_client.c). */
extern const struct io_conn_ops cl_conn_ops;
/* smtp_client_open.c: the n-th (host, address) pair of the route, or
 * false past the end; a new session on the route's candidate address,
 * NULL when none is left. */
bool cl_candidate(const struct smtp_route *rt, unsigned n,
		  const struct dns_host **h_r, const struct sockaddr_storage **a_r);
struct smtp_client *cl_open(struct smtp_client_env *env, void *dest, struct smtp_route *rt,
			    unsigned candidate, uint8_t policy, const struct cl_path *path);

/* The same for AUTH (and a failure the next address would repeat, like
 * a 535: no hand-over). */
void cl_fail_auth(struct smtp_client *c, const char *ecode, bool handover, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void cl_ready(struct smtp_client *c);
/* EHLO (and STARTTLS) done: authenticate when the hop has credentials,
 * then ready. */
void cl_ehlo_done(struct smtp_client *c);

/* smtp_client_auth.c */
/* Start AUTH on a session with a cp_cred, or fail it when credentials
 * may not or cannot be sent. */
void cl_auth_start(struct smtp_client *c);
/* A reply in CL_AUTH. */
void cl_auth_reply(struct smtp_client *c, const struct smtp_reply *r);

static inline const struct smtp_client_ops *cl_ops_of(const struct smtp_client *c)
{
	return c->c_env->ce_ops;
}

/* Done with t: its unsettled recipients get res with reason. */
void cl_txn_end(struct smtp_client *c, struct smtp_client_txn *t,
		enum smtp_client_result res, const char *ecode, const char *reason);
/* Take the pipelined transaction off the session (NULL: none); give it
 * back untried to the owner (closed_after with nmsgs 0). */
struct smtp_client_txn *cl_next_take(struct smtp_client *c);
void cl_next_return(struct smtp_client *c);

/* smtp_client_txn.c */
/* A transaction's end of data (behind_dot) or an RSET is written: offer
 * the next one to send behind it (PIPELINING). */
void cl_pipeline_offer(struct smtp_client *c, bool behind_dot);
/* RCPT k of j, with its DSN parameters. */
void cl_send_rcpt(struct smtp_client *c, const struct smtp_client_txn *j, unsigned k);
/* The reply to the end of data or RSET came, with c_next pipelined
 * behind it: its replies follow; after a 421 none will, and it goes back
 * untried. */
void cl_next_begin(struct smtp_client *c, unsigned code);

/* smtp_client_body.c */
/* Write the next window of the body (then the end of data, and the
 * next transaction behind it when the owner has one): 0 or -errno. */
int cl_body_more(struct smtp_client *c);

/* smtp_client_tls.c */
void cl_tls_flush(struct smtp_client *c);
void cl_tls_start(struct smtp_client *c);
void cl_tls_input(struct smtp_client *c, struct io_buf *b, size_t len);
void cl_tls_failed(struct smtp_client *c);

#endif
