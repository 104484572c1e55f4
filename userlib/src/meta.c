// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * heapdev: memory for the library's own metadata (heap and span structs,
 * run descriptors, granule tables, gap arrays, thread records).
 *
 * The library never calls malloc() and friends: a program may replace
 * them with heapdev itself (libheapdev-malloc), and a malloc that calls
 * into an allocator that calls malloc recurses.  Metadata comes from
 * anonymous private mappings instead, in power-of-two size classes from
 * 16 bytes to 64 KiB, each class carved from chunks of its own
 * (so a block of 2^k bytes is aligned to min(2^k, 4 KiB)); larger
 * requests are mappings of their own.  Chunks are 256 KiB of address
 * space each, handed out in order: only the pages of blocks handed out
 * are ever touched.  Callers give the size back on free.  Blocks are
 * zeroed when handed out.  Metadata is inherited by a fork child (private
 * mappings), like any process memory.
 */
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "base.h"

#define HD_META_MIN_SHIFT	4
#define HD_META_MAX_SHIFT	16
#define HD_META_MAX		(1UL << HD_META_MAX_SHIFT)
#define HD_META_CHUNK		(256UL << 10)

void *hd_os_alloc(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* Zeroed address space whose pages are backed only once written. */
void *hd_os_reserve(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void hd_os_free(void *p, size_t len)
{
	if (p)
		munmap(p, len);
}

struct hd_meta_free {
	struct hd_meta_free *next;
};

static pthread_mutex_t hd_meta_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct hd_meta_free *hd_meta_lists[HD_META_MAX_SHIFT + 1];

static unsigned int hd_meta_shift(size_t n)
{
	unsigned int k = HD_META_MIN_SHIFT;

	while ((1UL << k) < n)
		k++;
	return k;
}

static size_t hd_meta_big(size_t n)
{
	return (n + HD_PAGE - 1) & ~(HD_PAGE - 1);
}

/*
 * Blocks of class @k never handed out yet: [hd_meta_next[k],
 * hd_meta_end[k]) of the class's newest chunk.  Handing them out in
 * order, rather than threading the whole chunk onto the free list, keeps
 * the chunk's other pages untouched (not resident).
 */
static uintptr_t hd_meta_next[HD_META_MAX_SHIFT + 1];
static uintptr_t hd_meta_end[HD_META_MAX_SHIFT + 1];

/* A block of class @k from the free list or a chunk (mutex held). */
static void *hd_meta_take(unsigned int k)
{
	struct hd_meta_free *f = hd_meta_lists[k];
	uintptr_t c;

	if (f) {
		hd_meta_lists[k] = f->next;
		return f;
	}
	if (hd_meta_end[k] - hd_meta_next[k] < (1UL << k)) {
		c = (uintptr_t)hd_os_alloc(HD_META_CHUNK);
		if (!c)
			return NULL;
		hd_meta_next[k] = c;
		hd_meta_end[k] = c + HD_META_CHUNK;
	}
	c = hd_meta_next[k];
	hd_meta_next[k] += 1UL << k;
	return (void *)c;
}

/**
 * hd_meta_alloc() - zeroed metadata memory
 * @n: bytes (not 0)
 *
 * Return: a block aligned to min(the next power of two >= @n, 4 KiB), or
 * NULL.  Release it with hd_meta_free() and the same @n.
 */
void *hd_meta_alloc(size_t n)
{
	struct hd_meta_free *f;
	unsigned int k;

	if (n > HD_META_MAX)
		return hd_os_alloc(hd_meta_big(n));
	k = hd_meta_shift(n);
	pthread_mutex_lock(&hd_meta_mutex);
	f = hd_meta_take(k);
	pthread_mutex_unlock(&hd_meta_mutex);
	if (f)
		memset(f, 0, 1UL << k);
	return f;
}

void hd_meta_free(void *p, size_t n)
{
	struct hd_meta_free *f = p;
	unsigned int k;

	if (!p)
		return;
	if (n > HD_META_MAX) {
		hd_os_free(p, hd_meta_big(n));
		return;
	}
	k = hd_meta_shift(n);
	pthread_mutex_lock(&hd_meta_mutex);
	f->next = hd_meta_lists[k];
	hd_meta_lists[k] = f;
	pthread_mutex_unlock(&hd_meta_mutex);
}

/*
 * Resize a block of @old bytes (or NULL with @old 0) to @n bytes, keeping
 * its contents; the new bytes are zero.  Return: the block, or NULL (the
 * old block is left as it was).
 */
void *hd_meta_realloc(void *p, size_t old, size_t n)
{
	void *q;

	if (p && hd_meta_shift(old) == hd_meta_shift(n) &&
	    n <= HD_META_MAX && old <= HD_META_MAX) {
		if (n < old)
			memset((char *)p + n, 0, old - n);
		return p;
	}
	q = hd_meta_alloc(n);
	if (!q)
		return NULL;
	if (p) {
		memcpy(q, p, old < n ? old : n);
		hd_meta_free(p, old);
	}
	return q;
}

/*
 * fork(): the lists are consistent in the child because the mutex is held
 * across the fork (prepare, then parent or child).
 */
void hd_meta_atfork_prepare(void)
{
	pthread_mutex_lock(&hd_meta_mutex);
}

void hd_meta_atfork_parent(void)
{
	pthread_mutex_unlock(&hd_meta_mutex);
}

/* The child's only thread is the one that took the mutex in prepare. */
void hd_meta_atfork_child(void)
{
	pthread_mutex_unlock(&hd_meta_mutex);
}
