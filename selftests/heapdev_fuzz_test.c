// SPDX-License-Identifier: GPL-2.0-only
/*
 * A bounded, seeded fuzzer for /dev/heapdev: several threads issue random
 * and structured ioctls (valid, malformed and unknown), mmap, munmap,
 * mremap, mprotect, touch committed and uncommitted pages, fork children
 * that poke at inherited descriptors, and close and reopen the device,
 * all at once.  Afterwards every descriptor and mapping is dropped and the
 * module must hold exactly the pages and heaps it held before.
 *
 * HEAPDEV_FUZZ_SECONDS (default 15, at most 3000) bounds the run,
 * HEAPDEV_FUZZ_SEED fixes the seed (printed either way) to replay a run.
 */

#define _GNU_SOURCE

#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>

#include "../kselftest_harness.h"
#include "heapdev_util.h"

#define FUZZ_THREADS	4
#define FUZZ_FDS	4
#define FUZZ_MAPS	16
#define FUZZ_IDS	32

struct fuzz_map {
	char *addr;
	size_t len;
};

struct fuzz {
	pthread_mutex_t lock;		/* protects fds[], ids[] */
	int fds[FUZZ_FDS];
	__u32 ids[FUZZ_IDS];
	__u64 offs[FUZZ_IDS];
	int id_fd[FUZZ_IDS];
	long pg;
	volatile int stop;
	unsigned long ops, faults, forks;
};

struct fuzz_thread {
	struct fuzz *f;
	unsigned int seed;
	struct fuzz_map maps[FUZZ_MAPS];
};

static __thread sigjmp_buf fuzz_env;
static __thread volatile int fuzz_armed;

static void fuzz_handler(int sig)
{
	if (fuzz_armed)
		siglongjmp(fuzz_env, 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

static unsigned int rnd(struct fuzz_thread *t, unsigned int n)
{
	return n ? rand_r(&t->seed) % n : 0;
}

/* A size, usually sensible, sometimes hostile. */
static __u64 rnd_size(struct fuzz_thread *t)
{
	static const __u64 odd[] = {
		0, 1, 4095, 4097, 1ULL << 40, (1ULL << 40) + 4096,
		~0ULL, ~0ULL - 4095, 1ULL << 63, 0x7fffffffffff000ULL,
	};

	switch (rnd(t, 8)) {
	case 0:
		return odd[rnd(t, ARRAY_SIZE(odd))];
	case 1:
		return (__u64)rand_r(&t->seed) << 12;
	default:
		return (__u64)(1 + rnd(t, 64)) * t->f->pg;
	}
}

static int pick_fd(struct fuzz *f, struct fuzz_thread *t)
{
	return f->fds[rnd(t, FUZZ_FDS)];
}

static void op_open_close(struct fuzz *f, struct fuzz_thread *t)
{
	int i = rnd(t, FUZZ_FDS), old, j;

	pthread_mutex_lock(&f->lock);
	old = f->fds[i];
	f->fds[i] = rnd(t, 4) ? hd_open() : open(HD_DEV, O_RDONLY | O_CLOEXEC);
	for (j = 0; j < FUZZ_IDS; j++)
		if (f->id_fd[j] == old)
			f->ids[j] = 0;
	pthread_mutex_unlock(&f->lock);
	/* Mappings of the old file stay valid: they pin it. */
	if (old >= 0)
		close(old);
}

static void op_create(struct fuzz *f, struct fuzz_thread *t)
{
	struct heapdev_create c = { .size = sizeof(c) };
	int fd = pick_fd(f, t), slot = rnd(t, FUZZ_IDS);

	c.flags = rnd(t, 8) ? (rnd(t, 4) ? 0 : HEAPDEV_HEAP_EXEC) : rand_r(&t->seed);
	/* A third of them inherited by the children op_fork makes. */
	if (!rnd(t, 3))
		c.flags |= HEAPDEV_HEAP_INHERIT;
	c.initial = rnd(t, 3) ? rnd(t, 16) * f->pg : rnd_size(t);
	c.maximum = rnd(t, 2) ? 0 : rnd_size(t);
	if (rnd(t, 16) == 0)
		c.size = rnd(t, 128);
	if (ioctl(fd, HEAPDEV_IOC_CREATE, &c))
		return;
	pthread_mutex_lock(&f->lock);
	f->ids[slot] = c.heap_id;
	f->offs[slot] = c.mmap_offset;
	f->id_fd[slot] = fd;
	pthread_mutex_unlock(&f->lock);
}

static __u32 pick_id(struct fuzz *f, struct fuzz_thread *t)
{
	if (rnd(t, 10) == 0)
		return rand_r(&t->seed) % 64;
	return f->ids[rnd(t, FUZZ_IDS)];
}

static void op_range(struct fuzz *f, struct fuzz_thread *t)
{
	struct heapdev_commit c = { .size = sizeof(c) };
	int fd = pick_fd(f, t);

	c.heap_id = pick_id(f, t);
	c.offset = rnd(t, 4) ? rnd(t, 64) * f->pg : rnd_size(t);
	c.length = rnd(t, 4) ? (1 + rnd(t, 32)) * f->pg : rnd_size(t);
	/* Now and then a range large enough for the background release. */
	if (rnd(t, 16) == 0)
		c.length = (512 + rnd(t, 512)) * f->pg;
	if (rnd(t, 2)) {
		/* At once, at once and mapped, or lazily (pages on touch). */
		c.flags = (const __u32[]){ 0, HEAPDEV_COMMIT_POPULATE,
					   HEAPDEV_COMMIT_LAZY }[rnd(t, 3)];
		if (rnd(t, 20) == 0)
			c.flags = rand_r(&t->seed);
		ioctl(fd, HEAPDEV_IOC_COMMIT, &c);
	} else {
		/* struct heapdev_decommit has the same layout. */
		c.flags = rnd(t, 2) ? HEAPDEV_DECOMMIT_ASYNC : 0;
		ioctl(fd, HEAPDEV_IOC_DECOMMIT, &c);
	}
}

static void op_misc_ioctl(struct fuzz *f, struct fuzz_thread *t)
{
	union {
		struct heapdev_info info;
		struct heapdev_query q;
		struct heapdev_list l;
		struct heapdev_destroy d;
		unsigned char raw[256];
	} u;
	__u32 ids[8];
	unsigned int i;
	int fd = pick_fd(f, t);

	memset(&u, 0, sizeof(u));
	switch (rnd(t, 6)) {
	case 0:
		u.info.size = rnd(t, 4) ? sizeof(u.info) : rnd(t, 256);
		ioctl(fd, HEAPDEV_IOC_GET_INFO, &u);
		break;
	case 1:
		u.q.size = sizeof(u.q);
		u.q.heap_id = pick_id(f, t);
		ioctl(fd, HEAPDEV_IOC_QUERY, &u);
		break;
	case 2:
		u.l.size = sizeof(u.l);
		u.l.capacity = rnd(t, 10);
		u.l.ids = rnd(t, 8) ? (uintptr_t)ids : rand_r(&t->seed);
		if (u.l.capacity > 8 && u.l.ids == (uintptr_t)ids)
			u.l.capacity = 8;
		ioctl(fd, HEAPDEV_IOC_LIST, &u);
		break;
	case 3:
		u.d.size = sizeof(u.d);
		u.d.flags = rnd(t, 2) ? HEAPDEV_DESTROY_ASYNC : 0;
		u.d.heap_id = pick_id(f, t);
		ioctl(fd, HEAPDEV_IOC_DESTROY, &u);
		break;
	case 4:
		/* garbage in a known command */
		for (i = 0; i < sizeof(u.raw); i++)
			u.raw[i] = rnd(t, 4) ? 0 : rand_r(&t->seed);
		u.info.size = rnd(t, 2) ? 48 + rnd(t, 64) : rand_r(&t->seed);
		ioctl(fd, _IO(HEAPDEV_IOC_MAGIC, rnd(t, 8)), &u);
		break;
	default:
		/* unknown or malformed command numbers, bad pointers */
		ioctl(fd, _IOC(rnd(t, 4), HEAPDEV_IOC_MAGIC, rnd(t, 256),
			       rnd(t, 512)), rnd(t, 2) ? (void *)&u : (void *)16);
		break;
	}
}

static void op_map(struct fuzz *f, struct fuzz_thread *t)
{
	struct fuzz_map *m = &t->maps[rnd(t, FUZZ_MAPS)];
	int slot = rnd(t, FUZZ_IDS), prot, flags;
	__u64 off;
	size_t len;
	int fd;
	void *p;

	if (m->addr) {
		munmap(m->addr, m->len);
		m->addr = NULL;
	}
	pthread_mutex_lock(&f->lock);
	fd = f->ids[slot] ? f->id_fd[slot] : pick_fd(f, t);
	off = f->ids[slot] ? f->offs[slot] : (__u64)rnd(t, 8) << 40;
	pthread_mutex_unlock(&f->lock);
	off += rnd(t, 4) * f->pg;
	len = (1 + rnd(t, 32)) * f->pg;
	prot = PROT_READ | (rnd(t, 4) ? PROT_WRITE : 0) |
	       (rnd(t, 8) ? 0 : PROT_EXEC);
	flags = rnd(t, 10) ? MAP_SHARED : MAP_PRIVATE;
	p = mmap(NULL, len, prot, flags, fd, off);
	if (p == MAP_FAILED)
		return;
	m->addr = p;
	m->len = len;
}

static void op_remap(struct fuzz *f, struct fuzz_thread *t)
{
	struct fuzz_map *m = &t->maps[rnd(t, FUZZ_MAPS)];
	void *p;

	if (!m->addr)
		return;
	switch (rnd(t, 3)) {
	case 0:
		p = mremap(m->addr, m->len, m->len, MREMAP_MAYMOVE);
		if (p != MAP_FAILED)
			m->addr = p;
		break;
	case 1:
		mprotect(m->addr, m->len, rnd(t, 8));
		break;
	default:
		/* punch a hole: splits the VMA */
		if (m->len > 2 * (size_t)f->pg)
			munmap(m->addr + f->pg, f->pg);
		break;
	}
}

/* One access that may fault; returns 1 when it raised SIGBUS/SIGSEGV. */
static __attribute__((noinline)) int touch_one(volatile char *p, int write)
{
	int faulted = 0;

	fuzz_armed = 1;
	if (sigsetjmp(fuzz_env, 1) == 0) {
		if (write)
			*p = 1;
		else
			(void)*p;
	} else {
		faulted = 1;
	}
	fuzz_armed = 0;
	return faulted;
}

static void op_touch(struct fuzz *f, struct fuzz_thread *t)
{
	struct fuzz_map *m = &t->maps[rnd(t, FUZZ_MAPS)];
	int n;

	if (!m->addr)
		return;
	for (n = 0; n < 8; n++)
		if (touch_one(m->addr + rnd(t, m->len), rnd(t, 2)))
			__atomic_add_fetch(&f->faults, 1, __ATOMIC_RELAXED);
}

static void op_fork(struct fuzz *f, struct fuzz_thread *t)
{
	struct heapdev_create c = { .size = sizeof(c) };
	int status;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return;
	if (pid == 0) {
		/*
		 * The child owns copies of the inheritable heaps that were
		 * mapped at the fork, and nothing else: a heap it creates
		 * on the inherited descriptor must be its own.
		 */
		int fd = pick_fd(f, t);
		struct fuzz_map *m = &t->maps[rnd(t, FUZZ_MAPS)];
		struct heapdev_query q = { .size = sizeof(q) };

		if (fd >= 0 && !ioctl(fd, HEAPDEV_IOC_CREATE, &c)) {
			q.heap_id = c.heap_id;
			if (ioctl(fd, HEAPDEV_IOC_QUERY, &q))
				_exit(1);
		}
		if (m->addr)
			touch_one(m->addr + rnd(t, m->len), rnd(t, 2));
		_exit(0);
	}
	waitpid(pid, &status, 0);
	__atomic_add_fetch(&f->forks, 1, __ATOMIC_RELAXED);
}

static void *fuzz_thread(void *arg)
{
	struct fuzz_thread *t = arg;
	struct fuzz *f = t->f;
	unsigned int i;

	while (!f->stop) {
		switch (rnd(t, 20)) {
		case 0:
			op_open_close(f, t);
			break;
		case 1: case 2: case 3:
			op_create(f, t);
			break;
		case 4: case 5: case 6: case 7:
			op_range(f, t);
			break;
		case 8: case 9: case 10:
			op_misc_ioctl(f, t);
			break;
		case 11: case 12: case 13:
			op_map(f, t);
			break;
		case 14:
			op_remap(f, t);
			break;
		case 15: case 16: case 17: case 18:
			op_touch(f, t);
			break;
		default:
			if (rnd(t, 10) == 0)
				op_fork(f, t);
			break;
		}
		__atomic_add_fetch(&f->ops, 1, __ATOMIC_RELAXED);
	}
	for (i = 0; i < FUZZ_MAPS; i++)
		if (t->maps[i].addr)
			munmap(t->maps[i].addr, t->maps[i].len);
	return NULL;
}

#define FUZZ_MAX_SECONDS	3000

FIXTURE(fuzz) {
	int unused;
};

FIXTURE_SETUP(fuzz)
{
}

FIXTURE_TEARDOWN(fuzz)
{
}

/* The harness's timeout must outlast the longest run allowed. */
TEST_F_TIMEOUT(fuzz, ioctls_mappings_and_faults, FUZZ_MAX_SECONDS + 300)
{
	struct sigaction sa = { .sa_handler = fuzz_handler };
	struct fuzz_thread th[FUZZ_THREADS];
	pthread_t tid[FUZZ_THREADS];
	const char *env = getenv("HEAPDEV_FUZZ_SECONDS");
	unsigned int seed, secs = env ? atoi(env) : 15;
	long pages, heaps;
	struct fuzz f;
	int i, fd;

	fd = hd_open();
	if (fd < 0 && errno == ENOENT)
		SKIP(return, HD_DEV " is missing");
	ASSERT_LE(0, fd);
	close(fd);

	if (secs > FUZZ_MAX_SECONDS)
		secs = FUZZ_MAX_SECONDS;
	env = getenv("HEAPDEV_FUZZ_SEED");
	seed = env ? strtoul(env, NULL, 0) : (unsigned int)time(NULL) ^ getpid();
	TH_LOG("seed %u (HEAPDEV_FUZZ_SEED), %u s (HEAPDEV_FUZZ_SECONDS)",
	       seed, secs);

	pages = hd_sys_pages();
	heaps = hd_sys_heaps();
	memset(&f, 0, sizeof(f));
	pthread_mutex_init(&f.lock, NULL);
	f.pg = hd_page();
	for (i = 0; i < FUZZ_FDS; i++)
		f.fds[i] = hd_open();
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_NODEFER;
	ASSERT_EQ(0, sigaction(SIGBUS, &sa, NULL));
	ASSERT_EQ(0, sigaction(SIGSEGV, &sa, NULL));

	for (i = 0; i < FUZZ_THREADS; i++) {
		memset(&th[i], 0, sizeof(th[i]));
		th[i].f = &f;
		th[i].seed = seed + i * 7919;
		ASSERT_EQ(0, pthread_create(&tid[i], NULL, fuzz_thread, &th[i]));
	}
	sleep(secs);
	f.stop = 1;
	for (i = 0; i < FUZZ_THREADS; i++)
		ASSERT_EQ(0, pthread_join(tid[i], NULL));
	for (i = 0; i < FUZZ_FDS; i++)
		if (f.fds[i] >= 0)
			close(f.fds[i]);

	TH_LOG("%lu operations, %lu faults caught, %lu forks",
	       f.ops, f.faults, f.forks);
	EXPECT_LT(1000, f.ops);
	/*
	 * Every mapping and descriptor is gone: so is every page and heap,
	 * once the background release is done.
	 */
	EXPECT_TRUE(hd_wait_held(pages, heaps, 20000))
		TH_LOG("module holds %ld pages and %ld heaps, expected %ld and %ld",
		       hd_sys_pages(), hd_sys_heaps(), pages, heaps);
}

TEST(nothing_left_after_the_fuzzer_exits)
{
	if (hd_sys_pages() < 0)
		SKIP(return, "heapdev is not loaded");
	/* The previous test ran in a process that has exited by now. */
	EXPECT_TRUE(hd_wait_held(0, 0, 20000))
		TH_LOG("module holds %ld pages and %ld heaps", hd_sys_pages(),
		       hd_sys_heaps());
}

TEST_HARNESS_MAIN
