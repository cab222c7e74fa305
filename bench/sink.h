/*
 * sink.h: what the files of smtp-sink share (bench/README.md).
 *
 * smtp-sink is an io_uring SMTP sink for ringmta's benchmarks. It accepts
 * mail and throws it away, and, unlike a plain sink, can push back: a cap
 * on concurrent sessions, added latency before the final DATA reply, a
 * random mix of 4xx/5xx replies, per-domain rules and fixed local parts
 * (tempfail@, permfail@).
 *
 *   sink_main.c     options, listening sockets, signals, the counters file
 *   sink_worker.c   a worker thread: its ring, buffer ring, accept, tick
 *   sink_session.c  session life cycle and output
 *   sink_smtp.c     the SMTP commands, the body scan, the canned replies
 *   sink_rules.c    reply mix and per-domain rules: parsing and deciding
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
 *   gcc -std=gnu11 -O2 bench/sink_*.c -luring -lpthread -o smtp-sink
 */
#ifndef SMTP_SINK_H
#define SMTP_SINK_H

#include <liburing.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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

/* The canned replies (sink_smtp.c). */
extern const struct sink_reply sink_r_ok;
extern const struct sink_reply sink_r_mail;
extern const struct sink_reply sink_r_rcpt;
extern const struct sink_reply sink_r_354;
extern const struct sink_reply sink_r_queued;
extern const struct sink_reply sink_r_quit;
extern const struct sink_reply sink_r_vrfy;
extern const struct sink_reply sink_r_help;
extern const struct sink_reply sink_r_rcpt_4xx;
extern const struct sink_reply sink_r_rcpt_5xx;
extern const struct sink_reply sink_r_data_4xx;
extern const struct sink_reply sink_r_data_5xx;
extern const struct sink_reply sink_r_data_421;
extern const struct sink_reply sink_r_tempfail;
extern const struct sink_reply sink_r_permfail;
extern const struct sink_reply sink_r_nested;
extern const struct sink_reply sink_r_need_mail;
extern const struct sink_reply sink_r_no_rcpt;
extern const struct sink_reply sink_r_syntax;
extern const struct sink_reply sink_r_bad_addr;
extern const struct sink_reply sink_r_unknown;
extern const struct sink_reply sink_r_too_long;
extern const struct sink_reply sink_r_timeout;
extern const struct sink_reply sink_r_busy;

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
	unsigned sc_data_421;		/* 421 4.7.28 and close, after the data */
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
	sink_stat_t ct_mail;		/* MAIL accepted: transactions started */
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

/* sink_main.c */
void sink_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* sink_worker.c */
struct io_uring_sqe *sink_sqe(struct sink_worker *w);
void sink_buf_recycle(struct sink_worker *w, unsigned bid);
/* The thread's body: arg is its struct sink_worker. */
void *sink_worker_main(void *arg);

/* sink_session.c */
void sink_sess_arm_recv(struct sink_worker *w, struct sink_sess *s);
void sink_sess_maybe_free(struct sink_worker *w, struct sink_sess *s);
void sink_sess_close(struct sink_worker *w, struct sink_sess *s);
void sink_sess_drop(struct sink_worker *w, struct sink_sess *s);
void sink_sess_touch(struct sink_worker *w, struct sink_sess *s);
void sink_sess_free(struct sink_worker *w, struct sink_sess *s);
struct sink_sess *sink_sess_new(struct sink_worker *w, int fd);
/* Queue a reply; it goes out with the batch's flush. */
void sink_sess_write(struct sink_worker *w, struct sink_sess *s, const struct sink_reply *r);
void sink_sess_flush(struct sink_worker *w, struct sink_sess *s);
void sink_on_send(struct sink_worker *w, struct sink_sess *s, int res);

/* sink_smtp.c */
void sink_on_recv(struct sink_worker *w, struct sink_sess *s, const struct io_uring_cqe *cqe);
void sink_on_timer(struct sink_worker *w, struct sink_sess *s, int res);

/* sink_rules.c */
unsigned sink_rand_bp(struct sink_worker *w);
/* The reply to an accepted-syntax RCPT for addr; may set the transaction's
 * latency and final DATA reply. Returns static or configuration text. */
const struct sink_reply *sink_rcpt_decide(struct sink_worker *w, struct sink_sess *s,
					  const char *addr, size_t n);
unsigned sink_parse_uint(const char *s, unsigned max, const char *what);
void sink_parse_mix(struct sink_conf *conf, const char *spec);
void sink_parse_domains(struct sink_conf *conf, const char *spec);
void sink_conf_texts(struct sink_conf *conf);
void sink_conf_free(struct sink_conf *conf);

#endif
