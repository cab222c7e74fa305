/*
 * workpool: threads that run slow jobs for the workers (password checks,
 * DKIM signatures, SPF lookups), so that no job stalls a worker's ring.
 * A worker hands a job to a pool and the session that wants it waits;
 * the job comes back through the worker's sink, whose notify wakes the
 * worker (io_loop_wake), as committed messages come back through a
 * queue_sink.
 *
 * The queue of waiting jobs is bounded (max_queued): work_pool_submit()
 * says -EAGAIN when it is full, and the submitter keeps the job and
 * tries again later, so that back-pressure reaches whoever asked
 * instead of memory growing.
 *
 * Ownership: the submitter allocates the job (usually embedded in its
 * own struct); from work_pool_submit() until work_sink_take() hands it
 * back the pool owns it and the submitter must not touch it (wj_owner
 * excepted: the pool never reads it, so the submitter's thread may clear
 * it to say "nobody waits"). wj_run runs on a pool thread; when the pool
 * stops, jobs that never ran come back with wj_cancelled set.
 */
#ifndef RINGMTA_WORKPOOL_H
#define RINGMTA_WORKPOOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct work_job;

/* Where finished jobs of one worker wait for it. */
struct work_sink {
	pthread_mutex_t ws_lock;
	struct work_job *ws_head, *ws_tail;
	void (*ws_notify)(void *ctx);	/* any thread, under ws_lock: after a job
					 * is added; must not take ws_lock */
	void *ws_ctx;
};

struct work_job {
	struct work_job *wj_next;	/* the pool's queue, then the sink's list */
	struct work_sink *wj_sink;	/* where the job returns */
	void (*wj_run)(struct work_job *j);	/* on a pool thread */
	/* On the submitter's thread once the job is back (the sink's owner
	 * calls it for each job work_sink_take() returns); it owns the job
	 * again. */
	void (*wj_done)(struct work_job *j);
	void *wj_owner;			/* the submitter's; NULL: nobody waits */
	bool wj_cancelled;		/* the pool stopped before it ran */
};

struct work_pool;

struct work_pool_stats {
	uint64_t jobs;			/* jobs run */
	uint64_t busy_ns;		/* time the threads spent in wj_run */
	unsigned queued;		/* waiting now */
	unsigned nthreads;
	uint64_t full;			/* submits refused: queue full */
};

/* Start nthreads (>= 1) threads named name (for errors); at most
 * max_queued jobs wait to run. Returns 0, or -1 with err. */
int work_pool_start(struct work_pool **pool_r, const char *name, unsigned nthreads,
		    unsigned max_queued, char *err, size_t errlen);
/* Queue a job (wj_run and wj_sink set); -EAGAIN when the queue is full
 * or the pool is stopping (the job is not taken). Any thread. */
int work_pool_submit(struct work_pool *p, struct work_job *j);
/* Stop: running jobs finish, queued ones return cancelled, the threads
 * are joined. Every job ends in its sink. */
void work_pool_stop(struct work_pool **pool);
/* Any thread. */
void work_pool_get_stats(struct work_pool *p, struct work_pool_stats *st_r);

void work_sink_init(struct work_sink *s, void (*notify)(void *), void *ctx);
void work_sink_destroy(struct work_sink *s);
/* The finished jobs (linked by wj_next, in order), now the caller's. */
struct work_job *work_sink_take(struct work_sink *s);

#endif
