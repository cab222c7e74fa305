/*
 * auth_pool.c: the password-check threads and the sinks jobs return
 * through. See auth_pool.h.
 */
#include "core/sasl/auth_pool.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sasl/auth.h"

struct auth_pool {
	pthread_mutex_t ap_lock;
	pthread_cond_t ap_cond;
	struct auth_job *ap_head, *ap_tail;	/* waiting to run */
	unsigned ap_queued, ap_max_queued;
	bool ap_stop;
	unsigned ap_nthreads;
	pthread_t *ap_threads;
};

static void auth_sink_put(struct auth_job *j)
{
	struct auth_sink *s = j->aj_sink;

	j->aj_next = NULL;
	pthread_mutex_lock(&s->as_lock);
	if (s->as_tail != NULL)
		s->as_tail->aj_next = j;
	else
		s->as_head = j;
	s->as_tail = j;
	pthread_mutex_unlock(&s->as_lock);
	s->as_notify(s->as_ctx);
}

static void *auth_pool_main(void *arg)
{
	struct auth_pool *p = arg;

	for (;;) {
		struct auth_job *j;

		pthread_mutex_lock(&p->ap_lock);
		while (p->ap_head == NULL && !p->ap_stop)
			pthread_cond_wait(&p->ap_cond, &p->ap_lock);
		j = p->ap_head;
		if (j == NULL || p->ap_stop) {
			pthread_mutex_unlock(&p->ap_lock);
			return NULL;
		}
		p->ap_head = j->aj_next;
		if (p->ap_head == NULL)
			p->ap_tail = NULL;
		p->ap_queued--;
		pthread_mutex_unlock(&p->ap_lock);
		j->aj_result = auth_verify(j->aj_x);
		auth_sink_put(j);
	}
}

int auth_pool_start(struct auth_pool **pool_r, unsigned nthreads, unsigned max_queued,
		    char *err, size_t errlen)
{
	struct auth_pool *p = calloc(1, sizeof(*p));
	int ret;

	*pool_r = NULL;
	if (nthreads == 0)
		nthreads = 1;
	if (p == NULL || (p->ap_threads = calloc(nthreads, sizeof(*p->ap_threads))) == NULL) {
		free(p);
		snprintf(err, errlen, "auth: out of memory");
		return -1;
	}
	pthread_mutex_init(&p->ap_lock, NULL);
	pthread_cond_init(&p->ap_cond, NULL);
	p->ap_max_queued = max_queued;
	for (unsigned i = 0; i < nthreads; i++) {
		ret = pthread_create(&p->ap_threads[i], NULL, auth_pool_main, p);
		if (ret != 0) {
			snprintf(err, errlen, "auth: password check thread: %s", strerror(ret));
			auth_pool_stop(&p);
			return -1;
		}
		p->ap_nthreads = i + 1;
	}
	*pool_r = p;
	return 0;
}

int auth_pool_submit(struct auth_pool *p, struct auth_job *j)
{
	pthread_mutex_lock(&p->ap_lock);
	if (p->ap_stop || p->ap_queued >= p->ap_max_queued) {
		pthread_mutex_unlock(&p->ap_lock);
		return -EAGAIN;
	}
	j->aj_next = NULL;
	if (p->ap_tail != NULL)
		p->ap_tail->aj_next = j;
	else
		p->ap_head = j;
	p->ap_tail = j;
	p->ap_queued++;
	pthread_cond_signal(&p->ap_cond);
	pthread_mutex_unlock(&p->ap_lock);
	return 0;
}

void auth_pool_stop(struct auth_pool **pp)
{
	struct auth_pool *p = *pp;
	struct auth_job *j, *next;

	if (p == NULL)
		return;
	*pp = NULL;
	pthread_mutex_lock(&p->ap_lock);
	p->ap_stop = true;
	pthread_cond_broadcast(&p->ap_cond);
	j = p->ap_head;
	p->ap_head = p->ap_tail = NULL;
	p->ap_queued = 0;
	pthread_mutex_unlock(&p->ap_lock);
	for (unsigned i = 0; i < p->ap_nthreads; i++)
		pthread_join(p->ap_threads[i], NULL);
	for (; j != NULL; j = next) {
		next = j->aj_next;
		auth_exchange_clear(j->aj_x);
		j->aj_result = AUTH_R_TEMP;
		auth_sink_put(j);
	}
	pthread_cond_destroy(&p->ap_cond);
	pthread_mutex_destroy(&p->ap_lock);
	free(p->ap_threads);
	free(p);
}

void auth_sink_init(struct auth_sink *s, void (*notify)(void *), void *ctx)
{
	pthread_mutex_init(&s->as_lock, NULL);
	s->as_head = s->as_tail = NULL;
	s->as_notify = notify;
	s->as_ctx = ctx;
}

void auth_sink_destroy(struct auth_sink *s)
{
	pthread_mutex_destroy(&s->as_lock);
}

struct auth_job *auth_sink_take(struct auth_sink *s)
{
	struct auth_job *j;

	pthread_mutex_lock(&s->as_lock);
	j = s->as_head;
	s->as_head = s->as_tail = NULL;
	pthread_mutex_unlock(&s->as_lock);
	return j;
}
