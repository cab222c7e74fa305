/*
 * dns: asynchronous resolution of a mail domain to its delivery hosts
 * (RFC 5321 section 5.1), with c-ares driven from a worker's io_loop.
 *
 * One struct dns per worker thread; everything runs on that thread. The
 * c-ares sockets are watched with io_watch; c-ares timeouts are driven by
 * dns_tick() once a second. Answers are cached for their TTL (the
 * smallest TTL of the MX and address records used), failures for a short
 * negative TTL.
 *
 * Routing rules: MX records in preference order, equal preferences in
 * random order; no MX records (NODATA) means the implicit MX, the domain
 * itself; a null MX (RFC 7505: one MX, preference 0, exchange ".") fails
 * at once; NXDOMAIN fails permanently; SERVFAIL, timeouts and MX hosts
 * with no address give a temporary failure. An MX host whose address
 * lookup fails is skipped if others remain.
 */
#ifndef RINGMTA_DNS_H
#define RINGMTA_DNS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct io_loop;
struct dns;

#define DNS_MAX_HOSTS 10	/* MX hosts kept per domain */
#define DNS_MAX_ADDRS 8		/* addresses kept per host */

enum dns_status {
	DNS_OK = 0,
	DNS_NULL_MX = 1,	/* permanent: 5.1.10 */
	DNS_NXDOMAIN = 2,	/* permanent: 5.1.2 */
	DNS_TEMPFAIL = 3,	/* temporary: 4.4.3 */
	DNS_NO_ADDRESS = 4,	/* temporary: 4.4.3, no host had an address */
};

struct dns_host {
	char dh_name[256];		/* the MX exchange (or the domain) */
	uint16_t dh_pref;
	unsigned dh_naddr;
	struct sockaddr_storage dh_addr[DNS_MAX_ADDRS];	/* port 0 */
};

struct dns_route {
	enum dns_status dr_status;
	bool dr_implicit;		/* no MX: the domain's own addresses */
	unsigned dr_nhosts;
	struct dns_host dr_hosts[DNS_MAX_HOSTS];
	char dr_error[128];		/* for logs and bounces when not DNS_OK */
};

/*
 * Called once per dns_resolve(), on the loop's thread; r is valid only
 * during the call. May be called before dns_resolve() returns (cache hit).
 */
typedef void dns_route_fn(void *ctx, const struct dns_route *r);

struct dns_stats {
	uint64_t lookups;		/* queries sent to servers */
	uint64_t failures;		/* lookups that ended in an error */
	uint64_t cache_hits;
};

/*
 * servers: "ip[:port],ip[:port]..." or NULL/"" for /etc/resolv.conf.
 * Returns 0 or -1 with a message in err.
 */
int dns_init(struct dns **d_r, struct io_loop *loop, const char *servers,
	     char *err, size_t errlen);
void dns_destroy(struct dns **d);
/* Resolve the delivery route of a mail domain (no trailing dot needed). */
void dns_resolve(struct dns *d, const char *domain, dns_route_fn *cb, void *ctx);
/* Once a second from the loop's tick: c-ares timeouts, cache expiry. */
void dns_tick(struct dns *d);
void dns_get_stats(const struct dns *d, struct dns_stats *st_r);

#endif
