/*
 * test_smtp_cmd: table-driven tests of the SMTP command-line parser
 * (core/smtp_cmd.c): every verb, every RFC 5321 length limit at and one
 * past its boundary, paths, parameters and the error replies.
 */
#include "core/wire/smtp_cmd.h"
#include "tests/unit/tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct smtp_limits test_rfc = SMTP_LIMITS_RFC5321;

/* Expected results; a NULL string is not checked. */
struct cmd_case {
	const char *line;
	int err;
	enum smtp_verb verb;
	const char *path;
	const char *domain;
	const char *arg;
};

static const struct cmd_case cmd_cases[] = {
	/* HELO / EHLO */
	{ "HELO example.com", SMTP_CMD_OK, SMTP_VERB_HELO, NULL, "example.com", "example.com" },
	{ "helo example.com", SMTP_CMD_OK, SMTP_VERB_HELO, NULL, "example.com", NULL },
	{ "EHLO mail.example.org", SMTP_CMD_OK, SMTP_VERB_EHLO, NULL, "mail.example.org", NULL },
	{ "eHlO [192.0.2.1]", SMTP_CMD_OK, SMTP_VERB_EHLO, NULL, "[192.0.2.1]", NULL },
	{ "EHLO foo bar", SMTP_CMD_OK, SMTP_VERB_EHLO, NULL, "foo", "foo bar" },
	{ "EHLO   foo  ", SMTP_CMD_OK, SMTP_VERB_EHLO, NULL, "foo", "foo" },
	{ "EHLO", SMTP_CMD_E_SYNTAX, SMTP_VERB_EHLO, NULL, NULL, NULL },
	{ "HELO    ", SMTP_CMD_E_SYNTAX, SMTP_VERB_HELO, NULL, NULL, NULL },
	/* the name goes into logs and Received: no controls, only UTF-8 */
	{ "EHLO ev\x01il", SMTP_CMD_E_HELO, SMTP_VERB_EHLO, NULL, NULL, NULL },
	{ "EHLO evil\x1b[31m", SMTP_CMD_E_HELO, SMTP_VERB_EHLO, NULL, NULL, NULL },
	{ "EHLO a\tb", SMTP_CMD_E_HELO, SMTP_VERB_EHLO, NULL, NULL, NULL },
	{ "HELO a\x7f", SMTP_CMD_E_HELO, SMTP_VERB_HELO, NULL, NULL, NULL },
	{ "EHLO a\xc2\x85" "b", SMTP_CMD_E_HELO, SMTP_VERB_EHLO, NULL, NULL, NULL },
	{ "EHLO a\xff", SMTP_CMD_E_HELO, SMTP_VERB_EHLO, NULL, NULL, NULL },
	{ "EHLO \xc3\xa9x.example", SMTP_CMD_OK, SMTP_VERB_EHLO, NULL, "\xc3\xa9x.example", NULL },
	{ "EHLO ok.example \x01junk", SMTP_CMD_OK, SMTP_VERB_EHLO, NULL, "ok.example", NULL },

	/* verbs without arguments */
	{ "DATA", SMTP_CMD_OK, SMTP_VERB_DATA, NULL, NULL, "" },
	{ "data", SMTP_CMD_OK, SMTP_VERB_DATA, NULL, NULL, NULL },
	{ "DATA   ", SMTP_CMD_OK, SMTP_VERB_DATA, NULL, NULL, NULL },
	{ "DATA\t", SMTP_CMD_OK, SMTP_VERB_DATA, NULL, NULL, NULL },
	{ "DATA x", SMTP_CMD_E_NOARGS, SMTP_VERB_DATA, NULL, NULL, NULL },
	{ "RSET", SMTP_CMD_OK, SMTP_VERB_RSET, NULL, NULL, NULL },
	{ "rset now", SMTP_CMD_E_NOARGS, SMTP_VERB_RSET, NULL, NULL, NULL },
	{ "QUIT", SMTP_CMD_OK, SMTP_VERB_QUIT, NULL, NULL, NULL },
	{ "Quit", SMTP_CMD_OK, SMTP_VERB_QUIT, NULL, NULL, NULL },
	{ "QUIT bye", SMTP_CMD_E_NOARGS, SMTP_VERB_QUIT, NULL, NULL, NULL },
	{ "STARTTLS", SMTP_CMD_OK, SMTP_VERB_STARTTLS, NULL, NULL, NULL },
	{ "starttls ", SMTP_CMD_OK, SMTP_VERB_STARTTLS, NULL, NULL, NULL },
	{ "STARTTLS x", SMTP_CMD_E_NOARGS, SMTP_VERB_STARTTLS, NULL, NULL, NULL },

	/* verbs with free arguments */
	{ "NOOP", SMTP_CMD_OK, SMTP_VERB_NOOP, NULL, NULL, "" },
	{ "noop hello  world", SMTP_CMD_OK, SMTP_VERB_NOOP, NULL, NULL, "hello  world" },
	{ "HELP", SMTP_CMD_OK, SMTP_VERB_HELP, NULL, NULL, "" },
	{ "HELP MAIL", SMTP_CMD_OK, SMTP_VERB_HELP, NULL, NULL, "MAIL" },
	{ "VRFY postmaster", SMTP_CMD_OK, SMTP_VERB_VRFY, NULL, NULL, "postmaster" },
	{ "VRFY", SMTP_CMD_E_SYNTAX, SMTP_VERB_VRFY, NULL, NULL, NULL },
	{ "vrfy   ", SMTP_CMD_E_SYNTAX, SMTP_VERB_VRFY, NULL, NULL, NULL },
	{ "EXPN staff", SMTP_CMD_OK, SMTP_VERB_EXPN, NULL, NULL, "staff" },
	{ "EXPN", SMTP_CMD_E_SYNTAX, SMTP_VERB_EXPN, NULL, NULL, NULL },
	{ "AUTH PLAIN dGVzdAB0ZXN0AHRlc3Q=", SMTP_CMD_OK, SMTP_VERB_AUTH, NULL, NULL,
	  "PLAIN dGVzdAB0ZXN0AHRlc3Q=" },
	{ "auth", SMTP_CMD_OK, SMTP_VERB_AUTH, NULL, NULL, "" },

	/* unknown verbs */
	{ "", SMTP_CMD_E_UNKNOWN, SMTP_VERB_UNKNOWN, NULL, NULL, NULL },
	{ "   ", SMTP_CMD_E_UNKNOWN, SMTP_VERB_UNKNOWN, NULL, NULL, NULL },
	{ "FOO bar", SMTP_CMD_E_UNKNOWN, SMTP_VERB_UNKNOWN, NULL, NULL, NULL },
	{ "DATAX", SMTP_CMD_E_UNKNOWN, SMTP_VERB_UNKNOWN, NULL, NULL, NULL },
	{ "DAT", SMTP_CMD_E_UNKNOWN, SMTP_VERB_UNKNOWN, NULL, NULL, NULL },
	{ " QUIT", SMTP_CMD_E_UNKNOWN, SMTP_VERB_UNKNOWN, NULL, NULL, NULL },
	{ "MAILFROM:<a@b.c>", SMTP_CMD_E_UNKNOWN, SMTP_VERB_UNKNOWN, NULL, NULL, NULL },
	{ "MAIL\tFROM:<a@b.c>", SMTP_CMD_E_UNKNOWN, SMTP_VERB_UNKNOWN, NULL, NULL, NULL },
	{ "GET / HTTP/1.1", SMTP_CMD_E_UNKNOWN, SMTP_VERB_UNKNOWN, NULL, NULL, NULL },

	/* MAIL */
	{ "MAIL FROM:<user@example.com>", SMTP_CMD_OK, SMTP_VERB_MAIL, "user@example.com", NULL, NULL },
	{ "mail from:<user@example.com>", SMTP_CMD_OK, SMTP_VERB_MAIL, "user@example.com", NULL, NULL },
	{ "Mail From:<User@Example.COM>", SMTP_CMD_OK, SMTP_VERB_MAIL, "User@Example.COM", NULL, NULL },
	{ "MAIL FROM: <user@example.com>", SMTP_CMD_OK, SMTP_VERB_MAIL, "user@example.com", NULL, NULL },
	{ "MAIL FROM:<user@example.com>   ", SMTP_CMD_OK, SMTP_VERB_MAIL, "user@example.com", NULL, NULL },
	{ "MAIL FROM:  <user@example.com>", SMTP_CMD_E_SYNTAX, SMTP_VERB_MAIL, NULL, NULL, NULL },
	{ "MAIL FROM:user@example.com", SMTP_CMD_E_SYNTAX, SMTP_VERB_MAIL, NULL, NULL, NULL },
	{ "MAIL FROM:<user@example.com", SMTP_CMD_E_SYNTAX, SMTP_VERB_MAIL, NULL, NULL, NULL },
	{ "MAIL FROM:user@example.com>", SMTP_CMD_E_SYNTAX, SMTP_VERB_MAIL, NULL, NULL, NULL },
	{ "MAIL FROM:", SMTP_CMD_E_SYNTAX, SMTP_VERB_MAIL, NULL, NULL, NULL },
	{ "MAIL FROM", SMTP_CMD_E_SYNTAX, SMTP_VERB_MAIL, NULL, NULL, NULL },
	{ "MAIL", SMTP_CMD_E_SYNTAX, SMTP_VERB_MAIL, NULL, NULL, NULL },
	{ "MAIL TO:<user@example.com>", SMTP_CMD_E_SYNTAX, SMTP_VERB_MAIL, NULL, NULL, NULL },
	{ "MAIL <user@example.com>", SMTP_CMD_E_SYNTAX, SMTP_VERB_MAIL, NULL, NULL, NULL },
	{ "MAIL FROM:<user@example.com>SIZE=1", SMTP_CMD_E_SYNTAX, SMTP_VERB_MAIL, NULL, NULL, NULL },
	{ "MAIL FROM:<>", SMTP_CMD_OK, SMTP_VERB_MAIL, "", NULL, NULL },
	{ "MAIL FROM: <> SIZE=100", SMTP_CMD_OK, SMTP_VERB_MAIL, "", NULL, NULL },
	{ "MAIL FROM:<postmaster>", SMTP_CMD_E_ADDR, SMTP_VERB_MAIL, NULL, NULL, NULL },

	/* RCPT */
	{ "RCPT TO:<user@example.com>", SMTP_CMD_OK, SMTP_VERB_RCPT, "user@example.com", NULL, NULL },
	{ "rcpt to:<user@example.com>", SMTP_CMD_OK, SMTP_VERB_RCPT, "user@example.com", NULL, NULL },
	{ "RCPT TO: <user@example.com>", SMTP_CMD_OK, SMTP_VERB_RCPT, "user@example.com", NULL, NULL },
	{ "RCPT TO:<>", SMTP_CMD_E_ADDR, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "RCPT TO:<postmaster>", SMTP_CMD_OK, SMTP_VERB_RCPT, "postmaster", NULL, NULL },
	{ "RCPT TO:<PostMaster>", SMTP_CMD_OK, SMTP_VERB_RCPT, "PostMaster", NULL, NULL },
	{ "RCPT TO:<postmistress>", SMTP_CMD_E_ADDR, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "RCPT TO:<user>", SMTP_CMD_E_ADDR, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "RCPT FROM:<user@example.com>", SMTP_CMD_E_SYNTAX, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "RCPT TO:user@example.com", SMTP_CMD_E_SYNTAX, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "RCPT", SMTP_CMD_E_SYNTAX, SMTP_VERB_RCPT, NULL, NULL, NULL },

	/* source routes: checked, then stripped from the path */
	{ "RCPT TO:<@relay1.example,@relay2.example:user@example.com>", SMTP_CMD_OK,
	  SMTP_VERB_RCPT, "user@example.com", NULL, NULL },
	{ "MAIL FROM:<@a.example:u@b.example>", SMTP_CMD_OK, SMTP_VERB_MAIL, "u@b.example", NULL, NULL },
	{ "RCPT TO:<@[192.0.2.1]:u@b.example>", SMTP_CMD_OK, SMTP_VERB_RCPT, "u@b.example", NULL, NULL },
	{ "RCPT TO:<@relay:>", SMTP_CMD_E_ADDR, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "RCPT TO:<@relay user@example.com>", SMTP_CMD_E_ADDR, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "RCPT TO:<@,@b:u@example.com>", SMTP_CMD_E_ADDR, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "RCPT TO:<@a,b:u@example.com>", SMTP_CMD_E_ADDR, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "RCPT TO:<@example.com>", SMTP_CMD_E_ADDR, SMTP_VERB_RCPT, NULL, NULL, NULL },

	/* quoted local parts */
	{ "RCPT TO:<\"john doe\"@example.com>", SMTP_CMD_OK, SMTP_VERB_RCPT,
	  "\"john doe\"@example.com", NULL, NULL },
	{ "RCPT TO:<\"a\\\"b\"@example.com>", SMTP_CMD_OK, SMTP_VERB_RCPT,
	  "\"a\\\"b\"@example.com", NULL, NULL },
	{ "RCPT TO:<\"a@b\"@example.com>", SMTP_CMD_OK, SMTP_VERB_RCPT, "\"a@b\"@example.com", NULL, NULL },
	{ "RCPT TO:<\"a>b\"@example.com>", SMTP_CMD_OK, SMTP_VERB_RCPT, "\"a>b\"@example.com", NULL, NULL },
	{ "RCPT TO:<\"\"@example.com>", SMTP_CMD_OK, SMTP_VERB_RCPT, "\"\"@example.com", NULL, NULL },
	{ "RCPT TO:<\"unterminated@example.com>", SMTP_CMD_E_SYNTAX, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "RCPT TO:<\"a\tb\"@example.com>", SMTP_CMD_E_ADDR, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "RCPT TO:<\"ab\"c@example.com>", SMTP_CMD_E_ADDR, SMTP_VERB_RCPT, NULL, NULL, NULL },

	/* address literals */
	{ "RCPT TO:<user@[192.0.2.1]>", SMTP_CMD_OK, SMTP_VERB_RCPT, "user@[192.0.2.1]", NULL, NULL },
	{ "RCPT TO:<user@[IPv6:2001:db8::1]>", SMTP_CMD_OK, SMTP_VERB_RCPT,
	  "user@[IPv6:2001:db8::1]", NULL, NULL },
	{ "RCPT TO:<user@[ipv6:::1]>", SMTP_CMD_OK, SMTP_VERB_RCPT, "user@[ipv6:::1]", NULL, NULL },
	{ "RCPT TO:<user@[IPv6:::ffff:192.0.2.1]>", SMTP_CMD_OK, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "RCPT TO:<user@[192.0.2.256]>", SMTP_CMD_E_ADDR, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "RCPT TO:<user@[192.0.2]>", SMTP_CMD_E_ADDR, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "RCPT TO:<user@[192.0.2.1.5]>", SMTP_CMD_E_ADDR, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "RCPT TO:<user@[0192.0.2.1]>", SMTP_CMD_E_ADDR, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "RCPT TO:<user@[IPv6:2001:db8::zz]>", SMTP_CMD_E_ADDR, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "RCPT TO:<user@[IPv6:192.0.2.1]>", SMTP_CMD_E_ADDR, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "RCPT TO:<user@[example.com]>", SMTP_CMD_E_ADDR, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "RCPT TO:<user@[192.0.2.1>", SMTP_CMD_E_SYNTAX, SMTP_VERB_RCPT, NULL, NULL, NULL },

	/* bad address syntax */
	{ "RCPT TO:<a b@example.com>", SMTP_CMD_E_ADDR, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "RCPT TO:<a@b@example.com>", SMTP_CMD_E_ADDR, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "RCPT TO:<@>", SMTP_CMD_E_ADDR, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "RCPT TO:<user@>", SMTP_CMD_E_ADDR, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "MAIL FROM:<@example.com>", SMTP_CMD_E_ADDR, SMTP_VERB_MAIL, NULL, NULL, NULL },
	{ "RCPT TO:<user@example..com>", SMTP_CMD_E_ADDR, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "RCPT TO:<user@.example.com>", SMTP_CMD_E_ADDR, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "RCPT TO:<user@example.com.>", SMTP_CMD_E_ADDR, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "RCPT TO:<us(er@example.com>", SMTP_CMD_E_ADDR, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "RCPT TO:<user@exa mple.com>", SMTP_CMD_E_ADDR, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "RCPT TO:<user@example.com>>", SMTP_CMD_E_SYNTAX, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "RCPT TO:<user\x01@example.com>", SMTP_CMD_E_ADDR, SMTP_VERB_RCPT, NULL, NULL, NULL },
	/* lenient where real mail needs it */
	{ "RCPT TO:<first.last.@docomo.ne.jp>", SMTP_CMD_OK, SMTP_VERB_RCPT,
	  "first.last.@docomo.ne.jp", NULL, NULL },
	{ "RCPT TO:<a+tag/x=y@sub_domain.example>", SMTP_CMD_OK, SMTP_VERB_RCPT, NULL, NULL, NULL },
	/* UTF-8 (RFC 6531): structure only, policy is the session's */
	{ "RCPT TO:<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a>",
	  SMTP_CMD_OK, SMTP_VERB_RCPT,
	  "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a", NULL, NULL },
	{ "RCPT TO:<\"\xc3\xa9t\xc3\xa9\"@example.com>", SMTP_CMD_OK, SMTP_VERB_RCPT, NULL, NULL, NULL },
	/* 8-bit addresses must be well-formed UTF-8 */
	{ "RCPT TO:<\xff@example.com>", SMTP_CMD_E_UTF8, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "RCPT TO:<a\xc0\xaf" "b@example.com>", SMTP_CMD_E_UTF8, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "MAIL FROM:<\xed\xa0\x80@example.com> SMTPUTF8", SMTP_CMD_E_UTF8, SMTP_VERB_MAIL,
	  NULL, NULL, NULL },
	{ "MAIL FROM:<a@\xe4\xbe.example> SMTPUTF8", SMTP_CMD_E_UTF8, SMTP_VERB_MAIL,
	  NULL, NULL, NULL },
	{ "RCPT TO:<\"\xc3\"@example.com>", SMTP_CMD_E_UTF8, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "RCPT TO:<@\xf5x.example:a@example.com>", SMTP_CMD_E_UTF8, SMTP_VERB_RCPT, NULL, NULL,
	  NULL },
	{ "RCPT TO:<\xf0\x9f\x98\x80@example.com>", SMTP_CMD_OK, SMTP_VERB_RCPT,
	  "\xf0\x9f\x98\x80@example.com", NULL, NULL },

	/* parameter syntax */
	{ "MAIL FROM:<a@b.example> FOO=bar", SMTP_CMD_E_PARAM, SMTP_VERB_MAIL, NULL, NULL, NULL },
	{ "MAIL FROM:<a@b.example> XYZ", SMTP_CMD_E_PARAM, SMTP_VERB_MAIL, NULL, NULL, NULL },
	{ "MAIL FROM:<a@b.example> NOTIFY=NEVER", SMTP_CMD_E_PARAM, SMTP_VERB_MAIL, NULL, NULL, NULL },
	{ "MAIL FROM:<a@b.example> BODY=BINARYMIME", SMTP_CMD_E_PARAM, SMTP_VERB_MAIL, NULL, NULL, NULL },
	{ "MAIL FROM:<a@b.example> =x", SMTP_CMD_E_SYNTAX, SMTP_VERB_MAIL, NULL, NULL, NULL },
	{ "MAIL FROM:<a@b.example> -X=1", SMTP_CMD_E_SYNTAX, SMTP_VERB_MAIL, NULL, NULL, NULL },
	{ "MAIL FROM:<a@b.example> SIZE==1", SMTP_CMD_E_SYNTAX, SMTP_VERB_MAIL, NULL, NULL, NULL },
	{ "MAIL FROM:<a@b.example> SIZE=", SMTP_CMD_E_SYNTAX, SMTP_VERB_MAIL, NULL, NULL, NULL },
	{ "MAIL FROM:<a@b.example> SIZE", SMTP_CMD_E_SYNTAX, SMTP_VERB_MAIL, NULL, NULL, NULL },
	{ "MAIL FROM:<a@b.example> SIZE=12a", SMTP_CMD_E_SYNTAX, SMTP_VERB_MAIL, NULL, NULL, NULL },
	{ "MAIL FROM:<a@b.example> SIZE=-1", SMTP_CMD_E_SYNTAX, SMTP_VERB_MAIL, NULL, NULL, NULL },
	{ "MAIL FROM:<a@b.example> SIZE=1 SIZE=2", SMTP_CMD_E_SYNTAX, SMTP_VERB_MAIL, NULL, NULL, NULL },
	{ "MAIL FROM:<a@b.example> SMTPUTF8=yes", SMTP_CMD_E_SYNTAX, SMTP_VERB_MAIL, NULL, NULL, NULL },
	{ "MAIL FROM:<a@b.example> BODY", SMTP_CMD_E_SYNTAX, SMTP_VERB_MAIL, NULL, NULL, NULL },
	{ "MAIL FROM:<a@b.example> AUTH", SMTP_CMD_E_SYNTAX, SMTP_VERB_MAIL, NULL, NULL, NULL },
	{ "MAIL FROM:<a@b.example> SIZE=1\tBODY=7BIT", SMTP_CMD_E_SYNTAX, SMTP_VERB_MAIL, NULL, NULL, NULL },
	{ "MAIL FROM:<a@b.example> AUTH=<>", SMTP_CMD_OK, SMTP_VERB_MAIL, NULL, NULL, NULL },
	{ "MAIL FROM:<a@b.example> AUTH=user+40example.com", SMTP_CMD_OK, SMTP_VERB_MAIL, NULL, NULL, NULL },
	{ "MAIL FROM:<a@b.example> RET=HDRS ENVID=QQ314159", SMTP_CMD_OK, SMTP_VERB_MAIL, NULL, NULL, NULL },
	{ "RCPT TO:<a@b.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@b.example", SMTP_CMD_OK,
	  SMTP_VERB_RCPT, "a@b.example", NULL, NULL },
	{ "RCPT TO:<a@b.example> notify=never", SMTP_CMD_OK, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "RCPT TO:<a@b.example> SIZE=10", SMTP_CMD_E_PARAM, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "RCPT TO:<a@b.example> FOO", SMTP_CMD_E_PARAM, SMTP_VERB_RCPT, NULL, NULL, NULL },
	{ "RCPT TO:<a@b.example> NOTIFY", SMTP_CMD_E_SYNTAX, SMTP_VERB_RCPT, NULL, NULL, NULL },
};

/* Whether a slice equals a C string and points into [line, line + len). */
static int test_slice_is(struct smtp_slice s, const char *want, const char *line, size_t len)
{
	if (want == NULL)
		return 1;
	if (s.len != strlen(want) || memcmp(s.p, want, s.len) != 0)
		return 0;
	return s.len == 0 || (s.p >= line && s.p + s.len <= line + len);
}

static void test_table(void)
{
	for (size_t i = 0; i < sizeof(cmd_cases) / sizeof(cmd_cases[0]); i++) {
		const struct cmd_case *tc = &cmd_cases[i];
		size_t len = strlen(tc->line);
		struct smtp_cmd cmd;
		int err = smtp_cmd_parse(tc->line, len, &test_rfc, &cmd);
		int ok = err == tc->err && cmd.verb == tc->verb;

		if (err == SMTP_CMD_OK) {
			ok = ok && test_slice_is(cmd.path, tc->path, tc->line, len);
			ok = ok && test_slice_is(cmd.domain, tc->domain, tc->line, len);
			ok = ok && test_slice_is(cmd.arg, tc->arg, tc->line, len);
		}
		if (!tap_ok(ok, "parse \"%s\" -> %d", tc->line, tc->err))
			printf("# got err %d verb %s path \"%.*s\" domain \"%.*s\" arg \"%.*s\"\n",
			       err, smtp_cmd_verb_name(cmd.verb), (int)cmd.path.len, cmd.path.p,
			       (int)cmd.domain.len, cmd.domain.p, (int)cmd.arg.len, cmd.arg.p);
	}
}

struct param_case {
	const char *line;
	int err;
	bool has_size;
	uint64_t size;
	enum smtp_body_type body;
	bool smtputf8;
};

static const struct param_case param_cases[] = {
	{ "MAIL FROM:<a@b.example>", 0, false, 0, SMTP_BODY_UNSPEC, false },
	{ "MAIL FROM:<a@b.example> SIZE=12345", 0, true, 12345, SMTP_BODY_UNSPEC, false },
	{ "MAIL FROM:<a@b.example> size=0", 0, true, 0, SMTP_BODY_UNSPEC, false },
	{ "MAIL FROM:<a@b.example> SIZE=18446744073709551615", 0, true, UINT64_MAX,
	  SMTP_BODY_UNSPEC, false },
	{ "MAIL FROM:<a@b.example> SIZE=18446744073709551616", SMTP_CMD_E_SYNTAX, false, 0,
	  SMTP_BODY_UNSPEC, false },
	{ "MAIL FROM:<a@b.example> SIZE=99999999999999999999999", SMTP_CMD_E_SYNTAX, false, 0,
	  SMTP_BODY_UNSPEC, false },
	{ "MAIL FROM:<a@b.example> BODY=7BIT", 0, false, 0, SMTP_BODY_7BIT, false },
	{ "MAIL FROM:<a@b.example> body=8bitmime", 0, false, 0, SMTP_BODY_8BITMIME, false },
	{ "MAIL FROM:<a@b.example> SMTPUTF8", 0, false, 0, SMTP_BODY_UNSPEC, true },
	{ "MAIL FROM:<a@b.example> smtputf8 BODY=8BITMIME SIZE=42", 0, true, 42,
	  SMTP_BODY_8BITMIME, true },
	{ "MAIL FROM:<a@b.example>   SIZE=7    BODY=7BIT   ", 0, true, 7, SMTP_BODY_7BIT, false },
	{ "MAIL FROM:<> SIZE=1000 AUTH=<> RET=FULL ENVID=x", 0, true, 1000, SMTP_BODY_UNSPEC, false },
};

static void test_params(void)
{
	for (size_t i = 0; i < sizeof(param_cases) / sizeof(param_cases[0]); i++) {
		const struct param_case *tc = &param_cases[i];
		struct smtp_cmd cmd;
		int err = smtp_cmd_parse(tc->line, strlen(tc->line), &test_rfc, &cmd);
		int ok = err == tc->err;

		if (err == SMTP_CMD_OK)
			ok = ok && cmd.has_size == tc->has_size && cmd.size == tc->size &&
			     cmd.body == tc->body && cmd.smtputf8 == tc->smtputf8;
		tap_ok(ok, "params \"%s\"", tc->line);
	}
}

struct bdat_case {
	const char *line;
	int err;
	uint64_t chunk;
	bool last;
};

static const struct bdat_case bdat_cases[] = {
	{ "BDAT 100", 0, 100, false },
	{ "BDAT 0 LAST", 0, 0, true },
	{ "bdat 5 last", 0, 5, true },
	{ "BDAT 5   Last  ", 0, 5, true },
	{ "BDAT 000123", 0, 123, false },
	{ "BDAT 9223372036854775807", 0, 9223372036854775807ull, false },
	{ "BDAT 9223372036854775808", SMTP_CMD_E_SYNTAX, 0, false },
	{ "BDAT 99999999999999999999", SMTP_CMD_E_SYNTAX, 0, false },
	{ "BDAT", SMTP_CMD_E_SYNTAX, 0, false },
	{ "BDAT x", SMTP_CMD_E_SYNTAX, 0, false },
	{ "BDAT -1", SMTP_CMD_E_SYNTAX, 0, false },
	{ "BDAT 10LAST", SMTP_CMD_E_SYNTAX, 0, false },
	{ "BDAT 10 MORE", SMTP_CMD_E_SYNTAX, 0, false },
	{ "BDAT 10 LAST x", SMTP_CMD_E_SYNTAX, 0, false },
	{ "BDAT 10 LASTX", SMTP_CMD_E_SYNTAX, 0, false },
};

static void test_bdat(void)
{
	for (size_t i = 0; i < sizeof(bdat_cases) / sizeof(bdat_cases[0]); i++) {
		const struct bdat_case *tc = &bdat_cases[i];
		struct smtp_cmd cmd;
		int err = smtp_cmd_parse(tc->line, strlen(tc->line), &test_rfc, &cmd);
		int ok = err == tc->err && cmd.verb == SMTP_VERB_BDAT;

		if (err == SMTP_CMD_OK)
			ok = ok && cmd.chunk_size == tc->chunk && cmd.last == tc->last;
		tap_ok(ok, "bdat \"%s\"", tc->line);
	}
}

/* n octets of domain: labels of 'a' with a dot every 50, never at an end. */
static void test_fill_domain(char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (i % 50 == 49 && i + 1 < n) ? '.' : 'a';
}

/* "<verb> <prefix><" + route + local@domain + ">" into a malloc'd line. */
static char *test_addr_line(const char *prefix, const char *route, size_t local, size_t domain,
			    size_t *len_r)
{
	size_t plen = strlen(prefix), rlen = strlen(route);
	size_t len = plen + 1 + rlen + local + 1 + domain + 1;
	char *line = malloc(len + 1), *p = line;

	memcpy(p, prefix, plen);
	p += plen;
	*p++ = '<';
	memcpy(p, route, rlen);
	p += rlen;
	memset(p, 'l', local);
	p += local;
	*p++ = '@';
	test_fill_domain(p, domain);
	p += domain;
	*p++ = '>';
	*p = '\0';
	*len_r = len;
	return line;
}

struct limit_case {
	const char *what;
	const char *prefix;
	const char *route;
	size_t local, domain;
	struct smtp_limits lim;
	int err;
};

static const struct limit_case limit_cases[] = {
	/* path 256 incl. <>: 64 + 1 + 189 + 2 = 256 */
	{ "path at 256", "MAIL FROM:", "", 64, 189, SMTP_LIMITS_RFC5321, SMTP_CMD_OK },
	{ "path at 257", "MAIL FROM:", "", 64, 190, SMTP_LIMITS_RFC5321, SMTP_CMD_E_PATH_LEN },
	{ "rcpt path at 256", "RCPT TO:", "", 60, 193, SMTP_LIMITS_RFC5321, SMTP_CMD_OK },
	{ "rcpt path at 257", "RCPT TO:", "", 60, 194, SMTP_LIMITS_RFC5321, SMTP_CMD_E_PATH_LEN },
	/* the route counts toward the path: 11 + 60 + 1 + 182 + 2 = 256 */
	{ "path with route at 256", "RCPT TO:", "@r.example:", 60, 182, SMTP_LIMITS_RFC5321,
	  SMTP_CMD_OK },
	{ "path with route at 257", "RCPT TO:", "@r.example:", 60, 183, SMTP_LIMITS_RFC5321,
	  SMTP_CMD_E_PATH_LEN },
	{ "local part at 64", "MAIL FROM:", "", 64, 10, SMTP_LIMITS_RFC5321, SMTP_CMD_OK },
	{ "local part at 65", "MAIL FROM:", "", 65, 10, SMTP_LIMITS_RFC5321, SMTP_CMD_E_LOCAL_LEN },
	{ "rcpt local part at 65", "RCPT TO:", "", 65, 10, SMTP_LIMITS_RFC5321, SMTP_CMD_E_LOCAL_LEN },
	/* a 255-octet domain cannot fit a 256-octet path; widen the path */
	{ "domain at 255", "RCPT TO:", "", 1, 255, { 1000, 64, 255 }, SMTP_CMD_OK },
	{ "domain at 256", "RCPT TO:", "", 1, 256, { 1000, 64, 255 }, SMTP_CMD_E_DOMAIN_LEN },
	{ "domain at 256, RFC limits", "RCPT TO:", "", 1, 256, SMTP_LIMITS_RFC5321,
	  SMTP_CMD_E_DOMAIN_LEN },
	{ "short domain, wide path", "RCPT TO:", "", 1, 5, { 1000, 64, 255 }, SMTP_CMD_OK },
	/* shrunken limits */
	{ "small path at 20", "MAIL FROM:", "", 5, 12, { 20, 5, 12 }, SMTP_CMD_OK },
	{ "small path at 21", "MAIL FROM:", "", 5, 13, { 20, 5, 13 }, SMTP_CMD_E_PATH_LEN },
	{ "small local at 6", "MAIL FROM:", "", 6, 3, { 20, 5, 12 }, SMTP_CMD_E_LOCAL_LEN },
	{ "small domain at 13", "MAIL FROM:", "", 1, 13, { 100, 5, 12 }, SMTP_CMD_E_DOMAIN_LEN },
};

static void test_limits(void)
{
	for (size_t i = 0; i < sizeof(limit_cases) / sizeof(limit_cases[0]); i++) {
		const struct limit_case *tc = &limit_cases[i];
		struct smtp_cmd cmd;
		size_t len;
		char *line = test_addr_line(tc->prefix, tc->route, tc->local, tc->domain, &len);
		int err = smtp_cmd_parse(line, len, &tc->lim, &cmd);
		int ok = err == tc->err;

		if (err == SMTP_CMD_OK)
			ok = ok && cmd.path.len == tc->local + 1 + tc->domain &&
			     cmd.path.p == line + strlen(tc->prefix) + 1 + strlen(tc->route);
		if (!tap_ok(ok, "limit: %s", tc->what))
			printf("# got %d, want %d\n", err, tc->err);
		free(line);
	}

	/* A route domain is a domain: the same limit applies to it. */
	{
		static const struct smtp_limits lim = { 1000, 64, 255 };
		char route[300], *line;
		struct smtp_cmd cmd;
		size_t len;
		int err;

		route[0] = '@';
		test_fill_domain(route + 1, 256);
		strcpy(route + 257, ":");
		line = test_addr_line("RCPT TO:", route, 1, 5, &len);
		err = smtp_cmd_parse(line, len, &lim, &cmd);
		tap_ok(err == SMTP_CMD_E_DOMAIN_LEN, "limit: route domain at 256");
		free(line);
	}
}

/* Lines with NUL octets need explicit lengths. */
static void test_nul(void)
{
	static const struct {
		const char *line;
		size_t len;
		enum smtp_verb verb;
	} cases[] = {
		{ "MAIL FROM:<a\0@b.example>", 24, SMTP_VERB_MAIL },
		{ "QUIT\0", 5, SMTP_VERB_QUIT },
		{ "NOOP x\0y", 8, SMTP_VERB_NOOP },
		{ "\0", 1, SMTP_VERB_UNKNOWN },
		{ "FOO\0", 4, SMTP_VERB_UNKNOWN },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtp_cmd cmd;
		int err = smtp_cmd_parse(cases[i].line, cases[i].len, &test_rfc, &cmd);

		tap_ok(err == SMTP_CMD_E_SYNTAX && cmd.verb == cases[i].verb,
		       "NUL in \"%s...\" is a syntax error, verb %s", cases[i].line,
		       smtp_cmd_verb_name(cases[i].verb));
	}
}

/* The parser reads only len octets: no NUL terminator is needed. */
static void test_unterminated(void)
{
	static const char text[] = "RCPT TO:<user@example.com> NOTIFY=NEVER";
	size_t len = sizeof(text) - 1;
	char *line = malloc(len);
	struct smtp_cmd cmd;
	int err;

	memcpy(line, text, len);
	err = smtp_cmd_parse(line, len, &test_rfc, &cmd);
	tap_ok(err == SMTP_CMD_OK && cmd.path.p == line + 9 && cmd.path.len == 16,
	       "unterminated line parses, slices into it");
	err = smtp_cmd_parse(line, 25, &test_rfc, &cmd);
	tap_ok(err == SMTP_CMD_E_SYNTAX, "a line cut before '>' is a syntax error");
	free(line);
}

static void test_strings(void)
{
	static const struct {
		int err;
		const char *text;
	} errs[] = {
		{ SMTP_CMD_E_UNKNOWN, "500 5.5.1 Command unrecognized" },
		{ SMTP_CMD_E_SYNTAX, "501 5.5.2 Syntax error in parameters or arguments" },
		{ SMTP_CMD_E_PARAM,
		  "555 5.5.4 MAIL FROM/RCPT TO parameters not recognized or not implemented" },
		{ SMTP_CMD_E_PATH_LEN, "501 5.1.3 Path too long" },
		{ SMTP_CMD_E_LOCAL_LEN, "501 5.1.3 Local part too long" },
		{ SMTP_CMD_E_DOMAIN_LEN, "501 5.1.3 Domain too long" },
		{ SMTP_CMD_E_ADDR, "501 5.1.3 Bad address syntax" },
		{ SMTP_CMD_E_NOARGS, "501 5.5.4 Syntax error: command takes no arguments" },
		{ SMTP_CMD_E_UTF8, "553 5.6.7 Address is not valid UTF-8" },
		{ SMTP_CMD_E_HELO,
		  "501 5.5.4 Invalid HELO/EHLO name: control character or invalid UTF-8" },
		{ -99, "451 4.3.0 Internal error" },
		{ 1, "451 4.3.0 Internal error" },
		{ SMTP_CMD_OK, "451 4.3.0 Internal error" },
	};
	static const char *const names[SMTP_VERB_COUNT] = {
		"UNKNOWN", "HELO", "EHLO", "MAIL", "RCPT", "DATA", "BDAT", "RSET",
		"NOOP", "QUIT", "VRFY", "EXPN", "HELP", "STARTTLS", "AUTH",
	};
	int ok = 1;

	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
		tap_ok(strcmp(smtp_cmd_strerror(errs[i].err), errs[i].text) == 0,
		       "strerror(%d) = \"%s\"", errs[i].err, errs[i].text);
	for (int v = 0; v < SMTP_VERB_COUNT; v++)
		ok = ok && strcmp(smtp_cmd_verb_name((enum smtp_verb)v), names[v]) == 0;
	tap_ok(ok, "verb names for every verb");
	tap_ok(strcmp(smtp_cmd_verb_name(SMTP_VERB_COUNT), "UNKNOWN") == 0,
	       "verb name out of range is UNKNOWN");
}

/* RFC 3629 well-formedness, at and past every boundary of its table. */
static void test_utf8(void)
{
	static const struct {
		const char *s;
		size_t len;
		bool ok;
	} cases[] = {
		{ "", 0, true },
		{ "plain ascii", 11, true },
		{ "\x7f", 1, true },
		{ "\xc2\x80", 2, true },		/* U+0080 */
		{ "\xdf\xbf", 2, true },		/* U+07FF */
		{ "\xe0\xa0\x80", 3, true },	/* U+0800 */
		{ "\xed\x9f\xbf", 3, true },	/* U+D7FF */
		{ "\xee\x80\x80", 3, true },	/* U+E000 */
		{ "\xef\xbf\xbf", 3, true },	/* U+FFFF */
		{ "\xf0\x90\x80\x80", 4, true },	/* U+10000 */
		{ "\xf4\x8f\xbf\xbf", 4, true },	/* U+10FFFF */
		{ "\x80", 1, false },		/* lone continuation */
		{ "\xbf", 1, false },
		{ "\xc0\x80", 2, false },		/* overlong NUL */
		{ "\xc1\xbf", 2, false },		/* overlong */
		{ "\xe0\x9f\xbf", 3, false },	/* overlong */
		{ "\xf0\x8f\xbf\xbf", 4, false },	/* overlong */
		{ "\xed\xa0\x80", 3, false },	/* U+D800 */
		{ "\xed\xbf\xbf", 3, false },	/* U+DFFF */
		{ "\xf4\x90\x80\x80", 4, false },	/* U+110000 */
		{ "\xf5\x80\x80\x80", 4, false },
		{ "\xff", 1, false },
		{ "\xc3", 1, false },		/* truncated */
		{ "\xe4\xbe", 2, false },
		{ "\xf0\x9f\x98", 3, false },
		{ "\xc3(", 2, false },		/* bad continuation */
		{ "\xe4\xbe(", 3, false },
		{ "\xf0\x9f\x98(", 4, false },
		{ "a\xc3\xa9" "b\xe4\xbe\x8b", 7, true },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		tap_ok(smtp_cmd_utf8_valid(cases[i].s, cases[i].len) == cases[i].ok,
		       "utf8 case %zu is %s", i, cases[i].ok ? "valid" : "invalid");
}

struct dsn_case {
	const char *line;
	int err;
	uint8_t ret, notify;
	const char *envid, *orcpt;	/* as given; NULL: none */
};

static const struct dsn_case dsn_cases[] = {
	{ "MAIL FROM:<a@b.example> RET=FULL", 0, SMTP_DSN_RET_FULL, 0, NULL, NULL },
	{ "MAIL FROM:<a@b.example> ret=hdrs ENVID=QQ+2B314159", 0, SMTP_DSN_RET_HDRS, 0,
	  "QQ+2B314159", NULL },
	{ "MAIL FROM:<> ENVID=x", 0, 0, 0, "x", NULL },
	{ "MAIL FROM:<a@b.example> RET=ALL", SMTP_CMD_E_DSN, 0, 0, NULL, NULL },
	{ "MAIL FROM:<a@b.example> RET=FULL RET=HDRS", SMTP_CMD_E_SYNTAX, 0, 0, NULL, NULL },
	/* xtext: "+" and two hex digits; a bare "+" or a non-hex is not */
	{ "MAIL FROM:<a@b.example> ENVID=a+2", SMTP_CMD_E_DSN, 0, 0, NULL, NULL },
	{ "MAIL FROM:<a@b.example> ENVID=a+ZZ", SMTP_CMD_E_DSN, 0, 0, NULL, NULL },
	{ "MAIL FROM:<a@b.example> ENVID=a+", SMTP_CMD_E_DSN, 0, 0, NULL, NULL },
	{ "MAIL FROM:<a@b.example> ENVID=\xc3\xa9", SMTP_CMD_E_DSN, 0, 0, NULL, NULL },
	/* 100 characters are the most (RFC 3461 4.4) */
	{ "MAIL FROM:<a@b.example> ENVID="
	  "0123456789012345678901234567890123456789012345678901234567890123456789"
	  "012345678901234567890123456789", 0, 0, 0,
	  "0123456789012345678901234567890123456789012345678901234567890123456789"
	  "012345678901234567890123456789", NULL },
	{ "MAIL FROM:<a@b.example> ENVID="
	  "0123456789012345678901234567890123456789012345678901234567890123456789"
	  "0123456789012345678901234567890", SMTP_CMD_E_DSN, 0, 0, NULL, NULL },
	{ "RCPT TO:<a@b.example> NOTIFY=NEVER", 0, 0, SMTP_DSN_NOTIFY_NEVER, NULL, NULL },
	{ "RCPT TO:<a@b.example> NOTIFY=success,Delay", 0, 0,
	  SMTP_DSN_NOTIFY_SUCCESS | SMTP_DSN_NOTIFY_DELAY, NULL, NULL },
	{ "RCPT TO:<a@b.example> NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;a+2Bb@b.example", 0,
	  0, SMTP_DSN_NOTIFY_SUCCESS | SMTP_DSN_NOTIFY_FAILURE | SMTP_DSN_NOTIFY_DELAY, NULL,
	  "rfc822;a+2Bb@b.example" },
	{ "RCPT TO:<a@b.example> NOTIFY=NEVER,FAILURE", SMTP_CMD_E_DSN, 0, 0, NULL, NULL },
	{ "RCPT TO:<a@b.example> NOTIFY=SUCCESS,", SMTP_CMD_E_DSN, 0, 0, NULL, NULL },
	{ "RCPT TO:<a@b.example> NOTIFY=,SUCCESS", SMTP_CMD_E_DSN, 0, 0, NULL, NULL },
	{ "RCPT TO:<a@b.example> NOTIFY=ALWAYS", SMTP_CMD_E_DSN, 0, 0, NULL, NULL },
	{ "RCPT TO:<a@b.example> ORCPT=a@b.example", SMTP_CMD_E_DSN, 0, 0, NULL, NULL },
	{ "RCPT TO:<a@b.example> ORCPT=rfc822;", SMTP_CMD_E_DSN, 0, 0, NULL, NULL },
	{ "RCPT TO:<a@b.example> ORCPT=;a@b.example", SMTP_CMD_E_DSN, 0, 0, NULL, NULL },
	{ "RCPT TO:<a@b.example> ORCPT=rf(c;a@b.example", SMTP_CMD_E_DSN, 0, 0, NULL, NULL },
	{ "RCPT TO:<a@b.example> ORCPT=rfc822;a+1@b", SMTP_CMD_E_DSN, 0, 0, NULL, NULL },
	{ "RCPT TO:<a@b.example> ORCPT=rfc822;\xc3\xa9@b", SMTP_CMD_E_DSN, 0, 0, NULL, NULL },
	{ "RCPT TO:<a@b.example> ORCPT=utf-8;\xc3\xa9@b", 0, 0, 0, NULL,
	  "utf-8;\xc3\xa9@b" },
	{ "RCPT TO:<a@b.example> ORCPT=utf-8;\xc3@b", SMTP_CMD_E_DSN, 0, 0, NULL, NULL },
	/* NOTIFY and ORCPT belong to RCPT, RET and ENVID to MAIL */
	{ "MAIL FROM:<a@b.example> ORCPT=rfc822;a@b", SMTP_CMD_E_PARAM, 0, 0, NULL, NULL },
	{ "RCPT TO:<a@b.example> RET=FULL", SMTP_CMD_E_PARAM, 0, 0, NULL, NULL },
};

static bool dsn_slice_is(struct smtp_slice sl, const char *want)
{
	if (want == NULL)
		return sl.len == 0;
	return sl.len == strlen(want) && memcmp(sl.p, want, sl.len) == 0;
}

static void test_dsn(void)
{
	char orcpt[600];
	struct smtp_cmd cmd;
	int err;

	for (size_t i = 0; i < sizeof(dsn_cases) / sizeof(dsn_cases[0]); i++) {
		const struct dsn_case *tc = &dsn_cases[i];
		int ok;

		err = smtp_cmd_parse(tc->line, strlen(tc->line), &test_rfc, &cmd);
		ok = err == tc->err;
		if (err == SMTP_CMD_OK)
			ok = ok && cmd.dsn_ret == tc->ret && cmd.dsn_notify == tc->notify &&
			     dsn_slice_is(cmd.envid, tc->envid) && dsn_slice_is(cmd.orcpt, tc->orcpt);
		tap_ok(ok, "dsn \"%s\"", tc->line);
	}
	/* ORCPT: 500 octets are the most (RFC 3461 4.2). */
	for (size_t len = 499; len <= 501; len++) {
		int n = snprintf(orcpt, sizeof(orcpt), "RCPT TO:<a@b.example> ORCPT=rfc822;");

		memset(orcpt + n, 'x', len - 7);
		orcpt[n + len - 7] = '\0';
		err = smtp_cmd_parse(orcpt, strlen(orcpt), &test_rfc, &cmd);
		tap_ok(len <= 500 ? err == SMTP_CMD_OK && cmd.orcpt.len == len :
		       err == SMTP_CMD_E_DSN, "dsn: ORCPT of %zu octets %s", len,
		       len <= 500 ? "taken" : "refused");
	}
	tap_ok(strncmp(smtp_cmd_strerror(SMTP_CMD_E_DSN), "501 5.5.4 ", 10) == 0,
	       "dsn: a bad value is 501 5.5.4");
}

int main(void)
{
	test_table();
	test_params();
	test_dsn();
	test_bdat();
	test_limits();
	test_nul();
	test_unterminated();
	test_strings();
	test_utf8();
	return tap_done();
}
