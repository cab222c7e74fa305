/*
 * main_reload.c: a reload of what can change under a running daemon
 * (TLS certificates, bounce class rules, DKIM keys, the outbound AUTH
 * credentials, shaping rules), for
 * SIGHUP and for the admin API's POST /api/v1/reload. Each part is
 * swapped in only when it loaded in full; one that fails keeps what it
 * had. What happened is logged, as SIGHUP always did, and reported part
 * by part to the caller. One reload at a time: the signal and the API
 * may ask together.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/app/main.h"
#include "core/app/server.h"
#include "core/base/log.h"
#include "core/dkim/dkim_table.h"
#include "core/outbound/smtp_creds.h"
#include "tls/tls.h"

static pthread_mutex_t main_reload_lock = PTHREAD_MUTEX_INITIALIZER;

static struct main_reload_part *main_reload_part(struct main_reload *r, const char *name)
{
	struct main_reload_part *p = &r->mr_part[r->mr_n++];

	p->rp_name = name;
	p->rp_ok = true;
	p->rp_detail[0] = '\0';
	return p;
}

/* Each line of text logged as an error between prefix and suffix. */
static void main_reload_log_lines(const char *prefix, const char *text, const char *suffix)
{
	const char *l = text, *nl;

	for (; *l != '\0'; l = *nl ? nl + 1 : nl) {
		nl = strchr(l, '\n');
		if (nl == NULL)
			nl = l + strlen(l);
		if (nl > l)
			log_msg(LOG_ERROR, "%s%.*s%s", prefix, (int)(nl - l), l, suffix);
	}
}

void main_reload(struct server *srv, const struct config *cfg, struct main_reload *r)
{
	struct main_reload_part *p;
	struct tls_ctx *ts = NULL, *tc = NULL;

	memset(r, 0, sizeof(*r));
	pthread_mutex_lock(&main_reload_lock);
	/* Certificates; sessions in flight keep the old ones. */
	p = main_reload_part(r, "tls");
	if (main_tls_load(cfg, &ts, &tc, p->rp_detail, sizeof(p->rp_detail)) < 0) {
		p->rp_ok = false;
		log_msg(LOG_ERROR, "reload: %s (keeping the old certificates)", p->rp_detail);
	} else {
		server_tls_swap(srv, ts, tc);
		snprintf(p->rp_detail, sizeof(p->rp_detail), "TLS certificates reloaded");
		log_msg(LOG_INFO, "reload: TLS certificates reloaded");
	}
	p = main_reload_part(r, "bounce_classes");
	if (main_bclass_load(cfg, true, p->rp_detail, sizeof(p->rp_detail)) < 0) {
		p->rp_ok = false;
		main_reload_log_lines("reload: ", p->rp_detail, " (keeping the old bounce class rules)");
	} else {
		snprintf(p->rp_detail, sizeof(p->rp_detail), "bounce class rules reloaded");
		log_msg(LOG_INFO, "reload: bounce class rules reloaded");
	}
	if (cfg->dkim_key_table[0] != '\0') {
		struct dkim_table *dkt = NULL;

		/* Messages being signed keep the table they started with. */
		p = main_reload_part(r, "dkim");
		if (main_dkim_load(cfg, &dkt, p->rp_detail, sizeof(p->rp_detail)) < 0) {
			p->rp_ok = false;
			log_msg(LOG_ERROR, "reload: %s (keeping the old DKIM key table)",
				p->rp_detail);
		} else {
			snprintf(p->rp_detail, sizeof(p->rp_detail),
				 "DKIM key table reloaded: %u domains", dkim_table_count(dkt));
			log_msg(LOG_INFO, "reload: %s", p->rp_detail);
			server_dkim_swap(srv, dkt);
		}
	}
	if (cfg->smtp_auth_credentials_file[0] != '\0' && srv->s_smtp_creds != NULL) {
		struct smtp_creds *t = NULL;

		/* Sessions already open keep the table they started with. */
		p = main_reload_part(r, "smtp_auth_credentials");
		if (main_smtp_creds_load(cfg, &t, p->rp_detail, sizeof(p->rp_detail)) < 0) {
			p->rp_ok = false;
			log_msg(LOG_ERROR, "reload: %s (keeping the old credentials)", p->rp_detail);
		} else {
			snprintf(p->rp_detail, sizeof(p->rp_detail),
				 "outbound AUTH credentials reloaded: %u next hops",
				 smtp_creds_count(t));
			log_msg(LOG_INFO, "reload: %s", p->rp_detail);
			smtp_creds_holder_swap(srv->s_smtp_creds, t);
		}
	}
	p = main_reload_part(r, "shaping_rules");
	p->rp_ok = server_rules_reload(srv, p->rp_detail, sizeof(p->rp_detail)) == 0;
	pthread_mutex_unlock(&main_reload_lock);
	r->mr_ok = true;
	for (unsigned i = 0; i < r->mr_n; i++)
		r->mr_ok = r->mr_ok && r->mr_part[i].rp_ok;
}

bool main_reload_json(void *arg, json_t *parts)
{
	const struct main_reload_arg *ra = arg;
	struct main_reload r;

	main_reload(ra->ra_srv, ra->ra_cfg, &r);
	for (unsigned i = 0; i < r.mr_n; i++)
		json_array_append_new(parts, json_pack("{s:s, s:b, s:s}", "name",
						       r.mr_part[i].rp_name, "ok",
						       r.mr_part[i].rp_ok, "detail",
						       r.mr_part[i].rp_detail));
	return r.mr_ok;
}
