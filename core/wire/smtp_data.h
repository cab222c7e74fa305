/*
 * smtp_data: the DATA / BDAT body decoder.
 *
 * Fed the bytes that follow "354" (DATA) or a BDAT command, in as many
 * pieces as the network delivers, it:
 *   - finds the end of DATA: only <CRLF>.<CRLF> ends it (the CRLF that
 *     ended the DATA command counts as the first CRLF); the terminator may
 *     be split across pieces at any offset;
 *   - removes dot-stuffing (RFC 5321 4.5.2): a line starting with "." has
 *     that first dot dropped;
 *   - flags, without stopping, a bare CR or bare LF anywhere (SMTP
 *     smuggling defence), a text line over 1000 octets including CRLF,
 *     and a body over max_size (then it stops emitting but keeps scanning
 *     for the terminator, so the session can answer 552 after it);
 *   - notes whether the header section has Date: and Message-ID: fields,
 *     and counts its Received: fields (hops, for the loop limit);
 *   - on request, finds one more header field by name (the pool header
 *     of the traffic-shaping rules): its first occurrence, folded lines
 *     included, as an octet range of the unstuffed message.
 *
 * Output is a sequence of slices of the caller's input, passed to an emit
 * callback in order; concatenated they are the unstuffed message, with
 * the terminating ".CRLF" (and nothing else) removed. The final CRLF
 * before the terminator belongs to the message. The decoder copies no
 * body byte and does no I/O. One exception to "slices of the input": a
 * CR held back at a piece boundary after "<CRLF>." that turns out to be
 * bare is emitted from static storage (the message is refused anyway).
 */
#ifndef RINGMTA_SMTP_DATA_H
#define RINGMTA_SMTP_DATA_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define SMTP_DATA_LINE_MAX 1000	/* text line incl. CRLF, RFC 5321 4.5.3.1.6 */

enum smtp_data_mode {
	SMTP_DATA_DOT = 0,	/* DATA: dot-stuffed, ends at CRLF.CRLF */
	SMTP_DATA_RAW = 1,	/* BDAT: the caller counts chunk octets; no
				 * stuffing, no terminator */
};

/* Sticky flags, set as found. */
#define SMTP_DATA_F_BARE_CR	0x01u
#define SMTP_DATA_F_BARE_LF	0x02u
#define SMTP_DATA_F_LONG_LINE	0x04u
#define SMTP_DATA_F_TOO_BIG	0x08u
#define SMTP_DATA_F_HAS_DATE	0x10u
#define SMTP_DATA_F_HAS_MSGID	0x20u
#define SMTP_DATA_F_8BIT	0x40u	/* a byte >= 0x80 was seen */

typedef void smtp_data_emit_fn(void *ctx, const char *p, size_t len);

/* Decoder state: small, embedded in the session; no pointers into input. */
struct smtp_data {
	uint64_t max_size;	/* 0 = unlimited */
	uint64_t size;		/* unstuffed octets seen so far; keeps
				 * counting after SMTP_DATA_F_TOO_BIG */
	uint32_t line_len;	/* octets in the current line so far */
	uint8_t mode;		/* enum smtp_data_mode */
	uint8_t state;		/* private: position relative to line start */
	uint8_t hdr_state;	/* private: header-section tracking */
	uint8_t hdr_pos;	/* private: chars matched of a header name */
	uint32_t flags;		/* SMTP_DATA_F_* */
	uint16_t hops;		/* Received: fields in the header section
				 * (stops counting at UINT16_MAX) */
	/* smtp_data_want_field(): the field looked for, and where it is */
	const char *field_name;	/* NULL: none; the caller's, see there */
	uint8_t field_name_len;
	uint8_t field_state;	/* private */
	uint8_t field_pos;	/* private: octets of the name matched */
	uint32_t field_len;	/* private: see smtp_data_field() */
	uint64_t field_off;
};

/*
 * Start a body. For RAW mode (BDAT) keep the same struct across chunks:
 * call smtp_data_init once per message, then smtp_data_feed per chunk.
 */
void smtp_data_init(struct smtp_data *d, enum smtp_data_mode mode,
		    uint64_t max_size);

/*
 * Feed buf[0..len). Calls emit(ctx, ...) for each run of body bytes.
 * Returns the number of input bytes consumed. In DOT mode, when the
 * terminator is found, *done_r is set to true and the return value counts
 * the bytes up to and including the terminator's LF: bytes after it are
 * the next command (pipelining) and are not consumed. In RAW mode all
 * bytes are consumed and *done_r is left false.
 */
size_t smtp_data_feed(struct smtp_data *d, const char *buf, size_t len,
		      smtp_data_emit_fn *emit, void *ctx, bool *done_r);

/*
 * Look for the header field named name (case-insensitive, 1 to 255
 * octets; otherwise nothing is looked for) in this message; call after
 * smtp_data_init(). name is the caller's and must stay valid until the
 * last smtp_data_feed() of the message.
 */
void smtp_data_want_field(struct smtp_data *d, const char *name);

/*
 * After the body: whether the field asked for is in the header section;
 * its first occurrence is the unstuffed message's octets [*off_r,
 * *off_r + *len_r): from its name to the CRLF that ends its last
 * (folded) line, or to the end of the message when that comes first.
 */
bool smtp_data_field(const struct smtp_data *d, uint64_t *off_r, uint32_t *len_r);

/*
 * The value of a header field given whole (f[0..len), "Name: value",
 * folded lines included): after the colon, unfolded (CRLF removed),
 * leading and trailing blanks removed, into out with a NUL. Returns its
 * length, or -1 when there is no colon or it does not fit outlen - 1.
 * Pure.
 */
int smtp_data_field_value(const char *f, size_t len, char *out, size_t outlen);

/*
 * RAW mode only: the message is complete (BDAT LAST). A lone CR at the
 * very end is flagged as a bare CR; a body need not end in CRLF. Returns
 * d->flags.
 */
uint32_t smtp_data_finish(struct smtp_data *d);

/*
 * The reply for a finished body whose flags show a refusal, or NULL when
 * it may be queued. Full reply line, no CRLF, static storage. Order of
 * precedence: bare CR/LF (smuggling), too big (552 5.3.4), long line.
 */
const char *smtp_data_refusal(uint32_t flags);

#endif
