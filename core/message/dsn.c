/*
 * dsn.c: builds delivery status notifications; see dsn.h.
 *
 * The three parts (the explanation, the RFC 3464 report and the original
 * header section) are written into buffers of their own first, so that
 * the MIME boundary can be chosen not to occur in any of them; then the
 * message header and the parts are joined into the output.
 *
 * Everything that comes from outside (addresses, a remote server's
 * reply, the original header section) is cleaned on the way in: control
 * characters go, CR / LF become line breaks where a field may continue
 * on another line, octets that are not UTF-8 become '?'. So the output
 * has CRLF line ends only and no line reaches 1000 octets, whatever the
 * input.
 *
 * Choices the header leaves open:
 *   - RFC 6533 international DSNs: when a recipient address or a
 *     diagnostic holds non-ASCII UTF-8, part 1 is text/plain; charset=
 *     utf-8, part 2 is message/global-delivery-status and such addresses
 *     are written as "utf-8; " followed by the address as it is (the
 *     utf-8-address form). The original header section becomes
 *     message/global-headers when it holds 8-bit octets. 8-bit parts and
 *     the message say Content-Transfer-Encoding: 8bit; such a DSN needs
 *     an SMTPUTF8 (or 8BITMIME) path back to the sender, which it has
 *     when the original came in that way. Otherwise the DSN is 7-bit.
 *   - The diagnostic type is "smtp" when dr_diag starts like an SMTP
 *     reply ("550 ..." / "550-..."), else "X-Ringmta" (our own reason).
 *   - A missing or malformed dr_status becomes 5.0.0 (failed) or 4.0.0
 *     (delayed). NULL strings are empty; empty optional fields
 *     (Date, Message-ID, To, Arrival-Date, Remote-MTA, Last-Attempt-Date,
 *     Diagnostic-Code) are left out.
 *   - ENVID and ORCPT are written xtext-decoded (as Postfix does), then
 *     cleaned like any other value; an ORCPT's UTF-8 is kept only in an
 *     international report. A relayed or delivered recipient's missing
 *     status is 2.0.0.
 *   - RET=FULL (dm_orig) returns the whole message, normalised as the
 *     header section is (below) but going on past the empty line, whose
 *     over-long body lines are broken without a leading space.
 *   - Of dm_orig_headers only what precedes an empty line is returned;
 *     bare LF and CR LF both end a line, a stray CR or NUL is dropped and
 *     a line longer than DSN_ORIG_LINE_MAX continues on the next line
 *     after a space (a header fold). If nothing is left, there is no
 *     part 3.
 */
#include "core/message/dsn.h"
#include "core/base/utf8.h"
#include "core/base/xtext.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DSN_LINE_WIDTH		900	/* octets of a folded line before CRLF */
#define DSN_ORIG_LINE_MAX	990	/* octets of a returned header line */
#define DSN_SHORT_MAX		255	/* host names, ids, dates, status */
#define DSN_ADDR_MAX		512	/* addresses (RFC 5321: 256 for a path) */
#define DSN_DIAG_MAX		8192	/* a diagnostic, all its lines */
#define DSN_QID_MAX		32	/* queue id octets in the boundary */

/* A growing output buffer with a sticky allocation failure. */
struct dsn_buf {
	char *db_data;
	size_t db_len;
	size_t db_cap;
	bool db_failed;
};

static bool dsn_buf_reserve(struct dsn_buf *b, size_t n)
{
	size_t cap;
	char *p;

	if (b->db_failed)
		return false;
	if (b->db_cap - b->db_len >= n)
		return true;
	cap = b->db_cap ? b->db_cap : 1024;
	while (cap - b->db_len < n) {
		if (cap > SIZE_MAX / 2) {
			b->db_failed = true;
			return false;
		}
		cap *= 2;
	}
	p = realloc(b->db_data, cap);
	if (p == NULL) {
		b->db_failed = true;
		return false;
	}
	b->db_data = p;
	b->db_cap = cap;
	return true;
}

static void dsn_buf_put(struct dsn_buf *b, const void *p, size_t n)
{
	if (n == 0 || !dsn_buf_reserve(b, n))
		return;
	memcpy(b->db_data + b->db_len, p, n);
	b->db_len += n;
}

static void dsn_buf_puts(struct dsn_buf *b, const char *s)
{
	dsn_buf_put(b, s, strlen(s));
}

static void dsn_buf_putc(struct dsn_buf *b, char ch)
{
	dsn_buf_put(b, &ch, 1);
}

/* The buffer as a C string (for cleaned values), "" when it failed. */
static const char *dsn_buf_str(struct dsn_buf *b)
{
	if (!dsn_buf_reserve(b, 1))
		return "";
	b->db_data[b->db_len] = '\0';
	return b->db_data;
}

static void dsn_buf_free(struct dsn_buf *b)
{
	free(b->db_data);
	memset(b, 0, sizeof(*b));
}

/*
 * Length of the UTF-8 character at s[0..n) (2 to 4) if it is a valid,
 * shortest-form, non-surrogate, non-C1-control multi-octet sequence;
 * else 0. ASCII is not handled here.
 */
static size_t dsn_utf8_len(const unsigned char *s, size_t n)
{
	size_t len = s[0] >= 0x80 ? utf8_seq_len(s, n) : 0;

	return utf8_is_c1(s, len) ? 0 : len;
}

/* Whether s holds a non-ASCII character that cleaning would keep. */
static bool dsn_has_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t n = strlen((const char *)p);

	for (size_t i = 0; i < n; i++) {
		if (p[i] >= 0x80 && dsn_utf8_len(p + i, n - i) > 0)
			return true;
	}
	return false;
}

enum dsn_clean_flags {
	DSN_C_SPACE = 1,	/* keep blanks (a tab becomes a space) */
	DSN_C_UTF8 = 2,		/* keep valid UTF-8, else '?' per character */
	DSN_C_LINES = 4,	/* CR / LF / CRLF become one '\n' */
};

/*
 * Append to b a cleaned copy of s (NULL is ""), at most max octets, cut at
 * a character boundary. No control characters, and no blanks at the
 * start or end of the value or of a line in it, none doubled; no empty
 * lines. Returns the octets appended.
 */
static size_t dsn_clean(struct dsn_buf *b, const char *s, size_t max, unsigned flags)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t n = strlen((const char *)p), start = b->db_len, seg = b->db_len;

	for (size_t i = 0; i < n && !b->db_failed; i++) {
		unsigned char ch = p[i];
		size_t clen = 1;

		if (ch == '\r' || ch == '\n') {
			if (!(flags & (DSN_C_LINES | DSN_C_SPACE)))
				continue;
			if (!(flags & DSN_C_LINES))
				ch = ' ';
		} else if (ch == '\t') {
			ch = ' ';
		}
		if (ch == ' ') {
			if (!(flags & DSN_C_SPACE) || b->db_len == seg ||
			    b->db_data[b->db_len - 1] == ' ')
				continue;
		} else if (ch == '\r' || ch == '\n') {
			while (b->db_len > seg && b->db_data[b->db_len - 1] == ' ')
				b->db_len--;
			if (b->db_len == seg)
				continue;
			if (ch == '\r' && i + 1 < n && p[i + 1] == '\n')
				i++;
			ch = '\n';
		} else if (ch < 0x20 || ch == 0x7f) {
			continue;
		} else if (ch >= 0x80) {
			clen = dsn_utf8_len(p + i, n - i);
			if (clen == 0 || !(flags & DSN_C_UTF8)) {
				i += clen ? clen - 1 : 0;
				clen = 1;
				ch = '?';
			}
		}
		if (b->db_len - start + clen > max)
			break;
		if (clen > 1) {
			dsn_buf_put(b, p + i, clen);
			i += clen - 1;
		} else {
			dsn_buf_putc(b, (char)ch);
		}
		if (ch == '\n')
			seg = b->db_len;
	}
	while (b->db_len > start &&
	       (b->db_data[b->db_len - 1] == ' ' || b->db_data[b->db_len - 1] == '\n'))
		b->db_len--;
	return b->db_failed ? 0 : b->db_len - start;
}

/* A cleaned copy of s as a new C string in its own buffer. */
static const char *dsn_value(struct dsn_buf *b, const char *s, size_t max, unsigned flags)
{
	b->db_len = 0;
	dsn_clean(b, s, max, flags);
	return dsn_buf_str(b);
}

/*
 * Write one logical line s[0..n) (no '\n' in it) to b, `used` octets of
 * the current physical line being taken already: break it at blanks, or
 * hard at a character boundary, into physical lines of at most
 * DSN_LINE_WIDTH octets, each ending in CRLF; later ones start with cont.
 */
static void dsn_fold(struct dsn_buf *b, size_t used, const char *s, size_t n, const char *cont)
{
	size_t contlen = strlen(cont), avail = DSN_LINE_WIDTH - used;

	while (n > avail) {
		size_t cut = avail, end, next;

		while (cut > 0 && s[cut] != ' ')
			cut--;
		end = cut;
		while (end > 0 && s[end - 1] == ' ')
			end--;
		if (end > 0) {
			next = cut;
			while (next < n && s[next] == ' ')
				next++;
		} else {
			end = avail;
			while (end > 0 && ((unsigned char)s[end] & 0xc0) == 0x80)
				end--;
			if (end == 0)
				end = avail;
			next = end;
		}
		dsn_buf_put(b, s, end);
		dsn_buf_puts(b, "\r\n");
		dsn_buf_puts(b, cont);
		s += next;
		n -= next;
		avail = DSN_LINE_WIDTH - contlen;
	}
	dsn_buf_put(b, s, n);
	dsn_buf_puts(b, "\r\n");
}

/* Write a cleaned, possibly multi-line text (lines split by '\n'): the
 * first line after `used` octets, each other on a line of its own that
 * starts with cont; all folded. */
static void dsn_fold_lines(struct dsn_buf *b, size_t used, const char *s, size_t n,
			   const char *cont)
{
	while (n > 0) {
		const char *nl = memchr(s, '\n', n);
		size_t len = nl ? (size_t)(nl - s) : n;

		dsn_fold(b, used, s, len, cont);
		if (nl == NULL)
			break;
		s += len + 1;
		n -= len + 1;
		dsn_buf_puts(b, cont);
		used = strlen(cont);
	}
}

/* RFC 3463 status: class 2/4/5, subject and detail of 1-3 digits. */
static bool dsn_status_ok(const char *s)
{
	size_t k = 2;

	if ((s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return false;
	for (int part = 0; part < 2; part++) {
		size_t start = k;

		while (s[k] >= '0' && s[k] <= '9' && k - start < 3)
			k++;
		if (k == start || (s[k] >= '0' && s[k] <= '9'))
			return false;
		if (part == 0 && s[k++] != '.')
			return false;
	}
	return s[k] == '\0';
}

/* Whether a cleaned diagnostic is an SMTP reply ("550 ...", "550-..."). */
static bool dsn_diag_is_smtp(const char *d)
{
	return d[0] >= '2' && d[0] <= '5' && d[1] >= '0' && d[1] <= '5' &&
	       d[2] >= '0' && d[2] <= '9' && (d[3] == '\0' || d[3] == ' ' || d[3] == '-');
}

/* Scratch buffers for cleaned values, reused for every field. */
struct dsn_ctx {
	const struct dsn_msg *m;
	const char *mta;	/* cleaned reporting MTA */
	bool utf8;		/* parts 1 and 2 hold non-ASCII */
	struct dsn_buf addr, host, diag, line, tmp, xt;
};

/* The words of an action: its Action value and the explanation's verb. */
static const char *dsn_action_name(enum dsn_action a)
{
	switch (a) {
	case DSN_DELAYED: return "delayed";
	case DSN_RELAYED: return "relayed";
	case DSN_DELIVERED: return "delivered";
	default: return "failed";
	}
}

static bool dsn_is_success(enum dsn_action a)
{
	return a == DSN_RELAYED || a == DSN_DELIVERED;
}

/* A cleaned copy of xtext s (NULL: "") decoded (RFC 3461 section 4). */
static const char *dsn_xtext_value(struct dsn_ctx *c, const char *s, size_t n, size_t max,
				   unsigned flags)
{
	c->xt.db_len = 0;
	if (s == NULL || !dsn_buf_reserve(&c->xt, n + 1))
		return "";
	c->xt.db_len = xtext_decode(s, n, c->xt.db_data);
	return dsn_value(&c->tmp, dsn_buf_str(&c->xt), max, flags);
}

static const char *dsn_rcpt_addr(struct dsn_ctx *c, const struct dsn_rcpt *r)
{
	return dsn_value(&c->addr, r->dr_addr, DSN_ADDR_MAX, DSN_C_SPACE | DSN_C_UTF8);
}

/* The explanation's line for one recipient: "<addr>: host H said: ...". */
static void dsn_part1_rcpt(struct dsn_ctx *c, struct dsn_buf *b, const struct dsn_rcpt *r)
{
	const char *host = dsn_value(&c->host, r->dr_remote_addr != NULL ? r->dr_remote_addr :
				     r->dr_remote_mta, DSN_SHORT_MAX, 0);
	const char *diag = dsn_value(&c->diag, r->dr_diag, DSN_DIAG_MAX,
				     DSN_C_SPACE | DSN_C_UTF8 | DSN_C_LINES);
	const char *what = dsn_action_name(r->dr_action);
	struct dsn_buf *l = &c->line;

	l->db_len = 0;
	dsn_buf_putc(l, '<');
	dsn_buf_puts(l, dsn_rcpt_addr(c, r));
	dsn_buf_puts(l, ">: ");
	if (*diag != '\0') {
		if (*host != '\0') {
			dsn_buf_puts(l, "host ");
			dsn_buf_puts(l, host);
			dsn_buf_puts(l, " said: ");
		}
		dsn_buf_put(l, diag, c->diag.db_len);
	} else {
		/* No diagnostic: say what happened instead. */
		dsn_buf_puts(l, "delivery ");
		if (*host != '\0') {
			dsn_buf_puts(l, "via host ");
			dsn_buf_puts(l, host);
			dsn_buf_putc(l, ' ');
		}
		dsn_buf_puts(l, what);
	}
	dsn_buf_puts(b, "\r\n");
	if (!l->db_failed)
		dsn_fold_lines(b, 0, l->db_data, l->db_len, "    ");
}

/* The explanation's lines for the recipients of one kind (failed,
 * success: relayed or delivered, delayed). */
static void dsn_part1_group(struct dsn_ctx *c, struct dsn_buf *b, int kind)
{
	for (unsigned i = 0; i < c->m->dm_nrcpt; i++) {
		enum dsn_action a = c->m->dm_rcpts[i].dr_action;
		int k = a == DSN_DELAYED ? 2 : dsn_is_success(a) ? 1 : 0;

		if (k == kind)
			dsn_part1_rcpt(c, b, &c->m->dm_rcpts[i]);
	}
}

static void dsn_part1(struct dsn_ctx *c, struct dsn_buf *b, unsigned nfailed, unsigned ndelayed,
		      unsigned nsuccess, const char *attached)
{
	dsn_buf_puts(b, "This is the mail system at host ");
	dsn_buf_puts(b, c->mta);
	dsn_buf_puts(b, ".\r\n\r\n");
	if (nfailed > 0) {
		dsn_buf_puts(b, "I'm sorry to have to inform you that your message could not\r\n"
			     "be delivered to one or more recipients.");
		dsn_buf_puts(b, attached);
		dsn_buf_puts(b, "\r\n");
	} else if (ndelayed > 0) {
		dsn_buf_puts(b,
			     "####################################################################\r\n"
			     "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\r\n"
			     "####################################################################\r\n"
			     "\r\n"
			     "Your message could not yet be delivered to one or more recipients.\r\n"
			     "The mail system will keep trying, and will tell you if it gives up.\r\n");
	} else {
		dsn_buf_puts(b, "Your message was successfully delivered to the destination(s)\r\n"
			     "listed below. If the message was delivered to mailbox you will\r\n"
			     "receive no further notifications. Otherwise you may still receive\r\n"
			     "notifications of mail delivery errors from other systems.\r\n");
	}
	dsn_buf_puts(b, "\r\n"
		     "For further assistance, please send mail to postmaster.\r\n"
		     "\r\n"
		     "If you do so, please include this problem report.\r\n"
		     "\r\n"
		     "                   The mail system\r\n");
	dsn_part1_group(c, b, 0);
	if (nsuccess > 0 && nsuccess < c->m->dm_nrcpt)
		dsn_buf_puts(b, "\r\n"
			     "Your message was successfully delivered to the following\r\n"
			     "recipients, or relayed to systems that do not report on delivery:\r\n");
	dsn_part1_group(c, b, 1);
	if (ndelayed > 0 && ndelayed < c->m->dm_nrcpt)
		dsn_buf_puts(b, "\r\n"
			     "The mail system is still trying to deliver to the following\r\n"
			     "recipients; you do not need to resend the message to them.\r\n");
	dsn_part1_group(c, b, 2);
}

/* "Name: value\r\n" unless value is empty. */
static void dsn_field(struct dsn_buf *b, const char *name, const char *value)
{
	if (*value == '\0')
		return;
	dsn_buf_puts(b, name);
	dsn_buf_puts(b, ": ");
	dsn_buf_puts(b, value);
	dsn_buf_puts(b, "\r\n");
}

/* Original-Recipient: the ORCPT's address type and its address decoded. */
static void dsn_part2_orcpt(struct dsn_ctx *c, struct dsn_buf *b, const char *orcpt)
{
	const char *semi = orcpt != NULL ? strchr(orcpt, ';') : NULL;
	const char *v;

	if (semi == NULL)
		return;
	v = dsn_value(&c->host, orcpt, (size_t)(semi - orcpt) < DSN_SHORT_MAX ?
		      (size_t)(semi - orcpt) : DSN_SHORT_MAX, 0);
	if (*v == '\0')
		return;
	dsn_buf_puts(b, "\r\nOriginal-Recipient: ");
	dsn_buf_put(b, v, c->host.db_len);
	dsn_buf_puts(b, ";");
	dsn_buf_puts(b, dsn_xtext_value(c, semi + 1, strlen(semi + 1), DSN_ADDR_MAX,
					c->utf8 ? DSN_C_SPACE | DSN_C_UTF8 : DSN_C_SPACE));
}

static void dsn_part2_rcpt(struct dsn_ctx *c, struct dsn_buf *b, const struct dsn_rcpt *r)
{
	bool delayed = r->dr_action == DSN_DELAYED;
	const char *addr, *v;

	dsn_part2_orcpt(c, b, r->dr_orcpt);
	addr = dsn_rcpt_addr(c, r);
	dsn_buf_puts(b, "\r\nFinal-Recipient: ");
	dsn_buf_puts(b, c->utf8 && dsn_has_utf8(addr) ? "utf-8; " : "rfc822; ");
	dsn_buf_puts(b, addr);
	dsn_buf_puts(b, "\r\nAction: ");
	dsn_buf_puts(b, dsn_action_name(r->dr_action));
	dsn_buf_puts(b, "\r\n");
	v = dsn_value(&c->tmp, r->dr_status, DSN_SHORT_MAX, 0);
	dsn_field(b, "Status", dsn_status_ok(v) ? v : delayed ? "4.0.0" :
		  dsn_is_success(r->dr_action) ? "2.0.0" : "5.0.0");
	v = dsn_value(&c->host, r->dr_remote_mta, DSN_SHORT_MAX, 0);
	if (*v != '\0') {
		dsn_buf_puts(b, "Remote-MTA: dns; ");
		dsn_buf_puts(b, v);
		dsn_buf_puts(b, "\r\n");
	}
	v = dsn_value(&c->diag, r->dr_diag, DSN_DIAG_MAX, DSN_C_SPACE | DSN_C_UTF8 | DSN_C_LINES);
	if (*v != '\0') {
		const char *lead = dsn_diag_is_smtp(v) ? "Diagnostic-Code: smtp; " :
			"Diagnostic-Code: X-Ringmta; ";

		dsn_buf_puts(b, lead);
		dsn_fold_lines(b, strlen(lead), v, c->diag.db_len, " ");
	}
	dsn_field(b, "Last-Attempt-Date", dsn_value(&c->tmp, r->dr_last_attempt, DSN_SHORT_MAX,
						    DSN_C_SPACE));
	dsn_field(b, "X-Ringmta-Bounce-Class", dsn_value(&c->tmp, r->dr_class, DSN_SHORT_MAX, 0));
}

static void dsn_part2(struct dsn_ctx *c, struct dsn_buf *b)
{
	const struct dsn_msg *m = c->m;

	if (m->dm_envid != NULL)
		dsn_field(b, "Original-Envelope-Id",
			  dsn_xtext_value(c, m->dm_envid, strlen(m->dm_envid), DSN_SHORT_MAX, 0));
	dsn_buf_puts(b, "Reporting-MTA: dns; ");
	dsn_buf_puts(b, c->mta);
	dsn_buf_puts(b, "\r\n");
	dsn_field(b, "X-Ringmta-Queue-ID", dsn_value(&c->tmp, m->dm_queue_id, DSN_SHORT_MAX, 0));
	dsn_field(b, "Arrival-Date", dsn_value(&c->tmp, m->dm_arrival, DSN_SHORT_MAX,
					       DSN_C_SPACE));
	for (unsigned i = 0; i < m->dm_nrcpt; i++)
		dsn_part2_rcpt(c, b, &m->dm_rcpts[i]);
}

/* The original header section, normalised (see the top of the file),
 * or with whole the whole message. Sets *eight_r when it holds 8-bit
 * octets. */
static void dsn_part3(const char *s, size_t n, bool whole, struct dsn_buf *b, bool *eight_r)
{
	bool body = false;

	while (n > 0 && !b->db_failed) {
		const char *lf = memchr(s, '\n', n);
		size_t len = lf ? (size_t)(lf - s) : n, out = 0;

		if (len > 0 && s[len - 1] == '\r')
			len--;
		if (len == 0 && !whole)
			break;		/* the empty line ends the header */
		if (len == 0) {
			body = true;
			dsn_buf_puts(b, "\r\n");
		}
		for (size_t i = 0; i < len; i++) {
			unsigned char ch = (unsigned char)s[i];

			if (ch == '\r' || ch == '\0')
				continue;
			if (out == DSN_ORIG_LINE_MAX) {
				dsn_buf_puts(b, body ? "\r\n" : "\r\n ");
				out = body ? 0 : 1;
			}
			if (ch >= 0x80)
				*eight_r = true;
			dsn_buf_putc(b, (char)ch);
			out++;
		}
		if (out > 0)
			dsn_buf_puts(b, "\r\n");
		if (lf == NULL)
			break;
		n -= (size_t)(lf - s) + 1;
		s = lf + 1;
	}
}

static uint64_t dsn_fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; s != NULL && *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

static bool dsn_boundary_clash(const struct dsn_buf *const *bufs, size_t nbufs,
			       const char *b, size_t n)
{
	for (size_t i = 0; i < nbufs; i++) {
		if (bufs[i]->db_len >= n && memmem(bufs[i]->db_data, bufs[i]->db_len, b, n) != NULL)
			return true;
	}
	return false;
}

/* The largest and smallest 16-hex-digit values that follow pfx in bufs;
 * false when there are none. */
static bool dsn_boundary_scan(const struct dsn_buf *const *bufs, size_t nbufs, const char *pfx,
			      uint64_t *min_r, uint64_t *max_r)
{
	size_t plen = strlen(pfx);
	bool found = false;

	*min_r = UINT64_MAX;
	*max_r = 0;
	for (size_t i = 0; i < nbufs; i++) {
		const char *p = bufs[i]->db_data, *end;

		if (p == NULL)
			continue;
		end = p + bufs[i]->db_len;
		while (p != NULL && (size_t)(end - p) >= plen + 16 &&
		       (p = memmem(p, (size_t)(end - p), pfx, plen)) != NULL) {
			uint64_t v = 0;
			size_t k;

			p += plen;
			for (k = 0; k < 16 && (size_t)(end - p) > k; k++) {
				char ch = p[k];

				if (ch >= '0' && ch <= '9')
					v = v << 4 | (uint64_t)(ch - '0');
				else if (ch >= 'a' && ch <= 'f')
					v = v << 4 | (uint64_t)(ch - 'a' + 10);
				else
					break;
			}
			if (k < 16)
				continue;
			found = true;
			*min_r = v < *min_r ? v : *min_r;
			*max_r = v > *max_r ? v : *max_r;
		}
	}
	return found;
}

/*
 * "=_ringmta_{queue id}_{16 hex}", the hex part from the message id. If
 * the content holds it, every string that could clash is the prefix and
 * 16 hex digits somewhere in the content: one past the largest of those
 * (or one below the smallest) cannot clash. So the cost stays linear in
 * the content even when it was written to defeat us.
 */
static void dsn_boundary(const struct dsn_msg *m, const struct dsn_buf *const *bufs,
			 size_t nbufs, char *out, size_t outsz)
{
	char pfx[10 + DSN_QID_MAX + 2];
	size_t q = 0;
	uint64_t v = dsn_fnv1a(m->dm_message_id), lo, hi;
	int len;

	memcpy(pfx, "=_ringmta_", 10);
	for (const char *s = m->dm_queue_id; s != NULL && *s != '\0' && q < DSN_QID_MAX; s++) {
		if ((*s >= '0' && *s <= '9') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= 'a' && *s <= 'z'))
			pfx[10 + q++] = *s;
	}
	pfx[10 + q] = '_';
	pfx[11 + q] = '\0';
	len = snprintf(out, outsz, "%s%016llx", pfx, (unsigned long long)v);
	if (!dsn_boundary_clash(bufs, nbufs, out, (size_t)len) ||
	    !dsn_boundary_scan(bufs, nbufs, pfx, &lo, &hi))
		return;
	if (hi < UINT64_MAX)
		v = hi + 1;
	else if (lo > 0)
		v = lo - 1;
	/* Both ends taken: walk on; at most one step per occurrence. */
	for (;; v++) {
		len = snprintf(out, outsz, "%s%016llx", pfx, (unsigned long long)v);
		if (!dsn_boundary_clash(bufs, nbufs, out, (size_t)len))
			return;
	}
}

/* One part: its delimiter, its header, an empty line and its content. */
static void dsn_put_part(struct dsn_buf *b, const char *boundary, const char *desc,
			 const char *type, bool eight, const struct dsn_buf *content)
{
	dsn_buf_puts(b, "\r\n--");
	dsn_buf_puts(b, boundary);
	dsn_buf_puts(b, "\r\nContent-Description: ");
	dsn_buf_puts(b, desc);
	dsn_buf_puts(b, "\r\nContent-Type: ");
	dsn_buf_puts(b, type);
	dsn_buf_puts(b, eight ? "\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" : "\r\n\r\n");
	dsn_buf_put(b, content->db_data, content->db_len);
}

long dsn_build(const struct dsn_msg *m, char **out_r)
{
	struct dsn_ctx c = { .m = m };
	struct dsn_buf mta = { 0 }, parts[3] = { { 0 } }, out = { 0 }, v = { 0 };
	unsigned nfailed = 0, ndelayed = 0, nsuccess = 0;
	bool eight3 = false, any_failed, full, oom;
	char boundary[80];
	struct dsn_msg empty;

	*out_r = NULL;
	if (m->dm_rcpts == NULL && m->dm_nrcpt != 0) {
		empty = *m;
		empty.dm_nrcpt = 0;
		m = c.m = &empty;
	}
	for (unsigned i = 0; i < m->dm_nrcpt; i++) {
		const struct dsn_rcpt *r = &m->dm_rcpts[i];

		if (r->dr_action == DSN_DELAYED)
			ndelayed++;
		else if (dsn_is_success(r->dr_action))
			nsuccess++;
		else
			nfailed++;
		if (dsn_has_utf8(r->dr_addr) || dsn_has_utf8(r->dr_diag) ||
		    dsn_has_utf8(r->dr_orcpt))
			c.utf8 = true;
	}
	c.mta = dsn_value(&mta, m->dm_reporting_mta, DSN_SHORT_MAX, 0);
	if (*c.mta == '\0')
		c.mta = "localhost";

	any_failed = nfailed > 0;
	full = any_failed && m->dm_orig != NULL;
	if (full)
		dsn_part3(m->dm_orig, m->dm_orig_len, true, &parts[2], &eight3);
	else if (m->dm_orig_headers != NULL)
		dsn_part3(m->dm_orig_headers, m->dm_orig_headers_len, false, &parts[2], &eight3);
	dsn_part1(&c, &parts[0], nfailed, ndelayed, nsuccess,
		  parts[2].db_len == 0 ? "" : full ? " It is attached below." :
		  " Its header is attached below.");
	dsn_part2(&c, &parts[1]);
	dsn_buf_puts(&out, "From: \"Mail Delivery System\" <MAILER-DAEMON@");
	dsn_buf_puts(&out, c.mta);
	dsn_buf_puts(&out, ">\r\n");
	dsn_value(&v, m->dm_to, DSN_ADDR_MAX, DSN_C_SPACE | DSN_C_UTF8);
	if (v.db_len > 0) {
		dsn_buf_puts(&out, "To: <");
		dsn_buf_put(&out, v.db_data, v.db_len);
		dsn_buf_puts(&out, ">\r\n");
	}
	dsn_buf_puts(&out, any_failed ? "Subject: Undelivered Mail Returned to Sender\r\n" :
		     ndelayed > 0 ? "Subject: Delayed Mail (still being retried)\r\n" :
		     "Subject: Successful Mail Delivery Report\r\n");
	dsn_field(&out, "Date", dsn_value(&v, m->dm_date, DSN_SHORT_MAX, DSN_C_SPACE));
	dsn_value(&v, m->dm_message_id, DSN_SHORT_MAX, 0);
	if (v.db_len > 0) {
		dsn_buf_puts(&out, "Message-ID: <");
		dsn_buf_put(&out, v.db_data, v.db_len);
		dsn_buf_puts(&out, ">\r\n");
	}
	dsn_buf_puts(&out, "Auto-Submitted: auto-replied\r\n"
		     "MIME-Version: 1.0\r\n");
	/* Not in the parts, nor in the header above (a planted To: would do
	 * no harm there, but this way it is unique in the message). */
	{
		const struct dsn_buf *bufs[] = { &parts[0], &parts[1], &parts[2], &out };

		dsn_boundary(m, bufs, 4, boundary, sizeof(boundary));
	}
	dsn_buf_puts(&out, "Content-Type: multipart/report; report-type=delivery-status;\r\n"
		     "\tboundary=\"");
	dsn_buf_puts(&out, boundary);
	dsn_buf_puts(&out, "\"\r\n");
	if (c.utf8 || eight3)
		dsn_buf_puts(&out, "Content-Transfer-Encoding: 8bit\r\n");
	dsn_buf_puts(&out, "\r\nThis is a MIME-encapsulated message.\r\n");

	dsn_put_part(&out, boundary, "Notification",
		     c.utf8 ? "text/plain; charset=utf-8" : "text/plain; charset=us-ascii",
		     c.utf8, &parts[0]);
	dsn_put_part(&out, boundary, "Delivery report",
		     c.utf8 ? "message/global-delivery-status" : "message/delivery-status",
		     c.utf8, &parts[1]);
	if (parts[2].db_len > 0 && full)
		dsn_put_part(&out, boundary, "Undelivered Message",
			     eight3 ? "message/global" : "message/rfc822", eight3, &parts[2]);
	else if (parts[2].db_len > 0)
		dsn_put_part(&out, boundary, any_failed ? "Undelivered Message Headers" :
			     ndelayed > 0 ? "Delayed Message Headers" : "Message Headers",
			     eight3 ? "message/global-headers" : "text/rfc822-headers",
			     eight3, &parts[2]);
	dsn_buf_puts(&out, "\r\n--");
	dsn_buf_puts(&out, boundary);
	dsn_buf_puts(&out, "--\r\n");

	oom = out.db_failed || mta.db_failed || v.db_failed || c.addr.db_failed ||
		 c.host.db_failed || c.diag.db_failed || c.line.db_failed || c.tmp.db_failed ||
		 c.xt.db_failed;
	for (int i = 0; i < 3; i++) {
		oom |= parts[i].db_failed;
		dsn_buf_free(&parts[i]);
	}
	dsn_buf_free(&mta);
	dsn_buf_free(&v);
	dsn_buf_free(&c.addr);
	dsn_buf_free(&c.host);
	dsn_buf_free(&c.diag);
	dsn_buf_free(&c.line);
	dsn_buf_free(&c.tmp);
	dsn_buf_free(&c.xt);
	if (oom) {
		dsn_buf_free(&out);
		return -1;
	}
	*out_r = out.db_data;
	return (long)out.db_len;
}

size_t dsn_header_len(const char *msg, size_t len)
{
	const char *p;

	if (len >= 2 && msg[0] == '\r' && msg[1] == '\n')
		return 0;
	p = len >= 4 ? memmem(msg, len, "\r\n\r\n", 4) : NULL;
	return p ? (size_t)(p - msg) + 2 : len;
}
