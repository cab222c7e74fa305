/*
 * inject_http.c: the HTTP side of injection (inject.h): the
 * libmicrohttpd daemon on http_listen, request bodies read up to
 * http_max_request_size, who may inject (HTTP Basic against the SMTP
 * AUTH accounts, checked in the auth pool, or a client in
 * relay_networks), and the answers. Plain HTTP: a TLS-enabled MHD would
 * link GnuTLS beside BoringSSL; front it with a proxy that terminates
 * TLS, or keep it on a private network.
 */
#include "core/inject/inject_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/base/log.h"
#include "core/config/netacl.h"
#include "core/sasl/auth.h"
#include "core/sasl/auth_pool.h"

#define INJECT_PATH "/api/v1/inject"

/* A request from the handler's first call to its completion. */
struct inject_conn {
	struct inject_buf r_body;
	bool r_answered;		/* refused before the body */
	char r_user[256];		/* "" for a relay client */
	char r_addr[INET6_ADDRSTRLEN];
};

static void inject_wait_notify(void *ctx)
{
	struct inject_wait *w = ctx;

	pthread_mutex_lock(&w->w_lock);
	w->w_ready = true;
	pthread_cond_signal(&w->w_cond);
	pthread_mutex_unlock(&w->w_lock);
}

void inject_wait_init(struct inject_wait *w)
{
	pthread_mutex_init(&w->w_lock, NULL);
	pthread_cond_init(&w->w_cond, NULL);
	w->w_ready = false;
	work_sink_init(&w->w_jobs, inject_wait_notify, w);
	queue_sink_init(&w->w_msgs, inject_wait_notify, w);
}

void inject_wait_destroy(struct inject_wait *w)
{
	work_sink_destroy(&w->w_jobs);
	queue_sink_destroy(&w->w_msgs);
	pthread_cond_destroy(&w->w_cond);
	pthread_mutex_destroy(&w->w_lock);
}

void inject_wait_sleep(struct inject_wait *w)
{
	pthread_mutex_lock(&w->w_lock);
	while (!w->w_ready)
		pthread_cond_wait(&w->w_cond, &w->w_lock);
	w->w_ready = false;
	pthread_mutex_unlock(&w->w_lock);
}

static enum MHD_Result inject_send(struct MHD_Connection *conn, unsigned status, char *json,
				   bool retry, bool challenge)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	size_t len = json != NULL ? strlen(json) : 0;

	resp = MHD_create_response_from_buffer(len, json != NULL ? json : (char *)"",
					       json != NULL ? MHD_RESPMEM_MUST_FREE :
					       MHD_RESPMEM_PERSISTENT);
	if (resp == NULL) {
		free(json);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "application/json");
	if (retry)
		MHD_add_response_header(resp, "Retry-After", "5");
	if (challenge)
		MHD_add_response_header(resp, "WWW-Authenticate", "Basic realm=\"ringmta\", charset=\"UTF-8\"");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result inject_refuse(struct inject *inj, struct MHD_Connection *conn,
				     unsigned status, const char *msg, _Atomic uint64_t *reason)
{
	struct inject_answer a = { 0 };

	atomic_fetch_add_explicit(&inj->i_requests, 1, memory_order_relaxed);
	if (reason != NULL)
		atomic_fetch_add_explicit(reason, 1, memory_order_relaxed);
	inject_answer_error(&a, status, msg);
	return inject_send(conn, status, a.a_json, status == 503, status == 401);
}

/* The client's address as text, and whether relay_networks has it. */
static bool inject_client(struct inject *inj, struct MHD_Connection *conn, char *addr,
			  size_t cap)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci != NULL ? ci->client_addr : NULL;
	const struct config *cfg;

	snprintf(addr, cap, "unknown");
	if (sa == NULL)
		return false;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, addr, (socklen_t)cap);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, addr,
			  (socklen_t)cap);
	inject_settings(inj, &cfg, NULL, NULL);
	return netacl_match(cfg->relay_networks, sa);
}

void inject_settings(const struct inject *inj, const struct config **cfg_r,
		     const struct auth_db **auth_r, struct work_pool **pool_r)
{
	const struct config *cfg = inj->i_env.ie_cfg;
	const struct auth_db *auth = inj->i_env.ie_auth;
	struct work_pool *pool = inj->i_env.ie_auth_pool;

	if (inj->i_env.ie_settings != NULL)
		inj->i_env.ie_settings(inj->i_env.ie_ctx, &cfg, &auth, &pool);
	if (cfg_r != NULL)
		*cfg_r = cfg;
	if (auth_r != NULL)
		*auth_r = auth;
	if (pool_r != NULL)
		*pool_r = pool;
}

/*
 * HTTP Basic credentials checked as SMTP AUTH PLAIN checks them: the
 * same accounts, the password check in the auth pool (this thread
 * waits). AUTH_R_OK with user filled, AUTH_R_FAIL, or AUTH_R_TEMP.
 */
static int inject_basic(struct inject *inj, const char *user, const char *pass, char *user_r,
			size_t cap)
{
	struct auth_exchange x;
	struct auth_job job;
	struct inject_wait w;
	char plain[600], b64[820];
	size_t ul = strlen(user), pl = strlen(pass), n;
	char out[64];
	const struct auth_db *auth;
	struct work_pool *pool;
	int rc;

	inject_settings(inj, NULL, &auth, &pool);
	if (auth == NULL || ul == 0 || ul > 255 || pl > 255)
		return AUTH_R_FAIL;
	/* PLAIN: authzid NUL authcid NUL password */
	plain[0] = '\0';
	memcpy(plain + 1, user, ul + 1);
	memcpy(plain + 2 + ul, pass, pl);
	n = inject_enc_base64_flat(b64, (const unsigned char *)plain, ul + pl + 2);
	explicit_bzero(plain, sizeof(plain));
	memset(&x, 0, sizeof(x));
	rc = auth_start_deferred(&x, auth, AUTH_MECH_PLAIN, b64, n,
				 (uint64_t)time(NULL), 0, out, sizeof(out));
	explicit_bzero(b64, sizeof(b64));
	if (rc == AUTH_R_VERIFY) {
		if (pool == NULL) {
			auth_exchange_clear(&x);
			return AUTH_R_TEMP;
		}
		inject_wait_init(&w);
		auth_job_init(&job, &x, NULL, NULL);
		job.aj_work.wj_sink = &w.w_jobs;
		if (work_pool_submit(pool, &job.aj_work) < 0) {
			rc = AUTH_R_TEMP;
		} else {
			while (work_sink_take(&w.w_jobs) == NULL)
				inject_wait_sleep(&w);
			rc = auth_job_result(&job);
		}
		inject_wait_destroy(&w);
	}
	if (rc == AUTH_R_OK)
		snprintf(user_r, cap, "%s", x.ax_user);
	auth_exchange_clear(&x);
	return rc == AUTH_R_OK || rc == AUTH_R_TEMP ? rc : AUTH_R_FAIL;
}

/* Who may inject: NULL, or the refusal's status (and *msg_r). */
static unsigned inject_authorize(struct inject *inj, struct MHD_Connection *conn,
				 struct inject_conn *r, const char **msg_r)
{
	bool relay = inject_client(inj, conn, r->r_addr, sizeof(r->r_addr));
	char *pass = NULL;
	char *user = MHD_basic_auth_get_username_password(conn, &pass);
	int rc;

	if (user == NULL) {
		if (relay)
			return 0;
		*msg_r = "authentication required";
		return 401;
	}
	rc = inject_basic(inj, user, pass != NULL ? pass : "", r->r_user, sizeof(r->r_user));
	if (pass != NULL) {
		explicit_bzero(pass, strlen(pass));
		MHD_free(pass);
	}
	if (rc == AUTH_R_OK) {
		MHD_free(user);
		return 0;
	}
	log_msg(LOG_INFO, "auth failed client=%s user=%.64s via=http%s", r->r_addr, user,
		rc == AUTH_R_TEMP ? " (temporary)" : "");
	MHD_free(user);
	*msg_r = rc == AUTH_R_TEMP ? "authentication temporarily unavailable" :
				     "bad credentials";
	return rc == AUTH_R_TEMP ? 503 : 401;
}

static enum MHD_Result inject_handler(void *cls, struct MHD_Connection *conn, const char *url,
				      const char *method, const char *version,
				      const char *upload, size_t *upload_len, void **con_cls)
{
	struct inject *inj = cls;
	struct inject_conn *r = *con_cls;
	struct inject_who who;
	struct inject_answer a;
	const char *msg = NULL;
	unsigned status;

	if (r == NULL) {
		const char *cl;

		if (strcmp(url, INJECT_PATH) != 0)
			return inject_refuse(inj, conn, 404, "not found", &inj->i_r_bad);
		if (strcmp(method, "POST") != 0)
			return inject_refuse(inj, conn, 405, "method not allowed: POST only",
					     &inj->i_r_bad);
		r = calloc(1, sizeof(*r));
		if (r == NULL)
			return MHD_NO;
		*con_cls = r;
		r->r_body.b_max = inj->i_max_body;
		r->r_answered = true;
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
		if (cl != NULL && strtoull(cl, NULL, 10) > inj->i_max_body)
			return inject_refuse(inj, conn, 413, "request too large (http_max_request_size)",
					     &inj->i_r_big);
		status = inject_authorize(inj, conn, r, &msg);
		if (status != 0)
			return inject_refuse(inj, conn, status, msg, status == 503 ?
					     &inj->i_r_unavail : &inj->i_r_auth);
		r->r_answered = false;
		return MHD_YES;
	}
	if (r->r_answered) {
		*upload_len = 0;	/* the refusal is queued; the body is dropped */
		return MHD_YES;
	}
	if (*upload_len > 0) {
		inject_buf_put(&r->r_body, upload, *upload_len);
		*upload_len = 0;
		return MHD_YES;
	}
	r->r_answered = true;
	if (r->r_body.b_over)
		return inject_refuse(inj, conn, 413, "request too large (http_max_request_size)",
				     &inj->i_r_big);
	if (r->r_body.b_oom)
		return inject_refuse(inj, conn, 503, "out of memory", &inj->i_r_unavail);
	who.w_user = r->r_user[0] != '\0' ? r->r_user : NULL;
	who.w_addr = r->r_addr;
	inject_accept(inj, &who, r->r_body.b_p != NULL ? r->r_body.b_p : "", r->r_body.b_len, &a);
	inject_buf_free(&r->r_body);
	atomic_fetch_add_explicit(&inj->i_requests, 1, memory_order_relaxed);
	if (a.a_status == 413)
		atomic_fetch_add_explicit(&inj->i_r_big, 1, memory_order_relaxed);
	else if (a.a_status == 400)
		atomic_fetch_add_explicit(&inj->i_r_bad, 1, memory_order_relaxed);
	else if (a.a_status == 403 || a.a_status == 422)
		atomic_fetch_add_explicit(&inj->i_r_policy, 1, memory_order_relaxed);
	else if (a.a_status >= 500)
		atomic_fetch_add_explicit(&inj->i_r_unavail, 1, memory_order_relaxed);
	return inject_send(conn, a.a_status, a.a_json, a.a_retry, false);
}

static void inject_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			     enum MHD_RequestTerminationCode toe)
{
	struct inject_conn *r = *con_cls;

	if (r == NULL)
		return;
	inject_buf_free(&r->r_body);
	free(r);
	*con_cls = NULL;
}

int inject_start(struct inject **inj_r, const struct inject_env *env, char *err, size_t errlen)
{
	const struct config *cfg = env->ie_cfg;
	/* poll(), not select(): no FD_SETSIZE limit, less work per wait */
	unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_THREAD_PER_CONNECTION |
			 MHD_USE_ERROR_LOG;
	struct sockaddr_storage addr;
	socklen_t alen;
	struct inject *inj;

	*inj_r = NULL;
	inj = calloc(1, sizeof(*inj));
	if (inj == NULL) {
		snprintf(err, errlen, "http_listen: out of memory");
		return -1;
	}
	inj->i_env = *env;
	if (config_addrport_parse(cfg->http_listen, &addr, &alen, err, errlen) < 0) {
		free(inj);
		return -1;
	}
	/* the listener's name as dkim_table and pool_selection compare it */
	snprintf(inj->i_listener, sizeof(inj->i_listener), "%s", cfg->http_listen);
	inj->i_max_body = cfg->http_max_request_size != 0 ? cfg->http_max_request_size :
			  cfg->max_message_size + cfg->max_message_size / 2;
	pthread_mutex_init(&inj->i_id_lock, NULL);
	if (addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	inj->i_daemon = MHD_start_daemon(flags, 0, NULL, NULL, inject_handler, inj,
					 MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
					 MHD_OPTION_CONNECTION_LIMIT, cfg->http_max_connections,
					 MHD_OPTION_CONNECTION_TIMEOUT, 60u,
					 MHD_OPTION_NOTIFY_COMPLETED, inject_completed, inj,
					 MHD_OPTION_END);
	if (inj->i_daemon == NULL) {
		snprintf(err, errlen, "http_listen %s: cannot listen (address in use?)",
			 cfg->http_listen);
		pthread_mutex_destroy(&inj->i_id_lock);
		free(inj);
		return -1;
	}
	log_msg(LOG_INFO, "http injection on %s (POST %s)", cfg->http_listen, INJECT_PATH);
	*inj_r = inj;
	return 0;
}

void inject_stop(struct inject **injp)
{
	struct inject *inj = *injp;

	if (inj == NULL)
		return;
	MHD_stop_daemon(inj->i_daemon);
	pthread_mutex_destroy(&inj->i_id_lock);
	free(inj);
	*injp = NULL;
}

void inject_get_stats(const struct inject *inj, struct inject_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (inj == NULL)
		return;
	st->requests = atomic_load_explicit(&inj->i_requests, memory_order_relaxed);
	st->messages = atomic_load_explicit(&inj->i_messages, memory_order_relaxed);
	st->recipients = atomic_load_explicit(&inj->i_recipients, memory_order_relaxed);
	st->rejected_rcpts = atomic_load_explicit(&inj->i_rejected_rcpts, memory_order_relaxed);
	st->r_auth = atomic_load_explicit(&inj->i_r_auth, memory_order_relaxed);
	st->r_bad_request = atomic_load_explicit(&inj->i_r_bad, memory_order_relaxed);
	st->r_too_big = atomic_load_explicit(&inj->i_r_big, memory_order_relaxed);
	st->r_policy = atomic_load_explicit(&inj->i_r_policy, memory_order_relaxed);
	st->r_unavailable = atomic_load_explicit(&inj->i_r_unavail, memory_order_relaxed);
}
