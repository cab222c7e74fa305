/*
 * Unit tests for queue/queue_suppress.c: add, remove, lookup by scope
 * (global entries apply to every sender domain, a sender domain's only to
 * it), case-insensitive keys, expiry, entries added by a delivery update
 * (keeping a longer-lasting one), listing, purge, and a queue opened
 * read-only that never had the database.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/queue.h"
#include "queue/queue_internal.h"
#include "tests/unit/tap.h"

static struct queue_suppress entry(const char *scope, const char *addr, uint8_t cls,
				   uint64_t added, uint64_t expires, const char *reason)
{
	struct queue_suppress e = {
		.qs_scope = scope, .qs_scope_len = strlen(scope),
		.qs_addr = addr, .qs_addr_len = strlen(addr),
		.qs_class = cls, .qs_added = added, .qs_expires = expires,
		.qs_reason = reason, .qs_reason_len = strlen(reason),
	};

	return e;
}

static int lookup(struct queue *q, const char *scope, const char *addr, uint64_t now,
		  struct queue_suppress *hit)
{
	return queue_suppress_lookup(q, scope, addr, strlen(addr), now, hit);
}

struct listed {
	int n;
	char lines[8][200];
};

static int list_cb(void *ctx, const struct queue_suppress *e)
{
	struct listed *l = ctx;

	if (l->n < 8)
		snprintf(l->lines[l->n], sizeof(l->lines[0]), "%.*s|%.*s|%u|%.*s",
			 (int)e->qs_scope_len, e->qs_scope, (int)e->qs_addr_len, e->qs_addr,
			 e->qs_class, (int)e->qs_reason_len, e->qs_reason);
	l->n++;
	return 0;
}

static void test_basic(struct queue *q)
{
	struct queue_suppress e, hit;
	char longaddr[600];

	e = entry("example.org", "User@Example.COM", 1, 1000, 0, "550 5.1.1 user unknown");
	tap_ok(queue_suppress_add(q, &e) == 0, "add under a sender domain");
	memset(&hit, 0, sizeof(hit));
	tap_ok(lookup(q, "example.org", "user@example.com", 2000, &hit) == 1 &&
	       hit.qs_class == 1 && hit.qs_added == 1000 && hit.qs_expires == 0 &&
	       hit.qs_scope_len == 11, "found for that sender domain, with class and time");
	tap_ok(lookup(q, "EXAMPLE.org", "USER@example.com", 2000, NULL) == 1,
	       "scope and address compare without case");
	tap_ok(lookup(q, "other.org", "user@example.com", 2000, NULL) == 0,
	       "another sender domain is not suppressed");
	tap_ok(lookup(q, NULL, "user@example.com", 2000, NULL) == 0 &&
	       lookup(q, "", "user@example.com", 2000, NULL) == 0,
	       "no sender domain: only global entries count");
	e = entry("", "all@example.com", 9, 1000, 0, "manual");
	tap_ok(queue_suppress_add(q, &e) == 0, "add a global entry");
	tap_ok(lookup(q, "a.org", "all@example.com", 2000, &hit) == 1 && hit.qs_class == 9 &&
	       hit.qs_scope_len == 0 && lookup(q, NULL, "all@example.com", 2000, NULL) == 1,
	       "a global entry holds for every sender domain and none");
	e = entry("", "soon@example.com", 1, 1000, 3000, "");
	tap_ok(queue_suppress_add(q, &e) == 0, "add an entry that expires");
	tap_ok(lookup(q, "", "soon@example.com", 2999, NULL) == 1 &&
	       lookup(q, "", "soon@example.com", 3000, NULL) == 0,
	       "it counts until its expiry, not after");
	tap_ok(queue_suppress_remove(q, "example.org", "USER@example.com") == 0 &&
	       lookup(q, "example.org", "user@example.com", 2000, NULL) == 0,
	       "remove takes it out");
	tap_ok(queue_suppress_remove(q, "example.org", "user@example.com") == -ENOENT,
	       "removing an absent entry: -ENOENT");
	memset(longaddr, 'a', sizeof(longaddr) - 1);
	longaddr[sizeof(longaddr) - 1] = '\0';
	e = entry("", longaddr, 1, 1, 0, "");
	tap_ok(queue_suppress_add(q, &e) == -ENAMETOOLONG &&
	       lookup(q, "", longaddr, 2, NULL) == 0, "an over-long key is refused, never found");
}

static struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int n;
} g_w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };

static void sink_notify(void *ctx)
{
	(void)ctx;
}

static void update_done(struct queue_update *u)
{
	(void)u;
	pthread_mutex_lock(&g_w.lock);
	g_w.n++;
	pthread_cond_signal(&g_w.cond);
	pthread_mutex_unlock(&g_w.lock);
}

/* A delivery update that fails a recipient adds its entry in the same
 * transaction; an existing entry that lasts longer is kept. */
static void test_update(struct queue *q)
{
	struct qrcpt rc = { QRCPT_PENDING, 0, 0, "gone@example.net", 16, NULL, 0, 0, 0, NULL, 0 };
	struct queue_rcpt_update ru = { 0, QRCPT_FAILED, 0, "550 5.1.1 no", 12, 1, false };
	struct queue_suppress sup[2], hit;
	struct queue_sink sink;
	struct queue_msg m, *got = NULL;
	struct queue_update u;
	struct iovec iov = { "x\r\n", 3 };

	queue_sink_init(&sink, sink_notify, NULL);
	memset(&m, 0, sizeof(m));
	m.qm_sink = &sink;
	m.qm_id = 7;
	m.qm_rec.sender = "s@example.org";
	m.qm_rec.sender_len = 13;
	m.qm_rec.nrcpt = 1;
	m.qm_rec.rcpts = &rc;
	m.qm_iov = &iov;
	m.qm_iovcnt = 1;
	queue_submit(q, &m);
	while ((got = queue_sink_take(&sink)) == NULL)
		;
	tap_ok(got == &m && m.qm_status == 0, "update: message stored");
	sup[0] = entry("example.org", "gone@example.net", 1, 5000, 6000, "550 5.1.1 no");
	/* "keep@" already has a never-expiring entry: the update keeps it. */
	sup[1] = entry("", "keep@example.net", 9, 5000, 6000, "auto");
	{
		struct queue_suppress e = entry("", "keep@example.net", 7, 100, 0, "manual");

		queue_suppress_add(q, &e);
	}
	memset(&u, 0, sizeof(u));
	u.qu_id = 7;
	u.qu_rcpts = &ru;
	u.qu_nrcpt = 1;
	u.qu_suppress = sup;
	u.qu_nsuppress = 2;
	u.qu_done = update_done;
	queue_submit_update(q, &u);
	pthread_mutex_lock(&g_w.lock);
	while (g_w.n < 1)
		pthread_cond_wait(&g_w.cond, &g_w.lock);
	pthread_mutex_unlock(&g_w.lock);
	tap_ok(u.qu_status == 0 && u.qu_removed, "update: the failure removed the message");
	tap_ok(lookup(q, "example.org", "gone@example.net", 5500, &hit) == 1 &&
	       hit.qs_class == 1 && hit.qs_expires == 6000,
	       "update: the failed recipient is suppressed in the same commit");
	tap_ok(lookup(q, "x.org", "keep@example.net", 99999, &hit) == 1 && hit.qs_class == 7 &&
	       hit.qs_expires == 0, "update: a longer-lasting entry is kept");
	queue_sink_destroy(&sink);
}

static void test_list_purge(struct queue *q)
{
	struct listed l = { 0 };
	unsigned n = 99;

	tap_ok(queue_suppress_foreach(q, list_cb, &l) == 0 && l.n == 4,
	       "list: every entry");
	tap_ok(strcmp(l.lines[0], "|all@example.com|9|manual") == 0 &&
	       strcmp(l.lines[3], "example.org|gone@example.net|1|550 5.1.1 no") == 0,
	       "list: key order, global first");
	tap_ok(queue_suppress_purge(q, 7000, &n) == 0 && n == 2,
	       "purge: the two expired entries go");
	l.n = 0;
	tap_ok(queue_suppress_foreach(q, list_cb, &l) == 0 && l.n == 2 &&
	       lookup(q, "", "all@example.com", 7000, NULL) == 1 &&
	       lookup(q, "", "keep@example.net", 7000, NULL) == 1,
	       "purge: the others stay");
}

int main(void)
{
	char dir[512], sub[600], err[256];
	const char *tmp = getenv("TMPDIR");
	struct queue *q;

	snprintf(dir, sizeof(dir), "%s/ringmta-test-suppress-XXXXXX", tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(sub, sizeof(sub), "%s/old", dir);
	/* A queue from before the list: create it, drop the database. */
	tap_ok(queue_open(&q, sub, 16u << 20, 0, err, sizeof(err)) == 0, "old queue created");
	{
		MDB_txn *txn;

		tap_ok(mdb_txn_begin(q->q_env, NULL, 0, &txn) == 0 &&
		       mdb_drop(txn, q->q_suppress, 1) == 0 && mdb_txn_commit(txn) == 0,
		       "its suppress database removed");
	}
	queue_close(&q);
	tap_ok(queue_open(&q, sub, 16u << 20, QUEUE_F_RDONLY, err, sizeof(err)) == 0,
	       "read-only open of a queue without the list works");
	{
		struct listed l = { 0 };

		tap_ok(lookup(q, "", "a@b", 1, NULL) == 0 &&
		       queue_suppress_foreach(q, list_cb, &l) == 0 && l.n == 0,
		       "and its list is empty");
	}
	queue_close(&q);
	tap_ok(queue_open(&q, dir, 16u << 20, QUEUE_F_COMMITTER, err, sizeof(err)) == 0,
	       "queue opens");
	test_basic(q);
	test_update(q);
	test_list_purge(q);
	queue_close(&q);
	tap_ok(queue_open(&q, dir, 16u << 20, QUEUE_F_RDONLY, err, sizeof(err)) == 0 &&
	       lookup(q, "", "all@example.com", 7000, NULL) == 1, "entries survive a reopen");
	queue_close(&q);
	snprintf(sub, sizeof(sub), "rm -rf '%s'", dir);
	(void)!system(sub);
	return tap_done();
}
