// SPDX-License-Identifier: GPL-2.0-only
/*
 * heapdev: heap objects, their committed pages and their mappings.
 *
 * Pages belong to the heap: they are allocated zeroed and charged to the
 * caller's memory cgroup at commit, kept in an xarray indexed by their page
 * offset in the heap, and mapped into the owner's VMAs by the fault handler
 * (or eagerly by a populating commit).  Decommit and destroy unmap the range
 * from every VMA of the file's private address_space before the pages are
 * released (release_pages() in batches), so that a concurrent pin keeps
 * its page alive.
 *
 * Locking order: mmap_lock -> heap->fault_lock -> i_mmap_rwsem -> PTL, and
 * heap->lock -> heap->fault_lock.  heap->lock is never taken under
 * mmap_lock, and no lock is held across a user copy.
 */

#include <linux/fs.h>
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>

#include "../uapi/heapdev.h"
#include "compat.h"
#include "heapdev_internal.h"

/*
 * Committed pages: zeroed, charged to the memory cgroup, and allowed to fail
 * rather than invoke the OOM killer, so that a commit over the cgroup's
 * limit returns ENOMEM instead of killing a process.
 */
#define HEAPDEV_PAGE_GFP	(GFP_HIGHUSER | __GFP_ZERO | __GFP_ACCOUNT | \
				 __GFP_RETRY_MAYFAIL | __GFP_NOWARN)
#define HEAPDEV_META_GFP	(GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL | \
				 __GFP_NOWARN)

/* Marks pages inserted by a commit still in progress, for its rollback. */
#define HEAPDEV_MARK_NEW	XA_MARK_1

/* Pages mapped around a faulting address, like the page cache's fault-around. */
#define HEAPDEV_FAULT_AROUND	16

/* Pages handed to vm_insert_pages() at once. */
#define HEAPDEV_INSERT_BATCH	32

static const struct vm_operations_struct heapdev_vm_ops;

/**
 * heapdev_heap_alloc - allocate a heap, not yet visible to userspace
 * @hf: the file that will hold it
 * @flags: enum heapdev_heap_flags given at creation
 * @max_pages: fixed size in pages, 0 for growable
 *
 * Return: the heap with one reference (for its id), or NULL.
 */
struct heapdev_heap *heapdev_heap_alloc(struct heapdev_file *hf, u32 flags,
					unsigned long max_pages)
{
	struct heapdev_heap *heap;

	heap = kzalloc(sizeof(*heap), GFP_KERNEL_ACCOUNT);
	if (!heap)
		return NULL;

	kref_init(&heap->ref);
	mutex_init(&heap->lock);
	init_rwsem(&heap->fault_lock);
	xa_init(&heap->pages);
	atomic_set(&heap->mappings, 0);
	heap->file = hf;
	heap->flags = flags;
	heap->max_pages = max_pages;
	heap->window_pages = max_pages ? max_pages : HEAPDEV_WINDOW_PAGES;
	if (!max_pages)
		heap->flags |= HEAPDEV_HEAP_GROWABLE;
	atomic_long_inc(&heapdev_heaps_alive);
	return heap;
}

static void heapdev_heap_release(struct kref *ref)
{
	struct heapdev_heap *heap = container_of(ref, struct heapdev_heap, ref);

	/* The last reference goes after heapdev_heap_kill() freed every page. */
	WARN_ON_ONCE(heap->nr_pages);
	xa_destroy(&heap->pages);
	mutex_destroy(&heap->lock);
	kfree(heap);
	atomic_long_dec(&heapdev_heaps_alive);
}

void heapdev_heap_put(struct heapdev_heap *heap)
{
	kref_put(&heap->ref, heapdev_heap_release);
}

/* Pages taken out of the xarray per lock hold, then released unlocked. */
#define HEAPDEV_EVICT_BATCH	64

/*
 * Unmap and release the committed pages in [first, last] of the heap.
 * Called with heap->lock and heap->fault_lock (write) held, so that no
 * fault maps any of them again.  Returns the number of pages released.
 */
static unsigned long heapdev_heap_evict(struct heapdev_heap *heap,
					pgoff_t first, pgoff_t last)
{
	struct page *batch[HEAPDEV_EVICT_BATCH];
	unsigned long count = 0, n;
	pgoff_t index = first;
	struct page *page;

	lockdep_assert_held(&heap->lock);
	lockdep_assert_held_write(&heap->fault_lock);

	if (!xa_find(&heap->pages, &index, last, XA_PRESENT))
		return 0;
	if (atomic_read(&heap->mappings))
		unmap_mapping_pages(heap->file->inode->i_mapping,
				    heap->base + index, last - index + 1, true);

	do {
		XA_STATE(xas, &heap->pages, index);

		n = 0;
		xas_lock(&xas);
		xas_for_each(&xas, page, last) {
			xas_store(&xas, NULL);
			batch[n++] = page;
			if (n == ARRAY_SIZE(batch))
				break;
		}
		/* Restart after the last entry; never xas_pause() after a store. */
		index = xas.xa_index + 1;
		xas_unlock(&xas);

		/* Drop our references; a pinned page lives on with its pin. */
		release_pages(batch, n);
		count += n;
		cond_resched();
	} while (n == ARRAY_SIZE(batch) && index && index <= last);
	return count;
}

/* Release the pages a failed commit inserted. */
static void heapdev_heap_rollback(struct heapdev_heap *heap, pgoff_t first,
				  pgoff_t last)
{
	XA_STATE(xas, &heap->pages, first);
	struct page *page;

	xas_lock(&xas);
	xas_for_each_marked(&xas, page, last, HEAPDEV_MARK_NEW) {
		xas_store(&xas, NULL);
		put_page(page);
	}
	xas_unlock(&xas);
}

static void heapdev_heap_clear_new(struct heapdev_heap *heap, pgoff_t first,
				   pgoff_t last)
{
	XA_STATE(xas, &heap->pages, first);
	struct page *page;

	xas_lock(&xas);
	xas_for_each_marked(&xas, page, last, HEAPDEV_MARK_NEW)
		xas_clear_mark(&xas, HEAPDEV_MARK_NEW);
	xas_unlock(&xas);
}

static unsigned long heapdev_heap_count(struct heapdev_heap *heap,
					pgoff_t first, pgoff_t last)
{
	XA_STATE(xas, &heap->pages, first);
	struct page *page;
	unsigned long count = 0;

	rcu_read_lock();
	xas_for_each(&xas, page, last) {
		if (xas_retry(&xas, page))
			continue;
		count++;
	}
	rcu_read_unlock();
	return count;
}

/**
 * heapdev_heap_commit - commit the pages [first, first + count) of a heap
 * @heap: the heap
 * @first: first page offset in the heap
 * @count: number of pages, not 0, within the heap's window
 * @changed: out: pages newly committed
 *
 * All or nothing: on error the heap is left as it was.
 *
 * Return: 0, -ENOENT (destroyed), -EDQUOT, -ENOMEM or -EINTR.
 */
int heapdev_heap_commit(struct heapdev_heap *heap, pgoff_t first,
			unsigned long count, unsigned long *changed)
{
	pgoff_t last = first + count - 1, index;
	unsigned long need, done = 0;
	struct page *page;
	int ret = 0;

	*changed = 0;
	mutex_lock(&heap->lock);
	if (heap->dead) {
		ret = -ENOENT;
		goto out_unlock;
	}

	need = count - heapdev_heap_count(heap, first, last);
	if (!need)
		goto out_unlock;
	ret = heapdev_charge(heap, need);
	if (ret)
		goto out_unlock;

	for (index = first; done < need; index++) {
		if (xa_load(&heap->pages, index))
			continue;
		if (fatal_signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		page = alloc_page(HEAPDEV_PAGE_GFP);
		if (!page) {
			ret = -ENOMEM;
			break;
		}
		ret = xa_insert(&heap->pages, index, page, HEAPDEV_META_GFP);
		if (ret) {
			__free_page(page);
			break;
		}
		xa_set_mark(&heap->pages, index, HEAPDEV_MARK_NEW);
		done++;
		cond_resched();
	}

	if (ret) {
		heapdev_heap_rollback(heap, first, last);
		heapdev_uncharge(heap, need);
		goto out_unlock;
	}
	heapdev_heap_clear_new(heap, first, last);
	WRITE_ONCE(heap->nr_pages, heap->nr_pages + need);
	*changed = need;
out_unlock:
	mutex_unlock(&heap->lock);
	return ret;
}

/**
 * heapdev_heap_decommit - release the pages [first, first + count)
 * @heap: the heap
 * @first: first page offset in the heap
 * @count: number of pages, not 0, within the heap's window
 * @changed: out: pages released
 *
 * Uncommitted pages in the range are skipped.
 *
 * Return: 0, or -ENOENT if the heap was destroyed.
 */
int heapdev_heap_decommit(struct heapdev_heap *heap, pgoff_t first,
			  unsigned long count, unsigned long *changed)
{
	unsigned long released;
	int ret = 0;

	*changed = 0;
	mutex_lock(&heap->lock);
	if (heap->dead) {
		ret = -ENOENT;
		goto out_unlock;
	}
	down_write(&heap->fault_lock);
	released = heapdev_heap_evict(heap, first, first + count - 1);
	up_write(&heap->fault_lock);
	if (released) {
		WRITE_ONCE(heap->nr_pages, heap->nr_pages - released);
		heapdev_uncharge(heap, released);
	}
	*changed = released;
out_unlock:
	mutex_unlock(&heap->lock);
	return ret;
}

/**
 * heapdev_heap_kill - destroy a heap's contents
 * @heap: the heap, already unreachable through its id
 *
 * Every page is unmapped and released, and the heap refuses commits from
 * now on.  Mappings that remain raise SIGBUS when touched.
 */
void heapdev_heap_kill(struct heapdev_heap *heap)
{
	unsigned long released;

	mutex_lock(&heap->lock);
	down_write(&heap->fault_lock);
	heap->dead = true;
	released = heapdev_heap_evict(heap, 0, heap->window_pages - 1);
	up_write(&heap->fault_lock);
	if (released) {
		WRITE_ONCE(heap->nr_pages, heap->nr_pages - released);
		heapdev_uncharge(heap, released);
	}
	mutex_unlock(&heap->lock);
}

/*
 * Map @nr pages into @vma from @addr on, skipping pages that are already
 * mapped.  Best effort: stops quietly on any other error.
 */
static void heapdev_insert_run(struct vm_area_struct *vma, unsigned long addr,
			       struct page **pages, unsigned long nr)
{
	while (nr) {
		unsigned long left = nr;
		int err = vm_insert_pages(vma, addr, pages, &left);

		if (err != -EBUSY)
			return;
		/* pages[nr - left] is mapped already: step over it. */
		left--;
		addr += (nr - left) << PAGE_SHIFT;
		pages += nr - left;
		nr = left;
	}
}

/*
 * Map the committed pages with heap offsets [first, last] into @vma, which
 * must cover them.  Called with mmap_lock (or the VMA lock) and
 * heap->fault_lock held for read.
 */
static void heapdev_map_range(struct heapdev_heap *heap,
			      struct vm_area_struct *vma, pgoff_t first,
			      pgoff_t last)
{
	XA_STATE(xas, &heap->pages, first);
	struct page *batch[HEAPDEV_INSERT_BATCH];
	unsigned long start = 0, nr = 0;
	pgoff_t expect = 0;
	struct page *page;

	rcu_read_lock();
	xas_for_each(&xas, page, last) {
		/* xas_pause() moves xa_index on: read it first. */
		pgoff_t index = xas.xa_index;

		if (xas_retry(&xas, page))
			continue;
		if (nr && (index != expect || nr == ARRAY_SIZE(batch))) {
			xas_pause(&xas);
			rcu_read_unlock();
			heapdev_insert_run(vma, start, batch, nr);
			cond_resched();
			rcu_read_lock();
			nr = 0;
		}
		if (!nr)
			start = vma->vm_start +
				((heap->base + index - vma->vm_pgoff)
				 << PAGE_SHIFT);
		batch[nr++] = page;
		expect = index + 1;
	}
	rcu_read_unlock();
	if (nr)
		heapdev_insert_run(vma, start, batch, nr);
}

/**
 * heapdev_heap_populate - map committed pages into the caller's mappings
 * @heap: the heap
 * @first: first page offset in the heap
 * @count: number of pages
 *
 * Best effort: a failure only means the pages are mapped on first touch.
 */
void heapdev_heap_populate(struct heapdev_heap *heap, pgoff_t first,
			   unsigned long count)
{
	pgoff_t start = heap->base + first, end = start + count - 1;
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;

	if (!atomic_read(&heap->mappings))
		return;

	mmap_read_lock(mm);
	down_read(&heap->fault_lock);
	VMA_ITERATOR(vmi, mm, 0);
	for_each_vma(vmi, vma) {
		pgoff_t vfirst = vma->vm_pgoff;
		pgoff_t vlast = vfirst + vma_pages(vma) - 1;

		if (vma->vm_ops != &heapdev_vm_ops ||
		    vma->vm_private_data != heap ||
		    vlast < start || vfirst > end)
			continue;
		heapdev_map_range(heap, vma, max(start, vfirst) - heap->base,
				  min(end, vlast) - heap->base);
	}
	up_read(&heap->fault_lock);
	mmap_read_unlock(mm);
}

static vm_fault_t heapdev_vm_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct heapdev_heap *heap = vma->vm_private_data;
	pgoff_t index = vmf->pgoff - heap->base;
	vm_fault_t ret = VM_FAULT_SIGBUS;
	struct page *page;

	/* A mapping inherited through MADV_DOFORK belongs to the owner only. */
	if (vma->vm_mm != heap->file->mm)
		return VM_FAULT_SIGBUS;

	down_read(&heap->fault_lock);
	page = xa_load(&heap->pages, index);
	if (page) {
		pgoff_t vfirst = vma->vm_pgoff - heap->base;
		pgoff_t vlast = vfirst + vma_pages(vma) - 1;
		pgoff_t first = round_down(index, HEAPDEV_FAULT_AROUND);
		pgoff_t last = first + HEAPDEV_FAULT_AROUND - 1;

		ret = vmf_insert_page(vma, vmf->address, page);
		if (ret == VM_FAULT_NOPAGE)
			heapdev_map_range(heap, vma, max(first, vfirst),
					  min(last, vlast));
	}
	up_read(&heap->fault_lock);
	return ret;
}

static void heapdev_vm_open(struct vm_area_struct *vma)
{
	struct heapdev_heap *heap = vma->vm_private_data;

	kref_get(&heap->ref);
	atomic_inc(&heap->mappings);
}

static void heapdev_vm_close(struct vm_area_struct *vma)
{
	struct heapdev_heap *heap = vma->vm_private_data;

	atomic_dec(&heap->mappings);
	heapdev_heap_put(heap);
}

static const struct vm_operations_struct heapdev_vm_ops = {
	.open = heapdev_vm_open,
	.close = heapdev_vm_close,
	.fault = heapdev_vm_fault,
};

/**
 * heapdev_heap_mmap - set up a VMA over part of a heap's window
 * @heap: the heap
 * @vma: the new VMA; vm_pgoff lies in the heap's window
 *
 * Return: 0 (the VMA then holds a reference on the heap), -ENXIO when the
 * VMA reaches beyond the heap's reservation, -EPERM for PROT_EXEC on a heap
 * created without HEAPDEV_HEAP_EXEC.
 */
int heapdev_heap_mmap(struct heapdev_heap *heap, struct vm_area_struct *vma)
{
	pgoff_t off = vma->vm_pgoff - heap->base;

	if (off >= heap->window_pages ||
	    vma_pages(vma) > heap->window_pages - off)
		return -ENXIO;
	if (!(heap->flags & HEAPDEV_HEAP_EXEC)) {
		if (vma->vm_flags & VM_EXEC)
			return -EPERM;
		vm_flags_clear(vma, VM_MAYEXEC);
	}
	vm_flags_set(vma, VM_DONTCOPY | VM_DONTEXPAND | VM_MIXEDMAP);
	vma->vm_ops = &heapdev_vm_ops;
	vma->vm_private_data = heap;
	heapdev_vm_open(vma);
	return 0;
}
