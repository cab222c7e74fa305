/*
 * spf_inbound: SPF checks of inbound sessions as work pool jobs (core/
 * base/workpool.h), so that the DNS lookups never block a worker, and
 * the Authentication-Results field (RFC 8601) that records the result.
 *
 * Ownership: the submitter allocates a job with spf_job_new() (it copies
 * the identities); while the pool has it the pool owns it (workpool.h);
 * back on the submitter's thread spf_job_free() releases it. sj_spf is
 * set by whoever submits to the pool (the server), before submitting.
 */
#ifndef RINGMTA_SPF_INBOUND_H
#define RINGMTA_SPF_INBOUND_H

#include <stddef.h>
#include <sys/socket.h>

#include "core/base/workpool.h"
#include "core/spf/spf.h"

struct spf_job {
	struct work_job sj_work;	/* first: container_of from the pool */
	struct spf *sj_spf;		/* set by the submitter's environment */
	struct sockaddr_storage sj_client;
	char *sj_helo;			/* owned; "" when none */
	char *sj_from;			/* owned; "" for the null sender */
	enum spf_result sj_result;	/* on return; temperror if cancelled */
	char sj_why[256];
};

/* A job checking client (AF_INET or AF_INET6) for from (from_len bytes,
 * may be 0) and helo (may be NULL); done runs on the submitter's thread
 * when it is back (wj_owner = owner). NULL without memory. */
struct spf_job *spf_job_new(const struct sockaddr *client, const char *helo, const char *from,
			    size_t from_len, void *owner, void (*done)(struct work_job *j));
void spf_job_free(struct spf_job **j);

/*
 * "Authentication-Results: authserv; spf=RESULT smtp.mailfrom=DOMAIN"
 * (smtp.helo=HELO for the null sender) with CRLF, into buf (cap bytes).
 * A value that is not a plain token goes in a quoted string. Returns
 * the length, or -1 if cap is too small.
 */
int spf_auth_results(char *buf, size_t cap, const char *authserv, enum spf_result r,
		     const char *from, const char *helo);

#endif
