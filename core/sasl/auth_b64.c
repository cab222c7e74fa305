/*
 * auth_b64.c: strict base64 (RFC 4648 section 4) for SASL responses and
 * unpadded base64url (RFC 7515 section 2) for JWT parts, over BoringSSL's
 * decoder, refusing what it lets through: whitespace, padding in the
 * middle and stray bits in the last quad. Also the encoder for challenges.
 */
#include "core/sasl/auth_internal.h"

#include <openssl/base64.h>

#include <string.h>

static int auth_b64_index(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Whether the last quad of an already decoded text leaves no stray bits. */
static bool auth_b64_canonical(const char *q)
{
	if (q[3] != '=')
		return true;
	if (q[2] == '=')
		return (auth_b64_index((unsigned char)q[1]) & 0x0f) == 0;
	return (auth_b64_index((unsigned char)q[2]) & 0x03) == 0;
}

int auth_b64_decode(const char *in, size_t len, uint8_t *out, size_t outmax, size_t *len_r)
{
	size_t n = 0;

	*len_r = 0;
	if (len % 4 != 0 || len / 4 * 3 > outmax)
		return -1;
	if (len == 0)
		return 0;
	if (!EVP_DecodeBase64(out, &n, outmax, (const uint8_t *)in, len))
		return -1;
	if (!auth_b64_canonical(in + len - 4))
		return -1;
	*len_r = n;
	return 0;
}

int auth_b64url_decode(const char *in, size_t len, uint8_t *out, size_t outmax, size_t *len_r)
{
	size_t o = 0;

	*len_r = 0;
	if (len % 4 == 1)
		return -1;
	/* BoringSSL decodes the standard alphabet; map a quad at a time. */
	for (size_t i = 0; i < len; i += 4) {
		char q[4];
		uint8_t tmp[3];
		size_t k = len - i < 4 ? len - i : 4, n = 0;

		for (size_t j = 0; j < 4; j++) {
			char c = j < k ? in[i + j] : '=';

			if (c == '+' || c == '/' || (j < k && c == '='))
				return -1;
			q[j] = c == '-' ? '+' : c == '_' ? '/' : c;
		}
		if (!EVP_DecodeBase64(tmp, &n, sizeof(tmp), (const uint8_t *)q, 4) ||
		    !auth_b64_canonical(q) || n > outmax - o)
			return -1;
		memcpy(out + o, tmp, n);
		o += n;
	}
	*len_r = o;
	return 0;
}

int auth_b64_encode(char *out, size_t outlen, const uint8_t *in, size_t len)
{
	size_t need;

	if (!EVP_EncodedLength(&need, len) || need > outlen || out == NULL)
		return -1;
	EVP_EncodeBlock((uint8_t *)out, in, len);
	return 0;
}
