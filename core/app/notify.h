/*
 * notify: the service manager's view of the daemon (systemd's sd_notify
 * protocol, through libsystemd): READY=1 once the listeners are bound
 * and the queue is open, RELOADING=1 / READY=1 around a SIGHUP reload,
 * STOPPING=1 at shutdown, STATUS= lines, and WATCHDOG=1 pings from a
 * thread of its own while every worker's loop keeps turning.
 *
 * Without NOTIFY_SOCKET (not started by systemd) every call does nothing;
 * without WATCHDOG_USEC no watchdog thread starts. A build without
 * libsystemd has the same calls, all of them doing nothing.
 *
 * Threads: the notify_* messages are for main()'s thread; the watchdog
 * thread calls only the progress function it is given, which must be
 * safe to call from another thread (atomic counters).
 */
#ifndef RINGMTA_NOTIFY_H
#define RINGMTA_NOTIFY_H

#include <stdint.h>

/* A worker's progress counter (any value that grows while its loop runs:
 * the loop's iteration count); read from the watchdog thread. */
typedef uint64_t (*notify_progress_fn)(void *arg, unsigned i);

struct notify_watchdog;

/* READY=1 with STATUS=status: the daemon serves. */
void notify_ready(const char *status);
/* RELOADING=1 (with MONOTONIC_USEC) before a reload; notify_ready() after. */
void notify_reloading(void);
/* STOPPING=1 with STATUS=status: shutdown has begun. */
void notify_stopping(const char *status);
/* STATUS= only. */
void notify_status(const char *status);

/* The watchdog's judgement, apart from its thread: per worker, the last
 * progress value seen and when (monotonic microseconds) it changed. */
struct notify_progress {
	uint64_t np_seen;
	uint64_t np_moved_us;
};

/* Read each of the n workers' progress at now_us into p[0..n). Returns
 * -1 when every one has moved within stall_us, else the index of the
 * first that has not (p then holds how long: now_us - np_moved_us). */
int notify_progress_check(struct notify_progress *p, unsigned n, notify_progress_fn progress,
			  void *arg, uint64_t now_us, uint64_t stall_us);

/*
 * When the service manager asks for a watchdog (WATCHDOG_USEC): start a
 * thread that sends WATCHDOG=1 every half of that interval as long as
 * each of the n workers' progress(arg, i) has moved within the last
 * NOTIFY_STALL_SEC seconds; once one has not, it logs which and stops
 * pinging, so the service manager restarts a daemon whose worker hung.
 * *wd_r is NULL when no watchdog was asked for. 0, or -1 with err.
 */
#define NOTIFY_STALL_SEC 10u
int notify_watchdog_start(struct notify_watchdog **wd_r, unsigned n,
			  notify_progress_fn progress, void *arg, char *err, size_t errlen);
/* Stop and free the thread (before the workers stop); NULL is fine. */
void notify_watchdog_stop(struct notify_watchdog **wd_r);

#endif
