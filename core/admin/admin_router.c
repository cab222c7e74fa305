/*
 * admin_router.c: the admin API's route table: a method and a path prefix
 * to a handler. Filled before the listener starts, read-only after, so
 * matching takes no lock. No I/O.
 */
#include "core/admin/admin_internal.h"

#include <string.h>

int admin_router_add(struct admin_router *ro, const char *method, const char *prefix,
		     unsigned flags, size_t body_max, admin_handler h, void *ctx)
{
	struct admin_route *rt;

	if (ro->ro_n == ADMIN_ROUTES_MAX || prefix == NULL || prefix[0] != '/' || h == NULL)
		return -1;
	rt = &ro->ro_routes[ro->ro_n++];
	rt->rt_method = method;
	rt->rt_prefix = prefix;
	rt->rt_prefix_len = strlen(prefix);
	/* "/a/" and "/a" are the same prefix. */
	while (rt->rt_prefix_len > 1 && prefix[rt->rt_prefix_len - 1] == '/')
		rt->rt_prefix_len--;
	rt->rt_flags = flags;
	rt->rt_body_max = body_max != 0 ? body_max : ADMIN_BODY_MAX;
	rt->rt_handler = h;
	rt->rt_ctx = ctx;
	return 0;
}

/* Whether path is prefix or continues it at a '/'. */
static bool admin_router_prefix_of(const struct admin_route *rt, const char *path)
{
	size_t n = rt->rt_prefix_len;

	return strncmp(path, rt->rt_prefix, n) == 0 &&
	       (path[n] == '\0' || path[n] == '/' || (n == 1 && path[0] == '/'));
}

/* The longest prefix decides: a POST to /a/b with only GET there is a
 * 405, not a fall back to a route for /a. */
enum admin_match admin_router_match(const struct admin_router *ro, const char *method,
				    const char *path, const struct admin_route **rt_r)
{
	size_t longest = 0;
	bool any = false;

	*rt_r = NULL;
	for (unsigned i = 0; i < ro->ro_n; i++) {
		const struct admin_route *rt = &ro->ro_routes[i];

		if (admin_router_prefix_of(rt, path) && (!any || rt->rt_prefix_len > longest)) {
			longest = rt->rt_prefix_len;
			any = true;
		}
	}
	if (!any)
		return ADMIN_MATCH_NO_PATH;
	for (unsigned i = 0; i < ro->ro_n; i++) {
		const struct admin_route *rt = &ro->ro_routes[i];

		if (rt->rt_prefix_len == longest && admin_router_prefix_of(rt, path) &&
		    (rt->rt_method == NULL || strcmp(rt->rt_method, method) == 0)) {
			*rt_r = rt;
			return ADMIN_MATCH_OK;
		}
	}
	return ADMIN_MATCH_NO_METHOD;
}
