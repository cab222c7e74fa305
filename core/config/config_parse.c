/*
 * config_parse.c: the value parsers behind config_set(). Each turns the
 * text of one setting into its typed member of struct config: numbers with
 * unit suffixes and limits, booleans, log levels, host names, paths and
 * free strings, networks (netacl) and the listen list. They do no I/O,
 * leave struct config unchanged on error and write a message without the
 * key, which config_set() adds. Owns nothing beyond struct config's
 * strings and netacl (see config.h).
 */
#include "core/config/config_internal.h"
#include "core/config/netacl.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The longest listen entry we look at: "[" IPv6 "%" ifname "]:" port. */
#define CONFIG_LISTEN_TOKEN_MAX 127

static const struct {
	const char *name;
	enum config_log_level level;
} config_log_levels[] = {
	{ "error", CONFIG_LOG_ERROR },
	{ "warning", CONFIG_LOG_WARNING },
	{ "info", CONFIG_LOG_INFO },
	{ "debug", CONFIG_LOG_DEBUG },
};

static bool config_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool config_is_sep(char c)
{
	return c == ',' || isspace((unsigned char)c);
}

/*
 * Parse a decimal number with an optional unit suffix. Returns 0,
 * -EINVAL for anything but digits and one known suffix, or -ERANGE when
 * the value does not fit in 64 bits.
 */
static int config_parse_number(const char *s, enum config_unit unit,
			       uint64_t *v_r)
{
	uint64_t v = 0, mul = 1;
	bool overflow = false;

	if (!config_is_digit(*s))
		return -EINVAL;
	for (; config_is_digit(*s); s++) {
		unsigned d = (unsigned)(*s - '0');

		if (v > (UINT64_MAX - d) / 10)
			overflow = true;
		else
			v = v * 10 + d;
	}

	if (*s != '\0' && unit == CONFIG_U_BYTES) {
		switch (*s) {
		case 'k': case 'K': mul = CONFIG_KIB; s++; break;
		case 'm': case 'M': mul = CONFIG_MIB; s++; break;
		case 'g': case 'G': mul = CONFIG_GIB; s++; break;
		}
	} else if (*s != '\0' && unit == CONFIG_U_SECONDS) {
		switch (*s) {
		case 's': mul = 1; s++; break;
		case 'm': mul = 60; s++; break;
		case 'h': mul = 3600; s++; break;
		}
	} else if (*s != '\0' && unit == CONFIG_U_MICROS) {
		if (s[0] == 'u' && s[1] == 's') {
			s += 2;
		} else if (s[0] == 'm' && s[1] == 's') {
			mul = 1000;
			s += 2;
		} else if (s[0] == 's') {
			mul = 1000000;
			s++;
		}
	} else if (*s != '\0' && unit == CONFIG_U_MILLIS) {
		if (s[0] == 'm' && s[1] == 's') {
			s += 2;
		} else if (s[0] == 's') {
			mul = 1000;
			s++;
		}
	}
	if (*s != '\0')
		return -EINVAL;
	if (overflow || v > UINT64_MAX / mul)
		return -ERANGE;
	*v_r = v * mul;
	return 0;
}

void config_format_number(uint64_t v, enum config_unit unit,
			  char *buf, size_t size)
{
	if (unit == CONFIG_U_BYTES && v != 0 && v % CONFIG_GIB == 0)
		snprintf(buf, size, "%lluG",
			 (unsigned long long)(v / CONFIG_GIB));
	else if (unit == CONFIG_U_BYTES && v != 0 && v % CONFIG_MIB == 0)
		snprintf(buf, size, "%lluM",
			 (unsigned long long)(v / CONFIG_MIB));
	else
		snprintf(buf, size, "%llu", (unsigned long long)v);
}

static bool config_is_pow2(uint64_t v)
{
	return v != 0 && (v & (v - 1)) == 0;
}

/* The message for a number that is malformed or out of range. */
static void config_number_error(const struct config_key *k, bool too_large,
				char *err, size_t errlen)
{
	char min[32], max[32];
	bool open = k->ck_max == CONFIG_OPEN_MAX32 ||
		    k->ck_max == CONFIG_OPEN_MAX64;

	config_format_number(k->ck_min, k->ck_unit, min, sizeof(min));
	config_format_number(k->ck_max, k->ck_unit, max, sizeof(max));

	if (too_large && open) {
		snprintf(err, errlen, "too large (at most %s%s)", max,
			 k->ck_unit == CONFIG_U_BYTES ? " bytes" : "");
		return;
	}
	switch (k->ck_unit) {
	case CONFIG_U_COUNT:
		if (k->ck_pow2)
			snprintf(err, errlen,
				 "must be a power of two between %s and %s",
				 min, max);
		else if (open)
			snprintf(err, errlen, "must be an integer >= %s", min);
		else
			snprintf(err, errlen,
				 "must be an integer between %s and %s",
				 min, max);
		break;
	case CONFIG_U_BYTES:
		if (k->ck_pow2)
			snprintf(err, errlen,
				 "must be a power of two between %s and %s bytes"
				 " (suffix k, M or G allowed)", min, max);
		else
			snprintf(err, errlen,
				 "must be a size of at least %s bytes"
				 " (suffix k, M or G allowed)", min);
		break;
	case CONFIG_U_SECONDS:
		snprintf(err, errlen,
			 "must be a duration between %s and %s seconds"
			 " (suffix s, m or h allowed)", min, max);
		break;
	case CONFIG_U_MILLIS:
		snprintf(err, errlen,
			 "must be a duration between %s and %s milliseconds"
			 " (suffix ms or s allowed)", min, max);
		break;
	case CONFIG_U_MICROS:
		snprintf(err, errlen,
			 "must be a duration between %s and %s microseconds"
			 " (suffix us, ms or s allowed)", min, max);
		break;
	}
}

static int config_set_number(struct config *cfg, const struct config_key *k,
			     const char *value, char *err, size_t errlen)
{
	void *p = config_member(cfg, k);
	uint64_t v = 0;
	int rc;

	rc = config_parse_number(value, k->ck_unit, &v);
	if (rc == -ERANGE || (rc == 0 && v > k->ck_max)) {
		config_number_error(k, true, err, errlen);
		return -1;
	}
	if (rc < 0 || v < k->ck_min || (k->ck_pow2 && !config_is_pow2(v))) {
		config_number_error(k, false, err, errlen);
		return -1;
	}
	if (k->ck_size == sizeof(uint64_t))
		*(uint64_t *)p = v;
	else
		*(unsigned int *)p = (unsigned int)v;
	return 0;
}

uint64_t config_get_number(const struct config *cfg,
			   const struct config_key *k)
{
	const void *p = config_member_const(cfg, k);

	if (k->ck_size == sizeof(uint64_t))
		return *(const uint64_t *)p;
	return *(const unsigned int *)p;
}

static int config_set_bool(struct config *cfg, const struct config_key *k,
			   const char *value, char *err, size_t errlen)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	bool *p = config_member(cfg, k);
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(value, yes[i]) == 0) {
			*p = true;
			return 0;
		}
		if (strcasecmp(value, no[i]) == 0) {
			*p = false;
			return 0;
		}
	}
	snprintf(err, errlen, "must be yes or no (or true/false, on/off, 1/0)");
	return -1;
}

static int config_set_log_level(struct config *cfg, const struct config_key *k,
				const char *value, char *err, size_t errlen)
{
	enum config_log_level *p = config_member(cfg, k);
	size_t i;

	for (i = 0; i < sizeof(config_log_levels) / sizeof(config_log_levels[0]);
	     i++) {
		if (strcasecmp(value, config_log_levels[i].name) == 0) {
			*p = config_log_levels[i].level;
			return 0;
		}
	}
	snprintf(err, errlen, "must be one of error, warning, info, debug");
	return -1;
}

const char *config_log_level_name(enum config_log_level level)
{
	size_t i;

	for (i = 0; i < sizeof(config_log_levels) / sizeof(config_log_levels[0]);
	     i++) {
		if (config_log_levels[i].level == level)
			return config_log_levels[i].name;
	}
	return "info";
}

bool config_hostname_ok(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > 253 || s[0] == '.' || s[0] == '-')
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz"
			 "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789-._") == len;
}

static int config_set_string(struct config *cfg, const struct config_key *k,
			     const char *value, char *err, size_t errlen)
{
	char **p = config_member(cfg, k);
	char *copy;
	size_t i;

	if (k->ck_type == CONFIG_T_HOSTNAME && !config_hostname_ok(value)) {
		snprintf(err, errlen,
			 "must be a host name (letters, digits, '-', '.', '_';"
			 " at most 253 characters)");
		return -1;
	}
	if (k->ck_type == CONFIG_T_PATH || k->ck_type == CONFIG_T_STRING) {
		if (value[0] == '\0' && k->ck_type == CONFIG_T_PATH) {
			snprintf(err, errlen, "must not be empty");
			return -1;
		}
		if (strlen(value) >= PATH_MAX) {
			snprintf(err, errlen, "too long (at most %d bytes)",
				 PATH_MAX - 1);
			return -1;
		}
		for (i = 0; value[i] != '\0'; i++) {
			if (iscntrl((unsigned char)value[i])) {
				snprintf(err, errlen,
					 "must not contain control characters");
				return -1;
			}
		}
	}
	copy = strdup(value);
	if (copy == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	free(*p);
	*p = copy;
	return 0;
}

static int config_set_netacl(struct config *cfg, const struct config_key *k,
			     const char *value, char *err, size_t errlen)
{
	struct netacl **p = config_member(cfg, k);
	struct netacl *acl;

	if (netacl_parse(value, &acl, err, errlen) < 0)
		return -1;
	netacl_free(p);
	*p = acl;
	return 0;
}

/*
 * Parse one listen entry, "a.b.c.d:port" or "[ipv6]:port", into *l.
 * Returns 0 or -1 with a message naming the entry.
 */
static int config_parse_listen_one(const char *tok, size_t toklen,
				   struct config_listen *l,
				   char *err, size_t errlen)
{
	char buf[CONFIG_LISTEN_TOKEN_MAX + 1];
	struct addrinfo hints, *res = NULL;
	struct in_addr probe;
	char *host, *port, *end;
	bool bracketed;
	int rc;

	if (toklen > CONFIG_LISTEN_TOKEN_MAX) {
		snprintf(err, errlen, "'%.*s...': too long",
			 CONFIG_LISTEN_TOKEN_MAX, tok);
		return -1;
	}
	memcpy(buf, tok, toklen);
	buf[toklen] = '\0';

	bracketed = buf[0] == '[';
	if (bracketed) {
		end = strchr(buf, ']');
		if (end == NULL || end[1] != ':') {
			snprintf(err, errlen,
				 "'%s': expected [ipv6-address]:port", buf);
			return -1;
		}
		host = buf + 1;
		port = end + 2;
		*end = '\0';
		if (strchr(host, ':') == NULL) {
			snprintf(err, errlen, "'%.*s': brackets are only for"
				 " IPv6 addresses", (int)toklen, tok);
			return -1;
		}
	} else {
		end = strrchr(buf, ':');
		if (end == NULL) {
			snprintf(err, errlen, "'%s': expected address:port",
				 buf);
			return -1;
		}
		*end = '\0';
		host = buf;
		port = end + 1;
		if (strchr(host, ':') != NULL) {
			snprintf(err, errlen, "'%.*s': write IPv6 addresses in"
				 " brackets, like [::1]:2525", (int)toklen, tok);
			return -1;
		}
	}

	if (port[0] == '\0' || strlen(port) > 5 ||
	    strspn(port, "0123456789") != strlen(port) ||
	    atoi(port) < 1 || atoi(port) > 65535) {
		snprintf(err, errlen, "'%.*s': port must be a number between"
			 " 1 and 65535", (int)toklen, tok);
		return -1;
	}

	/* getaddrinfo() takes inet_aton's forms ("127.1", "0x7f.1"); only a
	 * dotted quad is meant. */
	if (!bracketed && inet_pton(AF_INET, host, &probe) != 1) {
		snprintf(err, errlen, "'%.*s': not a numeric IPv4 address",
			 (int)toklen, tok);
		return -1;
	}

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = bracketed ? AF_INET6 : AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0 || res == NULL || res->ai_addrlen > sizeof(l->cl_addr)) {
		snprintf(err, errlen, "'%.*s': not a numeric IP%s address",
			 (int)toklen, tok, bracketed ? "v6" : "v4");
		if (res != NULL)
			freeaddrinfo(res);
		return -1;
	}
	memset(l, 0, sizeof(*l));
	memcpy(&l->cl_addr, res->ai_addr, res->ai_addrlen);
	l->cl_addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static int config_set_listen(struct config *cfg, const char *value,
			     char *err, size_t errlen)
{
	struct config_listen list[CONFIG_LISTEN_MAX];
	unsigned int n = 0, i;
	const char *p = value;
	size_t len;

	for (;;) {
		while (*p != '\0' && config_is_sep(*p))
			p++;
		if (*p == '\0')
			break;
		for (len = 0; p[len] != '\0' && !config_is_sep(p[len]); len++)
			;
		if (n == CONFIG_LISTEN_MAX) {
			snprintf(err, errlen, "too many addresses (at most %d)",
				 CONFIG_LISTEN_MAX);
			return -1;
		}
		{
			/* An optional "/kind" suffix says what the port is for. */
			const char *slash = memchr(p, '/', len);
			size_t alen = slash ? (size_t)(slash - p) : len;
			enum config_listen_kind kind = CONFIG_LISTEN_SMTP;

			if (slash != NULL) {
				size_t klen = len - alen - 1;

				if (klen == 4 && strncasecmp(slash + 1, "smtp", 4) == 0)
					kind = CONFIG_LISTEN_SMTP;
				else if (klen == 10 && strncasecmp(slash + 1, "submission", 10) == 0)
					kind = CONFIG_LISTEN_SUBMISSION;
				else if (klen == 11 && strncasecmp(slash + 1, "submissions", 11) == 0)
					kind = CONFIG_LISTEN_SUBMISSIONS;
				else {
					snprintf(err, errlen, "'%.*s': unknown listener kind"
						 " (smtp, submission or submissions)", (int)len, p);
					return -1;
				}
			}
			if (config_parse_listen_one(p, alen, &list[n], err, errlen) < 0)
				return -1;
			list[n].cl_kind = kind;
		}
		for (i = 0; i < n; i++) {
			if (list[i].cl_addrlen == list[n].cl_addrlen &&
			    memcmp(&list[i].cl_addr, &list[n].cl_addr,
				   list[n].cl_addrlen) == 0) {
				snprintf(err, errlen, "'%.*s' is listed twice",
					 (int)len, p);
				return -1;
			}
		}
		n++;
		p += len;
	}
	if (n == 0) {
		snprintf(err, errlen, "needs at least one address:port");
		return -1;
	}
	memcpy(cfg->listen, list, n * sizeof(list[0]));
	cfg->listen_count = n;
	return 0;
}

/* Free text: refuses control characters as config_set_string does. */
static int config_check_cntrl(const char *value, char *err, size_t errlen)
{
	for (size_t i = 0; value[i] != '\0'; i++) {
		if (iscntrl((unsigned char)value[i])) {
			snprintf(err, errlen, "must not contain control characters");
			return -1;
		}
	}
	return 0;
}

/* A port: 1 to 65535, digits only. */
static bool config_port_ok(const char *p)
{
	size_t n = strlen(p);

	return n > 0 && n <= 5 && strspn(p, "0123456789") == n && atoi(p) >= 1 &&
	       atoi(p) <= 65535;
}

/*
 * relayhost: "[ip]", "[IPv6:ip6]", "host", each with an optional ":port".
 * Brackets mean "this address"; a host name is looked up as MX, as
 * Postfix does. An IP address without brackets can only mean itself, so
 * it is stored with them ("127.0.0.1:2526" becomes "[127.0.0.1]:2526",
 * never an MX lookup of "127.0.0.1"); a bracketed IPv6 address gets the
 * "IPv6:" tag RFC 5321 literals carry. Anything else is refused here, so
 * that --check and start-up agree with what delivery will do.
 */
static int config_set_relayhost(struct config *cfg, const struct config_key *k,
				const char *value, char *err, size_t errlen)
{
	char host[300], out[320];
	const char *port = NULL, *ip6;
	struct in6_addr a6;
	struct in_addr a4;
	bool bracketed = value[0] == '[';
	size_t hlen;

	if (config_check_cntrl(value, err, errlen) < 0)
		return -1;
	if (value[0] == '\0')
		return config_set_string(cfg, k, value, err, errlen);
	if (bracketed) {
		const char *close = strchr(value, ']');

		if (close == NULL || (close[1] != '\0' && close[1] != ':')) {
			snprintf(err, errlen, "'%s': expected [address] or [address]:port", value);
			return -1;
		}
		hlen = (size_t)(close - value - 1);
		if (close[1] == ':')
			port = close + 2;
		value++;
	} else {
		const char *colon = strchr(value, ':');

		/* One colon: host:port. More: an IPv6 address, no port. */
		hlen = colon != NULL && colon == strrchr(value, ':') ?
		       (size_t)(colon - value) : strlen(value);
		if (hlen < strlen(value))
			port = value + hlen + 1;
	}
	if (hlen == 0 || hlen >= sizeof(host)) {
		snprintf(err, errlen, "'%s': expected a host name or an IP address", value);
		return -1;
	}
	memcpy(host, value, hlen);
	host[hlen] = '\0';
	if (port != NULL && !config_port_ok(port)) {
		snprintf(err, errlen, "port '%s' must be a number between 1 and 65535", port);
		return -1;
	}
	ip6 = bracketed && strncasecmp(host, "IPv6:", 5) == 0 ? host + 5 : host;
	if (ip6 == host && inet_pton(AF_INET, host, &a4) == 1) {
		snprintf(out, sizeof(out), "[%s]%s%s", host, port ? ":" : "", port ? port : "");
	} else if (inet_pton(AF_INET6, ip6, &a6) == 1) {
		snprintf(out, sizeof(out), "[IPv6:%s]%s%s", ip6, port ? ":" : "",
			 port ? port : "");
	} else if (bracketed) {
		snprintf(err, errlen, "'[%s]': only an IP address goes in brackets (write %s"
			 " without them to use its MX records)", host, host);
		return -1;
	} else if (!config_hostname_ok(host)) {
		snprintf(err, errlen, "'%s': not a host name or an IP address", host);
		return -1;
	} else {
		snprintf(out, sizeof(out), "%s", value);
	}
	return config_set_string(cfg, k, out, err, errlen);
}

/* metrics_listen: empty, or one address:port with the listen syntax. */
int config_addrport_parse(const char *s, struct sockaddr_storage *addr_r, socklen_t *len_r,
			  char *err, size_t errlen)
{
	struct config_listen l;

	if (config_parse_listen_one(s, strlen(s), &l, err, errlen) < 0)
		return -1;
	*addr_r = l.cl_addr;
	*len_r = l.cl_addrlen;
	return 0;
}

static int config_set_addrport(struct config *cfg, const struct config_key *k,
			       const char *value, char *err, size_t errlen)
{
	struct config_listen l;

	if (config_check_cntrl(value, err, errlen) < 0)
		return -1;
	if (value[0] != '\0' &&
	    config_parse_listen_one(value, strlen(value), &l, err, errlen) < 0)
		return -1;
	return config_set_string(cfg, k, value, err, errlen);
}

/*
 * dns_servers: addresses separated by commas and/or blanks, each "ip",
 * "ip:port", "ip6" or "[ip6]:port". Stored as the comma-separated list
 * the resolver takes (c-ares refuses blanks).
 */
static int config_set_dns_servers(struct config *cfg, const struct config_key *k,
				  const char *value, char *err, size_t errlen)
{
	char out[1024], tok[CONFIG_LISTEN_TOKEN_MAX + 1];
	const char *p = value;
	size_t o = 0, len;

	if (config_check_cntrl(value, err, errlen) < 0)
		return -1;
	out[0] = '\0';
	for (;;) {
		const char *port = NULL;
		struct in6_addr a6;
		struct in_addr a4;
		char *host = tok;

		while (*p != '\0' && config_is_sep(*p))
			p++;
		if (*p == '\0')
			break;
		for (len = 0; p[len] != '\0' && !config_is_sep(p[len]); len++)
			;
		if (len >= sizeof(tok)) {
			snprintf(err, errlen, "'%.*s...': too long", 40, p);
			return -1;
		}
		memcpy(tok, p, len);
		tok[len] = '\0';
		if (tok[0] == '[') {
			char *close = strchr(tok, ']');

			if (close == NULL || (close[1] != '\0' && close[1] != ':')) {
				snprintf(err, errlen, "'%s': expected [ipv6-address]:port", tok);
				return -1;
			}
			*close = '\0';
			host = tok + 1;
			if (close[1] == ':')
				port = close + 2;
			if (inet_pton(AF_INET6, host, &a6) != 1) {
				snprintf(err, errlen, "'%.*s': not a numeric IPv6 address",
					 (int)len, p);
				return -1;
			}
		} else if (strchr(tok, ':') != NULL && strchr(tok, ':') == strrchr(tok, ':')) {
			port = strchr(tok, ':') + 1;
			*strchr(tok, ':') = '\0';
			if (inet_pton(AF_INET, host, &a4) != 1) {
				snprintf(err, errlen, "'%.*s': not a numeric IPv4 address"
					 " (name servers are not looked up by name)", (int)len, p);
				return -1;
			}
		} else if (inet_pton(AF_INET, host, &a4) != 1 && inet_pton(AF_INET6, host, &a6) != 1) {
			snprintf(err, errlen, "'%.*s': not a numeric IP address"
				 " (name servers are not looked up by name)", (int)len, p);
			return -1;
		}
		if (port != NULL && !config_port_ok(port)) {
			snprintf(err, errlen, "'%.*s': port must be a number between 1 and 65535",
				 (int)len, p);
			return -1;
		}
		if (o + len + 2 > sizeof(out)) {
			snprintf(err, errlen, "too many servers");
			return -1;
		}
		o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%.*s", o ? "," : "",
				      (int)len, p);
		p += len;
	}
	return config_set_string(cfg, k, out, err, errlen);
}

/* Dispatch on the key's type (contract in config_internal.h). */
int config_set_key(struct config *cfg, const struct config_key *k,
		   const char *value, char *msg, size_t msglen)
{
	switch (k->ck_type) {
	case CONFIG_T_LISTEN:
		return config_set_listen(cfg, value, msg, msglen);
	case CONFIG_T_HOSTNAME:
	case CONFIG_T_PATH:
	case CONFIG_T_STRING:
		return config_set_string(cfg, k, value, msg, msglen);
	case CONFIG_T_NUMBER:
		return config_set_number(cfg, k, value, msg, msglen);
	case CONFIG_T_NETACL:
		return config_set_netacl(cfg, k, value, msg, msglen);
	case CONFIG_T_LOG_LEVEL:
		return config_set_log_level(cfg, k, value, msg, msglen);
	case CONFIG_T_BOOL:
		return config_set_bool(cfg, k, value, msg, msglen);
	case CONFIG_T_RELAYHOST:
		return config_set_relayhost(cfg, k, value, msg, msglen);
	case CONFIG_T_ADDRPORT:
		return config_set_addrport(cfg, k, value, msg, msglen);
	case CONFIG_T_DNS_SERVERS:
		return config_set_dns_servers(cfg, k, value, msg, msglen);
	}
	snprintf(msg, msglen, "internal error: bad key type");
	return -1;
}
