// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * heapdev: segments, their uncommitted ranges (gaps) and their growth.
 *
 * Layout and gaps: see medium.h.  Gaps are kept in a sorted array per
 * segment, and a bitmap of committed pages answers "is this address
 * committed?" in O(1) for pointer checks.
 */
#include <errno.h>

#include "medium.h"

#define HD_SIG		0x4845415044455631ULL	/* "HEAPDEV1" */
#define HD_GROW_MIN	(64UL << 10)	/* smallest commit when growing */

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

static void hd_gap_write(struct hd_mheap *h, uintptr_t start, uintptr_t end,
			 unsigned int flags)
{
	hd_wr(h->c, start, hd_w0(HD_K_GAP, flags, end - start));
	hd_wr(h->c, start + 8, hd_w1(0) | HD_K_GAP);
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
int hd_commit_gap(struct hd_mheap *h, struct hd_seg *s, struct hd_gap *g,
		  size_t bytes)
{
	uintptr_t start = g->start, pages = start + HD_HDR, b;
	size_t len = g->end - pages, size;
	unsigned int flags = hd_w0_flags(hd_rd(h->c, start));
	bool whole = bytes >= len;
	int err;

	if (whole)
		bytes = len;
	err = hd_commit(h->c, pages, hd_woff(s, pages), bytes, false);
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
size_t hd_decommit_free(struct hd_mheap *h, struct hd_seg *s, uintptr_t b,
			size_t size, size_t min)
{
	uintptr_t f1 = b + size, pa, pb, gstart, gend;
	unsigned int flags = hd_w0_flags(hd_rd(h->c, b)), gflags;
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
	} else if (hd_w0_kind(hd_rd(h->c, f1)) == HD_K_GAP &&
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
	if (hd_decommit(h->c, pa, hd_woff(s, pa), pb - pa)) {
		hd_tlsf_insert(h, b, size);
		return 0;
	}
	hd_cmap_set(s, pa, pb - pa, false);
	s->committed -= pb - pa;

	gstart = pg ? pg->start : pa - HD_HDR;
	gflags = head ? HD_F_PREV_FREE : pg ? hd_w0_flags(hd_rd(h->c, gstart)) :
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

static void hd_seg_link(struct hd_mheap *h, struct hd_seg *s)
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

static void hd_seg_unlink(struct hd_mheap *h, struct hd_seg *s)
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

/* Bytes of the commit bitmap of a segment of @size bytes. */
static size_t hd_cmap_bytes(size_t size)
{
	return ((size >> HD_PAGE_SHIFT) + 63) / 64 * sizeof(uint64_t);
}

static void hd_seg_free_meta(struct hd_seg *s)
{
	hd_meta_free(s->gaps, s->gcap * sizeof(*s->gaps));
	hd_meta_free(s->cmap, hd_cmap_bytes(s->sp.size));
	s->gcap = 0;
	s->gaps = NULL;
	s->cmap = NULL;
	hd_span_put(&s->sp);
}

/*
 * Create a segment of @size bytes with its first @commit bytes committed,
 * all of it one free block followed by a gap for the rest.  @warm, if not
 * NULL, is the mapping of a warm heap's first segment (heap.c), at window
 * offset 0 and already accessible, with its first @warm->committed bytes
 * committed: the segment takes it and commits only what @commit adds.
 */
struct hd_seg *hd_seg_new(struct hd_mheap *h, size_t size, size_t commit,
			  const struct hd_seg_warm *warm, int *errp)
{
	struct hd_seg *s = hd_span_get(HD_SPAN_SEG, sizeof(*s));
	uint64_t woff = 0;
	uintptr_t base;
	int err = -ENOMEM;

	if (!s)
		goto err;
	if (!h->c->fixed && hd_window_alloc(h->c, size, &woff))
		goto err_free;
	if (warm) {
		err = woff ? -EINVAL : 0;
		if (err)
			goto err_ext;
		base = warm->base;
		if (commit <= warm->committed)
			commit = warm->committed;
		else
			err = hd_commit(h->c, base + warm->committed,
					warm->committed,
					commit - warm->committed, false);
	} else {
		err = h->c->bh.be->map(&h->c->bh, woff, size, &base);
		if (err)
			goto err_ext;
		err = hd_commit(h->c, base, woff, commit, false);
	}
	if (err)
		goto err_unmap;
	s->sp.kind = h->c->fixed ? HD_SPAN_FSEG : HD_SPAN_SEG;
	s->sp.heap = h->c->heap;
	s->sp.handle = h->c->handle ? h->c->handle : base;
	s->sp.base = base;
	s->sp.size = size;
	s->sp.woff = woff;
	s->sp.seq = ++h->c->seq;
	s->area = base + HD_SEG_HDR - HD_HDR;
	s->end = base + size;
	s->committed = commit;
	s->cmap = hd_meta_alloc(hd_cmap_bytes(size));
	if (!s->cmap)
		goto err_decommit;
	hd_cmap_set(s, base, commit, true);
	if (commit < size) {
		err = hd_gap_insert(s, base + commit - HD_HDR, s->end);
		if (err)
			goto err_decommit;
		hd_gap_write(h, base + commit - HD_HDR, s->end,
			     HD_F_PREV_FREE);
	}
	err = hd_span_register(&s->sp);
	if (err)
		goto err_decommit;
	if (!h->c->handle)
		h->c->handle = base;
	hd_wr(h->c, base, HD_SIG);
	hd_wr(h->c, base + 8, (uint64_t)h->c->handle);
	hd_make_free(h, s, s->area,
		     (commit < size ? base + commit - HD_HDR : s->end) - s->area,
		     0);
	hd_seg_link(h, s);
	h->c->reserved += size;
	return s;

err_decommit:
	hd_decommit(h->c, base, woff, commit);
err_unmap:
	h->c->bh.be->unmap(&h->c->bh, base, size);
err_ext:
	if (!h->c->fixed)
		hd_window_free(h->c, woff, size);
err_free:
	if (s) {
		s->sp.kind = HD_SPAN_SEG;
		hd_seg_free_meta(s);
	}
err:
	*errp = err;
	return NULL;
}

/*
 * Whether the committed pages of @s are exactly its first @s->committed
 * bytes (one gap, at the end, or none).
 */
bool hd_seg_prefix_committed(const struct hd_seg *s)
{
	if (!s->ngaps)
		return s->committed == s->sp.size;
	return s->ngaps == 1 &&
	       s->gaps[0].start == s->sp.base + s->committed - HD_HDR &&
	       s->gaps[0].end == s->end;
}

/* Whether the segment's signature is intact. */
bool hd_seg_sig_ok(const struct hd_mheap *h, const struct hd_seg *s)
{
	return hd_rd(h->c, s->sp.base) == HD_SIG &&
	       hd_rd(h->c, s->sp.base + 8) == (uint64_t)h->c->handle;
}

/*
 * Whether the block chain of @s runs from its first block to its end
 * through sane headers in committed memory.  A segment whose chain an
 * overflow damaged is not released: its free blocks could not all be
 * taken off the free lists, which would then point into unmapped memory.
 */
static bool hd_seg_chain_ok(const struct hd_mheap *h, const struct hd_seg *s)
{
	uintptr_t b = s->area;

	while (b < s->end) {
		uint64_t w;

		if (!hd_seg_committed(s, b))
			return false;
		w = hd_rd(h->c, b);
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
static void hd_seg_release(struct hd_mheap *h, struct hd_seg *s)
{
	uintptr_t b = s->area, cstart = s->sp.base;
	uint32_t i;

	if (!hd_seg_chain_ok(h, s)) {
		hd_corrupt(h->c->handle, (void *)s->sp.base, "damaged block chain in an "
			   "empty segment (kept mapped)");
		return;
	}
	while (b < s->end) {
		uint64_t w = hd_rd(h->c, b);
		size_t size = hd_w0_size(w);

		if (hd_w0_kind(w) == HD_K_MFREE)
			hd_tlsf_remove(h, b, size);
		b += size;
	}
	hd_span_unregister(&s->sp);
	for (i = 0; i <= s->ngaps; i++) {
		uintptr_t cend = i < s->ngaps ? s->gaps[i].start + HD_HDR :
			s->end;

		if (cend > cstart)
			hd_decommit(h->c, cstart, hd_woff(s, cstart),
					 cend - cstart);
		if (i < s->ngaps)
			cstart = s->gaps[i].end;
	}
	h->c->bh.be->unmap(&h->c->bh, s->sp.base, s->sp.size);
	hd_window_free(h->c, s->sp.woff, s->sp.size);
	h->c->reserved -= s->sp.size;
	hd_seg_unlink(h, s);
	hd_seg_free_meta(s);
}

/*
 * Release empty secondary segments: all of them with @all, otherwise all
 * but one, which stays as a spare so that a heap oscillating around a
 * segment boundary does not map and unmap it over and over.
 */
void hd_release_empty_segments(struct hd_mheap *h, bool all)
{
	struct hd_span *sp, *next;
	bool spare = all;

	if (h->c->fixed || !h->segs)
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

/*
 * Bytes to commit at once when a heap grows: 1/32 of what it has (at
 * least 64 KiB, at most 4 MiB), so that a heap that grows page by page
 * commits in few steps, but what the last step commits ahead is small
 * (1/8 left 0.8 MB unused at the top of the tree workload's 6.6 MB heap,
 * where glibc pads its top by 128 KiB).
 */
static size_t hd_grow_step(const struct hd_mheap *h)
{
	size_t step = h->c->bh.committed / 32;

	if (step < HD_GROW_MIN)
		step = HD_GROW_MIN;
	if (step > (4UL << 20))
		step = 4UL << 20;
	return step & ~(HD_PAGE - 1);
}

/* Try to get a free block of @need bytes out of one gap. */
static int hd_grow_gap(struct hd_mheap *h, struct hd_seg *s, struct hd_gap *g,
		       size_t need)
{
	uint64_t gw = hd_rd(h->c, g->start);
	size_t prev = 0, next = 0, pages = g->end - g->start - HD_HDR, bytes;

	if (hd_w0_flags(gw) & HD_F_PREV_FREE)
		prev = hd_w0_size(hd_rd(h->c, g->start - 8));
	if (g->end < s->end) {
		uint64_t nw = hd_rd(h->c, g->end);

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
int hd_grow(struct hd_mheap *h, size_t need)
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
	if (h->c->fixed)
		return -ENOMEM;
	size = (need + HD_SEG_HDR + HD_PAGE + HD_CHUNK - 1) & ~(HD_CHUNK - 1);
	if (size < h->next_seg)
		size = h->next_seg;
	commit = hd_round_page(need + HD_SEG_HDR);
	if (commit < hd_grow_step(h))
		commit = hd_grow_step(h);
	if (commit > size)
		commit = size;
	if (!hd_seg_new(h, size, commit, NULL, &err))
		return err;
	if (h->next_seg < HD_SEG_MAX)
		h->next_seg *= 2;
	return 0;
}


/* Unmap every segment (HeapDestroy, after the backend released the pages). */
void hd_segs_unmap(struct hd_mheap *h)
{
	struct hd_span *sp;

	for (sp = h->segs; sp; sp = sp->next) {
		hd_span_unregister(sp);
		h->c->bh.be->unmap(&h->c->bh, sp->base, sp->size);
	}
}

/* Free the segments' metadata (HeapDestroy, or a fork child's heaps). */
void hd_segs_free(struct hd_mheap *h)
{
	struct hd_span *sp, *next;

	for (sp = h->segs; sp; sp = next) {
		next = sp->next;
		hd_seg_free_meta((struct hd_seg *)sp);
	}
	h->segs = h->segs_tail = NULL;
	h->nsegs = 0;
}

/* The handle frees check in every segment's granules (page.h). */
void hd_segs_set_handle(struct hd_mheap *h, uintptr_t handle)
{
	struct hd_span *sp;

	for (sp = h->segs; sp; sp = sp->next)
		hd_span_set_handle(sp, handle);
}
