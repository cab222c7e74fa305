/*
 * session_env.h: what session_env.c (the io layer's stand-ins under the
 * inbound session) recorded, for the fuzz_session driver. One session at
 * a time; reset before each. The session's own environment (struct
 * smtp_env: queue, password checks, ids, date, TLS) is the driver's.
 */
#ifndef RINGMTA_FUZZ_SESSION_ENV_H
#define RINGMTA_FUZZ_SESSION_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct io_conn;

struct session_env {
	struct io_conn *conn;		/* the session's, from io_conn_start */
	char *out;			/* bytes the session wrote (owned) */
	size_t out_len, out_cap;
	unsigned deadline;		/* last io_conn_set_deadline() */
	unsigned delay_ms;		/* last io_conn_delay() */
	uint64_t now;			/* io_loop_now() */
	long bufs_live;			/* buffers allocated and not freed */
	bool paused;			/* io_conn_pause() in force */
};

extern struct session_env session_env;

/* Forget the last session's records (keeps nothing but a fresh clock). */
void session_env_reset(void);

#endif
