/*
 * admin: the admin API, HTTP+JSON under /api/v1/ on admin_listen.
 *
 * Served by libmicrohttpd on its own small thread pool, apart from the
 * metrics endpoint and off the mail path. Other modules plug in by
 * registering routes (a method and a path prefix) before admin_start();
 * the table is read-only once the daemon runs, so handlers are found
 * without locks. Handlers run on the pool's threads, several at a time:
 * whatever they reach must be safe from any thread.
 *
 * Every request is authenticated first (admin_auth.c): with
 * admin_token_file set, "Authorization: Bearer <token>" must name one of
 * its tokens; without it (loopback only, see config_validate) anyone
 * connecting is allowed. Bodies are bounded per route (ADMIN_BODY_MAX
 * unless the route says otherwise) and connections idle past a timeout
 * are closed. Errors are JSON: {"error": "...", "detail": ...}.
 *
 * Lifetimes: the struct admin and every ctx given to admin_route_add()
 * must outlive admin_stop().
 */
#ifndef RINGMTA_ADMIN_H
#define RINGMTA_ADMIN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/config/config.h"

struct admin;

#define ADMIN_BODY_MAX (1024u * 1024u)	/* default per-route body limit */
#define ADMIN_ROUTES_MAX 64u

/* A parsed request, valid during the handler call only. */
struct admin_req {
	const char *ar_method;		/* "GET", "POST", ... */
	const char *ar_path;		/* the whole path, no query */
	const char *ar_rest;		/* ar_path after the route's prefix: ""
					 * or starting with '/' */
	const char *ar_body;		/* raw body, NUL-terminated; "" if none */
	size_t ar_body_len;
	json_t *ar_json;		/* the body as JSON (ADMIN_ROUTE_JSON
					 * routes with a body), else NULL;
					 * borrowed */
	void *ar_conn;			/* the MHD connection (admin_req_arg) */
};

/* What a handler answers: a status and a JSON body (owned: the reply
 * takes the reference), or a raw body (ar_raw malloc()ed, taken too). */
struct admin_reply {
	unsigned status;		/* HTTP status; 0 = 200 */
	json_t *json;
	char *raw;
	size_t raw_len;
	const char *raw_type;		/* Content-Type of raw; static */
};

typedef void (*admin_handler)(void *ctx, const struct admin_req *req,
			      struct admin_reply *rep);

/* Route flags. */
#define ADMIN_ROUTE_JSON 0x01u	/* a non-empty body must be a JSON object
				 * (400 otherwise), handed as ar_json */

/*
 * Register a handler for method (NULL: any) on path_prefix, e.g.
 * "/api/v1/queue/messages". A request matches when its path equals the
 * prefix or continues it with '/'; the longest matching prefix wins; a
 * path that matches a prefix but no method gets 405, none at all 404.
 * body_max: 0 for ADMIN_BODY_MAX. Before admin_start() only; 0 or -1 when
 * the table is full.
 */
int admin_route_add(struct admin *a, const char *method, const char *path_prefix,
		    unsigned flags, size_t body_max, admin_handler h, void *ctx);

/* Zeroed memory that lives until admin_stop() (a route's ctx), or NULL
 * when memory runs out. Before admin_start() only. */
void *admin_alloc(struct admin *a, size_t size);

/* A query argument (already %-decoded), or NULL when absent. */
const char *admin_req_arg(const struct admin_req *req, const char *name);
/* Visit every query argument; fn returns non-zero to stop (that value is
 * returned). */
int admin_req_args(const struct admin_req *req,
		   int (*fn)(void *ctx, const char *name, const char *value), void *ctx);

/* A JSON string of s (NUL-terminated); octets that are not UTF-8 become
 * '?'. Never NULL (json_null() when memory runs out). New reference. */
json_t *admin_json_text(const char *s);

/* Set rep to {"error": error, "detail": detail} (detail printf-style,
 * NULL for none) with status. */
void admin_reply_error(struct admin_reply *rep, unsigned status, const char *error,
		       const char *detail_fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * Create (nothing listens yet): reads admin_token_file, which must exist,
 * hold at least one token and not be readable or writable by group or
 * others. err names the problem.
 */
int admin_create(struct admin **a_r, const struct config *cfg, char *err, size_t errlen);
/* Listen on cfg->admin_listen. */
/* Before admin_start(): every state-changing request (a method other
 * than GET or HEAD) that succeeds (2xx) is recorded as an "admin" event:
 * action "METHOD /path", detail the request's JSON body, if any. */
struct events;
void admin_set_events(struct admin *a, struct events *ev);
int admin_start(struct admin *a, char *err, size_t errlen);
/* Stop serving (waits for handlers in progress) and free. */
void admin_stop(struct admin **a);

/*
 * A reload (any thread, one at a time): read the tokens file path ("":
 * no token needed; config_validate() allows that on loopback only) and,
 * when its tokens differ from those in force, make them the ones every
 * new request is checked against. Replaced tokens are kept until
 * admin_stop(), so a reload that changes nothing keeps nothing. 0 with
 * *changed_r and *count_r (tokens in force), or -1 with err (the file
 * is missing, readable by others, empty...): the tokens in force stay.
 */
int admin_reload_tokens(struct admin *a, const char *path, bool *changed_r, unsigned *count_r,
			char *err, size_t errlen);

#endif
