// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * heapdev: the backends.  Every ioctl, and every mmap and memfd call on
 * heap memory, of the library is in this file, behind struct hd_backend.
 *
 * device   /dev/heapdev (uapi/heapdev.h).  One open file per process for all
 *          heaps, opened lazily; each heap owns a window of the file's mmap
 *          offset space.  Committed pages are the kernel's: allocated at
 *          commit, never swapped, SIGBUS when uncommitted.
 *
 * memfd    one memfd per process, laid out like the device's offset space
 *          (heap window n at n << 40).  Uncommitted pages are PROT_NONE;
 *          commit = fallocate + mprotect(RW) + MADV_POPULATE_WRITE (a lazy
 *          commit only the mprotect);
 *          decommit = FALLOC_FL_PUNCH_HOLE + mprotect(PROT_NONE).  The
 *          mappings are MADV_DONTFORK: a forked child gets no mapping of
 *          the parent's memfd.
 *
 * fork(): a child keeps the heaps created to be inherited (bh->inherit),
 * at the same addresses, as a private copy made at the fork.  The device
 * makes the copy itself (HEAPDEV_HEAP_INHERIT); for memfd heaps the fork
 * handlers do: the parent copies the inheritable heaps' windows into a new
 * memfd and records their mappings (prepare), and the child maps that
 * memfd where the parent's mappings were, with their protections.
 *
 * Mappings are placed at 4 MiB-aligned addresses, the granule of the page
 * map that resolves pointers to heaps.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../uapi/heapdev.h"
#include "backend.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define HD_DEVICE_PATH	"/dev/heapdev"
#define HD_MEMFD_WINDOW_SHIFT 40
#define HD_MEMFD_MAX_ID	((1U << 21) - 1)

static pthread_mutex_t hd_region_mutex = PTHREAD_MUTEX_INITIALIZER;
static int hd_dev_fd = -1;
static bool hd_dev_async;	/* the module frees pages in the background */
static bool hd_dev_lazy;	/* the module has HEAPDEV_COMMIT_LAZY */
static bool hd_dev_inherit;	/* the module has HEAPDEV_HEAP_INHERIT */
static int hd_memfd = -1;
static uint32_t hd_memfd_next_id;

/*
 * Reserved 4 MiB-aligned slots of 4 MiB (PROT_NONE, no memory behind them)
 * kept from unmapped 4 MiB spans, so that a heap per request costs one
 * mmap for its first segment instead of a reserve, a map and two trims.
 * Only spans of exactly 4 MiB are turned into slots: a shorter span does
 * not own the rest of its 4 MiB granule, which may hold anything.
 */
#define HD_SLOT_CACHE	64
static uintptr_t hd_slots[HD_SLOT_CACHE];
static unsigned int hd_nslots;
static pthread_mutex_t hd_slot_mutex = PTHREAD_MUTEX_INITIALIZER;

static uintptr_t hd_slot_get(void)
{
	uintptr_t a = 0;

	pthread_mutex_lock(&hd_slot_mutex);
	if (hd_nslots)
		a = hd_slots[--hd_nslots];
	pthread_mutex_unlock(&hd_slot_mutex);
	return a;
}

static bool hd_slot_put(uintptr_t a)
{
	bool kept = false;

	pthread_mutex_lock(&hd_slot_mutex);
	if (hd_nslots < HD_SLOT_CACHE) {
		hd_slots[hd_nslots++] = a;
		kept = true;
	}
	pthread_mutex_unlock(&hd_slot_mutex);
	return kept;
}

/*
 * Map @len bytes of @fd at @off at a 4 MiB-aligned address: over a cached
 * slot when the mapping fits one, else reserve enough address space, put
 * the mapping at the aligned address inside it, and give the slack back.
 */
static int hd_map_aligned(size_t len, int prot, int fd, uint64_t off,
			  uintptr_t *addr)
{
	size_t span = len + HD_CHUNK - HD_PAGE;
	uintptr_t start, aligned;
	void *p;

	aligned = len == HD_CHUNK ? hd_slot_get() : 0;
	if (aligned) {
		p = mmap((void *)aligned, len, prot, MAP_SHARED | MAP_FIXED, fd,
			 (off_t)off);
		if (p != MAP_FAILED) {
			*addr = aligned;
			return 0;
		}
		hd_slot_put(aligned);
	}
	p = mmap(NULL, span, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	start = (uintptr_t)p;
	aligned = (start + HD_CHUNK - 1) & ~(HD_CHUNK - 1);
	p = mmap((void *)aligned, len, prot, MAP_SHARED | MAP_FIXED, fd,
		 (off_t)off);
	if (p == MAP_FAILED) {
		int err = -errno;

		munmap((void *)start, span);
		return err == -EPERM || err == -EACCES ? err : -ENOMEM;
	}
	if (aligned > start)
		munmap((void *)start, aligned - start);
	if (start + span > aligned + len)
		munmap((void *)(aligned + len), start + span - aligned - len);
	*addr = aligned;
	return 0;
}

/*
 * Unmap a span; a span of 4 MiB becomes a reserved slot again (one mmap
 * over it, which also drops its pages from this process).
 */
static int hd_unmap(struct hd_bheap *bh, uintptr_t addr, size_t len)
{
	(void)bh;
	if (len == HD_CHUNK &&
	    mmap((void *)addr, HD_CHUNK, PROT_NONE, MAP_PRIVATE |
		 MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) !=
	    MAP_FAILED && hd_slot_put(addr))
		return 0;
	return munmap((void *)addr, len) ? -errno : 0;
}

/* ---- device backend ---- */

static int hd_dev_ioctl(int fd, unsigned long cmd, void *arg)
{
	int ret;

	do {
		ret = ioctl(fd, cmd, arg);
	} while (ret && errno == EINTR);
	return ret ? -errno : 0;
}

static int hd_dev_open_locked(void)
{
	struct heapdev_info info = { .size = sizeof(info) };
	int fd, err;

	if (hd_dev_fd >= 0)
		return 0;
	fd = open(HD_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		hd_dbg("heapdev: cannot open %s: %s (load the heapdev module, "
		       "or set HEAPDEV_BACKEND=memfd)", HD_DEVICE_PATH,
		       hd_errstr(err));
		return err;
	}
	hd_dev_fd = fd;
	err = hd_dev_ioctl(fd, HEAPDEV_IOC_GET_INFO, &info);
	if (!err && (info.abi_version != HEAPDEV_ABI_VERSION ||
		     info.page_size != HD_PAGE || info.window_size < HD_WINDOW))
		err = -EPROTO;
	hd_dev_async = !err && (info.features & HEAPDEV_FEAT_ASYNC_RELEASE);
	hd_dev_lazy = !err && (info.features & HEAPDEV_FEAT_LAZY_COMMIT);
	hd_dev_inherit = !err && (info.features & HEAPDEV_FEAT_INHERIT);
	if (err) {
		hd_dbg("heapdev: %s: unsupported module (error %d, ABI %u, "
		       "page size %u)", HD_DEVICE_PATH, err, info.abi_version,
		       info.page_size);
		close(fd);
		hd_dev_fd = -1;
	}
	return err;
}

static int hd_dev_create(struct hd_bheap *bh, bool exec, uint64_t maximum)
{
	struct heapdev_create c = {
		.size = sizeof(c),
		.flags = exec ? HEAPDEV_HEAP_EXEC : 0,
		.maximum = maximum,
	};
	int err;

	/* An older module: the heap stays the parent's alone. */
	bh->inherit = bh->inherit && hd_dev_inherit;
	if (bh->inherit)
		c.flags |= HEAPDEV_HEAP_INHERIT;
	err = hd_dev_ioctl(hd_dev_fd, HEAPDEV_IOC_CREATE, &c);

	if (err) {
		hd_dbg("heapdev: HEAPDEV_IOC_CREATE failed: %s",
		       hd_errstr(err));
		return err;
	}
	bh->fd = hd_dev_fd;
	bh->id = c.heap_id;
	bh->base_off = c.mmap_offset;
	bh->window = c.reserved;
	bh->committed = 0;
	return 0;
}

static int hd_dev_destroy(struct hd_bheap *bh)
{
	struct heapdev_destroy d = {
		.size = sizeof(d), .heap_id = bh->id,
		/* the caller does not wait for the pages to be freed */
		.flags = hd_dev_async ? HEAPDEV_DESTROY_ASYNC : 0,
	};

	return hd_dev_ioctl(bh->fd, HEAPDEV_IOC_DESTROY, &d);
}

static int hd_dev_map(struct hd_bheap *bh, uint64_t off, size_t len,
		      uintptr_t *addr)
{
	int prot = PROT_READ | PROT_WRITE | (bh->exec ? PROT_EXEC : 0);

	return hd_map_aligned(len, prot, bh->fd, bh->base_off + off, addr);
}

static int hd_dev_commit(struct hd_bheap *bh, uintptr_t addr, uint64_t off,
			 size_t len, bool lazy)
{
	/* An older module commits everything at once. */
	struct heapdev_commit c = {
		.size = sizeof(c),
		.flags = lazy && hd_dev_lazy ? HEAPDEV_COMMIT_LAZY :
			 HEAPDEV_COMMIT_POPULATE,
		.heap_id = bh->id, .offset = off, .length = len,
	};
	int err = hd_dev_ioctl(bh->fd, HEAPDEV_IOC_COMMIT, &c);

	(void)addr;
	if (err)
		return err;	/* -EDQUOT: a module limit; -ENOMEM */
	bh->committed = c.committed;
	return 0;
}

static int hd_dev_decommit(struct hd_bheap *bh, uintptr_t addr, uint64_t off,
			   size_t len)
{
	struct heapdev_decommit d = {
		.size = sizeof(d), .heap_id = bh->id,
		.flags = hd_dev_async ? HEAPDEV_DECOMMIT_ASYNC : 0,
		.offset = off, .length = len,
	};
	int err = hd_dev_ioctl(bh->fd, HEAPDEV_IOC_DECOMMIT, &d);

	(void)addr;
	if (!err)
		bh->committed = d.committed;
	return err;
}

/* The kernel's view of a device heap's committed bytes (for tests). */
int hd_device_query(const struct hd_bheap *bh, uint64_t *committed)
{
	struct heapdev_query q = { .size = sizeof(q), .heap_id = bh->id };
	int err;

	if (bh->be->kind != HEAPDEV_BACKEND_DEVICE)
		return -EOPNOTSUPP;
	err = hd_dev_ioctl(bh->fd, HEAPDEV_IOC_QUERY, &q);
	if (!err)
		*committed = q.committed;
	return err;
}

static const struct hd_backend hd_device_backend = {
	.name = "device",
	.kind = HEAPDEV_BACKEND_DEVICE,
	.create = hd_dev_create,
	.destroy = hd_dev_destroy,
	.map = hd_dev_map,
	.unmap = hd_unmap,
	.commit = hd_dev_commit,
	.decommit = hd_dev_decommit,
};

/* ---- memfd backend ---- */

static int hd_memfd_open_locked(void)
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

static void hd_memfd_reap(bool all);

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

/*
 * A destroyed memfd heap whose window is punched in the background: its
 * window number and its mappings, made inaccessible at the destroy and
 * unmapped once the punch is done (the punch zaps their page tables in
 * the kernel's worker, so the caller only pays an mprotect).
 */
struct hd_range {
	uintptr_t addr;
	size_t len;
};

struct hd_retired {
	uint32_t id;
	uint32_t n, cap;
	struct hd_range r[];
};

#define HD_RETIRED_FIRST 15

static size_t hd_retired_size(uint32_t cap)
{
	return sizeof(struct hd_retired) + cap * sizeof(struct hd_range);
}

/* Unmap (@unmap: else they are not in this process) and free @rt. */
static void hd_retired_free(struct hd_retired *rt, bool unmap)
{
	uint32_t i;

	for (i = 0; unmap && i < rt->n; i++)
		hd_unmap(NULL, rt->r[i].addr, rt->r[i].len);
	hd_meta_free(rt, hd_retired_size(rt->cap));
}

/* Reuse the windows whose punches finished (all: wait for every one). */
static void hd_memfd_reap(bool all)
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
	struct hd_retired *rt;

	bh->retired = NULL;
	if (bh->committed < HD_PUNCH_MIN)
		return;
	rt = hd_meta_alloc(hd_retired_size(HD_RETIRED_FIRST));
	if (!rt)
		return;
	rt->id = bh->id;
	rt->n = 0;
	rt->cap = HD_RETIRED_FIRST;
	bh->retired = rt;
}

static int hd_memfd_unmap(struct hd_bheap *bh, uintptr_t addr, size_t len)
{
	struct hd_retired *rt = bh->retired, *g;

	if (rt && rt->n == rt->cap) {
		g = hd_meta_realloc(rt, hd_retired_size(rt->cap),
				    hd_retired_size(2 * rt->cap + 1));
		if (g) {
			g->cap = 2 * g->cap + 1;
			bh->retired = rt = g;
		}
	}
	if (rt && rt->n < rt->cap && !mprotect((void *)addr, len, PROT_NONE)) {
		rt->r[rt->n++] = (struct hd_range){ addr, len };
		return 0;
	}
	return hd_unmap(bh, addr, len);
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

/**
 * hd_backend_drain() - wait until every destroyed heap's pages are given
 * back (heapdev_trim(NULL))
 */
void hd_backend_drain(void)
{
	hd_memfd_reap(true);
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

static const struct hd_backend hd_memfd_backend = {
	.name = "memfd",
	.kind = HEAPDEV_BACKEND_MEMFD,
	.create = hd_memfd_create,
	.destroy = hd_memfd_destroy,
	.destroy_begin = hd_memfd_destroy_begin,
	.map = hd_memfd_map,
	.unmap = hd_memfd_unmap,
	.commit = hd_memfd_commit,
	.decommit = hd_memfd_decommit,
	.park = hd_memfd_park,
};

/* HEAPDEV_BACKEND, read once: a HEAPDEV_BACKEND_* or -EINVAL. */
static int hd_env_backend(void)
{
	static int cached = -1;
	const char *s;

	if (cached != -1)
		return cached;
	s = getenv("HEAPDEV_BACKEND");
	if (!s || !*s || !strcmp(s, "device"))
		cached = HEAPDEV_BACKEND_DEVICE;
	else if (!strcmp(s, "memfd"))
		cached = HEAPDEV_BACKEND_MEMFD;
	else
		cached = -EINVAL;
	return cached;
}

/**
 * hd_backend_select() - find and open the backend of a new heap
 * @which: HEAPDEV_BACKEND_*
 * @be: out: the backend, ready for create()
 *
 * Return: 0, -EINVAL (bad choice or bad HEAPDEV_BACKEND), or the error of
 * opening /dev/heapdev (-ENOENT when the module is not loaded, -EACCES) or
 * of creating the memfd.
 */
int hd_backend_select(int which, const struct hd_backend **be)
{
	int err;

	if (which == HEAPDEV_BACKEND_DEFAULT) {
		pthread_mutex_lock(&hd_region_mutex);
		which = hd_env_backend();
		pthread_mutex_unlock(&hd_region_mutex);
		if (which < 0) {
			hd_dbg("heapdev: HEAPDEV_BACKEND must be \"device\" or "
			       "\"memfd\"");
			return which;
		}
	}
	pthread_mutex_lock(&hd_region_mutex);
	if (which == HEAPDEV_BACKEND_DEVICE) {
		err = hd_dev_open_locked();
		*be = &hd_device_backend;
	} else if (which == HEAPDEV_BACKEND_MEMFD) {
		err = hd_memfd_open_locked();
		*be = &hd_memfd_backend;
	} else {
		err = -EINVAL;
	}
	pthread_mutex_unlock(&hd_region_mutex);
	return err;
}

/* ---- fork ---- */

/* A mapping of the memfd at the fork (from /proc/self/maps). */
struct hd_fork_vma {
	uintptr_t start, end;
	uint64_t off;
	int prot;
};

static struct hd_fork_vma *hd_fork_vmas;
static size_t hd_fork_nvmas, hd_fork_cap;
static int hd_fork_memfd = -1;	/* the child's copy of the memfd */
static bool hd_fork_dev, hd_fork_mfd;	/* the child keeps a heap of each */

/* Copy [off, end) of the memfd into the copy @to, at the same offsets. */
static int hd_fork_copy(int to, off_t off, off_t end)
{
	static char buf[1 << 16];

	while (off < end) {
		off_t in = off, out = off;
		ssize_t n = copy_file_range(hd_memfd, &in, to, &out,
					    (size_t)(end - off), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* Older kernels: no copy between these files. */
			n = pread(hd_memfd, buf, end - off < (off_t)sizeof(buf) ?
				  (size_t)(end - off) : sizeof(buf), off);
			if (n <= 0 || pwrite(to, buf, (size_t)n, off) != n)
				return -1;
		}
		off += n;
	}
	return 0;
}

/* Copy the parts of a memfd heap's window that hold pages. */
static int hd_fork_copy_window(int to, const struct hd_bheap *bh)
{
	off_t off = (off_t)bh->base_off, end = off + (off_t)bh->window;

	while (off < end) {
		off_t data = lseek(hd_memfd, off, SEEK_DATA), hole;

		if (data < 0)
			return errno == ENXIO ? 0 : -1;	/* no data after @off */
		if (data >= end)
			return 0;
		hole = lseek(hd_memfd, data, SEEK_HOLE);
		if (hole < 0)
			return -1;
		if (hole > end)
			hole = end;
		if (hd_fork_copy(to, data, hole))
			return -1;
		off = hole;
	}
	return 0;
}

static uint64_t hd_hex(const char **s, const char *end)
{
	uint64_t v = 0;

	for (; *s < end; (*s)++) {
		int c = **s;

		if (c >= '0' && c <= '9')
			v = v << 4 | (uint64_t)(c - '0');
		else if ((c | 32) >= 'a' && (c | 32) <= 'f')
			v = v << 4 | (uint64_t)((c | 32) - 'a' + 10);
		else
			break;
	}
	return v;
}

/* Record one "lo-hi perms off dev ino path" line if it maps inode @ino. */
static int hd_fork_line(const char *s, const char *end, uint64_t ino)
{
	struct hd_fork_vma v;
	uint64_t n = 0;

	v.start = (uintptr_t)hd_hex(&s, end);
	s++;
	v.end = (uintptr_t)hd_hex(&s, end);
	if (end - s < 5)
		return 0;
	v.prot = (s[1] == 'r' ? PROT_READ : 0) |
		 (s[2] == 'w' ? PROT_WRITE : 0) | (s[3] == 'x' ? PROT_EXEC : 0);
	s += 6;
	v.off = hd_hex(&s, end);
	while (s < end && *s == ' ')
		s++;
	while (s < end && *s != ' ')	/* dev */
		s++;
	while (s < end && *s == ' ')
		s++;
	for (; s < end && *s >= '0' && *s <= '9'; s++)
		n = n * 10 + (uint64_t)(*s - '0');
	if (n != ino)
		return 0;
	if (hd_fork_nvmas == hd_fork_cap) {
		size_t cap = hd_fork_cap ? 2 * hd_fork_cap : 64;
		struct hd_fork_vma *a = hd_meta_realloc(hd_fork_vmas,
						hd_fork_cap * sizeof(*a),
						cap * sizeof(*a));

		if (!a)
			return -1;
		hd_fork_vmas = a;
		hd_fork_cap = cap;
	}
	hd_fork_vmas[hd_fork_nvmas++] = v;
	return 0;
}

/* The memfd's mappings, from /proc/self/maps (no malloc: a fork handler). */
static int hd_fork_scan(uint64_t ino)
{
	char buf[4096];
	size_t have = 0;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC), err = 0;

	hd_fork_nvmas = 0;
	if (fd < 0)
		return -1;
	for (;;) {
		ssize_t r = read(fd, buf + have, sizeof(buf) - have);
		char *s = buf, *nl;

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			err = r < 0 ? -1 : 0;
			break;
		}
		have += (size_t)r;
		while (!err && (nl = memchr(s, '\n', buf + have - s))) {
			err = hd_fork_line(s, nl, ino);
			s = nl + 1;
		}
		if (err || s == buf) {
			err = -1;	/* no memory, or a line too long */
			break;
		}
		have = (size_t)(buf + have - s);
		memmove(buf, s, have);
	}
	close(fd);
	return err;
}

/**
 * hd_backend_fork_prepare() - before fork(): what a child needs of the
 * inheritable heaps @bhs (held still by the caller)
 * @bhs: the heaps' backend views
 * @n: how many
 *
 * The device copies its heaps in the kernel.  The memfd heaps' windows are
 * copied into a new memfd, and the memfd's mappings recorded; when that
 * fails, the child keeps no memfd heap.
 */
void hd_backend_fork_prepare(struct hd_bheap *const *bhs, size_t n)
{
	struct stat st;
	bool any = false;
	size_t i;
	int fd;

	pthread_mutex_lock(&hd_region_mutex);
	for (i = 0; i < n; i++)
		any |= bhs[i]->be == &hd_memfd_backend;
	if (!any || hd_memfd < 0 || fstat(hd_memfd, &st))
		goto out;
	fd = memfd_create("heapdev", MFD_CLOEXEC);
	if (fd < 0)
		goto out;
	if (ftruncate(fd, st.st_size))
		goto fail;
	for (i = 0; i < n; i++)
		if (bhs[i]->be == &hd_memfd_backend &&
		    hd_fork_copy_window(fd, bhs[i]))
			goto fail;
	if (hd_fork_scan((uint64_t)st.st_ino))
		goto fail;
	hd_fork_memfd = fd;
	goto out;
fail:
	hd_dbg("heapdev: fork: cannot copy the memfd heaps for the child: %s",
	       hd_errstr(errno));
	close(fd);
out:
	pthread_mutex_unlock(&hd_region_mutex);
}

void hd_backend_fork_parent(void)
{
	if (hd_fork_memfd >= 0)
		close(hd_fork_memfd);
	hd_fork_memfd = -1;
	hd_fork_nvmas = 0;
}

/**
 * hd_backend_fork_keep() - in a fork() child: make an inheritable heap's
 * memory the child's
 * @bh: the heap
 *
 * Return: whether the child has the heap's memory: the module made its
 * copy (the heap id exists in the child), or the copy of the memfd is
 * mapped where the heap's mappings were.
 */
bool hd_backend_fork_keep(struct hd_bheap *bh)
{
	uint64_t lo = bh->base_off, hi = lo + bh->window;
	size_t i, j;

	if (!bh->inherit)
		return false;
	if (bh->be == &hd_device_backend) {
		struct heapdev_query q = { .size = sizeof(q), .heap_id = bh->id };

		if (hd_dev_ioctl(bh->fd, HEAPDEV_IOC_QUERY, &q))
			return false;
		hd_fork_dev = true;
		return true;
	}
	if (hd_fork_memfd < 0)
		return false;
	for (i = 0; i < hd_fork_nvmas; i++) {
		struct hd_fork_vma *v = &hd_fork_vmas[i];
		void *p;

		if (v->off < lo || v->off >= hi)
			continue;
		p = mmap((void *)v->start, v->end - v->start, v->prot,
			 MAP_SHARED | MAP_FIXED_NOREPLACE, hd_fork_memfd,
			 (off_t)v->off);
		/*
		 * Taken as a hint (valgrind, which does not know that
		 * MADV_DONTFORK left the range empty in the child): the
		 * range is the parent's mapping of the memfd, so nothing of
		 * the child's is there to replace.
		 */
		if (p != MAP_FAILED && p != (void *)v->start) {
			munmap(p, v->end - v->start);
			p = mmap((void *)v->start, v->end - v->start, v->prot,
				 MAP_SHARED | MAP_FIXED, hd_fork_memfd,
				 (off_t)v->off);
		}
		if (p == (void *)v->start &&
		    !madvise(p, v->end - v->start, MADV_DONTFORK))
			continue;
		if (p != MAP_FAILED)
			munmap(p, v->end - v->start);
		goto undo;
	}
	hd_fork_mfd = true;
	return true;
undo:
	for (j = 0; j < i; j++) {
		struct hd_fork_vma *v = &hd_fork_vmas[j];

		if (v->off >= lo && v->off < hi)
			munmap((void *)v->start, v->end - v->start);
	}
	return false;
}

/*
 * In a forked child, after hd_backend_fork_keep() for every inheritable
 * heap: the descriptors of the heaps the child kept stay (the child's
 * calls on the device's reach its own copies; the memfd is replaced by
 * its copy); the others are dropped.  New device heaps go to a descriptor
 * the child opens itself, so that they belong to the child's user and
 * limits (it may have changed its credentials since the fork).
 */
void hd_backend_atfork_child(void)
{
	uint64_t tags[HD_PUNCH_SLOTS];
	unsigned int i, n;

	pthread_mutex_init(&hd_region_mutex, NULL);
	pthread_mutex_init(&hd_slot_mutex, NULL);
	if (hd_dev_fd >= 0 && !hd_fork_dev)
		close(hd_dev_fd);
	hd_dev_fd = -1;
	if (hd_memfd >= 0)
		close(hd_memfd);
	hd_memfd = -1;
	/*
	 * The windows the parent is punching are not reused (at most 16);
	 * their mappings were not inherited (MADV_DONTFORK).
	 */
	n = hd_punch_atfork_child(tags);
	for (i = 0; i < n; i++)
		hd_retired_free((struct hd_retired *)(uintptr_t)tags[i], false);
	if (hd_fork_mfd) {
		hd_memfd = hd_fork_memfd;
	} else {
		if (hd_fork_memfd >= 0)
			close(hd_fork_memfd);
		hd_memfd_next_id = 0;
		hd_memfd_nfreed = 0;
	}
	hd_fork_memfd = -1;
	hd_fork_nvmas = 0;
	hd_fork_dev = hd_fork_mfd = false;
}
