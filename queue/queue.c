/*
 * queue.c: what every part of the queue shares: status codes and their
 * names, queue ids as text, the data file's allocation (queue_room), dead
 * readers, the counters. Opening and closing: queue_open.c; the group
 * committer: queue_commit.c; the journal: queue_journal*.c.
 *
 * LMDB writes a transaction's pages with pwritev at commit; on a full
 * filesystem a write that needs a new block fails, and with it the whole
 * commit, deletes and delivery results too. So the file is kept allocated
 * (fallocate) past LMDB's last page by a reserve, and the committer grows
 * that allocation before each batch: when it cannot, new mail is refused
 * with -ENOSPC while delivery results and deletes still commit inside the
 * reserve (queue_room(), README "Queue storage").
 */
#include "queue/queue_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

int queue_txn_begin_write(struct queue *q, MDB_txn **txn_r)
{
	int rc;

	if (q->q_test_panic_at != 0 &&
	    atomic_fetch_add(&q->q_test_writes, 1) + 1 >= q->q_test_panic_at)
		rc = MDB_PANIC;	/* as LMDB answers once a meta page write failed */
	else
		rc = mdb_txn_begin(q->q_env, NULL, 0, txn_r);
	if (rc == MDB_PANIC && !atomic_exchange(&q->q_fatal, true)) {
		fprintf(stderr, "ringmta: queue: the store failed beyond repair in this process"
			" (%s); new mail gets 4xx; stopping, so that a restart reopens it at"
			" its last commit\n", mdb_strerror(rc));
		if (q->q_fatal_fn != NULL)
			q->q_fatal_fn(q->q_fatal_ctx);
	}
	return rc;
}

void queue_set_fatal_listener(struct queue *q, void (*fn)(void *ctx), void *ctx)
{
	q->q_fatal_fn = fn;
	q->q_fatal_ctx = ctx;
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

		if (fallocate(q->q_fd, 0, (off_t)start, (off_t)(end - start)) == 0) {
			q->q_alloc_end = end;
			return 0;
		}
		if (errno == EOPNOTSUPP) {
			/* Nothing to promise there; but keep the file as long
			 * as LMDB's pages may reach: LMDB does not write a page
			 * it allocated and freed in one transaction, and the
			 * check at open refuses a file shorter than its last
			 * page (queue_open_precheck). */
			struct stat st;

			if (fstat(q->q_fd, &st) == 0 && (uint64_t)st.st_size < end &&
			    ftruncate(q->q_fd, (off_t)end) < 0)
				return -errno;
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
