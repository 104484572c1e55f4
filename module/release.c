// SPDX-License-Identifier: GPL-2.0-only
/*
 * heapdev: giving pages back in the background.
 *
 * Freeing a page (memcg uncharge, return to the buddy allocator) costs far
 * more than taking it out of a heap, so a caller that destroys a heap or
 * decommits a large range with HEAPDEV_{DESTROY,DECOMMIT}_ASYNC does only
 * the part that makes the pages unreachable: it unmaps them from every
 * mapping and takes them out of the heap.  Freeing them is left to a work
 * item, in the shape of mmu_gather's page batches and of kfree_rcu's
 * deferred frees:
 *
 *  - a destroyed heap is queued whole.  It is dead (nothing commits into
 *    it, no fault maps anything), so its xarray belongs to the releaser and
 *    the hand-over costs nothing and cannot fail;
 *  - a decommit gathers its pages into page-sized batches.  When a batch
 *    cannot be allocated the pages are released at once instead, so the
 *    asynchronous path never fails where the synchronous one would not.
 *
 * Until a page is freed it stays counted: it is still allocated, so the
 * memory cgroup keeps its charge; it still counts against the file's and
 * the user's limits and in heapdev_pages_held; a destroyed heap stays in
 * the admin view with the flag 'D'.  Destroying and recreating in a loop
 * therefore cannot overrun a limit.  A commit that would fail a limit or an
 * allocation while releases are pending waits for them once
 * (heapdev_release_wait()) and tries again, so a caller never sees an
 * error that synchronous release would not have given.
 *
 * The queue is drained by one delayed work item on an unbound
 * WQ_MEM_RECLAIM workqueue (its rescuer keeps it going when kworkers cannot
 * be created under memory pressure, which is when freeing matters most),
 * started a jiffy after a release is queued, and module unload flushes it
 * and destroys the workqueue before checking for leaks.
 * The worker takes no heap lock: it only touches dead heaps and batches,
 * and the file lock for the admin view's list, so waiting for it under a
 * heap's lock is safe.
 */

#include <linux/gfp.h>
#include <linux/list.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>

#include "heapdev_internal.h"

static bool async_release;
module_param(async_release, bool, 0644);
MODULE_PARM_DESC(async_release,
		 "Release pages in the background even when a destroy or decommit does not ask (default: N)");

/**
 * struct heapdev_batch - pages of a decommit waiting to be freed
 * @node: entry in heapdev_release_batches
 * @hf: the file the pages are charged to (referenced)
 * @nr: number of pages in @pages
 * @pages: the pages, each holding the heap's reference
 */
struct heapdev_batch {
	struct list_head node;
	struct heapdev_file *hf;
	unsigned int nr;
	struct page *pages[];
};

/* A batch fills one page, as an mmu_gather batch does. */
#define HEAPDEV_BATCH_PAGES \
	((PAGE_SIZE - sizeof(struct heapdev_batch)) / sizeof(struct page *))

atomic_long_t heapdev_pages_releasing = ATOMIC_LONG_INIT(0);

static struct workqueue_struct *heapdev_release_wq;
/* Protects the two queues below. */
static DEFINE_SPINLOCK(heapdev_release_lock);
static LIST_HEAD(heapdev_release_heaps);
static LIST_HEAD(heapdev_release_batches);

/* How long the worker waits before it starts, in jiffies. */
#define HEAPDEV_RELEASE_DELAY	1

static void heapdev_release_fn(struct work_struct *work);
static DECLARE_DELAYED_WORK(heapdev_release_work, heapdev_release_fn);

/*
 * Start the worker a jiffy from now unless it is already due: the caller
 * goes on without the worker competing for its CPU, and releases that come
 * close together are freed in one run (kfree_rcu batches the same way).
 */
static void heapdev_release_kick(void)
{
	queue_delayed_work(heapdev_release_wq, &heapdev_release_work,
			   HEAPDEV_RELEASE_DELAY);
}

/**
 * heapdev_release_async - whether a release goes to the background
 * @asked: the caller passed HEAPDEV_*_ASYNC
 */
bool heapdev_release_async(bool asked)
{
	return asked || READ_ONCE(async_release);
}

/**
 * heapdev_batch_alloc - start a batch of pages to free in the background
 * @hf: the file the pages are charged to
 * @pages: out: where to store the pages
 * @capacity: out: how many fit
 *
 * May be called with a heap's locks held: it does not wait for reclaim.
 *
 * Return: the batch, or NULL when none could be allocated (then release
 * the pages at once).
 */
struct heapdev_batch *heapdev_batch_alloc(struct heapdev_file *hf,
					  struct page ***pages,
					  unsigned int *capacity)
{
	struct heapdev_batch *batch;

	batch = kmalloc(PAGE_SIZE, GFP_KERNEL_ACCOUNT | __GFP_NORETRY |
			__GFP_NOWARN);
	if (!batch)
		return NULL;
	heapdev_file_get(hf);
	batch->hf = hf;
	batch->nr = 0;
	*pages = batch->pages;
	*capacity = HEAPDEV_BATCH_PAGES;
	return batch;
}

static void heapdev_batch_free(struct heapdev_batch *batch)
{
	heapdev_file_put(batch->hf);
	kfree(batch);
}

/**
 * heapdev_batch_queue - hand a batch's pages to the background release
 * @batch: from heapdev_batch_alloc()
 * @nr: pages stored in it; they stay charged until freed
 */
void heapdev_batch_queue(struct heapdev_batch *batch, unsigned int nr)
{
	if (!nr) {
		heapdev_batch_free(batch);
		return;
	}
	batch->nr = nr;
	atomic_long_add(nr, &heapdev_pages_releasing);
	spin_lock(&heapdev_release_lock);
	list_add_tail(&batch->node, &heapdev_release_batches);
	spin_unlock(&heapdev_release_lock);
	heapdev_release_kick();
}

/**
 * heapdev_release_heap - free a destroyed heap's pages in the background
 * @heap: dead, unmapped from every VMA; its pages stay charged until freed
 *
 * The releaser takes a reference on the heap and lists it in its file's
 * dying heaps, for the admin view.
 */
void heapdev_release_heap(struct heapdev_heap *heap)
{
	struct heapdev_file *hf = heap->file;

	kref_get(&heap->ref);
	atomic_long_add(READ_ONCE(heap->nr_pages), &heapdev_pages_releasing);
	mutex_lock(&hf->lock);
	list_add_tail(&heap->dying_node, &hf->dying);
	mutex_unlock(&hf->lock);
	spin_lock(&heapdev_release_lock);
	list_add_tail(&heap->release_node, &heapdev_release_heaps);
	spin_unlock(&heapdev_release_lock);
	heapdev_release_kick();
}

static void heapdev_release_batch(struct heapdev_batch *batch)
{
	release_pages(batch->pages, batch->nr);
	heapdev_uncharge(batch->hf, batch->nr);
	atomic_long_sub(batch->nr, &heapdev_pages_releasing);
	heapdev_batch_free(batch);
}

static void heapdev_release_dead(struct heapdev_heap *heap)
{
	struct heapdev_file *hf = heap->file;

	/* Dead: no fault maps a page, so what is zapped stays unmapped. */
	if (heap->zap_later) {
		heapdev_heap_zap(heap);
		iput(hf->inode);
	}
	heapdev_heap_drain(heap, true);
	mutex_lock(&hf->lock);
	list_del(&heap->dying_node);
	mutex_unlock(&hf->lock);
	heapdev_heap_put(heap);
}

/* Drain both queues, batches first: they are cheap and bounded. */
static void heapdev_release_fn(struct work_struct *work)
{
	struct heapdev_batch *batch;
	struct heapdev_heap *heap;

	for (;;) {
		spin_lock(&heapdev_release_lock);
		batch = list_first_entry_or_null(&heapdev_release_batches,
						 struct heapdev_batch, node);
		heap = NULL;
		if (batch)
			list_del(&batch->node);
		else
			heap = list_first_entry_or_null(&heapdev_release_heaps,
							struct heapdev_heap,
							release_node);
		if (heap)
			list_del(&heap->release_node);
		spin_unlock(&heapdev_release_lock);

		if (batch)
			heapdev_release_batch(batch);
		else if (heap)
			heapdev_release_dead(heap);
		else
			break;
		cond_resched();
	}
}

/**
 * heapdev_release_wait - wait for the pages being released, if any
 *
 * For a commit about to fail a limit or an allocation: pages still waiting
 * for the background release may be what stands in the way.  May be called
 * with a heap's locks held (the worker takes none of them).
 *
 * Return: true if there was something to wait for (so trying again may
 * succeed), false otherwise.
 */
bool heapdev_release_wait(void)
{
	if (!atomic_long_read(&heapdev_pages_releasing))
		return false;
	flush_delayed_work(&heapdev_release_work);
	return true;
}

int heapdev_release_init(void)
{
	heapdev_release_wq = alloc_workqueue("heapdev_release",
					     WQ_UNBOUND | WQ_MEM_RECLAIM, 0);
	return heapdev_release_wq ? 0 : -ENOMEM;
}

/* At unload: free what is still queued (a pending timer included), then stop. */
void heapdev_release_exit(void)
{
	flush_delayed_work(&heapdev_release_work);
	destroy_workqueue(heapdev_release_wq);
}
