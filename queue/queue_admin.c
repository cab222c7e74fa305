/*
 * queue_admin.c: listing, showing and deleting queued messages. Each call
 * is one LMDB transaction, so it is consistent and safe beside a running
 * daemon (LMDB's writer lock serialises a delete with the committer).
 */
#include "queue/queue_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char *queue_rcpt_state_name(uint8_t st)
{
	switch (st) {
	case QRCPT_PENDING: return "pending";
	case QRCPT_DELIVERED: return "delivered";
	case QRCPT_FAILED: return "failed";
	}
	return "?";
}

int queue_admin_foreach(struct queue *q,
			int (*cb)(void *ctx, uint64_t id, const struct qrecord *r,
				  const void *body, size_t body_len),
			void *ctx)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v, bv;
	int rc, op = MDB_FIRST;

	rc = mdb_txn_begin(q->q_env, NULL, MDB_RDONLY, &txn);
	if (rc != 0)
		return -EIO;
	rc = mdb_cursor_open(txn, q->q_meta, &cur);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return -EIO;
	}
	while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
		struct qrecord r;
		uint64_t id;

		op = MDB_NEXT;
		if (k.mv_size != 8 || qrecord_decode(v.mv_data, v.mv_size, &r) < 0) {
			rc = -EBADMSG;
			break;
		}
		id = queue_key_get(k.mv_data);
		if (mdb_get(txn, q->q_body, &k, &bv) != 0) {
			bv.mv_data = NULL;
			bv.mv_size = 0;
		}
		if (cb(ctx, id, &r, bv.mv_data, bv.mv_size) != 0) {
			rc = MDB_NOTFOUND;
			break;
		}
	}
	mdb_cursor_close(cur);
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
	char ids[17];
	struct qrcpt rc;
	size_t off = 0;

	(void)body;
	(void)body_len;
	queue_id_str(id, ids);
	fprintf(ctx->out, "%s %" PRIu64 " %" PRIu64 "s <%.*s>\n", ids, r->size, age,
		(int)r->sender_len, r->sender);
	while (qrecord_rcpt_next(r, &off, &rc))
		fprintf(ctx->out, "    <%.*s> %s attempts=%u next=%" PRIu64 "\n",
			(int)rc.addr_len, rc.addr, queue_rcpt_state_name(rc.state),
			rc.attempts, rc.next_attempt / 1000000u);
	return 0;
}

int queue_admin_list(struct queue *q, FILE *out, uint64_t now_us)
{
	struct queue_list_ctx ctx = { out, now_us };

	return queue_admin_foreach(q, queue_list_one, &ctx);
}

int queue_admin_show(struct queue *q, uint64_t id, FILE *out)
{
	unsigned char key[8];
	MDB_val k = { 8, key }, v, bv;
	MDB_txn *txn;
	struct qrecord r;
	struct qrcpt rc;
	size_t off = 0;
	char ids[17];
	int ret = 0;

	queue_key_put(key, id);
	if (mdb_txn_begin(q->q_env, NULL, MDB_RDONLY, &txn) != 0)
		return -EIO;
	if (mdb_get(txn, q->q_meta, &k, &v) != 0) {
		ret = -ENOENT;
		goto out;
	}
	if (qrecord_decode(v.mv_data, v.mv_size, &r) < 0) {
		ret = -EBADMSG;
		goto out;
	}
	queue_id_str(id, ids);
	fprintf(out, "id: %s\narrival: %" PRIu64 ".%06" PRIu64 "\nsize: %" PRIu64 "\n"
		"client: %.*s\nhelo: %.*s\nsender: <%.*s>\n",
		ids, r.arrival / 1000000u, r.arrival % 1000000u, r.size,
		(int)r.client_len, r.client, (int)r.helo_len, r.helo,
		(int)r.sender_len, r.sender);
	while (qrecord_rcpt_next(&r, &off, &rc))
		fprintf(out, "recipient: <%.*s> %s attempts=%u next=%" PRIu64 "\n",
			(int)rc.addr_len, rc.addr, queue_rcpt_state_name(rc.state),
			rc.attempts, rc.next_attempt / 1000000u);
	fputs("\n", out);
	if (mdb_get(txn, q->q_body, &k, &bv) == 0)
		fwrite(bv.mv_data, 1, bv.mv_size, out);
out:
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
	if (mdb_txn_begin(q->q_env, NULL, 0, &txn) != 0)
		return -EIO;
	rc = mdb_get(txn, q->q_meta, &k, &v);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return rc == MDB_NOTFOUND ? -ENOENT : -EIO;
	}
	if (qrecord_decode(v.mv_data, v.mv_size, &r) == 0) {
		queue_key_put(skey, r.next_attempt);
		queue_key_put(skey + 8, id);
		(void)mdb_del(txn, q->q_sched, &sk, NULL);
	}
	if (mdb_del(txn, q->q_meta, &k, NULL) != 0) {
		mdb_txn_abort(txn);
		return -EIO;
	}
	(void)mdb_del(txn, q->q_body, &k, NULL);	/* absent is fine */
	return mdb_txn_commit(txn) == 0 ? 0 : -EIO;
}

int queue_admin_count(struct queue *q, uint64_t *n_r)
{
	MDB_txn *txn;
	MDB_stat st;
	int rc;

	if (mdb_txn_begin(q->q_env, NULL, MDB_RDONLY, &txn) != 0)
		return -EIO;
	rc = mdb_stat(txn, q->q_meta, &st);
	mdb_txn_abort(txn);
	if (rc != 0)
		return -EIO;
	*n_r = st.ms_entries;
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

		if (n == NULL)
			return 1;
		ctx->ids = n;
		ctx->cap = cap;
	}
	ctx->ids[ctx->n++] = id;
	return 0;
}

int queue_admin_flush(struct queue *q, uint64_t id, uint64_t now_us, unsigned *n_r)
{
	struct queue_flush_ctx ctx = { NULL, 0, 0 };
	MDB_txn *txn;
	int rc = 0;

	*n_r = 0;
	if (id != 0) {
		ctx.ids = &id;
		ctx.n = 1;
	} else if ((rc = queue_admin_foreach(q, queue_flush_collect, &ctx)) < 0) {
		free(ctx.ids);
		return rc;
	}
	if (mdb_txn_begin(q->q_env, NULL, 0, &txn) != 0) {
		if (id == 0)
			free(ctx.ids);
		return -EIO;
	}
	for (size_t i = 0; i < ctx.n; i++) {
		rc = queue_flush_one(q, txn, ctx.ids[i], now_us);
		if (rc == -ENOENT && id == 0)
			rc = 0;		/* delivered meanwhile */
		if (rc < 0)
			break;
		(*n_r)++;
	}
	if (id == 0)
		free(ctx.ids);
	if (rc < 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	return mdb_txn_commit(txn) == 0 ? 0 : -EIO;
}
