/*
 * session_env.h: what session_env.c (the inbound session's stand-in
 * environment) recorded, for the fuzz_session driver. One session at a
 * time; reset before each.
 */
#ifndef RINGMTA_FUZZ_SESSION_ENV_H
#define RINGMTA_FUZZ_SESSION_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct auth_job;
struct io_conn;
struct queue_msg;
struct tls_ctx;

struct session_env {
	struct io_conn *conn;		/* the session's, from io_conn_start */
	char *out;			/* bytes the session wrote (owned) */
	size_t out_len, out_cap;
	unsigned deadline;		/* last io_conn_set_deadline() */
	unsigned delay_ms;		/* last io_conn_delay() */
	uint64_t now;			/* io_loop_now() */
	uint64_t next_id;
	long bufs_live;			/* buffers allocated and not freed */
	bool paused;			/* io_conn_pause() in force */
	unsigned sessions_gone;
	struct queue_msg *pending, *pending_tail;	/* submitted, not returned */
	struct auth_job *auth_pending, *auth_tail;	/* password checks to run */
	struct tls_ctx *tls_server;	/* not reset: made once */
};

extern struct session_env session_env;

/* Forget the last session's records (keeps nothing but a fresh clock). */
void session_env_reset(void);

#endif
