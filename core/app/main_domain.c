/*
 * main_domain.c: "ringmta domain check DOMAIN [--source IP]...", an
 * operator's pre-flight before sending bulk mail as DOMAIN: DKIM keys
 * published and matching dkim_key_table, SPF passing for every source
 * address, a DMARC policy, MX (able to receive replies and bounces), PTR
 * with forward-confirmed reverse DNS for every source, and alignment.
 *
 * Every lookup goes through the configured dns_servers (dns_sync.h,
 * blocking: this is a command, not a worker). One line per finding:
 * "pass|warn|fail CHECK  what was found; what to do". Exit status 0
 * when nothing failed (warnings allowed), 1 when something did, 2 for
 * usage errors. Owns nothing beyond one run.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <opendmarc/dmarc.h>

#include "core/app/main.h"
#include "core/dmarc/dmarc_org.h"
#include "core/dns/dns_sync.h"
#include "core/spf/spf.h"
#include "core/dkim/dkim_table.h"

#define DOMAIN_MAX_SOURCES 16
#define DOMAIN_DNS_TIMEOUT_MS 2000

struct domain_run {
	const struct config *dr_cfg;
	struct dns_sync *dr_dns;
	struct spf *dr_spf;
	char dr_domain[254];
	char dr_dkim_d[254];	/* d= that would sign From DOMAIN; "" none */
	struct sockaddr_storage dr_src[DOMAIN_MAX_SOURCES];
	unsigned dr_nsrc;
	unsigned dr_failed;	/* fail lines printed */
};

static void domain_usage(FILE *f)
{
	fprintf(f, "usage: ringmta [-c FILE] [-o key=value]... domain check DOMAIN"
		" [--source IP]...\n"
		"Checks DKIM, SPF, DMARC, MX, PTR and alignment of DOMAIN through dns_servers.\n"
		"Exit status: 0 all checks pass (warnings allowed), 1 a check failed,"
		" 2 usage error.\n");
}

/* One finding. */
static void domain_line(struct domain_run *r, const char *verdict, const char *check,
			const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void domain_line(struct domain_run *r, const char *verdict, const char *check,
			const char *fmt, ...)
{
	va_list ap;

	if (strcmp(verdict, "fail") == 0)
		r->dr_failed++;
	printf("%-4s %-6s ", verdict, check);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static const char *domain_ip(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
	const void *a = ss->ss_family == AF_INET ?
			(const void *)&((const struct sockaddr_in *)ss)->sin_addr :
			(const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;

	if (inet_ntop(ss->ss_family, a, buf, (socklen_t)cap) == NULL)
		snprintf(buf, cap, "?");
	return buf;
}

static const unsigned char *domain_ip_bytes(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET ?
	       (const unsigned char *)&((const struct sockaddr_in *)ss)->sin_addr :
	       (const unsigned char *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
}

/* "203.0.113.5" or "2001:db8::5" into ss (port 0). 0 or -1. */
static int domain_parse_ip(const char *s, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, s, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		ss->ss_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		ss->ss_family = AF_INET6;
		return 0;
	}
	return -1;
}

/* The address the kernel would send from to reach the internet: a UDP
 * socket connected (nothing is sent) to a public address. 0 or -1. */
static int domain_route_source(int family, struct sockaddr_storage *ss)
{
	struct sockaddr_storage to;
	socklen_t len = sizeof(*ss);
	int fd, rc;

	memset(&to, 0, sizeof(to));
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&to;

		in->sin_family = AF_INET;
		in->sin_port = htons(53);
		inet_pton(AF_INET, "8.8.8.8", &in->sin_addr);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&to;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(53);
		inet_pton(AF_INET6, "2001:4860:4860::8888", &in6->sin6_addr);
	}
	fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	rc = connect(fd, (struct sockaddr *)&to,
		     family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
	if (rc == 0)
		rc = getsockname(fd, (struct sockaddr *)ss, &len);
	close(fd);
	if (rc == 0 && family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = 0;
	else if (rc == 0)
		((struct sockaddr_in6 *)ss)->sin6_port = 0;
	return rc == 0 ? 0 : -1;
}

/*
 * The value of tag in a tag=value list (RFC 6376 3.2: "; "-separated,
 * blanks around names and values ignored) into buf, blanks inside the
 * value removed (folded base64). 1 found, 0 not, -1 too long. buf
 * NULL: only whether the tag is there.
 */
static int domain_tag(const char *rec, const char *tag, char *buf, size_t cap)
{
	size_t tlen = strlen(tag);
	const char *p = rec;

	while (*p != '\0') {
		const char *end = strchr(p, ';'), *eq;
		size_t n = 0;

		if (end == NULL)
			end = p + strlen(p);
		while (p < end && isspace((unsigned char)*p))
			p++;
		eq = memchr(p, '=', (size_t)(end - p));
		if (eq != NULL) {
			const char *ne = eq;

			while (ne > p && isspace((unsigned char)ne[-1]))
				ne--;
			if ((size_t)(ne - p) == tlen && strncasecmp(p, tag, tlen) == 0) {
				if (buf == NULL)
					return 1;
				for (const char *v = eq + 1; v < end; v++) {
					if (isspace((unsigned char)*v))
						continue;
					if (n + 1 >= cap)
						return -1;
					buf[n++] = *v;
				}
				if (cap == 0)
					return -1;
				buf[n] = '\0';
				return 1;
			}
		}
		p = *end ? end + 1 : end;
	}
	return 0;
}

/* ---- DKIM ---- */

static void domain_check_selector(struct domain_run *r, const struct dkim_domain *dd,
				  const struct dkim_selector *sel, bool *ok)
{
	bool ed = dkim_key_alg(sel->ds_key) == DKIM_ALG_ED25519_SHA256;
	char name[512], k[32], v[32], *want, *p = NULL;
	struct dns_sync_result res;
	const char *rec = NULL;
	unsigned nrec = 0;

	want = dkim_key_public_b64(sel->ds_key);
	if (want == NULL) {
		domain_line(r, "fail", "dkim", "%s: out of memory", sel->ds_name);
		*ok = false;
		return;
	}
	snprintf(name, sizeof(name), "%s._domainkey.%s", sel->ds_name, dd->dd_name);
	dns_sync_lookup(r->dr_dns, name, DNS_SYNC_TXT, &res);
	for (unsigned i = 0; i < res.ds_n; i++) {
		if (domain_tag(res.ds_rr[i].dr_text, "p", NULL, 0) != 0) {
			if (rec == NULL)
				rec = res.ds_rr[i].dr_text;
			nrec++;
		}
	}
	if (res.ds_status == DNS_SYNC_TEMP || res.ds_status == DNS_SYNC_ERROR) {
		domain_line(r, "fail", "dkim", "%s: lookup failed (%s); check dns_servers and"
			    " retry", name, res.ds_error);
		*ok = false;
	} else if (rec == NULL) {
		domain_line(r, "fail", "dkim", "%s: no DKIM record; publish TXT \"v=DKIM1; k=%s;"
			    " p=%s\"%s", name, ed ? "ed25519" : "rsa", want, strlen(want) > 230 ?
			    " (as several strings of at most 255 characters)" : "");
		*ok = false;
	} else if (nrec > 1) {
		domain_line(r, "fail", "dkim", "%s: %u DKIM records; keep exactly one", name, nrec);
		*ok = false;
	} else {
		size_t plen = strlen(rec) + 1;
		int vr = domain_tag(rec, "v", v, sizeof(v));
		int kr = domain_tag(rec, "k", k, sizeof(k));

		p = malloc(plen);
		if (p == NULL || domain_tag(rec, "p", p, plen) < 0) {
			domain_line(r, "fail", "dkim", "%s: cannot read the record", name);
			*ok = false;
		} else if (vr != 0 && (vr < 0 || strcmp(v, "DKIM1") != 0 ||
				       strncmp(rec + strspn(rec, " \t"), "v", 1) != 0)) {
			domain_line(r, "fail", "dkim", "%s: v= must be DKIM1 and come first"
				    " (RFC 6376 3.6.1)", name);
			*ok = false;
		} else if (p[0] == '\0') {
			domain_line(r, "fail", "dkim", "%s: key revoked (p= is empty); publish"
				    " p=%s or configure another selector", name, want);
			*ok = false;
		} else if ((kr > 0 ? strcasecmp(k, ed ? "ed25519" : "rsa") != 0 : ed)) {
			domain_line(r, "fail", "dkim", "%s: k=%s but the configured key (%s) is %s;"
				    " publish k=%s", name, kr > 0 ? k : "rsa (the default)",
				    sel->ds_path, ed ? "ed25519" : "rsa", ed ? "ed25519" : "rsa");
			*ok = false;
		} else if (strcmp(p, want) != 0) {
			domain_line(r, "fail", "dkim", "%s: p= is not the public key of %s; publish"
				    " p=%s", name, sel->ds_path, want);
			*ok = false;
		} else {
			domain_line(r, "pass", "dkim", "%s: k=%s key matches %s (%u bits)", name,
				    ed ? "ed25519" : "rsa", sel->ds_path, dkim_key_bits(sel->ds_key));
		}
	}
	free(p);
	free(want);
	dns_sync_result_free(&res);
}

/*
 * The key table's entry that would sign mail From DOMAIN (dkim_table_match:
 * DOMAIN, its parents, then dkim_default_domain), and each of its
 * selectors' records under its d=. Sets dr_dkim_d for the alignment line.
 */
static bool domain_check_dkim(struct domain_run *r)
{
	const struct dkim_domain *dd;
	struct dkim_table *t = NULL;
	char err[512];
	bool ok = true;

	if (r->dr_cfg->dkim_key_table == NULL || r->dr_cfg->dkim_key_table[0] == '\0') {
		domain_line(r, "fail", "dkim", "no key in dkim_key_table for %s (dkim_key_table"
			    " is not set)", r->dr_domain);
		return false;
	}
	if (dkim_table_load(&t, r->dr_cfg->dkim_key_table, err, sizeof(err)) < 0) {
		domain_line(r, "fail", "dkim", "dkim_key_table: %s", err);
		return false;
	}
	dd = dkim_table_match(t, NULL, NULL, r->dr_domain,
			      r->dr_cfg->dkim_default_domain[0] ? r->dr_cfg->dkim_default_domain :
			      NULL);
	if (dd == NULL || dd->dd_nsel == 0) {
		domain_line(r, "fail", "dkim", "no key in dkim_key_table for %s; add a [%s]"
			    " section with keys = SELECTOR:KEYFILE", r->dr_domain, r->dr_domain);
		dkim_table_unref(&t);
		return false;
	}
	snprintf(r->dr_dkim_d, sizeof(r->dr_dkim_d), "%s", dd->dd_name);
	for (unsigned i = 0; i < dd->dd_nsel; i++)
		domain_check_selector(r, dd, &dd->dd_sel[i], &ok);
	dkim_table_unref(&t);
	return ok;
}

/* DMARC alignment (RFC 7489 3.1) of what ringmta would sign and send
 * with From addresses at DOMAIN. */
static void domain_check_align(struct domain_run *r)
{
	char org[256];

	if (dmarc_org_domain(r->dr_domain, org, sizeof(org)) < 0)
		snprintf(org, sizeof(org), "%s", r->dr_domain);
	if (r->dr_dkim_d[0] == '\0')
		domain_line(r, "warn", "align", "no DKIM key signs mail From %s, so only SPF"
			    " (MAIL FROM at %s) can align", r->dr_domain, r->dr_domain);
	else if (strcmp(r->dr_dkim_d, r->dr_domain) == 0)
		domain_line(r, "pass", "align", "DKIM signs d=%s, the From domain, and SPF checks"
			    " postmaster@%s: both align with From addresses at %s (strict and"
			    " relaxed)", r->dr_domain, r->dr_domain, r->dr_domain);
	else if (dmarc_org_aligned(r->dr_dkim_d, r->dr_domain))
		domain_line(r, "pass", "align", "DKIM signs mail From %s with d=%s: relaxed"
			    " alignment holds (organizational domain %s), strict (adkim=s) would"
			    " not", r->dr_domain, r->dr_dkim_d, org);
	else
		domain_line(r, "fail", "align", "DKIM signs mail From %s with d=%s, which does not"
			    " align (different organizational domains): DMARC cannot pass on DKIM;"
			    " add a [%s] section to dkim_key_table", r->dr_domain, r->dr_dkim_d,
			    r->dr_domain);
}

/* ---- SPF ---- */

static void domain_check_spf(struct domain_run *r)
{
	char from[300], ip[INET6_ADDRSTRLEN], why[512];

	snprintf(from, sizeof(from), "postmaster@%s", r->dr_domain);
	for (unsigned i = 0; i < r->dr_nsrc; i++) {
		const struct sockaddr_storage *ss = &r->dr_src[i];
		const char *mech = ss->ss_family == AF_INET ? "ip4" : "ip6";
		enum spf_result res;

		domain_ip(ss, ip, sizeof(ip));
		res = spf_check(r->dr_spf, (const struct sockaddr *)ss, r->dr_cfg->hostname, from,
				why, sizeof(why));
		switch (res) {
		case SPF_RES_PASS:
			domain_line(r, "pass", "spf", "%s: pass for %s", ip, from);
			break;
		case SPF_RES_NONE:
			domain_line(r, "fail", "spf", "%s: no SPF record for %s; publish TXT"
				    " \"v=spf1 %s:%s -all\" at %s", ip, r->dr_domain, mech, ip,
				    r->dr_domain);
			break;
		case SPF_RES_TEMPERROR:
			domain_line(r, "fail", "spf", "%s: temperror (%s); check dns_servers and"
				    " retry", ip, why);
			break;
		case SPF_RES_PERMERROR:
			domain_line(r, "fail", "spf", "%s: permerror, the SPF record of %s is invalid"
				    " (%s); fix it and add %s:%s", ip, r->dr_domain, why, mech, ip);
			break;
		default:
			domain_line(r, "fail", "spf", "%s: %s for %s; add %s:%s to the SPF record"
				    " of %s", ip, spf_result_name(res), from, mech, ip, r->dr_domain);
			break;
		}
	}
}

/* ---- DMARC ---- */

/* The record's first tag is v=DMARC1 (RFC 7489 6.4: v first, exact). */
static bool domain_dmarc_first(const char *t)
{
	if (t[0] != 'v')
		return false;
	t++;
	t += strspn(t, " \t");
	if (*t++ != '=')
		return false;
	t += strspn(t, " \t");
	if (strncmp(t, "DMARC1", 6) != 0)
		return false;
	t += 6;
	t += strspn(t, " \t");
	return *t == ';' || *t == '\0';
}

/*
 * The DMARC record at _dmarc.name: 1 found (copied into *rec_r,
 * malloc'd), 0 none, -1 a failure already reported.
 */
static int domain_dmarc_lookup(struct domain_run *r, const char *name, char **rec_r)
{
	struct dns_sync_result res;
	char qname[300];
	unsigned n = 0, misplaced = 0;

	*rec_r = NULL;
	snprintf(qname, sizeof(qname), "_dmarc.%s", name);
	dns_sync_lookup(r->dr_dns, qname, DNS_SYNC_TXT, &res);
	if (res.ds_status == DNS_SYNC_TEMP || res.ds_status == DNS_SYNC_ERROR) {
		domain_line(r, "fail", "dmarc", "%s: lookup failed (%s); check dns_servers and"
			    " retry", qname, res.ds_error);
		dns_sync_result_free(&res);
		return -1;
	}
	/* RFC 7489 6.6.3: records that start with "v=DMARC1"; more than
	 * one is as good as none. */
	for (unsigned i = 0; i < res.ds_n; i++) {
		const char *t = res.ds_rr[i].dr_text;

		t += strspn(t, " \t");
		if (domain_dmarc_first(t)) {
			if (*rec_r == NULL)
				*rec_r = strdup(t);
			n++;
		} else if (strstr(t, "DMARC1") != NULL) {
			misplaced = i + 1;
		}
	}
	if (n == 0 && misplaced > 0) {
		domain_line(r, "fail", "dmarc", "%s: \"%.200s\" is ignored: a DMARC record must"
			    " start with v=DMARC1 (RFC 7489 6.4); move v=DMARC1 to the front", qname,
			    res.ds_rr[misplaced - 1].dr_text);
		dns_sync_result_free(&res);
		return -1;
	}
	dns_sync_result_free(&res);
	if (n > 1) {
		domain_line(r, "fail", "dmarc", "_dmarc.%s: %u DMARC records, so none applies"
			    " (RFC 7489 6.6.3); keep exactly one", name, n);
		free(*rec_r);
		*rec_r = NULL;
		return -1;
	}
	return n == 1 && *rec_r != NULL ? 1 : 0;
}

static const char *domain_dmarc_policy(int p)
{
	switch (p) {
	case DMARC_RECORD_P_NONE: return "none";
	case DMARC_RECORD_P_QUARANTINE: return "quarantine";
	case DMARC_RECORD_P_REJECT: return "reject";
	}
	return "unspecified";
}

static void domain_check_dmarc(struct domain_run *r)
{
	char org[256], *rec = NULL, at[300];
	const char *where = r->dr_domain;
	DMARC_POLICY_T *pctx;
	int found, p = 0, sp = 0, st;
	u_char **rua;

	found = domain_dmarc_lookup(r, r->dr_domain, &rec);
	if (found == 0 && dmarc_org_domain(r->dr_domain, org, sizeof(org)) > 0 &&
	    strcmp(org, r->dr_domain) != 0) {
		where = org;
		found = domain_dmarc_lookup(r, org, &rec);
	}
	if (found < 0)
		return;
	if (found == 0) {
		domain_line(r, "fail", "dmarc", "no DMARC record at _dmarc.%s; publish TXT"
			    " \"v=DMARC1; p=none; rua=mailto:dmarc-reports@%s\" there (then move"
			    " to p=quarantine or p=reject)", r->dr_domain, r->dr_domain);
		return;
	}
	snprintf(at, sizeof(at), "_dmarc.%s%s", where,
		 where == r->dr_domain ? "" : " (the organizational domain's)");
	pctx = opendmarc_policy_connect_init((u_char *)"127.0.0.1", DMARC_POLICY_IP_TYPE_IPV4);
	if (pctx == NULL) {
		domain_line(r, "fail", "dmarc", "out of memory");
		free(rec);
		return;
	}
	st = opendmarc_policy_parse_dmarc(pctx, (u_char *)where, (u_char *)rec);
	if (st != DMARC_PARSE_OKAY) {
		domain_line(r, "fail", "dmarc", "%s: invalid record \"%s\" (%s); fix it",
			    at, rec, opendmarc_policy_status_to_str(st));
		goto out;
	}
	opendmarc_policy_fetch_p(pctx, &p);
	opendmarc_policy_fetch_sp(pctx, &sp);
	/* A subdomain that inherits the organizational record gets sp=. */
	if (where != r->dr_domain && sp != DMARC_RECORD_P_UNSPECIFIED)
		p = sp;
	if (p == DMARC_RECORD_P_NONE)
		domain_line(r, "warn", "dmarc", "%s: p=none, monitoring only (Gmail and Yahoo"
			    " accept it for bulk senders); move to p=quarantine or p=reject once"
			    " reports are clean", at);
	else if (p == DMARC_RECORD_P_QUARANTINE || p == DMARC_RECORD_P_REJECT)
		domain_line(r, "pass", "dmarc", "%s: v=DMARC1 p=%s", at, domain_dmarc_policy(p));
	else
		domain_line(r, "fail", "dmarc", "%s: no valid p= policy; add p=none,"
			    " p=quarantine or p=reject", at);
	rua = opendmarc_policy_fetch_rua(pctx, NULL, 0, 1);
	if (rua == NULL || rua[0] == NULL)
		domain_line(r, "warn", "dmarc", "%s: no rua=, so no aggregate reports reach you;"
			    " add rua=mailto:dmarc-reports@%s", at, r->dr_domain);
	else
		domain_line(r, "pass", "dmarc", "%s: aggregate reports go to %s", at,
			    (const char *)rua[0]);
out:
	opendmarc_policy_connect_shutdown(pctx);
	free(rec);
}

/* ---- MX ---- */

static void domain_check_mx(struct domain_run *r)
{
	struct dns_sync_result res, a;
	enum dns_sync_status st;

	st = dns_sync_lookup(r->dr_dns, r->dr_domain, DNS_SYNC_MX, &res);
	if (st == DNS_SYNC_OK) {
		bool null_mx = res.ds_n == 1 && res.ds_rr[0].dr_text[0] == '\0';

		if (null_mx)
			domain_line(r, "fail", "mx", "%s has a null MX (RFC 7505): it cannot receive"
				    " replies or bounces; publish a real MX", r->dr_domain);
		else
			domain_line(r, "pass", "mx", "%s receives mail at %s (preference %u)%s",
				    r->dr_domain, res.ds_rr[0].dr_text, res.ds_rr[0].dr_pref,
				    res.ds_n > 1 ? " and others" : "");
	} else if (st == DNS_SYNC_NODATA) {
		if (dns_sync_lookup(r->dr_dns, r->dr_domain, DNS_SYNC_A, &a) == DNS_SYNC_OK ||
		    (dns_sync_result_free(&a),
		     dns_sync_lookup(r->dr_dns, r->dr_domain, DNS_SYNC_AAAA, &a)) == DNS_SYNC_OK)
			domain_line(r, "pass", "mx", "%s has no MX; its address record serves as"
				    " the implicit MX (RFC 5321 5.1)", r->dr_domain);
		else
			domain_line(r, "fail", "mx", "%s has neither MX nor address records, so it"
				    " cannot receive replies or bounces; publish an MX", r->dr_domain);
		dns_sync_result_free(&a);
	} else if (st == DNS_SYNC_NXDOMAIN) {
		domain_line(r, "fail", "mx", "%s does not exist in DNS", r->dr_domain);
	} else {
		domain_line(r, "fail", "mx", "%s: MX lookup failed (%s); check dns_servers and"
			    " retry", r->dr_domain, res.ds_error);
	}
	dns_sync_result_free(&res);
}

/* ---- PTR and FCrDNS ---- */

static void domain_check_ptr(struct domain_run *r)
{
	for (unsigned i = 0; i < r->dr_nsrc; i++) {
		const struct sockaddr_storage *ss = &r->dr_src[i];
		int fam = ss->ss_family;
		char ip[INET6_ADDRSTRLEN], rev[80];
		struct dns_sync_result ptr;
		const char *back = NULL;

		domain_ip(ss, ip, sizeof(ip));
		dns_sync_reverse_name(fam, domain_ip_bytes(ss), rev, sizeof(rev));
		dns_sync_lookup(r->dr_dns, rev, DNS_SYNC_PTR, &ptr);
		if (ptr.ds_status == DNS_SYNC_TEMP || ptr.ds_status == DNS_SYNC_ERROR) {
			domain_line(r, "fail", "ptr", "%s: PTR lookup failed (%s); check dns_servers"
				    " and retry", ip, ptr.ds_error);
			dns_sync_result_free(&ptr);
			continue;
		}
		if (ptr.ds_n == 0) {
			domain_line(r, "fail", "ptr", "%s: no PTR record; ask whoever runs %s (your"
				    " provider) for a PTR naming a host whose %s record is %s", ip, rev,
				    fam == AF_INET ? "A" : "AAAA", ip);
			dns_sync_result_free(&ptr);
			continue;
		}
		for (unsigned j = 0; j < ptr.ds_n && back == NULL; j++) {
			struct dns_sync_result fwd;

			dns_sync_lookup(r->dr_dns, ptr.ds_rr[j].dr_text,
					fam == AF_INET ? DNS_SYNC_A : DNS_SYNC_AAAA, &fwd);
			for (unsigned k = 0; k < fwd.ds_n; k++)
				if (memcmp(fwd.ds_rr[k].dr_addr, domain_ip_bytes(ss),
					   fam == AF_INET ? 4 : 16) == 0)
					back = ptr.ds_rr[j].dr_text;
			dns_sync_result_free(&fwd);
		}
		if (back != NULL)
			domain_line(r, "pass", "ptr", "%s -> %s -> %s (forward-confirmed)", ip, back,
				    ip);
		else
			domain_line(r, "fail", "ptr", "%s -> %s, but %s does not resolve back to %s"
				    " (FCrDNS fails); add %s %s %s, or change the PTR", ip,
				    ptr.ds_rr[0].dr_text, ptr.ds_rr[0].dr_text, ip,
				    ptr.ds_rr[0].dr_text, fam == AF_INET ? "A" : "AAAA", ip);
		dns_sync_result_free(&ptr);
	}
}

/* The sources: --source, else smtp_bind_address(6), else the kernel's. */
static int domain_sources(struct domain_run *r)
{
	static const int families[] = { AF_INET, AF_INET6 };
	const struct config *cfg = r->dr_cfg;

	if (r->dr_nsrc > 0)
		return 0;
	if (cfg->smtp_bind_address[0] != '\0' &&
	    domain_parse_ip(cfg->smtp_bind_address, &r->dr_src[r->dr_nsrc]) == 0)
		r->dr_nsrc++;
	if (cfg->smtp_bind_address6[0] != '\0' &&
	    domain_parse_ip(cfg->smtp_bind_address6, &r->dr_src[r->dr_nsrc]) == 0)
		r->dr_nsrc++;
	if (r->dr_nsrc > 0)
		return 0;
	for (unsigned i = 0; i < 2; i++)
		if (domain_route_source(families[i], &r->dr_src[r->dr_nsrc]) == 0)
			r->dr_nsrc++;
	return r->dr_nsrc > 0 ? 0 : -1;
}

static int domain_check(const struct config *cfg, const char *domain,
			const struct sockaddr_storage *src, unsigned nsrc)
{
	struct domain_run r;
	char err[512];
	size_t len;
	int rc = 1;

	memset(&r, 0, sizeof(r));
	r.dr_cfg = cfg;
	len = strlen(domain);
	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (len == 0 || len >= sizeof(r.dr_domain) ||
	    strspn(domain, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._")
	    < len) {
		fprintf(stderr, "ringmta: domain check: '%s' is not a domain name\n", domain);
		return 2;
	}
	for (size_t i = 0; i < len; i++)
		r.dr_domain[i] = (char)tolower((unsigned char)domain[i]);
	memcpy(r.dr_src, src, nsrc * sizeof(*src));
	r.dr_nsrc = nsrc;
	dmarc_org_init();
	spf_lib_init();
	if (dns_sync_new(&r.dr_dns, cfg->dns_servers, DOMAIN_DNS_TIMEOUT_MS, err,
			 sizeof(err)) < 0 ||
	    spf_new(&r.dr_spf, cfg->dns_servers, cfg->hostname, DOMAIN_DNS_TIMEOUT_MS, err,
		    sizeof(err)) < 0) {
		fprintf(stderr, "ringmta: domain check: %s\n", err);
		dns_sync_free(&r.dr_dns);
		return 2;
	}
	if (domain_sources(&r) < 0) {
		domain_line(&r, "fail", "source", "no source address: the host has no route to"
			    " the internet; give --source IP");
	}
	domain_check_dkim(&r);
	domain_check_spf(&r);
	domain_check_dmarc(&r);
	domain_check_mx(&r);
	domain_check_ptr(&r);
	domain_check_align(&r);
	printf("%s: %u check%s failed\n", r.dr_domain, r.dr_failed, r.dr_failed == 1 ? "" : "s");
	if (r.dr_failed == 0)
		rc = 0;
	spf_free(&r.dr_spf);
	dns_sync_free(&r.dr_dns);
	return rc;
}

int main_domain(struct config *cfg, int argc, char **argv)
{
	struct sockaddr_storage src[DOMAIN_MAX_SOURCES];
	const char *domain = NULL;
	unsigned nsrc = 0;
	int rc;

	if (argc < 1 || strcmp(argv[0], "check") != 0) {
		domain_usage(stderr);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--source") == 0 && i + 1 < argc) {
			if (nsrc == DOMAIN_MAX_SOURCES) {
				fprintf(stderr, "ringmta: domain check: at most %d --source\n",
					DOMAIN_MAX_SOURCES);
				return 2;
			}
			if (domain_parse_ip(argv[++i], &src[nsrc]) < 0) {
				fprintf(stderr, "ringmta: domain check: --source %s: not a numeric IP"
					" address\n", argv[i]);
				return 2;
			}
			nsrc++;
		} else if ((rc = main_verb_config_arg(cfg, argc, argv, &i)) != 0) {
			if (rc < 0)
				return 2;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			domain_usage(stdout);
			return 0;
		} else if (argv[i][0] == '-' || domain != NULL) {
			fprintf(stderr, "ringmta: domain check: unexpected argument '%s'\n", argv[i]);
			domain_usage(stderr);
			return 2;
		} else {
			domain = argv[i];
		}
	}
	if (domain == NULL) {
		domain_usage(stderr);
		return 2;
	}
	return domain_check(cfg, domain, src, nsrc);
}
