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
 *    fixed heap filled through the library never commits more than it.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <heapdev.h>
#include <heapdev/win32.h>

#include "../../uapi/heapdev.h"
#include "api_suite.h"
#include "t.h"

#define DEV	"/dev/heapdev"
#define PROC	"/proc/heapdev"
#define PAGES	"/sys/class/misc/heapdev/pages"

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

static long read_pages(void)
{
	FILE *f = fopen(PAGES, "r");
	long n = -1;

	if (f) {
		if (fscanf(f, "%ld", &n) != 1)
			n = -1;
		fclose(f);
	}
	return n;
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
	T_OK(!proc_find(info.kernel_id, &pl), "destroyed heaps leave %s",
	     PROC);
}

static void destroy_returns_pages(void)
{
	long before = read_pages(), during, after;
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
	after = read_pages();
	T_EQ(after, before, "HeapDestroy returned every page to the kernel");
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
	if (geteuid() == 0 && !(argc > 1 && !strcmp(argv[1], "--no-user")))
		as_user(argv[0]);
	return t_done();
}
