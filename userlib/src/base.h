/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * heapdev: the base layer, below everything else in the library.
 *
 * The library's layers, each calling only the layers below it:
 *
 *   win32.c                 Win32 heap API
 *   api.c                   native API (heapdev_*)
 *   heap.h   heap layer     heaps, the call protocol, dispatch by block kind,
 *                           walks (heap.c, thread.c, ops.c, walk.c)
 *   small.h  small blocks   size classes in runs, per-thread contexts
 *                           (small.c, ctx.c)
 *   large.h  large blocks   blocks in spans of their own (large.c)
 *   medium.h medium blocks  TLSF in segments (medium.c, segment.c)
 *   page.h   page layer     page map, spans, commits (page.c)
 *   backend.h backends      /dev/heapdev and memfd (backend.c, device.c,
 *                           memfd.c, punch.c)
 *   base.h   base           locks, diagnostics, metadata memory
 *                           (lock.c, error.c, meta.c)
 *
 * Small blocks sit on medium blocks (a run is a medium block of whole
 * pages); large blocks sit on the page layer directly.
 */
#ifndef HEAPDEV_BASE_H
#define HEAPDEV_BASE_H

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
#define HD_WINDOW	(1ULL << 40)	/* window of a growable heap */
#define HD_MAX_REQUEST	(1ULL << 40)	/* nothing larger is ever attempted */
#define HD_KEYMUL	0x9E3779B97F4A7C15ULL

/* Internal bit of heap flags: a fixed-size heap. */
#define HD_HF_FIXED	0x80000000u

static inline size_t hd_round_page(size_t n)
{
	return (n + HD_PAGE - 1) & ~(HD_PAGE - 1);
}

/* A number unique to each live thread: its thread pointer. */
static inline uintptr_t hd_self(void)
{
	return (uintptr_t)__builtin_thread_pointer();
}

HD_HIDDEN uint64_t hd_now(void);

/* ---- metadata memory (meta.c): never libc's malloc ---- */

HD_HIDDEN void *hd_os_alloc(size_t len);
HD_HIDDEN void *hd_os_reserve(size_t len);
HD_HIDDEN void hd_os_free(void *p, size_t len);
HD_HIDDEN void *hd_meta_alloc(size_t n);
HD_HIDDEN void hd_meta_free(void *p, size_t n);
HD_HIDDEN void *hd_meta_realloc(void *p, size_t old, size_t n);
HD_HIDDEN void hd_meta_atfork_prepare(void);
HD_HIDDEN void hd_meta_atfork_parent(void);
HD_HIDDEN void hd_meta_atfork_child(void);

/* ---- diagnostics (error.c) ---- */

HD_HIDDEN extern _Atomic int hd_terminate;
HD_HIDDEN extern __thread uint32_t hd_last_error
	__attribute__((tls_model("initial-exec")));
HD_HIDDEN extern int hd_debug;
HD_HIDDEN extern __thread int hd_commit_err
	__attribute__((tls_model("initial-exec")));
HD_HIDDEN int hd_alloc_errno(void);
HD_HIDDEN void hd_corrupt(uintptr_t handle, const void *p, const char *what);
HD_HIDDEN void hd_dbg(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
HD_HIDDEN const char *hd_errstr(int err);
HD_HIDDEN void hd_raise(uint32_t code, uintptr_t handle, void *ptr,
			size_t size, const char *fn);

/* ---- locks (lock.c) ---- */

/**
 * struct hd_lock - recursive lock, biased towards one thread
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

/*
 * The lock this thread sleeps on, if any: HeapDestroy and the pauses of
 * a heap do not wait for a thread asleep on another heap's lock.
 */
HD_HIDDEN extern __thread _Atomic(struct hd_lock *) hd_waiting
	__attribute__((tls_model("initial-exec")));

HD_HIDDEN void hd_lock_init(struct hd_lock *l, bool biased);
HD_HIDDEN void hd_lock_slow(struct hd_lock *l);
HD_HIDDEN void hd_unlock_slow(struct hd_lock *l);
HD_HIDDEN bool hd_lock_held(struct hd_lock *l);
HD_HIDDEN bool hd_lock_busy(struct hd_lock *l);
HD_HIDDEN void hd_lock_drop(struct hd_lock *l);
HD_HIDDEN bool hd_lock_try(struct hd_lock *l);
HD_HIDDEN bool hd_bias_supported(void);
HD_HIDDEN void hd_heavy_barrier(void);
HD_HIDDEN void hd_futex_wait(_Atomic uint32_t *addr, uint32_t val,
			     struct hd_lock *l);
HD_HIDDEN void hd_futex_wake(_Atomic uint32_t *addr, int n);
HD_HIDDEN void hd_backoff(unsigned int *tries);

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

/*
 * Whether taking @l costs this thread an atomic read-modify-write on a
 * line other threads write: it holds no bias on @l (the lock is shared,
 * or was never biased).
 */
static inline bool hd_lock_shared(struct hd_lock *l)
{
	return atomic_load_explicit(&l->bias, memory_order_relaxed) !=
	       hd_self();
}

/* A lock that @flags says not to take (HEAP_NO_SERIALIZE). */
static inline void hd_lock_if(struct hd_lock *l, uint32_t flags)
{
	if (!(flags & HEAPDEV_NO_SERIALIZE))
		hd_lock(l);
}

static inline void hd_unlock_if(struct hd_lock *l, uint32_t flags)
{
	if (!(flags & HEAPDEV_NO_SERIALIZE))
		hd_unlock(l);
}

#endif /* HEAPDEV_BASE_H */
