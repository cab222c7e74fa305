/*
 * test_config_load.c: tests of a configuration as a whole: the
 * defaults, the file loader (line numbers in errors, unknown keys,
 * [section] rejection, continuation and overlong lines, duplicates), -o
 * overrides, config_dump round trips, config_dump_changed and docs/ringmta.conf.example (every
 * key documented, in order, with the default value). The values of
 * single keys are tested in test_config.c.
 *
 * Temporary files go under $TMPDIR; the example file is found under
 * $RINGMTA_SRCDIR (default ".").
 */
#include "core/config/config.h"
#include "core/config/netacl.h"
#include "tests/unit/tap.h"
#include "tests/unit/config_fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Every key config_dump() must print, in order. */
static const char *const test_keys[] = {
	"listen", "hostname", "queue_dir", "workers", "max_message_size",
	"max_recipients", "max_connections", "max_connections_per_ip",
	"max_errors", "relay_networks", "timeout_command", "timeout_data",
	"greeting_delay", "shutdown_timeout", "queue_map_size",
	"queue_commit_delay", "queue_journal",
	"recv_buffer_size", "recv_buffers_max", "listen_backlog", "log_level",
	"smtputf8", "chunking",
	"delivery", "relayhost", "smtp_port", "smtp_allow_private_destinations",
	"dns_servers",
	"destination_concurrency_limit", "delivery_inflight_max", "destination_rate_limit",
	"smtp_reuse_limit", "smtp_idle_timeout", "smtp_connect_timeout",
	"smtp_command_timeout", "smtp_data_init_timeout",
	"smtp_data_block_timeout", "smtp_data_done_timeout", "retry_min",
	"retry_max", "max_queue_lifetime", "delay_warning_time",
	"smtp_bind_address", "smtp_bind_address6", "spf_inbound",
	"tls_cert_file", "tls_key_file", "tls_ca_file", "smtp_tls_policy",
	"smtp_tls_policy_map", "smtp_tls_fallback", "smtp_tls_session_cache_size",
	"smtp_tls_wrappermode_ports",
	"smtp_auth_credentials_file", "smtp_auth_plaintext", "auth_passwd_file",
	"auth_jwt_keys_file", "auth_jwt_issuer", "auth_jwt_audience",
	"auth_plaintext_loopback", "auth_max_failures",
	"dkim_key_table", "dkim_default_domain", "dkim_no_key_action",
	"dkim_sign_threads", "dmarc_unaligned_action",
	"bounce_class_rules", "suppression", "suppression_scope", "suppression_expire",
	"shaping_rules", "shaping_builtin_rules",
	"metrics_listen", "metrics_top_sites", "admin_listen", "admin_token_file",
	"event_log", "event_log_format", "events_max_backlog", "webhook_url", "webhook_events",
	"webhook_batch_max", "webhook_batch_wait", "webhook_timeout", "webhook_header_file",
	"webhook_tls_verify",
	"http_listen", "http_max_request_size", "http_max_connections",
};

#define TEST_NKEYS (sizeof(test_keys) / sizeof(test_keys[0]))


static const char *test_tmpdir(void)
{
	const char *dir = getenv("TMPDIR");

	return dir != NULL && dir[0] != '\0' ? dir : "/tmp";
}

/* Write text to a new temporary file; its name goes to path. */
static bool test_write_file(const char *text, char *path, size_t size)
{
	size_t len = strlen(text);
	int fd;

	snprintf(path, size, "%s/ringmta-test-config-XXXXXX", test_tmpdir());
	fd = mkstemp(path);
	if (fd < 0)
		return false;
	if (write(fd, text, len) != (ssize_t)len) {
		close(fd);
		unlink(path);
		return false;
	}
	close(fd);
	return true;
}

/* Load text as a file into cfg (after defaults); returns the loader's rc. */
static int test_load_text(struct config *cfg, const char *text,
			  char *path, size_t pathsize, char *err, size_t errlen)
{
	int rc;

	config_defaults(cfg);
	if (!test_write_file(text, path, pathsize)) {
		snprintf(err, errlen, "cannot write temporary file");
		return -2;
	}
	err[0] = '\0';
	rc = config_load_file(cfg, path, err, errlen);
	unlink(path);
	return rc;
}

static void test_defaults(void)
{
	struct config cfg;
	const struct sockaddr_in *sin;
	struct sockaddr_in probe;
	char err[256], host[256];

	config_defaults(&cfg);
	sin = (const struct sockaddr_in *)&cfg.listen[0].cl_addr;
	tap_ok(cfg.listen_count == 1 && sin->sin_family == AF_INET &&
	       ntohs(sin->sin_port) == 2525 &&
	       sin->sin_addr.s_addr == htonl(INADDR_LOOPBACK),
	       "default listen is 127.0.0.1:2525");
	if (gethostname(host, sizeof(host)) != 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	tap_ok(cfg.hostname != NULL && (strcmp(cfg.hostname, host) == 0 ||
					strcmp(cfg.hostname, "localhost") == 0),
	       "default hostname is the machine's (%s)",
	       cfg.hostname ? cfg.hostname : "(null)");
	tap_ok(cfg.queue_dir != NULL &&
	       strcmp(cfg.queue_dir, "./ringmta-queue") == 0,
	       "default queue_dir");
	tap_ok(cfg.workers == 0, "default workers");
	tap_ok(cfg.max_message_size == 10240000, "default max_message_size");
	tap_ok(cfg.max_recipients == 1000, "default max_recipients");
	tap_ok(cfg.max_connections == 20000, "default max_connections");
	tap_ok(cfg.max_connections_per_ip == 500,
	       "default max_connections_per_ip");
	tap_ok(cfg.max_errors == 10, "default max_errors");
	tap_ok(netacl_count(cfg.relay_networks) == 2,
	       "default relay_networks has two entries");
	memset(&probe, 0, sizeof(probe));
	probe.sin_family = AF_INET;
	probe.sin_addr.s_addr = htonl(0x7f000005);
	tap_ok(netacl_match(cfg.relay_networks, (struct sockaddr *)&probe),
	       "default relay_networks admits 127.0.0.5");
	probe.sin_addr.s_addr = htonl(0xc0000201);
	tap_ok(!netacl_match(cfg.relay_networks, (struct sockaddr *)&probe),
	       "default relay_networks refuses 192.0.2.1");
	tap_ok(cfg.timeout_command == 300, "default timeout_command");
	tap_ok(cfg.timeout_data == 180, "default timeout_data");
	tap_ok(cfg.shutdown_timeout == 30, "default shutdown_timeout");
	tap_ok(cfg.queue_map_size == (uint64_t)16 << 30,
	       "default queue_map_size");
	tap_ok(cfg.recv_buffer_size == 8192, "default recv_buffer_size");
	tap_ok(cfg.recv_buffers_max == 16384, "default recv_buffers_max");
	tap_ok(cfg.listen_backlog == 4096, "default listen_backlog");
	tap_ok(cfg.log_level == CONFIG_LOG_INFO, "default log_level");
	tap_ok(cfg.smtputf8 && cfg.chunking, "default smtputf8 and chunking");
	tap_ok(cfg.greeting_delay == 0, "default greeting_delay");
	tap_ok(cfg.delivery, "default delivery is yes");
	tap_ok(cfg.relayhost != NULL && cfg.relayhost[0] == '\0',
	       "default relayhost is empty (MX routing)");
	tap_ok(cfg.smtp_port == 25, "default smtp_port");
	tap_ok(cfg.dns_servers != NULL && cfg.dns_servers[0] == '\0',
	       "default dns_servers is empty (resolv.conf)");
	tap_ok(cfg.destination_concurrency_limit == 20,
	       "default destination_concurrency_limit");
	tap_ok(cfg.destination_rate_limit == 0, "default destination_rate_limit");
	tap_ok(cfg.delivery_inflight_max == 20000, "default delivery_inflight_max");
	tap_ok(cfg.smtp_reuse_limit == 100, "default smtp_reuse_limit");
	tap_ok(cfg.smtp_idle_timeout == 10, "default smtp_idle_timeout");
	tap_ok(cfg.smtp_connect_timeout == 30, "default smtp_connect_timeout");
	tap_ok(cfg.smtp_command_timeout == 300, "default smtp_command_timeout");
	tap_ok(cfg.smtp_data_init_timeout == 120,
	       "default smtp_data_init_timeout");
	tap_ok(cfg.smtp_data_block_timeout == 180,
	       "default smtp_data_block_timeout");
	tap_ok(cfg.smtp_data_done_timeout == 600,
	       "default smtp_data_done_timeout");
	tap_ok(cfg.retry_min == 300, "default retry_min is 5m");
	tap_ok(cfg.retry_max == 4 * 3600, "default retry_max is 4h");
	tap_ok(cfg.max_queue_lifetime == 5 * 86400,
	       "default max_queue_lifetime is 5 days");
	tap_ok(config_validate(&cfg, err, sizeof(err)) == 0,
	       "defaults validate");

	config_free(&cfg);
	tap_ok(cfg.hostname == NULL && cfg.queue_dir == NULL &&
	       cfg.relay_networks == NULL && cfg.relayhost == NULL &&
	       cfg.dns_servers == NULL, "config_free clears owned pointers");
	config_free(&cfg);
	tap_ok(1, "config_free twice is harmless");
}

static const struct {
	const char *name, *text;
	int rc;
	const char *err;	/* after "<path>"; NULL for success */
} test_files[] = {
	{ "empty file", "", 0, NULL },
	{ "comments and blank lines",
	  "# a comment\n\n   # indented comment\n; semicolon comment\n\n", 0,
	  NULL },
	{ "unknown key names line and key",
	  "# ringmta\n\nworkers = 2\n\nlistn = 127.0.0.1:25\n", -1,
	  ":5: unknown key 'listn'" },
	{ "bad value names line and key",
	  "workers = 2\n#\n#\n#\n#\n#\nmax_recipients = 50\n", -1,
	  ":7: max_recipients: must be an integer >= 100" },
	{ "first error wins",
	  "workers = 999\nlistn = x\n", -1,
	  ":1: workers: must be an integer between 0 and 254" },
	{ "section header rejected",
	  "workers = 2\n\n[main]\nmax_errors = 3\n", -1,
	  ":3: section headers are not supported ('[main]'); write plain"
	  " 'key = value' lines" },
	{ "section header at the end rejected",
	  "workers = 2\n[main]\n", -1,
	  ":2: section headers are not supported ('[main]'); write plain"
	  " 'key = value' lines" },
	{ "section header first rejected",
	  "[ringmta]\nworkers = 2\n", -1,
	  ":1: section headers are not supported ('[ringmta]'); write plain"
	  " 'key = value' lines" },
	{ "unterminated section header rejected",
	  "\n[main\n", -1,
	  ":2: section headers are not supported ('[main'); write plain"
	  " 'key = value' lines" },
	{ "line without '='",
	  "workers = 2\n\nlisten\n", -1,
	  ":3: syntax error: expected 'key = value'" },
	{ "syntax error before a bad value",
	  "garbage\nworkers = 999\n", -1,
	  ":1: syntax error: expected 'key = value'" },
	{ "bad value before a syntax error",
	  "workers = 999\ngarbage\n", -1,
	  ":1: workers: must be an integer between 0 and 254" },
	{ "empty value for a number",
	  "max_errors =\n", -1, ":1: max_errors: must be an integer >= 1" },
	{ "a hash after a value is not a comment",
	  "workers = 4 # four\n", -1,
	  ":1: workers: must be an integer between 0 and 254" },
	{ "continuation of a scalar fails",
	  "workers = 1\n  2\n", -1,
	  ":2: workers: must be an integer between 0 and 254" },
	{ "continuation of a bad list names its line",
	  "relay_networks = 10.0.0.0/8\n  ::1\n  10.0.0.0/99\n", -1,
	  ":3: relay_networks: invalid network '10.0.0.0/99': prefix length"
	  " must be between 0 and 32" },
	{ "line after a long comment keeps its number",
	  "# xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  " = [x]\nworkers = 2\nlistn = 1\n", -1,
	  ":3: unknown key 'listn'" },
	{ "empty relayhost and dns_servers",
	  "relayhost =\ndns_servers =\nrelayhost = \n", 0, NULL },
	{ "control character in relayhost names its line",
	  "delivery = no\nrelayhost = [192.0.2.1]\x01:25\n", -1,
	  ":2: relayhost: must not contain control characters" },
	{ "carriage return inside dns_servers names its line",
	  "#\ndns_servers = 127.0.0.1\r,127.0.0.2\n", -1,
	  ":2: dns_servers: must not contain control characters" },
	{ "bad delivery number names its line",
	  "delivery = yes\nsmtp_port = 0\n", -1,
	  ":2: smtp_port: must be an integer between 1 and 65535" },
	{ "overlong setting line",
	  "workers = 2\nrelay_networks = 10.0.0.0/8, 10.0.0.0/8, 10.0.0.0/8,"
	  " 10.0.0.0/8, 10.0.0.0/8, 10.0.0.0/8, 10.0.0.0/8, 10.0.0.0/8,"
	  " 10.0.0.0/8, 10.0.0.0/8, 10.0.0.0/8, 10.0.0.0/8, 10.0.0.0/8,"
	  " 10.0.0.0/8, 10.0.0.0/8, 10.0.0.0/8\nlistn = 1\n", -1,
	  ":2: line too long (at most 199 characters); continue a long list"
	  " on lines that start with a blank" },
};

static void test_file_table(void)
{
	struct config cfg;
	char path[512], err[1024], want[1024];
	size_t i;
	int rc;

	for (i = 0; i < sizeof(test_files) / sizeof(test_files[0]); i++) {
		rc = test_load_text(&cfg, test_files[i].text, path, sizeof(path),
				    err, sizeof(err));
		tap_ok(rc == test_files[i].rc, "%s: returns %d",
		       test_files[i].name, test_files[i].rc);
		if (test_files[i].err != NULL) {
			snprintf(want, sizeof(want), "%s%s", path,
				 test_files[i].err);
			if (!tap_ok(strcmp(err, want) == 0, "%s: message",
				    test_files[i].name))
				printf("# got:  %s\n# want: %s\n", err, want);
		} else if (rc != 0) {
			printf("# %s\n", err);
		}
		config_free(&cfg);
	}
}

static void test_file_semantics(void)
{
	struct config cfg;
	char path[512], err[1024], got[1024];
	int rc;

	rc = test_load_text(&cfg,
			    "workers = 2\nmax_errors = 5\nworkers = 3\n",
			    path, sizeof(path), err, sizeof(err));
	tap_ok(rc == 0 && cfg.workers == 3 && cfg.max_errors == 5,
	       "a key given twice takes the last value");
	config_free(&cfg);

	rc = test_load_text(&cfg,
			    "listen = 127.0.0.1:25\n"
			    "    [::1]:25,\n"
			    "  # a comment inside the list\n"
			    "\t192.0.2.1:587\n"
			    "relay_networks = 10.0.0.0/8,\n"
			    "    192.168.0.0/16\n"
			    "workers = 2\n",
			    path, sizeof(path), err, sizeof(err));
	tap_ok(rc == 0 && cfg.listen_count == 3 &&
	       netacl_count(cfg.relay_networks) == 2 && cfg.workers == 2,
	       "continuation lines extend lists");
	if (rc != 0)
		printf("# %s\n", err);
	config_free(&cfg);

	rc = test_load_text(&cfg, "  workers = 7\n", path, sizeof(path), err,
			    sizeof(err));
	tap_ok(rc == 0 && cfg.workers == 7,
	       "an indented first setting is a setting");
	config_free(&cfg);

	rc = test_load_text(&cfg, "workers = 4 ; four\n", path, sizeof(path),
			    err, sizeof(err));
	tap_ok(rc == 0 && cfg.workers == 4,
	       "' ;' starts an inline comment (inih)");
	config_free(&cfg);

	rc = test_load_text(&cfg, "workers = 4\r\nmax_errors = 6\r\n", path,
			    sizeof(path), err, sizeof(err));
	tap_ok(rc == 0 && cfg.workers == 4 && cfg.max_errors == 6,
	       "CRLF line ends are accepted");
	config_free(&cfg);

	rc = test_load_text(&cfg, "\xEF\xBB\xBFworkers = 4\n", path,
			    sizeof(path), err, sizeof(err));
	tap_ok(rc == 0 && cfg.workers == 4, "a UTF-8 BOM is skipped");
	config_free(&cfg);

	rc = test_load_text(&cfg, "workers=9\nhostname   =   mx.example.org   \n"
			    "max_errors = 5", path, sizeof(path), err,
			    sizeof(err));
	tap_ok(rc == 0 && cfg.workers == 9 && cfg.max_errors == 5 &&
	       strcmp(cfg.hostname, "mx.example.org") == 0,
	       "blanks around '=' and a missing final newline are fine");
	config_free(&cfg);

	/* inih's buffer holds 199 characters and the newline; one more is
	 * too many. With and without a final newline. */
	for (int len = 198; len <= 200; len++) {
		for (int nl = 0; nl <= 1; nl++) {
			char text[512];
			int n = snprintf(text, sizeof(text), "relay_networks ="
					 " 10.0.0.0/8, 10.1.0.0/16");

			for (; n < len; n++)
				text[n] = n == len - 1 ? '8' : ' ';
			memcpy(text + n, nl ? "\nworkers = 3\n" : "", nl ? 14 : 1);
			if (nl)
				text[n + 14] = '\0';
			rc = test_load_text(&cfg, text, path, sizeof(path),
					    err, sizeof(err));
			if (len <= 199) {
				tap_ok(rc == -1 && strstr(err, ":1: relay_networks:"
					" invalid network '8'") != NULL,
				       "a line of %d characters%s is read whole",
				       len, nl ? " and newline" : "");
			} else {
				tap_ok(rc == -1 && strstr(err, ":1: line too long")
				       != NULL, "a line of %d characters%s is"
				       " too long", len, nl ? " and newline" : "");
			}
			config_free(&cfg);
		}
	}

	config_defaults(&cfg);
	rc = config_load_file(&cfg, "/nonexistent/ringmta.conf", err,
			      sizeof(err));
	tap_ok(rc == -1 && strcmp(err, "/nonexistent/ringmta.conf: No such"
				  " file or directory") == 0,
	       "a missing file names the path and the reason");
	config_free(&cfg);

	config_defaults(&cfg);
	rc = config_load_file(&cfg, test_tmpdir(), err, sizeof(err));
	tap_ok(rc == -1 && strstr(err, "Is a directory") != NULL,
	       "a directory is refused with the reason");
	config_free(&cfg);

	rc = test_load_text(&cfg, "delivery = yes\n"
			    "relayhost = [127.0.0.1]:2526\n"
			    "smtp_port = 2525\n"
			    "dns_servers = 127.0.0.1:9\n"
			    "destination_concurrency_limit = 4\n"
			    "retry_min = 1s\nretry_max = 2s\n"
			    "max_queue_lifetime = 1h\n",
			    path, sizeof(path), err, sizeof(err));
	tap_ok(rc == 0 && cfg.delivery &&
	       strcmp(cfg.relayhost, "[127.0.0.1]:2526") == 0 &&
	       cfg.smtp_port == 2525 &&
	       strcmp(cfg.dns_servers, "127.0.0.1:9") == 0 &&
	       cfg.destination_concurrency_limit == 4 && cfg.retry_min == 1 &&
	       cfg.retry_max == 2 && cfg.max_queue_lifetime == 3600,
	       "a file sets the delivery settings");
	if (rc != 0)
		printf("# %s\n", err);
	config_free(&cfg);

	/* Files layer: later loads and overrides win over earlier ones. */
	rc = test_load_text(&cfg, "workers = 4\n", path, sizeof(path), err,
			    sizeof(err));
	tap_ok(rc == 0 && config_set_override(&cfg, "workers=8", err,
					      sizeof(err)) == 0 &&
	       cfg.workers == 8, "-o overrides the file");
	tap_ok(test_dump_value(&cfg, "workers", got, sizeof(got)) &&
	       strcmp(got, "8") == 0, "the dump shows the override");
	config_free(&cfg);
}

static const struct {
	const char *kv;
	int rc;
	const char *err;
} test_overrides[] = {
	{ "workers=4", 0, NULL },
	{ " workers = 5 ", 0, NULL },
	{ "relay_networks=", 0, NULL },
	{ "listen=[::1]:25,127.0.0.1:25", 0, NULL },
	{ "listn=1", -1, "-o listn=1: unknown key 'listn'" },
	{ "listn=127.0.0.1:25", -1, "-o listn=127.0.0.1:25: unknown key"
	  " 'listn'" },
	{ "workers", -1, "-o workers: expected key=value" },
	{ "=4", -1, "-o =4: expected key=value" },
	{ "", -1, "-o : expected key=value" },
	{ "max_recipients=5", -1, "-o max_recipients=5: max_recipients: must"
	  " be an integer >= 100" },
	{ "hostname=", -1, "-o hostname=: hostname: must be a host name"
	  " (letters, digits, '-', '.', '_'; at most 253 characters)" },
	{ "workers=4=5", -1, "-o workers=4=5: workers: must be an integer"
	  " between 0 and 254" },
	{ "relayhost=", 0, NULL },
	{ "relayhost = [192.0.2.1]:587", 0, NULL },
	{ "dns_servers=", 0, NULL },
	{ "dns_servers=127.0.0.1:53", 0, NULL },
	{ "delivery=no", 0, NULL },
	{ "smtp_port=0", -1, "-o smtp_port=0: smtp_port: must be an integer"
	  " between 1 and 65535" },
	{ "relayhost=a\x7f", -1, "-o relayhost=a\x7f: relayhost: must not"
	  " contain control characters" },
};

static void test_override_table(void)
{
	struct config cfg;
	char err[512], show[256], show_err[1024], show_want[1024];
	size_t i;
	int rc;

	for (i = 0; i < sizeof(test_overrides) / sizeof(test_overrides[0]);
	     i++) {
		config_defaults(&cfg);
		strcpy(err, "(unset)");
		test_show(test_overrides[i].kv, show, sizeof(show));
		rc = config_set_override(&cfg, test_overrides[i].kv, err,
					 sizeof(err));
		tap_ok(rc == test_overrides[i].rc, "-o '%s' returns %d", show,
		       test_overrides[i].rc);
		if (test_overrides[i].err != NULL &&
		    !tap_ok(strcmp(err, test_overrides[i].err) == 0,
			    "-o '%s': message", show))
			printf("# got:  %s\n# want: %s\n",
			       test_show(err, show_err, sizeof(show_err)),
			       test_show(test_overrides[i].err, show_want,
					 sizeof(show_want)));
		config_free(&cfg);
	}

	config_defaults(&cfg);
	config_set_override(&cfg, " workers = 5 ", err, sizeof(err));
	tap_ok(cfg.workers == 5, "-o trims blanks around key and value");
	config_free(&cfg);
}

static void test_dump_roundtrip(void)
{
	struct config a, b;
	char path[512], err[1024], value[4096];
	char *da, *db;
	size_t used = 0, i, lines = 0;
	bool ok = true;
	int n, rc;

	config_defaults(&a);
	for (n = 1; n <= CONFIG_LISTEN_MAX; n++)
		used += (size_t)snprintf(value + used, sizeof(value) - used,
					 "[2001:db8:aaaa:bbbb:cccc:dddd:eeee:%x]:%d ",
					 n, 2500 + n);
	rc = config_set(&a, "listen", value, err, sizeof(err));
	used = 0;
	for (n = 0; n < 40; n++)
		used += (size_t)snprintf(value + used, sizeof(value) - used,
					 "10.%d.0.0/16 2001:db8:%x::/48 ", n, n);
	rc |= config_set(&a, "relay_networks", value, err, sizeof(err));
	rc |= config_set(&a, "hostname", "mx1.example.org", err, sizeof(err));
	rc |= config_set(&a, "queue_map_size", "1536M", err, sizeof(err));
	rc |= config_set(&a, "timeout_command", "10m", err, sizeof(err));
	rc |= config_set(&a, "log_level", "debug", err, sizeof(err));
	rc |= config_set(&a, "smtputf8", "no", err, sizeof(err));
	rc |= config_set(&a, "greeting_delay", "1500ms", err, sizeof(err));
	rc |= config_set(&a, "delivery", "no", err, sizeof(err));
	rc |= config_set(&a, "relayhost", "[IPv6:2001:db8::1]:587", err,
			 sizeof(err));
	rc |= config_set(&a, "dns_servers", "192.0.2.53,[2001:db8::53]:53", err,
			 sizeof(err));
	rc |= config_set(&a, "retry_max", "1h", err, sizeof(err));
	rc |= config_set(&a, "max_queue_lifetime", "2400h", err, sizeof(err));
	tap_ok(rc == 0, "set up a configuration with long lists");

	da = test_dump(&a);
	for (i = 0; i < TEST_NKEYS; i++) {
		char key[64];
		const char *p;

		snprintf(key, sizeof(key), "%s = ", test_keys[i]);
		p = strstr(da, key);
		if (p == NULL || (p != da && p[-1] != '\n'))
			ok = false;
	}
	tap_ok(ok, "the dump names all %zu keys", TEST_NKEYS);
	ok = true;
	for (const char *p = da; *p != '\0'; p++) {
		const char *nl = strchr(p, '\n');

		if (nl == NULL || nl - p > 80)
			ok = false;
		if (nl == NULL)
			break;
		lines++;
		p = nl;
	}
	tap_ok(ok && lines > TEST_NKEYS,
	       "long lists are wrapped onto continuation lines");

	config_defaults(&b);
	if (!test_write_file(da, path, sizeof(path))) {
		tap_ok(0, "write the dump");
	} else {
		rc = config_load_file(&b, path, err, sizeof(err));
		unlink(path);
		if (!tap_ok(rc == 0, "the dump loads back"))
			printf("# %s\n", err);
	}
	db = test_dump(&b);
	tap_ok(strcmp(da, db) == 0, "the reloaded dump is identical");
	tap_ok(b.listen_count == CONFIG_LISTEN_MAX &&
	       netacl_count(b.relay_networks) == 80,
	       "all list entries survive the round trip");
	tap_ok(!b.delivery && b.greeting_delay == 1500 &&
	       strcmp(b.relayhost, "[IPv6:2001:db8::1]:587") == 0 &&
	       strcmp(b.dns_servers, "192.0.2.53,[2001:db8::53]:53") == 0 &&
	       b.retry_max == 3600 && b.max_queue_lifetime == 8640000u,
	       "delivery settings survive the round trip");
	free(da);
	free(db);
	config_free(&a);
	config_free(&b);
}

/* config_dump_changed(): only what differs from the defaults, each as
 * config_dump() writes it; a value written otherwise but equal ("16G")
 * is not a change. */
static void test_dump_changed(void)
{
	struct config c;
	char err[1024], *buf = NULL;
	size_t len = 0;
	FILE *m;
	int rc;

	config_defaults(&c);
	m = open_memstream(&buf, &len);
	rc = m != NULL ? config_dump_changed(&c, m) : -1;
	if (m != NULL)
		fclose(m);
	tap_ok(rc == 0 && buf != NULL && buf[0] == '\0',
	       "-n of the defaults is empty");
	free(buf);
	buf = NULL;
	rc = config_set(&c, "max_recipients", "500", err, sizeof(err));
	rc |= config_set(&c, "queue_map_size", "16384M", err, sizeof(err));
	rc |= config_set(&c, "relay_networks", "10.0.0.0/8", err, sizeof(err));
	rc |= config_set(&c, "smtputf8", "no", err, sizeof(err));
	m = open_memstream(&buf, &len);
	rc |= m != NULL ? config_dump_changed(&c, m) : -1;
	if (m != NULL)
		fclose(m);
	tap_ok(rc == 0 && buf != NULL &&
	       strcmp(buf, "max_recipients = 500\nrelay_networks = 10.0.0.0/8\n"
		      "smtputf8 = no\n") == 0,
	       "-n lists the three changed settings, not the equal size");
	if (buf != NULL)
		printf("# %s", buf);
	free(buf);
	config_free(&c);
}

/* Whether an example file line sets key ("key = ..."), or shows it
 * commented out ("#key = ...", as for hostname). */
static bool test_line_sets(const char *line, const char *key)
{
	size_t klen = strlen(key);

	if (line[0] == '#')
		line++;
	if (strncmp(line, key, klen) != 0)
		return false;
	line += klen;
	while (*line == ' ' || *line == '\t')
		line++;
	return *line == '=';
}

static void test_example_file(void)
{
	struct config ex, def;
	const char *srcdir = getenv("RINGMTA_SRCDIR");
	char path[4096], err[1024], line[512];
	char *dex, *ddef;
	bool explained = true, in_order = true;
	size_t nkeys = 0;
	int last = 0;
	FILE *f;
	int rc;

	if (srcdir == NULL || srcdir[0] == '\0')
		srcdir = ".";
	snprintf(path, sizeof(path), "%s/docs/ringmta.conf.example", srcdir);

	config_defaults(&ex);
	rc = config_load_file(&ex, path, err, sizeof(err));
	if (!tap_ok(rc == 0, "%s loads", path))
		printf("# %s\n", err);
	tap_ok(config_validate(&ex, err, sizeof(err)) == 0,
	       "the example validates");

	/* Every value in the example is the default. */
	config_defaults(&def);
	dex = test_dump(&ex);
	ddef = test_dump(&def);
	tap_ok(strcmp(dex, ddef) == 0, "the example sets the defaults");
	free(dex);
	free(ddef);
	config_free(&ex);
	config_free(&def);

	/* Every key the dump of the defaults prints is documented: set, or
	 * (hostname) shown commented out, with a comment above it, in the
	 * dump's order. Keys come from the dump, not from a list here, so a
	 * key added to the table cannot go undocumented. */
	config_defaults(&def);
	ddef = test_dump(&def);
	config_free(&def);
	f = fopen(path, "r");
	if (f == NULL) {
		tap_ok(0, "open %s", path);
		free(ddef);
		return;
	}
	for (char *p = ddef, *next; *p != '\0'; p = next) {
		const char *eq;
		char key[64], prev[512];
		int lineno = 0, found = 0;

		next = strchr(p, '\n');
		next = next != NULL ? next + 1 : p + strlen(p);
		if (p[0] == ' ' || p[0] == '\t')
			continue;	/* a continuation line of a list */
		eq = strstr(p, " = ");
		if (eq == NULL || eq >= next || (size_t)(eq - p) >= sizeof(key)) {
			tap_ok(0, "dump line '%.*s' is 'key = value'",
			       (int)(next - p), p);
			continue;
		}
		snprintf(key, sizeof(key), "%.*s", (int)(eq - p), p);
		nkeys++;
		rewind(f);
		prev[0] = '\0';
		while (fgets(line, sizeof(line), f) != NULL) {
			lineno++;
			if (test_line_sets(line, key)) {
				found = lineno;
				break;
			}
			snprintf(prev, sizeof(prev), "%s", line);
		}
		tap_ok(found != 0, "the example documents %s", key);
		if (found != 0 && prev[0] != '#') {
			explained = false;
			printf("# %s: no comment above line %d\n", key, found);
		}
		if (found != 0 && found < last) {
			in_order = false;
			printf("# %s: line %d comes before line %d\n", key, found,
			       last);
		}
		if (found != 0)
			last = found;
	}
	tap_ok(explained, "every setting in the example has a comment above it");
	tap_ok(in_order, "the example lists the settings in the dump's order");
	tap_ok(nkeys == TEST_NKEYS, "the dump prints %zu keys, test_keys names"
	       " %zu", nkeys, TEST_NKEYS);
	fclose(f);
	free(ddef);
}

int main(void)
{
	test_defaults();
	test_file_table();
	test_file_semantics();
	test_override_table();
	test_dump_roundtrip();
	test_dump_changed();
	test_example_file();
	return tap_done();
}
