/*
 * fuzz_admin: libFuzzer target for the admin API's parsers of untrusted
 * input: the message filter (admin_filter.c) and the stored message's
 * header splitter (admin_msg.c).
 *
 * Byte 0 picks a mode (its value modulo 2):
 *   0  the rest is "name=value" lines fed to admin_filter_set(); whatever
 *      is accepted is then matched against a fixed record.
 *   1  the rest is a message for admin_msg_headers() and admin_msg_text().
 * Whatever the input: no crash, results from the documented set, JSON
 * that jansson can write out.
 */
#include "core/admin/admin_filter.h"
#include "core/admin/admin_msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(bool cond)
{
	if (!cond)
		abort();
}

static void fuzz_filter(char *s)
{
	static const struct qrcpt rc[2] = {
		{ .state = QRCPT_PENDING, .addr = "a@b.example", .addr_len = 11, .bclass = 2 },
		{ .state = QRCPT_FAILED, .addr = "c@d", .addr_len = 3 },
	};
	struct qrecord r = {
		.arrival = 1000000, .next_attempt = 5000000, .size = 1, .sender = "s@e",
		.sender_len = 3, .client = "", .helo = "", .nrcpt = 2, .rcpts = rc,
	};
	unsigned char buf[512];
	struct qrecord d;
	struct admin_filter f;
	char err[256], *save = NULL;

	qrecord_encode(&r, buf);
	fuzz_check(qrecord_decode(buf, qrecord_encoded_size(&r), &d) == 0);
	admin_filter_init(&f);
	for (char *l = strtok_r(s, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(l, '=');
		int rc2;

		if (eq == NULL)
			continue;
		*eq = '\0';
		err[0] = '\0';
		rc2 = admin_filter_set(&f, l, eq + 1, err, sizeof(err));
		fuzz_check(rc2 == 0 || rc2 == 1 || (rc2 == -1 && err[0] != '\0'));
	}
	fuzz_check(f.af_limit >= 1 && f.af_limit <= ADMIN_FILTER_LIMIT_MAX);
	fuzz_check(memchr(f.af_domain, '\0', sizeof(f.af_domain)) != NULL);
	(void)admin_filter_match(&f, 1, &d, 7000000, false);
	(void)admin_filter_match(&f, 1, &d, 7000000, true);
}

static void fuzz_headers(const char *s, size_t n)
{
	json_t *h = admin_msg_headers(s, n), *t = admin_msg_text(s, n);
	char *out;

	fuzz_check(json_is_array(h) && json_array_size(h) <= ADMIN_MSG_FIELDS_MAX);
	fuzz_check(json_is_string(t));
	out = json_dumps(h, JSON_COMPACT);
	fuzz_check(out != NULL);
	free(out);
	out = json_dumps(t, JSON_ENCODE_ANY);
	fuzz_check(out != NULL);
	free(out);
	json_decref(h);
	json_decref(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy;
	size_t n;

	if (size < 1)
		return 0;
	n = size - 1;
	/* A private copy, NUL-terminated for the filter's text. */
	copy = malloc(n + 1);
	memcpy(copy, data + 1, n);
	copy[n] = '\0';
	if (data[0] % 2 == 0)
		fuzz_filter(copy);
	else
		fuzz_headers(copy, n);
	free(copy);
	return 0;
}
