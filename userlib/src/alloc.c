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

#include "internal.h"

/* A bad pointer was passed to free/size/realloc. */
static HD_COLD int hd_bad_ptr(const struct hd_heap *h, const void *p)
{
	hd_corrupt(h, p, "not a live block of this heap (double, foreign or "
		   "wild pointer, or a corrupted header)");
	return -EINVAL;
}

static inline void *hd_small_alloc(struct hd_heap *h, size_t n,
				   uint32_t flags)
{
	unsigned int c = hd_class_of(n);
	struct hd_run *run;
	uintptr_t p, next;
	uint64_t key;

	hd_lock_lfh(h, flags);
	run = h->cls[c].cur;
	p = run->free;
	if (unlikely(!p))
		return hd_small_alloc_slow(h, n, flags);
	key = hd_key(h, p - 8);
	next = hd_rdlink(h, p);
	if (unlikely((*(uint64_t *)(p - 8) ^ key) != hd_sfree(c) ||
		     (next && next - run->first >= run->span))) {
		hd_small_corrupt_run(h, run, p, "corrupted free slot");
		return hd_small_alloc_slow(h, n, flags);
	}
	run->free = next;
	run->used++;
	*(uint64_t *)(p - 8) = hd_sbusy(n, c) ^ key;
	h->small_bytes += n;
	h->small_blocks++;
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
	if (likely(n <= HD_SMALL_MAX && !h->fixed))
		return hd_small_alloc(h, n, flags);
	if (h->fixed)
		return n < HD_FIXED_LIMIT ? hd_medium_alloc(h, n, flags) : NULL;
	if (n < HD_LARGE_MIN)
		return hd_medium_alloc(h, n, flags);
	if (n > HD_MAX_REQUEST)
		return NULL;
	return hd_large_alloc(h, n, flags);
}

/* Free a slot of @run (LFH lock held; returns with it released). */
static inline int hd_small_free(struct hd_heap *h, struct hd_run *run,
				uintptr_t p, uint32_t flags)
{
	uintptr_t d = p - run->first;
	uint64_t key, w;
	uint32_t idx;

	if (unlikely(d >= run->span))
		goto bad;
	idx = (uint32_t)((d * run->recip) >> 32);
	if (unlikely((uintptr_t)idx * run->stride != d || idx >= run->bump))
		goto bad;
	key = hd_key(h, p - 8);
	w = *(uint64_t *)(p - 8) ^ key;
	if (unlikely((w & HD_SMASK) != (hd_sbusy(0, run->cls) & HD_SMASK)))
		goto bad;
	*(uint64_t *)(p - 8) = hd_sfree(run->cls) ^ key;
	hd_wrlink(h, p, run->free);
	run->free = p;
	run->used--;
	h->small_bytes -= (w >> 24) & 0xFFFFF;
	h->small_blocks--;
	if (unlikely(run->state != HD_RUN_CURRENT))
		return hd_small_free_slow(h, run, flags);
	hd_unlock_lfh(h, flags);
	return 0;
bad:
	hd_unlock_lfh(h, flags);
	return hd_bad_ptr(h, (void *)p);
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

static int hd_free_large(struct hd_heap *h, struct hd_large *lg, uintptr_t p,
			 uint32_t flags)
{
	int err;

	hd_lock_main(h, flags);
	err = hd_span_of(p) == &lg->sp ? hd_large_check(h, lg, p) : -EINVAL;
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
	uintptr_t p = (uintptr_t)ptr;
	struct hd_span *sp = hd_span_of(p);
	struct hd_run *run;
	struct hd_seg *s;
	int err;

	if (unlikely(!sp || sp->heap != h))
		return hd_bad_ptr(h, ptr);
	if (unlikely(sp->kind != HD_SPAN_SEG))
		return hd_free_large(h, (struct hd_large *)sp, p, flags);
	s = (struct hd_seg *)sp;
	for (;;) {
		run = hd_run_of(s, p);
		if (likely(run)) {
			hd_lock_lfh(h, flags);
			if (likely(hd_run_of(s, p) == run))
				return hd_small_free(h, run, p, flags);
			hd_unlock_lfh(h, flags);
			continue;
		}
		err = hd_free_medium(h, s, p, flags);
		if (err != -EAGAIN)
			return err;
	}
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

/* The requested size of a live block.  Return: 0 or -EINVAL (reported). */
int hd_size(struct hd_heap *h, const void *ptr, uint32_t flags, size_t *n)
{
	struct hd_blockref ref;

	if (hd_lookup_lock(h, (uintptr_t)ptr, flags, &ref))
		return hd_bad_ptr(h, ptr);
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

	if (n > HD_SMALL_MAX || hd_class_of(n) != run->cls ||
	    ((flags & HEAPDEV_IN_PLACE) && n >= ref->n))
		return NULL;
	hd_wr(h, p - 8, hd_sbusy(n, run->cls));
	h->small_bytes += n - ref->n;
	return (void *)p;
}

/* Move a block: allocate, copy, free.  Return: the new block or NULL. */
static void *hd_move(struct hd_heap *h, void *old, size_t oldn, size_t n,
		     uint32_t flags)
{
	void *q = hd_alloc(h, n, flags & ~HEAPDEV_ZERO);

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
