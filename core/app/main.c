/*
 * main.c: the ringmta command. Runs the server in the foreground, checks
 * a configuration, or hands "queue ..." to main_queue.c.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "core/config/config.h"
#include "core/delivery/delivery.h"
#include "core/dkim/dkim_table.h"
#include "core/events/events.h"
#include "core/dmarc/dmarc_org.h"
#include "core/base/log.h"
#include "core/admin/admin.h"
#include "core/admin/admin_queue.h"
#include "core/http/metrics.h"
#include "core/inject/inject.h"
#include "core/app/main.h"
#include "core/app/notify.h"
#include "core/app/server.h"
#include "io/listen.h"
#include "queue/queue.h"
#include "tls/tls.h"
#include "tls/tls_lib.h"
#include "core/sasl/auth.h"
#include "core/shaping/shp_rules_admin.h"
#include "core/outbound/smtp_client.h"
#include "core/outbound/smtp_creds.h"
#include "core/bounce/bclass.h"
#include "core/bounce/bclass_rules.h"

static void main_usage(FILE *f)
{
	fprintf(f,
		"usage: ringmta [-c FILE] [-o key=value]... [--check [-v]]\n"
		"       ringmta [-c FILE] [-o key=value]... queue [OPTIONS] summary|list|show ID|hold|\n"
		"               release|delete|bounce|flush [ID...]   (the daemon's admin API;\n"
		"               --offline: list|show|delete|flush on the store; see queue --help)\n"
		"       ringmta [-c FILE] [-o key=value]... queue count|check|compact|shaping\n"
		"       ringmta [-c FILE] [-o key=value]... domain check DOMAIN [--source IP]...\n"
		"       ringmta [-c FILE] [-o key=value]... suppress add|remove|check ADDR\n"
		"               [--sender-domain D] [--class C] [--expire 30d] [--reason TEXT]\n"
		"       ringmta [-c FILE] [-o key=value]... suppress list|purge\n"
		"       ringmta [-c FILE] [-o key=value]... shaping show --mx HOST[,HOST...]\n"
		"               [--domain DOMAIN] [--source SOURCE]\n"
		"       ringmta [-c FILE] suspend --site S|--domain D|--source X|--sender-domain D\n"
		"               --duration 2h [--reason TEXT] [--json]   (through the admin API)\n"
		"       ringmta [-c FILE] resume --site S|--domain D|--source X|--sender-domain D\n"
		"       ringmta [-c FILE] suspensions [--json]\n"
		"       ringmta [-c FILE] top [--once] [--json] [--limit N]\n"
		"       ringmta [-c FILE] [-o key=value]... config show [-n] [-r]\n"
		"       ringmta --version\n"
		"Runs the SMTP server in the foreground (SIGTERM or SIGINT stops it).\n"
		"  -c FILE    configuration file (default: built-in defaults)\n"
		"  -o K=V     override one setting; may be repeated\n"
		"  --check    validate the configuration and exit (-v prints it)\n");
}

/* Class names for "ringmta queue" (the queue keeps them as numbers). */
static const char *main_class_name(uint8_t c)
{
	return bclass_name(c);
}

static enum log_level main_log_level(enum config_log_level l)
{
	switch (l) {
	case CONFIG_LOG_ERROR: return LOG_ERROR;
	case CONFIG_LOG_WARNING: return LOG_WARNING;
	case CONFIG_LOG_INFO: return LOG_INFO;
	case CONFIG_LOG_DEBUG: return LOG_DEBUG;
	}
	return LOG_INFO;
}

/* Lift the soft limit to the hard one. Sessions live in the workers'
 * registered file tables (io/loop.c), which the kernel caps at the limit:
 * say so when even the hard limit is below max_connections (past the
 * table a session needs a descriptor of its own). */
static void main_raise_nofile(const struct config *cfg)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	/* What the limit is now (setrlimit may have failed). */
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)cfg->max_connections)
		log_msg(LOG_WARNING, "open file limit %llu is below max_connections %u: a worker's"
			" file table holds %llu sessions, more need a descriptor each: raise it"
			" (ulimit -n) or lower max_connections", (unsigned long long)rl.rlim_cur,
			cfg->max_connections, (unsigned long long)rl.rlim_cur);
}

/* The server and client TLS contexts the configuration asks for. */
int main_tls_load(const struct config *cfg, struct tls_ctx **server_r,
			 struct tls_ctx **client_r, char *err, size_t errlen)
{
	*server_r = *client_r = NULL;
	if (cfg->tls_cert_file[0] != '\0' &&
	    tls_ctx_server_new(server_r, cfg->tls_cert_file, cfg->tls_key_file, err, errlen) < 0)
		return -1;
	if (tls_ctx_client_new(client_r, cfg->tls_ca_file, err, errlen) < 0) {
		tls_ctx_unref(server_r);
		return -1;
	}
	return 0;
}

int main_auth_load(const struct config *cfg, struct auth_db **db_r, char *err, size_t errlen)
{
	struct auth_config ac = {
		.passwd_file = cfg->auth_passwd_file,
		.jwt_keys_file = cfg->auth_jwt_keys_file,
		.jwt_issuer = cfg->auth_jwt_issuer,
		.jwt_audience = cfg->auth_jwt_audience,
		.hostname = cfg->hostname,
	};

	*db_r = NULL;
	if (cfg->auth_passwd_file[0] == '\0' && cfg->auth_jwt_keys_file[0] == '\0')
		return 0;
	return auth_db_load(db_r, &ac, err, errlen);
}

/* Delivery's part of each worker runs on that worker's loop as a service
 * (server.h); delivery itself knows nothing of the server. */
static void main_dlv_wake(void *ctx)
{
	dlv_worker_on_wake(ctx);
}

static void main_dlv_tick(void *ctx, uint64_t now)
{
	dlv_worker_on_tick(ctx, now);
}

static bool main_dlv_quiesce(void *ctx)
{
	return dlv_worker_quiesce(ctx);
}

static void main_dlv_abort(void *ctx)
{
	dlv_worker_abort(ctx);
}

static void main_dlv_close(void *ctx)
{
	dlv_worker_close(ctx);
}

static void main_dlv_config(void *ctx, const struct config *cfg)
{
	dlv_worker_set_config(ctx, cfg);
}

static const struct server_service_ops main_dlv_service = {
	.on_config = main_dlv_config,
	.on_wake = main_dlv_wake,
	.on_tick = main_dlv_tick,
	.quiesce = main_dlv_quiesce,
	.abort = main_dlv_abort,
	.destroy = main_dlv_close,
};

static struct io_loop *main_dlv_loop(void *arg, unsigned i)
{
	return server_worker_loop(arg, i);
}

static uint64_t main_dlv_next_id(void *arg, unsigned i)
{
	struct server *srv = arg;

	return server_next_id(&srv->s_workers[i]);
}

static struct tls_ctx *main_dlv_tls_client(void *arg)
{
	return server_tls_client(arg);
}

/* Delivery's parts on every worker, attached before the threads run. */
static int main_delivery_init(struct delivery **dlv_r, struct server *srv,
			      const struct config *cfg, struct queue *q, char *err, size_t errlen)
{
	struct delivery_env env = {
		.de_cfg = cfg,
		.de_queue = q,
		.de_nworkers = server_nworkers(srv),
		.de_loop = main_dlv_loop,
		.de_next_id = main_dlv_next_id,
		.de_tls_client = main_dlv_tls_client,
		.de_arg = srv,
		.de_rules = srv->s_rules,
		.de_events = srv->s_events,
		.de_creds = srv->s_smtp_creds,
	};

	if (delivery_init(dlv_r, &env, err, errlen) < 0)
		return -1;
	for (unsigned i = 0; i < env.de_nworkers; i++)
		if (server_attach(srv, i, &main_dlv_service, delivery_worker(*dlv_r, i)) < 0) {
			snprintf(err, errlen, "worker %u: too many services", i);
			return -1;
		}
	return 0;
}

/* The DKIM key table, when one is configured (*t_r NULL otherwise):
 * every key loads, or err names the file. */
int main_dkim_load(const struct config *cfg, struct dkim_table **t_r, char *err,
			  size_t errlen)
{
	*t_r = NULL;
	if (cfg->dkim_key_table[0] == '\0')
		return 0;
	if (dkim_table_load(t_r, cfg->dkim_key_table, err, errlen) < 0)
		return -1;
	if (cfg->dkim_default_domain[0] != '\0' &&
	    dkim_table_find(*t_r, cfg->dkim_default_domain) == NULL) {
		snprintf(err, errlen, "dkim_default_domain %s: no [%s] section in %s",
			 cfg->dkim_default_domain, cfg->dkim_default_domain, cfg->dkim_key_table);
		dkim_table_unref(t_r);
		return -1;
	}
	return 0;
}

/* The outbound AUTH credentials, when a file is set (*t_r NULL
 * otherwise): it loads and only its owner may read it, or err says why. */
int main_smtp_creds_load(const struct config *cfg, struct smtp_creds **t_r, char *err,
			 size_t errlen)
{
	*t_r = NULL;
	if (cfg->smtp_auth_credentials_file[0] == '\0')
		return 0;
	return smtp_creds_load(t_r, cfg->smtp_auth_credentials_file, err, errlen);
}

/*
 * --check: what start-up refuses beyond the settings' syntax, with the
 * loaders main_serve() uses: the queue directory's parent must exist
 * (queue_open creates only the last component), certificates, keys and
 * credentials must load. Nothing is created or changed.
 */
/* The bounce class rules (bounce_class_rules, then the built-in file);
 * install: make them the ones delivery classifies with. */
int main_bclass_load(const struct config *cfg, bool install, char *err, size_t errlen)
{
	struct bclass_rules *r = NULL;

	if (bclass_rules_load(&r, cfg->bounce_class_rules, err, errlen) < 0)
		return -1;
	if (install)
		bclass_current_set(r);
	else
		bclass_rules_unref(&r);
	return 0;
}

static int main_check_start(const struct config *cfg, char *err, size_t errlen)
{
	struct tls_ctx *ts = NULL, *tc = NULL;
	struct auth_db *adb = NULL;
	struct dkim_table *dkt = NULL;
	struct smtp_creds *creds = NULL;
	char *parent, *slash;
	struct stat st;

	if (stat(cfg->queue_dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "queue_dir %s: not a directory", cfg->queue_dir);
			return -1;
		}
	} else {
		parent = strdup(cfg->queue_dir);
		if (parent == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		while ((slash = strrchr(parent, '/')) != NULL && slash[1] == '\0' &&
		       slash != parent)
			*slash = '\0';		/* trailing slashes */
		slash = strrchr(parent, '/');
		if (slash == parent)
			slash[1] = '\0';
		else if (slash != NULL)
			*slash = '\0';
		else
			strcpy(parent, ".");
		if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "queue_dir %s: parent directory %s does not exist",
				 cfg->queue_dir, parent);
			free(parent);
			return -1;
		}
		free(parent);
	}
	if (tls_lib_init() < 0) {
		snprintf(err, errlen, "TLS library failed to initialise");
		return -1;
	}
	if (main_tls_load(cfg, &ts, &tc, err, errlen) < 0)
		return -1;
	tls_ctx_unref(&ts);
	tls_ctx_unref(&tc);
	if (main_auth_load(cfg, &adb, err, errlen) < 0)
		return -1;
	auth_db_free(&adb);
	if (smtp_client_check_bind(cfg, err, errlen) < 0)
		return -1;
	if (main_dkim_load(cfg, &dkt, err, errlen) < 0)
		return -1;
	dkim_table_unref(&dkt);
	if (main_smtp_creds_load(cfg, &creds, err, errlen) < 0)
		return -1;
	smtp_creds_unref(&creds);
	if (cfg->admin_listen[0] != '\0') {
		struct admin *adm = NULL;

		if (admin_create(&adm, cfg, err, errlen) < 0)	/* the tokens file */
			return -1;
		admin_stop(&adm);
	}
	return 0;
}

/* Load and install the bounce class rules, or log every error, one line
 * each, between prefix and suffix. 0 or -1. */
static int main_bclass_install(const struct config *cfg, const char *prefix, const char *suffix)
{
	size_t errlen = 65536;
	char *err = malloc(errlen), *save = NULL;
	int rc;

	if (err == NULL) {
		log_msg(LOG_ERROR, "%sbounce class rules: out of memory%s", prefix, suffix);
		return -1;
	}
	if ((rc = main_bclass_load(cfg, true, err, errlen)) < 0)
		for (char *l = strtok_r(err, "\n", &save); l != NULL;
		     l = strtok_r(NULL, "\n", &save))
			log_msg(LOG_ERROR, "%s%s%s", prefix, l, suffix);
	free(err);
	return rc;
}

/* --check: the bounce class rules, every error of every file on its own
 * line ("file:line: message") on stderr. */
static int main_check_bclass(const struct config *cfg)
{
	size_t errlen = 65536;
	char *err = malloc(errlen);
	int rc;

	if (err == NULL)
		return -1;
	if ((rc = main_bclass_load(cfg, false, err, errlen)) < 0)
		fprintf(stderr, "%s\n", err);
	free(err);
	return rc;
}

/* --check: the shaping rules, every error on its own line as
 * "file:line: message" on stderr; a source whose address is not this
 * host's is a warning (the daemon starts and leaves it out of service). */
static int main_check_rules(const struct config *cfg)
{
	struct shp_rules *r = NULL;
	size_t errlen = 65536;
	char *err = malloc(errlen), sum[256];

	if (err == NULL)
		return -1;
	if (server_rules_load(cfg, &r, err, errlen) < 0) {
		fprintf(stderr, "%s\n", err);
		free(err);
		return -1;
	}
	if (smtp_client_check_sources(cfg, r, NULL, err, errlen) > 0) {
		char *save = NULL;

		for (char *l = strtok_r(err, "\n", &save); l != NULL;
		     l = strtok_r(NULL, "\n", &save))
			fprintf(stderr, "warning: shaping rules: %s: it will be out of service\n", l);
	}
	free(err);
	shp_rules_summary(r, sum, sizeof(sum));
	printf("ringmta: shaping rules: %s\n", sum);
	shp_rules_unref(&r);
	return 0;
}

/* The watchdog's view of worker i: its loop's iteration count, which a
 * running loop moves at least once a second (its tick). */
static uint64_t main_worker_progress(void *arg, unsigned i)
{
	struct server *srv = arg;

	return stat_get(&srv->s_workers[i].w_loop.lp_stats.loops);
}

/* The queue's store failed (queue_set_fatal_listener; any thread, also
 * inside queue_close at stop): stop as SIGTERM does; main_serve then exits
 * 1, so that a service manager restarts it. */
static atomic_bool main_store_failed;

static void main_queue_fatal(void *ctx)
{
	(void)ctx;
	atomic_store(&main_store_failed, true);
	kill(getpid(), SIGTERM);
}

/* ra: what a reload reads again (the file and the -o values); main_serve
 * fills in the rest. */
static int main_serve(const struct config *cfg, struct main_reload_arg *ra)
{
	struct queue *q;
	struct server srv;
	struct smtp_creds_holder smtp_creds;
	struct delivery *dlv = NULL;
	struct metrics *met = NULL;
	struct admin *adm = NULL;
	struct admin_queue adm_queue;
	struct metrics_inbound met_in;
	char bssl_api[16];	/* ringmta_build_info's, while met runs */
	struct inject *inj = NULL;
	struct notify_watchdog *wd = NULL;
	sigset_t set;
	char err[512], addr[80];
	int sig, rc;

	signal(SIGPIPE, SIG_IGN);
	main_raise_nofile(cfg);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);	/* reopen the event log */
	/* Threads inherit the mask: only sigwait below sees these. */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (tls_lib_init() < 0) {
		log_msg(LOG_ERROR, "TLS library failed to initialise");
		return 1;
	}
	dmarc_org_init();	/* before any thread */
	/* Never start over a damaged queue (checked in a child, before any
	 * thread), nor beside another ringmta on the same queue or port. */
	rc = queue_check_dir(cfg->queue_dir, cfg->queue_map_size, err, sizeof(err));
	if (rc > 0)
		log_msg(LOG_WARNING, "%s", err);
	if (rc < 0 || queue_open(&q, cfg->queue_dir, cfg->queue_map_size, QUEUE_F_COMMITTER |
				 (cfg->queue_journal ? QUEUE_F_JOURNAL : 0), err, sizeof(err)) < 0) {
		log_msg(LOG_ERROR, "%s", err);
		return 1;
	}
	queue_set_commit_delay(q, (uint64_t)cfg->queue_commit_delay * 1000u);
	queue_set_fatal_listener(q, main_queue_fatal, NULL);
	for (unsigned i = 0; i < cfg->listen_count; i++) {
		const struct config_listen *cl = &cfg->listen[i];
		int prc;

		/* A killed process's io_uring lets go of its listening socket
		 * a little after the process is gone: give it a few seconds. */
		for (unsigned t = 0; t < 60; t++) {
			prc = io_listen_probe((const struct sockaddr *)&cl->cl_addr,
					      cl->cl_addrlen);
			if (prc != -EADDRINUSE)
				break;
			usleep(50000);
		}
		if (prc < 0) {
			log_msg(LOG_ERROR, "listen %s: %s%s",
				io_sockaddr_str((const struct sockaddr *)&cl->cl_addr, addr,
						sizeof(addr)), strerror(-prc),
				prc == -EADDRINUSE ? " (another ringmta or another server"
				" holds it; refusing to share it)" : "");
			queue_close(&q);
			return 1;
		}
	}
	if (smtp_client_check_bind(cfg, err, sizeof(err)) < 0) {
		log_msg(LOG_ERROR, "%s", err);
		queue_close(&q);
		return 1;
	}
	if (main_bclass_install(cfg, "", "") < 0) {
		queue_close(&q);
		return 1;
	}
	memset(&srv, 0, sizeof(srv));
	{
		struct smtp_creds *creds = NULL;

		if (main_smtp_creds_load(cfg, &creds, err, sizeof(err)) < 0) {
			log_msg(LOG_ERROR, "%s", err);
			queue_close(&q);
			return 1;
		}
		if (creds != NULL)
			log_msg(LOG_INFO, "smtp auth: %u next hops with credentials from %s",
				smtp_creds_count(creds), cfg->smtp_auth_credentials_file);
		smtp_creds_holder_init(&smtp_creds, creds);
	}
	if (events_start(&srv.s_events, cfg, q, err, sizeof(err)) < 0) {
		log_msg(LOG_ERROR, "%s", err);
		queue_close(&q);
		smtp_creds_holder_destroy(&smtp_creds);
		return 1;
	}
	if (main_tls_load(cfg, &srv.s_tls_server, &srv.s_tls_client, err, sizeof(err)) < 0 ||
	    main_auth_load(cfg, &srv.s_auth, err, sizeof(err)) < 0 ||
	    main_dkim_load(cfg, &srv.s_dkim_table, err, sizeof(err)) < 0) {
		log_msg(LOG_ERROR, "%s", err);
		events_stop(&srv.s_events);
		queue_close(&q);
		tls_ctx_unref(&srv.s_tls_server);
		tls_ctx_unref(&srv.s_tls_client);
		auth_db_free(&srv.s_auth);
		smtp_creds_holder_destroy(&smtp_creds);
		return 1;
	}
	if (server_init(&srv, cfg, q, err, sizeof(err)) < 0) {
		log_msg(LOG_ERROR, "%s", err);
		server_stop(&srv);
		server_join(&srv);
		events_stop(&srv.s_events);
		queue_close(&q);
		/* What main loaded is still the server's: no thread runs. */
		tls_ctx_unref(&srv.s_tls_server);
		tls_ctx_unref(&srv.s_tls_client);
		auth_db_free(&srv.s_auth);
		dkim_table_unref(&srv.s_dkim_table);
		smtp_creds_holder_destroy(&smtp_creds);
		return 1;
	}
	srv.s_smtp_creds = &smtp_creds;	/* server_init() clears what it does not own */
	/* The workers' threads start only once delivery is attached to them;
	 * the scheduler only once they run. */
	server_metrics_source(&srv, &met_in);
	met_in.mi_version = RINGMTA_VERSION;
	snprintf(bssl_api, sizeof(bssl_api), "%u", tls_lib_api_version());
	met_in.mi_boringssl = bssl_api;
	ra->ra_srv = &srv;
	if ((cfg->delivery && main_delivery_init(&dlv, &srv, cfg, q, err, sizeof(err)) < 0) ||
	    server_run(&srv, err, sizeof(err)) < 0 ||
	    (dlv != NULL && delivery_start(dlv, err, sizeof(err)) < 0) ||
	    main_inject_start(&inj, &srv, &met_in, err, sizeof(err)) < 0 ||
	    (cfg->metrics_listen[0] != '\0' &&
	     metrics_start(&met, cfg, q, &met_in, dlv, err, sizeof(err)) < 0) ||
	    (ra->ra_dlv = dlv,	/* known only now; the API may reload from here on */
	     main_admin_start(&adm, &adm_queue, cfg, q, dlv, &srv, ra, err, sizeof(err))) < 0 ||
	    notify_watchdog_start(&wd, srv.s_nworkers, main_worker_progress, &srv, err,
				  sizeof(err)) < 0) {
		log_msg(LOG_ERROR, "%s", err);
		admin_stop(&adm);
		metrics_stop(&met);
		inject_stop(&inj);
		delivery_stop(&dlv);	/* nothing when it never started */
		server_stop(&srv);
		server_join(&srv);
		events_stop(&srv.s_events);
		queue_close(&q);
		server_destroy(&srv);
		delivery_free(&dlv);
		smtp_creds_holder_destroy(&smtp_creds);
		return 1;
	}
	metrics_set_events(met, srv.s_events);
	main_reload_init(ra, cfg);
	for (unsigned i = 0; i < cfg->listen_count; i++)
		log_msg(LOG_INFO, "listening on %s",
			io_sockaddr_str((const struct sockaddr *)&cfg->listen[i].cl_addr,
					addr, sizeof(addr)));
	log_msg(LOG_INFO, "ready: workers=%u queue_dir=%s hostname=%s tls=%s",
		srv.s_nworkers, cfg->queue_dir, cfg->hostname, tls_lib_version());
	if (srv.s_dkim_table != NULL) {
		struct work_pool_stats ps;

		work_pool_get_stats(srv.s_sign_pool, &ps);
		log_msg(LOG_INFO, "dkim: signing with %s: %u domains, %u threads",
			cfg->dkim_key_table, dkim_table_count(srv.s_dkim_table), ps.nthreads);
	}
	snprintf(err, sizeof(err), "ready: %u workers, %u listeners", srv.s_nworkers,
		 cfg->listen_count);
	notify_ready(err);
	do {
		if (sigwait(&set, &sig) != 0)
			sig = 0;
		if (sig == SIGUSR1) {
			events_reopen(srv.s_events);
			log_msg(LOG_INFO, "SIGUSR1: %s", srv.s_events != NULL ?
				"event log reopened" : "no event log to reopen");
		}
		if (sig == SIGHUP) {
			struct main_reload rl;

			notify_reloading();
			main_reload(ra, &rl);
			main_reload_done(&rl);
			notify_ready("ready: reloaded");
		}
	} while (sig != SIGTERM && sig != SIGINT);
	log_msg(LOG_INFO, "signal %d: stopping (deadline %us)", sig, cfg->shutdown_timeout);
	snprintf(err, sizeof(err), "stopping: sessions have %us to finish",
		 cfg->shutdown_timeout);
	notify_stopping(err);
	notify_watchdog_stop(&wd);	/* the workers wind down from here */
	admin_stop(&adm);		/* the last reload: none after this */
	metrics_stop(&met);
	inject_stop(&inj);		/* requests in flight finish first */
	delivery_stop(&dlv);		/* no new deliveries start */
	server_stop(&srv);
	server_join(&srv);
	events_stop(&srv.s_events);	/* what is unsent stays stored */
	queue_close(&q);		/* commits anything still waiting */
	server_destroy(&srv);		/* closes delivery's worker parts */
	delivery_free(&dlv);
	auth_db_free(&srv.s_auth);
	smtp_creds_holder_destroy(&smtp_creds);
	if (atomic_load(&main_store_failed)) {
		log_msg(LOG_ERROR, "stopped: the queue's store failed (above); exit status 1");
		return 1;
	}
	log_msg(LOG_INFO, "stopped");
	return 0;
}

/* The verbs main_suspend.c answers through the admin API. */
static bool main_is_suspend_verb(const char *v)
{
	return strcmp(v, "suspend") == 0 || strcmp(v, "resume") == 0 ||
	       strcmp(v, "suspensions") == 0 || strcmp(v, "top") == 0;
}

int main_verb_config_arg(struct config *cfg, int argc, char **argv, int *i)
{
	char err[512];

	if (*i + 1 >= argc || (strcmp(argv[*i], "-c") != 0 && strcmp(argv[*i], "-o") != 0))
		return 0;
	if (strcmp(argv[(*i)++], "-c") == 0)
		return 1;
	if (config_set_override(cfg, argv[*i], err, sizeof(err)) < 0 ||
	    config_validate(cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "ringmta: %s\n", err);
		return -1;
	}
	return 1;
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct main_reload_arg ra;
	char **ovr = NULL;
	const char *file = NULL;
	bool check = false, verbose = false;
	char err[512];
	bool domain = false, shaping = false;
	int i, rc;

	config_defaults(&cfg);
	memset(&ra, 0, sizeof(ra));
	/* First pass: the file, so that -o applies on top of it. "domain"
	 * takes -c after its arguments too. */
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			file = argv[++i];
		else if (strcmp(argv[i], "-o") == 0)
			i++;
		else if (strcmp(argv[i], "domain") == 0 && !domain && !shaping)
			domain = true;
		else if (strcmp(argv[i], "shaping") == 0 && !domain && !shaping)
			shaping = true;
		else if ((strcmp(argv[i], "queue") == 0 || strcmp(argv[i], "suppress") == 0 ||
			  strcmp(argv[i], "config") == 0 || main_is_suspend_verb(argv[i])) &&
			 !domain && !shaping)
			break;
	}
	if (file != NULL && config_load_file(&cfg, file, err, sizeof(err)) < 0) {
		fprintf(stderr, "ringmta: %s\n", err);
		config_free(&cfg);
		return 2;
	}
	/* A reload reads the file and the -o values again: they are argv's. */
	ra.ra_file = file;
	ra.ra_overrides = ovr = calloc((size_t)argc, sizeof(char *));
	if (ovr == NULL) {
		fprintf(stderr, "ringmta: out of memory\n");
		config_free(&cfg);
		return 1;
	}
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			i++;
		} else if (strcmp(argv[i], "-o") == 0) {
			if (i + 1 >= argc) {
				main_usage(stderr);
				rc = 2;
				goto out;
			}
			if (config_set_override(&cfg, argv[++i], err, sizeof(err)) < 0) {
				fprintf(stderr, "ringmta: %s\n", err);
				rc = 2;
				goto out;
			}
			ovr[ra.ra_noverrides++] = argv[i];
		} else if (strcmp(argv[i], "--check") == 0) {
			check = true;
		} else if (strcmp(argv[i], "-v") == 0) {
			verbose = true;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("ringmta %s (%s)\n", RINGMTA_VERSION, tls_lib_version());
			rc = 0;
			goto out;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			main_usage(stdout);
			rc = 0;
			goto out;
		} else if (strcmp(argv[i], "queue") == 0 || strcmp(argv[i], "domain") == 0 ||
			   strcmp(argv[i], "suppress") == 0 || strcmp(argv[i], "shaping") == 0 ||
			   strcmp(argv[i], "config") == 0 || main_is_suspend_verb(argv[i])) {
			break;
		} else {
			fprintf(stderr, "ringmta: unknown argument '%s'\n", argv[i]);
			main_usage(stderr);
			rc = 2;
			goto out;
		}
	}
	if (config_validate(&cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "ringmta: %s%s%s\n", file ? file : "", file ? ": " : "", err);
		rc = 2;
		goto out;
	}
	log_set_level(main_log_level(cfg.log_level));
	queue_admin_set_class_namer(main_class_name);
	if (i < argc && strcmp(argv[i], "domain") == 0) {
		rc = main_domain(&cfg, argc - i - 1, argv + i + 1);
	} else if (i < argc && strcmp(argv[i], "suppress") == 0) {
		rc = main_suppress(&cfg, argc - i - 1, argv + i + 1);
	} else if (i < argc && main_is_suspend_verb(argv[i])) {
		rc = main_suspend(&cfg, argv[i], argc - i - 1, argv + i + 1);
	} else if (i < argc && strcmp(argv[i], "shaping") == 0) {
		rc = main_shaping(&cfg, argc - i - 1, argv + i + 1);
	} else if (i < argc && strcmp(argv[i], "config") == 0) {
		rc = main_config(&cfg, argc - i - 1, argv + i + 1);
	} else if (i < argc) {
		rc = main_queue(&cfg, argc - i - 1, argv + i + 1);
	} else if (check) {
		if (main_check_start(&cfg, err, sizeof(err)) < 0) {
			fprintf(stderr, "ringmta: %s%s%s\n", file ? file : "", file ? ": " : "", err);
			rc = 2;
			goto out;
		}
		if (main_check_bclass(&cfg) < 0 || main_check_rules(&cfg) < 0) {
			rc = 2;
			goto out;
		}
		if (verbose)
			config_dump(&cfg, stdout);
		printf("ringmta: configuration %s is valid\n", file ? file : "(defaults)");
		rc = 0;
	} else {
		rc = main_serve(&cfg, &ra);
	}
out:
	config_free(&cfg);
	free(ovr);
	return rc;
}
