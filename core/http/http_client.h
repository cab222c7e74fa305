/*
 * http_client: a small blocking HTTP/1.1 client for threads off the mail
 * path (the webhook senders, the admin CLI). Plain HTTP or HTTPS on the
 * engine's TLS (tls/, BoringSSL over memory BIOs on a blocking socket);
 * certificates are verified against the CA store by default. Not libcurl:
 * Debian's libcurl pulls OpenSSL in through libssh2, which must not share a
 * process with BoringSSL (README "HTTP client").
 *
 * One struct http_conn talks to one origin (scheme, host, port) and keeps
 * its connection open between requests (keep-alive) until the server
 * closes it, a request fails, or http_conn_close(). Every step is bounded:
 * the whole request (resolve, connect, TLS handshake, send, response) by
 * hc_timeout_ms, the response by struct http_resp_limits.
 *
 * Threads: a conn belongs to one thread at a time. Ownership: the conn
 * holds a reference to its TLS context; the response given to
 * http_client_request() is the caller's (http_resp_free()).
 */
#ifndef RINGMTA_HTTP_CLIENT_H
#define RINGMTA_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/http/http_resp.h"
#include "tls/tls.h"

#define HTTP_URL_HOST_MAX 255
#define HTTP_URL_PATH_MAX 2048

struct http_url {
	bool hu_https;
	char hu_host[HTTP_URL_HOST_MAX + 1];	/* no brackets for IPv6 */
	uint16_t hu_port;
	char hu_path[HTTP_URL_PATH_MAX + 1];	/* path and query; "/" at least */
};

/* "http://host[:port][/path]" or https; no user info, no fragment kept.
 * 0, or -1 with the reason in err. No I/O. */
int http_url_parse(const char *url, struct http_url *u_r, char *err, size_t errlen);

struct http_conn_opts {
	unsigned ho_timeout_ms;		/* per request, everything included */
	struct tls_ctx *ho_tls;		/* for https; NULL: a client context
					   on ho_ca_file is made */
	const char *ho_ca_file;		/* NULL or "": the system store */
	bool ho_no_verify;		/* https without verification (tests) */
	struct http_resp_limits ho_limits;	/* 0s: 16 KiB head, 1 MiB body */
};

struct http_conn {
	struct http_url hc_url;
	unsigned hc_timeout_ms;
	struct http_resp_limits hc_limits;
	struct tls_ctx *hc_tls_ctx;	/* owned reference; NULL for http */
	bool hc_verify;
	int hc_fd;			/* -1 when not connected */
	struct tls_conn hc_tls;		/* valid while connected over https */
	bool hc_tls_on;
	unsigned hc_requests;		/* on this connection */
	bool hc_timed_out;		/* the last failure was the deadline */
	char hc_error[256];		/* why the last request failed */
};

/* 0, or -1 with the reason in err (bad URL, TLS context). */
int http_conn_init(struct http_conn *c, const char *url, const struct http_conn_opts *o,
		   char *err, size_t errlen);
/* Close the connection (the next request opens a new one). */
void http_conn_close(struct http_conn *c);
/* Close and release everything. */
void http_conn_free(struct http_conn *c);

struct http_req {
	const char *hq_method;		/* "GET", "POST", ... */
	const char *hq_path;		/* NULL: the URL's path */
	const char *const *hq_headers;	/* "Name: value" lines, no CR LF */
	unsigned hq_nheaders;
	const char *hq_content_type;	/* NULL: none sent */
	const void *hq_body;
	size_t hq_body_len;
};

/*
 * Send one request and read its response into *r (reset first; the
 * caller frees it with http_resp_free()). Returns 0 with any status code,
 * or -1 with c->hc_error set (connect, TLS, timeout, a malformed reply);
 * the connection is then closed. A kept-alive connection the server had
 * closed before answering is opened again once, so a request may be sent
 * twice: callers deliver at least once.
 */
int http_client_request(struct http_conn *c, const struct http_req *q, struct http_resp *r);

#endif
