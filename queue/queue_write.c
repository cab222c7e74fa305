/*
 * queue_write.c: the committer's write transaction for one batch (see
 * queue_internal.h): new messages put with appends where the keys allow,
 * updates before them, an item that fails dropped and the batch written
 * again without it. README "Pages written per commit" and "Queue storage".
 */
#include "queue/queue_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void queue_idlist_add(struct queue_idlist *l, uint64_t id)
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

static void queue_log_item(const char *what, uint64_t id, int err)
{
	char ids[17];

	queue_id_str(id, ids);
	fprintf(stderr, "ringmta: queue: %s %s not stored: %s\n", what, ids,
		queue_strerror(err));
}

/*
 * A put that appends when the key is above every key of the database as
 * far as the committer knows (the hints in struct queue may be stale:
 * the queue tools write beside the daemon), falling back to a plain put
 * when LMDB says it is not. Appending fills the last leaf page before
 * starting the next one; a plain put of a growing key splits it in
 * half, so pages stay half empty and every batch rewrites more of them.
 */
static int queue_put_app(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, MDB_val *v,
			 unsigned flags, bool app)
{
	int rc;

	if (app) {
		rc = mdb_put(txn, dbi, k, v, flags | MDB_APPEND);
		if (rc != MDB_KEYEXIST)
			return rc;
	}
	return mdb_put(txn, dbi, k, v, flags);
}

/*
 * One message's three entries in the open transaction: record and body
 * reserved and filled at once (LMDB's MDB_RESERVE space is valid only
 * until the next update), schedule entry put. Keys above what the
 * committer knows of append.
 */
struct queue_fill {
	void (*qf_rec)(const struct queue_fill *f, void *dst);
	void (*qf_body)(const struct queue_fill *f, void *dst);
	const void *qf_ctx;
	const void *qf_rec_src, *qf_body_src;	/* queue_put_raw's */
	size_t qf_rec_len, qf_body_len;
};

static int queue_put_entries(struct queue *q, MDB_txn *txn, uint64_t id, uint64_t next_attempt,
			     const struct queue_fill *f)
{
	unsigned char key[8], skey[16];
	MDB_val k = { 8, key }, v = { f->qf_rec_len, NULL }, sk = { 16, skey }, sv = { 0, NULL };
	bool app = id > q->q_append_id;
	int rc;

	queue_key_put(key, id);
	if (app)
		q->q_append_id = id;
	rc = queue_put_app(txn, q->q_meta, &k, &v, MDB_RESERVE | MDB_NOOVERWRITE, app);
	if (rc != 0)
		return rc;
	f->qf_rec(f, v.mv_data);
	v = (MDB_val){ f->qf_body_len, NULL };
	rc = queue_put_app(txn, q->q_body, &k, &v, MDB_RESERVE | MDB_NOOVERWRITE, app);
	if (rc != 0)
		return rc;
	f->qf_body(f, v.mv_data);
	queue_key_put(skey, next_attempt);
	queue_key_put(skey + 8, id);
	app = memcmp(skey, q->q_append_sched, 16) > 0;
	if (app)
		memcpy(q->q_append_sched, skey, 16);
	return queue_put_app(txn, q->q_sched, &sk, &sv, 0, app);
}

static void queue_fill_encode(const struct queue_fill *f, void *dst)
{
	const struct queue_msg *m = f->qf_ctx;

	qrecord_encode(&m->qm_rec, dst);
}

/* The body from the workers' receive buffers: the one copy it gets. */
static void queue_fill_iov(const struct queue_fill *f, void *dst)
{
	const struct queue_msg *m = f->qf_ctx;
	char *d = dst;

	for (unsigned i = 0; i < m->qm_iovcnt; i++) {
		memcpy(d, m->qm_iov[i].iov_base, m->qm_iov[i].iov_len);
		d += m->qm_iov[i].iov_len;
	}
}

static void queue_fill_rec_copy(const struct queue_fill *f, void *dst)
{
	if (f->qf_rec_len > 0)
		memcpy(dst, f->qf_rec_src, f->qf_rec_len);
}

static void queue_fill_body_copy(const struct queue_fill *f, void *dst)
{
	if (f->qf_body_len > 0)
		memcpy(dst, f->qf_body_src, f->qf_body_len);
}

/* Write one message into the open transaction. */
int queue_put_msg(struct queue *q, MDB_txn *txn, struct queue_msg *m)
{
	struct queue_fill f = { queue_fill_encode, queue_fill_iov, m, NULL, NULL, 0, 0 };

	for (unsigned i = 0; i < m->qm_iovcnt; i++)
		f.qf_body_len += m->qm_iov[i].iov_len;
	m->qm_rec.size = f.qf_body_len;
	f.qf_rec_len = qrecord_encoded_size(&m->qm_rec);
	return queue_put_entries(q, txn, m->qm_id, m->qm_rec.next_attempt, &f);
}

int queue_put_raw(struct queue *q, MDB_txn *txn, uint64_t id, const void *rec, size_t rec_len,
		  uint64_t next_attempt, const void *body, size_t body_len)
{
	struct queue_fill f = { queue_fill_rec_copy, queue_fill_body_copy, NULL, rec, body,
				rec_len, body_len };

	return queue_put_entries(q, txn, id, next_attempt, &f);
}

static void queue_refuse_updates(struct queue_update *u)
{
	for (; u != NULL; u = u->qu_next) {
		if (u->qu_status != 0 && u->qu_status != -ENOENT)
			continue;
		u->qu_status = -ENOSPC;
		if (u->qu_new != NULL)
			u->qu_new->qm_status = -ENOSPC;
	}
}

static void queue_refuse_bounces(struct queue_update *u)
{
	for (; u != NULL; u = u->qu_next)
		if (u->qu_new != NULL && u->qu_status == 0)
			u->qu_status = u->qu_new->qm_status = -ENOSPC;
}

/* The new messages of a batch into txn: 0, or 1 when an item failed and
 * was marked (the batch is to be written again without it). */
static int queue_write_msgs(struct queue *q, MDB_txn *txn, struct queue_msg *batch,
			    struct queue_idlist *ids)
{
	int rc;

	for (struct queue_msg *m = batch; m != NULL; m = m->qm_next) {
		if (m->qm_status != 0)
			continue;	/* refused earlier */
		rc = queue_put_msg(q, txn, m);
		if (rc == 0)
			rc = queue_events_put(q, txn, m->qm_events);
		if (rc != 0) {
			queue_log_item("message", m->qm_id, rc);
			m->qm_status = queue_status(rc);
			if (rc == MDB_MAP_FULL)
				for (struct queue_msg *o = batch; o != NULL; o = o->qm_next)
					if (o->qm_status == 0)
						o->qm_status = -ENOSPC;
			return 1;
		}
		queue_idlist_add(ids, m->qm_id);
	}
	return 0;
}

/* The updates of a batch (and their bounces) into txn: 0, or 1 as above. */
static int queue_write_updates(struct queue *q, MDB_txn *txn, struct queue_update *ubatch,
			       struct queue_idlist *ids)
{
	int rc;

	for (struct queue_update *u = ubatch; u != NULL; u = u->qu_next) {
		if (u->qu_status != 0 && u->qu_status != -ENOENT)
			continue;	/* failed earlier */
		u->qu_removed = false;
		rc = u->qu_id == 0 && u->qu_nrcpt == 0 ? 0 :	/* events alone */
		     queue_apply_update(q, txn, u);
		if (rc == 0)
			rc = queue_status(queue_events_put(q, txn, u->qu_events));
		u->qu_status = rc;
		if (rc == -ENOENT)
			continue;	/* deleted meanwhile: nothing to do */
		if (rc != 0) {
			queue_log_item("update of", u->qu_id, rc);
			/* A full map has no room for the updates after this
			 * one either: refuse them now (delivery tries them
			 * again later) rather than rewrite the batch once
			 * per update. */
			if (rc == -ENOSPC)
				queue_refuse_updates(u->qu_next);
			return 1;
		}
		if (u->qu_new != NULL) {
			rc = queue_put_msg(q, txn, u->qu_new);
			if (rc != 0) {
				queue_log_item("bounce", u->qu_new->qm_id, rc);
				u->qu_new->qm_status = u->qu_status = queue_status(rc);
				if (rc == MDB_MAP_FULL)	/* no other bounce fits */
					queue_refuse_bounces(u->qu_next);
				return 1;
			}
			queue_idlist_add(ids, u->qu_new->qm_id);
		}
	}
	return 0;
}

/*
 * One write transaction for everything gathered; one sync. An item whose
 * write fails (a damaged record, no room for a bounce) must not take the
 * batch down: the transaction is aborted (LMDB's is unusable after most
 * errors; a nested transaction per item would cost every item to spare a
 * rare retry) and the batch is written again without it, so at most one retry per failing item. A full map
 * refuses all new mail of the batch at once.
 *
 * The updates go first: the deletes of delivered mail empty leaf pages,
 * which LMDB copied (copy on write) into pages dirty in this transaction;
 * an emptied one goes to the transaction's loose list, and the new
 * messages written next take those pages again. In the other order the
 * emptied copies are pages of their own, and the commit writes them all
 * the same.
 */
int queue_write_batch(struct queue *q, struct queue_msg *batch,
			     struct queue_update *ubatch, struct queue_idlist *ids, bool checkpoint)
{
	uint64_t seq0 = q->q_event_seq;
	unsigned n0 = ids->n;	/* what the journal stored stays listed */
	MDB_txn *txn;
	int rc;

	for (;;) {
		ids->n = n0;
		q->q_event_seq = seq0;	/* a retried batch numbers again */
		rc = queue_txn_begin_write(q, &txn);
		if (rc != 0)
			return queue_status(rc);
		/* A checkpoint: the journal's messages first (queue_journal.c);
		 * a failure there fails the batch, which is tried again. */
		if (checkpoint && (rc = queue_jnl_cp_put(q, txn)) != 0) {
			mdb_txn_abort(txn);
			q->q_event_seq = seq0;
			return queue_status(rc);
		}
		if (queue_write_updates(q, txn, ubatch, ids) != 0 ||
		    queue_write_msgs(q, txn, batch, ids) != 0) {
			mdb_txn_abort(txn);
			continue;
		}
		rc = mdb_txn_commit(txn);
		if (rc != 0)
			q->q_event_seq = seq0;
		return queue_status(rc);
	}
}

