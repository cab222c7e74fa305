/*
 * tls_lib: the TLS library ringmta is built against (BoringSSL). For now
 * it only identifies the library and checks it initialises; the TLS
 * engine (memory BIOs over io_uring) lands with STARTTLS.
 */
#ifndef RINGMTA_TLS_LIB_H
#define RINGMTA_TLS_LIB_H

/* Initialise the library; returns 0, or -1 if it cannot create a context. */
int tls_lib_init(void);
/* Human-readable library version, static storage. */
const char *tls_lib_version(void);
/* BoringSSL's API version (BORINGSSL_API_VERSION) built against. */
unsigned tls_lib_api_version(void);

#endif
