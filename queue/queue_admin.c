/*
 * queue_admin.c: listing, showing and deleting queued messages. Each call
 * is one LMDB transaction, so it is consistent and safe beside a running
 * daemon (LMDB's writer lock serialises a delete with the committer).
 */
#include "queue/queue_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

static const char *queue_rcpt_state_name(uint8_t st)
{
	switch (st) {
	case QRCPT_PENDING: return "pending";
	case QRCPT_DELIVERED: return "delivered";
	case QRCPT_FAILED: return "failed";
	}
	return "?";
}

/* Names for the opaque recipient classes; set by the program (core
 * knows them, the queue does not). NULL: numbers. */
static const char *(*queue_class_namer)(uint8_t bclass);

void queue_admin_set_class_namer(const char *(*name)(uint8_t bclass))
{
	queue_class_namer = name;
}

/* " class=NAME" for a recipient with a class, "" without. */
static const char *queue_rcpt_class(uint8_t bclass, char *buf, size_t len)
{
	const char *n = bclass != 0 && queue_class_namer != NULL ?
			queue_class_namer(bclass) : NULL;

	if (bclass == 0)
		return "";
	if (n != NULL)
		snprintf(buf, len, " class=%s", n);
	else
		snprintf(buf, len, " class=%u", bclass);
	return buf;
}

int queue_admin_foreach(struct queue *q,
			int (*cb)(void *ctx, uint64_t id, const struct qrecord *r,
				  const void *body, size_t body_len),
			void *ctx)
{
	return queue_admin_foreach_from(q, 0, cb, ctx);
}

int queue_admin_foreach_from(struct queue *q, uint64_t from_id,
			     int (*cb)(void *ctx, uint64_t id, const struct qrecord *r,
				       const void *body, size_t body_len),
			     void *ctx)
{
	unsigned char from[8];
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k = { 8, from }, v, bv;
	int rc, op = MDB_SET_RANGE;
	uint64_t *ov;		/* a tool's view of the journal: merged in id order */
	size_t nov, iov = 0;
	bool own;

	queue_jnl_sync(q);	/* the journal's messages into LMDB first */
	queue_key_put(from, from_id);
	if (queue_read_txn(q, &txn, &own) != 0)
		return -EIO;
	rc = mdb_cursor_open(txn, q->q_meta, &cur);
	if (rc != 0) {
		if (own)
			mdb_txn_abort(txn);
		return -EIO;
	}
	ov = queue_ov_ids_from(q, from_id, &nov);
	for (;;) {
		struct qrecord r;
		const void *body;
		size_t blen;
		uint64_t id;

		rc = mdb_cursor_get(cur, &k, &v, op);
		op = MDB_NEXT;
		if (rc != 0 && rc != MDB_NOTFOUND)
			break;
		id = rc == 0 && k.mv_size == 8 ? queue_key_get(k.mv_data) : UINT64_MAX;
		/* The journal's messages below this one first. */
		while (iov < nov && ov[iov] < id) {
			struct jnl_seg *seg;

			if (queue_ov_peek(q, ov[iov], &r, &body, &blen, &seg) == 1) {
				int stop = cb(ctx, ov[iov], &r, body, blen);

				jnl_seg_unref(seg);
				if (stop != 0) {
					rc = MDB_NOTFOUND;
					goto out;
				}
			}
			iov++;
		}
		if (rc == MDB_NOTFOUND)
			break;
		if (k.mv_size != 8 || qrecord_decode(v.mv_data, v.mv_size, &r) < 0) {
			rc = -EBADMSG;
			break;
		}
		if (mdb_get(txn, q->q_body, &k, &bv) != 0) {
			bv.mv_data = NULL;
			bv.mv_size = 0;
		}
		if (cb(ctx, id, &r, bv.mv_data, bv.mv_size) != 0) {
			rc = MDB_NOTFOUND;
			break;
		}
	}
out:
	free(ov);
	mdb_cursor_close(cur);
	if (own)
		mdb_txn_abort(txn);
	return rc == MDB_NOTFOUND ? 0 : (rc < 0 ? rc : -EIO);
}

struct queue_list_ctx {
	FILE *out;
	uint64_t now_us;
};

static int queue_list_one(void *arg, uint64_t id, const struct qrecord *r,
			  const void *body, size_t body_len)
{
	struct queue_list_ctx *ctx = arg;
	uint64_t age = ctx->now_us > r->arrival ? (ctx->now_us - r->arrival) / 1000000u : 0;
	char ids[17], cls[48];
	struct qrcpt rc;
	size_t off = 0;

	(void)body;
	(void)body_len;
	queue_id_str(id, ids);
	fprintf(ctx->out, "%s %" PRIu64 " %" PRIu64 "s <%.*s>%s\n", ids, r->size, age,
		(int)r->sender_len, r->sender, (r->flags & QRECORD_F_HELD) ? " held" : "");
	/* With the last reply: why a pending recipient is still here. */
	while (qrecord_rcpt_next(r, &off, &rc))
		fprintf(ctx->out, "    <%.*s> %s attempts=%u next=%" PRIu64 "%s%s%.*s%s\n",
			(int)rc.addr_len, rc.addr, queue_rcpt_state_name(rc.state),
			rc.attempts, rc.next_attempt / 1000000u,
			queue_rcpt_class(rc.bclass, cls, sizeof(cls)),
			rc.reply_len ? " reply=\"" : "", (int)rc.reply_len,
			rc.reply_len ? rc.reply : "", rc.reply_len ? "\"" : "");
	return ferror(ctx->out) ? 1 : 0;	/* reader gone (EPIPE): stop */
}

int queue_admin_list(struct queue *q, FILE *out, uint64_t now_us)
{
	struct queue_list_ctx ctx = { out, now_us };
	int rc = queue_admin_foreach(q, queue_list_one, &ctx);

	if (rc == 0 && (fflush(out) != 0 || ferror(out)))
		rc = -EPIPE;
	return rc;
}

int queue_admin_show(struct queue *q, uint64_t id, FILE *out)
{
	unsigned char key[8];
	MDB_val k = { 8, key }, v, bv;
	MDB_txn *txn;
	struct qrecord r;
	struct qrcpt rc;
	size_t off = 0;
	char ids[17], cls[48];
	const void *ovbody = NULL;
	size_t ovlen = 0;
	struct jnl_seg *seg = NULL;
	bool own;
	int ret = 0;

	queue_key_put(key, id);
	if (queue_read_txn(q, &txn, &own) != 0)
		return -EIO;
	if (queue_ov_peek(q, id, &r, &ovbody, &ovlen, &seg) == 1) {
		/* in a tool's view of the journal */
	} else if (mdb_get(txn, q->q_meta, &k, &v) != 0) {
		ret = -ENOENT;
		goto out;
	} else if (qrecord_decode(v.mv_data, v.mv_size, &r) < 0) {
		ret = -EBADMSG;
		goto out;
	}
	queue_id_str(id, ids);
	fprintf(out, "id: %s\narrival: %" PRIu64 ".%06" PRIu64 "\nsize: %" PRIu64 "\n"
		"client: %.*s\nhelo: %.*s\nsender: <%.*s>\n",
		ids, r.arrival / 1000000u, r.arrival % 1000000u, r.size,
		(int)r.client_len, r.client, (int)r.helo_len, r.helo,
		(int)r.sender_len, r.sender);
	if (r.pool_len)
		fprintf(out, "pool: %.*s\n", (int)r.pool_len, r.pool);
	if (r.strip_len)
		fprintf(out, "strip: %" PRIu64 "+%u\n", r.strip_off, r.strip_len);
	while (qrecord_rcpt_next(&r, &off, &rc))
		fprintf(out, "recipient: <%.*s> %s attempts=%u next=%" PRIu64 "%s\n",
			(int)rc.addr_len, rc.addr, queue_rcpt_state_name(rc.state),
			rc.attempts, rc.next_attempt / 1000000u,
			queue_rcpt_class(rc.bclass, cls, sizeof(cls)));
	fputs("\n", out);
	if (ovbody != NULL)
		fwrite(ovbody, 1, ovlen, out);
	else if (mdb_get(txn, q->q_body, &k, &bv) == 0)
		fwrite(bv.mv_data, 1, bv.mv_size, out);
out:
	if (seg != NULL)
		jnl_seg_unref(seg);
	if (own)
		mdb_txn_abort(txn);
	return ret;
}

int queue_admin_delete(struct queue *q, uint64_t id)
{
	unsigned char key[8], skey[16];
	MDB_val k = { 8, key }, v, sk = { 16, skey };
	MDB_txn *txn;
	struct qrecord r;
	int rc;

	queue_key_put(key, id);
	/* A delete copies a few pages too: never into a hole (see queue.c). */
	if ((rc = queue_room(q, 64 * q->q_psize)) < 0)
		return rc;
	if ((rc = queue_txn_begin_write(q, &txn)) != 0)
		return queue_status(rc);
	rc = mdb_get(txn, q->q_meta, &k, &v);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return rc == MDB_NOTFOUND ? -ENOENT : queue_status(rc);
	}
	if (qrecord_decode(v.mv_data, v.mv_size, &r) == 0) {
		queue_key_put(skey, r.next_attempt);
		queue_key_put(skey + 8, id);
		(void)mdb_del(txn, q->q_sched, &sk, NULL);
	}
	if ((rc = mdb_del(txn, q->q_meta, &k, NULL)) != 0) {
		mdb_txn_abort(txn);
		return queue_status(rc);
	}
	(void)mdb_del(txn, q->q_body, &k, NULL);	/* absent is fine */
	return queue_status(mdb_txn_commit(txn));
}

int queue_admin_count(struct queue *q, uint64_t *n_r)
{
	MDB_txn *txn;
	MDB_stat st;
	uint64_t ov, oldest;
	bool own;
	int rc;

	queue_jnl_sync(q);
	if (queue_read_txn(q, &txn, &own) != 0)
		return -EIO;
	rc = mdb_stat(txn, q->q_meta, &st);
	if (own)
		mdb_txn_abort(txn);
	if (rc != 0)
		return -EIO;
	/* A tool's view: the journal's messages are not in LMDB's state. */
	queue_ov_depth(q, &ov, &oldest);
	*n_r = st.ms_entries + (q->q_view_txn != NULL ? ov : 0);
	return 0;
}

/* Make one message due now: every pending recipient, and its schedule. */
static int queue_flush_one(struct queue *q, MDB_txn *txn, uint64_t id, uint64_t now_us)
{
	unsigned char key[8];
	MDB_val k = { 8, key }, v;
	struct queue_update u;
	struct queue_rcpt_update *ru;
	struct qrecord r;
	struct qrcpt rc;
	size_t off = 0;
	unsigned n = 0;
	int rc2;

	queue_key_put(key, id);
	if (mdb_get(txn, q->q_meta, &k, &v) != 0)
		return -ENOENT;
	if (qrecord_decode(v.mv_data, v.mv_size, &r) < 0)
		return -EBADMSG;
	ru = calloc(r.nrcpt ? r.nrcpt : 1, sizeof(*ru));
	if (ru == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; qrecord_rcpt_next(&r, &off, &rc); i++) {
		if (rc.state != QRCPT_PENDING)
			continue;
		ru[n].qru_index = i;
		ru[n].qru_state = QRCPT_PENDING;
		ru[n].qru_next_attempt = now_us;
		/* Keep the last reply; the attempt count is restored below. */
		ru[n].qru_reply = rc.reply;
		ru[n].qru_reply_len = rc.reply_len;
		ru[n].qru_bclass = rc.bclass;
		n++;
	}
	memset(&u, 0, sizeof(u));
	u.qu_id = id;
	u.qu_rcpts = ru;
	u.qu_nrcpt = n;
	rc2 = n ? queue_apply_update_noattempt(q, txn, &u) : 0;
	free(ru);
	return rc2;
}

struct queue_flush_ctx {
	uint64_t *ids;
	size_t n, cap;
	bool nomem;		/* the list stopped short: the caller says so */
};

static int queue_flush_collect(void *arg, uint64_t id, const struct qrecord *r,
			       const void *body, size_t body_len)
{
	struct queue_flush_ctx *ctx = arg;

	(void)r;
	(void)body;
	(void)body_len;
	if (ctx->n == ctx->cap) {
		size_t cap = ctx->cap ? ctx->cap * 2 : 256;
		uint64_t *n = realloc(ctx->ids, cap * sizeof(*n));

		if (n == NULL) {
			ctx->nomem = true;
			return 1;
		}
		ctx->ids = n;
		ctx->cap = cap;
	}
	ctx->ids[ctx->n++] = id;
	return 0;
}

/* Ids made due per transaction: a transaction's pages are heap memory
 * until its commit, so a flush of the whole queue (a million messages)
 * goes in steps of bounded size, each one durable. */
#define QUEUE_FLUSH_STEP 4096u

/* Make the messages ids due now, QUEUE_FLUSH_STEP per transaction; gone
 * ones (delivered meanwhile) are skipped when skip_gone. On an error the
 * steps before it are committed (*n_r counts them). */
static int queue_flush_ids(struct queue *q, const uint64_t *ids, size_t n, bool skip_gone,
			   uint64_t now_us, unsigned *n_r)
{
	for (size_t i0 = 0; i0 < n; i0 += QUEUE_FLUSH_STEP) {
		size_t end = n - i0 > QUEUE_FLUSH_STEP ? i0 + QUEUE_FLUSH_STEP : n;
		unsigned done = 0;
		MDB_txn *txn;
		int rc;

		if ((rc = queue_room(q, (64 + 2 * (end - i0)) * q->q_psize)) < 0 ||
		    (rc = queue_status(queue_txn_begin_write(q, &txn))) != 0)
			return rc;
		for (size_t i = i0; i < end; i++) {
			rc = queue_flush_one(q, txn, ids[i], now_us);
			if (rc == -ENOENT && skip_gone)
				rc = 0;		/* delivered meanwhile */
			if (rc < 0)
				break;
			done++;
		}
		if (rc < 0) {
			mdb_txn_abort(txn);
			return rc;
		}
		if ((rc = queue_status(mdb_txn_commit(txn))) != 0)
			return rc;
		*n_r += done;
	}
	return 0;
}

int queue_admin_flush(struct queue *q, uint64_t id, uint64_t now_us, unsigned *n_r)
{
	struct queue_flush_ctx ctx = { NULL, 0, 0, false };
	int rc;

	*n_r = 0;
	if (id != 0)
		return queue_flush_ids(q, &id, 1, false, now_us, n_r);
	if ((rc = queue_admin_foreach(q, queue_flush_collect, &ctx)) >= 0)
		rc = queue_flush_ids(q, ctx.ids, ctx.n, true, now_us, n_r);
	free(ctx.ids);
	/* Those listed are due now; the others are not, and that is an error. */
	return rc >= 0 && ctx.nomem ? -ENOMEM : rc;
}

struct queue_window_ctx {
	struct queue_flush_ctx wc_ids;
	uint64_t wc_from;
};

static int queue_window_collect(void *arg, uint64_t id, uint64_t when)
{
	struct queue_window_ctx *w = arg;

	if (when < w->wc_from)
		return 0;
	return queue_flush_collect(&w->wc_ids, id, NULL, NULL, 0);
}

int queue_admin_flush_window(struct queue *q, uint64_t from_us, uint64_t to_us, uint64_t now_us,
			     unsigned *n_r)
{
	struct queue_window_ctx w = { { NULL, 0, 0, false }, from_us };
	int rc;

	*n_r = 0;
	if ((rc = queue_scan_due(q, to_us, queue_window_collect, &w)) >= 0 && w.wc_ids.n > 0)
		rc = queue_flush_ids(q, w.wc_ids.ids, w.wc_ids.n, true, now_us, n_r);
	free(w.wc_ids.ids);
	return rc < 0 ? rc : w.wc_ids.nomem ? -ENOMEM : 0;
}

int queue_admin_compact(struct queue **qp, const char *dir, uint64_t *before_r,
			uint64_t *after_r)
{
	struct queue *q = *qp;
	char tmp[PATH_MAX], src[PATH_MAX], dst[PATH_MAX];
	struct stat st;
	int rc, fd;

	*before_r = *after_r = 0;
	if (!(q->q_flags & QUEUE_F_EXCLUSIVE)) {
		queue_close(qp);
		return -EBUSY;
	}
	snprintf(tmp, sizeof(tmp), "%s/compact.tmp", dir);
	snprintf(src, sizeof(src), "%s/compact.tmp/data.mdb", dir);
	snprintf(dst, sizeof(dst), "%s/data.mdb", dir);
	if (stat(dst, &st) == 0)
		*before_r = (uint64_t)st.st_blocks * 512u;
	(void)unlink(src);
	if (mkdir(tmp, 0750) < 0 && errno != EEXIST) {
		rc = -errno;
		queue_close(qp);
		return rc;
	}
	rc = queue_status(mdb_env_copy2(q->q_env, tmp, MDB_CP_COMPACT));
	if (rc == 0 && (fd = open(src, O_RDONLY | O_CLOEXEC)) >= 0) {
		if (fchmod(fd, 0640) < 0 || fsync(fd) < 0)
			rc = -errno;
		close(fd);
	}
	/* Replace the file only after LMDB let go of it; the lock (held by
	 * q, so no daemon) is released last. */
	if (rc == 0) {
		int lockfd = q->q_lockfd, toolsfd = q->q_toolsfd;

		q->q_lockfd = q->q_toolsfd = -1;
		queue_close(qp);
		if (rename(src, dst) < 0)
			rc = -errno;
		if (rc == 0 && (fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
			(void)fsync(fd);
			close(fd);
		}
		if (rc == 0 && stat(dst, &st) == 0)
			*after_r = (uint64_t)st.st_blocks * 512u;
		close(toolsfd);
		close(lockfd);
	} else {
		queue_close(qp);
	}
	(void)unlink(src);
	(void)rmdir(tmp);
	return rc;
}

/* The byte at p, read so that a page beyond the end of the file faults. */
static void queue_check_touch(const void *p, size_t len)
{
	if (len > 0)
		(void)*(const volatile char *)((const char *)p + len - 1);
}

int queue_admin_check(struct queue *q, FILE *out)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v, bv, sk, sv;
	MDB_stat st;
	unsigned char skey[16];
	char ids[17];
	int rc, op, bad = 0;

	if ((rc = mdb_txn_begin(q->q_env, NULL, MDB_RDONLY, &txn)) != 0)
		return queue_status(rc);
	if ((rc = mdb_stat(txn, q->q_meta, &st)) != 0 ||
	    (rc = mdb_stat(txn, q->q_body, &st)) != 0 ||
	    (rc = mdb_stat(txn, q->q_sched, &st)) != 0)
		goto lmdb;
	/* Records: decode, body, schedule. */
	if ((rc = mdb_cursor_open(txn, q->q_meta, &cur)) != 0)
		goto lmdb;
	for (op = MDB_FIRST; (rc = mdb_cursor_get(cur, &k, &v, op)) == 0; op = MDB_NEXT) {
		struct qrecord r;
		struct qrcpt rr;
		size_t off = 0;
		uint32_t n = 0;

		if (k.mv_size != 8) {
			fprintf(out, "meta: a key of %zu bytes\n", k.mv_size);
			bad++;
			continue;
		}
		queue_id_str(queue_key_get(k.mv_data), ids);
		queue_check_touch(v.mv_data, v.mv_size);
		if (qrecord_decode(v.mv_data, v.mv_size, &r) < 0) {
			fprintf(out, "message %s: record does not decode\n", ids);
			bad++;
			continue;
		}
		while (qrecord_rcpt_next(&r, &off, &rr))
			n++;
		if (n != r.nrcpt) {
			fprintf(out, "message %s: %u of %u recipients decode\n", ids, n, r.nrcpt);
			bad++;
		}
		rc = mdb_get(txn, q->q_body, &k, &bv);
		if (rc == MDB_NOTFOUND) {
			fprintf(out, "message %s: no body\n", ids);
			bad++;
		} else if (rc != 0) {
			mdb_cursor_close(cur);
			goto lmdb;
		} else if (bv.mv_size != r.size) {
			fprintf(out, "message %s: body is %zu bytes, record says %llu\n", ids,
				bv.mv_size, (unsigned long long)r.size);
			bad++;
		} else {
			queue_check_touch(bv.mv_data, bv.mv_size);
		}
		queue_key_put(skey, r.next_attempt);
		memcpy(skey + 8, k.mv_data, 8);
		sk.mv_size = 16;
		sk.mv_data = skey;
		rc = mdb_get(txn, q->q_sched, &sk, &sv);
		if (rc == MDB_NOTFOUND)
			fprintf(out, "note: message %s is not scheduled (\"ringmta queue flush %s\""
				" schedules it)\n", ids, ids);
		else if (rc != 0) {
			mdb_cursor_close(cur);
			goto lmdb;
		}
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND)
		goto lmdb;
	/* Bodies and schedule entries without a record. */
	if ((rc = mdb_cursor_open(txn, q->q_body, &cur)) != 0)
		goto lmdb;
	for (op = MDB_FIRST; (rc = mdb_cursor_get(cur, &k, &v, op)) == 0; op = MDB_NEXT) {
		if (k.mv_size != 8 || mdb_get(txn, q->q_meta, &k, &bv) != 0) {
			fprintf(out, "note: a body without a record (%zu-byte key)\n", k.mv_size);
			continue;
		}
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND)
		goto lmdb;
	if ((rc = mdb_cursor_open(txn, q->q_sched, &cur)) != 0)
		goto lmdb;
	for (op = MDB_FIRST; (rc = mdb_cursor_get(cur, &k, &v, op)) == 0; op = MDB_NEXT) {
		MDB_val mk = { 8, (char *)k.mv_data + 8 };

		if (k.mv_size != 16 || mdb_get(txn, q->q_meta, &mk, &bv) != 0)
			fprintf(out, "note: a schedule entry without a record\n");
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND)
		goto lmdb;
	mdb_txn_abort(txn);
	return bad;
lmdb:
	fprintf(out, "database: %s\n", queue_strerror(rc));
	mdb_txn_abort(txn);
	return rc == MDB_NOTFOUND ? -EBADMSG : (queue_status(rc) < 0 ? queue_status(rc) : -EIO);
}

int queue_check_dir(const char *dir, uint64_t map_size, char *err, size_t errlen)
{
	char path[PATH_MAX], buf[512];
	struct stat st;
	int pfd[2], status;
	ssize_t n, got = 0;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	if (stat(path, &st) < 0 && errno == ENOENT)
		return 0;	/* a new queue */
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "queue check: %s", strerror(errno));
		return -1;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "queue check: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		struct queue *q;
		FILE *out;
		int bad;

		close(pfd[0]);
		out = fdopen(pfd[1], "w");
		if (out == NULL)
			_exit(3);
		if (queue_open(&q, dir, map_size, QUEUE_F_RDONLY, buf, sizeof(buf)) < 0) {
			fprintf(out, "%s\n", buf);
			fclose(out);
			_exit(2);
		}
		bad = queue_admin_check(q, out);
		queue_close(&q);
		fclose(out);
		_exit(bad == 0 ? 0 : bad < 0 ? 1 : 4);
	}
	close(pfd[1]);
	buf[0] = '\0';
	while (got < (ssize_t)sizeof(buf) - 1 &&
	       (n = read(pfd[0], buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
		got += n;
	buf[got] = '\0';
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	/* The first problem that is not a note names the damage. */
	{
		char *line = buf;

		while (strncmp(line, "note:", 5) == 0 && strchr(line, '\n') != NULL)
			line = strchr(line, '\n') + 1;
		line[strcspn(line, "\n")] = '\0';
		if (WIFSIGNALED(status)) {
			snprintf(err, errlen, "queue %s is damaged: reading it crashed (%s);"
				 " restore it, see \"ringmta queue check\"", path,
				 strsignal(WTERMSIG(status)));
			return -1;
		}
		if (!WIFEXITED(status) || WEXITSTATUS(status) == 3) {
			snprintf(err, errlen, "queue %s: the check did not run", path);
			return -1;
		}
		if (WEXITSTATUS(status) == 2) {
			snprintf(err, errlen, "%s", line);
			return -1;
		}
		if (WEXITSTATUS(status) == 4) {
			snprintf(err, errlen, "queue %s: damaged messages (the first: %s); they stay"
				 " queued, see \"ringmta queue check\"", path, line);
			return 1;
		}
		if (WEXITSTATUS(status) != 0) {
			snprintf(err, errlen, "queue %s is damaged: %s; restore it, see"
				 " \"ringmta queue check\"", path, line);
			return -1;
		}
	}
	return 0;
}
