/*
 * libFuzzer target for core/bounce: a remote reply (arbitrary bytes,
 * as a receiving server may send them) through the normaliser and the
 * built-in rules must never read outside it or past the text buffer; the
 * normalised text never grows, and the class is a known one. The first
 * input byte picks ringmta's status and the result, the rest is the reply.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/bounce/bclass.h"
#include "core/bounce/bclass_rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct bclass_rules *fz_rules;

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
