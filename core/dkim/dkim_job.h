/*
 * dkim_job: signing one accepted message, as a work-pool job (core/base/
 * workpool.h), so that RSA never runs on a worker's ring. The job finds
 * the From domain and the signing domain (dkim_table_match), checks
 * relaxed DMARC alignment, adds the RFC 8058 List-Unsubscribe fields when
 * the domain asks for them, and signs [added fields + message] with the
 * domain's keys. Its result is the text to prepend to the message, or a
 * refusal reply.
 *
 * Ownership: dkim_job_new() allocates the job; it holds a reference to
 * the table and copies of the short strings (user, listener, sender,
 * recipient). The message's iovecs are borrowed: they must stay valid,
 * unchanged, until the job is back (the transaction that owns them waits
 * for it). dkim_job_free() releases the job, its result and its
 * reference. The result fields are read on the submitter's thread once
 * the job is back.
 */
#ifndef RINGMTA_DKIM_JOB_H
#define RINGMTA_DKIM_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/base/workpool.h"
#include "core/config/config.h"

struct dkim_table;

enum dkim_job_status {
	DKIM_JOB_SIGNED = 0,	/* dj_prefix: signatures (+ added fields) */
	DKIM_JOB_UNSIGNED,	/* no key, dkim_no_key_action = unsigned */
	DKIM_JOB_REFUSED,	/* dj_reply says why; dj_reason names it */
};

/* What the job needs besides the message. Strings are copied. */
struct dkim_job_params {
	struct dkim_table *table;	/* a new reference is taken */
	const char *sender;		/* envelope sender, "" for <> */
	const char *user;		/* authenticated user, or NULL */
	const char *listener;		/* dkim_table_listener_name() text, or NULL */
	const char *rcpt;		/* the only recipient; NULL when several */
	unsigned nrcpt;
	uint64_t queue_id;
	const char *default_domain;	/* "" or NULL: none; copied */
	enum config_dkim_no_key no_key_action;
	enum config_dmarc_unaligned unaligned_action;
	uint64_t now;			/* t=, unix seconds */
	const char *skip_header;	/* never signed, even when listed: the
					 * pool header, removed before sending
					 * (NULL: none); copied */
};

struct dkim_job {
	struct work_job dj_work;	/* first: container_of from the pool */
	struct dkim_job_params dj_p;	/* strings point into dj_strings */
	char *dj_strings;		/* owned: the copies */
	const struct iovec *dj_iov;	/* borrowed: the message */
	unsigned dj_iovcnt;
	/* results, on return */
	enum dkim_job_status dj_status;
	char *dj_prefix;		/* owned; NULL unless signed or fields added */
	size_t dj_prefix_len;
	char dj_reply[400];		/* refusal reply (code, status, text) */
	const char *dj_reason;		/* refusal: "no_key", "unaligned", "error" */
	bool dj_unaligned;		/* From aligned with neither identity */
	char dj_from[256];		/* From domain, "" when none or several */
	char dj_sig[300];		/* for the log: "d/s1,s2" or "none(no key)" */
	char dj_note[400];		/* for the log: what was left out, or "" */
};

/* The settings' part of p (default domain, no-key and unaligned actions,
 * now): what every acceptor (SMTP, HTTP injection) fills the same way. */
void dkim_job_params_config(struct dkim_job_params *p, const struct config *cfg);

/* A job for the message iov (iovcnt pieces), done runs on the submitter's
 * thread with owner as wj_owner. NULL without memory. */
struct dkim_job *dkim_job_new(const struct dkim_job_params *p, const struct iovec *iov,
			      unsigned iovcnt, void *owner, void (*done)(struct work_job *j));
void dkim_job_free(struct dkim_job **j);

/* Run the job now, on this thread (what the pool calls; for tests and
 * the fuzzer). */
void dkim_job_run(struct work_job *w);

/* The unsubscribe URL template with {rcpt} and {queue_id} filled in,
 * percent-encoded (RFC 3986 unreserved kept), into buf. Returns the
 * length, -1 if it does not fit. */
int dkim_job_unsub_url(const char *tmpl, const char *rcpt, const char *queue_id, char *buf,
		       size_t cap);

#endif
