/*
 * server.c: workers, listeners, connection caps and shutdown. See
 * server.h.
 */
#include "core/app/server.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/base/log.h"
#include "core/sasl/auth.h"
#include "core/dkim/dkim_job.h"
#include "core/dkim/dkim_table.h"
#include "core/config/netacl.h"
#include "core/http/metrics.h"
#include "core/inbound/smtp_server.h"
#include "core/shaping/shp_holder.h"
#include "core/shaping/shp_rules_admin.h"
#include "core/spf/spf_inbound.h"
#include "io/listen.h"
#include "tls/tls.h"

static const struct io_loop_ops server_loop_ops;

static struct smtp_worker *server_worker_of(struct io_loop *loop)
{
	return loop->lp_owner;
}

static struct smtp_worker *server_worker_of_env(struct smtp_env *env)
{
	return (struct smtp_worker *)((char *)env - offsetof(struct smtp_worker, w_env));
}

/* The slot for an address: IPv4 and IPv4-mapped IPv6 hash alike. */
static unsigned server_ip_slot(const struct sockaddr *sa)
{
	const unsigned char *p;
	size_t n;
	uint32_t h = 2166136261u;

	if (sa->sa_family == AF_INET) {
		p = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
		n = 4;
	} else {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		p = a->s6_addr;
		n = 16;
		if (IN6_IS_ADDR_V4MAPPED(a)) {
			p += 12;
			n = 4;
		}
	}
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h & (SERVER_IPTAB_SIZE - 1);
}

struct tls_ctx *server_tls_server(struct server *srv)
{
	struct tls_ctx *c = NULL;

	pthread_mutex_lock(&srv->s_tls_lock);
	if (srv->s_tls_server != NULL)
		c = tls_ctx_ref(srv->s_tls_server);
	pthread_mutex_unlock(&srv->s_tls_lock);
	return c;
}

struct tls_ctx *server_tls_client(struct server *srv)
{
	struct tls_ctx *c = NULL;

	pthread_mutex_lock(&srv->s_tls_lock);
	if (srv->s_tls_client != NULL)
		c = tls_ctx_ref(srv->s_tls_client);
	pthread_mutex_unlock(&srv->s_tls_lock);
	return c;
}

void server_tls_swap(struct server *srv, struct tls_ctx *server_ctx, struct tls_ctx *client_ctx)
{
	struct tls_ctx *old_s, *old_c;

	pthread_mutex_lock(&srv->s_tls_lock);
	old_s = srv->s_tls_server;
	old_c = srv->s_tls_client;
	srv->s_tls_server = server_ctx;
	srv->s_tls_client = client_ctx;
	pthread_mutex_unlock(&srv->s_tls_lock);
	/* Sessions still using the old ones hold their own references. */
	tls_ctx_unref(&old_s);
	tls_ctx_unref(&old_c);
}

void server_dkim_swap(struct server *srv, struct dkim_table *t)
{
	struct dkim_table *old;

	pthread_mutex_lock(&srv->s_dkim_lock);
	old = srv->s_dkim_table;
	srv->s_dkim_table = t;
	pthread_mutex_unlock(&srv->s_dkim_lock);
	/* Jobs still signing with the old one hold their own references. */
	dkim_table_unref(&old);
}

#define SERVER_RULES_ERRLEN 65536u	/* every error of a rules load */

int server_rules_load(const struct config *cfg, struct shp_rules **r_r, char *err, size_t errlen)
{
	const char *files[256];
	char *list, *save = NULL, *tok;
	unsigned n = 0;
	int rc;

	list = strdup(cfg->shaping_rules != NULL ? cfg->shaping_rules : "");
	if (list == NULL) {
		snprintf(err, errlen, "shaping_rules: out of memory");
		return -1;
	}
	for (tok = strtok_r(list, " \t,", &save); tok != NULL; tok = strtok_r(NULL, " \t,", &save)) {
		if (n == sizeof(files) / sizeof(files[0])) {
			snprintf(err, errlen, "shaping_rules: more than %zu files",
				 sizeof(files) / sizeof(files[0]));
			free(list);
			return -1;
		}
		files[n++] = tok;
	}
	rc = shp_rules_load(r_r, cfg->shaping_builtin_rules, files, n, err, errlen);
	free(list);
	return rc;
}

/* Each line of a loader's error text, logged at error. */
static void server_log_lines(const char *prefix, char *text)
{
	char *save = NULL;

	for (char *l = strtok_r(text, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save))
		log_msg(LOG_ERROR, "%s%s", prefix, l);
}

/* At start: load the rules and make the holder, or log every error. */
static int server_rules_start(struct server *srv, const struct config *cfg, char *err,
			      size_t errlen)
{
	struct shp_rules *r = NULL;
	char *buf = malloc(SERVER_RULES_ERRLEN), sum[256];

	if (buf == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (server_rules_load(cfg, &r, buf, SERVER_RULES_ERRLEN) < 0) {
		server_log_lines("shaping rules: ", buf);
		snprintf(err, errlen, "shaping rules: errors above; not starting");
		free(buf);
		return -1;
	}
	free(buf);
	shp_rules_summary(r, sum, sizeof(sum));
	if (shp_holder_new(&srv->s_rules, r) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	log_msg(LOG_INFO, "shaping rules loaded: %s", sum);
	return 0;
}

int server_rules_reload(struct server *srv, const struct config *cfg, char *err, size_t errlen)
{
	struct shp_rules *r = NULL;
	char *buf = malloc(SERVER_RULES_ERRLEN), sum[256];

	if (buf == NULL || srv->s_rules == NULL) {
		snprintf(err, errlen, "%s", buf == NULL ? "out of memory" : "no rules in use");
		free(buf);
		return -1;
	}
	if (server_rules_load(cfg, &r, buf, SERVER_RULES_ERRLEN) < 0) {
		snprintf(err, errlen, "%s", buf);
		server_log_lines("reload: shaping rules: ", buf);
		log_msg(LOG_ERROR, "reload: shaping rules not reloaded (keeping the old rules)");
		free(buf);
		return -1;
	}
	free(buf);
	shp_rules_summary(r, sum, sizeof(sum));
	/* Jobs holding the old rules keep them until they let go. */
	shp_holder_set(srv->s_rules, r);
	log_msg(LOG_INFO, "reload: shaping rules reloaded: %s", sum);
	snprintf(err, errlen, "%s", sum);
	return 0;
}

/* Jobs waiting for room in the signing pool: submit them, in order,
 * until the pool is full again. */
static void server_sign_retry(struct smtp_worker *w)
{
	struct server *srv = w->w_srv;
	struct work_job *j;

	while ((j = w->w_sign_wait) != NULL) {
		struct work_job *next = j->wj_next;

		if (work_pool_submit(srv->s_sign_pool, j) < 0)
			return;
		__atomic_store_n(&w->w_sign_wait, next, __ATOMIC_RELAXED);
		if (next == NULL)
			w->w_sign_wait_tail = NULL;
		atomic_fetch_sub(&srv->s_sign_waiting, 1);
	}
}

/* A signing job came back: there is room. Wake the other workers that
 * have jobs waiting (their own jobs may all be done). */
static void server_sign_room(struct smtp_worker *w)
{
	struct server *srv = w->w_srv;

	server_sign_retry(w);
	if (atomic_load(&srv->s_sign_waiting) == 0)
		return;
	for (unsigned i = 0; i < srv->s_nworkers; i++) {
		struct smtp_worker *o = &srv->s_workers[i];

		/* w_sign_wait is another thread's: only whether it is set */
		if (o != w && __atomic_load_n(&o->w_sign_wait, __ATOMIC_RELAXED) != NULL)
			io_loop_wake(&o->w_loop);
	}
}

#define SERVER_AUTH_WINDOW 300u

static bool server_auth_blocked(struct smtp_env *env, const struct sockaddr *peer, uint64_t now)
{
	struct server *srv = server_worker_of_env(env)->w_srv;
	unsigned slot = server_ip_slot(peer);

	if (now - atomic_load(&srv->s_authfail_since[slot]) >= SERVER_AUTH_WINDOW)
		return false;
	return atomic_load(&srv->s_authfail[slot]) >= env->e_cfg->auth_max_failures;
}

static void server_auth_failed(struct smtp_env *env, const struct sockaddr *peer, uint64_t now)
{
	struct server *srv = server_worker_of_env(env)->w_srv;
	unsigned slot = server_ip_slot(peer);

	if (now - atomic_load(&srv->s_authfail_since[slot]) >= SERVER_AUTH_WINDOW) {
		atomic_store(&srv->s_authfail_since[slot], (unsigned)now);
		atomic_store(&srv->s_authfail[slot], 1);
		return;
	}
	atomic_fetch_add(&srv->s_authfail[slot], 1);
}

/* A session ended (or never started): release its caps. Every session
 * counts in its address's slot, capped or not, so that a reload that
 * changes the cap or relay_networks never unbalances the counts. */
static void server_session_gone(struct smtp_worker *w, const struct sockaddr *peer)
{
	struct server *srv = w->w_srv;

	atomic_fetch_sub(&srv->s_conns, 1);
	atomic_fetch_sub(&srv->s_iptab[server_ip_slot(peer)], 1);
}

/* The newest settings, adopted on the worker's thread between callbacks
 * (server.h, struct server_gen): its sessions and services read them from
 * now on. One atomic load when nothing changed. */
static void server_worker_adopt(struct smtp_worker *w)
{
	const struct server_gen *g = atomic_load_explicit(&w->w_srv->s_gen,
							  memory_order_acquire);

	if (g == w->w_gen)
		return;
	w->w_gen = g;
	w->w_env.e_cfg = g->g_cfg;
	w->w_env.e_auth = g->g_auth;
	for (unsigned i = 0; i < w->w_nservices; i++)
		if (w->w_services[i].sv_ops->on_config != NULL)
			w->w_services[i].sv_ops->on_config(w->w_services[i].sv_ctx, g->g_cfg);
	atomic_store_explicit(&w->w_gen_seen, g->g_seq, memory_order_release);
}

static void server_refuse(int fd, const char *reply)
{
	(void)!write(fd, reply, strlen(reply));
	close(fd);
}

static void server_on_accept(struct io_loop *loop, struct io_listener *l, int fd)
{
	struct smtp_worker *w = server_worker_of(loop);
	struct server *srv = w->w_srv;
	const struct config *cfg;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char reply[300];
	int one = 1;

	if (w->w_env.e_stopping || getpeername(fd, (struct sockaddr *)&ss, &len) < 0) {
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	server_worker_adopt(w);		/* a new session sees the newest settings */
	cfg = w->w_env.e_cfg;
	if (atomic_fetch_add(&srv->s_conns, 1) >= cfg->max_connections) {
		atomic_fetch_sub(&srv->s_conns, 1);
		stat_inc(&w->w_refused);
		snprintf(reply, sizeof(reply), "421 4.7.0 %s Error: too many connections\r\n",
			 cfg->hostname);
		server_refuse(fd, reply);
		return;
	}
	/* Exempt from the per-address cap, as Postfix exempts $mynetworks. */
	atomic_ushort *slot = &srv->s_iptab[server_ip_slot((struct sockaddr *)&ss)];

	if (atomic_fetch_add(slot, 1) >= cfg->max_connections_per_ip &&
	    cfg->max_connections_per_ip > 0 &&
	    !netacl_match(cfg->relay_networks, (struct sockaddr *)&ss)) {
		atomic_fetch_sub(slot, 1);
		atomic_fetch_sub(&srv->s_conns, 1);
		stat_inc(&w->w_refused);
		snprintf(reply, sizeof(reply),
			 "421 4.7.0 %s Error: too many connections from your address\r\n",
			 cfg->hostname);
		server_refuse(fd, reply);
		return;
	}
	stat_inc(&w->w_accepted[l->il_index]);
	if (smtp_server_start(&w->w_env, fd, (struct sockaddr *)&ss, len, l->il_index) == NULL) {
		server_session_gone(w, (struct sockaddr *)&ss);
		server_refuse(fd, "421 4.3.0 Out of memory\r\n");
	}
}

/* Ask every service to wind down; true when all of them are idle. */
static bool server_services_quiesce(struct smtp_worker *w)
{
	bool idle = true;

	for (unsigned i = 0; i < w->w_nservices; i++)
		if (!w->w_services[i].sv_ops->quiesce(w->w_services[i].sv_ctx))
			idle = false;
	return idle;
}

static void server_begin_stop(struct smtp_worker *w)
{
	w->w_env.e_stopping = true;
	io_loop_unlisten(&w->w_loop);
	(void)server_services_quiesce(w);
	smtp_server_shutdown_all(&w->w_env, false);
}

static void server_check_done(struct smtp_worker *w)
{
	if (!w->w_env.e_stopping || w->w_env.e_nsessions != 0)
		return;
	if (!server_services_quiesce(w))
		return;
	io_loop_stop(&w->w_loop);
}

static void server_on_wake(struct io_loop *loop)
{
	struct smtp_worker *w = server_worker_of(loop);
	struct queue_msg *m, *next;
	struct work_job *j, *jnext;

	server_worker_adopt(w);
	for (m = queue_sink_take(&w->w_sink); m != NULL; m = next) {
		next = m->qm_next;
		smtp_server_committed(m);
	}
	bool signed_back = false;

	for (j = work_sink_take(&w->w_jobs); j != NULL; j = jnext) {
		jnext = j->wj_next;
		if (j->wj_run == dkim_job_run)
			signed_back = true;
		j->wj_done(j);
	}
	/* Only a job that came back wakes the others: woken workers just
	 * retry their own, so two waiting workers never wake each other. */
	if (signed_back)
		server_sign_room(w);
	else if (w->w_sign_wait != NULL)
		server_sign_retry(w);
	for (unsigned i = 0; i < w->w_nservices; i++)
		w->w_services[i].sv_ops->on_wake(w->w_services[i].sv_ctx);
	if (!w->w_env.e_stopping && atomic_load(&w->w_srv->s_stopping))
		server_begin_stop(w);
	server_check_done(w);
}

static void server_on_tick(struct io_loop *loop, uint64_t now)
{
	struct smtp_worker *w = server_worker_of(loop);

	server_worker_adopt(w);
	for (unsigned i = 0; i < w->w_nservices; i++)
		w->w_services[i].sv_ops->on_tick(w->w_services[i].sv_ctx, now);
	if (w->w_sign_wait != NULL)
		server_sign_retry(w);	/* never stuck, should a wake be missed */
	if (w->w_env.e_stopping && now >= w->w_srv->s_stop_deadline) {
		smtp_server_shutdown_all(&w->w_env, true);
		for (unsigned i = 0; i < w->w_nservices; i++)
			w->w_services[i].sv_ops->abort(w->w_services[i].sv_ctx);
	}
	server_check_done(w);
}

static const struct io_loop_ops server_loop_ops = {
	.on_accept = server_on_accept,
	.on_wake = server_on_wake,
	.on_tick = server_on_tick,
};

static void server_sink_notify(void *ctx)
{
	io_loop_wake(ctx);
}

static void *server_worker_main(void *arg)
{
	struct smtp_worker *w = arg;
	char name[16];
	int ret;

	snprintf(name, sizeof(name), "rm-worker%u", w->w_id);
	pthread_setname_np(pthread_self(), name);	/* top -H, bench/threadcs.py */
	ret = io_loop_run(&w->w_loop);
	if (ret < 0)
		log_msg(LOG_ERROR, "worker %u: event loop failed: %s", w->w_id, strerror(-ret));
	return NULL;
}

uint64_t server_next_id(struct smtp_worker *w)
{
	struct timeval tv;
	uint64_t us;

	gettimeofday(&tv, NULL);
	us = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
	if (us <= w->w_last_us)
		us = w->w_last_us + 1;
	w->w_last_us = us;
	return (us << 8) | (w->w_id & 0xffu);
}

/* The current date in RFC 5322 form (cached per second). */
static const char *server_date(struct smtp_worker *w)
{
	time_t now = time(NULL);
	struct tm tm;

	if (now != w->w_date_sec) {
		gmtime_r(&now, &tm);
		strftime(w->w_date, sizeof(w->w_date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
		w->w_date_sec = now;
	}
	return w->w_date;
}

/* The session environment's ops (smtp_env.h), on the worker's thread. */
static void server_env_submit(struct smtp_env *env, struct queue_msg *m)
{
	struct smtp_worker *w = server_worker_of_env(env);

	m->qm_sink = &w->w_sink;
	queue_submit(w->w_srv->s_queue, m);
}

static int server_env_auth_submit(struct smtp_env *env, struct work_job *j)
{
	struct smtp_worker *w = server_worker_of_env(env);
	/* A reload may start the pool while the workers run. */
	struct work_pool *pool = __atomic_load_n(&w->w_srv->s_auth_pool, __ATOMIC_ACQUIRE);

	if (pool == NULL)
		return -EAGAIN;
	j->wj_sink = &w->w_jobs;
	return work_pool_submit(pool, j);
}

/* spf_inbound: the SPF pool and its checker (server_spf_start). */
static int server_env_spf_submit(struct smtp_env *env, struct work_job *j)
{
	struct smtp_worker *w = server_worker_of_env(env);

	if (w->w_srv->s_spf_pool == NULL)
		return -EAGAIN;
	j->wj_sink = &w->w_jobs;
	((struct spf_job *)j)->sj_spf = w->w_srv->s_spf;
	return work_pool_submit(w->w_srv->s_spf_pool, j);
}

/* SPF lookups wait on DNS, not on a CPU: more threads than workers. */
static int server_spf_start(struct server *srv, const struct config *cfg, char *err,
			    size_t errlen)
{
	unsigned n = srv->s_nworkers * 4;

	if (config_spf_inbound_parse(cfg->spf_inbound) <= CONFIG_SPF_NONE)
		return 0;
	spf_lib_init();
	if (spf_new(&srv->s_spf, cfg->dns_servers, cfg->hostname, 2000, err, errlen) < 0)
		return -1;
	return work_pool_start(&srv->s_spf_pool, "spf", n < 4 ? 4 : n > 32 ? 32 : n, 1024, err,
			       errlen);
}

static struct dkim_table *server_env_sign_table(struct smtp_env *env)
{
	return server_dkim_table(server_worker_of_env(env)->w_srv);
}

struct dkim_table *server_dkim_table(struct server *srv)
{
	struct dkim_table *t = NULL;

	if (srv->s_sign_pool == NULL)
		return NULL;
	pthread_mutex_lock(&srv->s_dkim_lock);
	if (srv->s_dkim_table != NULL)
		t = dkim_table_ref(srv->s_dkim_table);
	pthread_mutex_unlock(&srv->s_dkim_lock);
	return t;
}

/* Never refuses once the pool runs: a job the pool cannot take now waits
 * in the worker's list, and its session waits for it (back-pressure). */
static int server_env_sign_submit(struct smtp_env *env, struct work_job *j)
{
	struct smtp_worker *w = server_worker_of_env(env);
	struct server *srv = w->w_srv;

	if (srv->s_sign_pool == NULL)
		return -EAGAIN;
	j->wj_sink = &w->w_jobs;
	j->wj_next = NULL;
	if (w->w_sign_wait == NULL && work_pool_submit(srv->s_sign_pool, j) == 0)
		return 0;
	if (w->w_sign_wait_tail != NULL)
		w->w_sign_wait_tail->wj_next = j;
	else
		__atomic_store_n(&w->w_sign_wait, j, __ATOMIC_RELAXED);
	w->w_sign_wait_tail = j;
	atomic_fetch_add(&srv->s_sign_waiting, 1);
	return 0;
}

static uint64_t server_env_next_id(struct smtp_env *env)
{
	return server_next_id(server_worker_of_env(env));
}

static const char *server_env_date(struct smtp_env *env)
{
	return server_date(server_worker_of_env(env));
}

static bool server_env_tls_offered(struct smtp_env *env)
{
	/* Only whether there is one: no reference, no lock. */
	return server_worker_of_env(env)->w_srv->s_tls_server != NULL;
}

static struct tls_ctx *server_env_tls_server(struct smtp_env *env)
{
	return server_tls_server(server_worker_of_env(env)->w_srv);
}

static void server_env_session_gone(struct smtp_env *env, const struct sockaddr *peer)
{
	server_session_gone(server_worker_of_env(env), peer);
}

static int server_env_suppressed(struct smtp_env *env, const char *sender_domain,
				 const char *rcpt, size_t len, struct queue_suppress *hit_r)
{
	return queue_suppress_lookup(server_worker_of_env(env)->w_srv->s_queue, sender_domain,
				     rcpt, len, (uint64_t)time(NULL), hit_r);
}

static const struct smtp_env_ops server_env_ops = {
	.submit = server_env_submit,
	.auth_submit = server_env_auth_submit,
	.spf_submit = server_env_spf_submit,
	.sign_table = server_env_sign_table,
	.sign_submit = server_env_sign_submit,
	.next_id = server_env_next_id,
	.date = server_env_date,
	.tls_offered = server_env_tls_offered,
	.tls_server = server_env_tls_server,
	.auth_blocked = server_auth_blocked,
	.auth_failed = server_auth_failed,
	.session_gone = server_env_session_gone,
	.suppressed = server_env_suppressed,
};

/* The listening sockets of one worker, one per configured address. */
static int server_worker_listen(struct smtp_worker *w, const struct config *cfg,
				char *err, size_t errlen)
{
	int fds[CONFIG_LISTEN_MAX];
	char addr[80];

	for (unsigned i = 0; i < cfg->listen_count; i++) {
		const struct config_listen *cl = &cfg->listen[i];

		fds[i] = io_listen_open((const struct sockaddr *)&cl->cl_addr, cl->cl_addrlen,
					(int)cfg->listen_backlog);
		if (fds[i] < 0) {
			snprintf(err, errlen, "listen %s: %s",
				 io_sockaddr_str((const struct sockaddr *)&cl->cl_addr, addr,
						 sizeof(addr)), strerror(-fds[i]));
			while (i-- > 0)
				close(fds[i]);
			return -1;
		}
	}
	return io_loop_listen(&w->w_loop, fds, cfg->listen_count);
}

/* Each worker's file table holds up to max_connections sessions (the
 * kernel caps a table at RLIMIT_NOFILE), so sessions need no descriptors. */
static unsigned server_fixed_files(const struct config *cfg)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 0;
	return rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < cfg->max_connections ?
	       (unsigned)rl.rlim_cur : cfg->max_connections;
}

int server_init(struct server *srv, const struct config *cfg, struct queue *q,
		char *err, size_t errlen)
{
	struct io_loop_params p = {
		.entries = 4096,
		.buf_size = cfg->recv_buffer_size,
		.buf_max = cfg->recv_buffers_max,
		/* At most a quarter of the pool in the ring: the rest is for what
		 * owners keep (up to half, see bufpool_low) and for decrypted
		 * TLS input (bufpool_alloc), even when the pool is small. */
		.buf_target = cfg->recv_buffers_max / 4 < 256 ? cfg->recv_buffers_max / 4 : 256,
		.fixed_files = server_fixed_files(cfg),
	};
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t base_us = queue_last_id(q) >> 8;
	int ret;

	struct tls_ctx *tls_s = srv->s_tls_server, *tls_c = srv->s_tls_client;
	struct auth_db *adb = srv->s_auth;
	struct dkim_table *dkt = srv->s_dkim_table;
	struct events *ev = srv->s_events;

	/* The caller may have set TLS contexts, the AUTH db and the events
	 * already. */
	memset(srv, 0, sizeof(*srv));
	srv->s_events = ev;
	srv->s_tls_server = tls_s;
	srv->s_tls_client = tls_c;
	srv->s_auth = adb;
	srv->s_dkim_table = dkt;
	pthread_mutex_init(&srv->s_dkim_lock, NULL);
	srv->s_cfg = cfg;
	srv->s_queue = q;
	/* Before anything starts: a rules error refuses to start. */
	if (server_rules_start(srv, cfg, err, errlen) < 0)
		return -1;
	srv->s_nworkers = cfg->workers ? cfg->workers : (unsigned)(ncpu > 0 ? ncpu : 1);
	/* The low octet of a queue id names its maker: a worker, or 0xfe
	 * (the admin API's DSNs) and 0xff (HTTP injection). */
	if (srv->s_nworkers > SERVER_WORKERS_MAX)
		srv->s_nworkers = SERVER_WORKERS_MAX;
	srv->s_workers = calloc(srv->s_nworkers, sizeof(*srv->s_workers));
	srv->s_iptab = calloc(SERVER_IPTAB_SIZE, sizeof(*srv->s_iptab));
	srv->s_authfail = calloc(SERVER_IPTAB_SIZE, sizeof(*srv->s_authfail));
	srv->s_authfail_since = calloc(SERVER_IPTAB_SIZE, sizeof(*srv->s_authfail_since));
	pthread_mutex_init(&srv->s_tls_lock, NULL);
	if (srv->s_workers == NULL || srv->s_iptab == NULL || srv->s_authfail == NULL ||
	    srv->s_authfail_since == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (unsigned i = 0; i < srv->s_nworkers; i++) {
		struct smtp_worker *w = &srv->s_workers[i];

		w->w_srv = srv;
		w->w_id = i;
		w->w_last_us = base_us;
		ret = io_loop_init(&w->w_loop, &p, &server_loop_ops, w);
		if (ret < 0) {
			snprintf(err, errlen, "worker %u: io_uring setup: %s", i, strerror(-ret));
			srv->s_nworkers = i;
			return -1;
		}
		w->w_env.e_ops = &server_env_ops;
		w->w_env.e_cfg = cfg;	/* the start-up generation's, made below */
		w->w_env.e_auth = srv->s_auth;
		w->w_env.e_loop = &w->w_loop;
		w->w_env.e_bufs = &w->w_loop.lp_bufs;
		w->w_env.e_rules = srv->s_rules;
		w->w_env.e_events = srv->s_events;
		queue_sink_init(&w->w_sink, server_sink_notify, &w->w_loop);
		work_sink_init(&w->w_jobs, server_sink_notify, &w->w_loop);
		if (server_worker_listen(w, cfg, err, errlen) < 0) {
			srv->s_nworkers = i + 1;
			return -1;
		}
	}
	if (srv->s_auth != NULL && server_auth_pool_start(srv, err, errlen) < 0)
		return -1;
	if (server_spf_start(srv, cfg, err, errlen) < 0)
		return -1;
	/* DKIM signatures too; a few queued jobs per thread, so that a burst
	 * keeps the threads busy while back-pressure reaches the clients. */
	if (srv->s_dkim_table != NULL) {
		unsigned n = cfg->dkim_sign_threads ? cfg->dkim_sign_threads :
			     (unsigned)(ncpu > 0 ? ncpu : 1);

		if (work_pool_start(&srv->s_sign_pool, "dkim", n, 4 * n, err, errlen) < 0)
			return -1;
	}
	/* Last, so that a failed start leaves nothing more to free. The
	 * workers adopt it (the same settings) at their first callback. */
	srv->s_gen = calloc(1, sizeof(struct server_gen));
	if (srv->s_gen == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	srv->s_gen->g_cfg = cfg;
	srv->s_gen->g_auth = adb;
	return 0;
}

struct io_loop *server_worker_loop(struct server *srv, unsigned i)
{
	return &srv->s_workers[i].w_loop;
}

int server_attach(struct server *srv, unsigned i, const struct server_service_ops *ops,
		  void *ctx)
{
	struct smtp_worker *w = &srv->s_workers[i];

	if (w->w_nservices == SERVER_SERVICES_MAX)
		return -1;
	w->w_services[w->w_nservices].sv_ops = ops;
	w->w_services[w->w_nservices].sv_ctx = ctx;
	w->w_nservices++;
	return 0;
}

int server_run(struct server *srv, char *err, size_t errlen)
{
	int ret;

	for (unsigned i = 0; i < srv->s_nworkers; i++) {
		struct smtp_worker *w = &srv->s_workers[i];

		ret = pthread_create(&w->w_thread, NULL, server_worker_main, w);
		if (ret != 0) {
			snprintf(err, errlen, "worker thread: %s", strerror(ret));
			return -1;
		}
		w->w_thread_started = true;
	}
	return 0;
}

void server_stop(struct server *srv)
{
	srv->s_stop_deadline = io_loop_now() + srv->s_cfg->shutdown_timeout;
	atomic_store(&srv->s_stopping, true);
	for (unsigned i = 0; i < srv->s_nworkers; i++)
		io_loop_wake(&srv->s_workers[i].w_loop);
}

void server_join(struct server *srv)
{
	for (unsigned i = 0; i < srv->s_nworkers; i++)
		if (srv->s_workers[i].w_thread_started)
			pthread_join(srv->s_workers[i].w_thread, NULL);
}

void server_destroy(struct server *srv)
{
	/* Checks still running belong to sessions that are gone: let them
	 * finish, then free what came back. */
	work_pool_stop(&srv->s_auth_pool);
	work_pool_stop(&srv->s_spf_pool);
	work_pool_stop(&srv->s_sign_pool);
	for (unsigned i = 0; i < srv->s_nworkers; i++) {
		struct work_job *j, *next;

		for (j = srv->s_workers[i].w_sign_wait; j != NULL; j = next) {
			next = j->wj_next;
			j->wj_cancelled = true;
			j->wj_owner = NULL;
			j->wj_done(j);
		}
		srv->s_workers[i].w_sign_wait = srv->s_workers[i].w_sign_wait_tail = NULL;

		for (j = work_sink_take(&srv->s_workers[i].w_jobs); j != NULL; j = next) {
			next = j->wj_next;
			j->wj_owner = NULL;	/* no session waits any more */
			j->wj_done(j);
		}
		work_sink_destroy(&srv->s_workers[i].w_jobs);
	}
	spf_free(&srv->s_spf);
	for (unsigned i = 0; i < srv->s_nworkers; i++) {
		struct smtp_worker *w = &srv->s_workers[i];

		for (unsigned k = 0; k < w->w_nservices; k++)
			w->w_services[k].sv_ops->destroy(w->w_services[k].sv_ctx);
		w->w_nservices = 0;
		io_loop_destroy(&srv->s_workers[i].w_loop);
		queue_sink_destroy(&srv->s_workers[i].w_sink);
	}
	free(srv->s_workers);
	free(srv->s_iptab);
	free(srv->s_authfail);
	free(srv->s_authfail_since);
	srv->s_workers = NULL;
	srv->s_iptab = NULL;
	server_tls_swap(srv, NULL, NULL);
	pthread_mutex_destroy(&srv->s_tls_lock);
	dkim_table_unref(&srv->s_dkim_table);
	pthread_mutex_destroy(&srv->s_dkim_lock);
	shp_holder_free(&srv->s_rules);
	for (struct server_gen *g = atomic_load(&srv->s_gen), *prev; g != NULL; g = prev) {
		prev = g->g_prev;
		if (g->g_own_cfg != NULL) {
			config_free(g->g_own_cfg);
			free(g->g_own_cfg);
		}
		auth_db_free(&g->g_own_auth);
		free(g);
	}
	atomic_store(&srv->s_gen, NULL);
}
