/*
 * dkim_ref.h: the slow reference body canonicalization for the unit test
 * and the fuzzer: whole lines, RFC 6376 3.4.3 and 3.4.4 as written, no
 * streaming. A last line without CRLF gets one after the steps (so its
 * trailing whitespace stays, as one SP in relaxed, as dkimpy does it).
 * out needs n + 2 bytes; returns the length written.
 */
#ifndef RINGMTA_TEST_DKIM_REF_H
#define RINGMTA_TEST_DKIM_REF_H

#include "core/dkim/dkim.h"

#include <string.h>

static inline size_t dkim_ref_body(enum dkim_canon c, const char *in, size_t n, char *out)
{
	size_t o = 0, i = 0, keep = 0;

	while (i < n) {
		size_t j = i, e, start = o;

		while (j < n && !(in[j] == '\r' && j + 1 < n && in[j + 1] == '\n'))
			j++;
		e = j;
		if (c == DKIM_CANON_RELAXED) {
			int sp = 0;

			for (size_t k = i; k < e; k++) {
				if (in[k] == ' ' || in[k] == '\t') {
					sp = 1;
					continue;
				}
				if (sp)
					out[o++] = ' ';
				sp = 0;
				out[o++] = in[k];
			}
			if (sp && j == n)
				out[o++] = ' ';	/* not before a CRLF: kept */
		} else {
			memcpy(out + o, in + i, e - i);
			o += e - i;
		}
		out[o++] = '\r';
		out[o++] = '\n';
		/* A line that is not empty is kept, with all before it. */
		if (o - 2 > start)
			keep = o;
		i = j < n ? j + 2 : n;
	}
	o = keep;
	if (o == 0 && c == DKIM_CANON_SIMPLE) {
		memcpy(out, "\r\n", 2);
		o = 2;
	}
	return o;
}

#endif
