/* qrecord.c: see qrecord.h. */
#include "queue/qrecord.h"

#include <errno.h>
#include <string.h>

#define QREC_HDR (4 + 8 + 8 + 8 + 4 + 4)	/* magic .. nrcpt */
#define QREC_STRIP (8 + 4)			/* v4: strip_off, strip_len */
#define QREC_RCPT_FIXED (1 + 1 + 2 + 8 + 2 + 2)	/* + addr + reply */
#define QREC_RCPT_DSN (1 + 2)			/* v5: notify, orcpt + its bytes */

static unsigned char *put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	return p + 2;
}

static unsigned char *put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
	return p + 4;
}

static unsigned char *put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
	return p + 8;
}

static uint16_t get16(const unsigned char *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const unsigned char *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static unsigned char *put_str(unsigned char *p, const char *s, uint16_t len)
{
	p = put16(p, len);
	if (len)
		memcpy(p, s, len);
	return p + len;
}

size_t qrecord_encoded_size(const struct qrecord *r)
{
	size_t n = QREC_HDR + 8 + r->sender_len + r->client_len + r->helo_len +
		   r->pool_len + QREC_STRIP + 1 + 2 + r->envid_len;

	for (uint32_t i = 0; i < r->nrcpt; i++)
		n += QREC_RCPT_FIXED + r->rcpts[i].addr_len + r->rcpts[i].reply_len +
		     QREC_RCPT_DSN + r->rcpts[i].orcpt_len;
	return n;
}

void qrecord_encode(const struct qrecord *r, void *buf)
{
	unsigned char *p = buf;

	p = put32(p, QRECORD_MAGIC);
	p = put64(p, r->arrival);
	p = put64(p, r->next_attempt);
	p = put64(p, r->size);
	p = put32(p, r->flags);
	p = put32(p, r->nrcpt);
	p = put_str(p, r->sender, r->sender_len);
	p = put_str(p, r->client, r->client_len);
	p = put_str(p, r->helo, r->helo_len);
	p = put_str(p, r->pool, r->pool_len);
	p = put64(p, r->strip_off);
	p = put32(p, r->strip_len);
	*p++ = r->dsn_ret;
	p = put_str(p, r->envid, r->envid_len);
	for (uint32_t i = 0; i < r->nrcpt; i++) {
		const struct qrcpt *rc = &r->rcpts[i];

		*p++ = rc->state;
		*p++ = rc->bclass;
		p = put16(p, rc->attempts);
		p = put64(p, rc->next_attempt);
		p = put_str(p, rc->addr, rc->addr_len);
		p = put_str(p, rc->reply, rc->reply_len);
		*p++ = rc->notify;
		p = put_str(p, rc->orcpt, rc->orcpt_len);
	}
}

/* A length-prefixed string at *off; -EBADMSG if it overruns. */
static int get_str(const unsigned char *b, size_t len, size_t *off,
		   const char **s_r, uint16_t *len_r)
{
	uint16_t n;

	if (len - *off < 2)
		return -EBADMSG;
	n = get16(b + *off);
	if (len - *off - 2 < n)
		return -EBADMSG;
	*s_r = (const char *)b + *off + 2;
	*len_r = n;
	*off += 2u + n;
	return 0;
}

int qrecord_decode(const void *buf, size_t len, struct qrecord *r_r)
{
	const unsigned char *b = buf;
	size_t off = QREC_HDR, roff;
	struct qrcpt rc;
	uint32_t n;

	memset(r_r, 0, sizeof(*r_r));
	if (len < QREC_HDR)
		return -EBADMSG;
	if (get32(b) == QRECORD_MAGIC)
		r_r->version = 5;
	else if (get32(b) == QRECORD_MAGIC_V4)
		r_r->version = 4;
	else if (get32(b) == QRECORD_MAGIC_V3)
		r_r->version = 3;
	else
		return -EBADMSG;
	r_r->arrival = get64(b + 4);
	r_r->next_attempt = get64(b + 12);
	r_r->size = get64(b + 20);
	r_r->flags = get32(b + 28);
	r_r->nrcpt = get32(b + 32);
	if (get_str(b, len, &off, &r_r->sender, &r_r->sender_len) < 0 ||
	    get_str(b, len, &off, &r_r->client, &r_r->client_len) < 0 ||
	    get_str(b, len, &off, &r_r->helo, &r_r->helo_len) < 0)
		return -EBADMSG;
	if (r_r->version >= 4) {
		if (get_str(b, len, &off, &r_r->pool, &r_r->pool_len) < 0 ||
		    len - off < QREC_STRIP)
			return -EBADMSG;
		r_r->strip_off = get64(b + off);
		r_r->strip_len = get32(b + off + 8);
		off += QREC_STRIP;
		if (r_r->strip_len != 0 && (r_r->strip_off > r_r->size ||
					    r_r->strip_len > r_r->size - r_r->strip_off))
			return -EBADMSG;
	} else {
		r_r->pool = "";
	}
	if (r_r->version >= 5) {
		if (len - off < 1)
			return -EBADMSG;
		r_r->dsn_ret = b[off++];
		if (r_r->dsn_ret > QRECORD_RET_HDRS ||
		    get_str(b, len, &off, &r_r->envid, &r_r->envid_len) < 0)
			return -EBADMSG;
	} else {
		r_r->envid = "";
	}
	r_r->rcpt_data = b + off;
	r_r->rcpt_len = len - off;
	/* Walk once so qrecord_rcpt_next can trust the lengths. */
	roff = 0;
	for (n = 0; n < r_r->nrcpt; n++) {
		const char *a;
		uint16_t alen;

		if (r_r->rcpt_len - roff < QREC_RCPT_FIXED - 4)
			return -EBADMSG;
		rc.state = r_r->rcpt_data[roff];
		if (rc.state > QRCPT_FAILED)
			return -EBADMSG;
		roff += QREC_RCPT_FIXED - 4;
		if (get_str(r_r->rcpt_data, r_r->rcpt_len, &roff, &a, &alen) < 0 ||
		    get_str(r_r->rcpt_data, r_r->rcpt_len, &roff, &a, &alen) < 0)
			return -EBADMSG;
		if (r_r->version >= 5) {
			if (r_r->rcpt_len - roff < 1 || r_r->rcpt_data[roff] > 0x0f)
				return -EBADMSG;
			roff++;
			if (get_str(r_r->rcpt_data, r_r->rcpt_len, &roff, &a, &alen) < 0)
				return -EBADMSG;
		}
	}
	if (roff != r_r->rcpt_len)
		return -EBADMSG;
	return 0;
}

int qrecord_rcpt_next(const struct qrecord *r, size_t *off, struct qrcpt *rc_r)
{
	const unsigned char *p;

	if (*off >= r->rcpt_len)
		return 0;
	p = r->rcpt_data + *off;
	rc_r->state = p[0];
	rc_r->bclass = r->version == 3 ? 0 : p[1];	/* v3: padding */
	rc_r->attempts = get16(p + 2);
	rc_r->next_attempt = get64(p + 4);
	rc_r->addr_len = get16(p + 12);
	rc_r->addr = (const char *)p + 14;
	rc_r->reply_len = get16(p + 14 + rc_r->addr_len);
	rc_r->reply = (const char *)p + 16 + rc_r->addr_len;
	*off += QREC_RCPT_FIXED + rc_r->addr_len + rc_r->reply_len;
	rc_r->notify = 0;
	rc_r->orcpt = NULL;
	rc_r->orcpt_len = 0;
	if (r->version >= 5) {
		p = r->rcpt_data + *off;
		rc_r->notify = p[0];
		rc_r->orcpt_len = get16(p + 1);
		rc_r->orcpt = (const char *)p + 3;
		*off += QREC_RCPT_DSN + rc_r->orcpt_len;
	}
	return 1;
}
