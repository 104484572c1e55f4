// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * heapdev: the device backend, /dev/heapdev (uapi/heapdev.h).  One open
 * file per process for all heaps, opened lazily; each heap owns a window
 * of the file's mmap offset space.  Committed pages are the kernel's:
 * allocated at commit, never swapped, SIGBUS when uncommitted.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../uapi/heapdev.h"
#include "backend_int.h"

static int hd_dev_fd = -1;
static bool hd_dev_async;	/* the module frees pages in the background */
static bool hd_dev_lazy;	/* the module has HEAPDEV_COMMIT_LAZY */
static bool hd_dev_inherit;	/* the module has HEAPDEV_HEAP_INHERIT */
static bool hd_dev_keep;	/* the module has DESTROY_KEEP_MAPPINGS */

int hd_dev_ioctl(int fd, unsigned long cmd, void *arg)
{
	int ret;

	do {
		ret = ioctl(fd, cmd, arg);
	} while (ret && errno == EINTR);
	return ret ? -errno : 0;
}

int hd_dev_open_locked(void)
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
	hd_dev_keep = hd_dev_async &&
		      (info.features & HEAPDEV_FEAT_KEEP_MAPPINGS);
	if (err) {
		hd_dbg("heapdev: %s: unsupported module (error %d, ABI %u, "
		       "page size %u)", HD_DEVICE_PATH, err, info.abi_version,
		       info.page_size);
		close(fd);
		hd_dev_fd = -1;
	}
	return err;
}

/*
 * Device heaps destroyed with HEAPDEV_DESTROY_KEEP_MAPPINGS: their
 * mappings, PROT_NONE, wait here until the module's worker has zapped
 * them (it starts a jiffy after the destroy and frees 2 MiB and more), so
 * that the munmap finds nothing to zap.  They are unmapped by the first
 * device create or destroy HD_KEEP_AGE_NS after theirs, and by
 * heapdev_trim(NULL).  An unmap that comes before the worker zaps is
 * still correct: it zaps them itself.
 */
#define HD_KEEP_MIN	(2UL << 20)	/* the module's HEAPDEV_RELEASE_MIN */
#define HD_KEEP_AGE_NS	(50 * 1000 * 1000ULL)

static pthread_mutex_t hd_kept_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct hd_retired *hd_kept, **hd_kept_tail = &hd_kept;

/* Unmap the kept mappings old enough (@all: every one). */
void hd_dev_unmap_kept(bool all)
{
	struct hd_retired *old = NULL, *rt;
	uint64_t now;

	if (!__atomic_load_n(&hd_kept, __ATOMIC_RELAXED))
		return;
	now = hd_now();
	pthread_mutex_lock(&hd_kept_mutex);
	while (hd_kept && (all || now - hd_kept->since >= HD_KEEP_AGE_NS)) {
		rt = hd_kept;
		hd_kept = rt->next;
		rt->next = old;
		old = rt;
	}
	if (!hd_kept)
		hd_kept_tail = &hd_kept;
	pthread_mutex_unlock(&hd_kept_mutex);
	for (; old; old = rt) {
		rt = old->next;
		hd_retired_free(old, true);
	}
}

static int hd_dev_create(struct hd_bheap *bh, bool exec, uint64_t maximum)
{
	struct heapdev_create c = {
		.size = sizeof(c),
		.flags = exec ? HEAPDEV_HEAP_EXEC : 0,
		.maximum = maximum,
	};
	int err;

	hd_dev_unmap_kept(false);
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

/*
 * A big heap that is not inherited keeps its mappings for the worker to
 * zap (the mappings of inherited heaps exist in fork children too).
 */
static void hd_dev_destroy_begin(struct hd_bheap *bh)
{
	bh->retired = NULL;
	if (hd_dev_keep && !bh->inherit && bh->committed >= HD_KEEP_MIN)
		bh->retired = hd_retired_new(bh->id);
}

/* After destroy_begin and the unmaps. */
static int hd_dev_destroy(struct hd_bheap *bh)
{
	struct hd_retired *rt = bh->retired;
	struct heapdev_destroy d = {
		.size = sizeof(d), .heap_id = bh->id,
		/* the caller does not wait for the pages to be freed */
		.flags = hd_dev_async ? HEAPDEV_DESTROY_ASYNC : 0,
	};
	int err;

	bh->retired = NULL;
	hd_dev_unmap_kept(false);
	if (rt)
		d.flags |= HEAPDEV_DESTROY_KEEP_MAPPINGS;
	err = hd_dev_ioctl(bh->fd, HEAPDEV_IOC_DESTROY, &d);
	if (!rt)
		return err;
	if (err) {
		hd_retired_free(rt, true);
		return err;
	}
	rt->since = hd_now();
	pthread_mutex_lock(&hd_kept_mutex);
	*hd_kept_tail = rt;
	hd_kept_tail = &rt->next;
	pthread_mutex_unlock(&hd_kept_mutex);
	return 0;
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

const struct hd_backend hd_device_backend = {
	.name = "device",
	.kind = HEAPDEV_BACKEND_DEVICE,
	.create = hd_dev_create,
	.destroy = hd_dev_destroy,
	.destroy_begin = hd_dev_destroy_begin,
	.map = hd_dev_map,
	.unmap = hd_retire_unmap,
	.commit = hd_dev_commit,
	.decommit = hd_dev_decommit,
};

/* fork(): the kept list is held across the fork, as in punch.c. */
void hd_dev_fork_prepare(void)
{
	pthread_mutex_lock(&hd_kept_mutex);
}

void hd_dev_fork_parent(void)
{
	pthread_mutex_unlock(&hd_kept_mutex);
}

/*
 * In a fork() child: drop the descriptor unless the child kept heaps in
 * it (@kept); new heaps go to one the child opens itself.  The kept
 * mappings are VM_DONTCOPY: not in the child.
 */
void hd_dev_atfork_child(bool kept)
{
	if (hd_dev_fd >= 0 && !kept)
		close(hd_dev_fd);
	hd_dev_fd = -1;
	pthread_mutex_unlock(&hd_kept_mutex);
	while (hd_kept) {
		struct hd_retired *rt = hd_kept;

		hd_kept = rt->next;
		hd_retired_free(rt, false);
	}
	hd_kept_tail = &hd_kept;
}
