/*
 * dkim: DKIM signatures (RFC 6376) with rsa-sha256 and ed25519-sha256
 * (RFC 8463), on BoringSSL's crypto. No I/O besides reading key files.
 *
 * A message is given as it will be stored and sent: header fields and
 * body with CRLF line ends, no dot-stuffing, in any number of iovec
 * pieces (a piece may end anywhere, even inside a CRLF). dkim_sign()
 * canonicalizes (simple or relaxed, headers and body separately),
 * hashes the body once per distinct body canonicalization, and returns
 * the DKIM-Signature fields to prepend, one per signature, folded, each
 * ending in CRLF. Never l=; t= always; x= when asked.
 *
 * Ownership: a dkim_key is immutable after dkim_key_load() and may be
 * used by several threads at once; dkim_key_free() when none uses it.
 * Strings passed in specs are borrowed for the call only.
 */
#ifndef RINGMTA_DKIM_H
#define RINGMTA_DKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

enum dkim_alg {
	DKIM_ALG_RSA_SHA256 = 0,	/* a=rsa-sha256, k=rsa */
	DKIM_ALG_ED25519_SHA256 = 1,	/* a=ed25519-sha256, k=ed25519 */
};

enum dkim_canon {
	DKIM_CANON_SIMPLE = 0,
	DKIM_CANON_RELAXED = 1,
};

struct dkim_key;

/*
 * Load a PEM private key: RSA (PKCS#1 or PKCS#8) of 1024..4096 bits, or
 * Ed25519 (PKCS#8, as "openssl genpkey -algorithm ed25519" writes it).
 * A file readable by group or others is refused, naming it (as is one
 * that is not a regular file). Returns 0, or -1 with err naming path.
 */
int dkim_key_load(struct dkim_key **key_r, const char *path, char *err, size_t errlen);
void dkim_key_free(struct dkim_key *key);
enum dkim_alg dkim_key_alg(const struct dkim_key *key);
unsigned dkim_key_bits(const struct dkim_key *key);	/* 256 for Ed25519 */
/* The p= value its DNS record must carry (base64 of the RSA
 * SubjectPublicKeyInfo DER, or of the 32-byte Ed25519 public key);
 * malloc'd, NUL-terminated; NULL without memory. */
char *dkim_key_public_b64(const struct dkim_key *key);

/* The header fields signed by default (RFC 6376 5.4.1), NULL-terminated. */
extern const char *const dkim_default_headers[];

/* One signature to make. */
struct dkim_sign_spec {
	const struct dkim_key *key;
	const char *domain;		/* d= */
	const char *selector;		/* s= */
	enum dkim_canon hcanon, bcanon;
	/* Header names to sign, NULL-terminated; NULL: dkim_default_headers.
	 * Every name is signed once per instance present (bottom-up, RFC
	 * 6376 5.4.2); names in oversign once more, so no further instance
	 * can be added without breaking the signature. */
	const char *const *headers;
	const char *const *oversign;	/* NULL: none */
	uint64_t timestamp;		/* t=, unix seconds */
	uint64_t expire;		/* x=, unix seconds; 0: none */
};

/*
 * Sign msg (iov, iovcnt) once per spec. On success *out_r is a malloc'd
 * string with nspecs DKIM-Signature fields (in spec order) and *outlen_r
 * its length. Returns 0, or -1 with err (a message without a header/body
 * boundary is still signed: its body is empty).
 */
int dkim_sign(const struct dkim_sign_spec *specs, unsigned nspecs,
	      const struct iovec *iov, unsigned iovcnt,
	      char **out_r, size_t *outlen_r, char *err, size_t errlen);

/*
 * Canonicalization, exposed for tests and the fuzzer.
 * dkim_canon_header: one header field (name ":" value, with any folding,
 * without its final CRLF) into out (cap bytes), relaxed or simple (as
 * is). Returns the length written (without a CRLF), or -1 if cap is too
 * small. The relaxed output never exceeds the input's length + 2.
 */
long dkim_canon_header(enum dkim_canon c, const char *field, size_t len, char *out, size_t cap);

/* Body canonicalization, streamed: feed pieces, then finish. */
struct dkim_body_canon {
	enum dkim_canon c;
	/* private: the canonicalizer's state */
	uint64_t blank_lines;		/* empty lines held back */
	bool cr;			/* last byte fed was CR */
	bool wsp;			/* relaxed: whitespace held back */
	bool line_empty;		/* nothing on the current line yet */
	bool any;			/* any non-blank line emitted */
	/* private: may change */
	void (*emit)(void *ctx, const void *p, size_t n);
	void *ctx;
};
void dkim_body_canon_init(struct dkim_body_canon *b, enum dkim_canon c,
			  void (*emit)(void *ctx, const void *p, size_t n), void *ctx);
void dkim_body_canon_feed(struct dkim_body_canon *b, const char *p, size_t n);
void dkim_body_canon_finish(struct dkim_body_canon *b);

/*
 * The From header's address domain in msg, lower-cased, into buf (cap
 * bytes). Returns 1 when found, 0 when there is no From field or it holds
 * no address, -1 when there is more than one From field or more than one
 * address in it (DMARC cannot name one author domain).
 */
int dkim_from_domain(const struct iovec *iov, unsigned iovcnt, char *buf, size_t cap);

#endif
