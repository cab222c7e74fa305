/*
 * smtp_client_body.c: the message body out, window by window (see
 * smtp_client.c for why a copy under a short read transaction), with
 * dot-stuffing (RFC 5321 4.5.2) and the end of data.
 */
#include <errno.h>
#include <string.h>

#include "core/outbound/smtp_client_internal.h"
#include "queue/queue.h"
#include "tls/tls.h"

/* Body bytes out: encrypted under TLS, else queued (copied) for the
 * socket. Returns 0 or -errno. */
static int cl_body_put(struct smtp_client *c, const char *p, size_t n)
{
	if (n == 0)
		return 0;
	if (c->c_tls != NULL) {
		if (tls_conn_write(c->c_tls, p, n) < 0)
			return -EIO;
		cl_tls_flush(c);
		return 0;
	}
	return io_conn_write(&c->c_conn, p, n);
}

/*
 * Write the next window of the body, dot-stuffed (RFC 5321 4.5.2: a line
 * that starts with "." gets one more), and after the last window the
 * end of data. The read transaction lives only inside this call: nothing
 * written refers to the map afterwards. Returns 0 or -errno (the body is
 * gone or changed, or the output failed).
 */
int cl_body_more(struct smtp_client *c)
{
	struct queue_body b;
	const char *p, *end, *seg;
	int rc;

	if (c->c_body_off < c->c_body_len) {
		rc = queue_body_get(c->c_env->ce_queue, c->c_job->ct_id, &b);
		if (rc < 0)
			return rc;
		if (b.qb_len != c->c_body_len) {
			queue_body_release(&b);
			return -EIO;
		}
		p = seg = b.qb_data + c->c_body_off;
		end = c->c_body_len - c->c_body_off > CL_BODY_WINDOW ? p + CL_BODY_WINDOW :
		      b.qb_data + b.qb_len;
		while (p < end && rc == 0) {
			const char *lf;

			if (c->c_body_bol && *p == '.') {
				rc = cl_body_put(c, seg, (size_t)(p - seg));
				if (rc == 0)
					rc = cl_body_put(c, ".", 1);
				seg = p;
			}
			lf = memchr(p, '\n', (size_t)(end - p));
			p = lf != NULL ? lf + 1 : end;
			c->c_body_bol = lf != NULL;
		}
		if (rc == 0)
			rc = cl_body_put(c, seg, (size_t)(end - seg));
		c->c_body_off = (uint64_t)(end - b.qb_data);
		/* The end of data below needs to know how the body ends. */
		if (c->c_body_off == c->c_body_len && c->c_body_len >= 2 &&
		    end[-2] == '\r' && end[-1] == '\n')
			c->c_body_bol = true;
		else if (c->c_body_off == c->c_body_len)
			c->c_body_bol = false;
		queue_body_release(&b);
		if (rc < 0)
			return rc;
		if (c->c_body_off < c->c_body_len)
			return 0;
	}
	c->c_body_end = true;
	return c->c_body_bol ? cl_body_put(c, ".\r\n", 3) : cl_body_put(c, "\r\n.\r\n", 5);
}
