/*
 * config.c: the settings table and what works on the whole of struct
 * config: defaults, config_set() and -o overrides, cross-setting
 * validation and config_free().
 *
 * Every setting is one row of config_keys[]: its name, type, where it lives
 * in struct config, its limits and its default written as text. Defaults
 * go through the same parsers as the file (config_parse.c), so the table,
 * config_dump() (config_dump.c) and docs/ringmta.conf.example speak the
 * same language. The file loader is config_file.c. Owns nothing beyond
 * what struct config owns (see config.h).
 */
#include "core/config/config_internal.h"
#include "core/config/netacl.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <ctype.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Timeouts beyond a day are mistakes, and a bound keeps ms arithmetic safe. */
#define CONFIG_DURATION_MAX 86400u

#define CONFIG_MEMBER(m) \
	.ck_offset = offsetof(struct config, m), \
	.ck_size = sizeof(((struct config *)NULL)->m)

const struct config_key config_keys[] = {
	{ .ck_name = "listen", .ck_type = CONFIG_T_LISTEN,
	  .ck_default = "127.0.0.1:2525",
	  .ck_restart = true },
	{ .ck_name = "hostname", .ck_type = CONFIG_T_HOSTNAME,
	  CONFIG_MEMBER(hostname), .ck_default = NULL,
	  .ck_restart = true },
	{ .ck_name = "queue_dir", .ck_type = CONFIG_T_PATH,
	  CONFIG_MEMBER(queue_dir), .ck_default = "./ringmta-queue",
	  .ck_restart = true },
	{ .ck_name = "workers", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_COUNT, CONFIG_MEMBER(workers),
	  .ck_min = 0, .ck_max = 254, .ck_default = "0",
	  .ck_restart = true },
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
	  .ck_min = 0, .ck_max = CONFIG_DURATION_MAX, .ck_default = "30",
	  .ck_restart = true },
	{ .ck_name = "queue_map_size", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_BYTES, CONFIG_MEMBER(queue_map_size),
	  .ck_min = 16 * CONFIG_MIB, .ck_max = CONFIG_OPEN_MAX64,
	  .ck_default = "16G",
	  .ck_restart = true },
	{ .ck_name = "queue_commit_delay", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_MICROS, CONFIG_MEMBER(queue_commit_delay),
	  .ck_min = 0, .ck_max = 100000, .ck_default = "1000" },
	{ .ck_name = "queue_journal", .ck_type = CONFIG_T_BOOL,
	  CONFIG_MEMBER(queue_journal), .ck_default = "yes",
	  .ck_restart = true },
	{ .ck_name = "recv_buffer_size", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_BYTES, .ck_pow2 = true,
	  CONFIG_MEMBER(recv_buffer_size),
	  .ck_min = 1024, .ck_max = 65536, .ck_default = "8192",
	  .ck_restart = true },
	{ .ck_name = "recv_buffers_max", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_COUNT, .ck_pow2 = true,
	  CONFIG_MEMBER(recv_buffers_max),
	  .ck_min = 64, .ck_max = 32768, .ck_default = "16384",
	  .ck_restart = true },
	{ .ck_name = "listen_backlog", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_COUNT, CONFIG_MEMBER(listen_backlog),
	  .ck_min = 1, .ck_max = CONFIG_OPEN_MAX32, .ck_default = "4096",
	  .ck_restart = true },
	{ .ck_name = "log_level", .ck_type = CONFIG_T_LOG_LEVEL,
	  CONFIG_MEMBER(log_level), .ck_default = "info" },
	{ .ck_name = "smtputf8", .ck_type = CONFIG_T_BOOL,
	  CONFIG_MEMBER(smtputf8), .ck_default = "yes" },
	{ .ck_name = "chunking", .ck_type = CONFIG_T_BOOL,
	  CONFIG_MEMBER(chunking), .ck_default = "yes" },
	/* Delivery */
	{ .ck_name = "delivery", .ck_type = CONFIG_T_BOOL,
	  CONFIG_MEMBER(delivery), .ck_default = "yes",
	  .ck_restart = true },
	{ .ck_name = "relayhost", .ck_type = CONFIG_T_RELAYHOST,
	  CONFIG_MEMBER(relayhost), .ck_default = "" },
	{ .ck_name = "smtp_port", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_COUNT, CONFIG_MEMBER(smtp_port),
	  .ck_min = 1, .ck_max = 65535, .ck_default = "25" },
	{ .ck_name = "smtp_allow_private_destinations", .ck_type = CONFIG_T_BOOL,
	  CONFIG_MEMBER(smtp_allow_private_destinations), .ck_default = "no" },
	{ .ck_name = "dns_servers", .ck_type = CONFIG_T_DNS_SERVERS,
	  CONFIG_MEMBER(dns_servers), .ck_default = "",
	  .ck_restart = true },
	{ .ck_name = "destination_concurrency_limit", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_COUNT, CONFIG_MEMBER(destination_concurrency_limit),
	  .ck_min = 1, .ck_max = 10000, .ck_default = "20" },
	{ .ck_name = "delivery_inflight_max", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_COUNT, CONFIG_MEMBER(delivery_inflight_max),
	  .ck_min = 1, .ck_max = 1000000, .ck_default = "20000" },
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
	{ .ck_name = "delay_warning_time", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_SECONDS, CONFIG_MEMBER(delay_warning_time),
	  .ck_min = 0, .ck_max = 100 * 86400ull, .ck_default = "0" },
	/* Source addresses and SPF (sender authentication) */
	{ .ck_name = "smtp_bind_address", .ck_type = CONFIG_T_STRING,
	  CONFIG_MEMBER(smtp_bind_address), .ck_default = "",
	  .ck_restart = true },
	{ .ck_name = "smtp_bind_address6", .ck_type = CONFIG_T_STRING,
	  CONFIG_MEMBER(smtp_bind_address6), .ck_default = "",
	  .ck_restart = true },
	{ .ck_name = "spf_inbound", .ck_type = CONFIG_T_STRING,
	  CONFIG_MEMBER(spf_inbound), .ck_default = "none",
	  .ck_restart = true },
	/* TLS and AUTH */
	{ .ck_name = "tls_cert_file", .ck_type = CONFIG_T_STRING,
	  CONFIG_MEMBER(tls_cert_file), .ck_default = "" },
	{ .ck_name = "tls_key_file", .ck_type = CONFIG_T_STRING,
	  CONFIG_MEMBER(tls_key_file), .ck_default = "" },
	{ .ck_name = "tls_ca_file", .ck_type = CONFIG_T_STRING,
	  CONFIG_MEMBER(tls_ca_file), .ck_default = "" },
	{ .ck_name = "smtp_tls_policy", .ck_type = CONFIG_T_STRING,
	  CONFIG_MEMBER(smtp_tls_policy), .ck_default = "may" },
	{ .ck_name = "smtp_tls_policy_map", .ck_type = CONFIG_T_STRING,
	  CONFIG_MEMBER(smtp_tls_policy_map), .ck_default = "" },
	{ .ck_name = "smtp_tls_fallback", .ck_type = CONFIG_T_BOOL,
	  CONFIG_MEMBER(smtp_tls_fallback), .ck_default = "yes" },
	{ .ck_name = "smtp_tls_session_cache_size", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_COUNT, CONFIG_MEMBER(smtp_tls_session_cache_size),
	  .ck_min = 0, .ck_max = 1000000, .ck_default = "1000" },
	{ .ck_name = "smtp_tls_wrappermode_ports", .ck_type = CONFIG_T_STRING,
	  CONFIG_MEMBER(smtp_tls_wrappermode_ports), .ck_default = "465" },
	{ .ck_name = "smtp_auth_credentials_file", .ck_type = CONFIG_T_STRING,
	  CONFIG_MEMBER(smtp_auth_credentials_file), .ck_default = "" },
	{ .ck_name = "smtp_auth_plaintext", .ck_type = CONFIG_T_BOOL,
	  CONFIG_MEMBER(smtp_auth_plaintext), .ck_default = "no" },
	{ .ck_name = "auth_passwd_file", .ck_type = CONFIG_T_STRING,
	  CONFIG_MEMBER(auth_passwd_file), .ck_default = "" },
	{ .ck_name = "auth_jwt_keys_file", .ck_type = CONFIG_T_STRING,
	  CONFIG_MEMBER(auth_jwt_keys_file), .ck_default = "" },
	{ .ck_name = "auth_jwt_issuer", .ck_type = CONFIG_T_STRING,
	  CONFIG_MEMBER(auth_jwt_issuer), .ck_default = "" },
	{ .ck_name = "auth_jwt_audience", .ck_type = CONFIG_T_STRING,
	  CONFIG_MEMBER(auth_jwt_audience), .ck_default = "" },
	{ .ck_name = "auth_plaintext_loopback", .ck_type = CONFIG_T_BOOL,
	  CONFIG_MEMBER(auth_plaintext_loopback), .ck_default = "no" },
	{ .ck_name = "auth_max_failures", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_COUNT, CONFIG_MEMBER(auth_max_failures),
	  .ck_min = 1, .ck_max = CONFIG_OPEN_MAX32, .ck_default = "10" },
	/* DKIM signing */
	{ .ck_name = "dkim_key_table", .ck_type = CONFIG_T_STRING,
	  CONFIG_MEMBER(dkim_key_table), .ck_default = "" },
	{ .ck_name = "dkim_default_domain", .ck_type = CONFIG_T_STRING,
	  CONFIG_MEMBER(dkim_default_domain), .ck_default = "" },
	{ .ck_name = "dkim_no_key_action", .ck_type = CONFIG_T_STRING,
	  CONFIG_MEMBER(dkim_no_key_action), .ck_default = "unsigned" },
	{ .ck_name = "dkim_sign_threads", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_COUNT, CONFIG_MEMBER(dkim_sign_threads),
	  .ck_min = 0, .ck_max = 256, .ck_default = "0",
	  .ck_restart = true },
	{ .ck_name = "dmarc_unaligned_action", .ck_type = CONFIG_T_STRING,
	  CONFIG_MEMBER(dmarc_unaligned_action), .ck_default = "accept" },
	/* Bounce classes and suppression */
	{ .ck_name = "bounce_class_rules", .ck_type = CONFIG_T_STRING,
	  CONFIG_MEMBER(bounce_class_rules), .ck_default = "" },
	{ .ck_name = "suppression", .ck_type = CONFIG_T_STRING,
	  CONFIG_MEMBER(suppression), .ck_default = "refuse" },
	{ .ck_name = "suppression_scope", .ck_type = CONFIG_T_STRING,
	  CONFIG_MEMBER(suppression_scope), .ck_default = "sender_domain" },
	{ .ck_name = "suppression_expire", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_SECONDS, CONFIG_MEMBER(suppression_expire),
	  .ck_min = 0, .ck_max = 3650 * 86400ull, .ck_default = "2160h" },
	/* Traffic shaping (README "Traffic shaping"; conf/shaping.yaml) */
	{ .ck_name = "shaping_rules", .ck_type = CONFIG_T_STRING,
	  CONFIG_MEMBER(shaping_rules), .ck_default = "" },
	{ .ck_name = "shaping_builtin_rules", .ck_type = CONFIG_T_BOOL,
	  CONFIG_MEMBER(shaping_builtin_rules), .ck_default = "yes" },
	/* Operation */
	{ .ck_name = "metrics_listen", .ck_type = CONFIG_T_ADDRPORT,
	  CONFIG_MEMBER(metrics_listen), .ck_default = "",
	  .ck_restart = true },
	{ .ck_name = "metrics_top_sites", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_COUNT, CONFIG_MEMBER(metrics_top_sites),
	  .ck_min = 0, .ck_max = 1000, .ck_default = "50", .ck_restart = true },
	/* The admin API (README "Admin API") */
	{ .ck_name = "admin_listen", .ck_type = CONFIG_T_ADDRPORT,
	  CONFIG_MEMBER(admin_listen), .ck_default = "127.0.0.1:8025",
	  .ck_restart = true },
	{ .ck_name = "admin_token_file", .ck_type = CONFIG_T_STRING,
	  CONFIG_MEMBER(admin_token_file), .ck_default = "" },
	/* Delivery events (README "Delivery events and webhooks") */
	{ .ck_name = "event_log", .ck_type = CONFIG_T_STRING,
	  CONFIG_MEMBER(event_log), .ck_default = "" },
	{ .ck_name = "event_log_format", .ck_type = CONFIG_T_STRING,
	  CONFIG_MEMBER(event_log_format), .ck_default = "text" },
	{ .ck_name = "events_max_backlog", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_COUNT, CONFIG_MEMBER(events_max_backlog),
	  .ck_min = 100, .ck_max = CONFIG_OPEN_MAX64, .ck_default = "1000000" },
	{ .ck_name = "webhook_url", .ck_type = CONFIG_T_STRING,
	  CONFIG_MEMBER(webhook_url), .ck_default = "" },
	{ .ck_name = "webhook_events", .ck_type = CONFIG_T_STRING,
	  CONFIG_MEMBER(webhook_events), .ck_default = "" },
	{ .ck_name = "webhook_batch_max", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_COUNT, CONFIG_MEMBER(webhook_batch_max),
	  .ck_min = 1, .ck_max = 10000, .ck_default = "1" },
	{ .ck_name = "webhook_batch_wait", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_MILLIS, CONFIG_MEMBER(webhook_batch_wait),
	  .ck_min = 0, .ck_max = 60000, .ck_default = "1000" },
	{ .ck_name = "webhook_timeout", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_SECONDS, CONFIG_MEMBER(webhook_timeout),
	  .ck_min = 1, .ck_max = 600, .ck_default = "10" },
	{ .ck_name = "webhook_header_file", .ck_type = CONFIG_T_STRING,
	  CONFIG_MEMBER(webhook_header_file), .ck_default = "" },
	{ .ck_name = "webhook_tls_verify", .ck_type = CONFIG_T_BOOL,
	  CONFIG_MEMBER(webhook_tls_verify), .ck_default = "yes" },
	/* HTTP injection (README "HTTP injection") */
	{ .ck_name = "http_listen", .ck_type = CONFIG_T_ADDRPORT,
	  CONFIG_MEMBER(http_listen), .ck_default = "",
	  .ck_restart = true },
	{ .ck_name = "http_max_request_size", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_BYTES, CONFIG_MEMBER(http_max_request_size),
	  .ck_min = 0, .ck_max = CONFIG_OPEN_MAX64, .ck_default = "0",
	  .ck_restart = true },
	{ .ck_name = "http_max_connections", .ck_type = CONFIG_T_NUMBER,
	  .ck_unit = CONFIG_U_COUNT, CONFIG_MEMBER(http_max_connections),
	  .ck_min = 1, .ck_max = 10000, .ck_default = "256",
	  .ck_restart = true },
};

const size_t config_nkeys = sizeof(config_keys) / sizeof(config_keys[0]);

static const struct config_key *config_find_key(const char *name)
{
	size_t i;

	for (i = 0; i < config_nkeys; i++) {
		if (strcmp(config_keys[i].ck_name, name) == 0)
			return &config_keys[i];
	}
	return NULL;
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
	for (i = 0; i < config_nkeys; i++) {
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

static int config_validate_sender_auth(const struct config *cfg, char *err, size_t errlen);
static int config_validate_admin(const struct config *cfg, char *err, size_t errlen);

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
	if ((cfg->tls_cert_file[0] == '\0') != (cfg->tls_key_file[0] == '\0')) {
		snprintf(err, errlen, "tls_cert_file and tls_key_file go together");
		return -1;
	}
	for (unsigned i = 0; i < cfg->listen_count; i++)
		if (cfg->listen[i].cl_kind == CONFIG_LISTEN_SUBMISSIONS &&
		    cfg->tls_cert_file[0] == '\0') {
			snprintf(err, errlen, "listen: a /submissions listener (implicit"
				 " TLS) needs tls_cert_file and tls_key_file");
			return -1;
		}
	if (config_tls_policy_parse(cfg->smtp_tls_policy) < 0) {
		snprintf(err, errlen, "smtp_tls_policy: must be none, may, encrypt or verify");
		return -1;
	}
	if (config_tls_policy_lookup(cfg->smtp_tls_policy_map, "", err, errlen) == -2)
		return -1;
	if (config_port_in_list(cfg->smtp_tls_wrappermode_ports, 0, err, errlen) < 0)
		return -1;
	if (cfg->retry_min > cfg->retry_max) {
		config_format_number(cfg->retry_min, CONFIG_U_SECONDS, a, sizeof(a));
		config_format_number(cfg->retry_max, CONFIG_U_SECONDS, b, sizeof(b));
		snprintf(err, errlen, "retry_min (%ss) must not be greater than retry_max (%ss)",
			 a, b);
		return -1;
	}
	if (config_validate_sender_auth(cfg, err, errlen) < 0)
		return -1;
	if ((cfg->auth_jwt_keys_file[0] != '\0') &&
	    (cfg->auth_jwt_issuer[0] == '\0' || cfg->auth_jwt_audience[0] == '\0')) {
		snprintf(err, errlen, "auth_jwt_keys_file needs auth_jwt_issuer and"
			 " auth_jwt_audience");
		return -1;
	}
	if (config_dkim_no_key_parse(cfg->dkim_no_key_action) < 0) {
		snprintf(err, errlen, "dkim_no_key_action: must be unsigned, defer or reject");
		return -1;
	}
	if (config_dmarc_unaligned_parse(cfg->dmarc_unaligned_action) < 0) {
		snprintf(err, errlen, "dmarc_unaligned_action: must be accept or reject");
		return -1;
	}
	if (config_suppression_parse(cfg->suppression) < 0) {
		snprintf(err, errlen, "suppression: must be off, refuse or drop");
		return -1;
	}
	if (config_suppression_scope_parse(cfg->suppression_scope) < 0) {
		snprintf(err, errlen, "suppression_scope: must be sender_domain or global");
		return -1;
	}
	if (strchr(cfg->dkim_default_domain, ' ') != NULL ||
	    strchr(cfg->dkim_default_domain, '\t') != NULL) {
		snprintf(err, errlen, "dkim_default_domain: one domain name");
		return -1;
	}
	if (cfg->dkim_default_domain[0] != '\0' && cfg->dkim_key_table[0] == '\0') {
		snprintf(err, errlen, "dkim_default_domain needs dkim_key_table");
		return -1;
	}
	if (config_validate_admin(cfg, err, errlen) < 0)
		return -1;
	if (strcmp(cfg->event_log_format, "text") != 0 &&
	    strcmp(cfg->event_log_format, "json") != 0) {
		snprintf(err, errlen, "event_log_format: must be text or json");
		return -1;
	}
	return 0;
}

/* The admin API may listen beyond loopback only behind tokens. */
static int config_validate_admin(const struct config *cfg, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	bool loopback;

	if (cfg->admin_listen[0] == '\0' || cfg->admin_token_file[0] != '\0')
		return 0;
	if (config_addrport_parse(cfg->admin_listen, &ss, &len, err, errlen) < 0)
		return -1;
	if (ss.ss_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)&ss)->sin6_addr;

		loopback = IN6_IS_ADDR_LOOPBACK(a) ||
			   (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	} else {
		loopback = (ntohl(((const struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
	}
	if (!loopback) {
		snprintf(err, errlen, "admin_listen %s: not a loopback address, so"
			 " admin_token_file is required (anyone who reaches it could"
			 " delete the queue)", cfg->admin_listen);
		return -1;
	}
	return 0;
}

/* The source address and SPF settings (syntax only: whether an
 * address is local is for smtp_client_check_bind(), which binds). */
static int config_validate_sender_auth(const struct config *cfg, char *err, size_t errlen)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (cfg->smtp_bind_address[0] != '\0' &&
	    inet_pton(AF_INET, cfg->smtp_bind_address, &a4) != 1) {
		snprintf(err, errlen, "smtp_bind_address: '%s' is not a numeric IPv4 address",
			 cfg->smtp_bind_address);
		return -1;
	}
	if (cfg->smtp_bind_address6[0] != '\0' &&
	    inet_pton(AF_INET6, cfg->smtp_bind_address6, &a6) != 1) {
		snprintf(err, errlen, "smtp_bind_address6: '%s' is not a numeric IPv6 address",
			 cfg->smtp_bind_address6);
		return -1;
	}
	if (config_spf_inbound_parse(cfg->spf_inbound) < 0) {
		snprintf(err, errlen, "spf_inbound: must be none, header or refuse");
		return -1;
	}
	return 0;
}

int config_spf_inbound_parse(const char *s)
{
	static const char *const names[] = { "none", "header", "refuse" };

	for (int i = 0; i < 3; i++)
		if (strcasecmp(s, names[i]) == 0)
			return i;
	return -1;
}

int config_dkim_no_key_parse(const char *s)
{
	static const char *const names[] = { "unsigned", "defer", "reject" };

	for (int i = 0; i < 3; i++)
		if (strcasecmp(s, names[i]) == 0)
			return i;
	return -1;
}

int config_suppression_parse(const char *s)
{
	static const char *const names[] = { "off", "refuse", "drop" };

	for (int i = 0; i < 3; i++)
		if (strcasecmp(s, names[i]) == 0)
			return i;
	return -1;
}

int config_suppression_scope_parse(const char *s)
{
	if (strcasecmp(s, "sender_domain") == 0)
		return CONFIG_SUPPRESSION_SENDER_DOMAIN;
	if (strcasecmp(s, "global") == 0)
		return CONFIG_SUPPRESSION_GLOBAL;
	return -1;
}

int config_dmarc_unaligned_parse(const char *s)
{
	if (strcasecmp(s, "accept") == 0)
		return CONFIG_DMARC_UNALIGNED_ACCEPT;
	if (strcasecmp(s, "reject") == 0)
		return CONFIG_DMARC_UNALIGNED_REJECT;
	return -1;
}

int config_tls_policy_parse(const char *s)
{
	static const char *const names[] = { "none", "may", "encrypt", "verify" };

	for (int i = 0; i < 4; i++)
		if (strcasecmp(s, names[i]) == 0)
			return i;
	return -1;
}

int config_port_in_list(const char *list, unsigned port, char *err, size_t errlen)
{
	const char *p = list;
	int found = 0;

	while (*p != '\0') {
		unsigned long v = 0;
		const char *start;

		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		for (start = p; *p >= '0' && *p <= '9' && p - start < 6; p++)
			v = v * 10 + (unsigned long)(*p - '0');
		if (p == start || v == 0 || v > 65535 ||
		    (*p != '\0' && *p != ',' && *p != ' ' && *p != '\t')) {
			snprintf(err, errlen, "smtp_tls_wrappermode_ports: expected port numbers"
				 " (1-65535) separated by commas, not '%s'", list);
			return -1;
		}
		if (v == port)
			found = 1;
	}
	return found;
}

int config_tls_policy_lookup(const char *map, const char *domain, char *err, size_t errlen)
{
	const char *p = map;

	while (p != NULL && *p != '\0') {
		char dom[256], pol[16];
		int n = 0;

		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		if (sscanf(p, "%255[^=, \t]=%15[a-zA-Z]%n", dom, pol, &n) != 2 || n == 0 ||
		    config_tls_policy_parse(pol) < 0) {
			snprintf(err, errlen, "smtp_tls_policy_map: expected domain=policy"
				 " (none, may, encrypt, verify) near '%.40s'", p);
			return -2;
		}
		if (strcasecmp(dom, domain) == 0)
			return config_tls_policy_parse(pol);
		p += n;
	}
	return -1;
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
	free(cfg->metrics_listen);
	cfg->metrics_listen = NULL;
	free(cfg->admin_listen);
	free(cfg->admin_token_file);
	cfg->admin_listen = cfg->admin_token_file = NULL;
	free(cfg->http_listen);
	cfg->http_listen = NULL;
	free(cfg->smtp_bind_address);
	free(cfg->smtp_bind_address6);
	free(cfg->spf_inbound);
	cfg->smtp_bind_address = cfg->smtp_bind_address6 = cfg->spf_inbound = NULL;
	free(cfg->tls_cert_file);
	free(cfg->tls_key_file);
	free(cfg->tls_ca_file);
	free(cfg->smtp_tls_policy);
	free(cfg->smtp_tls_policy_map);
	free(cfg->smtp_tls_wrappermode_ports);
	free(cfg->smtp_auth_credentials_file);
	cfg->smtp_tls_wrappermode_ports = cfg->smtp_auth_credentials_file = NULL;
	free(cfg->auth_passwd_file);
	free(cfg->auth_jwt_keys_file);
	free(cfg->auth_jwt_issuer);
	free(cfg->auth_jwt_audience);
	free(cfg->dkim_key_table);
	free(cfg->dkim_default_domain);
	free(cfg->dkim_no_key_action);
	free(cfg->dmarc_unaligned_action);
	cfg->dkim_key_table = cfg->dkim_default_domain = NULL;
	cfg->dkim_no_key_action = cfg->dmarc_unaligned_action = NULL;
	free(cfg->bounce_class_rules);
	free(cfg->suppression);
	free(cfg->suppression_scope);
	cfg->bounce_class_rules = cfg->suppression = cfg->suppression_scope = NULL;
	free(cfg->shaping_rules);
	cfg->shaping_rules = NULL;
	free(cfg->event_log);
	free(cfg->event_log_format);
	free(cfg->webhook_url);
	free(cfg->webhook_events);
	free(cfg->webhook_header_file);
	cfg->event_log = cfg->event_log_format = cfg->webhook_url = NULL;
	cfg->webhook_events = cfg->webhook_header_file = NULL;
	cfg->tls_cert_file = cfg->tls_key_file = cfg->tls_ca_file = NULL;
	cfg->smtp_tls_policy = cfg->smtp_tls_policy_map = NULL;
	cfg->auth_passwd_file = cfg->auth_jwt_keys_file = NULL;
	cfg->auth_jwt_issuer = cfg->auth_jwt_audience = NULL;
	netacl_free(&cfg->relay_networks);
}
