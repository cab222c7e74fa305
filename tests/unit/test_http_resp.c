/*
 * test_http_resp: table-driven tests of the HTTP response parser
 * (core/http/http_resp.c) and the URL parser (core/http/http_url.c).
 *
 * Every response is fed whole, split in two at every offset and one
 * octet at a time, each piece in its own exact-size heap block; the
 * results must agree.
 */
#include "core/http/http_client.h"
#include "core/http/http_resp.h"
#include "tests/unit/tap.h"

#include <stdlib.h>
#include <string.h>

struct resp_case {
	const char *name;
	const char *in;
	bool eof;		/* the connection closes after in */
	int ret;		/* DONE or an error */
	int status;
	const char *body;	/* NULL: do not check */
	size_t used;		/* bytes of the response; 0: all of in */
	bool close;
};

static const struct resp_case resp_cases[] = {
	{ "length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false,
	  HTTP_RESP_DONE, 200, "hello", 0, false },
	{ "length with the next response after it",
	  "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 500 X\r\n", false,
	  HTTP_RESP_DONE, 200, "hi", 40, false },
	{ "chunked with extension and trailer",
	  "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n", false,
	  HTTP_RESP_DONE, 201, "hello world", 0, false },
	{ "chunked, LF only", "HTTP/1.1 200 OK\ntransfer-encoding: Chunked\n\n"
	  "a\n0123456789\n0\n\n", false, HTTP_RESP_DONE, 200, "0123456789", 0, false },
	{ "no length: up to the close", "HTTP/1.1 200 OK\r\n\r\nall of it", true,
	  HTTP_RESP_DONE, 200, "all of it", 0, true },
	{ "204 has no body", "HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n", false,
	  HTTP_RESP_DONE, 204, "", 0, false },
	{ "100 continue skipped", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"
	  "Content-Length: 0\r\nConnection: close\r\n\r\n", false, HTTP_RESP_DONE, 200, "", 0, true },
	{ "HTTP/1.0 closes", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", false,
	  HTTP_RESP_DONE, 200, "x", 0, true },
	{ "no reason phrase", "HTTP/1.1 503\r\nContent-Length: 0\r\n\r\n", false,
	  HTTP_RESP_DONE, 503, "", 0, false },
	{ "equal repeated lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
	  "Content-Length: 1\r\n\r\nx", false, HTTP_RESP_DONE, 200, "x", 0, false },
	{ "not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", false, HTTP_RESP_ESTATUS, 0, NULL, 0, false },
	{ "HTTP/2 status", "HTTP/2 200 OK\r\n\r\n", false, HTTP_RESP_ESTATUS, 0, NULL, 0, false },
	{ "101", "HTTP/1.1 101 Switching\r\n\r\n", false, HTTP_RESP_ESTATUS, 0, NULL, 0, false },
	{ "obs-fold", "HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", false, HTTP_RESP_EHEADER,
	  0, NULL, 0, false },
	{ "space before colon", "HTTP/1.1 200 OK\r\nA : b\r\n\r\n", false, HTTP_RESP_EHEADER,
	  0, NULL, 0, false },
	{ "conflicting lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
	  "Content-Length: 2\r\n\r\nxx", false, HTTP_RESP_ELENGTH, 0, NULL, 0, false },
	{ "signed length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false,
	  HTTP_RESP_ELENGTH, 0, NULL, 0, false },
	{ "length and chunked", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
	  "Transfer-Encoding: chunked\r\n\r\n", false, HTTP_RESP_ELENGTH, 0, NULL, 0, false },
	{ "gzip coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false,
	  HTTP_RESP_ECODING, 0, NULL, 0, false },
	{ "bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	  false, HTTP_RESP_ECHUNK, 0, NULL, 0, false },
	{ "huge chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "ffffffffffffffffff\r\n", false, HTTP_RESP_ECHUNK, 0, NULL, 0, false },
	{ "chunk too large for the limit", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "1000\r\n", false, HTTP_RESP_EBODY, 0, NULL, 0, false },
	{ "chunk without CRLF after data", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "1\r\nab\r\n", false, HTTP_RESP_ECHUNK, 0, NULL, 0, false },
	{ "length over the limit", "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", false,
	  HTTP_RESP_EBODY, 0, NULL, 0, false },
	{ "truncated body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", true,
	  HTTP_RESP_ETRUNC, 0, NULL, 0, false },
	{ "truncated head", "HTTP/1.1 200 OK\r\nContent-", true, HTTP_RESP_ETRUNC, 0, NULL, 0,
	  false },
	{ "control in header value", "HTTP/1.1 200 OK\r\nA: b\x01\r\n\r\n", false,
	  HTTP_RESP_EHEADER, 0, NULL, 0, false },
};

static const struct http_resp_limits test_lim = { 256, 1024 };

/* Feed in[0..n) cut at cut (0: whole; (size_t)-1: one octet at a time). */
static int test_feed(const struct resp_case *c, size_t cut, struct http_resp *r, size_t *used_r)
{
	struct http_resp_parser p;
	size_t n = strlen(c->in), pos = 0;
	int rc = HTTP_RESP_MORE;

	http_resp_parser_init(&p, r, &test_lim, false);
	*used_r = 0;
	while (pos < n) {
		size_t len = cut == (size_t)-1 ? 1 : (cut > pos && cut < n ? cut - pos : n - pos);
		char *piece = malloc(len);
		size_t used = 0;

		memcpy(piece, c->in + pos, len);
		rc = http_resp_parse(&p, piece, len, &used);
		free(piece);
		*used_r = pos + used;
		if (rc != HTTP_RESP_MORE)
			return rc;
		if (used != len)
			return -100;	/* MORE must take everything */
		pos += len;
	}
	if (c->eof)
		rc = http_resp_parse_eof(&p);
	return rc;
}

static void test_resp_case(const struct resp_case *c)
{
	size_t n = strlen(c->in), used;
	bool agree = true;
	struct http_resp r;
	int rc = test_feed(c, 0, &r, &used);

	tap_ok(rc == c->ret, "%s: result %d (want %d)", c->name, rc, c->ret);
	if (rc == HTTP_RESP_DONE) {
		tap_ok(r.hr_status == c->status, "%s: status %d", c->name, r.hr_status);
		tap_ok(c->body == NULL || (r.hr_body_len == strlen(c->body) &&
					   memcmp(r.hr_body ? r.hr_body : "", c->body,
						  r.hr_body_len) == 0),
		       "%s: body", c->name);
		tap_ok(used == (c->used ? c->used : n), "%s: used %zu", c->name, used);
		tap_ok(r.hr_close == c->close, "%s: close %d", c->name, r.hr_close);
	}
	http_resp_free(&r);
	for (size_t cut = 1; cut <= n; cut++) {
		size_t cut_used;
		int crc = test_feed(c, cut == n ? (size_t)-1 : cut, &r, &cut_used);

		if (crc != rc || (rc == HTTP_RESP_DONE && cut_used != used))
			agree = false;
		http_resp_free(&r);
	}
	tap_ok(agree, "%s: split anywhere, same result", c->name);
}

static void test_headers(void)
{
	static const char in[] = "HTTP/1.1 200 OK\r\nX-A:  v a \r\nConnection: keep-alive, Close"
				 "\r\nContent-Length: 0\r\n\r\n";
	struct http_resp_parser p;
	struct http_resp r;
	size_t used, len = 0;
	const char *v;

	http_resp_parser_init(&p, &r, &test_lim, false);
	tap_ok(http_resp_parse(&p, in, sizeof(in) - 1, &used) == HTTP_RESP_DONE, "headers: done");
	v = http_resp_header(&r, "x-a", &len);
	tap_ok(v != NULL && len == 3 && memcmp(v, "v a", 3) == 0, "headers: value trimmed");
	tap_ok(r.hr_close, "headers: close in a token list");
	tap_ok(http_resp_header(&r, "x-b", NULL) == NULL, "headers: absent");
	http_resp_free(&r);
}

static void test_head_limit(void)
{
	struct http_resp_parser p;
	struct http_resp r;
	static const char head_resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n";
	char big[400];
	size_t used;

	memset(big, 'a', sizeof(big));
	memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 21);
	http_resp_parser_init(&p, &r, &test_lim, false);
	tap_ok(http_resp_parse(&p, big, sizeof(big), &used) == HTTP_RESP_EHEAD,
	       "a head past the limit is refused");
	http_resp_free(&r);
	http_resp_parser_init(&p, &r, &test_lim, true);
	tap_ok(http_resp_parse(&p, head_resp, strlen(head_resp), &used) ==
	       HTTP_RESP_DONE, "HEAD: no body whatever the length says");
	http_resp_free(&r);
}

struct url_case {
	const char *in;
	int ret;
	bool https;
	const char *host;
	unsigned port;
	const char *path;
};

static const struct url_case url_cases[] = {
	{ "http://127.0.0.1:8080/hook?a=b#frag", 0, false, "127.0.0.1", 8080, "/hook?a=b" },
	{ "https://example.org", 0, true, "example.org", 443, "/" },
	{ "HTTP://h?q", 0, false, "h", 80, "/?q" },
	{ "http://[::1]:9/x", 0, false, "::1", 9, "/x" },
	{ "ftp://h/", -1, false, NULL, 0, NULL },
	{ "http://u:p@h/", -1, false, NULL, 0, NULL },
	{ "http://h:0/", -1, false, NULL, 0, NULL },
	{ "http://h:65536/", -1, false, NULL, 0, NULL },
	{ "http://h:/", -1, false, NULL, 0, NULL },
	{ "http:///x", -1, false, NULL, 0, NULL },
	{ "http://[::1/x", -1, false, NULL, 0, NULL },
	{ "http://h/a b", -1, false, NULL, 0, NULL },
	{ "http://h/\r\nX: y", -1, false, NULL, 0, NULL },
};

static void test_urls(void)
{
	for (size_t i = 0; i < sizeof(url_cases) / sizeof(url_cases[0]); i++) {
		const struct url_case *c = &url_cases[i];
		struct http_url u;
		char err[300];
		int rc = http_url_parse(c->in, &u, err, sizeof(err));

		if (c->ret < 0) {
			tap_ok(rc < 0 && err[0] != '\0', "url case %zu refused", i);
			continue;
		}
		tap_ok(rc == 0 && u.hu_https == c->https && strcmp(u.hu_host, c->host) == 0 &&
		       u.hu_port == c->port && strcmp(u.hu_path, c->path) == 0,
		       "url %s -> %s %u %s", c->in, u.hu_host, u.hu_port, u.hu_path);
	}
}

int main(void)
{
	for (size_t i = 0; i < sizeof(resp_cases) / sizeof(resp_cases[0]); i++)
		test_resp_case(&resp_cases[i]);
	test_headers();
	test_head_limit();
	test_urls();
	return tap_done();
}
