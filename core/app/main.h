/* main.h: pieces of the ringmta command shared between main*.c. */
#ifndef RINGMTA_MAIN_H
#define RINGMTA_MAIN_H

#include <stdbool.h>

#include "core/config/config.h"

#include <stdio.h>

#define RINGMTA_VERSION "0.1.0"

/* After a verb: "-c FILE" (main() loaded it already) and "-o KEY=VALUE"
 * (applied to cfg and validated). Returns 1 when argv[*i] was one of them
 * (*i then stands on its value), 0 when it was not, -1 after printing why
 * an override was refused. */
int main_verb_config_arg(struct config *cfg, int argc, char **argv, int *i);

/* "ringmta queue ARGS": returns the exit code. */
int main_queue(const struct config *cfg, int argc, char **argv);

/* "ringmta suppress add|remove|check|list|purge ...": the exit code. */
int main_suppress(const struct config *cfg, int argc, char **argv);

/* "ringmta domain check DOMAIN ...": returns the exit code (0 all
 * checks pass, 1 one failed, 2 usage). -o after the verb changes cfg. */
int main_domain(struct config *cfg, int argc, char **argv);

/* "ringmta shaping show --mx HOSTS ...": returns the exit code (0 shown,
 * 2 usage or a rules error). -o after the verb changes cfg. */
int main_shaping(struct config *cfg, int argc, char **argv);
/* HTTP injection when http_listen is set (main_inject.c); *inj_r NULL
 * when off. It reads srv's queue, accounts, pools and rules, and is
 * stopped (inject_stop) before them. */
struct inject;
struct server;
struct metrics_inbound;
int main_inject_start(struct inject **inj_r, struct server *srv, struct metrics_inbound *met_in,
		      char *err, size_t errlen);

/* Loaders main_serve() and main_reload() share (main.c): the server and
 * client TLS contexts, the DKIM key table (NULL when none is set), the
 * bounce class rules (install: make them current). 0, or -1 with err. */
struct tls_ctx;
struct dkim_table;
struct server;
int main_tls_load(const struct config *cfg, struct tls_ctx **server_r,
		  struct tls_ctx **client_r, char *err, size_t errlen);
int main_dkim_load(const struct config *cfg, struct dkim_table **t_r, char *err,
		   size_t errlen);
int main_bclass_load(const struct config *cfg, bool install, char *err, size_t errlen);
/* The outbound AUTH credentials (NULL when smtp_auth_credentials_file is
 * empty). */
struct smtp_creds;
int main_smtp_creds_load(const struct config *cfg, struct smtp_creds **t_r, char *err,
			 size_t errlen);

/* What a reload did, part by part (main_reload.c): "tls",
 * "bounce_classes", "dkim" (when a key table is set),
 * "smtp_auth_credentials" (when smtp_auth_credentials_file is set),
 * "shaping_rules".
 * A part that failed kept what it had; rp_detail says why (every error,
 * one a line), or what was loaded. */
#define MAIN_RELOAD_PARTS 5
struct main_reload_part {
	const char *rp_name;
	bool rp_ok;
	char rp_detail[4096];
};
struct main_reload {
	unsigned mr_n;
	bool mr_ok;			/* every part */
	struct main_reload_part mr_part[MAIN_RELOAD_PARTS];
};
/* SIGHUP, or the admin API's POST /api/v1/reload (any thread; one
 * reload at a time): load certificates, bounce classes, DKIM keys and
 * shaping rules again, each swapped in only when it loads in full;
 * logged as before, and reported in *r. */
void main_reload(struct server *srv, const struct config *cfg, struct main_reload *r);
/* The same for the admin API (admin_reload_fn, core/admin/admin_ops.h):
 * arg is a struct main_reload_arg, parts a JSON array. */
struct main_reload_arg {
	struct server *ra_srv;
	const struct config *ra_cfg;
};
struct json_t;
bool main_reload_json(void *arg, struct json_t *parts);

/* The admin API (core/admin) on cfg->admin_listen with every module's
 * routes; *a_r stays NULL when admin_listen is empty. aq (the queue
 * routes' state, filled here), q and dlv (may be NULL) must outlive
 * admin_stop(). */
struct admin;
struct admin_queue;
struct queue;
struct delivery;
int main_admin_start(struct admin **a_r, struct admin_queue *aq, const struct config *cfg,
		     struct queue *q, struct delivery *dlv, struct server *srv, char *err,
		     size_t errlen);

/* One request to the running daemon's admin API (main_admin_cli.c): body
 * may be NULL (borrowed); the HTTP status with the JSON answer in
 * *reply_r (the caller's), or -1 with err (not reachable, no JSON). */
int main_admin_call(const struct config *cfg, const char *method, const char *path,
		    struct json_t *body, struct json_t **reply_r, char *err, size_t errlen);

/* "ringmta suspend|resume|suspensions|top ..." (main_suspend.c) through
 * the admin API: the exit code (0, 1 the API refused or is not
 * reachable, 2 usage). */
int main_suspend(const struct config *cfg, const char *verb, int argc, char **argv);

/* "ringmta config show [-n]": the exit code (0 shown, 1 output failed,
 * 2 usage). */
int main_config(const struct config *cfg, int argc, char **argv);

#endif
