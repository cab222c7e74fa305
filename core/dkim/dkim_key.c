/*
 * dkim_key: private keys for DKIM signing, loaded from PEM files with
 * BoringSSL: RSA of 1024..4096 bits (PKCS#1 or PKCS#8) and Ed25519
 * (PKCS#8). A key is immutable once loaded, so signing threads share it.
 * The only I/O of core/dkim is here: opening and reading the key file.
 */
#include "core/dkim/dkim_key.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/base64.h>
#include <openssl/bio.h>
#include <openssl/bytestring.h>
#include <openssl/curve25519.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#define DKIM_KEY_MAX_FILE (64 * 1024)

/* Reads the whole (small) file at path into a malloc'd buffer, after
 * checking on the open descriptor that it is a regular file that only its
 * owner may read. */
static char *dkim_key_read(const char *path, size_t *len_r, char *err, size_t errlen)
{
	struct stat st;
	char *buf;
	size_t got = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		snprintf(err, errlen, "dkim key %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "dkim key %s: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "dkim key %s: not a regular file", path);
		close(fd);
		return NULL;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, errlen, "dkim key %s: readable by group or others (mode %03o); chmod 600 %s",
			 path, (unsigned)(st.st_mode & 0777), path);
		close(fd);
		return NULL;
	}
	if (st.st_size <= 0 || st.st_size > DKIM_KEY_MAX_FILE) {
		snprintf(err, errlen, "dkim key %s: %s", path,
			 st.st_size <= 0 ? "empty" : "too large for a key");
		close(fd);
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		snprintf(err, errlen, "dkim key %s: out of memory", path);
		close(fd);
		return NULL;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	*len_r = got;
	return buf;
}

int dkim_key_load(struct dkim_key **key_r, const char *path, char *err, size_t errlen)
{
	struct dkim_key *key;
	EVP_PKEY *pkey;
	BIO *bio;
	char *pem;
	size_t len = 0;

	*key_r = NULL;
	pem = dkim_key_read(path, &len, err, errlen);
	if (pem == NULL)
		return -1;
	bio = BIO_new_mem_buf(pem, (int)len);
	pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	OPENSSL_cleanse(pem, len);
	free(pem);
	if (pkey == NULL) {
		snprintf(err, errlen, "dkim key %s: not a PEM private key", path);
		return -1;
	}
	key = calloc(1, sizeof(*key));
	if (key == NULL) {
		snprintf(err, errlen, "dkim key %s: out of memory", path);
		EVP_PKEY_free(pkey);
		return -1;
	}
	key->pkey = pkey;
	switch (EVP_PKEY_id(pkey)) {
	case EVP_PKEY_RSA:
		key->alg = DKIM_ALG_RSA_SHA256;
		key->rsa = EVP_PKEY_get0_RSA(pkey);
		key->bits = EVP_PKEY_bits(pkey);
		if (key->bits < 1024 || key->bits > 4096) {
			snprintf(err, errlen, "dkim key %s: RSA key of %u bits (1024..4096 allowed)",
				 path, key->bits);
			goto fail;
		}
		break;
	case EVP_PKEY_ED25519: {
		size_t sl = 32, pl = 32;

		key->alg = DKIM_ALG_ED25519_SHA256;
		key->bits = 256;
		if (!EVP_PKEY_get_raw_private_key(pkey, key->ed, &sl) ||
		    !EVP_PKEY_get_raw_public_key(pkey, key->ed + 32, &pl) || sl != 32 || pl != 32) {
			snprintf(err, errlen, "dkim key %s: unreadable Ed25519 key", path);
			goto fail;
		}
		break;
	}
	default:
		snprintf(err, errlen, "dkim key %s: neither RSA nor Ed25519", path);
		goto fail;
	}
	*key_r = key;
	return 0;
fail:
	dkim_key_free(key);
	return -1;
}

void dkim_key_free(struct dkim_key *key)
{
	if (key == NULL)
		return;
	EVP_PKEY_free(key->pkey);
	OPENSSL_cleanse(key->ed, sizeof(key->ed));
	free(key);
}

enum dkim_alg dkim_key_alg(const struct dkim_key *key)
{
	return key->alg;
}

unsigned dkim_key_bits(const struct dkim_key *key)
{
	return key->bits;
}

char *dkim_key_public_b64(const struct dkim_key *key)
{
	uint8_t *der = NULL;
	size_t derlen = 0, b64len;
	char *out = NULL;
	CBB cbb;

	if (key->alg == DKIM_ALG_ED25519_SHA256) {
		der = OPENSSL_malloc(32);
		if (der == NULL)
			return NULL;
		memcpy(der, key->ed + 32, 32);
		derlen = 32;
	} else {
		if (!CBB_init(&cbb, 512))
			return NULL;
		if (!EVP_marshal_public_key(&cbb, key->pkey) || !CBB_finish(&cbb, &der, &derlen)) {
			CBB_cleanup(&cbb);
			return NULL;
		}
	}
	if (EVP_EncodedLength(&b64len, derlen))
		out = malloc(b64len);
	if (out != NULL)
		EVP_EncodeBlock((uint8_t *)out, der, derlen);
	OPENSSL_free(der);
	return out;
}
