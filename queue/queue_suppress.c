/*
 * queue_suppress.c: the suppression list, one LMDB database ("suppress")
 * in the queue's environment (see queue.h). Entries come from delivery
 * (inside the committer's transaction, with the failure that caused
 * them) and from "ringmta suppress" beside the running daemon (one
 * transaction per call; LMDB's writer lock serialises it with the
 * committer). The RCPT check reads it with one read transaction.
 *
 * Value, little-endian: version u8 (1), class u8, added u64, expires u64,
 * reason length u16, reason bytes.
 */
#include "queue/queue_internal.h"

#include <errno.h>
#include <string.h>

#define QSUP_VERSION 1u
#define QSUP_FIXED (1 + 1 + 8 + 8 + 2)
#define QSUP_REASON_MAX 1024u

/* scope NUL addr, lowercased; the key's length or 0 when too long. */
static size_t qsup_key(unsigned char *k, const char *scope, size_t scope_len,
		       const char *addr, size_t addr_len)
{
	size_t n = 0;

	if (scope_len + 1 + addr_len > QUEUE_SUPPRESS_KEY_MAX || addr_len == 0)
		return 0;
	for (size_t i = 0; i < scope_len; i++) {
		unsigned char c = (unsigned char)scope[i];

		k[n++] = c >= 'A' && c <= 'Z' ? c + 32 : c;
	}
	k[n++] = '\0';
	for (size_t i = 0; i < addr_len; i++) {
		unsigned char c = (unsigned char)addr[i];

		k[n++] = c >= 'A' && c <= 'Z' ? c + 32 : c;
	}
	return n;
}

static void qsup_put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t qsup_get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* Decode key k and value v into e (views into them); -EBADMSG if damaged. */
static int qsup_decode(const MDB_val *k, const MDB_val *v, struct queue_suppress *e)
{
	const unsigned char *b = v->mv_data;
	const char *nul = memchr(k->mv_data, '\0', k->mv_size);
	size_t rlen;

	if (nul == NULL || v->mv_size < QSUP_FIXED || b[0] != QSUP_VERSION)
		return -EBADMSG;
	rlen = (size_t)(b[18] | (b[19] << 8));
	if (v->mv_size != QSUP_FIXED + rlen)
		return -EBADMSG;
	e->qs_scope = k->mv_data;
	e->qs_scope_len = (size_t)(nul - (const char *)k->mv_data);
	e->qs_addr = nul + 1;
	e->qs_addr_len = k->mv_size - e->qs_scope_len - 1;
	e->qs_class = b[1];
	e->qs_added = qsup_get64(b + 2);
	e->qs_expires = qsup_get64(b + 10);
	e->qs_reason = (const char *)b + QSUP_FIXED;
	e->qs_reason_len = rlen;
	return 0;
}

static bool qsup_live(const struct queue_suppress *e, uint64_t now_s)
{
	return e->qs_expires == 0 || e->qs_expires > now_s;
}

/* Write e in txn. keep_longer: an unexpired entry that lasts longer
 * (never, or a later expiry) stays as it is. */
static int qsup_put(struct queue *q, MDB_txn *txn, const struct queue_suppress *e,
		    bool keep_longer)
{
	unsigned char key[QUEUE_SUPPRESS_KEY_MAX], val[QSUP_FIXED + QSUP_REASON_MAX];
	size_t rlen = e->qs_reason_len < QSUP_REASON_MAX ? e->qs_reason_len : QSUP_REASON_MAX;
	MDB_val k = { 0, key }, v;
	struct queue_suppress old;

	k.mv_size = qsup_key(key, e->qs_scope ? e->qs_scope : "", e->qs_scope_len,
			     e->qs_addr, e->qs_addr_len);
	if (k.mv_size == 0)
		return -ENAMETOOLONG;
	if (keep_longer && mdb_get(txn, q->q_suppress, &k, &v) == 0 &&
	    qsup_decode(&k, &v, &old) == 0 && qsup_live(&old, e->qs_added) &&
	    (old.qs_expires == 0 || (e->qs_expires != 0 && old.qs_expires >= e->qs_expires)))
		return 0;
	val[0] = QSUP_VERSION;
	val[1] = e->qs_class;
	qsup_put64(val + 2, e->qs_added);
	qsup_put64(val + 10, e->qs_expires);
	val[18] = (unsigned char)rlen;
	val[19] = (unsigned char)(rlen >> 8);
	if (rlen)
		memcpy(val + QSUP_FIXED, e->qs_reason, rlen);
	v.mv_data = val;
	v.mv_size = QSUP_FIXED + rlen;
	return queue_status(mdb_put(txn, q->q_suppress, &k, &v, 0));
}

int queue_suppress_apply(struct queue *q, MDB_txn *txn, const struct queue_update *u)
{
	if (!q->q_has_suppress)
		return 0;	/* read-only opens never apply updates */
	for (unsigned i = 0; i < u->qu_nsuppress; i++) {
		int rc = qsup_put(q, txn, &u->qu_suppress[i], true);

		/* An address too long to key is left out, not a failed update. */
		if (rc != 0 && rc != -ENAMETOOLONG)
			return rc;
	}
	return 0;
}

/* One lookup in txn: 1 found and live, 0 not. */
static int qsup_get(struct queue *q, MDB_txn *txn, const char *scope, const char *addr,
		    size_t addr_len, uint64_t now_s, struct queue_suppress *e)
{
	unsigned char key[QUEUE_SUPPRESS_KEY_MAX];
	MDB_val k = { 0, key }, v;

	k.mv_size = qsup_key(key, scope, strlen(scope), addr, addr_len);
	if (k.mv_size == 0 || mdb_get(txn, q->q_suppress, &k, &v) != 0 ||
	    qsup_decode(&k, &v, e) < 0)
		return 0;
	return qsup_live(e, now_s) ? 1 : 0;
}

int queue_suppress_lookup(struct queue *q, const char *scope, const char *addr, size_t addr_len,
			  uint64_t now_s, struct queue_suppress *hit_r)
{
	struct queue_suppress e;
	MDB_txn *txn;
	int found;

	if (!q->q_has_suppress)
		return 0;
	if (mdb_txn_begin(q->q_env, NULL, MDB_RDONLY, &txn) != 0)
		return -EAGAIN;
	found = qsup_get(q, txn, "", addr, addr_len, now_s, &e);
	if (!found && scope != NULL && scope[0] != '\0')
		found = qsup_get(q, txn, scope, addr, addr_len, now_s, &e);
	if (found && hit_r != NULL) {
		/* The strings die with the txn: only the scope's kind stays. */
		*hit_r = e;
		hit_r->qs_scope = e.qs_scope_len ? "(sender domain)" : "";
		hit_r->qs_addr = NULL;
		hit_r->qs_addr_len = 0;
		hit_r->qs_reason = NULL;
		hit_r->qs_reason_len = 0;
	}
	mdb_txn_abort(txn);
	return found;
}

/* A write transaction for the CLI, with room checked (see queue.c). */
static int qsup_write_begin(struct queue *q, MDB_txn **txn_r)
{
	int rc;

	if (!q->q_has_suppress)
		return -EROFS;
	if ((rc = queue_room(q, 64 * q->q_psize)) < 0)
		return rc;
	return queue_status(queue_txn_begin_write(q, txn_r));
}

int queue_suppress_add(struct queue *q, const struct queue_suppress *e)
{
	MDB_txn *txn;
	int rc;

	if ((rc = qsup_write_begin(q, &txn)) < 0)
		return rc;
	rc = qsup_put(q, txn, e, false);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	return queue_status(mdb_txn_commit(txn));
}

int queue_suppress_remove(struct queue *q, const char *scope, const char *addr)
{
	unsigned char key[QUEUE_SUPPRESS_KEY_MAX];
	MDB_val k = { 0, key };
	MDB_txn *txn;
	int rc;

	k.mv_size = qsup_key(key, scope ? scope : "", scope ? strlen(scope) : 0, addr,
			     strlen(addr));
	if (k.mv_size == 0)
		return -ENOENT;
	if ((rc = qsup_write_begin(q, &txn)) < 0)
		return rc;
	rc = mdb_del(txn, q->q_suppress, &k, NULL);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return rc == MDB_NOTFOUND ? -ENOENT : queue_status(rc);
	}
	return queue_status(mdb_txn_commit(txn));
}

int queue_suppress_foreach(struct queue *q,
			   int (*cb)(void *ctx, const struct queue_suppress *e), void *ctx)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	int op = MDB_FIRST, rc = 0;

	if (!q->q_has_suppress)
		return 0;
	if (mdb_txn_begin(q->q_env, NULL, MDB_RDONLY, &txn) != 0)
		return -EAGAIN;
	if (mdb_cursor_open(txn, q->q_suppress, &cur) != 0) {
		mdb_txn_abort(txn);
		return -EIO;
	}
	while (mdb_cursor_get(cur, &k, &v, op) == 0) {
		struct queue_suppress e;

		op = MDB_NEXT;
		if (qsup_decode(&k, &v, &e) < 0) {
			rc = -EBADMSG;
			continue;	/* report it, show the rest */
		}
		if (cb(ctx, &e) != 0)
			break;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return rc;
}

int queue_suppress_purge(struct queue *q, uint64_t now_s, unsigned *n_r)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	int op = MDB_FIRST, rc;

	*n_r = 0;
	if ((rc = qsup_write_begin(q, &txn)) < 0)
		return rc;
	if ((rc = mdb_cursor_open(txn, q->q_suppress, &cur)) != 0) {
		mdb_txn_abort(txn);
		return queue_status(rc);
	}
	while (mdb_cursor_get(cur, &k, &v, op) == 0) {
		struct queue_suppress e;

		op = MDB_NEXT;
		if (qsup_decode(&k, &v, &e) == 0 && !qsup_live(&e, now_s)) {
			if ((rc = mdb_cursor_del(cur, 0)) != 0)
				break;
			(*n_r)++;
			/* The cursor now sits on the next entry. */
			op = MDB_GET_CURRENT;
		}
	}
	mdb_cursor_close(cur);
	if (rc != 0) {
		mdb_txn_abort(txn);
		*n_r = 0;
		return queue_status(rc);
	}
	return queue_status(mdb_txn_commit(txn));
}
