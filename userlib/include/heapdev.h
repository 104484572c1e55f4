/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * heapdev: private heaps for Linux processes, backed by /dev/heapdev.
 *
 * This is the native C API.  The Win32 heap API (HeapCreate, HeapAlloc, ...)
 * is declared in <heapdev/win32.h>; both work on the same heaps: a
 * struct heapdev_heap * and the Win32 HANDLE of a heap are the same value.
 *
 * Error conventions:
 *
 *   control calls (everything that returns int) return 0 on success or a
 *   negative errno value, and never read or write errno;
 *
 *   allocation calls (heapdev_alloc, heapdev_realloc) are malloc-like: they
 *   return a pointer, or NULL with errno set (ENOMEM when there is not
 *   enough memory, EDQUOT when a limit of /dev/heapdev refused the memory,
 *   EINVAL for a bad heap, pointer or size).
 *
 * Common negative errno values of control calls:
 *
 *   -EBADF   the heap is not a live heap of this process (never created,
 *            already destroyed, or inherited across fork)
 *   -EINVAL  a pointer that is not a live block of the heap (freed, foreign,
 *            interior or corrupted), or an invalid argument
 *   -ENOMEM  not enough memory (commit refused by the kernel, e.g. the
 *            memory cgroup, or by the memfd backend)
 *   -EDQUOT  a commit or a new heap refused by a limit of /dev/heapdev
 *            (its per-heap, per-file or per-user limit on committed bytes,
 *            or max_heaps); the Win32 calls report it as
 *            ERROR_NOT_ENOUGH_MEMORY, like -ENOMEM
 *   -ENOENT  the kernel device /dev/heapdev is missing and no other backend
 *            was chosen (see HEAPDEV_BACKEND below)
 *
 * Backends: heaps are backed by the kernel device /dev/heapdev unless the
 * environment variable HEAPDEV_BACKEND is "memfd" (memfd_create + fallocate:
 * same semantics, without the kernel's guarantees and admin view) or the
 * creation options ask for a backend explicitly.  There is never a silent
 * fallback.  HEAPDEV_DEBUG=1 makes the library print a one-line reason on
 * stderr when a heap cannot be created or corruption is detected.
 *
 * Heaps belong to the process: after fork() the child sees none of its
 * parent's heaps (their memory is not inherited), and every heap call on an
 * inherited heap fails with -EBADF.
 */
#ifndef HEAPDEV_H
#define HEAPDEV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef HEAPDEV_API
#define HEAPDEV_API __attribute__((visibility("default")))
#endif

/** struct heapdev_heap - opaque heap handle (the Win32 HANDLE of the heap) */
struct heapdev_heap;

/* Creation flags (struct heapdev_options.flags). */
#define HEAPDEV_NO_SERIALIZE	0x00000001u	/* no locking: one thread only */
#define HEAPDEV_EXEC		0x00040000u	/* memory is executable */
#define HEAPDEV_LAZY_COMMIT	0x01000000u	/* large blocks: pages on touch */
#define HEAPDEV_INHERIT		0x02000000u	/* a fork() child keeps a copy */

/* Backends (struct heapdev_options.backend). */
#define HEAPDEV_BACKEND_DEFAULT	0	/* $HEAPDEV_BACKEND, else the device */
#define HEAPDEV_BACKEND_DEVICE	1	/* /dev/heapdev */
#define HEAPDEV_BACKEND_MEMFD	2	/* memfd_create + fallocate */

/* Per-call flags of heapdev_alloc, heapdev_realloc, heapdev_free, ... */
#define HEAPDEV_ZERO		0x00000008u	/* zero the new bytes */
#define HEAPDEV_IN_PLACE	0x00000010u	/* realloc: never move */
#define HEAPDEV_NOLOCK		0x00000001u	/* skip the heap lock */

/**
 * struct heapdev_options - how to create a heap
 * @size: sizeof(struct heapdev_options); a newer, larger struct is
 *	accepted when its extra bytes are zero (see heapdev_create())
 * @flags: HEAPDEV_NO_SERIALIZE, HEAPDEV_EXEC, HEAPDEV_LAZY_COMMIT (see
 *	heapdev_set_lazy_commit()), HEAPDEV_INHERIT (a child created by
 *	fork() keeps the heap, with a private copy of its memory made at the
 *	fork, at the same addresses) or 0
 * @backend: HEAPDEV_BACKEND_*
 * @initial: bytes committed at creation (rounded up to pages)
 * @maximum: 0 for a growable heap, otherwise the fixed size of the heap
 */
struct heapdev_options {
	uint32_t size;
	uint32_t flags;
	uint32_t backend;
	uint32_t __reserved;
	uint64_t initial;
	uint64_t maximum;
};

/**
 * struct heapdev_heap_info - state of a heap (heapdev_get_info)
 * @size: in: sizeof(struct heapdev_heap_info)
 * @flags: creation flags
 * @backend: HEAPDEV_BACKEND_DEVICE or HEAPDEV_BACKEND_MEMFD
 * @kernel_id: the heap id in /dev/heapdev (and in /proc/heapdev); for the
 *	memfd backend, the window number in the process's memfd
 * @allocated: bytes requested by the live blocks
 * @committed: bytes committed for the heap (resident, except the pages of
 *	large blocks of a lazy-commit heap not touched yet)
 * @reserved: bytes of address space mapped for the heap
 * @maximum: fixed size, or 0 for a growable heap
 * @blocks: number of live blocks
 * @segments: number of segments (regions) of the heap
 * @large: number of large blocks (each in its own committed span)
 * @lfh: 1 when size classes are served from LFH runs
 */
struct heapdev_heap_info {
	uint32_t size;
	uint32_t flags;
	uint32_t backend;
	uint32_t kernel_id;
	uint64_t allocated;
	uint64_t committed;
	uint64_t reserved;
	uint64_t maximum;
	uint64_t blocks;
	uint32_t segments;
	uint32_t large;
	uint32_t lfh;
	uint32_t __reserved;
};

/* Entry kinds of heapdev_walk (struct heapdev_walk_entry.kind). */
#define HEAPDEV_WALK_REGION	1	/* a segment: [addr, addr + size) */
#define HEAPDEV_WALK_BUSY	2	/* a live block of `size` bytes */
#define HEAPDEV_WALK_FREE	3	/* a free, committed block */
#define HEAPDEV_WALK_UNCOMMITTED 4	/* reserved, uncommitted pages */
#define HEAPDEV_WALK_LARGE	5	/* a live large block (own span) */

/**
 * struct heapdev_walk_entry - one step of heapdev_walk
 * @addr: the block (its first user byte) or the start of the range;
 *	set to NULL to start a walk
 * @size: user size of the block, or the size of the range
 * @overhead: the Win32 cbOverhead, chosen so that Win32's layout formulas
 *	hold rather than a count of bytes beyond @size: for a busy medium
 *	block, the padding after @size (the next entry is at @addr + @size +
 *	@overhead + 16, the 16-byte header not counted); for a slot of an
 *	LFH run, busy or free, the slot's bytes less @size (its 8-byte
 *	header included: next entry at @addr + @size + @overhead); for a free
 *	medium block always 32, with @size the block's bytes less 64 (next
 *	entry at @addr + @size + 2 * @overhead); 0 for regions, uncommitted
 *	ranges and large blocks
 * @kind: HEAPDEV_WALK_*
 * @region: index of the segment the entry belongs to: 0, 1, ... in the
 *	order the segments were mapped, except that 64 is skipped (the 65th
 *	segment is 65) because it is the index of every large block, as in
 *	Win32 walks; HeapWalk's BYTE iRegionIndex is the same, capped at 255
 * @cursor: private; leave untouched between calls
 */
struct heapdev_walk_entry {
	void *addr;
	size_t size;
	size_t overhead;
	uint32_t kind;
	uint32_t region;
	uint64_t cursor[2];
};

/**
 * struct heapdev_exception - what HEAP_GENERATE_EXCEPTIONS reports
 * @code: STATUS_NO_MEMORY (0xC0000017) or STATUS_ACCESS_VIOLATION
 *	(0xC0000005), as the Win32 heap would raise
 * @heap: the heap of the failed call
 * @ptr: the block passed to the call, or NULL
 * @size: the requested size
 * @function: name of the failed call ("HeapAlloc", "HeapReAlloc")
 */
struct heapdev_exception {
	uint32_t code;
	void *heap;
	void *ptr;
	size_t size;
	const char *function;
};

typedef void (*heapdev_exception_handler_t)(const struct heapdev_exception *e);

/**
 * heapdev_create() - create a private heap
 * @opts: options, or NULL for a growable, serialized heap on the default
 *	backend; unknown flags, a non-zero @__reserved and a @size smaller
 *	than the first version of the struct give -EINVAL; a larger @size
 *	(a caller built against a newer header) is accepted when every byte
 *	beyond this version's struct is zero, and gives -E2BIG otherwise or
 *	when it is above 4096
 * @heap: out: the new heap
 *
 * Control call.  Return: 0, -EINVAL, -E2BIG, -ENOMEM (the initial commit
 * or the address space is refused), -ENOENT (no /dev/heapdev and no
 * backend chosen), -EACCES (no permission on /dev/heapdev), -EDQUOT (a
 * module limit: max_heaps heaps already, or the initial commit is above
 * the per-heap, per-file or per-user limit).
 */
HEAPDEV_API int heapdev_create(const struct heapdev_options *opts,
			       struct heapdev_heap **heap);

/**
 * heapdev_destroy() - release a heap and every block in it at once
 * @heap: the heap
 *
 * Control call.  Return: 0, -EBADF (not a live heap), -EBUSY (the process
 * heap, which cannot be destroyed).
 */
HEAPDEV_API int heapdev_destroy(struct heapdev_heap *heap);

/**
 * heapdev_alloc() - allocate a block of exactly @size bytes
 * @heap: the heap
 * @size: bytes; 0 gives a unique block of size 0
 * @flags: HEAPDEV_ZERO, HEAPDEV_NOLOCK or 0
 *
 * Allocation call.  Return: a 16-byte aligned block, or NULL with errno
 * ENOMEM (no memory, or @size above the heap's per-block limit), EDQUOT
 * (the commit was refused by a per-heap, per-file or per-user limit of
 * /dev/heapdev; HeapAlloc says ERROR_NOT_ENOUGH_MEMORY) or EINVAL (@heap
 * is not a live heap).
 */
HEAPDEV_API void *heapdev_alloc(struct heapdev_heap *heap, size_t size,
				unsigned int flags)
	__attribute__((malloc, alloc_size(2), warn_unused_result));

/**
 * heapdev_alloc_aligned() - allocate a block at an aligned address
 * @heap: the heap
 * @size: bytes; 0 gives a unique block of size 0
 * @alignment: a power of two; the block's address is a multiple of it
 *	(up to 16 every block is; larger values are honoured up to 2^40)
 * @flags: HEAPDEV_ZERO, HEAPDEV_NOLOCK or 0
 *
 * The block is an ordinary block of @heap: heapdev_free(), heapdev_size()
 * (which gives @size) and heapdev_realloc() work on it, and a realloc that
 * moves it keeps only the usual 16-byte alignment.  Blocks aligned beyond
 * 16 bytes are medium or large blocks, never LFH slots.
 *
 * Allocation call.  Return: the block, or NULL with errno EINVAL (@heap is
 * not a live heap, or @alignment is 0 or not a power of two), ENOMEM or
 * EDQUOT (as for heapdev_alloc()).
 */
HEAPDEV_API void *heapdev_alloc_aligned(struct heapdev_heap *heap, size_t size,
					size_t alignment, unsigned int flags)
	__attribute__((malloc, alloc_size(2), alloc_align(3),
		       warn_unused_result));

/**
 * heapdev_heap_of() - the heap a block belongs to
 * @ptr: any address
 *
 * Never touches the memory at @ptr, so any value may be passed.
 *
 * Return: the live heap whose blocks' memory (a segment or a large block's
 * span) contains @ptr, or NULL (not heap memory of this process, a heap
 * being destroyed, or a large block that was freed).  Whether @ptr is a
 * live block is for heapdev_free(), heapdev_size() or heapdev_validate()
 * to say.
 */
HEAPDEV_API struct heapdev_heap *heapdev_heap_of(const void *ptr);

/**
 * heapdev_realloc() - resize a block
 * @heap: the heap
 * @ptr: a live block of @heap, or NULL to allocate
 * @size: the new size
 * @flags: HEAPDEV_ZERO (zero the bytes beyond the old size),
 *	HEAPDEV_IN_PLACE (fail rather than move), HEAPDEV_NOLOCK
 *
 * Allocation call.  Return: the block (possibly moved), or NULL with errno
 * ENOMEM (no memory, or HEAPDEV_IN_PLACE cannot be honoured), EDQUOT (a
 * commit refused by a limit of /dev/heapdev, as for heapdev_alloc()) or
 * EINVAL (bad heap or @ptr); on failure the old block is left intact.  A
 * non-NULL @ptr that is not a live block counts as corruption, like a bad
 * heapdev_free() (see heapdev_terminate_on_corruption()); NULL never does.
 */
HEAPDEV_API void *heapdev_realloc(struct heapdev_heap *heap, void *ptr,
				  size_t size, unsigned int flags)
	__attribute__((alloc_size(3), warn_unused_result));

/**
 * heapdev_free() - free a block
 * @heap: the heap
 * @ptr: a live block of @heap, or NULL (nothing to do)
 * @flags: HEAPDEV_NOLOCK or 0
 *
 * Control call.  Return: 0, -EBADF (bad heap), -EINVAL (@ptr is not a live
 * block of @heap: double, foreign or wild free, or a corrupted header; the
 * heap is left as it was).
 */
HEAPDEV_API int heapdev_free(struct heapdev_heap *heap, void *ptr,
			     unsigned int flags);

/**
 * heapdev_size() - the exact size requested for a block
 * @heap: the heap
 * @ptr: a live block of @heap
 * @flags: HEAPDEV_NOLOCK or 0
 * @size: out: the size
 *
 * A query: a @ptr that is not a live block (NULL, freed, foreign, wild or
 * with a damaged header) gives -EINVAL and never ends the process, even
 * after heapdev_terminate_on_corruption() (HeapSize does not validate
 * blocks on Windows either).
 *
 * Control call.  Return: 0, -EBADF, -EINVAL.
 */
HEAPDEV_API int heapdev_size(struct heapdev_heap *heap, const void *ptr,
			     unsigned int flags, size_t *size);

/**
 * heapdev_validate() - check a block, or the whole heap
 * @heap: the heap
 * @ptr: a block to check, or NULL to check every block header, free list
 *	and free block of the heap
 * @flags: HEAPDEV_NOLOCK or 0
 *
 * Control call.  Return: 0 (valid), -EINVAL (not a live block, or the heap
 * is corrupted), -EBADF.
 */
HEAPDEV_API int heapdev_validate(struct heapdev_heap *heap, const void *ptr,
				 unsigned int flags);

/**
 * heapdev_lock() - take the heap's lock (recursive)
 * @heap: the heap
 *
 * Other threads block in every call on @heap (except calls passing
 * HEAPDEV_NOLOCK and small blocks served by LFH runs of size classes that
 * are already active, as on Windows) until the matching heapdev_unlock().
 * A no-op on HEAPDEV_NO_SERIALIZE heaps.
 *
 * Control call.  Return: 0, -EBADF.
 */
HEAPDEV_API int heapdev_lock(struct heapdev_heap *heap);

/**
 * heapdev_unlock() - release the heap's lock once
 * @heap: the heap
 *
 * Control call.  Return: 0, -EBADF, -EPERM (the caller does not hold it).
 */
HEAPDEV_API int heapdev_unlock(struct heapdev_heap *heap);

/**
 * heapdev_compact() - coalesce, return free pages to the kernel
 * @heap: the heap
 * @flags: HEAPDEV_NOLOCK or 0
 * @largest: out (may be NULL): the largest free committed block afterwards
 *
 * Releases cached empty runs and empty segments and decommits every whole
 * free page, ignoring the hysteresis of the normal decommit policy.
 *
 * Control call.  Return: 0, -EBADF.
 */
HEAPDEV_API int heapdev_compact(struct heapdev_heap *heap, unsigned int flags,
				size_t *largest);

/**
 * heapdev_walk() - enumerate the regions and blocks of a heap
 * @heap: the heap
 * @entry: in/out; set entry->addr = NULL to start, then pass it back
 *	unchanged
 *
 * Order: for every segment a REGION entry followed by its blocks and
 * uncommitted ranges in address order, then the large blocks in the order
 * they were allocated.  Hold heapdev_lock() for a consistent walk.
 *
 * Control call.  Return: 0 (entry filled), -ENOENT (no more entries),
 * -EINVAL (@entry does not describe a position in @heap), -EBADF.
 */
HEAPDEV_API int heapdev_walk(struct heapdev_heap *heap,
			     struct heapdev_walk_entry *entry);

/**
 * heapdev_get_info() - counters of a heap
 * @heap: the heap
 * @info: out; set info->size = sizeof(*info) first
 *
 * Control call.  Return: 0, -EBADF, -EINVAL (@info->size too small).
 */
HEAPDEV_API int heapdev_get_info(struct heapdev_heap *heap,
				 struct heapdev_heap_info *info);

/**
 * heapdev_process_heap() - the process heap (created on first use)
 *
 * Return: the heap, or NULL with errno set as heapdev_create() would
 * (an allocation-style call), e.g. ENOENT, ENOMEM or EDQUOT.
 */
HEAPDEV_API struct heapdev_heap *heapdev_process_heap(void);

/**
 * heapdev_heaps() - list the live heaps of the process
 * @heaps: out: the live heaps, the process heap (if created) first, then
 *	the others in creation order; filled only when all of them fit in
 *	@capacity entries (as GetProcessHeaps); may be NULL
 * @capacity: entries at @heaps
 * @count: out: number of live heaps (may exceed @capacity)
 *
 * Control call.  Return: 0.
 */
HEAPDEV_API int heapdev_heaps(struct heapdev_heap **heaps, size_t capacity,
			      size_t *count);

/**
 * heapdev_trim() - decommit what a heap does not need (HeapOptimizeResources)
 * @heap: the heap, or NULL for every heap of the process
 *
 * Compacts @heap as heapdev_compact() does.  With NULL, compacts each heap
 * that is live when the call starts, one after the other, taking each
 * heap's lock in turn (and no other lock while it waits for one), so it
 * waits for a heapdev_lock() holder of that heap; heaps created with
 * HEAPDEV_NO_SERIALIZE are skipped, since their owner may be using them
 * without a lock (name such a heap to compact it).
 *
 * Control call.  Return: 0, -EBADF (@heap is not a live heap), -ENOMEM
 * (NULL: no memory to copy the list of heaps).
 */
HEAPDEV_API int heapdev_trim(struct heapdev_heap *heap);

/**
 * heapdev_enable_lfh() - report the low-fragmentation heap as enabled
 * @heap: the heap
 *
 * Size classes always switch to LFH runs after 18 allocations of the same
 * size; this only makes the heap report it (HeapCompatibilityInformation
 * 2), which cannot be undone.  Control call.  Return: 0, -EBADF, -EINVAL
 * (HEAPDEV_NO_SERIALIZE or fixed-size heap).
 */
HEAPDEV_API int heapdev_enable_lfh(struct heapdev_heap *heap);

/**
 * heapdev_set_lazy_commit() - commit large blocks as a charge, not pages
 * @heap: the heap
 * @on: 1: from now on, large blocks (about 1 MiB and more, each in its own
 *	span) and their growth are committed lazily; 0: at once (the
 *	default, unless the heap was created with HEAPDEV_LAZY_COMMIT)
 *
 * A lazy commit is what a commit is on Windows: the memory counts as
 * committed at once (against the limits of /dev/heapdev, in
 * heapdev_get_info() and in the admin view), but each page is allocated,
 * zeroed and charged to the memory cgroup only when first touched, so a
 * block that is mostly never touched costs only what is touched.  On Linux
 * that guarantees less than a commit at once: the limits of /dev/heapdev
 * can no longer refuse the pages, but the first touch of a page can still
 * find no memory, or the memory cgroup at its limit, and then takes the
 * kernel's out-of-memory path (which may kill the process) instead of the
 * allocation failing with ENOMEM.  The memfd backend makes the pages
 * accessible without allocating them (shmem allocates each on its first
 * fault).  Small and medium blocks are always committed at once: their
 * pages are shared by many blocks and touched by the allocator itself.
 * The drop-in malloc turns this on for its heaps (heapdev-malloc(3)).
 *
 * Control call.  Return: 0, -EBADF, -EINVAL (@on not 0 or 1).
 */
HEAPDEV_API int heapdev_set_lazy_commit(struct heapdev_heap *heap, int on);

/**
 * heapdev_atfork() - fork handlers that run around libheapdev's own
 * @prepare: called before libheapdev holds its heaps still (may be NULL)
 * @parent: called in the parent after libheapdev let them go (or NULL)
 * @child: called in the child after libheapdev kept its inheritable heaps
 *	and forgot the others (or NULL)
 *
 * For a library built on libheapdev (the drop-in malloc is one) whose own
 * fork handling must see the heaps as the child has them: handlers given
 * to pthread_atfork() run in an order that depends on when each library
 * registered them.  At most 4 sets.
 *
 * Return: 0, -ENOSPC when 4 sets are registered, or -ENOMEM.
 */
HEAPDEV_API int heapdev_atfork(void (*prepare)(void), void (*parent)(void),
			       void (*child)(void));

/**
 * heapdev_terminate_on_corruption() - abort on detected corruption
 *
 * From now on, for every heap of the process: a corrupted block header, a
 * double, foreign or wild free or realloc (a non-NULL pointer given to
 * heapdev_free() or heapdev_realloc() that is not a live block), or a
 * corrupted free list ends the process with abort() after a message on
 * stderr that names the heap and the pointer.  The queries
 * (heapdev_size(), heapdev_validate()) and NULL pointers only fail as
 * before.  Irreversible.  Control call.  Return: 0.
 */
HEAPDEV_API int heapdev_terminate_on_corruption(void);

/**
 * heapdev_set_exception_handler() - handler for HEAP_GENERATE_EXCEPTIONS
 * @fn: the handler, or NULL for the default
 *
 * When a Win32 call fails on a heap or call with HEAP_GENERATE_EXCEPTIONS,
 * the library calls @fn with no lock held.  @fn may return (the call then
 * fails normally: NULL with the last error set) or leave with longjmp().
 * The default, without a handler, prints the exception on stderr and
 * raises SIGABRT (the Linux counterpart of an unhandled exception); if a
 * SIGABRT handler returns, the call fails normally.
 *
 * Return: the previous handler.
 */
HEAPDEV_API heapdev_exception_handler_t
heapdev_set_exception_handler(heapdev_exception_handler_t fn);

/**
 * heapdev_version() - the library version, e.g. "0.1.0"
 */
HEAPDEV_API const char *heapdev_version(void);

#ifdef __cplusplus
}
#endif

#endif /* HEAPDEV_H */
