/*
 * http_resp.c: see http_resp.h. The head is gathered whole (it is
 * bounded) and parsed in one pass; the body is a small state machine so
 * that chunk sizes, extensions and trailers may arrive split anywhere.
 */
#include "core/http/http_resp.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum {
	HP_HEAD,
	HP_LEN,			/* Content-Length body */
	HP_CLOSE,		/* body up to the close */
	HP_CH_SIZE,		/* chunk size, hex */
	HP_CH_EXT,		/* chunk extension, up to LF */
	HP_CH_DATA,
	HP_CH_DATA_END,		/* CR LF after the data */
	HP_CH_DATA_LF,
	HP_TR_START,		/* start of a trailer line, or the last CR LF */
	HP_TR_LINE,
	HP_TR_END_LF,
	HP_DONE,
	HP_ERROR,
};

/* Bytes a chunk extension or the trailer section may take. */
#define HP_SKIP_MAX 4096
/* Hex digits in a chunk size (2^60 is far past any body limit). */
#define HP_DIGITS_MAX 15

void http_resp_parser_init(struct http_resp_parser *p, struct http_resp *r,
			   const struct http_resp_limits *lim, bool head_request)
{
	memset(p, 0, sizeof(*p));
	memset(r, 0, sizeof(*r));
	p->hp_lim = *lim;
	p->hp_resp = r;
	p->hp_state = HP_HEAD;
	p->hp_head_req = head_request;
}

void http_resp_free(struct http_resp *r)
{
	free(r->hr_head);
	free(r->hr_body);
	memset(r, 0, sizeof(*r));
}

const char *http_resp_strerror(int err)
{
	switch (err) {
	case HTTP_RESP_ESTATUS: return "not an HTTP/1.x status line";
	case HTTP_RESP_EHEAD: return "response head too long";
	case HTTP_RESP_EHEADER: return "malformed response header";
	case HTTP_RESP_ELENGTH: return "bad Content-Length";
	case HTTP_RESP_ECODING: return "unsupported transfer coding";
	case HTTP_RESP_ECHUNK: return "malformed chunked body";
	case HTTP_RESP_EBODY: return "response body too long";
	case HTTP_RESP_ETRUNC: return "connection closed mid-response";
	case HTTP_RESP_ENOMEM: return "out of memory";
	default: return "no error";
	}
}

static int hp_fail(struct http_resp_parser *p, int err)
{
	p->hp_state = HP_ERROR;
	return err;
}

static bool hp_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool hp_eq(const char *s, size_t n, const char *lit)
{
	return n == strlen(lit) && strncasecmp(s, lit, n) == 0;
}

const char *http_resp_header(const struct http_resp *r, const char *name, size_t *len_r)
{
	for (unsigned i = 0; i < r->hr_nhdr; i++) {
		const struct http_header *h = &r->hr_hdr[i];

		if (hp_eq(h->hh_name, h->hh_name_len, name)) {
			if (len_r != NULL)
				*len_r = h->hh_value_len;
			return h->hh_value;
		}
	}
	return NULL;
}

/* Does the comma-separated list s contain token tok? */
static bool hp_list_has(const char *s, size_t n, const char *tok)
{
	size_t i = 0;

	while (i < n) {
		size_t b, e;

		while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == ','))
			i++;
		b = i;
		while (i < n && s[i] != ',')
			i++;
		e = i;
		while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t'))
			e--;
		if (e > b && hp_eq(s + b, e - b, tok))
			return true;
	}
	return false;
}

/* The next line of the head from *pos: [b, e) without CR LF. */
static bool hp_line(const char *h, size_t len, size_t *pos, size_t *b, size_t *e)
{
	const char *lf = memchr(h + *pos, '\n', len - *pos);

	if (lf == NULL)
		return false;
	*b = *pos;
	*e = (size_t)(lf - h);
	*pos = *e + 1;
	if (*e > *b && h[*e - 1] == '\r')
		(*e)--;
	return true;
}

static int hp_status_line(struct http_resp *r, const char *s, size_t n)
{
	if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || s[7] < '0' || s[7] > '9' || s[8] != ' ')
		return HTTP_RESP_ESTATUS;
	for (int i = 9; i < 12; i++)
		if (s[i] < '0' || s[i] > '9')
			return HTTP_RESP_ESTATUS;
	if (s[9] == '0' || (n > 12 && s[12] != ' '))
		return HTTP_RESP_ESTATUS;
	r->hr_minor = (unsigned)(s[7] - '0');
	r->hr_status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
	r->hr_reason = n > 13 ? s + 13 : s + n;
	r->hr_reason_len = n > 13 ? n - 13 : 0;
	for (size_t i = 0; i < r->hr_reason_len; i++) {
		unsigned char c = (unsigned char)r->hr_reason[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return HTTP_RESP_ESTATUS;
	}
	return 0;
}

static int hp_header_line(struct http_resp *r, const char *s, size_t n)
{
	struct http_header *h;
	size_t i = 0, vb, ve;

	while (i < n && hp_tchar((unsigned char)s[i]))
		i++;
	if (i == 0 || i == n || s[i] != ':')
		return HTTP_RESP_EHEADER;	/* also obs-fold and "name :" */
	if (r->hr_nhdr == HTTP_RESP_HEADERS_MAX)
		return HTTP_RESP_EHEAD;
	vb = i + 1;
	while (vb < n && (s[vb] == ' ' || s[vb] == '\t'))
		vb++;
	ve = n;
	while (ve > vb && (s[ve - 1] == ' ' || s[ve - 1] == '\t'))
		ve--;
	for (size_t j = vb; j < ve; j++) {
		unsigned char c = (unsigned char)s[j];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return HTTP_RESP_EHEADER;
	}
	h = &r->hr_hdr[r->hr_nhdr++];
	h->hh_name = s;
	h->hh_name_len = i;
	h->hh_value = s + vb;
	h->hh_value_len = ve - vb;
	return 0;
}

/* Content-Length: digits only; repeated headers must agree. */
static int hp_length(const struct http_resp *r, bool *has_r, uint64_t *len_r)
{
	*has_r = false;
	for (unsigned i = 0; i < r->hr_nhdr; i++) {
		const struct http_header *h = &r->hr_hdr[i];
		uint64_t v = 0;

		if (!hp_eq(h->hh_name, h->hh_name_len, "content-length"))
			continue;
		if (h->hh_value_len == 0 || h->hh_value_len > 18)
			return HTTP_RESP_ELENGTH;
		for (size_t j = 0; j < h->hh_value_len; j++) {
			if (h->hh_value[j] < '0' || h->hh_value[j] > '9')
				return HTTP_RESP_ELENGTH;
			v = v * 10 + (uint64_t)(h->hh_value[j] - '0');
		}
		if (*has_r && v != *len_r)
			return HTTP_RESP_ELENGTH;
		*has_r = true;
		*len_r = v;
	}
	return 0;
}

/* The head is whole in hr_head: parse it and choose how the body ends. */
static int hp_head_done(struct http_resp_parser *p)
{
	struct http_resp *r = p->hp_resp;
	const char *h = r->hr_head;
	size_t pos = 0, b, e, tlen = 0, clen = 0;
	const char *te, *conn;
	bool has_len;
	uint64_t len = 0;
	int rc;

	if (!hp_line(h, r->hr_head_len, &pos, &b, &e))
		return HTTP_RESP_ESTATUS;
	if ((rc = hp_status_line(r, h + b, e - b)) < 0)
		return rc;
	while (hp_line(h, r->hr_head_len, &pos, &b, &e) && e > b)
		if ((rc = hp_header_line(r, h + b, e - b)) < 0)
			return rc;
	if (r->hr_status == 101)
		return HTTP_RESP_ESTATUS;	/* we never ask to upgrade */
	if (r->hr_status < 200) {		/* interim: the real one follows */
		r->hr_head_len = 0;
		r->hr_nhdr = 0;
		return HTTP_RESP_MORE;
	}
	conn = http_resp_header(r, "connection", &clen);
	r->hr_close = conn != NULL && hp_list_has(conn, clen, "close");
	if (r->hr_minor == 0 && (conn == NULL || !hp_list_has(conn, clen, "keep-alive")))
		r->hr_close = true;
	if ((rc = hp_length(r, &has_len, &len)) < 0)
		return rc;
	te = http_resp_header(r, "transfer-encoding", &tlen);
	if (p->hp_head_req || r->hr_status == 204 || r->hr_status == 304) {
		p->hp_state = HP_DONE;
		return HTTP_RESP_DONE;
	}
	if (te != NULL) {
		if (!hp_eq(te, tlen, "chunked"))
			return HTTP_RESP_ECODING;
		if (has_len)
			return HTTP_RESP_ELENGTH;	/* request smuggling's shape */
		p->hp_state = HP_CH_SIZE;
		return HTTP_RESP_MORE;
	}
	if (has_len) {
		if (len > p->hp_lim.hl_body_max)
			return HTTP_RESP_EBODY;
		p->hp_left = len;
		p->hp_state = HP_LEN;
		if (len == 0) {
			p->hp_state = HP_DONE;
			return HTTP_RESP_DONE;
		}
		return HTTP_RESP_MORE;
	}
	r->hr_close = true;
	p->hp_state = HP_CLOSE;
	return HTTP_RESP_MORE;
}

/* Gather head bytes; *used_r how many of data belonged to the head. */
static int hp_head(struct http_resp_parser *p, const char *data, size_t len, size_t *used_r)
{
	struct http_resp *r = p->hp_resp;
	size_t old = r->hr_head_len, room = p->hp_lim.hl_head_max - old;
	size_t take = len < room ? len : room, from = old > 3 ? old - 3 : 0;

	if (old + take > p->hp_head_cap) {
		size_t cap = p->hp_head_cap ? p->hp_head_cap : 512;
		char *n;

		while (cap < old + take)
			cap *= 2;
		if (cap > p->hp_lim.hl_head_max)
			cap = p->hp_lim.hl_head_max;
		n = realloc(r->hr_head, cap);
		if (n == NULL)
			return HTTP_RESP_ENOMEM;
		r->hr_head = n;
		p->hp_head_cap = cap;
	}
	memcpy(r->hr_head + old, data, take);
	for (size_t i = from; i < old + take; i++) {
		size_t end = 0;

		if (r->hr_head[i] != '\n')
			continue;
		if (i + 1 < old + take && r->hr_head[i + 1] == '\n')
			end = i + 2;
		else if (i + 2 < old + take && r->hr_head[i + 1] == '\r' && r->hr_head[i + 2] == '\n')
			end = i + 3;
		if (end != 0 && end > old) {
			r->hr_head_len = end;
			*used_r = end - old;
			return 1;
		}
	}
	r->hr_head_len = old + take;
	*used_r = take;
	if (r->hr_head_len == p->hp_lim.hl_head_max)
		return HTTP_RESP_EHEAD;
	return 0;
}

/* Append decoded body bytes, within the limit. */
static int hp_body(struct http_resp_parser *p, const char *data, size_t n)
{
	struct http_resp *r = p->hp_resp;

	if (n > p->hp_lim.hl_body_max - r->hr_body_len)
		return HTTP_RESP_EBODY;
	if (r->hr_body_len + n + 1 > p->hp_body_cap) {
		size_t cap = p->hp_body_cap ? p->hp_body_cap : 256;
		char *b;

		while (cap < r->hr_body_len + n + 1)
			cap *= 2;
		b = realloc(r->hr_body, cap);
		if (b == NULL)
			return HTTP_RESP_ENOMEM;
		r->hr_body = b;
		p->hp_body_cap = cap;
	}
	memcpy(r->hr_body + r->hr_body_len, data, n);
	r->hr_body_len += n;
	r->hr_body[r->hr_body_len] = '\0';
	return 0;
}

static int hp_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* One byte of the chunked framing (not data). */
static int hp_chunk_byte(struct http_resp_parser *p, char c)
{
	switch (p->hp_state) {
	case HP_CH_SIZE:
		if (hp_hex(c) >= 0) {
			if (++p->hp_digits > HP_DIGITS_MAX)
				return HTTP_RESP_ECHUNK;
			p->hp_left = p->hp_left * 16 + (uint64_t)hp_hex(c);
			return 0;
		}
		if (p->hp_digits == 0)
			return HTTP_RESP_ECHUNK;
		if (p->hp_left > p->hp_lim.hl_body_max - p->hp_resp->hr_body_len)
			return HTTP_RESP_EBODY;
		if (c != ';' && c != '\r' && c != '\n' && c != ' ' && c != '\t')
			return HTTP_RESP_ECHUNK;
		p->hp_state = HP_CH_EXT;
		p->hp_skip = 0;
		/* fall through */
	case HP_CH_EXT:
		if (c != '\n') {
			if (++p->hp_skip > HP_SKIP_MAX)
				return HTTP_RESP_ECHUNK;
			return 0;
		}
		p->hp_digits = 0;
		if (p->hp_left == 0) {
			p->hp_state = HP_TR_START;
			p->hp_skip = 0;
		} else {
			p->hp_state = HP_CH_DATA;
		}
		return 0;
	case HP_CH_DATA_END:
		if (c == '\r') {
			p->hp_state = HP_CH_DATA_LF;
			return 0;
		}
		/* fall through */
	case HP_CH_DATA_LF:
		if (c != '\n')
			return HTTP_RESP_ECHUNK;
		p->hp_state = HP_CH_SIZE;
		return 0;
	case HP_TR_START:
		if (c == '\r') {
			p->hp_state = HP_TR_END_LF;
			return 0;
		}
		if (c == '\n') {
			p->hp_state = HP_DONE;
			return 0;
		}
		p->hp_state = HP_TR_LINE;
		/* fall through */
	case HP_TR_LINE:		/* trailers are read and dropped */
		if (++p->hp_skip > HP_SKIP_MAX)
			return HTTP_RESP_ECHUNK;
		if (c == '\n')
			p->hp_state = HP_TR_START;
		return 0;
	case HP_TR_END_LF:
		if (c != '\n')
			return HTTP_RESP_ECHUNK;
		p->hp_state = HP_DONE;
		return 0;
	default:
		return HTTP_RESP_ECHUNK;
	}
}

int http_resp_parse(struct http_resp_parser *p, const char *data, size_t len, size_t *used_r)
{
	size_t i = 0;
	int rc;

	*used_r = 0;
	while (i < len || p->hp_state == HP_DONE) {
		switch (p->hp_state) {
		case HP_HEAD: {
			size_t used = 0;

			rc = hp_head(p, data + i, len - i, &used);
			i += used;
			if (rc < 0)
				return hp_fail(p, rc);
			if (rc == 0)
				break;
			rc = hp_head_done(p);
			if (rc < 0)
				return hp_fail(p, rc);
			break;
		}
		case HP_LEN:
		case HP_CH_DATA: {
			size_t n = len - i < p->hp_left ? len - i : (size_t)p->hp_left;

			if ((rc = hp_body(p, data + i, n)) < 0)
				return hp_fail(p, rc);
			i += n;
			p->hp_left -= n;
			if (p->hp_left == 0)
				p->hp_state = p->hp_state == HP_LEN ? HP_DONE : HP_CH_DATA_END;
			break;
		}
		case HP_CLOSE:
			if ((rc = hp_body(p, data + i, len - i)) < 0)
				return hp_fail(p, rc);
			i = len;
			break;
		case HP_DONE:
			*used_r = i;
			return HTTP_RESP_DONE;
		case HP_ERROR:
			return HTTP_RESP_ECHUNK;
		default:
			if ((rc = hp_chunk_byte(p, data[i])) < 0)
				return hp_fail(p, rc);
			i++;
			break;
		}
	}
	*used_r = i;
	return HTTP_RESP_MORE;
}

int http_resp_parse_eof(struct http_resp_parser *p)
{
	if (p->hp_state == HP_CLOSE || p->hp_state == HP_DONE) {
		p->hp_state = HP_DONE;
		return HTTP_RESP_DONE;
	}
	return hp_fail(p, HTTP_RESP_ETRUNC);
}
