// SPDX-License-Identifier: GPL-2.0-only
/*
 * heapdev mappings: committed pages are zeroed and resident, uncommitted
 * pages raise SIGBUS, decommit unmaps, heaps stay private to their process,
 * and every order of close, munmap and destroy is safe.
 */

#define _GNU_SOURCE

#include <sys/syscall.h>
#include <sys/uio.h>

#include "../kselftest_harness.h"
#include "heapdev_util.h"

FIXTURE(map) {
	int fd;
	long pg;
	struct heapdev_create c;
	char *p;
	size_t len;
};

/* Every test gets a growable heap with 16 pages mapped, 4 committed. */
FIXTURE_SETUP(map)
{
	self->pg = hd_page();
	self->p = MAP_FAILED;
	self->fd = hd_open();
	if (self->fd < 0 && errno == ENOENT)
		SKIP(return, HD_DEV " is missing: load heapdev.ko");
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, hd_create(self->fd, 0, 4 * self->pg, 0, &self->c));
	self->len = 16 * self->pg;
	self->p = hd_map(self->fd, &self->c, 0, self->len,
			 PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, self->p);
}

FIXTURE_TEARDOWN(map)
{
	if (self->p != MAP_FAILED)
		munmap(self->p, self->len);
	if (self->fd >= 0)
		close(self->fd);
}

static bool all_zero(const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

TEST_F(map, committed_pages_are_zero_and_writable)
{
	HD_SKIPPED_IN_SETUP();

	EXPECT_TRUE(all_zero(self->p, 4 * self->pg));
	memset(self->p, 0x5a, 4 * self->pg);
	EXPECT_EQ(0x5a, self->p[4 * self->pg - 1]);
}

TEST_F(map, uncommitted_pages_raise_sigbus)
{
	HD_SKIPPED_IN_SETUP();

	EXPECT_EQ(SIGBUS, hd_probe(self->p + 4 * self->pg, false, 0));
	EXPECT_EQ(SIGBUS, hd_probe(self->p + 15 * self->pg, true, 1));
	EXPECT_EQ(0, hd_probe(self->p + 3 * self->pg, true, 1));
}

TEST_F(map, commit_makes_pages_usable)
{
	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, hd_commit(self->fd, self->c.heap_id, 8 * self->pg,
			       2 * self->pg, 0, NULL));
	EXPECT_EQ(0, hd_probe(self->p + 8 * self->pg, true, 7));
	EXPECT_EQ(0, hd_probe(self->p + 9 * self->pg + 100, true, 7));
	EXPECT_EQ(SIGBUS, hd_probe(self->p + 10 * self->pg, false, 0));
}

TEST_F(map, decommit_unmaps_and_recommit_is_zero)
{
	HD_SKIPPED_IN_SETUP();

	memset(self->p, 0x77, 4 * self->pg);
	ASSERT_EQ(0, hd_decommit(self->fd, self->c.heap_id, self->pg,
				 2 * self->pg, NULL));
	EXPECT_EQ(SIGBUS, hd_probe(self->p + self->pg, false, 0));
	EXPECT_EQ(SIGBUS, hd_probe(self->p + 2 * self->pg + 5, true, 1));
	ASSERT_EQ(0, hd_commit(self->fd, self->c.heap_id, self->pg,
			       2 * self->pg, 0, NULL));
	EXPECT_TRUE(all_zero(self->p + self->pg, 2 * self->pg));
}

TEST_F(map, data_survives_other_ranges)
{
	long pg = self->pg;
	int i;

	HD_SKIPPED_IN_SETUP();

	memset(self->p, 0x11, pg);
	memset(self->p + 3 * pg, 0x33, pg);
	for (i = 0; i < 20; i++) {
		ASSERT_EQ(0, hd_commit(self->fd, self->c.heap_id, 4 * pg,
				       8 * pg, 0, NULL));
		memset(self->p + 4 * pg, i, 8 * pg);
		ASSERT_EQ(0, hd_decommit(self->fd, self->c.heap_id, pg,
					 2 * pg, NULL));
		ASSERT_EQ(0, hd_decommit(self->fd, self->c.heap_id, 4 * pg,
					 8 * pg, NULL));
		ASSERT_EQ(0, hd_commit(self->fd, self->c.heap_id, pg, pg, 0,
				       NULL));
	}
	EXPECT_EQ(0x11, self->p[0]);
	EXPECT_EQ(0x11, self->p[pg - 1]);
	EXPECT_EQ(0x33, self->p[3 * pg]);
	EXPECT_EQ(0x33, self->p[4 * pg - 1]);
}

TEST_F(map, two_mappings_share_pages)
{
	char *q = hd_map(self->fd, &self->c, 0, 4 * self->pg,
			 PROT_READ | PROT_WRITE);
	struct heapdev_query qu;

	HD_SKIPPED_IN_SETUP();

	ASSERT_NE(MAP_FAILED, q);
	ASSERT_EQ(0, hd_query(self->fd, self->c.heap_id, &qu));
	EXPECT_EQ(2, qu.mappings);
	self->p[123] = 42;
	EXPECT_EQ(42, q[123]);
	/* Decommit reaches every mapping. */
	ASSERT_EQ(0, hd_decommit(self->fd, self->c.heap_id, 0, self->pg, NULL));
	EXPECT_EQ(SIGBUS, hd_probe(q, false, 0));
	EXPECT_EQ(SIGBUS, hd_probe(self->p, false, 0));
	munmap(q, 4 * self->pg);
	ASSERT_EQ(0, hd_query(self->fd, self->c.heap_id, &qu));
	EXPECT_EQ(1, qu.mappings);
}

TEST_F(map, sparse_pages_appear_at_their_own_addresses)
{
	long pg = self->pg;
	char *q;
	int i;

	HD_SKIPPED_IN_SETUP();

	/*
	 * Commit a sparse pattern, let faults (and the fault-around that
	 * maps neighbours) run in an irregular order, then check through a
	 * second mapping that every page sits at its own offset.
	 */
	ASSERT_EQ(0, hd_commit(self->fd, self->c.heap_id, 8 * pg, 2 * pg, 0,
			       NULL));
	ASSERT_EQ(0, hd_commit(self->fd, self->c.heap_id, 13 * pg, pg, 0,
			       NULL));
	for (i = 13; i >= 0; i--)
		if (i < 4 || i == 8 || i == 9 || i == 13)
			self->p[i * pg + 7] = (char)(i + 1);
	q = hd_map(self->fd, &self->c, 0, self->len, PROT_READ);
	ASSERT_NE(MAP_FAILED, q);
	for (i = 0; i < 16; i++) {
		if (i < 4 || i == 8 || i == 9 || i == 13) {
			EXPECT_EQ(i + 1, q[i * pg + 7]);
			EXPECT_EQ(i + 1, self->p[i * pg + 7]);
		} else {
			EXPECT_EQ(SIGBUS, hd_probe(self->p + i * pg, false, 0));
			EXPECT_EQ(SIGBUS, hd_probe(q + i * pg, false, 0));
		}
	}
	munmap(q, self->len);
}

TEST_F(map, mapping_at_an_offset)
{
	char *q = hd_map(self->fd, &self->c, 2 * self->pg, self->pg,
			 PROT_READ | PROT_WRITE);

	HD_SKIPPED_IN_SETUP();

	ASSERT_NE(MAP_FAILED, q);
	self->p[2 * self->pg + 9] = 99;
	EXPECT_EQ(99, q[9]);
	munmap(q, self->pg);
}

TEST_F(map, populate_maps_without_faults)
{
	unsigned char vec[16];
	int i;

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, mincore(self->p, self->len, vec));
	for (i = 0; i < 4; i++)
		EXPECT_EQ(0, vec[i] & 1);	/* committed, never touched */
	ASSERT_EQ(0, hd_commit(self->fd, self->c.heap_id, 4 * self->pg,
			       8 * self->pg, HEAPDEV_COMMIT_POPULATE, NULL));
	ASSERT_EQ(0, mincore(self->p, self->len, vec));
	for (i = 4; i < 12; i++)
		EXPECT_EQ(1, vec[i] & 1);
	for (i = 12; i < 16; i++)
		EXPECT_EQ(0, vec[i] & 1);
	EXPECT_TRUE(all_zero(self->p + 4 * self->pg, 8 * self->pg));
}

TEST_F(map, populate_over_partly_mapped_range)
{
	HD_SKIPPED_IN_SETUP();

	/* Pages already mapped by a fault must not stop the populate. */
	self->p[0] = 1;
	self->p[2 * self->pg] = 2;
	ASSERT_EQ(0, hd_commit(self->fd, self->c.heap_id, 0, 8 * self->pg,
			       HEAPDEV_COMMIT_POPULATE, NULL));
	EXPECT_EQ(1, self->p[0]);
	EXPECT_EQ(2, self->p[2 * self->pg]);
	EXPECT_EQ(0, self->p[7 * self->pg]);
}

TEST_F(map, private_mapping_refused)
{
	void *q = mmap(NULL, self->pg, PROT_READ | PROT_WRITE, MAP_PRIVATE,
		       self->fd, self->c.mmap_offset);

	HD_SKIPPED_IN_SETUP();

	EXPECT_EQ(MAP_FAILED, q);
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(map, offset_outside_any_heap_refused)
{
	void *q = mmap(NULL, self->pg, PROT_READ, MAP_SHARED, self->fd, 0);

	HD_SKIPPED_IN_SETUP();

	EXPECT_EQ(MAP_FAILED, q);
	EXPECT_EQ(ENXIO, errno);
	q = mmap(NULL, self->pg, PROT_READ, MAP_SHARED, self->fd,
		 self->c.mmap_offset + (1ULL << 40));
	EXPECT_EQ(MAP_FAILED, q);
	EXPECT_EQ(ENXIO, errno);
}

TEST_F(map, mapping_beyond_fixed_heap_refused)
{
	struct heapdev_create f;
	void *q;

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, hd_create(self->fd, 0, 0, 4 * self->pg, &f));
	q = hd_map(self->fd, &f, 0, 5 * self->pg, PROT_READ);
	EXPECT_EQ(MAP_FAILED, q);
	EXPECT_EQ(ENXIO, errno);
	q = hd_map(self->fd, &f, 4 * self->pg, self->pg, PROT_READ);
	EXPECT_EQ(MAP_FAILED, q);
	q = hd_map(self->fd, &f, 0, 4 * self->pg, PROT_READ);
	EXPECT_NE(MAP_FAILED, q);
	munmap(q, 4 * self->pg);
}

TEST_F(map, exec_refused_without_exec_flag)
{
	void *q = hd_map(self->fd, &self->c, 0, self->pg,
			 PROT_READ | PROT_EXEC);

	HD_SKIPPED_IN_SETUP();

	EXPECT_EQ(MAP_FAILED, q);
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(-1, mprotect(self->p, self->pg, PROT_READ | PROT_EXEC));
	EXPECT_EQ(EACCES, errno);
}

TEST_F(map, exec_heap_runs_code)
{
	struct heapdev_create x;
	int (*fn)(void);
	unsigned char *q;

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, hd_create(self->fd, HEAPDEV_HEAP_EXEC, self->pg, 0, &x));
	q = hd_map(self->fd, &x, 0, self->pg,
		   PROT_READ | PROT_WRITE | PROT_EXEC);
	ASSERT_NE(MAP_FAILED, q);
#if defined(__x86_64__)
	/* mov $42, %eax; ret */
	memcpy(q, "\xb8\x2a\x00\x00\x00\xc3", 6);
	fn = (int (*)(void))q;
	EXPECT_EQ(42, fn());
#else
	(void)fn;
#endif
	munmap(q, self->pg);
}

TEST_F(map, no_growth_by_mremap)
{
	void *q = mremap(self->p, self->len, 2 * self->len, MREMAP_MAYMOVE);

	HD_SKIPPED_IN_SETUP();

	EXPECT_EQ(MAP_FAILED, q);
}

TEST_F(map, mremap_move_and_partial_unmap)
{
	struct heapdev_query qu;
	char *q;

	HD_SKIPPED_IN_SETUP();

	self->p[0] = 5;
	q = mremap(self->p, self->len, self->len, MREMAP_MAYMOVE | MREMAP_FIXED,
		   self->p + 64 * self->pg);
	if (q == MAP_FAILED) {
		/* The target may be taken; a plain move is enough. */
		q = mremap(self->p, self->len, self->len, MREMAP_MAYMOVE);
	}
	ASSERT_NE(MAP_FAILED, q);
	self->p = q;
	EXPECT_EQ(5, q[0]);

	/* Unmapping the middle splits the mapping in two. */
	ASSERT_EQ(0, munmap(q + 4 * self->pg, 4 * self->pg));
	ASSERT_EQ(0, hd_query(self->fd, self->c.heap_id, &qu));
	EXPECT_EQ(2, qu.mappings);
	EXPECT_EQ(5, q[0]);
	munmap(q, 4 * self->pg);
	munmap(q + 8 * self->pg, 8 * self->pg);
	self->p = MAP_FAILED;
	ASSERT_EQ(0, hd_query(self->fd, self->c.heap_id, &qu));
	EXPECT_EQ(0, qu.mappings);
}

static int child_touch(void *arg)
{
	char *p = arg;

	/* VM_DONTCOPY: the child has no mapping at all. */
	return hd_probe(p, false, 0) == SIGSEGV ? 0 : 1;
}

TEST_F(map, fork_child_cannot_touch_heap)
{
	HD_SKIPPED_IN_SETUP();

	self->p[0] = 17;
	EXPECT_EQ(0, hd_in_child(child_touch, self->p));
	EXPECT_EQ(17, self->p[0]);
	self->p[1] = 18;
	EXPECT_EQ(18, self->p[1]);
}

struct child_map_arg {
	int fd;
	__u64 off;
};

static int child_map(void *arg)
{
	struct child_map_arg *a = arg;
	void *q = mmap(NULL, 4096, PROT_READ, MAP_SHARED, a->fd, a->off);

	return q == MAP_FAILED && errno == EPERM ? 0 : 1;
}

TEST_F(map, fork_child_cannot_map_heap)
{
	struct child_map_arg a = { self->fd, self->c.mmap_offset };

	HD_SKIPPED_IN_SETUP();

	EXPECT_EQ(0, hd_in_child(child_map, &a));
}

static int child_dofork_touch(void *arg)
{
	volatile char *p = arg;

	/*
	 * VM_WIPEONFORK: the VMA comes without the owner's page tables, and
	 * the child's faults on a heap it did not inherit fail.
	 */
	return hd_probe(p + 2 * hd_page(), false, 0) == SIGBUS ? 0 : 1;
}

TEST_F(map, madv_dofork_does_not_extend_ownership)
{
	int ret = madvise(self->p, self->len, MADV_DOFORK);

	HD_SKIPPED_IN_SETUP();

	if (ret)
		SKIP(return, "MADV_DOFORK refused (kernel blocks it): %s",
		     strerror(errno));
	/* Mapped in the owner, so that a copied page table would show it. */
	self->p[2 * self->pg] = 9;
	EXPECT_EQ(0, hd_in_child(child_dofork_touch, self->p));
	self->p[0] = 3;
	EXPECT_EQ(3, self->p[0]);
}

TEST_F(map, close_while_mapped)
{
	long heaps = hd_sys_heaps();

	HD_SKIPPED_IN_SETUP();

	self->p[0] = 66;
	ASSERT_EQ(0, close(self->fd));
	self->fd = -1;
	EXPECT_EQ(66, self->p[0]);
	self->p[self->pg] = 67;
	EXPECT_EQ(67, self->p[self->pg]);
	EXPECT_EQ(SIGBUS, hd_probe(self->p + 8 * self->pg, false, 0));
	ASSERT_EQ(0, munmap(self->p, self->len));
	self->p = MAP_FAILED;
	EXPECT_EQ(heaps - 1, hd_sys_heaps());
}

TEST_F(map, destroy_while_mapped)
{
	long pages = hd_sys_pages();

	HD_SKIPPED_IN_SETUP();

	self->p[0] = 1;
	ASSERT_EQ(0, hd_destroy(self->fd, self->c.heap_id));
	EXPECT_EQ(pages - 4, hd_sys_pages());
	EXPECT_EQ(SIGBUS, hd_probe(self->p, false, 0));
	EXPECT_EQ(SIGBUS, hd_probe(self->p + self->pg, true, 1));
	/* A new mapping of the old offset is refused. */
	EXPECT_EQ(MAP_FAILED, hd_map(self->fd, &self->c, 0, self->pg,
				     PROT_READ));
	EXPECT_EQ(0, munmap(self->p, self->len));
	self->p = MAP_FAILED;
}

TEST_F(map, munmap_then_destroy_then_close)
{
	long heaps = hd_sys_heaps();

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, munmap(self->p, self->len));
	self->p = MAP_FAILED;
	ASSERT_EQ(0, hd_destroy(self->fd, self->c.heap_id));
	EXPECT_EQ(heaps - 1, hd_sys_heaps());
}

TEST_F(map, close_then_munmap_after_destroy)
{
	long heaps = hd_sys_heaps();

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, hd_destroy(self->fd, self->c.heap_id));
	ASSERT_EQ(0, close(self->fd));
	self->fd = -1;
	/* The heap object lives on while mapped. */
	EXPECT_EQ(heaps, hd_sys_heaps());
	ASSERT_EQ(0, munmap(self->p, self->len));
	self->p = MAP_FAILED;
	EXPECT_EQ(heaps - 1, hd_sys_heaps());
}

TEST_F(map, pages_released_on_close)
{
	long pages = hd_sys_pages();

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, hd_commit(self->fd, self->c.heap_id, 0, self->len, 0,
			       NULL));
	EXPECT_EQ(pages + 12, hd_sys_pages());
	ASSERT_EQ(0, munmap(self->p, self->len));
	self->p = MAP_FAILED;
	ASSERT_EQ(0, close(self->fd));
	self->fd = -1;
	EXPECT_EQ(pages - 4, hd_sys_pages());
}

TEST_F(map, direct_io_style_pin_survives_decommit)
{
	HD_SKIPPED_IN_SETUP();

	/*
	 * process_vm_readv pins the pages it reads (GUP); a decommit racing
	 * with it must leave the pinned page valid, and the heap must not
	 * hand out stale data afterwards.
	 */
	char buf[64];
	struct iovec local = { buf, sizeof(buf) };
	struct iovec remote = { self->p, sizeof(buf) };

	memset(self->p, 0x42, sizeof(buf));
	ASSERT_EQ((ssize_t)sizeof(buf),
		  process_vm_readv(getpid(), &local, 1, &remote, 1, 0));
	EXPECT_EQ(0x42, buf[10]);
	ASSERT_EQ(0, hd_decommit(self->fd, self->c.heap_id, 0, self->pg, NULL));
	EXPECT_EQ(-1, process_vm_readv(getpid(), &local, 1, &remote, 1, 0));
	ASSERT_EQ(0, hd_commit(self->fd, self->c.heap_id, 0, self->pg, 0, NULL));
	ASSERT_EQ((ssize_t)sizeof(buf),
		  process_vm_readv(getpid(), &local, 1, &remote, 1, 0));
	EXPECT_EQ(0, buf[10]);
}

TEST_HARNESS_MAIN
