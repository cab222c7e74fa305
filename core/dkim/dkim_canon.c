/*
 * dkim_canon: RFC 6376 3.4 canonicalization, simple and relaxed, of one
 * header field (dkim_canon_header) and of a body streamed in pieces
 * (dkim_body_canon_*). No I/O, no allocation.
 *
 * The body canonicalizer hands its output to emit() in runs that point
 * into the piece it was fed (or into static CRLF/SP constants), so a
 * typical line costs no call at all: only held-back bytes (empty lines
 * that may turn out to be trailing, collapsed whitespace, a CR at the end
 * of a piece) end a run. It never looks back into an earlier piece.
 */
#include "core/dkim/dkim.h"

#include <stdint.h>
#include <string.h>

#define DKIM_NONE SIZE_MAX

static const char dkim_crlfs[] =
	"\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n"
	"\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n";

/* Bytes that end a run of plain bytes in relaxed mode. */
static const bool dkim_relaxed_special[256] = { ['\t'] = true, [' '] = true, ['\r'] = true };

static inline int dkim_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static inline unsigned char dkim_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

long dkim_canon_header(enum dkim_canon c, const char *field, size_t len, char *out, size_t cap)
{
	size_t i = 0, o = 0, colon, vstart;
	const char *p;
	int sp = 0;

	if (c == DKIM_CANON_SIMPLE) {
		if (len > cap)
			return -1;
		memcpy(out, field, len);
		return (long)len;
	}
	p = memchr(field, ':', len);
	colon = p ? (size_t)(p - field) : len;
	/* The name, lower-cased, without WSP (or folding) before the colon. */
	for (i = 0; i < colon; i++) {
		unsigned char ch = (unsigned char)field[i];

		if (dkim_wsp(ch) || ch == '\r' || ch == '\n')
			continue;
		if (o >= cap)
			return -1;
		out[o++] = (char)dkim_lower(ch);
	}
	if (colon == len)
		return (long)o;
	if (o >= cap)
		return -1;
	out[o++] = ':';
	vstart = o;
	/* The value: unfolded, WSP runs as one SP, none at either end. */
	for (i = colon + 1; i < len; i++) {
		unsigned char ch = (unsigned char)field[i];

		if (ch == '\r' && i + 1 < len && field[i + 1] == '\n') {
			i++;
			continue;
		}
		if (dkim_wsp(ch)) {
			sp = 1;
			continue;
		}
		if (sp && o > vstart) {
			if (o >= cap)
				return -1;
			out[o++] = ' ';
		}
		sp = 0;
		if (o >= cap)
			return -1;
		out[o++] = (char)ch;
	}
	return (long)o;
}

void dkim_body_canon_init(struct dkim_body_canon *b, enum dkim_canon c,
			  void (*emit)(void *ctx, const void *p, size_t n), void *ctx)
{
	memset(b, 0, sizeof(*b));
	b->c = c;
	b->line_empty = true;
	b->emit = emit;
	b->ctx = ctx;
}

static void dkim_body_emit(struct dkim_body_canon *b, const char *p, size_t n)
{
	if (n == 0)
		return;
	b->any = true;
	b->emit(b->ctx, p, n);
}

/* The empty lines held back, now known not to be trailing. */
static void dkim_body_blanks(struct dkim_body_canon *b)
{
	while (b->blank_lines > 0) {
		uint64_t k = b->blank_lines;

		if (k > (sizeof(dkim_crlfs) - 1) / 2)
			k = (sizeof(dkim_crlfs) - 1) / 2;
		dkim_body_emit(b, dkim_crlfs, (size_t)k * 2);
		b->blank_lines -= k;
	}
}

/*
 * The feed loop's run: bytes [run, held or i) of the piece are output
 * ready to go; [held, i), when held is set, are literal empty lines
 * (CRLFs) counted in blank_lines, still held back. Emitting the run makes
 * those empty lines external: from then on they come from dkim_crlfs.
 */
struct dkim_run {
	const char *p;
	size_t run, held;
};

static void dkim_run_flush(struct dkim_body_canon *b, struct dkim_run *r, size_t i)
{
	size_t end = r->held != DKIM_NONE ? r->held : i;

	if (end > r->run)
		dkim_body_emit(b, r->p + r->run, end - r->run);
	r->held = DKIM_NONE;
	r->run = i;
}

/* Content starts on a line that had none: held empty lines go out first,
 * then (relaxed) the one SP standing for held whitespace. */
static void dkim_run_content(struct dkim_body_canon *b, struct dkim_run *r, size_t i)
{
	if (b->line_empty) {
		b->line_empty = false;
		if (b->blank_lines > 0) {
			if (r->held != DKIM_NONE && !b->wsp) {
				b->blank_lines = 0;	/* literal, in the run */
				r->held = DKIM_NONE;
			} else {
				dkim_run_flush(b, r, i);
				dkim_body_blanks(b);
			}
		}
	}
	if (b->wsp) {
		dkim_run_flush(b, r, i);
		dkim_body_emit(b, " ", 1);
		b->wsp = false;
	}
}

/* A line ends with the CRLF at [i, next). An empty one is held back:
 * the first of a series literally in the run, later ones after an
 * emitted run from dkim_crlfs. */
static void dkim_run_eol(struct dkim_body_canon *b, struct dkim_run *r, size_t i, size_t next)
{
	b->wsp = false;		/* WSP at a line's end is dropped */
	if (b->line_empty) {
		if (b->blank_lines == 0) {
			r->held = i;
		} else if (r->held == DKIM_NONE) {
			dkim_run_flush(b, r, i);
			r->run = next;
		}
		b->blank_lines++;
	}
	b->line_empty = true;
}

/* The CR held from the previous piece, resolved by the first byte of
 * this one. Returns how many bytes of p it used. */
static size_t dkim_body_cr(struct dkim_body_canon *b, struct dkim_run *r, const char *p)
{
	b->cr = false;
	if (p[0] == '\n') {
		b->wsp = false;
		if (b->line_empty)
			b->blank_lines++;
		else
			dkim_body_emit(b, "\r\n", 2);
		b->line_empty = true;
		r->run = 1;
		return 1;
	}
	/* A lone CR: content. */
	dkim_run_content(b, r, 0);
	dkim_body_emit(b, "\r", 1);
	return 0;
}

void dkim_body_canon_feed(struct dkim_body_canon *b, const char *p, size_t n)
{
	struct dkim_run r = { p, 0, DKIM_NONE };
	bool relaxed = b->c == DKIM_CANON_RELAXED;
	size_t i = 0;

	if (n == 0)
		return;
	if (b->cr)
		i = dkim_body_cr(b, &r, p);
	while (i < n) {
		unsigned char ch = (unsigned char)p[i];

		if (ch == '\r') {
			if (i + 1 == n) {
				dkim_run_flush(b, &r, i);
				r.run = n;
				b->cr = true;
				return;
			}
			if (p[i + 1] == '\n') {
				dkim_run_eol(b, &r, i, i + 2);
				i += 2;
				continue;
			}
			/* A lone CR is content. */
		} else if (relaxed && dkim_wsp(ch)) {
			size_t j = i + 1;

			while (j < n && dkim_wsp((unsigned char)p[j]))
				j++;
			if (ch == ' ' && j == i + 1 && j < n && p[j] != '\r' &&
			    !b->line_empty && !b->wsp) {
				i = j;	/* one SP inside a line: as is */
				continue;
			}
			dkim_run_flush(b, &r, i);
			r.run = j;
			b->wsp = true;
			i = j;
			continue;
		}
		if (b->line_empty || b->wsp)
			dkim_run_content(b, &r, i);
		/* Inside a line: skip to the next byte that matters. */
		i++;
		if (relaxed) {
			/* Single SPs between other bytes stay in the run. */
			while (i < n) {
				unsigned char x = (unsigned char)p[i];

				if (!dkim_relaxed_special[x]) {
					i++;
				} else if (x == ' ' && i + 1 < n &&
					   !dkim_relaxed_special[(unsigned char)p[i + 1]]) {
					i += 2;
				} else {
					break;
				}
			}
		} else {
			const char *q = memchr(p + i, '\r', n - i);

			i = q ? (size_t)(q - p) : n;
		}
	}
	dkim_run_flush(b, &r, n);
}

/*
 * A last line without CRLF gets one. Its whitespace is not "at the end of
 * a line" (no CRLF follows it), so relaxed keeps it as one SP, and a last
 * line of only whitespace is not empty: RFC 6376 3.4.4's steps in order,
 * as dkimpy applies them. (OpenDKIM 2.11 differs there: it drops such a
 * line, and after "x " adds no CRLF at all. Mail through SMTP DATA always
 * ends in CRLF; only BDAT can end otherwise.)
 */
void dkim_body_canon_finish(struct dkim_body_canon *b)
{
	if (b->cr || b->wsp) {
		if (b->line_empty) {
			b->line_empty = false;
			dkim_body_blanks(b);
		}
		if (b->wsp)
			dkim_body_emit(b, " ", 1);
		if (b->cr)
			dkim_body_emit(b, "\r", 1);
		b->cr = b->wsp = false;
	}
	if (!b->line_empty)
		dkim_body_emit(b, "\r\n", 2);
	b->blank_lines = 0;
	b->line_empty = true;
	if (!b->any && b->c == DKIM_CANON_SIMPLE)
		dkim_body_emit(b, "\r\n", 2);
}
