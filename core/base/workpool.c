/*
 * workpool.c: the job threads and the sinks jobs return through. See
 * workpool.h.
 */
#include "core/base/workpool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct work_pool {
	pthread_mutex_t wp_lock;
	pthread_cond_t wp_cond;
	struct work_job *wp_head, *wp_tail;	/* waiting to run */
	unsigned wp_queued, wp_max_queued;
	bool wp_stop;
	unsigned wp_nthreads;
	pthread_t *wp_threads;
	uint64_t wp_jobs, wp_busy_ns, wp_full;	/* under wp_lock */
};

static uint64_t work_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void work_sink_put(struct work_job *j)
{
	struct work_sink *s = j->wj_sink;

	j->wj_next = NULL;
	pthread_mutex_lock(&s->ws_lock);
	if (s->ws_tail != NULL)
		s->ws_tail->wj_next = j;
	else
		s->ws_head = j;
	s->ws_tail = j;
	/* Under the lock: the sink's owner may free it once it took the job
	 * (HTTP injection's waits live on its stack). */
	s->ws_notify(s->ws_ctx);
	pthread_mutex_unlock(&s->ws_lock);
}

static void *work_pool_main(void *arg)
{
	struct work_pool *p = arg;
	uint64_t busy = 0;

	pthread_mutex_lock(&p->wp_lock);
	for (;;) {
		struct work_job *j;
		uint64_t t0;

		p->wp_busy_ns += busy;
		while (p->wp_head == NULL && !p->wp_stop)
			pthread_cond_wait(&p->wp_cond, &p->wp_lock);
		j = p->wp_head;
		if (j == NULL || p->wp_stop)
			break;
		p->wp_head = j->wj_next;
		if (p->wp_head == NULL)
			p->wp_tail = NULL;
		p->wp_queued--;
		p->wp_jobs++;
		pthread_mutex_unlock(&p->wp_lock);
		t0 = work_now_ns();
		j->wj_cancelled = false;
		j->wj_run(j);
		busy = work_now_ns() - t0;
		work_sink_put(j);
		pthread_mutex_lock(&p->wp_lock);
	}
	pthread_mutex_unlock(&p->wp_lock);
	return NULL;
}

int work_pool_start(struct work_pool **pool_r, const char *name, unsigned nthreads,
		    unsigned max_queued, char *err, size_t errlen)
{
	struct work_pool *p = calloc(1, sizeof(*p));
	int ret;

	*pool_r = NULL;
	if (nthreads == 0)
		nthreads = 1;
	if (p == NULL || (p->wp_threads = calloc(nthreads, sizeof(*p->wp_threads))) == NULL) {
		free(p);
		snprintf(err, errlen, "%s: out of memory", name);
		return -1;
	}
	pthread_mutex_init(&p->wp_lock, NULL);
	pthread_cond_init(&p->wp_cond, NULL);
	p->wp_max_queued = max_queued;
	for (unsigned i = 0; i < nthreads; i++) {
		ret = pthread_create(&p->wp_threads[i], NULL, work_pool_main, p);
		if (ret != 0) {
			snprintf(err, errlen, "%s: thread: %s", name, strerror(ret));
			work_pool_stop(&p);
			return -1;
		}
		p->wp_nthreads = i + 1;
	}
	*pool_r = p;
	return 0;
}

int work_pool_submit(struct work_pool *p, struct work_job *j)
{
	pthread_mutex_lock(&p->wp_lock);
	if (p->wp_stop || p->wp_queued >= p->wp_max_queued) {
		p->wp_full++;
		pthread_mutex_unlock(&p->wp_lock);
		return -EAGAIN;
	}
	j->wj_next = NULL;
	if (p->wp_tail != NULL)
		p->wp_tail->wj_next = j;
	else
		p->wp_head = j;
	p->wp_tail = j;
	p->wp_queued++;
	pthread_cond_signal(&p->wp_cond);
	pthread_mutex_unlock(&p->wp_lock);
	return 0;
}

void work_pool_stop(struct work_pool **pp)
{
	struct work_pool *p = *pp;
	struct work_job *j, *next;

	if (p == NULL)
		return;
	*pp = NULL;
	pthread_mutex_lock(&p->wp_lock);
	p->wp_stop = true;
	pthread_cond_broadcast(&p->wp_cond);
	j = p->wp_head;
	p->wp_head = p->wp_tail = NULL;
	p->wp_queued = 0;
	pthread_mutex_unlock(&p->wp_lock);
	for (unsigned i = 0; i < p->wp_nthreads; i++)
		pthread_join(p->wp_threads[i], NULL);
	for (; j != NULL; j = next) {
		next = j->wj_next;
		j->wj_cancelled = true;
		work_sink_put(j);
	}
	pthread_cond_destroy(&p->wp_cond);
	pthread_mutex_destroy(&p->wp_lock);
	free(p->wp_threads);
	free(p);
}

void work_pool_get_stats(struct work_pool *p, struct work_pool_stats *st)
{
	pthread_mutex_lock(&p->wp_lock);
	st->jobs = p->wp_jobs;
	st->busy_ns = p->wp_busy_ns;
	st->queued = p->wp_queued;
	st->nthreads = p->wp_nthreads;
	st->full = p->wp_full;
	pthread_mutex_unlock(&p->wp_lock);
}

void work_sink_init(struct work_sink *s, void (*notify)(void *), void *ctx)
{
	pthread_mutex_init(&s->ws_lock, NULL);
	s->ws_head = s->ws_tail = NULL;
	s->ws_notify = notify;
	s->ws_ctx = ctx;
}

void work_sink_destroy(struct work_sink *s)
{
	pthread_mutex_destroy(&s->ws_lock);
}

struct work_job *work_sink_take(struct work_sink *s)
{
	struct work_job *j;

	pthread_mutex_lock(&s->ws_lock);
	j = s->ws_head;
	s->ws_head = s->ws_tail = NULL;
	pthread_mutex_unlock(&s->ws_lock);
	return j;
}
