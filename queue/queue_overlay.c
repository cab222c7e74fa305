/*
 * queue_overlay.c: the journal's messages in memory (README "Queue
 * journal"): a hash by queue id of entries that point into the segments'
 * maps, kept in the order they were added, which is the journal's order
 * (a checkpoint takes a prefix: queue_journal.c). Written by the committer
 * (and a replay); read from any thread under q_ov_lock: records are copied
 * out, bodies and walks hold their segment (jnl_seg_ref).
 */
#include "queue/queue_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>


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

struct queue_ov_entry *queue_ov_find(struct queue *q, uint64_t id)
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
 * past the allocation, which a full disk fails (the whole commit with it),
 * so it errs high.
 */
static uint64_t queue_ov_cost(const struct queue *q, const struct queue_ov_entry *e)
{
	uint64_t ps = q->q_psize ? q->q_psize : 4096, body = e->oe_body_len;

	body = body + 64 > ps / 2 ? (body + 16 + ps - 1) / ps * ps + ps : 2 * body + 128;
	return body + 2 * (uint64_t)e->oe_rec_len + 512;
}

/* Add an entry (the caller made it; it holds a reference on its segment). */
int queue_ov_add(struct queue *q, struct queue_ov_entry *e)
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
void queue_ov_remove(struct queue *q, struct queue_ov_entry *e)
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

void queue_ov_clear(struct queue *q)
{
	pthread_mutex_lock(&q->q_ov_lock);
	while (q->q_ov_oldest != NULL)
		queue_ov_remove(q, q->q_ov_oldest);
	pthread_mutex_unlock(&q->q_ov_lock);
}

const unsigned char *queue_ov_payload(const struct queue_ov_entry *e)
{
	return e->oe_loc.jl_seg->js_map + e->oe_loc.jl_off;
}

/* A JNL_MSG payload: u32 record length, record, body. */
struct queue_ov_entry *queue_ov_entry_new(const struct jnl_loc *loc, uint64_t id,
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
	e->oe_added_ns = queue_now_ns();
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
		qsort(ids, n, sizeof(*ids), jnl_u64_cmp);
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
