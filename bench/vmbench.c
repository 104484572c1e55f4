// SPDX-License-Identifier: GPL-2.0-only
/*
 * vmbench: the library's view of the kernel costs, inside the test VM with
 * the module loaded (device backend), measured side by side with anonymous
 * memory in one run.  kbench.c measures the same things one level down,
 * with raw ioctls.
 *
 *   alloc+touch     HeapAlloc of a large block (its own span: mmap of the
 *                   heap's window, HEAPDEV_IOC_COMMIT with POPULATE), then
 *                   a write to every page
 *   anon            mmap(MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE) and
 *                   the same writes: "thp" with the kernel's default
 *                   transparent huge pages, "4k" with MADV_NOHUGEPAGE and
 *                   MADV_POPULATE_WRITE (heapdev's pages are 4 KiB pages)
 *   free            HeapFree of that block and HeapCompact, which gives
 *                   the span back to the kernel (HeapFree alone keeps a
 *                   freed large span in the heap's cache for reuse), against
 *                   munmap of the anonymous range; the compaction also makes
 *                   every round's HeapAlloc commit fresh pages
 *   create/destroy  HeapCreate(0, size, 0) (size committed at creation)
 *                   followed by HeapDestroy, as round trips per second,
 *                   against mmap(MAP_POPULATE) + munmap round trips
 *
 *
 * Usage: vmbench [MIB...]   (default: 1 4 16 64 256)
 * Prints medians of ROUNDS rounds and, per size, one machine-readable
 * "VMBENCH key=value ..." line.  Ratios are heapdev / anonymous: below 1
 * means heapdev is faster.
 *
 *        vmbench life [BLOCKS]   (default 1000)
 * Short-lived heaps: a growable heap created (heapdev_create), BLOCKS
 * blocks of 16..256 B allocated and written, the heap destroyed; on the
 * device backend and on the memfd backend in the same run, against malloc
 * and free of the same blocks.  Prints medians of LIFE_ROUNDS rounds of
 * LIFE_CYCLES heaps each as "VMBENCH_LIFE key=value ...", in ms per heap.
 */
#include <errno.h>
#include <sys/mman.h>

#include <heapdev.h>
#include <heapdev/win32.h>

#include "port.h"
#include "vmcommon.h"

#define ROUNDS 5

static void die(const char *what)
{
	fprintf(stderr, "vmbench: %s (last error %u, errno %d)\n", what,
		(unsigned)GetLastError(), errno);
	exit(1);
}

static char *anon(size_t len, int thp)
{
	char *p;

	if (thp) {
		p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		return p == MAP_FAILED ? NULL : p;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (madvise(p, len, MADV_NOHUGEPAGE) ||
	    madvise(p, len, MADV_POPULATE_WRITE))
		return NULL;
	return p;
}

struct result {
	double alloc, anon_thp, anon_4k;	/* + touch */
	double free, unmap_thp, unmap_4k;
	double cycle, cycle_anon;
};

static void run(size_t len, struct result *r)
{
	double a[ROUNDS], t1[ROUNDS], t4[ROUNDS];
	double f[ROUNDS], u1[ROUNDS], u4[ROUNDS];
	double cy[ROUNDS], ca[ROUNDS];
	HANDLE heap = HeapCreate(0, 0, 0);
	int i, k, reps = len <= (16u << 20) ? 8 : 2;

	if (!heap)
		die("HeapCreate");
	for (i = 0; i < ROUNDS; i++) {
		double t;
		char *p;

		/* heapdev: a large block, committed and populated */
		t = now_sec();
		p = HeapAlloc(heap, 0, len);
		if (!p)
			die("HeapAlloc");
		vm_touch(p, len);
		a[i] = now_sec() - t;
		t = now_sec();
		if (!HeapFree(heap, 0, p))
			die("HeapFree");
		HeapCompact(heap, 0);
		f[i] = now_sec() - t;

		/* anonymous, default THP */
		t = now_sec();
		p = anon(len, 1);
		if (!p)
			die("mmap");
		vm_touch(p, len);
		t1[i] = now_sec() - t;
		t = now_sec();
		munmap(p, len);
		u1[i] = now_sec() - t;

		/* anonymous, 4 KiB pages */
		t = now_sec();
		p = anon(len, 0);
		if (!p)
			die("mmap 4k");
		vm_touch(p, len);
		t4[i] = now_sec() - t;
		t = now_sec();
		munmap(p, len);
		u4[i] = now_sec() - t;

		/* round trips: HeapCreate with the size committed + destroy */
		t = now_sec();
		for (k = 0; k < reps; k++) {
			HANDLE h = HeapCreate(0, len, 0);

			if (!h || !HeapDestroy(h))
				die("HeapCreate/HeapDestroy");
		}
		cy[i] = (now_sec() - t) / reps;
		t = now_sec();
		for (k = 0; k < reps; k++) {
			p = anon(len, 0);
			if (!p)
				die("mmap cycle");
			munmap(p, len);
		}
		ca[i] = (now_sec() - t) / reps;
	}
	HeapDestroy(heap);
	r->alloc = vm_median(a, ROUNDS);
	r->anon_thp = vm_median(t1, ROUNDS);
	r->anon_4k = vm_median(t4, ROUNDS);
	r->free = vm_median(f, ROUNDS);
	r->unmap_thp = vm_median(u1, ROUNDS);
	r->unmap_4k = vm_median(u4, ROUNDS);
	r->cycle = vm_median(cy, ROUNDS);
	r->cycle_anon = vm_median(ca, ROUNDS);
}

#define LIFE_ROUNDS	7
#define LIFE_CYCLES	40

/* Block sizes 16..256 B, the same sequence for every allocator. */
static size_t life_size(unsigned int *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return 16 + (*seed >> 16) % 241;
}

/* ms per heap: create, @n blocks written, destroy; malloc when !backend. */
static double life_round(uint32_t backend, int n, void **v)
{
	struct heapdev_options o = { .size = sizeof(o), .backend = backend };
	unsigned int seed = 42;
	double t = now_sec();
	int c, i;

	for (c = 0; c < LIFE_CYCLES; c++) {
		struct heapdev_heap *h = NULL;

		if (backend && heapdev_create(&o, &h))
			die("heapdev_create");
		for (i = 0; i < n; i++) {
			size_t sz = life_size(&seed);
			char *p = backend ? heapdev_alloc(h, sz, 0) : malloc(sz);

			if (!p)
				die("alloc");
			p[0] = 1;
			v[i] = p;
		}
		if (backend) {
			if (heapdev_destroy(h))
				die("heapdev_destroy");
		} else {
			for (i = 0; i < n; i++)
				free(v[i]);
		}
	}
	return (now_sec() - t) / LIFE_CYCLES * 1e3;
}

static int life(int n)
{
	static const uint32_t backends[] = {
		HEAPDEV_BACKEND_DEVICE, HEAPDEV_BACKEND_MEMFD, 0,
	};
	double ms[3][LIFE_ROUNDS];
	void **v = calloc(n, sizeof(*v));
	int r, k;

	if (!v)
		die("calloc");
	/* A warm-up round of each, then interleaved rounds. */
	for (k = 0; k < 3; k++)
		life_round(backends[k], n, v);
	for (r = 0; r < LIFE_ROUNDS; r++)
		for (k = 0; k < 3; k++)
			ms[k][r] = life_round(backends[k], n, v);
	printf("VMBENCH_LIFE blocks=%d device_ms=%.4f memfd_ms=%.4f "
	       "malloc_free_ms=%.4f\n", n, vm_median(ms[0], LIFE_ROUNDS),
	       vm_median(ms[1], LIFE_ROUNDS), vm_median(ms[2], LIFE_ROUNDS));
	free(v);
	return 0;
}

int main(int argc, char **argv)
{
	static const size_t defaults[] = { 1, 4, 16, 64, 256 };
	int n = argc > 1 ? argc - 1 : (int)(sizeof(defaults) / sizeof(*defaults));
	int i;

	if (argc > 1 && !strcmp(argv[1], "life"))
		return life(argc > 2 ? atoi(argv[2]) : 1000);

	printf("vmbench: medians of %d rounds in ms; ratios are heapdev / "
	       "anonymous (thp or 4k pages)\n", ROUNDS);
	printf("%5s | %9s %9s %9s %6s %6s | %8s %8s %8s %6s %6s | %9s %9s\n",
	       "MiB", "alloc+t", "anon-thp", "anon-4k", "r-thp", "r-4k",
	       "free", "unmap-th", "unmap-4k", "r-thp", "r-4k", "create/s",
	       "mmap/s");
	for (i = 0; i < n; i++) {
		size_t mib = argc > 1 ? strtoul(argv[i + 1], NULL, 0) :
			     defaults[i];
		struct result r;

		run(mib << 20, &r);
		printf("%5zu | %9.2f %9.2f %9.2f %6.2f %6.2f | %8.2f %8.2f "
		       "%8.2f %6.2f %6.2f | %9.1f %9.1f\n",
		       mib, r.alloc * 1e3, r.anon_thp * 1e3, r.anon_4k * 1e3,
		       r.alloc / r.anon_thp, r.alloc / r.anon_4k,
		       r.free * 1e3, r.unmap_thp * 1e3, r.unmap_4k * 1e3,
		       r.free / r.unmap_thp, r.free / r.unmap_4k,
		       1.0 / r.cycle, 1.0 / r.cycle_anon);
		printf("VMBENCH mib=%zu alloc_touch_ms=%.4f anon_thp_ms=%.4f "
		       "anon_4k_ms=%.4f free_ms=%.4f unmap_thp_ms=%.4f "
		       "unmap_4k_ms=%.4f create_destroy_per_s=%.2f "
		       "mmap_munmap_4k_per_s=%.2f\n",
		       mib, r.alloc * 1e3, r.anon_thp * 1e3, r.anon_4k * 1e3,
		       r.free * 1e3, r.unmap_thp * 1e3, r.unmap_4k * 1e3,
		       1.0 / r.cycle, 1.0 / r.cycle_anon);
		fflush(stdout);
	}
	return 0;
}
