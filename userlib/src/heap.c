// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * heapdev: heaps, their segments, uncommitted ranges and the registry.
 *
 * Segment layout (addresses relative to the segment's base):
 *
 *   0x000  signature (2 words, encoded)
 *   0x7F0  header of the first block; its user data starts at 0x800
 *   ...    blocks and gaps, back to back, up to the end of the mapping
 *
 * A block is a 16-byte header (kind, flags, size; requested size) followed
 * by its data.  A free block also holds two free-list links and a footer
 * (its size, in its last word) so that the next block can find it.  A gap
 * is a pseudo-block for uncommitted pages: its 16-byte header sits in the
 * last bytes of a committed page, the pages after it up to gap->end are
 * uncommitted, and the next block starts exactly at gap->end, a page
 * boundary.  The block after a gap carries HD_F_PREV_GAP and never
 * coalesces backwards.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define HD_SIG		0x4845415044455631ULL	/* "HEAPDEV1" */

static pthread_mutex_t hd_reg_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t hd_proc_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct hd_heap *hd_reg_head, *hd_reg_tail;
static size_t hd_reg_count;
static _Atomic(struct hd_heap *) hd_proc;
static pthread_once_t hd_init_once = PTHREAD_ONCE_INIT;
static struct hd_heap *hd_heap_pool;	/* recycled heap structs */

/*
 * What hd_tls.heap points to before a thread resolved any heap: its @live
 * never matches a handle, not even NULL.
 */
static struct hd_heap hd_null_heap = { .live = 1, .handle = 1 };
__thread struct hd_tls hd_tls __attribute__((tls_model("initial-exec"))) = {
	0, &hd_null_heap, HD_ST_IDLE, NULL, false, 0
};

/*
 * Threads that have called the library, for HeapDestroy to wait on (see
 * hd_quiesce()).  A record lives from a thread's first call to its exit.
 */
struct hd_thr {
	struct hd_tls *tls;
	struct hd_thr *next, *prev;
};

static pthread_mutex_t hd_thr_mutex = PTHREAD_MUTEX_INITIALIZER;
static _Atomic unsigned int hd_aff_next;	/* affinity slot of new threads */
static struct hd_thr *hd_thr_head;
static unsigned int hd_nthr;
static pthread_once_t hd_thr_once = PTHREAD_ONCE_INIT;
static pthread_key_t hd_thr_key;

/* Heaps between the claim of HeapDestroy and their release (hd_reg_mutex). */
static struct hd_heap *hd_dying_head;

/* A lock no heap has: hd_tls.waiting of a thread inside hd_quiesce(). */
static struct hd_lock hd_quiescing;
static uint64_t hd_seed;
static _Atomic uint64_t hd_seed_ctr;

/* ---- process-wide state ---- */

static void hd_atfork_prepare(void)
{
	pthread_mutex_lock(&hd_proc_mutex);
	pthread_mutex_lock(&hd_reg_mutex);
	pthread_mutex_lock(&hd_thr_mutex);
	hd_meta_atfork_prepare();
}

static void hd_atfork_parent(void)
{
	hd_meta_atfork_parent();
	pthread_mutex_unlock(&hd_thr_mutex);
	pthread_mutex_unlock(&hd_reg_mutex);
	pthread_mutex_unlock(&hd_proc_mutex);
}

/* The fork child has one thread: keep its record only. */
static void hd_thr_atfork_child(void)
{
	struct hd_thr *t, *next, *self = NULL;

	pthread_mutex_init(&hd_thr_mutex, NULL);
	for (t = hd_thr_head; t; t = next) {
		next = t->next;
		if (t->tls == &hd_tls)
			self = t;
		else
			hd_meta_free(t, sizeof(*t));
	}
	hd_thr_head = self;
	hd_nthr = !!self;
	if (self)
		self->next = self->prev = NULL;
}

static void hd_heap_free_meta(struct hd_heap *h);
static void hd_heap_struct_put_locked(struct hd_heap *h);

/*
 * The child inherits no heap memory (device mappings are VM_DONTCOPY,
 * memfd mappings MADV_DONTFORK): forget every heap.
 */
static void hd_atfork_child(void)
{
	struct hd_heap *h, *next;
	struct hd_span *sp;

	hd_meta_atfork_child();
	pthread_mutex_init(&hd_reg_mutex, NULL);
	pthread_mutex_init(&hd_proc_mutex, NULL);
	hd_thr_atfork_child();
	/*
	 * A destroy was in progress in another thread: its heaps are left
	 * alone (that thread is not here to finish, and they may be half
	 * torn down).  Their spans may still be in the page map: the spans
	 * stay allocated in the child, and their heap is not live.
	 */
	hd_dying_head = NULL;
	for (h = hd_reg_head; h; h = next) {
		next = h->rnext;
		for (sp = h->segs; sp; sp = sp->next)
			hd_pagemap_clear(sp->base, sp->size);
		for (sp = h->larges; sp; sp = sp->next)
			hd_pagemap_clear(sp->base, sp->size);
		hd_larges_free_all(h, false);
		hd_heap_free_meta(h);
		hd_heap_struct_put_locked(h);
	}
	hd_tls.handle = 0;
	hd_tls.heap = &hd_null_heap;
	hd_reg_head = hd_reg_tail = NULL;
	hd_reg_count = 0;
	atomic_store(&hd_proc, NULL);
	hd_region_atfork_child();
}

static void hd_global_init(void)
{
	if (getrandom(&hd_seed, sizeof(hd_seed), GRND_NONBLOCK) !=
	    sizeof(hd_seed)) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		hd_seed = (uint64_t)ts.tv_nsec * HD_KEYMUL ^
			  (uint64_t)(uintptr_t)&ts ^ (uint64_t)getpid() << 32;
	}
}

/*
 * The fork handlers are registered when the library is loaded, not when
 * the first heap is created: glibc's pthread_atfork() allocates, and when
 * heapdev is the process's malloc (libheapdev-malloc) that allocation
 * would re-enter heap creation.
 */
static void __attribute__((constructor)) hd_register_atfork(void)
{
	pthread_atfork(hd_atfork_prepare, hd_atfork_parent, hd_atfork_child);
}

/* splitmix64 over a process-wide random seed. */
static uint64_t hd_random(void)
{
	uint64_t z = hd_seed + atomic_fetch_add(&hd_seed_ctr, 1) *
		     0x9E3779B97F4A7C15ULL;

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return (z ^ (z >> 31)) | 1;
}

void hd_registry_unlock(void)
{
	pthread_mutex_unlock(&hd_reg_mutex);
}

static void hd_registry_add(struct hd_heap *h, bool front)
{
	pthread_mutex_lock(&hd_reg_mutex);
	if (front) {
		h->rnext = hd_reg_head;
		if (hd_reg_head)
			hd_reg_head->rprev = h;
		else
			hd_reg_tail = h;
		hd_reg_head = h;
	} else {
		h->rprev = hd_reg_tail;
		if (hd_reg_tail)
			hd_reg_tail->rnext = h;
		else
			hd_reg_head = h;
		hd_reg_tail = h;
	}
	hd_reg_count++;
	pthread_mutex_unlock(&hd_reg_mutex);
}

static void hd_registry_del(struct hd_heap *h)
{
	pthread_mutex_lock(&hd_reg_mutex);
	if (h->rprev)
		h->rprev->rnext = h->rnext;
	else
		hd_reg_head = h->rnext;
	if (h->rnext)
		h->rnext->rprev = h->rprev;
	else
		hd_reg_tail = h->rprev;
	hd_reg_count--;
	pthread_mutex_unlock(&hd_reg_mutex);
}

/* Copy up to @cap live heaps into @out; return how many there are. */
size_t hd_heap_refs(struct hd_heap_ref *out, size_t cap)
{
	struct hd_heap *h;
	size_t n = 0, count;

	pthread_mutex_lock(&hd_reg_mutex);
	count = hd_reg_count;
	if (count <= cap)
		for (h = hd_reg_head; h; h = h->rnext) {
			out[n].heap = h;
			out[n++].handle = h->handle;
		}
	pthread_mutex_unlock(&hd_reg_mutex);
	return count;
}

/* ---- window offsets of growable heaps ---- */

int hd_heap_ext_alloc(struct hd_heap *h, uint64_t size, uint64_t *off)
{
	uint32_t i;

	for (i = 0; i < h->next_ext; i++) {
		struct hd_extent *e = &h->ext[i];

		if (e->end - e->start < size)
			continue;
		*off = e->start;
		e->start += size;
		if (e->start == e->end) {
			memmove(e, e + 1, (h->next_ext - i - 1) * sizeof(*e));
			h->next_ext--;
		}
		return 0;
	}
	return -ENOMEM;
}

void hd_heap_ext_free(struct hd_heap *h, uint64_t off, uint64_t size)
{
	uint32_t i = 0;
	struct hd_extent *e;

	while (i < h->next_ext && h->ext[i].start < off)
		i++;
	if (i > 0 && h->ext[i - 1].end == off) {
		h->ext[i - 1].end += size;
		if (i < h->next_ext && h->ext[i].start == off + size) {
			h->ext[i - 1].end = h->ext[i].end;
			memmove(&h->ext[i], &h->ext[i + 1],
				(h->next_ext - i - 1) * sizeof(*e));
			h->next_ext--;
		}
		return;
	}
	if (i < h->next_ext && h->ext[i].start == off + size) {
		h->ext[i].start = off;
		return;
	}
	if (h->next_ext == h->ext_cap) {
		uint32_t cap = h->ext_cap ? 2 * h->ext_cap : 8;

		e = hd_meta_realloc(h->ext, h->ext_cap * sizeof(*e),
				    cap * sizeof(*e));
		if (!e)
			return;	/* the window range is lost, nothing else */
		h->ext = e;
		h->ext_cap = cap;
	}
	memmove(&h->ext[i + 1], &h->ext[i], (h->next_ext - i) * sizeof(*e));
	h->ext[i].start = off;
	h->ext[i].end = off + size;
	h->next_ext++;
}

/* ---- commit and decommit ---- */

int hd_heap_commit(struct hd_heap *h, uintptr_t addr, uint64_t woff,
		   size_t len)
{
	int err = h->bh.be->commit(&h->bh, addr, woff, len);

	if (err) {
		hd_commit_err = err;	/* for hd_alloc_errno() */
		hd_dbg("heapdev: heap %p: commit of %zu bytes failed: %s",
		       (void *)h->handle, len, strerror(-err));
	}
	return err;
}

int hd_heap_decommit(struct hd_heap *h, uintptr_t addr, uint64_t woff,
		     size_t len)
{
	int err = h->bh.be->decommit(&h->bh, addr, woff, len);

	if (err)
		hd_dbg("heapdev: heap %p: decommit of %zu bytes failed: %s",
		       (void *)h->handle, len, strerror(-err));
	return err;
}

/* ---- gaps ---- */

/* Index of the last gap starting at or before @addr, or -1. */
static int hd_gap_index(const struct hd_seg *s, uintptr_t addr)
{
	int lo = 0, hi = (int)s->ngaps - 1, best = -1;

	while (lo <= hi) {
		int mid = (lo + hi) / 2;

		if (s->gaps[mid].start <= addr) {
			best = mid;
			lo = mid + 1;
		} else {
			hi = mid - 1;
		}
	}
	return best;
}

/* Whether the byte at @addr (inside the segment) is committed. */
bool hd_seg_committed(const struct hd_seg *s, uintptr_t addr)
{
	uintptr_t i = (addr - s->sp.base) >> HD_PAGE_SHIFT;

	if (unlikely(addr - s->sp.base >= s->sp.size))
		return false;
	return (s->cmap[i >> 6] >> (i & 63)) & 1;
}

/* Mark the pages of [addr, addr + len) committed or not in @s->cmap. */
static void hd_cmap_set(struct hd_seg *s, uintptr_t addr, size_t len,
			bool committed)
{
	uintptr_t i = (addr - s->sp.base) >> HD_PAGE_SHIFT;
	uintptr_t end = i + (len >> HD_PAGE_SHIFT);

	for (; i < end && (i & 63); i++)
		s->cmap[i >> 6] = committed ? s->cmap[i >> 6] | 1ULL << (i & 63) :
				  s->cmap[i >> 6] & ~(1ULL << (i & 63));
	for (; i + 64 <= end; i += 64)
		s->cmap[i >> 6] = committed ? ~0ULL : 0;
	for (; i < end; i++)
		s->cmap[i >> 6] = committed ? s->cmap[i >> 6] | 1ULL << (i & 63) :
				  s->cmap[i >> 6] & ~(1ULL << (i & 63));
}

struct hd_gap *hd_gap_find(struct hd_seg *s, uintptr_t start)
{
	int i = hd_gap_index(s, start);

	return i >= 0 && s->gaps[i].start == start ? &s->gaps[i] : NULL;
}

/* The gap ending at @end, or NULL. */
static struct hd_gap *hd_gap_ending(struct hd_seg *s, uintptr_t end)
{
	int i = hd_gap_index(s, end - 1);

	return i >= 0 && s->gaps[i].end == end ? &s->gaps[i] : NULL;
}

/* Make sure one more gap fits in the array.  Return: 0 or -ENOMEM. */
static int hd_gap_reserve(struct hd_seg *s)
{
	if (s->ngaps == s->gcap) {
		uint32_t cap = s->gcap ? 2 * s->gcap : 4;
		struct hd_gap *g = hd_meta_realloc(s->gaps,
						   s->gcap * sizeof(*g),
						   cap * sizeof(*g));

		if (!g)
			return -ENOMEM;
		s->gaps = g;
		s->gcap = cap;
	}
	return 0;
}

static int hd_gap_insert(struct hd_seg *s, uintptr_t start, uintptr_t end)
{
	int i = hd_gap_index(s, start) + 1;

	if (hd_gap_reserve(s))
		return -ENOMEM;
	memmove(&s->gaps[i + 1], &s->gaps[i],
		(s->ngaps - i) * sizeof(*s->gaps));
	s->gaps[i].start = start;
	s->gaps[i].end = end;
	s->ngaps++;
	return 0;
}

static void hd_gap_remove(struct hd_seg *s, struct hd_gap *g)
{
	size_t i = g - s->gaps;

	memmove(g, g + 1, (s->ngaps - i - 1) * sizeof(*g));
	s->ngaps--;
}

static void hd_gap_write(struct hd_heap *h, uintptr_t start, uintptr_t end,
			 unsigned int flags)
{
	hd_wr(h, start, hd_w0(HD_K_GAP, flags, end - start));
	hd_wr(h, start + 8, hd_w1(0) | HD_K_GAP);
}

static uint64_t hd_woff(const struct hd_seg *s, uintptr_t addr)
{
	return s->sp.woff + (addr - s->sp.base);
}

/**
 * hd_commit_gap() - commit the first pages of a gap
 * @h: the heap (lock held)
 * @s: the segment
 * @g: the gap
 * @bytes: page multiple; the whole gap when at least its size
 *
 * The committed pages become a free block, merged with free neighbours.
 * Return: 0 or the backend's error (nothing changed).
 */
int hd_commit_gap(struct hd_heap *h, struct hd_seg *s, struct hd_gap *g,
		  size_t bytes)
{
	uintptr_t start = g->start, pages = start + HD_HDR, b;
	size_t len = g->end - pages, size;
	unsigned int flags = hd_w0_flags(hd_rd(h, start));
	bool whole = bytes >= len;
	int err;

	if (whole)
		bytes = len;
	err = hd_heap_commit(h, pages, hd_woff(s, pages), bytes);
	if (err)
		return err;
	hd_cmap_set(s, pages, bytes, true);
	s->committed += bytes;
	if (whole) {
		size = g->end - start;
		hd_gap_remove(s, g);
	} else {
		size = bytes;
		g->start = start + bytes;
		hd_gap_write(h, g->start, g->end, HD_F_PREV_FREE);
	}
	b = hd_free_coalesce(h, s, start, &size, &flags);
	hd_make_free(h, s, b, size, flags);
	return 0;
}

/**
 * hd_decommit_free() - return the whole pages of a free block
 * @h: the heap (lock held)
 * @s: the segment
 * @b: a free block on the free lists
 * @size: its size
 * @min: decommit only if at least this many bytes are released
 *
 * Splits the block into an optional free head, a gap (merged with adjacent
 * gaps) and an optional free tail.  Return: bytes released.
 */
size_t hd_decommit_free(struct hd_heap *h, struct hd_seg *s, uintptr_t b,
			size_t size, size_t min)
{
	uintptr_t f1 = b + size, pa, pb, gstart, gend;
	unsigned int flags = hd_w0_flags(hd_rd(h, b)), gflags;
	struct hd_gap *pg = NULL, *ng = NULL;
	size_t head, tail;

	if (flags & HD_F_PREV_GAP) {
		pg = hd_gap_ending(s, b);
		if (!pg)
			return 0;
		pa = b;
		head = 0;
	} else {
		pa = (b + HD_HDR + HD_PAGE - 1) & ~(HD_PAGE - 1);
		head = pa - HD_HDR - b;
		if (head && head < HD_MIN_BLOCK) {
			pa += HD_PAGE;
			head += HD_PAGE;
		}
	}
	if (f1 == s->end) {
		pb = f1;
		tail = 0;
		gend = f1;
	} else if (hd_w0_kind(hd_rd(h, f1)) == HD_K_GAP &&
		   hd_gap_find(s, f1)) {
		ng = hd_gap_find(s, f1);
		pb = f1 + HD_HDR;
		tail = 0;
		gend = ng->end;
	} else {
		pb = f1 & ~(HD_PAGE - 1);
		tail = f1 - pb;
		if (tail && tail < HD_MIN_BLOCK) {
			pb -= HD_PAGE;
			tail += HD_PAGE;
		}
		gend = pb;
	}
	if (pb <= pa || pb - pa < min)
		return 0;
	if (!pg && !ng && hd_gap_reserve(s))
		return 0;
	hd_tlsf_remove(h, b, size);
	if (hd_heap_decommit(h, pa, hd_woff(s, pa), pb - pa)) {
		hd_tlsf_insert(h, b, size);
		return 0;
	}
	hd_cmap_set(s, pa, pb - pa, false);
	s->committed -= pb - pa;

	gstart = pg ? pg->start : pa - HD_HDR;
	gflags = head ? HD_F_PREV_FREE : pg ? hd_w0_flags(hd_rd(h, gstart)) :
		 flags;
	hd_gap_write(h, gstart, gend, gflags);
	if (pg && ng) {
		pg->end = ng->end;
		hd_gap_remove(s, ng);
	} else if (pg) {
		pg->end = gend;
	} else if (ng) {
		ng->start = gstart;
	} else {
		hd_gap_insert(s, gstart, gend);	/* cannot fail: reserved */
	}
	if (head)
		hd_make_free(h, s, b, head, flags);
	if (tail)
		hd_make_free(h, s, pb, tail, HD_F_PREV_GAP);
	else if (!ng && gend < s->end)
		hd_set_prev(h, s, gend, HD_F_PREV_GAP, HD_F_PREV_FREE);
	return pb - pa;
}

/* ---- segments ---- */

static void hd_seg_link(struct hd_heap *h, struct hd_seg *s)
{
	struct hd_span *sp = &s->sp;

	sp->prev = h->segs_tail;
	sp->next = NULL;
	if (h->segs_tail)
		h->segs_tail->next = sp;
	else
		h->segs = sp;
	h->segs_tail = sp;
	s->index = h->nsegs++;
}

static void hd_seg_unlink(struct hd_heap *h, struct hd_seg *s)
{
	struct hd_span *sp = &s->sp;
	uint32_t i = 0;

	if (sp->prev)
		sp->prev->next = sp->next;
	else
		h->segs = sp->next;
	if (sp->next)
		sp->next->prev = sp->prev;
	else
		h->segs_tail = sp->prev;
	h->nsegs--;
	for (sp = h->segs; sp; sp = sp->next)
		((struct hd_seg *)sp)->index = i++;
}

/*
 * Span structs are never given back to libc: a call that looked a pointer
 * up in the page map just before its span went away (a heap destroyed by
 * another thread, a bad pointer racing with the release of its segment)
 * may still read the span's fields, and its @heap, which always points to
 * a heap struct (heap structs are never freed either).
 */
static pthread_mutex_t hd_span_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct hd_span *hd_seg_pool, *hd_large_pool;

static struct hd_span **hd_span_pool(int kind)
{
	return kind == HD_SPAN_LARGE ? &hd_large_pool : &hd_seg_pool;
}

/* A zeroed span struct of @size bytes for @kind, @heap left valid. */
void *hd_span_get(int kind, size_t size)
{
	struct hd_span **pool = hd_span_pool(kind), *sp;

	pthread_mutex_lock(&hd_span_mutex);
	sp = *pool;
	if (sp)
		*pool = sp->next;
	pthread_mutex_unlock(&hd_span_mutex);
	if (!sp) {
		sp = hd_meta_alloc(size);
		if (sp)
			sp->heap = &hd_null_heap;
		return sp;
	}
	/* Everything but @heap, which a stale reader may follow. */
	sp->kind = 0;
	memset(&sp->handle, 0, size - offsetof(struct hd_span, handle));
	return sp;
}

void hd_span_put(struct hd_span *sp)
{
	struct hd_span **pool = hd_span_pool(sp->kind);

	pthread_mutex_lock(&hd_span_mutex);
	sp->next = *pool;
	*pool = sp;
	pthread_mutex_unlock(&hd_span_mutex);
}

/* Bytes of the commit bitmap of a segment of @size bytes. */
static size_t hd_cmap_bytes(size_t size)
{
	return ((size >> HD_PAGE_SHIFT) + 63) / 64 * sizeof(uint64_t);
}

static void hd_seg_free_meta(struct hd_seg *s)
{
	hd_meta_free(s->gaps, s->gcap * sizeof(*s->gaps));
	hd_meta_free(s->gtab, (s->sp.size >> HD_GRANULE_SHIFT) *
		     sizeof(*s->gtab));
	hd_meta_free(s->cmap, hd_cmap_bytes(s->sp.size));
	s->gcap = 0;
	s->gaps = NULL;
	s->gtab = NULL;
	s->cmap = NULL;
	hd_span_put(&s->sp);
}

/*
 * Create a segment of @size bytes with its first @commit bytes committed,
 * all of it one free block followed by a gap for the rest.
 */
static struct hd_seg *hd_seg_new(struct hd_heap *h, size_t size,
				 size_t commit, int *errp)
{
	struct hd_seg *s = hd_span_get(HD_SPAN_SEG, sizeof(*s));
	uint64_t woff = 0;
	uintptr_t base;
	int err = -ENOMEM;

	if (!s)
		goto err;
	if (!h->fixed && hd_heap_ext_alloc(h, size, &woff))
		goto err_free;
	err = h->bh.be->map(&h->bh, woff, size, &base);
	if (err)
		goto err_ext;
	err = hd_heap_commit(h, base, woff, commit);
	if (err)
		goto err_unmap;
	s->sp.kind = h->fixed ? HD_SPAN_FSEG : HD_SPAN_SEG;
	s->sp.heap = h;
	s->sp.handle = h->handle ? h->handle : base;
	s->sp.base = base;
	s->sp.size = size;
	s->sp.woff = woff;
	s->sp.seq = ++h->seq;
	s->area = base + HD_SEG_HDR - HD_HDR;
	s->end = base + size;
	s->committed = commit;
	s->cmap = hd_meta_alloc(hd_cmap_bytes(size));
	if (!s->cmap)
		goto err_decommit;
	hd_cmap_set(s, base, commit, true);
	if (!h->fixed) {
		size_t g, n = size >> HD_GRANULE_SHIFT;

		s->gtab = hd_meta_alloc(n * sizeof(*s->gtab));
		if (!s->gtab)
			goto err_decommit;
		for (g = 0; g < n; g++)
			s->gtab[g] = &hd_dummy_run;
	}
	if (commit < size) {
		err = hd_gap_insert(s, base + commit - HD_HDR, s->end);
		if (err)
			goto err_decommit;
		hd_gap_write(h, base + commit - HD_HDR, s->end,
			     HD_F_PREV_FREE);
	}
	err = hd_pagemap_set(base, size, &s->sp);
	if (err)
		goto err_decommit;
	if (!h->handle)
		h->handle = base;
	hd_wr(h, base, HD_SIG);
	hd_wr(h, base + 8, (uint64_t)h->handle);
	hd_make_free(h, s, s->area,
		     (commit < size ? base + commit - HD_HDR : s->end) - s->area,
		     0);
	hd_seg_link(h, s);
	h->reserved += size;
	return s;

err_decommit:
	hd_heap_decommit(h, base, woff, commit);
err_unmap:
	h->bh.be->unmap(&h->bh, base, size);
err_ext:
	if (!h->fixed)
		hd_heap_ext_free(h, woff, size);
err_free:
	if (s) {
		s->sp.kind = HD_SPAN_SEG;
		hd_seg_free_meta(s);
	}
err:
	*errp = err;
	return NULL;
}

/* Whether the segment's signature is intact. */
bool hd_seg_sig_ok(const struct hd_heap *h, const struct hd_seg *s)
{
	return hd_rd(h, s->sp.base) == HD_SIG &&
	       hd_rd(h, s->sp.base + 8) == (uint64_t)h->handle;
}

/*
 * Whether the block chain of @s runs from its first block to its end
 * through sane headers in committed memory.  A segment whose chain an
 * overflow damaged is not released: its free blocks could not all be
 * taken off the free lists, which would then point into unmapped memory.
 */
static bool hd_seg_chain_ok(const struct hd_heap *h, const struct hd_seg *s)
{
	uintptr_t b = s->area;

	while (b < s->end) {
		uint64_t w;

		if (!hd_seg_committed(s, b))
			return false;
		w = hd_rd(h, b);
		if (!hd_w0_ok(w) || hd_w0_size(w) < HD_MIN_BLOCK ||
		    hd_w0_size(w) > s->end - b)
			return false;
		b += hd_w0_size(w);
	}
	return true;
}

/*
 * Give a secondary segment without busy blocks back: its free blocks leave
 * the free lists, its committed pages go back to the kernel, its mapping
 * and window range are released.
 */
static void hd_seg_release(struct hd_heap *h, struct hd_seg *s)
{
	uintptr_t b = s->area, cstart = s->sp.base;
	uint32_t i;

	if (!hd_seg_chain_ok(h, s)) {
		hd_corrupt(h, (void *)s->sp.base, "damaged block chain in an "
			   "empty segment (kept mapped)");
		return;
	}
	while (b < s->end) {
		uint64_t w = hd_rd(h, b);
		size_t size = hd_w0_size(w);

		if (hd_w0_kind(w) == HD_K_MFREE)
			hd_tlsf_remove(h, b, size);
		b += size;
	}
	hd_pagemap_clear(s->sp.base, s->sp.size);
	for (i = 0; i <= s->ngaps; i++) {
		uintptr_t cend = i < s->ngaps ? s->gaps[i].start + HD_HDR :
			s->end;

		if (cend > cstart)
			hd_heap_decommit(h, cstart, hd_woff(s, cstart),
					 cend - cstart);
		if (i < s->ngaps)
			cstart = s->gaps[i].end;
	}
	h->bh.be->unmap(&h->bh, s->sp.base, s->sp.size);
	hd_heap_ext_free(h, s->sp.woff, s->sp.size);
	h->reserved -= s->sp.size;
	hd_seg_unlink(h, s);
	hd_seg_free_meta(s);
}

/*
 * Release empty secondary segments: all of them with @all, otherwise all
 * but one, which stays as a spare so that a heap oscillating around a
 * segment boundary does not map and unmap it over and over.
 */
void hd_release_empty_segments(struct hd_heap *h, bool all)
{
	struct hd_span *sp, *next;
	bool spare = all;

	if (h->fixed || !h->segs)
		return;
	for (sp = h->segs->next; sp; sp = next) {
		struct hd_seg *s = (struct hd_seg *)sp;

		next = sp->next;
		if (s->nbusy)
			continue;
		if (!spare) {
			spare = true;
			continue;
		}
		hd_seg_release(h, s);
	}
}

/* A segment just lost its last busy block. */
void hd_seg_maybe_release(struct hd_heap *h, struct hd_seg *s)
{
	if (&s->sp != h->segs)
		hd_release_empty_segments(h, false);
}

/* Bytes to commit at once when a heap grows. */
static size_t hd_grow_step(const struct hd_heap *h)
{
	size_t step = h->bh.committed / 8;

	if (step < HD_GROW_MIN)
		step = HD_GROW_MIN;
	if (step > (4UL << 20))
		step = 4UL << 20;
	return step & ~(HD_PAGE - 1);
}

static size_t hd_round_page(size_t n)
{
	return (n + HD_PAGE - 1) & ~(HD_PAGE - 1);
}

/* Try to get a free block of @need bytes out of one gap. */
static int hd_grow_gap(struct hd_heap *h, struct hd_seg *s, struct hd_gap *g,
		       size_t need)
{
	uint64_t gw = hd_rd(h, g->start);
	size_t prev = 0, next = 0, pages = g->end - g->start - HD_HDR, bytes;

	if (hd_w0_flags(gw) & HD_F_PREV_FREE)
		prev = hd_w0_size(hd_rd(h, g->start - 8));
	if (g->end < s->end) {
		uint64_t nw = hd_rd(h, g->end);

		if (hd_w0_kind(nw) == HD_K_MFREE)
			next = hd_w0_size(nw);
	}
	if (prev + (g->end - g->start) + next < need)
		return -ENOSPC;
	bytes = hd_round_page(need > prev ? need - prev : HD_PAGE);
	if (bytes < hd_grow_step(h))
		bytes = hd_grow_step(h);
	if (bytes >= pages || prev + bytes < need)
		bytes = pages;
	return hd_commit_gap(h, s, g, bytes);
}

/**
 * hd_grow() - make a free block of at least @need bytes exist
 * @h: the heap (lock held)
 * @need: block size
 *
 * Commits pages of a gap that can provide it, or (growable heaps) maps a
 * new segment.  Return: 0, -ENOMEM.
 */
int hd_grow(struct hd_heap *h, size_t need)
{
	struct hd_span *sp;
	size_t size, commit;
	struct hd_seg *s;
	int err = -ENOMEM;
	uint32_t i;

	for (sp = h->segs; sp; sp = sp->next) {
		s = (struct hd_seg *)sp;
		for (i = 0; i < s->ngaps; i++) {
			err = hd_grow_gap(h, s, &s->gaps[i], need);
			if (err != -ENOSPC)
				return err;
		}
	}
	if (h->fixed)
		return -ENOMEM;
	size = (need + HD_SEG_HDR + HD_PAGE + HD_CHUNK - 1) & ~(HD_CHUNK - 1);
	if (size < h->next_seg)
		size = h->next_seg;
	commit = hd_round_page(need + HD_SEG_HDR);
	if (commit < hd_grow_step(h))
		commit = hd_grow_step(h);
	if (commit > size)
		commit = size;
	if (!hd_seg_new(h, size, commit, &err))
		return err;
	if (h->next_seg < HD_SEG_MAX)
		h->next_seg *= 2;
	return 0;
}

/* ---- heaps ---- */

/* A zeroed heap struct, recycled when possible. */
static struct hd_heap *hd_heap_struct_get(void)
{
	struct hd_heap *h;

	pthread_mutex_lock(&hd_reg_mutex);
	h = hd_heap_pool;
	if (h)
		hd_heap_pool = h->rnext;
	pthread_mutex_unlock(&hd_reg_mutex);
	if (!h) {
		h = hd_meta_alloc(sizeof(*h));
		if (!h)
			return NULL;
		atomic_init(&h->live, 0);
	}
	/*
	 * Threads may still read @live through their stale per-thread
	 * cache: it stays 0 (atomic) until the heap is ready.
	 */
	memset(&h->handle, 0, sizeof(*h) - offsetof(struct hd_heap, handle));
	return h;
}

/* Called with hd_reg_mutex held (or in the single-threaded fork child). */
static void hd_heap_struct_put_locked(struct hd_heap *h)
{
	atomic_store_explicit(&h->live, 0, memory_order_release);
	h->rnext = hd_heap_pool;
	hd_heap_pool = h;
}

static void hd_heap_struct_put(struct hd_heap *h)
{
	pthread_mutex_lock(&hd_reg_mutex);
	hd_heap_struct_put_locked(h);
	pthread_mutex_unlock(&hd_reg_mutex);
}

static void hd_heap_free_meta(struct hd_heap *h)
{
	struct hd_span *sp, *next;

	for (sp = h->segs; sp; sp = next) {
		next = sp->next;
		hd_seg_free_meta((struct hd_seg *)sp);
	}
	hd_runs_free_all(h);
	hd_meta_free(h->ext, h->ext_cap * sizeof(*h->ext));
	h->ext = NULL;
	h->ext_cap = 0;
	h->segs = NULL;
}

/* The live heap whose handle is @hh (page map lookup), or NULL. */
struct hd_heap *hd_heap_get_slow(const void *hh)
{
	struct hd_span *sp = hd_span_of((uintptr_t)hh);

	if (!sp || sp->base != (uintptr_t)hh ||
	    hd_live(sp->heap) != (uintptr_t)hh)
		return NULL;
	hd_use(sp->heap);
	hd_tls.heap = sp->heap;
	hd_tls.handle = (uintptr_t)hh;
	return sp->heap;
}

/**
 * hd_heap_create() - create a heap
 * @flags: HEAPDEV_NO_SERIALIZE, HEAPDEV_EXEC and the Win32
 *	HEAP_GENERATE_EXCEPTIONS bit
 * @initial: bytes to commit now
 * @maximum: 0 (growable) or the fixed size
 * @backend: HEAPDEV_BACKEND_*
 * @out: the heap
 *
 * Return: 0 or a negative errno (see heapdev_create()).
 */
int hd_heap_create(uint32_t flags, uint64_t initial, uint64_t maximum,
		   int backend, struct hd_heap **out)
{
	const struct hd_backend *be;
	struct hd_heap *h;
	size_t size, commit;
	int err;

	pthread_once(&hd_init_once, hd_global_init);
	if (initial > HD_WINDOW || maximum > HD_WINDOW)
		return -ENOMEM;
	err = hd_backend_select(backend, &be);
	if (err)
		return err;
	h = hd_heap_struct_get();
	if (!h)
		return -ENOMEM;
	h->fixed = maximum != 0;
	h->flags = flags | (h->fixed ? HD_HF_FIXED : 0);
	h->secret = hd_random();
	h->lsecret = hd_random() & ~0xFULL;
	hd_lock_init(&h->lock, !(flags & HEAPDEV_NO_SERIALIZE));
	hd_lock_init(&h->lfh_lock, !(flags & HEAPDEV_NO_SERIALIZE));
	hd_classes_init(h);
	h->bh.be = be;
	h->bh.exec = flags & HEAPDEV_EXEC;
	h->next_seg = HD_SEG_FIRST;

	if (h->fixed) {
		size = hd_round_page(maximum > initial ? maximum : initial);
		commit = hd_round_page(initial);
	} else {
		size = (initial + HD_SEG_HDR + HD_PAGE + HD_CHUNK - 1) &
		       ~(HD_CHUNK - 1);
		if (size < HD_SEG_FIRST)
			size = HD_SEG_FIRST;
		commit = hd_round_page(initial);
		h->ext = hd_meta_alloc(sizeof(*h->ext));
		if (!h->ext) {
			err = -ENOMEM;
			goto err_free;
		}
		h->ext[0].start = 0;
		h->ext[0].end = HD_WINDOW;
		h->next_ext = h->ext_cap = 1;
	}
	if (commit < 2 * HD_PAGE)
		commit = 2 * HD_PAGE;
	if (commit > size)
		commit = size;

	err = be->create(&h->bh, h->bh.exec, h->fixed ? size : 0);
	if (err)
		goto err_free;
	if (!hd_seg_new(h, size, commit, &err))
		goto err_destroy;
	hd_registry_add(h, false);
	atomic_store_explicit(&h->live, h->handle, memory_order_release);
	*out = h;
	return 0;

err_destroy:
	be->destroy(&h->bh);
err_free:
	hd_meta_free(h->ext, h->ext_cap * sizeof(*h->ext));
	h->ext = NULL;
	h->ext_cap = 0;
	hd_heap_struct_put(h);
	return err;
}

/* ---- destroying a heap that other threads may be using ---- */

static void hd_thread_exit(void *arg)
{
	struct hd_thr *t = arg;

	pthread_mutex_lock(&hd_thr_mutex);
	if (t->prev)
		t->prev->next = t->next;
	else
		hd_thr_head = t->next;
	if (t->next)
		t->next->prev = t->prev;
	hd_nthr--;
	pthread_mutex_unlock(&hd_thr_mutex);
	hd_meta_free(t, sizeof(*t));
	/*
	 * A call from a later destructor registers the thread again: it
	 * must miss the per-thread cache, which would skip that.
	 */
	hd_tls.reg = false;
	hd_tls.handle = 0;
	hd_tls.heap = &hd_null_heap;
}

static void hd_thr_key_init(void)
{
	pthread_key_create(&hd_thr_key, hd_thread_exit);
}

/*
 * The first call of a thread (before the call looks at any heap): add it
 * to the threads HeapDestroy waits on.  Without memory for the record the
 * thread stays unregistered, and HeapDestroy cannot know of its call.
 */
void hd_thread_register(void)
{
	struct hd_thr *t = hd_meta_alloc(sizeof(*t));

	if (!t)
		return;
	pthread_once(&hd_thr_once, hd_thr_key_init);
	t->tls = &hd_tls;
	pthread_mutex_lock(&hd_thr_mutex);
	t->next = hd_thr_head;
	if (hd_thr_head)
		hd_thr_head->prev = t;
	hd_thr_head = t;
	hd_nthr++;
	pthread_mutex_unlock(&hd_thr_mutex);
	pthread_setspecific(hd_thr_key, t);
	hd_tls.aff = (uint8_t)(atomic_fetch_add_explicit(&hd_aff_next, 1,
							  memory_order_relaxed) %
			       HD_NAFF);
	hd_tls.reg = true;
}

/*
 * Wait until thread @tls has left the call it is in, unless that call
 * works on another heap or sleeps on another heap's lock.  The waiter marks
 * the state it saw (HD_ST_MARK); the owner's next store (naming its heap,
 * leaving, entering another call) clears the mark.  A call enters only
 * once and names its heap only after seeing it live, so an unmarked
 * "unknown heap" after a marked one is a new call, which cannot find @h.
 */
static void hd_wait_thread(const struct hd_heap *h, struct hd_tls *tls)
{
	struct timespec ts = { 0, 50 * 1000 };
	uintptr_t v = atomic_load_explicit(&tls->state, memory_order_seq_cst);
	unsigned int spins = 0;
	bool marked_any = false;

	for (;;) {
		uintptr_t heap = v & ~(HD_ST_CALL | HD_ST_MARK);
		struct hd_lock *w = atomic_load_explicit(&tls->waiting,
							 memory_order_acquire);

		if ((v & ~HD_ST_MARK) == HD_ST_IDLE ||
		    (heap && heap != (uintptr_t)h))
			return;
		if (w && w != &h->lock && w != &h->lfh_lock)
			return;
		if (!heap && !(v & HD_ST_MARK) && marked_any)
			return;
		if (!(v & HD_ST_MARK)) {
			if (atomic_compare_exchange_strong(&tls->state, &v,
							   v | HD_ST_MARK)) {
				marked_any = !heap;
				v |= HD_ST_MARK;
			}
			continue;
		}
		/* Most calls last well under a microsecond. */
		if (++spins < 1000)
			__builtin_ia32_pause();
		else if (spins < 1100)
			sched_yield();
		else
			nanosleep(&ts, NULL);
		v = atomic_load_explicit(&tls->state, memory_order_seq_cst);
	}
}

/**
 * hd_quiesce() - wait for the calls that may still use a claimed heap
 * @h: a heap whose @live was cleared
 *
 * Every thread's hd_enter() stores "in a call, heap unknown" before it
 * looks at a heap or the page map, and a call names its heap (hd_use())
 * only after it saw that heap's @live;
 * hd_heavy_barrier() orders those stores against the claim.  So a thread
 * either was inside a call that may work on @h when the claim happened,
 * and is waited for here until it leaves that call, or it sees @live
 * cleared and fails.  Not waited for: this thread, calls on other heaps,
 * threads asleep on another heap's lock and threads inside a destroy of
 * their own.  What a failing call may still read (the page map, span and
 * heap structs) is never freed.  Without other threads, nothing to do.
 */
static void hd_quiesce(const struct hd_heap *h)
{
	struct hd_thr *t;

	/* release: see hd_futex_wait_on() */
	atomic_store_explicit(&hd_tls.waiting, &hd_quiescing,
			      memory_order_release);
	pthread_mutex_lock(&hd_thr_mutex);
	if (hd_nthr > 1) {
		hd_heavy_barrier();
		for (t = hd_thr_head; t; t = t->next)
			if (t->tls != &hd_tls)
				hd_wait_thread(h, t->tls);
	}
	pthread_mutex_unlock(&hd_thr_mutex);
	atomic_store_explicit(&hd_tls.waiting, NULL, memory_order_relaxed);
}

/* Take every span of @h out of the page map. */
static void hd_spans_unregister(struct hd_heap *h)
{
	struct hd_span *sp;

	for (sp = h->segs; sp; sp = sp->next)
		hd_pagemap_clear(sp->base, sp->size);
	for (sp = h->larges; sp; sp = sp->next)
		hd_pagemap_clear(sp->base, sp->size);
}

static void hd_dying_add(struct hd_heap *h)
{
	pthread_mutex_lock(&hd_reg_mutex);
	h->dnext = hd_dying_head;
	hd_dying_head = h;
	pthread_mutex_unlock(&hd_reg_mutex);
}

/* Off the dying list and back to the pool, in one critical section. */
static void hd_dying_release(struct hd_heap *h)
{
	struct hd_heap **pp;

	pthread_mutex_lock(&hd_reg_mutex);
	for (pp = &hd_dying_head; *pp; pp = &(*pp)->dnext) {
		if (*pp == h) {
			*pp = h->dnext;
			break;
		}
	}
	hd_heap_struct_put_locked(h);
	pthread_mutex_unlock(&hd_reg_mutex);
}

/**
 * hd_heap_dying() - a heap that HeapDestroy has claimed but not released
 * @hh: its handle
 *
 * Only HeapUnlock looks there: a thread that holds HeapLock while another
 * destroys the heap must be able to release the lock that the destroy's
 * wait depends on.  Return: the heap, with hd_reg_mutex held (the caller
 * releases it with hd_registry_unlock()), or NULL (nothing held).
 */
struct hd_heap *hd_heap_dying(const void *hh)
{
	struct hd_heap *h;

	pthread_mutex_lock(&hd_reg_mutex);
	for (h = hd_dying_head; h; h = h->dnext)
		if (h->handle == (uintptr_t)hh)
			return h;
	pthread_mutex_unlock(&hd_reg_mutex);
	return NULL;
}

/**
 * hd_heap_destroy() - release a heap at once
 * @h: a heap that is not the process heap
 * @hh: the handle it was looked up with
 *
 * Claims the heap (lookups fail from then on; of two racing destroys one
 * gets -EBADF), gives up the caller's HeapLock holds, waits for the calls
 * on the heap in progress in other threads (hd_quiesce()), takes the
 * spans out of the page map, unmaps them and lets the backend free every
 * page in one call.  No block is visited.
 */
int hd_heap_destroy(struct hd_heap *h, uintptr_t hh)
{
	uintptr_t want = hh;
	struct hd_span *sp;

	if (h->process_heap)
		return -EBUSY;
	if (!atomic_compare_exchange_strong(&h->live, &want, 0))
		return -EBADF;
	hd_dying_add(h);
	hd_registry_del(h);
	if (!(h->flags & HEAPDEV_NO_SERIALIZE))
		hd_lock_drop(&h->lock);
	hd_quiesce(h);
	hd_spans_unregister(h);
	/*
	 * The backend releases every page first (one call), so that the
	 * unmaps below find no page left to zap.
	 */
	h->bh.be->destroy(&h->bh);
	for (sp = h->segs; sp; sp = sp->next)
		h->bh.be->unmap(&h->bh, sp->base, sp->size);
	hd_larges_free_all(h, true);
	hd_heap_free_meta(h);
	hd_dying_release(h);
	return 0;
}

/**
 * hd_process_heap() - the process heap, created on first use
 * @err: out: the creation error when NULL is returned
 */
struct hd_heap *hd_process_heap(int *err)
{
	struct hd_heap *h = atomic_load_explicit(&hd_proc,
						 memory_order_acquire);

	if (likely(h))
		return h;
	pthread_mutex_lock(&hd_proc_mutex);
	h = atomic_load_explicit(&hd_proc, memory_order_relaxed);
	if (!h) {
		*err = hd_heap_create(0, 0, 0, HEAPDEV_BACKEND_DEFAULT, &h);
		if (!*err) {
			h->process_heap = true;
			hd_registry_del(h);
			hd_registry_add(h, true);
			atomic_store_explicit(&hd_proc, h,
					      memory_order_release);
		} else {
			h = NULL;
		}
	}
	pthread_mutex_unlock(&hd_proc_mutex);
	return h;
}

/* Copy the handles of the live heaps (process heap first) when they fit. */
size_t hd_heap_handles(void **out, size_t cap)
{
	struct hd_heap *h;
	size_t n = 0, count;

	pthread_mutex_lock(&hd_reg_mutex);
	count = hd_reg_count;
	if (out && count <= cap)
		for (h = hd_reg_head; h; h = h->rnext)
			out[n++] = (void *)h->handle;
	pthread_mutex_unlock(&hd_reg_mutex);
	return count;
}
