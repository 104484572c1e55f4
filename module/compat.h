/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * heapdev: the one place where kernel versions differ.
 *
 * Supported: 5.10 and later (tested on Debian's 5.10, 6.1 and 6.12
 * kernels, compile-checked on 7.2).  Differences are found by the
 * compile-time feature tests of module/probes.c, which Kbuild turns into
 * heapdev_config.h (HEAPDEV_HAVE_*), not by version numbers, so that
 * distribution backports are handled too.  Every shim names the release
 * that changed the API; the rest of the module uses the newest API
 * unconditionally.
 */
#ifndef _HEAPDEV_COMPAT_H
#define _HEAPDEV_COMPAT_H

#include <linux/mm.h>

#include "heapdev_config.h"

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

/* Linux 5.14 added vma_lookup(): the VMA containing @addr, or NULL. */
#ifndef HEAPDEV_HAVE_VMA_LOOKUP
static inline struct vm_area_struct *vma_lookup(struct mm_struct *mm,
						unsigned long addr)
{
	struct vm_area_struct *vma = find_vma(mm, addr);

	if (vma && addr < vma->vm_start)
		vma = NULL;
	return vma;
}
#endif

/*
 * Up to Linux 5.10, a page charged to a memory cgroup through __GFP_ACCOUNT
 * carries the page type PG_kmemcg, which shares its field with the map
 * count, so vm_insert_page() refuses it (5.11 moved the mark to
 * page->memcg_data).  Such a page is mapped as a special PTE instead: no
 * map count, and get_user_pages() (O_DIRECT, process_vm_readv) cannot
 * reach it.  Pages of the root cgroup are not charged and not affected.
 */
#ifdef HEAPDEV_HAVE_PAGE_KMEMCG
#include <linux/pfn_t.h>

static inline bool heapdev_page_mappable(struct page *page)
{
	return !PageKmemcg(page);
}

static inline vm_fault_t heapdev_insert_special(struct vm_area_struct *vma,
						unsigned long addr,
						struct page *page)
{
	return vmf_insert_mixed(vma, addr, page_to_pfn_t(page));
}
#else
static inline bool heapdev_page_mappable(struct page *page)
{
	return true;
}

static inline vm_fault_t heapdev_insert_special(struct vm_area_struct *vma,
						unsigned long addr,
						struct page *page)
{
	return VM_FAULT_SIGBUS;
}
#endif

#endif /* _HEAPDEV_COMPAT_H */
