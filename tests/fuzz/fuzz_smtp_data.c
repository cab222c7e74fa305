/*
 * fuzz_smtp_data: libFuzzer target for the DATA / BDAT body decoder.
 *
 * Input layout: byte 0 picks the mode (bit 0: RAW), 1-octet pieces
 * (bit 1) and the number of cut octets (bits 2-4); bytes 1-2 pick
 * max_size (bit 7 of byte 1: unlimited); then come the cut octets, each
 * the length of one piece; the rest is the stream, cut accordingly.
 *
 * Each piece is fed from its own exact-size heap block. The decoder must
 * consume all of a piece unless it reports the end, emit only non-empty
 * slices of the piece it was given (or the one held-back CR, see
 * smtp_data.c), and agree exactly with the slow byte-at-a-time reference
 * below on the message, the flags and where the terminator ends.
 */
#include "core/wire/smtp_data.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_data_check(bool cond)
{
	if (!cond)
		abort();
}

/* What the reference says the stream is. */
struct fuzz_data_ref {
	char *out;
	size_t len;
	size_t consumed;
	bool done;
	uint32_t flags;
};

/* The slow reference framer: unstuffing and terminator, octet by octet,
 * with explicit look-ahead instead of a state machine. At the end of the
 * stream a dot at a line start, or a dot and CR there, is still held back
 * because the terminator may yet follow. */
static void fuzz_data_ref_frame(const uint8_t *s, size_t n, bool raw, struct fuzz_data_ref *r)
{
	bool bol = true;	/* after CRLF; the DATA command's CRLF counts */

	r->consumed = n;
	for (size_t i = 0; i < n; i++) {
		if (!raw && bol && s[i] == '.') {
			if (i + 1 == n || (s[i + 1] == '\r' && i + 2 == n))
				break;
			if (s[i + 1] == '\r' && s[i + 2] == '\n') {
				r->done = true;
				r->consumed = i + 3;
				break;
			}
			bol = false;
			continue;	/* stuffing: drop the dot */
		}
		r->out[r->len++] = (char)s[i];
		bol = s[i] == '\n' && i > 0 && s[i - 1] == '\r';
	}
}

static bool fuzz_data_ref_name(const char *p, size_t n, const char *name)
{
	size_t nl = strlen(name), i;

	if (n < nl || strncasecmp(p, name, nl) != 0)
		return false;
	for (i = nl; i < n && (p[i] == ' ' || p[i] == '\t'); i++)
		;
	return i < n && p[i] == ':';
}

/* Flags from the unstuffed message alone: line structure, size, 8-bit,
 * and the two header fields before the first empty line. */
static void fuzz_data_ref_flags(struct fuzz_data_ref *r, bool raw, uint64_t max)
{
	const char *o = r->out;
	size_t n = r->len, line = 0;
	bool in_header = true;

	for (size_t j = 0; j < n; j++) {
		unsigned char ch = (unsigned char)o[j];

		if (ch == '\r' && ((j + 1 < n && o[j + 1] != '\n') || (j + 1 == n && raw)))
			r->flags |= SMTP_DATA_F_BARE_CR;
		if (ch == '\n' && (j == 0 || o[j - 1] != '\r'))
			r->flags |= SMTP_DATA_F_BARE_LF;
		if (ch >= 0x80)
			r->flags |= SMTP_DATA_F_8BIT;
		if (j - line + 1 > SMTP_DATA_LINE_MAX)
			r->flags |= SMTP_DATA_F_LONG_LINE;
		if (ch == '\n' || j + 1 == n) {
			size_t end = ch == '\n' ? j : j + 1;	/* line without its LF */
			size_t len = end - line;

			if (in_header && ch == '\n' && (len == 0 || (len == 1 && o[line] == '\r')))
				in_header = false;
			if (in_header && fuzz_data_ref_name(o + line, len, "date"))
				r->flags |= SMTP_DATA_F_HAS_DATE;
			if (in_header && fuzz_data_ref_name(o + line, len, "message-id"))
				r->flags |= SMTP_DATA_F_HAS_MSGID;
			line = j + 1;
		}
	}
	if (max != 0 && n > max)
		r->flags |= SMTP_DATA_F_TOO_BIG;
}

/* What the decoder under test produced. */
struct fuzz_data_sink {
	char *out;
	size_t len;
	const char *lo, *hi;
};

static void fuzz_data_emit(void *ctx, const char *p, size_t n)
{
	struct fuzz_data_sink *s = ctx;

	fuzz_data_check(n > 0);
	fuzz_data_check((p >= s->lo && p + n <= s->hi) || (n == 1 && *p == '\r'));
	memcpy(s->out + s->len, p, n);
	s->len += n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t b0 = size > 0 ? data[0] : 0;
	uint8_t b1 = size > 1 ? data[1] : 0x80;
	uint8_t b2 = size > 2 ? data[2] : 0;
	bool raw = b0 & 1, bytewise = b0 & 2;
	size_t ncuts = (b0 >> 2) & 7;
	uint64_t max = (b1 & 0x80) ? 0 : ((uint64_t)(b1 & 0x7f) << 8 | b2);
	const uint8_t *cuts = data + (size < 3 ? size : 3);
	const uint8_t *s;
	size_t n, start = 0, consumed = 0, c = 0;
	struct fuzz_data_ref ref = { 0 };
	struct fuzz_data_sink sink = { 0 };
	struct smtp_data d;
	bool done = false;

	if (size < 3 + ncuts)
		ncuts = size < 3 ? 0 : size - 3;
	s = cuts + ncuts;
	n = size - (size_t)(s - data);

	ref.out = malloc(n + 1);
	sink.out = malloc(n + 1);
	fuzz_data_ref_frame(s, n, raw, &ref);
	fuzz_data_ref_flags(&ref, raw, max);

	smtp_data_init(&d, raw ? SMTP_DATA_RAW : SMTP_DATA_DOT, max);
	smtp_data_want_field(&d, "X-Pool");
	while (start < n || c == 0) {
		size_t plen = bytewise ? 1 : (c < ncuts ? cuts[c] : n - start);
		char *piece;
		size_t used;

		if (plen > n - start)
			plen = n - start;
		piece = malloc(plen ? plen : 1);
		memcpy(piece, s + start, plen);
		sink.lo = piece;
		sink.hi = piece + plen;
		used = smtp_data_feed(&d, piece, plen, fuzz_data_emit, &sink, &done);
		fuzz_data_check(used <= plen);
		fuzz_data_check(done || used == plen);
		fuzz_data_check(!(raw && done));
		consumed += used;
		if (done) {
			/* What follows the terminator is the next command's. */
			bool again;

			fuzz_data_check(smtp_data_feed(&d, piece + used, plen - used, fuzz_data_emit,
						       &sink, &again) == 0 && again);
			free(piece);
			break;
		}
		free(piece);
		start += plen;
		c++;
	}
	if (raw)
		smtp_data_finish(&d);

	fuzz_data_check(done == ref.done);
	fuzz_data_check(consumed == ref.consumed);
	fuzz_data_check(d.flags == ref.flags);
	fuzz_data_check(d.size == ref.len);
	if (d.flags & SMTP_DATA_F_TOO_BIG) {
		fuzz_data_check(sink.len <= max && memcmp(sink.out, ref.out, sink.len) == 0);
	} else {
		fuzz_data_check(sink.len == d.size);
		fuzz_data_check(sink.len == ref.len && memcmp(sink.out, ref.out, ref.len) == 0);
	}
	{
		/* The pool field, when found, is a range of the message that
		 * starts with its name. */
		uint64_t foff;
		uint32_t flen;

		if (smtp_data_field(&d, &foff, &flen) && !(d.flags & SMTP_DATA_F_TOO_BIG))
			fuzz_data_check(foff + flen <= sink.len && flen >= 6 &&
					strncasecmp(sink.out + foff, "X-Pool", 6) == 0);
	}
	fuzz_data_check((smtp_data_refusal(d.flags) == NULL) ==
			!(d.flags & (SMTP_DATA_F_BARE_CR | SMTP_DATA_F_BARE_LF |
				     SMTP_DATA_F_TOO_BIG | SMTP_DATA_F_LONG_LINE)));
	free(ref.out);
	free(sink.out);
	return 0;
}
