// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * heapdev: the backends, behind struct hd_backend.  Every ioctl, and every
 * mmap and memfd call on heap memory, of the library is in the backend
 * layer: this file (what both backends share, the choice of backend and
 * fork()), device.c (/dev/heapdev), memfd.c (one memfd per process) and
 * punch.c (memfd destroys punched in the background).
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
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../uapi/heapdev.h"
#include "backend_int.h"

pthread_mutex_t hd_region_mutex = PTHREAD_MUTEX_INITIALIZER;

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
int hd_map_aligned(size_t len, int prot, int fd, uint64_t off,
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
int hd_unmap(struct hd_bheap *bh, uintptr_t addr, size_t len)
{
	(void)bh;
	if (len == HD_CHUNK &&
	    mmap((void *)addr, HD_CHUNK, PROT_NONE, MAP_PRIVATE |
		 MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) !=
	    MAP_FAILED && hd_slot_put(addr))
		return 0;
	return munmap((void *)addr, len) ? -errno : 0;
}

#define HD_RETIRED_FIRST 15

static size_t hd_retired_size(uint32_t cap)
{
	return sizeof(struct hd_retired) + cap * sizeof(struct hd_range);
}

struct hd_retired *hd_retired_new(uint32_t id)
{
	struct hd_retired *rt;

	rt = hd_meta_alloc(hd_retired_size(HD_RETIRED_FIRST));
	if (rt)
		*rt = (struct hd_retired){ .id = id, .cap = HD_RETIRED_FIRST };
	return rt;
}

/* Unmap (@unmap: else they are not in this process) and free @rt. */
void hd_retired_free(struct hd_retired *rt, bool unmap)
{
	uint32_t i;

	for (i = 0; unmap && i < rt->n; i++)
		hd_unmap(NULL, rt->r[i].addr, rt->r[i].len);
	hd_meta_free(rt, hd_retired_size(rt->cap));
}

/* The unmap of both backends: a heap being retired keeps its mappings. */
int hd_retire_unmap(struct hd_bheap *bh, uintptr_t addr, size_t len)
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

/**
 * hd_backend_drain() - wait until every destroyed heap's pages are given
 * back (heapdev_trim(NULL))
 */
void hd_backend_drain(void)
{
	hd_memfd_reap(true);
	hd_dev_unmap_kept(true);
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

/*
 * Last in the prepare handler (after the registry and metadata locks,
 * which a process heap's creation holds while it reaps punches): the
 * punch slots and the kept device mappings are held across the fork, so
 * that the child sees them whole.  Released by hd_backend_fork_parent()
 * and hd_backend_atfork_child().
 */
void hd_backend_fork_lock(void)
{
	hd_punch_fork_prepare();
	hd_dev_fork_prepare();
}

void hd_backend_fork_parent(void)
{
	hd_dev_fork_parent();
	hd_punch_fork_parent();
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
	pthread_mutex_init(&hd_region_mutex, NULL);
	pthread_mutex_init(&hd_slot_mutex, NULL);
	hd_dev_atfork_child(hd_fork_dev);
	if (!hd_fork_mfd && hd_fork_memfd >= 0)
		close(hd_fork_memfd);
	hd_memfd_atfork_child(hd_fork_mfd ? hd_fork_memfd : -1);
	hd_fork_memfd = -1;
	hd_fork_nvmas = 0;
	hd_fork_dev = hd_fork_mfd = false;
}
