/*
 * xtext: the encoding of RFC 3461 section 4 for DSN parameter values
 * (ENVID, ORCPT): printable ASCII but "+" and "=" as themselves, any
 * other octet as "+" and two hex digits. Pure: no allocation, no state.
 */
#ifndef RINGMTA_XTEXT_H
#define RINGMTA_XTEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Whether p[0..n) is well-formed xtext: only xchars (33..126 but "+"
 * and "=") and "+" with two hex digits (upper case per the RFC; lower
 * case is taken too, as Postfix does). utf8: octets >= 0x80 are taken
 * as they are (RFC 6533's utf-8-addr-xtext); the caller checks they are
 * UTF-8. */
bool xtext_valid(const char *p, size_t n, bool utf8);

/* Decode well-formed xtext p[0..n) into out (room for n octets; the
 * result is never longer). Returns the decoded length; out is not
 * NUL-terminated. */
size_t xtext_decode(const char *p, size_t n, char *out);

#endif
