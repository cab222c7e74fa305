/*
 * dkim_from: the author domain (RFC 5322 From) of a message, for signing
 * decisions and DMARC. Reads the header section only; the From value is
 * unfolded and walked once: comments (nested, with quoted-pairs), quoted
 * strings, angle addresses, groups ("name: a, b;") and bare addr-specs.
 * More than one From field, more than one mailbox in it, or a mailbox
 * with a second address after its angle address, is -1.
 */
#include "core/dkim/dkim.h"
#include "core/dkim/dkim_hdr.h"

#include <stdlib.h>
#include <string.h>

/* The mailbox being read: its addr-spec, with comments and FWS removed. */
struct dkim_mbox {
	char *spec;		/* bare addr-spec text */
	size_t slen;
	char *angle;		/* text inside <>, when seen */
	size_t alen;
	int has_angle, any;
	int closed;		/* the angle address has ended */
	int ambiguous;		/* a second address after it */
};

/* The domain of addr-spec s: after its last @ outside quotes. */
static int dkim_from_domain_of(const char *s, size_t n, char *buf, size_t cap)
{
	size_t at = (size_t)-1, i, o = 0;
	int q = 0;

	for (i = 0; i < n; i++) {
		if (s[i] == '\\' && q) {
			i++;
			continue;
		}
		if (s[i] == '"')
			q = !q;
		else if (s[i] == '@' && !q)
			at = i;
		else if (s[i] == ':' && !q)
			at = (size_t)-1;	/* a source route ends here */
	}
	if (at == (size_t)-1 || at + 1 >= n)
		return 0;
	for (i = at + 1; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '@' || c == '"' || c == ',' || c == '<' || c == '>' || c < ' ' || c == 127)
			return 0;
		if (o + 1 >= cap)
			return 0;
		buf[o++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	if (o > 1 && buf[o - 1] == '.')
		o--;		/* an absolute name's final dot */
	buf[o] = '\0';
	return o > 0;
}

/* The end of a mailbox: counts it when it holds anything, and keeps
 * the first one's domain. */
static int dkim_from_end(struct dkim_mbox *m, int *count, int *found, char *buf, size_t cap)
{
	if (!m->any)
		return 0;
	/* Two addresses in one mailbox: no single author (as two mailboxes). */
	*count += m->ambiguous ? 2 : 1;
	if (*count == 1) {
		if (m->has_angle)
			*found = dkim_from_domain_of(m->angle, m->alen, buf, cap);
		else
			*found = dkim_from_domain_of(m->spec, m->slen, buf, cap);
	}
	m->slen = m->alen = 0;
	m->has_angle = m->any = m->closed = m->ambiguous = 0;
	return 0;
}

/* Walks value v (n bytes, unfolded or not). Returns as dkim_from_domain. */
static int dkim_from_parse(const char *v, size_t n, char *buf, size_t cap)
{
	struct dkim_mbox m = { 0 };
	int count = 0, found = 0, in_angle = 0, in_group = 0;
	size_t i;

	m.spec = malloc(n + 1);
	m.angle = malloc(n + 1);
	if (m.spec == NULL || m.angle == NULL) {
		free(m.spec);
		free(m.angle);
		return 0;
	}
	for (i = 0; i < n; i++) {
		char c = v[i];

		if (c == '(') {
			int depth = 1;

			for (i++; i < n && depth > 0; i++) {
				if (v[i] == '\\')
					i++;
				else if (v[i] == '(')
					depth++;
				else if (v[i] == ')')
					depth--;
			}
			i--;
			continue;
		}
		if (c == '"') {
			size_t s = i;

			for (i++; i < n && v[i] != '"'; i++)
				if (v[i] == '\\')
					i++;
			if (i >= n)
				i = n - 1;
			m.any = 1;
			if (m.closed)
				m.ambiguous = 1;
			if (in_angle) {
				memcpy(m.angle + m.alen, v + s, i - s + 1);
				m.alen += i - s + 1;
			} else {
				memcpy(m.spec + m.slen, v + s, i - s + 1);
				m.slen += i - s + 1;
			}
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (in_angle) {
			if (c == '>') {
				in_angle = 0;
				m.closed = 1;
			}
			else
				m.angle[m.alen++] = c;
			continue;
		}
		if (c == '<') {
			if (m.has_angle)
				m.ambiguous = 1;
			in_angle = 1;
			m.has_angle = 1;
			m.any = 1;
			m.alen = 0;
			continue;
		}
		if (c == ':' && !in_group && !m.has_angle && memchr(m.spec, '@', m.slen) == NULL) {
			/* A group's display name: not a mailbox. */
			in_group = 1;
			m.slen = 0;
			m.any = 0;
			continue;
		}
		if (c == ',' || (c == ';' && in_group)) {
			dkim_from_end(&m, &count, &found, buf, cap);
			if (c == ';')
				in_group = 0;
			continue;
		}
		m.spec[m.slen++] = c;
		m.any = 1;
		if (m.closed)
			m.ambiguous = 1;
	}
	dkim_from_end(&m, &count, &found, buf, cap);
	free(m.spec);
	free(m.angle);
	if (count > 1)
		return -1;
	return found ? 1 : 0;
}

int dkim_from_domain(const struct iovec *iov, unsigned iovcnt, char *buf, size_t cap)
{
	struct dkim_field *fields = NULL, *from = NULL;
	struct dkim_hdr h;
	size_t nf = 0;
	int rc = 0;

	if (cap > 0)
		buf[0] = '\0';
	if (dkim_hdr_split(iov, iovcnt, &h) < 0)
		return 0;
	if (dkim_hdr_fields(&h, &fields, &nf) < 0) {
		dkim_hdr_free(&h);
		return 0;
	}
	for (size_t i = 0; i < nf; i++) {
		if (!dkim_field_is(&fields[i], "From", 4))
			continue;
		if (from != NULL) {
			rc = -1;
			goto done;
		}
		from = &fields[i];
	}
	if (from != NULL) {
		const char *colon = memchr(from->start, ':', from->len);
		size_t off = (size_t)(colon - from->start) + 1;

		rc = dkim_from_parse(colon + 1, from->len - off, buf, cap);
		if (rc != 1 && cap > 0)
			buf[0] = '\0';
	}
done:
	free(fields);
	dkim_hdr_free(&h);
	return rc;
}
