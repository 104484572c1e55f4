/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * heapdev: internal structures shared by the module's files.
 *
 * Object model:
 *
 *   struct heapdev_file   one per open of /dev/heapdev; owns the heap ids,
 *                         the private address_space every mapping of the
 *                         file lives in, and the per-file accounting.
 *   struct heapdev_heap   one per heap; owns its committed pages (xarray
 *                         index = page offset in the heap's window; a
 *                         lazily committed page not touched yet is the
 *                         value entry HEAPDEV_LAZY).
 *
 * A heap is referenced by its id in the file (until destroyed), by each
 * VMA mapping it and, while its pages are released in the background, by
 * the releaser (release.c).  A VMA also pins the struct file, so the file
 * is released only after every mapping is gone.  struct heapdev_file is
 * refcounted on its own: the open file holds one reference and every heap
 * one, so that the accounting of pages still being released outlives the
 * file.
 *
 * A child created by fork() shares the parent's struct file.  Its copies of
 * the inheritable heaps (fork.c) live in a fork file: a struct
 * heapdev_file owned by the child's mm, listed on the opened file (its
 * root), which the child's ioctls and mmaps on the inherited descriptor
 * find through the root.
 */
#ifndef _HEAPDEV_INTERNAL_H
#define _HEAPDEV_INTERNAL_H

#include <linux/bits.h>
#include <linux/gfp.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mm_types.h>
#include <linux/mutex.h>
#include <linux/rwsem.h>
#include <linux/sched.h>
#include <linux/types.h>
#include <linux/uidgid.h>
#include <linux/xarray.h>

/* Each heap owns a 1 TiB window of its file's mmap offset space. */
#define HEAPDEV_WINDOW_SHIFT	40
#define HEAPDEV_WINDOW_PGSHIFT	(HEAPDEV_WINDOW_SHIFT - PAGE_SHIFT)
#define HEAPDEV_WINDOW_PAGES	BIT(HEAPDEV_WINDOW_PGSHIFT)
/* Heap ids stay below 2^23 so that every mmap offset fits in a loff_t. */
#define HEAPDEV_MAX_ID		((1U << (63 - HEAPDEV_WINDOW_SHIFT)) - 1)

struct heapdev_user;

/**
 * struct heapdev_file - state of one open of /dev/heapdev
 * @ref: one for the open file, one per heap
 * @node: entry in the global list of files, for the admin view; the entry
 *	stays until the last reference goes, so that heaps being released
 *	after the file was closed are still shown
 * @lock: protects @heaps, @nr_heaps, @next_id and @dying
 * @heaps: heap id to struct heapdev_heap
 * @dying: destroyed heaps whose pages are being released (admin view)
 * @next_id: cursor for cyclic id allocation
 * @nr_heaps: number of heaps in @heaps
 * @committed: pages committed by all heaps of this file, including pages
 *	decommitted or destroyed whose release is still pending
 * @mm: the owner's address space (mmgrab'ed until release); nothing else
 *	may use the file
 * @pid: the owner's thread-group pid
 * @uid: the owner's effective uid at open
 * @user: per-user accounting of @uid
 * @inode: private inode whose address_space holds every mapping of the
 *	file (until release)
 * @comm: the owner's command name at open
 * @root: for a fork file, the opened file whose descriptor the child
 *	inherited (referenced); NULL for an opened file
 * @forks: an opened file's fork files, under @lock
 * @fork_node: entry in @root's @forks; empty once the fork file ended
 * @vmas: a fork file's VMAs in its own mm, so that the close of the last
 *	one while the mm is torn down (exit, exec) ends the fork file
 * @fork_failed: a copy could not be made at the fork: no other heap is
 *	copied into this fork file (the child has none of them)
 */
struct heapdev_file {
	struct kref ref;
	struct list_head node;
	struct mutex lock;		/* protects heaps, nr_heaps, next_id, dying */
	struct xarray heaps;
	struct list_head dying;
	u32 next_id;
	unsigned int nr_heaps;
	atomic_long_t committed;
	struct mm_struct *mm;
	struct pid *pid;
	kuid_t uid;
	struct heapdev_user *user;
	struct inode *inode;
	char comm[TASK_COMM_LEN];
	struct heapdev_file *root;
	struct list_head forks;
	struct list_head fork_node;
	atomic_t vmas;
	bool fork_failed;
};

/**
 * struct heapdev_heap - one heap
 * @ref: one reference for the id in the file, one per VMA, one for the
 *	releaser while its pages are released in the background
 * @file: the file the heap was created in (referenced)
 * @lock: serialises commit, decommit and destroy
 * @fault_lock: read by faults and populate, written by decommit and destroy,
 *	so that no page is mapped after it left @pages
 * @pages: committed pages by page offset in the heap
 * @nr_pages: committed pages (written under @lock), lazy ones included
 * @resident: committed pages that exist: @nr_pages less the lazily
 *	committed pages not touched yet (raised by faults under @fault_lock)
 * @base: first page offset of the heap's window in the file
 * @window_pages: size of the reservation in pages
 * @max_pages: fixed size in pages, 0 for growable heaps
 * @id: the heap id
 * @flags: enum heapdev_heap_flags
 * @mappings: number of VMAs mapping the heap
 * @map_hint: vm_start of the heap's latest mapping, where populate looks
 *	first (checked under mmap_lock; a stale hint only costs a search)
 * @dead: set once destroyed (under @lock and @fault_lock): no page is
 *	committed or mapped after that, and @pages belongs to the releaser
 * @zap_later: dead, and its mappings are zapped by the releaser before it
 *	frees the pages (HEAPDEV_DESTROY_KEEP_MAPPINGS); the file's inode
 *	is held for it
 * @release_node: entry in the releaser's queue
 * @dying_node: entry in the file's @dying list while being released
 */
struct heapdev_heap {
	struct kref ref;
	struct heapdev_file *file;
	struct mutex lock;		/* serialises commit/decommit/kill */
	struct rw_semaphore fault_lock;
	struct xarray pages;
	unsigned long nr_pages;
	atomic_long_t resident;
	pgoff_t base;
	unsigned long window_pages;
	unsigned long max_pages;
	u32 id;
	u32 flags;
	atomic_t mappings;
	unsigned long map_hint;
	bool dead;
	bool zap_later;
	struct list_head release_node;
	struct list_head dying_node;
};

/* Metadata of heaps (xarray nodes): charged, allowed to fail quietly. */
#define HEAPDEV_META_GFP	(GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL | \
				 __GFP_NOWARN)

/* A committed page that does not exist yet (lazy commit, not touched). */
#define HEAPDEV_LAZY		xa_mk_value(0)

/* Marks pages inserted by a commit still in progress, for its rollback. */
#define HEAPDEV_MARK_NEW	XA_MARK_1

/*
 * Marks pages a fork left in more than one heap (fork.c): the first fault
 * on one copies it unless this heap is the only one left holding it.
 */
#define HEAPDEV_MARK_SHARED	XA_MARK_2

/*
 * Module-wide counters, shown in sysfs so that tests can prove no leak.
 * heapdev_pages_held counts every page the module holds, those waiting for
 * the background release included; heapdev_pages_releasing only those.
 */
extern atomic_long_t heapdev_pages_held;
extern atomic_long_t heapdev_pages_releasing;
extern atomic_long_t heapdev_heaps_alive;
extern atomic_long_t heapdev_files_open;

/* Global list of open files, for the admin view. */
extern struct list_head heapdev_files;
extern struct mutex heapdev_files_lock;

/* main.c */
void heapdev_file_put(struct heapdev_file *hf);
void heapdev_file_kill_heaps(struct heapdev_file *hf);

static inline void heapdev_file_get(struct heapdev_file *hf)
{
	kref_get(&hf->ref);
}

/* heap.c */
struct heapdev_heap *heapdev_heap_alloc(struct heapdev_file *hf, u32 flags,
					unsigned long max_pages);
void heapdev_heap_put(struct heapdev_heap *heap);
int heapdev_heap_commit(struct heapdev_heap *heap, pgoff_t first,
			unsigned long count, bool lazy,
			unsigned long *changed);
int heapdev_heap_decommit(struct heapdev_heap *heap, pgoff_t first,
			  unsigned long count, bool async,
			  unsigned long *changed);
void heapdev_heap_populate(struct heapdev_heap *heap, pgoff_t first,
			   unsigned long count);
void heapdev_heap_kill(struct heapdev_heap *heap, bool async, bool keep);
void heapdev_heap_drain(struct heapdev_heap *heap, bool queued);
int heapdev_heap_mmap(struct heapdev_heap *heap, struct vm_area_struct *vma);
void heapdev_heap_zap(struct heapdev_heap *heap);

/* fork.c */
struct heapdev_heap *heapdev_fork_heap(struct heapdev_heap *src,
				       struct mm_struct *mm);
struct heapdev_file *heapdev_fork_lookup(struct heapdev_file *root,
					 struct mm_struct *mm);
void heapdev_fork_claim(struct heapdev_file *ff);
void heapdev_fork_end(struct heapdev_file *ff);
void heapdev_fork_end_all(struct heapdev_file *root);
struct page *heapdev_fork_unshare(struct heapdev_heap *heap, pgoff_t index,
				  struct page *page, vm_fault_t *ret);

/* account.c: the limits (module parameters), in pages or heaps */
void heapdev_limits_init(void);
unsigned long heapdev_heap_limit(void);
unsigned long heapdev_file_limit(void);
unsigned long heapdev_user_limit(void);
unsigned int heapdev_max_heaps(void);
struct heapdev_user *heapdev_user_get(kuid_t uid);
void heapdev_user_put(struct heapdev_user *user);
unsigned long heapdev_user_committed(struct heapdev_user *user);
int heapdev_charge(struct heapdev_heap *heap, unsigned long pages);
void heapdev_uncharge(struct heapdev_file *hf, unsigned long pages);

/* release.c */
struct heapdev_batch;
int heapdev_release_init(void);
void heapdev_release_exit(void);
bool heapdev_release_async(bool asked);
struct heapdev_batch *heapdev_batch_alloc(struct heapdev_file *hf,
					  struct page ***pages,
					  unsigned int *capacity);
void heapdev_batch_queue(struct heapdev_batch *batch, unsigned int nr);
void heapdev_release_heap(struct heapdev_heap *heap);
bool heapdev_release_wait(void);

/* procfs.c */
int heapdev_proc_init(void);
void heapdev_proc_exit(void);

#endif /* _HEAPDEV_INTERNAL_H */
