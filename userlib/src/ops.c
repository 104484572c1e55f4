// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * heapdev: allocation, free, size and realloc, dispatched by block kind,
 * and the out-of-line tails of the fast paths (heap.h).
 *
 * A pointer is resolved without touching memory that may not be there:
 * the page map gives its granule (and so its heap and span), the granule
 * the run covering its page, and only then is anything read.  Small blocks
 * need no lock (their run's owner frees them in place, other threads
 * through the run's remote list); medium and large blocks are handled
 * under the heap lock (HeapLock holds them off) and the allocator lock.
 */
#include <errno.h>

#include "../include/heapdev/win32.h"
#include "heap.h"

/* A bad pointer was passed to free or realloc. */
HD_COLD int hd_bad_ptr(const struct hd_heap *h, const void *p)
{
	hd_corrupt(h->core.handle, p, "not a live block of this heap (double, "
		   "foreign or wild pointer, or a damaged canary or header)");
	return -EINVAL;
}

static void hd_lock_both(struct hd_heap *h, uint32_t flags)
{
	hd_lock_if(&h->core.lock, flags);
	hd_lock_if(&h->core.mlock, flags);
}

static void hd_unlock_both(struct hd_heap *h, uint32_t flags)
{
	hd_unlock_if(&h->core.mlock, flags);
	hd_unlock_if(&h->core.lock, flags);
}

/* Released runs waiting in limbo: run their grace period now. */
static void hd_after_small(struct hd_heap *h, uint32_t flags)
{
	if (unlikely(hd_small_limbo_full(&h->s)))
		hd_grace(h, flags);
}

/* ---- allocation ---- */

/* Requests that are not small, or any request of a fixed heap. */
static void *hd_alloc_big(struct hd_heap *h, size_t n, size_t align,
			  uint32_t flags)
{
	void *p;

	if (h->core.fixed && n >= HD_FIXED_LIMIT)
		return NULL;
	if (n > HD_MAX_REQUEST || align > HD_MAX_REQUEST)
		return NULL;
	hd_lock_if(&h->core.lock, flags);
	if (!h->core.fixed && (n >= HD_LARGE_MIN || align > (64UL << 10))) {
		p = hd_large_alloc(&h->l, n, align, flags);
	} else {
		hd_lock_if(&h->core.mlock, flags);
		p = hd_medium_alloc(&h->m, n, align > 16 ? align : 0, flags);
		hd_unlock_if(&h->core.mlock, flags);
	}
	hd_unlock_if(&h->core.lock, flags);
	return p;
}

/*
 * A small request: a medium block while its class is not active yet (the
 * 18th allocation of a class activates it, as on Windows), else a slot
 * of class @c for context @ctx (NULL: the shared context, under the LFH
 * lock).
 */
static void *hd_alloc_small(struct hd_heap *h, struct hd_ctx *ctx, size_t n,
			    unsigned int c, uint32_t flags)
{
	struct hd_class *cls = &h->s.cls[c];
	void *p;

	if (!atomic_load_explicit(&cls->active, memory_order_acquire)) {
		hd_lock_both(h, flags);
		if (!atomic_load_explicit(&cls->active, memory_order_relaxed)) {
			if (++cls->count < HD_LFH_TRIGGER) {
				p = hd_medium_alloc(&h->m, n, 0, flags);
				hd_unlock_both(h, flags);
				return p;
			}
			atomic_store_explicit(&cls->active, 1,
					      memory_order_release);
			if (!(h->core.flags & HEAPDEV_NO_SERIALIZE))
				atomic_store(&h->compat, 2);
		}
		hd_unlock_both(h, flags);
	}
	if (ctx)
		return hd_small_alloc(ctx, n, c, flags);
	hd_lock_if(&h->s.lock, flags);
	p = hd_small_alloc(&h->s.ctx0, n, c, flags);
	hd_unlock_if(&h->s.lock, flags);
	return p;
}

static void *hd_alloc_ctx(struct hd_heap *h, struct hd_ctx *ctx, size_t n,
			  uint32_t flags)
{
	if (n <= HD_SMALL_MAX && !h->core.fixed)
		return hd_alloc_small(h, ctx, n, hd_class_of(n), flags);
	return hd_alloc_big(h, n, 0, flags);
}

/**
 * hd_alloc() - allocate @n bytes
 * @h: a live heap
 * @n: size
 * @flags: effective flags (creation flags OR call flags)
 *
 * Return: the block, or NULL when there is no memory or @n is above the
 * heap's per-block limit.
 */
void *hd_alloc(struct hd_heap *h, size_t n, uint32_t flags)
{
	return hd_alloc_ctx(h, hd_my_ctx(h), n, flags);
}

/**
 * hd_alloc_aligned() - allocate @n bytes at a multiple of @align
 * @h: a live heap
 * @n: size
 * @align: a power of two
 * @flags: effective flags
 *
 * Alignments up to 16 are what every block has.  Above that, a medium
 * block with the space in front of it left free; for large requests and
 * alignments above 64 KiB (growable heaps), a large span with the block
 * placed at the alignment.  Return: the block or NULL.
 */
void *hd_alloc_aligned(struct hd_heap *h, size_t n, size_t align,
		       uint32_t flags)
{
	if (align <= 16)
		return hd_alloc(h, n, flags);
	return hd_alloc_big(h, n, align, flags);
}

/* ---- free ---- */

/*
 * Free small block @p of @run by whichever way fits the caller: in place
 * when it owns the run (or the heap is HEAP_NO_SERIALIZE), else through
 * the run's remote list.  Return: 0, -EINVAL, or -EAGAIN (not a slot).
 */
static int hd_free_small(struct hd_heap *h, struct hd_run *run, uintptr_t p,
			 uint32_t flags)
{
	int r;

	if (run == HD_EMPTY_RUN)
		return -EAGAIN;
	if (!hd_run_local(run))
		return hd_small_free_remote(&h->s, run, p);
	r = hd_run_free_local(run, p);
	if (r < 0)
		return -EINVAL;
	if (r)
		hd_small_free_slow(atomic_load_explicit(&run->ctx,
							memory_order_relaxed),
				   run, flags);
	hd_after_small(h, flags);
	return 0;
}

/* Free a medium or large block @p of span @sp (both locks taken here). */
static int hd_free_locked(struct hd_heap *h, struct hd_span *sp, uintptr_t p,
			  uint32_t flags)
{
	struct hd_seg *s = (struct hd_seg *)sp;
	size_t n;
	int err;

	hd_lock_both(h, flags);
	if (sp->kind == HD_SPAN_LARGE) {
		err = hd_large_check(&h->l, (struct hd_large *)sp, p);
		if (!err)
			hd_large_free(&h->l, (struct hd_large *)sp);
	} else if (hd_gran_run(hd_gran_of(p), p) != HD_EMPTY_RUN) {
		err = -EAGAIN;	/* a run was carved there meanwhile */
	} else {
		err = hd_medium_check(&h->m, s, p, &n);
		if (!err)
			hd_medium_free(&h->m, s, p);
	}
	hd_unlock_both(h, flags);
	return err;
}

/**
 * hd_free() - free a block
 * @h: a live heap
 * @ptr: the block (not NULL)
 * @flags: effective flags
 *
 * Return: 0, or -EINVAL when @ptr is not a live block of @h (reported as
 * corruption, which may end the process).
 */
int hd_free(struct hd_heap *h, void *ptr, uint32_t flags)
{
	uintptr_t p = (uintptr_t)ptr;
	struct hd_gran *g = hd_gran_of(p);
	struct hd_span *sp = hd_gran_span(g);
	int err;

	if (unlikely(!sp || sp->heap != h || p - sp->base >= sp->size))
		return hd_bad_ptr(h, ptr);
	do {
		err = hd_free_small(h, hd_gran_run(g, p), p, flags);
		if (err == -EAGAIN)
			err = hd_free_locked(h, sp, p, flags);
	} while (err == -EAGAIN);
	return err ? hd_bad_ptr(h, ptr) : 0;
}

/* ---- size, validate, realloc ---- */

/* What a pointer is, checked under the lock that protects it. */
struct hd_blockref {
	int kind;		/* HD_K_RUN, HD_K_MBUSY or HD_K_LARGE */
	struct hd_seg *seg;
	struct hd_run *run;
	struct hd_large *lg;
	size_t n;
};

/*
 * Resolve @p: a small block (no lock is taken), or a medium or large one
 * (both locks taken, held on success).  Return: 0 or -EINVAL (no lock
 * held).
 */
static int hd_lookup(struct hd_heap *h, uintptr_t p, uint32_t flags,
		     struct hd_blockref *ref)
{
	struct hd_gran *g = hd_gran_of(p);
	struct hd_span *sp = hd_gran_span(g);

	if (!sp || sp->heap != h || p - sp->base >= sp->size)
		return -EINVAL;
	for (;;) {
		ref->run = hd_gran_run(g, p);
		if (ref->run != HD_EMPTY_RUN) {
			ref->kind = HD_K_RUN;
			return hd_small_check(ref->run, p, &ref->n);
		}
		hd_lock_both(h, flags);
		if (sp->kind == HD_SPAN_LARGE) {
			ref->kind = HD_K_LARGE;
			ref->lg = (struct hd_large *)sp;
			if (hd_span_of(p) == sp &&
			    !hd_large_check(&h->l, ref->lg, p)) {
				ref->n = ref->lg->n;
				return 0;
			}
			break;
		}
		if (hd_gran_run(g, p) != HD_EMPTY_RUN) {
			hd_unlock_both(h, flags);
			continue;
		}
		ref->kind = HD_K_MBUSY;
		ref->seg = (struct hd_seg *)sp;
		if (!hd_medium_check(&h->m, ref->seg, p, &ref->n))
			return 0;
		break;
	}
	hd_unlock_both(h, flags);
	return -EINVAL;
}

static void hd_lookup_done(struct hd_heap *h, uint32_t flags,
			   const struct hd_blockref *ref)
{
	if (ref->kind != HD_K_RUN)
		hd_unlock_both(h, flags);
}

/*
 * The requested size of a live block.  Return: 0 or -EINVAL.  A query, like
 * HeapValidate: a bad @ptr (NULL included) is only reported with
 * HEAPDEV_DEBUG, never treated as corruption (HeapSize on Windows does not
 * validate the block and fails with (SIZE_T)-1; it does not fail fast).
 */
int hd_size(struct hd_heap *h, const void *ptr, uint32_t flags, size_t *n)
{
	struct hd_blockref ref;

	if (hd_lookup(h, (uintptr_t)ptr, flags, &ref)) {
		hd_dbg("heapdev: heap %p, block %p: size of something that is "
		       "not a live block of this heap", (void *)h->core.handle,
		       ptr);
		return -EINVAL;
	}
	*n = ref.n;
	hd_lookup_done(h, flags, &ref);
	return 0;
}

/* Whether @ptr is a live block of @h; never reports anything. */
int hd_validate_block(struct hd_heap *h, const void *ptr, uint32_t flags)
{
	struct hd_blockref ref;

	if (hd_lookup(h, (uintptr_t)ptr, flags, &ref))
		return -EINVAL;
	hd_lookup_done(h, flags, &ref);
	return 0;
}

/*
 * Resize a slot in place: only within its size class, and with
 * HEAP_REALLOC_IN_PLACE_ONLY only when it shrinks (as native LFH does).
 * Growth within the slot is allowed too (a moved block may have been
 * given a bigger class than it needed).
 */
static void *hd_small_realloc(struct hd_blockref *ref, uintptr_t p, size_t n,
			      uint32_t flags)
{
	struct hd_run *run = ref->run;

	if (n > HD_SMALL_MAX || n + 8 > run->stride ||
	    (n < ref->n && hd_class_of(n) != run->cls) ||
	    ((flags & HEAPDEV_IN_PLACE) && n >= ref->n))
		return NULL;
	hd_small_resize(run, p, ref->n, n);
	return (void *)p;
}

/*
 * A block of @n bytes for a block of @oldn bytes that grows and has to
 * move, with room to grow in place (HeapSize stays @n), or NULL.  A slot
 * comes from a class a quarter above @n; a medium block is taken from a
 * free block half as big again, whose tail stays a free block right after
 * it (a medium block's header check allows less than 80 unused bytes
 * inside it).  A block that more than doubles gets none: that is not a
 * block growing step by step.
 */
static void *hd_alloc_room(struct hd_heap *h, size_t oldn, size_t n,
			   uint32_t flags)
{
	size_t room = n + n / 4 + 16;
	unsigned int c;
	void *p;

	if (h->core.fixed || n / 2 > oldn || n >= HD_LARGE_MIN)
		return NULL;
	if (n > HD_SMALL_MAX) {
		room = n / 2;
		if (n + room >= HD_LARGE_MIN)
			room = HD_LARGE_MIN - 1 - n;
		if (room < HD_PAGE)
			return NULL;
		hd_lock_if(&h->core.lock, flags);
		hd_lock_if(&h->core.mlock, flags);
		p = hd_medium_alloc_room(&h->m, n, room);
		hd_unlock_if(&h->core.mlock, flags);
		hd_unlock_if(&h->core.lock, flags);
		return p;
	}
	c = hd_class_of(room < HD_SMALL_MAX ? room : HD_SMALL_MAX);
	if (!atomic_load_explicit(&h->s.cls[c].active, memory_order_acquire))
		return NULL;
	return hd_alloc_small(h, hd_my_ctx(h), n, c, flags);
}

/* Move a block: allocate, copy, free.  Return: the new block or NULL. */
static void *hd_move(struct hd_heap *h, void *old, size_t oldn, size_t n,
		     uint32_t flags)
{
	void *q = n > oldn ? hd_alloc_room(h, oldn, n, flags & ~HEAPDEV_ZERO) :
				 NULL;

	if (!q)
		q = hd_alloc(h, n, flags & ~HEAPDEV_ZERO);
	if (!q)
		return NULL;
	memcpy(q, old, oldn < n ? oldn : n);
	if ((flags & HEAPDEV_ZERO) && n > oldn)
		memset((char *)q + oldn, 0, n - oldn);
	hd_free(h, old, flags);
	return q;
}

/**
 * hd_realloc() - resize a block
 * @h: a live heap
 * @ptr: a block (not NULL)
 * @n: new size
 * @flags: effective flags
 * @err: out: -EINVAL (bad pointer, reported) or -ENOMEM
 *
 * On failure the block is unchanged.  Return: the block or NULL.
 */
void *hd_realloc(struct hd_heap *h, void *ptr, size_t n, uint32_t flags,
		 int *err)
{
	uintptr_t p = (uintptr_t)ptr;
	struct hd_blockref ref;
	void *q = NULL;
	size_t old;

	if (hd_lookup(h, p, flags, &ref)) {
		*err = hd_bad_ptr(h, ptr);
		return NULL;
	}
	old = ref.n;
	*err = -ENOMEM;
	if (n > HD_MAX_REQUEST || (h->core.fixed && n >= HD_FIXED_LIMIT)) {
		hd_lookup_done(h, flags, &ref);
		return NULL;
	}
	if (ref.kind == HD_K_RUN)
		q = hd_small_realloc(&ref, p, n, flags);
	else if (ref.kind == HD_K_MBUSY)
		q = hd_medium_realloc(&h->m, ref.seg, p, n);
	else
		q = hd_large_realloc(&h->l, ref.lg, n, flags);
	hd_lookup_done(h, flags, &ref);
	if (q) {
		if ((flags & HEAPDEV_ZERO) && n > old)
			memset((char *)q + old, 0, n - old);
		return q;
	}
	if (flags & HEAPDEV_IN_PLACE)
		return NULL;
	q = hd_move(h, ptr, old, n, flags);
	if (q)
		*err = 0;
	return q;
}

/* ---- compaction ---- */

/*
 * Release empty runs, empty secondary segments and cached large spans,
 * and decommit every whole free page (HeapCompact, HeapOptimizeResources).
 * Return: the largest free committed medium block's usable size.
 */
size_t hd_compact(struct hd_heap *h, uint32_t flags)
{
	size_t largest;

	hd_lock_if(&h->core.lock, flags);
	hd_lock_if(&h->s.lock, flags);
	hd_lock_if(&h->core.mlock, flags);
	hd_pause(h, flags);
	hd_small_trim(&h->s);
	hd_lcache_trim(&h->l, true);
	hd_medium_trim(&h->m, true);
	hd_release_empty_segments(&h->m, true);
	largest = hd_largest_free(&h->m);
	hd_unpause(h, flags);
	hd_unlock_if(&h->core.mlock, flags);
	hd_unlock_if(&h->s.lock, flags);
	hd_unlock_if(&h->core.lock, flags);
	hd_grace(h, flags);
	return largest;
}

void hd_trim_heap(struct hd_heap *h, uint32_t flags)
{
	hd_compact(h, flags);
}

/*
 * ---- out-of-line paths of the fast paths (heap.h) ----
 *
 * Each is the tail of an API call entered by HeapAlloc, HeapFree,
 * heapdev_alloc or heapdev_free, and leaves the call (hd_leave()) once,
 * after its last access to the heap.  The inline fast paths do not name
 * the call's heap (hd_use(): one store less; a HeapDestroy of another heap
 * waits for them, which takes a few nanoseconds); every path given a heap
 * names it first, before it may block on a lock.
 */

/*
 * An allocation failed: leave the call, then report it as @api does (the
 * exception handler may longjmp out).
 */
static HD_COLD void *hd_alloc_fail(struct hd_heap *h, size_t n,
				   uint32_t flags, int api)
{
	hd_leave();
	if (api == HD_API_NATIVE) {
		errno = hd_alloc_errno();
		return NULL;
	}
	hd_last_error = ERROR_NOT_ENOUGH_MEMORY;
	if (flags & HEAP_GENERATE_EXCEPTIONS)
		hd_raise(STATUS_NO_MEMORY, h->core.handle, NULL, n, "HeapAlloc");
	return NULL;
}

/* HEAP_ZERO_MEMORY out of the fast path, so that it needs no frame. */
void *hd_zero_ret(void *p, size_t n)
{
	memset(p, 0, n);
	hd_leave();
	return p;
}

static void *hd_alloc_done(struct hd_heap *h, void *p, size_t n,
			   uint32_t flags, int api)
{
	if (unlikely(!p))
		return hd_alloc_fail(h, n, flags, api);
	hd_leave();
	return p;
}

/* Allocation through a handle that the per-thread cache did not know. */
void *hd_alloc_path(const void *hh, uint32_t call_flags, size_t n, int api)
{
	struct hd_heap *h;
	uint32_t flags;

	hd_thread_check();
	hd_commit_err = 0;
	h = hd_heap_get(hh);
	if (unlikely(!h)) {
		hd_leave();
		if (api == HD_API_NATIVE)
			errno = EINVAL;
		else
			hd_last_error = ERROR_INVALID_HANDLE;
		return NULL;
	}
	flags = h->core.flags | call_flags;
	return hd_alloc_done(h, hd_alloc(h, n, flags), n, flags, api);
}

/* The current run of the class had no slot at hand (or no run). */
void *hd_refill_path(struct hd_ctx *ctx, uint32_t call_flags, size_t n,
		     int api)
{
	struct hd_heap *h = ctx->heap;
	uint32_t flags = h->core.flags | call_flags;

	hd_use(h);
	hd_commit_err = 0;
	return hd_alloc_done(h, hd_alloc_ctx(h, ctx, n, flags), n, flags, api);
}

/*
 * Leave the call, and return the result of a free for @api: TRUE/FALSE,
 * or 0/-errno.
 */
static int hd_free_result(int err, int api)
{
	hd_leave();
	if (api == HD_API_NATIVE)
		return err;
	if (err)
		hd_last_error = err == -EBADF ? ERROR_INVALID_HANDLE :
				ERROR_INVALID_PARAMETER;
	return !err;
}

/* Free with a pointer or handle that the fast path did not resolve. */
int hd_free_path(const void *hh, uint32_t call_flags, void *p, int api)
{
	struct hd_heap *h;

	hd_thread_check();
	h = hd_heap_get(hh);
	if (!h)
		return hd_free_result(-EBADF, api);
	return hd_free_result(hd_free(h, p, h->core.flags | call_flags), api);
}

/*
 * The heap of granule @g, named as the call's, if it is still the live
 * heap of handle @hh; else NULL (a destroy or a pause got in between).
 */
static struct hd_heap *hd_gran_heap(struct hd_gran *g, uintptr_t hh)
{
	struct hd_span *sp = hd_gran_span(g);
	struct hd_heap *h = sp ? sp->heap : NULL;

	if (!h)
		return NULL;
	hd_use(h);
	if (hd_live(h) != hh ||
	    atomic_load_explicit(&h->paused, memory_order_acquire))
		return NULL;
	return h;
}

/* A free into a run that another thread owns. */
int hd_free_remote_path(const void *hh, struct hd_gran *g, struct hd_run *run,
			uintptr_t p, uint32_t call_flags, int api)
{
	struct hd_heap *h = hd_gran_heap(g, (uintptr_t)hh);
	struct hd_ctx *ctx = hd_tcache(hh)->ctx;
	bool mine;
	int err;

	if (!h)
		return hd_free_path(hh, call_flags, (void *)p, api);
	/*
	 * The context is used only after it was seen live, inside this
	 * call: a pause or a destroy waits for the call to end.
	 */
	mine = hd_tcache(hh)->handle == (uintptr_t)hh &&
	       atomic_load_explicit(&ctx->live, memory_order_acquire) ==
	       (uintptr_t)hh && ctx->owner == hd_self();
	err = mine ? hd_small_free_batch(ctx, run, p) :
	      hd_small_free_remote(&h->s, run, p);
	if (err == -EAGAIN)
		err = hd_free(h, (void *)p, h->core.flags | call_flags);
	else if (err)
		err = hd_bad_ptr(h, (void *)p);
	else if (!mine && hd_tls.tix < HD_NTCTX)
		hd_heap_get_slow(hh);	/* make the context for the next */
	return hd_free_result(err, api);
}

/*
 * The fast path found no live slot of a run of its own at @p: a medium or
 * large block, or a bad pointer.
 */
int hd_free_other_path(const void *hh, struct hd_gran *g, struct hd_run *run,
		       uintptr_t p, uint32_t call_flags, int api)
{
	struct hd_heap *h = hd_gran_heap(g, (uintptr_t)hh);

	if (!h)
		return hd_free_path(hh, call_flags, (void *)p, api);
	if (run != HD_EMPTY_RUN)
		return hd_free_result(hd_bad_ptr(h, (void *)p), api);
	return hd_free_result(hd_free(h, (void *)p,
				      h->core.flags | call_flags), api);
}

/* A local free into @run needs the slow path (hd_small_free_slow()). */
int hd_free_slow_path(struct hd_run *run, uint32_t call_flags, int api)
{
	struct hd_ctx *ctx = atomic_load_explicit(&run->ctx,
						  memory_order_relaxed);
	struct hd_heap *h = ctx->heap;
	uint32_t flags = h->core.flags | call_flags;

	hd_use(h);
	hd_small_free_slow(ctx, run, flags);
	hd_after_small(h, flags);
	return hd_free_result(0, api);
}

/*
 * The inline realloc moved a block and its free into @run needs the slow
 * path: finish it and leave the call with the new block @q.
 */
void *hd_realloc_tail(struct hd_run *run, uint32_t call_flags, void *q)
{
	struct hd_ctx *ctx = atomic_load_explicit(&run->ctx,
						  memory_order_relaxed);
	struct hd_heap *h = ctx->heap;
	uint32_t flags = h->core.flags | call_flags;

	hd_use(h);
	hd_small_free_slow(ctx, run, flags);
	hd_after_small(h, flags);
	hd_leave();
	return q;
}
