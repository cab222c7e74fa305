/*
 * admin_internal: what the files of the admin module share: the route
 * table (admin_router.c), the tokens (admin_auth.c) and the listener
 * (admin.c). Not part of the API; outside core/admin only the unit tests
 * include it, to reach the router and the token check directly.
 */
#ifndef RINGMTA_ADMIN_INTERNAL_H
#define RINGMTA_ADMIN_INTERNAL_H

#include "core/admin/admin.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define ADMIN_TOKENS_MAX 64u

struct admin_route {
	const char *rt_method;		/* NULL: any */
	const char *rt_prefix;		/* static or owned by the registrar */
	size_t rt_prefix_len;
	unsigned rt_flags;		/* ADMIN_ROUTE_* */
	size_t rt_body_max;
	admin_handler rt_handler;
	void *rt_ctx;
};

struct admin_router {
	struct admin_route ro_routes[ADMIN_ROUTES_MAX];
	unsigned ro_n;
};

/* The bearer tokens as SHA-256 digests, so that comparing them takes the
 * same time whatever the token given. */
struct admin_tokens {
	uint8_t at_digest[ADMIN_TOKENS_MAX][32];
	unsigned at_n;
	struct admin_tokens *at_older;	/* replaced by a reload; kept until
					 * admin_stop() (requests may hold them) */
};

struct events;

struct admin {
	void *ad_daemon;		/* struct MHD_Daemon */
	const struct config *ad_cfg;
	struct admin_router ad_router;
	struct admin_tokens ad_tokens;	/* the start-up ones */
	/* The tokens in force: &ad_tokens, or a reload's (admin_auth.c);
	 * at_n == 0: no token needed. Read by every request thread. */
	_Atomic(struct admin_tokens *) ad_tokens_cur;
	struct sockaddr_storage ad_addr;
	bool ad_started;
	struct admin_owned *ad_owned;	/* admin_alloc()'s blocks */
	struct events *ad_events;	/* admin events; NULL: none */
};

struct admin_owned {
	struct admin_owned *ao_next;
	max_align_t ao_data[];
};

enum admin_match {
	ADMIN_MATCH_OK = 0,
	ADMIN_MATCH_NO_PATH = 1,	/* 404 */
	ADMIN_MATCH_NO_METHOD = 2,	/* 405 */
};

int admin_router_add(struct admin_router *ro, const char *method, const char *prefix,
		     unsigned flags, size_t body_max, admin_handler h, void *ctx);
/* The route for method and path (the longest prefix that matches); *rt_r
 * is set only with ADMIN_MATCH_OK. */
enum admin_match admin_router_match(const struct admin_router *ro, const char *method,
				    const char *path, const struct admin_route **rt_r);

/* Read a tokens file (one a line; blank and '#' lines skipped). 0, or -1
 * with err naming the file and the problem (missing, permissions, empty,
 * too many). */
int admin_tokens_load(struct admin_tokens *t, const char *path, char *err, size_t errlen);
/* The tokens in force now (any thread). */
const struct admin_tokens *admin_tokens_current(struct admin *a);
/* Whether an Authorization header value ("Bearer <token>", may be NULL)
 * names a token; true when there are no tokens. */
bool admin_tokens_check(const struct admin_tokens *t, const char *authorization);

#endif
