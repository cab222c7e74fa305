/*
 * queue.c: opening the LMDB environment and the group committer. See
 * queue.h for the layout and the contract.
 *
 * LMDB is opened with MDB_WRITEMAP: the committer copies each body from
 * the workers' receive buffers straight into the map (MDB_RESERVE), the
 * only user-space copy a body byte gets; the commit then msyncs it.
 *
 * MDB_WRITEMAP makes the data file as long as the map but sparse; a store
 * into a hole on a full filesystem is a SIGBUS, not an error. So the file
 * is kept allocated (fallocate) past LMDB's last page by a reserve, and
 * the committer grows that allocation before each batch: when it cannot,
 * new mail is refused with -ENOSPC while delivery results and deletes
 * still commit inside the reserve (queue_room(), README "Queue storage").
 */
#include "queue/queue_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* meta, body, sched, suppress, shaping, events, and room for more. */
#define QUEUE_MAX_DBS 12
/* Each outbound transaction holds a read snapshot of its body. */
#define QUEUE_MAX_READERS 16384
/* The most kept allocated past LMDB's last page (less for small maps). */
#define QUEUE_RESERVE_MAX (16u << 20)
/* Pages a write transaction may touch besides its records and bodies
 * (branch pages, leaf splits, the free list) ... */
#define QUEUE_TXN_PAGES 64
/* ... and what one record or one update costs past its body. */
#define QUEUE_ITEM_BYTES 1024
/* Pages one delivery update may copy at worst, counted while the disk is
 * full (queue_batch_room). */
#define QUEUE_UPDATE_PAGES 6
/* Under load, the committer gathers the next batch for at most this long,
 * or until it holds QUEUE_BATCH_WANT items (queue_committer). */
#define QUEUE_LINGER_NS 500000u
#define QUEUE_BATCH_WANT 128u
/* ... when at least this many items arrived during the last commit: one
 * session's message and the delivery result of its previous one do not
 * make load, and must not wait (the 250 latency at low load). */
#define QUEUE_GATHER_MIN 4u
/* A gathering that brought fewer than QUEUE_GATHER_MIN items (a few
 * sessions, each waiting for its own 250: nobody else comes) skips the
 * next chance, then 2, 4, ... up to this many in a row. */
#define QUEUE_GATHER_BACKOFF_MAX 64u
/* Sinks told apart per batch in queue_return; more are told at once. */

static uint64_t queue_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

const char *queue_strerror(int err)
{
	if (err >= MDB_KEYEXIST && err <= MDB_LAST_ERRCODE)
		return mdb_strerror(err);
	return strerror(err < 0 ? -err : err);
}

int queue_status(int mdb_rc)
{
	if (mdb_rc == MDB_MAP_FULL)
		return -ENOSPC;
	if (mdb_rc > 0)
		return -mdb_rc;
	return mdb_rc;
}

void queue_readers_check(struct queue *q, bool force)
{
	uint64_t now = queue_now_ns();
	int dead = 0;

	if (!force && now - q->q_reader_check_ns < 1000000000u)
		return;
	q->q_reader_check_ns = now;
	if (mdb_reader_check(q->q_env, &dead) == 0 && dead > 0)
		fprintf(stderr, "ringmta: queue: cleared %d reader slot%s left by dead"
			" processes\n", dead, dead == 1 ? "" : "s");
}

int queue_room(struct queue *q, uint64_t need)
{
	MDB_envinfo ei;
	uint64_t used, want, start;

	if (q->q_fd < 0)
		return 0;	/* read-only: writes nothing */
	if (mdb_env_info(q->q_env, &ei) != 0)
		return -EIO;
	used = ((uint64_t)ei.me_last_pgno + 1) * q->q_psize;
	want = used + need;
	if (want > ei.me_mapsize)
		want = ei.me_mapsize;	/* beyond it LMDB says MDB_MAP_FULL */
	if (want <= q->q_alloc_end)
		return 0;
	/* Pages up to used were written by LMDB, so they are allocated. */
	start = q->q_alloc_end > used ? q->q_alloc_end : used;
	/* fallocate(2), not posix_fallocate(): glibc's fallback writes bytes,
	 * which could race with another process's transaction. Grow by a
	 * quarter reserve more than asked, so that not every batch calls it. */
	for (uint64_t extra = q->q_reserve / 4;; extra = 0) {
		uint64_t end = want + extra > ei.me_mapsize ? ei.me_mapsize : want + extra;

		if (fallocate(q->q_fd, 0, (off_t)start, (off_t)(end - start)) == 0 ||
		    errno == EOPNOTSUPP) {	/* nothing to promise there */
			q->q_alloc_end = end;
			return 0;
		}
		if (errno != ENOSPC || extra == 0 || end == want)
			return -errno;
	}
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
	 * here is a write into a hole, and SIGBUS. */
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

/*
 * This batch's journal group failed, and no checkpoint past it commits
 * with the batch: its new mail is refused (4xx), not stored in LMDB. Its
 * records may have reached the disk ahead of the stored position, and a
 * replay would bring back a message LMDB had since delivered.
 */
static void queue_refuse_failed_group(struct queue *q, struct queue_msg *batch)
{
	if (!q->q_jnl_failed_now)
		return;
	for (; batch != NULL; batch = batch->qm_next)
		if (batch->qm_status == 0)
			batch->qm_status = -EIO;
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
	int rc = 0;

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
	 * allocated blocks (MDB_WRITEMAP faults on a hole). Without room it
	 * waits, and so does what needed it. */
	if (cp && queue_jnl_cp_backoff(q)) {
		queue_jnl_cp_failed(q, ubatch, -EAGAIN);
		cp = false;
	} else if (cp && queue_room(q, QUEUE_TXN_PAGES * q->q_psize + queue_jnl_cp_bytes(q) +
				       queue_batch_bytes(batch, ubatch) + q->q_reserve) < 0) {
		/* Room for the checkpoint and the rest of the batch, together:
		 * they go in one transaction. */
		queue_jnl_cp_failed(q, ubatch, -ENOSPC);
		cp = false;
	}
	if (!cp) {
		queue_refuse_failed_group(q, batch);
		queue_jnl_lmdb_guard(q, batch, ubatch);
	} else {
		queue_jnl_lmdb_guard(q, batch, NULL);
	}
	if (cp || queue_batch_lmdb(batch, ubatch)) {
		queue_readers_check(q, false);
		queue_batch_room(q, batch, ubatch, cp ? queue_jnl_cp_bytes(q) : 0);
		rc = queue_write_batch(q, batch, ubatch, &ids, cp);
		if (rc != 0 && cp) {
			/* The journal keeps its messages (durable there); the
			 * rest of the batch goes in without the checkpoint. */
			queue_jnl_cp_failed(q, ubatch, rc);
			cp = false;
			ids.n = njnl;
			queue_refuse_failed_group(q, batch);
			queue_jnl_lmdb_guard(q, batch, ubatch);
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

static void *queue_committer(void *arg)
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
	/* Newer than the others: a queue from before it lacks it, which a
	 * read-only open must take as an empty list, not as damage. */
	rc = mdb_dbi_open(txn, "suppress", dflags, &q->q_suppress);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return rc;
	}
	q->q_has_suppress = rc == 0;
	/* Shaping state (queue_shaping.c): the same for older files. */
	rc = mdb_dbi_open(txn, "shaping", dflags, &q->q_shaping);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return rc;
	}
	q->q_has_shaping = rc == 0;
	rc = queue_events_open(q, txn, dflags);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	rc = mdb_cursor_open(txn, q->q_meta, &cur);
	if (rc == 0) {
		if (mdb_cursor_get(cur, &k, &v, MDB_LAST) == 0 && k.mv_size == 8)
			q->q_last_id = queue_key_get(k.mv_data);
		mdb_cursor_close(cur);
	}
	/* Append only above every key: meta's last, body's last. */
	q->q_append_id = q->q_last_id;
	if (mdb_cursor_open(txn, q->q_body, &cur) == 0) {
		if (mdb_cursor_get(cur, &k, &v, MDB_LAST) == 0 && k.mv_size == 8 &&
		    queue_key_get(k.mv_data) > q->q_append_id)
			q->q_append_id = queue_key_get(k.mv_data);
		mdb_cursor_close(cur);
	}
	memset(q->q_append_sched, 0xff, sizeof(q->q_append_sched));
	if (mdb_cursor_open(txn, q->q_sched, &cur) == 0) {
		rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
		if (rc == MDB_NOTFOUND)
			memset(q->q_append_sched, 0, sizeof(q->q_append_sched));
		else if (rc == 0 && k.mv_size == 16)
			memcpy(q->q_append_sched, k.mv_data, 16);
		mdb_cursor_close(cur);
	}
	return mdb_txn_commit(txn);
}

/*
 * Before LMDB maps data.mdb (which, with MDB_WRITEMAP, also stretches it
 * to the map size): an empty file would silently become a new empty
 * queue, a truncated one faults (SIGBUS) on the missing pages. Compare the
 * file with what its meta pages claim, using a read-only, lock-free look.
 */
static int queue_open_precheck(const char *dir, char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct stat st;
	MDB_env *env;
	MDB_envinfo ei;
	MDB_stat ms;
	int rc;

	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	if (stat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;	/* a new queue */
		rc = -errno;
		snprintf(err, errlen, "queue %s: %s", path, strerror(errno));
		return rc;
	}
	if (st.st_size == 0) {
		snprintf(err, errlen, "queue %s is empty (truncated?): refusing to start an"
			 " empty queue over it; restore it, or remove it to start afresh", path);
		return -EBADMSG;
	}
	if ((rc = mdb_env_create(&env)) != 0)
		goto fail;
	(void)mdb_env_set_maxdbs(env, QUEUE_MAX_DBS);
	rc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS, 0);
	if (rc == 0 && (rc = mdb_env_info(env, &ei)) == 0 &&
	    (rc = mdb_env_stat(env, &ms)) == 0 &&
	    ((uint64_t)ei.me_last_pgno + 1) * ms.ms_psize > (uint64_t)st.st_size) {
		snprintf(err, errlen, "queue %s is damaged (truncated): %llu bytes, but its"
			 " pages reach %llu; restore it (see \"ringmta queue check\")", path,
			 (unsigned long long)st.st_size,
			 (unsigned long long)(((uint64_t)ei.me_last_pgno + 1) * ms.ms_psize));
		mdb_env_close(env);
		return -EBADMSG;
	}
	mdb_env_close(env);
	if (rc == 0)
		return 0;
fail:
	snprintf(err, errlen, "queue %s is damaged or not an LMDB file: %s", path,
		 queue_strerror(rc));
	return -EBADMSG;
}

/* An LMDB failure while opening, naming the file. */
static void queue_open_err(char *err, size_t errlen, const char *dir, int rc)
{
	bool damaged = rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND ||
		       rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH || rc == MDB_BAD_TXN;

	if (rc == MDB_NOTFOUND) {	/* from mdb_dbi_open(): no such database */
		snprintf(err, errlen, "queue %s/data.mdb is damaged or not a ringmta queue:"
			 " its databases are missing; restore it", dir);
		return;
	}
	snprintf(err, errlen, "queue %s/data.mdb%s: %s%s", dir, damaged ? " is damaged" : "",
		 queue_strerror(rc), damaged ? "; restore it, see \"ringmta queue check\"" : "");
}

/* queue_dir/ringmta.lock: one daemon (or queue compact) per queue. */
static int queue_lock(struct queue *q, const char *dir, char *err, size_t errlen)
{
	char path[PATH_MAX], pid[32];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/ringmta.lock", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		int rc = -errno;

		snprintf(err, errlen, "queue lock %s: %s", path, strerror(errno));
		return rc;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int rc = errno == EWOULDBLOCK ? -EBUSY : -errno;

		n = pread(fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		if (rc == -EBUSY)
			snprintf(err, errlen, "queue_dir %s is in use by another ringmta (pid %s,"
				 " lock %s): refusing to run a second one on it",
				 dir, pid[0] ? pid : "?", path);
		else
			snprintf(err, errlen, "queue lock %s: %s", path, strerror(-rc));
		close(fd);
		return rc;
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	/* The pid is only for the message above: a failure to write it is
	 * not one to stop for. */
	if (ftruncate(fd, 0) == 0)
		(void)!pwrite(fd, pid, (size_t)n, 0);
	q->q_lockfd = fd;
	return 0;
}

/*
 * queue_dir/ringmta.tools.lock: CLI tools hold it shared, queue compact
 * alone, so that no tool writes (or keeps lock.mdb open) while compact
 * copies and replaces data.mdb. The daemon does not take it.
 */
static int queue_tools_lock(struct queue *q, const char *dir, bool alone, char *err,
			    size_t errlen)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/ringmta.tools.lock", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0 && errno == ENOENT)
		return 0;	/* no queue_dir yet: nothing to compact */
	if (fd < 0 && (errno == EACCES || errno == EROFS) && !alone)
		return 0;	/* a reader without write access: it cannot race */
	if (fd < 0) {
		int rc = -errno;

		snprintf(err, errlen, "queue lock %s: %s", path, strerror(errno));
		return rc;
	}
	if (flock(fd, (alone ? LOCK_EX : LOCK_SH) | LOCK_NB) < 0) {
		int rc = errno == EWOULDBLOCK ? -EBUSY : -errno;

		snprintf(err, errlen, rc != -EBUSY ? "queue lock %s: %s" :
			 alone ? "queue_dir's tools are in use (%s%.0s): run compact alone" :
			 "queue compact is running (%s%.0s): try again when it is done",
			 path, strerror(-rc));
		close(fd);
		return rc;
	}
	q->q_toolsfd = fd;
	return 0;
}

/*
 * The lock file's reader table is a sparse mapping too: allocate it.
 *
 * The descriptor stays open until after mdb_env_close(). LMDB tells
 * "another process uses this environment" by a POSIX (fcntl) lock each
 * process holds on lock.mdb, and POSIX locks are dropped by ANY close()
 * of the file in the process: closing it here released the daemon's
 * lock, so the next `ringmta queue` or `ringmta suppress` beside it
 * thought it was alone and re-initialized the lock region (mutexes and
 * reader table) under the running committer.
 */
static void queue_lockfile_alloc(struct queue *q, const char *dir)
{
	char path[PATH_MAX];
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/lock.mdb", dir);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && st.st_size > 0)
		(void)fallocate(fd, 0, 0, st.st_size);
	q->q_lmdblockfd = fd;
}

int queue_open(struct queue **q_r, const char *dir, uint64_t map_size,
	       unsigned flags, char *err, size_t errlen)
{
	struct queue *q;
	unsigned eflags = MDB_WRITEMAP | MDB_NOTLS | MDB_NORDAHEAD;
	MDB_stat ms;
	int rc;

	*q_r = NULL;
	if (flags & QUEUE_F_COMMITTER)
		flags |= QUEUE_F_EXCLUSIVE;
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
	q->q_fd = q->q_lockfd = q->q_toolsfd = q->q_lmdblockfd = -1;
	pthread_mutex_init(&q->q_lock, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);	/* queue_gather */
		pthread_cond_init(&q->q_cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	pthread_cond_init(&q->q_cp_cond, NULL);
	pthread_mutex_init(&q->q_ov_lock, NULL);
	/* A journal a killed daemon left: a tool that writes replays it
	 * first, when no daemon holds the queue now; a tool that reads never
	 * takes the daemon's lock (it would keep a restarting daemon out):
	 * it reads the journal beside LMDB instead (queue_jnl_view). */
	if (!(flags & (QUEUE_F_EXCLUSIVE | QUEUE_F_RDONLY)))
		queue_jnl_recover_dir(dir, map_size);
	q->q_linger_ns = QUEUE_LINGER_NS;
	q->q_batch_want = QUEUE_BATCH_WANT;
	q->q_gather_min = QUEUE_GATHER_MIN;
	if (((flags & QUEUE_F_EXCLUSIVE) && (rc = queue_lock(q, dir, err, errlen)) < 0) ||
	    (!(flags & QUEUE_F_COMMITTER) &&
	     (rc = queue_tools_lock(q, dir, (flags & QUEUE_F_EXCLUSIVE) != 0, err, errlen)) < 0) ||
	    (rc = queue_open_precheck(dir, err, errlen)) < 0) {
		queue_close(&q);
		return rc;
	}
	if ((rc = mdb_env_create(&q->q_env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(q->q_env, QUEUE_MAX_DBS)) != 0 ||
	    (rc = mdb_env_set_mapsize(q->q_env, map_size)) != 0 ||
	    (rc = mdb_env_set_maxreaders(q->q_env, QUEUE_MAX_READERS)) != 0 ||
	    (rc = mdb_env_open(q->q_env, dir, eflags, 0640)) != 0 ||
	    (rc = mdb_env_stat(q->q_env, &ms)) != 0) {
		queue_open_err(err, errlen, dir, rc);
		queue_close(&q);
		return rc > 0 ? -rc : -EIO;
	}
	q->q_psize = ms.ms_psize;
	/* Readers a killed process left behind pin old pages for ever. */
	queue_readers_check(q, true);
	if (!(flags & QUEUE_F_RDONLY)) {
		uint64_t r = map_size / 16;

		(void)mdb_env_get_fd(q->q_env, &q->q_fd);
		if (r > QUEUE_RESERVE_MAX)
			r = QUEUE_RESERVE_MAX;
		if (r < QUEUE_TXN_PAGES * q->q_psize)
			r = QUEUE_TXN_PAGES * q->q_psize;
		q->q_reserve = r;
		queue_lockfile_alloc(q, dir);
		if (queue_room(q, QUEUE_TXN_PAGES * q->q_psize +
				  ((flags & QUEUE_F_COMMITTER) ? q->q_reserve : 0)) < 0 &&
		    (flags & QUEUE_F_COMMITTER)) {
			q->q_full = true;
			fprintf(stderr, "ringmta: queue %s: cannot allocate storage: refusing new"
				" mail until space returns\n", dir);
		}
	}
	if ((rc = queue_open_dbs(q)) != 0) {
		queue_open_err(err, errlen, dir, rc);
		queue_close(&q);
		return rc > 0 ? -rc : -EIO;
	}
	/* The journal: replayed by whoever holds the queue alone. */
	if ((flags & QUEUE_F_EXCLUSIVE) &&
	    (rc = queue_jnl_open(q, dir, flags, err, errlen)) < 0) {
		queue_close(&q);
		return rc;
	}
	/* A tool beside a running daemon: the journal's messages too. */
	if ((flags & QUEUE_F_RDONLY) && !(flags & QUEUE_F_EXCLUSIVE))
		queue_jnl_view(q, dir);
	if (q->q_jnl != NULL && !(flags & QUEUE_F_RDONLY)) {
		/* Ids above every replayed one. */
		MDB_txn *txn;
		MDB_cursor *cur;
		MDB_val k, v;

		if (mdb_txn_begin(q->q_env, NULL, MDB_RDONLY, &txn) == 0) {
			if (mdb_cursor_open(txn, q->q_meta, &cur) == 0) {
				if (mdb_cursor_get(cur, &k, &v, MDB_LAST) == 0 && k.mv_size == 8 &&
				    queue_key_get(k.mv_data) > q->q_last_id)
					q->q_last_id = queue_key_get(k.mv_data);
				mdb_cursor_close(cur);
			}
			mdb_txn_abort(txn);
		}
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
	queue_jnl_close(q);
	if (q->q_env != NULL)
		mdb_env_close(q->q_env);
	if (q->q_lmdblockfd >= 0)
		close(q->q_lmdblockfd);	/* only now: see queue_lockfile_alloc */
	if (q->q_lockfd >= 0)
		close(q->q_lockfd);	/* releases the flock */
	if (q->q_toolsfd >= 0)
		close(q->q_toolsfd);
	pthread_mutex_destroy(&q->q_lock);
	pthread_cond_destroy(&q->q_cond);
	pthread_cond_destroy(&q->q_cp_cond);
	pthread_mutex_destroy(&q->q_ov_lock);
	free(q);
	*qp = NULL;
}
