/*
 * dkim_sign: RFC 6376 signing with rsa-sha256 and ed25519-sha256 (RFC
 * 8463). The header section is copied once (dkim_hdr.c); the body is
 * streamed through one canonicalizer and SHA-256 per distinct body
 * canonicalization, never copied. Each signature's fields are built
 * folded at about 78 columns; the header hash covers the selected fields
 * bottom-up (5.4.2) and the DKIM-Signature field itself with an empty b=.
 * Ed25519 signs the SHA-256 digest of that data (RFC 8463 3).
 */
#include "core/dkim/dkim.h"
#include "core/dkim/dkim_hdr.h"
#include "core/dkim/dkim_key.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/base64.h>
#include <openssl/curve25519.h>
#include <openssl/nid.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

#define DKIM_FOLD_COL 78

const char *const dkim_default_headers[] = {
	"From", "To", "Cc", "Subject", "Date", "Message-ID", "Reply-To",
	"In-Reply-To", "References", "MIME-Version", "Content-Type",
	"Content-Transfer-Encoding", "List-Id", "List-Unsubscribe",
	"List-Unsubscribe-Post", "Feedback-ID", NULL
};

/* A growing string; a failed allocation sticks. */
struct dkim_buf {
	char *p;
	size_t len, cap;
	int nomem;
};

static void dkim_buf_put(struct dkim_buf *b, const char *s, size_t n)
{
	if (b->nomem)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t nc = b->cap ? b->cap : 1024;
		char *np;

		while (nc < b->len + n + 1)
			nc *= 2;
		np = realloc(b->p, nc);
		if (np == NULL) {
			b->nomem = 1;
			return;
		}
		b->p = np;
		b->cap = nc;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* A field being folded: col is the current line's width so far. */
struct dkim_fold {
	struct dkim_buf *b;
	size_t col;
};

/* One unbreakable unit, after a space or on a new line. */
static void dkim_fold_unit(struct dkim_fold *f, const char *s, size_t n, int space)
{
	if (f->col + (space ? 1 : 0) + n > DKIM_FOLD_COL && f->col > 8) {
		dkim_buf_put(f->b, "\r\n\t", 3);
		f->col = 8;
	} else if (space) {
		dkim_buf_put(f->b, " ", 1);
		f->col++;
	}
	dkim_buf_put(f->b, s, n);
	f->col += n;
}

static void dkim_fold_tag(struct dkim_fold *f, const char *fmt, const char *v)
{
	char tmp[512];
	int n = snprintf(tmp, sizeof(tmp), fmt, v);

	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		/* Longer than any sane d= or s=: unfolded, as is. */
		dkim_buf_put(f->b, " ", 1);
		dkim_buf_put(f->b, fmt, 2);
		dkim_buf_put(f->b, v, strlen(v));
		dkim_buf_put(f->b, ";", 1);
		f->col += strlen(v) + 4;
		return;
	}
	dkim_fold_unit(f, tmp, (size_t)n, 1);
}

/* The b= value, broken anywhere (folding inside base64 is allowed). */
static void dkim_fold_b64(struct dkim_fold *f, const char *s, size_t n)
{
	while (n > 0) {
		size_t room = f->col < DKIM_FOLD_COL ? DKIM_FOLD_COL - f->col : 0;

		if (room == 0) {
			dkim_buf_put(f->b, "\r\n\t", 3);
			f->col = 8;
			continue;
		}
		if (room > n)
			room = n;
		dkim_buf_put(f->b, s, room);
		f->col += room;
		s += room;
		n -= room;
	}
}

static void dkim_sha_emit(void *ctx, const void *p, size_t n)
{
	SHA256_Update(ctx, p, n);
}

/* Whether name (n bytes) is in list before stop (NULL: anywhere). */
static int dkim_in_list(const char *const *list, const char *const *stop, const char *name, size_t n)
{
	for (; list && *list && list != stop; list++)
		if (strlen(*list) == n && strncasecmp(*list, name, n) == 0)
			return 1;
	return 0;
}

static int dkim_sign_valid_name(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == ':' || *s == ';' || (unsigned char)*s >= 127)
			return 0;
	return 1;
}

/* Hash one field, canonicalized, into sha (with CRLF when crlf). */
static int dkim_hash_field(SHA256_CTX *sha, enum dkim_canon c, const char *p, size_t n,
			   struct dkim_buf *tmp, int crlf)
{
	long l;

	if (c == DKIM_CANON_SIMPLE) {
		SHA256_Update(sha, p, n);
	} else {
		if (tmp->cap < n + 3) {
			char *np = realloc(tmp->p, n + 3);

			if (np == NULL)
				return -1;
			tmp->p = np;
			tmp->cap = n + 3;
		}
		l = dkim_canon_header(c, p, n, tmp->p, tmp->cap);
		if (l < 0)
			return -1;
		SHA256_Update(sha, tmp->p, (size_t)l);
	}
	if (crlf)
		SHA256_Update(sha, "\r\n", 2);
	return 0;
}

/*
 * h=: each name once per instance present, the instances hashed
 * bottom-up (RFC 6376 5.4.2), and each oversigned name (also one not in
 * the list) once more. Returns how many names h= got, -1 without memory;
 * *from_r says whether From is among them.
 */
static long dkim_sign_h(const struct dkim_sign_spec *sp, const struct dkim_field *fields, size_t nf,
			SHA256_CTX *sha, struct dkim_fold *f, struct dkim_buf *tmp, int *from_r)
{
	const char *const *names = sp->headers ? sp->headers : dkim_default_headers;
	const char *const *lists[2] = { names, sp->oversign };
	long nh = 0;
	int first = 1;

	for (unsigned li = 0; li < 2; li++) {
		for (const char *const *np = lists[li]; np && *np; np++) {
			size_t nl = strlen(*np), k, count = 0;

			if (nl == 0 || nl > 200 || !dkim_sign_valid_name(*np))
				continue;
			/* Each name once: the first time it is listed. */
			if (li == 0 ? dkim_in_list(names, np, *np, nl)
				    : dkim_in_list(names, NULL, *np, nl) || dkim_in_list(lists[1], np, *np, nl))
				continue;
			for (k = nf; k-- > 0;) {
				if (!dkim_field_is(&fields[k], *np, nl))
					continue;
				if (dkim_hash_field(sha, sp->hcanon, fields[k].start, fields[k].len, tmp, 1) < 0)
					return -1;
				count++;
			}
			if (dkim_in_list(sp->oversign, NULL, *np, nl))
				count++;
			while (count-- > 0) {
				char unit[208];

				snprintf(unit, sizeof(unit), "%s%s:", first ? "h=" : "", *np);
				dkim_fold_unit(f, unit, strlen(unit), first);
				first = 0;
				nh++;
				if (nl == 4 && strncasecmp(*np, "From", 4) == 0)
					*from_r = 1;
			}
		}
	}
	return nh;
}

/* One signature into out. */
static int dkim_sign_one(const struct dkim_sign_spec *sp, const struct dkim_field *fields,
			 size_t nf, const uint8_t bh[32], struct dkim_buf *out,
			 struct dkim_buf *tmp, char *err, size_t errlen)
{
	struct dkim_fold f = { out, 0 };
	size_t start = out->len, hlen = 0;
	long nh;
	int from = 0;
	char bh64[64], num[32], *b64 = NULL;
	uint8_t digest[32], sig[512];
	size_t siglen = 0, b64len;
	SHA256_CTX sha;

	if (sp->key == NULL || !sp->domain || !sp->selector ||
	    !dkim_sign_valid_name(sp->domain) || !dkim_sign_valid_name(sp->selector)) {
		snprintf(err, errlen, "dkim: a signature needs a key, a domain and a selector");
		return -1;
	}
	if (sp->expire != 0 && sp->expire <= sp->timestamp) {
		snprintf(err, errlen, "dkim: x= must be later than t=");
		return -1;
	}
	SHA256_Init(&sha);
	dkim_buf_put(out, "DKIM-Signature:", 15);
	f.col = 15;
	dkim_fold_unit(&f, "v=1;", 4, 1);
	dkim_fold_tag(&f, "a=%s;", sp->key->alg == DKIM_ALG_ED25519_SHA256 ? "ed25519-sha256" : "rsa-sha256");
	snprintf(num, sizeof(num), "c=%s/%s;", sp->hcanon == DKIM_CANON_RELAXED ? "relaxed" : "simple",
		 sp->bcanon == DKIM_CANON_RELAXED ? "relaxed" : "simple");
	dkim_fold_unit(&f, num, strlen(num), 1);
	dkim_fold_tag(&f, "d=%s;", sp->domain);
	dkim_fold_tag(&f, "s=%s;", sp->selector);
	snprintf(num, sizeof(num), "t=%" PRIu64 ";", sp->timestamp);
	dkim_fold_unit(&f, num, strlen(num), 1);
	if (sp->expire != 0) {
		snprintf(num, sizeof(num), "x=%" PRIu64 ";", sp->expire);
		dkim_fold_unit(&f, num, strlen(num), 1);
	}

	nh = dkim_sign_h(sp, fields, nf, &sha, &f, tmp, &from);
	if (nh < 0)
		goto nomem;
	if (!from) {
		snprintf(err, errlen, "dkim: From must be signed (RFC 6376 5.4)");
		return -1;
	}
	if (out->nomem)
		goto nomem;
	out->p[out->len - 1] = ';';	/* the last name's ':' */

	memcpy(bh64, "bh=", 3);
	EVP_EncodeBlock((uint8_t *)bh64 + 3, bh, 32);
	hlen = strlen(bh64);
	bh64[hlen++] = ';';
	dkim_fold_unit(&f, bh64, hlen, 1);
	dkim_fold_unit(&f, "b=", 2, 1);
	if (out->nomem)
		goto nomem;

	/* The field itself, b= empty, no CRLF. */
	if (dkim_hash_field(&sha, sp->hcanon, out->p + start, out->len - start, tmp, 0) < 0)
		goto nomem;
	SHA256_Final(digest, &sha);
	if (sp->key->alg == DKIM_ALG_ED25519_SHA256) {
		if (!ED25519_sign(sig, digest, sizeof(digest), sp->key->ed))
			goto crypto;
		siglen = 64;
	} else {
		unsigned sl = 0;

		if (RSA_size(sp->key->rsa) > sizeof(sig) ||
		    !RSA_sign(NID_sha256, digest, sizeof(digest), sig, &sl, sp->key->rsa))
			goto crypto;
		siglen = sl;
	}
	if (!EVP_EncodedLength(&b64len, siglen) || (b64 = malloc(b64len)) == NULL)
		goto nomem;
	b64len = EVP_EncodeBlock((uint8_t *)b64, sig, siglen);
	dkim_fold_b64(&f, b64, b64len);
	free(b64);
	dkim_buf_put(out, "\r\n", 2);
	if (out->nomem)
		goto nomem;
	return 0;
nomem:
	snprintf(err, errlen, "dkim: out of memory");
	return -1;
crypto:
	snprintf(err, errlen, "dkim: signing failed");
	return -1;
}

int dkim_sign(const struct dkim_sign_spec *specs, unsigned nspecs,
	      const struct iovec *iov, unsigned iovcnt,
	      char **out_r, size_t *outlen_r, char *err, size_t errlen)
{
	struct dkim_body_canon bc[2];
	SHA256_CTX bsha[2];
	uint8_t bh[2][32];
	bool want[2] = { false, false };
	struct dkim_buf out = { 0 }, tmp = { 0 };
	struct dkim_field *fields = NULL;
	struct dkim_hdr h;
	size_t nf = 0;
	int rc = -1;

	*out_r = NULL;
	*outlen_r = 0;
	if (nspecs == 0) {
		snprintf(err, errlen, "dkim: nothing to sign");
		return -1;
	}
	if (dkim_hdr_split(iov, iovcnt, &h) < 0 || dkim_hdr_fields(&h, &fields, &nf) < 0) {
		snprintf(err, errlen, "dkim: out of memory");
		dkim_hdr_free(&h);
		return -1;
	}
	for (unsigned i = 0; i < nspecs; i++)
		want[specs[i].bcanon == DKIM_CANON_RELAXED] = true;
	for (unsigned c = 0; c < 2; c++) {
		if (!want[c])
			continue;
		SHA256_Init(&bsha[c]);
		dkim_body_canon_init(&bc[c], (enum dkim_canon)c, dkim_sha_emit, &bsha[c]);
	}
	for (unsigned i = h.body_iov; i < iovcnt; i++) {
		size_t off = i == h.body_iov ? h.body_off : 0;

		if (iov[i].iov_len <= off)
			continue;
		for (unsigned c = 0; c < 2; c++)
			if (want[c])
				dkim_body_canon_feed(&bc[c], (const char *)iov[i].iov_base + off,
						     iov[i].iov_len - off);
	}
	for (unsigned c = 0; c < 2; c++) {
		if (!want[c])
			continue;
		dkim_body_canon_finish(&bc[c]);
		SHA256_Final(bh[c], &bsha[c]);
	}
	for (unsigned i = 0; i < nspecs; i++)
		if (dkim_sign_one(&specs[i], fields, nf, bh[specs[i].bcanon == DKIM_CANON_RELAXED],
				  &out, &tmp, err, errlen) < 0)
			goto done;
	*out_r = out.p;
	*outlen_r = out.len;
	out.p = NULL;
	rc = 0;
done:
	free(out.p);
	free(tmp.p);
	free(fields);
	dkim_hdr_free(&h);
	return rc;
}
