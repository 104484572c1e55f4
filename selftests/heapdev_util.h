/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Helpers shared by the heapdev selftests: thin ioctl wrappers that return
 * 0 or -errno, a fault probe, and readers for the module's counters and
 * admin view.
 */
#ifndef HEAPDEV_UTIL_H
#define HEAPDEV_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heapdev.h"

#define HD_DEV		"/dev/heapdev"
#define HD_SYSFS	"/sys/class/misc/heapdev/"
#define HD_PARAMS	"/sys/module/heapdev/parameters/"
#define HD_PROC		"/proc/heapdev"

/*
 * The kselftest harness of Linux 6.1 still runs a test's body after its
 * FIXTURE_SETUP called SKIP(); every TEST_F of a fixture that may skip
 * starts with this.
 */
#define HD_SKIPPED_IN_SETUP()		\
	do {				\
		if (_metadata->skip)	\
			return;		\
	} while (0)

static inline long hd_page(void)
{
	return sysconf(_SC_PAGESIZE);
}

static inline int hd_ioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? -errno : 0;
}

static inline int hd_open(void)
{
	return open(HD_DEV, O_RDWR | O_CLOEXEC);
}

static inline int hd_create(int fd, __u32 flags, __u64 initial,
			    __u64 maximum, struct heapdev_create *out)
{
	struct heapdev_create c = {
		.size = sizeof(c), .flags = flags,
		.initial = initial, .maximum = maximum,
	};
	int ret = hd_ioctl(fd, HEAPDEV_IOC_CREATE, &c);

	if (out)
		*out = c;
	return ret;
}

static inline int hd_destroy(int fd, __u32 id)
{
	struct heapdev_destroy d = { .size = sizeof(d), .heap_id = id };

	return hd_ioctl(fd, HEAPDEV_IOC_DESTROY, &d);
}

/* HEAPDEV_IOC_DESTROY with flags (HEAPDEV_DESTROY_ASYNC). */
static inline int hd_destroy_flags(int fd, __u32 id, __u32 flags)
{
	struct heapdev_destroy d = {
		.size = sizeof(d), .flags = flags, .heap_id = id,
	};

	return hd_ioctl(fd, HEAPDEV_IOC_DESTROY, &d);
}

static inline int hd_commit(int fd, __u32 id, __u64 off, __u64 len,
			    __u32 flags, struct heapdev_commit *out)
{
	struct heapdev_commit c = {
		.size = sizeof(c), .flags = flags, .heap_id = id,
		.offset = off, .length = len,
	};
	int ret = hd_ioctl(fd, HEAPDEV_IOC_COMMIT, &c);

	if (out)
		*out = c;
	return ret;
}

static inline int hd_decommit(int fd, __u32 id, __u64 off, __u64 len,
			      struct heapdev_decommit *out)
{
	struct heapdev_decommit d = {
		.size = sizeof(d), .heap_id = id, .offset = off, .length = len,
	};
	int ret = hd_ioctl(fd, HEAPDEV_IOC_DECOMMIT, &d);

	if (out)
		*out = d;
	return ret;
}

static inline int hd_query(int fd, __u32 id, struct heapdev_query *q)
{
	memset(q, 0, sizeof(*q));
	q->size = sizeof(*q);
	q->heap_id = id;
	return hd_ioctl(fd, HEAPDEV_IOC_QUERY, q);
}

static inline int hd_info(int fd, struct heapdev_info *info)
{
	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	return hd_ioctl(fd, HEAPDEV_IOC_GET_INFO, info);
}

static inline void *hd_map(int fd, const struct heapdev_create *c,
			   __u64 off, size_t len, int prot)
{
	return mmap(NULL, len, prot, MAP_SHARED, fd, c->mmap_offset + off);
}

/* Fault probe: returns 0, or the signal (SIGBUS, SIGSEGV) the access raised. */
static sigjmp_buf hd_probe_env;
static volatile sig_atomic_t hd_probe_sig;

static void hd_probe_handler(int sig)
{
	hd_probe_sig = sig;
	siglongjmp(hd_probe_env, 1);
}

static inline int hd_probe(volatile char *p, bool write, char val)
{
	struct sigaction sa = { .sa_handler = hd_probe_handler };
	struct sigaction old_bus, old_segv;
	int ret = 0;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &old_bus);
	sigaction(SIGSEGV, &sa, &old_segv);
	hd_probe_sig = 0;
	if (sigsetjmp(hd_probe_env, 1) == 0) {
		if (write)
			*p = val;
		else
			(void)*p;
	} else {
		ret = hd_probe_sig;
	}
	sigaction(SIGBUS, &old_bus, NULL);
	sigaction(SIGSEGV, &old_segv, NULL);
	return ret;
}

static inline long hd_read_long(const char *path)
{
	char buf[64] = "";
	long val = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	if (fgets(buf, sizeof(buf), f))
		val = strtol(buf, NULL, 10);
	fclose(f);
	return val;
}

static inline int hd_write_str(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	close(fd);
	return n < 0 ? -errno : 0;
}

static inline long hd_sys_pages(void)
{
	return hd_read_long(HD_SYSFS "pages");
}

static inline long hd_sys_heaps(void)
{
	return hd_read_long(HD_SYSFS "heaps");
}

/* Pages waiting for the background release (HEAPDEV_*_ASYNC). */
static inline long hd_sys_releasing(void)
{
	return hd_read_long(HD_SYSFS "releasing");
}

/*
 * Wait up to @ms milliseconds for the module to hold exactly @pages pages
 * and @heaps heaps.  A process that just exited may still be releasing its
 * files (the kernel defers the last fput of an exiting task to a
 * workqueue), so checks right after an exit poll instead of reading once.
 */
static inline bool hd_wait_held(long pages, long heaps, int ms)
{
	for (;;) {
		if (hd_sys_pages() == pages && hd_sys_heaps() == heaps)
			return true;
		if (ms <= 0)
			return false;
		usleep(10 * 1000);
		ms -= 10;
	}
}

/*
 * Find heap @id of process @pid in /proc/heapdev.  Returns 1 and fills the
 * committed bytes and mappings when found, 0 when not, -errno on error.
 */
static inline int hd_proc_find(pid_t pid, __u32 id, unsigned long long *committed,
			       int *mappings)
{
	char line[512], comm[128], flags[8];
	unsigned long long c, r, m;
	unsigned int hid;
	int p, maps, found = 0;
	FILE *f = fopen(HD_PROC, "r");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%d %127s %u %7s %llu %llu %llu %d", &p, comm,
			   &hid, flags, &c, &r, &m, &maps) != 8)
			continue;
		if (p == pid && hid == id) {
			if (committed)
				*committed = c;
			if (mappings)
				*mappings = maps;
			found = 1;
			break;
		}
	}
	fclose(f);
	return found;
}

/* Count the lines of /proc/heapdev that belong to @pid, or -errno. */
static inline int hd_proc_count(pid_t pid)
{
	char line[512];
	int p, n = 0;
	FILE *f = fopen(HD_PROC, "r");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%d", &p) == 1 && p == pid)
			n++;
	fclose(f);
	return n;
}

/* Run @fn in a child process; returns its exit status, or 128 + signal. */
static inline int hd_in_child(int (*fn)(void *), void *arg)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0)
		_exit(fn(arg));
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* ---- cgroup v2 (memory controller) for the memcg tests, root only ---- */

#define HD_CG_ROOT	"/sys/fs/cgroup"

static inline int hd_cg_write(const char *cg, const char *file,
			      const char *val)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", cg, file);
	return hd_write_str(path, val);
}

/*
 * A value of cgroup @cg: the first number of @file when @key is NULL,
 * otherwise the one after "@key " (memory.events).  -1 if none.
 */
static inline long hd_cg_read(const char *cg, const char *file,
			      const char *key)
{
	char path[256], line[128];
	long val = -1;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", cg, file);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!key) {
			val = atol(line);
			break;
		}
		if (!strncmp(line, key, strlen(key)) &&
		    line[strlen(key)] == ' ')
			val = atol(line + strlen(key) + 1);
	}
	fclose(f);
	return val;
}

/* Move the calling process into cgroup @cg. */
static inline int hd_cg_enter(const char *cg)
{
	char pid[32];

	snprintf(pid, sizeof(pid), "%d", getpid());
	return hd_cg_write(cg, "cgroup.procs", pid);
}

/*
 * Make cgroup @cg afresh with the memory controller and memory.max @max.
 * Returns 0, 1 when there is no writable cgroup v2 (skip), or -errno.
 */
static inline int hd_cg_make(const char *cg, const char *max)
{
	if (access(HD_CG_ROOT "/cgroup.subtree_control", W_OK))
		return 1;
	hd_write_str(HD_CG_ROOT "/cgroup.subtree_control", "+memory");
	rmdir(cg);
	if (mkdir(cg, 0755))
		return -errno;
	return hd_cg_write(cg, "memory.max", max);
}

/*
 * In a harness test: make cgroup @cg with memory.max @max, or skip the
 * test when not root or without a writable cgroup v2.
 */
#define HD_CG_MAKE_OR_SKIP(cg, max)					\
	do {								\
		int __cg_ret;						\
									\
		if (geteuid() != 0)					\
			SKIP(return, "creating a cgroup needs root");	\
		__cg_ret = hd_cg_make(cg, max);				\
		if (__cg_ret > 0)					\
			SKIP(return, "no cgroup v2 at " HD_CG_ROOT);	\
		ASSERT_EQ(0, __cg_ret);					\
	} while (0)

/*
 * In a harness test: skip it unless the device is there and its module
 * has feature @feat (a HEAPDEV_FEAT_* bit).
 */
#define HD_FEATURE_OR_SKIP(feat)					\
	do {								\
		struct heapdev_info __feat_info;			\
		int __feat_fd = hd_open();				\
									\
		if (__feat_fd < 0 && errno == ENOENT)			\
			SKIP(return, HD_DEV " is missing");		\
		ASSERT_LE(0, __feat_fd);				\
		ASSERT_EQ(0, hd_info(__feat_fd, &__feat_info));	\
		close(__feat_fd);					\
		if (!(__feat_info.features & (feat)))			\
			SKIP(return, "the module has no " #feat);	\
	} while (0)

#endif /* HEAPDEV_UTIL_H */
