// SPDX-License-Identifier: GPL-2.0-only
/*
 * heapdev: heap objects, their committed pages and their mappings.
 *
 * Pages belong to the heap: they are allocated zeroed and charged to the
 * caller's memory cgroup at commit, kept in an xarray indexed by their page
 * offset in the heap, and mapped into the owner's VMAs by the fault handler
 * (or eagerly by a populating commit).  A lazy commit (HEAPDEV_COMMIT_LAZY)
 * charges the limits at once but stores the value entry HEAPDEV_LAZY; the
 * first fault on it allocates the page and swaps it in, as shmem allocates
 * a page on the first fault of a hole.  Decommit and destroy unmap the range
 * from every VMA of the file's private address_space before the pages are
 * released (release_pages() in batches), so that a concurrent pin keeps
 * its page alive.  With HEAPDEV_*_ASYNC the release itself happens later,
 * in release.c: a destroyed heap is queued whole, a decommitted range's
 * pages in batches.
 *
 * Locking order: mmap_lock -> heap->fault_lock -> i_mmap_rwsem -> PTL, and
 * heap->lock -> heap->fault_lock.  heap->lock is never taken under
 * mmap_lock, and no lock is held across a user copy.  A commit may wait
 * for the background release under heap->lock (the worker takes no heap
 * lock).
 */

#include <linux/fs.h>
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
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

/*
 * A lazily committed page allocated by its first touch: a fault has no
 * caller to return ENOMEM to, so it may reclaim and take the (memory
 * cgroup's) OOM path like any first touch of anonymous memory.
 */
#define HEAPDEV_FAULT_GFP	(GFP_HIGHUSER | __GFP_ZERO | __GFP_ACCOUNT | \
				 __GFP_NOWARN)

/* Pages mapped around a faulting address, like the page cache's fault-around. */
#define HEAPDEV_FAULT_AROUND	16

/* Pages handed to vm_insert_pages() at once. */
#define HEAPDEV_INSERT_BATCH	32

/*
 * Fewer pages than this (2 MiB) are released at once even when the caller
 * asked for the background: waking the worker, and sharing the CPUs with
 * it, costs more than freeing them (measured in the VM: a heap of 40
 * pages destroyed 1.5 times slower in the background).
 */
#define HEAPDEV_RELEASE_MIN	512

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
	INIT_LIST_HEAD(&heap->release_node);
	INIT_LIST_HEAD(&heap->dying_node);
	mutex_init(&heap->lock);
	init_rwsem(&heap->fault_lock);
	xa_init(&heap->pages);
	atomic_set(&heap->mappings, 0);
	atomic_long_set(&heap->resident, 0);
	heapdev_file_get(hf);
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

	struct heapdev_file *hf = heap->file;

	/* The last reference goes after every page was freed. */
	WARN_ON_ONCE(heap->nr_pages);
	xa_destroy(&heap->pages);
	mutex_destroy(&heap->lock);
	kfree(heap);
	atomic_long_dec(&heapdev_heaps_alive);
	heapdev_file_put(hf);
}

void heapdev_heap_put(struct heapdev_heap *heap)
{
	kref_put(&heap->ref, heapdev_heap_release);
}

/* Zap heap pages [first, first + nr) from every mapping of the file. */
static void heapdev_unmap(struct heapdev_heap *heap, pgoff_t first,
			  unsigned long nr)
{
	unmap_mapping_range(heap->file->inode->i_mapping,
			    (loff_t)(heap->base + first) << PAGE_SHIFT,
			    (loff_t)nr << PAGE_SHIFT, 1);
}

/*
 * Zap every page table entry of the heap, in every process (fork.c, and
 * the background release of a heap destroyed with its mappings kept).
 */
void heapdev_heap_zap(struct heapdev_heap *heap)
{
	if (atomic_read(&heap->mappings))
		heapdev_unmap(heap, 0, heap->window_pages);
}

/* Pages taken out of the xarray per lock hold when released at once. */
#define HEAPDEV_EVICT_BATCH	64
/* Lazy entries (nothing to free) taken out per lock hold. */
#define HEAPDEV_EVICT_LAZY	512

/*
 * Take the entries from @xas on (up to @last) out of the heap, under the
 * xarray lock: pages into @slots (at most @cap), lazy entries only counted
 * in *@lazy.  Returns the number of pages; *@more tells whether entries up
 * to @last may remain, and *@next where to go on.
 */
static unsigned int heapdev_heap_take(struct xa_state *xas, pgoff_t last,
				      struct page **slots, unsigned int cap,
				      unsigned int *lazy, bool *more,
				      pgoff_t *next)
{
	unsigned int n = 0;
	void *entry;

	*lazy = 0;
	*more = false;
	xas_lock(xas);
	xas_for_each(xas, entry, last) {
		xas_store(xas, NULL);
		if (xa_is_value(entry))
			(*lazy)++;
		else
			slots[n++] = entry;
		if (n == cap || *lazy == HEAPDEV_EVICT_LAZY) {
			*more = true;
			break;
		}
	}
	/* Restart after the last entry; never xas_pause() after a store. */
	*next = xas->xa_index + 1;
	xas_unlock(xas);
	if (!*next)
		*more = false;
	return n;
}

/*
 * Unmap the committed pages in [first, last] of the heap and take them out
 * of it.  With @async, they go to the background release in batches (and
 * stay charged until freed); otherwise, or when no batch can be allocated,
 * they are released and uncharged here.  Called with heap->lock and
 * heap->fault_lock (write) held, so that no fault maps any of them again.
 * Returns the number of pages taken out.
 */
static unsigned long heapdev_heap_evict(struct heapdev_heap *heap,
					pgoff_t first, pgoff_t last,
					bool async)
{
	struct page *local[HEAPDEV_EVICT_BATCH];
	unsigned int n, cap, lazy;
	unsigned long count = 0;
	pgoff_t index = first;
	bool more;

	lockdep_assert_held(&heap->lock);
	lockdep_assert_held_write(&heap->fault_lock);

	if (!xa_find(&heap->pages, &index, last, XA_PRESENT))
		return 0;
	if (atomic_read(&heap->mappings))
		heapdev_unmap(heap, index, last - index + 1);
	async = async && last - index + 1 >= HEAPDEV_RELEASE_MIN;

	do {
		XA_STATE(xas, &heap->pages, index);
		struct heapdev_batch *batch = NULL;
		struct page **slots = local;

		cap = ARRAY_SIZE(local);
		if (async)
			batch = heapdev_batch_alloc(heap->file, &slots, &cap);

		n = heapdev_heap_take(&xas, last, slots, cap, &lazy, &more,
				      &index);
		atomic_long_sub(n, &heap->resident);
		if (batch) {
			heapdev_batch_queue(batch, n);
		} else {
			/* Drop our references; a pinned page lives on with its pin. */
			release_pages(local, n);
			heapdev_uncharge(heap->file, n);
		}
		/* A lazy entry holds nothing but its charge. */
		heapdev_uncharge(heap->file, lazy);
		count += n + lazy;
		cond_resched();
	} while (more && index <= last);
	return count;
}

/**
 * heapdev_heap_drain - free every page of a dead heap
 * @heap: dead and unmapped: nothing else touches its pages any more
 * @queued: the heap was handed to the background release, which counts its
 *	pages in heapdev_pages_releasing
 *
 * Pages are uncharged as they are freed, so the limits and the admin view
 * follow the release as it goes.
 */
void heapdev_heap_drain(struct heapdev_heap *heap, bool queued)
{
	struct page *batch[HEAPDEV_EVICT_BATCH];
	unsigned int n, lazy;
	pgoff_t index = 0;
	bool more;

	do {
		XA_STATE(xas, &heap->pages, index);

		n = heapdev_heap_take(&xas, ULONG_MAX, batch, ARRAY_SIZE(batch),
				      &lazy, &more, &index);
		release_pages(batch, n);
		atomic_long_sub(n, &heap->resident);
		WRITE_ONCE(heap->nr_pages, heap->nr_pages - n - lazy);
		heapdev_uncharge(heap->file, n + lazy);
		if (queued)
			atomic_long_sub(n + lazy, &heapdev_pages_releasing);
		cond_resched();
	} while (more);
}

/*
 * Release the pages a failed commit inserted.  No fault maps them (faults
 * refuse entries marked new), and fault_lock keeps out a fault that read
 * one before the mark was checked.
 */
static void heapdev_heap_rollback(struct heapdev_heap *heap, pgoff_t first,
				  pgoff_t last)
{
	XA_STATE(xas, &heap->pages, first);
	void *entry;

	down_write(&heap->fault_lock);
	xas_lock(&xas);
	xas_for_each_marked(&xas, entry, last, HEAPDEV_MARK_NEW) {
		xas_store(&xas, NULL);
		if (!xa_is_value(entry))
			put_page(entry);
	}
	xas_unlock(&xas);
	up_write(&heap->fault_lock);
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
 * @lazy: only charge the pages; each is allocated by its first fault
 * @changed: out: pages newly committed
 *
 * All or nothing: on error the heap is left as it was.
 *
 * Return: 0, -ENOENT (destroyed), -EDQUOT, -ENOMEM or -EINTR.
 */
int heapdev_heap_commit(struct heapdev_heap *heap, pgoff_t first,
			unsigned long count, bool lazy,
			unsigned long *changed)
{
	pgoff_t last = first + count - 1, index;
	unsigned long need, done = 0;
	bool waited = false;
	struct page *page = NULL;
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
	/* Pages still being released may be what stands in the way. */
	if (ret && heapdev_release_wait())
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
		if (!lazy) {
			page = alloc_page(HEAPDEV_PAGE_GFP);
			if (!page && !waited) {
				waited = true;
				if (heapdev_release_wait())
					page = alloc_page(HEAPDEV_PAGE_GFP);
			}
			if (!page) {
				ret = -ENOMEM;
				break;
			}
		}
		ret = xa_insert(&heap->pages, index, lazy ? HEAPDEV_LAZY : page,
				HEAPDEV_META_GFP);
		if (ret) {
			if (page)
				__free_page(page);
			break;
		}
		xa_set_mark(&heap->pages, index, HEAPDEV_MARK_NEW);
		done++;
		cond_resched();
	}

	if (ret) {
		heapdev_heap_rollback(heap, first, last);
		heapdev_uncharge(heap->file, need);
		goto out_unlock;
	}
	heapdev_heap_clear_new(heap, first, last);
	WRITE_ONCE(heap->nr_pages, heap->nr_pages + need);
	if (!lazy)
		atomic_long_add(need, &heap->resident);
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
 * @async: free the pages in the background (HEAPDEV_DECOMMIT_ASYNC)
 * @changed: out: pages taken out of the heap
 *
 * Uncommitted pages in the range are skipped.
 *
 * Return: 0, or -ENOENT if the heap was destroyed.
 */
int heapdev_heap_decommit(struct heapdev_heap *heap, pgoff_t first,
			  unsigned long count, bool async,
			  unsigned long *changed)
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
	released = heapdev_heap_evict(heap, first, first + count - 1, async);
	up_write(&heap->fault_lock);
	WRITE_ONCE(heap->nr_pages, heap->nr_pages - released);
	*changed = released;
out_unlock:
	mutex_unlock(&heap->lock);
	return ret;
}

/**
 * heapdev_heap_kill - destroy a heap's contents
 * @heap: the heap, already unreachable through its id
 * @async: free the pages in the background (HEAPDEV_DESTROY_ASYNC)
 * @keep: with @async, leave the zapping of the mappings to the background
 *	release too (HEAPDEV_DESTROY_KEEP_MAPPINGS)
 *
 * Every page is unmapped, here or (@keep) by the background release
 * before it frees any page; the heap refuses commits and faults from now
 * on (mappings that remain raise SIGBUS when touched once zapped), and its
 * pages are freed: here, or by the background release, which takes its
 * own reference on the heap.
 */
void heapdev_heap_kill(struct heapdev_heap *heap, bool async, bool keep)
{
	mutex_lock(&heap->lock);
	down_write(&heap->fault_lock);
	heap->dead = true;
	async = async && heap->nr_pages >= HEAPDEV_RELEASE_MIN;
	heap->zap_later = async && keep;
	if (heap->zap_later)
		/* The file (and its iput) may go before the releaser zaps. */
		ihold(heap->file->inode);
	else if (heap->nr_pages && atomic_read(&heap->mappings))
		heapdev_unmap(heap, 0, heap->window_pages);
	up_write(&heap->fault_lock);
	mutex_unlock(&heap->lock);

	/* Dead: nothing else touches heap->pages any more. */
	if (async)
		heapdev_release_heap(heap);
	else
		heapdev_heap_drain(heap, false);
}

/* Map one page; VM_FAULT_NOPAGE when it is mapped (or already was). */
static vm_fault_t heapdev_insert_one(struct vm_area_struct *vma,
				     unsigned long addr, struct page *page)
{
	if (heapdev_page_mappable(page))
		return vmf_insert_page(vma, addr, page);
	return heapdev_insert_special(vma, addr, page);
}

/*
 * Map @nr pages into @vma from @addr on, skipping pages that are already
 * mapped.  Best effort: stops quietly on any other error.
 */
static void heapdev_insert_run(struct vm_area_struct *vma, unsigned long addr,
			       struct page **pages, unsigned long nr)
{
	unsigned long i;

	for (i = 0; i < nr; i++)
		if (!heapdev_page_mappable(pages[i]))
			break;
	if (i < nr) {
		/* Old kernels: memcg-charged pages go in one by one. */
		for (i = 0; i < nr; i++, addr += PAGE_SIZE)
			heapdev_insert_one(vma, addr, pages[i]);
		return;
	}
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
		/*
		 * Not touched yet, not committed yet, or shared by a fork
		 * (its own fault decides whether to copy it): nothing to map.
		 */
		if (xa_is_value(page) || xas_get_mark(&xas, HEAPDEV_MARK_NEW) ||
		    xas_get_mark(&xas, HEAPDEV_MARK_SHARED))
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

/*
 * Whether @vma maps heap offsets of @heap, and which: [*vfirst, *vlast] of
 * the window (page offsets in the file, not in the heap).
 */
static bool heapdev_vma_of(struct heapdev_heap *heap,
			   struct vm_area_struct *vma, pgoff_t *vfirst,
			   pgoff_t *vlast)
{
	if (vma->vm_ops != &heapdev_vm_ops || vma->vm_private_data != heap)
		return false;
	*vfirst = vma->vm_pgoff;
	*vlast = *vfirst + vma_pages(vma) - 1;
	return true;
}

/**
 * heapdev_heap_populate - map committed pages into the caller's mappings
 * @heap: the heap
 * @first: first page offset in the heap
 * @count: number of pages
 *
 * Best effort: a failure only means the pages are mapped on first touch.
 * The heap's latest mapping is tried first; only a range it does not cover
 * makes populate look at every VMA of the process.
 */
void heapdev_heap_populate(struct heapdev_heap *heap, pgoff_t first,
			   unsigned long count)
{
	pgoff_t start = heap->base + first, end = start + count - 1;
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	pgoff_t vfirst, vlast;

	if (!atomic_read(&heap->mappings))
		return;

	mmap_read_lock(mm);
	down_read(&heap->fault_lock);
	if (heap->dead)
		goto out_unlock;
	vma = vma_lookup(mm, READ_ONCE(heap->map_hint));
	if (vma && heapdev_vma_of(heap, vma, &vfirst, &vlast) &&
	    vfirst <= start && vlast >= end) {
		heapdev_map_range(heap, vma, first, count + first - 1);
		goto out_unlock;
	}
	for (vma = find_vma(mm, 0); vma; vma = find_vma(mm, vma->vm_end)) {
		if (!heapdev_vma_of(heap, vma, &vfirst, &vlast) ||
		    vlast < start || vfirst > end)
			continue;
		heapdev_map_range(heap, vma, max(start, vfirst) - heap->base,
				  min(end, vlast) - heap->base);
	}
out_unlock:
	up_read(&heap->fault_lock);
	mmap_read_unlock(mm);
}

/*
 * The committed page at @index for a fault, allocated now if it was
 * committed lazily, copied now if a fork shared it.  Called with
 * heap->fault_lock held for read, so no decommit or destroy takes the
 * entry away meanwhile; two faults on the same lazy entry race through
 * the cmpxchg and the loser frees its page.  Pages of a commit still in
 * progress are not committed yet.
 *
 * Return: the page, or NULL with *@ret set.
 */
static struct page *heapdev_fault_page(struct heapdev_heap *heap,
				       pgoff_t index, vm_fault_t *ret)
{
	XA_STATE(xas, &heap->pages, index);
	struct page *page;
	bool new, shared;
	void *old;

	*ret = VM_FAULT_SIGBUS;
	if (heap->dead)
		return NULL;
	/* One walk for the entry and its marks. */
	rcu_read_lock();
	do {
		page = xas_load(&xas);
	} while (xas_retry(&xas, page));
	new = page && xas_get_mark(&xas, HEAPDEV_MARK_NEW);
	shared = page && xas_get_mark(&xas, HEAPDEV_MARK_SHARED);
	rcu_read_unlock();
	if (!page || new)
		return NULL;
	if (unlikely(shared) && !xa_is_value(page))
		return heapdev_fork_unshare(heap, index, page, ret);
	if (!xa_is_value(page))
		return page;

	page = alloc_page(HEAPDEV_FAULT_GFP);
	if (!page) {
		*ret = VM_FAULT_OOM;
		return NULL;
	}
	/* Replacing an entry allocates nothing. */
	old = xa_cmpxchg(&heap->pages, index, HEAPDEV_LAZY, page, GFP_NOWAIT);
	if (old == HEAPDEV_LAZY) {
		atomic_long_inc(&heap->resident);
		return page;
	}
	__free_page(page);
	if (!old || xa_is_value(old) || xa_is_err(old))
		return NULL;
	return old;	/* another fault allocated it first */
}

static vm_fault_t heapdev_vm_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct heapdev_heap *heap = vma->vm_private_data;
	pgoff_t index = vmf->pgoff - heap->base;
	vm_fault_t ret;
	struct page *page;

	/*
	 * A mapping inherited without a copy of its heap (MADV_DOFORK on a
	 * heap without HEAPDEV_HEAP_INHERIT, or a copy that failed at the
	 * fork) belongs to the owner only.
	 */
	if (vma->vm_mm != heap->file->mm)
		return VM_FAULT_SIGBUS;
	if (unlikely(!READ_ONCE(heap->file->pid)))
		heapdev_fork_claim(heap->file);

	down_read(&heap->fault_lock);
	page = heapdev_fault_page(heap, index, &ret);
	if (page) {
		pgoff_t vfirst = vma->vm_pgoff - heap->base;
		pgoff_t vlast = vfirst + vma_pages(vma) - 1;
		pgoff_t first = round_down(index, HEAPDEV_FAULT_AROUND);
		pgoff_t last = first + HEAPDEV_FAULT_AROUND - 1;

		ret = heapdev_insert_one(vma, vmf->address, page);
		if (ret == VM_FAULT_NOPAGE)
			heapdev_map_range(heap, vma, max(first, vfirst),
					  min(last, vlast));
	}
	up_read(&heap->fault_lock);
	return ret;
}

/*
 * A new VMA of the heap: an mmap, a split, a move, or fork() copying the
 * VMA into a child (vm_mm is then the child's), which for an inheritable
 * heap maps the child's copy of it instead (fork.c).
 */
static void heapdev_vm_open(struct vm_area_struct *vma)
{
	struct heapdev_heap *heap = vma->vm_private_data;

	if (vma->vm_mm != heap->file->mm &&
	    (heap->flags & HEAPDEV_HEAP_INHERIT)) {
		struct heapdev_heap *copy = heapdev_fork_heap(heap, vma->vm_mm);

		if (copy) {
			heap = copy;
			vma->vm_private_data = heap;
			WRITE_ONCE(heap->map_hint, vma->vm_start);
		}
	}
	kref_get(&heap->ref);
	atomic_inc(&heap->mappings);
	if (heap->file->root && vma->vm_mm == heap->file->mm)
		atomic_inc(&heap->file->vmas);
}

static void heapdev_vm_close(struct vm_area_struct *vma)
{
	struct heapdev_heap *heap = vma->vm_private_data;
	struct heapdev_file *hf = heap->file;

	atomic_dec(&heap->mappings);
	/*
	 * A child's address space is torn down (exit, exec), or its fork
	 * failed (7.2 tears the new VMAs down in dup_mmap(), while mm_users
	 * is still 1; a child that never ran has no pid yet): its copies go.
	 */
	if (hf->root && vma->vm_mm == hf->mm &&
	    atomic_dec_and_test(&hf->vmas) &&
	    (!atomic_read(&vma->vm_mm->mm_users) || !READ_ONCE(hf->pid)))
		heapdev_fork_end(hf);
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
	/*
	 * fork() copies the VMA of an inheritable heap without its page
	 * tables (the child maps its own copy of the heap); other heaps'
	 * VMAs are not copied at all, and not their page tables either
	 * when MADV_DOFORK asks for the VMA.
	 */
	if (heap->flags & HEAPDEV_HEAP_INHERIT)
		vm_flags_set(vma, VM_WIPEONFORK);
	else
		vm_flags_set(vma, VM_DONTCOPY | VM_WIPEONFORK);
	vm_flags_set(vma, VM_DONTEXPAND | VM_MIXEDMAP);
	vma->vm_ops = &heapdev_vm_ops;
	vma->vm_private_data = heap;
	WRITE_ONCE(heap->map_hint, vma->vm_start);
	heapdev_vm_open(vma);
	return 0;
}
