/*
 * test_smtp_limits: table-driven tests of the LIMITS keyword reader
 * (core/wire/smtp_limits.c, RFC 9422).
 *
 * Parameter rows are copied into a heap block of exactly their length
 * (no NUL after it) so AddressSanitizer catches a read past the end.
 * EHLO rows go through the real reply parser first.
 */
#include "core/wire/smtp_limits.h"
#include "tests/unit/tap.h"

#include <stdlib.h>
#include <string.h>

static const struct param_case {
	const char *name;
	const char *in;
	size_t len;		/* 0: strlen(in) */
	unsigned taken;
	uint32_t rcptmax, mailmax, rcptdomainmax;
} param_cases[] = {
	{ "all three", "RCPTMAX=5 MAILMAX=2 RCPTDOMAINMAX=3", 0, 3, 5, 2, 3 },
	{ "RFC example order", "MAILMAX=1000 RCPTMAX=50", 0, 2, 50, 1000, 0 },
	{ "case-insensitive names", "rcptmax=7 MailMax=9 rcptDomainMax=1", 0, 3, 7, 9, 1 },
	{ "nothing", "", 0, 0, 0, 0, 0 },
	{ "blanks only", "  \t \r ", 0, 0, 0, 0, 0 },
	{ "leading, trailing and doubled blanks", "  RCPTMAX=4 \t MAILMAX=8\r", 0, 2, 4, 8, 0 },
	{ "unknown limits skipped", "FOO=1 RCPTMAX=10 X-VENDOR=abc MAILMAX=3", 0, 2, 10, 3, 0 },
	{ "unknown with odd value", "BAR=a=b=c RCPTMAX=6", 0, 1, 6, 0, 0 },
	{ "token without =", "RCPTMAX MAILMAX=2", 0, 1, 0, 2, 0 },
	{ "empty name", "=5 RCPTMAX=5", 0, 1, 5, 0, 0 },
	{ "empty value", "RCPTMAX= MAILMAX=2", 0, 1, 0, 2, 0 },
	{ "zero ignored", "RCPTMAX=0 MAILMAX=00", 0, 0, 0, 0, 0 },
	{ "six digits", "RCPTMAX=999999", 0, 1, 999999, 0, 0 },
	{ "leading zeros within six digits", "RCPTMAX=000012", 0, 1, 12, 0, 0 },
	{ "seven digits ignored", "RCPTMAX=1000000 MAILMAX=0000001", 0, 0, 0, 0, 0 },
	{ "huge number ignored", "RCPTMAX=99999999999999999999999999999", 0, 0, 0, 0, 0 },
	{ "sign ignored", "RCPTMAX=+5 MAILMAX=-5", 0, 0, 0, 0, 0 },
	{ "not a number", "RCPTMAX=5x MAILMAX=x5 RCPTDOMAINMAX=0x10", 0, 0, 0, 0, 0 },
	{ "blank around = splits the token", "RCPTMAX =5 MAILMAX= 6", 0, 0, 0, 0, 0 },
	{ "name with a bad octet", "RCPT.MAX=5 RCPTMAX=9", 0, 1, 9, 0, 0 },
	{ "name prefix is not the limit", "RCPTMAXX=5 XRCPTMAX=5 RCPT=5", 0, 0, 0, 0, 0 },
	{ "given twice: the smaller", "RCPTMAX=20 RCPTMAX=10 RCPTMAX=30", 0, 3, 10, 0, 0 },
	{ "long unknown name", "AVERYLONGLIMITNAMEOVERTWENTY=1 MAILMAX=4", 0, 1, 0, 4, 0 },
	{ "NUL in a value", "RCPTMAX=5\0 MAILMAX=3", 20, 1, 0, 3, 0 },
};

static void test_params(void)
{
	for (size_t t = 0; t < sizeof(param_cases) / sizeof(param_cases[0]); t++) {
		const struct param_case *c = &param_cases[t];
		size_t n = c->len ? c->len : strlen(c->in);
		struct smtp_limits lim;
		unsigned taken;
		char *buf;

		buf = malloc(n ? n : 1);
		memcpy(buf, c->in, n);
		memset(&lim, 0, sizeof(lim));
		taken = smtp_limits_parse(buf, n, &lim);
		free(buf);
		tap_ok(taken == c->taken && lim.lm_rcptmax == c->rcptmax &&
		       lim.lm_mailmax == c->mailmax && lim.lm_rcptdomainmax == c->rcptdomainmax,
		       "params %s: taken %u (want %u) rcptmax %u (%u) mailmax %u (%u)"
		       " rcptdomainmax %u (%u)", c->name, taken, c->taken, lim.lm_rcptmax,
		       c->rcptmax, lim.lm_mailmax, c->mailmax, lim.lm_rcptdomainmax,
		       c->rcptdomainmax);
	}
}

static void test_lowers_only(void)
{
	struct smtp_limits lim = { 3, 0, 0 };

	smtp_limits_parse("RCPTMAX=8 MAILMAX=4", 19, &lim);
	tap_ok(lim.lm_rcptmax == 3 && lim.lm_mailmax == 4,
	       "params: a value already lower is kept, an unset one is set");
}

static const struct ehlo_case {
	const char *name;
	const char *in;
	bool offered;
	uint32_t rcptmax, mailmax, rcptdomainmax;
} ehlo_cases[] = {
	{ "with others",
	  "250-mx.example.org\r\n250-PIPELINING\r\n250-LIMITS RCPTMAX=5 MAILMAX=2\r\n"
	  "250 SIZE 1000\r\n", true, 5, 2, 0 },
	{ "last line", "250-hi\r\n250 LIMITS RCPTDOMAINMAX=1\r\n", true, 0, 0, 1 },
	{ "lower case keyword", "250-hi\r\n250 limits rcptmax=9\r\n", true, 9, 0, 0 },
	{ "keyword alone", "250-hi\r\n250 LIMITS\r\n", true, 0, 0, 0 },
	{ "only unknown limits", "250-hi\r\n250 LIMITS FOO=1 BAR=2\r\n", true, 0, 0, 0 },
	{ "absent", "250-hi\r\n250-PIPELINING\r\n250 SIZE 10\r\n", false, 0, 0, 0 },
	{ "greeting line is not a keyword", "250 LIMITS RCPTMAX=5\r\n", false, 0, 0, 0 },
	{ "keyword must be whole", "250-hi\r\n250-LIMITSX RCPTMAX=5\r\n250 LIMIT MAILMAX=2\r\n",
	  false, 0, 0, 0 },
	{ "not 250", "550-hi\r\n550 LIMITS RCPTMAX=5\r\n", false, 0, 0, 0 },
	{ "two lines: the smaller", "250-hi\r\n250-LIMITS RCPTMAX=50\r\n250 LIMITS RCPTMAX=5\r\n",
	  true, 5, 0, 0 },
	{ "blank before the keyword", "250-hi\r\n250  LIMITS MAILMAX=3\r\n", true, 0, 3, 0 },
	{ "limits do not run into the next line",
	  "250-hi\r\n250-LIMITS\r\n250 RCPTMAX=5\r\n", true, 0, 0, 0 },
};

static void test_ehlo(void)
{
	for (size_t t = 0; t < sizeof(ehlo_cases) / sizeof(ehlo_cases[0]); t++) {
		const struct ehlo_case *c = &ehlo_cases[t];
		struct smtp_reply_parser p;
		struct smtp_reply *r = malloc(sizeof(*r));
		struct smtp_limits lim = { 77, 77, 77 };
		size_t used;
		bool offered;

		smtp_reply_parser_init(&p);
		if (!tap_ok(smtp_reply_feed(&p, c->in, strlen(c->in), &used, r) == SMTP_REPLY_DONE,
			    "ehlo %s: parsed", c->name)) {
			free(r);
			continue;
		}
		offered = smtp_limits_ehlo(r, &lim);
		tap_ok(offered == c->offered && lim.lm_rcptmax == c->rcptmax &&
		       lim.lm_mailmax == c->mailmax && lim.lm_rcptdomainmax == c->rcptdomainmax,
		       "ehlo %s: offered %d rcptmax %u mailmax %u rcptdomainmax %u", c->name,
		       offered, lim.lm_rcptmax, lim.lm_mailmax, lim.lm_rcptdomainmax);
		free(r);
	}
}

int main(void)
{
	test_params();
	test_lowers_only();
	test_ehlo();
	return tap_done();
}
