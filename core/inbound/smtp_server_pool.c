/*
 * smtp_server_pool.c: the source pool of an accepted message (traffic
 * shaping, core/shaping/shp_rules.h). When the rules name a pool header
 * (pool_header:, e.g. X-Ringmta-Pool) and the message carries it, its
 * value names the pool; otherwise the rules' pool_selection picks one by
 * authenticated user, listener ("addr:port") and sender domain. The
 * pool's name goes into the queue record, and the header field's octets
 * become the record's strip range, so the outbound client never sends
 * them (the body decoder finds the field, core/wire/smtp_data.c).
 *
 * A pool header naming no pool of the rules is refused at the end of
 * DATA (550 5.7.1 unknown pool "x"): the injector asked for particular
 * source addresses, and sending from others (another pool's reputation)
 * would be a silent surprise; a typo is the injector's to fix.
 *
 * The transaction holds a reference to the rules it started with, from
 * the DATA or first BDAT to the end of the transaction: the header's
 * name (looked for by the decoder) and the pool's name (in the record
 * until the commit) point into them.
 */
#include "core/inbound/smtp_server.h"

#include <stdio.h>
#include <string.h>

#include "core/base/log.h"
#include "core/dkim/dkim_table.h"
#include "core/shaping/shp_holder.h"
#include "core/shaping/shp_rules.h"

/* A pool header value longer than this names no pool. */
#define SMTP_POOL_VALUE_MAX 128u
/* The field as stored, folded lines included, is read up to this. */
#define SMTP_POOL_FIELD_MAX 1024u

void smtp_server_pool_begin(struct smtp_session *s)
{
	struct smtp_txn *t = s->s_txn;
	const char *hdr;

	if (t->t_rules == NULL && s->s_env->e_rules != NULL)
		t->t_rules = shp_holder_get(s->s_env->e_rules);
	hdr = t->t_rules != NULL ? shp_rules_pool_header(t->t_rules) : NULL;
	if (hdr != NULL)
		smtp_data_want_field(&s->s_data, hdr);
}

/* Copy message octets [off, off + len) (the body slices t_iov[1..], not
 * the trace header) into out; returns how many were there. */
static size_t smtp_pool_copy(const struct smtp_txn *t, uint64_t off, size_t len, char *out)
{
	uint64_t at = 0;
	size_t got = 0;

	for (unsigned i = 1; i < t->t_niov && got < len; i++) {
		const char *b = t->t_iov[i].iov_base;
		uint64_t n = t->t_iov[i].iov_len;

		if (off + got < at + n) {
			uint64_t from = off + got - at;
			size_t k = (size_t)(n - from) < len - got ? (size_t)(n - from) : len - got;

			memcpy(out + got, b + from, k);
			got += k;
		}
		at += n;
	}
	return got;
}

/* v for a reply: printable ASCII without quotes or backslashes. */
static void smtp_pool_show(const char *v, char *out, size_t outlen)
{
	size_t n = 0;

	for (; *v != '\0' && n + 1 < outlen; v++)
		out[n++] = (*v > ' ' && *v < 0x7f && *v != '"' && *v != '\\') ? *v : '?';
	out[n] = '\0';
}

int smtp_server_pool_choose(struct smtp_session *s)
{
	struct smtp_txn *t = s->s_txn;
	const struct config *cfg = smtp_server_cfg(s);
	const struct shp_pool *p;
	const char *at;
	char listener[80];
	uint64_t off;
	uint32_t len;

	t->t_pool = NULL;
	t->t_strip_len = 0;
	if (t->t_rules == NULL)
		return 0;
	if (smtp_data_field(&s->s_data, &off, &len)) {
		char field[SMTP_POOL_FIELD_MAX], value[SMTP_POOL_VALUE_MAX], shown[68];
		size_t n = len < sizeof(field) ? len : sizeof(field);
		int vl;

		n = smtp_pool_copy(t, off, n, field);
		vl = len <= sizeof(field) ? smtp_data_field_value(field, n, value, sizeof(value)) : -1;
		p = vl > 0 ? shp_rules_pool(t->t_rules, value) : NULL;
		if (p == NULL) {
			if (vl < 0)
				snprintf(shown, sizeof(shown), "(too long)");
			else
				smtp_pool_show(value, shown, sizeof(shown));
			stat_inc(&s->s_env->e_stats.es_rejected);
			log_msg(LOG_INFO, "reject client=%s from=<%s> reason=\"unknown pool %s\"",
				s->s_addr, t->t_sender, shown);
			smtp_server_txn_end(s);
			smtp_server_reply(s, "550 5.7.1 unknown pool \"%s\"", shown);
			return -1;
		}
		t->t_pool = p->sp_name;
		t->t_strip_off = off;
		t->t_strip_len = len;
		return 0;
	}
	dkim_table_listener_name((const struct sockaddr *)&cfg->listen[s->s_listener].cl_addr,
				 listener, sizeof(listener));
	at = strrchr(t->t_sender, '@');
	p = shp_rules_pool_select(t->t_rules, s->s_auth_user, listener, at ? at + 1 : "");
	t->t_pool = p->sp_name;
	return 0;
}

void smtp_server_pool_place(struct smtp_txn *t)
{
	struct queue_msg *m = &t->t_msg;

	/* "" in the record is the default pool: no bytes for the common case. */
	if (t->t_pool != NULL && strcmp(t->t_pool, "default") != 0) {
		m->qm_rec.pool = t->t_pool;
		m->qm_rec.pool_len = (uint16_t)strnlen(t->t_pool, UINT16_MAX);
	}
	if (t->t_strip_len != 0) {
		/* Stored octets: the trace header (and signatures) come first. */
		m->qm_rec.strip_off = t->t_iov[0].iov_len + t->t_strip_off;
		m->qm_rec.strip_len = t->t_strip_len;
	}
}
