/*
 * dns.c: see dns.h. The resolver of one worker: dns_init and dns_destroy
 * own the c-ares channel (one per worker, no search list, DNS only) and
 * struct dns itself; dns_resolve answers literals and cached domains at
 * once and hands the others to a lookup in flight (dns_lookup.c). The
 * other pieces, declared in dns_internal.h: the wire walker (dns_wire.c),
 * name checks (dns_name.c), the cache (dns_cache.c) and the io_watches of
 * the c-ares sockets (dns_sock.c).
 */
#include "core/dns/dns_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>

#include "io/loop.h"

uint64_t dns_rand(struct dns *d)
{
	uint64_t x = d->d_rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	d->d_rng = x;
	return x;
}

/* The bucket hash of a normalized domain, seeded per struct dns. */
static uint32_t dns_hash(const struct dns *d, const char *s, size_t len)
{
	uint32_t h = 2166136261u ^ d->d_seed;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h ^ (h >> 15);
}

void dns_route_fail(struct dns_route *r, enum dns_status st,
		    const char *fmt, ...)
{
	va_list ap;

	r->dr_status = st;
	r->dr_implicit = false;
	r->dr_nhosts = 0;
	va_start(ap, fmt);
	vsnprintf(r->dr_error, sizeof(r->dr_error), fmt, ap);
	va_end(ap);
}

void dns_resolve(struct dns *d, const char *domain, dns_route_fn *cb, void *ctx)
{
	char name[DNS_NAME_MAX + 1];
	struct dns_route r;
	struct sockaddr_storage ss;
	uint32_t h;
	int len, lit;

	lit = dns_name_parse_literal(domain, &ss);
	if (lit != 0) {
		if (lit < 0) {
			dns_route_fail(&r, DNS_NXDOMAIN, "invalid address literal %.80s",
				       domain);
		} else {
			memset(&r, 0, offsetof(struct dns_route, dr_hosts));
			r.dr_status = DNS_OK;
			r.dr_implicit = true;
			r.dr_nhosts = 1;
			r.dr_error[0] = '\0';
			snprintf(r.dr_hosts[0].dh_name, sizeof(r.dr_hosts[0].dh_name),
				 "%s", domain);
			r.dr_hosts[0].dh_pref = 0;
			r.dr_hosts[0].dh_naddr = 1;
			r.dr_hosts[0].dh_addr[0] = ss;
		}
		cb(ctx, &r);
		return;
	}
	len = dns_name_normalize(domain, name);
	if (len < 0) {
		dns_route_fail(&r, DNS_NXDOMAIN, "invalid domain name %.80s", domain);
		cb(ctx, &r);
		return;
	}
	h = dns_hash(d, name, (size_t)len);
	if (dns_cache_get(d, name, (size_t)len, h, io_loop_now(), &r)) {
		d->d_stats.cache_hits++;
		cb(ctx, &r);
		return;
	}
	if (dns_lookup_join(d, name, (size_t)len, h, cb, ctx) < 0) {
		dns_route_fail(&r, DNS_TEMPFAIL, "MX lookup for %.80s: out of memory",
			       name);
		cb(ctx, &r);
	}
}

void dns_tick(struct dns *d)
{
	ares_process_fd(d->d_chan, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dns_cache_sweep(d, io_loop_now());
}

void dns_get_stats(const struct dns *d, struct dns_stats *st_r)
{
	*st_r = d->d_stats;
}

int dns_init(struct dns **d_r, struct io_loop *loop, const char *servers,
	     char *err, size_t errlen)
{
	struct ares_options opts;
	char lookups[] = "b";	/* DNS only: /etc/hosts is a blocking read */
	struct dns *d;
	int optmask, ret;

	*d_r = NULL;
	/* ares_library_init() is a no-op outside Windows in c-ares 1.18, and
	 * not thread-safe: workers do not call it. */
	d = calloc(1, sizeof(*d));
	if (d == NULL) {
		snprintf(err, errlen, "dns: out of memory");
		return -1;
	}
	d->d_loop = loop;
	if (getrandom(&d->d_rng, sizeof(d->d_rng), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(d->d_rng)) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		d->d_rng = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^
			   (uint64_t)(uintptr_t)d;
	}
	d->d_rng |= 1;	/* xorshift must not start at zero */
	d->d_seed = (uint32_t)(dns_rand(d) >> 32);

	memset(&opts, 0, sizeof(opts));
	opts.flags = ARES_FLAG_NOSEARCH;
	opts.timeout = DNS_TIMEOUT_MS;
	opts.tries = DNS_TRIES;
	opts.ndomains = 0;		/* no search list at all */
	opts.domains = NULL;
	opts.lookups = lookups;
	opts.sock_state_cb = dns_sock_state;
	opts.sock_state_cb_data = d;
	optmask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
		  ARES_OPT_DOMAINS | ARES_OPT_LOOKUPS | ARES_OPT_SOCK_STATE_CB;
	ret = ares_init_options(&d->d_chan, &opts, optmask);
	if (ret != ARES_SUCCESS) {
		snprintf(err, errlen, "dns: cannot start the resolver: %s",
			 ares_strerror(ret));
		free(d);
		return -1;
	}
	if (servers != NULL && servers[0] != '\0') {
		ret = ares_set_servers_ports_csv(d->d_chan, servers);
		if (ret != ARES_SUCCESS) {
			snprintf(err, errlen, "dns: bad server list \"%s\": %s",
				 servers, ares_strerror(ret));
			ares_destroy(d->d_chan);
			free(d);
			return -1;
		}
	}
	*d_r = d;
	return 0;
}

/*
 * After the loop has stopped for good: pending lookups are dropped
 * without calling back, watches are freed without waiting for their
 * polls (the loop will not complete them any more).
 */
void dns_destroy(struct dns **d_r)
{
	struct dns *d = *d_r;

	if (d == NULL)
		return;
	*d_r = NULL;
	d->d_closing = true;
	ares_destroy(d->d_chan);	/* ends every query: EDESTRUCTION */
	dns_lookup_free_all(d);
	dns_cache_clear(d);
	dns_sock_free_all(d);
	free(d);
}
