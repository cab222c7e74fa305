/* queue_internal.h: the queue's private state, shared by queue*.c only. */
#ifndef RINGMTA_QUEUE_INTERNAL_H
#define RINGMTA_QUEUE_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "queue/queue.h"

struct queue {
	MDB_env *q_env;
	MDB_dbi q_meta, q_body, q_sched;
	MDB_dbi q_shaping;		/* named blobs (queue_shaping.c) */
	bool q_has_shaping;		/* false: a read-only open of an older file */
	MDB_dbi q_suppress;		/* valid when q_has_suppress */
	bool q_has_suppress;		/* false: a read-only open of a queue
					   that never had the database */
	MDB_dbi q_events;		/* valid when q_has_events */
	bool q_has_events;
	uint64_t q_event_seq;		/* committer: last sequence written */
	_Atomic uint64_t q_event_last;	/* last sequence committed */
	void (*q_event_listener)(void *ctx, uint64_t last);
	void *q_event_listener_ctx;
	unsigned q_flags;
	uint64_t q_last_id;
	pthread_t q_thread;
	bool q_thread_started;
	pthread_mutex_t q_lock;		/* guards the fields below */
	pthread_cond_t q_cond;		/* CLOCK_MONOTONIC */
	struct queue_msg *q_head, *q_tail;
	struct queue_update *q_uhead, *q_utail;
	unsigned q_npending;		/* items in the two lists */
	/* The committer's wakes (README "Queue storage", group commit): a
	 * submit signals q_cond only when the committer sleeps idle, or
	 * gathers and the batch just became full; the signaller clears the
	 * flag, so each sleep gets one signal. */
	bool q_idle;			/* waiting for any work, no deadline */
	bool q_gathering;		/* under load: waiting for a fuller batch */
	uint64_t q_linger_ns;		/* the most one gathering waits (0: never) */
	unsigned q_batch_want;		/* a batch this full ends the gathering */
	unsigned q_gather_min;		/* gather only when a commit ended with
					 * at least this many items waiting */
	unsigned q_gather_skip;		/* chances to skip (backoff) */
	unsigned q_gather_backoff;	/* the last skip: 0, 1, 2, 4 .. 64 */
	bool q_stop;
	void (*q_listener)(void *ctx, const uint64_t *ids, unsigned n);
	void *q_listener_ctx;
	struct queue_stats q_stats;
	/* Storage room (committer, or the one CLI thread): see queue_room(). */
	int q_fd;			/* LMDB's data file */
	int q_lockfd;			/* queue_dir/ringmta.lock, or -1 */
	int q_toolsfd;			/* queue_dir/ringmta.tools.lock, or -1 */
	int q_lmdblockfd;		/* lock.mdb, kept open until after
					 * mdb_env_close (see queue_lockfile_alloc) */
	uint64_t q_psize;		/* LMDB page size */
	uint64_t q_alloc_end;		/* data file allocated up to here */
	uint64_t q_reserve;		/* kept allocated past LMDB's use */
	bool q_full;			/* refusing new mail: no room */
	uint64_t q_reader_check_ns;	/* last mdb_reader_check() */
	/* Committer: no key in meta/body is above q_append_id, none in
	 * sched above q_append_sched (both may be stale high, never low),
	 * so a put of a higher key may append (queue_put_msg). */
	uint64_t q_append_id;
	unsigned char q_append_sched[16];
};

/* In queue.c: make sure LMDB's next writes, up to need bytes past the
 * pages in use, land in allocated blocks (MDB_WRITEMAP faults on a hole
 * when the filesystem is full). 0 or -ENOSPC (or another -errno). */
int queue_room(struct queue *q, uint64_t need);
/* Clear reader slots left by dead processes; at most once a second unless
 * force. */
void queue_readers_check(struct queue *q, bool force);
/* An LMDB return (0, a positive errno or an MDB_* code) as our status:
 * 0, -errno, MDB_* codes kept (they are below -30000), MAP_FULL -ENOSPC. */
int queue_status(int mdb_rc);

/* In queue_update.c: apply one update inside the committer's txn. */
int queue_apply_update(struct queue *q, MDB_txn *txn, struct queue_update *u);
/* The same without counting an attempt (queue flush). */
int queue_apply_update_noattempt(struct queue *q, MDB_txn *txn, struct queue_update *u);
/* In queue_suppress.c: add u's suppression entries inside its txn. */
int queue_suppress_apply(struct queue *q, MDB_txn *txn, const struct queue_update *u);
/* In queue_events.c: write a list of records inside the committer's
 * txn, numbering them from q_event_seq; open the database and find the
 * last sequence (at open). */
int queue_events_put(struct queue *q, MDB_txn *txn, const struct queue_event *list);
int queue_events_open(struct queue *q, MDB_txn *txn, unsigned dflags);
/* Ids of the messages a commit stored, for the listener. */
struct queue_idlist {
	uint64_t *ids;
	unsigned n, cap;
};

/* In queue_write.c: store one new message inside the committer's txn;
 * an id for the list (none when out of memory: the scheduler's scan
 * finds it later); the batch's one write transaction, committed with its
 * syncs: 0 or the commit's error, each item's own in its status. */
int queue_put_msg(struct queue *q, MDB_txn *txn, struct queue_msg *m);
void queue_idlist_add(struct queue_idlist *l, uint64_t id);
int queue_write_batch(struct queue *q, struct queue_msg *batch, struct queue_update *ubatch,
		      struct queue_idlist *ids);

static inline void queue_key_put(unsigned char k[8], uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		k[i] = (unsigned char)v;
		v >>= 8;
	}
}

static inline uint64_t queue_key_get(const unsigned char k[8])
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | k[i];
	return v;
}

#endif
