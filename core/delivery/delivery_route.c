/*
 * delivery_route.c: which addresses of a resolved route delivery may use.
 * Two rules, applied before any connection is opened:
 *
 *  - Never to ringmta itself: an address:port one of our listeners
 *    accepts (for a wildcard listener: loopback, the unspecified address
 *    and the machine's interface addresses) would loop the mail back in.
 *    As Postfix does, an MX host that is ourselves also drops every MX
 *    host of equal or lower preference (they would relay back to us);
 *    with nothing left the mail "loops back to myself" (5.4.6).
 *  - Not to loopback, private, link-local, unspecified or multicast
 *    addresses, unless smtp_allow_private_destinations is set or the next
 *    hop is the operator's relayhost: otherwise anyone who can send mail
 *    (and name a domain whose MX points there) reaches internal services.
 *
 * Pure functions over struct dns_route and the listener list: the caller
 * supplies the interface addresses, so this is unit-tested alone.
 */
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "core/config/netacl.h"
#include "core/delivery/delivery_internal.h"

/* An IPv4 address (host order) in a from a v4 or v4-mapped v6 address. */
static bool dlv_addr_v4(const struct sockaddr_storage *a, uint32_t *v4_r)
{
	if (a->ss_family == AF_INET) {
		*v4_r = ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr);
		return true;
	}
	if (a->ss_family == AF_INET6) {
		const struct in6_addr *in6 = &((const struct sockaddr_in6 *)a)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(in6)) {
			memcpy(v4_r, &in6->s6_addr[12], 4);
			*v4_r = ntohl(*v4_r);
			return true;
		}
	}
	return false;
}

/*
 * Where delivery does not go unless smtp_allow_private_destinations: "this
 * host", RFC 1918, CGNAT, loopback, link-local, multicast and reserved,
 * unspecified, ULA and site-local. Matched with the relay_networks code
 * (netacl), which takes v4-mapped IPv6 addresses as IPv4.
 */
static const char dlv_private_spec[] =
	"0.0.0.0/8 10.0.0.0/8 100.64.0.0/10 127.0.0.0/8 169.254.0.0/16 172.16.0.0/12"
	" 192.168.0.0/16 224.0.0.0/3 ::/128 ::1/128 fc00::/7 fe80::/10 fec0::/10 ff00::/8";
static struct netacl *dlv_private_acl;	/* parsed once, never changed */
static pthread_once_t dlv_private_once = PTHREAD_ONCE_INIT;

static void dlv_private_init(void)
{
	if (netacl_parse(dlv_private_spec, &dlv_private_acl, NULL, 0) != 0)
		abort();	/* a constant: a bug, not an input */
}

bool dlv_addr_private(const struct sockaddr_storage *a)
{
	if (a->ss_family != AF_INET && a->ss_family != AF_INET6)
		return true;	/* an unknown family is not delivered to */
	pthread_once(&dlv_private_once, dlv_private_init);
	return netacl_match(dlv_private_acl, (const struct sockaddr *)a);
}

/* Same address, v4-mapped v6 taken as v4; the unspecified address is
 * where a connect goes: the host itself, i.e. loopback. */
static bool dlv_addr_same(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	uint32_t x = 0, y = 0;	/* set when ax, by (quiets -Wmaybe-uninitialized) */
	bool ax = dlv_addr_v4(a, &x), by = dlv_addr_v4(b, &y);

	if (ax || by) {
		if (!ax || !by)
			return false;
		if (x == 0)
			x = 0x7f000001u;
		if (y == 0)
			y = 0x7f000001u;
		return x == y;
	}
	if (a->ss_family != AF_INET6 || b->ss_family != AF_INET6)
		return false;
	{
		struct in6_addr p = ((const struct sockaddr_in6 *)a)->sin6_addr;
		struct in6_addr q = ((const struct sockaddr_in6 *)b)->sin6_addr;

		if (IN6_IS_ADDR_UNSPECIFIED(&p))
			p = in6addr_loopback;
		if (IN6_IS_ADDR_UNSPECIFIED(&q))
			q = in6addr_loopback;
		return memcmp(&p, &q, sizeof(p)) == 0;
	}
}

static uint16_t dlv_addr_port(const struct sockaddr_storage *a)
{
	if (a->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)a)->sin_port);
	if (a->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
	return 0;
}

static bool dlv_addr_wildcard(const struct sockaddr_storage *a)
{
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr == htonl(INADDR_ANY);
	return a->ss_family == AF_INET6 &&
	       IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)a)->sin6_addr);
}

/* Would a connection to a:port be accepted by one of our listeners? */
bool dlv_addr_self(const struct config *cfg, const struct sockaddr_storage *a, uint16_t port,
		   const struct sockaddr_storage *ifs, unsigned nifs)
{
	uint32_t v4;

	for (unsigned i = 0; i < cfg->listen_count; i++) {
		const struct sockaddr_storage *l = &cfg->listen[i].cl_addr;

		if (dlv_addr_port(l) != port)
			continue;
		if (!dlv_addr_wildcard(l)) {
			if (dlv_addr_same(a, l))
				return true;
			continue;
		}
		/* A wildcard listener: every local address reaches it (all of
		 * 127/8 is local on Linux). "::" also takes IPv4 unless
		 * v6only, so it is taken to cover both families. */
		if (l->ss_family == AF_INET && a->ss_family == AF_INET6 &&
		    !dlv_addr_v4(a, &v4))
			continue;
		if ((dlv_addr_v4(a, &v4) && (v4 >> 24) == 127) ||
		    (dlv_addr_v4(a, &v4) && v4 == 0))
			return true;
		if (a->ss_family == AF_INET6 &&
		    (IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)a)->sin6_addr) ||
		     IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)a)->sin6_addr)))
			return true;
		for (unsigned k = 0; k < nifs; k++)
			if (dlv_addr_same(a, &ifs[k]))
				return true;
	}
	return false;
}

int dlv_route_filter(const struct config *cfg, bool trusted, uint16_t port,
		     struct dns_route *r, const struct sockaddr_storage *ifs, unsigned nifs)
{
	bool self = false, skipped = false;
	unsigned n = 0, self_pref = 0;

	/* First the lowest preference at which we ourselves appear. */
	for (unsigned i = 0; i < r->dr_nhosts; i++)
		for (unsigned k = 0; k < r->dr_hosts[i].dh_naddr; k++)
			if (dlv_addr_self(cfg, &r->dr_hosts[i].dh_addr[k], port, ifs, nifs) &&
			    (!self || r->dr_hosts[i].dh_pref < self_pref)) {
				self = true;
				self_pref = r->dr_hosts[i].dh_pref;
			}
	for (unsigned i = 0; i < r->dr_nhosts; i++) {
		struct dns_host *h = &r->dr_hosts[i];
		unsigned m = 0;

		if (self && h->dh_pref >= self_pref)
			continue;
		for (unsigned k = 0; k < h->dh_naddr; k++) {
			if (!trusted && !cfg->smtp_allow_private_destinations &&
			    dlv_addr_private(&h->dh_addr[k])) {
				skipped = true;
				continue;
			}
			h->dh_addr[m++] = h->dh_addr[k];
		}
		h->dh_naddr = m;
		if (m > 0) {
			if (n != i)
				r->dr_hosts[n] = *h;
			n++;
		}
	}
	r->dr_nhosts = n;
	if (n > 0)
		return DLV_ROUTE_OK;
	return self ? DLV_ROUTE_LOOP : skipped ? DLV_ROUTE_PRIVATE : DLV_ROUTE_EMPTY;
}
