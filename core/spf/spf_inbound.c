/*
 * spf_inbound.c: see spf_inbound.h. The job runs spf_check() on a pool
 * thread; the field builder is a pure function, tested in test_spf_ar.
 */
#include "core/spf/spf_inbound.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void spf_job_run(struct work_job *w)
{
	struct spf_job *j = (struct spf_job *)w;

	j->sj_result = spf_check(j->sj_spf, (const struct sockaddr *)&j->sj_client, j->sj_helo,
				 j->sj_from, j->sj_why, sizeof(j->sj_why));
}

struct spf_job *spf_job_new(const struct sockaddr *client, const char *helo, const char *from,
			    size_t from_len, void *owner, void (*done)(struct work_job *j))
{
	struct spf_job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return NULL;
	memcpy(&j->sj_client, client, client->sa_family == AF_INET6 ?
	       sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
	j->sj_helo = strdup(helo != NULL ? helo : "");
	j->sj_from = strndup(from != NULL ? from : "", from_len);
	if (j->sj_helo == NULL || j->sj_from == NULL) {
		spf_job_free(&j);
		return NULL;
	}
	j->sj_work.wj_run = spf_job_run;
	j->sj_work.wj_done = done;
	j->sj_work.wj_owner = owner;
	/* What a job that never ran (pool stopped) reports. */
	j->sj_result = SPF_RES_TEMPERROR;
	snprintf(j->sj_why, sizeof(j->sj_why), "SPF check not run (shutting down)");
	return j;
}

void spf_job_free(struct spf_job **j_r)
{
	struct spf_job *j = *j_r;

	if (j == NULL)
		return;
	*j_r = NULL;
	free(j->sj_helo);
	free(j->sj_from);
	free(j);
}

/* A property value (RFC 8601 pvalue): a domain name as is, anything
 * else (a HELO argument may hold anything) as a quoted string. */
static int spf_ar_value(char *buf, size_t cap, size_t *o, const char *v)
{
	bool token = v[0] != '\0';

	for (const char *p = v; *p != '\0' && token; p++)
		token = (unsigned char)*p >= 0x80 ||
			strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
			       ".-_", *p) != NULL;
	if (token) {
		size_t n = strlen(v);

		if (*o + n >= cap)
			return -1;
		memcpy(buf + *o, v, n);
		*o += n;
		return 0;
	}
	if (*o + 1 >= cap)
		return -1;
	buf[(*o)++] = '"';
	for (const char *p = v; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			continue;
		if (*o + 3 >= cap)
			return -1;
		if (*p == '"' || *p == '\\')
			buf[(*o)++] = '\\';
		buf[(*o)++] = *p;
	}
	if (*o + 1 >= cap)
		return -1;
	buf[(*o)++] = '"';
	return 0;
}

int spf_auth_results(char *buf, size_t cap, const char *authserv, enum spf_result r,
		     const char *from, const char *helo)
{
	const char *at = from != NULL ? strrchr(from, '@') : NULL;
	size_t o;
	int n;

	n = snprintf(buf, cap, "Authentication-Results: %s; spf=%s ", authserv,
		     spf_result_name(r));
	if (n < 0 || (size_t)n >= cap)
		return -1;
	o = (size_t)n;
	if (from != NULL && from[0] != '\0') {
		if (o + 14 >= cap)
			return -1;
		memcpy(buf + o, "smtp.mailfrom=", 14);
		o += 14;
		if (spf_ar_value(buf, cap, &o, at != NULL ? at + 1 : from) < 0)
			return -1;
	} else {
		if (o + 10 >= cap)
			return -1;
		memcpy(buf + o, "smtp.helo=", 10);
		o += 10;
		if (spf_ar_value(buf, cap, &o, helo != NULL && helo[0] ? helo : "unknown") < 0)
			return -1;
	}
	if (o + 3 > cap)
		return -1;
	memcpy(buf + o, "\r\n", 3);
	return (int)(o + 2);
}
