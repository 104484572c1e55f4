// SPDX-License-Identifier: GPL-2.0-only
/*
 * heapdev-demo: walk through the kernel ABI and show the admin view at
 * each step.  Creates a growable, a fixed and an executable heap, maps
 * them, commits and touches pages, decommits some and destroys them all.
 *
 * Used by "make run"; needs /dev/heapdev (the module loaded).  With
 * HEAPSTAT naming the heapstat tool, each step also shows its summary.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "heapdev.h"

#define MIB (1UL << 20)

static void show(const char *what)
{
	char line[256];
	FILE *f = fopen("/proc/heapdev", "r");

	printf("\n--- %s: /proc/heapdev\n", what);
	if (!f) {
		perror("/proc/heapdev");
		return;
	}
	while (fgets(line, sizeof(line), f))
		fputs(line, stdout);
	fclose(f);

	/* The same through heapstat, when $HEAPSTAT names it. */
	if (getenv("HEAPSTAT")) {
		char cmd[512];

		snprintf(cmd, sizeof(cmd), "%s -p %d", getenv("HEAPSTAT"),
			 (int)getpid());
		printf("--- %s: heapstat\n", what);
		fflush(stdout);
		if (system(cmd))
			fprintf(stderr, "heapdev-demo: %s failed\n", cmd);
	}
}

static void die(const char *what)
{
	fprintf(stderr, "heapdev-demo: %s: %s\n", what, strerror(errno));
	exit(1);
}

static struct heapdev_create create(int fd, unsigned int flags,
				    unsigned long initial,
				    unsigned long maximum)
{
	struct heapdev_create c = {
		.size = sizeof(c), .flags = flags,
		.initial = initial, .maximum = maximum,
	};

	if (ioctl(fd, HEAPDEV_IOC_CREATE, &c))
		die("HEAPDEV_IOC_CREATE");
	printf("created heap %u: initial %lu, maximum %lu%s, mmap offset %#llx\n",
	       c.heap_id, initial, maximum, maximum ? "" : " (growable)",
	       (unsigned long long)c.mmap_offset);
	return c;
}

static void commit(int fd, unsigned int id, unsigned long off,
		   unsigned long len)
{
	struct heapdev_commit c = {
		.size = sizeof(c), .flags = HEAPDEV_COMMIT_POPULATE,
		.heap_id = id, .offset = off, .length = len,
	};

	if (ioctl(fd, HEAPDEV_IOC_COMMIT, &c))
		die("HEAPDEV_IOC_COMMIT");
	printf("heap %u: committed %lu bytes at %lu, %llu bytes in all\n",
	       id, len, off, (unsigned long long)c.committed);
}

static void decommit(int fd, unsigned int id, unsigned long off,
		     unsigned long len)
{
	struct heapdev_decommit d = {
		.size = sizeof(d), .heap_id = id, .offset = off, .length = len,
	};

	if (ioctl(fd, HEAPDEV_IOC_DECOMMIT, &d))
		die("HEAPDEV_IOC_DECOMMIT");
	printf("heap %u: released %llu bytes, %llu bytes left\n", id,
	       (unsigned long long)d.changed, (unsigned long long)d.committed);
}

static void destroy(int fd, unsigned int id)
{
	struct heapdev_destroy d = { .size = sizeof(d), .heap_id = id };

	if (ioctl(fd, HEAPDEV_IOC_DESTROY, &d))
		die("HEAPDEV_IOC_DESTROY");
	printf("destroyed heap %u\n", id);
}

int main(void)
{
	struct heapdev_create grow, fixed, exec;
	struct heapdev_info info = { .size = sizeof(info) };
	char *g, *f;
	int fd;

	fd = open("/dev/heapdev", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		die("open /dev/heapdev (is heapdev.ko loaded?)");
	if (ioctl(fd, HEAPDEV_IOC_GET_INFO, &info))
		die("HEAPDEV_IOC_GET_INFO");
	printf("heapdev ABI %u, page size %u, per-heap limit %llu MiB, per-user limit %llu MiB\n",
	       info.abi_version, info.page_size,
	       (unsigned long long)info.heap_limit >> 20,
	       (unsigned long long)info.user_limit >> 20);
	show("before");

	grow = create(fd, 0, 64 << 10, 0);
	fixed = create(fd, 0, 1 * MIB, 4 * MIB);
	exec = create(fd, HEAPDEV_HEAP_EXEC, 4096, 64 << 10);

	g = mmap(NULL, 16 * MIB, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 grow.mmap_offset);
	f = mmap(NULL, 4 * MIB, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 fixed.mmap_offset);
	if (g == MAP_FAILED || f == MAP_FAILED)
		die("mmap");
	commit(fd, grow.heap_id, 0, 8 * MIB);
	memset(g, 0xa5, 8 * MIB);
	memset(f, 0x5a, 1 * MIB);
	show("during: three heaps, 9 MiB written");

	decommit(fd, grow.heap_id, 4 * MIB, 4 * MIB);
	show("after decommitting half of the growable heap");

	destroy(fd, grow.heap_id);
	destroy(fd, fixed.heap_id);
	destroy(fd, exec.heap_id);
	munmap(g, 16 * MIB);
	munmap(f, 4 * MIB);
	show("after destroying them");
	close(fd);
	return 0;
}
