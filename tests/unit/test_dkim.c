/*
 * test_dkim: core/dkim: canonicalization (RFC 6376 3.4.5's example, body
 * and header edge cases, every split of a body against a slow reference),
 * the From domain, key loading, and signatures verified here with
 * BoringSSL (a small verifier below, written from RFC 6376 6.1.3).
 * Keys are made with the openssl tool in TMPDIR.
 */
#include "core/dkim/dkim.h"
#include "tap.h"
#include "dkim_ref.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/base64.h>
#include <openssl/bytestring.h>
#include <openssl/curve25519.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

/* ---- body canonicalization ---- */

struct sink {
	char *p;
	size_t len, cap;
	unsigned calls;
};

static void sink_emit(void *ctx, const void *p, size_t n)
{
	struct sink *s = ctx;

	if (s->len + n + 1 > s->cap) {
		s->cap = (s->len + n + 1) * 2;
		s->p = realloc(s->p, s->cap);
	}
	memcpy(s->p + s->len, p, n);
	s->len += n;
	s->p[s->len] = '\0';
	s->calls++;
}

/* Canonicalizes in (n bytes) cut at the given offsets. */
static void canon_pieces(enum dkim_canon c, const char *in, size_t n, const size_t *cuts,
			 unsigned ncuts, struct sink *s)
{
	struct dkim_body_canon b;
	size_t prev = 0;

	s->len = 0;
	s->calls = 0;
	sink_emit(s, "", 0);
	s->calls = 0;
	dkim_body_canon_init(&b, c, sink_emit, s);
	for (unsigned i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : n;
		/* Each piece from its own block, so reading past it is seen by ASan. */
		char *piece = malloc(end - prev + 1);

		memcpy(piece, in + prev, end - prev);
		dkim_body_canon_feed(&b, piece, end - prev);
		free(piece);
		prev = end;
	}
	dkim_body_canon_finish(&b);
}

static int body_is(enum dkim_canon c, const char *in, const char *want)
{
	struct sink s = { 0 };
	int ok;

	canon_pieces(c, in, strlen(in), NULL, 0, &s);
	ok = s.len == strlen(want) && memcmp(s.p, want, s.len) == 0;
	if (!ok)
		printf("# got [%s] want [%s]\n", s.p, want);
	free(s.p);
	return ok;
}

/* Every 1- and 2-cut split of in agrees with the reference. */
static int body_splits_agree(enum dkim_canon c, const char *in)
{
	size_t n = strlen(in), rl;
	char *ref = malloc(2 * n + 4);
	struct sink s = { 0 };
	int ok = 1;

	rl = dkim_ref_body(c, in, n, ref);
	for (size_t a = 0; a <= n && ok; a++) {
		for (size_t b = a; b <= n && ok; b++) {
			size_t cuts[2] = { a, b };

			canon_pieces(c, in, n, cuts, 2, &s);
			if (s.len != rl || memcmp(s.p, ref, rl) != 0) {
				printf("# split %zu,%zu of [%s]: got [%.*s] want [%.*s]\n",
				       a, b, in, (int)s.len, s.p, (int)rl, ref);
				ok = 0;
			}
		}
	}
	free(ref);
	free(s.p);
	return ok;
}

struct canon_case {
	enum dkim_canon c;
	const char *in, *want, *what;
};

static const struct canon_case body_cases[] = {
	{ DKIM_CANON_RELAXED, " C \r\nD \t E\r\n\r\n\r\n", " C\r\nD E\r\n", "3.4.5 relaxed body" },
	{ DKIM_CANON_SIMPLE, " C \r\nD \t E\r\n\r\n\r\n", " C \r\nD \t E\r\n", "3.4.5 simple body" },
	{ DKIM_CANON_SIMPLE, "", "\r\n", "simple: empty body is CRLF" },
	{ DKIM_CANON_RELAXED, "", "", "relaxed: empty body stays empty" },
	{ DKIM_CANON_SIMPLE, "\r\n\r\n\r\n", "\r\n", "simple: only blank lines is CRLF" },
	{ DKIM_CANON_RELAXED, "\r\n \r\n\t\r\n", "", "relaxed: only blank lines is empty" },
	{ DKIM_CANON_SIMPLE, "abc", "abc\r\n", "simple: no final CRLF gets one" },
	{ DKIM_CANON_RELAXED, "abc \t", "abc \r\n", "relaxed: no final CRLF gets one after the WSP (as dkimpy)" },
	{ DKIM_CANON_RELAXED, "abc\r\n\r\n \t", "abc\r\n\r\n \r\n", "relaxed: a last line of WSP without CRLF is kept" },
	{ DKIM_CANON_RELAXED, "a \t\r\nb\t\r\n", "a\r\nb\r\n", "relaxed: WSP at line ends dropped" },
	{ DKIM_CANON_SIMPLE, "a \t\r\n", "a \t\r\n", "simple: WSP kept" },
	{ DKIM_CANON_RELAXED, "a\rb \r\n", "a\rb\r\n", "relaxed: a lone CR is content" },
	{ DKIM_CANON_SIMPLE, "a\r", "a\r\r\n", "simple: a final lone CR is content" },
	{ DKIM_CANON_SIMPLE, "a\r\n\r\nb\r\n\r\n", "a\r\n\r\nb\r\n", "simple: inner blank lines kept, trailing ones dropped" },
};

static void test_body(void)
{
	static const char *const cases[] = {
		"", "\r\n", "\r\n\r\n\r\n", "a", "a\r\n", "a\r\n\r\n", "a\r\n\r\n\r\nb",
		" C \r\nD \t E\r\n\r\n\r\n", "x  \t y \r\n  \r\n \t\r\n", "\r", "a\r", "a\rb\r\n",
		"\r\r\n\r\n", "a\r\n\rb\r\n\r\n", "\t\r\n", " ", "a \r\n \r\nb  c\t\r\n",
		"\r\n \r\n\r\nx\r\n", "a\n\nb\r\n", "a \r\r\n", " \r\n\r\n  x", "a  b  c   d",
	};

	for (size_t i = 0; i < sizeof(body_cases) / sizeof(body_cases[0]); i++) {
		const struct canon_case *t = &body_cases[i];

		tap_ok(body_is(t->c, t->in, t->want), "%s", t->what);
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tap_ok(body_splits_agree(DKIM_CANON_SIMPLE, cases[i]), "simple: every split of case %zu", i);
		tap_ok(body_splits_agree(DKIM_CANON_RELAXED, cases[i]), "relaxed: every split of case %zu", i);
	}
	/* Batching: a plain body in one piece is one emit (plus the end). */
	{
		struct sink s = { 0 };
		const char *m = "line one\r\nline two has words\r\n\r\nthree\r\n";

		canon_pieces(DKIM_CANON_RELAXED, m, strlen(m), NULL, 0, &s);
		tap_ok(s.calls == 1, "relaxed: a plain body is emitted in one run (%u calls)", s.calls);
		canon_pieces(DKIM_CANON_SIMPLE, m, strlen(m), NULL, 0, &s);
		tap_ok(s.calls == 1, "simple: a plain body is emitted in one run (%u calls)", s.calls);
		free(s.p);
	}
	/* Many blank lines held, then content. */
	{
		char *m = malloc(1000 * 2 + 4);
		char *ref = malloc(4000);
		struct sink s = { 0 };
		size_t cuts[1] = { 777 }, rl;

		for (int i = 0; i < 1000; i++)
			memcpy(m + 2 * i, "\r\n", 2);
		memcpy(m + 2000, "x\r\n", 4);
		rl = dkim_ref_body(DKIM_CANON_SIMPLE, m, 2003, ref);
		canon_pieces(DKIM_CANON_SIMPLE, m, 2003, cuts, 1, &s);
		tap_ok(s.len == rl && memcmp(s.p, ref, rl) == 0 && rl == 2003,
		       "simple: 1000 held blank lines across pieces, then content");
		free(m);
		free(ref);
		free(s.p);
	}
}

/* ---- header canonicalization ---- */

static int hdr_is(enum dkim_canon c, const char *in, const char *want)
{
	char out[512];
	long n = dkim_canon_header(c, in, strlen(in), out, sizeof(out));
	int ok = n >= 0 && (size_t)n == strlen(want) && memcmp(out, want, (size_t)n) == 0;

	if (!ok)
		printf("# got [%.*s] want [%s]\n", (int)(n < 0 ? 0 : n), out, want);
	return ok;
}

static const struct canon_case header_cases[] = {
	{ DKIM_CANON_RELAXED, "A: X", "a:X", "3.4.5 relaxed A" },
	{ DKIM_CANON_RELAXED, "B : Y\t\r\n\tZ  ", "b:Y Z", "3.4.5 relaxed B" },
	{ DKIM_CANON_SIMPLE, "B : Y\t\r\n\tZ  ", "B : Y\t\r\n\tZ  ", "3.4.5 simple B" },
	{ DKIM_CANON_RELAXED, "Subject:", "subject:", "relaxed: empty value" },
	{ DKIM_CANON_RELAXED, "Subject: \t ", "subject:", "relaxed: value of only WSP" },
	{ DKIM_CANON_RELAXED, "Subject:\r\n x", "subject:x", "relaxed: value on a folded line" },
	{ DKIM_CANON_RELAXED, "To:\ta,\r\n\t\tb ,\r\n  c", "to:a, b , c", "relaxed: folded with tabs" },
	{ DKIM_CANON_RELAXED, "X-Mixed-CASE:  Value CASE", "x-mixed-case:Value CASE", "relaxed: name lower-cased, value kept" },
	{ DKIM_CANON_RELAXED, "Subject: a:b  c", "subject:a:b c", "relaxed: a colon in the value" },
	{ DKIM_CANON_RELAXED, "Subject: \xc3\xa9t\xc3\xa9", "subject:\xc3\xa9t\xc3\xa9", "relaxed: UTF-8 value as is" },
};

static void test_header(void)
{
	char small[4];

	for (size_t i = 0; i < sizeof(header_cases) / sizeof(header_cases[0]); i++) {
		const struct canon_case *t = &header_cases[i];

		tap_ok(hdr_is(t->c, t->in, t->want), "%s", t->what);
	}
	tap_ok(dkim_canon_header(DKIM_CANON_RELAXED, "Subject: hello", 14, small, sizeof(small)) == -1,
	       "relaxed: too small an output is -1");
	tap_ok(dkim_canon_header(DKIM_CANON_SIMPLE, "Subject: hello", 14, small, sizeof(small)) == -1,
	       "simple: too small an output is -1");
}

/* ---- From ---- */

static int from_is(const char *msg, int want_rc, const char *want)
{
	struct iovec iov = { (void *)msg, strlen(msg) };
	char buf[256];
	int rc = dkim_from_domain(&iov, 1, buf, sizeof(buf));
	int ok = rc == want_rc && (rc != 1 || strcmp(buf, want) == 0);

	if (!ok)
		printf("# rc %d [%s], want %d [%s]\n", rc, rc == 1 ? buf : "", want_rc, want ? want : "");
	return ok;
}

static void test_from(void)
{
	tap_ok(from_is("From: a@Example.COM\r\n\r\nbody\r\n", 1, "example.com"), "from: bare addr-spec, lower-cased");
	tap_ok(from_is("To: x@y\r\nfrom: \"Doe, John\" <j@a.example>\r\n\r\n", 1, "a.example"),
	       "from: quoted display name with a comma");
	tap_ok(from_is("From: John (the @ man) Doe <j@b.example> (c@d)\r\n\r\n", 1, "b.example"),
	       "from: comments with @");
	tap_ok(from_is("From: j@c.example (John (nested) Doe)\r\n\r\n", 1, "c.example"), "from: nested comment");
	tap_ok(from_is("From: \"a@evil.example\" <j@d.example>\r\n\r\n", 1, "d.example"),
	       "from: @ in a quoted display name");
	tap_ok(from_is("From: \"j@x\"@e.example\r\n\r\n", 1, "e.example"), "from: quoted local part with @");
	tap_ok(from_is("From: John\r\n Doe\r\n\t<j@f.example>\r\n\r\n", 1, "f.example"), "from: folded");
	tap_ok(from_is("From: Team: j@g.example;\r\n\r\n", 1, "g.example"), "from: group of one");
	tap_ok(from_is("From: Team: a@g.example, b@h.example;\r\n\r\n", -1, NULL), "from: group of two is -1");
	tap_ok(from_is("From: a@g.example, b@h.example\r\n\r\n", -1, NULL), "from: two mailboxes is -1");
	tap_ok(from_is("From: a@g.example\r\nFROM: a@g.example\r\n\r\n", -1, NULL), "from: two From fields is -1");
	tap_ok(from_is("To: a@g.example\r\n\r\nFrom: x@y.example\r\n", 0, NULL), "from: none in the header section");
	tap_ok(from_is("From: undisclosed-recipients:;\r\n\r\n", 0, NULL), "from: empty group is 0");
	tap_ok(from_is("From: nobody\r\n\r\n", 0, NULL), "from: no @ is 0");
	tap_ok(from_is("From: <j@i.example.>\r\n\r\n", 1, "i.example"), "from: final dot dropped");
	tap_ok(from_is("From: <@relay.example:j@k.example>\r\n\r\n", 1, "k.example"), "from: source route");
	tap_ok(from_is("From: J\xc3\xb6rg <j\xc3\xb6@B\xc3\xbc.Example>\r\n\r\n", 1, "b\xc3\xbc.example"),
	       "from: UTF-8 domain, ASCII lower-cased");
	tap_ok(from_is("From: a@l.example", 1, "l.example"), "from: no body, no CRLF");
	/* One mailbox, two addresses: which one a reader's MUA or DMARC
	 * shows is anybody's guess, so there is no one author domain. */
	tap_ok(from_is("From: <a@good.example> <b@evil.example>\r\n\r\n", -1, NULL),
	       "from: two angle addresses in one mailbox is -1");
	tap_ok(from_is("From: Joe <a@good.example> b@evil.example\r\n\r\n", -1, NULL),
	       "from: an address after the angle address is -1");
	tap_ok(from_is("From: <a@good.example> \"x\"@evil.example\r\n\r\n", -1, NULL),
	       "from: a quoted address after the angle address is -1");
	tap_ok(from_is("From: Joe <a@n.example> (work)\r\n\r\n", 1, "n.example"),
	       "from: a comment after the angle address is fine");
	tap_ok(from_is("From: Joe <a@n.example>, \r\n\r\n", 1, "n.example"),
	       "from: a trailing comma is fine");
	{
		const char *m = "Subject: x\r\nFrom: Someone <s@m.example>\r\n\r\n";
		struct iovec iov[3] = {
			{ (void *)m, 15 }, { (void *)(m + 15), 10 }, { (void *)(m + 25), strlen(m) - 25 },
		};
		char buf[64];

		tap_ok(dkim_from_domain(iov, 3, buf, sizeof(buf)) == 1 && strcmp(buf, "m.example") == 0,
		       "from: header split over pieces");
	}
}

/* ---- keys ---- */

static char tmpdir[512];

static int sh(const char *fmt, const char *a)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd), fmt, a, a, a);
	return system(cmd);
}

static const char *keypath(const char *name)
{
	static char p[4][600];
	static int k;

	k = (k + 1) % 4;
	snprintf(p[k], sizeof(p[k]), "%s/%s", tmpdir, name);
	return p[k];
}

static int make_key(const char *name, const char *args)
{
	char cmd[2048];
	const char *p = keypath(name);

	snprintf(cmd, sizeof(cmd), "openssl genpkey %s -out '%s' 2>/dev/null && chmod 600 '%s'", args, p, p);
	return system(cmd) == 0;
}

static size_t b64_decode(const char *in, uint8_t *out, size_t cap)
{
	size_t n = 0;

	if (!EVP_DecodeBase64(out, &n, cap, (const uint8_t *)in, strlen(in)))
		return 0;
	return n;
}

static void test_keys(struct dkim_key **rsa_r, struct dkim_key **ed_r)
{
	char err[512];
	struct dkim_key *k = NULL;
	char *p;

	*rsa_r = *ed_r = NULL;
	if (!tap_ok(make_key("rsa.pem", "-algorithm RSA -pkeyopt rsa_keygen_bits:2048") &&
		    make_key("ed.pem", "-algorithm ed25519") &&
		    make_key("rsa512.pem", "-algorithm RSA -pkeyopt rsa_keygen_bits:512"),
		    "openssl genpkey made the test keys"))
		return;
	tap_ok(dkim_key_load(rsa_r, keypath("rsa.pem"), err, sizeof(err)) == 0 &&
	       dkim_key_alg(*rsa_r) == DKIM_ALG_RSA_SHA256 && dkim_key_bits(*rsa_r) == 2048,
	       "RSA-2048 loads");
	tap_ok(dkim_key_load(ed_r, keypath("ed.pem"), err, sizeof(err)) == 0 &&
	       dkim_key_alg(*ed_r) == DKIM_ALG_ED25519_SHA256 && dkim_key_bits(*ed_r) == 256,
	       "Ed25519 (PKCS#8) loads");
	sh("openssl pkey -in '%s' -traditional -out '%s.pkcs1' && chmod 600 '%s.pkcs1'", keypath("rsa.pem"));
	tap_ok(dkim_key_load(&k, keypath("rsa.pem.pkcs1"), err, sizeof(err)) == 0 &&
	       dkim_key_bits(k) == 2048, "RSA in PKCS#1 (BEGIN RSA PRIVATE KEY) loads");
	dkim_key_free(k);
	k = NULL;
	tap_ok(make_key("rsa1024.pem", "-algorithm RSA -pkeyopt rsa_keygen_bits:1024") &&
	       dkim_key_load(&k, keypath("rsa1024.pem"), err, sizeof(err)) == 0 && dkim_key_bits(k) == 1024,
	       "RSA-1024 loads");
	dkim_key_free(k);
	k = NULL;
	tap_ok(dkim_key_load(&k, keypath("rsa512.pem"), err, sizeof(err)) == -1 && k == NULL &&
	       strstr(err, "512") != NULL, "RSA-512 refused: %s", err);

	sh("cp '%s' '%s.g' && chmod 640 '%s.g'", keypath("rsa.pem"));
	tap_ok(dkim_key_load(&k, keypath("rsa.pem.g"), err, sizeof(err)) == -1 &&
	       strstr(err, keypath("rsa.pem.g")) != NULL && strstr(err, "chmod 600") != NULL,
	       "group-readable key refused, named: %s", err);
	sh("chmod 604 '%s.g'", keypath("rsa.pem"));
	tap_ok(dkim_key_load(&k, keypath("rsa.pem.g"), err, sizeof(err)) == -1,
	       "other-readable key refused");
	tap_ok(dkim_key_load(&k, tmpdir, err, sizeof(err)) == -1 && strstr(err, "regular") != NULL,
	       "a directory refused: %s", err);
	tap_ok(dkim_key_load(&k, keypath("no-such.pem"), err, sizeof(err)) == -1 &&
	       strstr(err, "no-such.pem") != NULL, "a missing file: %s", err);
	sh("printf 'not a key' > '%s.junk' && chmod 600 '%s.junk'", keypath("rsa.pem"));
	tap_ok(dkim_key_load(&k, keypath("rsa.pem.junk"), err, sizeof(err)) == -1, "not PEM: refused");

	/* p= of RSA: the PEM body of "openssl pkey -pubout". */
	if (*rsa_r) {
		char cmd[1024], line[256], want[1024] = "";
		FILE *f;

		snprintf(cmd, sizeof(cmd), "openssl pkey -in '%s' -pubout", keypath("rsa.pem"));
		f = popen(cmd, "r");
		while (f && fgets(line, sizeof(line), f))
			if (line[0] != '-') {
				line[strcspn(line, "\r\n")] = '\0';
				strcat(want, line);
			}
		if (f)
			pclose(f);
		p = dkim_key_public_b64(*rsa_r);
		tap_ok(p && strcmp(p, want) == 0, "RSA p= is the SubjectPublicKeyInfo in base64");
		free(p);
	}
	if (*ed_r) {
		uint8_t raw[64];

		p = dkim_key_public_b64(*ed_r);
		tap_ok(p && strlen(p) == 44 && b64_decode(p, raw, sizeof(raw)) == 32,
		       "Ed25519 p= is 32 bytes in base64");
		free(p);
	}
}

/* ---- signatures, verified here ---- */

/* The value of tag t in the signature field sig (malloc'd, FWS removed). */
static char *sig_tag(const char *sig, const char *t)
{
	size_t tl = strlen(t);
	const char *p = strchr(sig, ':') + 1;

	while (*p) {
		const char *e;
		char *v;
		size_t o = 0;

		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == ';')
			p++;
		e = p + strcspn(p, ";");
		if (strncmp(p, t, tl) == 0 && p[tl] == '=') {
			v = malloc((size_t)(e - p) + 1);
			for (const char *q = p + tl + 1; q < e; q++)
				if (*q != ' ' && *q != '\t' && *q != '\r' && *q != '\n')
					v[o++] = *q;
			v[o] = '\0';
			return v;
		}
		p = e;
	}
	return NULL;
}

/*
 * Verifies the one DKIM-Signature field sig (with CRLF) over msg with
 * key's public key (through dkim_key_public_b64). Returns 1 when it
 * verifies. Simple header canonicalization is taken as the field text.
 */
static int verify(const char *sig, const char *msg, size_t mlen, const struct dkim_key *key)
{
	char *c = sig_tag(sig, "c"), *h = sig_tag(sig, "h"), *bh = sig_tag(sig, "bh");
	char *b = sig_tag(sig, "b"), *pub = dkim_key_public_b64(key);
	enum dkim_canon hc, bc;
	const char *body, *hend;
	uint8_t digest[32], bhash[32], bh_raw[64], b_raw[1024], pub_raw[1024];
	size_t bhl, bl, pl, used[64] = { 0 };
	const char *seen_names[64];
	unsigned nseen = 0;
	struct sink s = { 0 };
	char buf[4096];
	SHA256_CTX sha;
	int ok = 0;

	if (!c || !h || !bh || !b || !pub)
		goto done;
	hc = strncmp(c, "relaxed", 7) == 0 ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE;
	bc = strstr(c, "/relaxed") ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE;
	hend = strstr(msg, "\r\n\r\n");
	body = hend ? hend + 4 : msg + mlen;
	hend = hend ? hend + 2 : msg + mlen;
	canon_pieces(bc, body, (size_t)(msg + mlen - body), NULL, 0, &s);
	SHA256((const uint8_t *)s.p, s.len, bhash);
	bhl = b64_decode(bh, bh_raw, sizeof(bh_raw));
	if (bhl != 32 || memcmp(bh_raw, bhash, 32) != 0) {
		printf("# body hash mismatch\n");
		goto done;
	}
	SHA256_Init(&sha);
	/* Each h= name takes the next instance from the bottom. */
	for (char *name = strtok(h, ":"); name; name = strtok(NULL, ":")) {
		const char *fields[64], *p = msg;
		size_t lens[64], nf = 0, nl = strlen(name);
		unsigned slot = 0;

		while (p < hend && nf < 64) {
			const char *e = p;

			for (;;) {
				const char *x = strstr(e, "\r\n");

				if (x == NULL || x >= hend) {
					e = hend;
					break;
				}
				e = x;
				if (e + 2 >= hend || (e[2] != ' ' && e[2] != '\t'))
					break;
				e += 2;
			}
			fields[nf] = p;
			lens[nf++] = (size_t)(e - p);
			p = e + 2;
		}
		for (slot = 0; slot < nseen && strcasecmp(seen_names[slot], name) != 0; slot++)
			;
		if (slot == nseen && nseen < 64)
			seen_names[nseen++] = name;
		for (size_t i = nf, seen = 0; i-- > 0;) {
			long l;

			if (strncasecmp(fields[i], name, nl) != 0 || (fields[i][nl] != ':' && fields[i][nl] != ' '))
				continue;
			if (seen++ < used[slot])
				continue;
			l = dkim_canon_header(hc, fields[i], lens[i], buf, sizeof(buf));
			SHA256_Update(&sha, buf, (size_t)l);
			SHA256_Update(&sha, "\r\n", 2);
			break;
		}
		used[slot]++;
	}
	{
		/* The signature field without its b= value and final CRLF. */
		const char *bv = strstr(sig, "b=");
		long l;

		while (bv && bv > sig && bv[-1] != ' ' && bv[-1] != '\t' && bv[-1] != ';')
			bv = strstr(bv + 1, "b=");
		l = dkim_canon_header(hc, sig, (size_t)(bv + 2 - sig), buf, sizeof(buf));
		SHA256_Update(&sha, buf, (size_t)l);
	}
	SHA256_Final(digest, &sha);
	bl = b64_decode(b, b_raw, sizeof(b_raw));
	pl = b64_decode(pub, pub_raw, sizeof(pub_raw));
	if (dkim_key_alg(key) == DKIM_ALG_ED25519_SHA256) {
		ok = bl == 64 && pl == 32 && ED25519_verify(digest, 32, b_raw, pub_raw);
	} else {
		CBS cbs;
		EVP_PKEY *pk;

		CBS_init(&cbs, pub_raw, pl);
		pk = EVP_parse_public_key(&cbs);
		ok = pk && RSA_verify(NID_sha256, digest, 32, b_raw, bl, EVP_PKEY_get0_RSA(pk));
		EVP_PKEY_free(pk);
	}
done:
	free(c);
	free(h);
	free(bh);
	free(b);
	free(pub);
	free(s.p);
	return ok;
}

/* Signs msg in the pieces given by cuts; returns the malloc'd fields. */
static char *sign_cut(const struct dkim_sign_spec *sp, unsigned n, const char *msg, size_t mlen,
		      const size_t *cuts, unsigned ncuts)
{
	struct iovec iov[8];
	char err[256], *out = NULL;
	size_t outlen, prev = 0;

	for (unsigned i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : mlen;

		iov[i].iov_base = (void *)(msg + prev);
		iov[i].iov_len = end - prev;
		prev = end;
	}
	if (dkim_sign(sp, n, iov, ncuts + 1, &out, &outlen, err, sizeof(err)) < 0) {
		printf("# dkim_sign: %s\n", err);
		return NULL;
	}
	if (strlen(out) != outlen) {
		free(out);
		return NULL;
	}
	return out;
}

static int lines_fit(const char *s)
{
	for (const char *p = s; *p;) {
		size_t l = strcspn(p, "\r");

		if (l > 80)
			return 0;
		p += l;
		if (*p)
			p += 2;
	}
	return 1;
}

static const char small_msg[] =
	"Received: from a by b; Fri, 4 Dec 2026 10:00:00 +0000\r\n"
	"From: Alice <alice@example.test>\r\n"
	"To: bob@example.org\r\n"
	"Subject:  Hello\r\n\tthere  \r\n"
	"To: carol@example.org\r\n"
	"\r\n"
	"Hi  Bob, \r\n\r\nbye\r\n\r\n";

static void test_sign(struct dkim_key *rsa, struct dkim_key *ed)
{
	const char *const over[] = { "From", "Subject", NULL };
	const char *const hdrs[] = { "from", "to", "subject", "x-absent", NULL };
	struct dkim_sign_spec sp[2];
	size_t mlen = strlen(small_msg);
	char *whole, *two, *split, err[256];
	int same = 1;

	memset(sp, 0, sizeof(sp));
	sp[0].key = rsa;
	sp[0].domain = "example.test";
	sp[0].selector = "sel";
	sp[0].hcanon = sp[0].bcanon = DKIM_CANON_RELAXED;
	sp[0].timestamp = 1796400000;
	sp[1] = sp[0];
	sp[1].key = ed;
	sp[1].selector = "ed";

	for (int k = 0; k < 2; k++) {
		struct dkim_key *key = k ? ed : rsa;
		const char *alg = k ? "ed25519" : "rsa";

		for (int c = 0; c < 4; c++) {
			struct dkim_sign_spec s = sp[k];

			s.hcanon = (enum dkim_canon)(c & 1);
			s.bcanon = (enum dkim_canon)(c >> 1);
			whole = sign_cut(&s, 1, small_msg, mlen, NULL, 0);
			tap_ok(whole && verify(whole, small_msg, mlen, key) && lines_fit(whole),
			       "%s c=%s/%s verifies, lines fit", alg, c & 1 ? "relaxed" : "simple",
			       c >> 1 ? "relaxed" : "simple");
			free(whole);
		}
	}
	/* Every split point, and every pair of them for Ed25519. */
	for (int k = 0; k < 2; k++) {
		whole = sign_cut(&sp[k], 1, small_msg, mlen, NULL, 0);
		for (size_t a = 0; a <= mlen && whole; a++) {
			size_t cuts[1] = { a };

			split = sign_cut(&sp[k], 1, small_msg, mlen, cuts, 1);
			if (!split || strcmp(split, whole) != 0)
				same = 0;
			free(split);
		}
		for (size_t a = 0; k == 1 && a <= mlen && whole; a += 3) {
			for (size_t b = a; b <= mlen; b++) {
				size_t cuts[2] = { a, b };

				split = sign_cut(&sp[k], 1, small_msg, mlen, cuts, 2);
				if (!split || strcmp(split, whole) != 0)
					same = 0;
				free(split);
			}
		}
		tap_ok(whole && same, "%s: every split of the message gives the same signature",
		       k ? "Ed25519" : "RSA");
		free(whole);
	}
	/* Two signatures at once, in spec order. */
	two = sign_cut(sp, 2, small_msg, mlen, NULL, 0);
	if (tap_ok(two != NULL, "two signatures in one call")) {
		char *second = strstr(two + 1, "DKIM-Signature:");

		tap_ok(second && strstr(two, "a=rsa-sha256") < second && strstr(second, "a=ed25519-sha256"),
		       "in spec order");
		tap_ok(second && verify(second, small_msg, mlen, ed), "the second verifies");
		if (second)
			*second = '\0';
		tap_ok(verify(two, small_msg, mlen, rsa), "the first verifies");
		free(two);
	}
	/* Instances bottom-up, oversigning, x=, names as given. */
	sp[1].oversign = over;
	sp[1].headers = hdrs;
	sp[1].expire = sp[1].timestamp + 3600;
	whole = sign_cut(&sp[1], 1, small_msg, mlen, NULL, 0);
	if (tap_ok(whole != NULL, "signs with a header list and oversigning")) {
		char *h = sig_tag(whole, "h"), *x = sig_tag(whole, "x"), *t = sig_tag(whole, "t");

		tap_ok(h && strcmp(h, "from:from:to:to:subject:subject") == 0, "h= is %s", h ? h : "(none)");
		tap_ok(x && strcmp(x, "1796403600") == 0 && t && strcmp(t, "1796400000") == 0, "t= and x=");
		tap_ok(verify(whole, small_msg, mlen, ed), "verifies with oversigned names");
		free(h);
		free(x);
		free(t);
		free(whole);
	}
	/* A name listed twice counts once; an oversigned name not in the
	 * list is signed too; without From there is no signature. */
	{
		const char *const dup[] = { "From", "Subject", "FROM", NULL };
		const char *const extra[] = { "Reply-To", "subject", NULL };
		const char *const nofrom[] = { "To", "Subject", NULL };
		struct dkim_sign_spec s2 = sp[1];
		char *h;

		s2.headers = dup;
		s2.oversign = extra;
		whole = sign_cut(&s2, 1, small_msg, mlen, NULL, 0);
		h = whole ? sig_tag(whole, "h") : NULL;
		tap_ok(h && strcmp(h, "From:Subject:Subject:Reply-To") == 0, "h= is %s", h ? h : "(none)");
		tap_ok(whole && verify(whole, small_msg, mlen, ed), "and verifies");
		free(h);
		free(whole);
		s2.headers = nofrom;
		s2.oversign = NULL;
		tap_ok(sign_cut(&s2, 1, small_msg, mlen, NULL, 0) == NULL, "From not signed: refused");
	}
	/* Tampering breaks it. */
	{
		char *m = strdup(small_msg);

		whole = sign_cut(&sp[0], 1, small_msg, mlen, NULL, 0);
		m[mlen - 5] ^= 1;
		tap_ok(whole && !verify(whole, m, mlen, rsa), "a changed body byte fails");
		m[mlen - 5] ^= 1;
		m[strstr(m, "Alice") - m] = 'a';
		tap_ok(whole && !verify(whole, m, mlen, rsa), "a changed From fails");
		free(m);
		free(whole);
	}
	/* No boundary: all header; default list needs From. */
	{
		const char *m = "From: a@example.test\r\nSubject: x";

		whole = sign_cut(&sp[0], 1, m, strlen(m), NULL, 0);
		tap_ok(whole && verify(whole, m, strlen(m), rsa), "a message without a body signs");
		free(whole);
	}
	{
		struct iovec iov = { (void *)"\r\nbody\r\n", 8 };
		char *out = NULL;
		size_t ol;

		sp[0].expire = 0;
		tap_ok(dkim_sign(&sp[0], 1, &iov, 1, &out, &ol, err, sizeof(err)) == -1 && out == NULL,
		       "nothing to sign is an error: %s", err);
		sp[0].expire = 5;
		iov.iov_base = (void *)small_msg;
		iov.iov_len = mlen;
		tap_ok(dkim_sign(&sp[0], 1, &iov, 1, &out, &ol, err, sizeof(err)) == -1,
		       "x= before t= is an error: %s", err);
	}
}

int main(void)
{
	const char *t = getenv("TMPDIR");
	struct dkim_key *rsa, *ed;

	snprintf(tmpdir, sizeof(tmpdir), "%s/test_dkim.%d", t ? t : "/tmp", (int)getpid());
	mkdir(tmpdir, 0700);
	test_body();
	test_header();
	test_from();
	test_keys(&rsa, &ed);
	if (rsa && ed)
		test_sign(rsa, ed);
	else
		tap_ok(0, "keys for the signing tests");
	dkim_key_free(rsa);
	dkim_key_free(ed);
	sh("rm -rf '%s'", tmpdir);
	return tap_done();
}
