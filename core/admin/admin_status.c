/*
 * admin_status.c: GET /api/v1/status: that the daemon runs, its version,
 * since when, and the queue's depth (one read-only scan, as /metrics).
 */
#include "core/admin/admin_status.h"

#include <microhttpd.h>
#include <sys/time.h>
#include <time.h>

#include "queue/queue.h"

struct admin_status {
	struct queue *st_queue;
	const char *st_version;
	time_t st_started;
};

static uint64_t admin_status_now_us(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

static void admin_status_get(void *ctx, const struct admin_req *req, struct admin_reply *rep)
{
	const struct admin_status *st = ctx;
	uint64_t ready = 0, scheduled = 0, oldest = 0, now = admin_status_now_us();
	int rc = queue_depth(st->st_queue, now, &ready, &scheduled, &oldest);

	if (req->ar_rest[0] != '\0' && req->ar_rest[1] != '\0') {
		admin_reply_error(rep, MHD_HTTP_NOT_FOUND, "not found", "%s", req->ar_path);
		return;
	}
	if (rc < 0) {
		admin_reply_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "queue error", "%s",
				  queue_strerror(rc));
		return;
	}
	rep->json = json_pack("{s:s, s:I, s:I, s:{s:I, s:I, s:I}}",
			      "version", st->st_version,
			      "started", (json_int_t)st->st_started,
			      "uptime_s", (json_int_t)(time(NULL) - st->st_started),
			      "queue", "ready", (json_int_t)ready, "scheduled", (json_int_t)scheduled,
			      "oldest_age_s",
			      (json_int_t)(oldest != 0 && oldest < now ? (now - oldest) / 1000000u : 0));
}

int admin_status_register(struct admin *a, struct queue *q, const char *version)
{
	struct admin_status *st = admin_alloc(a, sizeof(*st));

	if (st == NULL)
		return -1;
	st->st_queue = q;
	st->st_version = version;
	st->st_started = time(NULL);
	return admin_route_add(a, "GET", "/api/v1/status", 0, 0, admin_status_get, st);
}
