/*
 * Unit tests for queue/ (records and ids: test_qrecord.c): group commit
 * through the committer thread, byte-exact bodies from scattered iovecs, persistence
 * across reopen, delete, and damaged records; one failing item does not
 * fail the rest of its batch; a full map is -ENOSPC.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include "queue/queue.h"
#include "queue/queue_internal.h"
#include "tests/unit/qrecord_v3.h"
#include "tests/unit/tap.h"

struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int notified;
};

static void notify(void *ctx)
{
	struct waiter *w = ctx;

	pthread_mutex_lock(&w->lock);
	w->notified++;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static int take_all(struct queue_sink *s, struct waiter *w, int want,
		    struct queue_msg **got, int cap)
{
	int n = 0;

	while (n < want) {
		struct queue_msg *m;

		pthread_mutex_lock(&w->lock);
		while (w->notified == 0)
			pthread_cond_wait(&w->cond, &w->lock);
		w->notified = 0;
		pthread_mutex_unlock(&w->lock);
		for (m = queue_sink_take(s); m != NULL; m = m->qm_next)
			if (n < cap)
				got[n++] = m;
	}
	return n;
}

struct found {
	uint64_t id;
	int seen;
	size_t len;
	char body[256];
	char sender[64];
	int nrcpt;
};

static int find_cb(void *ctx, uint64_t id, const struct qrecord *r,
		   const void *body, size_t body_len)
{
	struct found *f = ctx;
	struct qrcpt rc;
	size_t off = 0;

	if (id != f->id)
		return 0;
	f->seen++;
	f->len = body_len;
	memcpy(f->body, body, body_len < sizeof(f->body) ? body_len : sizeof(f->body));
	snprintf(f->sender, sizeof(f->sender), "%.*s", (int)r->sender_len, r->sender);
	while (qrecord_rcpt_next(r, &off, &rc))
		f->nrcpt++;
	return 0;
}

static void test_commit(const char *dir)
{
	struct queue *q;
	struct queue_sink sink;
	struct waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
	enum { N = 50 };
	struct queue_msg msgs[N], *got[N];
	struct qrcpt rc = { QRCPT_PENDING, 0, 0, "r@example.com", 13, NULL, 0, 0, 0, NULL, 0 };
	struct iovec iov[N][3];
	char err[256];
	uint64_t count = 0;
	struct found f;
	int n, all_ok = 1;

	tap_ok(queue_open(&q, dir, 64u << 20, QUEUE_F_COMMITTER, err, sizeof(err)) == 0,
	       "queue opens in %s", dir);
	queue_sink_init(&sink, notify, &w);
	for (int i = 0; i < N; i++) {
		memset(&msgs[i], 0, sizeof(msgs[i]));
		msgs[i].qm_sink = &sink;
		msgs[i].qm_id = 1000 + (uint64_t)i;
		msgs[i].qm_rec.sender = "from@example.org";
		msgs[i].qm_rec.sender_len = 16;
		msgs[i].qm_rec.nrcpt = 1;
		msgs[i].qm_rec.rcpts = &rc;
		iov[i][0].iov_base = "Received: x\r\n";
		iov[i][0].iov_len = 13;
		iov[i][1].iov_base = "Subject: hi\r\n\r\nbo";
		iov[i][1].iov_len = 17;
		iov[i][2].iov_base = "dy\r\n";
		iov[i][2].iov_len = 4;
		msgs[i].qm_iov = iov[i];
		msgs[i].qm_iovcnt = 3;
		queue_submit(q, &msgs[i]);
	}
	n = take_all(&sink, &w, N, got, N);
	for (int i = 0; i < n; i++)
		all_ok &= got[i]->qm_status == 0;
	tap_ok(n == N && all_ok, "all %d submitted messages come back committed", N);
	{
		struct queue_stats st;

		queue_get_stats(q, &st);
		tap_ok(st.messages == N && st.commits >= 1 && st.commits <= N,
		       "group commit: %llu messages in %llu commits",
		       (unsigned long long)st.messages, (unsigned long long)st.commits);
	}
	tap_ok(queue_admin_count(q, &count) == 0 && count == N, "count is %d", N);
	memset(&f, 0, sizeof(f));
	f.id = 1007;
	queue_admin_foreach(q, find_cb, &f);
	tap_ok(f.seen == 1 && f.len == 34 &&
	       memcmp(f.body, "Received: x\r\nSubject: hi\r\n\r\nbody\r\n", 34) == 0,
	       "body stored byte-exact from scattered pieces");
	tap_ok(strcmp(f.sender, "from@example.org") == 0 && f.nrcpt == 1,
	       "envelope stored with its recipient");
	/* The same id again must fail and not disturb the store. */
	msgs[0].qm_next = NULL;
	queue_submit(q, &msgs[0]);
	n = take_all(&sink, &w, 1, got, N);
	tap_ok(n == 1 && got[0]->qm_status < 0, "duplicate id refused");
	tap_ok(queue_admin_count(q, &count) == 0 && count == N, "store unchanged after refusal");
	tap_ok(queue_admin_delete(q, 1007) == 0, "delete succeeds");
	tap_ok(queue_admin_delete(q, 1007) == -ENOENT, "second delete: no such message");
	queue_sink_destroy(&sink);
	queue_close(&q);
	tap_ok(q == NULL, "close clears the handle");

	/* Reopen: everything committed is still there. */
	tap_ok(queue_open(&q, dir, 64u << 20, QUEUE_F_RDONLY, err, sizeof(err)) == 0,
	       "queue reopens read-only");
	tap_ok(queue_admin_count(q, &count) == 0 && count == N - 1, "%d messages after reopen", N - 1);
	tap_ok(queue_last_id(q) == 1000 + N - 1, "last id found on open");
	{
		FILE *out = tmpfile();
		char line[256];
		int lines = 0;

		tap_ok(queue_admin_show(q, 1003, out) == 0, "show finds a message");
		rewind(out);
		while (fgets(line, sizeof(line), out))
			lines++;
		tap_ok(lines >= 8, "show prints envelope and body (%d lines)", lines);
		fclose(out);
		tap_ok(queue_admin_show(q, 99, stdout) == -ENOENT, "show of a missing id fails");
	}
	queue_close(&q);
}

static void fill_msg(struct queue_msg *m, struct queue_sink *sink, uint64_t id,
		     struct qrcpt *rc, struct iovec *iov, const char *body, size_t len)
{
	memset(m, 0, sizeof(*m));
	m->qm_sink = sink;
	m->qm_id = id;
	m->qm_rec.sender = "from@example.org";
	m->qm_rec.sender_len = 16;
	m->qm_rec.nrcpt = 1;
	m->qm_rec.rcpts = rc;
	iov->iov_base = (void *)body;
	iov->iov_len = len;
	m->qm_iov = iov;
	m->qm_iovcnt = 1;
}

struct done_count {
	struct waiter *w;
	int n;
};

static struct done_count *g_done;

static void update_done(struct queue_update *u)
{
	(void)u;
	pthread_mutex_lock(&g_done->w->lock);
	g_done->n++;
	pthread_cond_signal(&g_done->w->cond);
	pthread_mutex_unlock(&g_done->w->lock);
}

/*
 * Start one batch: hold LMDB's write lock in *hold_r and hand the
 * committer `first` (an update of an absent message, which it takes and
 * then waits on). The caller submits the rest and aborts *hold_r: all of
 * it forms the next batch. False when the lock could not be taken.
 */
static bool batch_begin(struct queue *q, struct queue_update *first, MDB_txn **hold_r)
{
	if (mdb_txn_begin(q->q_env, NULL, 0, hold_r) != 0)
		return false;
	queue_submit_update(q, first);
	usleep(100000);		/* let it take `first` alone; harmless if not */
	return true;
}

/* Wait until n updates have come back through update_done. */
static void wait_updates(struct done_count *dc, int n)
{
	pthread_mutex_lock(&dc->w->lock);
	while (dc->n < n)
		pthread_cond_wait(&dc->w->cond, &dc->w->lock);
	pthread_mutex_unlock(&dc->w->lock);
}

/*
 * One damaged record in a batch: its update fails, the other update and
 * the new message of the same batch commit. The batch is made by holding
 * LMDB's write lock while they are submitted.
 */
static void test_isolation(const char *dir)
{
	struct queue *q;
	struct queue_sink sink;
	struct waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
	struct waiter wd = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
	struct done_count dc = { &wd, 0 };
	struct qrcpt rc = { QRCPT_PENDING, 0, 0, "r@example.com", 13, NULL, 0, 0, 0, NULL, 0 };
	struct queue_rcpt_update ru = { 0, QRCPT_DELIVERED, 0, "250 ok", 6, 0, false };
	struct queue_update u0, u1, u2;
	struct queue_msg m[3], *got[3];
	struct iovec iov[3];
	unsigned char key[8];
	MDB_val k = { 8, key }, v = { 5, "junk!" };
	MDB_txn *txn, *hold;
	char err[256];
	uint64_t count = 0;
	int n;

	g_done = &dc;
	tap_ok(queue_open(&q, dir, 64u << 20, QUEUE_F_COMMITTER, err, sizeof(err)) == 0,
	       "isolation: queue opens");
	queue_sink_init(&sink, notify, &w);
	fill_msg(&m[0], &sink, 1, &rc, &iov[0], "one\r\n", 5);
	fill_msg(&m[1], &sink, 2, &rc, &iov[1], "two\r\n", 5);
	queue_submit(q, &m[0]);
	queue_submit(q, &m[1]);
	n = take_all(&sink, &w, 2, got, 3);
	tap_ok(n == 2 && got[0]->qm_status == 0 && got[1]->qm_status == 0, "two messages stored");
	/* Damage message 1's record. */
	queue_key_put(key, 1);
	tap_ok(mdb_txn_begin(q->q_env, NULL, 0, &txn) == 0 &&
	       mdb_put(txn, q->q_meta, &k, &v, 0) == 0 && mdb_txn_commit(txn) == 0,
	       "record of message 1 damaged");
	memset(&u0, 0, sizeof(u0));
	u0.qu_id = 999;		/* absent: the committer takes it and waits */
	u0.qu_done = update_done;
	u1 = u0;
	u1.qu_id = 1;
	u1.qu_rcpts = &ru;
	u1.qu_nrcpt = 1;
	u2 = u1;
	u2.qu_id = 2;
	fill_msg(&m[2], &sink, 3, &rc, &iov[2], "three\r\n", 7);
	tap_ok(batch_begin(q, &u0, &hold), "write lock held");
	queue_submit_update(q, &u1);
	queue_submit_update(q, &u2);
	queue_submit(q, &m[2]);
	mdb_txn_abort(hold);
	n = take_all(&sink, &w, 1, got, 3);
	wait_updates(&dc, 3);
	tap_ok(u0.qu_status == -ENOENT, "update of a missing message: -ENOENT");
	tap_ok(u1.qu_status == -EBADMSG && !u1.qu_removed,
	       "update of the damaged record fails alone (%d)", u1.qu_status);
	tap_ok(u2.qu_status == 0 && u2.qu_removed, "the other update commits (%d)", u2.qu_status);
	tap_ok(n == 1 && got[0] == &m[2] && m[2].qm_status == 0,
	       "new mail in the same batch commits (%d)", m[2].qm_status);
	tap_ok(queue_admin_count(q, &count) == 0 && count == 2,
	       "the damaged message and the new one remain");
	{
		FILE *out = tmpfile();
		char line[256] = "";

		tap_ok(queue_admin_check(q, out) == 1, "check counts one damaged message");
		rewind(out);
		if (fgets(line, sizeof(line), out) != NULL)
			line[strcspn(line, "\n")] = '\0';
		tap_ok(strstr(line, "0000000000000001") != NULL, "and names it: %s", line);
		fclose(out);
	}
	queue_sink_destroy(&sink);
	queue_close(&q);
}

struct upgrade_seen {
	uint8_t version;
	uint16_t attempts;
	uint8_t bclass;
	uint64_t next;
	uint16_t reply_len;
};

static void upgrade_cb(void *ctx, uint64_t id, const struct qrecord *r)
{
	struct upgrade_seen *s = ctx;
	struct qrcpt rc;
	size_t off = 0;

	(void)id;
	s->version = r->version;
	s->next = r->next_attempt;
	if (qrecord_rcpt_next(r, &off, &rc)) {
		s->attempts = rc.attempts;
		s->bclass = rc.bclass;
		s->reply_len = rc.reply_len;
	}
}

static int upgrade_due(void *ctx, uint64_t id, uint64_t when)
{
	uint64_t *found = ctx;

	(void)when;
	*found = id;
	return 1;
}

/*
 * A queue written by the previous release (RMQ3 records) still delivers:
 * the first update rewrites the record as v5 with the class, counts the
 * attempt, and moves the schedule entry; an update marked "no attempt"
 * (a suspended site) keeps the counter; the last result removes it.
 */
static void test_upgrade(const char *dir)
{
	struct queue *q;
	struct waiter wd = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
	struct done_count dc = { &wd, 0 };
	struct queue_rcpt_update ru;
	struct queue_update u;
	struct upgrade_seen seen;
	unsigned char rec[256], key[8], skey[16];
	MDB_val k = { 8, key }, v, sk = { 16, skey }, sv = { 0, NULL };
	MDB_txn *txn;
	uint64_t due = 0;
	char err[256];

	g_done = &dc;
	tap_ok(queue_open(&q, dir, 64u << 20, QUEUE_F_COMMITTER, err, sizeof(err)) == 0,
	       "upgrade: queue opens");
	v.mv_data = rec;
	v.mv_size = v3_record(rec, 77);
	queue_key_put(key, 42);
	queue_key_put(skey, 77);
	queue_key_put(skey + 8, 42);
	tap_ok(mdb_txn_begin(q->q_env, NULL, 0, &txn) == 0 &&
	       mdb_put(txn, q->q_meta, &k, &v, 0) == 0 &&
	       mdb_put(txn, q->q_body, &k, &(MDB_val){ 5, "body\n" }, 0) == 0 &&
	       mdb_put(txn, q->q_sched, &sk, &sv, 0) == 0 && mdb_txn_commit(txn) == 0,
	       "upgrade: a v3 message stored as the previous release did");
	tap_ok(queue_scan_due(q, 100, upgrade_due, &due) == 0 && due == 42,
	       "upgrade: the v3 message is due");
	memset(&seen, 0, sizeof(seen));
	tap_ok(queue_record_get(q, 42, upgrade_cb, &seen) == 0 && seen.version == 3 &&
	       seen.attempts == 4, "upgrade: read back as v3");

	memset(&ru, 0, sizeof(ru));
	ru.qru_state = QRCPT_PENDING;
	ru.qru_next_attempt = 500;
	ru.qru_reply = "421 4.7.28 slow down";
	ru.qru_reply_len = 20;
	ru.qru_bclass = 5;
	memset(&u, 0, sizeof(u));
	u.qu_id = 42;
	u.qu_rcpts = &ru;
	u.qu_nrcpt = 1;
	u.qu_done = update_done;
	queue_submit_update(q, &u);
	wait_updates(&dc, 1);
	memset(&seen, 0, sizeof(seen));
	tap_ok(u.qu_status == 0 && queue_record_get(q, 42, upgrade_cb, &seen) == 0 &&
	       seen.version == 5 && seen.attempts == 5 && seen.bclass == 5 && seen.next == 500,
	       "upgrade: a deferral rewrites it as v5 with the class, attempt counted");
	due = 0;
	tap_ok(queue_scan_due(q, 100, upgrade_due, &due) == 0 && due == 0 &&
	       queue_scan_due(q, 500, upgrade_due, &due) == 0 && due == 42,
	       "upgrade: the schedule entry moved to the new time");

	ru.qru_no_attempt = true;
	ru.qru_next_attempt = 900;
	ru.qru_reply = NULL;
	ru.qru_reply_len = 0;
	ru.qru_bclass = 0;
	u.qu_status = 0;
	queue_submit_update(q, &u);
	wait_updates(&dc, 2);
	memset(&seen, 0, sizeof(seen));
	tap_ok(u.qu_status == 0 && queue_record_get(q, 42, upgrade_cb, &seen) == 0 &&
	       seen.attempts == 5 && seen.next == 900,
	       "upgrade: a wait without an attempt keeps the counter");
	tap_ok(seen.bclass == 5 && seen.reply_len == 20,
	       "upgrade: and, saying nothing new, the last reply and class");

	ru.qru_no_attempt = false;
	ru.qru_state = QRCPT_FAILED;
	ru.qru_bclass = 1;
	queue_submit_update(q, &u);
	wait_updates(&dc, 3);
	tap_ok(u.qu_status == 0 && u.qu_removed &&
	       queue_record_get(q, 42, upgrade_cb, &seen) == -ENOENT,
	       "upgrade: the last result removes the message");
	queue_close(&q);
}

struct dsn_seen {
	uint8_t ret, notify[2];
	char envid[16], orcpt[32];
	uint16_t attempts;
};

static void dsn_cb(void *ctx, uint64_t id, const struct qrecord *r)
{
	struct dsn_seen *s = ctx;
	struct qrcpt rc;
	size_t off = 0;

	(void)id;
	s->ret = r->dsn_ret;
	snprintf(s->envid, sizeof(s->envid), "%.*s", (int)r->envid_len, r->envid);
	for (int i = 0; i < 2 && qrecord_rcpt_next(r, &off, &rc); i++) {
		s->notify[i] = rc.notify;
		if (i == 0) {
			snprintf(s->orcpt, sizeof(s->orcpt), "%.*s", (int)rc.orcpt_len, rc.orcpt);
			s->attempts = rc.attempts;
		}
	}
}

/* A delivery result rewrites the record: the DSN parameters stay. */
static void test_update_keeps_dsn(const char *dir)
{
	struct qrcpt rcpts[2] = {
		{ .state = QRCPT_PENDING, .addr = "a@example.org", .addr_len = 13,
		  .notify = QRCPT_NOTIFY_SUCCESS, .orcpt = "rfc822;A+2B@example.org", .orcpt_len = 23 },
		{ .state = QRCPT_PENDING, .addr = "b@example.org", .addr_len = 13,
		  .notify = QRCPT_NOTIFY_NEVER },
	};
	struct qrecord r = { .arrival = 1, .next_attempt = 77, .size = 5, .sender = "s@x.org",
			     .sender_len = 7, .client = "c", .client_len = 1, .helo = "h",
			     .helo_len = 1, .nrcpt = 2, .rcpts = rcpts, .dsn_ret = QRECORD_RET_FULL,
			     .envid = "E+2B1", .envid_len = 5 };
	struct waiter wd = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
	struct done_count dc = { &wd, 0 };
	unsigned char rec[256], key[8], skey[16];
	MDB_val k = { 8, key }, v = { qrecord_encoded_size(&r), rec }, sk = { 16, skey },
		sv = { 0, NULL };
	struct queue_rcpt_update ru;
	struct queue_update u;
	struct dsn_seen seen;
	struct queue *q;
	MDB_txn *txn;
	char err[256];

	g_done = &dc;
	tap_ok(queue_open(&q, dir, 64u << 20, QUEUE_F_COMMITTER, err, sizeof(err)) == 0,
	       "dsn update: queue opens");
	qrecord_encode(&r, rec);
	queue_key_put(key, 43);
	queue_key_put(skey, 77);
	queue_key_put(skey + 8, 43);
	tap_ok(mdb_txn_begin(q->q_env, NULL, 0, &txn) == 0 &&
	       mdb_put(txn, q->q_meta, &k, &v, 0) == 0 &&
	       mdb_put(txn, q->q_body, &k, &(MDB_val){ 5, "body\n" }, 0) == 0 &&
	       mdb_put(txn, q->q_sched, &sk, &sv, 0) == 0 && mdb_txn_commit(txn) == 0,
	       "dsn update: a v5 message with DSN parameters stored");
	memset(&ru, 0, sizeof(ru));
	ru.qru_state = QRCPT_PENDING;
	ru.qru_next_attempt = 500;
	ru.qru_reply = "451 4.3.0 later";
	ru.qru_reply_len = 15;
	memset(&u, 0, sizeof(u));
	u.qu_id = 43;
	u.qu_rcpts = &ru;
	u.qu_nrcpt = 1;
	u.qu_done = update_done;
	queue_submit_update(q, &u);
	wait_updates(&dc, 1);
	memset(&seen, 0, sizeof(seen));
	tap_ok(u.qu_status == 0 && queue_record_get(q, 43, dsn_cb, &seen) == 0 &&
	       seen.attempts == 1, "dsn update: a deferral is stored");
	tap_ok(seen.ret == QRECORD_RET_FULL && strcmp(seen.envid, "E+2B1") == 0 &&
	       seen.notify[0] == QRCPT_NOTIFY_SUCCESS && seen.notify[1] == QRCPT_NOTIFY_NEVER &&
	       strcmp(seen.orcpt, "rfc822;A+2B@example.org") == 0,
	       "dsn update: RET, ENVID, NOTIFY and ORCPT are kept");
	queue_close(&q);
}

/* A full map is "no storage" (-ENOSPC), and the queue goes on working. */
static void test_map_full(const char *dir)
{
	struct queue *q;
	struct queue_sink sink;
	struct waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
	struct qrcpt rc = { QRCPT_PENDING, 0, 0, "r@example.com", 13, NULL, 0, 0, 0, NULL, 0 };
	struct queue_msg m[2], *got[2];
	struct iovec iov[2];
	size_t big = 2u << 20;
	char *body = malloc(big), err[256];
	int n;

	memset(body, 'x', big);
	tap_ok(queue_open(&q, dir, 1u << 20, QUEUE_F_COMMITTER, err, sizeof(err)) == 0,
	       "map-full: 1 MiB queue opens");
	queue_sink_init(&sink, notify, &w);
	fill_msg(&m[0], &sink, 10, &rc, &iov[0], body, big);
	queue_submit(q, &m[0]);
	n = take_all(&sink, &w, 1, got, 2);
	tap_ok(n == 1 && m[0].qm_status == -ENOSPC, "a message larger than the map: -ENOSPC (%d)",
	       m[0].qm_status);
	tap_ok(strcmp(queue_strerror(MDB_MAP_FULL), mdb_strerror(MDB_MAP_FULL)) == 0 &&
	       strstr(queue_strerror(MDB_MAP_FULL), "Unknown") == NULL,
	       "LMDB codes are named by LMDB: %s", queue_strerror(MDB_MAP_FULL));
	fill_msg(&m[1], &sink, 11, &rc, &iov[1], "small\r\n", 7);
	queue_submit(q, &m[1]);
	n = take_all(&sink, &w, 1, got, 2);
	tap_ok(n == 1 && m[1].qm_status == 0, "a small message commits afterwards");
	queue_sink_destroy(&sink);
	queue_close(&q);
	free(body);
}

/*
 * A full map in the middle of a batch of delivery updates: the rest of the
 * batch's updates are refused at once (-ENOSPC; delivery tries them again),
 * not one by one with a rewrite of the whole batch each time (which logged
 * one "not stored" line per refused update and stalled the committer).
 */
#define FULL_UPDATES 40
static void test_map_full_updates(const char *dir)
{
	struct queue *q;
	struct queue_sink sink;
	struct waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
	struct waiter wd = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
	struct done_count dc = { &wd, 0 };
	struct qrcpt rc = { QRCPT_PENDING, 0, 0, "r@example.com", 13, NULL, 0, 0, 0, NULL, 0 };
	static struct queue_msg m[FULL_UPDATES];
	static struct queue_msg *got[FULL_UPDATES];
	static struct iovec iov[FULL_UPDATES];
	static struct queue_update u[FULL_UPDATES + 1];
	struct queue_rcpt_update ru;
	static char reply[30000];
	char err[256], path[700], line[512];
	int n, ok = 0, refused = 0, other = 0, logged = 0, saved, fd;
	MDB_txn *hold;
	FILE *f;

	g_done = &dc;
	memset(reply, 'r', sizeof(reply));
	memcpy(reply, "451 4.3.0 ", 10);
	ru = (struct queue_rcpt_update){ 0, QRCPT_PENDING, 1, reply, sizeof(reply), 0, false };
	tap_ok(queue_open(&q, dir, 1u << 20, QUEUE_F_COMMITTER, err, sizeof(err)) == 0,
	       "map-full updates: 1 MiB queue opens");
	queue_sink_init(&sink, notify, &w);
	for (int i = 0; i < FULL_UPDATES; i++) {
		fill_msg(&m[i], &sink, 100 + (uint64_t)i, &rc, &iov[i], "x\r\n", 3);
		queue_submit(q, &m[i]);
	}
	n = take_all(&sink, &w, FULL_UPDATES, got, FULL_UPDATES);
	tap_ok(n == FULL_UPDATES, "%d small messages stored", n);
	/* Each update stores a 30 KB reply: together more than the map holds. */
	memset(u, 0, sizeof(u));
	u[0].qu_id = 999;	/* absent: the committer takes it and waits */
	u[0].qu_done = update_done;
	for (int i = 1; i <= FULL_UPDATES; i++) {
		u[i].qu_id = 100 + (uint64_t)i - 1;
		u[i].qu_rcpts = &ru;
		u[i].qu_nrcpt = 1;
		u[i].qu_done = update_done;
	}
	snprintf(path, sizeof(path), "%s.stderr", dir);
	fflush(stderr);
	saved = dup(2);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, 2);
	tap_ok(batch_begin(q, &u[0], &hold), "write lock held");
	for (int i = 1; i <= FULL_UPDATES; i++)
		queue_submit_update(q, &u[i]);
	mdb_txn_abort(hold);
	wait_updates(&dc, FULL_UPDATES + 1);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	for (int i = 1; i <= FULL_UPDATES; i++) {
		if (u[i].qu_status == 0)
			ok++;
		else if (u[i].qu_status == -ENOSPC)
			refused++;
		else
			other++;
	}
	f = fopen(path, "r");
	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, "not stored") != NULL)
			logged++;
	if (f != NULL)
		fclose(f);
	unlink(path);
	tap_ok(ok > 0 && refused > 0 && other == 0,
	       "updates that fit commit, the rest are -ENOSPC (%d ok, %d refused, %d other)",
	       ok, refused, other);
	tap_ok(logged == 1, "the batch is rewritten once, not once per refused update"
	       " (%d failures logged)", logged);
	queue_sink_destroy(&sink);
	queue_close(&q);
}

/* A process that dies inside a read transaction leaves its reader slot;
 * the committer clears it before its next batch. */
static void test_dead_reader(const char *dir)
{
	struct queue *q;
	struct queue_sink sink;
	struct waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
	struct qrcpt rc = { QRCPT_PENDING, 0, 0, "r@example.com", 13, NULL, 0, 0, 0, NULL, 0 };
	struct queue_msg m, *got[1];
	struct iovec iov;
	char err[256];
	int status = -1, dead = -1;
	pid_t pid;

	tap_ok(queue_open(&q, dir, 64u << 20, QUEUE_F_COMMITTER, err, sizeof(err)) == 0,
	       "readers: queue opens");
	queue_sink_init(&sink, notify, &w);
	fill_msg(&m, &sink, 20, &rc, &iov, "body\r\n", 6);
	queue_submit(q, &m);
	take_all(&sink, &w, 1, got, 1);
	pid = fork();
	if (pid == 0) {
		struct queue *cq;
		struct queue_body b;

		if (queue_open(&cq, dir, 64u << 20, QUEUE_F_RDONLY, err, sizeof(err)) < 0 ||
		    queue_body_get(cq, 20, &b) < 0)
			_exit(1);
		_exit(0);	/* dies holding its read transaction */
	}
	waitpid(pid, &status, 0);
	tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a child died inside a read");
	q->q_reader_check_ns = 0;	/* due now, not in a second */
	fill_msg(&m, &sink, 21, &rc, &iov, "body\r\n", 6);
	queue_submit(q, &m);
	take_all(&sink, &w, 1, got, 1);
	tap_ok(mdb_reader_check(q->q_env, &dead) == 0 && dead == 0,
	       "the committer cleared the dead reader");
	queue_sink_destroy(&sink);
	queue_close(&q);
}

/*
 * Puts append above the highest key the committer knows of, and fall
 * back to a plain put when the database holds a higher one it does not
 * know (written beside it: the queue tools, here a raw transaction):
 * without the fallback LMDB refuses the append (MDB_KEYEXIST) and the
 * message would be refused. Lower ids (another worker's, late) go in
 * with plain puts.
 */
static void test_append(const char *dir)
{
	struct queue *q;
	struct queue_sink sink;
	struct waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
	struct qrcpt rc = { QRCPT_PENDING, 0, 0, "r@example.com", 13, NULL, 0, 0, 0, NULL, 0 };
	static const uint64_t ids[] = { 2000, 3000, 6000, 2500 };
	struct queue_msg m[4], *got[4];
	struct iovec iov[4];
	char err[256], body[4][32];
	unsigned char kb[8], sb[16];
	MDB_val k = { 8, kb }, v = { 1, "x" }, sk = { 16, sb }, sv = { 0, NULL };
	MDB_txn *txn;
	uint64_t count = 0;
	int n, ok = 1;

	tap_ok(queue_open(&q, dir, 64u << 20, QUEUE_F_COMMITTER, err, sizeof(err)) == 0,
	       "append: queue opens");
	queue_sink_init(&sink, notify, &w);
	for (int i = 0; i < 4; i++) {
		snprintf(body[i], sizeof(body[i]), "Subject: %d\r\n\r\nbody\r\n", i);
		fill_msg(&m[i], &sink, ids[i], &rc, &iov[i], body[i], strlen(body[i]));
		m[i].qm_rec.next_attempt = 100 + (uint64_t)i;
	}
	queue_submit(q, &m[0]);
	n = take_all(&sink, &w, 1, got, 4);
	tap_ok(n == 1 && got[0]->qm_status == 0, "the first message appends");
	/* Keys above the committer's hints: a body 5000, a schedule entry
	 * due at the end of time. */
	queue_key_put(kb, 5000);
	memset(sb, 0xfe, sizeof(sb));
	tap_ok(mdb_txn_begin(q->q_env, NULL, 0, &txn) == 0 &&
	       mdb_put(txn, q->q_body, &k, &v, 0) == 0 &&
	       mdb_put(txn, q->q_sched, &sk, &sv, 0) == 0 && mdb_txn_commit(txn) == 0,
	       "keys above the hints written beside the committer");
	for (int i = 1; i < 4; i++) {
		queue_submit(q, &m[i]);
		n = take_all(&sink, &w, 1, got, 4);
		ok &= n == 1 && got[0]->qm_status == 0;
	}
	tap_ok(ok, "an append refused by LMDB falls back to a plain put; a lower id goes in too");
	n = queue_admin_count(q, &count);
	tap_ok(n == 0 && count == 4, "4 messages stored (%llu)", (unsigned long long)count);
	for (int i = 0; i < 4; i++) {
		struct found f;

		memset(&f, 0, sizeof(f));
		f.id = ids[i];
		queue_admin_foreach(q, find_cb, &f);
		ok &= f.seen == 1 && f.len == strlen(body[i]) && memcmp(f.body, body[i], f.len) == 0;
	}
	tap_ok(ok, "every body byte-exact under its id");
	queue_sink_destroy(&sink);
	queue_close(&q);
}

static int count_due(void *ctx, uint64_t id, uint64_t when)
{
	(void)id;
	(void)when;
	(*(unsigned *)ctx)++;
	return 0;
}

/*
 * queue flush --all over more messages than one flush transaction takes
 * (QUEUE_FLUSH_STEP, 4096): every one is made due, in steps, and counted
 * once; the record each update rewrites keeps its sender and recipient.
 */
static void test_flush_steps(const char *dir)
{
	enum { N = 2 * 4096 + 5 };
	struct queue *q;
	struct queue_sink sink;
	struct waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
	struct queue_msg *m = calloc(N, sizeof(*m)), **got = calloc(N, sizeof(*got));
	struct qrcpt *rc = calloc(N, sizeof(*rc));
	struct iovec *iov = calloc(N, sizeof(*iov));
	uint64_t later = (uint64_t)time(NULL) * 1000000u + 3600u * 1000000u, now;
	unsigned due = 0, n = 0;
	struct found f = { 0 };
	char err[512];
	int ok = 0;

	if (m == NULL || got == NULL || rc == NULL || iov == NULL ||
	    queue_open(&q, dir, 256u << 20, QUEUE_F_COMMITTER, err, sizeof(err)) != 0) {
		tap_ok(0, "flush steps: open: %s", err);
		goto out;
	}
	queue_sink_init(&sink, notify, &w);
	for (unsigned i = 0; i < N; i++) {
		rc[i].addr = "to@example.com";
		rc[i].addr_len = 14;
		rc[i].state = QRCPT_PENDING;
		rc[i].next_attempt = later;
		fill_msg(&m[i], &sink, 0x100000 + i, &rc[i], &iov[i], "Subject: s\r\n\r\nx\r\n", 17);
		m[i].qm_rec.next_attempt = later;
		queue_submit(q, &m[i]);
	}
	take_all(&sink, &w, N, got, N);
	for (unsigned i = 0; i < N; i++)
		ok += got[i]->qm_status == 0;
	now = later - 3000u * 1000000u;
	queue_scan_due(q, now, count_due, &due);
	tap_ok(ok == N && due == 0, "flush steps: %d stored, %u due before the flush", ok, due);
	ok = queue_admin_flush(q, 0, now, &n);
	tap_ok(ok == 0 && n == N, "flush --all over %d messages: %u made due (%d)", (int)N, n, ok);
	due = 0;
	queue_scan_due(q, now, count_due, &due);
	tap_ok(due == N, "flush steps: all %u due after it", due);
	f.id = 0x100000 + 4096;	/* the first of the second step */
	queue_admin_foreach(q, find_cb, &f);
	tap_ok(f.seen == 1 && strcmp(f.sender, "from@example.org") == 0 && f.nrcpt == 1,
	       "a rewritten record keeps its sender and recipient");
	queue_close(&q);
	queue_sink_destroy(&sink);
out:
	free(m);
	free(got);
	free(rc);
	free(iov);
}

int main(void)
{
	char dir[512];
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s/ringmta-test-queue-XXXXXX", tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_commit(dir);
	{
		char sub[600];

		snprintf(sub, sizeof(sub), "%s/iso", dir);
		test_isolation(sub);
		snprintf(sub, sizeof(sub), "%s/upgrade", dir);
		test_upgrade(sub);
		snprintf(sub, sizeof(sub), "%s/dsnupd", dir);
		test_update_keeps_dsn(sub);
		snprintf(sub, sizeof(sub), "%s/full", dir);
		test_map_full(sub);
		snprintf(sub, sizeof(sub), "%s/fullupd", dir);
		test_map_full_updates(sub);
		snprintf(sub, sizeof(sub), "%s/readers", dir);
		test_dead_reader(sub);
		snprintf(sub, sizeof(sub), "%s/append", dir);
		test_append(sub);
		snprintf(sub, sizeof(sub), "%s/flush", dir);
		test_flush_steps(sub);
	}
	{
		char cmd[600];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		(void)!system(cmd);
	}
	return tap_done();
}
