// SPDX-License-Identifier: GPL-2.0-only
/*
 * heapdev inheritable heaps (HEAPDEV_HEAP_INHERIT): a child created by
 * fork() gets its own copy of each such heap at the same addresses, works
 * on it through the inherited descriptor (commit, decommit, create, map),
 * and neither process sees the other's writes after the fork.  The copy is
 * charged to the child like a commit and given back when the child exits
 * or execs; heaps without the flag stay the parent's alone.
 */

#define _GNU_SOURCE

#include <pthread.h>

#include "../kselftest_harness.h"
#include "heapdev_util.h"

#define NPAGES	16
#define NCOMMIT	8

FIXTURE(inh) {
	int fd;
	long pg;
	long pages0, heaps0;
	struct heapdev_create c;
	char *p;
	size_t len;
};

/*
 * An inheritable growable heap, NCOMMIT of its NPAGES mapped pages
 * committed, each page filled with its index.
 */
FIXTURE_SETUP(inh)
{
	struct heapdev_info info;
	int i;

	self->pg = hd_page();
	self->p = MAP_FAILED;
	self->fd = hd_open();
	if (self->fd < 0 && errno == ENOENT)
		SKIP(return, HD_DEV " is missing: load heapdev.ko");
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, hd_info(self->fd, &info));
	if (!(info.features & HEAPDEV_FEAT_INHERIT))
		SKIP(return, "the module has no HEAPDEV_FEAT_INHERIT");
	self->pages0 = hd_sys_pages();
	self->heaps0 = hd_sys_heaps();
	ASSERT_EQ(0, hd_create(self->fd, HEAPDEV_HEAP_INHERIT,
			       NCOMMIT * self->pg, 0, &self->c));
	self->len = NPAGES * self->pg;
	self->p = hd_map(self->fd, &self->c, 0, self->len,
			 PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, self->p);
	for (i = 0; i < NCOMMIT; i++)
		memset(self->p + i * self->pg, 'a' + i, self->pg);
}

FIXTURE_TEARDOWN(inh)
{
	if (self->p != MAP_FAILED)
		munmap(self->p, self->len);
	if (self->fd >= 0)
		close(self->fd);
}

/* Whether page @i of @p holds only @c. */
static bool page_is(const char *p, long pg, int i, char c)
{
	long j;

	for (j = 0; j < pg; j++)
		if (p[i * pg + j] != c)
			return false;
	return true;
}

struct inh_arg {
	int fd;
	__u32 id;
	char *p;
	long pg;
	int sync[2];	/* child -> parent */
	int go[2];	/* parent -> child */
};

static struct inh_arg inh_arg(FIXTURE_DATA(inh) *self)
{
	struct inh_arg a = {
		.fd = self->fd, .id = self->c.heap_id, .p = self->p,
		.pg = self->pg,
	};

	return a;
}

/*
 * After a child ran: the parent's heap is as the fixture made it (its
 * pages, its committed size, its one mapping), and the child's copy is
 * gone (the module holds the parent's pages and heap only).
 */
static void parent_unchanged(struct __test_metadata *_metadata,
			     FIXTURE_DATA(inh) *self)
{
	struct heapdev_query q;
	int i;

	for (i = 0; i < NCOMMIT; i++)
		EXPECT_TRUE(page_is(self->p, self->pg, i, 'a' + i));
	ASSERT_EQ(0, hd_query(self->fd, self->c.heap_id, &q));
	EXPECT_EQ(NCOMMIT * self->pg, q.committed);
	EXPECT_EQ(1, q.mappings);
	EXPECT_TRUE(hd_wait_held(self->pages0 + NCOMMIT, self->heaps0 + 1,
				 2000));
}

static int child_reads_writes(void *arg)
{
	struct inh_arg *a = arg;
	struct heapdev_query q;
	int i;

	for (i = 0; i < NCOMMIT; i++)
		if (!page_is(a->p, a->pg, i, 'a' + i))
			return 1;
	/* Its own heap behind the inherited descriptor. */
	if (hd_query(a->fd, a->id, &q))
		return 2;
	if (q.committed != NCOMMIT * a->pg || q.mappings != 1 ||
	    !(q.heap_flags & HEAPDEV_HEAP_INHERIT))
		return 3;
	for (i = 0; i < NCOMMIT; i++)
		memset(a->p + i * a->pg, 'A' + i, a->pg);
	for (i = 0; i < NCOMMIT; i++)
		if (!page_is(a->p, a->pg, i, 'A' + i))
			return 4;
	/* Reserved, not committed: as in the parent. */
	if (hd_probe(a->p + NCOMMIT * a->pg, false, 0) != SIGBUS)
		return 5;
	return 0;
}

TEST_F(inh, child_reads_and_writes_its_copy)
{
	struct inh_arg a = inh_arg(self);

	HD_SKIPPED_IN_SETUP();

	EXPECT_EQ(0, hd_in_child(child_reads_writes, &a));
	/* The parent's pages are untouched by the child's writes. */
	parent_unchanged(_metadata, self);
}

TEST_F(inh, flags_and_feature)
{
	struct heapdev_create c;
	struct heapdev_query q;

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, hd_query(self->fd, self->c.heap_id, &q));
	EXPECT_TRUE(q.heap_flags & HEAPDEV_HEAP_INHERIT);
	EXPECT_TRUE(q.heap_flags & HEAPDEV_HEAP_GROWABLE);
	ASSERT_EQ(0, hd_create(self->fd, HEAPDEV_HEAP_INHERIT |
			       HEAPDEV_HEAP_EXEC, 0, 16 * self->pg, &c));
	ASSERT_EQ(0, hd_query(self->fd, c.heap_id, &q));
	EXPECT_EQ(HEAPDEV_HEAP_INHERIT | HEAPDEV_HEAP_EXEC, q.heap_flags);
	EXPECT_EQ(0, hd_destroy(self->fd, c.heap_id));
	EXPECT_EQ(-EINVAL, hd_create(self->fd, 1U << 4, 0, 0, &c));
	EXPECT_EQ(-EINVAL, hd_create(self->fd, HEAPDEV_HEAP_GROWABLE, 0, 0,
				     &c));
}

/*
 * After the fork, each process writes and tells the other: neither sees
 * the other's write.
 */
static int child_after_fork(void *arg)
{
	struct inh_arg *a = arg;
	char c;

	if (read(a->go[0], &c, 1) != 1)
		return 1;
	/* The parent wrote 'Z' into page 0 after the fork. */
	if (!page_is(a->p, a->pg, 0, 'a'))
		return 2;
	memset(a->p + a->pg, 'Y', a->pg);
	if (write(a->sync[1], "x", 1) != 1)
		return 3;
	return 0;
}

TEST_F(inh, writes_after_fork_stay_private)
{
	struct inh_arg a = inh_arg(self);
	int status;
	pid_t pid;
	char c;

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, pipe(a.sync));
	ASSERT_EQ(0, pipe(a.go));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(child_after_fork(&a));
	memset(self->p, 'Z', self->pg);
	ASSERT_EQ(1, write(a.go[1], "x", 1));
	ASSERT_EQ(1, read(a.sync[0], &c, 1));
	EXPECT_TRUE(page_is(self->p, self->pg, 1, 'b'));
	EXPECT_TRUE(page_is(self->p, self->pg, 0, 'Z'));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

struct two_heaps {
	struct inh_arg a;
	struct heapdev_create other;
	char *q;
};

static int child_other_heap(void *arg)
{
	struct two_heaps *t = arg;
	struct heapdev_query q;

	if (!page_is(t->a.p, t->a.pg, 0, 'a'))
		return 1;
	/* The heap without the flag: no mapping, no heap. */
	if (hd_probe(t->q, false, 0) != SIGSEGV)
		return 2;
	if (hd_query(t->a.fd, t->other.heap_id, &q) != -ENOENT)
		return 3;
	if (mmap(NULL, t->a.pg, PROT_READ, MAP_SHARED, t->a.fd,
		 t->other.mmap_offset) != MAP_FAILED || errno != ENXIO)
		return 4;
	return 0;
}

TEST_F(inh, heaps_without_the_flag_are_not_inherited)
{
	struct two_heaps t = { .a = inh_arg(self) };

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, hd_create(self->fd, 0, self->pg, 0, &t.other));
	t.q = hd_map(self->fd, &t.other, 0, self->pg, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, t.q);
	t.q[0] = 'q';
	EXPECT_EQ(0, hd_in_child(child_other_heap, &t));
	EXPECT_EQ('q', t.q[0]);
	munmap(t.q, self->pg);
}

/* The child commits, decommits, creates and maps through the descriptor. */
static int child_works_on_heaps(void *arg)
{
	struct inh_arg *a = arg;
	struct heapdev_create c;
	struct heapdev_query q;
	unsigned long long committed;
	char *n;

	if (hd_commit(a->fd, a->id, NCOMMIT * a->pg, 2 * a->pg, 0, NULL))
		return 1;
	a->p[NCOMMIT * a->pg] = 'n';
	if (hd_decommit(a->fd, a->id, 0, a->pg, NULL))
		return 2;
	if (hd_probe(a->p, false, 0) != SIGBUS)
		return 3;
	if (hd_query(a->fd, a->id, &q) || q.committed != (NCOMMIT + 1) * a->pg)
		return 4;
	if (hd_create(a->fd, 0, a->pg, 0, &c) || c.heap_id == a->id)
		return 5;
	n = hd_map(a->fd, &c, 0, a->pg, PROT_READ | PROT_WRITE);
	if (n == MAP_FAILED)
		return 6;
	n[0] = 1;
	/* The admin view shows the child with its heaps. */
	if (hd_proc_find(getpid(), a->id, &committed, NULL) != 1 ||
	    committed != (NCOMMIT + 1) * a->pg ||
	    hd_proc_find(getpid(), c.heap_id, NULL, NULL) != 1)
		return 7;
	if (hd_destroy(a->fd, c.heap_id))
		return 8;
	munmap(n, a->pg);
	return 0;
}

TEST_F(inh, child_commits_decommits_and_creates)
{
	struct inh_arg a = inh_arg(self);

	HD_SKIPPED_IN_SETUP();

	EXPECT_EQ(0, hd_in_child(child_works_on_heaps, &a));
	/* The child's decommit zapped the parent's page tables: refaulted. */
	parent_unchanged(_metadata, self);
	EXPECT_EQ(SIGBUS, hd_probe(self->p + NCOMMIT * self->pg, false, 0));
}

static int grandchild(void *arg)
{
	struct inh_arg *a = arg;

	if (!page_is(a->p, a->pg, 0, 'A') || !page_is(a->p, a->pg, 1, 'b'))
		return 1;
	memset(a->p, 'G', a->pg);
	return 0;
}

static int child_forks(void *arg)
{
	struct inh_arg *a = arg;
	int ret;

	memset(a->p, 'A', a->pg);
	ret = hd_in_child(grandchild, a);
	if (ret)
		return 10 + ret;
	/* The grandchild's write stayed in the grandchild. */
	return page_is(a->p, a->pg, 0, 'A') ? 0 : 2;
}

TEST_F(inh, grandchildren_inherit_the_child_copy)
{
	struct inh_arg a = inh_arg(self);

	HD_SKIPPED_IN_SETUP();

	EXPECT_EQ(0, hd_in_child(child_forks, &a));
	parent_unchanged(_metadata, self);
}

/* While the child lives, its copy is held and charged; exit gives it back. */
static int child_holds(void *arg)
{
	struct inh_arg *a = arg;
	struct heapdev_info info;
	char c;

	if (hd_info(a->fd, &info))
		return 1;
	/* Its own file: the copy only. */
	if (info.file_committed != NCOMMIT * a->pg)
		return 2;
	if (write(a->sync[1], "x", 1) != 1)
		return 3;
	if (read(a->go[0], &c, 1) != 1)
		return 4;
	return 0;
}

TEST_F(inh, copy_is_charged_and_released_at_exit)
{
	struct inh_arg a = inh_arg(self);
	struct heapdev_info info;
	int status;
	pid_t pid;
	char c;

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, pipe(a.sync));
	ASSERT_EQ(0, pipe(a.go));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(child_holds(&a));
	ASSERT_EQ(1, read(a.sync[0], &c, 1));
	EXPECT_EQ(self->pages0 + 2 * NCOMMIT, hd_sys_pages());
	EXPECT_EQ(self->heaps0 + 2, hd_sys_heaps());
	ASSERT_EQ(0, hd_info(self->fd, &info));
	EXPECT_EQ(NCOMMIT * self->pg, info.file_committed);
	/* The user holds both: the parent's heap and the child's copy. */
	EXPECT_LE(2 * NCOMMIT * self->pg, info.user_committed);
	EXPECT_EQ(1, hd_proc_count(pid));
	ASSERT_EQ(1, write(a.go[1], "x", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_TRUE(hd_wait_held(self->pages0 + NCOMMIT, self->heaps0 + 1,
				 2000));
	EXPECT_EQ(0, hd_proc_count(pid));
}

/* exec() tears the child's address space down: its copies go with it. */
TEST_F(inh, exec_releases_the_copy)
{
	int status, sync[2];
	pid_t pid;

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, pipe(sync));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		char *argv[] = { "sh", "-c", "read x", NULL };

		/* stdin: the pipe, which the parent closes to let it end */
		dup2(sync[0], 0);
		close(sync[1]);
		execv("/bin/sh", argv);
		_exit(127);
	}
	close(sync[0]);
	/* The shell runs (and waits on its stdin) once the copy is gone. */
	EXPECT_TRUE(hd_wait_held(self->pages0 + NCOMMIT, self->heaps0 + 1,
				 5000));
	close(sync[1]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
}

static int child_lazy(void *arg)
{
	struct inh_arg *a = arg;
	struct heapdev_query q;

	if (hd_query(a->fd, a->id, &q))
		return 1;
	/* Two touched pages copied, fourteen still a charge only. */
	if (q.committed != (NCOMMIT + 16) * a->pg ||
	    q.resident != (NCOMMIT + 2) * a->pg)
		return 2;
	if (a->p[NCOMMIT * a->pg] != 'l' || a->p[(NCOMMIT + 5) * a->pg] ||
	    a->p[(NCOMMIT + 15) * a->pg] != 'm')
		return 3;
	return 0;
}

TEST_F(inh, lazy_pages_stay_lazy_in_the_child)
{
	struct inh_arg a = inh_arg(self);
	struct heapdev_info info;
	char *p;

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, hd_info(self->fd, &info));
	if (!(info.features & HEAPDEV_FEAT_LAZY_COMMIT))
		SKIP(return, "the module has no HEAPDEV_FEAT_LAZY_COMMIT");
	munmap(self->p, self->len);
	self->len = (NCOMMIT + 16) * self->pg;
	p = hd_map(self->fd, &self->c, 0, self->len, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	self->p = a.p = p;
	ASSERT_EQ(0, hd_commit(self->fd, self->c.heap_id, NCOMMIT * self->pg,
			       16 * self->pg, HEAPDEV_COMMIT_LAZY, NULL));
	p[NCOMMIT * self->pg] = 'l';
	p[(NCOMMIT + 15) * self->pg] = 'm';
	EXPECT_EQ(0, hd_in_child(child_lazy, &a));
}

static int child_probe_copy(void *arg)
{
	struct inh_arg *a = arg;
	struct heapdev_query q;

	/* No copy could be made: no heap, and the mapping faults. */
	if (hd_query(a->fd, a->id, &q) != -ENOENT)
		return 1;
	return hd_probe(a->p, false, 0) == SIGBUS ? 0 : 2;
}

/* A copy over the user's limit is not made: the child has no such heap. */
TEST_F(inh, copy_over_a_limit_is_not_made)
{
	struct inh_arg a = inh_arg(self);
	struct heapdev_info info;
	char val[32];
	long saved;

	HD_SKIPPED_IN_SETUP();

	if (geteuid() != 0)
		SKIP(return, "changing module parameters needs root");
	saved = hd_read_long(HD_PARAMS "user_limit_mb");
	ASSERT_LE(0, saved);
	ASSERT_EQ(0, hd_info(self->fd, &info));
	/* Room for what the user holds now, not for a copy of 16 MiB. */
	ASSERT_EQ(0, hd_commit(self->fd, self->c.heap_id, 0, 16 << 20, 0,
			       NULL));
	ASSERT_EQ(0, hd_info(self->fd, &info));
	snprintf(val, sizeof(val), "%llu",
		 (unsigned long long)(info.user_committed >> 20) + 8);
	ASSERT_EQ(0, hd_write_str(HD_PARAMS "user_limit_mb", val));
	EXPECT_EQ(0, hd_in_child(child_probe_copy, &a));
	snprintf(val, sizeof(val), "%ld", saved);
	ASSERT_EQ(0, hd_write_str(HD_PARAMS "user_limit_mb", val));
	EXPECT_TRUE(page_is(self->p, self->pg, 0, 'a'));
	EXPECT_TRUE(hd_wait_held(self->pages0 + (16 << 20) / self->pg,
				 self->heaps0 + 1, 2000));
}

/* Forks while other threads commit, decommit and write to the heap. */
struct churn {
	FIXTURE_DATA(inh) *self;
	volatile bool stop;
	unsigned long rounds;
};

static void *churn_thread(void *arg)
{
	struct churn *ch = arg;
	long pg = ch->self->pg;
	__u32 id = ch->self->c.heap_id;
	int fd = ch->self->fd;

	while (!ch->stop) {
		hd_commit(fd, id, NCOMMIT * pg, 4 * pg, 0, NULL);
		memset(ch->self->p + NCOMMIT * pg, 'c', 4 * pg);
		hd_decommit(fd, id, NCOMMIT * pg, 4 * pg, NULL);
		ch->rounds++;
	}
	return NULL;
}

static int child_checks_stable_pages(void *arg)
{
	struct inh_arg *a = arg;
	int i;

	/* Pages the threads never touch are intact in every child. */
	for (i = 0; i < NCOMMIT; i++)
		if (!page_is(a->p, a->pg, i, 'a' + i))
			return 1;
	return 0;
}

TEST_F(inh, fork_while_threads_churn)
{
	struct inh_arg a = inh_arg(self);
	struct churn ch = { .self = self };
	pthread_t th;
	int i, bad = 0;

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, pthread_create(&th, NULL, churn_thread, &ch));
	for (i = 0; i < 50; i++)
		bad += hd_in_child(child_checks_stable_pages, &a) != 0;
	ch.stop = true;
	pthread_join(th, NULL);
	EXPECT_EQ(0, bad);
	TH_LOG("%lu commit/decommit rounds during 50 forks", ch.rounds);
	EXPECT_TRUE(hd_wait_held(self->pages0 + NCOMMIT, self->heaps0 + 1,
				 5000));
}

#define MIB	(1L << 20)
#define CG_FORK	HD_CG_ROOT "/heapdev-fork-selftest"

/*
 * In the test cgroup: a heap of @arg MiB, forked, and the child writes
 * every page.  The fork itself allocates nothing (the pages are shared);
 * each page the child writes is copied then and charged to the cgroup,
 * and uncharged at the child's exit.  Returns 0 when the child's copy was
 * charged and given back; the child's status (128 + signal) when it did
 * not survive its writes.
 */
static int fork_in_cgroup(void *arg)
{
	long mib = (long)arg, before, forked, during, after;
	int fd, sync[2], go[2], status;
	struct heapdev_create c;
	char *p, x;
	pid_t pid;

	if (hd_cg_enter(CG_FORK) || pipe(sync) || pipe(go))
		return 30;
	fd = hd_open();
	if (fd < 0 || hd_create(fd, HEAPDEV_HEAP_INHERIT, mib * MIB, 0, &c))
		return 31;
	p = hd_map(fd, &c, 0, mib * MIB, PROT_READ | PROT_WRITE);
	if (p == MAP_FAILED)
		return 32;
	memset(p, 7, mib * MIB);
	before = hd_cg_read(CG_FORK, "memory.current", NULL);
	pid = fork();
	if (!pid) {
		close(sync[0]);
		close(go[1]);
		/* The OOM killer's choice, should it have to make one. */
		hd_write_str("/proc/self/oom_score_adj", "1000");
		if (write(sync[1], "x", 1) != 1 || read(go[0], &x, 1) != 1)
			_exit(2);
		if (p[0] != 7 || p[mib * MIB - 1] != 7)
			_exit(3);
		memset(p, 8, mib * MIB);
		if (write(sync[1], "x", 1) != 1 || read(go[0], &x, 1) != 1)
			_exit(4);
		_exit(0);
	}
	/* Its death must end the reads below. */
	close(sync[1]);
	close(go[0]);
	if (pid < 0 || read(sync[0], &x, 1) != 1)
		return 33;
	forked = hd_cg_read(CG_FORK, "memory.current", NULL);
	if (write(go[1], "x", 1) != 1)
		return 34;
	if (read(sync[0], &x, 1) == 1) {
		during = hd_cg_read(CG_FORK, "memory.current", NULL);
		if (write(go[1], "x", 1) != 1)
			return 35;
	} else {
		during = -1;	/* the child died writing */
	}
	if (waitpid(pid, &status, 0) != pid)
		return 36;
	after = hd_cg_read(CG_FORK, "memory.current", NULL);
	if (p[0] != 7 || p[mib * MIB - 1] != 7)
		return 37;	/* the parent's pages stay its own */
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return 10 + WEXITSTATUS(status);
	/* The fork copied nothing; the writes copied every page. */
	if (forked - before > 4 * MIB)
		return 38;
	if (during - before < (mib - 1) * MIB ||
	    during - before > (mib + 8) * MIB)
		return 39;
	return after - before <= 4 * MIB ? 0 : 40;
}

TEST(fork_copy_is_charged_to_the_memory_cgroup)
{
	long pages0 = hd_sys_pages(), heaps0 = hd_sys_heaps();

	HD_FEATURE_OR_SKIP(HEAPDEV_FEAT_INHERIT);
	HD_CG_MAKE_OR_SKIP(CG_FORK, "67108864");
	hd_write_str(CG_FORK "/memory.swap.max", "0");

	/*
	 * 16 MiB twice fit in 64 MiB.  40 MiB twice do not: the child's
	 * writes end in the cgroup's OOM kill, as writes to anonymous memory
	 * a fork shared do.
	 */
	EXPECT_EQ(0, hd_in_child(fork_in_cgroup, (void *)16L));
	EXPECT_EQ(0, hd_cg_read(CG_FORK, "memory.events", "oom_kill"));
	EXPECT_EQ(128 + SIGKILL, hd_in_child(fork_in_cgroup, (void *)40L));
	EXPECT_LE(1, hd_cg_read(CG_FORK, "memory.events", "oom_kill"));
	EXPECT_TRUE(hd_wait_held(pages0, heaps0, 5000));
	EXPECT_EQ(0, rmdir(CG_FORK));
}

TEST_HARNESS_MAIN
