// SPDX-License-Identifier: GPL-2.0-only
/*
 * heapdev: the heaps a forked child inherits (HEAPDEV_HEAP_INHERIT).
 *
 * fork() copies each VMA of an inheritable heap into the child without its
 * page tables (VM_WIPEONFORK) and calls its ->open() with the child's mm.
 * The first such VMA of a heap makes the child's copy of the heap there and
 * then (heapdev_heap_copy()): a heap object with the same id and window,
 * charged to the child, holding a private copy of every committed page;
 * the child's VMAs map the copy from then on.  Like the copy of anonymous
 * memory at fork, the copy is made under the parent's mmap_lock, so no
 * fault of the parent runs meanwhile; unlike it, the pages are copied at
 * once rather than shared copy-on-write.
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
 * exec): the close of its last VMA then sees mm_users at 0.  A child that
 * unmapped every heap before that keeps its copies until the root is
 * released, or until the next fork from the root reaps them.
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

/* A child's copy of a page at fork: overwritten at once, so not zeroed. */
#define HEAPDEV_COPY_GFP	(GFP_HIGHUSER | __GFP_ACCOUNT | \
				 __GFP_RETRY_MAYFAIL | __GFP_NOWARN)

/*
 * One entry of a heap copy: a lazy entry stays lazy, a page is copied
 * into a new one.  Returns the entry, or NULL without memory.
 */
static void *heapdev_copy_entry(void *entry)
{
	struct page *page;

	if (xa_is_value(entry))
		return entry;
	page = alloc_page(HEAPDEV_COPY_GFP);
	if (page)
		copy_highpage(page, entry);
	return page;
}

/**
 * heapdev_heap_copy - a fork child's copy of a heap
 * @src: the parent's heap
 * @ff: the child's fork file, which the copy will belong to
 *
 * Every committed page of @src is copied (a lazily committed page not
 * touched yet stays lazy) and charged to @ff like a commit.  Called at
 * fork, under the parent's and the child's mmap_lock: @src's fault_lock
 * keeps decommit and destroy out meanwhile; pages of a commit still in
 * progress are not committed yet and are left out.
 *
 * Return: the copy with one reference (for its id, not yet in @ff), or
 * NULL when a limit or the memory does not allow it.
 */
static struct heapdev_heap *heapdev_heap_copy(struct heapdev_heap *src,
					      struct heapdev_file *ff)
{
	struct heapdev_heap *heap;
	unsigned long index;
	void *entry, *copy;
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
		ret = heapdev_charge(heap, 1);
		if (ret)
			break;
		copy = heapdev_copy_entry(entry);
		ret = copy ? xa_err(xa_store(&heap->pages, index, copy,
					     HEAPDEV_META_GFP)) : -ENOMEM;
		if (ret) {
			if (copy && !xa_is_value(copy))
				__free_page(copy);
			heapdev_uncharge(ff, 1);
			break;
		}
		heap->nr_pages++;
		if (!xa_is_value(copy))
			atomic_long_inc(&heap->resident);
		if (fatal_signal_pending(current))
			ret = -EINTR;
		cond_resched();
	}
	up_read(&src->fault_lock);
	mutex_unlock(&heap->lock);
	if (ret) {
		heap->dead = true;
		heapdev_heap_drain(heap, false);
		heapdev_heap_put(heap);
		return NULL;
	}
	return heap;
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
		if (ff->mm == mm) {
			found = ff;
			break;
		}
		if (!dead && heapdev_fork_dead(ff))
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
		heapdev_heap_kill(heap, false);
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
