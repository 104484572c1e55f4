// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * heapdev: the native API (<heapdev.h>).
 *
 * A struct heapdev_heap * is the heap's handle, the base address of its
 * first segment; it is checked through the page map on every call, so a
 * pointer that is not a live heap gives -EBADF (or EINVAL) and never a
 * crash.
 */
#include <errno.h>
#include <stdlib.h>

#include "api.h"

#define HD_CALL_FLAGS	(HEAPDEV_NOLOCK | HEAPDEV_ZERO | HEAPDEV_IN_PLACE)

#ifndef HEAPDEV_VERSION
#define HEAPDEV_VERSION "unknown"
#endif

static uint32_t hd_eff(const struct hd_heap *h, unsigned int flags)
{
	return h->core.flags | (flags & HD_CALL_FLAGS);
}

/* Largest struct heapdev_options accepted from a newer caller. */
#define HD_OPTS_MAX	4096

/*
 * Copy options of @opts->size bytes, as the kernel's
 * copy_struct_from_user() does: shorter than this version is -EINVAL;
 * longer is fine when the bytes this version does not know are all zero,
 * -E2BIG otherwise (and beyond HD_OPTS_MAX, which is not read).
 */
static int hd_opts_copy(struct heapdev_options *o,
			const struct heapdev_options *opts)
{
	const unsigned char *tail = (const unsigned char *)(opts + 1);
	size_t i;

	if (opts->size < sizeof(*o))
		return -EINVAL;
	if (opts->size > HD_OPTS_MAX)
		return -E2BIG;
	for (i = 0; i < opts->size - sizeof(*o); i++)
		if (tail[i])
			return -E2BIG;
	*o = *opts;
	return 0;
}

int heapdev_create(const struct heapdev_options *opts,
		   struct heapdev_heap **heap)
{
	struct heapdev_options o = { .size = sizeof(o) };
	struct hd_heap *h;
	int err;

	if (!heap)
		return -EINVAL;
	if (opts) {
		err = hd_opts_copy(&o, opts);
		if (err)
			return err;
		if (o.__reserved ||
		    (o.flags & ~(HEAPDEV_NO_SERIALIZE | HEAPDEV_EXEC |
				 HEAPDEV_LAZY_COMMIT | HEAPDEV_INHERIT)) ||
		    o.backend > HEAPDEV_BACKEND_MEMFD)
			return -EINVAL;
	}
	err = hd_heap_create(o.flags, o.initial, o.maximum, (int)o.backend,
			     &h);
	if (err)
		return err;
	*heap = (struct heapdev_heap *)h->core.handle;
	return 0;
}

static int hd_api_destroy(struct heapdev_heap *heap)
{
	struct hd_heap *h = hd_heap_get(heap);

	if (!h)
		return -EBADF;
	return hd_heap_destroy(h, (uintptr_t)heap);
}

/* Entered here, left on every path (see HeapAlloc in win32.c). */
void *heapdev_alloc(struct heapdev_heap *heap, size_t size, unsigned int flags)
{
	return hd_alloc_fast(heap, flags & (HEAPDEV_NOLOCK | HEAPDEV_ZERO), size,
			     HD_API_NATIVE);
}

static void *hd_api_alloc_aligned(struct heapdev_heap *heap, size_t size,
				  size_t align, unsigned int flags)
{
	struct hd_heap *h = hd_heap_get(heap);
	void *p;

	if (!h || !align || (align & (align - 1))) {
		errno = EINVAL;
		return NULL;
	}
	hd_commit_err = 0;
	p = hd_alloc_aligned(h, size, align, h->core.flags |
			     (flags & (HEAPDEV_NOLOCK | HEAPDEV_ZERO)));
	if (!p)
		errno = hd_alloc_errno();
	return p;
}

static void *hd_api_realloc(struct heapdev_heap *heap, void *ptr,
			    size_t size, unsigned int flags)
{
	struct hd_heap *h = hd_heap_get(heap);
	void *p;
	int err;

	if (!h) {
		errno = EINVAL;
		return NULL;
	}
	hd_commit_err = 0;
	p = hd_realloc(h, ptr, size, hd_eff(h, flags), &err);
	if (!p)
		errno = err == -ENOMEM ? hd_alloc_errno() : -err;
	return p;
}

/* Entered here, left on every path (see HeapFree in win32.c). */
int heapdev_free(struct heapdev_heap *heap, void *ptr, unsigned int flags)
{
	if (!ptr)
		return 0;
	return hd_free_fast(heap, flags & HEAPDEV_NOLOCK, ptr, HD_API_NATIVE);
}

static int hd_api_size(struct heapdev_heap *heap, const void *ptr,
		       unsigned int flags, size_t *size)
{
	struct hd_heap *h = hd_heap_get(heap);

	if (!h)
		return -EBADF;
	if (!size)
		return -EINVAL;
	return hd_size(h, ptr, hd_eff(h, flags), size);
}

static int hd_api_validate(struct heapdev_heap *heap, const void *ptr,
			   unsigned int flags)
{
	struct hd_heap *h = hd_heap_get(heap);

	if (!h)
		return -EBADF;
	if (!ptr)
		return hd_validate_heap(h, hd_eff(h, flags));
	return hd_validate_block(h, ptr, hd_eff(h, flags));
}

int hd_api_lock(struct heapdev_heap *heap)
{
	struct hd_heap *h = hd_heap_get(heap);

	if (!h)
		return -EBADF;
	if (!(h->core.flags & HEAPDEV_NO_SERIALIZE))
		hd_lock(&h->core.lock);
	return 0;
}

static int hd_unlock_checked(struct hd_heap *h)
{
	if (h->core.flags & HEAPDEV_NO_SERIALIZE)
		return 0;
	if (!hd_lock_held(&h->core.lock))
		return -EPERM;
	hd_unlock(&h->core.lock);
	return 0;
}

/*
 * A heap that HeapDestroy has claimed can still be unlocked until it is
 * released: the destroy may be waiting for a call that waits for this
 * lock.
 */
int hd_api_unlock(struct heapdev_heap *heap)
{
	struct hd_heap *h = hd_heap_get(heap);
	int err;

	if (h)
		return hd_unlock_checked(h);
	h = hd_heap_dying(heap);
	if (!h)
		return -EBADF;
	err = hd_unlock_checked(h);
	hd_registry_unlock();
	return err;
}

int hd_api_compact(struct heapdev_heap *heap, unsigned int flags,
		   size_t *largest)
{
	struct hd_heap *h = hd_heap_get(heap);
	size_t l;

	if (!h)
		return -EBADF;
	l = hd_compact(h, hd_eff(h, flags));
	if (largest)
		*largest = l;
	return 0;
}

static int hd_api_walk(struct heapdev_heap *heap,
		       struct heapdev_walk_entry *e)
{
	struct hd_heap *h = hd_heap_get(heap);
	struct hd_walk w = { 0 };
	int err;

	if (!h)
		return -EBADF;
	if (!e)
		return -EINVAL;
	w.addr = (uintptr_t)e->addr;
	w.cursor[0] = e->cursor[0];
	w.cursor[1] = e->cursor[1];
	err = hd_walk(h, &w);
	if (err)
		return err;
	e->addr = (void *)w.addr;
	e->size = w.kind == HEAPDEV_WALK_REGION ? w.committed + w.uncommitted :
		  w.size;
	e->overhead = w.overhead;
	e->kind = w.kind;
	e->region = w.region;
	e->cursor[0] = w.cursor[0];
	e->cursor[1] = w.cursor[1];
	return 0;
}

static int hd_api_get_info(struct heapdev_heap *heap,
			   struct heapdev_heap_info *info)
{
	struct hd_heap *h = hd_heap_get(heap);

	if (!h)
		return -EBADF;
	if (!info || info->size < sizeof(*info))
		return -EINVAL;
	hd_info(h, info);
	return 0;
}

struct heapdev_heap *heapdev_process_heap(void)
{
	int err = 0;
	struct hd_heap *h = hd_process_heap(&err);

	if (!h) {
		errno = -err;
		return NULL;
	}
	return (struct heapdev_heap *)h->core.handle;
}

int heapdev_heaps(struct heapdev_heap **heaps, size_t capacity, size_t *count)
{
	size_t n = hd_heap_handles((void **)heaps, heaps ? capacity : 0);

	if (count)
		*count = n;
	return 0;
}

/*
 * Compact heap @h if it still has @handle, the handle it had when the
 * registry was copied, as a call of its own (see hd_quiesce()): "in a
 * call" first, the heap named only once it has been seen live, idle at the
 * end, so that a HeapDestroy of it either waits for the compaction or
 * makes the check fail.  Heap structs are never given back to libc, so @h
 * can be read whatever happened to the heap since; only its atomic @live
 * is read before the check, and the rest was written before the release
 * store that made it live.  (Resolving @handle through the page map would
 * read a span struct that a concurrent HeapCreate may be recycling.)  The
 * state changes are read-modify-writes after the release store of the
 * previous hd_leave(), so whatever state a destroyer reads later, what
 * this thread did to an earlier heap happens before it (plain stores, as
 * hd_use() does, would break that release sequence).
 * HEAPDEV_NO_SERIALIZE heaps are skipped: their owner may be using them
 * without a lock at this moment.
 */
static void hd_trim_one(struct hd_heap *h, uintptr_t handle)
{
	atomic_exchange(&hd_tls.state, HD_ST_CALL);
	if (handle && hd_live(h) == handle) {
		atomic_exchange(&hd_tls.state, (uintptr_t)h);
		if (!(h->core.flags & HEAPDEV_NO_SERIALIZE))
			hd_compact(h, h->core.flags);
	}
	hd_leave();
}

#define HD_TRIM_BATCH	64

/*
 * Release the warm heaps (heap.c), wait until the pages of destroyed
 * heaps are given back (backend.c) and compact every serialized heap of
 * the process.  The registry lock is held only while the heaps are copied, never while a heap lock is
 * awaited: a thread holding HeapLock may create, destroy or list heaps
 * meanwhile.  Heaps created after the copy are not visited.
 */
static int hd_trim_all(void)
{
	struct hd_heap_ref batch[HD_TRIM_BATCH], *hv = batch;
	size_t n, cap = HD_TRIM_BATCH, i;

	hd_warm_release(true);
	hd_backend_drain();
	for (;;) {
		n = hd_heap_refs(hv, cap);
		if (n <= cap)
			break;
		if (hv != batch)
			hd_meta_free(hv, cap * sizeof(*hv));
		cap = n + HD_TRIM_BATCH;
		hv = hd_meta_alloc(cap * sizeof(*hv));
		if (!hv)
			return -ENOMEM;
	}
	for (i = 0; i < n; i++)
		hd_trim_one(hv[i].heap, hv[i].handle);
	if (hv != batch)
		hd_meta_free(hv, cap * sizeof(*hv));
	return 0;
}

/* Compact one heap, or every serialized heap of the process. */
int hd_api_trim(struct heapdev_heap *heap)
{
	struct hd_heap *h;

	if (!heap)
		return hd_trim_all();
	h = hd_heap_get(heap);
	if (!h)
		return -EBADF;
	hd_compact(h, h->core.flags);
	return 0;
}

static int hd_api_enable_lfh(struct heapdev_heap *heap)
{
	struct hd_heap *h = hd_heap_get(heap);

	if (!h)
		return -EBADF;
	if ((h->core.flags & HEAPDEV_NO_SERIALIZE) || h->core.fixed)
		return -EINVAL;
	atomic_store(&h->compat, 2);
	return 0;
}

static int hd_api_set_lazy_commit(struct heapdev_heap *heap, int on)
{
	struct hd_heap *h = hd_heap_get(heap);

	if (!h)
		return -EBADF;
	if (on != 0 && on != 1)
		return -EINVAL;
	/* For the commits that follow; one in progress goes either way. */
	__atomic_store_n(&h->core.lazy, on, __ATOMIC_RELAXED);
	return 0;
}

const char *heapdev_version(void)
{
	return HEAPDEV_VERSION;
}

/*
 * The other public calls: each runs between hd_enter() and hd_leave(), so
 * that a HeapDestroy in another thread waits for it (see hd_quiesce()).
 */

int heapdev_destroy(struct heapdev_heap *heap)
{
	return HD_CALL(hd_api_destroy(heap));
}

void *heapdev_realloc(struct heapdev_heap *heap, void *ptr, size_t size,
		      unsigned int flags)
{
	void *p;

	if (!ptr)
		return heapdev_alloc(heap, size, flags);
	p = hd_realloc_fast(heap, flags & HD_CALL_FLAGS, ptr, size);
	if (likely(p))
		return p;
	return HD_CALL(hd_api_realloc(heap, ptr, size, flags));
}

void *heapdev_alloc_aligned(struct heapdev_heap *heap, size_t size,
			    size_t alignment, unsigned int flags)
{
	return HD_CALL(hd_api_alloc_aligned(heap, size, alignment, flags));
}

/*
 * Span and heap structs are never given back, so the lookup needs no
 * call protocol: a heap being destroyed has @live cleared already.
 */
struct heapdev_heap *heapdev_heap_of(const void *ptr)
{
	struct hd_span *sp = hd_span_of((uintptr_t)ptr);

	if (!sp || !sp->heap)
		return NULL;
	return (struct heapdev_heap *)hd_live(sp->heap);
}

int heapdev_size(struct heapdev_heap *heap, const void *ptr,
		 unsigned int flags, size_t *size)
{
	return HD_CALL(hd_api_size(heap, ptr, flags, size));
}

int heapdev_validate(struct heapdev_heap *heap, const void *ptr,
		     unsigned int flags)
{
	return HD_CALL(hd_api_validate(heap, ptr, flags));
}

int heapdev_lock(struct heapdev_heap *heap)
{
	return HD_CALL(hd_api_lock(heap));
}

int heapdev_unlock(struct heapdev_heap *heap)
{
	return HD_CALL(hd_api_unlock(heap));
}

int heapdev_compact(struct heapdev_heap *heap, unsigned int flags,
		    size_t *largest)
{
	return HD_CALL(hd_api_compact(heap, flags, largest));
}

int heapdev_walk(struct heapdev_heap *heap, struct heapdev_walk_entry *e)
{
	return HD_CALL(hd_api_walk(heap, e));
}

int heapdev_get_info(struct heapdev_heap *heap, struct heapdev_heap_info *info)
{
	return HD_CALL(hd_api_get_info(heap, info));
}

int heapdev_trim(struct heapdev_heap *heap)
{
	return HD_CALL(hd_api_trim(heap));
}

int heapdev_enable_lfh(struct heapdev_heap *heap)
{
	return HD_CALL(hd_api_enable_lfh(heap));
}

int heapdev_set_lazy_commit(struct heapdev_heap *heap, int on)
{
	return HD_CALL(hd_api_set_lazy_commit(heap, on));
}
