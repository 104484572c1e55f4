// SPDX-License-Identifier: GPL-2.0-only
/*
 * heapdev isolation and memory pressure: a descriptor passed to another
 * process or reopened through /proc gives no access to the owner's heaps,
 * pages never carry another process's data, a memory cgroup limit makes
 * commits fail with ENOMEM without an OOM kill, and munmap racing with
 * faults is safe.
 */

#define _GNU_SOURCE

#include <pthread.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "../kselftest_harness.h"
#include "heapdev_util.h"

#define CG_TEST	HD_CG_ROOT "/heapdev-selftest"

static int send_fd(int sock, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	char byte = 'x';
	struct iovec iov = { &byte, 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &msg, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	char byte;
	struct iovec iov = { &byte, 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm;
	int fd;

	if (recvmsg(sock, &msg, 0) != 1)
		return -1;
	cm = CMSG_FIRSTHDR(&msg);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

struct peer_req {
	__u32 id;
	__u64 off;
	char path[64];
};

/* The receiving side: nothing about the owner's heaps may work. */
static int peer_checks(int fd, const struct peer_req *r)
{
	struct heapdev_list l = { .size = sizeof(l) };
	struct heapdev_query q;
	void *p;

	if (hd_query(fd, r->id, &q) != -EPERM)
		return 1;
	if (hd_commit(fd, r->id, 0, 4096, 0, NULL) != -EPERM)
		return 2;
	if (hd_destroy(fd, r->id) != -EPERM)
		return 3;
	if (hd_ioctl(fd, HEAPDEV_IOC_LIST, &l) != -EPERM)
		return 4;
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, r->off);
	if (p != MAP_FAILED || errno != EPERM)
		return 5;
	return 0;
}

TEST(passed_descriptor_gives_no_access)
{
	struct heapdev_create c;
	struct peer_req r;
	int sv[2], fd, status;
	pid_t pid;
	char *p;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	/* The peer is forked before the device is opened. */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int got;

		close(sv[0]);
		if (read(sv[1], &r, sizeof(r)) != sizeof(r))
			_exit(10);
		got = recv_fd(sv[1]);
		if (got < 0)
			_exit(11);
		_exit(peer_checks(got, &r));
	}
	close(sv[1]);
	fd = hd_open();
	if (fd < 0 && errno == ENOENT) {
		kill(pid, SIGKILL);
		SKIP(return, HD_DEV " is missing");
	}
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, hd_create(fd, 0, 4096, 0, &c));
	p = hd_map(fd, &c, 0, 4096, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	strcpy(p, "secret");
	r.id = c.heap_id;
	r.off = c.mmap_offset;
	ASSERT_EQ(sizeof(r), write(sv[0], &r, sizeof(r)));
	ASSERT_EQ(0, send_fd(sv[0], fd));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_STREQ("secret", p);
	close(fd);
}

TEST(reopen_through_proc_gives_a_fresh_namespace)
{
	struct heapdev_list l = { .size = sizeof(l) };
	struct heapdev_create c;
	struct heapdev_query q;
	char path[64];
	int fd, other;

	fd = hd_open();
	if (fd < 0 && errno == ENOENT)
		SKIP(return, HD_DEV " is missing");
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, hd_create(fd, 0, 4096, 0, &c));
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", getpid(), fd);
	other = open(path, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, other);
	ASSERT_EQ(0, hd_ioctl(other, HEAPDEV_IOC_LIST, &l));
	EXPECT_EQ(0, l.count);
	EXPECT_EQ(-ENOENT, hd_query(other, c.heap_id, &q));
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 4096, PROT_READ, MAP_SHARED, other,
				   c.mmap_offset));
	EXPECT_EQ(ENXIO, errno);
	close(other);
	EXPECT_EQ(0, hd_query(fd, c.heap_id, &q));
	close(fd);
}

static int dirty_and_leave(void *arg)
{
	struct heapdev_create c;
	int fd = hd_open();
	char *p;

	(void)arg;
	if (fd < 0 || hd_create(fd, 0, 1 << 20, 0, &c))
		return 1;
	p = hd_map(fd, &c, 0, 1 << 20, PROT_READ | PROT_WRITE);
	if (p == MAP_FAILED)
		return 2;
	memset(p, 0xa5, 1 << 20);
	return 0;	/* exit frees everything */
}

TEST(pages_never_carry_another_process_data)
{
	struct heapdev_create c;
	size_t i, len = 4 << 20;
	int round, fd;
	char *p;

	fd = hd_open();
	if (fd < 0 && errno == ENOENT)
		SKIP(return, HD_DEV " is missing");
	ASSERT_LE(0, fd);
	for (round = 0; round < 4; round++) {
		ASSERT_EQ(0, hd_in_child(dirty_and_leave, NULL));
		ASSERT_EQ(0, hd_create(fd, 0, len, 0, &c));
		p = hd_map(fd, &c, 0, len, PROT_READ);
		ASSERT_NE(MAP_FAILED, p);
		for (i = 0; i < len; i += sizeof(long))
			if (*(long *)(p + i))
				break;
		EXPECT_EQ(len, i);
		munmap(p, len);
		ASSERT_EQ(0, hd_destroy(fd, c.heap_id));
	}
	close(fd);
}

#define MIB (1 << 20)

/* Runs inside a cgroup with memory.max = 32 MiB. */
static int commit_until_refused(void *arg)
{
	struct heapdev_create c;
	int fd = hd_open(), err = 0;
	long mib;
	char *p;

	(void)arg;
	if (fd < 0 || hd_create(fd, 0, 0, 0, &c))
		return 20;
	p = hd_map(fd, &c, 0, 256 * MIB, PROT_READ | PROT_WRITE);
	if (p == MAP_FAILED)
		return 21;
	for (mib = 0; mib < 256; mib++) {
		err = hd_commit(fd, c.heap_id, mib * MIB, MIB, 0, NULL);
		if (err)
			break;
		memset(p + mib * MIB, 1, MIB);
	}
	if (err != -ENOMEM)
		return 22;		/* must be refused, with ENOMEM */
	if (mib < 8 || mib > 32)
		return 23;		/* around the limit, not far from it */
	/* Still alive; give memory back and the heap works again. */
	if (hd_decommit(fd, c.heap_id, 0, 8 * MIB, NULL))
		return 24;
	if (hd_commit(fd, c.heap_id, 0, 4 * MIB, 0, NULL))
		return 25;
	if (p[0] != 0 || p[8 * MIB] != 1)
		return 26;
	return 0;
}

static int enter_cgroup_and_commit(void *arg)
{
	if (hd_cg_enter(CG_TEST))
		return 30;
	return commit_until_refused(arg);
}

TEST(memcg_limit_refuses_commit_without_oom_kill)
{
	int fd = hd_open();

	if (fd < 0 && errno == ENOENT)
		SKIP(return, HD_DEV " is missing");
	close(fd);
	HD_CG_MAKE_OR_SKIP(CG_TEST, "33554432");

	EXPECT_EQ(0, hd_in_child(enter_cgroup_and_commit, NULL));
	EXPECT_EQ(0, hd_cg_read(CG_TEST, "memory.events", "oom_kill"));
	EXPECT_LT(0, hd_cg_read(CG_TEST, "memory.events", "max"));
	EXPECT_EQ(0, rmdir(CG_TEST));
}

struct unmap_race {
	int fd;
	struct heapdev_create c;
	char *volatile addr;
	volatile int stop;
	unsigned long maps, touches, faults;
};

static __thread sigjmp_buf race_env;

static void race_handler(int sig)
{
	(void)sig;
	siglongjmp(race_env, 1);
}

static void *mapper(void *arg)
{
	struct unmap_race *r = arg;
	char *p;

	while (!r->stop) {
		p = hd_map(r->fd, &r->c, 0, 64 * 4096, PROT_READ | PROT_WRITE);
		if (p == MAP_FAILED)
			return (void *)1;
		r->addr = p;
		usleep(100);
		r->addr = NULL;
		munmap(p, 64 * 4096);
		r->maps++;
	}
	return NULL;
}

static void *toucher(void *arg)
{
	struct unmap_race *r = arg;
	unsigned int seed = 1;

	while (!r->stop) {
		char *p = r->addr;

		if (!p)
			continue;
		if (sigsetjmp(race_env, 1) == 0) {
			p[(rand_r(&seed) % 64) * 4096] = 1;
			__atomic_add_fetch(&r->touches, 1, __ATOMIC_RELAXED);
		} else {
			__atomic_add_fetch(&r->faults, 1, __ATOMIC_RELAXED);
		}
	}
	return NULL;
}

TEST(munmap_races_with_faults)
{
	struct sigaction sa = { .sa_handler = race_handler };
	struct unmap_race r = { 0 };
	pthread_t t[3];
	void *ret;
	long pages;

	r.fd = hd_open();
	if (r.fd < 0 && errno == ENOENT)
		SKIP(return, HD_DEV " is missing");
	ASSERT_LE(0, r.fd);
	pages = hd_sys_pages();
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_NODEFER;
	ASSERT_EQ(0, sigaction(SIGSEGV, &sa, NULL));
	ASSERT_EQ(0, sigaction(SIGBUS, &sa, NULL));
	ASSERT_EQ(0, hd_create(r.fd, 0, 32 * 4096, 0, &r.c));

	ASSERT_EQ(0, pthread_create(&t[0], NULL, mapper, &r));
	ASSERT_EQ(0, pthread_create(&t[1], NULL, toucher, &r));
	ASSERT_EQ(0, pthread_create(&t[2], NULL, toucher, &r));
	sleep(2);
	r.stop = 1;
	ASSERT_EQ(0, pthread_join(t[0], &ret));
	EXPECT_EQ(NULL, ret);
	pthread_join(t[1], NULL);
	pthread_join(t[2], NULL);
	TH_LOG("%lu map/unmap cycles, %lu touches, %lu faults",
	       r.maps, r.touches, r.faults);
	EXPECT_LT(0, r.maps);
	close(r.fd);
	EXPECT_EQ(pages, hd_sys_pages());
}

TEST_HARNESS_MAIN
