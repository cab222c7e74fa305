/*
 * queue_update.c: delivery results into the store (inside the committer's
 * write transaction), and the read side used by delivery: records, bodies
 * read in place, and the schedule of due messages.
 */
#include "queue/queue_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void queue_sched_key(unsigned char k[16], uint64_t when, uint64_t id)
{
	queue_key_put(k, when);
	queue_key_put(k + 8, id);
}

static int queue_apply(struct queue *q, MDB_txn *txn, struct queue_update *u,
		       bool count_attempt)
{
	unsigned char key[8], skey[16];
	MDB_val k = { 8, key }, v, sk = { 16, skey }, sv = { 0, NULL };
	struct qrecord r;
	struct qrcpt *rcpts;
	size_t off = 0, elen = 0;
	uint64_t next = UINT64_MAX, old_next;
	uint32_t i = 0, pending = 0;
	void *enc;
	int rc;

	queue_key_put(key, u->qu_id);
	rc = mdb_get(txn, q->q_meta, &k, &v);
	if (rc == MDB_NOTFOUND)
		return -ENOENT;
	if (rc != 0)
		return queue_status(rc);
	if (qrecord_decode(v.mv_data, v.mv_size, &r) < 0)
		return -EBADMSG;
	rcpts = calloc(r.nrcpt ? r.nrcpt : 1, sizeof(*rcpts));
	if (rcpts == NULL)
		return -ENOMEM;
	while (i < r.nrcpt && qrecord_rcpt_next(&r, &off, &rcpts[i]))
		i++;
	for (unsigned j = 0; j < u->qu_nrcpt; j++) {
		const struct queue_rcpt_update *ru = &u->qu_rcpts[j];

		if (ru->qru_index >= r.nrcpt)
			continue;
		rcpts[ru->qru_index].state = ru->qru_state;
		if (!ru->qru_no_attempt || ru->qru_bclass != 0)
			rcpts[ru->qru_index].bclass = ru->qru_bclass;
		if (count_attempt && !ru->qru_no_attempt &&
		    rcpts[ru->qru_index].attempts < UINT16_MAX)
			rcpts[ru->qru_index].attempts++;
		rcpts[ru->qru_index].next_attempt = ru->qru_next_attempt;
		/* A wait without an attempt that says nothing new keeps the
		 * last real reply and its class. */
		if (ru->qru_no_attempt && ru->qru_reply == NULL)
			continue;
		rcpts[ru->qru_index].reply = ru->qru_reply;
		rcpts[ru->qru_index].reply_len = ru->qru_reply_len;
	}
	for (i = 0; i < r.nrcpt; i++) {
		if (rcpts[i].state != QRCPT_PENDING)
			continue;
		pending++;
		if (rcpts[i].next_attempt < next)
			next = rcpts[i].next_attempt;
	}
	old_next = r.next_attempt;
	/* Encode the new record before any update: r's strings (sender,
	 * addresses, replies) point into v, which LMDB keeps valid only until
	 * the next update in this transaction; the del below may copy the
	 * page v lies in, or spill and free it. */
	enc = NULL;
	if (pending > 0) {
		r.flags = (r.flags | u->qu_set_flags) & ~u->qu_clear_flags;
		/* A held message is never due: its schedule entry waits at
		 * the end. */
		r.next_attempt = (r.flags & QRECORD_F_HELD) ? QRECORD_HELD_NEXT : next;
		r.rcpts = rcpts;
		elen = qrecord_encoded_size(&r);
		if ((enc = malloc(elen)) == NULL) {
			free(rcpts);
			return -ENOMEM;
		}
		qrecord_encode(&r, enc);
	}
	free(rcpts);
	queue_sched_key(skey, old_next, u->qu_id);
	(void)mdb_del(txn, q->q_sched, &sk, NULL);	/* absent is fine */
	if (pending == 0) {
		u->qu_removed = true;
		rc = mdb_del(txn, q->q_meta, &k, NULL);
		if (rc == 0)
			rc = mdb_del(txn, q->q_body, &k, NULL);
		return rc == 0 || rc == MDB_NOTFOUND ? 0 : queue_status(rc);
	}
	v.mv_data = enc;
	v.mv_size = elen;
	rc = mdb_put(txn, q->q_meta, &k, &v, 0);
	free(enc);
	if (rc != 0)
		return queue_status(rc);
	queue_sched_key(skey, r.next_attempt, u->qu_id);
	return queue_status(mdb_put(txn, q->q_sched, &sk, &sv, 0));
}

int queue_apply_update(struct queue *q, MDB_txn *txn, struct queue_update *u)
{
	int rc = queue_apply(q, txn, u, true);

	/* The failure and the suppression it causes are durable together. */
	return rc == 0 ? queue_suppress_apply(q, txn, u) : rc;
}

int queue_apply_update_noattempt(struct queue *q, MDB_txn *txn, struct queue_update *u)
{
	return queue_apply(q, txn, u, false);
}

int queue_body_get(struct queue *q, uint64_t id, struct queue_body *b_r)
{
	unsigned char key[8];
	MDB_val k = { 8, key }, v;
	MDB_txn *txn;
	int rc;

	memset(b_r, 0, sizeof(*b_r));
	if (queue_ov_body(q, id, b_r) == 1)
		return 0;	/* in the journal (queue_journal.c) */
	if (mdb_txn_begin(q->q_env, NULL, MDB_RDONLY, &txn) != 0)
		return -EAGAIN;
	queue_key_put(key, id);
	rc = mdb_get(txn, q->q_body, &k, &v);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return rc == MDB_NOTFOUND ? -ENOENT : -EIO;
	}
	b_r->qb_txn = txn;
	b_r->qb_data = v.mv_data;
	b_r->qb_len = v.mv_size;
	return 0;
}

void queue_body_release(struct queue_body *b)
{
	if (b->qb_txn != NULL)
		mdb_txn_abort(b->qb_txn);
	if (b->qb_seg != NULL)
		jnl_seg_unref(b->qb_seg);
	memset(b, 0, sizeof(*b));
}

int queue_record_get(struct queue *q, uint64_t id,
		     void (*cb)(void *ctx, uint64_t id, const struct qrecord *r),
		     void *ctx)
{
	unsigned char key[8];
	MDB_val k = { 8, key }, v;
	MDB_txn *txn;
	struct qrecord r;
	void *ov;
	size_t ovlen;
	int rc;

	rc = queue_ov_record(q, id, &ov, &ovlen);
	if (rc != 0) {
		/* In the journal: a copy, read outside the overlay's lock. */
		if (rc < 0)
			return rc;
		if (qrecord_decode(ov, ovlen, &r) == 0)
			cb(ctx, id, &r);
		free(ov);
		return 0;
	}
	if (mdb_txn_begin(q->q_env, NULL, MDB_RDONLY, &txn) != 0)
		return -EAGAIN;
	queue_key_put(key, id);
	rc = mdb_get(txn, q->q_meta, &k, &v);
	if (rc == 0 && qrecord_decode(v.mv_data, v.mv_size, &r) == 0)
		cb(ctx, id, &r);
	mdb_txn_abort(txn);
	if (rc == MDB_NOTFOUND)
		return -ENOENT;
	return rc == 0 ? 0 : -EIO;
}

int queue_scan_due(struct queue *q, uint64_t now_us,
		   int (*cb)(void *ctx, uint64_t id, uint64_t when), void *ctx)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, op = MDB_FIRST;

	if (mdb_txn_begin(q->q_env, NULL, MDB_RDONLY, &txn) != 0)
		return -EAGAIN;
	rc = mdb_cursor_open(txn, q->q_sched, &cur);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return -EIO;
	}
	while (mdb_cursor_get(cur, &k, &v, op) == 0) {
		uint64_t when, id;

		op = MDB_NEXT;
		if (k.mv_size != 16)
			continue;
		when = queue_key_get(k.mv_data);
		id = queue_key_get((const unsigned char *)k.mv_data + 8);
		if (when > now_us || cb(ctx, id, when) != 0)
			break;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return 0;
}

int queue_depth(struct queue *q, uint64_t now_us, uint64_t *ready_r,
		uint64_t *scheduled_r, uint64_t *oldest_us_r)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	MDB_stat st;
	int op = MDB_FIRST;
	uint64_t ov_n, ov_oldest;

	*ready_r = *scheduled_r = *oldest_us_r = 0;
	queue_ov_depth(q, &ov_n, &ov_oldest);
	if (mdb_txn_begin(q->q_env, NULL, MDB_RDONLY, &txn) != 0)
		return -EAGAIN;
	/* The schedule is in time order: count up to now, the rest is later. */
	if (mdb_stat(txn, q->q_sched, &st) == 0 &&
	    mdb_cursor_open(txn, q->q_sched, &cur) == 0) {
		while (mdb_cursor_get(cur, &k, &v, op) == 0) {
			op = MDB_NEXT;
			if (k.mv_size == 16 && queue_key_get(k.mv_data) > now_us)
				break;
			(*ready_r)++;
		}
		*scheduled_r = st.ms_entries - *ready_r;
		mdb_cursor_close(cur);
	}
	/* Queue ids start with their arrival time in microseconds. */
	if (mdb_cursor_open(txn, q->q_meta, &cur) == 0) {
		if (mdb_cursor_get(cur, &k, &v, MDB_FIRST) == 0 && k.mv_size == 8)
			*oldest_us_r = queue_key_get(k.mv_data) >> 8;
		mdb_cursor_close(cur);
	}
	mdb_txn_abort(txn);
	/* The journal's messages arrived just now, and are due. */
	*ready_r += ov_n;
	if (ov_n > 0 && (*oldest_us_r == 0 || (ov_oldest >> 8) < *oldest_us_r))
		*oldest_us_r = ov_oldest >> 8;
	return 0;
}
