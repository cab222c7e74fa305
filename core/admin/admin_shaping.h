/*
 * admin_shaping: the admin API's view of and hold on the shaping engine:
 *
 *   POST /api/v1/suspend   {"site"|"domain"|"source"|"sender_domain": NAME,
 *                           "duration": "2h", "reason": "..."}
 *   POST /api/v1/resume    {the same selector}
 *   GET  /api/v1/suspensions
 *   GET  /api/v1/shaping   the state in force, per site and path
 *   GET  /api/v1/top       the live per-site view (?limit=N, at most 1000)
 *
 * Everything goes through delivery's admin functions (delivery.h), which
 * any thread may call; a suspension is saved before it is answered.
 */
#ifndef RINGMTA_ADMIN_SHAPING_H
#define RINGMTA_ADMIN_SHAPING_H

#include "core/admin/admin.h"

struct delivery;

/* Register the routes; dlv (NULL when delivery = no: every route then
 * answers 503) must outlive the admin listener. 0 or -1 (table full). */
int admin_shaping_register(struct admin *a, struct delivery *dlv);

/* An RFC 3339 UTC time ("2026-12-05T13:00:00Z") of unix microseconds. */
json_t *admin_json_time(uint64_t us);

#endif
