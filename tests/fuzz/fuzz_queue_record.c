/*
 * libFuzzer target for queue/qrecord: decoding arbitrary bytes must never
 * read outside them, and whatever decodes must re-encode to the same
 * bytes (a v5 record) or to a v5 record with the same content (a v4 or v3
 * one, which encode upgrades: 3 bytes longer per message and per
 * recipient for the DSN parameters, v3 also 14 for pool "", no strip, no
 * classes).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/qrecord.h"

/* Equal bytes; a field of length 0 may have a NULL pointer. */
static bool fuzz_same(const void *a, const void *b, size_t n)
{
	return n == 0 || memcmp(a, b, n) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qrecord r;
	struct qrcpt *rcpts;
	size_t off = 0, n;
	uint32_t i = 0;
	unsigned char *copy, *again;

	/* A private copy so ASan sees any read past the end. */
	copy = malloc(size ? size : 1);
	memcpy(copy, data, size);
	if (qrecord_decode(copy, size, &r) != 0) {
		free(copy);
		return 0;
	}
	rcpts = calloc(r.nrcpt ? r.nrcpt : 1, sizeof(*rcpts));
	while (qrecord_rcpt_next(&r, &off, &rcpts[i]))
		i++;
	if (i != r.nrcpt)
		abort();
	r.rcpts = rcpts;
	n = qrecord_encoded_size(&r);
	if (n != size + (r.version == 3 ? 2 + 12 : 0) +
		 (r.version < 5 ? 3 + 3 * (size_t)r.nrcpt : 0))
		abort();
	again = malloc(n);
	qrecord_encode(&r, again);
	if (r.version == 5 && memcmp(again, copy, size) != 0)
		abort();
	/* v3's pad byte after each state is not significant: compare fields. */
	{
		struct qrecord r2;
		size_t o1 = 0, o2 = 0;
		struct qrcpt a, b;

		if (qrecord_decode(again, n, &r2) != 0 || r2.nrcpt != r.nrcpt ||
		    r2.arrival != r.arrival || r2.size != r.size ||
		    r2.sender_len != r.sender_len ||
		    !fuzz_same(r2.sender, r.sender, r.sender_len) || r2.version != 5 ||
		    r2.dsn_ret != r.dsn_ret || r2.envid_len != r.envid_len ||
		    !fuzz_same(r2.envid, r.envid, r.envid_len) ||
		    r2.pool_len != r.pool_len || !fuzz_same(r2.pool, r.pool, r.pool_len) ||
		    r2.strip_off != r.strip_off || r2.strip_len != r.strip_len)
			abort();
		while (qrecord_rcpt_next(&r, &o1, &a)) {
			if (!qrecord_rcpt_next(&r2, &o2, &b) || a.state != b.state ||
			    a.addr_len != b.addr_len || !fuzz_same(a.addr, b.addr, a.addr_len) ||
			    a.next_attempt != b.next_attempt || a.attempts != b.attempts ||
			    a.bclass != b.bclass || a.notify != b.notify ||
			    a.orcpt_len != b.orcpt_len ||
			    !fuzz_same(a.orcpt, b.orcpt, a.orcpt_len))
				abort();
		}
	}
	free(again);
	free(rcpts);
	free(copy);
	return 0;
}
