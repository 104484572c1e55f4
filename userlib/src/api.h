/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * heapdev: the native API layer (api.c): the calls of <heapdev.h>, and
 * their bodies without the call protocol, for the Win32 layer above it.
 */
#ifndef HEAPDEV_API_H
#define HEAPDEV_API_H

#include "heap.h"

HD_HIDDEN int hd_api_lock(struct heapdev_heap *heap);
HD_HIDDEN int hd_api_unlock(struct heapdev_heap *heap);
HD_HIDDEN int hd_api_compact(struct heapdev_heap *heap, unsigned int flags,
			     size_t *largest);
HD_HIDDEN int hd_api_trim(struct heapdev_heap *heap);

#endif /* HEAPDEV_API_H */
