// SPDX-License-Identifier: GPL-2.0-only
/*
 * heapdev lazy commit (HEAPDEV_COMMIT_LAZY): a commit that is a charge, as
 * on Windows.  The range counts as committed at once (limits, QUERY, the
 * admin view, the "pages" counter), each page exists from its first touch
 * on (QUERY's resident, the memory cgroup), decommit and destroy give back
 * touched and untouched pages alike, and a first touch the memory cgroup
 * cannot satisfy takes the kernel's OOM path.
 */

#define _GNU_SOURCE

#include <pthread.h>

#include "../kselftest_harness.h"
#include "heapdev_util.h"

#define NPAGES	64

FIXTURE(lazy) {
	int fd;
	long pg;
	long pages0;
	struct heapdev_create c;
	char *p;
	size_t len;
};

/* A growable heap with 64 pages mapped, none committed. */
FIXTURE_SETUP(lazy)
{
	struct heapdev_info info;

	self->pg = hd_page();
	self->p = MAP_FAILED;
	self->fd = hd_open();
	if (self->fd < 0 && errno == ENOENT)
		SKIP(return, HD_DEV " is missing: load heapdev.ko");
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, hd_info(self->fd, &info));
	if (!(info.features & HEAPDEV_FEAT_LAZY_COMMIT))
		SKIP(return, "the module has no HEAPDEV_FEAT_LAZY_COMMIT");
	self->pages0 = hd_sys_pages();
	ASSERT_EQ(0, hd_create(self->fd, 0, 0, 0, &self->c));
	self->len = NPAGES * self->pg;
	self->p = hd_map(self->fd, &self->c, 0, self->len,
			 PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, self->p);
}

FIXTURE_TEARDOWN(lazy)
{
	if (self->p != MAP_FAILED)
		munmap(self->p, self->len);
	if (self->fd >= 0)
		close(self->fd);
}

static long resident_pages(int fd, __u32 id, long pg, long *committed)
{
	struct heapdev_query q;

	if (hd_query(fd, id, &q))
		return -1;
	if (committed)
		*committed = q.committed / pg;
	return q.resident / pg;
}

TEST_F(lazy, feature_and_flags)
{
	HD_SKIPPED_IN_SETUP();

	/* Nothing to populate before the first touch. */
	EXPECT_EQ(-EINVAL, hd_commit(self->fd, self->c.heap_id, 0, self->pg,
				     HEAPDEV_COMMIT_LAZY |
				     HEAPDEV_COMMIT_POPULATE, NULL));
	EXPECT_EQ(-EINVAL, hd_commit(self->fd, self->c.heap_id, 0, self->pg,
				     1U << 2, NULL));
	EXPECT_EQ(0, resident_pages(self->fd, self->c.heap_id, self->pg,
				    NULL));
}

TEST_F(lazy, commit_charges_without_allocating)
{
	struct heapdev_commit out;
	struct heapdev_info info;
	long committed;

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, hd_commit(self->fd, self->c.heap_id, 0, self->len,
			       HEAPDEV_COMMIT_LAZY, &out));
	EXPECT_EQ(self->len, out.changed);
	EXPECT_EQ(self->len, out.committed);
	EXPECT_EQ(0, resident_pages(self->fd, self->c.heap_id, self->pg,
				    &committed));
	EXPECT_EQ(NPAGES, committed);
	/* The charge is there: limits, GET_INFO, the module's counter. */
	ASSERT_EQ(0, hd_info(self->fd, &info));
	EXPECT_EQ(self->len, info.file_committed);
	EXPECT_EQ(self->pages0 + NPAGES, hd_sys_pages());
	EXPECT_EQ(1, hd_proc_find(getpid(), self->c.heap_id, NULL, NULL));
}

TEST_F(lazy, first_touch_makes_a_zeroed_page)
{
	char *q;

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, hd_commit(self->fd, self->c.heap_id, 0, self->len,
			       HEAPDEV_COMMIT_LAZY, NULL));
	EXPECT_EQ(0, self->p[5 * self->pg + 17]);	/* read: zero */
	EXPECT_EQ(1, resident_pages(self->fd, self->c.heap_id, self->pg,
				    NULL));
	self->p[9 * self->pg] = 42;			/* write */
	self->p[9 * self->pg + 1] = 43;
	EXPECT_EQ(2, resident_pages(self->fd, self->c.heap_id, self->pg,
				    NULL));
	/* A second mapping sees the same page, and touches nothing new. */
	q = hd_map(self->fd, &self->c, 9 * self->pg, self->pg, PROT_READ);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_EQ(42, q[0]);
	EXPECT_EQ(43, q[1]);
	munmap(q, self->pg);
	EXPECT_EQ(2, resident_pages(self->fd, self->c.heap_id, self->pg,
				    NULL));
	/* The rest still reads as zero and becomes resident as it is read. */
	EXPECT_EQ(0, self->p[self->len - 1]);
	EXPECT_EQ(3, resident_pages(self->fd, self->c.heap_id, self->pg,
				    NULL));
	/* Nothing beyond the commit: SIGBUS as ever. */
	ASSERT_EQ(0, hd_decommit(self->fd, self->c.heap_id, 32 * self->pg,
				 32 * self->pg, NULL));
	EXPECT_EQ(SIGBUS, hd_probe(self->p + 40 * self->pg, false, 0));
}

TEST_F(lazy, commit_over_committed_pages_keeps_them)
{
	struct heapdev_commit out;

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, hd_commit(self->fd, self->c.heap_id, 0, 4 * self->pg, 0,
			       NULL));
	memset(self->p, 0x66, 4 * self->pg);
	ASSERT_EQ(0, hd_commit(self->fd, self->c.heap_id, 0, 8 * self->pg,
			       HEAPDEV_COMMIT_LAZY, &out));
	EXPECT_EQ(4 * self->pg, out.changed);
	EXPECT_EQ(8 * self->pg, out.committed);
	EXPECT_EQ(0x66, self->p[4 * self->pg - 1]);
	EXPECT_EQ(4, resident_pages(self->fd, self->c.heap_id, self->pg,
				    NULL));
	/* An eager commit over lazy pages leaves them lazy, and zero. */
	ASSERT_EQ(0, hd_commit(self->fd, self->c.heap_id, 0, 8 * self->pg, 0,
			       &out));
	EXPECT_EQ(0, out.changed);
	EXPECT_EQ(0, self->p[6 * self->pg]);
	EXPECT_EQ(5, resident_pages(self->fd, self->c.heap_id, self->pg,
				    NULL));
}

TEST_F(lazy, decommit_gives_back_touched_and_untouched)
{
	struct heapdev_decommit out;
	long committed;
	int i;

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, hd_commit(self->fd, self->c.heap_id, 0, self->len,
			       HEAPDEV_COMMIT_LAZY, NULL));
	for (i = 0; i < NPAGES; i += 3)
		self->p[i * self->pg] = (char)i;
	EXPECT_EQ((NPAGES + 2) / 3,
		  resident_pages(self->fd, self->c.heap_id, self->pg, NULL));
	ASSERT_EQ(0, hd_decommit(self->fd, self->c.heap_id, 0, self->len,
				 &out));
	EXPECT_EQ(self->len, out.changed);
	EXPECT_EQ(0, out.committed);
	EXPECT_EQ(0, resident_pages(self->fd, self->c.heap_id, self->pg,
				    &committed));
	EXPECT_EQ(0, committed);
	EXPECT_EQ(self->pages0, hd_sys_pages());
	EXPECT_EQ(SIGBUS, hd_probe(self->p, false, 0));
	EXPECT_EQ(SIGBUS, hd_probe(self->p + self->pg, true, 1));
	/* Recommitted pages, lazy or not, read as zero. */
	ASSERT_EQ(0, hd_commit(self->fd, self->c.heap_id, 0, self->len,
			       HEAPDEV_COMMIT_LAZY, NULL));
	EXPECT_EQ(0, self->p[0]);
	EXPECT_EQ(0, self->p[3 * self->pg]);
}

TEST_F(lazy, decommit_of_many_lazy_pages_async)
{
	const size_t big = 4096 * self->pg;	/* past the async minimum */
	struct heapdev_decommit d = {
		.size = sizeof(d), .flags = HEAPDEV_DECOMMIT_ASYNC,
		.heap_id = self->c.heap_id, .offset = 0, .length = big,
	};
	char *q;

	HD_SKIPPED_IN_SETUP();

	q = hd_map(self->fd, &self->c, 0, big, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, q);
	ASSERT_EQ(0, hd_commit(self->fd, self->c.heap_id, 0, big,
			       HEAPDEV_COMMIT_LAZY, NULL));
	memset(q + 1000 * self->pg, 1, 600 * self->pg);
	EXPECT_EQ(600, resident_pages(self->fd, self->c.heap_id, self->pg,
				      NULL));
	ASSERT_EQ(0, hd_ioctl(self->fd, HEAPDEV_IOC_DECOMMIT, &d));
	EXPECT_EQ(big, d.changed);
	EXPECT_TRUE(hd_wait_held(self->pages0, hd_sys_heaps(), 5000));
	munmap(q, big);
}

TEST_F(lazy, destroy_gives_back_every_page)
{
	long heaps = hd_sys_heaps();	/* the mapping keeps the heap */
	int i;

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, hd_commit(self->fd, self->c.heap_id, 0, self->len,
			       HEAPDEV_COMMIT_LAZY, NULL));
	for (i = 0; i < NPAGES; i += 2)
		self->p[i * self->pg] = 1;
	ASSERT_EQ(0, hd_destroy(self->fd, self->c.heap_id));
	EXPECT_TRUE(hd_wait_held(self->pages0, heaps, 5000));
	EXPECT_EQ(SIGBUS, hd_probe(self->p + 2 * self->pg, false, 0));
	EXPECT_EQ(SIGBUS, hd_probe(self->p + 3 * self->pg, false, 0));
}

TEST_F(lazy, destroy_async_of_lazy_heap)
{
	const size_t big = 2048 * self->pg;
	long heaps = hd_sys_heaps();
	char *q;

	HD_SKIPPED_IN_SETUP();

	q = hd_map(self->fd, &self->c, 0, big, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, q);
	ASSERT_EQ(0, hd_commit(self->fd, self->c.heap_id, 0, big,
			       HEAPDEV_COMMIT_LAZY, NULL));
	memset(q, 3, big / 2);
	ASSERT_EQ(0, hd_destroy_flags(self->fd, self->c.heap_id,
				      HEAPDEV_DESTROY_ASYNC));
	EXPECT_TRUE(hd_wait_held(self->pages0, heaps, 5000));
	EXPECT_EQ(0, hd_sys_releasing());
	munmap(q, big);
}

struct toucher {
	char *p;
	size_t len;
	long pg;
	int id;
	pthread_barrier_t *start;
};

/* Touch every page, reading first, as several threads do at once. */
static void *touch_all(void *arg)
{
	struct toucher *t = arg;
	size_t off;

	pthread_barrier_wait(t->start);
	for (off = 0; off < t->len; off += t->pg) {
		if (t->p[off + t->id] != 0)
			return (void *)1;
		t->p[off + 8 + t->id] = (char)(t->id + 1);
	}
	return NULL;
}

TEST_F(lazy, concurrent_first_touches_share_one_page)
{
	pthread_barrier_t start;
	struct toucher t[4];
	pthread_t th[4];
	void *ret;
	size_t off;
	int i, j;

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, hd_commit(self->fd, self->c.heap_id, 0, self->len,
			       HEAPDEV_COMMIT_LAZY, NULL));
	pthread_barrier_init(&start, NULL, 4);
	for (i = 0; i < 4; i++) {
		t[i] = (struct toucher){ self->p, self->len, self->pg, i,
					 &start };
		ASSERT_EQ(0, pthread_create(&th[i], NULL, touch_all, &t[i]));
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], &ret);
		EXPECT_EQ(NULL, ret);
	}
	pthread_barrier_destroy(&start);
	/* One page per offset: every thread's byte landed in it. */
	for (off = 0; off < self->len; off += self->pg)
		for (j = 0; j < 4; j++)
			ASSERT_EQ(j + 1, self->p[off + 8 + j]);
	EXPECT_EQ(NPAGES, resident_pages(self->fd, self->c.heap_id, self->pg,
					 NULL));
	EXPECT_EQ(self->pages0 + NPAGES, hd_sys_pages());
}

TEST_F(lazy, fixed_heap_limit_counts_lazy_pages)
{
	struct heapdev_create f;

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, hd_create(self->fd, 0, 0, 8 * self->pg, &f));
	ASSERT_EQ(0, hd_commit(self->fd, f.heap_id, 0, 8 * self->pg,
			       HEAPDEV_COMMIT_LAZY, NULL));
	EXPECT_EQ(-EINVAL, hd_commit(self->fd, f.heap_id, 8 * self->pg,
				     self->pg, HEAPDEV_COMMIT_LAZY, NULL));
	EXPECT_EQ(self->pages0 + 8, hd_sys_pages());
	ASSERT_EQ(0, hd_destroy(self->fd, f.heap_id));
}

/* heap_limit_mb counts lazy pages like any commit (root only). */
TEST_F(lazy, heap_limit_counts_lazy_pages)
{
	char old[32];
	long saved;

	HD_SKIPPED_IN_SETUP();
	if (geteuid() != 0)
		SKIP(return, "changing module parameters needs root");

	saved = hd_read_long(HD_PARAMS "heap_limit_mb");
	ASSERT_LE(0, saved);
	ASSERT_EQ(0, hd_write_str(HD_PARAMS "heap_limit_mb", "1"));
	EXPECT_EQ(0, hd_commit(self->fd, self->c.heap_id, 0, 1 << 20,
			       HEAPDEV_COMMIT_LAZY, NULL));
	EXPECT_EQ(-EDQUOT, hd_commit(self->fd, self->c.heap_id, 1 << 20,
				     self->pg, HEAPDEV_COMMIT_LAZY, NULL));
	EXPECT_EQ(-EDQUOT, hd_commit(self->fd, self->c.heap_id, 1 << 20,
				     self->pg, 0, NULL));
	snprintf(old, sizeof(old), "%ld", saved);
	hd_write_str(HD_PARAMS "heap_limit_mb", old);
}

#define CG_TEST	HD_CG_ROOT "/heapdev-lazy-selftest"
#define MIB	(1L << 20)

/*
 * In a cgroup with memory.max = 32 MiB: a lazy commit of 64 MiB succeeds
 * (the cgroup is charged per touched page), 8 MiB touched raise
 * memory.current by about 8 MiB, and touching on past the limit ends in
 * the cgroup's OOM kill.  Returns 0 only if it was not killed.
 */
static int lazy_in_cgroup(void *arg)
{
	struct heapdev_create c;
	long before, after, i;
	int fd;
	char *p;

	(void)arg;
	if (hd_cg_enter(CG_TEST))
		return 30;
	fd = hd_open();
	if (fd < 0 || hd_create(fd, 0, 0, 0, &c))
		return 31;
	p = hd_map(fd, &c, 0, 64 * MIB, PROT_READ | PROT_WRITE);
	if (p == MAP_FAILED)
		return 32;
	if (hd_commit(fd, c.heap_id, 0, 64 * MIB, HEAPDEV_COMMIT_LAZY, NULL))
		return 33;
	before = hd_cg_read(CG_TEST, "memory.current", NULL);
	memset(p, 1, 8 * MIB);
	after = hd_cg_read(CG_TEST, "memory.current", NULL);
	if (after - before < 7 * MIB || after - before > 12 * MIB)
		return 34;
	for (i = 8; i < 64; i++)
		memset(p + i * MIB, 1, MIB);
	return 35;		/* 64 MiB resident in 32 MiB: not possible */
}

TEST(lazy_first_touch_is_charged_to_the_memory_cgroup)
{
	long pages0 = hd_sys_pages(), heaps0 = hd_sys_heaps();

	HD_FEATURE_OR_SKIP(HEAPDEV_FEAT_LAZY_COMMIT);
	HD_CG_MAKE_OR_SKIP(CG_TEST, "33554432");
	/* No swap to escape to: the touches must hit the limit. */
	hd_write_str(CG_TEST "/memory.swap.max", "0");

	EXPECT_EQ(128 + SIGKILL, hd_in_child(lazy_in_cgroup, NULL));
	EXPECT_LE(1, hd_cg_read(CG_TEST, "memory.events", "oom_kill"));
	EXPECT_TRUE(hd_wait_held(pages0, heaps0, 5000));
	EXPECT_EQ(0, rmdir(CG_TEST));
}

TEST_HARNESS_MAIN
