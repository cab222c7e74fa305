/*
 * queue_events.c: the "events" database (see queue.h). Keys are 8-byte
 * big-endian sequences, so LMDB's order is the order of events; key 0
 * holds the highest sequence ever deleted, so that a queue whose events
 * were all sent and trimmed still continues its numbering after a restart
 * (an event id is never given twice). The committer writes records inside
 * its batch transaction; sinks read them with read transactions of their
 * own; trimming is a short write transaction of its own.
 */
#include "queue/queue_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int queue_events_open(struct queue *q, MDB_txn *txn, unsigned dflags)
{
	MDB_cursor *cur;
	MDB_val k, v;
	uint64_t last = 0;
	int rc = mdb_dbi_open(txn, "events", dflags, &q->q_events);

	if (rc == MDB_NOTFOUND)		/* a read-only open of an older file */
		return 0;
	if (rc != 0)
		return rc;
	q->q_has_events = true;
	rc = mdb_cursor_open(txn, q->q_events, &cur);
	if (rc != 0)
		return rc;
	/* The last 8-byte key, or the floor under key 0. */
	if (mdb_cursor_get(cur, &k, &v, MDB_LAST) == 0 && k.mv_size == 8)
		last = queue_key_get(k.mv_data);
	if (last == 0 && mdb_cursor_get(cur, &k, &v, MDB_FIRST) == 0 && k.mv_size == 8 &&
	    queue_key_get(k.mv_data) == 0 && v.mv_size == 8)
		last = queue_key_get(v.mv_data);
	mdb_cursor_close(cur);
	q->q_event_seq = last;
	atomic_store(&q->q_event_last, last);
	return 0;
}

int queue_events_put(struct queue *q, MDB_txn *txn, const struct queue_event *list)
{
	unsigned char key[8];
	MDB_val k = { 8, key }, v;
	int rc;

	for (; list != NULL; list = list->qe_next) {
		if (!q->q_has_events)
			return EROFS;
		queue_key_put(key, q->q_event_seq + 1);
		v.mv_size = list->qe_len;
		v.mv_data = (void *)list->qe_data;
		rc = mdb_put(txn, q->q_events, &k, &v, MDB_APPEND);
		if (rc != 0)
			return rc;
		q->q_event_seq++;
	}
	return 0;
}

uint64_t queue_events_last(struct queue *q)
{
	return atomic_load(&q->q_event_last);
}

void queue_set_event_listener(struct queue *q, void (*fn)(void *ctx, uint64_t last),
			      void *ctx)
{
	pthread_mutex_lock(&q->q_lock);
	q->q_event_listener = fn;
	q->q_event_listener_ctx = ctx;
	pthread_mutex_unlock(&q->q_lock);
}

void queue_events_free(struct queue_event **list)
{
	while (*list != NULL) {
		struct queue_event *e = *list;

		*list = e->qe_next;
		free(e);
	}
}

int queue_events_read(struct queue *q, uint64_t after, unsigned max,
		      int (*cb)(void *ctx, uint64_t seq, const char *data, size_t len),
		      void *ctx)
{
	unsigned char key[8];
	MDB_val k = { 8, key }, v;
	MDB_txn *txn;
	MDB_cursor *cur;
	unsigned n = 0;
	int rc;

	if (!q->q_has_events)
		return 0;
	queue_readers_check(q, false);
	rc = mdb_txn_begin(q->q_env, NULL, MDB_RDONLY, &txn);
	if (rc != 0)
		return queue_status(rc);
	rc = mdb_cursor_open(txn, q->q_events, &cur);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return queue_status(rc);
	}
	queue_key_put(key, after + 1);
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && n < max && k.mv_size == 8) {
		if (cb(ctx, queue_key_get(k.mv_data), v.mv_data, v.mv_size) != 0)
			break;
		n++;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : queue_status(rc);
}

int queue_events_trim(struct queue *q, uint64_t upto, uint64_t *n_r)
{
	unsigned char key[8], fkey[8] = { 0 }, fval[8];
	MDB_val k = { 8, key }, v, fk = { 8, fkey }, fv = { 8, fval };
	MDB_txn *txn;
	MDB_cursor *cur;
	uint64_t n = 0;
	int rc;

	*n_r = 0;
	if (!q->q_has_events || upto == 0)
		return 0;
	rc = queue_txn_begin_write(q, &txn);
	if (rc != 0)
		return queue_status(rc);
	rc = mdb_cursor_open(txn, q->q_events, &cur);
	if (rc != 0)
		goto out;
	queue_key_put(key, 1);
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size == 8 && queue_key_get(k.mv_data) <= upto) {
		rc = mdb_cursor_del(cur, 0);
		if (rc != 0)
			break;
		n++;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);	/* the one after */
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND)
		goto out;
	rc = 0;
	if (n > 0) {
		MDB_val old;

		if (mdb_get(txn, q->q_events, &fk, &old) == 0 && old.mv_size == 8 &&
		    queue_key_get(old.mv_data) > upto)
			upto = queue_key_get(old.mv_data);
		queue_key_put(fval, upto);
		rc = mdb_put(txn, q->q_events, &fk, &fv, 0);
	}
out:
	if (rc != 0) {
		mdb_txn_abort(txn);
		return queue_status(rc);
	}
	rc = mdb_txn_commit(txn);
	if (rc == 0)
		*n_r = n;
	return queue_status(rc);
}

int queue_events_stat(struct queue *q, uint64_t *count_r, uint64_t *first_r)
{
	unsigned char key[8];
	MDB_val k = { 8, key }, v;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_stat st;
	int rc;

	*count_r = *first_r = 0;
	if (!q->q_has_events)
		return 0;
	rc = mdb_txn_begin(q->q_env, NULL, MDB_RDONLY, &txn);
	if (rc != 0)
		return queue_status(rc);
	rc = mdb_stat(txn, q->q_events, &st);
	if (rc == 0)
		rc = mdb_cursor_open(txn, q->q_events, &cur);
	if (rc == 0) {
		queue_key_put(key, 1);
		if (mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE) == 0 && k.mv_size == 8)
			*first_r = queue_key_get(k.mv_data);
		mdb_cursor_close(cur);
		/* Key 0 (the floor) is not an event. */
		*count_r = *first_r != 0 ? queue_events_last(q) - *first_r + 1 : 0;
		if (*count_r > st.ms_entries)
			*count_r = st.ms_entries;
	}
	mdb_txn_abort(txn);
	return queue_status(rc);
}
