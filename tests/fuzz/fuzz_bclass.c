/*
 * libFuzzer target for core/bounce: a remote reply (arbitrary bytes,
 * as a receiving server may send them) through the normaliser and the
 * built-in rules must never read outside it or past the text buffer; the
 * normalised text never grows, and the class is a known one. The first
 * input byte picks ringmta's status and the result, the rest is the reply.
 * A first byte of 0xff makes the rest an operator's rules file instead:
 * loaded (or refused, with one line of error), then matched against a few
 * replies; nothing it holds may write outside a rule or leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/bounce/bclass.h"
#include "core/bounce/bclass_rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct bclass_rules *fz_rules;

static int fz_rules_file(const uint8_t *data, size_t size)
{
	static const char *const replies[] = {
		"550 5.1.1 no such user", "421 4.7.28 unusual rate", "452-4.2.2 full 4.2.2 x",
		"host mx[192.0.2.1]:25 said: 554 5.7.1 blocked", "",
	};
	struct bclass_rules *r;
	struct bclass_reply in;
	char err[512], buf[256];

	if (bclass_rules_new(&r) < 0)
		return 0;
	err[0] = '\0';
	if (bclass_rules_add_text(r, "f.yaml", data, size, err, sizeof(err)) < 0) {
		if (err[0] == '\0' || strchr(err, '\n') != NULL)
			abort();	/* an error says what, on one line */
	} else {
		for (unsigned i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
			bclass_reply_init(&in, replies[i], i & 1 ? "4.4.2" : NULL, !(i & 1), buf,
					  sizeof(buf));
			if (bclass_rules_match(r, &in, NULL) >= BCLASS_COUNT)
				abort();
		}
	}
	bclass_rules_unref(&r);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const ecodes[] = { NULL, "", "4.4.2", "5.1.1", "4.7.28", "5.0.0" };
	struct bclass_reply in;
	char err[256], buf[64], *reply;
	unsigned c;

	if (fz_rules == NULL &&
	    (bclass_rules_new(&fz_rules) < 0 ||
	     bclass_rules_add_builtin(fz_rules, err, sizeof(err)) < 0))
		abort();
	if (size == 0)
		return 0;
	if (data[0] == 0xff)
		return fz_rules_file(data + 1, size - 1);
	reply = malloc(size);		/* NUL-terminated, as stored replies are */
	memcpy(reply, data + 1, size - 1);
	reply[size - 1] = '\0';
	bclass_reply_init(&in, reply, ecodes[data[0] % 6], data[0] & 0x80, buf, sizeof(buf));
	if (in.br_len >= sizeof(buf) || in.br_len > strlen(reply) || in.br_text != buf ||
	    strlen(buf) != in.br_len || in.br_code < 200 || in.br_code > 599)
		abort();
	c = bclass_rules_match(fz_rules, &in, NULL);
	if (c >= BCLASS_COUNT)
		abort();
	free(reply);
	return 0;
}
