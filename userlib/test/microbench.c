// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * Microbenchmarks of the allocator's fast paths, side by side with glibc
 * malloc, mimalloc heaps (mi_heap_*) and jemalloc arenas (mallocx with
 * MALLOCX_ARENA), all in one run.  mimalloc and jemalloc are loaded with
 * dlopen() so that glibc's malloc stays glibc's.
 *
 *   microbench [TEST [ALLOCATOR [N]]]
 *
 * TEST: pair64 | random | destroy | create | all (default all);
 * ALLOCATOR: heapdev | heapdev-ns | glibc | mimalloc | jemalloc | all.
 * Prints nanoseconds per operation.  Under valgrind --tool=callgrind,
 * run one TEST and ALLOCATOR at a time ("none" measures the harness).
 * jemalloc uses initial-exec TLS and cannot always be dlopen()ed late:
 * LD_PRELOAD=libjemalloc.so.2 makes it available (and replaces malloc in
 * that process, so take glibc's numbers from a run without it).
 */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <heapdev/win32.h>

struct alloc_ops {
	const char *name;
	void *(*create)(void);
	void *(*alloc)(void *heap, size_t n);
	void (*free)(void *heap, void *p);
	void (*destroy)(void *heap);	/* frees everything at once, or NULL */
};

static void *(*mi_heap_new_p)(void);
static void *(*mi_heap_malloc_p)(void *, size_t);
static void (*mi_free_p)(void *);
static void (*mi_heap_destroy_p)(void *);
static void *(*je_mallocx_p)(size_t, int);
static void (*je_dallocx_p)(void *, int);
static int (*je_mallctl_p)(const char *, void *, size_t *, void *, size_t);
static int je_flags;

static void *hd_new(void) { return HeapCreate(0, 0, 0); }
static void *hd_new_ns(void) { return HeapCreate(HEAP_NO_SERIALIZE, 0, 0); }
static void *hd_alloc(void *h, size_t n) { return HeapAlloc(h, 0, n); }
static void hd_free(void *h, void *p) { HeapFree(h, 0, p); }
static void hd_destroy(void *h) { HeapDestroy(h); }

static void *gl_new(void) { return NULL; }
static void *gl_alloc(void *h, size_t n) { (void)h; return malloc(n); }
static void gl_free(void *h, void *p) { (void)h; free(p); }

static void *mi_new(void) { return mi_heap_new_p(); }
static void *mi_alloc(void *h, size_t n) { return mi_heap_malloc_p(h, n); }
static void mi_free(void *h, void *p) { (void)h; mi_free_p(p); }
static void mi_destroy(void *h) { mi_heap_destroy_p(h); }

static void *je_new(void)
{
	unsigned int arena;
	size_t sz = sizeof(arena);

	je_mallctl_p("arenas.create", &arena, &sz, NULL, 0);
	je_flags = (int)((arena + 1) << 20);	/* MALLOCX_ARENA(arena) */
	return NULL;
}
static void *je_alloc(void *h, size_t n) { (void)h; return je_mallocx_p(n, je_flags); }
static void je_free(void *h, void *p) { (void)h; je_dallocx_p(p, je_flags); }

static const struct alloc_ops allocators[] = {
	{ "heapdev", hd_new, hd_alloc, hd_free, hd_destroy },
	{ "heapdev-ns", hd_new_ns, hd_alloc, hd_free, hd_destroy },
	{ "glibc", gl_new, gl_alloc, gl_free, NULL },
	{ "mimalloc", mi_new, mi_alloc, mi_free, mi_destroy },
	{ "jemalloc", je_new, je_alloc, je_free, NULL },
};

static void load_others(void)
{
	void *mi = dlopen("libmimalloc.so.2", RTLD_NOW | RTLD_LOCAL);
	void *je = dlopen("libjemalloc.so.2", RTLD_NOW | RTLD_LOCAL);

	if (mi) {
		mi_heap_new_p = (void *(*)(void))dlsym(mi, "mi_heap_new");
		mi_heap_malloc_p = (void *(*)(void *, size_t))
			dlsym(mi, "mi_heap_malloc");
		mi_free_p = (void (*)(void *))dlsym(mi, "mi_free");
		mi_heap_destroy_p = (void (*)(void *))dlsym(mi,
							    "mi_heap_destroy");
	}
	if (!je)
		fprintf(stderr, "# jemalloc not loaded (%s); run with "
			"LD_PRELOAD=libjemalloc.so.2 for its numbers\n",
			dlerror());
	if (je) {
		je_mallocx_p = (void *(*)(size_t, int))dlsym(je, "mallocx");
		je_dallocx_p = (void (*)(void *, int))dlsym(je, "dallocx");
		je_mallctl_p = (int (*)(const char *, void *, size_t *, void *,
					size_t))dlsym(je, "mallctl");
	}
}

static bool available(const struct alloc_ops *a)
{
	if (!strcmp(a->name, "mimalloc"))
		return mi_heap_new_p && mi_heap_malloc_p && mi_free_p;
	if (!strcmp(a->name, "jemalloc"))
		return je_mallocx_p && je_dallocx_p && je_mallctl_p;
	return true;
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void *volatile sink;

/* Allocate and free one 64-byte block, N times. */
static double t_pair64(const struct alloc_ops *a, long n)
{
	void *h = a->create();
	double t;
	long i;

	for (i = 0; i < 100; i++)
		a->free(h, a->alloc(h, 64));
	t = now_ns();
	for (i = 0; i < n; i++) {
		void *p = a->alloc(h, 64);

		sink = p;
		a->free(h, p);
	}
	t = (now_ns() - t) / n;
	if (a->destroy)
		a->destroy(h);
	return t;
}

/* 1024 live blocks; each step frees a random one, allocates 16..4096 B. */
static double t_random(const struct alloc_ops *a, long n)
{
	void *h = a->create(), *slot[1024] = { 0 };
	uint64_t x = 88172645463325252ULL;
	double t;
	long i;

	for (i = 0; i < 1024; i++)
		slot[i] = a->alloc(h, 16 + i % 4081);
	t = now_ns();
	for (i = 0; i < n; i++) {
		unsigned int k;
		size_t sz;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		k = x & 1023;
		sz = 16 + (x >> 20) % 4081;
		a->free(h, slot[k]);
		slot[k] = a->alloc(h, sz);
		*(char *)slot[k] = 1;
	}
	t = (now_ns() - t) / n;
	for (i = 0; i < 1024; i++)
		a->free(h, slot[i]);
	if (a->destroy)
		a->destroy(h);
	return t;
}

/* N live 64-byte blocks released: by destroy when possible, else by free. */
static double t_destroy(const struct alloc_ops *a, long n, bool by_free)
{
	void **ps = malloc(n * sizeof(*ps));
	void *h = a->create();
	double t;
	long i;

	for (i = 0; i < n; i++)
		ps[i] = a->alloc(h, 64);
	t = now_ns();
	if (a->destroy && !by_free) {
		a->destroy(h);
	} else {
		for (i = 0; i < n; i++)
			a->free(h, ps[i]);
		if (a->destroy)
			a->destroy(h);
	}
	t = now_ns() - t;
	free(ps);
	return t / 1e6;	/* milliseconds */
}

/* A heap per request: create, 100 small blocks, destroy. */
static double t_create(const struct alloc_ops *a, long n)
{
	double t = now_ns();
	long i;
	int j;

	for (i = 0; i < n; i++) {
		void *h = a->create();

		for (j = 0; j < 100; j++)
			sink = a->alloc(h, 32 + j * 8);
		a->destroy(h);
	}
	return (now_ns() - t) / n / 1000;	/* microseconds */
}

int main(int argc, char **argv)
{
	const char *test = argc > 1 ? argv[1] : "all";
	const char *which = argc > 2 ? argv[2] : "all";
	long n = argc > 3 ? atol(argv[3]) : 0;
	double base = 0, v;
	unsigned int i;

	load_others();
	for (i = 0; i < sizeof(allocators) / sizeof(allocators[0]); i++) {
		const struct alloc_ops *a = &allocators[i];

		if ((strcmp(which, "all") && strcmp(which, a->name)) ||
		    !available(a))
			continue;
		if (!strcmp(test, "all") || !strcmp(test, "pair64")) {
			v = t_pair64(a, n ? n : 20000000);
			if (!strcmp(a->name, "glibc"))
				base = v;
			printf("pair64   %-11s %7.2f ns/pair\n", a->name, v);
		}
		if (!strcmp(test, "all") || !strcmp(test, "random")) {
			v = t_random(a, n ? n : 20000000);
			printf("random   %-11s %7.2f ns/op\n", a->name, v);
		}
		if (!strcmp(test, "all") || !strcmp(test, "destroy")) {
			v = t_destroy(a, n ? n : 1000000, true);
			printf("free-all %-11s %7.2f ms for 10^6 blocks\n",
			       a->name, v);
			if (a->destroy) {
				v = t_destroy(a, n ? n : 1000000, false);
				printf("destroy  %-11s %7.2f ms for 10^6 "
				       "blocks\n", a->name, v);
			}
		}
		if ((!strcmp(test, "all") || !strcmp(test, "create")) &&
		    a->destroy) {
			v = t_create(a, n ? n : 20000);
			printf("create   %-11s %7.2f us per heap\n", a->name, v);
		}
	}
	(void)base;
	return 0;
}
