// SPDX-License-Identifier: GPL-2.0-only
/*
 * heapdev: the heaps a forked child inherits (HEAPDEV_HEAP_INHERIT).
 *
 * fork() copies each VMA of an inheritable heap into the child without its
 * page tables (VM_WIPEONFORK) and calls its ->open() with the child's mm.
 * The first such VMA of a heap makes the child's copy of the heap there and
 * then (heapdev_heap_copy()): a heap object with the same id and window,
 * charged to the child, whose pages are the parent's, shared until the
 * first fault on each in either process copies it (copy on access, as
 * anonymous memory is copied on write); the child's VMAs map the copy
 * from then on.  Like the copy of anonymous memory, it is made under the
 * parent's mmap_lock, so no fault of the parent runs meanwhile, and every
 * page table entry of the parent's heap is zapped, so that its next
 * access faults.
 *
 * The copies belong to a fork file, a struct heapdev_file owned by the
 * child's mm and listed on the opened file whose descriptor the child
 * inherited (its root; a grandchild's fork file hangs off the same root).
 * The child's ioctls and mmaps on that descriptor act on its fork file.
 * Every mapping of a fork file lives in the root's address_space, as the
 * child's VMAs do: a decommit in one process also zaps the others' page
 * tables over the same range, which only costs them a fault.
 *
 * A fork file ends when the child's address space is torn down (exit or
 * exec): the close of its last VMA then sees mm_users at 0; or when the
 * fork failed after the copies were made (Linux 7.2 closes the new VMAs
 * in dup_mmap() itself): the close of its last VMA then finds no pid, as
 * the child never ran.  A child that unmapped every heap before its end
 * keeps its copies until the root is released, or until a later fork or
 * lookup on the root reaps them.
 *
 * Locking: a root's @lock protects its @forks list and nests inside
 * mmap_lock (fork holds both mms' locks); heapdev_files_lock nests outside
 * it.
 */

#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>

#include "../uapi/heapdev.h"
#include "heapdev_internal.h"

/* Pages charged at once to a heap copy at fork. */
#define HEAPDEV_COPY_BATCH	64

/**
 * heapdev_heap_copy - a fork child's copy of a heap
 * @src: the parent's heap
 * @ff: the child's fork file, which the copy will belong to
 *
 * Every committed page of @src goes into the copy too, marked shared in
 * both heaps, and is charged to @ff like a commit (a lazily committed page
 * not touched yet stays lazy in both).  The first fault on a shared page,
 * in either process, copies it unless the other heap let go of it
 * (heapdev_fork_unshare()); so that those faults happen, every page table
 * entry of @src's window is zapped.  Called at fork, under the parent's
 * and the child's mmap_lock, so no fault of the parent maps a page
 * meanwhile; @src's fault_lock keeps decommit and destroy out; pages of a
 * commit still in progress are not committed yet and are left out.
 *
 * Return: the copy with one reference (for its id, not yet in @ff), or
 * NULL when a limit or the memory does not allow it.
 */
static struct heapdev_heap *heapdev_heap_copy(struct heapdev_heap *src,
					      struct heapdev_file *ff)
{
	unsigned long index, shared = 0, budget = 0;
	struct heapdev_heap *heap;
	void *entry;
	int ret = 0;

	heap = heapdev_heap_alloc(ff, src->flags, src->max_pages);
	if (!heap)
		return NULL;
	heap->id = src->id;
	heap->base = src->base;

	mutex_lock(&heap->lock);
	down_read(&src->fault_lock);
	if (src->dead)
		ret = -ENOENT;
	xa_for_each(&src->pages, index, entry) {
		if (ret)
			break;
		if (xa_get_mark(&src->pages, index, HEAPDEV_MARK_NEW))
			continue;
		/* Charged ahead in batches, the rest given back at the end. */
		if (!budget) {
			budget = HEAPDEV_COPY_BATCH;
			if (heapdev_charge(heap, budget)) {
				budget = 1;	/* near a limit: page by page */
				ret = heapdev_charge(heap, budget);
				if (ret) {
					budget = 0;
					break;
				}
			}
		}
		if (!xa_is_value(entry))
			get_page(entry);
		ret = xa_err(xa_store(&heap->pages, index, entry,
				      HEAPDEV_META_GFP));
		if (ret) {
			if (!xa_is_value(entry))
				put_page(entry);
			break;
		}
		budget--;
		heap->nr_pages++;
		if (!xa_is_value(entry)) {
			xa_set_mark(&heap->pages, index, HEAPDEV_MARK_SHARED);
			xa_set_mark(&src->pages, index, HEAPDEV_MARK_SHARED);
			atomic_long_inc(&heap->resident);
			shared++;
		}
		if (fatal_signal_pending(current))
			ret = -EINTR;
		cond_resched();
	}
	up_read(&src->fault_lock);
	heapdev_uncharge(ff, budget);
	mutex_unlock(&heap->lock);
	/* Marks left on @src after a failure only cost a fault each. */
	if (shared)
		heapdev_heap_zap(src);
	if (ret) {
		heap->dead = true;
		heapdev_heap_drain(heap, false);
		heapdev_heap_put(heap);
		return NULL;
	}
	return heap;
}

/* The copy of a page a fork shared, at a fault: overwritten at once. */
#define HEAPDEV_COW_GFP		(GFP_HIGHUSER | __GFP_ACCOUNT | __GFP_NOWARN)

/*
 * A page a fork left in this heap and another (HEAPDEV_MARK_SHARED): this
 * heap's own from now on.  When no other heap, mapping or pin holds it any
 * more (the other process copied it, exited or exec'ed), it is only
 * unmarked; otherwise it is copied and the copy replaces it here.  Called
 * with heap->fault_lock held for read: the entry stays meanwhile, except
 * that a racing fault may replace it first.
 */
struct page *heapdev_fork_unshare(struct heapdev_heap *heap, pgoff_t index,
				  struct page *page, vm_fault_t *ret)
{
	XA_STATE(xas, &heap->pages, index);
	struct page *copy = NULL;
	void *cur;

	if (page_ref_count(page) > 1) {
		copy = alloc_page(HEAPDEV_COW_GFP);
		if (!copy) {
			*ret = VM_FAULT_OOM;
			return NULL;
		}
		copy_highpage(copy, page);
	}
	xas_lock(&xas);
	cur = xas_load(&xas);
	if (cur == page && xas_get_mark(&xas, HEAPDEV_MARK_SHARED)) {
		if (copy)
			xas_store(&xas, copy);	/* replaces: allocates nothing */
		xas_clear_mark(&xas, HEAPDEV_MARK_SHARED);
	} else {
		/* Another fault of this heap got there first. */
		if (copy)
			__free_page(copy);
		copy = NULL;
		page = cur;
	}
	xas_unlock(&xas);
	if (!copy)
		return page && !xa_is_value(page) ? page : NULL;
	put_page(page);
	return copy;
}

/* Whether fork file @ff's address space is gone (exit or exec). */
static bool heapdev_fork_dead(struct heapdev_file *ff)
{
	return !atomic_read(&ff->mm->mm_users);
}

/* A new fork file of @root for @mm, listed; called with @root's lock. */
static struct heapdev_file *heapdev_fork_new(struct heapdev_file *root,
					     struct mm_struct *mm)
{
	struct heapdev_file *ff;

	lockdep_assert_held(&root->lock);

	ff = kzalloc(sizeof(*ff), GFP_KERNEL_ACCOUNT);
	if (!ff)
		return NULL;
	/* The creds of the forking task are the child's. */
	ff->uid = current_euid();
	ff->user = heapdev_user_get(ff->uid);
	if (!ff->user) {
		kfree(ff);
		return NULL;
	}
	kref_init(&ff->ref);		/* dropped by heapdev_fork_end() */
	mutex_init(&ff->lock);
	xa_init_flags(&ff->heaps, XA_FLAGS_ALLOC1);
	INIT_LIST_HEAD(&ff->dying);
	INIT_LIST_HEAD(&ff->forks);
	atomic_long_set(&ff->committed, 0);
	atomic_set(&ff->vmas, 0);
	ff->mm = mm;
	mmgrab(mm);
	/* The child has no pid yet: heapdev_fork_claim() sets it. */
	get_task_comm(ff->comm, current);
	ihold(root->inode);
	ff->inode = root->inode;
	heapdev_file_get(root);
	ff->root = root;
	list_add_tail(&ff->fork_node, &root->forks);
	INIT_LIST_HEAD(&ff->node);	/* heapdev_files: see heapdev_fork_get() */
	atomic_long_inc(&heapdev_files_open);
	return ff;
}

/*
 * The fork file of @root for @mm (referenced), created when @create; NULL
 * if there is none (or no memory).  Fork files of dead address spaces met
 * on the way are ended.
 */
static struct heapdev_file *heapdev_fork_get(struct heapdev_file *root,
					     struct mm_struct *mm,
					     bool create)
{
	struct heapdev_file *ff, *found = NULL, *dead = NULL;
	bool made = false;

	mutex_lock(&root->lock);
	list_for_each_entry(ff, &root->forks, fork_node) {
		if (ff->mm == mm && !found)
			found = ff;
		else if (!dead && heapdev_fork_dead(ff))
			dead = ff;
	}
	if (!found && create) {
		found = heapdev_fork_new(root, mm);
		made = !!found;
	}
	if (found)
		heapdev_file_get(found);
	if (dead)
		heapdev_file_get(dead);
	mutex_unlock(&root->lock);

	/*
	 * The admin view's list nests outside every file's lock.  Nothing
	 * ends the new fork file meanwhile: its mm is alive, and the parent's
	 * VMA being copied keeps the root open.
	 */
	if (made) {
		mutex_lock(&heapdev_files_lock);
		list_add_tail(&found->node, &heapdev_files);
		mutex_unlock(&heapdev_files_lock);
	}

	if (dead) {
		heapdev_fork_end(dead);
		heapdev_file_put(dead);
	}
	return found;
}

/**
 * heapdev_fork_heap - the child's copy of an inheritable heap, at fork
 * @src: the heap a VMA being copied into the child maps
 * @mm: the child's mm
 *
 * Called from the VMA's ->open() in fork, under both mms' mmap_lock: the
 * child runs nothing yet, and the parent faults nothing.
 *
 * Return: the copy, owned by the child's fork file (which holds its id
 * reference), or NULL when none could be made: the VMA then keeps mapping
 * @src, which the child cannot fault (SIGBUS), and the child's fork file
 * has no heap of that id.
 */
struct heapdev_heap *heapdev_fork_heap(struct heapdev_heap *src,
				       struct mm_struct *mm)
{
	struct heapdev_file *root = src->file->root ?: src->file;
	struct heapdev_heap *heap = NULL;
	struct heapdev_file *ff;

	ff = heapdev_fork_get(root, mm, true);
	if (!ff)
		return NULL;

	mutex_lock(&ff->lock);
	heap = xa_load(&ff->heaps, src->id);
	mutex_unlock(&ff->lock);
	if (heap || ff->fork_failed)
		goto out;

	heap = heapdev_heap_copy(src, ff);
	mutex_lock(&ff->lock);
	if (heap && xa_insert(&ff->heaps, src->id, heap, GFP_KERNEL_ACCOUNT)) {
		mutex_unlock(&ff->lock);
		heapdev_heap_kill(heap, false, false);
		heapdev_heap_put(heap);
		mutex_lock(&ff->lock);
		heap = NULL;
	}
	if (heap) {
		ff->nr_heaps++;
		ff->next_id = max(ff->next_id, src->id);
	} else {
		ff->fork_failed = true;
	}
	mutex_unlock(&ff->lock);
out:
	heapdev_file_put(ff);
	return heap;
}

/**
 * heapdev_fork_lookup - the caller's fork file behind an inherited file
 * @hf: the file of the descriptor (a root)
 * @mm: the caller's mm, not @hf's
 *
 * Return: the fork file (referenced), or NULL when @mm inherited no heap
 * of @hf.
 */
struct heapdev_file *heapdev_fork_lookup(struct heapdev_file *hf,
					 struct mm_struct *mm)
{
	struct heapdev_file *ff;

	if (!mm || hf->root)
		return NULL;
	ff = heapdev_fork_get(hf, mm, false);
	if (ff && !READ_ONCE(ff->pid))
		heapdev_fork_claim(ff);
	return ff;
}

/**
 * heapdev_fork_claim - record the child's pid on its first call or fault
 * @ff: the calling child's fork file
 *
 * fork() makes the copies before the child has a pid; until the child
 * calls or touches its heaps, the admin view leaves it out.
 */
void heapdev_fork_claim(struct heapdev_file *ff)
{
	struct pid *pid = get_pid(task_tgid(current));

	if (cmpxchg(&ff->pid, NULL, pid))
		put_pid(pid);
}

/**
 * heapdev_fork_end - destroy a fork file's heaps and let it go
 * @ff: the fork file; its address space is gone, or so is its root's
 *	last descriptor
 *
 * Only the first call does anything.
 */
void heapdev_fork_end(struct heapdev_file *ff)
{
	struct heapdev_file *root = ff->root;
	bool listed;

	mutex_lock(&root->lock);
	listed = !list_empty(&ff->fork_node);
	list_del_init(&ff->fork_node);
	mutex_unlock(&root->lock);
	if (!listed)
		return;

	heapdev_file_kill_heaps(ff);
	iput(ff->inode);
	mmdrop(ff->mm);
	atomic_long_dec(&heapdev_files_open);
	heapdev_file_put(ff);
}

/**
 * heapdev_fork_end_all - end every fork file of a root being released
 * @root: the opened file; no VMA maps any of its heaps or of its copies
 */
void heapdev_fork_end_all(struct heapdev_file *root)
{
	struct heapdev_file *ff;

	for (;;) {
		mutex_lock(&root->lock);
		ff = list_first_entry_or_null(&root->forks, struct heapdev_file,
					      fork_node);
		if (ff)
			heapdev_file_get(ff);
		mutex_unlock(&root->lock);
		if (!ff)
			return;
		heapdev_fork_end(ff);
		heapdev_file_put(ff);
	}
}
