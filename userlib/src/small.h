/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * heapdev: the small-block layer, the low-fragmentation heap (small.c,
 * ctx.c).
 *
 * Requests up to HD_SMALL_MAX bytes of growable heaps are served, once
 * their size class is active (HD_LFH_TRIGGER allocations of it, as on
 * Windows), from *runs*: medium blocks of whole pages cut into equal slots.
 * A slot has no header.  What the allocator knows of a slot lives outside
 * it, in the run's descriptor: the requested size of each busy slot (an
 * array of 16-bit entries, n + 1, 0 for a free slot), found from the
 * address through the page map (page.h) and a multiply.  The last 8 bytes
 * of every busy slot hold a canary keyed with the heap's secret and its
 * address, checked by every call on the block: an overflow past the block
 * or an underflow before the next one is caught there.  The stride of a
 * class is round_up(max(n, 16) + 8, 16), the native LFH geometry.
 *
 * Ownership: a run belongs to one *context*, a thread's view of the heap
 * (struct hd_ctx: a current run per class and its own lists).  The owner
 * allocates and frees its runs' slots with no atomic instruction and no
 * lock: a local free list to allocate from, and a deferred list that frees
 * go to, taken over when the first runs dry (so a freed slot is not handed
 * out again at once, which makes a double free after the next allocation
 * detectable).  A free by another thread marks the slot's second word
 * (a second free finds the mark) and pushes it onto the run's remote list
 * with one compare-and-swap; the owner collects that list in bulk when it
 * needs slots, clearing the size entries.  A run that fills up leaves the
 * current position; the first
 * remote free into it tells the owner through the context's delayed list.
 * A HEAP_NO_SERIALIZE heap has one context that every thread uses.
 *
 * Runs of a thread that exits are abandoned and adopted by the next
 * context that needs a run of their class.  Released run descriptors wait
 * in limbo until every call that might still read them has ended (a grace
 * period that the heap layer runs, heap.h).
 *
 * Locks: the LFH lock (@lock of struct hd_sheap) protects the contexts'
 * registration and the classes' empty and abandoned runs; the allocator
 * lock (page.h) protects activation, run descriptors (pool, limbo) and the
 * carving and releasing of runs (order: heap lock, LFH lock, allocator
 * lock).  A context's own
 * state is its owner's, except while a pause (heap.h) holds the heap.
 */
#ifndef HEAPDEV_SMALL_H
#define HEAPDEV_SMALL_H

#include "medium.h"

#define HD_SMALL_MAX	16376		/* largest request served by runs */
#define HD_LFH_TRIGGER	18		/* allocations that activate a class */
#define HD_NCLASS	79
#define HD_BIG_CLASS	63		/* the first class above 1 KiB */
#define HD_KEEP_CHECK	64		/* refills between looks at kept runs */
#define HD_KEEP_BYTES	(256U << 10)	/* kept empty runs per context */
#define HD_NTCTX	64		/* threads with a context of their own */
#define HD_LIMBO_BATCH	32		/* released runs per grace period */
#define HD_EMPTY_CACHE_BYTES	(64UL << 10)	/* cached empty runs */

/* Run owners that are no thread. */
#define HD_OWNER_NONE	((uintptr_t)1)	/* abandoned, or the shared context's */

enum {
	HD_RUN_NONE = 0,	/* the empty run */
	HD_RUN_CURRENT,		/* a context's current run of its class */
	HD_RUN_PARTIAL,		/* on its context's partial list */
	HD_RUN_FULL,		/* on its context's full list */
	HD_RUN_CACHED,		/* empty, on its class's empty list */
	HD_RUN_ABANDONED,	/* on its class's abandoned list */
	HD_RUN_DEAD,		/* released (limbo, or back in the pool) */
};

struct hd_ctx;

/**
 * struct hd_run - a run: equal slots of one size class
 *
 * Read-mostly line (every free reads it, remote ones too):
 * @start: address of slot 0 (page aligned)
 * @span: bytes covered by the slots (nslots * stride)
 * @stride: slot size
 * @recip: ceil(2^40 / stride): (d * recip) >> 40 is d / stride, and the
 *	low 40 bits of the product are below @recip exactly when stride
 *	divides d (for d < 4 MiB)
 * @sizes: per slot, the requested size + 1 when busy, else 0
 * @lkey: key of free-list links (XOR with the link's address)
 * @ckey: key of canaries (XOR with the canary's address)
 * @owner: the owning thread (its thread pointer), or HD_OWNER_NONE
 * @omask: ~0, or 0 for runs of a HEAP_NO_SERIALIZE heap, whose frees are
 *	all local (and for the empty run, whose checks fail anyway)
 *
 * Owner's line:
 * @free: first slot of the local free list; start + span when empty
 * @dfree: first slot of the deferred list (local frees); start + span
 * @used: slots in use, as the owner counts them (remote frees are
 *	subtracted when collected)
 * @care: the value of @used after a local free that needs the slow path
 *	(the first free into a full run, the last one of a partial run),
 *	or UINT32_MAX
 * @bump: slots [bump, nslots) have never been handed out
 * @nbytes: bytes requested by the busy slots, as the owner counts them
 *
 * Links (the rest of the owner's line; lists change under the owner or
 * the LFH lock):
 * @next: list link (partial, full, empty, abandoned, limbo, pool)
 * @prev: list link
 * @dnext: link of the owner's delayed list
 *
 * Cold:
 * @seg: segment holding the run
 * @ctx: owning context (NULL when abandoned or cached)
 * @nslots: slots in the run
 * @cls: size class
 * @bytes: size of the medium block holding the run (a page multiple),
 *	whose header is at start - HD_HDR (hd_run_block())
 * @scap: capacity of @sizes (entries)
 * @anext: the heap's list of every run descriptor it has
 *
 * Remote line (what frees by other threads read and write):
 * @xfree: remote free list (links encoded like the local ones, each
 *	freed slot's second word its remote mark), 0 when empty
 * @xbytes: size changes of in-place reallocs by other threads
 * @state: HD_RUN_* (set by the owner, read by remote frees)
 * @notified: set by the remote free that told the owner of a full run
 *
 * Four cache lines, 256 bytes: a metadata block of its own size.
 */
struct hd_run {
	uintptr_t start;
	uint32_t span;
	uint32_t stride;
	uint64_t recip;
	_Atomic uint16_t *sizes;
	uint64_t lkey;
	uint64_t ckey;
	_Atomic uintptr_t owner;
	_Atomic uint64_t omask;

	uintptr_t free __attribute__((aligned(64)));
	uintptr_t dfree;
	uint32_t used;
	uint32_t care;
	uint32_t bump;
	size_t nbytes;
	struct hd_run *next, *prev;
	struct hd_run *dnext;

	struct hd_seg *seg __attribute__((aligned(64)));
	_Atomic(struct hd_ctx *) ctx;
	uint32_t nslots;
	uint16_t cls;
	uint32_t bytes;
	uint32_t scap;
	struct hd_run *anext;

	_Atomic uintptr_t xfree __attribute__((aligned(64)));
	_Atomic int64_t xbytes;
	_Atomic uint8_t state;
	_Atomic uint8_t notified;
};

_Static_assert(sizeof(struct hd_run) == 256, "a run descriptor is 4 lines");

/* The header of the medium block holding @run. */
static inline uintptr_t hd_run_block(const struct hd_run *run)
{
	return run->start - HD_HDR;
}

/**
 * struct hd_ctx - a thread's context on a heap
 * @live: the heap's handle while the context may be used; 0 once a
 *	HeapDestroy claimed the heap, and while a pause holds it
 * @heap: the heap
 * @s: its small blocks
 * @owner: the thread (thread pointer), 0 for the context of a
 *	HEAP_NO_SERIALIZE heap, HD_OWNER_NONE for the shared context of
 *	threads without one of their own
 * @cur: current run of each class, or HD_EMPTY_RUN
 * @partial: other runs of the class with free slots
 * @full: runs without a free slot at hand, of every class
 * @delayed: full runs that a remote free has made non-full (atomic stack)
 * @hnext: the heap's list of contexts
 * @tnext: the thread's list of contexts
 * @tix: the thread's index in the heap's table, or HD_NTCTX
 * @dead: the heap was destroyed; the owning thread recycles the struct
 * @xrun: the run of the chain of this thread's frees into other threads'
 *	runs that is not pushed yet (hd_small_free_batch()), or NULL
 * @xhead: the chain's last free (its first slot)
 * @xtail: the chain's first free (its last slot)
 * @xn: slots in the chain
 * @kept: classes (bit c - HD_BIG_CLASS) whose current run emptied and is
 *	kept (hd_small_free_slow())
 * @ticks: refills, to look at the kept runs every HD_KEEP_CHECK of them
 * @kept_since: when each kept run emptied (hd_now())
 */
struct hd_ctx {
	_Atomic uintptr_t live;
	struct hd_heap *heap;
	struct hd_sheap *s;
	uintptr_t owner;
	struct hd_run *cur[HD_NCLASS];
	struct hd_run *partial[HD_NCLASS];
	struct hd_run *full;
	_Atomic(struct hd_run *) delayed;
	struct hd_ctx *hnext;
	struct hd_ctx *tnext;
	uint32_t tix;
	_Atomic bool dead;
	struct hd_run *xrun;
	uintptr_t xhead;
	uintptr_t xtail;
	uint32_t xn;
	uint32_t kept;
	uint32_t ticks;
	uint64_t kept_since[HD_NCLASS - HD_BIG_CLASS];
};

/**
 * struct hd_class - a size class
 * @empty: cached empty runs (classes below 1 KiB: one, and more while the
 *	heap's cached empty runs hold at most HD_EMPTY_CACHE_BYTES)
 * @abandoned: runs of exited threads
 * @stride: slot size
 * @run_bytes: bytes of the class's next run: runs start small and double
 *	up to @run_max as the class keeps needing new ones
 * @run_min: bytes of the class's first run
 * @run_max: largest run of the class
 * @count: allocations seen before activation (allocator lock)
 * @active: served by runs (set once, under the allocator lock)
 */
struct hd_class {
	struct hd_run *empty;
	struct hd_run *abandoned;
	uint32_t stride;
	uint32_t run_bytes;
	uint32_t run_min;
	uint32_t run_max;
	uint32_t count;
	_Atomic uint32_t active;
};

/**
 * struct hd_sheap - a heap's small blocks
 * @c: the heap
 * @m: its medium blocks (runs are medium blocks)
 * @lock: the LFH lock
 * @cls: the classes
 * @ctx0: the context of a HEAP_NO_SERIALIZE heap, or the shared context
 *	of a serialized heap (threads beyond HD_NTCTX use it under @lock;
 *	its @live stays 0, so that no thread caches it)
 * @tctx: the context of each thread index
 * @ctxs: every context of the heap
 * @runs: every run descriptor of the heap (through @anext)
 * @pool: run descriptors to reuse (allocator lock)
 * @limbo: released run descriptors waiting for a grace period
 * @nlimbo: entries in @limbo
 * @empty_bytes: bytes of cached empty runs
 * @run_bytes: bytes of all runs
 * @seen: a class has been activated
 * @dying: HeapDestroy has marked every context dead (LFH lock)
 */
struct hd_sheap {
	struct hd_core *c;
	struct hd_mheap *m;
	struct hd_lock lock;
	struct hd_class cls[HD_NCLASS];
	struct hd_ctx ctx0;
	_Atomic(struct hd_ctx *) tctx[HD_NTCTX];
	struct hd_ctx *ctxs;
	struct hd_run *runs;
	struct hd_run *pool;
	struct hd_run *limbo;
	_Atomic uint32_t nlimbo;	/* read without the lock: a hint */
	size_t empty_bytes;
	size_t run_bytes;
	_Atomic bool seen;
	bool dying;
};

/* The empty run: no slot, no owner (page.h holds its storage). */
#define hd_empty	(*HD_EMPTY_RUN)
_Static_assert(sizeof(struct hd_run) <= sizeof(hd_empty_run),
	       "the empty run's storage holds a run");

/* hd_class_tab[i]: the smallest class whose stride is at least 16 * i. */
HD_HIDDEN extern const uint8_t hd_class_tab[(HD_SMALL_MAX + 23) / 16 + 1];
HD_HIDDEN extern struct hd_ctx hd_null_ctx;

/* The size class of a request of @n <= HD_SMALL_MAX bytes. */
static inline unsigned int hd_class_of(size_t n)
{
	return hd_class_tab[(n + 23) >> 4];
}

/* The address of the canary of slot @p of @run. */
static inline uintptr_t hd_canary_at(const struct hd_run *run, uintptr_t p)
{
	return p + run->stride - 8;
}

/*
 * Pop a slot of @run into @p and make it a busy block of @n bytes; when
 * the run has none at hand, return @fail instead.  One test for an empty
 * list (free == start + span) and for a link that a write to a freed
 * slot sent out of the run.
 */
#define HD_RUN_POP(run, p, n, fail) do {				\
	(p) = (run)->free;						\
	if (unlikely((p) - (run)->start >= (run)->span))		\
		return (fail);						\
	(run)->free = *(uintptr_t *)(p) ^ (run)->lkey ^ (p);		\
	atomic_store_explicit(&(run)->sizes[(((p) - (run)->start) *	\
					     (run)->recip) >> 40],	\
			      (uint16_t)((n) + 1), memory_order_relaxed); \
	*(uint64_t *)((p) + 8) = 0;	/* no remote mark */		\
	*(uint64_t *)hd_canary_at((run), (p)) =				\
		(run)->ckey ^ hd_canary_at((run), (p));			\
	(run)->used++;							\
	(run)->nbytes += (n);						\
} while (0)

/*
 * What the second word of a slot on @run's remote list holds (set by the
 * freeing thread, cleared when the owner collects the slot, and on every
 * allocation).
 */
static inline uint64_t hd_xmark(const struct hd_run *run, uintptr_t p)
{
	return run->ckey ^ ~(p + 8);
}

/*
 * The slot index of @p in @run if @p is the start of a slot, else -1
 * (also when @p is outside the run: the empty run has no slot).
 */
static inline long hd_run_index(const struct hd_run *run, uintptr_t p)
{
	uintptr_t d = p - run->start;
	uint64_t x = (uint64_t)d * run->recip;

	if (unlikely(d >= run->span || (x << 24) >= (run->recip << 24)))
		return -1;
	return (long)(x >> 40);
}

/*
 * Whether busy slot @i (at @p) of @run is intact: its size entry says
 * busy, its canary is whole and it has no remote mark (freed by another
 * thread, not collected yet).  Return: the requested size + 1, or 0.
 */
static inline unsigned int hd_run_busy(const struct hd_run *run, long i,
				       uintptr_t p)
{
	unsigned int v = atomic_load_explicit(&run->sizes[i],
					      memory_order_relaxed);
	uintptr_t q = hd_canary_at(run, p);

	if (unlikely(!v || *(const uint64_t *)q != (run->ckey ^ q) ||
		     *(const uint64_t *)(p + 8) == hd_xmark(run, p)))
		return 0;
	return v;
}

/*
 * Free slot @p of @run, owned by the caller (or of a HEAP_NO_SERIALIZE
 * heap) onto the deferred list.  Return: -1 when @p is not a live block
 * of @run (nothing changed), 1 when the run needs the slow path
 * (hd_small_free_slow()), else 0.
 */
static inline int hd_run_free_local(struct hd_run *run, uintptr_t p)
{
	long i = hd_run_index(run, p);
	unsigned int v;

	if (unlikely(i < 0))
		return -1;
	v = hd_run_busy(run, i, p);
	if (unlikely(!v))
		return -1;
	atomic_store_explicit(&run->sizes[i], 0, memory_order_relaxed);
	*(uintptr_t *)p = run->dfree ^ run->lkey ^ p;
	run->dfree = p;
	run->nbytes -= v - 1;
	return unlikely(--run->used == run->care);
}

/* Whether the caller frees @run's slots locally (owner, or no locking). */
static inline bool hd_run_local(const struct hd_run *run)
{
	return !((atomic_load_explicit(&run->owner, memory_order_relaxed) ^
		  hd_self()) & atomic_load_explicit(&run->omask,
						    memory_order_relaxed));
}

/* Frees into other threads' runs that a context chains before a push. */
#define HD_XBATCH		32

/* Empty runs of classes of this stride and more are never cached. */
#define HD_EMPTY_CACHE_MAX	1024

/* ---- small.c ---- */

HD_HIDDEN void hd_small_init(struct hd_sheap *s, struct hd_core *c,
			     struct hd_mheap *m);
HD_HIDDEN void *hd_small_alloc(struct hd_ctx *ctx, size_t n, unsigned int cls,
			       uint32_t flags);
HD_HIDDEN void hd_small_free_slow(struct hd_ctx *ctx, struct hd_run *run,
				  uint32_t flags);
HD_HIDDEN int hd_small_check(const struct hd_run *run, uintptr_t p,
			     size_t *n);
HD_HIDDEN int hd_small_resize(struct hd_run *run, uintptr_t p, size_t old,
			      size_t n);
HD_HIDDEN void hd_small_collect(struct hd_sheap *s, struct hd_run *run);
/* Between small.c and ctx.c only. */
HD_HIDDEN void hd_run_state(struct hd_run *run, uint8_t state);
HD_HIDDEN void hd_list_add(struct hd_run **head, struct hd_run *run);
HD_HIDDEN void hd_list_del(struct hd_run **head, struct hd_run *run);
HD_HIDDEN void hd_run_disown(struct hd_run *run);
HD_HIDDEN void hd_run_empty(struct hd_sheap *s, struct hd_run *run,
			    uint32_t flags);
HD_HIDDEN void hd_run_release(struct hd_sheap *s, struct hd_run *run);
HD_HIDDEN uintptr_t hd_run_end(const struct hd_run *run);
HD_HIDDEN bool hd_empty_cacheable(const struct hd_sheap *s,
				  const struct hd_run *run);

/* ---- ctx.c ---- */

HD_HIDDEN int hd_ctx_init0(struct hd_sheap *s, struct hd_heap *h);
HD_HIDDEN struct hd_ctx *hd_ctx_get(struct hd_sheap *s, struct hd_heap *h,
				    uint32_t tix, struct hd_ctx **tlist);
HD_HIDDEN void hd_ctx_abandon(struct hd_ctx *ctx);
HD_HIDDEN void hd_ctx_release(struct hd_ctx *ctx);
HD_HIDDEN void hd_ctx_set_live(struct hd_sheap *s, uintptr_t live);
HD_HIDDEN void hd_ctx_kill_all(struct hd_sheap *s);
HD_HIDDEN void hd_ctx_delayed(struct hd_ctx *ctx);
HD_HIDDEN void hd_ctx_atfork_child(void);
HD_HIDDEN int hd_small_free_remote(struct hd_sheap *s, struct hd_run *run,
				   uintptr_t p);
HD_HIDDEN int hd_small_free_batch(struct hd_ctx *ctx, struct hd_run *run,
				  uintptr_t p);
HD_HIDDEN void hd_ctx_xflush(struct hd_ctx *ctx);
HD_HIDDEN void hd_ctx_xflush_all(struct hd_sheap *s);
HD_HIDDEN void hd_small_trim(struct hd_sheap *s);
HD_HIDDEN void hd_small_usage(struct hd_sheap *s, size_t *bytes,
			      size_t *blocks);
HD_HIDDEN int hd_small_validate_run(struct hd_sheap *s, struct hd_run *run);
HD_HIDDEN void hd_small_free_all(struct hd_sheap *s);
HD_HIDDEN bool hd_small_limbo_full(const struct hd_sheap *s);
HD_HIDDEN struct hd_run *hd_small_limbo_take(struct hd_sheap *s);
HD_HIDDEN void hd_small_limbo_free(struct hd_sheap *s, struct hd_run *list);

#endif /* HEAPDEV_SMALL_H */
