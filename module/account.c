// SPDX-License-Identifier: GPL-2.0-only
/*
 * heapdev: accounting of committed pages against the per-heap, per-file
 * and per-user limits.
 *
 * Committed pages are never swapped, so they are capped three ways on top
 * of the memory cgroup charge every page carries: per heap (its fixed size,
 * or the heap_limit_mb parameter), per open file (file_limit_mb) and per
 * user (user_limit_mb), the last one summed over every file of that user,
 * and heaps per open file are capped by max_heaps.  This file owns those
 * module parameters; everything else reads them through the helpers below.
 */

#include <linux/atomic.h>
#include <linux/hashtable.h>
#include <linux/mm.h>
#include <linux/moduleparam.h>
#include <linux/refcount.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

#include "heapdev_internal.h"

/**
 * struct heapdev_user - committed pages of one user
 * @node: entry in heapdev_users
 * @uid: the user
 * @ref: one per open file of the user
 * @pages: pages committed by all heaps of the user
 */
struct heapdev_user {
	struct hlist_node node;
	kuid_t uid;
	refcount_t ref;
	atomic_long_t pages;
};

static unsigned long heap_limit_mb;
module_param(heap_limit_mb, ulong, 0644);
MODULE_PARM_DESC(heap_limit_mb,
		 "Most MiB one heap may commit (default: half of RAM)");

static unsigned long file_limit_mb;
module_param(file_limit_mb, ulong, 0644);
MODULE_PARM_DESC(file_limit_mb,
		 "Most MiB the heaps of one open file may commit (default: half of RAM)");

static unsigned long user_limit_mb;
module_param(user_limit_mb, ulong, 0644);
MODULE_PARM_DESC(user_limit_mb,
		 "Most MiB the heaps of one user may commit (default: half of RAM)");

#define HEAPDEV_MAX_HEAPS_DEFAULT	65536
static unsigned int max_heaps = HEAPDEV_MAX_HEAPS_DEFAULT;
module_param(max_heaps, uint, 0644);
MODULE_PARM_DESC(max_heaps, "Most heaps one open file may hold (default: 65536)");

static unsigned long heapdev_mb_to_pages(unsigned long mb)
{
	if (mb > (ULONG_MAX >> (20 - PAGE_SHIFT)))
		return ULONG_MAX;
	return mb << (20 - PAGE_SHIFT);
}

/* Half of RAM, at least 1 MiB: what a limit of 0 stands for. */
static unsigned long heapdev_default_mb(void)
{
	return max(1UL, (totalram_pages() / 2) >> (20 - PAGE_SHIFT));
}

/* A limit parameter in pages; 0, at load time or written later, is the default. */
static unsigned long heapdev_limit_pages(const unsigned long *param)
{
	unsigned long mb = READ_ONCE(*param);

	return heapdev_mb_to_pages(mb ? mb : heapdev_default_mb());
}

unsigned long heapdev_heap_limit(void)
{
	return heapdev_limit_pages(&heap_limit_mb);
}

unsigned long heapdev_file_limit(void)
{
	return heapdev_limit_pages(&file_limit_mb);
}

unsigned long heapdev_user_limit(void)
{
	return heapdev_limit_pages(&user_limit_mb);
}

unsigned int heapdev_max_heaps(void)
{
	return READ_ONCE(max_heaps) ?: HEAPDEV_MAX_HEAPS_DEFAULT;
}

/* Show the default in sysfs rather than 0. */
static void heapdev_default_limit(unsigned long *mb)
{
	if (!*mb)
		*mb = heapdev_default_mb();
}

/* At load time: turn the limits left at 0 into their defaults. */
void heapdev_limits_init(void)
{
	heapdev_default_limit(&heap_limit_mb);
	heapdev_default_limit(&file_limit_mb);
	heapdev_default_limit(&user_limit_mb);
}

static DEFINE_HASHTABLE(heapdev_users, 6);
static DEFINE_SPINLOCK(heapdev_users_lock);

static struct heapdev_user *heapdev_user_find(kuid_t uid)
{
	struct heapdev_user *user;

	hash_for_each_possible(heapdev_users, user, node, __kuid_val(uid))
		if (uid_eq(user->uid, uid))
			return user;
	return NULL;
}

/**
 * heapdev_user_get - find or create the accounting record of a user
 * @uid: the user
 *
 * Return: a referenced record, or NULL when out of memory.
 */
struct heapdev_user *heapdev_user_get(kuid_t uid)
{
	struct heapdev_user *user, *fresh;

	fresh = kzalloc(sizeof(*fresh), GFP_KERNEL_ACCOUNT);
	if (!fresh)
		return NULL;

	spin_lock(&heapdev_users_lock);
	user = heapdev_user_find(uid);
	if (user) {
		refcount_inc(&user->ref);
	} else {
		user = fresh;
		fresh = NULL;
		user->uid = uid;
		refcount_set(&user->ref, 1);
		atomic_long_set(&user->pages, 0);
		hash_add(heapdev_users, &user->node, __kuid_val(uid));
	}
	spin_unlock(&heapdev_users_lock);

	kfree(fresh);
	return user;
}

void heapdev_user_put(struct heapdev_user *user)
{
	bool last;

	spin_lock(&heapdev_users_lock);
	last = refcount_dec_and_test(&user->ref);
	if (last)
		hash_del(&user->node);
	spin_unlock(&heapdev_users_lock);
	if (last)
		kfree(user);
}

unsigned long heapdev_user_committed(struct heapdev_user *user)
{
	return atomic_long_read(&user->pages);
}

/* Add @pages to @counter unless that would take it above @limit. */
static bool heapdev_counter_add(atomic_long_t *counter, unsigned long pages,
				unsigned long limit)
{
	long old = atomic_long_read(counter);

	do {
		if ((unsigned long)old + pages > limit ||
		    (unsigned long)old + pages < (unsigned long)old)
			return false;
	} while (!atomic_long_try_cmpxchg(counter, &old, old + pages));
	return true;
}

/**
 * heapdev_charge - account pages about to be committed to a heap
 * @heap: the heap; its lock must be held
 * @pages: number of pages
 *
 * Return: 0, or -EDQUOT when the heap, its file or its user would exceed
 * a limit; nothing is charged then.
 */
int heapdev_charge(struct heapdev_heap *heap, unsigned long pages)
{
	struct heapdev_file *hf = heap->file;
	unsigned long heap_max = heapdev_heap_limit();

	lockdep_assert_held(&heap->lock);

	if (heap->max_pages && heap->max_pages < heap_max)
		heap_max = heap->max_pages;
	if (pages > heap_max || heap->nr_pages > heap_max - pages)
		return -EDQUOT;
	if (!heapdev_counter_add(&hf->committed, pages, heapdev_file_limit()))
		return -EDQUOT;
	if (!heapdev_counter_add(&hf->user->pages, pages,
				 heapdev_user_limit())) {
		atomic_long_sub(pages, &hf->committed);
		return -EDQUOT;
	}
	atomic_long_add(pages, &heapdev_pages_held);
	return 0;
}

/**
 * heapdev_uncharge - undo heapdev_charge() for pages freed
 * @hf: the file of the heap the pages were committed to
 * @pages: number of pages
 */
void heapdev_uncharge(struct heapdev_file *hf, unsigned long pages)
{
	if (!pages)
		return;
	atomic_long_sub(pages, &hf->committed);
	atomic_long_sub(pages, &hf->user->pages);
	atomic_long_sub(pages, &heapdev_pages_held);
}
