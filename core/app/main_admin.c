/*
 * main_admin.c: the daemon's admin API: create the listener, register the
 * routes of every module that has some, start it. Each module's routes
 * are one line below.
 */
#include "core/app/main.h"

#include "core/admin/admin.h"
#include "core/admin/admin_ops.h"
#include "core/admin/admin_queue.h"
#include "core/admin/admin_shaping.h"
#include "core/admin/admin_status.h"
#include "core/app/server.h"

#include <string.h>

int main_admin_start(struct admin **a_r, struct admin_queue *aq, const struct config *cfg,
		     struct queue *q, struct delivery *dlv, struct server *srv,
		     struct main_reload_arg *ra, char *err, size_t errlen)
{
	struct admin *a;

	*a_r = NULL;
	if (cfg->admin_listen[0] == '\0')
		return 0;
	if (admin_create(&a, cfg, err, errlen) < 0)
		return -1;
	memset(aq, 0, sizeof(*aq));
	aq->aq_queue = q;
	aq->aq_dlv = dlv;
	aq->aq_events = srv->s_events;
	aq->aq_cfg = cfg;
	if (admin_status_register(a, q, RINGMTA_VERSION) < 0 ||
	    admin_queue_register(a, aq) < 0 ||
	    admin_shaping_register(a, dlv) < 0 || admin_suppress_register(a, q) < 0 ||
	    admin_reload_register(a, main_reload_json, ra) < 0) {
		snprintf(err, errlen, "admin: too many routes");
		admin_stop(&a);
		return -1;
	}
	admin_set_events(a, srv->s_events);
	if (admin_start(a, err, errlen) < 0) {
		admin_stop(&a);
		return -1;
	}
	*a_r = a;
	ra->ra_admin = a;		/* a reload reads its tokens again */
	return 0;
}
