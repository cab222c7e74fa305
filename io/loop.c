/*
 * loop.c: see loop.h. Completions are handled in batches and acknowledged
 * with one io_uring_cq_advance; output produced while handling a batch
 * is sent after it, one send per connection.
 */
#include "io/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>

enum io_op {
	IO_OP_ACCEPT = 1,
	IO_OP_RECV = 2,
	IO_OP_SEND = 3,
	IO_OP_TICK = 4,
	IO_OP_WAKE = 5,
	IO_OP_DELAY = 6,
	IO_OP_IGNORE = 7,
	IO_OP_CONNECT = 8,
	IO_OP_WATCH = 9,
};

#define IO_UD(ptr, op) ((uint64_t)(uintptr_t)(ptr) | (uint64_t)(op))
#define IO_UD_OP(ud) ((enum io_op)((ud) & 15u))
#define IO_UD_PTR(ud) ((void *)(uintptr_t)((ud) & ~(uint64_t)15u))

uint64_t io_loop_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec;
}

/* An SQE, submitting first if the queue is full. */
static struct io_uring_sqe *loop_sqe(struct io_loop *loop)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&loop->lp_ring);

	while (sqe == NULL) {
		io_uring_submit(&loop->lp_ring);
		sqe = io_uring_get_sqe(&loop->lp_ring);
	}
	return sqe;
}

static void loop_arm_tick(struct io_loop *loop)
{
	struct io_uring_sqe *sqe = loop_sqe(loop);

	loop->lp_tick_ts.tv_sec = 1;
	loop->lp_tick_ts.tv_nsec = 0;
	io_uring_prep_timeout(sqe, &loop->lp_tick_ts, 0, 0);
	io_uring_sqe_set_data64(sqe, IO_UD(loop, IO_OP_TICK));
}

static void loop_arm_wake(struct io_loop *loop)
{
	struct io_uring_sqe *sqe = loop_sqe(loop);

	io_uring_prep_read(sqe, loop->lp_wake_fd, &loop->lp_wake_val,
			   sizeof(loop->lp_wake_val), 0);
	io_uring_sqe_set_data64(sqe, IO_UD(loop, IO_OP_WAKE));
}

static void loop_arm_accept(struct io_loop *loop, struct io_listener *l)
{
	struct io_uring_sqe *sqe = loop_sqe(loop);

	io_uring_prep_multishot_accept(sqe, l->il_fd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, IO_UD(l, IO_OP_ACCEPT));
	l->il_armed = true;
}

/* IOSQE_FIXED_FILE when the connection lives in the file table. */
static unsigned conn_sqe_flags(const struct io_conn *c)
{
	return (c->ic_flags & IO_CONN_F_FIXED) ? IOSQE_FIXED_FILE : 0;
}

static void conn_arm_recv(struct io_conn *c)
{
	struct io_uring_sqe *sqe = loop_sqe(c->ic_loop);

	io_uring_prep_recv_multishot(sqe, c->ic_fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT | conn_sqe_flags(c);
	sqe->buf_group = c->ic_loop->lp_bufs.bp_bgid;
	io_uring_sqe_set_data64(sqe, IO_UD(c, IO_OP_RECV));
	c->ic_flags |= IO_CONN_F_RECV;
	c->ic_inflight++;
}

/* A sparse file table of n slots, all free; none when the kernel says no. */
static void loop_fixed_init(struct io_loop *loop, unsigned n)
{
	if (n == 0 || (loop->lp_fslots = malloc(n * sizeof(unsigned))) == NULL)
		return;
	if (io_uring_register_files_sparse(&loop->lp_ring, n) < 0) {
		free(loop->lp_fslots);
		loop->lp_fslots = NULL;
		return;
	}
	loop->lp_nfslots = loop->lp_fslots_free = n;
	for (unsigned i = 0; i < n; i++)
		loop->lp_fslots[i] = n - 1 - i;	/* slot 0 is taken first */
}

/* Move fd into a free slot of the file table and close it: the slot, or
 * -1 (table full or absent, or the update failed) with fd untouched. */
static int loop_fixed_install(struct io_loop *loop, int fd)
{
	unsigned slot;

	if (loop->lp_fslots_free == 0)
		return -1;
	slot = loop->lp_fslots[loop->lp_fslots_free - 1];
	if (io_uring_register_files_update(&loop->lp_ring, slot, &fd, 1) != 1)
		return -1;
	loop->lp_fslots_free--;
	close(fd);
	return (int)slot;
}

/* Empty a slot (the kernel drops its reference to the socket) and free it. */
static void loop_fixed_remove(struct io_loop *loop, unsigned slot)
{
	int none = -1;

	(void)io_uring_register_files_update(&loop->lp_ring, slot, &none, 1);
	loop->lp_fslots[loop->lp_fslots_free++] = slot;
}

int io_loop_init(struct io_loop *loop, const struct io_loop_params *p,
		 const struct io_loop_ops *ops, void *owner)
{
	struct io_uring_params params;
	int ret;

	memset(loop, 0, sizeof(*loop));
	memset(&params, 0, sizeof(params));
	/* Created disabled: the worker thread enables it and so becomes its
	 * single issuer (io_loop_run). */
	params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
		       IORING_SETUP_SUBMIT_ALL | IORING_SETUP_R_DISABLED;
	params.flags |= IORING_SETUP_CQSIZE;
	params.cq_entries = p->entries * 8;
	ret = io_uring_queue_init_params(p->entries, &loop->lp_ring, &params);
	if (ret < 0)
		return ret;
	ret = bufpool_init(&loop->lp_bufs, &loop->lp_ring, 0, p->buf_size,
			   p->buf_max, p->buf_target);
	if (ret < 0) {
		io_uring_queue_exit(&loop->lp_ring);
		return ret;
	}
	loop->lp_wake_fd = eventfd(0, EFD_CLOEXEC);
	if (loop->lp_wake_fd < 0) {
		ret = -errno;
		bufpool_destroy(&loop->lp_bufs, &loop->lp_ring);
		io_uring_queue_exit(&loop->lp_ring);
		return ret;
	}
	loop_fixed_init(loop, p->fixed_files);
	loop->lp_ops = ops;
	loop->lp_owner = owner;
	loop->lp_now = io_loop_now();
	timerwheel_init(&loop->lp_timers, loop->lp_now);
	loop_arm_tick(loop);
	loop_arm_wake(loop);
	return 0;
}

void io_loop_destroy(struct io_loop *loop)
{
	io_loop_unlisten(loop);
	free(loop->lp_listeners);
	loop->lp_listeners = NULL;
	bufpool_destroy(&loop->lp_bufs, &loop->lp_ring);
	io_uring_queue_exit(&loop->lp_ring);	/* drops the file table too */
	free(loop->lp_fslots);
	loop->lp_fslots = NULL;
	if (loop->lp_wake_fd >= 0)
		close(loop->lp_wake_fd);
	loop->lp_wake_fd = -1;
}

int io_loop_listen(struct io_loop *loop, const int *fds, unsigned n)
{
	loop->lp_listeners = calloc(n, sizeof(*loop->lp_listeners));
	if (loop->lp_listeners == NULL)
		return -ENOMEM;
	loop->lp_nlisteners = n;
	for (unsigned i = 0; i < n; i++) {
		struct io_listener *l = &loop->lp_listeners[i];

		l->il_fd = fds[i];
		l->il_index = i;
		l->il_loop = loop;
		loop_arm_accept(loop, l);
	}
	return 0;
}

void io_loop_unlisten(struct io_loop *loop)
{
	for (unsigned i = 0; i < loop->lp_nlisteners; i++) {
		struct io_listener *l = &loop->lp_listeners[i];

		if (l->il_fd < 0)
			continue;
		if (l->il_armed) {
			struct io_uring_sqe *sqe = loop_sqe(loop);

			io_uring_prep_cancel64(sqe, IO_UD(l, IO_OP_ACCEPT), 0);
			io_uring_sqe_set_data64(sqe, IO_UD(loop, IO_OP_IGNORE));
			l->il_armed = false;
		}
		/* The pending accept holds a file reference until its
		 * cancellation completes on this thread; shutdown(2) stops
		 * the socket taking connections right now regardless. */
		shutdown(l->il_fd, SHUT_RDWR);
		close(l->il_fd);
		l->il_fd = -1;
	}
}

void io_loop_stop(struct io_loop *loop)
{
	loop->lp_stop = true;
}

void io_loop_wake(struct io_loop *loop)
{
	uint64_t one = 1;
	ssize_t n;

	do
		n = write(loop->lp_wake_fd, &one, sizeof(one));
	while (n < 0 && errno == EINTR);
}

/* ---- connections ---- */

static void conn_mark_dirty(struct io_conn *c)
{
	if (c->ic_flags & IO_CONN_F_DIRTY)
		return;
	c->ic_flags |= IO_CONN_F_DIRTY;
	c->ic_next_dirty = c->ic_loop->lp_dirty;
	c->ic_loop->lp_dirty = c;
}

/*
 * Queue the connection for freeing once it is shut down and the kernel
 * holds nothing of it. The free happens after the batch, so a handler
 * may still look at the connection after a callback closed it.
 */
static void conn_maybe_free(struct io_conn *c)
{
	if (!(c->ic_flags & IO_CONN_F_SHUT) || c->ic_inflight != 0 ||
	    (c->ic_flags & (IO_CONN_F_DIRTY | IO_CONN_F_STARVED | IO_CONN_F_FREEING)))
		return;
	c->ic_flags |= IO_CONN_F_FREEING;
	c->ic_next_dirty = c->ic_loop->lp_freeing;
	c->ic_loop->lp_freeing = c;
}

static void conn_free(struct io_conn *c)
{
	timerwheel_del(&c->ic_timer);
	if (c->ic_flags & IO_CONN_F_FIXED)
		loop_fixed_remove(c->ic_loop, (unsigned)c->ic_fd);
	else
		close(c->ic_fd);
	c->ic_fd = -1;
	free(c->ic_obuf);
	free(c->ic_sbuf);
	c->ic_obuf = c->ic_sbuf = NULL;
	c->ic_ops->on_free(c);
}

static void conn_starved_add(struct io_conn *c)
{
	struct io_loop *loop = c->ic_loop;

	c->ic_flags |= IO_CONN_F_STARVED;
	c->ic_next_starved = loop->lp_starved;
	if (loop->lp_starved != NULL)
		loop->lp_starved->ic_starved_pprev = &c->ic_next_starved;
	c->ic_starved_pprev = &loop->lp_starved;
	loop->lp_starved = c;
}

static void conn_starved_del(struct io_conn *c)
{
	if (!(c->ic_flags & IO_CONN_F_STARVED))
		return;
	c->ic_flags &= ~IO_CONN_F_STARVED;
	*c->ic_starved_pprev = c->ic_next_starved;
	if (c->ic_next_starved != NULL)
		c->ic_next_starved->ic_starved_pprev = c->ic_starved_pprev;
	c->ic_next_starved = NULL;
	c->ic_starved_pprev = NULL;
}

static void conn_shutdown(struct io_conn *c)
{
	if (c->ic_flags & IO_CONN_F_SHUT)
		return;
	c->ic_flags |= IO_CONN_F_SHUT;
	/* A connection waiting for buffers waits no more: it can be freed. */
	conn_starved_del(c);
	/* Ends the multishot receive (and a send the peer does not take)
	 * with a final completion. A slot of the file table has no
	 * shutdown(2), and the ring's shutdown runs on an io-wq thread whose
	 * completion can wait for the next tick: its operations are
	 * cancelled instead, submitted now so that the cancel runs before the
	 * slot can be emptied and reused; emptying it at the free closes the
	 * socket (FIN). */
	if (c->ic_flags & IO_CONN_F_FIXED) {
		if (c->ic_flags & (IO_CONN_F_RECV | IO_CONN_F_SEND)) {
			struct io_uring_sqe *sqe = loop_sqe(c->ic_loop);

			io_uring_prep_cancel_fd(sqe, c->ic_fd, IORING_ASYNC_CANCEL_ALL |
						IORING_ASYNC_CANCEL_FD_FIXED);
			io_uring_sqe_set_data64(sqe, IO_UD(c->ic_loop, IO_OP_IGNORE));
			io_uring_submit(&c->ic_loop->lp_ring);
		}
	} else {
		shutdown(c->ic_fd, SHUT_RDWR);
	}
	timerwheel_del(&c->ic_timer);
	conn_maybe_free(c);
}

void io_conn_start(struct io_loop *loop, struct io_conn *c, int fd,
		   const struct io_conn_ops *ops)
{
	int slot = loop_fixed_install(loop, fd);

	memset(c, 0, sizeof(*c));
	c->ic_loop = loop;
	c->ic_ops = ops;
	c->ic_fd = slot >= 0 ? slot : fd;
	c->ic_err = 0;
	if (slot >= 0)
		c->ic_flags |= IO_CONN_F_FIXED;
	conn_arm_recv(c);
}

void io_conn_connect(struct io_loop *loop, struct io_conn *c, int fd,
		     const struct sockaddr *sa, socklen_t len,
		     const struct io_conn_ops *ops)
{
	struct io_uring_sqe *sqe;

	memset(c, 0, sizeof(*c));
	c->ic_loop = loop;
	c->ic_ops = ops;
	c->ic_fd = fd;
	c->ic_err = 0;
	sqe = loop_sqe(loop);
	io_uring_prep_connect(sqe, fd, sa, len);
	io_uring_sqe_set_data64(sqe, IO_UD(c, IO_OP_CONNECT));
	c->ic_inflight++;
}

static void loop_on_connect(struct io_conn *c, int res)
{
	c->ic_inflight--;
	if (res == 0 && !(c->ic_flags & IO_CONN_F_SHUT))
		conn_arm_recv(c);
	if (!(c->ic_flags & IO_CONN_F_CLOSING))
		c->ic_ops->on_connected(c, res);
	conn_maybe_free(c);
}

static void watch_arm(struct io_watch *w)
{
	struct io_uring_sqe *sqe = loop_sqe(w->iw_loop);

	io_uring_prep_poll_add(sqe, w->iw_fd, w->iw_events);
	io_uring_sqe_set_data64(sqe, IO_UD(w, IO_OP_WATCH));
	w->iw_armed = true;
	w->iw_armed_events = w->iw_events;
}

void io_watch_set(struct io_loop *loop, struct io_watch *w, int fd,
		  unsigned events, void (*cb)(struct io_watch *, unsigned),
		  void *ctx)
{
	if (w->iw_armed && (w->iw_fd != fd || w->iw_armed_events != events)) {
		/* Remove the old poll; its completion re-arms as wanted. */
		struct io_uring_sqe *sqe = loop_sqe(loop);

		io_uring_prep_poll_remove(sqe, IO_UD(w, IO_OP_WATCH));
		io_uring_sqe_set_data64(sqe, IO_UD(loop, IO_OP_IGNORE));
	}
	w->iw_loop = loop;
	w->iw_cb = cb;
	w->iw_ctx = ctx;
	w->iw_events = events;
	if (!w->iw_armed) {
		w->iw_fd = fd;
		if (events != 0)
			watch_arm(w);
	} else if (w->iw_fd != fd) {
		w->iw_fd = fd;	/* takes effect when the old poll ends */
	}
}

static void loop_on_watch(struct io_watch *w, int res)
{
	w->iw_armed = false;
	/* POLLERR and POLLHUP come whether asked for or not: pass them on,
	 * or a socket in error would re-arm and fire forever. */
	if (res > 0 && w->iw_events != 0 &&
	    (((w->iw_armed_events | POLLERR | POLLHUP) & (unsigned)res) != 0))
		w->iw_cb(w, (unsigned)res);
	/* A poll that failed (-EBADF...) would fail again: stop watching. */
	if (res < 0 && res != -ECANCELED) {
		w->iw_events = 0;
		return;
	}
	if (!w->iw_armed && w->iw_events != 0)
		watch_arm(w);
}

int io_conn_write(struct io_conn *c, const void *p, size_t len)
{
	if (c->ic_flags & IO_CONN_F_SHUT)
		return -EPIPE;
	if (c->ic_olen + len > c->ic_ocap) {
		size_t cap = c->ic_ocap ? c->ic_ocap : 256;
		char *n;

		while (cap < c->ic_olen + len)
			cap *= 2;
		if (cap > (1u << 24))
			return -ENOBUFS;
		n = realloc(c->ic_obuf, cap);
		if (n == NULL)
			return -ENOMEM;
		c->ic_obuf = n;
		c->ic_ocap = (uint32_t)cap;
	}
	memcpy(c->ic_obuf + c->ic_olen, p, len);
	c->ic_olen += (uint32_t)len;
	conn_mark_dirty(c);
	return 0;
}

static void conn_submit_send(struct io_conn *c)
{
	struct io_uring_sqe *sqe = loop_sqe(c->ic_loop);

	io_uring_prep_send(sqe, c->ic_fd, c->ic_sbuf + c->ic_soff,
			   c->ic_slen - c->ic_soff, MSG_NOSIGNAL);
	sqe->flags |= conn_sqe_flags(c);
	io_uring_sqe_set_data64(sqe, IO_UD(c, IO_OP_SEND));
	c->ic_flags |= IO_CONN_F_SEND;
	c->ic_inflight++;
}

static void conn_submit_sendmsg(struct io_conn *c)
{
	struct io_uring_sqe *sqe = loop_sqe(c->ic_loop);

	memset(&c->ic_msg, 0, sizeof(c->ic_msg));
	c->ic_msg.msg_iov = c->ic_iov;
	c->ic_msg.msg_iovlen = c->ic_iovcnt > 1024 ? 1024 : c->ic_iovcnt;
	io_uring_prep_sendmsg(sqe, c->ic_fd, &c->ic_msg, MSG_NOSIGNAL);
	sqe->flags |= conn_sqe_flags(c);
	io_uring_sqe_set_data64(sqe, IO_UD(c, IO_OP_SEND));
	c->ic_flags |= IO_CONN_F_SEND;
	c->ic_inflight++;
}

int io_conn_sendv(struct io_conn *c, struct iovec *iov, unsigned n)
{
	if (c->ic_flags & IO_CONN_F_SHUT)
		return -EPIPE;
	if (c->ic_iovcnt != 0)
		return -EBUSY;
	/* Skip empty leading pieces so a send always carries bytes. */
	while (n > 0 && iov->iov_len == 0) {
		iov++;
		n--;
	}
	c->ic_iov = iov;
	c->ic_iovcnt = n;
	conn_mark_dirty(c);
	return 0;
}

/* Bytes sent from the caller's iovecs: advance past them. */
static void conn_iov_advance(struct io_conn *c, size_t n)
{
	while (n > 0 && c->ic_iovcnt > 0) {
		if (n < c->ic_iov->iov_len) {
			c->ic_iov->iov_base = (char *)c->ic_iov->iov_base + n;
			c->ic_iov->iov_len -= n;
			return;
		}
		n -= c->ic_iov->iov_len;
		c->ic_iov++;
		c->ic_iovcnt--;
	}
	while (c->ic_iovcnt > 0 && c->ic_iov->iov_len == 0) {
		c->ic_iov++;
		c->ic_iovcnt--;
	}
}

/* Start a send of the pending output if none is in flight: copied
 * output first, then the caller's iovecs. */
static void conn_flush(struct io_conn *c)
{
	char *tmp;
	uint32_t cap;

	if (c->ic_flags & (IO_CONN_F_SEND | IO_CONN_F_SHUT))
		return;
	if (c->ic_olen == 0) {
		if (c->ic_iovcnt > 0)
			conn_submit_sendmsg(c);
		return;
	}
	/* Swap: the filled buffer goes to the kernel, the spare is refilled. */
	tmp = c->ic_sbuf;
	cap = c->ic_scap;
	c->ic_sbuf = c->ic_obuf;
	c->ic_scap = c->ic_ocap;
	c->ic_slen = c->ic_olen;
	c->ic_soff = 0;
	c->ic_obuf = tmp;
	c->ic_ocap = cap;
	c->ic_olen = 0;
	conn_submit_send(c);
}

void io_conn_set_deadline(struct io_conn *c, unsigned seconds)
{
	if (c->ic_flags & IO_CONN_F_CLOSING)
		return;		/* the linger deadline stands */
	timerwheel_set(&c->ic_loop->lp_timers, &c->ic_timer,
		       seconds ? io_loop_now() + seconds : 0);
}

int io_conn_delay(struct io_conn *c, unsigned ms)
{
	struct io_uring_sqe *sqe;

	if (c->ic_flags & (IO_CONN_F_DELAY | IO_CONN_F_SHUT))
		return -EBUSY;
	sqe = loop_sqe(c->ic_loop);
	c->ic_delay_ts.tv_sec = ms / 1000;
	c->ic_delay_ts.tv_nsec = (long long)(ms % 1000) * 1000000;
	io_uring_prep_timeout(sqe, &c->ic_delay_ts, 0, 0);
	io_uring_sqe_set_data64(sqe, IO_UD(c, IO_OP_DELAY));
	c->ic_flags |= IO_CONN_F_DELAY;
	c->ic_inflight++;
	return 0;
}

void io_conn_close(struct io_conn *c)
{
	if (c->ic_flags & IO_CONN_F_CLOSING)
		return;
	c->ic_flags |= IO_CONN_F_CLOSING;
	if (c->ic_olen == 0 && c->ic_iovcnt == 0 && !(c->ic_flags & IO_CONN_F_SEND)) {
		conn_shutdown(c);
		return;
	}
	/* Shut down once the output has been sent (see on_send), or when a
	 * peer that does not read has had long enough (loop_fire_timer). */
	timerwheel_set(&c->ic_loop->lp_timers, &c->ic_timer,
		       io_loop_now() + IO_CONN_LINGER_S);
}

void io_conn_pause(struct io_conn *c)
{
	if (c->ic_flags & (IO_CONN_F_PAUSED | IO_CONN_F_SHUT))
		return;
	c->ic_flags |= IO_CONN_F_PAUSED;
	if (c->ic_flags & IO_CONN_F_RECV) {
		/* The receive ends with -ECANCELED (loop_on_recv). Its user_data
		 * stays unique: c is not freed while the receive is armed. */
		struct io_uring_sqe *sqe = loop_sqe(c->ic_loop);

		io_uring_prep_cancel64(sqe, IO_UD(c, IO_OP_RECV), 0);
		io_uring_sqe_set_data64(sqe, IO_UD(c->ic_loop, IO_OP_IGNORE));
	}
	conn_starved_del(c);
}

void io_conn_resume(struct io_conn *c)
{
	if (!(c->ic_flags & IO_CONN_F_PAUSED))
		return;
	c->ic_flags &= ~IO_CONN_F_PAUSED;
	/* With the cancelled receive still to complete, its completion
	 * re-arms (loop_on_recv). */
	if (!(c->ic_flags & (IO_CONN_F_RECV | IO_CONN_F_SHUT | IO_CONN_F_STARVED)))
		conn_arm_recv(c);
}

void io_conn_abort(struct io_conn *c)
{
	/* Output not yet handed to the kernel is dropped; a send in flight
	 * ends with an error or a short count and is not resumed (SHUT). */
	c->ic_flags |= IO_CONN_F_CLOSING;
	c->ic_olen = 0;
	c->ic_iovcnt = 0;
	conn_shutdown(c);
}

static void loop_on_recv(struct io_loop *loop, struct io_conn *c,
			 const struct io_uring_cqe *cqe)
{
	bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;

	if (!more) {
		c->ic_flags &= ~IO_CONN_F_RECV;
		c->ic_inflight--;
	}
	if (cqe->res > 0) {
		struct io_buf *b = bufpool_take(&loop->lp_bufs,
				(uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT));

		stat_inc(&loop->lp_stats.recvs);
		stat_add(&loop->lp_stats.recv_bytes, (uint64_t)cqe->res);
		if (!(c->ic_flags & IO_CONN_F_CLOSING))
			c->ic_ops->on_recv(c, b, (size_t)cqe->res);
		bufpool_unref(&loop->lp_bufs, b);
		if (!more && !(c->ic_flags & (IO_CONN_F_SHUT | IO_CONN_F_PAUSED)))
			conn_arm_recv(c);
	} else if (cqe->res == -ENOBUFS) {
		stat_inc(&loop->lp_stats.enobufs);
		if (!(c->ic_flags & (IO_CONN_F_SHUT | IO_CONN_F_STARVED | IO_CONN_F_PAUSED)))
			conn_starved_add(c);
	} else if (cqe->res == -ECANCELED &&
		   !(c->ic_flags & (IO_CONN_F_CLOSING | IO_CONN_F_SHUT))) {
		/* io_conn_pause's cancel; resumed meanwhile: receive again. */
		if (!(c->ic_flags & IO_CONN_F_PAUSED))
			conn_arm_recv(c);
	} else if (!more) {
		/* After a failed send (loop_on_send), its error: the
		 * receive was cancelled (file table) or shut down. */
		if (!(c->ic_flags & IO_CONN_F_CLOSING))
			c->ic_ops->on_eof(c, c->ic_err != 0 ? c->ic_err : cqe->res);
		else if (c->ic_olen == 0 && c->ic_iovcnt == 0 && !(c->ic_flags & IO_CONN_F_SEND))
			conn_shutdown(c);
		/* else: closing with output left (a pause's cancel, or the peer
		 * half-closed): on_send or the linger timer shuts it down, so
		 * the last reply is not cut off. */
	}
	conn_maybe_free(c);
}

static void loop_on_send(struct io_loop *loop, struct io_conn *c, int res)
{
	c->ic_flags &= ~IO_CONN_F_SEND;
	c->ic_inflight--;
	if (res < 0) {
		/* The peer is gone. The owner hears it once, from on_eof with
		 * this error: through the receive the shutdown ends (in the
		 * file table a cancel, whose -ECANCELED says nothing), or here
		 * when none is armed (paused, or waiting for buffers). */
		bool tell = !(c->ic_flags & (IO_CONN_F_SHUT | IO_CONN_F_CLOSING));

		c->ic_olen = 0;
		c->ic_iovcnt = 0;
		if (tell)
			c->ic_err = res;
		if (!(c->ic_flags & IO_CONN_F_SHUT))
			conn_shutdown(c);
		if (tell && !(c->ic_flags & IO_CONN_F_RECV))
			c->ic_ops->on_eof(c, res);
		conn_maybe_free(c);
		return;
	}
	stat_inc(&loop->lp_stats.sends);
	stat_add(&loop->lp_stats.send_bytes, (uint64_t)res);
	if (c->ic_slen == 0) {
		/* A sendmsg of the caller's iovecs. */
		conn_iov_advance(c, (size_t)res);
		if (c->ic_iovcnt > 0 && !(c->ic_flags & IO_CONN_F_SHUT)) {
			conn_submit_sendmsg(c);
			return;
		}
	} else {
		c->ic_soff += (uint32_t)res;
		if (c->ic_soff < c->ic_slen && !(c->ic_flags & IO_CONN_F_SHUT)) {
			conn_submit_send(c);	/* short send: the rest */
			return;
		}
		c->ic_slen = c->ic_soff = 0;
	}
	if (c->ic_olen > 0 || c->ic_iovcnt > 0) {
		conn_flush(c);
		return;
	}
	if (c->ic_flags & IO_CONN_F_CLOSING)
		conn_shutdown(c);
	else
		c->ic_ops->on_drained(c);
	conn_maybe_free(c);
}

static void loop_on_accept(struct io_loop *loop, struct io_listener *l,
			   const struct io_uring_cqe *cqe)
{
	if (!(cqe->flags & IORING_CQE_F_MORE))
		l->il_armed = false;
	if (cqe->res >= 0) {
		stat_inc(&loop->lp_stats.accepts);
		loop->lp_ops->on_accept(loop, l, cqe->res);
	}
	/* Re-armed on the next tick when the kernel ended it (EMFILE...). */
	if (!l->il_armed && l->il_fd >= 0 && cqe->res != -ECANCELED &&
	    cqe->res != -EMFILE && cqe->res != -ENFILE)
		loop_arm_accept(loop, l);
}

static void loop_fire_timer(struct timer_entry *te, void *ctx)
{
	struct io_conn *c = (struct io_conn *)((char *)te -
					       offsetof(struct io_conn, ic_timer));

	(void)ctx;
	if (c->ic_flags & IO_CONN_F_SHUT)
		return;
	if (c->ic_flags & IO_CONN_F_CLOSING) {
		/* The linger deadline: the peer did not take its last output.
		 * The send in flight fails and the connection is freed. */
		conn_shutdown(c);
		return;
	}
	c->ic_ops->on_timeout(c);
}

static void loop_on_tick(struct io_loop *loop)
{
	loop->lp_now = io_loop_now();
	timerwheel_advance(&loop->lp_timers, loop->lp_now, loop_fire_timer, NULL);
	for (unsigned i = 0; i < loop->lp_nlisteners; i++) {
		struct io_listener *l = &loop->lp_listeners[i];

		if (!l->il_armed && l->il_fd >= 0)
			loop_arm_accept(loop, l);
	}
	if (loop->lp_ops->on_tick != NULL)
		loop->lp_ops->on_tick(loop, loop->lp_now);
	loop_arm_tick(loop);
}

static void loop_handle(struct io_loop *loop, const struct io_uring_cqe *cqe)
{
	void *ptr = IO_UD_PTR(cqe->user_data);

	switch (IO_UD_OP(cqe->user_data)) {
	case IO_OP_ACCEPT:
		loop_on_accept(loop, ptr, cqe);
		break;
	case IO_OP_RECV:
		loop_on_recv(loop, ptr, cqe);
		break;
	case IO_OP_SEND:
		loop_on_send(loop, ptr, cqe->res);
		break;
	case IO_OP_TICK:
		loop_on_tick(loop);
		break;
	case IO_OP_WAKE:
		loop_arm_wake(loop);
		loop->lp_ops->on_wake(loop);
		break;
	case IO_OP_DELAY: {
		struct io_conn *c = ptr;

		c->ic_flags &= ~IO_CONN_F_DELAY;
		c->ic_inflight--;
		if (!(c->ic_flags & IO_CONN_F_CLOSING))
			c->ic_ops->on_delay(c);
		conn_maybe_free(c);
		break;
	}
	case IO_OP_IGNORE:
		break;
	case IO_OP_CONNECT:
		loop_on_connect(ptr, cqe->res);
		break;
	case IO_OP_WATCH:
		loop_on_watch(ptr, cqe->res);
		break;
	}
}

/* After a batch: send what was written, re-arm starved receives. */
static void loop_after_batch(struct io_loop *loop)
{
	struct io_conn *c, *next;

	bufpool_publish(&loop->lp_bufs);
	if (loop->lp_starved != NULL && loop->lp_bufs.bp_in_ring > 0) {
		c = loop->lp_starved;
		loop->lp_starved = NULL;
		for (; c != NULL; c = next) {
			next = c->ic_next_starved;
			c->ic_flags &= ~IO_CONN_F_STARVED;
			c->ic_next_starved = NULL;
			c->ic_starved_pprev = NULL;
			/* Shut or paused connections are never on the list. */
			conn_arm_recv(c);
		}
	}
	while ((c = loop->lp_dirty) != NULL) {
		loop->lp_dirty = c->ic_next_dirty;
		c->ic_flags &= ~IO_CONN_F_DIRTY;
		conn_flush(c);
		conn_maybe_free(c);
	}
	while ((c = loop->lp_freeing) != NULL) {
		loop->lp_freeing = c->ic_next_dirty;
		conn_free(c);
	}
}

int io_loop_run(struct io_loop *loop)
{
	/* liburing 2.3 declares io_uring_enable_rings but does not export it. */
	int ret = (int)syscall(__NR_io_uring_register, loop->lp_ring.ring_fd,
			       IORING_REGISTER_ENABLE_RINGS, NULL, 0);

	if (ret < 0)
		return -errno;
	while (!loop->lp_stop) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;

		loop_after_batch(loop);
		ret = io_uring_submit_and_wait(&loop->lp_ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -ETIME && ret != -EBUSY)
			return ret;
		io_uring_for_each_cqe(&loop->lp_ring, head, cqe) {
			loop_handle(loop, cqe);
			n++;
		}
		io_uring_cq_advance(&loop->lp_ring, n);
		stat_inc(&loop->lp_stats.loops);
		stat_add(&loop->lp_stats.cqes, n);
	}
	loop_after_batch(loop);
	io_uring_submit(&loop->lp_ring);
	return 0;
}
