/*
 * delivery_admin.c: what the operator's tools (the admin API) ask of
 * delivery: the operator's suspensions, set, lifted and listed from any
 * thread. The table lives in the shaping engine shared by the workers
 * (dlv_shaping.ds_susp), which check it for every job and destination;
 * every change is saved in the queue database before the call returns,
 * one change and its save at a time (ds_susp_lock), so the saved blob
 * never misses a change that was answered.
 */
#include <errno.h>
#include <stdlib.h>

#include "core/base/log.h"
#include "core/delivery/delivery_internal.h"

/* A resumed suspension's mail comes back at its end plus up to this much
 * jitter (retry_wait_us spreads it by a tenth, at most a minute). */
#define DLV_SUSP_JITTER_US (61ull * 1000000u)

/* Save the table (ds_susp_lock held). */
static int dlv_susp_save(struct delivery *d, uint64_t now)
{
	struct shp_susp *s = dlv_shaping_of(d)->ds_susp;
	size_t n = shp_susp_save(s, now, NULL, 0);
	char *buf = malloc(n);
	int rc;

	if (buf == NULL)
		return -ENOMEM;
	/* Only this thread changes the table now: the size holds. */
	n = shp_susp_save(s, now, buf, n);
	rc = queue_blob_put(dlv_queue_of(d), DLV_SUSP_BLOB, buf, n);
	free(buf);
	return rc;
}

static void dlv_susp_restore_cb(void *arg, const void *data, size_t len)
{
	struct delivery *d = arg;

	if (shp_susp_restore(dlv_shaping_of(d)->ds_susp, data, len, dlv_unix_us()) < 0)
		log_msg(LOG_WARNING, "delivery: the saved suspensions are damaged or of another"
			" version (%zu bytes): ignored, starting without them", len);
}

void dlv_susp_restore(struct delivery *d)
{
	(void)queue_blob_get(dlv_queue_of(d), DLV_SUSP_BLOB, dlv_susp_restore_cb, d);
}

int delivery_suspend(struct delivery *d, enum shp_susp_kind kind, const char *name,
		     uint64_t duration_us, const char *who, const char *reason)
{
	struct dlv_shaping *shp = dlv_shaping_of(d);
	uint64_t now = dlv_unix_us(), old_until = 0;
	int rc;

	if (duration_us == 0 || duration_us > SHP_SUSP_DURATION_MAX)
		return -EINVAL;
	pthread_mutex_lock(&shp->ds_susp_lock);
	rc = shp_susp_set(shp->ds_susp, kind, name, who, reason, now, now + duration_us);
	if (rc == 0 && (rc = dlv_susp_save(d, now)) < 0) {
		/* Not saved, not in force: the caller is told it failed. */
		(void)shp_susp_clear(shp->ds_susp, kind, name, now, &old_until);
	}
	pthread_mutex_unlock(&shp->ds_susp_lock);
	if (rc == 0)
		log_msg(LOG_WARNING, "delivery: %s %s suspended for %llus by %s%s%s",
			shp_susp_kind_name(kind), name, (unsigned long long)(duration_us / 1000000u),
			who != NULL && who[0] ? who : "admin", reason != NULL && reason[0] ? ": " : "",
			reason != NULL ? reason : "");
	return rc;
}

int delivery_resume(struct delivery *d, enum shp_susp_kind kind, const char *name,
		    unsigned *flushed_r)
{
	struct dlv_shaping *shp = dlv_shaping_of(d);
	uint64_t now = dlv_unix_us(), until;
	unsigned n = 0;
	int rc;

	if (flushed_r != NULL)
		*flushed_r = 0;
	pthread_mutex_lock(&shp->ds_susp_lock);
	rc = shp_susp_clear(shp->ds_susp, kind, name, now, &until);
	if (rc == 0)
		rc = dlv_susp_save(d, now);
	pthread_mutex_unlock(&shp->ds_susp_lock);
	if (rc < 0)
		return rc;
	/* What it deferred waits for its end (plus jitter): due now. Other
	 * mail that happens to be due then only comes a little early. */
	if (queue_admin_flush_window(dlv_queue_of(d), until, until + DLV_SUSP_JITTER_US, now,
				     &n) < 0)
		log_msg(LOG_WARNING, "delivery: %s %s resumed, but its waiting mail could not be"
			" made due now: it comes at the suspension's end",
			shp_susp_kind_name(kind), name);
	log_msg(LOG_WARNING, "delivery: %s %s resumed: %u messages due now",
		shp_susp_kind_name(kind), name, n);
	if (flushed_r != NULL)
		*flushed_r = n;
	return 0;
}

unsigned delivery_suspensions_foreach(struct delivery *d,
				      void (*fn)(void *arg, const struct shp_susp_item *it),
				      void *arg)
{
	return shp_susp_foreach(dlv_shaping_of(d)->ds_susp, dlv_unix_us(), fn, arg);
}
