/*
 * smtp-load: SMTP load generator for ringmta's benchmarks (bench/README.md).
 *
 * One thread, one io_uring. Each session is a small state machine driven by
 * the replies it reads: it connects, reads the greeting, sends EHLO, then
 * sends messages (lock-step, or with -P as RFC 2920 groups), reusing the
 * connection for -m messages, and ends with QUIT. With -I it idles after
 * EHLO instead, to measure what idle sessions cost the server.
 * It reports messages per second, the latency from the end of DATA (the
 * send that carries "<CRLF>.<CRLF>") to the reply, errors by stage and reply
 * code, and its own CPU time, so that its cost can be subtracted.
 *
 * Ownership: everything is allocated before the first connect and lives
 * until exit. The command text and the message body are shared read-only
 * by all sessions; a session's receive buffer, Message-ID line and iovecs
 * are inline in its struct and are never touched while the kernel holds
 * an SQE on them (one receive and one send in flight per session).
 * A socket is closed only once no operation on it is in flight, so a
 * completion always belongs to the session's current connection.
 *
 * Sockets live in the ring's registered file table, slot = session index
 * (created with socket(2) for setsockopt, installed, and the plain fd
 * closed at once): the operations skip the fd lookup, and -c sessions use
 * -c table slots, not -c descriptors, so the table can be as large as
 * RLIMIT_NOFILE itself. Without a table (old kernels) plain fds are used.
 */
#include <errno.h>
#include <inttypes.h>
#include <liburing.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LOAD_MAX_SESSIONS	60000u
#define LOAD_MAX_RCPTS		1000u
#define LOAD_RX_SIZE		512u	/* reply lines longer than this are cut */
#define LOAD_MID_SIZE		72u	/* "Message-ID: <...>\r\n", fixed width */
#define LOAD_TICK_NS		100000000ull	/* 100 ms */
#define LOAD_NS			1000000000ull
#define LOAD_ERR_MAX		64u

/* user_data: session index above three bits of operation. */
enum load_op {
	LOAD_OP_CONNECT = 1,
	LOAD_OP_RECV = 2,
	LOAD_OP_SEND = 3,
	LOAD_OP_CLOSE = 4,
	LOAD_OP_TICK = 5,
	LOAD_OP_CANCEL = 6,
};
#define LOAD_UD(idx, op)	(((uint64_t)(idx) << 3) | (uint64_t)(op))
#define LOAD_UD_OP(ud)		((enum load_op)((ud) & 7u))
#define LOAD_UD_IDX(ud)		((uint32_t)((ud) >> 3))

/* Operations the kernel holds for a session (ls_inflight). */
#define LOAD_IF_CONNECT		0x1u
#define LOAD_IF_RECV		0x2u
#define LOAD_IF_SEND		0x4u

/* Session flags (ls_flags). */
#define LOAD_F_PIPELINING	0x01u	/* -P and the server offers PIPELINING */
#define LOAD_F_RXSKIP		0x02u	/* skipping the rest of a long line */
#define LOAD_F_RETRY		0x04u	/* reopen at the next tick, not at once */
#define LOAD_F_GROUPBAD		0x08u	/* MAIL failed inside a pipelined group */
#define LOAD_F_WASIDLE		0x10u	/* -I: reached the idle state once */

enum load_state {
	LOAD_S_FREE = 0,	/* no connection */
	LOAD_S_CONNECT,
	LOAD_S_GREET,
	LOAD_S_EHLO,
	LOAD_S_MAIL,		/* lock-step: waiting for the MAIL reply */
	LOAD_S_RCPT,		/* lock-step: waiting for RCPT reply ls_rcpt */
	LOAD_S_DATA,		/* lock-step: waiting for 354 */
	LOAD_S_GROUP,		/* pipelined: reply ls_rcpt of MAIL, RCPT.., DATA */
	LOAD_S_DOT,		/* waiting for the reply to "." */
	LOAD_S_IDLE,		/* -I: after EHLO, until the run stops */
	LOAD_S_QUIT,
	LOAD_S_CLOSING,		/* waiting for in-flight operations */
};

/* What one send carries; the body sends differ in what follows the dot. */
enum load_send {
	LOAD_SEND_NONE = 0,
	LOAD_SEND_EHLO,
	LOAD_SEND_MAIL,
	LOAD_SEND_RCPT,
	LOAD_SEND_DATA,
	LOAD_SEND_GROUP,	/* MAIL, RCPT.., DATA in one write */
	LOAD_SEND_BODY,		/* message "." */
	LOAD_SEND_BODY_GROUP,	/* message "." MAIL RCPT.. DATA */
	LOAD_SEND_BODY_QUIT,	/* message "." QUIT */
	LOAD_SEND_QUIT,
};

struct load_opts {
	const char *lo_server;
	const char *lo_helo;
	unsigned lo_sessions;		/* -c */
	uint64_t lo_messages;		/* -n; 0 = no count limit */
	unsigned lo_duration;		/* -d seconds; 0 = no time limit */
	size_t lo_size;			/* -z, whole message: headers + body */
	unsigned lo_rcpts;		/* -r */
	unsigned lo_per_conn;		/* -m; 0 = unlimited */
	unsigned lo_timeout;		/* -t seconds without progress */
	unsigned lo_src_addrs;		/* -b: spread over 127.0.0.1..N */
	bool lo_pipelining;		/* -P */
	bool lo_quiet;			/* -q */
	bool lo_json;			/* -j */
	bool lo_idle;			/* -I */
};

/* One session; multiplied by -c, so kept near 700 bytes. */
struct load_sess {
	int ls_fd;			/* plain fd, or -1 when in the file table */
	uint8_t ls_state;		/* enum load_state */
	uint8_t ls_inflight;		/* LOAD_IF_* */
	uint8_t ls_flags;		/* LOAD_F_* */
	uint8_t ls_next_send;		/* enum load_send waiting for the send in flight */
	uint8_t ls_tail;		/* which body send this transaction used */
	uint8_t ls_sending;		/* enum load_send in flight */
	uint8_t ls_slots;		/* messages counted as started, not yet ended */
	uint16_t ls_rxlen;
	uint16_t ls_rcpt;		/* replies seen in this step */
	uint16_t ls_rcpt_ok;
	uint32_t ls_msgs;		/* transactions begun on this connection */
	uint64_t ls_t_dot;		/* ns: the dot was handed to the kernel */
	uint64_t ls_deadline;		/* ns: no progress by then is a timeout */
	struct msghdr ls_msg;
	struct iovec ls_iov[3];
	char ls_mid[LOAD_MID_SIZE];
	char ls_rx[LOAD_RX_SIZE];
};

/* Log-linear latency histogram in microseconds, about 3 % resolution. */
#define LOAD_HIST_N (64u + 58u * 32u)
struct load_hist {
	uint64_t lh_count[LOAD_HIST_N];
	uint64_t lh_n, lh_max;
};

struct load_err {
	const char *le_stage;
	int le_code;		/* reply code, 0 closed, -1 timeout, -2 bad reply */
	int le_errno;		/* when non-zero: a socket error */
	uint64_t le_n;
};

struct load {
	const struct load_opts *l_opts;
	struct io_uring l_ring;
	bool l_fixed;			/* sockets are in the registered file table */
	struct load_sess *l_sess;
	struct sockaddr_storage l_addr;
	socklen_t l_addrlen;

	/* Shared text: ".\r\n" MAIL RCPT.. DATA, then ".\r\n" QUIT. */
	char *l_cmds;
	size_t *l_rcpt_off;		/* RCPT i is l_cmds[off[i], off[i+1]) */
	size_t l_mail_off, l_data_off, l_cmds_len;
	char *l_dotquit;		/* ".\r\nQUIT\r\n" */
	char *l_ehlo;
	size_t l_ehlo_len;
	char *l_msg;			/* headers after Message-ID, and the body */
	size_t l_msg_len;
	uint64_t l_run_id, l_seq;

	uint64_t l_now, l_t0, l_t_end, l_deadline, l_hard_deadline;
	uint64_t l_started, l_ok, l_failed;
	uint64_t l_conns, l_conn_failed;
	unsigned l_open, l_retry;
	unsigned l_idle, l_idle_reached, l_idle_lost;
	bool l_stopping, l_idle_reported;
	uint32_t *l_reopen;		/* sessions to reopen after this batch */
	unsigned l_nreopen;
	unsigned l_ticks;
	uint64_t l_prev_ok;
	struct __kernel_timespec l_tick_ts;
	struct load_hist l_hist;
	struct load_err l_errs[LOAD_ERR_MAX];
	unsigned l_nerrs;
};

static volatile sig_atomic_t load_signalled;

static void load_on_signal(int sig)
{
	(void)sig;
	load_signalled++;
}

static void load_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("smtp-load: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static uint64_t load_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * LOAD_NS + (uint64_t)ts.tv_nsec;
}

/* ---------------------------------------------------------------- statistics */

static unsigned load_hist_idx(uint64_t v)
{
	unsigned e;

	if (v < 64)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v);
	return 64u + (e - 6u) * 32u + (unsigned)((v >> (e - 5u)) & 31u);
}

/* The middle of bucket i, in microseconds. */
static double load_hist_mid(unsigned i)
{
	unsigned e, sub;

	if (i < 64)
		return i;
	e = (i - 64u) / 32u + 6u;
	sub = (i - 64u) % 32u;
	return (double)((uint64_t)(32u + sub) << (e - 5u)) +
	       (double)(1ull << (e - 5u)) / 2.0;
}

static void load_hist_add(struct load_hist *h, uint64_t us)
{
	h->lh_count[load_hist_idx(us)]++;
	h->lh_n++;
	if (us > h->lh_max)
		h->lh_max = us;
}

/* The p-th fraction (0..1) in milliseconds; 0 when empty. */
static double load_hist_ms(const struct load_hist *h, double p)
{
	uint64_t want, seen = 0;

	if (h->lh_n == 0)
		return 0;
	want = (uint64_t)(p * (double)h->lh_n + 0.999999);
	if (want == 0)
		want = 1;
	for (unsigned i = 0; i < LOAD_HIST_N; i++) {
		seen += h->lh_count[i];
		if (seen >= want) {
			double mid = load_hist_mid(i);

			return (mid > (double)h->lh_max ? (double)h->lh_max : mid) / 1000.0;
		}
	}
	return (double)h->lh_max / 1000.0;
}

static void load_err(struct load *L, const char *stage, int code, int err)
{
	struct load_err *e;

	for (unsigned i = 0; i < L->l_nerrs; i++) {
		e = &L->l_errs[i];
		if (e->le_stage == stage && e->le_code == code && e->le_errno == err) {
			e->le_n++;
			return;
		}
	}
	if (L->l_nerrs == LOAD_ERR_MAX) {
		e = &L->l_errs[LOAD_ERR_MAX - 1];	/* the last row takes the rest */
		e->le_stage = "other";
		e->le_code = -3;
		e->le_errno = 0;
		e->le_n++;
		return;
	}
	e = &L->l_errs[L->l_nerrs++];
	e->le_stage = stage;
	e->le_code = code;
	e->le_errno = err;
	e->le_n = 1;
}

static void load_err_name(const struct load_err *e, char *buf, size_t len)
{
	const char *what;

	if (e->le_errno != 0) {
		what = strerrorname_np(e->le_errno);
		snprintf(buf, len, "%s:%s", e->le_stage, what ? what : "errno");
		return;
	}
	switch (e->le_code) {
	case 0: what = "closed"; break;
	case -1: what = "timeout"; break;
	case -2: what = "bad-reply"; break;
	case -3: what = "more"; break;
	default:
		snprintf(buf, len, "%s:%d", e->le_stage, e->le_code);
		return;
	}
	snprintf(buf, len, "%s:%s", e->le_stage, what);
}

/* The protocol step a session is in, for error rows. */
static const char *load_stage(const struct load *L, const struct load_sess *s)
{
	switch ((enum load_state)s->ls_state) {
	case LOAD_S_FREE: return "free";
	case LOAD_S_CONNECT: return "connect";
	case LOAD_S_GREET: return "greeting";
	case LOAD_S_EHLO: return "ehlo";
	case LOAD_S_MAIL: return "mail";
	case LOAD_S_RCPT: return "rcpt";
	case LOAD_S_DATA: return "data";
	case LOAD_S_GROUP:
		if (s->ls_rcpt == 0)
			return "mail";
		return s->ls_rcpt <= L->l_opts->lo_rcpts ? "rcpt" : "data";
	case LOAD_S_DOT: return "dot";
	case LOAD_S_IDLE: return "idle";
	case LOAD_S_QUIT: return "quit";
	case LOAD_S_CLOSING: return "closing";
	}
	return "?";
}

/* ---------------------------------------------------------------- ring */

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

static uint32_t load_idx(const struct load *L, const struct load_sess *s)
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

static void load_post_recv(struct load *L, struct load_sess *s)
{
	struct io_uring_sqe *sqe = load_sqe(L);

	io_uring_prep_recv(sqe, -1, s->ls_rx + s->ls_rxlen, LOAD_RX_SIZE - s->ls_rxlen, 0);
	load_sqe_file(L, s, sqe);
	io_uring_sqe_set_data64(sqe, LOAD_UD(load_idx(L, s), LOAD_OP_RECV));
	s->ls_inflight |= LOAD_IF_RECV;
}

static void load_post_send(struct load *L, struct load_sess *s)
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

/* ---------------------------------------------------------------- sessions */

static void load_open(struct load *L, struct load_sess *s);

/* Count one more message as started; false when the run allows no more. */
static bool load_take_slot(struct load *L)
{
	const struct load_opts *o = L->l_opts;

	if (L->l_stopping || o->lo_idle)
		return false;
	if (o->lo_messages != 0 && L->l_started >= o->lo_messages)
		return false;
	L->l_started++;
	return true;
}

/* May this connection carry one more message? Takes the slot if so. */
static bool load_more(struct load *L, struct load_sess *s)
{
	unsigned per_conn = L->l_opts->lo_per_conn;

	if (per_conn != 0 && s->ls_msgs >= per_conn)
		return false;
	if (!load_take_slot(L))
		return false;
	s->ls_msgs++;
	s->ls_slots++;
	return true;
}

/* The message that holds a slot ended (ok or not). */
static void load_msg_end(struct load *L, struct load_sess *s, bool ok)
{
	if (s->ls_slots == 0)
		return;
	s->ls_slots--;
	if (ok)
		L->l_ok++;
	else
		L->l_failed++;
}

static void load_fill_mid(struct load *L, struct load_sess *s)
{
	/* Fixed width, so every message has the same size. */
	snprintf(s->ls_mid, sizeof(s->ls_mid),
		 "Message-ID: <%016" PRIx64 ".%012" PRIu64 "@smtp-load.invalid>\r\n",
		 L->l_run_id, (uint64_t)(L->l_seq++ % 1000000000000ull));
}

static void load_iov(struct iovec *v, const char *p, size_t len)
{
	v->iov_base = (void *)(uintptr_t)p;
	v->iov_len = len;
}

/* Queue one send; if a send is in flight, it goes when that one is done. */
static void load_send(struct load *L, struct load_sess *s, enum load_send kind)
{
	struct iovec *v = s->ls_iov;
	const char *c = L->l_cmds;
	size_t n = 1;

	if (s->ls_inflight & LOAD_IF_SEND) {
		s->ls_next_send = (uint8_t)kind;
		return;
	}
	switch (kind) {
	case LOAD_SEND_NONE:
		return;
	case LOAD_SEND_EHLO:
		load_iov(v, L->l_ehlo, L->l_ehlo_len);
		break;
	case LOAD_SEND_MAIL:
		load_iov(v, c + L->l_mail_off, L->l_rcpt_off[0] - L->l_mail_off);
		break;
	case LOAD_SEND_RCPT:
		load_iov(v, c + L->l_rcpt_off[s->ls_rcpt],
			 L->l_rcpt_off[s->ls_rcpt + 1] - L->l_rcpt_off[s->ls_rcpt]);
		break;
	case LOAD_SEND_DATA:
		load_iov(v, c + L->l_data_off, L->l_cmds_len - L->l_data_off);
		break;
	case LOAD_SEND_GROUP:
		load_iov(v, c + L->l_mail_off, L->l_cmds_len - L->l_mail_off);
		break;
	case LOAD_SEND_QUIT:
		load_iov(v, L->l_dotquit + 3, 6);
		break;
	case LOAD_SEND_BODY:
	case LOAD_SEND_BODY_GROUP:
	case LOAD_SEND_BODY_QUIT:
		load_fill_mid(L, s);
		load_iov(&v[0], s->ls_mid, strlen(s->ls_mid));
		load_iov(&v[1], L->l_msg, L->l_msg_len);
		if (kind == LOAD_SEND_BODY)
			load_iov(&v[2], c, 3);
		else if (kind == LOAD_SEND_BODY_GROUP)
			load_iov(&v[2], c, L->l_cmds_len);
		else
			load_iov(&v[2], L->l_dotquit, 9);
		n = 3;
		s->ls_t_dot = L->l_now;
		break;
	}
	s->ls_msg.msg_iov = v;
	s->ls_msg.msg_iovlen = n;
	s->ls_sending = (uint8_t)kind;
	load_post_send(L, s);
}

/* Close the connection once nothing is in flight; then maybe reopen. */
static void load_maybe_free(struct load *L, struct load_sess *s)
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
static void load_close(struct load *L, struct load_sess *s)
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

/* Record a failure at the current step and drop the connection. */
static void load_fail(struct load *L, struct load_sess *s, int code, int err)
{
	load_err(L, load_stage(L, s), code, err);
	load_close(L, s);
}

static void load_quit(struct load *L, struct load_sess *s)
{
	s->ls_state = LOAD_S_QUIT;
	load_send(L, s, LOAD_SEND_QUIT);
}

/* Start the transaction whose slot the session already holds. */
static void load_txn_begin(struct load *L, struct load_sess *s)
{
	s->ls_rcpt = 0;
	s->ls_rcpt_ok = 0;
	s->ls_flags &= (uint8_t)~LOAD_F_GROUPBAD;
	if (s->ls_flags & LOAD_F_PIPELINING) {
		s->ls_state = LOAD_S_GROUP;
		load_send(L, s, LOAD_SEND_GROUP);
	} else {
		s->ls_state = LOAD_S_MAIL;
		load_send(L, s, LOAD_SEND_MAIL);
	}
}

static void load_txn_next(struct load *L, struct load_sess *s)
{
	if (load_more(L, s))
		load_txn_begin(L, s);
	else
		load_quit(L, s);
}

/* 354 arrived: send the message; with PIPELINING the next group or QUIT
 * rides along after the dot (RFC 2920: the dot may be followed by more). */
static void load_send_body(struct load *L, struct load_sess *s)
{
	enum load_send tail = LOAD_SEND_BODY;

	if (s->ls_flags & LOAD_F_PIPELINING)
		tail = load_more(L, s) ? LOAD_SEND_BODY_GROUP : LOAD_SEND_BODY_QUIT;
	s->ls_tail = (uint8_t)tail;
	s->ls_state = LOAD_S_DOT;
	load_send(L, s, tail);
}

static void load_on_dot(struct load *L, struct load_sess *s, int code)
{
	bool ok = code >= 200 && code < 300;

	if (ok) {
		uint64_t ns = L->l_now > s->ls_t_dot ? L->l_now - s->ls_t_dot : 0;

		load_hist_add(&L->l_hist, ns / 1000);
	} else {
		load_err(L, "dot", code, 0);
	}
	load_msg_end(L, s, ok);
	switch ((enum load_send)s->ls_tail) {
	case LOAD_SEND_BODY_GROUP:
		s->ls_rcpt = 0;
		s->ls_rcpt_ok = 0;
		s->ls_flags &= (uint8_t)~LOAD_F_GROUPBAD;
		s->ls_state = LOAD_S_GROUP;
		break;
	case LOAD_SEND_BODY_QUIT:
		s->ls_state = LOAD_S_QUIT;
		break;
	default:
		if (code == 421)
			load_quit(L, s);
		else
			load_txn_next(L, s);
		break;
	}
}

/* One reply of a pipelined MAIL, RCPT.., DATA group. */
static void load_on_group(struct load *L, struct load_sess *s, int code)
{
	unsigned idx = s->ls_rcpt;
	bool good = code >= 200 && code < 300;

	if (idx <= L->l_opts->lo_rcpts && !good)
		load_err(L, load_stage(L, s), code, 0);
	s->ls_rcpt++;
	if (idx == 0) {
		if (!good)
			s->ls_flags |= LOAD_F_GROUPBAD;
	} else if (idx <= L->l_opts->lo_rcpts) {
		if (good)
			s->ls_rcpt_ok++;
	} else if (code == 354) {
		load_send_body(L, s);
	} else {
		if (!(s->ls_flags & LOAD_F_GROUPBAD) && s->ls_rcpt_ok > 0)
			load_err(L, "data", code, 0);
		load_msg_end(L, s, false);
		load_quit(L, s);
	}
}

/* A complete reply (its last line) arrived. */
static void load_on_reply(struct load *L, struct load_sess *s, int code)
{
	const struct load_opts *o = L->l_opts;

	switch ((enum load_state)s->ls_state) {
	case LOAD_S_GREET:
		if (code != 220) {
			load_err(L, "greeting", code, 0);
			s->ls_flags |= LOAD_F_RETRY;	/* refused: back off a tick */
			load_quit(L, s);
			break;
		}
		s->ls_state = LOAD_S_EHLO;
		load_send(L, s, LOAD_SEND_EHLO);
		break;
	case LOAD_S_EHLO:
		if (code != 250) {
			load_err(L, "ehlo", code, 0);
			load_quit(L, s);
			break;
		}
		if (o->lo_idle) {
			if (L->l_stopping) {
				load_quit(L, s);
				break;
			}
			s->ls_state = LOAD_S_IDLE;
			s->ls_flags |= LOAD_F_WASIDLE;
			L->l_idle++;
			L->l_idle_reached++;
			break;
		}
		if (s->ls_slots > 0)
			load_txn_begin(L, s);	/* the slot taken at connect */
		else
			load_txn_next(L, s);
		break;
	case LOAD_S_MAIL:
		if (code < 200 || code >= 300) {
			load_err(L, "mail", code, 0);
			load_msg_end(L, s, false);
			load_quit(L, s);
			break;
		}
		s->ls_state = LOAD_S_RCPT;
		load_send(L, s, LOAD_SEND_RCPT);
		break;
	case LOAD_S_RCPT:
		if (code >= 200 && code < 300)
			s->ls_rcpt_ok++;
		else
			load_err(L, "rcpt", code, 0);
		s->ls_rcpt++;
		if (s->ls_rcpt < o->lo_rcpts) {
			load_send(L, s, LOAD_SEND_RCPT);
		} else if (s->ls_rcpt_ok > 0) {
			s->ls_state = LOAD_S_DATA;
			load_send(L, s, LOAD_SEND_DATA);
		} else {
			load_msg_end(L, s, false);
			load_quit(L, s);
		}
		break;
	case LOAD_S_DATA:
		if (code != 354) {
			load_err(L, "data", code, 0);
			load_msg_end(L, s, false);
			load_quit(L, s);
			break;
		}
		load_send_body(L, s);
		break;
	case LOAD_S_GROUP:
		load_on_group(L, s, code);
		break;
	case LOAD_S_DOT:
		load_on_dot(L, s, code);
		break;
	case LOAD_S_QUIT:
		load_close(L, s);
		break;
	case LOAD_S_IDLE:
		/* Unasked: a timeout or shutdown notice from the server. */
		load_fail(L, s, code, 0);
		break;
	case LOAD_S_FREE:
	case LOAD_S_CONNECT:
	case LOAD_S_CLOSING:
		break;
	}
}

/* One reply line; only the last line of a reply moves the session. */
static void load_on_line(struct load *L, struct load_sess *s, const char *p, size_t len)
{
	int code;

	if (len < 3 || p[0] < '1' || p[0] > '5' || p[1] < '0' || p[1] > '9' ||
	    p[2] < '0' || p[2] > '9') {
		load_fail(L, s, -2, 0);
		return;
	}
	code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
	if (s->ls_state == LOAD_S_EHLO && L->l_opts->lo_pipelining && len >= 14 &&
	    strncasecmp(p + 4, "PIPELINING", 10) == 0)
		s->ls_flags |= LOAD_F_PIPELINING;
	if (len > 3 && p[3] == '-')
		return;
	load_on_reply(L, s, code);
}

static bool load_live(const struct load_sess *s)
{
	return s->ls_state != LOAD_S_CLOSING && s->ls_state != LOAD_S_FREE;
}

static void load_on_recv(struct load *L, struct load_sess *s, int res)
{
	char *p, *end, *lf;
	size_t rest;

	s->ls_inflight &= (uint8_t)~LOAD_IF_RECV;
	if (!load_live(s)) {
		load_maybe_free(L, s);
		return;
	}
	if (res <= 0) {
		if (s->ls_state == LOAD_S_QUIT)
			load_close(L, s);	/* the server hung up after QUIT */
		else
			load_fail(L, s, 0, res == 0 ? 0 : -res);
		return;
	}
	s->ls_deadline = L->l_now + (uint64_t)L->l_opts->lo_timeout * LOAD_NS;
	s->ls_rxlen = (uint16_t)(s->ls_rxlen + (unsigned)res);
	p = s->ls_rx;
	end = p + s->ls_rxlen;
	while (load_live(s) && (lf = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		if (s->ls_flags & LOAD_F_RXSKIP)
			s->ls_flags &= (uint8_t)~LOAD_F_RXSKIP;
		else
			load_on_line(L, s, p, (size_t)(lf - p) + 1);
		p = lf + 1;
	}
	if (!load_live(s))
		return;
	rest = (size_t)(end - p);
	if (rest == LOAD_RX_SIZE) {
		/* A line longer than the buffer: its start carries the code. */
		if (!(s->ls_flags & LOAD_F_RXSKIP))
			load_on_line(L, s, p, 4);
		s->ls_flags |= LOAD_F_RXSKIP;
		rest = 0;
		if (!load_live(s))
			return;
	}
	memmove(s->ls_rx, p, rest);
	s->ls_rxlen = (uint16_t)rest;
	load_post_recv(L, s);
}

static void load_on_send(struct load *L, struct load_sess *s, int res)
{
	struct iovec *v = s->ls_msg.msg_iov;
	size_t cnt = s->ls_msg.msg_iovlen, left;
	enum load_send next;

	s->ls_inflight &= (uint8_t)~LOAD_IF_SEND;
	if (!load_live(s)) {
		load_maybe_free(L, s);
		return;
	}
	if (res < 0) {
		load_fail(L, s, 0, -res);
		return;
	}
	s->ls_deadline = L->l_now + (uint64_t)L->l_opts->lo_timeout * LOAD_NS;
	left = (size_t)res;
	while (cnt > 0 && left >= v->iov_len) {
		left -= v->iov_len;
		v++;
		cnt--;
	}
	if (cnt > 0) {
		/* Short send (rare with MSG_WAITALL): send the rest. */
		v->iov_base = (char *)v->iov_base + left;
		v->iov_len -= left;
		s->ls_msg.msg_iov = v;
		s->ls_msg.msg_iovlen = cnt;
		load_post_send(L, s);
		return;
	}
	/* The dot has left when its send completes; if the reply was handled
	 * first (same batch), the submit time stands. */
	if (s->ls_state == LOAD_S_DOT && s->ls_sending >= LOAD_SEND_BODY &&
	    s->ls_sending <= LOAD_SEND_BODY_QUIT)
		s->ls_t_dot = L->l_now;
	next = (enum load_send)s->ls_next_send;
	s->ls_next_send = LOAD_SEND_NONE;
	load_send(L, s, next);
}

static void load_on_connect(struct load *L, struct load_sess *s, int res)
{
	s->ls_inflight &= (uint8_t)~LOAD_IF_CONNECT;
	if (!load_live(s)) {
		load_maybe_free(L, s);
		return;
	}
	if (res < 0) {
		L->l_conn_failed++;
		s->ls_flags |= LOAD_F_RETRY;	/* do not spin on a refusing server */
		load_fail(L, s, 0, -res);
		return;
	}
	s->ls_state = LOAD_S_GREET;
	s->ls_deadline = L->l_now + (uint64_t)L->l_opts->lo_timeout * LOAD_NS;
	load_post_recv(L, s);
}

/* Open a connection for session s (unless the run wants no more mail). */
static void load_open(struct load *L, struct load_sess *s)
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
		load_err(L, "connect", 0, errno);
		L->l_conn_failed++;
		load_msg_end(L, s, false);
		if (!o->lo_idle) {
			s->ls_flags |= LOAD_F_RETRY;
			L->l_retry++;
		} else {
			L->l_idle_lost++;
		}
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
			load_err(L, "connect", 0, rc < 0 ? -rc : EBADF);
			L->l_conn_failed++;
			load_msg_end(L, s, false);
			if (!o->lo_idle) {
				s->ls_flags |= LOAD_F_RETRY;
				L->l_retry++;
			} else {
				L->l_idle_lost++;
			}
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

/* ---------------------------------------------------------------- run control */

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

static void load_progress(struct load *L)
{
	const struct load_opts *o = L->l_opts;
	double t = (double)(L->l_now - L->l_t0) / (double)LOAD_NS;

	if (o->lo_idle) {
		fprintf(stderr, "smtp-load: %5.1fs open=%u idle=%u lost=%u\n",
			t, L->l_open, L->l_idle, L->l_idle_lost);
	} else {
		fprintf(stderr, "smtp-load: %5.1fs ok=%" PRIu64 " (+%" PRIu64 "/s) failed=%"
			PRIu64 " open=%u conns=%" PRIu64 " p99=%.2fms\n",
			t, L->l_ok, L->l_ok - L->l_prev_ok, L->l_failed, L->l_open,
			L->l_conns, load_hist_ms(&L->l_hist, 0.99));
	}
	L->l_prev_ok = L->l_ok;
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

static void load_run(struct load *L)
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

/* ---------------------------------------------------------------- setup */

/* The body: CRLF lines of at most 78 octets, none starting with '.'. */
static char *load_body(size_t n, size_t *len_r)
{
	static const char alnum[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	char *b = malloc(n + 8);
	size_t pos = 0;
	unsigned line = 0;

	if (b == NULL)
		load_die("out of memory");
	while (pos < n) {
		size_t left = n - pos, len = left < 78 ? left : 78;

		if (left - len == 1 || left - len == 2)
			len -= 3;	/* leave room for a last line */
		if (len < 3)
			len = 3;
		for (size_t i = 0; i + 2 < len; i++)
			b[pos + i] = alnum[(line + i) % 62];
		b[pos + len - 2] = '\r';
		b[pos + len - 1] = '\n';
		pos += len;
		line++;
	}
	*len_r = pos;
	return b;
}

static char *load_strdupf(size_t *len_r, const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0)
		load_die("out of memory");
	if (len_r)
		*len_r = (size_t)n;
	return p;
}

static void load_build_text(struct load *L)
{
	const struct load_opts *o = L->l_opts;
	size_t cap = 64 + (size_t)o->lo_rcpts * 48, len, hdr_len, body_len;
	char date[64], *hdr, *body;
	time_t now = time(NULL);
	struct tm tm;

	L->l_cmds = malloc(cap);
	L->l_rcpt_off = calloc(o->lo_rcpts + 1, sizeof(*L->l_rcpt_off));
	if (L->l_cmds == NULL || L->l_rcpt_off == NULL)
		load_die("out of memory");
	len = (size_t)sprintf(L->l_cmds, ".\r\n");
	L->l_mail_off = len;
	len += (size_t)sprintf(L->l_cmds + len, "MAIL FROM:<smtp-load@load.example> SIZE=%zu\r\n",
			       o->lo_size);
	for (unsigned i = 0; i < o->lo_rcpts; i++) {
		L->l_rcpt_off[i] = len;
		len += (size_t)sprintf(L->l_cmds + len, "RCPT TO:<rcpt%u@example.com>\r\n", i);
	}
	L->l_rcpt_off[o->lo_rcpts] = len;
	L->l_data_off = len;
	len += (size_t)sprintf(L->l_cmds + len, "DATA\r\n");
	L->l_cmds_len = len;
	L->l_dotquit = load_strdupf(NULL, ".\r\nQUIT\r\n");
	L->l_ehlo = load_strdupf(&L->l_ehlo_len, "EHLO %s\r\n", o->lo_helo);

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	hdr = load_strdupf(&hdr_len, "Date: %s\r\nFrom: <smtp-load@load.example>\r\n"
			   "To: <rcpt0@example.com>\r\nSubject: smtp-load test message\r\n\r\n",
			   date);
	L->l_run_id = ((uint64_t)getpid() << 32) ^ (uint64_t)now ^ load_clock();
	load_fill_mid(L, &L->l_sess[0]);
	L->l_seq = 0;
	hdr_len += strlen(L->l_sess[0].ls_mid);
	body_len = o->lo_size > hdr_len ? o->lo_size - hdr_len : 0;
	body = load_body(body_len, &body_len);
	L->l_msg = malloc(hdr_len + body_len);
	if (L->l_msg == NULL)
		load_die("out of memory");
	len = strlen(hdr);
	memcpy(L->l_msg, hdr, len);
	memcpy(L->l_msg + len, body, body_len);
	L->l_msg_len = len + body_len;
	free(hdr);
	free(body);
}

static void load_resolve(struct load *L, const char *hostport)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res;
	char host[256];
	const char *colon = strrchr(hostport, ':');
	size_t hl;
	int rc;

	if (colon == NULL || colon == hostport || colon[1] == '\0')
		load_die("-s wants HOST:PORT, not '%s'", hostport);
	hl = (size_t)(colon - hostport);
	if (hostport[0] == '[' && colon[-1] == ']') {
		hostport++;
		hl -= 2;
	}
	if (hl >= sizeof(host))
		load_die("host name too long");
	memcpy(host, hostport, hl);
	host[hl] = '\0';
	rc = getaddrinfo(host, colon + 1, &hints, &res);
	if (rc != 0)
		load_die("%s: %s", host, gai_strerror(rc));
	memcpy(&L->l_addr, res->ai_addr, res->ai_addrlen);
	L->l_addrlen = res->ai_addrlen;
	freeaddrinfo(res);
}

/* RLIMIT_NOFILE bounds the registered file table (-c slots) and, without
 * a table, the plain descriptors (-c plus a few). Raise it as far as that
 * needs, and as far as the hard limit allows. */
static void load_raise_nofile(unsigned sessions)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)sessions + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;
	if (rl.rlim_max < want) {
		struct rlimit hard = { want, want };

		if (setrlimit(RLIMIT_NOFILE, &hard) == 0)	/* root, usually */
			return;
		want = rl.rlim_max;
	}
	rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || want < sessions)
		load_die("-c %u needs RLIMIT_NOFILE >= %u; the hard limit is %llu",
			 sessions, sessions, (unsigned long long)rl.rlim_max);
}

static void load_ring_init(struct load *L)
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

/* ---------------------------------------------------------------- report */

static void load_report(struct load *L)
{
	const struct load_opts *o = L->l_opts;
	const struct load_hist *h = &L->l_hist;
	double secs = (double)(L->l_t_end - L->l_t0) / (double)LOAD_NS;
	double rate = secs > 0 ? (double)L->l_ok / secs : 0;
	struct rusage ru;
	double ucpu, scpu, per_msg;
	char name[64];

	getrusage(RUSAGE_SELF, &ru);
	ucpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
	scpu = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	per_msg = L->l_ok ? (ucpu + scpu) * 1000.0 / (double)L->l_ok : 0;
	if (o->lo_json) {
		printf("{\"server\":\"%s\",\"mode\":\"%s\",\"sessions\":%u,\"size\":%zu,"
		       "\"rcpts\":%u,\"per_conn\":%u,\"pipelining\":%s,\"ok\":%" PRIu64
		       ",\"failed\":%" PRIu64 ",\"seconds\":%.3f,\"msgs_per_sec\":%.1f,"
		       "\"connections\":%" PRIu64 ",\"connect_failed\":%" PRIu64 ","
		       "\"idle_established\":%u,"
		       "\"lat_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,"
		       "\"max\":%.3f},\"errors\":{",
		       o->lo_server, o->lo_idle ? "idle" : "send", o->lo_sessions, o->lo_size,
		       o->lo_rcpts, o->lo_per_conn, o->lo_pipelining ? "true" : "false",
		       L->l_ok, L->l_failed, secs, rate, L->l_conns, L->l_conn_failed,
		       L->l_idle_reached,
		       load_hist_ms(h, 0.50), load_hist_ms(h, 0.90), load_hist_ms(h, 0.99),
		       load_hist_ms(h, 0.999), (double)h->lh_max / 1000.0);
		for (unsigned i = 0; i < L->l_nerrs; i++) {
			load_err_name(&L->l_errs[i], name, sizeof(name));
			printf("%s\"%s\":%" PRIu64, i ? "," : "", name, L->l_errs[i].le_n);
		}
		printf("},\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,\"cpu_s\":%.3f,"
		       "\"cpu_ms_per_msg\":%.4f,\"max_rss_kb\":%ld}\n",
		       ucpu, scpu, ucpu + scpu, per_msg, ru.ru_maxrss);
		return;
	}
	printf("smtp-load: %s sessions=%u size=%zu rcpts=%u per_conn=%u pipelining=%s\n",
	       o->lo_server, o->lo_sessions, o->lo_size, o->lo_rcpts, o->lo_per_conn,
	       o->lo_pipelining ? "yes" : "no");
	if (o->lo_idle)
		printf("idle:        %u of %u sessions reached the idle state\n",
		       L->l_idle_reached, o->lo_sessions);
	else
		printf("messages:    ok=%" PRIu64 " failed=%" PRIu64 " in %.3f s = %.1f msg/s\n",
		       L->l_ok, L->l_failed, secs, rate);
	printf("connections: %" PRIu64 " opened, %" PRIu64 " failed to connect\n",
	       L->l_conns, L->l_conn_failed);
	if (!o->lo_idle)
		printf("latency:     end of DATA to reply, ms: p50=%.3f p90=%.3f p99=%.3f "
		       "p99.9=%.3f max=%.3f\n",
		       load_hist_ms(h, 0.50), load_hist_ms(h, 0.90), load_hist_ms(h, 0.99),
		       load_hist_ms(h, 0.999), (double)h->lh_max / 1000.0);
	printf("errors:     ");
	if (L->l_nerrs == 0)
		printf(" none");
	for (unsigned i = 0; i < L->l_nerrs; i++) {
		load_err_name(&L->l_errs[i], name, sizeof(name));
		printf(" %s=%" PRIu64, name, L->l_errs[i].le_n);
	}
	printf("\ncpu:         user=%.3f s sys=%.3f s, %.4f ms per message\n",
	       ucpu, scpu, per_msg);
}

static void load_usage(FILE *f)
{
	fprintf(f,
		"usage: smtp-load -s HOST:PORT [-c SESSIONS] [-n MESSAGES | -d SECONDS]\n"
		"                 [-z SIZE] [-r RCPTS] [-m PER_CONN] [-P] [-I] [-q] [-j]\n"
		"                 [-t TIMEOUT] [-b N] [-H HELO]\n"
		"  -s HOST:PORT  server (numeric or name; [v6]:port)\n"
		"  -c N          concurrent sessions (default 50, up to %u)\n"
		"  -n N          messages in all (default 10000 unless -d is given)\n"
		"  -d SECONDS    run this long (with -n: whichever comes first)\n"
		"  -z BYTES      message size, headers included (default 1024)\n"
		"  -r N          recipients per message (default 1)\n"
		"  -m N          messages per connection (default 1; 0 = no limit)\n"
		"  -P            use PIPELINING: MAIL, RCPT.., DATA in one write; the\n"
		"                next group (or QUIT) follows the dot in one write\n"
		"  -I            idle: after EHLO hold the sessions until -d (default 30 s)\n"
		"                runs out, then QUIT; prints 'idle: N of M ...' on stderr\n"
		"                when every session has settled\n"
		"  -t SECONDS    per-connection timeout without progress (default 30)\n"
		"  -b N          spread source addresses over 127.0.0.1..127.0.0.N\n"
		"  -H NAME       EHLO name (default smtp-load.example)\n"
		"  -q            no progress line on stderr\n"
		"  -j            print the summary as one JSON line instead of text\n"
		"Exit: 0 all messages accepted, 1 some failed, 2 usage or setup error.\n",
		LOAD_MAX_SESSIONS);
}

static unsigned long long load_num(const char *arg, char opt, unsigned long long min,
				   unsigned long long max)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || v < min || v > max)
		load_die("-%c: want a number from %llu to %llu, not '%s'", opt, min, max, arg);
	return v;
}

int main(int argc, char **argv)
{
	struct load_opts o = {
		.lo_helo = "smtp-load.example",
		.lo_sessions = 50,
		.lo_size = 1024,
		.lo_rcpts = 1,
		.lo_per_conn = 1,
		.lo_timeout = 30,
	};
	struct sigaction sa;
	struct load *L;
	int opt;

	while ((opt = getopt(argc, argv, "s:c:n:d:z:r:m:t:b:H:PIqjh")) != -1) {
		switch (opt) {
		case 's': o.lo_server = optarg; break;
		case 'c': o.lo_sessions = (unsigned)load_num(optarg, 'c', 1, LOAD_MAX_SESSIONS); break;
		case 'n': o.lo_messages = load_num(optarg, 'n', 1, UINT64_MAX / 2); break;
		case 'd': o.lo_duration = (unsigned)load_num(optarg, 'd', 1, 86400); break;
		case 'z': o.lo_size = (size_t)load_num(optarg, 'z', 0, 1ull << 30); break;
		case 'r': o.lo_rcpts = (unsigned)load_num(optarg, 'r', 1, LOAD_MAX_RCPTS); break;
		case 'm': o.lo_per_conn = (unsigned)load_num(optarg, 'm', 0, UINT32_MAX); break;
		case 't': o.lo_timeout = (unsigned)load_num(optarg, 't', 1, 3600); break;
		case 'b': o.lo_src_addrs = (unsigned)load_num(optarg, 'b', 1, 65534); break;
		case 'H': o.lo_helo = optarg; break;
		case 'P': o.lo_pipelining = true; break;
		case 'I': o.lo_idle = true; break;
		case 'q': o.lo_quiet = true; break;
		case 'j': o.lo_json = true; break;
		case 'h': load_usage(stdout); return 0;
		default: load_usage(stderr); return 2;
		}
	}
	if (o.lo_server == NULL || optind != argc) {
		load_usage(stderr);
		return 2;
	}
	if (o.lo_messages == 0 && o.lo_duration == 0) {
		if (o.lo_idle)
			o.lo_duration = 30;
		else
			o.lo_messages = 10000;
	}

	L = calloc(1, sizeof(*L));
	if (L == NULL)
		load_die("out of memory");
	L->l_opts = &o;
	L->l_sess = calloc(o.lo_sessions, sizeof(*L->l_sess));
	L->l_reopen = calloc(o.lo_sessions, sizeof(*L->l_reopen));
	if (L->l_sess == NULL || L->l_reopen == NULL)
		load_die("out of memory");
	for (unsigned i = 0; i < o.lo_sessions; i++)
		L->l_sess[i].ls_fd = -1;
	load_resolve(L, o.lo_server);
	load_raise_nofile(o.lo_sessions);
	load_build_text(L);
	load_ring_init(L);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = load_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	load_run(L);
	load_report(L);
	io_uring_queue_exit(&L->l_ring);
	return L->l_failed > 0 || (o.lo_idle && L->l_idle_lost > 0) ? 1 : 0;
}
