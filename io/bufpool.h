/*
 * bufpool: a worker's receive buffers and the provided-buffer ring the
 * kernel picks them from (IORING_REGISTER_PBUF_RING).
 *
 * Multishot receives take a buffer from the ring only when data arrives,
 * so an idle connection owns no receive memory. A buffer handed to the
 * protocol starts with one reference; whoever keeps slices of it (a body
 * waiting for its queue commit) takes more. At zero it goes back to the
 * ring, or to a free list once the ring holds its target. A buffer never
 * moves while referenced. When a buffer leaves the ring held, a fresh one
 * is allocated (up to the configured maximum) so receives keep flowing.
 * Single-threaded: only the owning worker touches it; other threads may
 * read the bytes of a buffer they were given a reference to, never
 * change its count.
 *
 * Keeping is bounded: an owner that would hold a buffer past the
 * callback (a body until its commit, input queued behind one) keeps it
 * only while bufpool_low() is false, and copies the bytes into a heap
 * buffer (bufpool_alloc_heap) otherwise, so the ring always refills.
 * Heap buffers carry the same header and reference count and are freed
 * at zero; they never enter the ring.
 */
#ifndef RINGMTA_BUFPOOL_H
#define RINGMTA_BUFPOOL_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <liburing.h>

#define IO_BUF_F_HEAP	0x01u	/* from bufpool_alloc_heap, not the pool */

struct io_buf {
	uint32_t ib_refs;
	uint16_t ib_bid;	/* pool buffers only */
	uint16_t ib_flags;	/* IO_BUF_F_* */
	uint32_t ib_size;	/* bytes at ib_data */
	uint32_t ib_pad;
	char ib_data[];
};

struct bufpool {
	struct io_uring_buf_ring *bp_ring;
	struct io_buf **bp_bufs;	/* by bid; NULL until allocated */
	uint16_t *bp_free;		/* bids allocated, not in the ring */
	uint32_t bp_nfree;
	uint32_t bp_size;		/* bytes per buffer */
	uint32_t bp_max;		/* ring entries = most buffers owned */
	uint32_t bp_allocated;		/* buffers that exist */
	uint32_t bp_in_ring;		/* buffers the kernel may fill */
	uint32_t bp_target;		/* how many we keep in the ring */
	uint32_t bp_added;		/* added since the last publish */
	uint16_t bp_bgid;
};

/* Register the ring with group id bgid. Returns 0 or -errno. */
int bufpool_init(struct bufpool *bp, struct io_uring *ring, uint16_t bgid,
		 uint32_t size, uint32_t max, uint32_t target);
void bufpool_destroy(struct bufpool *bp, struct io_uring *ring);

/* The buffer a completion named, now owned by the caller with one ref. */
struct io_buf *bufpool_take(struct bufpool *bp, uint16_t bid);

/* A buffer for the owner to fill (decrypted TLS input), one reference;
 * NULL when the pool is at its maximum. Recycled like any other. */
struct io_buf *bufpool_alloc(struct bufpool *bp);

/* A buffer of size bytes from the heap, one reference, for bytes an owner
 * keeps that should not hold a pool buffer; NULL without memory. */
struct io_buf *bufpool_alloc_heap(size_t size);

/* True when owners hold half the pool or more outside the ring: keep no
 * more pool buffers, copy instead. */
static inline bool bufpool_low(const struct bufpool *bp)
{
	return bp->bp_allocated - bp->bp_in_ring - bp->bp_nfree >= bp->bp_max / 2;
}

static inline void io_buf_ref(struct io_buf *b) { b->ib_refs++; }
/* Drop a reference; at zero the buffer is recycled. */
void bufpool_unref(struct bufpool *bp, struct io_buf *b);

/* Top the ring up to its target and make added buffers visible to the
 * kernel; once per loop iteration. */
void bufpool_publish(struct bufpool *bp);

#endif
