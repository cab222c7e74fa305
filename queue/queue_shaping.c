/*
 * queue_shaping.c: named blobs in the queue environment's "shaping"
 * database, so that what the shaping engine learned (suspensions, ramps,
 * learned limits, warm-up counters) survives a restart with the mail it
 * concerns. The blobs are opaque here: their owners version and check
 * them. Writes are rare (at most once a second, and at shutdown) and
 * small, so each is its own transaction outside the committer's group
 * commit.
 */
#include <errno.h>
#include <string.h>

#include "queue/queue_internal.h"

int queue_blob_put(struct queue *q, const char *name, const void *data, size_t len)
{
	MDB_txn *txn;
	MDB_val k = { strlen(name), (void *)name }, v = { len, (void *)data };
	int rc;

	if (!q->q_has_shaping || (q->q_flags & QUEUE_F_RDONLY))
		return -EROFS;
	rc = queue_txn_begin_write(q, &txn);
	if (rc != 0)
		return queue_status(rc);
	rc = mdb_put(txn, q->q_shaping, &k, &v, 0);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return queue_status(rc);
	}
	return queue_status(mdb_txn_commit(txn));
}

int queue_blob_get(struct queue *q, const char *name,
		   void (*fn)(void *arg, const void *data, size_t len), void *arg)
{
	MDB_txn *txn;
	MDB_val k = { strlen(name), (void *)name }, v;
	int rc;

	if (!q->q_has_shaping)
		return -ENOENT;
	rc = mdb_txn_begin(q->q_env, NULL, MDB_RDONLY, &txn);
	if (rc != 0)
		return queue_status(rc);
	rc = mdb_get(txn, q->q_shaping, &k, &v);
	if (rc == 0)
		fn(arg, v.mv_data, v.mv_size);
	mdb_txn_abort(txn);
	return rc == MDB_NOTFOUND ? -ENOENT : queue_status(rc);
}
