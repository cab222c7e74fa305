/*
 * dns_internal.h: what the pieces of core/dns share, and nothing outside
 * them may use: the limits and TTLs, struct dns itself, and the calls
 * between the resolver (dns.c), the wire walker (dns_wire.c), the name
 * and literal checks (dns_name.c), the route cache (dns_cache.c), the
 * c-ares socket watches (dns_sock.c) and the lookups (dns_lookup.c).
 * Everything runs on the thread of the struct dns it is given. Outside
 * core/dns*.c only tests/fuzz/fuzz_dns_ttl.c includes it, to reach the
 * parsers of untrusted bytes directly.
 */
#ifndef RINGMTA_DNS_INTERNAL_H
#define RINGMTA_DNS_INTERNAL_H

#include "core/dns/dns.h"

#include <ares.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define DNS_NAME_MAX 253		/* presentation form, no trailing dot */
#define DNS_TIMEOUT_MS 2000		/* first try; c-ares doubles it per round */
#define DNS_TRIES 2
#define DNS_TTL_MAX 86400u		/* positive answers */
#define DNS_TTL_NEG_MAX 10800u		/* NXDOMAIN with an SOA (RFC 2308) */
#define DNS_TTL_NXDOMAIN 60u		/* NXDOMAIN without an SOA */
#define DNS_TTL_FAIL 30u		/* temporary failures */
#define DNS_TTL_UNKNOWN 300u		/* an answer whose TTL we could not read */
#define DNS_MX_CAND 32			/* MX records considered per domain */

#define DNS_CACHE_BUCKETS 1024u		/* power of two */
#define DNS_CACHE_MAX 4096u		/* entries; the oldest go first */
#define DNS_SWEEP_BUCKETS 64u		/* scanned for expired entries per tick */
#define DNS_INFLIGHT_BUCKETS 64u	/* power of two */

#define DNS_TYPE_SOA 6
#define DNS_TYPE_MX 15
#define DNS_CLASS_IN 1

struct dns_sock;	/* dns_sock.c */
struct dns_lookup;	/* dns_lookup.c */
struct dns_centry;	/* dns_cache.c */

/* One per worker thread; allocated by dns_init, freed by dns_destroy. */
struct dns {
	struct io_loop *d_loop;
	ares_channel d_chan;
	bool d_closing;			/* in dns_destroy: no callbacks */
	uint32_t d_seed;		/* hash seed */
	uint64_t d_rng;			/* xorshift64 state */
	struct dns_sock **d_socks;
	unsigned d_nsocks;
	struct dns_centry *d_cache[DNS_CACHE_BUCKETS];
	struct dns_centry *d_oldest, *d_newest;
	unsigned d_ncache;
	unsigned d_sweep;		/* next bucket to sweep */
	struct dns_lookup *d_inflight[DNS_INFLIGHT_BUCKETS];
	struct dns_stats d_stats;
};

/* ---- dns.c ---- */

/* The next xorshift64 value of d's generator. */
uint64_t dns_rand(struct dns *d);
/* Make r a failure with status st and a formatted dr_error. */
void dns_route_fail(struct dns_route *r, enum dns_status st,
		    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- dns_wire.c: TTLs of a raw answer (untrusted bytes) ---- */

struct dns_wire_ttl {
	uint32_t wt_answer;		/* smallest TTL in the answer section */
	uint32_t wt_negative;		/* smallest min(SOA TTL, SOA MINIMUM) */
	bool wt_has_answer;
	bool wt_has_soa;
};

/*
 * Walk a DNS message: the smallest TTL of the answer records, and the
 * negative TTL of the SOA records in the authority section. Returns 0, or
 * -1 if the message is cut short or malformed. Never reads past p[len).
 */
int dns_wire_ttls(const unsigned char *p, size_t len, struct dns_wire_ttl *r);

/* ---- dns_name.c: domains and address literals (untrusted text) ---- */

/*
 * Lower-case domain into out, without its trailing dot. Returns the
 * length, or -1 unless it is a plain hostname-like DNS name (letters,
 * digits, '-', '_'; labels of 1 to 63).
 */
int dns_name_normalize(const char *domain, char out[DNS_NAME_MAX + 1]);
/* An IPv4 or IPv6 address in s[0..len) into ss (port 0); family may be
 * AF_UNSPEC. 0 or -1. */
int dns_name_parse_ip(const char *s, size_t len, int family,
		      struct sockaddr_storage *ss);
/*
 * An RFC 5321 address literal: "[192.0.2.1]" or "[IPv6:2001:db8::1]".
 * Returns 1 with the address, 0 if s is no literal, -1 if malformed.
 */
int dns_name_parse_literal(const char *s, struct sockaddr_storage *ss);

/* ---- dns_cache.c: routes by lower-cased domain, h its dns hash ---- */

/* A copy of the live route cached under key into r_r: true, or false
 * (an expired entry is dropped on the way). */
bool dns_cache_get(struct dns *d, const char *key, size_t len, uint32_t h,
		   uint64_t now, struct dns_route *r_r);
/* Cache r under key for ttl seconds; silently skipped without memory. */
void dns_cache_put(struct dns *d, const char *key, size_t len, uint32_t h,
		   const struct dns_route *r, uint32_t ttl, uint64_t now);
/* Once a tick: drop the expired entries of the next few buckets. */
void dns_cache_sweep(struct dns *d, uint64_t now);
/* Free every entry (dns_destroy). */
void dns_cache_clear(struct dns *d);

/* ---- dns_sock.c: io_watches of the c-ares sockets ---- */

/* c-ares' sock_state_cb; data is the struct dns. */
void dns_sock_state(void *data, ares_socket_t fd, int readable, int writable);
/* Free every watch slot without waiting for its poll (dns_destroy). */
void dns_sock_free_all(struct dns *d);

/* ---- dns_lookup.c: lookups in flight ---- */

/*
 * Call cb(ctx, route) once the route of name (normalized, len bytes,
 * hash h) is known: joins the lookup in flight for name or starts one.
 * cb may run before this returns. -1 without memory: nothing was queued
 * and the caller answers cb itself.
 */
int dns_lookup_join(struct dns *d, const char *name, size_t len, uint32_t h,
		    dns_route_fn *cb, void *ctx);
/* Free every lookup in flight without calling back (dns_destroy). */
void dns_lookup_free_all(struct dns *d);

#endif
