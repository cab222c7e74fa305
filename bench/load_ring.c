/*
 * load_ring.c: smtp-load's io_uring. One ring (SINGLE_ISSUER | DEFER_TASKRUN
 * where the kernel has them); completions are handled in a batch and
 * acknowledged with one io_uring_cq_advance. It opens and closes the
 * connections, posts receives and sends, runs the tick (stop conditions,
 * timeouts, delayed reopens, progress) and the loop.
 *
 * Sockets live in the ring's registered file table, slot = session index
 * (created with socket(2) for setsockopt, installed, and the plain fd
 * closed at once): the operations skip the fd lookup, and -c sessions use
 * -c table slots, not -c descriptors, so the table can be as large as
 * RLIMIT_NOFILE itself. Without a table (old kernels) plain fds are used.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "load.h"

/* An SQE, submitting first if the queue is full. */
static struct io_uring_sqe *load_sqe(struct load *L)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&L->l_ring);

	while (sqe == NULL) {
		io_uring_submit(&L->l_ring);
		sqe = io_uring_get_sqe(&L->l_ring);
	}
	return sqe;
}

uint32_t load_idx(const struct load *L, const struct load_sess *s)
{
	return (uint32_t)(s - L->l_sess);
}

/* Point sqe at the session's socket: its table slot, or its fd. */
static void load_sqe_file(struct load *L, struct load_sess *s, struct io_uring_sqe *sqe)
{
	if (L->l_fixed) {
		sqe->fd = (int)load_idx(L, s);
		sqe->flags |= IOSQE_FIXED_FILE;
	} else {
		sqe->fd = s->ls_fd;
	}
}

static void load_arm_tick(struct load *L)
{
	struct io_uring_sqe *sqe = load_sqe(L);

	L->l_tick_ts.tv_sec = 0;
	L->l_tick_ts.tv_nsec = (long long)LOAD_TICK_NS;
	io_uring_prep_timeout(sqe, &L->l_tick_ts, 0, 0);
	io_uring_sqe_set_data64(sqe, LOAD_UD(0, LOAD_OP_TICK));
}

/* Receive into ls_rx after what it holds; with TLS into the TLS buffer. */
void load_post_recv(struct load *L, struct load_sess *s)
{
	struct io_uring_sqe *sqe = load_sqe(L);

	if (s->ls_flags & LOAD_F_TLS) {
		size_t len;
		char *p = load_tls_rxbuf(s, &len);

		io_uring_prep_recv(sqe, -1, p, len, 0);
	} else {
		io_uring_prep_recv(sqe, -1, s->ls_rx + s->ls_rxlen, LOAD_RX_SIZE - s->ls_rxlen, 0);
	}
	load_sqe_file(L, s, sqe);
	io_uring_sqe_set_data64(sqe, LOAD_UD(load_idx(L, s), LOAD_OP_RECV));
	s->ls_inflight |= LOAD_IF_RECV;
}

void load_post_send(struct load *L, struct load_sess *s)
{
	struct io_uring_sqe *sqe = load_sqe(L);
	struct iovec *v = s->ls_msg.msg_iov;

	/* MSG_WAITALL: the kernel retries short sends on stream sockets. */
	if (s->ls_msg.msg_iovlen == 1)
		io_uring_prep_send(sqe, -1, v->iov_base, v->iov_len, MSG_NOSIGNAL | MSG_WAITALL);
	else
		io_uring_prep_sendmsg(sqe, -1, &s->ls_msg, MSG_NOSIGNAL | MSG_WAITALL);
	load_sqe_file(L, s, sqe);
	io_uring_sqe_set_data64(sqe, LOAD_UD(load_idx(L, s), LOAD_OP_SEND));
	s->ls_inflight |= LOAD_IF_SEND;
}

/* Send len octets at p (ciphertext); p stays put until the completion. */
void load_post_send_buf(struct load *L, struct load_sess *s, const char *p, size_t len)
{
	struct io_uring_sqe *sqe = load_sqe(L);

	io_uring_prep_send(sqe, -1, p, len, MSG_NOSIGNAL | MSG_WAITALL);
	load_sqe_file(L, s, sqe);
	io_uring_sqe_set_data64(sqe, LOAD_UD(load_idx(L, s), LOAD_OP_SEND));
	s->ls_inflight |= LOAD_IF_SEND;
}

bool load_iov_advance(struct msghdr *msg, size_t n)
{
	struct iovec *v = msg->msg_iov;
	size_t cnt = msg->msg_iovlen;

	while (cnt > 0 && n >= v->iov_len) {
		n -= v->iov_len;
		v++;
		cnt--;
	}
	if (cnt > 0) {
		v->iov_base = (char *)v->iov_base + n;
		v->iov_len -= n;
	}
	msg->msg_iov = v;
	msg->msg_iovlen = cnt;
	return cnt > 0;
}

/* Close the connection once nothing is in flight; then maybe reopen. */
void load_maybe_free(struct load *L, struct load_sess *s)
{
	if (s->ls_state != LOAD_S_CLOSING || s->ls_inflight != 0)
		return;
	if (L->l_fixed) {
		/* Synchronous, so the slot is free before a reopen fills it. */
		int none = -1;

		io_uring_register_files_update(&L->l_ring, load_idx(L, s), &none, 1);
	} else {
		struct io_uring_sqe *sqe = load_sqe(L);

		io_uring_prep_close(sqe, s->ls_fd);
		io_uring_sqe_set_data64(sqe, LOAD_UD(load_idx(L, s), LOAD_OP_CLOSE));
		sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	}
	s->ls_fd = -1;
	if (s->ls_tls != NULL)
		load_tls_end(L, s);
	while (s->ls_slots > 0)
		load_msg_end(L, s, false);
	s->ls_state = LOAD_S_FREE;
	s->ls_next_send = LOAD_SEND_NONE;
	L->l_open--;
	if (L->l_opts->lo_idle) {
		if (!(s->ls_flags & LOAD_F_WASIDLE))
			L->l_idle_lost++;
		return;
	}
	if (L->l_stopping) {
		s->ls_flags &= (uint8_t)~LOAD_F_RETRY;
		return;
	}
	if (s->ls_flags & LOAD_F_RETRY)
		L->l_retry++;
	else
		L->l_reopen[L->l_nreopen++] = load_idx(L, s);
}

/* Abandon the connection: cancel what is in flight, close when all is back. */
void load_close(struct load *L, struct load_sess *s)
{
	static const struct { uint8_t bit; enum load_op op; } ops[] = {
		{ LOAD_IF_CONNECT, LOAD_OP_CONNECT },
		{ LOAD_IF_RECV, LOAD_OP_RECV },
		{ LOAD_IF_SEND, LOAD_OP_SEND },
	};

	if (s->ls_state == LOAD_S_CLOSING || s->ls_state == LOAD_S_FREE)
		return;
	if (s->ls_state == LOAD_S_IDLE)
		L->l_idle--;
	s->ls_state = LOAD_S_CLOSING;
	for (unsigned i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		struct io_uring_sqe *sqe;

		if (!(s->ls_inflight & ops[i].bit))
			continue;
		sqe = load_sqe(L);
		io_uring_prep_cancel64(sqe, LOAD_UD(load_idx(L, s), ops[i].op), 0);
		io_uring_sqe_set_data64(sqe, LOAD_UD(load_idx(L, s), LOAD_OP_CANCEL));
	}
	load_maybe_free(L, s);
}

/* A socket could not be had: count it, back off or give the session up. */
static void load_open_failed(struct load *L, struct load_sess *s, int err)
{
	load_err(L, "connect", 0, err);
	L->l_conn_failed++;
	load_msg_end(L, s, false);
	if (!L->l_opts->lo_idle) {
		s->ls_flags |= LOAD_F_RETRY;
		L->l_retry++;
	} else {
		L->l_idle_lost++;
	}
}

/* Open a connection for session s (unless the run wants no more mail). */
void load_open(struct load *L, struct load_sess *s)
{
	const struct load_opts *o = L->l_opts;
	struct io_uring_sqe *sqe;
	int fd, one = 1;

	s->ls_flags = 0;
	s->ls_msgs = 0;
	s->ls_slots = 0;
	s->ls_rxlen = 0;
	s->ls_next_send = LOAD_SEND_NONE;
	if (!o->lo_idle) {
		if (!load_take_slot(L))
			return;
		s->ls_msgs = 1;
		s->ls_slots = 1;
	}
	fd = socket(L->l_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		load_open_failed(L, s, errno);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (o->lo_src_addrs > 1 && L->l_addr.ss_family == AF_INET) {
		struct sockaddr_in src = { .sin_family = AF_INET };
		uint32_t n = load_idx(L, s) % o->lo_src_addrs;

		src.sin_addr.s_addr = htonl(0x7f000001u + n);
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0)
			load_err(L, "bind", 0, errno);
	}
	if (L->l_fixed) {
		int rc = io_uring_register_files_update(&L->l_ring, load_idx(L, s), &fd, 1);

		close(fd);
		if (rc != 1) {
			load_open_failed(L, s, rc < 0 ? -rc : EBADF);
			return;
		}
		fd = -1;
	}
	s->ls_fd = fd;
	s->ls_state = LOAD_S_CONNECT;
	s->ls_deadline = L->l_now + (uint64_t)o->lo_timeout * LOAD_NS;
	L->l_open++;
	L->l_conns++;
	sqe = load_sqe(L);
	io_uring_prep_connect(sqe, -1, (struct sockaddr *)&L->l_addr, L->l_addrlen);
	load_sqe_file(L, s, sqe);
	io_uring_sqe_set_data64(sqe, LOAD_UD(load_idx(L, s), LOAD_OP_CONNECT));
	s->ls_inflight |= LOAD_IF_CONNECT;
}

/* Stop starting messages; idle sessions say QUIT. In-flight ones finish. */
static void load_stop(struct load *L)
{
	if (L->l_stopping)
		return;
	L->l_stopping = true;
	L->l_hard_deadline = L->l_now + (uint64_t)L->l_opts->lo_timeout * LOAD_NS;
	for (unsigned i = 0; i < L->l_opts->lo_sessions; i++) {
		struct load_sess *s = &L->l_sess[i];

		if (s->ls_state == LOAD_S_IDLE) {
			L->l_idle--;
			load_quit(L, s);
		}
		if (s->ls_flags & LOAD_F_RETRY) {
			s->ls_flags &= (uint8_t)~LOAD_F_RETRY;
			if (s->ls_state == LOAD_S_FREE)
				L->l_retry--;
		}
	}
}

/* Ten times a second: stop conditions; once a second: timeouts (a sweep of
 * the session array: at most -c entries, cheaper than a timer per step),
 * delayed reopens and the progress line. */
static void load_tick(struct load *L)
{
	const struct load_opts *o = L->l_opts;

	if (load_signalled > 1)
		exit(3);
	if (!L->l_stopping && (load_signalled || (L->l_deadline && L->l_now >= L->l_deadline)))
		load_stop(L);
	if (o->lo_idle && !L->l_idle_reported &&
	    L->l_idle_reached + L->l_idle_lost >= o->lo_sessions) {
		L->l_idle_reported = true;
		fprintf(stderr, "smtp-load: idle: %u of %u sessions established in %.2fs\n",
			L->l_idle_reached, o->lo_sessions,
			(double)(L->l_now - L->l_t0) / (double)LOAD_NS);
	}
	if (++L->l_ticks % 10 == 0 ||
	    (L->l_stopping && L->l_now >= L->l_hard_deadline)) {
		bool hard = L->l_stopping && L->l_now >= L->l_hard_deadline;

		for (unsigned i = 0; i < o->lo_sessions; i++) {
			struct load_sess *s = &L->l_sess[i];

			if (s->ls_state == LOAD_S_FREE && (s->ls_flags & LOAD_F_RETRY)) {
				s->ls_flags &= (uint8_t)~LOAD_F_RETRY;
				L->l_retry--;
				load_open(L, s);
			} else if (load_live(s) && s->ls_state != LOAD_S_IDLE &&
				   (hard || L->l_now >= s->ls_deadline)) {
				load_fail(L, s, -1, 0);
			}
		}
		if (!o->lo_quiet && L->l_ticks % 10 == 0)
			load_progress(L);
	}
	load_arm_tick(L);
}

static void load_cqe(struct load *L, const struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	struct load_sess *s = &L->l_sess[LOAD_UD_IDX(ud)];

	L->l_now = load_clock();
	switch (LOAD_UD_OP(ud)) {
	case LOAD_OP_CONNECT:
		load_on_connect(L, s, cqe->res);
		break;
	case LOAD_OP_RECV:
		load_on_recv(L, s, cqe->res);
		break;
	case LOAD_OP_SEND:
		load_on_send(L, s, cqe->res);
		break;
	case LOAD_OP_TICK:
		load_tick(L);
		break;
	case LOAD_OP_CLOSE:
	case LOAD_OP_CANCEL:
		break;
	}
}

void load_run(struct load *L)
{
	struct io_uring_cqe *cqe;
	unsigned head, n;

	L->l_now = L->l_t0 = load_clock();
	if (L->l_opts->lo_duration)
		L->l_deadline = L->l_t0 + (uint64_t)L->l_opts->lo_duration * LOAD_NS;
	load_arm_tick(L);
	for (unsigned i = 0; i < L->l_opts->lo_sessions; i++)
		load_open(L, &L->l_sess[i]);
	while (L->l_open > 0 || L->l_retry > 0) {
		int rc = io_uring_submit_and_wait(&L->l_ring, 1);

		if (rc < 0 && rc != -EINTR && rc != -ETIME && rc != -EAGAIN && rc != -EBUSY)
			load_die("io_uring_submit_and_wait: %s", strerror(-rc));
		n = 0;
		io_uring_for_each_cqe(&L->l_ring, head, cqe) {
			load_cqe(L, cqe);
			n++;
		}
		io_uring_cq_advance(&L->l_ring, n);
		/* Reopen after the batch, so no handler sees its session reborn;
		 * submit first, so that the old sockets' closes run. */
		if (L->l_nreopen > 0)
			io_uring_submit(&L->l_ring);
		for (unsigned i = 0; i < L->l_nreopen; i++)
			load_open(L, &L->l_sess[L->l_reopen[i]]);
		L->l_nreopen = 0;
	}
	L->l_now = L->l_t_end = load_clock();
}

void load_ring_init(struct load *L)
{
	struct io_uring_params p;
	/* Two operations per session at most, plus cancels: never overflow. */
	unsigned cq = 4u * L->l_opts->lo_sessions + 8192u;
	int rc;

	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
		  IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
	p.cq_entries = cq;
	rc = io_uring_queue_init_params(4096, &L->l_ring, &p);
	if (rc == -EINVAL) {
		/* Kernels before 6.1. */
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
		p.cq_entries = cq;
		rc = io_uring_queue_init_params(4096, &L->l_ring, &p);
	}
	if (rc < 0)
		load_die("io_uring_queue_init: %s", strerror(-rc));
	rc = io_uring_register_files_sparse(&L->l_ring, L->l_opts->lo_sessions);
	L->l_fixed = rc == 0;
	if (!L->l_fixed) {
		struct rlimit rl;

		/* Plain descriptors: the limit must cover them all. */
		getrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur < (rlim_t)L->l_opts->lo_sessions + 16)
			load_die("no registered file table (%s) and RLIMIT_NOFILE %llu is too "
				 "small for -c %u", strerror(-rc), (unsigned long long)rl.rlim_cur,
				 L->l_opts->lo_sessions);
	}
}
