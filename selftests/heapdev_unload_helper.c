// SPDX-License-Identifier: GPL-2.0-only
/*
 * heapdev_unload_helper [MIB]: unload the module while it is still freeing
 * pages in the background.  Commits MIB (default 256) MiB to a heap,
 * destroys it with HEAPDEV_DESTROY_ASYNC (and, where the module has it,
 * HEAPDEV_DESTROY_KEEP_MAPPINGS, unmapping after the destroy, as the
 * library does), closes the device and at once
 * unloads heapdev (delete_module, as rmmod does).  The unload must succeed,
 * wait for the release to finish (the module's exit drains it) and leave
 * no leak; the kernel log is judged by the caller (scripts/vm-check.job).
 *
 * Exit status: 0 when the unload succeeded with pages still pending, 1 on
 * any failure, 2 when the release had finished before the unload started
 * (nothing was tested).  Needs root.
 */

#define _GNU_SOURCE

#include <sys/syscall.h>
#include <time.h>

#include "heapdev_util.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	long len = (argc > 1 ? atol(argv[1]) : 256) << 20, off, releasing;
	struct heapdev_create c, small;
	struct heapdev_info info;
	__u32 flags = HEAPDEV_DESTROY_ASYNC;
	double t;
	char *p;
	int fd;

	fd = hd_open();
	if (fd < 0 || hd_create(fd, 0, len, 0, &c)) {
		perror("heapdev_unload_helper: create");
		return 1;
	}
	p = hd_map(fd, &c, 0, len, PROT_READ | PROT_WRITE);
	if (p == MAP_FAILED) {
		perror("heapdev_unload_helper: mmap");
		return 1;
	}
	for (off = 0; off < len; off += 4096)
		p[off] = 1;
	if (!hd_info(fd, &info) &&
	    (info.features & HEAPDEV_FEAT_KEEP_MAPPINGS))
		flags |= HEAPDEV_DESTROY_KEEP_MAPPINGS;
	if (flags & HEAPDEV_DESTROY_KEEP_MAPPINGS)
		mprotect(p, len, PROT_NONE);
	else
		munmap(p, len);
	/* One heap released in the background, one left for close(). */
	if (hd_destroy_flags(fd, c.heap_id, flags) ||
	    hd_create(fd, 0, 64 * hd_page(), 0, &small)) {
		perror("heapdev_unload_helper: destroy");
		return 1;
	}
	if (flags & HEAPDEV_DESTROY_KEEP_MAPPINGS)
		munmap(p, len);
	close(fd);
	releasing = hd_sys_releasing();
	t = now_ms();
	if (syscall(SYS_delete_module, "heapdev", O_NONBLOCK)) {
		perror("heapdev_unload_helper: delete_module(heapdev)");
		return 1;
	}
	printf("unloaded with %ld pages still being released; the unload "
	       "took %.1f ms\n", releasing, now_ms() - t);
	if (!access(HD_SYSFS, F_OK)) {
		printf("heapdev_unload_helper: %s still exists\n", HD_SYSFS);
		return 1;
	}
	return releasing > 0 ? 0 : 2;
}
