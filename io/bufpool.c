/*
 * bufpool.c: see bufpool.h. Memory for buffers comes from malloc
 * (jemalloc in the product) on demand and is kept for reuse.
 */
#include "io/bufpool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static struct io_buf *bp_alloc(struct bufpool *bp)
{
	struct io_buf *b;
	uint16_t bid;

	if (bp->bp_nfree > 0) {
		bid = bp->bp_free[--bp->bp_nfree];
		return bp->bp_bufs[bid];
	}
	if (bp->bp_allocated >= bp->bp_max)
		return NULL;
	b = malloc(sizeof(*b) + bp->bp_size);
	if (b == NULL)
		return NULL;
	b->ib_refs = 0;
	b->ib_flags = 0;
	b->ib_size = bp->bp_size;
	b->ib_bid = (uint16_t)bp->bp_allocated;
	bp->bp_bufs[b->ib_bid] = b;
	bp->bp_allocated++;
	return b;
}

static void bp_ring_add(struct bufpool *bp, struct io_buf *b)
{
	io_uring_buf_ring_add(bp->bp_ring, b->ib_data, bp->bp_size, b->ib_bid,
			      io_uring_buf_ring_mask(bp->bp_max), (int)bp->bp_added);
	bp->bp_added++;
	bp->bp_in_ring++;
}

void bufpool_publish(struct bufpool *bp)
{
	/* Buffers still held by bodies left the ring low: top it up. */
	while (bp->bp_in_ring < bp->bp_target) {
		struct io_buf *b = bp_alloc(bp);

		if (b == NULL)
			break;
		bp_ring_add(bp, b);
	}
	if (bp->bp_added == 0)
		return;
	io_uring_buf_ring_advance(bp->bp_ring, (int)bp->bp_added);
	bp->bp_added = 0;
}

int bufpool_init(struct bufpool *bp, struct io_uring *ring, uint16_t bgid,
		 uint32_t size, uint32_t max, uint32_t target)
{
	struct io_uring_buf_reg reg;
	size_t ring_bytes;
	void *mem;
	int ret;

	memset(bp, 0, sizeof(*bp));
	if (max == 0 || (max & (max - 1)) != 0 || max > 32768 || target > max)
		return -EINVAL;
	bp->bp_size = size;
	bp->bp_max = max;
	bp->bp_target = target;
	bp->bp_bgid = bgid;
	bp->bp_bufs = calloc(max, sizeof(*bp->bp_bufs));
	bp->bp_free = calloc(max, sizeof(*bp->bp_free));
	if (bp->bp_bufs == NULL || bp->bp_free == NULL)
		return -ENOMEM;
	ring_bytes = max * sizeof(struct io_uring_buf);
	mem = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE,
		   MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (mem == MAP_FAILED)
		return -errno;
	bp->bp_ring = mem;
	io_uring_buf_ring_init(bp->bp_ring);
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (unsigned long)mem;
	reg.ring_entries = max;
	reg.bgid = bgid;
	ret = io_uring_register_buf_ring(ring, &reg, 0);
	if (ret < 0)
		return ret;
	for (uint32_t i = 0; i < target; i++) {
		struct io_buf *b = bp_alloc(bp);

		if (b == NULL)
			return -ENOMEM;
		bp_ring_add(bp, b);
	}
	bufpool_publish(bp);
	return 0;
}

void bufpool_destroy(struct bufpool *bp, struct io_uring *ring)
{
	if (bp->bp_ring != NULL) {
		io_uring_unregister_buf_ring(ring, bp->bp_bgid);
		munmap(bp->bp_ring, bp->bp_max * sizeof(struct io_uring_buf));
	}
	for (uint32_t i = 0; i < bp->bp_allocated; i++)
		free(bp->bp_bufs[i]);
	free(bp->bp_bufs);
	free(bp->bp_free);
	memset(bp, 0, sizeof(*bp));
}

struct io_buf *bufpool_take(struct bufpool *bp, uint16_t bid)
{
	struct io_buf *b = bp->bp_bufs[bid];

	bp->bp_in_ring--;
	b->ib_refs = 1;
	return b;
}

struct io_buf *bufpool_alloc(struct bufpool *bp)
{
	struct io_buf *b = bp_alloc(bp);

	if (b != NULL)
		b->ib_refs = 1;
	return b;
}

struct io_buf *bufpool_alloc_heap(size_t size)
{
	struct io_buf *b;

	if (size > UINT32_MAX)
		return NULL;
	b = malloc(sizeof(*b) + size);
	if (b == NULL)
		return NULL;
	b->ib_refs = 1;
	b->ib_bid = 0;
	b->ib_flags = IO_BUF_F_HEAP;
	b->ib_size = (uint32_t)size;
	b->ib_pad = 0;
	return b;
}

void bufpool_unref(struct bufpool *bp, struct io_buf *b)
{
	if (--b->ib_refs > 0)
		return;
	if (b->ib_flags & IO_BUF_F_HEAP) {
		free(b);
		return;
	}
	if (bp->bp_in_ring < bp->bp_target) {
		bp_ring_add(bp, b);
	} else {
		bp->bp_free[bp->bp_nfree++] = b->ib_bid;
	}
}
