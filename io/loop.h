/*
 * loop: one worker's event loop. It owns an io_uring (SINGLE_ISSUER |
 * DEFER_TASKRUN), its receive buffer pool, a timer wheel ticked once a
 * second, an eventfd other threads use to wake it, its listening sockets
 * (multishot accept) and its connections (multishot receive into the
 * buffer ring, one send in flight each). It knows nothing of SMTP: the
 * owner gets bytes and events through the callbacks below.
 *
 * Threading: everything here runs on the worker's thread, except
 * io_loop_wake(), which any thread may call.
 *
 * user_data encodes a pointer (16-byte aligned) in the high bits and the
 * operation in the low four bits.
 */
#ifndef RINGMTA_IO_LOOP_H
#define RINGMTA_IO_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <liburing.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "io/bufpool.h"
#include "io/stat.h"
#include "io/timerwheel.h"

struct io_loop;
struct io_conn;

struct io_conn_ops {
	/* Bytes arrived: b->ib_data[0..len). The loop holds one reference
	 * for the call and drops it after; take one to keep slices. */
	void (*on_recv)(struct io_conn *c, struct io_buf *b, size_t len);
	/* The peer closed (err 0) or the connection failed (-errno). */
	void (*on_eof)(struct io_conn *c, int err);
	/* Everything written so far has been sent. */
	void (*on_drained)(struct io_conn *c);
	/* The deadline set with io_conn_set_deadline passed. */
	void (*on_timeout)(struct io_conn *c);
	/* The delay set with io_conn_delay elapsed. */
	void (*on_delay)(struct io_conn *c);
	/* Closed and no operation is in flight: free the owner now. */
	void (*on_free)(struct io_conn *c);
	/* Outbound only: the connect finished (0 or -errno). On success
	 * receiving has started; on failure the owner calls io_conn_close. */
	void (*on_connected)(struct io_conn *c, int res);
};

#define IO_CONN_F_RECV		0x01u	/* multishot receive armed */
#define IO_CONN_F_SEND		0x02u	/* a send in flight */
#define IO_CONN_F_CLOSING	0x04u	/* close requested */
#define IO_CONN_F_SHUT		0x08u	/* shutdown(2) done */
#define IO_CONN_F_DIRTY		0x10u	/* on the flush list */
#define IO_CONN_F_STARVED	0x20u	/* waiting for receive buffers */
#define IO_CONN_F_FREEING	0x40u	/* on the free list */
#define IO_CONN_F_DELAY		0x80u	/* a delay timer in flight */
#define IO_CONN_F_PAUSED	0x100u	/* the owner stopped receiving */
#define IO_CONN_F_FIXED		0x200u	/* ic_fd is a slot of the ring's file table */

/* Seconds a closing connection may take to send its last output. */
#define IO_CONN_LINGER_S	5u

/* Embedded in the owner's session; the owner allocates and frees it. */
struct io_conn {
	_Alignas(16) struct io_loop *ic_loop;
	const struct io_conn_ops *ic_ops;
	int ic_fd;			/* with IO_CONN_F_FIXED a file table slot */
	int ic_err;			/* a failed send's -errno, for on_eof */
	uint16_t ic_flags;
	uint16_t ic_inflight;		/* operations the kernel holds */
	uint32_t ic_olen, ic_ocap;	/* pending output */
	uint32_t ic_slen, ic_soff;	/* output in flight */
	uint32_t ic_scap;
	char *ic_obuf;			/* owned; grows */
	char *ic_sbuf;			/* owned; the kernel reads it while SEND */
	struct io_conn *ic_next_dirty;	/* also links the free list */
	struct io_conn *ic_next_starved;
	struct io_conn **ic_starved_pprev;	/* unlinked when shut down */
	struct timer_entry ic_timer;
	struct __kernel_timespec ic_delay_ts;
	/* Zero-copy output (io_conn_sendv): the caller's iovecs, advanced
	 * in place as the kernel takes bytes. */
	struct iovec *ic_iov;
	unsigned ic_iovcnt;
	struct msghdr ic_msg;
};

struct io_listener {
	_Alignas(16) int il_fd;
	unsigned il_index;		/* position in the configured list */
	bool il_armed;
	struct io_loop *il_loop;
};

struct io_loop_ops {
	/* A connection was accepted on listener l. The owner either calls
	 * io_conn_start() on a conn it allocated, or closes fd. */
	void (*on_accept)(struct io_loop *loop, struct io_listener *l, int fd);
	/* io_loop_wake() was called. */
	void (*on_wake)(struct io_loop *loop);
	/* Once a second, after timers fired. now = monotonic seconds. */
	void (*on_tick)(struct io_loop *loop, uint64_t now);
};

/* Written by the loop's thread, read by the metrics endpoint. */
struct io_loop_stats {
	stat_t loops, cqes, accepts, recvs, recv_bytes, sends, send_bytes;
	stat_t enobufs;
};

struct io_loop {
	_Alignas(16) struct io_uring lp_ring;
	struct bufpool lp_bufs;
	struct timerwheel lp_timers;
	const struct io_loop_ops *lp_ops;
	void *lp_owner;
	struct io_listener *lp_listeners;
	unsigned lp_nlisteners;
	int lp_wake_fd;
	uint64_t lp_wake_val;
	struct __kernel_timespec lp_tick_ts;
	struct io_conn *lp_dirty;
	struct io_conn *lp_starved;
	struct io_conn *lp_freeing;	/* freed after the batch */
	uint64_t lp_now;		/* monotonic seconds, updated per tick */
	/* The ring's registered file table for accepted connections, so
	 * they hold no process descriptor: free slots as a stack. */
	unsigned *lp_fslots;		/* owned */
	unsigned lp_nfslots, lp_fslots_free;
	bool lp_stop;
	struct io_loop_stats lp_stats;
};

/*
 * A file descriptor watched for readiness (one-shot polls re-armed after
 * each callback), for libraries that bring their own sockets (c-ares).
 * The watch is embedded in its owner and must outlive the loop's use of
 * it: stop it and wait for iw_armed to drop before freeing.
 */
struct io_watch {
	_Alignas(16) struct io_loop *iw_loop;
	void (*iw_cb)(struct io_watch *w, unsigned revents);
	void *iw_ctx;
	int iw_fd;
	unsigned iw_events;		/* wanted: POLLIN | POLLOUT; 0 = stop */
	unsigned iw_armed_events;	/* of the poll in flight */
	bool iw_armed;
};

struct io_loop_params {
	unsigned entries;		/* SQ size */
	uint32_t buf_size, buf_max, buf_target;
	/* Slots of a registered file table for io_conn_start()'s sockets
	 * (at most RLIMIT_NOFILE; 0 = none): an accepted connection moves
	 * into it and closes its descriptor, so the sessions a process holds
	 * are not bound by its open-file limit. When the table is full, or
	 * the kernel refuses it, connections keep their descriptors. */
	unsigned fixed_files;
};

int io_loop_init(struct io_loop *loop, const struct io_loop_params *p,
		 const struct io_loop_ops *ops, void *owner);
void io_loop_destroy(struct io_loop *loop);
/* Take ownership of listening fds (closed by io_loop_destroy). */
int io_loop_listen(struct io_loop *loop, const int *fds, unsigned n);
/* Stop accepting: cancel the accepts and close the listening sockets. */
void io_loop_unlisten(struct io_loop *loop);
/* Run until io_loop_stop(). Returns 0 or -errno. */
int io_loop_run(struct io_loop *loop);
void io_loop_stop(struct io_loop *loop);
/* Any thread: wake the loop; on_wake runs on the loop's thread. */
void io_loop_wake(struct io_loop *loop);
uint64_t io_loop_now(void);	/* monotonic seconds */

void io_conn_start(struct io_loop *loop, struct io_conn *c, int fd,
		   const struct io_conn_ops *ops);
/* Queue bytes; sent when the current batch of completions is done. */
int io_conn_write(struct io_conn *c, const void *p, size_t len);
/* Deadline in seconds from now; 0 disarms. */
void io_conn_set_deadline(struct io_conn *c, unsigned seconds);
/* One-shot delay in milliseconds; calls on_delay. */
int io_conn_delay(struct io_conn *c, unsigned ms);
/*
 * Send the caller's buffers without copying them, after any output queued
 * with io_conn_write. iov (and what it points to) must stay valid and
 * unchanged until on_drained; the loop advances iov in place. One
 * io_conn_sendv at a time.
 */
int io_conn_sendv(struct io_conn *c, struct iovec *iov, unsigned n);
/* Outbound: connect fd (non-blocking socket) to sa, which must stay
 * valid until on_connected. */
void io_conn_connect(struct io_loop *loop, struct io_conn *c, int fd,
		     const struct sockaddr *sa, socklen_t len,
		     const struct io_conn_ops *ops);
/* Watch fd for events (POLLIN/POLLOUT); events 0 stops the watch. */
void io_watch_set(struct io_loop *loop, struct io_watch *w, int fd,
		  unsigned events, void (*cb)(struct io_watch *, unsigned),
		  void *ctx);
/*
 * Flow control: stop receiving (cancels the multishot receive; bytes the
 * kernel already took may still come to on_recv) and start again. A
 * paused connection still times out and closes normally.
 */
void io_conn_pause(struct io_conn *c);
void io_conn_resume(struct io_conn *c);
/* Bytes written with io_conn_write that the kernel has not taken yet. */
static inline size_t io_conn_unsent(const struct io_conn *c)
{
	return (size_t)c->ic_olen + (c->ic_slen - c->ic_soff);
}
/*
 * Close once pending output is sent, or after IO_CONN_LINGER_S seconds
 * if the peer will not take it; on_free follows when safe.
 */
void io_conn_close(struct io_conn *c);
/* Close now, dropping output not yet sent (a peer that stopped reading);
 * on_free follows once the kernel holds nothing of c. */
void io_conn_abort(struct io_conn *c);
static inline bool io_conn_closing(const struct io_conn *c)
{
	return (c->ic_flags & IO_CONN_F_CLOSING) != 0;
}

#endif
