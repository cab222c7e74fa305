/*
 * smtp_data.c: the DATA / BDAT body decoder; see smtp_data.h.
 *
 * Two layers. The framer (smtp_data_feed, smtp_data_scan) walks the input
 * a line at a time with memchr(), decides which octets belong to the
 * message (dropping stuffed dots and the terminator) and flags the line
 * structure: bare CR, bare LF, long lines. Each run of message octets then
 * goes to smtp_data_out(), which looks at what the message says (size,
 * 8-bit octets, Date: and Message-ID:) and passes the run to emit unless
 * the message is already too big. A piece without stuffed dots is one run
 * and one emit.
 *
 * Choices the header leaves open:
 *   - Only a dot right after CRLF is special. After a bare LF a dot is
 *     text; the message is refused for the bare LF anyway.
 *   - A line is counted in unstuffed octets up to and including its LF,
 *     so "." + 998 octets + CRLF (1001 on the wire) is a 1000-octet line
 *     and passes. Any LF, bare or not, ends a line for this count.
 *   - d->size counts every unstuffed octet, also after F_TOO_BIG, so the
 *     session can log how big a refused message really was. Emitting stops
 *     with the run that would pass max_size; that run is not emitted.
 *   - The header tracker reads the unstuffed message, so a stuffed line
 *     "..Date:" is not a Date field but ".Date:" (unstuffed "Date:") is.
 *   - One octet may be emitted from static storage rather than the input:
 *     when a piece ends in "<CRLF>.\r" the CR is held back (it might be the
 *     terminator's), and if the next piece does not start with LF that CR
 *     is message content (a bare CR) that is no longer in any buffer.
 */
#include "core/wire/smtp_data.h"

#include <string.h>

enum smtp_data_state {
	SMTP_DATA_ST_BOL = 0,	/* after CRLF (or the DATA line): a dot is special */
	SMTP_DATA_ST_TEXT,	/* inside a line; the last octet was not CR */
	SMTP_DATA_ST_CR,	/* inside a line; the last octet was CR, already out */
	SMTP_DATA_ST_DOT,	/* BOL, then "."; the dot is held back */
	SMTP_DATA_ST_DOT_CR,	/* BOL, then ".\r"; both held back */
	SMTP_DATA_ST_END,	/* the terminator was consumed */
};

/* Header tracking: which part of a header line we are in. */
enum smtp_data_hdr {
	SMTP_DATA_H_START = 0,	/* at the start of a line */
	SMTP_DATA_H_START_CR,	/* the line so far is a CR: maybe the empty line */
	SMTP_DATA_H_NAME,	/* matching smtp_data_names[hdr_pos >> 4] */
	SMTP_DATA_H_WSP,	/* name matched, skipping WSP before ':' */
	SMTP_DATA_H_SKIP,	/* nothing more of interest on this line */
	SMTP_DATA_H_DONE,	/* the header section has ended */
};

/* Fields we look for; hdr_pos holds the index << 4 | octets matched. */
static const struct smtp_data_name {
	char name[11];		/* lower case */
	uint8_t len;
	uint32_t flag;
} smtp_data_names[] = {
	{ "date", 4, SMTP_DATA_F_HAS_DATE },
	{ "message-id", 10, SMTP_DATA_F_HAS_MSGID },
	{ "received", 8, 0 },		/* counted in hops */
};

/* The one octet that may be emitted from outside the input (see above). */
static const char smtp_data_cr = '\r';

struct smtp_data_sink {
	smtp_data_emit_fn *emit;
	void *ctx;
};

void smtp_data_init(struct smtp_data *d, enum smtp_data_mode mode, uint64_t max_size)
{
	memset(d, 0, sizeof(*d));
	d->max_size = max_size;
	d->mode = (uint8_t)mode;
	d->state = SMTP_DATA_ST_BOL;
	d->hdr_state = SMTP_DATA_H_START;
}

static inline unsigned char smtp_data_lower(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') ? (unsigned char)(ch + ('a' - 'A')) : ch;
}

/* Whether any octet has the high bit set; eight at a time, since 7-bit
 * mail is scanned to its end. */
static bool smtp_data_has_8bit(const char *p, size_t n)
{
	const uint64_t high = 0x8080808080808080ull;
	size_t i = 0;

	for (; i + 32 <= n; i += 32) {
		uint64_t w[4];

		memcpy(w, p + i, sizeof(w));
		if ((w[0] | w[1] | w[2] | w[3]) & high)
			return true;
	}
	for (; i < n; i++) {
		if ((unsigned char)p[i] & 0x80)
			return true;
	}
	return false;
}

/* One octet of a header line that is not LF; returns the new state. */
static uint8_t smtp_data_hdr_octet(struct smtp_data *d, uint8_t st, unsigned char ch)
{
	const struct smtp_data_name *nm = &smtp_data_names[d->hdr_pos >> 4];
	unsigned matched = d->hdr_pos & 0x0f;

	switch (st) {
	case SMTP_DATA_H_START:
		if (ch == '\r')
			return SMTP_DATA_H_START_CR;
		for (unsigned i = 0; i < sizeof(smtp_data_names) / sizeof(smtp_data_names[0]); i++) {
			if (smtp_data_lower(ch) == (unsigned char)smtp_data_names[i].name[0]) {
				d->hdr_pos = (uint8_t)(i << 4 | 1);
				return SMTP_DATA_H_NAME;
			}
		}
		return SMTP_DATA_H_SKIP;
	case SMTP_DATA_H_NAME:
		if (matched < nm->len) {
			if (smtp_data_lower(ch) != (unsigned char)nm->name[matched])
				return SMTP_DATA_H_SKIP;
			d->hdr_pos++;
			return SMTP_DATA_H_NAME;
		}
		/* The whole name matched: what follows is WSP or ':'. */
		__attribute__((fallthrough));
	case SMTP_DATA_H_WSP:
		if (ch == ':') {
			d->flags |= nm->flag;
			if (nm->flag == 0 && d->hops < UINT16_MAX)
				d->hops++;
			return SMTP_DATA_H_SKIP;
		}
		return (ch == ' ' || ch == '\t') ? SMTP_DATA_H_WSP : SMTP_DATA_H_SKIP;
	default:
		/* START_CR then anything but LF: a line that is no field. */
		return SMTP_DATA_H_SKIP;
	}
}

/* Feed message octets to the header tracker until the empty line. */
static void smtp_data_headers(struct smtp_data *d, const char *p, size_t n)
{
	const char *end = p + n;
	uint8_t st = d->hdr_state;

	while (p < end && st != SMTP_DATA_H_DONE) {
		unsigned char ch;

		if (st == SMTP_DATA_H_SKIP) {
			const char *lf = memchr(p, '\n', (size_t)(end - p));

			if (lf == NULL)
				break;
			p = lf + 1;
			st = SMTP_DATA_H_START;
			continue;
		}
		ch = (unsigned char)*p++;
		if (ch == '\n') {
			/* An empty line ("\r\n", or a bare "\n") ends the header. */
			st = (st == SMTP_DATA_H_START || st == SMTP_DATA_H_START_CR)
				? SMTP_DATA_H_DONE : SMTP_DATA_H_START;
			continue;
		}
		st = smtp_data_hdr_octet(d, st, ch);
	}
	d->hdr_state = st;
}

/* A run of message octets: account for it and emit it unless too big. */
static void smtp_data_out(struct smtp_data *d, const char *p, size_t n,
			  const struct smtp_data_sink *sink)
{
	if (n == 0)
		return;
	d->size += n;
	if (!(d->flags & SMTP_DATA_F_8BIT) && smtp_data_has_8bit(p, n))
		d->flags |= SMTP_DATA_F_8BIT;
	if (d->hdr_state != SMTP_DATA_H_DONE)
		smtp_data_headers(d, p, n);
	if (d->flags & SMTP_DATA_F_TOO_BIG)
		return;
	if (d->max_size != 0 && d->size > d->max_size) {
		d->flags |= SMTP_DATA_F_TOO_BIG;
		return;
	}
	sink->emit(sink->ctx, p, n);
}

/* Add n octets to the current line; the count saturates just over the
 * limit, since only "too long" matters. */
static inline void smtp_data_line_add(struct smtp_data *d, size_t n)
{
	uint64_t len = (uint64_t)d->line_len + n;

	if (len > SMTP_DATA_LINE_MAX) {
		d->flags |= SMTP_DATA_F_LONG_LINE;
		len = SMTP_DATA_LINE_MAX + 1;
	}
	d->line_len = (uint32_t)len;
}

/* p[0..n) holds no line end, so any CR in it is bare. */
static inline void smtp_data_bare_cr(struct smtp_data *d, const char *p, size_t n)
{
	if (!(d->flags & SMTP_DATA_F_BARE_CR) && n != 0 && memchr(p, '\r', n) != NULL)
		d->flags |= SMTP_DATA_F_BARE_CR;
}

/*
 * The fast path: from buf[i], inside a line whose previous octet was not
 * CR, scan whole lines until the end of the buffer or, in DOT mode, a line
 * that starts with a dot. Returns the position reached and leaves
 * d->state at TEXT, CR or BOL accordingly.
 */
static size_t smtp_data_scan(struct smtp_data *d, const char *buf, size_t i, size_t len)
{
	bool dots = d->mode == SMTP_DATA_DOT;

	while (i < len) {
		const char *lf = memchr(buf + i, '\n', len - i);
		size_t k;
		bool crlf;

		if (lf == NULL) {
			/* A CR in the last octet waits for the next piece. */
			bool cr_last = buf[len - 1] == '\r';

			smtp_data_bare_cr(d, buf + i, len - i - cr_last);
			smtp_data_line_add(d, len - i);
			d->state = cr_last ? SMTP_DATA_ST_CR : SMTP_DATA_ST_TEXT;
			return len;
		}
		k = (size_t)(lf - buf);
		crlf = k > i && buf[k - 1] == '\r';
		smtp_data_bare_cr(d, buf + i, k - i - crlf);
		smtp_data_line_add(d, k - i + 1);
		d->line_len = 0;
		i = k + 1;
		if (!crlf) {
			d->flags |= SMTP_DATA_F_BARE_LF;
		} else if (i == len || (dots && buf[i] == '.')) {
			d->state = SMTP_DATA_ST_BOL;
			return i;
		}
	}
	d->state = SMTP_DATA_ST_TEXT;
	return i;
}

size_t smtp_data_feed(struct smtp_data *d, const char *buf, size_t len,
		      smtp_data_emit_fn *emit, void *ctx, bool *done_r)
{
	const struct smtp_data_sink sink = { emit, ctx };
	size_t i = 0;
	size_t run = 0;		/* first octet not yet passed to smtp_data_out */

	*done_r = false;
	if (d->state == SMTP_DATA_ST_END) {
		*done_r = true;
		return 0;
	}
	if (len == 0)
		return 0;
	while (i < len) {
		switch (d->state) {
		case SMTP_DATA_ST_BOL:
			if (d->mode == SMTP_DATA_DOT && buf[i] == '.') {
				/* Stuffing or the terminator: dropped either way. */
				smtp_data_out(d, buf + run, i - run, &sink);
				run = ++i;
				d->state = SMTP_DATA_ST_DOT;
				break;
			}
			i = smtp_data_scan(d, buf, i, len);
			break;
		case SMTP_DATA_ST_TEXT:
			i = smtp_data_scan(d, buf, i, len);
			break;
		case SMTP_DATA_ST_CR:
			if (buf[i] == '\n') {
				smtp_data_line_add(d, 1);
				d->line_len = 0;
				i++;
				d->state = SMTP_DATA_ST_BOL;
			} else {
				d->flags |= SMTP_DATA_F_BARE_CR;
				d->state = SMTP_DATA_ST_TEXT;
			}
			break;
		case SMTP_DATA_ST_DOT:
			if (buf[i] == '\r') {
				run = ++i;
				d->state = SMTP_DATA_ST_DOT_CR;
			} else {
				d->state = SMTP_DATA_ST_TEXT;
			}
			break;
		case SMTP_DATA_ST_DOT_CR:
			if (buf[i] == '\n') {
				/* Everything before the dot is already out. */
				d->state = SMTP_DATA_ST_END;
				*done_r = true;
				return i + 1;
			}
			/* The dot was stuffing; the held-back CR is a bare CR and
			 * message content. */
			d->flags |= SMTP_DATA_F_BARE_CR;
			if (i > 0)
				run = i - 1;
			else
				smtp_data_out(d, &smtp_data_cr, 1, &sink);
			smtp_data_line_add(d, 1);
			d->state = SMTP_DATA_ST_TEXT;
			break;
		default:
			/* SMTP_DATA_ST_END is handled above; nothing else exists. */
			return i;
		}
	}
	smtp_data_out(d, buf + run, len - run, &sink);
	return len;
}

uint32_t smtp_data_finish(struct smtp_data *d)
{
	if (d->mode == SMTP_DATA_RAW) {
		/* No next chunk will bring the LF. */
		if (d->state == SMTP_DATA_ST_CR)
			d->flags |= SMTP_DATA_F_BARE_CR;
		d->state = SMTP_DATA_ST_BOL;
		d->line_len = 0;
	}
	return d->flags;
}

const char *smtp_data_refusal(uint32_t flags)
{
	if (flags & (SMTP_DATA_F_BARE_CR | SMTP_DATA_F_BARE_LF))
		return "550 5.6.0 Message refused: bare CR or LF in message "
		       "(only CRLF line endings are allowed)";
	if (flags & SMTP_DATA_F_TOO_BIG)
		return "552 5.3.4 Message size exceeds fixed maximum message size";
	if (flags & SMTP_DATA_F_LONG_LINE)
		return "500 5.5.2 Message refused: line longer than 1000 octets";
	return NULL;
}
