/*
 * queue_journal.c: the journal in front of LMDB (README "Queue journal").
 *
 * New mail that carries no event record is appended to a journal segment
 * (its record and body, straight from the workers' buffers), and one
 * fdatasync makes the group durable: that is when the 250 goes out. Such
 * a message lives in the overlay (a hash of entries pointing into the
 * segment's map) until one of two things happens:
 *  - it is delivered (every recipient final, nothing else to store: no
 *    bounce, event or suppression): a JNL_DEL record in the next group,
 *    and it leaves the overlay; it never reaches LMDB;
 *  - a checkpoint: one LMDB write transaction (fully synced, as any other)
 *    puts a prefix of the overlay (the oldest messages: the overlay is in
 *    journal order) and the journal position of the first message left;
 *    everything before that position is in LMDB or was deleted, and
 *    segments wholly before it are recycled.
 * The prefix is cut at the messages added half of q_cp_age_ns ago, when
 * the oldest is q_cp_age_ns old or the journal grew by QUEUE_CP_BYTES since
 * the position (all of it past twice that); up to a message an update
 * needs in LMDB (a deferral, a partial delivery, a bounce, events); all of
 * it when another thread walks LMDB (admin), after a failed group, and at
 * close. The committer's part is here; the overlay in queue_overlay.c;
 * open, replay and close in queue_journal_open.c.
 *
 * Crash argument (README): LMDB holds the state as of its last checkpoint,
 * including the position; every record before it is of a message in LMDB
 * or deleted, every record past it was written in order, each group synced
 * before its messages were acknowledged. Replay applies those records in
 * order to an empty overlay (JNL_MSG adds, JNL_DEL removes) and
 * checkpoints the result. Bad records: journal.h. A segment is recycled
 * only when it lies before the stored position, so a rename lost in a
 * crash never brings back records that replay would apply.
 */
#include "queue/queue_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUEUE_CP_BYTES (48u << 20)
#define QUEUE_CP_RETRY_NS 1000000000u	/* after a failed checkpoint */
/* Larger messages go straight to LMDB: their bodies fill overflow pages
 * written once (1.04x their size at 100 KiB), where through the journal
 * every one still queued at a checkpoint would be written twice; the
 * journal pays off for small mail, whose LMDB cost is each commit's
 * fixed pages (README "Queue journal"). */
#define QUEUE_JNL_BODY_MAX (16u << 10)

/* --- the committer's part ----------------------------------------------- */

/*
 * Whether u can be journaled: its message is in the overlay, and after it
 * no recipient is pending and there is nothing but the removal to store.
 */
static bool queue_jnl_update_ok(struct queue *q, const struct queue_update *u,
				uint64_t *in_ov_r)
{
	struct queue_ov_entry *e;
	struct qrecord r;
	struct qrcpt rc;
	size_t off = 0;
	bool ok = true;

	*in_ov_r = 0;
	if (u->qu_id == 0)
		return false;
	pthread_mutex_lock(&q->q_ov_lock);
	e = queue_ov_find(q, u->qu_id);
	*in_ov_r = e != NULL ? e->oe_seq : 0;
	if (e == NULL || u->qu_events != NULL || u->qu_nsuppress > 0 || u->qu_new != NULL ||
	    u->qu_set_flags != 0 || u->qu_clear_flags != 0 ||
	    qrecord_decode(queue_ov_payload(e) + 4, e->oe_rec_len, &r) < 0) {
		pthread_mutex_unlock(&q->q_ov_lock);
		return false;
	}
	for (uint32_t i = 0; ok && i < r.nrcpt && qrecord_rcpt_next(&r, &off, &rc); i++) {
		uint8_t state = rc.state;

		for (unsigned j = 0; j < u->qu_nrcpt; j++)
			if (u->qu_rcpts[j].qru_index == i)
				state = u->qu_rcpts[j].qru_state;
		ok = state != QRCPT_PENDING;
	}
	pthread_mutex_unlock(&q->q_ov_lock);
	return ok;
}

struct queue_jnl_new {
	struct queue_msg *jn_msg;
	void *jn_enc;			/* u32 length + encoded record */
	struct jnl_loc jn_loc;
};

/*
 * The cut of a checkpoint that age or size call for: the entries added
 * q_cp_age_ns/2 ago or earlier (a prefix: the overlay is in journal
 * order), so that mail delivered within that time never reaches LMDB;
 * all of them when the journal since the position is twice
 * QUEUE_CP_BYTES (at a rate where that half second is more than it).
 * *moves_r: whether the position would move.
 */
static uint64_t queue_jnl_cp_cut(struct queue *q, bool *moves_r)
{
	uint64_t limit = queue_now_ns() - atomic_load(&q->q_cp_age_ns) / 2, cut = 0;
	struct queue_ov_entry *e;

	*moves_r = true;
	if (q->q_jnl_broken ||
	    jnl_bytes_since(q->q_jnl, q->q_cp_seq, q->q_cp_off) >= 2 * (uint64_t)QUEUE_CP_BYTES)
		return UINT64_MAX;
	pthread_mutex_lock(&q->q_ov_lock);
	for (e = q->q_ov_oldest; e != NULL && e->oe_added_ns <= limit; e = e->oe_newer)
		cut = e->oe_seq;
	/* It stays where it is when the first entry left starts there. */
	if (e != NULL)
		*moves_r = !(e->oe_loc.jl_seg->js_seq == q->q_cp_seq &&
			     e->oe_loc.jl_off - JNL_HDR_SIZE == q->q_cp_off);
	pthread_mutex_unlock(&q->q_ov_lock);
	return cut;
}

bool queue_jnl_cp_due(struct queue *q, uint64_t *wait_ns_r)
{
	uint64_t now, age, limit;
	bool moves;

	*wait_ns_r = 0;
	if (q->q_jnl == NULL)
		return false;
	if (queue_jnl_cp_backoff(q)) {
		*wait_ns_r = q->q_cp_retry_ns - queue_now_ns();
		return false;
	}
	if (q->q_jnl_broken)
		return true;
	/* Journal size: a checkpoint that moves the position (recycling). */
	if (jnl_bytes_since(q->q_jnl, q->q_cp_seq, q->q_cp_off) >= QUEUE_CP_BYTES &&
	    (queue_jnl_cp_cut(q, &moves) > 0 || moves))
		return true;
	pthread_mutex_lock(&q->q_ov_lock);
	age = q->q_ov_oldest != NULL ? q->q_ov_oldest->oe_added_ns : 0;
	pthread_mutex_unlock(&q->q_ov_lock);
	if (age == 0)
		return false;
	now = queue_now_ns();
	limit = atomic_load(&q->q_cp_age_ns);
	if (now - age >= limit)
		return true;
	*wait_ns_r = limit - (now - age);
	return false;
}

/*
 * Whether LMDB could take what the journal would then hold (need bytes
 * more): a checkpoint must fit in the map and in the allocated file, or
 * the journal would hold mail LMDB can never take. 0, or -ENOSPC.
 */
static int queue_jnl_room(struct queue *q, uint64_t need)
{
	MDB_envinfo ei;

	need += q->q_ov_bytes + QUEUE_TXN_PAGES * q->q_psize + q->q_reserve;
	if (mdb_env_info(q->q_env, &ei) != 0 ||
	    ((uint64_t)ei.me_last_pgno + 1) * q->q_psize + need > ei.me_mapsize)
		return -ENOSPC;
	return queue_room(q, need) < 0 ? -ENOSPC : 0;
}

/* Whether id is stored already, in the overlay or in LMDB (txn): a
 * second message with one id would hide or replace the first. */
static bool queue_jnl_id_taken(struct queue *q, MDB_txn *txn, uint64_t id)
{
	unsigned char key[8];
	MDB_val k = { 8, key }, v;
	bool taken;

	pthread_mutex_lock(&q->q_ov_lock);
	taken = queue_ov_find(q, id) != NULL;
	pthread_mutex_unlock(&q->q_ov_lock);
	queue_key_put(key, id);
	return taken || (txn != NULL && mdb_get(txn, q->q_meta, &k, &v) == 0);
}

/* A new message the journal takes: no event records (they go with the
 * message into LMDB's "events" in one transaction), not too large. */
static bool queue_jnl_msg_ok(const struct queue_msg *m)
{
	size_t total = 0;

	if (m->qm_status != 0 || m->qm_events != NULL)
		return false;
	for (unsigned i = 0; i < m->qm_iovcnt && total <= QUEUE_JNL_BODY_MAX; i++)
		total += m->qm_iov[i].iov_len;
	return total <= QUEUE_JNL_BODY_MAX;
}

/* Queue one new message's record: u32 record length, record, body. */
static int queue_jnl_add_msg(struct queue *q, struct queue_msg *m, struct queue_jnl_new *n)
{
	struct iovec parts[1 + 64], *big = NULL, *pp = parts;
	size_t total = 0, rl;
	uint32_t rl32;
	int rc;

	for (unsigned i = 0; i < m->qm_iovcnt; i++)
		total += m->qm_iov[i].iov_len;
	m->qm_rec.size = total;
	rl = qrecord_encoded_size(&m->qm_rec);
	n->jn_msg = m;
	n->jn_enc = malloc(4 + rl);
	if (n->jn_enc == NULL)
		return -ENOMEM;
	rl32 = (uint32_t)rl;
	memcpy(n->jn_enc, &rl32, 4);
	qrecord_encode(&m->qm_rec, (char *)n->jn_enc + 4);
	if (m->qm_iovcnt > 64 && (pp = big = malloc((1 + m->qm_iovcnt) * sizeof(*big))) == NULL) {
		free(n->jn_enc);
		n->jn_enc = NULL;
		return -ENOMEM;
	}
	pp[0] = (struct iovec){ n->jn_enc, 4 + rl };
	/* The body from the workers' buffers: the kernel copies it into the
	 * page cache, no copy of ours. */
	memcpy(&pp[1], m->qm_iov, m->qm_iovcnt * sizeof(*pp));
	rc = jnl_add(q->q_jnl, JNL_MSG, m->qm_id, pp, 1 + m->qm_iovcnt, &n->jn_loc);
	free(big);
	if (rc != 0) {
		free(n->jn_enc);
		n->jn_enc = NULL;
	}
	return rc;
}

bool queue_jnl_batch(struct queue *q, struct queue_msg *batch, struct queue_update *ubatch,
		     struct queue_idlist *ids, bool want_cp)
{
	struct queue_jnl_new *nw = NULL;
	unsigned nnew = 0, cap = 0, ndel = 0;
	uint64_t wait, in = 0;
	bool need_cp = false, moves;
	MDB_txn *txn = NULL;
	int rc = 0;

	q->q_jnl_failed_now = false;
	q->q_cp_cut = 0;
	if (q->q_jnl == NULL)
		return false;
	/* After a failed group only a checkpoint (past it, of all) comes. */
	if (want_cp || q->q_jnl_broken) {
		need_cp = true;
		q->q_cp_cut = UINT64_MAX;
		if (q->q_jnl_broken)
			return true;
	} else if (queue_jnl_cp_due(q, &wait)) {
		need_cp = true;
		q->q_cp_cut = queue_jnl_cp_cut(q, &moves);
	}
	/* An update that needs its message in LMDB makes this batch a
	 * checkpoint of the entries up to that message (the journaled items
	 * go first all the same). */
	for (struct queue_update *u = ubatch; u != NULL; u = u->qu_next) {
		uint64_t in_ov;

		if (u->qu_status != 0)
			continue;
		if (queue_jnl_update_ok(q, u, &in_ov)) {
			ndel++;
			u->qu_status = QUEUE_ST_JOURNAL;	/* its delete goes below */
		} else if (in_ov != 0) {
			need_cp = true;
			if (in_ov > q->q_cp_cut)
				q->q_cp_cut = in_ov;
		}
	}
	for (struct queue_msg *m = batch; q->q_jnl_new && m != NULL; m = m->qm_next)
		if (queue_jnl_msg_ok(m)) {
			cap++;
			for (unsigned i = 0; i < m->qm_iovcnt; i++)
				in += m->qm_iov[i].iov_len;
			/* As queue_ov_cost errs high: pages, the record twice. */
			in += 2 * q->q_psize + 2 * qrecord_encoded_size(&m->qm_rec) + 512;
		}
	/* New mail only while LMDB could still take it at a checkpoint;
	 * else it goes to LMDB now, and its full-store rules answer. */
	if (cap > 0 && queue_jnl_room(q, in) < 0)
		cap = 0;
	if (cap == 0 && ndel == 0)
		return need_cp;
	if (cap > 0 && ((nw = calloc(cap, sizeof(*nw))) == NULL ||
			mdb_txn_begin(q->q_env, NULL, MDB_RDONLY, &txn) != 0)) {
		/* The new mail goes to LMDB; the deletes still come here
		 * (in LMDB their messages are not: -ENOENT, and back). */
		txn = NULL;
		cap = 0;
	}
	for (struct queue_msg *m = batch; m != NULL && nnew < cap; m = m->qm_next) {
		if (!queue_jnl_msg_ok(m))
			continue;
		if (queue_jnl_id_taken(q, txn, m->qm_id)) {
			m->qm_status = -EEXIST;	/* as LMDB's refusal: 4xx */
			cap--;
			continue;
		}
		/* No room or memory for it (a full disk refuses a segment):
		 * it and the rest go to LMDB, whose rules answer. */
		if (queue_jnl_add_msg(q, m, &nw[nnew]) != 0)
			break;
		nnew++;
	}
	if (txn != NULL)
		mdb_txn_abort(txn);
	for (struct queue_update *u = ubatch; u != NULL; u = u->qu_next) {
		struct jnl_loc loc;

		if (u->qu_status != QUEUE_ST_JOURNAL)
			continue;
		/* Deletes may use each segment's reserve. */
		if (jnl_add(q->q_jnl, JNL_DEL, u->qu_id, NULL, 0, &loc) != 0)
			u->qu_status = -ENOSPC;	/* not in LMDB: delivery tries again */
	}
	rc = jnl_commit(q->q_jnl);
	if (rc != 0) {
		/* LMDB takes the batch, in a checkpoint that moves the
		 * position past whatever of this group reached the disk; if
		 * that checkpoint cannot commit, the group's new mail is
		 * refused (queue.c): its records may be on disk, ahead of the
		 * position, and a replay would bring them back. */
		if (!q->q_jnl_warned)
			fprintf(stderr, "ringmta: queue: journal write failed (%s): storing in"
				" LMDB until it works again\n", queue_strerror(rc));
		q->q_jnl_warned = true;
		q->q_jnl_broken = true;
		q->q_jnl_failed_now = true;
		q->q_cp_cut = UINT64_MAX;
		q->q_cp_at_end = false;	/* something may lie past the position */
		for (struct queue_update *u = ubatch; u != NULL; u = u->qu_next)
			if (u->qu_status == QUEUE_ST_JOURNAL)
				u->qu_status = 0;
		for (unsigned i = 0; i < nnew; i++)
			free(nw[i].jn_enc);
		free(nw);
		return true;
	}
	pthread_mutex_lock(&q->q_ov_lock);
	for (struct queue_update *u = ubatch; u != NULL; u = u->qu_next) {
		struct queue_ov_entry *e;

		if (u->qu_status != QUEUE_ST_JOURNAL)
			continue;
		if ((e = queue_ov_find(q, u->qu_id)) != NULL)
			queue_ov_remove(q, e);
		u->qu_removed = true;
	}
	for (unsigned i = 0; i < nnew; i++) {
		struct queue_msg *m = nw[i].jn_msg;
		const unsigned char *p = nw[i].jn_loc.jl_seg->js_map + nw[i].jn_loc.jl_off;
		uint32_t len = (uint32_t)(4 + qrecord_encoded_size(&m->qm_rec) + m->qm_rec.size);
		struct queue_ov_entry *e = queue_ov_entry_new(&nw[i].jn_loc, m->qm_id, p, len);

		if (e == NULL || queue_ov_add(q, e) < 0) {
			/* Durable in the journal, but not readable here: refuse
			 * it (the sender tries again); the checkpoint that
			 * follows moves the position past it. */
			if (e != NULL) {
				jnl_seg_unref(e->oe_loc.jl_seg);
				free(e);
			}
			m->qm_status = -ENOMEM;
			q->q_jnl_broken = true;
		} else {
			m->qm_status = QUEUE_ST_JOURNAL;
			queue_idlist_add(ids, m->qm_id);
		}
		free(nw[i].jn_enc);
	}
	pthread_mutex_unlock(&q->q_ov_lock);
	free(nw);
	if (q->q_jnl_warned)
		fprintf(stderr, "ringmta: queue: journal writes work again\n");
	q->q_jnl_warned = false;
	q->q_cp_at_end = false;
	pthread_mutex_lock(&q->q_lock);
	q->q_stats.jnl_groups++;
	pthread_mutex_unlock(&q->q_lock);
	return need_cp;
}

uint64_t queue_jnl_cp_bytes(struct queue *q)
{
	uint64_t n;

	if (q->q_jnl == NULL)
		return 0;
	pthread_mutex_lock(&q->q_ov_lock);
	n = q->q_ov_bytes;
	pthread_mutex_unlock(&q->q_ov_lock);
	return n;
}

void queue_jnl_before_lmdb(struct queue *q, struct queue_msg *batch, struct queue_update *ubatch,
			   bool cp, int err)
{
	if (q->q_jnl == NULL)
		return;
	if (err != 0) {
		if (!q->q_cp_warned)
			fprintf(stderr, "ringmta: queue: cannot checkpoint the journal into LMDB"
				" (%s): its messages stay in the journal; trying again\n",
				queue_strerror(err));
		q->q_cp_warned = true;
		/* Not in every batch: a checkpoint that fails wrote it all
		 * first. */
		if (err != -EAGAIN)
			q->q_cp_retry_ns = queue_now_ns() + QUEUE_CP_RETRY_NS;
	}
	/* A failed group's new mail, with no checkpoint past it: refused
	 * (4xx), not stored in LMDB. Its records may be on disk ahead of
	 * the position, and a replay would bring back what LMDB delivered. */
	for (struct queue_msg *m = batch; !cp && q->q_jnl_failed_now && m != NULL; m = m->qm_next)
		if (m->qm_status == 0)
			m->qm_status = -EIO;
	pthread_mutex_lock(&q->q_ov_lock);
	for (struct queue_update *u = ubatch; u != NULL; u = u->qu_next) {
		/* Without a checkpoint its message is not in LMDB: held back
		 * (-ENOENT there would tell delivery it was gone). With one,
		 * the cut took every message an update needs. */
		if (!cp && u->qu_status == 0 && u->qu_id != 0 && queue_ov_find(q, u->qu_id) != NULL)
			u->qu_status = -EAGAIN;
		if (u->qu_status == 0 && u->qu_new != NULL && u->qu_new->qm_status == 0 &&
		    queue_ov_find(q, u->qu_new->qm_id) != NULL)
			u->qu_status = u->qu_new->qm_status = -EEXIST;
	}
	for (; batch != NULL; batch = batch->qm_next)
		if (batch->qm_status == 0 && queue_ov_find(q, batch->qm_id) != NULL)
			batch->qm_status = -EEXIST;
	pthread_mutex_unlock(&q->q_ov_lock);
}

void queue_jnl_set_age(struct queue *q, uint64_t ns)
{
	atomic_store(&q->q_cp_age_ns, ns);
	pthread_mutex_lock(&q->q_lock);
	pthread_cond_signal(&q->q_cond);	/* an idle wait computed with the old one */
	pthread_mutex_unlock(&q->q_lock);
}

bool queue_jnl_cp_backoff(struct queue *q)
{
	return q->q_cp_retry_ns != 0 && queue_now_ns() < q->q_cp_retry_ns;
}

int queue_jnl_cp_put(struct queue *q, MDB_txn *txn)
{
	unsigned char pos[16];
	MDB_val k = { sizeof(QUEUE_JPOS_KEY), (void *)QUEUE_JPOS_KEY }, v = { 16, pos };
	struct queue_ov_entry *e;
	uint64_t seq, off;
	int rc = 0;

	if (q->q_jnl == NULL)
		return 0;

	pthread_mutex_lock(&q->q_ov_lock);
	for (e = q->q_ov_oldest; e != NULL && e->oe_seq <= q->q_cp_cut && rc == 0; e = e->oe_newer) {
		const unsigned char *p = queue_ov_payload(e);

		rc = queue_put_raw(q, txn, e->oe_id, p + 4, e->oe_rec_len, e->oe_next_attempt,
				   p + 4 + e->oe_rec_len, e->oe_body_len);
		if (rc == MDB_KEYEXIST && q->q_replaying) {
			/* A replay over a store that has it: LMDB's is the
			 * later state. Said, kept. */
			fprintf(stderr, "ringmta: queue: journal message %016llx: the id is in"
				" LMDB already; kept LMDB's\n", (unsigned long long)e->oe_id);
			rc = 0;
		}
		/* Running, both paths refuse an id the other holds: a clash
		 * here fails the checkpoint rather than drop either. */
	}
	/* The position: the first entry left (everything before it is in
	 * LMDB or was delivered), or the journal's end. */
	if (e != NULL) {
		seq = e->oe_loc.jl_seg->js_seq;
		off = e->oe_loc.jl_off - JNL_HDR_SIZE;
	} else {
		jnl_position(q->q_jnl, &seq, &off);
	}
	pthread_mutex_unlock(&q->q_ov_lock);
	if (rc != 0)
		return rc;
	q->q_cp_pos_seq = seq;
	q->q_cp_pos_off = off;
	queue_key_put(pos, seq);
	queue_key_put(pos + 8, off);
	q->q_cp_count++;
	if (q->q_cp_kill != 0 && q->q_cp_count == q->q_cp_kill)
		raise(SIGKILL);	/* test hook: in the checkpoint, before its commit */
	return mdb_put(txn, q->q_jdb, &k, &v, 0);
}

void queue_jnl_cp_done(struct queue *q)
{
	if (q->q_jnl == NULL)
		return;
	if (q->q_cp_kill_after != 0 && q->q_cp_count == q->q_cp_kill_after)
		raise(SIGKILL);	/* test hook: committed, segments not yet recycled */
	if (q->q_cp_warned)
		fprintf(stderr, "ringmta: queue: journal checkpoints work again\n");
	q->q_cp_warned = false;
	q->q_cp_retry_ns = 0;
	q->q_cp_seq = q->q_cp_pos_seq;
	q->q_cp_off = q->q_cp_pos_off;
	q->q_jnl_broken = false;
	pthread_mutex_lock(&q->q_ov_lock);
	while (q->q_ov_oldest != NULL && q->q_ov_oldest->oe_seq <= q->q_cp_cut)
		queue_ov_remove(q, q->q_ov_oldest);
	q->q_cp_at_end = q->q_ov_oldest == NULL;	/* until the next group */
	pthread_mutex_unlock(&q->q_ov_lock);
	jnl_recycle(q->q_jnl, q->q_cp_seq);
	pthread_mutex_lock(&q->q_lock);
	q->q_stats.checkpoints++;
	pthread_mutex_unlock(&q->q_lock);
}

void queue_jnl_sync(struct queue *q)
{
	unsigned want;

	if (q->q_jnl == NULL || !q->q_thread_started)
		return;
	pthread_mutex_lock(&q->q_lock);
	want = ++q->q_cp_req;
	if (q->q_idle) {
		q->q_idle = false;
		pthread_cond_signal(&q->q_cond);
	}
	while ((int)(q->q_cp_done - want) < 0 && !q->q_stop)
		pthread_cond_wait(&q->q_cp_cond, &q->q_lock);
	pthread_mutex_unlock(&q->q_lock);
}

