/*
 * smtp_server: one inbound SMTP session (RFC 5321) on a worker.
 *
 * Input arrives in receive buffers. Commands are framed, parsed
 * (smtp_cmd) and executed through the command table in
 * smtp_server_cmds.c; replies are queued on the connection and go out in
 * one send per batch of input (PIPELINING). Message bodies are decoded
 * in place (smtp_data): the session keeps references to the receive
 * buffers and a list of slices, and hands both to the queue's committer,
 * which copies the bytes once, into the store.
 *
 * What a session keeps is bounded. A body keeps at most
 * SMTP_BODY_KEEP_MAX receive buffers, each for a slice of at least a
 * quarter of it, and none while the worker's pool is low; other bytes
 * (short slices, small segments, the rest of a big message) are copied
 * into heap chunks owned by the transaction, so slices stay few and
 * large. The session takes no input while a commit (or the DKIM
 * signature before it, a job in the signing pool) is pending or while the
 * client has more than SMTP_OUT_HIGH octets of replies unread: input
 * that arrives meanwhile waits, in order, in the input queue, and the
 * connection stops receiving once that holds SMTP_INQ_PAUSE_BYTES.
 *
 * Everything a session needs from outside (settings, buffer pool, queue,
 * password checks, DKIM signing, ids, date, TLS context) comes through
 * its environment (smtp_env.h); the session knows nothing of the worker
 * that runs it.
 *
 * Ownership: smtp_server_start() allocates a session on its env's list;
 * a session frees itself when its connection is gone and no commit or
 * signature is outstanding.
 */
#ifndef RINGMTA_SMTP_SERVER_H
#define RINGMTA_SMTP_SERVER_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/inbound/smtp_env.h"
#include "core/wire/smtp_cmd.h"
#include "core/wire/smtp_data.h"
#include "io/loop.h"
#include "queue/queue.h"

#define SMTP_CMD_LINE_MAX 512	/* RFC 5321 4.5.3.1.4, including CRLF */
/* MAIL and RCPT may be longer by their DSN parameters (RFC 3461 section
 * 5: ENVID and RET 100 octets more, ORCPT and NOTIFY 500). */
#define SMTP_PATH_LINE_MAX (SMTP_CMD_LINE_MAX + 600)
#define SMTP_AUTH_LINE_MAX 12288 /* RFC 4954 section 4 */

struct tls_conn;
struct auth_exchange;
struct auth_job;
struct spf_job;
struct dkim_job;
struct shp_rules;
struct work_job;

enum smtp_state {
	SMTP_S_GREET = 0,	/* greeting delayed; any input is refused */
	SMTP_S_CMD,		/* reading commands */
	SMTP_S_DATA,		/* reading a DATA body */
	SMTP_S_BDAT,		/* reading a BDAT chunk */
	SMTP_S_COMMIT,		/* waiting for the signer, then the queue commit */
	SMTP_S_SKIP,		/* discarding an overlong line */
	SMTP_S_AUTH,		/* reading SASL responses (RFC 4954) */
	SMTP_S_TLS_HANDSHAKE,	/* implicit TLS: greeting after the handshake */
	SMTP_S_AUTH_WAIT,	/* a password check runs in the auth pool */
	SMTP_S_SPF_WAIT,	/* an SPF check runs in the SPF pool */
};

/* States in which input waits (queued, paused) for a result. */
static inline bool smtp_state_waits(uint8_t st)
{
	return st == SMTP_S_COMMIT || st == SMTP_S_AUTH_WAIT || st == SMTP_S_SPF_WAIT;
}

/* One mail transaction, MAIL to the end of the body. */
struct smtp_txn {
	struct queue_msg t_msg;		/* first: container_of from the queue */
	struct smtp_session *t_sess;
	char *t_sender;			/* owned; NUL-terminated */
	uint16_t t_sender_len;
	bool t_smtputf8;
	uint8_t t_dsn_ret;		/* RET= (QRECORD_RET_*), 0 = none */
	char *t_envid;			/* owned: ENVID= xtext, or NULL */
	bool t_bdat;			/* BDAT used: DATA no longer allowed */
	bool t_bdat_discard;		/* chunk being read only to skip it */
	uint64_t t_bdat_left;		/* octets left in the current chunk */
	bool t_bdat_last;
	struct qrcpt *t_rcpts;		/* addr and orcpt strings owned */
	uint32_t t_nrcpt, t_rcpt_cap;
	uint32_t t_overshoot;		/* RCPTs refused past max_recipients */
	uint32_t t_ndropped;		/* RCPTs taken and dropped (suppression =
					 * drop): not in t_rcpts */
	struct iovec *t_iov;		/* [0] is the trace header */
	unsigned t_niov, t_iov_cap;
	struct io_buf **t_bufs;		/* referenced receive buffers */
	unsigned t_nbufs, t_buf_cap;
	char *t_prefix;			/* owned: Received and added headers */
	struct io_buf *t_keep_last;	/* last receive buffer kept (in t_bufs) */
	struct io_buf *t_arena;		/* heap chunk being filled (in t_bufs) */
	uint32_t t_arena_len;		/* octets used in t_arena */
	unsigned t_nkept;		/* receive buffers kept */
	bool t_oom;			/* a slice could not be recorded */
	char *t_auth_results;		/* owned: Authentication-Results field
					 * with CRLF (spf_inbound), or NULL */
	/* DKIM: the signing job, out while signing and kept (for the log)
	 * once back; owned. NULL: no signing. */
	struct dkim_job *t_sign;
	uint64_t t_end_ns;		/* end of the body (monotonic), for es_accept_lat */
	/* Traffic shaping (smtp_server_pool.c): the rules the body started
	 * with (one reference, or NULL: none loaded), the pool chosen
	 * (points into them) and the pool header field's octets in the
	 * message (after the trace header). */
	struct shp_rules *t_rules;
	const char *t_pool;
	uint64_t t_strip_off;
	uint32_t t_strip_len;
};

/* Input received while the session was waiting. q_off + q_len is the end
 * of the bytes in q_buf, so small input may be appended after them. */
struct smtp_inq {
	struct io_buf *q_buf;		/* one reference held */
	uint32_t q_off, q_len;
};

struct smtp_session {
	struct io_conn s_conn;		/* first: container_of from io */
	struct smtp_env *s_env;
	struct smtp_session *s_next, *s_prev;	/* env's list */
	uint8_t s_state;		/* enum smtp_state */
	bool s_esmtp;
	bool s_helo_done;
	bool s_relay_ok;
	bool s_gone;			/* connection freed (commit pending) */
	bool s_closing;
	uint8_t s_listener;		/* index into the configured listeners */
	uint8_t s_kind;			/* enum config_listen_kind */
	bool s_tls_starting;		/* STARTTLS accepted: drop the rest */
	struct tls_conn *s_tls;		/* owned; NULL in cleartext */
	struct auth_exchange *s_auth;	/* owned while AUTH runs */
	struct auth_job *s_auth_job;	/* in the auth pool (owns s_auth meanwhile) */
	struct spf_job *s_spf_job;	/* in the SPF pool (smtp_server_spf.c) */
	char *s_auth_user;		/* owned; authenticated identity */
	uint16_t s_errors;
	uint16_t s_line_len;
	uint16_t s_line_cap;		/* bytes allocated at s_line */
	char *s_line;			/* partial command line (owned) */
	char *s_helo;			/* owned */
	const char *s_skip_reply;	/* reply after an overlong line */
	struct smtp_txn *s_txn;
	struct io_buf *s_cur_buf;	/* buffer being decoded */
	struct smtp_data s_data;
	struct smtp_inq *s_inq;		/* owned array */
	uint16_t s_inq_n, s_inq_cap;
	uint32_t s_inq_bytes;
	uint32_t s_messages;
	struct sockaddr_in6 s_peer;	/* AF_INET or AF_INET6 */
	char s_addr[46];		/* client address, text */
	uint64_t s_start;		/* monotonic seconds */
};

/* Start a session on an accepted fd (the owner checked the caps). NULL
 * without memory: nothing started, the env's ops were not called. */
struct smtp_session *smtp_server_start(struct smtp_env *env, int fd,
				       const struct sockaddr *peer, socklen_t len,
				       unsigned listener);
/* The queue returned a message of this session's. */
void smtp_server_committed(struct queue_msg *m);
/* Shutdown: close now if idle; force says close even mid-transaction. */
void smtp_server_shutdown(struct smtp_session *s, bool force);
/* smtp_server_shutdown() for every session attached to env. */
void smtp_server_shutdown_all(struct smtp_env *env, bool force);

/* Internal to smtp_server*.c */
/* Queue reply bytes for the client, through TLS when it is on. */
void smtp_server_out(struct smtp_session *s, const char *p, size_t n);
/* Feed received bytes (cleartext) to the protocol. */
void smtp_server_input_plain(struct smtp_session *s, struct io_buf *b, size_t off,
			     size_t len);
void smtp_server_greet(struct smtp_session *s);
/* smtp_server_tls.c */
int smtp_tls_begin(struct smtp_session *s);
void smtp_tls_input(struct smtp_session *s, struct io_buf *b, size_t len);
void smtp_tls_write(struct smtp_session *s, const char *p, size_t n);
void smtp_tls_free(struct smtp_session *s);
bool smtp_auth_offered(const struct smtp_session *s);
void smtp_auth_command(struct smtp_session *s, const struct smtp_cmd *cmd);
void smtp_auth_line(struct smtp_session *s, const char *line, size_t len);
/* A password check came back from the auth pool (worker thread). */
void smtp_auth_done(struct work_job *w);
/* The exchange cannot go on (its line was too long): forget it. */
void smtp_auth_abort(struct smtp_session *s);
/* smtp_server_spf.c: SPF at MAIL FROM (spf_inbound). Whether this
 * session's MAIL gets a check; start it for s_txn (the session waits, the
 * reply comes when it is done); the check came back (worker thread); the
 * session is going: a running check is left to finish alone. */
bool smtp_spf_wanted(const struct smtp_session *s);
void smtp_spf_start(struct smtp_session *s);
void smtp_spf_done(struct work_job *w);
void smtp_spf_forget(struct smtp_session *s);
/* The session stopped waiting: run the input queued meanwhile. */
void smtp_server_resume(struct smtp_session *s);
void smtp_starttls_command(struct smtp_session *s, const struct smtp_cmd *cmd);
void smtp_server_reply(struct smtp_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void smtp_server_command(struct smtp_session *s, const char *line, size_t len);
void smtp_server_txn_end(struct smtp_session *s);
/* smtp_server_txn.c */
void smtp_server_txn_free(struct smtp_env *env, struct smtp_txn *t);
/* The body decoder's output (smtp_data_feed's emit; ctx is the session). */
void smtp_server_emit(void *ctx, const char *p, size_t len);
uint64_t smtp_server_now_ns(void);	/* monotonic */
void smtp_server_close(struct smtp_session *s, const char *reason);
void smtp_server_data_start(struct smtp_session *s, enum smtp_data_mode mode);
void smtp_server_message_done(struct smtp_session *s);
void smtp_server_bdat_done(struct smtp_session *s);
/* A session's last step, its transaction already ended. */
void smtp_server_session_free(struct smtp_session *s);
/* A signing job came back (worker thread). */
void smtp_server_sign_done(struct work_job *w);
const struct config *smtp_server_cfg(const struct smtp_session *s);
/* smtp_server_pool.c: at the start of a body, take the rules and ask the
 * decoder for the pool header; at its end (not refused), choose the
 * pool: 0, or -1 when refused (answered, transaction ended); just before
 * the submit, put the pool and the strip range into the record. */
void smtp_server_pool_begin(struct smtp_session *s);
int smtp_server_pool_choose(struct smtp_session *s);
void smtp_server_pool_place(struct smtp_txn *t);

#endif
