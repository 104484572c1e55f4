// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * heapdev: the process-wide page map, from 4 MiB granules of the address
 * space to the heap spans mapped there.
 *
 * One flat table of 2^25 entries (address bits 22..46), reserved with
 * MAP_NORESERVE when the first heap is created: a lookup is a shift, a
 * compare and a load.  Only the table's pages that hold entries are ever
 * backed (one page per 2 GiB of address space that heaps use).  Lookups
 * need no lock: a reader sees either a span or NULL.  Spans start on 4 MiB
 * boundaries, so no two spans share a granule; a lookup still checks that
 * the address lies inside the span.
 */
#include <errno.h>
#include <pthread.h>

#include "internal.h"

_Atomic(struct hd_span *) *hd_pm;
_Atomic uintptr_t hd_pm_limit;
static pthread_mutex_t hd_pagemap_mutex = PTHREAD_MUTEX_INITIALIZER;

/* Reserve the table (once).  Return: 0 or -ENOMEM. */
int hd_pagemap_init(void)
{
	int err = 0;

	if (atomic_load_explicit(&hd_pm_limit, memory_order_acquire))
		return 0;
	pthread_mutex_lock(&hd_pagemap_mutex);
	if (!atomic_load_explicit(&hd_pm_limit, memory_order_relaxed)) {
		hd_pm = hd_os_reserve(HD_PM_ENTRIES * sizeof(*hd_pm));
		if (hd_pm)
			atomic_store_explicit(&hd_pm_limit, HD_PM_ENTRIES,
					      memory_order_release);
		else
			err = -ENOMEM;
	}
	pthread_mutex_unlock(&hd_pagemap_mutex);
	return err;
}

/* Register @sp for [base, base + size).  Return: 0 or -ENOMEM. */
int hd_pagemap_set(uintptr_t base, size_t size, struct hd_span *sp)
{
	uintptr_t a;

	if (hd_pagemap_init() || (base >> HD_CHUNK_SHIFT) >= HD_PM_ENTRIES ||
	    ((base + size - 1) >> HD_CHUNK_SHIFT) >= HD_PM_ENTRIES)
		return -ENOMEM;
	for (a = base; a < base + size; a += HD_CHUNK)
		atomic_store_explicit(&hd_pm[a >> HD_CHUNK_SHIFT], sp,
				      memory_order_release);
	return 0;
}

void hd_pagemap_clear(uintptr_t base, size_t size)
{
	uintptr_t a;

	if (!atomic_load_explicit(&hd_pm_limit, memory_order_relaxed))
		return;
	for (a = base; a < base + size; a += HD_CHUNK)
		atomic_store_explicit(&hd_pm[a >> HD_CHUNK_SHIFT], NULL,
				      memory_order_release);
}
