/*
 * smtp_limits: the LIMITS EHLO keyword (RFC 9422), read on the client
 * side: the limits a next hop says it applies to this session.
 *
 *   LIMITS RCPTMAX=50 MAILMAX=1000 RCPTDOMAINMAX=10
 *
 * The parser does no I/O, copies nothing and keeps nothing: it reads a
 * bounded string (a line of a parsed EHLO reply) and fills a small
 * struct. It is tolerant: a limit it does not know, one that is not
 * "name=value", or a known one whose value is not a usable number is
 * skipped and the rest of the line is still read (clients ignore limits
 * they do not know; a bad value tells us nothing we can rely on, so it
 * is as if it were absent).
 */
#ifndef RINGMTA_SMTP_LIMITS_H
#define RINGMTA_SMTP_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/wire/smtp_reply.h"

/* Values are 1 to SMTP_LIMITS_DIGITS digits, our bound: a larger limit
 * would never bind one of our transactions or sessions. 0, and a longer
 * number, are ignored. */
#define SMTP_LIMITS_DIGITS 6
#define SMTP_LIMITS_VALUE_MAX 999999u
/* A limit name longer than this is not one of ours (skipped). */
#define SMTP_LIMITS_NAME_MAX 20

/* What a next hop said; 0 = no such limit. */
struct smtp_limits {
	uint32_t lm_rcptmax;		/* RCPTMAX: RCPT commands per transaction */
	uint32_t lm_mailmax;		/* MAILMAX: transactions per session */
	uint32_t lm_rcptdomainmax;	/* RCPTDOMAINMAX: recipient domains per
					 * transaction */
};

/*
 * Read the parameters of a LIMITS keyword, p[0..n): what follows the
 * keyword on its line (blanks between limits: SP, HTAB or a stray CR).
 * Each known limit found lowers the value in *lim_r (a limit given twice
 * keeps the smaller); the caller zeroes *lim_r first. Returns how many
 * known limits were taken.
 */
unsigned smtp_limits_parse(const char *p, size_t n, struct smtp_limits *lim_r);

/*
 * Look for LIMITS among the keyword lines of a 250 EHLO reply (not the
 * first line, which is the greeting) and read it. *lim_r is zeroed
 * first, then filled; true when the keyword was there (with or without
 * limits we use).
 */
bool smtp_limits_ehlo(const struct smtp_reply *r, struct smtp_limits *lim_r);

#endif
