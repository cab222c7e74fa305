/*
 * load.h: what the files of smtp-load share (bench/README.md).
 *
 * smtp-load is an SMTP load generator for ringmta's benchmarks: one thread,
 * one io_uring. Each session is a small state machine driven by the replies
 * it reads: it connects, reads the greeting, sends EHLO (with -T: STARTTLS,
 * the TLS handshake and EHLO again), then sends messages (lock-step, or with
 * -P as RFC 2920 groups), reusing the connection for -m messages, and ends
 * with QUIT. With -I it idles after EHLO; with -S it stops after the
 * handshake, to time handshakes alone.
 *
 *   load_main.c     options, setup, main
 *   load_text.c     the -z size mix, the -D domain mix, message and command text
 *   load_ring.c     the ring: submissions, connect and close, tick, run loop
 *   load_session.c  the SMTP client state machine
 *   load_tls.c      STARTTLS: BoringSSL over memory BIOs
 *   load_report.c   latency histograms, the error table, the summary
 *
 * Ownership: everything is allocated before the first connect and lives
 * until exit, except a TLS connection's SSL object (load_tls.c). Messages
 * and the shared command text are read-only once the run starts. A session's
 * receive buffer, Message-ID line, iovecs, command text and TLS buffers are
 * never touched while the kernel holds an SQE on them (one receive and one
 * send in flight per session). A socket is closed only once no operation on
 * it is in flight, so a completion always belongs to the session's current
 * connection.
 */
#ifndef SMTP_LOAD_H
#define SMTP_LOAD_H

#include <liburing.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define LOAD_MAX_SESSIONS	60000u
#define LOAD_MAX_RCPTS		1000u
#define LOAD_MAX_SIZES		32u	/* entries of -z */
#define LOAD_MAX_DOMAINS	64u	/* entries of -D */
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
#define LOAD_F_STARTTLS		0x20u	/* the server offers STARTTLS */
#define LOAD_F_TLS		0x40u	/* bytes go through TLS from now on */

enum load_state {
	LOAD_S_FREE = 0,	/* no connection */
	LOAD_S_CONNECT,
	LOAD_S_GREET,
	LOAD_S_EHLO,
	LOAD_S_STARTTLS,	/* waiting for the reply to STARTTLS */
	LOAD_S_HANDSHAKE,	/* TLS handshake under way */
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
	LOAD_SEND_STARTTLS,
	LOAD_SEND_MAIL,		/* a new transaction, lock-step */
	LOAD_SEND_RCPT,
	LOAD_SEND_DATA,
	LOAD_SEND_GROUP,	/* a new transaction: MAIL, RCPT.., DATA in one write */
	LOAD_SEND_BODY,		/* message "." */
	LOAD_SEND_BODY_GROUP,	/* message "." MAIL RCPT.. DATA */
	LOAD_SEND_BODY_QUIT,	/* message "." QUIT */
	LOAD_SEND_QUIT,
};

struct load_opts {
	const char *lo_server;
	const char *lo_helo;
	const char *lo_sizes;		/* -z as given: SIZE or SIZE:WEIGHT,... */
	const char *lo_domains;		/* -D as given: DOMAIN[:WEIGHT],... */
	const char *lo_from;		/* -F: the sender's domain (From:, MAIL FROM) */
	unsigned lo_sessions;		/* -c */
	uint64_t lo_messages;		/* -n; 0 = no count limit */
	unsigned lo_duration;		/* -d seconds; 0 = no time limit */
	unsigned lo_rcpts;		/* -r */
	unsigned lo_rdomains;		/* -R: d0.test .. dN-1.test in turn; 0 = -D */
	unsigned lo_per_conn;		/* -m; 0 = unlimited */
	unsigned lo_timeout;		/* -t seconds without progress */
	unsigned lo_src_addrs;		/* -b: spread over 127.0.0.1..N */
	bool lo_pipelining;		/* -P */
	bool lo_quiet;			/* -q */
	bool lo_json;			/* -j */
	bool lo_idle;			/* -I */
	bool lo_tls;			/* -T, and -S */
	bool lo_hs_only;		/* -S: connect, STARTTLS, handshake, QUIT */
};

/* One entry of -z: a message of this size, built before the run. */
struct load_size {
	size_t lz_size;			/* requested octets, headers included */
	unsigned lz_cum;		/* cumulative weight, for picking */
	char *lz_mail;			/* "MAIL FROM:<...> SIZE=n\r\n" */
	size_t lz_mail_len;
	char *lz_msg;			/* headers after Message-ID, and the body */
	size_t lz_msg_len;
};

/* One entry of -D. */
struct load_domain {
	const char *ld_name;		/* points into a copy of -D, lives until exit */
	size_t ld_len;
	unsigned ld_cum;		/* cumulative weight */
};

struct load_tls;			/* load_tls.c: one per session with -T */

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
	uint8_t ls_size;		/* index into l_sizes: the transaction in ls_cmd */
	uint8_t ls_body;		/* index into l_sizes: the message whose dot is out */
	uint16_t ls_rxlen;
	uint16_t ls_rcpt;		/* replies seen in this step */
	uint16_t ls_rcpt_ok;
	uint32_t ls_msgs;		/* transactions begun on this connection */
	uint32_t ls_cmd_len;		/* ".\r\n" MAIL RCPT.. DATA in ls_cmd */
	uint32_t ls_cmd_pos;		/* lock-step: the next line to send */
	char *ls_cmd;			/* shared, or the session's slice of l_cmdmem */
	struct load_tls *ls_tls;	/* NULL without -T */
	uint64_t ls_t_dot;		/* ns: the dot was handed to the kernel */
	uint64_t ls_deadline;		/* ns: no progress by then is a timeout */
	struct msghdr ls_msg;		/* plaintext still to send (iovecs in ls_iov) */
	struct iovec ls_iov[3];
	char ls_mid[LOAD_MID_SIZE];
	char ls_rx[LOAD_RX_SIZE];	/* reply text (plaintext with TLS) */
};

/* Log-linear latency histogram in microseconds, about 3 % resolution. */
#define LOAD_HIST_N (64u + 58u * 32u)
struct load_hist {
	uint64_t lh_count[LOAD_HIST_N];
	uint64_t lh_n, lh_max;
};

struct load_err {
	const char *le_stage;
	int le_code;		/* reply code, 0 closed, -1 timeout, -2 bad reply, -4 no STARTTLS */
	int le_errno;		/* when non-zero: a socket error */
	const char *le_what;	/* when non-NULL: a TLS error's reason (static text) */
	uint64_t le_n;
};

struct load {
	const struct load_opts *l_opts;
	struct io_uring l_ring;
	bool l_fixed;			/* sockets are in the registered file table */
	struct load_sess *l_sess;
	struct sockaddr_storage l_addr;
	socklen_t l_addrlen;
	char l_host[256];		/* -s without the port, for SNI */

	/* Text (load_text.c). */
	struct load_size *l_sizes;
	unsigned l_nsizes, l_size_total;
	struct load_domain *l_domains;
	unsigned l_ndomains, l_domain_total;
	uint64_t l_rdom_next;		/* -R: the next recipient's domain number */
	char *l_ehlo;
	size_t l_ehlo_len;
	char *l_cmds;			/* shared transaction text: no mix to pick from */
	size_t l_cmds_len;
	char *l_cmdmem;			/* per-session transaction text, with a mix */
	size_t l_cmd_cap;
	uint64_t l_run_id, l_seq, l_rng;

	/* TLS (load_tls.c). */
	void *l_ssl_ctx;		/* SSL_CTX * */
	struct load_tls *l_tls;		/* -c of them */
	char *l_tls_stage;		/* small sends are gathered here into one record */
	const char *l_tls_version;	/* of the first handshake, static text */
	const char *l_tls_cipher;
	uint64_t l_handshakes, l_tls_errors;
	struct load_hist l_hs_hist;	/* STARTTLS reply to handshake done */

	uint64_t l_now, l_t0, l_t_end, l_deadline, l_hard_deadline;
	uint64_t l_started, l_ok, l_failed, l_bytes;
	uint64_t l_conns, l_conn_failed;
	unsigned l_open, l_retry;
	unsigned l_idle, l_idle_reached, l_idle_lost;
	bool l_stopping, l_idle_reported;
	uint32_t *l_reopen;		/* sessions to reopen after this batch */
	unsigned l_nreopen;
	unsigned l_ticks;
	uint64_t l_prev_ok;
	struct __kernel_timespec l_tick_ts;
	struct load_hist l_hist;	/* end of DATA to reply */
	struct load_err l_errs[LOAD_ERR_MAX];
	unsigned l_nerrs;
};

/* load_main.c */
void load_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
uint64_t load_clock(void);
extern volatile sig_atomic_t load_signalled;

/* load_text.c */
void load_text_init(struct load *L);
/* Pick the next transaction's size and recipient domains and write its
 * text into s->ls_cmd; only while no send of s is in flight. */
void load_text_txn(struct load *L, struct load_sess *s);
void load_text_mid(struct load *L, struct load_sess *s);
size_t load_text_mean_size(const struct load *L);

/* load_ring.c */
void load_ring_init(struct load *L);
void load_run(struct load *L);
uint32_t load_idx(const struct load *L, const struct load_sess *s);
void load_post_recv(struct load *L, struct load_sess *s);
/* Send ls_msg's iovecs as they are (plaintext, or ciphertext with TLS). */
void load_post_send(struct load *L, struct load_sess *s);
void load_post_send_buf(struct load *L, struct load_sess *s, const char *p, size_t len);
/* Drop n sent bytes off the front of msg; true when some are left. */
bool load_iov_advance(struct msghdr *msg, size_t n);
void load_open(struct load *L, struct load_sess *s);
void load_close(struct load *L, struct load_sess *s);
void load_maybe_free(struct load *L, struct load_sess *s);

/* load_session.c */
bool load_live(const struct load_sess *s);
bool load_take_slot(struct load *L);
void load_msg_end(struct load *L, struct load_sess *s, bool ok);
void load_fail(struct load *L, struct load_sess *s, int code, int err);
void load_fail_what(struct load *L, struct load_sess *s, const char *what);
void load_quit(struct load *L, struct load_sess *s);
/* Hand the complete lines in ls_rx to the state machine; false when the
 * session stopped being live. */
bool load_rx_lines(struct load *L, struct load_sess *s);
void load_on_handshake(struct load *L, struct load_sess *s);
void load_on_connect(struct load *L, struct load_sess *s, int res);
void load_on_recv(struct load *L, struct load_sess *s, int res);
void load_on_send(struct load *L, struct load_sess *s, int res);
const char *load_stage(const struct load *L, const struct load_sess *s);

/* load_tls.c */
void load_tls_init(struct load *L);
/* The 220 to STARTTLS arrived: make the SSL, send the ClientHello. */
void load_tls_start(struct load *L, struct load_sess *s);
/* Ciphertext the last receive put into the TLS buffer: n octets. */
void load_tls_recv(struct load *L, struct load_sess *s, size_t n);
/* Encrypt what ls_msg holds and send it, unless a send is in flight;
 * true when a send was posted. */
bool load_tls_push(struct load *L, struct load_sess *s);
/* A send of s completed with n octets; true when another was posted. */
bool load_tls_sent(struct load *L, struct load_sess *s, size_t n);
char *load_tls_rxbuf(struct load_sess *s, size_t *len_r);
void load_tls_end(struct load *L, struct load_sess *s);

/* load_report.c */
void load_hist_add(struct load_hist *h, uint64_t us);
double load_hist_ms(const struct load_hist *h, double p);
void load_err(struct load *L, const char *stage, int code, int err);
void load_err_what(struct load *L, const char *stage, const char *what);
void load_progress(struct load *L);
void load_report(struct load *L);

#endif
