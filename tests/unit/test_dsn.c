/*
 * test_dsn: tests of the DSN builder (core/dsn.c): the message header,
 * the multipart/report structure and its boundary, the RFC 3464 fields
 * per message and per recipient, the returned header section, RFC 6533
 * types for non-ASCII addresses, hostile input (line breaks, control
 * characters, very long diagnostics, a boundary planted in the original
 * header), and dsn_header_len().
 *
 * Where /usr/bin/python3 exists, its email package also parses each DSN
 * (written to a file under $TMPDIR) as an independent check of the MIME
 * structure; without it those checks are skipped.
 */
#include "core/message/dsn.h"
#include "tests/unit/tap.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PYTHON "/usr/bin/python3"

static const char test_orig_headers[] =
	"Return-Path: <alice@example.org>\r\n"
	"Received: from client.example.org (client.example.org [192.0.2.1])\r\n"
	"\tby mx.example.net (ringmta) with ESMTPS id 01J0ABC\r\n"
	"From: Alice <alice@example.org>\r\n"
	"To: bob@example.com, carol@example.net\r\n"
	"Subject: lunch\r\n"
	"Message-ID: <abc@client.example.org>\r\n";

static const struct dsn_rcpt test_rcpts[] = {
	{
		.dr_addr = "bob@example.com",
		.dr_action = DSN_FAILED,
		.dr_status = "5.1.1",
		.dr_remote_mta = "mx.example.com",
		.dr_diag = "550-5.1.1 The email account that you tried to reach does not exist.\n"
			   "550 5.1.1 Please try double-checking the recipient's address.",
		.dr_last_attempt = "Tue, 2 Apr 2024 10:00:00 +0000",
	},
	{
		.dr_addr = "carol@example.net",
		.dr_action = DSN_DELAYED,
		.dr_status = "4.4.1",
		.dr_remote_mta = NULL,
		.dr_diag = "connect to mx.example.net[198.51.100.7]:25: Connection timed out",
		.dr_last_attempt = NULL,
	},
};

static struct dsn_msg test_msg(const struct dsn_rcpt *rcpts, unsigned n, const char *hdrs)
{
	struct dsn_msg m = {
		.dm_reporting_mta = "mail.example.net",
		.dm_to = "alice@example.org",
		.dm_queue_id = "01J0ABC",
		.dm_arrival = "Tue, 2 Apr 2024 09:00:00 +0000",
		.dm_date = "Tue, 2 Apr 2024 10:05:00 +0000",
		.dm_message_id = "20240402100500.01J0ABC@mail.example.net",
		.dm_rcpts = rcpts,
		.dm_nrcpt = n,
		.dm_orig_headers = hdrs,
		.dm_orig_headers_len = hdrs ? strlen(hdrs) : 0,
	};
	return m;
}

/* A built DSN as a C string, and where its parts are. */
struct test_dsn {
	char *s;
	size_t len;
	size_t hdr_len;		/* the message header, with its final CRLF */
	char boundary[100];
};

static bool test_build(const struct dsn_msg *m, struct test_dsn *d)
{
	char *out = NULL, *b, *e;
	long n = dsn_build(m, &out);

	memset(d, 0, sizeof(*d));
	if (n < 0 || out == NULL)
		return false;
	d->s = malloc((size_t)n + 1);
	memcpy(d->s, out, (size_t)n);
	d->s[n] = '\0';
	d->len = (size_t)n;
	free(out);
	d->hdr_len = dsn_header_len(d->s, d->len);
	b = strstr(d->s, "boundary=\"");
	if (b == NULL || (size_t)(b - d->s) > d->hdr_len)
		return true;
	b += 10;
	e = strchr(b, '"');
	if (e != NULL && (size_t)(e - b) < sizeof(d->boundary))
		memcpy(d->boundary, b, (size_t)(e - b));
	return true;
}

static void test_dsn_free(struct test_dsn *d)
{
	free(d->s);
	memset(d, 0, sizeof(*d));
}

/* Every line ends in CRLF, there is no bare CR or LF, no NUL, and no line
 * is 1000 octets or longer (CRLF included). */
static bool test_lines_ok(const char *s, size_t n, size_t *longest_r)
{
	size_t start = 0;

	*longest_r = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\0')
			return false;
		if (s[i] == '\r' && (i + 1 >= n || s[i + 1] != '\n'))
			return false;
		if (s[i] == '\n') {
			if (i == 0 || s[i - 1] != '\r')
				return false;
			if (i + 1 - start > *longest_r)
				*longest_r = i + 1 - start;
			start = i + 1;
		}
	}
	return start == n && *longest_r < 1000;
}

static size_t test_count(const char *s, const char *needle)
{
	size_t c = 0, nl = strlen(needle);

	for (const char *p = strstr(s, needle); p != NULL; p = strstr(p + nl, needle))
		c++;
	return c;
}

/* The boundary occurs only in the header and as nparts + 1 delimiter
 * lines, the last one closing. */
static bool test_structure_ok(const struct test_dsn *d, size_t nparts)
{
	char delim[128], close[128];
	size_t total;

	if (d->boundary[0] == '\0')
		return false;
	snprintf(delim, sizeof(delim), "\r\n--%s\r\n", d->boundary);
	snprintf(close, sizeof(close), "\r\n--%s--\r\n", d->boundary);
	total = test_count(d->s, d->boundary);
	return test_count(d->s, delim) == nparts && test_count(d->s, close) == 1 &&
	       total == nparts + 2 && d->len >= strlen(close) &&
	       strcmp(d->s + d->len - strlen(close), close) == 0;
}

/* The header field "name: value" as a whole line of the message header. */
static bool test_header_is(const struct test_dsn *d, const char *field)
{
	char line[512];
	const char *p;

	snprintf(line, sizeof(line), "\r\n%s\r\n", field);
	if (strncmp(d->s, field, strlen(field)) == 0 && strncmp(d->s + strlen(field), "\r\n", 2) == 0)
		return true;
	p = strstr(d->s, line);
	return p != NULL && (size_t)(p - d->s) < d->hdr_len;
}

static bool test_write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	bool ok;

	if (f == NULL)
		return false;
	ok = fwrite(p, 1, n, f) == n;
	return fclose(f) == 0 && ok;
}

/* Run Python's email parser on the DSN: 0 when it agrees, 77 when there
 * is no Python to ask, -1 when the files for it cannot be written, else
 * what it said. */
static int test_python(const struct test_dsn *d, const char *part2_type, unsigned nrcpt,
		       const char *part3_type)
{
	static const char script[] =
		"import sys, email, email.policy\n"
		"raw = open(sys.argv[1], 'rb').read()\n"
		"m = email.message_from_bytes(raw, policy=email.policy.default)\n"
		"assert m.get_content_type() == 'multipart/report', m.get_content_type()\n"
		"assert m.get_param('report-type') == 'delivery-status'\n"
		"parts = list(m.iter_parts())\n"
		"want = 3 if sys.argv[4] != '-' else 2\n"
		"assert len(parts) == want, len(parts)\n"
		"assert parts[0].get_content_type() == 'text/plain'\n"
		"assert parts[1].get_content_type() == sys.argv[2], parts[1].get_content_type()\n"
		"if sys.argv[2] == 'message/delivery-status':\n"
		"    blocks = parts[1].get_payload()\n"
		"    assert len(blocks) == 1 + int(sys.argv[3]), len(blocks)\n"
		"    assert blocks[0]['Reporting-MTA'].startswith('dns; ')\n"
		"    for b in blocks[1:]:\n"
		"        assert b['Final-Recipient'].startswith('rfc822; ')\n"
		"        assert b['Action'] in ('failed', 'delayed', 'relayed', 'delivered')\n"
		"        assert b['Status']\n"
		"if want == 3:\n"
		"    assert parts[2].get_content_type() == sys.argv[4], parts[2].get_content_type()\n"
		"for p in m.walk():\n"
		"    assert not p.defects, (p.get_content_type(), p.defects)\n"
		"assert m['Auto-Submitted'] == 'auto-replied'\n";
	char dir[256], dsn_path[300], py_path[300], cmd[1200];
	const char *tmp = getenv("TMPDIR");
	int st, ret;

	if (access(PYTHON, X_OK) != 0)
		return 77;
	snprintf(dir, sizeof(dir), "%s/test_dsn.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(dsn_path, sizeof(dsn_path), "%s/dsn.eml", dir);
	snprintf(py_path, sizeof(py_path), "%s/check.py", dir);
	if (!test_write_file(dsn_path, d->s, d->len) ||
	    !test_write_file(py_path, script, sizeof(script) - 1)) {
		unlink(dsn_path);
		unlink(py_path);
		rmdir(dir);
		return -1;
	}
	snprintf(cmd, sizeof(cmd), "%s '%s' '%s' '%s' %u '%s'", PYTHON, py_path, dsn_path,
		 part2_type, nrcpt, part3_type ? part3_type : "-");
	fflush(stdout);
	st = system(cmd);
	ret = st == -1 ? 2 : WIFEXITED(st) ? WEXITSTATUS(st) : 3;
	unlink(dsn_path);
	unlink(py_path);
	rmdir(dir);
	return ret;
}

static void test_python_ok(const struct test_dsn *d, const char *what, const char *part2_type,
			   unsigned nrcpt, const char *part3_type)
{
	int r = test_python(d, part2_type, nrcpt, part3_type);

	if (r == 77)
		tap_ok(1, "%s: python email parser # SKIP no " PYTHON, what);
	else if (r == -1)
		tap_ok(0, "%s: python email parser: cannot write files under $TMPDIR", what);
	else
		tap_ok(r == 0, "%s: python email parser accepts it (exit %d)", what, r);
}

static void test_basic(void)
{
	struct dsn_msg m = test_msg(test_rcpts, 2, test_orig_headers);
	struct test_dsn d;
	size_t longest;
	bool ok;

	if (!tap_ok(test_build(&m, &d), "basic: built"))
		return;
	ok = test_lines_ok(d.s, d.len, &longest);
	tap_ok(ok, "basic: CRLF only, longest line %zu", longest);
	tap_ok(test_header_is(&d, "From: \"Mail Delivery System\" <MAILER-DAEMON@mail.example.net>"),
	       "basic: From");
	tap_ok(test_header_is(&d, "To: <alice@example.org>"), "basic: To");
	tap_ok(test_header_is(&d, "Subject: Undelivered Mail Returned to Sender"),
	       "basic: Subject says undelivered");
	tap_ok(test_header_is(&d, "Date: Tue, 2 Apr 2024 10:05:00 +0000"), "basic: Date");
	tap_ok(test_header_is(&d, "Message-ID: <20240402100500.01J0ABC@mail.example.net>"),
	       "basic: Message-ID");
	tap_ok(test_header_is(&d, "Auto-Submitted: auto-replied"), "basic: Auto-Submitted");
	tap_ok(test_header_is(&d, "MIME-Version: 1.0"), "basic: MIME-Version");
	tap_ok(test_header_is(&d, "Content-Type: multipart/report; report-type=delivery-status;"),
	       "basic: Content-Type multipart/report");
	tap_ok(strncmp(d.boundary, "=_ringmta_01J0ABC_", 18) == 0 && strlen(d.boundary) <= 70,
	       "basic: boundary \"%s\"", d.boundary);
	tap_ok(strstr(d.s, "Content-Transfer-Encoding") == NULL, "basic: 7-bit, no CTE");
	tap_ok(test_structure_ok(&d, 3), "basic: three parts, boundary only as delimiters");

	tap_ok(strstr(d.s, "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
			   "This is the mail system at host mail.example.net.\r\n") != NULL,
	       "part 1: text/plain us-ascii, Postfix-style opening");
	tap_ok(strstr(d.s, "could not\r\nbe delivered to one or more recipients.") != NULL,
	       "part 1: explains the failure");
	tap_ok(strstr(d.s, "\r\n<bob@example.com>: host mx.example.com said: 550-5.1.1 The email "
			   "account that you tried to reach does not exist.\r\n"
			   "    550 5.1.1 Please try double-checking") != NULL,
	       "part 1: failed recipient with the server's reply, one line per reply line");
	tap_ok(strstr(d.s, "still trying to deliver") != NULL &&
	       strstr(d.s, "\r\n<carol@example.net>: connect to mx.example.net[198.51.100.7]:25: "
			   "Connection timed out\r\n") != NULL,
	       "part 1: delayed recipient listed as still being tried");

	tap_ok(strstr(d.s, "Content-Type: message/delivery-status\r\n\r\n"
			   "Reporting-MTA: dns; mail.example.net\r\n"
			   "X-Ringmta-Queue-ID: 01J0ABC\r\n"
			   "Arrival-Date: Tue, 2 Apr 2024 09:00:00 +0000\r\n\r\n") != NULL,
	       "part 2: per-message fields");
	tap_ok(strstr(d.s, "\r\n\r\nFinal-Recipient: rfc822; bob@example.com\r\n"
			   "Action: failed\r\n"
			   "Status: 5.1.1\r\n"
			   "Remote-MTA: dns; mx.example.com\r\n"
			   "Diagnostic-Code: smtp; 550-5.1.1 The email account that you tried to "
			   "reach does not exist.\r\n"
			   " 550 5.1.1 Please try double-checking the recipient's address.\r\n"
			   "Last-Attempt-Date: Tue, 2 Apr 2024 10:00:00 +0000\r\n") != NULL,
	       "part 2: failed recipient fields, multi-line reply folded");
	tap_ok(strstr(d.s, "\r\n\r\nFinal-Recipient: rfc822; carol@example.net\r\n"
			   "Action: delayed\r\n"
			   "Status: 4.4.1\r\n"
			   "Diagnostic-Code: X-Ringmta; connect to mx.example.net[198.51.100.7]:25: "
			   "Connection timed out\r\n\r\n--") != NULL,
	       "part 2: delayed recipient fields, no Remote-MTA, own diagnostic type");
	tap_ok(strstr(d.s, "Will-Retry-Until") == NULL, "part 2: no Will-Retry-Until");

	tap_ok(strstr(d.s, "Content-Description: Undelivered Message Headers\r\n"
			   "Content-Type: text/rfc822-headers\r\n\r\n") != NULL,
	       "part 3: text/rfc822-headers");
	{
		char *full = malloc(sizeof(test_orig_headers) + 200);

		snprintf(full, sizeof(test_orig_headers) + 200, "\r\n\r\n%s\r\n--%s--\r\n",
			 test_orig_headers, d.boundary);
		tap_ok(strstr(d.s, full) != NULL, "part 3: original header section verbatim, last");
		free(full);
	}
	test_python_ok(&d, "basic", "message/delivery-status", 2, "text/rfc822-headers");
	test_dsn_free(&d);
}

/* The bounce class: an extension field per recipient (RFC 3464 2.4). */
static void test_class(void)
{
	struct dsn_rcpt r[2] = { test_rcpts[0], test_rcpts[1] };
	struct dsn_msg m;
	struct test_dsn d;

	r[0].dr_class = "invalid-recipient";
	r[1].dr_class = "connection\r\nX-Evil: 1";
	m = test_msg(r, 2, test_orig_headers);
	if (!tap_ok(test_build(&m, &d), "class: built"))
		return;
	tap_ok(strstr(d.s, "Last-Attempt-Date: Tue, 2 Apr 2024 10:00:00 +0000\r\n"
			   "X-Ringmta-Bounce-Class: invalid-recipient\r\n") != NULL,
	       "class: X-Ringmta-Bounce-Class after the recipient's other fields");
	tap_ok(strstr(d.s, "\r\nX-Evil") == NULL &&
	       strstr(d.s, "X-Ringmta-Bounce-Class: connection") != NULL,
	       "class: a value cannot add fields");
	test_python_ok(&d, "class", "message/delivery-status", 2, "text/rfc822-headers");
	test_dsn_free(&d);
	r[0].dr_class = NULL;
	r[1].dr_class = "";
	m = test_msg(r, 2, test_orig_headers);
	if (tap_ok(test_build(&m, &d), "class: built without")) {
		tap_ok(strstr(d.s, "X-Ringmta-Bounce-Class") == NULL, "class: none, no field");
		test_dsn_free(&d);
	}
}

static void test_delayed_only(void)
{
	struct dsn_msg m = test_msg(&test_rcpts[1], 1, test_orig_headers);
	struct test_dsn d;
	size_t longest;

	if (!tap_ok(test_build(&m, &d), "delayed: built"))
		return;
	tap_ok(test_header_is(&d, "Subject: Delayed Mail (still being retried)"),
	       "delayed: Subject");
	tap_ok(strstr(d.s, "THIS IS A WARNING ONLY") != NULL &&
	       strstr(d.s, "could not\r\nbe delivered") == NULL, "delayed: warning text");
	tap_ok(strstr(d.s, "Action: delayed\r\n") != NULL && strstr(d.s, "Action: failed") == NULL,
	       "delayed: only Action: delayed");
	tap_ok(test_lines_ok(d.s, d.len, &longest) && test_structure_ok(&d, 3),
	       "delayed: structure");
	test_python_ok(&d, "delayed", "message/delivery-status", 1, "text/rfc822-headers");
	test_dsn_free(&d);
}

/* NOTIFY=SUCCESS: a report of relayed and delivered recipients only, with
 * ENVID and ORCPT decoded (RFC 3464 2.2.1, 2.3.1). */
static void test_success(void)
{
	static const struct dsn_rcpt rcpts[] = {
		{ .dr_addr = "bob@example.com", .dr_action = DSN_RELAYED, .dr_status = "2.0.0",
		  .dr_remote_mta = "mx.example.com", .dr_diag = "250 2.0.0 Ok: queued as X",
		  .dr_orcpt = "rfc822;Bob+2BTag@example.com" },
		{ .dr_addr = "carol@example.net", .dr_action = DSN_DELIVERED, .dr_status = NULL,
		  .dr_diag = "" },
	};
	static const char orig[] = "Subject: s\r\n\r\nthe body\r\n";
	struct dsn_msg m = test_msg(rcpts, 2, test_orig_headers);
	struct test_dsn d;
	size_t longest;

	m.dm_envid = "QQ+2B314+3D1";
	m.dm_orig = orig;		/* RET=FULL: not for a success report */
	m.dm_orig_len = sizeof(orig) - 1;
	if (!tap_ok(test_build(&m, &d), "success: built"))
		return;
	tap_ok(test_header_is(&d, "Subject: Successful Mail Delivery Report"), "success: Subject");
	tap_ok(strstr(d.s, "successfully delivered") != NULL &&
	       strstr(d.s, "could not") == NULL && strstr(d.s, "WARNING") == NULL,
	       "success: the explanation says so");
	tap_ok(strstr(d.s, "Original-Envelope-Id: QQ+314=1\r\nReporting-MTA: ") != NULL,
	       "success: Original-Envelope-Id decoded, before Reporting-MTA");
	tap_ok(strstr(d.s, "\r\nOriginal-Recipient: rfc822;Bob+Tag@example.com\r\n"
		       "Final-Recipient: rfc822; bob@example.com\r\nAction: relayed\r\n"
		       "Status: 2.0.0\r\n") != NULL, "success: Original-Recipient decoded, relayed");
	tap_ok(strstr(d.s, "Final-Recipient: rfc822; carol@example.net\r\nAction: delivered\r\n"
		       "Status: 2.0.0\r\n") != NULL, "success: delivered, status 2.0.0 by default");
	tap_ok(test_count(d.s, "Original-Recipient:") == 1, "success: no ORCPT, no field");
	tap_ok(strstr(d.s, "Content-Type: text/rfc822-headers") != NULL &&
	       strstr(d.s, "the body") == NULL, "success: headers only, even with RET=FULL");
	tap_ok(test_lines_ok(d.s, d.len, &longest) && test_structure_ok(&d, 3),
	       "success: structure");
	test_python_ok(&d, "success", "message/delivery-status", 2, "text/rfc822-headers");
	test_dsn_free(&d);
}

/* RET=FULL: a failure returns the whole message as message/rfc822; its
 * over-long body lines are broken, its empty lines kept. */
static void test_ret_full(void)
{
	struct dsn_msg m = test_msg(test_rcpts, 2, NULL);
	struct test_dsn d;
	size_t longest, n;
	char *orig = malloc(4096);

	n = (size_t)snprintf(orig, 4096, "%sX-Long: y\r\n\r\nfirst line\r\n\r\n",
			     test_orig_headers);
	memset(orig + n, 'z', 2500);
	n += 2500;
	memcpy(orig + n, "\r\nlast line\r\n", 14);
	n += 14;
	m.dm_orig = orig;
	m.dm_orig_len = n;
	m.dm_envid = "e";
	if (!tap_ok(test_build(&m, &d), "ret full: built")) {
		free(orig);
		return;
	}
	tap_ok(strstr(d.s, "Content-Description: Undelivered Message\r\n"
		       "Content-Type: message/rfc822\r\n\r\n") != NULL &&
	       strstr(d.s, "text/rfc822-headers") == NULL, "ret full: message/rfc822");
	tap_ok(strstr(d.s, "Subject: lunch\r\nMessage-ID: <abc@client.example.org>\r\n"
		       "X-Long: y\r\n\r\nfirst line\r\n\r\nzzz") != NULL &&
	       strstr(d.s, "zzz\r\nlast line\r\n") != NULL, "ret full: header and body returned");
	tap_ok(strstr(d.s, "It is attached below.") != NULL, "ret full: the explanation says so");
	tap_ok(test_lines_ok(d.s, d.len, &longest) && test_structure_ok(&d, 3),
	       "ret full: structure, no line of 1000 octets");
	test_python_ok(&d, "ret full", "message/delivery-status", 2, "message/rfc822");
	test_dsn_free(&d);
	free(orig);
}

static void test_no_headers(void)
{
	struct dsn_msg m = test_msg(test_rcpts, 1, NULL);
	struct test_dsn d;
	size_t longest;

	if (!tap_ok(test_build(&m, &d), "no headers: built"))
		return;
	tap_ok(strstr(d.s, "rfc822-headers") == NULL && test_structure_ok(&d, 2) &&
	       test_lines_ok(d.s, d.len, &longest), "no headers: two parts only");
	test_python_ok(&d, "no headers", "message/delivery-status", 1, NULL);
	test_dsn_free(&d);

	/* An original that is only an empty line has no header section either. */
	m.dm_orig_headers = "\r\nbody\r\n";
	m.dm_orig_headers_len = 8;
	if (tap_ok(test_build(&m, &d), "empty header section: built"))
		tap_ok(test_structure_ok(&d, 2), "empty header section: two parts only");
	test_dsn_free(&d);
}

static void test_utf8(void)
{
	struct dsn_rcpt r[2] = { test_rcpts[0], test_rcpts[1] };
	struct dsn_msg m;
	struct test_dsn d;
	size_t longest;
	static const char hdrs[] = "From: J\xc3\xb6rg <j\xc3\xb6rg@example.de>\r\n"
				   "Subject: gr\xc3\xbc\xc3\x9f" "e\r\n";

	r[0].dr_addr = "j\xc3\xb6rg@b\xc3\xbc" "cher.example";
	m = test_msg(r, 2, test_orig_headers);
	if (!tap_ok(test_build(&m, &d), "utf8: built"))
		return;
	tap_ok(strstr(d.s, "Content-Type: message/global-delivery-status\r\n"
			   "Content-Transfer-Encoding: 8bit\r\n") != NULL,
	       "utf8: part 2 is message/global-delivery-status, 8bit");
	tap_ok(strstr(d.s, "Final-Recipient: utf-8; j\xc3\xb6rg@b\xc3\xbc" "cher.example\r\n") != NULL,
	       "utf8: utf-8 address type, address as it is");
	tap_ok(strstr(d.s, "Final-Recipient: rfc822; carol@example.net\r\n") != NULL,
	       "utf8: ASCII address keeps rfc822");
	tap_ok(strstr(d.s, "Content-Type: text/plain; charset=utf-8\r\n") != NULL,
	       "utf8: part 1 is utf-8");
	tap_ok(test_header_is(&d, "Content-Transfer-Encoding: 8bit"), "utf8: message says 8bit");
	tap_ok(strstr(d.s, "Content-Type: text/rfc822-headers\r\n") != NULL,
	       "utf8: ASCII original header stays text/rfc822-headers");
	tap_ok(test_lines_ok(d.s, d.len, &longest) && test_structure_ok(&d, 3), "utf8: structure");
	test_python_ok(&d, "utf8", "message/global-delivery-status", 2, "text/rfc822-headers");
	test_dsn_free(&d);

	/* 8-bit original header: message/global-headers. */
	m = test_msg(test_rcpts, 2, hdrs);
	if (tap_ok(test_build(&m, &d), "utf8 headers: built")) {
		tap_ok(strstr(d.s, "Content-Type: message/global-headers\r\n"
				   "Content-Transfer-Encoding: 8bit\r\n\r\n"
				   "From: J\xc3\xb6rg") != NULL &&
		       strstr(d.s, "Content-Type: message/delivery-status\r\n") != NULL,
		       "utf8 headers: part 3 message/global-headers, part 2 stays 7-bit");
		test_python_ok(&d, "utf8 headers", "message/delivery-status", 2,
			       "message/global-headers");
	}
	test_dsn_free(&d);

	/* Invalid UTF-8 and C1 controls do not make a DSN international. */
	r[0].dr_addr = "bad\xff\xfe@example.com";
	r[0].dr_diag = "550 no \xc2\x85 such \xe0\x80\xaf user";
	m = test_msg(r, 1, NULL);
	if (tap_ok(test_build(&m, &d), "invalid utf8: built")) {
		tap_ok(strstr(d.s, "Final-Recipient: rfc822; bad??@example.com\r\n") != NULL &&
		       strstr(d.s, "Diagnostic-Code: smtp; 550 no ?? such ??? user\r\n") != NULL &&
		       strstr(d.s, "message/delivery-status") != NULL,
		       "invalid utf8: replaced by '?', still 7-bit");
	}
	test_dsn_free(&d);
}

/* The boundary the builder picks, planted in the original header, makes
 * it pick another one. */
static void test_boundary_collision(void)
{
	struct dsn_msg m = test_msg(test_rcpts, 2, test_orig_headers);
	struct test_dsn d1, d2;
	char *hdrs;
	size_t cap = sizeof(test_orig_headers) + 300, longest;

	if (!tap_ok(test_build(&m, &d1), "collision: first build"))
		return;
	hdrs = malloc(cap);
	snprintf(hdrs, cap, "%sX-Trap: --%s\r\nX-Trap2: --%s--\r\n", test_orig_headers,
		 d1.boundary, d1.boundary);
	m.dm_orig_headers = hdrs;
	m.dm_orig_headers_len = strlen(hdrs);
	if (tap_ok(test_build(&m, &d2), "collision: second build")) {
		tap_ok(strcmp(d1.boundary, d2.boundary) != 0 && d2.boundary[0] != '\0',
		       "collision: another boundary \"%s\"", d2.boundary);
		tap_ok(strstr(hdrs, d2.boundary) == NULL, "collision: new boundary not in the header");
		tap_ok(strstr(d2.s, "X-Trap: --") != NULL && test_structure_ok(&d2, 3) &&
		       test_lines_ok(d2.s, d2.len, &longest),
		       "collision: planted lines returned, structure intact");
		test_python_ok(&d2, "collision", "message/delivery-status", 2,
			       "text/rfc822-headers");
	}
	test_dsn_free(&d2);

	/* Planted with the largest and smallest hex values too. */
	{
		size_t plen = strlen(d1.boundary) - 16;

		snprintf(hdrs, cap, "X-A: %s\r\nX-B: %.*sffffffffffffffff\r\n"
			 "X-C: %.*s0000000000000000\r\n", d1.boundary, (int)plen, d1.boundary,
			 (int)plen, d1.boundary);
		m.dm_orig_headers = hdrs;
		m.dm_orig_headers_len = strlen(hdrs);
		if (tap_ok(test_build(&m, &d2), "collision at both ends: built"))
			tap_ok(strstr(hdrs, d2.boundary) == NULL &&
			       strlen(d2.boundary) == strlen(d1.boundary) && test_structure_ok(&d2, 3),
			       "collision at both ends: boundary \"%s\"", d2.boundary);
		test_dsn_free(&d2);
	}

	/* A boundary planted in a diagnostic is avoided just the same. */
	{
		struct dsn_rcpt r = test_rcpts[0];
		char diag[200];

		snprintf(diag, sizeof(diag), "550 --%s--", d1.boundary);
		r.dr_diag = diag;
		m = test_msg(&r, 1, test_orig_headers);
		if (tap_ok(test_build(&m, &d2), "collision in diag: built"))
			tap_ok(strcmp(d1.boundary, d2.boundary) != 0 && test_structure_ok(&d2, 3),
			       "collision in diag: another boundary");
		test_dsn_free(&d2);
	}
	free(hdrs);
	test_dsn_free(&d1);
}

/* Line breaks and control characters cannot add fields or lines; long
 * diagnostics are folded under 1000 octets. */
static void test_hostile(void)
{
	static const char hostile_hdrs[] =
		"Subject: x\nX-Bare-LF: y\nX-CR: a\rb\r\nX-NUL: a\0b\r\n\r\nbody\r\n";
	struct dsn_rcpt r = test_rcpts[0];
	struct dsn_msg m;
	struct test_dsn d;
	size_t longest, n = 5000;
	char *diag = malloc(n + 1), *words = malloc(n + 1);
	bool ok;

	r.dr_diag = "550 a\r\n\r\nInjected: yes\r\x01\x7f\tb\n\n  \n";
	r.dr_addr = "x@y\r\nBcc: victim@example.org";
	m = test_msg(&r, 1, hostile_hdrs);
	m.dm_orig_headers_len = sizeof(hostile_hdrs) - 1;
	m.dm_message_id = "id\r\nX-Injected: 1";
	m.dm_date = "Tue,\r\n 2 Apr 2024";
	if (tap_ok(test_build(&m, &d), "hostile: built")) {
		tap_ok(test_lines_ok(d.s, d.len, &longest), "hostile: CRLF only");
		tap_ok(strstr(d.s, "\r\nInjected") == NULL && strstr(d.s, "\r\nBcc") == NULL &&
		       strstr(d.s, "\r\nX-Injected") == NULL, "hostile: no injected lines");
		tap_ok(strstr(d.s, "Diagnostic-Code: smtp; 550 a\r\n Injected: yes\r\n b\r\n") != NULL,
		       "hostile: reply lines kept as continuation lines, controls gone");
		tap_ok(strstr(d.s, "Final-Recipient: rfc822; x@y Bcc: victim@example.org\r\n") != NULL,
		       "hostile: line break in an address becomes a space");
		tap_ok(test_header_is(&d, "Message-ID: <idX-Injected:1>") &&
		       test_header_is(&d, "Date: Tue, 2 Apr 2024"), "hostile: header values cleaned");
		tap_ok(strstr(d.s, "\r\n\r\nSubject: x\r\nX-Bare-LF: y\r\nX-CR: ab\r\nX-NUL: ab\r\n\r\n--")
		       != NULL && strstr(d.s, "body") == NULL,
		       "hostile: original header normalised to CRLF, stops at the empty line");
		tap_ok(test_structure_ok(&d, 3), "hostile: structure");
		test_python_ok(&d, "hostile", "message/delivery-status", 1, "text/rfc822-headers");
	}
	test_dsn_free(&d);

	/* One 5000-octet word, and 5000 octets of words. */
	memset(diag, 'x', n);
	memcpy(diag, "550 ", 4);
	diag[n] = '\0';
	for (size_t i = 0; i < n; i++)
		words[i] = i % 7 == 6 ? ' ' : 'w';
	memcpy(words, "550 ", 4);
	words[n] = '\0';
	r = test_rcpts[0];
	r.dr_diag = diag;
	m = test_msg(&r, 1, NULL);
	if (tap_ok(test_build(&m, &d), "long word: built")) {
		ok = test_lines_ok(d.s, d.len, &longest);
		tap_ok(ok && longest < 1000 && longest > 800,
		       "long word: hard-broken, longest line %zu", longest);
		tap_ok(strstr(d.s, "\r\n xxxx") != NULL, "long word: continued after a space");
		test_python_ok(&d, "long word", "message/delivery-status", 1, NULL);
	}
	test_dsn_free(&d);
	r.dr_diag = words;
	m = test_msg(&r, 1, NULL);
	if (tap_ok(test_build(&m, &d), "long words: built")) {
		ok = test_lines_ok(d.s, d.len, &longest);
		tap_ok(ok && longest < 1000, "long words: folded, longest line %zu", longest);
		tap_ok(strstr(d.s, " \r\n") == NULL && strstr(d.s, "\r\n  w") == NULL &&
		       strstr(d.s, "\r\n www") != NULL,
		       "long words: folded at blanks, no trailing or doubled blanks");
	}
	test_dsn_free(&d);

	/* A very long original header line is split as a fold. */
	{
		size_t hn = 3000;
		char *h = malloc(hn + 16);

		memcpy(h, "X-Long: ", 8);
		memset(h + 8, 'h', hn - 8);
		memcpy(h + hn, "\r\n", 3);
		m = test_msg(test_rcpts, 1, h);
		if (tap_ok(test_build(&m, &d), "long header line: built")) {
			ok = test_lines_ok(d.s, d.len, &longest);
			tap_ok(ok && longest < 1000 && strstr(d.s, "\r\n hhhh") != NULL,
			       "long header line: folded, longest line %zu", longest);
		}
		test_dsn_free(&d);
		free(h);
	}

	/* Missing values: NULL strings, no status, no diagnostic. */
	{
		struct dsn_rcpt e = { .dr_addr = NULL, .dr_action = DSN_FAILED };
		struct dsn_msg z = { .dm_rcpts = &e, .dm_nrcpt = 1 };

		if (tap_ok(test_build(&z, &d), "empty values: built")) {
			tap_ok(test_lines_ok(d.s, d.len, &longest) && test_structure_ok(&d, 2),
			       "empty values: structure");
			tap_ok(strstr(d.s, "Status: 5.0.0\r\n") != NULL &&
			       strstr(d.s, "MAILER-DAEMON@localhost") != NULL &&
			       strstr(d.s, "Diagnostic-Code") == NULL &&
			       strstr(d.s, "\r\n<>: delivery failed\r\n") != NULL,
			       "empty values: defaults");
		}
		test_dsn_free(&d);
		e.dr_status = "5.1.1.1";
		e.dr_action = DSN_DELAYED;
		e.dr_remote_mta = "mx.example";
		if (tap_ok(test_build(&z, &d), "bad status: built"))
			tap_ok(strstr(d.s, "Status: 4.0.0\r\n") != NULL &&
			       strstr(d.s, "<>: delivery via host mx.example delayed\r\n") != NULL,
			       "bad status: replaced by 4.0.0 for a delay");
		test_dsn_free(&d);
	}
	free(diag);
	free(words);
}

static void test_header_len(void)
{
	static const struct {
		const char *in;
		size_t want;
	} c[] = {
		{ "A: b\r\nC: d\r\n\r\nbody\r\n", 12 },
		{ "A: b\r\n\r\n", 6 },
		{ "\r\nbody", 0 },
		{ "\r\n", 0 },
		{ "A: b\r\nC: d\r\n", 12 },
		{ "A: b", 4 },
		{ "", 0 },
		{ "A: b\n\nbody", 10 },
		{ "A: b\r\n\r\nX\r\n\r\n", 6 },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		size_t got = dsn_header_len(c[i].in, strlen(c[i].in));

		tap_ok(got == c[i].want, "dsn_header_len case %zu: %zu (want %zu)", i, got, c[i].want);
	}
}

int main(void)
{
	test_basic();
	test_class();
	test_delayed_only();
	test_success();
	test_ret_full();
	test_no_headers();
	test_utf8();
	test_boundary_collision();
	test_hostile();
	test_header_len();
	return tap_done();
}
