/*
 * admin_ops: the admin API's suppression list and reload.
 *
 *   GET    /api/v1/suppressions   ?address=PART&scope=S&offset=N&limit=N
 *   POST   /api/v1/suppressions   {"address", "scope" (a sender domain; ""
 *                                  or absent: every sender), "class",
 *                                  "expires" ("30d"; absent: never),
 *                                  "reason"}
 *   DELETE /api/v1/suppressions   ?address=A&scope=S
 *   POST   /api/v1/reload         what SIGHUP does; the answer says, part
 *                                  by part, what loaded and what failed
 *                                  (422 when any part failed: it kept
 *                                  what it had)
 *
 * The suppression list is the queue's (queue_suppress_*, one transaction
 * per call); the reload is the program's, given as a callback (core/app
 * owns what is reloaded).
 */
#ifndef RINGMTA_ADMIN_OPS_H
#define RINGMTA_ADMIN_OPS_H

#include <stdbool.h>

#include "core/admin/admin.h"

struct queue;

/* q must outlive the listener. 0 or -1 (table full). */
int admin_suppress_register(struct admin *a, struct queue *q);

/* Reload everything; append one {"name", "ok", "detail"} per part to
 * parts; true when every part loaded. Any thread; may block for the
 * length of a reload. */
typedef bool (*admin_reload_fn)(void *arg, json_t *parts);
/* fn and arg must outlive the listener. 0 or -1 (table full). */
int admin_reload_register(struct admin *a, admin_reload_fn fn, void *arg);

#endif
