/*
 * smtp_reply: parser for SMTP replies, for the client side (RFC 5321
 * section 4.2), and the EHLO keyword reader.
 *
 * Resumable: feed it bytes as they arrive; it says when one complete
 * reply (one or more lines "ddd-text" ... "ddd text") has been read and
 * how many input bytes that took, so pipelined replies in one buffer are
 * taken one at a time. It copies the reply text (small, bounded) into
 * the parser so the reply outlives the receive buffer. No I/O.
 */
#ifndef RINGMTA_SMTP_REPLY_H
#define RINGMTA_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMTP_REPLY_TEXT_MAX 4096	/* all lines of a reply, joined */
#define SMTP_REPLY_LINE_MAX 2048	/* one line; longer is an error */

struct smtp_reply {
	uint16_t code;			/* 200..599 */
	char ecode[12];			/* "5.1.1" when the last line has one, else "" */
	uint16_t nlines;
	/* Lines without their codes, joined with "\n"; NUL-terminated;
	 * truncated (not an error) past SMTP_REPLY_TEXT_MAX. */
	char text[SMTP_REPLY_TEXT_MAX];
	uint16_t text_len;
};

struct smtp_reply_parser {
	struct smtp_reply rp_cur;	/* being filled */
	uint32_t rp_line_len;		/* octets of the current line so far */
	uint16_t rp_line_code;		/* code of the current line */
	uint8_t rp_state;		/* private */
	char rp_head[4];		/* private: first 4 chars of the line */
};

void smtp_reply_parser_init(struct smtp_reply_parser *p);

enum smtp_reply_result {
	SMTP_REPLY_MORE = 0,		/* need more bytes; all were consumed */
	SMTP_REPLY_DONE = 1,		/* *r_r holds a reply; *used_r bytes used */
	SMTP_REPLY_E_SYNTAX = -1,	/* not a reply (bad code, mixed codes) */
	SMTP_REPLY_E_TOO_LONG = -2,
};

/*
 * Feed buf[0..len). Lines end in CRLF; a bare LF is accepted as a line
 * end (servers that send it exist, and the client does not forward reply
 * text into mail). On SMTP_REPLY_DONE, copies the reply to *r_r and
 * resets for the next one; *used_r tells how far it read. On MORE,
 * *used_r == len. After an error the parser must be re-initialised.
 */
int smtp_reply_feed(struct smtp_reply_parser *p, const char *buf, size_t len,
		    size_t *used_r, struct smtp_reply *r_r);

/* EHLO keywords (RFC 5321 4.1.1.1) the client uses. */
#define SMTP_EXT_PIPELINING	0x0001u
#define SMTP_EXT_SIZE		0x0002u
#define SMTP_EXT_8BITMIME	0x0004u
#define SMTP_EXT_SMTPUTF8	0x0008u
#define SMTP_EXT_CHUNKING	0x0010u
#define SMTP_EXT_STARTTLS	0x0020u
#define SMTP_EXT_ENHANCED	0x0040u	/* ENHANCEDSTATUSCODES */
#define SMTP_EXT_DSN		0x0080u
#define SMTP_EXT_AUTH		0x0100u	/* AUTH (RFC 4954), any mechanism */
#define SMTP_EXT_AUTH_PLAIN	0x0200u	/* AUTH offers PLAIN (RFC 4616) */
#define SMTP_EXT_AUTH_LOGIN	0x0400u	/* AUTH offers LOGIN */

/*
 * Read the keywords of a 250 EHLO reply (lines after the first), case
 * insensitive; AUTH's mechanisms (also of the old "AUTH=" form) as
 * SMTP_EXT_AUTH_*. *size_r gets the SIZE value (0 when absent or no value).
 */
uint32_t smtp_reply_ehlo(const struct smtp_reply *r, uint64_t *size_r);

#endif
