/*
 * smtp_client: outbound SMTP sessions on one worker (see smtp_client.c).
 *
 * The client knows nothing of who uses it. Its owner (delivery) gives it
 * an environment per worker (struct smtp_client_env: the loop, the
 * configuration, the queue the bodies are read from, the TLS context, and
 * a table of callbacks), opens sessions to a route for a next hop, and
 * hands each ready session one transaction at a time. Results come back
 * through the callbacks only: per recipient, when a transaction is done,
 * when a session is ready (again), when every address of the route failed
 * before a session was ready, and when a session is gone. Everything runs
 * on the worker's thread.
 */
#ifndef RINGMTA_SMTP_CLIENT_H
#define RINGMTA_SMTP_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/config/config.h"
#include "core/dns/dns.h"
#include "core/wire/smtp_limits.h"
#include "io/loop.h"
#include "io/stat.h"
#include "queue/queue.h"

struct shp_rules;
struct shp_source;
struct tls_sesscache;
struct shp_src_state;
struct smtp_client;
struct smtp_creds_holder;
struct tls_ctx;

/* A resolved route, shared by the sessions that use it (reference-counted;
 * the last smtp_route_unref() frees it). */
struct smtp_route {
	unsigned rt_refs;
	uint16_t rt_port;
	struct dns_route rt_dns;
};

void smtp_route_unref(struct smtp_route *rt);

/* A recipient's outcome; the values are delivery's enum dlv_result. */
enum smtp_client_result {
	SMTP_CLIENT_R_NONE = 0,		/* not tried: keeps its state */
	SMTP_CLIENT_R_SENT,
	SMTP_CLIENT_R_DEFERRED,
	SMTP_CLIENT_R_FAILED,
};

/* A recipient's DSN parameters as received (RFC 3461; queue/qrecord.h):
 * NOTIFY= bits (QRCPT_NOTIFY_*, 0 = none) and ORCPT= ("addr-type;xtext",
 * NULL = none). */
struct smtp_client_dsn {
	uint8_t cd_notify;
	const char *cd_orcpt;
};

/*
 * One transaction: the owner's, with every pointer valid until the
 * txn_done callback; the client only reads it (but ct_mail_refused and
 * ct_dsn_sent, which it sets). The body is read from the
 * queue by ct_id, window by window.
 */
struct smtp_client_txn {
	uint64_t ct_id;			/* queue id */
	const char *ct_sender;		/* "" = null sender */
	uint64_t ct_size;		/* for SIZE checks */
	uint32_t ct_flags;		/* QRECORD_F_* (8BIT, SMTPUTF8) */
	unsigned ct_nrcpt;
	const char *const *ct_rcpts;	/* ct_nrcpt addresses */
	/* Stored octets [ct_strip_off, ct_strip_off + ct_strip_len) are
	 * not sent: the pool header field, inside the header section
	 * (qrecord strip_off/strip_len); ct_strip_len 0 = none. */
	uint64_t ct_strip_off;
	uint32_t ct_strip_len;
	/* Set by the client before it reports a refusal of MAIL FROM for
	 * every recipient: that reply is about the sender, not them. */
	bool ct_mail_refused;
	/* DSN (RFC 3461), sent only to a next hop that offers DSN: RET=
	 * (QRECORD_RET_*, 0 = none), ENVID= (xtext, NULL = none) and, per
	 * recipient, ct_dsn[k] (NULL: none for any). */
	uint8_t ct_dsn_ret;
	const char *ct_envid;
	const struct smtp_client_dsn *ct_dsn;
	/* Set by the client when it starts the transaction: the next hop
	 * offered DSN, so the parameters went with it and reporting on
	 * success is the next hop's job. */
	bool ct_dsn_sent;
};

struct shp_source;

/*
 * The egress path a session belongs to (traffic shaping): where it binds,
 * what it says in EHLO, its TLS policy, timeouts and how many messages it
 * carries. Copied by smtp_client_open(); cp_source must outlive the
 * session (the caller holds the rules that own it).
 */
struct smtp_client_path {
	const struct shp_source *cp_source;	/* NULL = smtp_bind_address */
	const char *cp_ehlo;			/* NULL = hostname */
	uint8_t cp_tls;				/* enum shp_tls; UNSET = the
						 * smtp_tls_policy(_map) */
	uint32_t cp_connect_timeout_ms;		/* 0 = smtp_connect_timeout */
	uint32_t cp_idle_timeout_ms;		/* 0 = smtp_idle_timeout */
	uint32_t cp_max_msgs;			/* 0 = smtp_reuse_limit */
};

/*
 * What the client reports, each with the env's ce_ctx. dest is the value
 * given to smtp_client_open() (the owner's, opaque to the client).
 */
struct smtp_client_ops {
	/* Recipient k of t settled: res with the reply (or reason), the
	 * enhanced status code and "host[ip]:port" ("" before a connection).
	 * tls is "TLSv1.3 cipher" or "" when the recipient's delivery
	 * answered, NULL when the outcome is not a reply (nothing to record).
	 * A recipient may be reported more than once: the first outcome
	 * counts. */
	void (*rcpt_result)(void *ctx, struct smtp_client_txn *t, unsigned k,
			    enum smtp_client_result res, const char *reply, const char *ecode,
			    const char *remote, const char *tls);
	/* The client is done with t (every recipient reported). */
	void (*txn_done)(void *ctx, struct smtp_client_txn *t);
	/* A session from smtp_client_open() is ready for the first time (a
	 * session opened in its place on a hand-over counts as the same). */
	void (*opened)(void *ctx, void *dest);
	/* c is ready for a transaction: call smtp_client_start_job() or
	 * smtp_client_quit(), or keep it idle. */
	void (*ready)(void *ctx, void *dest, struct smtp_client *c);
	/* c, on a next hop that offers PIPELINING, has just written the end
	 * of a transaction's data and may send the next transaction right
	 * behind it (RFC 2920 3.1): call smtp_client_start_job() once now,
	 * or do nothing. Nothing else: c is busy (not idle, not to be
	 * quit); ready() comes as usual when no transaction was taken. The
	 * client never offers past the path's messages per connection or
	 * the next hop's MAILMAX. A transaction taken is settled as any
	 * other, or given back untried through closed_after (with nmsgs 0)
	 * when the session ends before it was answered. NULL: never. */
	void (*ready_early)(void *ctx, void *dest, struct smtp_client *c);
	/* Every address of the route failed before a session was ready. */
	void (*failed)(void *ctx, void *dest, const char *ecode, const char *reason);
	/* c is gone (freed after this); opening: it never became ready. */
	void (*gone)(void *ctx, void *dest, struct smtp_client *c, bool opening);
	/* The receiver answered with a 4xx or 5xx (greeting, EHLO, MAIL,
	 * RCPT, DATA, end of data): code, ecode ("" when none) and the text
	 * on one line. Only replies the receiver sent, never ours. */
	void (*reply)(void *ctx, void *dest, unsigned code, const char *ecode,
		      const char *text);
	/* The receiver closed the connection without an error reply after
	 * nmsgs messages. t, when not NULL, is the transaction it left
	 * unanswered: nothing of it is settled, the owner gets it back to
	 * try again on another session. nmsgs 0: the session ends with t
	 * pipelined and unanswered for another reason (a 421, an error
	 * reply, a failure): t is given back alike, but nothing is told
	 * about a limit. */
	void (*closed_after)(void *ctx, void *dest, unsigned nmsgs, struct smtp_client_txn *t);
	/* The path's source could not be bound (-errno err, reason names
	 * the source and address): no session; the destination is not to
	 * blame. */
	void (*source_failed)(void *ctx, void *dest, int err, const char *reason);
};

/* The client's environment on one worker; embedded in its owner. */
struct smtp_client_env {
	/* Set by the owner before the first smtp_client_open(). */
	struct io_loop *ce_loop;
	const struct config *ce_cfg;
	struct queue *ce_queue;
	/* A new reference to the client TLS context, or NULL. */
	struct tls_ctx *(*ce_tls_client)(void *arg);
	void *ce_tls_arg;
	/* The AUTH credentials (smtp_creds.h), or NULL: no AUTH. */
	struct smtp_creds_holder *ce_creds;
	const struct smtp_client_ops *ce_ops;
	void *ce_ctx;
	/* The client's own; zero at first. */
	struct smtp_client *ce_clients;	/* every session, for shutdown */
	unsigned ce_nclients;
	/* TLS sessions to resume (smtp_client_tls.c): made at the first
	 * handshake, this worker's only; smtp_client_tls_env_close() frees it. */
	struct tls_sesscache *ce_tls_sessions;
	/* Counters (single writer: this worker; io/stat.h). Round trips:
	 * replies waited for with nothing more to send (the first reply
	 * after output; a group of pipelined commands counts once, the
	 * greeting counts for the connect). Transactions: MAIL commands. */
	stat_t ce_tls_handshakes, ce_tls_failures;
	stat_t ce_tls_resumed;		/* of ce_tls_handshakes */
	stat_t ce_tls_cached;		/* a gauge: sessions held now */
	stat_t ce_round_trips, ce_txns;
};

/* The owner is done with env (every session is gone): free the TLS
 * sessions kept in it (smtp_client_tls.c). */
void smtp_client_tls_env_close(struct smtp_client_env *env);

/* Open a session to the candidate-th (host, address) of rt for next hop
 * policy_host (its TLS policy unless p sets one), owned by dest, on path
 * p (NULL = ringmta.conf's settings). NULL when the route has no such
 * candidate, or on failure (a socket failure is reported through failed
 * first). rt gains a reference. */
struct smtp_client *smtp_client_open(struct smtp_client_env *env, void *dest,
				     struct smtp_route *rt, unsigned candidate,
				     const char *policy_host, const struct smtp_client_path *p);
/* An idle session waits ms (a throttle), then reports ready again. */
void smtp_client_wait(struct smtp_client *c, unsigned ms);
/* Source addresses (smtp_client_bind.c). The configured source for
 * family (AF_INET: smtp_bind_address, AF_INET6: smtp_bind_address6):
 * 1 with the address (port 0), 0 when none is set, -EINVAL. */
int smtp_client_source(const struct config *cfg, int family, struct sockaddr_storage *ss_r,
		       socklen_t *len_r);
/* bind() fd before connect to source src (NULL, or a source without
 * an address: the configured address for family, as above): 1 bound, 0
 * nothing to bind, -EAFNOSUPPORT when src is of the other family, other
 * -errno when bind fails; err names the source (or setting) and the
 * address. src is the caller's, only read. */
int smtp_client_bind_source(const struct config *cfg, const struct shp_source *src, int fd,
			    int family, char *err, size_t errlen);
/* Start-up and --check: every configured source address can be bound
 * (is one of this host's). 0 or -1 with err. */
int smtp_client_check_bind(const struct config *cfg, char *err, size_t errlen);
/* Start-up and --check for the rules' sources: each address is bound
 * once to see that it is one of this host's. A source that fails is
 * reported (one line each in err, "source NAME address ADDR: reason")
 * and, when st is given, taken out of service (shp_src_bind_failed);
 * the others still work, so this is no reason to refuse to start.
 * Returns how many failed. */
int smtp_client_check_sources(const struct config *cfg, const struct shp_rules *r,
			      struct shp_src_state *st, char *err, size_t errlen);

/* The body window data[off, wend) of a stored message data[0, len) as
 * it goes on the wire (smtp_client_body.c; pure, no I/O): dot-stuffed
 * (*bol: the last octet written ended a line, true at the start),
 * without the octets [strip_off, strip_off + strip_len) (none when
 * strip_len is 0, or when the range is not inside the message). Each run
 * goes to put; returns 0 or put's first error. */
int smtp_client_body_window(const char *data, uint64_t len, uint64_t off, uint64_t wend,
			    uint64_t strip_off, uint32_t strip_len, bool *bol,
			    int (*put)(void *ctx, const char *p, size_t n), void *ctx);
/* Whether the octets sent of data[0, len) end with CRLF (then "." alone
 * ends the data, else CRLF "."). */
bool smtp_client_body_ends_crlf(const char *data, uint64_t len, uint64_t strip_off,
				uint32_t strip_len);

/* The limits the next hop advertised with LIMITS (RFC 9422) in its last
 * EHLO reply on c (all 0: none). Valid while c is; the client itself
 * keeps MAILMAX (QUIT after that many transactions); RCPTMAX and
 * RCPTDOMAINMAX are the owner's to keep, by giving c no transaction with
 * more recipients or recipient domains. */
const struct smtp_limits *smtp_client_limits(const struct smtp_client *c);
/* Start transaction t on a ready session, or from ready_early behind
 * the end of data; results come through the ops. */
void smtp_client_start_job(struct smtp_client *c, struct smtp_client_txn *t);
/* Say QUIT and close (a ready or idle session). */
void smtp_client_quit(struct smtp_client *c);
/* Shutdown deadline: close every session now; transactions end with
 * SMTP_CLIENT_R_NONE for what is not settled. */
void smtp_client_abort_all(struct smtp_client_env *env);
/* The owner's list of idle sessions, linked through the sessions. */
struct smtp_client *smtp_client_next_idle(struct smtp_client *c);
void smtp_client_set_next_idle(struct smtp_client *c, struct smtp_client *n);

#endif
