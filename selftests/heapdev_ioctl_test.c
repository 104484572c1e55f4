// SPDX-License-Identifier: GPL-2.0-only
/*
 * heapdev ioctl ABI: every command's success path and every bad input with
 * its errno.
 */

#define _GNU_SOURCE

#include "../kselftest_harness.h"
#include "heapdev_util.h"

#define TIB (1ULL << 40)

FIXTURE(ioc) {
	int fd;
	long page;
};

FIXTURE_SETUP(ioc)
{
	self->page = hd_page();
	self->fd = hd_open();
	if (self->fd < 0 && errno == ENOENT)
		SKIP(return, HD_DEV " is missing: load heapdev.ko");
	ASSERT_LE(0, self->fd) TH_LOG("open " HD_DEV ": %s", strerror(errno));
}

FIXTURE_TEARDOWN(ioc)
{
	if (self->fd >= 0)
		close(self->fd);
}

TEST_F(ioc, get_info)
{
	struct heapdev_info info;

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, hd_info(self->fd, &info));
	EXPECT_EQ(HEAPDEV_ABI_VERSION, info.abi_version);
	EXPECT_EQ(self->page, (long)info.page_size);
	EXPECT_EQ(HEAPDEV_FEAT_POPULATE | HEAPDEV_FEAT_EXEC | HEAPDEV_FEAT_LIST |
		  HEAPDEV_FEAT_ASYNC_RELEASE | HEAPDEV_FEAT_LAZY_COMMIT |
		  HEAPDEV_FEAT_INHERIT | HEAPDEV_FEAT_KEEP_MAPPINGS,
		  info.features);
	EXPECT_EQ(TIB, info.window_size);
	EXPECT_LT(0, info.heap_limit);
	EXPECT_LT(0, info.file_limit);
	EXPECT_LT(0, info.user_limit);
	EXPECT_LT(0, info.max_heaps);
	EXPECT_EQ(0, info.file_committed);
}

TEST_F(ioc, create_growable)
{
	struct heapdev_create c;
	struct heapdev_query q;

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, hd_create(self->fd, 0, 3 * self->page + 1, 0, &c));
	EXPECT_NE(0, c.heap_id);
	EXPECT_EQ(0, c.mmap_offset % self->page);
	EXPECT_NE(0, c.mmap_offset);
	EXPECT_EQ(TIB, c.reserved);

	ASSERT_EQ(0, hd_query(self->fd, c.heap_id, &q));
	EXPECT_EQ(HEAPDEV_HEAP_GROWABLE, q.heap_flags);
	EXPECT_EQ(4 * self->page, (long)q.committed);
	EXPECT_EQ(TIB, q.reserved);
	EXPECT_EQ(0, q.maximum);
	EXPECT_EQ(c.mmap_offset, q.mmap_offset);
	EXPECT_EQ(0, q.mappings);
}

TEST_F(ioc, create_fixed_rounds_to_pages)
{
	struct heapdev_create c;
	struct heapdev_query q;

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, hd_create(self->fd, 0, 0, 10 * self->page - 5, &c));
	EXPECT_EQ(10 * self->page, (long)c.reserved);
	ASSERT_EQ(0, hd_query(self->fd, c.heap_id, &q));
	EXPECT_EQ(0, q.heap_flags);
	EXPECT_EQ(0, q.committed);
	EXPECT_EQ(10 * self->page, (long)q.maximum);
	EXPECT_EQ(10 * self->page, (long)q.reserved);
}

TEST_F(ioc, create_exec_flag_reported)
{
	struct heapdev_create c;
	struct heapdev_query q;

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, hd_create(self->fd, HEAPDEV_HEAP_EXEC, 0, 0, &c));
	ASSERT_EQ(0, hd_query(self->fd, c.heap_id, &q));
	EXPECT_EQ(HEAPDEV_HEAP_EXEC | HEAPDEV_HEAP_GROWABLE, q.heap_flags);
}

TEST_F(ioc, create_ids_unique)
{
	struct heapdev_create a, b;

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, hd_create(self->fd, 0, 0, 0, &a));
	ASSERT_EQ(0, hd_create(self->fd, 0, 0, 0, &b));
	EXPECT_NE(a.heap_id, b.heap_id);
	EXPECT_NE(a.mmap_offset, b.mmap_offset);
	/* Windows must not overlap: each is at least the reservation apart. */
	EXPECT_LE(TIB, a.mmap_offset > b.mmap_offset ?
		  a.mmap_offset - b.mmap_offset : b.mmap_offset - a.mmap_offset);
}

TEST_F(ioc, create_bad_inputs)
{
	struct heapdev_create c;

	HD_SKIPPED_IN_SETUP();

	EXPECT_EQ(-EINVAL, hd_create(self->fd, 1U << 31, 0, 0, NULL));
	EXPECT_EQ(-EINVAL, hd_create(self->fd, HEAPDEV_HEAP_GROWABLE, 0, 0, NULL));
	EXPECT_EQ(-EINVAL, hd_create(self->fd, 0, 2 * self->page, self->page, NULL));
	EXPECT_EQ(-EINVAL, hd_create(self->fd, 0, 0, TIB + 1, NULL));
	EXPECT_EQ(-EINVAL, hd_create(self->fd, 0, ~0ULL, 0, NULL));
	EXPECT_EQ(-EINVAL, hd_create(self->fd, 0, 0, ~0ULL, NULL));

	memset(&c, 0, sizeof(c));
	c.size = sizeof(c);
	c.__pad = 1;
	EXPECT_EQ(-EINVAL, hd_ioctl(self->fd, HEAPDEV_IOC_CREATE, &c));
}

TEST_F(ioc, destroy)
{
	struct heapdev_create c;
	struct heapdev_query q;

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, hd_create(self->fd, 0, self->page, 0, &c));
	EXPECT_EQ(0, hd_destroy(self->fd, c.heap_id));
	EXPECT_EQ(-ENOENT, hd_query(self->fd, c.heap_id, &q));
	EXPECT_EQ(-ENOENT, hd_destroy(self->fd, c.heap_id));
}

TEST_F(ioc, bad_handles)
{
	struct heapdev_query q;
	__u32 ids[] = { 0, 1234567, 0xffffffff };
	unsigned int i;

	HD_SKIPPED_IN_SETUP();

	for (i = 0; i < ARRAY_SIZE(ids); i++) {
		EXPECT_EQ(-ENOENT, hd_query(self->fd, ids[i], &q));
		EXPECT_EQ(-ENOENT, hd_destroy(self->fd, ids[i]));
		EXPECT_EQ(-ENOENT, hd_commit(self->fd, ids[i], 0, self->page, 0, NULL));
		EXPECT_EQ(-ENOENT, hd_decommit(self->fd, ids[i], 0, self->page, NULL));
	}
}

TEST_F(ioc, commit_and_decommit_counts)
{
	struct heapdev_create c;
	struct heapdev_commit cm;
	struct heapdev_decommit dc;
	long pg = self->page;

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, hd_create(self->fd, 0, 0, 0, &c));
	ASSERT_EQ(0, hd_commit(self->fd, c.heap_id, 0, 8 * pg, 0, &cm));
	EXPECT_EQ(8 * pg, (long)cm.committed);
	EXPECT_EQ(8 * pg, (long)cm.changed);

	/* Overlapping commit: only the new pages count. */
	ASSERT_EQ(0, hd_commit(self->fd, c.heap_id, 4 * pg, 8 * pg, 0, &cm));
	EXPECT_EQ(12 * pg, (long)cm.committed);
	EXPECT_EQ(4 * pg, (long)cm.changed);

	ASSERT_EQ(0, hd_decommit(self->fd, c.heap_id, 2 * pg, 4 * pg, &dc));
	EXPECT_EQ(8 * pg, (long)dc.committed);
	EXPECT_EQ(4 * pg, (long)dc.changed);

	/* Decommit is idempotent, like VirtualFree(MEM_DECOMMIT). */
	ASSERT_EQ(0, hd_decommit(self->fd, c.heap_id, 2 * pg, 4 * pg, &dc));
	EXPECT_EQ(8 * pg, (long)dc.committed);
	EXPECT_EQ(0, dc.changed);

	/* Commit far into the growable window. */
	ASSERT_EQ(0, hd_commit(self->fd, c.heap_id, TIB - pg, pg, 0, &cm));
	EXPECT_EQ(9 * pg, (long)cm.committed);
}

TEST_F(ioc, large_and_sparse_ranges_balance)
{
	struct heapdev_create c;
	struct heapdev_commit cm;
	struct heapdev_decommit dc;
	long pg = self->page, pages = hd_sys_pages(), i;

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, hd_create(self->fd, 0, 0, 0, &c));
	ASSERT_EQ(0, hd_commit(self->fd, c.heap_id, 0, 2048 * pg, 0, &cm));
	EXPECT_EQ(2048 * pg, (long)cm.changed);
	EXPECT_EQ(pages + 2048, hd_sys_pages());

	ASSERT_EQ(0, hd_decommit(self->fd, c.heap_id, 1024 * pg, 1024 * pg, &dc));
	EXPECT_EQ(1024 * pg, (long)dc.changed);
	EXPECT_EQ(1024 * pg, (long)dc.committed);
	EXPECT_EQ(pages + 1024, hd_sys_pages());

	/* Punch every other page, then release the rest in one call. */
	for (i = 0; i < 1024; i += 2)
		ASSERT_EQ(0, hd_decommit(self->fd, c.heap_id, i * pg, pg, NULL));
	EXPECT_EQ(pages + 512, hd_sys_pages());
	ASSERT_EQ(0, hd_decommit(self->fd, c.heap_id, 0, 4096 * pg, &dc));
	EXPECT_EQ(512 * pg, (long)dc.changed);
	EXPECT_EQ(0, dc.committed);
	EXPECT_EQ(pages, hd_sys_pages());

	/* Destroy releases a large sparse heap completely. */
	for (i = 0; i < 3000; i += 3)
		ASSERT_EQ(0, hd_commit(self->fd, c.heap_id, i * pg, 2 * pg, 0,
				       NULL));
	EXPECT_EQ(pages + 2000, hd_sys_pages());
	ASSERT_EQ(0, hd_destroy(self->fd, c.heap_id));
	EXPECT_EQ(pages, hd_sys_pages());
}

TEST_F(ioc, decommit_of_uncommitted_range)
{
	struct heapdev_create c;
	struct heapdev_decommit dc;

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, hd_create(self->fd, 0, 0, 0, &c));
	ASSERT_EQ(0, hd_decommit(self->fd, c.heap_id, 0, 64 * self->page, &dc));
	EXPECT_EQ(0, dc.committed);
	EXPECT_EQ(0, dc.changed);
}

TEST_F(ioc, range_bad_inputs)
{
	struct heapdev_create c;
	long pg = self->page;
	__u32 id;

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, hd_create(self->fd, 0, 0, 16 * pg, &c));
	id = c.heap_id;

	/* size 0, unaligned offset and length */
	EXPECT_EQ(-EINVAL, hd_commit(self->fd, id, 0, 0, 0, NULL));
	EXPECT_EQ(-EINVAL, hd_commit(self->fd, id, 1, pg, 0, NULL));
	EXPECT_EQ(-EINVAL, hd_commit(self->fd, id, 0, pg + 1, 0, NULL));
	EXPECT_EQ(-EINVAL, hd_decommit(self->fd, id, 0, 0, NULL));
	EXPECT_EQ(-EINVAL, hd_decommit(self->fd, id, pg / 2, pg, NULL));
	EXPECT_EQ(-EINVAL, hd_decommit(self->fd, id, 0, pg - 1, NULL));

	/* offset + length wraps */
	EXPECT_EQ(-EOVERFLOW, hd_commit(self->fd, id, -(__u64)pg, 2 * pg, 0, NULL));
	EXPECT_EQ(-EOVERFLOW, hd_decommit(self->fd, id, -(__u64)pg, 2 * pg, NULL));

	/* beyond the fixed heap's maximum, whatever the caller asks */
	EXPECT_EQ(-EINVAL, hd_commit(self->fd, id, 16 * pg, pg, 0, NULL));
	EXPECT_EQ(-EINVAL, hd_commit(self->fd, id, 0, 17 * pg, 0, NULL));
	EXPECT_EQ(-EINVAL, hd_commit(self->fd, id, 15 * pg, 2 * pg, 0, NULL));
	EXPECT_EQ(0, hd_commit(self->fd, id, 0, 16 * pg, 0, NULL));

	/* unknown flags */
	EXPECT_EQ(-EINVAL, hd_commit(self->fd, id, 0, pg, 1U << 7, NULL));

	/* growable heaps end at their 1 TiB window */
	ASSERT_EQ(0, hd_create(self->fd, 0, 0, 0, &c));
	EXPECT_EQ(-EINVAL, hd_commit(self->fd, c.heap_id, TIB, pg, 0, NULL));
}

TEST_F(ioc, reserved_and_flags_must_be_zero)
{
	struct heapdev_create c;
	struct heapdev_commit cm = { .size = sizeof(cm), .length = self->page };
	struct heapdev_decommit dc = { .size = sizeof(dc), .length = self->page };
	struct heapdev_destroy d = { .size = sizeof(d) };
	struct heapdev_query q = { .size = sizeof(q) };
	struct heapdev_info info = { .size = sizeof(info) };
	struct heapdev_list l = { .size = sizeof(l) };

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, hd_create(self->fd, 0, 0, 0, &c));
	cm.heap_id = dc.heap_id = d.heap_id = q.heap_id = c.heap_id;

	cm.__pad = 1;
	EXPECT_EQ(-EINVAL, hd_ioctl(self->fd, HEAPDEV_IOC_COMMIT, &cm));
	dc.__pad = 1;
	EXPECT_EQ(-EINVAL, hd_ioctl(self->fd, HEAPDEV_IOC_DECOMMIT, &dc));
	dc.__pad = 0;
	dc.flags = ~HEAPDEV_DECOMMIT_ASYNC;
	EXPECT_EQ(-EINVAL, hd_ioctl(self->fd, HEAPDEV_IOC_DECOMMIT, &dc));
	q.__pad = 1;
	EXPECT_EQ(-EINVAL, hd_ioctl(self->fd, HEAPDEV_IOC_QUERY, &q));
	q.__pad = 0;
	q.flags = 1;
	EXPECT_EQ(-EINVAL, hd_ioctl(self->fd, HEAPDEV_IOC_QUERY, &q));
	info.flags = 1;
	EXPECT_EQ(-EINVAL, hd_ioctl(self->fd, HEAPDEV_IOC_GET_INFO, &info));
	info.flags = 0;
	info.__pad = 1;
	EXPECT_EQ(-EINVAL, hd_ioctl(self->fd, HEAPDEV_IOC_GET_INFO, &info));
	l.flags = 1;
	EXPECT_EQ(-EINVAL, hd_ioctl(self->fd, HEAPDEV_IOC_LIST, &l));
	d.flags = ~HEAPDEV_DESTROY_ASYNC;
	EXPECT_EQ(-EINVAL, hd_ioctl(self->fd, HEAPDEV_IOC_DESTROY, &d));
	d.flags = 1U << 31;
	EXPECT_EQ(-EINVAL, hd_ioctl(self->fd, HEAPDEV_IOC_DESTROY, &d));
	d.flags = 0;
	d.__pad = 1;
	EXPECT_EQ(-EINVAL, hd_ioctl(self->fd, HEAPDEV_IOC_DESTROY, &d));
	/* The heap survived every refused call. */
	EXPECT_EQ(0, hd_destroy(self->fd, c.heap_id));
}

TEST_F(ioc, unknown_commands)
{
	struct heapdev_info info = { .size = sizeof(info) };

	HD_SKIPPED_IN_SETUP();

	EXPECT_EQ(-ENOTTY, hd_ioctl(self->fd, _IO(HEAPDEV_IOC_MAGIC, 0x07), &info));
	EXPECT_EQ(-ENOTTY, hd_ioctl(self->fd, _IO(HEAPDEV_IOC_MAGIC, 0xff), &info));
	EXPECT_EQ(-ENOTTY, hd_ioctl(self->fd, _IO(HEAPDEV_IOC_MAGIC + 1, 0), &info));
	/* A known number with direction or size bits is a different command. */
	EXPECT_EQ(-ENOTTY, hd_ioctl(self->fd, _IOWR(HEAPDEV_IOC_MAGIC, 0,
						    struct heapdev_info), &info));
	EXPECT_EQ(-ENOTTY, hd_ioctl(self->fd, FIONREAD, &info));
}

TEST_F(ioc, struct_sizes)
{
	struct {
		struct heapdev_info info;
		char tail[64];
	} big;

	HD_SKIPPED_IN_SETUP();

	/* Too short for the first version: EINVAL, also for size 0. */
	memset(&big, 0, sizeof(big));
	big.info.size = 0;
	EXPECT_EQ(-EINVAL, hd_ioctl(self->fd, HEAPDEV_IOC_GET_INFO, &big));
	big.info.size = sizeof(big.info) - 8;
	EXPECT_EQ(-EINVAL, hd_ioctl(self->fd, HEAPDEV_IOC_GET_INFO, &big));

	/* Longer, with a zero tail: accepted; the tail is left alone. */
	big.info.size = sizeof(big);
	EXPECT_EQ(0, hd_ioctl(self->fd, HEAPDEV_IOC_GET_INFO, &big));
	EXPECT_EQ(HEAPDEV_ABI_VERSION, big.info.abi_version);
	EXPECT_EQ(0, big.tail[0]);

	/* Longer, with a non-zero tail the kernel does not know: E2BIG. */
	big.tail[40] = 1;
	EXPECT_EQ(-E2BIG, hd_ioctl(self->fd, HEAPDEV_IOC_GET_INFO, &big));

	/* Absurd sizes are a non-zero tail or a fault, never accepted. */
	big.tail[40] = 0;
	big.info.size = 1U << 30;
	EXPECT_NE(0, hd_ioctl(self->fd, HEAPDEV_IOC_GET_INFO, &big));
}

TEST_F(ioc, bad_pointers)
{
	struct heapdev_list l = { .size = sizeof(l), .capacity = 4 };
	struct heapdev_create c;

	HD_SKIPPED_IN_SETUP();

	EXPECT_EQ(-EFAULT, hd_ioctl(self->fd, HEAPDEV_IOC_GET_INFO, NULL));
	EXPECT_EQ(-EFAULT, hd_ioctl(self->fd, HEAPDEV_IOC_CREATE, (void *)8));
	ASSERT_EQ(0, hd_create(self->fd, 0, 0, 0, &c));
	l.ids = 16;
	EXPECT_EQ(-EFAULT, hd_ioctl(self->fd, HEAPDEV_IOC_LIST, &l));
}

TEST_F(ioc, create_with_unwritable_result_leaves_no_heap)
{
	struct heapdev_create *c;
	struct heapdev_list l = { .size = sizeof(l) };
	long pg = self->page;
	char *page;

	HD_SKIPPED_IN_SETUP();

	/* The struct is readable, but the kernel cannot write the result. */
	page = mmap(NULL, pg, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, page);
	c = (struct heapdev_create *)page;
	c->size = sizeof(*c);
	c->initial = pg;
	ASSERT_EQ(0, mprotect(page, pg, PROT_READ));
	EXPECT_EQ(-EFAULT, hd_ioctl(self->fd, HEAPDEV_IOC_CREATE, c));
	ASSERT_EQ(0, hd_ioctl(self->fd, HEAPDEV_IOC_LIST, &l));
	EXPECT_EQ(0, l.count);
	munmap(page, pg);
}

TEST_F(ioc, list)
{
	struct heapdev_list l = { .size = sizeof(l) };
	__u32 ids[8];
	__u32 made[5];
	struct heapdev_create c;
	int i;

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, hd_ioctl(self->fd, HEAPDEV_IOC_LIST, &l));
	EXPECT_EQ(0, l.count);

	for (i = 0; i < 5; i++) {
		ASSERT_EQ(0, hd_create(self->fd, 0, 0, 0, &c));
		made[i] = c.heap_id;
	}
	ASSERT_EQ(0, hd_destroy(self->fd, made[2]));

	l.capacity = 0;
	ASSERT_EQ(0, hd_ioctl(self->fd, HEAPDEV_IOC_LIST, &l));
	EXPECT_EQ(4, l.count);

	memset(ids, 0xff, sizeof(ids));
	l.capacity = 2;
	l.ids = (uintptr_t)ids;
	ASSERT_EQ(0, hd_ioctl(self->fd, HEAPDEV_IOC_LIST, &l));
	EXPECT_EQ(4, l.count);
	EXPECT_EQ(made[0], ids[0]);
	EXPECT_EQ(made[1], ids[1]);
	EXPECT_EQ(0xffffffff, ids[2]);

	l.capacity = 8;
	ASSERT_EQ(0, hd_ioctl(self->fd, HEAPDEV_IOC_LIST, &l));
	EXPECT_EQ(4, l.count);
	EXPECT_EQ(made[0], ids[0]);
	EXPECT_EQ(made[1], ids[1]);
	EXPECT_EQ(made[3], ids[2]);
	EXPECT_EQ(made[4], ids[3]);
}

TEST_F(ioc, heaps_are_per_file)
{
	struct heapdev_create c;
	struct heapdev_query q;
	int other = hd_open();

	HD_SKIPPED_IN_SETUP();

	ASSERT_LE(0, other);
	ASSERT_EQ(0, hd_create(self->fd, 0, self->page, 0, &c));
	EXPECT_EQ(-ENOENT, hd_query(other, c.heap_id, &q));
	EXPECT_EQ(-ENOENT, hd_destroy(other, c.heap_id));
	close(other);
	EXPECT_EQ(0, hd_query(self->fd, c.heap_id, &q));
}

TEST_F(ioc, read_only_file_cannot_change_state)
{
	struct heapdev_info info;
	struct heapdev_create c;
	struct heapdev_query q;
	int ro = open(HD_DEV, O_RDONLY | O_CLOEXEC);

	HD_SKIPPED_IN_SETUP();

	ASSERT_LE(0, ro);
	EXPECT_EQ(0, hd_info(ro, &info));
	EXPECT_EQ(-EBADF, hd_create(ro, 0, 0, 0, &c));
	EXPECT_EQ(-ENOENT, hd_query(ro, 1, &q));
	close(ro);
}

TEST_F(ioc, info_reports_file_commitment)
{
	struct heapdev_info info;
	struct heapdev_create c;

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, hd_create(self->fd, 0, 5 * self->page, 0, &c));
	ASSERT_EQ(0, hd_info(self->fd, &info));
	EXPECT_EQ(5 * self->page, (long)info.file_committed);
	EXPECT_LE(5 * self->page, (long)info.user_committed);
	ASSERT_EQ(0, hd_destroy(self->fd, c.heap_id));
	ASSERT_EQ(0, hd_info(self->fd, &info));
	EXPECT_EQ(0, info.file_committed);
}

static int child_ioctl(void *arg)
{
	int fd = *(int *)arg;
	struct heapdev_info info;
	struct heapdev_create c;

	if (hd_info(fd, &info) != -EPERM)
		return 1;
	if (hd_create(fd, 0, 0, 0, &c) != -EPERM)
		return 2;
	return 0;
}

TEST_F(ioc, other_process_is_refused)
{
	HD_SKIPPED_IN_SETUP();

	/* A forked child inherits the descriptor but not the heaps. */
	EXPECT_EQ(0, hd_in_child(child_ioctl, &self->fd));
}

TEST_HARNESS_MAIN
