/*
 * auth_keys.c: the public keys file for the JWT check: PEM "PUBLIC KEY"
 * blocks (RFC 7468), each RSA of 2048 to 8192 bits or EC on P-256, with
 * any text between the blocks. Errors name the file and the line of the
 * block. Owns auth_db.ad_keys; auth_jwt.c only reads them.
 */
#include "core/sasl/auth_internal.h"

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Check and keep one key; NULL, or why it was refused. */
static const char *auth_keys_add(struct auth_db *db, EVP_PKEY *k)
{
	EVP_PKEY **nk;

	if (EVP_PKEY_id(k) == EVP_PKEY_RSA) {
		unsigned bits = RSA_bits(EVP_PKEY_get0_RSA(k));

		if (bits < 2048 || bits > 8 * AUTH_JWT_SIG_MAX)
			return "RSA key not of 2048 to 8192 bits";
	} else if (EVP_PKEY_id(k) == EVP_PKEY_EC) {
		const EC_GROUP *g = EC_KEY_get0_group(EVP_PKEY_get0_EC_KEY(k));

		if (g == NULL || EC_GROUP_get_curve_name(g) != NID_X9_62_prime256v1)
			return "EC key not on P-256 (ES256)";
	} else {
		return "unsupported key type (want RSA or EC P-256)";
	}
	if (db->ad_nkeys == AUTH_KEYS_MAX)
		return "too many keys";
	nk = reallocarray(db->ad_keys, db->ad_nkeys + 1, sizeof(*nk));
	if (nk == NULL)
		return "out of memory";
	db->ad_keys = nk;
	db->ad_keys[db->ad_nkeys++] = k;
	return NULL;
}

/* Compare the text of a line (without its end) with s. */
static bool auth_keys_line_is(const char *p, const char *eol, const char *s)
{
	return (size_t)(eol - p) == strlen(s) && memcmp(p, s, (size_t)(eol - p)) == 0;
}

int auth_keys_load(struct auth_db *db, const char *path, char *err, size_t errlen)
{
	static const char begin[] = "-----BEGIN ", dashes[] = "-----";
	char *text, *p, *end, *block = NULL;
	const char *why = NULL;
	unsigned line = 0, block_line = 0;
	size_t len;

	if (auth_read_file(path, &text, &len, err, errlen) != 0)
		return -1;
	p = text;
	end = text + len;
	/* Text outside the blocks is allowed (RFC 7468 section 2). */
	while (p < end && why == NULL) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *next = nl != NULL ? nl + 1 : end, *eol = nl != NULL ? nl : end;

		line++;
		if (eol > p && eol[-1] == '\r')
			eol--;
		if (block == NULL && (size_t)(eol - p) >= sizeof(begin) - 1 &&
		    memcmp(p, begin, sizeof(begin) - 1) == 0) {
			block = p;
			block_line = line;
			if (!auth_keys_line_is(p, eol, "-----BEGIN PUBLIC KEY-----"))
				why = "PEM block is not a PUBLIC KEY";
		} else if (block != NULL && (size_t)(eol - p) >= sizeof(dashes) - 1 &&
			   memcmp(p, dashes, sizeof(dashes) - 1) == 0) {
			BIO *bio;
			EVP_PKEY *k;

			if (!auth_keys_line_is(p, eol, "-----END PUBLIC KEY-----")) {
				why = "unexpected PEM line inside a PUBLIC KEY block";
				block_line = line;
				break;
			}
			bio = BIO_new_mem_buf(block, (int)(next - block));
			k = bio != NULL ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
			BIO_free(bio);
			ERR_clear_error();
			if (k == NULL)
				why = "unreadable PUBLIC KEY block";
			else if ((why = auth_keys_add(db, k)) != NULL)
				EVP_PKEY_free(k);
			if (why == NULL)
				block = NULL;
		}
		p = next;
	}
	free(text);
	if (why == NULL && block != NULL)
		why = "PUBLIC KEY block without its END line";
	if (why != NULL) {
		snprintf(err, errlen, "%s:%u: %s", path, block_line, why);
		auth_keys_free(db);
		return -1;
	}
	if (db->ad_nkeys == 0) {
		snprintf(err, errlen, "%s: no PUBLIC KEY block", path);
		return -1;
	}
	return 0;
}

void auth_keys_free(struct auth_db *db)
{
	for (size_t i = 0; i < db->ad_nkeys; i++)
		EVP_PKEY_free(db->ad_keys[i]);
	free(db->ad_keys);
	db->ad_keys = NULL;
	db->ad_nkeys = 0;
}
