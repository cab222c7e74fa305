/*
 * dns_sync: blocking DNS lookups with c-ares, for code that may block:
 * work pool threads (SPF checks) and command-line tools (ringmta domain
 * check). Workers never call it; they use dns.h.
 *
 * One struct dns_sync owns one c-ares channel with the configured
 * servers (dns_servers, "ip[:port]" items; empty: /etc/resolv.conf),
 * no search list, no /etc/hosts. A lookup sends one query and waits in
 * poll() until c-ares answers or gives up (timeout_ms per try, two
 * tries), so a lookup never takes more than about 2 * timeout_ms.
 *
 * Thread safety: a struct dns_sync is used by one thread at a time
 * (c-ares channels are not shared); make one per thread or guard it.
 *
 * Ownership: a struct dns_sync_result owns its records and their text;
 * dns_sync_result_free() releases them (also after an error).
 */
#ifndef RINGMTA_DNS_SYNC_H
#define RINGMTA_DNS_SYNC_H

#include <stddef.h>
#include <stdint.h>

struct dns_sync;

enum dns_sync_status {
	DNS_SYNC_OK = 0,	/* at least one record of the type */
	DNS_SYNC_NODATA = 1,	/* the name exists, no record of the type */
	DNS_SYNC_NXDOMAIN = 2,	/* the name does not exist */
	DNS_SYNC_TEMP = 3,	/* SERVFAIL, timeout, refused: try later */
	DNS_SYNC_ERROR = 4,	/* malformed answer, bad name, no memory */
};

/* Record types asked for (the wire values). */
enum {
	DNS_SYNC_A = 1,
	DNS_SYNC_PTR = 12,
	DNS_SYNC_MX = 15,
	DNS_SYNC_TXT = 16,
	DNS_SYNC_AAAA = 28,
};

struct dns_sync_rr {
	uint32_t dr_ttl;
	uint16_t dr_pref;		/* MX only */
	unsigned char dr_addr[16];	/* A (4 bytes) or AAAA (16) */
	size_t dr_len;			/* text length (TXT may hold NULs) */
	char *dr_text;			/* TXT (its strings joined), MX
					 * exchange, PTR name; NUL-terminated;
					 * NULL for A and AAAA */
};

struct dns_sync_result {
	enum dns_sync_status ds_status;
	unsigned ds_n;			/* records of the type asked for */
	struct dns_sync_rr *ds_rr;	/* owned */
	char ds_error[128];		/* why, when not DNS_SYNC_OK */
};

/* servers as dns_servers stores it; timeout_ms per try (>= 100).
 * Returns 0 or -1 with err. */
int dns_sync_new(struct dns_sync **d_r, const char *servers, unsigned timeout_ms,
		 char *err, size_t errlen);
void dns_sync_free(struct dns_sync **d);

/* Look up name (absolute, no trailing dot needed) for type; fills r (to
 * free with dns_sync_result_free) and returns r->ds_status. */
enum dns_sync_status dns_sync_lookup(struct dns_sync *d, const char *name, int type,
				     struct dns_sync_result *r);
/* The reverse name of an address (AF_INET or AF_INET6, addr in network
 * order) into buf (at least 74 bytes): "4.3.2.1.in-addr.arpa". */
void dns_sync_reverse_name(int family, const void *addr, char *buf, size_t cap);
void dns_sync_result_free(struct dns_sync_result *r);
/* The answer walker, for tests and the fuzzer: the records of type in
 * the answer section of abuf (alen bytes, untrusted) into r, which the
 * caller zeroed and frees whatever the result. 0, or -1 when malformed. */
int dns_sync_parse(const unsigned char *abuf, int alen, int type, struct dns_sync_result *r);
const char *dns_sync_status_name(enum dns_sync_status st);

#endif
