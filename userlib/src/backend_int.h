/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * heapdev: what the files of the backend layer share (backend.c: common
 * mapping code, backend selection, fork; device.c; memfd.c; punch.c).
 * Nothing above the backend layer includes this header.
 */
#ifndef HEAPDEV_BACKEND_INT_H
#define HEAPDEV_BACKEND_INT_H

#include <pthread.h>

#include "backend.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define HD_DEVICE_PATH	"/dev/heapdev"
#define HD_MEMFD_WINDOW_SHIFT 40
#define HD_MEMFD_MAX_ID	((1U << 21) - 1)

/*
 * The mappings of a destroyed heap that the kernel zaps in the background
 * (memfd: the punch; device: HEAPDEV_DESTROY_KEEP_MAPPINGS): made
 * inaccessible at the destroy, listed here, and unmapped once they are
 * zapped, which then costs little.  A heap's list exists between its
 * backend's destroy_begin and destroy (bh->retired).
 */
struct hd_range {
	uintptr_t addr;
	size_t len;
};

struct hd_retired {
	uint32_t id;
	uint32_t n, cap;
	uint64_t since;		/* device: when its destroy returned */
	struct hd_retired *next;
	struct hd_range r[];
};

/* backend.c */
HD_HIDDEN extern pthread_mutex_t hd_region_mutex;
HD_HIDDEN int hd_map_aligned(size_t len, int prot, int fd, uint64_t off,
			     uintptr_t *addr);
HD_HIDDEN int hd_unmap(struct hd_bheap *bh, uintptr_t addr, size_t len);
HD_HIDDEN struct hd_retired *hd_retired_new(uint32_t id);
HD_HIDDEN void hd_retired_free(struct hd_retired *rt, bool unmap);
HD_HIDDEN int hd_retire_unmap(struct hd_bheap *bh, uintptr_t addr,
			      size_t len);

/* device.c */
HD_HIDDEN extern const struct hd_backend hd_device_backend;
HD_HIDDEN int hd_dev_ioctl(int fd, unsigned long cmd, void *arg);
HD_HIDDEN int hd_dev_open_locked(void);
HD_HIDDEN void hd_dev_unmap_kept(bool all);
HD_HIDDEN void hd_dev_fork_prepare(void);
HD_HIDDEN void hd_dev_fork_parent(void);
HD_HIDDEN void hd_dev_atfork_child(bool kept);

/* memfd.c */
HD_HIDDEN extern const struct hd_backend hd_memfd_backend;
HD_HIDDEN extern int hd_memfd;
HD_HIDDEN int hd_memfd_open_locked(void);
HD_HIDDEN void hd_memfd_reap(bool all);
HD_HIDDEN void hd_memfd_atfork_child(int fd);

/* punch.c: hole punches in the background (memfd heaps' destroys) */
#define HD_PUNCH_SLOTS	16		/* punches in flight, at most */
#define HD_PUNCH_MIN	(1UL << 20)	/* smaller heaps are punched at once */

HD_HIDDEN int hd_punch_start(int fd, uint64_t off, uint64_t len,
			     uint64_t bytes, uint64_t tag);
HD_HIDDEN unsigned int hd_punch_done(uint64_t *tags, bool all);
HD_HIDDEN bool hd_punch_pending(void);
HD_HIDDEN void hd_punch_fork_prepare(void);
HD_HIDDEN void hd_punch_fork_parent(void);
HD_HIDDEN unsigned int hd_punch_atfork_child(uint64_t *tags);

#endif /* HEAPDEV_BACKEND_INT_H */
