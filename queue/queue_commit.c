/*
 * queue_commit.c: the group committer (README "Durability and group
 * commit", "Group commit: who wakes whom"): submits from any thread, one
 * committer thread that gathers under load, writes each batch (the
 * journal's part first, then LMDB's: queue_jnl_batch, queue_write_batch)
 * and hands the messages back to their sinks, once per sink per batch.
 *
 * For what goes to LMDB, the committer copies each body from the workers'
 * receive buffers into the value LMDB reserved (MDB_RESERVE, a page of the
 * transaction in memory; LMDB writes it with pwritev at commit); the
 * journal writes them with pwritev (no copy).
 */
#include "queue/queue_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What one record or one update costs past its body (queue_room). */
#define QUEUE_ITEM_BYTES 1024
/* Pages one delivery update may copy at worst, counted while the disk is
 * full (queue_batch_room). */
#define QUEUE_UPDATE_PAGES 6
/* A gathering that brought fewer than QUEUE_GATHER_MIN items (a few
 * sessions, each waiting for its own 250: nobody else comes) skips the
 * next chance, then 2, 4, ... up to this many in a row. */
#define QUEUE_GATHER_BACKOFF_MAX 64u

/*
 * Hand each message back to its sink and notify each sink once: a batch
 * interleaves the workers' messages, and a notify per run of them woke a
 * worker several times per batch. A sink gets all its messages and its
 * notify under its lock, in one step: its owner may free it (HTTP
 * injection waits on a sink on its stack) as soon as it took what it
 * waited for, and it can take nothing before the notify is done.
 */
static void queue_return(struct queue_msg *list)
{
	while (list != NULL) {
		struct queue_sink *s = list->qm_sink;
		struct queue_msg *first = NULL, *last = NULL, **pp = &list, *m;

		/* This sink's messages, in order; the rest stay in list. */
		while ((m = *pp) != NULL) {
			if (m->qm_sink != s) {
				pp = &m->qm_next;
				continue;
			}
			*pp = m->qm_next;
			m->qm_next = NULL;
			if (last != NULL)
				last->qm_next = m;
			else
				first = m;
			last = m;
		}
		pthread_mutex_lock(&s->qs_lock);
		if (s->qs_tail != NULL)
			s->qs_tail->qm_next = first;
		else
			s->qs_head = first;
		s->qs_tail = last;
		s->qs_notify(s->qs_ctx);
		pthread_mutex_unlock(&s->qs_lock);
	}
}

static uint64_t queue_events_bytes(const struct queue_event *e)
{
	uint64_t n = 0;

	for (; e != NULL; e = e->qe_next)
		n += e->qe_len + 64;
	return n;
}

static uint64_t queue_msg_bytes(const struct queue_msg *m)
{
	uint64_t n = QUEUE_ITEM_BYTES + queue_events_bytes(m->qm_events);

	for (unsigned i = 0; i < m->qm_iovcnt; i++)
		n += m->qm_iov[i].iov_len;
	return n + qrecord_encoded_size(&m->qm_rec);
}

static uint64_t queue_update_bytes(const struct queue_update *u)
{
	return QUEUE_ITEM_BYTES * (2 + u->qu_nsuppress) + queue_events_bytes(u->qu_events) +
	       (u->qu_new != NULL ? queue_msg_bytes(u->qu_new) : 0);
}

/* Whether LMDB's map lacks room for need bytes more and a checkpoint of
 * what the journal holds (queue_batch_room). */
static bool queue_map_short(struct queue *q, uint64_t need)
{
	MDB_envinfo ei;

	if (q->q_jnl == NULL || mdb_env_info(q->q_env, &ei) != 0)
		return false;
	return ((uint64_t)ei.me_last_pgno + 1) * q->q_psize + need + queue_jnl_cp_bytes(q) >
	       ei.me_mapsize;
}

/*
 * Room for this batch, before any page is touched: new mail goes in only
 * when the data file can be allocated for it plus the reserve; otherwise
 * it is refused (-ENOSPC) and the updates run inside what is allocated,
 * each one that does not fit refused too. Recovers by itself: every batch
 * tries to grow the allocation again.
 */
static void queue_batch_room(struct queue *q, struct queue_msg *batch,
			     struct queue_update *ubatch, uint64_t extra)
{
	uint64_t fixed = QUEUE_TXN_PAGES * q->q_psize + extra, in = 0, up = 0;
	int rc;

	for (struct queue_msg *m = batch; m != NULL; m = m->qm_next)
		if (m->qm_status == 0)
			in += queue_msg_bytes(m);
	for (struct queue_update *u = ubatch; u != NULL; u = u->qu_next)
		if (u->qu_status == 0)
			up += queue_update_bytes(u);
	if (batch == NULL && ubatch == NULL)
		return;
	rc = queue_room(q, fixed + in + up + q->q_reserve);
	/* With the journal, LMDB keeps room in its map for a checkpoint of
	 * what the journal holds: new mail that would take it is refused. */
	if (rc == 0 && in > 0 && queue_map_short(q, fixed + in)) {
		if (!q->q_map_warned)
			fprintf(stderr, "ringmta: queue: the LMDB map is full with what the journal"
				" holds: refusing new mail until messages leave\n");
		q->q_map_warned = true;
		for (struct queue_msg *m = batch; m != NULL; m = m->qm_next)
			if (m->qm_status == 0)
				m->qm_status = -ENOSPC;
		return;
	}
	if (rc == 0 && in > 0)
		q->q_map_warned = false;
	if (rc == 0) {
		if (q->q_full)
			fprintf(stderr, "ringmta: queue: storage available again;"
				" accepting mail\n");
		q->q_full = false;
		return;
	}
	if (!q->q_full)
		fprintf(stderr, "ringmta: queue: cannot allocate storage (%s):"
			" refusing new mail until space returns\n", queue_strerror(rc));
	q->q_full = true;
	for (struct queue_msg *m = batch; m != NULL; m = m->qm_next)
		if (m->qm_status == 0)
			m->qm_status = -ENOSPC;
	/* Inside the allocation, count an update as the pages it may copy
	 * (the record's leaf and branch in "meta", the old and the new
	 * schedule entries' in "sched"), not its bytes: an estimate too low
	 * here is a write past the allocation, which a full disk fails. */
	up = 0;
	for (struct queue_update *u = ubatch; u != NULL; u = u->qu_next) {
		uint64_t b = QUEUE_UPDATE_PAGES * q->q_psize +
			     (u->qu_new != NULL ? queue_msg_bytes(u->qu_new) : 0);

		if (u->qu_status != 0)
			continue;	/* the journal took it */
		if (queue_room(q, fixed + up + b) < 0) {
			u->qu_status = -ENOSPC;
			if (u->qu_new != NULL)
				u->qu_new->qm_status = -ENOSPC;
			continue;
		}
		up += b;
	}
}

/* What the batch's LMDB part may write (queue_room). */
static uint64_t queue_batch_bytes(const struct queue_msg *batch,
				  const struct queue_update *ubatch)
{
	uint64_t n = 0;

	for (; batch != NULL; batch = batch->qm_next)
		if (batch->qm_status == 0)
			n += queue_msg_bytes(batch);
	for (; ubatch != NULL; ubatch = ubatch->qu_next)
		if (ubatch->qu_status == 0)
			n += queue_update_bytes(ubatch);
	return n;
}

/* Whether anything of the batch is left for LMDB (not journaled). */
static bool queue_batch_lmdb(const struct queue_msg *batch, const struct queue_update *ubatch)
{
	for (; batch != NULL; batch = batch->qm_next)
		if (batch->qm_status == 0)
			return true;
	for (; ubatch != NULL; ubatch = ubatch->qu_next)
		if (ubatch->qu_status == 0)
			return true;
	return false;
}

static void queue_commit_batch(struct queue *q, struct queue_msg *batch,
			       struct queue_update *ubatch, bool want_cp)
{
	struct queue_idlist ids = { NULL, 0, 0 };
	uint64_t t0 = queue_now_ns(), n = 0, failed = 0;
	unsigned njnl;
	bool cp;
	int rc = 0, why = 0;

	for (struct queue_msg *m = batch; m != NULL; m = m->qm_next)
		m->qm_status = 0;
	for (struct queue_update *u = ubatch; u != NULL; u = u->qu_next) {
		u->qu_status = 0;
		if (u->qu_new != NULL)
			u->qu_new->qm_status = 0;
	}
	/* The journal first (README "Queue journal"): what it takes is
	 * marked QUEUE_ST_JOURNAL, and LMDB writes the rest. */
	cp = queue_jnl_batch(q, batch, ubatch, &ids, want_cp);
	njnl = ids.n;
	/* A checkpoint writes the journal's messages into LMDB: only into
	 * allocated blocks (a full disk fails any other write, and the whole
	 * commit with it). Without room it waits, and so does what needed it. */
	if (cp && queue_jnl_cp_backoff(q))
		why = -EAGAIN;
	else if (cp && queue_room(q, QUEUE_TXN_PAGES * q->q_psize + queue_jnl_cp_bytes(q) +
				    queue_batch_bytes(batch, ubatch) + q->q_reserve) < 0)
		why = -ENOSPC;	/* room for both together: one transaction */
	if (why != 0)
		cp = false;
	queue_jnl_before_lmdb(q, batch, ubatch, cp, why);
	if (cp || queue_batch_lmdb(batch, ubatch)) {
		queue_readers_check(q, false);
		queue_batch_room(q, batch, ubatch, cp ? queue_jnl_cp_bytes(q) : 0);
		rc = queue_write_batch(q, batch, ubatch, &ids, cp);
		if (rc != 0 && cp) {
			/* The journal keeps its messages (durable there); the
			 * rest of the batch goes in without the checkpoint. */
			cp = false;
			ids.n = njnl;
			queue_jnl_before_lmdb(q, batch, ubatch, false, rc);
			rc = queue_batch_lmdb(batch, ubatch) ?
			     queue_write_batch(q, batch, ubatch, &ids, false) : 0;
		}
		if (rc != 0) {
			fprintf(stderr, "ringmta: queue commit failed: %s\n", queue_strerror(rc));
			ids.n = njnl;
		} else if (cp) {
			queue_jnl_cp_done(q);
		}
	}
	for (struct queue_msg *m = batch; m != NULL; m = m->qm_next) {
		if (m->qm_status == QUEUE_ST_JOURNAL)
			m->qm_status = 0;
		else if (rc != 0 && m->qm_status == 0)
			m->qm_status = rc;
		if (m->qm_status < -4095)
			m->qm_status = -EIO;	/* an LMDB code: logged above */
		if (m->qm_status != 0)
			failed++;
		else
			n++;
	}
	for (struct queue_update *u = ubatch; u != NULL; u = u->qu_next) {
		if (u->qu_status == QUEUE_ST_JOURNAL) {
			u->qu_status = 0;
			continue;
		}
		if (rc != 0 && (u->qu_status == 0 || u->qu_status == -ENOENT)) {
			u->qu_status = rc;
			u->qu_removed = false;
		}
		if (u->qu_status < -4095)
			u->qu_status = -EIO;
	}
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
	if (q->q_event_seq != atomic_load(&q->q_event_last)) {
		atomic_store(&q->q_event_last, q->q_event_seq);
		/* Under the lock: queue_set_event_listener(NULL) is final. */
		pthread_mutex_lock(&q->q_lock);
		if (q->q_event_listener != NULL)
			q->q_event_listener(q->q_event_listener_ctx, q->q_event_seq);
		pthread_mutex_unlock(&q->q_lock);
	}
	queue_return(batch);
	while (ubatch != NULL) {
		struct queue_update *next = ubatch->qu_next;

		ubatch->qu_done(ubatch);
		ubatch = next;
	}
	/* Last, once per batch: the listener's thread learns the new ids and
	 * what the qu_done callbacks told it with one wake. */
	if (q->q_listener != NULL)
		q->q_listener(q->q_listener_ctx, ids.ids, ids.n);
	free(ids.ids);
}

/*
 * Under q_lock: wait up to q_linger_ns for the batch to reach
 * q_batch_want items. Only called when work already waits, so no item
 * waits longer than that past what it waited anyway for the last commit;
 * and skipped for a while after a gathering that did not pay.
 */
static void queue_gather(struct queue *q)
{
	uint64_t end = queue_now_ns() + q->q_linger_ns;
	struct timespec ts = { (time_t)(end / 1000000000u), (long)(end % 1000000000u) };
	unsigned n0 = q->q_npending, gain;

	if (q->q_gather_skip > 0) {
		q->q_gather_skip--;
		return;
	}
	q->q_gathering = true;
	while (q->q_gathering && !q->q_stop && q->q_npending < q->q_batch_want)
		if (pthread_cond_timedwait(&q->q_cond, &q->q_lock, &ts) == ETIMEDOUT)
			break;
	q->q_gathering = false;
	/* Worth it? Under load it brings as many again as made the load;
	 * when the waiting items were all there is (a few sessions, each
	 * waiting for its own 250), it only added latency: back off. */
	gain = q->q_npending - n0;
	if (gain >= q->q_gather_min) {
		q->q_gather_backoff = 0;
		return;
	}
	q->q_gather_backoff = q->q_gather_backoff == 0 ? 1 : q->q_gather_backoff * 2;
	if (q->q_gather_backoff > QUEUE_GATHER_BACKOFF_MAX)
		q->q_gather_backoff = QUEUE_GATHER_BACKOFF_MAX;
	q->q_gather_skip = q->q_gather_backoff;
}

void *queue_committer(void *arg)
{
	struct queue *q = arg;
	bool loaded = false;	/* enough work arrived during the last commit */

	pthread_setname_np(pthread_self(), "rm-commit");
	pthread_mutex_lock(&q->q_lock);
	for (;;) {
		struct queue_msg *batch;
		struct queue_update *ubatch;
		unsigned cp_req;
		uint64_t wait_ns = 0;
		bool cp_due = false;

		/* Idle: sleep until a submit; that one is committed at once.
		 * With messages in the journal's overlay, only until their
		 * checkpoint is due. */
		while (q->q_head == NULL && q->q_uhead == NULL && !q->q_stop &&
		       q->q_cp_req == q->q_cp_done) {
			loaded = false;
			cp_due = queue_jnl_cp_due(q, &wait_ns);
			if (cp_due)
				break;
			q->q_idle = true;
			if (wait_ns == 0) {
				pthread_cond_wait(&q->q_cond, &q->q_lock);
			} else {
				uint64_t end = queue_now_ns() + wait_ns;
				struct timespec ts = { (time_t)(end / 1000000000u),
						       (long)(end % 1000000000u) };

				(void)pthread_cond_timedwait(&q->q_cond, &q->q_lock, &ts);
			}
		}
		q->q_idle = false;
		cp_req = q->q_cp_req;
		/* Under load: a short, bounded wait for a fuller batch, ended
		 * early by the submit that fills it. */
		if (loaded && !q->q_stop && q->q_linger_ns > 0 &&
		    q->q_npending < q->q_batch_want)
			queue_gather(q);
		batch = q->q_head;
		ubatch = q->q_uhead;
		q->q_head = q->q_tail = NULL;
		q->q_uhead = q->q_utail = NULL;
		q->q_npending = 0;
		if (batch == NULL && ubatch == NULL && q->q_stop) {
			/* Last: the journal's messages into LMDB, so the
			 * store alone is the queue after a clean stop. */
			pthread_mutex_unlock(&q->q_lock);
			if (q->q_jnl != NULL)
				queue_commit_batch(q, NULL, NULL, true);
			pthread_mutex_lock(&q->q_lock);
			q->q_cp_done = q->q_cp_req;
			pthread_cond_broadcast(&q->q_cp_cond);
			break;
		}
		pthread_mutex_unlock(&q->q_lock);
		/* A due checkpoint (age, size) is the journal's to cut; a
		 * request (queue_jnl_sync) takes everything. */
		if (batch != NULL || ubatch != NULL || cp_due || cp_req != q->q_cp_done)
			queue_commit_batch(q, batch, ubatch, cp_req != q->q_cp_done);
		pthread_mutex_lock(&q->q_lock);
		if (cp_req != q->q_cp_done) {
			q->q_cp_done = cp_req;
			pthread_cond_broadcast(&q->q_cp_cond);
		}
		loaded = q->q_npending >= q->q_gather_min;
	}
	pthread_mutex_unlock(&q->q_lock);
	return NULL;
}

/* Called after a submit appended under q_lock: whether the committer
 * needs a signal (it sleeps idle, or gathers and the batch is full). */
static bool queue_wake_needed(struct queue *q)
{
	q->q_npending++;
	if (q->q_idle) {
		q->q_idle = false;
		return true;
	}
	if (q->q_gathering && q->q_npending >= q->q_batch_want) {
		q->q_gathering = false;
		return true;
	}
	return false;
}

void queue_set_gather(struct queue *q, uint64_t linger_ns, unsigned gather_min,
		      unsigned batch_want)
{
	pthread_mutex_lock(&q->q_lock);
	q->q_linger_ns = linger_ns;
	q->q_gather_min = gather_min > 0 ? gather_min : 1;
	q->q_gather_skip = q->q_gather_backoff = 0;
	q->q_batch_want = batch_want > 0 ? batch_want : 1;
	pthread_mutex_unlock(&q->q_lock);
}

void queue_set_commit_delay(struct queue *q, uint64_t linger_ns)
{
	pthread_mutex_lock(&q->q_lock);
	if (q->q_linger_ns != linger_ns)
		q->q_gather_skip = q->q_gather_backoff = 0;
	q->q_linger_ns = linger_ns;
	pthread_mutex_unlock(&q->q_lock);
}

void queue_submit_update(struct queue *q, struct queue_update *u)
{
	bool wake;

	u->qu_next = NULL;
	u->qu_status = 0;
	u->qu_removed = false;
	pthread_mutex_lock(&q->q_lock);
	if (q->q_utail != NULL)
		q->q_utail->qu_next = u;
	else
		q->q_uhead = u;
	q->q_utail = u;
	wake = queue_wake_needed(q);
	pthread_mutex_unlock(&q->q_lock);
	if (wake)
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
	bool wake;

	m->qm_next = NULL;
	m->qm_status = 0;
	m->qm_submit_ns = queue_now_ns();
	pthread_mutex_lock(&q->q_lock);
	if (q->q_tail != NULL)
		q->q_tail->qm_next = m;
	else
		q->q_head = m;
	q->q_tail = m;
	wake = queue_wake_needed(q);
	pthread_mutex_unlock(&q->q_lock);
	if (wake)
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
