// SPDX-License-Identifier: GPL-2.0-only
/*
 * heapdev: compile-time feature tests for module/compat.h (the module's
 * "configure" step, as OpenZFS and other out-of-tree modules do it).
 *
 * Never linked into the module.  Kbuild compiles this file once per probe
 * listed in HEAPDEV_PROBES, with the target kernel's own flags, -Werror and
 * -DHEAPDEV_PROBE_<NAME>, and writes heapdev_config.h with
 * HEAPDEV_HAVE_<NAME> for every probe that compiled.  A probe tests for the
 * API itself, not for a version number, so a distribution kernel that
 * backported it is detected too.  Each names the release that brought it.
 */

#include <linux/mm.h>
#include <linux/mm_types.h>

#ifdef HEAPDEV_PROBE_CONTROL
/* Must always compile: proves the harness works for this kernel. */
unsigned long heapdev_probe(struct vm_area_struct *vma);
unsigned long heapdev_probe(struct vm_area_struct *vma)
{
	return vma_pages(vma);
}
#endif

#ifdef HEAPDEV_PROBE_VM_FLAGS_SET
/* Linux 6.3: vm_flags_set() and vm_flags_clear(); vm_flags became const. */
void heapdev_probe(struct vm_area_struct *vma);
void heapdev_probe(struct vm_area_struct *vma)
{
	vm_flags_set(vma, VM_DONTCOPY);
	vm_flags_clear(vma, VM_MAYEXEC);
}
#endif

#ifdef HEAPDEV_PROBE_VMA_LOOKUP
/* Linux 5.14: vma_lookup(), the VMA that contains an address or NULL. */
struct vm_area_struct *heapdev_probe(struct mm_struct *mm);
struct vm_area_struct *heapdev_probe(struct mm_struct *mm)
{
	return vma_lookup(mm, 0);
}
#endif

#ifdef HEAPDEV_PROBE_PAGE_KMEMCG
/*
 * Up to Linux 5.10: pages charged with __GFP_ACCOUNT carry the page type
 * PG_kmemcg (5.11 moved the mark to page->memcg_data).
 */
bool heapdev_probe(struct page *page);
bool heapdev_probe(struct page *page)
{
	return PageKmemcg(page);
}
#endif
