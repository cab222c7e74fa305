/*
 * sink_worker.c: one smtp-sink worker thread. It owns a ring, a listening
 * socket with a multishot accept, a provided-buffer ring for the multishot
 * receives (-ENOBUFS is normal: starved sessions are re-armed after the
 * batch), a once-a-second tick (idle timeouts, a failed accept re-armed)
 * and an eventfd that main writes to stop it. Completions are handled in a
 * batch; replies written during a batch leave with one send per session.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sink.h"

static uint64_t sink_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec;
}

struct io_uring_sqe *sink_sqe(struct sink_worker *w)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->w_ring);

	while (sqe == NULL) {
		io_uring_submit(&w->w_ring);
		sqe = io_uring_get_sqe(&w->w_ring);
	}
	return sqe;
}

void sink_buf_recycle(struct sink_worker *w, unsigned bid)
{
	io_uring_buf_ring_add(w->w_br, w->w_bufmem + (size_t)bid * SINK_BUF_SIZE,
			      SINK_BUF_SIZE, (unsigned short)bid,
			      io_uring_buf_ring_mask(SINK_BUF_COUNT),
			      (int)w->w_br_added);
	w->w_br_added++;
}

static void sink_buf_publish(struct sink_worker *w)
{
	if (w->w_br_added == 0)
		return;
	io_uring_buf_ring_advance(w->w_br, (int)w->w_br_added);
	w->w_br_added = 0;
}

static int sink_buf_init(struct sink_worker *w)
{
	struct io_uring_buf_reg reg;
	size_t bytes = SINK_BUF_COUNT * sizeof(struct io_uring_buf);
	void *mem;
	int ret;

	mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		   MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (mem == MAP_FAILED)
		return -errno;
	w->w_br = mem;
	io_uring_buf_ring_init(w->w_br);
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (unsigned long)mem;
	reg.ring_entries = SINK_BUF_COUNT;
	reg.bgid = 0;
	ret = io_uring_register_buf_ring(&w->w_ring, &reg, 0);
	if (ret < 0)
		return ret;
	w->w_bufmem = malloc((size_t)SINK_BUF_COUNT * SINK_BUF_SIZE);
	if (w->w_bufmem == NULL)
		return -ENOMEM;
	for (unsigned i = 0; i < SINK_BUF_COUNT; i++)
		sink_buf_recycle(w, i);
	sink_buf_publish(w);
	return 0;
}

static void sink_worker_arm_accept(struct sink_worker *w)
{
	struct io_uring_sqe *sqe = sink_sqe(w);

	io_uring_prep_multishot_accept(sqe, w->w_lfd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, SINK_UD(w, SINK_OP_ACCEPT));
	w->w_accept_armed = true;
}

static void sink_worker_arm_tick(struct sink_worker *w)
{
	struct io_uring_sqe *sqe = sink_sqe(w);

	w->w_tick_ts.tv_sec = 1;
	w->w_tick_ts.tv_nsec = 0;
	io_uring_prep_timeout(sqe, &w->w_tick_ts, 0, 0);
	io_uring_sqe_set_data64(sqe, SINK_UD(w, SINK_OP_TICK));
}

static void sink_worker_arm_wake(struct sink_worker *w)
{
	struct io_uring_sqe *sqe = sink_sqe(w);

	io_uring_prep_read(sqe, w->w_wake_fd, &w->w_wake_val, sizeof(w->w_wake_val), 0);
	io_uring_sqe_set_data64(sqe, SINK_UD(w, SINK_OP_WAKE));
}

static void sink_worker_reject(struct sink_worker *w, int fd)
{
	struct io_uring_sqe *sqe = sink_sqe(w);

	sink_stat_add(&w->w_ctr.ct_rejected, 1);
	io_uring_prep_send(sqe, fd, sink_r_busy.sr_text, sink_r_busy.sr_len,
			   MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, SINK_UD_FD(fd, SINK_OP_REJECT));
	w->w_nreject++;
}

static void sink_worker_on_accept(struct sink_worker *w, const struct io_uring_cqe *cqe)
{
	struct sink_shared *sh = w->w_shared;
	unsigned cap = w->w_conf->sc_max_sessions;
	struct sink_sess *s;
	uint64_t cur, peak;
	int fd = cqe->res;

	if (!(cqe->flags & IORING_CQE_F_MORE))
		w->w_accept_armed = false;	/* re-armed on the tick */
	if (fd < 0)
		return;
	if (w->w_stopping) {
		close(fd);
		return;
	}
	cur = atomic_fetch_add_explicit(&sh->sh_cur, 1, memory_order_relaxed) + 1;
	if (cap != 0 && cur > cap) {
		atomic_fetch_sub_explicit(&sh->sh_cur, 1, memory_order_relaxed);
		sink_worker_reject(w, fd);
		return;
	}
	peak = atomic_load_explicit(&sh->sh_peak, memory_order_relaxed);
	while (cur > peak &&
	       !atomic_compare_exchange_weak_explicit(&sh->sh_peak, &peak, cur,
						      memory_order_relaxed,
						      memory_order_relaxed))
		;
	s = sink_sess_new(w, fd);
	if (s == NULL) {
		atomic_fetch_sub_explicit(&sh->sh_cur, 1, memory_order_relaxed);
		close(fd);
		return;
	}
	sink_stat_add(&w->w_ctr.ct_sessions, 1);
	sink_sess_write(w, s, &w->w_conf->sc_greeting);
	sink_sess_arm_recv(w, s);
}

/* Once a second: re-arm a failed accept, time out idle sessions. */
static void sink_worker_on_tick(struct sink_worker *w)
{
	unsigned idle = w->w_conf->sc_idle_s;

	w->w_now = sink_now_s();
	if (w->w_stopping)
		return;
	sink_worker_arm_tick(w);
	if (!w->w_accept_armed)
		sink_worker_arm_accept(w);
	if (idle == 0)
		return;
	while (w->w_head != NULL && w->w_head->ss_last + idle <= w->w_now) {
		struct sink_sess *s = w->w_head;

		if (s->ss_flags & SS_F_CLOSING) {
			sink_sess_drop(w, s);	/* its output did not drain */
		} else if (s->ss_state != SS_DELAY) {
			sink_sess_write(w, s, &sink_r_timeout);
			sink_sess_close(w, s);
		}
		sink_sess_touch(w, s);	/* moves it to the tail */
	}
}

/* SIGTERM: stop accepting, close every session, let completions drain. */
static void sink_worker_stop(struct sink_worker *w)
{
	struct io_uring_sqe *sqe;

	w->w_stopping = true;
	sqe = sink_sqe(w);
	io_uring_prep_cancel64(sqe, SINK_UD(w, SINK_OP_ACCEPT), 0);
	io_uring_sqe_set_data64(sqe, SINK_UD(w, SINK_OP_IGNORE));
	sqe = sink_sqe(w);
	io_uring_prep_timeout_remove(sqe, SINK_UD(w, SINK_OP_TICK), 0);
	io_uring_sqe_set_data64(sqe, SINK_UD(w, SINK_OP_IGNORE));
	for (struct sink_sess *s = w->w_head; s != NULL; s = s->ss_next)
		sink_sess_drop(w, s);
}

static void sink_worker_handle(struct sink_worker *w, const struct io_uring_cqe *cqe)
{
	void *ptr = SINK_UD_PTR(cqe->user_data);

	switch (SINK_UD_OP(cqe->user_data)) {
	case SINK_OP_ACCEPT:
		sink_worker_on_accept(w, cqe);
		break;
	case SINK_OP_RECV:
		sink_on_recv(w, ptr, cqe);
		break;
	case SINK_OP_SEND:
		sink_on_send(w, ptr, cqe->res);
		break;
	case SINK_OP_TIMER:
		sink_on_timer(w, ptr, cqe->res);
		break;
	case SINK_OP_REJECT: {
		struct io_uring_sqe *sqe = sink_sqe(w);

		io_uring_prep_close(sqe, SINK_UD_FDOF(cqe->user_data));
		io_uring_sqe_set_data64(sqe, SINK_UD(w, SINK_OP_IGNORE));
		w->w_nreject--;
		break;
	}
	case SINK_OP_WAKE:
		if (!w->w_stopping)
			sink_worker_stop(w);
		break;
	case SINK_OP_TICK:
		sink_worker_on_tick(w);
		break;
	case SINK_OP_IGNORE:
		break;
	}
}

/* After a batch: hand buffers back, re-arm starved receives, send what
 * was written (one send per session), free closed sessions. */
static void sink_worker_after_batch(struct sink_worker *w)
{
	struct sink_sess *s, *next;

	sink_buf_publish(w);
	if (w->w_starved != NULL) {
		s = w->w_starved;
		w->w_starved = NULL;
		for (; s != NULL; s = next) {
			next = s->ss_next_starved;
			s->ss_flags &= ~SS_F_STARVED;
			if (!(s->ss_flags & SS_F_SHUT))
				sink_sess_arm_recv(w, s);
			sink_sess_maybe_free(w, s);
		}
	}
	while ((s = w->w_dirty) != NULL) {
		w->w_dirty = s->ss_next_dirty;
		s->ss_flags &= ~SS_F_DIRTY;
		sink_sess_flush(w, s);
		sink_sess_maybe_free(w, s);
	}
	while ((s = w->w_freeing) != NULL) {
		w->w_freeing = s->ss_next_dirty;
		sink_sess_free(w, s);
	}
}

static int sink_worker_init(struct sink_worker *w)
{
	struct io_uring_params p;
	int ret;

	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
		  IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;
	p.cq_entries = SINK_SQ_ENTRIES * 8;
	ret = io_uring_queue_init_params(SINK_SQ_ENTRIES, &w->w_ring, &p);
	if (ret == -EINVAL) {	/* a kernel before 6.1 */
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = SINK_SQ_ENTRIES * 8;
		ret = io_uring_queue_init_params(SINK_SQ_ENTRIES, &w->w_ring, &p);
	}
	if (ret < 0)
		return ret;
	ret = sink_buf_init(w);
	if (ret < 0)
		return ret;
	w->w_now = sink_now_s();
	w->w_rng = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull ^
		   ((uint64_t)(w->w_index + 1) << 32) ^ (uint64_t)getpid();
	if (w->w_rng == 0)
		w->w_rng = 1;
	sink_worker_arm_wake(w);
	sink_worker_arm_tick(w);
	sink_worker_arm_accept(w);
	return 0;
}

static int sink_worker_run(struct sink_worker *w)
{
	struct __kernel_timespec ts = { .tv_sec = 1, .tv_nsec = 0 };

	while (!w->w_stopping || w->w_head != NULL || w->w_nreject != 0) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;
		int ret;

		sink_worker_after_batch(w);
		if (!w->w_stopping) {
			ret = io_uring_submit_and_wait(&w->w_ring, 1);
		} else {
			/* Draining: give up on peers that do not answer. */
			ret = io_uring_submit_and_wait_timeout(&w->w_ring, &cqe, 1,
							       &ts, NULL);
			if (ret == -ETIME)
				break;
		}
		if (ret < 0 && ret != -EINTR && ret != -ETIME && ret != -EBUSY)
			return ret;
		io_uring_for_each_cqe(&w->w_ring, head, cqe) {
			sink_worker_handle(w, cqe);
			n++;
		}
		io_uring_cq_advance(&w->w_ring, n);
	}
	sink_worker_after_batch(w);
	io_uring_submit(&w->w_ring);
	return 0;
}

static void sink_worker_fini(struct sink_worker *w)
{
	struct sink_sess *s;

	io_uring_queue_exit(&w->w_ring);
	while ((s = w->w_head) != NULL) {	/* left after a drain timeout */
		w->w_head = s->ss_next;
		close(s->ss_fd);
		free(s->ss_line);
		free(s->ss_pend);
		free(s->ss_obuf);
		free(s->ss_sbuf);
		free(s);
		atomic_fetch_sub_explicit(&w->w_shared->sh_cur, 1, memory_order_relaxed);
	}
	w->w_tail = NULL;
	while ((s = w->w_free) != NULL) {
		w->w_free = s->ss_next_dirty;
		free(s->ss_obuf);
		free(s->ss_sbuf);
		free(s);
	}
	if (w->w_br != NULL)
		munmap(w->w_br, SINK_BUF_COUNT * sizeof(struct io_uring_buf));
	free(w->w_bufmem);
	w->w_br = NULL;
	w->w_bufmem = NULL;
}

void *sink_worker_main(void *arg)
{
	struct sink_worker *w = arg;
	int ret;

	ret = sink_worker_init(w);
	w->w_init_err = ret;
	sem_post(&w->w_shared->sh_ready);
	if (ret < 0)
		return NULL;
	ret = sink_worker_run(w);
	if (ret < 0) {
		fprintf(stderr, "smtp-sink: worker %u: %s\n", w->w_index, strerror(-ret));
		atomic_store(&w->w_shared->sh_failed, 1);
		kill(getpid(), SIGTERM);
	}
	sink_worker_fini(w);
	return NULL;
}
