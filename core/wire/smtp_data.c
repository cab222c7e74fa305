/*
 * smtp_data.c: the DATA / BDAT body decoder; see smtp_data.h.
 *
 * Two layers. The framer (smtp_data_feed, smtp_data_scan) walks the input
 * 64 octets at a time (smtp_scan.h's masks: every line end of a block at
 * once), the last 64 or fewer a line at a time with memchr(). It decides
 * which octets belong to the message (dropping stuffed dots and the
 * terminator) and flags the line structure: bare CR, bare LF, long lines.
 * Each run of message octets then goes to smtp_data_out(), which looks at
 * what the message says (size, 8-bit octets, Date: and Message-ID:) and
 * passes the run to emit unless the message is already too big. A piece
 * without stuffed dots is one run and one emit.
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
#include "core/wire/smtp_scan.h"

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

/* Finding the field of smtp_data_want_field(): a second, independent
 * tracker over the same header octets (the names above are fixed and
 * short; this one is the operator's). */
enum smtp_data_fld {
	SMTP_DATA_FLD_OFF = 0,	/* nothing looked for, or done looking */
	SMTP_DATA_FLD_BOL,	/* at the start of a header line */
	SMTP_DATA_FLD_BOL_CR,	/* the line so far is a CR */
	SMTP_DATA_FLD_NAME,	/* field_pos octets of the name matched */
	SMTP_DATA_FLD_WSP,	/* the name, then WSP: ':' expected */
	SMTP_DATA_FLD_SKIP,	/* another field's line */
	SMTP_DATA_FLD_IN,	/* inside the field found */
	SMTP_DATA_FLD_IN_BOL,	/* the field found, after one of its LFs */
	SMTP_DATA_FLD_FOUND,	/* the field found and ended (field_len) */
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

void smtp_data_want_field(struct smtp_data *d, const char *name)
{
	size_t n = name != NULL ? strlen(name) : 0;

	d->field_name = n > 0 && n <= UINT8_MAX ? name : NULL;
	d->field_name_len = d->field_name != NULL ? (uint8_t)n : 0;
	d->field_state = d->field_name != NULL ? SMTP_DATA_FLD_BOL : SMTP_DATA_FLD_OFF;
	d->field_pos = 0;
	d->field_off = 0;
	d->field_len = 0;
}

/* The field found ends before the octet at message offset at. */
static uint8_t smtp_data_field_end(struct smtp_data *d, uint64_t at)
{
	uint64_t len = at - d->field_off;

	d->field_len = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
	return SMTP_DATA_FLD_FOUND;
}

/* One octet at message offset at for the field tracker. */
static uint8_t smtp_data_field_octet(struct smtp_data *d, uint8_t st, unsigned char ch,
				     uint64_t at)
{
	switch (st) {
	case SMTP_DATA_FLD_BOL:
		if (ch == '\r')
			return SMTP_DATA_FLD_BOL_CR;
		if (ch == '\n')
			return SMTP_DATA_FLD_OFF;	/* end of the header section */
		if (smtp_data_lower(ch) != smtp_data_lower((unsigned char)d->field_name[0]))
			return SMTP_DATA_FLD_SKIP;
		d->field_off = at;
		d->field_pos = 1;
		return SMTP_DATA_FLD_NAME;
	case SMTP_DATA_FLD_BOL_CR:
		return ch == '\n' ? SMTP_DATA_FLD_OFF : SMTP_DATA_FLD_SKIP;
	case SMTP_DATA_FLD_NAME:
		if (d->field_pos < d->field_name_len) {
			if (smtp_data_lower(ch) !=
			    smtp_data_lower((unsigned char)d->field_name[d->field_pos]))
				return ch == '\n' ? SMTP_DATA_FLD_BOL : SMTP_DATA_FLD_SKIP;
			d->field_pos++;
			return SMTP_DATA_FLD_NAME;
		}
		__attribute__((fallthrough));
	case SMTP_DATA_FLD_WSP:
		if (ch == ':')
			return SMTP_DATA_FLD_IN;
		if (ch == ' ' || ch == '\t')
			return SMTP_DATA_FLD_WSP;
		return ch == '\n' ? SMTP_DATA_FLD_BOL : SMTP_DATA_FLD_SKIP;
	case SMTP_DATA_FLD_IN:
		return ch == '\n' ? SMTP_DATA_FLD_IN_BOL : SMTP_DATA_FLD_IN;
	case SMTP_DATA_FLD_IN_BOL:
		/* A folded line goes on with the field; anything else ends it. */
		if (ch == ' ' || ch == '\t')
			return SMTP_DATA_FLD_IN;
		return smtp_data_field_end(d, at);
	default:
		return st;
	}
}

/* Feed message octets p[0..n), the first at message offset at, to the
 * field tracker. Lines of other fields are skipped a line at a time. */
static void smtp_data_field_scan(struct smtp_data *d, const char *p, size_t n, uint64_t at)
{
	const char *start = p, *end = p + n;
	uint8_t st = d->field_state;

	while (p < end && st != SMTP_DATA_FLD_OFF && st != SMTP_DATA_FLD_FOUND) {
		if (st == SMTP_DATA_FLD_SKIP || st == SMTP_DATA_FLD_IN) {
			const char *lf = memchr(p, '\n', (size_t)(end - p));

			if (lf == NULL)
				break;
			p = lf + 1;
			st = st == SMTP_DATA_FLD_IN ? SMTP_DATA_FLD_IN_BOL : SMTP_DATA_FLD_BOL;
			continue;
		}
		st = smtp_data_field_octet(d, st, (unsigned char)*p, at + (uint64_t)(p - start));
		p++;
	}
	d->field_state = st;
}

bool smtp_data_field(const struct smtp_data *d, uint64_t *off_r, uint32_t *len_r)
{
	uint64_t len;

	switch (d->field_state) {
	case SMTP_DATA_FLD_FOUND:
		*off_r = d->field_off;
		*len_r = d->field_len;
		return true;
	case SMTP_DATA_FLD_IN:
	case SMTP_DATA_FLD_IN_BOL:
		/* The message ended inside the field. */
		len = d->size - d->field_off;
		*off_r = d->field_off;
		*len_r = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
		return true;
	default:
		return false;
	}
}

int smtp_data_field_value(const char *f, size_t len, char *out, size_t outlen)
{
	const char *colon = memchr(f, ':', len), *end = f + len;
	size_t n = 0;

	if (colon == NULL || outlen == 0)
		return -1;
	for (const char *p = colon + 1; p < end; p++) {
		if (*p == '\r' || *p == '\n')
			continue;	/* unfold */
		if (n == 0 && (*p == ' ' || *p == '\t'))
			continue;
		if (n + 1 >= outlen)
			return -1;
		out[n++] = *p;
	}
	while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\t'))
		n--;
	out[n] = '\0';
	return (int)n;
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
	if (d->field_state != SMTP_DATA_FLD_OFF && d->field_state != SMTP_DATA_FLD_FOUND)
		smtp_data_field_scan(d, p, n, d->size - n);
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

/* The lines of octets [0, n) of a block whose LFs are lf (none at or
 * past n): the first line end closes the line carried in, the lines
 * between are shorter than a block, the octets after the last LF start
 * the next line. */
static inline void smtp_data_block_lines(struct smtp_data *d, uint64_t lf, unsigned n)
{
	if (lf == 0) {
		smtp_data_line_add(d, n);
		return;
	}
	smtp_data_line_add(d, (unsigned)__builtin_ctzll(lf) + 1);
	d->line_len = n - 1 - (63 - (unsigned)__builtin_clzll(lf));
}

typedef void smtp_data_block_fn(const char *p, struct smtp_scan_masks *m);

/*
 * From buf[i], 64 octets at a time while more than 64 remain (so that the
 * octet after a block can be read), for as long as no line starts with a
 * dot in DOT mode. Returns the position reached: with *dot_r, that of a
 * dot that starts a line; otherwise *prev_cr says whether the octet
 * before it is a CR (whose LF may be the next octet). Inlined into each
 * caller below with its block function (the AVX2 one in an AVX2 body).
 */
static inline __attribute__((always_inline)) size_t
smtp_data_scan_blocks_with(smtp_data_block_fn *block, struct smtp_data *d, const char *buf,
			   size_t i, size_t len, bool *dot_r, bool *prev_cr)
{
	bool dots = d->mode == SMTP_DATA_DOT;
	uint64_t cr_in = 0;	/* bit 0: the octet before the block is a CR */
	uint64_t bol_in = 0;	/* bit 0: the block starts a line after CRLF */

	while (len - i > SMTP_SCAN_BLOCK) {
		struct smtp_scan_masks m;
		uint64_t crlf, next_lf, bare, keep = ~0ull;
		unsigned n = SMTP_SCAN_BLOCK;

		block(buf + i, &m);
		crlf = m.lf & (m.cr << 1 | cr_in);	/* LFs that end a CRLF */
		if (dots && ((crlf << 1 | bol_in) & m.dot) != 0) {
			/* Only what comes before the dot is looked at here:
			 * after a terminator come the next commands. */
			n = (unsigned)__builtin_ctzll((crlf << 1 | bol_in) & m.dot);
			keep = (1ull << n) - 1;	/* n <= 63: the shift is defined */
		}
		next_lf = (uint64_t)(buf[i + SMTP_SCAN_BLOCK] == '\n') << 63;
		bare = (m.lf & ~crlf) | (m.cr & ~(m.lf >> 1 | next_lf));
		if ((bare & keep & m.lf) != 0)
			d->flags |= SMTP_DATA_F_BARE_LF;
		if ((bare & keep & m.cr) != 0)
			d->flags |= SMTP_DATA_F_BARE_CR;
		smtp_data_block_lines(d, m.lf & keep, n);
		if (n < SMTP_SCAN_BLOCK) {
			*dot_r = true;
			return i + n;
		}
		cr_in = m.cr >> 63;
		bol_in = crlf >> 63;
		i += SMTP_SCAN_BLOCK;
	}
	*dot_r = dots && bol_in && buf[i] == '.';
	*prev_cr = cr_in != 0;
	return i;
}

#ifdef SMTP_SCAN_AVX2
__attribute__((target("avx2")))
static size_t smtp_data_scan_blocks_avx2(struct smtp_data *d, const char *buf, size_t i, size_t len,
					 bool *dot_r, bool *prev_cr)
{
	return smtp_data_scan_blocks_with(smtp_scan_block_avx2, d, buf, i, len, dot_r, prev_cr);
}
#endif

static size_t smtp_data_scan_blocks(struct smtp_data *d, const char *buf, size_t i, size_t len,
				    bool *dot_r, bool *prev_cr)
{
#ifdef SMTP_SCAN_AVX2
	if (__builtin_cpu_supports("avx2"))
		return smtp_data_scan_blocks_avx2(d, buf, i, len, dot_r, prev_cr);
#endif
	return smtp_data_scan_blocks_with(smtp_scan_block, d, buf, i, len, dot_r, prev_cr);
}

/*
 * The fast path: from buf[i], inside a line whose previous octet was not
 * CR, scan whole lines until the end of the buffer or, in DOT mode, a line
 * that starts with a dot. Returns the position reached and leaves
 * d->state at TEXT, CR or BOL accordingly. Blocks first; the last 64
 * octets or fewer a line at a time.
 */
static size_t smtp_data_scan(struct smtp_data *d, const char *buf, size_t i, size_t len)
{
	bool dots = d->mode == SMTP_DATA_DOT;
	bool prev_cr = false;	/* buf[i - 1] is a CR the blocks left open */
	bool dot = false;

	i = smtp_data_scan_blocks(d, buf, i, len, &dot, &prev_cr);
	if (dot) {
		d->state = SMTP_DATA_ST_BOL;
		return i;
	}
	while (i < len) {
		const char *lf = memchr(buf + i, '\n', len - i);
		size_t k;
		bool cr_before, crlf;

		if (lf == NULL) {
			/* A CR in the last octet waits for the next piece. */
			bool cr_last = buf[len - 1] == '\r';

			smtp_data_bare_cr(d, buf + i, len - i - cr_last);
			smtp_data_line_add(d, len - i);
			d->state = cr_last ? SMTP_DATA_ST_CR : SMTP_DATA_ST_TEXT;
			return len;
		}
		k = (size_t)(lf - buf);
		cr_before = k > i && buf[k - 1] == '\r';
		crlf = cr_before || (k == i && prev_cr);
		prev_cr = false;
		smtp_data_bare_cr(d, buf + i, k - i - cr_before);
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
