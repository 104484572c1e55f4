// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * heapdev: large blocks of growable heaps, each in its own span.
 *
 * A request of HD_LARGE_MIN bytes or more (about 1 MiB, where Windows
 * switches to VirtualAlloc) gets its own mapping of the heap's window,
 * committed and populated at once:
 *
 *   base + 0     unused
 *   base + 48    16-byte header (kind, span size; requested size)
 *   base + 64    the block, 64-byte aligned as native large blocks are
 *
 * The span is mapped twice as big as the block (a quarter bigger below
 * 4 MiB, exactly as big from 1 GiB), uncommitted beyond the block.
 *
 * A freed span goes to the heap's cache of large spans (at most
 * HD_LCACHE_MAX of them, holding at most max(HD_LCACHE_BYTES,
 * committed / 8) committed bytes) out of the page map, so that pointers
 * into it are refused; the next large request that fits takes it and
 * commits or decommits only the difference.  Spans that sat in the cache
 * for HD_DECOMMIT_DELAY are decommitted and unmapped, like the ones that
 * do not fit in it; HeapCompact empties it, HeapDestroy releases it with
 * the rest of the heap.
 *
 * Shrinking in place decommits the pages beyond the new size, as Windows
 * does, so that a later HEAP_REALLOC_IN_PLACE_ONLY growth past them fails;
 * an ordinary realloc may recommit them in place.
 */
#include <errno.h>
#include "large.h"

/*
 * Bytes a block of @n bytes at data offset @off needs committed, from the
 * page holding its header (offset hd_large_coff()).
 */
static size_t hd_large_need(size_t off, size_t n)
{
	return ((off + n + HD_PAGE - 1) & ~(HD_PAGE - 1)) -
	       ((off - HD_HDR) & ~(HD_PAGE - 1));
}

/* Offset of the first committed byte of a span with data at @off. */
static size_t hd_large_coff(size_t off)
{
	return (off - HD_HDR) & ~(HD_PAGE - 1);
}

static uintptr_t hd_large_cstart(const struct hd_large *lg)
{
	return lg->sp.base + hd_large_coff(lg->off);
}

static uint64_t hd_large_cwoff(const struct hd_large *lg)
{
	return lg->sp.woff + hd_large_coff(lg->off);
}

static void hd_large_link(struct hd_lheap *h, struct hd_large *lg)
{
	struct hd_span *sp = &lg->sp;

	sp->prev = h->larges_tail;
	sp->next = NULL;
	if (h->larges_tail)
		h->larges_tail->next = sp;
	else
		h->larges = sp;
	h->larges_tail = sp;
	h->n++;
	h->bytes += lg->n;
	h->c->reserved += sp->size;
}

static void hd_large_unlink(struct hd_lheap *h, struct hd_large *lg)
{
	struct hd_span *sp = &lg->sp;

	if (sp->prev)
		sp->prev->next = sp->next;
	else
		h->larges = sp->next;
	if (sp->next)
		sp->next->prev = sp->prev;
	else
		h->larges_tail = sp->prev;
	h->n--;
	h->bytes -= lg->n;
	h->c->reserved -= sp->size;
}

/*
 * Bytes mapped for a block of @total bytes: twice as many from 4 MiB to
 * 1 GiB, a quarter more below (only address space: the rest stays
 * uncommitted), so that the span can be reused for a bigger block, or grow
 * in place.
 */
static size_t hd_large_map_size(size_t total)
{
	size_t size = total + total / 4;

	if (total >= HD_CHUNK && total <= (1UL << 30))
		size = 2 * total;
	return (size + HD_PAGE - 1) & ~(HD_PAGE - 1);
}

/* Decommit and unmap a span that is in no list and not in the page map. */
static void hd_large_release(struct hd_lheap *h, struct hd_large *lg)
{
	hd_decommit(h->c, hd_large_cstart(lg), hd_large_cwoff(lg),
			 lg->committed);
	h->c->bh.be->unmap(&h->c->bh, lg->sp.base, lg->sp.size);
	hd_window_free(h->c, lg->sp.woff, lg->sp.size);
	h->c->reserved -= lg->sp.size;
	hd_span_put(&lg->sp);
}

static void hd_lcache_del(struct hd_lheap *h, struct hd_large *lg)
{
	struct hd_span *sp = &lg->sp;

	if (sp->prev)
		sp->prev->next = sp->next;
	else
		h->lcache = sp->next;
	if (sp->next)
		sp->next->prev = sp->prev;
	h->nlcache--;
	h->lcache_bytes -= lg->committed;
}

/*
 * Release cached spans (heap lock held): all of them with @all, otherwise
 * those that have waited HD_DECOMMIT_DELAY.
 */
void hd_lcache_trim(struct hd_lheap *h, bool all)
{
	struct hd_span *sp, *next;
	uint64_t now;

	if (!h->lcache)
		return;
	now = all ? 0 : hd_now();
	for (sp = h->lcache; sp; sp = next) {
		struct hd_large *lg = (struct hd_large *)sp;

		next = sp->next;
		if (all || now - lg->since >= HD_DECOMMIT_DELAY) {
			hd_lcache_del(h, lg);
			hd_large_release(h, lg);
		}
	}
}

/*
 * A cached span that can hold @total bytes, taken out of the cache (heap
 * lock held): the one whose committed size is closest to @total.
 */
static struct hd_large *hd_lcache_take(struct hd_lheap *h, size_t total)
{
	struct hd_large *best = NULL;
	size_t bestd = SIZE_MAX;
	struct hd_span *sp;

	hd_lcache_trim(h, false);
	for (sp = h->lcache; sp; sp = sp->next) {
		struct hd_large *lg = (struct hd_large *)sp;
		size_t d = lg->committed > total ? lg->committed - total :
			   total - lg->committed;

		if (sp->size >= total && d < bestd) {
			best = lg;
			bestd = d;
		}
	}
	if (best)
		hd_lcache_del(h, best);
	return best;
}

/*
 * Keep a freed span for reuse if the cache has room (heap lock held; the
 * span is in no list and out of the page map).  Return: whether it did.
 */
static bool hd_lcache_put(struct hd_lheap *h, struct hd_large *lg)
{
	size_t cap = h->c->bh.committed / 8;

	if (lg->off != HD_LARGE_HDR)
		return false;	/* an aligned block's span: not reused */
	if (cap < HD_LCACHE_BYTES)
		cap = HD_LCACHE_BYTES;
	if (lg->committed > cap)
		return false;
	/* Make room: the oldest spans go first. */
	while (h->lcache && (h->nlcache >= HD_LCACHE_MAX ||
			     h->lcache_bytes + lg->committed > cap)) {
		struct hd_span *sp = h->lcache;

		while (sp->next)
			sp = sp->next;
		hd_lcache_del(h, (struct hd_large *)sp);
		hd_large_release(h, (struct hd_large *)sp);
	}
	/* The header must not say "large block" any more. */
	memset((void *)(lg->sp.base + lg->off - HD_HDR), 0, HD_HDR);
	lg->since = hd_now();
	lg->sp.prev = NULL;
	lg->sp.next = h->lcache;
	if (h->lcache)
		h->lcache->prev = &lg->sp;
	h->lcache = &lg->sp;
	h->nlcache++;
	h->lcache_bytes += lg->committed;
	return true;
}

/*
 * Make a cached span hold a block of @total bytes (heap lock held):
 * commit or decommit the difference, and zero what was in use before when
 * @flags asks for zeroed memory.  Return: 0 or the backend's error.
 */
static int hd_large_reuse(struct hd_lheap *h, struct hd_large *lg,
			  size_t total, uint32_t flags)
{
	size_t old = lg->committed;
	int err = 0;

	/*
	 * A lazy heap gets zeroed pages by a decommit and a lazy commit: a
	 * memset would make every page of the block resident.
	 */
	if ((flags & HEAPDEV_ZERO) && hd_lazy(h->c) &&
	    !hd_decommit(h->c, lg->sp.base, lg->sp.woff, old)) {
		lg->committed = 0;
		err = hd_commit(h->c, lg->sp.base, lg->sp.woff, total, true);
		if (!err)
			lg->committed = total;
		return err;
	}
	if (total > old) {
		err = hd_commit(h->c, lg->sp.base + old, lg->sp.woff + old,
				     total - old, hd_lazy(h->c));
		if (!err)
			lg->committed = total;
	} else if (total < old &&
		   !hd_decommit(h->c, lg->sp.base + total,
				     lg->sp.woff + total, old - total)) {
		lg->committed = total;
	}
	if (!err && (flags & HEAPDEV_ZERO))
		memset((void *)lg->sp.base, 0, old < total ? old : total);
	return err;
}

void *hd_large_alloc(struct hd_lheap *h, size_t n, size_t align,
		     uint32_t flags)
{
	size_t off = align > HD_LARGE_HDR ? align : HD_LARGE_HDR;
	size_t total, size;
	struct hd_large *lg = NULL;
	uintptr_t base, p;
	uint64_t woff;
	int err;

	/* Spans are 4 MiB aligned: a bigger alignment needs room to slide. */
	if (align > HD_CHUNK) {
		off = HD_LARGE_HDR;
		size = hd_large_map_size(hd_large_need(off, n)) + align;
	} else {
		size = hd_large_map_size(hd_large_need(off, n) +
					 hd_large_coff(off));
	}
	hd_lock_if(&h->c->mlock, flags);
	if (off == HD_LARGE_HDR && align <= HD_CHUNK)
		lg = hd_lcache_take(h, hd_large_need(off, n));
	if (lg) {
		err = hd_large_reuse(h, lg, hd_large_need(off, n), flags);
		if (err) {
			hd_large_release(h, lg);
			hd_unlock_if(&h->c->mlock, flags);
			return NULL;
		}
		lg->sp.seq = ++h->c->seq;
		h->c->reserved -= lg->sp.size;	/* counted again when linked */
		hd_unlock_if(&h->c->mlock, flags);
		lg->n = n;
		goto ready;
	}
	hd_unlock_if(&h->c->mlock, flags);
	lg = hd_span_get(HD_SPAN_LARGE, sizeof(*lg));
	if (!lg)
		return NULL;
	hd_lock_if(&h->c->mlock, flags);
	err = hd_window_alloc(h->c, size, &woff);
	lg->sp.seq = ++h->c->seq;
	hd_unlock_if(&h->c->mlock, flags);
	if (err)
		goto err_free;
	err = h->c->bh.be->map(&h->c->bh, woff, size, &base);
	if (err)
		goto err_ext;
	if (align > HD_CHUNK)
		off = ((base + HD_LARGE_HDR + align - 1) & ~(align - 1)) - base;
	total = hd_large_need(off, n);
	hd_lock_if(&h->c->mlock, flags);
	err = hd_commit(h->c, base + hd_large_coff(off),
			     woff + hd_large_coff(off), total, hd_lazy(h->c));
	hd_unlock_if(&h->c->mlock, flags);
	if (err)
		goto err_unmap;
	lg->sp.kind = HD_SPAN_LARGE;
	lg->sp.heap = h->c->heap;
	lg->sp.handle = h->c->handle;
	lg->sp.base = base;
	lg->sp.size = size;
	lg->sp.woff = woff;
	lg->n = n;
	lg->off = off;
	lg->committed = total;
ready:
	base = lg->sp.base;
	p = base + lg->off;
	hd_wr(h->c, p - HD_HDR, hd_w0(HD_K_LARGE, 0, lg->sp.size));
	hd_wr(h->c, p - 8, hd_w1(n));
	if (hd_span_register(&lg->sp))
		goto err_release;
	hd_lock_if(&h->c->mlock, flags);
	hd_large_link(h, lg);
	hd_unlock_if(&h->c->mlock, flags);
	/* Fresh pages are zero, reused ones were cleared if asked. */
	return (void *)p;

err_release:
	hd_lock_if(&h->c->mlock, flags);
	h->c->reserved += lg->sp.size;
	hd_large_release(h, lg);
	hd_unlock_if(&h->c->mlock, flags);
	return NULL;
err_unmap:
	h->c->bh.be->unmap(&h->c->bh, base, size);
err_ext:
	hd_lock_if(&h->c->mlock, flags);
	hd_window_free(h->c, woff, size);
	hd_unlock_if(&h->c->mlock, flags);
err_free:
	lg->sp.kind = HD_SPAN_LARGE;
	hd_span_put(&lg->sp);
	return NULL;
}

/* Whether @p is the live block of span @lg (heap lock held). */
int hd_large_check(const struct hd_lheap *h, struct hd_large *lg, uintptr_t p)
{
	uint64_t w0, w1;

	if (p != lg->sp.base + lg->off)
		return -EINVAL;
	w0 = hd_rd(h->c, p - HD_HDR);
	w1 = hd_rd(h->c, p - 8);
	if (!hd_w0_ok(w0) || hd_w0_kind(w0) != HD_K_LARGE ||
	    hd_w0_size(w0) != lg->sp.size || w1 != hd_w1(lg->n))
		return -EINVAL;
	return 0;
}

/* Free a checked large block (heap lock held): cache or release its span. */
void hd_large_free(struct hd_lheap *h, struct hd_large *lg)
{
	hd_large_unlink(h, lg);
	hd_span_unregister(&lg->sp);
	h->c->reserved += lg->sp.size;	/* still mapped */
	if (!hd_lcache_put(h, lg))
		hd_large_release(h, lg);
}

/**
 * hd_large_realloc() - resize a checked large block in place
 * @h: the heap (lock held)
 * @lg: the block's span
 * @n: the new size
 * @flags: effective flags
 *
 * Return: the block, or NULL (it cannot stay in place; unchanged).
 */
void *hd_large_realloc(struct hd_lheap *h, struct hd_large *lg, size_t n,
		       uint32_t flags)
{
	size_t total = hd_large_need(lg->off, n);
	uintptr_t p = lg->sp.base + lg->off, c = hd_large_cstart(lg);
	uint64_t cw = hd_large_cwoff(lg);

	if (hd_large_coff(lg->off) + total > lg->sp.size ||
	    (total > lg->committed && (flags & HEAPDEV_IN_PLACE)))
		return NULL;
	if (total > lg->committed) {
		if (hd_commit(h->c, c + lg->committed, cw + lg->committed,
			      total - lg->committed, hd_lazy(h->c)))
			return NULL;
		lg->committed = total;
	} else if (total < lg->committed &&
		   !hd_decommit(h->c, c + total, cw + total,
				lg->committed - total)) {
		lg->committed = total;
	}
	h->bytes += n - lg->n;
	lg->n = n;
	hd_wr(h->c, p - 8, hd_w1(n));
	return (void *)p;
}

/*
 * Heap destroy (after the backend released the pages), or a fork child:
 * drop every large span, cached ones too.
 */
void hd_larges_free_all(struct hd_lheap *h, bool unmap)
{
	struct hd_span *sp, *next;

	for (sp = h->larges; sp; sp = next) {
		next = sp->next;
		hd_span_unregister(sp);
		if (unmap)
			h->c->bh.be->unmap(&h->c->bh, sp->base, sp->size);
		hd_span_put(sp);
	}
	for (sp = h->lcache; sp; sp = next) {
		next = sp->next;
		if (unmap)
			h->c->bh.be->unmap(&h->c->bh, sp->base, sp->size);
		hd_span_put(sp);
	}
	h->larges = h->larges_tail = NULL;
	h->lcache = NULL;
	h->nlcache = 0;
	h->lcache_bytes = 0;
}
