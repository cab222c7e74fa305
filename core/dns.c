/*
 * dns.c: see dns.h. Owns one c-ares channel per worker, the io_watches of
 * its sockets, a cache of routes (compact copies, keyed by the lower-cased
 * domain) and the lookups in flight, each shared by every caller that asks
 * for its domain before it ends.
 *
 * A lookup is one MX query, then one address lookup (A and AAAA) per MX
 * host, all in parallel. TTLs come from a small walk of the raw MX answer
 * (dns_wire_ttls, fuzzed by tests/fuzz/fuzz_dns_ttl.c) and from c-ares'
 * ai_ttl for addresses.
 */
#include "core/dns.h"

#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/random.h>

#include "io/loop.h"

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

/* ---- the DNS wire walker: TTLs of an answer ---- */

struct dns_wire_ttl {
	uint32_t wt_answer;		/* smallest TTL in the answer section */
	uint32_t wt_negative;		/* smallest min(SOA TTL, SOA MINIMUM) */
	bool wt_has_answer;
	bool wt_has_soa;
};

static uint16_t dns_get16(const unsigned char *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t dns_get32(const unsigned char *p)
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
static int dns_wire_ttls(const unsigned char *p, size_t len,
			 struct dns_wire_ttl *r)
{
	unsigned qd, an, ns;
	size_t off = 12;

	memset(r, 0, sizeof(*r));
	if (p == NULL || len < 12)
		return -1;
	qd = dns_get16(p + 4);
	an = dns_get16(p + 6);
	ns = dns_get16(p + 8);
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
		type = dns_get16(p + off);
		ttl = dns_wire_fix_ttl(dns_get32(p + off + 4));
		rdlen = dns_get16(p + off + 8);
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
			min = dns_wire_fix_ttl(dns_get32(p + rd + 16));
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

/* ---- state ---- */

/* One c-ares socket. Never freed while the loop may complete its poll:
 * slots are reused, and freed only by dns_destroy. */
struct dns_sock {
	struct io_watch ds_watch;	/* first: 16-byte aligned */
	struct dns *ds_dns;
	ares_socket_t ds_fd;
	bool ds_used;
};

struct dns_waiter {
	struct dns_waiter *w_next;
	dns_route_fn *w_cb;
	void *w_ctx;
};

struct dns_lookup;

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

/* A cached route: the key, then the route in the compact form of
 * dns_route_encode. */
struct dns_centry {
	struct dns_centry *ce_next;	/* bucket chain */
	struct dns_centry *ce_older, *ce_newer;	/* insertion order */
	uint64_t ce_expire;		/* monotonic seconds */
	uint32_t ce_hash;
	uint16_t ce_keylen;
	uint16_t ce_len;
	unsigned char ce_data[];
};

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

static uint64_t dns_rand(struct dns *d)
{
	uint64_t x = d->d_rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	d->d_rng = x;
	return x;
}

static uint32_t dns_hash(const struct dns *d, const char *s, size_t len)
{
	uint32_t h = 2166136261u ^ d->d_seed;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h ^ (h >> 15);
}

static uint32_t dns_clamp_ttl(uint32_t ttl, uint32_t max)
{
	if (ttl < 1)
		return 1;
	return ttl > max ? max : ttl;
}

static void dns_route_fail(struct dns_route *r, enum dns_status st,
			   const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void dns_route_fail(struct dns_route *r, enum dns_status st,
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

/* Why a c-ares call failed, in words for a bounce. */
static const char *dns_reason(int status)
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

/* ---- names and literals ---- */

/*
 * Lower-case domain into out, without its trailing dot. Returns the
 * length, or -1 unless it is a plain hostname-like DNS name (letters,
 * digits, '-', '_'; labels of 1 to 63).
 */
static int dns_normalize(const char *domain, char out[DNS_NAME_MAX + 1])
{
	size_t len = strnlen(domain, DNS_NAME_MAX + 2), label = 0;

	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_NAME_MAX)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)domain[i];

		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			   c == '-' || c == '_') {
			label++;
		} else if (c >= 'A' && c <= 'Z') {
			c = (unsigned char)(c - 'A' + 'a');
			label++;
		} else {
			return -1;
		}
		if (label > 63)
			return -1;
		out[i] = (char)c;
	}
	out[len] = '\0';
	return (int)len;
}

/* An IPv4 or IPv6 address in s[0..len) into ss (port 0). 0 or -1. */
static int dns_parse_ip(const char *s, size_t len, int family,
			struct sockaddr_storage *ss)
{
	char buf[INET6_ADDRSTRLEN + 1];

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (family != AF_INET6) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, buf, &sin->sin_addr) == 1) {
			sin->sin_family = AF_INET;
			return 0;
		}
	}
	if (family != AF_INET) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, buf, &sin6->sin6_addr) == 1) {
			sin6->sin6_family = AF_INET6;
			return 0;
		}
	}
	return -1;
}

/*
 * An RFC 5321 address literal: "[192.0.2.1]" or "[IPv6:2001:db8::1]".
 * Returns 1 with the address, 0 if s is no literal, -1 if malformed.
 */
static int dns_parse_literal(const char *s, struct sockaddr_storage *ss)
{
	size_t len = strnlen(s, DNS_NAME_MAX + 2);

	if (len == 0 || s[0] != '[')
		return 0;
	if (len < 3 || len > DNS_NAME_MAX + 1 || s[len - 1] != ']')
		return -1;
	s++;
	len -= 2;
	if (len > 5 && strncasecmp(s, "IPv6:", 5) == 0)
		return dns_parse_ip(s + 5, len - 5, AF_INET6, ss) == 0 ? 1 : -1;
	return dns_parse_ip(s, len, AF_INET, ss) == 0 ? 1 : -1;
}

/* ---- the cache ---- */

static size_t dns_route_encoded_len(const struct dns_route *r)
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
static void dns_route_encode(const struct dns_route *r, unsigned char *p)
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

/* The inverse of dns_route_encode; p is trusted. Fills only what is used. */
static void dns_route_decode(const unsigned char *p, struct dns_route *r)
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

/* Cache r under key for ttl seconds; silently skipped without memory. */
static void dns_cache_put(struct dns *d, const char *key, size_t len,
			  uint32_t h, const struct dns_route *r, uint32_t ttl,
			  uint64_t now)
{
	size_t rlen = dns_route_encoded_len(r);
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
	dns_route_encode(r, e->ce_data + len);
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
static void dns_cache_sweep(struct dns *d, uint64_t now)
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

/* ---- c-ares sockets ---- */

static void dns_sock_ready(struct io_watch *w, unsigned revents)
{
	struct dns_sock *s = w->iw_ctx;
	ares_socket_t fd = (ares_socket_t)w->iw_fd;
	ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;

	/* An error goes to both sides: c-ares sees it on its next read or
	 * write and gives up on that server. */
	if (revents & (POLLIN | POLLERR | POLLHUP))
		rfd = fd;
	if (revents & (POLLOUT | POLLERR | POLLHUP))
		wfd = fd;
	ares_process_fd(s->ds_dns->d_chan, rfd, wfd);
}

static struct dns_sock *dns_sock_find(struct dns *d, ares_socket_t fd)
{
	for (unsigned i = 0; i < d->d_nsocks; i++)
		if (d->d_socks[i]->ds_used && d->d_socks[i]->ds_fd == fd)
			return d->d_socks[i];
	return NULL;
}

/* A free slot, preferring one whose old poll has ended; NULL without memory. */
static struct dns_sock *dns_sock_get(struct dns *d)
{
	struct dns_sock *s, *armed = NULL, **socks;

	for (unsigned i = 0; i < d->d_nsocks; i++) {
		s = d->d_socks[i];
		if (s->ds_used)
			continue;
		if (!s->ds_watch.iw_armed)
			return s;
		armed = s;
	}
	socks = realloc(d->d_socks, (d->d_nsocks + 1) * sizeof(*socks));
	if (socks == NULL)
		return armed;	/* the loop re-targets a watch safely */
	d->d_socks = socks;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return armed;
	s->ds_dns = d;
	socks[d->d_nsocks++] = s;
	return s;
}

/* c-ares opened, changed or closed (0, 0) one of its sockets. */
static void dns_sock_state(void *data, ares_socket_t fd, int readable,
			   int writable)
{
	struct dns *d = data;
	struct dns_sock *s = dns_sock_find(d, fd);
	unsigned events = 0;

	if (d->d_closing) {
		/* The loop is gone or stopped for good: only bookkeeping. */
		if (s != NULL)
			s->ds_used = false;
		return;
	}
	/* POLLERR and POLLHUP are asked for explicitly: the loop only calls
	 * back for the events it was asked for, and a refused UDP query
	 * (ICMP port unreachable) raises POLLERR alone. */
	if (readable)
		events |= POLLIN | POLLERR | POLLHUP;
	if (writable)
		events |= POLLOUT | POLLERR | POLLHUP;
	if (events == 0) {
		if (s != NULL) {
			io_watch_set(d->d_loop, &s->ds_watch, fd, 0,
				     dns_sock_ready, s);
			s->ds_used = false;
		}
		return;
	}
	if (s == NULL) {
		s = dns_sock_get(d);
		if (s == NULL)
			return;	/* unwatched: its queries time out in dns_tick */
		s->ds_used = true;
		s->ds_fd = fd;
	}
	io_watch_set(d->d_loop, &s->ds_watch, fd, events, dns_sock_ready, s);
}

/* ---- lookups ---- */

static struct dns_lookup *dns_inflight_find(struct dns *d, const char *name,
					    uint32_t h)
{
	struct dns_lookup *l = d->d_inflight[h & (DNS_INFLIGHT_BUCKETS - 1)];

	for (; l != NULL; l = l->l_next)
		if (l->l_hash == h && strcmp(l->l_domain, name) == 0)
			return l;
	return NULL;
}

static void dns_inflight_unlink(struct dns *d, struct dns_lookup *l)
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

	dns_inflight_unlink(l->l_dns, l);
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

	dns_inflight_unlink(d, l);
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
		dns_lookup_complete(l, dns_clamp_ttl(l->l_ttl, DNS_TTL_MAX));
		return;
	}
	implicit = r->dr_implicit;
	if (l->l_tempfail > 0)
		dns_route_fail(r, DNS_NO_ADDRESS, "address lookup for %s %.80s failed: %s",
			       implicit ? "domain" : "the MX hosts of",
			       l->l_domain, dns_reason(l->l_host_err));
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
static void dns_host_add_addrs(struct dns_lookup *l, struct dns_host *h,
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

static void dns_addr_done(void *arg, int status, int timeouts,
			  struct ares_addrinfo *res)
{
	struct dns_hostq *hq = arg;
	struct dns_lookup *l = hq->hq_lookup;
	struct dns_host *h = &l->l_route.dr_hosts[hq->hq_index];

	(void)timeouts;
	if (status == ARES_SUCCESS && res != NULL && !l->l_dns->d_closing)
		dns_host_add_addrs(l, h, res->nodes);
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
static bool dns_host_literal(struct dns_host *h)
{
	size_t len = strlen(h->dh_name);

	if (dns_parse_literal(h->dh_name, &h->dh_addr[0]) == 1 ||
	    dns_parse_ip(h->dh_name, len, AF_UNSPEC, &h->dh_addr[0]) == 0) {
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

		if (dns_host_literal(h))
			continue;
		l->l_hq[i].hq_lookup = l;
		l->l_hq[i].hq_index = i;
		l->l_pending++;
		d->d_stats.lookups += 2;	/* A and AAAA */
		/* Fully qualified: c-ares applies no search list to it. */
		snprintf(fqdn, sizeof(fqdn), "%s.", h->dh_name);
		ares_getaddrinfo(d->d_chan, fqdn, NULL, &hints, dns_addr_done,
				 &l->l_hq[i]);
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
static unsigned dns_mx_order(struct dns *d, struct dns_mx_cand *c, unsigned n)
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
			       l->l_domain, dns_reason(status));
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
			dns_lookup_complete(l, dns_clamp_ttl(l->l_ttl, DNS_TTL_MAX));
		} else {
			dns_route_fail(r, DNS_NO_ADDRESS, "no usable MX host for %.80s",
				       l->l_domain);
			dns_lookup_complete(l, DNS_TTL_FAIL);
		}
		return;
	}
	ncand = dns_mx_order(l->l_dns, cand, ncand);
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

static void dns_mx_done(void *arg, int status, int timeouts,
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
				    dns_clamp_ttl(wt.wt_negative, DNS_TTL_NEG_MAX) :
				    DNS_TTL_NXDOMAIN);
		break;
	case ARES_EBADNAME:
		dns_route_fail(r, DNS_NXDOMAIN, "invalid domain name %.80s",
			       l->l_domain);
		dns_lookup_complete(l, DNS_TTL_NXDOMAIN);
		break;
	default:
		dns_route_fail(r, DNS_TEMPFAIL, "MX lookup for %.80s: %s",
			       l->l_domain, dns_reason(status));
		dns_lookup_complete(l, DNS_TTL_FAIL);
		break;
	}
}

/* ---- the interface ---- */

void dns_resolve(struct dns *d, const char *domain, dns_route_fn *cb, void *ctx)
{
	char name[DNS_NAME_MAX + 1];
	struct dns_route r;
	struct sockaddr_storage ss;
	struct dns_centry *e;
	struct dns_lookup *l;
	struct dns_waiter *w;
	uint32_t h;
	int len, lit;
	bool fresh;

	lit = dns_parse_literal(domain, &ss);
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
	len = dns_normalize(domain, name);
	if (len < 0) {
		dns_route_fail(&r, DNS_NXDOMAIN, "invalid domain name %.80s", domain);
		cb(ctx, &r);
		return;
	}
	h = dns_hash(d, name, (size_t)len);
	e = dns_cache_find(d, name, (size_t)len, h, io_loop_now());
	if (e != NULL) {
		d->d_stats.cache_hits++;
		dns_route_decode(e->ce_data + e->ce_keylen, &r);
		cb(ctx, &r);
		return;
	}
	l = dns_inflight_find(d, name, h);
	fresh = l == NULL;
	w = malloc(sizeof(*w));
	if (w != NULL && fresh)
		l = calloc(1, sizeof(*l));
	if (w == NULL || l == NULL) {
		free(w);
		dns_route_fail(&r, DNS_TEMPFAIL, "MX lookup for %.80s: out of memory",
			       name);
		cb(ctx, &r);
		return;
	}
	w->w_next = NULL;
	w->w_cb = cb;
	w->w_ctx = ctx;
	if (!fresh) {
		*l->l_wtail = w;
		l->l_wtail = &w->w_next;
		return;
	}
	l->l_dns = d;
	l->l_hash = h;
	l->l_waiters = w;
	l->l_wtail = &w->w_next;
	memcpy(l->l_domain, name, (size_t)len + 1);
	l->l_route.dr_status = DNS_OK;
	l->l_next = d->d_inflight[h & (DNS_INFLIGHT_BUCKETS - 1)];
	d->d_inflight[h & (DNS_INFLIGHT_BUCKETS - 1)] = l;
	d->d_stats.lookups++;
	/* May answer at once (no memory, no usable server): l is gone then. */
	ares_query(d->d_chan, name, DNS_CLASS_IN, DNS_TYPE_MX, dns_mx_done, l);
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
	for (unsigned i = 0; i < DNS_INFLIGHT_BUCKETS; i++)
		while (d->d_inflight[i] != NULL)
			dns_lookup_free(d->d_inflight[i]);
	while (d->d_oldest != NULL)
		dns_cache_remove(d, d->d_oldest);
	for (unsigned i = 0; i < d->d_nsocks; i++)
		free(d->d_socks[i]);
	free(d->d_socks);
	free(d);
}
