/*
 * dkim_hdr: finds the header/body boundary of a message in iovec pieces
 * (the first empty line), copies the header section into one buffer and
 * splits it into fields. The body is never copied.
 */
#include "core/dkim/dkim_hdr.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int dkim_hdr_append(struct dkim_hdr *h, size_t *cap, const char *p, size_t n)
{
	if (h->len + n > *cap) {
		size_t nc = *cap ? *cap : 4096;
		char *nb;

		while (nc < h->len + n)
			nc *= 2;
		nb = realloc(h->buf, nc);
		if (nb == NULL)
			return -1;
		h->buf = nb;
		*cap = nc;
	}
	memcpy(h->buf + h->len, p, n);
	h->len += n;
	return 0;
}

int dkim_hdr_split(const struct iovec *iov, unsigned iovcnt, struct dkim_hdr *h)
{
	size_t cap = 0;

	memset(h, 0, sizeof(*h));
	for (unsigned i = 0; i < iovcnt; i++) {
		const char *p = iov[i].iov_base;
		size_t n = iov[i].iov_len, pos = 0;

		while (pos < n) {
			const char *q = memchr(p + pos, '\n', n - pos);
			size_t end = q ? (size_t)(q - p) + 1 : n;

			if (dkim_hdr_append(h, &cap, p + pos, end - pos) < 0)
				goto nomem;
			pos = end;
			if (q == NULL)
				break;
			/* An empty line ends the header section. */
			if ((h->len == 2 && memcmp(h->buf, "\r\n", 2) == 0) ||
			    (h->len >= 4 && memcmp(h->buf + h->len - 4, "\r\n\r\n", 4) == 0)) {
				h->len -= 2;
				if (pos == n) {
					h->body_iov = i + 1;
					h->body_off = 0;
				} else {
					h->body_iov = i;
					h->body_off = pos;
				}
				return 0;
			}
		}
	}
	/* No boundary: all header, empty body. */
	h->body_iov = iovcnt;
	h->body_off = 0;
	if (h->buf == NULL)
		h->buf = malloc(1);
	return h->buf ? 0 : -1;
nomem:
	free(h->buf);
	h->buf = NULL;
	return -1;
}

void dkim_hdr_free(struct dkim_hdr *h)
{
	free(h->buf);
	h->buf = NULL;
}

static size_t dkim_field_namelen(const char *p, size_t len)
{
	const char *c = memchr(p, ':', len);
	size_t n = c ? (size_t)(c - p) : len;

	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	return n;
}

int dkim_hdr_fields(const struct dkim_hdr *h, struct dkim_field **fields_r, size_t *n_r)
{
	struct dkim_field *f = NULL;
	size_t n = 0, cap = 0, pos = 0, start = 0;
	int open = 0;

	while (pos < h->len) {
		const char *q = memchr(h->buf + pos, '\n', h->len - pos);
		size_t next = q ? (size_t)(q - h->buf) + 1 : h->len;
		int cont = h->buf[pos] == ' ' || h->buf[pos] == '\t';

		if (!cont || !open) {
			if (open)
				f[n - 1].len = pos - start;
			if (n == cap) {
				struct dkim_field *nf;

				cap = cap ? cap * 2 : 32;
				nf = realloc(f, cap * sizeof(*f));
				if (nf == NULL) {
					free(f);
					return -1;
				}
				f = nf;
			}
			f[n].start = h->buf + pos;
			n++;
			start = pos;
			open = 1;
		}
		pos = next;
	}
	if (open)
		f[n - 1].len = pos - start;
	for (size_t i = 0; i < n; i++) {
		/* Without the final CRLF (or a lone LF). */
		size_t l = f[i].len;

		if (l > 0 && f[i].start[l - 1] == '\n')
			l--;
		if (l > 0 && f[i].start[l - 1] == '\r')
			l--;
		f[i].len = l;
		f[i].namelen = dkim_field_namelen(f[i].start, l);
	}
	*fields_r = f;
	*n_r = n;
	return 0;
}

int dkim_field_is(const struct dkim_field *f, const char *name, size_t namelen)
{
	return f->namelen == namelen && strncasecmp(f->start, name, namelen) == 0 &&
	       memchr(f->start, ':', f->len) != NULL;
}
