/*
 * test_config_diff.c: the comparison a reload makes (config_diff.c):
 * equal configurations differ in nothing, a value written otherwise but
 * equal is no change, each changed setting comes once with its old and
 * new text (a URL's credentials hidden) and its "needs a restart" flag,
 * lists compare as lists, and
 * config_keep_restart() gives a new configuration the running values of
 * the settings that need a restart and no others.
 */
#include "core/config/config.h"
#include "tests/unit/tap.h"

#include <stdlib.h>
#include <string.h>

static const struct config_change *test_find(const struct config_change *ch, int n,
					     const char *key)
{
	for (int i = 0; i < n; i++)
		if (strcmp(ch[i].cc_key, key) == 0)
			return &ch[i];
	return NULL;
}

static void test_set(struct config *c, const char *key, const char *value)
{
	char err[512];

	if (config_set(c, key, value, err, sizeof(err)) < 0)
		tap_ok(0, "set %s = %s: %s", key, value, err);
}

static void test_equal(void)
{
	struct config a, b;
	struct config_change *ch;
	int n;

	config_defaults(&a);
	config_defaults(&b);
	test_set(&b, "queue_map_size", "16384M");	/* = 16G */
	test_set(&b, "relay_networks", "127.0.0.0/8 ::1");
	test_set(&b, "retry_min", "300");		/* = 5m */
	n = config_diff(&a, &b, &ch);
	tap_ok(n == 0 && ch == NULL, "equal values written otherwise are no change (%d)", n);
	config_changes_free(&ch, n);
	config_free(&a);
	config_free(&b);
}

static void test_changes(void)
{
	struct config a, b;
	struct config_change *ch;
	const struct config_change *c;
	int n;

	config_defaults(&a);
	config_defaults(&b);
	test_set(&b, "log_level", "debug");
	test_set(&b, "relay_networks", "127.0.0.0/8, ::1, 10.0.0.0/8, 192.168.0.0/16, "
		 "172.16.0.0/12, 100.64.0.0/10, 198.18.0.0/15, 2001:db8::/32, fd00::/8");
	test_set(&b, "max_message_size", "1M");
	test_set(&b, "listen", "127.0.0.1:25, [::1]:587/submission");
	test_set(&b, "queue_dir", "/var/spool/other");
	n = config_diff(&a, &b, &ch);
	tap_ok(n == 5, "five settings changed (%d)", n);
	c = test_find(ch, n, "log_level");
	tap_ok(c != NULL && strcmp(c->cc_old, "info") == 0 && strcmp(c->cc_new, "debug") == 0 &&
	       !c->cc_restart, "log_level: info -> debug, no restart");
	c = test_find(ch, n, "max_message_size");
	tap_ok(c != NULL && strcmp(c->cc_new, "1M") == 0 && !c->cc_restart,
	       "max_message_size: -> 1M, no restart");
	c = test_find(ch, n, "relay_networks");
	tap_ok(c != NULL && strchr(c->cc_new, '\n') == NULL &&
	       strstr(c->cc_new, "10.0.0.0/8, 192.168.0.0/16") != NULL &&
	       strstr(c->cc_new, "fd00::/8") != NULL && !c->cc_restart,
	       "a long relay_networks is one line, every entry");
	if (c != NULL)
		printf("# relay_networks: %s\n", c->cc_new);
	c = test_find(ch, n, "listen");
	tap_ok(c != NULL && c->cc_restart && strcmp(c->cc_old, "127.0.0.1:2525") == 0 &&
	       strcmp(c->cc_new, "127.0.0.1:25, [::1]:587/submission") == 0,
	       "listen changed, needs a restart");
	c = test_find(ch, n, "queue_dir");
	tap_ok(c != NULL && c->cc_restart, "queue_dir needs a restart");
	tap_ok(n >= 2 && strcmp(ch[0].cc_key, "listen") == 0, "in the table's order");
	config_changes_free(&ch, n);
	tap_ok(ch == NULL, "config_changes_free clears the pointer");
	config_changes_free(&ch, 0);	/* twice is harmless */
	config_free(&a);
	config_free(&b);
}

static void test_keep_restart(void)
{
	struct config run, nc;
	struct config_change *ch;
	char err[512];
	int n;

	config_defaults(&run);
	test_set(&run, "listen", "127.0.0.1:2600, 127.0.0.1:2601/submission");
	test_set(&run, "workers", "3");
	config_defaults(&nc);
	test_set(&nc, "listen", "127.0.0.1:25");
	test_set(&nc, "workers", "8");
	test_set(&nc, "max_recipients", "200");
	tap_ok(config_keep_restart(&nc, &run, err, sizeof(err)) == 0, "keep_restart");
	tap_ok(config_validate(&nc, err, sizeof(err)) == 0, "the result validates");
	n = config_diff(&run, &nc, &ch);
	tap_ok(n == 1 && strcmp(ch[0].cc_key, "max_recipients") == 0,
	       "only the reloadable change is left (%d)", n);
	tap_ok(nc.listen_count == 2 && nc.workers == 3, "listen and workers keep running values");
	config_changes_free(&ch, n);
	config_free(&run);
	config_free(&nc);
}

static void test_flags(void)
{
	size_t restart = 0, all = 0;
	const char *k;

	tap_ok(config_key_restart("listen") == 1 && config_key_restart("workers") == 1 &&
	       config_key_restart("queue_map_size") == 1, "listen, workers, queue_map_size: restart");
	tap_ok(config_key_restart("log_level") == 0 && config_key_restart("relay_networks") == 0 &&
	       config_key_restart("auth_passwd_file") == 0 &&
	       config_key_restart("tls_cert_file") == 0, "log_level, relay_networks, auth, TLS: reload");
	tap_ok(config_key_restart("no_such_key") == -1, "unknown key: -1");
	for (size_t i = 0; (k = config_key_name(i)) != NULL; i++) {
		all++;
		restart += config_key_restart(k) == 1;
	}
	tap_ok(all > 50 && restart > 5 && restart < all, "%zu of %zu need a restart", restart, all);
}

static void test_redacted(void)
{
	struct config a, b;
	struct config_change *ch;
	int n;

	config_defaults(&a);
	config_defaults(&b);
	test_set(&a, "webhook_url", "https://u:old@hooks.example/a");
	test_set(&b, "webhook_url", "https://hooks.example/a, https://:p@h.example:8443/b,"
		 " http://x@y/");
	n = config_diff(&a, &b, &ch);
	tap_ok(n == 1 && strcmp(ch[0].cc_old, "https://***@hooks.example/a") == 0 &&
	       strcmp(ch[0].cc_new, "https://hooks.example/a, https://***@h.example:8443/b,"
		      " http://***@y/") == 0,
	       "credentials in URLs are not shown");
	if (n == 1)
		printf("# %s -> %s\n", ch[0].cc_old, ch[0].cc_new);
	config_changes_free(&ch, n);
	test_set(&b, "webhook_url", "https://u:new@hooks.example/a");
	n = config_diff(&a, &b, &ch);
	tap_ok(n == 1, "a changed password alone is a change (%d)", n);
	config_changes_free(&ch, n);
	config_free(&a);
	config_free(&b);
}

static void test_value_str(void)
{
	struct config c;
	char *v;

	config_defaults(&c);
	v = config_value_str(&c, "queue_map_size");
	tap_ok(v != NULL && strcmp(v, "16G") == 0, "queue_map_size as config show writes it");
	free(v);
	tap_ok(config_value_str(&c, "nope") == NULL, "unknown key: NULL");
	config_free(&c);
}

int main(void)
{
	test_equal();
	test_changes();
	test_keep_restart();
	test_flags();
	test_redacted();
	test_value_str();
	return tap_done();
}
