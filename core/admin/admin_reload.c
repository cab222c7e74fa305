/*
 * admin_reload.c: POST /api/v1/reload (admin_ops.h): the program's reload,
 * answered part by part; 422 when a part failed (it kept what it had).
 */
#include "core/admin/admin_ops.h"

#include <microhttpd.h>

struct admin_reload {
	admin_reload_fn rl_fn;
	void *rl_arg;
};

static void admin_reload_post(void *ctx, const struct admin_req *req, struct admin_reply *rep)
{
	const struct admin_reload *rl = ctx;
	json_t *parts = json_array();
	bool ok;

	if (req->ar_rest[0] != '\0' && req->ar_rest[1] != '\0') {
		json_decref(parts);
		admin_reply_error(rep, MHD_HTTP_NOT_FOUND, "not found", "%s", req->ar_path);
		return;
	}
	ok = rl->rl_fn(rl->rl_arg, parts);
	rep->status = ok ? MHD_HTTP_OK : MHD_HTTP_UNPROCESSABLE_CONTENT;
	rep->json = ok ? json_pack("{s:b, s:o}", "ok", 1, "parts", parts) :
		    json_pack("{s:s, s:b, s:o}", "error", "reload failed", "ok", 0, "parts", parts);
}

int admin_reload_register(struct admin *a, admin_reload_fn fn, void *arg)
{
	static struct admin_reload rl;

	rl.rl_fn = fn;
	rl.rl_arg = arg;
	return admin_route_add(a, "POST", "/api/v1/reload", 0, 64 * 1024, admin_reload_post, &rl);
}
