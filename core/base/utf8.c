/*
 * utf8.c: see utf8.h. The table of RFC 3629 section 4: the second octet's
 * range depends on the first (E0: A0..BF, ED: 80..9F, F0: 90..BF, F4:
 * 80..8F), every other continuation octet is 80..BF.
 */
#include "core/base/utf8.h"

size_t utf8_seq_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xbf;
	size_t len;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;	/* overlong */
		else if (c == 0xed)
			hi = 0x9f;	/* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;	/* overlong */
		else if (c == 0xf4)
			hi = 0x8f;	/* above U+10FFFF */
	} else {
		return 0;	/* a continuation octet, C0/C1 (overlong), F5..FF */
	}
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

bool utf8_valid(const char *p, size_t n)
{
	const unsigned char *u = (const unsigned char *)p, *end = u + n;

	while (u < end) {
		size_t len = utf8_seq_len(u, (size_t)(end - u));

		if (len == 0)
			return false;
		u += len;
	}
	return true;
}
