/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * alloc_win32.h: the Win32 heap API.  The same source builds against
 * heapdev's <heapdev/win32.h> on Linux and against mingw-w64's <windows.h>
 * for Wine's HeapAlloc under wine64.
 *
 * Mode "ser" is a default (serialized) heap with the low-fragmentation heap
 * requested through HeapSetInformation, as Windows programs do; mode "ns"
 * is HeapCreate(HEAP_NO_SERIALIZE).
 */
#ifdef _WIN32
#include <windows.h>
#define ALLOC_NAME "wine"
#else
#include <heapdev/win32.h>
#define ALLOC_NAME "heapdev"
#endif

#define A_HAS_DESTROY 1
#define A_HAS_MODES 1
#ifdef _WIN32
#define A_MEM_EVERY 256		/* HeapWalk is O(blocks): sample less often */
#else
#define A_MEM_EVERY 64		/* HeapSummary is O(live small blocks) */
#endif

struct bheap {
	HANDLE h;
};

struct bctx {
	HANDLE h;
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

	b->h = HeapCreate(serialized ? 0 : HEAP_NO_SERIALIZE, 0, 0);
	if (!b->h)
		return NULL;
	if (serialized) {
		ULONG lfh = 2;

		HeapSetInformation(b->h, HeapCompatibilityInformation, &lfh,
				   sizeof(lfh));
	}
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
	return HeapAlloc(c->h, 0, n);
}

static inline void a_free(struct bctx *c, void *p)
{
	HeapFree(c->h, 0, p);
}

static inline void *a_realloc(struct bctx *c, void *p, size_t n)
{
	return HeapReAlloc(c->h, 0, p, n);
}

static inline int a_destroy(struct bheap *b)
{
	return HeapDestroy(b->h) ? 0 : -1;
}

/* Committed bytes of the heap, as the heap itself reports them. */
static inline long long a_committed(struct bheap *b)
{
#ifdef _WIN32
	/* Wine 8 has no HeapSummary: add up the regions of a heap walk. */
	PROCESS_HEAP_ENTRY e;
	long long sum = 0;

	e.lpData = NULL;
	while (HeapWalk(b->h, &e))
		if (e.wFlags & PROCESS_HEAP_REGION)
			sum += e.Region.dwCommittedSize;
		else if ((e.wFlags & PROCESS_HEAP_ENTRY_BUSY) &&
			 e.cbData >= (1u << 19))
			sum += e.cbData;	/* large blocks: VirtualAlloc */
	return sum;
#else
	HEAP_SUMMARY s;

	s.cb = sizeof(s);
	return HeapSummary(b->h, 0, &s) ? (long long)s.cbCommitted : -1;
#endif
}
