/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * alloc_native.h: heapdev's native API (<heapdev.h>).  Same heaps as the
 * Win32 API; shown next to it to see what the Win32 layer costs.
 */
#include <heapdev.h>

#define ALLOC_NAME "heapdev-native"
#define A_HAS_DESTROY 1
#define A_HAS_MODES 1
#define A_MEM_EVERY 64		/* heapdev_get_info is O(live small blocks) */

struct bheap {
	struct heapdev_heap *h;
};

struct bctx {
	struct heapdev_heap *h;
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
	struct heapdev_options o = {
		.size = sizeof(o),
		.flags = serialized ? 0 : HEAPDEV_NO_SERIALIZE,
	};

	if (heapdev_create(&o, &b->h))
		return NULL;
	return b;
}

static inline void a_attach(struct bheap *b, struct bctx *c)
{
	c->h = b->h;
}

static inline void a_detach(struct bheap *b, struct bctx *c)
{
	(void)b;
	(void)c;
}

static inline void *a_alloc(struct bctx *c, size_t n)
{
	return heapdev_alloc(c->h, n, 0);
}

static inline void a_free(struct bctx *c, void *p)
{
	heapdev_free(c->h, p, 0);
}

static inline void *a_realloc(struct bctx *c, void *p, size_t n)
{
	return heapdev_realloc(c->h, p, n, 0);
}

static inline int a_destroy(struct bheap *b)
{
	return heapdev_destroy(b->h) ? -1 : 0;
}

static inline long long a_committed(struct bheap *b)
{
	struct heapdev_heap_info i = { .size = sizeof(i) };

	return heapdev_get_info(b->h, &i) ? -1 : (long long)i.committed;
}
