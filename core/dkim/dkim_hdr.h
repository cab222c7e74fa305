/*
 * dkim_hdr.h: the header section of a message given in iovec pieces,
 * private to core/dkim. dkim_hdr_split() copies the header section (it is
 * bounded by the message) into one malloc'd buffer and says where the
 * body starts; dkim_hdr_fields() lists its fields as slices of that
 * buffer. No I/O.
 */
#ifndef RINGMTA_DKIM_HDR_H
#define RINGMTA_DKIM_HDR_H

#include <stddef.h>
#include <sys/uio.h>

struct dkim_hdr {
	char *buf;		/* malloc'd: header fields, each ending in CRLF */
	size_t len;
	unsigned body_iov;	/* the body starts in iov[body_iov] ... */
	size_t body_off;	/* ... at this offset (body_iov == iovcnt: empty) */
};

/* One header field: [start, start + len) without its final CRLF; the name
 * is [start, start + namelen), without WSP before the colon. */
struct dkim_field {
	const char *start;
	size_t len, namelen;
};

/* Returns 0, or -1 without memory. */
int dkim_hdr_split(const struct iovec *iov, unsigned iovcnt, struct dkim_hdr *h);
void dkim_hdr_free(struct dkim_hdr *h);
/* The fields of h into a malloc'd array (*fields_r, *n_r); -1 without
 * memory. */
int dkim_hdr_fields(const struct dkim_hdr *h, struct dkim_field **fields_r, size_t *n_r);
/* Whether field f has name (case-insensitive). */
int dkim_field_is(const struct dkim_field *f, const char *name, size_t namelen);

#endif
