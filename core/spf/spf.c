/*
 * spf.c: see spf.h. A libspf2 DNS layer (SPF_dns_server_t) whose lookup
 * asks a dns_sync channel and converts the records into libspf2's
 * SPF_dns_rr_t; a libspf2 server on top of it per context; a mutex-
 * guarded free list of contexts in struct spf.
 *
 * SPF_server_new_dns() leaves the layer to its caller (SPF_server_free
 * does not destroy it): a context frees its server, then its layer and
 * the layer's channel. Nothing is cached across calls beyond what the
 * DNS servers cache.
 */
#include "core/spf/spf.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <spf2/spf.h>
#include <spf2/spf_dns.h>

#include "core/base/log.h"
#include "core/dns/dns_sync.h"

/* The DNS time one check may take in all, in per-try timeouts: 20 s for
 * the daemon's 2 s tries, RFC 7208 4.6.4's "at least 20 seconds". */
#define SPF_CHECK_TRIES 10u

struct spf_ctx {
	struct spf_ctx *sc_next;
	SPF_server_t *sc_server;
	SPF_dns_server_t *sc_layer;	/* ours; hook: this context */
	struct dns_sync *sc_dns;	/* the layer's channel */
	uint64_t sc_deadline_ns;	/* the check in progress ends then */
	bool sc_expired;		/* a lookup came after the deadline */
};

struct spf {
	pthread_mutex_t sp_lock;
	struct spf_ctx *sp_free;	/* contexts nobody uses now */
	char *sp_servers;
	char *sp_hostname;
	unsigned sp_timeout_ms;
};

static void spf_log_warning(const char *file, int line, const char *msg)
{
	(void)file;
	(void)line;
	log_msg(LOG_DEBUG, "spf: libspf2: %s", msg);
}

void spf_lib_init(void)
{
	SPF_warning_handler = spf_log_warning;
	SPF_info_handler = NULL;
	SPF_debug_handler = NULL;
}

const char *spf_result_name(enum spf_result r)
{
	switch (r) {
	case SPF_RES_NONE: return "none";
	case SPF_RES_NEUTRAL: return "neutral";
	case SPF_RES_PASS: return "pass";
	case SPF_RES_FAIL: return "fail";
	case SPF_RES_SOFTFAIL: return "softfail";
	case SPF_RES_TEMPERROR: return "temperror";
	case SPF_RES_PERMERROR: return "permerror";
	}
	return "permerror";
}

static uint64_t spf_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The layer's lookup: one dns_sync query, its records as libspf2's; after
 * the check's deadline none, a temporary failure (RFC 7208 4.6.4). */
static SPF_dns_rr_t *spf_dns_lookup(SPF_dns_server_t *layer, const char *domain, ns_type type,
				    int should_cache)
{
	struct spf_ctx *c = layer->hook;
	struct dns_sync *d = c->sc_dns;
	struct dns_sync_result r;
	SPF_dns_rr_t *rr;
	SPF_dns_stat_t herr;
	uint32_t ttl = 0;
	int n = 0;

	(void)should_cache;
	if (type != ns_t_a && type != ns_t_aaaa && type != ns_t_txt && type != ns_t_mx &&
	    type != ns_t_ptr) {
		/* Type SPF (99) is obsolete (RFC 7208 3.1): not asked. */
		return SPF_dns_rr_new_init(layer, domain, type, 0, NO_DATA);
	}
	if (spf_now_ns() >= c->sc_deadline_ns) {
		c->sc_expired = true;
		return SPF_dns_rr_new_init(layer, domain, type, 0, TRY_AGAIN);
	}
	switch (dns_sync_lookup(d, domain, (int)type, &r)) {
	case DNS_SYNC_OK: herr = NETDB_SUCCESS; break;
	case DNS_SYNC_NODATA: herr = NO_DATA; break;
	case DNS_SYNC_NXDOMAIN: herr = HOST_NOT_FOUND; break;
	case DNS_SYNC_TEMP: herr = TRY_AGAIN; break;
	default: herr = NO_RECOVERY; break;
	}
	if (r.ds_n > 0)
		ttl = r.ds_rr[0].dr_ttl;
	rr = SPF_dns_rr_new_init(layer, domain, type, (int)ttl, herr);
	if (rr == NULL) {
		dns_sync_result_free(&r);
		return NULL;
	}
	for (unsigned i = 0; i < r.ds_n; i++) {
		const struct dns_sync_rr *x = &r.ds_rr[i];
		size_t len;

		switch (type) {
		case ns_t_a:
			len = sizeof(struct in_addr);
			break;
		case ns_t_aaaa:
			len = sizeof(struct in6_addr);
			break;
		case ns_t_txt:
		case ns_t_mx:
		case ns_t_ptr:
			len = strlen(x->dr_text) + 1;
			break;
		default:
			continue;
		}
		if (SPF_dns_rr_buf_realloc(rr, n, len) != SPF_E_SUCCESS) {
			rr->herrno = TRY_AGAIN;	/* out of memory: not the domain's fault */
			break;
		}
		if (type == ns_t_a)
			memcpy(&rr->rr[n]->a, x->dr_addr, len);
		else if (type == ns_t_aaaa)
			memcpy(&rr->rr[n]->aaaa, x->dr_addr, len);
		else
			memcpy(rr->rr[n]->txt, x->dr_text, len);
		n++;
	}
	rr->num_rr = n;
	dns_sync_result_free(&r);
	return rr;
}

static void spf_dns_destroy(SPF_dns_server_t *layer)
{
	struct spf_ctx *c = layer->hook;

	dns_sync_free(&c->sc_dns);
	free(layer);
}

static void spf_ctx_free(struct spf_ctx *c)
{
	if (c->sc_server != NULL)
		SPF_server_free(c->sc_server);
	if (c->sc_layer != NULL)
		spf_dns_destroy(c->sc_layer);
	free(c);
}

static struct spf_ctx *spf_ctx_new(struct spf *spf, char *err, size_t errlen)
{
	SPF_dns_server_t *layer;
	SPF_response_t *resp = NULL;
	struct dns_sync *d;
	struct spf_ctx *c;

	if (dns_sync_new(&d, spf->sp_servers, spf->sp_timeout_ms, err, errlen) < 0)
		return NULL;
	layer = calloc(1, sizeof(*layer));
	c = calloc(1, sizeof(*c));
	if (layer == NULL || c == NULL) {
		free(layer);
		free(c);
		dns_sync_free(&d);
		snprintf(err, errlen, "spf: out of memory");
		return NULL;
	}
	layer->destroy = spf_dns_destroy;
	layer->lookup = spf_dns_lookup;
	layer->name = "ringmta";
	layer->hook = c;
	c->sc_dns = d;
	c->sc_layer = layer;
	c->sc_server = SPF_server_new_dns(layer, 0);
	if (c->sc_server == NULL) {
		spf_ctx_free(c);
		snprintf(err, errlen, "spf: cannot start libspf2");
		return NULL;
	}
	if (SPF_server_set_rec_dom(c->sc_server, spf->sp_hostname) != SPF_E_SUCCESS ||
	    SPF_server_set_explanation(c->sc_server,
				       "",
				       &resp) != SPF_E_SUCCESS) {
		if (resp != NULL)
			SPF_response_free(resp);
		spf_ctx_free(c);
		snprintf(err, errlen, "spf: cannot configure libspf2");
		return NULL;
	}
	if (resp != NULL)
		SPF_response_free(resp);
	return c;
}

int spf_new(struct spf **spf_r, const char *dns_servers, const char *hostname,
	    unsigned timeout_ms, char *err, size_t errlen)
{
	struct spf *spf = calloc(1, sizeof(*spf));
	struct spf_ctx *c;

	*spf_r = NULL;
	if (spf == NULL) {
		snprintf(err, errlen, "spf: out of memory");
		return -1;
	}
	pthread_mutex_init(&spf->sp_lock, NULL);
	spf->sp_servers = strdup(dns_servers != NULL ? dns_servers : "");
	spf->sp_hostname = strdup(hostname != NULL && hostname[0] ? hostname : "localhost");
	spf->sp_timeout_ms = timeout_ms;
	if (spf->sp_servers == NULL || spf->sp_hostname == NULL) {
		snprintf(err, errlen, "spf: out of memory");
		spf_free(&spf);
		return -1;
	}
	/* One context now, so that a bad server list fails at start. */
	c = spf_ctx_new(spf, err, errlen);
	if (c == NULL) {
		spf_free(&spf);
		return -1;
	}
	spf->sp_free = c;
	*spf_r = spf;
	return 0;
}

void spf_free(struct spf **spf_r)
{
	struct spf *spf = *spf_r;

	if (spf == NULL)
		return;
	*spf_r = NULL;
	while (spf->sp_free != NULL) {
		struct spf_ctx *c = spf->sp_free;

		spf->sp_free = c->sc_next;
		spf_ctx_free(c);
	}
	pthread_mutex_destroy(&spf->sp_lock);
	free(spf->sp_servers);
	free(spf->sp_hostname);
	free(spf);
}

static enum spf_result spf_result_from(SPF_result_t r)
{
	switch (r) {
	case SPF_RESULT_PASS: return SPF_RES_PASS;
	case SPF_RESULT_FAIL: return SPF_RES_FAIL;
	case SPF_RESULT_SOFTFAIL: return SPF_RES_SOFTFAIL;
	case SPF_RESULT_NEUTRAL: return SPF_RES_NEUTRAL;
	case SPF_RESULT_NONE: return SPF_RES_NONE;
	case SPF_RESULT_TEMPERROR: return SPF_RES_TEMPERROR;
	default: return SPF_RES_PERMERROR;
	}
}

/* Copy s into why, control characters (CR, LF, tabs) as blanks. */
static void spf_why(char *why, size_t cap, const char *s)
{
	size_t i;

	if (why == NULL || cap == 0)
		return;
	for (i = 0; s != NULL && s[i] != '\0' && i + 1 < cap; i++)
		why[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i];
	why[i] = '\0';
}

static void spf_why_fail(char *why, size_t cap, const struct sockaddr *client,
			 const char *domain)
{
	char ip[INET6_ADDRSTRLEN] = "?", text[512];

	if (client->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)client)->sin_addr, ip, sizeof(ip));
	else if (client->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)client)->sin6_addr, ip,
			  sizeof(ip));
	snprintf(text, sizeof(text), "%s is not allowed to send mail for %.253s", ip,
		 domain != NULL ? domain : "?");
	spf_why(why, cap, text);
}

/*
 * SPF_request_query_mailfrom() without its "localhost always passes"
 * shortcut, which RFC 7208 does not have: loopback clients are judged by
 * the record like any other (the domain check runs on 127.0.0.x sources
 * in tests; relay_networks, not SPF, is what trusts local clients).
 * The rest is the same sequence of libspf2's public calls. Returns the
 * response (to free), or NULL without memory.
 */
static SPF_response_t *spf_query_mailfrom(SPF_server_t *server, SPF_request_t *req)
{
	SPF_response_t *resp = SPF_response_new(req);
	SPF_record_t *rec = NULL;
	SPF_errcode_t err;

	if (resp == NULL)
		return NULL;
	req->cur_dom = req->use_helo ? req->helo_dom : req->env_from_dp;
	err = SPF_server_get_record(server, req, resp, &rec);
	if (err != SPF_E_SUCCESS) {
		SPF_result_t r = resp->result;

		if (rec != NULL)
			SPF_record_free(rec);
		/* libspf2 leaves the result unset for some failures: a
		 * failed lookup is temporary; a record that does not
		 * compile (its errors, then "failed to compile": two or
		 * more) is a permerror (RFC 7208 4.6), no TXT at all none. */
		if (r == SPF_RESULT_INVALID)
			r = err == SPF_E_DNS_ERROR ? SPF_RESULT_TEMPERROR :
			    err == SPF_E_NOT_SPF && SPF_response_errors(resp) < 2 ?
			    SPF_RESULT_NONE : SPF_RESULT_PERMERROR;
		SPF_i_done(resp, r, resp->reason, err);
		return resp;
	}
	resp->spf_record_exp = rec;
	SPF_record_interpret(rec, req, resp, 0);
	SPF_record_free(rec);
	return resp;
}

enum spf_result spf_check(struct spf *spf, const struct sockaddr *client, const char *helo,
			  const char *mail_from, char *why, size_t cap)
{
	SPF_response_t *resp = NULL;
	SPF_request_t *req;
	enum spf_result res;
	struct spf_ctx *c;
	char err[256] = "";
	int rc;

	spf_why(why, cap, "");
	pthread_mutex_lock(&spf->sp_lock);
	c = spf->sp_free;
	if (c != NULL)
		spf->sp_free = c->sc_next;
	pthread_mutex_unlock(&spf->sp_lock);
	if (c == NULL && (c = spf_ctx_new(spf, err, sizeof(err))) == NULL) {
		spf_why(why, cap, err);
		return SPF_RES_TEMPERROR;
	}
	c->sc_deadline_ns = spf_now_ns() +
			    (uint64_t)spf->sp_timeout_ms * SPF_CHECK_TRIES * 1000000u;
	c->sc_expired = false;
	req = SPF_request_new(c->sc_server);
	if (req == NULL) {
		spf_why(why, cap, "out of memory");
		res = SPF_RES_TEMPERROR;
		goto out;
	}
	if (client->sa_family == AF_INET) {
		rc = SPF_request_set_ipv4(req, ((const struct sockaddr_in *)client)->sin_addr);
	} else if (client->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)client)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			struct in_addr a4;

			memcpy(&a4, &a6->s6_addr[12], 4);
			rc = SPF_request_set_ipv4(req, a4);
		} else {
			rc = SPF_request_set_ipv6(req, *a6);
		}
	} else {
		rc = SPF_E_INVALID_IP4;
	}
	if (rc == SPF_E_SUCCESS && helo != NULL && helo[0] != '\0')
		rc = SPF_request_set_helo_dom(req, helo);
	if (rc != SPF_E_SUCCESS) {
		spf_why(why, cap, "no client address or HELO name to check");
		res = SPF_RES_NONE;
		goto out;
	}
	if (SPF_request_set_env_from(req, mail_from != NULL ? mail_from : "") != 0) {
		spf_why(why, cap, "no domain to check (null sender and no HELO name)");
		res = SPF_RES_NONE;
		goto out;
	}
	resp = spf_query_mailfrom(c->sc_server, req);
	if (resp == NULL) {
		spf_why(why, cap, "out of memory");
		res = SPF_RES_TEMPERROR;
		goto out;
	}
	res = spf_result_from(SPF_response_result(resp));
	/* libspf2 1.2.10 mangles blanks in exp= texts: our own words. */
	if (c->sc_expired && res == SPF_RES_TEMPERROR) {
		char text[128];

		snprintf(text, sizeof(text), "DNS lookups took longer than %u ms in all",
			 spf->sp_timeout_ms * SPF_CHECK_TRIES);
		spf_why(why, cap, text);
	} else if (res == SPF_RES_FAIL)
		spf_why_fail(why, cap, client, req->cur_dom);
	else if (SPF_response_get_header_comment(resp) != NULL)
		spf_why(why, cap, SPF_response_get_header_comment(resp));
	else if (SPF_response_errors(resp) > 0 && SPF_response_message(resp, 0) != NULL)
		spf_why(why, cap, SPF_error_message(SPF_response_message(resp, 0)));
out:
	if (resp != NULL)
		SPF_response_free(resp);
	if (req != NULL)
		SPF_request_free(req);
	pthread_mutex_lock(&spf->sp_lock);
	c->sc_next = spf->sp_free;
	spf->sp_free = c;
	pthread_mutex_unlock(&spf->sp_lock);
	return res;
}
