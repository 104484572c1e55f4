/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * alloc_jemalloc.h: a jemalloc arena per heap ("arenas.create"), used with
 * mallocx/dallocx/rallocx and MALLOCX_ARENA.  Every thread that uses the
 * heap gets its own explicit thread cache ("tcache.create",
 * MALLOCX_TCACHE), so cached blocks never leave the arena and the arena
 * can be destroyed ("tcache.destroy" of each, then "arena.<i>.destroy"):
 * the fastest configuration that keeps the heap a heap.
 */
#include <jemalloc/jemalloc.h>

#define ALLOC_NAME "jemalloc"
#define A_HAS_DESTROY 1
#define A_HAS_MODES 0
#define A_MEM_EVERY 64		/* "epoch" refreshes all statistics */

struct bheap {
	unsigned arena;
};

struct bctx {
	int flags;
	unsigned tcache;
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
	size_t sz = sizeof(b->arena);

	(void)serialized;
	if (mallctl("arenas.create", &b->arena, &sz, NULL, 0))
		return NULL;
	return b;
}

static inline void a_attach(struct bheap *b, struct bctx *c)
{
	size_t sz = sizeof(c->tcache);

	if (mallctl("tcache.create", &c->tcache, &sz, NULL, 0)) {
		fprintf(stderr, "jemalloc: tcache.create failed\n");
		exit(2);
	}
	c->flags = MALLOCX_ARENA(b->arena) | MALLOCX_TCACHE(c->tcache);
}

static inline void a_detach(struct bheap *b, struct bctx *c)
{
	(void)b;
	mallctl("tcache.destroy", NULL, NULL, &c->tcache, sizeof(c->tcache));
}

static inline void *a_alloc(struct bctx *c, size_t n)
{
	return mallocx(n, c->flags);
}

static inline void a_free(struct bctx *c, void *p)
{
	dallocx(p, c->flags);
}

static inline void *a_realloc(struct bctx *c, void *p, size_t n)
{
	return rallocx(p, n, c->flags);
}

static inline int a_destroy(struct bheap *b)
{
	char name[64];

	snprintf(name, sizeof(name), "arena.%u.destroy", b->arena);
	return mallctl(name, NULL, NULL, NULL, 0) ? -1 : 0;
}

/* Pages of the arena's extents that are in use, dirty or muzzy. */
static inline long long a_committed(struct bheap *b)
{
	static const char *const what[] = { "pactive", "pdirty", "pmuzzy" };
	uint64_t epoch = 1;
	long long pages = 0;
	size_t sz = sizeof(epoch), v;
	char name[96];
	int i;

	mallctl("epoch", &epoch, &sz, &epoch, sz);
	for (i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "stats.arenas.%u.%s", b->arena,
			 what[i]);
		sz = sizeof(v);
		if (mallctl(name, &v, &sz, NULL, 0))
			return -1;
		pages += (long long)v;
	}
	return pages * 4096;
}
