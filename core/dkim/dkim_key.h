/*
 * dkim_key.h: the private key object, private to core/dkim (dkim_key.c
 * loads it, dkim_sign.c signs with it). Immutable after loading.
 */
#ifndef RINGMTA_DKIM_KEY_H
#define RINGMTA_DKIM_KEY_H

#include "core/dkim/dkim.h"

#include <openssl/evp.h>

struct dkim_key {
	enum dkim_alg alg;
	unsigned bits;
	EVP_PKEY *pkey;		/* owned */
	RSA *rsa;		/* RSA keys: borrowed from pkey */
	uint8_t ed[64];		/* Ed25519: seed, then public key */
};

#endif
