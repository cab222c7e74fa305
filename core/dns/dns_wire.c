/*
 * dns_wire.c: the walk of a raw DNS answer for its TTLs: the smallest
 * TTL of the answer records and the negative TTL (RFC 2308) of the SOA
 * records in the authority section. The bytes come from the network:
 * every read is bounds-checked, compression pointers are stepped over,
 * never followed. No I/O, no allocation, owns nothing; fuzzed by
 * tests/fuzz/fuzz_dns_ttl.c.
 */
#include "core/dns/dns_internal.h"

#include <string.h>

static uint16_t dns_wire_get16(const unsigned char *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t dns_wire_get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* RFC 2181 section 8: a TTL with the top bit set counts as zero. */
static uint32_t dns_wire_fix_ttl(uint32_t ttl)
{
	return ttl > 0x7fffffffu ? 0 : ttl;
}

/* Skip the name at *off (compressed or not) without reading at or past
 * end; pointers are not followed, only stepped over. 0 or -1. */
static int dns_wire_skip_name(const unsigned char *p, size_t end, size_t *off)
{
	size_t o = *off, total = 0;

	for (;;) {
		unsigned b;

		if (o >= end)
			return -1;
		b = p[o];
		if ((b & 0xc0u) == 0xc0u) {
			if (end - o < 2)
				return -1;
			*off = o + 2;
			return 0;
		}
		if (b & 0xc0u)
			return -1;	/* obsolete extended label types */
		if (b == 0) {
			*off = o + 1;
			return 0;
		}
		total += b + 1;
		if (total > 255)
			return -1;
		o += 1 + b;
	}
}

/*
 * Walk a DNS message: the smallest TTL of the answer records, and the
 * negative TTL of the SOA records in the authority section. Returns 0, or
 * -1 if the message is cut short or malformed.
 */
int dns_wire_ttls(const unsigned char *p, size_t len, struct dns_wire_ttl *r)
{
	unsigned qd, an, ns;
	size_t off = 12;

	memset(r, 0, sizeof(*r));
	if (p == NULL || len < 12)
		return -1;
	qd = dns_wire_get16(p + 4);
	an = dns_wire_get16(p + 6);
	ns = dns_wire_get16(p + 8);
	for (unsigned i = 0; i < qd; i++) {
		if (dns_wire_skip_name(p, len, &off) < 0 || len - off < 4)
			return -1;
		off += 4;
	}
	for (unsigned i = 0; i < an + ns; i++) {
		uint16_t type;
		uint32_t ttl;
		size_t rdlen;

		if (dns_wire_skip_name(p, len, &off) < 0 || len - off < 10)
			return -1;
		type = dns_wire_get16(p + off);
		ttl = dns_wire_fix_ttl(dns_wire_get32(p + off + 4));
		rdlen = dns_wire_get16(p + off + 8);
		off += 10;
		if (len - off < rdlen)
			return -1;
		if (i < an) {
			if (!r->wt_has_answer || ttl < r->wt_answer)
				r->wt_answer = ttl;
			r->wt_has_answer = true;
		} else if (type == DNS_TYPE_SOA) {
			size_t rd = off, rdend = off + rdlen;
			uint32_t min;

			/* MNAME, RNAME, then five 32-bit fields; MINIMUM last. */
			if (dns_wire_skip_name(p, rdend, &rd) < 0 ||
			    dns_wire_skip_name(p, rdend, &rd) < 0 || rdend - rd < 20)
				return -1;
			min = dns_wire_fix_ttl(dns_wire_get32(p + rd + 16));
			if (min < ttl)
				ttl = min;
			if (!r->wt_has_soa || ttl < r->wt_negative)
				r->wt_negative = ttl;
			r->wt_has_soa = true;
		}
		off += rdlen;
	}
	return 0;
}
