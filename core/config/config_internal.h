/*
 * config_internal.h: what the pieces of core/config share, and nothing
 * outside them may use: the settings table (config.c), the value parsers
 * (config_parse.c), the file loader (config_file.c) and config_dump()
 * (config_dump.c). The table is read-only; every function here works on a
 * struct config its caller owns (ownership as in config.h).
 */
#ifndef RINGMTA_CONFIG_INTERNAL_H
#define RINGMTA_CONFIG_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config/config.h"

enum config_type {
	CONFIG_T_LISTEN,
	CONFIG_T_HOSTNAME,
	CONFIG_T_PATH,
	CONFIG_T_STRING,	/* free text, may be empty, no control chars */
	CONFIG_T_NUMBER,
	CONFIG_T_NETACL,
	CONFIG_T_LOG_LEVEL,
	CONFIG_T_BOOL,
	CONFIG_T_RELAYHOST,	/* "" or a next hop; an IP gets its brackets */
	CONFIG_T_ADDRPORT,	/* "" or ip:port / [ipv6]:port, as listen */
	CONFIG_T_DNS_SERVERS,	/* "" or ip[:port] list; stored comma-separated */
};

/* What a number counts; decides the suffixes it takes. */
enum config_unit {
	CONFIG_U_COUNT,		/* plain decimal */
	CONFIG_U_BYTES,		/* k, M, G: powers of 1024 */
	CONFIG_U_SECONDS,	/* s, m, h */
	CONFIG_U_MILLIS,	/* ms (also plain), s */
	CONFIG_U_MICROS,	/* us (also plain), ms, s */
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
	bool ck_restart;		/* a running daemon keeps its value until
					 * restarted (SIGHUP does not change it) */
};

/* Upper limits for settings that only have a lower one: what the members
 * (and whoever copies them into an int or off_t) can hold. A number error
 * message says "at least" rather than "between" for these. */
#define CONFIG_OPEN_MAX32 ((uint64_t)INT_MAX)
#define CONFIG_OPEN_MAX64 ((uint64_t)INT64_MAX)

#define CONFIG_KIB ((uint64_t)1 << 10)
#define CONFIG_MIB ((uint64_t)1 << 20)
#define CONFIG_GIB ((uint64_t)1 << 30)

/* Room for one setting's error before the file and line are added. */
#define CONFIG_MSG_MAX 512

/* The settings, in the order of config_dump() and the example file
 * (config.c). */
extern const struct config_key config_keys[];
extern const size_t config_nkeys;

static inline void *config_member(struct config *cfg,
				  const struct config_key *k)
{
	return (char *)cfg + k->ck_offset;
}

static inline const void *config_member_const(const struct config *cfg,
					      const struct config_key *k)
{
	return (const char *)cfg + k->ck_offset;
}

/* config_dump.c: the value of key k as config show writes it, on one
 * line (lists joined with ", "); the caller frees it. NULL when memory
 * runs out. */
char *config_key_value_str(const struct config *cfg, const struct config_key *k);

/* config_parse.c */

/* Parse value for key k into cfg, leaving cfg unchanged on error; returns
 * 0, or -1 with the message (without the key) in msg. */
int config_set_key(struct config *cfg, const struct config_key *k,
		   const char *value, char *msg, size_t msglen);

/* Write v the way a person would: 16G rather than 17179869184. */
void config_format_number(uint64_t v, enum config_unit unit,
			  char *buf, size_t size);

/* The value of number key k, whatever the member's width. */
uint64_t config_get_number(const struct config *cfg,
			   const struct config_key *k);

/* The name of a log level ("info" for a value out of range); static. */
const char *config_log_level_name(enum config_log_level level);

/* A host name goes into SMTP replies and Received headers: letters,
 * digits, '-', '.', '_' only, so it cannot smuggle CR LF or blanks. */
bool config_hostname_ok(const char *s);

#endif
