/*
 * http_client.c: see http_client.h. Sockets are non-blocking and every
 * wait is a poll() against the request's deadline, so no step can hang.
 * TLS runs the engine's memory-BIO connection (tls/tls.h): ciphertext
 * goes between the socket and the engine here.
 */
#include "core/http/http_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HC_IO_CHUNK 16384
#define HC_HEAD_MAX (16u << 10)
#define HC_BODY_MAX (1u << 20)

static uint64_t hc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int hc_fail(struct http_conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->hc_error, sizeof(c->hc_error), fmt, ap);
	va_end(ap);
	return -1;
}

int http_conn_init(struct http_conn *c, const char *url, const struct http_conn_opts *o,
		   char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	c->hc_fd = -1;
	if (http_url_parse(url, &c->hc_url, err, errlen) < 0)
		return -1;
	c->hc_timeout_ms = o->ho_timeout_ms ? o->ho_timeout_ms : 10000;
	c->hc_limits = o->ho_limits;
	if (c->hc_limits.hl_head_max == 0)
		c->hc_limits.hl_head_max = HC_HEAD_MAX;
	if (c->hc_limits.hl_body_max == 0)
		c->hc_limits.hl_body_max = HC_BODY_MAX;
	c->hc_verify = !o->ho_no_verify;
	if (c->hc_url.hu_https) {
		if (o->ho_tls != NULL)
			c->hc_tls_ctx = tls_ctx_ref(o->ho_tls);
		else if (tls_ctx_client_new(&c->hc_tls_ctx, o->ho_ca_file, err, errlen) < 0)
			return -1;
	}
	return 0;
}

void http_conn_close(struct http_conn *c)
{
	if (c->hc_tls_on) {
		tls_conn_free(&c->hc_tls);
		c->hc_tls_on = false;
	}
	if (c->hc_fd >= 0)
		close(c->hc_fd);
	c->hc_fd = -1;
	c->hc_requests = 0;
}

void http_conn_free(struct http_conn *c)
{
	http_conn_close(c);
	tls_ctx_unref(&c->hc_tls_ctx);
}

/* Wait for events on the socket until the deadline: 0, or -1 (timeout). */
static int hc_wait(struct http_conn *c, short events, uint64_t deadline)
{
	for (;;) {
		uint64_t now = hc_now_ms();
		struct pollfd pfd = { c->hc_fd, events, 0 };
		int n;

		if (now >= deadline) {
			c->hc_timed_out = true;
			return hc_fail(c, "timed out after %u ms", c->hc_timeout_ms);
		}
		n = poll(&pfd, 1, (int)(deadline - now));
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return hc_fail(c, "poll: %s", strerror(errno));
	}
}

static int hc_connect_one(struct http_conn *c, const struct addrinfo *ai, uint64_t deadline)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1, soerr = 0;
	socklen_t sl = sizeof(soerr);

	if (fd < 0)
		return hc_fail(c, "socket: %s", strerror(errno));
	c->hc_fd = fd;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
		hc_fail(c, "connect to %s port %u: %s", c->hc_url.hu_host, c->hc_url.hu_port,
			strerror(errno));
		goto fail;
	}
	if (hc_wait(c, POLLOUT, deadline) < 0)
		goto fail;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr != 0) {
		hc_fail(c, "connect to %s port %u: %s", c->hc_url.hu_host, c->hc_url.hu_port,
			strerror(soerr ? soerr : errno));
		goto fail;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
fail:
	close(fd);
	c->hc_fd = -1;
	return -1;
}

/* Send the engine's ciphertext (or nothing for http). */
static int hc_send_raw(struct http_conn *c, const char *p, size_t len, uint64_t deadline)
{
	while (len > 0) {
		ssize_t n = send(c->hc_fd, p, len, MSG_NOSIGNAL);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (hc_wait(c, POLLOUT, deadline) < 0)
				return -1;
			continue;
		}
		return hc_fail(c, "send: %s", n < 0 ? strerror(errno) : "nothing sent");
	}
	return 0;
}

static int hc_tls_flush(struct http_conn *c, uint64_t deadline)
{
	char buf[HC_IO_CHUNK];
	size_t n;

	while ((n = tls_conn_take(&c->hc_tls, buf, sizeof(buf))) > 0)
		if (hc_send_raw(c, buf, n, deadline) < 0)
			return -1;
	return 0;
}

/* Bytes from the socket: > 0, 0 at the peer's close, -1 on error. */
static ssize_t hc_recv_raw(struct http_conn *c, char *buf, size_t len, uint64_t deadline)
{
	for (;;) {
		ssize_t n = recv(c->hc_fd, buf, len, 0);

		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return hc_fail(c, "recv: %s", strerror(errno));
		if (hc_wait(c, POLLIN, deadline) < 0)
			return -1;
	}
}

/* Plaintext in: > 0 bytes, 0 at the peer's close, -1 on error. */
static ssize_t hc_read(struct http_conn *c, char *buf, size_t len, uint64_t deadline)
{
	char raw[HC_IO_CHUNK];

	if (!c->hc_tls_on)
		return hc_recv_raw(c, buf, len, deadline);
	for (;;) {
		int n = tls_conn_read(&c->hc_tls, buf, len);
		ssize_t r;

		if (hc_tls_flush(c, deadline) < 0)
			return -1;
		if (n > 0)
			return n;
		if (n < 0)
			return hc_fail(c, "TLS: %s", c->hc_tls.tc_error);
		if (c->hc_tls.tc_closed)
			return 0;
		r = hc_recv_raw(c, raw, sizeof(raw), deadline);
		if (r <= 0)
			return r;
		if (tls_conn_feed(&c->hc_tls, raw, (size_t)r) < 0)
			return hc_fail(c, "TLS: out of memory");
	}
}

static int hc_write(struct http_conn *c, const void *p, size_t len, uint64_t deadline)
{
	if (!c->hc_tls_on)
		return hc_send_raw(c, p, len, deadline);
	if (tls_conn_write(&c->hc_tls, p, len) < 0)
		return hc_fail(c, "TLS: %s", c->hc_tls.tc_error);
	return hc_tls_flush(c, deadline);
}

static bool hc_is_ip(const char *host)
{
	unsigned char a[16];

	return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

static int hc_handshake(struct http_conn *c, uint64_t deadline)
{
	const char *host = c->hc_url.hu_host;
	char raw[HC_IO_CHUNK], tmp[16];

	if (tls_conn_init(&c->hc_tls, c->hc_tls_ctx, false, hc_is_ip(host) ? NULL : host,
			  c->hc_verify ? host : NULL) < 0)
		return hc_fail(c, "TLS setup failed");
	c->hc_tls_on = true;
	for (;;) {
		int n = tls_conn_read(&c->hc_tls, tmp, sizeof(tmp));
		ssize_t r;

		if (hc_tls_flush(c, deadline) < 0)
			return -1;
		if (c->hc_tls.tc_done)
			return 0;
		if (n < 0)
			return hc_fail(c, "TLS handshake with %s failed: %s", host,
				       c->hc_tls.tc_error);
		r = hc_recv_raw(c, raw, sizeof(raw), deadline);
		if (r == 0)
			return hc_fail(c, "TLS handshake with %s: connection closed", host);
		if (r < 0)
			return -1;
		if (tls_conn_feed(&c->hc_tls, raw, (size_t)r) < 0)
			return hc_fail(c, "TLS: out of memory");
	}
}

/* Resolve and connect (each address in turn), then TLS for https. */
static int hc_open(struct http_conn *c, uint64_t deadline)
{
	struct addrinfo hints = { 0 }, *res = NULL;
	char port[8];
	int rc;

	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	snprintf(port, sizeof(port), "%u", c->hc_url.hu_port);
	rc = getaddrinfo(c->hc_url.hu_host, port, &hints, &res);
	if (rc != 0)
		return hc_fail(c, "resolve %s: %s", c->hc_url.hu_host, gai_strerror(rc));
	rc = -1;
	for (const struct addrinfo *ai = res; ai != NULL && rc < 0; ai = ai->ai_next)
		rc = hc_connect_one(c, ai, deadline);
	freeaddrinfo(res);
	if (rc < 0)
		return -1;
	if (c->hc_url.hu_https && hc_handshake(c, deadline) < 0) {
		http_conn_close(c);
		return -1;
	}
	return 0;
}

/* The request head: line, Host, framing, the caller's headers. */
static char *hc_head(const struct http_conn *c, const struct http_req *q, size_t *len_r)
{
	const struct http_url *u = &c->hc_url;
	bool v6 = strchr(u->hu_host, ':') != NULL;
	bool dflt = u->hu_port == (u->hu_https ? 443 : 80);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		return NULL;
	fprintf(f, "%s %s HTTP/1.1\r\nHost: %s%s%s", q->hq_method,
		q->hq_path ? q->hq_path : u->hu_path, v6 ? "[" : "", u->hu_host, v6 ? "]" : "");
	if (!dflt)
		fprintf(f, ":%u", u->hu_port);
	fprintf(f, "\r\nUser-Agent: ringmta\r\n");
	if (q->hq_body != NULL || strcmp(q->hq_method, "POST") == 0 ||
	    strcmp(q->hq_method, "PUT") == 0)
		fprintf(f, "Content-Length: %zu\r\n", q->hq_body_len);
	if (q->hq_content_type != NULL)
		fprintf(f, "Content-Type: %s\r\n", q->hq_content_type);
	for (unsigned i = 0; i < q->hq_nheaders; i++)
		fprintf(f, "%s\r\n", q->hq_headers[i]);
	fputs("\r\n", f);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	*len_r = len;
	return buf;
}

/*
 * One try on the current connection. *fresh_r: nothing of a response came
 * back and the connection was a reused one (the server may have closed
 * it while idle), so one more try on a new connection is in order.
 */
static int hc_try(struct http_conn *c, const struct http_req *q, struct http_resp *r,
		  uint64_t deadline, bool *fresh_r)
{
	struct http_resp_parser p;
	char buf[HC_IO_CHUNK];
	bool reused = c->hc_fd >= 0, any = false;
	size_t hlen, used;
	char *head;
	int rc;

	*fresh_r = false;
	if (!reused && hc_open(c, deadline) < 0)
		return -1;
	head = hc_head(c, q, &hlen);
	if (head == NULL)
		return hc_fail(c, "out of memory");
	rc = hc_write(c, head, hlen, deadline);
	free(head);
	if (rc == 0 && q->hq_body_len > 0)
		rc = hc_write(c, q->hq_body, q->hq_body_len, deadline);
	if (rc < 0) {
		*fresh_r = reused;
		return -1;
	}
	http_resp_parser_init(&p, r, &c->hc_limits, strcmp(q->hq_method, "HEAD") == 0);
	for (;;) {
		ssize_t n = hc_read(c, buf, sizeof(buf), deadline);

		if (n < 0) {
			*fresh_r = reused && !any && !c->hc_timed_out;
			return -1;
		}
		if (n == 0) {
			rc = http_resp_parse_eof(&p);
			if (rc == HTTP_RESP_DONE) {
				r->hr_close = true;
				return 0;
			}
			*fresh_r = reused && !any;
			return hc_fail(c, "%s", http_resp_strerror(rc));
		}
		any = true;
		rc = http_resp_parse(&p, buf, (size_t)n, &used);
		if (rc == HTTP_RESP_DONE) {
			/* More than was asked for: not a connection to reuse. */
			if (used < (size_t)n)
				r->hr_close = true;
			return 0;
		}
		if (rc < 0)
			return hc_fail(c, "bad response from %s: %s", c->hc_url.hu_host,
				       http_resp_strerror(rc));
	}
}

int http_client_request(struct http_conn *c, const struct http_req *q, struct http_resp *r)
{
	uint64_t deadline = hc_now_ms() + c->hc_timeout_ms;
	bool fresh;
	int rc;

	c->hc_error[0] = '\0';
	c->hc_timed_out = false;
	memset(r, 0, sizeof(*r));
	rc = hc_try(c, q, r, deadline, &fresh);
	if (rc < 0 && fresh) {
		http_resp_free(r);
		http_conn_close(c);
		c->hc_error[0] = '\0';
		rc = hc_try(c, q, r, deadline, &fresh);
	}
	if (rc < 0) {
		http_resp_free(r);
		http_conn_close(c);
		return -1;
	}
	c->hc_requests++;
	if (r->hr_close)
		http_conn_close(c);
	return 0;
}
