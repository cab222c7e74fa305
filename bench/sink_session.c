/*
 * sink_session.c: the life of an smtp-sink session and its output. A
 * session is recycled through the worker's free list with its two output
 * buffers: replies are appended to ss_obuf, and at the end of a batch the
 * buffers swap and ss_sbuf goes out in one send (the kernel reads it until
 * the completion). A session is freed after the batch once it is shut down
 * and the kernel holds nothing of it; sessions are kept on a list ordered
 * by last activity, so idle timeouts look at its head only.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "sink.h"

void sink_sess_arm_recv(struct sink_worker *w, struct sink_sess *s)
{
	struct io_uring_sqe *sqe = sink_sqe(w);

	io_uring_prep_recv_multishot(sqe, s->ss_fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = 0;
	io_uring_sqe_set_data64(sqe, SINK_UD(s, SINK_OP_RECV));
	s->ss_flags |= SS_F_RECV;
	s->ss_inflight++;
}

static void sink_sess_mark_dirty(struct sink_worker *w, struct sink_sess *s)
{
	if (s->ss_flags & SS_F_DIRTY)
		return;
	s->ss_flags |= SS_F_DIRTY;
	s->ss_next_dirty = w->w_dirty;
	w->w_dirty = s;
}

/* Queue the session for freeing once it is shut down and the kernel
 * holds nothing of it; the free happens after the batch. */
void sink_sess_maybe_free(struct sink_worker *w, struct sink_sess *s)
{
	if (!(s->ss_flags & SS_F_SHUT) || s->ss_inflight != 0 ||
	    (s->ss_flags & (SS_F_DIRTY | SS_F_STARVED | SS_F_FREEING)))
		return;
	s->ss_flags |= SS_F_FREEING;
	s->ss_next_dirty = w->w_freeing;
	w->w_freeing = s;
}

static void sink_sess_shutdown(struct sink_worker *w, struct sink_sess *s)
{
	if (s->ss_flags & SS_F_SHUT)
		return;
	s->ss_flags |= SS_F_SHUT | SS_F_CLOSING;
	/* Ends an armed receive (and a blocked send) with a completion. */
	if (s->ss_flags & (SS_F_RECV | SS_F_SEND))
		shutdown(s->ss_fd, SHUT_RDWR);
	if (s->ss_flags & SS_F_TIMER) {
		struct io_uring_sqe *sqe = sink_sqe(w);

		io_uring_prep_timeout_remove(sqe, SINK_UD(s, SINK_OP_TIMER), 0);
		io_uring_sqe_set_data64(sqe, SINK_UD(w, SINK_OP_IGNORE));
	}
	sink_sess_maybe_free(w, s);
}

/* Close once the queued output is sent. */
void sink_sess_close(struct sink_worker *w, struct sink_sess *s)
{
	s->ss_flags |= SS_F_CLOSING;
	s->ss_state = SS_QUIT;
	if (s->ss_olen == 0 && !(s->ss_flags & SS_F_SEND))
		sink_sess_shutdown(w, s);
}

/* The peer is gone or misbehaved: forget the output, close now. */
void sink_sess_drop(struct sink_worker *w, struct sink_sess *s)
{
	s->ss_olen = 0;
	s->ss_state = SS_QUIT;
	sink_sess_shutdown(w, s);
}

static void sink_sess_unlink(struct sink_worker *w, struct sink_sess *s)
{
	if (s->ss_prev != NULL)
		s->ss_prev->ss_next = s->ss_next;
	else
		w->w_head = s->ss_next;
	if (s->ss_next != NULL)
		s->ss_next->ss_prev = s->ss_prev;
	else
		w->w_tail = s->ss_prev;
	s->ss_prev = s->ss_next = NULL;
}

static void sink_sess_append(struct sink_worker *w, struct sink_sess *s)
{
	s->ss_next = NULL;
	s->ss_prev = w->w_tail;
	if (w->w_tail != NULL)
		w->w_tail->ss_next = s;
	else
		w->w_head = s;
	w->w_tail = s;
}

/* Keep the list ordered by last activity: O(1), once a second at most. */
void sink_sess_touch(struct sink_worker *w, struct sink_sess *s)
{
	if (s->ss_last == w->w_now)
		return;
	s->ss_last = w->w_now;
	if (w->w_tail != s) {
		sink_sess_unlink(w, s);
		sink_sess_append(w, s);
	}
}

/* Return the struct to the free list; its output buffers are kept. */
void sink_sess_free(struct sink_worker *w, struct sink_sess *s)
{
	struct io_uring_sqe *sqe = sink_sqe(w);

	io_uring_prep_close(sqe, s->ss_fd);
	io_uring_sqe_set_data64(sqe, SINK_UD(w, SINK_OP_IGNORE));
	s->ss_fd = -1;
	sink_sess_unlink(w, s);
	free(s->ss_line);
	free(s->ss_pend);
	s->ss_line = s->ss_pend = NULL;
	s->ss_next_dirty = w->w_free;
	w->w_free = s;
	atomic_fetch_sub_explicit(&w->w_shared->sh_cur, 1, memory_order_relaxed);
}

struct sink_sess *sink_sess_new(struct sink_worker *w, int fd)
{
	struct sink_sess *s = w->w_free;
	char *obuf = NULL, *sbuf = NULL;
	uint32_t ocap = 0, scap = 0;

	if (s != NULL) {
		w->w_free = s->ss_next_dirty;
		obuf = s->ss_obuf;
		sbuf = s->ss_sbuf;
		ocap = s->ss_ocap;
		scap = s->ss_scap;
	} else {
		s = aligned_alloc(16, sizeof(*s));
		if (s == NULL)
			return NULL;
	}
	memset(s, 0, sizeof(*s));
	s->ss_fd = fd;
	s->ss_obuf = obuf;
	s->ss_sbuf = sbuf;
	s->ss_ocap = ocap;
	s->ss_scap = scap;
	s->ss_last = w->w_now;
	sink_sess_append(w, s);
	return s;
}

void sink_sess_write(struct sink_worker *w, struct sink_sess *s,
			    const struct sink_reply *r)
{
	if (s->ss_flags & SS_F_SHUT)
		return;
	if (s->ss_olen + r->sr_len > s->ss_ocap) {
		uint32_t cap = s->ss_ocap ? s->ss_ocap : SINK_OBUF_MIN;
		char *n;

		while (cap < s->ss_olen + r->sr_len)
			cap *= 2;
		/* A client that pipelines without reading its replies. */
		if (cap > SINK_PEND_MAX || (n = realloc(s->ss_obuf, cap)) == NULL) {
			sink_sess_drop(w, s);
			return;
		}
		s->ss_obuf = n;
		s->ss_ocap = cap;
	}
	memcpy(s->ss_obuf + s->ss_olen, r->sr_text, r->sr_len);
	s->ss_olen += r->sr_len;
	sink_sess_mark_dirty(w, s);
}

static void sink_sess_submit_send(struct sink_worker *w, struct sink_sess *s)
{
	struct io_uring_sqe *sqe = sink_sqe(w);

	io_uring_prep_send(sqe, s->ss_fd, s->ss_sbuf + s->ss_soff,
			   s->ss_slen - s->ss_soff, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, SINK_UD(s, SINK_OP_SEND));
	s->ss_flags |= SS_F_SEND;
	s->ss_inflight++;
}

/* Send what a batch of input produced: one send per session. */
void sink_sess_flush(struct sink_worker *w, struct sink_sess *s)
{
	char *tmp;
	uint32_t cap;

	if (s->ss_flags & (SS_F_SEND | SS_F_SHUT))
		return;
	if (s->ss_olen == 0) {
		if (s->ss_flags & SS_F_CLOSING)
			sink_sess_shutdown(w, s);
		return;
	}
	tmp = s->ss_sbuf;
	cap = s->ss_scap;
	s->ss_sbuf = s->ss_obuf;
	s->ss_scap = s->ss_ocap;
	s->ss_slen = s->ss_olen;
	s->ss_soff = 0;
	s->ss_obuf = tmp;
	s->ss_ocap = cap;
	s->ss_olen = 0;
	sink_sess_submit_send(w, s);
}

void sink_on_send(struct sink_worker *w, struct sink_sess *s, int res)
{
	s->ss_flags &= ~SS_F_SEND;
	s->ss_inflight--;
	if (res < 0) {
		sink_sess_drop(w, s);
	} else {
		s->ss_soff += (uint32_t)res;
		if (s->ss_soff < s->ss_slen && !(s->ss_flags & SS_F_SHUT)) {
			sink_sess_submit_send(w, s);	/* short send */
			return;
		}
		s->ss_slen = s->ss_soff = 0;
		if (s->ss_olen > 0)
			sink_sess_mark_dirty(w, s);
		else if (s->ss_flags & SS_F_CLOSING)
			sink_sess_shutdown(w, s);
	}
	sink_sess_maybe_free(w, s);
}
