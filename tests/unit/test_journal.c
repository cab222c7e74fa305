/*
 * Unit tests for the queue journal (queue/journal.c, queue/queue_journal.c;
 * README "Queue journal"): new mail is durable in a segment and readable
 * from it; delivered mail leaves without a checkpoint; a checkpoint moves
 * the rest into LMDB; a process that dies (no close) loses nothing that
 * was returned committed; a group torn by a kill in the middle of its
 * write is not replayed, the groups before it are; a record with a bad
 * CRC ends its segment; records under another segment number (a recycled
 * file) are not replayed.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "queue/journal.h"
#include "queue/queue.h"
#include "queue/queue_internal.h"
#include "tests/unit/tap.h"

struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int n;
};

static void notify(void *ctx)
{
	struct waiter *w = ctx;

	pthread_mutex_lock(&w->lock);
	w->n++;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static char g_body[64][64];

static void fill(struct queue_msg *m, struct queue_sink *sink, uint64_t id, struct qrcpt *rc,
		 struct iovec iov[2], unsigned i)
{
	memset(m, 0, sizeof(*m));
	m->qm_sink = sink;
	m->qm_id = id;
	m->qm_rec.sender = "from@example.org";
	m->qm_rec.sender_len = 16;
	m->qm_rec.nrcpt = 1;
	m->qm_rec.rcpts = rc;
	snprintf(g_body[i], sizeof(g_body[i]), "Subject: m%u\r\n\r\nbody %u\r\n", i, i);
	iov[0].iov_base = "Received: x\r\n";
	iov[0].iov_len = 13;
	iov[1].iov_base = g_body[i];
	iov[1].iov_len = strlen(g_body[i]);
	m->qm_iov = iov;
	m->qm_iovcnt = 2;
}

/* Submit one message and wait for it to come back; its status. */
static int submit_wait(struct queue *q, struct queue_sink *s, struct waiter *w,
		       struct queue_msg *m)
{
	struct queue_msg *got;

	pthread_mutex_lock(&w->lock);
	w->n = 0;
	pthread_mutex_unlock(&w->lock);
	queue_submit(q, m);
	pthread_mutex_lock(&w->lock);
	while (w->n == 0)
		pthread_cond_wait(&w->cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
	got = queue_sink_take(s);
	return got == m ? m->qm_status : -999;
}

static bool body_is(struct queue *q, uint64_t id, unsigned i)
{
	struct queue_body b;
	char want[256];
	bool ok;

	snprintf(want, sizeof(want), "Received: x\r\n%.64s", g_body[i]);
	if (queue_body_get(q, id, &b) != 0)
		return false;
	ok = b.qb_len == strlen(want) && memcmp(b.qb_data, want, b.qb_len) == 0;
	queue_body_release(&b);
	return ok;
}

static struct waiter g_uw = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };

static void upd_done(struct queue_update *u)
{
	(void)u;
	notify(&g_uw);
}

static void test_journal_path(const char *dir)
{
	struct waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
	struct qrcpt rc = { QRCPT_PENDING, 0, 0, "r@example.com", 13, NULL, 0, 0, 0, NULL, 0 };
	struct queue_rcpt_update ru = { 0, QRCPT_DELIVERED, 0, "250 ok", 6, 0, false };
	struct queue_msg m[8];
	struct queue_update u[4];
	struct iovec iov[8][2];
	struct queue_sink sink;
	struct queue_stats st;
	struct queue *q;
	char err[256];
	uint64_t n = 0;
	bool ok = true;

	tap_ok(queue_open(&q, dir, 64u << 20, QUEUE_F_COMMITTER | QUEUE_F_JOURNAL, err,
			  sizeof(err)) == 0, "queue opens with the journal");
	/* No checkpoint by age in this test, however slow the machine: what
	 * it counts is the journal's own. */
	queue_jnl_set_age(q, UINT64_MAX / 2);
	queue_sink_init(&sink, notify, &w);
	for (unsigned i = 0; i < 8; i++) {
		fill(&m[i], &sink, 100 + i, &rc, iov[i], i);
		ok &= submit_wait(q, &sink, &w, &m[i]) == 0;
	}
	queue_get_stats(q, &st);
	tap_ok(ok && st.jnl_groups == 8 && st.checkpoints == 0,
	       "8 messages committed through the journal (%llu groups, %llu checkpoints)",
	       (unsigned long long)st.jnl_groups, (unsigned long long)st.checkpoints);
	tap_ok(body_is(q, 103, 3), "a body is read back from its segment");
	/* Delivered: four of them leave without ever reaching LMDB. */
	for (unsigned i = 0; i < 4; i++) {
		memset(&u[i], 0, sizeof(u[i]));
		u[i].qu_id = 100 + i;
		u[i].qu_rcpts = &ru;
		u[i].qu_nrcpt = 1;
		u[i].qu_done = upd_done;
		queue_submit_update(q, &u[i]);
	}
	pthread_mutex_lock(&g_uw.lock);
	while (g_uw.n < 4)
		pthread_cond_wait(&g_uw.cond, &g_uw.lock);
	pthread_mutex_unlock(&g_uw.lock);
	ok = true;
	for (unsigned i = 0; i < 4; i++)
		ok &= u[i].qu_status == 0 && u[i].qu_removed;
	queue_get_stats(q, &st);
	tap_ok(ok && st.checkpoints == 0, "deliveries of journal messages leave by the journal");
	{
		struct queue_body b;

		tap_ok(queue_body_get(q, 101, &b) == -ENOENT, "a delivered message is gone");
	}
	/* A walk of LMDB (the admin view) checkpoints first. */
	ok = queue_admin_count(q, &n) == 0 && n == 4;
	tap_ok(ok, "count after the checkpoint: %llu", (unsigned long long)n);
	queue_get_stats(q, &st);
	tap_ok(st.checkpoints >= 1, "the walk made a checkpoint");
	tap_ok(body_is(q, 106, 6), "after the checkpoint the body comes from LMDB");
	{
		/* One id, one message: a message for LMDB (over 16 KiB) whose
		 * id the journal holds is refused, and so is the reverse. */
		static char big[20000];
		struct queue_msg a, b, c;
		struct iovec ia[2], ib[2], ic[2];

		memset(big, 'x', sizeof(big));
		fill(&a, &sink, 300, &rc, ia, 0);
		ok = submit_wait(q, &sink, &w, &a) == 0;
		fill(&b, &sink, 300, &rc, ib, 1);
		ib[0].iov_base = big;
		ib[0].iov_len = sizeof(big);
		b.qm_iovcnt = 1;
		tap_ok(ok && submit_wait(q, &sink, &w, &b) == -EEXIST,
		       "a message for LMDB with a journal message's id is refused");
		fill(&c, &sink, 106, &rc, ic, 2);
		tap_ok(submit_wait(q, &sink, &w, &c) == -EEXIST,
		       "a journal message with an id LMDB holds is refused");
		tap_ok(body_is(q, 300, 0) && body_is(q, 106, 6), "both first ones stay");
	}
	queue_close(&q);
	queue_sink_destroy(&sink);
	{
		char path[512];

		snprintf(path, sizeof(path), "%s/journal", dir);
		tap_ok(!jnl_dir_has_segments(path), "a clean close leaves no segment to replay");
	}
	tap_ok(queue_open(&q, dir, 64u << 20, 0, err, sizeof(err)) == 0 &&
	       queue_admin_count(q, &n) == 0 && n == 5 && body_is(q, 107, 7),
	       "reopened: the five undelivered messages, byte-exact");
	queue_close(&q);
}

/*
 * A child commits messages one group each through the journal and dies
 * without closing: after `tear` groups (0: all) with the tear hook, else
 * by _exit. Returns how many came back committed (through a pipe).
 */
static int child_run(const char *dir, unsigned count, unsigned tear)
{
	int pfd[2], status;
	pid_t pid;
	unsigned char acked = 0;

	if (pipe(pfd) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		struct waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
		struct qrcpt rc = { QRCPT_PENDING, 0, 0, "r@example.com", 13, NULL, 0, 0, 0,
				    NULL, 0 };
		struct queue_msg m[16];
		struct iovec iov[16][2];
		struct queue_sink sink;
		struct queue *q;
		char err[256];

		close(pfd[0]);
		if (tear > 0) {
			char t[16];

			snprintf(t, sizeof(t), "%u", tear);
			setenv("RINGMTA_TEST_JOURNAL_TEAR", t, 1);
		}
		if (queue_open(&q, dir, 64u << 20, QUEUE_F_COMMITTER | QUEUE_F_JOURNAL, err,
			       sizeof(err)) != 0)
			_exit(2);
		queue_jnl_set_age(q, UINT64_MAX / 2);	/* all of it stays in the journal */
		queue_sink_init(&sink, notify, &w);
		for (unsigned i = 0; i < count; i++) {
			fill(&m[i], &sink, 500 + i, &rc, iov[i], i);
			if (submit_wait(q, &sink, &w, &m[i]) != 0)
				_exit(3);
			acked = (unsigned char)(i + 1);
			if (write(pfd[1], &acked, 1) != 1)
				_exit(4);
		}
		_exit(0);	/* as a kill: no close, no checkpoint */
	}
	close(pfd[1]);
	while (read(pfd[0], &acked, 1) == 1)
		;
	close(pfd[0]);
	waitpid(pid, &status, 0);
	if (tear > 0 && !(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
		return -2;
	if (tear == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		return -3;
	return acked;
}

static void test_replay(const char *dir)
{
	struct queue *q;
	char err[256], path[512];
	uint64_t n = 0;
	int acked = child_run(dir, 6, 0);
	bool ok = true;

	snprintf(path, sizeof(path), "%s/journal", dir);
	tap_ok(acked == 6 && jnl_dir_has_segments(path),
	       "a process died with 6 messages in the journal (%d)", acked);
	/* A tool that only reads sees it beside LMDB, without replaying. */
	ok = queue_open(&q, dir, 64u << 20, QUEUE_F_RDONLY, err, sizeof(err)) == 0 &&
	     queue_admin_count(q, &n) == 0 && n == 6 && body_is(q, 503, 3);
	tap_ok(ok, "a reading tool sees the 6 (%llu)", (unsigned long long)n);
	queue_close(&q);
	tap_ok(jnl_dir_has_segments(path), "and leaves the journal as it was");
	/* A tool that writes replays it (no daemon holds the queue). */
	ok = queue_open(&q, dir, 64u << 20, 0, err, sizeof(err)) == 0 &&
	     queue_admin_count(q, &n) == 0 && n == 6;
	tap_ok(ok, "replayed: %llu messages", (unsigned long long)n);
	for (unsigned i = 0; q != NULL && i < 6; i++)
		ok &= body_is(q, 500 + i, i);
	tap_ok(ok, "every replayed body is byte-exact");
	queue_close(&q);
	tap_ok(!jnl_dir_has_segments(path), "after the replay no segment is left to replay");
}

/* After a clean stop every segment is a spare: a second run journals,
 * dies, and its replay finds everything. */
static void test_run_after_clean_stop(const char *dir)
{
	struct queue *q;
	char err[256];
	uint64_t n = 0;
	int acked = child_run(dir, 6, 0);
	bool ok;

	tap_ok(acked == 6, "a second run after a clean stop committed 6 and died");
	ok = queue_open(&q, dir, 64u << 20, 0, err, sizeof(err)) == 0 &&
	     queue_admin_count(q, &n) == 0 && n == 5 + 6;
	tap_ok(ok, "all 11 there after its replay (%llu)", (unsigned long long)n);
	queue_close(&q);
}

struct seen {
	uint64_t ids[32];
	unsigned n;
	bool sorted;
};

static int seen_cb(void *ctx, uint64_t id, const struct qrecord *r, const void *body,
		   size_t body_len)
{
	struct seen *s = ctx;

	(void)r;
	if (body_len < 13 || memcmp(body, "Received: x\r\n", 13) != 0)
		return 1;
	if (s->n > 0 && id <= s->ids[s->n - 1])
		s->sorted = false;
	if (s->n < 32)
		s->ids[s->n++] = id;
	return 0;
}

/* A tool beside a running committer sees the journal's messages too, in
 * one state with LMDB's (some there, some in the journal). */
static void test_view(const char *dir)
{
	struct waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
	struct qrcpt rc = { QRCPT_PENDING, 0, 0, "r@example.com", 13, NULL, 0, 0, 0, NULL, 0 };
	struct queue_msg m[6];
	struct iovec iov[6][2];
	struct queue_sink sink;
	struct queue *q, *t;
	struct seen s = { .sorted = true };
	char err[256];
	uint64_t n = 0;
	bool ok = true;

	tap_ok(queue_open(&q, dir, 64u << 20, QUEUE_F_COMMITTER | QUEUE_F_JOURNAL, err,
			  sizeof(err)) == 0, "the daemon's queue opens");
	queue_jnl_set_age(q, UINT64_MAX / 2);
	queue_sink_init(&sink, notify, &w);
	for (unsigned i = 0; i < 3; i++) {
		fill(&m[i], &sink, 700 + i, &rc, iov[i], i);
		ok &= submit_wait(q, &sink, &w, &m[i]) == 0;
	}
	queue_jnl_sync(q);	/* these three into LMDB */
	for (unsigned i = 3; i < 6; i++) {
		fill(&m[i], &sink, 700 + i, &rc, iov[i], i);
		ok &= submit_wait(q, &sink, &w, &m[i]) == 0;
	}
	tap_ok(ok, "3 checkpointed, 3 more in the journal");
	ok = queue_open(&t, dir, 64u << 20, QUEUE_F_RDONLY, err, sizeof(err)) == 0;
	tap_ok(ok, "a tool opens the queue beside it %s", ok ? "" : err);
	ok = t != NULL && queue_admin_count(t, &n) == 0 && n == 6;
	tap_ok(ok, "the tool counts all 6 (%llu)", (unsigned long long)n);
	if (t != NULL)
		queue_admin_foreach(t, seen_cb, &s);
	tap_ok(s.n == 6 && s.sorted && s.ids[0] == 700 && s.ids[5] == 705,
	       "its walk gives all 6 in id order, bodies included (%u)", s.n);
	tap_ok(t != NULL && body_is(t, 704, 4), "and a journal body, byte-exact");
	queue_close(&t);
	queue_close(&q);
	queue_sink_destroy(&sink);
}

static void test_tear(const char *dir)
{
	struct queue *q;
	char err[256];
	uint64_t n = 0;
	int acked = child_run(dir, 8, 5);
	bool ok = true;

	tap_ok(acked == 4, "killed while writing group 5: 4 acknowledged (%d)", acked);
	err[0] = '\0';
	ok = queue_open(&q, dir, 64u << 20, QUEUE_F_COMMITTER | QUEUE_F_JOURNAL, err,
			sizeof(err)) == 0;
	tap_ok(ok, "the daemon's open after the kill %s", err);
	ok = q != NULL && queue_admin_count(q, &n) == 0 && n == 4;
	tap_ok(ok, "the 4 acknowledged are there, the torn one is not (%llu)",
	       (unsigned long long)n);
	for (unsigned i = 0; q != NULL && i < 4; i++)
		ok &= body_is(q, 500 + i, i);
	tap_ok(ok, "byte-exact");
	queue_close(&q);
}

/* --- the file layer alone ------------------------------------------------ */

static int count_cb(void *ctx, const struct jnl_rec *r)
{
	unsigned *n = ctx;

	(void)r;
	(*n)++;
	return 0;
}

static unsigned replay_count(const char *dir)
{
	struct jnl *j;
	char err[256];
	unsigned n = 0, damaged;
	uint64_t es, eo;

	if (jnl_open(&j, dir, false, err, sizeof(err)) != 0)
		return 9999;
	jnl_replay(j, 0, 0, count_cb, &n, &es, &eo, &damaged);
	jnl_close(&j);
	return n + 100 * damaged;
}

/* Each group ends on a page boundary (JNL_PAD): the next group's first
 * record starts a page, so no page is written by two groups' syncs; the
 * pads are valid records that replay skips (no damage, no callback). A
 * group that ends right before a boundary pads past the next one. */
static void test_group_pages(const char *dir)
{
	struct jnl *j;
	struct jnl_loc loc[3];
	char err[256];
	struct iovec part = { "payload bytes", 13 }, big;
	static char fill[JNL_PAGE];
	uint64_t ps, po;
	bool ok;

	mkdir(dir, 0750);
	ok = jnl_open(&j, dir, false, err, sizeof(err)) == 0 &&
	     jnl_add(j, JNL_MSG, 1, &part, 1, &loc[0]) == 0 && jnl_commit(j) == 0 &&
	     jnl_add(j, JNL_DEL, 1, NULL, 0, &loc[1]) == 0 &&
	     jnl_add(j, JNL_MSG, 2, &part, 1, &loc[2]) == 0 && jnl_commit(j) == 0;
	tap_ok(ok, "two groups");
	tap_ok(ok && (loc[1].jl_off - JNL_HDR_SIZE) % JNL_PAGE == 0,
	       "the second group starts a page of its own (offset %llu)",
	       (unsigned long long)(loc[1].jl_off - JNL_HDR_SIZE));
	jnl_position(j, &ps, &po);
	tap_ok(po % JNL_PAGE == 0, "the position after a group is on a page boundary");
	/* A group that ends 8 bytes before a boundary: too little for a
	 * pad's header, so its pad reaches the boundary after. */
	memset(fill, 'f', sizeof(fill));
	big = (struct iovec){ fill, JNL_PAGE - JNL_HDR_SIZE - 8 };
	ok = jnl_add(j, JNL_MSG, 3, &big, 1, &loc[0]) == 0 && jnl_commit(j) == 0;
	jnl_position(j, &ps, &po);
	tap_ok(ok && po % JNL_PAGE == 0 && po - (loc[0].jl_off - JNL_HDR_SIZE) == 2 * JNL_PAGE,
	       "a group 8 bytes short of a boundary pads to the next one");
	jnl_close(&j);
	tap_ok(replay_count(dir) == 4, "replay: the 4 records, the pads skipped, no damage");
}

static void test_file_layer(const char *dir)
{
	struct jnl *j;
	struct jnl_loc loc[5];
	char err[256], seg1[512], seg9[512];
	struct iovec part = { "payload bytes", 13 };
	int fd;
	bool ok = true;

	mkdir(dir, 0750);
	tap_ok(jnl_open(&j, dir, false, err, sizeof(err)) == 0, "journal opens in %s", dir);
	for (unsigned i = 0; i < 5; i++)
		ok &= jnl_add(j, JNL_MSG, 10 + i, &part, 1, &loc[i]) == 0;
	tap_ok(ok && jnl_commit(j) == 0, "5 records in one group");
	{
		uint64_t ps, po;

		/* A checkpoint's position at a segment's end: nothing since
		 * (it counted the whole segment, and checkpointed always). */
		jnl_position(j, &ps, &po);
		tap_ok(jnl_bytes_since(j, ps, po) == 0, "no bytes since the position reached");
		tap_ok(jnl_bytes_since(j, ps, 0) == po, "all of them since the start");
	}
	tap_ok(memcmp(loc[2].jl_seg->js_map + loc[2].jl_off, "payload bytes", 13) == 0,
	       "a payload is read from the map where jnl_add said");
	jnl_close(&j);
	tap_ok(replay_count(dir) == 5, "replay finds the 5");
	/* One payload byte changed in record 3: it and what follows in its
	 * segment are not replayed. */
	snprintf(seg1, sizeof(seg1), "%s/0000000000000001.seg", dir);
	fd = open(seg1, O_RDWR);
	tap_ok(fd >= 0 && pwrite(fd, "X", 1, (off_t)loc[2].jl_off + 3) == 1, "flip a byte");
	close(fd);
	tap_ok(replay_count(dir) == 4 + 100,
	       "a bad CRC mid-segment is damage: reported, the 4 others replayed");
	{
		char dmg[600];
		struct stat st;

		snprintf(dmg, sizeof(dmg), "%s/damaged-0000000000000001-%llu", dir,
			 (unsigned long long)(loc[2].jl_off - JNL_HDR_SIZE));
		tap_ok(stat(dmg, &st) == 0 && st.st_size == JNL_HDR_SIZE + 16,
		       "the unreadable bytes are kept for inspection");
	}
	/* The tail of the last group torn: nothing valid after it, the end. */
	fd = open(seg1, O_RDWR);
	tap_ok(fd >= 0 && ftruncate(fd, (off_t)loc[4].jl_off + 4) == 0, "tear the last record");
	close(fd);
	tap_ok(replay_count(dir) == 3 + 100, "a torn tail ends the segment quietly");
	/* The same file under another number (a recycled spare): its old
	 * records carry segment 1 and are not taken for segment 9's. */
	snprintf(seg9, sizeof(seg9), "%s/0000000000000009.seg", dir);
	tap_ok(rename(seg1, seg9) == 0 && replay_count(dir) == 0,
	       "stale records of a recycled file are not replayed");
	/* New segments are numbered above any spare's old number. */
	char want[600];
	struct stat st;
	{
		char sp[600];

		snprintf(sp, sizeof(sp), "%s/spare.20", dir);
		fd = open(sp, O_RDWR | O_CREAT, 0600);
		close(fd);
		unlink(seg9);
		ok = jnl_open(&j, dir, false, err, sizeof(err)) == 0 &&
		     jnl_add(j, JNL_MSG, 1, &part, 1, &loc[0]) == 0 && jnl_commit(j) == 0;
		jnl_close(&j);
		snprintf(want, sizeof(want), "%s/0000000000000021.seg", dir);
		tap_ok(ok && stat(want, &st) == 0, "a new segment is numbered above spare.20");
	}
	/* The salt record's CRC damaged: its 8 bytes still read the rest. */
	{
		char s21[600];
		unsigned char x = 0;

		snprintf(s21, sizeof(s21), "%s/0000000000000021.seg", dir);
		fd = open(s21, O_RDWR);
		ok = fd >= 0 && pread(fd, &x, 1, 4) == 1;
		x ^= 0x40;
		ok = ok && pwrite(fd, &x, 1, 4) == 1;
		tap_ok(ok && replay_count(dir) == 1, "a damaged salt record: the salt still reads");
		/* ... and with its salt bytes damaged too, the file is kept as
		 * damaged-*.seg, never recycled. */
		x = 0xff;
		ok = pwrite(fd, &x, 1, JNL_HDR_SIZE) == 1;
		close(fd);
		snprintf(want, sizeof(want), "%s/damaged-0000000000000021.seg", dir);
		tap_ok(ok && replay_count(dir) == 0 && stat(want, &st) == 0,
		       "unreadable from the start: kept as damaged-0000000000000021.seg");
	}
}

/* A child holds queue_dir/ringmta.lock with text as its lock file's
 * text (after its pid) for ms milliseconds; its pid, once it holds it. */
static pid_t hold_lock(const char *dir, const char *text, unsigned ms)
{
	char path[400], buf[80];
	int p[2];
	pid_t pid;

	snprintf(path, sizeof(path), "%s/ringmta.lock", dir);
	if (pipe(p) < 0 || (pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		int fd = open(path, O_RDWR | O_CREAT, 0640), n;

		if (fd < 0 || flock(fd, LOCK_EX) < 0)
			_exit(1);
		n = snprintf(buf, sizeof(buf), "%ld%s\n", (long)getpid(), text);
		if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n ||
		    write(p[1], "x", 1) != 1)
			_exit(1);
		usleep(ms * 1000u);
		_exit(0);
	}
	close(p[1]);
	if (read(p[0], buf, 1) != 1)
		pid = -1;
	close(p[0]);
	return pid;
}

/* A daemon that starts while a tool holds the lock to replay a journal
 * waits for it; one held by another daemon, or by a tool for anything
 * else, is a refusal at once; a tool is refused by a replay's lock. */
static void test_daemon_waits_for_replay(const char *dir)
{
	struct queue *q = NULL;
	char err[512];
	pid_t pid;
	int rc, st;

	mkdir(dir, 0750);
	pid = hold_lock(dir, " " QUEUE_LOCK_REPLAY_TAG, 300);
	tap_ok(pid > 0, "a tool holds the lock to replay");
	rc = queue_open(&q, dir, 64u << 20, QUEUE_F_EXCLUSIVE, err, sizeof(err));
	tap_ok(rc == -EBUSY, "another tool is refused at once: %d %s", rc, rc ? err : "");
	queue_close(&q);
	rc = queue_open(&q, dir, 64u << 20, QUEUE_F_COMMITTER | QUEUE_F_JOURNAL, err, sizeof(err));
	tap_ok(rc == 0, "a daemon waits for the replay, then opens: %d %s", rc, rc ? err : "");
	queue_close(&q);
	if (pid > 0)
		waitpid(pid, &st, 0);

	pid = hold_lock(dir, "", 10000);
	tap_ok(pid > 0, "a daemon holds the lock");
	rc = queue_open(&q, dir, 64u << 20, QUEUE_F_COMMITTER | QUEUE_F_JOURNAL, err, sizeof(err));
	tap_ok(rc == -EBUSY && strstr(err, "in use by another ringmta") != NULL,
	       "a second daemon is refused at once: %d %s", rc, err);
	queue_close(&q);
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
}

static int count_spares(const char *dir)
{
	char cmd[600];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls %s | grep -c '^spare\\.'", dir);
	if ((p = popen(cmd, "r")) != NULL) {
		if (fscanf(p, "%d", &n) != 1)
			n = -1;
		pclose(p);
	}
	return n;
}

/* Spares found at open: as many as are kept (JNL_SPARES_MAX, by number,
 * with no allocation), the others and misnamed ones removed; a new
 * segment takes one, numbered above them all. */
static void test_spares_at_open(const char *dir)
{
	static const char *names[] = { "spare.30", "spare.31", "spare.32", "spare.0033" };
	struct jnl *j;
	struct jnl_loc loc;
	struct iovec part = { "payload bytes", 13 };
	char err[256], path[600];
	struct stat st;
	bool ok = true;

	mkdir(dir, 0750);
	for (unsigned i = 0; i < 4; i++) {
		int fd;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		fd = open(path, O_RDWR | O_CREAT, 0600);
		ok &= fd >= 0 && ftruncate(fd, JNL_SEG_SIZE) == 0;
		close(fd);
	}
	tap_ok(ok && jnl_open(&j, dir, false, err, sizeof(err)) == 0, "journal opens with 4 spares");
	tap_ok(count_spares(dir) == 2, "2 spares kept, the others removed (%d)", count_spares(dir));
	snprintf(path, sizeof(path), "%s/spare.0033", dir);
	tap_ok(stat(path, &st) < 0, "a spare whose name is not its number's is removed");
	ok = jnl_add(j, JNL_MSG, 1, &part, 1, &loc) == 0 && jnl_commit(j) == 0;
	snprintf(path, sizeof(path), "%s/0000000000000034.seg", dir);
	tap_ok(ok && stat(path, &st) == 0 && (uint64_t)st.st_size == JNL_SEG_SIZE,
	       "the new segment is numbered above every spare's number");
	tap_ok(count_spares(dir) == 1, "and is a spare renamed (%d left)", count_spares(dir));
	jnl_close(&j);
}

int main(void)
{
	char base[] = "/tmp/ringmta-test-journal-XXXXXX", d[8][300];

	if (mkdtemp(base) == NULL)
		return 1;
	for (int i = 0; i < 8; i++)
		snprintf(d[i], sizeof(d[i]), "%s/q%d", base, i);
	test_journal_path(d[0]);
	test_run_after_clean_stop(d[0]);
	test_view(d[4]);
	test_replay(d[1]);
	test_tear(d[2]);
	test_file_layer(d[3]);
	test_daemon_waits_for_replay(d[5]);
	test_group_pages(d[6]);
	test_spares_at_open(d[7]);
	{
		char cmd[400];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
		if (system(cmd) != 0)
			tap_ok(0, "cleanup");
	}
	return tap_done();
}
