// SPDX-License-Identifier: GPL-2.0-only
/*
 * Targeted fault injection (needs CONFIG_FAULT_INJECTION, so it runs on
 * the debug kernel of "make check-debug" and skips elsewhere): for every
 * command that allocates, make its 1st, 2nd, ... allocation fail through
 * /proc/thread-self/fail-nth until the command no longer reaches that
 * many allocations.  Every injected failure must give a clean error and
 * leave no trace: no page, no heap, no partial commit.
 */

#define _GNU_SOURCE

#include "../kselftest_harness.h"
#include "heapdev_util.h"

#define DBG "/sys/kernel/debug/"
#define MAX_NTH 4000

/* fail-nth works whatever the probability; these widen what may fail. */
static const char *const knobs[] = {
	DBG "failslab/ignore-gfp-wait",
	DBG "fail_page_alloc/ignore-gfp-wait",
	DBG "fail_page_alloc/ignore-gfp-highmem",
	DBG "fail_page_alloc/min-order",
	DBG "failslab/verbose",
	DBG "fail_page_alloc/verbose",
};

static const char *const knob_values[] = { "N", "N", "N", "0", "0", "0" };

FIXTURE(fi) {
	int nth;
	int fd;
	long pg;
};

FIXTURE_SETUP(fi)
{
	unsigned int i;

	self->nth = -1;
	self->fd = -1;
	self->pg = hd_page();
	if (access(HD_DEV, F_OK))
		SKIP(return, HD_DEV " is missing");
	self->nth = open("/proc/thread-self/fail-nth", O_RDWR | O_CLOEXEC);
	if (self->nth < 0)
		SKIP(return, "no fail-nth: the kernel lacks CONFIG_FAULT_INJECTION");
	if (geteuid() != 0)
		SKIP(return, "configuring fault injection needs root");
	/* Let injection reach sleeping and highmem allocations, quietly. */
	for (i = 0; i < ARRAY_SIZE(knobs); i++)
		if (hd_write_str(knobs[i], knob_values[i]))
			SKIP(return, "cannot set fault injection knobs in debugfs");
}

FIXTURE_TEARDOWN(fi)
{
	if (self->nth >= 0)
		close(self->nth);
	if (self->fd >= 0)
		close(self->fd);
}

static void arm(int nth, int n)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%d", n);

	if (pwrite(nth, buf, len, 0) != len)
		abort();
}

/* Disarm; returns true when the armed failure was injected. */
static bool disarm(int nth)
{
	char buf[16] = "";
	bool injected;

	if (pread(nth, buf, sizeof(buf) - 1, 0) <= 0)
		abort();
	injected = atoi(buf) == 0;
	arm(nth, 0);
	return injected;
}

TEST_F(fi, open)
{
	long files = hd_read_long(HD_SYSFS "files");
	int n, fd, injected = 0;

	HD_SKIPPED_IN_SETUP();

	for (n = 1; n < MAX_NTH; n++) {
		arm(self->nth, n);
		fd = hd_open();
		if (!disarm(self->nth)) {
			ASSERT_LE(0, fd);
			close(fd);
			break;
		}
		injected++;
		if (fd >= 0)
			close(fd);
		else
			EXPECT_EQ(ENOMEM, errno);
		ASSERT_EQ(files, hd_read_long(HD_SYSFS "files")) TH_LOG("nth %d", n);
	}
	TH_LOG("open: %d allocation points failed in turn", injected);
	EXPECT_LT(0, injected);
}

TEST_F(fi, create_with_initial_commit)
{
	struct heapdev_list l = { .size = sizeof(l) };
	struct heapdev_create c;
	long pages, heaps;
	int n, ret, injected = 0;

	HD_SKIPPED_IN_SETUP();

	self->fd = hd_open();
	ASSERT_LE(0, self->fd);
	for (n = 1; n < MAX_NTH; n++) {
		pages = hd_sys_pages();
		heaps = hd_sys_heaps();
		arm(self->nth, n);
		ret = hd_create(self->fd, 0, 40 * self->pg, 0, &c);
		if (!disarm(self->nth)) {
			ASSERT_EQ(0, ret);
			break;
		}
		injected++;
		if (ret == 0) {
			/* The failure hit something optional; the heap is whole. */
			EXPECT_EQ(pages + 40, hd_sys_pages());
			ASSERT_EQ(0, hd_destroy(self->fd, c.heap_id));
			continue;
		}
		EXPECT_EQ(-ENOMEM, ret) TH_LOG("nth %d", n);
		EXPECT_EQ(pages, hd_sys_pages()) TH_LOG("nth %d", n);
		EXPECT_EQ(heaps, hd_sys_heaps()) TH_LOG("nth %d", n);
		ASSERT_EQ(0, hd_ioctl(self->fd, HEAPDEV_IOC_LIST, &l));
		EXPECT_EQ(0, l.count);
	}
	TH_LOG("create: %d allocation points failed in turn", injected);
	EXPECT_LT(40, injected);
}

TEST_F(fi, commit_with_populate)
{
	struct heapdev_create c;
	struct heapdev_query q;
	long pages;
	char *p;
	int n, ret, injected = 0;

	HD_SKIPPED_IN_SETUP();

	self->fd = hd_open();
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, hd_create(self->fd, 0, 0, 0, &c));
	p = hd_map(self->fd, &c, 0, 256 * self->pg, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	/* A committed, written page must survive every failed commit. */
	ASSERT_EQ(0, hd_commit(self->fd, c.heap_id, 0, self->pg, 0, NULL));
	p[0] = 42;
	for (n = 1; n < MAX_NTH; n++) {
		pages = hd_sys_pages();
		arm(self->nth, n);
		ret = hd_commit(self->fd, c.heap_id, 0, 64 * self->pg,
				HEAPDEV_COMMIT_POPULATE, NULL);
		if (!disarm(self->nth)) {
			ASSERT_EQ(0, ret);
			break;
		}
		injected++;
		ASSERT_EQ(0, hd_query(self->fd, c.heap_id, &q));
		if (ret == 0) {
			/* Populating is best effort; the commit itself held. */
			EXPECT_EQ(64 * self->pg, (long)q.committed);
		} else {
			EXPECT_EQ(-ENOMEM, ret) TH_LOG("nth %d", n);
			EXPECT_EQ(self->pg, (long)q.committed) TH_LOG("nth %d", n);
			EXPECT_EQ(pages, hd_sys_pages()) TH_LOG("nth %d", n);
		}
		EXPECT_EQ(42, p[0]);
		ASSERT_EQ(0, hd_decommit(self->fd, c.heap_id, self->pg,
					 63 * self->pg, NULL));
	}
	TH_LOG("commit: %d allocation points failed in turn", injected);
	EXPECT_LT(63, injected);
	munmap(p, 256 * self->pg);
}

/*
 * The background release: an async decommit gathers its pages into
 * batches allocated on the spot, and releases them at once when a batch
 * cannot be had.  Whichever allocation fails, the decommit must succeed
 * whole, and every page must come back once the worker is done.
 */
TEST_F(fi, decommit_async)
{
	struct heapdev_decommit dc;
	struct heapdev_create c;
	long pages, len = 2048 * self->pg;
	int n, i, ret, injected = 0;

	HD_SKIPPED_IN_SETUP();

	self->fd = hd_open();
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, hd_create(self->fd, 0, 0, 0, &c));
	pages = hd_sys_pages();
	for (n = 1; n < MAX_NTH; n++) {
		ASSERT_EQ(0, hd_commit(self->fd, c.heap_id, 0, len, 0, NULL));
		memset(&dc, 0, sizeof(dc));
		dc.size = sizeof(dc);
		dc.flags = HEAPDEV_DECOMMIT_ASYNC;
		dc.heap_id = c.heap_id;
		dc.length = len;
		arm(self->nth, n);
		ret = hd_ioctl(self->fd, HEAPDEV_IOC_DECOMMIT, &dc);
		if (!disarm(self->nth)) {
			ASSERT_EQ(0, ret);
			break;
		}
		injected++;
		EXPECT_EQ(0, ret) TH_LOG("nth %d", n);
		EXPECT_EQ(len, (long)dc.changed) TH_LOG("nth %d", n);
		EXPECT_EQ(0, (long)dc.committed) TH_LOG("nth %d", n);
		for (i = 0; i < 3000 && hd_sys_releasing(); i++)
			usleep(10000);
		EXPECT_EQ(0, hd_sys_releasing()) TH_LOG("nth %d", n);
		EXPECT_EQ(pages, hd_sys_pages()) TH_LOG("nth %d", n);
	}
	TH_LOG("async decommit: %d allocation points failed in turn", injected);
	EXPECT_LT(0, injected);
}

TEST_F(fi, list)
{
	struct heapdev_list l = { .size = sizeof(l) };
	__u32 ids[8];
	int i, n, ret, injected = 0;

	HD_SKIPPED_IN_SETUP();

	self->fd = hd_open();
	ASSERT_LE(0, self->fd);
	for (i = 0; i < 5; i++)
		ASSERT_EQ(0, hd_create(self->fd, 0, 0, 0, NULL));
	l.capacity = 8;
	l.ids = (uintptr_t)ids;
	for (n = 1; n < MAX_NTH; n++) {
		arm(self->nth, n);
		ret = hd_ioctl(self->fd, HEAPDEV_IOC_LIST, &l);
		if (!disarm(self->nth)) {
			ASSERT_EQ(0, ret);
			EXPECT_EQ(5, l.count);
			break;
		}
		injected++;
		if (ret)
			EXPECT_EQ(-ENOMEM, ret);
	}
	EXPECT_LT(0, injected);
}

/*
 * A lazy commit allocates only xarray nodes; a failure among them must
 * leave the range uncommitted.  A first touch whose page allocation fails
 * takes the fault's out-of-memory path, which retries the fault: the touch
 * still lands, on one page, and nothing leaks.
 */
TEST_F(fi, lazy_commit_and_first_touch)
{
	struct heapdev_create c;
	struct heapdev_query q;
	long pages;
	char *p;
	int n, ret, injected = 0;

	HD_SKIPPED_IN_SETUP();

	self->fd = hd_open();
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, hd_create(self->fd, 0, 0, 0, &c));
	p = hd_map(self->fd, &c, 0, 1024 * self->pg, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	for (n = 1; n < MAX_NTH; n++) {
		pages = hd_sys_pages();
		arm(self->nth, n);
		/* 1024 pages need more than one xarray node. */
		ret = hd_commit(self->fd, c.heap_id, 0, 1024 * self->pg,
				HEAPDEV_COMMIT_LAZY, NULL);
		if (!disarm(self->nth)) {
			ASSERT_EQ(0, ret);
			break;
		}
		injected++;
		ASSERT_EQ(0, hd_query(self->fd, c.heap_id, &q));
		if (ret == 0) {
			EXPECT_EQ(1024 * self->pg, (long)q.committed);
		} else {
			EXPECT_EQ(-ENOMEM, ret) TH_LOG("nth %d", n);
			EXPECT_EQ(0, (long)q.committed) TH_LOG("nth %d", n);
			EXPECT_EQ(pages, hd_sys_pages()) TH_LOG("nth %d", n);
		}
		ASSERT_EQ(0, hd_decommit(self->fd, c.heap_id, 0,
					 1024 * self->pg, NULL));
	}
	TH_LOG("lazy commit: %d allocation points failed in turn", injected);
	EXPECT_LT(0, injected);

	ASSERT_EQ(0, hd_commit(self->fd, c.heap_id, 0, 1024 * self->pg,
			       HEAPDEV_COMMIT_LAZY, NULL));
	for (n = 0; n < 8; n++) {
		arm(self->nth, 1);
		p[n * self->pg] = (char)(n + 1);
		disarm(self->nth);
	}
	for (n = 0; n < 8; n++)
		EXPECT_EQ(n + 1, p[n * self->pg]);
	ASSERT_EQ(0, hd_query(self->fd, c.heap_id, &q));
	EXPECT_EQ(8 * self->pg, (long)q.resident);
	munmap(p, 1024 * self->pg);
	pages = hd_sys_pages();
	ASSERT_EQ(0, hd_destroy(self->fd, c.heap_id));
	EXPECT_EQ(pages - 1024, hd_sys_pages());
}

/*
 * fork() of a process with an inheritable heap: each allocation of the
 * fork in turn fails (the kernel's own, which fail the fork, and the
 * module's copy of the heap, which leave the child without it).  The
 * child has the heap whole or not at all, the parent's is untouched, and
 * nothing stays held once the child is gone.
 */
TEST_F_TIMEOUT(fi, fork_copy, 300)
{
	int n, status, injected = 0, copied = 0, refused = 0, failed = 0;
	struct heapdev_create c;
	long pages, heaps, len;
	bool inj;
	char *p;
	pid_t pid;

	HD_SKIPPED_IN_SETUP();

	len = 600 * self->pg;	/* more than one xarray node */
	self->fd = hd_open();
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, hd_create(self->fd, HEAPDEV_HEAP_INHERIT, len, 0, &c));
	p = hd_map(self->fd, &c, 0, len, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 5, len);
	pages = hd_sys_pages();
	heaps = hd_sys_heaps();
	for (n = 1; n < MAX_NTH; n++) {
		arm(self->nth, n);
		pid = fork();
		if (!pid) {
			struct heapdev_query q;

			if (!hd_query(self->fd, c.heap_id, &q))
				_exit(p[0] == 5 && p[len - 1] == 5 &&
				      (long)q.committed == len ? 0 : 2);
			_exit(hd_probe(p, false, 0) == SIGBUS ? 1 : 3);
		}
		inj = disarm(self->nth);
		if (pid < 0) {
			ASSERT_TRUE(inj) TH_LOG("nth %d", n);
			failed++;
		} else {
			ASSERT_EQ(pid, waitpid(pid, &status, 0));
			ASSERT_TRUE(WIFEXITED(status)) TH_LOG("nth %d", n);
			ASSERT_GE(1, WEXITSTATUS(status)) TH_LOG("nth %d", n);
			if (WEXITSTATUS(status))
				refused++;
			else
				copied++;
		}
		EXPECT_TRUE(hd_wait_held(pages, heaps, 5000))
			TH_LOG("nth %d (fork %s): %ld pages (not %ld), %ld heaps (not %ld), %ld files",
			       n, pid < 0 ? "failed" : "made a child",
			       hd_sys_pages(), pages, hd_sys_heaps(), heaps,
			       hd_read_long(HD_SYSFS "files"));
		if (!inj)
			break;
		injected++;
	}
	TH_LOG("fork: %d allocation points failed in turn: %d forks failed, %d children without the copy, %d with it",
	       injected, failed, refused, copied);
	EXPECT_LT(0, refused);
	EXPECT_EQ(5, p[0]);
	EXPECT_EQ(5, p[len - 1]);
	munmap(p, len);
}

TEST_HARNESS_MAIN
