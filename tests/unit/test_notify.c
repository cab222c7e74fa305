/*
 * test_notify.c: the watchdog's judgement (notify_progress_check) on
 * made-up progress counters and clock readings, and that the notify
 * calls do nothing without NOTIFY_SOCKET.
 */
#include <stdlib.h>

#include "core/app/notify.h"
#include "tests/unit/tap.h"

static uint64_t test_counters[3];

static uint64_t test_progress(void *arg, unsigned i)
{
	(void)arg;
	return test_counters[i];
}

#define SEC 1000000ull

static void test_check(void)
{
	struct notify_progress p[3] = { { 0, 0 }, { 0, 0 }, { 0, 0 } };

	tap_ok(notify_progress_check(p, 3, test_progress, NULL, 1 * SEC, 10 * SEC) == -1,
	       "still counters within the stall time: alive");
	test_counters[0] = 5;
	test_counters[1] = 7;
	tap_ok(notify_progress_check(p, 3, test_progress, NULL, 9 * SEC, 10 * SEC) == -1 &&
	       p[0].np_moved_us == 9 * SEC && p[2].np_moved_us == 0,
	       "a moved counter records when it moved");
	tap_ok(notify_progress_check(p, 3, test_progress, NULL, 11 * SEC, 10 * SEC) == 2,
	       "worker 2, unmoved for 11s of 10, is named");
	test_counters[2] = 1;
	tap_ok(notify_progress_check(p, 3, test_progress, NULL, 12 * SEC, 10 * SEC) == -1,
	       "once it moves again it is alive");
	tap_ok(notify_progress_check(p, 3, test_progress, NULL, 19 * SEC + 1, 10 * SEC) == 0,
	       "worker 0, unmoved since 9s, is named first at 19s");
	tap_ok(notify_progress_check(p, 0, test_progress, NULL, 100 * SEC, 10 * SEC) == -1,
	       "no workers: alive");
}

static void test_without_socket(void)
{
	struct notify_watchdog *wd = NULL;
	char err[128];

	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	notify_ready("ready");
	notify_reloading();
	notify_status("status");
	notify_stopping("stopping");
	tap_ok(notify_watchdog_start(&wd, 3, test_progress, NULL, err, sizeof(err)) == 0 &&
	       wd == NULL, "no WATCHDOG_USEC: no watchdog thread");
	notify_watchdog_stop(&wd);
}

int main(void)
{
	test_check();
	test_without_socket();
	return tap_done();
}
