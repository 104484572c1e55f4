// SPDX-License-Identifier: GPL-2.0-only
/*
 * heapdev: private, kernel-backed heaps for Linux processes.
 *
 * /dev/heapdev is a misc device.  Each open creates a heap namespace owned
 * by the opening process; heaps are created, committed, decommitted,
 * queried, listed and destroyed with the ioctls of uapi/heapdev.h and
 * mapped with mmap(MAP_SHARED) at the offset HEAPDEV_IOC_CREATE returns.
 *
 *	int fd = open("/dev/heapdev", O_RDWR | O_CLOEXEC);
 *	struct heapdev_create c = { .size = sizeof(c), .initial = 65536 };
 *	ioctl(fd, HEAPDEV_IOC_CREATE, &c);
 *	char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED,
 *		       fd, c.mmap_offset);
 *	p[0] = 1;		(committed: fine)
 *	p[65536] = 1;		(not committed: SIGBUS)
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mount.h>
#include <linux/nospec.h>
#include <linux/overflow.h>
#include <linux/pseudo_fs.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "../uapi/heapdev.h"
#include "compat.h"
#include "heapdev_internal.h"

#define HEAPDEV_FS_MAGIC	0x48504456	/* "HPDV" */

#define HEAPDEV_FEATURES	(HEAPDEV_FEAT_POPULATE | HEAPDEV_FEAT_EXEC | \
				 HEAPDEV_FEAT_LIST | HEAPDEV_FEAT_ASYNC_RELEASE | \
				 HEAPDEV_FEAT_LAZY_COMMIT | HEAPDEV_FEAT_INHERIT | \
				 HEAPDEV_FEAT_KEEP_MAPPINGS)

atomic_long_t heapdev_pages_held = ATOMIC_LONG_INIT(0);
atomic_long_t heapdev_heaps_alive = ATOMIC_LONG_INIT(0);
atomic_long_t heapdev_files_open = ATOMIC_LONG_INIT(0);

/* Every open file, for the admin view. */
LIST_HEAD(heapdev_files);
/* Protects heapdev_files; nests outside every heapdev_file's lock. */
DEFINE_MUTEX(heapdev_files_lock);

static struct vfsmount *heapdev_mnt;

static u64 heapdev_pages_to_bytes(unsigned long pages)
{
	if (pages > (U64_MAX >> PAGE_SHIFT))
		return U64_MAX;
	return (u64)pages << PAGE_SHIFT;
}

/* Look a heap up by id and take a reference on it. */
static struct heapdev_heap *heapdev_get_heap(struct heapdev_file *hf, u32 id)
{
	struct heapdev_heap *heap;

	mutex_lock(&hf->lock);
	heap = xa_load(&hf->heaps, id);
	if (heap)
		kref_get(&heap->ref);
	mutex_unlock(&hf->lock);
	return heap;
}

/*
 * Check a page range of a heap command.  Returns 0 and the range in pages,
 * or -EINVAL (unaligned, empty, outside the heap) or -EOVERFLOW (wraps).
 */
static int heapdev_check_range(struct heapdev_heap *heap, u64 offset,
			       u64 length, pgoff_t *first,
			       unsigned long *count)
{
	u64 end;

	if (!length || !PAGE_ALIGNED(offset) || !PAGE_ALIGNED(length))
		return -EINVAL;
	if (check_add_overflow(offset, length, &end))
		return -EOVERFLOW;
	if ((end >> PAGE_SHIFT) > heap->window_pages)
		return -EINVAL;
	*first = offset >> PAGE_SHIFT;
	*count = length >> PAGE_SHIFT;
	return 0;
}

static int heapdev_ioc_get_info(struct heapdev_file *hf, void *arg)
{
	struct heapdev_info *info = arg;

	if (info->flags || info->__pad)
		return -EINVAL;

	info->abi_version = HEAPDEV_ABI_VERSION;
	info->page_size = PAGE_SIZE;
	info->features = HEAPDEV_FEATURES;
	info->window_size = 1ULL << HEAPDEV_WINDOW_SHIFT;
	info->heap_limit = heapdev_pages_to_bytes(heapdev_heap_limit());
	info->file_limit = heapdev_pages_to_bytes(heapdev_file_limit());
	info->user_limit = heapdev_pages_to_bytes(heapdev_user_limit());
	info->max_heaps = heapdev_max_heaps();
	info->file_committed =
		heapdev_pages_to_bytes(atomic_long_read(&hf->committed));
	info->user_committed =
		heapdev_pages_to_bytes(heapdev_user_committed(hf->user));
	return 0;
}

static int heapdev_ioc_create(struct heapdev_file *hf, void *arg)
{
	struct heapdev_create *c = arg;
	unsigned long max_pages, initial_pages, changed;
	struct heapdev_heap *heap;
	u32 id;
	int ret;

	if ((c->flags & ~(HEAPDEV_HEAP_EXEC | HEAPDEV_HEAP_INHERIT)) ||
	    c->__pad)
		return -EINVAL;
	if (c->maximum > (1ULL << HEAPDEV_WINDOW_SHIFT) ||
	    c->initial > (1ULL << HEAPDEV_WINDOW_SHIFT))
		return -EINVAL;
	if (c->maximum && c->initial > c->maximum)
		return -EINVAL;
	max_pages = DIV_ROUND_UP(c->maximum, PAGE_SIZE);
	initial_pages = DIV_ROUND_UP(c->initial, PAGE_SIZE);

	if (READ_ONCE(hf->nr_heaps) >= heapdev_max_heaps())
		return -EDQUOT;

	heap = heapdev_heap_alloc(hf, c->flags, max_pages);
	if (!heap)
		return -ENOMEM;

	/* Commit before the heap becomes visible, so failure leaves no trace. */
	if (initial_pages) {
		ret = heapdev_heap_commit(heap, 0, initial_pages, false,
					  &changed);
		if (ret)
			goto err_kill;
	}

	mutex_lock(&hf->lock);
	if (hf->nr_heaps >= heapdev_max_heaps()) {
		ret = -EDQUOT;
		goto err_unlock;
	}
	ret = xa_alloc_cyclic(&hf->heaps, &id, heap,
			      XA_LIMIT(1, HEAPDEV_MAX_ID), &hf->next_id,
			      GFP_KERNEL_ACCOUNT);
	if (ret < 0) {
		ret = ret == -EBUSY ? -EDQUOT : ret;
		goto err_unlock;
	}
	heap->id = id;
	heap->base = (pgoff_t)id << HEAPDEV_WINDOW_PGSHIFT;
	WRITE_ONCE(hf->nr_heaps, hf->nr_heaps + 1);
	mutex_unlock(&hf->lock);

	c->heap_id = id;
	c->mmap_offset = (u64)id << HEAPDEV_WINDOW_SHIFT;
	c->reserved = heapdev_pages_to_bytes(heap->window_pages);
	return 0;

err_unlock:
	mutex_unlock(&hf->lock);
err_kill:
	heapdev_heap_kill(heap, false, false);
	heapdev_heap_put(heap);
	return ret;
}

static int heapdev_destroy_id(struct heapdev_file *hf, u32 id, bool async,
			      bool keep)
{
	struct heapdev_heap *heap;

	mutex_lock(&hf->lock);
	heap = xa_erase(&hf->heaps, id);
	if (heap)
		WRITE_ONCE(hf->nr_heaps, hf->nr_heaps - 1);
	mutex_unlock(&hf->lock);
	if (!heap)
		return -ENOENT;

	heapdev_heap_kill(heap, heapdev_release_async(async), keep);
	heapdev_heap_put(heap);
	return 0;
}

static int heapdev_ioc_destroy(struct heapdev_file *hf, void *arg)
{
	struct heapdev_destroy *d = arg;

	if ((d->flags & ~(HEAPDEV_DESTROY_ASYNC |
			  HEAPDEV_DESTROY_KEEP_MAPPINGS)) || d->__pad)
		return -EINVAL;
	/* Keeping the mappings only means something in the background. */
	if ((d->flags & HEAPDEV_DESTROY_KEEP_MAPPINGS) &&
	    !(d->flags & HEAPDEV_DESTROY_ASYNC))
		return -EINVAL;
	return heapdev_destroy_id(hf, d->heap_id,
				  d->flags & HEAPDEV_DESTROY_ASYNC,
				  d->flags & HEAPDEV_DESTROY_KEEP_MAPPINGS);
}

static int heapdev_ioc_commit(struct heapdev_file *hf, void *arg)
{
	struct heapdev_commit *c = arg;
	struct heapdev_heap *heap;
	unsigned long count, changed;
	pgoff_t first;
	int ret;

	if ((c->flags & ~(HEAPDEV_COMMIT_POPULATE | HEAPDEV_COMMIT_LAZY)) ||
	    c->__pad)
		return -EINVAL;
	/* Nothing to map before the first touch: the flags contradict. */
	if ((c->flags & HEAPDEV_COMMIT_POPULATE) &&
	    (c->flags & HEAPDEV_COMMIT_LAZY))
		return -EINVAL;
	heap = heapdev_get_heap(hf, c->heap_id);
	if (!heap)
		return -ENOENT;

	ret = heapdev_check_range(heap, c->offset, c->length, &first, &count);
	if (!ret)
		ret = heapdev_heap_commit(heap, first, count,
					  c->flags & HEAPDEV_COMMIT_LAZY,
					  &changed);
	if (!ret) {
		if (c->flags & HEAPDEV_COMMIT_POPULATE)
			heapdev_heap_populate(heap, first, count);
		c->committed = heapdev_pages_to_bytes(READ_ONCE(heap->nr_pages));
		c->changed = heapdev_pages_to_bytes(changed);
	}
	heapdev_heap_put(heap);
	return ret;
}

static int heapdev_ioc_decommit(struct heapdev_file *hf, void *arg)
{
	struct heapdev_decommit *d = arg;
	struct heapdev_heap *heap;
	unsigned long count, changed;
	pgoff_t first;
	int ret;

	if ((d->flags & ~HEAPDEV_DECOMMIT_ASYNC) || d->__pad)
		return -EINVAL;
	heap = heapdev_get_heap(hf, d->heap_id);
	if (!heap)
		return -ENOENT;

	ret = heapdev_check_range(heap, d->offset, d->length, &first, &count);
	if (!ret)
		ret = heapdev_heap_decommit(heap, first, count,
					    heapdev_release_async(d->flags &
						HEAPDEV_DECOMMIT_ASYNC),
					    &changed);
	if (!ret) {
		d->committed = heapdev_pages_to_bytes(READ_ONCE(heap->nr_pages));
		d->changed = heapdev_pages_to_bytes(changed);
	}
	heapdev_heap_put(heap);
	return ret;
}

static int heapdev_ioc_query(struct heapdev_file *hf, void *arg)
{
	struct heapdev_query *q = arg;
	struct heapdev_heap *heap;

	if (q->flags || q->__pad)
		return -EINVAL;
	heap = heapdev_get_heap(hf, q->heap_id);
	if (!heap)
		return -ENOENT;

	q->heap_flags = heap->flags;
	q->committed = heapdev_pages_to_bytes(READ_ONCE(heap->nr_pages));
	q->reserved = heapdev_pages_to_bytes(heap->window_pages);
	q->maximum = heapdev_pages_to_bytes(heap->max_pages);
	q->mmap_offset = (u64)heap->id << HEAPDEV_WINDOW_SHIFT;
	q->mappings = atomic_read(&heap->mappings);
	q->resident = heapdev_pages_to_bytes(atomic_long_read(&heap->resident));
	heapdev_heap_put(heap);
	return 0;
}

static int heapdev_ioc_list(struct heapdev_file *hf, void *arg)
{
	struct heapdev_list *l = arg;
	struct heapdev_heap *heap;
	unsigned int count, n = 0;
	unsigned long id;
	u32 *ids = NULL;
	int ret = 0;

	if (l->flags)
		return -EINVAL;

	mutex_lock(&hf->lock);
	count = hf->nr_heaps;
	if (l->capacity && count) {
		ids = kvmalloc_array(min(l->capacity, count), sizeof(*ids),
				     GFP_KERNEL_ACCOUNT);
		if (!ids) {
			mutex_unlock(&hf->lock);
			return -ENOMEM;
		}
		xa_for_each(&hf->heaps, id, heap) {
			if (n == min(l->capacity, count))
				break;
			ids[n++] = id;
		}
	}
	mutex_unlock(&hf->lock);

	if (n && copy_to_user(u64_to_user_ptr(l->ids), ids, n * sizeof(*ids)))
		ret = -EFAULT;
	kvfree(ids);
	l->count = count;
	return ret;
}

/*
 * The caller's heaps behind @hf: the opened file itself for its owner, or
 * the caller's fork file when it is a child that inherited the descriptor
 * (referenced: see heapdev_file_done()).  NULL for anyone else.
 */
static struct heapdev_file *heapdev_file_of(struct heapdev_file *hf)
{
	if (current->mm == hf->mm)
		return hf;
	return heapdev_fork_lookup(hf, current->mm);
}

static void heapdev_file_done(struct file *file, struct heapdev_file *hf)
{
	if (hf != file->private_data)
		heapdev_file_put(hf);
}

/**
 * struct heapdev_ioctl_op - one command of the dispatch table
 * @fn: handler, working on a kernel copy of the argument
 * @size: the kernel's size of the argument structure
 * @min_size: the size of its first version; smaller ones are refused
 * @write: the command changes state, so the file must be open for writing
 */
struct heapdev_ioctl_op {
	int (*fn)(struct heapdev_file *hf, void *arg);
	unsigned int size;
	unsigned int min_size;
	bool write;
};

static const struct heapdev_ioctl_op heapdev_ops[] = {
	[_IOC_NR(HEAPDEV_IOC_GET_INFO)] = {
		.fn = heapdev_ioc_get_info,
		.size = sizeof(struct heapdev_info),
		.min_size = offsetofend(struct heapdev_info, user_committed),
	},
	[_IOC_NR(HEAPDEV_IOC_CREATE)] = {
		.fn = heapdev_ioc_create,
		.size = sizeof(struct heapdev_create),
		.min_size = offsetofend(struct heapdev_create, reserved),
		.write = true,
	},
	[_IOC_NR(HEAPDEV_IOC_DESTROY)] = {
		.fn = heapdev_ioc_destroy,
		.size = sizeof(struct heapdev_destroy),
		.min_size = offsetofend(struct heapdev_destroy, __pad),
		.write = true,
	},
	[_IOC_NR(HEAPDEV_IOC_COMMIT)] = {
		.fn = heapdev_ioc_commit,
		.size = sizeof(struct heapdev_commit),
		.min_size = offsetofend(struct heapdev_commit, changed),
		.write = true,
	},
	[_IOC_NR(HEAPDEV_IOC_DECOMMIT)] = {
		.fn = heapdev_ioc_decommit,
		.size = sizeof(struct heapdev_decommit),
		.min_size = offsetofend(struct heapdev_decommit, changed),
		.write = true,
	},
	[_IOC_NR(HEAPDEV_IOC_QUERY)] = {
		.fn = heapdev_ioc_query,
		.size = sizeof(struct heapdev_query),
		.min_size = offsetofend(struct heapdev_query, __pad),
	},
	[_IOC_NR(HEAPDEV_IOC_LIST)] = {
		.fn = heapdev_ioc_list,
		.size = sizeof(struct heapdev_list),
		.min_size = offsetofend(struct heapdev_list, ids),
	},
};

union heapdev_ioctl_buf {
	struct heapdev_info info;
	struct heapdev_create create;
	struct heapdev_destroy destroy;
	struct heapdev_commit commit;
	struct heapdev_decommit decommit;
	struct heapdev_query query;
	struct heapdev_list list;
};

static long heapdev_ioctl(struct file *file, unsigned int cmd,
			  unsigned long arg)
{
	struct heapdev_file *hf = file->private_data;
	void __user *uarg = (void __user *)arg;
	const struct heapdev_ioctl_op *op;
	union heapdev_ioctl_buf buf;
	unsigned int nr = _IOC_NR(cmd);
	u32 usize;
	int ret;

	if (nr >= ARRAY_SIZE(heapdev_ops) || cmd != _IO(HEAPDEV_IOC_MAGIC, nr))
		return -ENOTTY;
	op = &heapdev_ops[array_index_nospec(nr, ARRAY_SIZE(heapdev_ops))];

	if (op->write && !(file->f_mode & FMODE_WRITE))
		return -EBADF;

	if (get_user(usize, (u32 __user *)uarg))
		return -EFAULT;
	if (usize < op->min_size)
		return -EINVAL;
	ret = copy_struct_from_user(&buf, op->size, uarg, usize);
	if (ret)
		return ret;

	hf = heapdev_file_of(hf);
	if (!hf)
		return -EPERM;
	ret = op->fn(hf, &buf);
	if (!ret && copy_to_user(uarg, &buf, min_t(size_t, usize, op->size))) {
		/* Nobody learns the id of a heap nobody can see: undo. */
		if (cmd == HEAPDEV_IOC_CREATE)
			heapdev_destroy_id(hf, buf.create.heap_id, false, false);
		ret = -EFAULT;
	}
	heapdev_file_done(file, hf);
	return ret;
}

static int heapdev_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct heapdev_file *hf = file->private_data;
	struct heapdev_heap *heap;
	unsigned long id;
	int ret;

	/* MAP_SHARED only: a private (COW) copy of heap pages makes no sense. */
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;

	id = vma->vm_pgoff >> HEAPDEV_WINDOW_PGSHIFT;
	if (id > HEAPDEV_MAX_ID)
		return -ENXIO;
	hf = heapdev_file_of(hf);
	if (!hf)
		return -EPERM;
	heap = heapdev_get_heap(hf, id);
	ret = heap ? heapdev_heap_mmap(heap, vma) : -ENXIO;
	if (heap)
		heapdev_heap_put(heap);
	heapdev_file_done(file, hf);
	return ret;
}

static int heapdev_open(struct inode *inode, struct file *file)
{
	struct heapdev_file *hf;
	int ret;

	if (!current->mm)
		return -EPERM;

	hf = kzalloc(sizeof(*hf), GFP_KERNEL_ACCOUNT);
	if (!hf)
		return -ENOMEM;

	hf->inode = alloc_anon_inode(heapdev_mnt->mnt_sb);
	if (IS_ERR(hf->inode)) {
		ret = PTR_ERR(hf->inode);
		goto err_free;
	}
	hf->uid = current_euid();
	hf->user = heapdev_user_get(hf->uid);
	if (!hf->user) {
		ret = -ENOMEM;
		goto err_iput;
	}

	kref_init(&hf->ref);
	mutex_init(&hf->lock);
	xa_init_flags(&hf->heaps, XA_FLAGS_ALLOC1);
	INIT_LIST_HEAD(&hf->dying);
	INIT_LIST_HEAD(&hf->forks);
	INIT_LIST_HEAD(&hf->fork_node);
	atomic_long_set(&hf->committed, 0);
	hf->mm = current->mm;
	mmgrab(hf->mm);
	hf->pid = get_pid(task_tgid(current));
	get_task_comm(hf->comm, current);

	/*
	 * Every mapping of this file lives in the private inode's
	 * address_space, so unmapping one heap's range never touches the
	 * mappings of another file.
	 */
	file->f_mapping = hf->inode->i_mapping;
	file->private_data = hf;

	mutex_lock(&heapdev_files_lock);
	list_add_tail(&hf->node, &heapdev_files);
	mutex_unlock(&heapdev_files_lock);
	atomic_long_inc(&heapdev_files_open);
	return 0;

err_iput:
	iput(hf->inode);
err_free:
	kfree(hf);
	return ret;
}

/* The last reference: no heap is left, not even one being released. */
static void heapdev_file_free(struct kref *ref)
{
	struct heapdev_file *hf = container_of(ref, struct heapdev_file, ref);

	mutex_lock(&heapdev_files_lock);
	list_del(&hf->node);
	mutex_unlock(&heapdev_files_lock);

	WARN_ON_ONCE(!list_empty(&hf->dying));
	mutex_destroy(&hf->lock);
	heapdev_user_put(hf->user);
	put_pid(hf->pid);
	if (hf->root)
		heapdev_file_put(hf->root);
	kfree(hf);
}

void heapdev_file_put(struct heapdev_file *hf)
{
	kref_put(&hf->ref, heapdev_file_free);
}

/*
 * Destroy every heap of @hf: no mapping of them is left.  Heaps still
 * being released keep the accounting (and the admin view's entry) alive
 * through their references on @hf.
 */
void heapdev_file_kill_heaps(struct heapdev_file *hf)
{
	struct heapdev_heap *heap;
	unsigned long id;

	xa_for_each(&hf->heaps, id, heap) {
		mutex_lock(&hf->lock);
		xa_erase(&hf->heaps, id);
		WRITE_ONCE(hf->nr_heaps, hf->nr_heaps - 1);
		mutex_unlock(&hf->lock);
		heapdev_heap_kill(heap, heapdev_release_async(false), false);
		heapdev_heap_put(heap);
	}
	xa_destroy(&hf->heaps);
}

/* The last close and the last munmap are behind us: destroy what is left. */
static int heapdev_release(struct inode *inode, struct file *file)
{
	struct heapdev_file *hf = file->private_data;

	/*
	 * No VMA is left (each pins the file), in no process: these are the
	 * last references, the children's copies included.
	 */
	heapdev_fork_end_all(hf);
	heapdev_file_kill_heaps(hf);

	iput(hf->inode);
	mmdrop(hf->mm);
	atomic_long_dec(&heapdev_files_open);
	heapdev_file_put(hf);
	return 0;
}

static const struct file_operations heapdev_fops = {
	.owner = THIS_MODULE,
	.open = heapdev_open,
	.release = heapdev_release,
	.unlocked_ioctl = heapdev_ioctl,
	.mmap = heapdev_mmap,
};

static ssize_t pages_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	return sysfs_emit(buf, "%ld\n", atomic_long_read(&heapdev_pages_held));
}
static DEVICE_ATTR_RO(pages);

static ssize_t releasing_show(struct device *dev,
			      struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%ld\n",
			  atomic_long_read(&heapdev_pages_releasing));
}
static DEVICE_ATTR_RO(releasing);

static ssize_t heaps_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	return sysfs_emit(buf, "%ld\n", atomic_long_read(&heapdev_heaps_alive));
}
static DEVICE_ATTR_RO(heaps);

static ssize_t files_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	return sysfs_emit(buf, "%ld\n", atomic_long_read(&heapdev_files_open));
}
static DEVICE_ATTR_RO(files);

static struct attribute *heapdev_attrs[] = {
	&dev_attr_pages.attr,
	&dev_attr_releasing.attr,
	&dev_attr_heaps.attr,
	&dev_attr_files.attr,
	NULL,
};
ATTRIBUTE_GROUPS(heapdev);

static struct miscdevice heapdev_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "heapdev",
	.fops = &heapdev_fops,
	.groups = heapdev_groups,
	.mode = 0600,
};

static int heapdev_init_fs_context(struct fs_context *fc)
{
	return init_pseudo(fc, HEAPDEV_FS_MAGIC) ? 0 : -ENOMEM;
}

/* No .owner: the internal mount must not pin the module it belongs to. */
static struct file_system_type heapdev_fs_type = {
	.name = "heapdev",
	.init_fs_context = heapdev_init_fs_context,
	.kill_sb = kill_anon_super,
};

static int __init heapdev_init(void)
{
	int ret;

	heapdev_limits_init();

	ret = heapdev_release_init();
	if (ret)
		return ret;
	heapdev_mnt = kern_mount(&heapdev_fs_type);
	if (IS_ERR(heapdev_mnt)) {
		ret = PTR_ERR(heapdev_mnt);
		goto err_release;
	}

	ret = heapdev_proc_init();
	if (ret)
		goto err_unmount;
	ret = misc_register(&heapdev_misc);
	if (ret)
		goto err_proc;
	return 0;

err_proc:
	heapdev_proc_exit();
err_unmount:
	kern_unmount(heapdev_mnt);
err_release:
	heapdev_release_exit();
	return ret;
}

/*
 * No file is open (each holds the module), but heaps of closed files may
 * still be releasing their pages: wait for that before the leak check.
 */
static void __exit heapdev_exit(void)
{
	misc_deregister(&heapdev_misc);
	heapdev_release_exit();
	heapdev_proc_exit();
	kern_unmount(heapdev_mnt);

	if (atomic_long_read(&heapdev_pages_held) ||
	    atomic_long_read(&heapdev_heaps_alive))
		pr_err("leaked %ld pages and %ld heaps\n",
		       atomic_long_read(&heapdev_pages_held),
		       atomic_long_read(&heapdev_heaps_alive));
}

module_init(heapdev_init);
module_exit(heapdev_exit);

MODULE_DESCRIPTION("Private, kernel-backed heaps with Win32 heap semantics");
MODULE_AUTHOR("The heapdev developers");
MODULE_LICENSE("GPL");
MODULE_VERSION(HEAPDEV_VERSION);
