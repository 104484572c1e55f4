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
};

static void run(int fd, size_t len, struct result *r)
{
	double t_cp[ROUNDS], t_cf[ROUNDS], t_pop[ROUNDS];
	double t_dc[ROUNDS], t_un[ROUNDS], t_cy[ROUNDS];
	double t_pop4[ROUNDS], t_un4[ROUNDS];
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
	}
	r->commit_pop = vm_median(t_cp, ROUNDS);
	r->commit_fault = vm_median(t_cf, ROUNDS);
	r->populate = vm_median(t_pop, ROUNDS);
	r->populate4k = vm_median(t_pop4, ROUNDS);
	r->decommit = vm_median(t_dc, ROUNDS);
	r->unmap = vm_median(t_un, ROUNDS);
	r->unmap4k = vm_median(t_un4, ROUNDS);
	r->cycle = vm_median(t_cy, ROUNDS);
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
	printf("%5s | %9s %9s %9s %9s %6s %6s | %8s %8s %8s %6s %6s | %9s\n",
	       "MiB", "commit+p", "commit+f", "anon-thp", "anon-4k", "r-thp",
	       "r-4k", "decommit", "unmap-th", "unmap-4k", "r-thp", "r-4k",
	       "cycle");
	for (i = 0; i < n; i++) {
		size_t mib = argc > 1 ? strtoul(argv[i + 1], NULL, 0) : defaults[i];
		struct result r;

		run(fd, mib << 20, &r);
		printf("%5zu | %9.2f %9.2f %9.2f %9.2f %6.2f %6.2f | %8.2f %8.2f %8.2f %6.2f %6.2f | %9.2f\n",
		       mib, r.commit_pop * 1e3, r.commit_fault * 1e3,
		       r.populate * 1e3, r.populate4k * 1e3,
		       r.commit_pop / r.populate, r.commit_pop / r.populate4k,
		       r.decommit * 1e3, r.unmap * 1e3, r.unmap4k * 1e3,
		       r.decommit / r.unmap, r.decommit / r.unmap4k,
		       r.cycle * 1e3);
		printf("KBENCH mib=%zu commit_vs_populate_thp=%.3f commit_vs_populate_4k=%.3f commit_fault_vs_populate_thp=%.3f decommit_vs_munmap_thp=%.3f decommit_vs_munmap_4k=%.3f heap_cycles_per_s=%.1f\n",
		       mib, r.commit_pop / r.populate,
		       r.commit_pop / r.populate4k,
		       r.commit_fault / r.populate, r.decommit / r.unmap,
		       r.decommit / r.unmap4k, 1.0 / r.cycle);
	}
	close(fd);
	return 0;
}
