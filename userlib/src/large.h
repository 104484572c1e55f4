/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * heapdev: the large-block layer (large.c): blocks of growable heaps of
 * HD_LARGE_MIN bytes and more, each in a span of its own.
 *
 *   base + 0     unused
 *   base + 48    16-byte header (kind, span size; requested size)
 *   base + 64    the block, 64-byte aligned as native large blocks are
 *
 * (further in for blocks aligned beyond 64 bytes).  hd_large_alloc() takes
 * the allocator lock itself; the other calls expect it held.
 */
#ifndef HEAPDEV_LARGE_H
#define HEAPDEV_LARGE_H

#include "medium.h"

#define HD_LARGE_HDR	64		/* large span bytes before the block */
#define HD_LCACHE_MAX	4		/* freed large spans kept */
#define HD_LCACHE_BYTES	(32UL << 20)	/* ... at least this many bytes */

/**
 * struct hd_large - a large block in its own span
 * @sp: the span
 * @n: requested size
 * @off: offset of the block from the span's base (HD_LARGE_HDR, or more
 *	for a block aligned beyond 64 bytes)
 * @committed: bytes committed from the page holding the block's header
 *	(the span's base for unaligned blocks)
 * @since: when it was freed into the heap's cache of large spans
 */
struct hd_large {
	struct hd_span sp;
	size_t n;
	size_t off;
	size_t committed;
	uint64_t since;
};

/**
 * struct hd_lheap - a heap's large blocks
 * @c: the heap
 * @larges: live large blocks in allocation order
 * @larges_tail: the last one
 * @lcache: freed spans kept for reuse, newest first
 * @lcache_bytes: bytes committed in them
 * @nlcache: spans in @lcache
 * @bytes: bytes requested by the live blocks
 * @n: live blocks
 */
struct hd_lheap {
	struct hd_core *c;
	struct hd_span *larges, *larges_tail;
	struct hd_span *lcache;
	size_t lcache_bytes;
	uint32_t nlcache;
	size_t bytes;
	size_t n;
};

HD_HIDDEN void *hd_large_alloc(struct hd_lheap *h, size_t n, size_t align,
			       uint32_t flags);
HD_HIDDEN int hd_large_check(const struct hd_lheap *h, struct hd_large *lg,
			     uintptr_t p);
HD_HIDDEN void hd_large_free(struct hd_lheap *h, struct hd_large *lg);
HD_HIDDEN void *hd_large_realloc(struct hd_lheap *h, struct hd_large *lg,
				 size_t n, uint32_t flags);
HD_HIDDEN void hd_larges_free_all(struct hd_lheap *h, bool unmap);
HD_HIDDEN void hd_lcache_trim(struct hd_lheap *h, bool all);

#endif /* HEAPDEV_LARGE_H */
