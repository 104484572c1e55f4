// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * Destroyed memfd heaps released in the background (src/punch.c): a big
 * heap's HeapDestroy queues the hole punch of its window and returns;
 * heapdev_trim(NULL) waits until the pages are gone; a window is reused
 * only once its punch is done, so heaps created meanwhile keep their
 * contents; the bytes in flight stay bounded; a fork() child neither
 * waits for nor reuses its parent's punches; threads destroy and create
 * heaps side by side.  Small heaps are punched at once.  Without io_uring
 * every destroy is synchronous and the same checks hold.
 * Linked with the library's objects (it looks at hd_punch_pending()).
 */
#include <linux/io_uring.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../include/heapdev/win32.h"
#include "../src/backend_int.h"
#include "t.h"

#define MIB		(1LL << 20)
#define BLOCK		(64 << 10)	/* medium blocks: in the heap's segments */

static bool have_uring;

/* A growable heap of @bytes in 64 KiB blocks, each filled with @fill. */
static HANDLE filled_heap(size_t bytes, unsigned char fill)
{
	HANDLE h = HeapCreate(0, 0, 0);
	size_t i;

	for (i = 0; h && i < bytes / BLOCK; i++) {
		void *p = HeapAlloc(h, 0, BLOCK);

		if (!p) {
			HeapDestroy(h);
			return NULL;
		}
		memset(p, fill, BLOCK);
	}
	return h;
}

/* Every block of @h still holds @fill, on every page. */
static bool heap_holds(HANDLE h, unsigned char fill)
{
	PROCESS_HEAP_ENTRY e = { 0 };
	bool ok = true;
	size_t i;
	int n = 0;

	if (!HeapLock(h))
		return false;
	while (HeapWalk(h, &e)) {
		const unsigned char *p = e.lpData;

		if (!(e.wFlags & PROCESS_HEAP_ENTRY_BUSY))
			continue;
		for (i = 0; i < e.cbData; i += 4096)
			ok &= p[i] == fill;
		ok &= p[e.cbData - 1] == fill;
		n++;
	}
	HeapUnlock(h);
	return ok && n > 0;
}

static long long over(long long base)
{
	return t_memfd_bytes() - base;
}

/* The destroy returns before the pages are gone; trim(NULL) waits. */
static void background(void)
{
	long long base, gone;
	HANDLE h;

	heapdev_trim(NULL);
	base = t_memfd_bytes();
	h = filled_heap(64 * MIB, 0x11);
	T_OK(h && over(base) >= 64 * MIB, "a 64 MiB heap is committed "
	     "(%lld MiB)", over(base) / MIB);
	T_OK(HeapDestroy(h), "HeapDestroy of the 64 MiB heap");
	if (have_uring)
		T_OK(hd_punch_pending(), "its pages are released in the "
		     "background");
	else
		T_OK(!hd_punch_pending() && over(base) <= 0, "no io_uring: "
		     "its pages are released at once");
	T_EQ(heapdev_trim(NULL), 0, "heapdev_trim(NULL)");
	gone = over(base);
	T_OK(!hd_punch_pending() && gone <= 0, "after heapdev_trim(NULL) "
	     "every page is gone (%lld bytes over the start)", gone);

	h = HeapCreate(0, 64 << 10, 512 << 10);
	T_OK(h && HeapAlloc(h, 0, 300 << 10), "a fixed heap of 512 KiB");
	HeapDestroy(h);
	T_OK(!hd_punch_pending() && over(base) <= 0, "a heap under 1 MiB "
	     "is released at once (%lld bytes over the start)", over(base));
}

/*
 * Heaps created while destroyed ones are being punched are never given
 * a window that is still being punched: destroy a 32 MiB heap and at
 * once create and fill a 2 MiB one, ten times, keeping the small ones;
 * then check each small heap, before and after every punch finished.
 */
#define NREUSE	10
static void reuse(void)
{
	HANDLE small[NREUSE] = { 0 }, big;
	bool kept = true, made = true;
	int i;

	for (i = 0; i < NREUSE; i++) {
		big = filled_heap(32 * MIB, 0x20);
		made &= big && HeapDestroy(big);
		small[i] = filled_heap(2 * MIB, (unsigned char)(0x30 + i));
		made &= !!small[i];
		kept &= small[i] && heap_holds(small[i],
					       (unsigned char)(0x30 + i));
	}
	T_OK(made, "%d heaps of 32 MiB destroyed, each followed by a new "
	     "2 MiB heap", NREUSE);
	heapdev_trim(NULL);
	for (i = 0; i < NREUSE; i++) {
		kept &= small[i] && heap_holds(small[i],
					       (unsigned char)(0x30 + i)) &&
			HeapValidate(small[i], 0, NULL);
		HeapDestroy(small[i]);
	}
	T_OK(kept, "the new heaps' pages stay intact while and after the "
	     "old heaps' windows are punched");
}

/* Destroys in a row cannot run ahead of the kernel. */
#define NBIG	10
static void bounded(void)
{
	long long base, each, worst = 0, now;
	HANDLE h[NBIG];
	bool ok = true;
	int i;

	heapdev_trim(NULL);
	base = t_memfd_bytes();
	for (i = 0; i < NBIG; i++)
		ok &= !!(h[i] = filled_heap(64 * MIB, (unsigned char)i));
	each = over(base) / NBIG;
	T_OK(ok, "%d heaps of 64 MiB (%lld MiB each)", NBIG, each / MIB);
	for (i = 0; i < NBIG; i++) {
		HeapDestroy(h[i]);
		now = over(base) - (NBIG - 1 - i) * each;
		if (now > worst)
			worst = now;
	}
	T_OK(worst <= 256 * MIB + 8 * MIB, "destroyed one after the other, "
	     "at most 256 MiB of them are in flight (worst %lld MiB)",
	     worst / MIB);
	heapdev_trim(NULL);
	T_OK(over(base) <= 0, "and all of it is gone after heapdev_trim(NULL)");
}

/* A child forked with punches in flight has none of its own. */
static void forked(void)
{
	HANDLE h = filled_heap(32 * MIB, 0x33), k;
	int status = -1;
	pid_t pid;

	HeapDestroy(h);
	pid = fork();
	if (!pid) {
		bool ok = !hd_punch_pending();

		k = filled_heap(32 * MIB, 0x44);
		ok &= k && heap_holds(k, 0x44);
		HeapDestroy(k);
		heapdev_trim(NULL);
		ok &= !hd_punch_pending();
		k = filled_heap(4 * MIB, 0x55);
		ok &= k && heap_holds(k, 0x55) && HeapDestroy(k);
		_exit(ok ? 0 : 1);
	}
	if (pid > 0 && waitpid(pid, &status, 0) != pid)
		status = -1;
	T_OK(pid > 0 && WIFEXITED(status) && !WEXITSTATUS(status),
	     "a fork() child "
	     "with its parent's punches in flight creates, destroys and trims "
	     "heaps of its own (status %#x)", status);
	heapdev_trim(NULL);
	T_OK(!hd_punch_pending(), "the parent's punches finish");
}

/* Two threads create, check and destroy heaps side by side. */
static void *churn(void *arg)
{
	unsigned char base = (unsigned char)(uintptr_t)arg;
	HANDLE a = NULL, b;
	bool ok = true;
	int i;

	for (i = 0; i < 20; i++) {
		b = filled_heap(4 * MIB, (unsigned char)(base + i));
		ok &= b && heap_holds(b, (unsigned char)(base + i));
		if (a) {
			ok &= heap_holds(a, (unsigned char)(base + i - 1));
			HeapDestroy(a);
		}
		a = b;
		if (i == 10)
			heapdev_trim(NULL);
	}
	HeapDestroy(a);
	return (void *)(uintptr_t)ok;
}

static void threads(void)
{
	pthread_t t[2];
	void *r0 = NULL, *r1 = NULL;

	pthread_create(&t[0], NULL, churn, (void *)(uintptr_t)0x60);
	pthread_create(&t[1], NULL, churn, (void *)(uintptr_t)0xA0);
	pthread_join(t[0], &r0);
	pthread_join(t[1], &r1);
	T_OK(r0 && r1, "two threads creating and destroying 4 MiB heaps "
	     "keep every live heap's contents");
	heapdev_trim(NULL);
	T_OK(!hd_punch_pending(), "no punch is left after heapdev_trim(NULL)");
}

int main(void)
{
	struct io_uring_params p = { 0 };
	long fd;

	printf("# heapdev background release of destroyed memfd heaps\n");
	if (!HeapAlloc(GetProcessHeap(), 0, 1) || t_memfd_bytes() < 0) {
		T_OK(0, "the process heap is on the memfd backend "
		     "(HEAPDEV_BACKEND=memfd)");
		return t_done();
	}
	fd = syscall(__NR_io_uring_setup, 4, &p);
	have_uring = fd >= 0;
	if (have_uring)
		close((int)fd);
	else
		t_diag("io_uring_setup: unavailable: destroys are synchronous");
	background();
	reuse();
	bounded();
	forked();
	threads();
	return t_done();
}
