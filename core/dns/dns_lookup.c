/*
 * dns_lookup.c: the lookups in flight of a struct dns, each shared by
 * every caller that asks for its domain before it ends. A lookup is one
 * MX query, then one address lookup (A and AAAA) per MX host, all in
 * parallel; its route is then cached and handed to every waiter. TTLs
 * come from a walk of the raw MX answer (dns_wire_ttls) and from c-ares'
 * ai_ttl for addresses. Owns the lookups and their waiters (d_inflight)
 * until they complete or dns_destroy drops them.
 */
#include "core/dns/dns_internal.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "io/loop.h"

/* One caller of dns_resolve waiting for the lookup. */
struct dns_waiter {
	struct dns_waiter *w_next;
	dns_route_fn *w_cb;
	void *w_ctx;
};

/* The context of one MX host's address lookup. */
struct dns_hostq {
	struct dns_lookup *hq_lookup;
	unsigned hq_index;
};

struct dns_lookup {
	struct dns *l_dns;
	struct dns_lookup *l_next;	/* in-flight chain */
	struct dns_waiter *l_waiters;	/* in arrival order */
	struct dns_waiter **l_wtail;
	uint32_t l_hash;
	unsigned l_pending;		/* address lookups (+1 while starting) */
	uint32_t l_ttl;			/* smallest TTL of the records used */
	unsigned l_tempfail;		/* hosts whose lookup failed */
	int l_host_err;			/* first such failure */
	struct dns_hostq l_hq[DNS_MAX_HOSTS];
	char l_domain[DNS_NAME_MAX + 1];
	struct dns_route l_route;	/* built here, handed to the waiters */
};

static uint32_t dns_lookup_clamp_ttl(uint32_t ttl, uint32_t max)
{
	if (ttl < 1)
		return 1;
	return ttl > max ? max : ttl;
}

/* Why a c-ares call failed, in words for a bounce. */
static const char *dns_lookup_reason(int status)
{
	switch (status) {
	case ARES_ETIMEOUT:
		return "timed out";
	case ARES_ESERVFAIL:
		return "server failure (SERVFAIL)";
	case ARES_EREFUSED:
		return "query refused by the DNS server";
	case ARES_ECONNREFUSED:
		/* c-ares 1.18 also ends a REFUSED answer this way */
		return "DNS server unreachable or refusing queries";
	case ARES_EBADRESP:
	case ARES_EFORMERR:
		return "malformed DNS reply";
	case ARES_ENOMEM:
		return "out of memory";
	default:
		return ares_strerror(status);
	}
}

static struct dns_lookup *dns_lookup_find(struct dns *d, const char *name,
					  uint32_t h)
{
	struct dns_lookup *l = d->d_inflight[h & (DNS_INFLIGHT_BUCKETS - 1)];

	for (; l != NULL; l = l->l_next)
		if (l->l_hash == h && strcmp(l->l_domain, name) == 0)
			return l;
	return NULL;
}

static void dns_lookup_unlink(struct dns *d, struct dns_lookup *l)
{
	struct dns_lookup **pp = &d->d_inflight[l->l_hash & (DNS_INFLIGHT_BUCKETS - 1)];

	for (; *pp != NULL; pp = &(*pp)->l_next) {
		if (*pp == l) {
			*pp = l->l_next;
			return;
		}
	}
}

/* Free a lookup without calling its waiters (dns_destroy). */
static void dns_lookup_free(struct dns_lookup *l)
{
	struct dns_waiter *w, *next;

	dns_lookup_unlink(l->l_dns, l);
	for (w = l->l_waiters; w != NULL; w = next) {
		next = w->w_next;
		free(w);
	}
	free(l);
}

/* The route is final: cache it for ttl, hand it to every waiter, free. */
static void dns_lookup_complete(struct dns_lookup *l, uint32_t ttl)
{
	struct dns *d = l->l_dns;
	struct dns_waiter *w, *next;

	dns_lookup_unlink(d, l);
	if (l->l_route.dr_status != DNS_OK)
		d->d_stats.failures++;
	dns_cache_put(d, l->l_domain, strlen(l->l_domain), l->l_hash,
		      &l->l_route, ttl, io_loop_now());
	w = l->l_waiters;
	l->l_waiters = NULL;
	for (; w != NULL; w = next) {
		next = w->w_next;
		w->w_cb(w->w_ctx, &l->l_route);
		free(w);
	}
	free(l);
}

/* Every address lookup is done: keep the hosts that have an address. */
static void dns_lookup_hosts_done(struct dns_lookup *l)
{
	struct dns_route *r = &l->l_route;
	unsigned n = 0;
	bool implicit;

	for (unsigned i = 0; i < r->dr_nhosts; i++) {
		if (r->dr_hosts[i].dh_naddr == 0)
			continue;
		if (n != i)
			r->dr_hosts[n] = r->dr_hosts[i];
		n++;
	}
	r->dr_nhosts = n;
	if (n > 0) {
		dns_lookup_complete(l, dns_lookup_clamp_ttl(l->l_ttl,
							    DNS_TTL_MAX));
		return;
	}
	implicit = r->dr_implicit;
	if (l->l_tempfail > 0)
		dns_route_fail(r, DNS_NO_ADDRESS, "address lookup for %s %.80s failed: %s",
			       implicit ? "domain" : "the MX hosts of",
			       l->l_domain, dns_lookup_reason(l->l_host_err));
	else if (implicit)
		dns_route_fail(r, DNS_NO_ADDRESS, "%.80s has no MX and no address records",
			       l->l_domain);
	else
		dns_route_fail(r, DNS_NO_ADDRESS, "no MX host of %.80s has an address",
			       l->l_domain);
	r->dr_implicit = implicit;
	dns_lookup_complete(l, DNS_TTL_FAIL);
}

/*
 * Take up to DNS_MAX_ADDRS addresses of h from nodes, alternating the
 * families (starting with the first answered) so that neither crowds out
 * the other; lowers l_ttl to theirs.
 */
static void dns_lookup_host_addrs(struct dns_lookup *l, struct dns_host *h,
				  const struct ares_addrinfo_node *nodes)
{
	const struct ares_addrinfo_node *fam[2][DNS_MAX_ADDRS], *n;
	unsigned nfam[2] = { 0, 0 }, next[2] = { 0, 0 }, first = 0;

	for (n = nodes; n != NULL; n = n->ai_next) {
		unsigned f;

		if ((n->ai_family != AF_INET && n->ai_family != AF_INET6) ||
		    n->ai_addr == NULL || n->ai_addrlen > sizeof(h->dh_addr[0]))
			continue;
		f = n->ai_family == AF_INET6;
		if (nfam[0] + nfam[1] == 0)
			first = f;
		if (nfam[f] < DNS_MAX_ADDRS)
			fam[f][nfam[f]++] = n;
	}
	for (unsigned k = 0; h->dh_naddr < DNS_MAX_ADDRS &&
			     next[0] + next[1] < nfam[0] + nfam[1]; k++) {
		unsigned f = (first + k) & 1;
		struct sockaddr_storage *ss = &h->dh_addr[h->dh_naddr];

		if (next[f] >= nfam[f])
			continue;
		n = fam[f][next[f]++];
		memset(ss, 0, sizeof(*ss));
		memcpy(ss, n->ai_addr, n->ai_addrlen);
		if (ss->ss_family == AF_INET)
			((struct sockaddr_in *)ss)->sin_port = 0;
		else
			((struct sockaddr_in6 *)ss)->sin6_port = 0;
		h->dh_naddr++;
		if (n->ai_ttl < 0)
			l->l_ttl = 0;
		else if ((uint32_t)n->ai_ttl < l->l_ttl)
			l->l_ttl = (uint32_t)n->ai_ttl;
	}
}

static void dns_lookup_addr_done(void *arg, int status, int timeouts,
				 struct ares_addrinfo *res)
{
	struct dns_hostq *hq = arg;
	struct dns_lookup *l = hq->hq_lookup;
	struct dns_host *h = &l->l_route.dr_hosts[hq->hq_index];

	(void)timeouts;
	if (status == ARES_SUCCESS && res != NULL && !l->l_dns->d_closing)
		dns_lookup_host_addrs(l, h, res->nodes);
	if (res != NULL)
		ares_freeaddrinfo(res);
	if (status != ARES_SUCCESS && status != ARES_ENOTFOUND &&
	    status != ARES_ENODATA && status != ARES_EBADNAME) {
		if (l->l_tempfail++ == 0)
			l->l_host_err = status;
	}
	if (--l->l_pending > 0)
		return;
	if (l->l_dns->d_closing)
		dns_lookup_free(l);
	else
		dns_lookup_hosts_done(l);
}

/* An MX exchange given as an IP address (a misconfiguration, but
 * unambiguous): its address, no lookup. */
static bool dns_lookup_host_literal(struct dns_host *h)
{
	size_t len = strlen(h->dh_name);

	if (dns_name_parse_literal(h->dh_name, &h->dh_addr[0]) == 1 ||
	    dns_name_parse_ip(h->dh_name, len, AF_UNSPEC, &h->dh_addr[0]) == 0) {
		h->dh_naddr = 1;
		return true;
	}
	return false;
}

/* Look up the address of every host in the route, in parallel. */
static void dns_lookup_addrs(struct dns_lookup *l)
{
	struct dns *d = l->l_dns;
	struct dns_route *r = &l->l_route;
	struct ares_addrinfo_hints hints;
	char fqdn[sizeof(r->dr_hosts[0].dh_name) + 1];

	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = ARES_AI_NOSORT;
	hints.ai_family = AF_UNSPEC;
	/* Held while starting, so that a lookup ending at once cannot finish
	 * the whole before the others have started. */
	l->l_pending = 1;
	for (unsigned i = 0; i < r->dr_nhosts; i++) {
		struct dns_host *h = &r->dr_hosts[i];

		if (dns_lookup_host_literal(h))
			continue;
		l->l_hq[i].hq_lookup = l;
		l->l_hq[i].hq_index = i;
		l->l_pending++;
		d->d_stats.lookups += 2;	/* A and AAAA */
		/* Fully qualified: c-ares applies no search list to it. */
		snprintf(fqdn, sizeof(fqdn), "%s.", h->dh_name);
		ares_getaddrinfo(d->d_chan, fqdn, NULL, &hints,
				 dns_lookup_addr_done, &l->l_hq[i]);
	}
	if (--l->l_pending == 0)
		dns_lookup_hosts_done(l);
}

/* No MX records: the domain is its own mail host (RFC 5321 5.1). */
static void dns_lookup_implicit(struct dns_lookup *l, const struct dns_wire_ttl *wt)
{
	struct dns_route *r = &l->l_route;
	struct dns_host *h = &r->dr_hosts[0];

	r->dr_implicit = true;
	r->dr_nhosts = 1;
	memcpy(h->dh_name, l->l_domain, strlen(l->l_domain) + 1);
	h->dh_pref = 0;
	h->dh_naddr = 0;
	/* The NODATA answer is cacheable for its SOA's negative TTL. */
	l->l_ttl = wt != NULL && wt->wt_has_soa ? wt->wt_negative : DNS_TTL_MAX;
	dns_lookup_addrs(l);
}

struct dns_mx_cand {
	uint16_t mc_pref;
	const char *mc_host;
};

/* Order the candidates by preference (stable), drop repeated hosts,
 * shuffle each run of equal preference. Returns the new count. */
static unsigned dns_lookup_mx_order(struct dns *d, struct dns_mx_cand *c,
				    unsigned n)
{
	unsigned out = 0;

	for (unsigned i = 1; i < n; i++) {
		struct dns_mx_cand t = c[i];
		unsigned j = i;

		for (; j > 0 && c[j - 1].mc_pref > t.mc_pref; j--)
			c[j] = c[j - 1];
		c[j] = t;
	}
	for (unsigned i = 0; i < n; i++) {
		bool dup = false;

		for (unsigned j = 0; j < out && !dup; j++)
			dup = strcasecmp(c[j].mc_host, c[i].mc_host) == 0;
		if (!dup)
			c[out++] = c[i];
	}
	for (unsigned i = 0; i < out;) {
		unsigned j = i + 1;

		while (j < out && c[j].mc_pref == c[i].mc_pref)
			j++;
		for (unsigned k = j - 1; k > i; k--) {
			unsigned m = i + (unsigned)(dns_rand(d) % (k - i + 1));
			struct dns_mx_cand t = c[k];

			c[k] = c[m];
			c[m] = t;
		}
		i = j;
	}
	return out;
}

static void dns_lookup_mx(struct dns_lookup *l, const unsigned char *abuf,
			  int alen, const struct dns_wire_ttl *wt)
{
	struct dns_route *r = &l->l_route;
	struct ares_mx_reply *mx = NULL, *m;
	struct dns_mx_cand cand[DNS_MX_CAND];
	unsigned ncand = 0, nnull = 0;
	int status;

	status = ares_parse_mx_reply(abuf, alen, &mx);
	if (status == ARES_ENODATA || (status == ARES_SUCCESS && mx == NULL)) {
		if (mx != NULL)
			ares_free_data(mx);
		dns_lookup_implicit(l, wt);	/* e.g. only a CNAME answered */
		return;
	}
	if (status != ARES_SUCCESS) {
		dns_route_fail(r, DNS_TEMPFAIL, "MX lookup for %.80s: %s",
			       l->l_domain, dns_lookup_reason(status));
		dns_lookup_complete(l, DNS_TTL_FAIL);
		return;
	}
	for (m = mx; m != NULL; m = m->next) {
		/* The root (RFC 7505 null MX) is no host. */
		if (m->host == NULL || m->host[0] == '\0' ||
		    strcmp(m->host, ".") == 0) {
			nnull++;
			continue;
		}
		if (strlen(m->host) > DNS_NAME_MAX)
			continue;
		if (ncand < DNS_MX_CAND) {
			cand[ncand].mc_pref = m->priority;
			cand[ncand++].mc_host = m->host;
		} else {
			/* Full: replace the least preferred if this beats it. */
			unsigned worst = 0;

			for (unsigned i = 1; i < ncand; i++)
				if (cand[i].mc_pref > cand[worst].mc_pref)
					worst = i;
			if (m->priority < cand[worst].mc_pref) {
				cand[worst].mc_pref = m->priority;
				cand[worst].mc_host = m->host;
			}
		}
	}
	l->l_ttl = wt != NULL && wt->wt_has_answer ? wt->wt_answer : DNS_TTL_UNKNOWN;
	if (ncand == 0) {
		ares_free_data(mx);
		if (nnull > 0) {
			dns_route_fail(r, DNS_NULL_MX,
				       "domain does not accept mail (null MX, RFC 7505)");
			dns_lookup_complete(l, dns_lookup_clamp_ttl(l->l_ttl,
								    DNS_TTL_MAX));
		} else {
			dns_route_fail(r, DNS_NO_ADDRESS, "no usable MX host for %.80s",
				       l->l_domain);
			dns_lookup_complete(l, DNS_TTL_FAIL);
		}
		return;
	}
	ncand = dns_lookup_mx_order(l->l_dns, cand, ncand);
	if (ncand > DNS_MAX_HOSTS)
		ncand = DNS_MAX_HOSTS;
	for (unsigned i = 0; i < ncand; i++) {
		struct dns_host *h = &r->dr_hosts[i];
		size_t len = strlen(cand[i].mc_host);

		if (len > 0 && cand[i].mc_host[len - 1] == '.')
			len--;
		for (size_t k = 0; k < len; k++) {
			char c = cand[i].mc_host[k];

			h->dh_name[k] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
		}
		h->dh_name[len] = '\0';
		h->dh_pref = cand[i].mc_pref;
		h->dh_naddr = 0;
	}
	r->dr_nhosts = ncand;
	ares_free_data(mx);
	dns_lookup_addrs(l);
}

static void dns_lookup_mx_done(void *arg, int status, int timeouts,
			       unsigned char *abuf, int alen)
{
	struct dns_lookup *l = arg;
	struct dns_route *r = &l->l_route;
	struct dns_wire_ttl wt;
	bool have_wt;

	(void)timeouts;
	if (l->l_dns->d_closing || status == ARES_EDESTRUCTION ||
	    status == ARES_ECANCELLED) {
		dns_lookup_free(l);
		return;
	}
	have_wt = abuf != NULL && alen > 0 &&
		  dns_wire_ttls(abuf, (size_t)alen, &wt) == 0;
	switch (status) {
	case ARES_SUCCESS:
		dns_lookup_mx(l, abuf, alen, have_wt ? &wt : NULL);
		break;
	case ARES_ENODATA:
		dns_lookup_implicit(l, have_wt ? &wt : NULL);
		break;
	case ARES_ENOTFOUND:
		dns_route_fail(r, DNS_NXDOMAIN, "domain %.80s does not exist (NXDOMAIN)",
			       l->l_domain);
		dns_lookup_complete(l, have_wt && wt.wt_has_soa ?
				    dns_lookup_clamp_ttl(wt.wt_negative,
							 DNS_TTL_NEG_MAX) :
				    DNS_TTL_NXDOMAIN);
		break;
	case ARES_EBADNAME:
		dns_route_fail(r, DNS_NXDOMAIN, "invalid domain name %.80s",
			       l->l_domain);
		dns_lookup_complete(l, DNS_TTL_NXDOMAIN);
		break;
	default:
		dns_route_fail(r, DNS_TEMPFAIL, "MX lookup for %.80s: %s",
			       l->l_domain, dns_lookup_reason(status));
		dns_lookup_complete(l, DNS_TTL_FAIL);
		break;
	}
}

int dns_lookup_join(struct dns *d, const char *name, size_t len, uint32_t h,
		    dns_route_fn *cb, void *ctx)
{
	struct dns_lookup *l;
	struct dns_waiter *w;
	bool fresh;

	l = dns_lookup_find(d, name, h);
	fresh = l == NULL;
	w = malloc(sizeof(*w));
	if (w != NULL && fresh)
		l = calloc(1, sizeof(*l));
	if (w == NULL || l == NULL) {
		free(w);
		return -1;
	}
	w->w_next = NULL;
	w->w_cb = cb;
	w->w_ctx = ctx;
	if (!fresh) {
		*l->l_wtail = w;
		l->l_wtail = &w->w_next;
		return 0;
	}
	l->l_dns = d;
	l->l_hash = h;
	l->l_waiters = w;
	l->l_wtail = &w->w_next;
	memcpy(l->l_domain, name, len + 1);
	l->l_route.dr_status = DNS_OK;
	l->l_next = d->d_inflight[h & (DNS_INFLIGHT_BUCKETS - 1)];
	d->d_inflight[h & (DNS_INFLIGHT_BUCKETS - 1)] = l;
	d->d_stats.lookups++;
	/* May answer at once (no memory, no usable server): l is gone then. */
	ares_query(d->d_chan, name, DNS_CLASS_IN, DNS_TYPE_MX,
		   dns_lookup_mx_done, l);
	return 0;
}

void dns_lookup_free_all(struct dns *d)
{
	for (unsigned i = 0; i < DNS_INFLIGHT_BUCKETS; i++)
		while (d->d_inflight[i] != NULL)
			dns_lookup_free(d->d_inflight[i]);
}
