/*
 * Unit tests for io/loop.c's connections: a send the peer refuses (EPIPE:
 * it shut its reading side, a reset) is reported to the owner through
 * on_eof before on_free, whether the socket sits in the ring's registered
 * file table or keeps its descriptor, and when no receive is armed (the
 * owner paused it). In the table, the loop cancels the
 * pending receive instead of shutdown(2), and the cancelled receive
 * reported nothing: an outbound session was freed holding its
 * transaction, and the message was never tried again.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io/loop.h"
#include "tests/unit/tap.h"

struct peer {
	struct io_conn conn;		/* first: the loop's callbacks get it */
	int eofs, frees, eof_err, eof_before_free;
};

static void on_recv(struct io_conn *c, struct io_buf *b, size_t len)
{
	(void)c; (void)b; (void)len;
}

static void on_eof(struct io_conn *c, int err)
{
	struct peer *p = (struct peer *)c;

	p->eofs++;
	p->eof_err = err;
	io_conn_close(c);
}

static void on_drained(struct io_conn *c)
{
	(void)c;
}

static void on_timeout(struct io_conn *c)
{
	io_conn_abort(c);
}

static void on_free(struct io_conn *c)
{
	struct peer *p = (struct peer *)c;

	p->frees++;
	p->eof_before_free = p->eofs > 0;
	io_loop_stop(c->ic_loop);
}

static const struct io_conn_ops ops = {
	.on_recv = on_recv, .on_eof = on_eof, .on_drained = on_drained,
	.on_timeout = on_timeout, .on_free = on_free,
};

/* The paused case: at the first tick the receive is long cancelled; the
 * peer stops reading and a reply goes out. */
static struct peer *tick_paused;
static int tick_peer_fd = -1;
static unsigned ticks;			/* of the current case */

static void on_tick(struct io_loop *loop, uint64_t now)
{
	(void)now;
	if (tick_paused != NULL) {
		shutdown(tick_peer_fd, SHUT_RD);
		io_conn_write(&tick_paused->conn, "250 ok\r\n", 8);
		tick_paused = NULL;
	}
	if (++ticks > 5)
		io_loop_stop(loop);	/* a hang fails the checks, not the run */
}

static const struct io_loop_ops loop_ops = { .on_tick = on_tick };

/* The peer stops reading (shutdown SHUT_RD on a stream socketpair): our
 * send fails with EPIPE while our receive stays armed, since the peer
 * could still write. */
static void refused_send(unsigned fixed_files, bool paused, const char *what)
{
	struct io_loop_params prm = {
		.entries = 64, .buf_size = 4096, .buf_max = 64, .buf_target = 16,
		.fixed_files = fixed_files,
	};
	struct io_loop *loop = calloc(1, sizeof(*loop));
	struct peer *p = calloc(1, sizeof(*p));
	int sv[2];

	if (loop == NULL || p == NULL ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0 ||
	    io_loop_init(loop, &prm, &loop_ops, NULL) < 0) {
		tap_ok(0, "%s: set up", what);
		return;
	}
	ticks = 0;
	io_conn_start(loop, &p->conn, sv[0], &ops);
	if (paused) {
		/* No receive armed when the send fails: the loop itself
		 * must tell the owner. */
		io_conn_pause(&p->conn);
		tick_paused = p;
		tick_peer_fd = sv[1];
	} else {
		shutdown(sv[1], SHUT_RD);
		io_conn_write(&p->conn, "250 ok\r\n", 8);
	}
	io_loop_run(loop);
	tap_ok(p->frees == 1, "%s: the connection is freed (%d)", what, p->frees);
	tap_ok(p->eofs == 1, "%s: on_eof reports the failed send once (%d)", what, p->eofs);
	tap_ok(p->eof_before_free, "%s: on_eof comes before on_free", what);
	tap_ok(p->eof_err < 0, "%s: with an error (%d)", what, p->eof_err);
	close(sv[1]);
	io_loop_destroy(loop);
	free(loop);
	free(p);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	refused_send(16, false, "registered file table");
	refused_send(0, false, "own descriptor");
	refused_send(16, true, "paused, registered file table");
	refused_send(0, true, "paused, own descriptor");
	return tap_done();
}
