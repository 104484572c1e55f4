// SPDX-License-Identifier: GPL-2.0-only
/*
 * kbench: the kernel side of heapdev against anonymous memory, measured
 * side by side in one run (inside the test VM, with the module loaded).
 *
 *   commit+touch   HEAPDEV_IOC_COMMIT (with and without POPULATE) of a
 *                  mapped range, then a write to every page
 *   populate       mmap(MAP_ANONYMOUS | MAP_POPULATE) of the same size,
 *                  then a write to every page; with the kernel's default
 *                  transparent huge pages ("thp") and with 4 KiB pages
 *                  (MADV_NOHUGEPAGE + MADV_POPULATE_WRITE, "4k"), which
 *                  is what heapdev's pages are
 *   decommit       HEAPDEV_IOC_DECOMMIT of the whole range
 *   munmap         munmap of the populated anonymous range (thp and 4k)
 *   create+destroy HEAPDEV_IOC_CREATE with an initial commit, mmap,
 *                  touch, munmap, HEAPDEV_IOC_DESTROY
 *   destroy        a heap of the size, committed, mapped and written:
 *                  HEAPDEV_IOC_DESTROY alone (the mapping stays, as the
 *                  library destroys before it unmaps), without and with
 *                  HEAPDEV_DESTROY_ASYNC, then the munmap that follows;
 *                  and in the other order: munmap (which then zaps the
 *                  pages), then DESTROY with HEAPDEV_DESTROY_ASYNC
 *
 * After the sizes, "short-lived heaps" times each step of a heap that
 * lives briefly, as the library drives it for HeapCreate(0, 0, 0), a few
 * small blocks and HeapDestroy: CREATE, mmap of a 4 MiB span, COMMIT with
 * POPULATE of 8 pages, a write to each, DESTROY (async), munmap; against
 * the anonymous equivalent (mmap, MADV_NOHUGEPAGE, MADV_POPULATE_WRITE,
 * writes, munmap).
 *
 * Usage: kbench [MIB...]   (default: 1 4 16 64 256)
 * Prints a table of medians over several rounds and the ratios
 * heapdev / anonymous; lower is better for heapdev.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "heapdev.h"
#include "vmcommon.h"

#define ROUNDS 7

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "kbench: %s: %s\n", what, strerror(errno));
	exit(1);
}

struct result {
	double commit_pop, commit_fault, populate, populate4k;
	double decommit, unmap, unmap4k, cycle;
	double destroy_sync, destroy_async, destroy_unmap;
	double unmap_first, destroy_unmapped;
};

/* A heap of @len bytes committed (POPULATE), mapped and written. */
static char *full_heap(int fd, size_t len, struct heapdev_create *c)
{
	struct heapdev_commit cm = { .size = sizeof(cm) };
	char *p;

	memset(c, 0, sizeof(*c));
	c->size = sizeof(*c);
	if (ioctl(fd, HEAPDEV_IOC_CREATE, c))
		die("create");
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 c->mmap_offset);
	if (p == MAP_FAILED)
		die("mmap heap");
	cm.heap_id = c->heap_id;
	cm.length = len;
	cm.flags = HEAPDEV_COMMIT_POPULATE;
	if (ioctl(fd, HEAPDEV_IOC_COMMIT, &cm))
		die("commit");
	vm_touch(p, len);
	return p;
}

/* Time DESTROY (with @flags) of a full heap, and the munmap after it. */
static double destroy_once(int fd, size_t len, unsigned int flags,
			   double *unmap)
{
	struct heapdev_destroy d = { .size = sizeof(d), .flags = flags };
	struct heapdev_create c;
	char *p = full_heap(fd, len, &c);
	double t0, t;

	d.heap_id = c.heap_id;
	t0 = now();
	if (ioctl(fd, HEAPDEV_IOC_DESTROY, &d))
		die("destroy");
	t = now() - t0;
	t0 = now();
	munmap(p, len);
	if (unmap)
		*unmap = now() - t0;
	return t;
}

/* munmap of a full heap's mapping first, then DESTROY (async) of the heap. */
static double unmap_then_destroy(int fd, size_t len, double *destroy)
{
	struct heapdev_destroy d = {
		.size = sizeof(d), .flags = HEAPDEV_DESTROY_ASYNC,
	};
	struct heapdev_create c;
	char *p = full_heap(fd, len, &c);
	double t0, t;

	t0 = now();
	munmap(p, len);
	t = now() - t0;
	d.heap_id = c.heap_id;
	t0 = now();
	if (ioctl(fd, HEAPDEV_IOC_DESTROY, &d))
		die("destroy");
	*destroy = now() - t0;
	return t;
}

/* Wait until the module has freed everything it releases in the background. */
static void settle(void)
{
	char buf[32];
	int i;

	for (i = 0; i < 10000; i++) {
		FILE *f = fopen("/sys/class/misc/heapdev/releasing", "r");
		int busy = f && fgets(buf, sizeof(buf), f) && atol(buf) > 0;

		if (f)
			fclose(f);
		if (!busy)
			return;
		usleep(1000);
	}
}

static void run(int fd, size_t len, struct result *r)
{
	double t_cp[ROUNDS], t_cf[ROUNDS], t_pop[ROUNDS];
	double t_dc[ROUNDS], t_un[ROUNDS], t_cy[ROUNDS];
	double t_pop4[ROUNDS], t_un4[ROUNDS];
	double t_ds[ROUNDS], t_da[ROUNDS], t_du[ROUNDS];
	double t_uf[ROUNDS], t_dd[ROUNDS];
	int i;

	for (i = 0; i < ROUNDS; i++) {
		struct heapdev_create c = { .size = sizeof(c) };
		struct heapdev_commit cm = { .size = sizeof(cm) };
		struct heapdev_decommit dc = { .size = sizeof(dc) };
		struct heapdev_destroy d = { .size = sizeof(d) };
		double t0;
		char *p;

		if (ioctl(fd, HEAPDEV_IOC_CREATE, &c))
			die("create");
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			 c.mmap_offset);
		if (p == MAP_FAILED)
			die("mmap heap");

		/* commit with populate + first touch */
		cm.heap_id = c.heap_id;
		cm.length = len;
		cm.flags = HEAPDEV_COMMIT_POPULATE;
		t0 = now();
		if (ioctl(fd, HEAPDEV_IOC_COMMIT, &cm))
			die("commit");
		vm_touch(p, len);
		t_cp[i] = now() - t0;

		/* decommit */
		dc.heap_id = c.heap_id;
		dc.length = len;
		t0 = now();
		if (ioctl(fd, HEAPDEV_IOC_DECOMMIT, &dc))
			die("decommit");
		t_dc[i] = now() - t0;

		/* commit without populate: first touches fault pages in */
		cm.flags = 0;
		t0 = now();
		if (ioctl(fd, HEAPDEV_IOC_COMMIT, &cm))
			die("commit");
		vm_touch(p, len);
		t_cf[i] = now() - t0;

		munmap(p, len);
		d.heap_id = c.heap_id;
		if (ioctl(fd, HEAPDEV_IOC_DESTROY, &d))
			die("destroy");

		/* anonymous MAP_POPULATE + touch, then munmap */
		t0 = now();
		p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (p == MAP_FAILED)
			die("mmap anon");
		vm_touch(p, len);
		t_pop[i] = now() - t0;
		t0 = now();
		munmap(p, len);
		t_un[i] = now() - t0;

		/* the same with 4 KiB pages, like heapdev's */
		t0 = now();
		p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			die("mmap anon");
		if (madvise(p, len, MADV_NOHUGEPAGE) ||
		    madvise(p, len, MADV_POPULATE_WRITE))
			die("madvise");
		vm_touch(p, len);
		t_pop4[i] = now() - t0;
		t0 = now();
		munmap(p, len);
		t_un4[i] = now() - t0;

		/* a whole heap life: create(initial) + map + touch + destroy */
		t0 = now();
		c.initial = len;
		if (ioctl(fd, HEAPDEV_IOC_CREATE, &c))
			die("create");
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			 c.mmap_offset);
		if (p == MAP_FAILED)
			die("mmap heap");
		cm.heap_id = c.heap_id;
		cm.flags = HEAPDEV_COMMIT_POPULATE;
		if (ioctl(fd, HEAPDEV_IOC_COMMIT, &cm))
			die("populate");
		vm_touch(p, len);
		munmap(p, len);
		d.heap_id = c.heap_id;
		if (ioctl(fd, HEAPDEV_IOC_DESTROY, &d))
			die("destroy");
		t_cy[i] = now() - t0;

		/* destroy: freeing synchronously, then in the background */
		settle();
		t_ds[i] = destroy_once(fd, len, 0, NULL);
		settle();
		t_da[i] = destroy_once(fd, len, HEAPDEV_DESTROY_ASYNC, &t_du[i]);
		settle();
		t_uf[i] = unmap_then_destroy(fd, len, &t_dd[i]);
		settle();
	}
	r->commit_pop = vm_median(t_cp, ROUNDS);
	r->commit_fault = vm_median(t_cf, ROUNDS);
	r->populate = vm_median(t_pop, ROUNDS);
	r->populate4k = vm_median(t_pop4, ROUNDS);
	r->decommit = vm_median(t_dc, ROUNDS);
	r->unmap = vm_median(t_un, ROUNDS);
	r->unmap4k = vm_median(t_un4, ROUNDS);
	r->cycle = vm_median(t_cy, ROUNDS);
	r->destroy_sync = vm_median(t_ds, ROUNDS);
	r->destroy_async = vm_median(t_da, ROUNDS);
	r->destroy_unmap = vm_median(t_du, ROUNDS);
	r->unmap_first = vm_median(t_uf, ROUNDS);
	r->destroy_unmapped = vm_median(t_dd, ROUNDS);
}

#define LIFE_CYCLES	301
#define LIFE_SPAN	(4u << 20)
#define LIFE_PAGES	8

enum { L_CREATE, L_MMAP, L_COMMIT, L_TOUCH, L_DESTROY, L_MUNMAP, L_STEPS };

/* The steps of many short-lived heaps, medians in microseconds. */
static void short_lived(int fd)
{
	static const char *const names[L_STEPS] = {
		"create", "mmap", "commit", "touch", "destroy", "munmap",
	};
	static double t[L_STEPS][LIFE_CYCLES], ta[LIFE_CYCLES], tt[LIFE_CYCLES];
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	double med[L_STEPS], total = 0, anon;
	int i, k;

	for (i = 0; i < LIFE_CYCLES; i++) {
		struct heapdev_create c = { .size = sizeof(c) };
		struct heapdev_commit cm = { .size = sizeof(cm) };
		struct heapdev_destroy d = { .size = sizeof(d) };
		double t0 = now(), t1;
		char *p;

		if (ioctl(fd, HEAPDEV_IOC_CREATE, &c))
			die("create");
		t1 = now();
		t[L_CREATE][i] = t1 - t0;
		p = mmap(NULL, LIFE_SPAN, PROT_READ | PROT_WRITE, MAP_SHARED,
			 fd, c.mmap_offset);
		if (p == MAP_FAILED)
			die("mmap heap");
		t0 = now();
		t[L_MMAP][i] = t0 - t1;
		cm.heap_id = c.heap_id;
		cm.length = LIFE_PAGES * pg;
		cm.flags = HEAPDEV_COMMIT_POPULATE;
		if (ioctl(fd, HEAPDEV_IOC_COMMIT, &cm))
			die("commit");
		t1 = now();
		t[L_COMMIT][i] = t1 - t0;
		vm_touch(p, LIFE_PAGES * pg);
		t0 = now();
		t[L_TOUCH][i] = t0 - t1;
		d.heap_id = c.heap_id;
		d.flags = HEAPDEV_DESTROY_ASYNC;
		if (ioctl(fd, HEAPDEV_IOC_DESTROY, &d))
			die("destroy");
		t1 = now();
		t[L_DESTROY][i] = t1 - t0;
		munmap(p, LIFE_SPAN);
		t[L_MUNMAP][i] = now() - t1;

		/* anonymous: the same span, pages and writes */
		t0 = now();
		p = mmap(NULL, LIFE_SPAN, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED || madvise(p, LIFE_SPAN, MADV_NOHUGEPAGE) ||
		    madvise(p, LIFE_PAGES * pg, MADV_POPULATE_WRITE))
			die("anon");
		vm_touch(p, LIFE_PAGES * pg);
		munmap(p, LIFE_SPAN);
		ta[i] = now() - t0;
	}
	printf("short-lived heaps (%d cycles; medians in us): ", LIFE_CYCLES);
	for (k = 0; k < L_STEPS; k++) {
		for (i = 0; i < LIFE_CYCLES; i++)
			tt[i] = t[k][i];
		med[k] = vm_median(tt, LIFE_CYCLES);
		total += med[k];
		printf("%s %.1f, ", names[k], med[k] * 1e6);
	}
	anon = vm_median(ta, LIFE_CYCLES);
	printf("total %.1f; anonymous mmap+populate+touch+munmap %.1f\n",
	       total * 1e6, anon * 1e6);
	printf("KBENCH_LIFE create_us=%.2f mmap_us=%.2f commit_us=%.2f "
	       "touch_us=%.2f destroy_us=%.2f munmap_us=%.2f total_us=%.2f "
	       "anon_us=%.2f\n", med[L_CREATE] * 1e6, med[L_MMAP] * 1e6,
	       med[L_COMMIT] * 1e6, med[L_TOUCH] * 1e6, med[L_DESTROY] * 1e6,
	       med[L_MUNMAP] * 1e6, total * 1e6, anon * 1e6);
}

int main(int argc, char **argv)
{
	static const size_t defaults[] = { 1, 4, 16, 64, 256 };
	int n = argc > 1 ? argc - 1 : (int)(sizeof(defaults) / sizeof(*defaults));
	int fd, i;

	fd = open("/dev/heapdev", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		die("open /dev/heapdev");

	printf("kbench: medians of %d rounds in ms; ratios are heapdev / anonymous (thp or 4k pages)\n",
	       ROUNDS);
	printf("%5s | %9s %9s %9s %9s %6s %6s | %8s %8s %8s %6s %6s | %9s | %8s %8s %8s\n",
	       "MiB", "commit+p", "commit+f", "anon-thp", "anon-4k", "r-thp",
	       "r-4k", "decommit", "unmap-th", "unmap-4k", "r-thp", "r-4k",
	       "cycle", "destroy", "dst-async", "munmap");
	for (i = 0; i < n; i++) {
		size_t mib = argc > 1 ? strtoul(argv[i + 1], NULL, 0) : defaults[i];
		struct result r;

		run(fd, mib << 20, &r);
		printf("%5zu | %9.2f %9.2f %9.2f %9.2f %6.2f %6.2f | %8.2f %8.2f %8.2f %6.2f %6.2f | %9.2f | %8.3f %8.3f %8.3f\n",
		       mib, r.commit_pop * 1e3, r.commit_fault * 1e3,
		       r.populate * 1e3, r.populate4k * 1e3,
		       r.commit_pop / r.populate, r.commit_pop / r.populate4k,
		       r.decommit * 1e3, r.unmap * 1e3, r.unmap4k * 1e3,
		       r.decommit / r.unmap, r.decommit / r.unmap4k,
		       r.cycle * 1e3, r.destroy_sync * 1e3,
		       r.destroy_async * 1e3, r.destroy_unmap * 1e3);
		printf("KBENCH mib=%zu commit_vs_populate_thp=%.3f commit_vs_populate_4k=%.3f commit_fault_vs_populate_thp=%.3f decommit_vs_munmap_thp=%.3f decommit_vs_munmap_4k=%.3f heap_cycles_per_s=%.1f\n",
		       mib, r.commit_pop / r.populate,
		       r.commit_pop / r.populate4k,
		       r.commit_fault / r.populate, r.decommit / r.unmap,
		       r.decommit / r.unmap4k, 1.0 / r.cycle);
		printf("KBENCH_DESTROY mib=%zu sync_ms=%.4f async_ms=%.4f "
		       "munmap_after_ms=%.4f munmap_first_ms=%.4f "
		       "async_after_munmap_ms=%.4f\n", mib,
		       r.destroy_sync * 1e3, r.destroy_async * 1e3,
		       r.destroy_unmap * 1e3, r.unmap_first * 1e3,
		       r.destroy_unmapped * 1e3);
	}
	short_lived(fd);
	close(fd);
	return 0;
}
