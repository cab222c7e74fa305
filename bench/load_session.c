/*
 * load_session.c: smtp-load's SMTP client state machine. A session moves on
 * complete replies: greeting, EHLO, with -T STARTTLS and EHLO again, then
 * transactions (lock-step, or pipelined as RFC 2920 groups whose next group
 * rides after the dot), and QUIT. It counts message slots (so -n ends a run
 * even against a server that refuses everything), errors by step, and the
 * latency from the end of DATA to its reply.
 *
 * Sends: one in flight per session; a send asked for while one is in flight
 * waits in ls_next_send. Text is never copied: iovecs point at the shared
 * message of the chosen size, the session's Message-ID line and its
 * transaction text (ls_cmd). With TLS the same iovecs are handed to
 * load_tls_push, which encrypts them.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "load.h"

static const char load_dot[] = ".\r\n";
static const char load_dotquit[] = ".\r\nQUIT\r\n";
static const char load_starttls[] = "STARTTLS\r\n";

bool load_live(const struct load_sess *s)
{
	return s->ls_state != LOAD_S_CLOSING && s->ls_state != LOAD_S_FREE;
}

/* The protocol step a session is in, for error rows. */
const char *load_stage(const struct load *L, const struct load_sess *s)
{
	switch ((enum load_state)s->ls_state) {
	case LOAD_S_FREE: return "free";
	case LOAD_S_CONNECT: return "connect";
	case LOAD_S_GREET: return "greeting";
	case LOAD_S_EHLO: return "ehlo";
	case LOAD_S_STARTTLS: return "starttls";
	case LOAD_S_HANDSHAKE: return "handshake";
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

/* Count one more message as started; false when the run allows no more.
 * With -S a "message" is a handshake. */
bool load_take_slot(struct load *L)
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
void load_msg_end(struct load *L, struct load_sess *s, bool ok)
{
	if (s->ls_slots == 0)
		return;
	s->ls_slots--;
	if (ok)
		L->l_ok++;
	else
		L->l_failed++;
}

static void load_iov(struct iovec *v, const char *p, size_t len)
{
	v->iov_base = (void *)(uintptr_t)p;
	v->iov_len = len;
}

/* The transaction's next command line (MAIL, a RCPT, DATA): lock-step. */
static void load_iov_line(struct iovec *v, struct load_sess *s)
{
	const char *p = s->ls_cmd + s->ls_cmd_pos;
	const char *lf = memchr(p, '\n', s->ls_cmd_len - s->ls_cmd_pos);
	size_t len = (size_t)(lf - p) + 1;

	load_iov(v, p, len);
	s->ls_cmd_pos += (uint32_t)len;
}

/*
 * Queue one send; if a send is in flight, it goes when that one is done.
 * The kinds that start a transaction (MAIL, GROUP, BODY_GROUP) write its
 * text here, when no send of the session is in flight. Callers change no
 * state after it: with TLS a failure closes the session at once.
 */
static void load_send(struct load *L, struct load_sess *s, enum load_send kind)
{
	struct iovec *v = s->ls_iov;
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
	case LOAD_SEND_STARTTLS:
		load_iov(v, load_starttls, sizeof(load_starttls) - 1);
		break;
	case LOAD_SEND_MAIL:
		load_text_txn(L, s);
		load_iov_line(v, s);
		break;
	case LOAD_SEND_RCPT:
	case LOAD_SEND_DATA:
		load_iov_line(v, s);
		break;
	case LOAD_SEND_GROUP:
		load_text_txn(L, s);
		load_iov(v, s->ls_cmd + 3, s->ls_cmd_len - 3);
		break;
	case LOAD_SEND_QUIT:
		load_iov(v, load_dotquit + 3, sizeof(load_dotquit) - 4);
		break;
	case LOAD_SEND_BODY:
	case LOAD_SEND_BODY_GROUP:
	case LOAD_SEND_BODY_QUIT: {
		const struct load_size *z = &L->l_sizes[s->ls_size];

		load_text_mid(L, s);
		load_iov(&v[0], s->ls_mid, strlen(s->ls_mid));
		load_iov(&v[1], z->lz_msg, z->lz_msg_len);
		s->ls_body = s->ls_size;
		if (kind == LOAD_SEND_BODY) {
			load_iov(&v[2], load_dot, sizeof(load_dot) - 1);
		} else if (kind == LOAD_SEND_BODY_GROUP) {
			load_text_txn(L, s);	/* the next transaction, after the dot */
			load_iov(&v[2], s->ls_cmd, s->ls_cmd_len);
		} else {
			load_iov(&v[2], load_dotquit, sizeof(load_dotquit) - 1);
		}
		n = 3;
		s->ls_t_dot = L->l_now;
		break;
	}
	}
	s->ls_msg.msg_iov = v;
	s->ls_msg.msg_iovlen = n;
	s->ls_sending = (uint8_t)kind;
	if (s->ls_flags & LOAD_F_TLS)
		load_tls_push(L, s);
	else
		load_post_send(L, s);
}

/* Record a failure at the current step and drop the connection. */
void load_fail(struct load *L, struct load_sess *s, int code, int err)
{
	load_err(L, load_stage(L, s), code, err);
	load_close(L, s);
}

/* The same for a TLS error; what is static text. */
void load_fail_what(struct load *L, struct load_sess *s, const char *what)
{
	load_err_what(L, load_stage(L, s), what);
	load_close(L, s);
}

void load_quit(struct load *L, struct load_sess *s)
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
		L->l_bytes += strlen(s->ls_mid) + L->l_sizes[s->ls_body].lz_msg_len;
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

/* The reply to EHLO (the first, or the one over TLS). */
static void load_on_ehlo(struct load *L, struct load_sess *s, int code)
{
	const struct load_opts *o = L->l_opts;

	if (code != 250) {
		load_err(L, "ehlo", code, 0);
		load_quit(L, s);
		return;
	}
	if (o->lo_tls && !(s->ls_flags & LOAD_F_TLS)) {
		if (!(s->ls_flags & LOAD_F_STARTTLS)) {
			load_err(L, "ehlo", -4, 0);
			load_quit(L, s);
			return;
		}
		s->ls_state = LOAD_S_STARTTLS;
		load_send(L, s, LOAD_SEND_STARTTLS);
		return;
	}
	if (o->lo_idle) {
		if (L->l_stopping) {
			load_quit(L, s);
			return;
		}
		s->ls_state = LOAD_S_IDLE;
		s->ls_flags |= LOAD_F_WASIDLE;
		L->l_idle++;
		L->l_idle_reached++;
		return;
	}
	if (s->ls_slots > 0)
		load_txn_begin(L, s);	/* the slot taken at connect */
	else
		load_txn_next(L, s);
}

/* The handshake is done: EHLO again (RFC 3207), or with -S say QUIT. */
void load_on_handshake(struct load *L, struct load_sess *s)
{
	if (L->l_opts->lo_hs_only) {
		load_msg_end(L, s, true);	/* the slot taken at connect */
		load_quit(L, s);
		return;
	}
	s->ls_state = LOAD_S_EHLO;
	load_send(L, s, LOAD_SEND_EHLO);
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
		load_on_ehlo(L, s, code);
		break;
	case LOAD_S_STARTTLS:
		if (code != 220) {
			load_err(L, "starttls", code, 0);
			load_quit(L, s);
			break;
		}
		load_tls_start(L, s);
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
	case LOAD_S_HANDSHAKE:
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
	if (s->ls_state == LOAD_S_EHLO && len >= 12) {
		if (L->l_opts->lo_pipelining && len >= 14 &&
		    strncasecmp(p + 4, "PIPELINING", 10) == 0)
			s->ls_flags |= LOAD_F_PIPELINING;
		if (strncasecmp(p + 4, "STARTTLS", 8) == 0)
			s->ls_flags |= LOAD_F_STARTTLS;
	}
	if (len > 3 && p[3] == '-')
		return;
	load_on_reply(L, s, code);
}

bool load_rx_lines(struct load *L, struct load_sess *s)
{
	uint8_t tls = s->ls_flags & LOAD_F_TLS;
	char *p = s->ls_rx, *end = p + s->ls_rxlen, *lf;
	size_t rest;

	while (load_live(s) && (s->ls_flags & LOAD_F_TLS) == tls &&
	       (lf = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		if (s->ls_flags & LOAD_F_RXSKIP)
			s->ls_flags &= (uint8_t)~LOAD_F_RXSKIP;
		else
			load_on_line(L, s, p, (size_t)(lf - p) + 1);
		p = lf + 1;
	}
	if (!load_live(s))
		return false;
	if ((s->ls_flags & LOAD_F_TLS) != tls) {
		/* STARTTLS: plaintext after the 220 is dropped (RFC 3207). */
		s->ls_rxlen = 0;
		return true;
	}
	rest = (size_t)(end - p);
	if (rest == LOAD_RX_SIZE) {
		/* A line longer than the buffer: its start carries the code. */
		if (!(s->ls_flags & LOAD_F_RXSKIP))
			load_on_line(L, s, p, 4);
		s->ls_flags |= LOAD_F_RXSKIP;
		rest = 0;
		if (!load_live(s))
			return false;
	}
	memmove(s->ls_rx, p, rest);
	s->ls_rxlen = (uint16_t)rest;
	return true;
}

void load_on_recv(struct load *L, struct load_sess *s, int res)
{
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
	if (s->ls_flags & LOAD_F_TLS) {
		load_tls_recv(L, s, (size_t)res);
	} else {
		s->ls_rxlen = (uint16_t)(s->ls_rxlen + (unsigned)res);
		load_rx_lines(L, s);
	}
	if (load_live(s))
		load_post_recv(L, s);
}

void load_on_send(struct load *L, struct load_sess *s, int res)
{
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
	if (s->ls_flags & LOAD_F_TLS) {
		if (load_tls_sent(L, s, (size_t)res) || !load_live(s))
			return;
	} else if (load_iov_advance(&s->ls_msg, (size_t)res)) {
		load_post_send(L, s);	/* short send (rare with MSG_WAITALL) */
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

void load_on_connect(struct load *L, struct load_sess *s, int res)
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
