/*
 * main_inject.c: HTTP injection (core/inject) on the daemon's queue,
 * accounts, pools and rules, started when http_listen is set.
 */
#include "core/app/main.h"
#include "core/app/server.h"
#include "core/http/metrics.h"
#include "core/inject/inject.h"

static struct dkim_table *main_inject_sign_table(void *ctx)
{
	return server_dkim_table(ctx);
}

/* What a reload changed (server_gen_publish()): the newest generation. */
static void main_inject_settings(void *ctx, const struct config **cfg_r,
				 const struct auth_db **auth_r, struct work_pool **pool_r)
{
	struct server *srv = ctx;

	*cfg_r = server_config(srv);
	*auth_r = server_auth(srv);
	*pool_r = __atomic_load_n(&srv->s_auth_pool, __ATOMIC_ACQUIRE);
}

int main_inject_start(struct inject **inj_r, struct server *srv, struct metrics_inbound *met_in,
		      char *err, size_t errlen)
{
	struct inject_env env = {
		.ie_cfg = srv->s_cfg,
		.ie_queue = srv->s_queue,
		.ie_auth = srv->s_auth,
		.ie_auth_pool = srv->s_auth_pool,
		.ie_sign_pool = srv->s_sign_pool,
		.ie_sign_table = main_inject_sign_table,
		.ie_ctx = srv,
		.ie_rules = srv->s_rules,
		.ie_events = srv->s_events,
		.ie_settings = main_inject_settings,
	};

	*inj_r = NULL;
	met_in->mi_inject = NULL;
	if (srv->s_cfg->http_listen[0] == '\0')
		return 0;
	if (inject_start(inj_r, &env, err, errlen) < 0)
		return -1;
	met_in->mi_inject = *inj_r;
	return 0;
}
