// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * Unit tests of internals: metadata pages, size classes, header
 * encoding, the exact division of slot indices, the page map, the biased
 * lock, commit refusals reported through a fake backend, walk region
 * indices of segments past the 64th, the immediate decommit threshold,
 * the deferred list and remote frees of runs, the emptied runs a shared
 * heap keeps, runs on a delayed list, the grace period of released runs,
 * warm heaps, lazy commit, and medium blocks growing by realloc.
 * Linked with the library's objects.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../include/heapdev/win32.h"
#include "../src/heap.h"
#include "t.h"

/*
 * Metadata chunks hand their blocks out in order: the pages of blocks not
 * handed out yet are never touched, so not resident (they were: each new
 * chunk was threaded onto a free list, 256 KiB resident at once).
 */
static void metadata_pages(void)
{
	char *a = hd_meta_alloc(32768), *b = hd_meta_alloc(32768);
	unsigned char vec[16];
	int i, resident = 0;

	T_OK(a && b == a + 32768, "metadata: two 32 KiB blocks side by side "
	     "in a fresh chunk");
	if (b && !mincore(b + 32768, sizeof(vec) * 4096, vec))
		for (i = 0; i < (int)sizeof(vec); i++)
			resident += vec[i] & 1;
	else
		resident = -1;
	T_EQ(resident, 0, "metadata: the chunk's pages after them are not "
	     "resident");
	hd_meta_free(b, 32768);
	hd_meta_free(a, 32768);
}

static void classes(void)
{
	struct hd_heap *hp = calloc(1, sizeof(*hp));
	struct hd_sheap *h = &hp->s;
	bool exact = true, smallest = true, runs = true;
	size_t n;
	unsigned int c;

	hd_small_init(h, &hp->core, &hp->m);
	for (n = 0; n <= HD_SMALL_MAX; n++) {
		c = hd_class_of(n);
		if (c >= HD_NCLASS || h->cls[c].stride < n + 8) {
			exact = false;
			break;
		}
		if (c && h->cls[c - 1].stride >= n + 8)
			smallest = false;
	}
	T_OK(exact, "every size up to %d fits its class", HD_SMALL_MAX);
	T_OK(smallest, "and gets the smallest class that fits");
	T_EQ(hd_class_of(24), 0, "sizes 0..24 share the 32-byte class");
	T_EQ(h->cls[hd_class_of(40)].stride, 48, "a 40-byte block has a "
	     "48-byte slot (native stride round_up(n + 8, 16))");
	T_EQ(h->cls[HD_NCLASS - 1].stride, 16384, "largest stride 16 KiB");
	for (c = 0; c < HD_NCLASS; c++) {
		struct hd_class *cls = &h->cls[c];

		runs &= (cls->stride & 15) == 0 &&
			(cls->run_min - HD_HDR) / cls->stride >=
			(cls->stride <= 1024 ? 6U : 2U) &&
			(cls->run_max - HD_HDR) / cls->stride >= 3 &&
			cls->run_min % HD_PAGE == 0 &&
			cls->run_max % HD_PAGE == 0 &&
			cls->run_min <= cls->run_max;
	}
	T_OK(runs, "every class: 16-byte strides, >= 6 slots (2 from 1 KiB) "
	     "in its first run, >= 3 in its largest, runs of whole pages");
	free(hp);
}

static void headers(void)
{
	struct hd_core h = { .secret = 0x1234567890abcdefULL };
	uint64_t word = 0, w;

	hd_wr(&h, (uintptr_t)&word, hd_w0(HD_K_MFREE, HD_F_PREV_GAP, 4096));
	w = hd_rd(&h, (uintptr_t)&word);
	T_OK(hd_w0_ok(w) && hd_w0_kind(w) == HD_K_MFREE &&
	     hd_w0_flags(w) == HD_F_PREV_GAP && hd_w0_size(w) == 4096,
	     "header word 0 round trip");
	T_OK(word != hd_w0(HD_K_MFREE, HD_F_PREV_GAP, 4096),
	     "headers are stored encoded");
	word ^= 1;
	T_OK(hd_w0_kind(hd_rd(&h, (uintptr_t)&word)) != HD_K_MFREE,
	     "a flipped bit changes the decoded kind");
	T_EQ(hd_w0_size(hd_w0(HD_K_GAP, 0, 1ULL << 40)), 1ULL << 40,
	     "sizes up to 1 TiB fit");
}

/*
 * Slot indices come from one multiply: (d * recip) >> 40 is d / stride,
 * and the low 40 bits of the product are below recip exactly when the
 * stride divides d, for every stride and every offset a run can have.
 */
static void slot_index(void)
{
	static unsigned char storage[sizeof(struct hd_run)]
		__attribute__((aligned(64)));
	struct hd_run *run = (struct hd_run *)storage;
	bool exact = true;
	unsigned int c;

	for (c = 0; c < HD_NCLASS && exact; c++) {
		uint32_t stride = c < 63 ? 32 + 16 * c : 0;
		uintptr_t d;

		if (!stride) {
			static const uint16_t big[] = { 1280, 1536, 1792, 2048,
				2560, 3072, 3584, 4096, 5120, 6144, 7168, 8192,
				10240, 12288, 14336, 16384 };

			stride = big[c - 63];
		}
		run->start = 1UL << 30;
		run->stride = stride;
		run->nslots = (256U << 10) / stride;
		run->span = run->nslots * stride;
		run->recip = ((1ULL << 40) + stride - 1) / stride;
		for (d = 0; d < run->span + 64 && exact; d += 16) {
			long i = hd_run_index(run, run->start + d);
			long want = d < run->span && d % stride == 0 ?
				    (long)(d / stride) : -1;

			exact = i == want;
		}
	}
	T_OK(exact, "slot index by multiply: exact for every class and offset "
	     "of a 256 KiB run, -1 between slots and past the end");
	T_OK(hd_run_index(HD_EMPTY_RUN, 0) < 0 &&
	     hd_run_index(HD_EMPTY_RUN, 4096) < 0,
	     "the empty run has no slot");
}

static void pagemap(void)
{
	struct hd_span sp = { .base = 0x7f0000400000UL, .size = 9 << 20,
			      .handle = 0x7f0000400000UL };
	struct hd_run *fake = (struct hd_run *)&sp;

	T_EQ(hd_span_register(&sp), 0, "page map: register");
	T_OK(hd_span_of(sp.base) == &sp && hd_span_of(sp.base + sp.size - 1) ==
	     &sp, "page map: first and last byte resolve");
	T_OK(!hd_span_of(sp.base + sp.size) && !hd_span_of(sp.base - 1),
	     "page map: bytes outside do not");
	T_OK(!hd_span_of(1ULL << 47) && !hd_span_of(~0ULL) && !hd_span_of(0),
	     "page map: absurd addresses do not");
	T_OK(atomic_load(&hd_gran_of(sp.base + (8 << 20))->handle) ==
	     sp.handle && hd_gran_run(hd_gran_of(sp.base + 4096),
				      sp.base + 4096) == HD_EMPTY_RUN,
	     "page map: every granule has the handle, every page the empty "
	     "run");
	hd_pages_set_run(sp.base + (4 << 20) - 4096, 8192, fake);
	T_OK(hd_gran_run(hd_gran_of(sp.base + (4 << 20) - 1),
			 sp.base + (4 << 20) - 1) == fake &&
	     hd_gran_run(hd_gran_of(sp.base + (4 << 20)),
			 sp.base + (4 << 20)) == fake &&
	     hd_gran_run(hd_gran_of(sp.base + (4 << 20) + 4096),
			 sp.base + (4 << 20) + 4096) == HD_EMPTY_RUN,
	     "page map: a run's pages across a granule boundary");
	hd_span_set_handle(&sp, 0);
	T_OK(!atomic_load(&hd_gran_of(sp.base)->handle),
	     "page map: handles cleared (a destroy or a pause)");
	hd_span_unregister(&sp);
	T_OK(!hd_span_of(sp.base + 5) && hd_gran_of(sp.base) == &hd_null_gran,
	     "page map: cleared");
	T_OK(hd_gran_run(hd_gran_of(1UL << 46), 1UL << 46) == HD_EMPTY_RUN &&
	     !atomic_load(&hd_gran_of(~0UL)->handle),
	     "page map: unmapped addresses give the null granule");

	/* A large span: one descriptor for all its granules. */
	sp.kind = HD_SPAN_LARGE;
	sp.size = 17 << 20;
	T_EQ(hd_span_register(&sp), 0, "page map: register a large span");
	T_OK(hd_gran_of(sp.base) == hd_gran_of(sp.base + (8 << 20)) &&
	     hd_gran_of(sp.base) == hd_gran_of(sp.base + sp.size - 1) &&
	     hd_span_of(sp.base + sp.size - 1) == &sp &&
	     atomic_load(&hd_gran_of(sp.base + (12 << 20))->handle) ==
	     sp.handle && hd_gran_run(hd_gran_of(sp.base + (12 << 20)),
				      sp.base + (12 << 20)) == HD_EMPTY_RUN,
	     "page map: a large span's granules share one descriptor, with "
	     "the handle and every page the empty run");
	hd_span_unregister(&sp);
	T_OK(!hd_span_of(sp.base) && !hd_span_of(sp.base + sp.size - 1) &&
	     hd_gran_of(sp.base + (16 << 20)) == &hd_null_gran,
	     "page map: a large span unregistered, every granule cleared");
	T_EQ(hd_span_register(&sp), 0, "page map: its descriptor is reused "
	     "(registered again)");
	hd_span_unregister(&sp);
}

static void locks(void)
{
	struct hd_lock l;

	hd_lock_init(&l, true);
	T_OK(!hd_lock_held(&l), "lock: not held at first");
	hd_lock(&l);
	hd_lock(&l);
	T_OK(hd_lock_held(&l), "lock: held, recursively");
	hd_unlock(&l);
	T_OK(hd_lock_held(&l), "lock: still held once");
	hd_unlock(&l);
	T_OK(!hd_lock_held(&l), "lock: released");
	T_OK(atomic_load(&l.bias) == (hd_bias_supported() ? hd_self() : 0),
	     "lock: biased to its creator when membarrier works (%s)",
	     hd_bias_supported() ? "yes" : "no");
	hd_lock_init(&l, false);
	hd_lock(&l);
	T_OK(hd_lock_held(&l) && atomic_load(&l.word) == 1,
	     "unbiased lock: a futex mutex");
	hd_unlock(&l);
	T_OK(atomic_load(&l.word) == 0, "unbiased lock: released");
}

static int refused_with;

/* A backend commit that the kernel refuses (module limit or memory). */
static int refuse_commit(struct hd_bheap *bh, uintptr_t addr, uint64_t off,
			 size_t len, bool lazy)
{
	return refused_with;
}

/*
 * A commit refused with EDQUOT (a /dev/heapdev per-heap, per-file or
 * per-user limit) reaches native callers as EDQUOT; the Win32 calls
 * still say ERROR_NOT_ENOUGH_MEMORY.  The memfd backend cannot produce
 * EDQUOT, so the heap's backend is swapped for one that refuses commits.
 */
static void commit_refused(void)
{
	struct heapdev_options fo = { .size = sizeof(fo), .maximum = 1 << 20 };
	struct heapdev_heap *hh, *fixed;
	const struct hd_backend *real;
	struct hd_backend fake;
	struct hd_heap *h;
	void *q, *p;

	if (heapdev_create(NULL, &hh) || heapdev_create(&fo, &fixed)) {
		T_OK(0, "commit refusal: heaps created");
		return;
	}
	q = heapdev_alloc(hh, 100, 0);
	h = hd_heap_get(hh);
	hd_leave();
	real = h->core.bh.be;
	fake = *real;
	fake.commit = refuse_commit;
	h->core.bh.be = &fake;

	refused_with = -EDQUOT;
	errno = 0;
	p = heapdev_alloc(hh, 600000, 0);
	T_OK(!p && errno == EDQUOT, "medium heapdev_alloc, commit refused "
	     "with EDQUOT: NULL, errno EDQUOT (%d)", errno);
	errno = 0;
	p = heapdev_alloc(hh, 8 << 20, 0);
	T_OK(!p && errno == EDQUOT, "large heapdev_alloc: errno EDQUOT (%d)",
	     errno);
	errno = 0;
	p = heapdev_realloc(hh, q, 600000, 0);
	T_OK(!p && errno == EDQUOT && !heapdev_validate(hh, q, 0),
	     "heapdev_realloc: errno EDQUOT, the block intact (%d)", errno);
	SetLastError(0);
	T_OK(!HeapAlloc(hh, 0, 600000) &&
	     GetLastError() == ERROR_NOT_ENOUGH_MEMORY, "HeapAlloc: "
	     "ERROR_NOT_ENOUGH_MEMORY for the same refusal");
	SetLastError(0);
	T_OK(!HeapReAlloc(hh, 0, q, 600000) &&
	     GetLastError() == ERROR_NOT_ENOUGH_MEMORY, "HeapReAlloc: "
	     "ERROR_NOT_ENOUGH_MEMORY");
	refused_with = -ENOMEM;
	errno = 0;
	p = heapdev_alloc(hh, 8 << 20, 0);
	T_OK(!p && errno == ENOMEM, "commit refused with ENOMEM: errno "
	     "ENOMEM (%d)", errno);
	h->core.bh.be = real;

	/* a refusal recorded earlier does not stick to a later failure */
	hd_commit_err = -EDQUOT;
	errno = 0;
	p = heapdev_alloc(fixed, 2 << 20, 0);
	T_OK(!p && errno == ENOMEM, "a fixed heap's size limit after an "
	     "earlier refusal: ENOMEM (%d)", errno);
	hd_commit_err = -EDQUOT;
	T_EQ(hd_alloc_errno(), EDQUOT, "hd_alloc_errno: EDQUOT refusal");
	T_EQ(hd_alloc_errno(), ENOMEM, "hd_alloc_errno: then ENOMEM");
	heapdev_free(hh, q, 0);
	heapdev_destroy(hh);
	heapdev_destroy(fixed);
}

/* Region index of the REGION entry and of busy entries, Win32 and native. */
static void walk_indices(HANDLE hh, int *region, int *busy, int *large,
			 uint32_t *nregion)
{
	struct heapdev_walk_entry w;
	PROCESS_HEAP_ENTRY e;

	*region = *busy = *large = -1;
	memset(&e, 0, sizeof(e));
	while (HeapWalk(hh, &e)) {
		if (e.wFlags & PROCESS_HEAP_REGION)
			*region = e.iRegionIndex;
		else if ((e.wFlags & PROCESS_HEAP_ENTRY_BUSY) &&
			 e.cbData == 3 << 20)
			*large = e.iRegionIndex;
		else if (e.wFlags & PROCESS_HEAP_ENTRY_BUSY)
			*busy = e.iRegionIndex;
	}
	memset(&w, 0, sizeof(w));
	*nregion = UINT32_MAX;
	while (!heapdev_walk(hh, &w))
		if (w.kind == HEAPDEV_WALK_REGION)
			*nregion = w.region;
}

/*
 * Region indices of segments never collide with the large blocks' 64: a
 * heap's 65th segment is region 65 (the segment's index is set by hand,
 * since 65 real segments would need gigabytes).
 */
static void region_index(void)
{
	struct heapdev_heap *hh;
	struct hd_seg *s;
	int region, busy, large;
	uint32_t nregion;
	void *m, *l;

	if (heapdev_create(NULL, &hh)) {
		T_OK(0, "region index: heap created");
		return;
	}
	m = heapdev_alloc(hh, 3000, 0);
	l = heapdev_alloc(hh, 3 << 20, 0);
	s = (struct hd_seg *)hd_heap_get(hh)->m.segs;
	hd_leave();
	s->index = 63;
	walk_indices(hh, &region, &busy, &large, &nregion);
	T_OK(region == 63 && busy == 63 && large == 64 && nregion == 63,
	     "64th segment: region 63, large blocks 64 (%d %d %d %u)",
	     region, busy, large, nregion);
	s->index = 64;
	walk_indices(hh, &region, &busy, &large, &nregion);
	T_OK(region == 65 && busy == 65 && large == 64 && nregion == 65,
	     "65th segment: region 65, not the large blocks' 64 (%d %d %d %u)",
	     region, busy, large, nregion);
	s->index = 254;
	walk_indices(hh, &region, &busy, &large, &nregion);
	T_OK(region == 255 && nregion == 255, "255th segment: region 255 "
	     "(%d, native %u)", region, nregion);
	s->index = 300;
	walk_indices(hh, &region, &busy, &large, &nregion);
	T_OK(region == 255 && busy == 255 && large == 64 && nregion == 301,
	     "later segments: iRegionIndex stays 255 (a BYTE), the native "
	     "index goes on (%d %d %d %u)", region, busy, large, nregion);
	s->index = 0;
	heapdev_free(hh, m, 0);
	heapdev_free(hh, l, 0);
	heapdev_destroy(hh);
}

/* Committed bytes after @n blocks of 60000 bytes are allocated and freed. */
static uint64_t committed_after_frees(int n)
{
	struct heapdev_heap_info info = { .size = sizeof(info) };
	struct heapdev_heap *hh;
	void *p[100];
	int i;

	if (heapdev_create(NULL, &hh))
		return 0;
	for (i = 0; i < n; i++)
		p[i] = heapdev_alloc(hh, 60000, 0);
	for (i = 0; i < n; i++)
		heapdev_free(hh, p[i], 0);
	heapdev_get_info(hh, &info);
	heapdev_destroy(hh);
	return info.committed;
}

/*
 * The decommit policy acts at once when the free committed bytes exceed
 * four times the slack (1 MiB + 1/8 of the live bytes): 4.8 MiB freed in
 * a row goes back at once (the free bytes pass 4 x slack at ~4.3 MiB);
 * 3.6 MiB stays committed until the excess has lasted 100 ms.
 */
static void decommit_threshold(void)
{
	uint64_t small = committed_after_frees(60);
	uint64_t big = committed_after_frees(80);

	T_OK(small >= 3600000, "3.6 MiB freed at once (free < 4 x slack): "
	     "kept committed for now (%llu)", (unsigned long long)small);
	T_OK(big <= 2 << 20, "4.8 MiB freed at once (free > 4 x slack): "
	     "most of it decommitted at once (%llu)",
	     (unsigned long long)big);
}

/* ---- emptied runs of the big classes ---- */

static void *touch_heap(void *arg)
{
	HeapFree(arg, 0, HeapAlloc(arg, 0, 64));
	return NULL;
}

/*
 * Allocate @k blocks of @n bytes (the 18th of a class activates it) and
 * free them; return the calling thread's current run of the class then.
 */
static struct hd_run *empty_current(HANDLE hh, size_t n, int k)
{
	struct hd_heap *h = hd_heap_get(hh);
	void *p[24];
	int i;

	for (i = 0; i < k; i++)
		p[i] = HeapAlloc(hh, 0, n);
	for (i = 0; i < k; i++)
		HeapFree(hh, 0, p[i]);
	return hd_my_ctx(h)->cur[hd_class_of(n)];
}

/*
 * The current run of a class of 4 KiB or more that empties is released
 * at once on a heap one thread uses, and kept on one whose locks threads
 * share, until HeapCompact, or until a refill finds it empty for longer
 * than HD_DECOMMIT_DELAY.
 */
static void kept_runs(void)
{
	HANDLE one = HeapCreate(0, 0, 0), shared = HeapCreate(0, 0, 0);
	struct hd_ctx *ctx;
	struct hd_run *run;
	unsigned int k = hd_class_of(5000) - HD_BIG_CLASS;
	size_t n, kept;
	pthread_t t;
	int i, idle = 0;

	/* Without membarrier() no lock is biased: every heap keeps them. */
	T_OK((empty_current(one, 5000, 20) == HD_EMPTY_RUN) ==
	     hd_bias_supported(), "kept runs: a heap one thread uses "
	     "releases an emptied current run of 5 KiB slots");
	pthread_create(&t, NULL, touch_heap, shared);
	pthread_join(t, NULL);
	run = empty_current(shared, 5000, 20);
	ctx = hd_my_ctx(hd_heap_get(shared));
	T_OK(run != HD_EMPTY_RUN && run->used == 0 &&
	     (ctx->kept >> k & 1), "kept runs: a heap two threads used keeps "
	     "it, empty");
	T_OK(HeapFree(shared, 0, HeapAlloc(shared, 0, 5000)) &&
	     ctx->cur[hd_class_of(5000)] == run, "kept runs: and allocates "
	     "from it again");
	HeapCompact(shared, 0);
	T_OK(ctx->cur[hd_class_of(5000)] == HD_EMPTY_RUN,
	     "kept runs: HeapCompact releases it");
	run = empty_current(shared, 5000, 2);
	usleep(HD_DECOMMIT_DELAY / 1000 + 20000);
	/* Refills of another class: every other allocation of a 6 KiB block. */
	for (i = 0; i < 8 * HD_KEEP_CHECK; i++)
		HeapFree(shared, 0, HeapAlloc(shared, 0, 6000));
	T_OK(run != HD_EMPTY_RUN &&
	     ctx->cur[hd_class_of(5000)] == HD_EMPTY_RUN &&
	     !(ctx->kept >> k & 1), "kept runs: released by a refill once "
	     "empty for longer than %llu ms",
	     (unsigned long long)HD_DECOMMIT_DELAY / 1000000);
	/* Runs of every class from 4 KiB, grown by 24 blocks each. */
	for (n = 4096; n <= HD_SMALL_MAX; n += 1024)
		empty_current(shared, n, 24);
	for (k = 0, kept = 0; k < HD_NCLASS - HD_BIG_CLASS; k++) {
		run = ctx->cur[HD_BIG_CLASS + k];
		if ((ctx->kept >> k & 1) && run != HD_EMPTY_RUN && !run->used)
			kept += run->bytes;
		else if (run != HD_EMPTY_RUN && !run->used)
			idle++;
	}
	T_OK(kept > 0 && kept <= HD_KEEP_BYTES && idle == 0,
	     "kept runs: at most %u KiB of them per thread (%zu bytes kept, "
	     "%d empty runs neither kept nor released)", HD_KEEP_BYTES >> 10,
	     kept, idle);
	T_OK(HeapValidate(shared, 0, NULL) && HeapDestroy(shared) &&
	     HeapDestroy(one), "kept runs: both heaps valid and destroyed");
}

struct one_free {
	HANDLE h;
	void *p;
};

static void *free_one(void *arg)
{
	struct one_free *f = arg;

	HeapFree(f->h, 0, f->p);
	return NULL;
}

/*
 * Activate the 5000-byte class of @h (past its first run, of two slots,
 * when @skip), fill the current run (blocks p[0..*n-1]; p[*n] starts the
 * next run) and have another thread free p[0]: the full run goes on the
 * calling thread's delayed list.  Return: the run.
 */
static struct hd_run *listed_run(HANDLE h, bool skip, void **p, int *n)
{
	unsigned int c = hd_class_of(5000);
	struct one_free f = { h, NULL };
	struct hd_ctx *ctx;
	struct hd_run *r1;
	pthread_t t;
	int i;

	for (i = 0; i < HD_LFH_TRIGGER - 1; i++)
		p[i] = HeapAlloc(h, 0, 5000);
	for (i = 0; i < HD_LFH_TRIGGER - 1; i++)
		HeapFree(h, 0, p[i]);
	ctx = hd_my_ctx(hd_heap_get(h));
	p[0] = HeapAlloc(h, 0, 5000);
	r1 = ctx->cur[c];
	while (skip && (p[0] = HeapAlloc(h, 0, 5000)) && ctx->cur[c] == r1)
		;
	r1 = ctx->cur[c];
	for (*n = 1; *n < 63; ++*n) {
		p[*n] = HeapAlloc(h, 0, 5000);
		if (ctx->cur[c] != r1)
			break;
	}
	f.p = p[0];
	pthread_create(&t, NULL, free_one, &f);
	pthread_join(t, NULL);
	return r1;
}

/* Whether a released run is on @ctx's delayed list. */
static bool stale_listed(struct hd_ctx *ctx)
{
	struct hd_run *d;

	for (d = atomic_load(&ctx->delayed); d; d = d->dnext)
		if (atomic_load(&d->state) == HD_RUN_DEAD)
			return true;
	return false;
}

/*
 * A full run that another thread's free put on its owner's delayed list,
 * then released by HeapCompact once its blocks are freed, must not stay
 * on that list: a released descriptor is reused for another run, and the
 * list's next link with it (found by ThreadSanitizer in thread_test).
 */
static void delayed_release(void)
{
	HANDLE h = HeapCreate(0, 0, 0);
	struct hd_ctx *ctx = hd_my_ctx(hd_heap_get(h));
	struct hd_run *r1;
	void *p[64];
	int i, n;

	r1 = listed_run(h, false, p, &n);
	T_OK(n > 1 && n < 63 && atomic_load(&r1->state) == HD_RUN_FULL &&
	     atomic_load(&ctx->delayed) == r1 && atomic_load(&r1->notified),
	     "delayed list: a full run freed into by another thread is on its "
	     "owner's delayed list");
	for (i = 1; i < n; i++)
		HeapFree(h, 0, p[i]);
	HeapCompact(h, 0);
	T_OK(atomic_load(&r1->state) == HD_RUN_DEAD && !stale_listed(ctx),
	     "delayed list: HeapCompact released the run and left no "
	     "released run on the list");
	T_OK(HeapFree(h, 0, p[n]) && HeapValidate(h, 0, NULL) &&
	     HeapDestroy(h), "delayed list: heap valid and destroyed");
}

/*
 * The same run released by its owner's last local free: partial again,
 * the other thread's free collected (by heapdev_get_info), then emptied.
 */
static void delayed_release_by_free(void)
{
	HANDLE h = HeapCreate(0, 0, 0);
	struct hd_ctx *ctx = hd_my_ctx(hd_heap_get(h));
	struct heapdev_heap_info info = { .size = sizeof(info) };
	struct hd_run *r1;
	void *p[64];
	int i, n;

	r1 = listed_run(h, true, p, &n);
	for (i = 1; i < n - 1; i++)
		HeapFree(h, 0, p[i]);
	heapdev_get_info((struct heapdev_heap *)h, &info);
	T_OK(n > 2 && atomic_load(&r1->state) == HD_RUN_PARTIAL &&
	     r1->used == 1 && atomic_load(&r1->notified),
	     "delayed list: the run partial with one block, still listed");
	HeapFree(h, 0, p[n - 1]);
	T_OK(atomic_load(&r1->state) == HD_RUN_DEAD && !stale_listed(ctx),
	     "delayed list: its last free released it and left no released "
	     "run on the list");
	T_OK(HeapFree(h, 0, p[n]) && HeapValidate(h, 0, NULL) &&
	     HeapDestroy(h), "delayed list: heap valid and destroyed");
}

/* ---- runs across threads ---- */

#define NB	1000

struct xarg {
	HANDLE h;
	size_t n;
	void **p;
};

static void *alloc_all(void *arg)
{
	struct xarg *x = arg;
	int i;

	for (i = 0; i < NB; i++)
		x->p[i] = HeapAlloc(x->h, 0, x->n);
	return NULL;
}

static void *free_all(void *arg)
{
	struct xarg *x = arg;
	int i;

	for (i = 0; i < NB; i++)
		HeapFree(x->h, 0, x->p[i]);
	return NULL;
}

/* How many of @b's blocks are at addresses that @a had. */
static int overlap(void **a, void **b)
{
	int i, j, k = 0;

	for (i = 0; i < NB; i++)
		for (j = 0; j < NB; j++)
			if (a[i] == b[j]) {
				k++;
				break;
			}
	return k;
}

/*
 * Blocks of a run that another thread owns are freed through the run's
 * remote list (a second free of one is refused at once); the owner takes
 * them back when it needs slots.  The runs of a thread that exits are
 * adopted by the next thread that needs their class.
 */
static void remote_frees(void)
{
	static void *a[NB], *b[NB], *c[NB];
	HANDLE h = HeapCreate(0, 0, 0);
	struct xarg x = { h, 64, a };
	struct heapdev_heap_info info = { .size = sizeof(info) };
	uint64_t before;
	pthread_t t;
	bool ok = true;
	int i;

	for (i = 0; i < 20; i++)
		HeapFree(h, 0, HeapAlloc(h, 0, 64));
	pthread_create(&t, NULL, alloc_all, &x);
	pthread_join(t, NULL);
	for (i = 0; i < NB; i++)
		ok &= a[i] && HeapFree(h, 0, a[i]);
	T_OK(ok, "remote frees: %d blocks of an exited thread's runs freed",
	     NB);
	SetLastError(0);
	T_OK(!HeapFree(h, 0, a[7]) && GetLastError() ==
	     ERROR_INVALID_PARAMETER, "remote frees: a second free of one is "
	     "refused at once");
	heapdev_get_info((struct heapdev_heap *)h, &info);
	T_OK(info.blocks == 0 && info.allocated == 0, "remote frees: the "
	     "counters see them all freed (%llu blocks, %llu bytes)",
	     (unsigned long long)info.blocks,
	     (unsigned long long)info.allocated);
	for (i = 0; i < NB; i++)
		b[i] = HeapAlloc(h, 0, 64);
	T_OK(overlap(a, b) >= NB * 9 / 10, "abandoned runs: adopted by the "
	     "next thread that needs the class (%d of %d addresses reused)",
	     overlap(a, b), NB);
	/* the other way round: this thread owns them, another frees them */
	x.p = b;
	heapdev_get_info((struct heapdev_heap *)h, &info);
	before = info.committed;
	pthread_create(&t, NULL, free_all, &x);
	pthread_join(t, NULL);
	SetLastError(0);
	T_OK(!HeapFree(h, 0, b[3]) && GetLastError() ==
	     ERROR_INVALID_PARAMETER && HeapSize(h, 0, b[3]) == (SIZE_T)-1 &&
	     !HeapValidate(h, 0, b[3]), "remote frees: the owner's free, size "
	     "and validate of a block another thread freed are refused before "
	     "the owner collects it");
	T_OK(HeapValidate(h, 0, NULL), "remote frees: the heap with frees "
	     "not collected yet is valid");
	for (i = 0; i < NB; i++)
		c[i] = HeapAlloc(h, 0, 64);
	heapdev_get_info((struct heapdev_heap *)h, &info);
	T_OK(info.committed <= before,
	     "remote frees: the owner takes them back (%d of %d addresses "
	     "reused, committed %llu then %llu)", overlap(b, c), NB,
	     (unsigned long long)before, (unsigned long long)info.committed);
	for (i = 0; i < NB; i++)
		HeapFree(h, 0, c[i]);
	T_OK(HeapValidate(h, 0, NULL), "remote frees: the heap is valid");
	HeapDestroy(h);
}

struct parg {
	struct xarg x;
	pthread_barrier_t freed, done;
};

static void *free_all_wait(void *arg)
{
	struct parg *a = arg;

	free_all(&a->x);
	pthread_barrier_wait(&a->freed);
	pthread_barrier_wait(&a->done);
	return NULL;
}

/* Busy entries of a heap's walk with cbData == @n. */
static int walk_busy(HANDLE h, size_t n)
{
	PROCESS_HEAP_ENTRY e;
	int k = 0;

	memset(&e, 0, sizeof(e));
	while (HeapWalk(h, &e))
		k += (e.wFlags & PROCESS_HEAP_ENTRY_BUSY) && e.cbData == n;
	return k;
}

/*
 * A thread's frees into another thread's runs are chained in its context
 * and pushed to the run a batch at a time: while a thread that freed is
 * still alive and idle, its frees are already frees for every call (size,
 * walk, counters, validation) and the owner gets the slots back.
 */
static void pending_remote_frees(void)
{
	static void *a[NB], *b[NB];
	HANDLE h = HeapCreate(0, 0, 0);
	struct parg pa = { .x = { h, 48, a } };
	struct heapdev_heap_info info = { .size = sizeof(info) };
	uint64_t before;
	pthread_t t;
	bool ok = true;
	int i;

	pthread_barrier_init(&pa.freed, NULL, 2);
	pthread_barrier_init(&pa.done, NULL, 2);
	for (i = 0; i < NB; i++)
		a[i] = HeapAlloc(h, 0, 48);
	pthread_create(&t, NULL, free_all_wait, &pa);
	pthread_barrier_wait(&pa.freed);
	for (i = 0; i < NB; i++)
		ok &= HeapSize(h, 0, a[i]) == (SIZE_T)-1;
	T_OK(ok, "pending remote frees: HeapSize refuses every block another "
	     "(live) thread freed");
	i = walk_busy(h, 48);
	T_OK(i == 0, "pending remote frees: HeapWalk shows them free (%d "
	     "busy)", i);
	heapdev_get_info((struct heapdev_heap *)h, &info);
	T_OK(info.blocks == 0 && info.allocated == 0, "pending remote frees: "
	     "the counters see them freed (%llu blocks, %llu bytes)",
	     (unsigned long long)info.blocks,
	     (unsigned long long)info.allocated);
	T_OK(HeapValidate(h, 0, NULL), "pending remote frees: the heap is "
	     "valid");
	before = info.committed;
	for (i = 0; i < NB; i++)
		b[i] = HeapAlloc(h, 0, 48);
	heapdev_get_info((struct heapdev_heap *)h, &info);
	T_OK(info.committed <= before, "pending remote frees: the owner "
	     "gets the memory back while the freeing thread lives (%d of %d "
	     "addresses reused, committed %llu then %llu)", overlap(a, b), NB,
	     (unsigned long long)before, (unsigned long long)info.committed);
	pthread_barrier_wait(&pa.done);
	pthread_join(t, NULL);
	for (i = 0; i < NB; i++)
		HeapFree(h, 0, b[i]);
	T_OK(HeapValidate(h, 0, NULL), "pending remote frees: valid at the "
	     "end");
	pthread_barrier_destroy(&pa.freed);
	pthread_barrier_destroy(&pa.done);
	HeapDestroy(h);
}

struct pinger {
	HANDLE h;
	_Atomic int stop;
};

static void *ping(void *arg)
{
	struct pinger *pg = arg;

	while (!atomic_load(&pg->stop))
		HeapFree(pg->h, 0, HeapAlloc(pg->h, 0, 100));
	return NULL;
}

/*
 * Released run descriptors wait in limbo for a grace period (calls of
 * other threads in progress may still read them), then are reused.
 */
static void grace_period(void)
{
	struct pinger pg = { HeapCreate(0, 0, 0), 0 };
	HANDLE h = HeapCreate(0, 0, 0);
	struct hd_heap *hp;
	void *p[8];
	pthread_t t;
	int i, k;

	pthread_create(&t, NULL, ping, &pg);
	for (i = 0; i < 20; i++)
		HeapFree(h, 0, HeapAlloc(h, 0, 5000));
	/*
	 * Runs of 4 KiB classes are released when they empty, on a heap
	 * whose lock is biased; unbiased (no membarrier), the current one is
	 * kept, and HeapCompact releases it.
	 */
	for (i = 0; i < 3 * HD_LIMBO_BATCH; i++) {
		for (k = 0; k < 8; k++)
			p[k] = HeapAlloc(h, 0, 5000);
		for (k = 0; k < 8; k++)
			HeapFree(h, 0, p[k]);
		if (!hd_bias_supported())
			HeapCompact(h, 0);
	}
	hp = hd_heap_get(h);
	hd_leave();
	T_OK(hp->s.nlimbo < HD_LIMBO_BATCH && hp->s.pool,
	     "grace period: released descriptors left limbo for the pool "
	     "(%u in limbo)", hp->s.nlimbo);
	T_OK(HeapValidate(h, 0, NULL), "grace period: heap valid");
	atomic_store(&pg.stop, 1);
	pthread_join(t, NULL);
	HeapDestroy(pg.h);
	HeapDestroy(h);
}

/*
 * A small heap destroyed on the memfd backend stays warm (its pages
 * committed, out of reach) for the next HeapCreate, which reuses them
 * without a commit: the new heap is a new heap (zeroed blocks when
 * asked, nothing of the old one in walks); heapdev_trim(NULL) and age
 * release warm heaps.
 */
static void warm_heaps(void)
{
	HANDLE h = HeapCreate(0, 0, 0), h2;
	PROCESS_HEAP_ENTRY e = { 0 };
	long long base, kept, reused, now;
	unsigned char *z;
	int i, busy = 0;
	bool zero = true;

	heapdev_trim(NULL);
	base = t_memfd_bytes();
	for (i = 0; i < 100; i++)
		memset(HeapAlloc(h, 0, 1000), 0xAB, 1000);
	HeapDestroy(h);
	kept = t_memfd_bytes();
	T_OK(base >= 0 && kept >= base + 100 * 1000, "warm heap: HeapDestroy "
	     "of a small heap keeps its pages (%lld -> %lld bytes)", base,
	     kept);
	h2 = HeapCreate(0, 0, 0);
	reused = t_memfd_bytes();
	T_EQ(reused, kept, "warm heap: the next HeapCreate commits nothing");
	z = HeapAlloc(h2, HEAP_ZERO_MEMORY, 1000);
	for (i = 0; z && i < 1000; i++)
		zero &= !z[i];
	T_OK(z && zero, "warm heap: HEAP_ZERO_MEMORY block is zero over the "
	     "old heap's bytes");
	while (HeapWalk(h2, &e))
		busy += !!(e.wFlags & PROCESS_HEAP_ENTRY_BUSY);
	T_EQ(busy, 1, "warm heap: the walk shows the new heap's one block");
	T_OK(HeapValidate(h2, 0, NULL), "warm heap: the new heap is valid");
	HeapDestroy(h2);
	heapdev_trim(NULL);
	now = t_memfd_bytes();
	T_OK(now <= base, "warm heap: heapdev_trim(NULL) gives its pages back "
	     "(%lld bytes, %lld before)", now, base);

	h = HeapCreate(0, 0, 0);
	for (i = 0; i < 100; i++)
		HeapAlloc(h, 0, 1000);
	HeapDestroy(h);
	usleep(150 * 1000);
	h = HeapCreate(HEAP_NO_SERIALIZE, 0, 0);
	now = t_memfd_bytes();
	T_OK(now < base + 100 * 1000, "warm heap: released by the next "
	     "create after 100 ms (%lld bytes over the start)", now - base);
	HeapDestroy(h);
	heapdev_trim(NULL);
	h = HeapCreate(0, 64 << 10, 1 << 20);
	HeapDestroy(h);
	now = t_memfd_bytes();
	T_OK(now <= base, "warm heap: a fixed heap is never kept (%lld bytes, "
	     "%lld before)", now, base);
}

/*
 * Lazy commit (memfd backend): a large block's pages exist from its first
 * touch on, while the heap counts the whole block as committed; growth in
 * place is lazy too; heaps without the flag commit at once.
 */
static void lazy_commit(void)
{
	struct heapdev_options o = { .size = sizeof(o),
				     .flags = HEAPDEV_LAZY_COMMIT };
	struct heapdev_heap_info info = { .size = sizeof(info) };
	struct heapdev_heap *h, *eager;
	long long base, now;
	unsigned char *p, *q;
	size_t i, sz = 0;
	bool zero = true;
	int err;

	if (heapdev_create(&o, &h) || heapdev_create(NULL, &eager)) {
		T_OK(0, "lazy commit: heaps created");
		return;
	}
	T_EQ(heapdev_set_lazy_commit(h, 2), -EINVAL,
	     "lazy commit: heapdev_set_lazy_commit(h, 2) is -EINVAL");
	T_EQ(heapdev_set_lazy_commit((struct heapdev_heap *)&o, 1), -EBADF,
	     "lazy commit: heapdev_set_lazy_commit on a non-heap is -EBADF");
	base = t_memfd_bytes();
	p = heapdev_alloc(h, 8 << 20, 0);
	now = t_memfd_bytes();
	T_OK(p && now - base < (64 << 10), "lazy commit: an 8 MiB block "
	     "allocates almost nothing (%lld bytes)", now - base);
	err = heapdev_get_info(h, &info);
	T_OK(!err && info.committed >= (8 << 20), "lazy commit: the heap "
	     "counts it committed (%llu bytes)",
	     (unsigned long long)info.committed);
	memset(p, 0x5A, 1 << 20);
	now = t_memfd_bytes();
	T_OK(p && now - base >= (1 << 20) && now - base < (1 << 20) + (64 << 10),
	     "lazy commit: writing 1 MiB of it makes 1 MiB resident (%lld "
	     "bytes)", now - base);
	for (i = 1 << 20; p && i < (8 << 20); i += 4096)
		zero &= !p[i];
	T_OK(zero, "lazy commit: the untouched pages read as zero");
	now = t_memfd_bytes();
	q = heapdev_realloc(h, p, 12 << 20, 0);
	T_OK(q == p && t_memfd_bytes() == now && !heapdev_size(h, q, 0, &sz) &&
	     sz == (12 << 20) && q[(1 << 20) - 1] == 0x5A &&
	     q[(12 << 20) - 1] == 0, "lazy commit: growing in place to "
	     "12 MiB allocates nothing and keeps the contents");
	err = heapdev_free(h, q, 0) || heapdev_trim(h);
	now = t_memfd_bytes();
	T_OK(!err && now <= base, "lazy commit: freed and trimmed, every "
	     "page is back (%lld bytes over the start)", now - base);
	T_EQ(heapdev_set_lazy_commit(h, 0), 0,
	     "lazy commit: heapdev_set_lazy_commit(h, 0)");
	p = heapdev_alloc(h, 4 << 20, 0);
	T_OK(p && t_memfd_bytes() - base >= (4 << 20), "lazy commit: turned "
	     "off, a 4 MiB block is committed at once (%lld bytes)",
	     t_memfd_bytes() - base);
	heapdev_free(h, p, 0);
	heapdev_trim(h);
	base = t_memfd_bytes();
	p = heapdev_alloc(eager, 4 << 20, 0);
	T_OK(p && t_memfd_bytes() - base >= (4 << 20), "lazy commit: a heap "
	     "without the flag commits a 4 MiB block at once (%lld bytes)",
	     t_memfd_bytes() - base);
	heapdev_destroy(eager);
	heapdev_destroy(h);
}

/*
 * Medium blocks that grow step by step next to each other (what the
 * realloc benchmark does): a block that has to move takes the end of a
 * free block, half as big again as it needs, and leaves that room free
 * after it; a block that grows in place takes HD_GROW_SLACK bytes more.
 * Eight blocks grown round-robin from 17000 to 60000 bytes in steps of 40
 * moved 114 times before (8600 steps), 29 times since.  HeapSize stays
 * exact, the contents are kept and the heap stays valid.
 */
#define RG_BLOCKS	8

static void realloc_growth(void)
{
	unsigned char *v[RG_BLOCKS] = { NULL }, *q;
	size_t len[RG_BLOCKS], sz;
	int moves = 0, steps = 0, i, k;
	bool exact = true, kept = true;
	struct heapdev_heap *h;

	if (heapdev_create(NULL, &h)) {
		T_OK(0, "realloc growth: heap created");
		return;
	}
	for (i = 0; i < RG_BLOCKS; i++) {
		len[i] = 17000;
		v[i] = heapdev_alloc(h, len[i], 0);
		if (!v[i])
			goto out;
		memset(v[i], 'a' + i, len[i]);
	}
	for (k = 0; len[k % RG_BLOCKS] + 40 <= 60000; k++) {
		i = k % RG_BLOCKS;
		q = heapdev_realloc(h, v[i], len[i] + 40, 0);
		if (!q)
			break;
		moves += q != v[i];
		steps++;
		memset(q + len[i], 'a' + i, 40);
		v[i] = q;
		len[i] += 40;
		exact &= !heapdev_size(h, q, 0, &sz) && sz == len[i];
	}
	for (i = 0; i < RG_BLOCKS; i++)
		for (sz = 0; sz < len[i]; sz += 97)
			kept &= v[i][sz] == 'a' + i;
	T_OK(steps == 8600 && kept && exact, "realloc growth: %d steps of 40 "
	     "bytes, contents kept, sizes exact", steps);
	T_OK(moves <= 40, "realloc growth: %d blocks growing side by side "
	     "from 17000 to 60000 bytes moved %d times", RG_BLOCKS, moves);
	T_EQ(heapdev_validate(h, NULL, 0), 0,
	     "realloc growth: the heap validates after the growth");
	q = heapdev_realloc(h, v[0], len[0] - 2000, 0);
	T_OK(q == v[0] && !heapdev_validate(h, NULL, 0), "realloc growth: "
	     "shrinking a grown block stays in place, the heap valid");
out:
	T_OK(v[RG_BLOCKS - 1], "realloc growth: blocks allocated");
	heapdev_destroy(h);
}

/* The class of the run holding small block @p. */
static unsigned int rs_class(const void *p)
{
	uintptr_t a = (uintptr_t)p;

	return hd_gran_run(hd_gran_of(a), a)->cls;
}

/* Grow a block by 8 bytes from 16 to @to; return the moves or -1. */
static int rs_grow(struct heapdev_heap *h, unsigned int flags, size_t to)
{
	unsigned char *p = heapdev_alloc(h, 16, 0), *q;
	int moves = 0;
	size_t n, i, sz;

	if (!p)
		return -1;
	memset(p, 1, 16);
	for (n = 24; n <= to; n += 8) {
		q = heapdev_realloc(h, p, n, flags);
		if (!q || heapdev_size(h, q, 0, &sz) || sz != n)
			return -1;
		for (i = 0; i < n - 8; i += 8)
			if (q[i] != (unsigned char)(i / 8 + 1) && i >= 16)
				return -1;
		memset(q + n - 8, (int)((n - 8) / 8 + 1), 8);
		moves += q != p;
		p = q;
	}
	heapdev_free(h, p, 0);
	return moves;
}

static void *rs_realloc_other(void *arg)
{
	void **v = arg;

	v[1] = heapdev_realloc(v[2], v[0], 3000, 0);
	return NULL;
}

/*
 * Small blocks resized by the inline path (heap.h hd_realloc_fast()):
 * the same blocks, classes and moves as the out-of-line path, which a
 * HEAPDEV_ZERO call takes; a block of another thread's run and a block
 * whose free empties its run take the slow parts.
 */
static void realloc_small(void)
{
	struct heapdev_heap *a, *b, *h;
	unsigned char *v[64], *p, *q;
	void *arg[3];
	int fast, slow, i;
	size_t sz, stride;
	bool kept = true;
	pthread_t t;

	if (heapdev_create(NULL, &a) || heapdev_create(NULL, &b)) {
		T_OK(0, "realloc small: heaps created");
		return;
	}
	/* activate the classes up to 2 KiB in both heaps */
	for (h = a; h; h = h == a ? b : NULL)
		for (sz = 16; sz <= 2048; sz += 16)
			for (i = 0; i < 20; i++)
				heapdev_free(h, heapdev_alloc(h, sz, 0), 0);
	fast = rs_grow(a, 0, 2048);
	slow = rs_grow(b, HEAPDEV_ZERO, 2048);
	T_OK(fast > 0 && fast == slow, "realloc small: a block grown from 16 to "
	     "2048 bytes moves as often inline as out of line (%d, %d)", fast,
	     slow);

	p = heapdev_alloc(a, 100, 0);
	q = p ? heapdev_realloc(a, p, 125, 0) : NULL;
	T_OK(q && q != p && rs_class(q) == hd_class_of(125 + 125 / 4 + 16) &&
	     !heapdev_size(a, q, 0, &sz) && sz == 125, "realloc small: a block "
	     "that grows moves to a class a quarter above its size, HeapSize "
	     "exact");
	stride = q ? hd_gran_run(hd_gran_of((uintptr_t)q), (uintptr_t)q)->stride :
		     0;
	p = q ? heapdev_realloc(a, q, stride - 8, 0) : NULL;
	T_OK(p == q && !heapdev_size(a, p, 0, &sz) && sz == stride - 8,
	     "realloc small: growing up to the slot's stride stays in place");
	q = p && hd_class_of(stride - 16) == rs_class(p) ?
	    heapdev_realloc(a, p, stride - 16, 0) : NULL;
	T_OK(p == q && !heapdev_size(a, q, 0, &sz) && sz == stride - 16,
	     "realloc small: shrinking within the slot's class stays in place");
	p = q ? heapdev_realloc(a, q, 20, 0) : NULL;
	T_OK(p && p != q && rs_class(p) == hd_class_of(20) &&
	     !heapdev_validate(a, NULL, 0),
	     "realloc small: shrinking to a smaller class moves the block");
	heapdev_free(a, p, 0);

	/* a full run of the 512-byte class: the first free into it */
	for (i = 0; i < 64; i++) {
		v[i] = heapdev_alloc(a, 500, 0);
		if (v[i])
			memset(v[i], i, 500);
	}
	for (i = 0; i < 64; i += 2) {
		q = heapdev_realloc(a, v[i], 900, 0);
		if (!q) {
			kept = false;
			continue;
		}
		kept &= q[0] == i && q[499] == i;
		v[i] = q;
	}
	T_OK(kept && !heapdev_validate(a, NULL, 0), "realloc small: blocks "
	     "moved out of full runs keep their bytes, the heap validates");
	for (i = 0; i < 64; i++)
		heapdev_free(a, v[i], 0);
	T_EQ(heapdev_validate(a, NULL, 0), 0,
	     "realloc small: the heap validates after the runs emptied");

	/* a block of this thread's run resized by another thread */
	p = heapdev_alloc(a, 200, 0);
	if (p)
		memset(p, 7, 200);
	arg[0] = p;
	arg[1] = NULL;
	arg[2] = a;
	pthread_create(&t, NULL, rs_realloc_other, arg);
	pthread_join(t, NULL);
	q = arg[1];
	T_OK(q && q[0] == 7 && q[199] == 7 && !heapdev_size(a, q, 0, &sz) &&
	     sz == 3000 && !heapdev_validate(a, NULL, 0), "realloc small: "
	     "another thread resizes a block of this thread's run");
	heapdev_free(a, q, 0);
	heapdev_destroy(a);
	heapdev_destroy(b);
}

int main(int argc, char **argv)
{
	printf("# heapdev unit tests\n");
	metadata_pages();
	classes();
	headers();
	slot_index();
	pagemap();
	locks();
	commit_refused();
	region_index();
	decommit_threshold();
	kept_runs();
	delayed_release();
	delayed_release_by_free();
	remote_frees();
	pending_remote_frees();
	grace_period();
	warm_heaps();
	lazy_commit();
	realloc_growth();
	realloc_small();
	return t_done();
}
