/*
 * config.h: ringmta's settings, typed, and the loader for ringmta.conf
 * (flat "key = value" lines read with inih) and for "-o key=value".
 *
 * Ownership: struct config owns hostname, queue_dir and relay_networks;
 * config_free() releases them. Everything else is stored inline. There is
 * no global configuration: main() fills one struct config and hands a
 * const pointer to whoever needs it; after loading it is read-only and may
 * be shared between threads.
 *
 * Life cycle: config_defaults() (on an uninitialised or freed struct), then
 * any number of config_load_file() / config_set_override() calls (later
 * settings win), then config_validate(), and finally config_free().
 *
 * Error messages go into a caller's buffer (err, errlen), always
 * NUL-terminated when errlen > 0, and name the file, line and key.
 */
#ifndef RINGMTA_CONFIG_H
#define RINGMTA_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

struct netacl;

/* The most addresses "listen" may name. */
#define CONFIG_LISTEN_MAX 16

/* Log levels, ordered by verbosity. The values are those of enum log_level
 * in core/log.h (error 0 .. debug 3); config does not include log.h so that
 * it builds and tests alone. */
enum config_log_level {
	CONFIG_LOG_ERROR = 0,
	CONFIG_LOG_WARNING = 1,
	CONFIG_LOG_INFO = 2,
	CONFIG_LOG_DEBUG = 3,
};

/* What a listener is for; written "addr:port/submission" in the config. */
enum config_listen_kind {
	CONFIG_LISTEN_SMTP = 0,		/* MTA port 25: STARTTLS offered,
					 * relay for relay_networks or AUTH */
	CONFIG_LISTEN_SUBMISSION = 1,	/* port 587: STARTTLS, AUTH to relay */
	CONFIG_LISTEN_SUBMISSIONS = 2,	/* port 465: implicit TLS, AUTH to relay */
};

struct config_listen {
	struct sockaddr_storage cl_addr;	/* AF_INET or AF_INET6 */
	socklen_t cl_addrlen;
	enum config_listen_kind cl_kind;
};

struct config {
	/* Where to accept SMTP: numeric addresses with ports, no duplicates. */
	struct config_listen listen[CONFIG_LISTEN_MAX];
	unsigned int listen_count;			/* 1..CONFIG_LISTEN_MAX */

	char *hostname;		/* owned; greeting, EHLO reply, Received */
	char *queue_dir;	/* owned */

	unsigned int workers;			/* 0 = one per online CPU */
	uint64_t max_message_size;		/* bytes */
	unsigned int max_recipients;
	unsigned int max_connections;		/* per process */
	unsigned int max_connections_per_ip;	/* 0 = unlimited */
	unsigned int max_errors;

	struct netacl *relay_networks;	/* owned; never NULL after defaults */

	unsigned int timeout_command;	/* seconds, RFC 5321 4.5.3.2.7 */
	unsigned int timeout_data;	/* seconds, RFC 5321 4.5.3.2.5 */
	unsigned int shutdown_timeout;	/* seconds */
	unsigned int greeting_delay;	/* milliseconds before the 220; input
					 * arriving earlier is refused */

	uint64_t queue_map_size;	/* bytes, LMDB map size */
	unsigned int queue_commit_delay; /* microseconds a commit under load
					 * waits for more (queue_set_commit_delay) */
	bool queue_journal;		/* new mail through the journal first
					 * (README "Queue journal") */
	unsigned int recv_buffer_size;	/* bytes, power of two */
	unsigned int recv_buffers_max;	/* per worker, power of two */
	unsigned int listen_backlog;

	enum config_log_level log_level;
	bool smtputf8;		/* advertise SMTPUTF8 (RFC 6531) */
	bool chunking;		/* advertise CHUNKING/BDAT (RFC 3030) */

	/* Delivery (outbound SMTP) */
	bool delivery;		/* deliver the queue; no = accept only */
	char *relayhost;	/* owned; "" = MX routing, else
				 * "[ip]:port" or "domain[:port]" */
	unsigned int smtp_port;	/* port for MX deliveries */
	bool smtp_allow_private_destinations;	/* MX hosts on loopback,
						 * private, link-local addresses */
	char *dns_servers;	/* owned; "" = /etc/resolv.conf */
	unsigned int destination_concurrency_limit;
	unsigned int destination_rate_limit;	/* messages/s, 0 = none */
	unsigned int delivery_inflight_max;	/* messages being delivered at once */
	unsigned int smtp_reuse_limit;	/* messages per connection */
	unsigned int smtp_idle_timeout;	/* seconds an idle connection stays */
	unsigned int smtp_connect_timeout;	/* seconds */
	unsigned int smtp_command_timeout;	/* greeting, EHLO, MAIL, RCPT */
	unsigned int smtp_data_init_timeout;	/* DATA -> 354 */
	unsigned int smtp_data_block_timeout;	/* sending the body */
	unsigned int smtp_data_done_timeout;	/* "." -> final reply */
	unsigned int retry_min;		/* seconds: first retry delay */
	unsigned int retry_max;		/* seconds: cap on the delay */
	unsigned int max_queue_lifetime;	/* seconds, then bounce */
	unsigned int delay_warning_time;	/* seconds; 0 = no delay DSN */

	/* Source addresses and SPF */
	char *smtp_bind_address;	/* owned; "" or an IPv4 address that
					 * outbound IPv4 sockets bind to */
	char *smtp_bind_address6;	/* owned; "" or an IPv6 address */
	char *spf_inbound;	/* owned; none|header|refuse (config_spf_inbound) */

	/* TLS and AUTH */
	char *tls_cert_file;	/* owned; PEM chain; "" = no TLS offered */
	char *tls_key_file;	/* owned; PEM private key */
	char *tls_ca_file;	/* owned; outbound verify store, "" = system */
	char *smtp_tls_policy;	/* owned; outbound default: none|may|encrypt|verify */
	char *smtp_tls_policy_map;	/* owned; "domain=policy, ..." */
	bool smtp_tls_fallback;	/* "may": retry in clear if the handshake fails */
	unsigned int smtp_tls_session_cache_size;	/* next hops whose TLS session
							 * each worker keeps; 0 = off */
	char *smtp_tls_wrappermode_ports;	/* owned; ports spoken to with TLS
						 * from the first byte (465) */
	char *smtp_auth_credentials_file;	/* owned; outbound AUTH accounts per
						 * next hop, "" = none */
	bool smtp_auth_plaintext;	/* AUTH without TLS where the policy is none */
	char *auth_passwd_file;	/* owned; "" = no password accounts */
	char *auth_jwt_keys_file;	/* owned; PEM public keys for OAuth */
	char *auth_jwt_issuer;	/* owned */
	char *auth_jwt_audience;	/* owned */
	bool auth_plaintext_loopback;	/* offer AUTH without TLS to loopback */
	unsigned int auth_max_failures;	/* per client address per 5 minutes */

	/* DKIM signing and DMARC alignment (README "DKIM signing") */
	char *dkim_key_table;	/* owned; key table file, "" = no signing */
	char *dkim_default_domain;	/* owned; d= when nothing else matches */
	char *dkim_no_key_action;	/* owned; unsigned | defer | reject */
	unsigned int dkim_sign_threads;	/* 0 = one per online CPU */
	char *dmarc_unaligned_action;	/* owned; accept | reject */

	/* Bounce classes and the suppression list (README "Bounce classes") */
	char *bounce_class_rules;	/* owned; YAML files, space-separated,
					 * checked before the built-in rules */
	char *suppression;		/* owned; off | refuse | drop */
	char *suppression_scope;	/* owned; sender_domain | global */
	unsigned int suppression_expire;	/* seconds; 0 = never */
	/* Traffic shaping (core/shaping/shp_rules.h) */
	char *shaping_rules;	/* owned; rules files, space-separated, read in
				 * order after the built-in rules; "" = none */
	bool shaping_builtin_rules;	/* read conf/shaping.yaml (compiled in) first */

	/* Operation */
	char *metrics_listen;	/* owned; "ip:port" of the HTTP metrics
				 * endpoint, "" = off */
	unsigned int metrics_top_sites;	/* names shown per site, provider and
					 * source metric (core/shaping/shp_met.h) */
	char *admin_listen;	/* owned; "ip:port" of the admin API
				 * (core/admin), "" = off */
	char *admin_token_file;	/* owned; bearer tokens, one a line; "" =
				 * none (then loopback only, no token) */

	/* Delivery events (core/events/events.h) */
	char *event_log;	/* owned; file path, "stderr", "syslog"; "" = off */
	char *event_log_format;	/* owned; text | json */
	uint64_t events_max_backlog;	/* records kept at most */
	char *webhook_url;	/* owned; URLs, comma-separated; "" = none */
	char *webhook_events;	/* owned; event types sent; "" = all */
	unsigned int webhook_batch_max;	/* records per request; 1 = no array */
	unsigned int webhook_batch_wait;	/* ms waited for a fuller batch */
	unsigned int webhook_timeout;	/* seconds per request */
	char *webhook_header_file;	/* owned; "Name: value" lines to send */
	bool webhook_tls_verify;	/* verify https endpoints' certificates */
	/* HTTP injection (core/inject, README "HTTP injection") */
	char *http_listen;		/* owned; "ip:port", "" = off */
	uint64_t http_max_request_size;	/* bytes; 0 = max_message_size * 1.5 */
	unsigned int http_max_connections;	/* open at once */
};

/* Fill cfg with the defaults; cfg must not hold owned data (it is
 * overwritten, not freed). Aborts only if memory runs out. */
void config_defaults(struct config *cfg);

/*
 * Read settings from a file: "key = value" lines, '#' or ';' comments,
 * no [sections]. A line that starts with whitespace continues the previous
 * setting's value (for long listen / relay_networks lists). Unknown keys are
 * errors; a key given twice takes the last value. Returns 0, or -1 with
 * err like "ringmta.conf:12: unknown key 'listn'". Settings before and
 * after the bad line may have been applied; cfg still needs config_free().
 */
int config_load_file(struct config *cfg, const char *path,
		     char *err, size_t errlen);

/* Set one setting from its text form. Returns 0, or -1 with err like
 * "max_recipients: must be an integer >= 100"; on error cfg is unchanged. */
int config_set(struct config *cfg, const char *key, const char *value,
	       char *err, size_t errlen);

/* config_set() for the text "key=value" (blanks around either part are
 * ignored), as given to -o. Returns 0 or -1 with err like
 * "-o listn=x: unknown key 'listn'". */
int config_set_override(struct config *cfg, const char *kv,
			char *err, size_t errlen);

/* Checks that involve more than one setting; run after all loading.
 * Returns 0 or -1 with err. */
int config_validate(const struct config *cfg, char *err, size_t errlen);

/* Release owned data; cfg may then be given to config_defaults() again.
 * Safe to call twice. */
void config_free(struct config *cfg);

/* Write "key = value" for every setting, in the order of the example file.
 * The output loads back into an equal configuration. */
void config_dump(const struct config *cfg, FILE *f);
/* config_dump() of only the settings whose values differ from
 * config_defaults()' (as postconf -n). 0, or -1 when memory ran out
 * (the output is then incomplete). */
int config_dump_changed(const struct config *cfg, FILE *f);

/* config_dump() of only the settings a running daemon keeps until it
 * restarts (their keys' "needs a restart" flag; config show -r). */
void config_dump_restart(const struct config *cfg, FILE *f);

/*
 * Reload support (config_diff.c). A setting either takes effect on
 * SIGHUP or needs a restart: the table says which, per key.
 */
/* 1: key needs a restart, 0: SIGHUP changes it, -1: unknown key. */
int config_key_restart(const char *key);
/* The name of setting i in the table's order, NULL past the last. */
const char *config_key_name(size_t i);
/* The value of a setting as config show writes it, on one line; the
 * caller frees it. NULL: unknown key or out of memory. */
char *config_value_str(const struct config *cfg, const char *key);

/* One setting whose value differs between two configurations. */
struct config_change {
	const char *cc_key;	/* the table's, static */
	char *cc_old, *cc_new;	/* owned: values as config show writes them,
				 * but a URL's user:password is "***" */
	bool cc_restart;	/* the setting needs a restart */
};
/* Every setting whose value differs from a to b, in the table's order,
 * into *ch_r (NULL when none; free with config_changes_free()). The
 * number of changes, or -1 when memory ran out. */
int config_diff(const struct config *a, const struct config *b, struct config_change **ch_r);
void config_changes_free(struct config_change **ch, int n);
/* Give nc the value running has for every setting that needs a restart.
 * 0, or -1 with err (out of memory); run config_validate() after. */
int config_keep_restart(struct config *nc, const struct config *running, char *err,
			size_t errlen);

/* Outbound TLS policies, in increasing strictness. */
enum config_tls_policy {
	CONFIG_TLS_NONE = 0,	/* never STARTTLS */
	CONFIG_TLS_MAY = 1,	/* STARTTLS when offered, no verification */
	CONFIG_TLS_ENCRYPT = 2,	/* STARTTLS required, no verification */
	CONFIG_TLS_VERIFY = 3,	/* required, chain and MX host name verified */
};
/* "none"... to the enum, or -1. */
int config_tls_policy_parse(const char *s);

/* SPF checks of inbound mail on smtp listeners (spf_inbound). */
enum config_spf_inbound {
	CONFIG_SPF_NONE = 0,	/* no check */
	CONFIG_SPF_HEADER = 1,	/* Authentication-Results header only */
	CONFIG_SPF_REFUSE = 2,	/* header; fail: 550 5.7.23, temperror: 451 */
};
/* "none", "header", "refuse" to the enum, or -1. */
int config_spf_inbound_parse(const char *s);
/* Whether port is in list (smtp_tls_wrappermode_ports: port numbers
 * separated by commas or blanks): 1 yes, 0 no, -1 (with err) when the
 * list is malformed (checked by config_validate). */
int config_port_in_list(const char *list, unsigned port, char *err, size_t errlen);
/* The policy smtp_tls_policy_map gives a domain, -1 if none, -2 (with
 * err) if the map is malformed. */
int config_tls_policy_lookup(const char *map, const char *domain, char *err, size_t errlen);
/* What to do with a message whose From domain has no DKIM key. */
enum config_dkim_no_key {
	CONFIG_DKIM_NO_KEY_UNSIGNED = 0,	/* send it unsigned (counted, logged) */
	CONFIG_DKIM_NO_KEY_DEFER = 1,		/* 451 4.7.0 at the end of DATA */
	CONFIG_DKIM_NO_KEY_REJECT = 2,		/* 550 5.7.0 */
};
/* "unsigned"... to the enum, or -1. */
int config_dkim_no_key_parse(const char *s);

/* What to do with a message whose From domain aligns with neither the
 * DKIM domain nor the envelope sender's (DMARC, relaxed). */
enum config_dmarc_unaligned {
	CONFIG_DMARC_UNALIGNED_ACCEPT = 0,	/* counted and logged */
	CONFIG_DMARC_UNALIGNED_REJECT = 1,	/* 550 5.7.1 at the end of DATA */
};
/* "accept" or "reject" to the enum, or -1. */
int config_dmarc_unaligned_parse(const char *s);

/* Mail to a suppressed recipient (suppression). */
enum config_suppression {
	CONFIG_SUPPRESSION_OFF = 0,	/* no check, nothing added */
	CONFIG_SUPPRESSION_REFUSE = 1,	/* 550 5.1.1 at RCPT */
	CONFIG_SUPPRESSION_DROP = 2,	/* 250 at RCPT, not queued, logged */
};
/* "off", "refuse", "drop" to the enum, or -1. */
int config_suppression_parse(const char *s);
/* Whose list a failure adds a recipient to (suppression_scope). */
enum config_suppression_scope {
	CONFIG_SUPPRESSION_SENDER_DOMAIN = 0,	/* the sender's domain's */
	CONFIG_SUPPRESSION_GLOBAL = 1,		/* every sender's */
};
/* "sender_domain", "global" to the enum, or -1. */
int config_suppression_scope_parse(const char *s);

/* An "a.b.c.d:port" or "[ipv6]:port" setting (listen, metrics_listen) as a
 * socket address; 0, or -1 with a message naming the value. */
int config_addrport_parse(const char *s, struct sockaddr_storage *addr_r, socklen_t *len_r,
			  char *err, size_t errlen);

#endif
