/* SPDX-License-Identifier: (GPL-2.0-only WITH Linux-syscall-note) OR MIT */
/*
 * heapdev: private, kernel-backed heaps for Linux processes.
 *
 * A process opens /dev/heapdev and creates heaps with HEAPDEV_IOC_CREATE.
 * Every heap owns a window of the open file's mmap offset space, starting at
 * the mmap_offset the kernel returns.  The process maps (parts of) that
 * window with mmap(MAP_SHARED) and commits pages into it with
 * HEAPDEV_IOC_COMMIT.  Committed pages are allocated, zeroed and charged to
 * the caller's memory cgroup when the commit succeeds (or, with
 * HEAPDEV_COMMIT_LAZY, on first touch), are never swapped, and stay
 * resident until they are decommitted or the heap is destroyed.  Touching
 * a mapped but uncommitted page raises SIGBUS.
 *
 * Heaps belong to the process that opened the device: mappings are not
 * inherited across fork (VM_DONTCOPY), and ioctls and mmap from any other
 * process fail with EPERM.
 *
 * Every command takes a pointer to a structure whose first member is its
 * size in bytes: set it to sizeof(struct).  The kernel accepts structures
 * from older userspace (shorter, down to the first version of the struct)
 * and from newer userspace (longer, as long as the bytes it does not know
 * are zero; otherwise E2BIG).  Output fields are written up to the smaller
 * of both sizes.  Common errors:
 *
 *   ENOTTY     unknown command
 *   EFAULT     the argument pointer is invalid
 *   EINVAL     size too small, unknown flag bits, non-zero padding, or a
 *              value out of range (see each command)
 *   E2BIG      size larger than the kernel knows, with non-zero extra bytes
 *   EPERM      the caller is not the process that opened the device
 *   ENOENT     no heap with that id in this file
 *
 * Sizes and offsets are in bytes; all must be multiples of the page size
 * where documented.  Limits are module parameters (see heapdev(4)).
 */
#ifndef _UAPI_LINUX_HEAPDEV_H
#define _UAPI_LINUX_HEAPDEV_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define HEAPDEV_ABI_VERSION	1

#define HEAPDEV_IOC_MAGIC	0xB9

/**
 * enum heapdev_heap_flags - properties of a heap
 * @HEAPDEV_HEAP_EXEC: the heap may be mapped with PROT_EXEC.  Accepted by
 *	HEAPDEV_IOC_CREATE; without it, mmap with PROT_EXEC fails with EPERM
 *	and mprotect(PROT_EXEC) with EACCES.
 * @HEAPDEV_HEAP_GROWABLE: the heap was created with maximum 0.  Reported by
 *	HEAPDEV_IOC_QUERY only; HEAPDEV_IOC_CREATE refuses it with EINVAL.
 * @HEAPDEV_HEAP_DESTROYED: the admin view's 'D': a destroyed heap whose
 *	pages are still being released in the background.  Never reported
 *	by HEAPDEV_IOC_QUERY, which fails with ENOENT for destroyed heaps.
 * @HEAPDEV_HEAP_INHERIT: a child created by fork() gets its own copy of the
 *	heap, at the same addresses: a heap with the same id in the child's
 *	view of the inherited file descriptor, holding a private copy of
 *	every page committed at the fork (lazily committed pages not touched
 *	yet stay lazy), charged to the child.  Heaps without it are not
 *	inherited: their mappings do not exist in the child.  Accepted by
 *	HEAPDEV_IOC_CREATE (HEAPDEV_FEAT_INHERIT).
 */
enum heapdev_heap_flags {
	HEAPDEV_HEAP_EXEC	= 1U << 0,
	HEAPDEV_HEAP_GROWABLE	= 1U << 1,
	HEAPDEV_HEAP_DESTROYED	= 1U << 2,
	HEAPDEV_HEAP_INHERIT	= 1U << 3,
};

/**
 * enum heapdev_features - optional capabilities, reported by GET_INFO
 * @HEAPDEV_FEAT_POPULATE: HEAPDEV_COMMIT_POPULATE is supported.
 * @HEAPDEV_FEAT_EXEC: HEAPDEV_HEAP_EXEC is supported.
 * @HEAPDEV_FEAT_LIST: HEAPDEV_IOC_LIST is supported.
 * @HEAPDEV_FEAT_ASYNC_RELEASE: HEAPDEV_DESTROY_ASYNC and
 *	HEAPDEV_DECOMMIT_ASYNC are supported (modules without this feature
 *	refuse the flags with EINVAL).
 * @HEAPDEV_FEAT_LAZY_COMMIT: HEAPDEV_COMMIT_LAZY is supported, and
 *	HEAPDEV_IOC_QUERY reports @resident (modules without this feature
 *	refuse the flag with EINVAL).
 * @HEAPDEV_FEAT_INHERIT: HEAPDEV_HEAP_INHERIT is supported (modules without
 *	this feature refuse the flag with EINVAL).
 * @HEAPDEV_FEAT_KEEP_MAPPINGS: HEAPDEV_DESTROY_KEEP_MAPPINGS is supported
 *	(modules without this feature refuse the flag with EINVAL).
 */
enum heapdev_features {
	HEAPDEV_FEAT_POPULATE		= 1ULL << 0,
	HEAPDEV_FEAT_EXEC		= 1ULL << 1,
	HEAPDEV_FEAT_LIST		= 1ULL << 2,
	HEAPDEV_FEAT_ASYNC_RELEASE	= 1ULL << 3,
	HEAPDEV_FEAT_LAZY_COMMIT	= 1ULL << 4,
	HEAPDEV_FEAT_INHERIT		= 1ULL << 5,
	HEAPDEV_FEAT_KEEP_MAPPINGS	= 1ULL << 6,
};

/**
 * struct heapdev_info - HEAPDEV_IOC_GET_INFO: ABI version and limits
 * @size: sizeof(struct heapdev_info)
 * @flags: must be 0
 * @abi_version: out: HEAPDEV_ABI_VERSION of the running module
 * @page_size: out: the granule of every offset and length, in bytes
 * @features: out: mask of enum heapdev_features
 * @window_size: out: the largest reservation of one heap, in bytes; also
 *	the reservation of every growable heap
 * @heap_limit: out: most bytes one heap may have committed
 * @file_limit: out: most bytes all heaps of one open file may have committed
 * @user_limit: out: most bytes all heaps of one user may have committed
 * @max_heaps: out: most heaps one open file may hold at a time
 * @__pad: must be 0
 * @file_committed: out: bytes committed by all heaps of this open file
 * @user_committed: out: bytes committed by all heaps of the calling user
 */
struct heapdev_info {
	__u32 size;
	__u32 flags;
	__u32 abi_version;
	__u32 page_size;
	__u64 features;
	__u64 window_size;
	__u64 heap_limit;
	__u64 file_limit;
	__u64 user_limit;
	__u32 max_heaps;
	__u32 __pad;
	__u64 file_committed;
	__u64 user_committed;
};

/**
 * struct heapdev_create - HEAPDEV_IOC_CREATE: create a heap
 * @size: sizeof(struct heapdev_create)
 * @flags: HEAPDEV_HEAP_EXEC, HEAPDEV_HEAP_INHERIT, both or 0
 * @initial: bytes committed at creation, rounded up to whole pages; may be 0
 * @maximum: 0 for a growable heap (reservation of window_size bytes, commits
 *	limited only by heap_limit); otherwise the fixed size of the heap in
 *	bytes, rounded up to whole pages, at most window_size.  @initial must
 *	not exceed it.
 * @heap_id: out: the heap's handle within this open file, never 0
 * @__pad: must be 0
 * @mmap_offset: out: the mmap offset of the heap's first byte
 * @reserved: out: the size of the heap's window in bytes; mappings and
 *	commits must lie within [0, reserved) of the heap
 *
 * Errors: EINVAL for unknown flags, @initial > @maximum or @maximum larger
 * than window_size; EDQUOT when the file already holds max_heaps heaps or
 * @initial exceeds a limit; ENOMEM when the pages cannot be allocated or
 * charged to the memory cgroup.  On error nothing is created.
 */
struct heapdev_create {
	__u32 size;
	__u32 flags;
	__u64 initial;
	__u64 maximum;
	__u32 heap_id;
	__u32 __pad;
	__u64 mmap_offset;
	__u64 reserved;
};

/**
 * enum heapdev_release_flags - flags of HEAPDEV_IOC_DESTROY and DECOMMIT
 * @HEAPDEV_DESTROY_ASYNC: return as soon as the heap's pages are unmapped
 *	and out of the heap, and free them in the background.
 * @HEAPDEV_DECOMMIT_ASYNC: the same for the pages of a decommitted range.
 * @HEAPDEV_DESTROY_KEEP_MAPPINGS: with HEAPDEV_DESTROY_ASYNC, return
 *	without unmapping the pages either: the worker zaps every mapping of
 *	the heap (in every process) before it frees the pages.  Until then
 *	the caller's mappings still reach the destroyed heap's old pages, so
 *	a caller passes it only when it has made them inaccessible (e.g.
 *	mprotect(PROT_NONE)), which costs less than the zap, and it unmaps
 *	them once they are zapped.  No effect on releases done at once.
 *
 * Without the flag the call returns once every page is back with the
 * kernel.  With it, the caller sees the same effect at once (the id or
 * the range is gone, touching the pages raises SIGBUS, a recommit gets
 * new zeroed pages), but the pages are freed by a kernel worker shortly
 * afterwards, and until each is freed it still counts: against the
 * memory cgroup, against file_limit and user_limit (GET_INFO's
 * file_committed and user_committed include it), in the module's
 * "pages" counter (and "releasing", in /sys/class/misc/heapdev/), and a
 * destroyed heap stays in /proc/heapdev with the flag 'D'.  A commit that
 * would exceed a limit, or cannot allocate, while such pages are pending
 * waits for their release once before it fails.  Small releases are done
 * at once even with the flag.  The module parameter async_release=1
 * makes every destroy and decommit behave as if the flag were given.
 */
enum heapdev_release_flags {
	HEAPDEV_DESTROY_ASYNC	= 1U << 0,
	HEAPDEV_DECOMMIT_ASYNC	= 1U << 0,
	HEAPDEV_DESTROY_KEEP_MAPPINGS	= 1U << 1,
};

/**
 * struct heapdev_destroy - HEAPDEV_IOC_DESTROY: destroy a heap
 * @size: sizeof(struct heapdev_destroy)
 * @flags: 0, HEAPDEV_DESTROY_ASYNC, or that and
 *	HEAPDEV_DESTROY_KEEP_MAPPINGS
 * @heap_id: the heap
 * @__pad: must be 0
 *
 * The id stops being valid at once.  Every page is unmapped from every
 * mapping and released; mappings that still exist raise SIGBUS when
 * touched, and unmapping them remains the caller's job.
 */
struct heapdev_destroy {
	__u32 size;
	__u32 flags;
	__u32 heap_id;
	__u32 __pad;
};

/**
 * enum heapdev_commit_flags - flags of HEAPDEV_IOC_COMMIT
 * @HEAPDEV_COMMIT_POPULATE: also map the committed pages into the caller's
 *	existing mappings of the range, so that first touches do not fault.
 * @HEAPDEV_COMMIT_LAZY: commit as a charge, as Windows does: the range
 *	counts as committed at once (against heap_limit, file_limit and
 *	user_limit, in @committed and in the admin view), but each page is
 *	allocated, zeroed and charged to the memory cgroup of the process
 *	only when it is first touched.  What the commit then guarantees:
 *	the module's limits can no longer refuse the pages, and touching them
 *	never raises SIGBUS.  What it does not: the allocation at first touch
 *	can still fail for lack of memory, or because the memory cgroup is at
 *	its limit; the fault then takes the kernel's out-of-memory path (the
 *	cgroup's OOM handling, which may kill the process), as a first touch
 *	of anonymous memory does.  Without the flag the pages are allocated
 *	by the commit itself, which fails with ENOMEM instead.  Pages already
 *	committed in the range stay as they are.  Not with
 *	HEAPDEV_COMMIT_POPULATE (EINVAL).
 */
enum heapdev_commit_flags {
	HEAPDEV_COMMIT_POPULATE	= 1U << 0,
	HEAPDEV_COMMIT_LAZY	= 1U << 1,
};

/**
 * struct heapdev_commit - HEAPDEV_IOC_COMMIT: commit pages
 * @size: sizeof(struct heapdev_commit)
 * @flags: mask of enum heapdev_commit_flags
 * @heap_id: the heap
 * @__pad: must be 0
 * @offset: start of the range in the heap, page aligned
 * @length: length of the range, page aligned, not 0
 * @committed: out: the heap's committed bytes after the call
 * @changed: out: bytes this call committed (pages already committed in the
 *	range stay as they are, contents included)
 *
 * All or nothing: on error no page of the range changes state.  Errors:
 * EINVAL for unaligned or empty ranges or ranges beyond the heap's
 * reservation, EOVERFLOW if @offset + @length wraps, EDQUOT when a limit
 * would be exceeded, ENOMEM when pages cannot be allocated or charged,
 * EINTR when a fatal signal arrives during a long commit.
 */
struct heapdev_commit {
	__u32 size;
	__u32 flags;
	__u32 heap_id;
	__u32 __pad;
	__u64 offset;
	__u64 length;
	__u64 committed;
	__u64 changed;
};

/**
 * struct heapdev_decommit - HEAPDEV_IOC_DECOMMIT: release pages
 * @size: sizeof(struct heapdev_decommit)
 * @flags: 0 or HEAPDEV_DECOMMIT_ASYNC
 * @heap_id: the heap
 * @__pad: must be 0
 * @offset: start of the range in the heap, page aligned
 * @length: length of the range, page aligned, not 0
 * @committed: out: the heap's committed bytes after the call
 * @changed: out: bytes this call released
 *
 * The range is unmapped from every mapping and its committed pages are
 * released; touching them afterwards raises SIGBUS until they are
 * committed again, and recommitted pages read as zero.  Uncommitted pages
 * in the range are skipped, so decommit is idempotent, like
 * VirtualFree(MEM_DECOMMIT).  Errors as for HEAPDEV_IOC_COMMIT.
 */
struct heapdev_decommit {
	__u32 size;
	__u32 flags;
	__u32 heap_id;
	__u32 __pad;
	__u64 offset;
	__u64 length;
	__u64 committed;
	__u64 changed;
};

/**
 * struct heapdev_query - HEAPDEV_IOC_QUERY: state of one heap
 * @size: sizeof(struct heapdev_query)
 * @flags: must be 0
 * @heap_id: the heap
 * @heap_flags: out: mask of enum heapdev_heap_flags
 * @committed: out: committed bytes
 * @reserved: out: size of the heap's window in bytes
 * @maximum: out: 0 for growable heaps, else the fixed size in bytes
 * @mmap_offset: out: the mmap offset of the heap's first byte
 * @mappings: out: number of mappings (VMAs) of the heap
 * @__pad: must be 0
 * @resident: out: committed bytes whose pages exist; less than @committed
 *	when lazily committed pages were not touched yet
 *	(HEAPDEV_FEAT_LAZY_COMMIT; older modules leave it as it was)
 */
struct heapdev_query {
	__u32 size;
	__u32 flags;
	__u32 heap_id;
	__u32 heap_flags;
	__u64 committed;
	__u64 reserved;
	__u64 maximum;
	__u64 mmap_offset;
	__u32 mappings;
	__u32 __pad;
	__u64 resident;
};

/**
 * struct heapdev_list - HEAPDEV_IOC_LIST: the heaps of this open file
 * @size: sizeof(struct heapdev_list)
 * @flags: must be 0
 * @capacity: number of __u32 entries at @ids; may be 0
 * @count: out: number of heaps the file holds
 * @ids: pointer to an array of @capacity __u32, filled with the first
 *	min(@capacity, @count) heap ids in ascending order
 */
struct heapdev_list {
	__u32 size;
	__u32 flags;
	__u32 capacity;
	__u32 count;
	__u64 ids;
};

#define HEAPDEV_IOC_GET_INFO	_IO(HEAPDEV_IOC_MAGIC, 0x00)
#define HEAPDEV_IOC_CREATE	_IO(HEAPDEV_IOC_MAGIC, 0x01)
#define HEAPDEV_IOC_DESTROY	_IO(HEAPDEV_IOC_MAGIC, 0x02)
#define HEAPDEV_IOC_COMMIT	_IO(HEAPDEV_IOC_MAGIC, 0x03)
#define HEAPDEV_IOC_DECOMMIT	_IO(HEAPDEV_IOC_MAGIC, 0x04)
#define HEAPDEV_IOC_QUERY	_IO(HEAPDEV_IOC_MAGIC, 0x05)
#define HEAPDEV_IOC_LIST	_IO(HEAPDEV_IOC_MAGIC, 0x06)

#endif /* _UAPI_LINUX_HEAPDEV_H */
