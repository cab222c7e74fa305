/*
 * qrecord_v3.h: a v3 queue record written by hand, for the unit tests
 * (test_qrecord.c reads it, test_queue.c upgrades a store holding it).
 * Header-only: each test program has its own copy.
 */
#ifndef RINGMTA_TESTS_QRECORD_V3_H
#define RINGMTA_TESTS_QRECORD_V3_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "queue/qrecord.h"

/* Little-endian helpers to write a v3 record by hand, as the previous
 * release wrote it (its encoder is gone; the bytes are the contract). */
static inline unsigned char *v3_put(unsigned char *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
	return p + n;
}

static inline unsigned char *v3_str(unsigned char *p, const char *s)
{
	size_t n = strlen(s);

	p = v3_put(p, n, 2);
	memcpy(p, s, n);
	return p + n;
}

/* An RMQ3 record: 2 recipients, the first pending with 4 attempts and a
 * non-zero pad byte (v3 ignored it: it must not read as a class). */
static inline size_t v3_record(unsigned char *buf, uint64_t next)
{
	unsigned char *p = buf;

	p = v3_put(p, 0x33514d52u, 4);		/* "RMQ3" */
	p = v3_put(p, 1000, 8);			/* arrival */
	p = v3_put(p, next, 8);			/* next_attempt */
	p = v3_put(p, 5, 8);			/* size */
	p = v3_put(p, 0, 4);			/* flags */
	p = v3_put(p, 2, 4);			/* nrcpt */
	p = v3_str(p, "old@example.org");
	p = v3_str(p, "192.0.2.1");
	p = v3_str(p, "old.example.org");
	*p++ = QRCPT_PENDING;
	*p++ = 0x7f;				/* pad */
	p = v3_put(p, 4, 2);
	p = v3_put(p, next, 8);
	p = v3_str(p, "r1@example.com");
	p = v3_str(p, "451 4.3.0 later");
	*p++ = QRCPT_DELIVERED;
	*p++ = 0;
	p = v3_put(p, 1, 2);
	p = v3_put(p, 0, 8);
	p = v3_str(p, "r2@example.com");
	p = v3_str(p, "250 ok");
	return (size_t)(p - buf);
}

#endif
