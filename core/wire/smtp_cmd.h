/*
 * smtp_cmd: the SMTP command-line parser (RFC 5321 section 4.1, with the
 * ESMTP parameters of RFC 1870, 6152, 6531, 3030 and 3461).
 *
 * It takes one complete command line (without its CRLF) and fills a
 * struct smtp_cmd whose slices point into that line. It does no I/O,
 * allocates nothing and copies nothing: the caller keeps the line alive
 * for as long as it uses the slices. Line framing (finding CRLF, refusing
 * bare CR/LF, the 512-octet limit) is the caller's job; see smtp_line.h.
 */
#ifndef RINGMTA_SMTP_CMD_H
#define RINGMTA_SMTP_CMD_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

enum smtp_verb {
	SMTP_VERB_UNKNOWN = 0,
	SMTP_VERB_HELO,
	SMTP_VERB_EHLO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_BDAT,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_HELP,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
	SMTP_VERB_COUNT
};

/* A view into the caller's buffer; never NUL-terminated. */
struct smtp_slice {
	const char *p;
	uint32_t len;
};

/* Limits from RFC 5321 4.5.3.1; tests may shrink them. */
struct smtp_limits {
	uint32_t path;		/* 256: reverse/forward path incl. <> */
	uint32_t local_part;	/* 64 */
	uint32_t domain;	/* 255 */
};

#define SMTP_LIMITS_RFC5321 { 256, 64, 255 }

enum smtp_body_type {
	SMTP_BODY_UNSPEC = 0,
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME,
};

/* DSN parameters (RFC 3461): RET= of MAIL, NOTIFY= of RCPT. 0 = not
 * given. The values are those of the queue record (queue/qrecord.h). */
enum smtp_dsn_ret {
	SMTP_DSN_RET_FULL = 1,
	SMTP_DSN_RET_HDRS = 2,
};
#define SMTP_DSN_NOTIFY_SUCCESS	0x01u
#define SMTP_DSN_NOTIFY_FAILURE	0x02u
#define SMTP_DSN_NOTIFY_DELAY	0x04u
#define SMTP_DSN_NOTIFY_NEVER	0x08u
#define SMTP_DSN_ENVID_MAX	100	/* RFC 3461 4.4: ENVID value octets */
#define SMTP_DSN_ORCPT_MAX	500	/* RFC 3461 4.2: ORCPT value octets */

struct smtp_cmd {
	enum smtp_verb verb;
	struct smtp_slice arg;		/* all text after "VERB " (trimmed) */
	/* HELO/EHLO: the domain or address literal. */
	struct smtp_slice domain;
	/* MAIL/RCPT: the mailbox between < and >; len 0 for the null path <>. */
	struct smtp_slice path;
	/* MAIL parameters */
	uint64_t size;			/* SIZE=, valid when has_size */
	bool has_size;
	bool smtputf8;			/* SMTPUTF8 given */
	enum smtp_body_type body;	/* BODY= */
	/* DSN: RET= (enum smtp_dsn_ret) and ENVID= (xtext as given, checked;
	 * len 0 = none) of MAIL; NOTIFY= (SMTP_DSN_NOTIFY_* bits) and ORCPT=
	 * ("addr-type;xtext" as given, checked) of RCPT. */
	uint8_t dsn_ret;
	uint8_t dsn_notify;
	struct smtp_slice envid;
	struct smtp_slice orcpt;
	/* BDAT */
	uint64_t chunk_size;
	bool last;			/* BDAT n LAST */
};

/*
 * Errors. Each maps to one full reply line through smtp_cmd_strerror().
 */
enum smtp_cmd_err {
	SMTP_CMD_OK = 0,
	SMTP_CMD_E_UNKNOWN = -1,	/* 500 5.5.1 unrecognized command */
	SMTP_CMD_E_SYNTAX = -2,		/* 501 5.5.2 syntax error in arguments */
	SMTP_CMD_E_PARAM = -3,		/* 555 5.5.4 unsupported MAIL/RCPT parameter */
	SMTP_CMD_E_PATH_LEN = -4,	/* 501 5.1.3 path too long */
	SMTP_CMD_E_LOCAL_LEN = -5,	/* 501 5.1.3 local part too long */
	SMTP_CMD_E_DOMAIN_LEN = -6,	/* 501 5.1.3 domain too long */
	SMTP_CMD_E_ADDR = -7,		/* 501 5.1.3 bad address syntax */
	SMTP_CMD_E_NOARGS = -8,		/* 501 5.5.4 command takes no arguments */
	SMTP_CMD_E_UTF8 = -9,		/* 553 5.6.7 address not valid UTF-8 */
	SMTP_CMD_E_HELO = -10,		/* 501 5.5.4 control character or bad UTF-8
					 * in the HELO/EHLO name */
	SMTP_CMD_E_DSN = -11,		/* 501 5.5.4 bad RET/ENVID/NOTIFY/ORCPT value */
};

/*
 * Parse one command line (without CRLF). Returns SMTP_CMD_OK and fills
 * *cmd_r (verb always set when the verb was recognised, even on error),
 * or a negative enum smtp_cmd_err.
 */
int smtp_cmd_parse(const char *line, size_t len, const struct smtp_limits *lim,
		   struct smtp_cmd *cmd_r);

/* The reply line, with code and enhanced code, no CRLF; static storage. */
const char *smtp_cmd_strerror(int err);

/*
 * Whether len octets at p are well-formed UTF-8 (RFC 3629): no overlong
 * forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no
 * truncated sequence (core/base/utf8.h).
 */
bool smtp_cmd_utf8_valid(const char *p, size_t len);

/* Upper-case verb name for logs, "UNKNOWN" if out of range. */
const char *smtp_cmd_verb_name(enum smtp_verb verb);

#endif
