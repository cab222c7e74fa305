/*
 * queue_journal_open.c: the journal at open and close (README "Queue
 * journal", crash argument): the replay of what lies past the stored
 * position and its checkpoint, a read-only tool's view beside a running
 * daemon, a writing tool's recovery when no daemon runs.
 */
#include "queue/queue_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int queue_jnl_replay_one(void *ctx, const struct jnl_rec *r)
{
	struct queue *q = ctx;
	struct queue_ov_entry *e;
	struct qrecord rec;
	uint32_t rl;
	int rc = 0;

	pthread_mutex_lock(&q->q_ov_lock);
	e = queue_ov_find(q, r->jr_id);
	if (r->jr_type == JNL_DEL) {
		if (e != NULL)
			queue_ov_remove(q, e);
	} else if (e == NULL) {
		e = queue_ov_entry_new(&r->jr_loc, r->jr_id, r->jr_data, r->jr_len);
		if (e != NULL && queue_ov_add(q, e) < 0) {
			jnl_seg_unref(e->oe_loc.jl_seg);
			free(e);
			rc = -ENOMEM;	/* stops the replay, fails the open */
		} else if (e == NULL) {
			memcpy(&rl, r->jr_data, r->jr_len >= 4 ? 4 : 0);
			if (r->jr_len >= 4 && rl <= r->jr_len - 4 &&
			    qrecord_decode(r->jr_data + 4, rl, &rec) == 0)
				rc = -ENOMEM;
			else	/* a valid CRC over a record that does not decode */
				fprintf(stderr, "ringmta: queue: journal record %016llx unreadable;"
					" skipped\n", (unsigned long long)r->jr_id);
		}
	}
	pthread_mutex_unlock(&q->q_ov_lock);
	return rc;
}

int queue_jnl_open(struct queue *q, const char *dir, unsigned flags, char *err, size_t errlen)
{
	bool daemon = (flags & QUEUE_F_COMMITTER) != 0,
	     on = daemon && (flags & QUEUE_F_JOURNAL) != 0;
	char path[PATH_MAX];
	unsigned char *pos;
	MDB_val k = { sizeof(QUEUE_JPOS_KEY), (void *)QUEUE_JPOS_KEY }, v;
	uint64_t seq = 0, off = 0, eseq, eoff, n;
	unsigned damaged = 0;
	MDB_txn *txn;
	int rc, replay_rc;

	snprintf(path, sizeof(path), "%s/journal", dir);
	if (!on && !jnl_dir_has_segments(path))
		return 0;
	txn = NULL;
	if ((rc = queue_txn_begin_write(q, &txn)) != 0 ||
	    (rc = mdb_dbi_open(txn, "journal", MDB_CREATE, &q->q_jdb)) != 0) {
		if (rc != 0 && txn != NULL)
			mdb_txn_abort(txn);
		snprintf(err, errlen, "queue %s: journal position: %s", dir, queue_strerror(rc));
		return queue_status(rc);
	}
	q->q_has_jdb = true;
	if (mdb_get(txn, q->q_jdb, &k, &v) == 0 && v.mv_size == 16) {
		pos = v.mv_data;
		seq = queue_key_get(pos);
		off = queue_key_get(pos + 8);
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		snprintf(err, errlen, "queue %s: journal position: %s", dir, queue_strerror(rc));
		return queue_status(rc);
	}
	rc = jnl_open(&q->q_jnl, path, false, err, errlen);
	if (rc < 0)
		return rc;
	/* Out of memory there stops the open: a record left out would be
	 * checkpointed past, and lost. */
	replay_rc = jnl_replay(q->q_jnl, seq, off, queue_jnl_replay_one, q, &eseq, &eoff,
			       &damaged) != 0 ? -ENOMEM : 0;
	jnl_start_after_replay(q->q_jnl, seq + 1);
	n = q->q_ov_count;
	/* One checkpoint of what the journal held: LMDB is then the whole
	 * queue, and every old segment is history. */
	rc = replay_rc;
	if (rc == 0)
		rc = queue_room(q, QUEUE_TXN_PAGES * q->q_psize + q->q_ov_bytes + q->q_reserve);
	q->q_cp_cut = UINT64_MAX;
	q->q_replaying = true;
	if (rc == 0)
		rc = queue_txn_begin_write(q, &txn);
	if (rc == 0 && (rc = queue_jnl_cp_put(q, txn)) != 0)
		mdb_txn_abort(txn);
	else if (rc == 0)
		rc = mdb_txn_commit(txn);
	q->q_replaying = false;
	/* Ids go on above the journal's too (queue_open reads LMDB's). */
	for (struct queue_ov_entry *e = q->q_ov_oldest; e != NULL; e = e->oe_newer)
		if (e->oe_id > q->q_last_id)
			q->q_last_id = e->oe_id;
	if (rc != 0 && rc != -ENOMEM && daemon) {
		/* Full: the messages stay in the journal, durable, and are
		 * delivered from there; checkpoints are tried again. */
		fprintf(stderr, "ringmta: queue %s: cannot write the journal's %llu message%s"
			" into LMDB (%s): they stay in the journal\n", dir,
			(unsigned long long)n, n == 1 ? "" : "s", queue_strerror(rc));
		q->q_cp_seq = seq;
		q->q_cp_off = off;
		q->q_cp_warned = true;
		q->q_jnl_new = on;
		jnl_test_hooks(q->q_jnl);
		return 0;
	}
	if (rc != 0) {
		snprintf(err, errlen, "queue %s: replaying the journal into LMDB: %s", dir,
			 queue_strerror(rc));
		queue_ov_clear(q);
		jnl_close(&q->q_jnl);
		return queue_status(rc);
	}
	if (n > 0)
		fprintf(stderr, "ringmta: queue: journal: %llu message%s replayed into the store\n",
			(unsigned long long)n, n == 1 ? "" : "s");
	queue_jnl_cp_done(q);
	q->q_stats.checkpoints = 0;
	if (!on) {
		jnl_recycle(q->q_jnl, UINT64_MAX);
		jnl_close(&q->q_jnl);
		return 0;
	}
	q->q_jnl_new = true;
	jnl_test_hooks(q->q_jnl);
	{
		const char *a = getenv("RINGMTA_TEST_JOURNAL_CP_KILL"),
			   *b = getenv("RINGMTA_TEST_JOURNAL_CP_KILL_AFTER");

		q->q_cp_count = 0;
		q->q_cp_kill = a != NULL ? (unsigned)strtoul(a, NULL, 10) : 0;
		q->q_cp_kill_after = b != NULL ? (unsigned)strtoul(b, NULL, 10) : 0;
	}
	return 0;
}

void queue_jnl_close(struct queue *q)
{
	if (q->q_view_txn != NULL)
		mdb_txn_abort(q->q_view_txn);
	q->q_view_txn = NULL;
	if (q->q_jnl == NULL) {
		free(q->q_ov_hash);	/* a replay's, the journal closed after it */
		q->q_ov_hash = NULL;
		return;
	}
	/* The committer checkpointed everything when it stopped: then the
	 * stored position is the journal's end and every segment is history.
	 * If that checkpoint failed, only what lies before the position. */
	if (q->q_thread_started) {
		jnl_start_after_replay(q->q_jnl, 0);
		jnl_recycle(q->q_jnl, q->q_cp_at_end ? UINT64_MAX : q->q_cp_seq);
	}
	queue_ov_clear(q);
	jnl_close(&q->q_jnl);
	free(q->q_ov_hash);
	q->q_ov_hash = NULL;
}

void queue_jnl_view(struct queue *q, const char *dir)
{
	char path[PATH_MAX], err[256];
	MDB_val k = { sizeof(QUEUE_JPOS_KEY), (void *)QUEUE_JPOS_KEY }, v;
	uint64_t seq = 0, off = 0, eseq, eoff;
	unsigned damaged;
	MDB_dbi dbi;

	snprintf(path, sizeof(path), "%s/journal", dir);
	if (!jnl_dir_has_segments(path))
		return;
	/* Segments held first, then the position: a segment the position
	 * still needs cannot be recycled once held. */
	if (jnl_open(&q->q_jnl, path, true, err, sizeof(err)) < 0)
		return;
	if (mdb_txn_begin(q->q_env, NULL, MDB_RDONLY, &q->q_view_txn) != 0) {
		q->q_view_txn = NULL;
		jnl_close(&q->q_jnl);
		return;
	}
	if (mdb_dbi_open(q->q_view_txn, "journal", 0, &dbi) == 0 &&
	    mdb_get(q->q_view_txn, dbi, &k, &v) == 0 && v.mv_size == 16) {
		seq = queue_key_get(v.mv_data);
		off = queue_key_get((const unsigned char *)v.mv_data + 8);
	}
	(void)jnl_replay(q->q_jnl, seq, off, queue_jnl_replay_one, q, &eseq, &eoff, &damaged);
}

void queue_jnl_recover_dir(const char *dir, uint64_t map_size)
{
	char path[PATH_MAX], err[512];
	struct queue *q;

	snprintf(path, sizeof(path), "%s/journal", dir);
	if (!jnl_dir_has_segments(path))
		return;
	/* Exclusive: refused (and left to the daemon) while one runs; a
	 * daemon that starts meanwhile waits for this (QUEUE_F_RECOVER). */
	if (queue_open(&q, dir, map_size, QUEUE_F_EXCLUSIVE | QUEUE_F_RECOVER, err,
		       sizeof(err)) == 0)
		queue_close(&q);
}

