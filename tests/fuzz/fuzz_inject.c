/*
 * fuzz_inject: libFuzzer target for HTTP injection's request parser and
 * message builder (core/inject/inject_req.h). The input is the request
 * body (JSON). When it parses, the message is built for every recipient
 * (up to 4) and for all of them at once, under a size limit and without.
 *
 * The message string is decoded ahead of jansson (inject_lift.c): the
 * request must parse exactly when jansson parses it alone, to the same
 * message text.
 *
 * Whatever the input, a built message has CRLF line ends only, no NUL,
 * and ends in CRLF; a message refused for size has set b_over and no
 * more than the limit was written.
 */
#include "core/inject/inject_req.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_inject_check(bool cond)
{
	if (!cond)
		abort();
}

static void fuzz_inject_build(const struct inject_req *q, const struct inject_rcpt *r,
			      size_t max)
{
	static const struct inject_mime_params p = {
		.date = "Thu, 01 Jan 2026 00:00:00 +0000",
		.msgid = "<fuzz@mx.test>",
		.boundary_seed = "0123456789abcdef",
	};
	struct inject_buf b = { .b_max = max };
	int rc = inject_mime_build(q, r, &p, &b);

	if (rc < 0) {
		fuzz_inject_check(b.b_over || b.b_oom);
		fuzz_inject_check(max == 0 || b.b_len <= max);
	} else {
		fuzz_inject_check(b.b_len >= 2 && memcmp(b.b_p + b.b_len - 2, "\r\n", 2) == 0);
		for (size_t i = 0; i < b.b_len; i++) {
			fuzz_inject_check(b.b_p[i] != '\0');
			if (b.b_p[i] == '\r')
				fuzz_inject_check(i + 1 < b.b_len && b.b_p[i + 1] == '\n');
			if (b.b_p[i] == '\n')
				fuzz_inject_check(i > 0 && b.b_p[i - 1] == '\r');
		}
	}
	inject_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct inject_req q;
	json_error_t jerr;
	json_t *alone = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
	char err[300];

	if (inject_req_parse(&q, (const char *)data, size, 8, err, sizeof(err)) < 0) {
		fuzz_inject_check(err[0] != '\0');
		/* jansson alone refuses it too, or the fields were wrong */
		fuzz_inject_check(alone == NULL || strncmp(err, "bad JSON", 8) != 0);
		json_decref(alone);
		return 0;
	}
	fuzz_inject_check(alone != NULL);
	if (q.q_c.c_raw) {
		json_t *c = json_object_get(alone, "content");

		fuzz_inject_check(json_string_length(c) == q.q_c.c_text_len &&
				  memcmp(json_string_value(c), q.q_c.c_text, q.q_c.c_text_len) == 0);
	}
	json_decref(alone);
	for (unsigned i = 0; i < q.q_nrcpt && i < 4; i++)
		fuzz_inject_build(&q, &q.q_rcpts[i], 0);
	fuzz_inject_build(&q, NULL, 0);
	fuzz_inject_build(&q, NULL, 512);
	inject_req_free(&q);
	return 0;
}
