/*
 * dns_cache.c: the route cache of one struct dns. Owns its entries: one
 * malloc'd block each, the lower-cased domain (the key) followed by the
 * route in a compact encoding, chained in a hash bucket and in insertion
 * order so that the oldest go first when DNS_CACHE_MAX is reached.
 * Entries expire at their TTL, checked on lookup and by a sweep of a few
 * buckets per tick.
 */
#include "core/dns/dns_internal.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

/* A cached route: the key, then the route in the compact form of
 * dns_cache_encode. */
struct dns_centry {
	struct dns_centry *ce_next;	/* bucket chain */
	struct dns_centry *ce_older, *ce_newer;	/* insertion order */
	uint64_t ce_expire;		/* monotonic seconds */
	uint32_t ce_hash;
	uint16_t ce_keylen;
	uint16_t ce_len;
	unsigned char ce_data[];
};

static size_t dns_cache_encoded_len(const struct dns_route *r)
{
	size_t n = 4 + strnlen(r->dr_error, sizeof(r->dr_error) - 1);

	for (unsigned i = 0; i < r->dr_nhosts; i++) {
		const struct dns_host *h = &r->dr_hosts[i];

		n += 1 + strnlen(h->dh_name, sizeof(h->dh_name) - 1) + 2 + 1;
		for (unsigned j = 0; j < h->dh_naddr; j++)
			n += h->dh_addr[j].ss_family == AF_INET6 ? 1 + 16 + 4 : 1 + 4;
	}
	return n;
}

/* status, implicit, nhosts, error; per host: name, preference, addresses. */
static void dns_cache_encode(const struct dns_route *r, unsigned char *p)
{
	size_t elen = strnlen(r->dr_error, sizeof(r->dr_error) - 1);

	*p++ = (unsigned char)r->dr_status;
	*p++ = r->dr_implicit;
	*p++ = (unsigned char)r->dr_nhosts;
	*p++ = (unsigned char)elen;
	memcpy(p, r->dr_error, elen);
	p += elen;
	for (unsigned i = 0; i < r->dr_nhosts; i++) {
		const struct dns_host *h = &r->dr_hosts[i];
		size_t nlen = strnlen(h->dh_name, sizeof(h->dh_name) - 1);

		*p++ = (unsigned char)nlen;
		memcpy(p, h->dh_name, nlen);
		p += nlen;
		memcpy(p, &h->dh_pref, 2);
		p += 2;
		*p++ = (unsigned char)h->dh_naddr;
		for (unsigned j = 0; j < h->dh_naddr; j++) {
			const struct sockaddr_storage *ss = &h->dh_addr[j];

			if (ss->ss_family == AF_INET6) {
				const struct sockaddr_in6 *s6 =
					(const struct sockaddr_in6 *)ss;

				*p++ = 6;
				memcpy(p, &s6->sin6_addr, 16);
				memcpy(p + 16, &s6->sin6_scope_id, 4);
				p += 20;
			} else {
				const struct sockaddr_in *s4 =
					(const struct sockaddr_in *)ss;

				*p++ = 4;
				memcpy(p, &s4->sin_addr, 4);
				p += 4;
			}
		}
	}
}

/* The inverse of dns_cache_encode; p is trusted. Fills only what is used. */
static void dns_cache_decode(const unsigned char *p, struct dns_route *r)
{
	size_t elen;

	r->dr_status = (enum dns_status)p[0];
	r->dr_implicit = p[1] != 0;
	r->dr_nhosts = p[2];
	elen = p[3];
	p += 4;
	memcpy(r->dr_error, p, elen);
	r->dr_error[elen] = '\0';
	p += elen;
	for (unsigned i = 0; i < r->dr_nhosts; i++) {
		struct dns_host *h = &r->dr_hosts[i];
		size_t nlen = *p++;

		memcpy(h->dh_name, p, nlen);
		h->dh_name[nlen] = '\0';
		p += nlen;
		memcpy(&h->dh_pref, p, 2);
		p += 2;
		h->dh_naddr = *p++;
		for (unsigned j = 0; j < h->dh_naddr; j++) {
			struct sockaddr_storage *ss = &h->dh_addr[j];

			memset(ss, 0, sizeof(*ss));
			if (*p++ == 6) {
				struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

				s6->sin6_family = AF_INET6;
				memcpy(&s6->sin6_addr, p, 16);
				memcpy(&s6->sin6_scope_id, p + 16, 4);
				p += 20;
			} else {
				struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

				s4->sin_family = AF_INET;
				memcpy(&s4->sin_addr, p, 4);
				p += 4;
			}
		}
	}
}

static void dns_cache_remove(struct dns *d, struct dns_centry *e)
{
	struct dns_centry **pp = &d->d_cache[e->ce_hash & (DNS_CACHE_BUCKETS - 1)];

	while (*pp != e)
		pp = &(*pp)->ce_next;
	*pp = e->ce_next;
	if (e->ce_older != NULL)
		e->ce_older->ce_newer = e->ce_newer;
	else
		d->d_oldest = e->ce_newer;
	if (e->ce_newer != NULL)
		e->ce_newer->ce_older = e->ce_older;
	else
		d->d_newest = e->ce_older;
	d->d_ncache--;
	free(e);
}

/* The live entry for key, or NULL; drops an expired one on the way. */
static struct dns_centry *dns_cache_find(struct dns *d, const char *key,
					 size_t len, uint32_t h, uint64_t now)
{
	struct dns_centry *e = d->d_cache[h & (DNS_CACHE_BUCKETS - 1)];

	for (; e != NULL; e = e->ce_next) {
		if (e->ce_hash != h || e->ce_keylen != len ||
		    memcmp(e->ce_data, key, len) != 0)
			continue;
		if (now >= e->ce_expire) {
			dns_cache_remove(d, e);
			return NULL;
		}
		return e;
	}
	return NULL;
}

bool dns_cache_get(struct dns *d, const char *key, size_t len, uint32_t h,
		   uint64_t now, struct dns_route *r_r)
{
	struct dns_centry *e = dns_cache_find(d, key, len, h, now);

	if (e == NULL)
		return false;
	dns_cache_decode(e->ce_data + e->ce_keylen, r_r);
	return true;
}

/* Cache r under key for ttl seconds; silently skipped without memory. */
void dns_cache_put(struct dns *d, const char *key, size_t len, uint32_t h,
		   const struct dns_route *r, uint32_t ttl, uint64_t now)
{
	size_t rlen = dns_cache_encoded_len(r);
	struct dns_centry *e, **bucket;

	e = dns_cache_find(d, key, len, h, now);
	if (e != NULL)
		dns_cache_remove(d, e);
	while (d->d_ncache >= DNS_CACHE_MAX)
		dns_cache_remove(d, d->d_oldest);
	e = malloc(sizeof(*e) + len + rlen);
	if (e == NULL)
		return;
	e->ce_expire = now + ttl;
	e->ce_hash = h;
	e->ce_keylen = (uint16_t)len;
	e->ce_len = (uint16_t)rlen;
	memcpy(e->ce_data, key, len);
	dns_cache_encode(r, e->ce_data + len);
	bucket = &d->d_cache[h & (DNS_CACHE_BUCKETS - 1)];
	e->ce_next = *bucket;
	*bucket = e;
	e->ce_newer = NULL;
	e->ce_older = d->d_newest;
	if (d->d_newest != NULL)
		d->d_newest->ce_newer = e;
	else
		d->d_oldest = e;
	d->d_newest = e;
	d->d_ncache++;
}

/* Drop the expired entries of the next few buckets: the whole table is
 * swept every DNS_CACHE_BUCKETS / DNS_SWEEP_BUCKETS ticks. */
void dns_cache_sweep(struct dns *d, uint64_t now)
{
	for (unsigned n = 0; n < DNS_SWEEP_BUCKETS && d->d_ncache > 0; n++) {
		struct dns_centry *e = d->d_cache[d->d_sweep], *next;

		for (; e != NULL; e = next) {
			next = e->ce_next;
			if (now >= e->ce_expire)
				dns_cache_remove(d, e);
		}
		d->d_sweep = (d->d_sweep + 1) & (DNS_CACHE_BUCKETS - 1);
	}
}

void dns_cache_clear(struct dns *d)
{
	while (d->d_oldest != NULL)
		dns_cache_remove(d, d->d_oldest);
}
