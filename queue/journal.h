/*
 * journal: the append-only segment files in front of LMDB (README
 * "Queue journal"). This file layer knows records, segments and syncs; it
 * knows nothing of LMDB or of what a record means (queue_journal.c).
 *
 * Layout: queue_dir/journal/<16 hex digits>.seg, numbered in write
 * order, each preallocated (fallocate) and mapped read-only for readers;
 * queue_dir/journal/spare.<n>: segments done with, kept to be written
 * again (an overwrite of allocated blocks needs no metadata in the sync).
 *
 * A record: a 32-byte header (magic, CRC-32C, the segment's number,
 * payload length, type, id), the payload, zero padding to 8 bytes. Every
 * segment begins with a JNL_SEG record holding 8 random bytes, the
 * segment's salt; every other record's CRC covers the salt, then the
 * rest of its header and its payload. A reader takes records in order;
 * at one whose magic, segment number, length or CRC is wrong it scans on
 * (8 bytes at a time) for the next valid one:
 *  - none: the end of the segment (a torn tail, never acknowledged: its
 *    group's sync did not return; zeros; what a spare held before, under
 *    another segment number and salt);
 *  - one: the bad record was damage (a torn group has nothing valid
 *    after it); it is reported, kept as damaged-<seq>-<offset>, and the
 *    replay goes on. The salt makes this scan safe: a record hidden in a
 *    message body cannot carry a valid CRC without it.
 *
 * Writes are grouped: jnl_add() queues records (their bytes are not
 * copied: the iovecs must stay valid until jnl_commit()), jnl_commit()
 * ends the group with a JNL_PAD to the next page boundary, writes them
 * with pwritev() and fdatasync()s each segment it touched. Replay skips
 * JNL_PAD records (its callback never sees them).
 *
 * Threads: the writer (jnl_add, jnl_commit, jnl_recycle) is one thread,
 * the committer. Readers hold a segment by jnl_seg_ref() and may read its
 * map up to what was committed, from any thread, until jnl_seg_unref().
 */
#ifndef RINGMTA_JOURNAL_H
#define RINGMTA_JOURNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define JNL_HDR_SIZE 32u
#define JNL_SEG_SIZE (64u << 20)	/* a new segment's size, unless a
					   record needs more */

enum jnl_type {
	JNL_MSG = 1,	/* a new message: u32 record length, record, body */
	JNL_DEL = 2,	/* the message left the queue: no payload */
	JNL_SEG = 3,	/* a segment's first record: its 8-byte salt */
	JNL_PAD = 4,	/* zeros to a page boundary: a group's last record */
};

/* Each group ends on a JNL_PAGE boundary (a JNL_PAD record fills up to it,
 * room permitting): the next group starts a page of its own, so each
 * fdatasync writes a page once, where without the pad the page a group
 * ended in was written again by the next group's sync. */
#define JNL_PAGE 4096u

/* The end of each segment kept for JNL_DEL records: a full disk that
 * refuses a new segment (and so new mail) still lets deliveries leave. */
#define JNL_DEL_RESERVE (256u << 10)

struct jnl_seg {
	struct jnl_seg *js_next;	/* in write order */
	uint64_t js_seq;
	int js_fd;
	const unsigned char *js_map;	/* js_size bytes, read-only */
	uint64_t js_size;
	uint64_t js_end;		/* writer: bytes queued or written */
	unsigned char js_salt[8];	/* see above; valid when js_salted */
	bool js_salted;
	bool js_damaged;		/* renamed damaged-*.seg: kept as it is */
	_Atomic unsigned js_refs;	/* readers (open bodies, overlay entries) */
};

struct jnl;

/* A record's place: its segment and the offset of its payload there. */
struct jnl_loc {
	struct jnl_seg *jl_seg;
	uint64_t jl_off;
};

/* One record as read back (jnl_replay): pointers into the segment's map. */
struct jnl_rec {
	uint8_t jr_type;
	uint64_t jr_id;
	const unsigned char *jr_data;
	uint32_t jr_len;
	struct jnl_loc jr_loc;
	uint64_t jr_next_off;		/* where the next record would start */
};

/* Open (creating) dir; every segment file found is opened and mapped.
 * -errno with err filled. ro: a reader beside the writer (a tool beside
 * the daemon): each segment is held with a shared flock, which the
 * writer's recycling respects; one recycled meanwhile is left out (it
 * lies before the stored position); nothing is written. */
int jnl_open(struct jnl **j_r, const char *dir, bool ro, char *err, size_t errlen);
void jnl_close(struct jnl **j);

/* Every valid record from (seq, off) on, in order; cb returns non-zero to
 * stop. The position after the last valid record in *end_seq_r /
 * *end_off_r; damage found (a valid record after a bad one) is logged and
 * counted in *damaged_r. Before any jnl_add. */
int jnl_replay(struct jnl *j, uint64_t seq, uint64_t off,
	       int (*cb)(void *ctx, const struct jnl_rec *r), void *ctx,
	       uint64_t *end_seq_r, uint64_t *end_off_r, unsigned *damaged_r);
/* After a replay: write from a new segment on, numbered min_seq or more
 * (above the stored position's, whose segment may be gone: after a clean
 * stop every segment is a spare). None of the old ones is written again;
 * they are recycled when released. */
void jnl_start_after_replay(struct jnl *j, uint64_t min_seq);

/* Queue one record of parts; *loc_r where its payload will lie. 0, or
 * -errno (no room for a segment: -ENOSPC). A JNL_MSG leaves the last
 * JNL_DEL_RESERVE bytes of a segment to JNL_DEL records. */
int jnl_add(struct jnl *j, uint8_t type, uint64_t id, const struct iovec *parts,
	    unsigned nparts, struct jnl_loc *loc_r);
/* Write and sync what was queued. On an error the queued records are
 * dropped and the segment they went to is not written again (a new one is
 * started): what was written may or may not be there. */
int jnl_commit(struct jnl *j);
/* Drop what was queued (nothing written). */
void jnl_abort(struct jnl *j);
/* Where the next record goes: the position a checkpoint stores. */
void jnl_position(const struct jnl *j, uint64_t *seq_r, uint64_t *off_r);
/* Bytes written since (seq, off) (an estimate across segments). */
uint64_t jnl_bytes_since(const struct jnl *j, uint64_t seq, uint64_t off);
/* Recycle every segment before seq that no reader holds (writer): no
 * reference in this process, no shared flock from another; a held one is
 * skipped and tried again the next time. */
void jnl_recycle(struct jnl *j, uint64_t before_seq);
/* Any segment file present (after a crash: records to replay?). */
bool jnl_dir_has_segments(const char *dir);

static inline void jnl_seg_ref(struct jnl_seg *s)
{
	atomic_fetch_add(&s->js_refs, 1);
}

static inline void jnl_seg_unref(struct jnl_seg *s)
{
	atomic_fetch_sub(&s->js_refs, 1);
}

/* qsort(3) order of uint64_t values (segment numbers, queue ids). */
int jnl_u64_cmp(const void *a, const void *b);

/* CRC-32C (Castagnoli), as records carry it; crc 0 to start. */
uint32_t jnl_crc32c(uint32_t crc, const void *buf, size_t len);
/* A record's CRC: over the salt (NULL for a JNL_SEG), the header from its
 * byte 8 on, and the payload. */
uint32_t jnl_rec_crc(const unsigned char salt[8], const unsigned char *hdr,
		     const struct iovec *parts, unsigned nparts);

/* Test hook: RINGMTA_TEST_JOURNAL_TEAR=N makes the N-th group written
 * stop half way and the process kill itself (kill -9 in a segment write). */
void jnl_test_hooks(struct jnl *j);

#endif
