/*
 * admin.c: the admin API's listener (libmicrohttpd, a small thread pool):
 * authentication, routing, bounded request bodies, JSON replies. See
 * admin.h. Per connection it owns one struct admin_conn, freed when
 * libmicrohttpd reports the request complete.
 */
#include "core/admin/admin_internal.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <openssl/mem.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/log.h"
#include "core/events/events.h"

#define ADMIN_THREADS 4u
#define ADMIN_CONN_LIMIT 64u
#define ADMIN_IDLE_TIMEOUT 10u		/* seconds without progress */

struct admin_conn {
	const struct admin_route *ac_route;
	struct events *ac_events;	/* the listener's (ad_events) */
	char *ac_body;
	size_t ac_len, ac_cap;
	bool ac_too_large;
};

int admin_route_add(struct admin *a, const char *method, const char *path_prefix,
		    unsigned flags, size_t body_max, admin_handler h, void *ctx)
{
	if (a->ad_started)
		return -1;
	return admin_router_add(&a->ad_router, method, path_prefix, flags, body_max, h, ctx);
}

void *admin_alloc(struct admin *a, size_t size)
{
	struct admin_owned *o;

	if (a->ad_started)
		return NULL;
	o = calloc(1, sizeof(*o) + size);
	if (o == NULL)
		return NULL;
	o->ao_next = a->ad_owned;
	a->ad_owned = o;
	return o->ao_data;
}

const char *admin_req_arg(const struct admin_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->ar_conn, MHD_GET_ARGUMENT_KIND, name);
}

struct admin_args_walk {
	int (*fn)(void *ctx, const char *name, const char *value);
	void *ctx;
	int rc;
};

static enum MHD_Result admin_args_one(void *cls, enum MHD_ValueKind kind, const char *key,
				      const char *value)
{
	struct admin_args_walk *w = cls;

	w->rc = w->fn(w->ctx, key, value != NULL ? value : "");
	return w->rc != 0 ? MHD_NO : MHD_YES;
}

int admin_req_args(const struct admin_req *req,
		   int (*fn)(void *ctx, const char *name, const char *value), void *ctx)
{
	struct admin_args_walk w = { .fn = fn, .ctx = ctx, .rc = 0 };

	MHD_get_connection_values(req->ar_conn, MHD_GET_ARGUMENT_KIND, admin_args_one, &w);
	return w.rc;
}

json_t *admin_json_text(const char *s)
{
	size_t n = strlen(s);
	json_t *j = json_stringn(s, n);
	char *copy;

	if (j != NULL)
		return j;
	/* Not UTF-8 (user input quoted back): octets past ASCII become '?'. */
	copy = strdup(s);
	if (copy == NULL)
		return json_null();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)copy[i] >= 0x80)
			copy[i] = '?';
	j = json_stringn(copy, n);
	free(copy);
	return j != NULL ? j : json_null();
}

void admin_reply_error(struct admin_reply *rep, unsigned status, const char *error,
		       const char *detail_fmt, ...)
{
	char detail[512];
	va_list ap;

	json_decref(rep->json);
	free(rep->raw);
	memset(rep, 0, sizeof(*rep));
	rep->status = status;
	rep->json = json_object();
	json_object_set_new(rep->json, "error", json_string(error));
	if (detail_fmt != NULL) {
		va_start(ap, detail_fmt);
		vsnprintf(detail, sizeof(detail), detail_fmt, ap);
		va_end(ap);
		json_object_set_new(rep->json, "detail", admin_json_text(detail));
	}
}

static enum MHD_Result admin_send(struct MHD_Connection *conn, struct admin_reply *rep)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char *text = NULL;
	size_t len = 0;
	const char *type = "application/json";

	if (rep->raw != NULL) {
		text = rep->raw;
		len = rep->raw_len;
		type = rep->raw_type != NULL ? rep->raw_type : "application/octet-stream";
		rep->raw = NULL;
	} else {
		if (rep->json == NULL)
			rep->json = json_object();
		text = json_dumps(rep->json, JSON_COMPACT);
		if (text == NULL) {
			admin_reply_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", NULL);
			text = json_dumps(rep->json, JSON_COMPACT);
		}
		if (text == NULL)
			return MHD_NO;
		len = strlen(text);
	}
	json_decref(rep->json);
	rep->json = NULL;
	resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", type);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	ret = MHD_queue_response(conn, rep->status != 0 ? rep->status : MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result admin_send_error(struct MHD_Connection *conn, unsigned status,
					const char *error, const char *detail)
{
	struct admin_reply rep = { 0 };

	admin_reply_error(&rep, status, error, detail != NULL ? "%s" : NULL, detail);
	return admin_send(conn, &rep);
}

/* The first call for a request: who asks, for what, and how much. */
static enum MHD_Result admin_begin(struct admin *a, struct MHD_Connection *conn,
				   const char *url, const char *method, void **con_cls)
{
	const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						       MHD_HTTP_HEADER_AUTHORIZATION);
	const char *clen = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						       MHD_HTTP_HEADER_CONTENT_LENGTH);
	const struct admin_route *rt;
	struct admin_conn *ac;

	if (!admin_tokens_check(admin_tokens_current(a), auth)) {
		struct admin_reply rep = { 0 };
		struct MHD_Response *resp;
		char *text;
		enum MHD_Result ret;

		admin_reply_error(&rep, MHD_HTTP_UNAUTHORIZED, "unauthorized",
				  auth == NULL ? "an Authorization: Bearer token is required"
				  : "the bearer token is not valid");
		text = json_dumps(rep.json, JSON_COMPACT);
		json_decref(rep.json);
		if (text == NULL)
			return MHD_NO;
		resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
		if (resp == NULL) {
			free(text);
			return MHD_NO;
		}
		MHD_add_response_header(resp, "Content-Type", "application/json");
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
		ret = MHD_queue_response(conn, MHD_HTTP_UNAUTHORIZED, resp);
		MHD_destroy_response(resp);
		return ret;
	}
	switch (admin_router_match(&a->ad_router, method, url, &rt)) {
	case ADMIN_MATCH_NO_PATH:
		return admin_send_error(conn, MHD_HTTP_NOT_FOUND, "not found", url);
	case ADMIN_MATCH_NO_METHOD:
		return admin_send_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed",
					method);
	case ADMIN_MATCH_OK:
		break;
	}
	if (clen != NULL && strtoull(clen, NULL, 10) > rt->rt_body_max) {
		char d[96];

		snprintf(d, sizeof(d), "the body is limited to %zu bytes", rt->rt_body_max);
		return admin_send_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large", d);
	}
	ac = calloc(1, sizeof(*ac));
	if (ac == NULL)
		return MHD_NO;
	ac->ac_route = rt;
	ac->ac_events = a->ad_events;
	*con_cls = ac;
	return MHD_YES;
}

static void admin_take_body(struct admin_conn *ac, const char *data, size_t n)
{
	size_t max = ac->ac_route->rt_body_max;

	if (ac->ac_too_large)
		return;
	if (n > max - ac->ac_len) {
		ac->ac_too_large = true;	/* read on, keep nothing */
		free(ac->ac_body);
		ac->ac_body = NULL;
		ac->ac_len = ac->ac_cap = 0;
		return;
	}
	if (ac->ac_len + n + 1 > ac->ac_cap) {
		size_t cap = ac->ac_cap ? ac->ac_cap : 4096;
		char *p;

		while (cap < ac->ac_len + n + 1)
			cap *= 2;
		if (cap > max + 1)
			cap = max + 1;
		p = realloc(ac->ac_body, cap);
		if (p == NULL) {
			ac->ac_too_large = true;
			return;
		}
		ac->ac_body = p;
		ac->ac_cap = cap;
	}
	memcpy(ac->ac_body + ac->ac_len, data, n);
	ac->ac_len += n;
	ac->ac_body[ac->ac_len] = '\0';
}

/* An admin action that changed something, as an event (core/events). */
static void admin_event(const struct admin_conn *ac, const struct admin_req *req,
			const struct admin_reply *rep)
{
	unsigned status = rep->status != 0 ? rep->status : 200;
	char action[160], *detail = NULL, *result = NULL;

	if (!events_on(ac->ac_events) || strcmp(req->ar_method, "GET") == 0 ||
	    strcmp(req->ar_method, "HEAD") == 0 || status < 200 || status > 299)
		return;
	snprintf(action, sizeof(action), "%s %s", req->ar_method, req->ar_path);
	if (req->ar_json != NULL)
		detail = json_dumps(req->ar_json, JSON_COMPACT);
	if (rep->json != NULL)
		result = json_dumps(rep->json, JSON_COMPACT);
	event_admin(ac->ac_events, action, detail, result);
	free(detail);
	free(result);
}

void admin_set_events(struct admin *a, struct events *ev)
{
	a->ad_events = ev;
}

static enum MHD_Result admin_run(struct MHD_Connection *conn, struct admin_conn *ac,
				 const char *url, const char *method)
{
	const struct admin_route *rt = ac->ac_route;
	struct admin_reply rep = { 0 };
	struct admin_req req = {
		.ar_method = method, .ar_path = url, .ar_rest = url + rt->rt_prefix_len,
		.ar_body = ac->ac_body != NULL ? ac->ac_body : "", .ar_body_len = ac->ac_len,
		.ar_conn = conn,
	};
	enum MHD_Result ret;

	if (rt->rt_prefix_len == 1)
		req.ar_rest = url;	/* the route for "/" */
	if (ac->ac_too_large) {
		char d[96];

		snprintf(d, sizeof(d), "the body is limited to %zu bytes", rt->rt_body_max);
		return admin_send_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large", d);
	}
	if ((rt->rt_flags & ADMIN_ROUTE_JSON) && ac->ac_len > 0) {
		json_error_t jerr;

		req.ar_json = json_loadb(ac->ac_body, ac->ac_len, JSON_REJECT_DUPLICATES, &jerr);
		if (req.ar_json == NULL || !json_is_object(req.ar_json)) {
			char d[256];

			if (req.ar_json == NULL)
				snprintf(d, sizeof(d), "line %d column %d: %s", jerr.line,
					 jerr.column, jerr.text);
			else
				snprintf(d, sizeof(d), "the body must be a JSON object");
			json_decref(req.ar_json);
			return admin_send_error(conn, MHD_HTTP_BAD_REQUEST, "bad JSON", d);
		}
	}
	rt->rt_handler(rt->rt_ctx, &req, &rep);
	admin_event(ac, &req, &rep);
	json_decref(req.ar_json);
	ret = admin_send(conn, &rep);
	return ret;
}

static enum MHD_Result admin_handler_mhd(void *cls, struct MHD_Connection *conn,
					 const char *url, const char *method,
					 const char *version, const char *upload_data,
					 size_t *upload_data_size, void **con_cls)
{
	struct admin *a = cls;
	struct admin_conn *ac = *con_cls;

	if (ac == NULL)
		return admin_begin(a, conn, url, method, con_cls);
	if (*upload_data_size > 0) {
		admin_take_body(ac, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	return admin_run(conn, ac, url, method);
}

static void admin_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			    enum MHD_RequestTerminationCode toe)
{
	struct admin_conn *ac = *con_cls;

	if (ac == NULL)
		return;
	free(ac->ac_body);
	free(ac);
	*con_cls = NULL;
}

int admin_create(struct admin **a_r, const struct config *cfg, char *err, size_t errlen)
{
	struct admin *a;
	socklen_t alen;

	*a_r = NULL;
	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		snprintf(err, errlen, "admin: out of memory");
		return -1;
	}
	a->ad_cfg = cfg;
	if (config_addrport_parse(cfg->admin_listen, &a->ad_addr, &alen, err, errlen) < 0 ||
	    (cfg->admin_token_file[0] != '\0' &&
	     admin_tokens_load(&a->ad_tokens, cfg->admin_token_file, err, errlen) < 0)) {
		free(a);
		return -1;
	}
	atomic_init(&a->ad_tokens_cur, &a->ad_tokens);
	*a_r = a;
	return 0;
}

int admin_start(struct admin *a, char *err, size_t errlen)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	unsigned port;

	if (a->ad_addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	port = ntohs(a->ad_addr.ss_family == AF_INET6 ?
		     ((struct sockaddr_in6 *)&a->ad_addr)->sin6_port :
		     ((struct sockaddr_in *)&a->ad_addr)->sin_port);
	a->ad_started = true;
	a->ad_daemon = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, admin_handler_mhd, a,
					MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&a->ad_addr,
					MHD_OPTION_THREAD_POOL_SIZE, ADMIN_THREADS,
					MHD_OPTION_CONNECTION_LIMIT, ADMIN_CONN_LIMIT,
					MHD_OPTION_CONNECTION_TIMEOUT, ADMIN_IDLE_TIMEOUT,
					MHD_OPTION_NOTIFY_COMPLETED, admin_completed, a,
					MHD_OPTION_END);
	if (a->ad_daemon == NULL) {
		snprintf(err, errlen, "admin_listen %s: cannot listen", a->ad_cfg->admin_listen);
		return -1;
	}
	log_msg(LOG_INFO, "admin API on %s%s", a->ad_cfg->admin_listen,
		admin_tokens_current(a)->at_n > 0 ? " (bearer tokens)" : " (loopback, no token)");
	return 0;
}

void admin_stop(struct admin **ap)
{
	struct admin *a = *ap;

	if (a == NULL)
		return;
	if (a->ad_daemon != NULL)
		MHD_stop_daemon(a->ad_daemon);
	while (a->ad_owned != NULL) {
		struct admin_owned *o = a->ad_owned;

		a->ad_owned = o->ao_next;
		free(o);
	}
	for (struct admin_tokens *t = atomic_load(&a->ad_tokens_cur), *older; t != NULL;
	     t = older) {
		older = t->at_older;
		if (t != &a->ad_tokens) {
			OPENSSL_cleanse(t, sizeof(*t));
			free(t);
		}
	}
	OPENSSL_cleanse(&a->ad_tokens, sizeof(a->ad_tokens));
	free(a);
	*ap = NULL;
}
