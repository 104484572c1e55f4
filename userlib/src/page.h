/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * heapdev: the page layer (page.c).
 *
 * A heap is a set of *spans*, 4 MiB-aligned mappings of parts of its
 * backend window: segments (medium.h) and large blocks (large.h).  Every
 * 4 MiB granule of a span is registered in a process-wide flat *page map*
 * that resolves any address, without touching it, to a *granule
 * descriptor*: the handle of the heap (while calls may use it), the span,
 * and one entry per 4 KiB page naming the run of small blocks that covers
 * the page (small.h), or the empty run.  So a free finds its heap and its
 * run in two dependent loads.
 *
 * The page layer also owns the heap's backend heap, its window (which
 * ranges are mapped) and the commit and decommit calls, and struct
 * hd_core, what every block layer needs to know about its heap.
 */
#ifndef HEAPDEV_PAGE_H
#define HEAPDEV_PAGE_H

#include "backend.h"

#define HD_GRAN_PAGES	(HD_CHUNK / HD_PAGE)	/* 1024 */

struct hd_run;		/* small.h: the page layer only stores pointers */
struct hd_heap;		/* heap.h: the owner of spans */

/*
 * Storage of the empty run (all fields zero: no slot, no owner): the
 * page entry of every page outside runs.  small.h gives it its type.
 */
HD_HIDDEN extern unsigned char hd_empty_run[512];
#define HD_EMPTY_RUN	((struct hd_run *)(void *)hd_empty_run)

/* Span kinds. */
enum { HD_SPAN_SEG = 1, HD_SPAN_LARGE = 2, HD_SPAN_FSEG = 3 };

/**
 * struct hd_span - a mapped part of a heap's window
 * @kind: HD_SPAN_*
 * @heap: owner
 * @handle: the heap's handle
 * @base: address of the mapping (4 MiB aligned)
 * @size: bytes mapped
 * @woff: offset of the mapping in the heap's window
 * @seq: creation number, for the order of heap walks
 * @next: next span of the same kind in the heap
 * @prev: previous span of the same kind
 *
 * Span structs are never given back (a call that looked a pointer up just
 * before its span went away may still read the struct): the block layers
 * take them from hd_span_get() and give them back with hd_span_put().
 */
struct hd_span {
	int kind;
	struct hd_heap *heap;
	uintptr_t handle;
	uintptr_t base;
	size_t size;
	uint64_t woff;
	uint64_t seq;
	struct hd_span *next, *prev;
};

/**
 * struct hd_gran - what the page map knows of a 4 MiB granule
 * @handle: the handle of the span's heap while calls may free into it; 0
 *	from the moment HeapDestroy claims the heap, and while a pause holds
 *	the heap (heap.h)
 * @span: the span
 * @pnext: next descriptor of the pool
 * @dirty: some entry of @ptab may name a run (the page map mutex, or the
 *	span's owner while it is registered): a descriptor taken from the
 *	pool is refilled only then, so that large blocks, which never have
 *	runs, do not rewrite 8 KiB of entries each time they are mapped
 * @ptab: for each 4 KiB page, the run covering it, or HD_EMPTY_RUN
 *
 * Never given back either: frees read them without a lock.
 */
struct hd_gran {
	_Atomic uintptr_t handle;
	_Atomic(struct hd_span *) span;
	struct hd_gran *pnext;
	bool dirty;
	_Atomic(struct hd_run *) ptab[HD_GRAN_PAGES];
};

/*
 * The flat page map: 2^25 granule offsets, one per 4 MiB of the 47-bit
 * address space (256 MiB of address space reserved with MAP_NORESERVE
 * when the first span is registered; only the pages that hold entries
 * are ever backed).  An entry is the descriptor's address minus that of
 * hd_null_gran, so that the zero of an unused entry is the null granule
 * (handle 0, no span, every page the empty run).  @hd_pm_limit is 0
 * until the table exists.
 */
#define HD_PM_ENTRIES	(1UL << (47 - HD_CHUNK_SHIFT))

HD_HIDDEN extern _Atomic uintptr_t *hd_pm;
HD_HIDDEN extern _Atomic uintptr_t hd_pm_limit;
HD_HIDDEN extern struct hd_gran hd_null_gran;

/* The granule descriptor of @p: lock-free, never dereferences @p. */
static inline struct hd_gran *hd_gran_of(uintptr_t p)
{
	uintptr_t i = p >> HD_CHUNK_SHIFT;

	if (unlikely(i >= atomic_load_explicit(&hd_pm_limit,
					       memory_order_acquire)))
		return &hd_null_gran;
	return (struct hd_gran *)((uintptr_t)&hd_null_gran +
				  atomic_load_explicit(&hd_pm[i],
						       memory_order_acquire));
}

/* The run entry of the page holding @p in its granule @g. */
static inline struct hd_run *hd_gran_run(struct hd_gran *g, uintptr_t p)
{
	return atomic_load_explicit(&g->ptab[(p >> HD_PAGE_SHIFT) &
					     (HD_GRAN_PAGES - 1)],
				    memory_order_acquire);
}

/* The span containing @p, or NULL. */
static inline struct hd_span *hd_gran_span(struct hd_gran *g)
{
	return atomic_load_explicit(&g->span, memory_order_acquire);
}

static inline struct hd_span *hd_span_of(uintptr_t p)
{
	struct hd_span *sp = hd_gran_span(hd_gran_of(p));

	if (!sp || p - sp->base >= sp->size)
		return NULL;
	return sp;
}

HD_HIDDEN int hd_span_register(struct hd_span *sp);
HD_HIDDEN void hd_span_unregister(struct hd_span *sp);
HD_HIDDEN void hd_span_set_handle(struct hd_span *sp, uintptr_t handle);
HD_HIDDEN void hd_pages_set_run(uintptr_t addr, size_t len,
				struct hd_run *run);
HD_HIDDEN void *hd_span_get(int kind, size_t size);
HD_HIDDEN void hd_span_put(struct hd_span *sp);
HD_HIDDEN void hd_page_atfork_child(void);

struct hd_extent {
	uint64_t start;
	uint64_t end;
};

/**
 * struct hd_core - what every block layer knows of its heap
 * @handle: the heap's handle (base of its first segment)
 * @flags: creation flags (HEAPDEV_NO_SERIALIZE, HEAPDEV_EXEC, the Win32
 *	HEAP_GENERATE_EXCEPTIONS bit, HD_HF_FIXED)
 * @fixed: a fixed-size heap
 * @secret: key of block headers (XOR with the header's address)
 * @lsecret: key of free-list links
 * @heap: the heap (span owner)
 * @lock: the heap lock (the Win32 critical section: recursive, taken by
 *	HeapLock, and by every call on medium and large blocks, walks and
 *	validation), so that HeapLock holds them off
 * @mlock: the allocator lock: segments, medium blocks, large blocks,
 *	commits, run descriptors (taken after @lock; carving a run of small
 *	blocks takes only this one, so that small blocks do not wait for
 *	HeapLock, as on Windows)
 * @bh: the backend heap
 * @ext: free ranges of the window (growable heaps), sorted
 * @next_ext: entries in @ext
 * @ext_cap: capacity of @ext
 * @reserved: bytes of address space mapped
 * @seq: last span sequence number
 */
struct hd_core {
	uintptr_t handle;
	uint32_t flags;
	bool fixed;
	bool lazy;	/* large blocks: pages exist from first touch on */
	uint64_t secret;
	uint64_t lsecret;
	struct hd_heap *heap;
	struct hd_lock lock;
	struct hd_lock mlock;
	struct hd_bheap bh;
	struct hd_extent *ext;
	uint32_t next_ext;
	uint32_t ext_cap;
	size_t reserved;
	uint64_t seq;
};

HD_HIDDEN int hd_core_init(struct hd_core *c, uint64_t window);
HD_HIDDEN void hd_core_free(struct hd_core *c);
HD_HIDDEN int hd_window_alloc(struct hd_core *c, uint64_t size,
			      uint64_t *off);
HD_HIDDEN void hd_window_free(struct hd_core *c, uint64_t off,
			      uint64_t size);
HD_HIDDEN int hd_commit(struct hd_core *c, uintptr_t addr, uint64_t woff,
			size_t len, bool lazy);
HD_HIDDEN int hd_decommit(struct hd_core *c, uintptr_t addr, uint64_t woff,
			  size_t len);

/* Whether large blocks commit lazily (heapdev_set_lazy_commit() may race). */
static inline bool hd_lazy(const struct hd_core *c)
{
	return __atomic_load_n(&c->lazy, __ATOMIC_RELAXED);
}

/* Headers are XOR-encoded with the heap's secret and their own address. */
static inline uint64_t hd_key(const struct hd_core *c, uintptr_t addr)
{
	return c->secret ^ addr;
}

static inline uint64_t hd_rd(const struct hd_core *c, uintptr_t addr)
{
	return *(const uint64_t *)addr ^ hd_key(c, addr);
}

static inline void hd_wr(const struct hd_core *c, uintptr_t addr, uint64_t v)
{
	*(uint64_t *)addr = v ^ hd_key(c, addr);
}

static inline uintptr_t hd_rdlink(const struct hd_core *c, uintptr_t addr)
{
	return *(const uintptr_t *)addr ^ c->lsecret ^ addr;
}

static inline void hd_wrlink(const struct hd_core *c, uintptr_t addr,
			     uintptr_t v)
{
	*(uintptr_t *)addr = v ^ c->lsecret ^ addr;
}

#endif /* HEAPDEV_PAGE_H */
