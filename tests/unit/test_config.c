/*
 * test_config.c: table-driven tests of config_set(), one key at a time:
 * every key with good values (and what config_dump() then prints for
 * it) and bad ones (the exact message, the configuration unchanged),
 * unit suffixes and overflow, the listen list limit, the typed fields
 * each key fills, and the cross-field check of config_validate().
 * Files, -o overrides, defaults, dump round trips and the example file
 * are in test_config_load.c.
 */
#include "core/config/config.h"
#include "tests/unit/tap.h"
#include "tests/unit/config_fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

/* Good values: what config_dump() must then print for the key. */
static const struct {
	const char *key, *value, *dumped;
} test_good[] = {
	{ "listen", "127.0.0.1:25", "127.0.0.1:25" },
	{ "listen", "[::1]:2525", "[::1]:2525" },
	{ "listen", "0.0.0.0:25, [::]:25", "0.0.0.0:25, [::]:25" },
	{ "listen", "1.2.3.4:1 5.6.7.8:65535", "1.2.3.4:1, 5.6.7.8:65535" },
	{ "listen", " ,127.0.0.1:25,,\t[::ffff:10.0.0.1]:587 ",
	  "127.0.0.1:25, [::ffff:10.0.0.1]:587" },
	{ "listen", "127.0.0.1:025", "127.0.0.1:25" },
	{ "hostname", "mx.example.org", "mx.example.org" },
	{ "hostname", "localhost", "localhost" },
	{ "hostname", "host_1-a.example", "host_1-a.example" },
	{ "queue_dir", "/var/spool/ringmta", "/var/spool/ringmta" },
	{ "queue_dir", "queue with blanks", "queue with blanks" },
	{ "workers", "0", "0" },
	{ "workers", "1", "1" },
	{ "workers", "254", "254" },
	{ "workers", "007", "7" },
	{ "max_message_size", "1024", "1024" },
	{ "max_message_size", "1k", "1024" },
	{ "max_message_size", "1K", "1024" },
	{ "max_message_size", "10M", "10M" },
	{ "max_message_size", "10m", "10M" },
	{ "max_message_size", "2G", "2G" },
	{ "max_message_size", "10240000", "10240000" },
	{ "max_message_size", "1048576", "1M" },
	{ "max_message_size", "8589934591G", "8589934591G" },
	{ "max_message_size", "9223372036854775807", "9223372036854775807" },
	{ "max_recipients", "100", "100" },
	{ "max_recipients", "1000", "1000" },
	{ "max_recipients", "2147483647", "2147483647" },
	{ "max_connections", "1", "1" },
	{ "max_connections", "1000000", "1000000" },
	{ "max_connections_per_ip", "0", "0" },
	{ "max_connections_per_ip", "20", "20" },
	{ "max_errors", "1", "1" },
	{ "max_errors", "50", "50" },
	{ "relay_networks", "10.0.0.0/8 ::1", "10.0.0.0/8, ::1/128" },
	{ "relay_networks", "", "" },
	{ "relay_networks", "192.168.1.9/24", "192.168.1.0/24" },
	{ "timeout_command", "300", "300" },
	{ "timeout_command", "1", "1" },
	{ "timeout_command", "30s", "30" },
	{ "timeout_command", "5m", "300" },
	{ "timeout_command", "1h", "3600" },
	{ "timeout_command", "24h", "86400" },
	{ "timeout_command", "1440m", "86400" },
	{ "timeout_data", "3m", "180" },
	{ "timeout_data", "86400s", "86400" },
	{ "shutdown_timeout", "0", "0" },
	{ "shutdown_timeout", "2m", "120" },
	{ "queue_map_size", "16M", "16M" },
	{ "queue_map_size", "16777216", "16M" },
	{ "queue_map_size", "16384k", "16M" },
	{ "queue_map_size", "1G", "1G" },
	{ "queue_map_size", "1536M", "1536M" },
	{ "queue_map_size", "16777217", "16777217" },
	{ "recv_buffer_size", "1024", "1024" },
	{ "recv_buffer_size", "1k", "1024" },
	{ "recv_buffer_size", "8192", "8192" },
	{ "recv_buffer_size", "64k", "65536" },
	{ "recv_buffers_max", "64", "64" },
	{ "recv_buffers_max", "1024", "1024" },
	{ "recv_buffers_max", "32768", "32768" },
	{ "listen_backlog", "1", "1" },
	{ "listen_backlog", "65535", "65535" },
	{ "log_level", "error", "error" },
	{ "log_level", "warning", "warning" },
	{ "log_level", "info", "info" },
	{ "log_level", "debug", "debug" },
	{ "log_level", "DEBUG", "debug" },
	{ "smtputf8", "yes", "yes" },
	{ "smtputf8", "no", "no" },
	{ "smtputf8", "true", "yes" },
	{ "smtputf8", "false", "no" },
	{ "smtputf8", "on", "yes" },
	{ "smtputf8", "off", "no" },
	{ "smtputf8", "1", "yes" },
	{ "smtputf8", "0", "no" },
	{ "smtputf8", "YES", "yes" },
	{ "chunking", "no", "no" },
	{ "chunking", "On", "yes" },
	{ "chunking", "0", "no" },
	{ "greeting_delay", "0", "0" },
	{ "greeting_delay", "250", "250" },
	{ "greeting_delay", "250ms", "250" },
	{ "greeting_delay", "1s", "1000" },
	{ "greeting_delay", "60s", "60000" },
	{ "greeting_delay", "60000ms", "60000" },
	{ "queue_commit_delay", "0", "0" },
	{ "queue_commit_delay", "500", "500" },
	{ "queue_commit_delay", "500us", "500" },
	{ "queue_commit_delay", "2ms", "2000" },
	{ "queue_commit_delay", "100ms", "100000" },
	/* Delivery */
	{ "delivery", "no", "no" },
	{ "delivery", "yes", "yes" },
	{ "delivery", "off", "no" },
	{ "smtp_allow_private_destinations", "yes", "yes" },
	{ "smtp_allow_private_destinations", "no", "no" },
	{ "relayhost", "", "" },
	{ "relayhost", "[192.0.2.10]:587", "[192.0.2.10]:587" },
	{ "relayhost", "[IPv6:2001:db8::10]:25", "[IPv6:2001:db8::10]:25" },
	{ "relayhost", "smtp.example.net:587", "smtp.example.net:587" },
	{ "relayhost", "smtp.example.net", "smtp.example.net" },
	/* an IP address without brackets is that address, never an MX name */
	{ "relayhost", "127.0.0.1:2526", "[127.0.0.1]:2526" },
	{ "relayhost", "192.0.2.10", "[192.0.2.10]" },
	{ "relayhost", "2001:db8::10", "[IPv6:2001:db8::10]" },
	{ "relayhost", "[2001:db8::10]:25", "[IPv6:2001:db8::10]:25" },
	{ "relayhost", "[ipv6:::1]", "[IPv6:::1]" },
	{ "smtp_port", "1", "1" },
	{ "smtp_port", "25", "25" },
	{ "smtp_port", "587", "587" },
	{ "smtp_port", "65535", "65535" },
	{ "dns_servers", "", "" },
	{ "dns_servers", "127.0.0.1:53", "127.0.0.1:53" },
	{ "dns_servers", "127.0.0.1, 127.0.0.2", "127.0.0.1,127.0.0.2" },
	{ "dns_servers", " ::1  [::1]:5353 ,, 192.0.2.1:53 ", "::1,[::1]:5353,192.0.2.1:53" },
	{ "dns_servers", "192.0.2.53,[2001:db8::53]:53",
	  "192.0.2.53,[2001:db8::53]:53" },
	{ "destination_concurrency_limit", "1", "1" },
	{ "destination_concurrency_limit", "20", "20" },
	{ "destination_concurrency_limit", "10000", "10000" },
	{ "destination_rate_limit", "0", "0" },
	{ "destination_rate_limit", "50", "50" },
	{ "destination_rate_limit", "2147483647", "2147483647" },
	{ "smtp_reuse_limit", "1", "1" },
	{ "smtp_reuse_limit", "100", "100" },
	{ "smtp_reuse_limit", "2147483647", "2147483647" },
	{ "smtp_idle_timeout", "1", "1" },
	{ "smtp_idle_timeout", "2m", "120" },
	{ "smtp_connect_timeout", "30s", "30" },
	{ "smtp_connect_timeout", "24h", "86400" },
	{ "smtp_command_timeout", "5m", "300" },
	{ "smtp_command_timeout", "1", "1" },
	{ "smtp_data_init_timeout", "2m", "120" },
	{ "smtp_data_block_timeout", "3m", "180" },
	{ "smtp_data_done_timeout", "10m", "600" },
	{ "smtp_data_done_timeout", "86400", "86400" },
	{ "retry_min", "1", "1" },
	{ "retry_min", "5m", "300" },
	{ "retry_min", "24h", "86400" },
	{ "retry_max", "4h", "14400" },
	{ "retry_max", "1s", "1" },
	{ "max_queue_lifetime", "1", "1" },
	{ "max_queue_lifetime", "120h", "432000" },
	{ "max_queue_lifetime", "2400h", "8640000" },
	{ "max_queue_lifetime", "8640000", "8640000" },
};

/* Bad values: the exact message config_set() must give. */
static const struct {
	const char *key, *value, *err;
} test_bad[] = {
	{ "listen", "", "listen: needs at least one address:port" },
	{ "listen", " , ", "listen: needs at least one address:port" },
	{ "listen", "127.0.0.1", "listen: '127.0.0.1': expected address:port" },
	{ "listen", "::1:25", "listen: '::1:25': write IPv6 addresses in"
	  " brackets, like [::1]:2525" },
	{ "listen", "[::1]", "listen: '[::1]': expected [ipv6-address]:port" },
	{ "listen", "[::1]25", "listen: '[::1]25': expected [ipv6-address]:port" },
	{ "listen", "[::1:25", "listen: '[::1:25': expected [ipv6-address]:port" },
	{ "listen", "[127.0.0.1]:25", "listen: '[127.0.0.1]:25': brackets are"
	  " only for IPv6 addresses" },
	{ "listen", "127.0.0.1:0", "listen: '127.0.0.1:0': port must be a"
	  " number between 1 and 65535" },
	{ "listen", "127.0.0.1:65536", "listen: '127.0.0.1:65536': port must be"
	  " a number between 1 and 65535" },
	{ "listen", "127.0.0.1:", "listen: '127.0.0.1:': port must be a number"
	  " between 1 and 65535" },
	{ "listen", "127.0.0.1:smtp", "listen: '127.0.0.1:smtp': port must be a"
	  " number between 1 and 65535" },
	{ "listen", "127.0.0.1:+25", "listen: '127.0.0.1:+25': port must be a"
	  " number between 1 and 65535" },
	{ "listen", "[::1]:25x", "listen: '[::1]:25x': port must be a number"
	  " between 1 and 65535" },
	{ "listen", "localhost:25", "listen: 'localhost:25': not a numeric IPv4"
	  " address" },
	{ "listen", "127.1:25", "listen: '127.1:25': not a numeric IPv4"
	  " address" },
	{ "listen", "0x7f.0.0.1:25", "listen: '0x7f.0.0.1:25': not a numeric"
	  " IPv4 address" },
	{ "listen", "256.0.0.1:25", "listen: '256.0.0.1:25': not a numeric IPv4"
	  " address" },
	{ "listen", "[::g]:25", "listen: '[::g]:25': not a numeric IPv6"
	  " address" },
	{ "listen", "127.0.0.1:25, 127.0.0.1:25", "listen: '127.0.0.1:25' is"
	  " listed twice" },
	{ "listen", "[::1]:25 [0::1]:25", "listen: '[0::1]:25' is listed twice" },
	{ "hostname", "", "hostname: must be a host name (letters, digits, '-',"
	  " '.', '_'; at most 253 characters)" },
	{ "hostname", "bad host", "hostname: must be a host name (letters,"
	  " digits, '-', '.', '_'; at most 253 characters)" },
	{ "hostname", "-mx", "hostname: must be a host name (letters, digits,"
	  " '-', '.', '_'; at most 253 characters)" },
	{ "hostname", ".mx", "hostname: must be a host name (letters, digits,"
	  " '-', '.', '_'; at most 253 characters)" },
	{ "queue_dir", "", "queue_dir: must not be empty" },
	{ "queue_dir", "a\tb", "queue_dir: must not contain control characters" },
	{ "workers", "-1", "workers: must be an integer between 0 and 254" },
	{ "workers", "255", "workers: must be an integer between 0 and 254" },
	{ "workers", "", "workers: must be an integer between 0 and 254" },
	{ "workers", "1k", "workers: must be an integer between 0 and 254" },
	{ "workers", "4 ", "workers: must be an integer between 0 and 254" },
	{ "workers", " 4", "workers: must be an integer between 0 and 254" },
	{ "workers", "+4", "workers: must be an integer between 0 and 254" },
	{ "workers", "0x10", "workers: must be an integer between 0 and 254" },
	{ "workers", "1.5", "workers: must be an integer between 0 and 254" },
	{ "workers", "99999999999999999999999",
	  "workers: must be an integer between 0 and 254" },
	{ "max_message_size", "1023", "max_message_size: must be a size of at"
	  " least 1024 bytes (suffix k, M or G allowed)" },
	{ "max_message_size", "0k", "max_message_size: must be a size of at"
	  " least 1024 bytes (suffix k, M or G allowed)" },
	{ "max_message_size", "1kb", "max_message_size: must be a size of at"
	  " least 1024 bytes (suffix k, M or G allowed)" },
	{ "max_message_size", "1 k", "max_message_size: must be a size of at"
	  " least 1024 bytes (suffix k, M or G allowed)" },
	{ "max_message_size", "k", "max_message_size: must be a size of at"
	  " least 1024 bytes (suffix k, M or G allowed)" },
	{ "max_message_size", "1T", "max_message_size: must be a size of at"
	  " least 1024 bytes (suffix k, M or G allowed)" },
	{ "max_message_size", "-2048", "max_message_size: must be a size of at"
	  " least 1024 bytes (suffix k, M or G allowed)" },
	{ "max_message_size", "10MM", "max_message_size: must be a size of at"
	  " least 1024 bytes (suffix k, M or G allowed)" },
	{ "max_message_size", "9223372036854775808", "max_message_size: too"
	  " large (at most 9223372036854775807 bytes)" },
	{ "max_message_size", "18446744073709551615", "max_message_size: too"
	  " large (at most 9223372036854775807 bytes)" },
	{ "max_message_size", "18446744073709551616", "max_message_size: too"
	  " large (at most 9223372036854775807 bytes)" },
	{ "max_message_size", "17179869184G", "max_message_size: too large (at"
	  " most 9223372036854775807 bytes)" },
	{ "max_message_size", "8589934592G", "max_message_size: too large (at"
	  " most 9223372036854775807 bytes)" },
	{ "max_message_size", "99999999999999999999999k", "max_message_size:"
	  " too large (at most 9223372036854775807 bytes)" },
	{ "max_recipients", "99", "max_recipients: must be an integer >= 100" },
	{ "max_recipients", "0", "max_recipients: must be an integer >= 100" },
	{ "max_recipients", "1k", "max_recipients: must be an integer >= 100" },
	{ "max_recipients", "many", "max_recipients: must be an integer >= 100" },
	{ "max_recipients", "2147483648", "max_recipients: too large (at most"
	  " 2147483647)" },
	{ "max_recipients", "4294967296", "max_recipients: too large (at most"
	  " 2147483647)" },
	{ "max_connections", "0", "max_connections: must be an integer >= 1" },
	{ "max_connections", "-5", "max_connections: must be an integer >= 1" },
	{ "max_connections_per_ip", "-1",
	  "max_connections_per_ip: must be an integer >= 0" },
	{ "max_connections_per_ip", "unlimited",
	  "max_connections_per_ip: must be an integer >= 0" },
	{ "max_errors", "0", "max_errors: must be an integer >= 1" },
	{ "max_errors", "", "max_errors: must be an integer >= 1" },
	{ "relay_networks", "10.0.0.0/33", "relay_networks: invalid network"
	  " '10.0.0.0/33': prefix length must be between 0 and 32" },
	{ "relay_networks", "127.0.0.1 bogus", "relay_networks: invalid network"
	  " 'bogus': not an IPv4 or IPv6 address" },
	{ "timeout_command", "0", "timeout_command: must be a duration between"
	  " 1 and 86400 seconds (suffix s, m or h allowed)" },
	{ "timeout_command", "86401", "timeout_command: must be a duration"
	  " between 1 and 86400 seconds (suffix s, m or h allowed)" },
	{ "timeout_command", "25h", "timeout_command: must be a duration"
	  " between 1 and 86400 seconds (suffix s, m or h allowed)" },
	{ "timeout_command", "5M", "timeout_command: must be a duration between"
	  " 1 and 86400 seconds (suffix s, m or h allowed)" },
	{ "timeout_command", "1d", "timeout_command: must be a duration between"
	  " 1 and 86400 seconds (suffix s, m or h allowed)" },
	{ "timeout_command", "1h30m", "timeout_command: must be a duration"
	  " between 1 and 86400 seconds (suffix s, m or h allowed)" },
	{ "timeout_command", "5 m", "timeout_command: must be a duration"
	  " between 1 and 86400 seconds (suffix s, m or h allowed)" },
	{ "timeout_command", "0s", "timeout_command: must be a duration"
	  " between 1 and 86400 seconds (suffix s, m or h allowed)" },
	{ "timeout_command", "", "timeout_command: must be a duration between"
	  " 1 and 86400 seconds (suffix s, m or h allowed)" },
	{ "timeout_command", "307445734561825861h", "timeout_command: must be"
	  " a duration between 1 and 86400 seconds (suffix s, m or h allowed)" },
	{ "timeout_data", "0", "timeout_data: must be a duration between 1 and"
	  " 86400 seconds (suffix s, m or h allowed)" },
	{ "timeout_data", "3min", "timeout_data: must be a duration between 1"
	  " and 86400 seconds (suffix s, m or h allowed)" },
	{ "shutdown_timeout", "86401", "shutdown_timeout: must be a duration"
	  " between 0 and 86400 seconds (suffix s, m or h allowed)" },
	{ "shutdown_timeout", "-1", "shutdown_timeout: must be a duration"
	  " between 0 and 86400 seconds (suffix s, m or h allowed)" },
	{ "queue_map_size", "16777215", "queue_map_size: must be a size of at"
	  " least 16M bytes (suffix k, M or G allowed)" },
	{ "queue_map_size", "15M", "queue_map_size: must be a size of at least"
	  " 16M bytes (suffix k, M or G allowed)" },
	{ "queue_map_size", "1T", "queue_map_size: must be a size of at least"
	  " 16M bytes (suffix k, M or G allowed)" },
	{ "queue_map_size", "16G ", "queue_map_size: must be a size of at least"
	  " 16M bytes (suffix k, M or G allowed)" },
	{ "queue_map_size", "8589934592G", "queue_map_size: too large (at most"
	  " 9223372036854775807 bytes)" },
	{ "recv_buffer_size", "1000", "recv_buffer_size: must be a power of two"
	  " between 1024 and 65536 bytes (suffix k, M or G allowed)" },
	{ "recv_buffer_size", "3000", "recv_buffer_size: must be a power of two"
	  " between 1024 and 65536 bytes (suffix k, M or G allowed)" },
	{ "recv_buffer_size", "512", "recv_buffer_size: must be a power of two"
	  " between 1024 and 65536 bytes (suffix k, M or G allowed)" },
	{ "recv_buffer_size", "0", "recv_buffer_size: must be a power of two"
	  " between 1024 and 65536 bytes (suffix k, M or G allowed)" },
	{ "recv_buffer_size", "12k", "recv_buffer_size: must be a power of two"
	  " between 1024 and 65536 bytes (suffix k, M or G allowed)" },
	{ "recv_buffer_size", "128k", "recv_buffer_size: must be a power of two"
	  " between 1024 and 65536 bytes (suffix k, M or G allowed)" },
	{ "recv_buffer_size", "1M", "recv_buffer_size: must be a power of two"
	  " between 1024 and 65536 bytes (suffix k, M or G allowed)" },
	{ "recv_buffers_max", "32", "recv_buffers_max: must be a power of two"
	  " between 64 and 32768" },
	{ "recv_buffers_max", "100", "recv_buffers_max: must be a power of two"
	  " between 64 and 32768" },
	{ "recv_buffers_max", "65536", "recv_buffers_max: must be a power of two"
	  " between 64 and 32768" },
	{ "recv_buffers_max", "1k", "recv_buffers_max: must be a power of two"
	  " between 64 and 32768" },
	{ "listen_backlog", "0", "listen_backlog: must be an integer >= 1" },
	{ "listen_backlog", "2147483648", "listen_backlog: too large (at most"
	  " 2147483647)" },
	{ "log_level", "warn", "log_level: must be one of error, warning, info,"
	  " debug" },
	{ "log_level", "verbose", "log_level: must be one of error, warning,"
	  " info, debug" },
	{ "log_level", "", "log_level: must be one of error, warning, info,"
	  " debug" },
	{ "smtputf8", "y", "smtputf8: must be yes or no (or true/false, on/off,"
	  " 1/0)" },
	{ "smtputf8", "2", "smtputf8: must be yes or no (or true/false, on/off,"
	  " 1/0)" },
	{ "smtputf8", "", "smtputf8: must be yes or no (or true/false, on/off,"
	  " 1/0)" },
	{ "chunking", "yes please", "chunking: must be yes or no (or true/false,"
	  " on/off, 1/0)" },
	{ "chunking", "nope", "chunking: must be yes or no (or true/false,"
	  " on/off, 1/0)" },
	{ "greeting_delay", "60001", "greeting_delay: must be a duration"
	  " between 0 and 60000 milliseconds (suffix ms or s allowed)" },
	{ "greeting_delay", "61s", "greeting_delay: must be a duration"
	  " between 0 and 60000 milliseconds (suffix ms or s allowed)" },
	{ "greeting_delay", "1m", "greeting_delay: must be a duration"
	  " between 0 and 60000 milliseconds (suffix ms or s allowed)" },
	{ "greeting_delay", "1.5s", "greeting_delay: must be a duration"
	  " between 0 and 60000 milliseconds (suffix ms or s allowed)" },
	{ "queue_commit_delay", "1s", "queue_commit_delay: must be a duration"
	  " between 0 and 100000 microseconds (suffix us, ms or s allowed)" },
	{ "queue_commit_delay", "101ms", "queue_commit_delay: must be a duration"
	  " between 0 and 100000 microseconds (suffix us, ms or s allowed)" },
	{ "queue_commit_delay", "2m", "queue_commit_delay: must be a duration"
	  " between 0 and 100000 microseconds (suffix us, ms or s allowed)" },
	{ "queue_commit_delay", "5usx", "queue_commit_delay: must be a duration"
	  " between 0 and 100000 microseconds (suffix us, ms or s allowed)" },
	{ "greeting_delay", "-1", "greeting_delay: must be a duration"
	  " between 0 and 60000 milliseconds (suffix ms or s allowed)" },
	{ "greeting_delay", "", "greeting_delay: must be a duration"
	  " between 0 and 60000 milliseconds (suffix ms or s allowed)" },
	/* Delivery */
	{ "delivery", "", "delivery: must be yes or no (or true/false, on/off,"
	  " 1/0)" },
	{ "delivery", "maybe", "delivery: must be yes or no (or true/false,"
	  " on/off, 1/0)" },
	{ "relayhost", "[192.0.2.1]:25\r\nRCPT", "relayhost: must not contain"
	  " control characters" },
	{ "relayhost", "smtp\texample", "relayhost: must not contain control"
	  " characters" },
	{ "relayhost", "smtp.example\n", "relayhost: must not contain control"
	  " characters" },
	{ "relayhost", "\x01", "relayhost: must not contain control"
	  " characters" },
	{ "relayhost", "smtp\x7f", "relayhost: must not contain control"
	  " characters" },
	{ "relayhost", "[127.0.0.1]:99999", "relayhost: port '99999' must be a number"
	  " between 1 and 65535" },
	{ "relayhost", "smtp.example:", "relayhost: port '' must be a number"
	  " between 1 and 65535" },
	{ "relayhost", "[127.0.0.1", "relayhost: '[127.0.0.1': expected [address] or"
	  " [address]:port" },
	{ "relayhost", "[smtp.example]:25", "relayhost: '[smtp.example]': only an IP"
	  " address goes in brackets (write smtp.example without them to use its MX"
	  " records)" },
	{ "relayhost", "smtp example", "relayhost: 'smtp example': not a host name or"
	  " an IP address" },
	{ "metrics_listen", "localhost:3531", "metrics_listen: 'localhost:3531': not a"
	  " numeric IPv4 address" },
	{ "metrics_listen", "127.0.0.1", "metrics_listen: '127.0.0.1': expected"
	  " address:port" },
	{ "dns_servers", "localhost", "dns_servers: 'localhost': not a numeric IP"
	  " address (name servers are not looked up by name)" },
	{ "dns_servers", "127.0.0.1:0", "dns_servers: '127.0.0.1:0': port must be a"
	  " number between 1 and 65535" },
	{ "smtp_port", "0", "smtp_port: must be an integer between 1 and"
	  " 65535" },
	{ "smtp_port", "65536", "smtp_port: must be an integer between 1 and"
	  " 65535" },
	{ "smtp_port", "smtp", "smtp_port: must be an integer between 1 and"
	  " 65535" },
	{ "smtp_port", "", "smtp_port: must be an integer between 1 and"
	  " 65535" },
	{ "smtp_port", "-25", "smtp_port: must be an integer between 1 and"
	  " 65535" },
	{ "dns_servers", "127.0.0.1\n", "dns_servers: must not contain control"
	  " characters" },
	{ "dns_servers", "127.0.0.1,\t::1", "dns_servers: must not contain"
	  " control characters" },
	{ "destination_concurrency_limit", "0", "destination_concurrency_limit:"
	  " must be an integer between 1 and 10000" },
	{ "destination_concurrency_limit", "10001",
	  "destination_concurrency_limit: must be an integer between 1 and"
	  " 10000" },
	{ "destination_concurrency_limit", "",
	  "destination_concurrency_limit: must be an integer between 1 and"
	  " 10000" },
	{ "destination_rate_limit", "-1", "destination_rate_limit: must be an"
	  " integer >= 0" },
	{ "destination_rate_limit", "10/s", "destination_rate_limit: must be an"
	  " integer >= 0" },
	{ "destination_rate_limit", "2147483648", "destination_rate_limit: too"
	  " large (at most 2147483647)" },
	{ "smtp_reuse_limit", "0", "smtp_reuse_limit: must be an integer >= 1" },
	{ "smtp_reuse_limit", "unlimited", "smtp_reuse_limit: must be an"
	  " integer >= 1" },
	{ "smtp_reuse_limit", "4294967296", "smtp_reuse_limit: too large (at"
	  " most 2147483647)" },
	{ "smtp_idle_timeout", "0", "smtp_idle_timeout: must be a duration"
	  " between 1 and 86400 seconds (suffix s, m or h allowed)" },
	{ "smtp_connect_timeout", "25h", "smtp_connect_timeout: must be a"
	  " duration between 1 and 86400 seconds (suffix s, m or h allowed)" },
	{ "smtp_command_timeout", "5min", "smtp_command_timeout: must be a"
	  " duration between 1 and 86400 seconds (suffix s, m or h allowed)" },
	{ "smtp_data_init_timeout", "", "smtp_data_init_timeout: must be a"
	  " duration between 1 and 86400 seconds (suffix s, m or h allowed)" },
	{ "smtp_data_block_timeout", "0s", "smtp_data_block_timeout: must be a"
	  " duration between 1 and 86400 seconds (suffix s, m or h allowed)" },
	{ "smtp_data_done_timeout", "86401", "smtp_data_done_timeout: must be a"
	  " duration between 1 and 86400 seconds (suffix s, m or h allowed)" },
	{ "retry_min", "0", "retry_min: must be a duration between 1 and 86400"
	  " seconds (suffix s, m or h allowed)" },
	{ "retry_min", "1d", "retry_min: must be a duration between 1 and 86400"
	  " seconds (suffix s, m or h allowed)" },
	{ "retry_max", "25h", "retry_max: must be a duration between 1 and"
	  " 86400 seconds (suffix s, m or h allowed)" },
	{ "retry_max", "4H", "retry_max: must be a duration between 1 and"
	  " 86400 seconds (suffix s, m or h allowed)" },
	{ "max_queue_lifetime", "0", "max_queue_lifetime: must be a duration"
	  " between 1 and 8640000 seconds (suffix s, m or h allowed)" },
	{ "max_queue_lifetime", "2401h", "max_queue_lifetime: must be a"
	  " duration between 1 and 8640000 seconds (suffix s, m or h allowed)" },
	{ "max_queue_lifetime", "5d", "max_queue_lifetime: must be a duration"
	  " between 1 and 8640000 seconds (suffix s, m or h allowed)" },
	{ "max_queue_lifetime", "99999999999999999999h", "max_queue_lifetime:"
	  " must be a duration between 1 and 8640000 seconds (suffix s, m or h"
	  " allowed)" },
	{ "listn", "127.0.0.1:25", "unknown key 'listn'" },
	{ "Listen", "127.0.0.1:25", "unknown key 'Listen'" },
	{ "", "x", "unknown key ''" },
};

static void test_set_good(void)
{
	struct config cfg;
	char err[512], got[1024], show[256];
	size_t i;

	for (i = 0; i < sizeof(test_good) / sizeof(test_good[0]); i++) {
		config_defaults(&cfg);
		err[0] = '\0';
		test_show(test_good[i].value, show, sizeof(show));
		if (!tap_ok(config_set(&cfg, test_good[i].key, test_good[i].value,
				       err, sizeof(err)) == 0,
			    "%s = '%s' is accepted", test_good[i].key, show)) {
			printf("# %s\n", err);
		} else if (!tap_ok(test_dump_value(&cfg, test_good[i].key, got,
						   sizeof(got)) &&
				   strcmp(got, test_good[i].dumped) == 0,
				   "%s = '%s' reads back as '%s'",
				   test_good[i].key, show,
				   test_good[i].dumped)) {
			printf("# got '%s'\n", got);
		}
		config_free(&cfg);
	}
}

static void test_set_bad(void)
{
	struct config cfg;
	char err[512], before[8192], show[256], *dump;
	size_t i;

	for (i = 0; i < sizeof(test_bad) / sizeof(test_bad[0]); i++) {
		config_defaults(&cfg);
		dump = test_dump(&cfg);
		snprintf(before, sizeof(before), "%s", dump);
		free(dump);
		strcpy(err, "(unset)");
		test_show(test_bad[i].value, show, sizeof(show));
		tap_ok(config_set(&cfg, test_bad[i].key, test_bad[i].value, err,
				  sizeof(err)) == -1, "%s = '%s' is rejected",
		       test_bad[i].key, show);
		if (!tap_ok(strcmp(err, test_bad[i].err) == 0,
			    "%s = '%s': message", test_bad[i].key, show))
			printf("# got:  %s\n# want: %s\n", err, test_bad[i].err);
		dump = test_dump(&cfg);
		tap_ok(strcmp(dump, before) == 0,
		       "%s = '%s' leaves the configuration unchanged",
		       test_bad[i].key, show);
		free(dump);
		config_free(&cfg);
	}
}

static void test_listen_limits(void)
{
	struct config cfg;
	char value[1024], err[512];
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;
	size_t used = 0;
	int i;

	for (i = 1; i <= CONFIG_LISTEN_MAX; i++)
		used += (size_t)snprintf(value + used, sizeof(value) - used,
					 "[2001:db8::%d]:25, ", i);
	config_defaults(&cfg);
	tap_ok(config_set(&cfg, "listen", value, err, sizeof(err)) == 0 &&
	       cfg.listen_count == CONFIG_LISTEN_MAX,
	       "listen takes %d addresses", CONFIG_LISTEN_MAX);
	snprintf(value + used, sizeof(value) - used, "127.0.0.1:25");
	tap_ok(config_set(&cfg, "listen", value, err, sizeof(err)) == -1 &&
	       strcmp(err, "listen: too many addresses (at most 16)") == 0,
	       "listen refuses %d addresses", CONFIG_LISTEN_MAX + 1);
	tap_ok(cfg.listen_count == CONFIG_LISTEN_MAX,
	       "a refused listen keeps the old list");

	tap_ok(config_set(&cfg, "listen", "192.0.2.1:25 [2001:db8::1]:587",
			  err, sizeof(err)) == 0 && cfg.listen_count == 2,
	       "listen stores two addresses");
	sin = (const struct sockaddr_in *)&cfg.listen[0].cl_addr;
	tap_ok(sin->sin_family == AF_INET && ntohs(sin->sin_port) == 25 &&
	       sin->sin_addr.s_addr == htonl(0xc0000201) &&
	       cfg.listen[0].cl_addrlen == sizeof(struct sockaddr_in),
	       "listen[0] is a sockaddr_in for 192.0.2.1:25");
	sin6 = (const struct sockaddr_in6 *)&cfg.listen[1].cl_addr;
	tap_ok(sin6->sin6_family == AF_INET6 && ntohs(sin6->sin6_port) == 587 &&
	       sin6->sin6_addr.s6_addr[0] == 0x20 &&
	       sin6->sin6_addr.s6_addr[15] == 1 &&
	       cfg.listen[1].cl_addrlen == sizeof(struct sockaddr_in6),
	       "listen[1] is a sockaddr_in6 for [2001:db8::1]:587");
	config_free(&cfg);
}

static void test_typed_fields(void)
{
	struct config cfg;
	char err[256];

	config_defaults(&cfg);
	tap_ok(config_set(&cfg, "max_message_size", "8589934591G", err,
			  sizeof(err)) == 0 &&
	       cfg.max_message_size == 8589934591ULL << 30,
	       "max_message_size holds 64-bit values");
	tap_ok(config_set(&cfg, "queue_map_size", "64G", err, sizeof(err)) == 0
	       && cfg.queue_map_size == (uint64_t)64 << 30,
	       "queue_map_size holds 64G");
	tap_ok(config_set(&cfg, "recv_buffer_size", "64k", err, sizeof(err)) == 0
	       && cfg.recv_buffer_size == 65536, "recv_buffer_size = 64k");
	tap_ok(config_set(&cfg, "timeout_data", "2h", err, sizeof(err)) == 0 &&
	       cfg.timeout_data == 7200, "timeout_data = 2h");
	tap_ok(config_set(&cfg, "log_level", "warning", err, sizeof(err)) == 0
	       && cfg.log_level == CONFIG_LOG_WARNING, "log_level = warning");
	tap_ok(config_set(&cfg, "chunking", "off", err, sizeof(err)) == 0 &&
	       !cfg.chunking && cfg.smtputf8, "chunking = off");
	tap_ok(config_set(&cfg, "hostname", "mx\r\n250 injected", err,
			  sizeof(err)) == -1 && strcmp(cfg.hostname, "mx\r") != 0,
	       "hostname refuses CR LF");
	tap_ok(config_set(&cfg, "hostname", "x\xc3\xa9.example", err,
			  sizeof(err)) == -1, "hostname refuses 8-bit bytes");
	tap_ok(config_set(&cfg, "queue_dir", "q\nx", err, sizeof(err)) == -1,
	       "queue_dir refuses a newline");
	tap_ok(config_set(&cfg, "max_recipients", "2147483647", err,
			  sizeof(err)) == 0 && cfg.max_recipients == 2147483647u,
	       "max_recipients = INT_MAX");
	tap_ok(config_set(&cfg, "greeting_delay", "2s", err, sizeof(err)) == 0
	       && cfg.greeting_delay == 2000, "greeting_delay = 2s is 2000 ms");

	/* Delivery */
	tap_ok(config_set(&cfg, "delivery", "no", err, sizeof(err)) == 0 &&
	       !cfg.delivery, "delivery = no");
	tap_ok(config_set(&cfg, "relayhost", "[192.0.2.10]:587", err,
			  sizeof(err)) == 0 &&
	       strcmp(cfg.relayhost, "[192.0.2.10]:587") == 0,
	       "relayhost = [192.0.2.10]:587");
	tap_ok(config_set(&cfg, "relayhost", "mx\r\nRCPT TO:<x@y>", err,
			  sizeof(err)) == -1 &&
	       strcmp(cfg.relayhost, "[192.0.2.10]:587") == 0,
	       "relayhost refuses CR LF and keeps the old value");
	tap_ok(config_set(&cfg, "relayhost", "", err, sizeof(err)) == 0 &&
	       cfg.relayhost != NULL && cfg.relayhost[0] == '\0',
	       "relayhost can be emptied again");
	tap_ok(config_set(&cfg, "relayhost", NULL, err, sizeof(err)) == 0 &&
	       cfg.relayhost != NULL && cfg.relayhost[0] == '\0',
	       "a NULL value sets relayhost to empty");
	tap_ok(config_set(&cfg, "dns_servers", "192.0.2.53,192.0.2.54:5353",
			  err, sizeof(err)) == 0 &&
	       strcmp(cfg.dns_servers, "192.0.2.53,192.0.2.54:5353") == 0,
	       "dns_servers holds a list");
	tap_ok(config_set(&cfg, "dns_servers", "", err, sizeof(err)) == 0 &&
	       cfg.dns_servers[0] == '\0', "dns_servers can be emptied again");
	tap_ok(config_set(&cfg, "smtp_port", "587", err, sizeof(err)) == 0 &&
	       cfg.smtp_port == 587, "smtp_port = 587");
	tap_ok(config_set(&cfg, "destination_concurrency_limit", "7", err,
			  sizeof(err)) == 0 &&
	       cfg.destination_concurrency_limit == 7,
	       "destination_concurrency_limit = 7");
	tap_ok(config_set(&cfg, "destination_rate_limit", "3", err,
			  sizeof(err)) == 0 && cfg.destination_rate_limit == 3,
	       "destination_rate_limit = 3");
	tap_ok(config_set(&cfg, "smtp_reuse_limit", "1", err, sizeof(err)) == 0
	       && cfg.smtp_reuse_limit == 1, "smtp_reuse_limit = 1");
	tap_ok(config_set(&cfg, "smtp_idle_timeout", "1m", err, sizeof(err))
	       == 0 && cfg.smtp_idle_timeout == 60, "smtp_idle_timeout = 1m");
	tap_ok(config_set(&cfg, "smtp_connect_timeout", "45s", err,
			  sizeof(err)) == 0 && cfg.smtp_connect_timeout == 45,
	       "smtp_connect_timeout = 45s");
	tap_ok(config_set(&cfg, "smtp_command_timeout", "2m", err, sizeof(err))
	       == 0 && cfg.smtp_command_timeout == 120,
	       "smtp_command_timeout = 2m");
	tap_ok(config_set(&cfg, "smtp_data_init_timeout", "1m", err,
			  sizeof(err)) == 0 && cfg.smtp_data_init_timeout == 60,
	       "smtp_data_init_timeout = 1m");
	tap_ok(config_set(&cfg, "smtp_data_block_timeout", "1h", err,
			  sizeof(err)) == 0 &&
	       cfg.smtp_data_block_timeout == 3600,
	       "smtp_data_block_timeout = 1h");
	tap_ok(config_set(&cfg, "smtp_data_done_timeout", "15m", err,
			  sizeof(err)) == 0 && cfg.smtp_data_done_timeout == 900,
	       "smtp_data_done_timeout = 15m");
	tap_ok(config_set(&cfg, "retry_min", "1s", err, sizeof(err)) == 0 &&
	       cfg.retry_min == 1, "retry_min = 1s");
	tap_ok(config_set(&cfg, "retry_max", "2h", err, sizeof(err)) == 0 &&
	       cfg.retry_max == 7200, "retry_max = 2h");
	tap_ok(config_set(&cfg, "max_queue_lifetime", "2400h", err,
			  sizeof(err)) == 0 &&
	       cfg.max_queue_lifetime == 8640000u,
	       "max_queue_lifetime = 2400h (100 days)");
	tap_ok(config_set(&cfg, "max_queue_lifetime", "8640001", err,
			  sizeof(err)) == -1 &&
	       cfg.max_queue_lifetime == 8640000u,
	       "max_queue_lifetime refuses more than 100 days");
	config_free(&cfg);
}

static void test_validate(void)
{
	struct config cfg;
	char err[512];

	config_defaults(&cfg);
	config_set(&cfg, "max_message_size", "1G", err, sizeof(err));
	config_set(&cfg, "queue_map_size", "1G", err, sizeof(err));
	tap_ok(config_validate(&cfg, err, sizeof(err)) == -1 &&
	       strcmp(err, "max_message_size (1G) must be smaller than"
		      " queue_map_size (1G)") == 0,
	       "max_message_size must be below queue_map_size");
	config_set(&cfg, "queue_map_size", "2G", err, sizeof(err));
	tap_ok(config_validate(&cfg, err, sizeof(err)) == 0,
	       "max_message_size below queue_map_size validates");
	config_set(&cfg, "retry_min", "1h", err, sizeof(err));
	config_set(&cfg, "retry_max", "5m", err, sizeof(err));
	tap_ok(config_validate(&cfg, err, sizeof(err)) == -1 &&
	       strcmp(err, "retry_min (3600s) must not be greater than retry_max (300s)") == 0,
	       "retry_min above retry_max is refused: %s", err);
	config_set(&cfg, "retry_max", "1h", err, sizeof(err));
	tap_ok(config_validate(&cfg, err, sizeof(err)) == 0, "retry_min = retry_max validates");
	config_free(&cfg);

	memset(&cfg, 0, sizeof(cfg));
	tap_ok(config_validate(&cfg, err, sizeof(err)) == -1 &&
	       strstr(err, "config_defaults") != NULL,
	       "a configuration without defaults does not validate");
}

/* smtp_bind_address, smtp_bind_address6 and spf_inbound. */
static void test_validate_sender_auth(void)
{
	static const struct {
		const char *key, *value, *err;	/* err NULL: validates */
	} cases[] = {
		{ "smtp_bind_address", "192.0.2.5", NULL },
		{ "smtp_bind_address", "2001:db8::5", "smtp_bind_address: '2001:db8::5' is not"
		  " a numeric IPv4 address" },
		{ "smtp_bind_address", "mail.example", "smtp_bind_address: 'mail.example' is not"
		  " a numeric IPv4 address" },
		{ "smtp_bind_address6", "2001:db8::5", NULL },
		{ "smtp_bind_address6", "192.0.2.5", "smtp_bind_address6: '192.0.2.5' is not"
		  " a numeric IPv6 address" },
		{ "spf_inbound", "header", NULL },
		{ "spf_inbound", "REFUSE", NULL },
		{ "spf_inbound", "reject", "spf_inbound: must be none, header or refuse" },
	};
	struct config cfg;
	char err[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;

		config_defaults(&cfg);
		config_set(&cfg, cases[i].key, cases[i].value, err, sizeof(err));
		err[0] = '\0';
		rc = config_validate(&cfg, err, sizeof(err));
		tap_ok(cases[i].err == NULL ? rc == 0 : rc == -1 && strcmp(err, cases[i].err) == 0,
		       "%s = %s: %s", cases[i].key, cases[i].value, rc == 0 ? "valid" : err);
		config_free(&cfg);
	}
	tap_ok(config_spf_inbound_parse("none") == CONFIG_SPF_NONE &&
	       config_spf_inbound_parse("header") == CONFIG_SPF_HEADER &&
	       config_spf_inbound_parse("refuse") == CONFIG_SPF_REFUSE, "spf_inbound values");
}

/* The DKIM and DMARC settings: defaults, values, refusals. */
static void test_dkim_settings(void)
{
	struct config cfg;
	char err[512];

	config_defaults(&cfg);
	tap_ok(strcmp(cfg.dkim_key_table, "") == 0 && strcmp(cfg.dkim_default_domain, "") == 0 &&
	       config_dkim_no_key_parse(cfg.dkim_no_key_action) == CONFIG_DKIM_NO_KEY_UNSIGNED &&
	       config_dmarc_unaligned_parse(cfg.dmarc_unaligned_action) ==
	       CONFIG_DMARC_UNALIGNED_ACCEPT && cfg.dkim_sign_threads == 0,
	       "DKIM defaults: no table, unsigned, accept, one thread per CPU");
	tap_ok(config_set(&cfg, "dkim_key_table", "/etc/ringmta/dkim.ini", err, sizeof(err)) == 0 &&
	       strcmp(cfg.dkim_key_table, "/etc/ringmta/dkim.ini") == 0, "dkim_key_table set");
	tap_ok(config_set(&cfg, "dkim_sign_threads", "3", err, sizeof(err)) == 0 &&
	       cfg.dkim_sign_threads == 3, "dkim_sign_threads = 3");
	tap_ok(config_set(&cfg, "dkim_sign_threads", "257", err, sizeof(err)) == -1,
	       "dkim_sign_threads above 256 refused: %s", err);
	tap_ok(config_dkim_no_key_parse("defer") == CONFIG_DKIM_NO_KEY_DEFER &&
	       config_dkim_no_key_parse("REJECT") == CONFIG_DKIM_NO_KEY_REJECT &&
	       config_dkim_no_key_parse("drop") == -1, "dkim_no_key_action values");
	tap_ok(config_dmarc_unaligned_parse("reject") == CONFIG_DMARC_UNALIGNED_REJECT &&
	       config_dmarc_unaligned_parse("quarantine") == -1, "dmarc_unaligned_action values");
	config_set(&cfg, "dkim_no_key_action", "drop", err, sizeof(err));
	tap_ok(config_validate(&cfg, err, sizeof(err)) == -1 &&
	       strcmp(err, "dkim_no_key_action: must be unsigned, defer or reject") == 0,
	       "a bad dkim_no_key_action does not validate: %s", err);
	config_set(&cfg, "dkim_no_key_action", "defer", err, sizeof(err));
	config_set(&cfg, "dmarc_unaligned_action", "quarantine", err, sizeof(err));
	tap_ok(config_validate(&cfg, err, sizeof(err)) == -1 &&
	       strcmp(err, "dmarc_unaligned_action: must be accept or reject") == 0,
	       "a bad dmarc_unaligned_action does not validate: %s", err);
	config_set(&cfg, "dmarc_unaligned_action", "reject", err, sizeof(err));
	config_set(&cfg, "dkim_default_domain", "example.com", err, sizeof(err));
	tap_ok(config_validate(&cfg, err, sizeof(err)) == 0, "good DKIM settings validate");
	config_set(&cfg, "dkim_key_table", "", err, sizeof(err));
	tap_ok(config_validate(&cfg, err, sizeof(err)) == -1 &&
	       strcmp(err, "dkim_default_domain needs dkim_key_table") == 0,
	       "a default domain without a table: %s", err);
	config_free(&cfg);
}

/* Bounce classes and suppression: defaults, values, refusals. */
static void test_suppression_settings(void)
{
	struct config cfg;
	char err[512];

	config_defaults(&cfg);
	tap_ok(strcmp(cfg.bounce_class_rules, "") == 0 &&
	       config_suppression_parse(cfg.suppression) == CONFIG_SUPPRESSION_REFUSE &&
	       config_suppression_scope_parse(cfg.suppression_scope) ==
	       CONFIG_SUPPRESSION_SENDER_DOMAIN && cfg.suppression_expire == 90 * 86400u,
	       "suppression defaults: refuse, per sender domain, 90 days, built-in rules");
	tap_ok(config_suppression_parse("off") == CONFIG_SUPPRESSION_OFF &&
	       config_suppression_parse("DROP") == CONFIG_SUPPRESSION_DROP &&
	       config_suppression_parse("reject") == -1, "suppression values");
	tap_ok(config_suppression_scope_parse("global") == CONFIG_SUPPRESSION_GLOBAL &&
	       config_suppression_scope_parse("domain") == -1, "suppression_scope values");
	tap_ok(config_set(&cfg, "suppression_expire", "0", err, sizeof(err)) == 0 &&
	       cfg.suppression_expire == 0, "suppression_expire = 0 (never)");
	tap_ok(config_set(&cfg, "suppression_expire", "720h", err, sizeof(err)) == 0 &&
	       cfg.suppression_expire == 30 * 86400u, "suppression_expire = 720h");
	tap_ok(config_set(&cfg, "suppression_expire", "-1", err, sizeof(err)) == -1,
	       "a negative suppression_expire is refused: %s", err);
	tap_ok(config_set(&cfg, "bounce_class_rules", "/etc/a.yaml /etc/b.yaml", err,
			  sizeof(err)) == 0 &&
	       strcmp(cfg.bounce_class_rules, "/etc/a.yaml /etc/b.yaml") == 0,
	       "bounce_class_rules takes a list");
	config_set(&cfg, "suppression", "reject", err, sizeof(err));
	tap_ok(config_validate(&cfg, err, sizeof(err)) == -1 &&
	       strcmp(err, "suppression: must be off, refuse or drop") == 0,
	       "a bad suppression does not validate: %s", err);
	config_set(&cfg, "suppression", "drop", err, sizeof(err));
	config_set(&cfg, "suppression_scope", "domain", err, sizeof(err));
	tap_ok(config_validate(&cfg, err, sizeof(err)) == -1 &&
	       strcmp(err, "suppression_scope: must be sender_domain or global") == 0,
	       "a bad suppression_scope does not validate: %s", err);
	config_set(&cfg, "suppression_scope", "global", err, sizeof(err));
	tap_ok(config_validate(&cfg, err, sizeof(err)) == 0, "good suppression settings validate");
	config_free(&cfg);
}

/* The traffic-shaping settings: defaults and values. */
static void test_shaping_settings(void)
{
	struct config cfg;
	char err[512];

	config_defaults(&cfg);
	tap_ok(strcmp(cfg.shaping_rules, "") == 0 && cfg.shaping_builtin_rules,
	       "shaping defaults: no files, the built-in rules on");
	tap_ok(config_set(&cfg, "shaping_rules", "/etc/ringmta/a.yaml /etc/ringmta/b.yaml", err,
			  sizeof(err)) == 0 &&
	       strcmp(cfg.shaping_rules, "/etc/ringmta/a.yaml /etc/ringmta/b.yaml") == 0,
	       "shaping_rules takes a list of files");
	tap_ok(config_set(&cfg, "shaping_builtin_rules", "no", err, sizeof(err)) == 0 &&
	       !cfg.shaping_builtin_rules, "shaping_builtin_rules = no");
	tap_ok(config_set(&cfg, "shaping_builtin_rules", "maybe", err, sizeof(err)) == -1,
	       "shaping_builtin_rules = maybe refused: %s", err);
	tap_ok(config_validate(&cfg, err, sizeof(err)) == 0, "shaping settings validate");
	config_free(&cfg);
}

/* Outbound AUTH and implicit TLS: defaults, the port list's syntax
 * (checked by config_validate) and membership. */
static void test_relay_auth_settings(void)
{
	static const struct {
		const char *list;
		unsigned port;
		int want;
	} cases[] = {
		{ "465", 465, 1 }, { "465", 25, 0 }, { "", 465, 0 },
		{ "465, 2465,10465", 2465, 1 }, { " 465 ,, 587 ", 587, 1 },
		{ "465 587", 587, 1 }, { "4650", 465, 0 },
		{ "0", 0, -1 }, { "65536", 465, -1 }, { "465x", 465, -1 }, { "smtps", 465, -1 },
		{ "-465", 465, -1 }, { "1234567", 465, -1 },
	};
	struct config cfg;
	char err[512];

	config_defaults(&cfg);
	tap_ok(strcmp(cfg.smtp_tls_wrappermode_ports, "465") == 0 &&
	       strcmp(cfg.smtp_auth_credentials_file, "") == 0 && !cfg.smtp_auth_plaintext,
	       "relay auth defaults: 465 in wrapper mode, no credentials, no cleartext AUTH");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = config_port_in_list(cases[i].list, cases[i].port, err, sizeof(err));

		tap_ok(rc == cases[i].want, "port %u in '%s': %d (want %d)", cases[i].port,
		       cases[i].list, rc, cases[i].want);
	}
	tap_ok(config_set(&cfg, "smtp_tls_wrappermode_ports", "465, smtps", err,
			  sizeof(err)) == 0 && config_validate(&cfg, err, sizeof(err)) == -1 &&
	       strstr(err, "smtp_tls_wrappermode_ports") != NULL,
	       "a bad port list does not validate: %s", err);
	tap_ok(config_set(&cfg, "smtp_tls_wrappermode_ports", "", err, sizeof(err)) == 0 &&
	       config_validate(&cfg, err, sizeof(err)) == 0, "an empty port list validates");
	config_free(&cfg);
}

int main(void)
{
	test_relay_auth_settings();
	test_suppression_settings();
	test_shaping_settings();
	test_dkim_settings();
	test_typed_fields();
	test_validate_sender_auth();
	test_set_good();
	test_set_bad();
	test_listen_limits();
	test_validate();
	return tap_done();
}
