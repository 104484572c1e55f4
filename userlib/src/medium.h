/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * heapdev: the medium-block layer: segments and a two-level segregated
 * fit (TLSF) allocator over them (segment.c, medium.c).
 *
 * A segment is a span of a heap (page.h) laid out as
 *
 *   base + 0x000   signature (2 words, encoded)
 *   base + 0x7F0   header of the first block; its data at base + 0x800
 *   ...            blocks and gaps, back to back, up to the end
 *
 * A block is a 16-byte header (kind, flags, size; requested size) and its
 * data.  A free block also holds two free-list links and a footer (its
 * size, in its last word) so that the next block can find it.  A gap is a
 * pseudo-block for uncommitted pages: its 16-byte header sits in the last
 * bytes of a committed page, the pages after it up to gap->end are
 * uncommitted, and the next block starts exactly at gap->end.  A run of
 * small blocks (small.h) is a medium block of kind HD_K_RUN whose data
 * starts on a page boundary.
 *
 * Every function here expects the allocator lock (struct hd_core.mlock)
 * to be held by the caller, unless the heap is HEAP_NO_SERIALIZE.
 */
#ifndef HEAPDEV_MEDIUM_H
#define HEAPDEV_MEDIUM_H

#include "page.h"

#define HD_SEG_HDR	0x800		/* segment bytes before the first block */
#define HD_HDR		16		/* medium block header */
#define HD_MIN_BLOCK	48		/* header + two links + footer */
#define HD_UNUSED_MAX	80		/* a busy block has fewer unused */
#define HD_GROW_SLACK	64		/* taken by a block growing in place */
#define HD_LARGE_MIN	0xFD001		/* growable: requests >= this are large */
#define HD_FIXED_LIMIT	0xFFFF0		/* fixed: requests >= this fail */
#define HD_SEG_FIRST	(4UL << 20)	/* first segment of a growable heap */
#define HD_SEG_MAX	(64UL << 20)	/* growth step cap */

/* Decommit policy (see DESIGN.md). */
#define HD_DECOMMIT_BLOCK	(64UL << 10)	/* whole free pages in a block */
#define HD_DECOMMIT_SLACK	(64UL << 10)	/* free committed bytes kept */
#define HD_DECOMMIT_DELAY	100000000ULL	/* ns above the slack */
#define HD_DECOMMIT_NOW		(4UL << 20)	/* no delay below this */

/* Block kinds, in the low nibble of a header word. */
enum {
	HD_K_MBUSY = 1,		/* medium block in use */
	HD_K_MFREE = 2,		/* medium block on a free list */
	HD_K_GAP = 3,		/* uncommitted pages (pseudo-block) */
	HD_K_RUN = 4,		/* medium block holding a run of small blocks */
	HD_K_LARGE = 7,		/* large block (large.h) */
	HD_K_FOOT = 15,		/* footer of a free block */
};

#define HD_F_PREV_FREE	0x10	/* the previous block is free (footer valid) */
#define HD_F_PREV_GAP	0x20	/* the previous block is a gap */
#define HD_MAGIC	0xA53CULL
#define HD_MAGIC2	0x6B9E15ULL
#define HD_FREE_W1	(hd_w1(0) | 0xF5EEULL)

/* TLSF geometry: 16 linear bins below 256 bytes, 16 bins per power of 2. */
#define HD_SL_SHIFT	4
#define HD_SL		(1U << HD_SL_SHIFT)
#define HD_FL		34

/* Word 0 of medium headers, gap headers and footers. */
static inline uint64_t hd_w0(unsigned int kind, unsigned int flags,
			     uint64_t size)
{
	return kind | flags | (HD_MAGIC << 8) | ((size >> 4) << 24);
}

static inline bool hd_w0_ok(uint64_t w)
{
	return ((w >> 8) & 0xFFFF) == HD_MAGIC;
}

static inline unsigned int hd_w0_kind(uint64_t w)
{
	return w & 0xF;
}

static inline unsigned int hd_w0_flags(uint64_t w)
{
	return w & 0xF0;
}

static inline uint64_t hd_w0_size(uint64_t w)
{
	return (w >> 24) << 4;
}

/* Word 1 of a busy medium block: the requested size. */
static inline uint64_t hd_w1(uint64_t n)
{
	return n | (HD_MAGIC2 << 40);
}

static inline uint64_t hd_w1_size(uint64_t w1)
{
	return w1 & ((1ULL << 40) - 1);
}

/* An uncommitted range: header at @start, pages [start + 16, end). */
struct hd_gap {
	uintptr_t start;
	uintptr_t end;
};

/**
 * struct hd_seg - a segment
 * @sp: the span
 * @area: address of the first block header
 * @end: end of the mapping
 * @committed: bytes committed in the segment
 * @nbusy: blocks in use (medium blocks and runs)
 * @gaps: uncommitted ranges sorted by address
 * @ngaps: entries in @gaps
 * @gcap: capacity of @gaps
 * @cmap: one bit per page, set when the page is committed (the same
 *	information as @gaps, answered in O(1))
 * @index: region index reported by walks
 */
struct hd_seg {
	struct hd_span sp;
	uintptr_t area;
	uintptr_t end;
	size_t committed;
	size_t nbusy;
	struct hd_gap *gaps;
	uint32_t ngaps;
	uint32_t gcap;
	uint64_t *cmap;
	uint32_t index;
};

/**
 * struct hd_mheap - a heap's segments and medium blocks
 * @c: the heap
 * @fl_map: first-level bitmap of non-empty bins
 * @sl_map: second-level bitmaps
 * @bins: heads of the free lists
 * @free_bytes: bytes of the free blocks
 * @trim_since: when the free bytes went above the slack, or 0
 * @trim_last: when the last trim happened
 * @trim_floor: free bytes the last trim could not decommit (they are in
 *	blocks without enough whole pages), lowered as they are allocated
 * @bytes: bytes requested by busy medium blocks
 * @blocks: busy medium blocks
 * @segs: segments in creation order
 * @segs_tail: last segment
 * @nsegs: segments
 * @next_seg: size of the next segment of a growable heap
 */
struct hd_mheap {
	struct hd_core *c;
	uint64_t fl_map;
	uint32_t sl_map[HD_FL];
	uintptr_t bins[HD_FL][HD_SL];
	size_t free_bytes;
	uint64_t trim_since;
	uint64_t trim_last;
	size_t trim_floor;
	size_t bytes;
	size_t blocks;
	struct hd_span *segs, *segs_tail;
	uint32_t nsegs;
	size_t next_seg;
};

/* ---- segments (segment.c) ---- */

/* A warm heap's first segment, for hd_seg_new(). */
struct hd_seg_warm {
	uintptr_t base;
	size_t committed;
};

HD_HIDDEN struct hd_seg *hd_seg_new(struct hd_mheap *h, size_t size,
				    size_t commit,
				    const struct hd_seg_warm *warm, int *errp);
HD_HIDDEN bool hd_seg_prefix_committed(const struct hd_seg *s);
HD_HIDDEN bool hd_seg_committed(const struct hd_seg *s, uintptr_t addr);
HD_HIDDEN bool hd_seg_sig_ok(const struct hd_mheap *h, const struct hd_seg *s);
HD_HIDDEN struct hd_gap *hd_gap_find(struct hd_seg *s, uintptr_t start);
HD_HIDDEN int hd_grow(struct hd_mheap *h, size_t need);
HD_HIDDEN int hd_commit_gap(struct hd_mheap *h, struct hd_seg *s,
			    struct hd_gap *g, size_t bytes);
HD_HIDDEN size_t hd_decommit_free(struct hd_mheap *h, struct hd_seg *s,
				  uintptr_t b, size_t size, size_t min);
HD_HIDDEN void hd_release_empty_segments(struct hd_mheap *h, bool all);
HD_HIDDEN void hd_segs_unmap(struct hd_mheap *h);
HD_HIDDEN void hd_segs_free(struct hd_mheap *h);
HD_HIDDEN void hd_segs_set_handle(struct hd_mheap *h, uintptr_t handle);

/* The segment of @h holding @p, or NULL. */
static inline struct hd_seg *hd_seg_of(const struct hd_mheap *h, uintptr_t p)
{
	struct hd_span *sp = hd_span_of(p);

	if (!sp || sp->heap != h->c->heap || sp->kind == HD_SPAN_LARGE)
		return NULL;
	return (struct hd_seg *)sp;
}

/* ---- medium blocks (medium.c) ---- */

HD_HIDDEN void hd_tlsf_insert(struct hd_mheap *h, uintptr_t b, size_t size);
HD_HIDDEN void hd_tlsf_remove(struct hd_mheap *h, uintptr_t b, size_t size);
HD_HIDDEN void hd_set_prev(struct hd_mheap *h, struct hd_seg *s, uintptr_t b,
			   unsigned int set, unsigned int clear);
HD_HIDDEN void hd_make_free(struct hd_mheap *h, struct hd_seg *s, uintptr_t b,
			    size_t size, unsigned int flags);
HD_HIDDEN uintptr_t hd_free_coalesce(struct hd_mheap *h, struct hd_seg *s,
				     uintptr_t b, size_t *size,
				     unsigned int *flags);
HD_HIDDEN bool hd_free_block_ok(const struct hd_mheap *h, uintptr_t x);
HD_HIDDEN void *hd_medium_alloc(struct hd_mheap *h, size_t n, size_t align,
				uint32_t flags);
HD_HIDDEN uintptr_t hd_medium_alloc_block(struct hd_mheap *h, size_t bsize,
					  size_t align, unsigned int kind,
					  struct hd_seg **segp);
HD_HIDDEN void hd_medium_release_block(struct hd_mheap *h, struct hd_seg *s,
				       uintptr_t b);
HD_HIDDEN int hd_medium_check(const struct hd_mheap *h, struct hd_seg *s,
			      uintptr_t p, size_t *n);
HD_HIDDEN void hd_medium_free(struct hd_mheap *h, struct hd_seg *s,
			      uintptr_t p);
HD_HIDDEN void *hd_medium_realloc(struct hd_mheap *h, struct hd_seg *s,
				  uintptr_t p, size_t n);
HD_HIDDEN void *hd_medium_alloc_room(struct hd_mheap *h, size_t n,
				     size_t room);
HD_HIDDEN void hd_medium_trim(struct hd_mheap *h, bool all);
HD_HIDDEN size_t hd_largest_free(struct hd_mheap *h);
HD_HIDDEN size_t hd_medium_slack(const struct hd_mheap *h);

#endif /* HEAPDEV_MEDIUM_H */
