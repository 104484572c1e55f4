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
 *                         index = page offset in the heap's window).
 *
 * A heap is referenced by its id in the file (until destroyed) and by each
 * VMA mapping it.  A VMA also pins the struct file, so a heapdev_file is
 * released only after every mapping is gone, and therefore after every heap
 * of the file has been freed.
 */
#ifndef _HEAPDEV_INTERNAL_H
#define _HEAPDEV_INTERNAL_H

#include <linux/bits.h>
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
 * @node: entry in the global list of files, for the admin view
 * @lock: protects @heaps and @nr_heaps
 * @heaps: heap id to struct heapdev_heap
 * @next_id: cursor for cyclic id allocation
 * @nr_heaps: number of heaps in @heaps
 * @committed: pages committed by all heaps of this file
 * @mm: the owner's address space (mmgrab'ed); nothing else may use the file
 * @pid: the owner's thread-group pid
 * @uid: the owner's effective uid at open
 * @user: per-user accounting of @uid
 * @inode: private inode whose address_space holds every mapping of the file
 * @comm: the owner's command name at open
 */
struct heapdev_file {
	struct list_head node;
	struct mutex lock;		/* protects heaps, nr_heaps, next_id */
	struct xarray heaps;
	u32 next_id;
	unsigned int nr_heaps;
	atomic_long_t committed;
	struct mm_struct *mm;
	struct pid *pid;
	kuid_t uid;
	struct heapdev_user *user;
	struct inode *inode;
	char comm[TASK_COMM_LEN];
};

/**
 * struct heapdev_heap - one heap
 * @ref: one reference for the id in the file, one per VMA
 * @file: the file the heap was created in; outlives the heap
 * @lock: serialises commit, decommit and destroy
 * @fault_lock: read by faults and populate, written by decommit and destroy,
 *	so that no page is mapped after it left @pages
 * @pages: committed pages by page offset in the heap
 * @nr_pages: committed pages (written under @lock)
 * @base: first page offset of the heap's window in the file
 * @window_pages: size of the reservation in pages
 * @max_pages: fixed size in pages, 0 for growable heaps
 * @id: the heap id
 * @flags: enum heapdev_heap_flags
 * @mappings: number of VMAs mapping the heap
 * @dead: set once destroyed; no page is committed after that
 */
struct heapdev_heap {
	struct kref ref;
	struct heapdev_file *file;
	struct mutex lock;		/* serialises commit/decommit/kill */
	struct rw_semaphore fault_lock;
	struct xarray pages;
	unsigned long nr_pages;
	pgoff_t base;
	unsigned long window_pages;
	unsigned long max_pages;
	u32 id;
	u32 flags;
	atomic_t mappings;
	bool dead;
};

/* Module-wide counters, shown in sysfs so that tests can prove no leak. */
extern atomic_long_t heapdev_pages_held;
extern atomic_long_t heapdev_heaps_alive;
extern atomic_long_t heapdev_files_open;

/* Global list of open files, for the admin view. */
extern struct list_head heapdev_files;
extern struct mutex heapdev_files_lock;

/* heap.c */
struct heapdev_heap *heapdev_heap_alloc(struct heapdev_file *hf, u32 flags,
					unsigned long max_pages);
void heapdev_heap_put(struct heapdev_heap *heap);
int heapdev_heap_commit(struct heapdev_heap *heap, pgoff_t first,
			unsigned long count, unsigned long *changed);
int heapdev_heap_decommit(struct heapdev_heap *heap, pgoff_t first,
			  unsigned long count, unsigned long *changed);
void heapdev_heap_populate(struct heapdev_heap *heap, pgoff_t first,
			   unsigned long count);
void heapdev_heap_kill(struct heapdev_heap *heap);
int heapdev_heap_mmap(struct heapdev_heap *heap, struct vm_area_struct *vma);

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
void heapdev_uncharge(struct heapdev_heap *heap, unsigned long pages);

/* procfs.c */
int heapdev_proc_init(void);
void heapdev_proc_exit(void);

#endif /* _HEAPDEV_INTERNAL_H */
