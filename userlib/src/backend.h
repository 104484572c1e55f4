/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * heapdev: the backend layer, the memory providers of heaps (backend.c,
 * device.c, memfd.c, punch.c; backend_int.h is what they share).
 *
 *   device   /dev/heapdev: one open file per process, a window of its mmap
 *            offset space per heap, pages committed by ioctl (resident,
 *            never swapped, SIGBUS when uncommitted);
 *   memfd    one memfd per process with heap window n at n << 40;
 *            uncommitted pages are PROT_NONE, commit = fallocate +
 *            mprotect + MADV_POPULATE_WRITE, decommit = hole punch.
 *
 * A lazy commit (heaps created with HEAPDEV_LAZY_COMMIT, for their large
 * blocks) makes the pages exist only when first touched: the device
 * charges them at once (HEAPDEV_COMMIT_LAZY), memfd only makes them
 * accessible (no fallocate), so shmem allocates each on its first fault.
 *
 * Mappings are placed at 4 MiB-aligned addresses, the granule of the page
 * map (page.h).
 */
#ifndef HEAPDEV_BACKEND_H
#define HEAPDEV_BACKEND_H

#include "base.h"

struct hd_bheap;

/**
 * struct hd_backend - the memory provider of a heap
 *
 * Every call returns 0 or a negative errno.  Offsets are relative to the
 * heap's window; lengths and offsets are page multiples.
 */
struct hd_backend {
	const char *name;
	int kind;	/* HEAPDEV_BACKEND_DEVICE or _MEMFD */
	int (*create)(struct hd_bheap *bh, bool exec, uint64_t maximum);
	/*
	 * Release the heap's pages and its window.  Without destroy_begin
	 * the caller unmaps the heap's mappings after destroy; with it,
	 * destroy_begin, the unmaps, then destroy (both backends have it:
	 * for a big heap the unmaps only make the mappings inaccessible,
	 * and they are unmapped once the kernel, in the background, has
	 * zapped them: memfd's punch, the module's release worker).
	 */
	int (*destroy)(struct hd_bheap *bh);
	void (*destroy_begin)(struct hd_bheap *bh);
	int (*map)(struct hd_bheap *bh, uint64_t off, size_t len,
		   uintptr_t *addr);
	int (*unmap)(struct hd_bheap *bh, uintptr_t addr, size_t len);
	int (*commit)(struct hd_bheap *bh, uintptr_t addr, uint64_t off,
		      size_t len, bool lazy);
	int (*decommit)(struct hd_bheap *bh, uintptr_t addr, uint64_t off,
			size_t len);
	/*
	 * Make committed pages inaccessible (@on false) or accessible again,
	 * keeping them committed: a heap kept warm for the next HeapCreate
	 * (heap.c).  NULL: the backend never keeps heaps warm.
	 */
	int (*park)(struct hd_bheap *bh, uintptr_t addr, size_t len, bool on);
};

/**
 * struct hd_bheap - a heap as its backend knows it
 * @be: the backend
 * @fd: the device file the heap lives in (a fork child's inherited heaps
 *	stay in the inherited one)
 * @id: kernel heap id (device) or window number (memfd)
 * @exec: mappings are executable
 * @inherit: a fork() child keeps the heap (set before create(); the
 *	device clears it when the module cannot copy heaps at fork)
 * @window: bytes of the heap's window (reservation limit)
 * @base_off: mmap offset of the window's first byte
 * @committed: bytes committed, as last reported by the backend
 * @retired: memfd, between destroy_begin and destroy: the mappings kept
 *	for the background punch (backend.c)
 */
struct hd_bheap {
	const struct hd_backend *be;
	int fd;
	uint32_t id;
	bool exec;
	bool inherit;
	uint64_t window;
	uint64_t base_off;
	uint64_t committed;
	void *retired;
};

HD_HIDDEN int hd_backend_select(int which, const struct hd_backend **be);
HD_HIDDEN void hd_backend_fork_prepare(struct hd_bheap *const *bhs,
				       size_t n);
HD_HIDDEN void hd_backend_fork_lock(void);
HD_HIDDEN void hd_backend_fork_parent(void);
HD_HIDDEN bool hd_backend_fork_keep(struct hd_bheap *bh);
HD_HIDDEN void hd_backend_atfork_child(void);
HD_HIDDEN int hd_device_query(const struct hd_bheap *bh, uint64_t *committed);
HD_HIDDEN void hd_backend_drain(void);

#endif /* HEAPDEV_BACKEND_H */
