/*
 * utf8: well-formed UTF-8 (RFC 3629): shortest form only, no surrogates,
 * nothing above U+10FFFF. One checker for the SMTP parser (SMTPUTF8
 * addresses), the DSN builder and the JSON reader of OAuth tokens. No
 * allocation, no state.
 */
#ifndef RINGMTA_UTF8_H
#define RINGMTA_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Octets of the well-formed sequence at p[0..n) (1 for ASCII, 2 to 4), or
 * 0 when it is ill-formed or cut short. n must be at least 1. */
size_t utf8_seq_len(const unsigned char *p, size_t n);

/* Whether p[0..n) is well-formed UTF-8 throughout. */
bool utf8_valid(const char *p, size_t n);

/* Whether the sequence of len octets at p is a C1 control (U+0080 to
 * U+009F): well-formed, but no more printable than a C0 control. */
static inline bool utf8_is_c1(const unsigned char *p, size_t len)
{
	return len == 2 && p[0] == 0xc2 && p[1] < 0xa0;
}

#endif
