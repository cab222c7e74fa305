/*
 * test_dkim_table.c: the DKIM key table (core/dkim/dkim_table.c): the
 * file format and its errors (file:line), key files (missing, readable by
 * group), the lookup order (user, listener, From and its parents,
 * default domain), per-domain options, and signing jobs (dkim_job.c)
 * run inline: no-key actions, alignment, RFC 8058 fields, single
 * signature, a message split at odd places.
 * Keys are made here with BoringSSL (RSA 1024 for speed, Ed25519), in
 * $TMPDIR.
 */
#include "core/dkim/dkim_job.h"
#include "core/dkim/dkim_table.h"
#include "tests/unit/tap.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char test_dir[256], test_rsa[300], test_ed[300];

static bool test_write_key(const char *path, EVP_PKEY *pk)
{
	FILE *f = fopen(path, "w");
	bool ok;

	if (f == NULL)
		return false;
	ok = PEM_write_PKCS8PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) == 1;
	fclose(f);
	chmod(path, 0600);
	return ok;
}

static bool test_make_keys(void)
{
	const char *tmp = getenv("TMPDIR");
	EVP_PKEY *pk = EVP_PKEY_new(), *ed = NULL;
	EVP_PKEY_CTX *ctx;
	RSA *rsa = RSA_new();
	BIGNUM *e = BN_new();
	bool ok;

	snprintf(test_dir, sizeof(test_dir), "%s/ringmta-dkimtab-XXXXXX", tmp ? tmp : "/tmp");
	if (mkdtemp(test_dir) == NULL)
		return false;
	snprintf(test_rsa, sizeof(test_rsa), "%s/rsa.pem", test_dir);
	snprintf(test_ed, sizeof(test_ed), "%s/ed.pem", test_dir);
	BN_set_word(e, RSA_F4);
	ok = RSA_generate_key_ex(rsa, 1024, e, NULL) == 1 && EVP_PKEY_assign_RSA(pk, rsa) == 1 &&
	     test_write_key(test_rsa, pk);
	ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
	ok = ok && ctx != NULL && EVP_PKEY_keygen_init(ctx) == 1 && EVP_PKEY_keygen(ctx, &ed) == 1 &&
	     test_write_key(test_ed, ed);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(pk);
	BN_free(e);
	return ok;
}

/* Write text (with %1$s the RSA key, %2$s the Ed25519 key) as the table. */
static const char *test_table(const char *text)
{
	static char path[300];
	FILE *f;

	snprintf(path, sizeof(path), "%s/table.ini", test_dir);
	f = fopen(path, "w");
	fprintf(f, text, test_rsa, test_ed);
	fclose(f);
	return path;
}

/* Load text; on error, err must hold want (a substring). */
static void test_bad(const char *text, const char *want, const char *what)
{
	struct dkim_table *t = NULL;
	char err[600] = "";
	int rc = dkim_table_load(&t, test_table(text), err, sizeof(err));

	tap_ok(rc == -1 && t == NULL && strstr(err, want) != NULL, "%s: %s", what, err);
	dkim_table_unref(&t);
}

static void test_errors(void)
{
	char want[400];

	test_bad("keys = a:%1$s\n", "table.ini:1: 'keys' outside a [section]", "key before a section");
	test_bad("[example.com]\nkeys = a:%1$s\nbogus = 1\n", "table.ini:3: unknown key 'bogus'",
		 "unknown key names its line");
	test_bad("[example.com]\ncanonicalization = loose\nkeys = a:%1$s\n",
		 "table.ini:2: canonicalization: 'loose'", "bad canonicalization");
	test_bad("[example.com]\n", "table.ini:1: [example.com] has no keys", "domain without keys");
	test_bad("[example.com]\nkeys = a\n", "table.ini:2: keys: 'a': expected selector:path",
		 "key item without a path");
	test_bad("[example.com]\nkeys = a:/nonexistent/k.pem\n", "/nonexistent/k.pem",
		 "missing key file named");
	test_bad("[example.com]\nkeys = a:%1$s a:%2$s\n", "selector 'a' given twice",
		 "selector twice");
	test_bad("[example.com]\nkeys = a:%1$s\n[EXAMPLE.com]\nkeys = a:%1$s\n",
		 "table.ini:3: [EXAMPLE.com] given twice", "domain twice");
	test_bad("[exa mple.com]\nkeys = a:%1$s\n", "table.ini:1: [exa mple.com]: not a domain",
		 "bad domain name");
	test_bad("[example.com]\nkeys = a:%1$s\n[user bob]\ndomain = nowhere.com\n",
		 "table.ini:4: domain nowhere.com has no [nowhere.com] section",
		 "override naming an unknown domain");
	test_bad("[example.com]\nkeys = a:%1$s\n[user bob]\n", "table.ini:3: [user bob] needs domain",
		 "override without domain");
	test_bad("[example.com]\nkeys = a:%1$s\n[listener nowhere:25]\ndomain = example.com\n",
		 "table.ini:3: [listener nowhere:25]", "bad listener address");
	test_bad("[example.com]\nkeys = a:%1$s\nheaders = to:subject\n",
		 "headers: must include from", "headers without from");
	test_bad("[example.com]\nkeys = a:%1$s\nsingle_signature = maybe\n",
		 "single_signature: 'maybe'", "bad single_signature");
	test_bad("[example.com]\nkeys = a:%1$s\nunsubscribe_url = http://x/\n",
		 "expected an https:// URL", "unsubscribe_url must be https");
	test_bad("# nothing\n", "no [domain] section", "empty table");
	test_bad("[example.com]\nkeys = a:%1$s\n b:%1$s\n c:%1$s\n d:%1$s\n e:%1$s\n f:%1$s\n"
		 " g:%1$s\n h:%1$s\n i:%1$s\n j:%1$s\n k:%1$s\n l:%1$s\n m:%1$s\n n:%1$s\n"
		 " o:%1$s\n p:%1$s\n q:%1$s\n",
		 "keys: at most 16 per domain", "too many keys");
	test_bad("[example.com]\nkeys = a:%1$s\nheaders = from a b c d e f g h i j k l m n o p"
		 " q r s t u v w x y z\n  aa bb cc dd ee ff gg hh ii jj kk ll mm nn oo pp qq rr ss tt uu"
		 " vv ww\n",
		 "headers: at most 48 names", "too many header names");
	test_bad("[example.com]\nkeys = a:%1$s\nexpire = soon\n", "table.ini:3: expire: 'soon'",
		 "bad expire");
	/* 2^57 + 1 days is 86400 s modulo 2^64: refused, not taken as a day. */
	test_bad("[example.com]\nkeys = a:%1$s\nexpire = 144115188075855873d\n",
		 "table.ini:3: expire: '144115188075855873d'", "an expire that wraps is refused");
	test_bad("[example.com]\nkeys = a:%1$s\nexpire = 1152921504606846977h\n",
		 "table.ini:3: expire: '1152921504606846977h'", "in hours too");
	/* Group-readable key: refused, naming the file. */
	chmod(test_ed, 0640);
	snprintf(want, sizeof(want), "%s", test_ed);
	test_bad("[example.com]\nkeys = a:%1$s b:%2$s\n", want, "group-readable key refused");
	chmod(test_ed, 0600);
	{
		struct dkim_table *t = NULL;
		char err[300];

		tap_ok(dkim_table_load(&t, "/nonexistent/table.ini", err, sizeof(err)) == -1 &&
		       strstr(err, "/nonexistent/table.ini") != NULL, "missing table: %s", err);
	}
}

static void test_lookup(void)
{
	struct dkim_table *t = NULL;
	const struct dkim_domain *dd;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(587) };
	char err[600], lname[80];
	int rc;

	rc = dkim_table_load(&t, test_table(
		"; a comment\n"
		"[Example.COM]\n"
		"keys = rsa2026:%1$s ed2026:%2$s\n"
		"[sub.example.com]\n"
		"keys = s1:%1$s,\n"
		"   s2:%2$s\n"
		"canonicalization = simple/relaxed\n"
		"headers = From:To:Subject\n"
		"single_signature = yes\n"
		"expire = 7d\n"
		"unsubscribe_url = https://u.example.com/u?r={rcpt}&q={queue_id}\n"
		"unsubscribe_mailto = unsub@example.com\n"
		"[other.net]\n"
		"keys = x:%1$s\n"
		"canonicalization = relaxed\n"
		"[user alice]\n"
		"domain = other.net\n"
		"[listener 127.0.0.1:587/submission]\n"
		"domain = sub.example.com\n"), err, sizeof(err));
	tap_ok(rc == 0 && t != NULL, "a good table loads: %s", rc ? err : "");
	if (t == NULL)
		return;
	tap_ok(dkim_table_count(t) == 3 && strcmp(dkim_table_at(t, 0)->dd_name, "example.com") == 0 &&
	       strcmp(dkim_table_at(t, 2)->dd_name, "other.net") == 0 && dkim_table_at(t, 3) == NULL,
	       "domains in file order, lower-cased");
	dd = dkim_table_find(t, "example.com");
	tap_ok(dd != NULL && dd->dd_nsel == 2 && strcmp(dd->dd_sel[0].ds_name, "rsa2026") == 0 &&
	       dkim_key_alg(dd->dd_sel[0].ds_key) == DKIM_ALG_RSA_SHA256 &&
	       dkim_key_alg(dd->dd_sel[1].ds_key) == DKIM_ALG_ED25519_SHA256,
	       "two keys from one line, the algorithm from the file");
	tap_ok(dd != NULL && dd->dd_hcanon == DKIM_CANON_RELAXED && dd->dd_bcanon == DKIM_CANON_RELAXED &&
	       !dd->dd_single && dd->dd_expire == 0 && dd->dd_headers == NULL &&
	       dd->dd_unsub_url == NULL, "defaults: relaxed/relaxed, all keys, no x=, default headers");
	dd = dkim_table_find(t, "sub.example.com");
	tap_ok(dd != NULL && dd->dd_nsel == 2 && strcmp(dd->dd_sel[1].ds_name, "s2") == 0,
	       "keys continue on an indented line");
	tap_ok(dd != NULL && dd->dd_hcanon == DKIM_CANON_SIMPLE && dd->dd_bcanon == DKIM_CANON_RELAXED &&
	       dd->dd_single && dd->dd_expire == 7 * 86400, "simple/relaxed, single, expire 7d");
	tap_ok(dd != NULL && dd->dd_headers != NULL && strcmp(dd->dd_headers[0], "from") == 0 &&
	       strcmp(dd->dd_headers[2], "subject") == 0 && dd->dd_headers[3] == NULL,
	       "headers list, lower-cased");
	tap_ok(dd != NULL && dd->dd_unsub_url != NULL && dd->dd_unsub_mailto != NULL &&
	       strcmp(dd->dd_unsub_mailto, "unsub@example.com") == 0, "unsubscribe settings");
	dd = dkim_table_find(t, "other.net");
	tap_ok(dd != NULL && dd->dd_hcanon == DKIM_CANON_RELAXED && dd->dd_bcanon == DKIM_CANON_SIMPLE,
	       "\"relaxed\" alone is relaxed/simple (RFC 6376 3.5)");

	dd = dkim_table_match(t, NULL, NULL, "example.com", NULL);
	tap_ok(dd != NULL && strcmp(dd->dd_name, "example.com") == 0, "From domain itself");
	dd = dkim_table_match(t, NULL, NULL, "a.b.example.com", NULL);
	tap_ok(dd != NULL && strcmp(dd->dd_name, "example.com") == 0, "parent-domain fallback");
	dd = dkim_table_match(t, NULL, NULL, "x.sub.example.com", NULL);
	tap_ok(dd != NULL && strcmp(dd->dd_name, "sub.example.com") == 0, "nearest parent first");
	tap_ok(dkim_table_match(t, NULL, NULL, "example.org", NULL) == NULL, "no key: NULL");
	tap_ok(dkim_table_match(t, NULL, NULL, "com", NULL) == NULL, "a bare TLD never matches");
	dd = dkim_table_match(t, NULL, NULL, "example.org", "other.net");
	tap_ok(dd != NULL && strcmp(dd->dd_name, "other.net") == 0, "default domain");
	dd = dkim_table_match(t, "alice", NULL, "example.com", NULL);
	tap_ok(dd != NULL && strcmp(dd->dd_name, "other.net") == 0, "user override beats From");
	sin.sin_addr.s_addr = htonl(0x7f000001);
	dkim_table_listener_name((struct sockaddr *)&sin, lname, sizeof(lname));
	tap_ok(strcmp(lname, "127.0.0.1:587") == 0, "listener name %s", lname);
	dd = dkim_table_match(t, "bob", lname, "example.com", NULL);
	tap_ok(dd != NULL && strcmp(dd->dd_name, "sub.example.com") == 0,
	       "listener override beats From");
	dd = dkim_table_match(t, "alice", lname, "example.com", NULL);
	tap_ok(dd != NULL && strcmp(dd->dd_name, "other.net") == 0, "user beats listener");
	{
		struct dkim_table *t2 = dkim_table_ref(t);

		tap_ok(t2 == t, "ref");
		dkim_table_unref(&t2);
		tap_ok(t2 == NULL && dkim_table_count(t) == 3, "unref clears the pointer, the"
		       " table lives on");
	}
	dkim_table_unref(&t);
}

static void test_unsub_url(void)
{
	char buf[200];

	tap_ok(dkim_job_unsub_url("https://u.example/u?r={rcpt}&q={queue_id}", "a+b@x.example",
				  "0123abcd", buf, sizeof(buf)) > 0 &&
	       strcmp(buf, "https://u.example/u?r=a%2Bb%40x.example&q=0123abcd") == 0,
	       "placeholders filled, URL-encoded: %s", buf);
	tap_ok(dkim_job_unsub_url("https://u.example/{rcpt}", "a b&c", "1", buf, sizeof(buf)) > 0 &&
	       strcmp(buf, "https://u.example/a%20b%26c") == 0, "blanks and & encoded: %s", buf);
	tap_ok(dkim_job_unsub_url("https://u.example/{rcpt}", "aaaaaaaaaaaaaaaaaaaa", "1", buf, 20) ==
	       -1, "too long: -1");
}

/* The pool header the next test_job() is told never to sign. */
static const char *test_skip_header;

/* Run a job for msg (split into pieces of 7 octets) and return it. */
static struct dkim_job *test_job(struct dkim_table *t, const char *msg, const char *sender,
				 const char *rcpt, unsigned nrcpt, enum config_dkim_no_key nk,
				 enum config_dmarc_unaligned ua)
{
	static struct iovec iov[512];
	struct dkim_job_params p = {
		.table = t, .sender = sender, .rcpt = rcpt, .nrcpt = nrcpt,
		.queue_id = 0x0123456789abcdefull, .default_domain = "",
		.no_key_action = nk, .unaligned_action = ua, .now = 1767225600,
		.skip_header = test_skip_header,
	};
	size_t len = strlen(msg);
	unsigned n = 0;
	struct dkim_job *j;

	for (size_t off = 0; off < len && n < 512; off += 7, n++) {
		iov[n].iov_base = (void *)(msg + off);
		iov[n].iov_len = len - off < 7 ? len - off : 7;
	}
	j = dkim_job_new(&p, iov, n, NULL, NULL);
	if (j != NULL)
		dkim_job_run(&j->dj_work);
	return j;
}

static void test_jobs(void)
{
	struct dkim_table *t = NULL;
	struct dkim_job *j;
	char err[600];
	const char *msg = "From: A <a@news.example.com>\r\nTo: b@x.example\r\nSubject: s\r\n"
			  "\r\nbody\r\n";

	if (dkim_table_load(&t, test_table(
		"[example.com]\nkeys = r:%1$s e:%2$s\n"
		"unsubscribe_url = https://u.example.com/u?r={rcpt}&q={queue_id}\n"
		"unsubscribe_mailto = unsub@example.com\n"
		"[single.org]\nkeys = r:%1$s e:%2$s\nsingle_signature = yes\n"), err,
		sizeof(err)) < 0) {
		tap_ok(0, "job table: %s", err);
		return;
	}
	j = test_job(t, msg, "bounce@example.com", "b@x.example", 1, CONFIG_DKIM_NO_KEY_UNSIGNED,
		     CONFIG_DMARC_UNALIGNED_REJECT);
	tap_ok(j != NULL && j->dj_status == DKIM_JOB_SIGNED && !j->dj_unaligned &&
	       strcmp(j->dj_sig, "example.com/r,e") == 0 && strcmp(j->dj_from, "news.example.com") == 0,
	       "parent domain signs with both keys: %s", j ? j->dj_sig : "");
	tap_ok(j != NULL && j->dj_prefix != NULL &&
	       strncmp(j->dj_prefix, "DKIM-Signature:", 15) == 0 &&
	       strstr(j->dj_prefix, "List-Unsubscribe: <https://u.example.com/u?r=b%40x.example&"
		      "q=0123456789abcdef>,\r\n <mailto:unsub@example.com?subject=unsubscribe>\r\n"
		      "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n") != NULL,
	       "signatures, then the RFC 8058 fields");
	dkim_job_free(&j);
	tap_ok(j == NULL, "dkim_job_free clears the pointer");
	j = test_job(t, msg, "bounce@example.com", NULL, 3, CONFIG_DKIM_NO_KEY_UNSIGNED,
		     CONFIG_DMARC_UNALIGNED_ACCEPT);
	tap_ok(j != NULL && j->dj_status == DKIM_JOB_SIGNED && j->dj_prefix != NULL &&
	       strstr(j->dj_prefix, "https://") == NULL &&
	       strstr(j->dj_prefix, "\r\nList-Unsubscribe-Post:") == NULL &&
	       strstr(j->dj_note, "3 recipients: mailto only") != NULL,
	       "several recipients: mailto only, noted: %s", j ? j->dj_note : "");
	dkim_job_free(&j);
	j = test_job(t, "From: a@single.org\r\n\r\nx", "", "b@x", 1, CONFIG_DKIM_NO_KEY_UNSIGNED,
		     CONFIG_DMARC_UNALIGNED_ACCEPT);
	tap_ok(j != NULL && j->dj_status == DKIM_JOB_SIGNED && strcmp(j->dj_sig, "single.org/r") == 0,
	       "single_signature: the first key only");
	dkim_job_free(&j);
	j = test_job(t, "From: a@nokey.net\r\n\r\nx", "a@nokey.net", "b@x", 1,
		     CONFIG_DKIM_NO_KEY_UNSIGNED, CONFIG_DMARC_UNALIGNED_REJECT);
	tap_ok(j != NULL && j->dj_status == DKIM_JOB_UNSIGNED && !j->dj_unaligned &&
	       strcmp(j->dj_sig, "none(no key)") == 0 && j->dj_prefix == NULL,
	       "no key, unsigned; aligned through the envelope sender");
	dkim_job_free(&j);
	j = test_job(t, "From: a@nokey.net\r\n\r\nx", "a@nokey.net", "b@x", 1,
		     CONFIG_DKIM_NO_KEY_DEFER, CONFIG_DMARC_UNALIGNED_ACCEPT);
	tap_ok(j != NULL && j->dj_status == DKIM_JOB_REFUSED &&
	       strcmp(j->dj_reply, "451 4.7.0 Error: no DKIM key for From domain nokey.net") == 0 &&
	       strcmp(j->dj_reason, "no_key") == 0, "no key, defer: %s", j ? j->dj_reply : "");
	dkim_job_free(&j);
	j = test_job(t, "From: a@nokey.net\r\n\r\nx", "a@nokey.net", "b@x", 1,
		     CONFIG_DKIM_NO_KEY_REJECT, CONFIG_DMARC_UNALIGNED_ACCEPT);
	tap_ok(j != NULL && j->dj_status == DKIM_JOB_REFUSED && strncmp(j->dj_reply, "550 5.7.0", 9) == 0,
	       "no key, reject: %s", j ? j->dj_reply : "");
	dkim_job_free(&j);
	j = test_job(t, "From: a@nokey.net\r\n\r\nx", "z@else.org", "b@x", 1,
		     CONFIG_DKIM_NO_KEY_UNSIGNED, CONFIG_DMARC_UNALIGNED_REJECT);
	tap_ok(j != NULL && j->dj_status == DKIM_JOB_REFUSED && j->dj_unaligned &&
	       strcmp(j->dj_reply, "550 5.7.1 Error: From domain nokey.net is not aligned with the"
		      " DKIM domain or the envelope sender (DMARC)") == 0 &&
	       strcmp(j->dj_reason, "unaligned") == 0, "unaligned, reject: %s", j ? j->dj_reply : "");
	dkim_job_free(&j);
	j = test_job(t, "From: a@b.example.com, c@example.com\r\n\r\nx", "a@example.com", "b@x", 1,
		     CONFIG_DKIM_NO_KEY_UNSIGNED, CONFIG_DMARC_UNALIGNED_ACCEPT);
	tap_ok(j != NULL && j->dj_unaligned && j->dj_status == DKIM_JOB_UNSIGNED,
	       "two From addresses: no author domain, unaligned");
	dkim_job_free(&j);
	dkim_table_unref(&t);
}

/* The pool header is never signed, even when the domain lists it: it is
 * removed before sending. */
static void test_skip(void)
{
	struct dkim_table *t = NULL;
	struct dkim_job *j;
	char err[600];
	const char *msg = "From: a@example.com\r\nX-Ringmta-Pool: bulk\r\nSubject: s\r\n"
			  "\r\nbody\r\n";

	if (dkim_table_load(&t, test_table("[example.com]\nkeys = r:%1$s\n"
					   "headers = from:subject:x-ringmta-pool\n"), err,
			    sizeof(err)) < 0) {
		tap_ok(0, "skip table: %s", err);
		return;
	}
	test_skip_header = NULL;
	j = test_job(t, msg, "a@example.com", "b@x", 1, CONFIG_DKIM_NO_KEY_UNSIGNED,
		     CONFIG_DMARC_UNALIGNED_ACCEPT);
	tap_ok(j != NULL && j->dj_prefix != NULL && strstr(j->dj_prefix, "x-ringmta-pool") != NULL,
	       "listed and not skipped: signed");
	dkim_job_free(&j);
	test_skip_header = "X-Ringmta-Pool";
	j = test_job(t, msg, "a@example.com", "b@x", 1, CONFIG_DKIM_NO_KEY_UNSIGNED,
		     CONFIG_DMARC_UNALIGNED_ACCEPT);
	test_skip_header = NULL;
	tap_ok(j != NULL && j->dj_status == DKIM_JOB_SIGNED && j->dj_prefix != NULL &&
	       strcasestr(j->dj_prefix, "ringmta-pool") == NULL &&
	       strstr(j->dj_prefix, "h=from:from:subject:subject:list-unsubscribe:") != NULL,
	       "the pool header is left out of h= (any case)");
	dkim_job_free(&j);
	dkim_table_unref(&t);
}

/* Whether every line of text (CRLF-ended) has at most 998 octets before
 * its CRLF (RFC 5322 2.1.1): a longer one may be refused or broken by a
 * relay, and then the signature over it no longer verifies. */
static bool test_lines_fit(const char *text)
{
	for (const char *p = text; p != NULL && *p != '\0';) {
		const char *e = strstr(p, "\r\n");
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (n > 998)
			return false;
		p = e ? e + 2 : NULL;
	}
	return true;
}

/* A long recipient filled into the URL twice: the List-Unsubscribe line
 * stays within 998 octets, or the URL is left out (noted). */
static void test_unsub_long(void)
{
	struct dkim_table *t = NULL;
	struct dkim_job *j;
	char err[600], rcpt[400], url[1100];
	const char *msg = "From: A <a@example.com>\r\nTo: b@x.example\r\nSubject: s\r\n"
			  "\r\nbody\r\n";
	int ulen;

	/* 64 octets of local part, each encoded as 3, and a 252-octet domain. */
	memset(rcpt, '+', 64);
	snprintf(rcpt + 64, sizeof(rcpt) - 64, "@%.60s.%.60s.%.60s.%.60s.example",
		 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
		 "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
		 "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd");
	if (dkim_table_load(&t, test_table(
		"[example.com]\nkeys = r:%1$s\n"
		"unsubscribe_url = https://unsubscribe.example.com/one-click/list/abcdefghijklmnopqrstuvwxyz0123/{rcpt}/{rcpt}"
		"/{queue_id}\n"), err, sizeof(err)) < 0) {
		tap_ok(0, "long unsubscribe table: %s", err);
		return;
	}
	ulen = dkim_job_unsub_url(dkim_table_find(t, "example.com")->dd_unsub_url, rcpt,
				  "0123456789abcdef", url, sizeof(url));
	tap_ok(ulen > 980 && ulen < 1023, "setup: the filled URL has %d octets", ulen);
	j = test_job(t, msg, "a@example.com", rcpt, 1, CONFIG_DKIM_NO_KEY_UNSIGNED,
		     CONFIG_DMARC_UNALIGNED_REJECT);
	tap_ok(j != NULL && j->dj_status == DKIM_JOB_SIGNED && test_lines_fit(j->dj_prefix),
	       "a List-Unsubscribe line never exceeds 998 octets");
	tap_ok(j != NULL && strstr(j->dj_note, "unsubscribe URL too long") != NULL,
	       "a URL that does not fit is left out, noted: %s", j ? j->dj_note : "");
	dkim_job_free(&j);
	dkim_table_unref(&t);
}

int main(void)
{
	if (!test_make_keys()) {
		printf("1..0 # SKIP cannot make keys\n");
		return 77;
	}
	test_errors();
	test_lookup();
	test_unsub_url();
	test_jobs();
	test_skip();
	test_unsub_long();
	unlink(test_rsa);
	unlink(test_ed);
	unlink(test_table(""));
	rmdir(test_dir);
	return tap_done();
}
