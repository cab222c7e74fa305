/*
 * queue.c: opening the LMDB environment and the group committer. See
 * queue.h for the layout and the contract.
 *
 * LMDB is opened with MDB_WRITEMAP: the committer copies each body from
 * the workers' receive buffers straight into the map (MDB_RESERVE), the
 * only user-space copy a body byte gets; the commit then msyncs it.
 */
#include "queue/queue_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Each outbound transaction holds a read snapshot of its body. */
#define QUEUE_MAX_READERS 16384

static uint64_t queue_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void queue_id_str(uint64_t id, char buf[17])
{
	snprintf(buf, 17, "%016" PRIx64, id);
}

int queue_id_parse(const char *s, uint64_t *id_r)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		int d;

		if (s[i] >= '0' && s[i] <= '9')
			d = s[i] - '0';
		else if (s[i] >= 'a' && s[i] <= 'f')
			d = s[i] - 'a' + 10;
		else if (s[i] >= 'A' && s[i] <= 'F')
			d = s[i] - 'A' + 10;
		else
			return -EINVAL;
		if (i >= 16)
			return -EINVAL;
		v = (v << 4) | (uint64_t)d;
	}
	if (i == 0)
		return -EINVAL;
	*id_r = v;
	return 0;
}

/* Write one message into the open transaction. */
int queue_put_msg(struct queue *q, MDB_txn *txn, struct queue_msg *m)
{
	unsigned char key[8], skey[16];
	MDB_val k = { 8, key }, v, sk = { 16, skey }, sv = { 0, NULL };
	size_t total = 0;
	char *dst;
	int rc;

	for (unsigned i = 0; i < m->qm_iovcnt; i++)
		total += m->qm_iov[i].iov_len;
	m->qm_rec.size = total;
	queue_key_put(key, m->qm_id);
	v.mv_size = qrecord_encoded_size(&m->qm_rec);
	rc = mdb_put(txn, q->q_meta, &k, &v, MDB_RESERVE | MDB_NOOVERWRITE);
	if (rc != 0)
		return rc;
	qrecord_encode(&m->qm_rec, v.mv_data);
	v.mv_size = total;
	rc = mdb_put(txn, q->q_body, &k, &v, MDB_RESERVE | MDB_NOOVERWRITE);
	if (rc != 0)
		return rc;
	dst = v.mv_data;
	for (unsigned i = 0; i < m->qm_iovcnt; i++) {
		memcpy(dst, m->qm_iov[i].iov_base, m->qm_iov[i].iov_len);
		dst += m->qm_iov[i].iov_len;
	}
	queue_key_put(skey, m->qm_rec.next_attempt);
	queue_key_put(skey + 8, m->qm_id);
	return mdb_put(txn, q->q_sched, &sk, &sv, 0);
}

/* Hand each message back to its sink; one notify per sink run. */
static void queue_return(struct queue_msg *list)
{
	while (list != NULL) {
		struct queue_sink *s = list->qm_sink;
		struct queue_msg *first = list, *last = list;

		while (last->qm_next != NULL && last->qm_next->qm_sink == s)
			last = last->qm_next;
		list = last->qm_next;
		last->qm_next = NULL;
		pthread_mutex_lock(&s->qs_lock);
		if (s->qs_tail != NULL)
			s->qs_tail->qm_next = first;
		else
			s->qs_head = first;
		s->qs_tail = last;
		pthread_mutex_unlock(&s->qs_lock);
		s->qs_notify(s->qs_ctx);
	}
}

/* Ids of the messages a commit stored, for the listener. */
struct queue_idlist {
	uint64_t *ids;
	unsigned n, cap;
};

static void queue_idlist_add(struct queue_idlist *l, uint64_t id)
{
	if (l->n == l->cap) {
		unsigned cap = l->cap ? l->cap * 2 : 64;
		uint64_t *n = realloc(l->ids, cap * sizeof(*n));

		if (n == NULL)
			return;		/* the scheduler's scan finds it later */
		l->ids = n;
		l->cap = cap;
	}
	l->ids[l->n++] = id;
}

/* One write transaction for everything gathered; one sync. */
static int queue_write_batch(struct queue *q, struct queue_msg *batch,
			     struct queue_update *ubatch, struct queue_idlist *ids)
{
	MDB_txn *txn;
	int rc;

	rc = mdb_txn_begin(q->q_env, NULL, 0, &txn);
	if (rc != 0)
		return rc;
	for (struct queue_msg *m = batch; m != NULL; m = m->qm_next) {
		m->qm_status = queue_put_msg(q, txn, m);
		if (m->qm_status != 0)
			goto fail;	/* the txn is unusable after a failed put */
		queue_idlist_add(ids, m->qm_id);
	}
	for (struct queue_update *u = ubatch; u != NULL; u = u->qu_next) {
		u->qu_status = queue_apply_update(q, txn, u);
		if (u->qu_status == -ENOENT)
			continue;	/* deleted meanwhile: nothing to do */
		if (u->qu_status != 0) {
			rc = u->qu_status;
			goto abort;
		}
		if (u->qu_new != NULL) {
			u->qu_new->qm_status = queue_put_msg(q, txn, u->qu_new);
			if (u->qu_new->qm_status != 0) {
				rc = u->qu_new->qm_status;
				goto abort;
			}
			queue_idlist_add(ids, u->qu_new->qm_id);
		}
	}
	return mdb_txn_commit(txn);
fail:
	for (struct queue_msg *m = batch; m != NULL; m = m->qm_next)
		if (m->qm_status != 0) {
			rc = m->qm_status;
			break;
		}
abort:
	mdb_txn_abort(txn);
	return rc;
}

static void queue_commit_batch(struct queue *q, struct queue_msg *batch,
			       struct queue_update *ubatch)
{
	struct queue_idlist ids = { NULL, 0, 0 };
	uint64_t t0 = queue_now_ns(), n = 0, failed = 0;
	int rc = queue_write_batch(q, batch, ubatch, &ids);

	if (rc != 0) {
		fprintf(stderr, "ringmta: queue commit failed: %s\n",
			rc > 0 ? mdb_strerror(rc) : strerror(-rc));
		ids.n = 0;
	}
	for (struct queue_msg *m = batch; m != NULL; m = m->qm_next) {
		if (rc != 0) {
			m->qm_status = rc > 0 ? -EIO : rc;
			failed++;
		} else {
			n++;
		}
	}
	for (struct queue_update *u = ubatch; u != NULL; u = u->qu_next)
		if (rc != 0)
			u->qu_status = rc > 0 ? -EIO : rc;
	pthread_mutex_lock(&q->q_lock);
	q->q_stats.commits++;
	q->q_stats.messages += n;
	q->q_stats.failures += failed;
	{
		static const double bounds[] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
			0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 10, 60 };
		uint64_t dt = queue_now_ns() - t0;
		unsigned b = 0;

		while (b < 14 && (double)dt / 1e9 > bounds[b])
			b++;
		q->q_stats.hist[b]++;
		q->q_stats.hist_count++;
		q->q_stats.hist_sum_ns += dt;
		q->q_stats.commit_ns += dt;
		for (struct queue_update *u = ubatch; u != NULL; u = u->qu_next)
			q->q_stats.updates++;
	}
	pthread_mutex_unlock(&q->q_lock);
	if (ids.n > 0 && q->q_listener != NULL)
		q->q_listener(q->q_listener_ctx, ids.ids, ids.n);
	free(ids.ids);
	queue_return(batch);
	while (ubatch != NULL) {
		struct queue_update *next = ubatch->qu_next;

		ubatch->qu_done(ubatch);
		ubatch = next;
	}
}

static void *queue_committer(void *arg)
{
	struct queue *q = arg;

	for (;;) {
		struct queue_msg *batch;
		struct queue_update *ubatch;

		pthread_mutex_lock(&q->q_lock);
		while (q->q_head == NULL && q->q_uhead == NULL && !q->q_stop)
			pthread_cond_wait(&q->q_cond, &q->q_lock);
		batch = q->q_head;
		ubatch = q->q_uhead;
		q->q_head = q->q_tail = NULL;
		q->q_uhead = q->q_utail = NULL;
		if (batch == NULL && ubatch == NULL && q->q_stop) {
			pthread_mutex_unlock(&q->q_lock);
			return NULL;
		}
		pthread_mutex_unlock(&q->q_lock);
		queue_commit_batch(q, batch, ubatch);
	}
}

void queue_submit_update(struct queue *q, struct queue_update *u)
{
	bool was_empty;

	u->qu_next = NULL;
	u->qu_status = 0;
	u->qu_removed = false;
	pthread_mutex_lock(&q->q_lock);
	was_empty = q->q_head == NULL && q->q_uhead == NULL;
	if (q->q_utail != NULL)
		q->q_utail->qu_next = u;
	else
		q->q_uhead = u;
	q->q_utail = u;
	pthread_mutex_unlock(&q->q_lock);
	if (was_empty)
		pthread_cond_signal(&q->q_cond);
}

void queue_set_listener(struct queue *q,
			void (*fn)(void *ctx, const uint64_t *ids, unsigned n),
			void *ctx)
{
	q->q_listener = fn;
	q->q_listener_ctx = ctx;
}

void queue_submit(struct queue *q, struct queue_msg *m)
{
	bool was_empty;

	m->qm_next = NULL;
	m->qm_status = 0;
	m->qm_submit_ns = queue_now_ns();
	pthread_mutex_lock(&q->q_lock);
	was_empty = q->q_head == NULL && q->q_uhead == NULL;
	if (q->q_tail != NULL)
		q->q_tail->qm_next = m;
	else
		q->q_head = m;
	q->q_tail = m;
	pthread_mutex_unlock(&q->q_lock);
	if (was_empty)
		pthread_cond_signal(&q->q_cond);
}

void queue_sink_init(struct queue_sink *s, void (*notify)(void *), void *ctx)
{
	pthread_mutex_init(&s->qs_lock, NULL);
	s->qs_head = s->qs_tail = NULL;
	s->qs_notify = notify;
	s->qs_ctx = ctx;
}

void queue_sink_destroy(struct queue_sink *s)
{
	pthread_mutex_destroy(&s->qs_lock);
}

struct queue_msg *queue_sink_take(struct queue_sink *s)
{
	struct queue_msg *m;

	pthread_mutex_lock(&s->qs_lock);
	m = s->qs_head;
	s->qs_head = s->qs_tail = NULL;
	pthread_mutex_unlock(&s->qs_lock);
	return m;
}

uint64_t queue_last_id(const struct queue *q)
{
	return q->q_last_id;
}

void queue_get_stats(struct queue *q, struct queue_stats *st_r)
{
	pthread_mutex_lock(&q->q_lock);
	*st_r = q->q_stats;
	pthread_mutex_unlock(&q->q_lock);
}

static int queue_open_dbs(struct queue *q)
{
	unsigned dflags = (q->q_flags & QUEUE_F_RDONLY) ? 0 : MDB_CREATE;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	rc = mdb_txn_begin(q->q_env, NULL, (q->q_flags & QUEUE_F_RDONLY) ? MDB_RDONLY : 0, &txn);
	if (rc != 0)
		return rc;
	if ((rc = mdb_dbi_open(txn, "meta", dflags, &q->q_meta)) != 0 ||
	    (rc = mdb_dbi_open(txn, "body", dflags, &q->q_body)) != 0 ||
	    (rc = mdb_dbi_open(txn, "sched", dflags, &q->q_sched)) != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	rc = mdb_cursor_open(txn, q->q_meta, &cur);
	if (rc == 0) {
		if (mdb_cursor_get(cur, &k, &v, MDB_LAST) == 0 && k.mv_size == 8)
			q->q_last_id = queue_key_get(k.mv_data);
		mdb_cursor_close(cur);
	}
	return mdb_txn_commit(txn);
}

int queue_open(struct queue **q_r, const char *dir, uint64_t map_size,
	       unsigned flags, char *err, size_t errlen)
{
	struct queue *q;
	unsigned eflags = MDB_WRITEMAP | MDB_NOTLS | MDB_NORDAHEAD;
	int rc;

	*q_r = NULL;
	if (flags & QUEUE_F_RDONLY)
		eflags = MDB_RDONLY | MDB_NOTLS;
	if (!(flags & QUEUE_F_RDONLY) && mkdir(dir, 0750) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "queue_dir %s: %s", dir, strerror(errno));
		return -errno;
	}
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return -ENOMEM;
	q->q_flags = flags;
	pthread_mutex_init(&q->q_lock, NULL);
	pthread_cond_init(&q->q_cond, NULL);
	if ((rc = mdb_env_create(&q->q_env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(q->q_env, 4)) != 0 ||
	    (rc = mdb_env_set_mapsize(q->q_env, map_size)) != 0 ||
	    (rc = mdb_env_set_maxreaders(q->q_env, QUEUE_MAX_READERS)) != 0 ||
	    (rc = mdb_env_open(q->q_env, dir, eflags, 0640)) != 0 ||
	    (rc = queue_open_dbs(q)) != 0) {
		snprintf(err, errlen, "queue %s: %s", dir, mdb_strerror(rc));
		queue_close(&q);
		return rc > 0 ? -EIO : rc;
	}
	if (flags & QUEUE_F_COMMITTER) {
		rc = pthread_create(&q->q_thread, NULL, queue_committer, q);
		if (rc != 0) {
			snprintf(err, errlen, "committer thread: %s", strerror(rc));
			queue_close(&q);
			return -rc;
		}
		q->q_thread_started = true;
	}
	*q_r = q;
	return 0;
}

void queue_close(struct queue **qp)
{
	struct queue *q = *qp;

	if (q == NULL)
		return;
	if (q->q_thread_started) {
		pthread_mutex_lock(&q->q_lock);
		q->q_stop = true;
		pthread_mutex_unlock(&q->q_lock);
		pthread_cond_signal(&q->q_cond);
		pthread_join(q->q_thread, NULL);
	}
	if (q->q_env != NULL)
		mdb_env_close(q->q_env);
	pthread_mutex_destroy(&q->q_lock);
	pthread_cond_destroy(&q->q_cond);
	free(q);
	*qp = NULL;
}
