// SPDX-License-Identifier: GPL-2.0-only
/*
 * heapdev limits, admin view, permissions, module lifetime and concurrency.
 * Tests that change module parameters or switch users need root and are
 * skipped otherwise.
 */

#define _GNU_SOURCE

#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>

#include "../kselftest_harness.h"
#include "heapdev_util.h"

#define NOBODY 65534

static void set_param(const char *name, const char *val)
{
	char path[128];

	snprintf(path, sizeof(path), HD_PARAMS "%s", name);
	hd_write_str(path, val);
}

static long get_param(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), HD_PARAMS "%s", name);
	return hd_read_long(path);
}

FIXTURE(lim) {
	int fd;
	long pg;
	long saved[4];
};

static const char *const params[] = {
	"heap_limit_mb", "file_limit_mb", "user_limit_mb", "max_heaps",
};

FIXTURE_SETUP(lim)
{
	unsigned int i;

	self->pg = hd_page();
	self->fd = hd_open();
	if (self->fd < 0 && errno == ENOENT)
		SKIP(return, HD_DEV " is missing: load heapdev.ko");
	ASSERT_LE(0, self->fd);
	if (geteuid() != 0)
		SKIP(return, "changing module parameters needs root");
	for (i = 0; i < ARRAY_SIZE(params); i++)
		self->saved[i] = get_param(params[i]);
}

FIXTURE_TEARDOWN(lim)
{
	char val[32];
	unsigned int i;

	if (geteuid() == 0) {
		for (i = 0; i < ARRAY_SIZE(params); i++) {
			snprintf(val, sizeof(val), "%ld", self->saved[i]);
			set_param(params[i], val);
		}
	}
	if (self->fd >= 0)
		close(self->fd);
}

#define MIB (1 << 20)

TEST_F(lim, heap_limit)
{
	struct heapdev_create c;
	struct heapdev_commit cm;
	struct heapdev_info info;

	HD_SKIPPED_IN_SETUP();

	set_param("heap_limit_mb", "1");
	ASSERT_EQ(0, hd_info(self->fd, &info));
	EXPECT_EQ(MIB, (long)info.heap_limit);

	ASSERT_EQ(0, hd_create(self->fd, 0, 0, 0, &c));
	ASSERT_EQ(0, hd_commit(self->fd, c.heap_id, 0, MIB, 0, NULL));
	EXPECT_EQ(-EDQUOT, hd_commit(self->fd, c.heap_id, MIB, self->pg, 0,
				     NULL));
	/* Another heap has its own budget. */
	ASSERT_EQ(0, hd_create(self->fd, 0, MIB, 0, &c));
	/* Creating with an initial commit over the limit creates nothing. */
	EXPECT_EQ(-EDQUOT, hd_create(self->fd, 0, MIB + self->pg, 0, NULL));
	ASSERT_EQ(0, hd_commit(self->fd, c.heap_id, 0, MIB, 0, &cm));
	EXPECT_EQ(0, cm.changed);
}

TEST_F(lim, failed_commit_changes_nothing)
{
	struct heapdev_create c;
	struct heapdev_query q;
	long pages = hd_sys_pages();
	char *p;

	HD_SKIPPED_IN_SETUP();

	set_param("heap_limit_mb", "1");
	ASSERT_EQ(0, hd_create(self->fd, 0, 0, 0, &c));
	ASSERT_EQ(0, hd_commit(self->fd, c.heap_id, 0, 4 * self->pg, 0, NULL));
	p = hd_map(self->fd, &c, 0, 2 * MIB, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	p[0] = 9;
	/* Overlaps committed pages, but needs more than the limit allows. */
	EXPECT_EQ(-EDQUOT, hd_commit(self->fd, c.heap_id, 0, 2 * MIB, 0, NULL));
	ASSERT_EQ(0, hd_query(self->fd, c.heap_id, &q));
	EXPECT_EQ(4 * self->pg, (long)q.committed);
	EXPECT_EQ(pages + 4, hd_sys_pages());
	EXPECT_EQ(9, p[0]);
	EXPECT_EQ(SIGBUS, hd_probe(p + 4 * self->pg, false, 0));
	munmap(p, 2 * MIB);
}

TEST_F(lim, fixed_heap_limit_is_its_maximum)
{
	struct heapdev_create c;

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, hd_create(self->fd, 0, 0, 8 * self->pg, &c));
	ASSERT_EQ(0, hd_commit(self->fd, c.heap_id, 0, 8 * self->pg, 0, NULL));
	EXPECT_EQ(-EINVAL, hd_commit(self->fd, c.heap_id, 8 * self->pg,
				     self->pg, 0, NULL));
}

TEST_F(lim, file_limit)
{
	struct heapdev_create a, b;
	int other;

	HD_SKIPPED_IN_SETUP();

	set_param("file_limit_mb", "1");
	ASSERT_EQ(0, hd_create(self->fd, 0, MIB / 2, 0, &a));
	ASSERT_EQ(0, hd_create(self->fd, 0, MIB / 2, 0, &b));
	EXPECT_EQ(-EDQUOT, hd_commit(self->fd, a.heap_id, MIB, self->pg, 0,
				     NULL));
	/* Freeing in one heap makes room for another of the same file. */
	ASSERT_EQ(0, hd_decommit(self->fd, b.heap_id, 0, self->pg, NULL));
	EXPECT_EQ(0, hd_commit(self->fd, a.heap_id, MIB, self->pg, 0, NULL));
	/* Another file has its own budget. */
	other = hd_open();
	ASSERT_LE(0, other);
	EXPECT_EQ(0, hd_create(other, 0, MIB / 2, 0, NULL));
	close(other);
}

TEST_F(lim, user_limit)
{
	int other = hd_open();
	struct heapdev_info info;
	unsigned long long limit, avail;
	char val[32];

	HD_SKIPPED_IN_SETUP();

	ASSERT_LE(0, other);
	ASSERT_EQ(0, hd_info(self->fd, &info));
	/* Pages other root processes hold count too: work above them. */
	limit = (info.user_committed + MIB - 1) / MIB + 1;
	snprintf(val, sizeof(val), "%llu", limit);
	set_param("user_limit_mb", val);
	avail = limit * MIB - info.user_committed;

	/* The budget is shared by every file of the user. */
	ASSERT_EQ(0, hd_create(other, 0, avail - self->pg, 0, NULL));
	EXPECT_EQ(-EDQUOT, hd_create(self->fd, 0, 2 * self->pg, 0, NULL));
	EXPECT_EQ(0, hd_create(self->fd, 0, self->pg, 0, NULL));
	ASSERT_EQ(0, hd_info(self->fd, &info));
	EXPECT_EQ(limit * MIB, info.user_committed);
	close(other);
	/* Closing the other file returned its pages to the user's budget. */
	EXPECT_EQ(0, hd_create(self->fd, 0, 2 * self->pg, 0, NULL));
}

TEST_F(lim, max_heaps)
{
	struct heapdev_list l = { .size = sizeof(l) };

	HD_SKIPPED_IN_SETUP();

	set_param("max_heaps", "3");
	ASSERT_EQ(0, hd_create(self->fd, 0, 0, 0, NULL));
	ASSERT_EQ(0, hd_create(self->fd, 0, 0, 0, NULL));
	ASSERT_EQ(0, hd_create(self->fd, 0, 0, 0, NULL));
	EXPECT_EQ(-EDQUOT, hd_create(self->fd, 0, 0, 0, NULL));
	ASSERT_EQ(0, hd_ioctl(self->fd, HEAPDEV_IOC_LIST, &l));
	EXPECT_EQ(3, l.count);
}

/* 0 written at run time means the default, as at load time. */
TEST_F(lim, zero_means_default)
{
	struct heapdev_info info;
	int i;

	HD_SKIPPED_IN_SETUP();

	set_param("heap_limit_mb", "1");
	set_param("max_heaps", "1");
	ASSERT_EQ(0, hd_info(self->fd, &info));
	ASSERT_EQ(MIB, (long)info.heap_limit);
	ASSERT_EQ(1, info.max_heaps);

	for (i = 0; i < 4; i++)
		set_param(params[i], "0");
	ASSERT_EQ(0, hd_info(self->fd, &info));
	/* The module was loaded without limits: saved[] are the defaults. */
	EXPECT_EQ(self->saved[0] * MIB, (long)info.heap_limit);
	EXPECT_EQ(self->saved[1] * MIB, (long)info.file_limit);
	EXPECT_EQ(self->saved[2] * MIB, (long)info.user_limit);
	EXPECT_EQ(65536, info.max_heaps);
	for (i = 0; i < 3; i++)
		EXPECT_EQ(0, hd_create(self->fd, 0, 2 * MIB, 0, NULL));
}

TEST_F(lim, admin_view_lists_own_heaps)
{
	struct heapdev_create a, b;
	unsigned long long committed = 0;
	int maps = -1;
	char *p;

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, hd_create(self->fd, 0, 3 * self->pg, 0, &a));
	ASSERT_EQ(0, hd_create(self->fd, HEAPDEV_HEAP_EXEC, 0, 8 * self->pg,
			       &b));
	p = hd_map(self->fd, &a, 0, 4 * self->pg, PROT_READ);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(2, hd_proc_count(getpid()));
	ASSERT_EQ(1, hd_proc_find(getpid(), a.heap_id, &committed, &maps));
	EXPECT_EQ(3 * self->pg, (long)committed);
	EXPECT_EQ(1, maps);
	ASSERT_EQ(1, hd_proc_find(getpid(), b.heap_id, &committed, &maps));
	EXPECT_EQ(0, committed);
	EXPECT_EQ(0, maps);
	ASSERT_EQ(0, hd_destroy(self->fd, b.heap_id));
	EXPECT_EQ(0, hd_proc_find(getpid(), b.heap_id, NULL, NULL));
	munmap(p, 4 * self->pg);
}

static int as_nobody_count(void *arg)
{
	pid_t owner = *(pid_t *)arg;

	if (setgid(NOBODY) || setuid(NOBODY))
		return 10;
	return hd_proc_count(owner);
}

TEST_F(lim, admin_view_hides_other_users)
{
	pid_t me = getpid();

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, hd_create(self->fd, 0, self->pg, 0, NULL));
	ASSERT_EQ(1, hd_proc_count(me));
	EXPECT_EQ(0, hd_in_child(as_nobody_count, &me));
}

static int as_nobody_own_heap(void *arg)
{
	struct heapdev_create c;
	int fd;

	(void)arg;
	if (setgid(NOBODY) || setuid(NOBODY))
		return 10;
	fd = hd_open();
	if (fd < 0)
		return 11;
	if (hd_create(fd, 0, 2 * 4096, 0, &c))
		return 12;
	if (hd_proc_find(getpid(), c.heap_id, NULL, NULL) != 1)
		return 13;
	return 0;
}

static int as_nobody_open(void *arg)
{
	(void)arg;
	if (setgid(NOBODY) || setuid(NOBODY))
		return 10;
	return hd_open() < 0 && errno == EACCES ? 0 : 1;
}

TEST_F(lim, device_permissions)
{
	struct stat st;

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, stat(HD_DEV, &st));
	ASSERT_EQ(0, chmod(HD_DEV, 0600));
	EXPECT_EQ(0, hd_in_child(as_nobody_open, NULL));
	/* With access granted (udev group or mode), users get their own heaps. */
	ASSERT_EQ(0, chmod(HD_DEV, 0666));
	EXPECT_EQ(0, hd_in_child(as_nobody_own_heap, NULL));
	chmod(HD_DEV, st.st_mode & 07777);
}

static int try_unload(void)
{
	return syscall(__NR_delete_module, "heapdev", O_NONBLOCK) ? errno : 0;
}

TEST_F(lim, unload_refused_while_in_use)
{
	struct heapdev_create c;
	char *p;

	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, hd_create(self->fd, 0, self->pg, 0, &c));
	EXPECT_EQ(EWOULDBLOCK, try_unload());
	p = hd_map(self->fd, &c, 0, self->pg, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	close(self->fd);
	self->fd = -1;
	/* Only the mapping is left, and it still pins the module. */
	EXPECT_EQ(EWOULDBLOCK, try_unload());
	p[0] = 1;
	EXPECT_EQ(1, p[0]);
	munmap(p, self->pg);
}

/* Concurrency: committers, decommitters and faulting threads on one heap. */

#define RACE_PAGES 64

struct race {
	int fd;
	__u32 id;
	char *p;
	long pg;
	volatile int stop;
	unsigned long touches, faults, ops;
};

static __thread sigjmp_buf race_env;

static void race_handler(int sig)
{
	(void)sig;
	siglongjmp(race_env, 1);
}

static void *race_toucher(void *arg)
{
	struct race *r = arg;
	unsigned int seed = (unsigned int)(uintptr_t)&seed;
	volatile char *q;

	while (!r->stop) {
		q = r->p + (rand_r(&seed) % RACE_PAGES) * r->pg +
		    rand_r(&seed) % r->pg;
		if (sigsetjmp(race_env, 1) == 0) {
			*q = 1;
			__atomic_add_fetch(&r->touches, 1, __ATOMIC_RELAXED);
		} else {
			__atomic_add_fetch(&r->faults, 1, __ATOMIC_RELAXED);
		}
	}
	return NULL;
}

static void *race_committer(void *arg)
{
	struct race *r = arg;
	unsigned int seed = (unsigned int)(uintptr_t)&r;

	while (!r->stop) {
		long first = rand_r(&seed) % RACE_PAGES;
		long n = 1 + rand_r(&seed) % (RACE_PAGES - first);
		__u32 flags = rand_r(&seed) & 1 ? HEAPDEV_COMMIT_POPULATE : 0;
		int ret;

		if (rand_r(&seed) & 1)
			ret = hd_commit(r->fd, r->id, first * r->pg, n * r->pg,
					flags, NULL);
		else
			ret = hd_decommit(r->fd, r->id, first * r->pg,
					  n * r->pg, NULL);
		if (ret)
			return (void *)(long)ret;
		__atomic_add_fetch(&r->ops, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

TEST(concurrent_commit_decommit_and_faults)
{
	struct sigaction sa = { .sa_handler = race_handler };
	struct heapdev_create c;
	struct heapdev_query q;
	struct race r = { 0 };
	pthread_t t[4];
	void *ret;
	long pages;
	int i, fd = hd_open();

	if (fd < 0 && errno == ENOENT)
		SKIP(return, HD_DEV " is missing");
	ASSERT_LE(0, fd);
	pages = hd_sys_pages();
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_NODEFER;
	ASSERT_EQ(0, sigaction(SIGBUS, &sa, NULL));

	r.pg = hd_page();
	r.fd = fd;
	ASSERT_EQ(0, hd_create(fd, 0, 0, 0, &c));
	r.id = c.heap_id;
	r.p = hd_map(fd, &c, 0, RACE_PAGES * r.pg, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, r.p);

	ASSERT_EQ(0, pthread_create(&t[0], NULL, race_committer, &r));
	ASSERT_EQ(0, pthread_create(&t[1], NULL, race_committer, &r));
	ASSERT_EQ(0, pthread_create(&t[2], NULL, race_toucher, &r));
	ASSERT_EQ(0, pthread_create(&t[3], NULL, race_toucher, &r));
	sleep(2);
	r.stop = 1;
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, pthread_join(t[i], &ret));
		EXPECT_EQ(NULL, ret);
	}
	for (i = 2; i < 4; i++)
		ASSERT_EQ(0, pthread_join(t[i], NULL));
	TH_LOG("%lu commit/decommit calls, %lu touches, %lu SIGBUS",
	       r.ops, r.touches, r.faults);
	EXPECT_LT(0, r.ops);
	EXPECT_LT(0, r.touches);

	/* The books balance: what the heap says is what the module holds. */
	ASSERT_EQ(0, hd_query(fd, r.id, &q));
	EXPECT_EQ(pages + (long)q.committed / r.pg, hd_sys_pages());
	ASSERT_EQ(0, hd_decommit(fd, r.id, 0, RACE_PAGES * r.pg, NULL));
	EXPECT_EQ(SIGBUS, hd_probe(r.p, false, 0));
	ASSERT_EQ(0, hd_commit(fd, r.id, 0, RACE_PAGES * r.pg, 0, NULL));
	for (i = 0; i < RACE_PAGES; i++)
		EXPECT_EQ(0, r.p[i * r.pg]);
	munmap(r.p, RACE_PAGES * r.pg);
	close(fd);
	EXPECT_EQ(pages, hd_sys_pages());
}

static void *destroyer(void *arg)
{
	struct race *r = arg;

	usleep(200 * 1000);
	return (void *)(long)hd_destroy(r->fd, r->id);
}

TEST(destroy_races_with_faults)
{
	struct sigaction sa = { .sa_handler = race_handler };
	struct heapdev_create c;
	struct race r = { 0 };
	pthread_t t[3];
	void *ret;
	long pages;
	int fd = hd_open();

	if (fd < 0 && errno == ENOENT)
		SKIP(return, HD_DEV " is missing");
	ASSERT_LE(0, fd);
	pages = hd_sys_pages();
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_NODEFER;
	ASSERT_EQ(0, sigaction(SIGBUS, &sa, NULL));
	r.pg = hd_page();
	r.fd = fd;
	ASSERT_EQ(0, hd_create(fd, 0, RACE_PAGES * r.pg, 0, &c));
	r.id = c.heap_id;
	r.p = hd_map(fd, &c, 0, RACE_PAGES * r.pg, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, r.p);

	ASSERT_EQ(0, pthread_create(&t[0], NULL, race_toucher, &r));
	ASSERT_EQ(0, pthread_create(&t[1], NULL, race_toucher, &r));
	ASSERT_EQ(0, pthread_create(&t[2], NULL, destroyer, &r));
	ASSERT_EQ(0, pthread_join(t[2], &ret));
	EXPECT_EQ(NULL, ret);
	usleep(200 * 1000);
	r.stop = 1;
	ASSERT_EQ(0, pthread_join(t[0], NULL));
	ASSERT_EQ(0, pthread_join(t[1], NULL));
	EXPECT_LT(0, r.faults);
	EXPECT_EQ(pages, hd_sys_pages());
	munmap(r.p, RACE_PAGES * r.pg);
	close(fd);
}

TEST(counters_return_to_zero)
{
	/* Run last-ish: every earlier test's process has exited by now. */
	int fd = hd_open();

	if (fd < 0 && errno == ENOENT)
		SKIP(return, HD_DEV " is missing");
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, hd_create(fd, 0, 16 * hd_page(), 0, NULL));
	close(fd);
	EXPECT_TRUE(hd_wait_held(0, 0, 5000));
}

TEST_HARNESS_MAIN
