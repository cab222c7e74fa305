/*
 * test_smtp_creds: the outbound AUTH credentials file (core/outbound/
 * smtp_creds.c): both line forms, keys with and without brackets and
 * ports, the lookup's preference of an exact port, malformed lines (named
 * by line, never with the secret), and the loader's refusal of a file
 * that group or others may read.
 */
#include "core/outbound/smtp_creds.h"
#include "tests/unit/tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char test_file[] =
	"# relayhosts\r\n"
	"\n"
	"[192.0.2.10]:587   alice   s3cret with blanks  \n"
	"smtp.Example.COM bob:pa:ss\n"
	"smtp.example.com:465\tcarol\tport465\r\n"
	"[IPv6:2001:db8::1] dave:v6\n"
	"[2001:db8::2]:25 erin:v6b\n"
	"   # an indented comment\n"
	"colon.example grace:pass word: x\n"
	"mx.example.net frank:last";	/* no final newline */

static void test_parse(void)
{
	struct smtp_creds *t = NULL;
	const struct smtp_cred *c;
	char err[256] = "";

	tap_ok(smtp_creds_parse(&t, test_file, strlen(test_file), "creds", err, sizeof(err)) == 0,
	       "parse: the sample loads (%s)", err);
	tap_ok(smtp_creds_count(t) == 7, "parse: seven accounts (%u)", smtp_creds_count(t));
	c = smtp_creds_find(t, "[192.0.2.10]", 587);
	tap_ok(c != NULL && strcmp(c->sc_user, "alice") == 0 &&
	       strcmp(c->sc_pass, "s3cret with blanks") == 0,
	       "find: bracketed key with port; the password is the rest of the line");
	tap_ok(smtp_creds_find(t, "[192.0.2.10]", 25) == NULL, "find: another port does not match");
	c = smtp_creds_find(t, "SMTP.example.com", 25);
	tap_ok(c != NULL && strcmp(c->sc_user, "bob") == 0 && strcmp(c->sc_pass, "pa:ss") == 0,
	       "find: key without port matches any port; user:pass splits at the first colon");
	c = smtp_creds_find(t, "smtp.example.com", 465);
	tap_ok(c != NULL && strcmp(c->sc_user, "carol") == 0 && strcmp(c->sc_pass, "port465") == 0,
	       "find: the exact port wins over a key without one (tabs, CRLF)");
	c = smtp_creds_find(t, "[IPv6:2001:DB8::1]", 587);
	tap_ok(c != NULL && strcmp(c->sc_user, "dave") == 0, "find: IPv6 literal, any case");
	c = smtp_creds_find(t, "[IPv6:2001:db8::2]", 25);
	tap_ok(c != NULL && strcmp(c->sc_user, "erin") == 0,
	       "find: IPv6 key written without the IPv6: tag");
	c = smtp_creds_find(t, "mx.example.net", 25);
	tap_ok(c != NULL && strcmp(c->sc_pass, "last") == 0, "find: last line without newline");
	c = smtp_creds_find(t, "colon.example", 25);
	tap_ok(c != NULL && strcmp(c->sc_user, "grace") == 0 &&
	       strcmp(c->sc_pass, "pass word: x") == 0,
	       "find: user:password with blanks and colons in the password");
	tap_ok(smtp_creds_find(t, "example.com", 25) == NULL, "find: no suffix matching");
	tap_ok(smtp_creds_find(NULL, "example.com", 25) == NULL, "find: no table");
	{
		struct smtp_creds *r = smtp_creds_ref(t);

		smtp_creds_unref(&t);
		tap_ok(t == NULL && smtp_creds_find(r, "mx.example.net", 1) != NULL,
		       "ref: a second reference keeps the table");
		smtp_creds_unref(&r);
	}
}

static void test_bad(void)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "host.example\n", "creds:1: expected a next hop" },
		{ "\nhost.example user\n", "creds:2: expected user password" },
		{ "host.example user:\n", "creds:1: expected user password" },
		{ "host.example :secretpw\n", "creds:1: expected user password" },
		{ "[192.0.2.1 u p\n", "creds:1: the next hop must be" },
		{ "host:0 u p\n", "creds:1: the next hop must be" },
		{ "host:99999 u p\n", "creds:1: the next hop must be" },
		{ "host:x u p\n", "creds:1: the next hop must be" },
		{ "a]b u p\n", "creds:1: the next hop must be" },
		{ "[a b]:25 u p\n", "creds:1: the next hop must be" },
		{ "host/x u p\n", "creds:1: the next hop must be" },
		{ "h u p\nH u2 p2\n", "creds:2: this next hop is given twice" },
		{ "h u secret\x01pw\n", "creds:1: contains a control character" },
	};
	char err[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtp_creds *t = NULL;
		int rc;

		err[0] = '\0';
		rc = smtp_creds_parse(&t, cases[i].text, strlen(cases[i].text), "creds", err,
				      sizeof(err));
		tap_ok(rc < 0 && t == NULL && strncmp(err, cases[i].want, strlen(cases[i].want)) == 0 &&
		       strstr(err, "secret") == NULL,
		       "bad %zu: %s", i, err);
	}
	{
		struct smtp_creds *t = NULL;

		tap_ok(smtp_creds_parse(&t, "h u p\0x", 7, "creds", err, sizeof(err)) < 0 &&
		       strstr(err, "NUL") != NULL, "bad: a NUL byte (%s)", err);
		tap_ok(smtp_creds_parse(&t, "", 0, "creds", err, sizeof(err)) == 0 &&
		       smtp_creds_count(t) == 0, "empty file: no accounts");
		smtp_creds_unref(&t);
	}
}

static void test_load(void)
{
	char path[] = "/tmp/test_smtp_creds_XXXXXX", err[256];
	struct smtp_creds *t = NULL;
	int fd = mkstemp(path);
	FILE *f;

	if (!tap_ok(fd >= 0, "load: temporary file"))
		return;
	f = fdopen(fd, "w");
	fputs("[127.0.0.1]:2600 user pass\n", f);
	fclose(f);
	chmod(path, 0600);
	tap_ok(smtp_creds_load(&t, path, err, sizeof(err)) == 0 && smtp_creds_count(t) == 1,
	       "load: mode 600 loads");
	smtp_creds_unref(&t);
	chmod(path, 0640);
	tap_ok(smtp_creds_load(&t, path, err, sizeof(err)) < 0 && t == NULL &&
	       strstr(err, "0640") != NULL && strstr(err, "chmod 600") != NULL,
	       "load: group-readable refused (%s)", err);
	chmod(path, 0604);
	tap_ok(smtp_creds_load(&t, path, err, sizeof(err)) < 0, "load: world-readable refused");
	chmod(path, 0620);
	tap_ok(smtp_creds_load(&t, path, err, sizeof(err)) < 0, "load: group-writable refused");
	unlink(path);
	tap_ok(smtp_creds_load(&t, path, err, sizeof(err)) < 0 && strstr(err, path) != NULL,
	       "load: a missing file names it");
	tap_ok(smtp_creds_load(&t, "/tmp", err, sizeof(err)) < 0 &&
	       strstr(err, "not a regular file") != NULL, "load: a directory");
}

static void test_holder(void)
{
	struct smtp_creds_holder h;
	struct smtp_creds *a = NULL, *b = NULL, *got;
	char err[64];

	smtp_creds_parse(&a, "h ua pa\n", 8, "a", err, sizeof(err));
	smtp_creds_parse(&b, "h ub pb\n", 8, "b", err, sizeof(err));
	smtp_creds_holder_init(&h, a);
	got = smtp_creds_holder_get(&h);
	smtp_creds_holder_swap(&h, b);
	tap_ok(strcmp(smtp_creds_find(got, "h", 25)->sc_user, "ua") == 0,
	       "holder: a session keeps the table it took across a swap");
	smtp_creds_unref(&got);
	got = smtp_creds_holder_get(&h);
	tap_ok(strcmp(smtp_creds_find(got, "h", 25)->sc_user, "ub") == 0,
	       "holder: the next one gets the new table");
	smtp_creds_unref(&got);
	smtp_creds_holder_swap(&h, NULL);
	tap_ok(smtp_creds_holder_get(&h) == NULL, "holder: no table");
	smtp_creds_holder_destroy(&h);
}

int main(void)
{
	test_parse();
	test_bad();
	test_load();
	test_holder();
	return tap_done();
}
