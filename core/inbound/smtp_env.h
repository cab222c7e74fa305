/*
 * smtp_env: what an inbound session takes from the program around it.
 *
 * The session (smtp_server.h) does the protocol; everything it needs
 * from outside comes through one environment: the settings, the AUTH
 * accounts, the loop and buffer pool its connections live on, and an ops
 * table for what only the owner can do (queue a message, run a password
 * check, sign a message, hand out queue ids, the date, the TLS context, AUTH failure
 * accounting, release a session's caps). The server (core/app/server.c)
 * builds one per worker from the worker's queue sink, auth sink and
 * loop; the fuzzer (tests/fuzz/fuzz_session.c) builds one that collects
 * submissions and runs them itself, so a whole session runs without
 * io_uring, threads or a queue.
 *
 * Ownership and lifetime: the owner allocates the env, fills the fields
 * marked "owner" and zeroes the rest before the first smtp_server_start();
 * it must outlive every session started on it, orphans included (a
 * session whose client left while its commit was pending lives until the
 * message returns), that is until e_nsessions is 0. Every op is called on
 * the env's thread (the worker's) only, and only from inside the
 * session's calls (start, input, committed, auth done, shutdown, free).
 */
#ifndef RINGMTA_SMTP_ENV_H
#define RINGMTA_SMTP_ENV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/config/config.h"
#include "io/stat.h"

struct auth_db;
struct dkim_table;
struct events;
struct shp_holder;
struct work_job;
struct bufpool;
struct io_loop;
struct queue_msg;
struct queue_suppress;
struct smtp_env;
struct smtp_session;
struct tls_ctx;

struct smtp_env_ops {
	/* Hand a complete message to the queue. The op sets where it
	 * returns (qm_sink); the message comes back, committed or not,
	 * through smtp_server_committed(), and until then belongs to the
	 * queue as queue.h says. */
	void (*submit)(struct smtp_env *env, struct queue_msg *m);
	/* Run a password check off this thread. The op sets where the job
	 * returns (wj_sink); 0: it comes back through its wj_done,
	 * <0: not taken (no pool, pool full), the session answers 454. */
	int (*auth_submit)(struct smtp_env *env, struct work_job *j);
	/* Run an SPF check (a struct spf_job, spf_inbound.h) off this
	 * thread, as auth_submit does; NULL: no SPF checks (spf_inbound =
	 * none), <0: not taken, the session counts it as a temperror. */
	int (*spf_submit)(struct smtp_env *env, struct work_job *j);
	/* DKIM signing (may be NULL: no signing). sign_table: a new
	 * reference to the key table current now, or NULL when none is
	 * configured. sign_submit: run a signing job (core/dkim/dkim_job.h)
	 * off this thread; the op sets wj_sink. 0: it comes back through its
	 * wj_done, perhaps after waiting for room in the pool (the session
	 * waits too: back-pressure); <0: not taken, the session answers 451. */
	struct dkim_table *(*sign_table)(struct smtp_env *env);
	int (*sign_submit)(struct smtp_env *env, struct work_job *j);
	/* The next queue id: unique, increasing. */
	uint64_t (*next_id)(struct smtp_env *env);
	/* The current date in RFC 5322 form; valid until the next call. */
	const char *(*date)(struct smtp_env *env);
	/* Whether TLS is offered now (STARTTLS in EHLO, the command). */
	bool (*tls_offered)(struct smtp_env *env);
	/* A new reference to the server TLS context, or NULL; the caller
	 * drops it with tls_ctx_unref(). */
	struct tls_ctx *(*tls_server)(struct smtp_env *env);
	/* AUTH failure accounting per client address; now in seconds. */
	bool (*auth_blocked)(struct smtp_env *env, const struct sockaddr *peer, uint64_t now);
	void (*auth_failed)(struct smtp_env *env, const struct sockaddr *peer, uint64_t now);
	/* A session's connection is gone: release its caps. Once per
	 * session started. */
	void (*session_gone)(struct smtp_env *env, const struct sockaddr *peer);
	/* The suppression list (may be NULL: none). 1 with *hit_r filled
	 * (class, time added; see queue_suppress_lookup) when rcpt (len
	 * bytes) is suppressed for mail from sender_domain ("" for none),
	 * 0 when it is not, <0 when the list could not be read (the
	 * recipient is taken: the list is a courtesy, not a guarantee). */
	int (*suppressed)(struct smtp_env *env, const char *sender_domain, const char *rcpt,
			  size_t len, struct queue_suppress *hit_r);
};

/* The sessions' counters: written by the env's thread only (io/stat.h),
 * read by anyone (the owner's stats). */
struct smtp_env_stats {
	stat_t es_open[CONFIG_LISTEN_MAX];	/* sessions open, per listener */
	stat_t es_messages;			/* messages queued */
	stat_t es_rejected;			/* bodies refused */
	stat_t es_tls_handshakes, es_tls_failures;
	struct stat_hist es_accept_lat;		/* end of DATA -> 250 */
	/* DKIM signing at acceptance, DMARC alignment */
	stat_t es_dkim_signed;			/* messages signed */
	stat_t es_dkim_unsigned_no_key;		/* sent unsigned: no key */
	stat_t es_dkim_refused_no_key;		/* 451/550: no key */
	stat_t es_dkim_refused_unaligned;	/* 550 5.7.1: not aligned */
	stat_t es_dkim_refused_error;		/* 451: signing failed */
	stat_t es_dmarc_unaligned;		/* From aligned with neither */
};

struct smtp_env {
	/* owner: set before the first session, then left alone */
	const struct smtp_env_ops *e_ops;
	const struct config *e_cfg;
	const struct auth_db *e_auth;	/* NULL: no AUTH; immutable */
	struct io_loop *e_loop;		/* passed to io_conn_start() */
	struct bufpool *e_bufs;		/* receive and decrypted-input buffers */
	struct shp_holder *e_rules;	/* shaping rules (pools); outlives the env */
	struct events *e_events;	/* delivery events; NULL: off */
	/* owner: set on the env's thread; true stops new transactions and
	 * closes idle sessions (see smtp_server_shutdown_all) */
	bool e_stopping;
	/* the sessions': the owner reads them */
	struct smtp_session *e_sessions;	/* live, attached sessions */
	uint32_t e_nsessions;		/* live sessions, orphans included */
	struct smtp_env_stats e_stats;
};

#endif
