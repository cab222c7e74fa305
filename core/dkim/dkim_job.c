/*
 * dkim_job.c: one message's signature, on a work-pool thread. See
 * dkim_job.h. Owns the job's copies and its result.
 */
#include "core/dkim/dkim_job.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/dkim/dkim.h"
#include "core/dkim/dkim_table.h"
#include "core/dmarc/dmarc_org.h"
#include "queue/queue.h"

/* Header fields that must occur at most once (RFC 5322 3.6, RFC 2369,
 * RFC 8058 ...): each that is signed is signed once more, so that nobody
 * can add a second one after signing. */
static const char *const dkim_job_unique[] = {
	"from", "to", "cc", "subject", "date", "message-id", "reply-to", "in-reply-to",
	"references", "mime-version", "content-type", "content-transfer-encoding",
	"list-id", "list-unsubscribe", "list-unsubscribe-post", "feedback-id", NULL,
};

/* names in h=: the configured ones and the RFC 8058 two */
#define DKIM_JOB_HDR_MAX (DKIM_TABLE_HEADERS_MAX + 2)

static char *dkim_job_copy(char **pos, const char *s)
{
	char *r;

	if (s == NULL)
		return NULL;
	r = *pos;
	strcpy(r, s);
	*pos += strlen(s) + 1;
	return r;
}

void dkim_job_params_config(struct dkim_job_params *p, const struct config *cfg)
{
	p->default_domain = cfg->dkim_default_domain;
	p->no_key_action = (enum config_dkim_no_key)config_dkim_no_key_parse(cfg->dkim_no_key_action);
	p->unaligned_action = (enum config_dmarc_unaligned)config_dmarc_unaligned_parse(
		cfg->dmarc_unaligned_action);
	p->now = (uint64_t)time(NULL);
}

struct dkim_job *dkim_job_new(const struct dkim_job_params *p, const struct iovec *iov,
			      unsigned iovcnt, void *owner, void (*done)(struct work_job *j))
{
	const char *strs[] = { p->sender, p->user, p->listener, p->rcpt, p->default_domain,
			       p->skip_header };
	struct dkim_job *j = calloc(1, sizeof(*j));
	size_t len = 0;
	char *pos;

	if (j == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		len += strs[i] ? strlen(strs[i]) + 1 : 0;
	j->dj_strings = malloc(len + 1);
	if (j->dj_strings == NULL) {
		free(j);
		return NULL;
	}
	pos = j->dj_strings;
	j->dj_p = *p;
	j->dj_p.sender = dkim_job_copy(&pos, p->sender ? p->sender : "");
	j->dj_p.user = dkim_job_copy(&pos, p->user);
	j->dj_p.listener = dkim_job_copy(&pos, p->listener);
	j->dj_p.rcpt = dkim_job_copy(&pos, p->rcpt);
	j->dj_p.default_domain = dkim_job_copy(&pos, p->default_domain);
	j->dj_p.skip_header = dkim_job_copy(&pos, p->skip_header);
	j->dj_p.table = dkim_table_ref(p->table);
	j->dj_iov = iov;
	j->dj_iovcnt = iovcnt;
	j->dj_work.wj_run = dkim_job_run;
	j->dj_work.wj_done = done;
	j->dj_work.wj_owner = owner;
	j->dj_status = DKIM_JOB_REFUSED;
	j->dj_reason = "error";
	snprintf(j->dj_reply, sizeof(j->dj_reply), "451 4.3.0 Error: signing did not run");
	return j;
}

void dkim_job_free(struct dkim_job **jp)
{
	struct dkim_job *j = *jp;

	if (j == NULL)
		return;
	dkim_table_unref(&j->dj_p.table);
	free(j->dj_prefix);
	free(j->dj_strings);
	free(j);
	*jp = NULL;
}

static bool dkim_job_unreserved(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

int dkim_job_unsub_url(const char *tmpl, const char *rcpt, const char *queue_id, char *buf,
		       size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (const char *p = tmpl; *p != '\0';) {
		const char *val = NULL;

		if (strncmp(p, "{rcpt}", 6) == 0) {
			val = rcpt ? rcpt : "";
			p += 6;
		} else if (strncmp(p, "{queue_id}", 10) == 0) {
			val = queue_id;
			p += 10;
		}
		if (val == NULL) {
			if (n + 1 >= cap)
				return -1;
			buf[n++] = *p++;
			continue;
		}
		for (; *val != '\0'; val++) {
			unsigned char c = (unsigned char)*val;

			if (n + 4 >= cap)
				return -1;
			if (dkim_job_unreserved(c)) {
				buf[n++] = (char)c;
			} else {
				buf[n++] = '%';
				buf[n++] = hex[c >> 4];
				buf[n++] = hex[c & 15];
			}
		}
	}
	if (n >= cap)
		return -1;
	buf[n] = '\0';
	return (int)n;
}

/* 1 for a List-Unsubscribe field name, 2 for List-Unsubscribe-Post,
 * 0 for any other (name may end in blanks before the colon). */
static unsigned dkim_job_unsub_bit(const char *name, size_t n)
{
	while (n > 0 && (name[n - 1] == ' ' || name[n - 1] == '\t'))
		n--;
	if (n == 16 && strncasecmp(name, "list-unsubscribe", 16) == 0)
		return 1;
	if (n == 21 && strncasecmp(name, "list-unsubscribe-post", 21) == 0)
		return 2;
	return 0;
}

/* Whether the message's last two octets are CRLF. */
static bool dkim_job_ends_crlf(const struct iovec *iov, unsigned iovcnt)
{
	char last[2] = { 0, 0 };
	unsigned have = 0;

	for (unsigned i = iovcnt; i-- > 0 && have < 2;) {
		const char *p = iov[i].iov_base;

		for (size_t k = iov[i].iov_len; k-- > 0 && have < 2;)
			last[1 - have++] = p[k];
	}
	return have == 2 && last[0] == '\r' && last[1] == '\n';
}

/* Which of list-unsubscribe / -post the header section holds (bit 0, 1). */
static unsigned dkim_job_has_unsub(const struct iovec *iov, unsigned iovcnt)
{
	char name[32];
	size_t nlen = 0;
	bool bol = true, in_name = false, cr = false;
	unsigned found = 0;

	for (unsigned i = 0; i < iovcnt; i++) {
		const char *p = iov[i].iov_base;

		for (size_t k = 0; k < iov[i].iov_len; k++) {
			char c = p[k];

			if (bol) {
				if (c == '\r') {
					cr = true;
					continue;
				}
				if (c == '\n' || cr)
					return found;	/* the empty line: end of header */
				bol = false;
				in_name = c != ' ' && c != '\t';
				nlen = 0;
			}
			if (c == '\n') {
				bol = true;
				cr = false;
				in_name = false;
				continue;
			}
			if (in_name) {
				if (c == ':') {
					found |= dkim_job_unsub_bit(name, nlen);
					in_name = false;
				} else if (nlen < sizeof(name)) {
					name[nlen++] = c;
				} else {
					in_name = false;
				}
			}
		}
	}
	return found;
}

/* The longest URL whose line, "List-Unsubscribe: <URL>,", keeps within
 * RFC 5322's 998 octets: a longer line may be refused, or broken by a
 * relay, and the signature over it with it. */
#define DKIM_JOB_URL_MAX (998 - sizeof("List-Unsubscribe: <>,") + 1)

/* The List-Unsubscribe fields for this message, or "" (note says why). */
static void dkim_job_unsub_fields(struct dkim_job *j, const struct dkim_domain *dd,
				  char *out, size_t cap)
{
	char url[1024], ids[17];
	bool url_ok = false;
	size_t n = 0;

	out[0] = '\0';
	if (dd->dd_unsub_url == NULL && dd->dd_unsub_mailto == NULL)
		return;
	if (dkim_job_has_unsub(j->dj_iov, j->dj_iovcnt) != 0)
		return;		/* the sender's own fields stay as they are */
	queue_id_str(j->dj_p.queue_id, ids);
	if (dd->dd_unsub_url != NULL) {
		if (strstr(dd->dd_unsub_url, "{rcpt}") != NULL && j->dj_p.nrcpt != 1)
			snprintf(j->dj_note, sizeof(j->dj_note), "unsubscribe_url names {rcpt}"
				 " and the message has %u recipients: %s", j->dj_p.nrcpt,
				 dd->dd_unsub_mailto ? "mailto only" : "no List-Unsubscribe");
		else if (dkim_job_unsub_url(dd->dd_unsub_url, j->dj_p.rcpt, ids, url,
					    DKIM_JOB_URL_MAX + 1) < 0)
			snprintf(j->dj_note, sizeof(j->dj_note), "unsubscribe URL too long: %s",
				 dd->dd_unsub_mailto ? "mailto only" : "no List-Unsubscribe");
		else
			url_ok = true;
	}
	if (!url_ok && dd->dd_unsub_mailto == NULL)
		return;
	n = (size_t)snprintf(out, cap, "List-Unsubscribe: ");
	if (url_ok)
		n += (size_t)snprintf(out + n, cap - n, "<%s>%s", url,
				      dd->dd_unsub_mailto ? ",\r\n " : "");
	if (dd->dd_unsub_mailto != NULL)
		n += (size_t)snprintf(out + n, cap - n, "<mailto:%s?subject=unsubscribe>",
				      dd->dd_unsub_mailto);
	n += (size_t)snprintf(out + n, cap - n, "\r\n");
	/* One-click (RFC 8058) needs the https URI. */
	if (url_ok)
		snprintf(out + n, cap - n, "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n");
}

static void dkim_job_refuse(struct dkim_job *j, const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void dkim_job_refuse(struct dkim_job *j, const char *reason, const char *fmt, ...)
{
	va_list ap;

	j->dj_status = DKIM_JOB_REFUSED;
	j->dj_reason = reason;
	va_start(ap, fmt);
	vsnprintf(j->dj_reply, sizeof(j->dj_reply), fmt, ap);
	va_end(ap);
}

/* The header list for dd: its own (or the default) plus the RFC 8058
 * fields, which a signature must cover, less skip (the pool header: it
 * is removed before sending, and a signature over it would break); and
 * the ones to oversign. */
static void dkim_job_headers(const struct dkim_domain *dd, const char *skip, const char **h,
			     const char **over)
{
	const char *const *base = dd->dd_headers ? dd->dd_headers : dkim_default_headers;
	static const char *const extra[] = { "list-unsubscribe", "list-unsubscribe-post", NULL };
	unsigned n = 0, no = 0;

	for (unsigned i = 0; base[i] != NULL && n < DKIM_JOB_HDR_MAX - 2; i++)
		if (skip == NULL || strcasecmp(base[i], skip) != 0)
			h[n++] = base[i];
	for (unsigned e = 0; extra[e] != NULL; e++) {
		bool have = false;

		for (unsigned i = 0; i < n; i++)
			if (strcasecmp(h[i], extra[e]) == 0)
				have = true;
		if (!have)
			h[n++] = extra[e];
	}
	h[n] = NULL;
	for (unsigned i = 0; i < n; i++)
		for (unsigned u = 0; dkim_job_unique[u] != NULL; u++)
			if (strcasecmp(h[i], dkim_job_unique[u]) == 0)
				over[no++] = h[i];
	over[no] = NULL;
}

void dkim_job_run(struct work_job *w)
{
	struct dkim_job *j = (struct dkim_job *)w;
	const struct dkim_job_params *p = &j->dj_p;
	const struct dkim_domain *dd;
	const char *sdom = strrchr(p->sender, '@');
	int from_n = dkim_from_domain(j->dj_iov, j->dj_iovcnt, j->dj_from, sizeof(j->dj_from));
	char added[2600], err[256];
	const char *h[DKIM_JOB_HDR_MAX + 1], *over[DKIM_JOB_HDR_MAX + 1];
	struct dkim_sign_spec specs[DKIM_TABLE_KEYS_MAX];
	struct iovec *iov;
	unsigned niov;
	unsigned nspecs;
	char *sigs = NULL;
	size_t siglen = 0, addlen;

	if (from_n != 1)
		j->dj_from[0] = '\0';
	sdom = sdom ? sdom + 1 : "";
	dd = dkim_table_match(p->table, p->user, p->listener, from_n == 1 ? j->dj_from : NULL,
			      p->default_domain);
	if (dd == NULL) {
		snprintf(j->dj_sig, sizeof(j->dj_sig), "none(no key)");
		if (p->no_key_action != CONFIG_DKIM_NO_KEY_UNSIGNED) {
			dkim_job_refuse(j, "no_key", "%s Error: no DKIM key for From domain %s",
					p->no_key_action == CONFIG_DKIM_NO_KEY_DEFER ? "451 4.7.0" :
					"550 5.7.0", j->dj_from[0] ? j->dj_from : "(none)");
			return;
		}
	}
	/* DMARC, relaxed: From's organizational domain against d= and against
	 * the envelope sender's (SPF's identity). */
	j->dj_unaligned = from_n != 1 ||
			  !((dd != NULL && dmarc_org_aligned(j->dj_from, dd->dd_name)) ||
			    dmarc_org_aligned(j->dj_from, sdom));
	if (j->dj_unaligned && p->unaligned_action == CONFIG_DMARC_UNALIGNED_REJECT) {
		if (from_n == 1)
			dkim_job_refuse(j, "unaligned", "550 5.7.1 Error: From domain %s is not"
					" aligned with the DKIM domain or the envelope sender"
					" (DMARC)", j->dj_from);
		else
			dkim_job_refuse(j, "unaligned", "550 5.7.1 Error: the message needs exactly"
					" one From address (DMARC)");
		return;
	}
	if (dd == NULL) {
		j->dj_status = DKIM_JOB_UNSIGNED;
		return;
	}
	dkim_job_unsub_fields(j, dd, added, sizeof(added));
	addlen = strlen(added);
	dkim_job_headers(dd, p->skip_header, h, over);
	nspecs = dd->dd_single ? 1 : dd->dd_nsel;
	if (nspecs > sizeof(specs) / sizeof(specs[0]))
		nspecs = sizeof(specs) / sizeof(specs[0]);
	size_t sl = (size_t)snprintf(j->dj_sig, sizeof(j->dj_sig), "%s/", dd->dd_name);

	for (unsigned i = 0; i < nspecs; i++) {
		specs[i] = (struct dkim_sign_spec){
			.key = dd->dd_sel[i].ds_key,
			.domain = dd->dd_name,
			.selector = dd->dd_sel[i].ds_name,
			.hcanon = dd->dd_hcanon,
			.bcanon = dd->dd_bcanon,
			.headers = h,
			.oversign = over,
			.timestamp = p->now,
			.expire = dd->dd_expire ? p->now + dd->dd_expire : 0,
		};
		if (sl < sizeof(j->dj_sig))
			sl += (size_t)snprintf(j->dj_sig + sl, sizeof(j->dj_sig) - sl, "%s%s",
					       i ? "," : "", dd->dd_sel[i].ds_name);
	}
	iov = malloc((j->dj_iovcnt + 2) * sizeof(*iov));
	if (iov == NULL) {
		dkim_job_refuse(j, "error", "451 4.3.0 Error: out of memory while signing");
		return;
	}
	iov[0].iov_base = added;
	iov[0].iov_len = addlen;
	memcpy(iov + 1, j->dj_iov, j->dj_iovcnt * sizeof(*iov));
	niov = j->dj_iovcnt + 1;
	/* Sign what will be sent: the outbound client ends a body that does
	 * not end in CRLF (BDAT allows it) with one before the dot, and a
	 * verifier canonicalizes that line, trailing blanks and all. */
	if (!dkim_job_ends_crlf(j->dj_iov, j->dj_iovcnt)) {
		iov[niov].iov_base = (void *)"\r\n";
		iov[niov].iov_len = 2;
		niov++;
	}
	if (dkim_sign(specs, nspecs, iov, niov, &sigs, &siglen, err, sizeof(err)) < 0) {
		free(iov);
		snprintf(j->dj_note, sizeof(j->dj_note), "dkim_sign: %s", err);
		dkim_job_refuse(j, "error", "451 4.3.0 Error: signing failed, try again later");
		return;
	}
	free(iov);
	j->dj_prefix = malloc(siglen + addlen + 1);
	if (j->dj_prefix == NULL) {
		free(sigs);
		dkim_job_refuse(j, "error", "451 4.3.0 Error: out of memory while signing");
		return;
	}
	memcpy(j->dj_prefix, sigs, siglen);
	memcpy(j->dj_prefix + siglen, added, addlen);
	j->dj_prefix_len = siglen + addlen;
	j->dj_prefix[j->dj_prefix_len] = '\0';
	free(sigs);
	j->dj_status = DKIM_JOB_SIGNED;
}
