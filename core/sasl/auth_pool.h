/*
 * auth_pool: password checks as jobs for a work pool (core/base/
 * workpool.h). A check (crypt_r; yescrypt takes tens of milliseconds) on
 * a worker's thread would stall every session of its ring, so a session
 * hands its exchange to the pool in a job and waits.
 *
 * Ownership: the submitter allocates the job and the exchange; while the
 * pool has the job (workpool.h) it owns both. A job that comes back
 * cancelled (the pool stopped) has aj_result AUTH_R_TEMP and its
 * exchange cleared.
 */
#ifndef RINGMTA_AUTH_POOL_H
#define RINGMTA_AUTH_POOL_H

#include "core/base/workpool.h"

struct auth_exchange;

struct auth_job {
	struct work_job aj_work;	/* first: container_of from the pool */
	struct auth_exchange *aj_x;	/* with AUTH_R_VERIFY pending */
	int aj_result;			/* on return: AUTH_R_OK, _FAIL or _TEMP */
};

/* Prepare j to check x; done runs on the submitter's thread when the job
 * is back (wj_owner is owner). */
void auth_job_init(struct auth_job *j, struct auth_exchange *x, void *owner,
		   void (*done)(struct work_job *j));
/* The result, once back: AUTH_R_TEMP when the pool stopped before it ran. */
int auth_job_result(struct auth_job *j);

#endif
