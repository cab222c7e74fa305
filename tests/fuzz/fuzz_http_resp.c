/*
 * fuzz_http_resp: libFuzzer target for the HTTP client's response parser
 * (core/http/http_resp.c).
 *
 * Input layout: byte 0 picks the piece size (1 to 64 octets) and byte 1
 * whether the connection closes after the stream; the rest is the
 * server's stream. It is parsed whole and in pieces, each piece in its
 * own exact-size heap block; both must give the same result, a DONE
 * response must keep the header's promises (status 200..999, body within
 * the limit and NUL-terminated, header slices inside the head).
 */
#include "core/http/http_resp.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct http_resp_limits fuzz_lim = { 4096, 8192 };

static void fuzz_check(bool cond)
{
	if (!cond)
		abort();
}

static int fuzz_run(const char *s, size_t n, size_t piece, bool eof, size_t *used_r,
		    struct http_resp *r)
{
	struct http_resp_parser p;
	size_t pos = 0;
	int rc = HTTP_RESP_MORE;

	http_resp_parser_init(&p, r, &fuzz_lim, false);
	*used_r = 0;
	while (pos < n) {
		size_t len = n - pos < piece ? n - pos : piece, used = 0;
		char *b = malloc(len);

		memcpy(b, s + pos, len);
		rc = http_resp_parse(&p, b, len, &used);
		free(b);
		fuzz_check(used <= len);
		*used_r = pos + used;
		if (rc != HTTP_RESP_MORE)
			return rc;
		fuzz_check(used == len);
		pos += len;
	}
	return eof ? http_resp_parse_eof(&p) : rc;
}

static void fuzz_promises(const struct http_resp *r)
{
	fuzz_check(r->hr_status >= 200 && r->hr_status <= 999);
	fuzz_check(r->hr_body_len <= fuzz_lim.hl_body_max);
	fuzz_check(r->hr_body == NULL || r->hr_body[r->hr_body_len] == '\0');
	fuzz_check(r->hr_nhdr <= HTTP_RESP_HEADERS_MAX);
	for (unsigned i = 0; i < r->hr_nhdr; i++) {
		const struct http_header *h = &r->hr_hdr[i];

		fuzz_check(h->hh_name >= r->hr_head && h->hh_name_len > 0);
		fuzz_check(h->hh_value + h->hh_value_len <= r->hr_head + r->hr_head_len);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_resp whole, cut;
	size_t used_w, used_c;
	int rw, rc;

	if (size < 2)
		return 0;
	rw = fuzz_run((const char *)data + 2, size - 2, size, data[1] & 1, &used_w, &whole);
	rc = fuzz_run((const char *)data + 2, size - 2, 1 + data[0] % 64, data[1] & 1, &used_c,
		      &cut);
	fuzz_check(rw == rc);
	if (rw == HTTP_RESP_DONE) {
		fuzz_check(used_w == used_c);
		fuzz_promises(&whole);
		fuzz_check(whole.hr_status == cut.hr_status);
		fuzz_check(whole.hr_body_len == cut.hr_body_len);
		fuzz_check(whole.hr_body_len == 0 ||
			   memcmp(whole.hr_body, cut.hr_body, whole.hr_body_len) == 0);
	}
	http_resp_free(&whole);
	http_resp_free(&cut);
	return 0;
}
