// SPDX-License-Identifier: GPL-2.0-only
/*
 * heapdev: /proc/heapdev, the admin view of every heap of every process.
 *
 * One line per heap:
 *
 *	PID COMM HEAP FLAGS COMMITTED RESERVED MAXIMUM MAPPINGS RESIDENT
 *
 * PID is in the reader's pid namespace (processes it cannot see are left
 * out); COMM escapes blanks and backslashes as \ooo; FLAGS is 'G' (growable)
 * or 'F' (fixed) followed by 'X' (executable) or '-', and by 'D' for a
 * destroyed heap whose pages are still being released in the background
 * (its COMMITTED shrinks to 0, then the line goes; its id may already
 * belong to a new heap); sizes are in bytes.  RESIDENT is the part of
 * COMMITTED whose pages exist (less while lazily committed pages have not
 * been touched); it came last, so that readers of the first eight columns
 * are not disturbed.
 * Readers with CAP_SYS_ADMIN see every heap, others only the heaps of
 * processes running as their effective uid.
 */

#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/pid_namespace.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/string_helpers.h>

#include "../uapi/heapdev.h"
#include "heapdev_internal.h"

static void heapdev_proc_heap(struct seq_file *m, pid_t pid, const char *comm,
			      struct heapdev_heap *heap, bool dying)
{
	seq_printf(m, "%7d %-16s %6u %c%c%s %14llu %14llu %14llu %8d %14llu\n",
		   pid, comm, heap->id,
		   heap->flags & HEAPDEV_HEAP_GROWABLE ? 'G' : 'F',
		   heap->flags & HEAPDEV_HEAP_EXEC ? 'X' : '-',
		   dying ? "D" : "",
		   (u64)READ_ONCE(heap->nr_pages) << PAGE_SHIFT,
		   (u64)heap->window_pages << PAGE_SHIFT,
		   (u64)heap->max_pages << PAGE_SHIFT,
		   atomic_read(&heap->mappings),
		   (u64)atomic_long_read(&heap->resident) << PAGE_SHIFT);
}

static int heapdev_proc_show(struct seq_file *m, void *v)
{
	struct pid_namespace *ns = proc_pid_ns(file_inode(m->file)->i_sb);
	const struct cred *cred = m->file->f_cred;
	bool all = file_ns_capable(m->file, &init_user_ns, CAP_SYS_ADMIN);
	char comm[4 * TASK_COMM_LEN + 1];
	struct heapdev_file *hf;
	struct heapdev_heap *heap;
	unsigned long id;
	pid_t pid;

	seq_printf(m, "%7s %-16s %6s %5s %14s %14s %14s %8s %14s\n", "PID",
		   "COMM", "HEAP", "FLAGS", "COMMITTED", "RESERVED", "MAXIMUM",
		   "MAPPINGS", "RESIDENT");

	mutex_lock(&heapdev_files_lock);
	list_for_each_entry(hf, &heapdev_files, node) {
		/* A fork file has no pid until its child claims it. */
		pid = pid_nr_ns(READ_ONCE(hf->pid), ns);
		if (!pid)
			continue;
		if (!all && !uid_eq(hf->uid, cred->euid))
			continue;
		string_escape_str(hf->comm, comm, sizeof(comm),
				  ESCAPE_OCTAL, " \t\n\\");
		mutex_lock(&hf->lock);
		xa_for_each(&hf->heaps, id, heap)
			heapdev_proc_heap(m, pid, comm, heap, false);
		list_for_each_entry(heap, &hf->dying, dying_node)
			heapdev_proc_heap(m, pid, comm, heap, true);
		mutex_unlock(&hf->lock);
	}
	mutex_unlock(&heapdev_files_lock);
	return 0;
}

int heapdev_proc_init(void)
{
	if (!proc_create_single("heapdev", 0444, NULL, heapdev_proc_show))
		return -ENOMEM;
	return 0;
}

void heapdev_proc_exit(void)
{
	remove_proc_entry("heapdev", NULL);
}
