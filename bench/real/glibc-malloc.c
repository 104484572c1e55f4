// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench/real: glibc's own malloc for programs that are linked to another
 * (Debian's redis-server depends on libjemalloc.so.2, whose malloc comes
 * before libc's): preloaded, it forwards the malloc family to glibc's
 * __libc_* entry points, so that the "glibc" column of the real programs
 * is glibc's allocator for every program.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);
extern void __libc_free(void *);

#define EXPORT __attribute__((visibility("default")))

EXPORT void *malloc(size_t n) { return __libc_malloc(n); }
EXPORT void *calloc(size_t a, size_t b) { return __libc_calloc(a, b); }
EXPORT void *realloc(void *p, size_t n) { return __libc_realloc(p, n); }
EXPORT void free(void *p) { __libc_free(p); }
EXPORT void *memalign(size_t a, size_t n) { return __libc_memalign(a, n); }
EXPORT void *valloc(size_t n) { return __libc_valloc(n); }
EXPORT void *pvalloc(size_t n) { return __libc_pvalloc(n); }

EXPORT void *aligned_alloc(size_t a, size_t n)
{
	return __libc_memalign(a, n);
}

EXPORT int posix_memalign(void **pp, size_t a, size_t n)
{
	void *p;

	if (!a || (a & (a - 1)) || a % sizeof(void *))
		return EINVAL;
	p = __libc_memalign(a, n);
	if (!p)
		return ENOMEM;
	*pp = p;
	return 0;
}

EXPORT size_t malloc_usable_size(void *p)
{
	static size_t (*fn)(void *);

	if (!fn) {
		void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);

		fn = libc ? (size_t (*)(void *))dlsym(libc, "malloc_usable_size")
			  : NULL;
	}
	return fn ? fn(p) : 0;
}
