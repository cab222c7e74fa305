/*
 * fuzz_smtp_limits: libFuzzer target for the LIMITS keyword reader
 * (core/wire/smtp_limits.c, RFC 9422).
 *
 * The input is read two ways. As the parameters of one LIMITS line, from
 * an exact-size heap block: every value taken must be 0 or within
 * 1..SMTP_LIMITS_VALUE_MAX, no more limits taken than there are "="
 * signs, and reading it again over values already set may only lower
 * them. As a server's stream: each complete reply goes through the
 * reply parser and smtp_limits_ehlo(), which must find nothing in a
 * reply that is not 250 and keep the same bounds.
 */
#include "core/wire/smtp_limits.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_limits_check(bool cond)
{
	if (!cond)
		abort();
}

static bool fuzz_limits_in_range(uint32_t v)
{
	return v <= SMTP_LIMITS_VALUE_MAX;
}

static void fuzz_limits_bounds(const struct smtp_limits *l)
{
	fuzz_limits_check(fuzz_limits_in_range(l->lm_rcptmax));
	fuzz_limits_check(fuzz_limits_in_range(l->lm_mailmax));
	fuzz_limits_check(fuzz_limits_in_range(l->lm_rcptdomainmax));
}

/* Each value of b is a (nonzero) value of a, or no higher than it. */
static bool fuzz_limits_not_higher(uint32_t was, uint32_t now)
{
	return was == 0 || (now != 0 && now <= was);
}

static void fuzz_limits_params(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);
	struct smtp_limits a, b;
	size_t eqs = 0;
	unsigned taken;

	memcpy(buf, data, size);
	for (size_t k = 0; k < size; k++)
		eqs += buf[k] == '=';
	memset(&a, 0, sizeof(a));
	taken = smtp_limits_parse(buf, size, &a);
	fuzz_limits_check(taken <= eqs);
	fuzz_limits_check(taken > 0 || (a.lm_rcptmax == 0 && a.lm_mailmax == 0 &&
					a.lm_rcptdomainmax == 0));
	fuzz_limits_bounds(&a);
	/* Again over the result: the same limits are found, none rises. */
	b = a;
	fuzz_limits_check(smtp_limits_parse(buf, size, &b) == taken);
	fuzz_limits_check(memcmp(&a, &b, sizeof(a)) == 0);
	/* Over arbitrary values: only lowered. */
	b.lm_rcptmax = 3;
	b.lm_mailmax = 0;
	b.lm_rcptdomainmax = SMTP_LIMITS_VALUE_MAX;
	smtp_limits_parse(buf, size, &b);
	fuzz_limits_check(fuzz_limits_not_higher(3, b.lm_rcptmax));
	fuzz_limits_check(b.lm_mailmax == a.lm_mailmax);
	fuzz_limits_check(fuzz_limits_not_higher(SMTP_LIMITS_VALUE_MAX, b.lm_rcptdomainmax));
	free(buf);
}

static void fuzz_limits_stream(const uint8_t *data, size_t size)
{
	struct smtp_reply_parser p;
	struct smtp_reply *r = malloc(sizeof(*r));
	size_t off = 0;

	smtp_reply_parser_init(&p);
	while (off < size) {
		struct smtp_limits l;
		size_t used = 0;
		int ret = smtp_reply_feed(&p, (const char *)data + off, size - off, &used, r);
		bool offered;

		off += used;
		if (ret != SMTP_REPLY_DONE)
			break;
		memset(&l, 0xa5, sizeof(l));
		offered = smtp_limits_ehlo(r, &l);
		fuzz_limits_bounds(&l);
		fuzz_limits_check(r->code == 250 || !offered);
		fuzz_limits_check(offered || (l.lm_rcptmax == 0 && l.lm_mailmax == 0 &&
					      l.lm_rcptdomainmax == 0));
	}
	free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_limits_params(data, size);
	fuzz_limits_stream(data, size);
	return 0;
}
