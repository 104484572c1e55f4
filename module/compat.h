/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * heapdev: the one place where kernel versions differ.
 *
 * Supported: 6.1 and later (tested on Debian's 6.1 and 6.12 kernels,
 * compile-checked on 7.2).  Differences are detected by feature probes in
 * Kbuild (HEAPDEV_HAVE_*), not by version numbers, so that distribution
 * backports are handled too.  Every shim names the release that changed
 * the API; the rest of the module uses the newest API unconditionally.
 */
#ifndef _HEAPDEV_COMPAT_H
#define _HEAPDEV_COMPAT_H

#include <linux/mm.h>

/*
 * Linux 6.3 made vma->vm_flags read-only and added vm_flags_set() and
 * vm_flags_clear() (with the per-VMA lock series).
 */
#ifndef HEAPDEV_HAVE_VM_FLAGS_SET
static inline void vm_flags_set(struct vm_area_struct *vma, vm_flags_t flags)
{
	vma->vm_flags |= flags;
}

static inline void vm_flags_clear(struct vm_area_struct *vma,
				  vm_flags_t flags)
{
	vma->vm_flags &= ~flags;
}
#endif

#endif /* _HEAPDEV_COMPAT_H */
