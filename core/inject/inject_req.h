/*
 * inject_req: the body of POST /api/v1/inject (JSON, jansson) as a
 * request to build and queue mail, and the message builder that turns
 * its content into RFC 5322 bytes for one recipient. Neither does I/O:
 * both are unit-tested and fuzzed alone (tests/fuzz/fuzz_inject.c).
 *
 * The request, after KumoMTA's /api/inject/v1:
 *   { "envelope_sender": "a@example.com",
 *     "recipients": [ { "email": "b@example.net",
 *                       "substitutions": { "name": "Bea" } }, ... ],
 *     "substitutions": { "var": "value" },          (optional, global)
 *     "content": "<complete RFC 5322 message>"
 *        or { "from": "a@example.com" | { "email": ..., "name": ... },
 *             "subject": ..., "text_body": ..., "html_body": ...,
 *             "reply_to": (as from), "headers": { "X-Foo": "bar" },
 *             "attachments": [ { "data": base64, "content_type": ...,
 *                                "file_name": ..., "content_id": ...,
 *                                "base64": true } ] } }
 *
 * Ownership: struct inject_req holds the parsed JSON; every string in it
 * points into that tree (or into decoded attachment data the request
 * owns) and lives until inject_req_free().
 */
#ifndef RINGMTA_INJECT_REQ_H
#define RINGMTA_INJECT_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct inject_kv {
	const char *k_name;
	const char *k_value;
	size_t k_len;			/* of k_value */
};

/* Substitution variables or header fields, in the request's order. */
struct inject_vars {
	struct inject_kv *v_kv;
	unsigned v_n;
};

struct inject_rcpt {
	const char *r_email;
	size_t r_len;
	struct inject_vars r_subst;
};

struct inject_attach {
	const char *a_name;		/* NULL: none */
	const char *a_type;		/* "application/octet-stream" default */
	const char *a_cid;		/* NULL: a plain attachment */
	unsigned char *a_data;		/* owned: decoded */
	size_t a_len;
};

struct inject_addr {
	const char *ia_email;		/* NULL: absent */
	const char *ia_name;		/* NULL: none */
};

struct inject_content {
	bool c_raw;			/* a complete message in c_text */
	const char *c_text;
	size_t c_text_len;
	/* the builder's fields (c_raw false); NULL when absent */
	struct inject_addr c_from, c_reply_to;
	const char *c_subject;
	const char *c_text_body, *c_html_body;
	size_t c_text_len_body, c_html_len;
	struct inject_vars c_headers;
	struct inject_attach *c_att;
	unsigned c_natt;
};

struct inject_req {
	void *q_json;			/* json_t *: owns the strings */
	char *q_lifted;			/* owned: the message, when lifted */
	const char *q_sender;		/* "" for the null sender */
	size_t q_sender_len;
	struct inject_rcpt *q_rcpts;
	unsigned q_nrcpt;
	struct inject_vars q_subst;	/* global */
	struct inject_content q_c;
	bool q_per_rcpt;		/* a recipient has substitutions: one
					 * message each */
};

/*
 * Parse len bytes of JSON into *req_r. Returns 0, or -1 with err saying
 * what is wrong ("recipients[2].email: missing"); max_rcpt bounds the
 * recipients (more is an error). req_r is empty on error.
 */
int inject_req_parse(struct inject_req *req_r, const char *buf, size_t len, unsigned max_rcpt,
		     char *err, size_t errlen);
void inject_req_free(struct inject_req *req);

/*
 * The top-level "content" string decoded ahead of jansson (inject_lift.c):
 * 1 with l_text (the string, NUL-terminated) and l_json (the request with
 * "" in its place), 0 when there is none to lift or jansson must see it.
 * Both owned; inject_lift_free() releases them.
 */
struct inject_lift {
	char *l_text, *l_json;
	size_t l_text_len, l_json_len;
};
int inject_req_lift(const char *buf, size_t len, struct inject_lift *l);
void inject_lift_free(struct inject_lift *l);

/* A growing output bounded by max: past it, b_over is set and nothing
 * more is written. */
struct inject_buf {
	char *b_p;
	size_t b_len, b_cap, b_max;
	bool b_over, b_oom;
};

void inject_buf_put(struct inject_buf *b, const void *p, size_t len);
void inject_buf_puts(struct inject_buf *b, const char *s);
void inject_buf_free(struct inject_buf *b);

/* What the builder adds that the request does not say. */
struct inject_mime_params {
	const char *date;		/* RFC 5322 date */
	const char *msgid;		/* "<...@host>" */
	const char *boundary_seed;	/* makes MIME boundaries unique */
};

/*
 * The message of req for one recipient (rcpt: its substitutions, and the
 * To: field when the request names none; NULL for one message to every
 * recipient) into out: "{{ name }}" replaced in the text (the raw
 * message, or the builder's subject, bodies, names and header values),
 * CRLF line ends. Returns 0, or -1 (out->b_over: too big, out->b_oom).
 */
int inject_mime_build(const struct inject_req *req, const struct inject_rcpt *rcpt,
		      const struct inject_mime_params *p, struct inject_buf *out);

/*
 * Encoders (inject_enc.c), appending to b. Base64 in lines of 76 with
 * CRLF; quoted-printable (RFC 2045) of text whose line ends are CRLF;
 * RFC 2047 B encoded-words (UTF-8) folded for a header field of name_len
 * octets; whether text needs encoding for a header or a body.
 */
void inject_enc_base64(struct inject_buf *b, const unsigned char *p, size_t len);
void inject_enc_qp(struct inject_buf *b, const char *p, size_t len);
void inject_enc_2047(struct inject_buf *b, const char *p, size_t len, size_t name_len);
bool inject_enc_header_plain(const char *p, size_t len);
bool inject_enc_body_plain(const char *p, size_t len);
/* Base64 in one line, NUL-terminated: out needs (len + 2) / 3 * 4 + 1
 * octets. Returns its length. */
size_t inject_enc_base64_flat(char *out, const unsigned char *p, size_t len);
/* Decode base64 (blanks and line breaks skipped); -1 when malformed.
 * out needs (len / 4 + 1) * 3 octets. */
long inject_dec_base64(const char *p, size_t len, unsigned char *out);

#endif
