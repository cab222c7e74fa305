/*
 * session_env.c: the io layer under the inbound session without io_uring,
 * for fuzz_session. It stands in, at link time, for what the session
 * takes from io/loop.c and io/bufpool.c (the connection stays an io_conn;
 * everything else the session needs comes through the struct smtp_env
 * that the driver builds):
 *
 *   connection   io_conn_start/write/close/set_deadline/delay/pause/resume
 *                record what the session asked for; bytes written collect
 *                in session_env.out and count as unsent (ic_olen) until the
 *                driver reads them and calls on_drained; closing sets
 *                IO_CONN_F_CLOSING and the driver calls on_free once the
 *                session's callback returned (as the loop does when no
 *                operation is in flight);
 *   buffers      bufpool_alloc/alloc_heap/unref are malloc'd,
 *                reference-counted buffers, freed at zero, so
 *                AddressSanitizer sees any use after the last reference;
 *                pool buffers count in bp_allocated, so bufpool_low()
 *                turns true when the session holds half of bp_max.
 *
 * Single-threaded, like a worker. See fuzz_session.c for the driver.
 */
#include "tests/fuzz/session_env.h"

#include <stdlib.h>
#include <string.h>

#include "io/bufpool.h"
#include "io/loop.h"

struct session_env session_env;

void session_env_reset(void)
{
	free(session_env.out);
	memset(&session_env, 0, sizeof(session_env));
	session_env.now = 1000;
}

/* io/loop.c */

uint64_t io_loop_now(void)
{
	return session_env.now;
}

void io_conn_start(struct io_loop *loop, struct io_conn *c, int fd,
		   const struct io_conn_ops *ops)
{
	c->ic_loop = loop;
	c->ic_ops = ops;
	c->ic_fd = fd;
	c->ic_flags = 0;
	session_env.conn = c;
}

int io_conn_write(struct io_conn *c, const void *p, size_t len)
{
	if (c->ic_flags & IO_CONN_F_CLOSING)
		return 0;
	if (session_env.out_len + len > session_env.out_cap) {
		size_t cap = (session_env.out_cap + len) * 2;
		char *o = realloc(session_env.out, cap);

		if (o == NULL)
			abort();
		session_env.out = o;
		session_env.out_cap = cap;
	}
	memcpy(session_env.out + session_env.out_len, p, len);
	session_env.out_len += len;
	c->ic_olen += (uint32_t)len;
	return 0;
}

void io_conn_pause(struct io_conn *c)
{
	(void)c;
	session_env.paused = true;
}

void io_conn_resume(struct io_conn *c)
{
	(void)c;
	session_env.paused = false;
}

void io_conn_set_deadline(struct io_conn *c, unsigned seconds)
{
	(void)c;
	session_env.deadline = seconds;
}

int io_conn_delay(struct io_conn *c, unsigned ms)
{
	(void)c;
	session_env.delay_ms = ms;
	return 0;
}

void io_conn_close(struct io_conn *c)
{
	c->ic_flags |= IO_CONN_F_CLOSING;
}

/* io/bufpool.c */

static struct io_buf *session_env_buf(size_t size, uint16_t flags)
{
	struct io_buf *b = malloc(sizeof(*b) + size);

	if (b == NULL)
		return NULL;
	b->ib_refs = 1;
	b->ib_bid = 0;
	b->ib_flags = flags;
	b->ib_size = (uint32_t)size;
	b->ib_pad = 0;
	session_env.bufs_live++;
	return b;
}

struct io_buf *bufpool_alloc(struct bufpool *bp)
{
	struct io_buf *b;

	if (bp->bp_allocated >= bp->bp_max)
		return NULL;
	b = session_env_buf(bp->bp_size, 0);
	if (b != NULL)
		bp->bp_allocated++;
	return b;
}

struct io_buf *bufpool_alloc_heap(size_t size)
{
	return session_env_buf(size, IO_BUF_F_HEAP);
}

void bufpool_unref(struct bufpool *bp, struct io_buf *b)
{
	if (b->ib_refs == 0)
		abort();
	if (--b->ib_refs > 0)
		return;
	if (!(b->ib_flags & IO_BUF_F_HEAP))
		bp->bp_allocated--;
	session_env.bufs_live--;
	free(b);
}
