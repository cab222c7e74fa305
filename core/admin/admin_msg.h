/*
 * admin_msg: stored message text as JSON for the admin API: strings that
 * may not be UTF-8 (envelope fields, replies, bodies) and the header
 * section split into fields. No I/O; the input is what a client sent, so
 * every step is bounded by its length.
 */
#ifndef RINGMTA_ADMIN_MSG_H
#define RINGMTA_ADMIN_MSG_H

#include <jansson.h>
#include <stddef.h>

#define ADMIN_MSG_FIELDS_MAX 1000u	/* header fields shown */

/* A JSON string of len octets at p (p may be NULL when len is 0); octets
 * that are not UTF-8, and NULs, become U+FFFD. Never NULL. */
json_t *admin_msg_text(const char *p, size_t len);

/* The header section of a message (up to the empty line) as
 * [{"name": ..., "value": ...}, ...] in order, folded lines joined (the
 * CRLF before each continuation removed). Lines that are not fields are
 * skipped; at most ADMIN_MSG_FIELDS_MAX fields. Never NULL. */
json_t *admin_msg_headers(const char *msg, size_t len);

#endif
