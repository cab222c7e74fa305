/*
 * fuzz_dkim: libFuzzer target for core/dkim's parsers: the streaming body
 * canonicalizer (both modes), dkim_canon_header and dkim_from_domain.
 *
 * Input layout: byte 0 gives the number of cut octets (bits 0-2); then
 * come the cut octets, each the length of one piece; the rest is the
 * data, cut accordingly (the last piece takes what is left).
 *
 * The canonicalizer fed those pieces, each from its own exact-size heap
 * block, must give exactly what it gives for the data in one piece and
 * what the slow reference (tests/unit/dkim_ref.h) gives, and its output
 * must have the shape of its mode: relaxed never holds a tab,
 * two spaces, a space before CRLF (but on an unterminated last line) or
 * an empty line at the end; both end
 * in CRLF unless (relaxed) empty. The From domain must not depend on the
 * cuts and is lower-case.
 */
#include "core/dkim/dkim.h"
#include "tests/unit/dkim_ref.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_DKIM_MAX_PIECES 8

static void fuzz_dkim_check(bool cond)
{
	if (!cond)
		abort();
}

struct fuzz_dkim_out {
	char *p;
	size_t len, cap;
};

static void fuzz_dkim_emit(void *ctx, const void *p, size_t n)
{
	struct fuzz_dkim_out *o = ctx;

	fuzz_dkim_check(n > 0);
	if (o->len + n > o->cap) {
		o->cap = (o->len + n) * 2;
		o->p = realloc(o->p, o->cap);
		fuzz_dkim_check(o->p != NULL);
	}
	memcpy(o->p + o->len, p, n);
	o->len += n;
}

static void fuzz_dkim_body(enum dkim_canon c, const uint8_t *s, size_t n, const size_t *cut,
			   unsigned ncut, struct fuzz_dkim_out *o)
{
	struct dkim_body_canon b;
	size_t off = 0;

	o->len = 0;
	dkim_body_canon_init(&b, c, fuzz_dkim_emit, o);
	for (unsigned i = 0; i <= ncut; i++) {
		size_t len = i < ncut ? cut[i] : n - off;
		char *piece = malloc(len ? len : 1);

		memcpy(piece, s + off, len);
		dkim_body_canon_feed(&b, piece, len);
		free(piece);
		off += len;
	}
	dkim_body_canon_finish(&b);
}

static void fuzz_dkim_shape(enum dkim_canon c, const struct fuzz_dkim_out *o)
{
	const char *p = o->p;
	size_t n = o->len;

	if (c == DKIM_CANON_SIMPLE || n > 0)
		fuzz_dkim_check(n >= 2 && p[n - 2] == '\r' && p[n - 1] == '\n');
	if (c == DKIM_CANON_SIMPLE) {
		/* At most the one CRLF of an empty body at the end. */
		fuzz_dkim_check(n == 2 || n < 4 || memcmp(p + n - 4, "\r\n\r\n", 4) != 0);
		return;
	}
	fuzz_dkim_check(n < 4 || memcmp(p + n - 4, "\r\n\r\n", 4) != 0);
	fuzz_dkim_check(n != 2);
	for (size_t i = 0; i < n; i++) {
		fuzz_dkim_check(p[i] != '\t');
		if (p[i] == ' ')	/* before CRLF only on the last line */
			fuzz_dkim_check(i + 1 < n && p[i + 1] != ' ' &&
					(i + 3 == n || !(p[i + 1] == '\r' && p[i + 2] == '\n')));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t cut[FUZZ_DKIM_MAX_PIECES], off = 0, n;
	struct fuzz_dkim_out one = { 0 }, cuts = { 0 };
	struct iovec iov[FUZZ_DKIM_MAX_PIECES + 1];
	unsigned ncut, i;
	const uint8_t *s;
	char *hdr, *ref, d1[256], d2[256];
	int r1, r2;
	long l;

	if (size < 1)
		return 0;
	ncut = data[0] & 7;
	if (size < 1 + ncut)
		return 0;
	s = data + 1 + ncut;
	n = size - 1 - ncut;
	for (i = 0; i < ncut; i++) {
		cut[i] = data[1 + i];
		if (off + cut[i] > n)
			cut[i] = n - off;
		off += cut[i];
	}

	ref = malloc(n + 2);
	for (int c = 0; c < 2; c++) {
		size_t rl = dkim_ref_body((enum dkim_canon)c, (const char *)s, n, ref);

		fuzz_dkim_body((enum dkim_canon)c, s, n, NULL, 0, &one);
		fuzz_dkim_body((enum dkim_canon)c, s, n, cut, ncut, &cuts);
		fuzz_dkim_check(one.len == cuts.len && memcmp(one.p, cuts.p, one.len) == 0);
		fuzz_dkim_check(one.len == rl && memcmp(one.p, ref, rl) == 0);
		fuzz_dkim_shape((enum dkim_canon)c, &one);
	}
	free(ref);
	free(one.p);
	free(cuts.p);

	/* One header field: relaxed output fits in the input's length + 2. */
	hdr = malloc(n + 2);
	l = dkim_canon_header(DKIM_CANON_RELAXED, (const char *)s, n, hdr, n + 2);
	fuzz_dkim_check(l >= 0 && (size_t)l <= n + 2);
	l = dkim_canon_header(DKIM_CANON_SIMPLE, (const char *)s, n, hdr, n + 2);
	fuzz_dkim_check(l == (long)n);
	l = dkim_canon_header(DKIM_CANON_RELAXED, (const char *)s, n, hdr, n / 2);
	fuzz_dkim_check(l >= -1 && l <= (long)(n / 2));
	free(hdr);

	/* The From domain, whole and in pieces. */
	iov[0].iov_base = (void *)s;
	iov[0].iov_len = n;
	r1 = dkim_from_domain(iov, 1, d1, sizeof(d1));
	off = 0;
	for (i = 0; i <= ncut; i++) {
		iov[i].iov_base = (void *)(s + off);
		iov[i].iov_len = i < ncut ? cut[i] : n - off;
		off += iov[i].iov_len;
	}
	r2 = dkim_from_domain(iov, ncut + 1, d2, sizeof(d2));
	fuzz_dkim_check(r1 == r2 && r1 >= -1 && r1 <= 1);
	if (r1 == 1) {
		fuzz_dkim_check(strcmp(d1, d2) == 0 && d1[0] != '\0');
		for (const char *p = d1; *p; p++)
			fuzz_dkim_check(!(*p >= 'A' && *p <= 'Z'));
	}
	return 0;
}
