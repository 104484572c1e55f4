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
 * (alloc.c), so that the fast paths need no stack frame.  @api says how
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
HD_HIDDEN int hd_free_path(const void *hh, uint32_t call_flags, void *p,
			   int api);
HD_HIDDEN int hd_free_locked_path(struct hd_heap *h, struct hd_span *sp,
				  uintptr_t p, uint32_t flags, int api);
HD_HIDDEN int hd_bad_free(const struct hd_heap *h, uintptr_t p, int api);

/* The heap of handle @hh if it is this thread's cached one, else NULL. */
static inline struct hd_heap *hd_heap_cached(const void *hh)
{
	struct hd_heap *h = hd_tls.heap;

	if (likely((uintptr_t)hh == hd_tls.handle &&
		   h->handle == (uintptr_t)hh))
		return h;
	return NULL;
}

/* Allocate an LFH size (n <= HD_SMALL_MAX) on a growable heap. */
static inline void *hd_small_alloc_fast(struct hd_heap *h, size_t n,
					uint32_t flags, int api)
{
	struct hd_run *run;
	uintptr_t p;

	if (!(flags & HEAPDEV_NO_SERIALIZE) && !hd_lock_fast(&h->lfh_lock))
		return hd_alloc_locked_path(h, n, flags, api);
	run = h->cur[hd_class_of(n)];
	p = run->free;
	/*
	 * One test for an empty list (free == first + span) and for a link
	 * that a write to a freed slot sent out of the run.
	 */
	if (unlikely(p - run->first >= run->span))
		return hd_refill_path(h, n, flags, api);
	run->free = hd_rdlink(h, p);
	run->used++;
	*(uint64_t *)(p - 8) = (run->hbusy | (uint64_t)n << 24) ^
			       hd_key(h, p - 8);
	if (!(flags & HEAPDEV_NO_SERIALIZE))
		hd_unlock_fast(&h->lfh_lock);
	if (flags & HEAPDEV_ZERO)
		return memset((void *)p, 0, n);
	return (void *)p;
}

/*
 * Free slot @p of @run; the LFH lock is held unless @flags has
 * HEAP_NO_SERIALIZE, and released here.
 *
 * No exact slot arithmetic: a pointer that is not a slot start finds user
 * data (or a header wiped when its run was released) where the header
 * would be, and 44 bits of it must match an encoding that depends on the
 * heap's secret and on the address.
 */
static inline int hd_small_free(struct hd_heap *h, struct hd_run *run,
				uintptr_t p, uint32_t flags)
{
	uint64_t key, w;

	if (unlikely((p - run->first >= run->span) | (p & 15)))
		goto bad;
	key = hd_key(h, p - 8);
	w = *(uint64_t *)(p - 8) ^ key;
	if (unlikely((w & HD_SMASK) != run->hbusy))
		goto bad;
	*(uint64_t *)(p - 8) = run->hfree ^ key;
	hd_wrlink(h, p, run->free);
	run->free = p;
	run->used--;
	if (unlikely(run->state != HD_RUN_CURRENT))
		return hd_small_free_slow(h, run, flags);
	hd_unlock_lfh(h, flags);
	return 0;
bad:
	hd_unlock_lfh(h, flags);
	return -EINVAL;
}

/*
 * Free @p, whose 4 MiB granule belongs to span @sp of @h.  Slots of LFH
 * runs are freed inline when no atomic lock is needed.
 */
static inline int hd_free_fast(struct hd_heap *h, struct hd_span *sp,
			       uintptr_t p, uint32_t flags, int api)
{
	struct hd_run *run;

	/* Segments of growable heaps always have a granule table. */
	if (likely(sp->kind == HD_SPAN_SEG &&
		   (run = ((struct hd_seg *)sp)->gtab[(p - sp->base) >>
						      HD_GRANULE_SHIFT]) &&
		   ((flags & HEAPDEV_NO_SERIALIZE) ||
		    hd_lock_fast(&h->lfh_lock)))) {
		/*
		 * A biased or absent lock means no other thread uses the
		 * heap, so the run cannot have been released meanwhile.
		 */
		if (likely(!hd_small_free(h, run, p, flags)))
			return 0;
		return hd_bad_free(h, p, api);
	}
	return hd_free_locked_path(h, sp, p, flags, api);
}

#endif /* HEAPDEV_FAST_H */
