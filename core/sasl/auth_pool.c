/*
 * auth_pool.c: password checks as work-pool jobs. See auth_pool.h.
 */
#include "core/sasl/auth_pool.h"

#include "core/sasl/auth.h"

static void auth_job_run(struct work_job *w)
{
	struct auth_job *j = (struct auth_job *)w;

	j->aj_result = auth_verify(j->aj_x);
}

void auth_job_init(struct auth_job *j, struct auth_exchange *x, void *owner,
		   void (*done)(struct work_job *j))
{
	j->aj_work.wj_run = auth_job_run;
	j->aj_work.wj_done = done;
	j->aj_work.wj_owner = owner;
	j->aj_x = x;
	j->aj_result = AUTH_R_TEMP;
}

int auth_job_result(struct auth_job *j)
{
	if (j->aj_work.wj_cancelled) {
		auth_exchange_clear(j->aj_x);
		return AUTH_R_TEMP;
	}
	return j->aj_result;
}
