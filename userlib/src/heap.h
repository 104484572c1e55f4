/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * heapdev: the heap layer: heap objects, the call protocol, dispatch by
 * block kind and walks (heap.c, thread.c, ops.c, walk.c), and the inline
 * fast paths that the native and Win32 entry points share.
 *
 * The call protocol.  Every API call stores "in a call" in its thread's
 * state word on entry (hd_enter_fast()), the heap once it has seen the
 * heap live (hd_use()), and "idle" on exit (hd_leave()).  HeapDestroy
 * claims a heap (clears @live, every context's @live and the segments'
 * granule handles), runs a barrier on every CPU of the process (the
 * asymmetric Dekker pattern) and waits for the threads whose call may be
 * on that heap; so does a *pause*, which holds a heap still for a while
 * (HeapValidate of the whole heap, HeapCompact, HeapSummary): calls that
 * start during a pause wait for its end in hd_heap_get().  The same wait,
 * on every thread's call, is the grace period after which the descriptors
 * of released runs can be reused (small.h).
 */
#ifndef HEAPDEV_HEAP_H
#define HEAPDEV_HEAP_H

#include "large.h"
#include "small.h"

/**
 * struct hd_heap - a heap
 * @live: the handle while lookups may find the heap; 0 from the moment
 *	HeapDestroy claims it, and while the struct is being set up
 * @paused: a pause holds the heap (calls that start wait in
 *	hd_heap_get())
 * @core: what every layer knows of the heap (page.h)
 * @s: small blocks
 * @m: segments and medium blocks
 * @l: large blocks
 * @process_heap: the process heap (cannot be destroyed)
 * @compat: HeapCompatibilityInformation (0, or 2 once the LFH is on)
 * @rnext: registry list
 * @rprev: registry list
 * @dnext: list of heaps being destroyed
 *
 * Heap structs are never given back to libc: destroyed ones are recycled,
 * so a stale pointer can always be read.
 */
struct hd_heap {
	_Atomic uintptr_t live;
	_Atomic uint32_t paused;
	struct hd_core core;
	struct hd_sheap s;
	struct hd_mheap m;
	struct hd_lheap l;
	bool process_heap;
	_Atomic uint32_t compat;
	struct hd_heap *rnext, *rprev;
	struct hd_heap *dnext;
};

/* ---- threads and the call protocol (thread.c) ---- */

#define HD_TCACHE	8	/* heaps a thread reaches without a lookup */

/**
 * struct hd_tls - a thread's state
 * @hc: the thread's context on the heaps it used last, indexed by the
 *	handle's bits 22-24; an entry counts only while its context's @live
 *	is the handle
 * @state: HD_ST_IDLE outside calls; HD_ST_CALL inside one whose heap is
 *	not known yet; the heap's address once it is (heap structs are
 *	64-byte aligned).  HD_ST_MARK is set by a waiting HeapDestroy, pause
 *	or grace period; any store of the owner clears it
 * @reg: the thread is known to HeapDestroy
 * @tix: the thread's index (small.h: HD_NTCTX for none)
 * @ctxs: the thread's contexts
 */
struct hd_tls {
	struct {
		uintptr_t handle;
		struct hd_ctx *ctx;
	} hc[HD_TCACHE];
	_Atomic uintptr_t state;
	bool reg;
	uint32_t tix;
	struct hd_ctx *ctxs;
};

#define HD_ST_IDLE	((uintptr_t)0)
#define HD_ST_CALL	((uintptr_t)1)
#define HD_ST_MARK	((uintptr_t)2)

HD_HIDDEN extern __thread struct hd_tls hd_tls
	__attribute__((tls_model("initial-exec")));

HD_HIDDEN void hd_thread_register(void);
HD_HIDDEN void hd_quiesce(const struct hd_heap *h);
HD_HIDDEN void hd_pause(struct hd_heap *h, uint32_t flags);
HD_HIDDEN void hd_unpause(struct hd_heap *h, uint32_t flags);
HD_HIDDEN void hd_pause_wait(struct hd_heap *h);
HD_HIDDEN void hd_grace(struct hd_heap *h, uint32_t flags);
HD_HIDDEN struct hd_ctx *hd_my_ctx(struct hd_heap *h);
HD_HIDDEN void hd_thread_atfork_child(bool (*kept)(const struct hd_heap *h));

/*
 * Enter an API call.  The store is ordered before the call's first look at
 * the page map or a heap by a compiler barrier here and a barrier on every
 * CPU in HeapDestroy and pauses (hd_heavy_barrier()).
 *
 * A thread's first call must register it (hd_thread_check()) before it
 * looks at the page map or a heap.  The fast paths leave that to their
 * out-of-line paths (a thread's first HeapAlloc always misses the
 * per-thread cache; HeapFree tests @reg), so that they need no frame.
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

/* The call works on heap @h from now on (its @live matched). */
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

/* The handle under which @h may be looked up now, or 0. */
static inline uintptr_t hd_live(const struct hd_heap *h)
{
	return atomic_load_explicit(&h->live, memory_order_acquire);
}

/* The per-thread cache entry for handle @hh. */
#define hd_tcache(hh)	(&hd_tls.hc[((uintptr_t)(hh) >> HD_CHUNK_SHIFT) & \
				    (HD_TCACHE - 1)])

HD_HIDDEN struct hd_heap *hd_heap_get_slow(const void *hh);

/* The live heap whose handle is @hh (the call's heap from now on), or NULL. */
static inline struct hd_heap *hd_heap_get(const void *hh)
{
	struct hd_ctx *ctx = hd_tcache(hh)->ctx;

	if (likely(hd_tcache(hh)->handle == (uintptr_t)hh &&
		   atomic_load_explicit(&ctx->live, memory_order_acquire) ==
		   (uintptr_t)hh)) {
		hd_use(ctx->heap);
		return ctx->heap;
	}
	return hd_heap_get_slow(hh);
}

/* ---- heaps (heap.c) ---- */

HD_HIDDEN int hd_heap_create(uint32_t flags, uint64_t initial,
			     uint64_t maximum, int backend,
			     struct hd_heap **out);
HD_HIDDEN int hd_heap_destroy(struct hd_heap *h, uintptr_t handle);
HD_HIDDEN struct hd_heap *hd_heap_dying(const void *hh);
HD_HIDDEN struct hd_heap *hd_process_heap(int *err);
HD_HIDDEN void hd_warm_release(bool all);
HD_HIDDEN void hd_registry_unlock(void);
HD_HIDDEN size_t hd_heap_handles(void **out, size_t cap);

/* A registered heap and its handle, as the registry had them. */
struct hd_heap_ref {
	struct hd_heap *heap;
	uintptr_t handle;
};

HD_HIDDEN size_t hd_heap_refs(struct hd_heap_ref *out, size_t cap);

/* ---- operations (ops.c) ---- */

enum { HD_API_W32, HD_API_NATIVE };

HD_HIDDEN void *hd_alloc(struct hd_heap *h, size_t n, uint32_t flags);
HD_HIDDEN void *hd_alloc_aligned(struct hd_heap *h, size_t n, size_t align,
				 uint32_t flags);
HD_HIDDEN int hd_bad_ptr(const struct hd_heap *h, const void *p);
HD_HIDDEN int hd_free(struct hd_heap *h, void *p, uint32_t flags);
HD_HIDDEN void *hd_realloc(struct hd_heap *h, void *p, size_t n,
			   uint32_t flags, int *err);
HD_HIDDEN int hd_size(struct hd_heap *h, const void *p, uint32_t flags,
		      size_t *n);
HD_HIDDEN int hd_validate_block(struct hd_heap *h, const void *p,
				uint32_t flags);
HD_HIDDEN size_t hd_compact(struct hd_heap *h, uint32_t flags);
HD_HIDDEN void hd_trim_heap(struct hd_heap *h, uint32_t flags);

/* The tails of the fast paths; each leaves the call (hd_leave()). */
HD_HIDDEN void *hd_alloc_path(const void *hh, uint32_t call_flags, size_t n,
			      int api);
HD_HIDDEN void *hd_refill_path(struct hd_ctx *ctx, uint32_t call_flags,
			       size_t n, int api);
HD_HIDDEN void *hd_zero_ret(void *p, size_t n);
HD_HIDDEN int hd_free_path(const void *hh, uint32_t call_flags, void *p,
			   int api);
HD_HIDDEN int hd_free_remote_path(const void *hh, struct hd_gran *g,
				  struct hd_run *run, uintptr_t p,
				  uint32_t call_flags, int api);
HD_HIDDEN int hd_free_other_path(const void *hh, struct hd_gran *g,
				 struct hd_run *run, uintptr_t p,
				 uint32_t call_flags, int api);
HD_HIDDEN int hd_free_slow_path(struct hd_run *run, uint32_t call_flags,
				int api);
HD_HIDDEN void *hd_realloc_tail(struct hd_run *run, uint32_t call_flags,
				void *q);

/* What a free that worked returns for @api. */
static inline int hd_free_ok(int api)
{
	return api == HD_API_W32;
}

/*
 * Allocate @n bytes from heap @hh: an inline pop from the current run of
 * the caller's context when the per-thread cache knows the heap and the
 * size is small; everything else in hd_alloc_path() or hd_refill_path().
 * No atomic instruction, no call, no stack frame on the fast path.
 * @call_flags: the call's HEAPDEV_ZERO and HEAPDEV_NOLOCK bits (Win32:
 * HEAP_ZERO_MEMORY, HEAP_NO_SERIALIZE, HEAP_GENERATE_EXCEPTIONS).
 */
static inline void *hd_alloc_fast(const void *hh, uint32_t call_flags,
				  size_t n, int api)
{
	struct hd_ctx *ctx;
	struct hd_run *run;
	uintptr_t p;

	hd_enter_fast();
	ctx = hd_tcache(hh)->ctx;
	if (unlikely(hd_tcache(hh)->handle != (uintptr_t)hh ||
		     atomic_load_explicit(&ctx->live, memory_order_acquire) !=
		     (uintptr_t)hh || n > HD_SMALL_MAX))
		return hd_alloc_path(hh, call_flags, n, api);
	run = ctx->cur[hd_class_of(n)];
	HD_RUN_POP(run, p, n, hd_refill_path(ctx, call_flags, n, api));
	if (call_flags & HEAPDEV_ZERO)
		return hd_zero_ret((void *)p, n);
	hd_leave();
	return (void *)p;
}

/*
 * Free @ptr (not NULL) of heap @hh: the page map gives the granule (whose
 * handle must be @hh) and the run; a slot of a run the caller owns (or of
 * a HEAP_NO_SERIALIZE heap) goes onto the run's deferred list inline.
 * Frees into other threads' runs, medium and large blocks and everything
 * wrong leave through the out-of-line paths.
 */
static inline int hd_free_fast(const void *hh, uint32_t call_flags,
			       void *ptr, int api)
{
	uintptr_t p = (uintptr_t)ptr;
	struct hd_gran *g;
	struct hd_run *run;
	int r;

	hd_enter_fast();
	g = hd_gran_of(p);
	if (unlikely(atomic_load_explicit(&g->handle, memory_order_acquire) !=
		     (uintptr_t)hh || !hd_tls.reg))
		return hd_free_path(hh, call_flags, ptr, api);
	run = hd_gran_run(g, p);
	if (unlikely(!hd_run_local(run)))
		return hd_free_remote_path(hh, g, run, p, call_flags, api);
	r = hd_run_free_local(run, p);
	if (unlikely(r)) {
		if (r < 0)
			return hd_free_other_path(hh, g, run, p, call_flags,
						  api);
		return hd_free_slow_path(run, call_flags, api);
	}
	hd_leave();
	return hd_free_ok(api);
}

/*
 * Resize block @ptr (not NULL) of heap @hh to @n bytes inline, when the
 * per-thread cache knows the heap, @ptr is a live slot of a run the
 * caller frees locally (hd_free_fast()'s checks) and @n is small: within
 * the slot (growth up to its stride, a shrink within its class, as
 * hd_realloc() does), or moved to a slot of the context's current run of
 * the new class, one a quarter bigger when the block grows by at most
 * double (hd_alloc_room()), and the old slot freed onto its run's
 * deferred list.  HEAPDEV_ZERO and HEAPDEV_IN_PLACE calls are left to
 * the slow path.  Return: the block, the call left; or NULL when nothing
 * was done and the slow path must do it (the call stays entered).
 */
static inline void *hd_realloc_fast(const void *hh, uint32_t call_flags,
				    void *ptr, size_t n)
{
	uintptr_t p = (uintptr_t)ptr, q;
	struct hd_run *run, *to;
	struct hd_ctx *ctx;
	struct hd_gran *g;
	size_t old, room;
	unsigned int v;
	long i;

	hd_enter_fast();
	ctx = hd_tcache(hh)->ctx;
	if (unlikely(hd_tcache(hh)->handle != (uintptr_t)hh ||
		     atomic_load_explicit(&ctx->live, memory_order_acquire) !=
		     (uintptr_t)hh || n > HD_SMALL_MAX ||
		     (call_flags & (HEAPDEV_ZERO | HEAPDEV_IN_PLACE))))
		return NULL;
	g = hd_gran_of(p);
	if (unlikely(atomic_load_explicit(&g->handle, memory_order_acquire) !=
		     (uintptr_t)hh))
		return NULL;
	run = hd_gran_run(g, p);
	if (unlikely(!hd_run_local(run)))
		return NULL;
	i = hd_run_index(run, p);
	if (unlikely(i < 0))
		return NULL;
	v = hd_run_busy(run, i, p);
	if (unlikely(!v))
		return NULL;
	old = v - 1;
	if (n + 8 <= run->stride && (n >= old || hd_class_of(n) == run->cls)) {
		atomic_store_explicit(&run->sizes[i], (uint16_t)(n + 1),
				      memory_order_relaxed);
		run->nbytes += n - old;
		hd_leave();
		return ptr;
	}
	room = n;
	if (n > old && n / 2 <= old) {
		room = n + n / 4 + 16;
		if (room > HD_SMALL_MAX)
			room = HD_SMALL_MAX;
	}
	to = ctx->cur[hd_class_of(room)];
	HD_RUN_POP(to, q, n, NULL);
	memcpy((void *)q, ptr, old < n ? old : n);
	atomic_store_explicit(&run->sizes[i], 0, memory_order_relaxed);
	*(uintptr_t *)p = run->dfree ^ run->lkey ^ p;
	run->dfree = p;
	run->nbytes -= old;
	if (unlikely(--run->used == run->care))
		return hd_realloc_tail(run, call_flags, (void *)q);
	hd_leave();
	return (void *)q;
}

/* ---- walks, validation, counters (walk.c) ---- */

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

#endif /* HEAPDEV_HEAP_H */
