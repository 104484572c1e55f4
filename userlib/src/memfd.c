// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * heapdev: the memfd backend.  One memfd per process, laid out like the
 * device's offset space (heap window n at n << 40).  Uncommitted pages
 * are PROT_NONE; commit = fallocate + mprotect(RW) + MADV_POPULATE_WRITE
 * (a lazy commit only the mprotect); decommit = FALLOC_FL_PUNCH_HOLE +
 * mprotect(PROT_NONE); destroy = one punch over the window, in the
 * background for big heaps (punch.c).  The mappings are MADV_DONTFORK:
 * a forked child gets no mapping of the parent's memfd.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../uapi/heapdev.h"
#include "backend_int.h"

int hd_memfd = -1;
static uint32_t hd_memfd_next_id;

int hd_memfd_open_locked(void)
{
	int fd;

	if (hd_memfd >= 0)
		return 0;
	fd = memfd_create("heapdev", MFD_CLOEXEC);
	if (fd < 0) {
		hd_dbg("heapdev: memfd_create: %s", hd_errstr(errno));
		return -errno;
	}
	if (ftruncate(fd, (off_t)1 << 62)) {
		int err = -errno;

		hd_dbg("heapdev: ftruncate(memfd): %s", hd_errstr(err));
		close(fd);
		return err;
	}
	hd_memfd = fd;
	return 0;
}

/* Window numbers of destroyed memfd heaps, reused before new ones. */
static uint32_t *hd_memfd_freed;
static uint32_t hd_memfd_nfreed, hd_memfd_freed_cap;

static int hd_memfd_create(struct hd_bheap *bh, bool exec, uint64_t maximum)
{
	uint32_t id = 0;

	(void)exec;
	hd_memfd_reap(false);
	pthread_mutex_lock(&hd_region_mutex);
	if (hd_memfd_nfreed)
		id = hd_memfd_freed[--hd_memfd_nfreed];
	else if (hd_memfd_next_id < HD_MEMFD_MAX_ID)
		id = ++hd_memfd_next_id;
	pthread_mutex_unlock(&hd_region_mutex);
	if (!id)
		return -ENOMEM;
	bh->id = id;
	bh->base_off = (uint64_t)id << HD_MEMFD_WINDOW_SHIFT;
	bh->window = maximum ? (maximum + HD_PAGE - 1) & ~(HD_PAGE - 1) :
		     HD_WINDOW;
	bh->committed = 0;
	bh->retired = NULL;
	return 0;
}

static void hd_memfd_put_id(uint32_t id)
{
	pthread_mutex_lock(&hd_region_mutex);
	if (hd_memfd_nfreed == hd_memfd_freed_cap) {
		uint32_t cap = hd_memfd_freed_cap ? 2 * hd_memfd_freed_cap : 64;
		uint32_t *n = hd_meta_realloc(hd_memfd_freed,
					      hd_memfd_freed_cap * sizeof(*n),
					      cap * sizeof(*n));

		if (n) {
			hd_memfd_freed = n;
			hd_memfd_freed_cap = cap;
		}
	}
	if (hd_memfd_nfreed < hd_memfd_freed_cap)
		hd_memfd_freed[hd_memfd_nfreed++] = id;
	pthread_mutex_unlock(&hd_region_mutex);
}

/* Reuse the windows whose punches finished (all: wait for every one). */
void hd_memfd_reap(bool all)
{
	uint64_t tags[HD_PUNCH_SLOTS];
	unsigned int i, n = hd_punch_done(tags, all);

	for (i = 0; i < n; i++) {
		struct hd_retired *rt = (struct hd_retired *)(uintptr_t)tags[i];
		uint32_t id = rt->id;

		hd_retired_free(rt, true);
		hd_memfd_put_id(id);
	}
}

/*
 * A heap of HD_PUNCH_MIN committed bytes or more keeps its mappings, made
 * inaccessible, until its punch is done (when there is memory to list
 * them in).
 */
static void hd_memfd_destroy_begin(struct hd_bheap *bh)
{
	bh->retired = NULL;
	if (bh->committed < HD_PUNCH_MIN)
		return;
	bh->retired = hd_retired_new(bh->id);
}

/*
 * After destroy_begin and the unmaps.  The window of a heap with kept
 * mappings is punched in the background (punch.c); the mappings are
 * unmapped and the window number reused once that is done.  Otherwise,
 * or when the background punch is unavailable, everything is released at
 * once.
 */
static int hd_memfd_destroy(struct hd_bheap *bh)
{
	struct hd_retired *rt = bh->retired;

	bh->retired = NULL;
	hd_memfd_reap(false);
	if (rt && !hd_punch_start(hd_memfd, bh->base_off, bh->window,
				  bh->committed, (uintptr_t)rt)) {
		bh->committed = 0;
		return 0;
	}
	if (rt)
		hd_retired_free(rt, true);
	if (fallocate(hd_memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)bh->base_off, (off_t)bh->window))
		return -errno;
	bh->committed = 0;
	hd_memfd_put_id(bh->id);
	return 0;
}

static int hd_memfd_map(struct hd_bheap *bh, uint64_t off, size_t len,
			uintptr_t *addr)
{
	int err = hd_map_aligned(len, PROT_NONE, hd_memfd, bh->base_off + off,
				 addr);

	if (!err && madvise((void *)*addr, len, MADV_DONTFORK)) {
		err = -errno;
		munmap((void *)*addr, len);
	}
	return err;
}

static int hd_memfd_commit(struct hd_bheap *bh, uintptr_t addr, uint64_t off,
			   size_t len, bool lazy)
{
	int prot = PROT_READ | PROT_WRITE | (bh->exec ? PROT_EXEC : 0);
	bool waited = false;
	int err;

	if (lazy) {
		/* shmem allocates each page on its first fault. */
		if (mprotect((void *)addr, len, prot))
			return -errno;
		bh->committed += len;
		return 0;
	}
	do {
		err = fallocate(hd_memfd, 0, (off_t)(bh->base_off + off),
				(off_t)len) ? -errno : 0;
		/* Pages of destroyed heaps still being given back: wait. */
		if ((err == -ENOMEM || err == -ENOSPC) && !waited &&
		    hd_punch_pending()) {
			hd_memfd_reap(true);
			waited = true;
			err = -EINTR;
		}
	} while (err == -EINTR);
	if (err)
		return err == -ENOSPC || err == -EFBIG ? -ENOMEM : err;
	if (mprotect((void *)addr, len, prot)) {
		err = -errno;
		fallocate(hd_memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			  (off_t)(bh->base_off + off), (off_t)len);
		return err;
	}
	/* Best effort: avoids one page fault per page on first touch. */
	madvise((void *)addr, len, MADV_POPULATE_WRITE);
	bh->committed += len;
	return 0;
}

static int hd_memfd_decommit(struct hd_bheap *bh, uintptr_t addr,
			     uint64_t off, size_t len)
{
	if (fallocate(hd_memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)(bh->base_off + off), (off_t)len))
		return -errno;
	mprotect((void *)addr, len, PROT_NONE);
	bh->committed -= len;
	return 0;
}

static int hd_memfd_park(struct hd_bheap *bh, uintptr_t addr, size_t len,
			 bool on)
{
	int prot = on ? PROT_READ | PROT_WRITE | (bh->exec ? PROT_EXEC : 0) :
		   PROT_NONE;

	return mprotect((void *)addr, len, prot) ? -errno : 0;
}

const struct hd_backend hd_memfd_backend = {
	.name = "memfd",
	.kind = HEAPDEV_BACKEND_MEMFD,
	.create = hd_memfd_create,
	.destroy = hd_memfd_destroy,
	.destroy_begin = hd_memfd_destroy_begin,
	.map = hd_memfd_map,
	.unmap = hd_retire_unmap,
	.commit = hd_memfd_commit,
	.decommit = hd_memfd_decommit,
	.park = hd_memfd_park,
};

/*
 * In a fork() child: the parent's memfd is replaced by its copy @fd (the
 * child kept memfd heaps), or by none (-1: window numbers start afresh).
 * The windows the parent is punching are not reused (at most 16); their
 * mappings were not inherited (MADV_DONTFORK).
 */
void hd_memfd_atfork_child(int fd)
{
	uint64_t tags[HD_PUNCH_SLOTS];
	unsigned int i, n;

	if (hd_memfd >= 0)
		close(hd_memfd);
	hd_memfd = fd;
	n = hd_punch_atfork_child(tags);
	for (i = 0; i < n; i++)
		hd_retired_free((struct hd_retired *)(uintptr_t)tags[i], false);
	if (fd < 0) {
		hd_memfd_next_id = 0;
		hd_memfd_nfreed = 0;
	}
}
