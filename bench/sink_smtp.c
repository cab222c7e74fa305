/*
 * sink_smtp.c: smtp-sink's SMTP. Commands come from a table of four-letter
 * verbs; each action checks and answers with a canned reply. Input is taken
 * from the receive buffer in place: every complete command of a receive is
 * handled (replies are batched), a line that straddles receives is kept in
 * a lazily allocated line buffer, body bytes are scanned for <CRLF>.<CRLF>
 * without a copy, and input that arrives while the final DATA reply is held
 * back (-L, latency rules) waits in a pending buffer.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sink.h"

const struct sink_reply sink_r_ok = SINK_REPLY(250, "250 2.0.0 ok");
const struct sink_reply sink_r_mail = SINK_REPLY(250, "250 2.1.0 sender ok");
const struct sink_reply sink_r_rcpt = SINK_REPLY(250, "250 2.1.5 recipient ok");
const struct sink_reply sink_r_354 =
	SINK_REPLY(354, "354 End data with <CR><LF>.<CR><LF>");
const struct sink_reply sink_r_queued = SINK_REPLY(250, "250 2.0.0 ok queued");
const struct sink_reply sink_r_quit = SINK_REPLY(221, "221 2.0.0 bye");
const struct sink_reply sink_r_vrfy = SINK_REPLY(252, "252 2.0.0 try it");
const struct sink_reply sink_r_help = SINK_REPLY(214, "214 2.0.0 see RFC 5321");
const struct sink_reply sink_r_rcpt_4xx = SINK_REPLY(451, "451 4.3.0 temporary failure");
const struct sink_reply sink_r_rcpt_5xx = SINK_REPLY(550, "550 5.1.1 no such user");
const struct sink_reply sink_r_data_4xx = SINK_REPLY(451, "451 4.3.0 temporary failure");
const struct sink_reply sink_r_data_5xx = SINK_REPLY(554, "554 5.6.0 message rejected");
/* Gmail's rate deferral in shape (two lines, 4.7.28); the session closes after it. */
const struct sink_reply sink_r_data_421 =
	SINK_REPLY(421, "421-4.7.28 smtp-sink has detected an unusual rate of unsolicited mail\r\n"
			"421 4.7.28 from your IP address; try again later (-r data:421)");
const struct sink_reply sink_r_tempfail =
	SINK_REPLY(450, "450 4.2.1 mailbox temporarily unavailable");
const struct sink_reply sink_r_permfail = SINK_REPLY(550, "550 5.1.1 no such user");
const struct sink_reply sink_r_nested = SINK_REPLY(503, "503 5.5.1 nested MAIL command");
const struct sink_reply sink_r_need_mail = SINK_REPLY(503, "503 5.5.1 need MAIL command");
const struct sink_reply sink_r_no_rcpt = SINK_REPLY(554, "554 5.5.1 no valid recipients");
const struct sink_reply sink_r_syntax = SINK_REPLY(501, "501 5.5.4 syntax error");
const struct sink_reply sink_r_bad_addr = SINK_REPLY(501, "501 5.1.3 bad address syntax");
const struct sink_reply sink_r_unknown =
	SINK_REPLY(502, "502 5.5.2 command not recognized");
const struct sink_reply sink_r_too_long = SINK_REPLY(500, "500 5.5.2 line too long");
const struct sink_reply sink_r_timeout = SINK_REPLY(421, "421 4.4.2 idle timeout");
const struct sink_reply sink_r_busy = SINK_REPLY(421, "421 4.7.0 too many sessions");

static bool sink_prefix(const char *p, size_t n, const char *pfx)
{
	size_t k = strlen(pfx);

	return n >= k && strncasecmp(p, pfx, k) == 0;
}

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
		sink_stat_add(&w->w_ctr.ct_mail, 1);
		sink_sess_write(w, s, &sink_r_mail);
	}
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

/* The final DATA reply; a 421 closes the session once it is sent, as
 * servers that answer 421 do (RFC 5321 3.8). */
static void sink_sess_final(struct sink_worker *w, struct sink_sess *s,
			    const struct sink_reply *r)
{
	sink_count(w->w_ctr.ct_data, r);
	if (r->sr_code < 300)
		sink_stat_add(&w->w_ctr.ct_messages, 1);
	sink_sess_write(w, s, r);
	if (r->sr_code == 421)
		sink_sess_close(w, s);
}

/* The body ended: decide the final reply, hold it back if asked to. */
static void sink_sess_data_end(struct sink_worker *w, struct sink_sess *s)
{
	const struct sink_conf *conf = w->w_conf;
	const struct sink_reply *r = s->ss_data_rule;
	unsigned ms = conf->sc_latency_ms;
	struct io_uring_sqe *sqe;

	if (r == NULL && conf->sc_data_4xx + conf->sc_data_5xx + conf->sc_data_421 > 0) {
		unsigned x = sink_rand_bp(w);

		if (x < conf->sc_data_4xx)
			r = &sink_r_data_4xx;
		else if (x < conf->sc_data_4xx + conf->sc_data_5xx)
			r = &sink_r_data_5xx;
		else if (x < conf->sc_data_4xx + conf->sc_data_5xx + conf->sc_data_421)
			r = &sink_r_data_421;
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

void sink_on_timer(struct sink_worker *w, struct sink_sess *s, int res)
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

void sink_on_recv(struct sink_worker *w, struct sink_sess *s,
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
