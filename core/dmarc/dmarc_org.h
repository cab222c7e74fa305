/*
 * dmarc_org: organizational domains (DMARC, RFC 7489 3.2) and relaxed
 * identifier alignment, from the Public Suffix List through libpsl
 * (Debian's publicsuffix data, loaded once; the copy built into libpsl
 * when that file is missing).
 *
 * Thread-safe after dmarc_org_init(), which main() calls before any
 * thread starts (later calls are no-ops).
 */
#ifndef RINGMTA_DMARC_ORG_H
#define RINGMTA_DMARC_ORG_H

#include <stdbool.h>
#include <stddef.h>

void dmarc_org_init(void);
/* The organizational domain of domain (lower-cased) into buf; the domain
 * itself when it is a public suffix or has no registrable part. Returns
 * the length, or -1 if buf is too small or domain is empty. */
int dmarc_org_domain(const char *domain, char *buf, size_t cap);
/* Relaxed alignment: a and b have the same organizational domain
 * (case-insensitive). False when either is empty. */
bool dmarc_org_aligned(const char *a, const char *b);

#endif
