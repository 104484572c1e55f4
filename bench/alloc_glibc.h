/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * alloc_glibc.h: glibc malloc.  It has no private heaps: "destroy" is not
 * available and the destroy workload frees every block.
 */
#include <malloc.h>

#define ALLOC_NAME "glibc"
#define A_HAS_DESTROY 0
#define A_HAS_MODES 0
#define A_MEM_EVERY 1

struct bheap {
	int unused;
};

struct bctx {
	int unused;
};

static inline int a_init(void)
{
	return 0;
}

static inline struct bheap *a_create(int serialized)
{
	static struct bheap b;

	(void)serialized;
	return &b;
}

static inline void a_attach(struct bheap *b, struct bctx *c)
{
	(void)b;
	(void)c;
}

static inline void a_detach(struct bheap *b, struct bctx *c)
{
	(void)b;
	(void)c;
}

static inline void *a_alloc(struct bctx *c, size_t n)
{
	(void)c;
	return malloc(n);
}

static inline void a_free(struct bctx *c, void *p)
{
	(void)c;
	free(p);
}

static inline void *a_realloc(struct bctx *c, void *p, size_t n)
{
	(void)c;
	return realloc(p, n);
}

static inline int a_destroy(struct bheap *b)
{
	(void)b;
	return -1;
}

/* Bytes glibc holds from the system: its arenas plus mmapped chunks. */
static inline long long a_committed(struct bheap *b)
{
	struct mallinfo2 mi = mallinfo2();

	(void)b;
	return (long long)(mi.arena + mi.hblkhd);
}
