/*
 * dns_sync.c: see dns_sync.h. One c-ares query at a time, driven by
 * poll() until its callback runs; the answer is walked here (every read
 * bounds-checked, names expanded by ares_expand_name) into records of
 * the type asked for. CNAMEs in the answer are passed over: the
 * recursive server has followed them.
 */
#include "core/dns/dns_sync.h"

#include <ares.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define DNS_SYNC_MAX_RR 64	/* records kept per answer */

struct dns_sync {
	ares_channel ds_chan;
};

struct dns_sync_wait {
	bool dw_done;
	int dw_status;
	unsigned char *dw_abuf;		/* copy of the answer, malloc'd */
	int dw_alen;
};

int dns_sync_new(struct dns_sync **d_r, const char *servers, unsigned timeout_ms,
		 char *err, size_t errlen)
{
	struct ares_options opts;
	char lookups[] = "b";
	struct dns_sync *d;
	int ret;

	*d_r = NULL;
	d = calloc(1, sizeof(*d));
	if (d == NULL) {
		snprintf(err, errlen, "dns: out of memory");
		return -1;
	}
	memset(&opts, 0, sizeof(opts));
	opts.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_EDNS;
	opts.timeout = (int)(timeout_ms < 100 ? 100 : timeout_ms);
	opts.tries = 2;
	opts.ndomains = 0;
	opts.domains = NULL;
	opts.lookups = lookups;
	opts.ednspsz = 1232;
	ret = ares_init_options(&d->ds_chan, &opts,
				ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
				ARES_OPT_DOMAINS | ARES_OPT_LOOKUPS | ARES_OPT_EDNSPSZ);
	if (ret != ARES_SUCCESS) {
		snprintf(err, errlen, "dns: cannot start the resolver: %s", ares_strerror(ret));
		free(d);
		return -1;
	}
	if (servers != NULL && servers[0] != '\0') {
		ret = ares_set_servers_ports_csv(d->ds_chan, servers);
		if (ret != ARES_SUCCESS) {
			snprintf(err, errlen, "dns: bad server list \"%s\": %s", servers,
				 ares_strerror(ret));
			ares_destroy(d->ds_chan);
			free(d);
			return -1;
		}
	}
	*d_r = d;
	return 0;
}

void dns_sync_free(struct dns_sync **d_r)
{
	struct dns_sync *d = *d_r;

	if (d == NULL)
		return;
	*d_r = NULL;
	ares_destroy(d->ds_chan);
	free(d);
}

static void dns_sync_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_sync_wait *w = arg;

	(void)timeouts;
	w->dw_done = true;
	w->dw_status = status;
	if (abuf != NULL && alen > 0) {
		w->dw_abuf = malloc((size_t)alen);
		if (w->dw_abuf != NULL) {
			memcpy(w->dw_abuf, abuf, (size_t)alen);
			w->dw_alen = alen;
		}
	}
}

/* Drive the channel until w is done. */
static void dns_sync_wait(struct dns_sync *d, struct dns_sync_wait *w)
{
	while (!w->dw_done) {
		ares_socket_t socks[ARES_GETSOCK_MAXNUM];
		struct pollfd pfd[ARES_GETSOCK_MAXNUM];
		struct timeval tv, *tvp;
		int bits, n = 0, ms, rc;

		bits = ares_getsock(d->ds_chan, socks, ARES_GETSOCK_MAXNUM);
		for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			short ev = 0;

			/* c-ares's macros shift a signed 1 into bit 31. */
			if ((unsigned)bits & (1u << i))
				ev |= POLLIN;
			if ((unsigned)bits & (1u << (i + ARES_GETSOCK_MAXNUM)))
				ev |= POLLOUT;
			if (ev == 0)
				continue;
			pfd[n].fd = socks[i];
			pfd[n].events = ev;
			pfd[n].revents = 0;
			n++;
		}
		tvp = ares_timeout(d->ds_chan, NULL, &tv);
		ms = tvp != NULL ? (int)(tvp->tv_sec * 1000 + (tvp->tv_usec + 999) / 1000) : 1000;
		rc = poll(pfd, (nfds_t)n, ms);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0) {
			ares_process_fd(d->ds_chan, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
			continue;
		}
		for (int i = 0; i < n; i++) {
			short re = pfd[i].revents;

			if (re == 0)
				continue;
			ares_process_fd(d->ds_chan,
					re & (POLLIN | POLLERR | POLLHUP) ? pfd[i].fd : ARES_SOCKET_BAD,
					re & POLLOUT ? pfd[i].fd : ARES_SOCKET_BAD);
		}
	}
}

static uint16_t dns_sync_get16(const unsigned char *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

/* The length of the name at off, or -1. */
static long dns_sync_name_len(const unsigned char *abuf, int alen, size_t off)
{
	char *name = NULL;
	long enclen = 0;

	if (off >= (size_t)alen ||
	    ares_expand_name(abuf + off, abuf, alen, &name, &enclen) != ARES_SUCCESS)
		return -1;
	ares_free_string(name);
	return enclen;
}

/* The name at p into *text_r (malloc'd). 0 or -1. */
static int dns_sync_name(const unsigned char *abuf, int alen, const unsigned char *p,
			 struct dns_sync_rr *rr)
{
	char *name = NULL;
	long enclen = 0;

	if (ares_expand_name(p, abuf, alen, &name, &enclen) != ARES_SUCCESS)
		return -1;
	rr->dr_text = strdup(name);
	ares_free_string(name);
	if (rr->dr_text == NULL)
		return -1;
	rr->dr_len = strlen(rr->dr_text);
	return 0;
}

/* TXT rdata: its character-strings joined (RFC 7208 3.3). */
static int dns_sync_txt(const unsigned char *p, size_t rdlen, struct dns_sync_rr *rr)
{
	size_t o = 0, n = 0;

	rr->dr_text = malloc(rdlen + 1);
	if (rr->dr_text == NULL)
		return -1;
	while (o < rdlen) {
		size_t l = p[o++];

		if (l > rdlen - o) {
			free(rr->dr_text);
			rr->dr_text = NULL;
			return -1;
		}
		memcpy(rr->dr_text + n, p + o, l);
		n += l;
		o += l;
	}
	rr->dr_text[n] = '\0';
	rr->dr_len = n;
	return 0;
}

int dns_sync_parse(const unsigned char *abuf, int alen, int type, struct dns_sync_result *r)
{
	size_t off = 12, end = (size_t)alen;
	unsigned qd, an;

	if (alen < 12)
		return -1;
	qd = dns_sync_get16(abuf + 4);
	an = dns_sync_get16(abuf + 6);
	for (unsigned i = 0; i < qd; i++) {
		long l = dns_sync_name_len(abuf, alen, off);

		if (l < 0 || off + (size_t)l + 4 > end)
			return -1;
		off += (size_t)l + 4;
	}
	r->ds_rr = calloc(an < DNS_SYNC_MAX_RR ? (an ? an : 1) : DNS_SYNC_MAX_RR,
			  sizeof(*r->ds_rr));
	if (r->ds_rr == NULL)
		return -1;
	for (unsigned i = 0; i < an; i++) {
		long l = dns_sync_name_len(abuf, alen, off);
		unsigned rtype, rclass, rdlen;
		const unsigned char *rd;
		struct dns_sync_rr *rr;
		uint32_t ttl;

		if (l < 0 || off + (size_t)l + 10 > end)
			return -1;
		off += (size_t)l;
		rtype = dns_sync_get16(abuf + off);
		rclass = dns_sync_get16(abuf + off + 2);
		ttl = (uint32_t)dns_sync_get16(abuf + off + 4) << 16 | dns_sync_get16(abuf + off + 6);
		rdlen = dns_sync_get16(abuf + off + 8);
		off += 10;
		if (off + rdlen > end)
			return -1;
		rd = abuf + off;
		off += rdlen;
		if ((int)rtype != type || rclass != 1 || r->ds_n == DNS_SYNC_MAX_RR)
			continue;
		rr = &r->ds_rr[r->ds_n];
		rr->dr_ttl = ttl > 0x7fffffffu ? 0 : ttl;
		switch (type) {
		case DNS_SYNC_A:
			if (rdlen != 4)
				return -1;
			memcpy(rr->dr_addr, rd, 4);
			break;
		case DNS_SYNC_AAAA:
			if (rdlen != 16)
				return -1;
			memcpy(rr->dr_addr, rd, 16);
			break;
		case DNS_SYNC_MX:
			if (rdlen < 3)
				return -1;
			rr->dr_pref = dns_sync_get16(rd);
			if (dns_sync_name(abuf, alen, rd + 2, rr) < 0)
				return -1;
			break;
		case DNS_SYNC_PTR:
			if (dns_sync_name(abuf, alen, rd, rr) < 0)
				return -1;
			break;
		case DNS_SYNC_TXT:
			if (dns_sync_txt(rd, rdlen, rr) < 0)
				return -1;
			break;
		default:
			continue;
		}
		r->ds_n++;
	}
	return 0;
}

enum dns_sync_status dns_sync_lookup(struct dns_sync *d, const char *name, int type,
				     struct dns_sync_result *r)
{
	struct dns_sync_wait w;
	size_t len = strlen(name);

	memset(r, 0, sizeof(*r));
	memset(&w, 0, sizeof(w));
	if (len == 0 || len > 253 || (len > 0 && name[len - 1] == '.' && len == 1)) {
		r->ds_status = DNS_SYNC_ERROR;
		snprintf(r->ds_error, sizeof(r->ds_error), "invalid name '%.80s'", name);
		return r->ds_status;
	}
	ares_query(d->ds_chan, name, 1 /* IN */, type, dns_sync_answer, &w);
	dns_sync_wait(d, &w);
	switch (w.dw_status) {
	case ARES_SUCCESS:
		if (w.dw_abuf == NULL || dns_sync_parse(w.dw_abuf, w.dw_alen, type, r) < 0) {
			dns_sync_result_free(r);
			r->ds_status = DNS_SYNC_ERROR;
			snprintf(r->ds_error, sizeof(r->ds_error), "malformed answer for %.80s",
				 name);
		} else if (r->ds_n == 0) {
			r->ds_status = DNS_SYNC_NODATA;
			snprintf(r->ds_error, sizeof(r->ds_error), "no record");
		} else {
			r->ds_status = DNS_SYNC_OK;
		}
		break;
	case ARES_ENODATA:
		r->ds_status = DNS_SYNC_NODATA;
		snprintf(r->ds_error, sizeof(r->ds_error), "no record");
		break;
	case ARES_ENOTFOUND:
		r->ds_status = DNS_SYNC_NXDOMAIN;
		snprintf(r->ds_error, sizeof(r->ds_error), "no such domain");
		break;
	case ARES_EBADNAME:
	case ARES_ENOMEM:
	case ARES_EFORMERR:
	case ARES_EBADRESP:
		r->ds_status = DNS_SYNC_ERROR;
		snprintf(r->ds_error, sizeof(r->ds_error), "%s", ares_strerror(w.dw_status));
		break;
	default:
		r->ds_status = DNS_SYNC_TEMP;
		snprintf(r->ds_error, sizeof(r->ds_error), "%s", ares_strerror(w.dw_status));
		break;
	}
	free(w.dw_abuf);
	return r->ds_status;
}

void dns_sync_reverse_name(int family, const void *addr, char *buf, size_t cap)
{
	const unsigned char *a = addr;
	size_t o = 0;

	if (cap == 0)
		return;
	buf[0] = '\0';
	if (family == AF_INET) {
		snprintf(buf, cap, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1], a[0]);
		return;
	}
	for (int i = 15; i >= 0 && o + 4 < cap; i--)
		o += (size_t)snprintf(buf + o, cap - o, "%x.%x.", a[i] & 0xf, a[i] >> 4);
	snprintf(buf + o, cap - o, "ip6.arpa");
}

void dns_sync_result_free(struct dns_sync_result *r)
{
	if (r->ds_rr != NULL) {
		for (unsigned i = 0; i < r->ds_n; i++)
			free(r->ds_rr[i].dr_text);
	}
	free(r->ds_rr);
	r->ds_rr = NULL;
	r->ds_n = 0;
}

const char *dns_sync_status_name(enum dns_sync_status st)
{
	switch (st) {
	case DNS_SYNC_OK: return "ok";
	case DNS_SYNC_NODATA: return "no record";
	case DNS_SYNC_NXDOMAIN: return "no such domain";
	case DNS_SYNC_TEMP: return "temporary failure";
	case DNS_SYNC_ERROR: return "error";
	}
	return "error";
}
