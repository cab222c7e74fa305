/*
 * main_reload.c: a reload of a running daemon, for SIGHUP and for the
 * admin API's POST /api/v1/reload (main.h says what it does). The
 * configuration is read again and compared with the running one setting
 * by setting (core/config/config_diff.c); what may change without a
 * restart becomes a new generation of the settings (core/app/server.h),
 * and then each part (TLS certificates, bounce class rules, DKIM keys,
 * the outbound AUTH credentials, shaping rules, event sinks) loads again with the
 * settings in force and is swapped in only when it loaded in full. What happened is logged and reported
 * part by part to the caller. One reload at a time: the signal and the
 * API may ask together.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/admin/admin.h"
#include "core/app/main.h"
#include "core/app/server.h"
#include "core/base/log.h"
#include "core/delivery/delivery.h"
#include "core/dkim/dkim_table.h"
#include "core/events/events.h"
#include "core/outbound/smtp_creds.h"
#include "core/sasl/auth.h"
#include "queue/queue.h"
#include "tls/tls.h"

static pthread_mutex_t main_reload_lock = PTHREAD_MUTEX_INITIALIZER;

/* How long a reload waits for every worker to take the new settings. */
#define MAIN_RELOAD_ADOPT_MS 2000u

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

/* The identity and age of an account file; zeros when it is not set or
 * cannot be read (then loading it says why). */
static void main_auth_sig_of(const char *path, struct main_auth_sig *s)
{
	struct stat st;

	memset(s, 0, sizeof(*s));
	if (path[0] == '\0' || stat(path, &st) != 0)
		return;
	s->as_dev = (unsigned long long)st.st_dev;
	s->as_ino = (unsigned long long)st.st_ino;
	s->as_size = (unsigned long long)st.st_size;
	s->as_mtime_ns = (unsigned long long)st.st_mtim.tv_sec * 1000000000ull +
			 (unsigned long long)st.st_mtim.tv_nsec;
	s->as_ctime_ns = (unsigned long long)st.st_ctim.tv_sec * 1000000000ull +
			 (unsigned long long)st.st_ctim.tv_nsec;
}

static void main_auth_sigs(const struct config *cfg, struct main_auth_sig sig[2])
{
	main_auth_sig_of(cfg->auth_passwd_file, &sig[0]);
	main_auth_sig_of(cfg->auth_jwt_keys_file, &sig[1]);
}

void main_reload_init(struct main_reload_arg *ra, const struct config *cfg)
{
	main_auth_sigs(cfg, ra->ra_auth_sig);
}

/* The configuration as main() reads it: defaults, the file, each -o,
 * validated. A new struct config the caller frees, or NULL with err. */
static struct config *main_reload_read(const struct main_reload_arg *ra, char *err,
				       size_t errlen)
{
	struct config *nc = malloc(sizeof(*nc));

	if (nc == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	config_defaults(nc);
	if (ra->ra_file != NULL && config_load_file(nc, ra->ra_file, err, errlen) < 0)
		goto fail;
	for (unsigned i = 0; i < ra->ra_noverrides; i++)
		if (config_set_override(nc, ra->ra_overrides[i], err, errlen) < 0)
			goto fail;
	if (config_validate(nc, err, errlen) < 0)
		goto fail;
	return nc;
fail:
	config_free(nc);
	free(nc);
	return NULL;
}

/* Whether any setting that a reload changes differs. */
static bool main_reload_changes(const struct main_reload *r)
{
	for (int i = 0; i < r->mr_nchanges; i++)
		if (!r->mr_changes[i].cc_restart)
			return true;
	return false;
}

static bool main_reload_auth_same(const struct config *a, const struct config *b)
{
	return strcmp(a->auth_passwd_file, b->auth_passwd_file) == 0 &&
	       strcmp(a->auth_jwt_keys_file, b->auth_jwt_keys_file) == 0 &&
	       strcmp(a->auth_jwt_issuer, b->auth_jwt_issuer) == 0 &&
	       strcmp(a->auth_jwt_audience, b->auth_jwt_audience) == 0 &&
	       strcmp(a->hostname, b->hostname) == 0;
}

/* One line per changed setting, then the count, into p's detail too. */
static void main_reload_log_changes(const struct main_reload *r, struct main_reload_part *p)
{
	unsigned nrestart = 0;

	for (int i = 0; i < r->mr_nchanges; i++) {
		const struct config_change *c = &r->mr_changes[i];

		if (c->cc_restart) {
			nrestart++;
			log_msg(LOG_WARNING, "reload: %s changed: needs a restart (keeping %s)",
				c->cc_key, c->cc_old);
		} else {
			log_msg(LOG_INFO, "reload: %s: %s -> %s", c->cc_key, c->cc_old, c->cc_new);
		}
	}
	snprintf(p->rp_detail, sizeof(p->rp_detail), "%d settings changed, %u of them need a"
		 " restart", r->mr_nchanges, nrestart);
	log_msg(LOG_INFO, "reload: %s", p->rp_detail);
}

/*
 * The "config" and "auth" parts: read, compare, publish. Returns the
 * settings in force afterwards (the new ones, or the running ones when
 * nothing a reload changes differs), or NULL when the reload must change
 * nothing (the "config" part says why).
 */
static const struct config *main_reload_settings(struct main_reload_arg *ra,
						 struct main_reload *r)
{
	struct server *srv = ra->ra_srv;
	const struct config *cur = server_config(srv);
	struct main_reload_part *p = main_reload_part(r, "config"), *pa = NULL;
	struct main_auth_sig sig[2];
	struct auth_db *adb = NULL;
	struct config *nc;
	bool new_auth = false;
	unsigned seq;

	nc = main_reload_read(ra, p->rp_detail, sizeof(p->rp_detail));
	if (nc == NULL)
		goto refused;
	r->mr_nchanges = config_diff(cur, nc, &r->mr_changes);
	if (r->mr_nchanges < 0 ||
	    config_keep_restart(nc, cur, p->rp_detail, sizeof(p->rp_detail)) < 0) {
		r->mr_nchanges = 0;
		snprintf(p->rp_detail, sizeof(p->rp_detail), "out of memory");
		goto refused_nc;
	}
	/* Again: a kept value may not suit a new one (max_message_size
	 * against the running queue_map_size). */
	if (config_validate(nc, p->rp_detail, sizeof(p->rp_detail)) < 0)
		goto refused_nc;
	if (srv->s_events == NULL && (nc->event_log[0] != '\0' || nc->webhook_url[0] != '\0')) {
		/* Workers render records only when events ran at start. */
		snprintf(p->rp_detail, sizeof(p->rp_detail), "%s: delivery events were off at"
			 " start; turning them on needs a restart",
			 nc->event_log[0] != '\0' ? "event_log" : "webhook_url");
		goto refused_nc;
	}
	if (nc->dkim_key_table[0] != '\0' && cur->dkim_key_table[0] == '\0' &&
	    srv->s_sign_pool == NULL) {
		snprintf(p->rp_detail, sizeof(p->rp_detail), "dkim_key_table: DKIM signing was off"
			 " at start; turning it on needs a restart");
		goto refused_nc;
	}
	/* The accounts: loaded again when their settings or files changed. */
	main_auth_sigs(nc, sig);
	if (nc->auth_passwd_file[0] != '\0' || nc->auth_jwt_keys_file[0] != '\0' ||
	    server_auth(srv) != NULL) {
		pa = main_reload_part(r, "auth");
		if (!main_reload_auth_same(cur, nc) ||
		    memcmp(sig, ra->ra_auth_sig, sizeof(sig)) != 0) {
			if (main_auth_load(nc, &adb, pa->rp_detail, sizeof(pa->rp_detail)) < 0) {
				pa->rp_ok = false;
				memcpy(p->rp_detail, pa->rp_detail, sizeof(p->rp_detail));
				goto refused_nc;
			}
			new_auth = true;
			snprintf(pa->rp_detail, sizeof(pa->rp_detail), "%s", adb != NULL ?
				 "accounts reloaded" : "AUTH turned off");
		} else {
			snprintf(pa->rp_detail, sizeof(pa->rp_detail), "accounts unchanged");
		}
	}
	if (!main_reload_changes(r) && !new_auth) {
		config_free(nc);
		free(nc);
		main_reload_log_changes(r, p);
		return cur;
	}
	if (server_gen_publish(srv, nc, adb, !new_auth, &seq, p->rp_detail,
			       sizeof(p->rp_detail)) < 0) {
		auth_db_free(&adb);
		goto refused_nc;
	}
	memcpy(ra->ra_auth_sig, sig, sizeof(sig));
	main_reload_log_changes(r, p);	/* at the old level: "info -> error" shows */
	/* enum config_log_level has log.h's values (config.h) */
	log_set_level((enum log_level)nc->log_level);
	if (ra->ra_dlv != NULL)
		delivery_set_config(ra->ra_dlv, nc);
	queue_set_commit_delay(srv->s_queue, (uint64_t)nc->queue_commit_delay * 1000u);
	if (!server_gen_wait(srv, seq, MAIN_RELOAD_ADOPT_MS))
		log_msg(LOG_WARNING, "reload: a worker has not taken the new settings yet (it will"
			" at its next tick)");
	return nc;

refused_nc:
	config_free(nc);
	free(nc);
	config_changes_free(&r->mr_changes, r->mr_nchanges);
	r->mr_nchanges = 0;
refused:
	p->rp_ok = false;
	main_reload_log_lines("reload: ", p->rp_detail, " (keeping the running settings)");
	return NULL;
}

/* The admin API's tokens: the file read again; requests in flight keep
 * the tokens they were checked against. */
static void main_reload_admin_tokens(struct admin *a, const struct config *cfg,
				     struct main_reload_part *p)
{
	unsigned n = 0;
	bool changed;

	if (admin_reload_tokens(a, cfg->admin_token_file, &changed, &n, p->rp_detail,
				sizeof(p->rp_detail)) < 0) {
		p->rp_ok = false;
		log_msg(LOG_ERROR, "reload: %s (keeping the old admin tokens)", p->rp_detail);
		return;
	}
	snprintf(p->rp_detail, sizeof(p->rp_detail), "%s: %u tokens%s",
		 changed ? "admin tokens reloaded" : "admin tokens unchanged", n,
		 n == 0 ? " (loopback, no token needed)" : "");
	if (changed)
		log_msg(LOG_INFO, "reload: %s", p->rp_detail);
}

void main_reload(struct main_reload_arg *ra, struct main_reload *r)
{
	struct server *srv = ra->ra_srv;
	struct main_reload_part *p;
	struct tls_ctx *ts = NULL, *tc = NULL;
	const struct config *cfg, *old;

	memset(r, 0, sizeof(*r));
	pthread_mutex_lock(&main_reload_lock);
	old = server_config(srv);
	cfg = main_reload_settings(ra, r);
	if (cfg == NULL)
		goto done;
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
	} else if (old->dkim_key_table[0] != '\0') {
		p = main_reload_part(r, "dkim");
		server_dkim_swap(srv, NULL);
		snprintf(p->rp_detail, sizeof(p->rp_detail), "DKIM signing turned off");
		log_msg(LOG_INFO, "reload: %s", p->rp_detail);
	}
	if ((cfg->smtp_auth_credentials_file[0] != '\0' ||
	     old->smtp_auth_credentials_file[0] != '\0') && srv->s_smtp_creds != NULL) {
		struct smtp_creds *t = NULL;

		/* Sessions already open keep the table they started with; an
		 * emptied smtp_auth_credentials_file turns outbound AUTH off. */
		p = main_reload_part(r, "smtp_auth_credentials");
		if (main_smtp_creds_load(cfg, &t, p->rp_detail, sizeof(p->rp_detail)) < 0) {
			p->rp_ok = false;
			log_msg(LOG_ERROR, "reload: %s (keeping the old credentials)", p->rp_detail);
		} else {
			if (t != NULL)
				snprintf(p->rp_detail, sizeof(p->rp_detail),
					 "outbound AUTH credentials reloaded: %u next hops",
					 smtp_creds_count(t));
			else
				snprintf(p->rp_detail, sizeof(p->rp_detail),
					 "outbound AUTH credentials removed");
			log_msg(LOG_INFO, "reload: %s", p->rp_detail);
			smtp_creds_holder_swap(srv->s_smtp_creds, t);
		}
	}
	p = main_reload_part(r, "shaping_rules");
	p->rp_ok = server_rules_reload(srv, cfg, p->rp_detail, sizeof(p->rp_detail)) == 0;
	if (srv->s_events != NULL) {
		bool changed = false;

		/* Records stay stored while the sinks change hands. */
		p = main_reload_part(r, "events");
		if (events_reload(srv->s_events, cfg, &changed, p->rp_detail,
				  sizeof(p->rp_detail)) < 0) {
			p->rp_ok = false;
			main_reload_log_lines("reload: ", p->rp_detail, changed ? "" :
					      " (keeping the running event sinks)");
		} else {
			snprintf(p->rp_detail, sizeof(p->rp_detail), "event sinks %s: %u",
				 changed ? "reloaded" : "unchanged", events_nsinks(srv->s_events));
			log_msg(LOG_INFO, "reload: %s", p->rp_detail);
		}
	}
	if (ra->ra_admin != NULL)
		main_reload_admin_tokens(ra->ra_admin, cfg, main_reload_part(r, "admin_tokens"));
done:
	pthread_mutex_unlock(&main_reload_lock);
	r->mr_ok = true;
	for (unsigned i = 0; i < r->mr_n; i++)
		r->mr_ok = r->mr_ok && r->mr_part[i].rp_ok;
}

void main_reload_done(struct main_reload *r)
{
	config_changes_free(&r->mr_changes, r->mr_nchanges);
	r->mr_nchanges = 0;
}

bool main_reload_json(void *arg, json_t *parts)
{
	struct main_reload r;
	bool ok;

	main_reload(arg, &r);
	for (unsigned i = 0; i < r.mr_n; i++) {
		json_t *o = json_pack("{s:s, s:b, s:s}", "name", r.mr_part[i].rp_name, "ok",
				      r.mr_part[i].rp_ok, "detail", r.mr_part[i].rp_detail);

		if (o != NULL && strcmp(r.mr_part[i].rp_name, "config") == 0) {
			json_t *ch = json_array(), *rs = json_array();

			for (int k = 0; k < r.mr_nchanges; k++) {
				const struct config_change *c = &r.mr_changes[k];

				json_array_append_new(c->cc_restart ? rs : ch,
						      json_pack("{s:s, s:s, s:s}", "key", c->cc_key,
								c->cc_restart ? "running" : "old",
								c->cc_old,
								c->cc_restart ? "wanted" : "new",
								c->cc_new));
			}
			json_object_set_new(o, "changed", ch);
			json_object_set_new(o, "needs_restart", rs);
		}
		json_array_append_new(parts, o);
	}
	ok = r.mr_ok;
	main_reload_done(&r);
	return ok;
}
