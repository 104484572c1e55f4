/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What kbench.c and vmbench.c share: writing every page of a range and
 * the median of a round's samples.
 */
#ifndef HEAPDEV_BENCH_VMCOMMON_H
#define HEAPDEV_BENCH_VMCOMMON_H

#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

/* Write one byte to every page of [p, p + len). */
static inline void vm_touch(char *p, size_t len)
{
	size_t off, pg = (size_t)sysconf(_SC_PAGESIZE);

	for (off = 0; off < len; off += pg)
		p[off] = 1;
}

static inline int vm_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The median of @n samples (sorts them). */
static inline double vm_median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), vm_cmp_double);
	return v[n / 2];
}

#endif
