/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * heapdev: the inline fast paths of allocation and free, shared by the
 * Win32 and native entry points.
 *
 * The fast paths cover LFH sizes on heaps that are either
 * HEAP_NO_SERIALIZE or whose LFH lock is biased towards the calling thread
 * (every heap used by one thread): no atomic instruction, no system call,
 * no function call.  Allocation pops the current run's free list, checks the
 * popped slot (its encoded header and the next link) and writes the busy
 * header; free finds the run through the page map and the granule table,
 * checks and rewrites the header and pushes the slot.
 *
 * Everything else leaves through a tail call to an out-of-line path
 * (alloc.c), so that the fast paths need no stack frame.  The API call was
 * entered (hd_enter()) by the caller; every path here, inline or out of
 * line, leaves it (hd_leave()) exactly once, after its last access to the
 * heap.  @api says how
 * those paths report errors: the thread's last error (Win32) or errno.
 */
#ifndef HEAPDEV_FAST_H
#define HEAPDEV_FAST_H

#include "internal.h"

enum { HD_API_W32, HD_API_NATIVE };

/* Out-of-line paths (alloc.c); each reports its errors for @api. */
HD_HIDDEN void *hd_alloc_path(const void *hh, uint32_t call_flags, size_t n,
			      int api);
HD_HIDDEN void *hd_alloc_locked_path(struct hd_heap *h, size_t n,
				     uint32_t flags, int api);
HD_HIDDEN void *hd_refill_path(struct hd_heap *h, size_t n, uint32_t flags,
			       int api);
/*
 * Free paths return what the API returns: TRUE/FALSE for Win32, 0 or a
 * negative errno for the native API.
 */
HD_HIDDEN int hd_free_path(const void *hh, uint32_t call_flags, void *p,
			   int api);
HD_HIDDEN int hd_free_locked_path(struct hd_heap *h, struct hd_span *sp,
				  uintptr_t p, uint32_t flags, int api);
HD_HIDDEN int hd_bad_free(struct hd_heap *h, struct hd_span *sp,
			  struct hd_run *run, uintptr_t p, uint32_t flags,
			  int api);
HD_HIDDEN void *hd_aff_alloc_path(struct hd_heap *h, size_t n, uint32_t flags,
				  int api);
HD_HIDDEN int hd_free_word_path(struct hd_heap *h, struct hd_span *sp,
				uintptr_t p, uint32_t flags, int api);
HD_HIDDEN int hd_aff_empty_path(struct hd_heap *h, struct hd_run *run,
				unsigned int k, uint32_t flags, int api);
HD_HIDDEN int hd_aff_free_path(struct hd_heap *h, struct hd_span *sp,
			       uintptr_t p, uint32_t flags, int api);
HD_HIDDEN int hd_free_slow_path(struct hd_heap *h, struct hd_run *run,
				uint32_t flags, int api);

/* What a free that worked returns for @api. */
static inline int hd_free_ok(int api)
{
	return api == HD_API_W32;
}

HD_HIDDEN void *hd_wake_ret(struct hd_lock *l, void *p, size_t n,
			    uint32_t flags);
/* Zero the new block @p of @n bytes, leave the call, return @p. */
HD_HIDDEN void *hd_zero_ret(void *p, size_t n);

enum { HD_LK_FAIL, HD_LK_NONE, HD_LK_BIAS, HD_LK_AFF };

/*
 * Take the LFH lock without a function call: nothing for
 * HEAP_NO_SERIALIZE, plain stores through the bias.  On a shared heap (the
 * bias revoked) nothing either: HD_LK_AFF sends the caller to the
 * affinity slots (struct hd_aff).  HD_LK_FAIL: the caller takes the
 * general path (another thread holds the bias).
 */
static inline int hd_lfh_lock_fast(struct hd_heap *h, uint32_t flags)
{
	struct hd_lock *l = &h->lfh_lock;

	if (flags & HEAPDEV_NO_SERIALIZE)
		return HD_LK_NONE;
	if (likely(hd_lock_fast(l)))
		return HD_LK_BIAS;
	if (atomic_load_explicit(&l->bias, memory_order_relaxed))
		return HD_LK_FAIL;
	return HD_LK_AFF;
}

/*
 * Pop the first free slot of @run into @p and make it a busy block of @n
 * bytes; when the run has none at hand, return @fail instead.  One test
 * for an empty list (free == first + span) and for a link that a write to
 * a freed slot sent out of the run.
 */
#define HD_SMALL_POP(h, run, p, n, fail) do {				\
	(p) = (run)->free;						\
	if (unlikely((p) - (run)->first >= (run)->span))		\
		return (fail);						\
	(run)->free = hd_rdlink((h), (p));				\
	(run)->used++;							\
	*(uint64_t *)((p) - 8) = ((run)->hbusy | (uint64_t)(n) << 24) ^	\
				 hd_key((h), (p) - 8);			\
} while (0)

/*
 * Push slot @p into the free list of @run if it is a busy slot of it: in
 * the run and 16-byte aligned (rotating the low bits up makes a
 * misaligned offset huge), and its encoded header says "busy, this
 * class".  No exact slot arithmetic: a pointer that is not a slot start
 * finds user data where the header would be, and 44 bits of it must match
 * an encoding that depends on the heap's secret and on the address.
 * (Headers left in memory by released runs all say "free": runs are
 * released empty.)  @run->used is the caller's.  Return: false (nothing
 * changed) when @p is not a busy slot of @run.
 */
static inline bool hd_slot_push(struct hd_heap *h, struct hd_run *run,
				uintptr_t p)
{
	uintptr_t d = p - run->first;
	uint64_t key, w;

	if (unlikely(((d >> 4) | (d << 60)) >= run->span16))
		return false;
	key = hd_key(h, p - 8);
	w = *(uint64_t *)(p - 8) ^ key;
	if (unlikely(!hd_sbusy_is(w, run->hbusy)))
		return false;
	*(uint64_t *)(p - 8) = run->hfree ^ key;
	hd_wrlink(h, p, run->free);
	run->free = p;
	return true;
}

/*
 * Allocate an LFH size on a shared heap: pop the current run of the
 * thread's affinity slot under the slot's lock when the lock is free and
 * the run has a free slot at hand; otherwise hd_aff_alloc_path().
 */
static inline void *hd_aff_alloc_fast(struct hd_heap *h, size_t n,
				      uint32_t flags, int api)
{
	struct hd_aff *a = &h->aff[hd_tls.aff];
	struct hd_run *run;
	uintptr_t p;

	if (unlikely(atomic_exchange_explicit(&a->word, 1,
					      memory_order_acquire)))
		return hd_aff_alloc_path(h, n, flags, api);
	run = a->cur[hd_class_of(n)];
	p = run->free;
	if (unlikely(p - run->first >= run->span)) {
		hd_aff_unlock(a);
		return hd_aff_alloc_path(h, n, flags, api);
	}
	run->free = hd_rdlink(h, p);
	run->used++;
	*(uint64_t *)(p - 8) = (run->hbusy | (uint64_t)n << 24) ^
			       hd_key(h, p - 8);
	hd_aff_unlock(a);
	if (flags & HEAPDEV_ZERO)
		return hd_zero_ret((void *)p, n);
	hd_leave();
	return (void *)p;
}

/*
 * Free slot @p of @run, found in the granule table without a lock, on a
 * shared heap: when the run is the current run of an affinity slot whose
 * lock is free, push it under that lock (such a run stays the slot's, in
 * place, while the lock is held, and only the free that empties a run of
 * a big class changes its state); otherwise hd_aff_free_path().
 */
static inline int hd_aff_free_fast(struct hd_heap *h, struct hd_span *sp,
				   struct hd_run *run, uintptr_t p,
				   uint32_t flags, int api)
{
	unsigned int k = atomic_load_explicit(&run->aff, memory_order_relaxed);
	struct hd_aff *a = &h->aff[k & (HD_NAFF - 1)];

	if (run == &hd_dummy_run)	/* a medium block, or not a block */
		return hd_free_locked_path(h, sp, p, flags, api);
	if (k >= HD_NAFF) {
		/* In no slot: under the LFH lock, taken here when free. */
		if (likely(hd_lfh_trylock(h)))
			return hd_free_word_path(h, sp, p, flags, api);
		return hd_aff_free_path(h, sp, p, flags, api);
	}
	if (atomic_exchange_explicit(&a->word, 1, memory_order_acquire))
		return hd_aff_free_path(h, sp, p, flags, api);
	if (unlikely(atomic_load_explicit(&run->aff, memory_order_relaxed) !=
		     k || hd_gtab_load((struct hd_seg *)sp, p) != run)) {
		hd_aff_unlock(a);
		return hd_aff_free_path(h, sp, p, flags, api);
	}
	if (unlikely(!hd_slot_push(h, run, p)))
		goto bad;
	if (unlikely(--run->used == run->care))
		return hd_aff_empty_path(h, run, k, flags, api);
	hd_aff_unlock(a);
	hd_leave();
	return hd_free_ok(api);
bad:
	hd_aff_unlock(a);
	return hd_bad_free(h, sp, run, p, flags, api);
}

/*
 * Allocate an LFH size (n <= HD_SMALL_MAX) on a growable heap.  The call
 * has not named its heap (hd_use()): it cannot block here, and the
 * out-of-line paths name it.  A HEAP_NO_SERIALIZE heap has a path of its
 * own, without a look at the lock.
 */
static inline void *hd_small_alloc_fast(struct hd_heap *h, size_t n,
					uint32_t flags, int api)
{
	struct hd_run *run;
	uintptr_t p;
	int how;

	if (flags & HEAPDEV_NO_SERIALIZE) {
		run = h->cur[hd_class_of(n)];
		HD_SMALL_POP(h, run, p, n, hd_refill_path(h, n, flags, api));
	} else {
		how = hd_lfh_lock_fast(h, flags);
		if (unlikely(how != HD_LK_BIAS)) {
			if (how == HD_LK_AFF)
				return hd_aff_alloc_fast(h, n, flags, api);
			return hd_alloc_locked_path(h, n, flags, api);
		}
		run = h->cur[hd_class_of(n)];
		HD_SMALL_POP(h, run, p, n, hd_refill_path(h, n, flags, api));
		hd_unlock_fast(&h->lfh_lock);
	}
	if (flags & HEAPDEV_ZERO)
		return hd_zero_ret((void *)p, n);
	hd_leave();
	return (void *)p;
}

/*
 * Free slot @p of @run; the LFH lock is held unless @flags has
 * HEAP_NO_SERIALIZE, and released here.  Return: 0 or -EINVAL.
 */
static inline int hd_small_free(struct hd_heap *h, struct hd_run *run,
				uintptr_t p, uint32_t flags)
{
	if (unlikely(!hd_slot_push(h, run, p))) {
		hd_unlock_lfh(h, flags);
		return -EINVAL;
	}
	/*
	 * A full run must join its class's partial list, an emptied partial
	 * run be cached or released; other frees need nothing more.
	 */
	if (unlikely(--run->used == run->care))
		return hd_small_free_slow(h, run, flags);
	hd_unlock_lfh(h, flags);
	return 0;
}

/*
 * Free @p, whose 4 MiB granule belongs to span @sp of @h.  Slots of LFH
 * runs are freed inline when the LFH lock is biased or absent, which also
 * means that no other thread uses the heap, so the run cannot have been
 * released since the granule table was read.  A shared heap goes to
 * hd_aff_free_path(), which looks again under the locks.
 */
static inline int hd_free_fast(struct hd_heap *h, struct hd_span *sp,
			       uintptr_t p, uint32_t flags, int api)
{
	struct hd_run *run;
	int how = HD_LK_NONE;

	/* Segments of growable heaps always have a granule table. */
	if (unlikely(sp->kind != HD_SPAN_SEG))
		return hd_free_locked_path(h, sp, p, flags, api);
	/* &hd_dummy_run (no slot, fails the test below) when not in a run */
	run = hd_gtab_load((struct hd_seg *)sp, p);
	if (!(flags & HEAPDEV_NO_SERIALIZE)) {
		how = hd_lfh_lock_fast(h, flags);
		if (unlikely(how == HD_LK_FAIL))
			return hd_free_locked_path(h, sp, p, flags, api);
		if (how == HD_LK_AFF)
			return hd_aff_free_fast(h, sp, run, p, flags, api);
	}
	if (unlikely(!hd_slot_push(h, run, p)))
		goto bad;
	/*
	 * A full run must join its class's partial list, an emptied partial
	 * run be cached or released; other frees need nothing more.
	 */
	if (unlikely(--run->used == run->care))
		return hd_free_slow_path(h, run, flags, api);
	if (how == HD_LK_BIAS)
		hd_unlock_fast(&h->lfh_lock);
	hd_leave();
	return hd_free_ok(api);
bad:
	if (how == HD_LK_BIAS)
		hd_unlock_fast(&h->lfh_lock);
	return hd_bad_free(h, sp, run, p, flags, api);
}

#endif /* HEAPDEV_FAST_H */
