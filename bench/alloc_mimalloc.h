/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * alloc_mimalloc.h: mimalloc heaps (mi_heap_new, mi_heap_malloc,
 * mi_heap_realloc, mi_free, mi_heap_destroy).  A mimalloc 2.x heap can
 * only allocate from the thread that created it, so in the multi-threaded
 * workloads every other thread creates a heap of its own (mi_free works
 * from any thread); there is no shared mimalloc heap.
 */
#include <mimalloc.h>
#include <pthread.h>

#define ALLOC_NAME "mimalloc"
#define A_HAS_DESTROY 1
#define A_HAS_MODES 0
#define A_MEM_EVERY 16

struct bheap {
	mi_heap_t *h;
	pthread_t owner;
};

struct bctx {
	mi_heap_t *h;
	int own;
};

static inline int a_init(void)
{
	return 0;
}

static inline struct bheap *a_create(int serialized)
{
	static struct bheap heaps[64];
	static int next;
	struct bheap *b = &heaps[next++ & 63];

	(void)serialized;
	b->h = mi_heap_new();
	b->owner = pthread_self();
	return b->h ? b : NULL;
}

static inline void a_attach(struct bheap *b, struct bctx *c)
{
	c->own = !pthread_equal(b->owner, pthread_self());
	c->h = c->own ? mi_heap_new() : b->h;
}

static inline void a_detach(struct bheap *b, struct bctx *c)
{
	(void)b;
	if (c->own)
		mi_heap_delete(c->h);	/* live blocks stay valid */
}

static inline void *a_alloc(struct bctx *c, size_t n)
{
	return mi_heap_malloc(c->h, n);
}

static inline void a_free(struct bctx *c, void *p)
{
	(void)c;
	mi_free(p);
}

static inline void *a_realloc(struct bctx *c, void *p, size_t n)
{
	return mi_heap_realloc(c->h, p, n);
}

static inline int a_destroy(struct bheap *b)
{
	mi_heap_destroy(b->h);
	return 0;
}

/* Process-wide committed bytes (the harness itself uses mmap). */
static inline long long a_committed(struct bheap *b)
{
	size_t el, ut, st, rss, prss, commit, pcommit, pf;

	(void)b;
	mi_process_info(&el, &ut, &st, &rss, &prss, &commit, &pcommit, &pf);
	return (long long)commit;
}
