/* queue_internal.h: the queue's private state, shared by queue*.c only. */
#ifndef RINGMTA_QUEUE_INTERNAL_H
#define RINGMTA_QUEUE_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "queue/journal.h"
#include "queue/queue.h"

/*
 * A message that lives only in the journal (queue_journal.c): accepted,
 * synced to a segment, not yet in LMDB. Its record and body are read in
 * place from the segment's map (oe_loc: u32 record length, record, body);
 * the entry holds a reference on that segment.
 */
struct queue_ov_entry {
	struct queue_ov_entry *oe_hnext;	/* hash chain */
	struct queue_ov_entry *oe_older, *oe_newer;	/* arrival order */
	uint64_t oe_id;
	uint64_t oe_seq;		/* order of adding = order in the journal */
	uint64_t oe_added_ns;
	struct jnl_loc oe_loc;
	uint32_t oe_rec_len;
	uint64_t oe_body_len;
	uint64_t oe_next_attempt;
};

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
	_Atomic bool q_fatal;		/* MDB_PANIC seen (queue_txn_begin_write) */
	void (*q_fatal_fn)(void *ctx);
	void *q_fatal_ctx;
	unsigned q_test_panic_at;	/* test hook: the write transaction from
					   which LMDB "answers" MDB_PANIC; 0 off */
	_Atomic unsigned q_test_writes;
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
	/* The journal (queue_journal.c, README "Queue journal"); NULL: off. */
	struct jnl *q_jnl;
	bool q_jnl_new;			/* new mail may go to it (queue_journal on;
					   off, it only holds what a replay could
					   not write into a full LMDB) */
	MDB_dbi q_jdb;			/* "journal": the checkpoint position */
	bool q_has_jdb;
	pthread_mutex_t q_ov_lock;	/* guards the overlay (q_ov_*) */
	struct queue_ov_entry **q_ov_hash;
	unsigned q_ov_hmask;		/* hash size - 1 */
	unsigned q_ov_count;
	uint64_t q_ov_bytes;		/* what a checkpoint would write, about */
	struct queue_ov_entry *q_ov_oldest, *q_ov_newest;
	uint64_t q_cp_seq, q_cp_off;	/* committer: the last checkpoint */
	uint64_t q_ov_next_seq;		/* the next entry's oe_seq (from 1) */
	_Atomic uint64_t q_cp_age_ns;	/* the oldest entry's age that calls for a
					   checkpoint (QUEUE_CP_AGE_NS; tests set
					   it with queue_jnl_set_age) */
	/* The checkpoint this batch makes: it moves the entries with oe_seq
	 * up to q_cp_cut (UINT64_MAX: all), and its position is the first
	 * entry left's record (or the journal's end); queue_jnl_cp_put. */
	uint64_t q_cp_cut;
	uint64_t q_cp_pos_seq, q_cp_pos_off;
	bool q_cp_at_end;		/* and no group written since */
	bool q_replaying;		/* queue_jnl_open's checkpoint */
	bool q_jnl_failed_now;		/* this batch's group failed (queue_commit.c) */
	bool q_jnl_broken;		/* a group failed: checkpoint past it */
	bool q_jnl_warned;		/* the failure was logged */
	bool q_cp_warned;		/* a failed checkpoint was logged */
	bool q_map_warned;		/* refusing: the map is kept for the journal */
	uint64_t q_cp_retry_ns;		/* no checkpoint before (after a failure) */
	/* Test hooks (RINGMTA_TEST_JOURNAL_CP_KILL, _CP_KILL_AFTER): kill -9
	 * in the N-th checkpoint before its commit, or after it. */
	unsigned q_cp_kill, q_cp_kill_after, q_cp_count;
	/* A tool's view beside a running daemon (queue_jnl_view): the read
	 * transaction the position was read in, which the walks use too, so
	 * LMDB and the journal's records past that position are one state. */
	MDB_txn *q_view_txn;
	/* Checkpoint requests (queue_jnl_sync), under q_lock. */
	unsigned q_cp_req, q_cp_done;
	pthread_cond_t q_cp_cond;
};

/* queue_open flag of queue_jnl_recover_dir: a tool that takes the
 * daemon's lock only to replay a journal marks the lock file so, and a
 * daemon that starts meanwhile waits for it (QUEUE_LOCK_WAIT_NS) rather
 * than exit "in use". */
#define QUEUE_F_RECOVER	  0x100u
#define QUEUE_LOCK_WAIT_NS (60ull * 1000000000ull)
#define QUEUE_LOCK_REPLAY_TAG "journal replay"

/* Pages a write transaction may touch besides its records and bodies
 * (branch pages, leaf splits, the free list). */
#define QUEUE_TXN_PAGES 64
/* The committer's gathering defaults (queue_set_gather): under load it
 * waits at most QUEUE_LINGER_NS for QUEUE_BATCH_WANT items, when at least
 * QUEUE_GATHER_MIN arrived during the last commit (one session's message
 * and its previous one's result do not make load: the 250 latency at low
 * load). */
#define QUEUE_LINGER_NS 1000000u
#define QUEUE_BATCH_WANT 128u
#define QUEUE_GATHER_MIN 4u
/* A checkpoint of the journal's oldest messages when the oldest is this
 * old (queue_journal.c). */
#define QUEUE_CP_AGE_NS (500u * 1000000u)

static inline uint64_t queue_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* In queue_commit.c: the committer thread's body (queue_open starts it). */
void *queue_committer(void *arg);

/* In queue.c: make sure LMDB's next writes, up to need bytes past the
 * pages in use, land in allocated blocks (on a full filesystem any other
 * write fails, and the commit with it). 0 or -ENOSPC (or another -errno). */
int queue_room(struct queue *q, uint64_t need);
/* Clear reader slots left by dead processes; at most once a second unless
 * force. */
void queue_readers_check(struct queue *q, bool force);
/* An LMDB return (0, a positive errno or an MDB_* code) as our status:
 * 0, -errno, MDB_* codes kept (they are below -30000), MAP_FULL -ENOSPC. */
int queue_status(int mdb_rc);
/* Begin a write transaction (mdb_txn_begin); an MDB_PANIC answer marks
 * the queue failed and tells the fatal listener (queue_set_fatal_listener). */
int queue_txn_begin_write(struct queue *q, MDB_txn **txn_r);

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
		      struct queue_idlist *ids, bool checkpoint);
/* Put a message given as its encoded record and body (a checkpoint). */
int queue_put_raw(struct queue *q, MDB_txn *txn, uint64_t id, const void *rec, size_t rec_len,
		  uint64_t next_attempt, const void *body, size_t body_len);

/* In queue_journal.c. Item status the journal took (never seen outside). */
#define QUEUE_ST_JOURNAL 1
/* Open the journal under dir/journal and replay what it holds past the
 * stored position into LMDB (one synced transaction); keep it open with
 * QUEUE_F_COMMITTER | QUEUE_F_JOURNAL. When LMDB cannot take the replay
 * (full), the daemon keeps the messages in the journal and goes on; a
 * tool's open fails. 0 or -errno with err. Exclusive writable opens. */
int queue_jnl_open(struct queue *q, const char *dir, unsigned flags, char *err, size_t errlen);
void queue_jnl_close(struct queue *q);
/* A non-exclusive open: replay a journal left by a killed daemon when no
 * daemon runs now (best effort). */
void queue_jnl_recover_dir(const char *dir, uint64_t map_size);
/* A read-only open while a daemon holds the queue: the journal's
 * messages past the stored position as an overlay (best effort: none on
 * any failure). */
void queue_jnl_view(struct queue *q, const char *dir);
/* The walks' read transaction: the view's, or a new one (*own_r true:
 * the caller aborts it). */
int queue_read_txn(struct queue *q, MDB_txn **txn_r, bool *own_r);
/* Overlay entries with id >= from, sorted by id (a malloc'd array of
 * ids, *n_r of them; NULL when none). */
uint64_t *queue_ov_ids_from(struct queue *q, uint64_t from, size_t *n_r);
/* Decode an overlay message's record and find its body: 1 found, 0 not;
 * both stay valid until the caller drops *seg_r (jnl_seg_unref). */
int queue_ov_peek(struct queue *q, uint64_t id, struct qrecord *r_r, const void **body_r,
		  size_t *body_len_r, struct jnl_seg **seg_r);
/* Committer: the journal's part of a batch. Marks what it made durable
 * (QUEUE_ST_JOURNAL) and returns whether the LMDB part must checkpoint. */
bool queue_jnl_batch(struct queue *q, struct queue_msg *batch, struct queue_update *ubatch,
		     struct queue_idlist *ids, bool want_cp);
/* Committer, in the LMDB transaction: every overlay message and the
 * position; after its commit, queue_jnl_cp_done. */
int queue_jnl_cp_put(struct queue *q, MDB_txn *txn);
void queue_jnl_cp_done(struct queue *q);
/* What a checkpoint writes into LMDB at most, for queue_room (it errs
 * high). */
uint64_t queue_jnl_cp_bytes(struct queue *q);
/* A failed checkpoint is not tried again for a second (-EAGAIN to
 * queue_jnl_before_lmdb: not run for that reason, no new wait). */
bool queue_jnl_cp_backoff(struct queue *q);
/* Tests: the age that calls for a checkpoint (any thread; takes effect at
 * the committer's next look). */
void queue_jnl_set_age(struct queue *q, uint64_t ns);
/* Before LMDB writes what the journal left of a batch, with the
 * checkpoint (cp) or without (err: why one that was due cannot run, or
 * 0): an update of a journal message is held back (-EAGAIN) unless the
 * checkpoint takes it; a new message or bounce whose id the journal holds
 * is refused (-EEXIST: one id, one message); a failed group's new mail is
 * refused when no checkpoint passes it (-EIO). */
void queue_jnl_before_lmdb(struct queue *q, struct queue_msg *batch, struct queue_update *ubatch,
			   bool cp, int err);
/* Committer: a checkpoint is due (age, bytes); *wait_ns_r how long until
 * one is when the overlay is not empty (0: none pending). */
bool queue_jnl_cp_due(struct queue *q, uint64_t *wait_ns_r);
/* Make everything the journal holds visible in LMDB (a checkpoint, waited
 * for): before a walk of LMDB from another thread. No-op without one. */
void queue_jnl_sync(struct queue *q);
/* In queue_overlay.c, the committer's (and a replay's) side, under
 * q_ov_lock: find, add (the entry holds a reference on its segment),
 * remove (and free); clear takes the lock itself. An entry from a
 * JNL_MSG payload (u32 record length, record, body), NULL when it does
 * not decode; its record and body in place. */
struct queue_ov_entry *queue_ov_find(struct queue *q, uint64_t id);
int queue_ov_add(struct queue *q, struct queue_ov_entry *e);
void queue_ov_remove(struct queue *q, struct queue_ov_entry *e);
void queue_ov_clear(struct queue *q);
struct queue_ov_entry *queue_ov_entry_new(const struct jnl_loc *loc, uint64_t id,
					  const unsigned char *payload, uint32_t len);
const unsigned char *queue_ov_payload(const struct queue_ov_entry *e);
/* The "journal" database's key of the checkpoint position. */
#define QUEUE_JPOS_KEY "pos"
/* Overlay reads (queue_update.c): 1 found (filled), 0 not there. */
int queue_ov_record(struct queue *q, uint64_t id, void **rec_r, size_t *len_r);
int queue_ov_body(struct queue *q, uint64_t id, struct queue_body *b_r);
void queue_ov_depth(struct queue *q, uint64_t *count_r, uint64_t *oldest_id_r);

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
