/* test_workpool.c: jobs run off the caller's thread, come back through
 * the sink in order of completion, the queue is bounded, and stopping
 * returns every job (the ones that never ran cancelled). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "core/base/workpool.h"
#include "tests/unit/tap.h"

struct tjob {
	struct work_job j;
	pthread_t ran_on;
	int ran;
};

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_open = true;
static atomic_int notified, running;

static void tjob_run(struct work_job *w)
{
	struct tjob *t = (struct tjob *)w;

	atomic_fetch_add(&running, 1);
	pthread_mutex_lock(&gate_lock);
	while (!gate_open)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
	t->ran_on = pthread_self();
	t->ran++;
}

static void tjob_done(struct work_job *w)
{
	(void)w;
}

static void notify(void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&notified, 1);
}

static void set_gate(bool open)
{
	pthread_mutex_lock(&gate_lock);
	gate_open = open;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
}

static unsigned take_all(struct work_sink *s, unsigned want, unsigned *cancelled)
{
	unsigned n = 0;

	for (int tries = 0; n < want && tries < 500; tries++) {
		struct work_job *j = work_sink_take(s);

		for (; j != NULL; j = j->wj_next) {
			n++;
			if (j->wj_cancelled)
				(*cancelled)++;
			j->wj_done(j);
		}
		if (n < want)
			usleep(10000);
	}
	return n;
}

static void *opener(void *arg)
{
	(void)arg;
	usleep(50000);
	set_gate(true);
	return NULL;
}

int main(void)
{
	struct work_pool *p;
	struct work_sink sink;
	struct work_pool_stats st;
	struct tjob jobs[8];
	char err[128];
	unsigned cancelled = 0, n;
	int refused = 0;

	work_sink_init(&sink, notify, NULL);
	tap_ok(work_pool_start(&p, "test", 2, 4, err, sizeof(err)) == 0, "pool starts");
	memset(jobs, 0, sizeof(jobs));
	for (int i = 0; i < 4; i++) {
		jobs[i].j.wj_run = tjob_run;
		jobs[i].j.wj_done = tjob_done;
		jobs[i].j.wj_sink = &sink;
		tap_ok(work_pool_submit(p, &jobs[i].j) == 0, "job %d taken", i);
	}
	n = take_all(&sink, 4, &cancelled);
	tap_ok(n == 4 && cancelled == 0, "all four came back, none cancelled");
	tap_ok(jobs[0].ran == 1 && !pthread_equal(jobs[0].ran_on, pthread_self()),
	       "jobs ran once, on a pool thread");
	tap_ok(atomic_load(&notified) >= 1, "the sink's notify ran");

	/* Hold both threads, fill the queue: the next submit is refused. */
	set_gate(false);
	atomic_store(&running, 0);
	memset(jobs, 0, sizeof(jobs));
	for (int i = 0; i < 8; i++) {
		jobs[i].j.wj_run = tjob_run;
		jobs[i].j.wj_done = tjob_done;
		jobs[i].j.wj_sink = &sink;
	}
	work_pool_submit(p, &jobs[0].j);
	work_pool_submit(p, &jobs[1].j);
	for (int tries = 0; atomic_load(&running) < 2 && tries < 500; tries++)
		usleep(1000);
	for (int i = 2; i < 8; i++)
		if (work_pool_submit(p, &jobs[i].j) == -EAGAIN)
			refused++;
	tap_ok(refused == 2, "the queue holds 4 waiting jobs, then refuses (%d refused)", refused);
	work_pool_get_stats(p, &st);
	tap_ok(st.queued == 4 && st.nthreads == 2 && st.full == 2, "stats: 4 queued, 2 threads, 2 refused");

	/* Stop with the threads busy: the running two finish, the queued
	 * four come back cancelled. */
	{
		pthread_t t;

		pthread_create(&t, NULL, opener, NULL);
		work_pool_stop(&p);
		pthread_join(t, NULL);
	}
	cancelled = 0;
	n = take_all(&sink, 6, &cancelled);
	tap_ok(p == NULL, "stop clears the pointer");
	tap_ok(n == 6 && cancelled == 4, "stop: 6 came back, the 4 queued cancelled (%u, %u)",
	       n, cancelled);
	tap_ok(jobs[0].ran == 1 && jobs[1].ran == 1 && jobs[2].ran == 0,
	       "the running jobs finished, the queued never ran");
	work_sink_destroy(&sink);
	return tap_done();
}
