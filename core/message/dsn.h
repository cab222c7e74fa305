/*
 * dsn: builds delivery status notifications (RFC 3464 inside RFC 3462's
 * multipart/report) for bounces, delay warnings and success notices
 * (RFC 3461 NOTIFY=SUCCESS). Pure: no I/O, no
 * clock (the caller passes the date), output malloc'd.
 */
#ifndef RINGMTA_DSN_H
#define RINGMTA_DSN_H

#include <stddef.h>
#include <stdint.h>

enum dsn_action {
	DSN_FAILED = 0,
	DSN_DELAYED = 1,
	DSN_RELAYED = 2,	/* passed to a next hop that does not report */
	DSN_DELIVERED = 3,
};

struct dsn_rcpt {
	const char *dr_addr;		/* final recipient, without <> */
	enum dsn_action dr_action;
	const char *dr_status;		/* enhanced code, e.g. "5.1.1" */
	const char *dr_remote_mta;	/* host name that answered, or NULL */
	const char *dr_remote_addr;	/* "host[ip]:port" for the explanation;
					 * NULL: dr_remote_mta */
	const char *dr_diag;		/* the server's reply ("550 5.1.1 ...")
					 * or our reason; may hold "\n" */
	const char *dr_last_attempt;	/* RFC 5322 date, or NULL */
	/* Bounce class name (core/bounce/bclass.h), written as the extension
	 * field X-Ringmta-Bounce-Class (RFC 3464 section 2.4); NULL: none. */
	const char *dr_class;
	/* ORCPT= as received ("addr-type;xtext", RFC 3461 4.2), written
	 * decoded as Original-Recipient; NULL: none. */
	const char *dr_orcpt;
};

struct dsn_msg {
	const char *dm_reporting_mta;	/* our host name */
	const char *dm_to;		/* original envelope sender */
	const char *dm_queue_id;	/* original queue id (text) */
	const char *dm_arrival;		/* RFC 5322 date the original arrived */
	const char *dm_date;		/* RFC 5322 date now */
	const char *dm_message_id;	/* for the DSN, without <> */
	const struct dsn_rcpt *dm_rcpts;
	unsigned dm_nrcpt;
	/* The original message's header section (up to and excluding the
	 * empty line), returned as text/rfc822-headers. May be NULL. */
	const char *dm_orig_headers;
	size_t dm_orig_headers_len;
	/* ENVID= as received (xtext), written decoded as Original-Envelope-
	 * Id; NULL: none. */
	const char *dm_envid;
	/* RET=FULL: the whole original message (dm_orig, dm_orig_len) is
	 * returned as message/rfc822 instead of its header section, in a
	 * report about a failure (RFC 3461 4.3: a notice of success or delay
	 * returns the header only). */
	const char *dm_orig;
	size_t dm_orig_len;
};

/*
 * Build the whole DSN message (header and body, CRLF line endings, every
 * line under 1000 octets). 7-bit unless an address or diagnostic holds
 * UTF-8: then the report is message/global-delivery-status with "utf-8;"
 * address types (RFC 6533) and the message is 8-bit.
 * From: "Mail Delivery System" <MAILER-DAEMON@reporting_mta>, To: the
 * original sender, Subject says failed, delayed or (for a report of
 * relayed or delivered recipients only) successful, Auto-Submitted:
 * auto-replied. Returns the length and sets *out_r (free() it), or -1 on
 * allocation failure.
 */
long dsn_build(const struct dsn_msg *m, char **out_r);

/* The header section of a stored message: length up to (excluding) the
 * empty line, or len if there is none. */
size_t dsn_header_len(const char *msg, size_t len);

#endif
