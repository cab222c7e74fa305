/* xtext.c: RFC 3461 xtext; see xtext.h. */
#include "core/base/xtext.h"

static int xtext_hex(unsigned char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

bool xtext_valid(const char *p, size_t n, bool utf8)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (ch == '+') {
			if (n - i < 3 || xtext_hex((unsigned char)p[i + 1]) < 0 ||
			    xtext_hex((unsigned char)p[i + 2]) < 0)
				return false;
			i += 2;
		} else if (ch >= 0x80) {
			if (!utf8)
				return false;
		} else if (ch < 33 || ch > 126 || ch == '=') {
			return false;
		}
	}
	return true;
}

size_t xtext_decode(const char *p, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int hi, lo;

		if (p[i] == '+' && n - i >= 3 && (hi = xtext_hex((unsigned char)p[i + 1])) >= 0 &&
		    (lo = xtext_hex((unsigned char)p[i + 2])) >= 0) {
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			out[o++] = p[i];
		}
	}
	return o;
}
