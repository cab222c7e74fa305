/*
 * smtp-sink: an io_uring SMTP sink for ringmta's benchmarks. It accepts
 * mail and throws it away, and, unlike a plain sink, can push back: a cap
 * on concurrent sessions, added latency before the final DATA reply, a
 * random mix of 4xx/5xx replies, per-domain rules and fixed local parts
 * (tempfail@, permfail@).
 *
 * Ownership: each worker thread owns one io_uring (SINGLE_ISSUER |
 * DEFER_TASKRUN), one SO_REUSEPORT listening socket with a multishot
 * accept, a provided-buffer ring its multishot receives fill, and its
 * sessions. A receive buffer is scanned in place and handed back to the
 * kernel as soon as its completion is handled; message bodies are never
 * copied. The main thread owns the configuration (read-only once the
 * workers run), the signals and the counters file.
 *
 * Standalone on purpose: it links liburing only, not the product's io/
 * library, so it measures the product from outside.
 *
 *   gcc -std=gnu11 -O2 bench/smtp-sink.c -luring -lpthread -o smtp-sink
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <liburing.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SINK_SQ_ENTRIES		512u
#define SINK_BUF_SIZE		16384u	/* one receive buffer */
#define SINK_BUF_COUNT		256u	/* per worker; a power of two */
#define SINK_LINE_MAX		4096u	/* a command line, CRLF included */
#define SINK_PEND_MAX		(1u << 20)	/* input held during a delay */
#define SINK_OBUF_MIN		256u
#define SINK_MAX_WORKERS	64u
#define SINK_BP_ONE		10000u	/* basis points in 100 % */

/* ---- configuration: built by main, read-only once workers start ---- */

/* A canned reply line, CRLF included. */
struct sink_reply {
	const char *sr_text;
	uint16_t sr_len;
	uint16_t sr_code;
};

#define SINK_REPLY(code, text) { text "\r\n", sizeof(text "\r\n") - 1, code }

static const struct sink_reply sink_r_ok = SINK_REPLY(250, "250 2.0.0 ok");
static const struct sink_reply sink_r_mail = SINK_REPLY(250, "250 2.1.0 sender ok");
static const struct sink_reply sink_r_rcpt = SINK_REPLY(250, "250 2.1.5 recipient ok");
static const struct sink_reply sink_r_354 =
	SINK_REPLY(354, "354 End data with <CR><LF>.<CR><LF>");
static const struct sink_reply sink_r_queued = SINK_REPLY(250, "250 2.0.0 ok queued");
static const struct sink_reply sink_r_quit = SINK_REPLY(221, "221 2.0.0 bye");
static const struct sink_reply sink_r_vrfy = SINK_REPLY(252, "252 2.0.0 try it");
static const struct sink_reply sink_r_help = SINK_REPLY(214, "214 2.0.0 see RFC 5321");
static const struct sink_reply sink_r_rcpt_4xx = SINK_REPLY(451, "451 4.3.0 temporary failure");
static const struct sink_reply sink_r_rcpt_5xx = SINK_REPLY(550, "550 5.1.1 no such user");
static const struct sink_reply sink_r_data_4xx = SINK_REPLY(451, "451 4.3.0 temporary failure");
static const struct sink_reply sink_r_data_5xx = SINK_REPLY(554, "554 5.6.0 message rejected");
static const struct sink_reply sink_r_tempfail =
	SINK_REPLY(450, "450 4.2.1 mailbox temporarily unavailable");
static const struct sink_reply sink_r_permfail = SINK_REPLY(550, "550 5.1.1 no such user");
static const struct sink_reply sink_r_nested = SINK_REPLY(503, "503 5.5.1 nested MAIL command");
static const struct sink_reply sink_r_need_mail = SINK_REPLY(503, "503 5.5.1 need MAIL command");
static const struct sink_reply sink_r_no_rcpt = SINK_REPLY(554, "554 5.5.1 no valid recipients");
static const struct sink_reply sink_r_syntax = SINK_REPLY(501, "501 5.5.4 syntax error");
static const struct sink_reply sink_r_bad_addr = SINK_REPLY(501, "501 5.1.3 bad address syntax");
static const struct sink_reply sink_r_unknown =
	SINK_REPLY(502, "502 5.5.2 command not recognized");
static const struct sink_reply sink_r_too_long = SINK_REPLY(500, "500 5.5.2 line too long");
static const struct sink_reply sink_r_timeout = SINK_REPLY(421, "421 4.4.2 idle timeout");
static const struct sink_reply sink_r_busy = SINK_REPLY(421, "421 4.7.0 too many sessions");

struct sink_domain {
	char *sd_name;
	size_t sd_len;
	unsigned sd_latency_ms;
	struct sink_reply sd_rcpt;	/* sr_code 0: no rule */
	struct sink_reply sd_data;
};

struct sink_conf {
	unsigned sc_workers;
	unsigned sc_max_sessions;	/* 0: no cap */
	unsigned sc_latency_ms;
	unsigned sc_idle_s;		/* 0: no idle timeout */
	unsigned sc_rcpt_4xx, sc_rcpt_5xx;	/* basis points */
	unsigned sc_data_4xx, sc_data_5xx;
	struct sink_domain *sc_domains;
	unsigned sc_ndomains;
	const char *sc_stats_path;
	bool sc_quiet;
	struct sink_reply sc_greeting, sc_ehlo, sc_helo;
};

/* ---- counters ---- */

/* Single writer (the worker), read by main: relaxed load and store. */
typedef _Atomic uint64_t sink_stat_t;

static inline void sink_stat_add(sink_stat_t *s, uint64_t n)
{
	atomic_store_explicit(s, atomic_load_explicit(s, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static inline uint64_t sink_stat_get(sink_stat_t *s)
{
	return atomic_load_explicit(s, memory_order_relaxed);
}

struct sink_counters {
	sink_stat_t ct_sessions, ct_rejected, ct_messages, ct_bytes;
	sink_stat_t ct_rcpt[3];		/* 2xx, 4xx, 5xx */
	sink_stat_t ct_data[3];		/* final DATA replies */
};

/* Shared by all threads. */
struct sink_shared {
	_Atomic uint64_t sh_cur;	/* sessions open now, all workers */
	_Atomic uint64_t sh_peak;
	atomic_int sh_failed;
	sem_t sh_ready;
};

/* ---- sessions and workers ---- */

enum sink_op {
	SINK_OP_ACCEPT = 1,
	SINK_OP_RECV = 2,
	SINK_OP_SEND = 3,
	SINK_OP_TIMER = 4,
	SINK_OP_REJECT = 5,	/* the pointer bits carry the fd */
	SINK_OP_WAKE = 6,
	SINK_OP_TICK = 7,
	SINK_OP_IGNORE = 8,
};

#define SINK_UD(ptr, op)	((uint64_t)(uintptr_t)(ptr) | (uint64_t)(op))
#define SINK_UD_FD(fd, op)	(((uint64_t)(unsigned)(fd) << 4) | (uint64_t)(op))
#define SINK_UD_OP(ud)		((enum sink_op)((ud) & 15u))
#define SINK_UD_PTR(ud)		((void *)(uintptr_t)((ud) & ~(uint64_t)15u))
#define SINK_UD_FDOF(ud)	((int)((ud) >> 4))

#define SS_F_RECV	0x001u	/* multishot receive armed */
#define SS_F_SEND	0x002u	/* a send in flight */
#define SS_F_TIMER	0x004u	/* a latency timer in flight */
#define SS_F_CLOSING	0x008u	/* close once the output is sent */
#define SS_F_SHUT	0x010u	/* shut down; freed once nothing is in flight */
#define SS_F_DIRTY	0x020u	/* on the flush list */
#define SS_F_STARVED	0x040u	/* waiting for receive buffers */
#define SS_F_FREEING	0x080u	/* on the free-after-batch list */
#define SS_F_SKIP	0x100u	/* discarding an over-long line */

enum sink_state {
	SS_CMD,		/* reading commands */
	SS_DATA,	/* reading a message body */
	SS_DELAY,	/* final DATA reply held back; input is queued */
	SS_QUIT,	/* QUIT or 421 sent: input is ignored */
};

/*
 * One SMTP session. Idle, it owns its struct and two small output buffers
 * (kept when the struct is recycled); a line buffer and a pending-input
 * buffer are allocated only when a command line straddles receives or
 * input arrives during a delay.
 */
struct sink_sess {
	_Alignas(16) int ss_fd;
	uint16_t ss_flags;
	uint8_t ss_state;
	uint8_t ss_eod;			/* bytes of <CRLF>.<CRLF> matched */
	uint8_t ss_inflight;		/* operations the kernel holds */
	bool ss_mail;			/* MAIL accepted */
	uint32_t ss_nrcpt;		/* recipients accepted */
	uint32_t ss_latency_ms;		/* the transaction's extra latency */
	const struct sink_reply *ss_data_rule;	/* forced final DATA reply */
	const struct sink_reply *ss_delayed;	/* sent when the timer fires */
	char *ss_obuf, *ss_sbuf;	/* queued / in flight (kernel reads it) */
	uint32_t ss_olen, ss_ocap, ss_slen, ss_soff, ss_scap;
	uint32_t ss_linelen, ss_plen, ss_pcap;
	char *ss_line;			/* SINK_LINE_MAX bytes, lazily */
	char *ss_pend;			/* input held during SS_DELAY */
	uint64_t ss_last;		/* last activity, worker seconds */
	struct sink_sess *ss_next_dirty;	/* dirty / freeing / free list */
	struct sink_sess *ss_next_starved;
	struct sink_sess *ss_prev, *ss_next;	/* all sessions, oldest first */
	struct __kernel_timespec ss_ts;
};

struct sink_worker {
	_Alignas(64) struct sink_counters w_ctr;
	_Alignas(64) struct io_uring w_ring;
	const struct sink_conf *w_conf;
	struct sink_shared *w_shared;
	pthread_t w_thread;
	unsigned w_index;
	int w_lfd, w_wake_fd;
	int w_init_err;
	bool w_accept_armed, w_stopping;
	uint64_t w_wake_val;
	uint64_t w_now;			/* monotonic seconds, per tick */
	uint64_t w_rng;
	unsigned w_nreject;		/* 421 sends in flight */
	struct __kernel_timespec w_tick_ts;
	struct io_uring_buf_ring *w_br;
	char *w_bufmem;
	unsigned w_br_added;
	struct sink_sess *w_dirty, *w_starved, *w_freeing, *w_free;
	struct sink_sess *w_head, *w_tail;	/* all sessions */
};

/* ---- small helpers ---- */

static void sink_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void sink_fatal(const char *fmt, ...)
{
	va_list ap;

	fputs("smtp-sink: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static uint64_t sink_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec;
}

/* xorshift64*, scaled to [0, SINK_BP_ONE). */
static unsigned sink_rand_bp(struct sink_worker *w)
{
	uint64_t x = w->w_rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	w->w_rng = x;
	x *= 2685821657736338717ull;
	return (unsigned)(((x >> 32) * SINK_BP_ONE) >> 32);
}

static struct io_uring_sqe *sink_sqe(struct sink_worker *w)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->w_ring);

	while (sqe == NULL) {
		io_uring_submit(&w->w_ring);
		sqe = io_uring_get_sqe(&w->w_ring);
	}
	return sqe;
}

static bool sink_prefix(const char *p, size_t n, const char *pfx)
{
	size_t k = strlen(pfx);

	return n >= k && strncasecmp(p, pfx, k) == 0;
}

/* ---- receive buffers ---- */

static void sink_buf_recycle(struct sink_worker *w, unsigned bid)
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

/* ---- session life cycle ---- */

static void sink_sess_arm_recv(struct sink_worker *w, struct sink_sess *s)
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
static void sink_sess_maybe_free(struct sink_worker *w, struct sink_sess *s)
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
static void sink_sess_close(struct sink_worker *w, struct sink_sess *s)
{
	s->ss_flags |= SS_F_CLOSING;
	s->ss_state = SS_QUIT;
	if (s->ss_olen == 0 && !(s->ss_flags & SS_F_SEND))
		sink_sess_shutdown(w, s);
}

/* The peer is gone or misbehaved: forget the output, close now. */
static void sink_sess_drop(struct sink_worker *w, struct sink_sess *s)
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
static void sink_sess_touch(struct sink_worker *w, struct sink_sess *s)
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
static void sink_sess_free(struct sink_worker *w, struct sink_sess *s)
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

static struct sink_sess *sink_sess_new(struct sink_worker *w, int fd)
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

/* ---- output ---- */

static void sink_sess_write(struct sink_worker *w, struct sink_sess *s,
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
static void sink_sess_flush(struct sink_worker *w, struct sink_sess *s)
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

static void sink_on_send(struct sink_worker *w, struct sink_sess *s, int res)
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

/* ---- SMTP ---- */

static void sink_count(sink_stat_t ctr[3], const struct sink_reply *r)
{
	if (r->sr_code < 300)
		sink_stat_add(&ctr[0], 1);
	else if (r->sr_code < 500)
		sink_stat_add(&ctr[1], 1);
	else
		sink_stat_add(&ctr[2], 1);
}

static void sink_sess_reset_tx(struct sink_sess *s)
{
	s->ss_mail = false;
	s->ss_nrcpt = 0;
	s->ss_latency_ms = 0;
	s->ss_data_rule = NULL;
}

static const struct sink_domain *sink_domain_find(const struct sink_conf *conf,
						  const char *d, size_t n)
{
	for (unsigned i = 0; i < conf->sc_ndomains; i++) {
		const struct sink_domain *sd = &conf->sc_domains[i];

		if (sd->sd_len == n && strncasecmp(sd->sd_name, d, n) == 0)
			return sd;
	}
	return NULL;
}

/* Argument slices point into the receive buffer or the line buffer and
 * are valid for the call only. */
typedef void sink_act_fn(struct sink_worker *w, struct sink_sess *s,
			 const char *arg, size_t n);

static void sink_act_helo(struct sink_worker *w, struct sink_sess *s,
			  const char *arg, size_t n)
{
	(void)arg;
	if (n == 0) {
		sink_sess_write(w, s, &sink_r_syntax);
		return;
	}
	sink_sess_reset_tx(s);
	sink_sess_write(w, s, &w->w_conf->sc_helo);
}

static void sink_act_ehlo(struct sink_worker *w, struct sink_sess *s,
			  const char *arg, size_t n)
{
	(void)arg;
	if (n == 0) {
		sink_sess_write(w, s, &sink_r_syntax);
		return;
	}
	sink_sess_reset_tx(s);
	sink_sess_write(w, s, &w->w_conf->sc_ehlo);
}

static void sink_act_mail(struct sink_worker *w, struct sink_sess *s,
			  const char *arg, size_t n)
{
	if (!sink_prefix(arg, n, "FROM:"))
		sink_sess_write(w, s, &sink_r_syntax);
	else if (s->ss_mail)
		sink_sess_write(w, s, &sink_r_nested);
	else {
		s->ss_mail = true;
		sink_sess_write(w, s, &sink_r_mail);
	}
}

/* RCPT: local part first, then the domain's rule, then the reply mix. */
static const struct sink_reply *sink_rcpt_decide(struct sink_worker *w,
						 struct sink_sess *s,
						 const char *addr, size_t n)
{
	const struct sink_conf *conf = w->w_conf;
	const struct sink_domain *sd = NULL;
	const char *at = memrchr(addr, '@', n);
	size_t llen = at != NULL ? (size_t)(at - addr) : n;

	if (llen == 8 && strncasecmp(addr, "tempfail", 8) == 0)
		return &sink_r_tempfail;
	if (llen == 8 && strncasecmp(addr, "permfail", 8) == 0)
		return &sink_r_permfail;
	if (at != NULL && conf->sc_ndomains > 0)
		sd = sink_domain_find(conf, at + 1, n - llen - 1);
	if (sd != NULL && sd->sd_rcpt.sr_code != 0)
		return &sd->sd_rcpt;
	if (conf->sc_rcpt_4xx + conf->sc_rcpt_5xx > 0) {
		unsigned r = sink_rand_bp(w);

		if (r < conf->sc_rcpt_4xx)
			return &sink_r_rcpt_4xx;
		if (r < conf->sc_rcpt_4xx + conf->sc_rcpt_5xx)
			return &sink_r_rcpt_5xx;
	}
	/* Accepted: the domain's rules shape the rest of the transaction. */
	if (sd != NULL) {
		if (sd->sd_latency_ms > s->ss_latency_ms)
			s->ss_latency_ms = sd->sd_latency_ms;
		if (sd->sd_data.sr_code != 0 && s->ss_data_rule == NULL)
			s->ss_data_rule = &sd->sd_data;
	}
	return &sink_r_rcpt;
}

static void sink_act_rcpt(struct sink_worker *w, struct sink_sess *s,
			  const char *arg, size_t n)
{
	const struct sink_reply *r;
	const char *a, *end;

	if (!sink_prefix(arg, n, "TO:")) {
		r = &sink_r_syntax;
		goto reply;
	}
	if (!s->ss_mail) {
		r = &sink_r_need_mail;
		goto reply;
	}
	a = arg + 3;
	end = arg + n;
	while (a < end && *a == ' ')
		a++;
	if (a < end && *a == '<') {
		const char *gt = memchr(a + 1, '>', (size_t)(end - a - 1));

		a++;

		if (gt == NULL) {
			r = &sink_r_bad_addr;
			goto reply;
		}
		end = gt;
	} else {
		const char *sp = memchr(a, ' ', (size_t)(end - a));

		if (sp != NULL)
			end = sp;
	}
	if (a == end) {
		r = &sink_r_bad_addr;
		goto reply;
	}
	r = sink_rcpt_decide(w, s, a, (size_t)(end - a));
	if (r->sr_code < 300)
		s->ss_nrcpt++;
reply:
	sink_count(w->w_ctr.ct_rcpt, r);
	sink_sess_write(w, s, r);
}

static void sink_act_data(struct sink_worker *w, struct sink_sess *s,
			  const char *arg, size_t n)
{
	(void)arg;
	if (n != 0)
		sink_sess_write(w, s, &sink_r_syntax);
	else if (!s->ss_mail)
		sink_sess_write(w, s, &sink_r_need_mail);
	else if (s->ss_nrcpt == 0)
		sink_sess_write(w, s, &sink_r_no_rcpt);
	else {
		sink_sess_write(w, s, &sink_r_354);
		s->ss_state = SS_DATA;
		s->ss_eod = 2;	/* the DATA line's CRLF starts the terminator */
	}
}

static void sink_act_rset(struct sink_worker *w, struct sink_sess *s,
			  const char *arg, size_t n)
{
	(void)arg;
	(void)n;
	sink_sess_reset_tx(s);
	sink_sess_write(w, s, &sink_r_ok);
}

static void sink_act_noop(struct sink_worker *w, struct sink_sess *s,
			  const char *arg, size_t n)
{
	(void)arg;
	(void)n;
	sink_sess_write(w, s, &sink_r_ok);
}

static void sink_act_quit(struct sink_worker *w, struct sink_sess *s,
			  const char *arg, size_t n)
{
	(void)arg;
	(void)n;
	sink_sess_write(w, s, &sink_r_quit);
	sink_sess_close(w, s);
}

static void sink_act_vrfy(struct sink_worker *w, struct sink_sess *s,
			  const char *arg, size_t n)
{
	(void)arg;
	(void)n;
	sink_sess_write(w, s, &sink_r_vrfy);
}

static void sink_act_help(struct sink_worker *w, struct sink_sess *s,
			  const char *arg, size_t n)
{
	(void)arg;
	(void)n;
	sink_sess_write(w, s, &sink_r_help);
}

#define SINK_VERB(a, b, c, d) \
	((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)

/* All verbs are four letters; a row per verb, the action takes the
 * argument with the separating space removed. */
static const struct sink_cmd {
	uint32_t sc_verb;
	sink_act_fn *sc_act;
} sink_cmds[] = {
	{ SINK_VERB('m', 'a', 'i', 'l'), sink_act_mail },
	{ SINK_VERB('r', 'c', 'p', 't'), sink_act_rcpt },
	{ SINK_VERB('d', 'a', 't', 'a'), sink_act_data },
	{ SINK_VERB('e', 'h', 'l', 'o'), sink_act_ehlo },
	{ SINK_VERB('h', 'e', 'l', 'o'), sink_act_helo },
	{ SINK_VERB('r', 's', 'e', 't'), sink_act_rset },
	{ SINK_VERB('n', 'o', 'o', 'p'), sink_act_noop },
	{ SINK_VERB('q', 'u', 'i', 't'), sink_act_quit },
	{ SINK_VERB('v', 'r', 'f', 'y'), sink_act_vrfy },
	{ SINK_VERB('h', 'e', 'l', 'p'), sink_act_help },
};

/* One command line, CRLF (or LF) removed. */
static void sink_sess_command(struct sink_worker *w, struct sink_sess *s,
			      const char *p, size_t n)
{
	const unsigned char *u = (const unsigned char *)p;
	uint32_t verb;

	if (n < 4 || (n > 4 && p[4] != ' ')) {
		sink_sess_write(w, s, &sink_r_unknown);
		return;
	}
	/* | 0x20 maps only letters onto letters: case-insensitive, exact. */
	verb = SINK_VERB(u[0] | 0x20, u[1] | 0x20, u[2] | 0x20, u[3] | 0x20);
	for (size_t i = 0; i < sizeof(sink_cmds) / sizeof(sink_cmds[0]); i++) {
		if (sink_cmds[i].sc_verb == verb) {
			size_t skip = n > 4 ? 5 : 4;

			sink_cmds[i].sc_act(w, s, p + skip, n - skip);
			return;
		}
	}
	sink_sess_write(w, s, &sink_r_unknown);
}

static void sink_sess_final(struct sink_worker *w, struct sink_sess *s,
			    const struct sink_reply *r)
{
	sink_count(w->w_ctr.ct_data, r);
	if (r->sr_code < 300)
		sink_stat_add(&w->w_ctr.ct_messages, 1);
	sink_sess_write(w, s, r);
}

/* The body ended: decide the final reply, hold it back if asked to. */
static void sink_sess_data_end(struct sink_worker *w, struct sink_sess *s)
{
	const struct sink_conf *conf = w->w_conf;
	const struct sink_reply *r = s->ss_data_rule;
	unsigned ms = conf->sc_latency_ms;
	struct io_uring_sqe *sqe;

	if (r == NULL && conf->sc_data_4xx + conf->sc_data_5xx > 0) {
		unsigned x = sink_rand_bp(w);

		if (x < conf->sc_data_4xx)
			r = &sink_r_data_4xx;
		else if (x < conf->sc_data_4xx + conf->sc_data_5xx)
			r = &sink_r_data_5xx;
	}
	if (r == NULL)
		r = &sink_r_queued;
	if (s->ss_latency_ms > ms)
		ms = s->ss_latency_ms;
	sink_sess_reset_tx(s);
	if (ms == 0) {
		s->ss_state = SS_CMD;
		sink_sess_final(w, s, r);
		return;
	}
	s->ss_state = SS_DELAY;
	s->ss_delayed = r;
	s->ss_ts.tv_sec = ms / 1000;
	s->ss_ts.tv_nsec = (long long)(ms % 1000) * 1000000;
	sqe = sink_sqe(w);
	io_uring_prep_timeout(sqe, &s->ss_ts, 0, 0);
	io_uring_sqe_set_data64(sqe, SINK_UD(s, SINK_OP_TIMER));
	s->ss_flags |= SS_F_TIMER;
	s->ss_inflight++;
}

static const char sink_eod[5] = { '\r', '\n', '.', '\r', '\n' };

/*
 * Scan body bytes for <CRLF>.<CRLF> without copying them; ss_eod carries
 * how much of it ended the previous receive. Returns the bytes that
 * belong to the body (terminator included) and sets *done_r.
 */
static size_t sink_sess_scan_body(struct sink_sess *s, const char *p, size_t len,
				  bool *done_r)
{
	unsigned m = s->ss_eod;
	size_t i = 0;
	const char *hit;

	*done_r = false;
	while (m > 0 && i < len) {
		char ch = p[i++];

		if (ch == sink_eod[m]) {
			if (++m == sizeof(sink_eod)) {
				*done_r = true;
				return i;
			}
		} else {
			m = ch == '\r';
		}
	}
	if (m == 0 && i < len) {
		hit = memmem(p + i, len - i, sink_eod, sizeof(sink_eod));
		if (hit != NULL) {
			*done_r = true;
			return (size_t)(hit - p) + sizeof(sink_eod);
		}
		/* The longest tail that could start the terminator. */
		for (size_t k = len - i < 4 ? len - i : 4; k > 0; k--) {
			if (memcmp(p + len - k, sink_eod, k) == 0) {
				m = (unsigned)k;
				break;
			}
		}
	}
	s->ss_eod = (uint8_t)m;
	return len;
}

/* Finish a line that straddled receives: p[0..n) ends with '\n'. */
static void sink_sess_line_tail(struct sink_worker *w, struct sink_sess *s,
				const char *p, size_t n)
{
	size_t len;

	if (s->ss_flags & SS_F_SKIP || s->ss_linelen + n > SINK_LINE_MAX) {
		s->ss_flags &= ~SS_F_SKIP;
		s->ss_linelen = 0;
		sink_sess_write(w, s, &sink_r_too_long);
		return;
	}
	memcpy(s->ss_line + s->ss_linelen, p, n);
	len = s->ss_linelen + n - 1;
	s->ss_linelen = 0;
	if (len > 0 && s->ss_line[len - 1] == '\r')
		len--;
	sink_sess_command(w, s, s->ss_line, len);
}

/* Keep the start of a line that the next receive will finish. */
static void sink_sess_line_head(struct sink_worker *w, struct sink_sess *s,
				const char *p, size_t n)
{
	if (s->ss_flags & SS_F_SKIP)
		return;
	if (s->ss_linelen + n > SINK_LINE_MAX) {
		s->ss_flags |= SS_F_SKIP;
		s->ss_linelen = 0;
		return;
	}
	if (s->ss_line == NULL) {
		s->ss_line = malloc(SINK_LINE_MAX);
		if (s->ss_line == NULL) {
			sink_sess_drop(w, s);
			return;
		}
	}
	memcpy(s->ss_line + s->ss_linelen, p, n);
	s->ss_linelen += (uint32_t)n;
}

/*
 * Take input: every complete command and any body bytes. Returns the
 * bytes consumed, less than len only when the session stopped taking
 * input (a held DATA reply, or QUIT).
 */
static size_t sink_sess_input(struct sink_worker *w, struct sink_sess *s,
			      const char *p, size_t len)
{
	size_t off = 0;

	while (off < len) {
		const char *nl;
		size_t n;

		if (s->ss_state == SS_DATA) {
			bool done;

			n = sink_sess_scan_body(s, p + off, len - off, &done);
			sink_stat_add(&w->w_ctr.ct_bytes, n);
			off += n;
			if (done)
				sink_sess_data_end(w, s);
			continue;
		}
		if (s->ss_state != SS_CMD)
			break;
		nl = memchr(p + off, '\n', len - off);
		if (nl == NULL) {
			sink_sess_line_head(w, s, p + off, len - off);
			return len;
		}
		n = (size_t)(nl - (p + off)) + 1;
		if (s->ss_linelen > 0 || (s->ss_flags & SS_F_SKIP)) {
			sink_sess_line_tail(w, s, p + off, n);
		} else {
			size_t l = n - 1;

			if (l > 0 && p[off + l - 1] == '\r')
				l--;
			if (n > SINK_LINE_MAX)
				sink_sess_write(w, s, &sink_r_too_long);
			else
				sink_sess_command(w, s, p + off, l);
		}
		off += n;
	}
	return off;
}

/* Hold input that arrives while the final DATA reply waits. */
static void sink_sess_hold(struct sink_worker *w, struct sink_sess *s,
			   const char *p, size_t n)
{
	if (s->ss_plen + n > s->ss_pcap) {
		uint32_t cap = s->ss_pcap ? s->ss_pcap : 1024;
		char *np;

		while (cap < s->ss_plen + n)
			cap *= 2;
		if (cap > SINK_PEND_MAX || (np = realloc(s->ss_pend, cap)) == NULL) {
			sink_sess_drop(w, s);
			return;
		}
		s->ss_pend = np;
		s->ss_pcap = cap;
	}
	memcpy(s->ss_pend + s->ss_plen, p, n);
	s->ss_plen += (uint32_t)n;
}

static void sink_sess_recv(struct sink_worker *w, struct sink_sess *s,
			   const char *p, size_t len)
{
	size_t n;

	sink_sess_touch(w, s);
	if (s->ss_state == SS_QUIT)
		return;
	if (s->ss_state == SS_DELAY || s->ss_plen > 0) {
		sink_sess_hold(w, s, p, len);
		return;
	}
	n = sink_sess_input(w, s, p, len);
	if (n < len && s->ss_state == SS_DELAY)
		sink_sess_hold(w, s, p + n, len - n);
}

static void sink_on_timer(struct sink_worker *w, struct sink_sess *s, int res)
{
	size_t n;

	s->ss_flags &= ~SS_F_TIMER;
	s->ss_inflight--;
	if (res == -ECANCELED || (s->ss_flags & SS_F_CLOSING)) {
		sink_sess_maybe_free(w, s);
		return;
	}
	sink_sess_touch(w, s);
	s->ss_state = SS_CMD;
	sink_sess_final(w, s, s->ss_delayed);
	s->ss_delayed = NULL;
	if (s->ss_plen == 0)
		return;
	n = sink_sess_input(w, s, s->ss_pend, s->ss_plen);
	if (n < s->ss_plen && s->ss_state == SS_DELAY)
		memmove(s->ss_pend, s->ss_pend + n, s->ss_plen - n);
	else
		n = s->ss_plen;
	s->ss_plen -= (uint32_t)n;
}

static void sink_on_recv(struct sink_worker *w, struct sink_sess *s,
			 const struct io_uring_cqe *cqe)
{
	bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;

	if (!more) {
		s->ss_flags &= ~SS_F_RECV;
		s->ss_inflight--;
	}
	if (cqe->res > 0) {
		unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;

		if (!(s->ss_flags & SS_F_CLOSING))
			sink_sess_recv(w, s, w->w_bufmem + (size_t)bid * SINK_BUF_SIZE,
				       (size_t)cqe->res);
		sink_buf_recycle(w, bid);
		if (!more && !(s->ss_flags & SS_F_SHUT))
			sink_sess_arm_recv(w, s);
	} else if (cqe->res == -ENOBUFS) {
		/* Normal under load: re-armed once buffers come back. */
		if (!(s->ss_flags & (SS_F_SHUT | SS_F_STARVED))) {
			s->ss_flags |= SS_F_STARVED;
			s->ss_next_starved = w->w_starved;
			w->w_starved = s;
		}
	} else if (!more) {
		sink_sess_drop(w, s);	/* the peer closed, or an error */
	}
	sink_sess_maybe_free(w, s);
}

/* ---- the worker ---- */

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

static void *sink_worker_main(void *arg)
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

/* ---- counters out ---- */

struct sink_snap {
	uint64_t sn_sessions, sn_rejected, sn_messages, sn_bytes;
	uint64_t sn_rcpt[3], sn_data[3];
	uint64_t sn_cur, sn_peak;
};

static void sink_snap_take(struct sink_worker *ws, unsigned n,
			   struct sink_shared *sh, struct sink_snap *sn)
{
	memset(sn, 0, sizeof(*sn));
	for (unsigned i = 0; i < n; i++) {
		struct sink_counters *c = &ws[i].w_ctr;

		sn->sn_sessions += sink_stat_get(&c->ct_sessions);
		sn->sn_rejected += sink_stat_get(&c->ct_rejected);
		sn->sn_messages += sink_stat_get(&c->ct_messages);
		sn->sn_bytes += sink_stat_get(&c->ct_bytes);
		for (int k = 0; k < 3; k++) {
			sn->sn_rcpt[k] += sink_stat_get(&c->ct_rcpt[k]);
			sn->sn_data[k] += sink_stat_get(&c->ct_data[k]);
		}
	}
	sn->sn_cur = atomic_load_explicit(&sh->sh_cur, memory_order_relaxed);
	sn->sn_peak = atomic_load_explicit(&sh->sh_peak, memory_order_relaxed);
}

/* One line: "key=value ..." for people, or a JSON object for scripts. */
static void sink_snap_print(FILE *f, const struct sink_snap *sn, bool json)
{
	const struct { const char *k; uint64_t v; } kv[] = {
		{ "sessions", sn->sn_sessions }, { "rejected", sn->sn_rejected },
		{ "messages", sn->sn_messages }, { "bytes", sn->sn_bytes },
		{ "rcpt_2xx", sn->sn_rcpt[0] }, { "rcpt_4xx", sn->sn_rcpt[1] },
		{ "rcpt_5xx", sn->sn_rcpt[2] }, { "data_2xx", sn->sn_data[0] },
		{ "data_4xx", sn->sn_data[1] }, { "data_5xx", sn->sn_data[2] },
		{ "cur_sessions", sn->sn_cur }, { "peak_sessions", sn->sn_peak },
	};
	size_t n = sizeof(kv) / sizeof(kv[0]);

	if (json)
		fputc('{', f);
	for (size_t i = 0; i < n; i++) {
		if (json)
			fprintf(f, "\"%s\": %llu%s", kv[i].k, (unsigned long long)kv[i].v,
				i + 1 < n ? ", " : "}\n");
		else
			fprintf(f, "%s=%llu%s", kv[i].k, (unsigned long long)kv[i].v,
				i + 1 < n ? " " : "\n");
	}
}

/* Write the counters as JSON to path.tmp.PID, then rename over path. */
static void sink_snap_write(const char *path, const struct sink_snap *sn)
{
	char tmp[PATH_MAX];
	FILE *f;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >=
	    sizeof(tmp))
		return;
	f = fopen(tmp, "w");
	if (f == NULL) {
		fprintf(stderr, "smtp-sink: %s: %s\n", tmp, strerror(errno));
		return;
	}
	sink_snap_print(f, sn, true);
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		fprintf(stderr, "smtp-sink: %s: %s\n", path, strerror(errno));
		unlink(tmp);
	}
}

/* ---- options ---- */

static unsigned sink_parse_uint(const char *s, unsigned max, const char *what)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v > max || *s == '-')
		sink_fatal("bad %s: '%s'", what, s);
	return (unsigned)v;
}

/* "2.5" -> 250 basis points. */
static unsigned sink_parse_pct(const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= 0.0 && v <= 100.0))
		sink_fatal("bad percentage: '%s'", s);
	return (unsigned)(v * 100.0 + 0.5);
}

/* -r "rcpt:4xx=5,rcpt:5xx=2,data:4xx=1,data:5xx=1" */
static void sink_parse_mix(struct sink_conf *conf, const char *spec)
{
	char *copy = strdup(spec), *save = NULL;

	if (copy == NULL)
		sink_fatal("out of memory");
	for (char *it = strtok_r(copy, ",", &save); it != NULL;
	     it = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(it, '=');
		unsigned *dst;

		if (eq == NULL)
			sink_fatal("bad -r entry '%s' (want rcpt:4xx=PCT)", it);
		*eq = '\0';
		if (strcasecmp(it, "rcpt:4xx") == 0)
			dst = &conf->sc_rcpt_4xx;
		else if (strcasecmp(it, "rcpt:5xx") == 0)
			dst = &conf->sc_rcpt_5xx;
		else if (strcasecmp(it, "data:4xx") == 0)
			dst = &conf->sc_data_4xx;
		else if (strcasecmp(it, "data:5xx") == 0)
			dst = &conf->sc_data_5xx;
		else
			sink_fatal("bad -r key '%s' (rcpt:4xx rcpt:5xx data:4xx data:5xx)", it);
		*dst = sink_parse_pct(eq + 1);
	}
	free(copy);
	if (conf->sc_rcpt_4xx + conf->sc_rcpt_5xx > SINK_BP_ONE ||
	    conf->sc_data_4xx + conf->sc_data_5xx > SINK_BP_ONE)
		sink_fatal("-r: percentages for one stage add up to more than 100");
}

/* An enhanced status code and text for a configured reply code. */
static const char *sink_code_text(unsigned code, bool data)
{
	static const struct { unsigned code; const char *rcpt, *data; } tab[] = {
		{ 421, "4.3.2 service not available", "4.3.2 service not available" },
		{ 450, "4.2.1 mailbox temporarily unavailable", "4.2.0 try again later" },
		{ 451, "4.3.0 temporary failure", "4.3.0 temporary failure" },
		{ 452, "4.2.2 mailbox full", "4.3.1 insufficient system storage" },
		{ 550, "5.1.1 no such user", "5.7.1 message rejected" },
		{ 551, "5.1.6 user not local", "5.7.1 message rejected" },
		{ 552, "5.2.2 mailbox full", "5.3.4 message too big" },
		{ 553, "5.1.3 bad address syntax", "5.7.1 message rejected" },
		{ 554, "5.7.1 recipient rejected", "5.6.0 message rejected" },
	};

	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (tab[i].code == code)
			return data ? tab[i].data : tab[i].rcpt;
	return code < 500 ? "4.0.0 temporary failure" : "5.0.0 rejected";
}

static void sink_reply_make(struct sink_reply *r, unsigned code, bool data)
{
	char buf[96];
	int n = snprintf(buf, sizeof(buf), "%u %s\r\n", code, sink_code_text(code, data));
	char *text = strdup(buf);

	if (text == NULL)
		sink_fatal("out of memory");
	free((char *)r->sr_text);
	r->sr_text = text;
	r->sr_len = (uint16_t)n;
	r->sr_code = (uint16_t)code;
}

/* -d "slow.test=latency:200,bad.test=rcpt:550,busy.test=rcpt:450";
 * actions for one domain may also be joined with '+'. */
static void sink_parse_domains(struct sink_conf *conf, const char *spec)
{
	char *copy = strdup(spec), *save = NULL;

	if (copy == NULL)
		sink_fatal("out of memory");
	for (char *it = strtok_r(copy, ",", &save); it != NULL;
	     it = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(it, '='), *asave = NULL;
		struct sink_domain *sd;

		if (eq == NULL || eq == it)
			sink_fatal("bad -d entry '%s' (want domain=action:value)", it);
		*eq = '\0';
		sd = NULL;
		for (unsigned i = 0; i < conf->sc_ndomains; i++)
			if (strcasecmp(conf->sc_domains[i].sd_name, it) == 0)
				sd = &conf->sc_domains[i];
		if (sd == NULL) {
			struct sink_domain *nd = realloc(conf->sc_domains,
					(conf->sc_ndomains + 1) * sizeof(*nd));

			if (nd == NULL)
				sink_fatal("out of memory");
			conf->sc_domains = nd;
			sd = &nd[conf->sc_ndomains++];
			memset(sd, 0, sizeof(*sd));
			sd->sd_name = strdup(it);
			if (sd->sd_name == NULL)
				sink_fatal("out of memory");
			sd->sd_len = strlen(it);
		}
		for (char *a = strtok_r(eq + 1, "+", &asave); a != NULL;
		     a = strtok_r(NULL, "+", &asave)) {
			char *colon = strchr(a, ':');

			if (colon == NULL)
				sink_fatal("bad -d action '%s'", a);
			*colon++ = '\0';
			if (strcasecmp(a, "latency") == 0) {
				sd->sd_latency_ms = sink_parse_uint(colon, 3600000, "latency");
			} else if (strcasecmp(a, "rcpt") == 0 || strcasecmp(a, "data") == 0) {
				unsigned code = sink_parse_uint(colon, 599, "reply code");

				if (code < 400)
					sink_fatal("-d: reply code %u is not 4xx or 5xx", code);
				if (strcasecmp(a, "rcpt") == 0)
					sink_reply_make(&sd->sd_rcpt, code, false);
				else
					sink_reply_make(&sd->sd_data, code, true);
			} else {
				sink_fatal("bad -d action '%s' (latency, rcpt, data)", a);
			}
		}
	}
	free(copy);
}

static void sink_conf_free(struct sink_conf *conf)
{
	for (unsigned i = 0; i < conf->sc_ndomains; i++) {
		free(conf->sc_domains[i].sd_name);
		free((char *)conf->sc_domains[i].sd_rcpt.sr_text);
		free((char *)conf->sc_domains[i].sd_data.sr_text);
	}
	free(conf->sc_domains);
	free((char *)conf->sc_greeting.sr_text);
	free((char *)conf->sc_ehlo.sr_text);
	free((char *)conf->sc_helo.sr_text);
	memset(conf, 0, sizeof(*conf));
}

static void sink_reply_printf(struct sink_reply *r, unsigned code, const char *fmt,
			      const char *host)
{
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), fmt, host);

	if (n < 0 || (size_t)n >= sizeof(buf) || (r->sr_text = strdup(buf)) == NULL)
		sink_fatal("out of memory");
	r->sr_len = (uint16_t)n;
	r->sr_code = (uint16_t)code;
}

static void sink_conf_texts(struct sink_conf *conf)
{
	char host[256];

	if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
		strcpy(host, "smtp-sink");
	host[sizeof(host) - 1] = '\0';
	sink_reply_printf(&conf->sc_greeting, 220, "220 %s ESMTP smtp-sink\r\n", host);
	sink_reply_printf(&conf->sc_helo, 250, "250 %s\r\n", host);
	sink_reply_printf(&conf->sc_ehlo, 250,
			  "250-%s\r\n250-PIPELINING\r\n250-SIZE 0\r\n250-8BITMIME\r\n"
			  "250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n", host);
}

static void sink_usage(void) __attribute__((noreturn));

static void sink_usage(void)
{
	fputs("usage: smtp-sink [options] HOST:PORT\n"
	      "  -w N     worker threads, each with its own ring and socket (1)\n"
	      "  -c N     cap on concurrent sessions; excess get 421 (0: none)\n"
	      "  -L MS    latency before each final DATA reply\n"
	      "  -r SPEC  reply mix, e.g. rcpt:4xx=5,rcpt:5xx=2,data:4xx=1,data:5xx=1\n"
	      "  -d SPEC  per-domain rules, e.g. slow.test=latency:200,bad.test=rcpt:550,\n"
	      "           busy.test=rcpt:450+data:451 (latency, rcpt:CODE, data:CODE)\n"
	      "  -s FILE  write counters (JSON) to FILE every second and at exit\n"
	      "  -t SEC   idle timeout (300; 0: none)\n"
	      "  -q       quiet\n"
	      "Recipients tempfail@... get 450 4.2.1, permfail@... get 550 5.1.1.\n"
	      "SIGUSR1 prints the counters; SIGTERM/SIGINT print them and exit.\n",
	      stderr);
	exit(2);
}

/* ---- listening ---- */

static void sink_parse_addr(const char *arg, struct sockaddr_storage *ss,
			    socklen_t *len_r)
{
	char *copy = strdup(arg), *host, *port;
	struct addrinfo hints, *res;
	int ret;

	if (copy == NULL)
		sink_fatal("out of memory");
	if (copy[0] == '[') {
		char *rb = strchr(copy, ']');

		if (rb == NULL || rb[1] != ':')
			sink_fatal("bad address '%s'", arg);
		*rb = '\0';
		host = copy + 1;
		port = rb + 2;
	} else {
		char *colon = strrchr(copy, ':');

		if (colon == NULL)
			sink_fatal("bad address '%s' (want HOST:PORT)", arg);
		*colon = '\0';
		host = copy;
		port = colon + 1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	ret = getaddrinfo(host[0] != '\0' ? host : NULL, port, &hints, &res);
	if (ret != 0)
		sink_fatal("%s: %s", arg, gai_strerror(ret));
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len_r = res->ai_addrlen;
	freeaddrinfo(res);
	free(copy);
}

static int sink_listen(struct sockaddr_storage *ss, socklen_t len)
{
	int one = 1;
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		sink_fatal("socket: %s", strerror(errno));
	/* TCP_NODELAY is inherited by accepted sockets: no call per session. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
		sink_fatal("setsockopt: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)ss, len) != 0)
		sink_fatal("bind: %s", strerror(errno));
	if (listen(fd, 4096) != 0)
		sink_fatal("listen: %s", strerror(errno));
	/* Port 0: the kernel chose one; the other workers bind the same. */
	if (getsockname(fd, (struct sockaddr *)ss, &len) != 0)
		sink_fatal("getsockname: %s", strerror(errno));
	return fd;
}

static void sink_addr_string(const struct sockaddr_storage *ss, socklen_t len,
			     char *buf, size_t size)
{
	char host[NI_MAXHOST], port[NI_MAXSERV];

	if (getnameinfo((const struct sockaddr *)ss, len, host, sizeof(host), port,
			sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(buf, size, "?");
		return;
	}
	snprintf(buf, size, ss->ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}

/* ---- main: signals, counters file, worker start and stop ---- */

int main(int argc, char **argv)
{
	struct sink_conf conf;
	struct sink_shared sh;
	struct sink_worker *ws;
	struct sockaddr_storage ss;
	struct sink_snap sn;
	struct timespec next, now;
	socklen_t sslen;
	sigset_t sigs;
	char where[NI_MAXHOST + NI_MAXSERV + 4];
	int opt, failed;

	memset(&conf, 0, sizeof(conf));
	conf.sc_workers = 1;
	conf.sc_idle_s = 300;
	while ((opt = getopt(argc, argv, "w:c:L:r:d:s:t:qh")) != -1) {
		switch (opt) {
		case 'w':
			conf.sc_workers = sink_parse_uint(optarg, SINK_MAX_WORKERS, "-w");
			if (conf.sc_workers == 0)
				sink_fatal("-w must be at least 1");
			break;
		case 'c':
			conf.sc_max_sessions = sink_parse_uint(optarg, 10000000, "-c");
			break;
		case 'L':
			conf.sc_latency_ms = sink_parse_uint(optarg, 3600000, "-L");
			break;
		case 'r':
			sink_parse_mix(&conf, optarg);
			break;
		case 'd':
			sink_parse_domains(&conf, optarg);
			break;
		case 's':
			conf.sc_stats_path = optarg;
			break;
		case 't':
			conf.sc_idle_s = sink_parse_uint(optarg, 86400, "-t");
			break;
		case 'q':
			conf.sc_quiet = true;
			break;
		default:
			sink_usage();
		}
	}
	if (optind + 1 != argc)
		sink_usage();
	sink_conf_texts(&conf);
	sink_parse_addr(argv[optind], &ss, &sslen);

	/* Workers inherit the mask; only main takes these signals. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	memset(&sh, 0, sizeof(sh));
	sem_init(&sh.sh_ready, 0, 0);
	ws = aligned_alloc(64, conf.sc_workers * sizeof(*ws));
	if (ws == NULL)
		sink_fatal("out of memory");
	memset(ws, 0, conf.sc_workers * sizeof(*ws));
	for (unsigned i = 0; i < conf.sc_workers; i++) {
		struct sink_worker *w = &ws[i];

		w->w_conf = &conf;
		w->w_shared = &sh;
		w->w_index = i;
		w->w_lfd = sink_listen(&ss, sslen);
		w->w_wake_fd = eventfd(0, EFD_CLOEXEC);
		if (w->w_wake_fd < 0)
			sink_fatal("eventfd: %s", strerror(errno));
	}
	for (unsigned i = 0; i < conf.sc_workers; i++) {
		if (pthread_create(&ws[i].w_thread, NULL, sink_worker_main, &ws[i]) != 0)
			sink_fatal("pthread_create failed");
	}
	for (unsigned i = 0; i < conf.sc_workers; i++)
		sem_wait(&sh.sh_ready);
	for (unsigned i = 0; i < conf.sc_workers; i++)
		if (ws[i].w_init_err < 0)
			sink_fatal("io_uring setup: %s", strerror(-ws[i].w_init_err));
	sink_addr_string(&ss, sslen, where, sizeof(where));
	if (!conf.sc_quiet)
		fprintf(stderr, "smtp-sink: listening on %s, %u worker%s\n", where,
			conf.sc_workers, conf.sc_workers == 1 ? "" : "s");

	clock_gettime(CLOCK_MONOTONIC, &next);
	next.tv_sec++;
	for (;;) {
		struct timespec wait;
		int sig;

		clock_gettime(CLOCK_MONOTONIC, &now);
		wait.tv_sec = next.tv_sec - now.tv_sec;
		wait.tv_nsec = next.tv_nsec - now.tv_nsec;
		if (wait.tv_nsec < 0) {
			wait.tv_sec--;
			wait.tv_nsec += 1000000000L;
		}
		if (wait.tv_sec < 0)
			wait.tv_sec = wait.tv_nsec = 0;
		sig = sigtimedwait(&sigs, NULL, &wait);
		if (sig == SIGTERM || sig == SIGINT)
			break;
		if (sig == SIGUSR1) {
			sink_snap_take(ws, conf.sc_workers, &sh, &sn);
			sink_snap_print(stdout, &sn, false);
			fflush(stdout);
			continue;
		}
		if (sig < 0 && errno != EAGAIN)
			continue;	/* EINTR */
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec < next.tv_sec ||
		    (now.tv_sec == next.tv_sec && now.tv_nsec < next.tv_nsec))
			continue;
		next.tv_sec++;
		if (conf.sc_stats_path != NULL) {
			sink_snap_take(ws, conf.sc_workers, &sh, &sn);
			sink_snap_write(conf.sc_stats_path, &sn);
		}
	}

	for (unsigned i = 0; i < conf.sc_workers; i++) {
		uint64_t one = 1;

		if (write(ws[i].w_wake_fd, &one, sizeof(one)) != sizeof(one))
			sink_fatal("eventfd write: %s", strerror(errno));
	}
	for (unsigned i = 0; i < conf.sc_workers; i++) {
		pthread_join(ws[i].w_thread, NULL);
		close(ws[i].w_lfd);
		close(ws[i].w_wake_fd);
	}
	sink_snap_take(ws, conf.sc_workers, &sh, &sn);
	if (conf.sc_stats_path != NULL)
		sink_snap_write(conf.sc_stats_path, &sn);
	if (!conf.sc_quiet)
		sink_snap_print(stdout, &sn, false);
	fflush(stdout);
	failed = atomic_load(&sh.sh_failed);
	free(ws);
	sem_destroy(&sh.sh_ready);
	sink_conf_free(&conf);
	return failed ? 1 : 0;
}
