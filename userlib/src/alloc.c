// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * heapdev: allocation, free, size and realloc, dispatched by block kind.
 *
 * A pointer is resolved without touching memory that may not be there: the
 * page map gives its span (and so its heap), the segment's granule table
 * says whether it lies in an LFH run, and only then is a header read.  The
 * LFH fast paths take only the LFH lock, make no system call and no
 * function call: pop or push on the current run's free list, and an
 * encoded 8-byte header written or checked.
 */
#include <errno.h>

#include "../include/heapdev/win32.h"
#include "fast.h"
#include "internal.h"

/* A bad pointer was passed to free or realloc. */
HD_COLD int hd_bad_ptr(const struct hd_heap *h, const void *p)
{
	hd_corrupt(h, p, "not a live block of this heap (double, foreign or "
		   "wild pointer, or a corrupted header)");
	return -EINVAL;
}

/* An LFH-sized allocation with the LFH lock taken the general way. */
static void *hd_small_alloc_locked(struct hd_heap *h, size_t n,
				   uint32_t flags)
{
	unsigned int c = hd_class_of(n);
	struct hd_run *run;
	uintptr_t p, next;
	uint64_t key;

	hd_lock_lfh(h, flags);
	run = h->cur[c];
	p = run->free;
	if (p - run->first >= run->span)
		return hd_small_alloc_slow(h, n, flags);
	key = hd_key(h, p - 8);
	next = hd_rdlink(h, p);
	run->free = next;
	run->used++;
	*(uint64_t *)(p - 8) = (run->hbusy | (uint64_t)n << 24) ^ key;
	hd_unlock_lfh(h, flags);
	if (flags & HEAPDEV_ZERO)
		memset((void *)p, 0, n);
	return (void *)p;
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
	if (n <= HD_SMALL_MAX && !h->fixed)
		return hd_small_alloc_locked(h, n, flags);
	return hd_alloc_big(h, n, flags);
}

/* Requests that are not LFH-sized, or any request of a fixed heap. */
void *hd_alloc_big(struct hd_heap *h, size_t n, uint32_t flags)
{
	if (h->fixed) {
		if (n >= HD_FIXED_LIMIT)
			return NULL;
		if (n <= HD_SMALL_MAX)
			return hd_medium_alloc(h, n, flags);
	}
	if (n <= HD_SMALL_MAX)
		return hd_small_alloc_slow(h, n, flags);
	if (n < HD_LARGE_MIN || h->fixed)
		return hd_medium_alloc(h, n, flags);
	if (n > HD_MAX_REQUEST)
		return NULL;
	return hd_large_alloc(h, n, flags);
}

/* Alignments above this go to spans of their own in growable heaps. */
#define HD_ALIGN_SPAN	(64UL << 10)

/**
 * hd_alloc_aligned() - allocate @n bytes at a multiple of @align
 * @h: a live heap
 * @n: size
 * @align: a power of two
 * @flags: effective flags
 *
 * Alignments up to 16 are what every block has.  Above that, a medium
 * block with the space in front of it left free; for large requests and
 * alignments above HD_ALIGN_SPAN (growable heaps), a large span with the
 * block placed at the alignment.  Return: the block or NULL.
 */
void *hd_alloc_aligned(struct hd_heap *h, size_t n, size_t align,
		       uint32_t flags)
{
	if (align <= 16)
		return hd_alloc(h, n, flags);
	if (n > HD_MAX_REQUEST || align > HD_MAX_REQUEST ||
	    (h->fixed && n >= HD_FIXED_LIMIT))
		return NULL;
	if (!h->fixed && (n >= HD_LARGE_MIN || align > HD_ALIGN_SPAN))
		return hd_large_alloc_aligned(h, n, align, flags);
	return hd_medium_alloc_aligned(h, n, align, flags);
}

static int hd_free_medium(struct hd_heap *h, struct hd_seg *s, uintptr_t p,
			  uint32_t flags)
{
	uint64_t w0;
	size_t n;
	int err;

	hd_lock_main(h, flags);
	if (hd_run_of(s, p)) {
		hd_unlock_main(h, flags);
		return -EAGAIN;
	}
	err = hd_medium_check(h, s, p, &w0, &n);
	if (!err)
		hd_medium_free(h, s, p);
	hd_unlock_main(h, flags);
	return err ? hd_bad_ptr(h, (void *)p) : 0;
}

/*
 * Free slot @p of @run with the LFH lock held (taken with @flags): into a
 * run of an affinity slot under that slot's lock too.  Returns with the
 * LFH lock released.  Return: 0 or -EINVAL (not reported).
 */
int hd_small_free_locked(struct hd_heap *h, struct hd_run *run, uintptr_t p,
			 uint32_t flags)
{
	unsigned int k = atomic_load_explicit(&run->aff, memory_order_relaxed);
	int err;

	if (k == HD_AFF_NONE)
		return hd_small_free(h, run, p, flags);
	hd_aff_lock(&h->aff[k]);
	/*
	 * An emptied slot's run of a big class stays (the slot's next
	 * allocation of the class uses it, HeapCompact releases it): this
	 * path is taken only when the slot's lock was busy.
	 */
	err = hd_slot_push(h, run, p) ? 0 : -EINVAL;
	run->used -= !err;
	hd_aff_unlock(&h->aff[k]);
	hd_unlock_lfh(h, flags);
	return err;
}

/*
 * Free @p of segment @s on a shared heap, no lock held: under the lock of
 * the affinity slot whose current run holds it, or else under the LFH
 * lock.  Return: 0, -EINVAL (not reported) or -EAGAIN (not in a run).
 */
int hd_aff_free(struct hd_heap *h, struct hd_seg *s, uintptr_t p,
		uint32_t flags)
{
	struct hd_run *run = hd_gtab_load(s, p);
	unsigned int k;

	if (run == &hd_dummy_run)
		return -EAGAIN;
	k = atomic_load_explicit(&run->aff, memory_order_relaxed);
	if (k != HD_AFF_NONE) {
		/* The run stays the slot's (and in place) while it is held. */
		hd_aff_lock(&h->aff[k]);
		if (atomic_load_explicit(&run->aff, memory_order_relaxed) ==
		    k && hd_gtab_load(s, p) == run) {
			if (!hd_slot_push(h, run, p)) {
				hd_aff_unlock(&h->aff[k]);
				return -EINVAL;
			}
			if (--run->used == run->care)
				hd_aff_free_empty(h, run, k, flags);
			else
				hd_aff_unlock(&h->aff[k]);
			return 0;
		}
		hd_aff_unlock(&h->aff[k]);
	}
	hd_lfh_lock_shared(h, flags);
	run = hd_run_of(s, p);
	if (!run) {
		hd_unlock_lfh(h, flags);
		return -EAGAIN;
	}
	return hd_small_free_locked(h, run, p, flags);
}

static int hd_free_large(struct hd_heap *h, struct hd_large *lg, uintptr_t p,
			 uint32_t flags)
{
	int err;

	hd_lock_main(h, flags);
	err = hd_large_check(h, lg, p);
	if (!err)
		hd_large_free(h, lg);
	hd_unlock_main(h, flags);
	return err ? hd_bad_ptr(h, (void *)p) : 0;
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
	struct hd_span *sp = hd_span_raw((uintptr_t)ptr);

	if (unlikely(!sp || sp->heap != h))
		return hd_bad_ptr(h, ptr);
	return hd_free_other(h, sp, (uintptr_t)ptr, flags);
}

/* Free @p of span @sp with the locks taken the general way. */
int hd_free_other(struct hd_heap *h, struct hd_span *sp, uintptr_t p,
		  uint32_t flags)
{
	struct hd_seg *s = (struct hd_seg *)sp;
	struct hd_run *run;
	int err;

	if (sp->kind == HD_SPAN_LARGE)
		return hd_free_large(h, (struct hd_large *)sp, p, flags);
	for (;;) {
		run = hd_run_of(s, p);
		if (run) {
			hd_lock_lfh(h, flags);
			/* the run may have been released meanwhile */
			if (hd_run_of(s, p) == run)
				return hd_small_free_locked(h, run, p, flags) ?
				       hd_bad_ptr(h, (void *)p) : 0;
			hd_unlock_lfh(h, flags);
			continue;
		}
		err = hd_free_medium(h, s, p, flags);
		if (err != -EAGAIN)
			return err;
	}
}

/*
 * ---- out-of-line paths of the fast paths (fast.h) ----
 *
 * Each is the tail of an API call entered by HeapAlloc, HeapFree,
 * heapdev_alloc or heapdev_free, and leaves the call (hd_leave()) once,
 * after its last access to the heap, or tail-calls another such path.
 * The inline fast paths do not name the call's heap (hd_use(): one store
 * less; a HeapDestroy of another heap waits for them, which takes a few
 * nanoseconds); every path given a heap names it first, before it may
 * block on a lock.
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
		hd_raise(STATUS_NO_MEMORY, h, NULL, n, "HeapAlloc");
	return NULL;
}

/* HEAP_ZERO_MEMORY out of the fast path, so that it needs no frame. */
void *hd_zero_ret(void *p, size_t n)
{
	memset(p, 0, n);
	hd_leave();
	return p;
}

/* A block for the caller: leave the call. */
static inline void *hd_alloc_done(void *p)
{
	hd_leave();
	return p;
}

/* Allocation through a handle that is not this thread's cached heap. */
void *hd_alloc_path(const void *hh, uint32_t call_flags, size_t n, int api)
{
	struct hd_heap *h;
	uint32_t flags;
	void *p;

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
	flags = h->flags | call_flags;
	/*
	 * A thread that alternates between heaps misses its one-entry heap
	 * cache every other call: it still takes the inline LFH path.
	 */
	if (likely(n <= HD_SMALL_MAX &&
		   !(flags & (HEAP_GENERATE_EXCEPTIONS | HD_HF_FIXED))))
		return hd_small_alloc_fast(h, n, flags, api);
	p = hd_alloc(h, n, flags);
	return likely(p) ? hd_alloc_done(p) : hd_alloc_fail(h, n, flags, api);
}

/* Allocation that needs the LFH lock taken the general way. */
void *hd_alloc_locked_path(struct hd_heap *h, size_t n, uint32_t flags,
			   int api)
{
	void *p;

	hd_use(h);
	hd_commit_err = 0;
	p = hd_alloc(h, n, flags);

	return likely(p) ? hd_alloc_done(p) : hd_alloc_fail(h, n, flags, api);
}

/* The current run is exhausted (LFH lock held). */
void *hd_refill_path(struct hd_heap *h, size_t n, uint32_t flags, int api)
{
	void *p;

	hd_use(h);
	hd_commit_err = 0;
	p = hd_small_alloc_slow(h, n, flags);

	return likely(p) ? hd_alloc_done(p) : hd_alloc_fail(h, n, flags, api);
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

/*
 * The fast path found no live slot at @p (it released the LFH lock or the
 * slot lock it took).  Not in a run: try the other kinds.
 */
int hd_bad_free(struct hd_heap *h, struct hd_span *sp, struct hd_run *run,
		uintptr_t p, uint32_t flags, int api)
{
	hd_use(h);
	if (run == &hd_dummy_run)	/* a medium block, or not a block */
		return hd_free_locked_path(h, sp, p, flags, api);
	return hd_free_result(hd_bad_ptr(h, (void *)p), api);
}

/* An LFH-sized allocation on a shared heap (affinity slots). */
void *hd_aff_alloc_path(struct hd_heap *h, size_t n, uint32_t flags, int api)
{
	void *p;

	hd_use(h);
	hd_commit_err = 0;
	p = hd_aff_alloc(h, n, flags);
	return likely(p) ? hd_alloc_done(p) : hd_alloc_fail(h, n, flags, api);
}

/*
 * A free on a shared heap into a run that was in no affinity slot, with
 * the LFH lock taken by the fast path: the run may have been released
 * before, so look again, then free the slot (under its slot's lock too if
 * the run has become a slot's since).
 */
int hd_free_word_path(struct hd_heap *h, struct hd_span *sp, uintptr_t p,
		      uint32_t flags, int api)
{
	struct hd_run *run = hd_run_of((struct hd_seg *)sp, p);

	hd_use(h);
	if (!run) {
		hd_unlock(&h->lfh_lock);
		return hd_free_locked_path(h, sp, p, flags, api);
	}
	if (hd_small_free_locked(h, run, p, flags))
		return hd_free_result(hd_bad_ptr(h, (void *)p), api);
	return hd_free_result(0, api);
}

/*
 * A free emptied @run, a current run of a class of 4 KiB or more of
 * affinity slot @k, whose lock is held: release the run if it can be
 * done now (hd_aff_free_empty()).
 */
int hd_aff_empty_path(struct hd_heap *h, struct hd_run *run, unsigned int k,
		      uint32_t flags, int api)
{
	hd_use(h);
	hd_aff_free_empty(h, run, k, flags);
	return hd_free_result(0, api);
}

/* A free on a shared heap (affinity slots). */
int hd_aff_free_path(struct hd_heap *h, struct hd_span *sp, uintptr_t p,
		     uint32_t flags, int api)
{
	int err;

	hd_use(h);
	err = hd_aff_free(h, (struct hd_seg *)sp, p, flags);
	if (err == -EAGAIN)	/* not in a run */
		return hd_free_locked_path(h, sp, p, flags, api);
	return hd_free_result(err ? hd_bad_ptr(h, (void *)p) : 0, api);
}

/* The freed slot's run was not the current one (LFH lock held). */
int hd_free_slow_path(struct hd_heap *h, struct hd_run *run, uint32_t flags,
		      int api)
{
	hd_use(h);
	return hd_free_result(hd_small_free_slow(h, run, flags), api);
}

/* Free with a pointer or handle that the fast path did not resolve. */
int hd_free_path(const void *hh, uint32_t call_flags, void *p, int api)
{
	struct hd_heap *h;

	hd_thread_check();
	h = hd_heap_get(hh);
	if (!h)
		return hd_free_result(-EBADF, api);
	return hd_free_result(hd_free(h, p, h->flags | call_flags), api);
}

/* Free that needs the locks taken the general way. */
int hd_free_locked_path(struct hd_heap *h, struct hd_span *sp, uintptr_t p,
			uint32_t flags, int api)
{
	hd_use(h);
	return hd_free_result(hd_free_other(h, sp, p, flags), api);
}

/* What a pointer is, checked under the lock that protects it. */
struct hd_blockref {
	int kind;		/* HD_K_SBUSY, HD_K_MBUSY or HD_K_LARGE */
	struct hd_seg *seg;
	struct hd_run *run;
	struct hd_large *lg;
	size_t n;
};

/*
 * Resolve @p and take the lock that protects it: the LFH lock for slots,
 * the heap lock otherwise.  Return: 0 with the lock held, or -EINVAL with
 * no lock held.
 */
static int hd_lookup_lock(struct hd_heap *h, uintptr_t p, uint32_t flags,
			  struct hd_blockref *ref)
{
	struct hd_span *sp = hd_span_of(p);
	uint64_t w0;

	if (!sp || sp->heap != h)
		return -EINVAL;
	if (sp->kind == HD_SPAN_LARGE) {
		ref->kind = HD_K_LARGE;
		ref->lg = (struct hd_large *)sp;
		hd_lock_main(h, flags);
		if (hd_span_of(p) == sp && !hd_large_check(h, ref->lg, p)) {
			ref->n = ref->lg->n;
			return 0;
		}
		hd_unlock_main(h, flags);
		return -EINVAL;
	}
	ref->seg = (struct hd_seg *)sp;
	for (;;) {
		ref->run = hd_run_of(ref->seg, p);
		if (ref->run) {
			ref->kind = HD_K_SBUSY;
			hd_lock_lfh(h, flags);
			if (hd_run_of(ref->seg, p) != ref->run) {
				hd_unlock_lfh(h, flags);
				continue;
			}
			if (!hd_small_check(h, ref->run, p, &ref->n))
				return 0;
			hd_unlock_lfh(h, flags);
			return -EINVAL;
		}
		ref->kind = HD_K_MBUSY;
		hd_lock_main(h, flags);
		if (hd_run_of(ref->seg, p)) {
			hd_unlock_main(h, flags);
			continue;
		}
		if (!hd_medium_check(h, ref->seg, p, &w0, &ref->n))
			return 0;
		hd_unlock_main(h, flags);
		return -EINVAL;
	}
}

static void hd_lookup_unlock(struct hd_heap *h, uint32_t flags,
			     const struct hd_blockref *ref)
{
	if (ref->kind == HD_K_SBUSY)
		hd_unlock_lfh(h, flags);
	else
		hd_unlock_main(h, flags);
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

	if (hd_lookup_lock(h, (uintptr_t)ptr, flags, &ref)) {
		hd_dbg("heapdev: heap %p, block %p: size of something that is "
		       "not a live block of this heap", (void *)h->handle, ptr);
		return -EINVAL;
	}
	*n = ref.n;
	hd_lookup_unlock(h, flags, &ref);
	return 0;
}

/* Whether @ptr is a live block of @h; never reports anything. */
int hd_validate_block(struct hd_heap *h, const void *ptr, uint32_t flags)
{
	struct hd_blockref ref;

	if (hd_lookup_lock(h, (uintptr_t)ptr, flags, &ref))
		return -EINVAL;
	hd_lookup_unlock(h, flags, &ref);
	return 0;
}

/*
 * Resize a slot in place: only within its size class, and with
 * HEAP_REALLOC_IN_PLACE_ONLY only when it shrinks (as native LFH does).
 */
static void *hd_small_realloc(struct hd_heap *h, struct hd_blockref *ref,
			      uintptr_t p, size_t n, uint32_t flags)
{
	struct hd_run *run = ref->run;

	/*
	 * Growth within the slot (a moved block may have been given a
	 * bigger class than it needed); shrinking within the class.
	 */
	if (n > HD_SMALL_MAX || n + 8 > run->stride ||
	    (n < ref->n && hd_class_of(n) != run->cls) ||
	    ((flags & HEAPDEV_IN_PLACE) && n >= ref->n))
		return NULL;
	hd_wr(h, p - 8, hd_sbusy(n, run->cls));
	return (void *)p;
}

/*
 * An LFH slot of @n bytes for a growing block that has to move, with room
 * to grow by a quarter in place (HeapSize stays @n), or NULL.  (Medium
 * blocks get none: their header check allows less than 80 unused bytes,
 * and they grow in place into free neighbours.)
 */
static void *hd_alloc_room(struct hd_heap *h, size_t n, uint32_t flags)
{
	size_t room = n + n / 4 + 16;
	unsigned int c;

	if (h->fixed || n > HD_SMALL_MAX)
		return NULL;
	c = hd_class_of(room < HD_SMALL_MAX ? room : HD_SMALL_MAX);
	hd_lock_lfh(h, flags);
	if (!h->cls[c].active) {
		hd_unlock_lfh(h, flags);
		return NULL;
	}
	return hd_small_alloc_cls(h, n, c, flags);
}

/* Move a block: allocate, copy, free.  Return: the new block or NULL. */
static void *hd_move(struct hd_heap *h, void *old, size_t oldn, size_t n,
		     uint32_t flags)
{
	void *q = n > oldn ? hd_alloc_room(h, n, flags & ~HEAPDEV_ZERO) : NULL;

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

	if (hd_lookup_lock(h, p, flags, &ref)) {
		*err = hd_bad_ptr(h, ptr);
		return NULL;
	}
	old = ref.n;
	*err = -ENOMEM;
	if (n <= HD_MAX_REQUEST && (!h->fixed || n < HD_FIXED_LIMIT)) {
		if (ref.kind == HD_K_SBUSY)
			q = hd_small_realloc(h, &ref, p, n, flags);
		else if (ref.kind == HD_K_MBUSY)
			q = hd_medium_realloc(h, ref.seg, p, n, flags, err);
		else
			q = hd_large_realloc(h, ref.lg, n, flags, err);
	} else {
		hd_lookup_unlock(h, flags, &ref);
		return NULL;
	}
	hd_lookup_unlock(h, flags, &ref);
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
