// SPDX-License-Identifier: GPL-2.0-only
/*
 * Background release (HEAPDEV_DESTROY_ASYNC, HEAPDEV_DECOMMIT_ASYNC): the
 * caller sees the heap or the range gone at once, the pages are freed by a
 * kernel worker afterwards, and until then they stay counted: in the
 * "pages" and "releasing" counters, in /proc/heapdev (flag D), against the
 * file and user limits and in the memory cgroup.  Tests that change module
 * parameters or create cgroups need root and are skipped otherwise.
 */

#define _GNU_SOURCE

#include <sys/syscall.h>
#include <time.h>

#include "../kselftest_harness.h"
#include "heapdev_util.h"

#define MIB (1L << 20)
#define CG_TEST	HD_CG_ROOT "/heapdev-release-test"

/* Large enough that freeing it takes a while under emulation. */
#define BIG (64 * MIB)

FIXTURE(rel) {
	int fd;
	long pg;
	long pages;
	long heaps;
	long saved_file_limit;
	long saved_user_limit;
};

static long get_param(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), HD_PARAMS "%s", name);
	return hd_read_long(path);
}

static int set_param(const char *name, long val)
{
	char path[128], buf[32];

	snprintf(path, sizeof(path), HD_PARAMS "%s", name);
	snprintf(buf, sizeof(buf), "%ld", val);
	return hd_write_str(path, buf);
}

/* Wait until nothing is being released; true unless it takes > @ms. */
static bool wait_released(int ms)
{
	for (; ms > 0; ms -= 5) {
		if (hd_sys_releasing() == 0)
			return true;
		usleep(5000);
	}
	return hd_sys_releasing() == 0;
}

FIXTURE_SETUP(rel)
{
	struct heapdev_info info;

	self->fd = -1;
	self->saved_file_limit = -1;
	self->saved_user_limit = -1;
	self->pg = hd_page();
	if (access(HD_DEV, F_OK))
		SKIP(return, HD_DEV " is missing: load heapdev.ko");
	self->fd = hd_open();
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, hd_info(self->fd, &info));
	if (!(info.features & HEAPDEV_FEAT_ASYNC_RELEASE))
		SKIP(return, "the module has no background release");
	/* Whatever earlier tests left in flight is gone before we count. */
	ASSERT_TRUE(wait_released(30000));
	self->pages = hd_sys_pages();
	self->heaps = hd_sys_heaps();
}

FIXTURE_TEARDOWN(rel)
{
	if (self->saved_file_limit >= 0)
		set_param("file_limit_mb", self->saved_file_limit);
	if (self->saved_user_limit >= 0)
		set_param("user_limit_mb", self->saved_user_limit);
	if (self->fd >= 0)
		close(self->fd);
}

/*
 * Find heap @id of this process in /proc/heapdev: 0 if absent, 1 if live,
 * 2 if destroyed and still being released ('D'); its committed bytes.
 */
static int proc_state(__u32 id, unsigned long long *committed)
{
	char line[512], comm[128], flags[8];
	unsigned long long c, r, m;
	unsigned int hid;
	int p, maps, state = 0;
	FILE *f = fopen(HD_PROC, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%d %127s %u %7s %llu %llu %llu %d", &p, comm,
			   &hid, flags, &c, &r, &m, &maps) != 8)
			continue;
		if (p != getpid() || hid != id)
			continue;
		state = strchr(flags, 'D') ? 2 : 1;
		*committed = c;
		break;
	}
	fclose(f);
	return state;
}

/* A heap of @len bytes committed, mapped and written; returns the map. */
static char *big_heap(int fd, long len, struct heapdev_create *c)
{
	char *p;
	long off;

	if (hd_create(fd, 0, len, 0, c))
		return NULL;
	p = hd_map(fd, c, 0, len, PROT_READ | PROT_WRITE);
	if (p == MAP_FAILED)
		return NULL;
	for (off = 0; off < len; off += 4096)
		p[off] = 1;
	return p;
}

TEST_F(rel, feature_and_flags)
{
	struct heapdev_create c;
	struct heapdev_decommit dc = { .size = sizeof(dc) };

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, hd_create(self->fd, 0, 4 * self->pg, 0, &c));
	dc.heap_id = c.heap_id;
	dc.length = 4 * self->pg;
	dc.flags = HEAPDEV_DECOMMIT_ASYNC;
	EXPECT_EQ(0, hd_ioctl(self->fd, HEAPDEV_IOC_DECOMMIT, &dc));
	EXPECT_EQ(4 * self->pg, (long)dc.changed);
	EXPECT_EQ(0, (long)dc.committed);
	dc.flags = HEAPDEV_DECOMMIT_ASYNC | 2;
	EXPECT_EQ(-EINVAL, hd_ioctl(self->fd, HEAPDEV_IOC_DECOMMIT, &dc));
	EXPECT_EQ(-EINVAL, hd_destroy_flags(self->fd, c.heap_id, 2));
	ASSERT_EQ(0, hd_commit(self->fd, c.heap_id, 0, 8 * self->pg, 0, NULL));
	EXPECT_EQ(0, hd_destroy_flags(self->fd, c.heap_id,
				      HEAPDEV_DESTROY_ASYNC));
	/* Below 2 MiB the release is done at once, flag or not. */
	EXPECT_EQ(0, hd_sys_releasing());
	EXPECT_EQ(self->pages, hd_sys_pages());
	EXPECT_EQ(-ENOENT, hd_destroy_flags(self->fd, c.heap_id,
					    HEAPDEV_DESTROY_ASYNC));
	EXPECT_TRUE(wait_released(30000));
	EXPECT_EQ(self->pages, hd_sys_pages());
	EXPECT_EQ(self->heaps, hd_sys_heaps());
}

/*
 * HEAPDEV_DESTROY_KEEP_MAPPINGS: the destroy returns with the caller's
 * mapping in place (made PROT_NONE first, as the library does); the
 * worker zaps it before it frees any page, so once the release is done
 * every page is back and the mapping faults.  Refused without
 * HEAPDEV_DESTROY_ASYNC.
 */
TEST_F(rel, destroy_keep_mappings)
{
	struct heapdev_create c;
	struct heapdev_query q;
	char *p;

	HD_SKIPPED_IN_SETUP();
	HD_FEATURE_OR_SKIP(HEAPDEV_FEAT_KEEP_MAPPINGS);

	p = big_heap(self->fd, BIG, &c);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(-EINVAL, hd_destroy_flags(self->fd, c.heap_id,
					    HEAPDEV_DESTROY_KEEP_MAPPINGS));
	EXPECT_EQ(0, hd_query(self->fd, c.heap_id, &q));
	ASSERT_EQ(0, mprotect(p, BIG, PROT_NONE));
	ASSERT_EQ(0, hd_destroy_flags(self->fd, c.heap_id,
				      HEAPDEV_DESTROY_ASYNC |
				      HEAPDEV_DESTROY_KEEP_MAPPINGS));
	EXPECT_EQ(-ENOENT, hd_query(self->fd, c.heap_id, &q));
	EXPECT_TRUE(wait_released(30000));
	EXPECT_EQ(self->pages, hd_sys_pages());
	ASSERT_EQ(0, mprotect(p, BIG, PROT_READ | PROT_WRITE));
	/* Zapped by the worker, and the dead heap maps nothing again. */
	EXPECT_EQ(SIGBUS, hd_probe(p, false, 0));
	EXPECT_EQ(SIGBUS, hd_probe(p + BIG - 1, true, 1));
	munmap(p, BIG);
	EXPECT_EQ(self->heaps, hd_sys_heaps());
}

/*
 * async_release=1 sends destroys that do not ask to the background too;
 * back at 0, such a destroy has every page back when it returns.
 */
TEST_F(rel, async_release_parameter)
{
	long saved, seen = 0, i;
	struct heapdev_create c;
	char *p;

	HD_SKIPPED_IN_SETUP();
	if (geteuid() != 0)
		SKIP(return, "changing module parameters needs root");
	saved = hd_read_long(HD_PARAMS "async_release");
	ASSERT_LE(0, saved) TH_LOG("no async_release parameter");
	ASSERT_EQ(0, hd_write_str(HD_PARAMS "async_release", "1"));
	/* The worker starts a jiffy later and needs milliseconds for 64 MiB. */
	for (i = 0; i < 3; i++) {
		p = big_heap(self->fd, BIG, &c);
		ASSERT_NE(NULL, p);
		munmap(p, BIG);
		ASSERT_EQ(0, hd_destroy(self->fd, c.heap_id));
		seen += hd_sys_releasing() > 0;
		EXPECT_TRUE(wait_released(30000));
	}
	EXPECT_LT(0, seen) TH_LOG("no destroy was released in the background");
	ASSERT_EQ(0, hd_write_str(HD_PARAMS "async_release", "0"));
	p = big_heap(self->fd, BIG, &c);
	ASSERT_NE(NULL, p);
	munmap(p, BIG);
	ASSERT_EQ(0, hd_destroy(self->fd, c.heap_id));
	EXPECT_EQ(0, hd_sys_releasing());
	EXPECT_EQ(self->pages, hd_sys_pages());
	hd_write_str(HD_PARAMS "async_release", saved ? "1" : "0");
}

/*
 * The heap is gone for its owner at once; its pages stay counted, and the
 * admin view shows it as D, until the worker has freed the last of them.
 */
TEST_F(rel, destroy_async_counts_until_freed)
{
	unsigned long long committed = 0, last = BIG;
	struct heapdev_create c;
	struct heapdev_query q;
	long during, polls = 0, seen_d = 0;
	char *p;
	int st;

	HD_SKIPPED_IN_SETUP();

	p = big_heap(self->fd, BIG, &c);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(self->pages + BIG / self->pg, hd_sys_pages());
	ASSERT_EQ(0, hd_destroy_flags(self->fd, c.heap_id,
				      HEAPDEV_DESTROY_ASYNC));
	during = hd_sys_pages();
	/* Gone for the owner: no id, no access. */
	EXPECT_EQ(-ENOENT, hd_query(self->fd, c.heap_id, &q));
	EXPECT_EQ(SIGBUS, hd_probe(p, false, 0));
	EXPECT_EQ(SIGBUS, hd_probe(p + BIG - 1, true, 1));
	/* Never more than before, never less than the baseline. */
	EXPECT_LE(during, self->pages + BIG / self->pg);
	EXPECT_LE(self->pages, during);
	for (;;) {
		long pages;

		st = proc_state(c.heap_id, &committed);
		pages = hd_sys_pages();
		ASSERT_LE(0, st);
		/* Only the D line can be ours: the live heap is gone. */
		ASSERT_NE(1, st);
		if (st == 0) {
			/* Off the view only once every page is freed. */
			EXPECT_EQ(self->pages, pages);
			break;
		}
		seen_d++;
		/* The view's count only goes down, and pages follow it. */
		EXPECT_LE(committed, last);
		last = committed;
		ASSERT_LT(polls++, 30000) TH_LOG("release never finished");
		usleep(1000);
	}
	TH_LOG("destroyed heap seen %ld times as D (%lld pages left at the "
	       "first look)", seen_d, (long long)(during - self->pages));
	EXPECT_TRUE(wait_released(30000));
	/* The mapping keeps the empty heap; munmap lets it go. */
	EXPECT_EQ(self->heaps + 1, hd_sys_heaps());
	munmap(p, BIG);
	EXPECT_EQ(self->heaps, hd_sys_heaps());
}

/*
 * The file goes away, and new heaps come and go, while a destroyed heap's
 * pages are still being freed; everything adds up afterwards.
 */
TEST_F(rel, destroy_while_being_freed)
{
	struct heapdev_create c, c2;
	int fd2, i;
	char *p;

	HD_SKIPPED_IN_SETUP();

	fd2 = hd_open();
	ASSERT_LE(0, fd2);
	p = big_heap(fd2, BIG, &c);
	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, hd_destroy_flags(fd2, c.heap_id, HEAPDEV_DESTROY_ASYNC));
	/* More work for the worker, then heaps that live while it runs. */
	for (i = 0; i < 8; i++) {
		ASSERT_EQ(0, hd_create(fd2, 0, 64 * self->pg, 0, &c2));
		ASSERT_EQ(0, hd_destroy_flags(fd2, c2.heap_id,
					      HEAPDEV_DESTROY_ASYNC));
		ASSERT_EQ(0, hd_create(self->fd, 0, 32 * self->pg, 0, &c2));
		ASSERT_EQ(0, hd_destroy(self->fd, c2.heap_id));
	}
	/* A live heap of the closing file goes with it. */
	ASSERT_EQ(0, hd_create(fd2, 0, 128 * self->pg, 0, &c2));
	munmap(p, BIG);
	close(fd2);
	/* Its accounting outlives the file until the pages are gone. */
	EXPECT_TRUE(wait_released(30000));
	EXPECT_TRUE(hd_wait_held(self->pages, self->heaps, 30000))
		TH_LOG("pages %ld (baseline %ld), heaps %ld (%ld)",
		       hd_sys_pages(), self->pages, hd_sys_heaps(),
		       self->heaps);
}

/* A decommitted range is gone at once; its pages are freed later. */
TEST_F(rel, decommit_async)
{
	struct heapdev_create c;
	struct heapdev_decommit dc = { .size = sizeof(dc) };
	struct heapdev_info info;
	long len = 16 * MIB, off;
	char *p;

	HD_SKIPPED_IN_SETUP();

	p = big_heap(self->fd, len, &c);
	ASSERT_NE(NULL, p);
	dc.heap_id = c.heap_id;
	dc.offset = self->pg;
	dc.length = len - 2 * self->pg;
	dc.flags = HEAPDEV_DECOMMIT_ASYNC;
	ASSERT_EQ(0, hd_ioctl(self->fd, HEAPDEV_IOC_DECOMMIT, &dc));
	EXPECT_EQ(len - 2 * self->pg, (long)dc.changed);
	EXPECT_EQ(2 * self->pg, (long)dc.committed);
	/* The heap's own view is exact at once... */
	EXPECT_EQ(SIGBUS, hd_probe(p + self->pg, false, 0));
	EXPECT_EQ(SIGBUS, hd_probe(p + len - 2 * self->pg, true, 1));
	EXPECT_EQ(0, hd_probe(p, true, 2));
	EXPECT_EQ(0, hd_probe(p + len - self->pg, true, 3));
	/* ...while the file's accounting still holds what is not freed. */
	ASSERT_EQ(0, hd_info(self->fd, &info));
	EXPECT_LE(2 * self->pg, (long)info.file_committed);
	EXPECT_GE(len, (long)info.file_committed);
	/* Recommitted pages are new and zeroed, freed or not. */
	ASSERT_EQ(0, hd_commit(self->fd, c.heap_id, self->pg,
			       len - 2 * self->pg, HEAPDEV_COMMIT_POPULATE,
			       NULL));
	for (off = self->pg; off < len - self->pg; off += self->pg)
		if (p[off])
			break;
	EXPECT_EQ(len - self->pg, off);
	EXPECT_EQ(2, p[0]);
	EXPECT_EQ(3, p[len - self->pg]);
	munmap(p, len);
	ASSERT_EQ(0, hd_destroy(self->fd, c.heap_id));
	EXPECT_TRUE(wait_released(30000));
	EXPECT_EQ(self->pages, hd_sys_pages());
	ASSERT_EQ(0, hd_info(self->fd, &info));
	EXPECT_EQ(0, (long)info.file_committed);
}

/*
 * Destroy and recreate at a limit, in a loop: the module never holds more
 * than the limit, and no commit fails, because a commit that would exceed
 * it waits for the pages still being released.
 */
static void limit_loop(struct __test_metadata *_metadata,
		       FIXTURE_DATA(rel) *self, const char *param)
{
	struct heapdev_create c;
	struct heapdev_info info;
	long limit = 16 * MIB, worst = 0, i;

	ASSERT_EQ(0, set_param(param, limit / MIB));
	for (i = 0; i < 6; i++) {
		char *p = big_heap(self->fd, limit, &c);
		long held;

		ASSERT_NE(NULL, p) TH_LOG("round %ld: %s", i, strerror(errno));
		held = hd_sys_pages() - self->pages;
		if (held > worst)
			worst = held;
		ASSERT_EQ(0, hd_info(self->fd, &info));
		EXPECT_GE(limit, (long)info.file_committed);
		EXPECT_GE(limit, (long)info.user_committed);
		munmap(p, limit);
		ASSERT_EQ(0, hd_destroy_flags(self->fd, c.heap_id,
					      HEAPDEV_DESTROY_ASYNC));
	}
	/* Over the limit even when nothing is pending: refused. */
	EXPECT_TRUE(wait_released(30000));
	EXPECT_EQ(-EDQUOT, hd_create(self->fd, 0, limit + self->pg, 0, &c));
	EXPECT_GE(limit / self->pg, worst);
	EXPECT_TRUE(wait_released(30000));
	EXPECT_EQ(self->pages, hd_sys_pages());
}

TEST_F(rel, file_limit_holds_during_release)
{
	HD_SKIPPED_IN_SETUP();
	if (geteuid() != 0)
		SKIP(return, "changing module parameters needs root");
	self->saved_file_limit = get_param("file_limit_mb");
	limit_loop(_metadata, self, "file_limit_mb");
}

TEST_F(rel, user_limit_holds_during_release)
{
	HD_SKIPPED_IN_SETUP();
	if (geteuid() != 0)
		SKIP(return, "changing module parameters needs root");
	self->saved_user_limit = get_param("user_limit_mb");
	limit_loop(_metadata, self, "user_limit_mb");
}

/*
 * Inside a cgroup with memory.max = 40 MiB: heaps of 24 MiB destroyed in
 * the background and created again.  Two of them do not fit, so each
 * commit can only succeed once the previous heap's pages are freed: the
 * pages stay charged to the cgroup until then, and the commit waits for
 * them instead of failing.
 */
static int memcg_loop(void)
{
	struct heapdev_create c;
	long len = 24 * MIB, i;
	int fd;

	if (hd_cg_enter(CG_TEST))
		return 10;
	fd = hd_open();
	if (fd < 0)
		return 11;
	for (i = 0; i < 5; i++) {
		char *p = big_heap(fd, len, &c);

		if (!p)
			return 20 + i;
		/* The heap is charged to this cgroup. */
		if (hd_cg_read(CG_TEST, "memory.current", NULL) < len)
			return 30 + i;
		munmap(p, len);
		if (hd_destroy_flags(fd, c.heap_id, HEAPDEV_DESTROY_ASYNC))
			return 40 + i;
	}
	close(fd);
	return 0;
}

TEST_F(rel, memcg_charge_holds_during_release)
{
	int status;
	pid_t pid;

	HD_SKIPPED_IN_SETUP();
	HD_CG_MAKE_OR_SKIP(CG_TEST, "41943040");

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(memcg_loop());
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_TRUE(wait_released(30000));
	EXPECT_EQ(0, hd_cg_read(CG_TEST, "memory.events", "oom_kill"));
	EXPECT_TRUE(hd_wait_held(self->pages, self->heaps, 30000));
	EXPECT_EQ(0, rmdir(CG_TEST));
}

TEST_HARNESS_MAIN
