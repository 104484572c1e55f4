/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * alloc_tbb.h: oneTBB memory pools (libtbbmalloc2: rml::pool_create_v1,
 * pool_malloc, pool_free, pool_realloc, pool_destroy).  The pool gets its
 * memory from mmap through the policy's callbacks, which also count what
 * it holds.  The rml functions are C++; they are declared here with their
 * mangled names so that the workloads stay one C source.
 */
#include <stdbool.h>
#include <sys/mman.h>

#define ALLOC_NAME "tbb"
#define A_HAS_DESTROY 1
#define A_HAS_MODES 0
#define A_MEM_EVERY 1

struct tbb_policy {
	void *(*alloc)(intptr_t id, size_t *bytes);
	int (*free)(intptr_t id, void *p, size_t bytes);
	size_t granularity;
	int version;
	unsigned fixed_pool : 1, keep_all : 1, reserved : 30;
};

struct tbb_pool;

extern int tbb_pool_create_v1(intptr_t id, const struct tbb_policy *policy,
			      struct tbb_pool **pool)
	__asm__("_ZN3rml14pool_create_v1ElPKNS_13MemPoolPolicyEPPNS_10MemoryPoolE");
extern void *tbb_pool_malloc(struct tbb_pool *pool, size_t n)
	__asm__("_ZN3rml11pool_mallocEPNS_10MemoryPoolEm");
extern bool tbb_pool_free(struct tbb_pool *pool, void *p)
	__asm__("_ZN3rml9pool_freeEPNS_10MemoryPoolEPv");
extern void *tbb_pool_realloc(struct tbb_pool *pool, void *p, size_t n)
	__asm__("_ZN3rml12pool_reallocEPNS_10MemoryPoolEPvm");
extern bool tbb_pool_destroy(struct tbb_pool *pool)
	__asm__("_ZN3rml12pool_destroyEPNS_10MemoryPoolE");

struct bheap {
	struct tbb_pool *pool;
	_Atomic long long held;
};

struct bctx {
	struct tbb_pool *pool;
};

static void *tbb_raw_alloc(intptr_t id, size_t *bytes)
{
	struct bheap *b = (struct bheap *)id;
	void *p = mmap(NULL, *bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	atomic_fetch_add(&b->held, (long long)*bytes);
	return p;
}

static int tbb_raw_free(intptr_t id, void *p, size_t bytes)
{
	struct bheap *b = (struct bheap *)id;

	atomic_fetch_sub(&b->held, (long long)bytes);
	return munmap(p, bytes);
}

static inline int a_init(void)
{
	return 0;
}

static inline struct bheap *a_create(int serialized)
{
	static struct bheap heaps[64];
	static int next;
	struct bheap *b = &heaps[next++ & 63];
	struct tbb_policy pol = {
		.alloc = tbb_raw_alloc, .free = tbb_raw_free, .version = 1,
	};

	(void)serialized;
	atomic_store(&b->held, 0);
	if (tbb_pool_create_v1((intptr_t)b, &pol, &b->pool))
		return NULL;
	return b;
}

static inline void a_attach(struct bheap *b, struct bctx *c)
{
	c->pool = b->pool;
}

static inline void a_detach(struct bheap *b, struct bctx *c)
{
	(void)b;
	(void)c;
}

static inline void *a_alloc(struct bctx *c, size_t n)
{
	return tbb_pool_malloc(c->pool, n);
}

static inline void a_free(struct bctx *c, void *p)
{
	tbb_pool_free(c->pool, p);
}

static inline void *a_realloc(struct bctx *c, void *p, size_t n)
{
	return tbb_pool_realloc(c->pool, p, n);
}

static inline int a_destroy(struct bheap *b)
{
	return tbb_pool_destroy(b->pool) ? 0 : -1;
}

/* Bytes the pool obtained from its mmap callback and still holds. */
static inline long long a_committed(struct bheap *b)
{
	return atomic_load(&b->held);
}
