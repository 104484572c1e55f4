/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * heapdev: internal structures of the userspace library.
 *
 * A heap is a set of spans of its kernel window mapped into the process:
 *
 *   segments   4 MiB-aligned mappings managed by a two-level segregated fit
 *              allocator (TLSF) with 16-byte block headers and boundary
 *              tags; uncommitted page ranges inside a segment are "gap"
 *              pseudo-blocks of the same physical block chain;
 *   runs       medium blocks carved out of a segment, page aligned, and
 *              cut into equal slots with 8-byte headers for one size class
 *              (the low-fragmentation heap, LFH);
 *   large      blocks of growable heaps above HD_LARGE_MIN, each in its own
 *              4 MiB-aligned committed span.
 *
 * Every span is registered in a process-wide page map (4 MiB granules), so
 * that any pointer can be resolved to its span and heap without touching
 * memory that may be unmapped or uncommitted.  All metadata except block
 * headers, footers and free-list links lives outside the heap's memory.
 *
 * Locking: heap->lock (the Win32 heap lock, recursive) protects segments,
 * TLSF, gaps, large spans and commit state; heap->lfh_lock protects the
 * size classes and runs.  Order: lock, then lfh_lock.  Heaps created with
 * HEAP_NO_SERIALIZE take neither.
 */
#ifndef HEAPDEV_INTERNAL_H
#define HEAPDEV_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "../include/heapdev.h"

#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)
#define HD_HIDDEN	__attribute__((visibility("hidden")))
#define HD_NOINLINE	__attribute__((noinline))
#define HD_COLD		__attribute__((cold, noinline))

#define HD_PAGE_SHIFT	12
#define HD_PAGE		(1UL << HD_PAGE_SHIFT)
#define HD_CHUNK_SHIFT	22		/* page map granule: 4 MiB */
#define HD_CHUNK	(1UL << HD_CHUNK_SHIFT)
#define HD_GRANULE_SHIFT 12		/* run alignment: 4 KiB */
#define HD_GRANULE	(1UL << HD_GRANULE_SHIFT)

#define HD_WINDOW	(1ULL << 40)	/* window of a growable heap */
#define HD_SEG_HDR	0x800		/* segment bytes before the first block */
#define HD_HDR		16		/* medium block header */
#define HD_MIN_BLOCK	48		/* header + two links + footer */
#define HD_LARGE_HDR	64		/* large span bytes before the block */

#define HD_SMALL_MAX	16376		/* largest request served by LFH runs */
#define HD_LARGE_MIN	0xFD001		/* growable: requests >= this are large */
#define HD_FIXED_LIMIT	0xFFFF0		/* fixed: requests >= this fail */
#define HD_MAX_REQUEST	(1ULL << 40)	/* nothing larger is ever attempted */
#define HD_LFH_TRIGGER	18		/* allocations that activate a class */

#define HD_SEG_FIRST	(4UL << 20)	/* first segment of a growable heap */
#define HD_SEG_MAX	(64UL << 20)	/* growth step cap */
#define HD_GROW_MIN	(64UL << 10)	/* smallest commit when growing */

/* Decommit policy (see DESIGN.md). */
#define HD_DECOMMIT_BLOCK	(64UL << 10)	/* whole free pages in a block */
#define HD_DECOMMIT_SLACK	(64UL << 10)	/* free committed bytes kept */
#define HD_DECOMMIT_DELAY	100000000ULL	/* ns above the slack */
#define HD_DECOMMIT_NOW		(4UL << 20)	/* no delay below this */
#define HD_LCACHE_MAX		4		/* freed large spans kept */
#define HD_EMPTY_CACHE_BYTES	(64UL << 10)	/* cached empty LFH runs */
#define HD_LCACHE_BYTES		(32UL << 20)	/* ... at least this many */

/* Block kinds, in the low nibble of a header word. */
enum {
	HD_K_MBUSY = 1,		/* medium block in use */
	HD_K_MFREE = 2,		/* medium block on a free list */
	HD_K_GAP = 3,		/* uncommitted pages (pseudo-block) */
	HD_K_RUN = 4,		/* medium block holding an LFH run */
	HD_K_SBUSY = 5,		/* LFH slot in use */
	HD_K_SFREE = 6,		/* LFH slot free */
	HD_K_LARGE = 7,		/* large block */
	HD_K_FOOT = 15,		/* footer of a free block */
};

/* Internal bit of heap->flags: a fixed-size heap. */
#define HD_HF_FIXED	0x80000000u

#define HD_F_PREV_FREE	0x10	/* the previous block is free (footer valid) */
#define HD_F_PREV_GAP	0x20	/* the previous block is a gap */
#define HD_MAGIC	0xA53CULL
#define HD_MAGIC2	0x6B9E15ULL
#define HD_KEYMUL	0x9E3779B97F4A7C15ULL

/* TLSF geometry: 16 linear bins below 256 bytes, 16 bins per power of 2. */
#define HD_SL_SHIFT	4
#define HD_SL		(1U << HD_SL_SHIFT)
#define HD_FL		34
#define HD_NCLASS	79

/* ---- locks (lock.c) ---- */

/**
 * struct hd_lock - recursive heap lock, biased towards one thread
 * @bias: while non-zero, the only thread that has ever taken the lock; it
 *	takes and releases the lock with plain loads and stores of @depth
 * @depth: nesting depth of the biased owner
 * @revoking: set by a thread that waits for the biased owner to leave
 *	(membarrier makes the owner's plain stores visible), after which the
 *	lock is a futex mutex for good
 * @word: futex: 0 free, 1 taken, 2 taken with waiters
 * @count: recursion count of the futex owner
 * @owner: the futex owner's thread id
 */
struct hd_lock {
	_Atomic uintptr_t bias;
	_Atomic uint32_t depth;
	_Atomic uint32_t revoking;
	_Atomic uint32_t word;
	uint32_t count;
	_Atomic uintptr_t owner;
};

/* A number unique to each live thread: its thread pointer. */
static inline uintptr_t hd_self(void)
{
	return (uintptr_t)__builtin_thread_pointer();
}

HD_HIDDEN void hd_lock_init(struct hd_lock *l, bool biased);
HD_HIDDEN void hd_lock_slow(struct hd_lock *l);
HD_HIDDEN void hd_unlock_slow(struct hd_lock *l);
HD_HIDDEN bool hd_lock_held(struct hd_lock *l);
HD_HIDDEN bool hd_lock_busy(struct hd_lock *l);
HD_HIDDEN void hd_lock_drop(struct hd_lock *l);
HD_HIDDEN bool hd_bias_supported(void);

/*
 * Take @l if this thread holds its bias and does not hold the lock yet:
 * plain loads and stores only.  Return: false (and no change) otherwise,
 * or when a revocation has started.
 */
static inline bool hd_lock_fast(struct hd_lock *l)
{
	if (atomic_load_explicit(&l->bias, memory_order_relaxed) != hd_self() ||
	    atomic_load_explicit(&l->depth, memory_order_relaxed))
		return false;
	atomic_store_explicit(&l->depth, 1, memory_order_relaxed);
	/* Paired with membarrier() in the revoking thread. */
	atomic_signal_fence(memory_order_seq_cst);
	if (likely(!atomic_load_explicit(&l->revoking, memory_order_relaxed)))
		return true;
	/* Undo; the revoker polls the depth. */
	atomic_store_explicit(&l->depth, 0, memory_order_release);
	return false;
}

/* Release @l taken by hd_lock_fast(). */
static inline void hd_unlock_fast(struct hd_lock *l)
{
	atomic_store_explicit(&l->depth, 0, memory_order_release);
}

static inline void hd_lock(struct hd_lock *l)
{
	if (!hd_lock_fast(l))
		hd_lock_slow(l);
}

/* While this thread holds @l through its bias, the bias stays. */
static inline void hd_unlock(struct hd_lock *l)
{
	if (atomic_load_explicit(&l->bias, memory_order_relaxed) == hd_self())
		atomic_store_explicit(&l->depth,
				      atomic_load_explicit(&l->depth,
							   memory_order_relaxed) - 1,
				      memory_order_release);
	else
		hd_unlock_slow(l);
}

/* ---- backends (region.c) ---- */

struct hd_bheap;

/**
 * struct hd_backend - the memory provider of a heap
 *
 * Every call returns 0 or a negative errno.  Offsets are relative to the
 * heap's window; lengths and offsets are page multiples.
 */
struct hd_backend {
	const char *name;
	int kind;	/* HEAPDEV_BACKEND_DEVICE or _MEMFD */
	int (*create)(struct hd_bheap *bh, bool exec, uint64_t maximum);
	int (*destroy)(struct hd_bheap *bh);
	int (*map)(struct hd_bheap *bh, uint64_t off, size_t len,
		   uintptr_t *addr);
	int (*unmap)(struct hd_bheap *bh, uintptr_t addr, size_t len);
	int (*commit)(struct hd_bheap *bh, uintptr_t addr, uint64_t off,
		      size_t len);
	int (*decommit)(struct hd_bheap *bh, uintptr_t addr, uint64_t off,
			size_t len);
};

/**
 * struct hd_bheap - a heap as its backend knows it
 * @be: the backend
 * @id: kernel heap id (device) or window number (memfd)
 * @exec: mappings are executable
 * @window: bytes of the heap's window (reservation limit)
 * @base_off: mmap offset of the window's first byte
 * @committed: bytes committed, as last reported by the backend
 */
struct hd_bheap {
	const struct hd_backend *be;
	uint32_t id;
	bool exec;
	uint64_t window;
	uint64_t base_off;
	uint64_t committed;
};

HD_HIDDEN int hd_backend_select(int which, const struct hd_backend **be);
HD_HIDDEN void *hd_os_alloc(size_t len);
HD_HIDDEN void *hd_os_reserve(size_t len);
HD_HIDDEN void hd_os_free(void *p, size_t len);

/* Metadata memory (meta.c): never libc's malloc. */
HD_HIDDEN void *hd_meta_alloc(size_t n);
HD_HIDDEN void hd_meta_free(void *p, size_t n);
HD_HIDDEN void *hd_meta_realloc(void *p, size_t old, size_t n);
HD_HIDDEN void hd_meta_atfork_prepare(void);
HD_HIDDEN void hd_meta_atfork_parent(void);
HD_HIDDEN void hd_meta_atfork_child(void);
HD_HIDDEN void hd_region_atfork_child(void);
HD_HIDDEN int hd_device_query(const struct hd_bheap *bh, uint64_t *committed);

/* ---- heaps ---- */

/*
 * Segments of growable heaps (with a granule table), large spans, segments
 * of fixed heaps (no LFH runs).
 */
enum { HD_SPAN_SEG = 1, HD_SPAN_LARGE = 2, HD_SPAN_FSEG = 3 };

/**
 * struct hd_span - a mapped part of a heap's window
 * @kind: HD_SPAN_SEG or HD_SPAN_LARGE
 * @heap: owner
 * @base: address of the mapping (4 MiB aligned)
 * @size: bytes mapped
 * @woff: offset of the mapping in the heap's window
 * @seq: creation number, for the order of heap walks
 * @next: next span of the same kind in the heap
 * @prev: previous span of the same kind
 * @handle: the heap's handle (checked by frees without touching the heap)
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

/* An uncommitted range: header at @start, pages [start + 16, end). */
struct hd_gap {
	uintptr_t start;
	uintptr_t end;
};

/**
 * struct hd_seg - a TLSF segment
 * @sp: the span
 * @area: address of the first block header
 * @end: end of the mapping
 * @committed: bytes committed in the segment
 * @nbusy: blocks in use (medium blocks and runs)
 * @gaps: uncommitted ranges sorted by address
 * @ngaps: entries in @gaps
 * @gcap: capacity of @gaps
 * @gtab: for each 4 KiB granule, the run covering it, or &hd_dummy_run
 *	(growable heaps only)
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
	struct hd_run **gtab;
	uint64_t *cmap;
	uint32_t index;
};

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

enum {
	HD_RUN_CURRENT = 1,	/* heap->cur[] of its class */
	HD_RUN_PARTIAL,		/* on its class's partial list */
	HD_RUN_FULL,		/* no free slot, on no list */
	HD_RUN_EMPTY,		/* being released */
	HD_RUN_DEAD,		/* back in the pool */
	HD_RUN_CACHED,		/* empty, on its class's empty list */
};

/**
 * struct hd_run - an LFH run: equal slots of one size class
 * @free: first free slot (user address); first + span when none
 * @first: user address of slot 0
 * @span: bytes covered by the slots (nslots * stride)
 * @span16: @span / 16
 * @hbusy: plain header of a busy slot of the class, size 0
 * @hfree: plain header of a free slot of the class
 * @used: slots in use
 * @stride: slot size
 * @recip: ceil(2^32 / stride), to turn offsets into slot numbers
 * @nslots: slots in the run
 * @bump: slots [bump, nslots) have never been handed out
 * @cls: size class
 * @state: HD_RUN_*
 * @aff: the affinity slot whose current run it is (shared heaps), or
 *	HD_AFF_NONE; changes only with the LFH lock and that slot's lock held
 * @bytes: size of the medium block holding the run (a page multiple)
 * @care: the value of @used after a free that needs the slow path (the
 *	first free into a full run, the last one of a partial run), or
 *	UINT32_MAX
 * @next: list link (partial list of the class)
 * @prev: list link
 * @seg: segment holding the run
 * @block: header address of the medium block holding the run
 */
struct hd_run {
	uintptr_t free;
	uintptr_t first;
	uint64_t hbusy;
	uint64_t hfree;
	uint32_t span;
	uint32_t span16;
	uint32_t used;
	uint32_t stride;
	uint32_t recip;
	uint32_t nslots;
	uint32_t bump;
	uint32_t care;
	uint16_t cls;
	uint8_t state;
	_Atomic uint8_t aff;
	uint32_t bytes;
	struct hd_run *next, *prev;
	struct hd_seg *seg;
	uintptr_t block;
} __attribute__((aligned(64)));	/* threads of a heap use runs side by side */

/**
 * struct hd_class - an LFH size class (its current run is heap->cur[])
 * @partial: other runs with free slots
 * @empty: cached empty runs, linked by @next (classes below 1 KiB only:
 *	one, and more while the heap's cached empty runs hold at most
 *	HD_EMPTY_CACHE_BYTES)
 * @stride: slot size
 * @run_bytes: bytes of the class's next run: runs start small and double
 *	up to @run_max as the class keeps needing new ones
 * @run_min: bytes of the class's first run
 * @run_max: largest run of the class
 * @count: allocations of this class seen before activation
 * @active: served by runs
 */
struct hd_class {
	struct hd_run *partial;
	struct hd_run *empty;
	uint32_t stride;
	uint32_t run_bytes;
	uint32_t run_min;
	uint32_t run_max;
	uint32_t count;
	uint32_t active;
};

/*
 * Affinity slots of a shared heap (LFH lock no longer biased): each thread
 * allocates from the current runs of its slot (hd_tls.aff) under the
 * slot's own lock, so that threads of one heap do not share a lock or a
 * run on their fast paths.  A run is current in at most one slot; frees
 * into it take that slot's lock.  Everything else (partial and empty
 * runs, the heap's own cur[], new runs) stays under the LFH lock.  Lock
 * order: heap lock, LFH lock, slot locks in index order.
 */
#define HD_NAFF		4		/* a power of two */
#define HD_AFF_NONE	0xFF

/**
 * struct hd_aff - an affinity slot
 * @word: spin lock, 0 free, 1 taken (held for a few instructions, never
 *	across a blocking call)
 * @cur: the slot's current run of each class, or &hd_dummy_run
 */
struct hd_aff {
	_Atomic uint32_t word;
	struct hd_run *cur[HD_NCLASS];
} __attribute__((aligned(64)));

struct hd_extent {
	uint64_t start;
	uint64_t end;
};

/**
 * struct hd_heap - a heap
 *
 * Fields up to @lfh_lock are read-only after creation, except @live: the
 * handle while lookups may find the heap; 0 from the moment HeapDestroy
 * claims it, and while the struct is being set up for a new heap.  The LFH
 * part is protected by @lfh_lock, the rest by @lock.
 */
struct hd_heap {
	_Atomic uintptr_t live;		/* handle while it may be looked up */
	uintptr_t handle;
	uint32_t flags;
	bool fixed;
	bool process_heap;
	uint64_t secret;
	uint64_t lsecret;

	struct hd_lock lfh_lock __attribute__((aligned(64)));
	struct hd_run *cur[HD_NCLASS];	/* hd_dummy_run when none */
	struct hd_class cls[HD_NCLASS];
	struct hd_run *run_pool;
	void *run_chunks;
	size_t empty_bytes;		/* in cached empty runs */
	struct hd_aff aff[HD_NAFF];
	bool lfh_seen;

	struct hd_lock lock __attribute__((aligned(64)));
	uint64_t fl_map;
	uint32_t sl_map[HD_FL];
	uintptr_t bins[HD_FL][HD_SL];
	size_t free_bytes;
	size_t run_bytes;
	uint64_t trim_since;
	size_t med_bytes;
	size_t med_blocks;
	size_t large_bytes;
	size_t nlarge;
	struct hd_span *segs, *segs_tail;
	struct hd_span *larges, *larges_tail;
	struct hd_span *lcache;		/* freed large spans, newest first */
	size_t lcache_bytes;		/* bytes committed in them */
	uint32_t nlcache;
	uint32_t nsegs;
	uint64_t seq;
	size_t next_seg;
	size_t reserved;
	struct hd_extent *ext;
	uint32_t next_ext;
	uint32_t ext_cap;
	struct hd_bheap bh;
	_Atomic uint32_t compat;

	struct hd_heap *rnext, *rprev;
	struct hd_heap *dnext;	/* list of heaps being destroyed */
};

/* ---- page map (pagemap.c) ---- */

HD_HIDDEN int hd_pagemap_set(uintptr_t base, size_t size, struct hd_span *sp);
HD_HIDDEN void hd_pagemap_clear(uintptr_t base, size_t size);

/*
 * A flat table of 2^25 span pointers, one per 4 MiB granule of the 47-bit
 * address space (256 MiB of address space reserved with MAP_NORESERVE on
 * the first heap creation; only the pages that hold entries are ever
 * backed).  @hd_pm_limit is the number of entries: 0 until the table
 * exists (no span can exist either), so that a lookup needs no other test.
 */
#define HD_PM_ENTRIES	(1UL << (47 - HD_CHUNK_SHIFT))

HD_HIDDEN extern _Atomic(struct hd_span *) *hd_pm;
HD_HIDDEN extern _Atomic uintptr_t hd_pm_limit;
HD_HIDDEN int hd_pagemap_init(void);

/*
 * The span registered for the 4 MiB granule of @p, or NULL: lock-free,
 * never dereferences @p.  @p may lie beyond the span's end (in the last
 * granule of a span whose size is not a multiple of 4 MiB).
 */
static inline struct hd_span *hd_span_raw(uintptr_t p)
{
	uintptr_t i = p >> HD_CHUNK_SHIFT;

	if (unlikely(i >= atomic_load_explicit(&hd_pm_limit,
					       memory_order_acquire)))
		return NULL;
	return atomic_load_explicit(&hd_pm[i], memory_order_acquire);
}

/* The span containing @p, or NULL. */
static inline struct hd_span *hd_span_of(uintptr_t p)
{
	struct hd_span *sp = hd_span_raw(p);

	if (!sp || p - sp->base >= sp->size)
		return NULL;
	return sp;
}

/*
 * Each thread remembers the last heap it resolved.  Heap structs are never
 * given back to libc (destroyed ones are recycled with @live cleared), so
 * the cached pointer can always be read; it is used only if the heap it
 * points to still has that handle.
 *
 * @state says whether the thread is inside an API call, and on which heap
 * (HD_ST_*): HeapDestroy waits until every other thread that was inside a
 * call on its heap, or on a heap not known yet, when it claimed the heap
 * has left that call (see hd_quiesce() in heap.c).  @waiting is the lock
 * the thread sleeps on, if any: a thread blocked on another heap's lock
 * is working on that heap.  @reg: the thread is known to HeapDestroy.
 */
struct hd_tls {
	uintptr_t handle;
	struct hd_heap *heap;	/* never NULL: hd_null_heap at first */
	_Atomic uintptr_t state;
	_Atomic(struct hd_lock *) waiting;
	bool reg;
	uint8_t aff;		/* affinity slot in shared heaps */
};

/*
 * hd_tls.state: HD_ST_IDLE outside calls; HD_ST_CALL inside one whose
 * heap is not known yet; the heap's address once it is (heap structs are
 * 64-byte aligned).  HD_ST_MARK is set by a waiting HeapDestroy; any store
 * of the owner clears it, which tells the waiter that the thread has
 * moved on.
 */
#define HD_ST_IDLE	((uintptr_t)0)
#define HD_ST_CALL	((uintptr_t)1)
#define HD_ST_MARK	((uintptr_t)2)

HD_HIDDEN extern __thread struct hd_tls hd_tls
	__attribute__((tls_model("initial-exec")));
HD_HIDDEN struct hd_heap *hd_heap_get_slow(const void *h);
HD_HIDDEN void hd_thread_register(void);
HD_HIDDEN void hd_heavy_barrier(void);

/* The handle under which @h may be looked up now, or 0. */
static inline uintptr_t hd_live(const struct hd_heap *h)
{
	return atomic_load_explicit(&h->live, memory_order_acquire);
}

/*
 * Enter an API call.  The store is ordered before the call's first look at
 * the page map or a heap by a compiler barrier here and a barrier on every
 * CPU in HeapDestroy (membarrier(), or the IPIs of a TLB shootdown where
 * membarrier is missing: hd_heavy_barrier()), the asymmetric Dekker
 * pattern of the biased locks.
 *
 * A thread's first call must register it (hd_thread_check()) before it
 * looks at the page map or a heap.  The fast paths of HeapAlloc and
 * HeapFree leave that to their out-of-line paths (a thread's first
 * HeapAlloc always misses the per-thread cache; HeapFree tests @reg), so
 * that they need no stack frame.
 */
static inline void hd_enter_fast(void)
{
#ifdef HEAPDEV_TSAN
	/*
	 * TSan does not see the barrier HeapDestroy runs on every CPU: a
	 * sequentially consistent exchange, which it understands.
	 */
	atomic_exchange_explicit(&hd_tls.state, HD_ST_CALL,
				 memory_order_seq_cst);
#else
	atomic_store_explicit(&hd_tls.state, HD_ST_CALL, memory_order_relaxed);
	atomic_signal_fence(memory_order_seq_cst);
#endif
}

/* Register the thread if it is its first call (see hd_enter_fast()). */
static inline void hd_thread_check(void)
{
	if (unlikely(!hd_tls.reg))
		hd_thread_register();
}

static inline void hd_enter(void)
{
	hd_enter_fast();
	hd_thread_check();
}

/*
 * The call works on heap @h from now on (its @live matched): a destroy of
 * another heap need not wait for it.
 */
static inline void hd_use(struct hd_heap *h)
{
	atomic_store_explicit(&hd_tls.state, (uintptr_t)h,
			      memory_order_relaxed);
}

/* Leave an API call: everything it did happens before a destroy's wait. */
static inline void hd_leave(void)
{
	atomic_store_explicit(&hd_tls.state, HD_ST_IDLE, memory_order_release);
}

/* The value of @call, made between hd_enter() and hd_leave(). */
#define HD_CALL(call) ({						\
	typeof(call) hd_r_;						\
									\
	hd_enter();							\
	hd_r_ = (call);							\
	hd_leave();							\
	hd_r_;								\
})

/* The live heap whose handle is @h (the call's heap from now on), or NULL. */
static inline struct hd_heap *hd_heap_get(const void *h)
{
	if (likely((uintptr_t)h == hd_tls.handle &&
		   hd_live(hd_tls.heap) == (uintptr_t)h)) {
		hd_use(hd_tls.heap);
		return hd_tls.heap;
	}
	return hd_heap_get_slow(h);
}

/* ---- header encoding ---- */

/* Headers are XOR-encoded with the heap's secret and their own address. */
static inline uint64_t hd_key(const struct hd_heap *h, uintptr_t addr)
{
	return h->secret ^ addr;
}

static inline uint64_t hd_rd(const struct hd_heap *h, uintptr_t addr)
{
	return *(const uint64_t *)addr ^ hd_key(h, addr);
}

static inline void hd_wr(const struct hd_heap *h, uintptr_t addr, uint64_t v)
{
	*(uint64_t *)addr = v ^ hd_key(h, addr);
}

static inline uintptr_t hd_rdlink(const struct hd_heap *h, uintptr_t addr)
{
	return *(const uintptr_t *)addr ^ h->lsecret ^ addr;
}

static inline void hd_wrlink(const struct hd_heap *h, uintptr_t addr,
			     uintptr_t v)
{
	*(uintptr_t *)addr = v ^ h->lsecret ^ addr;
}

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

/* LFH slot headers. */
/* kind:4 | 0:4 | magic:16 | requested size:20 | class:8 | 0:12 */
static inline uint64_t hd_sbusy(size_t n, unsigned int cls)
{
	return HD_K_SBUSY | (HD_MAGIC << 8) | ((uint64_t)n << 24) |
	       ((uint64_t)cls << 44);
}

static inline uint64_t hd_sfree(unsigned int cls)
{
	return HD_K_SFREE | (HD_MAGIC << 8) | ((uint64_t)cls << 44);
}

/*
 * Whether decoded header @w is "busy" for the class of @hbusy (which has
 * size 0): every bit but the size must match.  Rotating the size field to
 * the top and shifting it out checks the other 44 bits without a 64-bit
 * mask constant.
 */
static inline bool hd_sbusy_is(uint64_t w, uint64_t hbusy)
{
	uint64_t x = w ^ hbusy;

	return !(((x << 20) | (x >> 44)) << 20);
}

static inline size_t hd_ssize(uint64_t w)
{
	return (w >> 24) & 0xFFFFF;
}

/* ---- size classes (small.c) ---- */

/* hd_class_tab[i]: the smallest class whose stride is at least 16 * i. */
HD_HIDDEN extern const uint8_t hd_class_tab[(HD_SMALL_MAX + 23) / 16 + 1];
/*
 * A run without slots: the current run of classes that have none, and the
 * granule table entry of granules without a run.
 */
HD_HIDDEN extern struct hd_run hd_dummy_run;

/* The size class of a request of @n <= HD_SMALL_MAX bytes. */
static inline unsigned int hd_class_of(size_t n)
{
	return hd_class_tab[(n + 23) >> 4];
}

/* ---- error reporting (error.c) ---- */

HD_HIDDEN extern _Atomic int hd_terminate;
HD_HIDDEN extern __thread uint32_t hd_last_error
	__attribute__((tls_model("initial-exec")));
HD_HIDDEN extern int hd_debug;
HD_HIDDEN extern __thread int hd_commit_err
	__attribute__((tls_model("initial-exec")));
HD_HIDDEN int hd_alloc_errno(void);
HD_HIDDEN void hd_corrupt(const struct hd_heap *h, const void *p,
			  const char *what);
HD_HIDDEN void hd_dbg(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
HD_HIDDEN void hd_raise(uint32_t code, const struct hd_heap *h, void *ptr,
			size_t size, const char *fn);

/* ---- heap core (heap.c) ---- */

HD_HIDDEN int hd_heap_create(uint32_t flags, uint64_t initial,
			     uint64_t maximum, int backend,
			     struct hd_heap **out);
HD_HIDDEN int hd_heap_destroy(struct hd_heap *h, uintptr_t handle);
/* The native calls without hd_enter()/hd_leave(), for the Win32 ones. */
HD_HIDDEN int hd_api_lock(struct heapdev_heap *heap);
HD_HIDDEN int hd_api_unlock(struct heapdev_heap *heap);
HD_HIDDEN int hd_api_compact(struct heapdev_heap *heap, unsigned int flags,
			     size_t *largest);
HD_HIDDEN int hd_api_trim(struct heapdev_heap *heap);
HD_HIDDEN struct hd_heap *hd_heap_dying(const void *hh);
HD_HIDDEN struct hd_heap *hd_process_heap(int *err);
/* A registered heap and its handle, as the registry had them. */
struct hd_heap_ref {
	struct hd_heap *heap;
	uintptr_t handle;
};

HD_HIDDEN size_t hd_heap_refs(struct hd_heap_ref *out, size_t cap);
HD_HIDDEN void hd_registry_unlock(void);

static inline void hd_lock_main(struct hd_heap *h, uint32_t flags)
{
	if (!(flags & HEAPDEV_NO_SERIALIZE))
		hd_lock(&h->lock);
}

static inline void hd_unlock_main(struct hd_heap *h, uint32_t flags)
{
	if (!(flags & HEAPDEV_NO_SERIALIZE))
		hd_unlock(&h->lock);
}

static inline void hd_lock_lfh(struct hd_heap *h, uint32_t flags)
{
	if (!(flags & HEAPDEV_NO_SERIALIZE))
		hd_lock(&h->lfh_lock);
}

static inline void hd_unlock_lfh(struct hd_heap *h, uint32_t flags)
{
	if (!(flags & HEAPDEV_NO_SERIALIZE))
		hd_unlock(&h->lfh_lock);
}

/* Segment helpers (heap.c). */
HD_HIDDEN bool hd_seg_committed(const struct hd_seg *s, uintptr_t addr);
HD_HIDDEN struct hd_gap *hd_gap_find(struct hd_seg *s, uintptr_t start);
HD_HIDDEN int hd_grow(struct hd_heap *h, size_t need);
HD_HIDDEN int hd_commit_gap(struct hd_heap *h, struct hd_seg *s,
			    struct hd_gap *g, size_t bytes);
HD_HIDDEN void hd_seg_maybe_release(struct hd_heap *h, struct hd_seg *s);
HD_HIDDEN void hd_release_empty_segments(struct hd_heap *h, bool all);
HD_HIDDEN int hd_heap_commit(struct hd_heap *h, uintptr_t addr, uint64_t woff,
			     size_t len);
HD_HIDDEN int hd_heap_decommit(struct hd_heap *h, uintptr_t addr,
			       uint64_t woff, size_t len);
HD_HIDDEN size_t hd_decommit_free(struct hd_heap *h, struct hd_seg *s,
				  uintptr_t b, size_t size, size_t min);
HD_HIDDEN bool hd_seg_sig_ok(const struct hd_heap *h, const struct hd_seg *s);
HD_HIDDEN int hd_heap_ext_alloc(struct hd_heap *h, uint64_t size,
				uint64_t *off);
HD_HIDDEN void hd_heap_ext_free(struct hd_heap *h, uint64_t off,
				uint64_t size);
HD_HIDDEN size_t hd_heap_handles(void **out, size_t cap);
HD_HIDDEN void *hd_span_get(int kind, size_t size);
HD_HIDDEN void hd_span_put(struct hd_span *sp);

static inline struct hd_seg *hd_seg_of(const struct hd_heap *h, uintptr_t p)
{
	struct hd_span *sp = hd_span_of(p);

	if (!sp || sp->heap != h || sp->kind == HD_SPAN_LARGE)
		return NULL;
	return (struct hd_seg *)sp;
}

/* ---- medium blocks, TLSF (medium.c) ---- */

HD_HIDDEN void hd_tlsf_insert(struct hd_heap *h, uintptr_t b, size_t size);
HD_HIDDEN void hd_tlsf_remove(struct hd_heap *h, uintptr_t b, size_t size);
HD_HIDDEN uintptr_t hd_tlsf_find(struct hd_heap *h, size_t size);
HD_HIDDEN void hd_set_prev(struct hd_heap *h, struct hd_seg *s, uintptr_t b,
			   unsigned int set, unsigned int clear);
HD_HIDDEN void hd_make_free(struct hd_heap *h, struct hd_seg *s, uintptr_t b,
			    size_t size, unsigned int flags);
HD_HIDDEN uintptr_t hd_free_coalesce(struct hd_heap *h, struct hd_seg *s,
				     uintptr_t b, size_t *size,
				     unsigned int *flags);
HD_HIDDEN void *hd_medium_alloc(struct hd_heap *h, size_t n, uint32_t flags);
HD_HIDDEN void *hd_medium_alloc_aligned(struct hd_heap *h, size_t n,
					size_t align, uint32_t flags);
HD_HIDDEN uintptr_t hd_medium_alloc_block(struct hd_heap *h, size_t bsize,
					  size_t align, unsigned int kind,
					  struct hd_seg **segp);
HD_HIDDEN void hd_medium_release_block(struct hd_heap *h, struct hd_seg *s,
				       uintptr_t b);
HD_HIDDEN int hd_medium_check(const struct hd_heap *h, struct hd_seg *s,
			      uintptr_t p, uint64_t *w0, size_t *n);
HD_HIDDEN int hd_medium_free(struct hd_heap *h, struct hd_seg *s, uintptr_t p);
HD_HIDDEN void *hd_medium_realloc(struct hd_heap *h, struct hd_seg *s,
				  uintptr_t p, size_t n, uint32_t flags,
				  int *err);
HD_HIDDEN void hd_trim(struct hd_heap *h, bool all);
HD_HIDDEN uint64_t hd_now(void);
HD_HIDDEN size_t hd_largest_free(struct hd_heap *h);

/* ---- LFH (small.c) ---- */

HD_HIDDEN void hd_classes_init(struct hd_heap *h);
HD_HIDDEN void *hd_small_alloc_slow(struct hd_heap *h, size_t n,
				    uint32_t flags);
HD_HIDDEN void *hd_small_alloc_cls(struct hd_heap *h, size_t n, unsigned int c,
				   uint32_t flags);
HD_HIDDEN int hd_small_free_slow(struct hd_heap *h, struct hd_run *run,
				 uint32_t flags);
HD_HIDDEN int hd_small_check(const struct hd_heap *h, const struct hd_run *run,
			     uintptr_t p, size_t *n);
HD_HIDDEN void hd_small_corrupt_run(struct hd_heap *h, struct hd_run *run,
				    uintptr_t p, const char *what);
HD_HIDDEN void hd_small_trim(struct hd_heap *h, uint32_t flags);
HD_HIDDEN void *hd_aff_alloc(struct hd_heap *h, size_t n, uint32_t flags);
HD_HIDDEN int hd_aff_free(struct hd_heap *h, struct hd_seg *s, uintptr_t p,
			  uint32_t flags);
HD_HIDDEN int hd_small_free_locked(struct hd_heap *h, struct hd_run *run,
				   uintptr_t p, uint32_t flags);
HD_HIDDEN void hd_aff_lock_all(struct hd_heap *h, uint32_t flags);
HD_HIDDEN void hd_aff_unlock_all(struct hd_heap *h, uint32_t flags);

HD_HIDDEN void hd_aff_lock_slow(struct hd_aff *a);
HD_HIDDEN void hd_aff_free_empty(struct hd_heap *h, struct hd_run *run,
			       unsigned int k, uint32_t flags);

static inline void hd_aff_lock(struct hd_aff *a)
{
	if (atomic_exchange_explicit(&a->word, 1, memory_order_acquire))
		hd_aff_lock_slow(a);
}

static inline void hd_aff_unlock(struct hd_aff *a)
{
	atomic_store_explicit(&a->word, 0, memory_order_release);
}

/*
 * Take the LFH lock of a shared heap (no bias) with one compare-and-swap
 * if nobody holds it.  Return: whether it was taken.
 */
static inline bool hd_lfh_trylock(struct hd_heap *h)
{
	struct hd_lock *l = &h->lfh_lock;
	uint32_t z = 0;

	if (!atomic_compare_exchange_strong_explicit(&l->word, &z, 1,
						     memory_order_acquire,
						     memory_order_relaxed))
		return false;
	atomic_store_explicit(&l->owner, hd_self(), memory_order_relaxed);
	l->count = 1;
	return true;
}

/*
 * Take the LFH lock of a shared heap: one compare-and-swap when it is free
 * and unbiased, the general way otherwise.
 */
static inline void hd_lfh_lock_shared(struct hd_heap *h, uint32_t flags)
{
	if (flags & HEAPDEV_NO_SERIALIZE)
		return;
	if (likely(!atomic_load_explicit(&h->lfh_lock.bias,
					 memory_order_relaxed) &&
		   hd_lfh_trylock(h)))
		return;
	hd_lock_slow(&h->lfh_lock);
}

HD_HIDDEN void hd_small_usage(struct hd_heap *h, size_t *bytes,
			      size_t *blocks);
HD_HIDDEN void hd_runs_free_all(struct hd_heap *h);

/*
 * The granule table's entry for user address @p of segment @s (which has
 * a table): atomic, since frees on shared heaps read it before they take
 * a lock.
 */
static inline struct hd_run *hd_gtab_load(const struct hd_seg *s, uintptr_t p)
{
	return atomic_load_explicit((_Atomic(struct hd_run *) *)
				    &s->gtab[(p - s->sp.base) >>
					     HD_GRANULE_SHIFT],
				    memory_order_relaxed);
}

/* The run holding user address @p of segment @s, or NULL. */
static inline struct hd_run *hd_run_of(const struct hd_seg *s, uintptr_t p)
{
	struct hd_run *run;

	if (!s->gtab)
		return NULL;
	run = hd_gtab_load(s, p);
	return run == &hd_dummy_run ? NULL : run;
}

/* ---- large blocks (large.c) ---- */

HD_HIDDEN void *hd_large_alloc(struct hd_heap *h, size_t n, uint32_t flags);
HD_HIDDEN void *hd_large_alloc_aligned(struct hd_heap *h, size_t n,
				       size_t align, uint32_t flags);
HD_HIDDEN int hd_large_check(const struct hd_heap *h, struct hd_large *lg,
			     uintptr_t p);
HD_HIDDEN void hd_large_free(struct hd_heap *h, struct hd_large *lg);
HD_HIDDEN void *hd_large_realloc(struct hd_heap *h, struct hd_large *lg,
				 size_t n, uint32_t flags, int *err);
HD_HIDDEN void hd_larges_free_all(struct hd_heap *h, bool unmap);
HD_HIDDEN void hd_lcache_trim(struct hd_heap *h, bool all);

/* ---- operations (alloc.c) ---- */

HD_HIDDEN void *hd_alloc(struct hd_heap *h, size_t n, uint32_t flags);
HD_HIDDEN void *hd_alloc_big(struct hd_heap *h, size_t n, uint32_t flags);
HD_HIDDEN void *hd_alloc_aligned(struct hd_heap *h, size_t n, size_t align,
				 uint32_t flags);
HD_HIDDEN int hd_free_other(struct hd_heap *h, struct hd_span *sp, uintptr_t p,
			    uint32_t flags);
HD_HIDDEN int hd_bad_ptr(const struct hd_heap *h, const void *p);
HD_HIDDEN int hd_free(struct hd_heap *h, void *p, uint32_t flags);
HD_HIDDEN void *hd_realloc(struct hd_heap *h, void *p, size_t n,
			   uint32_t flags, int *err);
HD_HIDDEN int hd_size(struct hd_heap *h, const void *p, uint32_t flags,
		      size_t *n);
HD_HIDDEN int hd_validate_block(struct hd_heap *h, const void *p,
				uint32_t flags);

/* ---- walk, validate, summary (walk.c) ---- */

/* Region index of large blocks in walks (native heaps report 64). */
#define HD_REGION_LARGE	64

struct hd_walk {
	uintptr_t addr;
	uint64_t size;
	uint32_t overhead;
	uint32_t kind;
	uint32_t region;
	uint64_t cursor[2];
	/* region details */
	uint64_t committed;
	uint64_t uncommitted;
	uintptr_t first_block;
	uintptr_t last_block;
};

HD_HIDDEN int hd_walk(struct hd_heap *h, struct hd_walk *w);
HD_HIDDEN int hd_validate_heap(struct hd_heap *h, uint32_t flags);
HD_HIDDEN void hd_info(struct hd_heap *h, struct heapdev_heap_info *info);

#endif /* HEAPDEV_INTERNAL_H */
