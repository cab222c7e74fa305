/*
 * queue: the durable message store (LMDB) and its group committer.
 *
 * Layout, one LMDB environment in queue_dir:
 *   "meta"  queue id (8 bytes, big-endian) -> qrecord (envelope + state)
 *   "body"  queue id -> the message as stored (trace header first)
 *   "sched" next attempt (8 bytes BE, unix us) + queue id -> empty
 *   "suppress" scope NUL address -> suppression entry (queue_suppress.c)
 *   "events" event sequence (8 bytes BE) -> event record (queue_events.c)
 *
 * Group commit: workers hand complete messages to queue_submit(); one
 * committer thread takes everything waiting, writes it all in one write
 * transaction and commits it with one sync (LMDB's durable commit), then
 * returns each message to the sink it came from. While it syncs, the next
 * batch gathers, so the sync cost is shared by every message in a batch.
 * A message is reported committed only after its transaction is on
 * stable storage. The committer is the only cross-thread point of the
 * receive path.
 *
 * Ownership: a queue_msg and everything it points to (record strings,
 * body iovecs and the buffers they point into) belong to the submitting
 * worker; the committer only reads them between queue_submit() and the
 * message's return through queue_sink_take(). The worker must not change
 * or free them in between.
 */
#ifndef RINGMTA_QUEUE_H
#define RINGMTA_QUEUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>

#include "queue/qrecord.h"

struct queue;
struct queue_sink;

/*
 * An event record (core/events) to store with a state change: a JSON
 * object rendered by the worker, without its event id. The committer
 * numbers the records of a transaction in order (a sequence that only
 * grows) and copies the bytes into the "events" database in the same
 * transaction as the change they describe, so after a crash a record
 * exists iff its change does. Owned by whoever owns the message or update
 * that carries it; the committer only reads it.
 */
struct queue_event {
	struct queue_event *qe_next;
	size_t qe_len;
	char qe_data[];
};

struct queue_msg {
	struct queue_msg *qm_next;	/* links in queue and sink lists */
	struct queue_sink *qm_sink;	/* where the message returns */
	uint64_t qm_id;
	struct qrecord qm_rec;		/* envelope to store */
	const struct iovec *qm_iov;	/* body pieces, in order */
	unsigned qm_iovcnt;
	int qm_status;			/* set by the committer: 0 or -errno */
	uint64_t qm_submit_ns;		/* for commit latency */
	struct queue_event *qm_events;	/* stored with the message, or NULL */
};

/* A worker's inbox for committed messages. */
struct queue_sink {
	pthread_mutex_t qs_lock;
	struct queue_msg *qs_head, *qs_tail;
	/* Called by the committer under qs_lock, right after it added the
	 * sink's messages: it must not take qs_lock (queue_sink_take). */
	void (*qs_notify)(void *ctx);
	void *qs_ctx;
};

struct queue_stats {
	uint64_t commits;		/* write transactions committed */
	uint64_t messages;		/* messages committed */
	uint64_t failures;		/* messages whose commit failed */
	uint64_t commit_ns;		/* time spent in commits */
	uint64_t updates;		/* delivery results applied */
	uint64_t jnl_groups;		/* groups synced to the journal */
	uint64_t checkpoints;		/* journal checkpoints into LMDB */
	/* Commit latency histogram (stat_hist_bounds buckets). */
	uint64_t hist[15];
	uint64_t hist_count, hist_sum_ns;
};

#define QUEUE_F_COMMITTER 0x01u		/* start the committer thread */
#define QUEUE_F_RDONLY	  0x02u		/* inspection only */
#define QUEUE_F_EXCLUSIVE 0x04u		/* hold queue_dir's lock (the daemon,
					   queue compact); implied by
					   QUEUE_F_COMMITTER */
#define QUEUE_F_JOURNAL	  0x08u		/* with QUEUE_F_COMMITTER: new mail
					   goes through the journal (README
					   "Queue journal") */

/*
 * Status vocabulary: 0, -errno, or an LMDB code (MDB_*, all below -30000).
 * -ENOSPC: no storage (filesystem full or LMDB map full); the committer
 * returns it for new mail it refused, and SMTP answers 452 4.3.1.
 * queue_strerror() names any of them.
 */
const char *queue_strerror(int err);

/*
 * Open (creating queue_dir). err gets a message on failure. Before LMDB
 * maps the file, it is checked against what its meta pages claim (an empty
 * or truncated data.mdb is refused, never replaced by an empty queue).
 * With QUEUE_F_EXCLUSIVE, queue_dir/ringmta.lock is flock()ed for the
 * queue's life and a second holder gets -EBUSY (a daemon, QUEUE_F_COMMITTER,
 * first waits up to a minute for a tool that holds it only to replay a
 * journal a killed daemon left). Plain CLI opens work
 * beside the daemon; they share queue_dir/ringmta.tools.lock, which
 * queue compact (QUEUE_F_EXCLUSIVE without QUEUE_F_COMMITTER) takes alone,
 * so a tool never runs while compact replaces the file (-EBUSY either way).
 */
int queue_open(struct queue **q_r, const char *dir, uint64_t map_size,
	       unsigned flags, char *err, size_t errlen);
/* Stop the committer after it has committed everything submitted. */
void queue_close(struct queue **q);

void queue_sink_init(struct queue_sink *s, void (*notify)(void *), void *ctx);
void queue_sink_destroy(struct queue_sink *s);
/* All messages returned so far, oldest first; the caller owns them again. */
struct queue_msg *queue_sink_take(struct queue_sink *s);

/* Any thread. */
void queue_submit(struct queue *q, struct queue_msg *m);
/*
 * The committer's gathering (README "Queue storage"): when at least
 * gather_min items wait as a commit ends (load), it waits up to
 * linger_ns more, or until batch_want items wait, before the next
 * commit; work that finds it idle, or fewer items, is committed at once.
 * Defaults 1 ms, 4 and 128; linger_ns 0 turns it off. Any thread (tests).
 */
void queue_set_gather(struct queue *q, uint64_t linger_ns, unsigned gather_min,
		      unsigned batch_want);
/* The same wait alone (the daemon's queue_commit_delay): the others keep
 * their values. Any thread. */
void queue_set_commit_delay(struct queue *q, uint64_t linger_ns);
/* Messages ready now (next attempt <= now_us) and scheduled later, and
 * the arrival time of the oldest message (0 when empty). Read-only scan. */
int queue_depth(struct queue *q, uint64_t now_us, uint64_t *ready_r,
		uint64_t *scheduled_r, uint64_t *oldest_us_r);
/* Highest queue id stored when the queue was opened (0 if empty). */
uint64_t queue_last_id(const struct queue *q);
void queue_get_stats(struct queue *q, struct queue_stats *st_r);

/* Queue ids as text: 16 lower-case hex digits. */
void queue_id_str(uint64_t id, char buf[17]);
int queue_id_parse(const char *s, uint64_t *id_r);

/*
 * Delivery results for one message, applied by the committer in its next
 * write transaction (so they are group-committed too). Recipients are
 * named by their position in the record. A message whose recipients are
 * all delivered or failed leaves the queue in that same transaction. An
 * optional new message (a bounce) is stored in the same transaction, so a
 * failure and its bounce are durable together.
 *
 * qu_done runs on the committer thread after the commit (qu_status 0,
 * -ENOENT when the message was gone, or another -errno); it owns the
 * update again and frees it. It must be quick and must not block.
 */
struct queue_rcpt_update {
	uint32_t qru_index;
	uint8_t qru_state;		/* enum qrcpt_state */
	uint64_t qru_next_attempt;	/* unix us, for QRCPT_PENDING */
	const char *qru_reply;		/* last reply or reason */
	uint16_t qru_reply_len;
	uint8_t qru_bclass;		/* stored as qrcpt.bclass; 0 = none */
	/* No delivery attempt was made (the recipient waited, e.g. for a
	 * suspended site): its attempt counter stays as it is, and with
	 * qru_reply NULL / qru_bclass 0 the stored reply / class stay too. */
	bool qru_no_attempt;
};

/*
 * The suppression list ("suppress" database, queue_suppress.c): recipients
 * mail is not sent to. Key: scope (a sender domain, or "" for every
 * sender), NUL, address; both lowercased (ASCII), at most
 * QUEUE_SUPPRESS_KEY_MAX bytes together. The class is opaque here (core's
 * enum bclass). An entry past its expiry counts as absent.
 */
#define QUEUE_SUPPRESS_KEY_MAX 511u	/* LMDB's default key limit */
struct queue_suppress {
	const char *qs_scope;		/* "" = global */
	size_t qs_scope_len;
	const char *qs_addr;
	size_t qs_addr_len;
	uint8_t qs_class;
	uint64_t qs_added;		/* unix seconds */
	uint64_t qs_expires;		/* unix seconds; 0 = never */
	const char *qs_reason;		/* may be empty; not NUL-terminated */
	size_t qs_reason_len;
};

struct queue_update {
	struct queue_update *qu_next;
	uint64_t qu_id;
	const struct queue_rcpt_update *qu_rcpts;
	unsigned qu_nrcpt;
	/* Suppression entries to add in the same transaction (recipients
	 * that failed with a hard class); an existing entry that lasts
	 * longer is kept. */
	const struct queue_suppress *qu_suppress;
	unsigned qu_nsuppress;
	struct queue_msg *qu_new;	/* optional; its qm_sink may be NULL */
	uint32_t qu_set_flags;		/* QRECORD_F_* to add to the record */
	uint32_t qu_clear_flags;	/* QRECORD_F_* to remove (after adding) */
	int qu_status;
	bool qu_removed;		/* set: the message left the queue */
	void (*qu_done)(struct queue_update *u);
	/* Event records stored when the update applies (not when it finds
	 * the message gone). An update with qu_id 0 and no recipients
	 * carries events alone (an admin action, a refused recipient). */
	struct queue_event *qu_events;
};

void queue_submit_update(struct queue *q, struct queue_update *u);

/*
 * The "events" database (queue_events.c). Records are keyed by their
 * sequence (1, 2, ...; never reused: the highest one deleted is kept
 * under key 0 so a restart continues past it). Readers are the event
 * sinks, each on its own thread with its own read transactions.
 *
 * queue_events_last: the highest sequence committed (any thread).
 * queue_set_event_listener: fn(ctx, last) on the committer thread after
 * a commit that stored events; quick, must not block.
 * queue_events_read: cb for each record after seq `after`, in order, at
 * most max of them; the bytes live until cb returns; cb returns non-zero
 * to stop. 0 or -errno.
 * queue_events_trim: delete every record up to and including upto (its
 * own write transaction, any thread but the committer's); *n_r how many.
 * queue_events_stat: records stored and the lowest sequence stored (0
 * when none).
 */
uint64_t queue_events_last(struct queue *q);
void queue_set_event_listener(struct queue *q, void (*fn)(void *ctx, uint64_t last),
			      void *ctx);
int queue_events_read(struct queue *q, uint64_t after, unsigned max,
		      int (*cb)(void *ctx, uint64_t seq, const char *data, size_t len),
		      void *ctx);
int queue_events_trim(struct queue *q, uint64_t upto, uint64_t *n_r);
int queue_events_stat(struct queue *q, uint64_t *count_r, uint64_t *first_r);
/* Free a list of records (for their owners). */
void queue_events_free(struct queue_event **list);

/*
 * The store failed beyond repair in this process: LMDB answered MDB_PANIC
 * (a write of its meta page failed, so it refuses every transaction after
 * it). Every commit fails from then on, new mail gets 4xx, deliveries'
 * results are not stored. fn is called once, on the thread that saw it
 * (any, also the committer inside queue_close), and should stop the
 * process: a restart reopens the store at its last good commit. Set fn
 * before any submit.
 */
void queue_set_fatal_listener(struct queue *q, void (*fn)(void *ctx), void *ctx);

/*
 * Called on the committer thread once at the end of every batch, after
 * the batch's messages went back to their sinks and its updates' qu_done
 * ran, with the ids of the messages it stored (received mail and bounces;
 * n is 0 when it stored none, or when the commit failed). So a listener
 * that the qu_done callbacks feed acts once per batch. Set before any
 * submit. The next commit starts when it returns, so it does little (the
 * delivery scheduler splits at most 64 new messages into jobs there); it
 * may read the queue (queue_record_get), never wait for a commit.
 */
void queue_set_listener(struct queue *q,
			void (*fn)(void *ctx, const uint64_t *ids, unsigned n),
			void *ctx);

/*
 * A stored body, read in place: qb_data points into LMDB's map and stays
 * valid (the read transaction pins it) until queue_body_release(). Any
 * thread; each open body uses one LMDB reader slot.
 */
struct queue_body {
	void *qb_txn;
	void *qb_seg;		/* a journal segment held instead (queue_journal.c) */
	const char *qb_data;
	size_t qb_len;
};
int queue_body_get(struct queue *q, uint64_t id, struct queue_body *b_r);
void queue_body_release(struct queue_body *b);

/* Read one record; cb sees it inside a read transaction. -ENOENT if gone. */
int queue_record_get(struct queue *q, uint64_t id,
		     void (*cb)(void *ctx, uint64_t id, const struct qrecord *r),
		     void *ctx);
/*
 * Visit the schedule in time order while the next attempt is <= now_us.
 * cb returns non-zero to stop early. Read-only.
 */
int queue_scan_due(struct queue *q, uint64_t now_us,
		   int (*cb)(void *ctx, uint64_t id, uint64_t when), void *ctx);

/*
 * Suppression list (queue_suppress.c); each call is one transaction, safe
 * beside a running daemon. Lookup: the global entry, then the one under
 * scope (a sender domain; NULL or "" for none): 1 with *hit_r filled
 * (class, times, qs_scope_len; no address or reason: they live in the
 * transaction; NULL to skip), 0 when neither is present and unexpired at
 * now_s, <0 on error. One read transaction: cheap enough for every RCPT.
 */
int queue_suppress_lookup(struct queue *q, const char *scope, const char *addr, size_t addr_len,
			  uint64_t now_s, struct queue_suppress *hit_r);
/* Add or replace (qs_added, qs_expires as given). -ENAMETOOLONG when the
 * key is too long. */
int queue_suppress_add(struct queue *q, const struct queue_suppress *e);
/* 0, or -ENOENT when there was no such entry. */
int queue_suppress_remove(struct queue *q, const char *scope, const char *addr);
/* Every entry in key order (scope, then address); cb returns non-zero to
 * stop. The entry's strings live until cb returns. */
int queue_suppress_foreach(struct queue *q,
			   int (*cb)(void *ctx, const struct queue_suppress *e), void *ctx);
/* Delete entries expired at now_s; *n_r how many. */
int queue_suppress_purge(struct queue *q, uint64_t now_s, unsigned *n_r);

/* Administration (queue_admin.c); usable while a daemon runs. */
/* How list and show name a recipient's class (qrcpt.bclass): the program
 * sets it once at start; unset, classes print as numbers. */
void queue_admin_set_class_namer(const char *(*name)(uint8_t bclass));
int queue_admin_list(struct queue *q, FILE *out, uint64_t now_us);
int queue_admin_show(struct queue *q, uint64_t id, FILE *out);
int queue_admin_delete(struct queue *q, uint64_t id);
/* Make message id (0: every message) due now; *n_r messages touched.
 * -ENOMEM when the list of every message stopped short (those before are
 * due now). */
int queue_admin_flush(struct queue *q, uint64_t id, uint64_t now_us, unsigned *n_r);
/* Make due now every message whose next attempt lies in [from_us, to_us]
 * (what waited for a suspension that ended at from_us, with its jitter);
 * *n_r messages touched; -ENOMEM as queue_admin_flush. */
int queue_admin_flush_window(struct queue *q, uint64_t from_us, uint64_t to_us, uint64_t now_us,
			     unsigned *n_r);
/* Copy the store with compaction (mdb_env_copy2 MDB_CP_COMPACT) and
 * replace data.mdb with the copy. Needs QUEUE_F_EXCLUSIVE (no daemon).
 * *before_r, *after_r: file sizes in bytes. q is closed on return. */
int queue_admin_compact(struct queue **q, const char *dir, uint64_t *before_r,
			uint64_t *after_r);
/*
 * Walk every database: each record decodes, has its body (of the recorded
 * size, readable to its last byte) and a schedule entry; every schedule
 * entry names a record. Problems are written to out, one a line ("note:"
 * lines are harmless); returns the number of damaged messages (0: sound),
 * or a negative status when LMDB's own structure is damaged.
 */
int queue_admin_check(struct queue *q, FILE *out);
/*
 * The same check, run in a child process so that a damaged file that
 * makes LMDB fault or assert is reported rather than fatal: 0 when the
 * queue in dir is sound (or does not exist yet), -1 with the reason in
 * err when it is damaged beyond use, 1 with a warning in err when only
 * some messages are (the store works; those stay, undeliverable). Call
 * before starting threads.
 */
int queue_check_dir(const char *dir, uint64_t map_size, char *err, size_t errlen);
/*
 * Named blobs beside the messages (queue_shaping.c): the shaping engine's
 * state and the sources' warm-up counters, each a versioned blob its
 * owner encodes. put replaces the blob in its own write transaction (any
 * thread but the committer's; it waits for the committer's transaction);
 * get calls fn with the bytes inside a read transaction (valid only
 * there): 0, -ENOENT when there is none, or another -errno.
 */
int queue_blob_put(struct queue *q, const char *name, const void *data, size_t len);
int queue_blob_get(struct queue *q, const char *name,
		   void (*fn)(void *arg, const void *data, size_t len), void *arg);
/* Number of messages, for tests and metrics. */
int queue_admin_count(struct queue *q, uint64_t *n_r);
/* Visit every stored message (read-only). cb returns non-zero to stop. */
int queue_admin_foreach(struct queue *q,
			int (*cb)(void *ctx, uint64_t id, const struct qrecord *r,
				  const void *body, size_t body_len),
			void *ctx);
/* The same from id from_id on (in id order): pages of a listing. */
int queue_admin_foreach_from(struct queue *q, uint64_t from_id,
			     int (*cb)(void *ctx, uint64_t id, const struct qrecord *r,
				       const void *body, size_t body_len),
			     void *ctx);

#endif
