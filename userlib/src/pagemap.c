// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * heapdev: the process-wide page map, from 4 MiB granules of the address
 * space to the heap spans mapped there.
 *
 * Two levels: a static table indexed by address bits 34..46 whose entries
 * point to leaves of 4096 span pointers (bits 22..33).  Leaves are created
 * on demand and never freed, so lookups need no lock: a reader sees either
 * a span or NULL.  Spans start on 4 MiB boundaries, so no two spans share a
 * granule; a lookup still checks that the address lies inside the span.
 */
#include <errno.h>
#include <pthread.h>

#include "internal.h"

/* The leaf of every level-1 entry that has none: never written. */
static struct hd_span *hd_pagemap_zero[HD_PM_L2];

_Atomic(struct hd_span **) hd_pagemap[HD_PM_L1] = {
	[0 ... HD_PM_L1 - 1] = hd_pagemap_zero
};
static pthread_mutex_t hd_pagemap_mutex = PTHREAD_MUTEX_INITIALIZER;

static struct hd_span **hd_pagemap_leaf(uintptr_t addr)
{
	_Atomic(struct hd_span **) *slot = &hd_pagemap[addr >> HD_PM_L1_SHIFT];
	struct hd_span **leaf = atomic_load_explicit(slot, memory_order_acquire);

	if (leaf != hd_pagemap_zero)
		return leaf;
	pthread_mutex_lock(&hd_pagemap_mutex);
	leaf = atomic_load_explicit(slot, memory_order_relaxed);
	if (leaf == hd_pagemap_zero) {
		leaf = hd_os_alloc(HD_PM_L2 * sizeof(*leaf));
		if (leaf)
			atomic_store_explicit(slot, leaf, memory_order_release);
	}
	pthread_mutex_unlock(&hd_pagemap_mutex);
	return leaf;
}

static void hd_pagemap_store(struct hd_span **leaf, uintptr_t addr,
			     struct hd_span *sp)
{
	atomic_store_explicit((_Atomic(struct hd_span *) *)
			      &leaf[(addr >> HD_CHUNK_SHIFT) & (HD_PM_L2 - 1)],
			      sp, memory_order_release);
}

/* Register @sp for [base, base + size).  Return: 0 or -ENOMEM. */
int hd_pagemap_set(uintptr_t base, size_t size, struct hd_span *sp)
{
	uintptr_t a;

	if ((base >> HD_PM_L1_SHIFT) >= HD_PM_L1 ||
	    ((base + size - 1) >> HD_PM_L1_SHIFT) >= HD_PM_L1)
		return -ENOMEM;
	for (a = base; a < base + size; a += HD_CHUNK) {
		struct hd_span **leaf = hd_pagemap_leaf(a);

		if (!leaf) {
			hd_pagemap_clear(base, a - base);
			return -ENOMEM;
		}
		hd_pagemap_store(leaf, a, sp);
	}
	return 0;
}

void hd_pagemap_clear(uintptr_t base, size_t size)
{
	uintptr_t a;

	for (a = base; a < base + size; a += HD_CHUNK) {
		struct hd_span **leaf = atomic_load_explicit(
			&hd_pagemap[a >> HD_PM_L1_SHIFT], memory_order_acquire);

		if (leaf != hd_pagemap_zero)
			hd_pagemap_store(leaf, a, NULL);
	}
}
