/*
 * netacl.c: parse, match and print lists of IPv4/IPv6 networks.
 *
 * Owns struct netacl: one allocation holding a count and the entries, each
 * an address with its host bits already cleared and a prefix length. A list
 * is small (a handful of relay networks) and is checked once per session,
 * so matching is a linear scan.
 */
#include "core/config/netacl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct netacl_entry {
	uint8_t ne_addr[16];	/* network byte order; IPv4 uses the first 4 */
	uint8_t ne_family;	/* AF_INET or AF_INET6 */
	uint8_t ne_prefix;	/* 0..32 or 0..128 */
};

struct netacl {
	size_t na_count;
	struct netacl_entry na_entries[];
};

/* Longest token worth looking at: an IPv6 address with an embedded IPv4
 * tail (45) plus "/128", with room to spare. */
#define NETACL_TOKEN_MAX 63

static const uint8_t netacl_v4mapped_prefix[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

static bool netacl_is_sep(char c)
{
	return c == ',' || c == ' ' || c == '\t' || c == '\n' ||
	       c == '\r' || c == '\v' || c == '\f';
}

/* Clear every bit of addr (len bytes) below the first prefix bits. */
static void netacl_mask(uint8_t *addr, size_t len, unsigned prefix)
{
	size_t i = prefix / 8;

	if (i >= len)
		return;
	if (prefix % 8 != 0)
		addr[i++] &= (uint8_t)(0xff00u >> (prefix % 8));
	memset(addr + i, 0, len - i);
}

/* True when the first prefix bits of a and b agree. */
static bool netacl_prefix_equal(const uint8_t *a, const uint8_t *b,
				unsigned prefix)
{
	unsigned bytes = prefix / 8, bits = prefix % 8;
	uint8_t mask;

	if (memcmp(a, b, bytes) != 0)
		return false;
	if (bits == 0)
		return true;
	mask = (uint8_t)(0xff00u >> bits);
	return ((a[bytes] ^ b[bytes]) & mask) == 0;
}

/*
 * Parse one token (len bytes at tok, not NUL-terminated) into *e.
 * Returns 0, or -EINVAL with a message naming the token.
 */
static int netacl_parse_token(const char *tok, size_t len,
			      struct netacl_entry *e, char *err, size_t errlen)
{
	char buf[NETACL_TOKEN_MAX + 1];
	char *slash;
	unsigned maxprefix, prefix;
	const char *why;

	if (len > NETACL_TOKEN_MAX) {
		snprintf(err, errlen, "invalid network '%.*s...': too long",
			 NETACL_TOKEN_MAX, tok);
		return -EINVAL;
	}
	memcpy(buf, tok, len);
	buf[len] = '\0';

	slash = strchr(buf, '/');
	if (slash != NULL)
		*slash = '\0';

	memset(e, 0, sizeof(*e));
	if (inet_pton(AF_INET, buf, e->ne_addr) == 1) {
		e->ne_family = AF_INET;
		maxprefix = 32;
	} else if (inet_pton(AF_INET6, buf, e->ne_addr) == 1) {
		e->ne_family = AF_INET6;
		maxprefix = 128;
	} else {
		why = "not an IPv4 or IPv6 address";
		goto bad;
	}

	prefix = maxprefix;
	if (slash != NULL) {
		const char *p = slash + 1;

		/* Digits only: no sign, no blanks. */
		if (*p == '\0' || strspn(p, "0123456789") != strlen(p)) {
			why = "prefix length must be a number";
			goto bad;
		}
		prefix = strlen(p) > 3 ? UINT_MAX : (unsigned)atoi(p);
		if (prefix > maxprefix) {
			why = maxprefix == 32 ?
				"prefix length must be between 0 and 32" :
				"prefix length must be between 0 and 128";
			goto bad;
		}
	}

	/* Store ::ffff:a.b.c.d/96+n as a.b.c.d/n: mapped clients are matched
	 * as IPv4, so that is the entry the writer meant. */
	if (e->ne_family == AF_INET6 && prefix >= 96 &&
	    memcmp(e->ne_addr, netacl_v4mapped_prefix, 12) == 0) {
		memmove(e->ne_addr, e->ne_addr + 12, 4);
		memset(e->ne_addr + 4, 0, 12);
		e->ne_family = AF_INET;
		prefix -= 96;
	}

	e->ne_prefix = (uint8_t)prefix;
	netacl_mask(e->ne_addr, e->ne_family == AF_INET ? 4 : 16, prefix);
	return 0;

bad:
	if (slash != NULL)
		*slash = '/';
	snprintf(err, errlen, "invalid network '%s': %s", buf, why);
	return -EINVAL;
}

int netacl_parse(const char *spec, struct netacl **acl_r,
		 char *err, size_t errlen)
{
	struct netacl *acl;
	const char *p;
	size_t n = 0, len;
	int rc;

	if (spec == NULL)
		spec = "";

	/* Count first so the list is one allocation. */
	for (p = spec; *p != '\0';) {
		while (*p != '\0' && netacl_is_sep(*p))
			p++;
		if (*p == '\0')
			break;
		n++;
		while (*p != '\0' && !netacl_is_sep(*p))
			p++;
	}

	acl = malloc(sizeof(*acl) + n * sizeof(acl->na_entries[0]));
	if (acl == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	acl->na_count = 0;

	for (p = spec; *p != '\0';) {
		while (*p != '\0' && netacl_is_sep(*p))
			p++;
		if (*p == '\0')
			break;
		for (len = 0; p[len] != '\0' && !netacl_is_sep(p[len]); len++)
			;
		rc = netacl_parse_token(p, len, &acl->na_entries[acl->na_count],
					err, errlen);
		if (rc < 0) {
			free(acl);
			return rc;
		}
		acl->na_count++;
		p += len;
	}

	*acl_r = acl;
	return 0;
}

bool netacl_match(const struct netacl *acl, const struct sockaddr *sa)
{
	const uint8_t *addr;
	uint8_t family;
	size_t i;

	if (acl == NULL || sa == NULL)
		return false;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		addr = (const uint8_t *)&sin->sin_addr;
		family = AF_INET;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 =
			(const struct sockaddr_in6 *)sa;

		addr = sin6->sin6_addr.s6_addr;
		family = AF_INET6;
		if (memcmp(addr, netacl_v4mapped_prefix, 12) == 0) {
			addr += 12;
			family = AF_INET;
		}
	} else {
		return false;
	}

	for (i = 0; i < acl->na_count; i++) {
		const struct netacl_entry *e = &acl->na_entries[i];

		if (e->ne_family == family &&
		    netacl_prefix_equal(e->ne_addr, addr, e->ne_prefix))
			return true;
	}
	return false;
}

size_t netacl_count(const struct netacl *acl)
{
	return acl == NULL ? 0 : acl->na_count;
}

int netacl_format(const struct netacl *acl, char *buf, size_t size)
{
	char text[INET6_ADDRSTRLEN];
	size_t i, total = 0;
	int n;

	if (size > 0)
		buf[0] = '\0';
	for (i = 0; i < netacl_count(acl); i++) {
		const struct netacl_entry *e = &acl->na_entries[i];

		if (inet_ntop(e->ne_family, e->ne_addr, text, sizeof(text)) ==
		    NULL)
			text[0] = '\0';	/* cannot happen: sizes are fixed */
		n = snprintf(total < size ? buf + total : NULL,
			     total < size ? size - total : 0, "%s%s/%u",
			     i > 0 ? ", " : "", text, (unsigned)e->ne_prefix);
		if (n < 0)
			return n;
		total += (size_t)n;
	}
	return (int)total;
}

void netacl_free(struct netacl **acl)
{
	if (acl == NULL)
		return;
	free(*acl);
	*acl = NULL;
}
