/* tls_lib.c: see tls_lib.h. */
#include "tls/tls_lib.h"

#include <openssl/crypto.h>
#include <openssl/ssl.h>

int tls_lib_init(void)
{
	SSL_CTX *ctx;

	if (!OPENSSL_init_ssl(0, NULL))
		return -1;
	ctx = SSL_CTX_new(TLS_method());
	if (ctx == NULL)
		return -1;
	SSL_CTX_free(ctx);
	return 0;
}

const char *tls_lib_version(void)
{
	return OpenSSL_version(OPENSSL_VERSION);
}

unsigned tls_lib_api_version(void)
{
	return BORINGSSL_API_VERSION;
}
