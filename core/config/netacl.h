/*
 * netacl.h: a list of IPv4 and IPv6 networks (CIDR blocks) and the test
 * "is this client address in one of them". Used for relay_networks.
 *
 * Ownership: netacl_parse() allocates one block that the caller owns and
 * releases with netacl_free(). A parsed list is never modified afterwards,
 * so any number of threads may call netacl_match() on it at once.
 *
 * Matching rules: an IPv4 client, or an IPv4-mapped IPv6 client
 * (::ffff:a.b.c.d, as a dual-stack socket reports one), is compared only
 * with IPv4 entries; any other IPv6 client only with IPv6 entries. So
 * "::/0" does not admit IPv4 clients: write "0.0.0.0/0, ::/0" for "all".
 * An entry written in mapped form with a prefix of at least 96
 * (::ffff:10.0.0.0/104) is stored as the IPv4 entry it denotes (10.0.0.0/8).
 */
#ifndef RINGMTA_NETACL_H
#define RINGMTA_NETACL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct netacl;

/*
 * Parse a list such as "127.0.0.0/8, ::1/128 10.0.0.0/8": entries are
 * separated by commas and/or whitespace; a bare address means /32 or /128;
 * host bits below the prefix are allowed and ignored. An empty list is
 * valid and matches nothing. Returns 0 and stores a new list in *acl_r, or
 * -EINVAL (bad entry; err names it) or -ENOMEM, leaving *acl_r untouched.
 * err may be NULL when errlen is 0.
 */
int netacl_parse(const char *spec, struct netacl **acl_r,
		 char *err, size_t errlen);

/* True when sa (AF_INET or AF_INET6; anything else never matches) lies in
 * one of the networks. acl may be NULL (matches nothing). */
bool netacl_match(const struct netacl *acl, const struct sockaddr *sa);

/* Number of entries in the list (0 for NULL). */
size_t netacl_count(const struct netacl *acl);

/*
 * Write the list in canonical form ("127.0.0.0/8, ::1/128": host bits
 * cleared, always with a prefix) like snprintf: returns the length the full
 * text needs, writes at most size bytes including the NUL. The output
 * parses back to an equal list.
 */
int netacl_format(const struct netacl *acl, char *buf, size_t size);

/* Release the list and set *acl to NULL; *acl may already be NULL. */
void netacl_free(struct netacl **acl);

#endif
