/*
 * http_resp: the HTTP/1.1 response parser of the HTTP client (RFC 9112).
 * It does no I/O: the caller feeds what arrived, in pieces of any size,
 * and gets "need more", "done" or an error. Status line, headers
 * (Content-Length, Transfer-Encoding: chunked, Connection), bodies by
 * length, chunked or up to the connection's close; interim 1xx replies
 * are skipped. Every part is bounded (struct http_resp_limits): the head
 * (status line and headers together), the number of headers and the body.
 *
 * Ownership: the parser fills a caller's struct http_resp; its hr_head and
 * hr_body are heap blocks the response owns (http_resp_free() releases
 * them) and the header slices point into hr_head. One thread.
 */
#ifndef RINGMTA_HTTP_RESP_H
#define RINGMTA_HTTP_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_RESP_HEADERS_MAX 64

/* Results of http_resp_parse(); errors are negative. */
enum {
	HTTP_RESP_MORE = 0,		/* every byte used; feed more */
	HTTP_RESP_DONE = 1,		/* a whole response; *used_r says where it ended */
	HTTP_RESP_ESTATUS = -1,		/* not an HTTP/1.x status line */
	HTTP_RESP_EHEAD = -2,		/* head too long or too many headers */
	HTTP_RESP_EHEADER = -3,		/* a malformed header line */
	HTTP_RESP_ELENGTH = -4,		/* a bad or conflicting Content-Length */
	HTTP_RESP_ECODING = -5,		/* a transfer coding other than chunked */
	HTTP_RESP_ECHUNK = -6,		/* a malformed chunk */
	HTTP_RESP_EBODY = -7,		/* body larger than allowed */
	HTTP_RESP_ETRUNC = -8,		/* the connection closed mid-response */
	HTTP_RESP_ENOMEM = -9,
};

struct http_resp_limits {
	size_t hl_head_max;		/* status line + headers, bytes */
	size_t hl_body_max;		/* decoded body, bytes */
};

struct http_header {
	const char *hh_name;		/* not NUL-terminated */
	size_t hh_name_len;
	const char *hh_value;		/* trimmed; not NUL-terminated */
	size_t hh_value_len;
};

struct http_resp {
	int hr_status;			/* 100..999 */
	unsigned hr_minor;		/* HTTP/1.<minor> */
	const char *hr_reason;		/* into hr_head; not NUL-terminated */
	size_t hr_reason_len;
	struct http_header hr_hdr[HTTP_RESP_HEADERS_MAX];
	unsigned hr_nhdr;
	char *hr_head;			/* owned: the head as received */
	size_t hr_head_len;
	char *hr_body;			/* owned, NUL-terminated (for logs); may be NULL */
	size_t hr_body_len;
	bool hr_close;			/* the server closes after this response */
};

struct http_resp_parser {
	struct http_resp_limits hp_lim;
	struct http_resp *hp_resp;
	int hp_state;
	size_t hp_head_cap, hp_body_cap;
	uint64_t hp_left;		/* body bytes or chunk bytes left */
	size_t hp_skip;			/* bytes of a chunk extension or trailer */
	unsigned hp_digits;		/* hex digits of this chunk size */
	bool hp_head_req;		/* answer to HEAD: no body */
};

/* Start a response (r is reset; anything it owned must be freed first). */
void http_resp_parser_init(struct http_resp_parser *p, struct http_resp *r,
			   const struct http_resp_limits *lim, bool head_request);
/*
 * Take len bytes. Returns HTTP_RESP_MORE (all used), HTTP_RESP_DONE with
 * *used_r the bytes that belonged to this response (the rest is the next
 * one's), or an error; after an error or DONE the parser takes nothing more.
 */
int http_resp_parse(struct http_resp_parser *p, const char *data, size_t len, size_t *used_r);
/* The connection closed: DONE for a body delimited by the close, else
 * HTTP_RESP_ETRUNC. */
int http_resp_parse_eof(struct http_resp_parser *p);
const char *http_resp_strerror(int err);

/* Value of the first header named name (case-insensitive), or NULL. */
const char *http_resp_header(const struct http_resp *r, const char *name, size_t *len_r);
/* Release what r owns and reset it. */
void http_resp_free(struct http_resp *r);

#endif
