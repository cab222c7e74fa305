/*
 * smtp_server.c: session lifecycle, input framing, flow control and the
 * return from the queue. Transactions and bodies are in smtp_server_txn.c,
 * commands in smtp_server_cmds.c, TLS and AUTH in smtp_server_tls.c.
 */
#include "core/inbound/smtp_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "core/config/config.h"
#include "core/base/log.h"
#include "core/dkim/dkim_job.h"
#include "core/config/netacl.h"
#include "tls/tls.h"

/*
 * Flow control (see smtp_server.h). Input waits while a commit is pending
 * or more than SMTP_OUT_HIGH octets of replies are unread; the connection
 * stops receiving once SMTP_INQ_PAUSE_BYTES (or _BUFS buffers) wait. What
 * the kernel had already taken still arrives after that; past
 * SMTP_INQ_MAX_BYTES (never in practice) the session is closed with 421.
 */
#define SMTP_OUT_HIGH (64u * 1024u)
#define SMTP_INQ_PAUSE_BYTES (256u * 1024u)
#define SMTP_INQ_PAUSE_BUFS 32u
#define SMTP_INQ_MAX_BYTES (8u * 1024u * 1024u)
#define SMTP_INQ_MAX_ENTRIES 4096u
#define SMTP_INQ_CHUNK 4096u		/* heap chunk for small queued input */

static const struct io_conn_ops smtp_conn_ops;

static struct smtp_session *smtp_of_conn(struct io_conn *c)
{
	return (struct smtp_session *)c;	/* s_conn is the first member */
}

const struct config *smtp_server_cfg(const struct smtp_session *s)
{
	return s->s_env->e_cfg;
}

void smtp_server_reply(struct smtp_session *s, const char *fmt, ...)
{
	const struct config *cfg = smtp_server_cfg(s);
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(buf) - 3)
		n = (int)sizeof(buf) - 3;
	buf[n++] = '\r';
	buf[n++] = '\n';
	smtp_server_out(s, buf, (size_t)n);
	if (io_conn_closing(&s->s_conn))
		return;
	if ((buf[0] == '4' || buf[0] == '5') && memcmp(buf, "421", 3) != 0 &&
	    ++s->s_errors >= cfg->max_errors) {
		smtp_server_reply(s, "421 4.7.0 %s Error: too many errors", cfg->hostname);
		smtp_server_close(s, "too many errors");
	}
}

void smtp_server_close(struct smtp_session *s, const char *reason)
{
	if (s->s_closing)
		return;
	s->s_closing = true;
	log_msg(LOG_INFO, "disconnect client=%s helo=%s messages=%u errors=%u outcome=%s",
		s->s_addr, s->s_helo ? s->s_helo : "-", s->s_messages, s->s_errors,
		reason);
	io_conn_close(&s->s_conn);
}

/* ---- input ---- */

static void smtp_deadline(struct smtp_session *s)
{
	const struct config *cfg = smtp_server_cfg(s);

	io_conn_set_deadline(&s->s_conn, (s->s_state == SMTP_S_DATA ||
					  s->s_state == SMTP_S_BDAT) ?
			     cfg->timeout_data : cfg->timeout_command);
}

/* One command line, with its line ending (n >= 1, p[n-1] == '\n'). */
static void smtp_line_done(struct smtp_session *s, const char *p, size_t n)
{
	if (n < 2 || p[n - 2] != '\r' || memchr(p, '\r', n - 2) != NULL) {
		smtp_server_reply(s, "500 5.5.2 Error: bare CR or LF in command; "
				  "lines must end with CRLF");
		return;
	}
	if (s->s_state == SMTP_S_AUTH)
		smtp_auth_line(s, p, n - 2);
	else
		smtp_server_command(s, p, n - 2);
}

/* SASL lines may be longer than commands (RFC 4954 section 4). */
static size_t smtp_line_limit(const struct smtp_session *s, const char *p, size_t len)
{
	char head[5];
	size_t n = s->s_line_len < sizeof(head) ? s->s_line_len : sizeof(head), k;

	if (s->s_state == SMTP_S_AUTH)
		return SMTP_AUTH_LINE_MAX;
	/* The verb may be split across receives ("AU" + "TH PLAIN ..."):
	 * look at what was kept and what just came, together. */
	if (n > 0)
		memcpy(head, s->s_line, n);
	k = sizeof(head) - n < len ? sizeof(head) - n : len;
	memcpy(head + n, p, k);
	if (n + k == sizeof(head) && strncasecmp(head, "AUTH ", sizeof(head)) == 0)
		return SMTP_AUTH_LINE_MAX;
	if (n + k == sizeof(head) && (strncasecmp(head, "MAIL ", sizeof(head)) == 0 ||
				      strncasecmp(head, "RCPT ", sizeof(head)) == 0))
		return SMTP_PATH_LINE_MAX;
	return SMTP_CMD_LINE_MAX;
}

/*
 * Room for a partial line of need octets: 512 for a command, grown to the
 * MAIL/RCPT limit or the AUTH limit only when a line needs it, so a slow client's partial
 * command costs no more than a command. -1 (session closed) without memory.
 */
static int smtp_line_reserve(struct smtp_session *s, size_t need)
{
	size_t cap = need <= SMTP_CMD_LINE_MAX ? SMTP_CMD_LINE_MAX :
		     need <= SMTP_PATH_LINE_MAX ? SMTP_PATH_LINE_MAX : SMTP_AUTH_LINE_MAX;
	char *n;

	if (s->s_line != NULL && s->s_line_cap >= need)
		return 0;
	n = realloc(s->s_line, cap);
	if (n == NULL) {
		smtp_server_reply(s, "421 4.3.0 Out of memory");
		smtp_server_close(s, "out of memory");
		return -1;
	}
	s->s_line = n;
	s->s_line_cap = (uint16_t)cap;
	return 0;
}

static size_t smtp_input_cmd(struct smtp_session *s, const char *p, size_t len)
{
	const char *lf = memchr(p, '\n', len);
	size_t n, limit = smtp_line_limit(s, p, len);

	if (lf == NULL) {
		if (s->s_line_len + len > limit) {
			if (s->s_state == SMTP_S_AUTH)
				smtp_auth_abort(s);	/* the skip ends it */
			free(s->s_line);
			s->s_line = NULL;
			s->s_line_len = s->s_line_cap = 0;
			s->s_skip_reply = "500 5.5.2 Error: command line too long";
			s->s_state = SMTP_S_SKIP;
			return len;
		}
		if (smtp_line_reserve(s, s->s_line_len + len) < 0)
			return len;
		memcpy(s->s_line + s->s_line_len, p, len);
		s->s_line_len += (uint16_t)len;
		return len;
	}
	n = (size_t)(lf - p) + 1;
	if (s->s_line_len + n > limit) {
		if (s->s_state == SMTP_S_AUTH) {
			smtp_auth_abort(s);
			s->s_state = SMTP_S_CMD;
		}
		free(s->s_line);
		s->s_line = NULL;
		s->s_line_len = s->s_line_cap = 0;
		smtp_server_reply(s, "500 5.5.2 Error: command line too long");
		return n;
	}
	if (s->s_line_len > 0) {
		/* The rare split line: join it. */
		char *line;
		size_t total = s->s_line_len + n;

		if (smtp_line_reserve(s, total) < 0)
			return n;
		line = s->s_line;
		memcpy(line + s->s_line_len, p, n);
		s->s_line = NULL;
		s->s_line_len = 0;
		s->s_line_cap = 0;
		smtp_line_done(s, line, total);
		free(line);
		return n;
	}
	smtp_line_done(s, p, n);
	return n;
}

/* Process bytes; returns how many were used. Stops early while waiting. */
static size_t smtp_input(struct smtp_session *s, struct io_buf *b,
			 const char *p, size_t len)
{
	size_t pos = 0;

	s->s_cur_buf = b;
	while (pos < len && !s->s_closing) {
		/* After STARTTLS every cleartext byte already received is
		 * dropped (CVE-2011-0411): only the handshake may follow. */
		if (s->s_tls_starting)
			return len;
		/* Replies the client has not read: wait until it does. */
		if (io_conn_unsent(&s->s_conn) > SMTP_OUT_HIGH)
			return pos;
		switch (s->s_state) {
		case SMTP_S_TLS_HANDSHAKE:
			return len;	/* cannot happen: TLS input is separate */
		case SMTP_S_GREET:
			smtp_server_reply(s, "554 5.5.0 Error: SMTP protocol synchronization: "
					  "input before greeting");
			smtp_server_close(s, "pre-greeting input");
			return len;
		case SMTP_S_CMD:
		case SMTP_S_AUTH:
			pos += smtp_input_cmd(s, p + pos, len - pos);
			break;
		case SMTP_S_SKIP: {
			const char *lf = memchr(p + pos, '\n', len - pos);

			if (lf == NULL)
				return len;
			pos = (size_t)(lf - p) + 1;
			s->s_state = SMTP_S_CMD;
			smtp_server_reply(s, "%s", s->s_skip_reply);
			break;
		}
		case SMTP_S_DATA: {
			bool done = false;

			pos += smtp_data_feed(&s->s_data, p + pos, len - pos, smtp_server_emit, s, &done);
			if (done)
				smtp_server_message_done(s);
			break;
		}
		case SMTP_S_BDAT: {
			struct smtp_txn *t = s->s_txn;
			size_t take = len - pos;

			if (take > t->t_bdat_left)
				take = (size_t)t->t_bdat_left;
			if (!t->t_bdat_discard) {
				bool done = false;

				smtp_data_feed(&s->s_data, p + pos, take, smtp_server_emit, s, &done);
			}
			pos += take;
			t->t_bdat_left -= take;
			if (t->t_bdat_left == 0)
				smtp_server_bdat_done(s);
			break;
		}
		case SMTP_S_COMMIT:
		case SMTP_S_AUTH_WAIT:
		case SMTP_S_SPF_WAIT:
			return pos;
		}
	}
	return len;
}

/*
 * Queue input for later (see the flow-control limits). Small input is
 * appended to the last queued bytes when they have room after them, or
 * copied to a heap chunk, so a trickle of tiny segments keeps no pool
 * buffers; a large segment keeps its buffer unless the pool is low.
 */
static int smtp_inq_push(struct smtp_session *s, struct io_buf *b,
			 size_t off, size_t len)
{
	struct bufpool *bp = s->s_env->e_bufs;
	struct smtp_inq *last = s->s_inq_n ? &s->s_inq[s->s_inq_n - 1] : NULL;
	bool keep;

	if (s->s_inq_bytes + len > SMTP_INQ_MAX_BYTES)
		return -ENOBUFS;
	keep = len >= b->ib_size / 4 && s->s_inq_n < SMTP_INQ_PAUSE_BUFS &&
	       ((b->ib_flags & IO_BUF_F_HEAP) || !bufpool_low(bp));
	if (!keep && last != NULL &&
	    (size_t)last->q_off + last->q_len + len <= last->q_buf->ib_size) {
		memcpy(last->q_buf->ib_data + last->q_off + last->q_len, b->ib_data + off, len);
		last->q_len += (uint32_t)len;
		s->s_inq_bytes += (uint32_t)len;
		return 0;
	}
	if (s->s_inq_n >= SMTP_INQ_MAX_ENTRIES)
		return -ENOBUFS;
	if (s->s_inq_n == s->s_inq_cap) {
		uint16_t cap = s->s_inq_cap ? (uint16_t)(s->s_inq_cap * 2) : 4;
		struct smtp_inq *n = realloc(s->s_inq, cap * sizeof(*n));

		if (n == NULL)
			return -ENOMEM;
		s->s_inq = n;
		s->s_inq_cap = cap;
	}
	if (keep) {
		io_buf_ref(b);
	} else {
		struct io_buf *h = bufpool_alloc_heap(len > SMTP_INQ_CHUNK ? len : SMTP_INQ_CHUNK);

		if (h == NULL)
			return -ENOMEM;
		memcpy(h->ib_data, b->ib_data + off, len);
		b = h;
		off = 0;
	}
	s->s_inq[s->s_inq_n].q_buf = b;
	s->s_inq[s->s_inq_n].q_off = (uint32_t)off;
	s->s_inq[s->s_inq_n].q_len = (uint32_t)len;
	s->s_inq_n++;
	s->s_inq_bytes += (uint32_t)len;
	return 0;
}

/* Queue input; stop receiving when enough waits. 421 past the hard cap. */
static void smtp_inq_add(struct smtp_session *s, struct io_buf *b, size_t off, size_t len)
{
	if (smtp_inq_push(s, b, off, len) < 0) {
		smtp_server_reply(s, "421 4.7.0 Error: too much pipelined input");
		smtp_server_close(s, "pipelining overflow");
		return;
	}
	if (s->s_inq_bytes >= SMTP_INQ_PAUSE_BYTES || s->s_inq_n >= SMTP_INQ_PAUSE_BUFS)
		io_conn_pause(&s->s_conn);
}

/* Run queued input until it is used up or the session waits again. */
static void smtp_inq_drain(struct smtp_session *s)
{
	struct bufpool *bp = s->s_env->e_bufs;

	while (s->s_inq_n > 0 && !smtp_state_waits(s->s_state) && !s->s_closing) {
		struct smtp_inq *q = &s->s_inq[0];
		size_t used = smtp_input(s, q->q_buf, q->q_buf->ib_data + q->q_off, q->q_len);

		s->s_inq_bytes -= (uint32_t)used;
		if (used < q->q_len) {
			q->q_off += (uint32_t)used;
			q->q_len -= (uint32_t)used;
			break;
		}
		bufpool_unref(bp, q->q_buf);
		memmove(s->s_inq, s->s_inq + 1, (size_t)(s->s_inq_n - 1) * sizeof(*q));
		s->s_inq_n--;
	}
}

static void smtp_inq_clear(struct smtp_session *s)
{
	for (uint16_t i = 0; i < s->s_inq_n; i++)
		bufpool_unref(s->s_env->e_bufs, s->s_inq[i].q_buf);
	free(s->s_inq);
	s->s_inq = NULL;
	s->s_inq_n = s->s_inq_cap = 0;
	s->s_inq_bytes = 0;
}

/* Idle between transactions during shutdown: say goodbye. */
static void smtp_maybe_shutdown(struct smtp_session *s)
{
	if (s->s_env->e_stopping && !s->s_closing && s->s_txn == NULL &&
	    s->s_state == SMTP_S_CMD && s->s_inq_n == 0)
		smtp_server_shutdown(s, false);
}

/* STARTTLS was accepted: what input is left is dropped, TLS begins. */
static void smtp_starttls_now(struct smtp_session *s)
{
	s->s_tls_starting = false;
	smtp_inq_clear(s);
	if (smtp_tls_begin(s) < 0) {
		smtp_server_reply(s, "454 4.7.0 TLS not available due to local problem");
		smtp_server_close(s, "TLS setup failed");
	}
}

/* The session may take input again (commit or AUTH check done, replies
 * read): run what waited, and receive again once nothing waits. */
void smtp_server_resume(struct smtp_session *s)
{
	smtp_inq_drain(s);
	if (s->s_closing)
		return;
	if (s->s_tls_starting) {
		smtp_starttls_now(s);
		if (s->s_closing)
			return;
	}
	if (s->s_inq_n == 0)
		io_conn_resume(&s->s_conn);
	smtp_deadline(s);
	smtp_maybe_shutdown(s);
}

void smtp_server_input_plain(struct smtp_session *s, struct io_buf *b, size_t off,
			     size_t len)
{
	size_t used;

	if (s->s_closing)
		return;
	if (s->s_inq_n > 0 || smtp_state_waits(s->s_state) ||
	    io_conn_unsent(&s->s_conn) > SMTP_OUT_HIGH) {
		smtp_inq_add(s, b, off, len);
		return;
	}
	used = smtp_input(s, b, b->ib_data + off, len);
	if (s->s_tls_starting) {
		/* STARTTLS: the rest of this input is dropped, TLS begins. */
		smtp_starttls_now(s);
		return;
	}
	if (used < len && !s->s_closing)
		smtp_inq_add(s, b, off + used, len - used);
	if (!s->s_closing)
		smtp_deadline(s);
	smtp_maybe_shutdown(s);
}

static void smtp_on_recv(struct io_conn *c, struct io_buf *b, size_t len)
{
	struct smtp_session *s = smtp_of_conn(c);

	if (s->s_tls != NULL)
		smtp_tls_input(s, b, len);
	else
		smtp_server_input_plain(s, b, 0, len);
}

void smtp_server_out(struct smtp_session *s, const char *p, size_t n)
{
	if (s->s_tls != NULL) {
		smtp_tls_write(s, p, n);
		return;
	}
	/* Flow control keeps this far below the connection's cap; should a
	 * reply not fit all the same, end the session rather than lose it. */
	if (io_conn_write(&s->s_conn, p, n) < 0 && !s->s_closing)
		smtp_server_close(s, "output overflow");
}

/* A session's last step, its transaction already ended: free what it owns. */
void smtp_server_session_free(struct smtp_session *s)
{
	struct smtp_env *env = s->s_env;

	smtp_inq_clear(s);
	smtp_spf_forget(s);
	smtp_tls_free(s);
	free(s->s_helo);
	free(s->s_line);
	env->e_nsessions--;
	free(s);
}

void smtp_server_committed(struct queue_msg *m)
{
	struct smtp_txn *t = (struct smtp_txn *)m;
	struct smtp_session *s = t->t_sess;
	struct smtp_env *env = s->s_env;
	char ids[17];

	queue_id_str(m->qm_id, ids);
	if (s->s_gone) {
		/* The client left while we committed: the message is queued
		 * (or not) all the same; nobody is left to tell. */
		log_msg(m->qm_status == 0 ? LOG_INFO : LOG_WARNING,
			"%s id=%s client=%s from=<%s> nrcpt=%u size=%" PRIu64 " (client gone)",
			m->qm_status == 0 ? "queued" : "queue-failed", ids, s->s_addr,
			t->t_sender, t->t_nrcpt, m->qm_rec.size);
		smtp_server_txn_free(env, t);
		s->s_txn = NULL;
		smtp_server_session_free(s);
		return;
	}
	s->s_state = SMTP_S_CMD;
	if (m->qm_status == 0) {
		stat_inc(&env->e_stats.es_messages);
		stat_hist_observe(&env->e_stats.es_accept_lat, smtp_server_now_ns() - t->t_end_ns);
		s->s_messages++;
		log_msg(LOG_INFO, "queued id=%s client=%s%s%s from=<%s> nrcpt=%u size=%" PRIu64
			"%s%s", ids, s->s_addr, s->s_auth_user ? " user=" : "",
			s->s_auth_user ? s->s_auth_user : "", t->t_sender, t->t_nrcpt,
			m->qm_rec.size, t->t_sign ? " dkim=" : "",
			t->t_sign ? t->t_sign->dj_sig : "");
		smtp_server_reply(s, "250 2.0.0 Ok: queued as %s", ids);
	} else if (m->qm_status == -ENOSPC) {
		smtp_server_reply(s, "452 4.3.1 Error: insufficient system storage, try again later");
	} else {
		smtp_server_reply(s, "451 4.3.0 Error: queue write failed, try again later");
	}
	smtp_server_txn_end(s);
	smtp_server_resume(s);
}

static void smtp_on_eof(struct io_conn *c, int err)
{
	struct smtp_session *s = smtp_of_conn(c);

	smtp_server_close(s, err == 0 ? (s->s_state == SMTP_S_DATA ? "lost connection in DATA"
					 : "client closed") : "connection error");
}

/* All replies were sent: input that waited for the client to read them
 * may run. */
static void smtp_on_drained(struct io_conn *c)
{
	struct smtp_session *s = smtp_of_conn(c);

	if (s->s_inq_n > 0 && !smtp_state_waits(s->s_state) && !s->s_closing)
		smtp_server_resume(s);
}

static void smtp_on_timeout(struct io_conn *c)
{
	struct smtp_session *s = smtp_of_conn(c);

	if (smtp_state_waits(s->s_state)) {
		io_conn_set_deadline(c, 1);
		return;
	}
	smtp_server_reply(s, "421 4.4.2 %s Error: timeout exceeded", smtp_server_cfg(s)->hostname);
	smtp_server_close(s, "timeout");
}

void smtp_server_greet(struct smtp_session *s)
{
	s->s_state = SMTP_S_CMD;
	smtp_server_reply(s, "220 %s ESMTP ringmta", smtp_server_cfg(s)->hostname);
}

static void smtp_on_delay(struct io_conn *c)
{
	struct smtp_session *s = smtp_of_conn(c);

	if (s->s_state == SMTP_S_GREET && !s->s_closing)
		smtp_server_greet(s);
}

static void smtp_on_free(struct io_conn *c)
{
	struct smtp_session *s = smtp_of_conn(c);
	struct smtp_env *env = s->s_env;

	if (s->s_prev != NULL)
		s->s_prev->s_next = s->s_next;
	else
		env->e_sessions = s->s_next;
	if (s->s_next != NULL)
		s->s_next->s_prev = s->s_prev;
	env->e_ops->session_gone(env, (const struct sockaddr *)&s->s_peer);
	stat_add(&env->e_stats.es_open[s->s_listener], (uint64_t)-1);
	if (s->s_state == SMTP_S_COMMIT) {
		s->s_gone = true;	/* freed by smtp_server_committed */
		return;
	}
	smtp_server_txn_end(s);
	smtp_server_session_free(s);
}

static const struct io_conn_ops smtp_conn_ops = {
	.on_recv = smtp_on_recv,
	.on_eof = smtp_on_eof,
	.on_drained = smtp_on_drained,
	.on_timeout = smtp_on_timeout,
	.on_delay = smtp_on_delay,
	.on_free = smtp_on_free,
};

struct smtp_session *smtp_server_start(struct smtp_env *env, int fd,
				       const struct sockaddr *peer, socklen_t len,
				       unsigned listener)
{
	const struct config *cfg = env->e_cfg;
	struct smtp_session *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->s_env = env;
	s->s_listener = (uint8_t)listener;
	stat_add(&env->e_stats.es_open[listener], 1);
	memcpy(&s->s_peer, peer, len < sizeof(s->s_peer) ? len : sizeof(s->s_peer));
	if (peer->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)peer)->sin_addr,
			  s->s_addr, sizeof(s->s_addr));
	else
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)peer)->sin6_addr,
			  s->s_addr, sizeof(s->s_addr));
	s->s_kind = (uint8_t)cfg->listen[listener].cl_kind;
	/* Submission ports relay only for authenticated clients. */
	s->s_relay_ok = s->s_kind == CONFIG_LISTEN_SMTP &&
			netacl_match(cfg->relay_networks, peer);
	s->s_start = io_loop_now();
	s->s_next = env->e_sessions;
	if (env->e_sessions != NULL)
		env->e_sessions->s_prev = s;
	env->e_sessions = s;
	env->e_nsessions++;
	io_conn_start(env->e_loop, &s->s_conn, fd, &smtp_conn_ops);
	log_msg(LOG_DEBUG, "connect client=%s", s->s_addr);
	if (s->s_kind == CONFIG_LISTEN_SUBMISSIONS) {
		/* Implicit TLS: the greeting follows the handshake. */
		s->s_state = SMTP_S_TLS_HANDSHAKE;
		if (smtp_tls_begin(s) < 0) {
			smtp_server_close(s, "TLS setup failed");
			return s;
		}
	} else if (cfg->greeting_delay > 0 && io_conn_delay(&s->s_conn, cfg->greeting_delay) == 0) {
		s->s_state = SMTP_S_GREET;
	} else {
		smtp_server_greet(s);
	}
	io_conn_set_deadline(&s->s_conn, cfg->timeout_command);
	return s;
}

void smtp_server_shutdown(struct smtp_session *s, bool force)
{
	if (s->s_closing)
		return;
	if (!force && (s->s_txn != NULL || s->s_state != SMTP_S_CMD))
		return;
	if (s->s_state == SMTP_S_COMMIT)
		return;		/* answered when the commit returns */
	smtp_server_reply(s, "421 4.3.2 %s Service shutting down, closing connection",
			  smtp_server_cfg(s)->hostname);
	smtp_server_close(s, "shutdown");
}

void smtp_server_shutdown_all(struct smtp_env *env, bool force)
{
	struct smtp_session *s, *next;

	for (s = env->e_sessions; s != NULL; s = next) {
		next = s->s_next;
		smtp_server_shutdown(s, force);
	}
}
