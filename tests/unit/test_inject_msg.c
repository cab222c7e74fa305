/*
 * test_inject_msg: the HTTP injection request parser and message builder
 * (core/inject/inject_req.h): base64 (76 columns, decoding with its
 * errors), quoted-printable (soft breaks, blanks before line ends, '='),
 * RFC 2047 words that never split a UTF-8 character, the request's
 * fields and the errors that name them, substitution (recipient over
 * global, unknown names empty, text without variables untouched), header
 * injection through a variable, CRLF line ends, the size limit, and the
 * MIME shapes (single part, alternative, related, mixed).
 */
#include "core/inject/inject_req.h"
#include "tests/unit/tap.h"

#include <stdlib.h>
#include <string.h>

static const struct inject_mime_params test_p = {
	.date = "Thu, 01 Jan 2026 00:00:00 +0000",
	.msgid = "<id@mx.test>",
	.boundary_seed = "seed",
};

/* out as a NUL-terminated string (the test owns it). */
static char *test_str(struct inject_buf *b)
{
	inject_buf_put(b, "", 1);
	return b->b_p;
}

/* Nothing added to a buffer that has no memory yet: no memcpy to NULL
 * (UBSan halts on it, as a subject that starts with a variable did). */
static void test_buf_empty(void)
{
	struct inject_buf b = { 0 };

	inject_buf_put(&b, "x", 0);
	tap_ok(b.b_p == NULL && b.b_len == 0 && !b.b_over && !b.b_oom,
	       "buf: an empty put on an empty buffer leaves it empty");
	b.b_max = 4;
	inject_buf_put(&b, "", 0);
	inject_buf_put(&b, "abcd", 4);
	inject_buf_put(&b, "", 0);
	tap_ok(b.b_len == 4 && !b.b_over, "buf: empty puts at the limit are not over it");
	inject_buf_free(&b);
}

static void test_base64(void)
{
	struct inject_buf b = { 0 };
	unsigned char in[100], out[200];
	long n;

	for (int i = 0; i < 100; i++)
		in[i] = (unsigned char)(i * 7);
	inject_enc_base64(&b, in, 100);
	tap_ok(b.b_len == 76 + 2 + 60 + 2 && memcmp(b.b_p + 76, "\r\n", 2) == 0,
	       "base64: 100 octets in a line of 76 and one of 60");
	n = inject_dec_base64(b.b_p, b.b_len, out);
	tap_ok(n == 100 && memcmp(in, out, 100) == 0, "base64: decodes back, line breaks skipped");
	inject_buf_free(&b);
	tap_ok(inject_dec_base64("aGk=", 4, out) == 2 && memcmp(out, "hi", 2) == 0, "base64: padding");
	tap_ok(inject_dec_base64("aGk", 3, out) == 2, "base64: padding may be left out");
	tap_ok(inject_dec_base64("a", 1, out) < 0, "base64: a lone character is an error");
	tap_ok(inject_dec_base64("aG=k", 4, out) < 0, "base64: data after padding is an error");
	tap_ok(inject_dec_base64("a*bc", 4, out) < 0, "base64: a foreign character is an error");
}

static void test_qp(void)
{
	struct inject_buf b = { 0 };
	char line[200];
	const char *s;

	inject_enc_qp(&b, "a=b \r\nt\xc3\xa9 \r\n", 12);
	s = test_str(&b);
	tap_ok(strcmp(s, "a=3Db=20\r\nt=C3=A9=20\r\n") == 0, "qp: '=', blanks before line ends, 8bit");
	inject_buf_free(&b);
	memset(line, 'x', 150);
	inject_enc_qp(&b, line, 150);
	s = test_str(&b);
	tap_ok(strncmp(s + 75, "=\r\n", 3) == 0 && strlen(s) == 75 + 3 + 75 + 2,
	       "qp: a soft break after 75 characters");
	inject_buf_free(&b);
}

static void test_2047(void)
{
	struct inject_buf b = { 0 };
	char in[200];
	const char *s, *p;
	bool ok = true;

	/* 60 two-octet characters: never split */
	for (int i = 0; i < 60; i++)
		memcpy(in + i * 2, "\xc3\xa9", 2);
	inject_enc_2047(&b, in, 120, 9);
	s = test_str(&b);
	for (p = s; (p = strstr(p, "=?UTF-8?B?")) != NULL; p++) {
		const char *e = strstr(p, "?=");
		unsigned char dec[100];
		long n = inject_dec_base64(p + 10, (size_t)(e - p - 10), dec);

		ok &= n > 0 && n % 2 == 0 && e - p + 2 <= 75;
	}
	tap_ok(ok && strstr(s, "\r\n ") != NULL, "2047: words of at most 75, folded, whole characters");
	inject_buf_free(&b);
	tap_ok(inject_enc_header_plain("plain text", 10), "2047: ASCII stays plain");
	tap_ok(!inject_enc_header_plain("caf\xc3\xa9", 5), "2047: 8bit is encoded");
	tap_ok(!inject_enc_header_plain("a =?x?= b", 9), "2047: text that reads as a word is encoded");
}

static int test_parse(struct inject_req *q, const char *json, char *err, size_t errlen)
{
	return inject_req_parse(q, json, strlen(json), 10, err, errlen);
}

static void test_parse_errors(void)
{
	static const struct {
		const char *json, *words;
	} bad[] = {
		{ "{", "bad JSON" },
		{ "[]", "JSON object" },
		{ "{\"recipients\":[\"a@b\"],\"content\":\"x\"}", "envelope_sender" },
		{ "{\"envelope_sender\":1,\"recipients\":[\"a@b\"],\"content\":\"x\"}", "envelope_sender" },
		{ "{\"envelope_sender\":\"\",\"content\":\"x\"}", "recipients" },
		{ "{\"envelope_sender\":\"\",\"recipients\":[],\"content\":\"x\"}", "recipients" },
		{ "{\"envelope_sender\":\"\",\"recipients\":[{\"name\":\"x\"}],\"content\":\"x\"}",
		  "recipients[0].email" },
		{ "{\"envelope_sender\":\"\",\"recipients\":[\"a@b\"]}", "content" },
		{ "{\"envelope_sender\":\"\",\"recipients\":[\"a@b\"],\"content\":\"\"}", "empty" },
		{ "{\"envelope_sender\":\"\",\"recipients\":[\"a@b\"],\"content\":{}}", "content.from" },
		{ "{\"envelope_sender\":\"\",\"recipients\":[\"a@b\"],\"content\":{\"from\":\"a\\r\\nBcc: x\"}}",
		  "bad address" },
		{ "{\"envelope_sender\":\"\",\"recipients\":[\"a@b\"],\"content\":{\"from\":\"a@b\","
		  "\"headers\":{\"Bad Name\":\"x\"}}}", "field name" },
		{ "{\"envelope_sender\":\"\",\"recipients\":[\"a@b\"],\"content\":{\"from\":\"a@b\","
		  "\"headers\":{\"X\":1}}}", "content.headers.X" },
		{ "{\"envelope_sender\":\"\",\"recipients\":[{\"email\":\"a@b\",\"substitutions\":[1]}],"
		  "\"content\":\"x\"}", "recipients[0].substitutions" },
		{ "{\"envelope_sender\":\"\",\"recipients\":[\"a@b\"],\"content\":{\"from\":\"a@b\","
		  "\"attachments\":[{\"data\":\"@@\"}]}}", "attachments[0].data" },
		{ "{\"envelope_sender\":\"\",\"recipients\":[\"a@b\",\"a@b\",\"a@b\",\"a@b\",\"a@b\","
		  "\"a@b\",\"a@b\",\"a@b\",\"a@b\",\"a@b\",\"a@b\"],\"content\":\"x\"}", "more than 10" },
		{ "{\"envelope_sender\":\"\",\"envelope_sender\":\"\",\"recipients\":[\"a@b\"],"
		  "\"content\":\"x\"}", "duplicate" },
	};
	struct inject_req q;
	char err[300];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = test_parse(&q, bad[i].json, err, sizeof(err));

		tap_ok(rc < 0 && strstr(err, bad[i].words) != NULL, "parse error %zu -> \"%s\"",
		       i, rc < 0 ? err : "(accepted)");
	}
}

static void test_raw(void)
{
	struct inject_req q;
	struct inject_buf b = { 0 };
	char err[300];
	const char *s;

	tap_ok(test_parse(&q, "{\"envelope_sender\":\"a@b\",\"recipients\":[\"c@d\"],"
			  "\"content\":\"Subject: {{ x }}\\n\\nbody\\rmore\"}", err, sizeof(err)) == 0,
	       "raw: parsed");
	tap_ok(!q.q_per_rcpt && q.q_c.c_raw, "raw: one message for all");
	inject_mime_build(&q, NULL, &test_p, &b);
	s = test_str(&b);
	tap_ok(strcmp(s, "Subject: {{ x }}\r\n\r\nbody\r\nmore\r\n") == 0,
	       "raw: without variables the text stays, line ends become CRLF, a last one added");
	inject_buf_free(&b);
	inject_req_free(&q);

	tap_ok(test_parse(&q, "{\"envelope_sender\":\"a@b\",\"substitutions\":{\"x\":\"g\",\"y\":\"G\"},"
			  "\"recipients\":[{\"email\":\"c@d\",\"substitutions\":{\"x\":\"r\"}}],"
			  "\"content\":\"Subject: {{ x }}{{y}}{{ nope }}{{ bad name }}{{\\r\\n\\r\\n\"}",
			  err, sizeof(err)) == 0 && q.q_per_rcpt, "subst: parsed, per recipient");
	b.b_max = 1000;
	inject_mime_build(&q, &q.q_rcpts[0], &test_p, &b);
	s = test_str(&b);
	tap_ok(strcmp(s, "Subject: rG{{ bad name }}{{\r\n\r\n") == 0,
	       "subst: recipient over global, unknown empty, the rest as written");
	inject_buf_free(&b);
	b.b_max = 10;
	tap_ok(inject_mime_build(&q, &q.q_rcpts[0], &test_p, &b) < 0 && b.b_over,
	       "size: a message over the limit is refused");
	inject_buf_free(&b);
	inject_req_free(&q);
}

static void test_builder(void)
{
	struct inject_req q;
	struct inject_buf b = { 0 };
	char err[300];
	const char *s;

	tap_ok(test_parse(&q, "{\"envelope_sender\":\"a@b\",\"recipients\":["
			  "{\"email\":\"c@d\",\"substitutions\":{\"n\":\"X\\r\\nBcc: evil@x\"}}],"
			  "\"content\":{\"from\":{\"email\":\"a@b\",\"name\":\"A \\\"q\\\"\"},"
			  "\"subject\":\"hi {{n}}\",\"text_body\":\"t\\n\"}}", err, sizeof(err)) == 0,
	       "builder: text only parsed");
	inject_mime_build(&q, &q.q_rcpts[0], &test_p, &b);
	s = test_str(&b);
	tap_ok(strstr(s, "\r\nBcc:") == NULL && strstr(s, "Subject: hi X  Bcc: evil@x\r\n") != NULL,
	       "builder: a variable's line break never starts a field");
	tap_ok(strncmp(s, "From: \"A \\\"q\\\"\"\r\n <a@b>\r\nTo: c@d\r\n", 31) == 0,
	       "builder: quoted display name, To: the recipient");
	tap_ok(strstr(s, "Date: Thu, 01 Jan 2026") != NULL && strstr(s, "Message-ID: <id@mx.test>") &&
	       strstr(s, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
		      "Content-Transfer-Encoding: 7bit\r\n\r\nt\r\n") != NULL,
	       "builder: Date, Message-ID, one 7bit text part");
	inject_buf_free(&b);
	inject_req_free(&q);

	tap_ok(test_parse(&q, "{\"envelope_sender\":\"a@b\",\"recipients\":[\"c@d\",\"e@f\"],"
			  "\"content\":{\"from\":\"a@b\",\"text_body\":\"t\",\"html_body\":\"<b>h</b>\","
			  "\"headers\":{\"Content-Type\":\"x/y\",\"X-A\":\"b\"},"
			  "\"attachments\":[{\"data\":\"aGk=\",\"content_id\":\"c1\"},"
			  "{\"data\":\"raw\",\"base64\":false,\"file_name\":\"caf\\u00e9.txt\"}]}}",
			  err, sizeof(err)) == 0, "builder: everything parsed");
	inject_mime_build(&q, NULL, &test_p, &b);
	s = test_str(&b);
	tap_ok(strstr(s, "To: undisclosed-recipients:;\r\n") != NULL,
	       "builder: one message to several: no list of them in To:");
	tap_ok(strstr(s, "x/y") == NULL && strstr(s, "X-A: b\r\n") != NULL,
	       "builder: the MIME fields are the builder's, others are kept");
	{
		const char *mix = strstr(s, "multipart/mixed"), *rel = strstr(s, "multipart/related"),
			   *alt = strstr(s, "multipart/alternative");

		tap_ok(mix && rel && alt && mix < rel && rel < alt,
		       "builder: mixed > related > alternative");
	}
	tap_ok(strstr(s, "Content-ID: <c1>\r\n\r\naGk=\r\n") != NULL, "builder: the inline part");
	tap_ok(strstr(s, "filename*=utf-8''caf%C3%A9.txt") != NULL &&
	       strstr(s, "cmF3\r\n") != NULL, "builder: RFC 2231 file name, unencoded data in base64");
	tap_ok(strstr(s, "\r\n--=_rm_mix_seed--\r\n") != NULL &&
	       strstr(s, "\r\n--=_rm_alt_seed--\r\n") != NULL, "builder: closing delimiters");
	inject_buf_free(&b);
	inject_req_free(&q);
}

/* The message string decoded ahead of jansson (inject_lift.c). */
static void test_lift(void)
{
	static const char *const same[] = {
		"{\"content\":\"a\\u00e9\\ud83d\\ude00\\n\\\"\\/\\t\\b\\f\\r\\\\\"}",
		"{ \"x\" : [1, {\"content\": \"inner\"}, \"]\"] , \"y\": -1.5e3, \"z\":null,"
		" \"content\" : \"outer\" }",
	};
	static const char *const left[] = {
		"{\"content\":{\"from\":\"a@b\"}}",		/* not a string */
		"{\"content\":\"\\ud83d\"}",			/* lone surrogate */
		"{\"content\":\"a\\u0000b\"}",			/* NUL */
		"{\"content\":\"\xc3\"}",			/* bad UTF-8 */
		"{\"content\":\"tab\there\"}",			/* raw control */
		"[\"content\"]",
		"{\"a\":\"b\" \"content\":\"x\"}",			/* no comma */
	};
	struct inject_lift l;

	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		int rc = inject_req_lift(same[i], strlen(same[i]), &l);

		tap_ok(rc == 1, "lift %zu: lifted", i);
		if (rc == 1 && i == 0)
			tap_ok(strcmp(l.l_text, "a\xc3\xa9\xf0\x9f\x98\x80\n\"/\t\b\f\r\\") == 0 &&
			       l.l_json_len == 14 && memcmp(l.l_json, "{\"content\":\"\"}", 14) == 0, "lift: every escape, as jansson");
		if (rc == 1 && i == 1)
			tap_ok(strcmp(l.l_text, "outer") == 0, "lift: the top-level key only");
		inject_lift_free(&l);
	}
	for (size_t i = 0; i < sizeof(left) / sizeof(left[0]); i++)
		tap_ok(inject_req_lift(left[i], strlen(left[i]), &l) == 0 && l.l_text == NULL,
		       "lift: left to jansson (%zu)", i);
	{
		struct inject_req q;
		char err[300];
		const char *dup = "{\"envelope_sender\":\"\",\"recipients\":[\"a@b\"],"
				  "\"content\":\"x\",\"content\":\"y\"}";

		tap_ok(inject_req_parse(&q, dup, strlen(dup), 10, err, sizeof(err)) < 0 &&
		       strstr(err, "duplicate") != NULL, "lift: a second content is still a duplicate");
	}
}

int main(void)
{
	test_lift();
	test_buf_empty();
	test_base64();
	test_qp();
	test_2047();
	test_parse_errors();
	test_raw();
	test_builder();
	return tap_done();
}
