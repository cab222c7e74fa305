/*
 * spf: SPF checks (RFC 7208) with libspf2, its DNS answered by c-ares
 * (dns_sync.h) through the configured dns_servers rather than libspf2's
 * own resolver (which reads /etc/resolv.conf and cannot take a port).
 *
 * spf_check() blocks for the DNS lookups the record needs (each bounded
 * by the per-try timeout, at most 10 DNS mechanisms as RFC 7208 4.6.4
 * says, and all of them by ten per-try timeouts: a lookup after that is
 * a temporary failure, so the check ends in temperror): call it from a
 * work pool thread or a command-line tool, never from a worker's ring.
 *
 * Thread safety: one struct spf is shared by every thread. Each call
 * borrows a context (a libspf2 server and its c-ares channel, which are
 * not thread-safe) from the struct's free list, making one when none is
 * free, and gives it back; so there are as many contexts as calls ever
 * ran at once. spf_lib_init() once, before threads start.
 */
#ifndef RINGMTA_SPF_H
#define RINGMTA_SPF_H

#include <stddef.h>
#include <sys/socket.h>

/* RFC 7208 section 2.6 results. */
enum spf_result {
	SPF_RES_NONE = 0,
	SPF_RES_NEUTRAL,
	SPF_RES_PASS,
	SPF_RES_FAIL,
	SPF_RES_SOFTFAIL,
	SPF_RES_TEMPERROR,
	SPF_RES_PERMERROR,
};

struct spf;

/* libspf2's messages go to our log (debug), not stderr. Once, early. */
void spf_lib_init(void);

/* dns_servers as config stores it ("" = /etc/resolv.conf); hostname
 * names this receiver in explanations; timeout_ms per DNS try. Returns
 * 0 or -1 with err. */
int spf_new(struct spf **spf_r, const char *dns_servers, const char *hostname,
	    unsigned timeout_ms, char *err, size_t errlen);
void spf_free(struct spf **spf);

/*
 * Check client (AF_INET or AF_INET6; a v4-mapped IPv6 address counts as
 * IPv4) for mail_from ("local@domain", "" for the null sender: then the
 * HELO identity, postmaster@helo, is checked) and helo (may be NULL).
 * why (cap bytes, may be NULL) gets a line for logs and replies: the
 * record's explanation for a fail, else a comment on the result, never
 * CR or LF. Any thread.
 */
enum spf_result spf_check(struct spf *spf, const struct sockaddr *client, const char *helo,
			  const char *mail_from, char *why, size_t cap);

/* "pass", "fail", ... as RFC 8601 and RFC 7208 write them. */
const char *spf_result_name(enum spf_result r);

#endif
