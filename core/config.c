/*
 * config.c: the settings table, the value parsers (numbers with unit
 * suffixes, booleans, addresses, networks) and the ringmta.conf loader.
 *
 * Every setting is one row of config_keys[]: its name, type, where it lives
 * in struct config, its limits and its default written as text. Defaults
 * go through the same parser as the file, so the table, config_dump() and
 * docs/ringmta.conf.example speak the same language.
 *
 * The file is read with inih through our own line reader, which counts
 * lines (the Debian build of inih hands the handler no line number),
 * rejects [section] headers and overlong lines, and notes which lines start
 * with whitespace so that continuation lines can extend list values.
 * Owns nothing beyond what struct config owns (see config.h).
 */
#include "core/config.h"
#include "core/netacl.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum config_type {
	CONFIG_T_LISTEN,
	CONFIG_T_HOSTNAME,
	CONFIG_T_PATH,
	CONFIG_T_STRING,	/* free text, may be empty, no control chars */
	CONFIG_T_NUMBER,
	CONFIG_T_NETACL,
	CONFIG_T_LOG_LEVEL,
	CONFIG_T_BOOL,
};

/* What a number counts; decides the suffixes it takes. */
enum config_unit {
	CONFIG_U_COUNT,		/* plain decimal */
	CONFIG_U_BYTES,		/* k, M, G: powers of 1024 */
	CONFIG_U_SECONDS,	/* s, m, h */
	CONFIG_U_MILLIS,	/* ms (also plain), s */
};

struct config_key {
	const char *ck_name;
	enum config_type ck_type;
	enum config_unit ck_unit;	/* CONFIG_T_NUMBER only */
	bool ck_pow2;			/* CONFIG_T_NUMBER only */
	size_t ck_offset;
	size_t ck_size;			/* member size: 4 or 8 for numbers */
	uint64_t ck_min, ck_max;
	const char *ck_default;		/* NULL: computed (hostname) */
};

/* Upper limits for settings that only have a lower one: what the members
 * (and whoever copies them into an int or off_t) can hold. */
#define CONFIG_OPEN_MAX32 ((uint64_t)INT_MAX)
#define CONFIG_OPEN_MAX64 ((uint64_t)INT64_MAX)
/* Timeouts beyond a day are mistakes, and a bound keeps ms arithmetic safe. */
#define CONFIG_DURATION_MAX 86400u

#define CONFIG_MEMBER(m) \
	.ck_offset = offsetof(struct config, m), \
	.ck_size = sizeof(((struct config *)NULL)->m)

#define CONFIG_KIB ((uint64_t)1 << 10)
#define CONFIG_MIB ((uint64_t)1 << 20)
#define CONFIG_GIB ((uint64_t)1 << 30)

/* The longest listen entry we look at: "[" IPv6 "%" ifname "]:" port. */
#define CONFIG_LISTEN_TOKEN_MAX 127
/* Keys are short; a longer name is unknown anyway. */
#define CONFIG_KEY_MAX 64
/* Room for one setting's error before the file and line are added. */
#define CONFIG_MSG_MAX 512

static const struct config_key config_keys[] = {
	{ .ck_name = "listen", .ck_type = CONFIG_T_LISTEN,
	  .ck_default = "127.0.0.1:2525" },
	{ .ck_name = "hostname", .ck_type = CONFIG_T_HOSTNAME,
	  CONFIG_MEMBER(hostname), .ck_default = NULL },
	{ .ck_name = "queue_dir", .ck_type = CONFIG_T_PATH,
	  CONFIG_MEMBER(queue_dir), .ck_default = "./ringmta-queue" },
	{ .ck_name = "workers", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_COUNT, CONFIG_MEMBER(workers),
	  .ck_min = 0, .ck_max = 256, .ck_default = "0" },
	{ .ck_name = "max_message_size", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_BYTES, CONFIG_MEMBER(max_message_size),
	  .ck_min = 1024, .ck_max = CONFIG_OPEN_MAX64,
	  .ck_default = "10240000" },
	{ .ck_name = "max_recipients", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_COUNT, CONFIG_MEMBER(max_recipients),
	  .ck_min = 100, .ck_max = CONFIG_OPEN_MAX32, .ck_default = "1000" },
	{ .ck_name = "max_connections", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_COUNT, CONFIG_MEMBER(max_connections),
	  .ck_min = 1, .ck_max = CONFIG_OPEN_MAX32, .ck_default = "20000" },
	{ .ck_name = "max_connections_per_ip", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_COUNT, CONFIG_MEMBER(max_connections_per_ip),
	  .ck_min = 0, .ck_max = CONFIG_OPEN_MAX32, .ck_default = "500" },
	{ .ck_name = "max_errors", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_COUNT, CONFIG_MEMBER(max_errors),
	  .ck_min = 1, .ck_max = CONFIG_OPEN_MAX32, .ck_default = "10" },
	{ .ck_name = "relay_networks", .ck_type = CONFIG_T_NETACL,
	  CONFIG_MEMBER(relay_networks), .ck_default = "127.0.0.0/8, ::1" },
	{ .ck_name = "timeout_command", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_SECONDS, CONFIG_MEMBER(timeout_command),
	  .ck_min = 1, .ck_max = CONFIG_DURATION_MAX, .ck_default = "300" },
	{ .ck_name = "timeout_data", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_SECONDS, CONFIG_MEMBER(timeout_data),
	  .ck_min = 1, .ck_max = CONFIG_DURATION_MAX, .ck_default = "180" },
	{ .ck_name = "greeting_delay", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_MILLIS, CONFIG_MEMBER(greeting_delay),
	  .ck_min = 0, .ck_max = 60000, .ck_default = "0" },
	{ .ck_name = "shutdown_timeout", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_SECONDS, CONFIG_MEMBER(shutdown_timeout),
	  .ck_min = 0, .ck_max = CONFIG_DURATION_MAX, .ck_default = "30" },
	{ .ck_name = "queue_map_size", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_BYTES, CONFIG_MEMBER(queue_map_size),
	  .ck_min = 16 * CONFIG_MIB, .ck_max = CONFIG_OPEN_MAX64,
	  .ck_default = "16G" },
	{ .ck_name = "recv_buffer_size", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_BYTES, .ck_pow2 = true,
	  CONFIG_MEMBER(recv_buffer_size),
	  .ck_min = 1024, .ck_max = 65536, .ck_default = "8192" },
	{ .ck_name = "recv_buffers_max", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_COUNT, .ck_pow2 = true,
	  CONFIG_MEMBER(recv_buffers_max),
	  .ck_min = 64, .ck_max = 32768, .ck_default = "16384" },
	{ .ck_name = "listen_backlog", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_COUNT, CONFIG_MEMBER(listen_backlog),
	  .ck_min = 1, .ck_max = CONFIG_OPEN_MAX32, .ck_default = "4096" },
	{ .ck_name = "log_level", .ck_type = CONFIG_T_LOG_LEVEL,
	  CONFIG_MEMBER(log_level), .ck_default = "info" },
	{ .ck_name = "smtputf8", .ck_type = CONFIG_T_BOOL,
	  CONFIG_MEMBER(smtputf8), .ck_default = "yes" },
	{ .ck_name = "chunking", .ck_type = CONFIG_T_BOOL,
	  CONFIG_MEMBER(chunking), .ck_default = "yes" },
	/* Delivery */
	{ .ck_name = "delivery", .ck_type = CONFIG_T_BOOL,
	  CONFIG_MEMBER(delivery), .ck_default = "yes" },
	{ .ck_name = "relayhost", .ck_type = CONFIG_T_STRING,
	  CONFIG_MEMBER(relayhost), .ck_default = "" },
	{ .ck_name = "smtp_port", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_COUNT, CONFIG_MEMBER(smtp_port),
	  .ck_min = 1, .ck_max = 65535, .ck_default = "25" },
	{ .ck_name = "dns_servers", .ck_type = CONFIG_T_STRING,
	  CONFIG_MEMBER(dns_servers), .ck_default = "" },
	{ .ck_name = "destination_concurrency_limit", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_COUNT, CONFIG_MEMBER(destination_concurrency_limit),
	  .ck_min = 1, .ck_max = 10000, .ck_default = "20" },
	{ .ck_name = "destination_rate_limit", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_COUNT, CONFIG_MEMBER(destination_rate_limit),
	  .ck_min = 0, .ck_max = CONFIG_OPEN_MAX32, .ck_default = "0" },
	{ .ck_name = "smtp_reuse_limit", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_COUNT, CONFIG_MEMBER(smtp_reuse_limit),
	  .ck_min = 1, .ck_max = CONFIG_OPEN_MAX32, .ck_default = "100" },
	{ .ck_name = "smtp_idle_timeout", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_SECONDS, CONFIG_MEMBER(smtp_idle_timeout),
	  .ck_min = 1, .ck_max = CONFIG_DURATION_MAX, .ck_default = "10" },
	{ .ck_name = "smtp_connect_timeout", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_SECONDS, CONFIG_MEMBER(smtp_connect_timeout),
	  .ck_min = 1, .ck_max = CONFIG_DURATION_MAX, .ck_default = "30" },
	{ .ck_name = "smtp_command_timeout", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_SECONDS, CONFIG_MEMBER(smtp_command_timeout),
	  .ck_min = 1, .ck_max = CONFIG_DURATION_MAX, .ck_default = "300" },
	{ .ck_name = "smtp_data_init_timeout", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_SECONDS, CONFIG_MEMBER(smtp_data_init_timeout),
	  .ck_min = 1, .ck_max = CONFIG_DURATION_MAX, .ck_default = "120" },
	{ .ck_name = "smtp_data_block_timeout", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_SECONDS, CONFIG_MEMBER(smtp_data_block_timeout),
	  .ck_min = 1, .ck_max = CONFIG_DURATION_MAX, .ck_default = "180" },
	{ .ck_name = "smtp_data_done_timeout", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_SECONDS, CONFIG_MEMBER(smtp_data_done_timeout),
	  .ck_min = 1, .ck_max = CONFIG_DURATION_MAX, .ck_default = "600" },
	{ .ck_name = "retry_min", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_SECONDS, CONFIG_MEMBER(retry_min),
	  .ck_min = 1, .ck_max = CONFIG_DURATION_MAX, .ck_default = "5m" },
	{ .ck_name = "retry_max", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_SECONDS, CONFIG_MEMBER(retry_max),
	  .ck_min = 1, .ck_max = CONFIG_DURATION_MAX, .ck_default = "4h" },
	{ .ck_name = "max_queue_lifetime", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_SECONDS, CONFIG_MEMBER(max_queue_lifetime),
	  .ck_min = 1, .ck_max = 100 * 86400ull, .ck_default = "120h" },
};

#define CONFIG_NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

static const struct {
	const char *name;
	enum config_log_level level;
} config_log_levels[] = {
	{ "error", CONFIG_LOG_ERROR },
	{ "warning", CONFIG_LOG_WARNING },
	{ "info", CONFIG_LOG_INFO },
	{ "debug", CONFIG_LOG_DEBUG },
};

static const struct config_key *config_find_key(const char *name)
{
	size_t i;

	for (i = 0; i < CONFIG_NKEYS; i++) {
		if (strcmp(config_keys[i].ck_name, name) == 0)
			return &config_keys[i];
	}
	return NULL;
}

static void *config_member(struct config *cfg, const struct config_key *k)
{
	return (char *)cfg + k->ck_offset;
}

static const void *config_member_const(const struct config *cfg,
				       const struct config_key *k)
{
	return (const char *)cfg + k->ck_offset;
}

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

/* Write v the way a person would: 16G rather than 17179869184. */
static void config_format_number(uint64_t v, enum config_unit unit,
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

static uint64_t config_get_number(const struct config *cfg,
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

static const char *config_log_level_name(enum config_log_level level)
{
	size_t i;

	for (i = 0; i < sizeof(config_log_levels) / sizeof(config_log_levels[0]);
	     i++) {
		if (config_log_levels[i].level == level)
			return config_log_levels[i].name;
	}
	return "info";
}

/* A host name goes into SMTP replies and Received headers: letters,
 * digits, '-', '.', '_' only, so it cannot smuggle CR LF or blanks. */
static bool config_hostname_ok(const char *s)
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
		if (config_parse_listen_one(p, len, &list[n], err, errlen) < 0)
			return -1;
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

/* Set one setting from text, leaving cfg unchanged on error; the message
 * (without the key) goes to msg. */
static int config_set_key(struct config *cfg, const struct config_key *k,
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
	}
	snprintf(msg, msglen, "internal error: bad key type");
	return -1;
}

int config_set(struct config *cfg, const char *key, const char *value,
	       char *err, size_t errlen)
{
	const struct config_key *k = config_find_key(key);
	char msg[CONFIG_MSG_MAX];

	if (k == NULL) {
		snprintf(err, errlen, "unknown key '%s'", key);
		return -1;
	}
	if (value == NULL)
		value = "";
	if (config_set_key(cfg, k, value, msg, sizeof(msg)) < 0) {
		snprintf(err, errlen, "%s: %s", key, msg);
		return -1;
	}
	return 0;
}

/* A default that fails to parse is a bug in the table; running out of
 * memory this early leaves nothing sensible to do either. */
static void config_set_default(struct config *cfg, const char *key,
			       const char *value)
{
	char err[CONFIG_MSG_MAX];

	if (config_set(cfg, key, value, err, sizeof(err)) < 0) {
		fprintf(stderr, "ringmta: config default %s = %s: %s\n",
			key, value, err);
		abort();
	}
}

void config_defaults(struct config *cfg)
{
	char host[HOST_NAME_MAX + 1];
	size_t i;

	memset(cfg, 0, sizeof(*cfg));
	for (i = 0; i < CONFIG_NKEYS; i++) {
		if (config_keys[i].ck_default != NULL)
			config_set_default(cfg, config_keys[i].ck_name,
					   config_keys[i].ck_default);
	}

	if (gethostname(host, sizeof(host)) != 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	if (!config_hostname_ok(host))
		snprintf(host, sizeof(host), "localhost");
	config_set_default(cfg, "hostname", host);
}

int config_set_override(struct config *cfg, const char *kv,
			char *err, size_t errlen)
{
	char msg[CONFIG_MSG_MAX];
	char *copy, *key, *value, *end;
	int rc;

	copy = strdup(kv);
	if (copy == NULL) {
		snprintf(err, errlen, "-o %s: out of memory", kv);
		return -1;
	}

	value = strchr(copy, '=');
	if (value != NULL)
		*value++ = '\0';
	key = copy;
	while (isspace((unsigned char)*key))
		key++;
	end = key + strlen(key);
	while (end > key && isspace((unsigned char)end[-1]))
		*--end = '\0';
	if (value == NULL || key[0] == '\0') {
		snprintf(err, errlen, "-o %s: expected key=value", kv);
		free(copy);
		return -1;
	}
	while (isspace((unsigned char)*value))
		value++;
	end = value + strlen(value);
	while (end > value && isspace((unsigned char)end[-1]))
		*--end = '\0';

	rc = config_set(cfg, key, value, msg, sizeof(msg));
	if (rc < 0)
		snprintf(err, errlen, "-o %s: %s", kv, msg);
	free(copy);
	return rc;
}

/* State of one config_load_file(): the reader and the handler share it. */
struct config_load {
	struct config *cl_cfg;
	FILE *cl_fp;
	const char *cl_path;
	int cl_lineno;		/* lines handed to inih so far */
	bool cl_indented;	/* the current line starts with a blank */
	char cl_prev_key[CONFIG_KEY_MAX];  /* key of the last setting line */
	char *cl_prev_value;	/* its value so far, for continuation lines */
	int cl_err_line;	/* line of the first error we saw, 0 = none */
	char *cl_err;
	size_t cl_errlen;
};

static void config_load_error(struct config_load *cl, const char *msg)
{
	if (cl->cl_err_line != 0)
		return;
	cl->cl_err_line = cl->cl_lineno;
	snprintf(cl->cl_err, cl->cl_errlen, "%s:%d: %s", cl->cl_path,
		 cl->cl_lineno, msg);
}

/*
 * inih's line reader (fgets-style). Besides counting lines it catches what
 * inih would accept silently or misreport: a line longer than inih's buffer
 * (inih would parse the pieces as separate lines) and a [section] header
 * (inih takes it without calling the handler).
 */
static char *config_load_read(char *str, int num, void *stream)
{
	struct config_load *cl = stream;
	char msg[CONFIG_MSG_MAX];
	size_t len;
	char *p;
	int c;

	if (fgets(str, num, cl->cl_fp) == NULL)
		return NULL;
	cl->cl_lineno++;

	len = strlen(str);
	if (len == (size_t)num - 1 && str[len - 1] != '\n') {
		c = getc(cl->cl_fp);
		if (c != '\n' && c != EOF) {
			while (c != '\n' && c != EOF)
				c = getc(cl->cl_fp);
			/* A long comment loses only its tail; anything else
			 * would be misread, so it is an error. */
			for (p = str; isspace((unsigned char)*p); p++)
				;
			if (*p != '#' && *p != ';') {
				snprintf(msg, sizeof(msg), "line too long (at"
					 " most %d characters); continue a long"
					 " list on lines that start with a"
					 " blank", num - 1);
				config_load_error(cl, msg);
			}
		}
	}

	if (cl->cl_lineno == 1 && strncmp(str, "\xEF\xBB\xBF", 3) == 0)
		memmove(str, str + 3, strlen(str + 3) + 1);

	for (p = str; *p != '\0' && isspace((unsigned char)*p); p++)
		;
	cl->cl_indented = p > str;
	/* inih reads an indented line as a continuation when a setting came
	 * before; otherwise a leading '[' opens a section. */
	if (*p == '[' && (!cl->cl_indented || cl->cl_prev_key[0] == '\0')) {
		len = strcspn(p, "\r\n");
		snprintf(msg, sizeof(msg), "section headers are not supported"
			 " ('%.*s'); write plain 'key = value' lines",
			 (int)(len > 64 ? 64 : len), p);
		config_load_error(cl, msg);
	}
	return str;
}

static int config_load_handler(void *user, const char *section,
			       const char *name, const char *value)
{
	struct config_load *cl = user;
	char msg[CONFIG_MSG_MAX];
	char *joined;
	size_t oldlen;

	(void)section;	/* the reader already rejected [section] lines */
	if (value == NULL)
		value = "";

	if (cl->cl_indented && cl->cl_prev_key[0] != '\0' &&
	    cl->cl_prev_value != NULL) {
		/* Continuation: inih hands us the previous key again. */
		oldlen = strlen(cl->cl_prev_value);
		joined = realloc(cl->cl_prev_value, oldlen + 1 + strlen(value) + 1);
		if (joined == NULL) {
			config_load_error(cl, "out of memory");
			return 0;
		}
		joined[oldlen] = ' ';
		strcpy(joined + oldlen + 1, value);
		cl->cl_prev_value = joined;
	} else {
		snprintf(cl->cl_prev_key, sizeof(cl->cl_prev_key), "%s", name);
		free(cl->cl_prev_value);
		cl->cl_prev_value = strdup(value);
		if (cl->cl_prev_value == NULL) {
			config_load_error(cl, "out of memory");
			return 0;
		}
	}

	if (cl->cl_err_line != 0)
		return 1;	/* report only the first error */
	if (config_set(cl->cl_cfg, name, cl->cl_prev_value, msg,
		       sizeof(msg)) < 0) {
		config_load_error(cl, msg);
		return 0;
	}
	return 1;
}

int config_load_file(struct config *cfg, const char *path,
		     char *err, size_t errlen)
{
	struct config_load cl;
	int rc;

	memset(&cl, 0, sizeof(cl));
	cl.cl_cfg = cfg;
	cl.cl_path = path;
	cl.cl_err = err;
	cl.cl_errlen = errlen;

	cl.cl_fp = fopen(path, "re");
	if (cl.cl_fp == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	errno = 0;
	rc = ini_parse_stream(config_load_read, &cl, config_load_handler, &cl);
	if (ferror(cl.cl_fp)) {
		snprintf(err, errlen, "%s: %s", path,
			 strerror(errno != 0 ? errno : EIO));
		rc = -1;
	} else if (cl.cl_err_line != 0 && (rc <= 0 || cl.cl_err_line <= rc)) {
		rc = -1;	/* our message is already in err */
	} else if (rc > 0) {
		snprintf(err, errlen, "%s:%d: syntax error: expected"
			 " 'key = value'", path, rc);
		rc = -1;
	} else if (rc < 0) {
		snprintf(err, errlen, "%s: out of memory", path);
		rc = -1;
	}
	fclose(cl.cl_fp);
	free(cl.cl_prev_value);
	return rc;
}

int config_validate(const struct config *cfg, char *err, size_t errlen)
{
	char a[32], b[32];

	if (cfg->hostname == NULL || cfg->queue_dir == NULL ||
	    cfg->relay_networks == NULL || cfg->listen_count == 0) {
		snprintf(err, errlen, "configuration not initialised"
			 " (config_defaults was not called)");
		return -1;
	}
	if (cfg->max_message_size >= cfg->queue_map_size) {
		config_format_number(cfg->max_message_size, CONFIG_U_BYTES,
				     a, sizeof(a));
		config_format_number(cfg->queue_map_size, CONFIG_U_BYTES,
				     b, sizeof(b));
		snprintf(err, errlen, "max_message_size (%s) must be smaller"
			 " than queue_map_size (%s)", a, b);
		return -1;
	}
	return 0;
}

void config_free(struct config *cfg)
{
	free(cfg->hostname);
	cfg->hostname = NULL;
	free(cfg->queue_dir);
	cfg->queue_dir = NULL;
	free(cfg->relayhost);
	cfg->relayhost = NULL;
	free(cfg->dns_servers);
	cfg->dns_servers = NULL;
	netacl_free(&cfg->relay_networks);
}

/* Print list items separated by ", ", breaking long lists onto
 * continuation lines so the output stays within inih's line length. */
static void config_dump_item(FILE *f, size_t *col, bool first,
			     const char *item, size_t len)
{
	if (!first && *col + 2 + len > 76) {
		fputs(",\n    ", f);
		*col = 4;
	} else if (!first) {
		fputs(", ", f);
		*col += 2;
	}
	fwrite(item, 1, len, f);
	*col += len;
}

static void config_dump_listen(const struct config *cfg, FILE *f)
{
	char host[NI_MAXHOST], port[NI_MAXSERV];
	char item[NI_MAXHOST + NI_MAXSERV + 4];
	size_t col;
	unsigned int i;
	int n;

	fputs("listen = ", f);
	col = strlen("listen = ");
	for (i = 0; i < cfg->listen_count; i++) {
		const struct config_listen *l = &cfg->listen[i];

		if (getnameinfo((const struct sockaddr *)&l->cl_addr,
				l->cl_addrlen, host, sizeof(host), port,
				sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV)
		    != 0)
			continue;	/* cannot happen for parsed entries */
		n = snprintf(item, sizeof(item),
			     l->cl_addr.ss_family == AF_INET6 ? "[%s]:%s" :
			     "%s:%s", host, port);
		config_dump_item(f, &col, i == 0, item, (size_t)n);
	}
	fputc('\n', f);
}

static void config_dump_netacl(const struct netacl *acl, const char *name,
			       FILE *f)
{
	const char *p, *sep;
	char *text;
	size_t col, len;
	bool first = true;
	int n;

	n = netacl_format(acl, NULL, 0);
	text = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (text == NULL) {
		fprintf(f, "# %s: out of memory\n", name);
		return;
	}
	netacl_format(acl, text, (size_t)n + 1);
	fprintf(f, "%s = ", name);
	col = strlen(name) + 3;
	for (p = text; *p != '\0'; p += len) {
		sep = strstr(p, ", ");
		len = sep != NULL ? (size_t)(sep - p) : strlen(p);
		config_dump_item(f, &col, first, p, len);
		first = false;
		if (sep != NULL)
			len += 2;
	}
	fputc('\n', f);
	free(text);
}

void config_dump(const struct config *cfg, FILE *f)
{
	char num[32];
	size_t i;

	for (i = 0; i < CONFIG_NKEYS; i++) {
		const struct config_key *k = &config_keys[i];
		const void *p = config_member_const(cfg, k);

		switch (k->ck_type) {
		case CONFIG_T_LISTEN:
			config_dump_listen(cfg, f);
			break;
		case CONFIG_T_HOSTNAME:
		case CONFIG_T_PATH:
		case CONFIG_T_STRING:
			fprintf(f, "%s = %s\n", k->ck_name,
				*(char *const *)p != NULL ?
				*(char *const *)p : "");
			break;
		case CONFIG_T_NUMBER:
			config_format_number(config_get_number(cfg, k),
					     k->ck_unit, num, sizeof(num));
			fprintf(f, "%s = %s\n", k->ck_name, num);
			break;
		case CONFIG_T_NETACL:
			config_dump_netacl(*(struct netacl *const *)p,
					   k->ck_name, f);
			break;
		case CONFIG_T_LOG_LEVEL:
			fprintf(f, "%s = %s\n", k->ck_name,
				config_log_level_name(
					*(const enum config_log_level *)p));
			break;
		case CONFIG_T_BOOL:
			fprintf(f, "%s = %s\n", k->ck_name,
				*(const bool *)p ? "yes" : "no");
			break;
		}
	}
}
