/*
 * queue_open.c: opening the LMDB environment (checked before it is
 * mapped), its databases, the locks of queue_dir (one daemon; tools beside
 * it; compact alone), the journal's replay or view, the committer thread;
 * and closing it all.
 */
#include "queue/queue_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* meta, body, sched, suppress, shaping, events, journal, and room for more. */
#define QUEUE_MAX_DBS 12
/* Each outbound transaction holds a read snapshot of its body. */
#define QUEUE_MAX_READERS 16384
/* The most kept allocated past LMDB's last page (less for small maps). */
#define QUEUE_RESERVE_MAX (16u << 20)

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
 * Before LMDB maps data.mdb: an empty file would silently become a new
 * empty queue, a truncated one faults (SIGBUS) on reading the missing
 * pages. Compare the file with what its meta pages claim, using a
 * read-only, lock-free look.
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

/* The lock file's text: the holder's pid, and the tag when it holds the
 * lock only to replay a journal (queue_jnl_recover_dir). */
static void queue_lock_text(int fd, char *buf, size_t len)
{
	ssize_t n = pread(fd, buf, len - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
}

/*
 * queue_dir/ringmta.lock: one daemon (or queue compact) per queue. A
 * daemon that finds it held by a tool's journal replay waits for that
 * (bounded: QUEUE_LOCK_WAIT_NS), checking every 20 ms; anything else
 * holding it is a refusal at once.
 */
static int queue_lock(struct queue *q, const char *dir, unsigned flags, char *err,
		      size_t errlen)
{
	char path[PATH_MAX], pid[64];
	uint64_t deadline = queue_now_ns() + QUEUE_LOCK_WAIT_NS;
	int n, fd;

	snprintf(path, sizeof(path), "%s/ringmta.lock", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		int rc = -errno;

		snprintf(err, errlen, "queue lock %s: %s", path, strerror(errno));
		return rc;
	}
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int rc = errno == EWOULDBLOCK ? -EBUSY : -errno;

		queue_lock_text(fd, pid, sizeof(pid));
		if (rc == -EBUSY && (flags & QUEUE_F_COMMITTER) &&
		    strstr(pid, QUEUE_LOCK_REPLAY_TAG) != NULL && queue_now_ns() < deadline) {
			struct timespec ts = { 0, 20 * 1000 * 1000 };

			nanosleep(&ts, NULL);
			continue;
		}
		pid[strcspn(pid, " \n")] = '\0';
		if (rc == -EBUSY)
			snprintf(err, errlen, "queue_dir %s is in use by another ringmta (pid %s,"
				 " lock %s): refusing to run a second one on it",
				 dir, pid[0] ? pid : "?", path);
		else
			snprintf(err, errlen, "queue lock %s: %s", path, strerror(-rc));
		close(fd);
		return rc;
	}
	n = snprintf(pid, sizeof(pid), "%ld%s\n", (long)getpid(),
		     (flags & QUEUE_F_RECOVER) ? " " QUEUE_LOCK_REPLAY_TAG : "");
	/* The text is for the message above and for a daemon's wait: a
	 * failure to write it is not one to stop for. */
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
	/* No MDB_WRITEMAP: LMDB builds a transaction's pages in memory and
	 * writes them with pwritev (README "Queue storage"). */
	unsigned eflags = MDB_NOTLS | MDB_NORDAHEAD;
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
	q->q_cp_age_ns = QUEUE_CP_AGE_NS;
	if (((flags & QUEUE_F_EXCLUSIVE) && (rc = queue_lock(q, dir, flags, err, errlen)) < 0) ||
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
	{
		const char *t = getenv("RINGMTA_TEST_LMDB_PANIC");

		q->q_test_panic_at = t != NULL ? (unsigned)strtoul(t, NULL, 10) : 0;
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

