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

/* The AUTH accounts cfg names (*db_r NULL when none): 0, or -1 with err
 * naming the file (main.c). */
struct auth_db;
int main_auth_load(const struct config *cfg, struct auth_db **db_r, char *err, size_t errlen);

/*
 * A reload (main_reload.c), for SIGHUP and POST /api/v1/reload; any
 * thread, one at a time. It reads the configuration again as main() did
 * (the -c file, then every -o) and validates it; a file or value that
 * fails, or accounts that do not load, change nothing: the running
 * settings stay and the "config" part says why. Otherwise every setting
 * that changed is logged ("reload: log_level: info -> debug"); one that
 * needs a restart (config_key_restart()) keeps its running value and is
 * logged as such; the others take effect: the new settings become a new
 * generation (server_gen_publish(), core/app/server.h) that every worker
 * adopts before main_reload() returns (for 2 s at most), delivery's
 * scheduler routes with them, and log_level applies at once. Then, with
 * the settings in force, each part loads again and is swapped in only
 * when it loaded in full (TLS certificates, bounce class rules, DKIM
 * keys, the outbound AUTH credentials when smtp_auth_credentials_file
 * is set, shaping rules, the admin API's tokens); one that fails keeps
 * what it had.
 *
 * HTTP injection reads the newest generation at each request. Not
 * reloaded (they keep the start-up settings until a restart): the
 * metrics endpoint, the event log and webhooks, and the admin API but
 * for its tokens; their keys need a restart.
 *
 * Another part (a new reloadable resource) is one more main_reload_part
 * and a few lines in main_reload() that load it from the settings in
 * force and swap it in, as "dkim" does.
 */
#define MAIN_RELOAD_PARTS 10
struct main_reload_part {
	const char *rp_name;	/* config, auth, tls, bounce_classes, dkim,
				 * smtp_auth_credentials, shaping_rules,
				 * admin_tokens, events */
	bool rp_ok;
	char rp_detail[4096];	/* why it failed (every error, one a line),
				 * or what was loaded */
};
struct main_reload {
	unsigned mr_n;
	bool mr_ok;			/* every part */
	struct main_reload_part mr_part[MAIN_RELOAD_PARTS];
	/* Every setting the file changed (config_diff()), those that need a
	 * restart included (cc_restart; they kept their running values).
	 * Owned; main_reload_done() frees them. */
	struct config_change *mr_changes;
	int mr_nchanges;
};
struct delivery;
/* What a reload reads and acts on; set up by main_serve(). */
struct main_auth_sig {
	unsigned long long as_dev, as_ino, as_size, as_mtime_ns, as_ctime_ns;
};
struct main_reload_arg {
	struct server *ra_srv;
	struct delivery *ra_dlv;	/* NULL: delivery off */
	struct admin *ra_admin;		/* NULL: no admin API */
	const char *ra_file;		/* -c FILE; NULL: built-in defaults */
	char *const *ra_overrides;	/* the -o values, in order */
	unsigned ra_noverrides;
	/* The account files as they were when last loaded (unchanged files
	 * keep the accounts, and the generation, they have). */
	struct main_auth_sig ra_auth_sig[2];
};
/* Note what the start-up accounts were loaded from (main_serve()). */
void main_reload_init(struct main_reload_arg *ra, const struct config *cfg);
void main_reload(struct main_reload_arg *ra, struct main_reload *r);
void main_reload_done(struct main_reload *r);
/* The same for the admin API (admin_reload_fn, core/admin/admin_ops.h):
 * arg is the struct main_reload_arg, parts a JSON array; the "config"
 * part lists "changed" ({key, old, new}) and "needs_restart" ({key,
 * running, wanted}). */
struct json_t;
bool main_reload_json(void *arg, struct json_t *parts);

/* The admin API (core/admin) on cfg->admin_listen with every module's
 * routes; *a_r stays NULL when admin_listen is empty. aq (the queue
 * routes' state, filled here), q, dlv (may be NULL) and ra (the reload's)
 * must outlive admin_stop(). */
struct admin;
struct admin_queue;
struct queue;
struct delivery;
int main_admin_start(struct admin **a_r, struct admin_queue *aq, const struct config *cfg,
		     struct queue *q, struct delivery *dlv, struct server *srv,
		     struct main_reload_arg *ra, char *err, size_t errlen);

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
