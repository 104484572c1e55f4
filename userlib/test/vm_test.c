// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * heapdev-api-test: the API suite on the real /dev/heapdev, plus proofs
 * across the user/kernel boundary.  Built statically by `make vmtest`.
 *
 *   heapdev-api-test [--no-user]
 *
 * Needs the heapdev module loaded.  Run as root, it runs everything twice:
 * as root, then (unless --no-user) in a child that drops to uid/gid 65534
 * after making /dev/heapdev mode 0666 (the old mode is restored).  Output:
 * TAP-style "ok N - ..." lines and a closing "N passed, N failed"; the exit
 * status is 0 only if nothing failed.
 *
 * Proofs:
 *  - /proc/heapdev shows each heap of this pid with the committed bytes the
 *    library reports (HeapSummary and heapdev_get_info), its flags and its
 *    maximum;
 *  - HeapDestroy returns every page: /sys/class/misc/heapdev/pages comes
 *    back to its value from before the heap existed;
 *  - the kernel refuses commits beyond a fixed heap's maximum, whatever
 *    userspace asks (raw ioctls on a separate open of the device), and a
 *    fixed heap filled through the library never commits more than it;
 *  - memory pressure (as root only): under a cgroup v2 memory.max, the
 *    module's per-heap limit and its per-user limit, HeapAlloc returns NULL
 *    with ERROR_NOT_ENOUGH_MEMORY near the limit, the process is not killed,
 *    the blocks already given keep their contents, and after HeapFree the
 *    heap allocates again.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <heapdev.h>
#include <heapdev/win32.h>

#include "../../uapi/heapdev.h"
#include "api_suite.h"
#include "t.h"

#define DEV	"/dev/heapdev"
#define PROC	"/proc/heapdev"
#define PAGES	"/sys/class/misc/heapdev/pages"
#define RELEASING	"/sys/class/misc/heapdev/releasing"

struct proc_line {
	unsigned long long committed, reserved, maximum;
	char flags[8];
};

/* The admin view's line for heap @id of this process. */
static bool proc_find(uint32_t id, struct proc_line *out)
{
	FILE *f = fopen(PROC, "r");
	char line[512], comm[64];
	bool found = false;
	unsigned int heap;
	int pid;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%d %63s %u %7s %llu %llu %llu", &pid, comm,
			   &heap, out->flags, &out->committed, &out->reserved,
			   &out->maximum) == 7 && pid == getpid() && heap == id)
			found = true;
	}
	fclose(f);
	return found;
}

static long read_counter(const char *path)
{
	FILE *f = fopen(path, "r");
	long n = -1;

	if (f) {
		if (fscanf(f, "%ld", &n) != 1)
			n = -1;
		fclose(f);
	}
	return n;
}

static long read_pages(void)
{
	return read_counter(PAGES);
}

/*
 * The library destroys heaps and decommits big ranges with the module's
 * background release: wait (at most 10 s) until the module's worker has
 * freed every page it was given.  Return: whether it did.
 */
static bool wait_released(void)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	int i;

	for (i = 0; i < 1000; i++) {
		if (read_counter(RELEASING) <= 0)
			return true;
		nanosleep(&ts, NULL);
	}
	return false;
}

static void admin_view(void)
{
	struct heapdev_heap_info info = { .size = sizeof(info) };
	HEAP_SUMMARY s = { .cb = sizeof(s) };
	HANDLE g = HeapCreate(0, 0, 0);
	HANDLE f = HeapCreate(HEAP_CREATE_ENABLE_EXECUTE, 1 << 16, 1 << 20);
	struct proc_line pl = { 0 };
	bool found;
	void *p[40];
	int i;

	for (i = 0; i < 40; i++)
		p[i] = HeapAlloc(g, 0, (size_t)i * 7000 + (i == 39 ? 3 << 20 : 0));
	HeapAlloc(f, 0, 100000);
	heapdev_get_info((struct heapdev_heap *)g, &info);
	HeapSummary(g, 0, &s);
	T_OK(info.backend == HEAPDEV_BACKEND_DEVICE, "kernel proofs run on "
	     "the device backend");
	found = proc_find(info.kernel_id, &pl);
	T_OK(found, "%s lists heap %u of pid %d", PROC, info.kernel_id,
	     getpid());
	T_OK(found && pl.committed == s.cbCommitted &&
	     pl.committed == info.committed,
	     "growable heap: %s committed %llu == HeapSummary %zu", PROC,
	     pl.committed, s.cbCommitted);
	T_OK(pl.flags[0] == 'G' && pl.maximum == 0, "growable heap flags %s",
	     pl.flags);
	for (i = 0; i < 40; i += 2)
		HeapFree(g, 0, p[i]);
	HeapCompact(g, 0);
	HeapSummary(g, 0, &s);
	found = proc_find(info.kernel_id, &pl);
	T_OK(found && pl.committed == s.cbCommitted,
	     "after frees and HeapCompact: %llu == %zu", pl.committed,
	     s.cbCommitted);
	heapdev_get_info((struct heapdev_heap *)f, &info);
	HeapSummary(f, 0, &s);
	found = proc_find(info.kernel_id, &pl);
	T_OK(found && pl.committed == s.cbCommitted &&
	     pl.maximum == 1 << 20 && !strcmp(pl.flags, "FX"),
	     "fixed executable heap: committed %llu == %zu, maximum %llu, "
	     "flags %s", pl.committed, s.cbCommitted, pl.maximum, pl.flags);
	HeapDestroy(g);
	HeapDestroy(f);
	T_OK(wait_released() && !proc_find(info.kernel_id, &pl),
	     "destroyed heaps leave %s once their pages are released", PROC);
}

static int probe_read(const volatile char *p);

/*
 * HeapDestroy gives every page back; a big heap's mappings are left for
 * the module's worker to zap (HEAPDEV_DESTROY_KEEP_MAPPINGS): they fault
 * at once (PROT_NONE), and heapdev_trim(NULL) unmaps them.
 */
static void destroy_returns_pages(void)
{
	long before = read_pages(), during, after;
	unsigned char vec;
	HANDLE h;
	void *p;
	int i;

	T_OK(before >= 0, "%s readable (%ld)", PAGES, before);
	h = HeapCreate(0, 1 << 20, 0);
	for (i = 0; i < 3000; i++)
		p = HeapAlloc(h, 0, (size_t)(i % 50) * 61);
	for (i = 0; i < 30; i++)
		p = HeapAlloc(h, 0, 200000);
	p = HeapAlloc(h, HEAP_ZERO_MEMORY, 5 << 20);
	T_OK(p != NULL, "a heap with small, medium and large blocks");
	during = read_pages();
	T_OK(during >= before + (12 << 20) / 4096, "the module holds its pages "
	     "(%ld -> %ld)", before, during);
	T_OK(HeapDestroy(h), "HeapDestroy with live blocks");
	T_EQ(probe_read(p), SIGSEGV, "a read of a destroyed big heap faults "
	     "at once");
	T_OK(wait_released(), "the module's background release finishes");
	after = read_pages();
	T_EQ(after, before, "HeapDestroy returned every page to the kernel");
	heapdev_trim(NULL);
	T_OK(mincore((void *)((uintptr_t)p & ~4095UL), 4096, &vec) &&
	     errno == ENOMEM, "heapdev_trim(NULL) unmaps its mappings");
}

static int raw_commit(int fd, uint32_t id, uint64_t off, uint64_t len,
		      uint64_t *committed)
{
	struct heapdev_commit c = {
		.size = sizeof(c), .heap_id = id, .offset = off, .length = len,
	};

	if (ioctl(fd, HEAPDEV_IOC_COMMIT, &c))
		return -errno;
	*committed = c.committed;
	return 0;
}

static void fixed_limit(void)
{
	struct heapdev_create c = { .size = sizeof(c), .maximum = 64 << 10 };
	struct heapdev_destroy d = { .size = sizeof(d) };
	struct heapdev_heap_info info = { .size = sizeof(info) };
	uint64_t committed = 0;
	int fd = open(DEV, O_RDWR | O_CLOEXEC);
	struct proc_line pl = { 0 };
	bool found;
	HANDLE h;
	int n = 0;

	T_OK(fd >= 0 && !ioctl(fd, HEAPDEV_IOC_CREATE, &c),
	     "raw: a fixed heap of 64 KiB");
	T_EQ(raw_commit(fd, c.heap_id, 0, 128 << 10, &committed), -EINVAL,
	     "raw: the kernel refuses to commit 128 KiB in it");
	T_EQ(raw_commit(fd, c.heap_id, 64 << 10, 4096, &committed), -EINVAL,
	     "raw: and a page just past its maximum");
	T_EQ(raw_commit(fd, c.heap_id, 0, 64 << 10, &committed), 0,
	     "raw: committing exactly the maximum works");
	T_EQ(committed, 64 << 10, "raw: committed == maximum");
	d.heap_id = c.heap_id;
	T_OK(!ioctl(fd, HEAPDEV_IOC_DESTROY, &d), "raw: destroy");
	close(fd);

	h = HeapCreate(0, 0, 256 << 10);
	while (HeapAlloc(h, 0, 3000))
		n++;
	heapdev_get_info((struct heapdev_heap *)h, &info);
	found = proc_find(info.kernel_id, &pl);
	T_OK(found && pl.committed <= 256 << 10 &&
	     pl.committed == info.committed, "a full fixed heap (%d blocks) "
	     "commits %llu <= its 256 KiB maximum", n, pl.committed);
	HeapDestroy(h);
}

/* ---- memory pressure: the limits as HeapAlloc sees them ---- */

#define MIB		(1ULL << 20)
#define CG_ROOT		"/sys/fs/cgroup"
#define CG_TEST		CG_ROOT "/heapdev-api-test"
#define PARAMS		"/sys/module/heapdev/parameters/"
#define PRESSURE_MAX	4096

struct pressure_result {
	int blocks;			/* HeapAlloc calls that succeeded */
	unsigned long long bytes;	/* and their bytes */
	unsigned int error;		/* GetLastError() after the NULL */
	int intact;			/* every block kept its pattern */
	int recovered;			/* allocations after freeing half */
	int destroyed;			/* HeapDestroy succeeded */
};

static int write_str(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : -EIO;
}

static long read_long(const char *path)
{
	char buf[64] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? atol(buf) : -1;
}

/* memory.events key @key of the test cgroup, or -1. */
static long cg_event(const char *key)
{
	FILE *f = fopen(CG_TEST "/memory.events", "r");
	size_t len = strlen(key);
	char line[128];
	long val = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, len) && line[len] == ' ')
			val = atol(line + len + 1);
	fclose(f);
	return val;
}

/*
 * Fill a growable heap with blocks of 64 KiB, 1 MiB and 100 B in turn until
 * HeapAlloc fails; each block carries a pattern.  Then free every other
 * block, check the rest, and allocate again.
 */
static void fill_until_refused(struct pressure_result *r, HANDLE h)
{
	static void *blocks[PRESSURE_MAX];
	static const size_t sizes[] = { 64 << 10, 1 << 20, 100 };
	size_t sz;
	int i, j;

	memset(r, 0, sizeof(*r));
	SetLastError(0);
	for (i = 0; i < PRESSURE_MAX; i++) {
		sz = sizes[i % 3];
		blocks[i] = HeapAlloc(h, 0, sz);
		if (!blocks[i])
			break;
		memset(blocks[i], i & 0xff, sz);
		r->bytes += sz;
	}
	r->blocks = i;
	r->error = GetLastError();
	r->intact = 1;
	for (j = 0; j < r->blocks; j++) {
		const unsigned char *b = blocks[j];

		sz = sizes[j % 3];
		if (b[0] != (j & 0xff) || b[sz - 1] != (j & 0xff))
			r->intact = 0;
		if (j % 2 == 0 && !HeapFree(h, 0, blocks[j]))
			r->intact = 0;
	}
	for (j = 0; j < r->blocks / 2 && j < 64; j++) {
		void *p = HeapAlloc(h, HEAP_ZERO_MEMORY, sizes[j % 3]);

		if (!p)
			break;
		r->recovered++;
	}
	for (j = 1; j < r->blocks; j += 2) {
		const unsigned char *b = blocks[j];

		if (b[sizes[j % 3] / 2] != (j & 0xff))
			r->intact = 0;
	}
	r->destroyed = !!HeapDestroy(h);
}

/* Fill a heap in a child, in the test cgroup if @cgroup, as @uid if set. */
static int pressure_child(struct pressure_result *r, bool cgroup, uid_t uid)
{
	int pfd[2], status = -1;
	pid_t pid;

	if (pipe(pfd))
		return -1;
	pid = fork();
	if (!pid) {
		char buf[32];

		close(pfd[0]);
		snprintf(buf, sizeof(buf), "%d", getpid());
		if (cgroup && write_str(CG_TEST "/cgroup.procs", buf))
			_exit(3);
		if (uid && (setgroups(0, NULL) || setgid(uid) || setuid(uid)))
			_exit(4);
		fill_until_refused(r, HeapCreate(0, 0, 0));
		if (write(pfd[1], r, sizeof(*r)) != sizeof(*r))
			_exit(2);
		_exit(0);
	}
	close(pfd[1]);
	if (pid < 0 || read(pfd[0], r, sizeof(*r)) != sizeof(*r))
		memset(r, 0, sizeof(*r));
	close(pfd[0]);
	if (pid > 0)
		waitpid(pid, &status, 0);
	return status;
}

static void check_pressure(const char *what, const struct pressure_result *r,
			   int status, unsigned long long limit)
{
	T_EQ(status, 0, "%s: the process survives and exits normally", what);
	T_OK(r->blocks > 0 && r->blocks < PRESSURE_MAX, "%s: HeapAlloc fails "
	     "after %d blocks (%llu MiB)", what, r->blocks, r->bytes / MIB);
	T_EQ(r->error, ERROR_NOT_ENOUGH_MEMORY,
	     "%s: with ERROR_NOT_ENOUGH_MEMORY", what);
	T_OK(r->bytes <= limit && r->bytes >= limit / 2, "%s: near the limit "
	     "(%llu of %llu MiB)", what, r->bytes / MIB, limit / MIB);
	T_OK(r->intact, "%s: every block kept its contents", what);
	T_OK(r->recovered > 0, "%s: after frees HeapAlloc works again "
	     "(%d blocks)", what, r->recovered);
	T_OK(r->destroyed, "%s: HeapDestroy", what);
}

static void memcg_pressure(void)
{
	struct pressure_result r;
	long pages = read_pages();
	int status;

	if (access(CG_ROOT "/cgroup.subtree_control", W_OK)) {
		printf("# skip memcg pressure: no writable cgroup v2 at %s\n",
		       CG_ROOT);
		return;
	}
	write_str(CG_ROOT "/cgroup.subtree_control", "+memory");
	rmdir(CG_TEST);
	if (mkdir(CG_TEST, 0755) ||
	    write_str(CG_TEST "/memory.max", "33554432")) {
		T_OK(0, "memcg: make %s with memory.max 32 MiB", CG_TEST);
		return;
	}
	status = pressure_child(&r, true, 0);
	check_pressure("memcg 32 MiB", &r, status, 32 * MIB);
	T_EQ(cg_event("oom_kill"), 0, "memcg: no OOM kill in the cgroup");
	T_OK(cg_event("max") > 0, "memcg: the cgroup did hit memory.max");
	T_EQ(rmdir(CG_TEST), 0, "memcg: the cgroup is empty afterwards");
	T_OK(wait_released(), "memcg: the background release finishes");
	T_EQ(read_pages(), pages, "memcg: every page back to the kernel");
}

/* Lower module parameter @name to @mb for one run as @uid. */
static void limit_pressure(const char *name, long mb, uid_t uid)
{
	char path[128], val[32], what[64];
	struct pressure_result r;
	long old, pages = read_pages();
	struct stat st;
	int status;

	snprintf(path, sizeof(path), PARAMS "%s", name);
	snprintf(what, sizeof(what), "%s=%ld", name, mb);
	old = read_long(path);
	snprintf(val, sizeof(val), "%ld", mb);
	if (old < 0 || write_str(path, val) || stat(DEV, &st)) {
		T_OK(0, "%s: set %s", what, path);
		return;
	}
	if (uid)
		chmod(DEV, 0666);
	status = pressure_child(&r, false, uid);
	chmod(DEV, st.st_mode & 07777);
	snprintf(val, sizeof(val), "%ld", old);
	write_str(path, val);
	check_pressure(what, &r, status, (unsigned long long)mb * MIB);
	T_OK(wait_released(), "%s: the background release finishes", what);
	T_EQ(read_pages(), pages, "%s: every page back to the kernel", what);
}

static void fork_copies(bool refuse);

static void pressure(void)
{
	if (geteuid() != 0) {
		printf("# skip memory pressure: needs root\n");
		return;
	}
	memcg_pressure();
	fork_copies(true);
	limit_pressure("heap_limit_mb", 16, 0);
	limit_pressure("user_limit_mb", 24, 65534);
}

/* Pages of [p, p + len) mapped in this process (mincore: PTE present). */
static long mapped_pages(const void *p, size_t len)
{
	uintptr_t start = (uintptr_t)p & ~4095UL;
	size_t n = ((uintptr_t)p + len - start + 4095) / 4096, i;
	unsigned char *vec = calloc(n, 1);
	long count = 0;

	if (!vec || mincore((void *)start, n * 4096, vec)) {
		free(vec);
		return -1;
	}
	for (i = 0; i < n; i++)
		count += vec[i] & 1;
	free(vec);
	return count;
}

/*
 * HEAPDEV_LAZY_COMMIT on the device: a large block is committed whole in
 * the kernel's view (the "pages" counter, /proc/heapdev), but its pages
 * are mapped only as they are touched.
 */
static void lazy_large_blocks(void)
{
	struct heapdev_options o = { .size = sizeof(o),
				     .flags = HEAPDEV_LAZY_COMMIT };
	struct heapdev_heap_info info = { .size = sizeof(info) };
	long before = read_pages(), during;
	struct proc_line pl = { 0 };
	struct heapdev_heap *h;
	unsigned char *p;
	long mapped;
	size_t i;
	bool zero = true;

	if (heapdev_create(&o, &h)) {
		T_OK(0, "lazy commit: heap created");
		return;
	}
	p = heapdev_alloc(h, 8 << 20, 0);
	during = read_pages();
	mapped = mapped_pages(p, 8 << 20);
	T_OK(p && during >= before + 2048, "lazy commit: the module counts "
	     "the 8 MiB block committed (%ld -> %ld pages)", before, during);
	T_OK(mapped >= 0 && mapped <= 16, "lazy commit: almost none of its "
	     "pages exist (%ld mapped)", mapped);
	heapdev_get_info(h, &info);
	T_OK(proc_find(info.kernel_id, &pl) && pl.committed == info.committed,
	     "lazy commit: %s committed %llu == heapdev_get_info %llu", PROC,
	     pl.committed, (unsigned long long)info.committed);
	memset(p + (2 << 20), 0x33, 1 << 20);
	mapped = mapped_pages(p, 8 << 20);
	T_OK(mapped >= 256 && mapped <= 256 + 32, "lazy commit: writing 1 MiB "
	     "maps 256 pages (%ld mapped)", mapped);
	for (i = 0; p && i < (8 << 20); i += 4096)
		zero &= p[i] == (i >= (2 << 20) && i < (3 << 20) ? 0x33 : 0);
	T_OK(zero, "lazy commit: the other pages read as zero");
	T_OK(!heapdev_free(h, p, 0) && !heapdev_destroy(h) && wait_released(),
	     "lazy commit: free and destroy");
	T_EQ(read_pages(), before, "lazy commit: every page back to the "
	     "kernel, touched or not");
}

/* A readable byte at @p: 0, or the signal reading it raised. */
static sigjmp_buf fork_jb;
static volatile int fork_sig;

static void fork_on_sig(int sig)
{
	fork_sig = sig;
	siglongjmp(fork_jb, 1);
}

static int probe_read(const volatile char *p)
{
	struct sigaction sa = { .sa_handler = fork_on_sig }, ob, os;

	sigaction(SIGBUS, &sa, &ob);
	sigaction(SIGSEGV, &sa, &os);
	fork_sig = 0;
	if (!sigsetjmp(fork_jb, 1))
		(void)p[0];
	sigaction(SIGBUS, &ob, NULL);
	sigaction(SIGSEGV, &os, NULL);
	return fork_sig;
}

/*
 * HEAPDEV_INHERIT on the device: the module copies the heap into the
 * child (its pages counted twice while the child lives, given back at its
 * exit), and when the copy cannot be made the child's library forgets
 * the heap and unmaps it.
 */
static void fork_copies(bool refuse)
{
	struct heapdev_options o = { .size = sizeof(o),
				     .flags = HEAPDEV_INHERIT };
	const char *what = refuse ? "fork over the user limit" : "fork";
	char path[] = PARAMS "user_limit_mb", val[32];
	long before = read_pages(), held, child_pages = 0, old = -1;
	struct heapdev_heap *h;
	int pfd[2], st = -1;
	char *big, *small;
	pid_t pid;

	if (heapdev_create(&o, &h) || pipe(pfd)) {
		T_OK(0, "%s: heap created", what);
		return;
	}
	big = heapdev_alloc(h, 8 << 20, 0);
	small = heapdev_alloc(h, 100, 0);
	if (!big || !small) {
		T_OK(0, "%s: blocks allocated", what);
		heapdev_destroy(h);
		return;
	}
	memset(big, 'B', 8 << 20);
	memset(small, 'S', 100);
	held = read_pages();
	if (refuse) {
		struct heapdev_info info = { .size = sizeof(info) };
		int fd = open(DEV, O_RDWR | O_CLOEXEC);

		info.size = sizeof(info);
		if (fd < 0 || ioctl(fd, HEAPDEV_IOC_GET_INFO, &info)) {
			T_OK(0, "%s: GET_INFO", what);
			return;
		}
		close(fd);
		old = read_long(path);
		snprintf(val, sizeof(val), "%llu",
			 (unsigned long long)(info.user_committed >> 20) + 2);
		write_str(path, val);
	}
	pid = fork();
	if (!pid) {
		long n = read_pages();
		int bad = 0;
		size_t sz = 0;

		if (refuse) {
			/* Forgotten and unmapped, as heaps without the flag. */
			bad |= !!heapdev_heap_of(small);
			bad |= (probe_read(small) != SIGSEGV) << 1;
			bad |= (heapdev_size(h, small, 0, &sz) != -EBADF) << 2;
		} else {
			bad |= heapdev_heap_of(small) != h;
			bad |= (big[0] != 'B' || big[(8 << 20) - 1] != 'B' ||
				small[99] != 'S') << 1;
			bad |= (heapdev_size(h, small, 0, &sz) || sz != 100) << 2;
			memset(big, 'C', 8 << 20);
		}
		if (write(pfd[1], &n, sizeof(n)) != sizeof(n))
			bad |= 1 << 3;
		_exit(bad);
	}
	close(pfd[1]);
	if (read(pfd[0], &child_pages, sizeof(child_pages)) !=
	    sizeof(child_pages))
		child_pages = -1;
	close(pfd[0]);
	waitpid(pid, &st, 0);
	if (refuse) {
		snprintf(val, sizeof(val), "%ld", old);
		write_str(path, val);
	}
	T_OK(WIFEXITED(st) && !WEXITSTATUS(st), "%s: the child %s (status %#x)",
	     what, refuse ? "has no copy: the heap is forgotten and unmapped" :
	     "reads and writes its copy of the heap", st);
	if (refuse)
		T_OK(child_pages >= held && child_pages < held + 2048,
		     "%s: no copy was charged (%ld -> %ld pages)", what, held,
		     child_pages);
	else
		T_OK(child_pages >= held + 2048, "%s: the child's copy is held "
		     "by the module too (%ld -> %ld pages)", what, held,
		     child_pages);
	T_OK(big[0] == 'B' && big[(8 << 20) - 1] == 'B' && small[0] == 'S',
	     "%s: the parent's blocks are untouched", what);
	T_OK(wait_released() && read_pages() == held, "%s: the child's exit "
	     "gives its copy back (%ld pages)", what, read_pages());
	heapdev_destroy(h);
	T_OK(wait_released() && read_pages() == before,
	     "%s: every page back to the kernel", what);
}

static void suite(const char *self)
{
	api_suite(self);
	if (access(DEV, R_OK | W_OK)) {
		T_OK(0, "kernel proofs need read-write access to %s", DEV);
		return;
	}
	admin_view();
	destroy_returns_pages();
	fixed_limit();
	lazy_large_blocks();
	fork_copies(false);
}

/* Run the suite again as uid/gid 65534; merge its counts. */
static void as_user(const char *self)
{
	struct stat st;
	int pfd[2], status, counts[2] = { 0, 0 };
	pid_t pid;

	if (stat(DEV, &st) || pipe(pfd))
		return;
	chmod(DEV, 0666);
	printf("# again as uid 65534 with %s mode 0666\n", DEV);
	fflush(stdout);
	pid = fork();
	if (!pid) {
		close(pfd[0]);
		if (setgroups(0, NULL) || setgid(65534) || setuid(65534)) {
			T_OK(0, "drop privileges to uid 65534");
		} else {
			T_OK(getuid() == 65534, "running as uid 65534");
			suite(self);
		}
		counts[0] = t_pass;
		counts[1] = t_fail;
		if (write(pfd[1], counts, sizeof(counts)) != sizeof(counts))
			_exit(2);
		_exit(0);
	}
	close(pfd[1]);
	if (read(pfd[0], counts, sizeof(counts)) == sizeof(counts)) {
		t_pass = counts[0];
		t_fail = counts[1];
	} else {
		t_fail++;
		printf("not ok - the unprivileged run died\n");
	}
	waitpid(pid, &status, 0);
	close(pfd[0]);
	chmod(DEV, st.st_mode & 07777);
}

int main(int argc, char **argv)
{
	int ret = api_suite_child(argc, argv);

	if (ret >= 0)
		return ret;
	printf("# heapdev API suite on %s, uid %d\n", DEV, (int)getuid());
	fflush(stdout);
	suite(argv[0]);
	if (!access(DEV, R_OK | W_OK))
		pressure();
	if (geteuid() == 0 && !(argc > 1 && !strcmp(argv[1], "--no-user")))
		as_user(argv[0]);
	return t_done();
}
