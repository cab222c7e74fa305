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
 *    puts every overlay message and the journal position reached, after
 *    which everything before that position is history, and segments
 *    wholly before it are recycled.
 * A checkpoint runs when the oldest overlay message is older than
 * QUEUE_CP_AGE_NS, when the journal grew by QUEUE_CP_BYTES since the last
 * one, when an update needs the message in LMDB (a deferral, a partial
 * delivery, a bounce, events), when another thread walks LMDB (admin),
 * after a failed group, and at close.
 *
 * Crash argument: LMDB holds the state as of its last checkpoint,
 * including the position; every record past the position was written
 * after that checkpoint committed, in order, each group synced before its
 * messages were acknowledged. Replay applies those records in order to an
 * empty overlay (JNL_MSG adds, JNL_DEL removes) and checkpoints the result.
 * A record torn by a crash ends its segment: its group was never
 * acknowledged, and no later group was started. A segment is recycled
 * only when it lies before the stored position, so a rename lost in a
 * crash never brings back records that replay would apply.
 */
#include "queue/queue_internal.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#define QUEUE_CP_AGE_NS (500u * 1000000u)
#define QUEUE_CP_BYTES (48u << 20)
#define QUEUE_CP_RETRY_NS 1000000000u	/* after a failed checkpoint */
/* Larger messages go straight to LMDB: their bodies fill overflow pages
 * written once (1.04x their size at 100 KiB), where through the journal
 * every one still queued at a checkpoint would be written twice; the
 * journal pays off for small mail, whose LMDB cost is each commit's
 * fixed pages (README "Queue journal"). */
#define QUEUE_JNL_BODY_MAX (16u << 10)

static const unsigned char queue_jpos_key[] = "pos";

static uint64_t queue_jnl_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* --- the overlay (q_ov_lock) -------------------------------------------- */

/* Queue ids are a time and a worker number: mix before masking. */
static unsigned queue_ov_mix(uint64_t id)
{
	id ^= id >> 29;
	id *= 0xbf58476d1ce4e5b9u;
	id ^= id >> 32;
	return (unsigned)id;
}

static unsigned queue_ov_slot(const struct queue *q, uint64_t id)
{
	return queue_ov_mix(id) & q->q_ov_hmask;
}

static struct queue_ov_entry *queue_ov_find(struct queue *q, uint64_t id)
{
	struct queue_ov_entry *e;

	if (q->q_ov_hash == NULL)
		return NULL;
	for (e = q->q_ov_hash[queue_ov_slot(q, id)]; e != NULL; e = e->oe_hnext)
		if (e->oe_id == id)
			return e;
	return NULL;
}

static int queue_ov_grow(struct queue *q)
{
	unsigned size = q->q_ov_hash == NULL ? 1024 : (q->q_ov_hmask + 1) * 2;
	struct queue_ov_entry **h = calloc(size, sizeof(*h));

	if (h == NULL)
		return q->q_ov_hash == NULL ? -ENOMEM : 0;	/* chains just grow */
	for (unsigned i = 0; q->q_ov_hash != NULL && i <= q->q_ov_hmask; i++) {
		struct queue_ov_entry *e = q->q_ov_hash[i], *n;

		for (; e != NULL; e = n) {
			unsigned s = queue_ov_mix(e->oe_id) & (size - 1);

			n = e->oe_hnext;
			e->oe_hnext = h[s];
			h[s] = e;
		}
	}
	free(q->q_ov_hash);
	q->q_ov_hash = h;
	q->q_ov_hmask = size - 1;
	return 0;
}

/*
 * What a checkpoint may write into LMDB for e (queue_room, the map
 * checks): a body too large for a leaf goes to whole overflow pages; a
 * small one, and the record, may sit in half-empty leaves; the schedule
 * entry and a share of the branch pages. An estimate too low is a write
 * into a hole when the disk is full (SIGBUS), so it errs high.
 */
static uint64_t queue_ov_cost(const struct queue *q, const struct queue_ov_entry *e)
{
	uint64_t ps = q->q_psize ? q->q_psize : 4096, body = e->oe_body_len;

	body = body + 64 > ps / 2 ? (body + 16 + ps - 1) / ps * ps + ps : 2 * body + 128;
	return body + 2 * (uint64_t)e->oe_rec_len + 512;
}

/* Add an entry (the caller made it; it holds a reference on its segment). */
static int queue_ov_add(struct queue *q, struct queue_ov_entry *e)
{
	unsigned s;

	if ((q->q_ov_hash == NULL || q->q_ov_count > q->q_ov_hmask) && queue_ov_grow(q) < 0)
		return -ENOMEM;
	s = queue_ov_slot(q, e->oe_id);
	e->oe_seq = ++q->q_ov_next_seq;
	e->oe_hnext = q->q_ov_hash[s];
	q->q_ov_hash[s] = e;
	e->oe_newer = NULL;
	e->oe_older = q->q_ov_newest;
	if (q->q_ov_newest != NULL)
		q->q_ov_newest->oe_newer = e;
	else
		q->q_ov_oldest = e;
	q->q_ov_newest = e;
	q->q_ov_count++;
	q->q_ov_bytes += queue_ov_cost(q, e);
	return 0;
}

/* Unlink e and free it, dropping its reference on the segment. */
static void queue_ov_remove(struct queue *q, struct queue_ov_entry *e)
{
	struct queue_ov_entry **pp = &q->q_ov_hash[queue_ov_slot(q, e->oe_id)];

	while (*pp != e)
		pp = &(*pp)->oe_hnext;
	*pp = e->oe_hnext;
	if (e->oe_older != NULL)
		e->oe_older->oe_newer = e->oe_newer;
	else
		q->q_ov_oldest = e->oe_newer;
	if (e->oe_newer != NULL)
		e->oe_newer->oe_older = e->oe_older;
	else
		q->q_ov_newest = e->oe_older;
	q->q_ov_count--;
	q->q_ov_bytes -= queue_ov_cost(q, e);
	jnl_seg_unref(e->oe_loc.jl_seg);
	free(e);
}

static void queue_ov_clear(struct queue *q)
{
	pthread_mutex_lock(&q->q_ov_lock);
	while (q->q_ov_oldest != NULL)
		queue_ov_remove(q, q->q_ov_oldest);
	pthread_mutex_unlock(&q->q_ov_lock);
}

static const unsigned char *queue_ov_payload(const struct queue_ov_entry *e)
{
	return e->oe_loc.jl_seg->js_map + e->oe_loc.jl_off;
}

/* A JNL_MSG payload: u32 record length, record, body. */
static struct queue_ov_entry *queue_ov_entry_new(const struct jnl_loc *loc, uint64_t id,
						 const unsigned char *payload, uint32_t len)
{
	struct queue_ov_entry *e;
	struct qrecord r;
	uint32_t rl;

	if (len < 4)
		return NULL;
	memcpy(&rl, payload, 4);
	if (rl > len - 4 || qrecord_decode(payload + 4, rl, &r) < 0)
		return NULL;
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return NULL;
	e->oe_id = id;
	e->oe_added_ns = queue_jnl_now_ns();
	e->oe_loc = *loc;
	e->oe_rec_len = rl;
	e->oe_body_len = len - 4 - rl;
	e->oe_next_attempt = r.next_attempt;
	jnl_seg_ref(loc->jl_seg);
	return e;
}

int queue_ov_record(struct queue *q, uint64_t id, void **rec_r, size_t *len_r)
{
	struct queue_ov_entry *e;
	int found = 0;

	if (q->q_jnl == NULL)
		return 0;
	pthread_mutex_lock(&q->q_ov_lock);
	e = queue_ov_find(q, id);
	if (e != NULL) {
		*rec_r = malloc(e->oe_rec_len ? e->oe_rec_len : 1);
		if (*rec_r != NULL) {
			memcpy(*rec_r, queue_ov_payload(e) + 4, e->oe_rec_len);
			*len_r = e->oe_rec_len;
			found = 1;
		} else {
			found = -ENOMEM;
		}
	}
	pthread_mutex_unlock(&q->q_ov_lock);
	return found;
}

int queue_ov_body(struct queue *q, uint64_t id, struct queue_body *b_r)
{
	struct queue_ov_entry *e;
	int found = 0;

	if (q->q_jnl == NULL)
		return 0;
	pthread_mutex_lock(&q->q_ov_lock);
	e = queue_ov_find(q, id);
	if (e != NULL) {
		/* The segment stays mapped while held (jnl_recycle). */
		jnl_seg_ref(e->oe_loc.jl_seg);
		b_r->qb_seg = e->oe_loc.jl_seg;
		b_r->qb_data = (const char *)queue_ov_payload(e) + 4 + e->oe_rec_len;
		b_r->qb_len = e->oe_body_len;
		found = 1;
	}
	pthread_mutex_unlock(&q->q_ov_lock);
	return found;
}

void queue_ov_depth(struct queue *q, uint64_t *count_r, uint64_t *oldest_id_r)
{
	*count_r = *oldest_id_r = 0;
	if (q->q_jnl == NULL)
		return;
	pthread_mutex_lock(&q->q_ov_lock);
	*count_r = q->q_ov_count;
	for (struct queue_ov_entry *e = q->q_ov_oldest; e != NULL; e = e->oe_newer)
		if (*oldest_id_r == 0 || e->oe_id < *oldest_id_r)
			*oldest_id_r = e->oe_id;
	pthread_mutex_unlock(&q->q_ov_lock);
}

static int queue_id_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

uint64_t *queue_ov_ids_from(struct queue *q, uint64_t from, size_t *n_r)
{
	uint64_t *ids = NULL;
	size_t n = 0;

	*n_r = 0;
	if (q->q_jnl == NULL)
		return NULL;
	pthread_mutex_lock(&q->q_ov_lock);
	if (q->q_ov_count > 0 && (ids = malloc(q->q_ov_count * sizeof(*ids))) != NULL)
		for (struct queue_ov_entry *e = q->q_ov_oldest; e != NULL; e = e->oe_newer)
			if (e->oe_id >= from)
				ids[n++] = e->oe_id;
	pthread_mutex_unlock(&q->q_ov_lock);
	if (ids != NULL)
		qsort(ids, n, sizeof(*ids), queue_id_cmp);
	*n_r = n;
	return ids;
}

int queue_ov_peek(struct queue *q, uint64_t id, struct qrecord *r_r, const void **body_r,
		  size_t *body_len_r, struct jnl_seg **seg_r)
{
	struct queue_ov_entry *e;
	int found = 0;

	if (q->q_jnl == NULL)
		return 0;
	pthread_mutex_lock(&q->q_ov_lock);
	e = queue_ov_find(q, id);
	if (e != NULL && qrecord_decode(queue_ov_payload(e) + 4, e->oe_rec_len, r_r) == 0) {
		/* The entry may go as soon as the lock does; the segment
		 * stays mapped while held. */
		jnl_seg_ref(e->oe_loc.jl_seg);
		*seg_r = e->oe_loc.jl_seg;
		*body_r = queue_ov_payload(e) + 4 + e->oe_rec_len;
		*body_len_r = e->oe_body_len;
		found = 1;
	}
	pthread_mutex_unlock(&q->q_ov_lock);
	return found;
}

int queue_read_txn(struct queue *q, MDB_txn **txn_r, bool *own_r)
{
	*own_r = q->q_view_txn == NULL;
	if (!*own_r) {
		*txn_r = q->q_view_txn;
		return 0;
	}
	return mdb_txn_begin(q->q_env, NULL, MDB_RDONLY, txn_r) == 0 ? 0 : -EIO;
}

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
 * QUEUE_CP_AGE_NS/2 ago or earlier (a prefix: the overlay is in journal
 * order), so that mail delivered within that time never reaches LMDB;
 * all of them when the journal since the position is twice
 * QUEUE_CP_BYTES (at a rate where that half second is more than it).
 * *moves_r: whether the position would move.
 */
static uint64_t queue_jnl_cp_cut(struct queue *q, bool *moves_r)
{
	uint64_t limit = queue_jnl_now_ns() - QUEUE_CP_AGE_NS / 2, cut = 0;
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
	uint64_t now, age;
	bool moves;

	*wait_ns_r = 0;
	if (q->q_jnl == NULL)
		return false;
	if (queue_jnl_cp_backoff(q)) {
		*wait_ns_r = q->q_cp_retry_ns - queue_jnl_now_ns();
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
	now = queue_jnl_now_ns();
	if (now - age >= QUEUE_CP_AGE_NS)
		return true;
	*wait_ns_r = QUEUE_CP_AGE_NS - (now - age);
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

	need += q->q_ov_bytes + 64 * q->q_psize + q->q_reserve;
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
		uint64_t in_ov;

		if (u->qu_status != 0 || !queue_jnl_update_ok(q, u, &in_ov))
			continue;
		/* Deletes may use each segment's reserve. */
		if (jnl_add(q->q_jnl, JNL_DEL, u->qu_id, NULL, 0, &loc) == 0)
			u->qu_status = QUEUE_ST_JOURNAL;
		else
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

void queue_jnl_lmdb_guard(struct queue *q, struct queue_msg *batch, struct queue_update *ubatch)
{
	if (q->q_jnl == NULL)
		return;
	pthread_mutex_lock(&q->q_ov_lock);
	for (struct queue_update *u = ubatch; u != NULL; u = u->qu_next) {
		if (u->qu_status == 0 && u->qu_id != 0 && queue_ov_find(q, u->qu_id) != NULL)
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

bool queue_jnl_cp_backoff(struct queue *q)
{
	return q->q_cp_retry_ns != 0 && queue_jnl_now_ns() < q->q_cp_retry_ns;
}

void queue_jnl_cp_failed(struct queue *q, struct queue_update *u, int err)
{
	if (!q->q_cp_warned)
		fprintf(stderr, "ringmta: queue: cannot checkpoint the journal into LMDB (%s):"
			" its messages stay in the journal; trying again\n", queue_strerror(err));
	q->q_cp_warned = true;
	/* Not in every batch: a checkpoint that fails wrote it all first. */
	if (err != -EAGAIN)
		q->q_cp_retry_ns = queue_jnl_now_ns() + QUEUE_CP_RETRY_NS;
	pthread_mutex_lock(&q->q_ov_lock);
	for (; u != NULL; u = u->qu_next)
		if (u->qu_status == 0 && u->qu_id != 0 && queue_ov_find(q, u->qu_id) != NULL)
			u->qu_status = -ENOSPC;
	pthread_mutex_unlock(&q->q_ov_lock);
}

int queue_jnl_cp_put(struct queue *q, MDB_txn *txn)
{
	unsigned char pos[16];
	MDB_val k = { sizeof(queue_jpos_key), (void *)queue_jpos_key }, v = { 16, pos };
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

/* --- open, replay, close ------------------------------------------------ */

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
	MDB_val k = { sizeof(queue_jpos_key), (void *)queue_jpos_key }, v;
	uint64_t seq = 0, off = 0, eseq, eoff, n;
	unsigned damaged = 0;
	MDB_txn *txn;
	int rc, replay_rc;

	snprintf(path, sizeof(path), "%s/journal", dir);
	if (!on && !jnl_dir_has_segments(path))
		return 0;
	txn = NULL;
	if ((rc = mdb_txn_begin(q->q_env, NULL, 0, &txn)) != 0 ||
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
		rc = queue_room(q, 64 * q->q_psize + q->q_ov_bytes + q->q_reserve);
	q->q_cp_cut = UINT64_MAX;
	q->q_replaying = true;
	if (rc == 0)
		rc = mdb_txn_begin(q->q_env, NULL, 0, &txn);
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
	MDB_val k = { sizeof(queue_jpos_key), (void *)queue_jpos_key }, v;
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
	/* Exclusive: refused (and left to the daemon) while one runs. */
	if (queue_open(&q, dir, map_size, QUEUE_F_EXCLUSIVE, err, sizeof(err)) == 0)
		queue_close(&q);
}
