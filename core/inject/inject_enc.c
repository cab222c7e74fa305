/*
 * inject_enc.c: the encodings of built messages (inject_req.h): base64
 * bodies in 76-column lines, quoted-printable text, RFC 2047 encoded
 * words for header text, and the output buffer they append to. No I/O.
 */
#include "core/inject/inject_req.h"

#include <stdlib.h>
#include <string.h>

#define INJECT_ENC_LINE 76u	/* RFC 2045 6.7/6.8 */

void inject_buf_put(struct inject_buf *b, const void *p, size_t len)
{
	if (len == 0 || b->b_over || b->b_oom)
		return;	/* nothing to add: b_p may still be NULL, memcpy may not see it */
	if (b->b_max != 0 && len > b->b_max - b->b_len) {
		b->b_over = true;
		return;
	}
	if (len > b->b_cap - b->b_len) {
		size_t cap = b->b_cap ? b->b_cap : 1024;
		char *n;

		while (cap - b->b_len < len)
			cap *= 2;
		n = realloc(b->b_p, cap);
		if (n == NULL) {
			b->b_oom = true;
			return;
		}
		b->b_p = n;
		b->b_cap = cap;
	}
	memcpy(b->b_p + b->b_len, p, len);
	b->b_len += len;
}

void inject_buf_puts(struct inject_buf *b, const char *s)
{
	inject_buf_put(b, s, strlen(s));
}

void inject_buf_free(struct inject_buf *b)
{
	free(b->b_p);
	b->b_p = NULL;
	b->b_len = b->b_cap = 0;
}

static const char inject_b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* One group of up to 3 octets as 4 characters. */
static void inject_b64_group(const unsigned char *p, size_t n, char out[4])
{
	uint32_t v = (uint32_t)p[0] << 16 | (n > 1 ? (uint32_t)p[1] << 8 : 0) |
		     (n > 2 ? p[2] : 0);

	out[0] = inject_b64[v >> 18 & 63];
	out[1] = inject_b64[v >> 12 & 63];
	out[2] = n > 1 ? inject_b64[v >> 6 & 63] : '=';
	out[3] = n > 2 ? inject_b64[v & 63] : '=';
}

void inject_enc_base64(struct inject_buf *b, const unsigned char *p, size_t len)
{
	char line[INJECT_ENC_LINE + 2];
	size_t n = 0;

	for (size_t i = 0; i < len; i += 3) {
		inject_b64_group(p + i, len - i < 3 ? len - i : 3, line + n);
		n += 4;
		if (n == INJECT_ENC_LINE || i + 3 >= len) {
			line[n++] = '\r';
			line[n++] = '\n';
			inject_buf_put(b, line, n);
			n = 0;
		}
	}
}

size_t inject_enc_base64_flat(char *out, const unsigned char *p, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i += 3, n += 4)
		inject_b64_group(p + i, len - i < 3 ? len - i : 3, out + n);
	out[n] = '\0';
	return n;
}

static int inject_b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

long inject_dec_base64(const char *p, size_t len, unsigned char *out)
{
	uint32_t v = 0;
	unsigned n = 0, pad = 0;
	long o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		int d;

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		if (pad > 0 || (d = inject_b64_val(c)) < 0)
			return -1;	/* data after padding, or not base64 */
		v = v << 6 | (uint32_t)d;
		if (++n == 4) {
			out[o++] = (unsigned char)(v >> 16);
			out[o++] = (unsigned char)(v >> 8);
			out[o++] = (unsigned char)v;
			n = 0;
			v = 0;
		}
	}
	if (n == 1 || pad > 2 || (pad > 0 && n + pad != 4))
		return -1;
	if (n == 2) {
		out[o++] = (unsigned char)(v >> 4);
	} else if (n == 3) {
		out[o++] = (unsigned char)(v >> 10);
		out[o++] = (unsigned char)(v >> 2);
	}
	return o;
}

void inject_enc_qp(struct inject_buf *b, const char *p, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	char line[INJECT_ENC_LINE + 8];
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		bool eol = c == '\r' && i + 1 < len && p[i + 1] == '\n';
		bool at_end = i + 1 == len || (p[i + 1] == '\r' && i + 2 < len && p[i + 2] == '\n');
		char enc[3];
		size_t k;

		if (eol) {
			line[n++] = '\r';
			line[n++] = '\n';
			inject_buf_put(b, line, n);
			n = 0;
			i++;
			continue;
		}
		/* Printable ASCII but '=' stays; a blank before a line end is encoded. */
		if ((c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !at_end)) {
			enc[0] = (char)c;
			k = 1;
		} else {
			enc[0] = '=';
			enc[1] = hex[c >> 4];
			enc[2] = hex[c & 15];
			k = 3;
		}
		if (n + k > INJECT_ENC_LINE - 1) {	/* room for the soft break's '=' */
			line[n++] = '=';
			line[n++] = '\r';
			line[n++] = '\n';
			inject_buf_put(b, line, n);
			n = 0;
		}
		memcpy(line + n, enc, k);
		n += k;
	}
	if (n > 0) {
		line[n++] = '\r';
		line[n++] = '\n';
		inject_buf_put(b, line, n);
	}
}

/* Length of the UTF-8 sequence starting with c (1 for anything else),
 * so an encoded word never splits a character (RFC 2047 5). */
static size_t inject_utf8_len(unsigned char c)
{
	return c >= 0xf0 && c < 0xf8 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
}

void inject_enc_2047(struct inject_buf *b, const char *p, size_t len, size_t name_len)
{
	/* "=?UTF-8?B?" + 4/3 of 45 octets + "?=" = 72 <= 75 octets. */
	const size_t chunk = 45;
	bool first = true;
	size_t i = 0;

	(void)name_len;	/* each word has a line of its own after the first */
	if (len == 0)
		return;
	while (i < len) {
		size_t n = 0;
		char word[80];
		size_t w = 0;

		while (i + n < len) {
			size_t cl = inject_utf8_len((unsigned char)p[i + n]);

			if (n + cl > chunk)
				break;
			n += cl;
		}
		if (n == 0 || i + n > len)
			n = len - i < chunk ? len - i : chunk;
		if (!first)
			inject_buf_put(b, "\r\n ", 3);
		memcpy(word, "=?UTF-8?B?", 10);
		w = 10;
		for (size_t j = 0; j < n; j += 3) {
			inject_b64_group((const unsigned char *)p + i + j, n - j < 3 ? n - j : 3,
					 word + w);
			w += 4;
		}
		memcpy(word + w, "?=", 2);
		w += 2;
		inject_buf_put(b, word, w);
		i += n;
		first = false;
	}
}

bool inject_enc_header_plain(const char *p, size_t len)
{
	size_t line = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c >= 0x80 || c < 0x20 || c == 0x7f)
			return false;
		if (++line > 900)
			return false;
		/* "=?" would read as an encoded word */
		if (c == '=' && i + 1 < len && p[i + 1] == '?')
			return false;
	}
	return true;
}

bool inject_enc_body_plain(const char *p, size_t len)
{
	size_t line = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '\n') {
			line = 0;
			continue;
		}
		if (c >= 0x80 || c == 0 || (c == '\r' && (i + 1 == len || p[i + 1] != '\n')))
			return false;
		if (++line > 900)
			return false;
	}
	return true;
}
