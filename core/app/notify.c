/*
 * notify.c: sd_notify messages and the watchdog thread (notify.h). Owns
 * the watchdog's thread and its per-worker progress snapshots; nothing
 * else.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/app/notify.h"
#include "core/base/log.h"

#ifdef RINGMTA_HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#else
/* Built without libsystemd: no service manager to tell. */
static int sd_notify(int unset_environment, const char *state)
{
	(void)unset_environment;
	(void)state;
	return 0;
}

static int sd_watchdog_enabled(int unset_environment, uint64_t *usec)
{
	(void)unset_environment;
	*usec = 0;
	return 0;
}
#endif

struct notify_watchdog {
	pthread_t nw_thread;
	pthread_mutex_t nw_lock;
	pthread_cond_t nw_cond;		/* CLOCK_MONOTONIC */
	bool nw_stop;
	uint64_t nw_interval_us;	/* half of WATCHDOG_USEC */
	unsigned nw_n;
	notify_progress_fn nw_progress;
	void *nw_arg;
	struct notify_progress *nw_workers;	/* nw_n of them */
};

static uint64_t notify_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* "KEY=1\nSTATUS=..." in one datagram; a status with a newline would
 * start a new assignment, so it ends there. */
static void notify_send(const char *state, const char *status)
{
	char msg[512];

	if (status == NULL)
		snprintf(msg, sizeof(msg), "%s", state);
	else
		snprintf(msg, sizeof(msg), "%s%sSTATUS=%.*s", state, state[0] ? "\n" : "",
			 (int)strcspn(status, "\n"), status);
	(void)sd_notify(0, msg);
}

void notify_ready(const char *status)
{
	notify_send("READY=1", status);
}

void notify_reloading(void)
{
	char msg[64];

	/* MONOTONIC_USEC lets a newer systemd tell this reload from an
	 * earlier one; older ones ignore it. */
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)notify_now_us());
	notify_send(msg, "reloading");
}

void notify_stopping(const char *status)
{
	notify_send("STOPPING=1", status);
}

void notify_status(const char *status)
{
	notify_send("", status);
}

int notify_progress_check(struct notify_progress *p, unsigned n, notify_progress_fn progress,
			  void *arg, uint64_t now_us, uint64_t stall_us)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t v = progress(arg, i);

		if (v != p[i].np_seen) {
			p[i].np_seen = v;
			p[i].np_moved_us = now_us;
		} else if (now_us - p[i].np_moved_us > stall_us) {
			return (int)i;
		}
	}
	return -1;
}

/* Whether every worker moved within NOTIFY_STALL_SEC; logs the first
 * that did not. */
static bool notify_workers_alive(struct notify_watchdog *wd, uint64_t now)
{
	int i = notify_progress_check(wd->nw_workers, wd->nw_n, wd->nw_progress, wd->nw_arg, now,
				      NOTIFY_STALL_SEC * 1000000ull);

	if (i < 0)
		return true;
	log_msg(LOG_ERROR, "watchdog: worker %d has not run its loop for %llus:"
		" no more watchdog pings (the service manager restarts ringmta)", i,
		(unsigned long long)((now - wd->nw_workers[i].np_moved_us) / 1000000u));
	return false;
}

static void *notify_watchdog_main(void *arg)
{
	struct notify_watchdog *wd = arg;
	bool pinging = true;

	pthread_mutex_lock(&wd->nw_lock);
	while (!wd->nw_stop) {
		uint64_t now = notify_now_us(), until = now + wd->nw_interval_us;
		struct timespec ts = { .tv_sec = (time_t)(until / 1000000u),
				       .tv_nsec = (long)(until % 1000000u) * 1000 };

		if (pinging && !notify_workers_alive(wd, now))
			pinging = false;
		if (pinging)
			(void)sd_notify(0, "WATCHDOG=1");
		while (!wd->nw_stop &&
		       pthread_cond_timedwait(&wd->nw_cond, &wd->nw_lock, &ts) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&wd->nw_lock);
	return NULL;
}

static void notify_watchdog_free(struct notify_watchdog *wd)
{
	pthread_cond_destroy(&wd->nw_cond);
	pthread_mutex_destroy(&wd->nw_lock);
	free(wd->nw_workers);
	free(wd);
}

int notify_watchdog_start(struct notify_watchdog **wd_r, unsigned n,
			  notify_progress_fn progress, void *arg, char *err, size_t errlen)
{
	struct notify_watchdog *wd;
	pthread_condattr_t ca;
	uint64_t usec = 0, now;
	int rc;

	*wd_r = NULL;
	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return 0;
	wd = calloc(1, sizeof(*wd));
	if (wd == NULL ||
	    (wd->nw_workers = calloc(n ? n : 1, sizeof(*wd->nw_workers))) == NULL) {
		free(wd);
		snprintf(err, errlen, "watchdog: out of memory");
		return -1;
	}
	wd->nw_interval_us = usec / 2 > 0 ? usec / 2 : 1;
	wd->nw_n = n;
	wd->nw_progress = progress;
	wd->nw_arg = arg;
	now = notify_now_us();
	for (unsigned i = 0; i < n; i++) {
		wd->nw_workers[i].np_seen = progress(arg, i);
		wd->nw_workers[i].np_moved_us = now;
	}
	pthread_mutex_init(&wd->nw_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&wd->nw_cond, &ca);
	pthread_condattr_destroy(&ca);
	if ((rc = pthread_create(&wd->nw_thread, NULL, notify_watchdog_main, wd)) != 0) {
		snprintf(err, errlen, "watchdog: thread: %s", strerror(rc));
		notify_watchdog_free(wd);
		return -1;
	}
	log_msg(LOG_INFO, "watchdog: pinging every %llums while the %u workers run",
		(unsigned long long)(wd->nw_interval_us / 1000u), n);
	*wd_r = wd;
	return 0;
}

void notify_watchdog_stop(struct notify_watchdog **wd_r)
{
	struct notify_watchdog *wd = *wd_r;

	if (wd == NULL)
		return;
	pthread_mutex_lock(&wd->nw_lock);
	wd->nw_stop = true;
	pthread_cond_signal(&wd->nw_cond);
	pthread_mutex_unlock(&wd->nw_lock);
	pthread_join(wd->nw_thread, NULL);
	notify_watchdog_free(wd);
	*wd_r = NULL;
}
