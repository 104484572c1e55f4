// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * Every entry point of libheapdev-malloc, linked first (-lheapdev-malloc)
 * or statically (malloc_static_test).  Bad pointers are tried in fork()
 * children, which must end with SIGABRT and the drop-in's message.
 */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <heapdev.h>
#include <heapdev/win32.h>

#include "t.h"
#include "hdm_test.h"

void cfree(void *);

static void *volatile sink;
static void *early;		/* allocated before main() */
static int early_ok;

static __attribute__((constructor(101))) void before_main(void)
{
	early = malloc(100);
	if (early) {
		memset(early, 0x5a, 100);
		early_ok = heapdev_heap_of(early) != NULL;
	}
}

static int aligned_to(const void *p, size_t a)
{
	return ((uintptr_t)p & (a - 1)) == 0;
}

static int all_bytes(const void *p, int c, size_t n)
{
	const unsigned char *s = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] != c)
			return 0;
	return 1;
}

static void test_malloc(void)
{
	struct heapdev_heap *ph = heapdev_process_heap();
	void *a, *b;
	size_t sizes[] = { 1, 15, 16, 17, 100, 1000, 4096, 16376, 16384,
			   100000, 1 << 20, 3 << 20, 20 << 20 };
	unsigned int i;

	T_OK(early && early_ok, "malloc() before main() (a constructor) is a heapdev block");
	T_OK(early && all_bytes(early, 0x5a, 100), "... and keeps its contents");
	free(early);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char *p = malloc(sizes[i]);

		T_OK(p && aligned_to(p, 16) && heapdev_heap_of(p) == ph,
		     "malloc(%zu): 16-byte aligned block of the process heap",
		     sizes[i]);
		if (!p)
			continue;
		memset(p, 0xa5, sizes[i]);
		T_EQ(malloc_usable_size(p), sizes[i],
		     "malloc_usable_size() is the size asked for (%zu)", sizes[i]);
		free(p);
	}
	a = malloc(0);
	b = malloc(0);
	T_OK(a && b && a != b, "malloc(0): two distinct non-NULL blocks");
	T_EQ(malloc_usable_size(a), 0, "malloc_usable_size(malloc(0)) = 0");
	free(a);
	free(b);
	errno = 0;
	sink = malloc(SIZE_MAX / 2);
	T_OK(!sink && errno == ENOMEM, "malloc(SIZE_MAX / 2): NULL, ENOMEM");
	sink = malloc(SIZE_MAX);
	T_OK(!sink && errno == ENOMEM, "malloc(SIZE_MAX): NULL, ENOMEM");
	T_EQ(malloc_usable_size(NULL), 0, "malloc_usable_size(NULL) = 0");
	errno = 1234;
	free(NULL);
	a = malloc(10);
	free(a);
	T_EQ(errno, 1234, "free() preserves errno");
	a = malloc(24);
	cfree(a);
	T_OK(1, "cfree() frees");
}

static void test_calloc(void)
{
	unsigned char *p;
	unsigned int i;
	int zero = 1;

	/* Reuse memory first, so that calloc must really clear it. */
	for (i = 0; i < 100; i++) {
		p = malloc(256);
		memset(p, 0xff, 256);
		free(p);
	}
	p = calloc(16, 16);
	T_OK(p && all_bytes(p, 0, 256), "calloc(16, 16) is zeroed");
	free(p);
	p = calloc(1000, 1000);
	for (i = 0; p && i < 1000000; i += 4096)
		zero &= !p[i];
	T_OK(p && zero, "calloc(1000, 1000) is zeroed");
	free(p);
	p = calloc(0, 10);
	T_OK(p != NULL, "calloc(0, 10): a unique block");
	free(p);
	errno = 0;
	sink = calloc(SIZE_MAX / 8, 16);
	T_OK(!sink && errno == ENOMEM, "calloc(SIZE_MAX / 8, 16) overflows: NULL, ENOMEM");
	sink = calloc((size_t)1 << 32, (size_t)1 << 32);
	T_OK(!sink && errno == ENOMEM, "calloc(2^32, 2^32) overflows: NULL, ENOMEM");
}

static void test_realloc(void)
{
	char *p, *q;
	size_t n, sz;
	int ok = 1;

	p = realloc(NULL, 50);
	T_OK(p && malloc_usable_size(p) == 50, "realloc(NULL, 50) = malloc(50)");
	memset(p, 'x', 50);
	for (n = 51; n < (8 << 20); n = n * 3 / 2) {
		q = realloc(p, n);
		if (!q) {
			ok = 0;
			break;
		}
		ok &= all_bytes(q, 'x', 50) && malloc_usable_size(q) == n;
		p = q;
	}
	T_OK(ok, "realloc() grows to 8 MiB and keeps the contents");
	q = realloc(p, 10);
	T_OK(q && all_bytes(q, 'x', 10) && malloc_usable_size(q) == 10,
	     "realloc() shrinks to 10 bytes");
	p = q;
	errno = 0;
	q = realloc(p, 0);
	T_OK(!q, "realloc(p, 0) returns NULL (glibc: the block is freed)");
	T_EQ(heapdev_size(heapdev_process_heap(), p, 0, &sz), -EINVAL,
	     "... and the block is no longer live");
	p = malloc(100);
	memset(p, 'y', 100);
	errno = 0;
	q = realloc(p, SIZE_MAX / 2);
	T_OK(!q && errno == ENOMEM && all_bytes(p, 'y', 100),
	     "realloc() too big: NULL, ENOMEM, the block intact");
	q = reallocarray(p, 20, 10);
	T_OK(q && malloc_usable_size(q) == 200 && all_bytes(q, 'y', 100),
	     "reallocarray(p, 20, 10): 200 bytes, contents kept");
	p = q;
	errno = 0;
	q = reallocarray(p, SIZE_MAX / 4, 8);
	T_OK(!q && errno == ENOMEM && malloc_usable_size(p) == 200,
	     "reallocarray() overflow: NULL, ENOMEM, the block intact");
	free(p);
	p = reallocarray(NULL, 3, 7);
	T_OK(p && malloc_usable_size(p) == 21, "reallocarray(NULL, 3, 7) allocates 21 bytes");
	free(p);
}

static void test_aligned(void)
{
	size_t a;
	void *p;
	int ok = 1, r;

	for (a = sizeof(void *); a <= ((size_t)64 << 20); a <<= 1) {
		p = (void *)1;
		r = posix_memalign(&p, a, 100);
		if (r || !aligned_to(p, a) || malloc_usable_size(p) != 100) {
			t_diag("posix_memalign(%zu): %d %p", a, r, p);
			ok = 0;
		} else {
			memset(p, 1, 100);
		}
		if (!r)
			free(p);
	}
	T_OK(ok, "posix_memalign(): every power of two from 8 to 64 MiB");
	p = (void *)1;
	errno = 77;
	r = posix_memalign(&p, 24, 10);
	T_OK(r == EINVAL && p == (void *)1 && errno == 77,
	     "posix_memalign(24): EINVAL, *memptr and errno untouched");
	T_EQ(posix_memalign(&p, 4, 10), EINVAL, "posix_memalign(4): EINVAL (not a multiple of sizeof(void *))");
	T_EQ(posix_memalign(&p, 0, 10), EINVAL, "posix_memalign(0): EINVAL");
	r = posix_memalign(&p, 4096, SIZE_MAX / 2);
	T_OK(r == ENOMEM && p == (void *)1 && errno == 77,
	     "posix_memalign() too big: ENOMEM, errno untouched");
	p = NULL;
	T_EQ(posix_memalign(&p, 64, 0), 0, "posix_memalign(64, 0) succeeds");
	free(p);

	ok = 1;
	for (a = 1; a <= ((size_t)64 << 20); a <<= 1) {
		p = aligned_alloc(a, 3 * a);
		ok &= p && aligned_to(p, a) && malloc_usable_size(p) == 3 * a;
		free(p);
	}
	T_OK(ok, "aligned_alloc(): every power of two from 1 to 64 MiB");
	errno = 0;
	T_OK(!aligned_alloc(48, 96) && errno == EINVAL, "aligned_alloc(48): NULL, EINVAL");
	errno = 0;
	T_OK(!aligned_alloc(0, 16) && errno == EINVAL, "aligned_alloc(0): NULL, EINVAL");

	p = memalign(4096, 10);
	T_OK(p && aligned_to(p, 4096), "memalign(4096, 10)");
	free(p);
	p = memalign(48, 10);
	T_OK(p && aligned_to(p, 64), "memalign(48): rounded up to 64, as glibc does");
	free(p);
	p = memalign(1 << 20, 1 << 20);
	T_OK(p && aligned_to(p, 1 << 20), "memalign(1 MiB, 1 MiB)");
	free(p);
	errno = 0;
	T_OK(!memalign(SIZE_MAX / 2 + 2, 10) && errno == EINVAL,
	     "memalign() beyond the largest power of two: NULL, EINVAL");
	p = valloc(100);
	T_OK(p && aligned_to(p, 4096) && malloc_usable_size(p) == 100,
	     "valloc(100): page aligned, 100 bytes");
	free(p);
	p = pvalloc(100);
	T_OK(p && aligned_to(p, 4096) && malloc_usable_size(p) == 4096,
	     "pvalloc(100): page aligned, a whole page");
	free(p);
	p = pvalloc(8193);
	T_OK(p && aligned_to(p, 4096) && malloc_usable_size(p) == 12288,
	     "pvalloc(8193): three pages");
	free(p);
	errno = 0;
	T_OK(!pvalloc(SIZE_MAX - 100) && errno == ENOMEM, "pvalloc() overflow: NULL, ENOMEM");
	p = realloc(aligned_alloc(4096, 4096), 100000);
	T_OK(p && malloc_usable_size(p) == 100000, "realloc() of an aligned block");
	free(p);
}

#ifndef HDM_STATIC
static void test_dlopen(void)
{
	void *h = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL);
	const char *(*ver)(void) = h ? (const char *(*)(void))dlsym(h, "zlibVersion") : NULL;

	T_OK(h && ver && ver()[0], "dlopen(libz.so.1), dlsym, call");
	T_OK(h && !dlclose(h), "dlclose()");
	T_OK(!dlopen("libnonexistent-heapdev.so", RTLD_NOW) && dlerror(),
	     "a failing dlopen() and its dlerror() message");
}
#else
static void test_dlopen(void)
{
}
#endif

static void test_trim(void)
{
	void *p[64];
	int i, r;

	for (i = 0; i < 64; i++)
		p[i] = malloc(256 << 10);
	for (i = 0; i < 64; i++)
		free(p[i]);
	r = malloc_trim(0);
	T_OK(r == 0 || r == 1, "malloc_trim(0) = %d", r);
}

/*
 * This process's resident bytes of shared mappings, or -1: heap pages are
 * RssShmem (memfd) or RssFile (device), and anonymous memory (valgrind's
 * shadow of the heaps, for one) is left out.
 */
static long long rss_bytes(void)
{
	char line[128];
	long long kb = 0;
	int found = 0;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "RssShmem:", 9)) {
			kb += atoll(line + 9);
			found++;
		} else if (!strncmp(line, "RssFile:", 8)) {
			kb += atoll(line + 8);
			found++;
		}
	}
	fclose(f);
	return found == 2 ? kb * 1024 : -1;
}

/*
 * Large blocks are committed lazily (HEAPDEV_MALLOC_COMMIT=touch, the
 * default): only what is touched becomes resident, as with glibc's
 * mmap'ed chunks, for malloc and for calloc of a fresh or a reused span.
 */
static void test_lazy(void)
{
	const size_t big = 64 << 20;
	long long base = rss_bytes(), now;
	const char *mode = getenv("HEAPDEV_MALLOC_COMMIT");
	unsigned char *p;

	if (mode && !strcmp(mode, "now")) {
		p = malloc(big);
		now = rss_bytes();
		T_OK(p && now - base >= (long long)big, "HEAPDEV_MALLOC_COMMIT="
		     "now: malloc(64 MiB) is resident at once (%lld KiB)",
		     (now - base) >> 10);
		free(p);
		return;
	}
	p = malloc(big);
	now = rss_bytes();
	T_OK(p && base > 0 && now - base < (4 << 20), "malloc(64 MiB) makes "
	     "almost nothing resident (%lld KiB)", (now - base) >> 10);
	memset(p, 7, 1 << 20);
	now = rss_bytes();
	/* Up to 5.x, each thread reports its RSS in steps of 64 faults. */
	T_OK(now - base >= (1 << 19) && now - base < (5 << 20), "touching "
	     "1 MiB of it makes 1 MiB resident (%lld KiB)", (now - base) >> 10);
	free(p);
	base = rss_bytes();
	p = calloc(1, big);
	now = rss_bytes();
	T_OK(p && now - base < (4 << 20), "calloc(64 MiB) over a reused span "
	     "makes almost nothing resident (%lld KiB)", (now - base) >> 10);
	T_OK(p && all_bytes(p, 0, 1 << 20) && all_bytes(p + big - 4096, 0, 4096),
	     "... and reads as zero where the last block had 7s");
	free(p);
}

/* ---- bad pointers: each in a child, which must abort ---- */

static int bad_double_free(void *arg)
{
	void *p = malloc(64);

	free(p);
	free(p);
	return 0;
}

static int bad_double_free_medium(void *arg)
{
	void *p = malloc(100000);

	free(p);
	free(p);
	return 0;
}

static int bad_interior(void *arg)
{
	char *p = malloc(64);

	free(p + 16);
	return 0;
}

static int bad_stack(void *arg)
{
	char buf[64];

	sink = buf;
	free(sink);
	return 0;
}

static int bad_wild(void *arg)
{
	free((void *)0x1230);
	return 0;
}

static int bad_realloc(void *arg)
{
	void *p = malloc(64);

	free(p);
	sink = realloc(p, 128);
	return 0;
}

static int bad_usable(void *arg)
{
	void *p = malloc(64);

	free(p);
	return (int)malloc_usable_size(p);
}

static int bad_header(void *arg)
{
	unsigned char *p = malloc(64);

	memset(p - 8, 0x41, 8);		/* an underflow over the header */
	free(p);
	return 0;
}

static int bad_other_heap(void *arg)
{
	HANDLE h = HeapCreate(0, 0, 0);
	void *p = h ? HeapAlloc(h, 0, 64) : NULL;

	free(p);
	return 0;
}

/* The Win32 path keeps HeapFree's FALSE: nothing ends. */
static int win32_keeps_false(void *arg)
{
	void *p = malloc(64);

	free(p);
	if (HeapFree(GetProcessHeap(), 0, p))
		return 2;
	if (GetLastError() != ERROR_INVALID_PARAMETER)
		return 3;
	p = malloc(64);		/* and malloc() still works */
	free(p);
	return 0;
}

/* What exit() runs: atexit handlers may still allocate and free. */
static int after_exit_fd = -1;

static void at_exit_alloc(void)
{
	char *p = malloc(1000), *q = calloc(10, 10);

	p = realloc(p, 100000);
	if (p && q && write(after_exit_fd, "ok", 2) != 2)
		_exit(9);
	free(p);
	free(q);
}

static int exit_allocates(void *arg)
{
	after_exit_fd = STDERR_FILENO;
	atexit(at_exit_alloc);
	exit(0);
}

static const struct {
	const char *name;
	int (*fn)(void *);
	const char *msg;
} bad[] = {
	{ "double free (small block)", bad_double_free, "free(): double free or corruption" },
	{ "double free (medium block)", bad_double_free_medium, "free(): double free or corruption" },
	{ "interior pointer", bad_interior, "free(): double free or corruption" },
	{ "stack pointer", bad_stack, "free(): invalid pointer" },
	{ "wild pointer", bad_wild, "free(): invalid pointer" },
	{ "realloc() of a freed block", bad_realloc, "realloc(): double free or corruption" },
	{ "malloc_usable_size() of a freed block", bad_usable, "malloc_usable_size(): double free or corruption" },
	{ "damaged header", bad_header, "free(): double free or corruption" },
	{ "a block of another heap", bad_other_heap, "which malloc() does not use" },
};

static void test_bad(void)
{
	struct hdm_child c;
	unsigned int i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		hdm_in_child(bad[i].fn, NULL, &c);
		T_OK(hdm_aborted(&c) && strstr(c.err, bad[i].msg) &&
		     strstr(c.err, "heapdev-malloc: "),
		     "%s: SIGABRT and \"%s\" on stderr", bad[i].name, bad[i].msg);
		if (!hdm_aborted(&c) || !strstr(c.err, bad[i].msg))
			t_diag("status %#x, stderr: %s", c.status, c.err);
	}
	hdm_in_child(win32_keeps_false, NULL, &c);
	T_OK(hdm_exited(&c, 0) && !c.err[0],
	     "HeapFree() of the same bad pointer returns FALSE, ERROR_INVALID_PARAMETER, no abort");
	if (!hdm_exited(&c, 0) || c.err[0])
		t_diag("status %#x, stderr: %s", c.status, c.err);
	hdm_in_child(exit_allocates, NULL, &c);
	T_OK(hdm_exited(&c, 0) && !strcmp(c.err, "ok"),
	     "malloc/realloc/free in an atexit handler, after exit() started");
	if (!hdm_exited(&c, 0) || strcmp(c.err, "ok"))
		t_diag("status %#x, stderr: %s", c.status, c.err);
}

int main(void)
{
	test_malloc();
	test_calloc();
	test_realloc();
	test_aligned();
	test_dlopen();
	test_trim();
	test_lazy();
	test_bad();
	return t_done();
}
