/*
 * admin_status: GET /api/v1/status, the admin API's "is it up" answer:
 * {"version", "started" (unix seconds), "uptime_s", "queue": {"ready",
 * "scheduled", "oldest_age_s"}}.
 */
#ifndef RINGMTA_ADMIN_STATUS_H
#define RINGMTA_ADMIN_STATUS_H

#include "core/admin/admin.h"

struct queue;

/* Register the route; q and version must outlive the admin listener. */
int admin_status_register(struct admin *a, struct queue *q, const char *version);

#endif
