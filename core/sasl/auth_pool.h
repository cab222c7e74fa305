/*
 * auth_pool: threads that run password checks for the workers. A check
 * (crypt_r; yescrypt takes tens of milliseconds) on a worker's thread
 * would stall every session of its ring, so a session hands its exchange
 * to the pool in a job and waits; the job comes back through the
 * worker's sink, whose notify wakes the worker (io_loop_wake), as
 * committed messages come back through a queue_sink.
 *
 * Ownership: the submitter allocates the job and the exchange; from
 * auth_pool_submit() until auth_sink_take() hands the job back, the pool
 * owns both and the submitter must not touch them (aj_owner excepted:
 * the pool never reads it, so the submitter's thread may clear it to
 * say "nobody waits"). The pool's threads only read the auth_db.
 */
#ifndef RINGMTA_AUTH_POOL_H
#define RINGMTA_AUTH_POOL_H

#include <pthread.h>
#include <stddef.h>

struct auth_exchange;
struct auth_job;

/* Where finished jobs of one worker wait for it. */
struct auth_sink {
	pthread_mutex_t as_lock;
	struct auth_job *as_head, *as_tail;
	void (*as_notify)(void *ctx);	/* any thread; after a job is added */
	void *as_ctx;
};

struct auth_job {
	struct auth_job *aj_next;	/* the pool's queue, then the sink's list */
	struct auth_sink *aj_sink;	/* where the job returns */
	struct auth_exchange *aj_x;	/* with AUTH_R_VERIFY pending */
	void *aj_owner;			/* the submitter's; NULL: nobody waits */
	int aj_result;			/* on return: AUTH_R_OK, _FAIL or _TEMP */
};

struct auth_pool;

/* Start nthreads (>= 1) threads; at most max_queued jobs wait to run.
 * Returns 0, or -1 with err. */
int auth_pool_start(struct auth_pool **pool_r, unsigned nthreads, unsigned max_queued,
		    char *err, size_t errlen);
/* Queue a job; -EAGAIN when the queue is full or the pool is stopping
 * (the job is not taken). */
int auth_pool_submit(struct auth_pool *p, struct auth_job *j);
/* Stop: running checks finish, queued ones return with AUTH_R_TEMP, the
 * threads are joined. Every job ends in its sink. */
void auth_pool_stop(struct auth_pool **pool);

void auth_sink_init(struct auth_sink *s, void (*notify)(void *), void *ctx);
void auth_sink_destroy(struct auth_sink *s);
/* The finished jobs (linked by aj_next, in order), now the caller's. */
struct auth_job *auth_sink_take(struct auth_sink *s);

#endif
