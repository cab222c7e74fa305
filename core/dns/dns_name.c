/*
 * dns_name.c: the checks of names before they reach c-ares or the
 * cache: a recipient domain normalized to the lower-cased cache key, and
 * RFC 5321 address literals and bare IP addresses parsed to a sockaddr.
 * The text is untrusted (it comes from RCPT TO and from MX answers). No
 * I/O, no allocation, owns nothing; fuzzed by tests/fuzz/fuzz_dns_ttl.c.
 */
#include "core/dns/dns_internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

/*
 * Lower-case domain into out, without its trailing dot. Returns the
 * length, or -1 unless it is a plain hostname-like DNS name (letters,
 * digits, '-', '_'; labels of 1 to 63).
 */
int dns_name_normalize(const char *domain, char out[DNS_NAME_MAX + 1])
{
	size_t len = strnlen(domain, DNS_NAME_MAX + 2), label = 0;

	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_NAME_MAX)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)domain[i];

		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			   c == '-' || c == '_') {
			label++;
		} else if (c >= 'A' && c <= 'Z') {
			c = (unsigned char)(c - 'A' + 'a');
			label++;
		} else {
			return -1;
		}
		if (label > 63)
			return -1;
		out[i] = (char)c;
	}
	out[len] = '\0';
	return (int)len;
}

/* An IPv4 or IPv6 address in s[0..len) into ss (port 0); family may be
 * AF_UNSPEC. 0 or -1. */
int dns_name_parse_ip(const char *s, size_t len, int family,
		      struct sockaddr_storage *ss)
{
	char buf[INET6_ADDRSTRLEN + 1];

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (family != AF_INET6) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, buf, &sin->sin_addr) == 1) {
			sin->sin_family = AF_INET;
			return 0;
		}
	}
	if (family != AF_INET) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, buf, &sin6->sin6_addr) == 1) {
			sin6->sin6_family = AF_INET6;
			return 0;
		}
	}
	return -1;
}

/*
 * An RFC 5321 address literal: "[192.0.2.1]" or "[IPv6:2001:db8::1]".
 * Returns 1 with the address, 0 if s is no literal, -1 if malformed.
 */
int dns_name_parse_literal(const char *s, struct sockaddr_storage *ss)
{
	size_t len = strnlen(s, DNS_NAME_MAX + 2);

	if (len == 0 || s[0] != '[')
		return 0;
	if (len < 3 || len > DNS_NAME_MAX + 1 || s[len - 1] != ']')
		return -1;
	s++;
	len -= 2;
	if (len > 5 && strncasecmp(s, "IPv6:", 5) == 0)
		return dns_name_parse_ip(s + 5, len - 5, AF_INET6, ss) == 0 ? 1 : -1;
	return dns_name_parse_ip(s, len, AF_INET, ss) == 0 ? 1 : -1;
}
