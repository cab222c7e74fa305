/*
 * smtp_client_body.c: the message body out, window by window (see
 * smtp_client.c for why a copy under a short read transaction), with
 * dot-stuffing (RFC 5321 4.5.2) and the end of data, leaving out the
 * octets of the pool header field (smtp_client_txn.ct_strip_*), and
 * right behind it, on a next hop that offers PIPELINING, the next
 * transaction's commands (cl_pipeline_offer). The
 * window arithmetic is pure (smtp_client_body_window) so it is tested
 * alone.
 */
#include <errno.h>
#include <string.h>

#include "core/outbound/smtp_client_internal.h"
#include "core/wire/smtp_scan.h"
#include "queue/queue.h"
#include "tls/tls.h"

/* Body bytes out: encrypted under TLS, else queued (copied) for the
 * socket. Returns 0 or -errno. */
static int cl_body_put(struct smtp_client *c, const char *p, size_t n)
{
	if (n == 0)
		return 0;
	c->c_sent = true;
	if (c->c_tls != NULL) {
		if (tls_conn_write(c->c_tls, p, n) < 0)
			return -EIO;
		cl_tls_flush(c);
		return 0;
	}
	return io_conn_write(&c->c_conn, p, n);
}

/* smtp_client_body_window's output: cl_body_put for the session. */
static int cl_body_sink(void *ctx, const char *p, size_t n)
{
	return cl_body_put(ctx, p, n);
}

typedef void cl_body_block_fn(const char *p, struct smtp_scan_masks *m);

/* The first dot after p that starts a line (follows an LF), or end:
 * 64 octets at a time, the last 64 or fewer a line at a time. */
static inline __attribute__((always_inline)) const char *
cl_body_next_dot_with(cl_body_block_fn *block, const char *p, const char *end)
{
	uint64_t lf_in = *p == '\n';	/* bit 0: the octet before the block is an LF */
	const char *lf;

	for (p++; end - p >= SMTP_SCAN_BLOCK; p += SMTP_SCAN_BLOCK) {
		struct smtp_scan_masks m;
		uint64_t hit;

		block(p, &m);
		hit = (m.lf << 1 | lf_in) & m.dot;
		if (hit != 0)
			return p + __builtin_ctzll(hit);
		lf_in = m.lf >> 63;
	}
	if (p < end && lf_in && *p == '.')
		return p;
	while (p < end && (lf = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		p = lf + 1;
		if (p < end && *p == '.')
			return p;
	}
	return end;
}

#ifdef SMTP_SCAN_AVX2
__attribute__((target("avx2")))
static const char *cl_body_next_dot_avx2(const char *p, const char *end)
{
	return cl_body_next_dot_with(smtp_scan_block_avx2, p, end);
}
#endif

static const char *cl_body_next_dot(const char *p, const char *end)
{
#ifdef SMTP_SCAN_AVX2
	if (__builtin_cpu_supports("avx2"))
		return cl_body_next_dot_avx2(p, end);
#endif
	return cl_body_next_dot_with(smtp_scan_block, p, end);
}

/* Write p..end dot-stuffed; *bol carries the line state between calls. */
static int cl_body_stuffed(const char *p, const char *end, bool *bol,
			   int (*put)(void *ctx, const char *p, size_t n), void *ctx)
{
	const char *seg = p, *dot;
	int rc = 0;

	if (p == end)
		return 0;
	for (dot = *bol && *p == '.' ? p : cl_body_next_dot(p, end); dot < end && rc == 0;
	     dot = cl_body_next_dot(dot, end)) {
		/* The dot goes out twice: once here, once leading the next run. */
		rc = put(ctx, seg, (size_t)(dot - seg));
		if (rc == 0)
			rc = put(ctx, ".", 1);
		seg = dot;
	}
	*bol = end[-1] == '\n';
	return rc == 0 ? put(ctx, seg, (size_t)(end - seg)) : rc;
}

int smtp_client_body_window(const char *data, uint64_t len, uint64_t off, uint64_t wend,
			    uint64_t strip_off, uint32_t strip_len, bool *bol,
			    int (*put)(void *ctx, const char *p, size_t n), void *ctx)
{
	uint64_t so = strip_off, se = strip_off + strip_len;
	int rc;

	if (strip_len == 0 || se > len || so >= wend || se <= off)
		return cl_body_stuffed(data + off, data + wend, bol, put, ctx);
	/* The stripped octets are not on the wire: the line state goes on
	 * from the octet before them to the one after. */
	rc = so > off ? cl_body_stuffed(data + off, data + so, bol, put, ctx) : 0;
	if (rc == 0 && se < wend)
		rc = cl_body_stuffed(data + se, data + wend, bol, put, ctx);
	return rc;
}

bool smtp_client_body_ends_crlf(const char *data, uint64_t len, uint64_t strip_off,
				uint32_t strip_len)
{
	uint64_t se = strip_off + strip_len, i = len;
	char tail[2];
	int n = 0;

	/* The last two octets sent, from the end, stepping over the strip
	 * range (one that does not fit the message is not applied). */
	while (i > 0 && n < 2) {
		i--;
		if (strip_len != 0 && se <= len && i >= strip_off && i < se) {
			i = strip_off;
			continue;
		}
		tail[n++] = data[i];
	}
	return n == 2 && tail[1] == '\r' && tail[0] == '\n';
}

/*
 * Write the next window of the body, dot-stuffed (RFC 5321 4.5.2: a line
 * that starts with "." gets one more), leaving out the job's strip range
 * (the pool header field), and after the last window the end of data.
 * The read transaction lives only inside this call: nothing written
 * refers to the map afterwards. Returns 0 or -errno (the body is gone or
 * changed, or the output failed).
 */
int cl_body_more(struct smtp_client *c)
{
	const struct smtp_client_txn *j = c->c_job;
	struct queue_body b;
	uint64_t wend;
	int rc;

	if (c->c_body_off < c->c_body_len) {
		rc = queue_body_get(c->c_env->ce_queue, j->ct_id, &b);
		if (rc < 0)
			return rc;
		if (b.qb_len != c->c_body_len) {
			queue_body_release(&b);
			return -EIO;
		}
		wend = c->c_body_len - c->c_body_off > CL_BODY_WINDOW ?
		       c->c_body_off + CL_BODY_WINDOW : c->c_body_len;
		rc = smtp_client_body_window(b.qb_data, b.qb_len, c->c_body_off, wend,
					     j->ct_strip_off, j->ct_strip_len, &c->c_body_bol,
					     cl_body_sink, c);
		c->c_body_off = wend;
		/* The end of data below needs to know how the body ends. */
		if (c->c_body_off == c->c_body_len)
			c->c_body_bol = smtp_client_body_ends_crlf(b.qb_data, b.qb_len,
								   j->ct_strip_off,
								   j->ct_strip_len);
		queue_body_release(&b);
		if (rc < 0)
			return rc;
		if (c->c_body_off < c->c_body_len)
			return 0;
	}
	c->c_body_end = true;
	rc = c->c_body_bol ? cl_body_put(c, ".\r\n", 3) : cl_body_put(c, "\r\n.\r\n", 5);
	if (rc == 0)
		cl_pipeline_offer(c, true);	/* the next MAIL goes out with the "." */
	return rc;
}
